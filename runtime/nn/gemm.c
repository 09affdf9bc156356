/* gemm.c - weight-gradient GEMMs and transposes on fp32 tensors, through the CPU backend's
 * cpu_sgemm (CBLAS, split over its pool when large). */
#include <string.h>

#include "../backend/cpu/cpu.h"
#include "nn_util.h"

int nn_gemm_dims(const tensor *C, const tensor *A, const tensor *B, int64_t batch, int64_t *M,
                 int64_t *N, int64_t *K, ane_error *e) {
    const char *fn = "gemm";
    if (nn_check(C, DT_FP32, fn, "C", e) || nn_check(A, DT_FP32, fn, "A", e) ||
        nn_check(B, DT_FP32, fn, "B", e))
        return e->code;
    if (C->rank != 2) return err_set(e, ERR_SHAPE, "%s: C must be a matrix [M, N]", fn);
    *M = C->shape[0];
    *N = C->shape[1];
    if (batch < 1) return err_set(e, ERR_INVAL, "%s: batch must be at least 1", fn);
    /* K from A's element count: A holds batch x M x K */
    int64_t na = tensor_numel(A), nb = tensor_numel(B);
    if (na % (batch * *M) != 0)
        return err_set(e, ERR_SHAPE, "%s: A has %lld elements, not batch %lld x M %lld x K", fn,
                       (long long)na, (long long)batch, (long long)*M);
    *K = na / (batch * *M);
    if (nb != batch * *K * *N) {
        char b1[64];
        return err_set(e, ERR_SHAPE, "%s: B %s has %lld elements, expected batch %lld x K %lld x N %lld",
                       fn, shape_str(B->rank, B->shape, b1, sizeof b1), (long long)nb,
                       (long long)batch, (long long)*K, (long long)*N);
    }
    return 0;
}

void nn_gemm_run(tensor *C, const tensor *A, const tensor *B, int ta, int tb, int64_t batch,
                 int64_t M, int64_t N, int64_t K, double alpha, double beta) {
    const float *a = tensor_data(A), *b = tensor_data(B);
    float *c = tensor_data(C);
    for (int64_t i = 0; i < batch; i++)
        cpu_sgemm(NULL, ta, tb, M, N, K, (float)alpha, a + i * M * K, ta ? M : K, b + i * K * N,
                  tb ? K : N, i == 0 ? (float)beta : 1.0f, c, N);
}

int nn_gemm(tensor *C, const tensor *A, const tensor *B, int ta, int tb, int64_t batch,
            double alpha, double beta, ane_error *e) {
    int64_t M, N, K;
    if (batch < 1) batch = 1;
    if (nn_gemm_dims(C, A, B, batch, &M, &N, &K, e)) return e->code;
    nn_gemm_run(C, A, B, ta, tb, batch, M, N, K, alpha, beta);
    return 0;
}

int nn_transpose(tensor *dst, const tensor *src, ane_error *e) {
    if (!dst->st || !src->st) return err_set(e, ERR_STATE, "transpose: tensor is closed");
    if (src->rank != 2) return err_set(e, ERR_SHAPE, "transpose: src must be a matrix");
    int64_t M = src->shape[0], N = src->shape[1];
    if (nn_check_numel(dst, M * N, "transpose", "dst", e)) return e->code;
    if (src->dt != DT_FP32 || dst->dt != DT_FP32) {
        if ((src->dt != DT_FP32 && src->dt != DT_FP16) || (dst->dt != DT_FP32 && dst->dt != DT_FP16))
            return err_set(e, ERR_TYPE, "transpose: fp16 or fp32 tensors expected");
        for (int64_t i = 0; i < M; i++) /* rare path: through double */
            for (int64_t j = 0; j < N; j++) tensor_set(dst, j * M + i, tensor_get(src, i * N + j));
        return 0;
    }
    const float *s = tensor_data(src);
    float *d = tensor_data(dst);
    enum { T = 32 };
    for (int64_t i0 = 0; i0 < M; i0 += T)
        for (int64_t j0 = 0; j0 < N; j0 += T) {
            int64_t i1 = i0 + T < M ? i0 + T : M, j1 = j0 + T < N ? j0 + T : N;
            for (int64_t i = i0; i < i1; i++)
                for (int64_t j = j0; j < j1; j++) d[j * M + i] = s[i * N + j];
        }
    return 0;
}
