/* l_ane_backend.c - ANE-specific calls for research scripts, and kernel-owned I/O tensors.
 *
 * Adds methods to ane.Kernel (l_backend.c owns the type; its opener must run first):
 *   k:new_input(i|name), k:new_output(i|name) -> ane.Tensor on the backend's own storage
 *       (IOSurfaces on the ane backend: write/read from Lua without copies; any kernel's output
 *       tensor may be passed as another kernel's input)
 *   k:ane_info()                -> {hex=, dir=, state=, program_handle=, qos=, path=, ...}
 *   k:ane_configure{qos=, path="standard"|"realtime", perf_mask=, io_order="declaration"|"name"|"size"}
 *   k:reload_weights(name, bytes_or_tensor)   the weight-reload experiment (6.6)
 *   k:perf_stats()              -> {eval_ns=, hw_ns=|nil, evals=}
 *   k:objc()                    -> {model=, request=|nil, inputs={IOSurfaceRef...}, outputs={...}}
 *       the framework objects as ane.objc values (request and surfaces after the first eval)
 * and module functions:
 *   ane.ane_framework()         -> {path=, standin=, available=, why=, compiles=, info=}
 *                                  (path nil when none is set: off macOS without
 *                                  $ANE_FRAMEWORK_PATH; standin true on the project's stand-in)
 * Indices are 1-based. */
#include <stdlib.h>
#include <string.h>

#include "../backend/ane/ane_backend.h"
#include "../backend/ane/objc_bridge.h"
#include "../mil/mil.h"
#include "lane.h"

static const char *const path_names[] = {"standard", "realtime", NULL};

static kernel *check_ane(lua_State *L, int idx) {
    kernel *k = lane_checkkernel(L, idx);
    if (!ane_is_kernel(k))
        luaL_argerror(L, idx, lua_pushfstring(L, "needs a kernel of the ane backend, got one of '%s'",
                                              k->be ? k->be->name : "?"));
    return k;
}

/* The ane kernel at 1 and its facts into f; raises on either failing. */
static kernel *check_facts(lua_State *L, ane_kernel_facts *f) {
    kernel *k = check_ane(L, 1);
    ane_error e;
    err_clear(&e);
    if (ane_kernel_facts_get(k, f, &e)) lane_error(L, &e);
    return k;
}

/* Position (1-based) or name -> 0-based index into io[n]. */
static int io_index(lua_State *L, int idx, const kernel_io *io, int n, const char *what) {
    if (lua_type(L, idx) == LUA_TSTRING) {
        const char *name = lua_tostring(L, idx);
        for (int i = 0; i < n; i++)
            if (strcmp(io[i].name, name) == 0) return i;
        return luaL_argerror(L, idx, lua_pushfstring(L, "the kernel has no %s named '%s'", what, name));
    }
    lua_Integer i = luaL_optinteger(L, idx, 1);
    if (i < 1 || i > n)
        return luaL_argerror(L, idx, lua_pushfstring(L, "%s %d out of range (kernel has %d)", what,
                                                     (int)i, n));
    return (int)i - 1;
}

static int new_io(lua_State *L, int is_output) {
    kernel *k = lane_checkkernel(L, 1);
    const kernel_io *io = is_output ? k->out : k->in;
    int n = is_output ? k->nout : k->nin;
    int i = io_index(L, 2, io, n, is_output ? "output" : "input");
    lane_tensor *t = lane_pushtensor(L); /* empty until filled */
    ane_error e;
    err_clear(&e);
    int rc = k->be->alloc_io ? k->be->alloc_io(k, is_output, i, &t->t, &e)
                             : tensor_init(&t->t, io[i].dt, io[i].rank, io[i].shape, &e);
    if (rc) return lane_error(L, &e);
    lane_gcstep(L);
    return 1;
}

static int k_new_input(lua_State *L) { return new_io(L, 0); }
static int k_new_output(lua_State *L) { return new_io(L, 1); }

static int k_ane_info(lua_State *L) {
    ane_kernel_facts f;
    kernel *k = check_facts(L, &f);
    const struct { const char *key; lua_Integer v; } ints[] = {
        {"procedure", f.procedure},
        {"qos", f.qos},
        {"compile_number", f.compile_number},
        {"state", (lua_Integer)f.state},
        {"program_handle", (lua_Integer)f.program_handle},
        {"perf_mask", f.perf_mask},
        {"direct_inputs", f.direct_inputs},
        {"direct_outputs", f.direct_outputs},
        {"evals", f.evals},
    };
    lua_createtable(L, 0, 16);
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        lua_pushinteger(L, ints[i].v);
        lua_setfield(L, -2, ints[i].key);
    }
    lua_pushstring(L, f.hex);
    lua_setfield(L, -2, "hex");
    lua_pushstring(L, f.dir);
    lua_setfield(L, -2, "dir");
    lua_pushstring(L, path_names[f.path]);
    lua_setfield(L, -2, "path");
    lua_pushstring(L, path_names[f.last_path]);
    lua_setfield(L, -2, "last_path");
    lua_pushboolean(L, k->loaded);
    lua_setfield(L, -2, "loaded");
    /* request indices: io_order (unless the model described its own), where they came from, and
     * the index of each declared input and output (1-based lists of 0-based indices) */
    if (strcmp(f.io_source, "description") != 0) {
        lua_pushstring(L, ane_io_order_name(f.io_order));
        lua_setfield(L, -2, "io_order");
    }
    lua_pushstring(L, f.io_source);
    lua_setfield(L, -2, "io_source");
    for (int side = 0; side < 2; side++) {
        int n = side ? k->nout : k->nin;
        lua_createtable(L, n, 0);
        for (int i = 0; i < n && i < 64; i++) {
            lua_pushinteger(L, side ? f.out_index[i] : f.in_index[i]);
            lua_rawseti(L, -2, i + 1);
        }
        lua_setfield(L, -2, side ? "output_indices" : "input_indices");
    }
    return 1;
}

static int k_perf_stats(lua_State *L) {
    ane_kernel_facts f;
    check_facts(L, &f);
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, (lua_Integer)f.last_eval_ns);
    lua_setfield(L, -2, "eval_ns");
    if (f.have_hw_ns) {
        lua_pushinteger(L, (lua_Integer)f.last_hw_ns);
        lua_setfield(L, -2, "hw_ns");
    }
    lua_pushinteger(L, f.evals);
    lua_setfield(L, -2, "evals");
    return 1;
}

/* Option `key` of the options table at 2: absent (returns 0, *out untouched) or an integer
 * 0..max (stored, returns 1). */
static int opt_uint(lua_State *L, const char *key, lua_Integer max, unsigned *out) {
    if (lua_getfield(L, 2, key) == LUA_TNIL) {
        lua_pop(L, 1);
        return 0;
    }
    int isint;
    lua_Integer v = lua_tointegerx(L, -1, &isint);
    if (!isint || v < 0 || v > max)
        luaL_argerror(L, 2, lua_pushfstring(L, "option '%s' must be an integer 0..%d", key, (int)max));
    lua_pop(L, 1);
    *out = (unsigned)v;
    return 1;
}

static int k_ane_configure(lua_State *L) {
    kernel *k = check_ane(L, 1);
    static const char *const known[] = {"qos", "path", "perf_mask", "io_order", NULL};
    luaL_checktype(L, 2, LUA_TTABLE);
    lane_checkopts(L, 2, known);
    ane_kernel_opts o = {0};
    o.set_qos = opt_uint(L, "qos", 63, &o.qos);
    if (lua_getfield(L, 2, "path") != LUA_TNIL) {
        const char *p = lua_tostring(L, -1);
        int found = -1;
        for (int i = 0; p && path_names[i]; i++)
            if (strcmp(p, path_names[i]) == 0) found = i;
        if (found < 0 || lua_type(L, -1) != LUA_TSTRING)
            luaL_argerror(L, 2, "option 'path' must be \"standard\" or \"realtime\"");
        o.set_path = 1;
        o.path = (ane_eval_path)found;
    }
    lua_pop(L, 1);
    o.set_perf_mask = opt_uint(L, "perf_mask", 0xff, &o.perf_mask);
    if (lua_getfield(L, 2, "io_order") != LUA_TNIL) {
        if (lua_type(L, -1) != LUA_TSTRING || ane_io_order_parse(lua_tostring(L, -1), &o.io_order) != 0)
            luaL_argerror(L, 2, "option 'io_order' must be \"declaration\", \"name\" or \"size\"");
        o.set_io_order = 1;
    }
    lua_pop(L, 1);
    ane_error e;
    err_clear(&e);
    if (ane_kernel_configure(k, &o, &e)) return lane_error(L, &e);
    lua_settop(L, 1);
    return 1;
}

/* k:reload_weights(name, data): data is the weight file's bytes (string) or an ane.Tensor, which
 * is written as a one-tensor blob (metadata at 64, the layout BLOBFILE(offset = 64) expects). */
static int k_reload_weights(lua_State *L) {
    kernel *k = check_ane(L, 1);
    const char *name = luaL_checkstring(L, 2);
    ane_error e;
    err_clear(&e);
    if (lua_type(L, 3) == LUA_TSTRING) {
        size_t n;
        const char *d = lua_tolstring(L, 3, &n);
        if (ane_kernel_reload_weights(k, name, (const uint8_t *)d, n, &e)) return lane_error(L, &e);
    } else {
        tensor *t = lane_totensor(L, 3);
        if (!t) return luaL_typeerror(L, 3, "string or ane.Tensor");
        if (storage_lock(t->st, 1, &e)) return lane_error(L, &e);
        uint8_t *data = NULL;
        size_t n = 0;
        uint64_t off;
        blob_writer *w = blob_writer_new(&e);
        int rc = w ? blob_writer_add(w, t, &off, &e) : e.code;
        if (w && rc) blob_writer_free(w);
        else if (w) rc = blob_writer_finish(w, &data, &n, &e); /* frees w */
        storage_unlock(t->st, 1);
        if (rc) return lane_error(L, &e);
        rc = ane_kernel_reload_weights(k, name, data, n, &e);
        free(data);
        if (rc) return lane_error(L, &e);
    }
    lua_settop(L, 1);
    return 1;
}

static int l_ane_framework(lua_State *L) {
    const backend *b = ane_backend();
    char why[512] = "", info[2048] = "";
    int ok = b->available(why, sizeof why);
    b->info(info, sizeof info);
    lua_createtable(L, 0, 5);
    lua_pushstring(L, ob_framework_path()); /* nil when there is none */
    lua_setfield(L, -2, "path");
    lua_pushboolean(L, ob_is_standin());
    lua_setfield(L, -2, "standin");
    lua_pushboolean(L, ok);
    lua_setfield(L, -2, "available");
    if (!ok) {
        lua_pushstring(L, why);
        lua_setfield(L, -2, "why");
    }
    lua_pushinteger(L, ane_framework_compiles());
    lua_setfield(L, -2, "compiles");
    lua_pushstring(L, info);
    lua_setfield(L, -2, "info");
    return 1;
}

static int k_objc(lua_State *L) {
    kernel *k = check_ane(L, 1);
    ane_kernel_objects o;
    ane_error e;
    err_clear(&e);
    if (ane_kernel_objects_get(k, &o, &e)) return lane_error(L, &e);
    lua_createtable(L, 0, 4);
    lane_pushobjc(L, o.model);
    lua_setfield(L, -2, "model");
    lane_pushobjc(L, o.request);
    lua_setfield(L, -2, "request");
    lua_createtable(L, o.ninputs, 0);
    for (int i = 0; i < o.ninputs; i++) {
        lua_pushlightuserdata(L, o.surfaces[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "inputs");
    lua_createtable(L, o.nsurfaces - o.ninputs, 0);
    for (int i = o.ninputs; i < o.nsurfaces; i++) {
        lua_pushlightuserdata(L, o.surfaces[i]);
        lua_rawseti(L, -2, i - o.ninputs + 1);
    }
    lua_setfield(L, -2, "outputs");
    return 1;
}

static const luaL_Reg kernel_methods[] = {
    {"new_input", k_new_input},   {"new_output", k_new_output},   {"ane_info", k_ane_info},
    {"perf_stats", k_perf_stats}, {"ane_configure", k_ane_configure},
    {"reload_weights", k_reload_weights}, {"objc", k_objc}, {NULL, NULL},
};

void lane_open_ane_backend(lua_State *L) {
    /* ane.Kernel's __index is a closure whose first upvalue is its methods table. */
    if (luaL_getmetatable(L, LANE_KERNEL) == LUA_TTABLE) {       /* [mod, mt] */
        lua_getfield(L, -1, "__index");                          /* [mod, mt, index] */
        if (lua_type(L, -1) == LUA_TTABLE) {
            luaL_setfuncs(L, kernel_methods, 0);
        } else if (lua_iscfunction(L, -1) && lua_getupvalue(L, -1, 1)) { /* [.., index, methods] */
            if (lua_type(L, -1) == LUA_TTABLE) luaL_setfuncs(L, kernel_methods, 0);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);                                               /* [mod] */
    lua_pushcfunction(L, l_ane_framework);
    lua_setfield(L, -2, "ane_framework");
}
