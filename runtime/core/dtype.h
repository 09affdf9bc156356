/* dtype.h - element types a tensor can hold. */
#ifndef ANE_CORE_DTYPE_H
#define ANE_CORE_DTYPE_H

#include <stddef.h>

typedef enum {
    DT_FP16 = 0,
    DT_FP32,
    DT_INT32,
    DT_INT8,
    DT_UINT8,
    DT_BOOL, /* one byte, 0 or 1: MIL comparison results and masks */
    DT_COUNT
} dtype;

size_t dtype_size(dtype t);             /* bytes per element */
const char *dtype_name(dtype t);        /* "fp16", "fp32", "int32", "int8", "uint8", "bool" */
int dtype_parse(const char *name, dtype *out); /* 0 ok, ERR_INVAL for an unknown name */

#endif
