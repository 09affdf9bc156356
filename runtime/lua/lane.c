/* lane.c - helpers shared by the bindings. */
#include "lane.h"

#include <string.h>

#include "../core/storage.h"

int lane_error(lua_State *L, const ane_error *e) {
    return luaL_error(L, "%s", e->msg[0] ? e->msg : err_codename(e->code));
}

int lane_fail(lua_State *L, const ane_error *e) {
    luaL_pushfail(L);
    lua_pushstring(L, e->msg[0] ? e->msg : err_codename(e->code));
    return 2;
}

void lane_name_methods(lua_State *L, const char *tname) {
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, tname);
    lua_pop(L, 1);
}

void lane_newclass(lua_State *L, const char *tname, const luaL_Reg *methods, const luaL_Reg *meta) {
    luaL_newmetatable(L, tname);          /* [mt] */
    if (meta) luaL_setfuncs(L, meta, 0);
    if (methods) {
        lua_newtable(L);                  /* [mt, methods] */
        luaL_setfuncs(L, methods, 0);
        lane_name_methods(L, tname);
        lua_setfield(L, -2, "__index");   /* [mt] */
    }
    lua_pop(L, 1);
}

void lane_checkopts(lua_State *L, int idx, const char *const *known) {
    if (lua_isnoneornil(L, idx)) return;
    luaL_checktype(L, idx, LUA_TTABLE);
    idx = lua_absindex(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        int ok = 0;
        if (lua_type(L, -1) == LUA_TSTRING) {
            const char *k = lua_tostring(L, -1);
            for (const char *const *p = known; *p; p++)
                if (strcmp(*p, k) == 0) { ok = 1; break; }
        }
        if (!ok) {
            const char *k = luaL_tolstring(L, -1, NULL);
            luaL_argerror(L, idx, lua_pushfstring(L, "unknown option '%s'", k));
        }
    }
}

int lane_optlenient(lua_State *L, int idx) {
    if (lua_type(L, idx) != LUA_TTABLE) return 0;
    int t = lua_getfield(L, idx, "lenient");
    int v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (t != LUA_TNIL && t != LUA_TBOOLEAN) luaL_argerror(L, idx, "option 'lenient' must be a boolean");
    return v;
}

/* Step the collector when C-side storage has grown by more than 64 MiB since the last step. */
void lane_gcstep(lua_State *L) {
    static _Thread_local size_t last;
    size_t now = storage_live_bytes();
    if (now > last + ((size_t)64 << 20)) {
        lua_gc(L, LUA_GCSTEP, (int)((now - last) >> 10));
        last = storage_live_bytes();
    } else if (now < last) {
        last = now;
    }
}
