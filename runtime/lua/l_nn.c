/* l_nn.c - ane.nn: the CPU kernels of a training step (runtime/nn/nn.h) on ane.Tensors.
 *
 * Every function writes into tensors the caller owns (no allocation per call) and returns
 * nothing, except the losses. Arguments are checked by the core, whose messages name the
 * function and the tensor. The `nn` table is shared with other binding files (l_optim.c): each
 * opener adds its functions to ane.nn, creating it if it is not there yet. */
#include "../nn/nn.h"
#include "lane.h"

#define NN_MAX_ARGS 6

/* Tensors of one call, locked together (each storage once; written if any use writes). */
typedef struct {
    tensor *t[NN_MAX_ARGS];
    int write[NN_MAX_ARGS];
    int n;
} locks;

static tensor *arg(lua_State *L, locks *k, int idx, int write) {
    tensor *t = lane_checktensor(L, idx);
    k->t[k->n] = t;
    k->write[k->n] = write;
    k->n++;
    return t;
}

static tensor *optarg(lua_State *L, locks *k, int idx, int write) {
    return lua_isnoneornil(L, idx) ? NULL : arg(L, k, idx, write);
}

/* Lock all storages; raise (after unlocking what was locked) on failure. */
static void lock_all(lua_State *L, locks *k) {
    ane_error e;
    for (int i = 0; i < k->n; i++) {
        int dup = 0, w = k->write[i];
        for (int j = 0; j < k->n; j++) {
            if (k->t[j]->st != k->t[i]->st) continue;
            if (j < i) dup = 1;
            w |= k->write[j];
        }
        if (dup) continue;
        if (storage_lock(k->t[i]->st, !w, &e) != 0) {
            k->n = i; /* unlock the ones before */
            for (int a = 0; a < i; a++) {
                int d2 = 0, w2 = k->write[a];
                for (int b = 0; b < i; b++) {
                    if (k->t[b]->st != k->t[a]->st) continue;
                    if (b < a) d2 = 1;
                    w2 |= k->write[b];
                }
                if (!d2) storage_unlock(k->t[a]->st, !w2);
            }
            lane_error(L, &e);
        }
    }
}

static void unlock_all(locks *k) {
    for (int i = 0; i < k->n; i++) {
        int dup = 0, w = k->write[i];
        for (int j = 0; j < k->n; j++) {
            if (k->t[j]->st != k->t[i]->st) continue;
            if (j < i) dup = 1;
            w |= k->write[j];
        }
        if (!dup) storage_unlock(k->t[i]->st, !w);
    }
}

/* finish a call: unlock, raise on error */
static void done(lua_State *L, locks *k, int rc, ane_error *e) {
    unlock_all(k);
    if (rc) lane_error(L, e);
}

/* nn.embed(x, E, tokens, seq) */
static int n_embed(lua_State *L) {
    locks k = {0};
    tensor *x = arg(L, &k, 1, 1), *E = arg(L, &k, 2, 0), *tok = arg(L, &k, 3, 0);
    lua_Integer seq = luaL_checkinteger(L, 4);
    ane_error e;
    lock_all(L, &k);
    done(L, &k, nn_embed(x, E, tok, seq, &e), &e);
    return 0;
}

/* nn.embed_backward(dE, dx, tokens, seq) */
static int n_embed_backward(lua_State *L) {
    locks k = {0};
    tensor *dE = arg(L, &k, 1, 1), *dx = arg(L, &k, 2, 0), *tok = arg(L, &k, 3, 0);
    lua_Integer seq = luaL_checkinteger(L, 4);
    ane_error e;
    lock_all(L, &k);
    done(L, &k, nn_embed_backward(dE, dx, tok, seq, &e), &e);
    return 0;
}

/* nn.xent(logits [N, V], targets [N], scale) -> summed loss; logits become the gradient */
static int n_xent(lua_State *L) {
    locks k = {0};
    tensor *x = arg(L, &k, 1, 1), *t = arg(L, &k, 2, 0);
    double scale = luaL_optnumber(L, 3, 1.0), loss = 0;
    ane_error e;
    lock_all(L, &k);
    done(L, &k, nn_xent(x, t, scale, &loss, &e), &e);
    lua_pushnumber(L, loss);
    return 1;
}

/* nn.xent_probs(probs [B, V, S], targets [B*S], seq, scale) -> summed loss */
static int n_xent_probs(lua_State *L) {
    locks k = {0};
    tensor *p = arg(L, &k, 1, 1), *t = arg(L, &k, 2, 0);
    lua_Integer seq = luaL_checkinteger(L, 3);
    double scale = luaL_optnumber(L, 4, 1.0), loss = 0;
    ane_error e;
    lock_all(L, &k);
    done(L, &k, nn_xent_probs(p, t, seq, scale, &loss, &e), &e);
    lua_pushnumber(L, loss);
    return 1;
}

/* nn.rmsnorm(y, x, w, seq, eps) */
static int n_rmsnorm(lua_State *L) {
    locks k = {0};
    tensor *y = arg(L, &k, 1, 1), *x = arg(L, &k, 2, 0), *w = arg(L, &k, 3, 0);
    lua_Integer seq = luaL_checkinteger(L, 4);
    double eps = luaL_checknumber(L, 5);
    ane_error e;
    lock_all(L, &k);
    done(L, &k, nn_rmsnorm(y, x, w, seq, eps, &e), &e);
    return 0;
}

/* nn.rmsnorm_backward(dx or nil, dw, dy, x, w, seq, eps): dx += ..., dw += ... */
static int n_rmsnorm_backward(lua_State *L) {
    locks k = {0};
    tensor *dx = optarg(L, &k, 1, 1), *dw = arg(L, &k, 2, 1), *dy = arg(L, &k, 3, 0);
    tensor *x = arg(L, &k, 4, 0), *w = arg(L, &k, 5, 0);
    lua_Integer seq = luaL_checkinteger(L, 6);
    double eps = luaL_checknumber(L, 7);
    ane_error e;
    lock_all(L, &k);
    done(L, &k, nn_rmsnorm_backward(dx, dw, dy, x, w, seq, eps, &e), &e);
    return 0;
}

/* nn.gemm(C, A, B, ta, tb, alpha = 1, beta = 0, batch = 1): C = alpha·Σ_b op(A_b)op(B_b) + beta·C */
static int n_gemm(lua_State *L) {
    locks k = {0};
    tensor *C = arg(L, &k, 1, 1), *A = arg(L, &k, 2, 0), *B = arg(L, &k, 3, 0);
    int ta = lua_toboolean(L, 4), tb = lua_toboolean(L, 5);
    double alpha = luaL_optnumber(L, 6, 1.0), beta = luaL_optnumber(L, 7, 0.0);
    lua_Integer batch = luaL_optinteger(L, 8, 1);
    ane_error e;
    lock_all(L, &k);
    done(L, &k, nn_gemm(C, A, B, ta, tb, batch, alpha, beta, &e), &e);
    return 0;
}

/* nn.transpose(dst [N, M], src [M, N]) */
static int n_transpose(lua_State *L) {
    locks k = {0};
    tensor *d = arg(L, &k, 1, 1), *s = arg(L, &k, 2, 0);
    ane_error e;
    lock_all(L, &k);
    done(L, &k, nn_transpose(d, s, &e), &e);
    return 0;
}

/* nn.gather_rows(dst [k, D], src [V, D], ids [k]) */
static int n_gather_rows(lua_State *L) {
    locks k = {0};
    tensor *d = arg(L, &k, 1, 1), *s = arg(L, &k, 2, 0), *ids = arg(L, &k, 3, 0);
    ane_error e;
    lock_all(L, &k);
    done(L, &k, nn_gather_rows(d, s, ids, &e), &e);
    return 0;
}

/* nn.scatter_add_rows(dst [V, D], src [k, D], ids [k]) */
static int n_scatter_add_rows(lua_State *L) {
    locks k = {0};
    tensor *d = arg(L, &k, 1, 1), *s = arg(L, &k, 2, 0), *ids = arg(L, &k, 3, 0);
    ane_error e;
    lock_all(L, &k);
    done(L, &k, nn_scatter_add_rows(d, s, ids, &e), &e);
    return 0;
}

/* nn.remap(out, ids, map, allow_missing) */
static int n_remap(lua_State *L) {
    locks k = {0};
    tensor *o = arg(L, &k, 1, 1), *i = arg(L, &k, 2, 0), *m = arg(L, &k, 3, 0);
    int allow = lua_toboolean(L, 4);
    ane_error e;
    lock_all(L, &k);
    done(L, &k, nn_remap(o, i, m, allow, &e), &e);
    return 0;
}

/* ---- ane.nn.gemm_queue(): GEMMs on a worker thread ---- */
#define LANE_GEMMQ "ane.nn.GemmQueue"
typedef struct {
    nn_gemmq *q; /* NULL once closed */
} lgemmq;

static lgemmq *checkq(lua_State *L) {
    lgemmq *u = luaL_checkudata(L, 1, LANE_GEMMQ);
    if (!u->q) luaL_error(L, "ane.nn.GemmQueue is closed");
    return u;
}

static int q_new(lua_State *L) {
    lgemmq *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->q = NULL;
    luaL_setmetatable(L, LANE_GEMMQ);
    ane_error e;
    u->q = nn_gemmq_new(&e);
    if (!u->q) lane_error(L, &e);
    return 1;
}

/* q:gemm(C, A, B, ta, tb, alpha = 1, beta = 0, batch = 1) -> ticket (arguments as nn.gemm) */
static int q_gemm(lua_State *L) {
    lgemmq *u = checkq(L);
    tensor *C = lane_checktensor(L, 2), *A = lane_checktensor(L, 3), *B = lane_checktensor(L, 4);
    int ta = lua_toboolean(L, 5), tb = lua_toboolean(L, 6);
    double alpha = luaL_optnumber(L, 7, 1.0), beta = luaL_optnumber(L, 8, 0.0);
    lua_Integer batch = luaL_optinteger(L, 9, 1);
    uint64_t ticket = 0;
    ane_error e;
    if (nn_gemmq_push(u->q, C, A, B, ta, tb, batch, alpha, beta, &ticket, &e)) lane_error(L, &e);
    lua_pushinteger(L, (lua_Integer)ticket);
    return 1;
}

/* q:wait([ticket]): until that job (default: every job) finished */
static int q_wait(lua_State *L) {
    lgemmq *u = checkq(L);
    lua_Integer t = luaL_optinteger(L, 2, 0);
    nn_gemmq_wait(u->q, t < 0 ? 0 : (uint64_t)t);
    return 0;
}

static int q_gc(lua_State *L) {
    lgemmq *u = luaL_checkudata(L, 1, LANE_GEMMQ);
    nn_gemmq_free(u->q);
    u->q = NULL;
    return 0;
}

static int q_close(lua_State *L) {
    checkq(L);
    return q_gc(L);
}

static const luaL_Reg nn_funcs[] = {
    {"gemm_queue", q_new},
    {"embed", n_embed},
    {"embed_backward", n_embed_backward},
    {"xent", n_xent},
    {"xent_probs", n_xent_probs},
    {"rmsnorm", n_rmsnorm},
    {"rmsnorm_backward", n_rmsnorm_backward},
    {"gemm", n_gemm},
    {"transpose", n_transpose},
    {"gather_rows", n_gather_rows},
    {"scatter_add_rows", n_scatter_add_rows},
    {"remap", n_remap},
    {NULL, NULL},
};

void lane_open_nn(lua_State *L) {
    static const luaL_Reg methods[] = {{"gemm", q_gemm}, {"wait", q_wait}, {"close", q_close}, {NULL, NULL}};
    static const luaL_Reg meta[] = {{"__gc", q_gc}, {"__close", q_gc}, {NULL, NULL}};
    lane_newclass(L, LANE_GEMMQ, methods, meta);
    if (lua_getfield(L, -1, "nn") != LUA_TTABLE) { /* [ane, nn?] */
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, "nn");
    }
    luaL_setfuncs(L, nn_funcs, 0); /* [ane, nn] */
    lua_pop(L, 1);
}
