/* cpu.h - internals of the CPU backend: the plan a compile produces and the op families' hooks.
 *
 * Compile turns one checked function into a plan: a value table (every MIL value with its shape,
 * dtype and where its elements live) and a node list (one run function per op that survives
 * constant folding). All elements are held as fp32 inside the plan whatever their MIL dtype
 * (integers and bools are exact as floats up to 2^24); fp16 values are fp32 numbers that were
 * rounded through fp16 (mil-reference.md 7.3 rule 1). Eval only converts the caller's inputs, runs
 * the node list over a preallocated arena and converts the outputs: no allocation, no parsing. */
#ifndef ANE_BACKEND_CPU_H
#define ANE_BACKEND_CPU_H

#include <stddef.h>
#include <stdint.h>

#include "../../core/error.h"
#include "../../mil/ir.h"
#include "../backend.h"

const backend *cpu_backend(void);

/* Plan figures of a cpu kernel (for benchmarks and `kernel:stats()`); -1 if k is not one. */
typedef struct cpu_stats {
    size_t arena_bytes;  /* working memory: the largest set of simultaneously live values */
    size_t const_bytes;  /* converted constants (weights as fp32) */
    int nodes;           /* ops that run at eval (after folding, views, dead-node removal) */
    int values;
} cpu_stats;
int cpu_kernel_stats(const kernel *k, cpu_stats *st);

/* Where a value's elements live. */
enum {
    CV_NONE = 0, /* not a tensor the plan touches (strings, unused) */
    CV_CONST,    /* cdata: converted literal or folded result, owned by the plan (or a view of one) */
    CV_INPUT,    /* function parameter: points at the caller's fp32 data, or at its arena copy */
    CV_TEMP,     /* op result in the arena */
    CV_VIEW,     /* same elements as another value (reshape, squeeze, ...): root + off */
};

typedef struct cpu_val {
    int kind;
    mil_dtype dt;
    int rank;
    int64_t shape[MIL_MAX_RANK];
    int64_t n;           /* element count */
    int root;            /* value owning the storage (self unless CV_VIEW) */
    int64_t off;         /* element offset from the root's first element (views) */
    int64_t arena_off;   /* CV_TEMP (and converted inputs): element offset in the arena */
    float *cdata;        /* CV_CONST: the elements */
    int owns_cdata;
    int input;           /* CV_INPUT: parameter position */
    int first, last;     /* liveness in node indices (last = INT32_MAX for outputs) */
    int nuse;            /* consumers among the planned nodes */
    int only_softmax;    /* every consumer is a softmax (strict: -inf is harmless there) */
    int skip_round;      /* fp16 result read only by the output conversion, which rounds anyway */
    int exact_cast;      /* a view made by a cast into fp32 (no value changes) */
    const char *name;
} cpu_val;

struct cpu_exec;
struct cpu_node;
typedef void (*cpu_run_fn)(const struct cpu_exec *ex, const struct cpu_node *nd);

typedef struct cpu_node {
    const mil_op *op;
    mil_opkind kind;
    int nin, nout;
    int *in;             /* runtime operands (value indices; -1 = absent optional), op-defined order */
    int *out;            /* results (value indices) */
    cpu_run_fn run;
    void *p;             /* op parameters (malloc'd by the family planner, freed with the plan) */
    unsigned round : 1;  /* round float outputs through fp16 after run */
    unsigned intfix : 1; /* truncate+saturate integer outputs (arithmetic on int dtypes) */
    unsigned inplace : 1;/* out[0] may share in[0]'s buffer (elementwise, same size) */
    unsigned saturate32k : 1; /* strict: matmul-like output saturates near 32752 (field notes 3.1) */
    unsigned dma_cliff : 1;   /* strict m1/m2: last-axis-offset slice, |v| > 4094 -> inf (3.2) */
    int out16;           /* >= 0: out[0] is fp16 function output number out16, which the run
                            writes itself block by block while the block is in cache */
    int64_t scratch_n;   /* floats of working memory the run needs (im2col, ...) */
    int64_t scratch_off; /* its arena offset */
    float *scratch;      /* set at load */
} cpu_node;

typedef struct cpu_plan {
    const mil_program *prog;
    const mil_function *f;
    compile_opts opts;
    int chip;            /* strict: 1..5 for m1..m5 */
    int nvals;
    cpu_val *vals;
    int nnodes, cap;
    cpu_node *nodes;
    int64_t arena_n;     /* floats */
    float *arena;        /* allocated at load */
    float **ptr;         /* per value: element pointer (inputs refreshed each eval) */
    int *in_direct;      /* per param: 1 = read the caller's fp32 data in place */
    int *in_views;       /* values whose pointer depends on an input (refreshed each eval) */
    int *out_by_node;    /* per function output: 1 when a node writes it (node->out16) */
    int nin_views;
    size_t const_bytes;  /* memory held by converted constants */
    int threads;
    double *prof;        /* ANE_CPU_PROFILE=1: seconds per node, summed over evals; NULL otherwise */
    long nprof_evals;
} cpu_plan;

typedef struct cpu_exec {
    const cpu_plan *pl;
    float *const *ptr;
    uint16_t *const *out16; /* per function output: fp16 data of the caller's tensor (or NULL) */
} cpu_exec;

/* ---- planning (cpu_plan.c) ---- */
typedef struct cpu_planner {
    cpu_plan *pl;
    const mil_program *prog;
    const mil_function *f;
    ane_error *e;
    int *uses;           /* per value: how many op inputs and function outputs name it (IR) */
} cpu_planner;

/* The node (planned so far) producing value v, or NULL. */
cpu_node *cpu_producer(cpu_planner *P, int v);
/* If v is the result of a transpose whose perm swaps the last two axes only, its input; else -1. */
int cpu_swap_source(cpu_planner *P, int v);

/* Reading op arguments: value index of the input (or attribute) named `name`, -1 if absent. */
int cpu_arg(const cpu_planner *P, const mil_op *op, const char *name);
/* Const arguments; they fail (positioned at the op) if the argument is not a known constant. An
 * omitted input reads as the op signature table's default (mil_sig_default, for the function's
 * opset and x's rank and dtype: strides of ones, zero pads, all axes, all-false masks...);
 * omitted without a table default is an error. Lists set *n to their length. */
int cpu_arg_ints(const cpu_planner *P, const mil_op *op, const char *name, int64_t *v, int max,
                 int *n);
int cpu_arg_int(const cpu_planner *P, const mil_op *op, const char *name, int64_t *v);
int cpu_arg_float(const cpu_planner *P, const mil_op *op, const char *name, double *v);
int cpu_arg_bool(const cpu_planner *P, const mil_op *op, const char *name, int *v);
/* Omitted: the table's string default, else NULL; "" never returned for a present string. */
const char *cpu_arg_string(const cpu_planner *P, const mil_op *op, const char *name);
/* Error positioned at op ("file:line:col: conv: ..."). Returns code. */
int cpu_op_error(const cpu_planner *P, const mil_op *op, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* Start a node for op: in/out sized as given (outputs default to the op's results). */
cpu_node *cpu_node_new(cpu_planner *P, const mil_op *op, int nin, cpu_run_fn run);
/* Mark value v (an op result) as a view of src at element offset off (no node runs). */
void cpu_make_view(cpu_planner *P, int v, int src, int64_t off);
int cpu_is_const(const cpu_planner *P, int v);
const float *cpu_const_data(const cpu_planner *P, int v); /* NULL unless const */
int cpu_is_float(mil_dtype t);
int cpu_is_int(mil_dtype t);

/* Literal -> floats (numeric dtypes; strings are not numbers). n = lit->count. */
int cpu_lit_to_float(const mil_literal *lit, float *out, ane_error *e);

/* Family planners: each turns op into zero or more nodes (views, folded constants). */
int cpu_plan_elementwise(cpu_planner *P, const mil_op *op);
int cpu_plan_reduce(cpu_planner *P, const mil_op *op);
int cpu_plan_norm(cpu_planner *P, const mil_op *op);
int cpu_plan_linalg(cpu_planner *P, const mil_op *op);
int cpu_plan_shape(cpu_planner *P, const mil_op *op);
int cpu_plan_gather(cpu_planner *P, const mil_op *op);
int cpu_plan_quant(cpu_planner *P, const mil_op *op);
int cpu_plan_attention(cpu_planner *P, const mil_op *op);
int cpu_plan_movement(cpu_planner *P, const mil_op *op); /* pad, depth_to_space, ... (cpu_movement.c) */
int cpu_plan_pool(cpu_planner *P, const mil_op *op);     /* pools, resizes, einsum (cpu_pool.c) */

/* Strict mode (cpu_strict.c): refuse what the ANE refuses, at compile time. */
int cpu_strict_check_op(cpu_planner *P, const mil_op *op);
int cpu_strict_check_function(cpu_planner *P);
/* Strict mode at eval: the first overflow in node nd's outputs, positioned at its op. */
int cpu_strict_check_node(const cpu_plan *pl, const cpu_node *nd, float *const *ptr, ane_error *e);

/* ---- shared loops ---- */

/* Hot loops get an AVX2+FMA clone picked at load time (GCC ifunc on x86-64 Linux); the build
 * itself stays baseline x86-64, so the library runs on any x86-64. Not under ThreadSanitizer:
 * the ifunc resolvers run (instrumented) during relocation, before TSan exists, and crash. */
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12 \
    && !defined(__SANITIZE_THREAD__)
#define CPU_VEC __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define CPU_VEC
#endif

/* e^x in fp32 to ~2e-7 relative (Cody-Waite reduction + degree-6 polynomial), branch-free so loops
 * over it vectorise. The ANE's own transcendental algorithms are undocumented (mil-reference.md
 * 7.3) and every result is rounded to fp16 after, so libm's last bit buys nothing here. NaN in,
 * NaN out; beyond the fp32 range it gives 0 or inf like expf. */
static inline float cpu_expf(float x) {
    float xc = x != x ? 0.0f : (x < -87.3f ? -87.3f : (x > 88.7f ? 88.7f : x)); /* NaN: no UB below */
    float n = (xc * 1.44269504f + 12582912.0f) - 12582912.0f; /* round to nearest integer */
    float r = xc - n * 0.693145752f - n * 1.42860677e-6f;
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (0.166666672f + r * (0.0416666679f +
              r * (0.00833333377f + r * 0.00138888892f)))));
    union { uint32_t u; float f; } s;
    s.u = (uint32_t)((int32_t)n + 127) << 23; /* n in [-126, 128]: a normal scale or inf */
    float y = p * s.f;
    y = x < -87.3f ? 0.0f : y;
    y = x > 88.7f ? __builtin_inff() : y;
    return x != x ? x : y;
}

/* tanh in fp32 to ~4e-7 relative, branch-free: an odd Taylor polynomial (to x^13) below 0.55,
 * 1 - 2/(e^2|x| + 1) above (no cancellation there since tanh >= 0.5). */
static inline float cpu_tanhf(float x) {
    float a = x < 0 ? -x : x, x2 = x * x;
    float p = x * (1.0f + x2 * (-0.333333333f + x2 * (0.133333333f + x2 * (-0.0539682540f +
              x2 * (0.0218694885f + x2 * (-0.00886323552f + x2 * 0.00359212803f))))));
    float big = 1.0f - 2.0f / (cpu_expf(2.0f * a) + 1.0f);
    big = x < 0 ? -big : big;
    float y = a < 0.55f ? p : big;
    return x != x ? x : y;
}


static inline const cpu_val *cpu_v(const cpu_exec *ex, int v) { return &ex->pl->vals[v]; }
/* Row-major strides of a shape (elements). */
void cpu_strides(int rank, const int64_t *shape, int64_t *st);
/* Normalise an axis against rank; -1 if out of range. */
int cpu_axis(int64_t a, int rank);

/* Parallel for over [0, n) in chunks when the work is large; f(ctx, lo, hi). */
void cpu_parallel(const cpu_plan *pl, int64_t n, int64_t work_per_item,
                  void (*f)(void *ctx, int64_t lo, int64_t hi), void *ctx);

/* fp16 -> fp32 of n elements, split across the pool when large (memory-bound). */
void cpu_fp16_to_f32_par(const cpu_plan *pl, float *dst, const uint16_t *src, int64_t n);

/* 1 if the calling thread runs at lowered priority (nice > 0, SCHED_IDLE/BATCH, a background
 * QoS): an ane.queue worker. Work it hands the pool would run at normal priority instead. */
int cpu_thread_lowered(void);

/* Weights as fp32 and the arena: 64-byte aligned (AVX-512 lines), recycled across compiles
 * (core/bigmem.h). Free with bigmem_free. (Asking for transparent huge pages made compiles of
 * baked weights 6x slower here: synchronous compaction.) */
void *cpu_alloc_big(size_t bytes);

/* GEMM: C[m,n] = alpha * op(A)[m,k] op(B)[k,n] + beta * C, row-major with leading dimensions.
 * Large ones are split over the pool (pl's thread limit; pl may be NULL). */
void cpu_sgemm(const cpu_plan *pl, int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha,
               const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
               int64_t ldc);

#endif
