/* nn_util.c - argument checks shared by runtime/nn. */
#include "nn_util.h"

int nn_check(const tensor *t, dtype dt, const char *fn, const char *what, ane_error *e) {
    if (!t || !t->st) return err_set(e, ERR_STATE, "%s: %s is closed", fn, what);
    if (t->dt != dt)
        return err_set(e, ERR_TYPE, "%s: %s must be %s, got %s", fn, what, dtype_name(dt),
                       dtype_name(t->dt));
    return 0;
}

int nn_check_numel(const tensor *t, int64_t n, const char *fn, const char *what, ane_error *e) {
    int64_t have = tensor_numel(t);
    if (have != n) {
        char b[64];
        return err_set(e, ERR_SHAPE, "%s: %s %s has %lld elements, expected %lld", fn, what,
                       shape_str(t->rank, t->shape, b, sizeof b), (long long)have, (long long)n);
    }
    return 0;
}
