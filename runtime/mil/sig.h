/* sig.h - op signatures: for every MIL op, its inputs in reference order (mil-reference.md
 * section 8) with their binding rules and defaults.
 *
 * One table (sig.c) serves everyone who needs to know an op's inputs:
 *   - the checker binds each op's inputs with it and reads absent inputs' defaults from it;
 *   - backends materialise the default of an input a parsed program omits (mil_sig_default);
 *   - the Lua builder takes positional argument order and the defaults it fills from it
 *     (ane.mil_signature).
 * Entries are resolved per opset: dtype sets, type domains and const-ness that change at ios17
 * come out as they stand in the requested opset. */
#ifndef ANE_MIL_SIG_H
#define ANE_MIL_SIG_H

#include <stdint.h>

#include "ir.h"

#define MIL_SIG_MAXIN 16

/* input flags */
#define MIL_SIG_REQ 1u   /* must be bound (a required input may still carry a default: the one
                          * value that makes sense, which the builder fills and text must spell) */
#define MIL_SIG_CONST 2u /* operand must be a compile-time constant ("c" in the reference) */
#define MIL_SIG_TUPLE 4u /* takes a tuple binding `(a, b, ...)` (concat values) */
#define MIL_SIG_PARAM 8u /* a parameter (weight, epsilon, alpha), not a data operand: shares x's
                          * dtype before ios17, domain U of its own from ios17 (reference 7.2) */

/* rank rule of an input */
#define MIL_SIG_RANK_ANY 0
#define MIL_SIG_RANK0 (-1)   /* a scalar */
#define MIL_SIG_RANK_LE1 (-2) /* a scalar or a 1-D list */

/* What an absent input means. Computed defaults derive from x, the op's first input. */
typedef enum {
    MIL_DEF_NONE = 0,     /* no default: required, or absence means "not given" (conv bias) */
    MIL_DEF_INT,          /* int32 scalar di */
    MIL_DEF_BOOL,         /* bool scalar di (0 or 1) */
    MIL_DEF_FLOAT,        /* float scalar df in x's float dtype (fp32 when x is not a float) */
    MIL_DEF_FP32,         /* float scalar df, always fp32 (fill's value) */
    MIL_DEF_STRING,       /* string scalar ds */
    MIL_DEF_SPATIAL_ONES, /* int32 [rank(x) - 2] of 1: strides, dilations */
    MIL_DEF_SPATIAL_PAD,  /* int32 [2 (rank(x) - 2)] of 0: pad */
    MIL_DEF_RANK_ONES,    /* int32 [rank(x)] of 1: slice stride */
    MIL_DEF_RANK_FALSE,   /* bool [rank(x)] of false: slice masks */
    MIL_DEF_ALL_AXES,     /* int32 [0, 1, ..., rank(x) - 1]: reductions, layer_norm */
    MIL_DEF_UNIT_AXES     /* int32 axes of x whose size is 1: squeeze */
} mil_default_kind;

typedef struct mil_sig_input {
    const char *name;
    unsigned flags;        /* MIL_SIG_* */
    uint32_t dtypes;       /* allowed element dtypes, bit (1u << mil_dtype); 0 = any */
    char dom;              /* inputs with the same non-zero letter must share one dtype */
    int rank;              /* MIL_SIG_RANK_ANY, _RANK0, _RANK_LE1, or an exact rank n > 0 */
    int since;             /* first opset with this input (0: the op's own) */
    mil_default_kind def;
    int64_t di;            /* MIL_DEF_INT, MIL_DEF_BOOL */
    double df;             /* MIL_DEF_FLOAT, MIL_DEF_FP32 */
    const char *ds;        /* MIL_DEF_STRING */
} mil_sig_input;

typedef struct mil_sig {
    mil_opkind kind;
    int opset;             /* the opset it was resolved for */
    int nin;
    mil_sig_input in[MIL_SIG_MAXIN];
} mil_sig;

/* Fill out with op kind k's signature as it stands in opset (15..18; inputs newer than the
 * opset stay listed with their since). Returns 0, or ERR_INVAL for MIL_OP_UNKNOWN or a kind
 * outside the table. */
int mil_op_sig(mil_opkind k, int opset, mil_sig *out);
/* Index of input name in s, or -1. */
int mil_sig_find(const mil_sig *s, const char *name);

/* Element storage for a materialised default (mil_sig_default points out->data into it). */
typedef union mil_default_data {
    int32_t i32[2 * MIL_MAX_RANK];
    uint8_t u8[MIL_MAX_RANK];
    uint16_t f16;
    float f32;
    const char *str;
} mil_default_data;

/* The default of input i as a constant literal (form MIL_LIT_DATA, data in *d). x is the type of
 * the op's first input (may be NULL when the default does not depend on it). Returns 0;
 * ERR_STATE when the input has no default; ERR_SHAPE when the default derives from x and x is
 * missing or has too small a rank. */
int mil_sig_default(const mil_sig *s, int i, const mil_type *x, mil_literal *out,
                    mil_default_data *d);

#endif
