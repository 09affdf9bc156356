/* xent.c - fused softmax cross-entropy: loss and gradient in one pass over the logits.
 *
 * Rows are split over the CPU backend's pool; each row's loss goes to its own slot and the slots
 * are summed in order afterwards, so the loss is the same for any number of threads. */
#include <math.h>
#include <stdlib.h>

#include "../backend/cpu/cpu.h"
#include "nn_util.h"

typedef struct {
    float *x;
    const int32_t *tgt;
    int64_t V;
    float scale;
    double *loss; /* one per row */
} xent_job;

static void xent_rows(void *ctx, int64_t lo, int64_t hi) {
    xent_job *j = ctx;
    int64_t V = j->V;
    for (int64_t r = lo; r < hi; r++) {
        float *x = j->x + r * V;
        int32_t t = j->tgt[r];
        if (t < 0) {
            for (int64_t v = 0; v < V; v++) x[v] = 0;
            j->loss[r] = 0;
            continue;
        }
        float mx = x[0];
        for (int64_t v = 1; v < V; v++) mx = x[v] > mx ? x[v] : mx;
        float xt = x[t];
        double sum = 0; /* double: 32000 terms summed in fp32 lose ~1e-5 */
        for (int64_t v = 0; v < V; v++) {
            float ev = cpu_expf(x[v] - mx);
            x[v] = ev;
            sum += ev;
        }
        j->loss[r] = log(sum) + (double)mx - (double)xt;
        float k = (float)(j->scale / sum);
        for (int64_t v = 0; v < V; v++) x[v] *= k;
        x[t] -= j->scale;
    }
}

int nn_xent(tensor *logits, const tensor *tgt, double scale, double *loss, ane_error *e) {
    if (nn_check(logits, DT_FP32, "xent", "logits", e) || nn_check(tgt, DT_INT32, "xent", "targets", e))
        return e->code;
    if (logits->rank < 2) return err_set(e, ERR_SHAPE, "xent: logits must be [positions, vocab]");
    int64_t V = logits->shape[logits->rank - 1];
    int64_t N = tensor_numel(logits) / V;
    if (nn_check_numel(tgt, N, "xent", "targets", e)) return e->code;
    const int32_t *t = tensor_data(tgt);
    for (int64_t i = 0; i < N; i++)
        if (t[i] >= V)
            return err_set(e, ERR_INVAL, "xent: target %d at position %lld is outside the vocabulary [0, %lld)",
                           t[i], (long long)i + 1, (long long)V);
    double *rows = malloc((size_t)N * sizeof *rows);
    if (!rows) return err_set(e, ERR_NOMEM, "xent: out of memory");
    xent_job j = {tensor_data(logits), t, V, (float)scale, rows};
    cpu_parallel(NULL, N, 4 * V, xent_rows, &j);
    double acc = 0;
    for (int64_t i = 0; i < N; i++) acc += rows[i];
    free(rows);
    *loss = acc;
    return 0;
}

int nn_xent_probs(tensor *probs, const tensor *tgt, int64_t seq, double scale, double *loss,
                  ane_error *e) {
    if (nn_check(probs, DT_FP32, "xent_probs", "probabilities", e) ||
        nn_check(tgt, DT_INT32, "xent_probs", "targets", e))
        return e->code;
    int64_t N = tensor_numel(tgt);
    if (seq < 1 || N % seq != 0)
        return err_set(e, ERR_SHAPE, "xent_probs: %lld targets do not split into sequences of %lld",
                       (long long)N, (long long)seq);
    int64_t B = N / seq, n = tensor_numel(probs);
    if (n % N != 0) return err_set(e, ERR_SHAPE, "xent_probs: probabilities are not [batch, vocab, seq]");
    int64_t V = n / N;
    const int32_t *t = tensor_data(tgt);
    float *p = tensor_data(probs);
    float k = (float)scale;
    for (int64_t i = 0; i < n; i++) p[i] *= k;
    double acc = 0;
    for (int64_t b = 0; b < B; b++) {
        for (int64_t s = 0; s < seq; s++) {
            int32_t tt = t[b * seq + s];
            if (tt >= V)
                return err_set(e, ERR_INVAL, "xent_probs: target %d at position %lld is outside the vocabulary [0, %lld)",
                               tt, (long long)(b * seq + s) + 1, (long long)V);
            float *col = p + b * V * seq + s;
            if (tt < 0) {
                for (int64_t v = 0; v < V; v++) col[v * seq] = 0;
                continue;
            }
            double pt = k != 0 ? (double)col[(int64_t)tt * seq] / k : 0;
            acc += -log(pt > 1e-30 ? pt : 1e-30);
            col[(int64_t)tt * seq] -= k;
        }
    }
    *loss = acc;
    return 0;
}
