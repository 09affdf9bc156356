/* npy.h - NumPy .npy files: formats 1.0, 2.0 and 3.0 read (either byte order, C or Fortran
 * order: a loaded tensor is always C order, host byte order); 1.0 written, little-endian, C order. */
#ifndef ANE_CORE_NPY_H
#define ANE_CORE_NPY_H

#include "error.h"
#include "tensor.h"

/* Load into a new heap tensor (t overwritten). Errors: ERR_IO (missing/short file), ERR_FORMAT
 * (bad magic, header, unsupported dtype, rank > 5, zero-size dims, data size) naming the file. */
int npy_load(const char *path, tensor *t, ane_error *e);
int npy_load_mem(const void *buf, size_t n, const char *name, tensor *t, ane_error *e);
int npy_save(const char *path, const tensor *t, ane_error *e);

#endif
