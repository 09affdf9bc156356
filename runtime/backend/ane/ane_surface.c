/* ane_surface.c - IOSurface-backed storage for kernel inputs and outputs.
 *
 * One flat surface per tensor, created with the property set every source uses (ane-private-api.md
 * 4.1). The storage's data pointer is the surface's base address, which is stable for the
 * surface's life (4.2); CPU access goes through storage_lock/unlock, which map to IOSurfaceLock/
 * IOSurfaceUnlock (read-only flag honoured), and the last release CFReleases the surface. */
#include <string.h>

#include "../../core/storage.h"
#include "ane_backend.h"
#include "objc_bridge.h"

static const ob_runtime *rt(void) {
    const ob_env *env = ob_open(NULL, 0);
    return env ? &env->rt : NULL;
}

static void surf_free(storage *s) {
    if (s->impl && rt()) rt()->CFRelease(s->impl);
    s->impl = NULL;
}

static int surf_lock(storage *s, int readonly) {
    return rt()->IOSurfaceLock(s->impl, readonly ? OB_LOCK_READONLY : 0, NULL) == 0 ? 0 : ERR_IO;
}

static void surf_unlock(storage *s, int readonly) {
    rt()->IOSurfaceUnlock(s->impl, readonly ? OB_LOCK_READONLY : 0, NULL);
}

static const storage_ops surface_ops = {"iosurface", surf_free, surf_lock, surf_unlock};

void *ane_storage_surface(const storage *st) {
    return (st && st->ops == &surface_ops) ? st->impl : NULL;
}

storage *ane_surface_storage_new(size_t nbytes, ane_error *e) {
    char why[512];
    const ob_env *env = ob_open(why, sizeof why);
    if (!env) {
        err_set(e, ERR_UNSUPPORTED, "ane: %s", why);
        return NULL;
    }
    if (nbytes == 0 || nbytes > ((size_t)1 << 32)) {
        err_set(e, ERR_INVAL, "ane: IOSurface of %zu bytes", nbytes);
        return NULL;
    }
    const ob_runtime *r = &env->rt;
    ob_id pool = ob_pool_push();
    storage *st = NULL;
    ob_id keys[6] = {r->kIOSurfaceWidth, r->kIOSurfaceHeight, r->kIOSurfaceBytesPerElement,
                     r->kIOSurfaceBytesPerRow, r->kIOSurfaceAllocSize, r->kIOSurfacePixelFormat};
    uint64_t vals[6] = {nbytes, 1, 1, nbytes, nbytes, 0};
    ob_id nums[6];
    for (int i = 0; i < 6; i++)
        if (!(nums[i] = ob_new_u64(vals[i], e))) goto out;
    ob_id props = ob_new_dict(keys, nums, 6, e);
    if (!props) goto out;
    ob_surface s = r->IOSurfaceCreate(props);
    if (!s) {
        err_set(e, ERR_NOMEM, "ane: IOSurfaceCreate(%zu bytes) failed", nbytes);
        goto out;
    }
    void *base = r->IOSurfaceGetBaseAddress(s);
    if (!base || r->IOSurfaceGetAllocSize(s) < nbytes) {
        r->CFRelease(s);
        err_set(e, ERR_NOMEM, "ane: IOSurface of %zu bytes has no usable memory", nbytes);
        goto out;
    }
    /* storage_wrap takes ownership of s, even on failure (it then frees it through our ops). */
    st = storage_wrap(base, nbytes, &surface_ops, s, e);
out:
    ob_pool_pop(pool);
    return st;
}
