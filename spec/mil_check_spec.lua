-- The MIL checker through the parser: MIL text -> ane.mil_parse -> :check(). Every op family's
-- shape rule with a good case (the declared type must equal the inferred one) and bad cases
-- with the exact message and its file:line:col.
local ane = require "ane"

-- A program around body lines; returns the text.
local function program(opset, params, body, outs)
  local lines = { "program(1.3)", "{", "    func main<" .. opset .. ">(" .. params .. ") {" }
  for _, l in ipairs(body) do lines[#lines + 1] = "        " .. l end
  lines[#lines + 1] = "    } -> (" .. outs .. ");"
  lines[#lines + 1] = "}"
  return table.concat(lines, "\n") .. "\n"
end

-- line:col of the first occurrence of needle in text
local function pos(text, needle)
  local at = assert(text:find(needle, 1, true), "needle not found: " .. needle)
  local line, col = 1, 1
  for i = 1, at - 1 do
    if text:sub(i, i) == "\n" then line, col = line + 1, 1 else col = col + 1 end
  end
  return line, col
end

local function check_text(text, opts)
  local p = ane.mil_parse(text, "t.mil")
  local ok, err = pcall(p.check, p, opts)
  return ok, ok and nil or tostring(err)
end

local function good(opset, params, body, outs)
  local text = program(opset, params, body, outs)
  local ok, err = check_text(text)
  assert(ok, (err or "") .. "\n" .. text)
end

-- expect message msg positioned at needle (first line of the error; the caret lines follow)
local function bad(opset, params, body, outs, msg, needle)
  local text = program(opset, params, body, outs)
  local ok, err = check_text(text)
  assert(not ok, "accepted:\n" .. text)
  local first = err:match("^[^\n]*")
  local l, c = pos(text, needle)
  assert.are.equal(string.format("t.mil:%d:%d: %s", l, c, msg), first)
  assert.truthy(err:find("\n", 1, true), "no caret line")
end

local X4 = "tensor<fp16, [1, 64, 1, 32]> x"
local W = 'BLOBFILE(path = string("@model_path/weights/w.bin"), offset = uint64(64))'
local function blob(ty) return ty .. " w = const()[name = string(\"w\"), val = " .. ty .. "(" .. W .. ")];" end

describe("mil check", function()
  if not ane.mil_parse then
    it("needs the parser binding", function() pending("ane.mil_parse not built") end)
    return
  end

  it("elementwise: broadcasting, shared dtype, bool results", function()
    good("ios18", X4 .. ", tensor<fp16, [1, 1, 1, 32]> s", {
      'tensor<fp16, [1, 64, 1, 32]> y = add(x = x, y = s)[name = string("y")];',
      'tensor<bool, [1, 64, 1, 32]> b = less(x = x, y = s)[name = string("b")];',
      'tensor<fp16, [1, 64, 1, 32]> z = mul(x = y, y = fp16(0x1p-1))[name = string("z")];',
    }, "z, b")
    bad("ios18", X4, {
      'tensor<fp16, [1, 64, 1, 32]> y = mul(x = x, y = fp32(0x1p-1))[name = string("y")];',
    }, "y", "mul: input 'y' is fp32 but 'x' is fp16 (they must have the same dtype)", "y = fp32")
    bad("ios18", X4 .. ", tensor<fp16, [3, 16]> s", {
      'tensor<fp16, [1, 64, 1, 32]> y = sub(x = x, y = s)[name = string("y")];',
    }, "y", "sub: shapes [1, 64, 1, 32] ('x') and [3, 16] ('y') do not broadcast", "y = s)")
    bad("ios18", X4, {
      'tensor<fp16, [1, 64, 1, 32]> y = add(x = x)[name = string("y")];',
    }, "y", "add: missing required input 'y'", "tensor<fp16, [1, 64, 1, 32]> y = add")
    bad("ios18", X4, {
      'tensor<fp16, [1, 64, 1, 32]> y = relu(x = x, alpha = fp16(0x1p-1))[name = string("y")];',
    }, "y", "relu: unknown input 'alpha'", "alpha =")
    bad("ios18", X4, {
      'tensor<fp16, [1, 64, 1, 32]> y = add(x = x, y = (x, x))[name = string("y")];',
    }, "y", "add: input 'y' does not take a tuple", "y = (x")
  end)

  it("declared result types must equal the inferred ones", function()
    bad("ios18", X4, {
      'tensor<fp16, [1, 64, 1, 16]> y = relu(x = x)[name = string("y")];',
    }, "y", "relu: 'y' is declared tensor<fp16, [1, 64, 1, 16]> but the op gives tensor<fp16, [1, 64, 1, 32]>",
      "y = relu")
    bad("ios18", X4, {
      'tensor<fp32, [1, 64, 1, 32]> y = relu(x = x)[name = string("y")];',
    }, "y", "relu: 'y' is declared tensor<fp32, [1, 64, 1, 32]> but the op gives tensor<fp16, [1, 64, 1, 32]>",
      "y = relu")
  end)

  it("activations and their parameters", function()
    good("ios18", X4, {
      'tensor<fp16, [1, 64, 1, 32]> g = gelu(mode = string("TANH_APPROXIMATION"), x = x)[name = string("g")];',
      'tensor<fp16, [1, 64, 1, 32]> r = rsqrt(epsilon = fp32(0x1p-10), x = g)[name = string("r")];',
      'tensor<fp16, [1, 64, 1, 32]> c = clip(alpha = fp16(0x0p+0), beta = fp16(0x1.8p+2), x = r)[name = string("c")];',
    }, "c")
    bad("ios18", X4, {
      'tensor<fp16, [1, 64, 1, 32]> g = gelu(mode = string("FAST"), x = x)[name = string("g")];',
    }, "g", 'gelu: mode "FAST" is not EXACT, TANH_APPROXIMATION or SIGMOID_APPROXIMATION', "mode =")
    bad("ios16", X4, {
      'tensor<fp16, [1, 64, 1, 32]> r = rsqrt(epsilon = fp32(0x1p-10), x = x)[name = string("r")];',
    }, "r", "rsqrt: input 'epsilon' is fp32 but 'x' is fp16 (they must have the same dtype)", "epsilon =")
    bad("ios18", X4, {
      'tensor<fp16, [1, 64, 1, 32]> c = clip(alpha = fp16(0x1p+0), beta = fp16(0x0p+0), x = x)[name = string("c")];',
    }, "c", "clip: alpha (1) must be less than beta (0)", "beta =")
  end)

  it("conv: weight rank, groups, pads, output size", function()
    good("ios18", X4, {
      blob("tensor<fp16, [128, 64, 1, 1]>"),
      'tensor<fp16, [1, 128, 1, 16]> y = conv(dilations = tensor<int32, [2]>([1, 1]), groups = int32(1), pad = tensor<int32, [4]>([0, 0, 0, 0]), pad_type = string("valid"), strides = tensor<int32, [2]>([1, 2]), weight = w, x = x)[name = string("c")];',
    }, "y")
    bad("ios18", X4, {
      blob("tensor<fp16, [8, 64, 1]>"),
      'tensor<fp16, [1, 8, 1, 32]> y = conv(weight = w, x = x)[name = string("c")];',
    }, "y", "conv: weight has 3 dims, expected 4", "weight = w")
    bad("ios18", X4, {
      blob("tensor<fp16, [8, 32, 1, 1]>"),
      'tensor<fp16, [1, 8, 1, 32]> y = conv(groups = int32(3), weight = w, x = x)[name = string("c")];',
    }, "y", "conv: x has 64 channels, not divisible by groups = 3", "groups =")
    bad("ios18", X4, {
      blob("tensor<fp16, [8, 64, 3, 3]>"),
      'tensor<fp16, [1, 8, 1, 32]> y = conv(pad_type = string("full"), weight = w, x = x)[name = string("c")];',
    }, "y", 'conv: pad_type "full" is not valid, custom, same or same_lower', "pad_type =")
    good("ios18", X4, {
      blob("tensor<fp16, [8, 64, 3, 3]>"),
      'tensor<fp16, [1, 8, 1, 32]> y = conv(pad_type = string("same"), weight = w, x = x)[name = string("c")];',
    }, "y")
  end)

  it("matmul: transposes, inner dims, batch broadcast", function()
    local P = "tensor<fp16, [1, 2, 16, 32]> q, tensor<fp16, [1, 2, 16, 32]> k"
    good("ios18", P, {
      'tensor<fp16, [1, 2, 16, 16]> s = matmul(transpose_x = bool(false), transpose_y = bool(true), x = q, y = k)[name = string("s")];',
    }, "s")
    bad("ios18", P, {
      'tensor<fp16, [1, 2, 16, 16]> s = matmul(transpose_x = bool(false), transpose_y = bool(false), x = q, y = k)[name = string("s")];',
    }, "s", "matmul: inner dimensions differ: x [1, 2, 16, 32] gives K = 32, y [1, 2, 16, 32] gives K = 16", "y = k")
  end)

  it("shape ops: reshape, transpose, slice_by_size, concat, split", function()
    good("ios18", X4, {
      'tensor<int32, [4]> heads = const()[name = string("heads"), val = tensor<int32, [4]>([1, 2, 32, 32])];',
      'tensor<fp16, [1, 2, 32, 32]> r = reshape(shape = heads, x = x)[name = string("r")];',
      'tensor<fp16, [1, 2, 32, 32]> t = transpose(perm = tensor<int32, [4]>([0, 1, 3, 2]), x = r)[name = string("t")];',
      'tensor<fp16, [1, 32, 1, 32]> a = slice_by_size(begin = tensor<int32, [4]>([0, 32, 0, 0]), size = tensor<int32, [4]>([1, 32, 1, -1]), x = x)[name = string("a")];',
      'tensor<fp16, [1, 96, 1, 32]> c = concat(axis = int32(1), interleave = bool(false), values = (x, a))[name = string("c")];',
      'tensor<fp16, [1, 48, 1, 32]> s0, tensor<fp16, [1, 48, 1, 32]> s1 = split(axis = int32(1), num_splits = int32(2), x = c)[name = string("sp")];',
    }, "t, s1")
    bad("ios18", X4, {
      'tensor<fp16, [3, 32]> r = reshape(shape = tensor<int32, [2]>([3, -1]), x = x)[name = string("r")];',
    }, "r", "reshape: cannot reshape [1, 64, 1, 32] (2048 elements) into [3, -1]", "shape =")
    bad("ios18", X4, {
      'tensor<fp16, [1, 64, 32, 1]> t = transpose(perm = tensor<int32, [4]>([0, 1, 1, 2]), x = x)[name = string("t")];',
    }, "t", "transpose: perm is not a permutation (1 repeats)", "perm =")
    bad("ios18", X4, {
      'tensor<fp16, [1, 32, 1, 32]> a = slice_by_size(begin = tensor<int32, [4]>([0, 40, 0, 0]), size = tensor<int32, [4]>([1, 32, 1, 32]), x = x)[name = string("a")];',
    }, "a", "slice_by_size: slice [40, 72) on axis 1 exceeds dim 64", "size =")
    bad("ios18", X4, {
      'tensor<fp16, [1, 128, 1, 32]> c = concat(axis = tensor<int32, [1]>([1]), values = (x, x))[name = string("c")];',
    }, "c", "concat: input 'axis' must be a scalar, got tensor<int32, [1]>", "axis =")
    bad("ios18", X4, {
      'tensor<fp16, [1, 32, 1, 32]> s0, tensor<fp16, [1, 32, 1, 32]> s1 = split(axis = int32(1), num_splits = int32(3), x = x)[name = string("sp")];',
    }, "s1", "split: axis 1 has 64, not divisible into 3 splits", "num_splits =")
    bad("ios18", X4, {
      'tensor<fp16, [1, 32, 1, 32]> s0, tensor<fp16, [1, 32, 1, 32]> s1 = split(axis = int32(1), num_splits = int32(4), x = x)[name = string("sp")];',
    }, "s1", "split: declares 2 results, the op produces 4", "tensor<fp16, [1, 32, 1, 32]> s0")
  end)

  it("softmax, reductions, cast, layer_norm", function()
    good("ios18", X4, {
      'tensor<fp16, [1, 64, 1, 32]> p = softmax(axis = int32(-1), x = x)[name = string("p")];',
      'tensor<fp16, [1, 1, 1, 32]> s = reduce_sum(axes = tensor<int32, [1]>([1]), keep_dims = bool(true), x = p)[name = string("s")];',
      'tensor<fp16, []> m = reduce_max(x = p)[name = string("m")];',
      'tensor<fp32, [1, 1, 1, 32]> c = cast(dtype = string("fp32"), x = s)[name = string("c")];',
    }, "c, m")
    bad("ios18", X4, {
      'tensor<fp16, [1, 64, 1, 32]> p = softmax(axis = int32(4), x = x)[name = string("p")];',
    }, "p", "softmax: axis 4 is out of range for rank 4", "axis =")
    bad("ios18", X4, {
      'tensor<fp16, [1, 1, 1, 32]> s = reduce_sum(axes = tensor<int32, [2]>([1, -3]), x = x)[name = string("s")];',
    }, "s", "reduce_sum: axis 1 is listed twice", "axes =")
    bad("ios16", X4, {
      'tensor<int8, [1, 64, 1, 32]> c = cast(dtype = string("int8"), x = x)[name = string("c")];',
    }, "c", 'cast: cannot cast to "int8" (ios15/16: fp16, fp32, int32 or bool)', "dtype =")
    bad("ios18", X4, {
      'tensor<fp16, [64]> g = const()[name = string("g"), val = tensor<fp16, [64]>(' .. W .. ')];',
      'tensor<fp16, [1, 64, 1, 32]> n = layer_norm(axes = tensor<int32, [1]>([1]), epsilon = fp32(0x1p-10), gamma = g, x = x)[name = string("n")];',
    }, "n", "layer_norm: input 'epsilon' is fp32 but 'gamma' is fp16 (they must have the same dtype)", "epsilon =")
  end)

  it("attention and quantisation, op availability by opset", function()
    good("ios18", "tensor<fp16, [1, 2, 16, 32]> q, tensor<fp16, [1, 2, 8, 32]> k, tensor<fp16, [1, 2, 8, 24]> v", {
      'tensor<fp16, [1, 2, 16, 24]> o = scaled_dot_product_attention(key = k, query = q, value = v)[name = string("o")];',
    }, "o")
    bad("ios17", "tensor<fp16, [1, 2, 16, 32]> q", {
      'tensor<fp16, [1, 2, 16, 32]> o = scaled_dot_product_attention(key = q, query = q, value = q)[name = string("o")];',
    }, "o", "scaled_dot_product_attention: op needs ios18 or later (function is ios17)", "tensor<fp16, [1, 2, 16, 32]> o")
    good("ios18", X4, {
      'tensor<int8, [1, 64, 1, 32]> q = quantize(input = x, output_dtype = string("int8"), scale = fp16(0x1p-3))[name = string("q")];',
      'tensor<fp16, [1, 64, 1, 32]> d = dequantize(input = q, scale = fp16(0x1p-3))[name = string("d")];',
    }, "d")
    bad("ios18", X4, {
      'tensor<int8, [1, 64, 1, 32]> q = quantize(axis = int32(1), input = x, output_dtype = string("int8"), scale = fp16(0x1p-3))[name = string("q")];',
    }, "q", "quantize: axis must be absent for a scalar scale", "axis =")
  end)

  it("structural rules: unknown ops, duplicate names, labels, strict mode", function()
    bad("ios18", X4, {
      'tensor<fp16, [1, 64, 1, 32]> y = frobnicate(x = x)[name = string("y")];',
    }, "y", "unknown op 'frobnicate'", "tensor<fp16, [1, 64, 1, 32]> y")
    local dup = program("ios18", X4, {
      'tensor<fp16, [1, 64, 1, 32]> y = relu(x = x)[name = string("y")];',
      'tensor<fp16, [1, 64, 1, 32]> x = relu(x = y)[name = string("z")];',
    }, "x")
    local ok, err = pcall(ane.mil_parse, dup, "t.mil")
    if ok then ok, err = check_text(dup) end
    assert.is_false(ok)
    assert.truthy(tostring(err):find("'x'", 1, true), err)
    -- a duplicate label is only a warning
    good("ios18", X4, {
      'tensor<fp16, [1, 64, 1, 32]> y = relu(x = x)[name = string("same")];',
      'tensor<fp16, [1, 64, 1, 32]> z = relu(x = y)[name = string("same")];',
    }, "z")
    -- strict mode wants both matmul flags
    local text = program("ios18", "tensor<fp16, [4, 8]> a, tensor<fp16, [8, 4]> b", {
      'tensor<fp16, [4, 4]> m = matmul(x = a, y = b)[name = string("m")];',
    }, "m")
    assert.is_true((check_text(text)))
    local sok, serr = check_text(text, { strict = true })
    assert.is_false(sok)
    local l, c = pos(text, "tensor<fp16, [4, 4]> m")
    assert.are.equal(string.format("t.mil:%d:%d: matmul: input 'transpose_x' must be given explicitly (strict mode)", l, c),
      serr:match("^[^\n]*"))
  end)
end)

describe("ane.mil_signature (the op signature table the checker binds with)", function()
  local function input(sig, name)
    for _, e in ipairs(sig.inputs) do if e.name == name then return e end end
  end

  it("lists inputs in reference order with their rules", function()
    local s = ane.mil_signature("conv", "ios18")
    assert.are.equal("conv", s.op)
    assert.are.equal(15, s.since)
    local names = {}
    for i, e in ipairs(s.inputs) do names[i] = e.name end
    assert.are.same({ "x", "weight", "bias", "strides", "pad_type", "pad", "dilations", "groups" }, names)
    local w = input(s, "weight")
    assert.is_true(w.required and w.param)
    assert.is_false(w.const)
    assert.are.equal("U", w.domain)
    assert.are.same({ "fp16", "fp32" }, w.dtypes)
    assert.are.equal("T", input(ane.mil_signature("conv", 16), "weight").domain)
    assert.is_true(input(ane.mil_signature("conv_transpose", "ios16"), "weight").const)
    assert.is_true(ane.mil_signature("concat").inputs[1].tuple)
    assert.are.equal(0, input(s, "groups").rank)
    assert.are.equal(1, input(s, "strides").rank)
    assert.are.equal(1, input(ane.mil_signature("quantize", 17), "scale").max_rank)
    local g = ane.mil_signature("gather", 15)
    assert.are.equal(16, input(g, "batch_dims").since)
    assert.are.equal(17, input(g, "validate_indices").since)
    assert.are.same({ "int32" }, input(g, "indices").dtypes)
    assert.are.same({ "int8", "int16", "int32", "uint8", "uint16" }, input(ane.mil_signature("gather", 17), "indices").dtypes)
  end)

  it("gives defaults: fixed ones always, computed ones for a given x", function()
    local s = ane.mil_signature("conv")
    local groups, pt, bias, strides = input(s, "groups"), input(s, "pad_type"), input(s, "bias"), input(s, "strides")
    assert.are.same({ 1, "int32" }, { groups.default, groups.default_dtype })
    assert.are.same({ "valid", "string" }, { pt.default, pt.default_dtype })
    assert.is_nil(bias.default)
    assert.is_nil(bias.computed)
    assert.is_nil(strides.default)
    assert.are.equal("spatial_ones", strides.computed)
    local sx = ane.mil_signature("conv", 18, { dtype = "fp16", shape = { 1, 8, 1, 4 } })
    assert.are.same({ 1, 1 }, input(sx, "strides").default)
    assert.are.same({ 0, 0, 0, 0 }, input(sx, "pad").default)
    assert.are.equal("int32", input(sx, "pad").default_dtype)
    local sq = ane.mil_signature("squeeze", 18, { shape = { 1, 8, 1, 4 } })
    assert.are.same({ 0, 2 }, input(sq, "axes").default)
    local si = ane.mil_signature("slice_by_index", 18, { shape = { 2, 3 } })
    assert.are.same({ false, false }, input(si, "squeeze_mask").default)
    -- float parameters: the exact value, no fixed dtype (they take x's); fill's value is fp32
    local eps = ane.mil_signature("rsqrt").inputs[2]
    assert.are.equal(1e-12, eps.default)
    assert.is_nil(eps.default_dtype)
    local value = input(ane.mil_signature("fill"), "value")
    assert.are.same({ 0, "fp32" }, { value.default, value.default_dtype })
    assert.are.equal("EXACT", input(ane.mil_signature("gelu"), "mode").default)
    assert.are.equal("add", input(ane.mil_signature("scatter"), "mode").default)
    assert.is_false(input(ane.mil_signature("matmul"), "transpose_y").default)
  end)

  it("covers every op and rejects bad arguments", function()
    local ops = ane.mil_ops()
    assert.are.equal("const", ops[1])
    for _, op in ipairs(ops) do assert.are.equal(op, ane.mil_signature(op).op) end
    assert.are.same({}, ane.mil_signature("const").inputs)
    assert.has_error(function() ane.mil_signature("frob") end, "bad argument #1 to 'mil_signature' (unknown op 'frob')")
    assert.has_error(function() ane.mil_signature("relu", "ios12") end,
      "bad argument #2 to 'mil_signature' (opset must be ios15 ... ios18 (or 15 ... 18))")
    assert.has_error(function() ane.mil_signature("conv", 18, { shape = 3 }) end,
      "bad argument #3 to 'mil_signature' (x needs a shape)")
    assert.has_error(function() ane.mil_signature("conv", 18, { dtype = "fp17", shape = {} }) end,
      "bad argument #3 to 'mil_signature' (x.dtype is not a dtype name)")
  end)
end)
