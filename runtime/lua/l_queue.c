/* l_queue.c - ane.queue / ane.Future / ane.chain: background compiles and kernel chains.
 *
 * Lua values never leave this thread. q:compile turns the program argument into a checked C
 * program here (lane_checkprogram, the same path ane.compile uses), copies the options, and
 * hands only those C objects to a worker; future:wait turns the worker's kernel into an
 * ane.Kernel through lane_pushkernel, exactly what ane.compile returns.
 *
 * Documented behaviour (README "Background compiles"):
 *   future:wait()            the kernel, compiled AND loaded on the worker (ane.compile leaves
 *                            loading to the caller; here it is part of the background work),
 *                            or raises the compile's own message; raises "cancelled"
 *                            for a cancelled future; with a timeout: nil, "timed out ..." when
 *                            the compile has not finished in time. A second wait returns the
 *                            same kernel.
 *   future:cancel()          true if it cancelled a pending or running compile (a running one
 *                            finishes in the background and its kernel is freed); false (a
 *                            no-op) once the future is done, failed or already cancelled.
 *   q:compile on a closed queue raises "queue is closed".
 *   q:close(), __close, __gc cancel pending compiles and join the workers (running compiles
 *                            finish first), so a script may exit with futures pending. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../queue/chain.h"
#include "../queue/queue.h"
#include "lane.h"

#define LANE_QUEUE "ane.Queue"
#define LANE_FUTURE "ane.Future"
#define LANE_CHAIN "ane.Chain"

typedef struct lq { queue *q; } lq;
typedef struct lf { future *f; } lf;

/* ================= ane.Queue ================= */

static lq *q_check(lua_State *L) {
    lq *u = luaL_checkudata(L, 1, LANE_QUEUE);
    if (!u->q) luaL_error(L, "queue is closed");
    return u;
}

static int opt_int_field(lua_State *L, int t, const char *k, int def, int lo, int hi) {
    int ty = lua_getfield(L, t, k);
    int v = def;
    if (ty != LUA_TNIL) {
        int isnum = 0;
        lua_Integer x = lua_tointegerx(L, -1, &isnum);
        if (!isnum || x < lo || x > hi)
            luaL_argerror(L, t, lua_pushfstring(L, "'%s' must be an integer in %d..%d", k, lo, hi));
        v = (int)x;
    }
    lua_pop(L, 1);
    return v;
}

/* ane.queue{workers = 1, capacity = 64, nice = 10, idle = false} */
static int l_queue_new(lua_State *L) {
    static const char *const known[] = { "workers", "capacity", "nice", "idle", NULL };
    lane_checkopts(L, 1, known);
    queue_opts o;
    queue_opts_default(&o);
    if (lua_istable(L, 1)) {
        o.workers = opt_int_field(L, 1, "workers", o.workers, 1, 256);
        o.capacity = opt_int_field(L, 1, "capacity", o.capacity, 1, 1 << 20);
        o.nice = opt_int_field(L, 1, "nice", o.nice, 0, 19);
        int t = lua_getfield(L, 1, "idle");
        if (t != LUA_TNIL && t != LUA_TBOOLEAN) luaL_argerror(L, 1, "'idle' must be a boolean");
        o.idle = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    lq *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->q = NULL;
    luaL_setmetatable(L, LANE_QUEUE);
    ane_error e;
    if (queue_new(&o, &u->q, &e) != 0) return lane_error(L, &e);
    return 1;
}

/* Push an empty future userdata (safe to collect before it holds anything). */
static lf *push_future(lua_State *L) {
    lf *u = lua_newuserdatauv(L, sizeof *u, 1); /* uservalue 1: the ane.Kernel once taken */
    u->f = NULL;
    luaL_setmetatable(L, LANE_FUTURE);
    return u;
}

static int compile_common(lua_State *L, int block) {
    lq *u = q_check(L);
    compile_opts o;
    const backend *be = NULL;
    lane_checkcompileopts(L, 3, &o, &be);
    lf *fu = push_future(L);
    int fidx = lua_gettop(L);
    mil_program *p = lane_checkprogram(L, 2); /* raises with the program's message; new ref */
    ane_error e;
    int rc = queue_compile(u->q, be, p, &o, 1, block, &fu->f, &e);
    mil_program_release(p); /* the job holds its own reference */
    if (rc == ERR_BUDGET && !block) return lane_fail(L, &e);
    if (rc) return lane_error(L, &e);
    lua_pushvalue(L, fidx);
    return 1;
}

/* q:compile(prog, opts) -> ane.Future; blocks while the queue is full (back-pressure). */
static int q_compile(lua_State *L) { return compile_common(L, 1); }
/* q:try_compile(prog, opts) -> ane.Future, or nil, "queue full (...)" instead of blocking. */
static int q_try_compile(lua_State *L) { return compile_common(L, 0); }

static int q_close(lua_State *L) {
    lq *u = luaL_checkudata(L, 1, LANE_QUEUE);
    queue_free(u->q);
    u->q = NULL;
    return 0;
}

/* q:pause() / q:resume(): hold the workers (running compiles finish) and let them go again. */
static int q_pause(lua_State *L) {
    queue_pause(q_check(L)->q, 1);
    lua_settop(L, 1);
    return 1;
}

static int q_resume(lua_State *L) {
    queue_pause(q_check(L)->q, 0);
    lua_settop(L, 1);
    return 1;
}

static int q_stats(lua_State *L) {
    lq *u = q_check(L);
    queue_stats s;
    queue_get_stats(u->q, &s);
    lua_createtable(L, 0, 8);
    lua_pushinteger(L, s.workers); lua_setfield(L, -2, "workers");
    lua_pushinteger(L, s.capacity); lua_setfield(L, -2, "capacity");
    lua_pushinteger(L, s.queued); lua_setfield(L, -2, "queued");
    lua_pushinteger(L, s.running); lua_setfield(L, -2, "running");
    lua_pushboolean(L, s.paused); lua_setfield(L, -2, "paused");
    lua_pushinteger(L, s.submitted); lua_setfield(L, -2, "submitted");
    lua_pushinteger(L, s.done); lua_setfield(L, -2, "done");
    lua_pushinteger(L, s.failed); lua_setfield(L, -2, "failed");
    lua_pushinteger(L, s.cancelled); lua_setfield(L, -2, "cancelled");
    return 1;
}

static int q_tostring(lua_State *L) {
    lq *u = luaL_checkudata(L, 1, LANE_QUEUE);
    if (!u->q) {
        lua_pushliteral(L, "ane.Queue (closed)");
        return 1;
    }
    queue_stats s;
    queue_get_stats(u->q, &s);
    lua_pushfstring(L, "ane.Queue (%d workers, %d queued, %d running)", s.workers, s.queued, s.running);
    return 1;
}

/* ================= ane.Future ================= */

static lf *f_check(lua_State *L) {
    lf *u = luaL_checkudata(L, 1, LANE_FUTURE);
    if (!u->f) luaL_error(L, "future is released");
    return u;
}

static int f_done(lua_State *L) {
    lf *u = f_check(L);
    lua_pushboolean(L, future_is_final(u->f));
    return 1;
}

static int f_state(lua_State *L) {
    lf *u = f_check(L);
    lua_pushstring(L, future_state_name(future_get_state(u->f)));
    return 1;
}

/* future:wait([timeout_seconds]) */
static int f_wait(lua_State *L) {
    lf *u = f_check(L);
    double timeout = -1;
    if (!lua_isnoneornil(L, 2)) {
        timeout = luaL_checknumber(L, 2);
        luaL_argcheck(L, timeout >= 0, 2, "timeout must be >= 0 seconds");
    }
    if (lua_getiuservalue(L, 1, 1) != LUA_TNIL) return 1; /* taken before: the same kernel */
    lua_pop(L, 1);
    ane_error e;
    int rc = future_wait(u->f, timeout, &e);
    if (rc == ERR_TIMEOUT) return lane_fail(L, &e);
    if (rc) return lane_error(L, &e);
    kernel *k = future_take(u->f);
    if (!k) return luaL_error(L, "future: kernel already taken");
    lane_pushkernel(L, k); /* owns k from here */
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, 1, 1);
    return 1;
}

static int f_cancel(lua_State *L) {
    lf *u = f_check(L);
    lua_pushboolean(L, future_cancel(u->f));
    return 1;
}

static int f_gc(lua_State *L) {
    lf *u = luaL_checkudata(L, 1, LANE_FUTURE);
    future_release(u->f); /* frees a kernel nobody took */
    u->f = NULL;
    return 0;
}

static int f_tostring(lua_State *L) {
    lf *u = luaL_checkudata(L, 1, LANE_FUTURE);
    if (!u->f) lua_pushliteral(L, "ane.Future (released)");
    else lua_pushfstring(L, "ane.Future (%s)", future_state_name(future_get_state(u->f)));
    return 1;
}

/* ane.live_futures() -> C futures alive in the process (tests use it to prove no leaks). */
static int l_live_futures(lua_State *L) {
    lua_pushinteger(L, future_live_count());
    return 1;
}

/* ane.now() -> monotonic wall-clock seconds (os.clock measures CPU time, not elapsed time). */
static int l_now(lua_State *L) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9);
    return 1;
}

/* ================= ane.Chain ================= */

typedef struct lc {
    chain *c;
    int n;
    kernel **ks;     /* the kernels as bound, to detect one closed since */
    tensor **run_in; /* scratch for chain:run(inputs) */
} lc;

/* Uservalue 1: table { [1..n] = kernels, inputs = {tensors}, outputs = {tensors} }. */

static void lc_free(lc *u) {
    chain_free(u->c);
    u->c = NULL;
    free(u->ks);
    free(u->run_in);
    u->ks = NULL;
    u->run_in = NULL;
    u->n = 0;
}

static lc *c_check(lua_State *L) {
    lc *u = luaL_checkudata(L, 1, LANE_CHAIN);
    if (!u->c) luaL_error(L, "chain is closed");
    return u;
}

/* A tensor userdata that views t's storage (keeps it alive independently of the chain). */
static void push_view(lua_State *L, const tensor *t) {
    lane_tensor *lt = lane_pushtensor(L);
    ane_error e;
    if (tensor_init_on(&lt->t, t->st, t->offset, t->dt, t->rank, t->shape, &e) != 0) lane_error(L, &e);
}

static void push_io_list(lua_State *L, chain *c, int outputs, const kernel *k) {
    int n = outputs ? chain_noutputs(c) : chain_ninputs(c);
    lua_createtable(L, n, n);
    for (int i = 0; i < n; i++) {
        push_view(L, outputs ? chain_output(c, i) : chain_input(c, i));
        const char *name = outputs ? k->out[i].name : k->in[i].name;
        if (name) {
            lua_pushvalue(L, -1);
            lua_setfield(L, -3, name);
        }
        lua_rawseti(L, -2, i + 1);
    }
}

/* ane.chain{k1, k2, ..., bind = "auto"|"name"|"position", names = {"a", "b", ...}} */
static int l_chain_new(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    int n = (int)luaL_len(L, 1);
    luaL_argcheck(L, n >= 1, 1, "expected a list of at least one ane.Kernel");
    lua_pushnil(L);
    while (lua_next(L, 1)) { /* reject unknown keys */
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING) {
            const char *k = lua_tostring(L, -1);
            if (strcmp(k, "bind") && strcmp(k, "names"))
                luaL_argerror(L, 1, lua_pushfstring(L, "unknown option '%s'", k));
        } else if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > n) {
            luaL_argerror(L, 1, "expected a list of kernels plus named options");
        }
    }
    static const char *const binds[] = { "auto", "name", "position", NULL };
    lua_getfield(L, 1, "bind");
    chain_bind how = (chain_bind)luaL_checkoption(L, -1, "auto", binds);
    lua_pop(L, 1);
    int has_names = lua_getfield(L, 1, "names") != LUA_TNIL; /* stays at index names_idx */
    int names_idx = lua_gettop(L);
    if (has_names) luaL_argcheck(L, lua_istable(L, names_idx), 1, "'names' must be a list of strings");

    lc *u = lua_newuserdatauv(L, sizeof *u, 1);
    memset(u, 0, sizeof *u);
    luaL_setmetatable(L, LANE_CHAIN);
    int ud = lua_gettop(L);
    lua_createtable(L, n, 2); /* uservalue */
    int uv = lua_gettop(L);
    /* Scratch owned by the collector, so a raise below leaks nothing. */
    const char **names = lua_newuserdatauv(L, (size_t)n * sizeof *names, 0);
    memset(names, 0, (size_t)n * sizeof *names);
    u->ks = calloc((size_t)n, sizeof *u->ks); /* freed by the chain's __gc */
    if (!u->ks) return luaL_error(L, "chain: out of memory");
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, 1, i);
        kernel *k = lane_tokernel(L, -1);
        if (!k)
            return luaL_argerror(L, 1, lua_pushfstring(L, "element %d is not an open ane.Kernel", i));
        u->ks[i - 1] = k;
        lua_rawseti(L, uv, i);
        if (has_names) {
            if (lua_rawgeti(L, names_idx, i) != LUA_TSTRING)
                return luaL_argerror(L, 1, lua_pushfstring(L, "names[%d] must be a string", i));
            names[i - 1] = lua_tostring(L, -1); /* kept alive by the names table on the stack */
            lua_pop(L, 1);
        }
    }
    u->n = n;
    ane_error e;
    int rc = chain_new(u->ks, n, names, how, &u->c, &e);
    if (rc) return lane_error(L, &e);
    int nin = chain_ninputs(u->c);
    u->run_in = calloc((size_t)(nin > 0 ? nin : 1), sizeof *u->run_in);
    if (!u->run_in) return luaL_error(L, "chain: out of memory");
    push_io_list(L, u->c, 0, u->ks[0]);
    lua_setfield(L, uv, "inputs");
    push_io_list(L, u->c, 1, u->ks[n - 1]);
    lua_setfield(L, uv, "outputs");
    lua_pushvalue(L, uv);
    lua_setiuservalue(L, ud, 1);
    lua_pushvalue(L, ud);
    return 1;
}

/* chain:run([inputs]) -> the last kernel's output tensors (multiple values, in output order,
 * as kernel:eval returns them); inputs as for kernel:eval: a list or a table by name; nil runs
 * on chain:inputs() as written in place. Outputs are the chain's own buffers, overwritten by the
 * next run (chain:outputs() lists them by position and name). */
static int c_run(lua_State *L) {
    lc *u = c_check(L);
    lua_settop(L, 2);
    lua_getiuservalue(L, 1, 1); /* [self, inputs, uv] */
    int uv = lua_gettop(L);
    for (int i = 0; i < u->n; i++) {
        lua_rawgeti(L, uv, i + 1);
        if (lane_tokernel(L, -1) != u->ks[i])
            return luaL_error(L, "chain: kernel %d was closed after the chain was built", i + 1);
        lua_pop(L, 1);
    }
    tensor *const *in = NULL;
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        const kernel *k0 = u->ks[0];
        lua_Integer given = (lua_Integer)lua_rawlen(L, 2);
        if (given > 0 && given != k0->nin) { /* by position: exactly the first kernel's inputs */
            luaL_Buffer b;
            luaL_buffinit(L, &b);
            for (int j = 0; j < k0->nin; j++) {
                if (j) luaL_addstring(&b, ", ");
                luaL_addstring(&b, k0->in[j].name ? k0->in[j].name : "?");
            }
            luaL_pushresult(&b);
            return luaL_argerror(L, 2, lua_pushfstring(L, "%I inputs given, the chain's first kernel takes %d: %s",
                                                       given, k0->nin, lua_tostring(L, -1)));
        }
        for (int j = 0; j < k0->nin; j++) {
            lua_rawgeti(L, 2, j + 1);
            if (lua_isnil(L, -1) && k0->in[j].name) {
                lua_pop(L, 1);
                lua_getfield(L, 2, k0->in[j].name);
            }
            tensor *t = lane_totensor(L, -1);
            if (!t)
                return luaL_argerror(L, 2, lua_pushfstring(L, "input %d ('%s') is not an open ane.Tensor",
                                                           j + 1, k0->in[j].name ? k0->in[j].name : "?"));
            u->run_in[j] = t;
            lua_pop(L, 1);
        }
        in = u->run_in;
    }
    ane_error e;
    if (chain_run(u->c, in, &e) != 0) return lane_error(L, &e);
    lua_getfield(L, uv, "outputs");
    int nout = chain_noutputs(u->c);
    luaL_checkstack(L, nout, "too many outputs");
    int outs = lua_gettop(L);
    for (int i = 1; i <= nout; i++) lua_rawgeti(L, outs, i);
    return nout;
}

static int c_inputs(lua_State *L) {
    c_check(L);
    lua_getiuservalue(L, 1, 1);
    lua_getfield(L, -1, "inputs");
    return 1;
}

static int c_outputs(lua_State *L) {
    c_check(L);
    lua_getiuservalue(L, 1, 1);
    lua_getfield(L, -1, "outputs");
    return 1;
}

/* chain:times() -> { seconds of link 1, ..., total = seconds of the whole last run } */
static int c_times(lua_State *L) {
    lc *u = c_check(L);
    const uint64_t *t = chain_times_ns(u->c);
    lua_createtable(L, u->n, 1);
    for (int i = 0; i < u->n; i++) {
        lua_pushnumber(L, (double)t[i] * 1e-9);
        lua_rawseti(L, -2, i + 1);
    }
    lua_pushnumber(L, (double)chain_total_ns(u->c) * 1e-9);
    lua_setfield(L, -2, "total");
    return 1;
}

/* chain:binding(link, input) -> index (1-based) of link-1's output feeding that input. */
static int c_binding(lua_State *L) {
    lc *u = c_check(L);
    lua_Integer link = luaL_checkinteger(L, 2), input = luaL_checkinteger(L, 3);
    luaL_argcheck(L, link >= 2 && link <= u->n, 2, "link must be 2..#chain");
    luaL_argcheck(L, input >= 1 && input <= chain_link_ninputs(u->c, (int)link - 1), 3, "no such input");
    lua_pushinteger(L, chain_binding(u->c, (int)link - 1, (int)input - 1) + 1);
    return 1;
}

/* chain:staged() -> { link numbers (1-based) that copy their inputs instead of binding the
 * previous link's output surfaces directly } */
static int c_staged(lua_State *L) {
    lc *u = c_check(L);
    lua_newtable(L);
    for (int i = 1; i < u->n; i++)
        if (chain_link_staged(u->c, i)) {
            lua_pushinteger(L, i + 1);
            lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
        }
    return 1;
}

static int c_len(lua_State *L) {
    lc *u = luaL_checkudata(L, 1, LANE_CHAIN);
    lua_pushinteger(L, u->c ? u->n : 0);
    return 1;
}

static int c_close(lua_State *L) {
    lc *u = luaL_checkudata(L, 1, LANE_CHAIN);
    lc_free(u);
    return 0;
}

static int c_tostring(lua_State *L) {
    lc *u = luaL_checkudata(L, 1, LANE_CHAIN);
    if (!u->c) lua_pushliteral(L, "ane.Chain (closed)");
    else lua_pushfstring(L, "ane.Chain (%d kernels)", u->n);
    return 1;
}

void lane_open_queue(lua_State *L) {
    static const luaL_Reg qm[] = {
        { "compile", q_compile }, { "try_compile", q_try_compile }, { "close", q_close },
        { "stats", q_stats }, { "pause", q_pause }, { "resume", q_resume }, { NULL, NULL } };
    static const luaL_Reg qmeta[] = {
        { "__gc", q_close }, { "__close", q_close }, { "__tostring", q_tostring }, { NULL, NULL } };
    static const luaL_Reg fm[] = {
        { "done", f_done }, { "state", f_state }, { "wait", f_wait }, { "cancel", f_cancel },
        { NULL, NULL } };
    static const luaL_Reg fmeta[] = {
        { "__gc", f_gc }, { "__close", f_gc }, { "__tostring", f_tostring }, { NULL, NULL } };
    static const luaL_Reg cm[] = {
        { "run", c_run }, { "inputs", c_inputs }, { "outputs", c_outputs }, { "times", c_times },
        { "binding", c_binding }, { "staged", c_staged }, { "close", c_close }, { NULL, NULL } };
    static const luaL_Reg cmeta[] = {
        { "__gc", c_close }, { "__close", c_close }, { "__tostring", c_tostring }, { "__len", c_len },
        { NULL, NULL } };
    lane_newclass(L, LANE_QUEUE, qm, qmeta);
    lane_newclass(L, LANE_FUTURE, fm, fmeta);
    lane_newclass(L, LANE_CHAIN, cm, cmeta);
    static const luaL_Reg fns[] = {
        { "queue", l_queue_new }, { "chain", l_chain_new }, { "live_futures", l_live_futures },
        { "now", l_now },
        { NULL, NULL } };
    luaL_setfuncs(L, fns, 0);
}
