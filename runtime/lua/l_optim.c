/* l_optim.c - ane.nn.* for the training loop: AdamW, the squared gradient norm, a checksum for
 * state files, and the pretokenized-data helpers (validate, gather a batch, read a file region
 * into a tensor). The work is in runtime/nn/adamw.c; this file checks arguments and locks
 * storages.
 *
 * The functions join the `ane.nn` table (created here if another binding has not made it yet). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../nn/adamw.h"
#include "lane.h"

/* An open fp32 tensor at idx, or raise naming the argument. */
static tensor *checkf32(lua_State *L, int idx) {
    tensor *t = lane_checktensor(L, idx);
    if (t->dt != DT_FP32) luaL_argerror(L, idx, "fp32 tensor expected");
    return t;
}

static void lock(lua_State *L, tensor *t, int readonly) {
    ane_error e;
    if (storage_lock(t->st, readonly, &e) != 0) lane_error(L, &e);
}

/* ane.nn.adamw(p, g, m, v, lr, beta1, beta2, eps, weight_decay, grad_scale, bc1, bc2)
 * One AdamW update in place of p, m, v (all fp32, same element count; see adamw.h). */
static int o_adamw(lua_State *L) {
    tensor *t[4];
    for (int i = 0; i < 4; i++) t[i] = checkf32(L, i + 1);
    int64_t n = tensor_numel(t[0]);
    for (int i = 1; i < 4; i++)
        if (tensor_numel(t[i]) != n) luaL_argerror(L, i + 1, "element count differs from p's");
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < i; k++)
            if (t[i]->st == t[k]->st) luaL_argerror(L, i + 1, "shares storage with another argument");
    nn_adamw_args a;
    a.lr = (float)luaL_checknumber(L, 5);
    a.beta1 = (float)luaL_checknumber(L, 6);
    a.beta2 = (float)luaL_checknumber(L, 7);
    a.eps = (float)luaL_checknumber(L, 8);
    a.weight_decay = (float)luaL_checknumber(L, 9);
    a.grad_scale = (float)luaL_checknumber(L, 10);
    a.bc1 = luaL_checknumber(L, 11);
    a.bc2 = luaL_checknumber(L, 12);
    luaL_argcheck(L, a.bc1 > 0 && a.bc1 <= 1, 11, "bias correction must be in (0, 1]");
    luaL_argcheck(L, a.bc2 > 0 && a.bc2 <= 1, 12, "bias correction must be in (0, 1]");
    lock(L, t[0], 0);
    ane_error e;
    if (storage_lock(t[1]->st, 1, &e) != 0) { storage_unlock(t[0]->st, 0); lane_error(L, &e); }
    if (storage_lock(t[2]->st, 0, &e) != 0) {
        storage_unlock(t[1]->st, 1); storage_unlock(t[0]->st, 0); lane_error(L, &e);
    }
    if (storage_lock(t[3]->st, 0, &e) != 0) {
        storage_unlock(t[2]->st, 0); storage_unlock(t[1]->st, 1); storage_unlock(t[0]->st, 0);
        lane_error(L, &e);
    }
    nn_adamw(tensor_data(t[0]), tensor_data(t[1]), tensor_data(t[2]), tensor_data(t[3]), n, &a);
    storage_unlock(t[3]->st, 0);
    storage_unlock(t[2]->st, 0);
    storage_unlock(t[1]->st, 1);
    storage_unlock(t[0]->st, 0);
    return 0;
}

/* ane.nn.sumsq(t) -> sum of squares (double; inf/NaN when an element is not finite) */
static int o_sumsq(lua_State *L) {
    tensor *t = checkf32(L, 1);
    lock(L, t, 1);
    double s = nn_sumsq(tensor_data(t), tensor_numel(t));
    storage_unlock(t->st, 1);
    lua_pushnumber(L, s);
    return 1;
}

/* ane.nn.checksum(tensor_or_string [, seed]) -> integer */
static int o_checksum(lua_State *L) {
    uint64_t seed = (uint64_t)luaL_optinteger(L, 2, 0);
    uint64_t h;
    if (lua_type(L, 1) == LUA_TSTRING) {
        size_t n;
        const char *s = lua_tolstring(L, 1, &n);
        h = nn_checksum(s, (int64_t)n, seed);
    } else {
        tensor *t = lane_checktensor(L, 1);
        lock(L, t, 1);
        h = nn_checksum(tensor_data(t), (int64_t)tensor_nbytes(t), seed);
        storage_unlock(t->st, 1);
    }
    lua_pushinteger(L, (lua_Integer)h);
    return 1;
}

/* ane.nn.tokens_check(s, vocab) -> nil when every little-endian uint16 id in s is < vocab, else
 * (index, id): the 0-based token index of the first bad id. s must have even length. */
static int o_tokens_check(lua_State *L) {
    size_t n;
    const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
    lua_Integer vocab = luaL_checkinteger(L, 2);
    luaL_argcheck(L, n % 2 == 0, 1, "length is odd (not uint16 tokens)");
    for (size_t i = 0; i < n / 2; i++) {
        unsigned id = s[2 * i] | (unsigned)s[2 * i + 1] << 8;
        if ((lua_Integer)id >= vocab) {
            lua_pushinteger(L, (lua_Integer)i);
            lua_pushinteger(L, id);
            return 2;
        }
    }
    lua_pushnil(L);
    return 1;
}

/* ane.nn.tokens_gather(s, first, count, starts, seq, tokens, targets)
 * For each 0-based token index b in the array starts (relative to token `first` of s, and below
 * count - seq): tokens[b*seq + j] = s[first + b + j], targets[...] = s[first + b + j + 1].
 * tokens and targets are int32 tensors of #starts * seq elements. */
static int o_tokens_gather(lua_State *L) {
    size_t n;
    const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
    lua_Integer first = luaL_checkinteger(L, 2), count = luaL_checkinteger(L, 3);
    luaL_checktype(L, 4, LUA_TTABLE);
    lua_Integer seq = luaL_checkinteger(L, 5);
    tensor *tk = lane_checktensor(L, 6), *tg = lane_checktensor(L, 7);
    lua_Integer nb = (lua_Integer)luaL_len(L, 4);
    luaL_argcheck(L, first >= 0 && count >= 0 && (size_t)(first + count) * 2 <= n, 3,
                  "region outside the data");
    luaL_argcheck(L, seq >= 1 && seq < count, 5, "seq must be in [1, count)");
    if (tk->dt != DT_INT32 || tensor_numel(tk) != nb * seq)
        luaL_argerror(L, 6, "int32 tensor of #starts * seq elements expected");
    if (tg->dt != DT_INT32 || tensor_numel(tg) != nb * seq)
        luaL_argerror(L, 7, "int32 tensor of #starts * seq elements expected");
    for (lua_Integer b = 1; b <= nb; b++) {
        lua_geti(L, 4, b);
        int ok;
        lua_Integer st = lua_tointegerx(L, -1, &ok);
        lua_pop(L, 1);
        if (!ok || st < 0 || st + seq >= count)
            luaL_argerror(L, 4, lua_pushfstring(L, "start %d is not a token index in [0, %d)",
                                                (int)b, (int)(count - seq)));
    }
    lock(L, tk, 0);
    ane_error e;
    if (tg->st != tk->st && storage_lock(tg->st, 0, &e) != 0) {
        storage_unlock(tk->st, 0);
        lane_error(L, &e);
    }
    int32_t *a = tensor_data(tk), *y = tensor_data(tg);
    const unsigned char *base = s + 2 * first;
    for (lua_Integer b = 0; b < nb; b++) {
        lua_geti(L, 4, b + 1);
        lua_Integer st = lua_tointeger(L, -1);
        lua_pop(L, 1);
        for (lua_Integer j = 0; j < seq; j++) {
            const unsigned char *p = base + 2 * (st + j);
            a[b * seq + j] = p[0] | p[1] << 8;
            y[b * seq + j] = p[2] | p[3] << 8;
        }
    }
    if (tg->st != tk->st) storage_unlock(tg->st, 0);
    storage_unlock(tk->st, 0);
    return 0;
}

/* ane.nn.read_into(t, path, offset) -> true | nil, message
 * Fill t's bytes from the file at byte offset (exactly t:nbytes() bytes must be there). */
static int o_read_into(lua_State *L) {
    tensor *t = lane_checktensor(L, 1);
    const char *path = luaL_checkstring(L, 2);
    lua_Integer off = luaL_checkinteger(L, 3);
    luaL_argcheck(L, off >= 0, 3, "negative offset");
    FILE *f = fopen(path, "rb");
    if (!f) return luaL_fileresult(L, 0, path);
    if (fseeko(f, (off_t)off, SEEK_SET) != 0) {
        int en = errno;
        fclose(f);
        errno = en;
        return luaL_fileresult(L, 0, path);
    }
    ane_error e;
    if (storage_lock(t->st, 0, &e) != 0) { fclose(f); lane_error(L, &e); }
    size_t want = tensor_nbytes(t), got = fread(tensor_data(t), 1, want, f);
    storage_unlock(t->st, 0);
    fclose(f);
    if (got != want) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: truncated (%d of %d bytes at offset %d)", path, (int)got, (int)want,
                        (int)off);
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static const luaL_Reg funcs[] = {
    {"adamw", o_adamw},
    {"sumsq", o_sumsq},
    {"checksum", o_checksum},
    {"tokens_check", o_tokens_check},
    {"tokens_gather", o_tokens_gather},
    {"read_into", o_read_into},
    {NULL, NULL},
};

void lane_open_optim(lua_State *L) {
    if (lua_getfield(L, -1, "nn") != LUA_TTABLE) {  /* [ane, nn?] */
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, "nn");
    }
    luaL_setfuncs(L, funcs, 0);                      /* [ane, nn] */
    lua_pop(L, 1);
}
