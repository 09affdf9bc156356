/* cpu_gather.c - gather, gather_along_axis, scatter, scatter_along_axis (mil-reference.md 8.8).
 *
 * Indices wrap once when negative (NumPy). The reference leaves out-of-range indices undefined;
 * here they are clamped to the axis so a bad index can never read or write outside a buffer. */
#include <stdlib.h>
#include <string.h>

#include "cpu.h"

static inline int64_t fix_index(float f, int64_t n) {
    int64_t i = (int64_t)f;
    if (i < 0) i += n;
    if (i < 0) i = 0;
    if (i >= n) i = n - 1;
    return i;
}

enum { M_UPDATE, M_ADD, M_SUB, M_MUL, M_DIV, M_MAX, M_MIN };

static inline float combine(int mode, float a, float b) {
    switch (mode) {
    case M_ADD: return a + b;
    case M_SUB: return a - b;
    case M_MUL: return a * b;
    case M_DIV: return a / b;
    case M_MAX: return a > b ? a : b;
    case M_MIN: return a < b ? a : b;
    default: return b;
    }
}

typedef struct g_p {
    int64_t B, Pn, A, I, Q; /* gather: batch, pre-axis, axis, indices per batch, post-axis */
    int mode;
} g_p;

/* gather: out[b, p, i, q] = x[b, p, idx[b, i], q] */
static void run_gather(const cpu_exec *ex, const cpu_node *nd) {
    const g_p *p = nd->p;
    const float *x = ex->ptr[nd->in[0]], *idx = ex->ptr[nd->in[1]];
    float *o = ex->ptr[nd->out[0]];
    for (int64_t b = 0; b < p->B; b++)
        for (int64_t pp = 0; pp < p->Pn; pp++)
            for (int64_t i = 0; i < p->I; i++) {
                int64_t k = fix_index(idx[b * p->I + i], p->A);
                memcpy(o + ((b * p->Pn + pp) * p->I + i) * p->Q, x + ((b * p->Pn + pp) * p->A + k) * p->Q,
                       (size_t)p->Q * sizeof(float));
            }
}

/* gather_along_axis: x [outer, A, inner], idx/out [outer, I, inner] */
static void run_gather_axis(const cpu_exec *ex, const cpu_node *nd) {
    const g_p *p = nd->p;
    const float *x = ex->ptr[nd->in[0]], *idx = ex->ptr[nd->in[1]];
    float *o = ex->ptr[nd->out[0]];
    for (int64_t b = 0; b < p->Pn; b++)
        for (int64_t i = 0; i < p->I; i++)
            for (int64_t q = 0; q < p->Q; q++) {
                int64_t at = (b * p->I + i) * p->Q + q;
                o[at] = x[(b * p->A + fix_index(idx[at], p->A)) * p->Q + q];
            }
}

/* scatter: out = data; out[o, idx[c], q] (+)= upd[o, c, q] */
static void run_scatter(const cpu_exec *ex, const cpu_node *nd) {
    const g_p *p = nd->p;
    const float *d = ex->ptr[nd->in[0]], *idx = ex->ptr[nd->in[1]], *u = ex->ptr[nd->in[2]];
    float *o = ex->ptr[nd->out[0]];
    int64_t n = cpu_v(ex, nd->out[0])->n;
    if (o != d) memcpy(o, d, (size_t)n * sizeof(float));
    for (int64_t b = 0; b < p->Pn; b++)
        for (int64_t c = 0; c < p->I; c++) {
            int64_t k = fix_index(idx[c], p->A);
            float *orow = o + (b * p->A + k) * p->Q;
            const float *urow = u + (b * p->I + c) * p->Q;
            for (int64_t q = 0; q < p->Q; q++) orow[q] = combine(p->mode, orow[q], urow[q]);
        }
}

/* scatter_along_axis: idx/upd [outer, I, inner] into out [outer, A, inner] */
static void run_scatter_axis(const cpu_exec *ex, const cpu_node *nd) {
    const g_p *p = nd->p;
    const float *d = ex->ptr[nd->in[0]], *idx = ex->ptr[nd->in[1]], *u = ex->ptr[nd->in[2]];
    float *o = ex->ptr[nd->out[0]];
    int64_t n = cpu_v(ex, nd->out[0])->n;
    if (o != d) memcpy(o, d, (size_t)n * sizeof(float));
    for (int64_t b = 0; b < p->Pn; b++)
        for (int64_t i = 0; i < p->I; i++)
            for (int64_t q = 0; q < p->Q; q++) {
                int64_t at = (b * p->I + i) * p->Q + q;
                float *t = &o[(b * p->A + fix_index(idx[at], p->A)) * p->Q + q];
                *t = combine(p->mode, *t, u[at]);
            }
}

static int mode_code(const char *m) {
    static const char *names[] = {"update", "add", "sub", "mul", "div", "max", "min"};
    for (int i = 0; m && i < 7; i++)
        if (strcmp(m, names[i]) == 0) return i;
    return -1;
}

int cpu_plan_gather(cpu_planner *P, const mil_op *op) {
    cpu_val *V = P->pl->vals;
    int scat = op->kind == MIL_OP_scatter || op->kind == MIL_OP_scatter_along_axis;
    int x = cpu_arg(P, op, scat ? "data" : "x"), ind = cpu_arg(P, op, "indices"), rc;
    int upd = scat ? cpu_arg(P, op, "updates") : -1;
    if (x < 0 || ind < 0 || (scat && upd < 0) || op->nres < 1)
        return cpu_op_error(P, op, ERR_INVAL, "missing inputs");
    int out = op->res[0], r = V[x].rank;
    int64_t ax, bd = 0;
    if ((rc = cpu_arg_int(P, op, "axis", &ax))) return rc;
    int a = cpu_axis(ax, r);
    if (a < 0) return cpu_op_error(P, op, ERR_INVAL, "axis %lld out of range", (long long)ax);
    g_p *p = calloc(1, sizeof *p);
    if (!p) return cpu_op_error(P, op, ERR_NOMEM, "out of memory");
    p->A = V[x].shape[a];
    p->Pn = p->Q = 1;
    for (int i = 0; i < a; i++) p->Pn *= V[x].shape[i];
    for (int i = a + 1; i < r; i++) p->Q *= V[x].shape[i];
    cpu_run_fn run;
    int nin = 2;
    if (op->kind == MIL_OP_gather) {
        if ((rc = cpu_arg_int(P, op, "batch_dims", &bd))) goto fail;
        if (bd < 0 || bd > a || bd > V[ind].rank) {
            rc = cpu_op_error(P, op, ERR_INVAL, "batch_dims %lld out of range", (long long)bd);
            goto fail;
        }
        p->B = 1;
        for (int i = 0; i < bd; i++) p->B *= V[x].shape[i];
        p->Pn /= p->B;
        p->I = V[ind].n / p->B;
        run = run_gather;
    } else {
        /* indices (and updates) are x's shape with a different size on axis */
        p->I = V[ind].n / (p->Pn * p->Q);
        if (p->I * p->Pn * p->Q != V[ind].n) {
            rc = cpu_op_error(P, op, ERR_SHAPE, "indices must match x except on axis");
            goto fail;
        }
        if (op->kind == MIL_OP_gather_along_axis) {
            run = run_gather_axis;
        } else {
            const char *m = cpu_arg_string(P, op, "mode");
            p->mode = mode_code(m);
            if (p->mode < 0) {
                rc = cpu_op_error(P, op, ERR_INVAL, "unknown scatter mode '%s'", m ? m : "(not a string)");
                goto fail;
            }
            if (op->kind == MIL_OP_scatter) {
                p->I = V[ind].n; /* indices [C]; updates [pre, C, post] */
                if (V[upd].n != p->Pn * p->I * p->Q) {
                    rc = cpu_op_error(P, op, ERR_SHAPE, "updates must be data.shape[:axis] + [C] + data.shape[axis+1:]");
                    goto fail;
                }
                run = run_scatter;
            } else {
                if (V[upd].n != V[ind].n) {
                    rc = cpu_op_error(P, op, ERR_SHAPE, "updates must have the shape of indices");
                    goto fail;
                }
                run = run_scatter_axis;
            }
            nin = 3;
        }
    }
    cpu_node *nd = cpu_node_new(P, op, nin, run);
    if (!nd) {
        rc = P->e->code;
        goto fail;
    }
    nd->p = p;
    nd->in[0] = x;
    nd->in[1] = ind;
    if (nin == 3) nd->in[2] = upd;
    nd->round = scat; /* a combine may produce new values; gathers only move them */
    nd->inplace = scat;
    (void)out;
    return 0;
fail:
    free(p);
    return rc;
}
