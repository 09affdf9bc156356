/* host.c - a C program that embeds the ane runtime, runs a Lua experiment, and reads its result.
 *
 *   host [experiment.lua [steps]]
 *
 * The host owns the loop it cares about (here: report a number, exit nonzero if the experiment
 * misbehaves); the experiment is a Lua file anyone can edit without recompiling. The script gets
 * `steps` as its argument and returns a table; the host reads fields of that table with the plain
 * Lua C API. Build: see Makefile here (installed ane) or mk/embed.mk (in-tree). */
#include <ane.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    const char *script = argc > 1 ? argv[1] : "experiment.lua";
    lua_Integer steps = argc > 2 ? strtoll(argv[2], NULL, 10) : 200;

    /* ANE_LUA_PATH lets the example run from a build tree; an installed ane is found through
     * the default package.path or LUA_PATH. */
    ane_options opts = {.backend = getenv("ANE_BACKEND"), .lua_path = getenv("ANE_LUA_PATH")};
    ane_runtime *rt = ane_open(&opts);
    if (!rt) {
        fprintf(stderr, "host: cannot create the runtime: not enough memory\n");
        return 1;
    }
    lua_State *L = ane_lua(rt);

    /* Load the experiment as a function, hand it one argument, keep its one result. */
    if (luaL_loadfile(L, script) != LUA_OK) {
        fprintf(stderr, "host: %s\n", lua_tostring(L, -1));
        ane_close(rt);
        return 1;
    }
    lua_pushinteger(L, steps);
    if (ane_pcall(rt, 1, 1) != 0) {
        fprintf(stderr, "host: experiment failed: %s\n", ane_last_error(rt));
        ane_close(rt);
        return 1;
    }
    if (!lua_istable(L, -1)) {
        fprintf(stderr, "host: %s returned %s, expected a table\n", script, luaL_typename(L, -1));
        ane_close(rt);
        return 1;
    }
    lua_getfield(L, -1, "slope");
    lua_getfield(L, -2, "intercept");
    lua_getfield(L, -3, "loss");
    lua_getfield(L, -4, "runtime");
    int ok = lua_isnumber(L, -4) && lua_isnumber(L, -3) && lua_isnumber(L, -2);
    if (ok) {
        printf("host: ane %s (%s): slope %.4f intercept %.4f loss %.3g after %lld steps\n",
               ane_version(), lua_isstring(L, -1) ? lua_tostring(L, -1) : "?", lua_tonumber(L, -4),
               lua_tonumber(L, -3), lua_tonumber(L, -2), (long long)steps);
    } else {
        fprintf(stderr, "host: result lacks numeric slope/intercept/loss\n");
    }
    lua_pop(L, 5);
    ane_close(rt);
    return ok ? 0 : 1;
}
