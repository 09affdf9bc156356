/* npy.h - NumPy .npy files (format 1.0 and 2.0, little-endian, C order). */
#ifndef ANE_CORE_NPY_H
#define ANE_CORE_NPY_H

#include "error.h"
#include "tensor.h"

/* Load into a new heap tensor (t overwritten). Errors: ERR_IO (missing/short file), ERR_FORMAT
 * (bad magic, header, big-endian, Fortran order, unsupported dtype, rank > 5) naming the file. */
int npy_load(const char *path, tensor *t, ane_error *e);
int npy_load_mem(const void *buf, size_t n, const char *name, tensor *t, ane_error *e);
int npy_save(const char *path, const tensor *t, ane_error *e);

#endif
