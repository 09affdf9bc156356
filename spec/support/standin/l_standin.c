/* l_standin.c - `require "ane_standin"`: the specs' handle on the stand-in framework.
 *
 * Test support only. Opens the same library the ane backend opens ($ANE_FRAMEWORK_PATH, which
 * the tests set: the backend has no default off macOS) — dlopen returns the already-loaded
 * instance, so the recording and the injections are the ones the backend's calls go through.
 * Without $ANE_FRAMEWORK_PATH the require fails, saying what to set. */
#include <dlfcn.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef ANE_STANDIN_PATH
#define ANE_STANDIN_PATH "libANEStandin.so"
#endif

static struct {
    void (*reset)(void);
    size_t (*event_count)(void);
    int (*event)(size_t, char *, size_t);
    int (*inject)(const char *, long, long);
    int (*live)(const char *);
    int (*capture)(const char *, size_t, const char **, uint64_t *, const uint8_t **, size_t *);
    size_t (*event_total)(void);
    int (*event_kind)(int, char *, size_t, size_t *);
} api;

static const char *lib_path(void) {
    const char *p = getenv("ANE_FRAMEWORK_PATH");
    return (p && *p) ? p : NULL;
}

static int st_path(lua_State *L) {
    lua_pushstring(L, lib_path());
    return 1;
}

static int st_reset(lua_State *L) {
    api.reset();
    return 0;
}

static int st_events(lua_State *L) {
    size_t n = api.event_count();
    lua_createtable(L, (int)n, 0);
    char buf[1100];
    for (size_t i = 0; i < n; i++) {
        if (api.event(i, buf, sizeof buf) != 0) break;
        lua_pushstring(L, buf);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

/* st.counts() -> {total = events since reset, kept = events st.events() returns,
 *                 kinds = {[first word] = count, ...}} */
static int st_counts(lua_State *L) {
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, (lua_Integer)api.event_total());
    lua_setfield(L, -2, "total");
    lua_pushinteger(L, (lua_Integer)api.event_count());
    lua_setfield(L, -2, "kept");
    lua_newtable(L);
    char name[64];
    size_t n;
    for (int i = 0; api.event_kind(i, name, sizeof name, &n) == 0; i++) {
        lua_pushinteger(L, (lua_Integer)n);
        lua_setfield(L, -2, name);
    }
    lua_setfield(L, -2, "kinds");
    return 1;
}

static int st_inject(lua_State *L) {
    static const char *const kinds[] = {"compile", "load", "eval", "unload", "descriptor",
                                        "compile_limit", "perf", "io_order", "describe",
                                        "refuse_external", NULL};
    int k = luaL_checkoption(L, 1, NULL, kinds);
    lua_Integer after = luaL_optinteger(L, 2, 0);
    lua_Integer count = luaL_optinteger(L, 3, 1);
    api.inject(kinds[k], (long)after, (long)count);
    return 0;
}

static int st_live(lua_State *L) {
    lua_pushinteger(L, api.live(luaL_optstring(L, 1, "*")));
    return 1;
}

static int st_mil(lua_State *L) {
    const char *key;
    uint64_t off;
    const uint8_t *d;
    size_t n;
    if (api.capture("mil", 0, &key, &off, &d, &n) != 0) return 0;
    lua_pushlstring(L, (const char *)d, n);
    return 1;
}

static int st_weights(lua_State *L) {
    lua_newtable(L);
    const char *key;
    uint64_t off;
    const uint8_t *d;
    size_t n;
    for (size_t i = 0; api.capture("weight", i, &key, &off, &d, &n) == 0; i++) {
        lua_createtable(L, 0, 3);
        lua_pushstring(L, key);
        lua_setfield(L, -2, "key");
        lua_pushinteger(L, (lua_Integer)off);
        lua_setfield(L, -2, "offset");
        lua_pushlstring(L, (const char *)d, n);
        lua_setfield(L, -2, "data");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

static int st_files(lua_State *L) {
    lua_newtable(L);
    const char *key;
    uint64_t off;
    const uint8_t *d;
    size_t n;
    for (size_t i = 0; api.capture("file", i, &key, &off, &d, &n) == 0; i++) {
        lua_pushlstring(L, (const char *)d, n);
        lua_setfield(L, -2, key);
    }
    return 1;
}

int luaopen_ane_standin(lua_State *L);
int luaopen_ane_standin(lua_State *L) {
    if (!lib_path())
        return luaL_error(L, "ane_standin: $ANE_FRAMEWORK_PATH is not set (off macOS the ane backend "
                             "loads the stand-in only from it): set ANE_FRAMEWORK_PATH=%s, as "
                             "scripts/run-tests.sh does", ANE_STANDIN_PATH);
    void *h = dlopen(lib_path(), RTLD_NOW | RTLD_LOCAL);
    if (!h) return luaL_error(L, "ane_standin: cannot load %s: %s", lib_path(), dlerror());
#define GET(field, name)                                                        \
    do {                                                                        \
        void *p_ = dlsym(h, name);                                              \
        if (!p_) return luaL_error(L, "ane_standin: %s missing in %s", name, lib_path()); \
        memcpy(&api.field, &p_, sizeof p_);                                     \
    } while (0)
    GET(reset, "standin_reset");
    GET(event_count, "standin_event_count");
    GET(event, "standin_event");
    GET(inject, "standin_inject");
    GET(live, "standin_live");
    GET(capture, "standin_capture");
    GET(event_total, "standin_event_total");
    GET(event_kind, "standin_event_kind");
    static const luaL_Reg fns[] = {{"path", st_path},       {"reset", st_reset},
                                   {"events", st_events},   {"inject", st_inject},
                                   {"live", st_live},       {"mil", st_mil},
                                   {"weights", st_weights}, {"files", st_files},
                                   {"counts", st_counts},
                                   {NULL, NULL}};
    luaL_newlib(L, fns);
    return 1;
}
