-- Helpers for the CPU backend specs: MIL text for one op, running it, and an independent
-- reference in plain Lua doubles (fp16 rounding written out here, not taken from the runtime).
local ane = require "ane"

local R = {}

--- IEEE binary16 round-to-nearest-even of a double, written independently of the C core.
function R.f16(x)
  if x ~= x or x == math.huge or x == -math.huge or x == 0 then return x end
  local s = x < 0 and -1 or 1
  local a = math.abs(x)
  if a >= 65520 then return s * math.huge end
  local e = math.floor(math.log(a, 2))
  if 2.0 ^ e > a then e = e - 1 end
  if 2.0 ^ (e + 1) <= a then e = e + 1 end
  if e < -14 then e = -14 end -- subnormals share the smallest exponent
  local q = 2.0 ^ (e - 10)
  local r = a / q
  local fl = math.floor(r)
  local d = r - fl
  if d > 0.5 or (d == 0.5 and fl % 2 == 1) then fl = fl + 1 end
  return s * fl * q
end

--- One unit in the last place of fp16 at v (the spacing of fp16 numbers around |v|).
function R.ulp16(v)
  local a = math.abs(v)
  if a ~= a or a == math.huge then return 0 end
  if a < 2 ^ -14 then return 2 ^ -24 end
  local e = math.floor(math.log(a, 2))
  if 2.0 ^ e > a then e = e - 1 end
  if 2.0 ^ (e + 1) <= a then e = e + 1 end
  return 2.0 ^ (e - 10)
end

function R.numel(shape)
  local n = 1
  for _, d in ipairs(shape) do n = n * d end
  return n
end

function R.strides(shape)
  local st, s = {}, 1
  for i = #shape, 1, -1 do st[i] = s; s = s * shape[i] end
  return st
end

--- Flat index (1-based) of a 0-based multi-index.
function R.at(shape, idx)
  local st, k = R.strides(shape), 1
  for i = 1, #shape do k = k + idx[i] * st[i] end
  return k
end

--- 0-based multi-index of a 1-based flat position.
function R.index(shape, k)
  local idx, t = {}, k - 1
  for i = #shape, 1, -1 do idx[i] = t % shape[i]; t = t // shape[i] end
  return idx
end

--- MIL type text.
function R.ty(dtype, shape)
  if #shape == 0 then return dtype end
  local d = {}
  for i, v in ipairs(shape) do d[i] = tostring(v) end
  return ("tensor<%s, [%s]>"):format(dtype, table.concat(d, ", "))
end

local function numtext(v, dtype)
  if dtype == "bool" then return (v ~= 0 and v ~= false) and "true" or "false" end
  if dtype == "int32" or dtype == "int8" or dtype == "uint8" then return ("%d"):format(v) end
  if v == math.huge then return "inf" end
  if v == -math.huge then return "-inf" end
  return ("%.17g"):format(v)
end

--- Inline literal text: R.lit("int32", {2}, {1, 3}) -> tensor<int32, [2]>([1, 3]).
function R.lit(dtype, shape, vals)
  if type(vals) ~= "table" then vals = { vals } end
  if #shape == 0 then
    if dtype == "string" then return ('string("%s")'):format(vals[1]) end
    return ("%s(%s)"):format(dtype, numtext(vals[1], dtype))
  end
  local t = {}
  for i, v in ipairs(vals) do t[i] = numtext(v, dtype) end
  return ("%s([%s])"):format(R.ty(dtype, shape), table.concat(t, ", "))
end
function R.ints(v) return R.lit("int32", { #v }, v) end
function R.int(v) return R.lit("int32", {}, v) end
function R.bool(v) return R.lit("bool", {}, v and 1 or 0) end
function R.str(v) return R.lit("string", {}, v) end
function R.fp16(v) return R.lit("fp16", {}, v) end

--- A whole program: params = {{name, dtype, shape}}, body = lines, outs = names.
function R.program(params, body, outs, opset)
  local ps = {}
  for i, p in ipairs(params) do ps[i] = R.ty(p[2], p[3]) .. " " .. p[1] end
  return ("program(1.3)\n{\n    func main<%s>(%s) {\n        %s\n    } -> (%s);\n}\n"):format(
    opset or "ios18", table.concat(ps, ", "), table.concat(body, "\n        "), table.concat(outs, ", "))
end

--- Deterministic pseudo-random values (LCG), rounded to fp16 unless dtype says otherwise.
function R.values(n, lo, hi, seed, dtype)
  local s = seed or 1
  local t = {}
  for i = 1, n do
    s = (s * 1103515245 + 12345) % 2147483648
    local u = s / 2147483648
    local v = lo + (hi - lo) * u
    if dtype == "int32" then v = math.floor(v) elseif dtype == "bool" then v = (u < 0.5) and 0 or 1
    elseif dtype ~= "fp32" then v = R.f16(v) end
    t[i] = v
  end
  return t
end

function R.tensor(dtype, shape, vals)
  local v = vals
  if dtype == "int32" or dtype == "int8" or dtype == "uint8" then
    v = {}
    for i, x in ipairs(vals) do v[i] = math.tointeger(x) or x end
  end
  return ane.from_table(v, dtype, shape)
end

--- Flatten a tensor into doubles (bools as 0/1).
function R.flat(t)
  local out = {}
  local function walk(x)
    if type(x) == "table" then for _, y in ipairs(x) do walk(y) end
    elseif type(x) == "boolean" then out[#out + 1] = x and 1 or 0
    else out[#out + 1] = x end
  end
  walk(t:to_table())
  return out
end

--- Compile + load + eval; inputs = {{dtype, shape, values}}; returns flat outputs (one table per output).
function R.run(src, inputs, opts)
  local k = ane.compile(src, opts)
  k:load()
  local ts = {}
  for i, inp in ipairs(inputs) do ts[i] = R.tensor(inp[1], inp[2], inp[3]) end
  local outs = table.pack(k:eval(ts))
  local res = {}
  for i = 1, outs.n do res[i] = R.flat(outs[i]) end
  k:close()
  return table.unpack(res)
end

--- Compare got with the fp16-rounded reference: |got - f16(ref)| <= ulps * ulp16(ref) + abs.
-- Returns true or false, message naming the first mismatch.
function R.close(got, ref, ulps, abs, round)
  ulps, abs = ulps or 1, abs or 0
  if #got ~= #ref then return false, ("length %d, expected %d"):format(#got, #ref) end
  for i = 1, #ref do
    local r = round == false and ref[i] or R.f16(ref[i])
    local g = got[i]
    local ok
    if r ~= r then ok = g ~= g
    elseif r == math.huge or r == -math.huge then ok = g == r
    else ok = math.abs(g - r) <= ulps * R.ulp16(r) + abs end
    if not ok then
      return false, ("element %d: got %.9g, expected %.9g (ref %.9g)"):format(i, g, r, ref[i])
    end
  end
  return true
end

--- Broadcast a binary function over two flat tensors (NumPy rules).
function R.broadcast(fa, sa, fb, sb, f)
  local r = math.max(#sa, #sb)
  local pa, pb, so = {}, {}, {}
  for i = 1, r do
    pa[i] = sa[i - (r - #sa)] or 1
    pb[i] = sb[i - (r - #sb)] or 1
    so[i] = math.max(pa[i], pb[i])
  end
  local out = {}
  for k = 1, R.numel(so) do
    local idx = R.index(so, k)
    local ia, ib = {}, {}
    for i = 1, r do
      ia[i] = pa[i] == 1 and 0 or idx[i]
      ib[i] = pb[i] == 1 and 0 or idx[i]
    end
    out[k] = f(fa[R.at(pa, ia)], fb[R.at(pb, ib)])
  end
  return out, so
end

return R
