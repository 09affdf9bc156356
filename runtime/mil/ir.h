/* ir.h - the typed IR of a MIL program: program -> functions -> values and ops (SSA).
 *
 * This header is the contract between the parser, the checker, the printer, the Lua builder and
 * every backend. Fields may be added; existing ones keep their meaning.
 *
 * Memory: a program owns an arena; every string, array, type and literal of the program lives in
 * it and is freed by the last mil_program_release. After mil_check succeeds the program is
 * treated as immutable and may be shared across threads (refcount is atomic).
 *
 * Values: every operand is a value index into its function's values[] array: function params, op
 * results, and inline literals (an argument such as `mode = string("EXACT")` or an attribute such
 * as `name = string("cq")` becomes an unnamed value with is_inline set and lit filled). The printer
 * writes inline values back inline. Each `const` op's result value also has lit set (shared with
 * the op's `val` attribute). */
#ifndef ANE_MIL_IR_H
#define ANE_MIL_IR_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"
#include "ops.h"

#define MIL_MAX_RANK 8 /* parse limit; the checker and backends cap lower where they must */

typedef enum {
    MIL_FP16 = 0, MIL_FP32, MIL_FP64, MIL_BF16,
    MIL_INT4, MIL_INT8, MIL_INT16, MIL_INT32, MIL_INT64,
    MIL_UINT1, MIL_UINT2, MIL_UINT3, MIL_UINT4, MIL_UINT6, MIL_UINT8, MIL_UINT16, MIL_UINT32,
    MIL_UINT64, MIL_BOOL, MIL_STRING,
    MIL_DTYPE_COUNT
} mil_dtype;

const char *mil_dtype_name(mil_dtype t);
int mil_dtype_lookup(const char *name, mil_dtype *out); /* 0 ok, ERR_INVAL if not a dtype name */
int mil_dtype_bits(mil_dtype t);                        /* 16 for fp16, 1 for uint1, 0 for string */

typedef enum { MIL_T_TENSOR = 0, MIL_T_STATE, MIL_T_DICT, MIL_T_LIST, MIL_T_TUPLE } mil_typekind;

typedef struct mil_type {
    mil_typekind kind;
    mil_dtype dtype;                /* TENSOR / STATE: element type */
    int rank;                       /* TENSOR / STATE: 0 = scalar (bare `fp16` == `tensor<fp16, []>`) */
    int64_t shape[MIL_MAX_RANK];    /* -1 = unknown dim (`?` or a symbol; lenient parse only) */
    int nsub;                       /* DICT: 2 (key, value); LIST: 1; TUPLE: n */
    struct mil_type *sub;
    int64_t list_len;               /* LIST: length, -1 for `?` */
} mil_type;

typedef enum { MIL_LIT_DATA = 0, MIL_LIT_BLOB, MIL_LIT_DICT } mil_litform;

/* A constant. Element data is decoded into `data`, packed in the literal's dtype:
 * fp16 as uint16_t bits (rounded once, RNE), fp32 float, fp64 double, intN/uintN in the
 * smallest native C type that holds them (int8_t, uint8_t, int16_t, int32_t, int64_t, uint64_t;
 * sub-byte types one per uint8_t), bool one uint8_t 0/1, string `const char *` per element.
 * For MIL_LIT_BLOB, data is NULL until mil_resolve_weights() reads the file (or the builder
 * supplies the bytes); then it holds the decoded elements exactly as for MIL_LIT_DATA. Where the
 * stored bytes already have that layout, data points into the program's copy of the weight file
 * (p->blobs) instead of a copy: literal data is read-only, nobody may write to it. */
typedef struct mil_literal {
    mil_type type;
    mil_litform form;
    int64_t count;                  /* element count (1 for scalars); pairs for DICT */
    void *data;
    const char *blob_path;          /* BLOB: "@model_path/weights/w.bin" */
    uint64_t blob_offset;           /* BLOB: offset of the 64-byte metadata record */
    struct mil_literal *keys, *vals;/* DICT: count pairs of scalar literals */
} mil_literal;

typedef struct mil_value {
    const char *name;      /* var name; NULL for inline literals */
    mil_type type;         /* declared type (parser) == inferred type (after check) */
    int def_op;            /* index of the defining op, -1 for params and inline literals */
    int def_result;        /* which result of that op */
    mil_literal *lit;      /* constant value: const results, inline literals; NULL otherwise */
    int line, col;         /* where it was declared (0 if built) */
    unsigned is_param : 1, is_inline : 1;
} mil_value;

/* Whole-line `//` comments kept for the printer: each the text from `//` to the end of its
 * line, trailing blanks dropped. Comments at the end of a line of code are not kept. */
typedef struct mil_comments {
    int n;
    const char **text;
} mil_comments;

/* One named input (or attribute) of an op: `x = a`, `values = (a, b, c)`, `name = string("l")`. */
typedef struct mil_binding {
    const char *name;
    int n;                 /* operands: 1 for a plain binding, n for a tuple */
    int *values;           /* value indices */
    unsigned is_tuple : 1; /* written with parentheses (even for n = 1) */
    unsigned is_attr : 1;  /* mil_func_add_op only: put this binding in op->attr (`[...]`) */
    int line, col;
} mil_binding;

typedef struct mil_op {
    const char *type;      /* op type as written: "conv" */
    mil_opkind kind;       /* MIL_OP_UNKNOWN until looked up */
    int nin;
    mil_binding *in;       /* inputs in source order (the printer sorts by name) */
    int nattr;
    mil_binding *attr;     /* attributes `[...]`: name, val, and ios16-style constexpr inputs */
    int nres;
    int *res;              /* result value indices */
    const char *label;     /* the `name` attribute's string, or NULL */
    int line, col;
    mil_comments comments; /* the lines just before the statement (and any inside it) */
} mil_op;

typedef struct mil_function {
    const char *name;      /* "main" */
    const char *opset;     /* "ios18" */
    int opset_version;     /* 15..18 (26 for ios26); 0 if unknown */
    int nparams;
    int *params;           /* value indices, in declaration order */
    int nvalues;
    mil_value *values;
    int nops;
    mil_op *ops;           /* in program order (SSA: operands defined earlier) */
    int nouts;
    int *outs;             /* value indices of `-> (a, b)` in order */
    int line, col;
    mil_comments comments;     /* before `func` */
    mil_comments end_comments; /* after the last statement, before `}` */
    /* growth bookkeeping and the name -> value index table (ir.c); not for readers */
    int cap_params, cap_values, cap_ops;
    struct mil_names *names;
} mil_function;

/* A weight file as the compiler sees it: key = the exact BLOBFILE path string. */
typedef struct mil_blob {
    const char *path;      /* "@model_path/weights/w.bin" */
    uint8_t *data;
    size_t size;
} mil_blob;

typedef struct mil_prog_attr {
    const char *name;      /* "buildInfo" */
    mil_literal *lit;
} mil_prog_attr;

struct mil_arena;

typedef struct mil_program {
    atomic_int refs;        /* every holder */
    atomic_int data_refs;   /* holders of the whole program, weight bytes included (see below) */
    struct mil_arena *arena;
    char version[16];       /* "1.3", "1.0" as written */
    int nattrs;
    mil_prog_attr *attrs;
    int nfuncs;
    mil_function *funcs;
    int nblobs;
    mil_blob *blobs;        /* weight files (read by resolve, or made by the builder) */
    const char *source_name;/* file name used in error positions ("<string>" if none) */
    const char *source;     /* the text parsed (for caret lines); NULL if built */
    const char *model_dir;  /* directory @model_path resolves to; NULL if unset */
    unsigned checked : 1, resolved : 1;
    mil_comments comments;      /* before `program` */
    mil_comments end_comments;  /* after the last function, before the closing `}` */
    mil_comments tail_comments; /* after the closing `}` */
    int cap_funcs, cap_blobs, cap_attrs; /* growth bookkeeping (ir.c) */
} mil_program;

/* Holders come in two kinds. mil_program_retain/release hold the whole program. A compiled
 * kernel that has converted the weights it needs holds only the IR (names, types, ops, source
 * positions) with mil_program_retain_ir/release_ir: once no whole-program holder is left, the
 * weight files' bytes (blobs[i].data) and the literal data read from them are freed and their
 * pointers set to NULL, so a static model does not keep a second copy of its weights. */
void mil_program_retain(mil_program *p);
void mil_program_release(mil_program *p); /* NULL-safe */
void mil_program_retain_ir(mil_program *p);
void mil_program_release_ir(mil_program *p); /* NULL-safe */
mil_function *mil_program_func(const mil_program *p, const char *name); /* NULL if absent */
int mil_func_value(const mil_function *f, const char *name);           /* index or -1 */
/* The input bound to `name` on op (inputs first, then attributes), or NULL. */
const mil_binding *mil_op_input(const mil_op *op, const char *name);

/* Bytes one decoded element of dtype t occupies in mil_literal.data (see above). */
size_t mil_dtype_elem_size(mil_dtype t);
/* Element count of a static shape, or -1 for an unknown dim, a negative dim or overflow. */
int64_t mil_shape_numel(int rank, const int64_t *shape);
/* Same types: kind, dtype, rank, every dim, sub-types (tensor<T, []> and bare T are one type). */
int mil_type_equal(const mil_type *a, const mil_type *b);
/* Structural equality of two programs (what a round trip must preserve): version, attributes,
 * functions, params, ops with inputs compared by name (inline literals by value), declared
 * types, labels (an absent label equals the first result's name), outputs. Blob literal data is
 * compared only when both sides hold it. Returns 1 if equal, else 0 and a reason in why. */
int mil_program_equal(const mil_program *a, const mil_program *b, char *why, size_t n);

/* IEEE binary16 / bfloat16 <-> double, rounding once to nearest even (NaN kept quiet). */
uint16_t mil_f16_from_double(double x);
double mil_f16_to_double(uint16_t h);
uint16_t mil_bf16_from_double(double x);
double mil_bf16_to_double(uint16_t h);

#endif
