/* ops.h - the MIL op vocabulary (shared/docs/mil-reference.md section 8), one X-macro list.
 *
 * X(name, since) : name is the op type as written in MIL text, since is the first opset that has
 * it (15 = ios15 ... 18 = ios18). sig.h lists each op's inputs and their defaults; the checker
 * keeps each op's shape rule; the CPU backend keeps its semantics; all switch on mil_opkind. */
#ifndef ANE_MIL_OPS_H
#define ANE_MIL_OPS_H

#define MIL_OPS(X)                                                                                 \
    /* 8.1 constants */                                                                            \
    X(const, 15) X(constexpr_affine_dequantize, 16) X(constexpr_blockwise_shift_scale, 18)         \
    X(constexpr_cast, 16)                                                                          \
    /* 8.2 elementwise binary */                                                                   \
    X(add, 15) X(sub, 15) X(mul, 15) X(real_div, 15) X(pow, 15) X(maximum, 15) X(minimum, 15)      \
    X(floor_div, 15) X(mod, 15) X(equal, 15) X(not_equal, 15) X(greater, 15) X(greater_equal, 15)  \
    X(less, 15) X(less_equal, 15) X(logical_and, 15) X(logical_or, 15) X(logical_xor, 15)          \
    /* 8.3 elementwise unary and activations */                                                    \
    X(relu, 15) X(relu6, 15) X(sigmoid, 15) X(silu, 15) X(tanh, 15) X(exp, 15) X(exp2, 15)         \
    X(sqrt, 15) X(sin, 15) X(cos, 15) X(tan, 15) X(asin, 15) X(acos, 15) X(atan, 15) X(atanh, 15)  \
    X(sinh, 15) X(cosh, 15) X(erf, 15) X(floor, 15) X(ceil, 15) X(round, 15) X(abs, 15)            \
    X(sign, 15) X(square, 15) X(rsqrt, 15) X(inverse, 15) X(log, 15) X(clip, 15) X(threshold, 15)  \
    X(gelu, 15) X(leaky_relu, 15) X(elu, 15) X(thresholded_relu, 15) X(clamped_relu, 15)           \
    X(linear_activation, 15) X(scaled_tanh, 15) X(sigmoid_hard, 15) X(softplus, 15)                \
    X(softsign, 15) X(prelu, 15) X(logical_not, 15)                                                \
    /* 8.4 cast */                                                                                 \
    X(cast, 15)                                                                                    \
    /* 8.5 softmax and normalisation */                                                            \
    X(softmax, 15) X(layer_norm, 15) X(batch_norm, 15) X(instance_norm, 15) X(l2_norm, 15)         \
    X(local_response_norm, 15)                                                                     \
    /* 8.6 linear algebra */                                                                       \
    X(conv, 15) X(conv_transpose, 15) X(matmul, 15) X(linear, 15)                                  \
    /* 8.7 reductions */                                                                           \
    X(reduce_sum, 15) X(reduce_mean, 15) X(reduce_max, 15) X(reduce_min, 15) X(reduce_prod, 15)    \
    X(reduce_sum_square, 15) X(reduce_l1_norm, 15) X(reduce_l2_norm, 15) X(reduce_log_sum, 15)     \
    X(reduce_log_sum_exp, 15) X(reduce_argmax, 15) X(reduce_argmin, 15)                            \
    /* 8.8 shape and data movement */                                                              \
    X(reshape, 15) X(transpose, 15) X(expand_dims, 15) X(squeeze, 15) X(slice_by_size, 15)         \
    X(slice_by_index, 15) X(concat, 15) X(split, 15) X(tile, 15) X(identity, 15) X(fill, 15)       \
    X(band_part, 15) X(select, 15) X(gather, 15) X(gather_along_axis, 15) X(scatter, 15)           \
    X(scatter_along_axis, 15) X(slice_update, 18)                                                  \
    /* 8.9 attention, 8.10 quantisation */                                                         \
    X(scaled_dot_product_attention, 18) X(quantize, 17) X(dequantize, 17)                          \
    /* from coremltools' op definitions (docs/mil.md, coverage table) */                           \
    X(pad, 15) X(depth_to_space, 15) X(space_to_depth, 15) X(pixel_shuffle, 15)                    \
    X(pixel_unshuffle, 16) X(space_to_batch, 15) X(batch_to_space, 15) X(crop, 15)                 \
    X(reverse, 15) X(flatten2d, 15) X(fill_like, 16) X(range_1d, 15)                               \
    X(avg_pool, 15) X(max_pool, 15) X(l2_pool, 15) X(resize_nearest_neighbor, 15)                  \
    X(resize_bilinear, 15) X(einsum, 15) X(constexpr_lut_to_dense, 16)                             \
    X(constexpr_sparse_to_dense, 16)

typedef enum {
    MIL_OP_UNKNOWN = 0,
#define MIL_OP_ENUM_(n, s) MIL_OP_##n,
    MIL_OPS(MIL_OP_ENUM_)
#undef MIL_OP_ENUM_
    MIL_OP_COUNT
} mil_opkind;

mil_opkind mil_op_lookup(const char *name); /* MIL_OP_UNKNOWN if not in the list */
const char *mil_op_name(mil_opkind k);
int mil_op_since(mil_opkind k);             /* opset number, 0 for UNKNOWN */

#endif
