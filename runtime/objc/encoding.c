/* encoding.c - Objective-C type encodings: walking, sizes, and C words for people.
 *
 * A method encoding is the return type, then self, _cmd and each argument, every type followed
 * by its frame offset in digits: "B44@0:8I16@20^@28" is BOOL (id self, SEL, unsigned int, id,
 * id *). Types may carry qualifiers (r const, n in, o out, N inout, O bycopy, R byref, V oneway,
 * A atomic, j complex). Property and ivar encodings name classes (@"NSString") and struct fields
 * ({CGSize="width"d"height"d}). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "objc.h"

const char *objc_enc_skip_quals(const char *p) {
    while (p && *p && strchr("rnNoORVAj", *p)) p++;
    return p;
}

/* Past a quoted name ("width") if p is at one. */
static const char *skip_quoted(const char *p) {
    if (*p != '"') return p;
    const char *q = strchr(p + 1, '"');
    return q ? q + 1 : NULL;
}

static const char *skip_digits(const char *p) {
    while (p && (isdigit((unsigned char)*p) || *p == '-' || *p == '+')) p++;
    return p;
}

const char *objc_enc_end(const char *p) {
    if (!p) return NULL;
    p = objc_enc_skip_quals(p);
    switch (*p) {
    case 'c': case 'C': case 's': case 'S': case 'i': case 'I': case 'l': case 'L': case 'q':
    case 'Q': case 'f': case 'd': case 'D': case 'B': case 'v': case '*': case '#': case ':':
    case '?': case 't': case 'T':
        return p + 1;
    case '@':
        if (p[1] == '?') return p + 2;                      /* block */
        if (p[1] == '"') return skip_quoted(p + 1);         /* @"NSString" */
        return p + 1;
    case '^':
        return objc_enc_end(p + 1);
    case 'b':
        return skip_digits(p + 1);
    case '[': {
        const char *q = objc_enc_end(skip_digits(p + 1));
        return (q && *q == ']') ? q + 1 : NULL;
    }
    case '{': case '(': {
        char close = *p == '{' ? '}' : ')';
        const char *q = p + 1;
        while (*q && *q != '=' && *q != close) q++;          /* the name */
        if (*q == close) return q + 1;
        if (!*q) return NULL;
        q++;
        while (q && *q && *q != close) q = objc_enc_end(skip_quoted(q));
        return (q && *q == close) ? q + 1 : NULL;
    }
    default:
        return NULL;
    }
}

const char *objc_enc_next(const char *p) { return skip_digits(objc_enc_end(p)); }

int objc_enc_nargs(const char *enc) {
    int n = 0;
    for (const char *p = enc; p && *p; p = objc_enc_next(p)) n++;
    const char *p = enc;
    for (; p && *p; p = objc_enc_next(p)) {}
    return (p && n >= 3) ? n - 3 : -1;
}

const char *objc_enc_type(const char *enc, int i) {
    const char *p = enc;
    for (int k = 0; k < i && p && *p; k++) p = objc_enc_next(p);
    return (p && *p) ? p : NULL;
}

static size_t align_up(size_t v, size_t a) { return a ? (v + a - 1) / a * a : v; }

int objc_enc_size(const char *p, size_t *size, size_t *align) {
    size_t s = 0, a = 0;
    p = objc_enc_skip_quals(p);
    switch (*p) {
    case 'c': case 'C': case 'B': s = a = 1; break;
    case 's': case 'S': s = a = 2; break;
    case 'i': case 'I': case 'f': s = a = 4; break;
#if defined(__APPLE__)
    case 'l': case 'L': s = a = 4; break; /* Apple encodes long as q on LP64; l is 32-bit */
#else
    case 'l': case 'L': s = a = sizeof(long); break;
#endif
    case 'q': case 'Q': case 'd': s = a = 8; break;
    case '*': case '@': case '#': case ':': case '^': s = a = sizeof(void *); break;
    case '[': {
        char *end;
        unsigned long n = strtoul(p + 1, &end, 10);
        size_t es, ea;
        if (objc_enc_size(end, &es, &ea)) return -1;
        s = es * n;
        a = ea;
        break;
    }
    case '{': case '(': {
        char close = *p == '{' ? '}' : ')';
        const char *q = strchr(p, '=');
        const char *end = objc_enc_end(p);
        if (!q || !end || q > end) return -1;                /* opaque struct: no size */
        q++;
        while (*q != close) {
            q = skip_quoted(q);
            size_t es, ea;
            if (objc_enc_size(q, &es, &ea)) return -1;
            if (close == '}') s = align_up(s, ea) + es;
            else if (es > s) s = es;
            if (ea > a) a = ea;
            q = objc_enc_end(q);
        }
        s = align_up(s, a);
        break;
    }
    default:
        return -1;
    }
    if (size) *size = s;
    if (align) *align = a;
    return 0;
}

/* ---- words ---- */
typedef struct wbuf { char *b; size_t n, len; } wbuf;

static void put(wbuf *w, const char *s, size_t len) {
    for (size_t i = 0; i < len && w->len + 1 < w->n; i++) w->b[w->len++] = s[i];
    if (w->n) w->b[w->len < w->n ? w->len : w->n - 1] = '\0';
}
static void puts_(wbuf *w, const char *s) { put(w, s, strlen(s)); }

static void words(wbuf *w, const char *p);

static void struct_words(wbuf *w, const char *p) {
    char close = *p == '{' ? '}' : ')';
    const char *q = p + 1;
    const char *name = q;
    while (*q && *q != '=' && *q != close) q++;
    size_t nlen = (size_t)(q - name);
    if (nlen && !(nlen == 1 && name[0] == '?')) {
        if (close == ')') puts_(w, "union ");
        put(w, name, nlen);
        return;
    }
    puts_(w, close == '}' ? "struct {" : "union {");
    if (*q == '=') {
        q++;
        int first = 1;
        while (q && *q && *q != close) {
            q = skip_quoted(q);
            if (!first) puts_(w, ", ");
            first = 0;
            words(w, q);
            q = objc_enc_end(q);
        }
    }
    puts_(w, "}");
}

static void words(wbuf *w, const char *p) {
    if (!p) { puts_(w, "?"); return; }
    for (; *p && strchr("rnNoORVAj", *p); p++) {
        static const char *const q[] = {"const ", "in ", "inout ", "out ", "bycopy ", "byref ",
                                        "oneway ", "_Atomic ", "_Complex "};
        puts_(w, q[strchr("rnNoORVAj", *p) - "rnNoORVAj"]);
    }
    switch (*p) {
    case 'c': puts_(w, "char"); return;
    case 'C': puts_(w, "unsigned char"); return;
    case 's': puts_(w, "short"); return;
    case 'S': puts_(w, "unsigned short"); return;
    case 'i': puts_(w, "int"); return;
    case 'I': puts_(w, "unsigned int"); return;
    case 'l': puts_(w, "long"); return;
    case 'L': puts_(w, "unsigned long"); return;
    case 'q': puts_(w, "long long"); return;
    case 'Q': puts_(w, "unsigned long long"); return;
    case 'f': puts_(w, "float"); return;
    case 'd': puts_(w, "double"); return;
    case 'D': puts_(w, "long double"); return;
    case 'B': puts_(w, "BOOL"); return;
    case 'v': puts_(w, "void"); return;
    case '*': puts_(w, "char *"); return;
    case '#': puts_(w, "Class"); return;
    case ':': puts_(w, "SEL"); return;
    case '?': puts_(w, "unknown"); return;
    case 't': puts_(w, "__int128"); return;
    case 'T': puts_(w, "unsigned __int128"); return;
    case '@':
        if (p[1] == '?') { puts_(w, "block"); return; }
        if (p[1] == '"') {
            const char *e = strchr(p + 2, '"');
            if (e && e > p + 2 && p[2] != '<') {
                put(w, p + 2, (size_t)(e - p - 2));
                puts_(w, " *");
            } else if (e && e > p + 2) {
                puts_(w, "id");
                put(w, p + 2, (size_t)(e - p - 2)); /* id<Protocol> */
            } else {
                puts_(w, "id");
            }
            return;
        }
        puts_(w, "id");
        return;
    case '^':
        if (p[1] == '?') { puts_(w, "function pointer"); return; }
        if (strncmp(p + 1, "{__IOSurface", 12) == 0) { puts_(w, "IOSurfaceRef"); return; }
        if (p[1] == 'v') { puts_(w, "void *"); return; }
        words(w, p + 1);
        puts_(w, (objc_enc_skip_quals(p + 1)[0] == '^') ? "*" : " *");
        return;
    case 'b': puts_(w, "bitfield:"); put(w, p + 1, (size_t)(skip_digits(p + 1) - p - 1)); return;
    case '[': {
        char *end;
        unsigned long n = strtoul(p + 1, &end, 10);
        words(w, end);
        char tmp[32];
        snprintf(tmp, sizeof tmp, "[%lu]", n);
        puts_(w, tmp);
        return;
    }
    case '{': case '(': struct_words(w, p); return;
    default: puts_(w, "?"); return;
    }
}

const char *objc_enc_words(const char *p, char *buf, size_t n) {
    wbuf w = {buf, n, 0};
    if (n) buf[0] = '\0';
    words(&w, p);
    return buf;
}

/* The keyword of argument i (0-based) of sel: "error" for i = 3 of "a:b:c:error:". */
static int keyword(const char *sel, int i, const char **k, size_t *len) {
    const char *p = sel;
    for (int j = 0; j < i && p; j++) {
        p = strchr(p, ':');
        if (p) p++;
    }
    if (!p || !*p) return 0;
    const char *e = strchr(p, ':');
    if (!e) return 0;
    *k = p;
    *len = (size_t)(e - p);
    return 1;
}

const char *objc_enc_method_words(const char *enc, const char *sel, char *buf, size_t n) {
    wbuf w = {buf, n, 0};
    if (n) buf[0] = '\0';
    int nargs = objc_enc_nargs(enc);
    if (nargs < 0) {
        puts_(&w, "malformed encoding ");
        puts_(&w, enc ? enc : "(null)");
        return buf;
    }
    words(&w, enc);
    puts_(&w, " (");
    for (int i = 0; i < nargs; i++) {
        const char *t = objc_enc_skip_quals(objc_enc_type(enc, 3 + i));
        const char *k;
        size_t kl;
        if (i) puts_(&w, ", ");
        if (sel && t[0] == '^' && t[1] == '@' && keyword(sel, i, &k, &kl) && kl >= 5 &&
            strncmp(k + kl - 4, "rror", 4) == 0)
            puts_(&w, "NSError **");
        else
            words(&w, objc_enc_type(enc, 3 + i));
    }
    puts_(&w, ")");
    return buf;
}

const char *objc_prop_words(const char *attrs, char *buf, size_t n) {
    wbuf w = {buf, n, 0};
    if (n) buf[0] = '\0';
    if (!attrs || attrs[0] != 'T') {
        puts_(&w, attrs ? attrs : "?");
        return buf;
    }
    words(&w, attrs + 1);
    const char *p = objc_enc_end(attrs + 1);
    while (p && *p == ',') {
        p++;
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        const char *flag = NULL;
        switch (*p) {
        case 'R': flag = "readonly"; break;
        case 'C': flag = "copy"; break;
        case '&': flag = "retain"; break;
        case 'N': flag = "nonatomic"; break;
        case 'W': flag = "weak"; break;
        case 'D': flag = "dynamic"; break;
        case 'G': puts_(&w, ", getter="); put(&w, p + 1, len - 1); break;
        case 'S': puts_(&w, ", setter="); put(&w, p + 1, len - 1); break;
        case 'V': puts_(&w, ", ivar="); put(&w, p + 1, len - 1); break;
        default: break;
        }
        if (flag) { puts_(&w, ", "); puts_(&w, flag); }
        p = e;
    }
    return buf;
}

static const struct { const char *name; const char *fields[6]; } known_structs[] = {
    {"CGSize", {"width", "height"}},
    {"CGPoint", {"x", "y"}},
    {"CGRect", {"origin", "size"}},
    {"_NSRange", {"location", "length"}},
    {"NSRange", {"location", "length"}},
    {"CGAffineTransform", {"a", "b", "c", "d", "tx", "ty"}},
    {"CGVector", {"dx", "dy"}},
};

const char *objc_struct_field(const char *name, size_t len, int i) {
    if (i < 0 || i >= 6) return NULL;
    for (size_t k = 0; k < sizeof known_structs / sizeof known_structs[0]; k++)
        if (strlen(known_structs[k].name) == len && memcmp(known_structs[k].name, name, len) == 0)
            return known_structs[k].fields[i];
    return NULL;
}
