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

#include "../lua/lane.h"
#include "host.h"

#define ANE_VERSION_STRING "0.1.0"

struct ane_runtime {
    lua_State *L;
    char *err;      /* last error (malloc'd), NULL if none */
    int err_nomem;  /* the last error could not even be copied */
    int warn_on;    /* warnings are off until "@on", as in the stock interpreter */
    int warn_cont;  /* inside a multi-part warning */
};

static const char nomem_msg[] = "not enough memory";

const char *ane_version(void) { return ANE_VERSION_STRING; }

void host_preload(lua_State *L) {
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_ane_core);
    lua_setfield(L, -2, "ane.core");
    lua_pop(L, 1);
}

int luaopen_ane(lua_State *L) {
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
    if (o) {
        prepend_path(L, "path", o->lua_path);
        prepend_path(L, "cpath", o->lua_cpath);
        if (o->backend) {
            lua_pushstring(L, o->backend);
            lua_setfield(L, LUA_REGISTRYINDEX, "ane.default_backend");
            /* The runtime's default is process-wide ($ANE_BACKEND, as ane.backend(name) sets). */
            if (setenv("ANE_BACKEND", o->backend, 1) != 0) return luaL_error(L, "cannot set ANE_BACKEND");
        }
    }
    return 0;
}

ane_runtime *ane_open(const ane_options *opts) {
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
    if (lua_pcall(rt->L, 1, 0, 0) != LUA_OK) { /* only memory can fail here */
        lua_close(rt->L);
        free(rt);
        return NULL;
    }
    return rt;
}

lua_State *ane_lua(ane_runtime *rt) { return rt ? rt->L : NULL; }

int ane_pcall(ane_runtime *rt, int nargs, int nresults) {
    lua_State *L = rt->L;
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
    int status = c->path ? luaL_loadfile(L, c->path)
                         : luaL_loadbuffer(L, c->code, strlen(c->code), c->name);
    if (status != LUA_OK) return lua_error(L);
    return 1;
}

static int run_chunk(ane_runtime *rt, const chunk *c) {
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
    chunk c = {.path = path};
    return run_chunk(rt, &c);
}

int ane_run_string(ane_runtime *rt, const char *code, const char *chunkname) {
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
    free(rt);
}
