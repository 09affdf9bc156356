/* l_mil.c - the ane.Program type: MIL parsing, printing, inspection and the builder primitives.
 *
 * Module functions (added to the `ane` table):
 *   ane.mil_parse(text [, name [, {lenient=bool}]]) -> Program; raises "name:line:col: msg" + caret
 *   ane.mil_parse_file(path [, {lenient=bool}])     -> Program; nil, msg if the file cannot be read
 *   ane.mil_program([version = "1.3"])              -> empty Program to build
 *   ane.mil_blob_write(list)  -> bytes, offsets     list items: ane.Tensor (fp16/fp32/int8/uint8) or
 *                                                   {dtype = "fp16"|..., bytes = string}; offsets[i]
 *                                                   is the BLOBFILE offset of item i (its metadata)
 *   ane.mil_blob_read(bytes, offset) -> {dtype=, code=, bytes=, sloppy=}
 *   ane.mil_signature(op [, opset [, x]]) -> the op's signature (runtime/mil/sig.h): {op=, since=,
 *                                            opset=, inputs = {{name=, required=, const=, tuple=,
 *                                            param=, since=, rank=|max_rank=, dtypes=, domain=,
 *                                            default=, default_dtype=, computed=}, ...}} in
 *                                            reference order; opset "ios18" or 18 (default 18);
 *                                            x = {dtype=, shape=} materialises the defaults computed
 *                                            from the op's first input (`computed` names them)
 *   ane.mil_ops()                          -> every op type, in reference order
 *
 * Conventions of the builder primitives (what lua/ane/mil.lua builds on):
 *   - A function is named by its name (string) or its 1-based index (integer).
 *   - A value is an integer id: 1-based index into that function's values (params, op results,
 *     inline literals). Ids are stable for the life of the program.
 *   - prog:func(name, opset) -> fn index;  prog:param(fn, name, dtype, shape) -> id
 *   - prog:literal(fn, dtype, shape, values) -> id of an inline literal; values is a number /
 *     boolean / string (one element), a flat or nested table (row-major), an ane.Tensor
 *     (converted), or {blob = "@model_path/...", offset = N} for a BLOBFILE reference (its data is
 *     read from a weight file registered with add_blob, if present, and checked right away).
 *     shape is a table of dims ({} for a scalar).
 *   - prog:op(fn, type, inputs, label, result_names, attrs) -> id of each result (multiple
 *     returns). inputs/attrs map input names to an id or to an array of ids (a tuple binding,
 *     e.g. concat values); attrs are the `[...]` attributes (a const's `val` may be given in
 *     either table). label: string or nil (defaults to the first result's name). result_names:
 *     nil, a string, or an array of strings (generated when absent). The op is typed by the
 *     checker's rule immediately; a violation raises the rule's message ("conv: ...") with no
 *     position prefix, so the Lua builder can re-raise it at its caller with error(msg, level).
 *   - result_names as one string for an op with several results is their base (name_0, ...).
 *   - prog:output(fn, {ids}); prog:add_blob(path, tensor_or_bytes [, dtype]) -> BLOBFILE offset
 *     (64 for a tensor, which becomes a one-tensor blob file, converted to dtype "fp16" | "fp32" |
 *     "int8" | "uint8" when given; bytes are taken as a whole file);
 *     prog:attr(name, {{key, value}, ...}) adds a dict<string, string> program attribute;
 *     prog:value_info(fn, id_or_name) -> name (nil for inline literals), dtype, shape, is_const
 *     (nothing for an unknown name);
 *     prog:constant(fn, id_or_name) -> flat array of a constant's elements, nil if unknown.
 * Inspection: :text([{dialect = "1.0"|"1.3"}]) (default: the program's own dialect), :check(),
 * :resolve(model_dir), :functions(), :inputs([fn]), :outputs([fn]), :ops([fn]), :weights(),
 * :version(), :equal(other) -> bool, why; :close(). Index arguments are 1-based.
 *
 * C code finds the program behind a Lua value with lane_toprogram (lane.h): an ane.Program, or a
 * table holding one at field `_prog` (the Lua builder's programs, lua/ane/mil.lua). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "../mil/check.h"
#include "../mil/constval.h"
#include "../mil/mil.h"
#include "../mil/sig.h"
#include "lane.h"

#define LANE_PROGRAM "ane.Program"

typedef struct lprog {
    mil_program *p; /* one reference; NULL after close */
} lprog;

static mil_program *checkprog(lua_State *L, int idx) {
    lprog *u = luaL_checkudata(L, idx, LANE_PROGRAM);
    if (!u->p) luaL_error(L, "ane.Program is closed");
    return u->p;
}

static int raise_err(lua_State *L, const ane_error *e) {
    lua_pushstring(L, e->msg[0] ? e->msg : err_codename(e->code));
    return lua_error(L);
}

/* ======================= module functions ======================= */

static int optlenient(lua_State *L, int idx) {
    static const char *const known[] = {"lenient", NULL};
    lane_checkopts(L, idx, known);
    return lane_optlenient(L, idx);
}

static int m_parse(lua_State *L) {
    size_t n;
    const char *text = luaL_checklstring(L, 1, &n);
    const char *name = luaL_optstring(L, 2, "<string>");
    mil_parse_opts o = {optlenient(L, 3)};
    mil_program *p;
    ane_error e;
    err_clear(&e);
    /* The userdata exists before the program so a raise cannot leak it. */
    lprog *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->p = NULL;
    luaL_setmetatable(L, LANE_PROGRAM);
    if (mil_parse(text, n, name, &o, &p, &e)) return raise_err(L, &e);
    u->p = p;
    return 1;
}

static int m_parse_file(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    mil_parse_opts o = {optlenient(L, 2)};
    ane_error e;
    err_clear(&e);
    lprog *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->p = NULL;
    luaL_setmetatable(L, LANE_PROGRAM);
    mil_program *p;
    int rc = mil_parse_file(path, &o, &p, &e);
    if (rc == ERR_IO) return lane_fail(L, &e);
    if (rc) return raise_err(L, &e);
    u->p = p;
    return 1;
}

static int m_program(lua_State *L) {
    const char *version = luaL_optstring(L, 1, "1.3");
    ane_error e;
    err_clear(&e);
    lprog *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->p = NULL;
    luaL_setmetatable(L, LANE_PROGRAM);
    mil_program *p = mil_program_new(version, &e);
    if (!p) return luaL_argerror(L, 1, e.msg);
    u->p = p;
    return 1;
}

/* ======================= argument helpers ======================= */

static int checkfn(lua_State *L, mil_program *p, int idx) {
    if (lua_type(L, idx) == LUA_TSTRING) {
        const char *name = lua_tostring(L, idx);
        for (int i = 0; i < p->nfuncs; i++)
            if (strcmp(p->funcs[i].name, name) == 0) return i;
        return luaL_argerror(L, idx, lua_pushfstring(L, "no function '%s'", name));
    }
    lua_Integer i = luaL_checkinteger(L, idx);
    if (i < 1 || i > p->nfuncs)
        return luaL_argerror(L, idx, lua_pushfstring(L, "no function %d (program has %d)", (int)i, p->nfuncs));
    return (int)i - 1;
}

static int optfn(lua_State *L, mil_program *p, int idx) {
    if (lua_isnoneornil(L, idx)) {
        for (int i = 0; i < p->nfuncs; i++)
            if (strcmp(p->funcs[i].name, "main") == 0) return i;
        if (p->nfuncs == 0) return luaL_argerror(L, idx, "program has no functions");
        return 0;
    }
    return checkfn(L, p, idx);
}

static int checkvalue_id(lua_State *L, const mil_function *f, int idx) {
    lua_Integer v = luaL_checkinteger(L, idx);
    if (v < 1 || v > f->nvalues)
        return luaL_argerror(L, idx, lua_pushfstring(L, "no value %d in function '%s'", (int)v, f->name));
    return (int)v - 1;
}

static mil_dtype checkmildtype(lua_State *L, int idx) {
    const char *s = luaL_checkstring(L, idx);
    mil_dtype dt;
    if (mil_dtype_lookup(s, &dt)) luaL_argerror(L, idx, lua_pushfstring(L, "unknown dtype '%s'", s));
    return dt;
}

static int checkmilshape(lua_State *L, int idx, int64_t *shape) {
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_Integer n = luaL_len(L, idx);
    if (n > MIL_MAX_RANK) luaL_argerror(L, idx, lua_pushfstring(L, "rank %d exceeds %d", (int)n, MIL_MAX_RANK));
    for (int i = 0; i < n; i++) {
        lua_geti(L, idx, i + 1);
        int isnum;
        lua_Integer d = lua_tointegerx(L, -1, &isnum);
        lua_pop(L, 1);
        if (!isnum || d < 0) luaL_argerror(L, idx, lua_pushfstring(L, "dimension %d must be an integer >= 0", i + 1));
        shape[i] = d;
    }
    return (int)n;
}

static void pushshape(lua_State *L, const mil_type *t) {
    lua_createtable(L, t->rank, 0);
    for (int i = 0; i < t->rank; i++) {
        lua_pushinteger(L, t->shape[i]);
        lua_rawseti(L, -2, i + 1);
    }
}

static const char *type_dtype_name(const mil_type *t) {
    switch (t->kind) {
    case MIL_T_TENSOR: return mil_dtype_name(t->dtype);
    case MIL_T_STATE: return "state";
    case MIL_T_DICT: return "dict";
    case MIL_T_LIST: return "list";
    default: return "tuple";
    }
}

/* {name=, dtype=, shape=, id=} for value v of f */
static void pushvalue_info(lua_State *L, const mil_function *f, int v) {
    const mil_value *val = &f->values[v];
    lua_createtable(L, 0, 4);
    if (val->name) {
        lua_pushstring(L, val->name);
        lua_setfield(L, -2, "name");
    }
    lua_pushstring(L, type_dtype_name(&val->type));
    lua_setfield(L, -2, "dtype");
    pushshape(L, &val->type);
    lua_setfield(L, -2, "shape");
    lua_pushinteger(L, v + 1);
    lua_setfield(L, -2, "id");
}

/* ======================= inspection ======================= */

static int p_text(lua_State *L) {
    mil_program *p = checkprog(L, 1);
    static const char *const known[] = {"dialect", NULL};
    lane_checkopts(L, 2, known);
    mil_print_opts o = {MIL_DIALECT_SOURCE, 0};
    if (!lua_isnoneornil(L, 2)) {
        lua_getfield(L, 2, "dialect");
        if (!lua_isnil(L, -1)) {
            const char *d = lua_tostring(L, -1);
            if (d && strcmp(d, "1.0") == 0) o.dialect = MIL_DIALECT_1_0;
            else if (d && strcmp(d, "1.3") == 0) o.dialect = MIL_DIALECT_1_3;
            else luaL_argerror(L, 2, "dialect must be \"1.0\" or \"1.3\"");
        }
        lua_pop(L, 1);
    }
    char *text;
    size_t n;
    ane_error e;
    err_clear(&e);
    if (mil_print(p, &o, &text, &n, &e)) return raise_err(L, &e);
    lua_pushlstring(L, text, n);
    free(text);
    return 1;
}

static int p_check(lua_State *L) {
    mil_program *p = checkprog(L, 1);
    static const char *const known[] = {"strict", NULL};
    lane_checkopts(L, 2, known);
    mil_check_opts o = {0};
    if (!lua_isnoneornil(L, 2)) {
        lua_getfield(L, 2, "strict");
        o.strict = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    ane_error e;
    err_clear(&e);
    if (mil_check(p, &o, &e)) return raise_err(L, &e);
    lua_settop(L, 1);
    return 1;
}

/* prog:resolve(dir [, {missing = "skip"}]) -> prog [, missing paths]. With missing = "skip" a
 * weight file that does not exist is listed instead of raising; the present ones are checked. */
static int p_resolve(lua_State *L) {
    mil_program *p = checkprog(L, 1);
    const char *dir = luaL_checkstring(L, 2);
    int skip = 0;
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        lua_getfield(L, 3, "missing");
        const char *m = lua_tostring(L, -1);
        if (!m || strcmp(m, "skip")) return luaL_argerror(L, 3, "missing must be \"skip\"");
        lua_pop(L, 1);
        skip = 1;
    }
    const char **missing = NULL;
    int nmissing = 0;
    ane_error e;
    err_clear(&e);
    if (mil_resolve_weights_present(p, dir, skip ? &missing : NULL, skip ? &nmissing : NULL, &e))
        return raise_err(L, &e);
    lua_settop(L, 1);
    if (!skip) return 1;
    lua_createtable(L, nmissing, 0);
    for (int i = 0; i < nmissing; i++) {
        lua_pushstring(L, missing[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 2;
}

static int p_functions(lua_State *L) {
    mil_program *p = checkprog(L, 1);
    lua_createtable(L, p->nfuncs, 0);
    for (int i = 0; i < p->nfuncs; i++) {
        lua_pushstring(L, p->funcs[i].name);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int p_inputs(lua_State *L) {
    mil_program *p = checkprog(L, 1);
    const mil_function *f = &p->funcs[optfn(L, p, 2)];
    lua_createtable(L, f->nparams, 0);
    for (int i = 0; i < f->nparams; i++) {
        pushvalue_info(L, f, f->params[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int p_outputs(lua_State *L) {
    mil_program *p = checkprog(L, 1);
    const mil_function *f = &p->funcs[optfn(L, p, 2)];
    lua_createtable(L, f->nouts, 0);
    for (int i = 0; i < f->nouts; i++) {
        pushvalue_info(L, f, f->outs[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* An operand for :ops(): the value's name, or the literal's MIL text for inline literals. */
static void pushoperand(lua_State *L, const mil_program *p, const mil_function *f, int v) {
    const mil_value *val = &f->values[v];
    if (val->name && !val->is_inline) {
        lua_pushstring(L, val->name);
        return;
    }
    char *text = NULL;
    size_t n = 0;
    ane_error e;
    if (val->lit && mil_print_literal(val->lit, strcmp(p->version, "1.0") == 0, &text, &n, &e) == 0) {
        lua_pushlstring(L, text, n); /* (an OOM raise here would leak text; negligible) */
        free(text);
    } else {
        lua_pushliteral(L, "?");
    }
}

static void pushbindings(lua_State *L, const mil_program *p, const mil_function *f, const mil_binding *b, int n) {
    lua_createtable(L, 0, n);
    for (int i = 0; i < n; i++) {
        if (b[i].is_tuple) {
            lua_createtable(L, b[i].n, 0);
            for (int j = 0; j < b[i].n; j++) {
                pushoperand(L, p, f, b[i].values[j]);
                lua_rawseti(L, -2, j + 1);
            }
        } else {
            pushoperand(L, p, f, b[i].values[0]);
        }
        lua_setfield(L, -2, b[i].name);
    }
}

static int p_ops(lua_State *L) {
    mil_program *p = checkprog(L, 1);
    const mil_function *f = &p->funcs[optfn(L, p, 2)];
    lua_createtable(L, f->nops, 0);
    for (int i = 0; i < f->nops; i++) {
        const mil_op *op = &f->ops[i];
        lua_createtable(L, 0, 6);
        lua_pushstring(L, op->type);
        lua_setfield(L, -2, "type");
        if (op->label) {
            lua_pushstring(L, op->label);
            lua_setfield(L, -2, "label");
        }
        pushbindings(L, p, f, op->in, op->nin);
        lua_setfield(L, -2, "inputs");
        pushbindings(L, p, f, op->attr, op->nattr);
        lua_setfield(L, -2, "attrs");
        lua_createtable(L, op->nres, 0);
        for (int r = 0; r < op->nres; r++) {
            lua_pushstring(L, f->values[op->res[r]].name);
            lua_rawseti(L, -2, r + 1);
        }
        lua_setfield(L, -2, "results");
        lua_createtable(L, op->nres, 0);
        for (int r = 0; r < op->nres; r++) {
            pushvalue_info(L, f, op->res[r]);
            lua_rawseti(L, -2, r + 1);
        }
        lua_setfield(L, -2, "result_types");
        lua_pushinteger(L, op->line);
        lua_setfield(L, -2, "line");
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int p_weights(lua_State *L) {
    mil_program *p = checkprog(L, 1);
    lua_createtable(L, 0, p->nblobs);
    for (int i = 0; i < p->nblobs; i++) {
        lua_pushlstring(L, (const char *)p->blobs[i].data, p->blobs[i].size);
        lua_setfield(L, -2, p->blobs[i].path);
    }
    return 1;
}

static int p_version(lua_State *L) {
    lua_pushstring(L, checkprog(L, 1)->version);
    return 1;
}

static int p_equal(lua_State *L) {
    mil_program *a = checkprog(L, 1), *b = checkprog(L, 2);
    char why[512];
    int eq = mil_program_equal(a, b, why, sizeof why);
    lua_pushboolean(L, eq);
    if (eq) return 1;
    lua_pushstring(L, why);
    return 2;
}

/* ======================= builder primitives ======================= */

static int p_func(lua_State *L) {
    mil_program *p = checkprog(L, 1);
    const char *name = luaL_checkstring(L, 2);
    const char *opset = luaL_optstring(L, 3, "ios18");
    ane_error e;
    err_clear(&e);
    int fi = mil_func_new(p, name, opset, &e);
    if (fi < 0) return raise_err(L, &e);
    lua_pushinteger(L, fi + 1);
    return 1;
}

static int p_param(lua_State *L) {
    mil_program *p = checkprog(L, 1);
    int fn = checkfn(L, p, 2);
    const char *name = luaL_checkstring(L, 3);
    mil_type t = {0};
    t.kind = MIL_T_TENSOR;
    t.dtype = checkmildtype(L, 4);
    t.rank = checkmilshape(L, 5, t.shape);
    ane_error e;
    err_clear(&e);
    int v = mil_func_add_param(p, fn, name, &t, &e);
    if (v < 0) return raise_err(L, &e);
    lua_pushinteger(L, v + 1);
    return 1;
}

/* Count leaves of a (nested) table; errors name the argument. */
static int64_t count_leaves(lua_State *L, int idx, int arg, int depth) {
    if (depth > MIL_MAX_RANK) luaL_argerror(L, arg, "values nested too deeply");
    int64_t n = 0;
    lua_Integer len = luaL_len(L, idx);
    for (lua_Integer i = 1; i <= len; i++) {
        if (lua_geti(L, idx, i) == LUA_TTABLE) n += count_leaves(L, lua_gettop(L), arg, depth + 1);
        else n++;
        lua_pop(L, 1);
    }
    return n;
}

static void store_elem(lua_State *L, int vidx, int arg, mil_dtype dt, void *dst, int64_t k) {
    uint8_t *d = dst;
    if (dt == MIL_BOOL) {
        if (!lua_isboolean(L, vidx))
            luaL_argerror(L, arg, lua_pushfstring(L, "element %d: bool expected, got %s", (int)k + 1, luaL_typename(L, vidx)));
        d[k] = (uint8_t)lua_toboolean(L, vidx);
        return;
    }
    if (dt == MIL_STRING) {
        if (lua_type(L, vidx) != LUA_TSTRING)
            luaL_argerror(L, arg, lua_pushfstring(L, "element %d: string expected, got %s", (int)k + 1, luaL_typename(L, vidx)));
        const char *s = lua_tostring(L, vidx);
        memcpy(d + k * (int64_t)sizeof s, &s, sizeof s);
        return;
    }
    if (!lua_isnumber(L, vidx) || lua_type(L, vidx) != LUA_TNUMBER)
        luaL_argerror(L, arg, lua_pushfstring(L, "element %d: number expected, got %s", (int)k + 1, luaL_typename(L, vidx)));
    double x = lua_tonumber(L, vidx);
    switch (dt) {
    case MIL_FP16: { uint16_t h = mil_f16_from_double(x); memcpy(d + k * 2, &h, 2); return; }
    case MIL_BF16: { uint16_t h = mil_bf16_from_double(x); memcpy(d + k * 2, &h, 2); return; }
    case MIL_FP32: { float f = (float)x; memcpy(d + k * 4, &f, 4); return; }
    case MIL_FP64: memcpy(d + k * 8, &x, 8); return;
    default: break;
    }
    int isint;
    lua_Integer v = lua_tointegerx(L, vidx, &isint);
    if (!isint) luaL_argerror(L, arg, lua_pushfstring(L, "element %d: integer expected for %s", (int)k + 1, mil_dtype_name(dt)));
    int64_t lo, hi;
    switch (dt) {
    case MIL_INT4: lo = -8; hi = 7; break;
    case MIL_INT8: lo = INT8_MIN; hi = INT8_MAX; break;
    case MIL_INT16: lo = INT16_MIN; hi = INT16_MAX; break;
    case MIL_INT32: lo = INT32_MIN; hi = INT32_MAX; break;
    case MIL_UINT16: lo = 0; hi = UINT16_MAX; break;
    case MIL_UINT32: lo = 0; hi = UINT32_MAX; break;
    case MIL_INT64: case MIL_UINT64: lo = dt == MIL_UINT64 ? 0 : INT64_MIN; hi = INT64_MAX; break;
    default: lo = 0; hi = (1 << mil_dtype_bits(dt)) - 1; break; /* uint1..uint8 */
    }
    if (v < lo || v > hi)
        luaL_argerror(L, arg, lua_pushfstring(L, "element %d: %I out of range for %s", (int)k + 1, v, mil_dtype_name(dt)));
    switch (dt) {
    case MIL_INT4: case MIL_INT8: { int8_t x8 = (int8_t)v; memcpy(d + k, &x8, 1); return; }
    case MIL_INT16: { int16_t x16 = (int16_t)v; memcpy(d + k * 2, &x16, 2); return; }
    case MIL_UINT16: { uint16_t x16 = (uint16_t)v; memcpy(d + k * 2, &x16, 2); return; }
    case MIL_INT32: { int32_t x32 = (int32_t)v; memcpy(d + k * 4, &x32, 4); return; }
    case MIL_UINT32: { uint32_t x32 = (uint32_t)v; memcpy(d + k * 4, &x32, 4); return; }
    case MIL_INT64: case MIL_UINT64: { int64_t x64 = v; memcpy(d + k * 8, &x64, 8); return; }
    default: d[k] = (uint8_t)v; return;
    }
}

static void fill_leaves(lua_State *L, int idx, int arg, mil_dtype dt, void *dst, int64_t *k) {
    lua_Integer len = luaL_len(L, idx);
    for (lua_Integer i = 1; i <= len; i++) {
        if (lua_geti(L, idx, i) == LUA_TTABLE) {
            fill_leaves(L, lua_gettop(L), arg, dt, dst, k);
            lua_pop(L, 1);
        } else {
            store_elem(L, lua_gettop(L), arg, dt, dst, (*k)++);
            /* strings stay referenced by the values table, so their pointers stay valid */
            lua_pop(L, 1);
        }
    }
}

static int p_literal(lua_State *L) {
    mil_program *p = checkprog(L, 1);
    int fn = checkfn(L, p, 2);
    mil_literal l = {0};
    l.type.kind = MIL_T_TENSOR;
    l.type.dtype = checkmildtype(L, 3);
    l.type.rank = checkmilshape(L, 4, l.type.shape);
    luaL_checkany(L, 5);
    int64_t numel = mil_shape_numel(l.type.rank, l.type.shape);
    if (numel < 0) return luaL_argerror(L, 4, "shape overflows");
    mil_dtype dt = l.type.dtype;
    size_t es = mil_dtype_elem_size(dt);
    l.count = numel;
    tensor *t = lua_type(L, 5) == LUA_TUSERDATA ? lane_totensor(L, 5) : NULL;
    int is_blob = lua_type(L, 5) == LUA_TTABLE && lua_getfield(L, 5, "blob") == LUA_TSTRING;
    if (lua_type(L, 5) == LUA_TTABLE && !is_blob) lua_pop(L, 1);
    if (is_blob) {
        l.form = MIL_LIT_BLOB;
        l.blob_path = lua_tostring(L, -1);
        lua_getfield(L, 5, "offset");
        int isint;
        lua_Integer off = lua_tointegerx(L, -1, &isint);
        if (!isint || off < 0) return luaL_argerror(L, 5, "blob reference needs an integer offset >= 0");
        l.blob_offset = (uint64_t)off;
        lua_pop(L, 1); /* the path string stays on the stack */
    } else {
        int64_t have;
        if (t) have = tensor_numel(t);
        else if (lua_type(L, 5) == LUA_TTABLE) have = count_leaves(L, 5, 5, 0);
        else have = 1;
        if (have != numel)
            return luaL_argerror(L, 5, lua_pushfstring(L, "%I values given, the shape needs %I", (lua_Integer)have, (lua_Integer)numel));
        if (numel > 0 && (uint64_t)numel > SIZE_MAX / es) return luaL_argerror(L, 4, "literal too large");
        void *buf = lua_newuserdatauv(L, numel ? (size_t)numel * es : 1, 0); /* collected with the call */
        int64_t k = 0;
        if (t) {
            if (dt == MIL_STRING) return luaL_argerror(L, 5, "a tensor cannot fill a string literal");
            for (int64_t i = 0; i < numel; i++) {
                lua_pushnumber(L, tensor_get(t, i));
                if (dt == MIL_BOOL) {
                    int b = lua_tonumber(L, -1) != 0;
                    lua_pop(L, 1);
                    lua_pushboolean(L, b);
                } else if (dt != MIL_FP16 && dt != MIL_FP32 && dt != MIL_FP64 && dt != MIL_BF16) {
                    lua_Number x = lua_tonumber(L, -1);
                    lua_pop(L, 1);
                    lua_pushinteger(L, (lua_Integer)x);
                }
                store_elem(L, lua_gettop(L), 5, dt, buf, i);
                lua_pop(L, 1);
            }
        } else if (lua_type(L, 5) == LUA_TTABLE) {
            fill_leaves(L, 5, 5, dt, buf, &k);
        } else {
            store_elem(L, 5, 5, dt, buf, 0);
        }
        l.data = buf;
    }
    ane_error e;
    err_clear(&e);
    int v = mil_func_add_literal(p, fn, &l, &e);
    if (v < 0) return raise_err(L, &e);
    lua_pushinteger(L, v + 1);
    return 1;
}

/* Operand slots an {name = id | {ids}} table needs (validates the shape of the table). */
static int64_t count_operands(lua_State *L, int idx) {
    if (lua_isnoneornil(L, idx)) return 0;
    luaL_checktype(L, idx, LUA_TTABLE);
    int64_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING) luaL_argerror(L, idx, "input names must be strings");
        if (lua_type(L, -1) == LUA_TTABLE) {
            lua_Integer k = luaL_len(L, -1);
            if (k < 0 || k > (1 << 20)) luaL_argerror(L, idx, "tuple too long");
            n += k;
        } else {
            n++;
        }
        lua_pop(L, 1);
    }
    return n;
}

/* Fill bindings from the table at idx; operand indices go to vals[*used...]. */
static int collect_bindings(lua_State *L, int idx, const mil_function *f, mil_binding *b, int nb, int max,
                            int *vals, int64_t *used, int is_attr) {
    if (lua_isnoneornil(L, idx)) return nb;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        const char *name = lua_tostring(L, -2); /* the key stays alive in the table */
        if (nb >= max) luaL_argerror(L, idx, "too many inputs");
        mil_binding *x = &b[nb++];
        memset(x, 0, sizeof *x);
        x->name = name;
        x->is_attr = (unsigned)is_attr;
        x->values = vals + *used;
        if (lua_type(L, -1) == LUA_TTABLE) {
            lua_Integer n = luaL_len(L, -1);
            for (lua_Integer i = 1; i <= n; i++) {
                lua_geti(L, -1, i);
                int isint;
                lua_Integer v = lua_tointegerx(L, -1, &isint);
                lua_pop(L, 1);
                if (!isint || v < 1 || v > f->nvalues)
                    luaL_argerror(L, idx, lua_pushfstring(L, "'%s'[%d] is not a value id", name, (int)i));
                vals[(*used)++] = (int)v - 1;
            }
            x->n = (int)n;
            x->is_tuple = 1;
        } else {
            int isint;
            lua_Integer v = lua_tointegerx(L, -1, &isint);
            if (!isint || v < 1 || v > f->nvalues)
                luaL_argerror(L, idx, lua_pushfstring(L, "'%s' is not a value id", name));
            vals[(*used)++] = (int)v - 1;
            x->n = 1;
        }
        lua_pop(L, 1);
    }
    return nb;
}

static int p_op(lua_State *L) {
    mil_program *p = checkprog(L, 1);
    int fn = checkfn(L, p, 2);
    const mil_function *f = &p->funcs[fn];
    const char *type = luaL_checkstring(L, 3);
    const char *label = luaL_optstring(L, 5, NULL);
    const char *names[MIL_MAX_RESULTS];
    int nnames = 0;
    if (lua_type(L, 6) == LUA_TSTRING) {
        names[nnames++] = lua_tostring(L, 6);
    } else if (!lua_isnoneornil(L, 6)) {
        luaL_checktype(L, 6, LUA_TTABLE);
        lua_Integer n = luaL_len(L, 6);
        if (n > MIL_MAX_RESULTS) return luaL_argerror(L, 6, "too many result names");
        for (lua_Integer i = 1; i <= n; i++) {
            lua_geti(L, 6, i);
            if (lua_type(L, -1) != LUA_TSTRING) return luaL_argerror(L, 6, "result names must be strings");
            names[nnames++] = lua_tostring(L, -1);
            lua_pop(L, 1); /* still referenced by the table */
        }
    }
    lua_settop(L, 7);
    int64_t nops = count_operands(L, 4) + count_operands(L, 7);
    /* scratch lives in userdata so a raise below frees it */
    mil_binding *b = lua_newuserdatauv(L, sizeof(mil_binding) * 256, 0);
    int *vals = lua_newuserdatauv(L, sizeof(int) * (size_t)(nops ? nops : 1), 0);
    int64_t used = 0;
    int nb = collect_bindings(L, 4, f, b, 0, 256, vals, &used, 0);
    nb = collect_bindings(L, 7, f, b, nb, 256, vals, &used, 1);
    ane_error e;
    err_clear(&e);
    int first = mil_func_add_op(p, fn, type, b, nb, label, names, nnames, &e);
    if (first < 0) return raise_err(L, &e);
    /* results are consecutive values; the op is the last one appended */
    const mil_function *g = &p->funcs[fn];
    const mil_op *op = &g->ops[g->nops - 1];
    luaL_checkstack(L, op->nres, "too many results");
    for (int r = 0; r < op->nres; r++) lua_pushinteger(L, op->res[r] + 1);
    return op->nres;
}

static int p_output(lua_State *L) {
    mil_program *p = checkprog(L, 1);
    int fn = checkfn(L, p, 2);
    const mil_function *f = &p->funcs[fn];
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_Integer n = luaL_len(L, 3);
    if (n > 4096) return luaL_argerror(L, 3, "too many outputs");
    int *vals = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof(int), 0);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, 3, i);
        int isint;
        lua_Integer v = lua_tointegerx(L, -1, &isint);
        lua_pop(L, 1);
        if (!isint || v < 1 || v > f->nvalues)
            return luaL_argerror(L, 3, lua_pushfstring(L, "output %d is not a value id", (int)i));
        vals[i - 1] = (int)v - 1;
    }
    ane_error e;
    err_clear(&e);
    if (mil_func_set_outputs(p, fn, vals, (int)n, &e)) return raise_err(L, &e);
    return 0;
}

/* t converted to the dtype named at idx (none: t itself); a temporary tensor lives on the stack. */
static tensor *blob_tensor(lua_State *L, tensor *t, int idx) {
    if (lua_isnoneornil(L, idx)) return t;
    static const char *const names[] = {"fp16", "fp32", "int8", "uint8", NULL};
    static const dtype dts[] = {DT_FP16, DT_FP32, DT_INT8, DT_UINT8};
    dtype dt = dts[luaL_checkoption(L, idx, NULL, names)];
    if (dt == t->dt) return t;
    ane_error e;
    err_clear(&e);
    lane_tensor *tmp = lane_pushtensor(L); /* freed by __gc whatever happens below */
    if (tensor_init(&tmp->t, dt, t->rank, t->shape, &e)) lane_error(L, &e);
    if (storage_lock(t->st, 1, &e)) lane_error(L, &e);
    int rc = tensor_copy(&tmp->t, t, &e);
    storage_unlock(t->st, 1);
    if (rc) lane_error(L, &e);
    return &tmp->t;
}

static int p_add_blob(lua_State *L) {
    mil_program *p = checkprog(L, 1);
    const char *path = luaL_checkstring(L, 2);
    ane_error e;
    err_clear(&e);
    tensor *t = lane_totensor(L, 3);
    if (t) {
        t = blob_tensor(L, t, 4);
        blob_writer *w = blob_writer_new(&e);
        uint64_t off = 0;
        uint8_t *data = NULL;
        size_t size = 0;
        if (!w) return raise_err(L, &e);
        if (blob_writer_add(w, t, &off, &e)) {
            blob_writer_free(w);
            return luaL_argerror(L, 3, e.msg);
        }
        blob_writer_finish(w, &data, &size, &e);
        int rc = mil_program_add_blob(p, path, data, size, &e);
        free(data);
        if (rc) return raise_err(L, &e);
        lua_pushinteger(L, (lua_Integer)off);
        return 1;
    }
    size_t n;
    const char *bytes = lua_tolstring(L, 3, &n);
    if (!bytes || lua_type(L, 3) != LUA_TSTRING) return luaL_typeerror(L, 3, "ane.Tensor or string");
    if (mil_program_add_blob(p, path, (const uint8_t *)bytes, n, &e)) return raise_err(L, &e);
    lua_pushinteger(L, 64);
    return 1;
}

static int p_value_info(lua_State *L) {
    mil_program *p = checkprog(L, 1);
    const mil_function *f = &p->funcs[checkfn(L, p, 2)];
    int v;
    if (lua_type(L, 3) == LUA_TSTRING) {
        v = mil_func_value(f, lua_tostring(L, 3));
        if (v < 0) return 0; /* no value of that name */
    } else {
        v = checkvalue_id(L, f, 3);
    }
    const mil_value *val = &f->values[v];
    if (val->name) lua_pushstring(L, val->name);
    else lua_pushnil(L);
    lua_pushstring(L, type_dtype_name(&val->type));
    pushshape(L, &val->type);
    lua_pushboolean(L, val->lit != NULL);
    return 4;
}

/* prog:attr(name, {{key, value}, ...}): a dict<string, string> program attribute (buildInfo). */
static int p_attr(lua_State *L) {
    mil_program *p = checkprog(L, 1);
    const char *name = luaL_checkstring(L, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_Integer n = luaL_len(L, 3);
    if (n < 0 || n > 4096) return luaL_argerror(L, 3, "too many entries");
    /* scratch: 2n literals and 2n string pointers, freed with the call */
    size_t each = sizeof(mil_literal) + sizeof(const char *);
    uint8_t *box = lua_newuserdatauv(L, (size_t)(n ? n : 1) * 2 * each, 0);
    mil_literal *keys = (mil_literal *)box, *vals = keys + n;
    const char **strs = (const char **)(vals + n);
    mil_type sub[2];
    memset(sub, 0, sizeof sub);
    sub[0].kind = sub[1].kind = MIL_T_TENSOR;
    sub[0].dtype = sub[1].dtype = MIL_STRING;
    for (lua_Integer i = 0; i < n; i++) {
        lua_geti(L, 3, i + 1);
        if (lua_type(L, -1) != LUA_TTABLE) return luaL_argerror(L, 3, "entries must be {key, value} pairs");
        for (int k = 0; k < 2; k++) {
            lua_geti(L, -1, k + 1);
            if (lua_type(L, -1) != LUA_TSTRING) return luaL_argerror(L, 3, "keys and values must be strings");
            strs[2 * i + k] = lua_tostring(L, -1); /* kept alive by the argument table */
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
        mil_literal *kv[2] = {&keys[i], &vals[i]};
        for (int k = 0; k < 2; k++) {
            memset(kv[k], 0, sizeof *kv[k]);
            kv[k]->type = sub[k];
            kv[k]->count = 1;
            kv[k]->data = (void *)&strs[2 * i + k];
        }
    }
    mil_literal d;
    memset(&d, 0, sizeof d);
    d.type.kind = MIL_T_DICT;
    d.type.nsub = 2;
    d.type.sub = sub;
    d.form = MIL_LIT_DICT;
    d.count = n;
    d.keys = keys;
    d.vals = vals;
    ane_error e;
    err_clear(&e);
    if (mil_program_add_attr(p, name, &d, &e)) return raise_err(L, &e);
    return 0;
}

/* prog:constant(fn, id_or_name) -> flat array of the constant's elements (numbers, booleans or
 * strings, row-major), or nil when the value is not a constant with known data (a runtime value,
 * or a BLOBFILE literal not resolved yet). */
static int p_constant(lua_State *L) {
    mil_program *p = checkprog(L, 1);
    const mil_function *f = &p->funcs[checkfn(L, p, 2)];
    int v;
    if (lua_type(L, 3) == LUA_TSTRING) {
        v = mil_func_value(f, lua_tostring(L, 3));
        if (v < 0) return luaL_argerror(L, 3, lua_pushfstring(L, "no value '%s'", lua_tostring(L, 3)));
    } else {
        v = checkvalue_id(L, f, 3);
    }
    const mil_literal *l = f->values[v].lit;
    if (!l || l->form == MIL_LIT_DICT || (!l->data && l->count > 0)) {
        lua_pushnil(L);
        return 1;
    }
    if (l->count > INT_MAX) return luaL_error(L, "constant too large for a Lua table");
    lua_createtable(L, (int)l->count, 0);
    const uint8_t *d = l->data;
    for (int64_t i = 0; i < l->count; i++) {
        switch (l->type.dtype) {
        case MIL_FP16: { uint16_t h; memcpy(&h, d + i * 2, 2); lua_pushnumber(L, mil_f16_to_double(h)); break; }
        case MIL_BF16: { uint16_t h; memcpy(&h, d + i * 2, 2); lua_pushnumber(L, mil_bf16_to_double(h)); break; }
        case MIL_FP32: { float x; memcpy(&x, d + i * 4, 4); lua_pushnumber(L, x); break; }
        case MIL_FP64: { double x; memcpy(&x, d + i * 8, 8); lua_pushnumber(L, x); break; }
        case MIL_INT4: case MIL_INT8: lua_pushinteger(L, (int8_t)d[i]); break;
        case MIL_INT16: { int16_t x; memcpy(&x, d + i * 2, 2); lua_pushinteger(L, x); break; }
        case MIL_INT32: { int32_t x; memcpy(&x, d + i * 4, 4); lua_pushinteger(L, x); break; }
        case MIL_INT64: case MIL_UINT64: { int64_t x; memcpy(&x, d + i * 8, 8); lua_pushinteger(L, x); break; }
        case MIL_UINT16: { uint16_t x; memcpy(&x, d + i * 2, 2); lua_pushinteger(L, x); break; }
        case MIL_UINT32: { uint32_t x; memcpy(&x, d + i * 4, 4); lua_pushinteger(L, x); break; }
        case MIL_BOOL: lua_pushboolean(L, d[i]); break;
        case MIL_STRING: { const char *s; memcpy(&s, d + i * (int64_t)sizeof s, sizeof s); lua_pushstring(L, s); break; }
        default: lua_pushinteger(L, d[i]); break; /* uint1..uint8 */
        }
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

/* ======================= blobs ======================= */

static int m_blob_write(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer n = luaL_len(L, 1);
    ane_error e;
    err_clear(&e);
    /* Validate every item before the writer exists (no raise while it is held). */
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, 1, i);
        if (!lane_totensor(L, -1)) {
            if (lua_type(L, -1) != LUA_TTABLE)
                return luaL_argerror(L, 1, lua_pushfstring(L, "item %d: ane.Tensor or {dtype=, bytes=} expected", (int)i));
            lua_getfield(L, -1, "dtype");
            lua_getfield(L, -2, "bytes");
            const char *d = lua_tostring(L, -2);
            if (!d || (strcmp(d, "fp16") && strcmp(d, "fp32") && strcmp(d, "uint8") && strcmp(d, "int8")) ||
                lua_type(L, -1) != LUA_TSTRING)
                return luaL_argerror(L, 1, lua_pushfstring(L, "item %d: needs dtype fp16/fp32/uint8/int8 and bytes", (int)i));
            lua_pop(L, 2);
        }
        lua_pop(L, 1);
    }
    lua_createtable(L, (int)n, 0); /* offsets, index 2 */
    blob_writer *w = blob_writer_new(&e);
    if (!w) return raise_err(L, &e);
    int rc = 0;
    for (lua_Integer i = 1; i <= n && !rc; i++) {
        lua_geti(L, 1, i);
        uint64_t off = 0;
        tensor *t = lane_totensor(L, -1);
        if (t) {
            rc = blob_writer_add(w, t, &off, &e);
        } else {
            lua_getfield(L, -1, "dtype");
            lua_getfield(L, -2, "bytes");
            const char *d = lua_tostring(L, -2);
            size_t nb;
            const char *bytes = lua_tolstring(L, -1, &nb);
            int code = strcmp(d, "fp16") == 0 ? 1 : strcmp(d, "fp32") == 0 ? 2 : strcmp(d, "uint8") == 0 ? 3 : 4;
            rc = blob_writer_add_raw(w, code, bytes, nb, &off, &e);
            lua_pop(L, 2);
        }
        lua_pop(L, 1);
        lua_pushinteger(L, (lua_Integer)off);
        lua_rawseti(L, 2, i);
    }
    if (rc) {
        blob_writer_free(w);
        return raise_err(L, &e);
    }
    uint8_t *data;
    size_t size;
    blob_writer_finish(w, &data, &size, &e);
    /* copy into a Lua-owned box first so no raise can leak the malloc'd bytes */
    void *box = lua_newuserdatauv(L, size ? size : 1, 0);
    memcpy(box, data, size);
    free(data);
    lua_pushlstring(L, box, size);
    lua_pushvalue(L, 2);
    return 2;
}

static int m_blob_read(lua_State *L) {
    size_t n;
    const char *bytes = luaL_checklstring(L, 1, &n);
    lua_Integer off = luaL_checkinteger(L, 2);
    if (off < 0) return luaL_argerror(L, 2, "offset must be >= 0");
    ane_error e;
    err_clear(&e);
    int code, sloppy;
    const uint8_t *pay;
    uint64_t psz;
    if (blob_read_ex((const uint8_t *)bytes, n, (uint64_t)off, "blob", &code, &pay, &psz, &sloppy, &e))
        return lane_fail(L, &e);
    lua_createtable(L, 0, 4);
    lua_pushstring(L, blob_dtype_name(code));
    lua_setfield(L, -2, "dtype");
    lua_pushinteger(L, code);
    lua_setfield(L, -2, "code");
    lua_pushlstring(L, (const char *)pay, (size_t)psz);
    lua_setfield(L, -2, "bytes");
    lua_pushboolean(L, sloppy);
    lua_setfield(L, -2, "sloppy");
    return 1;
}

/* ======================= op signatures ======================= */

static int optopset(lua_State *L, int idx) {
    if (lua_isnoneornil(L, idx)) return 18;
    int v;
    if (lua_type(L, idx) == LUA_TNUMBER) {
        v = (int)luaL_checkinteger(L, idx);
    } else {
        const char *s = luaL_checkstring(L, idx);
        v = strncmp(s, "ios", 3) == 0 ? atoi(s + 3) : 0;
    }
    if (v < 15 || v > 18) luaL_argerror(L, idx, "opset must be ios15 ... ios18 (or 15 ... 18)");
    return v;
}

/* The literal's elements as a Lua value (a scalar for rank 0, else a flat array). */
static void pushlit_value(lua_State *L, const mil_literal *l) {
    int list = l->type.rank > 0;
    if (list) lua_createtable(L, (int)l->count, 0);
    for (int64_t i = 0; i < l->count || (!list && i == 0); i++) {
        int64_t iv = 0;
        double fv = 0;
        if (l->type.dtype == MIL_STRING) lua_pushstring(L, ((const char *const *)l->data)[i]);
        else if (l->type.dtype == MIL_BOOL) lua_pushboolean(L, mil_lit_int(l, i, &iv) == 0 && iv);
        else if (l->type.dtype == MIL_INT32) lua_pushinteger(L, (mil_lit_int(l, i, &iv), iv));
        else lua_pushnumber(L, (mil_lit_float(l, i, &fv), fv));
        if (!list) return;
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
}

static const char *const default_kind_names[] = {
    [MIL_DEF_SPATIAL_ONES] = "spatial_ones", [MIL_DEF_SPATIAL_PAD] = "spatial_pad",
    [MIL_DEF_RANK_ONES] = "rank_ones",       [MIL_DEF_RANK_FALSE] = "rank_false",
    [MIL_DEF_ALL_AXES] = "all_axes",         [MIL_DEF_UNIT_AXES] = "unit_axes",
};

/* ane.mil_signature(op_type [, opset [, x]]) -> {op=, since=, opset=, inputs = {...}}; see the
 * top of lua/ane/mil.lua for the fields of an input. x = {dtype=, shape=} (the type of the op's
 * first input) materialises the defaults computed from it. */
static int m_signature(lua_State *L) {
    const char *op = luaL_checkstring(L, 1);
    int opset = optopset(L, 2);
    mil_type x, *xp = NULL;
    memset(&x, 0, sizeof x);
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        x.kind = MIL_T_TENSOR;
        x.dtype = MIL_FP32;
        if (lua_getfield(L, 3, "dtype") != LUA_TNIL) {
            const char *dn = lua_tostring(L, -1);
            if (!dn || mil_dtype_lookup(dn, &x.dtype)) return luaL_argerror(L, 3, "x.dtype is not a dtype name");
        }
        lua_pop(L, 1);
        if (lua_getfield(L, 3, "shape") != LUA_TTABLE) return luaL_argerror(L, 3, "x needs a shape");
        x.rank = checkmilshape(L, lua_gettop(L), x.shape);
        lua_pop(L, 1);
        xp = &x;
    }
    mil_opkind k = mil_op_lookup(op);
    mil_sig sig;
    if (mil_op_sig(k, opset, &sig)) return luaL_argerror(L, 1, lua_pushfstring(L, "unknown op '%s'", op));
    lua_createtable(L, 0, 4);
    lua_pushstring(L, op);
    lua_setfield(L, -2, "op");
    lua_pushinteger(L, mil_op_since(k));
    lua_setfield(L, -2, "since");
    lua_pushinteger(L, opset);
    lua_setfield(L, -2, "opset");
    lua_createtable(L, sig.nin, 0);
    for (int i = 0; i < sig.nin; i++) {
        const mil_sig_input *in = &sig.in[i];
        lua_createtable(L, 0, 12);
        lua_pushstring(L, in->name);
        lua_setfield(L, -2, "name");
        static const struct { unsigned bit; const char *key; } flags[] = {
            {MIL_SIG_REQ, "required"}, {MIL_SIG_CONST, "const"}, {MIL_SIG_TUPLE, "tuple"}, {MIL_SIG_PARAM, "param"}};
        for (size_t f = 0; f < sizeof flags / sizeof flags[0]; f++) {
            lua_pushboolean(L, (in->flags & flags[f].bit) != 0);
            lua_setfield(L, -2, flags[f].key);
        }
        lua_pushinteger(L, in->since ? in->since : mil_op_since(k));
        lua_setfield(L, -2, "since");
        if (in->rank == MIL_SIG_RANK0 || in->rank > 0) {
            lua_pushinteger(L, in->rank > 0 ? in->rank : 0);
            lua_setfield(L, -2, "rank");
        } else if (in->rank == MIL_SIG_RANK_LE1) {
            lua_pushinteger(L, 1);
            lua_setfield(L, -2, "max_rank");
        }
        if (in->dtypes) {
            lua_newtable(L);
            int n = 0;
            for (int d = 0; d < MIL_DTYPE_COUNT; d++)
                if ((in->dtypes >> d) & 1) {
                    lua_pushstring(L, mil_dtype_name((mil_dtype)d));
                    lua_rawseti(L, -2, ++n);
                }
            lua_setfield(L, -2, "dtypes");
        }
        if (in->dom) {
            lua_pushlstring(L, &in->dom, 1);
            lua_setfield(L, -2, "domain");
        }
        if (in->def >= MIL_DEF_SPATIAL_ONES) {
            lua_pushstring(L, default_kind_names[in->def]);
            lua_setfield(L, -2, "computed");
        }
        mil_literal l;
        mil_default_data d;
        if (mil_sig_default(&sig, i, xp, &l, &d) == 0) {
            /* floats as the table holds them, so a builder rounds them once, to its dtype */
            if (in->def == MIL_DEF_FLOAT || in->def == MIL_DEF_FP32) lua_pushnumber(L, in->df);
            else pushlit_value(L, &l);
            lua_setfield(L, -2, "default");
            if (in->def != MIL_DEF_FLOAT) { /* float parameters take x's dtype */
                lua_pushstring(L, mil_dtype_name(l.type.dtype));
                lua_setfield(L, -2, "default_dtype");
            }
        }
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "inputs");
    return 1;
}

/* ane.mil_ops() -> every op type the checker knows, in reference order */
static int m_ops(lua_State *L) {
    lua_createtable(L, MIL_OP_COUNT - 1, 0);
    for (int k = MIL_OP_UNKNOWN + 1; k < MIL_OP_COUNT; k++) {
        lua_pushstring(L, mil_op_name((mil_opkind)k));
        lua_rawseti(L, -2, k);
    }
    return 1;
}

/* ======================= the program behind a value ======================= */

mil_program *lane_toprogram(lua_State *L, int idx) {
    idx = lua_absindex(L, idx);
    lprog *u = luaL_testudata(L, idx, LANE_PROGRAM);
    if (!u && lua_type(L, idx) == LUA_TTABLE) {
        lua_pushliteral(L, "_prog");
        lua_rawget(L, idx);
        u = luaL_testudata(L, -1, LANE_PROGRAM);
        lua_pop(L, 1); /* the table keeps the userdata alive */
    }
    if (!u) return NULL;
    if (!u->p) luaL_argerror(L, idx, "ane.Program is closed");
    return u->p;
}

/* ======================= metamethods ======================= */

static int p_gc(lua_State *L) {
    lprog *u = luaL_checkudata(L, 1, LANE_PROGRAM);
    mil_program_release(u->p);
    u->p = NULL;
    return 0;
}

static int p_tostring(lua_State *L) {
    lprog *u = luaL_checkudata(L, 1, LANE_PROGRAM);
    if (!u->p) {
        lua_pushliteral(L, "ane.Program (closed)");
        return 1;
    }
    const mil_program *p = u->p;
    int nops = 0;
    for (int i = 0; i < p->nfuncs; i++) nops += p->funcs[i].nops;
    lua_pushfstring(L, "ane.Program (%s, %d function%s, %d op%s%s)", p->version, p->nfuncs, p->nfuncs == 1 ? "" : "s",
                    nops, nops == 1 ? "" : "s", p->checked ? ", checked" : "");
    return 1;
}

static const luaL_Reg prog_methods[] = {
    {"text", p_text},       {"check", p_check},     {"resolve", p_resolve},   {"functions", p_functions},
    {"inputs", p_inputs},   {"outputs", p_outputs}, {"ops", p_ops},           {"weights", p_weights},
    {"version", p_version}, {"equal", p_equal},     {"func", p_func},         {"param", p_param},
    {"literal", p_literal}, {"op", p_op},           {"output", p_output},     {"add_blob", p_add_blob},
    {"value_info", p_value_info}, {"constant", p_constant}, {"attr", p_attr},  {"close", p_gc},
    {NULL, NULL},
};

static const luaL_Reg prog_meta[] = {
    {"__gc", p_gc}, {"__close", p_gc}, {"__tostring", p_tostring}, {NULL, NULL},
};

static const luaL_Reg mil_funcs[] = {
    {"mil_parse", m_parse},           {"mil_parse_file", m_parse_file}, {"mil_program", m_program},
    {"mil_blob_write", m_blob_write}, {"mil_blob_read", m_blob_read},   {"mil_signature", m_signature},
    {"mil_ops", m_ops},               {NULL, NULL},
};

void lane_open_mil(lua_State *L) {
    lane_newclass(L, LANE_PROGRAM, prog_methods, prog_meta);
    luaL_setfuncs(L, mil_funcs, 0);
}
