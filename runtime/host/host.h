/* host.h - pieces of the `ane` program shared between main.c and repl.c, and the two that the
 * embedding API (embed.c, in libane) has in common with the program: both are defined there. */
#ifndef ANE_HOST_H
#define ANE_HOST_H

#include <lua.h>

/* Call the function on top of the stack (with narg arguments above it) under the traceback
 * handler, with SIGINT turned into a Lua error ("interrupted!") while it runs. The SIGINT
 * disposition in force before the call is restored afterwards. Returns the lua_pcall status. */
int host_docall(lua_State *L, int narg, int nres);
/* Print the error on top of the stack as "progname: msg" (progname NULL: no prefix) to stderr
 * and pop it. Does nothing for LUA_OK. */
void host_report(lua_State *L, const char *progname, int status);
/* Make `require "ane.core"` resolve to the statically linked C core (embed.c). */
void host_preload(lua_State *L);
/* Message handler for lua_pcall: appends a traceback to the error message; a non-string error
 * object is shown through its __tostring, or named by type (embed.c). */
int host_msghandler(lua_State *L);
/* The interactive loop (line editing and history on a terminal, plain lines otherwise); returns
 * when input ends (Ctrl-D). */
void host_repl(lua_State *L);

#endif
