/* cpu_norm.c - softmax and the normalisations (mil-reference.md 8.5).
 *
 * Statistics (max, sums, means, variances) are fp32 and only the op's result is rounded
 * (7.3 rule 2). Variances are population variances computed in two passes (mean first), which
 * keeps fp32 accuracy for activations with a large mean. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/fp16.h"
#include "cpu.h"
#include "cpu_reduce.h"

static float param_default(const cpu_planner *P, double v, mil_dtype xdt) {
    if (xdt == MIL_FP16 || P->pl->opts.precision == PREC_FP16) return fp16_round((float)v);
    return (float)v;
}

static int get_eps(const cpu_planner *P, const mil_op *op, const char *name, mil_dtype xdt,
                   float *out) {
    double v;
    int rc = cpu_arg_float(P, op, name, &v);
    if (rc) return rc;
    *out = cpu_arg(P, op, name) < 0 ? param_default(P, v, xdt) : (float)v;
    return 0;
}

/* ---- softmax ---- */

typedef struct sm_p {
    int64_t outer, A, inner;
} sm_p;

typedef struct sm_job {
    const sm_p *p;
    const float *x;
    float *o;
} sm_job;

CPU_VEC static void sm_rows(void *ctx, int64_t lo, int64_t hi) {
    const sm_job *j = ctx;
    int64_t A = j->p->A, I = j->p->inner;
    for (int64_t ou = lo; ou < hi; ou++) {
        const float *x = j->x + ou * A * I;
        float *o = j->o + ou * A * I;
        if (I == 1) {
            /* max and sum with four running values (no loop-carried chain, no reassociation
             * needed); the exp loop itself vectorises */
            float m0 = -INFINITY, m1 = -INFINITY, m2 = -INFINITY, m3 = -INFINITY;
            int64_t a = 0;
            for (; a + 4 <= A; a += 4) {
                m0 = x[a] > m0 ? x[a] : m0;
                m1 = x[a + 1] > m1 ? x[a + 1] : m1;
                m2 = x[a + 2] > m2 ? x[a + 2] : m2;
                m3 = x[a + 3] > m3 ? x[a + 3] : m3;
            }
            for (; a < A; a++) m0 = x[a] > m0 ? x[a] : m0;
            float m = m0 > m1 ? m0 : m1, mm = m2 > m3 ? m2 : m3;
            m = m > mm ? m : mm;
            if (m == -INFINITY) m = 0; /* all -inf: exp gives 0/0 = NaN, as IEEE would */
            for (a = 0; a < A; a++) o[a] = cpu_expf(x[a] - m);
            float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            for (a = 0; a + 4 <= A; a += 4) {
                s0 += o[a];
                s1 += o[a + 1];
                s2 += o[a + 2];
                s3 += o[a + 3];
            }
            for (; a < A; a++) s0 += o[a];
            float r = 1.0f / ((s0 + s1) + (s2 + s3));
            for (a = 0; a < A; a++) o[a] *= r;
            continue;
        }
        /* axis with a contiguous inner block: vectorise across inner */
        for (int64_t i = 0; i < I; i++) {
            float m = -INFINITY;
            for (int64_t a = 0; a < A; a++) m = x[a * I + i] > m ? x[a * I + i] : m;
            if (m == -INFINITY) m = 0;
            float s = 0;
            for (int64_t a = 0; a < A; a++) {
                float e = cpu_expf(x[a * I + i] - m);
                o[a * I + i] = e;
                s += e;
            }
            float r = 1.0f / s;
            for (int64_t a = 0; a < A; a++) o[a * I + i] *= r;
        }
    }
}

static void run_softmax(const cpu_exec *ex, const cpu_node *nd) {
    sm_job j = {nd->p, ex->ptr[nd->in[0]], ex->ptr[nd->out[0]]};
    cpu_parallel(ex->pl, j.p->outer, j.p->A * j.p->inner * 12, sm_rows, &j);
}

/* ---- layer_norm ---- */

typedef struct ln_p {
    red_geom g;
    float eps;
} ln_p;

CPU_VEC static void run_layer_norm(const cpu_exec *ex, const cpu_node *nd) {
    const ln_p *p = nd->p;
    const red_geom *g = &p->g;
    const float *x = ex->ptr[nd->in[0]];
    const float *ga = nd->in[1] >= 0 ? ex->ptr[nd->in[1]] : NULL;
    const float *be = nd->in[2] >= 0 ? ex->ptr[nd->in[2]] : NULL;
    float *o = ex->ptr[nd->out[0]];
    int64_t R = g->R;
    if (g->block) {
        int64_t I = g->inner;
        float *mu = nd->scratch, *rs = nd->scratch + I;
        for (int64_t ou = 0; ou < g->outer; ou++) {
            const float *xb = x + ou * R * I;
            float *ob = o + ou * R * I;
            for (int64_t i = 0; i < I; i++) mu[i] = rs[i] = 0;
            for (int64_t r = 0; r < R; r++)
                for (int64_t i = 0; i < I; i++) mu[i] += xb[r * I + i];
            for (int64_t i = 0; i < I; i++) mu[i] /= (float)R;
            for (int64_t r = 0; r < R; r++)
                for (int64_t i = 0; i < I; i++) {
                    float d = xb[r * I + i] - mu[i];
                    rs[i] += d * d;
                }
            for (int64_t i = 0; i < I; i++) rs[i] = 1.0f / sqrtf(rs[i] / (float)R + p->eps);
            for (int64_t r = 0; r < R; r++) {
                float gr = ga ? ga[r] : 1.0f, br = be ? be[r] : 0.0f;
                for (int64_t i = 0; i < I; i++) ob[r * I + i] = (xb[r * I + i] - mu[i]) * rs[i] * gr + br;
            }
        }
        return;
    }
    for (int64_t k = 0; k < g->nout; k++) {
        const float *xb = x + g->ooff[k];
        float *ob = o + g->ooff[k];
        float m = 0, v = 0;
        for (int64_t r = 0; r < R; r++) m += xb[g->roff[r]];
        m /= (float)R;
        for (int64_t r = 0; r < R; r++) {
            float d = xb[g->roff[r]] - m;
            v += d * d;
        }
        float rs = 1.0f / sqrtf(v / (float)R + p->eps);
        for (int64_t r = 0; r < R; r++)
            ob[g->roff[r]] = (xb[g->roff[r]] - m) * rs * (ga ? ga[r] : 1.0f) + (be ? be[r] : 0.0f);
    }
}

/* ---- batch_norm, instance_norm: per channel of [N, C, *D] ---- */

typedef struct ch_p {
    int64_t N, C, D;
    float eps;
} ch_p;

CPU_VEC static void run_batch_norm(const cpu_exec *ex, const cpu_node *nd) {
    const ch_p *p = nd->p;
    const float *x = ex->ptr[nd->in[0]], *mean = ex->ptr[nd->in[1]], *var = ex->ptr[nd->in[2]];
    const float *ga = nd->in[3] >= 0 ? ex->ptr[nd->in[3]] : NULL;
    const float *be = nd->in[4] >= 0 ? ex->ptr[nd->in[4]] : NULL;
    float *o = ex->ptr[nd->out[0]];
    for (int64_t n = 0; n < p->N; n++)
        for (int64_t c = 0; c < p->C; c++) {
            float sc = (ga ? ga[c] : 1.0f) / sqrtf(var[c] + p->eps);
            float sh = (be ? be[c] : 0.0f) - mean[c] * sc;
            const float *xc = x + (n * p->C + c) * p->D;
            float *oc = o + (n * p->C + c) * p->D;
            for (int64_t i = 0; i < p->D; i++) oc[i] = xc[i] * sc + sh;
        }
}

CPU_VEC static void run_instance_norm(const cpu_exec *ex, const cpu_node *nd) {
    const ch_p *p = nd->p;
    const float *x = ex->ptr[nd->in[0]];
    const float *ga = nd->in[1] >= 0 ? ex->ptr[nd->in[1]] : NULL;
    const float *be = nd->in[2] >= 0 ? ex->ptr[nd->in[2]] : NULL;
    float *o = ex->ptr[nd->out[0]];
    for (int64_t n = 0; n < p->N; n++)
        for (int64_t c = 0; c < p->C; c++) {
            const float *xc = x + (n * p->C + c) * p->D;
            float *oc = o + (n * p->C + c) * p->D;
            float m = 0, v = 0;
            for (int64_t i = 0; i < p->D; i++) m += xc[i];
            m /= (float)p->D;
            for (int64_t i = 0; i < p->D; i++) v += (xc[i] - m) * (xc[i] - m);
            float rs = 1.0f / sqrtf(v / (float)p->D + p->eps);
            float gc = ga ? ga[c] : 1.0f, bc = be ? be[c] : 0.0f;
            for (int64_t i = 0; i < p->D; i++) oc[i] = (xc[i] - m) * rs * gc + bc;
        }
}

/* l2_norm over the last three axes (ranks >= 3; leading axes are batch). */
static void run_l2_norm(const cpu_exec *ex, const cpu_node *nd) {
    const ch_p *p = nd->p; /* N = batch count, D = elements per batch */
    const float *x = ex->ptr[nd->in[0]];
    float *o = ex->ptr[nd->out[0]];
    for (int64_t b = 0; b < p->N; b++) {
        const float *xb = x + b * p->D;
        float *ob = o + b * p->D;
        float s = 0;
        for (int64_t i = 0; i < p->D; i++) s += xb[i] * xb[i];
        float r = 1.0f / sqrtf(s + p->eps);
        for (int64_t i = 0; i < p->D; i++) ob[i] = xb[i] * r;
    }
}

/* local_response_norm across channels: window [c - size/2, c + (size-1)/2] (PyTorch's split). */
typedef struct lrn_p {
    int64_t N, C, D, size;
    float alpha, beta, k;
} lrn_p;

static void run_lrn(const cpu_exec *ex, const cpu_node *nd) {
    const lrn_p *p = nd->p;
    const float *x = ex->ptr[nd->in[0]];
    float *o = ex->ptr[nd->out[0]];
    for (int64_t n = 0; n < p->N; n++)
        for (int64_t c = 0; c < p->C; c++) {
            int64_t lo = c - p->size / 2, hi = c + (p->size - 1) / 2;
            if (lo < 0) lo = 0;
            if (hi > p->C - 1) hi = p->C - 1;
            for (int64_t i = 0; i < p->D; i++) {
                float s = 0;
                for (int64_t cc = lo; cc <= hi; cc++) {
                    float v = x[(n * p->C + cc) * p->D + i];
                    s += v * v;
                }
                float v = x[(n * p->C + c) * p->D + i];
                o[(n * p->C + c) * p->D + i] = v / powf(p->k + p->alpha / (float)p->size * s, p->beta);
            }
        }
}

/* ---- planning ---- */

static cpu_node *new_node(cpu_planner *P, const mil_op *op, int nin, cpu_run_fn run, void *p) {
    cpu_node *nd = cpu_node_new(P, op, nin, run);
    if (!nd) free(p);
    else nd->p = p;
    return nd;
}

int cpu_plan_norm(cpu_planner *P, const mil_op *op) {
    cpu_val *V = P->pl->vals;
    int x = cpu_arg(P, op, "x"), rc;
    if (x < 0 || op->nres < 1) return cpu_op_error(P, op, ERR_INVAL, "missing input 'x'");
    mil_dtype xdt = V[x].dt;
    int r = V[x].rank;
    switch (op->kind) {
    case MIL_OP_softmax: {
        int64_t ax;
        if ((rc = cpu_arg_int(P, op, "axis", &ax))) return rc;
        int a = cpu_axis(ax, r);
        if (a < 0) return cpu_op_error(P, op, ERR_INVAL, "axis %lld out of range", (long long)ax);
        sm_p *p = calloc(1, sizeof *p);
        if (!p) return cpu_op_error(P, op, ERR_NOMEM, "out of memory");
        p->outer = p->inner = 1;
        for (int i = 0; i < r; i++) {
            if (i < a) p->outer *= V[x].shape[i];
            else if (i > a) p->inner *= V[x].shape[i];
        }
        p->A = V[x].shape[a];
        cpu_node *nd = new_node(P, op, 1, run_softmax, p);
        if (!nd) return P->e->code;
        nd->in[0] = x;
        nd->inplace = 1;
        return 0;
    }
    case MIL_OP_layer_norm: {
        int64_t axes[MIL_MAX_RANK];
        int nax;
        if ((rc = cpu_arg_ints(P, op, "axes", axes, MIL_MAX_RANK, &nax))) return rc;
        for (int i = 1; i < nax; i++)
            if (cpu_axis(axes[i], r) <= cpu_axis(axes[i - 1], r))
                return cpu_op_error(P, op, ERR_UNSUPPORTED, "axes must be listed in increasing order");
        ln_p *p = calloc(1, sizeof *p);
        if (!p) return cpu_op_error(P, op, ERR_NOMEM, "out of memory");
        if ((rc = get_eps(P, op, "epsilon", xdt, &p->eps))) {
            free(p);
            return rc;
        }
        rc = red_geom_init(&p->g, &V[x], axes, nax);
        if (rc) {
            free(p);
            return cpu_op_error(P, op, rc == -1 ? ERR_INVAL : ERR_NOMEM,
                                rc == -1 ? "axes out of range or repeated" : "out of memory");
        }
        int ga = cpu_arg(P, op, "gamma"), be = cpu_arg(P, op, "beta");
        if ((ga >= 0 && V[ga].n != p->g.R) || (be >= 0 && V[be].n != p->g.R)) {
            long long R = p->g.R;
            red_geom_free(&p->g);
            free(p);
            return cpu_op_error(P, op, ERR_SHAPE, "gamma/beta must have %lld elements", R);
        }
        if (!p->g.block) { /* keep the offset tables in the node's parameter block */
            size_t bytes = sizeof *p + (size_t)(p->g.R + p->g.nout) * sizeof(int64_t);
            ln_p *q = malloc(bytes);
            if (!q) {
                red_geom_free(&p->g);
                free(p);
                return cpu_op_error(P, op, ERR_NOMEM, "out of memory");
            }
            *q = *p;
            q->g.roff = (int64_t *)(q + 1);
            q->g.ooff = q->g.roff + p->g.R;
            memcpy(q->g.roff, p->g.roff, (size_t)p->g.R * sizeof(int64_t));
            memcpy(q->g.ooff, p->g.ooff, (size_t)p->g.nout * sizeof(int64_t));
            red_geom_free(&p->g);
            free(p);
            p = q;
        }
        cpu_node *nd = new_node(P, op, 3, run_layer_norm, p);
        if (!nd) return P->e->code;
        nd->in[0] = x;
        nd->in[1] = ga;
        nd->in[2] = be;
        if (p->g.block) nd->scratch_n = 2 * p->g.inner;
        return 0;
    }
    case MIL_OP_batch_norm:
    case MIL_OP_instance_norm: {
        if (r < 3) return cpu_op_error(P, op, ERR_SHAPE, "x must be [N, C, *D] with rank >= 3");
        ch_p *p = calloc(1, sizeof *p);
        if (!p) return cpu_op_error(P, op, ERR_NOMEM, "out of memory");
        p->N = V[x].shape[0];
        p->C = V[x].shape[1];
        p->D = V[x].n / (p->N * p->C);
        if ((rc = get_eps(P, op, "epsilon", xdt, &p->eps))) {
            free(p);
            return rc;
        }
        int bn = op->kind == MIL_OP_batch_norm;
        const char *names[5] = {"x", "mean", "variance", "gamma", "beta"};
        const char *inames[3] = {"x", "gamma", "beta"};
        int nin = bn ? 5 : 3;
        int ins[5];
        for (int i = 0; i < nin; i++) {
            ins[i] = cpu_arg(P, op, bn ? names[i] : inames[i]);
            if (i > 0 && ins[i] >= 0 && V[ins[i]].n != p->C) {
                long long C = p->C;
                free(p);
                return cpu_op_error(P, op, ERR_SHAPE, "'%s' must have %lld values",
                                    bn ? names[i] : inames[i], C);
            }
        }
        if (bn && (ins[1] < 0 || ins[2] < 0)) {
            free(p);
            return cpu_op_error(P, op, ERR_INVAL, "needs mean and variance");
        }
        cpu_node *nd = new_node(P, op, nin, bn ? run_batch_norm : run_instance_norm, p);
        if (!nd) return P->e->code;
        for (int i = 0; i < nin; i++) nd->in[i] = ins[i];
        nd->inplace = 1;
        return 0;
    }
    case MIL_OP_l2_norm: {
        if (r < 3) return cpu_op_error(P, op, ERR_SHAPE, "x must have rank >= 3");
        ch_p *p = calloc(1, sizeof *p);
        if (!p) return cpu_op_error(P, op, ERR_NOMEM, "out of memory");
        p->D = V[x].shape[r - 1] * V[x].shape[r - 2] * V[x].shape[r - 3];
        p->N = V[x].n / p->D;
        if ((rc = get_eps(P, op, "epsilon", xdt, &p->eps))) {
            free(p);
            return rc;
        }
        cpu_node *nd = new_node(P, op, 1, run_l2_norm, p);
        if (!nd) return P->e->code;
        nd->in[0] = x;
        nd->inplace = 1;
        return 0;
    }
    case MIL_OP_local_response_norm: {
        if (r < 3) return cpu_op_error(P, op, ERR_SHAPE, "x must be [N, C, *D] with rank >= 3");
        lrn_p *p = calloc(1, sizeof *p);
        if (!p) return cpu_op_error(P, op, ERR_NOMEM, "out of memory");
        p->N = V[x].shape[0];
        p->C = V[x].shape[1];
        p->D = V[x].n / (p->N * p->C);
        if ((rc = cpu_arg_int(P, op, "size", &p->size)) ||
            (rc = get_eps(P, op, "alpha", xdt, &p->alpha)) ||
            (rc = get_eps(P, op, "beta", xdt, &p->beta)) ||
            (rc = get_eps(P, op, "k", xdt, &p->k))) {
            free(p);
            return rc;
        }
        if (p->size < 1) {
            free(p);
            return cpu_op_error(P, op, ERR_INVAL, "size must be >= 1");
        }
        cpu_node *nd = new_node(P, op, 1, run_lrn, p);
        if (!nd) return P->e->code;
        nd->in[0] = x;
        return 0;
    }
    default: return cpu_op_error(P, op, ERR_UNSUPPORTED, "not a normalisation op");
    }
}
