/* repl.c - the interactive loop (placeholder: plain stdin; line editing comes with libedit). */
#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

#include "host.h"

void host_repl(lua_State *L) {
    char line[4096];
    for (;;) {
        fputs("> ", stdout);
        fflush(stdout);
        if (!fgets(line, sizeof line, stdin)) break;
        int st = luaL_loadbuffer(L, line, strlen(line), "=stdin");
        if (st == LUA_OK) st = host_docall(L, 0, 0);
        host_report(L, NULL, st);
    }
    fputs("\n", stdout);
}
