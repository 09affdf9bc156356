/* objc.c - loading the Objective-C runtime and the few calls every user of the bridge needs.
 *
 * Everything is resolved with dlsym, so this file compiles and links on a system without any
 * Objective-C runtime; objc_open then says why it cannot load one. */
#include "objc.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__APPLE__)
#define OBJC_RUNTIME_DEFAULT "/usr/lib/libobjc.A.dylib"
/* Foundation brings NSString & co (and CoreFoundation, toll-free bridged). */
#define OBJC_SUPPORT_IMAGES "/System/Library/Frameworks/Foundation.framework/Foundation"
#else
#ifndef OBJC_RUNTIME_DEFAULT
#define OBJC_RUNTIME_DEFAULT "libobjc.so.4" /* mk/objc.mk passes GCC's full path */
#endif
#define OBJC_SUPPORT_IMAGES NULL /* no Foundation: the stand-in or a test library provides one */
#endif

#define MAX_IMAGES 32
static objc_api api;
static void *handles[MAX_IMAGES];
static char *image_names[MAX_IMAGES];
static int nhandles;
static char open_why[512];
static int open_ok;
static pthread_once_t open_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t image_mu = PTHREAD_MUTEX_INITIALIZER;

const char *objc_runtime_path(void) {
    const char *p = getenv("ANE_OBJC_RUNTIME");
    return (p && *p) ? p : OBJC_RUNTIME_DEFAULT;
}

static void *find_sym(const char *name) {
    for (int i = 0; i < nhandles; i++) {
        void *p = dlsym(handles[i], name);
        if (p) return p;
    }
    return dlsym(RTLD_DEFAULT, name);
}

static int add_handle(void *h, const char *path) {
    if (nhandles == MAX_IMAGES) return -1;
    image_names[nhandles] = strdup(path);
    handles[nhandles++] = h;
    return 0;
}

/* Function pointers come back from dlsym as void *; POSIX guarantees the conversion. */
#define NEED(field, name)                                                                  \
    do {                                                                                   \
        void *p_ = find_sym(name);                                                         \
        if (!p_) {                                                                         \
            snprintf(open_why, sizeof open_why, "symbol missing: %s (in %s)", name,        \
                     objc_runtime_path());                                                 \
            return;                                                                        \
        }                                                                                  \
        memcpy(&api.field, &p_, sizeof p_);                                                \
    } while (0)
#define WANT(field, name)                                                                  \
    do {                                                                                   \
        void *p_ = find_sym(name);                                                         \
        if (p_) memcpy(&api.field, &p_, sizeof p_);                                        \
    } while (0)

static void do_open(void) {
    const char *rt = objc_runtime_path();
    void *h = dlopen(rt, RTLD_NOW | RTLD_GLOBAL);
    if (!h) {
        const char *d = dlerror();
        snprintf(open_why, sizeof open_why, "Objective-C runtime not found: %s", d ? d : rt);
        return;
    }
    add_handle(h, rt);
    static const char *const support[] = {OBJC_SUPPORT_IMAGES};
    for (size_t i = 0; i < sizeof support / sizeof support[0]; i++) {
        if (!support[i]) continue;
        void *s = dlopen(support[i], RTLD_NOW | RTLD_GLOBAL);
        if (!s) {
            snprintf(open_why, sizeof open_why, "cannot load %s: %s", support[i], dlerror());
            return;
        }
        add_handle(s, support[i]);
    }
    NEED(getClass, "objc_getClass");
    NEED(getClassList, "objc_getClassList");
    NEED(class_getName, "class_getName");
    NEED(class_getSuperclass, "class_getSuperclass");
    NEED(class_isMetaClass, "class_isMetaClass");
    NEED(class_copyMethodList, "class_copyMethodList");
    NEED(class_copyPropertyList, "class_copyPropertyList");
    NEED(class_copyIvarList, "class_copyIvarList");
    NEED(class_copyProtocolList, "class_copyProtocolList");
    NEED(class_getInstanceMethod, "class_getInstanceMethod");
    NEED(class_getMethodImplementation, "class_getMethodImplementation");
    NEED(method_getName, "method_getName");
    NEED(method_getTypeEncoding, "method_getTypeEncoding");
    NEED(sel_registerName, "sel_registerName");
    NEED(sel_getName, "sel_getName");
    NEED(property_getName, "property_getName");
    NEED(property_getAttributes, "property_getAttributes");
    NEED(ivar_getName, "ivar_getName");
    NEED(ivar_getTypeEncoding, "ivar_getTypeEncoding");
    NEED(ivar_getOffset, "ivar_getOffset");
    NEED(protocol_getName, "protocol_getName");
    WANT(object_getClass, "object_getClass");
    WANT(setUncaughtExceptionHandler, "objc_setUncaughtExceptionHandler");
    WANT(autoreleasePoolPush, "objc_autoreleasePoolPush");
    WANT(autoreleasePoolPop, "objc_autoreleasePoolPop");
    if (!api.autoreleasePoolPush || !api.autoreleasePoolPop)
        api.autoreleasePoolPush = NULL, api.autoreleasePoolPop = NULL;
    open_ok = 1;
}

const objc_api *objc_open(char *why, size_t n) {
    pthread_once(&open_once, do_open);
    if (!open_ok) {
        if (why && n) snprintf(why, n, "%s", open_why);
        return NULL;
    }
    return &api;
}

int objc_load_image(const char *path, char *why, size_t n) {
    if (!objc_open(why, n)) return -1;
    pthread_mutex_lock(&image_mu);
    void *h = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    int rc = 0;
    if (!h) {
        const char *d = dlerror();
        if (why && n) snprintf(why, n, "cannot load %s: %s", path, d ? d : "?");
        rc = -1;
    } else {
        int known = 0;
        for (int i = 0; i < nhandles; i++) known |= handles[i] == h;
        if (known) dlclose(h); /* drop the extra reference; the image stays */
        else if (add_handle(h, path)) dlclose(h);
    }
    pthread_mutex_unlock(&image_mu);
    return rc;
}

const char *objc_image(int i) {
    pthread_mutex_lock(&image_mu);
    const char *s = (i >= 0 && i < nhandles) ? image_names[i] : NULL;
    pthread_mutex_unlock(&image_mu);
    return s;
}

/* ---- objects and classes ---- */
objc_class objc_class_of(objc_id o) {
    if (!o) return NULL;
    if (api.object_getClass) return api.object_getClass(o);
    objc_class c; /* GCC's runtime: the first word is the isa pointer (no tagged pointers) */
    memcpy(&c, (void *)o, sizeof c);
    return c;
}

bool objc_is_class(objc_id o) {
    objc_class c = objc_class_of(o);
    return c && api.class_isMetaClass(c);
}

bool objc_kind_of(objc_id o, objc_class want) {
    if (!o || !want) return false;
    for (objc_class c = objc_class_of(o); c; c = api.class_getSuperclass(c))
        if (c == want) return true;
    return false;
}

objc_sel objc_selector(const char *name) { return api.sel_registerName(name); }

objc_method objc_method_for(objc_id obj, objc_sel sel) {
    objc_class c = objc_class_of(obj);
    return c ? api.class_getInstanceMethod(c, sel) : NULL;
}

objc_imp objc_imp_for(objc_id obj, objc_sel sel) {
    if (!objc_method_for(obj, sel)) return NULL;
    return api.class_getMethodImplementation(objc_class_of(obj), sel);
}

static objc_id send0(objc_id o, const char *name) {
    objc_sel s = objc_selector(name);
    objc_imp f = objc_imp_for(o, s);
    return f ? ((objc_id (*)(objc_id, objc_sel))f)(o, s) : NULL;
}

objc_id objc_retain(objc_id o) {
    if (o && !objc_is_class(o)) send0(o, "retain");
    return o;
}

void objc_release(objc_id o) {
    if (!o || objc_is_class(o)) return;
    objc_sel s = objc_selector("release");
    objc_imp f = objc_imp_for(o, s);
    if (f) ((void (*)(objc_id, objc_sel))f)(o, s);
}

/* The pool handle: the push token, or the NSAutoreleasePool tagged with bit 0 (objects are
 * aligned) so pop knows which kind it holds. */
void *objc_pool_push(void) {
    if (api.autoreleasePoolPush) return api.autoreleasePoolPush();
    objc_class c = api.getClass("NSAutoreleasePool");
    if (!c) return NULL;
    objc_id p = send0((objc_id)c, "alloc");
    p = p ? send0(p, "init") : NULL;
    return p ? (void *)((uintptr_t)p | 1u) : NULL;
}

void objc_pool_pop(void *pool) {
    if (!pool) return;
    if (!((uintptr_t)pool & 1u)) {
        api.autoreleasePoolPop(pool);
        return;
    }
    objc_id p = (objc_id)((uintptr_t)pool & ~(uintptr_t)1u);
    objc_sel s = objc_selector("drain");
    objc_imp f = objc_imp_for(p, s);
    if (f) ((void (*)(objc_id, objc_sel))f)(p, s);
}
