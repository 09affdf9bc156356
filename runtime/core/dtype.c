/* dtype.c - element type sizes and names. */
#include "dtype.h"

#include <string.h>

#include "error.h"

static const struct { const char *name; size_t size; } info[DT_COUNT] = {
    [DT_FP16] = {"fp16", 2}, [DT_FP32] = {"fp32", 4}, [DT_INT32] = {"int32", 4},
    [DT_INT8] = {"int8", 1}, [DT_UINT8] = {"uint8", 1}, [DT_BOOL] = {"bool", 1},
};

size_t dtype_size(dtype t) { return (unsigned)t < DT_COUNT ? info[t].size : 0; }

const char *dtype_name(dtype t) { return (unsigned)t < DT_COUNT ? info[t].name : "?"; }

int dtype_parse(const char *name, dtype *out) {
    if (!name) return ERR_INVAL;
    for (int i = 0; i < DT_COUNT; i++)
        if (strcmp(name, info[i].name) == 0) {
            if (out) *out = (dtype)i;
            return 0;
        }
    return ERR_INVAL;
}
