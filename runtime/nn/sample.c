/* sample.c - samplers over logits: greedy, temperature, top-k, top-p, repetition penalty. */
#include "sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SEED_DEFAULT 0x9E3779B97F4A7C15ull

static uint32_t next_u32(sampler *s) { /* xorshift64*, as run.c's random_u32 */
    s->state ^= s->state >> 12;
    s->state ^= s->state << 25;
    s->state ^= s->state >> 27;
    return (uint32_t)((s->state * 0x2545F4914F6CDD1Dull) >> 32);
}

float sampler_coin(sampler *s) { return (float)(next_u32(s) >> 8) / 16777216.0f; }

void sampler_reseed(sampler *s, uint64_t seed) { s->state = seed ? seed : SEED_DEFAULT; }

int sampler_init(sampler *s, int vocab, const sampler_cfg *c, ane_error *e) {
    memset(s, 0, sizeof *s);
    if (vocab < 1) return err_set(e, ERR_INVAL, "sampler: vocab must be >= 1, got %d", vocab);
    if (!(c->temperature >= 0) || !isfinite(c->temperature))
        return err_set(e, ERR_INVAL, "sampler: temperature must be a finite number >= 0");
    if (!(c->topp >= 0 && c->topp <= 1)) return err_set(e, ERR_INVAL, "sampler: topp must be in [0, 1]");
    if (c->topk < 0) return err_set(e, ERR_INVAL, "sampler: topk must be >= 0");
    if (!(c->repetition_penalty > 0) || !isfinite(c->repetition_penalty))
        return err_set(e, ERR_INVAL, "sampler: repetition_penalty must be a finite number > 0");
    s->prob = malloc((size_t)vocab * sizeof *s->prob);
    s->cand = malloc((size_t)vocab * sizeof *s->cand);
    s->seen = calloc((size_t)vocab, 1);
    if (!s->prob || !s->cand || !s->seen) {
        sampler_free(s);
        return err_set(e, ERR_NOMEM, "sampler: out of memory for a vocab of %d", vocab);
    }
    s->cfg = *c;
    s->vocab = vocab;
    sampler_reseed(s, c->seed);
    return 0;
}

void sampler_free(sampler *s) {
    if (!s) return;
    free(s->prob);
    free(s->cand);
    free(s->seen);
    s->prob = NULL;
    s->cand = NULL;
    s->seen = NULL;
    s->vocab = 0;
}

void sampler_forget(sampler *s) {
    if (s->seen) memset(s->seen, 0, (size_t)s->vocab);
}

void sampler_accept(sampler *s, int id) {
    if (s->seen && id >= 0 && id < s->vocab) s->seen[id] = 1;
}

int64_t nn_argmax(const float *x, int64_t n, int64_t stride) {
    int64_t best = -1;
    float bv = 0;
    for (int64_t i = 0; i < n; i++) {
        float v = x[i * stride];
        if (v != v) continue;
        if (best < 0 || v > bv) {
            best = i;
            bv = v;
        }
    }
    return best < 0 && n > 0 ? 0 : best;
}

void nn_causal_mask(float *m, int64_t rows, int64_t cols, int64_t offset) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) m[r * cols + c] = c <= offset + r ? 0.0f : -INFINITY;
}

static int by_prob_desc(const void *a, const void *b) {
    const sample_cand *x = a, *y = b;
    if (x->p > y->p) return -1;
    if (x->p < y->p) return 1;
    return x->id - y->id; /* a fixed order on ties: lower id first */
}

int sampler_sample(sampler *s, const float *logits, int64_t n, int64_t stride, int *out, ane_error *e) {
    if (!s->prob) return err_set(e, ERR_STATE, "sampler is closed");
    if (n != s->vocab)
        return err_set(e, ERR_SHAPE, "sampler: %lld logits, expected the vocab of %d", (long long)n, s->vocab);
    float *p = s->prob;
    for (int64_t i = 0; i < n; i++) {
        float v = logits[i * stride];
        if (s->cfg.repetition_penalty != 1.0f && s->seen[i])
            v = v > 0 ? v / s->cfg.repetition_penalty : v * s->cfg.repetition_penalty;
        p[i] = v;
    }
    if (s->cfg.temperature == 0.0f) {
        *out = (int)nn_argmax(p, n, 1);
        return 0;
    }
    /* candidates: all ids, or the k largest */
    int m = (int)n;
    float mx = -INFINITY;
    for (int i = 0; i < m; i++) {
        p[i] /= s->cfg.temperature;
        if (p[i] != p[i]) p[i] = -INFINITY;
        if (p[i] > mx) mx = p[i];
    }
    if (mx == -INFINITY) { /* nothing finite: greedy on the raw row */
        *out = (int)nn_argmax(logits, n, stride);
        return 0;
    }
    double sum = 0;
    for (int i = 0; i < m; i++) sum += (p[i] = expf(p[i] - mx));
    for (int i = 0; i < m; i++) p[i] = (float)(p[i] / sum);
    int k = s->cfg.topk > 0 && s->cfg.topk < m ? s->cfg.topk : 0;
    int topp = s->cfg.topp > 0 && s->cfg.topp < 1;
    if (k || topp) {
        /* keep candidates above run.c's cutoff for top-p (they cannot be in the nucleus otherwise) */
        int c = 0;
        float cut = topp && !k ? (1.0f - s->cfg.topp) / (float)(m > 1 ? m - 1 : 1) : 0.0f;
        for (int i = 0; i < m; i++)
            if (p[i] >= cut) s->cand[c++] = (sample_cand){p[i], i};
        if (c == 0) { /* cannot happen (the largest is >= 1/m > cut), kept for safety */
            *out = (int)nn_argmax(p, m, 1);
            return 0;
        }
        qsort(s->cand, (size_t)c, sizeof *s->cand, by_prob_desc);
        if (k && c > k) c = k;
        double mass = 0;
        for (int i = 0; i < c; i++) mass += s->cand[i].p;
        if (topp) { /* the smallest prefix holding topp of the candidates' mass */
            double acc = 0, want = k ? s->cfg.topp * mass : s->cfg.topp; /* run.c: of the whole mass */
            for (int i = 0; i < c; i++) {
                acc += s->cand[i].p;
                if (acc > want) {
                    c = i + 1;
                    break;
                }
            }
            mass = 0;
            for (int i = 0; i < c; i++) mass += s->cand[i].p;
        }
        float r = sampler_coin(s) * (float)mass;
        double cdf = 0;
        for (int i = 0; i < c; i++) {
            cdf += s->cand[i].p;
            if (r < cdf) {
                *out = s->cand[i].id;
                return 0;
            }
        }
        *out = s->cand[c - 1].id; /* rounding */
        return 0;
    }
    float r = sampler_coin(s);
    double cdf = 0;
    for (int i = 0; i < m; i++) {
        cdf += p[i];
        if (r < cdf) {
            *out = i;
            return 0;
        }
    }
    *out = m - 1;
    return 0;
}
