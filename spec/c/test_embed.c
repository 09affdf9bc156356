/* test_embed.c - the embedding API (ane.h): running code, errors, results, and allocation
 * failure at every step.
 *
 * The failure test gives the runtime an allocator that fails at the Nth allocation and raises N
 * until a whole session (open, run a chunk that requires ane and builds tables and strings,
 * read the result, close) succeeds. Every failure must come back as NULL from ane_open or an
 * error status with a message, never a crash; under `make test SANITIZE=1` ASan also checks that
 * nothing leaks or is touched after free on any of those paths. */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ane.h"

static int failures;
#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                     \
            fputc('\n', stderr);                                              \
            failures++;                                                       \
        }                                                                     \
    } while (0)

static char lua_path[8192];

typedef struct counting_alloc {
    long count;     /* allocations so far */
    long fail_at;   /* fail this allocation and every later one; 0 = never */
    long failed;
} counting_alloc;

static void *failing_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    counting_alloc *a = ud;
    (void)osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    /* Shrinking never fails in Lua's model (it relies on that); growing and new blocks may. */
    if (ptr == NULL || nsize > osize) {
        a->count++;
        if (a->fail_at && a->count >= a->fail_at) {
            a->failed++;
            return NULL;
        }
    }
    return realloc(ptr, nsize);
}

static const char *session_code =
    "local ane = require 'ane'\n"
    "local t = {}\n"
    "for i = 1, 200 do t[i] = string.format('%d:%s', i, ane.version) end\n"
    "result = { n = #t, last = t[#t], joined = #table.concat(t, ',') }\n";

/* One whole session under an allocator failing at fail_at. Returns 1 if it went through. */
static int session(long fail_at, long *allocs) {
    counting_alloc a = {0, fail_at, 0};
    ane_options o = {.lua_path = lua_path, .alloc = failing_alloc, .alloc_ud = &a};
    ane_runtime *rt = ane_open(&o);
    if (!rt) {
        CHECK(a.failed > 0, "ane_open returned NULL without an allocation failure (N=%ld)", fail_at);
        return 0;
    }
    int ok = 0;
    if (ane_run_string(rt, session_code, "=session") != 0) {
        const char *e = ane_last_error(rt);
        CHECK(a.failed > 0, "run failed without an allocation failure: %s", e);
        CHECK(e[0] != '\0', "an error with an empty message (N=%ld)", fail_at);
        CHECK(strstr(e, "not enough memory") || strstr(e, "memory"),
              "an allocation failure reported as something else (N=%ld): %s", fail_at, e);
    } else {
        lua_State *L = ane_lua(rt);
        if (lua_checkstack(L, 4)) {
            lua_getglobal(L, "result");
            if (lua_istable(L, -1)) {
                lua_getfield(L, -1, "n");
                CHECK(lua_tointeger(L, -1) == 200, "result.n = %lld", (long long)lua_tointeger(L, -1));
                lua_pop(L, 1);
                ok = 1;
            } else {
                CHECK(0, "no result table after a successful run (N=%ld)", fail_at);
            }
            lua_pop(L, 1);
        }
    }
    ane_close(rt);
    if (allocs) *allocs = a.count;
    return ok && a.failed == 0;
}

static void test_alloc_failure(void) {
    long total = 0;
    CHECK(session(0, &total), "the session fails even without allocation failures");
    CHECK(total > 100, "suspiciously few allocations: %ld", total);
    long n;
    for (n = 1; n <= total + 1; n++)
        if (session(n, NULL)) break;
    CHECK(n > total / 2, "the session succeeded although allocation %ld failed", n);
    printf("allocation failure: sessions with the Nth allocation failing, N = 1..%ld, all clean\n", n);
}

static void test_run_and_errors(void) {
    ane_options o = {.lua_path = lua_path};
    ane_runtime *rt = ane_open(&o);
    CHECK(rt != NULL, "ane_open");
    if (!rt) return;
    CHECK(strcmp(ane_last_error(rt), "") == 0, "fresh runtime has an error: %s", ane_last_error(rt));
    CHECK(ane_run_string(rt, "x = require('ane').version", NULL) == 0, "%s", ane_last_error(rt));
    lua_State *L = ane_lua(rt);
    lua_getglobal(L, "x");
    CHECK(lua_isstring(L, -1) && strcmp(lua_tostring(L, -1), ane_version()) == 0, "version mismatch");
    lua_pop(L, 1);

    CHECK(ane_run_string(rt, "local function f() error('deep') end\nf()", "=chunk") != 0, "error not reported");
    const char *e = ane_last_error(rt);
    CHECK(strncmp(e, "chunk:1: deep\nstack traceback:", 30) == 0, "message: %s", e);
    CHECK(strstr(e, "in local 'f'") != NULL, "traceback lacks the frame: %s", e);

    CHECK(ane_run_string(rt, "x = = 1", "=bad") != 0, "syntax error not reported");
    CHECK(strcmp(ane_last_error(rt), "bad:1: unexpected symbol near '='") == 0, "%s", ane_last_error(rt));
    CHECK(ane_run_file(rt, "/nonexistent/x.lua") != 0, "missing file not reported");
    CHECK(strstr(ane_last_error(rt), "cannot open /nonexistent/x.lua") != NULL, "%s", ane_last_error(rt));
    CHECK(ane_run_string(rt, "error({})", NULL) != 0, "table error");
    CHECK(strncmp(ane_last_error(rt), "(error object is a table value)", 31) == 0, "%s", ane_last_error(rt));

    /* ane_pcall: results stay, errors leave the stack as it was minus function and arguments */
    int top = lua_gettop(L);
    luaL_loadstring(L, "local a, b = ... return a + b, a * b");
    lua_pushinteger(L, 6);
    lua_pushinteger(L, 7);
    CHECK(ane_pcall(rt, 2, 2) == 0, "%s", ane_last_error(rt));
    CHECK(lua_gettop(L) == top + 2 && lua_tointeger(L, -2) == 13 && lua_tointeger(L, -1) == 42, "results");
    lua_settop(L, top);
    luaL_loadstring(L, "error('inside pcall')");
    lua_pushinteger(L, 1);
    CHECK(ane_pcall(rt, 1, 0) != 0, "error not reported");
    CHECK(lua_gettop(L) == top, "stack not restored: %d vs %d", lua_gettop(L), top);
    CHECK(strstr(ane_last_error(rt), "inside pcall") != NULL, "%s", ane_last_error(rt));
    /* a success clears the last error */
    CHECK(ane_run_string(rt, "return 1", NULL) == 0 && ane_last_error(rt)[0] == '\0', "error not cleared");

    /* no drift: many runs leave the stack where it was */
    for (int i = 0; i < 2000; i++) ane_run_string(rt, i % 2 ? "return 1, 2, 3" : "error('x')", NULL);
    CHECK(lua_gettop(L) == top, "stack drift: %d vs %d", lua_gettop(L), top);
    ane_close(rt);
    ane_close(NULL);
    CHECK(strcmp(ane_last_error(NULL), "") == 0, "NULL runtime error text");
}

static void test_options(void) {
    ane_runtime *rt = ane_open(NULL);
    CHECK(rt != NULL, "ane_open(NULL)");
    if (!rt) return;
    ane_close(rt);
    ane_options o = {.backend = "cpu", .lua_path = "/spec/first/?.lua", .lua_cpath = "/spec/firstc/?.so"};
    rt = ane_open(&o);
    CHECK(ane_run_string(rt,
                         "assert(package.path:find('/spec/first/?.lua;', 1, true) == 1)\n"
                         "assert(package.cpath:find('/spec/firstc/?.so;', 1, true) == 1)\n"
                         "assert(debug.getregistry()['ane.default_backend'] == 'cpu')\n"
                         "assert(require('ane').backend() == 'cpu')",
                         NULL) == 0,
          "%s", ane_last_error(rt));
    CHECK(getenv("ANE_BACKEND") == NULL, "ane_options.backend must not write the environment");
    ane_close(rt);
}

/* A host that owns its lua_State uses luaopen_ane. */
static void test_luaopen(void) {
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    lua_getglobal(L, "package");
    lua_pushstring(L, lua_path);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
    lua_pushcfunction(L, luaopen_ane);
    CHECK(lua_pcall(L, 0, 1, 0) == LUA_OK, "luaopen_ane: %s", lua_tostring(L, -1));
    lua_getfield(L, -1, "version");
    CHECK(lua_isstring(L, -1) && strcmp(lua_tostring(L, -1), ane_version()) == 0, "version field");
    lua_close(L);
}

int main(void) {
    unsetenv("ANE_BACKEND"); /* before anything reads it: test_options checks it stays unset */
    const char *root = getenv("ANE_ROOT");
    if (!root) root = ".";
    snprintf(lua_path, sizeof lua_path, "%s/lua/?.lua;%s/lua/?/init.lua", root, root);
    test_run_and_errors();
    test_options();
    test_luaopen();
    test_alloc_failure();
    if (failures) fprintf(stderr, "%d check(s) failed\n", failures);
    return failures ? 1 : 0;
}
