/* check_pending.c - TEMPORARY stand-in for the checker (runtime/mil/check.c, branch milcheck).
 *
 * It exists only so that the front end (parser, builder, Lua binding) links and can be used
 * before the checker lands. It types `const` ops and refuses every other op with a clear
 * message; it is not a checker. The checker's author deletes this file when check.c lands. */
#include <string.h>

#include "check.h"
#include "mil.h"

int mil_infer_op(const mil_program *p, const mil_function *f, const mil_op *op, mil_type *res,
                 int *nres, ane_error *e) {
    *nres = 0;
    if (strcmp(op->type, "const") != 0)
        return mil_error_at(e, p, ERR_UNSUPPORTED, op->line, op->col,
                            "%s: op typing is not available yet (the checker has not landed)", op->type);
    const mil_binding *val = NULL;
    for (int i = 0; i < op->nattr; i++)
        if (strcmp(op->attr[i].name, "val") == 0) val = &op->attr[i];
    if (op->nin || !val || val->n != 1)
        return mil_error_at(e, p, ERR_INVAL, op->line, op->col, "const: needs exactly one val attribute and no inputs");
    res[0] = f->values[val->values[0]].type;
    *nres = 1;
    return 0;
}

int mil_check(mil_program *p, const mil_check_opts *o, ane_error *e) {
    (void)o;
    for (int fi = 0; fi < p->nfuncs; fi++) {
        const mil_function *f = &p->funcs[fi];
        for (int i = 0; i < f->nops; i++) {
            const mil_op *op = &f->ops[i];
            mil_type res[MIL_MAX_RESULTS];
            int n;
            int rc = mil_infer_op(p, f, op, res, &n, e);
            if (rc) return rc;
            if (n != op->nres)
                return mil_error_at(e, p, ERR_TYPE, op->line, op->col, "%s: %d results declared, %d produced",
                                    op->type, op->nres, n);
            for (int r = 0; r < n; r++)
                if (!mil_type_equal(&res[r], &f->values[op->res[r]].type))
                    return mil_error_at(e, p, ERR_TYPE, op->line, op->col,
                                        "%s: declared type of '%s' does not match its value", op->type,
                                        f->values[op->res[r]].name);
        }
    }
    p->checked = 1;
    return 0;
}
