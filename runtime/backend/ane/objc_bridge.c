/* objc_bridge.c - run-time binding to the Objective-C runtime, Foundation and IOSurface.
 *
 * The only platform differences live in the image list below: on macOS the private framework
 * plus Foundation and IOSurface from /System/Library; on Linux one stand-in library (built by
 * mk/ane.mk) that provides the same class names, C functions and globals. */
#include "objc_bridge.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ane_paths.h"

/* ---- loading ---- */
static ob_env env;
static char open_why[512];
static int open_ok;
static pthread_once_t open_once = PTHREAD_ONCE_INIT;

const char *ob_framework_path(void) {
    const char *p = getenv("ANE_FRAMEWORK_PATH");
    return (p && *p) ? p : ANE_FRAMEWORK_DEFAULT;
}

static void *find_sym(const char *name) {
    for (int i = 0; i < env.nhandles; i++) {
        void *p = dlsym(env.handles[i], name);
        if (p) return p;
    }
    return dlsym(RTLD_DEFAULT, name);
}

/* Function pointers come back from dlsym as void *; POSIX guarantees the conversion. */
#define RESOLVE(field, name)                                                        \
    do {                                                                            \
        void *p_ = find_sym(name);                                                  \
        if (!p_) {                                                                  \
            snprintf(open_why, sizeof open_why, "symbol missing: %s (in %s)", name, \
                     env.framework_path);                                           \
            return;                                                                 \
        }                                                                           \
        memcpy(&env.rt.field, &p_, sizeof p_);                                      \
    } while (0)

/* Key globals are `const CFStringRef kIOSurfaceX`: dlsym gives the variable's address. */
#define RESOLVE_KEY(field)                                                          \
    do {                                                                            \
        ob_id *p_ = find_sym(#field);                                               \
        if (!p_ || !*p_) {                                                          \
            snprintf(open_why, sizeof open_why, "symbol missing: %s (in %s)", #field, \
                     env.framework_path);                                           \
            return;                                                                 \
        }                                                                           \
        env.rt.field = *p_;                                                         \
    } while (0)

static void do_open(void) {
    if (!ob_framework_path()) {
        snprintf(open_why, sizeof open_why, "%s", ANE_NO_FRAMEWORK_WHY);
        return;
    }
    snprintf(env.framework_path, sizeof env.framework_path, "%s", ob_framework_path());
    /* Foundation and IOSurface first so that the framework's own dependencies resolve the same
     * images; on Linux the list is only the stand-in. */
    static const char *const support[] = {ANE_SUPPORT_IMAGES};
    for (size_t i = 0; i < sizeof support / sizeof support[0]; i++) {
        if (!support[i]) continue;
        void *h = dlopen(support[i], RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            snprintf(open_why, sizeof open_why, "cannot load %s: %s", support[i], dlerror());
            return;
        }
        env.handles[env.nhandles++] = h;
    }
    void *h = dlopen(env.framework_path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *d = dlerror();
        snprintf(open_why, sizeof open_why, "framework not found: %s", d ? d : env.framework_path);
        return;
    }
    env.handles[env.nhandles++] = h;
    /* The stand-in's test hooks (standin.map) mark it: reports must say when it is in use. */
    env.standin = dlsym(h, "standin_reset") != NULL;

    RESOLVE(objc_getClass, "objc_getClass");
    RESOLVE(sel_registerName, "sel_registerName");
    RESOLVE(object_getClass, "object_getClass");
    RESOLVE(class_getMethodImplementation, "class_getMethodImplementation");
    RESOLVE(class_getInstanceMethod, "class_getInstanceMethod");
    RESOLVE(method_getTypeEncoding, "method_getTypeEncoding");
    RESOLVE(class_getName, "class_getName");
    RESOLVE(NSTemporaryDirectory, "NSTemporaryDirectory");
    RESOLVE(IOSurfaceCreate, "IOSurfaceCreate");
    RESOLVE(IOSurfaceLock, "IOSurfaceLock");
    RESOLVE(IOSurfaceUnlock, "IOSurfaceUnlock");
    RESOLVE(IOSurfaceGetBaseAddress, "IOSurfaceGetBaseAddress");
    RESOLVE(IOSurfaceGetAllocSize, "IOSurfaceGetAllocSize");
    RESOLVE(IOSurfaceGetSeed, "IOSurfaceGetSeed");
    RESOLVE(CFRelease, "CFRelease");
    RESOLVE(CFRetain, "CFRetain");
    RESOLVE_KEY(kIOSurfaceWidth);
    RESOLVE_KEY(kIOSurfaceHeight);
    RESOLVE_KEY(kIOSurfaceBytesPerElement);
    RESOLVE_KEY(kIOSurfaceBytesPerRow);
    RESOLVE_KEY(kIOSurfaceAllocSize);
    RESOLVE_KEY(kIOSurfacePixelFormat);

    /* Foundation classes every call needs; the private classes are checked by the backend. */
    static const char *const foundation[] = {"NSString", "NSData", "NSDictionary", "NSNumber",
                                             "NSArray", "NSAutoreleasePool"};
    for (size_t i = 0; i < sizeof foundation / sizeof foundation[0]; i++)
        if (!env.rt.objc_getClass(foundation[i])) {
            snprintf(open_why, sizeof open_why, "class missing: %s (in %s)", foundation[i],
                     env.framework_path);
            return;
        }
    open_ok = 1;
}

int ob_is_standin(void) {
    pthread_once(&open_once, do_open);
    return env.standin;
}

const ob_env *ob_open(char *why, size_t n) {
    pthread_once(&open_once, do_open);
    if (!open_ok) {
        if (why && n) snprintf(why, n, "%s", open_why);
        return NULL;
    }
    return &env;
}

/* ---- classes and messages ---- */
#define RT (env.rt)

ob_class ob_class_named(const char *name) { return open_ok ? RT.objc_getClass(name) : NULL; }

ob_sel ob_selector(const char *name) { return RT.sel_registerName(name); }

ob_imp ob_lookup(ob_id obj, ob_sel sel) {
    if (!obj || !open_ok) return NULL;
    ob_class c = RT.object_getClass(obj); /* the metaclass when obj is a Class */
    if (!c || !RT.class_getInstanceMethod(c, sel)) return NULL;
    return RT.class_getMethodImplementation(c, sel);
}

int ob_responds(ob_id obj, const char *sel) { return ob_lookup(obj, ob_selector(sel)) != NULL; }

const char *ob_encoding(ob_id obj, const char *sel) {
    if (!obj || !open_ok) return NULL;
    ob_method m = RT.class_getInstanceMethod(RT.object_getClass(obj), ob_selector(sel));
    return m ? RT.method_getTypeEncoding(m) : NULL;
}

const char *ob_class_name_of(ob_id obj) {
    return obj ? RT.class_getName(RT.object_getClass(obj)) : "nil";
}

/* Send a no-argument message returning id; NULL if the receiver does not respond. */
static ob_id send_id0(ob_id obj, const char *name) {
    ob_sel s = ob_selector(name);
    ob_imp f = ob_lookup(obj, s);
    return f ? ((ob_id (*)(ob_id, ob_sel))f)(obj, s) : NULL;
}

/* ---- memory ---- */
ob_id ob_retain(ob_id obj) {
    if (obj) send_id0(obj, "retain");
    return obj;
}

void ob_release(ob_id obj) {
    if (!obj) return;
    ob_sel s = ob_selector("release");
    ob_imp f = ob_lookup(obj, s);
    if (f) ((void (*)(ob_id, ob_sel))f)(obj, s);
}

ob_id ob_pool_push(void) {
    ob_class c = ob_class_named("NSAutoreleasePool");
    if (!c) return NULL;
    ob_id pool = send_id0((ob_id)c, "alloc");
    return pool ? send_id0(pool, "init") : NULL;
}

void ob_pool_pop(ob_id pool) {
    if (!pool) return;
    ob_sel s = ob_selector("drain");
    ob_imp f = ob_lookup(pool, s);
    if (f) ((void (*)(ob_id, ob_sel))f)(pool, s);
}

/* ---- Foundation values ---- */
static ob_imp class_method(const char *cls, const char *sel, ob_id *recv, ob_sel *s, ane_error *e) {
    ob_class c = ob_class_named(cls);
    if (!c) {
        err_set(e, ERR_UNSUPPORTED, "objc: class %s not found", cls);
        return NULL;
    }
    *recv = (ob_id)c;
    *s = ob_selector(sel);
    ob_imp f = ob_lookup(*recv, *s);
    if (!f) err_set(e, ERR_UNSUPPORTED, "objc: +[%s %s] not found", cls, sel);
    return f;
}

static ob_id nil_result(ob_id r, const char *what, ane_error *e) {
    if (!r) err_set(e, ERR_NOMEM, "objc: %s returned nil", what);
    return r;
}

ob_id ob_new_string(const char *utf8, ane_error *e) {
    ob_id c; ob_sel s;
    ob_imp f = class_method("NSString", "stringWithUTF8String:", &c, &s, e);
    if (!f) return NULL;
    return nil_result(((ob_id (*)(ob_id, ob_sel, const char *))f)(c, s, utf8),
                      "+[NSString stringWithUTF8String:]", e);
}

ob_id ob_new_data(const void *bytes, size_t n, ane_error *e) {
    ob_id c; ob_sel s;
    ob_imp f = class_method("NSData", "dataWithBytes:length:", &c, &s, e);
    if (!f) return NULL;
    /* NSUInteger is unsigned long on every LP64 target we build for. */
    return nil_result(((ob_id (*)(ob_id, ob_sel, const void *, unsigned long))f)(c, s, bytes, n),
                      "+[NSData dataWithBytes:length:]", e);
}

ob_id ob_new_u64(uint64_t v, ane_error *e) {
    ob_id c; ob_sel s;
    ob_imp f = class_method("NSNumber", "numberWithUnsignedLongLong:", &c, &s, e);
    if (!f) return NULL;
    return nil_result(((ob_id (*)(ob_id, ob_sel, unsigned long long))f)(c, s, v),
                      "+[NSNumber numberWithUnsignedLongLong:]", e);
}

ob_id ob_new_dict(const ob_id *keys, const ob_id *vals, size_t n, ane_error *e) {
    ob_id c; ob_sel s;
    ob_imp f = class_method("NSDictionary", "dictionaryWithObjects:forKeys:count:", &c, &s, e);
    if (!f) return NULL;
    return nil_result(((ob_id (*)(ob_id, ob_sel, const ob_id *, const ob_id *, unsigned long))f)(
                          c, s, vals, keys, n),
                      "+[NSDictionary dictionaryWithObjects:forKeys:count:]", e);
}

ob_id ob_new_array(const ob_id *objs, size_t n, ane_error *e) {
    ob_id c; ob_sel s;
    ob_imp f = class_method("NSArray", "arrayWithObjects:count:", &c, &s, e);
    if (!f) return NULL;
    return nil_result(((ob_id (*)(ob_id, ob_sel, const ob_id *, unsigned long))f)(c, s, objs, n),
                      "+[NSArray arrayWithObjects:count:]", e);
}

const char *ob_string_get(ob_id str, char *buf, size_t n) {
    if (!n) return buf;
    buf[0] = '\0';
    if (!str) return buf;
    ob_sel s = ob_selector("UTF8String");
    ob_imp f = ob_lookup(str, s);
    const char *p = f ? ((const char *(*)(ob_id, ob_sel))f)(str, s) : NULL;
    if (p) snprintf(buf, n, "%s", p);
    return buf;
}

const char *ob_describe(ob_id obj, char *buf, size_t n) {
    if (!obj) {
        snprintf(buf, n, "(nil)");
        return buf;
    }
    return ob_string_get(send_id0(obj, "description"), buf, n);
}

const char *ob_error_text(ob_id err, char *buf, size_t n) {
    if (!err) {
        snprintf(buf, n, "no NSError returned");
        return buf;
    }
    char desc[768], dom[128];
    ob_describe(err, desc, sizeof desc);
    ob_string_get(send_id0(err, "domain"), dom, sizeof dom);
    long code = 0;
    ob_sel s = ob_selector("code");
    ob_imp f = ob_lookup(err, s);
    if (f) code = ((long (*)(ob_id, ob_sel))f)(err, s); /* NSInteger */
    snprintf(buf, n, "%s (domain %s, code %ld)", desc, dom[0] ? dom : "?", code);
    return buf;
}

uint64_t ob_number_u64(ob_id num) {
    if (!num) return 0;
    ob_sel s = ob_selector("unsignedLongLongValue");
    ob_imp f = ob_lookup(num, s);
    return f ? ((unsigned long long (*)(ob_id, ob_sel))f)(num, s) : 0;
}

/* KVC raises NSUndefinedKeyException for an unknown key, which C cannot catch: only use it when
 * the object has the accessor itself. */
ob_id ob_dict_get(ob_id dict, const char *key) {
    if (!dict || !ob_responds(dict, "objectForKey:")) return NULL;
    ob_id k = ob_new_string(key, NULL);
    if (!k) return NULL;
    ob_sel s = ob_selector("objectForKey:");
    return ((ob_id (*)(ob_id, ob_sel, ob_id))ob_lookup(dict, s))(dict, s, k);
}

size_t ob_array_count(ob_id arr) {
    if (!arr || !ob_responds(arr, "objectAtIndex:") || !ob_responds(arr, "count")) return 0;
    ob_sel s = ob_selector("count");
    return (size_t)((unsigned long (*)(ob_id, ob_sel))ob_lookup(arr, s))(arr, s);
}

ob_id ob_array_at(ob_id arr, size_t i) {
    if (i >= ob_array_count(arr)) return NULL;
    ob_sel s = ob_selector("objectAtIndex:");
    return ((ob_id (*)(ob_id, ob_sel, unsigned long))ob_lookup(arr, s))(arr, s, (unsigned long)i);
}

ob_id ob_value_for_key(ob_id obj, const char *key, ane_error *e) {
    if (!ob_responds(obj, key)) {
        err_set(e, ERR_UNSUPPORTED, "objc: %s has no key '%s'", ob_class_name_of(obj), key);
        return NULL;
    }
    ob_id k = ob_new_string(key, e);
    if (!k) return NULL;
    ob_sel s = ob_selector("valueForKey:");
    ob_imp f = ob_lookup(obj, s);
    if (!f) {
        err_set(e, ERR_UNSUPPORTED, "objc: %s does not support valueForKey:", ob_class_name_of(obj));
        return NULL;
    }
    return ((ob_id (*)(ob_id, ob_sel, ob_id))f)(obj, s, k);
}

int ob_set_value_for_key(ob_id obj, ob_id value, const char *key, ane_error *e) {
    char setter[128];
    snprintf(setter, sizeof setter, "set%c%s:", key[0] >= 'a' && key[0] <= 'z' ? key[0] - 32 : key[0],
             key + 1);
    if (!ob_responds(obj, setter))
        return err_set(e, ERR_UNSUPPORTED, "objc: %s has no settable key '%s'", ob_class_name_of(obj),
                       key);
    ob_id k = ob_new_string(key, e);
    if (!k) return e ? e->code : ERR_NOMEM;
    ob_sel s = ob_selector("setValue:forKey:");
    ob_imp f = ob_lookup(obj, s);
    if (!f)
        return err_set(e, ERR_UNSUPPORTED, "objc: %s does not support setValue:forKey:",
                       ob_class_name_of(obj));
    ((void (*)(ob_id, ob_sel, ob_id, ob_id))f)(obj, s, value, k);
    return 0;
}
