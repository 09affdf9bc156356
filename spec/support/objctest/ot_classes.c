/* ot_classes.c - test classes for ane.objc (spec/objc_spec.lua), on GCC's Objective-C runtime.
 *
 * Test support only, never installed. Registered at load time as subclasses of the stand-in's
 * root class (spec/support/standin: this library links it, so its NSObject and Foundation are
 * there first), which counts live instances per class (standin_live) for the release specs.
 *   OTTypes  class methods that echo every type encoding the bridge converts, in both
 *            directions, plus many-argument and mixed register calls, struct returns,
 *            out-parameters, exceptions, a variadic-looking selector and unsupported encodings
 *   OTThing  instances with a value ivar: +newThing (+1), +thing (+0, autoreleased), -copy,
 *            -mutableCopy (+1), -initWithValue: (init family), protocol OTProbing
 *   OTException  thrown by +raise:reason:, answers -name and -reason */
#include <objc/runtime.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef void (*fn)(void);
#define IMPF(f) ((IMP)(fn)(f))
#define CALL(type, imp) ((type)(fn)(imp))

void objc_exception_throw(id exc);
Protocol *ot_protocol(void);
int ot_catch_inside(id exc);

typedef struct { double width, height; } ot_size;
typedef struct { unsigned long location, length; } ot_range;

static id send0(id o, const char *sel) {
    SEL s = sel_registerName(sel);
    return CALL(id (*)(id, SEL), class_getMethodImplementation(object_getClass(o), s))(o, s);
}
static id nsstring(const char *s) {
    id c = (id)objc_getClass("NSString");
    SEL sel = sel_registerName("stringWithUTF8String:");
    return CALL(id (*)(id, SEL, const char *), class_getMethodImplementation(object_getClass(c), sel))(c, sel, s);
}

/* ---- OTTypes: echoes ---- */
static char e_c(id s, SEL _, char v) { return v; }
static unsigned char e_C(id s, SEL _, unsigned char v) { return v; }
static short e_s(id s, SEL _, short v) { return v; }
static unsigned short e_S(id s, SEL _, unsigned short v) { return v; }
static int e_i(id s, SEL _, int v) { return v; }
static unsigned e_I(id s, SEL _, unsigned v) { return v; }
static long e_l(id s, SEL _, long v) { return v; }
static unsigned long e_L(id s, SEL _, unsigned long v) { return v; }
static long long e_q(id s, SEL _, long long v) { return v; }
static unsigned long long e_Q(id s, SEL _, unsigned long long v) { return v; }
static float e_f(id s, SEL _, float v) { return v; }
static double e_d(id s, SEL _, double v) { return v; }
static bool e_B(id s, SEL _, bool v) { return v; }
static const char *e_str(id s, SEL _, const char *v) { return v; }
static SEL e_sel(id s, SEL _, SEL v) { return v; }
static Class e_cls(id s, SEL _, Class v) { return v; }
static id e_id(id s, SEL _, id v) { return v; }
static void *e_ptr(id s, SEL _, void *v) { return v; }
static ot_size e_size(id s, SEL _, ot_size v) { return v; }
static ot_range e_range(id s, SEL _, ot_range v) { return v; }
static ot_size make_size(id s, SEL _, double w, double h) { return (ot_size){w, h}; }
static unsigned long range_end(id s, SEL _, ot_range r) { return r.location + r.length; }
static double mix(id s, SEL _, int a, double b, char c, float d, long long e, short f, unsigned g,
                  double h) {
    return a + b + c + d + (double)e + f + g + h;
}
static long long sum9(id s, SEL _, long long a, long long b, long long c, long long d, long long e,
                      long long f, long long g, long long h, long long i) {
    return a + 2 * b + 3 * c + 4 * d + 5 * e + 6 * f + 7 * g + 8 * h + 9 * i;
}
static const char *greeting(id s, SEL _) { return "hello"; }
static const char *null_string(id s, SEL _) { return NULL; }
static void nothing(id s, SEL _) {}
/* Integer bytes readable by the caller: first byte of the pointee. */
static int first_byte(id s, SEL _, const unsigned char *p) { return p ? p[0] : -1; }
static void fill_bytes(id s, SEL _, unsigned char *p, unsigned long n) {
    for (unsigned long i = 0; i < n; i++) p[i] = (unsigned char)(i + 1);
}

/* ---- out-parameters ---- */
static bool divide(id s, SEL _, long long a, long long b, long long *rem, id *error) {
    if (b == 0) {
        if (error) {
            id c = (id)objc_getClass("NSError");
            SEL sel = sel_registerName("errorWithDomain:code:userInfo:");
            *error = CALL(id (*)(id, SEL, id, long, id),
                          class_getMethodImplementation(object_getClass(c), sel))(
                c, sel, nsstring("OTDomain"), 7, nil);
        }
        return false;
    }
    if (rem) *rem = a % b;
    return true;
}
static void out_double(id s, SEL _, double *d, unsigned *u) {
    if (d) *d = 2.5;
    if (u) *u = 7;
}

/* ---- exceptions ---- */
static Class cls_exc;
static ptrdiff_t exc_name_off, exc_reason_off, thing_value_off;
static id exc_name(id self, SEL _) { return *(id *)((char *)self + exc_name_off); }
static id exc_reason(id self, SEL _) { return *(id *)((char *)self + exc_reason_off); }
static void exc_release(id self, SEL _) {
    /* the stand-in's release disposes at zero; drop our ivars first */
    SEL rc = sel_registerName("retainCount");
    unsigned long n = CALL(unsigned long (*)(id, SEL), class_getMethodImplementation(object_getClass(self), rc))(self, rc);
    if (n == 1) {
        SEL r = sel_registerName("release");
        id nm = exc_name(self, _), re = exc_reason(self, _);
        IMP rel = class_getMethodImplementation(object_getClass(nm), r);
        CALL(void (*)(id, SEL), rel)(nm, r);
        CALL(void (*)(id, SEL), rel)(re, r);
    }
    SEL r = sel_registerName("release");
    CALL(void (*)(id, SEL), class_getMethodImplementation(class_getSuperclass(cls_exc), r))(self, r);
}
static id make_exc(const char *name, const char *reason) {
    id e = send0((id)cls_exc, "alloc");
    *(id *)((char *)e + exc_name_off) = send0(nsstring(name), "retain");
    *(id *)((char *)e + exc_reason_off) = send0(nsstring(reason), "retain");
    return send0(e, "autorelease");
}
static void raise_(id s, SEL _, const char *name, const char *reason) {
    objc_exception_throw(make_exc(name, reason));
}
static int raise_nonexc(id s, SEL _) {
    objc_exception_throw(nsstring("a plain string"));
    return 0;
}
static int catch_inside(id s, SEL _) { return ot_catch_inside(make_exc("Inner", "caught inside")); }

/* ---- variadic-looking and unsupported ---- */
static void fmt(id s, SEL _, id f) {}
static void take_ld(id s, SEL _, long double v) {}
typedef union { int i; float f; } ot_union;
static void take_union(id s, SEL _, ot_union u) {}

/* ---- OTThing ---- */
static Class cls_thing;
static id thing_new(Class c, SEL _) { return send0(send0((id)c, "alloc"), "init"); }
static id thing_auto(Class c, SEL _) { return send0(thing_new(c, _), "autorelease"); }
static long long thing_value(id self, SEL _) { return *(long long *)((char *)self + thing_value_off); }
static void thing_set_value(id self, SEL _, long long v) { *(long long *)((char *)self + thing_value_off) = v; }
static id thing_init_value(id self, SEL _, long long v) {
    thing_set_value(self, _, v);
    return self;
}
static id thing_copy(id self, SEL _) {
    id c = thing_new(cls_thing, _);
    thing_set_value(c, _, thing_value(self, _));
    return c;
}
static id thing_desc(id self, SEL _) {
    char buf[64];
    snprintf(buf, sizeof buf, "<OTThing %lld>", thing_value(self, _));
    return nsstring(buf);
}
static id thing_self(id self, SEL _) { return self; }
static int thing_probe(id self, SEL _) { return 42; }

static void add(Class c, const char *sel, IMP f, const char *types) {
    class_addMethod(c, sel_registerName(sel), f, types);
}
static void addc(Class c, const char *sel, IMP f, const char *types) {
    class_addMethod(object_getClass((id)c), sel_registerName(sel), f, types);
}
static void done(Class c) {
    objc_registerClassPair(c);
    SEL s = sel_registerName("retain");
    class_getMethodImplementation(c, s);
    class_getMethodImplementation(object_getClass((id)c), s);
}

__attribute__((constructor)) static void ot_init(void) {
    Class root = objc_getClass("NSObject");
    if (!root) {
        fprintf(stderr, "objctest: no NSObject (the stand-in must load first)\n");
        return;
    }
    Class t = objc_allocateClassPair(root, "OTTypes", 0);
    addc(t, "echoChar:", IMPF(e_c), "c20@0:8c16");
    addc(t, "echoUChar:", IMPF(e_C), "C20@0:8C16");
    addc(t, "echoShort:", IMPF(e_s), "s20@0:8s16");
    addc(t, "echoUShort:", IMPF(e_S), "S20@0:8S16");
    addc(t, "echoInt:", IMPF(e_i), "i20@0:8i16");
    addc(t, "echoUInt:", IMPF(e_I), "I20@0:8I16");
    addc(t, "echoLong:", IMPF(e_l), "l24@0:8l16");
    addc(t, "echoULong:", IMPF(e_L), "L24@0:8L16");
    addc(t, "echoLongLong:", IMPF(e_q), "q24@0:8q16");
    addc(t, "echoULongLong:", IMPF(e_Q), "Q24@0:8Q16");
    addc(t, "echoFloat:", IMPF(e_f), "f20@0:8f16");
    addc(t, "echoDouble:", IMPF(e_d), "d24@0:8d16");
    addc(t, "echoBool:", IMPF(e_B), "B20@0:8B16");
    addc(t, "echoString:", IMPF(e_str), "r*24@0:8r*16");
    addc(t, "echoSel:", IMPF(e_sel), ":24@0:8:16");
    addc(t, "echoClass:", IMPF(e_cls), "#24@0:8#16");
    addc(t, "echoId:", IMPF(e_id), "@24@0:8@16");
    addc(t, "echoPointer:", IMPF(e_ptr), "^v24@0:8^v16");
    addc(t, "echoSize:", IMPF(e_size), "{CGSize=dd}32@0:8{CGSize=dd}16");
    addc(t, "echoRange:", IMPF(e_range), "{_NSRange=QQ}32@0:8{_NSRange=QQ}16");
    addc(t, "sizeWithWidth:height:", IMPF(make_size), "{CGSize=dd}32@0:8d16d24");
    addc(t, "endOfRange:", IMPF(range_end), "Q32@0:8{_NSRange=QQ}16");
    addc(t, "mixInt:double:char:float:longLong:short:unsignedInt:double:", IMPF(mix),
         "d64@0:8i16d20c28f32q36s44I48d52");
    addc(t, "sum:b:c:d:e:f:g:h:i:", IMPF(sum9), "q88@0:8q16q24q32q40q48q56q64q72q80");
    addc(t, "greeting", IMPF(greeting), "r*16@0:8");
    addc(t, "nullString", IMPF(null_string), "*16@0:8");
    addc(t, "nothing", IMPF(nothing), "v16@0:8");
    addc(t, "firstByte:", IMPF(first_byte), "i24@0:8r^C16");
    addc(t, "fill:length:", IMPF(fill_bytes), "v32@0:8^C16Q24");
    addc(t, "divide:by:remainder:error:", IMPF(divide), "B40@0:8q16q24^q32^@40");
    addc(t, "outDouble:unsigned:", IMPF(out_double), "v32@0:8^d16^I24");
    addc(t, "raise:reason:", IMPF(raise_), "v32@0:8r*16r*24");
    addc(t, "raiseString", IMPF(raise_nonexc), "i16@0:8");
    addc(t, "catchInside", IMPF(catch_inside), "i16@0:8");
    addc(t, "logFormat:", IMPF(fmt), "v24@0:8@16");
    addc(t, "takeLongDouble:", IMPF(take_ld), "v32@0:8D16");
    addc(t, "takeUnion:", IMPF(take_union), "v20@0:8(?=if)16");
    done(t);

    cls_exc = objc_allocateClassPair(root, "OTException", 0);
    class_addIvar(cls_exc, "_name", sizeof(id), 3, "@");
    class_addIvar(cls_exc, "_reason", sizeof(id), 3, "@");
    add(cls_exc, "name", IMPF(exc_name), "@16@0:8");
    add(cls_exc, "reason", IMPF(exc_reason), "@16@0:8");
    add(cls_exc, "release", IMPF(exc_release), "v16@0:8");
    done(cls_exc);
    exc_name_off = ivar_getOffset(class_getInstanceVariable(cls_exc, "_name"));
    exc_reason_off = ivar_getOffset(class_getInstanceVariable(cls_exc, "_reason"));

    cls_thing = objc_allocateClassPair(root, "OTThing", 0);
    class_addIvar(cls_thing, "_value", sizeof(long long), 3, "q");
    addc(cls_thing, "newThing", IMPF(thing_new), "@16@0:8");
    addc(cls_thing, "thing", IMPF(thing_auto), "@16@0:8");
    add(cls_thing, "initWithValue:", IMPF(thing_init_value), "@24@0:8q16");
    add(cls_thing, "value", IMPF(thing_value), "q16@0:8");
    add(cls_thing, "setValue:", IMPF(thing_set_value), "v24@0:8q16");
    add(cls_thing, "copy", IMPF(thing_copy), "@16@0:8");
    add(cls_thing, "mutableCopy", IMPF(thing_copy), "@16@0:8");
    add(cls_thing, "description", IMPF(thing_desc), "@16@0:8");
    add(cls_thing, "same", IMPF(thing_self), "@16@0:8");
    add(cls_thing, "probe", IMPF(thing_probe), "i16@0:8");
    class_addProtocol(cls_thing, ot_protocol());
    done(cls_thing);
    thing_value_off = ivar_getOffset(class_getInstanceVariable(cls_thing, "_value"));
}
