/* l_formats.c - bindings of runtime/formats and the atomic file helper: ane.atomic_write,
 * ane.llama2c.{load, save}, the ane.Tokenizer type and ane._tokenizer (the C half of
 * lua/ane/tokenizer.lua, which parses tokenizer.json and picks the reader), ane.SafeTensors and
 * ane._hf (the C half of lua/ane/hf.lua).
 *
 * File problems (missing, truncated, inconsistent, unsupported) raise an error whose message names
 * the file and what is wrong: `local ck = ane.llama2c.load(path)` never yields nil. Every function
 * checks all its arguments before it creates a userdata or touches a file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/atomic_file.h"
#include "../formats/llama2c.h"
#include "../formats/safetensors.h"
#include "../formats/tokenizer.h"
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
        /* every piece stays on the stack: make room (an array of 80 tensors overflowed it) */
        if (n > 1000000) luaL_argerror(L, 2, "too many pieces");
        luaL_checkstack(L, (int)n + 8, "too many pieces");
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
    lua_pushliteral(L, "interleaved");
    lua_setfield(L, -2, "rope_style"); /* the name ane.llm reads */
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

/* ---- ane.Tokenizer ---- */

#define LANE_TOKENIZER "ane.Tokenizer"

typedef struct lane_tok { tokenizer *t; int add_bos; } lane_tok;

static lane_tok *tok_check(lua_State *L, int idx) {
    lane_tok *u = luaL_checkudata(L, idx, LANE_TOKENIZER);
    if (!u->t) luaL_argerror(L, idx, "ane.Tokenizer is closed");
    return u;
}

static lane_tok *tok_push(lua_State *L) {
    lane_tok *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->t = NULL;
    u->add_bos = 1;
    luaL_setmetatable(L, LANE_TOKENIZER);
    return u;
}

static int checkid(lua_State *L, const tokenizer *t, int idx) {
    lua_Integer id = luaL_checkinteger(L, idx);
    if (id < 0 || id >= tok_vocab_size(t))
        luaL_argerror(L, idx, lua_pushfstring(L, "token id %I out of range [0, %d]", id, tok_vocab_size(t) - 1));
    return (int)id;
}

static const char *const encode_opts[] = {"bos", "eos", NULL};

/* tok:encode(text, {bos = tok.add_bos, eos = false}) -> array of 0-based ids */
static int tk_encode(lua_State *L) {
    lane_tok *u = tok_check(L, 1);
    size_t n;
    const char *text = luaL_checklstring(L, 2, &n);
    lane_checkopts(L, 3, encode_opts);
    int bos = u->add_bos, eos = 0;
    if (lua_istable(L, 3)) {
        if (lua_getfield(L, 3, "bos") != LUA_TNIL) bos = lua_toboolean(L, -1);
        if (lua_getfield(L, 3, "eos") != LUA_TNIL) eos = lua_toboolean(L, -1);
        lua_pop(L, 2);
    }
    const int32_t *ids;
    size_t nids;
    ane_error e;
    if (tok_encode(u->t, text, n, bos, eos, &ids, &nids, &e) != 0) return lane_error(L, &e);
    lua_createtable(L, nids > INT32_MAX ? INT32_MAX : (int)nids, 0);
    for (size_t i = 0; i < nids; i++) {
        lua_pushinteger(L, ids[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

/* tok:decode(prev_id, id) -> the bytes id stands for after prev_id (prev_id nil or -1: none). */
static int tk_decode(lua_State *L) {
    lane_tok *u = tok_check(L, 1);
    int prev = lua_isnoneornil(L, 2) ? -1 : (int)luaL_checkinteger(L, 2);
    int id = checkid(L, u->t, 3);
    size_t len;
    const char *s = tok_decode(u->t, prev, id, &len);
    lua_pushlstring(L, s, len);
    return 1;
}

/* tok:decode_all(ids) -> text: decode(prev, id) over the array, BOS itself contributing nothing. */
static int tk_decode_all(lua_State *L) {
    lane_tok *u = tok_check(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer n = luaL_len(L, 2);
    int bos = tok_bos(u->t), nv = tok_vocab_size(u->t);
    for (lua_Integer i = 1; i <= n; i++) { /* check everything before building */
        lua_geti(L, 2, i);
        int isint;
        lua_Integer id = lua_tointegerx(L, -1, &isint);
        if (!isint || id < 0 || id >= nv)
            luaL_argerror(L, 2, lua_pushfstring(L, "ids[%I] is %s: token ids are integers in [0, %d]", i,
                                                luaL_tolstring(L, -1, NULL), nv - 1));
        lua_pop(L, 1);
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    int prev = -1;
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, 2, i);
        int id = (int)lua_tointeger(L, -1);
        lua_pop(L, 1);
        if (id != bos || bos < 0) {
            size_t len;
            const char *s = tok_decode(u->t, prev, id, &len);
            luaL_addlstring(&b, s, len);
        }
        prev = id;
    }
    luaL_pushresult(&b);
    return 1;
}

/* tok:piece(id) -> the piece as stored; tok:score(id); tok:id(piece) -> id or nil */
static int tk_piece(lua_State *L) {
    lane_tok *u = tok_check(L, 1);
    size_t len;
    const char *s = tok_piece(u->t, checkid(L, u->t, 2), &len);
    lua_pushlstring(L, s, len);
    return 1;
}

static int tk_score(lua_State *L) {
    lane_tok *u = tok_check(L, 1);
    lua_pushnumber(L, tok_score(u->t, checkid(L, u->t, 2)));
    return 1;
}

static int tk_id(lua_State *L) {
    lane_tok *u = tok_check(L, 1);
    size_t n;
    const char *s = luaL_checklstring(L, 2, &n);
    int id = tok_lookup(u->t, s, n);
    if (id < 0) luaL_pushfail(L);
    else lua_pushinteger(L, id);
    return 1;
}

static int tk_gc(lua_State *L) {
    lane_tok *u = luaL_checkudata(L, 1, LANE_TOKENIZER);
    tok_free(u->t);
    u->t = NULL;
    return 0;
}

static int tk_close(lua_State *L) {
    tok_check(L, 1);
    return tk_gc(L);
}

static int tk_tostring(lua_State *L) {
    lane_tok *u = luaL_checkudata(L, 1, LANE_TOKENIZER);
    if (!u->t) lua_pushliteral(L, "ane.Tokenizer (closed)");
    else lua_pushfstring(L, "ane.Tokenizer (%s, %d tokens)", tok_kind(u->t), tok_vocab_size(u->t));
    return 1;
}

static const luaL_Reg tok_methods[] = {
    {"encode", tk_encode}, {"decode", tk_decode}, {"decode_all", tk_decode_all}, {"piece", tk_piece},
    {"score", tk_score},   {"id", tk_id},         {"close", tk_close},           {NULL, NULL},
};

/* __index: methods first, then the read-only fields vocab_size, bos_id, eos_id (nil when the
 * tokenizer has none), max_len, kind, add_bos. */
static int tk_index(lua_State *L) {
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
    lane_tok *u = tok_check(L, 1);
    const char *k = lua_tostring(L, 2);
    if (!k) return 0;
    if (strcmp(k, "vocab_size") == 0) lua_pushinteger(L, tok_vocab_size(u->t));
    else if (strcmp(k, "bos_id") == 0) { if (tok_bos(u->t) >= 0) lua_pushinteger(L, tok_bos(u->t)); else lua_pushnil(L); }
    else if (strcmp(k, "eos_id") == 0) { if (tok_eos(u->t) >= 0) lua_pushinteger(L, tok_eos(u->t)); else lua_pushnil(L); }
    else if (strcmp(k, "max_len") == 0) lua_pushinteger(L, tok_max_len(u->t));
    else if (strcmp(k, "kind") == 0) lua_pushstring(L, tok_kind(u->t));
    else if (strcmp(k, "add_bos") == 0) lua_pushboolean(L, u->add_bos);
    else lua_pushnil(L);
    return 1;
}

static const luaL_Reg tok_meta[] = {{"__gc", tk_gc}, {"__close", tk_gc}, {"__tostring", tk_tostring}, {NULL, NULL}};

/* _tokenizer.load_bin(path, vocab_size or nil) -> ane.Tokenizer; raises on a bad file. */
static int tb_load_bin(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    lua_Integer nv = luaL_optinteger(L, 2, -1);
    if (nv == 0 || nv < -1 || nv > INT32_MAX) luaL_argerror(L, 2, "vocab_size must be a positive integer");
    lane_tok *u = tok_push(L);
    ane_error e;
    if (!(u->t = tok_load_bin(path, (int)nv, &e))) return lane_error(L, &e);
    return 1;
}

/* Strings of a table field as (pointer, length) arrays on a scratch userdata. */
static const char *optstr(lua_State *L, int idx, const char *k, size_t *len) {
    lua_getfield(L, idx, k);
    const char *s = lua_isnil(L, -1) ? NULL : lua_tolstring(L, -1, len);
    if (!s) *len = 0;
    lua_pop(L, 1); /* the spec table keeps it alive */
    return s;
}

static int optfield_int(lua_State *L, int idx, const char *k, int def) {
    lua_getfield(L, idx, k);
    int isint, v = def;
    if (!lua_isnil(L, -1)) {
        lua_Integer x = lua_tointegerx(L, -1, &isint);
        if (!isint || x < INT32_MIN || x > INT32_MAX) luaL_error(L, "tokenizer spec: %s must be an integer", k);
        v = (int)x;
    }
    lua_pop(L, 1);
    return v;
}

static int optfield_bool(lua_State *L, int idx, const char *k) {
    lua_getfield(L, idx, k);
    int v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

static int kind_of(lua_State *L, int idx, const char *const *names, const char *what) {
    lua_getfield(L, idx, "kind");
    const char *k = lua_tostring(L, -1);
    for (int i = 0; k && names[i]; i++)
        if (strcmp(k, names[i]) == 0) { lua_pop(L, 1); return i + 1; }
    return luaL_error(L, "tokenizer spec: unknown %s kind '%s'", what, k ? k : "nil");
}

/* _tokenizer.new_bpe(spec) -> ane.Tokenizer. spec (built by lua/ane/tokenizer.lua): name, pieces
 * (array by id + 1: string or false), model (array of booleans), merges ({left, right} pairs),
 * added (ids), byte_fallback, ignore_merges, fuse_unk, unk_id, bos_id, eos_id, add_bos,
 * normalizer and pre (arrays of steps), decoder, decoder_strip. */
static int tb_new_bpe(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    tok_bpe_spec s;
    memset(&s, 0, sizeof s);
    lua_getfield(L, 1, "name");
    s.name = lua_tostring(L, -1);
    lua_pop(L, 1);
    if (lua_getfield(L, 1, "pieces") != LUA_TTABLE) luaL_error(L, "tokenizer spec: pieces must be a table");
    int pi = lua_gettop(L);
    lua_Integer n = luaL_len(L, pi);
    if (n < 1 || n > INT32_MAX) luaL_error(L, "tokenizer spec: the vocabulary is empty");
    if (lua_getfield(L, 1, "merges") != LUA_TTABLE) luaL_error(L, "tokenizer spec: merges must be a table");
    int mi = lua_gettop(L);
    lua_Integer nm = luaL_len(L, mi);
    if (lua_getfield(L, 1, "added") != LUA_TTABLE) luaL_error(L, "tokenizer spec: added must be a table");
    int ai = lua_gettop(L);
    lua_Integer na = luaL_len(L, ai);
    if (nm > INT32_MAX || na > INT32_MAX) luaL_error(L, "tokenizer spec: too many merges or added tokens");
    lua_getfield(L, 1, "model");
    int modi = lua_gettop(L);
    /* scratch: pieces, lens, in_model; merge_l, merge_r, merge_ll, merge_rl; added ids */
    size_t nn = (size_t)n, mm = (size_t)nm ? (size_t)nm : 1, aa = (size_t)na ? (size_t)na : 1;
    char *sc = lua_newuserdatauv(L, nn * (sizeof(char *) + sizeof(size_t) + 1) +
                                     mm * 2 * (sizeof(char *) + sizeof(size_t)) + aa * sizeof(int) + 16, 0);
    const char **pieces = (const char **)sc;
    size_t *lens = (size_t *)(pieces + nn);
    const char **ml = (const char **)(lens + nn);
    const char **mr = ml + mm;
    size_t *mll = (size_t *)(mr + mm), *mrl = mll + mm;
    int *added = (int *)(mrl + mm);
    unsigned char *in_model = (unsigned char *)(added + aa);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, pi, i);
        size_t k = (size_t)(i - 1);
        pieces[k] = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &lens[k]) : NULL;
        if (!pieces[k]) lens[k] = 0;
        lua_pop(L, 1); /* still referenced by the pieces table */
        in_model[k] = 1;
        if (lua_istable(L, modi)) {
            lua_geti(L, modi, i);
            in_model[k] = (unsigned char)lua_toboolean(L, -1);
            lua_pop(L, 1);
        }
    }
    for (lua_Integer i = 1; i <= nm; i++) {
        size_t k = (size_t)(i - 1);
        if (lua_geti(L, mi, i) != LUA_TTABLE) luaL_error(L, "tokenizer spec: merge %I is not a pair", i);
        lua_geti(L, -1, 1);
        lua_geti(L, -2, 2);
        ml[k] = lua_tolstring(L, -2, &mll[k]);
        mr[k] = lua_tolstring(L, -1, &mrl[k]);
        if (!ml[k] || !mr[k]) luaL_error(L, "tokenizer spec: merge %I is not a pair of strings", i);
        lua_pop(L, 3);
    }
    for (lua_Integer i = 1; i <= na; i++) {
        lua_geti(L, ai, i);
        added[i - 1] = (int)lua_tointeger(L, -1);
        lua_pop(L, 1);
    }
    s.n = (int)n; s.pieces = pieces; s.lens = lens; s.in_model = in_model;
    s.n_merges = (int)nm; s.merge_l = ml; s.merge_r = mr; s.merge_ll = mll; s.merge_rl = mrl;
    s.n_added = (int)na; s.added_id = added;
    s.byte_fallback = optfield_bool(L, 1, "byte_fallback");
    s.ignore_merges = optfield_bool(L, 1, "ignore_merges");
    s.fuse_unk = optfield_bool(L, 1, "fuse_unk");
    s.unk_id = optfield_int(L, 1, "unk_id", -1);
    s.bos_id = optfield_int(L, 1, "bos_id", -1);
    s.eos_id = optfield_int(L, 1, "eos_id", -1);
    s.decoder_strip = optfield_bool(L, 1, "decoder_strip");
    static const char *const decoders[] = {"bytelevel", "sentencepiece", "metaspace", "none", NULL};
    static const int decoder_codes[] = {TOK_DEC_BYTELEVEL, TOK_DEC_SENTENCEPIECE, TOK_DEC_METASPACE, TOK_DEC_NONE};
    lua_getfield(L, 1, "decoder");
    const char *dk = lua_isnil(L, -1) ? "none" : lua_tostring(L, -1);
    s.decoder = -1;
    for (int i = 0; dk && decoders[i]; i++)
        if (strcmp(dk, decoders[i]) == 0) s.decoder = decoder_codes[i];
    if (s.decoder < 0) luaL_error(L, "tokenizer spec: unknown decoder '%s'", dk ? dk : "?");
    lua_pop(L, 1);
    static const char *const norms[] = {"nfc", "prepend", "replace", NULL};
    static const char *const pres[] = {"split", "bytelevel", "metaspace", NULL};
    static const char *const behaviors[] = {"isolated", "removed", "merged_with_previous", "merged_with_next", "contiguous", NULL};
    static const char *const schemes[] = {"always", "first", "never", NULL};
    if (lua_getfield(L, 1, "normalizer") == LUA_TTABLE) {
        int ni = lua_gettop(L);
        lua_Integer k = luaL_len(L, ni);
        if (k > TOK_MAX_STEPS) luaL_error(L, "tokenizer spec: more than %d normalizer steps", TOK_MAX_STEPS);
        s.n_norm = (int)k;
        for (int i = 0; i < (int)k; i++) {
            lua_geti(L, ni, i + 1);
            int si = lua_gettop(L);
            luaL_checktype(L, si, LUA_TTABLE);
            s.norm[i].kind = kind_of(L, si, norms, "normalizer");
            s.norm[i].a = optstr(L, si, "a", &s.norm[i].alen);
            s.norm[i].b = optstr(L, si, "b", &s.norm[i].blen);
            lua_pop(L, 1);
        }
    }
    if (lua_getfield(L, 1, "pre") == LUA_TTABLE) {
        int ni = lua_gettop(L);
        lua_Integer k = luaL_len(L, ni);
        if (k > TOK_MAX_STEPS) luaL_error(L, "tokenizer spec: more than %d pre-tokenizer steps", TOK_MAX_STEPS);
        s.n_pre = (int)k;
        for (int i = 0; i < (int)k; i++) {
            lua_geti(L, ni, i + 1);
            int si = lua_gettop(L);
            luaL_checktype(L, si, LUA_TTABLE);
            tok_pre_step *st = &s.pre[i];
            st->kind = kind_of(L, si, pres, "pre-tokenizer");
            st->regex = optstr(L, si, "regex", &st->regex_len);
            st->replacement = optstr(L, si, "replacement", &st->replacement_len);
            st->invert = optfield_bool(L, si, "invert");
            st->add_prefix_space = optfield_bool(L, si, "add_prefix_space");
            st->use_regex = optfield_bool(L, si, "use_regex");
            st->split = optfield_bool(L, si, "split");
            size_t bl;
            const char *b = optstr(L, si, "behavior", &bl);
            st->behavior = TOK_SPLIT_ISOLATED;
            if (b) {
                st->behavior = 0;
                for (int j = 0; behaviors[j]; j++) if (strcmp(b, behaviors[j]) == 0) st->behavior = j + 1;
                if (!st->behavior) luaL_error(L, "tokenizer spec: unknown Split behavior '%s'", b);
            }
            const char *sch = optstr(L, si, "prepend_scheme", &bl);
            st->prepend_scheme = TOK_PREPEND_ALWAYS;
            if (sch) {
                st->prepend_scheme = -1;
                for (int j = 0; schemes[j]; j++) if (strcmp(sch, schemes[j]) == 0) st->prepend_scheme = j;
                if (st->prepend_scheme < 0) luaL_error(L, "tokenizer spec: unknown Metaspace prepend_scheme '%s'", sch);
            }
            lua_pop(L, 1);
        }
    }
    int add_bos = optfield_bool(L, 1, "add_bos");
    lane_tok *u = tok_push(L);
    u->add_bos = add_bos;
    ane_error e;
    if (!(u->t = tok_new_bpe(&s, &e))) return lane_error(L, &e);
    lane_gcstep(L);
    return 1;
}

/* ane.tokenizer.save_bin(path, pieces, scores, max_len = longest piece): llama2.c's
 * tokenizer.bin, written atomically. pieces[i] and scores[i] are token i - 1's. */
static int tb_save_bin(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_Integer n = luaL_len(L, 2);
    if (n < 1 || n > INT32_MAX) luaL_argerror(L, 2, "at least one piece expected");
    if (luaL_len(L, 3) != n)
        luaL_argerror(L, 3, lua_pushfstring(L, "%I scores for %I pieces", luaL_len(L, 3), n));
    int has_max = !lua_isnoneornil(L, 4);
    lua_Integer max_len = has_max ? luaL_checkinteger(L, 4) : 0;
    if (max_len < 0 || max_len > INT32_MAX) luaL_argerror(L, 4, "max_len must be a non-negative integer");
    lua_settop(L, 3);
    size_t nn = (size_t)n;
    char *sc = lua_newuserdatauv(L, nn * (sizeof(char *) + sizeof(size_t) + sizeof(float)), 0);
    const char **pieces = (const char **)sc;
    size_t *lens = (size_t *)(pieces + nn);
    float *scores = (float *)(lens + nn);
    size_t longest = 0;
    for (lua_Integer i = 1; i <= n; i++) {
        size_t k = (size_t)(i - 1);
        if (lua_geti(L, 2, i) != LUA_TSTRING)
            luaL_argerror(L, 2, lua_pushfstring(L, "pieces[%I] is a %s; strings expected", i, luaL_typename(L, -1)));
        pieces[k] = lua_tolstring(L, -1, &lens[k]);
        if (lens[k] > longest) longest = lens[k];
        lua_pop(L, 1);
        lua_geti(L, 3, i);
        int ok;
        lua_Number v = lua_tonumberx(L, -1, &ok);
        if (!ok) luaL_argerror(L, 3, lua_pushfstring(L, "scores[%I] is not a number", i));
        scores[k] = (float)v;
        lua_pop(L, 1);
    }
    if (!has_max) max_len = (lua_Integer)(longest > INT32_MAX ? INT32_MAX : longest);
    ane_error e;
    if (tok_save_bin(path, (int)n, pieces, lens, scores, (int)max_len, &e) != 0) return lane_error(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

static const luaL_Reg tokenizer_funcs[] = {
    {"load_bin", tb_load_bin}, {"new_bpe", tb_new_bpe}, {"save_bin", tb_save_bin}, {NULL, NULL},
};

/* ---- ane._hf: safetensors files (lua/ane/hf.lua parses the JSON and builds the weights) ---- */

#define LANE_SAFETENSORS "ane.SafeTensors"

typedef struct lane_st {
    st_file f;
    st_info *t;     /* entries, after set_entries */
    size_t n;
    char path[512];
} lane_st;

static lane_st *st_check(lua_State *L, int idx) {
    lane_st *u = luaL_checkudata(L, idx, LANE_SAFETENSORS);
    if (!u->f.map) luaL_argerror(L, idx, "ane.SafeTensors is closed");
    return u;
}

static int sf_gc(lua_State *L) {
    lane_st *u = luaL_checkudata(L, 1, LANE_SAFETENSORS);
    st_close(&u->f);
    free(u->t);
    u->t = NULL;
    u->n = 0;
    return 0;
}

/* _hf.open(path) -> handle, header JSON text; raises on a file that is not safetensors. */
static int sf_open(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    lane_st *u = lua_newuserdatauv(L, sizeof *u, 0);
    memset(u, 0, sizeof *u);
    luaL_setmetatable(L, LANE_SAFETENSORS);
    snprintf(u->path, sizeof u->path, "%s", path);
    ane_error e;
    if (st_open(path, &u->f, &e) != 0) return lane_error(L, &e);
    lua_pushlstring(L, u->f.header, u->f.header_len);
    return 2;
}

static lua_Integer entry_int(lua_State *L, const char *path, const char *name, const char *what) {
    int isint;
    lua_Integer v = lua_tointegerx(L, -1, &isint);
    if (!isint || v < 0)
        luaL_error(L, "%s: tensor %s: %s must be a non-negative integer", path, name, what);
    lua_pop(L, 1);
    return v;
}

/* h:set_entries({{name, dtype, shape = {...}, begin, end}, ...}): checks them all (st_validate)
 * and keeps them for h:read. */
static int sf_set_entries(lua_State *L) {
    lane_st *u = st_check(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer n = luaL_len(L, 2);
    if (n < 0 || (lua_Unsigned)n > SIZE_MAX / sizeof(st_info) / 2) luaL_argerror(L, 2, "too many entries");
    size_t nn = (size_t)n;
    st_info *t = lua_newuserdatauv(L, (nn ? nn : 1) * sizeof *t, 0);              /* scratch */
    const char **names = lua_newuserdatauv(L, (nn ? nn : 1) * sizeof *names, 0);
    for (size_t i = 0; i < nn; i++) {
        lua_geti(L, 2, (lua_Integer)i + 1);
        int ei = lua_gettop(L);
        luaL_checktype(L, ei, LUA_TTABLE);
        lua_getfield(L, ei, "name");
        names[i] = lua_tostring(L, -1);
        if (!names[i]) luaL_error(L, "%s: entry %d has no name", u->path, (int)i + 1);
        lua_pop(L, 1); /* kept by the entry table */
        lua_getfield(L, ei, "dtype");
        const char *dt = lua_tostring(L, -1);
        t[i].dtype = dt ? st_dtype_parse(dt) : -1;
        if (t[i].dtype < 0) luaL_error(L, "%s: tensor %s: unknown dtype %s", u->path, names[i], dt ? dt : "(none)");
        lua_pop(L, 1);
        if (lua_getfield(L, ei, "shape") != LUA_TTABLE) luaL_error(L, "%s: tensor %s: shape must be an array", u->path, names[i]);
        lua_Integer r = luaL_len(L, -1);
        if (r > ST_MAX_RANK) luaL_error(L, "%s: tensor %s: rank %d is more than %d", u->path, names[i], (int)r, ST_MAX_RANK);
        t[i].rank = (int)r;
        for (int d = 0; d < (int)r; d++) {
            lua_geti(L, -1, d + 1);
            t[i].shape[d] = (int64_t)entry_int(L, u->path, names[i], "every dimension");
        }
        lua_pop(L, 1);
        lua_getfield(L, ei, "begin");
        t[i].begin = (uint64_t)entry_int(L, u->path, names[i], "data_offsets[1]");
        lua_getfield(L, ei, "end");
        t[i].end = (uint64_t)entry_int(L, u->path, names[i], "data_offsets[2]");
        lua_pop(L, 1);
    }
    ane_error e;
    if (st_validate(u->path, t, names, nn, u->f.data_len, &e) != 0) return lane_error(L, &e);
    st_info *keep = malloc((nn ? nn : 1) * sizeof *keep);
    if (!keep) return luaL_error(L, "%s: out of memory", u->path);
    memcpy(keep, t, nn * sizeof *keep);
    free(u->t);
    u->t = keep;
    u->n = nn;
    return 0;
}

/* h:read(i, dst, dst_offset = 0, heads = 0, name = "entry i"): entry i (1-based) converted into
 * dst (fp32/fp16) from element dst_offset (0-based); heads > 0 reorders rotate-half rows into
 * llama2.c's interleaved pairs (see safetensors.h). */
static int sf_read(lua_State *L) {
    lane_st *u = st_check(L, 1);
    lua_Integer i = luaL_checkinteger(L, 2);
    if (i < 1 || (lua_Unsigned)i > u->n) luaL_argerror(L, 2, "entry index out of range");
    tensor *dst = lane_checktensor(L, 3);
    lua_Integer off = luaL_optinteger(L, 4, 0);
    lua_Integer heads = luaL_optinteger(L, 5, 0);
    const char *name = luaL_optstring(L, 6, "?");
    if (off < 0) luaL_argerror(L, 4, "offset must be >= 0");
    if (heads < 0 || heads > INT32_MAX) luaL_argerror(L, 5, "heads must be >= 0");
    ane_error e;
    if (storage_lock(dst->st, 0, &e) != 0) return lane_error(L, &e);
    int rc = st_read(&u->f, &u->t[i - 1], name, dst, (size_t)off, (int)heads, &e);
    storage_unlock(dst->st, 0);
    if (rc) {
        err_prefix(&e, "%s: ", u->path);
        return lane_error(L, &e);
    }
    return 0;
}

static int sf_close(lua_State *L) {
    st_check(L, 1);
    return sf_gc(L);
}

static const luaL_Reg st_methods[] = {
    {"set_entries", sf_set_entries}, {"read", sf_read}, {"close", sf_close}, {NULL, NULL},
};
static const luaL_Reg st_meta[] = {{"__gc", sf_gc}, {"__close", sf_gc}, {NULL, NULL}};
static const luaL_Reg hf_funcs[] = {{"open", sf_open}, {NULL, NULL}};

void lane_open_formats(lua_State *L) {
    lua_pushcfunction(L, f_atomic_write);
    lua_setfield(L, -2, "atomic_write");
    luaL_newlib(L, llama2c_funcs);
    lua_setfield(L, -2, "llama2c");
    luaL_newmetatable(L, LANE_TOKENIZER);    /* [mt] */
    luaL_setfuncs(L, tok_meta, 0);
    luaL_newlib(L, tok_methods);             /* [mt, methods] */
    lua_pushcclosure(L, tk_index, 1);        /* [mt, index] */
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    luaL_newlib(L, tokenizer_funcs);
    lua_setfield(L, -2, "_tokenizer");
    lane_newclass(L, LANE_SAFETENSORS, st_methods, st_meta);
    luaL_newlib(L, hf_funcs);
    lua_setfield(L, -2, "_hf");
}
