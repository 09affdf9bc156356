/* embed.c - the public embedding API (ane.h): a runtime is one lua_State plus its last error.
 *
 * Everything that can raise (opening the libraries, paths, running code) happens inside
 * lua_pcall, so an allocation failure anywhere ends as an error status, never as a panic. */
#include "ane.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../backend/backend.h"
#include "../core/settings.h"
#include "../lua/lane.h"
#include "host.h"

#define ANE_VERSION_STRING "0.1.0"

struct ane_runtime {
    lua_State *L;
    char *err;      /* last error (malloc'd), NULL if none */
    char *open_err; /* the options were refused: every run fails with this (malloc'd) */
    int err_nomem;  /* the last error could not even be copied */
    int warn_on;    /* warnings are off until "@on", as in the stock interpreter */
    int warn_cont;  /* inside a multi-part warning */
};

static const char nomem_msg[] = "not enough memory";

const char *ane_version(void) { return ANE_VERSION_STRING; }

void host_preload(lua_State *L) {
    settings_get(); /* the environment, read once at start-up */
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_ane_core);
    lua_setfield(L, -2, "ane.core");
    lua_pop(L, 1);
}

int luaopen_ane(lua_State *L) {
    if (!L) return 0; /* nothing to push onto, nothing to report to */
    host_preload(L);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "ane");
    lua_call(L, 1, 1);
    return 1;
}

static void *default_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    (void)ud;
    (void)osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, nsize);
}

static int panic(lua_State *L) {
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "ane: unprotected error in the embedded runtime: %s\n", msg ? msg : "?");
    fflush(stderr);
    return 0; /* Lua aborts */
}

/* Lua's warning protocol (lua_setwarnf): control messages "@on"/"@off", pieces with tocont. */
static void warnf(void *ud, const char *msg, int tocont) {
    ane_runtime *rt = ud;
    if (!rt->warn_cont && !tocont && msg[0] == '@') {
        if (strcmp(msg, "@on") == 0) rt->warn_on = 1;
        else if (strcmp(msg, "@off") == 0) rt->warn_on = 0;
        return;
    }
    if (rt->warn_on) {
        if (!rt->warn_cont) fputs("Lua warning: ", stderr);
        fputs(msg, stderr);
        if (!tocont) fputc('\n', stderr);
        fflush(stderr);
    }
    rt->warn_cont = tocont;
}

int host_msghandler(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* {==================================================================
 * Loading source only
 *
 * A precompiled chunk is trusted code: Lua does not verify bytecode, and a damaged or crafted
 * .luac crashes any host. So by default the runtime loads Lua source only, wherever it loads a
 * chunk on the user's behalf: the host's scripts, -e and stdin, ane_run_file/ane_run_string,
 * `require` (the Lua-file searcher), and load/loadfile/dofile when no mode is given. An explicit
 * mode argument ("b", "bt") is the caller's own choice and is honoured.
 * =================================================================== */

static const char mode_key[] = "ane.load_mode";
static const char bytecode_hint[] =
    " (ane loads Lua source only; run `ane --bytecode` or set ane_options.allow_bytecode to allow "
    "precompiled chunks)";

const char *host_load_mode(lua_State *L) {
    lua_getfield(L, LUA_REGISTRYINDEX, mode_key);
    const char *m = lua_tostring(L, -1);
    lua_pop(L, 1); /* the registry keeps the string alive */
    return m ? m : "bt";
}

/* After a failed load: when the message is Lua's refusal of a binary chunk (which names no
 * file), say which file and how to allow it. */
static int hint_binary(lua_State *L, int status, const char *path) {
    if (status != LUA_OK && lua_type(L, -1) == LUA_TSTRING &&
        strncmp(lua_tostring(L, -1), "attempt to load a binary chunk", 30) == 0) {
        if (path) {
            lua_pushfstring(L, "%s: ", path);
            lua_insert(L, -2);
        }
        lua_pushstring(L, bytecode_hint);
        lua_concat(L, path ? 3 : 2);
    }
    return status;
}

int host_loadfile(lua_State *L, const char *path) {
    return hint_binary(L, luaL_loadfilex(L, path, host_load_mode(L)), path ? path : "stdin");
}

int host_loadbuffer(lua_State *L, const char *code, size_t len, const char *name) {
    return hint_binary(L, luaL_loadbufferx(L, code, len, name, host_load_mode(L)), NULL);
}

/* package.searchers[2] with the runtime's mode: the stock one loads binary chunks too. */
static int search_lua(lua_State *L) {
    const char *name = luaL_checkstring(L, 1);
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "searchpath");
    lua_pushstring(L, name);
    lua_getfield(L, -3, "path");
    if (lua_type(L, -1) != LUA_TSTRING) return luaL_error(L, "'package.path' must be a string");
    lua_call(L, 2, 2);
    if (lua_isnil(L, -2)) return 1; /* the "no file ..." list */
    const char *file = lua_tostring(L, -2);
    if (host_loadfile(L, file) != LUA_OK)
        return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s", name, file, lua_tostring(L, -1));
    lua_pushstring(L, file);
    return 2;
}

/* load(chunk [, name [, mode [, env]]]) and loadfile(file [, mode [, env]]) with the runtime's
 * mode when mode is absent or nil (env keeps its position: absent and nil differ for load). */
static int with_mode(lua_State *L, int mode_arg) {
    int n = lua_gettop(L);
    if (n < mode_arg) lua_settop(L, n = mode_arg);
    if (lua_isnil(L, mode_arg)) {
        lua_pushstring(L, host_load_mode(L));
        lua_replace(L, mode_arg);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, n, LUA_MULTRET);
    if (lua_gettop(L) == 2 && lua_isnil(L, 1)) hint_binary(L, LUA_ERRSYNTAX, NULL); /* nil, message */
    return lua_gettop(L);
}
static int load_t(lua_State *L) { return with_mode(L, 3); }
static int loadfile_t(lua_State *L) { return with_mode(L, 2); }

static int dofile_cont(lua_State *L, int status, lua_KContext k) {
    (void)status;
    (void)k;
    return lua_gettop(L) - 1;
}
static int dofile_t(lua_State *L) {
    const char *fname = luaL_optstring(L, 1, NULL);
    lua_settop(L, 1);
    if (host_loadfile(L, fname) != LUA_OK) return lua_error(L);
    lua_callk(L, 0, LUA_MULTRET, 0, dofile_cont);
    return dofile_cont(L, 0, 0);
}

void host_set_load_mode(lua_State *L, int allow_bytecode) {
    lua_pushstring(L, allow_bytecode ? "bt" : "t");
    lua_setfield(L, LUA_REGISTRYINDEX, mode_key);
    if (allow_bytecode) return; /* the stock functions already take both */
    static const struct { const char *name; lua_CFunction f; } wrapped[] = {{"load", load_t}, {"loadfile", loadfile_t}};
    for (size_t i = 0; i < sizeof wrapped / sizeof wrapped[0]; i++) {
        lua_getglobal(L, wrapped[i].name);
        lua_pushcclosure(L, wrapped[i].f, 1);
        lua_setglobal(L, wrapped[i].name);
    }
    lua_pushcfunction(L, dofile_t);
    lua_setglobal(L, "dofile");
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "searchers");
    lua_pushcfunction(L, search_lua);
    lua_rawseti(L, -2, 2);
    lua_pop(L, 2);
}

/* }================================================================== */

static void set_err(ane_runtime *rt, const char *msg) {
    free(rt->err);
    rt->err = NULL;
    rt->err_nomem = 0;
    if (msg && msg[0]) {
        rt->err = strdup(msg);
        rt->err_nomem = rt->err == NULL;
    }
}

static void prepend_path(lua_State *L, const char *field, const char *extra) {
    if (!extra || !extra[0]) return;
    lua_getglobal(L, "package");
    lua_getfield(L, -1, field);
    lua_pushfstring(L, "%s;%s", extra, lua_tostring(L, -1));
    lua_setfield(L, -3, field);
    lua_pop(L, 2);
}

/* Protected half of ane_open; argument 1 is the options (light userdata, may be NULL). */
static int open_state(lua_State *L) {
    const ane_options *o = lua_touserdata(L, 1);
    luaL_checkversion(L);
    luaL_openlibs(L);
    host_preload(L);
    host_set_load_mode(L, o && o->allow_bytecode);
    if (o) {
        prepend_path(L, "path", o->lua_path);
        prepend_path(L, "cpath", o->lua_cpath);
        if (o->backend) {
            lua_pushstring(L, o->backend);
            lua_setfield(L, LUA_REGISTRYINDEX, "ane.default_backend");
            const backend *b = backend_get(o->backend);
            if (!b) { /* refused, not quietly the cpu: ane_open keeps the message */
                ane_error e;
                backend_unknown(&e, o->backend, "ane_options.backend");
                lua_pushstring(L, e.msg);
                return 1;
            }
            /* The runtime's default is process-wide, as ane.backend(name) sets it. */
            backend_set_default(b);
        }
    }
    return 0; /* no refusal: the one result is nil */
}

ane_runtime *ane_open(const ane_options *opts) {
    settings_get(); /* the environment, read once at start-up */
    ane_runtime *rt = calloc(1, sizeof *rt);
    if (!rt) return NULL;
    int own = opts && opts->alloc;
    rt->L = lua_newstate(own ? opts->alloc : default_alloc, own ? opts->alloc_ud : NULL);
    if (!rt->L) {
        free(rt);
        return NULL;
    }
    lua_atpanic(rt->L, panic);
    lua_setwarnf(rt->L, warnf, rt);
    lua_pushcfunction(rt->L, open_state); /* no allocation: the stack has LUA_MINSTACK slots */
    lua_pushlightuserdata(rt->L, (void *)opts);
    if (lua_pcall(rt->L, 1, 1, 0) != LUA_OK) { /* only memory can fail here */
        lua_close(rt->L);
        free(rt);
        return NULL;
    }
    if (lua_type(rt->L, -1) == LUA_TSTRING) { /* the options were refused: why */
        rt->open_err = strdup(lua_tostring(rt->L, -1));
        set_err(rt, rt->open_err ? rt->open_err : nomem_msg);
        if (!rt->open_err) rt->open_err = strdup(nomem_msg);
        if (!rt->open_err) { /* cannot even say why */
            ane_close(rt);
            return NULL;
        }
    }
    lua_pop(rt->L, 1);
    return rt;
}

/* A NULL runtime or argument: the call fails with a message (when there is a runtime to hold it). */
static int refuse(ane_runtime *rt, const char *msg) {
    if (rt) set_err(rt, msg);
    return 1;
}

lua_State *ane_lua(ane_runtime *rt) { return rt ? rt->L : NULL; }

int ane_pcall(ane_runtime *rt, int nargs, int nresults) {
    if (!rt) return 1;
    lua_State *L = rt->L;
    if (nargs < 0 || lua_gettop(L) < nargs + 1)
        return refuse(rt, "ane_pcall: fewer values on the stack than a function and nargs arguments");
    if (rt->open_err) {
        lua_settop(L, lua_gettop(L) - nargs - 1);
        return refuse(rt, rt->open_err);
    }
    int base = lua_gettop(L) - nargs; /* the function */
    if (!lua_checkstack(L, 1)) {
        lua_settop(L, base - 1);
        set_err(rt, nomem_msg);
        return 1;
    }
    lua_pushcfunction(L, host_msghandler);
    lua_insert(L, base);
    int status = lua_pcall(L, nargs, nresults, base);
    if (status != LUA_OK) {
        /* Not lua_tostring: converting a number would allocate outside protection. */
        set_err(rt, lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
                    : status == LUA_ERRMEM               ? nomem_msg
                                                         : "(error object is not a string)");
        lua_settop(L, base - 1);
        return 1;
    }
    lua_remove(L, base);
    set_err(rt, NULL);
    return 0;
}

/* What to load, for the protected loader below. */
typedef struct chunk {
    const char *path;      /* a file, or NULL for code */
    const char *code;
    const char *name;
} chunk;

/* Protected: luaL_loadfile builds the chunk name with lua_pushfstring, which can raise. */
static int load_chunk(lua_State *L) {
    const chunk *c = lua_touserdata(L, 1);
    int status = c->path ? host_loadfile(L, c->path)
                         : host_loadbuffer(L, c->code, strlen(c->code), c->name);
    if (status != LUA_OK) return lua_error(L);
    return 1;
}

static int run_chunk(ane_runtime *rt, const chunk *c) {
    if (rt->open_err) return refuse(rt, rt->open_err);
    lua_State *L = rt->L;
    lua_pushcfunction(L, load_chunk);
    lua_pushlightuserdata(L, (void *)c);
    int status = lua_pcall(L, 1, 1, 0);
    if (status != LUA_OK) { /* a syntax error, a missing file, or memory */
        set_err(rt, lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : nomem_msg);
        lua_pop(L, 1);
        return 1;
    }
    return ane_pcall(rt, 0, 0);
}

int ane_run_file(ane_runtime *rt, const char *path) {
    if (!rt) return 1;
    if (!path) return refuse(rt, "ane_run_file: path is NULL");
    chunk c = {.path = path};
    return run_chunk(rt, &c);
}

int ane_run_string(ane_runtime *rt, const char *code, const char *chunkname) {
    if (!rt) return 1;
    if (!code) return refuse(rt, "ane_run_string: code is NULL");
    chunk c = {.code = code, .name = chunkname ? chunkname : "=(string)"};
    return run_chunk(rt, &c);
}

const char *ane_last_error(const ane_runtime *rt) {
    if (!rt) return "";
    return rt->err ? rt->err : rt->err_nomem ? nomem_msg : "";
}

void ane_close(ane_runtime *rt) {
    if (!rt) return;
    lua_close(rt->L);
    free(rt->err);
    free(rt->open_err);
    free(rt);
}
