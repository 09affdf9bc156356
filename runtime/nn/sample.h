/* sample.h - choosing the next token from a row of logits (no Lua here).
 *
 * A sampler owns its random state (xorshift64*, as llama2.c's run.c: the same seed gives the
 * same draws on every platform) and the ids it has seen (for the repetition penalty). The order
 * of a draw follows run.c: repetition penalty, then temperature 0 = argmax; otherwise logits /
 * temperature, top-k (k > 0 keeps the k largest), softmax, top-p (0 < p < 1 keeps the smallest
 * set whose mass reaches p, with run.c's cutoff (1 - p) / (n - 1)), then one uniform coin. */
#ifndef ANE_NN_SAMPLE_H
#define ANE_NN_SAMPLE_H

#include <stdint.h>

#include "../core/error.h"

typedef struct sampler_cfg {
    float temperature;        /* 0: greedy */
    float topp;               /* 0 or >= 1: off */
    int topk;                 /* 0: off */
    float repetition_penalty; /* 1: off; > 1 lowers seen ids (positive logits divided, negative multiplied) */
    uint64_t seed;            /* 0 is replaced by a fixed non-zero constant (xorshift needs one) */
} sampler_cfg;

typedef struct sample_cand { float p; int id; } sample_cand;

typedef struct sampler {
    sampler_cfg cfg;
    int vocab;
    uint64_t state;
    float *prob;      /* [vocab] working copy */
    sample_cand *cand; /* [vocab] candidates (top-k / top-p) */
    uint8_t *seen;    /* [vocab] 1 = id appeared (repetition penalty) */
} sampler;

/* Check cfg (finite, temperature >= 0, topp in [0, 1], topk >= 0, penalty > 0) and allocate.
 * s is overwritten; on failure it is left empty (sampler_free is still safe). */
int sampler_init(sampler *s, int vocab, const sampler_cfg *cfg, ane_error *e);
void sampler_free(sampler *s);      /* idempotent */
void sampler_reseed(sampler *s, uint64_t seed);
void sampler_forget(sampler *s);    /* clear the seen ids */
/* Mark id as seen (ignored when out of range). */
void sampler_accept(sampler *s, int id);
/* Next id for logits[0..n) (n must equal the vocab; stride between elements given, in floats). */
int sampler_sample(sampler *s, const float *logits, int64_t n, int64_t stride, int *out, ane_error *e);
/* Uniform [0, 1) with 24 bits, advancing the state (run.c's random_f32). */
float sampler_coin(sampler *s);

/* Index of the largest of x[0..n) (first on ties; NaN never wins); -1 when n < 1. */
int64_t nn_argmax(const float *x, int64_t n, int64_t stride);

/* Additive causal mask [rows, cols]: 0 where col <= offset + row, -inf elsewhere. */
void nn_causal_mask(float *m, int64_t rows, int64_t cols, int64_t offset);

#endif
