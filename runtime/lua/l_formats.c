/* l_formats.c - bindings of runtime/formats and the atomic file helper: ane.atomic_write,
 * ane.llama2c.{load, save}.
 *
 * File problems (missing, truncated, inconsistent, unsupported) raise an error whose message names
 * the file and what is wrong: `local ck = ane.llama2c.load(path)` never yields nil. Every function
 * checks all its arguments before it creates a userdata or touches a file. */
#include <string.h>

#include "../core/atomic_file.h"
#include "../formats/llama2c.h"
#include "lane.h"

/* ---- ane.atomic_write(path, data) ---- */

/* data: a string, or an array of strings and tensors written in order (a tensor as its raw bytes
 * in its own dtype). Temp file beside path, fsync, rename, fsync of the directory. Returns true. */
static int f_atomic_write(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    int single = lua_type(L, 2) == LUA_TSTRING;
    if (!single) luaL_argexpected(L, lua_istable(L, 2), 2, "string or array of strings/tensors");
    lua_Integer n = single ? 1 : luaL_len(L, 2);
    if (n < 0 || n > (lua_Integer)(SIZE_MAX / (sizeof(void *) + sizeof(size_t) + sizeof(storage *))))
        luaL_argerror(L, 2, "too many pieces");
    /* scratch on a userdata so a raise frees it */
    size_t cap = (size_t)(n ? n : 1);
    char *scratch = lua_newuserdatauv(L, cap * (sizeof(void *) + sizeof(size_t) + sizeof(storage *)), 0);
    const void **ptr = (const void **)scratch;
    size_t *len = (size_t *)(scratch + cap * sizeof(void *));
    storage **locks = (storage **)(scratch + cap * (sizeof(void *) + sizeof(size_t)));
    if (single) {
        ptr[0] = lua_tolstring(L, 2, &len[0]);
        locks[0] = NULL;
    } else {
        for (lua_Integer i = 1; i <= n; i++) {
            lua_geti(L, 2, i); /* stays on the stack: keeps the string alive */
            size_t k = (size_t)(i - 1);
            locks[k] = NULL;
            if (lua_type(L, -1) == LUA_TSTRING) {
                ptr[k] = lua_tolstring(L, -1, &len[k]);
            } else {
                tensor *t = lane_totensor(L, -1);
                if (!t)
                    luaL_argerror(L, 2, lua_pushfstring(L, "piece %I is a %s; strings and open ane.Tensors expected", i,
                                                        luaL_typename(L, -1)));
                ptr[k] = t;
                len[k] = (size_t)-1; /* marks a tensor; resolved below */
            }
        }
    }
    ane_error e;
    size_t nlocked = 0;
    int rc = 0;
    for (size_t k = 0; k < (size_t)n && rc == 0; k++) {
        if (len[k] != (size_t)-1) continue;
        const tensor *t = ptr[k];
        if ((rc = storage_lock(t->st, 1, &e)) != 0) break;
        locks[nlocked++] = t->st;
        ptr[k] = tensor_data(t);
        len[k] = tensor_nbytes(t);
    }
    if (rc == 0) rc = atomic_file_put(path, ptr, len, (size_t)n, &e);
    for (size_t k = 0; k < nlocked; k++) storage_unlock(locks[k], 1);
    if (rc) return lane_error(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

/* ---- ane.llama2c ---- */

static void setint(lua_State *L, const char *k, lua_Integer v) {
    lua_pushinteger(L, v);
    lua_setfield(L, -2, k);
}

/* The config table of a checkpoint, pushed. */
static void push_config(lua_State *L, const llama2c_config *c) {
    lua_createtable(L, 0, 16);
    setint(L, "dim", c->dim);
    setint(L, "hidden", c->hidden);
    setint(L, "n_layers", c->n_layers);
    setint(L, "n_heads", c->n_heads);
    setint(L, "n_kv_heads", c->n_kv_heads);
    setint(L, "vocab", c->vocab);
    setint(L, "seq", c->seq);
    setint(L, "head_size", c->dim / c->n_heads);
    setint(L, "kv_dim", (lua_Integer)c->dim * c->n_kv_heads / c->n_heads);
    lua_pushboolean(L, c->shared_classifier);
    lua_setfield(L, -2, "shared_classifier");
    lua_pushnumber(L, 10000.0);
    lua_setfield(L, -2, "rope_theta");
    lua_pushnumber(L, 1e-5);
    lua_setfield(L, -2, "norm_eps");
    lua_pushliteral(L, "llama2c");
    lua_setfield(L, -2, "arch");
    lua_pushliteral(L, "interleaved");
    lua_setfield(L, -2, "rope");
}

/* ane.llama2c.load(path) -> {config = {...}, weights = {embed = T, ...}}; raises on a bad file. */
static int l2c_load(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    lane_tensor *u[L2C_NWEIGHTS];
    lua_createtable(L, 0, 2);                /* [ck] */
    lua_createtable(L, 0, L2C_NWEIGHTS);     /* [ck, weights] */
    for (int i = 0; i < L2C_WCLS; i++) {     /* empty handles first: a raise leaks nothing */
        u[i] = lane_pushtensor(L);
        lua_setfield(L, -2, llama2c_names[i]);
    }
    llama2c_ckpt ck;
    ane_error e;
    if (llama2c_load(path, &ck, &e) != 0) return lane_error(L, &e);
    for (int i = 0; i < L2C_WCLS; i++) u[i]->t = ck.w[i];
    if (ck.cfg.shared_classifier) {
        tensor_release(&ck.w[L2C_WCLS]);
        lua_getfield(L, -1, "embed");
    } else {
        u[L2C_WCLS] = lane_pushtensor(L);
        u[L2C_WCLS]->t = ck.w[L2C_WCLS];
    }
    lua_setfield(L, -2, "wcls");
    lua_setfield(L, -2, "weights");          /* [ck] */
    push_config(L, &ck.cfg);
    lua_setfield(L, -2, "config");
    lane_gcstep(L);
    return 1;
}

static int getint(lua_State *L, int idx, const char *k, int def, int required) {
    int t = lua_getfield(L, idx, k);
    if (t == LUA_TNIL && !required) { lua_pop(L, 1); return def; }
    int isint;
    lua_Integer v = lua_tointegerx(L, -1, &isint);
    if (!isint || v < 1 || v > INT32_MAX)
        luaL_argerror(L, 2, lua_pushfstring(L, "config.%s must be a positive integer, got %s", k,
                                            t == LUA_TNIL ? "nil" : luaL_tolstring(L, -1, NULL)));
    lua_pop(L, 1);
    return (int)v;
}

/* ane.llama2c.save(path, config, weights) -> true. config: dim, hidden, n_layers, n_heads,
 * n_kv_heads (default n_heads), vocab, seq, shared_classifier (default: weights.wcls is nil or is
 * weights.embed). weights: fp32 or fp16 tensors of the load shapes; written as fp32, atomically. */
static int l2c_save(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    luaL_checktype(L, 3, LUA_TTABLE);
    llama2c_config c;
    c.dim = getint(L, 2, "dim", 0, 1);
    c.hidden = getint(L, 2, "hidden", 0, 1);
    c.n_layers = getint(L, 2, "n_layers", 0, 1);
    c.n_heads = getint(L, 2, "n_heads", 0, 1);
    c.n_kv_heads = getint(L, 2, "n_kv_heads", c.n_heads, 0);
    c.vocab = getint(L, 2, "vocab", 0, 1);
    c.seq = getint(L, 2, "seq", 0, 1);
    lua_getfield(L, 3, "wcls");
    lua_getfield(L, 3, "embed");
    int inferred = lua_isnil(L, -2) || lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    if (lua_getfield(L, 2, "shared_classifier") == LUA_TNIL) c.shared_classifier = inferred;
    else c.shared_classifier = lua_toboolean(L, -1);
    lua_pop(L, 1);
    ane_error e;
    if (llama2c_check_config(&c, "config", &e) != 0) luaL_argerror(L, 2, e.msg);
    const tensor *w[L2C_NWEIGHTS];
    for (int i = 0; i < L2C_NWEIGHTS; i++) {
        w[i] = NULL;
        if (i == L2C_WCLS && c.shared_classifier) continue;
        lua_getfield(L, 3, llama2c_names[i]);
        w[i] = lane_totensor(L, -1);
        if (!w[i])
            luaL_argerror(L, 3, lua_pushfstring(L, "weights.%s must be an open ane.Tensor, got %s", llama2c_names[i],
                                                luaL_typename(L, -1)));
        lua_pop(L, 1); /* the table keeps it alive */
    }
    if (llama2c_save(path, &c, w, &e) != 0) return lane_error(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

static const luaL_Reg llama2c_funcs[] = {{"load", l2c_load}, {"save", l2c_save}, {NULL, NULL}};

void lane_open_formats(lua_State *L) {
    lua_pushcfunction(L, f_atomic_write);
    lua_setfield(L, -2, "atomic_write");
    luaL_newlib(L, llama2c_funcs);
    lua_setfield(L, -2, "llama2c");
}
