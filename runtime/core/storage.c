/* storage.c - refcounted bytes: aligned heap memory, or memory wrapped with its owner's ops. */
#include "storage.h"

#include <stdlib.h>
#include <string.h>

static atomic_size_t live_bytes;

size_t storage_live_bytes(void) { return atomic_load_explicit(&live_bytes, memory_order_relaxed); }

static void heap_free(storage *s) { free(s->data); }
static const storage_ops heap_ops = {"heap", heap_free, NULL, NULL};

storage *storage_new(size_t nbytes, ane_error *e) {
    /* aligned_alloc wants a multiple of the alignment; a zero-byte storage still gets one block */
    if (nbytes > SIZE_MAX - STORAGE_ALIGN) {
        err_set(e, ERR_NOMEM, "storage of %zu bytes is too large", nbytes);
        return NULL;
    }
    size_t padded = (nbytes + STORAGE_ALIGN - 1) / STORAGE_ALIGN * STORAGE_ALIGN;
    if (padded == 0) padded = STORAGE_ALIGN;
    storage *s = malloc(sizeof *s);
    void *data = s ? aligned_alloc(STORAGE_ALIGN, padded) : NULL;
    if (!data) {
        free(s);
        err_set(e, ERR_NOMEM, "out of memory allocating %zu bytes", nbytes);
        return NULL;
    }
    memset(data, 0, padded);
    atomic_init(&s->refs, 1);
    s->data = data;
    s->nbytes = nbytes;
    s->ops = &heap_ops;
    s->impl = NULL;
    s->seed = 0;
    atomic_fetch_add_explicit(&live_bytes, nbytes, memory_order_relaxed);
    return s;
}

storage *storage_wrap(void *data, size_t nbytes, const storage_ops *ops, void *impl, ane_error *e) {
    if (!ops || !ops->kind) {
        err_set(e, ERR_INVAL, "storage_wrap: ops with a kind are required");
        return NULL;
    }
    storage *s = malloc(sizeof *s);
    if (!s) {
        /* we own impl now: give it back through the owner's free so it does not leak */
        storage tmp = {.data = data, .nbytes = nbytes, .ops = ops, .impl = impl};
        atomic_init(&tmp.refs, 0);
        if (ops->free) ops->free(&tmp);
        err_set(e, ERR_NOMEM, "out of memory wrapping a %s storage", ops->kind);
        return NULL;
    }
    atomic_init(&s->refs, 1);
    s->data = data;
    s->nbytes = nbytes;
    s->ops = ops;
    s->impl = impl;
    s->seed = 0;
    atomic_fetch_add_explicit(&live_bytes, nbytes, memory_order_relaxed);
    return s;
}

void storage_retain(storage *s) {
    if (s) atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void storage_release(storage *s) {
    if (!s) return;
    /* acq_rel: every write made through other references happens-before the free */
    if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1) return;
    atomic_fetch_sub_explicit(&live_bytes, s->nbytes, memory_order_relaxed);
    if (s->ops && s->ops->free) s->ops->free(s);
    free(s);
}

int storage_lock(storage *s, int readonly, ane_error *e) {
    if (!s) return err_set(e, ERR_STATE, "storage_lock: no storage");
    if (s->ops->lock && s->ops->lock(s, readonly) != 0)
        return err_set(e, ERR_STATE, "could not lock %s storage for %s", s->ops->kind, readonly ? "reading" : "writing");
    return 0;
}

void storage_unlock(storage *s, int readonly) {
    if (!s) return;
    if (s->ops->unlock) s->ops->unlock(s, readonly);
    if (!readonly) __atomic_fetch_add(&s->seed, 1, __ATOMIC_RELAXED); /* writers publish a new seed */
}
