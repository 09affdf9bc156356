/* rmsnorm.c - RMSNorm over the channels of channel-major activations, forward and backward. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn_util.h"

static int rms_args(const char *fn, const tensor *x, const tensor *w, int64_t seq, int64_t *D,
                    int64_t *B, ane_error *e) {
    if (nn_check(x, DT_FP32, fn, "x", e) || nn_check(w, DT_FP32, fn, "weight", e)) return e->code;
    *D = tensor_numel(w);
    int64_t n = tensor_numel(x);
    if (seq < 1 || n % (*D * seq) != 0)
        return err_set(e, ERR_SHAPE, "%s: x has %lld elements, not a multiple of dim %lld x seq %lld",
                       fn, (long long)n, (long long)*D, (long long)seq);
    *B = n / (*D * seq);
    return 0;
}

/* r[s] = (Σ_c x[c][s]²/D + eps)^(-1/2) for one sequence [D, S] (loops run along s: vectorised) */
static void rms_r(double *r, const float *x, int64_t D, int64_t S, double eps) {
    for (int64_t s = 0; s < S; s++) r[s] = 0;
    for (int64_t c = 0; c < D; c++) {
        const float *xc = x + c * S;
        for (int64_t s = 0; s < S; s++) r[s] += (double)xc[s] * xc[s];
    }
    for (int64_t s = 0; s < S; s++) r[s] = 1.0 / sqrt(r[s] / (double)D + eps);
}

int nn_rmsnorm(tensor *y, const tensor *x, const tensor *w, int64_t seq, double eps, ane_error *e) {
    int64_t D, B;
    if (rms_args("rmsnorm", x, w, seq, &D, &B, e) || nn_check(y, DT_FP32, "rmsnorm", "y", e) ||
        nn_check_numel(y, tensor_numel(x), "rmsnorm", "y", e))
        return e->code;
    double *r = malloc((size_t)seq * sizeof *r);
    if (!r) return err_set(e, ERR_NOMEM, "rmsnorm: out of memory");
    const float *wv = tensor_data(w);
    for (int64_t b = 0; b < B; b++) {
        const float *xb = (const float *)tensor_data(x) + b * D * seq;
        float *yb = (float *)tensor_data(y) + b * D * seq;
        rms_r(r, xb, D, seq, eps);
        for (int64_t c = 0; c < D; c++)
            for (int64_t s = 0; s < seq; s++) yb[c * seq + s] = (float)(xb[c * seq + s] * r[s] * wv[c]);
    }
    free(r);
    return 0;
}

int nn_rmsnorm_backward(tensor *dx, tensor *dw, const tensor *dy, const tensor *x, const tensor *w,
                        int64_t seq, double eps, ane_error *e) {
    const char *fn = "rmsnorm_backward";
    int64_t D, B;
    if (rms_args(fn, x, w, seq, &D, &B, e) || nn_check(dy, DT_FP32, fn, "dy", e) ||
        nn_check_numel(dy, tensor_numel(x), fn, "dy", e) || nn_check(dw, DT_FP32, fn, "dw", e) ||
        nn_check_numel(dw, D, fn, "dw", e))
        return e->code;
    if (dx && (nn_check(dx, DT_FP32, fn, "dx", e) || nn_check_numel(dx, tensor_numel(x), fn, "dx", e)))
        return e->code;
    double *r = malloc((size_t)seq * 2 * sizeof *r);
    if (!r) return err_set(e, ERR_NOMEM, "%s: out of memory", fn);
    double *dot = r + seq;
    const float *wv = tensor_data(w);
    float *dwv = tensor_data(dw);
    for (int64_t b = 0; b < B; b++) {
        const float *xb = (const float *)tensor_data(x) + b * D * seq;
        const float *gb = (const float *)tensor_data(dy) + b * D * seq;
        rms_r(r, xb, D, seq, eps);
        for (int64_t s = 0; s < seq; s++) dot[s] = 0;
        for (int64_t c = 0; c < D; c++) {
            const float *xc = xb + c * seq, *gc = gb + c * seq;
            double acc = 0;
            for (int64_t s = 0; s < seq; s++) {
                double g = (double)gc[s] * xc[s];
                dot[s] += g * wv[c];
                acc += g * r[s];
            }
            dwv[c] += (float)acc;
        }
        if (!dx) continue;
        /* dx = (dy·w − x·dot·r²/D)·r */
        for (int64_t s = 0; s < seq; s++) dot[s] *= r[s] * r[s] / (double)D;
        float *db = (float *)tensor_data(dx) + b * D * seq;
        for (int64_t c = 0; c < D; c++) {
            const float *xc = xb + c * seq, *gc = gb + c * seq;
            float *dc = db + c * seq;
            for (int64_t s = 0; s < seq; s++)
                dc[s] += (float)(((double)gc[s] * wv[c] - xc[s] * dot[s]) * r[s]);
        }
    }
    free(r);
    return 0;
}
