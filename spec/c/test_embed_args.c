/* test_embed_args.c - every public entry point of ane.h with NULL (and other impossible)
 * arguments refuses them with an error instead of crashing; options that are refused (a backend
 * name that is no backend) and the source-only loading rule with its allow_bytecode switch. */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ane.h"
#include "expect.h"

static char lua_path[8192];

static void test_null(void) {
    /* no runtime */
    EXPECT(ane_lua(NULL) == NULL, "ane_lua(NULL)");
    EXPECT(ane_run_file(NULL, "x.lua") != 0, "ane_run_file(NULL, path)");
    EXPECT(ane_run_file(NULL, NULL) != 0, "ane_run_file(NULL, NULL)");
    EXPECT(ane_run_string(NULL, "return 1", "x") != 0, "ane_run_string(NULL, ...)");
    EXPECT(ane_run_string(NULL, NULL, NULL) != 0, "ane_run_string(NULL, NULL, NULL)");
    EXPECT(ane_pcall(NULL, 0, 0) != 0, "ane_pcall(NULL)");
    EXPECT(strcmp(ane_last_error(NULL), "") == 0, "ane_last_error(NULL)");
    EXPECT(luaopen_ane(NULL) == 0, "luaopen_ane(NULL)");
    ane_close(NULL);
    EXPECT(ane_version() != NULL, "ane_version");

    /* a runtime, NULL arguments */
    ane_runtime *rt = ane_open(NULL);
    EXPECT(rt != NULL, "ane_open(NULL)");
    if (!rt) return;
    EXPECT(ane_run_file(rt, NULL) != 0 && strstr(ane_last_error(rt), "ane_run_file: path is NULL"), "%s",
           ane_last_error(rt));
    EXPECT(ane_run_string(rt, NULL, "name") != 0 && strstr(ane_last_error(rt), "ane_run_string: code is NULL"),
           "%s", ane_last_error(rt));
    EXPECT(ane_run_string(rt, "x = 1", NULL) == 0, "a NULL chunk name is the default: %s", ane_last_error(rt));
    lua_State *L = ane_lua(rt);
    int top = lua_gettop(L);
    EXPECT(ane_pcall(rt, 0, 0) != 0 && strstr(ane_last_error(rt), "ane_pcall"), "empty stack: %s",
           ane_last_error(rt));
    lua_pushinteger(L, 1);
    EXPECT(ane_pcall(rt, 3, 0) != 0, "more arguments than values");
    EXPECT(ane_pcall(rt, -1, 0) != 0, "negative nargs");
    lua_settop(L, top);
    ane_close(rt);
}

static void test_refused_backend(void) {
    ane_options o = {.backend = "nope", .lua_path = lua_path};
    ane_runtime *rt = ane_open(&o);
    EXPECT(rt != NULL, "a refused option still gives a runtime that says why");
    if (!rt) return;
    const char *err = ane_last_error(rt);
    EXPECT(strstr(err, "ane_options.backend: unknown backend 'nope' (known: ") && strstr(err, "cpu"), "%s", err);
    EXPECT(ane_run_string(rt, "x = 1", NULL) != 0 && strstr(ane_last_error(rt), "unknown backend 'nope'"),
           "runs fail: %s", ane_last_error(rt));
    lua_State *L = ane_lua(rt);
    lua_getglobal(L, "print");
    EXPECT(ane_pcall(rt, 0, 0) != 0 && lua_gettop(L) == 0, "ane_pcall fails and pops the function");
    ane_close(rt);
}

static const char dump_code[] =
    "local f = assert(io.open(..., 'wb'))\n"
    "f:write(string.dump(function() result = 42 end))\n"
    "f:close()\n";

static void test_bytecode(void) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/ane-embed-args-%d.luac", (int)getpid());
    ane_options bo = {.lua_path = lua_path, .allow_bytecode = 1};
    ane_runtime *b = ane_open(&bo);
    EXPECT(b != NULL, "open with allow_bytecode");
    if (!b) return;
    lua_State *L = ane_lua(b);
    luaL_loadstring(L, dump_code);
    lua_pushstring(L, path);
    EXPECT(ane_pcall(b, 1, 0) == 0, "write a chunk: %s", ane_last_error(b));
    EXPECT(ane_run_file(b, path) == 0, "allow_bytecode runs a precompiled file: %s", ane_last_error(b));
    lua_getglobal(L, "result");
    EXPECT(lua_tointeger(L, -1) == 42, "the chunk ran");
    lua_pop(L, 1);
    ane_close(b);

    ane_options to = {.lua_path = lua_path};
    ane_runtime *t = ane_open(&to);
    EXPECT(t != NULL, "open");
    if (!t) return;
    EXPECT(ane_run_file(t, path) != 0 && strstr(ane_last_error(t), "binary chunk") &&
               strstr(ane_last_error(t), "allow_bytecode") && strstr(ane_last_error(t), path),
           "source only by default: %s", ane_last_error(t));
    /* load/loadfile/dofile default to source; an explicit mode is the caller's choice */
    char code[512];
    snprintf(code, sizeof code,
             "local s = string.dump(function() return 7 end)\n"
             "local f, err = load(s)\n"
             "assert(f == nil and err:find('binary chunk'), tostring(err))\n"
             "assert(load(s, 'x', 'b')() == 7)\n"
             "assert(loadfile('%s') == nil)\n"
             "assert(not pcall(dofile, '%s'))\n"
             "assert(load('return 8')() == 8)\n",
             path, path);
    EXPECT(ane_run_string(t, code, "=loads") == 0, "%s", ane_last_error(t));
    ane_close(t);
    remove(path);
}

int main(void) {
    const char *root = getenv("ANE_ROOT");
    if (!root) root = ".";
    snprintf(lua_path, sizeof lua_path, "%s/lua/?.lua;%s/lua/?/init.lua", root, root);
    test_null();
    test_refused_backend();
    test_bytecode();
    printf("test_embed_args: %d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
