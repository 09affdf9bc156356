/* l_process.c - process-level calls the training program needs: ane.exec (replace this process,
 * the compile-budget restart) and ane.blas_info (which BLAS kernel set runs the GEMMs). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef ANE_ACCELERATE
#include <Accelerate/Accelerate.h>
#else
#include <cblas.h>
#endif

#include "lane.h"

/* ane.exec(argv) -> only returns on failure: nil, message.
 * argv is an array of strings; argv[1] is the program (searched in PATH when it has no slash).
 * stdout and stderr are flushed first so nothing printed so far is lost. */
static int p_exec(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer n = (lua_Integer)luaL_len(L, 1);
    luaL_argcheck(L, n >= 1 && n < 4096, 1, "argv must have 1 to 4095 strings");
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_geti(L, 1, i) != LUA_TSTRING)
            luaL_argerror(L, 1, lua_pushfstring(L, "argv[%d] is not a string", (int)i));
        lua_pop(L, 1);
    }
    /* The strings stay reachable from argument 1 while execvp runs; the pointer array lives in a
     * userdata so a failure leaves nothing to free. */
    const char **av = lua_newuserdatauv(L, sizeof(char *) * (size_t)(n + 1), 0);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, 1, i);
        av[i - 1] = lua_tostring(L, -1);
        lua_pop(L, 1);
    }
    av[n] = NULL;
    fflush(stdout);
    fflush(stderr);
    execvp(av[0], (char *const *)av);
    int en = errno;
    lua_pushnil(L);
    lua_pushfstring(L, "exec %s: %s", av[0], strerror(en));
    return 2;
}

/* ane.blas_info() -> {name = "OpenBLAS"|"Accelerate", corename = "Haswell"|..., config = ...,
 * threads = n}: the kernel set actually selected at run time (OPENBLAS_CORETYPE changes it). */
static int p_blas_info(lua_State *L) {
    lua_newtable(L);
#ifdef ANE_ACCELERATE
    lua_pushliteral(L, "Accelerate");
    lua_setfield(L, -2, "name");
#elif defined(OPENBLAS_VERSION)
    lua_pushliteral(L, "OpenBLAS");
    lua_setfield(L, -2, "name");
    lua_pushstring(L, openblas_get_corename());
    lua_setfield(L, -2, "corename");
    lua_pushstring(L, openblas_get_config());
    lua_setfield(L, -2, "config");
    lua_pushinteger(L, openblas_get_num_threads());
    lua_setfield(L, -2, "threads");
#else
    lua_pushliteral(L, "CBLAS");
    lua_setfield(L, -2, "name");
#endif
    return 1;
}

static const luaL_Reg funcs[] = {
    {"exec", p_exec},
    {"blas_info", p_blas_info},
    {NULL, NULL},
};

void lane_open_process(lua_State *L) { luaL_setfuncs(L, funcs, 0); }
