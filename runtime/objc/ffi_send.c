/* ffi_send.c - sending any message through libffi, by the method's own type encoding.
 *
 * The IMP is called directly (never objc_msgSend), with a plain non-variadic ffi_cif built from
 * the encoding: self, _cmd, then each argument; structs by value get ffi struct types built from
 * their member encodings. Integer results narrower than a register are narrowed here.
 *
 * Exceptions: an Objective-C exception that nothing in the callee catches reaches the runtime's
 * uncaught-exception handler (GCC's libobjc: after the unwinder's search phase found no handler,
 * so no frame has been unwound yet). While a send is in progress on this thread our handler
 * long-jumps back here and the send fails with the exception object. The frames between are
 * abandoned without their cleanups (see docs/objc.md, "Exceptions"). */
#include <pthread.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "objc.h"

#ifdef OBJC_HAVE_FFI
#include <ffi.h>

int objc_can_send(void) { return 1; }

/* ffi types for struct arguments, built per call. */
#define ARENA_TYPES 32
#define ARENA_ELEMS 256
typedef struct arena {
    ffi_type types[ARENA_TYPES];
    ffi_type *elems[ARENA_ELEMS];
    int nt, ne;
} arena;

static ffi_type *ffi_for(const char *p, arena *a, int top, char *why, size_t n);

static ffi_type *struct_type(const char *p, arena *a, char *why, size_t n) {
    const char *q = strchr(p, '=');
    const char *end = objc_enc_end(p);
    if (!q || !end || q > end) {
        snprintf(why, n, "opaque struct %.*s has no layout", (int)(end ? end - p : 1), p);
        return NULL;
    }
    if (a->nt == ARENA_TYPES) { snprintf(why, n, "too many struct types"); return NULL; }
    ffi_type *t = &a->types[a->nt++];
    memset(t, 0, sizeof *t);
    t->type = FFI_TYPE_STRUCT;
    t->elements = &a->elems[a->ne];
    q++;
    while (*q != '}') {
        if (*q == '"') q = strchr(q + 1, '"') + 1; /* field name */
        const char *fe = objc_enc_end(q);
        long count = 1;
        const char *elt = q;
        if (*objc_enc_skip_quals(q) == '[') { /* an array member: count copies of the element */
            char *after;
            count = strtol(objc_enc_skip_quals(q) + 1, &after, 10);
            elt = after;
        }
        ffi_type *ft = ffi_for(elt, a, 0, why, n);
        if (!ft) return NULL;
        for (long i = 0; i < count; i++) {
            if (a->ne >= ARENA_ELEMS - 1) { snprintf(why, n, "struct too large"); return NULL; }
            a->elems[a->ne++] = ft;
        }
        q = fe;
    }
    a->elems[a->ne++] = NULL;
    return t;
}

static ffi_type *ffi_for(const char *p, arena *a, int top, char *why, size_t n) {
    p = objc_enc_skip_quals(p);
    switch (*p) {
    case 'c': return &ffi_type_sint8;
    case 'C': case 'B': return &ffi_type_uint8;
    case 's': return &ffi_type_sint16;
    case 'S': return &ffi_type_uint16;
    case 'i': return &ffi_type_sint32;
    case 'I': return &ffi_type_uint32;
#if defined(__APPLE__)
    case 'l': return &ffi_type_sint32;
    case 'L': return &ffi_type_uint32;
#else
    case 'l': return &ffi_type_slong;
    case 'L': return &ffi_type_ulong;
#endif
    case 'q': return &ffi_type_sint64;
    case 'Q': return &ffi_type_uint64;
    case 'f': return &ffi_type_float;
    case 'd': return &ffi_type_double;
    case 'v': return top ? &ffi_type_void : NULL;
    case '*': case '@': case '#': case ':': case '^': return &ffi_type_pointer;
    case '[': if (top) return &ffi_type_pointer; break; /* C arrays decay to pointers */
    case '{': return struct_type(p, a, why, n);
    default: break;
    }
    char w[128];
    snprintf(why, n, "unsupported type %s (encoding %.*s)", objc_enc_words(p, w, sizeof w),
             (int)(objc_enc_end(p) ? objc_enc_end(p) - p : (long)strlen(p)), p);
    return NULL;
}

/* ---- exceptions ---- */
typedef struct catcher {
    jmp_buf jb;
    objc_id exc;
} catcher;
static pthread_key_t catch_key;
static pthread_once_t catch_once = PTHREAD_ONCE_INIT;
static void (*prev_handler)(objc_id);
static int have_handler;

static void on_uncaught(objc_id exc) {
    catcher *c = pthread_getspecific(catch_key);
    if (c) {
        c->exc = exc;
        longjmp(c->jb, 1);
    }
    if (prev_handler) prev_handler(exc);
}

static void catch_init(void) {
    pthread_key_create(&catch_key, NULL);
    const objc_api *api = objc_open(NULL, 0);
    if (api && api->setUncaughtExceptionHandler) {
        void *prev = api->setUncaughtExceptionHandler(on_uncaught);
        memcpy(&prev_handler, &prev, sizeof prev);
        have_handler = 1;
    }
}

#define MAX_ARGS 32

int objc_send(objc_id recv, objc_sel sel, objc_imp imp, const char *enc, void **args, void *ret,
              objc_id *exc, char *why, size_t n) {
    pthread_once(&catch_once, catch_init);
    if (exc) *exc = NULL;
    int nargs = objc_enc_nargs(enc);
    if (nargs < 0 || nargs > MAX_ARGS) {
        snprintf(why, n, nargs < 0 ? "malformed encoding %s" : "too many arguments (%s)", enc);
        return -1;
    }
    arena a;
    a.nt = a.ne = 0;
    ffi_type *types[MAX_ARGS + 2];
    void *values[MAX_ARGS + 2];
    ffi_type *rt = ffi_for(objc_enc_type(enc, 0), &a, 1, why, n);
    if (!rt) return -1;
    types[0] = types[1] = &ffi_type_pointer;
    values[0] = &recv;
    values[1] = &sel;
    for (int i = 0; i < nargs; i++) {
        types[2 + i] = ffi_for(objc_enc_type(enc, 3 + i), &a, 1, why, n);
        if (!types[2 + i]) return -1;
        values[2 + i] = args[i];
    }
    ffi_cif cif;
    if (ffi_prep_cif(&cif, FFI_DEFAULT_ABI, (unsigned)(nargs + 2), rt, types) != FFI_OK) {
        snprintf(why, n, "libffi cannot build a call for %s", enc);
        return -1;
    }
    /* Small integers come back widened to a register: ffi_arg-sized scratch, narrowed below. */
    union { ffi_arg i; double d; unsigned char big[16]; } small;
    int narrow = rt->type != FFI_TYPE_STRUCT && rt->type != FFI_TYPE_VOID && rt->size < sizeof(ffi_arg) &&
                 rt->type != FFI_TYPE_FLOAT;
    void *rp = narrow ? (void *)&small : ret;

    catcher c, *volatile outer = pthread_getspecific(catch_key);
    c.exc = NULL;
    if (have_handler) {
        if (setjmp(c.jb)) {
            pthread_setspecific(catch_key, outer);
            if (exc) *exc = c.exc;
            snprintf(why, n, "Objective-C exception");
            return -1;
        }
        pthread_setspecific(catch_key, &c);
    }
    ffi_call(&cif, FFI_FN(imp), rp, values);
    if (have_handler) pthread_setspecific(catch_key, outer);

    if (narrow) {
        switch (rt->size) {
        case 1: { uint8_t v = (uint8_t)small.i; memcpy(ret, &v, 1); break; }
        case 2: { uint16_t v = (uint16_t)small.i; memcpy(ret, &v, 2); break; }
        case 4: { uint32_t v = (uint32_t)small.i; memcpy(ret, &v, 4); break; }
        default: break;
        }
    }
    return 0;
}

#else /* no libffi at build time */

int objc_can_send(void) { return 0; }

int objc_send(objc_id recv, objc_sel sel, objc_imp imp, const char *enc, void **args, void *ret,
              objc_id *exc, char *why, size_t n) {
    if (exc) *exc = NULL;
    snprintf(why, n, "this build has no libffi (install libffi-dev / brew libffi and rebuild)");
    return -1;
}

#endif
