/* check_ops.c - one checking rule per MIL op (mil-reference.md section 8).
 *
 * Each rule binds its op's inputs as the signature table lists them (sig.c: required?, const?,
 * dtype set, domain letter, rank, first opset, default), letting ck_bind apply the generic
 * rules, then checks the op's own constraints and writes the result types. The enums at the top
 * of the rules name the positions of the inputs in the op's signature. Absent inputs read as
 * their signature defaults. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check_int.h"

#define TRY(x)                                                                                     \
    do {                                                                                           \
        int rc_ = (x);                                                                             \
        if (rc_) return rc_;                                                                       \
    } while (0)


static const char *sh(const mil_type *t, char *buf, size_t n)
{
    return ck_shape_str(t->rank, t->shape, buf, n);
}

static void copy_res(ck *c, int k, const mil_type *t) { ck_set_res(c, k, t->dtype, t->rank, t->shape); }

/* Normalised axis from const input i (or its default). */
static int read_axis(ck *c, int i, int rank, int64_t *ax)
{
    TRY(ck_int(c, i, ax));
    return ck_axis(c, i, *ax, rank, ax);
}

/* Input i's rank must lie in [lo, hi]; hi < 0: no upper bound. */
static int need_rank(ck *c, int i, int lo, int hi)
{
    int r = ck_t(c, i)->rank;
    if (r >= lo && (hi < 0 || r <= hi)) return 0;
    if (hi < 0)
        return ck_err(c, i, ERR_SHAPE, "%s must have rank %d or more, got %d", c->spec[i].name,
                      lo, r);
    return ck_err(c, i, ERR_SHAPE, "%s must have rank %d %s %d, got %d", c->spec[i].name, lo,
                  hi == lo + 1 ? "or" : "to", hi, r);
}

static int same_shape(const mil_type *t, int rank, const int64_t *shape)
{
    return t->rank == rank && !memcmp(t->shape, shape, sizeof(int64_t) * (size_t)rank);
}

/* Result k: t's shape with dim `axis` replaced by n. */
static void set_res_dim(ck *c, int k, mil_dtype dt, const mil_type *t, int64_t axis, int64_t n)
{
    int64_t out[MIL_MAX_RANK];
    memcpy(out, t->shape, sizeof(int64_t) * (size_t)t->rank);
    out[axis] = n;
    ck_set_res(c, k, dt, t->rank, out);
}

/* Const string input i, which must be dtype a or b ("output_dtype \"x\" is not a or b"). */
static int read_dtype2(ck *c, int i, const char *a, const char *b, mil_dtype *d)
{
    const char *od;
    TRY(ck_str(c, i, &od));
    if (strcmp(od, a) && strcmp(od, b))
        return ck_err(c, i, ERR_INVAL, "%s \"%s\" is not %s or %s", c->spec[i].name, od, a, b);
    mil_dtype_lookup(od, d);
    return 0;
}

/* Normalised, duplicate-free axes from const input i (or its default). */
static int read_axes(ck *c, int i, int rank, int64_t *axes, int *n)
{
    TRY(ck_ints(c, i, axes, MIL_MAX_RANK, n));
    for (int k = 0; k < *n; k++) {
        TRY(ck_axis(c, i, axes[k], rank, &axes[k]));
        for (int m = 0; m < k; m++)
            if (axes[m] == axes[k])
                return ck_err(c, i, ERR_INVAL, "axis %lld is listed twice", (long long)axes[k]);
    }
    return 0;
}

/* ======================================================================
 * 8.1 constants
 * ====================================================================== */

static int r_const(ck *c)
{
    TRY(ck_bind(c, NULL, 0));
    const mil_binding *val = NULL;
    for (int i = 0; i < c->op->nattr; i++)
        if (!strcmp(c->op->attr[i].name, "val")) val = &c->op->attr[i];
    if (!val) return ck_err(c, -1, ERR_INVAL, "missing attribute 'val'");
    if (val->is_tuple || val->n != 1)
        return mil_error_at(c->e, c->p, ERR_INVAL, val->line, val->col,
                            "const: attribute 'val' must be one literal");
    int v = val->values[0];
    const mil_literal *l = v >= 0 && v < c->f->nvalues ? c->f->values[v].lit : NULL;
    if (!l)
        return mil_error_at(c->e, c->p, ERR_INVAL, val->line, val->col,
                            "const: attribute 'val' must be a literal");
    if (l->type.kind != MIL_T_TENSOR)
        return mil_error_at(c->e, c->p, ERR_TYPE, val->line, val->col,
                            "const: attribute 'val' must be a tensor or scalar literal");
    copy_res(c, 0, &l->type);
    return 0;
}

static int r_constexpr_affine_dequantize(ck *c)
{
    enum { Q, ZP, SC, AX };
    TRY(ck_bind_op(c));
    const mil_type *q = ck_t(c, Q);
    int64_t ax;
    TRY(read_axis(c, AX, q->rank, &ax));
    for (int i = ZP; i <= SC; i++) {
        const mil_type *t = ck_t(c, i);
        if (t->rank == 1 && t->shape[0] != q->shape[ax])
            return ck_err(c, i, ERR_SHAPE, "%s has %lld values, axis %lld of the data has %lld",
                          c->spec[i].name, (long long)t->shape[0], (long long)ax,
                          (long long)q->shape[ax]);
    }
    ck_set_res(c, 0, ck_t(c, SC)->dtype, q->rank, q->shape);
    return 0;
}

static int r_constexpr_blockwise_shift_scale(ck *c)
{
    enum { DATA, SC, OFF };
    TRY(ck_bind_op(c));
    const mil_type *d = ck_t(c, DATA), *s = ck_t(c, SC);
    char a[200], b[200];
    if (s->rank != d->rank)
        return ck_err(c, SC, ERR_SHAPE, "scale has rank %d, data has rank %d", s->rank, d->rank);
    for (int i = 0; i < d->rank; i++)
        if (s->shape[i] < 1 || d->shape[i] % s->shape[i])
            return ck_err(c, SC, ERR_SHAPE, "scale shape %s does not divide data shape %s",
                          sh(s, a, sizeof a), sh(d, b, sizeof b));
    if (ck_has(c, OFF)) {
        const mil_type *o = ck_t(c, OFF);
        if (!ck_type_equal(o, s) && !(o->dtype == d->dtype || o->dtype == MIL_FP16 ||
                                      o->dtype == MIL_FP32))
            return ck_err(c, OFF, ERR_TYPE, "offset must be a float or have the data's dtype");
        if (!same_shape(o, s->rank, s->shape))
            return ck_err(c, OFF, ERR_SHAPE, "offset shape %s differs from scale shape %s",
                          sh(o, a, sizeof a), sh(s, b, sizeof b));
        int is_float = o->dtype == MIL_FP16 || o->dtype == MIL_FP32;
        if (!is_float && o->dtype != d->dtype)
            return ck_err(c, OFF, ERR_TYPE, "offset is %s, expected a float or %s (the data's)",
                          mil_dtype_name(o->dtype), mil_dtype_name(d->dtype));
    }
    ck_set_res(c, 0, s->dtype, d->rank, d->shape);
    return 0;
}

static int r_constexpr_cast(ck *c)
{
    enum { SRC, OD };
    TRY(ck_bind_op(c));
    const char *od;
    TRY(ck_str(c, OD, &od));
    if (strcmp(od, "fp32"))
        return ck_err(c, OD, ERR_INVAL, "output_dtype must be \"fp32\", got \"%s\"", od);
    const mil_type *t = ck_t(c, SRC);
    ck_set_res(c, 0, MIL_FP32, t->rank, t->shape);
    return 0;
}

/* ======================================================================
 * 8.2 elementwise binary
 * ====================================================================== */

static int binary(ck *c, int bool_out)
{
    TRY(ck_bind_op(c));
    int rank;
    int64_t shape[MIL_MAX_RANK];
    TRY(ck_broadcast(c, 0, 1, ck_t(c, 0), ck_t(c, 1), &rank, shape));
    ck_set_res(c, 0, bool_out ? MIL_BOOL : ck_t(c, 0)->dtype, rank, shape);
    return 0;
}

static int r_arith(ck *c) { return binary(c, 0); }
static int r_compare(ck *c) { return binary(c, 1); }

/* ======================================================================
 * 8.3 elementwise unary and activations
 * ====================================================================== */

/* Ops whose result is x's type once the inputs bind: unary ops, activations, identity. */
static int r_same(ck *c)
{
    TRY(ck_bind_op(c));
    copy_res(c, 0, ck_t(c, 0));
    return 0;
}

static int r_clip(ck *c)
{
    /* clip keeps alpha/beta in T even from ios17 (7.2) */
    TRY(ck_bind_op(c));
    if (c->opset >= 17 && ck_known(c, 1) && ck_known(c, 2)) {
        double a, b;
        TRY(ck_float(c, 1, &a));
        TRY(ck_float(c, 2, &b));
        if (!(a < b)) return ck_err(c, 2, ERR_INVAL, "alpha (%g) must be less than beta (%g)", a, b);
    }
    copy_res(c, 0, ck_t(c, 0));
    return 0;
}

static int r_gelu(ck *c)
{
    TRY(ck_bind_op(c));
    const char *m;
    TRY(ck_str(c, 1, &m));
    if (strcmp(m, "EXACT") && strcmp(m, "TANH_APPROXIMATION") && strcmp(m, "SIGMOID_APPROXIMATION"))
        return ck_err(c, 1, ERR_INVAL,
                      "mode \"%s\" is not EXACT, TANH_APPROXIMATION or SIGMOID_APPROXIMATION", m);
    copy_res(c, 0, ck_t(c, 0));
    return 0;
}

static int r_prelu(ck *c)
{
    TRY(ck_bind_op(c));
    const mil_type *x = ck_t(c, 0), *a = ck_t(c, 1);
    TRY(need_rank(c, 0, 3, 5));
    if (a->shape[0] != x->shape[1])
        return ck_err(c, 1, ERR_SHAPE, "alpha has %lld values, x has %lld channels",
                      (long long)a->shape[0], (long long)x->shape[1]);
    copy_res(c, 0, x);
    return 0;
}

/* ======================================================================
 * 8.4 cast
 * ====================================================================== */

static int r_cast(ck *c)
{
    TRY(ck_bind_op(c));
    uint32_t dts = c->spec[0].dtypes; /* the targets are the dtypes x may have */
    const char *name;
    TRY(ck_str(c, 1, &name));
    mil_dtype d;
    if (mil_dtype_lookup(name, &d) || !((dts >> d) & 1))
        return ck_err(c, 1, ERR_INVAL, "cannot cast to \"%s\"%s", name,
                      c->opset >= 17 ? "" : " (ios15/16: fp16, fp32, int32 or bool)");
    const mil_type *x = ck_t(c, 0);
    ck_set_res(c, 0, d, x->rank, x->shape);
    return 0;
}

/* ======================================================================
 * 8.5 softmax and normalisation
 * ====================================================================== */

static int r_softmax(ck *c)
{
    TRY(ck_bind_op(c));
    int64_t ax;
    TRY(read_axis(c, 1, ck_t(c, 0)->rank, &ax));
    copy_res(c, 0, ck_t(c, 0));
    return 0;
}

static int check_vec(ck *c, int i, int64_t want, const char *what)
{
    const mil_type *t = ck_t(c, i);
    if (t->rank != 1 || t->shape[0] != want) {
        char b[200];
        return ck_err(c, i, ERR_SHAPE, "%s has shape %s, expected [%lld] (%s)", c->spec[i].name,
                      sh(t, b, sizeof b), (long long)want, what);
    }
    return 0;
}

static int r_layer_norm(ck *c)
{
    enum { X, AXES, G, B, EPS };
    TRY(ck_bind_op(c));
    const mil_type *x = ck_t(c, X);
    int64_t axes[MIL_MAX_RANK];
    int n;
    TRY(read_axes(c, AXES, x->rank, axes, &n));
    int64_t want[MIL_MAX_RANK];
    for (int k = 0; k < n; k++) want[k] = x->shape[axes[k]];
    for (int i = G; i <= B; i++) {
        if (!ck_has(c, i)) continue;
        const mil_type *t = ck_t(c, i);
        if (!same_shape(t, n, want)) {
            char a[200], b[200];
            return ck_err(c, i, ERR_SHAPE, "%s has shape %s, expected %s (x's shape on axes)",
                          c->spec[i].name, sh(t, a, sizeof a), ck_shape_str(n, want, b, sizeof b));
        }
    }
    copy_res(c, 0, x);
    return 0;
}

static int r_batch_norm(ck *c)
{
    enum { X, MEAN, VAR, G, B, EPS };
    TRY(ck_bind_op(c));
    const mil_type *x = ck_t(c, X);
    TRY(need_rank(c, X, 3, 5));
    for (int i = MEAN; i <= B; i++)
        if (ck_has(c, i)) TRY(check_vec(c, i, x->shape[1], "x's channels"));
    copy_res(c, 0, x);
    return 0;
}

static int r_instance_norm(ck *c)
{
    enum { X, G, B, EPS };
    TRY(ck_bind_op(c));
    const mil_type *x = ck_t(c, X);
    TRY(need_rank(c, X, 3, 4));
    for (int i = G; i <= B; i++)
        if (ck_has(c, i)) TRY(check_vec(c, i, x->shape[1], "x's channels"));
    copy_res(c, 0, x);
    return 0;
}

static int r_l2_norm(ck *c)
{
    TRY(ck_bind_op(c));
    TRY(need_rank(c, 0, 3, -1));
    copy_res(c, 0, ck_t(c, 0));
    return 0;
}

static int r_local_response_norm(ck *c)
{
    TRY(ck_bind_op(c));
    TRY(need_rank(c, 0, 3, -1));
    int64_t size;
    TRY(ck_int(c, 1, &size));
    if (size < 1) return ck_err(c, 1, ERR_INVAL, "size must be at least 1, got %lld", (long long)size);
    copy_res(c, 0, ck_t(c, 0));
    return 0;
}

/* ======================================================================
 * 8.6 linear algebra
 * ====================================================================== */

/* strides/dilations (n values >= 1) */
static int read_spatial(ck *c, int i, int nsp, int64_t *out)
{
    int n;
    TRY(ck_ints(c, i, out, MIL_MAX_RANK, &n));
    if (n != nsp)
        return ck_err(c, i, ERR_SHAPE, "%s has %d values, expected %d (one per spatial axis)",
                      c->spec[i].name, n, nsp);
    for (int k = 0; k < nsp; k++)
        if (out[k] < 1)
            return ck_err(c, i, ERR_INVAL, "%s must be at least 1, got %lld", c->spec[i].name,
                          (long long)out[k]);
    return 0;
}

static int read_pad(ck *c, int i, int nsp, int64_t *pad)
{
    int n;
    TRY(ck_ints(c, i, pad, 2 * MIL_MAX_RANK, &n));
    if (n != 2 * nsp)
        return ck_err(c, i, ERR_SHAPE, "pad has %d values, expected %d (before and after per "
                      "spatial axis)", n, 2 * nsp);
    for (int k = 0; k < n; k++)
        if (pad[k] < 0)
            return ck_err(c, i, ERR_INVAL, "pad values must be >= 0, got %lld", (long long)pad[k]);
    return 0;
}

/* conv and conv_transpose: x [N, C, spatial...] of rank 3 to 5, a weight of the same rank,
 * groups >= 1. */
static int conv_ranks_groups(ck *c, int xi, int wi, int gi, int64_t *g)
{
    const mil_type *x = ck_t(c, xi), *w = ck_t(c, wi);
    if (x->rank < 3 || x->rank > 5)
        return ck_err(c, xi, ERR_SHAPE, "x has %d dims, expected 3 to 5 ([N, C, spatial...])",
                      x->rank);
    if (w->rank != x->rank)
        return ck_err(c, wi, ERR_SHAPE, "weight has %d dims, expected %d", w->rank, x->rank);
    TRY(ck_int(c, gi, g));
    if (*g < 1)
        return ck_err(c, gi, ERR_INVAL, "groups must be at least 1, got %lld", (long long)*g);
    return 0;
}

static int r_conv(ck *c)
{
    enum { X, W, BIAS, STR, PT, PAD, DIL, GR };
    TRY(ck_bind_op(c));
    const mil_type *x = ck_t(c, X), *w = ck_t(c, W);
    int64_t g;
    TRY(conv_ranks_groups(c, X, W, GR, &g));
    int nsp = x->rank - 2;
    int64_t cin = x->shape[1], cout = w->shape[0];
    if (cin % g)
        return ck_err(c, GR, ERR_SHAPE, "x has %lld channels, not divisible by groups = %lld",
                      (long long)cin, (long long)g);
    if (cout % g)
        return ck_err(c, GR, ERR_SHAPE,
                      "weight has %lld output channels, not divisible by groups = %lld",
                      (long long)cout, (long long)g);
    if (w->shape[1] * g != cin)
        return ck_err(c, W, ERR_SHAPE,
                      "weight has %lld input channels per group, x has %lld channels / %lld "
                      "groups = %lld",
                      (long long)w->shape[1], (long long)cin, (long long)g, (long long)(cin / g));
    if (ck_has(c, BIAS)) TRY(check_vec(c, BIAS, cout, "the weight's output channels"));
    int64_t st[MIL_MAX_RANK], dil[MIL_MAX_RANK], pad[2 * MIL_MAX_RANK];
    TRY(read_spatial(c, STR, nsp, st));
    TRY(read_spatial(c, DIL, nsp, dil));
    TRY(read_pad(c, PAD, nsp, pad));
    if (!ck_const(c, W))
        for (int k = 0; k < nsp; k++)
            if (dil[k] != 1)
                return ck_err(c, DIL, ERR_INVAL, "dilations must be 1 when weight is not a "
                              "constant");
    const char *pt;
    TRY(ck_str(c, PT, &pt));
    int mode; /* 0 valid, 1 custom, 2 same, 3 same_lower */
    if (!strcmp(pt, "valid")) mode = 0;
    else if (!strcmp(pt, "custom")) mode = 1;
    else if (!strcmp(pt, "same")) mode = 2;
    else if (!strcmp(pt, "same_lower") && c->opset >= 16) mode = 3;
    else
        return ck_err(c, PT, ERR_INVAL, "pad_type \"%s\" is not valid, custom, same%s", pt,
                      c->opset >= 16 ? " or same_lower" : "");
    int64_t out[MIL_MAX_RANK];
    out[0] = x->shape[0];
    out[1] = cout;
    for (int k = 0; k < nsp; k++) {
        int64_t d = x->shape[2 + k], kk = w->shape[2 + k];
        int64_t keff = (kk - 1) * dil[k] + 1, o;
        if (mode >= 2) {
            o = (d + st[k] - 1) / st[k];
        } else {
            int64_t before = mode == 1 ? pad[2 * k] : 0, after = mode == 1 ? pad[2 * k + 1] : 0;
            int64_t span = d + before + after - keff;
            o = span < 0 ? 0 : span / st[k] + 1;
        }
        if (o < 1)
            return ck_err(c, W, ERR_SHAPE,
                          "output size along spatial axis %d would be %lld (input %lld, kernel "
                          "%lld, dilation %lld)",
                          k, (long long)o, (long long)d, (long long)kk, (long long)dil[k]);
        out[2 + k] = o;
    }
    ck_set_res(c, 0, x->dtype, x->rank, out);
    return 0;
}

static int r_conv_transpose(ck *c)
{
    enum { X, W, BIAS, PAD, OS, PT, STR, DIL, GR };
    TRY(ck_bind_op(c));
    const mil_type *x = ck_t(c, X), *w = ck_t(c, W);
    int64_t g;
    TRY(conv_ranks_groups(c, X, W, GR, &g));
    int nsp = x->rank - 2;
    int64_t cin = x->shape[1];
    if (w->shape[0] != cin)
        return ck_err(c, W, ERR_SHAPE, "weight has %lld input channels (dim 0), x has %lld",
                      (long long)w->shape[0], (long long)cin);
    if (cin % g)
        return ck_err(c, GR, ERR_SHAPE, "x has %lld channels, not divisible by groups = %lld",
                      (long long)cin, (long long)g);
    int64_t cout = w->shape[1] * g;
    if (ck_has(c, BIAS)) TRY(check_vec(c, BIAS, cout, "the output channels"));
    int64_t st[MIL_MAX_RANK], dil[MIL_MAX_RANK], pad[2 * MIL_MAX_RANK];
    TRY(read_spatial(c, STR, nsp, st));
    TRY(read_spatial(c, DIL, nsp, dil));
    TRY(read_pad(c, PAD, nsp, pad));
    const char *pt;
    TRY(ck_str(c, PT, &pt));
    int mode;
    if (!strcmp(pt, "valid")) mode = 0;
    else if (!strcmp(pt, "custom")) mode = 1;
    else if (!strcmp(pt, "same")) mode = 2;
    else return ck_err(c, PT, ERR_INVAL, "pad_type \"%s\" is not valid, custom or same", pt);
    int64_t out[MIL_MAX_RANK];
    out[0] = x->shape[0];
    out[1] = cout;
    if (ck_has(c, OS)) {
        int64_t os[MIL_MAX_RANK];
        int n;
        TRY(ck_ints(c, OS, os, MIL_MAX_RANK, &n));
        if (n == x->rank) {
            if (os[0] != out[0] || os[1] != cout)
                return ck_err(c, OS, ERR_SHAPE, "output_shape starts [%lld, %lld], expected "
                              "[%lld, %lld]", (long long)os[0], (long long)os[1],
                              (long long)out[0], (long long)cout);
            for (int k = 0; k < nsp; k++) out[2 + k] = os[2 + k];
        } else if (n == nsp) {
            for (int k = 0; k < nsp; k++) out[2 + k] = os[k];
        } else {
            return ck_err(c, OS, ERR_SHAPE, "output_shape has %d values, expected %d or %d", n,
                          x->rank, nsp);
        }
        for (int k = 0; k < nsp; k++)
            if (out[2 + k] < 1)
                return ck_err(c, OS, ERR_SHAPE, "output_shape values must be >= 1");
    } else {
        for (int k = 0; k < nsp; k++) {
            int64_t d = x->shape[2 + k], keff = (w->shape[2 + k] - 1) * dil[k] + 1, o;
            if (mode == 2) o = d * st[k];
            else o = (d - 1) * st[k] + keff - (mode == 1 ? pad[2 * k] + pad[2 * k + 1] : 0);
            if (o < 1)
                return ck_err(c, PAD, ERR_SHAPE, "output size along spatial axis %d would be "
                              "%lld", k, (long long)o);
            out[2 + k] = o;
        }
    }
    ck_set_res(c, 0, x->dtype, x->rank, out);
    return 0;
}

static int r_matmul(ck *c)
{
    enum { X, Y, TX, TY };
    TRY(ck_bind_op(c));
    const mil_type *x = ck_t(c, X), *y = ck_t(c, Y);
    mil_dtype dt = x->dtype;
    if (x->dtype != y->dtype) {
        int cx = ck_const(c, X), cy = ck_const(c, Y);
        if (cx == cy)
            return ck_err(c, Y, ERR_TYPE,
                          "x is %s and y is %s: operands of different dtypes need exactly one "
                          "constant operand",
                          mil_dtype_name(x->dtype), mil_dtype_name(y->dtype));
        dt = cx ? y->dtype : x->dtype;
    }
    int tx, ty;
    TRY(ck_bool(c, TX, &tx));
    TRY(ck_bool(c, TY, &ty));
    if (x->rank < 1 || y->rank < 1)
        return ck_err(c, x->rank < 1 ? X : Y, ERR_SHAPE, "operands must have rank 1 or more");
    if (tx && x->rank == 1) return ck_err(c, TX, ERR_SHAPE, "transpose_x needs x of rank 2 or more");
    if (ty && y->rank == 1) return ck_err(c, TY, ERR_SHAPE, "transpose_y needs y of rank 2 or more");
    mil_type xs = *x, ys = *y;
    if (xs.rank == 1) xs.rank = 2, xs.shape[1] = xs.shape[0], xs.shape[0] = 1;
    if (ys.rank == 1) ys.rank = 2, ys.shape[1] = 1;
    if (tx) {
        int64_t t = xs.shape[xs.rank - 1];
        xs.shape[xs.rank - 1] = xs.shape[xs.rank - 2], xs.shape[xs.rank - 2] = t;
    }
    if (ty) {
        int64_t t = ys.shape[ys.rank - 1];
        ys.shape[ys.rank - 1] = ys.shape[ys.rank - 2], ys.shape[ys.rank - 2] = t;
    }
    int64_t m = xs.shape[xs.rank - 2], kx = xs.shape[xs.rank - 1];
    int64_t ky = ys.shape[ys.rank - 2], n = ys.shape[ys.rank - 1];
    char a[200], b[200];
    if (kx != ky)
        return ck_err(c, Y, ERR_SHAPE,
                      "inner dimensions differ: x %s%s gives K = %lld, y %s%s gives K = %lld",
                      sh(x, a, sizeof a), tx ? " (transposed)" : "", (long long)kx,
                      sh(y, b, sizeof b), ty ? " (transposed)" : "", (long long)ky);
    mil_type bx = xs, by = ys;
    bx.rank -= 2;
    by.rank -= 2;
    int64_t out[MIL_MAX_RANK + 2];
    int br;
    if (ck_broadcast(c, X, Y, &bx, &by, &br, out)) {
        err_clear(c->e);
        return ck_err(c, Y, ERR_SHAPE, "batch dimensions of x %s and y %s do not broadcast",
                      sh(x, a, sizeof a), sh(y, b, sizeof b));
    }
    int r = br;
    if (x->rank > 1) out[r++] = m;
    if (y->rank > 1) out[r++] = n;
    if (r > MIL_MAX_RANK) return ck_err(c, -1, ERR_SHAPE, "result rank exceeds %d", MIL_MAX_RANK);
    ck_set_res(c, 0, dt, r, out);
    return 0;
}

static int r_linear(ck *c)
{
    enum { X, W, B };
    TRY(ck_bind_op(c));
    const mil_type *x = ck_t(c, X), *w = ck_t(c, W);
    TRY(need_rank(c, X, 1, 3));
    if (w->shape[1] != x->shape[x->rank - 1])
        return ck_err(c, W, ERR_SHAPE, "weight has %lld input features, x has %lld",
                      (long long)w->shape[1], (long long)x->shape[x->rank - 1]);
    if (ck_has(c, B)) TRY(check_vec(c, B, w->shape[0], "the weight's output features"));
    set_res_dim(c, 0, x->dtype, x, x->rank - 1, w->shape[0]);
    return 0;
}

/* ======================================================================
 * 8.7 reductions
 * ====================================================================== */

static int r_reduce(ck *c)
{
    enum { X, AXES, KEEP };
    TRY(ck_bind_op(c));
    const mil_type *x = ck_t(c, X);
    int64_t axes[MIL_MAX_RANK];
    int n, keep;
    TRY(read_axes(c, AXES, x->rank, axes, &n));
    TRY(ck_bool(c, KEEP, &keep));
    int red[MIL_MAX_RANK] = {0};
    for (int k = 0; k < n; k++) red[axes[k]] = 1;
    int64_t out[MIL_MAX_RANK];
    int r = 0;
    for (int i = 0; i < x->rank; i++) {
        if (!red[i]) out[r++] = x->shape[i];
        else if (keep) out[r++] = 1;
    }
    ck_set_res(c, 0, x->dtype, r, out);
    return 0;
}

static int r_reduce_arg(ck *c)
{
    enum { X, AX, KEEP, OD };
    TRY(ck_bind_op(c));
    const mil_type *x = ck_t(c, X);
    int64_t ax;
    int keep;
    TRY(read_axis(c, AX, x->rank, &ax));
    TRY(ck_bool(c, KEEP, &keep));
    mil_dtype d;
    TRY(read_dtype2(c, OD, "int32", "uint16", &d));
    int64_t out[MIL_MAX_RANK];
    int r = 0;
    for (int i = 0; i < x->rank; i++) {
        if (i != ax) out[r++] = x->shape[i];
        else if (keep) out[r++] = 1;
    }
    ck_set_res(c, 0, d, r, out);
    return 0;
}

/* ======================================================================
 * 8.8 shape and data movement
 * ====================================================================== */

static int64_t numel(int rank, const int64_t *s)
{
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= s[i];
    return n;
}

static const char *ints_str(int n, const int64_t *v, char *buf, size_t cap)
{
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < n && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", i ? ", " : "", (long long)v[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
    return buf;
}

static int r_reshape(ck *c)
{
    TRY(ck_bind_op(c));
    const mil_type *x = ck_t(c, 0);
    int64_t s[MIL_MAX_RANK], given[MIL_MAX_RANK];
    int n;
    TRY(ck_ints(c, 1, s, MIL_MAX_RANK, &n));
    memcpy(given, s, sizeof s);
    int infer = -1;
    char a[200], b[200];
    for (int i = 0; i < n; i++) {
        if (s[i] == -1) {
            if (infer >= 0) return ck_err(c, 1, ERR_SHAPE, "shape has more than one -1");
            infer = i;
        } else if (s[i] == 0) {
            if (c->opset >= 17) {
                int j = x->rank - n + i; /* zeros pair with x's dims from the right */
                s[i] = j >= 0 ? x->shape[j] : 1;
            } else {
                if (n != x->rank)
                    return ck_err(c, 1, ERR_SHAPE, "0 in shape copies a dim of x and needs %d "
                                  "values (x's rank), got %d", x->rank, n);
                s[i] = x->shape[i];
            }
        } else if (s[i] < 0) {
            return ck_err(c, 1, ERR_SHAPE, "shape value %lld is invalid", (long long)s[i]);
        }
    }
    int64_t total = numel(x->rank, x->shape);
    if (infer >= 0) {
        int64_t rest = 1;
        for (int i = 0; i < n; i++)
            if (i != infer) rest *= s[i];
        if (rest == 0 || total % rest)
            return ck_err(c, 1, ERR_SHAPE, "cannot reshape %s (%lld elements) into %s",
                          sh(x, a, sizeof a), (long long)total, ints_str(n, given, b, sizeof b));
        s[infer] = total / rest;
    }
    if (numel(n, s) != total) {
        return ck_err(c, 1, ERR_SHAPE, "cannot reshape %s (%lld elements) into %s (%lld elements)",
                      sh(x, a, sizeof a), (long long)total, ck_shape_str(n, s, b, sizeof b),
                      (long long)numel(n, s));
    }
    ck_set_res(c, 0, x->dtype, n, s);
    return 0;
}

static int r_transpose(ck *c)
{
    TRY(ck_bind_op(c));
    const mil_type *x = ck_t(c, 0);
    int64_t perm[MIL_MAX_RANK], out[MIL_MAX_RANK];
    int n;
    TRY(ck_ints(c, 1, perm, MIL_MAX_RANK, &n));
    if (n != x->rank)
        return ck_err(c, 1, ERR_SHAPE, "perm has %d values, x has rank %d", n, x->rank);
    int seen[MIL_MAX_RANK] = {0};
    for (int i = 0; i < n; i++) {
        int64_t p;
        TRY(ck_axis(c, 1, perm[i], n, &p));
        if (seen[p]++) return ck_err(c, 1, ERR_INVAL, "perm is not a permutation (%lld repeats)", (long long)p);
        out[i] = x->shape[p];
    }
    ck_set_res(c, 0, x->dtype, n, out);
    return 0;
}

static int r_expand_dims(ck *c)
{
    TRY(ck_bind_op(c));
    const mil_type *x = ck_t(c, 0);
    int64_t axes[MIL_MAX_RANK];
    int n;
    TRY(ck_ints(c, 1, axes, MIL_MAX_RANK, &n));
    if (n < 1) return ck_err(c, 1, ERR_SHAPE, "axes is empty");
    int r = x->rank + n;
    if (r > MIL_MAX_RANK) return ck_err(c, 1, ERR_SHAPE, "result rank %d exceeds %d", r, MIL_MAX_RANK);
    int ins[MIL_MAX_RANK] = {0};
    for (int k = 0; k < n; k++) {
        int64_t a;
        TRY(ck_axis(c, 1, axes[k], r, &a));
        if (ins[a]++) return ck_err(c, 1, ERR_INVAL, "axis %lld is listed twice", (long long)a);
    }
    int64_t out[MIL_MAX_RANK];
    for (int i = 0, j = 0; i < r; i++) out[i] = ins[i] ? 1 : x->shape[j++];
    ck_set_res(c, 0, x->dtype, r, out);
    return 0;
}

static int r_squeeze(ck *c)
{
    TRY(ck_bind_op(c));
    const mil_type *x = ck_t(c, 0);
    int64_t axes[MIL_MAX_RANK], out[MIL_MAX_RANK];
    int n, drop[MIL_MAX_RANK] = {0}, r = 0;
    TRY(read_axes(c, 1, x->rank, axes, &n));
    for (int k = 0; k < n; k++) drop[axes[k]] = x->shape[axes[k]] == 1; /* others kept (8.8) */
    for (int i = 0; i < x->rank; i++)
        if (!drop[i]) out[r++] = x->shape[i];
    ck_set_res(c, 0, x->dtype, r, out);
    return 0;
}

static int r_slice_by_size(ck *c)
{
    enum { X, BEGIN, SIZE };
    TRY(ck_bind_op(c));
    const mil_type *x = ck_t(c, X);
    int64_t size[MIL_MAX_RANK], begin[MIL_MAX_RANK], out[MIL_MAX_RANK];
    int n, nb = 0, has_begin = ck_known(c, BEGIN);
    if (ck_t(c, BEGIN)->shape[0] != x->rank)
        return ck_err(c, BEGIN, ERR_SHAPE, "begin has %lld values, x has rank %d",
                      (long long)ck_t(c, BEGIN)->shape[0], x->rank);
    TRY(ck_ints(c, SIZE, size, MIL_MAX_RANK, &n));
    if (n != x->rank) return ck_err(c, SIZE, ERR_SHAPE, "size has %d values, x has rank %d", n, x->rank);
    if (has_begin) TRY(ck_ints(c, BEGIN, begin, MIL_MAX_RANK, &nb));
    for (int i = 0; i < n; i++) {
        int64_t d = x->shape[i];
        if (size[i] == 0 || size[i] < -1)
            return ck_err(c, SIZE, ERR_SHAPE, "size[%d] = %lld (must be >= 1 or -1)", i,
                          (long long)size[i]);
        if (!has_begin) {
            if (size[i] == -1)
                return ck_err(c, BEGIN, ERR_INVAL, "begin must be a constant when size has -1");
            if (size[i] > d)
                return ck_err(c, SIZE, ERR_SHAPE, "size[%d] = %lld exceeds dim %lld", i,
                              (long long)size[i], (long long)d);
            out[i] = size[i];
            continue;
        }
        int64_t b = begin[i] < 0 ? begin[i] + d : begin[i];
        if (b < 0 || b >= d)
            return ck_err(c, BEGIN, ERR_SHAPE, "begin[%d] = %lld is out of range for dim %lld", i,
                          (long long)begin[i], (long long)d);
        int64_t s = size[i] == -1 ? d - b : size[i];
        if (b + s > d)
            return ck_err(c, SIZE, ERR_SHAPE,
                          "slice [%lld, %lld) on axis %d exceeds dim %lld", (long long)b,
                          (long long)(b + s), i, (long long)d);
        out[i] = s;
    }
    ck_set_res(c, 0, x->dtype, n, out);
    return 0;
}

/* Shape of x[begin:end:stride] with masks (NumPy rules); the squeezed axes are dropped. x is
 * input 0; BEGIN, END, STRIDE, BMASK, EMASK, SMASK are inputs b0 .. b0+5. */
static int slice_shape(ck *c, int b0, int *rank, int64_t *out)
{
    const mil_type *x = ck_t(c, 0);
    int r = x->rank;
    int64_t be[MIL_MAX_RANK], en[MIL_MAX_RANK], st[MIL_MAX_RANK];
    int bm[MIL_MAX_RANK] = {0}, em[MIL_MAX_RANK] = {0}, sm[MIL_MAX_RANK] = {0};
    int n;
    TRY(ck_ints(c, b0, be, MIL_MAX_RANK, &n));
    if (n != r) return ck_err(c, b0, ERR_SHAPE, "begin has %d values, x has rank %d", n, r);
    TRY(ck_ints(c, b0 + 1, en, MIL_MAX_RANK, &n));
    if (n != r) return ck_err(c, b0 + 1, ERR_SHAPE, "end has %d values, x has rank %d", n, r);
    TRY(ck_ints(c, b0 + 2, st, MIL_MAX_RANK, &n));
    if (n != r) return ck_err(c, b0 + 2, ERR_SHAPE, "stride has %d values, x has rank %d", n, r);
    int *masks[3] = {bm, em, sm};
    for (int k = 0; k < 3; k++) {
        TRY(ck_bools(c, b0 + 3 + k, masks[k], MIL_MAX_RANK, &n));
        if (n != r)
            return ck_err(c, b0 + 3 + k, ERR_SHAPE, "%s has %d values, x has rank %d",
                          c->spec[b0 + 3 + k].name, n, r);
    }
    int o = 0;
    for (int i = 0; i < r; i++) {
        int64_t d = x->shape[i], s = st[i];
        if (s == 0) return ck_err(c, b0 + 2, ERR_INVAL, "stride[%d] is 0", i);
        if (sm[i]) {
            int64_t b = be[i] < 0 ? be[i] + d : be[i];
            if (b < 0 || b >= d)
                return ck_err(c, b0, ERR_SHAPE, "begin[%d] = %lld is out of range for dim %lld "
                              "(squeezed axis)", i, (long long)be[i], (long long)d);
            continue;
        }
        int64_t b = be[i] < 0 ? be[i] + d : be[i], e = en[i] < 0 ? en[i] + d : en[i], len;
        if (s > 0) {
            b = bm[i] ? 0 : b < 0 ? 0 : b > d ? d : b;
            e = em[i] ? d : e < 0 ? 0 : e > d ? d : e;
            len = e > b ? (e - b + s - 1) / s : 0;
        } else {
            b = bm[i] ? d - 1 : b < -1 ? -1 : b > d - 1 ? d - 1 : b;
            e = em[i] ? -1 : e < -1 ? -1 : e > d - 1 ? d - 1 : e;
            len = b > e ? (b - e + (-s) - 1) / (-s) : 0;
        }
        if (len < 1)
            return ck_err(c, b0 + 1, ERR_SHAPE, "the slice along axis %d is empty", i);
        out[o++] = len;
    }
    *rank = o;
    return 0;
}

static int r_slice_by_index(ck *c)
{
    TRY(ck_bind_op(c));
    int r;
    int64_t out[MIL_MAX_RANK];
    TRY(slice_shape(c, 1, &r, out));
    ck_set_res(c, 0, ck_t(c, 0)->dtype, r, out);
    return 0;
}

static int r_slice_update(ck *c)
{
    enum { X, UPD, BEGIN };
    TRY(ck_bind_op(c));
    int r;
    int64_t out[MIL_MAX_RANK];
    TRY(slice_shape(c, BEGIN, &r, out));
    const mil_type *u = ck_t(c, UPD);
    if (!same_shape(u, r, out)) {
        char a[200], b[200];
        return ck_err(c, UPD, ERR_SHAPE, "update has shape %s, the slice has %s",
                      sh(u, a, sizeof a), ck_shape_str(r, out, b, sizeof b));
    }
    copy_res(c, 0, ck_t(c, 0));
    return 0;
}

static int r_concat(ck *c)
{
    enum { VALS, AX, IL };
    TRY(ck_bind_op(c));
    const mil_binding *vb = c->in[VALS];
    const mil_type *t0 = &c->f->values[vb->values[0]].type;
    int64_t ax;
    int il;
    TRY(read_axis(c, AX, t0->rank, &ax));
    TRY(ck_bool(c, IL, &il));
    int64_t out[MIL_MAX_RANK];
    memcpy(out, t0->shape, sizeof(int64_t) * (size_t)t0->rank);
    out[ax] = 0;
    for (int k = 0; k < vb->n; k++) {
        const mil_type *t = &c->f->values[vb->values[k]].type;
        char a[200], b[200];
        if (t->rank != t0->rank)
            return ck_err(c, VALS, ERR_SHAPE, "values[%d] has rank %d, values[0] has rank %d", k,
                          t->rank, t0->rank);
        for (int i = 0; i < t->rank; i++)
            if ((i != ax || il) && t->shape[i] != t0->shape[i])
                return ck_err(c, VALS, ERR_SHAPE,
                              "values[%d] has shape %s, values[0] has %s (only axis %lld may "
                              "differ%s)",
                              k, sh(t, a, sizeof a), sh(t0, b, sizeof b), (long long)ax,
                              il ? ", and not with interleave" : "");
        out[ax] += t->shape[ax];
    }
    ck_set_res(c, 0, t0->dtype, t0->rank, out);
    return 0;
}

static int r_split(ck *c)
{
    enum { X, AX, NUM, SIZES };
    TRY(ck_bind_op(c));
    const mil_type *x = ck_t(c, X);
    int64_t ax;
    TRY(read_axis(c, AX, x->rank, &ax));
    int64_t d = x->shape[ax], sizes[MIL_MAX_RESULTS];
    int n = 0;
    if (!ck_has(c, NUM) && !ck_has(c, SIZES))
        return ck_err(c, -1, ERR_INVAL, "needs num_splits or split_sizes");
    if (ck_has(c, SIZES)) {
        if (ck_t(c, SIZES)->shape[0] > MIL_MAX_RESULTS)
            return ck_err(c, SIZES, ERR_SHAPE, "more than %d splits", MIL_MAX_RESULTS);
        TRY(ck_ints(c, SIZES, sizes, MIL_MAX_RESULTS, &n));
        int64_t sum = 0;
        for (int k = 0; k < n; k++) {
            if (sizes[k] < 1)
                return ck_err(c, SIZES, ERR_SHAPE, "split_sizes[%d] = %lld (must be >= 1)", k,
                              (long long)sizes[k]);
            sum += sizes[k];
        }
        if (sum != d)
            return ck_err(c, SIZES, ERR_SHAPE, "split_sizes sum to %lld, axis %lld has %lld",
                          (long long)sum, (long long)ax, (long long)d);
    }
    if (ck_has(c, NUM)) {
        int64_t num;
        TRY(ck_int(c, NUM, &num));
        if (num < 1 || num > MIL_MAX_RESULTS)
            return ck_err(c, NUM, ERR_INVAL, "num_splits = %lld (must be 1 to %d)", (long long)num,
                          MIL_MAX_RESULTS);
        if (n && num != n)
            return ck_err(c, NUM, ERR_INVAL, "num_splits = %lld but split_sizes has %d values",
                          (long long)num, n);
        if (!n) {
            if (d % num)
                return ck_err(c, NUM, ERR_SHAPE, "axis %lld has %lld, not divisible into %lld "
                              "splits", (long long)ax, (long long)d, (long long)num);
            n = (int)num;
            for (int k = 0; k < n; k++) sizes[k] = d / num;
        }
    }
    for (int k = 0; k < n; k++) set_res_dim(c, k, x->dtype, x, ax, sizes[k]);
    return 0;
}

static int r_tile(ck *c)
{
    TRY(ck_bind_op(c));
    const mil_type *x = ck_t(c, 0);
    int64_t reps[MIL_MAX_RANK], out[MIL_MAX_RANK];
    int n;
    TRY(ck_ints(c, 1, reps, MIL_MAX_RANK, &n));
    if (n != x->rank) return ck_err(c, 1, ERR_SHAPE, "reps has %d values, x has rank %d", n, x->rank);
    for (int i = 0; i < n; i++) {
        if (reps[i] < 1)
            return ck_err(c, 1, ERR_INVAL, "reps[%d] = %lld (must be >= 1)", i, (long long)reps[i]);
        if (x->shape[i] > ((int64_t)1 << 40) / reps[i])
            return ck_err(c, 1, ERR_SHAPE, "result shape is too large");
        out[i] = x->shape[i] * reps[i];
    }
    ck_set_res(c, 0, x->dtype, n, out);
    return 0;
}

static int r_fill(ck *c)
{
    TRY(ck_bind_op(c));
    int64_t s[MIL_MAX_RANK];
    int n;
    TRY(ck_ints(c, 0, s, MIL_MAX_RANK, &n));
    for (int i = 0; i < n; i++)
        if (s[i] < 1)
            return ck_err(c, 0, ERR_SHAPE, "shape[%d] = %lld (must be >= 1)", i, (long long)s[i]);
    ck_set_res(c, 0, ck_has(c, 1) ? ck_t(c, 1)->dtype : MIL_FP32, n, s);
    return 0;
}

static int r_band_part(ck *c)
{
    TRY(ck_bind_op(c));
    TRY(need_rank(c, 0, 2, -1));
    copy_res(c, 0, ck_t(c, 0));
    return 0;
}

static int r_select(ck *c)
{
    TRY(ck_bind_op(c));
    mil_type ab;
    memset(&ab, 0, sizeof ab);
    TRY(ck_broadcast(c, 1, 2, ck_t(c, 1), ck_t(c, 2), &ab.rank, ab.shape));
    int r;
    int64_t out[MIL_MAX_RANK];
    TRY(ck_broadcast(c, 1, 0, &ab, ck_t(c, 0), &r, out));
    ck_set_res(c, 0, ck_t(c, 1)->dtype, r, out);
    return 0;
}

static int r_gather(ck *c)
{
    enum { X, IDX, AX, BD, VAL };
    TRY(ck_bind_op(c));
    const mil_type *x = ck_t(c, X), *ix = ck_t(c, IDX);
    int64_t ax, bd;
    TRY(read_axis(c, AX, x->rank, &ax));
    TRY(ck_int(c, BD, &bd));
    if (bd < 0 || bd > ax || (bd > 0 && bd >= ix->rank + 1) || bd > ix->rank)
        return ck_err(c, BD, ERR_INVAL, "batch_dims = %lld must be in [0, min(axis, rank of "
                      "indices)]", (long long)bd);
    for (int i = 0; i < bd; i++)
        if (ix->shape[i] != x->shape[i])
            return ck_err(c, IDX, ERR_SHAPE, "indices dim %d (%lld) differs from x's (%lld) "
                          "inside batch_dims", i, (long long)ix->shape[i], (long long)x->shape[i]);
    int64_t out[MIL_MAX_RANK];
    int r = 0;
    if (x->rank - 1 + ix->rank - bd > MIL_MAX_RANK)
        return ck_err(c, IDX, ERR_SHAPE, "result rank exceeds %d", MIL_MAX_RANK);
    for (int i = 0; i < ax; i++) out[r++] = x->shape[i];
    for (int i = (int)bd; i < ix->rank; i++) out[r++] = ix->shape[i];
    for (int i = (int)ax + 1; i < x->rank; i++) out[r++] = x->shape[i];
    ck_set_res(c, 0, x->dtype, r, out);
    return 0;
}

/* indices of rank(x), equal to x except along axis */
static int along_axis_indices(ck *c, int xi, int ii, int64_t ax)
{
    const mil_type *x = ck_t(c, xi), *ix = ck_t(c, ii);
    if (ix->rank != x->rank)
        return ck_err(c, ii, ERR_SHAPE, "indices has rank %d, expected %d", ix->rank, x->rank);
    for (int i = 0; i < x->rank; i++)
        if (i != ax && ix->shape[i] != x->shape[i]) {
            char a[200], b[200];
            return ck_err(c, ii, ERR_SHAPE, "indices shape %s differs from %s off axis %lld",
                          sh(ix, a, sizeof a), sh(x, b, sizeof b), (long long)ax);
        }
    return 0;
}

static int r_gather_along_axis(ck *c)
{
    enum { X, IDX, AX, VAL };
    TRY(ck_bind_op(c));
    const mil_type *x = ck_t(c, X), *ix = ck_t(c, IDX);
    int64_t ax;
    TRY(read_axis(c, AX, x->rank, &ax));
    TRY(along_axis_indices(c, X, IDX, ax));
    ck_set_res(c, 0, x->dtype, ix->rank, ix->shape);
    return 0;
}

static int check_mode(ck *c, int i)
{
    const char *m;
    TRY(ck_str(c, i, &m));
    static const char *const modes[] = {"update", "add", "sub", "mul", "div", "max", "min", NULL};
    for (int k = 0; modes[k]; k++)
        if (!strcmp(m, modes[k])) return 0;
    return ck_err(c, i, ERR_INVAL, "mode \"%s\" is not update, add, sub, mul, div, max or min", m);
}

/* scatter and scatter_along_axis: bind, read the axis against data's rank, check the mode */
enum { SC_DATA, SC_IDX, SC_UPD, SC_AX, SC_MODE, SC_VAL };
static int scatter_common(ck *c, int64_t *ax)
{
    TRY(ck_bind_op(c));
    TRY(read_axis(c, SC_AX, ck_t(c, SC_DATA)->rank, ax));
    return check_mode(c, SC_MODE);
}

static int r_scatter(ck *c)
{
    int64_t ax;
    TRY(scatter_common(c, &ax));
    const mil_type *d = ck_t(c, SC_DATA), *ix = ck_t(c, SC_IDX), *u = ck_t(c, SC_UPD);
    int64_t want[MIL_MAX_RANK];
    int r = 0;
    if (d->rank - 1 + ix->rank > MIL_MAX_RANK)
        return ck_err(c, SC_IDX, ERR_SHAPE, "updates rank would exceed %d", MIL_MAX_RANK);
    for (int i = 0; i < ax; i++) want[r++] = d->shape[i];
    for (int i = 0; i < ix->rank; i++) want[r++] = ix->shape[i];
    for (int i = (int)ax + 1; i < d->rank; i++) want[r++] = d->shape[i];
    if (!same_shape(u, r, want)) {
        char a[200], b[200];
        return ck_err(c, SC_UPD, ERR_SHAPE, "updates has shape %s, expected %s", sh(u, a, sizeof a),
                      ck_shape_str(r, want, b, sizeof b));
    }
    copy_res(c, 0, d);
    return 0;
}

static int r_scatter_along_axis(ck *c)
{
    int64_t ax;
    TRY(scatter_common(c, &ax));
    const mil_type *d = ck_t(c, SC_DATA), *ix = ck_t(c, SC_IDX), *u = ck_t(c, SC_UPD);
    TRY(along_axis_indices(c, SC_DATA, SC_IDX, ax));
    if (!ck_type_equal(u, ix) && !same_shape(u, ix->rank, ix->shape)) {
        char a[200], b[200];
        return ck_err(c, SC_UPD, ERR_SHAPE, "updates has shape %s, indices has %s",
                      sh(u, a, sizeof a), sh(ix, b, sizeof b));
    }
    copy_res(c, 0, d);
    return 0;
}

/* ======================================================================
 * 8.9 attention, 8.10 quantisation
 * ====================================================================== */

static int r_sdpa(ck *c)
{
    enum { Q, K, V, M };
    TRY(ck_bind_op(c));
    const mil_type *q = ck_t(c, Q), *k = ck_t(c, K), *v = ck_t(c, V);
    char a[200], b[200];
    TRY(need_rank(c, Q, 3, -1));
    if (k->rank != q->rank || v->rank != q->rank)
        return ck_err(c, k->rank != q->rank ? K : V, ERR_SHAPE,
                      "query, key and value must have the same rank (%d, %d, %d)", q->rank,
                      k->rank, v->rank);
    int r = q->rank;
    for (int i = 0; i < r - 2; i++) {
        if (k->shape[i] != q->shape[i])
            return ck_err(c, K, ERR_SHAPE, "key %s and query %s differ in batch dims",
                          sh(k, a, sizeof a), sh(q, b, sizeof b));
        if (v->shape[i] != q->shape[i])
            return ck_err(c, V, ERR_SHAPE, "value %s and query %s differ in batch dims",
                          sh(v, a, sizeof a), sh(q, b, sizeof b));
    }
    if (k->shape[r - 1] != q->shape[r - 1])
        return ck_err(c, K, ERR_SHAPE, "key has embedding size %lld, query has %lld",
                      (long long)k->shape[r - 1], (long long)q->shape[r - 1]);
    if (v->shape[r - 2] != k->shape[r - 2])
        return ck_err(c, V, ERR_SHAPE, "value has %lld positions, key has %lld",
                      (long long)v->shape[r - 2], (long long)k->shape[r - 2]);
    if (ck_has(c, M)) {
        const mil_type *m = ck_t(c, M);
        if (m->dtype != MIL_BOOL && m->dtype != q->dtype)
            return ck_err(c, M, ERR_TYPE, "attn_mask is %s, expected bool or %s (the query's)",
                          mil_dtype_name(m->dtype), mil_dtype_name(q->dtype));
        int64_t target[MIL_MAX_RANK];
        memcpy(target, q->shape, sizeof(int64_t) * (size_t)r);
        target[r - 1] = k->shape[r - 2];
        int ok = m->rank >= 1 && m->rank <= r && m->shape[m->rank - 1] == target[r - 1];
        for (int i = 0; ok && i < m->rank; i++) {
            int64_t md = m->shape[m->rank - 1 - i], td = target[r - 1 - i];
            if (md != td && md != 1) ok = 0;
        }
        if (!ok)
            return ck_err(c, M, ERR_SHAPE, "attn_mask %s does not broadcast to %s",
                          sh(m, a, sizeof a), ck_shape_str(r, target, b, sizeof b));
    }
    set_res_dim(c, 0, q->dtype, q, r - 1, v->shape[r - 1]);
    return 0;
}

/* scale / zero_point rank 0 (no axis) or [input.shape[axis]] (axis required) */
static int quant_params(ck *c, int in, int sc, int zp, int axi)
{
    const mil_type *x = ck_t(c, in), *s = ck_t(c, sc);
    if (ck_has(c, zp)) {
        const mil_type *z = ck_t(c, zp);
        if (z->rank != s->rank || (s->rank == 1 && z->shape[0] != s->shape[0]))
            return ck_err(c, zp, ERR_SHAPE, "zero_point must have the shape of scale");
    }
    if (s->rank == 0) {
        if (ck_has(c, axi)) return ck_err(c, axi, ERR_INVAL, "axis must be absent for a scalar scale");
        return 0;
    }
    if (!ck_has(c, axi)) return ck_err(c, sc, ERR_INVAL, "axis is required for a vector scale");
    int64_t ax;
    TRY(read_axis(c, axi, x->rank, &ax));
    if (s->shape[0] != x->shape[ax])
        return ck_err(c, sc, ERR_SHAPE, "scale has %lld values, axis %lld of input has %lld",
                      (long long)s->shape[0], (long long)ax, (long long)x->shape[ax]);
    return 0;
}

static int r_quantize(ck *c)
{
    enum { IN, SC, ZP, AX, OD };
    TRY(ck_bind_op(c));
    mil_dtype d;
    TRY(read_dtype2(c, OD, "int8", "uint8", &d));
    if (ck_has(c, ZP) && ck_t(c, ZP)->dtype != d)
        return ck_err(c, ZP, ERR_TYPE, "zero_point is %s, output_dtype is %s",
                      mil_dtype_name(ck_t(c, ZP)->dtype), mil_dtype_name(d));
    TRY(quant_params(c, IN, SC, ZP, AX));
    const mil_literal *l = mil_value_lit(c->f, ck_v(c, SC));
    for (int64_t i = 0; l && i < l->count; i++) {
        double s;
        if (mil_lit_float(l, i, &s) == 0 && s == 0)
            return ck_err(c, SC, ERR_INVAL, "scale must not be 0");
    }
    const mil_type *x = ck_t(c, IN);
    ck_set_res(c, 0, d, x->rank, x->shape);
    return 0;
}

static int r_dequantize(ck *c)
{
    enum { IN, SC, ZP, AX };
    TRY(ck_bind_op(c));
    TRY(quant_params(c, IN, SC, ZP, AX));
    const mil_type *x = ck_t(c, IN);
    ck_set_res(c, 0, ck_t(c, SC)->dtype, x->rank, x->shape);
    return 0;
}

/* ======================================================================
 * ops from coremltools' definitions (shape rules as CT's type_inference)
 * ====================================================================== */

static int r_pad(ck *c)
{
    enum { X, PADS, MODE, CV };
    TRY(ck_bind_op(c));
    const mil_type *x = ck_t(c, X);
    int64_t pad[2 * MIL_MAX_RANK], out[MIL_MAX_RANK];
    int n;
    TRY(ck_ints(c, PADS, pad, 2 * MIL_MAX_RANK, &n));
    if (n % 2 || n / 2 > x->rank)
        return ck_err(c, PADS, ERR_SHAPE, "pad has %d values: expected an even count up to %d (2 per padded axis)", n,
                      2 * x->rank);
    const char *mode;
    TRY(ck_str(c, MODE, &mode));
    int refl = !strcmp(mode, "reflect"), repl = !strcmp(mode, "replicate");
    if (!refl && !repl && strcmp(mode, "constant"))
        return ck_err(c, MODE, ERR_INVAL, "mode \"%s\" is not constant, reflect or replicate", mode);
    memcpy(out, x->shape, sizeof(int64_t) * (size_t)x->rank);
    for (int k = 0; k < n / 2; k++) {
        int a = x->rank - n / 2 + k;
        for (int j = 0; j < 2; j++) {
            int64_t v = pad[2 * k + j];
            if (v < 0) return ck_err(c, PADS, ERR_INVAL, "pad[%d] = %lld (must be >= 0)", 2 * k + j, (long long)v);
            if (refl && v > x->shape[a] - 1)
                return ck_err(c, PADS, ERR_INVAL, "reflect pad[%d] = %lld exceeds axis %d's size - 1 (%lld)", 2 * k + j,
                              (long long)v, a, (long long)(x->shape[a] - 1));
            if (repl && v > x->shape[a])
                return ck_err(c, PADS, ERR_INVAL, "replicate pad[%d] = %lld exceeds axis %d's size (%lld)", 2 * k + j,
                              (long long)v, a, (long long)x->shape[a]);
            if (v > ((int64_t)1 << 40)) return ck_err(c, PADS, ERR_SHAPE, "result shape is too large");
        }
        out[a] = x->shape[a] + pad[2 * k] + pad[2 * k + 1];
    }
    ck_set_res(c, 0, x->dtype, x->rank, out);
    return 0;
}

/* depth_to_space, space_to_depth, pixel_shuffle, pixel_unshuffle: a block factor f > 0 */
static int r_blocks(ck *c)
{
    TRY(ck_bind_op(c));
    const mil_type *x = ck_t(c, 0);
    int64_t f, out[4];
    TRY(ck_int(c, 1, &f));
    if (f < 1 || f > 4096) return ck_err(c, 1, ERR_INVAL, "%s = %lld (must be 1 to 4096)", c->spec[1].name, (long long)f);
    int to_space = c->kind == MIL_OP_depth_to_space || c->kind == MIL_OP_pixel_shuffle;
    memcpy(out, x->shape, sizeof out);
    if (to_space) {
        if (x->shape[1] % (f * f))
            return ck_err(c, 0, ERR_SHAPE, "channels (%lld) are not a multiple of %s^2 = %lld",
                          (long long)x->shape[1], c->spec[1].name, (long long)(f * f));
        out[1] = x->shape[1] / (f * f), out[2] = x->shape[2] * f, out[3] = x->shape[3] * f;
    } else {
        if (x->shape[2] % f || x->shape[3] % f)
            return ck_err(c, 0, ERR_SHAPE, "height and width (%lld, %lld) are not multiples of %s = %lld",
                          (long long)x->shape[2], (long long)x->shape[3], c->spec[1].name, (long long)f);
        out[1] = x->shape[1] * f * f, out[2] = x->shape[2] / f, out[3] = x->shape[3] / f;
    }
    ck_set_res(c, 0, x->dtype, 4, out);
    return 0;
}

/* space_to_batch (paddings) and batch_to_space (crops) over the two spatial axes */
static int r_space_batch(ck *c)
{
    enum { X, BS, PC };
    TRY(ck_bind_op(c));
    const mil_type *x = ck_t(c, X), *pt = ck_t(c, PC);
    int64_t b[2], p[4], out[4];
    int n, np;
    TRY(ck_ints(c, BS, b, 2, &n));
    if (n != 2) return ck_err(c, BS, ERR_SHAPE, "block_shape must have 2 values, got %d", n);
    if (pt->shape[0] != 2 || pt->shape[1] != 2)
        return ck_err(c, PC, ERR_SHAPE, "%s must have shape [2, 2]", c->spec[PC].name);
    TRY(ck_ints2(c, PC, p, 4, &np));
    for (int i = 0; i < 2; i++)
        if (b[i] < 1 || b[i] > 4096)
            return ck_err(c, BS, ERR_INVAL, "block_shape[%d] = %lld (must be 1 to 4096)", i, (long long)b[i]);
    for (int i = 0; i < 4; i++)
        if (p[i] < 0) return ck_err(c, PC, ERR_INVAL, "%s must be >= 0", c->spec[PC].name);
    out[1] = x->shape[1];
    if (c->kind == MIL_OP_space_to_batch) {
        out[0] = x->shape[0] * b[0] * b[1];
        for (int i = 0; i < 2; i++) {
            int64_t padded = x->shape[2 + i] + p[2 * i] + p[2 * i + 1];
            if (padded % b[i])
                return ck_err(c, PC, ERR_SHAPE, "padded spatial axis %d (%lld) is not a multiple of block_shape[%d] = %lld",
                              2 + i, (long long)padded, i, (long long)b[i]);
            out[2 + i] = padded / b[i];
        }
    } else {
        if (x->shape[0] % (b[0] * b[1]))
            return ck_err(c, X, ERR_SHAPE, "batch (%lld) is not a multiple of block_shape's product (%lld)",
                          (long long)x->shape[0], (long long)(b[0] * b[1]));
        out[0] = x->shape[0] / (b[0] * b[1]);
        for (int i = 0; i < 2; i++) {
            out[2 + i] = x->shape[2 + i] * b[i] - p[2 * i] - p[2 * i + 1];
            if (out[2 + i] < 1) return ck_err(c, PC, ERR_SHAPE, "crops remove all of spatial axis %d", 2 + i);
        }
    }
    ck_set_res(c, 0, x->dtype, 4, out);
    return 0;
}

static int r_crop(ck *c)
{
    enum { X, CH, CW };
    TRY(ck_bind_op(c));
    const mil_type *x = ck_t(c, X);
    TRY(need_rank(c, X, 3, -1));
    int64_t out[MIL_MAX_RANK];
    memcpy(out, x->shape, sizeof(int64_t) * (size_t)x->rank);
    for (int i = 0; i < 2; i++) {
        int64_t v[2];
        int n;
        TRY(ck_ints(c, CH + i, v, 2, &n));
        if (n != 2) return ck_err(c, CH + i, ERR_SHAPE, "%s must have 2 values, got %d", c->spec[CH + i].name, n);
        int a = x->rank - 2 + i;
        if (v[0] < 0 || v[1] < 0 || v[0] + v[1] >= x->shape[a])
            return ck_err(c, CH + i, ERR_INVAL, "%s [%lld, %lld] must be >= 0 and leave part of axis %d (%lld)",
                          c->spec[CH + i].name, (long long)v[0], (long long)v[1], a, (long long)x->shape[a]);
        out[a] = x->shape[a] - v[0] - v[1];
    }
    ck_set_res(c, 0, x->dtype, x->rank, out);
    return 0;
}

static int r_reverse(ck *c)
{
    TRY(ck_bind_op(c));
    const mil_type *x = ck_t(c, 0);
    int64_t axes[MIL_MAX_RANK];
    int n;
    TRY(read_axes(c, 1, x->rank, axes, &n));
    copy_res(c, 0, x);
    return 0;
}

static int r_flatten2d(ck *c)
{
    TRY(ck_bind_op(c));
    const mil_type *x = ck_t(c, 0);
    int64_t ax;
    TRY(ck_int(c, 1, &ax));
    if (ax < -x->rank || ax > x->rank)
        return ck_err(c, 1, ERR_INVAL, "axis %lld is out of range for rank %d", (long long)ax, x->rank);
    if (ax < 0) ax += x->rank;
    int64_t out[2] = {1, 1};
    for (int i = 0; i < x->rank; i++) out[i >= ax] *= x->shape[i];
    ck_set_res(c, 0, x->dtype, 2, out);
    return 0;
}

static int r_fill_like(ck *c)
{
    TRY(ck_bind_op(c));
    const mil_type *r = ck_t(c, 0);
    ck_set_res(c, 0, ck_has(c, 1) ? ck_t(c, 1)->dtype : MIL_FP32, r->rank, r->shape);
    return 0;
}

static int r_range_1d(ck *c)
{
    enum { END, START, STEP };
    TRY(ck_bind_op(c));
    double v[3];
    for (int i = 0; i < 3; i++)
        if (!ck_known(c, i))
            return ck_err(c, i, ERR_UNSUPPORTED,
                          "%s must be a constant here: the result's length must be known (shapes are static)",
                          c->spec[i].name);
    for (int i = 0; i < 3; i++) TRY(ck_float(c, i, &v[i]));
    if (v[STEP] == 0) return ck_err(c, STEP, ERR_INVAL, "step must not be 0");
    double len = ceil((v[END] - v[START]) / v[STEP]);
    if (!(len >= 1)) return ck_err(c, -1, ERR_SHAPE, "range_1d is empty (start %g, end %g, step %g)", v[START], v[END], v[STEP]);
    if (len > (double)(1 << 24)) return ck_err(c, -1, ERR_SHAPE, "range_1d is too long (%g values)", len);
    int64_t n = (int64_t)len;
    ck_set_res(c, 0, ck_t(c, START)->dtype, 1, &n);
    return 0;
}

/* pool_type as conv reads it: 0 valid, 1 custom, 2 same, 3 same_lower (ios16+) */
static int read_pad_type(ck *c, int i, int *mode)
{
    const char *pt;
    TRY(ck_str(c, i, &pt));
    if (!strcmp(pt, "valid")) *mode = 0;
    else if (!strcmp(pt, "custom")) *mode = 1;
    else if (!strcmp(pt, "same")) *mode = 2;
    else if (!strcmp(pt, "same_lower") && c->opset >= 16) *mode = 3;
    else
        return ck_err(c, i, ERR_INVAL, "pad_type \"%s\" is not valid, custom, same%s", pt,
                      c->opset >= 16 ? " or same_lower" : "");
    return 0;
}

/* avg_pool, max_pool, l2_pool: coremltools' Pooling.type_inference */
static int r_pool(ck *c)
{
    enum { X, K, STR, PT, PAD, CEIL };
    TRY(ck_bind_op(c));
    const mil_type *x = ck_t(c, X);
    TRY(need_rank(c, X, 3, c->kind == MIL_OP_l2_pool ? 4 : 5));
    int nsp = x->rank - 2, mode = 0, ceil_mode = 0;
    int64_t k[MIL_MAX_RANK], st[MIL_MAX_RANK], pad[2 * MIL_MAX_RANK], out[MIL_MAX_RANK];
    TRY(read_spatial(c, K, nsp, k));
    TRY(read_spatial(c, STR, nsp, st));
    TRY(read_pad_type(c, PT, &mode));
    TRY(read_pad(c, PAD, nsp, pad));
    TRY(ck_bool(c, CEIL, &ceil_mode));
    if (ceil_mode) {
        if (nsp > 2) return ck_err(c, CEIL, ERR_INVAL, "ceil_mode is supported for 1-D and 2-D pools only");
        if (mode >= 2) return ck_err(c, CEIL, ERR_INVAL, "ceil_mode must be false with pad_type same");
        for (int i = 0; mode == 1 && i < nsp; i++)
            if (pad[2 * i] != pad[2 * i + 1])
                return ck_err(c, PAD, ERR_INVAL, "pad must be symmetric with ceil_mode");
    }
    out[0] = x->shape[0], out[1] = x->shape[1];
    for (int i = 0; i < nsp; i++) {
        int64_t d = x->shape[2 + i], o;
        if (mode >= 2) {
            o = (d + st[i] - 1) / st[i];
        } else {
            int64_t b = mode == 1 ? pad[2 * i] : 0, a = mode == 1 ? pad[2 * i + 1] : 0, span = d + b + a - k[i];
            if (span < 0) o = 0;
            else if (!ceil_mode) o = span / st[i] + 1;
            else {
                o = (span + st[i] - 1) / st[i] + 1;
                if ((o - 1) * st[i] >= d + b && b + a > 0) o--;
            }
        }
        if (o < 1)
            return ck_err(c, K, ERR_SHAPE, "output size along spatial axis %d would be %lld (input %lld, kernel %lld)", i,
                          (long long)o, (long long)d, (long long)k[i]);
        out[2 + i] = o;
    }
    ck_set_res(c, 0, x->dtype, x->rank, out);
    return 0;
}

static int r_resize(ck *c)
{
    enum { X, TH, TW, SM };
    TRY(ck_bind_op(c));
    const mil_type *x = ck_t(c, X);
    TRY(need_rank(c, X, 3, -1));
    int64_t out[MIL_MAX_RANK];
    memcpy(out, x->shape, sizeof(int64_t) * (size_t)x->rank);
    for (int i = 0; i < 2; i++) {
        int64_t v;
        TRY(ck_int(c, TH + i, &v));
        if (v < 1 || v > 65536) return ck_err(c, TH + i, ERR_INVAL, "%s = %lld (must be 1 to 65536)", c->spec[TH + i].name, (long long)v);
        out[x->rank - 2 + i] = v;
    }
    if (c->kind == MIL_OP_resize_bilinear) {
        const char *m;
        TRY(ck_str(c, SM, &m));
        static const char *const modes[] = {"STRICT_ALIGN_CORNERS", "ALIGN_CORNERS", "UNALIGN_CORNERS", "DEFAULT",
                                            "OFFSET_CORNERS"};
        int ok = 0;
        for (int i = 0; i < 5; i++) ok |= !strcmp(m, modes[i]);
        if (!ok)
            return ck_err(c, SM, ERR_INVAL, "sampling_mode \"%s\" is not STRICT_ALIGN_CORNERS, ALIGN_CORNERS, "
                          "UNALIGN_CORNERS, DEFAULT or OFFSET_CORNERS", m);
    }
    ck_set_res(c, 0, x->dtype, x->rank, out);
    return 0;
}

/* einsum's equation in the two forms coremltools defines: "nchw,nwhu->nchu" and "chw,whr->chr"
 * (any letters with that structure). Letters are numbered by first appearance. 1 if it is one. */
int mil_einsum_form(const char *eq, int rank)
{
    int ids[3][8], n[3] = {0, 0, 0}, part = 0, next = 0;
    char seen[128];
    int id_of[128];
    memset(seen, 0, sizeof seen);
    for (const char *p = eq; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == ' ') continue;
        if (ch == ',' && part == 0) { part = 1; continue; }
        if (ch == '-' && p[1] == '>' && part == 1) { part = 2; p++; continue; }
        if (ch >= 128 || !((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')) || n[part] >= 8) return 0;
        if (!seen[ch]) seen[ch] = 1, id_of[ch] = next++;
        ids[part][n[part]++] = id_of[ch];
    }
    if (part != 2 || n[0] != rank || n[1] != rank || n[2] != rank) return 0;
    static const int f4[3][4] = {{0, 1, 2, 3}, {0, 3, 2, 4}, {0, 1, 2, 4}}, f3[3][3] = {{0, 1, 2}, {2, 1, 3}, {0, 1, 3}};
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < rank; i++)
            if (ids[k][i] != (rank == 4 ? f4[k][i] : f3[k][i])) return 0;
    return 1;
}

static int r_einsum(ck *c)
{
    enum { VALS, EQ };
    TRY(ck_bind_op(c));
    const mil_binding *vb = c->in[VALS];
    if (vb->n != 2) return ck_err(c, VALS, ERR_INVAL, "values must hold 2 tensors, got %d", vb->n);
    const mil_type *a = &c->f->values[vb->values[0]].type, *b = &c->f->values[vb->values[1]].type;
    if (a->rank != b->rank || (a->rank != 3 && a->rank != 4))
        return ck_err(c, VALS, ERR_SHAPE, "values must both have rank 3 or both rank 4, got %d and %d", a->rank, b->rank);
    const char *eq;
    TRY(ck_str(c, EQ, &eq));
    int r = a->rank;
    if (!mil_einsum_form(eq, r))
        return ck_err(c, EQ, ERR_UNSUPPORTED, "equation \"%s\" is not a form coremltools defines (%s)", eq,
                      r == 4 ? "\"nchw,nwhu->nchu\" or its renaming" : "\"chw,whr->chr\" or its renaming");
    if (a->shape[r - 1] != b->shape[r - 3])
        return ck_err(c, VALS, ERR_SHAPE, "contracted sizes differ: %lld and %lld", (long long)a->shape[r - 1],
                      (long long)b->shape[r - 3]);
    int64_t out[4];
    memcpy(out, a->shape, sizeof(int64_t) * (size_t)r);
    for (int k = r == 4 ? 0 : 1; k < r; k += 2) { /* the broadcast axes: -2 and -4 */
        int64_t x = a->shape[k], y = b->shape[k];
        if (x != y && x != 1 && y != 1)
            return ck_err(c, VALS, ERR_SHAPE, "axis %d does not broadcast: %lld and %lld", k - r, (long long)x, (long long)y);
        out[k] = x > y ? x : y;
    }
    out[r - 1] = b->shape[r - 1];
    ck_set_res(c, 0, a->dtype, r, out);
    return 0;
}

/* The output shape of constexpr_lut_to_dense / constexpr_sparse_to_dense (input i), and its
 * element count. */
static int dense_shape(ck *c, int i, int64_t *shape, int *rank, int64_t *n)
{
    TRY(ck_ints(c, i, shape, MIL_MAX_RANK, rank));
    *n = 1;
    for (int k = 0; k < *rank; k++) {
        if (shape[k] < 1 || shape[k] > ((int64_t)1 << 32))
            return ck_err(c, i, ERR_SHAPE, "shape[%d] = %lld (must be >= 1)", k, (long long)shape[k]);
        if (*n > ((int64_t)1 << 40) / shape[k]) return ck_err(c, i, ERR_SHAPE, "shape is too large");
        *n *= shape[k];
    }
    return 0;
}

static int r_lut_to_dense(ck *c)
{
    enum { IDX, LUT, SHAPE };
    TRY(ck_bind_op(c));
    int64_t shape[MIL_MAX_RANK], n;
    int rank;
    TRY(dense_shape(c, SHAPE, shape, &rank, &n));
    int64_t np = ck_t(c, LUT)->shape[0];
    int bits = np == 2 ? 1 : np == 4 ? 2 : np == 16 ? 4 : np == 64 ? 6 : np == 256 ? 8 : 0;
    if (!bits) return ck_err(c, LUT, ERR_SHAPE, "lut has %lld entries: must be 2, 4, 16, 64 or 256", (long long)np);
    int64_t want = (bits * n + 7) / 8, have = ck_t(c, IDX)->shape[0];
    if (have != want)
        return ck_err(c, IDX, ERR_SHAPE, "indices has %lld bytes, expected ceil(%d bits x %lld / 8) = %lld", (long long)have,
                      bits, (long long)n, (long long)want);
    ck_set_res(c, 0, ck_t(c, LUT)->dtype, rank, shape);
    return 0;
}

static int r_sparse_to_dense(ck *c)
{
    enum { NZ, MASK, SHAPE };
    TRY(ck_bind_op(c));
    int64_t shape[MIL_MAX_RANK], n;
    int rank;
    TRY(dense_shape(c, SHAPE, shape, &rank, &n));
    int64_t have = ck_t(c, MASK)->shape[0];
    if (have != (n + 7) / 8)
        return ck_err(c, MASK, ERR_SHAPE, "mask has %lld bytes, expected ceil(%lld / 8) = %lld", (long long)have,
                      (long long)n, (long long)((n + 7) / 8));
    const mil_literal *l = mil_value_lit(c->f, ck_v(c, MASK));
    if (l && l->data) { /* every known bit: set bits count the values, bits past the shape are 0 */
        int64_t set = 0;
        const uint8_t *m = l->data;
        for (int64_t i = 0; i < have; i++)
            for (int b = 0; b < 8; b++)
                if (m[i] >> b & 1) {
                    if (i * 8 + b >= n) return ck_err(c, MASK, ERR_INVAL, "mask sets bit %lld, past the %lld elements", (long long)(i * 8 + b), (long long)n);
                    set++;
                }
        if (set != ck_t(c, NZ)->shape[0])
            return ck_err(c, NZ, ERR_SHAPE, "nonzero_data has %lld values, the mask sets %lld", (long long)ck_t(c, NZ)->shape[0],
                          (long long)set);
    }
    ck_set_res(c, 0, ck_t(c, NZ)->dtype, rank, shape);
    return 0;
}

/* ======================================================================
 * the table
 * ====================================================================== */

ck_rule ck_rule_for(mil_opkind k)
{
    switch (k) {
    case MIL_OP_const: return r_const;
    case MIL_OP_constexpr_affine_dequantize: return r_constexpr_affine_dequantize;
    case MIL_OP_constexpr_blockwise_shift_scale: return r_constexpr_blockwise_shift_scale;
    case MIL_OP_constexpr_cast: return r_constexpr_cast;

    case MIL_OP_add: case MIL_OP_sub: case MIL_OP_mul: case MIL_OP_real_div: case MIL_OP_pow:
    case MIL_OP_maximum: case MIL_OP_minimum: case MIL_OP_floor_div: case MIL_OP_mod:
        return r_arith;
    case MIL_OP_equal: case MIL_OP_not_equal: case MIL_OP_greater: case MIL_OP_greater_equal:
    case MIL_OP_less: case MIL_OP_less_equal:
        return r_compare;
    case MIL_OP_logical_and: case MIL_OP_logical_or: case MIL_OP_logical_xor: return r_arith;

    case MIL_OP_relu: case MIL_OP_relu6: case MIL_OP_sigmoid: case MIL_OP_silu: case MIL_OP_tanh:
    case MIL_OP_exp: case MIL_OP_exp2: case MIL_OP_sqrt: case MIL_OP_sin: case MIL_OP_cos:
    case MIL_OP_tan: case MIL_OP_asin: case MIL_OP_acos: case MIL_OP_atan: case MIL_OP_atanh:
    case MIL_OP_sinh: case MIL_OP_cosh: case MIL_OP_erf: case MIL_OP_floor: case MIL_OP_ceil:
    case MIL_OP_round: case MIL_OP_softplus: case MIL_OP_softsign:
        return r_same;
    case MIL_OP_abs: case MIL_OP_sign: case MIL_OP_square: return r_same;
    case MIL_OP_rsqrt: case MIL_OP_inverse: case MIL_OP_log: return r_same;
    case MIL_OP_clip: return r_clip;
    case MIL_OP_threshold: return r_same;
    case MIL_OP_gelu: return r_gelu;
    case MIL_OP_leaky_relu: case MIL_OP_elu: case MIL_OP_thresholded_relu: return r_same;
    case MIL_OP_clamped_relu: return r_same;
    case MIL_OP_linear_activation: return r_same;
    case MIL_OP_scaled_tanh: case MIL_OP_sigmoid_hard: return r_same;
    case MIL_OP_prelu: return r_prelu;
    case MIL_OP_logical_not: return r_same;

    case MIL_OP_cast: return r_cast;

    case MIL_OP_softmax: return r_softmax;
    case MIL_OP_layer_norm: return r_layer_norm;
    case MIL_OP_batch_norm: return r_batch_norm;
    case MIL_OP_instance_norm: return r_instance_norm;
    case MIL_OP_l2_norm: return r_l2_norm;
    case MIL_OP_local_response_norm: return r_local_response_norm;

    case MIL_OP_conv: return r_conv;
    case MIL_OP_conv_transpose: return r_conv_transpose;
    case MIL_OP_matmul: return r_matmul;
    case MIL_OP_linear: return r_linear;

    case MIL_OP_reduce_sum: case MIL_OP_reduce_mean: case MIL_OP_reduce_max:
    case MIL_OP_reduce_min: case MIL_OP_reduce_prod: case MIL_OP_reduce_sum_square:
    case MIL_OP_reduce_l1_norm: case MIL_OP_reduce_l2_norm: case MIL_OP_reduce_log_sum:
    case MIL_OP_reduce_log_sum_exp:
        return r_reduce;
    case MIL_OP_reduce_argmax: case MIL_OP_reduce_argmin: return r_reduce_arg;

    case MIL_OP_reshape: return r_reshape;
    case MIL_OP_transpose: return r_transpose;
    case MIL_OP_expand_dims: return r_expand_dims;
    case MIL_OP_squeeze: return r_squeeze;
    case MIL_OP_slice_by_size: return r_slice_by_size;
    case MIL_OP_slice_by_index: return r_slice_by_index;
    case MIL_OP_concat: return r_concat;
    case MIL_OP_split: return r_split;
    case MIL_OP_tile: return r_tile;
    case MIL_OP_identity: return r_same;
    case MIL_OP_fill: return r_fill;
    case MIL_OP_band_part: return r_band_part;
    case MIL_OP_select: return r_select;
    case MIL_OP_gather: return r_gather;
    case MIL_OP_gather_along_axis: return r_gather_along_axis;
    case MIL_OP_scatter: return r_scatter;
    case MIL_OP_scatter_along_axis: return r_scatter_along_axis;
    case MIL_OP_slice_update: return r_slice_update;

    case MIL_OP_scaled_dot_product_attention: return r_sdpa;
    case MIL_OP_quantize: return r_quantize;
    case MIL_OP_dequantize: return r_dequantize;

    case MIL_OP_pad: return r_pad;
    case MIL_OP_depth_to_space: case MIL_OP_space_to_depth: case MIL_OP_pixel_shuffle:
    case MIL_OP_pixel_unshuffle:
        return r_blocks;
    case MIL_OP_space_to_batch: case MIL_OP_batch_to_space: return r_space_batch;
    case MIL_OP_crop: return r_crop;
    case MIL_OP_reverse: return r_reverse;
    case MIL_OP_flatten2d: return r_flatten2d;
    case MIL_OP_fill_like: return r_fill_like;
    case MIL_OP_range_1d: return r_range_1d;
    case MIL_OP_avg_pool: case MIL_OP_max_pool: case MIL_OP_l2_pool: return r_pool;
    case MIL_OP_resize_nearest_neighbor: case MIL_OP_resize_bilinear: return r_resize;
    case MIL_OP_einsum: return r_einsum;
    case MIL_OP_constexpr_lut_to_dense: return r_lut_to_dense;
    case MIL_OP_constexpr_sparse_to_dense: return r_sparse_to_dense;
    default: return NULL;
    }
}
