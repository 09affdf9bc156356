/* l_objc.c - ane.objc: the Objective-C runtime from Lua (docs/objc.md).
 *
 * One userdata type, ane.objc.id, for objects and classes alike. It owns one reference to its
 * object (none for classes, which live forever) and drops it in __gc/__close. Messages go through
 * runtime/objc (libffi, by the method's own type encoding); every send runs in its own
 * autorelease pool, and results are retained before that pool drains unless the selector's
 * family (alloc, new, copy, mutableCopy, init) already returned them at +1.
 *
 * Module functions (ane.objc.*): available, load, framework, images, class, classes, send, ns,
 * array, dict, lua, autoreleasepool, decode, decode_property, null, wrap. Methods: call, responds, name, class, superclass,
 * methods, properties, ivars, protocols, lua, ptr, is_class, close. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../backend/ane/ane_backend.h"
#include "../backend/ane/ane_paths.h"
#include "../backend/ane/objc_bridge.h"
#include "../objc/objc.h"
#include "lane.h"

#define LANE_OBJC "ane.objc.id"

typedef struct lobj {
    objc_id o; /* NULL after close */
} lobj;

static const objc_api *A;

/* ---- runtime ---- */
static const objc_api *rt(lua_State *L) {
    if (A) return A;
    char why[512];
    A = objc_open(why, sizeof why);
    if (!A) luaL_error(L, "objc: %s", why);
    return A;
}

/* ---- the userdata ---- */
/* Push a wrapper for o; retain says whether to take a new reference (else o is already ours). */
static void push_obj(lua_State *L, objc_id o, int retain) {
    if (!o) {
        lua_pushnil(L);
        return;
    }
    lobj *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->o = NULL;
    luaL_setmetatable(L, LANE_OBJC);
    u->o = retain ? objc_retain(o) : o;
}

static lobj *check_lobj(lua_State *L, int idx) {
    lobj *u = luaL_checkudata(L, idx, LANE_OBJC);
    if (!u->o) luaL_argerror(L, idx, "objc object is closed");
    return u;
}

static objc_id check_obj(lua_State *L, int idx) { return check_lobj(L, idx)->o; }

static objc_class check_cls(lua_State *L, int idx) {
    objc_id o = check_obj(L, idx);
    if (!objc_is_class(o)) luaL_argerror(L, idx, "needs a class");
    return (objc_class)o;
}

static objc_id to_obj(lua_State *L, int idx) {
    lobj *u = luaL_testudata(L, idx, LANE_OBJC);
    return u ? u->o : NULL;
}

static int o_close(lua_State *L) {
    lobj *u = luaL_checkudata(L, 1, LANE_OBJC);
    if (u->o) {
        objc_id o = u->o;
        u->o = NULL;
        objc_release(o);
    }
    return 0;
}

static const char *cls_name(objc_id o) {
    if (!o) return "nil";
    objc_class c = objc_is_class(o) ? (objc_class)o : objc_class_of(o);
    return A->class_getName(c);
}

/* ---- Foundation helpers with exact casts (their signatures are Foundation's API) ---- */
static objc_imp class_imp(const char *cls, const char *sel, objc_id *recv, objc_sel *s) {
    objc_class c = A->getClass(cls);
    if (!c) return NULL;
    *recv = (objc_id)c;
    *s = objc_selector(sel);
    return objc_imp_for(*recv, *s);
}

static objc_id send_id0(objc_id o, const char *sel) {
    objc_sel s = objc_selector(sel);
    objc_imp f = objc_imp_for(o, s);
    return f ? ((objc_id (*)(objc_id, objc_sel))f)(o, s) : NULL;
}

static int kind_of(objc_id o, const char *cls) {
    objc_class c = A->getClass(cls);
    return c && objc_kind_of(o, c);
}

static const char *utf8(objc_id str) {
    objc_sel s = objc_selector("UTF8String");
    objc_imp f = objc_imp_for(str, s);
    return f ? ((const char *(*)(objc_id, objc_sel))f)(str, s) : NULL;
}

/* -description as a C string copied into buf. */
static const char *describe(objc_id o, char *buf, size_t n) {
    objc_id d = send_id0(o, "description");
    const char *s = d ? utf8(d) : NULL;
    if (s) snprintf(buf, n, "%s", s);
    else snprintf(buf, n, "<%s: %p>", cls_name(o), (void *)o);
    return buf;
}

#define MAX_DEPTH 32

/* Lua value -> autoreleased Foundation object (NULL + why). kind: 0 by content, 1 a table as
 * NSArray, 2 a table as NSDictionary. */
static objc_id to_ns_kind(lua_State *L, int idx, int depth, int kind, char *why, size_t n);
static objc_id to_ns(lua_State *L, int idx, int depth, char *why, size_t n) {
    return to_ns_kind(L, idx, depth, 0, why, n);
}
static objc_id to_ns_kind(lua_State *L, int idx, int depth, int kind, char *why, size_t n) {
    idx = lua_absindex(L, idx);
    objc_id recv;
    objc_sel s;
    objc_imp f;
    switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
        size_t len;
        const char *str = lua_tolstring(L, idx, &len);
        if (strlen(str) != len) {
            snprintf(why, n, "a string with a zero byte has no NSString (use a tensor for NSData)");
            return NULL;
        }
        if (!(f = class_imp("NSString", "stringWithUTF8String:", &recv, &s))) break;
        return ((objc_id (*)(objc_id, objc_sel, const char *))f)(recv, s, str);
    }
    case LUA_TBOOLEAN:
        if (!(f = class_imp("NSNumber", "numberWithBool:", &recv, &s))) break;
        return ((objc_id (*)(objc_id, objc_sel, unsigned char))f)(recv, s,
                                                                 (unsigned char)lua_toboolean(L, idx));
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            if (!(f = class_imp("NSNumber", "numberWithLongLong:", &recv, &s))) break;
            return ((objc_id (*)(objc_id, objc_sel, long long))f)(recv, s,
                                                                 (long long)lua_tointeger(L, idx));
        }
        if (!(f = class_imp("NSNumber", "numberWithDouble:", &recv, &s))) break;
        return ((objc_id (*)(objc_id, objc_sel, double))f)(recv, s, lua_tonumber(L, idx));
    case LUA_TUSERDATA: {
        objc_id o = to_obj(L, idx);
        if (o) return o;
        tensor *t = lane_totensor(L, idx);
        if (t) {
            if (!(f = class_imp("NSData", "dataWithBytes:length:", &recv, &s))) break;
            return ((objc_id (*)(objc_id, objc_sel, const void *, unsigned long))f)(
                recv, s, tensor_data(t), (unsigned long)tensor_nbytes(t));
        }
        snprintf(why, n, "%s has no Foundation value", luaL_typename(L, idx));
        return NULL;
    }
    case LUA_TTABLE: {
        if (depth >= MAX_DEPTH) {
            snprintf(why, n, "table nested deeper than %d", MAX_DEPTH);
            return NULL;
        }
        lua_Integer len = (lua_Integer)lua_rawlen(L, idx);
        lua_Integer count = 0;
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            count++;
            lua_pop(L, 1);
        }
        if (count > 4096) {
            snprintf(why, n, "table of %lld entries is too large", (long long)count);
            return NULL;
        }
        objc_id *v = calloc((size_t)(count ? count : 1), sizeof *v);
        objc_id *k = calloc((size_t)(count ? count : 1), sizeof *k);
        if (!v || !k) {
            free(v), free(k);
            snprintf(why, n, "out of memory");
            return NULL;
        }
        objc_id r = NULL;
        if (kind == 1 && len != count) {
            free(v), free(k);
            snprintf(why, n, "objc.array needs a sequence (a table with keys 1..n)");
            return NULL;
        }
        if (kind == 1 || (kind == 0 && len > 0 && len == count)) { /* a sequence: NSArray */
            for (lua_Integer i = 1; i <= len; i++) {
                lua_rawgeti(L, idx, i);
                v[i - 1] = to_ns(L, -1, depth + 1, why, n);
                lua_pop(L, 1);
                if (!v[i - 1]) goto out;
            }
            if ((f = class_imp("NSArray", "arrayWithObjects:count:", &recv, &s)))
                r = ((objc_id (*)(objc_id, objc_sel, const objc_id *, unsigned long))f)(
                    recv, s, v, (unsigned long)len);
            else
                snprintf(why, n, "no +[NSArray arrayWithObjects:count:]");
        } else { /* NSDictionary (an empty table too: @{} is the usual options argument) */
            lua_Integer i = 0;
            lua_pushnil(L);
            while (lua_next(L, idx)) {
                v[i] = to_ns(L, -1, depth + 1, why, n);
                k[i] = v[i] ? to_ns(L, -2, depth + 1, why, n) : NULL;
                lua_pop(L, 1);
                if (!v[i] || !k[i]) {
                    lua_pop(L, 1);
                    goto out;
                }
                i++;
            }
            if ((f = class_imp("NSDictionary", "dictionaryWithObjects:forKeys:count:", &recv, &s)))
                r = ((objc_id (*)(objc_id, objc_sel, const objc_id *, const objc_id *,
                                  unsigned long))f)(recv, s, v, k, (unsigned long)count);
            else
                snprintf(why, n, "no +[NSDictionary dictionaryWithObjects:forKeys:count:]");
        }
    out:
        free(v);
        free(k);
        return r;
    }
    case LUA_TLIGHTUSERDATA:
        return (objc_id)lua_touserdata(L, idx);
    default:
        snprintf(why, n, "%s has no Foundation value", luaL_typename(L, idx));
        return NULL;
    }
    snprintf(why, n, "the Foundation class for a Lua %s is missing (load Foundation or the "
                     "stand-in: objc.framework())",
             luaL_typename(L, idx));
    return NULL;
}

/* Foundation object -> Lua value (the object itself when it is no value type). */
static void push_lua(lua_State *L, objc_id o, int depth) {
    if (!o) {
        lua_pushnil(L);
        return;
    }
    luaL_checkstack(L, 6, "objc: nested too deep");
    if (!objc_is_class(o)) {
        if (kind_of(o, "NSString")) {
            const char *s = utf8(o);
            if (s) {
                lua_pushstring(L, s);
                return;
            }
        } else if (kind_of(o, "NSNumber")) {
            objc_sel s = objc_selector("objCType");
            objc_imp f = objc_imp_for(o, s);
            const char *t = f ? ((const char *(*)(objc_id, objc_sel))f)(o, s) : "Q";
            char c = t ? t[0] : 'Q';
            if (c == 'c' && strstr(cls_name(o), "Boolean")) c = 'B'; /* __NSCFBoolean */
            if (c == 'd' || c == 'f') {
                s = objc_selector("doubleValue");
                f = objc_imp_for(o, s);
                if (f) { lua_pushnumber(L, ((double (*)(objc_id, objc_sel))f)(o, s)); return; }
            } else if (c == 'B') {
                s = objc_selector("boolValue");
                f = objc_imp_for(o, s);
                if (f) { lua_pushboolean(L, ((unsigned char (*)(objc_id, objc_sel))f)(o, s) != 0); return; }
            } else {
                s = objc_selector(c == 'Q' ? "unsignedLongLongValue" : "longLongValue");
                f = objc_imp_for(o, s);
                if (!f) f = objc_imp_for(o, s = objc_selector("unsignedLongLongValue"));
                if (f) { lua_pushinteger(L, (lua_Integer)((long long (*)(objc_id, objc_sel))f)(o, s)); return; }
            }
        } else if (kind_of(o, "NSData")) {
            objc_sel sb = objc_selector("bytes"), sl = objc_selector("length");
            objc_imp fb = objc_imp_for(o, sb), fl = objc_imp_for(o, sl);
            if (fb && fl) {
                size_t len = ((unsigned long (*)(objc_id, objc_sel))fl)(o, sl);
                const void *b = ((const void *(*)(objc_id, objc_sel))fb)(o, sb);
                lua_pushlstring(L, len ? b : "", len);
                return;
            }
        } else if (depth < MAX_DEPTH && kind_of(o, "NSArray")) {
            objc_sel sc = objc_selector("count"), sa = objc_selector("objectAtIndex:");
            objc_imp fc = objc_imp_for(o, sc), fa = objc_imp_for(o, sa);
            if (fc && fa) {
                unsigned long n = ((unsigned long (*)(objc_id, objc_sel))fc)(o, sc);
                lua_createtable(L, (int)n, 0);
                for (unsigned long i = 0; i < n; i++) {
                    push_lua(L, ((objc_id (*)(objc_id, objc_sel, unsigned long))fa)(o, sa, i), depth + 1);
                    lua_rawseti(L, -2, (lua_Integer)i + 1);
                }
                return;
            }
        } else if (depth < MAX_DEPTH && kind_of(o, "NSDictionary")) {
            objc_id keys = send_id0(o, "allKeys");
            objc_sel sc = objc_selector("count"), sa = objc_selector("objectAtIndex:"),
                     sg = objc_selector("objectForKey:");
            objc_imp fc = objc_imp_for(keys, sc), fa = objc_imp_for(keys, sa), fg = objc_imp_for(o, sg);
            if (keys && fc && fa && fg) {
                unsigned long n = ((unsigned long (*)(objc_id, objc_sel))fc)(keys, sc);
                lua_createtable(L, 0, (int)n);
                for (unsigned long i = 0; i < n; i++) {
                    objc_id k = ((objc_id (*)(objc_id, objc_sel, unsigned long))fa)(keys, sa, i);
                    push_lua(L, k, depth + 1);
                    push_lua(L, ((objc_id (*)(objc_id, objc_sel, objc_id))fg)(o, sg, k), depth + 1);
                    if (lua_isnil(L, -2)) lua_pop(L, 2);
                    else lua_rawset(L, -3);
                }
                return;
            }
        }
    }
    push_obj(L, o, 1);
}

/* ---- messages ---- */
/* Selectors whose methods are variadic: the type encoding cannot say so, the names can. */
static int is_variadic(const char *sel) {
    static const char *const tails[] = {"Format:", "format:", "WithObjects:", "ObjectsAndKeys:",
                                        "arguments:", NULL};
    const char *last = sel, *p;
    size_t len = strlen(sel);
    if (!len || sel[len - 1] != ':') return 0;
    for (p = sel; (p = strchr(p, ':')) && p[1]; p++) last = p + 1;
    for (int i = 0; tails[i]; i++) {
        size_t tl = strlen(tails[i]);
        size_t ll = strlen(last);
        if (ll >= tl && strcmp(last + ll - tl, tails[i]) == 0 &&
            !(strcmp(tails[i], "arguments:") == 0 && !strstr(sel, "ormat")))
            return 1;
    }
    return 0;
}

/* Method families that return +1 (Cocoa naming rules): the word at the start, not followed by
 * a lower-case letter. 2 for init (which also consumes its receiver). */
static int family(const char *sel) {
    while (*sel == '_') sel++;
    static const char *const fams[] = {"alloc", "new", "copy", "mutableCopy", "init", NULL};
    for (int i = 0; fams[i]; i++) {
        size_t n = strlen(fams[i]);
        if (strncmp(sel, fams[i], n) == 0 && !(sel[n] >= 'a' && sel[n] <= 'z'))
            return i == 4 ? 2 : 1;
    }
    return 0;
}

#define SLOT_BYTES 256
#define MAX_SEND_ARGS 24
typedef union slot {
    uint64_t u;
    double d;
    void *p;
    unsigned char big[SLOT_BYTES];
} slot;

typedef struct call {
    const char *sel;
    char what[320]; /* "-[Cls sel:]" */
    char why[512];
} call;

static int type_is_scalar(char c) { return c && strchr("cCsSiIlLqQfdB", c) != NULL; }

static int fail(call *c, int argn, const char *fmt, const char *a, const char *b) {
    char msg[400];
    snprintf(msg, sizeof msg, fmt, a, b);
    if (argn > 0) snprintf(c->why, sizeof c->why, "%s argument %d: %s", c->what, argn, msg);
    else snprintf(c->why, sizeof c->why, "%s: %s", c->what, msg);
    return -1;
}

static int to_c(lua_State *L, int idx, const char *type, void *dst, call *c, int argn);

/* A Lua table into the struct at p (fields by name when known, else by position). */
static int to_struct(lua_State *L, int idx, const char *type, unsigned char *dst, call *c, int argn) {
    const char *t = objc_enc_skip_quals(type);
    size_t size, align;
    char w[128];
    if (objc_enc_size(t, &size, &align) || size > SLOT_BYTES)
        return fail(c, argn, "struct %s is unsupported (no layout or larger than 256 bytes)",
                    objc_enc_words(t, w, sizeof w), NULL);
    if (!lua_istable(L, idx))
        return fail(c, argn, "expected a table for %s, got %s", objc_enc_words(t, w, sizeof w),
                    luaL_typename(L, idx));
    memset(dst, 0, size);
    const char *name = t + 1, *q = strchr(t, '=');
    size_t nlen = (size_t)(q - name);
    q++;
    size_t off = 0;
    for (int i = 0; *q != '}'; i++) {
        char fname[64] = "";
        if (*q == '"') {
            const char *e = strchr(q + 1, '"');
            snprintf(fname, sizeof fname, "%.*s", (int)(e - q - 1), q + 1);
            q = e + 1;
        } else if (objc_struct_field(name, nlen, i)) {
            snprintf(fname, sizeof fname, "%s", objc_struct_field(name, nlen, i));
        }
        if (*objc_enc_skip_quals(q) == '[')
            return fail(c, argn, "struct %s has an array member: not supported",
                        objc_enc_words(t, w, sizeof w), NULL);
        size_t fs, fa;
        objc_enc_size(q, &fs, &fa);
        off = (off + fa - 1) / fa * fa;
        int found = 0;
        if (fname[0]) found = lua_getfield(L, idx, fname) != LUA_TNIL;
        if (!found) {
            lua_pop(L, fname[0] ? 1 : 0);
            found = lua_rawgeti(L, idx, i + 1) != LUA_TNIL;
        }
        int rc = found ? to_c(L, lua_gettop(L), q, dst + off, c, argn) : 0;
        lua_pop(L, 1);
        if (!found)
            return fail(c, argn, "struct field %s missing", fname[0] ? fname : "(positional)", NULL);
        if (rc) return rc;
        off += fs;
        q = objc_enc_end(q);
    }
    return 0;
}

static int to_int(lua_State *L, int idx, char code, void *dst, call *c, int argn) {
    int isnum;
    lua_Integer v;
    if (lua_isboolean(L, idx) && strchr("cCB", code)) {
        v = lua_toboolean(L, idx);
    } else {
        v = lua_tointegerx(L, idx, &isnum);
        if (!isnum && lua_type(L, idx) == LUA_TNUMBER && code == 'Q') { /* up to 2^64 */
            lua_Number d = lua_tonumber(L, idx);
            if (d >= 0 && d < 18446744073709551616.0) {
                uint64_t u = (uint64_t)d;
                memcpy(dst, &u, 8);
                return 0;
            }
        }
        if (!isnum) {
            char w[64], got[64];
            if (lua_type(L, idx) == LUA_TNUMBER) snprintf(got, sizeof got, "%.14g", lua_tonumber(L, idx));
            else snprintf(got, sizeof got, "a %s", luaL_typename(L, idx));
            return fail(c, argn, "expected an integer (%s), got %s", objc_enc_words(&code, w, sizeof w), got);
        }
    }
    long long lo, hi = 0;
    unsigned long long uhi = 0;
    int uns = 0;
    switch (code) {
    case 'c': lo = -128; hi = 127; break;
    case 'C': uns = 1; uhi = 255; break;
    case 'B': uns = 1; uhi = 1; break;
    case 's': lo = -32768; hi = 32767; break;
    case 'S': uns = 1; uhi = 65535; break;
    case 'i': lo = INT32_MIN; hi = INT32_MAX; break;
    case 'I': uns = 1; uhi = UINT32_MAX; break;
#if defined(__APPLE__)
    case 'l': lo = INT32_MIN; hi = INT32_MAX; break;
    case 'L': uns = 1; uhi = UINT32_MAX; break;
#else
    case 'l': lo = INT64_MIN; hi = INT64_MAX; break;
    case 'L': uns = 1; uhi = UINT64_MAX; break;
#endif
    case 'q': lo = INT64_MIN; hi = INT64_MAX; break;
    default: uns = 1; uhi = UINT64_MAX; break; /* Q */
    }
    char num[32], w[64];
    snprintf(num, sizeof num, "%lld", (long long)v);
    if (uns ? (v < 0 || (unsigned long long)v > uhi) : (v < lo || v > hi))
        return fail(c, argn, "%s out of range for %s", num, objc_enc_words(&code, w, sizeof w));
    size_t size;
    objc_enc_size(&code, &size, NULL);
    switch (size) {
    case 1: { uint8_t x = (uint8_t)v; memcpy(dst, &x, 1); break; }
    case 2: { uint16_t x = (uint16_t)v; memcpy(dst, &x, 2); break; }
    case 4: { uint32_t x = (uint32_t)v; memcpy(dst, &x, 4); break; }
    default: { uint64_t x = (uint64_t)v; memcpy(dst, &x, 8); break; }
    }
    return 0;
}

/* A pointer-typed argument that is not an out-parameter. */
static int to_ptr(lua_State *L, int idx, const char *t, void **dst, call *c, int argn) {
    switch (lua_type(L, idx)) {
    case LUA_TNIL: *dst = NULL; return 0;
    case LUA_TLIGHTUSERDATA: *dst = lua_touserdata(L, idx); return 0;
    case LUA_TSTRING:
        if (t[0] == '*' || t[0] == 'r' || (t[0] == '^' && strchr("vcC", t[1]))) {
            *dst = (void *)lua_tostring(L, idx); /* the callee must not write into it */
            return 0;
        }
        break;
    case LUA_TUSERDATA: {
        objc_id o = to_obj(L, idx);
        if (o) { *dst = o; return 0; }
        tensor *tt = lane_totensor(L, idx);
        if (tt) {
            const char *p = objc_enc_skip_quals(t);
            void *surf = strncmp(p, "^{__IOSurface", 13) == 0 ? ane_storage_surface(tt->st) : NULL;
            *dst = surf ? surf : tensor_data(tt);
            return 0;
        }
        break;
    }
    default: break;
    }
    char w[128];
    return fail(c, argn, "expected a pointer (%s: light userdata, tensor, objc.null or nil), got %s",
                objc_enc_words(t, w, sizeof w), luaL_typename(L, idx));
}

static int to_c(lua_State *L, int idx, const char *type, void *dst, call *c, int argn) {
    const char *t = objc_enc_skip_quals(type);
    char why[256];
    char w[128];
    switch (t[0]) {
    case 'c': case 'C': case 's': case 'S': case 'i': case 'I': case 'l': case 'L': case 'q':
    case 'Q':
        return to_int(L, idx, t[0], dst, c, argn);
    case 'B':
        if (!lua_isboolean(L, idx) && !lua_isinteger(L, idx))
            return fail(c, argn, "expected a boolean (BOOL), got %s", luaL_typename(L, idx), NULL);
        *(unsigned char *)dst = (unsigned char)(lua_isboolean(L, idx) ? lua_toboolean(L, idx)
                                                                       : lua_tointeger(L, idx) != 0);
        return 0;
    case 'f': case 'd':
        if (lua_type(L, idx) != LUA_TNUMBER)
            return fail(c, argn, "expected a number (%s), got %s", t[0] == 'f' ? "float" : "double",
                        luaL_typename(L, idx));
        if (t[0] == 'f') { float f = (float)lua_tonumber(L, idx); memcpy(dst, &f, sizeof f); }
        else { double d = lua_tonumber(L, idx); memcpy(dst, &d, sizeof d); }
        return 0;
    case '@': {
        objc_id o = NULL;
        if (!lua_isnil(L, idx) && !(o = to_ns(L, idx, 0, why, sizeof why)))
            return fail(c, argn, "cannot convert to id: %s", why, NULL);
        memcpy(dst, &o, sizeof o);
        return 0;
    }
    case '#': {
        objc_id o = NULL;
        if (lua_type(L, idx) == LUA_TSTRING) {
            o = (objc_id)A->getClass(lua_tostring(L, idx));
            if (!o) return fail(c, argn, "no class named '%s'", lua_tostring(L, idx), NULL);
        } else if (!lua_isnil(L, idx)) {
            o = to_obj(L, idx);
            if (!o || !objc_is_class(o))
                return fail(c, argn, "expected a class or class name (Class), got %s",
                            o ? cls_name(o) : luaL_typename(L, idx), NULL);
        }
        memcpy(dst, &o, sizeof o);
        return 0;
    }
    case ':': {
        objc_sel s = NULL;
        if (lua_type(L, idx) == LUA_TSTRING) s = objc_selector(lua_tostring(L, idx));
        else if (!lua_isnil(L, idx))
            return fail(c, argn, "expected a selector name (SEL), got %s", luaL_typename(L, idx), NULL);
        memcpy(dst, &s, sizeof s);
        return 0;
    }
    case '*': case '^': case '[': {
        void *p;
        if (to_ptr(L, idx, type, &p, c, argn)) return -1;
        memcpy(dst, &p, sizeof p);
        return 0;
    }
    case '{':
        return to_struct(L, idx, type, dst, c, argn);
    default: {
        const char *e = objc_enc_end(t);
        char enc[64];
        snprintf(enc, sizeof enc, "%.*s", (int)(e ? e - t : (long)strlen(t)), t);
        return fail(c, argn, "unsupported type %s (encoding %s)", objc_enc_words(t, w, sizeof w), enc);
    }
    }
}

/* Push the C value at src of type t. Objects are retained unless owned (+1). */
static void push_c(lua_State *L, const char *type, const void *src, int owned) {
    const char *t = objc_enc_skip_quals(type);
    switch (t[0]) {
    case 'c': { int8_t v; memcpy(&v, src, 1); lua_pushinteger(L, v); return; }
    case 'C': { uint8_t v; memcpy(&v, src, 1); lua_pushinteger(L, v); return; }
    case 'B': { uint8_t v; memcpy(&v, src, 1); lua_pushboolean(L, v != 0); return; }
    case 's': { int16_t v; memcpy(&v, src, 2); lua_pushinteger(L, v); return; }
    case 'S': { uint16_t v; memcpy(&v, src, 2); lua_pushinteger(L, v); return; }
    case 'i': { int32_t v; memcpy(&v, src, 4); lua_pushinteger(L, v); return; }
    case 'I': { uint32_t v; memcpy(&v, src, 4); lua_pushinteger(L, v); return; }
    case 'l': case 'L': case 'q': case 'Q': {
        size_t size;
        objc_enc_size(t, &size, NULL);
        if (size == 4) {
            if (t[0] == 'l') { int32_t v; memcpy(&v, src, 4); lua_pushinteger(L, v); }
            else { uint32_t v; memcpy(&v, src, 4); lua_pushinteger(L, v); }
        } else {
            int64_t v;
            memcpy(&v, src, 8);
            lua_pushinteger(L, (lua_Integer)v); /* unsigned above 2^63 wraps: Lua integers are signed */
        }
        return;
    }
    case 'f': { float v; memcpy(&v, src, 4); lua_pushnumber(L, v); return; }
    case 'd': { double v; memcpy(&v, src, 8); lua_pushnumber(L, v); return; }
    case '@': case '#': {
        objc_id o;
        memcpy(&o, src, sizeof o);
        push_obj(L, o, !owned);
        return;
    }
    case ':': {
        objc_sel s;
        memcpy(&s, src, sizeof s);
        if (s) lua_pushstring(L, A->sel_getName(s));
        else lua_pushnil(L);
        return;
    }
    case '*': {
        const char *s;
        memcpy(&s, src, sizeof s);
        if (s) lua_pushstring(L, s);
        else lua_pushnil(L);
        return;
    }
    case '^': {
        void *p;
        memcpy(&p, src, sizeof p);
        if (p) lua_pushlightuserdata(L, p);
        else lua_pushnil(L);
        return;
    }
    case '{': {
        const char *name = t + 1, *q = strchr(t, '=');
        size_t nlen = (size_t)(q - name), off = 0;
        q++;
        lua_newtable(L);
        for (int i = 0; *q != '}'; i++) {
            char fname[64] = "";
            if (*q == '"') {
                const char *e = strchr(q + 1, '"');
                snprintf(fname, sizeof fname, "%.*s", (int)(e - q - 1), q + 1);
                q = e + 1;
            } else if (objc_struct_field(name, nlen, i)) {
                snprintf(fname, sizeof fname, "%s", objc_struct_field(name, nlen, i));
            }
            size_t fs, fa;
            objc_enc_size(q, &fs, &fa);
            off = (off + fa - 1) / fa * fa;
            if (*objc_enc_skip_quals(q) == '[') lua_pushboolean(L, 0); /* array member: not converted */
            else push_c(L, q, (const unsigned char *)src + off, 0);
            if (fname[0]) lua_setfield(L, -2, fname);
            else lua_rawseti(L, -2, i + 1);
            off += fs;
            q = objc_enc_end(q);
        }
        return;
    }
    default:
        lua_pushnil(L);
        return;
    }
}

/* An argument the caller may leave nil (or off the end) to receive a value: a pointer to id
 * (NSError **) or to a scalar. */
static int is_out(const char *type) {
    const char *t = objc_enc_skip_quals(type);
    if (t[0] != '^') return 0;
    const char *p = objc_enc_skip_quals(t + 1);
    return p[0] == '@' || type_is_scalar(p[0]);
}

/* The exception's "Name: reason" (or its description) into buf. */
static void exception_text(objc_id exc, char *buf, size_t n) {
    if (!exc) {
        snprintf(buf, n, "(nil exception)");
        return;
    }
    objc_id name = send_id0(exc, "name"), reason = send_id0(exc, "reason");
    const char *ns = name ? utf8(name) : NULL, *rs = reason ? utf8(reason) : NULL;
    if (ns || rs) snprintf(buf, n, "%s (%s): %s", ns ? ns : "?", cls_name(exc), rs ? rs : "(no reason)");
    else {
        char d[256];
        snprintf(buf, n, "%s: %s", cls_name(exc), describe(exc, d, sizeof d));
    }
}

/* objc.send(recv, sel, args at first..top). Pushes the results. */
static int do_send(lua_State *L, objc_id recv, const char *sel, int first) {
    rt(L);
    call c;
    c.sel = sel;
    int nlua = lua_gettop(L) - first + 1;
    if (!recv) return luaL_error(L, "objc: message '%s' sent to nil", sel);
    int is_cls = objc_is_class(recv);
    snprintf(c.what, sizeof c.what, "%c[%s %s]", is_cls ? '+' : '-', cls_name(recv), sel);
    if (is_variadic(sel))
        return luaL_error(L, "objc: %s is variadic; the bridge cannot call variadic methods "
                             "(build the value another way, e.g. objc.ns)", c.what);
    objc_sel s = objc_selector(sel);
    objc_method m = objc_method_for(recv, s);
    if (!m) return luaL_error(L, "objc: %s: %s does not respond to %s", c.what,
                              is_cls ? "the class" : "the object", sel);
    const char *enc = A->method_getTypeEncoding(m);
    int nargs = objc_enc_nargs(enc);
    if (nargs < 0) return luaL_error(L, "objc: %s: malformed type encoding %s", c.what, enc ? enc : "");
    if (nargs > MAX_SEND_ARGS)
        return luaL_error(L, "objc: %s takes %d arguments (the bridge supports %d)", c.what, nargs,
                          MAX_SEND_ARGS);
    int nout_tail = 0; /* trailing out-parameters that may be left off */
    for (int i = nargs - 1; i >= 0 && is_out(objc_enc_type(enc, 3 + i)); i--) nout_tail++;
    if (nlua > nargs || nlua < nargs - nout_tail) {
        char w[512];
        return luaL_error(L, "objc: %s takes %d argument%s (%s), got %d", c.what, nargs,
                          nargs == 1 ? "" : "s", objc_enc_method_words(enc, sel, w, sizeof w), nlua);
    }
    const char *rtype = objc_enc_type(enc, 0);
    size_t rsize = 0;
    if (objc_enc_skip_quals(rtype)[0] != 'v' &&
        (objc_enc_size(rtype, &rsize, NULL) || rsize > SLOT_BYTES)) {
        char w[128];
        return luaL_error(L, "objc: %s: unsupported return type %s", c.what,
                          objc_enc_words(rtype, w, sizeof w));
    }
    slot args[MAX_SEND_ARGS], outs[MAX_SEND_ARGS], ret;
    void *argp[MAX_SEND_ARGS];
    int out_of[MAX_SEND_ARGS];
    memset(&ret, 0, sizeof ret);

    void *pool = objc_pool_push();
    int rc = 0;
    for (int i = 0; i < nargs && !rc; i++) {
        const char *t = objc_enc_type(enc, 3 + i);
        int idx = first + i;
        out_of[i] = 0;
        argp[i] = &args[i];
        if (is_out(t) && (i >= nlua || lua_isnil(L, idx))) {
            memset(&outs[i], 0, sizeof outs[i]);
            args[i].p = &outs[i];
            out_of[i] = 1;
            continue;
        }
        if (i >= nlua) rc = fail(&c, i + 1, "missing", NULL, NULL);
        else rc = to_c(L, idx, t, &args[i], &c, i + 1);
    }
    int fam = family(sel);
    objc_id exc = NULL;
    if (!rc) {
        if (fam == 2 && !is_cls) objc_retain(recv); /* init consumes its receiver */
        objc_imp imp = objc_imp_for(recv, s);
        char why[256];
        if (!imp) rc = fail(&c, 0, "no implementation", NULL, NULL);
        else if (objc_send(recv, s, imp, enc, argp, &ret, &exc, why, sizeof why)) {
            if (exc || strcmp(why, "Objective-C exception") == 0) {
                char et[400];
                exception_text(exc, et, sizeof et);
                rc = fail(&c, 0, "Objective-C exception %s", et, NULL);
            } else {
                rc = fail(&c, 0, "%s", why, NULL);
            }
        }
    }
    if (rc) {
        objc_pool_pop(pool);
        return luaL_error(L, "objc: %s", c.why);
    }
    int nres = 0;
    luaL_checkstack(L, nargs + 2, "objc: too many results");
    if (objc_enc_skip_quals(rtype)[0] != 'v') {
        push_c(L, rtype, &ret, fam != 0);
        nres++;
    } else {
        lua_pushnil(L); /* a void method gives nil, so out-parameters keep their positions */
        nres++;
    }
    for (int i = 0; i < nargs; i++)
        if (out_of[i]) {
            push_c(L, objc_enc_skip_quals(objc_enc_type(enc, 3 + i)) + 1, &outs[i], 0);
            nres++;
        }
    objc_pool_pop(pool);
    if (objc_enc_skip_quals(rtype)[0] == 'v' && nres == 1) return 0;
    return nres;
}

/* The receiver at idx: an object, a class, or a class name. */
static objc_id check_recv(lua_State *L, int idx) {
    rt(L);
    if (lua_type(L, idx) == LUA_TSTRING) {
        objc_class c = A->getClass(lua_tostring(L, idx));
        if (!c) luaL_argerror(L, idx, lua_pushfstring(L, "no class named '%s'", lua_tostring(L, idx)));
        return (objc_id)c;
    }
    if (lua_isnil(L, idx)) return NULL;
    return check_obj(L, idx);
}

static int l_send(lua_State *L) {
    objc_id recv = check_recv(L, 1);
    const char *sel = luaL_checkstring(L, 2);
    return do_send(L, recv, sel, 3);
}

static int o_call(lua_State *L) {
    objc_id recv = check_obj(L, 1);
    const char *sel = luaL_checkstring(L, 2);
    return do_send(L, recv, sel, 3);
}

/* ---- module functions ---- */
static int l_available(lua_State *L) {
    char why[512];
    if (!objc_open(why, sizeof why)) {
        lua_pushboolean(L, 0);
        lua_pushstring(L, why);
        return 2;
    }
    lua_pushboolean(L, 1);
    if (!objc_can_send()) {
        lua_pushstring(L, "messages unavailable: built without libffi");
        return 2;
    }
    return 1;
}

static int l_load(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    char why[600];
    if (objc_load_image(path, why, sizeof why)) {
        lua_pushnil(L);
        lua_pushstring(L, why);
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* The ANE backend's framework (the private framework on macOS, the stand-in elsewhere). */
static int l_framework(lua_State *L) {
    char why[600];
    const char *fw = ob_framework_path(); /* NULL off macOS unless $ANE_FRAMEWORK_PATH is set */
    if (!fw) {
        lua_pushnil(L);
        lua_pushstring(L, "no ANE framework: " ANE_NO_FRAMEWORK_WHY "; set ANE_FRAMEWORK_PATH "
                          "(the stand-in: build/standin/libANEStandin.so) to load one");
        return 2;
    }
    if (!objc_open(why, sizeof why) || objc_load_image(fw, why, sizeof why)) {
        lua_pushnil(L);
        lua_pushstring(L, why);
        return 2;
    }
    lua_pushstring(L, fw);
    return 1;
}

static int l_images(lua_State *L) {
    lua_newtable(L);
    for (int i = 0; objc_image(i); i++) {
        lua_pushstring(L, objc_image(i));
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int l_class(lua_State *L) {
    const char *name = luaL_checkstring(L, 1);
    char why[512];
    if (!A && !(A = objc_open(why, sizeof why))) {
        lua_pushnil(L);
        lua_pushstring(L, why);
        return 2;
    }
    objc_class c = A->getClass(name);
    if (!c) {
        lua_pushnil(L);
        lua_pushfstring(L, "no class named '%s' in the loaded images", name);
        return 2;
    }
    push_obj(L, (objc_id)c, 0);
    return 1;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int l_classes(lua_State *L) {
    const char *prefix = luaL_optstring(L, 1, "");
    rt(L);
    int n = A->getClassList(NULL, 0);
    objc_class *list = calloc((size_t)(n > 0 ? n : 1), sizeof *list);
    const char **names = calloc((size_t)(n > 0 ? n : 1), sizeof *names);
    if (!list || !names) {
        free(list), free(names);
        return luaL_error(L, "objc: out of memory");
    }
    n = A->getClassList(list, n);
    int k = 0;
    size_t pl = strlen(prefix);
    for (int i = 0; i < n; i++) {
        const char *nm = A->class_getName(list[i]);
        if (nm && strncmp(nm, prefix, pl) == 0) names[k++] = nm;
    }
    qsort(names, (size_t)k, sizeof *names, cmp_str);
    lua_createtable(L, k, 0);
    for (int i = 0; i < k; i++) {
        lua_pushstring(L, names[i]);
        lua_rawseti(L, -2, i + 1);
    }
    free(list);
    free(names);
    return 1;
}

static int l_ns(lua_State *L) {
    rt(L);
    luaL_checkany(L, 1);
    if (lua_isnil(L, 1)) return luaL_argerror(L, 1, "nil has no Foundation value");
    char why[256];
    void *pool = objc_pool_push();
    objc_id o = to_ns(L, 1, 0, why, sizeof why);
    if (o) objc_retain(o);
    objc_pool_pop(pool);
    if (!o) return luaL_argerror(L, 1, why);
    push_obj(L, o, 0);
    return 1;
}

static int ns_as(lua_State *L, int kind) {
    rt(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    char why[256];
    void *pool = objc_pool_push();
    objc_id o = to_ns_kind(L, 1, 0, kind, why, sizeof why);
    if (o) objc_retain(o);
    objc_pool_pop(pool);
    if (!o) return luaL_argerror(L, 1, why);
    push_obj(L, o, 0);
    return 1;
}
static int l_array(lua_State *L) { return ns_as(L, 1); }
static int l_dict(lua_State *L) { return ns_as(L, 2); }

static int l_lua(lua_State *L) {
    rt(L);
    if (lua_isnil(L, 1)) return 1;
    objc_id o = check_obj(L, 1);
    void *pool = objc_pool_push();
    push_lua(L, o, 0);
    objc_pool_pop(pool);
    return 1;
}

static int pool_done(lua_State *L, int status) {
    objc_pool_pop(lua_touserdata(L, 1));
    if (status != LUA_OK) return lua_error(L);
    return lua_gettop(L) - 1;
}

static int l_autoreleasepool(lua_State *L) {
    rt(L);
    luaL_checktype(L, 1, LUA_TFUNCTION);
    int nargs = lua_gettop(L) - 1;
    lua_pushlightuserdata(L, objc_pool_push());
    lua_insert(L, 1); /* pool, fn, args... */
    int status = lua_pcall(L, nargs, LUA_MULTRET, 0);
    return pool_done(L, status);
}

static int l_decode(lua_State *L) {
    const char *enc = luaL_checkstring(L, 1);
    const char *sel = luaL_optstring(L, 2, NULL);
    char w[1024];
    const char *end = objc_enc_next(enc);
    if (!end || (*end && objc_enc_nargs(enc) < 0)) lua_pushfstring(L, "malformed encoding %s", enc);
    else if (!*end && !sel) lua_pushstring(L, objc_enc_words(enc, w, sizeof w)); /* one type */
    else lua_pushstring(L, objc_enc_method_words(enc, sel, w, sizeof w));
    return 1;
}

static int l_decode_property(lua_State *L) {
    char w[1024];
    lua_pushstring(L, objc_prop_words(luaL_checkstring(L, 1), w, sizeof w));
    return 1;
}

/* objc.wrap(lightuserdata) -> the object at that address, retained (for pointers from C). */
static int l_wrap(lua_State *L) {
    rt(L);
    if (lua_isnil(L, 1)) return 1;
    luaL_checktype(L, 1, LUA_TLIGHTUSERDATA);
    push_obj(L, lua_touserdata(L, 1), 1);
    return 1;
}

/* ---- methods ---- */
static int o_responds(lua_State *L) {
    objc_id o = check_obj(L, 1);
    lua_pushboolean(L, objc_method_for(o, objc_selector(luaL_checkstring(L, 2))) != NULL);
    return 1;
}

static int o_name(lua_State *L) {
    lua_pushstring(L, cls_name(check_obj(L, 1)));
    return 1;
}

static int o_class(lua_State *L) {
    objc_id o = check_obj(L, 1);
    push_obj(L, objc_is_class(o) ? o : (objc_id)objc_class_of(o), 0);
    return 1;
}

static int o_is_class(lua_State *L) {
    lua_pushboolean(L, objc_is_class(check_obj(L, 1)));
    return 1;
}

static int o_superclass(lua_State *L) {
    objc_class c = check_cls(L, 1);
    objc_class s = A->class_getSuperclass(c);
    if (s) push_obj(L, (objc_id)s, 0);
    else lua_pushnil(L);
    return 1;
}

static int sort_by_name(lua_State *L) {
    /* table.sort(t, function(a, b) return a.name < b.name end) without touching globals */
    int n = (int)lua_rawlen(L, -1);
    for (int i = 2; i <= n; i++) /* insertion sort: method lists are small */
        for (int j = i; j > 1; j--) {
            lua_rawgeti(L, -1, j - 1);
            lua_getfield(L, -1, "name");
            lua_rawgeti(L, -3, j);
            lua_getfield(L, -1, "name");
            int gt = strcmp(lua_tostring(L, -3), lua_tostring(L, -1)) > 0;
            if (!gt) {
                lua_pop(L, 4);
                break;
            }
            lua_remove(L, -3);
            lua_remove(L, -1);          /* t, a, b */
            lua_rawseti(L, -3, j - 1);  /* t[j-1] = b */
            lua_rawseti(L, -2, j);      /* t[j] = a */
        }
    return 1;
}

static void add_methods(lua_State *L, objc_class c, int is_class_side, int *k) {
    unsigned n = 0;
    objc_method *ms = A->class_copyMethodList(c, &n);
    char w[1024];
    for (unsigned i = 0; i < n; i++) {
        const char *name = A->sel_getName(A->method_getName(ms[i]));
        const char *enc = A->method_getTypeEncoding(ms[i]);
        lua_createtable(L, 0, 4);
        lua_pushstring(L, name);
        lua_setfield(L, -2, "name");
        lua_pushstring(L, enc ? enc : "");
        lua_setfield(L, -2, "encoding");
        lua_pushstring(L, objc_enc_method_words(enc, name, w, sizeof w));
        lua_setfield(L, -2, "type");
        lua_pushboolean(L, is_class_side);
        lua_setfield(L, -2, "class");
        lua_rawseti(L, -2, ++*k);
    }
    free(ms);
}

static int o_methods(lua_State *L) {
    objc_class c = check_cls(L, 1);
    int side = 0; /* 0 instance, 1 class */
    if (!lua_isnoneornil(L, 2)) {
        static const char *const known[] = {"class", NULL};
        lane_checkopts(L, 2, known);
        lua_getfield(L, 2, "class");
        side = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    lua_newtable(L);
    int k = 0;
    add_methods(L, side ? objc_class_of((objc_id)c) : c, side, &k);
    return sort_by_name(L);
}

static int o_properties(lua_State *L) {
    objc_class c = check_cls(L, 1);
    unsigned n = 0;
    objc_prop *ps = A->class_copyPropertyList(c, &n);
    char w[512];
    lua_newtable(L);
    for (unsigned i = 0; i < n; i++) {
        const char *attrs = A->property_getAttributes(ps[i]);
        lua_createtable(L, 0, 3);
        lua_pushstring(L, A->property_getName(ps[i]));
        lua_setfield(L, -2, "name");
        lua_pushstring(L, attrs ? attrs : "");
        lua_setfield(L, -2, "attributes");
        lua_pushstring(L, objc_prop_words(attrs, w, sizeof w));
        lua_setfield(L, -2, "type");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    free(ps);
    return sort_by_name(L);
}

static int o_ivars(lua_State *L) {
    objc_class c = check_cls(L, 1);
    unsigned n = 0;
    objc_ivar *vs = A->class_copyIvarList(c, &n);
    char w[512];
    lua_newtable(L);
    for (unsigned i = 0; i < n; i++) {
        const char *enc = A->ivar_getTypeEncoding(vs[i]);
        lua_createtable(L, 0, 4);
        lua_pushstring(L, A->ivar_getName(vs[i]));
        lua_setfield(L, -2, "name");
        lua_pushstring(L, enc ? enc : "");
        lua_setfield(L, -2, "encoding");
        lua_pushstring(L, enc ? objc_enc_words(enc, w, sizeof w) : "?");
        lua_setfield(L, -2, "type");
        lua_pushinteger(L, (lua_Integer)A->ivar_getOffset(vs[i]));
        lua_setfield(L, -2, "offset");
        lua_rawseti(L, -2, (lua_Integer)i + 1); /* declaration order, not sorted */
    }
    free(vs);
    return 1;
}

static int o_protocols(lua_State *L) {
    objc_class c = check_cls(L, 1);
    unsigned n = 0;
    objc_proto *ps = A->class_copyProtocolList(c, &n);
    lua_newtable(L);
    for (unsigned i = 0; i < n; i++) {
        lua_createtable(L, 0, 1);
        lua_pushstring(L, A->protocol_getName(ps[i]));
        lua_setfield(L, -2, "name");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    free(ps);
    return sort_by_name(L);
}

static int o_ptr(lua_State *L) {
    lua_pushlightuserdata(L, check_obj(L, 1));
    return 1;
}

static int o_tostring(lua_State *L) {
    lobj *u = luaL_checkudata(L, 1, LANE_OBJC);
    if (!u->o) {
        lua_pushliteral(L, "objc.id (closed)");
        return 1;
    }
    char buf[1024];
    void *pool = objc_pool_push();
    describe(u->o, buf, sizeof buf);
    objc_pool_pop(pool);
    lua_pushstring(L, buf);
    return 1;
}

static int o_eq(lua_State *L) {
    lobj *a = luaL_testudata(L, 1, LANE_OBJC), *b = luaL_testudata(L, 2, LANE_OBJC);
    lua_pushboolean(L, a && b && a->o == b->o);
    return 1;
}

/* ---- opener ---- */
void lane_open_objc(lua_State *L) {
    static const luaL_Reg methods[] = {
        {"call", o_call},           {"responds", o_responds},     {"name", o_name},
        {"class", o_class},         {"is_class", o_is_class},     {"superclass", o_superclass},
        {"methods", o_methods},     {"properties", o_properties}, {"ivars", o_ivars},
        {"protocols", o_protocols}, {"lua", l_lua},               {"ptr", o_ptr},
        {"close", o_close},         {NULL, NULL}};
    static const luaL_Reg meta[] = {
        {"__gc", o_close}, {"__close", o_close}, {"__tostring", o_tostring}, {"__eq", o_eq},
        {NULL, NULL}};
    lane_newclass(L, LANE_OBJC, methods, meta);
    static const luaL_Reg fns[] = {
        {"available", l_available}, {"load", l_load},       {"framework", l_framework},
        {"images", l_images},       {"class", l_class},     {"classes", l_classes},
        {"send", l_send},           {"ns", l_ns},           {"lua", l_lua},
        {"array", l_array},         {"dict", l_dict},
        {"autoreleasepool", l_autoreleasepool},             {"decode", l_decode},
        {"decode_property", l_decode_property},
        {"wrap", l_wrap},           {NULL, NULL}};
    lua_newtable(L);
    luaL_setfuncs(L, fns, 0);
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
    lua_setfield(L, -2, "objc");
}

/* For other bindings (k:objc() in l_ane_backend.c): push an object, retained. */
void lane_pushobjc(lua_State *L, void *obj) {
    rt(L);
    push_obj(L, obj, 1);
}
