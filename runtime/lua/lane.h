/* lane.h - helpers shared by the Lua bindings (the only C code besides the host that sees lua.h).
 *
 * Each binding file registers its functions into the module table through one lane_open_* call
 * listed in l_ane.c, and owns one or more userdata types named "ane.Xxx" (luaL_newmetatable
 * records __name, so type errors read "ane.Tensor expected, got number"). */
#ifndef ANE_LUA_LANE_H
#define ANE_LUA_LANE_H

#include <lauxlib.h>
#include <lua.h>

#include "../backend/backend.h"
#include "../core/error.h"
#include "../core/tensor.h"

/* Raise e's message as a Lua error at the caller's level. Never returns. */
int lane_error(lua_State *L, const ane_error *e);
/* Expected failure convention: push nil, message; returns 2. */
int lane_fail(lua_State *L, const ane_error *e);

/* Create metatable `tname` with methods (reached through __index) and metamethods; leaves nothing
 * on the stack. */
/* Error messages name the function the user called: for a call with no name at the call site
 * (pcall(k.eval, k, ...)), Lua looks the function up in package.loaded. So the methods table on
 * top of the stack is registered as package.loaded[tname] ("ane.Kernel.eval"); lane_newclass
 * does this for its methods. */
void lane_name_methods(lua_State *L, const char *tname);
void lane_newclass(lua_State *L, const char *tname, const luaL_Reg *methods, const luaL_Reg *meta);

/* Options tables: reject unknown keys (error names the key and the argument position). */
void lane_checkopts(lua_State *L, int idx, const char *const *known);
/* The `lenient` option of the options table at idx (none/nil table or field: 0); raises unless it
 * is a boolean. The same meaning wherever MIL text is parsed (mil.h MIL_LENIENT_SWITCH). */
int lane_optlenient(lua_State *L, int idx);

/* Tell the collector about C memory it cannot see (storage bytes); call after big allocations. */
void lane_gcstep(lua_State *L);

/* ---- ane.Tensor (l_tensor.c) ---- */
#define LANE_TENSOR "ane.Tensor"
typedef struct lane_tensor {
    tensor t;      /* empty (t.st == NULL) after close */
} lane_tensor;
tensor *lane_checktensor(lua_State *L, int idx);   /* raises on a closed tensor */
tensor *lane_totensor(lua_State *L, int idx);      /* NULL if not an open ane.Tensor */
/* Push a new empty ane.Tensor userdata; the caller fills ->t. */
lane_tensor *lane_pushtensor(lua_State *L);

/* ---- ane.Program (l_mil.c) ---- */
/* The program behind the value at idx, borrowed: an ane.Program userdata, or a table holding one
 * at field `_prog` (a builder program of lua/ane/mil.lua). NULL for anything else; raises when
 * the program is closed. */
mil_program *lane_toprogram(lua_State *L, int idx);

/* ---- ane.Kernel and programs (l_backend.c), shared with l_queue.c ----
 * ane.queue's futures hand back kernels compiled on worker threads; these let l_queue.c accept
 * exactly what ane.compile accepts and return exactly what ane.compile returns. */
#define LANE_KERNEL "ane.Kernel"
/* Push a new ane.Kernel that takes ownership of k (compiled, loaded or not), built the same way
 * ane.compile builds its result. */
void lane_pushkernel(lua_State *L, kernel *k);
/* The kernel behind the open ane.Kernel at idx; raises on anything else or a closed kernel. */
kernel *lane_checkkernel(lua_State *L, int idx);
/* Same without raising: NULL if idx is not an open ane.Kernel. */
kernel *lane_tokernel(lua_State *L, int idx);
/* The program argument at idx (whatever ane.compile accepts: a program object, a builder, MIL
 * text) as a checked, weight-resolved mil_program. Returns a NEW reference (the caller
 * releases it); raises with the program's own message on parse/check errors. BLOBFILE weights
 * resolve from the `model_path` field of the options table at idx + 1, when there is one (the
 * layout of ane.compile(prog, opts) and q:compile(prog, opts)); MIL text is parsed with that
 * table's `lenient` option (lane_optlenient). */
mil_program *lane_checkprogram(lua_State *L, int idx);
/* ane.compile's options table at idx (nil = defaults) into o and the backend it selects
 * (default backend when not named). String fields of o point into Lua strings reachable from
 * idx: copy them before that table can be collected. Raises on bad options. */
void lane_checkcompileopts(lua_State *L, int idx, compile_opts *o, const backend **be);

/* ---- module openers: each adds its functions to the table on top of the stack ---- */
void lane_open_tensor(lua_State *L);   /* l_tensor.c */
void lane_open_mil(lua_State *L);      /* l_mil.c */
void lane_open_backend(lua_State *L);  /* l_backend.c: compile, kernels, backends */
void lane_open_queue(lua_State *L);    /* l_queue.c: queues, futures, chains */
void lane_open_ane_backend(lua_State *L); /* l_ane_backend.c: ANE-only kernel calls (after backend) */
void lane_open_optim(lua_State *L);    /* l_optim.c: optimizer and token-data helpers in ane.nn */
void lane_open_process(lua_State *L);  /* l_process.c: exec, blas_info */
void lane_open_formats(lua_State *L);  /* l_formats.c: checkpoints, tokenizers, atomic_write */

void lane_open_sample(lua_State *L);   /* l_sample.c: ane.nn.sampler, argmax, causal_mask */
void lane_open_nn(lua_State *L);       /* l_nn.c: ane.nn, the CPU kernels of a training step */
void lane_open_objc(lua_State *L);     /* l_objc.c: ane.objc, the Objective-C bridge */

/* ---- ane.objc (l_objc.c) ---- */
/* Push an Objective-C object (id) as an ane.objc.id, retained; nil for NULL. Raises when the
 * runtime cannot be loaded. */
void lane_pushobjc(lua_State *L, void *obj);

int luaopen_ane_core(lua_State *L);

#endif
