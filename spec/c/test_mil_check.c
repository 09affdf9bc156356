/* test_mil_check.c - the checker on IR built by hand (no parser): every op family's shape rule,
 * good and bad, with the exact message; the structural checks of mil_check; const readers.
 * Programs built here have no source text, so messages carry no position (positions are
 * covered by spec/mil_check_spec.lua through the parser). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mil/check.h"
#include "mil/constval.h"
#include "mil/mil.h"
#include "mil/sig.h"

#include "expect.h"

/* ---- a tiny IR builder over fixed pools (reset per case) ---- */
#define NV 256
#define NOPS 64
#define NB 512
static mil_program P;
static mil_function F;
static mil_value V[NV];
static mil_op OPS[NOPS];
static mil_binding B[NB];
static int VI[NB * 2], nvi, nb;
static mil_literal LIT[NV];
static unsigned char DATA[NV][256];
static int params[16], outs[16];
static ane_error E;

static void reset(int opset)
{
    memset(&P, 0, sizeof P);
    memset(&F, 0, sizeof F);
    memset(V, 0, sizeof V);
    memset(OPS, 0, sizeof OPS);
    nvi = nb = 0;
    P.nfuncs = 1;
    P.funcs = &F;
    P.source_name = "t.mil";
    F.name = "main";
    static char ops_name[16];
    snprintf(ops_name, sizeof ops_name, "ios%d", opset);
    F.opset = ops_name;
    F.opset_version = opset;
    F.values = V;
    F.ops = OPS;
    F.params = params;
    F.outs = outs;
    err_clear(&E);
}

static int new_value(const char *name)
{
    int v = F.nvalues++;
    V[v].name = name;
    V[v].def_op = -1;
    return v;
}

static void set_type(mil_type *t, mil_dtype dt, int rank, const int64_t *shape)
{
    memset(t, 0, sizeof *t);
    t->kind = MIL_T_TENSOR;
    t->dtype = dt;
    t->rank = rank;
    for (int i = 0; i < rank; i++) t->shape[i] = shape[i];
}

/* param name: dtype, shape given as rank then dims */
static int param(const char *name, mil_dtype dt, int rank, ...)
{
    int64_t s[8];
    va_list ap;
    va_start(ap, rank);
    for (int i = 0; i < rank; i++) s[i] = va_arg(ap, int);
    va_end(ap);
    int v = new_value(name);
    set_type(&V[v].type, dt, rank, s);
    V[v].is_param = 1;
    params[F.nparams++] = v;
    return v;
}

/* inline literal: rank 0 when n < 0, else a 1-D list of n values (ints or doubles by dtype) */
static int lit(mil_dtype dt, int n, ...)
{
    int v = new_value(NULL);
    mil_literal *l = &LIT[v];
    memset(l, 0, sizeof *l);
    int64_t shape[1] = {n < 0 ? 1 : n};
    set_type(&l->type, dt, n < 0 ? 0 : 1, shape);
    l->count = n < 0 ? 1 : n;
    l->data = DATA[v];
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < l->count; i++) {
        switch (dt) {
        case MIL_INT32: ((int32_t *)l->data)[i] = va_arg(ap, int); break;
        case MIL_BOOL: ((uint8_t *)l->data)[i] = (uint8_t)va_arg(ap, int); break;
        case MIL_FP32: ((float *)l->data)[i] = (float)va_arg(ap, double); break;
        case MIL_FP16: { /* exact for the small values the tests use (|v| a power of two or 0) */
            double d = va_arg(ap, double);
            uint16_t h = 0;
            if (d != 0) {
                int e;
                double m = frexp(d < 0 ? -d : d, &e); /* d = m * 2^e, m in [0.5, 1) */
                h = (uint16_t)(((e - 1 + 15) << 10) | (uint16_t)((m * 2 - 1) * 1024));
                if (d < 0) h |= 0x8000;
            }
            ((uint16_t *)l->data)[i] = h;
            break;
        }
        case MIL_STRING: ((const char **)l->data)[i] = va_arg(ap, const char *); break;
        default: break;
        }
    }
    va_end(ap);
    V[v].type = l->type;
    V[v].lit = l;
    V[v].is_inline = 1;
    return v;
}
#define I32(x) lit(MIL_INT32, -1, (x))
#define BOOL(x) lit(MIL_BOOL, -1, (x))
#define STR(x) lit(MIL_STRING, -1, (x))
#define F16(x) lit(MIL_FP16, -1, (double)(x))
#define F32(x) lit(MIL_FP32, -1, (double)(x))
#define INTS(n, ...) lit(MIL_INT32, (n), __VA_ARGS__)
#define BOOLS(n, ...) lit(MIL_BOOL, (n), __VA_ARGS__)

/* a const op producing a copy of literal value lv under name */
static int konst(const char *name, int lv)
{
    int o = F.nops++;
    mil_op *op = &OPS[o];
    memset(op, 0, sizeof *op);
    op->type = "const";
    op->attr = &B[nb];
    mil_binding *b = &B[nb++];
    memset(b, 0, sizeof *b);
    b->name = "val";
    b->n = 1;
    b->values = &VI[nvi];
    VI[nvi++] = lv;
    op->nattr = 1;
    int v = new_value(name);
    V[v].def_op = o;
    V[v].lit = V[lv].lit;
    V[v].type = V[lv].type;
    op->res = &VI[nvi];
    VI[nvi++] = v;
    op->nres = 1;
    op->label = name;
    return v;
}

#define TUPLE_MARK (-1000)
/* op(type, "in", value, ..., NULL); a value TUPLE_MARK starts a tuple: n, v1..vn.
 * Infers the result types; returns the first result value or -1 (E holds the error). */
static int op(const char *type, ...)
{
    int o = F.nops;
    mil_op *mo = &OPS[o];
    memset(mo, 0, sizeof *mo);
    mo->type = type;
    mo->in = &B[nb];
    va_list ap;
    va_start(ap, type);
    const char *name;
    while ((name = va_arg(ap, const char *))) {
        mil_binding *b = &B[nb++];
        memset(b, 0, sizeof *b);
        b->name = name;
        int v = va_arg(ap, int);
        b->values = &VI[nvi];
        if (v == TUPLE_MARK) {
            b->is_tuple = 1;
            b->n = va_arg(ap, int);
            for (int i = 0; i < b->n; i++) VI[nvi++] = va_arg(ap, int);
        } else {
            b->n = 1;
            VI[nvi++] = v;
        }
        mo->nin++;
    }
    va_end(ap);
    mil_type res[MIL_MAX_RESULTS];
    int nres = 0;
    err_clear(&E);
    if (mil_infer_op(&P, &F, mo, res, &nres, &E)) return -1;
    F.nops++;
    mo->res = &VI[nvi];
    int first = F.nvalues;
    for (int r = 0; r < nres; r++) {
        int v = new_value("r");
        V[v].def_op = o;
        V[v].def_result = r;
        V[v].type = res[r];
        VI[nvi++] = v;
    }
    mo->nres = nres;
    return first;
}

static const char *tstr(int v)
{
    static char buf[8][256];
    static int k;
    char *b = buf[k++ & 7];
    const mil_type *t = &V[v].type;
    size_t n = 0;
    n += (size_t)snprintf(b + n, 256 - n, "%s[", mil_dtype_name(t->dtype));
    for (int i = 0; i < t->rank; i++)
        n += (size_t)snprintf(b + n, 256 - n, "%s%lld", i ? "," : "", (long long)t->shape[i]);
    snprintf(b + n, 256 - n, "]");
    return b;
}

#define OK(v, want)                                                                                \
    do {                                                                                           \
        int v_ = (v);                                                                              \
        EXPECT(v_ >= 0, "unexpected error: %s", E.msg);                                            \
        if (v_ >= 0) EXPECT(!strcmp(tstr(v_), want), "got %s, want %s", tstr(v_), want);           \
    } while (0)
#define BAD(v, want)                                                                               \
    do {                                                                                           \
        int v_ = (v);                                                                              \
        EXPECT(v_ < 0, "expected error '%s', got %s", want, v_ >= 0 ? tstr(v_) : "");             \
        if (v_ < 0) EXPECT(!strcmp(E.msg, want), "message\n  got:  %s\n  want: %s", E.msg, want); \
    } while (0)

/* ---- cases ---- */

static void test_elementwise(void)
{
    reset(18);
    int x = param("x", MIL_FP16, 4, 1, 64, 1, 32);
    int s = param("s", MIL_FP16, 4, 1, 1, 1, 32);
    int f = param("f", MIL_FP32, 4, 1, 64, 1, 32);
    OK(op("add", "x", x, "y", s, NULL), "fp16[1,64,1,32]");
    OK(op("mul", "x", x, "y", F16(0.5), NULL), "fp16[1,64,1,32]");
    OK(op("less", "x", x, "y", s, NULL), "bool[1,64,1,32]");
    BAD(op("mul", "x", x, "y", F32(0.5), NULL),
        "mul: input 'y' is fp32 but 'x' is fp16 (they must have the same dtype)");
    BAD(op("add", "x", x, "y", f, NULL),
        "add: input 'y' is fp32 but 'x' is fp16 (they must have the same dtype)");
    int w = param("w", MIL_FP16, 2, 3, 16);
    BAD(op("sub", "x", x, "y", w, NULL),
        "sub: shapes [1, 64, 1, 32] ('x') and [3, 16] ('y') do not broadcast");
    BAD(op("add", "x", x, NULL), "add: missing required input 'y'");
    BAD(op("add", "x", x, "y", x, "z", x, NULL), "add: unknown input 'z'");
    BAD(op("add", "x", x, "y", TUPLE_MARK, 1, x, NULL), "add: input 'y' does not take a tuple");
    BAD(op("logical_and", "x", x, "y", x, NULL),
        "logical_and: input 'x' has dtype fp16, expected bool");
    int b = op("less", "x", x, "y", s, NULL);
    OK(op("logical_not", "x", b, NULL), "bool[1,64,1,32]");
    OK(op("relu", "x", x, NULL), "fp16[1,64,1,32]");
    BAD(op("relu", "x", I32(3), NULL), "relu: input 'x' has dtype int32, expected fp16 or fp32");
    OK(op("abs", "x", I32(3), NULL), "int32[]");
    OK(op("gelu", "x", x, "mode", STR("TANH_APPROXIMATION"), NULL), "fp16[1,64,1,32]");
    BAD(op("gelu", "x", x, "mode", STR("FAST"), NULL),
        "gelu: mode \"FAST\" is not EXACT, TANH_APPROXIMATION or SIGMOID_APPROXIMATION");
    OK(op("rsqrt", "x", x, "epsilon", F16(0.0625), NULL), "fp16[1,64,1,32]");
    /* ios18: epsilon is in domain U, so fp32 epsilon with fp16 x is allowed */
    OK(op("rsqrt", "x", x, "epsilon", F32(0.0625), NULL), "fp16[1,64,1,32]");
    BAD(op("rsqrt", "x", x, "epsilon", s, NULL), "rsqrt: input 'epsilon' must be a constant");
    BAD(op("clip", "x", x, "alpha", F16(1), "beta", F16(0.5), NULL),
        "clip: alpha (1) must be less than beta (0.5)");
    OK(op("clip", "x", x, "alpha", F16(0), "beta", F16(1), NULL), "fp16[1,64,1,32]");
    BAD(op("clip", "x", x, "alpha", F32(0), "beta", F16(1), NULL),
        "clip: input 'alpha' is fp32 but 'x' is fp16 (they must have the same dtype)");
    BAD(op("leaky_relu", "x", x, "alpha", INTS(1, 1), NULL),
        "leaky_relu: input 'alpha' has dtype int32, expected fp16 or fp32");
    OK(op("clamped_relu", "x", x, "alpha", F16(0.5), "beta", F16(4), NULL), "fp16[1,64,1,32]");
    BAD(op("clamped_relu", "x", x, "alpha", F16(0.5), NULL),
        "clamped_relu: missing required input 'beta'");

    reset(16); /* ios16: epsilon shares x's dtype */
    x = param("x", MIL_FP16, 2, 4, 4);
    BAD(op("rsqrt", "x", x, "epsilon", F32(0.0625), NULL),
        "rsqrt: input 'epsilon' is fp32 but 'x' is fp16 (they must have the same dtype)");
}

static void test_cast_softmax_reduce(void)
{
    reset(18);
    int x = param("x", MIL_FP32, 4, 1, 64, 1, 32);
    OK(op("cast", "x", x, "dtype", STR("fp16"), NULL), "fp16[1,64,1,32]");
    OK(op("cast", "x", x, "dtype", STR("int8"), NULL), "int8[1,64,1,32]");
    BAD(op("cast", "x", x, "dtype", STR("fp8"), NULL), "cast: cannot cast to \"fp8\"");
    BAD(op("cast", "x", x, NULL), "cast: missing required input 'dtype'");
    BAD(op("cast", "x", x, "dtype", I32(1), NULL),
        "cast: input 'dtype' has dtype int32, expected string");
    OK(op("softmax", "x", x, "axis", I32(-1), NULL), "fp32[1,64,1,32]");
    OK(op("softmax", "x", x, NULL), "fp32[1,64,1,32]");
    BAD(op("softmax", "x", x, "axis", I32(4), NULL), "softmax: axis 4 is out of range for rank 4");
    BAD(op("softmax", "x", x, "axis", INTS(1, 1), NULL),
        "softmax: input 'axis' must be a scalar, got tensor<int32, [1]>");
    OK(op("reduce_sum", "x", x, "axes", INTS(1, 1), "keep_dims", BOOL(1), NULL), "fp32[1,1,1,32]");
    OK(op("reduce_mean", "x", x, "axes", INTS(2, -1, 1), NULL), "fp32[1,1]");
    OK(op("reduce_max", "x", x, NULL), "fp32[]");
    OK(op("reduce_max", "x", x, "keep_dims", BOOL(1), NULL), "fp32[1,1,1,1]");
    BAD(op("reduce_sum", "x", x, "axes", INTS(2, 1, -3), NULL), "reduce_sum: axis 1 is listed twice");
    BAD(op("reduce_sum", "x", x, "axes", INTS(1, 5), NULL),
        "reduce_sum: axis 5 is out of range for rank 4");
    OK(op("reduce_argmax", "x", x, "axis", I32(1), "keep_dims", BOOL(0), NULL), "int32[1,1,32]");

    reset(16);
    x = param("x", MIL_FP32, 2, 4, 4);
    BAD(op("cast", "x", x, "dtype", STR("int8"), NULL),
        "cast: cannot cast to \"int8\" (ios15/16: fp16, fp32, int32 or bool)");
    BAD(op("reduce_argmax", "x", x, "output_dtype", STR("int32"), NULL),
        "reduce_argmax: input 'output_dtype' needs ios17 or later (function is ios16)");
    BAD(op("scaled_dot_product_attention", "query", x, "key", x, "value", x, NULL),
        "scaled_dot_product_attention: op needs ios18 or later (function is ios16)");
}

static void test_conv_matmul_linear(void)
{
    reset(18);
    int x = param("x", MIL_FP16, 4, 1, 64, 1, 32);
    int w = konst("w", lit(MIL_FP16, 0)); /* shape fixed below */
    int64_t ws[4] = {128, 64, 1, 1};
    set_type(&V[w].type, MIL_FP16, 4, ws);
    LIT[w].count = 0;
    V[w].lit = NULL; /* a BLOBFILE const not yet resolved: const, value unknown */
    OK(op("conv", "x", x, "weight", w, NULL), "fp16[1,128,1,32]");
    OK(op("conv", "x", x, "weight", w, "strides", INTS(2, 1, 2), "pad_type", STR("valid"),
          "pad", INTS(4, 0, 0, 0, 0), "dilations", INTS(2, 1, 1), "groups", I32(1), NULL),
       "fp16[1,128,1,16]");
    int w3 = param("w3", MIL_FP16, 3, 128, 64, 1);
    BAD(op("conv", "x", x, "weight", w3, NULL), "conv: weight has 3 dims, expected 4");
    BAD(op("conv", "x", x, "weight", w, "groups", I32(3), NULL),
        "conv: x has 64 channels, not divisible by groups = 3");
    BAD(op("conv", "x", x, "weight", w, "groups", I32(2), NULL),
        "conv: weight has 64 input channels per group, x has 64 channels / 2 groups = 32");
    BAD(op("conv", "x", x, "weight", w, "pad_type", STR("full"), NULL),
        "conv: pad_type \"full\" is not valid, custom, same or same_lower");
    BAD(op("conv", "x", x, "weight", w, "strides", INTS(1, 1), NULL),
        "conv: strides has 1 values, expected 2 (one per spatial axis)");
    int k3 = param("k3", MIL_FP16, 4, 8, 64, 3, 3);
    OK(op("conv", "x", x, "weight", k3, "pad_type", STR("same"), NULL), "fp16[1,8,1,32]");
    BAD(op("conv", "x", x, "weight", k3, NULL),
        "conv: output size along spatial axis 0 would be 0 (input 1, kernel 3, dilation 1)");
    OK(op("conv", "x", x, "weight", k3, "pad_type", STR("custom"), "pad", INTS(4, 1, 1, 1, 1), NULL),
       "fp16[1,8,1,32]");
    BAD(op("conv", "x", x, "weight", k3, "pad_type", STR("custom"), "pad", INTS(4, 1, 1, 1, 1),
           "dilations", INTS(2, 1, 2), NULL),
        "conv: dilations must be 1 when weight is not a constant");
    int grp = param("g", MIL_FP16, 4, 64, 16, 1, 1);
    OK(op("conv", "x", x, "weight", grp, "groups", I32(4), NULL), "fp16[1,64,1,32]");

    int q = param("q", MIL_FP16, 4, 1, 2, 16, 32);
    int k = param("k", MIL_FP16, 4, 1, 2, 16, 32);
    OK(op("matmul", "x", q, "y", k, "transpose_x", BOOL(0), "transpose_y", BOOL(1), NULL),
       "fp16[1,2,16,16]");
    BAD(op("matmul", "x", q, "y", k, NULL),
        "matmul: inner dimensions differ: x [1, 2, 16, 32] gives K = 32, y [1, 2, 16, 32] gives "
        "K = 16");
    OK(op("matmul", "x", q, "y", k, "transpose_x", BOOL(1), NULL), "fp16[1,2,32,32]");
    int v1 = param("v1", MIL_FP16, 1, 32);
    OK(op("matmul", "x", q, "y", v1, NULL), "fp16[1,2,16]");
    BAD(op("matmul", "x", q, "y", v1, "transpose_y", BOOL(1), NULL),
        "matmul: transpose_y needs y of rank 2 or more");
    int b3 = param("b3", MIL_FP16, 3, 3, 32, 8);
    BAD(op("matmul", "x", q, "y", b3, NULL),
        "matmul: batch dimensions of x [1, 2, 16, 32] and y [3, 32, 8] do not broadcast");
    int b1 = param("b1", MIL_FP16, 3, 1, 32, 8);
    OK(op("matmul", "x", q, "y", b1, NULL), "fp16[1,2,16,8]");
    int qf = param("qf", MIL_FP32, 2, 16, 32);
    BAD(op("matmul", "x", q, "y", qf, NULL),
        "matmul: x is fp16 and y is fp32: operands of different dtypes need exactly one constant "
        "operand");

    int lw = konst("lw", lit(MIL_FP16, 0));
    int64_t lws[2] = {10, 32};
    set_type(&V[lw].type, MIL_FP16, 2, lws);
    V[lw].lit = NULL;
    int l3 = param("l3", MIL_FP16, 3, 2, 16, 32);
    OK(op("linear", "x", l3, "weight", lw, NULL), "fp16[2,16,10]");
    BAD(op("linear", "x", q, "weight", lw, NULL), "linear: x must have rank 1 to 3, got 4");
    BAD(op("linear", "x", l3, "weight", q, NULL), "linear: input 'weight' must be a constant");
}

static void test_shape_ops(void)
{
    reset(18);
    int x = param("x", MIL_FP16, 4, 1, 64, 1, 32);
    OK(op("reshape", "x", x, "shape", INTS(4, 1, 2, 32, 32), NULL), "fp16[1,2,32,32]");
    OK(op("reshape", "x", x, "shape", INTS(3, 1, -1, 32), NULL), "fp16[1,64,32]");
    /* ios17+: zeros pair with x's dims from the right */
    OK(op("reshape", "x", x, "shape", INTS(3, 64, 0, 0), NULL), "fp16[64,1,32]");
    BAD(op("reshape", "x", x, "shape", INTS(3, 3, -1, 32), NULL),
        "reshape: cannot reshape [1, 64, 1, 32] (2048 elements) into [3, -1, 32]");
    BAD(op("reshape", "x", x, "shape", INTS(2, -1, -1), NULL), "reshape: shape has more than one -1");
    BAD(op("reshape", "x", x, "shape", INTS(2, 2, 2), NULL),
        "reshape: cannot reshape [1, 64, 1, 32] (2048 elements) into [2, 2] (4 elements)");
    int dyn = param("dyn", MIL_INT32, 1, 2);
    BAD(op("reshape", "x", x, "shape", dyn, NULL),
        "reshape: input 'shape' must be a constant with a known value");
    OK(op("transpose", "x", x, "perm", INTS(4, 0, 1, 3, 2), NULL), "fp16[1,64,32,1]");
    OK(op("transpose", "x", x, "perm", INTS(4, 0, -3, 3, 2), NULL), "fp16[1,64,32,1]");
    BAD(op("transpose", "x", x, "perm", INTS(4, 0, 1, 1, 2), NULL),
        "transpose: perm is not a permutation (1 repeats)");
    BAD(op("transpose", "x", x, "perm", INTS(3, 0, 1, 2), NULL),
        "transpose: perm has 3 values, x has rank 4");
    OK(op("slice_by_size", "x", x, "begin", INTS(4, 0, 32, 0, 0), "size", INTS(4, 1, 32, 1, -1),
          NULL),
       "fp16[1,32,1,32]");
    BAD(op("slice_by_size", "x", x, "begin", INTS(4, 0, 40, 0, 0), "size", INTS(4, 1, 32, 1, 32),
           NULL),
        "slice_by_size: slice [40, 72) on axis 1 exceeds dim 64");
    BAD(op("slice_by_size", "x", x, "begin", INTS(4, 0, 64, 0, 0), "size", INTS(4, 1, 1, 1, 1),
           NULL),
        "slice_by_size: begin[1] = 64 is out of range for dim 64");
    OK(op("slice_by_index", "x", x, "begin", INTS(4, 0, 0, 0, 1), "end", INTS(4, 1, 64, 1, 32),
          "stride", INTS(4, 1, 2, 1, 2), NULL),
       "fp16[1,32,1,16]");
    OK(op("slice_by_index", "x", x, "begin", INTS(4, 0, 5, 0, 0), "end", INTS(4, 1, 0, 1, 0),
          "end_mask", BOOLS(4, 0, 1, 0, 1), "squeeze_mask", BOOLS(4, 1, 0, 1, 0), NULL),
       "fp16[59,32]");
    OK(op("slice_by_index", "x", x, "begin", INTS(4, 0, -1, 0, 0), "end", INTS(4, 1, 0, 1, 32),
          "stride", INTS(4, 1, -1, 1, 1), "begin_mask", BOOLS(4, 0, 0, 0, 0), NULL),
       "fp16[1,63,1,32]");
    BAD(op("slice_by_index", "x", x, "begin", INTS(4, 0, 10, 0, 0), "end", INTS(4, 1, 10, 1, 32),
           NULL),
        "slice_by_index: the slice along axis 1 is empty");

    int y = param("y", MIL_FP16, 4, 1, 32, 1, 32);
    OK(op("concat", "values", TUPLE_MARK, 2, x, y, "axis", I32(1), "interleave", BOOL(0), NULL),
       "fp16[1,96,1,32]");
    BAD(op("concat", "values", TUPLE_MARK, 2, x, y, "axis", I32(1), "interleave", BOOL(1), NULL),
        "concat: values[1] has shape [1, 32, 1, 32], values[0] has [1, 64, 1, 32] (only axis 1 "
        "may differ, and not with interleave)");
    OK(op("concat", "values", TUPLE_MARK, 2, x, x, "axis", I32(1), "interleave", BOOL(1), NULL),
       "fp16[1,128,1,32]");
    BAD(op("concat", "values", TUPLE_MARK, 2, x, y, "axis", I32(3), NULL),
        "concat: values[1] has shape [1, 32, 1, 32], values[0] has [1, 64, 1, 32] (only axis 3 "
        "may differ)");
    BAD(op("concat", "values", x, "axis", I32(1), NULL),
        "concat: input 'values' must be a tuple (a, b, ...)");
    BAD(op("concat", "values", TUPLE_MARK, 2, x, y, "axis", INTS(1, 1), NULL),
        "concat: input 'axis' must be a scalar, got tensor<int32, [1]>");
    int f = param("f", MIL_FP32, 4, 1, 32, 1, 32);
    BAD(op("concat", "values", TUPLE_MARK, 2, x, f, "axis", I32(1), NULL),
        "concat: the values of 'values' must share one dtype, got fp16 and fp32");

    int s0 = op("split", "x", x, "axis", I32(1), "num_splits", I32(4), NULL);
    OK(s0, "fp16[1,16,1,32]");
    EXPECT(OPS[F.nops - 1].nres == 4, "split: %d results", OPS[F.nops - 1].nres);
    int s1 = op("split", "x", x, "axis", I32(1), "split_sizes", INTS(2, 48, 16), NULL);
    OK(s1 + 1, "fp16[1,16,1,32]");
    BAD(op("split", "x", x, "axis", I32(1), "split_sizes", INTS(2, 48, 8), NULL),
        "split: split_sizes sum to 56, axis 1 has 64");
    BAD(op("split", "x", x, "axis", I32(1), "num_splits", I32(3), NULL),
        "split: axis 1 has 64, not divisible into 3 splits");
    OK(op("expand_dims", "x", y, "axes", INTS(2, 0, -1), NULL), "fp16[1,1,32,1,32,1]");
    OK(op("squeeze", "x", x, NULL), "fp16[64,32]");
    OK(op("squeeze", "x", x, "axes", INTS(2, 0, 1), NULL), "fp16[64,1,32]");
    OK(op("tile", "x", y, "reps", INTS(4, 1, 2, 1, 1), NULL), "fp16[1,64,1,32]");
    BAD(op("tile", "x", y, "reps", INTS(4, 1, 0, 1, 1), NULL), "tile: reps[1] = 0 (must be >= 1)");
    OK(op("fill", "shape", INTS(2, 4, 4), NULL), "fp32[4,4]");
    OK(op("fill", "shape", INTS(2, 4, 4), "value", F16(1), NULL), "fp16[4,4]");
    OK(op("identity", "x", x, NULL), "fp16[1,64,1,32]");
    int mask = param("m", MIL_BOOL, 4, 1, 1, 1, 32);
    OK(op("select", "cond", mask, "a", x, "b", F16(0), NULL), "fp16[1,64,1,32]");
    int ids = param("ids", MIL_INT32, 2, 3, 5);
    OK(op("gather", "x", x, "indices", ids, "axis", I32(1), NULL), "fp16[1,3,5,1,32]");
    OK(op("band_part", "x", x, "lower", I32(-1), "upper", I32(0), NULL), "fp16[1,64,1,32]");
}

static void test_norm_attention_quant(void)
{
    reset(18);
    int x = param("x", MIL_FP16, 4, 1, 64, 1, 16);
    int g = param("g", MIL_FP16, 1, 64); /* not const: rejected */
    BAD(op("layer_norm", "x", x, "axes", INTS(1, 1), "gamma", g, NULL),
        "layer_norm: input 'gamma' must be a constant");
    int gc = konst("gc", lit(MIL_FP16, 0));
    int64_t gs[1] = {64};
    set_type(&V[gc].type, MIL_FP16, 1, gs);
    V[gc].lit = NULL;
    OK(op("layer_norm", "x", x, "axes", INTS(1, 1), "gamma", gc, "beta", gc, "epsilon", F16(0.0625),
          NULL),
       "fp16[1,64,1,16]");
    BAD(op("layer_norm", "x", x, "axes", INTS(1, 3), "gamma", gc, NULL),
        "layer_norm: gamma has shape [64], expected [16] (x's shape on axes)");
    BAD(op("layer_norm", "x", x, "axes", INTS(1, 1), "gamma", gc, "epsilon", F32(0.0625), NULL),
        "layer_norm: input 'epsilon' is fp32 but 'gamma' is fp16 (they must have the same dtype)");

    int q = param("q", MIL_FP16, 4, 1, 2, 16, 32);
    int k = param("k", MIL_FP16, 4, 1, 2, 8, 32);
    int v = param("v", MIL_FP16, 4, 1, 2, 8, 24);
    int m = param("m", MIL_FP16, 2, 16, 8);
    OK(op("scaled_dot_product_attention", "query", q, "key", k, "value", v, "attn_mask", m, NULL),
       "fp16[1,2,16,24]");
    int mb = param("mb", MIL_FP16, 2, 16, 16);
    BAD(op("scaled_dot_product_attention", "query", q, "key", k, "value", v, "attn_mask", mb, NULL),
        "scaled_dot_product_attention: attn_mask [16, 16] does not broadcast to [1, 2, 16, 8]");
    BAD(op("scaled_dot_product_attention", "query", q, "key", v, "value", v, NULL),
        "scaled_dot_product_attention: key has embedding size 24, query has 32");

    OK(op("quantize", "input", x, "scale", F16(0.125), "output_dtype", STR("int8"), NULL),
       "int8[1,64,1,16]");
    BAD(op("quantize", "input", x, "scale", F16(0.125), "axis", I32(1), "output_dtype",
           STR("int8"), NULL),
        "quantize: axis must be absent for a scalar scale");
    BAD(op("quantize", "input", x, "scale", F16(0), "output_dtype", STR("int8"), NULL),
        "quantize: scale must not be 0");
    BAD(op("quantize", "input", x, "scale", F16(0.125), "output_dtype", STR("int4"), NULL),
        "quantize: output_dtype \"int4\" is not int8 or uint8");
    int qv = op("quantize", "input", x, "scale", F16(0.125), "output_dtype", STR("int8"), NULL);
    OK(op("dequantize", "input", qv, "scale", F32(0.125), NULL), "fp32[1,64,1,16]");

    reset(16);
    x = param("x", MIL_FP16, 2, 4, 4);
    BAD(op("quantize", "input", x, "scale", F16(0.125), "output_dtype", STR("int8"), NULL),
        "quantize: op needs ios17 or later (function is ios16)");
}

static void test_unknown_and_const(void)
{
    reset(18);
    int x = param("x", MIL_FP16, 1, 4);
    BAD(op("frobnicate", "x", x, NULL), "unknown op 'frobnicate'");
    BAD(op("while_loop", NULL),
        "while_loop: control-flow and list ops (nested blocks) are not supported");
    int c = konst("c", INTS(3, 1, 2, 3));
    OK(c, "int32[3]");
    int64_t vals[4];
    int n = 0;
    EXPECT(mil_const_ints(&F, c, vals, 4, &n) == 0 && n == 3 && vals[2] == 3, "const ints");
    EXPECT(mil_const_ints(&F, c, vals, 2, &n) == ERR_SHAPE, "const ints max");
    EXPECT(mil_const_int(&F, c, vals) == ERR_SHAPE, "scalar from a list");
    EXPECT(mil_const_ints(&F, x, vals, 4, &n) == ERR_STATE, "param is not const");
    const char *s;
    EXPECT(mil_const_string(&F, STR("fp16"), &s) == 0 && !strcmp(s, "fp16"), "const string");
    double d;
    EXPECT(mil_const_float(&F, F16(-0.25), &d) == 0 && d == -0.25, "fp16 scalar %g", d);
    int bv;
    EXPECT(mil_const_bool(&F, BOOL(1), &bv) == 0 && bv == 1, "bool");
    EXPECT(mil_value_is_const(&F, c) && !mil_value_is_const(&F, x), "is_const");
}

static int warned;
static char warn_msg[1024];
static void on_warn(void *ud, const char *msg)
{
    (void)ud;
    warned++;
    snprintf(warn_msg, sizeof warn_msg, "%s", msg);
}

static void test_program(void)
{
    /* a well-formed function: y = relu(x) -> (y) */
    reset(18);
    int x = param("x", MIL_FP16, 2, 4, 8);
    int y = op("relu", "x", x, NULL);
    V[y].name = "y";
    outs[F.nouts++] = y;
    mil_check_opts o = {0};
    o.warn = on_warn;
    EXPECT(mil_check(&P, &o, &E) == 0 && P.checked, "check: %s", E.msg);

    /* declared type differs from the inferred one */
    V[y].type.shape[1] = 9;
    P.checked = 0;
    EXPECT(mil_check(&P, &o, &E) != 0, "mismatch accepted");
    EXPECT(!strcmp(E.msg, "relu: 'y' is declared tensor<fp16, [4, 9]> but the op gives "
                          "tensor<fp16, [4, 8]>"),
           "got %s", E.msg);
    V[y].type.shape[1] = 8;

    /* duplicate names */
    V[y].name = "x";
    EXPECT(mil_check(&P, &o, &E) != 0 && !strcmp(E.msg, "duplicate name 'x' (first defined at line 0)"),
           "got %s", E.msg);
    V[y].name = "y";

    /* use before definition: an op reading a later op's result */
    int z = op("relu", "x", y, NULL);
    V[z].name = "z";
    VI[OPS[0].in[0].values - VI] = z; /* relu #0 now reads z, defined by op 1 */
    EXPECT(mil_check(&P, &o, &E) != 0 && !strcmp(E.msg, "relu: 'z' is used before its definition (line 0)"),
           "got %s", E.msg);
    VI[OPS[0].in[0].values - VI] = x;

    /* undefined variable: a value with no definition */
    int u = new_value("ghost");
    VI[OPS[1].in[0].values - VI] = u;
    EXPECT(mil_check(&P, &o, &E) != 0 && !strcmp(E.msg, "relu: undefined variable 'ghost'"),
           "got %s", E.msg);
    VI[OPS[1].in[0].values - VI] = y;

    /* duplicate labels warn, do not fail */
    OPS[0].label = "same";
    OPS[1].label = "same";
    warned = 0;
    EXPECT(mil_check(&P, &o, &E) == 0, "labels failed: %s", E.msg);
    EXPECT(warned == 1 && !strcmp(warn_msg, "warning: relu: label 'same' is already used at line 0"),
           "warn %d %s", warned, warn_msg);

    /* outputs must be defined */
    outs[0] = u;
    EXPECT(mil_check(&P, &o, &E) != 0 && !strcmp(E.msg, "output 'ghost' is not defined"), "got %s",
           E.msg);
    outs[0] = y;

    /* strict mode: matmul needs both transpose flags */
    reset(18);
    int a = param("a", MIL_FP16, 2, 4, 8);
    int b2 = param("b", MIL_FP16, 2, 8, 4);
    int mm = op("matmul", "x", a, "y", b2, NULL);
    V[mm].name = "mm";
    o.strict = 1;
    EXPECT(mil_check(&P, &o, &E) != 0 &&
               !strcmp(E.msg, "matmul: input 'transpose_x' must be given explicitly (strict mode)"),
           "got %s", E.msg);
    o.strict = 0;
    EXPECT(mil_check(&P, &o, &E) == 0, "lenient: %s", E.msg);

    /* declared result count vs produced */
    OPS[0].nres = 2;
    EXPECT(mil_check(&P, &o, &E) != 0 && !strcmp(E.msg, "matmul: declares 2 results, the op produces 1"),
           "got %s", E.msg);
}

/* an inline literal value copied from l (a materialised default) */
static int lit_copy(const mil_literal *l)
{
    int v = new_value(NULL);
    LIT[v] = *l;
    size_t n = (size_t)l->count * mil_dtype_elem_size(l->type.dtype);
    memcpy(DATA[v], l->data, n);
    LIT[v].data = DATA[v];
    V[v].type = l->type;
    V[v].lit = &LIT[v];
    V[v].is_inline = 1;
    return v;
}

/* The signature table: every op has one, and the checker reads absent inputs as its defaults. */
static void test_signatures(void)
{
    mil_sig s;
    for (int k = MIL_OP_UNKNOWN + 1; k < MIL_OP_COUNT; k++) {
        const char *name = mil_op_name((mil_opkind)k);
        EXPECT(mil_op_sig((mil_opkind)k, 18, &s) == 0, "%s has no signature", name);
        EXPECT(s.nin <= MIL_SIG_MAXIN && (s.nin > 0) == (k != MIL_OP_const), "%s: %d inputs", name, s.nin);
        for (int i = 0; i < s.nin; i++) {
            EXPECT(mil_sig_find(&s, s.in[i].name) == i, "%s: input %s is listed twice", name, s.in[i].name);
            EXPECT(!(s.in[i].flags & MIL_SIG_REQ) || s.in[i].def == MIL_DEF_NONE || k == MIL_OP_constexpr_cast,
                   "%s: required input %s has a default", name, s.in[i].name);
        }
    }
    EXPECT(mil_op_sig(MIL_OP_UNKNOWN, 18, &s) == ERR_INVAL, "UNKNOWN has a signature");

    /* opset resolution: parameter domains, const-ness and dtype sets change at ios17 */
    mil_op_sig(MIL_OP_conv, 18, &s);
    EXPECT(s.in[1].dom == 'U' && (s.in[1].flags & MIL_SIG_PARAM), "conv weight at ios18: dom %c", s.in[1].dom);
    mil_op_sig(MIL_OP_conv, 16, &s);
    EXPECT(s.in[1].dom == 'T', "conv weight at ios16: dom %c", s.in[1].dom);
    mil_op_sig(MIL_OP_conv_transpose, 16, &s);
    EXPECT(s.in[1].flags & MIL_SIG_CONST, "conv_transpose weight must be const before ios17");
    mil_op_sig(MIL_OP_conv_transpose, 17, &s);
    EXPECT(!(s.in[1].flags & MIL_SIG_CONST), "conv_transpose weight may vary from ios17");
    mil_op_sig(MIL_OP_gather, 15, &s);
    EXPECT(s.in[0].dtypes == ((1u << MIL_FP16) | (1u << MIL_FP32) | (1u << MIL_INT32) | (1u << MIL_BOOL)) &&
               s.in[1].dtypes == (1u << MIL_INT32) && s.in[3].since == 16 && s.in[4].since == 17,
           "gather at ios15");

    /* materialised defaults */
    mil_literal l;
    mil_default_data d;
    mil_type x4, x2;
    int64_t s4[4] = {1, 8, 1, 4}, s2[2] = {3, 1};
    set_type(&x4, MIL_FP16, 4, s4);
    set_type(&x2, MIL_FP32, 2, s2);
    mil_op_sig(MIL_OP_conv, 18, &s);
    EXPECT(mil_sig_default(&s, mil_sig_find(&s, "strides"), &x4, &l, &d) == 0 && l.type.dtype == MIL_INT32 &&
               l.type.rank == 1 && l.count == 2 && d.i32[0] == 1 && d.i32[1] == 1, "conv strides");
    EXPECT(mil_sig_default(&s, mil_sig_find(&s, "pad"), &x4, &l, &d) == 0 && l.count == 4 && !d.i32[0] && !d.i32[3],
           "conv pad");
    EXPECT(mil_sig_default(&s, mil_sig_find(&s, "pad_type"), NULL, &l, &d) == 0 && l.type.dtype == MIL_STRING &&
               l.type.rank == 0 && !strcmp(d.str, "valid"), "conv pad_type");
    EXPECT(mil_sig_default(&s, mil_sig_find(&s, "groups"), NULL, &l, &d) == 0 && d.i32[0] == 1, "conv groups");
    EXPECT(mil_sig_default(&s, mil_sig_find(&s, "bias"), &x4, &l, &d) == ERR_STATE, "conv bias has no default");
    EXPECT(mil_sig_default(&s, mil_sig_find(&s, "strides"), NULL, &l, &d) == ERR_SHAPE, "strides without x");
    EXPECT(mil_sig_default(&s, mil_sig_find(&s, "strides"), &(mil_type){.kind = MIL_T_TENSOR, .rank = 1}, &l, &d) ==
               ERR_SHAPE, "strides for rank 1");
    mil_op_sig(MIL_OP_rsqrt, 18, &s);
    EXPECT(mil_sig_default(&s, 1, &x4, &l, &d) == 0 && l.type.dtype == MIL_FP16 && d.f16 == 0,
           "rsqrt epsilon 1e-12 rounds to 0 in fp16 (reference 7.3)");
    EXPECT(mil_sig_default(&s, 1, &x2, &l, &d) == 0 && l.type.dtype == MIL_FP32 && d.f32 == 1e-12f, "rsqrt epsilon fp32");
    mil_op_sig(MIL_OP_fill, 18, &s);
    EXPECT(mil_sig_default(&s, 1, &x4, &l, &d) == 0 && l.type.dtype == MIL_FP32 && d.f32 == 0, "fill value is fp32");
    mil_op_sig(MIL_OP_squeeze, 18, &s);
    EXPECT(mil_sig_default(&s, 1, &x4, &l, &d) == 0 && l.count == 2 && d.i32[0] == 0 && d.i32[1] == 2, "squeeze axes");
    mil_op_sig(MIL_OP_slice_by_index, 18, &s);
    EXPECT(mil_sig_default(&s, mil_sig_find(&s, "end_mask"), &x2, &l, &d) == 0 && l.type.dtype == MIL_BOOL &&
               l.count == 2 && !d.u8[0] && !d.u8[1], "slice masks");

    /* the checker reads an absent input as its default: omitting every defaulted input types the
     * op exactly as spelling each default out */
    static const struct { const char *op; const char *want; } cases[] = {
        {"conv", "fp16[1,16,1,4]"},   {"reduce_mean", "fp16[]"},  {"softmax", "fp16[1,8,1,4]"},
        {"squeeze", "fp16[8,4]"},     {"reduce_argmax", "int32[1,8,1]"}, {"slice_by_index", "fp16[1,8,1,4]"},
        {"gelu", "fp16[1,8,1,4]"},    {"matmul", "fp16[1,8,1,1]"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (int spelled = 0; spelled < 2; spelled++) {
            reset(18);
            int x = param("x", MIL_FP16, 4, 1, 8, 1, 4);
            mil_op_sig(mil_op_lookup(cases[c].op), 18, &s);
            /* required inputs besides x */
            int w = param("w", MIL_FP16, 4, 16, 8, 1, 1);
            int y = param("y", MIL_FP16, 4, 1, 8, 4, 1);
            int begin = INTS(4, 0, 0, 0, 0), end = INTS(4, 1, 8, 1, 4);
            const char *names[MIL_SIG_MAXIN];
            int vals[MIL_SIG_MAXIN], n = 0;
            for (int i = 1; i < s.nin; i++) {
                const char *in = s.in[i].name;
                int v = -1;
                if (!strcmp(in, "weight")) v = w;
                else if (!strcmp(in, "y")) v = y;
                else if (!strcmp(in, "begin")) v = begin;
                else if (!strcmp(in, "end")) v = end;
                else if (spelled && mil_sig_default(&s, i, &V[x].type, &l, &d) == 0) v = lit_copy(&l);
                if (v >= 0) names[n] = in, vals[n++] = v;
            }
            /* op() takes varargs: pass up to 8 bindings, NULL-terminated */
            for (int i = n; i < 8; i++) names[i] = NULL, vals[i] = 0;
            EXPECT(n <= 8, "%s: too many inputs for this test", cases[c].op);
            OK(op(cases[c].op, "x", x, names[0], vals[0], names[1], vals[1], names[2], vals[2], names[3], vals[3],
                  names[4], vals[4], names[5], vals[5], names[6], vals[6], names[7], vals[7], NULL),
               cases[c].want);
        }
    }
}

int main(void)
{
    test_signatures();
    test_elementwise();
    test_cast_softmax_reduce();
    test_conv_matmul_linear();
    test_shape_ops();
    test_norm_attention_quant();
    test_unknown_and_const();
    test_program();
    printf("test_mil_check: %d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
