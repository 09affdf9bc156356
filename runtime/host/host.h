/* host.h - pieces of the `ane` program shared between main.c and repl.c. */
#ifndef ANE_HOST_H
#define ANE_HOST_H

#include <lua.h>

/* Call the function on top of the stack (with nargs below it) under the traceback handler, with
 * SIGINT turned into a Lua error while it runs. Returns the lua_pcall status. */
int host_docall(lua_State *L, int narg, int nres);
/* Print the error on top of the stack as "ane: msg" (progname NULL: no prefix) and pop it. */
void host_report(lua_State *L, const char *progname, int status);
/* The interactive loop; returns when the user ends input. */
void host_repl(lua_State *L);

#endif
