/* nn_util.h - argument checks shared by the runtime/nn files (internal). */
#ifndef ANE_NN_UTIL_H
#define ANE_NN_UTIL_H

#include "nn.h"

/* ERR_TYPE unless t is an open tensor of dtype dt; `what` names it in the message. */
int nn_check(const tensor *t, dtype dt, const char *fn, const char *what, ane_error *e);
/* ERR_SHAPE unless t has n elements. */
int nn_check_numel(const tensor *t, int64_t n, const char *fn, const char *what, ane_error *e);

#endif
