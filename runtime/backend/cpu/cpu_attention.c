/* cpu_attention.c - scaled_dot_product_attention (mil-reference.md 8.9).
 *
 * out = softmax(Q K^T / sqrt(E) + M) V per batch matrix, with the scores held in fp32 node
 * scratch: the op is one ANE op, so only its result is rounded (7.3 rule 2). A bool mask means
 * "attend where true" (-inf elsewhere); a float mask is added. On the ANE the mask is reportedly
 * ignored (ane-private-api.md 6.4); strict mode refuses a masked sdpa for that reason. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"

typedef struct sdpa_p {
    int64_t B, L, S, E, Ev;
    float scale;
    int has_mask, mask_bool;
    int mrank;                         /* mask broadcast: batch strides over [B] and row/col strides */
    int nb;
    int64_t bshape[MIL_MAX_RANK], mbst[MIL_MAX_RANK];
    int64_t mst_l, mst_s;
} sdpa_p;

CPU_VEC static void run_sdpa(const cpu_exec *ex, const cpu_node *nd) {
    const sdpa_p *p = nd->p;
    const float *q = ex->ptr[nd->in[0]], *k = ex->ptr[nd->in[1]], *v = ex->ptr[nd->in[2]];
    const float *m = p->has_mask ? ex->ptr[nd->in[3]] : NULL;
    float *o = ex->ptr[nd->out[0]], *sc = nd->scratch;
    for (int64_t b = 0; b < p->B; b++) {
        cpu_sgemm(ex->pl, 0, 1, p->L, p->S, p->E, p->scale, q + b * p->L * p->E, p->E, k + b * p->S * p->E,
                  p->E, 0.0f, sc, p->S);
        int64_t moff = 0;
        if (m) {
            int64_t t = b;
            for (int i = p->nb - 1; i >= 0; i--) {
                moff += (t % p->bshape[i]) * p->mbst[i];
                t /= p->bshape[i];
            }
        }
        for (int64_t l = 0; l < p->L; l++) {
            float *row = sc + l * p->S;
            if (m) {
                const float *mr = m + moff + l * p->mst_l;
                if (p->mask_bool) {
                    for (int64_t s = 0; s < p->S; s++)
                        if (mr[s * p->mst_s] == 0) row[s] = -INFINITY;
                } else {
                    for (int64_t s = 0; s < p->S; s++) row[s] += mr[s * p->mst_s];
                }
            }
            float mx = -INFINITY, sum = 0;
            for (int64_t s = 0; s < p->S; s++) mx = row[s] > mx ? row[s] : mx;
            if (mx == -INFINITY) mx = 0;
            for (int64_t s = 0; s < p->S; s++) {
                row[s] = cpu_expf(row[s] - mx);
                sum += row[s];
            }
            float r = 1.0f / sum;
            for (int64_t s = 0; s < p->S; s++) row[s] *= r;
        }
        cpu_sgemm(ex->pl, 0, 0, p->L, p->Ev, p->S, 1.0f, sc, p->S, v + b * p->S * p->Ev, p->Ev, 0.0f,
                  o + b * p->L * p->Ev, p->Ev);
    }
}

int cpu_plan_attention(cpu_planner *P, const mil_op *op) {
    cpu_val *V = P->pl->vals;
    int q = cpu_arg(P, op, "query"), k = cpu_arg(P, op, "key"), v = cpu_arg(P, op, "value");
    int m = cpu_arg(P, op, "attn_mask");
    if (q < 0 || k < 0 || v < 0 || op->nres < 1)
        return cpu_op_error(P, op, ERR_INVAL, "needs query, key and value");
    int r = V[q].rank;
    if (r < 3 || V[k].rank != r || V[v].rank != r)
        return cpu_op_error(P, op, ERR_SHAPE, "query, key and value must share a rank >= 3");
    sdpa_p *p = calloc(1, sizeof *p);
    if (!p) return cpu_op_error(P, op, ERR_NOMEM, "out of memory");
    p->L = V[q].shape[r - 2];
    p->E = V[q].shape[r - 1];
    p->S = V[k].shape[r - 2];
    p->Ev = V[v].shape[r - 1];
    p->B = V[q].n / (p->L * p->E);
    p->scale = 1.0f / sqrtf((float)p->E);
    if (V[k].shape[r - 1] != p->E || V[v].shape[r - 2] != p->S || V[k].n / (p->S * p->E) != p->B ||
        V[v].n / (p->S * p->Ev) != p->B) {
        free(p);
        return cpu_op_error(P, op, ERR_SHAPE, "query, key and value shapes do not fit");
    }
    if (m >= 0) {
        /* mask broadcast to [batch..., L, S] */
        int mr = V[m].rank, nb = r - 2;
        if (mr < 1 || mr > r || V[m].shape[mr - 1] != p->S) {
            free(p);
            return cpu_op_error(P, op, ERR_SHAPE, "attn_mask must broadcast to [..., L, S]");
        }
        int64_t full[MIL_MAX_RANK], st[MIL_MAX_RANK];
        for (int i = 0; i < r; i++) {
            int j = i - (r - mr);
            full[i] = j >= 0 ? V[m].shape[j] : 1;
        }
        cpu_strides(r, full, st);
        for (int i = 0; i < nb; i++) {
            if (full[i] != 1 && full[i] != V[q].shape[i]) {
                free(p);
                return cpu_op_error(P, op, ERR_SHAPE, "attn_mask batch dims do not broadcast");
            }
            p->bshape[i] = V[q].shape[i];
            p->mbst[i] = full[i] == 1 ? 0 : st[i];
        }
        if (full[r - 2] != 1 && full[r - 2] != p->L) {
            free(p);
            return cpu_op_error(P, op, ERR_SHAPE, "attn_mask rows must be 1 or L");
        }
        p->nb = nb;
        p->mst_l = full[r - 2] == 1 ? 0 : st[r - 2];
        p->mst_s = 1;
        p->has_mask = 1;
        p->mask_bool = V[m].dt == MIL_BOOL;
    }
    cpu_node *nd = cpu_node_new(P, op, 4, run_sdpa);
    if (!nd) {
        free(p);
        return P->e->code;
    }
    nd->p = p;
    nd->in[0] = q;
    nd->in[1] = k;
    nd->in[2] = v;
    nd->in[3] = m;
    nd->scratch_n = p->L * p->S;
    return 0;
}
