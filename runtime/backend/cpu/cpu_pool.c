/* cpu_pool.c - the windowed and resampling ops taken from coremltools' definitions: avg_pool,
 * max_pool, l2_pool (1 to 3 spatial axes), resize_nearest_neighbor, resize_bilinear, and einsum
 * in its two coremltools forms. Each computes in fp32 and rounds its result once (fp16 mode).
 *
 * Padding follows conv (docs/cpu-backend.md): `same` puts the odd pad at the end, `same_lower` at
 * the start. avg_pool divides by the window clipped to the padded input (PyTorch's
 * count_include_pad), or by the elements inside x with exclude_padding_from_average; max_pool
 * ignores padding; l2_pool is sqrt of the sum of squares of the elements inside x. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"

/* ---- pools ---- */

typedef struct pool_p {
    int nsp, exclude;
    int64_t planes;                  /* N * C */
    int64_t d[3], o[3], k[3], st[3], before[3], after[3];
} pool_p;

static void run_pool(const cpu_exec *ex, const cpu_node *nd) {
    const pool_p *p = nd->p;
    const float *x = ex->ptr[nd->in[0]];
    float *y = ex->ptr[nd->out[0]];
    int nsp = p->nsp;
    int64_t d[3] = {1, 1, 1}, o[3] = {1, 1, 1}, k[3] = {1, 1, 1}, st[3] = {1, 1, 1}, b[3] = {0, 0, 0}, a[3] = {0, 0, 0};
    for (int i = 0; i < nsp; i++) /* right-align into 3 axes so one loop nest serves 1-D to 3-D */
        d[3 - nsp + i] = p->d[i], o[3 - nsp + i] = p->o[i], k[3 - nsp + i] = p->k[i], st[3 - nsp + i] = p->st[i],
        b[3 - nsp + i] = p->before[i], a[3 - nsp + i] = p->after[i];
    int64_t insz = d[0] * d[1] * d[2], outsz = o[0] * o[1] * o[2];
    for (int64_t pl = 0; pl < p->planes; pl++) {
        const float *xp = x + pl * insz;
        float *yp = y + pl * outsz;
        for (int64_t i0 = 0; i0 < o[0]; i0++)
            for (int64_t i1 = 0; i1 < o[1]; i1++)
                for (int64_t i2 = 0; i2 < o[2]; i2++) {
                    int64_t s[3] = {i0 * st[0] - b[0], i1 * st[1] - b[1], i2 * st[2] - b[2]}, lo[3], hi[3];
                    int64_t padded = 1;
                    for (int q = 0; q < 3; q++) {
                        int64_t e = s[q] + k[q];
                        int64_t pe = e < d[q] + a[q] ? e : d[q] + a[q];
                        padded *= pe - s[q];
                        lo[q] = s[q] < 0 ? 0 : s[q];
                        hi[q] = e < d[q] ? e : d[q];
                    }
                    float acc = nd->kind == MIL_OP_max_pool ? -INFINITY : 0.0f;
                    int64_t cnt = 0;
                    for (int64_t j0 = lo[0]; j0 < hi[0]; j0++)
                        for (int64_t j1 = lo[1]; j1 < hi[1]; j1++)
                            for (int64_t j2 = lo[2]; j2 < hi[2]; j2++) {
                                float v = xp[(j0 * d[1] + j1) * d[2] + j2];
                                if (nd->kind == MIL_OP_max_pool) acc = v > acc || v != v ? v : acc;
                                else if (nd->kind == MIL_OP_l2_pool) acc += v * v;
                                else acc += v;
                                cnt++;
                            }
                    if (nd->kind == MIL_OP_avg_pool) acc /= (float)(p->exclude ? (cnt > 0 ? cnt : 1) : padded);
                    else if (nd->kind == MIL_OP_l2_pool) acc = sqrtf(acc);
                    yp[(i0 * o[1] + i1) * o[2] + i2] = acc;
                }
    }
}

static int plan_pool(cpu_planner *P, const mil_op *op, int x, int out) {
    const cpu_val *V = P->pl->vals;
    pool_p pp;
    memset(&pp, 0, sizeof pp);
    pp.nsp = V[x].rank - 2;
    if (pp.nsp < 1 || pp.nsp > 3) return cpu_op_error(P, op, ERR_SHAPE, "pools take 1 to 3 spatial axes");
    int n, rc, ex = 0;
    int64_t pad[6];
    if ((rc = cpu_arg_ints(P, op, "kernel_sizes", pp.k, 3, &n)) || (rc = cpu_arg_ints(P, op, "strides", pp.st, 3, &n)) ||
        (rc = cpu_arg_ints(P, op, "pad", pad, 6, &n)))
        return rc;
    if (op->kind == MIL_OP_avg_pool && (rc = cpu_arg_bool(P, op, "exclude_padding_from_average", &ex))) return rc;
    const char *pt = cpu_arg_string(P, op, "pad_type");
    int mode = !pt || !strcmp(pt, "valid") ? 0 : !strcmp(pt, "custom") ? 1 : !strcmp(pt, "same") ? 2 : 3;
    pp.exclude = ex;
    pp.planes = V[x].shape[0] * V[x].shape[1];
    for (int i = 0; i < pp.nsp; i++) {
        pp.d[i] = V[x].shape[2 + i];
        pp.o[i] = V[out].shape[2 + i];
        if (mode == 1) {
            pp.before[i] = pad[2 * i], pp.after[i] = pad[2 * i + 1];
        } else if (mode >= 2) {
            int64_t total = (pp.o[i] - 1) * pp.st[i] + pp.k[i] - pp.d[i];
            if (total < 0) total = 0;
            pp.before[i] = mode == 2 ? total / 2 : total - total / 2;
            pp.after[i] = total - pp.before[i];
        }
    }
    pool_p *p = malloc(sizeof *p);
    if (!p) return cpu_op_error(P, op, ERR_NOMEM, "out of memory");
    *p = pp;
    cpu_node *nd = cpu_node_new(P, op, 1, run_pool);
    if (!nd) {
        free(p);
        return P->e->code;
    }
    nd->p = p;
    nd->in[0] = x;
    nd->round = op->kind != MIL_OP_max_pool; /* max moves a value unchanged */
    return 0;
}

/* ---- resizes ---- */

typedef struct resize_p {
    int64_t planes, ih, iw, oh, ow;
    int nearest;
    /* per output row / column: the two source positions and the weight of the second */
    int64_t *r0, *r1, *c0, *c1;
    float *rw, *cw;
    unsigned char mem[];
} resize_p;

static void run_resize(const cpu_exec *ex, const cpu_node *nd) {
    const resize_p *p = nd->p;
    const float *x = ex->ptr[nd->in[0]];
    float *y = ex->ptr[nd->out[0]];
    for (int64_t pl = 0; pl < p->planes; pl++) {
        const float *xp = x + pl * p->ih * p->iw;
        float *yp = y + pl * p->oh * p->ow;
        for (int64_t i = 0; i < p->oh; i++)
            for (int64_t j = 0; j < p->ow; j++) {
                const float *a = xp + p->r0[i] * p->iw, *b = xp + p->r1[i] * p->iw;
                if (p->nearest) {
                    yp[i * p->ow + j] = a[p->c0[j]];
                    continue;
                }
                float cw = p->cw[j], rw = p->rw[i];
                float top = a[p->c0[j]] + cw * (a[p->c1[j]] - a[p->c0[j]]);
                float bot = b[p->c0[j]] + cw * (b[p->c1[j]] - b[p->c0[j]]);
                yp[i * p->ow + j] = top + rw * (bot - top);
            }
    }
}

/* Source grid point of output i for resize_bilinear's sampling modes (coremltools' notes). */
static double grid(const char *mode, int64_t in, int64_t out, int64_t i) {
    double g;
    if (!strcmp(mode, "STRICT_ALIGN_CORNERS") || !strcmp(mode, "ALIGN_CORNERS")) {
        if (out == 1) g = !strcmp(mode, "ALIGN_CORNERS") ? (double)(in - 1) / 2 : 0;
        else g = (double)i * (double)(in - 1) / (double)(out - 1);
    } else if (!strcmp(mode, "OFFSET_CORNERS")) {
        double delta = (double)(in - 1 > 1 ? in - 1 : 1) / (double)out;
        g = 0.5 * delta + (double)i * delta;
    } else if (!strcmp(mode, "UNALIGN_CORNERS")) {
        double sp = (double)in / (double)out;
        g = (double)i * sp + 0.5 * sp - 0.5;
    } else { /* DEFAULT: spacing (in - in/out)/(out - 1) = in/out */
        g = (double)i * (double)in / (double)out;
    }
    if (g > (double)(in - 1)) g = (double)(in - 1);
    return g < 0 ? 0 : g;
}

static void axis_map(const char *mode, int nearest, int64_t in, int64_t out, int64_t *s0, int64_t *s1, float *w) {
    for (int64_t i = 0; i < out; i++) {
        if (nearest) { /* TensorFlow's default: floor(i * in / out) */
            int64_t s = (int64_t)floor((double)i * (double)in / (double)out);
            s0[i] = s1[i] = s < in ? s : in - 1;
            w[i] = 0;
            continue;
        }
        double g = grid(mode, in, out, i), f = floor(g);
        s0[i] = (int64_t)f;
        s1[i] = s0[i] + 1 < in ? s0[i] + 1 : in - 1;
        w[i] = (float)(g - f);
    }
}

static int plan_resize(cpu_planner *P, const mil_op *op, int x, int out) {
    const cpu_val *V = P->pl->vals;
    int r = V[x].rank;
    int64_t ih = V[x].shape[r - 2], iw = V[x].shape[r - 1], oh = V[out].shape[r - 2], ow = V[out].shape[r - 1];
    size_t ni = (size_t)(2 * oh + 2 * ow), nf = (size_t)(oh + ow);
    resize_p *p = malloc(sizeof *p + ni * sizeof(int64_t) + nf * sizeof(float));
    if (!p) return cpu_op_error(P, op, ERR_NOMEM, "out of memory");
    p->planes = V[x].n / (ih * iw);
    p->ih = ih, p->iw = iw, p->oh = oh, p->ow = ow;
    p->nearest = op->kind == MIL_OP_resize_nearest_neighbor;
    int64_t *iv = (int64_t *)p->mem;
    p->r0 = iv, p->r1 = iv + oh, p->c0 = iv + 2 * oh, p->c1 = iv + 2 * oh + ow;
    p->rw = (float *)(iv + ni), p->cw = p->rw + oh;
    const char *mode = p->nearest ? "" : cpu_arg_string(P, op, "sampling_mode");
    if (!mode) mode = "DEFAULT";
    axis_map(mode, p->nearest, ih, oh, p->r0, p->r1, p->rw);
    axis_map(mode, p->nearest, iw, ow, p->c0, p->c1, p->cw);
    cpu_node *nd = cpu_node_new(P, op, 1, run_resize);
    if (!nd) {
        free(p);
        return P->e->code;
    }
    nd->p = p;
    nd->in[0] = x;
    nd->round = !p->nearest;
    return 0;
}

/* ---- einsum: "nchw,nwhu->nchu" (rank 4) and "chw,whr->chr" (rank 3), b and h broadcast ---- */

typedef struct einsum_p {
    int64_t B, C, H, W, U;   /* output [B, C, H, U], contraction over W */
    int64_t ab, ah, bb, bh;  /* 1 if that operand has the axis (else it is broadcast) */
} einsum_p;

static void run_einsum(const cpu_exec *ex, const cpu_node *nd) {
    const einsum_p *p = nd->p;
    const float *a = ex->ptr[nd->in[0]], *b = ex->ptr[nd->in[1]];
    float *y = ex->ptr[nd->out[0]];
    int64_t aH = p->ah ? p->H : 1, bH = p->bh ? p->H : 1;
    for (int64_t n = 0; n < p->B; n++)
        for (int64_t c = 0; c < p->C; c++)
            for (int64_t h = 0; h < p->H; h++)
                for (int64_t u = 0; u < p->U; u++) {
                    /* a [B, C, H, W]; b [B, W, H, U] */
                    const float *ar = a + (((p->ab ? n : 0) * p->C + c) * aH + (p->ah ? h : 0)) * p->W;
                    const float *bc = b + ((p->bb ? n : 0) * p->W * bH + (p->bh ? h : 0)) * p->U + u;
                    float acc = 0;
                    for (int64_t w = 0; w < p->W; w++) acc += ar[w] * bc[w * bH * p->U];
                    y[((n * p->C + c) * p->H + h) * p->U + u] = acc;
                }
}

static int plan_einsum(cpu_planner *P, const mil_op *op, int out) {
    const cpu_val *V = P->pl->vals;
    const mil_binding *vb = mil_op_input(op, "values");
    if (!vb || vb->n != 2) return cpu_op_error(P, op, ERR_INVAL, "einsum needs two values");
    int a = vb->values[0], b = vb->values[1], r = V[a].rank;
    einsum_p *p = malloc(sizeof *p);
    if (!p) return cpu_op_error(P, op, ERR_NOMEM, "out of memory");
    p->B = r == 4 ? V[out].shape[0] : 1;
    p->C = V[a].shape[r - 3], p->H = V[out].shape[r - 2], p->W = V[a].shape[r - 1], p->U = V[b].shape[r - 1];
    p->ab = r == 4 && V[a].shape[0] != 1, p->bb = r == 4 && V[b].shape[0] != 1;
    p->ah = V[a].shape[r - 2] != 1, p->bh = V[b].shape[r - 2] != 1;
    cpu_node *nd = cpu_node_new(P, op, 2, run_einsum);
    if (!nd) {
        free(p);
        return P->e->code;
    }
    nd->p = p;
    nd->in[0] = a;
    nd->in[1] = b;
    nd->saturate32k = 1; /* a matmul on the ANE (field notes 3.1) */
    return 0;
}

int cpu_plan_pool(cpu_planner *P, const mil_op *op) {
    if (op->nres < 1) return cpu_op_error(P, op, ERR_INVAL, "op has no result");
    int out = op->res[0];
    if (op->kind == MIL_OP_einsum) return plan_einsum(P, op, out);
    int x = cpu_arg(P, op, "x");
    if (x < 0) return cpu_op_error(P, op, ERR_INVAL, "missing input 'x'");
    if (op->kind == MIL_OP_resize_nearest_neighbor || op->kind == MIL_OP_resize_bilinear) return plan_resize(P, op, x, out);
    return plan_pool(P, op, x, out);
}
