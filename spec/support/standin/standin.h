/* standin.h - internals of the stand-in for AppleNeuralEngine.framework (test support, Linux).
 *
 * The stand-in is a shared library that registers, through GCC's Objective-C runtime, classes
 * with the names and selectors the ANE backend uses (ane-private-api.md 2, 4, 5) plus the few
 * Foundation classes those calls need, and exports memory-backed IOSurface/CoreFoundation C
 * functions. It executes programs with the project's CPU backend so outputs are real, and records
 * every call so specs can assert the protocol. It is never shipped as runtime code.
 *
 * Every stand-in object is an instance of a class under one root class ("NSObject", registered
 * here: nothing initialises GCC's own root from C) whose indexed ivars hold a sin_ivars. */
#ifndef ANE_STANDIN_H
#define ANE_STANDIN_H

#include <objc/runtime.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIN_MAGIC 0x53494e21u /* "SIN!" */

typedef struct sin_ivars {
    uint32_t magic;
    atomic_int rc;
    void *p;                  /* type-specific payload */
    void (*fin)(void *p);     /* frees p on dealloc (may be NULL) */
    int cls_slot;             /* live-count slot */
} sin_ivars;

/* ---- objects (sin_foundation.c) ---- */
void sin_register_root(void);
/* Register a subclass of the root; methods are added by the caller before sin_class_done. */
Class sin_class_begin(const char *name, Class super);
void sin_class_done(Class c);
/* GNU's IMP is variadic: method functions and calls go through void (*)(void) to keep the exact
 * non-variadic types (ane-private-api.md 10.1) without cast warnings. */
typedef void (*sin_fn)(void);
#define SIN_IMP(f) ((sin_fn)(f))
#define SIN_CALL(type, imp) ((type)(sin_fn)(imp))
void sin_add(Class c, const char *sel, sin_fn f, const char *types);      /* instance method */
void sin_add_class(Class c, const char *sel, sin_fn f, const char *types);/* class method */
Class sin_root(void);

id sin_new(Class c, void *payload, void (*fin)(void *)); /* rc = 1 */
sin_ivars *sin_iv(id obj);                               /* NULL if not a stand-in object */
void *sin_payload(id obj);
bool sin_isa(id obj, const char *class_name);            /* class or subclass */
id sin_retain(id obj);
void sin_release(id obj);
id sin_autorelease(id obj);
int sin_pool_depth(void);                                /* pools open on this thread */
int sin_live(const char *class_name);                    /* "*" = all objects */

/* Foundation constructors used by the stand-in itself (autoreleased). */
id sin_string(const char *s);
const char *sin_cstr(id str);                            /* NULL if not an NSString */
id sin_number(uint64_t v);
bool sin_number_value(id num, uint64_t *v);
id sin_data(const void *bytes, size_t n);
bool sin_data_bytes(id data, const uint8_t **bytes, size_t *n);
id sin_error(const char *domain, long code, const char *desc);
size_t sin_array_count(id arr);                          /* 0 if not an NSArray */
id sin_array_at(id arr, size_t i);
size_t sin_dict_count(id dict);                          /* 0 if not a dictionary */
id sin_dict_key_at(id dict, size_t i);
id sin_dict_get(id dict, const char *key);
void sin_register_foundation(void);
id NSTemporaryDirectory(void);                           /* exported, like Foundation's */

/* ---- IOSurface (sin_iosurface.c) ---- */
typedef struct sin_surface sin_surface;
sin_surface *sin_surface_check(const void *ref);         /* NULL if not a live surface */
void *sin_surface_base(sin_surface *s);
size_t sin_surface_size(sin_surface *s);
int sin_surface_locked(sin_surface *s);                  /* CPU locks currently held */
void sin_surface_touch(sin_surface *s);                  /* written by the "device": bump seed */
void sin_surface_retain(sin_surface *s);
void sin_surface_release(sin_surface *s);
int sin_surface_live(void);
void sin_register_iosurface_keys(void);

/* ---- ANE classes (sin_ane.c) ---- */
void sin_register_ane(void);

/* ---- recording and failure injection (sin_control.c) ---- */
void sin_record(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Failure injection: returns 1 if this call of `what` must fail (consumes one shot). */
int sin_should_fail(const char *what);
long sin_compile_limit(void);                            /* < 0: none */
int sin_class_missing(const char *name);                 /* ANE_STANDIN_MISSING_CLASS */
void sin_capture_descriptor(const uint8_t *mil, size_t mil_len);
void sin_capture_weight(const char *key, uint64_t offset, const uint8_t *data, size_t n);
void sin_capture_file(const char *rel, const uint8_t *data, size_t n, int reset);
void sin_lock(void);
void sin_unlock(void);
int sin_perf_enabled(void);
int sin_io_order(void);        /* 0 declaration, 1 by name, 2 by byte size (ties: declaration) */
int sin_describe(void);        /* publish modelAttributes[ANEFModelDescription] */
int sin_refuse_external(void); /* another model's output bound as an input: statusType 0x9 */
id sin_array_new(const id *objs, size_t n);                       /* autoreleased */
id sin_dict_new(const id *keys, const id *vals, size_t n);        /* autoreleased */
void sin_surface_set_producer(sin_surface *s, const void *model); /* last model that wrote it */
const void *sin_surface_producer(sin_surface *s);

#endif
