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
--
-- Op calls take positional inputs in the order of the reference (`f:add(a, b)`,
-- `f:reshape(x, {1, 2, 32, 32})`) or one table of named inputs (`f:conv{x = x, weight = w}`);
-- a trailing table with string keys adds named inputs to positional ones
-- (`f:softmax(x, {axis = 1, name = "p"})`). `name` names the result, `label` the op (default:
-- the result's name). Plain Lua values become typed consts (numbers adopt the dtype of the
-- tensor they combine with, lists become int32 for shape/axis inputs, booleans bool, strings
-- string); ane.Tensor weights become blob files; every optional input with a default is filled.
-- Each op's result type comes from the C checker (ane.mil_infer) the moment it is added, and a
-- violation is raised at the caller's line. Axes are MIL's (0-based, negatives from the end).
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

local function is_tensor(v)
  local mt = getmetatable(v)
  return type(mt) == "table" and mt.__name == "ane.Tensor"
end

-- ===================================================================
-- values
-- ===================================================================

local Value = {}
Value.__index = Value
M.Value = Value

local function is_value(v) return getmetatable(v) == Value end
M.is_value = is_value

local function shape_str(shape)
  local t = {}
  for i, d in ipairs(shape) do t[i] = tostring(d) end
  return "[" .. table.concat(t, ", ") .. "]"
end

local function type_str(dtype, shape, dialect10)
  if #shape == 0 and not dialect10 then return dtype end
  return "tensor<" .. dtype .. ", " .. shape_str(shape) .. ">"
end

function Value:__tostring()
  return string.format("mil.Value %s: %s", self.name, type_str(self.dtype, self.shape))
end

function Value:type() return type_str(self.dtype, self.shape) end
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
-- literals: formatting and rounding
-- ===================================================================

local FLOAT = { fp16 = true, fp32 = true, fp64 = true, bf16 = true }
local INT = { int4 = true, int8 = true, int16 = true, int32 = true, int64 = true, uint1 = true,
  uint2 = true, uint4 = true, uint8 = true, uint16 = true, uint32 = true, uint64 = true }
M.FLOAT, M.INT = FLOAT, INT

local function round_to(dtype, v)
  if dtype == "fp16" then return core.fp16_round(v) end
  if dtype == "fp32" then return (string.unpack("<f", string.pack("<f", v))) end
  return v
end

local function fmt_float(v)
  if v ~= v then return "nan" end
  if v == math.huge then return "inf" end
  if v == -math.huge then return "-inf" end
  if v == 0 then return (1 / v < 0) and "-0x0p+0" or "0x0p+0" end
  return string.format("%a", v)
end

local function fmt_elem(dtype, v)
  if FLOAT[dtype] then return fmt_float(v) end
  if dtype == "bool" then return v and "true" or "false" end
  if dtype == "string" then return '"' .. v:gsub('[\\"]', "\\%0") .. '"' end
  return string.format("%d", v)
end

-- nested list text of flat values for a shape (rank >= 1)
local function nested(dtype, vals, shape)
  local pos = 0
  local function level(d)
    local parts = {}
    for i = 1, shape[d] do
      if d == #shape then
        pos = pos + 1
        parts[i] = fmt_elem(dtype, vals[pos])
      else
        parts[i] = level(d + 1)
      end
    end
    return "[" .. table.concat(parts, ", ") .. "]"
  end
  return level(1)
end

local function literal_text(dtype, shape, vals, dialect10)
  if #shape == 0 then
    if dialect10 then return "tensor<" .. dtype .. ", []>(" .. fmt_elem(dtype, vals[1]) .. ")" end
    return dtype .. "(" .. fmt_elem(dtype, vals[1]) .. ")"
  end
  return type_str(dtype, shape) .. "(" .. nested(dtype, vals, shape) .. ")"
end

local function str_lit(s, dialect10)
  return literal_text("string", {}, { s }, dialect10)
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
  return setmetatable({ opset = opset, version = version, build_info = opts.build_info ~= false,
    funcs = {}, blobs = {}, blob_order = {}, blob_names = {} }, Program)
end

function Program:__tostring()
  return string.format("mil.Program (%d function%s, %s)", #self.funcs, #self.funcs == 1 and "" or "s",
    self.opset)
end

--- p:func(name = "main", opset = the program's) -> Func
function Program:func(name, opset)
  name = name or "main"
  opset = opset or self.opset
  if type(name) ~= "string" or not name:match("^[%a_][%w_@]*$") then
    usererror("func: bad function name " .. tostring(name))
  end
  if not OPSET_VERSION[opset] then usererror("func: unknown opset " .. tostring(opset)) end
  for _, g in ipairs(self.funcs) do
    if g.name == name then usererror("func: duplicate function '" .. name .. "'") end
  end
  local f = setmetatable({ prog = self, name = name, opset = opset, ver = OPSET_VERSION[opset],
    params = {}, stmts = {}, outputs = nil, names = {}, labels = {}, consts = {}, counter = {},
    views = setmetatable({}, { __mode = "k" }) }, Func)
  self.funcs[#self.funcs + 1] = f
  return f
end

function Func:__tostring()
  return string.format("mil.Func %s<%s> (%d inputs, %d ops)", self.name, self.opset, #self.params,
    #self.stmts)
end

-- a fresh var name based on base (unique within the function)
function Func:_fresh(base)
  base = (base or "v"):gsub("[^%w_@]", "_")
  if not base:match("^[%a_]") then base = "v_" .. base end
  if not self.names[base] then
    self.names[base] = true
    return base
  end
  local n = self.counter[base] or 0
  repeat
    n = n + 1
  until not self.names[base .. "_" .. n]
  self.counter[base] = n
  local name = base .. "_" .. n
  self.names[name] = true
  return name
end

function Func:_claim(name)
  if type(name) ~= "string" or not name:match("^[%a_][%w_@]*$") then
    usererror("bad name " .. tostring(name) .. " (MIL identifiers: letters, digits, _ and @)")
  end
  if self.names[name] then usererror("name '" .. name .. "' is already used in function " .. self.name) end
  self.names[name] = true
  return name
end

local function check_dtype(dtype)
  if not (FLOAT[dtype] or INT[dtype] or dtype == "bool" or dtype == "string") then
    usererror("unknown dtype " .. tostring(dtype))
  end
end

--- f:input(name, dtype, shape) -> Value
function Func:input(name, dtype, shape)
  if #self.stmts > 0 then usererror("input: add inputs before the first op") end
  check_dtype(dtype)
  if type(shape) ~= "table" then usererror("input: shape must be a table of dims") end
  local s = {}
  for i, d in ipairs(shape) do
    if math.type(d) ~= "integer" or d < 1 then usererror("input: dim " .. i .. " must be a positive integer") end
    s[i] = d
  end
  local v = setmetatable({ f = self, name = self:_claim(name), dtype = dtype, shape = s }, Value)
  self.params[#self.params + 1] = v
  return v
end

--- f:output(v1, v2, ...): the function's ordered outputs.
function Func:output(...)
  local outs = { ... }
  if #outs == 0 then usererror("output: give at least one value") end
  for i, v in ipairs(outs) do
    if not is_value(v) or v.f ~= self then usererror("output: argument " .. i .. " is not a value of " .. self.name) end
  end
  self.outputs = outs
  return ...
end

-- ---- constants ----

-- Blob dtype codes (ane-private-api.md 3): 1 fp16, 2 fp32, 3 uint8, 4 int8.
local BLOB_CODE = { fp16 = 1, fp32 = 2, uint8 = 3, int8 = 4 }

local function blob_file(bytes, dtype)
  local size = #bytes
  local pad = (64 - size % 64) % 64
  return string.pack("<I4I4", 1, 2) .. string.rep("\0", 56)
      .. string.pack("<I4I4I8I8", 0xDEADBEEF, BLOB_CODE[dtype], size, 128) .. string.rep("\0", 40)
      .. bytes .. string.rep("\0", pad)
end
M._blob_file = blob_file

-- A const value from a tensor: a blob file per tensor (one tensor per file keeps M1 happy).
function Func:_tensor_const(t, dtype, name)
  if not BLOB_CODE[dtype] then usererror("weights must be fp16, fp32, int8 or uint8, not " .. dtype) end
  local key = t
  local cache = self.consts[key]
  if cache and cache[dtype] then return cache[dtype] end
  local shape = t:shape()
  local vname = self:_fresh(name or "w")
  local prog = self.prog
  local file = vname
  if self.name ~= "main" then file = self.name .. "_" .. vname end
  while prog.blob_names[file] do file = file .. "_" end
  prog.blob_names[file] = true
  local path = "@model_path/weights/" .. file .. ".bin"
  prog.blobs[path] = blob_file(core.mil_weight_bytes(t, dtype), dtype)
  prog.blob_order[#prog.blob_order + 1] = path
  local v = setmetatable({ f = self, name = vname, dtype = dtype, shape = shape, const = true,
    blob = path }, Value)
  self.stmts[#self.stmts + 1] = { kind = "const", res = { v }, label = self:_label(vname) }
  self.consts[key] = cache or {}
  self.consts[key][dtype] = v
  return v
end

function Func:_label(want)
  local l = want
  local n = 0
  while self.labels[l] do
    n = n + 1
    l = want .. "_" .. n
  end
  self.labels[l] = true
  return l
end

-- A const from Lua data: number, boolean, string, or (nested) table of them.
function Func:_lua_const(x, dtype, name)
  local vals, shape = flatten(x)
  if not vals then usererror("const: " .. shape) end
  check_dtype(dtype)
  local out = {}
  for i, e in ipairs(vals) do
    if dtype == "string" then
      if type(e) ~= "string" then usererror("const: string expected, got " .. type(e)) end
      out[i] = e
    elseif dtype == "bool" then
      if type(e) ~= "boolean" then usererror("const: boolean expected, got " .. type(e)) end
      out[i] = e
    else
      if type(e) ~= "number" then usererror("const: number expected for " .. dtype .. ", got " .. type(e)) end
      if INT[dtype] then
        local iv = math.tointeger(e)
        if not iv then usererror("const: " .. tostring(e) .. " is not an integer (" .. dtype .. ")") end
        out[i] = iv
      else
        out[i] = round_to(dtype, e + 0.0)
      end
    end
  end
  local key = { dtype, shape_str(shape) }
  for i, e in ipairs(out) do key[#key + 1] = dtype == "string" and ("%q"):format(e) or tostring(e) end
  key = table.concat(key, "|")
  if self.consts[key] then return self.consts[key] end
  local vname = self:_fresh(name or "c")
  local v = setmetatable({ f = self, name = vname, dtype = dtype, shape = shape, const = true, lit = out }, Value)
  self.stmts[#self.stmts + 1] = { kind = "const", res = { v }, label = self:_label(vname) }
  self.consts[key] = v
  return v
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
-- op signatures (mil-reference.md section 8)
-- ===================================================================
-- "name:kind[=default][^since]" ; kind: v value, vt tuple of values, iv int32 value (indices),
-- w weight (tensors -> fp16 blobs), p float parameter, q quantized zero point, i int32 scalar,
-- il int32 list, b bool, bl bool list, s string. `?` = optional without default (stays absent);
-- no default and no `?` = required. Defaults starting with @ are computed from the op's x.

local SIG_TEXT = {
  const = "",
  constexpr_affine_dequantize = "quantized_data:w zero_point:q scale:p axis:i",
  constexpr_blockwise_shift_scale = "data:w scale:w offset:w?",
  constexpr_cast = "source_val:w output_dtype:s=fp32",
  rsqrt = "x:v epsilon:p=1e-12", inverse = "x:v epsilon:p=1e-4", log = "x:v epsilon:p=1e-45",
  clip = "x:v alpha:p beta:p", threshold = "x:v alpha:p",
  gelu = "x:v mode:s=EXACT",
  leaky_relu = "x:v alpha:p=0.01", elu = "x:v alpha:p=1", thresholded_relu = "x:v alpha:p=1",
  clamped_relu = "x:v alpha:p beta:p", linear_activation = "x:v alpha:p beta:p=0",
  scaled_tanh = "x:v alpha:p=1 beta:p=1", sigmoid_hard = "x:v alpha:p=0.2 beta:p=0.5",
  prelu = "x:v alpha:w",
  cast = "x:v dtype:s",
  softmax = "x:v axis:i=-1",
  layer_norm = "x:v axes:il=@axes gamma:w? beta:w? epsilon:p=1e-5",
  batch_norm = "x:v mean:w variance:w gamma:w? beta:w? epsilon:p=1e-5",
  instance_norm = "x:v gamma:w? beta:w? epsilon:p=1e-5",
  l2_norm = "x:v epsilon:p=1e-6",
  local_response_norm = "x:v size:i alpha:p=1e-4 beta:p=0.75 k:p=1",
  conv = "x:v weight:w bias:w? strides:il=@ones pad_type:s=valid pad:il=@zeros2 dilations:il=@ones groups:i=1",
  conv_transpose = "x:v weight:w bias:w? pad:il=@zeros2 output_shape:il? pad_type:s=valid strides:il=@ones dilations:il=@ones groups:i=1",
  matmul = "x:v y:v transpose_x:b=false transpose_y:b=false",
  linear = "x:v weight:w bias:w?",
  reduce_argmax = "x:v axis:i=-1 keep_dims:b=false output_dtype:s=int32^17",
  reduce_argmin = "x:v axis:i=-1 keep_dims:b=false output_dtype:s=int32^17",
  reshape = "x:v shape:il", transpose = "x:v perm:il", expand_dims = "x:v axes:il",
  squeeze = "x:v axes:il=@size1",
  slice_by_size = "x:v begin:il size:il",
  slice_by_index = "x:v begin:il end:il stride:il=@ones_r begin_mask:bl=@false_r end_mask:bl=@false_r squeeze_mask:bl=@false_r",
  slice_update = "x:v update:v begin:il end:il stride:il=@ones_r begin_mask:bl=@false_r end_mask:bl=@false_r squeeze_mask:bl=@false_r",
  concat = "values:vt axis:i interleave:b=false",
  split = "x:v axis:i num_splits:i? split_sizes:il?",
  tile = "x:v reps:il", identity = "x:v",
  fill = "shape:il value:p=0",
  band_part = "x:v lower:i=-1 upper:i=-1",
  select = "cond:v a:v b:v",
  gather = "x:v indices:iv axis:i=0 batch_dims:i=0^16 validate_indices:b=false^17",
  gather_along_axis = "x:v indices:iv axis:i=0 validate_indices:b=false^17",
  scatter = "data:v indices:iv updates:v axis:i=0 mode:s=add validate_indices:b=false^17",
  scatter_along_axis = "data:v indices:iv updates:v axis:i=0 mode:s=add validate_indices:b=false^17",
  scaled_dot_product_attention = "query:v key:v value:v attn_mask:v?",
  quantize = "input:v scale:p zero_point:q? axis:i? output_dtype:s",
  dequantize = "input:v scale:p zero_point:q? axis:i?",
}
for _, op in ipairs { "add", "sub", "mul", "real_div", "pow", "maximum", "minimum", "floor_div", "mod",
  "equal", "not_equal", "greater", "greater_equal", "less", "less_equal", "logical_and",
  "logical_or", "logical_xor" } do
  SIG_TEXT[op] = "x:v y:v"
end
for _, op in ipairs { "relu", "relu6", "sigmoid", "silu", "tanh", "exp", "exp2", "sqrt", "sin", "cos",
  "tan", "asin", "acos", "atan", "atanh", "sinh", "cosh", "erf", "floor", "ceil", "round", "abs",
  "sign", "square", "softplus", "softsign", "logical_not" } do
  SIG_TEXT[op] = "x:v"
end
for _, op in ipairs { "reduce_sum", "reduce_mean", "reduce_max", "reduce_min", "reduce_prod",
  "reduce_sum_square", "reduce_l1_norm", "reduce_l2_norm", "reduce_log_sum", "reduce_log_sum_exp" } do
  SIG_TEXT[op] = "x:v axes:il=@axes keep_dims:b=false"
end

local SINCE = { constexpr_affine_dequantize = 16, constexpr_cast = 16, constexpr_blockwise_shift_scale = 18,
  slice_update = 18, scaled_dot_product_attention = 18, quantize = 17, dequantize = 17 }

local SIGS = {}
for op, text in pairs(SIG_TEXT) do
  local sig = {}
  for tok in text:gmatch("%S+") do
    local name, kind, rest = tok:match("^([%w_]+):(%a+)(.*)$")
    local e = { name = name, kind = kind }
    local since = rest:match("%^(%d+)$")
    if since then e.since = tonumber(since); rest = rest:gsub("%^%d+$", "") end
    if rest == "?" then e.optional = true
    elseif rest:sub(1, 1) == "=" then
      local d = rest:sub(2)
      if d == "true" then e.default = true
      elseif d == "false" then e.default = false
      elseif tonumber(d) then e.default = tonumber(d)
      else e.default = d end
      e.optional = true
    end
    sig[#sig + 1] = e
  end
  SIGS[op] = sig
end
M.signatures = SIGS

local function ones(n, v)
  local t = {}
  for i = 1, n do t[i] = v end
  return t
end

-- computed defaults, from the op's first value operand x
local SPECIAL = {
  ["@ones"] = function(x) return ones(math.max(#x.shape - 2, 0), 1) end,
  ["@zeros2"] = function(x) return ones(2 * math.max(#x.shape - 2, 0), 0) end,
  ["@ones_r"] = function(x) return ones(#x.shape, 1) end,
  ["@false_r"] = function(x) return ones(#x.shape, false) end,
  ["@axes"] = function(x)
    local t = {}
    for i = 1, #x.shape do t[i] = i - 1 end
    return #t > 0 and t or nil
  end,
  ["@size1"] = function(x)
    local t = {}
    for i, d in ipairs(x.shape) do if d == 1 then t[#t + 1] = i - 1 end end
    return #t > 0 and t or nil
  end,
}

-- ===================================================================
-- adding ops
-- ===================================================================

local function descriptor(v)
  local d = { dtype = v.dtype, shape = v.shape, const = v.const or nil }
  if v.lit and #v.lit <= 4096 then d.value = v.lit end
  return d
end

-- The dtype plain Lua numbers adopt in this op: the first non-bool value operand's.
local function adopt(args, sig)
  for _, e in ipairs(sig) do
    local a = args[e.name]
    if e.kind == "v" and is_value(a) and a.dtype ~= "bool" then return a.dtype end
    if e.kind == "vt" and type(a) == "table" then
      for _, x in ipairs(a) do if is_value(x) and x.dtype ~= "bool" then return x.dtype end end
    end
  end
  for _, e in ipairs(sig) do
    local a = args[e.name]
    if e.kind == "v" and is_tensor(a) then
      local dt = a:dtype()
      if dt == "fp16" or dt == "fp32" then return dt end
    end
  end
  return "fp16"
end

-- dtype for float parameters (epsilon, alpha, scale): that of a weight/param value given as a
-- Value (they share domain U from ios17), else the adopted data dtype when it is a float.
local function param_dtype(args, sig, data_dt)
  for _, e in ipairs(sig) do
    local a = args[e.name]
    if (e.kind == "w" or e.kind == "p") and is_value(a) and FLOAT[a.dtype] then return a.dtype end
  end
  return FLOAT[data_dt] and data_dt or "fp16"
end

-- Turn argument a (for signature entry e) into a Value of f.
function Func:_operand(op, e, a, data_dt, par_dt, args)
  if is_value(a) then
    if a.f ~= self then usererror(op .. ": input '" .. e.name .. "' is a value of another function") end
    return a
  end
  local k = e.kind
  -- const names: the parameter's name ("perm", "strides"), bools by value, data operands by op
  local hint = e.name
  if k == "v" or k == "vt" or k == "iv" then hint = op .. "_" .. e.name end
  if is_tensor(a) then
    if k == "iv" then return self:_lua_const(a:to_table(), "int32", hint) end
    local dt
    if k == "w" then
      local tdt = a:dtype()
      dt = (tdt == "int8" or tdt == "uint8") and tdt or "fp16"
    else dt = data_dt end
    if not BLOB_CODE[dt] then dt = "fp16" end
    return self:_tensor_const(a, dt, hint)
  end
  local dt
  if k == "i" or k == "il" or k == "iv" then dt = "int32"
  elseif k == "b" or k == "bl" then dt = "bool"
  elseif k == "s" then dt = "string"
  elseif k == "p" or k == "w" then dt = par_dt
  elseif k == "q" then
    local od = args.output_dtype
    dt = (od == "uint8" or (is_value(args.input) and args.input.dtype == "uint8")) and "uint8" or "int8"
  else
    local first = a
    while type(first) == "table" do first = first[1] end
    dt = type(first) == "boolean" and "bool" or type(first) == "string" and "string" or data_dt
  end
  if (k == "i" or k == "b" or k == "s") and type(a) == "table" then
    usererror(op .. ": input '" .. e.name .. "' takes a scalar, got a table")
  end
  if dt == "bool" and type(a) == "boolean" then hint = a and "c_true" or "c_false" end
  return self:_lua_const(a, dt, hint)
end

-- Split call arguments into a name -> value table following the op's signature order.
local function collect(op, sig, ...)
  local n = select("#", ...)
  local args = {}
  local argv = { ... }
  local named
  if n >= 1 then
    local last = argv[n]
    -- a trailing plain table without list part is the named inputs/options table
    if type(last) == "table" and not is_value(last) and not is_tensor(last) and #last == 0 then
      named = last
    end
  end
  local npos = named and n - 1 or n
  if npos > #sig then usererror(op .. ": too many arguments (" .. npos .. ", the op has " .. #sig .. " inputs)") end
  for i = 1, npos do args[sig[i].name] = argv[i] end
  local opts = {}
  if named then
    for k, v in pairs(named) do
      if k == "name" or k == "label" then opts[k] = v
      elseif type(k) ~= "string" then usererror(op .. ": mixed positional and named entries in the options table")
      else
        local known = false
        for _, e in ipairs(sig) do if e.name == k then known = true end end
        if not known then usererror(op .. ": unknown input '" .. k .. "'") end
        if args[k] ~= nil then usererror(op .. ": input '" .. k .. "' given twice") end
        args[k] = v
      end
    end
  end
  return args, opts
end

--- f:op(type, inputs, opts) -> Value(s): the generic form every op method uses.
-- inputs: name -> Value or Lua data (a tuple input takes a list of them).
function Func:op(op, args, opts)
  opts = opts or {}
  local sig = SIGS[op]
  if not sig then usererror("unknown op '" .. tostring(op) .. "'") end
  if SINCE[op] and self.ver < SINCE[op] then
    usererror(string.format("%s: op needs ios%d or later (function is %s)", op, SINCE[op], self.opset))
  end
  local data_dt = adopt(args, sig)
  local par_dt = param_dtype(args, sig, data_dt)
  local x
  for _, e in ipairs(sig) do
    local a = args[e.name]
    if (e.kind == "v" or e.kind == "vt") and a ~= nil then
      x = is_value(a) and a or (e.kind == "vt" and is_value(a[1]) and a[1]) or nil
      break
    end
  end
  local inputs, desc = {}, {}
  for _, e in ipairs(sig) do
    local a = args[e.name]
    if a == nil and e.default ~= nil and (not e.since or self.ver >= e.since) then
      if type(e.default) == "string" and SPECIAL[e.default] then
        if x then a = SPECIAL[e.default](x) end
      else
        a = e.default
      end
    end
    if a ~= nil then
      if e.kind == "vt" then
        if type(a) ~= "table" or is_value(a) or #a == 0 then
          usererror(op .. ": input '" .. e.name .. "' takes a list of values")
        end
        local list, dl = {}, {}
        for i, item in ipairs(a) do
          list[i] = self:_operand(op, e, item, data_dt, par_dt, args)
          dl[i] = descriptor(list[i])
        end
        inputs[e.name] = list
        desc[e.name] = { tuple = dl }
      else
        local v = self:_operand(op, e, a, data_dt, par_dt, args)
        inputs[e.name] = v
        desc[e.name] = descriptor(v)
      end
    end
  end
  local res, err = core.mil_infer(self.opset, op, desc)
  if not res then usererror(err) end
  local results = {}
  local base = opts.name
  for i, r in ipairs(res) do
    local vname
    if base and #res == 1 then vname = self:_claim(base)
    elseif base then vname = self:_claim(base .. "_" .. (i - 1))
    else vname = self:_fresh(op) end
    results[i] = setmetatable({ f = self, name = vname, dtype = r.dtype, shape = r.shape }, Value)
  end
  local label = opts.label or results[1].name
  if opts.label and self.labels[label] then usererror(op .. ": label '" .. label .. "' is already used") end
  self.stmts[#self.stmts + 1] = { kind = "op", op = op, inputs = inputs, res = results,
    label = self:_label(label) }
  return table.unpack(results)
end

-- one method per op: f:relu(x), f:add(a, b), f:conv{x = x, weight = w}, ...
for op, sig in pairs(SIGS) do
  if op ~= "const" then
    Func[op] = function(self, ...)
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

--- f:linear_conv(x, W, {bias = b, name = ...}): y = W·x as a 1×1 conv on [1, C_in, 1, S].
-- W: an ane.Tensor [out, in] (or [out, in, 1, 1]), or a Value of rank 2 or 4.
function Func:linear_conv(x, W, opts)
  opts = opts or {}
  local w = W
  if is_tensor(W) then
    local s = W:shape()
    -- one reshaped view per tensor, so the same weight stays one blob
    if #s == 2 then
      w = self.views[W] or W:reshape({ s[1], s[2], 1, 1 })
      self.views[W] = w
    end
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
    if #s == 1 and #x.shape == 4 then
      local v = self.views[w] or w:reshape({ 1, s[1], 1, 1 })
      self.views[w] = v
      w = v
    end
  end
  return self:mul(xr, w, { name = opts.name })
end

--- f:causal_mask(S, dtype = "fp16") -> const [1, 1, S, S]: 0 where key u <= query t, -65504 else.
function Func:causal_mask(S, dtype)
  dtype = dtype or "fp16"
  local rows = {}
  for t = 1, S do
    local row = {}
    for u = 1, S do row[u] = u <= t and 0 or -65504 end
    rows[t] = row
  end
  if S > 16 then -- large masks go to a blob
    local flat = {}
    for t = 1, S do for u = 1, S do flat[#flat + 1] = rows[t][u] end end
    local tt = core.from_table(flat, dtype, { 1, 1, S, S })
    return self:_tensor_const(tt, dtype, "mask")
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
-- text and weights
-- ===================================================================

local function stmt_text(st, d10)
  local parts = {}
  for i, r in ipairs(st.res) do parts[i] = type_str(r.dtype, r.shape, d10) .. " " .. r.name end
  local lhs = table.concat(parts, ", ")
  local name_attr = "name = " .. str_lit(st.label, d10)
  if st.kind == "const" then
    local v = st.res[1]
    local val
    if v.blob then
      val = type_str(v.dtype, v.shape) .. "(BLOBFILE(path = " .. str_lit(v.blob, d10) .. ", offset = "
          .. literal_text("uint64", {}, { 64 }, d10) .. "))"
    else
      val = literal_text(v.dtype, v.shape, v.lit, d10)
    end
    return lhs .. " = const()[" .. name_attr .. ", val = " .. val .. "];"
  end
  local names = {}
  for k in pairs(st.inputs) do names[#names + 1] = k end
  table.sort(names)
  local args = {}
  for i, k in ipairs(names) do
    local a = st.inputs[k]
    if is_value(a) then
      args[i] = k .. " = " .. a.name
    else
      local t = {}
      for j, x in ipairs(a) do t[j] = x.name end
      args[i] = k .. " = (" .. table.concat(t, ", ") .. ")"
    end
  end
  return lhs .. " = " .. st.op .. "(" .. table.concat(args, ", ") .. ")[" .. name_attr .. "];"
end

--- p:text() -> canonical MIL text (raises if a function has no outputs).
function Program:text()
  local d10 = self.version == "1.0"
  local out = { "program(" .. self.version .. ")" }
  if self.build_info then
    if d10 then
      out[#out + 1] = '[buildInfo = dict<tensor<string, []>, tensor<string, []>>({{"coremlc-version", "3505.4.1"}})]'
    else
      out[#out + 1] = '[buildInfo = dict<string, string>({{"coremlc-component-MIL", "3510.2.1"}, {"coremlc-version", "3505.4.1"}})]'
    end
  end
  out[#out + 1] = "{"
  if #self.funcs == 0 then usererror("text: the program has no function") end
  for _, f in ipairs(self.funcs) do
    if not f.outputs then usererror("text: function '" .. f.name .. "' has no outputs (call f:output(...))") end
    local ps = {}
    for i, v in ipairs(f.params) do ps[i] = type_str(v.dtype, v.shape, d10) .. " " .. v.name end
    out[#out + 1] = "    func " .. f.name .. "<" .. f.opset .. ">(" .. table.concat(ps, ", ") .. ") {"
    for _, st in ipairs(f.stmts) do out[#out + 1] = "        " .. stmt_text(st, d10) end
    local os_ = {}
    for i, v in ipairs(f.outputs) do os_[i] = v.name end
    out[#out + 1] = "    } -> (" .. table.concat(os_, ", ") .. ");"
  end
  out[#out + 1] = "}"
  return table.concat(out, "\n") .. "\n"
end

--- p:weights() -> { [path] = bytes } : the blob files the text references.
function Program:weights()
  local t = {}
  for path, bytes in pairs(self.blobs) do t[path] = bytes end
  return t
end

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
  for path, bytes in pairs(self.blobs) do
    write(dir .. "/" .. path:gsub("^@model_path/", ""), bytes)
  end
  return true
end

--- p:program() -> the checked C program (ane.Program) with its weight blobs, for ane.compile.
-- Needs the parser binding (ane.mil_parse).
function Program:program()
  if not core.mil_parse then usererror("program: ane.mil_parse is not available in this build") end
  local prog = core.mil_parse(self:text(), "<builder>")
  for _, path in ipairs(self.blob_order) do
    if prog.add_blob then prog:add_blob(path, self.blobs[path]) end
  end
  if prog.check then prog:check() end
  return prog
end

--- mil.parse(text, source_name) -> ane.Program (the front end's parsed program).
function M.parse(text, name)
  if not core.mil_parse then usererror("mil.parse: ane.mil_parse is not available in this build") end
  return core.mil_parse(text, name)
end

--- mil.infer(opset, op, inputs): the raw checker rule (see runtime/lua/l_milcheck.c).
M.infer = core.mil_infer

return M
