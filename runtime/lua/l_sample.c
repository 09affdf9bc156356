/* l_sample.c - ane.nn.sampler (ane.Sampler), ane.nn.argmax, ane.nn.causal_mask: the token-choice
 * side of inference (runtime/nn/sample.c) on ane.Tensor logits. */
#include <math.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../core/storage.h"
#include "../nn/membw.h"
#include "../nn/sample.h"
#include "lane.h"

#define LANE_SAMPLER "ane.Sampler"

typedef struct lane_sampler {
    sampler s; /* empty (s.prob == NULL) until built and after close */
} lane_sampler;

static sampler *checksampler(lua_State *L, int idx) {
    lane_sampler *u = luaL_checkudata(L, idx, LANE_SAMPLER);
    if (!u->s.prob) luaL_error(L, "ane.Sampler is closed");
    return &u->s;
}

static float optfield(lua_State *L, int idx, const char *k, double def) {
    lua_getfield(L, idx, k);
    double v = def;
    if (!lua_isnil(L, -1)) {
        if (!lua_isnumber(L, -1)) luaL_error(L, "sampler: '%s' must be a number", k);
        v = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
    return (float)v;
}

/* ane.nn.sampler{vocab = V, temperature = 1, topk = 0, topp = 0, repetition_penalty = 1, seed = 0} */
static int s_new(lua_State *L) {
    static const char *const known[] = {"vocab", "temperature", "topk", "topp", "repetition_penalty", "seed", NULL};
    luaL_checktype(L, 1, LUA_TTABLE);
    lane_checkopts(L, 1, known);
    lua_getfield(L, 1, "vocab");
    if (!lua_isinteger(L, -1)) return luaL_error(L, "sampler: 'vocab' must be an integer");
    lua_Integer vocab = lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (vocab < 1 || vocab > (1 << 30)) return luaL_error(L, "sampler: vocab must be in [1, 2^30], got %I", vocab);
    sampler_cfg c;
    c.temperature = optfield(L, 1, "temperature", 1.0);
    c.topp = optfield(L, 1, "topp", 0.0);
    c.repetition_penalty = optfield(L, 1, "repetition_penalty", 1.0);
    lua_getfield(L, 1, "topk");
    c.topk = 0;
    if (!lua_isnil(L, -1)) {
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0 || lua_tointeger(L, -1) > (1 << 30))
            return luaL_error(L, "sampler: 'topk' must be an integer >= 0");
        c.topk = (int)lua_tointeger(L, -1);
    }
    lua_pop(L, 1);
    lua_getfield(L, 1, "seed");
    c.seed = 0;
    if (!lua_isnil(L, -1)) {
        if (!lua_isinteger(L, -1)) return luaL_error(L, "sampler: 'seed' must be an integer");
        c.seed = (uint64_t)lua_tointeger(L, -1);
    }
    lua_pop(L, 1);
    lane_sampler *u = lua_newuserdatauv(L, sizeof *u, 0);
    memset(u, 0, sizeof *u);
    luaL_setmetatable(L, LANE_SAMPLER);
    ane_error e;
    err_clear(&e);
    if (sampler_init(&u->s, (int)vocab, &c, &e)) return lane_error(L, &e);
    return 1;
}

/* The floats of a logits tensor (fp32 read in place; fp16 converted into the sampler's scratch
 * is not needed: we ask for fp32). Returns data, count. */
static const float *checklogits(lua_State *L, int idx, int64_t *n, tensor **tp) {
    tensor *t = lane_checktensor(L, idx);
    if (t->dt != DT_FP32) luaL_argerror(L, idx, "logits must be an fp32 tensor");
    *n = tensor_numel(t);
    *tp = t;
    return tensor_data(t);
}

/* s:sample(logits) -> id (0-based, as the vocabulary numbers them) */
static int s_sample(lua_State *L) {
    sampler *s = checksampler(L, 1);
    int64_t n;
    tensor *t;
    const float *x = checklogits(L, 2, &n, &t);
    ane_error e;
    err_clear(&e);
    if (storage_lock(t->st, 1, &e)) return lane_error(L, &e);
    int id = 0;
    int rc = sampler_sample(s, x, n, 1, &id, &e);
    storage_unlock(t->st, 1);
    if (rc) return lane_error(L, &e);
    lua_pushinteger(L, id);
    return 1;
}

static int s_accept(lua_State *L) {
    sampler *s = checksampler(L, 1);
    lua_Integer id = luaL_checkinteger(L, 2);
    if (id >= 0 && id < s->vocab) sampler_accept(s, (int)id);
    lua_settop(L, 1);
    return 1;
}

/* s:reset([seed]): forget the seen ids; reseed when a seed is given. */
static int s_reset(lua_State *L) {
    sampler *s = checksampler(L, 1);
    sampler_forget(s);
    if (!lua_isnoneornil(L, 2)) sampler_reseed(s, (uint64_t)luaL_checkinteger(L, 2));
    lua_settop(L, 1);
    return 1;
}

static int s_coin(lua_State *L) {
    lua_pushnumber(L, sampler_coin(checksampler(L, 1)));
    return 1;
}

static int s_release(lua_State *L) {
    lane_sampler *u = luaL_checkudata(L, 1, LANE_SAMPLER);
    sampler_free(&u->s);
    return 0;
}

static int s_close(lua_State *L) {
    checksampler(L, 1);
    return s_release(L);
}

static int s_tostring(lua_State *L) {
    lane_sampler *u = luaL_checkudata(L, 1, LANE_SAMPLER);
    if (!u->s.prob) lua_pushliteral(L, "ane.Sampler (closed)");
    else
        lua_pushfstring(L, "ane.Sampler vocab %d temperature %f topk %d topp %f", u->s.vocab,
                        (double)u->s.cfg.temperature, u->s.cfg.topk, (double)u->s.cfg.topp);
    return 1;
}

/* ane.nn.argmax(t) -> 0-based index of the largest element (flat) */
static int n_argmax(lua_State *L) {
    int64_t n;
    tensor *t;
    const float *x = checklogits(L, 1, &n, &t);
    ane_error e;
    err_clear(&e);
    if (storage_lock(t->st, 1, &e)) return lane_error(L, &e);
    int64_t i = nn_argmax(x, n, 1);
    storage_unlock(t->st, 1);
    lua_pushinteger(L, (lua_Integer)i);
    return 1;
}

/* ane.nn.causal_mask(t [rows, cols] fp32, offset): t[r][c] = 0 if c <= offset + r (0-based), else -inf */
static int n_causal_mask(lua_State *L) {
    tensor *t = lane_checktensor(L, 1);
    lua_Integer off = luaL_checkinteger(L, 2);
    if (t->dt != DT_FP32 || t->rank != 2) return luaL_argerror(L, 1, "expected a rank-2 fp32 tensor");
    ane_error e;
    err_clear(&e);
    if (storage_lock(t->st, 0, &e)) return lane_error(L, &e);
    nn_causal_mask(tensor_data(t), t->shape[0], t->shape[1], off);
    storage_unlock(t->st, 0);
    lua_settop(L, 1);
    return 1;
}

/* ane.nn.stream_read(t [, threads = 2]) -> seconds: one read of t's bytes over threads (the
 * memory-bandwidth probe of the inference benchmark). */
static int n_stream_read(lua_State *L) {
    tensor *t = lane_checktensor(L, 1);
    lua_Integer th = luaL_optinteger(L, 2, 2);
    if (th < 1 || th > 64) return luaL_argerror(L, 2, "threads must be in [1, 64]");
    ane_error e;
    err_clear(&e);
    if (storage_lock(t->st, 1, &e)) return lane_error(L, &e);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    volatile uint64_t sum = nn_stream_read(tensor_data(t), tensor_nbytes(t), (int)th);
    clock_gettime(CLOCK_MONOTONIC, &b);
    (void)sum;
    storage_unlock(t->st, 1);
    lua_pushnumber(L, (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec));
    return 1;
}

/* ane.nn.copy_rows(dst, drow, src, srow [, n = 1]): rows are the first axis (0-based here, as
 * the token positions they hold); dst and src must have the same dtype and row width. The
 * KV-cache and embedding moves of decode without a view per call. */
static int n_copy_rows(lua_State *L) {
    tensor *d = lane_checktensor(L, 1);
    lua_Integer dr = luaL_checkinteger(L, 2);
    tensor *s = lane_checktensor(L, 3);
    lua_Integer sr = luaL_checkinteger(L, 4);
    lua_Integer n = luaL_optinteger(L, 5, 1);
    if (d->dt != s->dt) return luaL_argerror(L, 3, "dtype differs from dst");
    int64_t dw = d->rank ? tensor_numel(d) / d->shape[0] : 1, sw = s->rank ? tensor_numel(s) / s->shape[0] : 1;
    if (dw != sw) return luaL_error(L, "copy_rows: row widths differ (%I vs %I elements)", (lua_Integer)dw, (lua_Integer)sw);
    int64_t dn = d->rank ? d->shape[0] : 1, sn = s->rank ? s->shape[0] : 1;
    if (n < 0 || dr < 0 || sr < 0 || dr + n > dn || sr + n > sn)
        return luaL_error(L, "copy_rows: rows [%I, %I) of dst (%I rows) or [%I, %I) of src (%I rows) out of range",
                          dr, dr + n, (lua_Integer)dn, sr, sr + n, (lua_Integer)sn);
    ane_error e;
    err_clear(&e);
    if (storage_lock(s->st, 1, &e)) return lane_error(L, &e);
    if (storage_lock(d->st, 0, &e)) {
        storage_unlock(s->st, 1);
        return lane_error(L, &e);
    }
    size_t row = (size_t)dw * dtype_size(d->dt);
    memmove((char *)tensor_data(d) + (size_t)dr * row, (const char *)tensor_data(s) + (size_t)sr * row, (size_t)n * row);
    storage_unlock(d->st, 0);
    storage_unlock(s->st, 1);
    lua_settop(L, 1);
    return 1;
}

/* ane.nn.evict(t) -> bytes: drop the resident pages of a file-mapped tensor (storage kind
 * "mmap", read-only use) from this process: they are read again from the file if touched. Other
 * storages are left alone (0). For loaders that copy a checkpoint once and want RSS to stay at
 * one copy. */
static int n_evict(lua_State *L) {
    tensor *t = lane_checktensor(L, 1);
    lua_Integer done = 0;
    if (t->st && t->st->ops && t->st->ops->kind && strcmp(t->st->ops->kind, "mmap") == 0 && t->st->data) {
        long pg = sysconf(_SC_PAGESIZE);
        uintptr_t a = (uintptr_t)tensor_data(t), b = a + tensor_nbytes(t);
        uintptr_t lo = (a + (uintptr_t)pg - 1) & ~((uintptr_t)pg - 1), hi = b & ~((uintptr_t)pg - 1);
        if (hi > lo && madvise((void *)lo, hi - lo, MADV_DONTNEED) == 0) done = (lua_Integer)(hi - lo);
    }
    lua_pushinteger(L, done);
    return 1;
}

void lane_open_sample(lua_State *L) {
    static const luaL_Reg methods[] = {
        {"sample", s_sample}, {"accept", s_accept}, {"reset", s_reset}, {"coin", s_coin},
        {"close", s_close}, {NULL, NULL}};
    static const luaL_Reg meta[] = {{"__gc", s_release}, {"__close", s_release}, {"__tostring", s_tostring}, {NULL, NULL}};
    lane_newclass(L, LANE_SAMPLER, methods, meta);
    static const luaL_Reg fns[] = {
        {"sampler", s_new}, {"argmax", n_argmax}, {"causal_mask", n_causal_mask},
        {"stream_read", n_stream_read}, {"copy_rows", n_copy_rows}, {"evict", n_evict},
        {NULL, NULL}};
    /* ane.nn is shared with the training kernels' bindings: reuse the table when it exists */
    if (lua_getfield(L, -1, "nn") != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, "nn");
    }
    luaL_setfuncs(L, fns, 0);
    lua_pop(L, 1);
}
