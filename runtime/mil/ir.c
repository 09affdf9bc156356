/* ir.c - program lifetime, lookups, dtype and op tables, IR growth, deep copies, equality. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mil_int.h"

/* ======================= dtypes ======================= */

static const struct { const char *name; int bits; size_t size; } dtypes[MIL_DTYPE_COUNT] = {
    [MIL_FP16] = {"fp16", 16, 2},     [MIL_FP32] = {"fp32", 32, 4},
    [MIL_FP64] = {"fp64", 64, 8},     [MIL_BF16] = {"bf16", 16, 2},
    [MIL_INT4] = {"int4", 4, 1},      [MIL_INT8] = {"int8", 8, 1},
    [MIL_INT16] = {"int16", 16, 2},   [MIL_INT32] = {"int32", 32, 4},
    [MIL_INT64] = {"int64", 64, 8},   [MIL_UINT1] = {"uint1", 1, 1},
    [MIL_UINT2] = {"uint2", 2, 1},    [MIL_UINT3] = {"uint3", 3, 1},
    [MIL_UINT4] = {"uint4", 4, 1},    [MIL_UINT6] = {"uint6", 6, 1},
    [MIL_UINT8] = {"uint8", 8, 1},    [MIL_UINT16] = {"uint16", 16, 2},
    [MIL_UINT32] = {"uint32", 32, 4}, [MIL_UINT64] = {"uint64", 64, 8},
    [MIL_BOOL] = {"bool", 8, 1},      [MIL_STRING] = {"string", 0, sizeof(const char *)},
};

const char *mil_dtype_name(mil_dtype t) {
    return (unsigned)t < MIL_DTYPE_COUNT ? dtypes[t].name : "?";
}

int mil_dtype_lookup(const char *name, mil_dtype *out) {
    if (!name) return ERR_INVAL;
    for (int i = 0; i < MIL_DTYPE_COUNT; i++)
        if (strcmp(dtypes[i].name, name) == 0) {
            if (out) *out = (mil_dtype)i;
            return 0;
        }
    return ERR_INVAL;
}

int mil_dtype_bits(mil_dtype t) { return (unsigned)t < MIL_DTYPE_COUNT ? dtypes[t].bits : 0; }

size_t mil_dtype_elem_size(mil_dtype t) {
    return (unsigned)t < MIL_DTYPE_COUNT ? dtypes[t].size : 0;
}

int64_t mil_shape_numel(int rank, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < rank; i++) {
        if (shape[i] < 0) return -1;
        if (shape[i] == 0) { n = 0; continue; }
        if (n > INT64_MAX / shape[i]) return -1;
        n *= shape[i];
    }
    return n;
}

/* ======================= small floats ======================= */

/* Round a double to a binary format with ebits exponent and mbits mantissa bits, once, to nearest
 * even; returns the bit pattern (sign at bit ebits + mbits). */
static uint32_t small_from_double(double x, int ebits, int mbits) {
    uint64_t b;
    memcpy(&b, &x, sizeof b);
    uint32_t sign = (uint32_t)(b >> 63) << (ebits + mbits);
    int exp = (int)((b >> 52) & 0x7ff);
    uint64_t mant = b & ((UINT64_C(1) << 52) - 1);
    uint32_t emax = (1u << ebits) - 1;
    if (exp == 0x7ff) {
        if (!mant) return sign | (emax << mbits);
        return sign | (emax << mbits) | (1u << (mbits - 1)) | (uint32_t)(mant >> (52 - mbits + 1));
    }
    if (exp == 0 && mant == 0) return sign;
    int bias = (1 << (ebits - 1)) - 1;
    int e = exp - 1023 + bias; /* biased exponent in the small format */
    uint64_t m = exp ? (mant | (UINT64_C(1) << 52)) : mant;
    if (exp == 0) e = 1 - 1023 + bias; /* double subnormal: far below any small format */
    int shift = 52 - mbits;
    uint64_t h;
    if (e <= 0) {
        shift += 1 - e; /* subnormal result */
        if (shift >= 64) return sign;
        h = m >> shift;
        e = 0;
    } else {
        h = ((uint64_t)e << mbits) | ((m >> shift) & ((UINT64_C(1) << mbits) - 1));
    }
    uint64_t rem = m & ((UINT64_C(1) << shift) - 1), half = UINT64_C(1) << (shift - 1);
    if (rem > half || (rem == half && (h & 1))) h++; /* a carry moves into the exponent: right */
    if (h >= ((uint64_t)emax << mbits)) return sign | (emax << mbits); /* overflow: inf */
    return sign | (uint32_t)h;
}

static double small_to_double(uint32_t h, int ebits, int mbits) {
    int sign = (h >> (ebits + mbits)) & 1;
    int e = (int)((h >> mbits) & ((1u << ebits) - 1));
    uint32_t m = h & ((1u << mbits) - 1);
    int bias = (1 << (ebits - 1)) - 1;
    double v;
    if (e == (1 << ebits) - 1) v = m ? NAN : INFINITY;
    else if (e == 0) v = ldexp((double)m, 1 - bias - mbits);
    else v = ldexp((double)(m | (1u << mbits)), e - bias - mbits);
    return sign ? -v : v;
}

uint16_t mil_f16_from_double(double x) { return (uint16_t)small_from_double(x, 5, 10); }
double mil_f16_to_double(uint16_t h) { return small_to_double(h, 5, 10); }
uint16_t mil_bf16_from_double(double x) { return (uint16_t)small_from_double(x, 8, 7); }
double mil_bf16_to_double(uint16_t h) { return small_to_double(h, 8, 7); }

/* ======================= ops ======================= */

static const struct { const char *name; int since; } op_table[] = {
    {"?", 0},
#define OP_ROW_(n, s) {#n, s},
    MIL_OPS(OP_ROW_)
#undef OP_ROW_
};

mil_opkind mil_op_lookup(const char *name) {
    if (!name) return MIL_OP_UNKNOWN;
    for (int k = 1; k < MIL_OP_COUNT; k++)
        if (strcmp(op_table[k].name, name) == 0) return (mil_opkind)k;
    return MIL_OP_UNKNOWN;
}

const char *mil_op_name(mil_opkind k) {
    return (unsigned)k < MIL_OP_COUNT && k != MIL_OP_UNKNOWN ? op_table[k].name : "unknown";
}

int mil_op_since(mil_opkind k) {
    return (unsigned)k < MIL_OP_COUNT ? op_table[k].since : 0;
}

int mil__opset_version(const char *opset) {
    if (!opset || strncmp(opset, "ios", 3) != 0) return 0;
    char *end;
    long v = strtol(opset + 3, &end, 10);
    if (*end || end == opset + 3) return 0;
    return (v >= 15 && v <= 18) || v == 26 ? (int)v : 0;
}

int mil__is_ident(const char *s) {
    if (!s || !*s) return 0;
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_')) return 0;
    size_t n = 1;
    for (s++; *s; s++, n++) {
        char c = *s;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '@'))
            return 0;
    }
    return n <= MIL_MAX_NAME;
}

/* ======================= program lifetime ======================= */

mil_program *mil__program_alloc(ane_error *e) {
    mil_program *p = calloc(1, sizeof *p);
    if (!p) { err_set(e, ERR_NOMEM, "out of memory"); return NULL; }
    p->arena = mil_arena_new();
    if (!p->arena) { free(p); err_set(e, ERR_NOMEM, "out of memory"); return NULL; }
    atomic_init(&p->refs, 1);
    atomic_init(&p->data_refs, 1);
    snprintf(p->version, sizeof p->version, "1.3");
    p->source_name = "<string>";
    return p;
}

void mil_program_retain(mil_program *p) {
    if (!p) return;
    atomic_fetch_add(&p->refs, 1);
    atomic_fetch_add(&p->data_refs, 1);
}

void mil_program_retain_ir(mil_program *p) {
    if (p) atomic_fetch_add(&p->refs, 1);
}

static int within(const void *x, const void *base, size_t n) {
    return base && (const char *)x >= (const char *)base && (const char *)x < (const char *)base + n;
}

/* The last whole-program holder is gone: free the weight bytes the IR holders do not read. Only
 * buffers with an arena chunk of their own are freed (small ones cost nothing to keep), and every
 * literal that pointed into a freed buffer is cleared first. */
static void drop_weight_data(mil_program *p) {
    for (int fi = 0; fi < p->nfuncs; fi++) {
        mil_function *f = &p->funcs[fi];
        for (int v = 0; v < f->nvalues; v++) {
            mil_literal *l = f->values[v].lit;
            if (!l || l->form != MIL_LIT_BLOB || !l->data) continue;
            int in_blob = 0;
            for (int b = 0; b < p->nblobs && !in_blob; b++)
                in_blob = within(l->data, p->blobs[b].data, p->blobs[b].size);
            if (in_blob || mil_arena_free_big(p->arena, l->data)) l->data = NULL;
        }
    }
    for (int b = 0; b < p->nblobs; b++)
        if (p->blobs[b].data && mil_arena_free_big(p->arena, p->blobs[b].data)) p->blobs[b].data = NULL;
}

void mil_program_release(mil_program *p) {
    if (!p) return;
    /* refs is dropped second: while this holder's data_refs share is being given back, the
     * program cannot be freed under drop_weight_data */
    if (atomic_fetch_sub(&p->data_refs, 1) == 1 && atomic_load(&p->refs) > 1) drop_weight_data(p);
    mil_program_release_ir(p);
}

void mil_program_release_ir(mil_program *p) {
    if (!p) return;
    if (atomic_fetch_sub(&p->refs, 1) != 1) return;
    mil_arena_free(p->arena);
    free(p);
}

mil_function *mil_program_func(const mil_program *p, const char *name) {
    if (!p || !name) return NULL;
    for (int i = 0; i < p->nfuncs; i++)
        if (strcmp(p->funcs[i].name, name) == 0) return &p->funcs[i];
    return NULL;
}

/* ======================= the name table ======================= */

struct mil_names {
    int cap, n;   /* cap is a power of two */
    int *slot;    /* value index + 1; 0 = empty */
};

static uint32_t hash_str(const char *s) {
    uint32_t h = 2166136261u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

int mil_func_value(const mil_function *f, const char *name) {
    if (!f || !name) return -1;
    if (!f->names) {
        for (int i = 0; i < f->nvalues; i++)
            if (f->values[i].name && strcmp(f->values[i].name, name) == 0) return i;
        return -1;
    }
    const struct mil_names *t = f->names;
    for (uint32_t i = hash_str(name) & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        int s = t->slot[i];
        if (!s) return -1;
        if (strcmp(f->values[s - 1].name, name) == 0) return s - 1;
    }
}

static void names_insert(struct mil_names *t, const mil_function *f, int value) {
    uint32_t i = hash_str(f->values[value].name) & (t->cap - 1);
    while (t->slot[i]) i = (i + 1) & (t->cap - 1);
    t->slot[i] = value + 1;
    t->n++;
}

int mil__names_add(mil_program *p, mil_function *f, const char *name, int value, ane_error *e) {
    (void)name; /* the table keys on f->values[value].name */
    struct mil_names *t = f->names;
    if (!t || (t->n + 1) * 2 > t->cap) {
        int cap = t ? t->cap * 2 : 64;
        struct mil_names *nt = mil_arena_alloc(p->arena, sizeof *nt);
        int *slot = nt ? mil_arena_alloc_array(p->arena, (size_t)cap, sizeof(int)) : NULL;
        if (!slot) return err_set(e, ERR_NOMEM, "out of memory");
        nt->cap = cap;
        nt->slot = slot;
        for (int i = 0; i < f->nvalues; i++)
            if (f->values[i].name && i != value) names_insert(nt, f, i);
        f->names = t = nt;
    }
    names_insert(t, f, value);
    return 0;
}

const mil_binding *mil_op_input(const mil_op *op, const char *name) {
    if (!op || !name) return NULL;
    for (int i = 0; i < op->nin; i++)
        if (strcmp(op->in[i].name, name) == 0) return &op->in[i];
    for (int i = 0; i < op->nattr; i++)
        if (strcmp(op->attr[i].name, name) == 0) return &op->attr[i];
    return NULL;
}

/* ======================= growth ======================= */

/* Make room for one more element in an arena array (doubling; the old block stays in the arena,
 * which bounds the waste to the live size). */
static int grow(mil_program *p, void **arr, int *cap, int n, size_t size, int max, ane_error *e) {
    if (n < *cap) return 0;
    if (n >= max) return err_set(e, ERR_NOMEM, "too many elements (limit %d)", max);
    if (mil_arena_grow(p->arena, arr, cap, n, 8, max, size)) return err_set(e, ERR_NOMEM, "out of memory");
    return 0;
}

int mil__func_push_value(mil_program *p, mil_function *f, const mil_value *v, ane_error *e) {
    int rc = grow(p, (void **)&f->values, &f->cap_values, f->nvalues, sizeof *f->values,
                  MIL_MAX_VALUES, e);
    if (rc) return rc;
    int idx = f->nvalues++;
    f->values[idx] = *v;
    if (v->name && (rc = mil__names_add(p, f, v->name, idx, e))) {
        f->nvalues--;
        return rc;
    }
    return idx;
}

int mil__func_push_op(mil_program *p, mil_function *f, const mil_op *op, ane_error *e) {
    int rc = grow(p, (void **)&f->ops, &f->cap_ops, f->nops, sizeof *f->ops, MIL_MAX_VALUES, e);
    if (rc) return rc;
    f->ops[f->nops] = *op;
    return f->nops++;
}

int mil__func_push_param(mil_program *p, mil_function *f, int value, ane_error *e) {
    int rc = grow(p, (void **)&f->params, &f->cap_params, f->nparams, sizeof(int), MIL_MAX_VALUES, e);
    if (rc) return rc;
    f->params[f->nparams] = value;
    return f->nparams++;
}

int mil__prog_push_func(mil_program *p, const char *name, const char *opset, ane_error *e) {
    int rc = grow(p, (void **)&p->funcs, &p->cap_funcs, p->nfuncs, sizeof *p->funcs, 4096, e);
    if (rc) return rc;
    mil_function *f = &p->funcs[p->nfuncs];
    memset(f, 0, sizeof *f);
    f->name = mil_arena_strdup(p->arena, name);
    f->opset = mil_arena_strdup(p->arena, opset);
    if (!f->name || !f->opset) return err_set(e, ERR_NOMEM, "out of memory");
    f->opset_version = mil__opset_version(opset);
    return p->nfuncs++;
}

int mil__prog_push_attr(mil_program *p, const char *name, mil_literal *lit, ane_error *e) {
    int rc = grow(p, (void **)&p->attrs, &p->cap_attrs, p->nattrs, sizeof *p->attrs, 4096, e);
    if (rc) return rc;
    p->attrs[p->nattrs].name = mil_arena_strdup(p->arena, name);
    p->attrs[p->nattrs].lit = lit;
    if (!p->attrs[p->nattrs].name) return err_set(e, ERR_NOMEM, "out of memory");
    return p->nattrs++;
}

/* ======================= deep copies ======================= */

int mil__type_copy(mil_program *p, mil_type *dst, const mil_type *src, ane_error *e) {
    *dst = *src;
    dst->sub = NULL;
    if (src->nsub <= 0 || !src->sub) {
        dst->nsub = 0;
        return 0;
    }
    mil_type *sub = mil_arena_alloc_array(p->arena, (size_t)src->nsub, sizeof *sub);
    if (!sub) return err_set(e, ERR_NOMEM, "out of memory");
    for (int i = 0; i < src->nsub; i++) {
        int rc = mil__type_copy(p, &sub[i], &src->sub[i], e);
        if (rc) return rc;
    }
    dst->sub = sub;
    return 0;
}

mil_literal *mil__lit_copy(mil_program *p, const mil_literal *src, ane_error *e) {
    mil_literal *l = mil_arena_alloc(p->arena, sizeof *l);
    if (!l) { err_set(e, ERR_NOMEM, "out of memory"); return NULL; }
    *l = *src;
    l->data = NULL;
    l->keys = l->vals = NULL;
    l->blob_path = NULL;
    if (mil__type_copy(p, &l->type, &src->type, e)) return NULL;
    if (src->blob_path && !(l->blob_path = mil_arena_strdup(p->arena, src->blob_path))) {
        err_set(e, ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (src->form == MIL_LIT_DICT) {
        if (src->count < 0 || src->count > MIL_MAX_VALUES)
            { err_set(e, ERR_INVAL, "bad dict size"); return NULL; }
        if (src->count > 0) {
            l->keys = mil_arena_alloc_array(p->arena, (size_t)src->count, sizeof *l->keys);
            l->vals = mil_arena_alloc_array(p->arena, (size_t)src->count, sizeof *l->vals);
            if (!l->keys || !l->vals) { err_set(e, ERR_NOMEM, "out of memory"); return NULL; }
            for (int64_t i = 0; i < src->count; i++) {
                mil_literal *k = mil__lit_copy(p, &src->keys[i], e);
                mil_literal *v = k ? mil__lit_copy(p, &src->vals[i], e) : NULL;
                if (!v) return NULL;
                l->keys[i] = *k;
                l->vals[i] = *v;
            }
        }
        return l;
    }
    if (src->data && src->count > 0) {
        size_t es = mil_dtype_elem_size(src->type.dtype);
        if ((uint64_t)src->count > SIZE_MAX / es) { err_set(e, ERR_NOMEM, "literal too large"); return NULL; }
        l->data = mil_arena_memdup(p->arena, src->data, (size_t)src->count * es);
        if (!l->data) { err_set(e, ERR_NOMEM, "out of memory"); return NULL; }
        if (src->type.dtype == MIL_STRING) {
            const char **d = l->data;
            for (int64_t i = 0; i < src->count; i++) {
                const char *s = ((const char *const *)src->data)[i];
                if (!(d[i] = mil_arena_strdup(p->arena, s ? s : ""))) {
                    err_set(e, ERR_NOMEM, "out of memory");
                    return NULL;
                }
            }
        }
    }
    return l;
}

/* ======================= equality ======================= */

int mil_type_equal(const mil_type *a, const mil_type *b) {
    if (a->kind != b->kind) return 0;
    switch (a->kind) {
    case MIL_T_TENSOR:
    case MIL_T_STATE:
        if (a->dtype != b->dtype || a->rank != b->rank) return 0;
        for (int i = 0; i < a->rank; i++)
            if (a->shape[i] != b->shape[i]) return 0;
        return 1;
    case MIL_T_LIST:
        if (a->list_len != b->list_len) return 0;
        /* fall through */
    default:
        if (a->nsub != b->nsub) return 0;
        for (int i = 0; i < a->nsub; i++)
            if (!mil_type_equal(&a->sub[i], &b->sub[i])) return 0;
        return 1;
    }
}

static int why_set(char *why, size_t n, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static int why_set(char *why, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, n, fmt, ap);
    va_end(ap);
    return 0;
}
#define WHY(...) why_set(why, n, __VA_ARGS__)

static int lit_equal(const mil_literal *a, const mil_literal *b, char *why, size_t n) {
    if (!a || !b) return a == b ? 1 : WHY("literal missing on one side");
    if (!mil_type_equal(&a->type, &b->type)) return WHY("literal types differ");
    if (a->form != b->form) return WHY("literal forms differ");
    if (a->count != b->count) return WHY("literal element counts differ");
    if (a->form == MIL_LIT_DICT) {
        for (int64_t i = 0; i < a->count; i++)
            if (!lit_equal(&a->keys[i], &b->keys[i], why, n) ||
                !lit_equal(&a->vals[i], &b->vals[i], why, n))
                return 0;
        return 1;
    }
    if (a->form == MIL_LIT_BLOB) {
        if (strcmp(a->blob_path, b->blob_path) || a->blob_offset != b->blob_offset)
            return WHY("BLOBFILE references differ");
        if (!a->data || !b->data) return 1;
    }
    if (!a->data || !b->data) return a->data == b->data || a->count == 0 ? 1 : WHY("literal data missing");
    if (a->type.dtype == MIL_STRING) {
        for (int64_t i = 0; i < a->count; i++)
            if (strcmp(((const char *const *)a->data)[i], ((const char *const *)b->data)[i]))
                return WHY("string literals differ at element %lld", (long long)i);
        return 1;
    }
    size_t es = mil_dtype_elem_size(a->type.dtype);
    if (memcmp(a->data, b->data, (size_t)a->count * es)) return WHY("literal data differs");
    return 1;
}

static const char *op_label(const mil_function *f, const mil_op *op) {
    if (op->label) return op->label;
    return op->nres > 0 ? f->values[op->res[0]].name : "";
}

static int operand_equal(const mil_function *fa, int va, const mil_function *fb, int vb, char *why,
                         size_t n) {
    const mil_value *x = &fa->values[va], *y = &fb->values[vb];
    if (x->is_inline != y->is_inline) return WHY("inline literal vs named value");
    if (x->is_inline) return lit_equal(x->lit, y->lit, why, n);
    if (strcmp(x->name, y->name)) return WHY("operand '%s' vs '%s'", x->name, y->name);
    return 1;
}

static int cmp_binding_ptr(const void *a, const void *b) {
    return strcmp((*(const mil_binding *const *)a)->name, (*(const mil_binding *const *)b)->name);
}

/* Bindings compared as sets keyed by name; `name` attributes are compared through the labels. */
static int bindings_equal(const mil_function *fa, const mil_binding *a, int na,
                          const mil_function *fb, const mil_binding *b, int nb, int skip_name,
                          char *why, size_t n) {
    const mil_binding **sa = malloc(sizeof *sa * (size_t)(na + 1));
    const mil_binding **sb = malloc(sizeof *sb * (size_t)(nb + 1));
    int ok = 0, ka = 0, kb = 0;
    if (!sa || !sb) { WHY("out of memory"); goto done; }
    for (int i = 0; i < na; i++)
        if (!(skip_name && strcmp(a[i].name, "name") == 0)) sa[ka++] = &a[i];
    for (int i = 0; i < nb; i++)
        if (!(skip_name && strcmp(b[i].name, "name") == 0)) sb[kb++] = &b[i];
    if (ka != kb) { WHY("%d vs %d bindings", ka, kb); goto done; }
    qsort(sa, (size_t)ka, sizeof *sa, cmp_binding_ptr);
    qsort(sb, (size_t)kb, sizeof *sb, cmp_binding_ptr);
    for (int i = 0; i < ka; i++) {
        if (strcmp(sa[i]->name, sb[i]->name)) { WHY("binding '%s' vs '%s'", sa[i]->name, sb[i]->name); goto done; }
        if (sa[i]->n != sb[i]->n || sa[i]->is_tuple != sb[i]->is_tuple) { WHY("binding '%s' arity differs", sa[i]->name); goto done; }
        for (int j = 0; j < sa[i]->n; j++)
            if (!operand_equal(fa, sa[i]->values[j], fb, sb[i]->values[j], why, n)) {
                char tmp[256];
                snprintf(tmp, sizeof tmp, "%s", why);
                WHY("binding '%s': %s", sa[i]->name, tmp);
                goto done;
            }
    }
    ok = 1;
done:
    free(sa);
    free(sb);
    return ok;
}

static int func_equal(const mil_function *a, const mil_function *b, char *why, size_t n) {
    if (strcmp(a->name, b->name) || strcmp(a->opset, b->opset))
        return WHY("function %s<%s> vs %s<%s>", a->name, a->opset, b->name, b->opset);
    if (a->nparams != b->nparams) return WHY("%s: %d vs %d params", a->name, a->nparams, b->nparams);
    for (int i = 0; i < a->nparams; i++) {
        const mil_value *x = &a->values[a->params[i]], *y = &b->values[b->params[i]];
        if (strcmp(x->name, y->name) || !mil_type_equal(&x->type, &y->type))
            return WHY("%s: param %d differs", a->name, i + 1);
    }
    if (a->nops != b->nops) return WHY("%s: %d vs %d ops", a->name, a->nops, b->nops);
    for (int i = 0; i < a->nops; i++) {
        const mil_op *x = &a->ops[i], *y = &b->ops[i];
        char sub[512];
        if (strcmp(x->type, y->type)) return WHY("%s: op %d is %s vs %s", a->name, i + 1, x->type, y->type);
        if (strcmp(op_label(a, x), op_label(b, y)))
            return WHY("%s: op %d label '%s' vs '%s'", a->name, i + 1, op_label(a, x), op_label(b, y));
        if (x->nres != y->nres) return WHY("%s: op %d result count differs", a->name, i + 1);
        for (int r = 0; r < x->nres; r++) {
            const mil_value *vx = &a->values[x->res[r]], *vy = &b->values[y->res[r]];
            if (strcmp(vx->name, vy->name) || !mil_type_equal(&vx->type, &vy->type))
                return WHY("%s: op %d result %d differs (%s vs %s)", a->name, i + 1, r + 1, vx->name, vy->name);
        }
        if (!bindings_equal(a, x->in, x->nin, b, y->in, y->nin, 0, sub, sizeof sub))
            return WHY("%s: op %d (%s) inputs: %s", a->name, i + 1, x->type, sub);
        if (!bindings_equal(a, x->attr, x->nattr, b, y->attr, y->nattr, 1, sub, sizeof sub))
            return WHY("%s: op %d (%s) attributes: %s", a->name, i + 1, x->type, sub);
    }
    if (a->nouts != b->nouts) return WHY("%s: %d vs %d outputs", a->name, a->nouts, b->nouts);
    for (int i = 0; i < a->nouts; i++)
        if (strcmp(a->values[a->outs[i]].name, b->values[b->outs[i]].name))
            return WHY("%s: output %d differs", a->name, i + 1);
    return 1;
}

int mil_program_equal(const mil_program *a, const mil_program *b, char *why, size_t n) {
    char dummy[8];
    if (!why || !n) { why = dummy; n = sizeof dummy; }
    why[0] = '\0';
    if (strcmp(a->version, b->version)) return WHY("version %s vs %s", a->version, b->version);
    if (a->nattrs != b->nattrs) return WHY("%d vs %d program attributes", a->nattrs, b->nattrs);
    for (int i = 0; i < a->nattrs; i++) {
        if (strcmp(a->attrs[i].name, b->attrs[i].name)) return WHY("program attribute names differ");
        if (!lit_equal(a->attrs[i].lit, b->attrs[i].lit, why, n)) return 0;
    }
    if (a->nfuncs != b->nfuncs) return WHY("%d vs %d functions", a->nfuncs, b->nfuncs);
    for (int i = 0; i < a->nfuncs; i++)
        if (!func_equal(&a->funcs[i], &b->funcs[i], why, n)) return 0;
    return 1;
}
