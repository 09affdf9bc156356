/* atomic_file.h - replace a file atomically: write a temp file beside it, fsync, rename, fsync dir.
 *
 * A reader sees either the old file or the complete new one, never a half-written file, even if
 * the writer crashes or the machine loses power (rename is atomic within a directory; the fsyncs
 * order the data before the name). The temp file is "<path>.tmp.<pid>.<n>" in the same directory;
 * atomic_file_abort (or a failed commit) removes it. */
#ifndef ANE_CORE_ATOMIC_FILE_H
#define ANE_CORE_ATOMIC_FILE_H

#include <stddef.h>

#include "error.h"

typedef struct atomic_file {
    int fd;          /* -1 when not open */
    char *path;      /* final name (owned) */
    char *tmp;       /* temp name (owned) */
    char *buf;       /* write buffer (owned) */
    size_t nbuf;
    size_t total;    /* bytes written so far */
} atomic_file;

/* Create the temp file for path. f is overwritten. ERR_IO naming path on failure. */
int atomic_file_open(atomic_file *f, const char *path, ane_error *e);
/* Append n bytes (buffered). ERR_IO naming the final path (disk full, ...). */
int atomic_file_write(atomic_file *f, const void *p, size_t n, ane_error *e);
/* Flush, fsync, close, rename over path, fsync the directory. Frees f in every case; on failure
 * the temp file is removed and path is untouched. */
int atomic_file_commit(atomic_file *f, ane_error *e);
/* Close and remove the temp file; path is untouched. Safe on a closed or zeroed-then-aborted f. */
void atomic_file_abort(atomic_file *f);

/* The whole operation for data already in memory: n chunks written in order. */
int atomic_file_put(const char *path, const void *const *chunks, const size_t *sizes, size_t n,
                    ane_error *e);

#endif
