/* nn.h - the CPU half of a training step: embedding, softmax cross-entropy, RMSNorm on the CPU,
 * weight-gradient GEMMs, row gathers for active-vocab compaction.
 *
 * Plain C over core tensors (no Lua). Every function checks dtypes and shapes first, then works;
 * 0 on success, an ERR_* code with e filled otherwise. The caller holds the tensors' storages
 * locked (runtime/lua/l_nn.c does). Activations use the ANE layout: a sequence of S positions
 * with C channels is [C, S] row-major (channel-major), a batch of B sequences [B, C, S].
 * Float work is fp32; large loops run on the CPU backend's thread pool (cpu_parallel). */
#ifndef ANE_NN_NN_H
#define ANE_NN_NN_H

#include <stdint.h>

#include "../core/error.h"
#include "../core/tensor.h"

/* x[b][c][s] = E[tok[b*S + s]][c]. x fp32 [B, D, S] (any shape of B*D*S elements together with
 * seq = S), E fp32 [V, D], tok int32 [B*S]. A token outside [0, V) is an error naming it. */
int nn_embed(tensor *x, const tensor *E, const tensor *tok, int64_t seq, ane_error *e);
/* dE[tok[b*S + s]][c] += dx[b][c][s] (scatter-add; repeated tokens add up). */
int nn_embed_backward(tensor *dE, const tensor *dx, const tensor *tok, int64_t seq, ane_error *e);

/* Fused softmax cross-entropy over rows: logits fp32 [N, V] (positions as rows) are replaced by
 * scale·(softmax(row) − onehot(target)). Returns Σ_rows −log softmax(row)[target] in *loss (sum,
 * not mean; accumulated in double in row order, so the result does not depend on threads).
 * tgt int32 [N]; a target < 0 is ignored (no loss, zero gradient row). */
int nn_xent(tensor *logits, const tensor *tgt, double scale, double *loss, ane_error *e);
/* The same from probabilities laid out channel-major (the device's softmax output) fp32 [B, V, S]:
 * probs become scale·(probs − onehot); *loss = Σ −log max(p[target], 1e-30). */
int nn_xent_probs(tensor *probs, const tensor *tgt, int64_t seq, double scale, double *loss,
                  ane_error *e);

/* RMSNorm over channels of x [B, D, S]: y = x·r·w with r[s] = (Σ_c x²/D + eps)^(-1/2). */
int nn_rmsnorm(tensor *y, const tensor *x, const tensor *w, int64_t seq, double eps, ane_error *e);
/* Its backward for dy = dL/dy: dx += (dy·w − x·(Σ_c dy·w·x)·r²/D)·r (dx may be NULL, e.g. when
 * the device computed it), dw[c] += Σ_b,s dy·x·r. */
int nn_rmsnorm_backward(tensor *dx, tensor *dw, const tensor *dy, const tensor *x, const tensor *w,
                        int64_t seq, double eps, ane_error *e);

/* GEMM on fp32 tensors: C = alpha·Σ_batch op(A_b)·op(B_b) + beta·C. C is [M, N]; A is [M, K]
 * ([K, M] with ta), B [K, N] ([N, K] with tb); A and B may carry a leading batch dimension
 * (rank 3, or a flat multiple of the matrix size given batch > 1) that is summed over: the
 * weight gradient dW += Σ_b dY_b·X_bᵀ of a batch is one call. */
int nn_gemm(tensor *C, const tensor *A, const tensor *B, int ta, int tb, int64_t batch,
            double alpha, double beta, ane_error *e);

/* nn_gemm in two halves (for the queue below): check and size, then compute. */
int nn_gemm_dims(const tensor *C, const tensor *A, const tensor *B, int64_t batch, int64_t *M,
                 int64_t *N, int64_t *K, ane_error *e);
void nn_gemm_run(tensor *C, const tensor *A, const tensor *B, int ta, int tb, int64_t batch,
                 int64_t M, int64_t N, int64_t K, double alpha, double beta);

/* A GEMM queue: one worker thread runs nn_gemm calls in submission order while the caller goes
 * on (the weight-gradient GEMMs of a training step overlap the device's next kernels). push
 * checks the arguments at once (errors come back from push), holds a reference on each
 * tensor's storage until the job is done, and returns a ticket; wait(ticket) blocks until that
 * job and every earlier one finished (ticket 0: all). The caller must not write what a pending
 * job reads, nor read what it writes, before waiting for it. */
typedef struct nn_gemmq nn_gemmq;
nn_gemmq *nn_gemmq_new(ane_error *e);
int nn_gemmq_push(nn_gemmq *q, const tensor *C, const tensor *A, const tensor *B, int ta, int tb,
                  int64_t batch, double alpha, double beta, uint64_t *ticket, ane_error *e);
void nn_gemmq_wait(nn_gemmq *q, uint64_t ticket);
/* Waits for every job, stops the worker, frees q (NULL-safe). */
void nn_gemmq_free(nn_gemmq *q);

/* dst [N, M] = srcᵀ for src [M, N]; fp32 or fp16 on either side. */
int nn_transpose(tensor *dst, const tensor *src, ane_error *e);

/* Active-vocab compaction: dst[i] = src[ids[i]] (rows), and dst[ids[i]] += src[i]. fp32 [*, D]. */
int nn_gather_rows(tensor *dst, const tensor *src, const tensor *ids, ane_error *e);
int nn_scatter_add_rows(tensor *dst, const tensor *src, const tensor *ids, ane_error *e);
/* Map ids through a table: out[i] = map[in[i]] (int32; map [V]); an id outside the table or
 * mapped to < 0 is an error unless allow_missing, which maps it to -1. */
int nn_remap(tensor *out, const tensor *in, const tensor *map, int allow_missing, ane_error *e);

#endif
