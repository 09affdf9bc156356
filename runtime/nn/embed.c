/* embed.c - token embedding lookup into the channel-major layout, and its scatter-add gradient. */
#include "nn_util.h"

/* Shared checks: E/dE [V, D] fp32, tok int32 [B*S], x/dx fp32 with B*D*S elements. */
static int embed_args(const char *fn, const tensor *x, const tensor *E, const tensor *tok,
                      int64_t seq, int64_t *V, int64_t *D, int64_t *B, ane_error *e) {
    if (nn_check(x, DT_FP32, fn, "activations", e) || nn_check(E, DT_FP32, fn, "table", e) ||
        nn_check(tok, DT_INT32, fn, "tokens", e))
        return e->code;
    if (E->rank != 2) return err_set(e, ERR_SHAPE, "%s: the table must be [vocab, dim]", fn);
    *V = E->shape[0];
    *D = E->shape[1];
    int64_t n = tensor_numel(tok);
    if (seq < 1 || n % seq != 0)
        return err_set(e, ERR_SHAPE, "%s: %lld tokens do not split into sequences of %lld", fn,
                       (long long)n, (long long)seq);
    *B = n / seq;
    if (nn_check_numel(x, *B * *D * seq, fn, "activations", e)) return e->code;
    const int32_t *t = tensor_data(tok);
    for (int64_t i = 0; i < n; i++)
        if (t[i] < 0 || t[i] >= *V)
            return err_set(e, ERR_INVAL, "%s: token %d at position %lld is outside the vocabulary [0, %lld)",
                           fn, t[i], (long long)i + 1, (long long)*V);
    return 0;
}

int nn_embed(tensor *x, const tensor *E, const tensor *tok, int64_t seq, ane_error *e) {
    int64_t V, D, B;
    if (embed_args("embed", x, E, tok, seq, &V, &D, &B, e)) return e->code;
    const int32_t *t = tensor_data(tok);
    const float *w = tensor_data(E);
    float *y = tensor_data(x);
    /* Gather rows, write columns: one token's row is contiguous, its column strided by S. */
    for (int64_t b = 0; b < B; b++) {
        float *yb = y + b * D * seq;
        for (int64_t s = 0; s < seq; s++) {
            const float *row = w + (int64_t)t[b * seq + s] * D;
            for (int64_t c = 0; c < D; c++) yb[c * seq + s] = row[c];
        }
    }
    return 0;
}

int nn_embed_backward(tensor *dE, const tensor *dx, const tensor *tok, int64_t seq, ane_error *e) {
    int64_t V, D, B;
    if (embed_args("embed_backward", (tensor *)dx, dE, tok, seq, &V, &D, &B, e)) return e->code;
    const int32_t *t = tensor_data(tok);
    float *g = tensor_data(dE);
    const float *d = tensor_data(dx);
    for (int64_t b = 0; b < B; b++) {
        const float *db = d + b * D * seq;
        for (int64_t s = 0; s < seq; s++) {
            float *row = g + (int64_t)t[b * seq + s] * D;
            for (int64_t c = 0; c < D; c++) row[c] += db[c * seq + s];
        }
    }
    return 0;
}
