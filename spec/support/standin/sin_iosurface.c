/* sin_iosurface.c - memory-backed IOSurface and the two CoreFoundation calls the backend uses.
 *
 * Same C names as IOSurface.framework / CoreFoundation. A surface is a plain struct kept in a
 * live list, so CFRelease can tell it from an Objective-C object (toll-free bridging on macOS
 * lets CFRelease take either). Creation checks the property dictionary the way the documented
 * helper fills it (ane-private-api.md 4.1) and records it. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "standin.h"

#define EXPORT __attribute__((visibility("default")))

struct sin_surface {
    atomic_int rc;
    void *base;
    size_t size;
    atomic_uint seed;
    atomic_int locks;
    uint64_t serial;
    const void *producer; /* the model whose eval last wrote it (external-surface switch) */
    struct sin_surface *next;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static sin_surface *live_list;
static int live_count;
static uint64_t next_serial = 1;

sin_surface *sin_surface_check(const void *ref) {
    pthread_mutex_lock(&mu);
    sin_surface *s = live_list;
    while (s && (const void *)s != ref) s = s->next;
    pthread_mutex_unlock(&mu);
    return s;
}

void *sin_surface_base(sin_surface *s) { return s->base; }
size_t sin_surface_size(sin_surface *s) { return s->size; }
int sin_surface_locked(sin_surface *s) { return atomic_load(&s->locks); }
void sin_surface_touch(sin_surface *s) { atomic_fetch_add(&s->seed, 1); }
void sin_surface_set_producer(sin_surface *s, const void *model) { s->producer = model; }
const void *sin_surface_producer(sin_surface *s) { return s->producer; }
void sin_surface_retain(sin_surface *s) { atomic_fetch_add(&s->rc, 1); }
int sin_surface_live(void) {
    pthread_mutex_lock(&mu);
    int n = live_count;
    pthread_mutex_unlock(&mu);
    return n;
}

void sin_surface_release(sin_surface *s) {
    if (atomic_fetch_sub(&s->rc, 1) != 1) return;
    pthread_mutex_lock(&mu);
    for (sin_surface **pp = &live_list; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            live_count--;
            break;
        }
    pthread_mutex_unlock(&mu);
    sin_record("surface.free id=%llu", (unsigned long long)s->serial);
    free(s->base);
    free(s);
}

/* ---- the property keys (const CFStringRef globals on macOS) ---- */
EXPORT id kIOSurfaceWidth, kIOSurfaceHeight, kIOSurfaceBytesPerElement, kIOSurfaceBytesPerRow,
    kIOSurfaceAllocSize, kIOSurfacePixelFormat;

static id key_string(const char *s) {
    /* Kept for the life of the process, like the framework's constant strings. */
    id str = sin_string(s);
    return sin_retain(str);
}

void sin_register_iosurface_keys(void) {
    /* A pool so the autoreleased originals are dropped; the retained copies stay. */
    id cls = (id)objc_getClass("NSAutoreleasePool");
    SEL a = sel_registerName("alloc"), i = sel_registerName("init"), d = sel_registerName("drain");
    id pool = SIN_CALL(id (*)(id, SEL), class_getMethodImplementation(object_getClass(cls), a))(cls, a);
    pool = SIN_CALL(id (*)(id, SEL), class_getMethodImplementation(object_getClass(pool), i))(pool, i);
    kIOSurfaceWidth = key_string("IOSurfaceWidth");
    kIOSurfaceHeight = key_string("IOSurfaceHeight");
    kIOSurfaceBytesPerElement = key_string("IOSurfaceBytesPerElement");
    kIOSurfaceBytesPerRow = key_string("IOSurfaceBytesPerRow");
    kIOSurfaceAllocSize = key_string("IOSurfaceAllocSize");
    kIOSurfacePixelFormat = key_string("IOSurfacePixelFormat");
    SIN_CALL(void (*)(id, SEL), class_getMethodImplementation(object_getClass(pool), d))(pool, d);
}

static int prop(id dict, id key, uint64_t *v) {
    const char *k = sin_cstr(key);
    return k && sin_number_value(sin_dict_get(dict, k), v);
}

EXPORT void *IOSurfaceCreate(id props);
void *IOSurfaceCreate(id props) {
    uint64_t w, h, bpe, bpr, alloc, fmt;
    if (!sin_isa(props, "NSDictionary") || !prop(props, kIOSurfaceWidth, &w) ||
        !prop(props, kIOSurfaceHeight, &h) || !prop(props, kIOSurfaceBytesPerElement, &bpe) ||
        !prop(props, kIOSurfaceBytesPerRow, &bpr) || !prop(props, kIOSurfaceAllocSize, &alloc) ||
        !prop(props, kIOSurfacePixelFormat, &fmt)) {
        sin_record("surface.create error=missing-property");
        return NULL;
    }
    if (!w || !h || !bpe || bpr < w * bpe || alloc < bpr * h || alloc > ((uint64_t)1 << 34)) {
        sin_record("surface.create error=bad-geometry width=%llu height=%llu bpe=%llu bpr=%llu "
                   "alloc=%llu",
                   (unsigned long long)w, (unsigned long long)h, (unsigned long long)bpe,
                   (unsigned long long)bpr, (unsigned long long)alloc);
        return NULL;
    }
    sin_surface *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    /* 16 KiB pages like the real allocator: catches code that assumes alloc == requested size
     * only where it matters (GetAllocSize reports the real, rounded size). */
    size_t rounded = (size_t)((alloc + 16383) & ~(uint64_t)16383);
    s->base = aligned_alloc(16384, rounded);
    if (!s->base) {
        free(s);
        return NULL;
    }
    memset(s->base, 0, rounded);
    s->size = rounded;
    atomic_init(&s->rc, 1);
    pthread_mutex_lock(&mu);
    s->serial = next_serial++;
    s->next = live_list;
    live_list = s;
    live_count++;
    pthread_mutex_unlock(&mu);
    sin_record("surface.create id=%llu width=%llu height=%llu bpe=%llu bpr=%llu alloc=%llu "
               "pixfmt=%llu",
               (unsigned long long)s->serial, (unsigned long long)w, (unsigned long long)h,
               (unsigned long long)bpe, (unsigned long long)bpr, (unsigned long long)alloc,
               (unsigned long long)fmt);
    return s;
}

EXPORT int IOSurfaceLock(void *ref, uint32_t options, uint32_t *seed);
int IOSurfaceLock(void *ref, uint32_t options, uint32_t *seed) {
    sin_surface *s = sin_surface_check(ref);
    if (!s) return 1; /* kIOReturnError-like */
    atomic_fetch_add(&s->locks, 1);
    if (seed) *seed = atomic_load(&s->seed);
    return 0;
}

EXPORT int IOSurfaceUnlock(void *ref, uint32_t options, uint32_t *seed);
int IOSurfaceUnlock(void *ref, uint32_t options, uint32_t *seed) {
    sin_surface *s = sin_surface_check(ref);
    if (!s) return 1;
    if (atomic_fetch_sub(&s->locks, 1) <= 0) {
        atomic_fetch_add(&s->locks, 1);
        sin_record("error.unlock_without_lock id=%llu", (unsigned long long)s->serial);
        return 1;
    }
    if (!(options & 1u)) atomic_fetch_add(&s->seed, 1); /* not kIOSurfaceLockReadOnly */
    if (seed) *seed = atomic_load(&s->seed);
    return 0;
}

EXPORT void *IOSurfaceGetBaseAddress(void *ref);
void *IOSurfaceGetBaseAddress(void *ref) {
    sin_surface *s = sin_surface_check(ref);
    return s ? s->base : NULL;
}

EXPORT size_t IOSurfaceGetAllocSize(void *ref);
size_t IOSurfaceGetAllocSize(void *ref) {
    sin_surface *s = sin_surface_check(ref);
    return s ? s->size : 0;
}

EXPORT uint32_t IOSurfaceGetSeed(void *ref);
uint32_t IOSurfaceGetSeed(void *ref) {
    sin_surface *s = sin_surface_check(ref);
    return s ? atomic_load(&s->seed) : 0;
}

EXPORT uint64_t sin_surface_id(void *ref);
uint64_t sin_surface_id(void *ref) {
    sin_surface *s = sin_surface_check(ref);
    return s ? s->serial : 0;
}

EXPORT const void *CFRetain(const void *cf);
const void *CFRetain(const void *cf) {
    sin_surface *s = sin_surface_check(cf);
    if (s) sin_surface_retain(s);
    else sin_retain((id)cf);
    return cf;
}

EXPORT void CFRelease(const void *cf);
void CFRelease(const void *cf) {
    if (!cf) {
        sin_record("error.cfrelease_null"); /* CoreFoundation crashes on NULL */
        return;
    }
    sin_surface *s = sin_surface_check(cf);
    if (s) sin_surface_release(s);
    else if (sin_iv((id)cf)) sin_release((id)cf);
    else sin_record("error.cfrelease_unknown");
}
