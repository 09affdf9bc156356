/* embed.c - the public embedding API (ane.h): a runtime is one protected lua_State. */
#include "ane.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lua/lane.h"

struct ane_runtime {
    lua_State *L;
    char *err;
};

const char *ane_version(void) { return "0.1.0"; }

int luaopen_ane(lua_State *L) {
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_ane_core);
    lua_setfield(L, -2, "ane.core");
    lua_pop(L, 1);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "ane");
    lua_call(L, 1, 1);
    return 1;
}

static int traceback(lua_State *L) {
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
    rt->err = strdup(msg ? msg : "");
}

static void prepend_path(lua_State *L, const char *field, const char *extra) {
    if (!extra) return;
    lua_getglobal(L, "package");
    lua_getfield(L, -1, field);
    lua_pushfstring(L, "%s;%s", extra, lua_tostring(L, -1));
    lua_setfield(L, -3, field);
    lua_pop(L, 2);
}

ane_runtime *ane_open(const ane_options *opts) {
    ane_runtime *rt = calloc(1, sizeof *rt);
    if (!rt) return NULL;
    rt->L = luaL_newstate();
    if (!rt->L) { free(rt); return NULL; }
    luaL_openlibs(rt->L);
    luaL_getsubtable(rt->L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(rt->L, luaopen_ane_core);
    lua_setfield(rt->L, -2, "ane.core");
    lua_pop(rt->L, 1);
    if (opts) {
        prepend_path(rt->L, "path", opts->lua_path);
        prepend_path(rt->L, "cpath", opts->lua_cpath);
        if (opts->backend) {
            lua_pushstring(rt->L, opts->backend);
            lua_setfield(rt->L, LUA_REGISTRYINDEX, "ane.default_backend");
        }
    }
    return rt;
}

lua_State *ane_lua(ane_runtime *rt) { return rt ? rt->L : NULL; }

static int finish(ane_runtime *rt, int status) {
    if (status != LUA_OK) {
        set_err(rt, lua_tostring(rt->L, -1));
        lua_pop(rt->L, 1);
        return 1;
    }
    set_err(rt, "");
    return 0;
}

static int run_loaded(ane_runtime *rt, int status) {
    if (status != LUA_OK) return finish(rt, status);
    lua_pushcfunction(rt->L, traceback);
    lua_insert(rt->L, -2);
    status = lua_pcall(rt->L, 0, 0, -2);
    int r = finish(rt, status);
    lua_pop(rt->L, 1); /* traceback */
    return r;
}

int ane_run_file(ane_runtime *rt, const char *path) {
    return run_loaded(rt, luaL_loadfile(rt->L, path));
}

int ane_run_string(ane_runtime *rt, const char *code, const char *chunkname) {
    return run_loaded(rt, luaL_loadbuffer(rt->L, code, strlen(code), chunkname ? chunkname : "=(string)"));
}

const char *ane_last_error(const ane_runtime *rt) { return rt && rt->err ? rt->err : ""; }

void ane_close(ane_runtime *rt) {
    if (!rt) return;
    lua_close(rt->L);
    free(rt->err);
    free(rt);
}
