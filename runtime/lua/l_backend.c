/* l_backend.c - ane.compile, the ane.Kernel userdata, ane.backend/ane.backends, compile budget.
 *
 *   local k <close> = ane.compile(mil_text_or_program, {precision = "fp32", strict = true})
 *   ane.compile(text, {lenient = true})  -- text parsed with the lenient forms (mil.h)
 *   k:load()
 *   local y = k:eval{x}                 -- inputs by position, or {x = x} by name
 *   k:eval({x}, {y})                    -- write into caller tensors (no allocation)
 *
 * A kernel userdata is created closed (k == NULL) before the backend compiles, so an error at any
 * step frees everything through __gc. Descriptions (k.inputs, k.outputs) are built once and kept
 * in the userdata's user value. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <time.h>
#include <unistd.h>

#ifdef ANE_ACCELERATE
#include <Accelerate/Accelerate.h>
#else
#include <cblas.h>
#endif

#include "../backend/cpu/cpu.h"
#include "../mil/mil.h"
#include "lane.h"

typedef struct lane_kernel {
    kernel *k;
    const backend *be;
} lane_kernel;

/* ---- kernels ---- */

static lane_kernel *tokud(lua_State *L, int idx) { return luaL_checkudata(L, idx, LANE_KERNEL); }

kernel *lane_checkkernel(lua_State *L, int idx) {
    lane_kernel *u = tokud(L, idx);
    if (!u->k) luaL_argerror(L, idx, "ane.Kernel is closed");
    return u->k;
}

kernel *lane_tokernel(lua_State *L, int idx) {
    lane_kernel *u = luaL_testudata(L, idx, LANE_KERNEL);
    return u && u->k ? u->k : NULL;
}

static void push_io(lua_State *L, const kernel_io *io, int n) {
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_createtable(L, 0, 3);
        lua_pushstring(L, io[i].name);
        lua_setfield(L, -2, "name");
        lua_pushstring(L, dtype_name(io[i].dt));
        lua_setfield(L, -2, "dtype");
        lua_createtable(L, io[i].rank, 0);
        for (int d = 0; d < io[i].rank; d++) {
            lua_pushinteger(L, io[i].shape[d]);
            lua_rawseti(L, -2, d + 1);
        }
        lua_setfield(L, -2, "shape");
        lua_rawseti(L, -2, i + 1);
    }
}

static void kernel_class(lua_State *L);

/* Push an empty (closed) kernel userdata with its metatable. */
static lane_kernel *newkud(lua_State *L) {
    lane_kernel *u = lua_newuserdatauv(L, sizeof *u, 1); /* [u] */
    u->k = NULL;
    u->be = NULL;
    if (luaL_getmetatable(L, LANE_KERNEL) == LUA_TNIL) {
        lua_pop(L, 1);
        kernel_class(L);
        luaL_getmetatable(L, LANE_KERNEL);
    }
    lua_setmetatable(L, -2);
    return u;
}

/* Every compile warning goes through Lua's warning system once, when the kernel first reaches
 * Lua (shown with `ane -W` or warn("@on"); an embedding host sees them in its lua_setwarnf). */
static void emit_warnings(lua_State *L, const kernel *k) {
    for (const char *s = k->warnings, *nl; (nl = strchr(s, '\n')); s = nl + 1) {
        lua_pushfstring(L, "ane: %s kernel: %s", k->be ? k->be->name : "?",
                        lua_pushlstring(L, s, (size_t)(nl - s)));
        lua_warning(L, lua_tostring(L, -1), 0);
        lua_pop(L, 2);
    }
}

/* Fill the user value {inputs=, outputs=, backend=, warnings=} of the kernel at top, and emit
 * its warnings. */
static void set_descr(lua_State *L, const kernel *k) {
    lua_createtable(L, 0, 3);
    push_io(L, k->in, k->nin);
    lua_setfield(L, -2, "inputs");
    push_io(L, k->out, k->nout);
    lua_setfield(L, -2, "outputs");
    lua_pushstring(L, k->be ? k->be->name : "?");
    lua_setfield(L, -2, "backend");
    lua_newtable(L); /* warnings: one string per line of k->warnings */
    for (const char *s = k->warnings, *nl; (nl = strchr(s, '\n')); s = nl + 1) {
        lua_pushlstring(L, s, (size_t)(nl - s));
        lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    }
    lua_setfield(L, -2, "warnings");
    lua_setiuservalue(L, -2, 1);
    emit_warnings(L, k);
}

void lane_pushkernel(lua_State *L, kernel *k) {
    lane_kernel *u = newkud(L);
    u->k = k;
    u->be = k ? k->be : NULL;
    if (k) set_descr(L, k);
}

static void kernel_release(lane_kernel *u) {
    if (u->k) {
        const backend *be = u->be ? u->be : u->k->be;
        if (be && be->free) be->free(u->k);
        u->k = NULL;
    }
}

static int k_gc(lua_State *L) {
    kernel_release(tokud(L, 1));
    return 0;
}

static int k_close(lua_State *L) {
    lane_kernel *u = tokud(L, 1);
    if (!u->k) return luaL_error(L, "ane.Kernel is already closed");
    kernel_release(u);
    return 0;
}

static int k_tostring(lua_State *L) {
    lane_kernel *u = tokud(L, 1);
    if (!u->k) {
        lua_pushliteral(L, "ane.Kernel (closed)");
        return 1;
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, "ane.Kernel ");
    luaL_addstring(&b, u->be ? u->be->name : "?");
    luaL_addstring(&b, u->k->loaded ? " (loaded)" : " (not loaded)");
    for (int side = 0; side < 2; side++) {
        const kernel_io *io = side ? u->k->out : u->k->in;
        int n = side ? u->k->nout : u->k->nin;
        luaL_addstring(&b, side ? " -> (" : " (");
        for (int i = 0; i < n; i++) {
            char sh[96];
            if (i) luaL_addstring(&b, ", ");
            luaL_addstring(&b, io[i].name);
            luaL_addstring(&b, ": ");
            luaL_addstring(&b, dtype_name(io[i].dt));
            luaL_addstring(&b, shape_str(io[i].rank, io[i].shape, sh, sizeof sh));
        }
        luaL_addstring(&b, ")");
    }
    luaL_pushresult(&b);
    return 1;
}

static int k_load(lua_State *L) {
    lane_kernel *u = tokud(L, 1);
    if (!u->k) return luaL_error(L, "load: ane.Kernel is closed");
    ane_error e;
    err_clear(&e);
    if (u->be->load(u->k, &e) != 0) return lane_error(L, &e);
    lua_settop(L, 1);
    return 1;
}

static int k_unload(lua_State *L) {
    lane_kernel *u = tokud(L, 1);
    if (!u->k) return luaL_error(L, "unload: ane.Kernel is closed");
    ane_error e;
    err_clear(&e);
    if (u->k->loaded && u->be->unload(u->k, &e) != 0) return lane_error(L, &e);
    lua_settop(L, 1);
    return 1;
}

#define MAX_IO_FAST 16

/* "x (fp16 [1, 4]), y (fp32 [2])": what the kernel takes on one side, for error messages. */
static const char *io_list(lua_State *L, const kernel_io *io, int n) {
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 0; i < n; i++) {
        char sh[96];
        lua_pushfstring(L, "%s%s (%s %s)", i ? ", " : "", io[i].name, dtype_name(io[i].dt),
                        shape_str(io[i].rank, io[i].shape, sh, sizeof sh));
        luaL_addvalue(&b);
    }
    if (n == 0) luaL_addstring(&b, "nothing");
    luaL_pushresult(&b);
    return lua_tostring(L, -1);
}

/* Collect n tensors for side (inputs/outputs) from the table at idx, by position or by name.
 * Raises with the argument position on anything wrong: a count other than the kernel's, a name
 * it does not have, a missing or closed tensor. */
static void collect(lua_State *L, int idx, const kernel_io *io, int n, tensor **ts, const char *what,
                    int allow_missing) {
    int by_pos = lua_geti(L, idx, 1) != LUA_TNIL;
    lua_pop(L, 1);
    if (by_pos) {
        lua_Integer given = luaL_len(L, idx);
        if (given != n)
            luaL_argerror(L, idx, lua_pushfstring(L, "%I %s%s given, the kernel takes %d: %s", given, what,
                                                  given == 1 ? "" : "s", n, io_list(L, io, n)));
    } else {
        /* reject names the kernel does not have */
        int count = 0;
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            lua_pop(L, 1);
            int known = 0;
            if (lua_type(L, -1) == LUA_TSTRING) {
                const char *key = lua_tostring(L, -1);
                for (int i = 0; i < n && !known; i++) known = strcmp(key, io[i].name) == 0;
            }
            if (!known) {
                const char *key = luaL_tolstring(L, -1, NULL);
                luaL_argerror(L, idx, lua_pushfstring(L, "the kernel has no %s named '%s' (it takes %s)", what, key,
                                                      io_list(L, io, n)));
            }
            count++;
        }
        (void)count;
    }
    for (int i = 0; i < n; i++) {
        int t = by_pos ? lua_geti(L, idx, i + 1) : lua_getfield(L, idx, io[i].name);
        if (t == LUA_TNIL && allow_missing) {
            ts[i] = NULL;
            lua_pop(L, 1);
            continue;
        }
        tensor *x = lane_totensor(L, -1);
        if (!x) {
            if (luaL_testudata(L, -1, LANE_TENSOR))
                luaL_argerror(L, idx, lua_pushfstring(L, "%s '%s' is a closed ane.Tensor", what, io[i].name));
            if (t == LUA_TNIL)
                luaL_argerror(L, idx, lua_pushfstring(L, "%s '%s' is missing (the kernel takes %s)", what,
                                                      io[i].name, io_list(L, io, n)));
            luaL_argerror(L, idx, lua_pushfstring(L, "%s '%s' must be an ane.Tensor, got %s", what,
                                                  io[i].name, luaL_typename(L, -1)));
        }
        ts[i] = x;
        lua_pop(L, 1);
    }
}

/* kernel:eval(inputs [, outputs]) -> output tensors (multiple values, in output order) */
static int k_eval(lua_State *L) {
    lane_kernel *u = tokud(L, 1);
    if (!u->k) return luaL_error(L, "eval: ane.Kernel is closed");
    kernel *k = u->k;
    if (!k->loaded) return luaL_error(L, "eval: kernel is not loaded (call kernel:load())");
    tensor *fin[MAX_IO_FAST], *fout[MAX_IO_FAST];
    tensor **in = fin, **out = fout;
    if (k->nin > MAX_IO_FAST || k->nout > MAX_IO_FAST) { /* GC-owned scratch: freed even on error */
        lua_settop(L, 3);
        in = lua_newuserdatauv(L, sizeof(tensor *) * (size_t)(k->nin + k->nout + 1), 0);
        out = in + k->nin;
    }
    /* inputs: a table, or a single tensor for a one-input kernel */
    if (lua_type(L, 2) == LUA_TTABLE) {
        collect(L, 2, k->in, k->nin, in, "input", 0);
    } else if (k->nin == 1 && lane_totensor(L, 2)) {
        in[0] = lane_totensor(L, 2);
    } else if (lane_totensor(L, 2)) {
        return luaL_argerror(L, 2, lua_pushfstring(L, "one tensor given, the kernel takes %d inputs: %s", k->nin,
                                                   io_list(L, k->in, k->nin)));
    } else {
        return luaL_typeerror(L, 2, "table of ane.Tensor");
    }
    int given = !lua_isnoneornil(L, 3);
    if (given) {
        if (lua_type(L, 3) == LUA_TTABLE) collect(L, 3, k->out, k->nout, out, "output", 0);
        else if (k->nout == 1 && lane_totensor(L, 3)) out[0] = lane_totensor(L, 3);
        else if (lane_totensor(L, 3))
            return luaL_argerror(L, 3, lua_pushfstring(L, "one tensor given, the kernel has %d outputs: %s", k->nout,
                                                       io_list(L, k->out, k->nout)));
        else return luaL_typeerror(L, 3, "table of ane.Tensor");
    }
    int base = lua_gettop(L);
    ane_error e;
    err_clear(&e);
    if (!given) {
        luaL_checkstack(L, k->nout + 2, "too many outputs");
        for (int i = 0; i < k->nout; i++) {
            lane_tensor *t = lane_pushtensor(L);
            int rc = u->be->alloc_io ? u->be->alloc_io(k, 1, i, &t->t, &e)
                                     : tensor_init(&t->t, k->out[i].dt, k->out[i].rank, k->out[i].shape, &e);
            if (rc) return lane_error(L, &e);
            out[i] = &t->t;
        }
        lane_gcstep(L);
    }
    if (u->be->eval(k, in, out, &e) != 0) return lane_error(L, &e);
    if (given) {
        luaL_checkstack(L, k->nout + 2, "too many outputs");
        if (lua_type(L, 3) != LUA_TTABLE) {
            lua_pushvalue(L, 3);
        } else {
            int by_pos = lua_geti(L, 3, 1) != LUA_TNIL;
            lua_pop(L, 1);
            for (int i = 0; i < k->nout; i++)
                if (by_pos) lua_geti(L, 3, i + 1);
                else lua_getfield(L, 3, k->out[i].name);
        }
    }
    return lua_gettop(L) - base;
}

/* __index: methods first, then the descriptions in the user value. */
static int k_index(lua_State *L) {
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
    lua_pop(L, 1);
    lane_kernel *u = tokud(L, 1);
    if (lua_type(L, 2) == LUA_TSTRING) {
        const char *key = lua_tostring(L, 2);
        if (strcmp(key, "loaded") == 0) {
            lua_pushboolean(L, u->k && u->k->loaded);
            return 1;
        }
        if (strcmp(key, "closed") == 0) {
            lua_pushboolean(L, u->k == NULL);
            return 1;
        }
        if (lua_getiuservalue(L, 1, 1) == LUA_TTABLE) {
            lua_pushvalue(L, 2);
            lua_rawget(L, -2);
            return 1;
        }
    }
    lua_pushnil(L);
    return 1;
}

/* kernel:stats() -> {arena_bytes=, const_bytes=, nodes=, values=} (cpu kernels), or nil */
static int k_stats(lua_State *L) {
    kernel *k = lane_checkkernel(L, 1);
    cpu_stats st;
    if (cpu_kernel_stats(k, &st) != 0) {
        lua_pushnil(L);
        return 1;
    }
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, (lua_Integer)st.arena_bytes);
    lua_setfield(L, -2, "arena_bytes");
    lua_pushinteger(L, (lua_Integer)st.const_bytes);
    lua_setfield(L, -2, "const_bytes");
    lua_pushinteger(L, st.nodes);
    lua_setfield(L, -2, "nodes");
    lua_pushinteger(L, st.values);
    lua_setfield(L, -2, "values");
    return 1;
}

static const luaL_Reg kernel_methods[] = {
    {"load", k_load}, {"eval", k_eval}, {"unload", k_unload}, {"close", k_close},
    {"stats", k_stats}, {NULL, NULL},
};

static void kernel_class(lua_State *L) {
    luaL_newmetatable(L, LANE_KERNEL);      /* [mt] */
    lua_pushcfunction(L, k_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, k_gc);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, k_tostring);
    lua_setfield(L, -2, "__tostring");
    luaL_newlib(L, kernel_methods);         /* [mt, methods] */
    lane_name_methods(L, LANE_KERNEL);
    lua_pushcclosure(L, k_index, 1);        /* [mt, index] */
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
}

/* ---- programs ---- */

/* How many :program() calls may lead from the argument to a program. The chain is driven by Lua
 * values (a method may return another such value), so it is bounded: without a limit it recursed
 * in C until the process died. */
#define PROGRAM_CHAIN_MAX 16

/* Parse (if text; lenient: mil_parse_opts), check and resolve the program at idx; returns a new
 * reference. Errors name argument `arg` (the position the user wrote, however deep the
 * :program() chain went). */
static mil_program *checkprogram(lua_State *L, int idx, int arg, const char *model_path, int lenient, int depth) {
    idx = lua_absindex(L, idx);
    ane_error e;
    err_clear(&e);
    mil_program *p = NULL;
    if (lua_type(L, idx) == LUA_TSTRING) {
        size_t len;
        const char *text = lua_tolstring(L, idx, &len);
        mil_parse_opts po = {lenient};
        if (mil_parse(text, len, NULL, &po, &p, &e) != 0) lane_error(L, &e);
    } else if ((p = lane_toprogram(L, idx)) != NULL) { /* ane.Program, or a builder's _prog */
        mil_program_retain(p);
    } else if (lua_type(L, idx) == LUA_TTABLE || lua_type(L, idx) == LUA_TUSERDATA) {
        /* a builder (or anything) with a :program() method: use what it returns */
        if (depth >= PROGRAM_CHAIN_MAX)
            luaL_argerror(L, arg, lua_pushfstring(L, ":program() returned a value with its own :program() "
                                                     "more than %d times in a row", PROGRAM_CHAIN_MAX));
        luaL_checkstack(L, 3, "program chain");
        lua_getfield(L, idx, "program");
        if (!lua_isfunction(L, -1))
            luaL_argerror(L, arg, depth ? ":program() returned a value that is not MIL text, an ane.Program "
                                          "or a builder with :program()"
                                        : "expected MIL text, an ane.Program or a builder with :program()");
        lua_pushvalue(L, idx);
        lua_call(L, 1, 1);
        if (lua_rawequal(L, -1, idx)) luaL_argerror(L, arg, ":program() returned itself");
        p = checkprogram(L, -1, arg, model_path, lenient, depth + 1);
        lua_pop(L, 1);
        return p;
    } else if (depth) {
        luaL_argerror(L, arg, lua_pushfstring(L, ":program() returned a %s, expected MIL text or a program",
                                              luaL_typename(L, idx)));
    } else {
        luaL_typeerror(L, arg, "MIL text or program");
    }
    /* from here p is ours: release before raising */
    if (!p->checked && mil_check(p, NULL, &e) != 0) goto fail;
    if (!p->resolved && mil_resolve_weights(p, model_path, &e) != 0) goto fail;
    return p;
fail:
    mil_program_release(p);
    lane_error(L, &e);
    return NULL;
}

/* The model_path option, when the table after the program argument has one. */
static const char *model_path_at(lua_State *L, int idx) {
    if (lua_type(L, idx) != LUA_TTABLE) return NULL;
    lua_getfield(L, idx, "model_path");
    const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    lua_pop(L, 1); /* the string stays reachable from the options table */
    return s;
}

mil_program *lane_checkprogram(lua_State *L, int idx) {
    idx = lua_absindex(L, idx);
    return checkprogram(L, idx, idx, model_path_at(L, idx + 1), lane_optlenient(L, idx + 1), 0);
}

static const char *const compile_keys[] = {"function", "precision", "strict", "backend", "model_path",
                                           "chip", "threads", "qos", "lenient", NULL};

static const char *optstring(lua_State *L, int idx, const char *key) {
    int t = lua_getfield(L, idx, key);
    const char *s = NULL;
    if (t == LUA_TSTRING) s = lua_tostring(L, -1);
    else if (t != LUA_TNIL)
        luaL_argerror(L, idx, lua_pushfstring(L, "option '%s' must be a string, got %s", key, luaL_typename(L, -1)));
    lua_pop(L, 1);
    return s;
}

void lane_checkcompileopts(lua_State *L, int idx, compile_opts *o, const backend **be) {
    compile_opts_default(o);
    *be = NULL;
    if (!lua_isnoneornil(L, idx)) {
        idx = lua_absindex(L, idx);
        lane_checkopts(L, idx, compile_keys);
        o->function = optstring(L, idx, "function");
        const char *prec = optstring(L, idx, "precision");
        if (prec) {
            if (strcmp(prec, "fp16") == 0) o->precision = PREC_FP16;
            else if (strcmp(prec, "fp32") == 0) o->precision = PREC_FP32;
            else luaL_argerror(L, idx, lua_pushfstring(L, "precision must be 'fp16' or 'fp32', got '%s'", prec));
        }
        int t = lua_getfield(L, idx, "strict");
        if (t == LUA_TBOOLEAN) o->strict = lua_toboolean(L, -1);
        else if (t != LUA_TNIL) luaL_argerror(L, idx, "option 'strict' must be a boolean");
        lua_pop(L, 1);
        o->chip = optstring(L, idx, "chip");
        (void)optstring(L, idx, "model_path");
        (void)lane_optlenient(L, idx); /* checked here; lane_checkprogram applies it */
        t = lua_getfield(L, idx, "threads");
        if (t != LUA_TNIL) {
            int isint;
            lua_Integer n = lua_tointegerx(L, -1, &isint);
            if (!isint || n < 0 || n > 256) luaL_argerror(L, idx, "option 'threads' must be an integer 0..256");
            o->threads = (int)n;
        }
        lua_pop(L, 1);
        t = lua_getfield(L, idx, "qos");
        if (t != LUA_TNIL) {
            int isint;
            lua_Integer n = lua_tointegerx(L, -1, &isint);
            if (!isint || n < 0) luaL_argerror(L, idx, "option 'qos' must be a non-negative integer");
            o->qos = (unsigned)n;
        }
        lua_pop(L, 1);
        const char *name = optstring(L, idx, "backend");
        if (name) {
            *be = backend_get(name);
            ane_error e;
            if (!*be) luaL_argerror(L, idx, (backend_unknown(&e, name, NULL), lua_pushstring(L, e.msg)));
        }
    }
    if (!*be) {
        ane_error e;
        if (backend_default_ex(be, &e) != 0) lane_error(L, &e);
    }
}

/* ane.compile(program, opts) -> ane.Kernel (not loaded) */
static int l_compile(lua_State *L) {
    compile_opts o;
    const backend *be;
    lane_checkcompileopts(L, 2, &o, &be);
    char why[256] = "";
    if (be->available && !be->available(why, sizeof why))
        return luaL_error(L, "compile: backend '%s' is not available here: %s", be->name, why);
    lane_kernel *u = newkud(L);            /* closed until the compile succeeds */
    int kidx = lua_gettop(L);
    mil_program *p = lane_checkprogram(L, 1);
    ane_error e;
    err_clear(&e);
    kernel *k = NULL;
    int rc = be->compile(p, &o, &k, &e);
    mil_program_release(p);                /* the kernel retains what it needs */
    if (rc != 0) return lane_error(L, &e);
    u->k = k;
    u->be = be;
    lua_pushvalue(L, kidx);
    set_descr(L, k);
    lane_gcstep(L);
    return 1;
}

/* ane.backend([name]) -> name of the default backend (setting it first when name is given) */
static int l_backend(lua_State *L) {
    if (!lua_isnoneornil(L, 1)) {
        const char *name = luaL_checkstring(L, 1);
        const backend *b = backend_get(name);
        ane_error e;
        if (!b) return luaL_argerror(L, 1, (backend_unknown(&e, name, NULL), lua_pushstring(L, e.msg)));
        char why[256] = "";
        if (b->available && !b->available(why, sizeof why))
            return luaL_error(L, "backend '%s' is not available here: %s", name, why);
        backend_set_default(b); /* the runtime's own state: never the environment (settings.h) */
    }
    const backend *d;
    ane_error e;
    if (backend_default_ex(&d, &e) != 0) return lane_error(L, &e);
    lua_pushstring(L, d->name);
    return 1;
}

/* ane.backends() -> { {name=, label=, available=, why=, description=}, ... }; label is the name
 * as reports must show it ("ane (stand-in at PATH)" on the stand-in, else the name). */
static int l_backends(lua_State *L) {
    int n = backend_count();
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        const backend *b = backend_at(i);
        char why[256] = "";
        int ok = !b->available || b->available(why, sizeof why);
        lua_createtable(L, 0, 4);
        lua_pushstring(L, b->name);
        lua_setfield(L, -2, "name");
        lua_pushboolean(L, ok);
        lua_setfield(L, -2, "available");
        if (!ok) {
            lua_pushstring(L, why);
            lua_setfield(L, -2, "why");
        }
        lua_pushstring(L, b->description ? b->description : "");
        lua_setfield(L, -2, "description");
        char label[1200];
        lua_pushstring(L, b->label && b->label(label, sizeof label) ? label : b->name);
        lua_setfield(L, -2, "label");
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* ane.set_compile_budget(n) (n < 0: unlimited); ane.compile_budget() -> limit, used */
static int l_set_compile_budget(lua_State *L) {
    lua_Integer n = luaL_checkinteger(L, 1);
    if (n > 1000000000) n = 1000000000;
    backend_set_compile_budget((int)(n < 0 ? -1 : n));
    return 0;
}

static int l_compile_budget(lua_State *L) {
    lua_pushinteger(L, backend_compile_budget());
    lua_pushinteger(L, backend_compiles_used());
    return 2;
}

/* ---- benchmark helpers (scripts/bench.lua): timings measured in C, without Lua in the loop ---- */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ane.bench_sgemm(m, n, k, reps [, batch]) -> seconds per call of `batch` row-major sgemms
 * C[m,n] = A[m,k] B[k,n] on fresh buffers (the direct-BLAS baseline for the GEMM kernels). */
static int l_bench_sgemm(lua_State *L) {
    lua_Integer m = luaL_checkinteger(L, 1), n = luaL_checkinteger(L, 2), k = luaL_checkinteger(L, 3);
    lua_Integer reps = luaL_checkinteger(L, 4), batch = luaL_optinteger(L, 5, 1);
    luaL_argcheck(L, m > 0 && m <= 65536, 1, "m out of range");
    luaL_argcheck(L, n > 0 && n <= 65536, 2, "n out of range");
    luaL_argcheck(L, k > 0 && k <= 65536, 3, "k out of range");
    luaL_argcheck(L, reps > 0, 4, "reps must be positive");
    luaL_argcheck(L, batch > 0 && batch <= 4096, 5, "batch out of range");
    size_t na = (size_t)(m * k * batch), nb = (size_t)(k * n * batch), nc = (size_t)(m * n * batch);
    float *buf = lua_newuserdatauv(L, (na + nb + nc) * sizeof(float), 0); /* GC-owned */
    float *a = buf, *b = a + na, *c = b + nb;
    for (size_t i = 0; i < na + nb; i++) buf[i] = (float)((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
    double best = 1e30;
#if !defined(ANE_ACCELERATE) && defined(OPENBLAS_VERSION)
    /* the baseline is OpenBLAS as a program would call it: on all its threads (ane keeps it at
     * one, its pool splitting the GEMMs; cpu_util.c) */
    int blas_old = openblas_get_num_threads();
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    openblas_set_num_threads(ncpu > 0 ? (int)ncpu : 1);
#endif
    for (lua_Integer r = 0; r < reps; r++) {
        double t0 = now_s();
        for (lua_Integer i = 0; i < batch; i++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)n, (int)k, 1.0f,
                        a + i * m * k, (int)k, b + i * k * n, (int)n, 0.0f, c + i * m * n, (int)n);
        double dt = now_s() - t0;
        if (dt < best) best = dt;
    }
#if !defined(ANE_ACCELERATE) && defined(OPENBLAS_VERSION)
    openblas_set_num_threads(blas_old);
#endif
    lua_pushnumber(L, best);
    return 1;
}

/* ane.bench_eval(kernel, inputs, outputs, reps) -> best, mean seconds per eval, called from C. */
static int l_bench_eval(lua_State *L) {
    lane_kernel *u = tokud(L, 1);
    if (!u->k) return luaL_argerror(L, 1, "ane.Kernel is closed");
    kernel *k = u->k;
    luaL_checktype(L, 2, LUA_TTABLE);
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_Integer reps = luaL_checkinteger(L, 4);
    luaL_argcheck(L, reps > 0, 4, "reps must be positive");
    if (k->nin > MAX_IO_FAST || k->nout > MAX_IO_FAST) return luaL_error(L, "too many inputs for bench_eval");
    tensor *in[MAX_IO_FAST], *out[MAX_IO_FAST];
    collect(L, 2, k->in, k->nin, in, "input", 0);
    collect(L, 3, k->out, k->nout, out, "output", 0);
    ane_error e;
    err_clear(&e);
    double best = 1e30, start = now_s();
    for (lua_Integer r = 0; r < reps; r++) {
        double t0 = now_s();
        if (u->be->eval(k, in, out, &e) != 0) return lane_error(L, &e);
        double dt = now_s() - t0;
        if (dt < best) best = dt;
    }
    lua_pushnumber(L, best);
    lua_pushnumber(L, (now_s() - start) / (double)reps);
    return 2;
}

/* ane.sleep(seconds): block the calling thread (nanosleep; no fork, unlike os.execute). */
static int l_sleep(lua_State *L) {
    lua_Number s = luaL_checknumber(L, 1);
    luaL_argcheck(L, s >= 0 && s <= 86400, 1, "seconds must be in [0, 86400]");
    struct timespec ts = {(time_t)s, (long)((s - (lua_Number)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    return 0;
}

/* ane.clock() -> monotonic seconds (wall time, for benchmarks). */
static int l_clock(lua_State *L) {
    lua_pushnumber(L, now_s());
    return 1;
}

static const luaL_Reg funcs[] = {
    {"bench_sgemm", l_bench_sgemm},
    {"sleep", l_sleep},
    {"bench_eval", l_bench_eval},
    {"clock", l_clock},
    {"now", l_clock}, /* the name `ane mil run` looks for */
    {"compile", l_compile},
    {"backend", l_backend},
    {"backends", l_backends},
    {"set_compile_budget", l_set_compile_budget},
    {"compile_budget", l_compile_budget},
    {NULL, NULL},
};

void lane_open_backend(lua_State *L) {
    backend_register_builtin();
    /* An $ANE_BACKEND that names no backend is refused here, at `require "ane"`, instead of
     * quietly running on the cpu (a default chosen by name since then wins over it). */
    const backend *d;
    ane_error e;
    if (backend_default_ex(&d, &e) != 0) lane_error(L, &e);
    kernel_class(L);
    luaL_setfuncs(L, funcs, 0);
}
