-- The ops taken from coremltools' definitions (docs/mil.md, coverage table): checker rules, CPU
-- execution in fp16 and fp32 mode against NumPy (spec/fixtures/ops/coreml_ops.lua, made by
-- gen_coreml_ops.py in the same folder), and the builder methods the signature table gives them.
local ane = require "ane"
local mil = require "ane.mil"
local R = require "cpu_ref"

local CASES = dofile(os.getenv("ANE_ROOT") .. "/spec/fixtures/ops/coreml_ops.lua")

local function prog(dtype, shape, out_shape, call, opset, shape2, pre)
  local params = { { "a", dtype, shape } }
  if shape2 then params[2] = { "b", dtype, shape2 } end
  local body = { R.ty(dtype, out_shape) .. " y = " .. call .. '[name = string("op")];' }
  if pre then table.insert(body, 1, pre) end
  return R.program(params, body, { "y" }, opset)
end

local function check_err(src, want)
  local ok, err = pcall(function() ane.mil_parse(src, "t.mil"):check() end)
  assert.is_false(ok, "expected a check error")
  assert.equal(want, (err:match("^[^\n]*")))
end

describe("coremltools ops on the cpu backend, against NumPy", function()
  -- movement ops must match exactly; computing ops (tol) within one fp16 ulp of NumPy's double
  -- result in fp16 mode, 1e-5 in fp32 mode
  local function ins(c, dt)
    local t = { { dt, c.shape, c.x } }
    if c.shape2 then t[2] = { dt, c.shape2, c.x2 } end
    return t
  end
  for _, c in ipairs(CASES) do
    it(c.name .. " (fp16, default precision)", function()
      local got = R.run(prog("fp16", c.shape, c.out_shape, c.call, c.opset, c.shape2, c.pre), ins(c, "fp16"))
      if c.tol then assert(R.close(got, c.y, c.tol)) else assert.same(c.y, got) end
    end)
    it(c.name .. " (fp32 program, precision fp32)", function()
      local call = c.call:gsub("fp16%(", "fp32(")
      local pre = c.pre and c.pre:gsub("tensor<fp16", "tensor<fp32")
      local got = R.run(prog("fp32", c.shape, c.out_shape, call, c.opset, c.shape2, pre), ins(c, "fp32"), { precision = "fp32" })
      if c.tol then assert(R.close(got, c.y, 0, 1e-5, false)) else assert.same(c.y, got) end
    end)
  end

  it("pad's constant is rounded to fp16 in fp16 mode, kept in fp32 mode", function()
    local call = "pad(x = a, pad = " .. R.ints { 1, 0 } .. ", constant_val = fp32(0.1))"
    local src = prog("fp32", { 2 }, { 3 }, call)
    assert.same({ R.f16(0.1), 1, 2 }, R.run(src, { { "fp32", { 2 }, { 1, 2 } } }))
    local y = R.run(src, { { "fp32", { 2 }, { 1, 2 } } }, { precision = "fp32" })
    assert.is_true(math.abs(y[1] - 0.1) < 1e-8 and y[1] ~= R.f16(0.1))
  end)

  it("fill_like: the value's dtype and the reference tensor's shape (plain-Lua reference)", function()
    local src = R.program({ { "a", "fp16", { 2, 3 } } },
      { 'tensor<int32, [2, 3]> y = fill_like(ref_tensor = a, value = int32(7))[name = string("f")];' }, { "y" }, "ios16")
    assert.same({ 7, 7, 7, 7, 7, 7 }, R.run(src, { { "fp16", { 2, 3 }, { 1, 2, 3, 4, 5, 6 } } }))
    src = R.program({ { "a", "fp16", { 2 } } },
      { 'tensor<fp32, [2]> y = fill_like(ref_tensor = a)[name = string("f")];',
        'tensor<fp16, [2]> z = cast(x = y, dtype = string("fp16"))[name = string("c")];' }, { "z" })
    assert.same({ 0, 0 }, R.run(src, { { "fp16", { 2 }, { 1, 2 } } }))
  end)

  it("range_1d: NumPy's arange length ceil((end - start) / step) (plain-Lua reference)", function()
    local function run(dt, s, e, st, n)
      local call = ("range_1d(end = %s(%s), start = %s(%s), step = %s(%s))"):format(dt, e, dt, s, dt, st)
      local src = R.program({ { "a", "fp16", { 1 } } }, {
        R.ty(dt, { n }) .. " r = " .. call .. '[name = string("r")];',
        'tensor<fp16, [1]> y = identity(x = a)[name = string("i")];' }, { "y", "r" })
      local _, r = R.run(src, { { "fp16", { 1 }, { 0 } } })
      return r
    end
    assert.same({ 2, 5, 8 }, run("int32", 2, 10, 3, 3))
    assert.same({ 5, 3, 1 }, run("int32", 5, 0, -2, 3))
    assert.same({ 0, 0.25, 0.5, 0.75 }, run("fp16", 0, 1, 0.25, 4))
  end)
end)

describe("coremltools ops: checker rules", function()
  local cases = {
    { "pad with an odd count", prog("fp16", { 2, 3 }, { 2, 4 }, "pad(x = a, pad = " .. R.ints { 1, 0, 2 } .. ")"),
      "t.mil:4:45: pad: pad has 3 values: expected an even count up to 4 (2 per padded axis)" },
    { "pad mode", prog("fp16", { 2, 3 }, { 2, 4 }, 'pad(x = a, pad = ' .. R.ints { 1, 0 } .. ', mode = string("wrap"))'),
      't.mil:4:79: pad: mode "wrap" is not constant, reflect or replicate' },
    { "reflect beyond the axis", prog("fp16", { 2, 3 }, { 2, 6 }, 'pad(x = a, pad = ' .. R.ints { 3, 0 } .. ', mode = string("reflect"))'),
      "t.mil:4:45: pad: reflect pad[0] = 3 exceeds axis 1's size - 1 (2)" },
    { "declared shape differs", prog("fp16", { 2, 3 }, { 2, 3 }, "pad(x = a, pad = " .. R.ints { 1, 0 } .. ")"),
      nil },
    { "depth_to_space channels", prog("fp16", { 1, 6, 2, 2 }, { 1, 1, 4, 4 }, "depth_to_space(x = a, block_size = int32(2))"),
      "t.mil:4:55: depth_to_space: channels (6) are not a multiple of block_size^2 = 4" },
    { "depth_to_space rank", prog("fp16", { 6, 2, 2 }, { 1, 4, 4 }, "depth_to_space(x = a, block_size = int32(2))"),
      nil },
    { "space_to_batch divisibility", prog("fp16", { 1, 1, 3, 4 }, { 4, 1, 1, 2 },
      "space_to_batch(x = a, block_shape = " .. R.ints { 2, 2 } .. ", paddings = tensor<int32, [2, 2]>([[0, 0], [0, 0]]))"),
      "t.mil:4:104: space_to_batch: padded spatial axis 2 (3) is not a multiple of block_shape[0] = 2" },
    { "crop leaves nothing", prog("fp16", { 1, 3, 4 }, { 1, 1, 1 }, "crop(x = a, crop_height = " .. R.ints { 1, 2 } .. ", crop_width = " .. R.ints { 0, 0 } .. ")"),
      "t.mil:4:49: crop: crop_height [1, 2] must be >= 0 and leave part of axis 1 (3)" },
    { "pool kernel sizes per spatial axis", prog("fp16", { 1, 2, 4, 4 }, { 1, 2, 3, 3 },
      'max_pool(x = a, kernel_sizes = ' .. R.ints { 2 } .. ', pad_type = string("valid"))'),
      "t.mil:4:56: max_pool: kernel_sizes has 1 values, expected 2 (one per spatial axis)" },
    { "pool ceil_mode with same", prog("fp16", { 1, 2, 4, 4 }, { 1, 2, 4, 4 },
      'avg_pool(x = a, kernel_sizes = ' .. R.ints { 2, 2 } .. ', pad_type = string("same"), ceil_mode = bool(true))'),
      "t.mil:4:126: avg_pool: ceil_mode must be false with pad_type same" },
    { "l2_pool is 1-D or 2-D", prog("fp16", { 1, 1, 2, 2, 2 }, { 1, 1, 1, 1, 1 },
      'l2_pool(x = a, kernel_sizes = ' .. R.ints { 2, 2, 2 } .. ', pad_type = string("valid"))'),
      "t.mil:4:51: l2_pool: x must have rank 3 or 4, got 5" },
    { "resize_bilinear sampling mode", prog("fp16", { 1, 2, 2 }, { 1, 1, 1 }, 'resize_bilinear(x = a, sampling_mode = string("NEAREST"))'),
      't.mil:4:60: resize_bilinear: sampling_mode "NEAREST" is not STRICT_ALIGN_CORNERS, ALIGN_CORNERS, UNALIGN_CORNERS, DEFAULT or OFFSET_CORNERS' },
    { "einsum other equations", R.program({ { "a", "fp16", { 2, 3, 4 } }, { "b", "fp16", { 4, 3, 5 } } },
      { 'tensor<fp16, [2, 3, 5]> y = einsum(values = (a, b), equation = string("chw,hwr->chr"))[name = string("e")];' }, { "y" }),
      't.mil:4:61: einsum: equation "chw,hwr->chr" is not a form coremltools defines ("chw,whr->chr" or its renaming)' },
    { "lut size", R.program({ { "a", "fp16", { 4 } } },
      { 'tensor<fp16, [4]> d = constexpr_lut_to_dense(indices = tensor<uint8, [1]>([0]), lut = tensor<fp16, [3]>([1, 2, 3]), shape = tensor<uint32, [1]>([4]))[name = string("d")];' },
      { "d" }, "ios16"), "t.mil:4:89: constexpr_lut_to_dense: lut has 3 entries: must be 2, 4, 16, 64 or 256" },
    { "lut indices bytes", R.program({ { "a", "fp16", { 4 } } },
      { 'tensor<fp16, [5]> d = constexpr_lut_to_dense(indices = tensor<uint8, [1]>([0]), lut = tensor<fp16, [4]>([1, 2, 3, 4]), shape = tensor<uint32, [1]>([5]))[name = string("d")];' },
      { "d" }, "ios16"), "t.mil:4:54: constexpr_lut_to_dense: indices has 1 bytes, expected ceil(2 bits x 5 / 8) = 2" },
    { "sparse mask count", R.program({ { "a", "fp16", { 4 } } },
      { 'tensor<fp16, [4]> d = constexpr_sparse_to_dense(nonzero_data = tensor<fp16, [1]>([1]), mask = tensor<uint8, [1]>([3]), shape = tensor<uint32, [1]>([4]))[name = string("d")];' },
      { "d" }, "ios16"), "t.mil:4:57: constexpr_sparse_to_dense: nonzero_data has 1 values, the mask sets 2" },
    { "sparse mask bits past the shape", R.program({ { "a", "fp16", { 4 } } },
      { 'tensor<fp16, [4]> d = constexpr_sparse_to_dense(nonzero_data = tensor<fp16, [1]>([1]), mask = tensor<uint8, [1]>([16]), shape = tensor<uint32, [1]>([4]))[name = string("d")];' },
      { "d" }, "ios16"), "t.mil:4:96: constexpr_sparse_to_dense: mask sets bit 4, past the 4 elements" },
    { "reverse axis out of range", prog("fp16", { 2, 3 }, { 2, 3 }, "reverse(x = a, axes = " .. R.ints { 2 } .. ")"), nil },
    { "range_1d from run-time values", R.program({ { "a", "int32", {} } },
      { 'tensor<int32, [3]> y = range_1d(end = a, start = int32(0), step = int32(1))[name = string("r")];' }, { "y" }),
      "t.mil:4:41: range_1d: end must be a constant here: the result's length must be known (shapes are static)" },
  }
  for _, c in ipairs(cases) do
    it(c[1], function()
      if c[3] then
        check_err(c[2], c[3])
      else
        assert.has_error(function() ane.mil_parse(c[2], "t.mil"):check() end)
      end
    end)
  end

  it("pixel_unshuffle and fill_like need ios16", function()
    local src = prog("fp16", { 1, 1, 2, 2 }, { 1, 4, 1, 1 }, "pixel_unshuffle(x = a, downscale_factor = uint32(2))", "ios15")
    assert.has_error(function() ane.mil_parse(src, "t.mil"):check() end)
  end)
end)

describe("coremltools ops: builder methods", function()
  it("come from the signature table, with its defaults", function()
    local p = mil.program { opset = "ios18", build_info = false }
    local f = p:func()
    local x = f:input("x", "fp16", { 1, 8, 2, 2 })
    local d = f:depth_to_space(x, 2)
    assert.same({ 1, 2, 4, 4 }, d.shape)
    local s = f:space_to_depth(d, 2)
    local pd = f:pad { x = s, pad = { 1, 1 }, mode = "reflect" }
    assert.same({ 1, 8, 2, 4 }, pd.shape)
    assert.same({ 1, 8, 1, 2 }, f:max_pool { x = pd, kernel_sizes = { 2, 2 }, strides = { 2, 2 }, pad_type = "valid" }.shape)
    assert.same({ 1, 8, 3, 5 }, f:resize_bilinear(pd, 3, 5).shape)
    assert.same({ 1, 8, 2, 8 }, f:einsum({ pd, f:reshape(pd, { 1, 4, 2, 8 }) }, "nchw,nwhu->nchu").shape)
    local r = f:reverse(pd)
    local fl = f:flatten2d(r)
    assert.same({ 1, 64 }, fl.shape)
    f:output(s, fl)
    local k <close> = ane.compile(p)
    k:load()
    local xs = {}
    for i = 1, 32 do xs[i] = (i - 16) * 0.25 end
    local ys, yf = k:eval { R.tensor("fp16", { 1, 8, 2, 2 }, xs) }
    assert.same(xs, R.flat(ys)) -- space_to_depth undoes depth_to_space
    -- reflect pad [1, 1] of the last row (c = 7, h = 1): x[31], x[32] -> x[32], x[31], x[32], x[31]; reversed
    -- everything, that row comes first
    assert.same({ xs[31], xs[32], xs[31], xs[32] }, { table.unpack(R.flat(yf), 1, 4) })
    assert.truthy(p:text():find('pad(constant_val = constant_val, mode = mode, pad = pad, x = space_to_depth)', 1, true), p:text())
  end)
end)
