/* sig.c - the op signature table (sig.h): every op's inputs in reference order, with the rules
 * ck_bind applies and the defaults of absent inputs. The checker's rules (check_ops.c) index
 * these lists by position, so an op's input order here is its rule's enum order. */
#include <string.h>

#include "check_int.h"

/* Markers resolved per opset by mil_op_sig (never visible outside this file). */
#define DS_DATA (1u << 31)  /* data-movement dtypes: ios15 fp16/fp32/int32/bool, ios17 + small ints */
#define DS_INDEX (1u << 30) /* index dtypes: ios15 int32, ios17 + int8/uint8/int16/uint16 */
#define CONST_LT17 (1u << 8) /* const before ios17 only (conv_transpose weight) */
/* domain letters resolved per opset: 'P' parameters (T, then U from ios17), 'M' matmul's y (T,
 * then its own from ios17: mixed dtypes allowed) */

#define R MIL_SIG_REQ
#define C MIL_SIG_CONST
#define TUP MIL_SIG_TUPLE
#define PAR MIL_SIG_PARAM

#define DEF_I(v) .def = MIL_DEF_INT, .di = (v)
#define DEF_B(v) .def = MIL_DEF_BOOL, .di = (v)
#define DEF_F(v) .def = MIL_DEF_FLOAT, .df = (v)
#define DEF_S(v) .def = MIL_DEF_STRING, .ds = (v)

/* the frequent inputs */
#define X_F {.name = "x", .flags = R, .dtypes = D_F, .dom = 'T'}
#define X_FI {.name = "x", .flags = R, .dtypes = D_FI, .dom = 'T'}
#define X_DATA {.name = "x", .flags = R, .dtypes = DS_DATA}
#define EPS(v) {.name = "epsilon", .flags = C | PAR, .dtypes = D_F, .dom = 'P', .rank = RK0, DEF_F(v)}
#define PARAM(n, fl) .name = n, .flags = (fl) | C | PAR, .dtypes = D_F, .dom = 'P', .rank = RK0
#define SLICE_TAIL                                                                                 \
    {.name = "stride", .flags = C, .dtypes = D_I32, .rank = 1, .def = MIL_DEF_RANK_ONES},          \
        {.name = "begin_mask", .flags = C, .dtypes = D_BOOL, .rank = 1, .def = MIL_DEF_RANK_FALSE}, \
        {.name = "end_mask", .flags = C, .dtypes = D_BOOL, .rank = 1, .def = MIL_DEF_RANK_FALSE},   \
        {.name = "squeeze_mask", .flags = C, .dtypes = D_BOOL, .rank = 1, .def = MIL_DEF_RANK_FALSE}
#define VALIDATE {.name = "validate_indices", .flags = C, .dtypes = D_BOOL, .rank = RK0, .since = 17, DEF_B(0)}

/* ======================================================================
 * 8.1 constants (const has no inputs: its `val` is an attribute)
 * ====================================================================== */

static const mil_sig_input s_affine_dequantize[] = {
    {.name = "quantized_data", .flags = R | C, .dtypes = D_Q},
    {.name = "zero_point", .flags = R | C, .dtypes = D_Q | DB(MIL_FP32), .rank = RK_LE1},
    {.name = "scale", .flags = R | C, .dtypes = D_F, .rank = RK_LE1},
    {.name = "axis", .flags = R | C, .dtypes = D_I32, .rank = RK0},
};
static const mil_sig_input s_blockwise_shift_scale[] = {
    {.name = "data", .flags = R | C, .dtypes = DB(MIL_INT4) | DB(MIL_UINT4) | D_Q | D_F},
    {.name = "scale", .flags = R | C, .dtypes = D_F},
    {.name = "offset", .flags = C, .dtypes = DB(MIL_INT4) | DB(MIL_UINT4) | D_Q | D_F},
};
static const mil_sig_input s_constexpr_cast[] = {
    {.name = "source_val", .flags = R | C, .dtypes = DB(MIL_FP16)},
    {.name = "output_dtype", .flags = R | C, .dtypes = D_STR, .rank = RK0, DEF_S("fp32")},
};

/* ======================================================================
 * 8.2 elementwise binary, 8.3 unary and activations, 8.4 cast
 * ====================================================================== */

static const mil_sig_input s_arith[] = {X_FI, {.name = "y", .flags = R, .dtypes = D_FI, .dom = 'T'}};
static const mil_sig_input s_logical[] = {
    {.name = "x", .flags = R, .dtypes = D_BOOL, .dom = 'T'},
    {.name = "y", .flags = R, .dtypes = D_BOOL, .dom = 'T'},
};
static const mil_sig_input s_unary_f[] = {X_F};
static const mil_sig_input s_unary_fi[] = {X_FI};
static const mil_sig_input s_logical_not[] = {{.name = "x", .flags = R, .dtypes = D_BOOL, .dom = 'T'}};
static const mil_sig_input s_rsqrt[] = {X_F, EPS(1e-12)};
static const mil_sig_input s_inverse[] = {X_F, EPS(1e-4)};
static const mil_sig_input s_log[] = {X_F, EPS(1e-45)};
/* clip keeps alpha/beta in T even from ios17 (7.2) */
static const mil_sig_input s_clip[] = {
    X_F,
    {.name = "alpha", .flags = R | C, .dtypes = D_F, .dom = 'T', .rank = RK0},
    {.name = "beta", .flags = R | C, .dtypes = D_F, .dom = 'T', .rank = RK0},
};
static const mil_sig_input s_threshold[] = {
    X_FI, {.name = "alpha", .flags = R | C, .dtypes = D_FI, .dom = 'T', .rank = RK0},
};
static const mil_sig_input s_gelu[] = {
    X_F, {.name = "mode", .flags = C, .dtypes = D_STR, .rank = RK0, DEF_S("EXACT")},
};
/* The reference gives no defaults for the scalar-parameter activations; these are CT's. */
static const mil_sig_input s_leaky_relu[] = {X_F, {PARAM("alpha", 0), DEF_F(0.01)}};
static const mil_sig_input s_elu[] = {X_F, {PARAM("alpha", 0), DEF_F(1)}};
static const mil_sig_input s_thresholded_relu[] = {X_F, {PARAM("alpha", 0), DEF_F(1)}};
static const mil_sig_input s_clamped_relu[] = {X_F, {PARAM("alpha", R)}, {PARAM("beta", R)}};
static const mil_sig_input s_linear_activation[] = {X_F, {PARAM("alpha", R)}, {PARAM("beta", 0), DEF_F(0)}};
static const mil_sig_input s_scaled_tanh[] = {X_F, {PARAM("alpha", 0), DEF_F(1)}, {PARAM("beta", 0), DEF_F(1)}};
static const mil_sig_input s_sigmoid_hard[] = {X_F, {PARAM("alpha", 0), DEF_F(0.2)}, {PARAM("beta", 0), DEF_F(0.5)}};
static const mil_sig_input s_prelu[] = {
    X_F, {.name = "alpha", .flags = R | C | PAR, .dtypes = D_F, .dom = 'P', .rank = 1},
};
static const mil_sig_input s_cast[] = {
    X_DATA, {.name = "dtype", .flags = R | C, .dtypes = D_STR, .rank = RK0},
};

/* ======================================================================
 * 8.5 softmax and normalisation
 * ====================================================================== */

#define GAMMA_BETA                                                                                 \
    {.name = "gamma", .flags = C | PAR, .dtypes = D_F, .dom = 'P'},                                \
        {.name = "beta", .flags = C | PAR, .dtypes = D_F, .dom = 'P'}

static const mil_sig_input s_softmax[] = {
    X_F, {.name = "axis", .flags = C, .dtypes = D_I32, .rank = RK0, DEF_I(-1)},
};
static const mil_sig_input s_layer_norm[] = {
    X_F, {.name = "axes", .flags = C, .dtypes = D_I32, .rank = 1, .def = MIL_DEF_ALL_AXES},
    GAMMA_BETA, EPS(1e-5),
};
static const mil_sig_input s_batch_norm[] = {
    X_F,
    {.name = "mean", .flags = R | C | PAR, .dtypes = D_F, .dom = 'P'},
    {.name = "variance", .flags = R | C | PAR, .dtypes = D_F, .dom = 'P'},
    GAMMA_BETA, EPS(1e-5),
};
static const mil_sig_input s_instance_norm[] = {X_F, GAMMA_BETA, EPS(1e-5)};
static const mil_sig_input s_l2_norm[] = {X_F, EPS(1e-6)};
static const mil_sig_input s_local_response_norm[] = {
    X_F,
    {.name = "size", .flags = R | C, .dtypes = D_I32, .rank = RK0},
    {PARAM("alpha", 0), DEF_F(1e-4)},
    {PARAM("beta", 0), DEF_F(0.75)},
    {PARAM("k", 0), DEF_F(1)},
};

/* ======================================================================
 * 8.6 linear algebra
 * ====================================================================== */

#define SPATIAL(n) {.name = n, .flags = C, .dtypes = D_I32, .rank = 1, .def = MIL_DEF_SPATIAL_ONES}
#define PAD {.name = "pad", .flags = C, .dtypes = D_I32, .rank = 1, .def = MIL_DEF_SPATIAL_PAD}
#define PAD_TYPE {.name = "pad_type", .flags = C, .dtypes = D_STR, .rank = RK0, DEF_S("valid")}
#define GROUPS {.name = "groups", .flags = C, .dtypes = D_I32, .rank = RK0, DEF_I(1)}
#define BIAS {.name = "bias", .flags = C | PAR, .dtypes = D_F, .dom = 'P'}

static const mil_sig_input s_conv[] = {
    X_F, {.name = "weight", .flags = R | PAR, .dtypes = D_F, .dom = 'P'}, BIAS,
    SPATIAL("strides"), PAD_TYPE, PAD, SPATIAL("dilations"), GROUPS,
};
static const mil_sig_input s_conv_transpose[] = {
    X_F, {.name = "weight", .flags = R | PAR | CONST_LT17, .dtypes = D_F, .dom = 'P'}, BIAS, PAD,
    {.name = "output_shape", .flags = C, .dtypes = D_I32, .rank = 1},
    PAD_TYPE, SPATIAL("strides"), SPATIAL("dilations"), GROUPS,
};
static const mil_sig_input s_matmul[] = {
    X_FI, {.name = "y", .flags = R, .dtypes = D_FI, .dom = 'M'},
    {.name = "transpose_x", .flags = C, .dtypes = D_BOOL, .rank = RK0, DEF_B(0)},
    {.name = "transpose_y", .flags = C, .dtypes = D_BOOL, .rank = RK0, DEF_B(0)},
};
static const mil_sig_input s_linear[] = {
    X_FI,
    {.name = "weight", .flags = R | C | PAR, .dtypes = D_FI, .dom = 'P', .rank = 2},
    {.name = "bias", .flags = C | PAR, .dtypes = D_FI, .dom = 'P', .rank = 1},
};

/* ======================================================================
 * 8.7 reductions
 * ====================================================================== */

#define KEEP_DIMS {.name = "keep_dims", .flags = C, .dtypes = D_BOOL, .rank = RK0, DEF_B(0)}

static const mil_sig_input s_reduce[] = {
    X_FI, {.name = "axes", .flags = C, .dtypes = D_I32, .rank = 1, .def = MIL_DEF_ALL_AXES}, KEEP_DIMS,
};
static const mil_sig_input s_reduce_arg[] = {
    X_FI, {.name = "axis", .flags = C, .dtypes = D_I32, .rank = RK0, DEF_I(-1)}, KEEP_DIMS,
    {.name = "output_dtype", .flags = C, .dtypes = D_STR, .rank = RK0, .since = 17, DEF_S("int32")},
};

/* ======================================================================
 * 8.8 shape and data movement
 * ====================================================================== */

#define INTS(n, fl) {.name = n, .flags = (fl), .dtypes = D_I32, .rank = 1}
#define AXIS0 {.name = "axis", .flags = C, .dtypes = D_I32, .rank = RK0, DEF_I(0)}
#define MODE {.name = "mode", .flags = C, .dtypes = D_STR, .rank = RK0, DEF_S("add")}

static const mil_sig_input s_reshape[] = {X_DATA, INTS("shape", R)};
static const mil_sig_input s_transpose[] = {X_DATA, INTS("perm", R | C)};
static const mil_sig_input s_expand_dims[] = {X_DATA, INTS("axes", R | C)};
static const mil_sig_input s_squeeze[] = {
    X_DATA, {.name = "axes", .flags = C, .dtypes = D_I32, .rank = 1, .def = MIL_DEF_UNIT_AXES},
};
static const mil_sig_input s_slice_by_size[] = {X_DATA, INTS("begin", R), INTS("size", R)};
static const mil_sig_input s_slice_by_index[] = {X_DATA, INTS("begin", R), INTS("end", R), SLICE_TAIL};
static const mil_sig_input s_slice_update[] = {
    {.name = "x", .flags = R, .dtypes = D_DATA17, .dom = 'T'},
    {.name = "update", .flags = R, .dtypes = D_DATA17, .dom = 'T'},
    INTS("begin", R), INTS("end", R), SLICE_TAIL,
};
static const mil_sig_input s_concat[] = {
    {.name = "values", .flags = R | TUP, .dtypes = DS_DATA, .dom = 'T'},
    {.name = "axis", .flags = R | C, .dtypes = D_I32, .rank = RK0},
    {.name = "interleave", .flags = C, .dtypes = D_BOOL, .rank = RK0, DEF_B(0)},
};
static const mil_sig_input s_split[] = {
    X_DATA,
    {.name = "axis", .flags = R | C, .dtypes = D_I32, .rank = RK0},
    {.name = "num_splits", .flags = C, .dtypes = D_I32, .rank = RK0},
    INTS("split_sizes", C),
};
static const mil_sig_input s_tile[] = {X_DATA, INTS("reps", R)};
static const mil_sig_input s_identity[] = {{.name = "x", .flags = R}};
static const mil_sig_input s_fill[] = {
    INTS("shape", R),
    {.name = "value", .flags = C, .dtypes = D_FI | D_BOOL, .rank = RK0, .def = MIL_DEF_FP32, .df = 0},
};
static const mil_sig_input s_band_part[] = {
    {.name = "x", .flags = R, .dtypes = D_FI},
    {.name = "lower", .flags = C, .dtypes = D_I32, .rank = RK0, DEF_I(-1)},
    {.name = "upper", .flags = C, .dtypes = D_I32, .rank = RK0, DEF_I(-1)},
};
static const mil_sig_input s_select[] = {
    {.name = "cond", .flags = R, .dtypes = D_BOOL},
    {.name = "a", .flags = R, .dtypes = DS_DATA, .dom = 'T'},
    {.name = "b", .flags = R, .dtypes = DS_DATA, .dom = 'T'},
};
static const mil_sig_input s_gather[] = {
    X_DATA, {.name = "indices", .flags = R, .dtypes = DS_INDEX}, AXIS0,
    {.name = "batch_dims", .flags = C, .dtypes = D_I32, .rank = RK0, .since = 16, DEF_I(0)}, VALIDATE,
};
static const mil_sig_input s_gather_along_axis[] = {
    X_DATA, {.name = "indices", .flags = R, .dtypes = DS_INDEX}, AXIS0, VALIDATE,
};
static const mil_sig_input s_scatter[] = {
    {.name = "data", .flags = R, .dtypes = DS_DATA, .dom = 'T'},
    {.name = "indices", .flags = R, .dtypes = DS_INDEX},
    {.name = "updates", .flags = R, .dtypes = DS_DATA, .dom = 'T'},
    AXIS0, MODE, VALIDATE,
};

/* ======================================================================
 * 8.9 attention, 8.10 quantisation
 * ====================================================================== */

static const mil_sig_input s_sdpa[] = {
    {.name = "query", .flags = R, .dtypes = D_F, .dom = 'T'},
    {.name = "key", .flags = R, .dtypes = D_F, .dom = 'T'},
    {.name = "value", .flags = R, .dtypes = D_F, .dom = 'T'},
    {.name = "attn_mask", .dtypes = D_F | D_BOOL},
};
static const mil_sig_input s_quantize[] = {
    {.name = "input", .flags = R, .dtypes = D_F, .dom = 'T'},
    {.name = "scale", .flags = R | C, .dtypes = D_F, .dom = 'T', .rank = RK_LE1},
    {.name = "zero_point", .flags = C, .dtypes = D_Q, .rank = RK_LE1},
    {.name = "axis", .flags = C, .dtypes = D_I32, .rank = RK0},
    {.name = "output_dtype", .flags = R | C, .dtypes = D_STR, .rank = RK0},
};
static const mil_sig_input s_dequantize[] = {
    {.name = "input", .flags = R, .dtypes = D_Q, .dom = 'Q'},
    {.name = "scale", .flags = R | C, .dtypes = D_F, .rank = RK_LE1},
    {.name = "zero_point", .flags = C, .dtypes = D_Q, .dom = 'Q', .rank = RK_LE1},
    {.name = "axis", .flags = C, .dtypes = D_I32, .rank = RK0},
};

/* ======================================================================
 * ops from coremltools' definitions (iOS15/16 tensor_operation, tensor_transformation,
 * image_resizing): names, order, dtypes and defaults as CT declares them
 * ====================================================================== */

#define X_F4 {.name = "x", .flags = R, .dtypes = D_F, .dom = 'T', .rank = 4}
#define INT_C(n) {.name = n, .flags = R | C, .dtypes = D_I32, .rank = RK0}

static const mil_sig_input s_pad[] = {
    X_F,
    {.name = "pad", .flags = R, .dtypes = D_I32, .rank = 1},
    {.name = "mode", .flags = C, .dtypes = D_STR, .rank = RK0, DEF_S("constant")},
    {.name = "constant_val", .flags = C, .dtypes = D_F, .dom = 'T', .rank = RK0, DEF_F(0)},
};
static const mil_sig_input s_depth_to_space[] = {X_F4, INT_C("block_size")};
static const mil_sig_input s_pixel_shuffle[] = {X_F4, INT_C("upscale_factor")};
static const mil_sig_input s_pixel_unshuffle[] = {
    X_F4, {.name = "downscale_factor", .flags = R | C, .dtypes = DB(MIL_UINT32), .rank = RK0},
};
static const mil_sig_input s_space_to_batch[] = {
    X_F4, {.name = "block_shape", .flags = R | C, .dtypes = D_I32, .rank = 1},
    {.name = "paddings", .flags = R | C, .dtypes = D_I32, .rank = 2},
};
static const mil_sig_input s_batch_to_space[] = {
    X_F4, {.name = "block_shape", .flags = R | C, .dtypes = D_I32, .rank = 1},
    {.name = "crops", .flags = R | C, .dtypes = D_I32, .rank = 2},
};
static const mil_sig_input s_crop[] = {
    X_F, {.name = "crop_height", .flags = R | C, .dtypes = D_I32, .rank = 1},
    {.name = "crop_width", .flags = R | C, .dtypes = D_I32, .rank = 1},
};
static const mil_sig_input s_reverse[] = {
    {.name = "x", .flags = R, .dtypes = D_DATA15},
    {.name = "axes", .flags = C, .dtypes = D_I32, .rank = 1, .def = MIL_DEF_ALL_AXES},
};
static const mil_sig_input s_flatten2d[] = {
    {.name = "x", .flags = R, .dtypes = D_DATA15}, {.name = "axis", .flags = C, .dtypes = D_I32, .rank = RK0, DEF_I(1)},
};
static const mil_sig_input s_fill_like[] = {
    {.name = "ref_tensor", .flags = R, .dtypes = D_DATA15},
    {.name = "value", .flags = C, .dtypes = D_FI | D_BOOL, .rank = RK0, .def = MIL_DEF_FP32, .df = 0},
};
static const mil_sig_input s_range_1d[] = {
    {.name = "end", .flags = R, .dtypes = D_FI, .dom = 'T', .rank = RK0},
    {.name = "start", .flags = R, .dtypes = D_FI, .dom = 'T', .rank = RK0},
    {.name = "step", .flags = R, .dtypes = D_FI, .dom = 'T', .rank = RK0},
};

#define POOL_IN                                                                                    \
    {.name = "x", .flags = R, .dtypes = D_F, .dom = 'T'},                                          \
        {.name = "kernel_sizes", .flags = R | C, .dtypes = D_I32, .rank = 1}, SPATIAL("strides"),  \
        {.name = "pad_type", .flags = R | C, .dtypes = D_STR, .rank = RK0}, PAD,                   \
        {.name = "ceil_mode", .flags = C, .dtypes = D_BOOL, .rank = RK0, DEF_B(0)}
static const mil_sig_input s_avg_pool[] = {
    POOL_IN, {.name = "exclude_padding_from_average", .flags = C, .dtypes = D_BOOL, .rank = RK0, DEF_B(0)},
};
static const mil_sig_input s_pool[] = {POOL_IN};
static const mil_sig_input s_resize_nn[] = {X_F, INT_C("target_size_height"), INT_C("target_size_width")};
static const mil_sig_input s_resize_bilinear[] = {
    X_F,
    {.name = "target_size_height", .flags = C, .dtypes = D_I32, .rank = RK0, DEF_I(1)},
    {.name = "target_size_width", .flags = C, .dtypes = D_I32, .rank = RK0, DEF_I(1)},
    {.name = "sampling_mode", .flags = C, .dtypes = D_STR, .rank = RK0, DEF_S("DEFAULT")},
};
/* the iOS16 forms (constexpr_ops.py): packed indices / bit mask, an explicit uint32 shape */
static const mil_sig_input s_lut_to_dense[] = {
    {.name = "indices", .flags = R | C, .dtypes = DB(MIL_UINT8), .rank = 1},
    {.name = "lut", .flags = R | C, .dtypes = D_Q | D_F, .rank = 1},
    {.name = "shape", .flags = R | C, .dtypes = DB(MIL_UINT32), .rank = 1},
};
static const mil_sig_input s_sparse_to_dense[] = {
    {.name = "nonzero_data", .flags = R | C, .dtypes = D_Q | D_F, .rank = 1},
    {.name = "mask", .flags = R | C, .dtypes = DB(MIL_UINT8), .rank = 1},
    {.name = "shape", .flags = R | C, .dtypes = DB(MIL_UINT32), .rank = 1},
};
static const mil_sig_input s_einsum[] = {
    {.name = "values", .flags = R | TUP, .dtypes = D_F, .dom = 'T'},
    {.name = "equation", .flags = R | C, .dtypes = D_STR, .rank = RK0},
};

/* ======================================================================
 * the table
 * ====================================================================== */

typedef struct sig_entry {
    const mil_sig_input *in;
    int n;
    int present;
} sig_entry;

#define E(a) {a, (int)(sizeof(a) / sizeof((a)[0])), 1}
#define K(op) [MIL_OP_##op]

static const sig_entry table[MIL_OP_COUNT] = {
    K(const) = {NULL, 0, 1},
    K(constexpr_affine_dequantize) = E(s_affine_dequantize),
    K(constexpr_blockwise_shift_scale) = E(s_blockwise_shift_scale),
    K(constexpr_cast) = E(s_constexpr_cast),

    K(add) = E(s_arith), K(sub) = E(s_arith), K(mul) = E(s_arith), K(real_div) = E(s_arith),
    K(pow) = E(s_arith), K(maximum) = E(s_arith), K(minimum) = E(s_arith),
    K(floor_div) = E(s_arith), K(mod) = E(s_arith), K(equal) = E(s_arith),
    K(not_equal) = E(s_arith), K(greater) = E(s_arith), K(greater_equal) = E(s_arith),
    K(less) = E(s_arith), K(less_equal) = E(s_arith), K(logical_and) = E(s_logical),
    K(logical_or) = E(s_logical), K(logical_xor) = E(s_logical),

    K(relu) = E(s_unary_f), K(relu6) = E(s_unary_f), K(sigmoid) = E(s_unary_f),
    K(silu) = E(s_unary_f), K(tanh) = E(s_unary_f), K(exp) = E(s_unary_f), K(exp2) = E(s_unary_f),
    K(sqrt) = E(s_unary_f), K(sin) = E(s_unary_f), K(cos) = E(s_unary_f), K(tan) = E(s_unary_f),
    K(asin) = E(s_unary_f), K(acos) = E(s_unary_f), K(atan) = E(s_unary_f),
    K(atanh) = E(s_unary_f), K(sinh) = E(s_unary_f), K(cosh) = E(s_unary_f), K(erf) = E(s_unary_f),
    K(floor) = E(s_unary_f), K(ceil) = E(s_unary_f), K(round) = E(s_unary_f),
    K(softplus) = E(s_unary_f), K(softsign) = E(s_unary_f),
    K(abs) = E(s_unary_fi), K(sign) = E(s_unary_fi), K(square) = E(s_unary_fi),
    K(rsqrt) = E(s_rsqrt), K(inverse) = E(s_inverse), K(log) = E(s_log), K(clip) = E(s_clip),
    K(threshold) = E(s_threshold), K(gelu) = E(s_gelu), K(leaky_relu) = E(s_leaky_relu),
    K(elu) = E(s_elu), K(thresholded_relu) = E(s_thresholded_relu),
    K(clamped_relu) = E(s_clamped_relu), K(linear_activation) = E(s_linear_activation),
    K(scaled_tanh) = E(s_scaled_tanh), K(sigmoid_hard) = E(s_sigmoid_hard),
    K(prelu) = E(s_prelu), K(logical_not) = E(s_logical_not),

    K(cast) = E(s_cast),

    K(softmax) = E(s_softmax), K(layer_norm) = E(s_layer_norm), K(batch_norm) = E(s_batch_norm),
    K(instance_norm) = E(s_instance_norm), K(l2_norm) = E(s_l2_norm),
    K(local_response_norm) = E(s_local_response_norm),

    K(conv) = E(s_conv), K(conv_transpose) = E(s_conv_transpose), K(matmul) = E(s_matmul),
    K(linear) = E(s_linear),

    K(reduce_sum) = E(s_reduce), K(reduce_mean) = E(s_reduce), K(reduce_max) = E(s_reduce),
    K(reduce_min) = E(s_reduce), K(reduce_prod) = E(s_reduce), K(reduce_sum_square) = E(s_reduce),
    K(reduce_l1_norm) = E(s_reduce), K(reduce_l2_norm) = E(s_reduce),
    K(reduce_log_sum) = E(s_reduce), K(reduce_log_sum_exp) = E(s_reduce),
    K(reduce_argmax) = E(s_reduce_arg), K(reduce_argmin) = E(s_reduce_arg),

    K(reshape) = E(s_reshape), K(transpose) = E(s_transpose), K(expand_dims) = E(s_expand_dims),
    K(squeeze) = E(s_squeeze), K(slice_by_size) = E(s_slice_by_size),
    K(slice_by_index) = E(s_slice_by_index), K(concat) = E(s_concat), K(split) = E(s_split),
    K(tile) = E(s_tile), K(identity) = E(s_identity), K(fill) = E(s_fill),
    K(band_part) = E(s_band_part), K(select) = E(s_select), K(gather) = E(s_gather),
    K(gather_along_axis) = E(s_gather_along_axis), K(scatter) = E(s_scatter),
    K(scatter_along_axis) = E(s_scatter), K(slice_update) = E(s_slice_update),

    K(scaled_dot_product_attention) = E(s_sdpa), K(quantize) = E(s_quantize),
    K(dequantize) = E(s_dequantize),

    K(pad) = E(s_pad), K(depth_to_space) = E(s_depth_to_space),
    K(space_to_depth) = E(s_depth_to_space), K(pixel_shuffle) = E(s_pixel_shuffle),
    K(pixel_unshuffle) = E(s_pixel_unshuffle), K(space_to_batch) = E(s_space_to_batch),
    K(batch_to_space) = E(s_batch_to_space), K(crop) = E(s_crop), K(reverse) = E(s_reverse),
    K(flatten2d) = E(s_flatten2d), K(fill_like) = E(s_fill_like), K(range_1d) = E(s_range_1d),
    K(avg_pool) = E(s_avg_pool), K(max_pool) = E(s_pool), K(l2_pool) = E(s_pool),
    K(resize_nearest_neighbor) = E(s_resize_nn), K(resize_bilinear) = E(s_resize_bilinear),
    K(einsum) = E(s_einsum), K(constexpr_lut_to_dense) = E(s_lut_to_dense),
    K(constexpr_sparse_to_dense) = E(s_sparse_to_dense),
};

int mil_op_sig(mil_opkind k, int opset, mil_sig *out)
{
    memset(out, 0, sizeof *out);
    if (k <= MIL_OP_UNKNOWN || k >= MIL_OP_COUNT || !table[k].present) return ERR_INVAL;
    const sig_entry *t = &table[k];
    out->kind = k;
    out->opset = opset;
    out->nin = t->n;
    int v17 = opset >= 17;
    for (int i = 0; i < t->n; i++) {
        mil_sig_input *s = &out->in[i];
        *s = t->in[i];
        if (s->dtypes & DS_DATA) s->dtypes = v17 ? D_DATA17 : D_DATA15;
        if (s->dtypes & DS_INDEX) s->dtypes = v17 ? D_I32 | D_Q | DB(MIL_INT16) | DB(MIL_UINT16) : D_I32;
        if (s->dom == 'P') s->dom = v17 ? 'U' : 'T';
        if (s->dom == 'M') s->dom = v17 ? 'Y' : 'T';
        if (s->flags & CONST_LT17) s->flags = (s->flags & ~CONST_LT17) | (v17 ? 0 : C);
    }
    return 0;
}

int mil_sig_find(const mil_sig *s, const char *name)
{
    for (int i = 0; i < s->nin; i++)
        if (!strcmp(s->in[i].name, name)) return i;
    return -1;
}

int mil_sig_default(const mil_sig *s, int i, const mil_type *x, mil_literal *out,
                    mil_default_data *d)
{
    memset(out, 0, sizeof *out);
    memset(d, 0, sizeof *d);
    if (i < 0 || i >= s->nin) return ERR_INVAL;
    const mil_sig_input *in = &s->in[i];
    out->type.kind = MIL_T_TENSOR;
    out->form = MIL_LIT_DATA;
    out->count = 1;
    out->data = d;
    int rank = x && x->kind == MIL_T_TENSOR ? x->rank : -1;
    int64_t n = 0; /* list length for the computed defaults */
    switch (in->def) {
    case MIL_DEF_NONE: return ERR_STATE;
    case MIL_DEF_INT: out->type.dtype = MIL_INT32, d->i32[0] = (int32_t)in->di; return 0;
    case MIL_DEF_BOOL: out->type.dtype = MIL_BOOL, d->u8[0] = (uint8_t)(in->di != 0); return 0;
    case MIL_DEF_STRING: out->type.dtype = MIL_STRING, d->str = in->ds; return 0;
    case MIL_DEF_FLOAT:
        if (rank >= 0 && x->dtype == MIL_FP16) {
            out->type.dtype = MIL_FP16;
            d->f16 = mil_f16_from_double(in->df);
        } else {
            out->type.dtype = MIL_FP32;
            d->f32 = (float)in->df;
        }
        return 0;
    case MIL_DEF_FP32: out->type.dtype = MIL_FP32, d->f32 = (float)in->df; return 0;
    case MIL_DEF_SPATIAL_ONES:
    case MIL_DEF_SPATIAL_PAD:
        if (rank < 2) return ERR_SHAPE;
        n = in->def == MIL_DEF_SPATIAL_PAD ? 2 * (rank - 2) : rank - 2;
        for (int k = 0; k < n; k++) d->i32[k] = in->def == MIL_DEF_SPATIAL_ONES;
        out->type.dtype = MIL_INT32;
        break;
    case MIL_DEF_RANK_ONES:
    case MIL_DEF_ALL_AXES:
        if (rank < 0) return ERR_SHAPE;
        n = rank;
        for (int k = 0; k < n; k++) d->i32[k] = in->def == MIL_DEF_ALL_AXES ? k : 1;
        out->type.dtype = MIL_INT32;
        break;
    case MIL_DEF_RANK_FALSE:
        if (rank < 0) return ERR_SHAPE;
        n = rank;
        out->type.dtype = MIL_BOOL;
        break;
    case MIL_DEF_UNIT_AXES:
        if (rank < 0) return ERR_SHAPE;
        for (int k = 0; k < rank; k++)
            if (x->shape[k] == 1) d->i32[n++] = k;
        out->type.dtype = MIL_INT32;
        break;
    }
    out->type.rank = 1;
    out->type.shape[0] = n;
    out->count = n;
    return 0;
}
