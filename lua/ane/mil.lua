--- ane.mil: build MIL programs from Lua, one method per op, checked as they are built.
--
--   local mil = require "ane.mil"
--   local p = mil.program{opset = "ios18"}
--   local f = p:func("main")
--   local x = f:input("x", "fp16", {1, 64, 1, 32})
--   local y = f:relu(x)
--   f:output(y)
--   print(p:text())            -- canonical MIL text
--   local blobs = p:weights()  -- { ["@model_path/weights/w.bin"] = bytes, ... }
--   local k = ane.compile(p)   -- the builder program itself is what compile takes
--
-- Op calls take positional inputs in the order of the reference (`f:add(a, b)`,
-- `f:reshape(x, {1, 2, 32, 32})`) or one table of named inputs (`f:conv{x = x, weight = w}`);
-- a trailing table with string keys adds named inputs to positional ones
-- (`f:softmax(x, {axis = 1, name = "p"})`). `name` names the result, `label` the op (default:
-- the result's name). Plain Lua values become typed consts (numbers adopt the dtype of the
-- tensor they combine with, lists become int32 for shape/axis inputs, booleans bool, strings
-- string); ane.Tensor weights become blob files; every optional input with a default is filled.
-- A violation is raised at the caller's line. Axes are MIL's (0-based, negatives from the end).
--
-- Everything lives in C (runtime/lua/l_mil.c): a builder program wraps one ane.Program and each
-- call goes straight into it. f:input is prog:param; each op is one prog:op, which types it with
-- the checker's rule on the spot; a const is prog:literal plus a const op; a tensor weight is
-- prog:add_blob plus a BLOBFILE literal. Input order, const-ness and defaults come from the C
-- signature table (ane.mil_signature). p:text() is the C printer, p:weights() the C program's
-- blobs, p:program() the same ane.Program, checked.
--
-- The one convention C code relies on: a builder program holds its ane.Program at field
-- `_prog` (lane_toprogram, runtime/lua/lane.h), so ane.compile(p) takes a builder program as is.
-- Checking freezes a program: after p:program() or ane.compile(p) no op can be added.
local core = require "ane.core"

local M = {}

local THIS = debug.getinfo(1, "S").source

-- Raise msg at the first stack frame outside this file (the user's call site).
local function usererror(msg)
  local level = 2
  while true do
    local info = debug.getinfo(level, "S")
    if not info or info.source ~= THIS then break end
    level = level + 1
  end
  error(msg, level)
end

-- Call a C primitive; its error (a checker message, or an argument error about user data)
-- is raised again at the user's line.
local function call(what, fn, ...)
  local res = table.pack(pcall(fn, ...))
  if not res[1] then
    local msg = tostring(res[2])
    local inner = msg:match("^bad argument #%d+ to '[^']*' %((.*)%)$")
    usererror(inner and (what .. ": " .. inner) or msg)
  end
  return table.unpack(res, 2, res.n)
end

local function is_tensor(v)
  local mt = getmetatable(v)
  return type(mt) == "table" and mt.__name == "ane.Tensor"
end

-- ===================================================================
-- values: (function, id) into the C program
-- ===================================================================

local Value = {}
Value.__index = Value
M.Value = Value

local function is_value(v) return getmetatable(v) == Value end
M.is_value = is_value

-- The Value for id in f; name, dtype and shape are the C program's, read once.
local function wrap(f, id)
  local name, dtype, shape, is_const = f.prog._prog:value_info(f.fn, id)
  return setmetatable({ f = f, id = id, name = name, dtype = dtype, shape = shape, const = is_const }, Value)
end

function Value:type()
  if #self.shape == 0 then return self.dtype end
  return "tensor<" .. self.dtype .. ", [" .. table.concat(self.shape, ", ") .. "]>"
end
function Value:__tostring() return string.format("mil.Value %s: %s", self.name, self:type()) end
function Value:rank() return #self.shape end
function Value:numel()
  local n = 1
  for _, d in ipairs(self.shape) do n = n * d end
  return n
end

-- Arithmetic on values builds ops in the value's function (x * 0.5, a + b, -x).
local function binop(op)
  return function(a, b)
    local f = is_value(a) and a.f or b.f
    return f[op](f, a, b)
  end
end
Value.__add = binop("add")
Value.__sub = binop("sub")
Value.__mul = binop("mul")
Value.__div = binop("real_div")
Value.__pow = binop("pow")
Value.__unm = function(a) return a.f:mul(a, -1) end

-- ===================================================================
-- op signatures (the C table, runtime/mil/sig.c)
-- ===================================================================

local OPS = core.mil_ops()
local KNOWN = {}
for _, op in ipairs(OPS) do KNOWN[op] = true end

-- Each input gets `set` (allowed dtypes as a set, nil = any), `data` (a data operand, not a
-- parameter or constant: numbers given for it adopt the data dtype, consts made for it are named
-- after the op) and `floaty` (accepts a float).
local function prepare(sig)
  for _, e in ipairs(sig.inputs) do
    if e.dtypes then
      e.set = {}
      for _, d in ipairs(e.dtypes) do e.set[d] = true end
    end
    e.floaty = not e.set or e.set.fp16 or e.set.fp32 or false
    e.data = not e.param and not e.const and e.floaty
  end
  return sig
end

local SIG_CACHE = {}

-- The signature of op in opset version ver (cached), or nil.
local function signature(op, ver)
  local per = SIG_CACHE[ver]
  if not per then
    per = {}
    SIG_CACHE[ver] = per
  end
  if per[op] == nil and KNOWN[op] then per[op] = prepare(core.mil_signature(op, ver)) end
  return per[op]
end

--- mil.signatures: op -> its signature at ios18, as ane.mil_signature gives it.
M.signatures = {}
for _, op in ipairs(OPS) do M.signatures[op] = core.mil_signature(op, 18) end

-- ===================================================================
-- programs and functions
-- ===================================================================

local Program = {}
Program.__index = Program
M.Program = Program

local Func = {}
Func.__index = Func
M.Func = Func

local OPSET_VERSION = { ios15 = 15, ios16 = 16, ios17 = 17, ios18 = 18 }
local DTYPES = {}
for _, d in ipairs { "fp16", "fp32", "fp64", "bf16", "int4", "int8", "int16", "int32", "int64", "uint1",
  "uint2", "uint4", "uint8", "uint16", "uint32", "uint64", "bool", "string" } do DTYPES[d] = true end

-- what coremlc writes in [buildInfo]; the 1.0 dialect's programs carry only the version
local BUILD_INFO = {
  ["1.3"] = { { "coremlc-component-MIL", "3510.2.1" }, { "coremlc-version", "3505.4.1" } },
  ["1.0"] = { { "coremlc-version", "3505.4.1" } },
}

--- mil.program{opset = "ios18", version = "1.3" | "1.0", build_info = true}
-- version "1.0" prints the M1/M2-era dialect (tensor<T, []> scalars); build_info = false omits
-- the [buildInfo] attribute.
function M.program(opts)
  opts = opts or {}
  for k in pairs(opts) do
    if k ~= "opset" and k ~= "version" and k ~= "build_info" then
      usererror("mil.program: unknown option '" .. tostring(k) .. "'")
    end
  end
  local opset = opts.opset or "ios18"
  if not OPSET_VERSION[opset] then
    usererror("mil.program: opset must be ios15, ios16, ios17 or ios18, got " .. tostring(opset))
  end
  local version = opts.version or (OPSET_VERSION[opset] >= 18 and "1.3" or "1.0")
  if version ~= "1.3" and version ~= "1.0" then
    usererror("mil.program: version must be \"1.3\" or \"1.0\"")
  end
  local prog = core.mil_program(version)
  if opts.build_info ~= false then prog:attr("buildInfo", BUILD_INFO[version]) end
  return setmetatable({ _prog = prog, opset = opset, version = version, funcs = {}, files = {} }, Program)
end

function Program:__tostring()
  return string.format("mil.Program (%d function%s, %s)", #self.funcs, #self.funcs == 1 and "" or "s",
    self.opset)
end

--- p:func(name = "main", opset = the program's) -> Func
function Program:func(name, opset)
  name = name or "main"
  opset = opset or self.opset
  if not OPSET_VERSION[opset] then usererror("func: unknown opset " .. tostring(opset)) end
  local fn = call("func", self._prog.func, self._prog, name, opset)
  local f = setmetatable({ prog = self, fn = fn, name = name, opset = opset, ver = OPSET_VERSION[opset],
    labels = {}, label_next = {}, consts = {}, started = false, views = setmetatable({}, { __mode = "k" }) }, Func)
  self.funcs[#self.funcs + 1] = f
  return f
end

function Func:__tostring()
  return string.format("mil.Func %s<%s>", self.name, self.opset)
end

-- Raise unless name is free in this function.
function Func:_check_name(name)
  if type(name) ~= "string" then usererror("bad name " .. tostring(name)) end
  if self.prog._prog:value_info(self.fn, name) then
    usererror("name '" .. name .. "' is already used in function " .. self.name)
  end
end

-- A label based on want, unique within the function (reserved by the caller once used): want
-- itself, else want_N for the smallest free N. Labels are never released, so the search for a
-- given want resumes where the last one stopped (label_next): O(1) per op, where restarting at
-- N = 1 made 20000 unnamed ops of one kind take minutes.
function Func:_label(want)
  local n = self.label_next[want]
  if not n then
    if not self.labels[want] then return want end
    n = 1
  end
  local l = want .. "_" .. n
  while self.labels[l] do
    n = n + 1
    l = want .. "_" .. n
  end
  self.label_next[want] = n
  return l
end

--- f:input(name, dtype, shape) -> Value
function Func:input(name, dtype, shape)
  if self.started then usererror("input: add inputs before the first op") end
  if not DTYPES[dtype] then usererror("unknown dtype " .. tostring(dtype)) end
  if type(shape) ~= "table" then usererror("input: shape must be a table of dims") end
  for i, d in ipairs(shape) do
    if math.type(d) ~= "integer" or d < 1 then usererror("input: dim " .. i .. " must be a positive integer") end
  end
  self:_check_name(name)
  return wrap(self, call("input", self.prog._prog.param, self.prog._prog, self.fn, name, dtype, shape))
end

--- f:output(v1, v2, ...): the function's ordered outputs, all in one call (a second call would
-- silently drop the first outputs, so it is an error).
function Func:output(...)
  local outs, ids = { ... }, {}
  if #outs == 0 then usererror("output: give at least one value") end
  if self.outputs then
    usererror(("output: %s's outputs are already set (%d); give them all in one call"):format(self.name, #self.outputs))
  end
  for i, v in ipairs(outs) do
    if not is_value(v) or v.f ~= self then usererror("output: argument " .. i .. " is not a value of " .. self.name) end
    ids[i] = v.id
  end
  call("output", self.prog._prog.output, self.prog._prog, self.fn, ids)
  self.outputs = outs
  return ...
end

-- ---- constants ----

-- A const op over literal id lit, labelled (and so named) after hint.
function Func:_const_op(lit, hint)
  local label = self:_label(hint)
  local id = call("const", self.prog._prog.op, self.prog._prog, self.fn, "const", {}, label, nil, { val = lit })
  self.labels[label] = true
  self.started = true
  return wrap(self, id)
end

-- Blob dtypes (ane-private-api.md 3): what a weight file can hold.
local BLOB_DTYPE = { fp16 = true, fp32 = true, uint8 = true, int8 = true }

-- A const value from a tensor: a blob file per tensor (one tensor per file keeps M1 happy), one
-- const per (tensor, dtype).
function Func:_tensor_const(t, dtype, name)
  if not BLOB_DTYPE[dtype] then usererror("weights must be fp16, fp32, int8 or uint8, not " .. dtype) end
  local cache = self.consts[t]
  if cache and cache[dtype] then return cache[dtype] end
  local prog = self.prog
  local file = self:_label(name or "w")
  if self.name ~= "main" then file = self.name .. "_" .. file end
  while prog.files[file] do file = file .. "_" end
  local path = "@model_path/weights/" .. file .. ".bin"
  local offset = call("weight", prog._prog.add_blob, prog._prog, path, t, dtype)
  prog.files[file] = true
  local lit = call("weight", prog._prog.literal, prog._prog, self.fn, dtype, t:shape(), { blob = path, offset = offset })
  local v = self:_const_op(lit, name or "w")
  self.consts[t] = cache or {}
  self.consts[t][dtype] = v
  return v
end

-- Flatten a (nested) Lua table of scalars; returns flat values and shape, or nil, message.
local function flatten(t)
  if type(t) ~= "table" then return { t }, {} end
  local shape, vals = {}, {}
  local function walk(x, d)
    if type(x) == "table" and not is_value(x) and not is_tensor(x) then
      if shape[d] == nil then shape[d] = #x
      elseif shape[d] ~= #x then return "ragged nested table" end
      for i = 1, #x do
        local err = walk(x[i], d + 1)
        if err then return err end
      end
    else
      if #shape ~= d - 1 then return "ragged nested table" end
      vals[#vals + 1] = x
    end
  end
  local err = walk(t, 1)
  if err then return nil, err end
  if #vals == 0 then return nil, "empty table" end
  return vals, shape
end

-- Key of a constant by value, from the elements as C stored them (rounded to the dtype).
local function const_key(dtype, shape, elems)
  local k = { dtype, table.concat(shape, ",") }
  for i, e in ipairs(elems) do k[i + 2] = string.format("%q", e) end
  return table.concat(k, "|")
end

-- A const from Lua data (number, boolean, string, nested table of them) or a tensor's elements,
-- reused by value within the function.
function Func:_lua_const(x, dtype, name)
  local vals, shape
  if is_tensor(x) then vals, shape = x, x:shape()
  else
    vals, shape = flatten(x)
    if not vals then usererror("const: " .. shape) end
  end
  if not DTYPES[dtype] then usererror("unknown dtype " .. tostring(dtype)) end
  local prog = self.prog._prog
  if #shape == 0 and not is_tensor(vals) then vals = vals[1] end
  local lit = call("const", prog.literal, prog, self.fn, dtype, shape, vals)
  local key = const_key(dtype, shape, prog:constant(self.fn, lit))
  if not self.consts[key] then self.consts[key] = self:_const_op(lit, name or "c") end
  return self.consts[key]
end

--- f:const(data, dtype = "fp16" (numbers) | "bool" | "string", {name = ...}) -> Value
-- data: a number, boolean, string, nested table, or ane.Tensor (a weight blob).
function Func:const(data, dtype, opts)
  if type(dtype) == "table" then dtype, opts = nil, dtype end
  opts = opts or {}
  if is_tensor(data) then
    return self:_tensor_const(data, dtype or "fp16", opts.name)
  end
  local first = data
  while type(first) == "table" do first = first[1] end
  if not dtype then
    dtype = type(first) == "boolean" and "bool" or type(first) == "string" and "string" or "fp16"
  end
  return self:_lua_const(data, dtype, opts.name)
end

-- ===================================================================
-- adding ops
-- ===================================================================

local FLOAT = { fp16 = true, fp32 = true }

-- The dtype plain Lua numbers adopt in this op: the first non-bool Value given for a data
-- operand, else a float tensor's, else fp16.
local function adopt(args, sig)
  for _, e in ipairs(sig.inputs) do
    local a = args[e.name]
    if e.data and is_value(a) and a.dtype ~= "bool" then return a.dtype end
    if e.data and e.tuple and type(a) == "table" then
      for _, x in ipairs(a) do if is_value(x) and x.dtype ~= "bool" then return x.dtype end end
    end
  end
  for _, e in ipairs(sig.inputs) do
    local a = args[e.name]
    if e.data and is_tensor(a) and FLOAT[a:dtype()] then return a:dtype() end
  end
  return "fp16"
end

-- dtype for float parameters (epsilon, alpha, scale): that of a float Value given for another
-- parameter (they share domain U from ios17), else the data dtype when it is a float.
local function param_dtype(args, sig, data_dt)
  for _, e in ipairs(sig.inputs) do
    local a = args[e.name]
    if e.param and is_value(a) and FLOAT[a.dtype] then return a.dtype end
  end
  return FLOAT[data_dt] and data_dt or "fp16"
end

-- int8 or uint8 for a quantisation input: uint8 when the op's output or a quantized operand is.
local function quant_dtype(args)
  if args.output_dtype == "uint8" then return "uint8" end
  for _, a in pairs(args) do
    if (is_value(a) and a.dtype == "uint8") or (is_tensor(a) and a:dtype() == "uint8") then return "uint8" end
  end
  return "int8"
end

-- dt if input e accepts it, else the first of int32, int8/uint8, fp32, fp16 it accepts.
local function fit(e, dt, args)
  local set = e.set
  if not set or set[dt] then return dt end
  if set.int32 then return "int32" end
  if set.uint32 then return "uint32" end -- pixel_unshuffle's downscale_factor
  if set.int8 or set.uint8 then return quant_dtype(args) end
  if set.fp32 then return "fp32" end
  if set.fp16 then return "fp16" end
  return dt
end

-- The dtype of a const made from Lua value a for input e.
local function const_dtype(e, a, ctx)
  if is_tensor(a) then
    local tdt = a:dtype()
    if e.set and e.set[tdt] and (tdt == "int8" or tdt == "uint8" or not e.floaty) then return tdt end
    if not e.floaty then return fit(e, tdt, ctx.args) end
    if e.data then return fit(e, ctx.data_dt, ctx.args) end
    return fit(e, e.domain == "T" and ctx.data_dt or "fp16", ctx.args)
  end
  local first = a
  while type(first) == "table" do first = first[1] end
  if type(first) == "boolean" then return "bool" end
  if type(first) == "string" then return "string" end
  local dt = ctx.data_dt
  if e.domain ~= "T" and (e.param or e.const) then dt = ctx.par_dt end
  return fit(e, dt, ctx.args)
end

-- Turn argument a (for signature input e) into a Value of f; dt forces the const's dtype.
function Func:_operand(op, e, a, ctx, dt)
  if is_value(a) then
    if a.f ~= self then usererror(op .. ": input '" .. e.name .. "' is a value of another function") end
    return a
  end
  -- consts are named after the parameter ("perm", "strides"), bools by value, data by op
  local hint = e.data and (op .. "_" .. e.name) or e.name
  dt = dt or const_dtype(e, a, ctx)
  if is_tensor(a) and BLOB_DTYPE[dt] then return self:_tensor_const(a, dt, hint) end
  if e.rank == 0 and type(a) == "table" then
    usererror(op .. ": input '" .. e.name .. "' takes a scalar, got a table")
  end
  if dt == "bool" and type(a) == "boolean" then hint = a and "c_true" or "c_false" end
  return self:_lua_const(a, dt, hint)
end

-- Split call arguments into a name -> value table following the op's signature order.
local function collect(op, sig, ...)
  local n = select("#", ...)
  local args, argv = {}, { ... }
  local inputs = sig.inputs
  local named
  if n >= 1 then
    local last = argv[n]
    -- a trailing plain table without list part is the named inputs/options table
    if type(last) == "table" and not is_value(last) and not is_tensor(last) and #last == 0 then
      named = last
    end
  end
  local npos = named and n - 1 or n
  if npos > #inputs then usererror(op .. ": too many arguments (" .. npos .. ", the op has " .. #inputs .. " inputs)") end
  for i = 1, npos do args[inputs[i].name] = argv[i] end
  local opts = {}
  for k, v in pairs(named or {}) do
    if k == "name" or k == "label" then opts[k] = v
    elseif type(k) ~= "string" then usererror(op .. ": mixed positional and named entries in the options table")
    else
      local known = false
      for _, e in ipairs(inputs) do if e.name == k then known = true end end
      if not known then usererror(op .. ": unknown input '" .. k .. "'") end
      if args[k] ~= nil then usererror(op .. ": input '" .. k .. "' given twice") end
      args[k] = v
    end
  end
  return args, opts
end

-- The default of input i, or nil: fixed ones from the signature, computed ones from the type
-- of x (the op's first input) through ane.mil_signature (asked once per op, kept in ctx); an
-- empty computed list stays absent.
local function default_of(op, ver, sig, i, ctx)
  local e = sig.inputs[i]
  if not e.computed then return e.default, e.default_dtype end
  local x = ctx.args[sig.inputs[1].name]
  if not is_value(x) then return nil end
  ctx.computed = ctx.computed or core.mil_signature(op, ver, { dtype = x.dtype, shape = x.shape }).inputs
  local d = ctx.computed[i]
  if #d.default > 0 then return d.default, d.default_dtype end
end

--- f:op(type, inputs, opts) -> Value(s): the generic form every op method uses.
-- inputs: name -> Value or Lua data (a tuple input takes a list of them).
function Func:op(op, args, opts)
  opts = opts or {}
  local sig = signature(op, self.ver)
  if not sig then usererror("unknown op '" .. tostring(op) .. "'") end
  if self.ver < sig.since then
    usererror(string.format("%s: op needs ios%d or later (function is %s)", op, sig.since, self.opset))
  end
  local data_dt = adopt(args, sig)
  local ctx = { args = args, data_dt = data_dt, par_dt = param_dtype(args, sig, data_dt) }
  local ids = {}
  for i, e in ipairs(sig.inputs) do
    local a, dt = args[e.name], nil
    if a == nil and e.since <= self.ver then a, dt = default_of(op, self.ver, sig, i, ctx) end
    if a ~= nil then
      if e.tuple then
        if type(a) ~= "table" or is_value(a) or #a == 0 then
          usererror(op .. ": input '" .. e.name .. "' takes a list of values")
        end
        local list = {}
        for i, item in ipairs(a) do list[i] = self:_operand(op, e, item, ctx).id end
        ids[e.name] = list
      else
        ids[e.name] = self:_operand(op, e, a, ctx, dt).id
      end
    end
  end
  if opts.name then self:_check_name(opts.name) end
  local label = opts.label
  if label and self.labels[label] then usererror(op .. ": label '" .. label .. "' is already used") end
  label = label or self:_label(opts.name or op)
  local res = table.pack(call(op, self.prog._prog.op, self.prog._prog, self.fn, op, ids, label, opts.name))
  self.labels[label] = true
  self.started = true
  for i = 1, res.n do res[i] = wrap(self, res[i]) end
  return table.unpack(res, 1, res.n)
end

-- one method per op: f:relu(x), f:add(a, b), f:conv{x = x, weight = w}, ...
for _, op in ipairs(OPS) do
  if op ~= "const" then
    Func[op] = function(self, ...)
      local sig = signature(op, self.ver)
      local args, opts = collect(op, sig, ...)
      return self:op(op, args, opts)
    end
  end
end

-- ===================================================================
-- idioms
-- ===================================================================

--- f:cast(x, "fp16") is the generated method; f:to_fp16(x) / f:to_fp32(x) are shorthands.
function Func:to_fp16(x, opts) return self:cast(x, "fp16", opts) end
function Func:to_fp32(x, opts) return self:cast(x, "fp32", opts) end

-- One view per (tensor, shape use), so the same weight stays one blob.
function Func:_view(t, shape)
  local v = self.views[t] or t:reshape(shape)
  self.views[t] = v
  return v
end

--- f:linear_conv(x, W, {bias = b, name = ...}): y = W·x as a 1×1 conv on [1, C_in, 1, S].
-- W: an ane.Tensor [out, in] (or [out, in, 1, 1]), or a Value of rank 2 or 4.
function Func:linear_conv(x, W, opts)
  opts = opts or {}
  local w = W
  if is_tensor(W) then
    local s = W:shape()
    if #s == 2 then w = self:_view(W, { s[1], s[2], 1, 1 }) end
  elseif is_value(W) and #W.shape == 2 then
    w = self:reshape(W, { W.shape[1], W.shape[2], 1, 1 })
  end
  return self:conv { x = x, weight = w, bias = opts.bias, name = opts.name, label = opts.label }
end

--- f:rmsnorm(x, w, eps = 1e-5): x·(mean over channels of x² + eps)^(-1/2)·w, as
-- mil-reference example 10.5 (reduce_sum over axis 1, scale 1/C, pow -0.5). w: ane.Tensor [C]
-- or [1, C, 1, 1], a Value broadcastable to x, or nil (no scale).
function Func:rmsnorm(x, w, eps, opts)
  opts = opts or {}
  if not is_value(x) or #x.shape < 2 then usererror("rmsnorm: x must be a value of rank >= 2") end
  local C = x.shape[2]
  local sq = self:mul(x, x)
  local ss = self:reduce_sum(sq, { 1 }, true)
  local ms = self:mul(ss, 1 / C)
  local r = self:pow(self:add(ms, eps or 1e-5), -0.5)
  if w == nil then return self:mul(x, r, { name = opts.name }) end
  local xr = self:mul(x, r)
  if is_tensor(w) then
    local s = w:shape()
    if #s == 1 and #x.shape == 4 then w = self:_view(w, { 1, s[1], 1, 1 }) end
  end
  return self:mul(xr, w, { name = opts.name })
end

--- f:causal_mask(S, dtype = "fp16") -> const [1, 1, S, S]: 0 where key u <= query t, -65504 else.
function Func:causal_mask(S, dtype)
  dtype = dtype or "fp16"
  local rows, flat = {}, {}
  for t = 1, S do
    local row = {}
    for u = 1, S do
      row[u] = u <= t and 0 or -65504
      flat[#flat + 1] = row[u]
    end
    rows[t] = row
  end
  if S > 16 then -- large masks go to a blob
    return self:_tensor_const(core.from_table(flat, dtype, { 1, 1, S, S }), dtype, "mask")
  end
  return self:_lua_const({ { rows } }, dtype, "mask")
end

--- f:dynamic_weights(x, seq, oc) -> y [1, OC, 1, SEQ]: example 10.3. x is [1, IC, 1, SEQ + OC];
-- columns [0, SEQ) hold activations act[ci][s], columns [SEQ, SEQ + OC) hold W[ci][oc], and
-- y[oc][s] = sum_ci act[ci][s]·W[ci][oc]. Rewriting the weight columns needs no recompile.
function Func:dynamic_weights(x, seq, oc, opts)
  opts = opts or {}
  if not is_value(x) or #x.shape ~= 4 then usererror("dynamic_weights: x must be a [1, IC, 1, SEQ+OC] value") end
  local ic = x.shape[2]
  if x.shape[4] ~= seq + oc then
    usererror(string.format("dynamic_weights: x has %d columns, expected seq + oc = %d", x.shape[4], seq + oc))
  end
  local act = self:slice_by_size(x, { 0, 0, 0, 0 }, { 1, ic, 1, seq })
  local w_raw = self:slice_by_size(x, { 0, 0, 0, seq }, { 1, ic, 1, oc })
  local a2 = self:reshape(act, { 1, 1, ic, seq })
  local a_t = self:transpose(a2, { 0, 1, 3, 2 })
  local w = self:reshape(w_raw, { 1, 1, ic, oc })
  local y2 = self:matmul(a_t, w, false, false)
  local y_t = self:transpose(y2, { 0, 1, 3, 2 })
  return self:reshape(y_t, { 1, oc, 1, seq }, { name = opts.name })
end

--- f:attention(q, k, v, {heads = H, causal = true, name = ...}) -> [1, H·D, 1, S]: example 10.2
-- on [1, H·D, 1, S] inputs: per head softmax(qᵀk/√D + mask)·v.
function Func:attention(q, k, v, opts)
  opts = opts or {}
  local H = opts.heads or 1
  for i, t in ipairs { q, k, v } do
    if not is_value(t) or #t.shape ~= 4 then usererror("attention: argument " .. i .. " must be a [1, C, 1, S] value") end
  end
  local C, S = q.shape[2], q.shape[4]
  if C % H ~= 0 then usererror(string.format("attention: %d channels do not split into %d heads", C, H)) end
  local D = C // H
  local swap = { 0, 1, 3, 2 }
  local function heads(t) return self:transpose(self:reshape(t, { 1, H, D, t.shape[4] }), swap) end
  local qh, kh, vh = heads(q), heads(k), heads(v)
  local s = self:matmul(qh, kh, false, true)
  s = self:mul(s, 1 / math.sqrt(D))
  if opts.causal then s = self:add(s, self:causal_mask(S, s.dtype)) end
  local p = self:softmax(s, -1)
  local o = self:matmul(p, vh, false, false)
  return self:reshape(self:transpose(o, swap), { 1, C, 1, S }, { name = opts.name })
end

-- ===================================================================
-- text, weights, the C program
-- ===================================================================

-- Raise unless every function has outputs (a program without them prints but cannot compile).
function Program:_complete(what)
  if #self.funcs == 0 then usererror(what .. ": the program has no function") end
  for _, f in ipairs(self.funcs) do
    if not f.outputs then usererror(what .. ": function '" .. f.name .. "' has no outputs (call f:output(...))") end
  end
end

--- p:text([{dialect = "1.0" | "1.3"}]) -> canonical MIL text (the C printer).
function Program:text(opts)
  self:_complete("text")
  return call("text", self._prog.text, self._prog, opts)
end

--- p:weights() -> { [path] = bytes } : the blob files the text references.
function Program:weights() return self._prog:weights() end

--- p:save(dir): dir/model.mil and dir/weights/*.bin (the layout @model_path expects).
function Program:save(dir)
  local text = self:text()
  local ok, lfs = pcall(require, "lfs")
  local function mkdir(d)
    if ok then lfs.mkdir(d) else os.execute("mkdir -p '" .. d:gsub("'", "'\\''") .. "'") end
  end
  mkdir(dir)
  mkdir(dir .. "/weights")
  local function write(path, data)
    local fh, err = io.open(path, "wb")
    if not fh then usererror("save: " .. err) end
    fh:write(data)
    fh:close()
  end
  write(dir .. "/model.mil", text)
  for path, bytes in pairs(self:weights()) do
    write(dir .. "/" .. path:gsub("^@model_path/", ""), bytes)
  end
  return true
end

--- p:program() -> the builder's own ane.Program (rawequal to p._prog), checked, its weight blobs
-- registered: what ane.compile runs. Checking freezes it (no more ops).
function Program:program()
  self:_complete("program")
  call("program", self._prog.check, self._prog)
  return self._prog
end

--- mil.parse(text, source_name) -> ane.Program (the front end's parsed program).
function M.parse(text, name) return core.mil_parse(text, name) end

return M
