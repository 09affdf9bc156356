/* ane.h - embedding the ane runtime in a host application.
 *
 *   ane_runtime *rt = ane_open(&(ane_options){ .backend = "cpu" });
 *   if (!rt) ...out of memory...
 *   if (ane_run_file(rt, "experiment.lua") != 0) fprintf(stderr, "%s\n", ane_last_error(rt));
 *   lua_State *L = ane_lua(rt);   -- read results with the ordinary Lua C API
 *   ane_close(rt);
 *
 * A runtime owns one lua_State with the standard libraries opened and `require "ane"` ready (the
 * C core is linked in; the Lua half is found on package.path: pass lua_path, or set LUA_PATH,
 * or install into a prefix Lua searches). It is not thread-safe: use it from one thread.
 * Hosts that own their lua_State call luaopen_ane instead.
 *
 * Link: `pkg-config --cflags --libs ane` (the static libane.a plus Lua, BLAS, libm, pthread);
 * `pkg-config --variable=luadir ane` is the installed Lua module directory. */
#ifndef ANE_H
#define ANE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lua_State lua_State;
typedef struct ane_runtime ane_runtime;

/* Same contract as lua_Alloc: nsize == 0 frees; returning NULL for nsize > 0 is an allocation
 * failure, which the runtime reports as an error ("not enough memory"), never a crash. */
typedef void *(*ane_alloc_fn)(void *ud, void *ptr, size_t osize, size_t nsize);

typedef struct ane_options {
    const char *backend;    /* default backend name; NULL = $ANE_BACKEND or automatic. Like
                             * ane.backend(name) it is process-wide (the runtime's own setting:
                             * the environment is read once and never written). A name that is
                             * no backend is refused: see ane_open */
    const char *lua_path;   /* prepended to package.path (";"-separated templates); may be NULL */
    const char *lua_cpath;  /* prepended to package.cpath; may be NULL */
    ane_alloc_fn alloc;     /* allocator for the Lua state; NULL = realloc/free */
    void *alloc_ud;         /* passed to alloc */
    int allow_bytecode;     /* 0 (default): load Lua source only, in ane_run_*, `require`, and
                             * load/loadfile/dofile without a mode argument; precompiled chunks
                             * are unchecked code that can crash the process. 1: both, as
                             * stock Lua does (the `ane --bytecode` flag) */
} ane_options;

/* NULL opts = defaults. Returns NULL only when memory runs out. Options it refuses (a backend
 * name no backend has) leave a runtime whose ane_last_error says why ("ane_options.backend:
 * unknown backend 'x' (known: cpu, ane)") and whose ane_run_file/ane_run_string/ane_pcall all
 * fail with that message: check ane_last_error(rt)[0] after opening. The backend name is also
 * kept in the registry under "ane.default_backend".
 * Every function below refuses a NULL runtime or a NULL required argument by returning nonzero
 * (and, with a runtime, an error message): ane_lua(NULL) is NULL, ane_last_error(NULL) is "",
 * ane_close(NULL) does nothing, luaopen_ane(NULL) returns 0. */
ane_runtime *ane_open(const ane_options *opts);
lua_State *ane_lua(ane_runtime *rt);
/* 0 on success; nonzero on error, with the message and traceback in ane_last_error. The chunk's
 * return values are discarded. */
int ane_run_file(ane_runtime *rt, const char *path);
int ane_run_string(ane_runtime *rt, const char *code, const char *chunkname);
/* Call the function below nargs arguments on top of ane_lua(rt)'s stack, protected, with a
 * traceback on error (like lua_pcall, minus the message handler chore). On success nresults
 * values (LUA_MULTRET = -1: all) replace function and arguments and 0 is returned; on error
 * both are popped, nothing is pushed, and ane_last_error has the message. */
int ane_pcall(ane_runtime *rt, int nargs, int nresults);
const char *ane_last_error(const ane_runtime *rt); /* "" if none */
void ane_close(ane_runtime *rt);                   /* NULL-safe */

/* For hosts with their own lua_State: makes `require "ane"` work (preloads the C core) and
 * returns the ane module table, as `require` would. */
int luaopen_ane(lua_State *L);
const char *ane_version(void);

#ifdef __cplusplus
}
#endif
#endif
