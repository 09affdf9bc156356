/* check_int.h - internals shared by the checker files (check.c: driver and helpers,
 * check_ops.c: one rule per op). Not a contract; nothing outside runtime/mil includes it.
 *
 * A rule binds its op's inputs as the signature table (sig.c) lists them with ck_bind_op(), which
 * applies every generic input rule, then checks what is particular to the op (reading constant
 * inputs, absent ones through their table default) and writes the result types. */
#ifndef ANE_MIL_CHECK_INT_H
#define ANE_MIL_CHECK_INT_H

#include <stdint.h>

#include "check.h"
#include "constval.h"
#include "sig.h"

/* dtype sets: bit (1 << mil_dtype) */
#define DB(d) (1u << (d))
#define D_F (DB(MIL_FP16) | DB(MIL_FP32))
#define D_FI (D_F | DB(MIL_INT32))
#define D_I32 DB(MIL_INT32)
#define D_BOOL DB(MIL_BOOL)
#define D_STR DB(MIL_STRING)
#define D_Q (DB(MIL_INT8) | DB(MIL_UINT8))
/* data-movement ops: ios15 T = fp16/fp32/int32/bool; ios17 adds the small integer types */
#define D_DATA15 (D_FI | D_BOOL)
#define D_DATA17 (D_DATA15 | D_Q | DB(MIL_INT16) | DB(MIL_UINT16))
#define D_ANY 0u

/* input flags and rank rules: the signature table's (sig.h) */
#define I_REQ MIL_SIG_REQ
#define I_CONST MIL_SIG_CONST
#define I_TUPLE MIL_SIG_TUPLE
#define RK_ANY MIL_SIG_RANK_ANY
#define RK0 MIL_SIG_RANK0
#define RK_LE1 MIL_SIG_RANK_LE1

typedef mil_sig_input in_spec;

#define CK_MAXIN MIL_SIG_MAXIN

typedef struct ck {
    const mil_program *p;
    const mil_function *f;
    const mil_op *op;
    ane_error *e;
    int opset;
    const char *name;               /* op type, the prefix of every message */
    mil_opkind kind;
    mil_sig sig;                    /* the op's signature, resolved for opset */
    const in_spec *spec;
    int nspec;
    const mil_binding *in[CK_MAXIN];/* by spec index, NULL when absent */
    mil_type *res;
    int *nres;
} ck;

/* The rule for each op kind (check_ops.c). Returns 0 or an error code with c->e filled. */
typedef int (*ck_rule)(ck *c);
ck_rule ck_rule_for(mil_opkind k);

/* Generic input rules: match bindings to spec (unknown names, duplicates, tuples, required,
 * availability by opset), const-ness, dtype sets, domains, ranks. */
int ck_bind(ck *c, const in_spec *spec, int n);
/* ck_bind with the op's own signature (c->sig). */
int ck_bind_op(ck *c);

/* Message "<op>: <text>" positioned at input i's binding (i < 0: at the op). */
int ck_err(ck *c, int i, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static inline int ck_has(const ck *c, int i) { return c->in[i] != NULL; }
static inline int ck_v(const ck *c, int i) { return c->in[i]->values[0]; }
static inline const mil_type *ck_t(const ck *c, int i) { return &c->f->values[ck_v(c, i)].type; }
static inline int ck_const(const ck *c, int i) { return mil_value_is_const(c->f, ck_v(c, i)); }

/* Constant readers with positioned errors; an absent input reads as its signature default. */
int ck_ints(ck *c, int i, int64_t *out, int max, int *n);
/* ck_ints for a rank-2 constant too (paddings [2, 2]), elements in row-major order. */
int ck_ints2(ck *c, int i, int64_t *out, int max, int *n);
int ck_int(ck *c, int i, int64_t *out);
int ck_bool(ck *c, int i, int *out);
int ck_bools(ck *c, int i, int *out, int max, int *n);
int ck_float(ck *c, int i, double *out);
int ck_str(ck *c, int i, const char **out);
/* 1 when input i is bound to a constant whose elements are known. */
int ck_known(const ck *c, int i);

/* Normalise axis a against rank (negatives count from the end); error when out of range. */
int ck_axis(ck *c, int i, int64_t a, int rank, int64_t *out);

/* Result helpers */
void ck_set_res(ck *c, int k, mil_dtype dt, int rank, const int64_t *shape);
int ck_broadcast(ck *c, int ia, int ib, const mil_type *a, const mil_type *b, int *rank,
                 int64_t *shape);

/* 1 if eq is one of the einsum forms coremltools defines for that rank (check_ops.c). */
int mil_einsum_form(const char *eq, int rank);

const char *ck_shape_str(int rank, const int64_t *shape, char *buf, size_t n);
const char *ck_type_str(const mil_type *t, char *buf, size_t n);
int ck_type_equal(const mil_type *a, const mil_type *b);

#endif
