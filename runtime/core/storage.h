/* storage.h - refcounted bytes behind tensors, with a pluggable owner.
 *
 * The CPU backend uses plain 64-byte-aligned heap memory (storage_new). The ANE backend supplies
 * IOSurface-backed storage through storage_wrap with its own ops: lock/unlock map to
 * IOSurfaceLock/IOSurfaceUnlock (read-only flag honoured) and free releases the surface. Views
 * (tensors over part of a storage) retain it, so the owner outlives every view. Refcounts are
 * atomic: a storage may be released on a worker thread. */
#ifndef ANE_CORE_STORAGE_H
#define ANE_CORE_STORAGE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define STORAGE_ALIGN 64

typedef struct storage storage;

typedef struct storage_ops {
    const char *kind;                         /* "heap", "iosurface", "borrowed", ... */
    void (*free)(storage *s);                 /* release data and impl; not the struct itself */
    int (*lock)(storage *s, int readonly);    /* optional: make data valid for CPU access */
    void (*unlock)(storage *s, int readonly); /* optional */
} storage_ops;

struct storage {
    atomic_int refs;
    void *data;           /* CPU address of byte 0 (valid while locked for lockable kinds) */
    size_t nbytes;
    const storage_ops *ops;
    void *impl;           /* owner-specific handle (IOSurfaceRef, mapping, ...) */
    uint32_t seed;        /* bumped on every write-unlock, like IOSurfaceGetSeed */
};

/* A zeroed, 64-byte-aligned heap storage with refs = 1. NULL + e on failure. */
storage *storage_new(size_t nbytes, ane_error *e);
/* Wrap memory owned by someone else; ops->free is called on the last release. Takes ownership of
 * impl, even on failure: if the struct cannot be allocated, ops->free runs at once (ops and
 * ops->kind are required; without them nothing is freed and ERR_INVAL is returned). refs = 1. */
storage *storage_wrap(void *data, size_t nbytes, const storage_ops *ops, void *impl, ane_error *e);
void storage_retain(storage *s);
void storage_release(storage *s); /* NULL-safe */
int storage_lock(storage *s, int readonly, ane_error *e);
void storage_unlock(storage *s, int readonly);

/* Bytes currently held by live storages of every kind: the Lua layer steps the GC on it. */
size_t storage_live_bytes(void);

#endif
