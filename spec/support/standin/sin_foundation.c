/* sin_foundation.c - the root class and the minimal Foundation the ANE backend talks to.
 *
 * Memory-backed, reference-counted by hand, with autorelease pools per thread, and a live count
 * per class so specs can assert that every object the backend created was released. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "standin.h"

static Class root_cls;

/* ---- live counts per class ---- */
#define MAX_SLOTS 64
static struct { const char *name; atomic_int live; } slots[MAX_SLOTS];
static int nslots;
static pthread_mutex_t slot_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_int live_total;

static int slot_for(const char *name) {
    pthread_mutex_lock(&slot_mu);
    int i;
    for (i = 0; i < nslots; i++)
        if (strcmp(slots[i].name, name) == 0) break;
    if (i == nslots && nslots < MAX_SLOTS) slots[nslots++].name = strdup(name);
    pthread_mutex_unlock(&slot_mu);
    return i < MAX_SLOTS ? i : MAX_SLOTS - 1;
}

int sin_live(const char *name) {
    if (strcmp(name, "*") == 0) return atomic_load(&live_total);
    pthread_mutex_lock(&slot_mu);
    int n = 0;
    for (int i = 0; i < nslots; i++)
        if (strcmp(slots[i].name, name) == 0) n = atomic_load(&slots[i].live);
    pthread_mutex_unlock(&slot_mu);
    return n;
}

/* ---- objects ---- */
sin_ivars *sin_iv(id obj) {
    if (!obj) return NULL;
    sin_ivars *iv = object_getIndexedIvars(obj);
    return (iv && iv->magic == SIN_MAGIC) ? iv : NULL;
}

void *sin_payload(id obj) {
    sin_ivars *iv = sin_iv(obj);
    return iv ? iv->p : NULL;
}

id sin_new(Class c, void *payload, void (*fin)(void *)) {
    id o = class_createInstance(c, sizeof(sin_ivars));
    if (!o) return nil;
    sin_ivars *iv = object_getIndexedIvars(o);
    iv->magic = SIN_MAGIC;
    atomic_init(&iv->rc, 1);
    iv->p = payload;
    iv->fin = fin;
    iv->cls_slot = slot_for(class_getName(c));
    atomic_fetch_add(&slots[iv->cls_slot].live, 1);
    atomic_fetch_add(&live_total, 1);
    return o;
}

bool sin_isa(id obj, const char *class_name) {
    if (!sin_iv(obj)) return false;
    for (Class c = object_getClass(obj); c; c = class_getSuperclass(c))
        if (strcmp(class_getName(c), class_name) == 0) return true;
    return false;
}

id sin_retain(id obj) {
    sin_ivars *iv = sin_iv(obj);
    if (iv) atomic_fetch_add(&iv->rc, 1);
    return obj;
}

void sin_release(id obj) {
    sin_ivars *iv = sin_iv(obj);
    if (!iv) return;
    int old = atomic_fetch_sub(&iv->rc, 1);
    if (old <= 0) {
        sin_record("error.overrelease class=%s", class_getName(object_getClass(obj)));
        return;
    }
    if (old > 1) return;
    if (iv->fin) iv->fin(iv->p);
    atomic_fetch_sub(&slots[iv->cls_slot].live, 1);
    atomic_fetch_sub(&live_total, 1);
    iv->magic = 0;
    object_dispose(obj);
}

/* ---- autorelease pools: a stack per thread, each pool a growable array ---- */
typedef struct pool {
    id *objs;
    size_t n, cap;
    struct pool *up;
    id self;
} pool;
/* Per-thread pool stack in a pthread key, not _Thread_local: dynamic TLS in a dlopen'ed library
 * crashes LeakSanitizer's thread scan with this toolchain. */
typedef struct pool_stack { pool *top; int depth; } pool_stack;
static pthread_key_t stack_key;
static pthread_once_t stack_once = PTHREAD_ONCE_INIT;
static void stack_key_make(void) { pthread_key_create(&stack_key, free); }

static pool_stack *stack(void) {
    pthread_once(&stack_once, stack_key_make);
    pool_stack *st = pthread_getspecific(stack_key);
    if (!st) {
        st = calloc(1, sizeof *st);
        if (!st) abort();
        pthread_setspecific(stack_key, st);
    }
    return st;
}

int sin_pool_depth(void) { return stack()->depth; }

id sin_autorelease(id obj) {
    if (!obj) return obj;
    pool *p = stack()->top;
    if (!p) {
        /* Cocoa logs "autoreleased with no pool in place - just leaking"; so do we. */
        sin_record("error.no_pool class=%s", class_getName(object_getClass(obj)));
        return obj;
    }
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        id *v = realloc(p->objs, cap * sizeof *v);
        if (!v) abort();
        p->objs = v;
        p->cap = cap;
    }
    p->objs[p->n++] = obj;
    return obj;
}

static void pool_fin(void *pp) {
    pool *p = pp;
    free(p->objs);
    free(p);
}

static id pool_init(id self, SEL _cmd) {
    pool *p = sin_payload(self);
    pool_stack *st = stack();
    p->up = st->top;
    p->self = self;
    st->top = p;
    st->depth++;
    return self;
}

static void pool_drain(id self, SEL _cmd) {
    pool *p = sin_payload(self);
    pool_stack *st = stack();
    if (st->top != p) {
        sin_record("error.pool_order");
        return;
    }
    /* Objects released by the drain may autorelease more into this same pool. */
    for (size_t i = 0; i < p->n; i++) sin_release(p->objs[i]);
    st->top = p->up;
    st->depth--;
    sin_release(self);
}

/* ---- root class methods ---- */
static id r_alloc(Class self, SEL _cmd) {
    const char *n = class_getName(self);
    if (strcmp(n, "NSAutoreleasePool") == 0) {
        pool *p = calloc(1, sizeof *p);
        return sin_new(self, p, pool_fin);
    }
    return sin_new(self, NULL, NULL);
}
static id r_init(id self, SEL _cmd) { return self; }
static id r_retain(id self, SEL _cmd) { return sin_retain(self); }
static void r_release(id self, SEL _cmd) { sin_release(self); }
static id r_autorelease(id self, SEL _cmd) { return sin_autorelease(self); }
static unsigned long r_retain_count(id self, SEL _cmd) {
    sin_ivars *iv = sin_iv(self);
    return iv ? (unsigned long)atomic_load(&iv->rc) : 0;
}
static id r_description(id self, SEL _cmd) {
    char buf[128];
    snprintf(buf, sizeof buf, "<%s: %p>", class_getName(object_getClass(self)), (void *)self);
    return sin_string(buf);
}
static bool r_is_equal(id self, SEL _cmd, id other) { return self == other; }
static unsigned long r_hash(id self, SEL _cmd) { return (unsigned long)(uintptr_t)self; }
static bool r_responds(id self, SEL _cmd, SEL sel) {
    return class_respondsToSelector(object_getClass(self), sel);
}

/* KVC over the accessors the stand-in classes define: integer getters are boxed. */
static id r_value_for_key(id self, SEL _cmd, id key) {
    const char *k = sin_cstr(key);
    if (!k) return nil;
    SEL s = sel_registerName(k);
    Method m = class_getInstanceMethod(object_getClass(self), s);
    if (!m) {
        sin_record("error.undefined_key class=%s key=%s", class_getName(object_getClass(self)), k);
        return nil;
    }
    const char *t = method_getTypeEncoding(m);
    IMP f = method_getImplementation(m);
    if (t[0] == '@') return SIN_CALL(id (*)(id, SEL), f)(self, s);
    if (t[0] == 'I') return sin_number(SIN_CALL(unsigned (*)(id, SEL), f)(self, s));
    return sin_number(SIN_CALL(uint64_t (*)(id, SEL), f)(self, s));
}

static void r_set_value_for_key(id self, SEL _cmd, id value, id key) {
    const char *k = sin_cstr(key);
    char setter[128];
    if (!k || !*k) return;
    snprintf(setter, sizeof setter, "set%c%s:", (k[0] >= 'a' && k[0] <= 'z') ? k[0] - 32 : k[0], k + 1);
    SEL s = sel_registerName(setter);
    Method m = class_getInstanceMethod(object_getClass(self), s);
    uint64_t v = 0;
    if (!m || !sin_number_value(value, &v)) {
        sin_record("error.undefined_key class=%s key=%s", class_getName(object_getClass(self)), k);
        return;
    }
    IMP f = method_getImplementation(m);
    /* The setters the stand-in defines take unsigned int (perfStatsMask) */
    SIN_CALL(void (*)(id, SEL, unsigned), f)(self, s, (unsigned)v);
}

/* ---- class registration helpers ---- */
Class sin_root(void) { return root_cls; }

Class sin_class_begin(const char *name, Class super) {
    return objc_allocateClassPair(super ? super : root_cls, name, 0);
}
void sin_class_done(Class c) {
    objc_registerClassPair(c);
    /* Install the dispatch tables now (libobjc builds them on the first lookup), while the
     * constructor has LeakSanitizer paused: they live as long as the process. */
    SEL s = sel_registerName("retain");
    class_getMethodImplementation(c, s);
    class_getMethodImplementation(object_getClass((id)c), s);
}
void sin_add(Class c, const char *sel, sin_fn f, const char *types) {
    class_addMethod(c, sel_registerName(sel), (IMP)f, types);
}
void sin_add_class(Class c, const char *sel, sin_fn f, const char *types) {
    class_addMethod(object_getClass((id)c), sel_registerName(sel), (IMP)f, types);
}

void sin_register_root(void) {
    root_cls = objc_allocateClassPair(Nil, "NSObject", 0);
    class_addIvar(root_cls, "isa", sizeof(Class), 3, "#");
    sin_add_class(root_cls, "alloc", SIN_IMP(r_alloc), "@16@0:8");
    sin_add(root_cls, "init", SIN_IMP(r_init), "@16@0:8");
    sin_add(root_cls, "retain", SIN_IMP(r_retain), "@16@0:8");
    sin_add(root_cls, "release", SIN_IMP(r_release), "v16@0:8");
    sin_add(root_cls, "autorelease", SIN_IMP(r_autorelease), "@16@0:8");
    sin_add(root_cls, "retainCount", SIN_IMP(r_retain_count), "Q16@0:8");
    sin_add(root_cls, "description", SIN_IMP(r_description), "@16@0:8");
    sin_add(root_cls, "isEqual:", SIN_IMP(r_is_equal), "B24@0:8@16");
    sin_add(root_cls, "hash", SIN_IMP(r_hash), "Q16@0:8");
    sin_add(root_cls, "respondsToSelector:", SIN_IMP(r_responds), "B24@0:8:16");
    sin_add(root_cls, "valueForKey:", SIN_IMP(r_value_for_key), "@24@0:8@16");
    sin_add(root_cls, "setValue:forKey:", SIN_IMP(r_set_value_for_key), "v32@0:8@16@24");
    sin_class_done(root_cls);
}

/* ================= NSString ================= */
static Class cls_string, cls_data, cls_number, cls_array, cls_dict, cls_mdict, cls_error;

id sin_string(const char *s) {
    char *copy = strdup(s ? s : "");
    return sin_autorelease(sin_new(cls_string, copy, free));
}
const char *sin_cstr(id str) { return sin_isa(str, "NSString") ? sin_payload(str) : NULL; }

static id s_with_utf8(Class self, SEL _cmd, const char *s) { return s ? sin_string(s) : nil; }
static const char *s_utf8(id self, SEL _cmd) { return sin_payload(self); }
static unsigned long s_length(id self, SEL _cmd) { return strlen(sin_payload(self)); }
static id s_description(id self, SEL _cmd) { return self; }
static bool s_is_equal(id self, SEL _cmd, id other) {
    const char *o = sin_cstr(other);
    return o && strcmp(o, sin_payload(self)) == 0;
}
static unsigned long s_hash(id self, SEL _cmd) {
    unsigned long h = 5381;
    for (const char *p = sin_payload(self); *p; p++) h = h * 33 + (unsigned char)*p;
    return h;
}

/* ================= NSData ================= */
typedef struct { uint8_t *b; size_t n; } data_p;
static void data_fin(void *pp) {
    data_p *d = pp;
    free(d->b);
    free(d);
}
id sin_data(const void *bytes, size_t n) {
    data_p *d = calloc(1, sizeof *d);
    d->b = malloc(n ? n : 1);
    if (n) memcpy(d->b, bytes, n);
    d->n = n;
    return sin_autorelease(sin_new(cls_data, d, data_fin));
}
bool sin_data_bytes(id data, const uint8_t **bytes, size_t *n) {
    if (!sin_isa(data, "NSData")) return false;
    data_p *d = sin_payload(data);
    *bytes = d->b;
    *n = d->n;
    return true;
}
static id d_with_bytes(Class self, SEL _cmd, const void *b, unsigned long n) { return sin_data(b, n); }
static const void *d_bytes(id self, SEL _cmd) { return ((data_p *)sin_payload(self))->b; }
static unsigned long d_length(id self, SEL _cmd) { return ((data_p *)sin_payload(self))->n; }

/* ================= NSNumber ================= */
/* The payload starts with the value as uint64 (what the backend reads); ane.objc's specs also
 * box doubles and booleans, so the number keeps its kind (objCType) and a double copy. */
typedef struct { uint64_t v; double d; char type; } num_p;
static id number_of(uint64_t v, double d, char type) {
    num_p *p = malloc(sizeof *p);
    p->v = v;
    p->d = d;
    p->type = type;
    return sin_autorelease(sin_new(cls_number, p, free));
}
id sin_number(uint64_t v) { return number_of(v, (double)v, 'Q'); }
bool sin_number_value(id num, uint64_t *v) {
    if (!sin_isa(num, "NSNumber")) return false;
    *v = *(uint64_t *)sin_payload(num);
    return true;
}
static num_p *num(id self) { return sin_payload(self); }
static id n_ull(Class self, SEL _cmd, unsigned long long v) { return sin_number(v); }
static id n_int(Class self, SEL _cmd, int v) { return number_of((uint64_t)(int64_t)v, v, 'q'); }
static id n_uint(Class self, SEL _cmd, unsigned v) { return sin_number(v); }
static id n_ll(Class self, SEL _cmd, long long v) { return number_of((uint64_t)v, (double)v, 'q'); }
static id n_double(Class self, SEL _cmd, double v) {
    return number_of((uint64_t)(int64_t)v, v, 'd');
}
static id n_bool(Class self, SEL _cmd, bool v) { return number_of(v, v, 'B'); }
static unsigned long long n_ull_value(id self, SEL _cmd) { return num(self)->v; }
static long long n_ll_value(id self, SEL _cmd) { return (long long)num(self)->v; }
static unsigned n_uint_value(id self, SEL _cmd) { return (unsigned)num(self)->v; }
static int n_int_value(id self, SEL _cmd) { return (int)num(self)->v; }
static double n_double_value(id self, SEL _cmd) {
    return num(self)->type == 'd' ? num(self)->d
           : num(self)->type == 'q' ? (double)(int64_t)num(self)->v : (double)num(self)->v;
}
static bool n_bool_value(id self, SEL _cmd) { return num(self)->v != 0; }
static const char *n_objc_type(id self, SEL _cmd) {
    switch (num(self)->type) {
    case 'd': return "d";
    case 'B': return "B";
    case 'q': return "q";
    default: return "Q";
    }
}
static id n_description(id self, SEL _cmd) {
    char buf[48];
    num_p *p = num(self);
    if (p->type == 'd') snprintf(buf, sizeof buf, "%.17g", p->d);
    else if (p->type == 'q') snprintf(buf, sizeof buf, "%lld", (long long)p->v);
    else snprintf(buf, sizeof buf, "%llu", (unsigned long long)p->v);
    return sin_string(buf);
}
static bool n_is_equal(id self, SEL _cmd, id other) {
    uint64_t v;
    return sin_number_value(other, &v) && v == num(self)->v;
}

/* ================= NSArray ================= */
typedef struct { id *v; size_t n; } arr_p;
static void arr_fin(void *pp) {
    arr_p *a = pp;
    for (size_t i = 0; i < a->n; i++) sin_release(a->v[i]);
    free(a->v);
    free(a);
}
static id a_with_objects(Class self, SEL _cmd, const id *objs, unsigned long n) {
    arr_p *a = calloc(1, sizeof *a);
    a->v = calloc(n ? n : 1, sizeof(id));
    for (size_t i = 0; i < n; i++) {
        if (!objs[i]) { /* Cocoa raises on nil elements */
            sin_record("error.nil_in_array index=%zu", i);
            a->n = i;
            arr_fin(a);
            return nil;
        }
        a->v[i] = sin_retain(objs[i]);
    }
    a->n = n;
    return sin_autorelease(sin_new(self, a, arr_fin));
}
static id a_array(Class self, SEL _cmd) { return a_with_objects(self, _cmd, NULL, 0); }
id sin_array_new(const id *objs, size_t n) { return a_with_objects(cls_array, NULL, objs, n); }
size_t sin_array_count(id arr) {
    return sin_isa(arr, "NSArray") ? ((arr_p *)sin_payload(arr))->n : 0;
}
id sin_array_at(id arr, size_t i) {
    return i < sin_array_count(arr) ? ((arr_p *)sin_payload(arr))->v[i] : nil;
}
static unsigned long a_count(id self, SEL _cmd) { return sin_array_count(self); }
static id a_at(id self, SEL _cmd, unsigned long i) { return sin_array_at(self, i); }

/* ================= NSDictionary / NSMutableDictionary ================= */
typedef struct { id *k, *v; size_t n, cap; } dict_p;
static void dict_fin(void *pp) {
    dict_p *d = pp;
    for (size_t i = 0; i < d->n; i++) {
        sin_release(d->k[i]);
        sin_release(d->v[i]);
    }
    free(d->k);
    free(d->v);
    free(d);
}
static void dict_put(dict_p *d, id k, id v) {
    for (size_t i = 0; i < d->n; i++) {
        if (sin_cstr(d->k[i]) && sin_cstr(k) && strcmp(sin_cstr(d->k[i]), sin_cstr(k)) == 0) {
            sin_retain(v);
            sin_release(d->v[i]);
            d->v[i] = v;
            return;
        }
    }
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 8;
        d->k = realloc(d->k, d->cap * sizeof(id));
        d->v = realloc(d->v, d->cap * sizeof(id));
        if (!d->k || !d->v) abort();
    }
    d->k[d->n] = sin_retain(k);
    d->v[d->n] = sin_retain(v);
    d->n++;
}
static id dct_with(Class self, SEL _cmd, const id *vals, const id *keys, unsigned long n) {
    dict_p *d = calloc(1, sizeof *d);
    for (size_t i = 0; i < n; i++) {
        if (!vals[i] || !keys[i]) {
            sin_record("error.nil_in_dictionary index=%zu", i);
            dict_fin(d);
            return nil;
        }
        dict_put(d, keys[i], vals[i]);
    }
    return sin_autorelease(sin_new(self, d, dict_fin));
}
static id dct_empty(Class self, SEL _cmd) { return dct_with(self, _cmd, NULL, NULL, 0); }
id sin_dict_new(const id *keys, const id *vals, size_t n) { return dct_with(cls_dict, NULL, vals, keys, n); }
size_t sin_dict_count(id dict) {
    return sin_isa(dict, "NSDictionary") ? ((dict_p *)sin_payload(dict))->n : 0;
}
id sin_dict_key_at(id dict, size_t i) {
    return i < sin_dict_count(dict) ? ((dict_p *)sin_payload(dict))->k[i] : nil;
}
id sin_dict_get(id dict, const char *key) {
    size_t n = sin_dict_count(dict);
    dict_p *d = sin_payload(dict);
    for (size_t i = 0; i < n; i++)
        if (sin_cstr(d->k[i]) && strcmp(sin_cstr(d->k[i]), key) == 0) return d->v[i];
    return nil;
}
static unsigned long dct_count(id self, SEL _cmd) { return sin_dict_count(self); }
static id dct_get(id self, SEL _cmd, id key) {
    const char *k = sin_cstr(key);
    return k ? sin_dict_get(self, k) : nil;
}
static id dct_keys(id self, SEL _cmd) {
    dict_p *d = sin_payload(self);
    return a_with_objects(cls_array, _cmd, d->k, d->n);
}
static void mdct_set(id self, SEL _cmd, id obj, id key) {
    if (!obj || !key) {
        sin_record("error.nil_in_dictionary");
        return;
    }
    dict_put(sin_payload(self), key, obj);
}
static id mdct_alloc(Class self, SEL _cmd) { return sin_new(self, calloc(1, sizeof(dict_p)), dict_fin); }

/* ================= NSError ================= */
typedef struct { char *domain, *desc; long code; } err_p;
static void err_fin(void *pp) {
    err_p *e = pp;
    free(e->domain);
    free(e->desc);
    free(e);
}
id sin_error(const char *domain, long code, const char *desc) {
    err_p *e = calloc(1, sizeof *e);
    e->domain = strdup(domain);
    e->desc = strdup(desc);
    e->code = code;
    return sin_autorelease(sin_new(cls_error, e, err_fin));
}
static id e_with(Class self, SEL _cmd, id domain, long code, id info) {
    return sin_error(sin_cstr(domain) ? sin_cstr(domain) : "", code, "");
}
static id e_domain(id self, SEL _cmd) { return sin_string(((err_p *)sin_payload(self))->domain); }
static long e_code(id self, SEL _cmd) { return ((err_p *)sin_payload(self))->code; }
static id e_localized(id self, SEL _cmd) { return sin_string(((err_p *)sin_payload(self))->desc); }
static id e_description(id self, SEL _cmd) {
    err_p *e = sin_payload(self);
    size_t n = strlen(e->domain) + strlen(e->desc) + 64;
    char *buf = malloc(n);
    snprintf(buf, n, "Error Domain=%s Code=%ld \"%s\"", e->domain, e->code, e->desc);
    id s = sin_string(buf);
    free(buf);
    return s;
}

/* ================= NSTemporaryDirectory ================= */
/* Foundation's is per user ($TMPDIR); the stand-in's is per process ($TMPDIR/ane-standin-<pid>/),
 * so test runs of several worktrees on one machine never share a hex directory. Trailing slash
 * as in Foundation. The (empty) directory is removed at exit. $ANE_STANDIN_TMPDIR=DIR makes it
 * DIR/ instead, shared like Foundation's by every process that names it (the specs of two
 * processes compiling the same program); that one is left in place. */
static char tmp_root[1024];
static void tmp_cleanup(void) { rmdir(tmp_root); }

id NSTemporaryDirectory(void) {
    const char *shared = getenv("ANE_STANDIN_TMPDIR");
    if (shared && *shared) {
        size_t n = strlen(shared);
        char buf[1100];
        snprintf(buf, sizeof buf, "%s%s", shared, shared[n - 1] == '/' ? "" : "/");
        return sin_string(buf);
    }
    if (!tmp_root[0]) {
        const char *t = getenv("TMPDIR");
        if (!t || !*t) t = "/tmp";
        size_t n = strlen(t);
        snprintf(tmp_root, sizeof tmp_root, "%s%sane-standin-%ld", t,
                 (n && t[n - 1] == '/') ? "" : "/", (long)getpid());
        atexit(tmp_cleanup);
    }
    char buf[1100];
    snprintf(buf, sizeof buf, "%s/", tmp_root);
    return sin_string(buf);
}

void sin_register_foundation(void) {
    Class c;
    c = cls_string = sin_class_begin("NSString", Nil);
    sin_add_class(c, "stringWithUTF8String:", SIN_IMP(s_with_utf8), "@24@0:8r*16");
    sin_add(c, "UTF8String", SIN_IMP(s_utf8), "r*16@0:8");
    sin_add(c, "length", SIN_IMP(s_length), "Q16@0:8");
    sin_add(c, "description", SIN_IMP(s_description), "@16@0:8");
    sin_add(c, "isEqual:", SIN_IMP(s_is_equal), "B24@0:8@16");
    sin_add(c, "hash", SIN_IMP(s_hash), "Q16@0:8");
    sin_class_done(c);

    c = cls_data = sin_class_begin("NSData", Nil);
    sin_add_class(c, "dataWithBytes:length:", SIN_IMP(d_with_bytes), "@32@0:8r^v16Q24");
    sin_add(c, "bytes", SIN_IMP(d_bytes), "r^v16@0:8");
    sin_add(c, "length", SIN_IMP(d_length), "Q16@0:8");
    sin_class_done(c);

    c = cls_number = sin_class_begin("NSNumber", Nil);
    sin_add_class(c, "numberWithUnsignedLongLong:", SIN_IMP(n_ull), "@24@0:8Q16");
    sin_add_class(c, "numberWithInt:", SIN_IMP(n_int), "@20@0:8i16");
    sin_add_class(c, "numberWithUnsignedInt:", SIN_IMP(n_uint), "@20@0:8I16");
    sin_add(c, "unsignedLongLongValue", SIN_IMP(n_ull_value), "Q16@0:8");
    sin_add(c, "unsignedIntValue", SIN_IMP(n_uint_value), "I16@0:8");
    sin_add(c, "intValue", SIN_IMP(n_int_value), "i16@0:8");
    sin_add_class(c, "numberWithLongLong:", SIN_IMP(n_ll), "@24@0:8q16");
    sin_add_class(c, "numberWithDouble:", SIN_IMP(n_double), "@24@0:8d16");
    sin_add_class(c, "numberWithBool:", SIN_IMP(n_bool), "@20@0:8B16");
    sin_add(c, "longLongValue", SIN_IMP(n_ll_value), "q16@0:8");
    sin_add(c, "doubleValue", SIN_IMP(n_double_value), "d16@0:8");
    sin_add(c, "boolValue", SIN_IMP(n_bool_value), "B16@0:8");
    sin_add(c, "objCType", SIN_IMP(n_objc_type), "r*16@0:8");
    sin_add(c, "description", SIN_IMP(n_description), "@16@0:8");
    sin_add(c, "isEqual:", SIN_IMP(n_is_equal), "B24@0:8@16");
    sin_class_done(c);

    c = cls_array = sin_class_begin("NSArray", Nil);
    sin_add_class(c, "arrayWithObjects:count:", SIN_IMP(a_with_objects), "@32@0:8r^@16Q24");
    sin_add_class(c, "array", SIN_IMP(a_array), "@16@0:8");
    sin_add(c, "count", SIN_IMP(a_count), "Q16@0:8");
    sin_add(c, "objectAtIndex:", SIN_IMP(a_at), "@24@0:8Q16");
    sin_class_done(c);

    c = cls_dict = sin_class_begin("NSDictionary", Nil);
    sin_add_class(c, "dictionaryWithObjects:forKeys:count:", SIN_IMP(dct_with), "@40@0:8r^@16r^@24Q32");
    sin_add_class(c, "dictionary", SIN_IMP(dct_empty), "@16@0:8");
    sin_add(c, "count", SIN_IMP(dct_count), "Q16@0:8");
    sin_add(c, "objectForKey:", SIN_IMP(dct_get), "@24@0:8@16");
    sin_add(c, "allKeys", SIN_IMP(dct_keys), "@16@0:8");
    sin_class_done(c);

    c = cls_mdict = sin_class_begin("NSMutableDictionary", cls_dict);
    sin_add_class(c, "alloc", SIN_IMP(mdct_alloc), "@16@0:8");
    sin_add(c, "setObject:forKey:", SIN_IMP(mdct_set), "v32@0:8@16@24");
    sin_class_done(c);

    c = cls_error = sin_class_begin("NSError", Nil);
    sin_add_class(c, "errorWithDomain:code:userInfo:", SIN_IMP(e_with), "@40@0:8@16q24@32");
    sin_add(c, "domain", SIN_IMP(e_domain), "@16@0:8");
    sin_add(c, "code", SIN_IMP(e_code), "q16@0:8");
    sin_add(c, "localizedDescription", SIN_IMP(e_localized), "@16@0:8");
    sin_add(c, "description", SIN_IMP(e_description), "@16@0:8");
    sin_class_done(c);

    c = sin_class_begin("NSAutoreleasePool", Nil);
    sin_add(c, "init", SIN_IMP(pool_init), "@16@0:8");
    sin_add(c, "drain", SIN_IMP(pool_drain), "v16@0:8");
    sin_add(c, "release", SIN_IMP(pool_drain), "v16@0:8");
    sin_class_done(c);
}
