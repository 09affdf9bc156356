/* objc.h - the Objective-C runtime from plain C, for ane.objc (docs/objc.md).
 *
 * A general bridge over the runtime API: load images, list classes and their methods, properties,
 * ivars and protocols, decode type encodings, and send any message through libffi with the
 * method's own encoding (ffi_send.c). Nothing here includes an Objective-C or Apple header and
 * nothing is linked against libobjc: the runtime is dlopen'ed on first use (Apple's
 * /usr/lib/libobjc.A.dylib + Foundation on macOS, GCC's libobjc elsewhere, or $ANE_OBJC_RUNTIME),
 * so libane stays usable where there is no Objective-C runtime; objc_open then reports why.
 *
 * The ANE backend (runtime/backend/ane/objc_bridge.c) has its own, smaller binding and does not
 * use this one; both see the same runtime because dlopen returns the already-loaded image.
 *
 * Ownership follows Cocoa rules without ARC; the Lua layer (runtime/lua/l_objc.c) decides what
 * to retain. Every function that sends messages should run inside objc_pool_push/pop. */
#ifndef ANE_OBJC_OBJC_H
#define ANE_OBJC_OBJC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct objc_obj_ *objc_id;       /* id (a Class is an id too) */
typedef struct objc_cls_ *objc_class;    /* Class */
typedef struct objc_sel_ *objc_sel;      /* SEL */
typedef struct objc_method_ *objc_method;
typedef struct objc_ivar_ *objc_ivar;
typedef struct objc_prop_ *objc_prop;
typedef struct objc_proto_ *objc_proto;
typedef void (*objc_imp)(void);           /* IMP: called only through libffi or an exact cast */

/* The runtime functions, resolved once by objc_open (dlsym). Optional ones may be NULL. */
typedef struct objc_api {
    objc_class (*getClass)(const char *name);
    int (*getClassList)(objc_class *buf, int n);
    const char *(*class_getName)(objc_class c);
    objc_class (*class_getSuperclass)(objc_class c);
    bool (*class_isMetaClass)(objc_class c);        /* BOOL: read only the low byte */
    objc_method *(*class_copyMethodList)(objc_class c, unsigned *n);
    objc_prop *(*class_copyPropertyList)(objc_class c, unsigned *n);
    objc_ivar *(*class_copyIvarList)(objc_class c, unsigned *n);
    objc_proto *(*class_copyProtocolList)(objc_class c, unsigned *n);
    objc_method (*class_getInstanceMethod)(objc_class c, objc_sel s);
    objc_imp (*class_getMethodImplementation)(objc_class c, objc_sel s);
    objc_sel (*method_getName)(objc_method m);
    const char *(*method_getTypeEncoding)(objc_method m);
    objc_sel (*sel_registerName)(const char *name);
    const char *(*sel_getName)(objc_sel s);
    const char *(*property_getName)(objc_prop p);
    const char *(*property_getAttributes)(objc_prop p);
    const char *(*ivar_getName)(objc_ivar v);
    const char *(*ivar_getTypeEncoding)(objc_ivar v);
    ptrdiff_t (*ivar_getOffset)(objc_ivar v);
    const char *(*protocol_getName)(objc_proto p);
    /* optional */
    objc_class (*object_getClass)(objc_id o);         /* GCC's is inline-only: NULL -> isa word */
    void *(*setUncaughtExceptionHandler)(void (*fn)(objc_id exc));
    void *(*autoreleasePoolPush)(void);
    void (*autoreleasePoolPop)(void *token);
} objc_api;

/* Load the runtime (and Foundation on macOS). Once per process; later calls return the first
 * result. NULL + reason in why ("runtime not found: ...", "symbol missing: X") on failure. */
const objc_api *objc_open(char *why, size_t n);
/* The runtime's path this build loads ($ANE_OBJC_RUNTIME or the build default). */
const char *objc_runtime_path(void);
/* dlopen one more image (a framework, a test library) so its classes register. 0 or -1 + why. */
int objc_load_image(const char *path, char *why, size_t n);
/* Names of the images loaded so far (runtime first), for diagnostics; NULL past the end. */
const char *objc_image(int i);

/* ---- objects and classes (objc_open must have succeeded) ---- */
objc_class objc_class_of(objc_id o);      /* object_getClass: the metaclass for a Class */
bool objc_is_class(objc_id o);            /* o is a Class (its class is a metaclass) */
bool objc_kind_of(objc_id o, objc_class c); /* o's class is c or a subclass of c */
objc_sel objc_selector(const char *name);
/* The method of obj (an instance, or a Class for class methods) for sel, or NULL. */
objc_method objc_method_for(objc_id obj, objc_sel sel);
/* Its IMP, or NULL when obj does not respond (never the forwarding IMP). */
objc_imp objc_imp_for(objc_id obj, objc_sel sel);

/* ---- memory (messages; NULL-safe; no-ops on classes) ---- */
objc_id objc_retain(objc_id o);
void objc_release(objc_id o);
/* An autorelease pool: objc_autoreleasePoolPush where the runtime has it, else an
 * NSAutoreleasePool, else NULL (GCC's libobjc alone has no pools). */
void *objc_pool_push(void);
void objc_pool_pop(void *pool);

/* ---- type encodings (encoding.c) ---- */
/* Skip type qualifiers (r n N o O R V A j). */
const char *objc_enc_skip_quals(const char *p);
/* Past one type at p (qualifiers included), without the frame offset digits; NULL if malformed. */
const char *objc_enc_end(const char *p);
/* Past one type and its offset digits: the next type of a method encoding, or NULL. */
const char *objc_enc_next(const char *p);
/* Size and alignment of one type (0 on an unknown or unsized type such as 'v', '?'). */
int objc_enc_size(const char *p, size_t *size, size_t *align);
/* One type in C words ("unsigned int", "id *", "CGSize", "char[16]"); writes into buf. */
const char *objc_enc_words(const char *p, char *buf, size_t n);
/* A method encoding in words: "BOOL (unsigned int, id, id, NSError **)" (self and _cmd left out).
 * sel (may be NULL) only names `^@` arguments labelled "...error:" as NSError **. */
const char *objc_enc_method_words(const char *enc, const char *sel, char *buf, size_t n);
/* Number of arguments after self and _cmd, or -1 if the encoding is malformed. */
int objc_enc_nargs(const char *enc);
/* The i-th type of a method encoding (0 = return, 1 = self, 2 = _cmd, 3.. = arguments). */
const char *objc_enc_type(const char *enc, int i);
/* A property's attribute string ("T@\"NSString\",R,N,V_name") in words: type and flags. */
const char *objc_prop_words(const char *attrs, char *buf, size_t n);
/* Field names of the struct types the probes use ({CGSize=dd} -> "width", "height"), by the
 * struct's name; NULL when unknown (fields are then positional). */
const char *objc_struct_field(const char *struct_name, size_t name_len, int i);

/* ---- dynamic sends (ffi_send.c) ---- */
/* 1 if this build can send messages (libffi was found at build time). */
int objc_can_send(void);
/* Send sel to recv with the method encoding enc: args[i] points at the i-th argument's value
 * (after self and _cmd) laid out as its type; ret receives the result (size of the return type,
 * at least 8 bytes). Returns 0, or -1 with why filled: unsupported type, or an Objective-C
 * exception raised by the callee (caught where the runtime lets us: see docs/objc.md), whose
 * object is stored in *exc (not retained; valid until the enclosing pool drains). */
int objc_send(objc_id recv, objc_sel sel, objc_imp imp, const char *enc, void **args, void *ret,
              objc_id *exc, char *why, size_t n);
#endif
