/* constval.h - reading the value of constant operands.
 *
 * An operand is constant when its value is a `const` result or an inline literal (both carry a
 * mil_literal in value->lit) or the result of a constexpr_* op (constant, but its elements are only
 * known once weights are resolved and the op is folded). The checker uses these readers for
 * attributes that shape the result (axes, perm, sizes, modes); the CPU backend uses the same
 * readers when it plans. All functions borrow; nothing is allocated.
 *
 * Return codes of the readers: 0 ok; ERR_STATE when the value is not a constant with known data
 * (a runtime value, a constexpr result, or an unresolved BLOBFILE); ERR_TYPE when the dtype does
 * not fit (an int list read from an fp16 literal); ERR_SHAPE when the element count or rank does
 * not fit (a list where a scalar is wanted, more than max elements). */
#ifndef ANE_MIL_CONSTVAL_H
#define ANE_MIL_CONSTVAL_H

#include <stdint.h>

#include "ir.h"

/* 1 if value v of f is constant at compile time (const result, inline literal, constexpr result). */
int mil_value_is_const(const mil_function *f, int v);
/* The literal of v when its elements are known (data != NULL), else NULL. */
const mil_literal *mil_value_lit(const mil_function *f, int v);

/* Element i of a literal as int64 (integer and bool dtypes) or double (any numeric dtype, fp16
 * decoded). Return 0 or ERR_TYPE; i must be < lit->count. */
int mil_lit_int(const mil_literal *l, int64_t i, int64_t *out);
int mil_lit_float(const mil_literal *l, int64_t i, double *out);

/* Whole constant operands. Scalars accept rank 0 only (a [1] list is a list). Lists accept rank 0
 * or 1 (a rank-0 value reads as a one-element list) and store at most max elements in out. */
int mil_const_ints(const mil_function *f, int v, int64_t *out, int max, int *n);
/* The same for a literal of rank up to max_rank (elements in row-major order). */
int mil_const_ints_rank(const mil_function *f, int v, int max_rank, int64_t *out, int max, int *n);
int mil_const_int(const mil_function *f, int v, int64_t *out);
int mil_const_bools(const mil_function *f, int v, int *out, int max, int *n);
int mil_const_bool(const mil_function *f, int v, int *out);
int mil_const_float(const mil_function *f, int v, double *out);
int mil_const_string(const mil_function *f, int v, const char **out);

#endif
