/* objc_bridge.h - the Objective-C runtime, Foundation and IOSurface from plain C.
 *
 * Nothing here includes an Objective-C or Apple header. Every runtime function, Foundation class,
 * IOSurface function and CFString key is looked up at run time (dlopen + dlsym), so the same
 * source works against Apple's frameworks on macOS and against the project's stand-in library
 * (spec/support/standin/) on Linux; only the paths differ (ob_open). Messages are sent by fetching
 * the method's IMP with class_getMethodImplementation and calling it through a cast to the exact
 * C function type (ane-private-api.md 10.1), after checking that the receiver has the method, so
 * an unknown selector is an error instead of an uncatchable exception (10.6).
 *
 * Ownership follows Cocoa rules without ARC: the ob_new_* helpers return autoreleased objects
 * (valid until the enclosing pool is drained); keep anything longer with ob_retain and drop it
 * with ob_release. Every entry point that creates objects must run inside ob_pool_push/pop. */
#ifndef ANE_BACKEND_ANE_OBJC_BRIDGE_H
#define ANE_BACKEND_ANE_OBJC_BRIDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../core/error.h"

typedef struct ob_object *ob_id;      /* id */
typedef struct ob_class *ob_class;    /* Class */
typedef struct ob_selector *ob_sel;   /* SEL */
typedef struct ob_method *ob_method;  /* Method */
typedef void (*ob_imp)(void);         /* IMP: always cast to the exact type before calling */
typedef void *ob_surface;             /* IOSurfaceRef */

/* BOOL as the runtime defines it: C bool on arm64 Apple (10.2) and in the stand-in. */
typedef bool ob_bool;

/* The runtime functions and Foundation entry points, resolved once by ob_open. */
typedef struct ob_runtime {
    ob_class (*objc_getClass)(const char *name);
    ob_sel (*sel_registerName)(const char *name);
    ob_class (*object_getClass)(ob_id obj);
    ob_imp (*class_getMethodImplementation)(ob_class cls, ob_sel sel);
    ob_method (*class_getInstanceMethod)(ob_class cls, ob_sel sel);
    const char *(*method_getTypeEncoding)(ob_method m);
    const char *(*class_getName)(ob_class cls);
    ob_id (*NSTemporaryDirectory)(void);

    /* IOSurface + CoreFoundation (IOSurface.framework / CoreFoundation on macOS). */
    ob_surface (*IOSurfaceCreate)(ob_id properties);
    int (*IOSurfaceLock)(ob_surface s, uint32_t options, uint32_t *seed);
    int (*IOSurfaceUnlock)(ob_surface s, uint32_t options, uint32_t *seed);
    void *(*IOSurfaceGetBaseAddress)(ob_surface s);
    size_t (*IOSurfaceGetAllocSize)(ob_surface s);
    uint32_t (*IOSurfaceGetSeed)(ob_surface s);
    void (*CFRelease)(const void *cf);
    const void *(*CFRetain)(const void *cf);
    /* The property keys are CFStringRef globals; these hold their values. */
    ob_id kIOSurfaceWidth, kIOSurfaceHeight, kIOSurfaceBytesPerElement, kIOSurfaceBytesPerRow,
        kIOSurfaceAllocSize, kIOSurfacePixelFormat;
} ob_runtime;

#define OB_LOCK_READONLY 1u /* kIOSurfaceLockReadOnly */

/* Loaded images: ane_framework is the private framework (or the stand-in). */
typedef struct ob_env {
    ob_runtime rt;
    void *handles[4];
    int nhandles;
    char framework_path[1024];
    int standin;            /* the framework image is this project's stand-in (exports standin_*) */
} ob_env;

/* The framework path this build uses: $ANE_FRAMEWORK_PATH if set, else the build default
 * (Apple's framework on macOS; none elsewhere: NULL). */
const char *ob_framework_path(void);
/* 1 if the framework image that was loaded is the project's stand-in (spec/support/standin),
 * whatever its path; 0 for Apple's framework or when nothing could be loaded. Loads first. */
int ob_is_standin(void);

/* Load the framework (and, on macOS, Foundation and IOSurface), resolve the runtime functions and
 * IOSurface symbols. Once per process; later calls return the first result. On failure returns
 * NULL and writes the reason ("framework not found: <dlerror>", "symbol missing: X") into why. */
const ob_env *ob_open(char *why, size_t n);

/* ---- classes, selectors, messages ---- */
ob_class ob_class_named(const char *name);            /* NULL if absent */
ob_sel ob_selector(const char *name);
/* The IMP for sel on obj (an instance or a Class cast to ob_id), or NULL if obj does not respond:
 * callers turn NULL into an error rather than sending and aborting. */
ob_imp ob_lookup(ob_id obj, ob_sel sel);
int ob_responds(ob_id obj, const char *sel);
/* The method's type encoding ("B44@0:8I16@20^@28"), or NULL. */
const char *ob_encoding(ob_id obj, const char *sel);
const char *ob_class_name_of(ob_id obj);

/* ---- memory ---- */
ob_id ob_retain(ob_id obj);           /* NULL-safe; returns obj */
void ob_release(ob_id obj);           /* NULL-safe */
ob_id ob_pool_push(void);             /* [[NSAutoreleasePool alloc] init] */
void ob_pool_pop(ob_id pool);         /* [pool drain]; NULL-safe */

/* ---- Foundation values (autoreleased; NULL + e on failure) ---- */
ob_id ob_new_string(const char *utf8, ane_error *e);
ob_id ob_new_data(const void *bytes, size_t n, ane_error *e);
ob_id ob_new_u64(uint64_t v, ane_error *e);
ob_id ob_new_dict(const ob_id *keys, const ob_id *vals, size_t n, ane_error *e);
ob_id ob_new_array(const ob_id *objs, size_t n, ane_error *e);
/* UTF-8 contents of an NSString, copied into buf (truncated); "" for nil. Returns buf. */
const char *ob_string_get(ob_id s, char *buf, size_t n);
/* -[obj description] copied into buf; "(nil)" for nil. */
const char *ob_describe(ob_id obj, char *buf, size_t n);
/* "<description> (domain <d>, code <c>)" of an NSError into buf. */
const char *ob_error_text(ob_id err, char *buf, size_t n);
/* -[NSNumber unsignedLongLongValue]; 0 for nil or a non-number. */
uint64_t ob_number_u64(ob_id num);
/* KVC: [obj valueForKey:key] (autoreleased) or NULL if obj has no such key method. */
ob_id ob_value_for_key(ob_id obj, const char *key, ane_error *e);
/* -[NSDictionary objectForKey:] with a C-string key, -[NSArray count] / objectAtIndex:; NULL / 0
 * for nil or an object that is not one (never an error: used to read optional descriptions). */
ob_id ob_dict_get(ob_id dict, const char *key);
size_t ob_array_count(ob_id arr);
ob_id ob_array_at(ob_id arr, size_t i);
int ob_set_value_for_key(ob_id obj, ob_id value, const char *key, ane_error *e);

#endif
