/* l_milcheck.c - the checker's per-op rule, callable on a description of the inputs, for the Lua
 * builder (lua/ane/mil.lua): it infers each result type as ops are added, without needing a
 * whole program. Also turns a tensor into the fp16/fp32/int8/uint8 bytes a weight blob holds.
 *
 *   ane.mil_infer(opset, op_type, inputs) -> { {dtype = "fp16", shape = {1, 64, 1, 32}}, ... }
 *                                          | nil, message     (message starts with the op type)
 *   inputs: name -> operand, or name -> { tuple = { operand, ... } }
 *   operand: { dtype = "fp16", shape = {...}, value = {flat elements} | nil, const = bool }
 *            `value` makes it a constant whose elements the rule can read (axes, perm, modes);
 *            `const = true` without value is a constant of unknown content (a weight).
 *   ane.mil_weight_bytes(tensor, dtype) -> string   (dtype "fp16" (default), "fp32", "int8", "uint8";
 *            row-major little-endian elements, converted with round-to-nearest-even) */
#include <stdlib.h>
#include <string.h>

#include "../core/fp16.h"
#include "../mil/check.h"
#include "lane.h"

#define MAX_OPERANDS 256
#define MAX_BINDINGS 32

typedef struct scratch {
    mil_value values[MAX_OPERANDS];
    mil_literal lits[MAX_OPERANDS];
    mil_binding binds[MAX_BINDINGS];
    int vidx[MAX_OPERANDS];
} scratch;

static mil_dtype checkdtype(lua_State *L, int idx, const char *what)
{
    const char *s = lua_tostring(L, idx);
    mil_dtype d;
    if (!s || mil_dtype_lookup(s, &d))
        luaL_error(L, "mil_infer: %s: bad dtype '%s'", what, s ? s : luaL_typename(L, idx));
    return d;
}

/* Fill value v from the operand table at stack index idx (name is for messages). */
static void read_operand(lua_State *L, int idx, int anchor, scratch *s, int v, const char *name)
{
    idx = lua_absindex(L, idx);
    if (!lua_istable(L, idx)) luaL_error(L, "mil_infer: input '%s' must be a table", name);
    mil_value *val = &s->values[v];
    memset(val, 0, sizeof *val);
    val->def_op = -1;
    mil_type *t = &val->type;
    t->kind = MIL_T_TENSOR;
    lua_getfield(L, idx, "dtype");
    t->dtype = checkdtype(L, -1, name);
    lua_pop(L, 1);
    lua_getfield(L, idx, "shape");
    if (!lua_isnil(L, -1)) {
        if (!lua_istable(L, -1)) luaL_error(L, "mil_infer: input '%s': shape must be a table", name);
        lua_Integer r = luaL_len(L, -1);
        if (r > MIL_MAX_RANK) luaL_error(L, "mil_infer: input '%s': rank %d > %d", name, (int)r, MIL_MAX_RANK);
        t->rank = (int)r;
        for (int i = 0; i < t->rank; i++) {
            lua_geti(L, -1, i + 1);
            int ok;
            lua_Integer d = lua_tointegerx(L, -1, &ok);
            if (!ok || d < 0) luaL_error(L, "mil_infer: input '%s': bad shape", name);
            t->shape[i] = d;
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    int64_t count = 1;
    for (int i = 0; i < t->rank; i++) count *= t->shape[i];
    lua_getfield(L, idx, "value");
    if (!lua_isnil(L, -1)) {
        if (!lua_istable(L, -1)) luaL_error(L, "mil_infer: input '%s': value must be a table", name);
        if (luaL_len(L, -1) != count)
            luaL_error(L, "mil_infer: input '%s': %d values for %d elements", name,
                       (int)luaL_len(L, -1), (int)count);
        if (count > 4096) luaL_error(L, "mil_infer: input '%s': value too large", name);
        mil_literal *l = &s->lits[v];
        memset(l, 0, sizeof *l);
        l->type = *t;
        l->count = count;
        size_t esz = t->dtype == MIL_STRING ? sizeof(char *) : 8;
        /* element storage lives in a userdata kept on the stack for the call */
        void *data = lua_newuserdatauv(L, (size_t)(count ? count : 1) * esz, 0);
        lua_rawseti(L, anchor, (lua_Integer)luaL_len(L, anchor) + 1);
        for (int64_t i = 0; i < count; i++) {
            lua_geti(L, -1, i + 1);
            switch (t->dtype) {
            case MIL_STRING: /* the string stays referenced by the caller's table */
                if (lua_type(L, -1) != LUA_TSTRING)
                    luaL_error(L, "mil_infer: input '%s': string expected", name);
                ((const char **)data)[i] = lua_tostring(L, -1);
                break;
            case MIL_BOOL: ((uint8_t *)data)[i] = (uint8_t)lua_toboolean(L, -1); break;
            case MIL_FP16: ((uint16_t *)data)[i] = fp16_from_f64(luaL_checknumber(L, -1)); break;
            case MIL_FP32: ((float *)data)[i] = (float)luaL_checknumber(L, -1); break;
            case MIL_FP64: ((double *)data)[i] = luaL_checknumber(L, -1); break;
            case MIL_INT8: case MIL_INT4: ((int8_t *)data)[i] = (int8_t)luaL_checkinteger(L, -1); break;
            case MIL_UINT8: ((uint8_t *)data)[i] = (uint8_t)luaL_checkinteger(L, -1); break;
            case MIL_INT16: ((int16_t *)data)[i] = (int16_t)luaL_checkinteger(L, -1); break;
            case MIL_UINT16: ((uint16_t *)data)[i] = (uint16_t)luaL_checkinteger(L, -1); break;
            case MIL_INT32: ((int32_t *)data)[i] = (int32_t)luaL_checkinteger(L, -1); break;
            case MIL_INT64: ((int64_t *)data)[i] = luaL_checkinteger(L, -1); break;
            default: luaL_error(L, "mil_infer: input '%s': cannot hold %s values", name, mil_dtype_name(t->dtype));
            }
            lua_pop(L, 1);
        }
        lua_pop(L, 1); /* value table */
        l->data = data;
        val->lit = l;
        val->is_inline = 1;
        return;
    }
    lua_pop(L, 1);
    lua_getfield(L, idx, "const");
    if (lua_toboolean(L, -1)) val->is_inline = 1; /* constant, content unknown */
    else val->is_param = 1;
    lua_pop(L, 1);
}

static int l_infer(lua_State *L)
{
    const char *opset = luaL_checkstring(L, 1);
    const char *type = luaL_checkstring(L, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    scratch *s = lua_newuserdatauv(L, sizeof *s, 0);
    memset(s, 0, sizeof *s);
    int nv = 0, nb = 0;
    mil_op op;
    memset(&op, 0, sizeof op);
    op.type = type;
    op.in = s->binds;
    lua_newtable(L); /* anchor for element data userdata */
    int anchor = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, 3)) { /* [.., key, operand] */
        if (lua_type(L, -2) != LUA_TSTRING) luaL_error(L, "mil_infer: input names must be strings");
        if (nb >= MAX_BINDINGS) luaL_error(L, "mil_infer: too many inputs");
        const char *name = lua_tostring(L, -2);
        if (!lua_istable(L, -1)) luaL_error(L, "mil_infer: input '%s' must be a table", name);
        mil_binding *b = &s->binds[nb++];
        b->name = name;
        b->values = &s->vidx[nv];
        lua_getfield(L, -1, "tuple"); /* [.., key, operand, tuple] */
        if (lua_istable(L, -1)) {
            b->is_tuple = 1;
            lua_Integer n = luaL_len(L, -1);
            if (nv + n > MAX_OPERANDS) luaL_error(L, "mil_infer: too many operands");
            for (lua_Integer i = 1; i <= n; i++) {
                lua_geti(L, -1, i);
                read_operand(L, -1, anchor, s, nv, name);
                lua_pop(L, 1);
                s->vidx[nv] = nv;
                nv++;
                b->n++;
            }
        } else {
            if (nv + 1 > MAX_OPERANDS) luaL_error(L, "mil_infer: too many operands");
            read_operand(L, -2, anchor, s, nv, name);
            s->vidx[nv] = nv;
            nv++;
            b->n = 1;
        }
        lua_pop(L, 2); /* tuple field, operand */
    }
    op.nin = nb;
    mil_program prog;
    mil_function fn;
    memset(&prog, 0, sizeof prog);
    memset(&fn, 0, sizeof fn);
    prog.source_name = "<builder>";
    prog.nfuncs = 1;
    prog.funcs = &fn;
    fn.name = "main";
    fn.opset = opset;
    int ver = 0;
    if (!strncmp(opset, "ios", 3)) ver = atoi(opset + 3);
    if (ver < 15 || (ver > 18 && ver != 26)) return luaL_argerror(L, 1, "opset must be ios15 ... ios18");
    fn.opset_version = ver;
    fn.values = s->values;
    fn.nvalues = nv;
    mil_type res[MIL_MAX_RESULTS];
    int nres = 0;
    ane_error e;
    err_clear(&e);
    if (mil_infer_op(&prog, &fn, &op, res, &nres, &e)) {
        lua_pushnil(L);
        lua_pushstring(L, e.msg);
        return 2;
    }
    lua_createtable(L, nres, 0);
    for (int r = 0; r < nres; r++) {
        lua_createtable(L, 0, 2);
        lua_pushstring(L, mil_dtype_name(res[r].dtype));
        lua_setfield(L, -2, "dtype");
        lua_createtable(L, res[r].rank, 0);
        for (int i = 0; i < res[r].rank; i++) {
            lua_pushinteger(L, res[r].shape[i]);
            lua_rawseti(L, -2, i + 1);
        }
        lua_setfield(L, -2, "shape");
        lua_rawseti(L, -2, r + 1);
    }
    return 1;
}

static int l_weight_bytes(lua_State *L)
{
    tensor *t = lane_checktensor(L, 1);
    static const char *const names[] = {"fp16", "fp32", "int8", "uint8", NULL};
    static const dtype dts[] = {DT_FP16, DT_FP32, DT_INT8, DT_UINT8};
    dtype dt = dts[luaL_checkoption(L, 2, "fp16", names)];
    int64_t n = tensor_numel(t);
    size_t bytes = (size_t)n * dtype_size(dt);
    ane_error e;
    if (t->dt == dt) {
        if (storage_lock(t->st, 1, &e)) return lane_error(L, &e);
        lua_pushlstring(L, (const char *)tensor_data(t), bytes);
        storage_unlock(t->st, 1);
        return 1;
    }
    /* convert through a temporary tensor held by a userdata so an error cannot leak it */
    lane_tensor *tmp = lane_pushtensor(L);
    if (tensor_init(&tmp->t, dt, t->rank, t->shape, &e)) return lane_error(L, &e);
    if (storage_lock(t->st, 1, &e)) return lane_error(L, &e);
    int rc = tensor_copy(&tmp->t, t, &e);
    storage_unlock(t->st, 1);
    if (rc) return lane_error(L, &e);
    lua_pushlstring(L, (const char *)tensor_data(&tmp->t), bytes);
    tensor_release(&tmp->t);
    return 1;
}

void lane_open_milcheck(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"mil_infer", l_infer},
        {"mil_weight_bytes", l_weight_bytes},
        {NULL, NULL},
    };
    luaL_setfuncs(L, fns, 0);
}
