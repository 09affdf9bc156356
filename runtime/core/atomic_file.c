/* atomic_file.c - temp file + fsync + rename + fsync of the directory. */
#include "atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define AF_BUF (1u << 20)

static atomic_uint tmp_counter;

static void af_free(atomic_file *f) {
    if (f->fd >= 0) close(f->fd);
    f->fd = -1;
    free(f->path);
    free(f->tmp);
    free(f->buf);
    f->path = f->tmp = f->buf = NULL;
    f->nbuf = f->total = 0;
}

int atomic_file_open(atomic_file *f, const char *path, ane_error *e) {
    memset(f, 0, sizeof *f);
    f->fd = -1;
    size_t n = strlen(path);
    if (n == 0) return err_set(e, ERR_IO, "atomic write: empty path");
    f->path = malloc(n + 1);
    f->tmp = malloc(n + 64);
    f->buf = malloc(AF_BUF);
    if (!f->path || !f->tmp || !f->buf) {
        af_free(f);
        return err_set(e, ERR_NOMEM, "%s: out of memory for an atomic write", path);
    }
    memcpy(f->path, path, n + 1);
    for (int tries = 0; tries < 100; tries++) {
        snprintf(f->tmp, n + 64, "%s.tmp.%ld.%u", path, (long)getpid(), atomic_fetch_add(&tmp_counter, 1));
        f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (f->fd >= 0 || errno != EEXIST) break;
    }
    if (f->fd < 0) {
        int err = errno;
        af_free(f);
        return err_set(e, ERR_IO, "%s: cannot create a temp file beside it: %s", path, strerror(err));
    }
    return 0;
}

static int write_all(atomic_file *f, const char *p, size_t n, ane_error *e) {
    while (n > 0) {
        ssize_t w = write(f->fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return err_set(e, ERR_IO, "%s: write failed after %zu bytes: %s", f->path, f->total,
                                   w < 0 ? strerror(errno) : "no progress");
        p += w;
        n -= (size_t)w;
        f->total += (size_t)w;
    }
    return 0;
}

static int flush(atomic_file *f, ane_error *e) {
    int rc = write_all(f, f->buf, f->nbuf, e);
    f->nbuf = 0;
    return rc;
}

int atomic_file_write(atomic_file *f, const void *p, size_t n, ane_error *e) {
    if (f->fd < 0) return err_set(e, ERR_STATE, "atomic write: file is not open");
    if (f->nbuf + n <= AF_BUF) {
        memcpy(f->buf + f->nbuf, p, n);
        f->nbuf += n;
        return 0;
    }
    if (flush(f, e)) return e ? e->code : ERR_IO;
    if (n >= AF_BUF) return write_all(f, p, n, e);
    memcpy(f->buf, p, n);
    f->nbuf = n;
    return 0;
}

void atomic_file_abort(atomic_file *f) {
    if (f->tmp) unlink(f->tmp);
    af_free(f);
}

/* fsync the directory holding path, so the rename itself is durable. */
static int sync_dir(const char *path, ane_error *e) {
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return err_set(e, ERR_IO, "%s: cannot open its directory to sync it: %s", path, strerror(errno));
    int rc = fsync(fd);
    int err = errno;
    close(fd);
    /* some file systems refuse fsync on directories; the rename has still happened */
    if (rc != 0 && err != EINVAL && err != ENOTSUP)
        return err_set(e, ERR_IO, "%s: syncing its directory failed: %s", path, strerror(err));
    return 0;
}

int atomic_file_commit(atomic_file *f, ane_error *e) {
    if (f->fd < 0) return err_set(e, ERR_STATE, "atomic write: file is not open");
    if (flush(f, e)) { atomic_file_abort(f); return e ? e->code : ERR_IO; }
    if (fsync(f->fd) != 0) {
        err_set(e, ERR_IO, "%s: fsync failed: %s", f->path, strerror(errno));
        atomic_file_abort(f);
        return ERR_IO;
    }
    int rc = close(f->fd);
    f->fd = -1;
    if (rc != 0) {
        err_set(e, ERR_IO, "%s: close failed: %s", f->path, strerror(errno));
        atomic_file_abort(f);
        return ERR_IO;
    }
    if (rename(f->tmp, f->path) != 0) {
        err_set(e, ERR_IO, "%s: rename from the temp file failed: %s", f->path, strerror(errno));
        atomic_file_abort(f);
        return ERR_IO;
    }
    free(f->tmp);
    f->tmp = NULL; /* renamed: nothing to remove any more */
    rc = sync_dir(f->path, e);
    af_free(f);
    return rc;
}

int atomic_file_put(const char *path, const void *const *chunks, const size_t *sizes, size_t n,
                    ane_error *e) {
    atomic_file f;
    int rc = atomic_file_open(&f, path, e);
    if (rc) return rc;
    for (size_t i = 0; i < n; i++)
        if ((rc = atomic_file_write(&f, chunks[i], sizes[i], e)) != 0) { atomic_file_abort(&f); return rc; }
    return atomic_file_commit(&f, e);
}
