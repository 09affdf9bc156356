/* check.h - per-op typing rules, shared by the whole-program checker and the incremental builder. */
#ifndef ANE_MIL_CHECK_H
#define ANE_MIL_CHECK_H

#include "ir.h"

#define MIL_MAX_RESULTS 64

/* Apply op's input rules (required/unknown inputs, const-ness, type domains, attribute ranges)
 * and its shape rule. On success fills res[0..*nres) with the inferred result types (arena memory
 * of p is not touched; sub-types, if any, point into p). Errors are positioned at the op (or the
 * offending binding) and start with the op type: "conv: weight has 3 dims, expected 4". */
int mil_infer_op(const mil_program *p, const mil_function *f, const mil_op *op, mil_type *res,
                 int *nres, ane_error *e);

/* Positioned error helper: fills e with file:line:col from p->source_name, the message, and the
 * source line with a caret when p->source is known. Returns code. */
int mil_error_at(ane_error *e, const mil_program *p, int code, int line, int col, const char *fmt,
                 ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 6, 7)))
#endif
    ;

#endif
