/* cpu_quant.c - quantize/dequantize (mil-reference.md 8.10) and the constexpr ops (8.1).
 *
 * constexpr_* inputs are constants, so their nodes run once at compile (folding) and their
 * results are ordinary constants afterwards; the same run functions serve both. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"

typedef struct q_p {
    int64_t outer, A, inner;     /* per-axis parameters index the middle axis */
    int vec;                     /* scale/zero point are vectors along the axis */
    float qmin, qmax;
    /* blockwise: per-axis block sizes and the scale's shape */
    int rank;
    int64_t shape[MIL_MAX_RANK], sshape[MIL_MAX_RANK], blk[MIL_MAX_RANK];
} q_p;

static inline float pval(const float *v, const q_p *p, int64_t a) { return v ? v[p->vec ? a : 0] : 0.0f; }

/* quantize: q = clamp(rne(x / s) + zp) */
static void run_quantize(const cpu_exec *ex, const cpu_node *nd) {
    const q_p *p = nd->p;
    const float *x = ex->ptr[nd->in[0]], *s = ex->ptr[nd->in[1]];
    const float *zp = nd->in[2] >= 0 ? ex->ptr[nd->in[2]] : NULL;
    float *o = ex->ptr[nd->out[0]];
    for (int64_t b = 0; b < p->outer; b++)
        for (int64_t a = 0; a < p->A; a++) {
            float sc = pval(s, p, a), z = pval(zp, p, a);
            int64_t base = (b * p->A + a) * p->inner;
            for (int64_t i = 0; i < p->inner; i++) {
                float q = rintf(x[base + i] / sc) + z;
                o[base + i] = q < p->qmin ? p->qmin : q > p->qmax ? p->qmax : q;
            }
        }
}

/* dequantize and constexpr_affine_dequantize: (q - zp) * s */
static void run_dequantize(const cpu_exec *ex, const cpu_node *nd) {
    const q_p *p = nd->p;
    const float *x = ex->ptr[nd->in[0]], *s = ex->ptr[nd->in[1]];
    const float *zp = nd->in[2] >= 0 ? ex->ptr[nd->in[2]] : NULL;
    float *o = ex->ptr[nd->out[0]];
    for (int64_t b = 0; b < p->outer; b++)
        for (int64_t a = 0; a < p->A; a++) {
            float sc = pval(s, p, a), z = pval(zp, p, a);
            int64_t base = (b * p->A + a) * p->inner;
            for (int64_t i = 0; i < p->inner; i++) o[base + i] = (x[base + i] - z) * sc;
        }
}

/* constexpr_blockwise_shift_scale: out[i] = scale[i / blk] * (data[i] - offset[i / blk]) */
static void run_blockwise(const cpu_exec *ex, const cpu_node *nd) {
    const q_p *p = nd->p;
    const float *x = ex->ptr[nd->in[0]], *s = ex->ptr[nd->in[1]];
    const float *off = nd->in[2] >= 0 ? ex->ptr[nd->in[2]] : NULL;
    float *o = ex->ptr[nd->out[0]];
    int64_t n = cpu_v(ex, nd->out[0])->n, sst[MIL_MAX_RANK];
    cpu_strides(p->rank, p->sshape, sst);
    for (int64_t i = 0; i < n; i++) {
        int64_t t = i, si = 0;
        for (int d = p->rank - 1; d >= 0; d--) {
            int64_t id = t % p->shape[d];
            t /= p->shape[d];
            si += (id / p->blk[d]) * sst[d];
        }
        o[i] = s[si] * (x[i] - (off ? off[si] : 0.0f));
    }
}

static void run_copy_vals(const cpu_exec *ex, const cpu_node *nd) {
    int64_t n = cpu_v(ex, nd->out[0])->n;
    if (ex->ptr[nd->out[0]] != ex->ptr[nd->in[0]])
        memcpy(ex->ptr[nd->out[0]], ex->ptr[nd->in[0]], (size_t)n * sizeof(float));
}

/* Axis geometry for a per-axis (or scalar) parameter p of value v. */
static int axis_geom(cpu_planner *P, const mil_op *op, q_p *q, int x, int param, int required_axis) {
    cpu_val *V = P->pl->vals;
    int64_t ax = 0;
    int rc, has_axis = cpu_arg(P, op, "axis") >= 0;
    if (has_axis && (rc = cpu_arg_int(P, op, "axis", &ax))) return rc;
    q->outer = 1;
    q->A = 1;
    q->inner = V[x].n;
    q->vec = param >= 0 && V[param].rank > 0 && V[param].n > 1;
    if (!q->vec && !(param >= 0 && V[param].rank > 0 && has_axis)) return 0;
    if (!has_axis && required_axis)
        return cpu_op_error(P, op, ERR_INVAL, "a vector scale needs 'axis'");
    int r = V[x].rank, a = cpu_axis(ax, r);
    if (a < 0) return cpu_op_error(P, op, ERR_INVAL, "axis %lld out of range", (long long)ax);
    q->A = V[x].shape[a];
    q->inner = 1;
    for (int i = 0; i < a; i++) q->outer *= V[x].shape[i];
    for (int i = a + 1; i < r; i++) q->inner *= V[x].shape[i];
    if (q->vec && V[param].n != q->A)
        return cpu_op_error(P, op, ERR_SHAPE, "scale needs %lld values along axis %d", (long long)q->A, a);
    return 0;
}

int cpu_plan_quant(cpu_planner *P, const mil_op *op) {
    cpu_val *V = P->pl->vals;
    if (op->nres < 1) return cpu_op_error(P, op, ERR_INVAL, "op has no result");
    int out = op->res[0], rc;
    q_p *q = calloc(1, sizeof *q);
    if (!q) return cpu_op_error(P, op, ERR_NOMEM, "out of memory");
    int x, s = -1, z = -1;
    cpu_run_fn run;
    switch (op->kind) {
    case MIL_OP_quantize:
    case MIL_OP_dequantize:
    case MIL_OP_constexpr_affine_dequantize: {
        int aff = op->kind == MIL_OP_constexpr_affine_dequantize;
        x = cpu_arg(P, op, aff ? "quantized_data" : "input");
        s = cpu_arg(P, op, "scale");
        z = cpu_arg(P, op, "zero_point");
        if (x < 0 || s < 0) {
            rc = cpu_op_error(P, op, ERR_INVAL, "needs %s and scale", aff ? "quantized_data" : "input");
            goto fail;
        }
        if ((rc = axis_geom(P, op, q, x, s, !aff))) goto fail;
        if (z >= 0 && V[z].n != V[s].n && V[z].n != 1) {
            rc = cpu_op_error(P, op, ERR_SHAPE, "zero_point must have the shape of scale");
            goto fail;
        }
        if (op->kind == MIL_OP_quantize) {
            int u8 = V[out].dt == MIL_UINT8;
            q->qmin = u8 ? 0.0f : -128.0f;
            q->qmax = u8 ? 255.0f : 127.0f;
            run = run_quantize;
        } else {
            run = run_dequantize;
        }
        break;
    }
    case MIL_OP_constexpr_blockwise_shift_scale: {
        x = cpu_arg(P, op, "data");
        s = cpu_arg(P, op, "scale");
        z = cpu_arg(P, op, "offset");
        if (x < 0 || s < 0 || V[s].rank != V[x].rank) {
            rc = cpu_op_error(P, op, ERR_INVAL, "needs data and a scale of the same rank");
            goto fail;
        }
        q->rank = V[x].rank;
        for (int i = 0; i < q->rank; i++) {
            q->shape[i] = V[x].shape[i];
            q->sshape[i] = V[s].shape[i];
            if (q->sshape[i] < 1 || q->shape[i] % q->sshape[i]) {
                rc = cpu_op_error(P, op, ERR_SHAPE, "scale dim %d does not divide data dim", i);
                goto fail;
            }
            q->blk[i] = q->shape[i] / q->sshape[i];
        }
        if (z >= 0 && V[z].n != V[s].n) {
            rc = cpu_op_error(P, op, ERR_SHAPE, "offset must have the shape of scale");
            goto fail;
        }
        run = run_blockwise;
        break;
    }
    case MIL_OP_constexpr_cast:
        x = cpu_arg(P, op, "source_val");
        if (x < 0) {
            rc = cpu_op_error(P, op, ERR_INVAL, "needs source_val");
            goto fail;
        }
        run = run_copy_vals;
        break;
    default: rc = cpu_op_error(P, op, ERR_UNSUPPORTED, "not a quantisation op"); goto fail;
    }
    cpu_node *nd = cpu_node_new(P, op, 3, run);
    if (!nd) {
        rc = P->e->code;
        goto fail;
    }
    nd->p = q;
    nd->in[0] = x;
    nd->in[1] = s;
    nd->in[2] = z;
    if (op->kind == MIL_OP_constexpr_cast) nd->round = 0; /* widening is exact */
    return 0;
fail:
    free(q);
    return rc;
}
