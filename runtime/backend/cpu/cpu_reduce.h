/* cpu_reduce.h - the reduction geometry shared by reductions, softmax and the norms. */
#ifndef ANE_BACKEND_CPU_REDUCE_H
#define ANE_BACKEND_CPU_REDUCE_H

#include <stdint.h>

#include "cpu.h"

/* block: x walks as [outer, R, inner] (reduced axes contiguous); else roff[R] are the offsets of
 * the reduced elements from each output's base ooff[nout]. Outputs are in row-major order of the
 * kept axes either way. */
typedef struct red_geom {
    int block;
    int64_t outer, R, inner, nout;
    int64_t *roff, *ooff;
} red_geom;

/* Returns 0, -1 for bad axes, -2 out of memory. */
int red_geom_init(red_geom *g, const cpu_val *x, const int64_t *axes, int nax);
void red_geom_free(red_geom *g);

#endif
