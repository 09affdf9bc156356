/* l_ane.c - luaopen_ane_core: the C half of `require "ane"` (lua/ane/init.lua wraps it). */
#include "lane.h"

#define ANE_VERSION "0.1.0"

static void open_version(lua_State *L) {
    lua_pushliteral(L, ANE_VERSION);
    lua_setfield(L, -2, "version");
}

/* One line per binding file; each adds its functions to the module table. */
static void (*const openers[])(lua_State *) = {
    open_version,
    lane_open_tensor,
    lane_open_mil,
    lane_open_backend,
    lane_open_ane_backend, /* after lane_open_backend: it adds methods to ane.Kernel */
    lane_open_queue,
    lane_open_optim,   /* l_optim.c: ane.nn.adamw, sumsq, token data helpers */
    lane_open_process, /* l_process.c: ane.exec, ane.blas_info */
    lane_open_formats,
    lane_open_sample,
    lane_open_nn,
    lane_open_objc,
};

int luaopen_ane_core(lua_State *L) {
    luaL_checkversion(L);
    lua_newtable(L);
    for (size_t i = 0; i < sizeof openers / sizeof openers[0]; i++) openers[i](L);
    return 1;
}
