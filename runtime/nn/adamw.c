/* adamw.c - AdamW, global-norm pieces and a state checksum (see adamw.h). */
#include "adamw.h"

#include <math.h>
#include <string.h>

#include "../backend/cpu/cpu.h"

/* Work is cut into blocks of this many elements; each block is one pool item, so partial sums
 * and their order do not depend on how many threads run. */
#define BLOCK 16384

typedef struct {
    float *p, *m, *v;
    const float *g;
    int64_t n;
    const nn_adamw_args *a;
} adamw_job;

static void adamw_blocks(void *ctx, int64_t lo, int64_t hi) {
    const adamw_job *j = ctx;
    const nn_adamw_args *a = j->a;
    const float b1 = a->beta1, b2 = a->beta2, c1 = 1.0f - a->beta1, c2 = 1.0f - a->beta2;
    const float gs = a->grad_scale, eps = a->eps;
    const float step = (float)(a->lr / a->bc1);          /* lr / bc1 */
    const float rbc2 = (float)(1.0 / sqrt(a->bc2));      /* 1 / sqrt(bc2) */
    const float decay = 1.0f - a->lr * a->weight_decay;
    int64_t end = hi * BLOCK < j->n ? hi * BLOCK : j->n;
    float *restrict p = j->p, *restrict m = j->m, *restrict v = j->v;
    const float *restrict g = j->g;
    for (int64_t i = lo * BLOCK; i < end; i++) {
        float gi = g[i] * gs;
        float mi = b1 * m[i] + c1 * gi;
        float vi = b2 * v[i] + c2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] * decay - step * mi / (sqrtf(vi) * rbc2 + eps);
    }
}

void nn_adamw(float *p, const float *g, float *m, float *v, int64_t n, const nn_adamw_args *a) {
    if (n <= 0) return;
    adamw_job j = {p, m, v, g, n, a};
    cpu_parallel(NULL, (n + BLOCK - 1) / BLOCK, BLOCK * 8, adamw_blocks, &j);
}

typedef struct {
    const float *x;
    int64_t n;
    double *part; /* one partial sum per block */
} sumsq_job;

static void sumsq_blocks(void *ctx, int64_t lo, int64_t hi) {
    const sumsq_job *j = ctx;
    for (int64_t b = lo; b < hi; b++) {
        int64_t s = b * BLOCK, e = s + BLOCK < j->n ? s + BLOCK : j->n;
        const float *restrict x = j->x;
        /* 16 float lanes per 256-element chunk (vectorisable), folded into double per chunk */
        double acc = 0;
        int64_t i = s;
        for (; i + 256 <= e; i += 256) {
            float lane[16] = {0};
            for (int k = 0; k < 256; k += 16)
                for (int l = 0; l < 16; l++) lane[l] += x[i + k + l] * x[i + k + l];
            double c = 0;
            for (int l = 0; l < 16; l++) c += lane[l];
            acc += c;
        }
        for (; i < e; i++) acc += (double)x[i] * x[i];
        j->part[b] = acc;
    }
}

double nn_sumsq(const float *x, int64_t n) {
    double total = 0;
    int64_t nb = (n + BLOCK - 1) / BLOCK;
    enum { CHUNK = 1024 }; /* blocks per round: a bounded stack buffer for the partials */
    double part[CHUNK];
    for (int64_t b0 = 0; b0 < nb; b0 += CHUNK) {
        int64_t cnt = nb - b0 < CHUNK ? nb - b0 : CHUNK;
        sumsq_job j = {x + b0 * BLOCK, n - b0 * BLOCK, part};
        cpu_parallel(NULL, cnt, BLOCK * 2, sumsq_blocks, &j);
        for (int64_t b = 0; b < cnt; b++) total += part[b];
    }
    /* A square of a float above ~1.8e19 overflows fp32 lanes; recompute such inputs exactly in
     * double so "not finite" still means "some element is not finite". */
    if (!isfinite(total)) {
        total = 0;
        for (int64_t i = 0; i < n; i++) total += (double)x[i] * x[i];
    }
    return total;
}

uint64_t nn_checksum(const void *data, int64_t n, uint64_t seed) {
    /* Four independent multiply-xorshift lanes over 8-byte words, then the tail; enough to catch
     * truncation, zeroed pages and flipped bits. */
    const unsigned char *s = data;
    uint64_t h[4] = {seed ^ 0x9e3779b97f4a7c15ull, seed + 0x632be59bd9b4e019ull,
                     seed ^ 0xc2b2ae3d27d4eb4full, seed + 0x165667b19e3779f9ull};
    int64_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int l = 0; l < 4; l++) {
            uint64_t w;
            memcpy(&w, s + i + 8 * l, 8);
            h[l] = (h[l] ^ w) * 0xff51afd7ed558ccdull;
            h[l] ^= h[l] >> 29;
        }
    uint64_t r = (uint64_t)n;
    for (int l = 0; l < 4; l++) r = (r ^ h[l]) * 0xc4ceb9fe1a85ec53ull, r ^= r >> 31;
    for (; i < n; i++) r = (r ^ s[i]) * 0x100000001b3ull;
    return r ^ (r >> 33);
}
