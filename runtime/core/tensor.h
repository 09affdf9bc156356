/* tensor.h - dense, contiguous, row-major tensors over a storage.
 *
 * A tensor is a small value struct (embedded in a Lua userdata or a kernel) that holds one
 * reference on its storage. Rank is 0..TENSOR_MAX_RANK (the Lua API creates rank 1..5; rank 0
 * exists for MIL scalars). Shapes are checked for overflow on creation. Index convention in C:
 * 0-based; the Lua binding documents its own (1-based). */
#ifndef ANE_CORE_TENSOR_H
#define ANE_CORE_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "dtype.h"
#include "error.h"
#include "storage.h"

#define TENSOR_MAX_RANK 5

typedef struct tensor {
    dtype dt;
    int rank;
    int64_t shape[TENSOR_MAX_RANK];
    size_t offset;   /* bytes from the start of st->data */
    storage *st;     /* one reference owned by this tensor; NULL for an empty tensor */
} tensor;

/* Element count of a shape, or -1 if a dim is negative or the product overflows. */
int64_t shape_numel(int rank, const int64_t *shape);
/* Checks rank range, dims >= 1 (0 allowed only if allow_zero) and byte-size overflow. */
int shape_check(int rank, const int64_t *shape, dtype dt, ane_error *e);
int shape_equal(int ra, const int64_t *a, int rb, const int64_t *b);
/* "[1, 64, 1, 32]" into buf; returns buf. */
const char *shape_str(int rank, const int64_t *shape, char *buf, size_t n);

/* New zeroed heap tensor. t is overwritten (any old storage is NOT released). */
int tensor_init(tensor *t, dtype dt, int rank, const int64_t *shape, ane_error *e);
/* Tensor over an existing storage (retained); checks that offset + nbytes fits. */
int tensor_init_on(tensor *t, storage *st, size_t offset, dtype dt, int rank, const int64_t *shape,
                   ane_error *e);
/* Drop the storage reference; leaves t empty. Idempotent. */
void tensor_release(tensor *t);

int64_t tensor_numel(const tensor *t);
size_t tensor_nbytes(const tensor *t);
void *tensor_data(const tensor *t); /* NULL for an empty tensor */

/* Element access by flat index, converting through double (fp16/bool included). */
double tensor_get(const tensor *t, int64_t i);
void tensor_set(tensor *t, int64_t i, double v);
void tensor_fill(tensor *t, double v);
/* Copy src into dst: same numel required; converts dtype when they differ. */
int tensor_copy(tensor *dst, const tensor *src, ane_error *e);

/* Seeded random fills (reproducible across platforms: our own generator, not rand()). */
typedef struct rng { uint64_t s[4]; } rng;
void rng_seed(rng *r, uint64_t seed);
uint64_t rng_next(rng *r);
double rng_uniform(rng *r);              /* [0, 1) */
double rng_normal(rng *r);               /* mean 0, stddev 1 */
void tensor_rand_uniform(tensor *t, rng *r, double lo, double hi);
void tensor_rand_normal(tensor *t, rng *r, double mean, double std);

/* CPU helpers training loops need; float dtypes only, same numel. */
int tensor_scale(tensor *t, double a, ane_error *e);                      /* t *= a */
int tensor_add(tensor *dst, const tensor *a, const tensor *b, ane_error *e); /* dst = a + b */
int tensor_axpy(tensor *y, double a, const tensor *x, ane_error *e);      /* y += a*x */

#endif
