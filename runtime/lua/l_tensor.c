/* l_tensor.c - the ane.Tensor userdata and the tensor functions of the module table.
 *
 * Lua indices are 1-BASED: t:get(1, 1) is the first element, t[1] the first row (or element of a
 * rank-1 tensor), t:sub(1, 2) the first two rows. Views (reshape, sub, t[i] on rank >= 2) share the
 * storage; the storage is refcounted and each view also keeps its base userdata alive in user
 * value 1. Every function checks all its arguments before it creates a userdata or allocates. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../core/fp16.h"
#include "../core/npy.h"
#include "lane.h"

#define LANE_RNG "ane.Rng"

/* ---- checks shared by every function ---- */

static const char *const dtype_names[] = {"fp16", "fp32", "int32", "int8", "uint8", "bool", NULL};

static dtype optdtype(lua_State *L, int idx, dtype def) {
    if (lua_isnoneornil(L, idx)) return def;
    const char *name = luaL_checkstring(L, idx);
    dtype dt;
    if (dtype_parse(name, &dt) != 0)
        luaL_argerror(L, idx, lua_pushfstring(L, "unknown dtype '%s' (fp16, fp32, int32, int8, uint8, bool)", name));
    return dt;
}

/* A shape table {d1, ..., dk}: 1 <= k <= 5, every dim a positive integer, or one -1 when infer is
 * not NULL (its position goes to *infer). Returns the rank. */
static int checkshape_ex(lua_State *L, int idx, int64_t *shape, int *infer) {
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_Integer n = luaL_len(L, idx);
    if (n < 1 || n > TENSOR_MAX_RANK)
        luaL_argerror(L, idx, lua_pushfstring(L, "shape must have 1 to %d dimensions, got %I", TENSOR_MAX_RANK, n));
    if (infer) *infer = -1;
    for (int i = 0; i < n; i++) {
        int isint = 0;
        lua_geti(L, idx, i + 1);
        lua_Integer d = lua_type(L, -1) == LUA_TNUMBER ? lua_tointegerx(L, -1, &isint) : 0;
        if (isint && d == -1 && infer) {
            if (*infer >= 0) luaL_argerror(L, idx, lua_pushfstring(L, "shape[%d]: only one dimension may be -1", i + 1));
            *infer = i;
        } else if (!isint || d < 1) {
            const char *got = lua_type(L, -1) == LUA_TNUMBER ? lua_pushfstring(L, "%s", luaL_tolstring(L, -1, NULL))
                                                              : luaL_typename(L, -1);
            luaL_argerror(L, idx, lua_pushfstring(L, "shape[%d] must be a positive integer, got %s", i + 1, got));
        }
        shape[i] = d;
        lua_pop(L, 1);
    }
    return (int)n;
}

static int checkshape(lua_State *L, int idx, int64_t *shape, dtype dt) {
    int rank = checkshape_ex(L, idx, shape, NULL);
    ane_error e;
    if (shape_check(rank, shape, dt, &e) != 0) luaL_argerror(L, idx, lua_pushstring(L, e.msg));
    return rank;
}

/* A Lua value as an element of dtype dt: numbers (integral and in range for integer dtypes) and,
 * for any dtype, booleans (1/0). On failure *err is a message (pushed on the stack). */
static int tovalue(lua_State *L, int idx, dtype dt, double *out, const char **err) {
    int t = lua_type(L, idx);
    if (t == LUA_TBOOLEAN) { *out = lua_toboolean(L, idx); return 1; }
    if (t != LUA_TNUMBER) { *err = lua_pushfstring(L, "number expected, got %s", luaL_typename(L, idx)); return 0; }
    if (dt == DT_FP16 || dt == DT_FP32 || dt == DT_BOOL) { *out = lua_tonumber(L, idx); return 1; }
    int isint;
    lua_Integer v = lua_tointegerx(L, idx, &isint);
    lua_Integer lo = dt == DT_INT32 ? INT32_MIN : dt == DT_INT8 ? INT8_MIN : 0;
    lua_Integer hi = dt == DT_INT32 ? INT32_MAX : dt == DT_INT8 ? INT8_MAX : UINT8_MAX;
    if (!isint || v < lo || v > hi) {
        *err = lua_pushfstring(L, "%s is not a valid %s value", luaL_tolstring(L, idx, NULL), dtype_name(dt));
        return 0;
    }
    *out = (double)v;
    return 1;
}

static double checkvalue(lua_State *L, int idx, dtype dt) {
    double v = 0;
    const char *err;
    if (!tovalue(L, idx, dt, &v, &err)) luaL_argerror(L, idx, err);
    return v;
}

static void pushvalue(lua_State *L, const tensor *t, int64_t i) {
    double v = tensor_get(t, i);
    switch (t->dt) {
    case DT_BOOL: lua_pushboolean(L, v != 0); break;
    case DT_INT32: case DT_INT8: case DT_UINT8: lua_pushinteger(L, (lua_Integer)v); break;
    default: lua_pushnumber(L, v); break;
    }
}

/* ---- the boundary type ---- */

static void tensor_class(lua_State *L);

static lane_tensor *touser(lua_State *L, int idx) { return luaL_checkudata(L, idx, LANE_TENSOR); }

tensor *lane_checktensor(lua_State *L, int idx) {
    lane_tensor *u = touser(L, idx);
    if (!u->t.st) luaL_argerror(L, idx, "ane.Tensor is closed");
    return &u->t;
}

tensor *lane_totensor(lua_State *L, int idx) {
    lane_tensor *u = luaL_testudata(L, idx, LANE_TENSOR);
    return u && u->t.st ? &u->t : NULL;
}

lane_tensor *lane_pushtensor(lua_State *L) {
    lane_tensor *u = lua_newuserdatauv(L, sizeof *u, 1); /* [u] */
    memset(u, 0, sizeof *u);
    if (luaL_getmetatable(L, LANE_TENSOR) == LUA_TNIL) { /* a binding ran before lane_open_tensor */
        lua_pop(L, 1);
        tensor_class(L);
        luaL_getmetatable(L, LANE_TENSOR);
    }
    lua_setmetatable(L, -2);
    return u;
}

/* Lock for CPU access (a no-op for heap storage); raise on failure. Nothing between lock and
 * unlock may raise, except memory errors while building tables in to_table. */
static void lockt(lua_State *L, tensor *t, int readonly) {
    ane_error e;
    if (storage_lock(t->st, readonly, &e) != 0) lane_error(L, &e);
}

/* A new heap tensor pushed on the stack; the arguments are already checked. */
static tensor *newtensor(lua_State *L, dtype dt, int rank, const int64_t *shape) {
    lane_tensor *u = lane_pushtensor(L);
    ane_error e;
    if (tensor_init(&u->t, dt, rank, shape, &e) != 0) lane_error(L, &e);
    lane_gcstep(L);
    return &u->t;
}

/* A view over base (at stack index bidx) pushed on the stack; keeps base alive. */
static tensor *newview(lua_State *L, int bidx, size_t offset, dtype dt, int rank, const int64_t *shape) {
    bidx = lua_absindex(L, bidx);
    tensor *base = lane_checktensor(L, bidx);
    lane_tensor *u = lane_pushtensor(L);    /* [.., view] */
    ane_error e;
    if (tensor_init_on(&u->t, base->st, offset, dt, rank, shape, &e) != 0) lane_error(L, &e);
    lua_pushvalue(L, bidx);
    lua_setiuservalue(L, -2, 1);
    return &u->t;
}

/* ---- module functions ---- */

/* ane.zeros(shape, dtype = "fp16") */
static int t_zeros(lua_State *L) {
    int64_t shape[TENSOR_MAX_RANK];
    dtype dt = optdtype(L, 2, DT_FP16);
    int rank = checkshape(L, 1, shape, dt);
    newtensor(L, dt, rank, shape);
    return 1;
}

/* ane.full(shape, value, dtype = "fp16") */
static int t_full(lua_State *L) {
    int64_t shape[TENSOR_MAX_RANK];
    dtype dt = optdtype(L, 3, DT_FP16);
    int rank = checkshape(L, 1, shape, dt);
    double v = checkvalue(L, 2, dt);
    tensor *t = newtensor(L, dt, rank, shape);
    tensor_fill(t, v);
    return 1;
}

/* Nested tables: the shape comes from following first elements (t, t[1], t[1][1], ...); then a
 * walk checks every entry against it (mode 0) or stores the values (mode 1, cannot fail). */
typedef struct walk {
    int mode, rank;
    int64_t shape[TENSOR_MAX_RANK], path[TENSOR_MAX_RANK], pos;
    dtype dt;
    tensor *t;
} walk;

static const char *pathstr(lua_State *L, const walk *w, int depth) {
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 0; i <= depth; i++) {
        char s[32];
        snprintf(s, sizeof s, "[%lld]", (long long)w->path[i]);
        luaL_addstring(&b, s);
    }
    luaL_pushresult(&b);
    return lua_tostring(L, -1);
}

static void infer_shape(lua_State *L, int idx, walk *w) {
    int top = lua_gettop(L);
    lua_pushvalue(L, idx);
    for (;;) {
        lua_Integer n = luaL_len(L, -1);
        if (n < 1) luaL_argerror(L, idx, w->rank ? lua_pushfstring(L, "empty table at %s", pathstr(L, w, w->rank - 1)) : "empty table");
        if (w->rank == TENSOR_MAX_RANK) luaL_argerror(L, idx, lua_pushfstring(L, "nested deeper than %d levels", TENSOR_MAX_RANK));
        w->path[w->rank] = 1;
        w->shape[w->rank++] = n;
        if (lua_geti(L, -1, 1) != LUA_TTABLE) break;
    }
    lua_settop(L, top);
}

static void walk_table(lua_State *L, walk *w, int depth) {
    int tidx = lua_gettop(L);
    lua_Integer n = luaL_len(L, tidx);
    if (n != w->shape[depth])
        luaL_argerror(L, 1, lua_pushfstring(L, "ragged table: %s has %I entries, expected %I", pathstr(L, w, depth - 1), n,
                                            (lua_Integer)w->shape[depth]));
    for (lua_Integer i = 1; i <= n; i++) {
        w->path[depth] = i;
        int ty = lua_geti(L, tidx, i);
        if (depth + 1 < w->rank) {
            if (ty != LUA_TTABLE) {
                /* the type first: pathstr pushes, and argument order is the compiler's choice */
                const char *tn = luaL_typename(L, -1);
                luaL_argerror(L, 1, lua_pushfstring(L, "ragged table: %s is a %s, expected a table", pathstr(L, w, depth), tn));
            }
            walk_table(L, w, depth + 1);
        } else {
            double v = 0;
            const char *err = NULL;
            if (!tovalue(L, -1, w->dt, &v, &err) && w->mode == 0)
                luaL_argerror(L, 1, lua_pushfstring(L, "element %s: %s", pathstr(L, w, depth), err));
            if (w->mode == 1) tensor_set(w->t, w->pos, v);
            w->pos++;
        }
        lua_settop(L, tidx);
    }
}

/* ane.from_table(tbl, dtype = "fp16" [, shape]): nested tables give the shape; with a shape, tbl is
 * a flat list of exactly numel values. */
static int t_from_table(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    dtype dt = optdtype(L, 2, DT_FP16);
    walk w;
    memset(&w, 0, sizeof w);
    w.dt = dt;
    if (!lua_isnoneornil(L, 3)) {
        w.rank = checkshape(L, 3, w.shape, dt);
        int64_t n = shape_numel(w.rank, w.shape);
        if (luaL_len(L, 1) != n)
            luaL_argerror(L, 1, lua_pushfstring(L, "%I values for a shape of %I elements", luaL_len(L, 1), (lua_Integer)n));
        for (int64_t i = 1; i <= n; i++) {
            double v;
            const char *err;
            lua_geti(L, 1, i);
            if (!tovalue(L, -1, dt, &v, &err)) luaL_argerror(L, 1, lua_pushfstring(L, "element [%I]: %s", (lua_Integer)i, err));
            lua_pop(L, 1);
        }
        tensor *t = newtensor(L, dt, w.rank, w.shape);
        for (int64_t i = 1; i <= n; i++) {
            double v = 0;
            const char *err;
            lua_geti(L, 1, i);
            tovalue(L, -1, dt, &v, &err);
            tensor_set(t, i - 1, v);
            lua_pop(L, 1);
        }
        return 1;
    }
    lua_settop(L, 1);
    infer_shape(L, 1, &w);
    lua_pushvalue(L, 1);
    walk_table(L, &w, 0);                   /* raises on any problem */
    lua_pop(L, 1);
    ane_error e;
    if (shape_check(w.rank, w.shape, dt, &e) != 0) luaL_argerror(L, 1, lua_pushstring(L, e.msg));
    tensor *t = newtensor(L, dt, w.rank, w.shape); /* [tbl, t] */
    w.mode = 1;
    w.t = t;
    w.pos = 0;
    lua_pushvalue(L, 1);                    /* [tbl, t, tbl] */
    walk_table(L, &w, 0);
    lua_pop(L, 1);
    return 1;
}

/* ane.from_bytes(s, dtype, shape): a tensor holding a copy of the raw little-endian bytes of s,
 * which must be exactly numel * element size long (string.pack output, file contents). */
static int t_from_bytes(lua_State *L) {
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    luaL_checkstring(L, 2); /* no default dtype: raw bytes do not say what they are */
    dtype dt = optdtype(L, 2, DT_FP16);
    int64_t shape[TENSOR_MAX_RANK];
    int rank = checkshape(L, 3, shape, dt);
    size_t want = (size_t)shape_numel(rank, shape) * dtype_size(dt);
    if (n != want)
        luaL_argerror(L, 1, lua_pushfstring(L, "%I bytes for %I expected", (lua_Integer)n, (lua_Integer)want));
    tensor *t = newtensor(L, dt, rank, shape);
    memcpy(tensor_data(t), s, n);
    return 1;
}

/* ane.load_npy(path) -> tensor | nil, message (missing, unreadable or malformed file). */
static int t_load_npy(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    lane_tensor *u = lane_pushtensor(L);
    ane_error e;
    if (npy_load(path, &u->t, &e) != 0) return lane_fail(L, &e);
    lane_gcstep(L);
    return 1;
}

static int t_memory(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)storage_live_bytes());
    return 1;
}

static int t_fp16_round(lua_State *L) {
    lua_pushnumber(L, fp16_to_f32(fp16_from_f64(luaL_checknumber(L, 1))));
    return 1;
}

static int t_fp16_bits(lua_State *L) {
    lua_pushinteger(L, fp16_from_f64(luaL_checknumber(L, 1)));
    return 1;
}

static int t_fp16_from_bits(lua_State *L) {
    lua_Integer h = luaL_checkinteger(L, 1);
    luaL_argcheck(L, h >= 0 && h <= 0xffff, 1, "fp16 bits must be in 0..65535");
    lua_pushnumber(L, fp16_to_f32((uint16_t)h));
    return 1;
}

/* ane.fp16_simd([on]) -> "f16c" | "neon" | "scalar": the conversion path; a boolean switches the
 * vector path on or off first (for benchmarks and cross-checks). */
static int t_fp16_simd(lua_State *L) {
    if (!lua_isnoneornil(L, 1)) {
        luaL_checktype(L, 1, LUA_TBOOLEAN);
        fp16_set_simd(lua_toboolean(L, 1));
    }
    lua_pushstring(L, fp16_simd());
    return 1;
}

/* ---- random numbers ---- */

static rng *checkrng(lua_State *L, int idx) { return luaL_checkudata(L, idx, LANE_RNG); }

/* ane.rng(seed = 0) -> ane.Rng, a xoshiro256** stream: same seed, same numbers on every platform. */
static int r_new(lua_State *L) {
    lua_Integer seed = luaL_optinteger(L, 1, 0);
    rng *r = lua_newuserdatauv(L, sizeof *r, 0);
    rng_seed(r, (uint64_t)seed);
    luaL_setmetatable(L, LANE_RNG);
    return 1;
}

/* rng:uniform([lo = 0, hi = 1]) -> number in [lo, hi) */
static int r_uniform(lua_State *L) {
    rng *r = checkrng(L, 1);
    double lo = luaL_optnumber(L, 2, 0), hi = luaL_optnumber(L, 3, 1);
    lua_pushnumber(L, lo + (hi - lo) * rng_uniform(r));
    return 1;
}

/* rng:normal([mean = 0, std = 1]) */
static int r_normal(lua_State *L) {
    rng *r = checkrng(L, 1);
    double mean = luaL_optnumber(L, 2, 0), std = luaL_optnumber(L, 3, 1);
    lua_pushnumber(L, mean + std * rng_normal(r));
    return 1;
}

static int r_tostring(lua_State *L) {
    checkrng(L, 1);
    lua_pushstring(L, "ane.Rng");
    return 1;
}

typedef struct randopts {
    int normal;
    double a, b;   /* lo, hi or mean, std */
    rng own, *r;   /* r points at own (seeded) or at a caller's ane.Rng */
    dtype dt;
} randopts;

static double optfield(lua_State *L, int idx, const char *k, double def, int *given) {
    int ty = lua_getfield(L, idx, k);
    double v = def;
    if (ty != LUA_TNIL) {
        if (ty != LUA_TNUMBER)
            luaL_argerror(L, idx, lua_pushfstring(L, "option '%s' must be a number, got %s", k, luaL_typename(L, -1)));
        v = lua_tonumber(L, -1);
        if (given) *given = 1;
    }
    lua_pop(L, 1);
    return v;
}

/* Options {dist = "uniform"|"normal", lo, hi | mean, std, seed | rng [, dtype]}; unknown keys raise. */
static void checkrandopts(lua_State *L, int idx, randopts *o, int with_dtype) {
    static const char *const known_dt[] = {"dist", "lo", "hi", "mean", "std", "seed", "rng", "dtype", NULL};
    lane_checkopts(L, idx, with_dtype ? known_dt : (const char *const[]){"dist", "lo", "hi", "mean", "std", "seed", "rng", NULL});
    memset(o, 0, sizeof *o);
    o->dt = DT_FP16;
    uint64_t seed = 0;
    o->r = &o->own;
    if (lua_isnoneornil(L, idx)) {
        o->b = 1;
        rng_seed(o->r, 0);
        return;
    }
    if (lua_getfield(L, idx, "dist") != LUA_TNIL) {
        const char *d = lua_tostring(L, -1);
        if (lua_type(L, -1) != LUA_TSTRING || (strcmp(d, "uniform") != 0 && strcmp(d, "normal") != 0))
            luaL_argerror(L, idx, "option 'dist' must be \"uniform\" or \"normal\"");
        o->normal = d[0] == 'n';
    }
    lua_pop(L, 1);
    int lohi = 0, meanstd = 0;
    if (o->normal) {
        o->a = optfield(L, idx, "mean", 0, &meanstd);
        o->b = optfield(L, idx, "std", 1, &meanstd);
        optfield(L, idx, "lo", 0, &lohi);
        optfield(L, idx, "hi", 0, &lohi);
        if (lohi) luaL_argerror(L, idx, "options 'lo' and 'hi' apply to dist = \"uniform\"");
    } else {
        o->a = optfield(L, idx, "lo", 0, &lohi);
        o->b = optfield(L, idx, "hi", 1, &lohi);
        optfield(L, idx, "mean", 0, &meanstd);
        optfield(L, idx, "std", 0, &meanstd);
        if (meanstd) luaL_argerror(L, idx, "options 'mean' and 'std' apply to dist = \"normal\"");
    }
    int has_seed = lua_getfield(L, idx, "seed") != LUA_TNIL;
    if (has_seed) {
        int isint;
        seed = (uint64_t)lua_tointegerx(L, -1, &isint);
        if (!isint || lua_type(L, -1) != LUA_TNUMBER) luaL_argerror(L, idx, "option 'seed' must be an integer");
    }
    lua_pop(L, 1);
    if (lua_getfield(L, idx, "rng") != LUA_TNIL) {
        rng *r = luaL_testudata(L, -1, LANE_RNG);
        if (!r) luaL_argerror(L, idx, "option 'rng' must be an ane.Rng");
        if (has_seed) luaL_argerror(L, idx, "give 'seed' or 'rng', not both");
        o->r = r; /* stays valid: the options table holds it for the whole call */
    } else {
        rng_seed(o->r, seed);
    }
    lua_pop(L, 1);
    if (with_dtype) {
        lua_getfield(L, idx, "dtype");
        if (!lua_isnil(L, -1)) {
            dtype dt = o->dt; /* luaL_argerror does not return; clang 14 cannot see that */
            if (lua_type(L, -1) != LUA_TSTRING || dtype_parse(lua_tostring(L, -1), &dt) != 0)
                luaL_argerror(L, idx, "option 'dtype' must be one of fp16, fp32, int32, int8, uint8, bool");
            o->dt = dt;
        }
        lua_pop(L, 1);
    }
}

static void randfill(tensor *t, randopts *o) {
    if (o->normal) tensor_rand_normal(t, o->r, o->a, o->b);
    else tensor_rand_uniform(t, o->r, o->a, o->b);
}

/* ane.rand(shape [, opts]): opts as checkrandopts; default uniform [0, 1), seed 0, fp16. */
static int t_rand(lua_State *L) {
    randopts o;
    int64_t shape[TENSOR_MAX_RANK];
    checkrandopts(L, 2, &o, 1);
    int rank = checkshape(L, 1, shape, o.dt);
    tensor *t = newtensor(L, o.dt, rank, shape);
    randfill(t, &o);
    return 1;
}

/* ---- methods ---- */

static int m_rand(lua_State *L) {
    tensor *t = lane_checktensor(L, 1);
    randopts o;
    checkrandopts(L, 2, &o, 0);
    lockt(L, t, 0);
    randfill(t, &o);
    storage_unlock(t->st, 0);
    lua_settop(L, 1);
    return 1;
}

static int m_shape(lua_State *L) {
    tensor *t = lane_checktensor(L, 1);
    lua_createtable(L, t->rank, 0);
    for (int i = 0; i < t->rank; i++) {
        lua_pushinteger(L, t->shape[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int m_dtype(lua_State *L) {
    lua_pushstring(L, dtype_name(lane_checktensor(L, 1)->dt));
    return 1;
}

static int m_numel(lua_State *L) {
    lua_pushinteger(L, tensor_numel(lane_checktensor(L, 1)));
    return 1;
}

static int m_rank(lua_State *L) {
    lua_pushinteger(L, lane_checktensor(L, 1)->rank);
    return 1;
}

static int m_nbytes(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)tensor_nbytes(lane_checktensor(L, 1)));
    return 1;
}

static int m_storage_kind(lua_State *L) {
    lua_pushstring(L, lane_checktensor(L, 1)->st->ops->kind);
    return 1;
}

/* Flat index from the 1-based indices at stack positions first..first+rank-1. */
static int64_t checkindex(lua_State *L, const tensor *t, int first, int nidx) {
    if (nidx != t->rank)
        luaL_error(L, "expected %d ind%s for a rank-%d ane.Tensor, got %d", t->rank, t->rank == 1 ? "ex" : "ices", t->rank,
                   nidx);
    int64_t flat = 0;
    for (int d = 0; d < t->rank; d++) {
        lua_Integer i = luaL_checkinteger(L, first + d);
        if (i < 1 || i > t->shape[d])
            luaL_argerror(L, first + d, lua_pushfstring(L, "index %I out of range [1, %I]", i, (lua_Integer)t->shape[d]));
        flat = flat * t->shape[d] + (i - 1);
    }
    return flat;
}

/* t:get(i1, ..., ik) with 1-based indices, one per dimension. */
static int m_get(lua_State *L) {
    tensor *t = lane_checktensor(L, 1);
    int64_t i = checkindex(L, t, 2, lua_gettop(L) - 1);
    lockt(L, t, 1);
    pushvalue(L, t, i);
    storage_unlock(t->st, 1);
    return 1;
}

/* t:set(i1, ..., ik, v) -> t */
static int m_set(lua_State *L) {
    tensor *t = lane_checktensor(L, 1);
    int top = lua_gettop(L);
    if (top < 2) luaL_error(L, "expected %d indices and a value", t->rank);
    int64_t i = checkindex(L, t, 2, top - 2);
    double v = checkvalue(L, top, t->dt);
    lockt(L, t, 0);
    tensor_set(t, i, v);
    storage_unlock(t->st, 0);
    lua_settop(L, 1);
    return 1;
}

static int m_fill(lua_State *L) {
    tensor *t = lane_checktensor(L, 1);
    double v = checkvalue(L, 2, t->dt);
    lockt(L, t, 0);
    tensor_fill(t, v);
    storage_unlock(t->st, 0);
    lua_settop(L, 1);
    return 1;
}

static void checksamenumel(lua_State *L, int idx, const tensor *self, const tensor *other) {
    if (tensor_numel(self) != tensor_numel(other)) {
        char a[128], b[128];
        luaL_argerror(L, idx, lua_pushfstring(L, "shape %s does not match %s (element counts differ)",
                                              shape_str(other->rank, other->shape, a, sizeof a),
                                              shape_str(self->rank, self->shape, b, sizeof b)));
    }
}

static void checkfloat(lua_State *L, int idx, const tensor *t) {
    if (t->dt != DT_FP16 && t->dt != DT_FP32)
        luaL_argerror(L, idx, lua_pushfstring(L, "fp16 or fp32 ane.Tensor expected, got %s", dtype_name(t->dt)));
}

/* Run a binary core op with src locked for reading and dst for writing (one lock if shared). */
typedef enum { OP_COPY, OP_ADD, OP_AXPY } binop;

static void locked2(lua_State *L, tensor *dst, const tensor *src, binop op, double a) {
    ane_error e;
    int same = dst->st == src->st;
    lockt(L, dst, 0);
    if (!same && storage_lock(src->st, 1, &e) != 0) {
        storage_unlock(dst->st, 0);
        lane_error(L, &e);
    }
    int rc = op == OP_COPY ? tensor_copy(dst, src, &e) : op == OP_ADD ? tensor_add(dst, dst, src, &e)
                                                                      : tensor_axpy(dst, a, src, &e);
    if (!same) storage_unlock(src->st, 1);
    storage_unlock(dst->st, 0);
    if (rc) lane_error(L, &e);
}

/* t:copy(src) -> t; any dtypes, equal element counts, converting. */
static int m_copy(lua_State *L) {
    tensor *t = lane_checktensor(L, 1), *s = lane_checktensor(L, 2);
    checksamenumel(L, 2, t, s);
    locked2(L, t, s, OP_COPY, 0);
    lua_settop(L, 1);
    return 1;
}

/* t:clone([dtype]) -> a new heap tensor with the same shape (converted to dtype if given). */
static int m_clone(lua_State *L) {
    tensor *t = lane_checktensor(L, 1);
    dtype dt = optdtype(L, 2, t->dt);
    tensor *c = newtensor(L, dt, t->rank, t->shape);
    locked2(L, c, t, OP_COPY, 0);
    return 1;
}

static int m_scale(lua_State *L) {
    tensor *t = lane_checktensor(L, 1);
    double a = luaL_checknumber(L, 2);
    checkfloat(L, 1, t);
    ane_error e;
    lockt(L, t, 0);
    int rc = tensor_scale(t, a, &e);
    storage_unlock(t->st, 0);
    if (rc) lane_error(L, &e);
    lua_settop(L, 1);
    return 1;
}

/* t:add(b) -> t, t += b */
static int m_add(lua_State *L) {
    tensor *t = lane_checktensor(L, 1), *b = lane_checktensor(L, 2);
    checkfloat(L, 1, t);
    checkfloat(L, 2, b);
    checksamenumel(L, 2, t, b);
    locked2(L, t, b, OP_ADD, 0);
    lua_settop(L, 1);
    return 1;
}

/* y:axpy(a, x) -> y, y += a * x */
static int m_axpy(lua_State *L) {
    tensor *y = lane_checktensor(L, 1);
    double a = luaL_checknumber(L, 2);
    tensor *x = lane_checktensor(L, 3);
    checkfloat(L, 1, y);
    checkfloat(L, 3, x);
    checksamenumel(L, 3, y, x);
    locked2(L, y, x, OP_AXPY, a);
    lua_settop(L, 1);
    return 1;
}

static void push_nested(lua_State *L, const tensor *t, int depth, int64_t *pos) {
    lua_createtable(L, (int)t->shape[depth], 0);
    for (int64_t i = 1; i <= t->shape[depth]; i++) {
        if (depth + 1 == t->rank) pushvalue(L, t, (*pos)++);
        else push_nested(L, t, depth + 1, pos);
        lua_rawseti(L, -2, i);
    }
}

/* t:to_table() -> nested tables (a rank-0 tensor gives {v}). */
static int m_to_table(lua_State *L) {
    tensor *t = lane_checktensor(L, 1);
    int64_t pos = 0;
    luaL_checkstack(L, TENSOR_MAX_RANK + 4, "to_table");
    lockt(L, t, 1);
    if (t->rank == 0) {
        lua_createtable(L, 1, 0);
        pushvalue(L, t, 0);
        lua_rawseti(L, -2, 1);
    } else {
        push_nested(L, t, 0, &pos);
    }
    storage_unlock(t->st, 1);
    return 1;
}

/* t:bytes() -> the raw little-endian element bytes as a string (for string.unpack, files). */
static int m_bytes(lua_State *L) {
    tensor *t = lane_checktensor(L, 1);
    luaL_Buffer b;
    char *dst = luaL_buffinitsize(L, &b, tensor_nbytes(t)); /* may raise: before the lock */
    lockt(L, t, 1);
    memcpy(dst, tensor_data(t), tensor_nbytes(t));
    storage_unlock(t->st, 1);
    luaL_pushresultsize(&b, tensor_nbytes(t));
    return 1;
}

/* t:save_npy(path) -> true | nil, message */
static int m_save_npy(lua_State *L) {
    tensor *t = lane_checktensor(L, 1);
    const char *path = luaL_checkstring(L, 2);
    ane_error e;
    lockt(L, t, 1);
    int rc = npy_save(path, t, &e);
    storage_unlock(t->st, 1);
    if (rc) return lane_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

/* t:reshape(shape) -> a view with the same elements; one dim may be -1 (inferred). */
static int m_reshape(lua_State *L) {
    tensor *t = lane_checktensor(L, 1);
    int64_t shape[TENSOR_MAX_RANK];
    int infer;
    int rank = checkshape_ex(L, 2, shape, &infer);
    int64_t n = tensor_numel(t);
    if (infer >= 0) {
        shape[infer] = 1;
        int64_t rest = shape_numel(rank, shape); /* -1 if the other dims overflow */
        if (rest <= 0 || n % rest != 0)
            luaL_argerror(L, 2, lua_pushfstring(L, "cannot infer shape[%d]: %I elements", infer + 1, (lua_Integer)n));
        shape[infer] = n / rest;
    }
    char a[128], b[128];
    if (shape_numel(rank, shape) != n)
        luaL_argerror(L, 2, lua_pushfstring(L, "shape %s does not have the %I elements of %s", shape_str(rank, shape, a, sizeof a),
                                            (lua_Integer)n, shape_str(t->rank, t->shape, b, sizeof b)));
    newview(L, 1, t->offset, t->dt, rank, shape);
    return 1;
}

/* t:sub(first [, last = first]) -> a view of rows first..last (1-based, inclusive) of dim 1;
 * negative values count from the end like string.sub. */
static int m_sub(lua_State *L) {
    tensor *t = lane_checktensor(L, 1);
    if (t->rank < 1) luaL_argerror(L, 1, "sub needs a tensor of rank >= 1");
    lua_Integer n = t->shape[0];
    lua_Integer first = luaL_checkinteger(L, 2), last = luaL_optinteger(L, 3, first);
    if (first < 0) first += n + 1;
    if (last < 0) last += n + 1;
    if (first < 1 || first > n)
        luaL_argerror(L, 2, lua_pushfstring(L, "index %I out of range [1, %I]", luaL_checkinteger(L, 2), n));
    if (last < first || last > n)
        luaL_argerror(L, 3, lua_pushfstring(L, "last index %I out of range [%I, %I]", luaL_checkinteger(L, 3), first, n));
    int64_t shape[TENSOR_MAX_RANK];
    memcpy(shape, t->shape, sizeof shape);
    size_t row = (size_t)(tensor_numel(t) / n) * dtype_size(t->dt);
    shape[0] = last - first + 1;
    newview(L, 1, t->offset + (size_t)(first - 1) * row, t->dt, t->rank, shape);
    return 1;
}

/* One function for close, __gc and __close: drops the storage reference; harmless when closed. */
static int m_gc(lua_State *L) {
    lane_tensor *u = touser(L, 1);
    tensor_release(&u->t);
    return 0;
}

/* t:close(): explicit release; closing twice is an error (as for files). */
static int m_close(lua_State *L) {
    lane_checktensor(L, 1);
    return m_gc(L);
}

static int m_tostring(lua_State *L) {
    lane_tensor *u = touser(L, 1);
    tensor *t = &u->t;
    if (!t->st) {
        lua_pushliteral(L, "ane.Tensor (closed)");
        return 1;
    }
    char s[128];
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    lua_pushfstring(L, "ane.Tensor %s %s", dtype_name(t->dt), shape_str(t->rank, t->shape, s, sizeof s));
    luaL_addvalue(&b);
    if (storage_lock(t->st, 1, NULL) == 0) {
        int64_t n = tensor_numel(t), show = n < 8 ? n : 6;
        luaL_addstring(&b, " {");
        for (int64_t i = 0; i < show; i++) {
            double v = tensor_get(t, i);
            if (t->dt == DT_BOOL) snprintf(s, sizeof s, "%s", v != 0 ? "true" : "false");
            else if (t->dt == DT_FP16 || t->dt == DT_FP32) snprintf(s, sizeof s, "%.5g", v);
            else snprintf(s, sizeof s, "%lld", (long long)v);
            if (i) luaL_addstring(&b, ", ");
            luaL_addstring(&b, s);
        }
        if (show < n) luaL_addstring(&b, ", ...");
        luaL_addstring(&b, "}");
        storage_unlock(t->st, 1);
    }
    luaL_pushresult(&b);
    return 1;
}

/* #t: the size of the first dimension (1 for a rank-0 tensor). */
static int m_len(lua_State *L) {
    tensor *t = lane_checktensor(L, 1);
    lua_pushinteger(L, t->rank ? t->shape[0] : 1);
    return 1;
}

/* t[i] (1-based): an element of a rank-1 tensor, or a view of row i of a higher-rank one (rank
 * drops by one). String keys find methods; anything else is nil. */
static int m_index(lua_State *L) {
    if (lua_type(L, 2) == LUA_TNUMBER) {
        tensor *t = lane_checktensor(L, 1);
        int isint;
        lua_Integer i = lua_tointegerx(L, 2, &isint);
        if (!isint) luaL_error(L, "ane.Tensor index must be an integer, got %s", luaL_tolstring(L, 2, NULL));
        if (t->rank < 1) luaL_error(L, "cannot index a rank-0 ane.Tensor");
        if (i < 1 || i > t->shape[0]) luaL_error(L, "index %I out of range [1, %I]", i, (lua_Integer)t->shape[0]);
        if (t->rank == 1) {
            lockt(L, t, 1);
            pushvalue(L, t, i - 1);
            storage_unlock(t->st, 1);
            return 1;
        }
        size_t row = (size_t)(tensor_numel(t) / t->shape[0]) * dtype_size(t->dt);
        newview(L, 1, t->offset + (size_t)(i - 1) * row, t->dt, t->rank - 1, t->shape + 1);
        return 1;
    }
    lua_pushvalue(L, 2);
    lua_rawget(L, lua_upvalueindex(1));
    return 1;
}

/* t[i] = v for a rank-1 tensor; other assignments are errors (the userdata has no fields). */
static int m_newindex(lua_State *L) {
    tensor *t = lane_checktensor(L, 1);
    if (lua_type(L, 2) != LUA_TNUMBER)
        return luaL_error(L, "cannot assign field '%s' of an ane.Tensor", luaL_tolstring(L, 2, NULL));
    int isint;
    lua_Integer i = lua_tointegerx(L, 2, &isint);
    if (!isint) luaL_error(L, "ane.Tensor index must be an integer, got %s", luaL_tolstring(L, 2, NULL));
    if (t->rank != 1) luaL_error(L, "t[i] = v needs a rank-1 ane.Tensor (this one has rank %d; use t:set)", t->rank);
    if (i < 1 || i > t->shape[0]) luaL_error(L, "index %I out of range [1, %I]", i, (lua_Integer)t->shape[0]);
    double v = 0;
    const char *err;
    if (!tovalue(L, 3, t->dt, &v, &err)) luaL_error(L, "bad value for t[%I] (%s)", i, err);
    lockt(L, t, 0);
    tensor_set(t, i - 1, v);
    storage_unlock(t->st, 0);
    return 0;
}

static const luaL_Reg tensor_methods[] = {
    {"shape", m_shape},       {"dtype", m_dtype},       {"numel", m_numel},   {"rank", m_rank},
    {"nbytes", m_nbytes},     {"storage_kind", m_storage_kind},               {"get", m_get},
    {"set", m_set},           {"fill", m_fill},         {"copy", m_copy},     {"clone", m_clone},
    {"to_table", m_to_table}, {"bytes", m_bytes},     {"save_npy", m_save_npy}, {"reshape", m_reshape}, {"sub", m_sub},
    {"scale", m_scale},       {"add", m_add},           {"axpy", m_axpy},     {"rand", m_rand},
    {"close", m_close},       {NULL, NULL},
};

static const luaL_Reg tensor_meta[] = {
    {"__gc", m_gc}, {"__close", m_gc}, {"__tostring", m_tostring}, {"__len", m_len}, {"__newindex", m_newindex},
    {NULL, NULL},
};

/* Metatable ane.Tensor; __index is a function (for t[i]) whose upvalue is the methods table. The
 * methods table is also ane.Tensor in the module: the one place Lua code may add methods. */
static void tensor_class(lua_State *L) {
    lane_newclass(L, LANE_TENSOR, NULL, tensor_meta);
    luaL_getmetatable(L, LANE_TENSOR);      /* [mt] */
    luaL_newlib(L, tensor_methods);         /* [mt, methods] */
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "methods");         /* mt.methods = methods */
    lua_pushcclosure(L, m_index, 1);        /* [mt, index] */
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
}

static const luaL_Reg rng_methods[] = {{"uniform", r_uniform}, {"normal", r_normal}, {NULL, NULL}};
static const luaL_Reg rng_meta[] = {{"__tostring", r_tostring}, {NULL, NULL}};

static const luaL_Reg module_funcs[] = {
    {"zeros", t_zeros},           {"full", t_full},           {"from_table", t_from_table},
    {"load_npy", t_load_npy},     {"from_bytes", t_from_bytes}, {"rand", t_rand},           {"rng", r_new},
    {"memory", t_memory},         {"fp16_round", t_fp16_round}, {"fp16_bits", t_fp16_bits},
    {"fp16_from_bits", t_fp16_from_bits}, {"fp16_simd", t_fp16_simd}, {NULL, NULL},
};

void lane_open_tensor(lua_State *L) {
    if (luaL_getmetatable(L, LANE_TENSOR) == LUA_TNIL) tensor_class(L);
    lua_pop(L, 1);
    lane_newclass(L, LANE_RNG, rng_methods, rng_meta);
    luaL_setfuncs(L, module_funcs, 0);
    luaL_getmetatable(L, LANE_TENSOR);
    lua_getfield(L, -1, "methods");
    lane_name_methods(L, LANE_TENSOR); /* on every open: package.loaded may have been reset */
    lua_setfield(L, -3, "Tensor");
    lua_pop(L, 1);
    lua_newtable(L);
    for (int i = 0; dtype_names[i]; i++) {
        lua_pushstring(L, dtype_names[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "dtypes");
}
