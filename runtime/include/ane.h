/* ane.h - embedding the ane runtime in a host application.
 *
 *   ane_runtime *rt = ane_open(&(ane_options){ .backend = "cpu" });
 *   if (ane_run_file(rt, "experiment.lua") != 0) fprintf(stderr, "%s\n", ane_last_error(rt));
 *   ane_close(rt);
 *
 * A runtime owns one lua_State with the standard libraries and `ane` preloaded. It is not
 * thread-safe: use it from one thread. Hosts that own their lua_State call luaopen_ane instead. */
#ifndef ANE_H
#define ANE_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lua_State lua_State;
typedef struct ane_runtime ane_runtime;

typedef struct ane_options {
    const char *backend;    /* default backend name; NULL = $ANE_BACKEND or automatic */
    const char *lua_path;   /* prepended to package.path (";"-separated templates); may be NULL */
    const char *lua_cpath;  /* prepended to package.cpath; may be NULL */
} ane_options;

/* NULL opts = defaults. Returns NULL only when memory runs out. */
ane_runtime *ane_open(const ane_options *opts);
lua_State *ane_lua(ane_runtime *rt);
/* 0 on success; nonzero on error, with the message and traceback in ane_last_error. */
int ane_run_file(ane_runtime *rt, const char *path);
int ane_run_string(ane_runtime *rt, const char *code, const char *chunkname);
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
