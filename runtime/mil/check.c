/* check.c - the MIL checker: structural rules over a whole program (mil_check, reference 7.1)
 * and the generic per-op input rules every op rule builds on (ck_bind: names, tuples, const-ness,
 * dtype sets, type domains 7.2, ranks). The op rules themselves live in check_ops.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_int.h"
#include "mil.h"

#define TRY_CK(x)                                                                                  \
    do {                                                                                           \
        int rc_ = (x);                                                                             \
        if (rc_) return rc_;                                                                       \
    } while (0)

/* ======================================================================
 * formatting
 * ====================================================================== */

const char *ck_shape_str(int rank, const int64_t *shape, char *buf, size_t n)
{
    size_t k = 0;
    k += (size_t)snprintf(buf + k, n - k, "[");
    for (int i = 0; i < rank && k < n; i++) {
        if (shape[i] < 0)
            k += (size_t)snprintf(buf + k, n - k, "%s?", i ? ", " : "");
        else
            k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    }
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

const char *ck_type_str(const mil_type *t, char *buf, size_t n)
{
    char sh[256];
    switch (t->kind) {
    case MIL_T_TENSOR:
        if (t->rank == 0)
            snprintf(buf, n, "%s", mil_dtype_name(t->dtype));
        else
            snprintf(buf, n, "tensor<%s, %s>", mil_dtype_name(t->dtype),
                     ck_shape_str(t->rank, t->shape, sh, sizeof sh));
        break;
    case MIL_T_STATE:
        snprintf(buf, n, "state<tensor<%s, %s>>", mil_dtype_name(t->dtype),
                 ck_shape_str(t->rank, t->shape, sh, sizeof sh));
        break;
    case MIL_T_DICT: snprintf(buf, n, "dict<...>"); break;
    case MIL_T_LIST: snprintf(buf, n, "list<...>"); break;
    default: snprintf(buf, n, "tuple<...>"); break;
    }
    return buf;
}

int ck_type_equal(const mil_type *a, const mil_type *b)
{
    if (a->kind != b->kind) return 0;
    if (a->kind != MIL_T_TENSOR && a->kind != MIL_T_STATE) return 1; /* never an op result */
    if (a->dtype != b->dtype || a->rank != b->rank) return 0;
    for (int i = 0; i < a->rank; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

static void dtypes_str(uint32_t set, char *buf, size_t n)
{
    int cnt = 0, total = 0;
    for (int d = 0; d < MIL_DTYPE_COUNT; d++) total += (set >> d) & 1;
    size_t k = 0;
    buf[0] = 0;
    for (int d = 0; d < MIL_DTYPE_COUNT && k < n; d++) {
        if (!((set >> d) & 1)) continue;
        cnt++;
        const char *sep = cnt == 1 ? "" : cnt == total ? " or " : ", ";
        k += (size_t)snprintf(buf + k, n - k, "%s%s", sep, mil_dtype_name((mil_dtype)d));
    }
}

/* ======================================================================
 * errors
 * ====================================================================== */

static int ck_verr(ck *c, int line, int col, int code, const char *fmt, va_list ap)
{
    char msg[768];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (!line) line = c->op->line, col = c->op->col;
    return mil_error_at(c->e, c->p, code, line, col, "%s: %s", c->name, msg);
}

int ck_err(ck *c, int i, int code, const char *fmt, ...)
{
    int line = 0, col = 0;
    if (i >= 0 && i < c->nspec && c->in[i]) line = c->in[i]->line, col = c->in[i]->col;
    va_list ap;
    va_start(ap, fmt);
    int rc = ck_verr(c, line, col, code, fmt, ap);
    va_end(ap);
    return rc;
}

static int ck_err_at(ck *c, const mil_binding *b, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = ck_verr(c, b ? b->line : 0, b ? b->col : 0, code, fmt, ap);
    va_end(ap);
    return rc;
}

/* ======================================================================
 * generic input rules
 * ====================================================================== */

static int is_constexpr(mil_opkind k)
{
    return k == MIL_OP_constexpr_affine_dequantize || k == MIL_OP_constexpr_blockwise_shift_scale ||
           k == MIL_OP_constexpr_cast;
}

static int match_binding(ck *c, const mil_binding *b)
{
    int j;
    for (j = 0; j < c->nspec; j++)
        if (!strcmp(c->spec[j].name, b->name)) break;
    if (j == c->nspec) return ck_err_at(c, b, ERR_INVAL, "unknown input '%s'", b->name);
    const in_spec *s = &c->spec[j];
    if (s->since > c->opset)
        return ck_err_at(c, b, ERR_INVAL, "input '%s' needs ios%d or later (function is ios%d)",
                         b->name, s->since, c->opset);
    if (c->in[j]) return ck_err_at(c, b, ERR_INVAL, "input '%s' is given twice", b->name);
    if (b->is_tuple && !(s->flags & I_TUPLE))
        return ck_err_at(c, b, ERR_INVAL, "input '%s' does not take a tuple", b->name);
    if (!b->is_tuple && (s->flags & I_TUPLE))
        return ck_err_at(c, b, ERR_INVAL, "input '%s' must be a tuple (a, b, ...)", b->name);
    if (b->n < 1) return ck_err_at(c, b, ERR_INVAL, "input '%s' is an empty tuple", b->name);
    c->in[j] = b;
    return 0;
}

int ck_bind(ck *c, const in_spec *spec, int n)
{
    int rc;
    c->spec = spec;
    c->nspec = n;
    memset(c->in, 0, sizeof c->in);
    const mil_op *op = c->op;
    for (int i = 0; i < op->nin; i++)
        if ((rc = match_binding(c, &op->in[i]))) return rc;
    /* The ios16 encoding of constexpr_* ops passes every input as an attribute (reference 4.1). */
    mil_opkind k = mil_op_lookup(op->type);
    for (int i = 0; i < op->nattr; i++) {
        const mil_binding *b = &op->attr[i];
        if (!strcmp(b->name, "name")) continue;
        if (k == MIL_OP_const && !strcmp(b->name, "val")) continue;
        if (is_constexpr(k)) {
            if ((rc = match_binding(c, b))) return rc;
            continue;
        }
        return ck_err_at(c, b, ERR_INVAL, "unknown attribute '%s'", b->name);
    }
    /* first member of each domain letter, to compare the others with */
    int dom_first[128];
    for (int i = 0; i < 128; i++) dom_first[i] = -1;
    for (int j = 0; j < n; j++) {
        const in_spec *s = &spec[j];
        const mil_binding *b = c->in[j];
        if (!b) {
            if ((s->flags & I_REQ) && s->since <= c->opset)
                return ck_err(c, -1, ERR_INVAL, "missing required input '%s'", s->name);
            continue;
        }
        for (int m = 0; m < b->n; m++) {
            int v = b->values[m];
            if (v < 0 || v >= c->f->nvalues)
                return ck_err(c, j, ERR_INVAL, "input '%s' refers to no value", s->name);
            const mil_type *t = &c->f->values[v].type;
            char tb[300], want[200];
            if (t->kind != MIL_T_TENSOR)
                return ck_err(c, j, ERR_TYPE, "input '%s' must be a tensor, got %s", s->name,
                              ck_type_str(t, tb, sizeof tb));
            for (int d = 0; d < t->rank; d++)
                if (t->shape[d] < 0)
                    return ck_err(c, j, ERR_SHAPE,
                                  "input '%s' has an unknown dimension (shapes must be static)",
                                  s->name);
            if ((s->flags & I_CONST) && !mil_value_is_const(c->f, v))
                return ck_err(c, j, ERR_INVAL, "input '%s' must be a constant", s->name);
            if (s->dtypes && !((s->dtypes >> t->dtype) & 1)) {
                dtypes_str(s->dtypes, want, sizeof want);
                return ck_err(c, j, ERR_TYPE, "input '%s' has dtype %s, expected %s", s->name,
                              mil_dtype_name(t->dtype), want);
            }
            if (s->rank == RK0 && t->rank != 0)
                return ck_err(c, j, ERR_SHAPE, "input '%s' must be a scalar, got %s", s->name,
                              ck_type_str(t, tb, sizeof tb));
            if (s->rank > 0 && t->rank != s->rank) {
                return ck_err(c, j, ERR_SHAPE, "input '%s' must have rank %d, got %d", s->name,
                              s->rank, t->rank);
            }
            if (s->rank == RK_LE1 && t->rank > 1)
                return ck_err(c, j, ERR_SHAPE, "input '%s' must be a scalar or a 1-D list, got %s",
                              s->name, ck_type_str(t, tb, sizeof tb));
            if (s->dom) {
                int first = dom_first[(unsigned char)s->dom];
                if (first < 0) {
                    dom_first[(unsigned char)s->dom] = j;
                } else {
                    const mil_type *ft = &c->f->values[c->in[first]->values[0]].type;
                    if (ft->dtype != t->dtype) {
                        if (first == j)
                            return ck_err(c, j, ERR_TYPE,
                                          "the values of '%s' must share one dtype, got %s and %s",
                                          s->name, mil_dtype_name(ft->dtype),
                                          mil_dtype_name(t->dtype));
                        return ck_err(c, j, ERR_TYPE,
                                      "input '%s' is %s but '%s' is %s (they must have the same "
                                      "dtype)",
                                      s->name, mil_dtype_name(t->dtype), spec[first].name,
                                      mil_dtype_name(ft->dtype));
                    }
                }
            }
        }
    }
    return 0;
}

int ck_bind_op(ck *c)
{
    if (mil_op_sig(c->kind, c->opset, &c->sig))
        return ck_err(c, -1, ERR_UNSUPPORTED, "op has no signature");
    return ck_bind(c, c->sig.in, c->sig.nin);
}

/* ======================================================================
 * constant readers with positioned errors
 * ====================================================================== */

static int const_err(ck *c, int i, int rc, const char *what)
{
    const char *nm = c->spec[i].name;
    if (rc == ERR_STATE)
        return ck_err(c, i, ERR_INVAL, "input '%s' must be a constant with a known value", nm);
    if (rc == ERR_TYPE) return ck_err(c, i, ERR_TYPE, "input '%s' must be %s", nm, what);
    return ck_err(c, i, ERR_SHAPE, "input '%s' must be %s", nm, what);
}

int ck_known(const ck *c, int i)
{
    return c->in[i] && mil_value_lit(c->f, ck_v(c, i)) != NULL;
}

/* Where to read input i from: its operand, or its signature default (computed ones from the
 * op's first operand) materialised as the one value of a scratch function, so that the same
 * constant readers serve both. s must stay where it is while s->f is in use. */
typedef struct ck_src {
    const mil_function *f;
    int v;
    mil_function tmpf;
    mil_value tmpv;
    mil_literal l;
    mil_default_data d;
} ck_src;

static int ck_source(ck *c, int i, ck_src *s)
{
    if (c->in[i]) {
        s->f = c->f;
        s->v = ck_v(c, i);
        return 0;
    }
    const mil_type *x = NULL;
    if (c->nspec > 0 && c->in[0]) x = &c->f->values[c->in[0]->values[0]].type;
    if (c->spec != c->sig.in || mil_sig_default(&c->sig, i, x, &s->l, &s->d))
        return ck_err(c, -1, ERR_INVAL, "input '%s' is absent and has no default", c->spec[i].name);
    memset(&s->tmpf, 0, sizeof s->tmpf);
    memset(&s->tmpv, 0, sizeof s->tmpv);
    s->tmpv.type = s->l.type;
    s->tmpv.lit = &s->l;
    s->tmpv.def_op = -1;
    s->tmpv.is_inline = 1;
    s->tmpf.values = &s->tmpv;
    s->tmpf.nvalues = 1;
    s->f = &s->tmpf;
    s->v = 0;
    return 0;
}

int ck_ints(ck *c, int i, int64_t *out, int max, int *n)
{
    ck_src s;
    TRY_CK(ck_source(c, i, &s));
    int rc = mil_const_ints(s.f, s.v, out, max, n);
    if (rc == ERR_SHAPE && mil_value_lit(s.f, s.v) && s.f->values[s.v].lit->type.rank <= 1)
        return ck_err(c, i, ERR_SHAPE, "input '%s' has more than %d values", c->spec[i].name, max);
    return rc ? const_err(c, i, rc, "an integer list") : 0;
}

int ck_ints2(ck *c, int i, int64_t *out, int max, int *n)
{
    ck_src s;
    TRY_CK(ck_source(c, i, &s));
    int rc = mil_const_ints_rank(s.f, s.v, 2, out, max, n);
    return rc ? const_err(c, i, rc, "an integer list") : 0;
}

int ck_int(ck *c, int i, int64_t *out)
{
    ck_src s;
    TRY_CK(ck_source(c, i, &s));
    int rc = mil_const_int(s.f, s.v, out);
    return rc ? const_err(c, i, rc, "an integer scalar") : 0;
}

int ck_bool(ck *c, int i, int *out)
{
    ck_src s;
    TRY_CK(ck_source(c, i, &s));
    int rc = mil_const_bool(s.f, s.v, out);
    return rc ? const_err(c, i, rc, "a bool scalar") : 0;
}

int ck_bools(ck *c, int i, int *out, int max, int *n)
{
    ck_src s;
    TRY_CK(ck_source(c, i, &s));
    int rc = mil_const_bools(s.f, s.v, out, max, n);
    return rc ? const_err(c, i, rc, "a bool list") : 0;
}

int ck_float(ck *c, int i, double *out)
{
    ck_src s;
    TRY_CK(ck_source(c, i, &s));
    int rc = mil_const_float(s.f, s.v, out);
    return rc ? const_err(c, i, rc, "a number") : 0;
}

int ck_str(ck *c, int i, const char **out)
{
    ck_src s;
    TRY_CK(ck_source(c, i, &s));
    int rc = mil_const_string(s.f, s.v, out);
    return rc ? const_err(c, i, rc, "a string") : 0;
}

int ck_axis(ck *c, int i, int64_t a, int rank, int64_t *out)
{
    if (a < -rank || a >= rank || rank == 0)
        return ck_err(c, i, ERR_SHAPE, "axis %lld is out of range for rank %d", (long long)a, rank);
    *out = a < 0 ? a + rank : a;
    return 0;
}

void ck_set_res(ck *c, int k, mil_dtype dt, int rank, const int64_t *shape)
{
    mil_type *t = &c->res[k];
    memset(t, 0, sizeof *t);
    t->kind = MIL_T_TENSOR;
    t->dtype = dt;
    t->rank = rank;
    for (int i = 0; i < rank; i++) t->shape[i] = shape[i];
    if (*c->nres < k + 1) *c->nres = k + 1;
}

int ck_broadcast(ck *c, int ia, int ib, const mil_type *a, const mil_type *b, int *rank,
                 int64_t *shape)
{
    int r = a->rank > b->rank ? a->rank : b->rank;
    for (int i = 0; i < r; i++) {
        int ai = a->rank - r + i, bi = b->rank - r + i;
        int64_t da = ai >= 0 ? a->shape[ai] : 1, db = bi >= 0 ? b->shape[bi] : 1;
        if (da != db && da != 1 && db != 1) {
            char sa[200], sb[200];
            return ck_err(c, ib, ERR_SHAPE, "shapes %s ('%s') and %s ('%s') do not broadcast",
                          ck_shape_str(a->rank, a->shape, sa, sizeof sa),
                          ia >= 0 ? c->spec[ia].name : "?",
                          ck_shape_str(b->rank, b->shape, sb, sizeof sb),
                          ib >= 0 ? c->spec[ib].name : "?");
        }
        shape[i] = da == 1 ? db : da;
    }
    *rank = r;
    return 0;
}

/* ======================================================================
 * one op
 * ====================================================================== */

int mil_infer_op(const mil_program *p, const mil_function *f, const mil_op *op, mil_type *res,
                 int *nres, ane_error *e)
{
    ck c;
    memset(&c, 0, sizeof c);
    c.p = p;
    c.f = f;
    c.op = op;
    c.e = e;
    c.opset = f->opset_version ? f->opset_version : 18;
    c.name = op->type ? op->type : "?";
    c.res = res;
    c.nres = nres;
    *nres = 0;
    mil_opkind k = mil_op_lookup(c.name);
    c.kind = k;
    if (k == MIL_OP_UNKNOWN) {
        static const char *const nested[] = {"cond", "while_loop", "make_list", "list_read",
                                             "list_write", "list_gather", "list_scatter",
                                             "list_length", NULL};
        for (int i = 0; nested[i]; i++)
            if (!strcmp(c.name, nested[i]))
                return ck_err(&c, -1, ERR_UNSUPPORTED,
                              "control-flow and list ops (nested blocks) are not supported");
        static const char *const out_of_scope[] = {"constexpr_lut_to_dense",
                                                   "constexpr_sparse_to_dense",
                                                   "constexpr_lut_to_sparse",
                                                   "constexpr_sparse_blockwise_shift_scale",
                                                   "einsum", NULL};
        for (int i = 0; out_of_scope[i]; i++)
            if (!strcmp(c.name, out_of_scope[i]))
                return ck_err(&c, -1, ERR_UNSUPPORTED, "op is not supported by ane");
        return mil_error_at(e, p, ERR_INVAL, op->line, op->col, "unknown op '%s'", c.name);
    }
    int since = mil_op_since(k);
    if (since > c.opset)
        return ck_err(&c, -1, ERR_UNSUPPORTED, "op needs ios%d or later (function is ios%d)", since,
                      c.opset);
    ck_rule rule = ck_rule_for(k);
    if (!rule) return ck_err(&c, -1, ERR_UNSUPPORTED, "op has no checking rule");
    int rc = rule(&c);
    if (rc) return rc;
    for (int i = 0; i < *nres; i++) {
        const mil_type *t = &res[i];
        if (t->kind != MIL_T_TENSOR) continue;
        int64_t n = 1;
        for (int d = 0; d < t->rank; d++) {
            if (t->shape[d] < 0 || (t->shape[d] && n > INT64_MAX / t->shape[d]))
                return ck_err(&c, -1, ERR_SHAPE, "result shape is too large");
            n *= t->shape[d];
        }
        if (n > ((int64_t)1 << 40)) return ck_err(&c, -1, ERR_SHAPE, "result shape is too large");
    }
    return 0;
}

/* ======================================================================
 * the whole program
 * ====================================================================== */

static void warn(const mil_check_opts *o, const mil_program *p, int line, int col, const char *fmt,
                 ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

static void warn(const mil_check_opts *o, const mil_program *p, int line, int col, const char *fmt,
                 ...)
{
    if (!o || !o->warn) return;
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ane_error w;
    err_clear(&w);
    mil_error_at(&w, p, ERR_INVAL, line, col, "warning: %s", msg);
    o->warn(o->warn_ud, w.msg);
}

/* string set for unique names (open addressing, sized for the function) */
typedef struct nameset {
    const char **slot;
    int *idx;
    size_t cap;
} nameset;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    while (*s) h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

/* Returns the index stored with an equal name already present, or -1 after inserting. */
static int nameset_add(nameset *s, const char *name, int idx)
{
    size_t i = hash_str(name) & (s->cap - 1);
    while (s->slot[i]) {
        if (!strcmp(s->slot[i], name)) return s->idx[i];
        i = (i + 1) & (s->cap - 1);
    }
    s->slot[i] = name;
    s->idx[i] = idx;
    return -1;
}

static int nameset_init(nameset *s, size_t n, ane_error *e)
{
    s->cap = 16;
    while (s->cap < 2 * n + 2) s->cap *= 2;
    s->slot = calloc(s->cap, sizeof *s->slot);
    s->idx = calloc(s->cap, sizeof *s->idx);
    if (!s->slot || !s->idx) {
        free(s->slot);
        free(s->idx);
        return err_set(e, ERR_NOMEM, "out of memory checking MIL");
    }
    return 0;
}

static void nameset_free(nameset *s)
{
    free(s->slot);
    free(s->idx);
}

static int reserved_name(const char *n)
{
    static const char *const kw[] = {"tensor", "state", "list", "tuple", "dict", "BLOBFILE",
                                     "program", "func", NULL};
    mil_dtype d;
    if (mil_dtype_lookup(n, &d) == 0) return 1;
    for (int i = 0; kw[i]; i++)
        if (!strcmp(kw[i], n)) return 1;
    return 0;
}

static int strict_dtype(mil_dtype d)
{
    return d == MIL_FP64 || d == MIL_INT64 || d == MIL_BF16 || d == MIL_UINT32;
}

/* A declared type. Zero-size dimensions are refused everywhere except in constants (an empty
 * list such as axes = []): no backend evaluates an empty tensor, and a kernel with one would
 * compile and load and then fail on every eval. */
static int check_decl_type(const mil_program *p, const mil_check_opts *o, const mil_value *v,
                           const char *what, int allow_empty, ane_error *e)
{
    const mil_type *t = &v->type;
    if (t->kind == MIL_T_TENSOR || t->kind == MIL_T_STATE) {
        for (int d = 0; d < t->rank; d++) {
            if (t->shape[d] < 0)
                return mil_error_at(e, p, ERR_SHAPE, v->line, v->col,
                                    "%s '%s' has an unknown dimension (shapes must be static)",
                                    what, v->name);
            if (t->shape[d] == 0 && !allow_empty)
                return mil_error_at(e, p, ERR_SHAPE, v->line, v->col,
                                    "%s '%s' has a zero-size dimension (dimension %d): only constants "
                                    "may be empty",
                                    what, v->name, d + 1);
        }
        if (o && o->strict && strict_dtype(t->dtype))
            return mil_error_at(e, p, ERR_TYPE, v->line, v->col,
                                "%s '%s' has dtype %s (strict mode: not supported)", what, v->name,
                                mil_dtype_name(t->dtype));
    }
    if (o && o->strict && v->name && reserved_name(v->name))
        return mil_error_at(e, p, ERR_INVAL, v->line, v->col,
                            "%s name '%s' is a type keyword (strict mode)", what, v->name);
    return 0;
}

/* Inputs the reference marks optional but the ANE compiler wants (7.4 #2, #3). */
static const struct {
    mil_opkind op;
    const char *input;
} practice_required[] = {
    {MIL_OP_matmul, "transpose_x"},
    {MIL_OP_matmul, "transpose_y"},
    {MIL_OP_concat, "interleave"},
};

static int check_function(const mil_program *p, const mil_function *f, const mil_check_opts *o,
                          ane_error *e)
{
    int rc = 0;
    if (f->opset_version < 15)
        return mil_error_at(e, p, ERR_INVAL, f->line, f->col,
                            "function '%s': unknown opset '%s' (expected ios15 ... ios18)",
                            f->name ? f->name : "?", f->opset ? f->opset : "");
    nameset names, labels;
    if ((rc = nameset_init(&names, (size_t)f->nvalues, e))) return rc;
    if ((rc = nameset_init(&labels, (size_t)f->nops, e))) {
        nameset_free(&names);
        return rc;
    }
    for (int i = 0; i < f->nparams; i++) {
        int vi = f->params[i];
        const mil_value *v = &f->values[vi];
        int prev = nameset_add(&names, v->name ? v->name : "", vi);
        if (prev >= 0) {
            rc = mil_error_at(e, p, ERR_INVAL, v->line, v->col,
                              "duplicate name '%s' (a function input has it already)", v->name);
            goto done;
        }
        if ((rc = check_decl_type(p, o, v, "function input", 0, e))) goto done;
    }
    for (int oi = 0; oi < f->nops; oi++) {
        const mil_op *op = &f->ops[oi];
        const char *opname = op->type ? op->type : "?";
        /* every operand refers to a definition that comes before this op */
        for (int pass = 0; pass < 2; pass++) {
            int nb = pass ? op->nattr : op->nin;
            const mil_binding *bs = pass ? op->attr : op->in;
            for (int bi = 0; bi < nb; bi++) {
                const mil_binding *b = &bs[bi];
                for (int m = 0; m < b->n; m++) {
                    int vi = b->values[m];
                    if (vi < 0 || vi >= f->nvalues) {
                        rc = mil_error_at(e, p, ERR_INVAL, b->line, b->col,
                                          "%s: input '%s' refers to no value", opname, b->name);
                        goto done;
                    }
                    const mil_value *v = &f->values[vi];
                    if (v->is_param || v->is_inline) continue;
                    if (v->def_op < 0) {
                        rc = mil_error_at(e, p, ERR_INVAL, b->line, b->col,
                                          "%s: undefined variable '%s'", opname,
                                          v->name ? v->name : "?");
                        goto done;
                    }
                    if (v->def_op >= oi) {
                        rc = mil_error_at(e, p, ERR_INVAL, b->line, b->col,
                                          "%s: '%s' is used before its definition (line %d)",
                                          opname, v->name ? v->name : "?", v->line);
                        goto done;
                    }
                }
            }
        }
        mil_type res[MIL_MAX_RESULTS];
        int nres = 0;
        if ((rc = mil_infer_op(p, f, op, res, &nres, e))) goto done;
        if (nres != op->nres) {
            rc = mil_error_at(e, p, ERR_INVAL, op->line, op->col,
                              "%s: declares %d result%s, the op produces %d", opname, op->nres,
                              op->nres == 1 ? "" : "s", nres);
            goto done;
        }
        for (int r = 0; r < nres; r++) {
            int vi = op->res[r];
            const mil_value *v = &f->values[vi];
            int prev = nameset_add(&names, v->name ? v->name : "", vi);
            if (prev >= 0) {
                rc = mil_error_at(e, p, ERR_INVAL, v->line, v->col,
                                  "duplicate name '%s' (first defined at line %d)", v->name,
                                  f->values[prev].line);
                goto done;
            }
            if ((rc = check_decl_type(p, o, v, "value", strcmp(opname, "const") == 0, e))) goto done;
            if (!ck_type_equal(&v->type, &res[r])) {
                char d[300], inf[300];
                rc = mil_error_at(e, p, ERR_TYPE, v->line, v->col,
                                  "%s: '%s' is declared %s but the op gives %s", opname, v->name,
                                  ck_type_str(&v->type, d, sizeof d),
                                  ck_type_str(&res[r], inf, sizeof inf));
                goto done;
            }
        }
        mil_opkind k = mil_op_lookup(opname);
        if (o && o->strict) {
            for (size_t i = 0; i < sizeof practice_required / sizeof practice_required[0]; i++)
                if (practice_required[i].op == k && !mil_op_input(op, practice_required[i].input)) {
                    rc = mil_error_at(e, p, ERR_INVAL, op->line, op->col,
                                      "%s: input '%s' must be given explicitly (strict mode)",
                                      opname, practice_required[i].input);
                    goto done;
                }
        }
        if (op->label) {
            int prev = nameset_add(&labels, op->label, oi);
            if (prev >= 0)
                warn(o, p, op->line, op->col, "%s: label '%s' is already used at line %d", opname,
                     op->label, f->ops[prev].line);
        }
        if (k == MIL_OP_const && nres == 1) {
            const mil_value *v = &f->values[op->res[0]];
            const mil_literal *l = v->lit;
            if (l && l->data && l->type.dtype == MIL_FP16 && l->form == MIL_LIT_DATA &&
                l->count == 1) {
                uint16_t h = ((const uint16_t *)l->data)[0];
                double dv = 0;
                mil_lit_float(l, 0, &dv);
                if ((h & 0x7c00) == 0 && (h & 0x03ff) != 0)
                    warn(o, p, v->line, v->col,
                         "const: fp16 value of '%s' is subnormal (%g); the ANE may flush it to 0",
                         v->name ? v->name : "?", dv);
            }
        }
    }
    for (int i = 0; i < f->nouts; i++) {
        int vi = f->outs[i];
        if (vi < 0 || vi >= f->nvalues) {
            rc = mil_error_at(e, p, ERR_INVAL, f->line, f->col, "output %d refers to no value", i);
            goto done;
        }
        const mil_value *v = &f->values[vi];
        if (!v->is_param && v->def_op < 0) {
            rc = mil_error_at(e, p, ERR_INVAL, v->line ? v->line : f->line,
                              v->line ? v->col : f->col, "output '%s' is not defined",
                              v->name ? v->name : "?");
            goto done;
        }
    }
done:
    nameset_free(&names);
    nameset_free(&labels);
    return rc;
}

int mil_check(mil_program *p, const mil_check_opts *o, ane_error *e)
{
    if (!p) return err_set(e, ERR_INVAL, "mil_check: no program");
    if (p->nfuncs < 1) return err_set(e, ERR_INVAL, "%s: program has no function",
                                      p->source_name ? p->source_name : "<string>");
    for (int i = 0; i < p->nfuncs; i++) {
        for (int j = 0; j < i; j++)
            if (p->funcs[i].name && p->funcs[j].name && !strcmp(p->funcs[i].name, p->funcs[j].name))
                return mil_error_at(e, p, ERR_INVAL, p->funcs[i].line, p->funcs[i].col,
                                    "duplicate function '%s'", p->funcs[i].name);
        int rc = check_function(p, &p->funcs[i], o, e);
        if (rc) return rc;
    }
    p->checked = 1;
    return 0;
}
