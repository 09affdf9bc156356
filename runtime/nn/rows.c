/* rows.c - row gathers and scatter-adds by index (active-vocab compaction of the classifier). */
#include <string.h>

#include "nn_util.h"

static int rows_args(const char *fn, const tensor *small, const tensor *big, const tensor *ids,
                     int64_t *D, ane_error *e) {
    if (nn_check(small, DT_FP32, fn, "compact rows", e) || nn_check(big, DT_FP32, fn, "table", e) ||
        nn_check(ids, DT_INT32, fn, "ids", e))
        return e->code;
    if (big->rank != 2) return err_set(e, ERR_SHAPE, "%s: the table must be [rows, dim]", fn);
    *D = big->shape[1];
    int64_t k = tensor_numel(ids);
    if (nn_check_numel(small, k * *D, fn, "compact rows", e)) return e->code;
    const int32_t *id = tensor_data(ids);
    for (int64_t i = 0; i < k; i++)
        if (id[i] < 0 || id[i] >= big->shape[0])
            return err_set(e, ERR_INVAL, "%s: id %d at %lld is outside [0, %lld)", fn, id[i],
                           (long long)i + 1, (long long)big->shape[0]);
    return 0;
}

int nn_gather_rows(tensor *dst, const tensor *src, const tensor *ids, ane_error *e) {
    int64_t D;
    if (rows_args("gather_rows", dst, src, ids, &D, e)) return e->code;
    const int32_t *id = tensor_data(ids);
    const float *s = tensor_data(src);
    float *d = tensor_data(dst);
    for (int64_t i = 0, k = tensor_numel(ids); i < k; i++)
        memcpy(d + i * D, s + (int64_t)id[i] * D, (size_t)D * sizeof(float));
    return 0;
}

int nn_scatter_add_rows(tensor *dst, const tensor *src, const tensor *ids, ane_error *e) {
    int64_t D;
    if (rows_args("scatter_add_rows", src, dst, ids, &D, e)) return e->code;
    const int32_t *id = tensor_data(ids);
    const float *s = tensor_data(src);
    float *d = tensor_data(dst);
    for (int64_t i = 0, k = tensor_numel(ids); i < k; i++) {
        float *row = d + (int64_t)id[i] * D;
        const float *sr = s + i * D;
        for (int64_t c = 0; c < D; c++) row[c] += sr[c];
    }
    return 0;
}

int nn_remap(tensor *out, const tensor *in, const tensor *map, int allow_missing, ane_error *e) {
    if (nn_check(out, DT_INT32, "remap", "out", e) || nn_check(in, DT_INT32, "remap", "ids", e) ||
        nn_check(map, DT_INT32, "remap", "map", e) ||
        nn_check_numel(out, tensor_numel(in), "remap", "out", e))
        return e->code;
    const int32_t *a = tensor_data(in), *m = tensor_data(map);
    int32_t *o = tensor_data(out);
    int64_t V = tensor_numel(map);
    for (int64_t i = 0, n = tensor_numel(in); i < n; i++) {
        int32_t v = a[i] >= 0 && a[i] < V ? m[a[i]] : -1;
        if (v < 0 && !allow_missing)
            return err_set(e, ERR_INVAL, "remap: id %d at %lld is not in the active vocabulary", a[i],
                           (long long)i + 1);
        o[i] = v;
    }
    return 0;
}
