/* adamw.h - the optimizer's CPU work: AdamW (bias-corrected, decoupled weight decay), the squared
 * global gradient norm (which is also the non-finite check for dynamic loss scaling), and a
 * checksum for the optimizer's state file. fp32 arrays in, no Lua, no allocation.
 *
 * Every function is split over the CPU backend's pool in fixed blocks, so results do not depend
 * on the thread count or on scheduling (a resumed run reproduces an uninterrupted one bit for
 * bit). */
#ifndef ANE_NN_ADAMW_H
#define ANE_NN_ADAMW_H

#include <stdint.h>

typedef struct nn_adamw_args {
    float lr;           /* learning rate of this step */
    float beta1, beta2; /* moment decay rates */
    float eps;          /* added to sqrt(v_hat) */
    float weight_decay; /* decoupled: p -= lr * wd * p (0 for parameters that do not decay) */
    float grad_scale;   /* g is used as g * grad_scale (1/loss_scale times the clip factor) */
    double bc1, bc2;    /* bias corrections 1 - beta1^t, 1 - beta2^t for step t >= 1 */
} nn_adamw_args;

/* One AdamW update of n parameters in place (p, m, v written; g only read):
 *   g' = g * grad_scale
 *   m  = beta1 m + (1 - beta1) g'          v = beta2 v + (1 - beta2) g'^2
 *   p  = p - lr * (wd p + (m / bc1) / (sqrt(v / bc2) + eps))
 * The arrays must not overlap. */
void nn_adamw(float *p, const float *g, float *m, float *v, int64_t n, const nn_adamw_args *a);

/* Sum of squares of x[0..n) in double (blocks summed in a fixed order). Not finite (inf or NaN)
 * exactly when some x[i] is not finite: squares of finite floats cannot overflow a double. */
double nn_sumsq(const float *x, int64_t n);

/* 64-bit checksum of n bytes (not cryptographic; detects torn or damaged state files). */
uint64_t nn_checksum(const void *data, int64_t n, uint64_t seed);

#endif
