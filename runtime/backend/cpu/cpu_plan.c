/* cpu_plan.c - compile = plan: values, constants, nodes, folding, views, liveness, arena layout.
 *
 * The planner walks the function's ops once. Each op family turns an op into nodes (or into a
 * view, or into nothing when its result is a folded constant). A node whose runtime operands are
 * all constants runs immediately and its results become constants, so constexpr_* ops, const
 * arithmetic and shape-only chains cost nothing at eval. Then liveness decides which arena range
 * each temporary occupies; elementwise ops may write over an input that dies at that op. */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/fp16.h"
#include "../../mil/check.h"
#include "../../mil/sig.h"
#include "../../core/bigmem.h"
#include "cpu.h"

int cpu_is_float(mil_dtype t) { return t == MIL_FP16 || t == MIL_FP32 || t == MIL_FP64 || t == MIL_BF16; }
int cpu_is_int(mil_dtype t) {
    return t == MIL_INT4 || t == MIL_INT8 || t == MIL_INT16 || t == MIL_INT32 || t == MIL_INT64 ||
           t == MIL_UINT1 || t == MIL_UINT2 || t == MIL_UINT3 || t == MIL_UINT4 || t == MIL_UINT6 ||
           t == MIL_UINT8 || t == MIL_UINT16 || t == MIL_UINT32 || t == MIL_UINT64;
}

void cpu_strides(int rank, const int64_t *shape, int64_t *st) {
    int64_t s = 1;
    for (int i = rank - 1; i >= 0; i--) {
        st[i] = s;
        s *= shape[i];
    }
}

int cpu_axis(int64_t a, int rank) {
    if (a < 0) a += rank;
    return (a < 0 || a >= rank) ? -1 : (int)a;
}

int cpu_op_error(const cpu_planner *P, const mil_op *op, int code, const char *fmt, ...) {
    char msg[ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (op && op->line > 0)
        return mil_error_at(P->e, P->prog, code, op->line, op->col, "%s: %s", op->type, msg);
    return err_set(P->e, code, "%s: %s", op ? op->type : "cpu", msg);
}

/* ---- literals ---- */

int cpu_lit_to_float(const mil_literal *lit, float *out, ane_error *e) {
    int64_t n = lit->count;
    const void *d = lit->data;
    if (!d && n > 0) {
        if (lit->form == MIL_LIT_BLOB)
            return err_set(e, ERR_STATE, "weights of %s (offset %llu) are not loaded",
                           lit->blob_path ? lit->blob_path : "BLOBFILE",
                           (unsigned long long)lit->blob_offset);
        return err_set(e, ERR_FORMAT, "constant has no data");
    }
    switch (lit->type.dtype) {
    case MIL_FP16: fp16_to_f32_n(out, d, (size_t)n); break;
    case MIL_FP32: memcpy(out, d, (size_t)n * sizeof(float)); break;
    case MIL_FP64: for (int64_t i = 0; i < n; i++) out[i] = (float)((const double *)d)[i]; break;
    case MIL_INT8: for (int64_t i = 0; i < n; i++) out[i] = ((const int8_t *)d)[i]; break;
    case MIL_INT4: for (int64_t i = 0; i < n; i++) out[i] = ((const int8_t *)d)[i]; break;
    case MIL_UINT1: case MIL_UINT2: case MIL_UINT3: case MIL_UINT4: case MIL_UINT6:
    case MIL_UINT8: case MIL_BOOL:
        for (int64_t i = 0; i < n; i++) out[i] = ((const uint8_t *)d)[i];
        break;
    case MIL_INT16: for (int64_t i = 0; i < n; i++) out[i] = ((const int16_t *)d)[i]; break;
    case MIL_UINT16: for (int64_t i = 0; i < n; i++) out[i] = ((const uint16_t *)d)[i]; break;
    case MIL_INT32: for (int64_t i = 0; i < n; i++) out[i] = (float)((const int32_t *)d)[i]; break;
    case MIL_UINT32: for (int64_t i = 0; i < n; i++) out[i] = (float)((const uint32_t *)d)[i]; break;
    case MIL_INT64: for (int64_t i = 0; i < n; i++) out[i] = (float)((const int64_t *)d)[i]; break;
    case MIL_UINT64: for (int64_t i = 0; i < n; i++) out[i] = (float)((const uint64_t *)d)[i]; break;
    default:
        return err_set(e, ERR_TYPE, "constant of dtype %s is not numeric",
                       mil_dtype_name(lit->type.dtype));
    }
    return 0;
}

/* ---- arguments ---- */

int cpu_arg(const cpu_planner *P, const mil_op *op, const char *name) {
    const mil_binding *b = mil_op_input(op, name);
    if (!b || b->n < 1) return -1;
    return b->values[0];
}

int cpu_is_const(const cpu_planner *P, int v) {
    return v >= 0 && P->pl->vals[v].kind == CV_CONST;
}

const float *cpu_const_data(const cpu_planner *P, int v) {
    return cpu_is_const(P, v) ? P->pl->vals[v].cdata : NULL;
}

static int const_arg(const cpu_planner *P, const mil_op *op, const char *name, int *v) {
    *v = cpu_arg(P, op, name);
    if (*v < 0) return 0;
    if (!cpu_is_const(P, *v))
        return cpu_op_error(P, op, ERR_UNSUPPORTED, "'%s' must be a constant", name);
    return 1;
}


/* The op signature table's default for an omitted input (mil_sig_default), so a default lives in
 * one place (runtime/mil/sig.c) for the checker, the builder and this backend. Returns 0 with *lit
 * filled; ERR_INVAL (positioned at the op) when the table has no default for name. */
static int sig_default(const cpu_planner *P, const mil_op *op, const char *name, mil_literal *lit,
                       mil_default_data *d) {
    mil_sig s;
    int ov = P->f->opset_version;
    if (ov < 15 || ov > 18) ov = 18; /* unknown or newer opsets: defaults stand as in ios18 */
    int i = mil_op_sig(op->kind, ov, &s) ? -1 : mil_sig_find(&s, name);
    const mil_type *xt = NULL;
    if (i >= 0 && s.nin > 0) {
        int x = cpu_arg(P, op, s.in[0].name);
        if (x >= 0) xt = &P->f->values[x].type;
    }
    if (i < 0 || mil_sig_default(&s, i, xt, lit, d))
        return cpu_op_error(P, op, ERR_INVAL, "'%s' is required", name);
    return 0;
}

/* A scalar default as a number (int, bool, or float in x's float dtype). */
static int sig_default_num(const cpu_planner *P, const mil_op *op, const char *name, double *out) {
    mil_literal lit;
    mil_default_data d;
    int rc = sig_default(P, op, name, &lit, &d);
    if (rc) return rc;
    switch (lit.type.dtype) {
    case MIL_INT32: *out = d.i32[0]; return 0;
    case MIL_BOOL: *out = d.u8[0]; return 0;
    case MIL_FP16: *out = fp16_to_f32(d.f16); return 0;
    case MIL_FP32: *out = d.f32; return 0;
    default: return cpu_op_error(P, op, ERR_INVAL, "'%s' has no numeric default", name);
    }
}

int cpu_arg_ints(const cpu_planner *P, const mil_op *op, const char *name, int64_t *out, int max,
                 int *n) {
    int v, rc = const_arg(P, op, name, &v);
    if (rc < 0) return rc;
    if (rc == 0) { /* absent: the table's default (all axes, ones, zeros, all false...) */
        mil_literal lit;
        mil_default_data d;
        if ((rc = sig_default(P, op, name, &lit, &d))) return rc;
        if (lit.count > max) return cpu_op_error(P, op, ERR_UNSUPPORTED, "'%s' has too many elements", name);
        for (int64_t i = 0; i < lit.count; i++) out[i] = lit.type.dtype == MIL_BOOL ? d.u8[i] : d.i32[i];
        *n = (int)lit.count;
        return 0;
    }
    const cpu_val *cv = &P->pl->vals[v];
    if (cv->n > max) return cpu_op_error(P, op, ERR_UNSUPPORTED, "'%s' has too many elements", name);
    for (int64_t i = 0; i < cv->n; i++) out[i] = (int64_t)cv->cdata[i];
    *n = (int)cv->n;
    return 0;
}

int cpu_arg_int(const cpu_planner *P, const mil_op *op, const char *name, int64_t *out) {
    double dv = 0;
    int v, rc = const_arg(P, op, name, &v);
    *out = 0;
    if (rc < 0) return rc;
    if (rc == 0) {
        if ((rc = sig_default_num(P, op, name, &dv))) return rc;
        *out = (int64_t)dv;
        return 0;
    }
    if (P->pl->vals[v].n < 1) return cpu_op_error(P, op, ERR_INVAL, "'%s' is empty", name);
    *out = (int64_t)P->pl->vals[v].cdata[0];
    return 0;
}

int cpu_arg_float(const cpu_planner *P, const mil_op *op, const char *name, double *out) {
    int v, rc = const_arg(P, op, name, &v);
    *out = 0;
    if (rc < 0) return rc;
    if (rc == 0) return sig_default_num(P, op, name, out);
    if (P->pl->vals[v].n < 1) return cpu_op_error(P, op, ERR_INVAL, "'%s' is empty", name);
    *out = P->pl->vals[v].cdata[0];
    return 0;
}

int cpu_arg_bool(const cpu_planner *P, const mil_op *op, const char *name, int *out) {
    int64_t x;
    int rc = cpu_arg_int(P, op, name, &x);
    *out = x != 0;
    return rc;
}

const char *cpu_arg_string(const cpu_planner *P, const mil_op *op, const char *name) {
    int v = cpu_arg(P, op, name);
    if (v < 0) {
        mil_sig s;
        int i = mil_op_sig(op->kind, 18, &s) ? -1 : mil_sig_find(&s, name);
        /* string defaults do not depend on x or the opset */
        return i >= 0 && s.in[i].def == MIL_DEF_STRING ? s.in[i].ds : NULL;
    }
    const mil_literal *lit = P->f->values[v].lit;
    if (!lit || lit->type.dtype != MIL_STRING || lit->count < 1 || !lit->data) return NULL;
    return ((const char *const *)lit->data)[0];
}

/* ---- nodes and views ---- */

cpu_node *cpu_node_new(cpu_planner *P, const mil_op *op, int nin, cpu_run_fn run) {
    cpu_plan *pl = P->pl;
    if (pl->nnodes == pl->cap) {
        int cap = pl->cap ? pl->cap * 2 : 32;
        cpu_node *nn = realloc(pl->nodes, (size_t)cap * sizeof *nn);
        if (!nn) {
            err_set(P->e, ERR_NOMEM, "out of memory planning %s", op->type);
            return NULL;
        }
        pl->nodes = nn;
        pl->cap = cap;
    }
    cpu_node *nd = &pl->nodes[pl->nnodes];
    memset(nd, 0, sizeof *nd);
    nd->in = calloc((size_t)(nin > 0 ? nin : 1), sizeof(int));
    nd->out = calloc((size_t)(op->nres > 0 ? op->nres : 1), sizeof(int));
    if (!nd->in || !nd->out) {
        free(nd->in);
        free(nd->out);
        err_set(P->e, ERR_NOMEM, "out of memory planning %s", op->type);
        return NULL;
    }
    for (int i = 0; i < nin; i++) nd->in[i] = -1;
    nd->op = op;
    nd->kind = op->kind;
    nd->nin = nin;
    nd->nout = op->nres;
    for (int i = 0; i < op->nres; i++) nd->out[i] = op->res[i];
    nd->run = run;
    nd->round = 1;
    nd->out16 = -1;
    pl->nnodes++;
    return nd;
}

void cpu_make_view(cpu_planner *P, int v, int src, int64_t off) {
    cpu_val *vals = P->pl->vals;
    cpu_val *d = &vals[v], *s = &vals[src];
    if (s->kind == CV_CONST) {
        d->kind = CV_CONST;
        d->cdata = s->cdata + off;
        d->owns_cdata = 0;
        d->root = v;
        P->pl->ptr[v] = d->cdata;
        return;
    }
    d->kind = CV_VIEW;
    d->root = s->root;
    d->off = s->off + off;
    d->exact_cast |= s->exact_cast; /* a reshape of an exact cast still reads through it */
}

static void node_free(cpu_node *nd) {
    free(nd->in);
    free(nd->out);
    free(nd->p);
    nd->in = nd->out = NULL;
    nd->p = NULL;
}

void cpu_plan_free(cpu_plan *pl);
void cpu_plan_free(cpu_plan *pl) {
    if (!pl) return;
    for (int i = 0; i < pl->nnodes; i++) node_free(&pl->nodes[i]);
    free(pl->nodes);
    if (pl->vals)
        for (int i = 0; i < pl->nvals; i++)
            if (pl->vals[i].owns_cdata) bigmem_free(pl->vals[i].cdata);
    free(pl->vals);
    bigmem_free(pl->arena);
    free(pl->ptr);
    free(pl->in_direct);
    free(pl->in_views);
    free(pl->out_by_node);
    free(pl);
}

/* ---- rounding of results (mil-reference.md 7.3 rules 1-3) ---- */

/* Whether output value v of node nd is rounded through fp16 after the node runs. */
int cpu_rounds(const cpu_plan *pl, const cpu_node *nd, int v);
int cpu_rounds(const cpu_plan *pl, const cpu_node *nd, int v) {
    mil_dtype t = pl->vals[v].dt;
    if (!nd->round) return 0;
    if (t == MIL_FP16) return 1;
    return pl->opts.precision == PREC_FP16 && cpu_is_float(t);
}

static void int_fix(float *x, int64_t n, mil_dtype t) {
    double lo, hi;
    switch (t) {
    case MIL_INT8: lo = -128; hi = 127; break;
    case MIL_UINT8: lo = 0; hi = 255; break;
    case MIL_INT16: lo = -32768; hi = 32767; break;
    case MIL_UINT16: lo = 0; hi = 65535; break;
    case MIL_INT4: lo = -8; hi = 7; break;
    case MIL_UINT4: lo = 0; hi = 15; break;
    default: lo = -2147483648.0; hi = 2147483647.0; break;
    }
    for (int64_t i = 0; i < n; i++) {
        float y = x[i];
        if (y != y) y = 0; /* NaN -> 0: saturating cast, mil-reference.md 8.4 */
        y = truncf(y);
        if (y < lo) y = (float)lo;
        if (y > hi) y = (float)hi;
        x[i] = y;
    }
}

static void round_range(void *ctx, int64_t lo, int64_t hi) {
    fp16_round_n((float *)ctx + lo, (size_t)(hi - lo));
}

/* After nd ran: round float results, fix integer results. */
void cpu_finish_node(const cpu_plan *pl, const cpu_node *nd, float *const *ptr);
void cpu_finish_node(const cpu_plan *pl, const cpu_node *nd, float *const *ptr) {
    for (int i = 0; i < nd->nout; i++) {
        int v = nd->out[i];
        const cpu_val *cv = &pl->vals[v];
        if (cv->kind != CV_TEMP && cv->kind != CV_CONST) continue;
        if (cv->skip_round) continue;
        if (cpu_rounds(pl, nd, v)) cpu_parallel(pl, cv->n, 1, round_range, ptr[v]);
        else if (cpu_is_int(cv->dt)) int_fix(ptr[v], cv->n, cv->dt);
    }
}

/* ---- folding ---- */

static int fold_node(cpu_planner *P, int idx) {
    cpu_plan *pl = P->pl;
    cpu_node *nd = &pl->nodes[idx];
    for (int i = 0; i < nd->nin; i++)
        if (nd->in[i] >= 0 && pl->vals[nd->in[i]].kind != CV_CONST) return 0;
    for (int i = 0; i < nd->nout; i++) {
        cpu_val *cv = &pl->vals[nd->out[i]];
        cv->cdata = cpu_alloc_big((size_t)(cv->n > 0 ? cv->n : 1) * sizeof(float));
        if (!cv->cdata) return cpu_op_error(P, nd->op, ERR_NOMEM, "out of memory folding");
        cv->kind = CV_CONST;
        cv->owns_cdata = 1;
        cv->root = nd->out[i];
        pl->const_bytes += (size_t)cv->n * sizeof(float);
    }
    for (int i = 0; i < nd->nout; i++) pl->ptr[nd->out[i]] = pl->vals[nd->out[i]].cdata;
    cpu_exec ex = {pl, pl->ptr, NULL};
    if (nd->scratch_n > 0 && !(nd->scratch = malloc((size_t)nd->scratch_n * sizeof(float))))
        return cpu_op_error(P, nd->op, ERR_NOMEM, "out of memory folding");
    nd->run(&ex, nd);
    cpu_finish_node(pl, nd, pl->ptr);
    free(nd->scratch);
    node_free(nd);
    memmove(nd, nd + 1, (size_t)(pl->nnodes - idx - 1) * sizeof *nd);
    pl->nnodes--;
    return 1;
}

cpu_node *cpu_producer(cpu_planner *P, int v) {
    for (int i = P->pl->nnodes - 1; i >= 0; i--)
        for (int k = 0; k < P->pl->nodes[i].nout; k++)
            if (P->pl->nodes[i].out[k] == v) return &P->pl->nodes[i];
    return NULL;
}

int cpu_swap_source(cpu_planner *P, int v) {
    const mil_value *mv = &P->f->values[v];
    if (mv->def_op < 0 || P->pl->vals[v].kind != CV_TEMP) return -1;
    const mil_op *op = &P->f->ops[mv->def_op];
    if (op->kind != MIL_OP_transpose) return -1;
    int x = cpu_arg(P, op, "x");
    int64_t perm[MIL_MAX_RANK];
    int n;
    ane_error keep = *P->e;
    if (x < 0 || cpu_arg_ints(P, op, "perm", perm, MIL_MAX_RANK, &n) || n != P->pl->vals[x].rank ||
        n < 2) {
        *P->e = keep;
        return -1;
    }
    for (int i = 0; i < n; i++) {
        int64_t want = i < n - 2 ? i : (i == n - 2 ? n - 1 : n - 2);
        if (cpu_axis(perm[i], n) != want) return -1;
    }
    return x;
}

/* Drop nodes none of whose results is read (transposes folded into a matmul, unused results). */
static void drop_dead_nodes(cpu_plan *pl) {
    const mil_function *f = pl->f;
    int changed = 1;
    int *used = calloc((size_t)(pl->nvals ? pl->nvals : 1), sizeof(int));
    if (!used) return;
    while (changed) {
        changed = 0;
        memset(used, 0, (size_t)pl->nvals * sizeof(int));
        for (int i = 0; i < pl->nnodes; i++)
            for (int k = 0; k < pl->nodes[i].nin; k++)
                if (pl->nodes[i].in[k] >= 0) {
                    used[pl->nodes[i].in[k]] = 1;
                    used[pl->vals[pl->nodes[i].in[k]].root] = 1;
                }
        for (int k = 0; k < f->nouts; k++) {
            used[f->outs[k]] = 1;
            used[pl->vals[f->outs[k]].root] = 1;
        }
        for (int i = 0; i < pl->nnodes;) {
            cpu_node *nd = &pl->nodes[i];
            int live = 0;
            for (int k = 0; k < nd->nout; k++) live |= used[nd->out[k]];
            if (live) {
                i++;
                continue;
            }
            node_free(nd);
            memmove(nd, nd + 1, (size_t)(pl->nnodes - i - 1) * sizeof *nd);
            pl->nnodes--;
            changed = 1;
        }
    }
    free(used);
}

/* ---- the op table ---- */

static int plan_op(cpu_planner *P, const mil_op *op) {
    switch (op->kind) {
    case MIL_OP_const: return 0; /* its value is a literal, converted up front */
    case MIL_OP_constexpr_affine_dequantize: case MIL_OP_constexpr_blockwise_shift_scale:
    case MIL_OP_constexpr_cast: case MIL_OP_quantize: case MIL_OP_dequantize:
        return cpu_plan_quant(P, op);
    case MIL_OP_softmax: case MIL_OP_layer_norm: case MIL_OP_batch_norm:
    case MIL_OP_instance_norm: case MIL_OP_l2_norm: case MIL_OP_local_response_norm:
        return cpu_plan_norm(P, op);
    case MIL_OP_conv: case MIL_OP_conv_transpose: case MIL_OP_matmul: case MIL_OP_linear:
        return cpu_plan_linalg(P, op);
    case MIL_OP_reduce_sum: case MIL_OP_reduce_mean: case MIL_OP_reduce_max:
    case MIL_OP_reduce_min: case MIL_OP_reduce_prod: case MIL_OP_reduce_sum_square:
    case MIL_OP_reduce_l1_norm: case MIL_OP_reduce_l2_norm: case MIL_OP_reduce_log_sum:
    case MIL_OP_reduce_log_sum_exp: case MIL_OP_reduce_argmax: case MIL_OP_reduce_argmin:
        return cpu_plan_reduce(P, op);
    case MIL_OP_reshape: case MIL_OP_transpose: case MIL_OP_expand_dims: case MIL_OP_squeeze:
    case MIL_OP_slice_by_size: case MIL_OP_slice_by_index: case MIL_OP_concat: case MIL_OP_split:
    case MIL_OP_tile: case MIL_OP_identity: case MIL_OP_fill: case MIL_OP_band_part:
    case MIL_OP_slice_update:
        return cpu_plan_shape(P, op);
    case MIL_OP_gather: case MIL_OP_gather_along_axis: case MIL_OP_scatter:
    case MIL_OP_scatter_along_axis:
        return cpu_plan_gather(P, op);
    case MIL_OP_scaled_dot_product_attention: return cpu_plan_attention(P, op);
    case MIL_OP_pad: case MIL_OP_depth_to_space: case MIL_OP_space_to_depth:
    case MIL_OP_pixel_shuffle: case MIL_OP_pixel_unshuffle: case MIL_OP_space_to_batch:
    case MIL_OP_batch_to_space: case MIL_OP_crop: case MIL_OP_reverse: case MIL_OP_flatten2d:
    case MIL_OP_fill_like: case MIL_OP_range_1d: case MIL_OP_constexpr_lut_to_dense:
    case MIL_OP_constexpr_sparse_to_dense:
        return cpu_plan_movement(P, op);
    case MIL_OP_avg_pool: case MIL_OP_max_pool: case MIL_OP_l2_pool: case MIL_OP_resize_nearest_neighbor:
    case MIL_OP_resize_bilinear: case MIL_OP_einsum:
        return cpu_plan_pool(P, op);
    case MIL_OP_UNKNOWN: case MIL_OP_COUNT:
        return cpu_op_error(P, op, ERR_UNSUPPORTED, "op is not supported by the cpu backend");
    default: return cpu_plan_elementwise(P, op);
    }
}

/* ---- memory plan ---- */

typedef struct blk { int64_t off, n; } blk;
typedef struct arena_planner {
    blk *free_;
    int nfree, cap;
    int64_t top;
} arena_planner;

static int64_t round_up(int64_t n) { return (n + 15) & ~(int64_t)15; } /* 64-byte blocks */

static int ap_alloc(arena_planner *a, int64_t n, int64_t *off) {
    n = round_up(n > 0 ? n : 1);
    int best = -1;
    for (int i = 0; i < a->nfree; i++) /* best fit keeps big holes for big tensors */
        if (a->free_[i].n >= n && (best < 0 || a->free_[i].n < a->free_[best].n)) best = i;
    if (best >= 0) {
        *off = a->free_[best].off;
        a->free_[best].off += n;
        a->free_[best].n -= n;
        if (a->free_[best].n == 0) a->free_[best] = a->free_[--a->nfree];
        return 0;
    }
    /* Grow from the top, absorbing a free block that ends there. */
    for (int i = 0; i < a->nfree; i++)
        if (a->free_[i].off + a->free_[i].n == a->top) {
            *off = a->free_[i].off;
            a->top = *off + n;
            a->free_[i] = a->free_[--a->nfree];
            return 0;
        }
    *off = a->top;
    a->top += n;
    return 0;
}

static int ap_free(arena_planner *a, int64_t off, int64_t n) {
    n = round_up(n > 0 ? n : 1);
    /* coalesce with neighbours */
    for (int i = 0; i < a->nfree; i++) {
        if (a->free_[i].off + a->free_[i].n == off) {
            off = a->free_[i].off;
            n += a->free_[i].n;
            a->free_[i--] = a->free_[--a->nfree];
        } else if (off + n == a->free_[i].off) {
            n += a->free_[i].n;
            a->free_[i--] = a->free_[--a->nfree];
        }
    }
    if (a->nfree == a->cap) {
        int cap = a->cap ? a->cap * 2 : 16;
        blk *nb = realloc(a->free_, (size_t)cap * sizeof *nb);
        if (!nb) return ERR_NOMEM;
        a->free_ = nb;
        a->cap = cap;
    }
    a->free_[a->nfree++] = (blk){off, n};
    return 0;
}

static int is_elementwise_inplace(const cpu_plan *pl, const cpu_node *nd) {
    if (!nd->inplace || nd->nin < 1 || nd->nout < 1 || nd->in[0] < 0) return 0;
    const cpu_val *x = &pl->vals[nd->in[0]], *o = &pl->vals[nd->out[0]];
    int r = x->root;
    const cpu_val *rv = &pl->vals[r];
    if (rv->kind != CV_TEMP && !(rv->kind == CV_INPUT && rv->arena_off >= 0)) return 0;
    if (x->off != 0 || x->n != o->n || rv->n != o->n) return 0;
    for (int i = 1; i < nd->nin; i++) /* another operand reading the same buffer differently */
        if (nd->in[i] >= 0 && pl->vals[nd->in[i]].root == r &&
            !(pl->vals[nd->in[i]].n == x->n && pl->vals[nd->in[i]].off == 0))
            return 0;
    return 1;
}

static int memory_plan(cpu_planner *P) {
    cpu_plan *pl = P->pl;
    const mil_function *f = P->f;
    cpu_val *V = pl->vals;
    int rc = 0;
    for (int v = 0; v < pl->nvals; v++) {
        V[v].first = INT_MAX;
        V[v].last = -1;
        V[v].nuse = 0;
        V[v].only_softmax = 1;
    }
    for (int i = 0; i < pl->nnodes; i++) {
        cpu_node *nd = &pl->nodes[i];
        for (int k = 0; k < nd->nin; k++) {
            int v = nd->in[k];
            if (v < 0) continue;
            V[v].nuse++;
            int r = V[v].root;
            if (nd->kind != MIL_OP_softmax) V[v].only_softmax = V[r].only_softmax = 0; /* views too */
            if (V[r].last < i) V[r].last = i;
        }
        for (int k = 0; k < nd->nout; k++)
            if (V[nd->out[k]].first > i) V[nd->out[k]].first = i;
    }
    for (int k = 0; k < f->nouts; k++) {
        int r = V[f->outs[k]].root;
        V[r].last = INT_MAX;
        V[f->outs[k]].only_softmax = V[r].only_softmax = 0;
    }

    /* Results read only by the output conversion need no rounding pass: converting to fp16 is the
     * same RNE rounding (not in strict mode, which inspects results before conversion). */
    if (!pl->opts.strict) {
        for (int v = 0; v < pl->nvals; v++) V[v].skip_round = 0;
        for (int k = 0; k < f->nouts; k++) {
            int o = f->outs[k], r = V[o].root;
            if (V[o].dt == MIL_FP16 && V[r].dt == MIL_FP16 && V[r].kind == CV_TEMP) V[r].skip_round = 1;
        }
        for (int i = 0; i < pl->nnodes; i++)
            for (int k = 0; k < pl->nodes[i].nin; k++)
                if (pl->nodes[i].in[k] >= 0) V[V[pl->nodes[i].in[k]].root].skip_round = 0;
        for (int k = 0; k < f->nouts; k++) /* an fp32 output view of the same buffer needs it */
            if (V[f->outs[k]].dt != MIL_FP16) V[V[f->outs[k]].root].skip_round = 0;
    }

    /* Inputs: fp32 data is read in place unless fp16 mode must round it for a non-cast consumer. */
    for (int i = 0; i < f->nparams; i++) {
        int v = f->params[i];
        int direct = V[v].dt == MIL_FP32;
        if (direct && pl->opts.precision == PREC_FP16) {
            for (int n = 0; n < pl->nnodes && direct; n++)
                for (int k = 0; k < pl->nodes[n].nin; k++) {
                    int u = pl->nodes[n].in[k];
                    if (u >= 0 && V[u].root == v && pl->nodes[n].kind != MIL_OP_cast && !V[u].exact_cast)
                        direct = 0;
                }
        }
        pl->in_direct[i] = direct;
    }

    arena_planner ap = {0};
    for (int i = 0; i < f->nparams; i++) {
        int v = f->params[i];
        V[v].arena_off = -1;
        if (!pl->in_direct[i] && (rc = ap_alloc(&ap, V[v].n, &V[v].arena_off))) goto out;
    }
    for (int i = 0; i < pl->nnodes; i++) {
        cpu_node *nd = &pl->nodes[i];
        int start = 0;
        /* strict mode compares results with inputs after each node: no in-place writes then */
        if (!pl->opts.strict && is_elementwise_inplace(pl, nd) && V[V[nd->in[0]].root].last == i) {
            int r = V[nd->in[0]].root;
            V[nd->out[0]].arena_off = V[r].arena_off;
            V[r].last = -2; /* storage handed over: do not free it */
            start = 1;
        }
        for (int k = start; k < nd->nout; k++) {
            int v = nd->out[k];
            if (V[v].kind != CV_TEMP) continue;
            if ((rc = ap_alloc(&ap, V[v].n, &V[v].arena_off))) goto out;
        }
        if (nd->scratch_n > 0) {
            if ((rc = ap_alloc(&ap, nd->scratch_n, &nd->scratch_off))) goto out;
            if ((rc = ap_free(&ap, nd->scratch_off, nd->scratch_n))) goto out;
        }
        /* Free what dies here (roots whose last use is this node, and unused results). */
        for (int k = 0; k < nd->nin; k++) {
            int v = nd->in[k];
            if (v < 0) continue;
            int r = V[v].root;
            if (V[r].last == i && (V[r].kind == CV_TEMP || (V[r].kind == CV_INPUT && V[r].arena_off >= 0))) {
                V[r].last = -2;
                if ((rc = ap_free(&ap, V[r].arena_off, V[r].n))) goto out;
            }
        }
        for (int k = 0; k < nd->nout; k++) {
            int v = nd->out[k];
            if (V[v].kind == CV_TEMP && V[v].last == -1) { /* never read */
                V[v].last = -2;
                if ((rc = ap_free(&ap, V[v].arena_off, V[v].n))) goto out;
            }
        }
    }
    pl->arena_n = ap.top;
out:
    free(ap.free_);
    if (rc) return err_set(P->e, ERR_NOMEM, "out of memory planning the arena");
    return 0;
}

/* ---- compile ---- */

static int io_dtype(mil_dtype t, dtype *out) {
    switch (t) {
    case MIL_FP16: *out = DT_FP16; return 1;
    case MIL_FP32: *out = DT_FP32; return 1;
    case MIL_INT32: *out = DT_INT32; return 1;
    case MIL_INT8: *out = DT_INT8; return 1;
    case MIL_UINT8: *out = DT_UINT8; return 1;
    case MIL_BOOL: *out = DT_BOOL; return 1;
    default: return 0;
    }
}

static int fill_io(cpu_planner *P, kernel_io *io, int v, const char *what) {
    const mil_value *mv = &P->f->values[v];
    const cpu_val *cv = &P->pl->vals[v];
    if (mv->type.kind != MIL_T_TENSOR)
        return err_set(P->e, ERR_UNSUPPORTED, "compile: %s '%s' is not a tensor", what,
                       mv->name ? mv->name : "?");
    if (!io_dtype(cv->dt, &io->dt))
        return err_set(P->e, ERR_UNSUPPORTED, "compile: %s '%s' has dtype %s, which tensors cannot hold",
                       what, mv->name ? mv->name : "?", mil_dtype_name(cv->dt));
    if (cv->rank > TENSOR_MAX_RANK)
        return err_set(P->e, ERR_UNSUPPORTED, "compile: %s '%s' has rank %d (at most %d)", what,
                       mv->name ? mv->name : "?", cv->rank, TENSOR_MAX_RANK);
    io->name = mv->name ? mv->name : "?";
    io->rank = cv->rank;
    for (int i = 0; i < cv->rank; i++) io->shape[i] = cv->shape[i];
    return 0;
}

int cpu_plan_build(mil_program *p, const compile_opts *o, cpu_plan **out, kernel_io **in_io,
                   kernel_io **out_io, ane_error *e);
int cpu_plan_build(mil_program *p, const compile_opts *o, cpu_plan **out, kernel_io **in_io,
                   kernel_io **out_io, ane_error *e) {
    const char *fname = (o && o->function) ? o->function : "main";
    *out = NULL;
    *in_io = *out_io = NULL;
    if (!p) return err_set(e, ERR_INVAL, "compile: no program");
    if (!p->checked) return err_set(e, ERR_STATE, "compile: the program has not been checked");
    const mil_function *f = mil_program_func(p, fname);
    if (!f) return err_set(e, ERR_INVAL, "compile: the program has no function '%s'", fname);

    cpu_plan *pl = calloc(1, sizeof *pl);
    if (!pl) return err_set(e, ERR_NOMEM, "out of memory");
    pl->prog = p;
    pl->f = f;
    if (o) pl->opts = *o;
    else compile_opts_default(&pl->opts);
    pl->nvals = f->nvalues;
    pl->vals = calloc((size_t)(f->nvalues ? f->nvalues : 1), sizeof *pl->vals);
    pl->ptr = calloc((size_t)(f->nvalues ? f->nvalues : 1), sizeof *pl->ptr);
    pl->in_direct = calloc((size_t)(f->nparams ? f->nparams : 1), sizeof(int));
    kernel_io *ins = calloc((size_t)(f->nparams ? f->nparams : 1), sizeof *ins);
    kernel_io *outs = calloc((size_t)(f->nouts ? f->nouts : 1), sizeof *outs);
    unsigned char *skip = NULL;
    int *uses = calloc((size_t)(f->nvalues ? f->nvalues : 1), sizeof(int));
    cpu_planner P = {pl, p, f, e, uses};
    int rc = 0;
    if (uses) {
        for (int i = 0; i < f->nops; i++)
            for (int b = 0; b < f->ops[i].nin; b++)
                for (int k = 0; k < f->ops[i].in[b].n; k++)
                    if (f->ops[i].in[b].values[k] >= 0 && f->ops[i].in[b].values[k] < f->nvalues)
                        uses[f->ops[i].in[b].values[k]]++;
        for (int k = 0; k < f->nouts; k++) uses[f->outs[k]]++;
    }
    if (!uses || !pl->vals || !pl->ptr || !pl->in_direct || !ins || !outs) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto fail;
    }

    /* A const op's `val` attribute is an inline value sharing the result's literal: convert the
     * result only (weights would be converted twice otherwise). */
    skip = calloc((size_t)(f->nvalues ? f->nvalues : 1), 1);
    if (!skip) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < f->nops; i++)
        if (f->ops[i].kind == MIL_OP_const || strcmp(f->ops[i].type, "const") == 0)
            for (int b = 0; b < f->ops[i].nattr; b++)
                if (strcmp(f->ops[i].attr[b].name, "val") == 0)
                    for (int k = 0; k < f->ops[i].attr[b].n; k++)
                        if (f->ops[i].attr[b].values[k] >= 0 && f->values[f->ops[i].attr[b].values[k]].is_inline)
                            skip[f->ops[i].attr[b].values[k]] = 1;
    /* Values: shapes from the checked types; literals converted (fp32 demoted in fp16 mode). */
    int background = cpu_thread_lowered();
    for (int v = 0; v < f->nvalues; v++) {
        const mil_value *mv = &f->values[v];
        cpu_val *cv = &pl->vals[v];
        cv->root = v;
        cv->name = mv->name;
        cv->arena_off = -1;
        if (mv->type.kind != MIL_T_TENSOR && mv->type.kind != MIL_T_STATE) continue;
        cv->dt = mv->type.dtype;
        cv->rank = mv->type.rank;
        cv->n = 1;
        for (int i = 0; i < cv->rank; i++) {
            cv->shape[i] = mv->type.shape[i];
            if (cv->shape[i] < 0) {
                rc = err_set(e, ERR_SHAPE, "compile: value '%s' has an unknown dimension",
                             mv->name ? mv->name : "?");
                goto fail;
            }
            cv->n *= cv->shape[i];
        }
        if (mv->is_param) {
            cv->kind = CV_INPUT;
        } else if (skip[v]) {
            continue;
        } else if (mv->lit && mv->type.dtype != MIL_STRING) {
            cv->cdata = cpu_alloc_big((size_t)(cv->n > 0 ? cv->n : 1) * sizeof(float));
            if (!cv->cdata) {
                rc = err_set(e, ERR_NOMEM, "out of memory converting constants");
                goto fail;
            }
            cv->owns_cdata = 1;
            cv->kind = CV_CONST;
            if (mv->lit->count != cv->n) {
                rc = err_set(e, ERR_FORMAT, "compile: constant '%s' has %lld elements, its type %lld",
                             mv->name ? mv->name : "?", (long long)mv->lit->count, (long long)cv->n);
                goto fail;
            }
            /* baked weights: both cores, unless this compile runs in the background */
            if (mv->lit->type.dtype == MIL_FP16 && mv->lit->data && !background)
                cpu_fp16_to_f32_par(pl, cv->cdata, mv->lit->data, cv->n);
            else if ((rc = cpu_lit_to_float(mv->lit, cv->cdata, e))) {
                err_prefix(e, "compile: constant '%s': ", mv->name ? mv->name : "?");
                goto fail;
            }
            if (cv->dt == MIL_FP32 && pl->opts.precision == PREC_FP16)
                fp16_round_n(cv->cdata, (size_t)cv->n); /* 7.3 rule 3 */
            pl->const_bytes += (size_t)cv->n * sizeof(float);
            pl->ptr[v] = cv->cdata;
        } else if (!mv->is_inline) {
            cv->kind = CV_TEMP;
        }
    }
    free(skip);
    skip = NULL;
    for (int i = 0; i < f->nparams; i++) {
        pl->vals[f->params[i]].input = i;
        if ((rc = fill_io(&P, &ins[i], f->params[i], "input"))) goto fail;
    }
    for (int i = 0; i < f->nouts; i++)
        if ((rc = fill_io(&P, &outs[i], f->outs[i], "output"))) goto fail;

    if (pl->opts.strict && (rc = cpu_strict_check_function(&P))) goto fail;

    for (int i = 0; i < f->nops; i++) {
        const mil_op *op = &f->ops[i];
        if (pl->opts.strict && (rc = cpu_strict_check_op(&P, op))) goto fail;
        int before = pl->nnodes;
        if ((rc = plan_op(&P, op))) goto fail;
        for (int k = before; k < pl->nnodes;) {
            int r = fold_node(&P, k);
            if (r < 0) {
                rc = r;
                goto fail;
            }
            if (r == 0) k++;
        }
    }
    drop_dead_nodes(pl);
    if ((rc = memory_plan(&P))) goto fail;

    /* A matmul whose fp16 result goes only to an output converts it block by block (in cache)
     * into the caller's tensor; eval then skips that output's conversion. */
    pl->out_by_node = calloc((size_t)(f->nouts ? f->nouts : 1), sizeof(int));
    if (!pl->out_by_node) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < pl->nnodes; i++) {
        cpu_node *nd = &pl->nodes[i];
        if (nd->kind != MIL_OP_matmul || nd->nout != 1 || !pl->vals[nd->out[0]].skip_round) continue;
        for (int j = 0; j < f->nouts; j++)
            if (f->outs[j] == nd->out[0] && !pl->out_by_node[j]) {
                nd->out16 = j;
                pl->out_by_node[j] = 1;
                break;
            }
    }

    /* Values whose address follows a directly-read input: refreshed at each eval. */
    pl->in_views = calloc((size_t)(pl->nvals ? pl->nvals : 1), sizeof(int));
    if (!pl->in_views) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (int v = 0; v < pl->nvals; v++) {
        const cpu_val *cv = &pl->vals[v];
        if (cv->kind != CV_INPUT && cv->kind != CV_VIEW) continue;
        int r = cv->root;
        if (pl->vals[r].kind == CV_INPUT && pl->in_direct[pl->vals[r].input])
            pl->in_views[pl->nin_views++] = v;
    }
    *out = pl;
    *in_io = ins;
    *out_io = outs;
    free(uses);
    return 0;
fail:
    free(skip);
    free(uses);
    cpu_plan_free(pl);
    free(ins);
    free(outs);
    return rc ? rc : ERR_BACKEND;
}
