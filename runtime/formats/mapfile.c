/* mapfile.c - mmap a whole file into a storage. */
#include "mapfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct mapping { void *addr; size_t len; } mapping;

static void map_free(storage *s) {
    mapping *m = s->impl;
    if (m) {
        if (m->len) munmap(m->addr, m->len);
        free(m);
    }
    s->impl = NULL;
}
static const storage_ops map_ops = {"mmap", map_free, NULL, NULL};

storage *mapfile_open(const char *path, ane_error *e) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) { err_set(e, ERR_IO, "%s: cannot open: %s", path, strerror(errno)); return NULL; }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        err_set(e, ERR_IO, "%s: not a regular file", path);
        return NULL;
    }
    size_t n = (size_t)st.st_size;
    void *addr = NULL;
    if (n) {
        addr = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
        if (addr == MAP_FAILED) {
            int err = errno;
            close(fd);
            err_set(e, ERR_IO, "%s: mmap of %zu bytes failed: %s", path, n, strerror(err));
            return NULL;
        }
    }
    close(fd); /* the mapping keeps the file */
    mapping *m = malloc(sizeof *m);
    if (!m) {
        if (n) munmap(addr, n);
        err_set(e, ERR_NOMEM, "%s: out of memory", path);
        return NULL;
    }
    m->addr = addr;
    m->len = n;
    storage *s = storage_wrap(addr, n, &map_ops, m, e); /* unmaps on failure */
    if (!s) err_prefix(e, "%s: ", path);
    return s;
}
