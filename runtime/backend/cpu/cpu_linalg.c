/* cpu_linalg.c - matmul, linear, conv, conv_transpose (mil-reference.md 8.6), all through SGEMM.
 *
 * matmul reads a swapped-axes transpose's input directly and flips the GEMM flag instead, and a
 * matmul whose only reader is such a transpose writes the transposed product itself (C^T = B^T
 * A^T), so the [1,H,D,S] <-> [1,H,S,D] transposes of attention code cost no copies. conv 1x1
 * (stride 1, no padding) is one GEMM per batch and group over the [C, spatial] layout the ANE
 * uses; other convs gather columns (im2col) into node scratch first. Accumulation is fp32 inside
 * the GEMM; only the op's result is rounded (7.3 rule 2). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/fp16.h"
#include "cpu.h"

/* ---- matmul ---- */

typedef struct mm_p {
    int tx, ty;          /* GEMM flags after folding */
    float alpha;         /* a power-of-two scale folded in from a following mul (exact) */
    int out_t;           /* write the product transposed (its reader transpose was folded) */
    int64_t M, N, K;
    int nb;              /* batch rank (of the output) */
    int64_t bshape[MIL_MAX_RANK], bsx[MIL_MAX_RANK], bsy[MIL_MAX_RANK];
    int64_t nbatch;
    int merge_m;         /* y has no batch and x is not transposed: one GEMM with M * nbatch rows */
} mm_p;

typedef struct mm_job {
    const cpu_plan *pl;
    const mm_p *p;
    const float *x, *y;
    float *o;
    uint16_t *o16;
} mm_job;

static void mm_batches(void *ctx, int64_t lo, int64_t hi);

static void run_matmul(const cpu_exec *ex, const cpu_node *nd) {
    const mm_p *p = nd->p;
    const float *x = ex->ptr[nd->in[0]], *y = ex->ptr[nd->in[1]];
    float *o = ex->ptr[nd->out[0]];
    int64_t M = p->M, N = p->N, K = p->K, ldb = p->ty ? K : N;
    uint16_t *o16 = nd->out16 >= 0 && ex->out16 ? ex->out16[nd->out16] : NULL;
    if (p->merge_m) {
        cpu_sgemm(ex->pl, 0, p->ty, M * p->nbatch, N, K, p->alpha, x, K, y, ldb, 0.0f, o, N);
        if (o16) fp16_from_f32_n(o16, o, (size_t)(M * N * p->nbatch));
        return;
    }
    mm_job j = {ex->pl, p, x, y, o, o16};
    /* Many small GEMMs (attention heads): a head per thread beats splitting each head. */
    if (p->nbatch >= 2 && M * N * K <= ((int64_t)1 << 24))
        cpu_parallel(ex->pl, p->nbatch, M * N * K, mm_batches, &j);
    else
        mm_batches(&j, 0, p->nbatch);
}

static void mm_batches(void *ctx, int64_t lo, int64_t hi) {
    const mm_job *j = ctx;
    const mm_p *p = j->p;
    const float *x = j->x, *y = j->y;
    float *o = j->o;
    uint16_t *o16 = j->o16;
    int64_t M = p->M, N = p->N, K = p->K;
    int64_t lda = p->tx ? M : K, ldb = p->ty ? K : N;
    for (int64_t b = lo; b < hi; b++) {
        int64_t t = b, ox = 0, oy = 0;
        for (int i = p->nb - 1; i >= 0; i--) {
            int64_t id = t % p->bshape[i];
            t /= p->bshape[i];
            ox += id * p->bsx[i];
            oy += id * p->bsy[i];
        }
        float *ob = o + b * M * N;
        if (p->out_t) /* C^T[N,M] = op(B)^T op(A)^T */
            cpu_sgemm(j->pl, !p->ty, !p->tx, N, M, K, p->alpha, y + oy, ldb, x + ox, lda, 0.0f, ob, M);
        else
            cpu_sgemm(j->pl, p->tx, p->ty, M, N, K, p->alpha, x + ox, lda, y + oy, ldb, 0.0f, ob, N);
        if (o16) fp16_from_f32_n(o16 + b * M * N, ob, (size_t)(M * N)); /* while ob is in cache */
    }
}

static int plan_matmul(cpu_planner *P, const mil_op *op) {
    cpu_val *V = P->pl->vals;
    int x = cpu_arg(P, op, "x"), y = cpu_arg(P, op, "y"), out = op->res[0];
    if (x < 0 || y < 0) return cpu_op_error(P, op, ERR_INVAL, "needs x and y");
    int tx, ty, rc;
    if ((rc = cpu_arg_bool(P, op, "transpose_x", &tx)) || (rc = cpu_arg_bool(P, op, "transpose_y", &ty)))
        return rc;
    if (V[x].rank < 1 || V[y].rank < 1) return cpu_op_error(P, op, ERR_SHAPE, "operands must have rank >= 1");
    /* Read through swap-transposes (the transpose node then dies unless something else reads it). */
    int s;
    if (V[x].rank >= 2 && (s = cpu_swap_source(P, x)) >= 0) { x = s; tx = !tx; }
    if (V[y].rank >= 2 && (s = cpu_swap_source(P, y)) >= 0) { y = s; ty = !ty; }
    /* Logical shapes: rank-1 x is [1, K], rank-1 y is [K, 1]. */
    int rx = V[x].rank, ry = V[y].rank;
    int64_t xr = rx >= 2 ? V[x].shape[rx - 2] : 1, xc = V[x].shape[rx - 1];
    int64_t yr = ry >= 2 ? V[y].shape[ry - 2] : V[y].shape[0], yc = ry >= 2 ? V[y].shape[ry - 1] : 1;
    mm_p *p = calloc(1, sizeof *p);
    if (!p) return cpu_op_error(P, op, ERR_NOMEM, "out of memory");
    p->alpha = 1.0f;
    p->tx = tx && rx >= 2;
    p->ty = ty && ry >= 2;
    p->M = p->tx ? xc : xr;
    p->K = p->tx ? xr : xc;
    p->N = p->ty ? yr : yc;
    int64_t ky = p->ty ? yc : yr;
    if (ky != p->K) {
        long long k1 = p->K;
        free(p);
        return cpu_op_error(P, op, ERR_SHAPE, "inner dimensions differ (%lld vs %lld)", k1, (long long)ky);
    }
    /* batch: output batch axes = all but the last two of the broadcast shape */
    int bx = rx > 2 ? rx - 2 : 0, by = ry > 2 ? ry - 2 : 0;
    int nb = bx > by ? bx : by;
    p->nb = nb;
    p->nbatch = 1;
    int64_t sx = p->M * p->K, sy = p->K * p->N;
    for (int i = nb - 1; i >= 0; i--) {
        int jx = i - (nb - bx), jy = i - (nb - by);
        int64_t dx = jx >= 0 ? V[x].shape[jx] : 1, dy = jy >= 0 ? V[y].shape[jy] : 1;
        int64_t d = dx > dy ? dx : dy;
        if ((dx != d && dx != 1) || (dy != d && dy != 1)) {
            free(p);
            return cpu_op_error(P, op, ERR_SHAPE, "batch dimensions do not broadcast");
        }
        p->bshape[i] = d;
        p->bsx[i] = dx == 1 ? 0 : sx;
        p->bsy[i] = dy == 1 ? 0 : sy;
        sx *= dx;
        sy *= dy;
        p->nbatch *= d;
    }
    if (p->nbatch * p->M * p->N != V[out].n) {
        free(p);
        return cpu_op_error(P, op, ERR_SHAPE, "result shape does not match the operands");
    }
    int ybatched = 0, xfull = 1;
    for (int i = 0; i < nb; i++) {
        if (p->bsy[i]) ybatched = 1;
        if (!p->bsx[i] && p->bshape[i] > 1) xfull = 0;
    }
    p->merge_m = !ybatched && xfull && !p->tx && p->nbatch > 1;
    cpu_node *nd = cpu_node_new(P, op, 2, run_matmul);
    if (!nd) {
        free(p);
        return P->e->code;
    }
    nd->p = p;
    nd->in[0] = x;
    nd->in[1] = y;
    nd->saturate32k = 1;
    return 0;
}

/* Called by the transpose planner: if v is a matmul result read only by this swap-transpose,
 * make that matmul produce `out` (the transposed product) directly. Returns 1 when folded. */
int cpu_fold_transpose_into_matmul(cpu_planner *P, int v, int out);
int cpu_fold_transpose_into_matmul(cpu_planner *P, int v, int out) {
    if (P->uses[v] != 1) return 0;
    cpu_node *nd = cpu_producer(P, v);
    if (!nd || nd->kind != MIL_OP_matmul || nd->nout != 1) return 0;
    mm_p *p = nd->p;
    if (p->out_t || p->merge_m) return 0;
    if (P->pl->vals[v].rank < 2) return 0;
    p->out_t = 1;
    nd->out[0] = out;
    return 1;
}

/* Called by the mul planner: if v is a matmul result read only by this mul by a power-of-two
 * constant, let the GEMM apply the scale and produce `out` directly. Scaling by a power of two
 * commutes with the fp16 rounding (except where results fall into fp16 subnormals), so the
 * result is the ANE's bit for bit; the attention 1/sqrt(D) scale for D = 4^k is such a case. */
int cpu_fold_scale_into_matmul(cpu_planner *P, int v, int out, float scale);
int cpu_fold_scale_into_matmul(cpu_planner *P, int v, int out, float scale) {
    int e;
    if (!(scale > 0) || frexpf(scale, &e) != 0.5f) return 0;
    if (P->uses[v] != 1 || P->pl->vals[v].kind != CV_TEMP || P->pl->vals[v].n != P->pl->vals[out].n)
        return 0;
    if (P->pl->vals[v].dt != P->pl->vals[out].dt) return 0;
    cpu_node *nd = cpu_producer(P, v);
    if (!nd || nd->kind != MIL_OP_matmul || nd->nout != 1 || nd->out[0] != v) return 0;
    mm_p *p = nd->p;
    p->alpha *= scale;
    nd->out[0] = out;
    return 1;
}

/* ---- linear: y = x W^T + b ---- */

typedef struct lin_p {
    int64_t M, N, K;
} lin_p;

static void add_bias_rows(float *o, const float *b, int64_t rows, int64_t n) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < n; j++) o[r * n + j] += b[j];
}

static void run_linear(const cpu_exec *ex, const cpu_node *nd) {
    const lin_p *p = nd->p;
    float *o = ex->ptr[nd->out[0]];
    cpu_sgemm(ex->pl, 0, 1, p->M, p->N, p->K, 1.0f, ex->ptr[nd->in[0]], p->K, ex->ptr[nd->in[1]], p->K,
              0.0f, o, p->N);
    if (nd->in[2] >= 0) add_bias_rows(o, ex->ptr[nd->in[2]], p->M, p->N);
}

static int plan_linear(cpu_planner *P, const mil_op *op) {
    cpu_val *V = P->pl->vals;
    int x = cpu_arg(P, op, "x"), w = cpu_arg(P, op, "weight"), b = cpu_arg(P, op, "bias");
    if (x < 0 || w < 0) return cpu_op_error(P, op, ERR_INVAL, "needs x and weight");
    if (V[w].rank != 2) return cpu_op_error(P, op, ERR_SHAPE, "weight must have rank 2");
    lin_p *p = calloc(1, sizeof *p);
    if (!p) return cpu_op_error(P, op, ERR_NOMEM, "out of memory");
    p->K = V[w].shape[1];
    p->N = V[w].shape[0];
    p->M = V[x].n / (p->K ? p->K : 1);
    if (V[x].shape[V[x].rank - 1] != p->K || (b >= 0 && V[b].n != p->N)) {
        free(p);
        return cpu_op_error(P, op, ERR_SHAPE, "x, weight and bias do not fit");
    }
    cpu_node *nd = cpu_node_new(P, op, 3, run_linear);
    if (!nd) {
        free(p);
        return P->e->code;
    }
    nd->p = p;
    nd->in[0] = x;
    nd->in[1] = w;
    nd->in[2] = b;
    nd->saturate32k = 1;
    return 0;
}

/* ---- conv and conv_transpose ---- */

typedef struct conv_p {
    int nsp;                          /* spatial dims, padded to 3 below */
    int64_t N, Cin, Cout, G;
    int64_t in[3], out[3], k[3], s[3], d[3], pb[3];
    int64_t kvol, in_vol, out_vol;
    int direct;                       /* 1x1, stride 1, no padding: plain GEMM */
} conv_p;

static void run_conv(const cpu_exec *ex, const cpu_node *nd) {
    const conv_p *p = nd->p;
    const float *x = ex->ptr[nd->in[0]], *w = ex->ptr[nd->in[1]];
    const float *bias = nd->in[2] >= 0 ? ex->ptr[nd->in[2]] : NULL;
    float *o = ex->ptr[nd->out[0]];
    int64_t cig = p->Cin / p->G, cog = p->Cout / p->G, rows = cig * p->kvol;
    for (int64_t n = 0; n < p->N; n++) {
        const float *xn = x + n * p->Cin * p->in_vol;
        float *on = o + n * p->Cout * p->out_vol;
        for (int64_t g = 0; g < p->G; g++) {
            const float *wg = w + g * cog * rows;
            float *og = on + g * cog * p->out_vol;
            const float *col;
            if (p->direct) {
                col = xn + g * cig * p->in_vol;
            } else {
                /* im2col: col[(c, k0, k1, k2), (o0, o1, o2)] with zero padding */
                float *cb = nd->scratch;
                for (int64_t c = 0; c < cig; c++) {
                    const float *xc = xn + (g * cig + c) * p->in_vol;
                    for (int64_t a = 0; a < p->k[0]; a++)
                        for (int64_t b = 0; b < p->k[1]; b++)
                            for (int64_t e = 0; e < p->k[2]; e++) {
                                float *row = cb + ((c * p->k[0] + a) * p->k[1] + b) * p->k[2] * p->out_vol +
                                             e * p->out_vol;
                                for (int64_t o0 = 0; o0 < p->out[0]; o0++) {
                                    int64_t i0 = o0 * p->s[0] + a * p->d[0] - p->pb[0];
                                    for (int64_t o1 = 0; o1 < p->out[1]; o1++) {
                                        int64_t i1 = o1 * p->s[1] + b * p->d[1] - p->pb[1];
                                        float *r = row + (o0 * p->out[1] + o1) * p->out[2];
                                        if (i0 < 0 || i0 >= p->in[0] || i1 < 0 || i1 >= p->in[1]) {
                                            memset(r, 0, (size_t)p->out[2] * sizeof(float));
                                            continue;
                                        }
                                        const float *xr = xc + (i0 * p->in[1] + i1) * p->in[2];
                                        for (int64_t o2 = 0; o2 < p->out[2]; o2++) {
                                            int64_t i2 = o2 * p->s[2] + e * p->d[2] - p->pb[2];
                                            r[o2] = (i2 < 0 || i2 >= p->in[2]) ? 0.0f : xr[i2];
                                        }
                                    }
                                }
                            }
                }
                col = cb;
            }
            cpu_sgemm(ex->pl, 0, 0, cog, p->out_vol, rows, 1.0f, wg, rows, col, p->out_vol, 0.0f, og,
                      p->out_vol);
        }
        if (bias)
            for (int64_t c = 0; c < p->Cout; c++)
                for (int64_t i = 0; i < p->out_vol; i++) on[c * p->out_vol + i] += bias[c];
    }
}

static void run_conv_transpose(const cpu_exec *ex, const cpu_node *nd) {
    const conv_p *p = nd->p;
    const float *x = ex->ptr[nd->in[0]], *w = ex->ptr[nd->in[1]];
    const float *bias = nd->in[2] >= 0 ? ex->ptr[nd->in[2]] : NULL;
    float *o = ex->ptr[nd->out[0]];
    int64_t cig = p->Cin / p->G, cog = p->Cout / p->G, rows = cog * p->kvol;
    float *col = nd->scratch; /* [cog * kvol, in_vol] */
    memset(o, 0, (size_t)(p->N * p->Cout * p->out_vol) * sizeof(float));
    for (int64_t n = 0; n < p->N; n++) {
        const float *xn = x + n * p->Cin * p->in_vol;
        float *on = o + n * p->Cout * p->out_vol;
        for (int64_t g = 0; g < p->G; g++) {
            /* W_g is [cig, cog*kvol]; col = W_g^T x_g */
            cpu_sgemm(ex->pl, 1, 0, rows, p->in_vol, cig, 1.0f, w + g * cig * rows, rows,
                      xn + g * cig * p->in_vol, p->in_vol, 0.0f, col, p->in_vol);
            for (int64_t c = 0; c < cog; c++) {
                float *oc = on + (g * cog + c) * p->out_vol;
                for (int64_t a = 0; a < p->k[0]; a++)
                    for (int64_t b = 0; b < p->k[1]; b++)
                        for (int64_t e = 0; e < p->k[2]; e++) {
                            const float *row = col + (((c * p->k[0] + a) * p->k[1] + b) * p->k[2] + e) * p->in_vol;
                            for (int64_t i0 = 0; i0 < p->in[0]; i0++) {
                                int64_t o0 = i0 * p->s[0] + a * p->d[0] - p->pb[0];
                                if (o0 < 0 || o0 >= p->out[0]) continue;
                                for (int64_t i1 = 0; i1 < p->in[1]; i1++) {
                                    int64_t o1 = i1 * p->s[1] + b * p->d[1] - p->pb[1];
                                    if (o1 < 0 || o1 >= p->out[1]) continue;
                                    const float *r = row + (i0 * p->in[1] + i1) * p->in[2];
                                    float *orow = oc + (o0 * p->out[1] + o1) * p->out[2];
                                    for (int64_t i2 = 0; i2 < p->in[2]; i2++) {
                                        int64_t o2 = i2 * p->s[2] + e * p->d[2] - p->pb[2];
                                        if (o2 >= 0 && o2 < p->out[2]) orow[o2] += r[i2];
                                    }
                                }
                            }
                        }
            }
        }
        if (bias)
            for (int64_t c = 0; c < p->Cout; c++)
                for (int64_t i = 0; i < p->out_vol; i++) on[c * p->out_vol + i] += bias[c];
    }
}

static int plan_conv(cpu_planner *P, const mil_op *op, int transpose) {
    cpu_val *V = P->pl->vals;
    int x = cpu_arg(P, op, "x"), w = cpu_arg(P, op, "weight"), b = cpu_arg(P, op, "bias");
    int out = op->res[0], rc;
    if (x < 0 || w < 0) return cpu_op_error(P, op, ERR_INVAL, "needs x and weight");
    int r = V[x].rank, nsp = r - 2;
    if (nsp < 1 || nsp > 3 || V[w].rank != r || V[out].rank != r)
        return cpu_op_error(P, op, ERR_SHAPE, "x must be [N, C, 1-3 spatial dims] and weight of the same rank");
    conv_p *p = calloc(1, sizeof *p);
    if (!p) return cpu_op_error(P, op, ERR_NOMEM, "out of memory");
    p->nsp = nsp;
    p->N = V[x].shape[0];
    p->Cin = V[x].shape[1];
    p->Cout = V[out].shape[1];
    int64_t g = 1, st[3] = {1, 1, 1}, dl[3] = {1, 1, 1}, pad[6] = {0};
    int n;
    if ((rc = cpu_arg_int(P, op, "groups", &g))) goto fail;
    if ((rc = cpu_arg_ints(P, op, "strides", st, 3, &n)) || (rc = cpu_arg_ints(P, op, "dilations", dl, 3, &n)) ||
        (rc = cpu_arg_ints(P, op, "pad", pad, 6, &n)))
        goto fail;
    const char *pt = cpu_arg_string(P, op, "pad_type");
    if (!pt) {
        rc = cpu_op_error(P, op, ERR_INVAL, "'pad_type' must be a constant string");
        goto fail;
    }
    if (g < 1 || p->Cin % g || p->Cout % g) {
        rc = cpu_op_error(P, op, ERR_SHAPE, "groups = %lld does not divide the channels", (long long)g);
        goto fail;
    }
    p->G = g;
    /* spatial dims right-aligned into 3 slots (missing leading slots have size 1) */
    int off = 3 - nsp;
    for (int i = 0; i < 3; i++) {
        p->in[i] = p->out[i] = p->k[i] = p->s[i] = p->d[i] = 1;
        p->pb[i] = 0;
    }
    p->kvol = p->in_vol = p->out_vol = 1;
    for (int i = 0; i < nsp; i++) {
        int j = off + i;
        p->in[j] = V[x].shape[2 + i];
        p->out[j] = V[out].shape[2 + i];
        p->k[j] = V[w].shape[2 + i];
        p->s[j] = st[i];
        p->d[j] = dl[i];
        int64_t kk = (p->k[j] - 1) * p->d[j] + 1, before = 0;
        if (strcmp(pt, "custom") == 0) {
            before = pad[2 * i];
        } else if (strcmp(pt, "same") == 0 || strcmp(pt, "same_lower") == 0) {
            int64_t total;
            if (!transpose) {
                int64_t o = (p->in[j] + p->s[j] - 1) / p->s[j];
                total = (o - 1) * p->s[j] + kk - p->in[j];
            } else {
                total = (p->in[j] - 1) * p->s[j] + kk - p->in[j] * p->s[j];
            }
            if (total < 0) total = 0;
            before = strcmp(pt, "same") == 0 ? total / 2 : total - total / 2;
        } else if (strcmp(pt, "valid") != 0) {
            rc = cpu_op_error(P, op, ERR_INVAL, "unknown pad_type '%s'", pt);
            goto fail;
        }
        p->pb[j] = before;
        p->kvol *= p->k[j];
        p->in_vol *= p->in[j];
        p->out_vol *= p->out[j];
    }
    int64_t wc = transpose ? V[w].shape[1] * g : V[w].shape[1] * g;
    if ((!transpose && (V[w].shape[0] != p->Cout || wc != p->Cin)) ||
        (transpose && (V[w].shape[0] != p->Cin || wc != p->Cout))) {
        rc = cpu_op_error(P, op, ERR_SHAPE, "weight shape does not match the channels");
        goto fail;
    }
    if (b >= 0 && V[b].n != p->Cout) {
        rc = cpu_op_error(P, op, ERR_SHAPE, "bias must have %lld values", (long long)p->Cout);
        goto fail;
    }
    p->direct = !transpose && p->kvol == 1 && p->in_vol == p->out_vol;
    for (int j = 0; j < 3; j++)
        if (p->s[j] != 1 || p->pb[j] != 0) p->direct = p->direct && p->in[j] == 1;
    cpu_node *nd = cpu_node_new(P, op, 3, transpose ? run_conv_transpose : run_conv);
    if (!nd) {
        rc = P->e->code;
        goto fail;
    }
    nd->p = p;
    nd->in[0] = x;
    nd->in[1] = w;
    nd->in[2] = b;
    nd->saturate32k = 1;
    if (transpose) nd->scratch_n = (p->Cout / g) * p->kvol * p->in_vol;
    else if (!p->direct) nd->scratch_n = (p->Cin / g) * p->kvol * p->out_vol;
    return 0;
fail:
    free(p);
    return rc;
}

int cpu_plan_linalg(cpu_planner *P, const mil_op *op) {
    if (op->nres < 1) return cpu_op_error(P, op, ERR_INVAL, "op has no result");
    switch (op->kind) {
    case MIL_OP_matmul: return plan_matmul(P, op);
    case MIL_OP_linear: return plan_linear(P, op);
    case MIL_OP_conv: return plan_conv(P, op, 0);
    case MIL_OP_conv_transpose: return plan_conv(P, op, 1);
    default: return cpu_op_error(P, op, ERR_UNSUPPORTED, "not a linear-algebra op");
    }
}
