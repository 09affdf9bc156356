/* constval.c - readers for constant operands (see constval.h). */
#include "constval.h"

#include <math.h>
#include <string.h>

/* IEEE binary16 bits -> double, exact (kept here so constant reading needs nothing else). */
static double f16_to_double(uint16_t h)
{
    int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    double v = e == 0x1f ? (m ? NAN : INFINITY) : e == 0 ? ldexp(m, -24) : ldexp(m | 0x400, e - 25);
    return (h & 0x8000) ? -v : v;
}

int mil_value_is_const(const mil_function *f, int v)
{
    if (!f || v < 0 || v >= f->nvalues) return 0;
    const mil_value *val = &f->values[v];
    if (val->lit || val->is_inline) return 1;
    if (val->def_op < 0 || val->def_op >= f->nops) return 0;
    const mil_op *op = &f->ops[val->def_op];
    mil_opkind k = op->kind != MIL_OP_UNKNOWN ? op->kind : mil_op_lookup(op->type);
    return k == MIL_OP_const || k == MIL_OP_constexpr_affine_dequantize ||
           k == MIL_OP_constexpr_blockwise_shift_scale || k == MIL_OP_constexpr_cast;
}

const mil_literal *mil_value_lit(const mil_function *f, int v)
{
    if (!f || v < 0 || v >= f->nvalues) return NULL;
    const mil_literal *l = f->values[v].lit;
    if (!l || l->form == MIL_LIT_DICT || (!l->data && l->count > 0)) return NULL;
    return l;
}

int mil_lit_int(const mil_literal *l, int64_t i, int64_t *out)
{
    const void *d = l->data;
    switch (l->type.dtype) {
    case MIL_INT4: case MIL_INT8: *out = ((const int8_t *)d)[i]; return 0;
    case MIL_INT16: *out = ((const int16_t *)d)[i]; return 0;
    case MIL_INT32: *out = ((const int32_t *)d)[i]; return 0;
    case MIL_INT64: *out = ((const int64_t *)d)[i]; return 0;
    case MIL_UINT1: case MIL_UINT2: case MIL_UINT3: case MIL_UINT4: case MIL_UINT6:
    case MIL_UINT8: case MIL_BOOL: *out = ((const uint8_t *)d)[i]; return 0;
    case MIL_UINT16: *out = ((const uint16_t *)d)[i]; return 0;
    case MIL_UINT32: *out = ((const uint32_t *)d)[i]; return 0;
    case MIL_UINT64: {
        uint64_t u = ((const uint64_t *)d)[i];
        if (u > (uint64_t)INT64_MAX) return ERR_TYPE;
        *out = (int64_t)u;
        return 0;
    }
    default: return ERR_TYPE;
    }
}

int mil_lit_float(const mil_literal *l, int64_t i, double *out)
{
    switch (l->type.dtype) {
    case MIL_FP16: *out = f16_to_double(((const uint16_t *)l->data)[i]); return 0;
    case MIL_FP32: *out = ((const float *)l->data)[i]; return 0;
    case MIL_FP64: *out = ((const double *)l->data)[i]; return 0;
    case MIL_BF16: {
        uint32_t bits = (uint32_t)((const uint16_t *)l->data)[i] << 16;
        float fv;
        memcpy(&fv, &bits, sizeof fv);
        *out = fv;
        return 0;
    }
    default: {
        int64_t iv;
        int rc = mil_lit_int(l, i, &iv);
        if (rc == 0) *out = (double)iv;
        return rc;
    }
    }
}

static int is_int_dtype(mil_dtype t)
{
    return t != MIL_FP16 && t != MIL_FP32 && t != MIL_FP64 && t != MIL_BF16 && t != MIL_STRING &&
           t != MIL_BOOL;
}

/* The literal of v, checked to be rank 0 (scalar) or rank <= 1 (list). */
static int get_lit(const mil_function *f, int v, int list, const mil_literal **out)
{
    if (!mil_value_lit(f, v)) return ERR_STATE;
    const mil_literal *l = f->values[v].lit;
    if (l->type.kind != MIL_T_TENSOR) return ERR_TYPE;
    if (l->type.rank > list) return ERR_SHAPE; /* list: the largest rank accepted */
    *out = l;
    return 0;
}

int mil_const_ints(const mil_function *f, int v, int64_t *out, int max, int *n)
{
    return mil_const_ints_rank(f, v, 1, out, max, n);
}

int mil_const_ints_rank(const mil_function *f, int v, int max_rank, int64_t *out, int max, int *n)
{
    const mil_literal *l;
    int rc = get_lit(f, v, max_rank, &l);
    if (rc) return rc;
    if (!is_int_dtype(l->type.dtype)) return ERR_TYPE;
    if (l->count > max) return ERR_SHAPE;
    for (int64_t i = 0; i < l->count; i++)
        if ((rc = mil_lit_int(l, i, &out[i]))) return rc;
    *n = (int)l->count;
    return 0;
}

int mil_const_int(const mil_function *f, int v, int64_t *out)
{
    const mil_literal *l;
    int rc = get_lit(f, v, 0, &l);
    if (rc) return rc;
    if (!is_int_dtype(l->type.dtype)) return ERR_TYPE;
    return mil_lit_int(l, 0, out);
}

int mil_const_bools(const mil_function *f, int v, int *out, int max, int *n)
{
    const mil_literal *l;
    int rc = get_lit(f, v, 1, &l);
    if (rc) return rc;
    if (l->type.dtype != MIL_BOOL) return ERR_TYPE;
    if (l->count > max) return ERR_SHAPE;
    for (int64_t i = 0; i < l->count; i++) out[i] = ((const uint8_t *)l->data)[i] != 0;
    *n = (int)l->count;
    return 0;
}

int mil_const_bool(const mil_function *f, int v, int *out)
{
    const mil_literal *l;
    int rc = get_lit(f, v, 0, &l);
    if (rc) return rc;
    if (l->type.dtype != MIL_BOOL) return ERR_TYPE;
    *out = ((const uint8_t *)l->data)[0] != 0;
    return 0;
}

int mil_const_float(const mil_function *f, int v, double *out)
{
    const mil_literal *l;
    int rc = get_lit(f, v, 0, &l);
    if (rc) return rc;
    if (l->type.dtype == MIL_STRING) return ERR_TYPE;
    return mil_lit_float(l, 0, out);
}

int mil_const_string(const mil_function *f, int v, const char **out)
{
    const mil_literal *l;
    int rc = get_lit(f, v, 0, &l);
    if (rc) return rc;
    if (l->type.dtype != MIL_STRING) return ERR_TYPE;
    *out = ((const char *const *)l->data)[0];
    return *out ? 0 : ERR_STATE;
}
