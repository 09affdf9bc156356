/* host.h - pieces of the `ane` program shared between main.c and repl.c, and the two that the
 * embedding API (embed.c, in libane) has in common with the program: both are defined there. */
#ifndef ANE_HOST_H
#define ANE_HOST_H

#include <stddef.h>

#include <lua.h>

/* Call the function on top of the stack (with narg arguments above it) under the traceback
 * handler, with SIGINT turned into a Lua error ("interrupted!") while it runs. SIGINT is
 * unblocked for the call, so one already pending interrupts it at once; the disposition and the
 * signal mask in force before the call are restored afterwards. Returns the lua_pcall status. */
int host_docall(lua_State *L, int narg, int nres);
/* For signal handlers: on a thread other than the one running Lua, send sig to that thread and
 * return 1 (the handler should return at once); on the Lua thread return 0. */
int host_forward_signal(int sig);
/* Print the error on top of the stack as "progname: msg" (progname NULL: no prefix) to stderr
 * and pop it. Does nothing for LUA_OK. */
void host_report(lua_State *L, const char *progname, int status);
/* Make `require "ane.core"` resolve to the statically linked C core (embed.c). */
void host_preload(lua_State *L);
/* Message handler for lua_pcall: appends a traceback to the error message; a non-string error
 * object is shown through its __tostring, or named by type (embed.c). */
int host_msghandler(lua_State *L);
/* Source only unless allow_bytecode: sets the mode every load below uses and, for source only,
 * wraps load/loadfile/dofile (their default mode) and the Lua-file searcher of `require`. */
void host_set_load_mode(lua_State *L, int allow_bytecode);
const char *host_load_mode(lua_State *L); /* "t" or "bt" */
/* luaL_loadfilex / luaL_loadbufferx with that mode; a refused binary chunk's message says how to
 * allow it. */
int host_loadfile(lua_State *L, const char *path);
int host_loadbuffer(lua_State *L, const char *code, size_t len, const char *name);
/* The interactive loop (line editing and history on a terminal, plain lines otherwise); returns
 * when input ends (Ctrl-D). */
void host_repl(lua_State *L);

#endif
