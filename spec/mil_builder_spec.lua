-- The Lua MIL builder (lua/ane/mil.lua): every op, constants, defaults, weights as blobs, errors
-- raised at the caller's line, the reference examples 10.1-10.5 rebuilt.
local ane = require "ane"
local H = require "helpers"
local mil = require "ane.mil"

local function here() return debug.getinfo(2, "l").currentline end
local SPEC = "mil_builder_spec.lua"

-- Run fn, expect an error; return its message.
local function err_of(fn)
  local ok, err = pcall(fn)
  assert.is_false(ok, "expected an error")
  return tostring(err)
end

local function ty(v) return v:type() end

-- parse + check the builder's text when the parser binding is present
local function roundtrip(p)
  if not ane.mil_parse then return end
  local prog = ane.mil_parse(p:text(), "built.mil")
  if prog.check then prog:check() end
end

describe("ane.mil builder", function()
  it("writes canonical text for a small program", function()
    local p = mil.program { opset = "ios18", build_info = false }
    local f = p:func("main")
    local x = f:input("x", "fp16", { 1, 64, 1, 32 })
    local y = f:relu(x, { name = "y" })
    f:output(y)
    assert.are.equal([[
program(1.3)
{
    func main<ios18>(tensor<fp16, [1, 64, 1, 32]> x) {
        tensor<fp16, [1, 64, 1, 32]> y = relu(x = x)[name = string("y")];
    } -> (y);
}
]], p:text())
    assert.are.equal("tensor<fp16, [1, 64, 1, 32]>", ty(y))
    roundtrip(p)
  end)

  it("prints the 1.0 dialect with tensor<T, []> scalars", function()
    local p = mil.program { opset = "ios16", build_info = false }
    assert.are.equal("1.0", p.version)
    local f = p:func()
    local x = f:input("x", "fp16", { 1, 4 })
    f:output(f:mul(x, 0.5, { name = "y" }))
    local t = p:text()
    assert.truthy(t:find('tensor<fp16, []> mul_y = const()[name = tensor<string, []>("mul_y"), val = tensor<fp16, []>(0x1p-1)];', 1, true), t)
    assert.truthy(t:find("func main<ios16>(tensor<fp16, [1, 4]> x)", 1, true))
    roundtrip(p)
  end)

  it("gives plain numbers the dtype of the tensor they combine with, and reuses consts", function()
    local p = mil.program {}
    local f = p:func()
    local h = f:input("h", "fp16", { 1, 8 })
    local s = f:input("s", "fp32", { 1, 8 })
    local a = f:mul(h, 0.5)
    local b = f:mul(s, 0.5)
    local c = f:add(a, 0.5)
    assert.are.equal("fp16", a.dtype)
    assert.are.equal("fp32", b.dtype)
    f:output(c, b)
    local t = p:text()
    local n16 = select(2, t:gsub("fp16%(0x1p%-1%)", ""))
    local n32 = select(2, t:gsub("fp32%(0x1p%-1%)", ""))
    assert.are.equal(1, n16) -- reused by value within the function
    assert.are.equal(1, n32)
    -- arithmetic metamethods build ops too
    local d = (h * 2 + 1) / 4
    assert.are.equal("tensor<fp16, [1, 8]>", ty(d))
    local e = -h
    assert.are.equal("fp16", e.dtype)
  end)

  it("fills every optional input with its default", function()
    local p = mil.program {}
    local f = p:func()
    local q = f:input("q", "fp16", { 1, 2, 16, 32 })
    local k = f:input("k", "fp16", { 1, 2, 16, 32 })
    local s = f:matmul(q, k, false, true, { name = "s" })
    local c = f:concat({ s, s }, 3, { name = "c" })
    local w = ane.zeros({ 8, 2, 1, 1 }, "fp32")
    local y = f:conv { x = q, weight = w, name = "y" }
    f:output(c, y)
    local t = p:text()
    assert.truthy(t:find("matmul(transpose_x = c_false, transpose_y = c_true, x = q, y = k)", 1, true), t)
    assert.truthy(t:find("concat(axis = axis, interleave = c_false, values = (s, s))", 1, true), t)
    assert.truthy(t:find("conv(dilations = strides, groups = groups, pad = pad, pad_type = pad_type, strides = strides, weight = weight, x = q)", 1, true), t)
    assert.truthy(t:find('string pad_type = const()[name = string("pad_type"), val = string("valid")];', 1, true))
    assert.are.equal("tensor<fp16, [1, 8, 16, 32]>", ty(y))
    roundtrip(p)
  end)

  it("turns tensor weights into fp16 blob files with exact bytes", function()
    local p = mil.program {}
    local f = p:func()
    local x = f:input("x", "fp16", { 1, 3, 1, 4 })
    local W = ane.from_table({ 1, -2, 0.5, 3, 0.25, -1 }, "fp32", { 2, 3 })
    local y = f:linear_conv(x, W, { name = "y" })
    f:output(y)
    assert.are.equal("tensor<fp16, [1, 2, 1, 4]>", ty(y))
    local blobs = p:weights()
    local path, bytes = next(blobs)
    assert.are.equal("@model_path/weights/weight.bin", path)
    assert.is_nil(next(blobs, path))
    assert.are.equal(192, #bytes) -- 64 header + 64 metadata + 12 data padded to 64
    local count, version = string.unpack("<I4I4", bytes, 1)
    assert.are.equal(1, count)
    assert.are.equal(2, version)
    local sentinel, code, size, off = string.unpack("<I4I4I8I8", bytes, 65)
    assert.are.equal(0xDEADBEEF, sentinel)
    assert.are.equal(1, code)
    assert.are.equal(12, size)
    assert.are.equal(128, off)
    for i, v in ipairs { 1, -2, 0.5, 3, 0.25, -1 } do
      assert.are.equal(ane.fp16_bits(v), (string.unpack("<I2", bytes, 128 + 2 * i - 1)))
    end
    assert.are.equal(string.rep("\0", 52), bytes:sub(141))
    assert.truthy(p:text():find('tensor<fp16, [2, 3, 1, 1]> weight = const()[name = string("weight"), val = tensor<fp16, [2, 3, 1, 1]>(BLOBFILE(path = string("@model_path/weights/weight.bin"), offset = uint64(64)))];', 1, true))
    -- the same tensor used twice is one blob
    f:linear_conv(x, W)
    local n = 0
    for _ in pairs(p:weights()) do n = n + 1 end
    assert.are.equal(1, n)
  end)

  it("raises errors at the caller's line", function()
    local p = mil.program {}
    local f = p:func()
    local x = f:input("x", "fp16", { 1, 64, 1, 32 })
    local line
    local msg = err_of(function()
      line = here(); local v = f:conv { x = x, weight = ane.zeros({ 8, 64, 1 }, "fp16") }
      return v
    end)
    assert.are.equal(SPEC .. ":" .. line .. ": conv: weight has 3 dims, expected 4", msg:match("[^/]*$"))
    msg = err_of(function()
      line = here(); local v = f:add(x, f:input("z", "fp32", { 1 }))
      return v
    end)
    assert.truthy(msg:find(SPEC .. ":" .. line .. ": input: add inputs before the first op", 1, true), msg)
    local y = f:relu(x)
    msg = err_of(function()
      line = here(); local v = f:reshape(y, { 3, -1 })
      return v
    end)
    assert.truthy(msg:find(SPEC .. ":" .. line .. ": reshape: cannot reshape [1, 64, 1, 32] (2048 elements) into [3, -1]", 1, true), msg)
    -- through an idiom helper the position is still the user's line
    msg = err_of(function()
      line = here(); local v = f:attention(y, y, y, { heads = 3 })
      return v
    end)
    assert.truthy(msg:find(SPEC .. ":" .. line .. ": attention: 64 channels do not split into 3 heads", 1, true), msg)
    msg = err_of(function()
      line = here(); local v = f:softmax(y, { axis = 7 })
      return v
    end)
    assert.truthy(msg:find(SPEC .. ":" .. line .. ": softmax: axis 7 is out of range for rank 4", 1, true), msg)
    msg = err_of(function()
      line = here(); local v = f:gelu(y, { mode = "FAST" })
      return v
    end)
    assert.truthy(msg:find(SPEC .. ":" .. line .. ': gelu: mode "FAST" is not EXACT', 1, true), msg)
    msg = err_of(function()
      line = here(); local v = f:relu(y, { bogus = 1 })
      return v
    end)
    assert.truthy(msg:find(SPEC .. ":" .. line .. ": relu: unknown input 'bogus'", 1, true), msg)
    msg = err_of(function()
      line = here(); local v = f:relu(y, { name = "x" })
      return v
    end)
    assert.truthy(msg:find(SPEC .. ":" .. line .. ": name 'x' is already used in function main", 1, true), msg)
    -- a second output call would drop the first outputs
    f:output(y)
    msg = err_of(function()
      line = here(); f:output(f:relu(y))
    end)
    assert.truthy(msg:find(SPEC .. ":" .. line .. ": output: main's outputs are already set (1); give them all in one call", 1, true), msg)
    -- arithmetic metamethods
    local h32 = mil.program {}:func()
    local a = h32:input("a", "fp32", { 4 })
    msg = err_of(function()
      line = here(); local v = a + f:relu(y)
      return v
    end)
    assert.truthy(msg:find(SPEC .. ":" .. line .. ":", 1, true), msg)
  end)

  it("keeps op labels unique and honours explicit names and labels", function()
    local p = mil.program {}
    local f = p:func()
    local x = f:input("x", "fp16", { 4 })
    f:relu(x, { name = "a", label = "act" })
    local b = f:relu(x, { name = "b" })
    f:output(b)
    local t = p:text()
    assert.truthy(t:find('a = relu(x = x)[name = string("act")];', 1, true))
    assert.truthy(t:find('b = relu(x = x)[name = string("b")];', 1, true))
    local msg = err_of(function() local v = f:relu(x, { label = "act" }); return v end)
    assert.truthy(msg:find("relu: label 'act' is already used", 1, true), msg)
  end)

  it("rejects bad program options and values from another function", function()
    assert.truthy(err_of(function() local v = mil.program { opset = "ios12" }; return v end)
      :find("opset must be ios15, ios16, ios17 or ios18", 1, true))
    assert.truthy(err_of(function() local v = mil.program { colour = 1 }; return v end)
      :find("unknown option 'colour'", 1, true))
    local p = mil.program {}
    local f, g = p:func("a"), p:func("b")
    local x = f:input("x", "fp16", { 4 })
    local _ = g:input("y", "fp16", { 4 })
    assert.truthy(err_of(function() local v = g:relu(x); return v end)
      :find("relu: input 'x' is a value of another function", 1, true))
    assert.truthy(err_of(function() local v = p:text(); return v end):find("has no outputs", 1, true))
    assert.truthy(err_of(function() local v = f:op("frob", {}); return v end):find("unknown op 'frob'", 1, true))
    local p16 = mil.program { opset = "ios16" }
    local h = p16:func():input("x", "fp16", { 2, 2 })
    assert.truthy(err_of(function() local v = h.f:quantize(h, 0.5, { output_dtype = "int8" }); return v end)
      :find("quantize: op needs ios17 or later (function is ios16)", 1, true))
  end)

  -- every op of the reference through the builder, with its inferred type
  it("builds every op", function()
    local p = mil.program { opset = "ios18" }
    local f = p:func()
    local x = f:input("x", "fp16", { 1, 8, 1, 4 })
    local m = f:input("m", "fp16", { 2, 4, 6 })
    local sq = f:input("sq", "fp16", { 1, 2, 4, 6 })
    local seen = {}
    local function check(op, v, want)
      seen[op] = true
      assert.are.equal(want, ty(v), op)
    end
    local X = "tensor<fp16, [1, 8, 1, 4]>"
    for _, op in ipairs { "add", "sub", "mul", "real_div", "pow", "maximum", "minimum", "floor_div", "mod" } do
      check(op, f[op](f, x, 2), X)
    end
    for _, op in ipairs { "equal", "not_equal", "greater", "greater_equal", "less", "less_equal" } do
      check(op, f[op](f, x, 0), "tensor<bool, [1, 8, 1, 4]>")
    end
    local b = f:greater(x, 0)
    for _, op in ipairs { "logical_and", "logical_or", "logical_xor" } do
      check(op, f[op](f, b, b), "tensor<bool, [1, 8, 1, 4]>")
    end
    check("logical_not", f:logical_not(b), "tensor<bool, [1, 8, 1, 4]>")
    for _, op in ipairs { "relu", "relu6", "sigmoid", "silu", "tanh", "exp", "exp2", "sqrt", "sin", "cos",
      "tan", "asin", "acos", "atan", "atanh", "sinh", "cosh", "erf", "floor", "ceil", "round", "abs",
      "sign", "square", "softplus", "softsign", "rsqrt", "inverse", "log", "gelu", "leaky_relu", "elu",
      "thresholded_relu", "scaled_tanh", "sigmoid_hard" } do
      check(op, f[op](f, x), X)
    end
    check("clip", f:clip(x, 0, 6), X)
    check("threshold", f:threshold(x, 0.5), X)
    check("clamped_relu", f:clamped_relu(x, 0.1, 6), X)
    check("linear_activation", f:linear_activation(x, 2), X)
    check("prelu", f:prelu(x, ane.full({ 8 }, 0.25, "fp16")), X)
    check("cast", f:cast(x, "fp32"), "tensor<fp32, [1, 8, 1, 4]>")
    check("softmax", f:softmax(x), X)
    check("layer_norm", f:layer_norm(x, { 1 }, ane.full({ 8 }, 1), ane.zeros({ 8 })), X)
    check("batch_norm", f:batch_norm(x, ane.zeros({ 8 }), ane.full({ 8 }, 1)), X)
    check("instance_norm", f:instance_norm(x), X)
    check("l2_norm", f:l2_norm(x), X)
    check("local_response_norm", f:local_response_norm(x, 3), X)
    check("conv", f:conv(x, ane.zeros({ 16, 8, 1, 1 })), "tensor<fp16, [1, 16, 1, 4]>")
    check("conv_transpose", f:conv_transpose { x = x, weight = ane.zeros({ 8, 4, 1, 2 }), strides = { 1, 2 } },
      "tensor<fp16, [1, 4, 1, 8]>")
    check("matmul", f:matmul(m, m, false, true), "tensor<fp16, [2, 4, 4]>")
    check("linear", f:linear(m, ane.zeros({ 3, 6 })), "tensor<fp16, [2, 4, 3]>")
    for _, op in ipairs { "reduce_sum", "reduce_mean", "reduce_max", "reduce_min", "reduce_prod",
      "reduce_sum_square", "reduce_l1_norm", "reduce_l2_norm", "reduce_log_sum", "reduce_log_sum_exp" } do
      check(op, f[op](f, x, { 1 }, true), "tensor<fp16, [1, 1, 1, 4]>")
    end
    check("reduce_argmax", f:reduce_argmax(x, 1), "tensor<int32, [1, 1, 4]>")
    check("reduce_argmin", f:reduce_argmin(x), "tensor<int32, [1, 8, 1]>")
    check("reshape", f:reshape(x, { 2, 16 }), "tensor<fp16, [2, 16]>")
    check("transpose", f:transpose(x, { 0, 1, 3, 2 }), "tensor<fp16, [1, 8, 4, 1]>")
    check("expand_dims", f:expand_dims(m, { 0 }), "tensor<fp16, [1, 2, 4, 6]>")
    check("squeeze", f:squeeze(x), "tensor<fp16, [8, 4]>")
    check("slice_by_size", f:slice_by_size(x, { 0, 2, 0, 0 }, { 1, 4, 1, -1 }), "tensor<fp16, [1, 4, 1, 4]>")
    check("slice_by_index", f:slice_by_index(x, { 0, 0, 0, 0 }, { 1, 8, 1, 4 }, { 1, 2, 1, 1 }),
      "tensor<fp16, [1, 4, 1, 4]>")
    check("slice_update", f:slice_update(x, f:slice_by_size(x, { 0, 0, 0, 0 }, { 1, 2, 1, 4 }),
      { 0, 0, 0, 0 }, { 1, 2, 1, 4 }), X)
    check("concat", f:concat({ x, x, x }, 3), "tensor<fp16, [1, 8, 1, 12]>")
    local s1, s2 = f:split(x, 1, 2)
    check("split", s2, "tensor<fp16, [1, 4, 1, 4]>")
    assert.are.equal("tensor<fp16, [1, 4, 1, 4]>", ty(s1))
    check("tile", f:tile(x, { 1, 1, 2, 1 }), "tensor<fp16, [1, 8, 2, 4]>")
    check("identity", f:identity(x), X)
    check("fill", f:fill({ 2, 3 }, 1.5), "tensor<fp16, [2, 3]>")
    check("band_part", f:band_part(m, -1, 0), "tensor<fp16, [2, 4, 6]>")
    check("select", f:select(b, x, 0), X)
    check("gather", f:gather(m, { 1, 0, 1 }, 2), "tensor<fp16, [2, 4, 3]>")
    check("gather_along_axis", f:gather_along_axis(m, ane.zeros({ 2, 4, 2 }, "int32"), 2), "tensor<fp16, [2, 4, 2]>")
    check("scatter", f:scatter(m, { 0 }, f:slice_by_size(m, { 0, 0, 0 }, { 1, 4, 6 })), "tensor<fp16, [2, 4, 6]>")
    check("scatter_along_axis", f:scatter_along_axis(m, ane.zeros({ 2, 4, 6 }, "int32"), m), "tensor<fp16, [2, 4, 6]>")
    check("scaled_dot_product_attention", f:scaled_dot_product_attention(m, m, m), "tensor<fp16, [2, 4, 6]>")
    local q = f:quantize(x, 0.125, { output_dtype = "int8" })
    check("quantize", q, "tensor<int8, [1, 8, 1, 4]>")
    check("dequantize", f:dequantize(q, 0.125), X)
    check("constexpr_affine_dequantize",
      f:constexpr_affine_dequantize(ane.zeros({ 4, 8 }, "int8"), 0, 0.5, 0), "tensor<fp16, [4, 8]>")
    check("constexpr_blockwise_shift_scale",
      f:constexpr_blockwise_shift_scale(ane.zeros({ 4, 8 }, "int8"), ane.full({ 4, 1 }, 0.5)), "tensor<fp16, [4, 8]>")
    check("constexpr_cast", f:constexpr_cast(ane.zeros({ 4 })), "tensor<fp32, [4]>")
    check("const", f:const({ { 1, 2 }, { 3, 4 } }, "int32"), "tensor<int32, [2, 2]>")
    -- the ops taken from coremltools' definitions (spec/cpu_coreml_ops_spec.lua runs them)
    check("pad", f:pad(x, { 1, 2 }), "tensor<fp16, [1, 8, 1, 7]>")
    check("depth_to_space", f:depth_to_space(x, 2), "tensor<fp16, [1, 2, 2, 8]>")
    check("space_to_depth", f:space_to_depth(sq, 2), "tensor<fp16, [1, 8, 2, 3]>")
    check("pixel_shuffle", f:pixel_shuffle(x, 2), "tensor<fp16, [1, 2, 2, 8]>")
    check("pixel_unshuffle", f:pixel_unshuffle(sq, 2), "tensor<fp16, [1, 8, 2, 3]>")
    check("space_to_batch", f:space_to_batch(sq, { 2, 2 }, ane.zeros({ 2, 2 }, "int32")), "tensor<fp16, [4, 2, 2, 3]>")
    check("batch_to_space", f:batch_to_space(f:space_to_batch(sq, { 2, 2 }, ane.zeros({ 2, 2 }, "int32")), { 2, 2 },
      ane.from_table({ { 1, 0 }, { 0, 1 } }, "int32")), "tensor<fp16, [1, 2, 3, 5]>")
    check("crop", f:crop(sq, { 1, 1 }, { 0, 2 }), "tensor<fp16, [1, 2, 2, 4]>")
    check("reverse", f:reverse(x, { -1 }), X)
    check("flatten2d", f:flatten2d(x), "tensor<fp16, [1, 32]>")
    check("fill_like", f:fill_like(x, 1.5), X) -- a number takes the data dtype, as fill's does
    check("range_1d", f:range_1d(10, 0, 3), "tensor<fp16, [4]>") -- plain numbers: fp16, as for any float op
    check("avg_pool", f:avg_pool { x = sq, kernel_sizes = { 2, 2 }, strides = { 2, 2 }, pad_type = "valid" }, "tensor<fp16, [1, 2, 2, 3]>")
    check("max_pool", f:max_pool { x = sq, kernel_sizes = { 3, 3 }, pad_type = "same" }, "tensor<fp16, [1, 2, 4, 6]>")
    check("l2_pool", f:l2_pool { x = sq, kernel_sizes = { 2, 2 }, pad_type = "valid" }, "tensor<fp16, [1, 2, 3, 5]>")
    check("resize_nearest_neighbor", f:resize_nearest_neighbor(sq, 8, 3), "tensor<fp16, [1, 2, 8, 3]>")
    check("resize_bilinear", f:resize_bilinear(sq, 2, 12), "tensor<fp16, [1, 2, 2, 12]>")
    check("einsum", f:einsum({ sq, f:reshape(sq, { 1, 6, 4, 2 }) }, "nchw,nwhu->nchu"), "tensor<fp16, [1, 2, 4, 2]>")
    check("constexpr_lut_to_dense", f:constexpr_lut_to_dense(ane.from_table({ 0x1b }, "uint8"), ane.from_table({ 1, 2, 3, 4 }, "fp16"),
      { 2, 2 }), "tensor<fp16, [2, 2]>")
    check("constexpr_sparse_to_dense", f:constexpr_sparse_to_dense(ane.from_table({ 5, 6 }, "fp16"), ane.from_table({ 9 }, "uint8"),
      { 4 }), "tensor<fp16, [4]>")
    -- every op of the table has been built
    for op in pairs(mil.signatures) do assert.is_true(seen[op], op) end
    f:output(x)
    roundtrip(p)
  end)

  it("rebuilds reference example 10.1 (1x1 conv with fp32 casts and bias)", function()
    local p = mil.program {}
    local f = p:func()
    local x = f:input("x", "fp32", { 1, 64, 1, 32 })
    local xh = f:cast(x, "fp16", { name = "x_h" })
    local y_h = f:conv { x = xh, weight = ane.zeros({ 128, 64, 1, 1 }), bias = ane.zeros({ 128 }), name = "y_h" }
    local y = f:cast(y_h, "fp32", { name = "y" })
    f:output(y)
    assert.are.equal("tensor<fp32, [1, 128, 1, 32]>", ty(y))
    local t = p:text()
    assert.truthy(t:find("conv(bias = bias, dilations = strides, groups = groups, pad = pad, pad_type = pad_type, strides = strides, weight = weight, x = x_h)", 1, true), t)
    local n = 0
    for _ in pairs(p:weights()) do n = n + 1 end
    assert.are.equal(2, n)
    roundtrip(p)
  end)

  it("rebuilds reference example 10.2 (causal attention) with the attention helper", function()
    local p = mil.program {}
    local f = p:func()
    local qkv = f:input("qkv", "fp16", { 1, 192, 1, 16 })
    local q = f:slice_by_size(qkv, { 0, 0, 0, 0 }, { 1, 64, 1, 16 })
    local k = f:slice_by_size(qkv, { 0, 64, 0, 0 }, { 1, 64, 1, 16 })
    local v = f:slice_by_size(qkv, { 0, 128, 0, 0 }, { 1, 64, 1, 16 })
    local out = f:attention(q, k, v, { heads = 2, causal = true, name = "out" })
    f:output(out)
    assert.are.equal("tensor<fp16, [1, 64, 1, 16]>", ty(out))
    local t = p:text()
    -- scale 1/sqrt(32) rounded to fp16, the mask row/column convention of the reference
    assert.truthy(t:find("fp16(0x1.6ap-3)", 1, true), t)
    assert.truthy(t:find("tensor<fp16, [1, 1, 16, 16]> mask = const()", 1, true))
    assert.truthy(t:find("[[[[0x0p+0, -0x1.ffcp+15,", 1, true))
    roundtrip(p)
  end)

  it("rebuilds reference example 10.3 (dynamic weights)", function()
    local p = mil.program {}
    local f = p:func()
    local x = f:input("x", "fp16", { 1, 64, 1, 128 })
    local y = f:dynamic_weights(x, 32, 96, { name = "y" })
    f:output(y)
    assert.are.equal("tensor<fp16, [1, 96, 1, 32]>", ty(y))
    local t = p:text()
    assert.truthy(t:find("val = tensor<int32, [4]>([0, 0, 0, 32])", 1, true), t)
    assert.truthy(t:find("tensor<fp16, [1, 1, 32, 96]>", 1, true), t)
    assert.truthy(err_of(function() local v = f:dynamic_weights(x, 32, 90); return v end)
      :find("dynamic_weights: x has 128 columns, expected seq + oc = 122", 1, true))
    roundtrip(p)
  end)

  it("rebuilds reference example 10.4 (layer_norm + gelu tanh)", function()
    local p = mil.program {}
    local f = p:func()
    local x = f:input("x", "fp16", { 1, 64, 1, 16 })
    local n = f:layer_norm { x = x, axes = { 1 }, gamma = ane.full({ 64 }, 1), beta = ane.zeros({ 64 }), epsilon = 1e-5 }
    local y = f:gelu(n, "TANH_APPROXIMATION", { name = "y" })
    f:output(y)
    local t = p:text()
    assert.truthy(t:find("fp16 epsilon = const()[name = string(\"epsilon\"), val = fp16(0x1.5p-17)];", 1, true), t)
    assert.truthy(t:find('string mode = const()[name = string("mode"), val = string("TANH_APPROXIMATION")];', 1, true))
    roundtrip(p)
  end)

  it("rebuilds reference example 10.5 (rmsnorm from reductions, 1.0 dialect)", function()
    local p = mil.program { opset = "ios16" }
    local f = p:func()
    local x = f:input("x", "fp16", { 1, 64, 1, 16 })
    local y = f:rmsnorm(x, ane.full({ 64 }, 1), 1e-5, { name = "y" })
    f:output(y)
    assert.are.equal("tensor<fp16, [1, 64, 1, 16]>", ty(y))
    local t = p:text()
    assert.truthy(t:find("program(1.0)", 1, true))
    assert.truthy(t:find("reduce_sum(axes = axes, keep_dims = c_true, x = mul)", 1, true), t)
    assert.truthy(t:find("tensor<fp16, []>(0x1p-6)", 1, true), t) -- 1/64
    assert.truthy(t:find("tensor<fp16, []>(-0x1p-1)", 1, true), t) -- pow -0.5
    assert.truthy(t:find("tensor<fp16, [1, 64, 1, 1]> y_1 = const()", 1, true) or
      t:find("tensor<fp16, [1, 64, 1, 1]>", 1, true), t)
    roundtrip(p)
  end)

  it("hands a checked ane.Program with its blobs to compile (p:program), and parses text (mil.parse)", function()
    local p = mil.program {}
    local f = p:func()
    local x = f:input("x", "fp16", { 1, 4, 1, 2 })
    f:output(f:linear_conv(x, ane.full({ 3, 4 }, 0.5), { name = "y" }))
    local prog = p:program()
    assert.truthy(tostring(prog):find("ane.Program", 1, true))
    assert.truthy(tostring(prog):find("checked", 1, true))
    local q = mil.parse(p:text(), "built.mil")
    assert.truthy(tostring(q):find("1 function", 1, true))
    assert.has_error(function() mil.parse("program(1.3) {", "bad.mil") end)
  end)

  it("saves model.mil and weights/ for @model_path", function()
    local p = mil.program {}
    local f = p:func()
    local x = f:input("x", "fp16", { 1, 2, 1, 2 })
    f:output(f:linear_conv(x, ane.full({ 2, 2 }, 1)))
    local dir = os.tmpname()
    os.remove(dir)
    assert.is_true(p:save(dir))
    assert.are.equal(p:text(), assert(H.read(dir .. "/model.mil")))
    assert.are.equal(p:weights()["@model_path/weights/weight.bin"], assert(H.read(dir .. "/weights/weight.bin")))
    os.remove(dir .. "/weights/weight.bin")
    os.remove(dir .. "/weights")
    os.remove(dir .. "/model.mil")
    os.remove(dir)
  end)
end)

-- The builder types ops through the C primitives (ane.mil_infer, which typed described inputs,
-- is gone): the same checker rules seen through prog:op.
describe("op typing through prog:op", function()
  it("applies the checker's rule as each op is added", function()
    local p = ane.mil_program()
    local fn = p:func("main", "ios18")
    local x = p:param(fn, "x", "fp16", { 1, 2, 16, 32 })
    local y = p:param(fn, "y", "fp16", { 1, 2, 16, 32 })
    local t = p:op(fn, "const", {}, nil, "t", { val = p:literal(fn, "bool", {}, true) })
    local r = p:op(fn, "matmul", { x = x, y = y, transpose_y = t })
    local _, dtype, shape = p:value_info(fn, r)
    assert.are.same({ "fp16", { 1, 2, 16, 16 } }, { dtype, shape })
    local m = p:param(fn, "m", "fp16", { 2, 3 })
    local perm = p:op(fn, "const", {}, nil, "perm", { val = p:literal(fn, "int32", { 2 }, { 0, 0 }) })
    assert.has_error(function() p:op(fn, "transpose", { x = m, perm = perm }) end,
      "transpose: perm is not a permutation (0 repeats)")
    assert.has_error(function() p:param(fn, "z", "fp17", { 1 }) end, "bad argument #3 to 'param' (unknown dtype 'fp17')")
  end)
end)

describe("builder programs are ane.Programs", function()
  -- a program with function main and its fp16 input x
  local function main(shape)
    local p = mil.program {}
    local f = p:func()
    return p, f, f:input("x", "fp16", shape)
  end

  it("p:program() is the very ane.Program the builder built, checked, with its blobs", function()
    local p, f, x = main { 1, 4, 1, 2 }
    f:output(f:linear_conv(x, ane.full({ 3, 4 }, 0.5), { name = "y" }))
    local prog = p:program()
    assert.is_true(rawequal(prog, p._prog))
    assert.is_true(rawequal(prog, p:program())) -- asking again gives it again
    assert.are.same(p:weights(), prog:weights())
    assert.are.equal(p:text(), prog:text())
    -- checking froze it: building on raises at the caller's line (the line fn is written on)
    local fn = function() local v = f:relu(x); return v end -- (no tail call: it would drop the frame)
    local msg = err_of(fn)
    local at = SPEC .. ":" .. debug.getinfo(fn, "S").linedefined .. ": program is checked and immutable"
    assert.truthy(msg:find(at, 1, true), msg)
  end)

  it("ane.compile takes a builder program through its _prog field", function()
    local p, f, x = main { 1, 2 }
    f:output(f:mul(x, 2, { name = "y" }))
    -- a bare table holding the ane.Program at _prog (no :program method) is enough
    local k = ane.compile({ _prog = p._prog })
    k:load()
    local out = k:eval { ane.from_table({ 1.5, -3 }, "fp16", { 1, 2 }) }
    assert.are.same({ 3, -6 }, out[1]:to_table())
    k:close()
    assert.truthy(tostring(p._prog):find("checked", 1, true)) -- compile checked the builder's program
    local k2 = ane.compile(p)
    k2:close()
  end)

  it("takes input order and defaults from the C signature table", function()
    local p, f, x = main { 1, 4, 1, 8 }
    -- slice_update's reference order: x, update, begin, end
    local u = f:slice_by_size(x, { 0, 0, 0, 0 }, { 1, 2, 1, 8 })
    local y = f:slice_update(x, u, { 0, 0, 0, 0 }, { 1, 2, 1, 8 }, { name = "y" })
    -- fill's value defaults to fp32 0, as the checker reads an absent value
    local z = f:fill({ 2, 2 }, { name = "z" })
    assert.are.equal("tensor<fp32, [2, 2]>", ty(z))
    f:output(y, z)
    local t = p:text()
    assert.truthy(t:find("fp32 value = const()[name = string(\"value\"), val = fp32(0x0p+0)];", 1, true), t)
    -- computed defaults: one stride and three masks per axis of x
    assert.truthy(t:find("tensor<int32, [4]> stride = const()[name = string(\"stride\"), val = tensor<int32, [4]>([1, 1, 1, 1])];", 1, true), t)
    assert.truthy(t:find("tensor<bool, [4]> begin_mask = const()[name = string(\"begin_mask\"), val = tensor<bool, [4]>([false, false, false, false])];", 1, true), t)
    assert.truthy(t:find("slice_update(begin = begin, begin_mask = begin_mask, end = size, end_mask = begin_mask, squeeze_mask = begin_mask, stride = stride, update = slice_by_size, x = x)", 1, true), t)
    for op, sig in pairs(mil.signatures) do
      assert.are.same(ane.mil_signature(op, 18), sig, op)
    end
  end)
end)
