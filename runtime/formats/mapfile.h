/* mapfile.h - a whole file mapped into memory as a refcounted storage (kind "mmap").
 *
 * MAP_PRIVATE with read and write access: tensors viewing the mapping may be written (the
 * pages are copied on write); the file itself never changes. The mapping is unmapped when the
 * storage's last reference is released. */
#ifndef ANE_FORMATS_MAPFILE_H
#define ANE_FORMATS_MAPFILE_H

#include <stddef.h>

#include "../core/error.h"
#include "../core/storage.h"

/* Map path (a regular file of any size, 0 included: then data is NULL). NULL + ERR_IO naming
 * the file on failure. */
storage *mapfile_open(const char *path, ane_error *e);

#endif
