/* cpu_reduce.c - reductions (mil-reference.md 8.7) and the reduction geometry norms share.
 *
 * A set of reduced axes that forms one contiguous block (after dropping size-1 axes) is an
 * [outer, R, inner] walk: inner runs contiguous, so the accumulation vectorises across it (the
 * RMSNorm case, axes = [1] on [1, C, 1, S]). Other axis sets walk precomputed offsets.
 * Accumulation is fp32 (7.3 rule 2); the output dtype bounds the result when it is rounded. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "cpu_reduce.h"

int red_geom_init(red_geom *g, const cpu_val *x, const int64_t *axes, int nax) {
    int r = x->rank;
    int red[MIL_MAX_RANK] = {0};
    memset(g, 0, sizeof *g);
    for (int i = 0; i < nax; i++) {
        int a = cpu_axis(axes[i], r);
        if (a < 0 || red[a]) return -1;
        red[a] = 1;
    }
    g->R = 1;
    g->nout = 1;
    for (int i = 0; i < r; i++) {
        if (red[i]) g->R *= x->shape[i];
        else g->nout *= x->shape[i];
    }
    /* block test: reduced non-1 axes adjacent */
    int first = -1, lastr = -1, block = 1;
    for (int i = 0; i < r; i++)
        if (red[i] && x->shape[i] > 1) {
            if (first < 0) first = i;
            else
                for (int j = lastr + 1; j < i; j++)
                    if (x->shape[j] > 1) block = 0;
            lastr = i;
        }
    if (block) {
        g->block = 1;
        g->outer = 1;
        g->inner = 1;
        for (int i = 0; i < r; i++) {
            if (red[i] && x->shape[i] > 1) continue;
            if (x->shape[i] == 1) continue;
            if (first < 0 || i < first) g->outer *= x->shape[i];
            else g->inner *= x->shape[i];
        }
        return 0;
    }
    /* generic: offsets of every reduced element and of every output's base */
    int64_t st[MIL_MAX_RANK];
    cpu_strides(r, x->shape, st);
    g->roff = malloc((size_t)g->R * sizeof(int64_t));
    g->ooff = malloc((size_t)g->nout * sizeof(int64_t));
    if (!g->roff || !g->ooff) {
        free(g->roff);
        free(g->ooff);
        g->roff = g->ooff = NULL;
        return -2;
    }
    for (int pass = 0; pass < 2; pass++) {
        int64_t *dst = pass ? g->ooff : g->roff, cnt = pass ? g->nout : g->R;
        for (int64_t k = 0; k < cnt; k++) {
            int64_t t = k, off = 0;
            for (int i = r - 1; i >= 0; i--) {
                if (red[i] == pass) continue; /* pass 0 walks reduced axes, pass 1 kept axes */
                int64_t id = t % x->shape[i];
                t /= x->shape[i];
                off += id * st[i];
            }
            dst[k] = off;
        }
    }
    return 0;
}

void red_geom_free(red_geom *g) {
    free(g->roff);
    free(g->ooff);
    g->roff = g->ooff = NULL;
}

/* ---- reductions ---- */

enum { R_SUM, R_MEAN, R_MAX, R_MIN, R_PROD, R_SUMSQ, R_L1, R_L2, R_LOGSUM, R_LSE, R_ARGMAX, R_ARGMIN };

typedef struct red_p {
    int op;
    red_geom g;
} red_p;

static void red_finish(int op, float *o, int64_t n, int64_t R) {
    switch (op) {
    case R_MEAN: for (int64_t i = 0; i < n; i++) o[i] /= (float)R; break;
    case R_L2: for (int64_t i = 0; i < n; i++) o[i] = sqrtf(o[i]); break;
    case R_LOGSUM: for (int64_t i = 0; i < n; i++) o[i] = logf(o[i]); break;
    default: break;
    }
}

CPU_VEC static void run_reduce(const cpu_exec *ex, const cpu_node *nd) {
    const red_p *p = nd->p;
    const red_geom *g = &p->g;
    const float *x = ex->ptr[nd->in[0]];
    float *o = ex->ptr[nd->out[0]];
    int op = p->op;
    int64_t R = g->R;
    if (g->block) {
        int64_t I = g->inner;
        for (int64_t ou = 0; ou < g->outer; ou++) {
            const float *xb = x + ou * R * I;
            float *acc = o + ou * I;
            if (op == R_LSE) {
                /* stable: m = max, then m + log(sum exp(x - m)) */
                float *m = acc;
                for (int64_t i = 0; i < I; i++) m[i] = -INFINITY;
                for (int64_t r = 0; r < R; r++)
                    for (int64_t i = 0; i < I; i++) m[i] = fmaxf(m[i], xb[r * I + i]);
                for (int64_t i = 0; i < I; i++) {
                    float mi = m[i], s = 0;
                    if (isinf(mi)) continue;
                    for (int64_t r = 0; r < R; r++) s += expf(xb[r * I + i] - mi);
                    acc[i] = mi + logf(s);
                }
                continue;
            }
            if (op == R_ARGMAX || op == R_ARGMIN) {
                for (int64_t i = 0; i < I; i++) {
                    float best = xb[i];
                    int64_t bi = 0;
                    for (int64_t r = 1; r < R; r++) {
                        float v = xb[r * I + i];
                        if (best != best) break; /* NaN wins, as NumPy */
                        if (v != v || (op == R_ARGMAX ? v > best : v < best)) {
                            best = v;
                            bi = r;
                        }
                    }
                    acc[i] = (float)bi;
                }
                continue;
            }
            float init = op == R_MAX ? -INFINITY : op == R_MIN ? INFINITY : op == R_PROD ? 1.0f : 0.0f;
            for (int64_t i = 0; i < I; i++) acc[i] = init;
            for (int64_t r = 0; r < R; r++) {
                const float *row = xb + r * I;
                switch (op) {
                case R_SUM: case R_MEAN: case R_LOGSUM:
                    for (int64_t i = 0; i < I; i++) acc[i] += row[i];
                    break;
                case R_SUMSQ: case R_L2:
                    for (int64_t i = 0; i < I; i++) acc[i] += row[i] * row[i];
                    break;
                case R_L1: for (int64_t i = 0; i < I; i++) acc[i] += fabsf(row[i]); break;
                case R_PROD: for (int64_t i = 0; i < I; i++) acc[i] *= row[i]; break;
                case R_MAX:
                    for (int64_t i = 0; i < I; i++) acc[i] = (row[i] > acc[i] || row[i] != row[i]) ? row[i] : acc[i];
                    break;
                case R_MIN:
                    for (int64_t i = 0; i < I; i++) acc[i] = (row[i] < acc[i] || row[i] != row[i]) ? row[i] : acc[i];
                    break;
                }
            }
        }
        red_finish(op, o, g->outer * I, R);
        return;
    }
    for (int64_t k = 0; k < g->nout; k++) {
        const float *xb = x + g->ooff[k];
        float acc;
        if (op == R_ARGMAX || op == R_ARGMIN || op == R_LSE) { /* single-axis ops use blocks */
            float m = -INFINITY, s = 0;
            for (int64_t r = 0; r < R; r++) m = fmaxf(m, xb[g->roff[r]]);
            for (int64_t r = 0; r < R; r++) s += expf(xb[g->roff[r]] - m);
            o[k] = isinf(m) ? m : m + logf(s);
            continue;
        }
        acc = op == R_MAX ? -INFINITY : op == R_MIN ? INFINITY : op == R_PROD ? 1.0f : 0.0f;
        for (int64_t r = 0; r < R; r++) {
            float v = xb[g->roff[r]];
            switch (op) {
            case R_SUM: case R_MEAN: case R_LOGSUM: acc += v; break;
            case R_SUMSQ: case R_L2: acc += v * v; break;
            case R_L1: acc += fabsf(v); break;
            case R_PROD: acc *= v; break;
            case R_MAX: acc = (v > acc || v != v) ? v : acc; break;
            case R_MIN: acc = (v < acc || v != v) ? v : acc; break;
            }
        }
        o[k] = acc;
    }
    red_finish(op, o, g->nout, R);
}

static int red_code(mil_opkind k) {
    switch (k) {
    case MIL_OP_reduce_sum: return R_SUM;
    case MIL_OP_reduce_mean: return R_MEAN;
    case MIL_OP_reduce_max: return R_MAX;
    case MIL_OP_reduce_min: return R_MIN;
    case MIL_OP_reduce_prod: return R_PROD;
    case MIL_OP_reduce_sum_square: return R_SUMSQ;
    case MIL_OP_reduce_l1_norm: return R_L1;
    case MIL_OP_reduce_l2_norm: return R_L2;
    case MIL_OP_reduce_log_sum: return R_LOGSUM;
    case MIL_OP_reduce_log_sum_exp: return R_LSE;
    case MIL_OP_reduce_argmax: return R_ARGMAX;
    case MIL_OP_reduce_argmin: return R_ARGMIN;
    default: return -1;
    }
}

static void free_red(red_p *p) {
    if (!p) return;
    red_geom_free(&p->g);
    free(p);
}

int cpu_plan_reduce(cpu_planner *P, const mil_op *op) {
    cpu_val *V = P->pl->vals;
    int x = cpu_arg(P, op, "x"), rc, nax;
    if (x < 0 || op->nres < 1) return cpu_op_error(P, op, ERR_INVAL, "missing input 'x'");
    int code = red_code(op->kind);
    int64_t axes[MIL_MAX_RANK];
    if (code == R_ARGMAX || code == R_ARGMIN) {
        if ((rc = cpu_arg_int(P, op, "axis", &axes[0]))) return rc;
        nax = 1;
    } else {
        if ((rc = cpu_arg_ints(P, op, "axes", axes, MIL_MAX_RANK, &nax))) return rc;
    }
    red_p *p = calloc(1, sizeof *p);
    if (!p) return cpu_op_error(P, op, ERR_NOMEM, "out of memory");
    p->op = code;
    rc = red_geom_init(&p->g, &V[x], axes, nax);
    if (rc == -1) {
        free_red(p);
        return cpu_op_error(P, op, ERR_INVAL, "axes out of range or repeated");
    }
    if (rc) {
        free_red(p);
        return cpu_op_error(P, op, ERR_NOMEM, "out of memory");
    }
    if (p->g.nout != V[op->res[0]].n) {
        free_red(p);
        return cpu_op_error(P, op, ERR_SHAPE, "result shape does not match the reduction");
    }
    cpu_node *nd = cpu_node_new(P, op, 1, run_reduce);
    if (!nd) {
        free_red(p);
        return P->e->code;
    }
    /* the generic geometry owns arrays: keep them in one block freed with nd->p */
    if (!p->g.block) {
        size_t bytes = sizeof *p + (size_t)(p->g.R + p->g.nout) * sizeof(int64_t);
        red_p *q = malloc(bytes);
        if (!q) {
            free_red(p);
            P->pl->nnodes--;
            free(nd->in);
            free(nd->out);
            return cpu_op_error(P, op, ERR_NOMEM, "out of memory");
        }
        *q = *p;
        q->g.roff = (int64_t *)(q + 1);
        q->g.ooff = q->g.roff + p->g.R;
        memcpy(q->g.roff, p->g.roff, (size_t)p->g.R * sizeof(int64_t));
        memcpy(q->g.ooff, p->g.ooff, (size_t)p->g.nout * sizeof(int64_t));
        free_red(p);
        p = q;
    }
    nd->p = p;
    nd->in[0] = x;
    return 0;
}
