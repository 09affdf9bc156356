-- The Lua API of backends and kernels (ane.compile, ane.Kernel, ane.backend[s]), strict mode,
-- the compile budget, bad input, and stability over many evals.
local ane = require "ane"
local R = require "cpu_ref"
local H = require "helpers"

local relu = R.program({ { "x", "fp16", { 1, 64, 1, 32 } } },
  { 'tensor<fp16, [1, 64, 1, 32]> y = relu(x = x)[name = string("r")];' }, { "y" })

local two = R.program({ { "a", "fp16", { 1, 4 } }, { "b", "fp16", { 1, 4 } } }, {
  'tensor<fp16, [1, 4]> s = add(x = a, y = b)[name = string("s")];',
  'tensor<fp16, [1, 4]> d = sub(x = a, y = b)[name = string("d")];',
}, { "s", "d" })

local function t(vals, shape, dt) return R.tensor(dt or "fp16", shape, vals) end

describe("ane.compile and ane.Kernel", function()
  it("describes inputs and outputs", function()
    local k <close> = ane.compile(two)
    assert.same({ { name = "a", dtype = "fp16", shape = { 1, 4 } }, { name = "b", dtype = "fp16", shape = { 1, 4 } } }, k.inputs)
    assert.same({ { name = "s", dtype = "fp16", shape = { 1, 4 } }, { name = "d", dtype = "fp16", shape = { 1, 4 } } }, k.outputs)
    assert.equal("cpu", k.backend)
    assert.is_false(k.loaded)
    assert.matches("ane.Kernel cpu %(not loaded%) %(a: fp16%[1, 4%], b: fp16%[1, 4%]%) %-> %(s: fp16%[1, 4%], d: fp16%[1, 4%]%)", tostring(k))
  end)

  it("evaluates with inputs by position and by name, returning outputs in order", function()
    local k <close> = ane.compile(two)
    k:load()
    assert.is_true(k.loaded)
    local a, b = t({ 1, 2, 3, 4 }, { 1, 4 }), t({ 0.5, 0.5, 1, -1 }, { 1, 4 })
    local s, d = k:eval { a, b }
    assert.same({ 1.5, 2.5, 4, 3 }, R.flat(s))
    assert.same({ 0.5, 1.5, 2, 5 }, R.flat(d))
    s, d = k:eval { b = b, a = a }
    assert.same({ 1.5, 2.5, 4, 3 }, R.flat(s))
    assert.same({ 0.5, 1.5, 2, 5 }, R.flat(d))
  end)

  it("writes into caller tensors and returns them", function()
    local k <close> = ane.compile(two)
    k:load()
    local s, d = ane.zeros({ 1, 4 }), ane.zeros({ 1, 4 })
    local s2, d2 = k:eval({ t({ 1, 1, 1, 1 }, { 1, 4 }), t({ 2, 2, 2, 2 }, { 1, 4 }) }, { s, d })
    assert.equal(s, s2)
    assert.equal(d, d2)
    assert.same({ 3, 3, 3, 3 }, R.flat(s))
    assert.same({ -1, -1, -1, -1 }, R.flat(d))
    local s3 = k:eval({ t({ 1, 1, 1, 1 }, { 1, 4 }), t({ 2, 2, 2, 2 }, { 1, 4 }) }, { d = ane.zeros({ 1, 4 }), s = s })
    assert.equal(s, s3)
  end)

  it("takes a single tensor for a one-input kernel", function()
    local k <close> = ane.compile(relu)
    k:load()
    local x = ane.zeros({ 1, 64, 1, 32 })
    x:set(1, 1, 1, 1, -3)
    x:set(1, 1, 1, 2, 3)
    local y = k:eval(x)
    assert.equal(0, y:get(1, 1, 1, 1))
    assert.equal(3, y:get(1, 1, 1, 2))
  end)

  it("accepts a builder-like object with :program()", function()
    local builder = { program = function() return two end }
    local k <close> = ane.compile(builder)
    assert.equal(2, #k.inputs)
  end)

  it("unload, load again, close, double close", function()
    local k = ane.compile(relu)
    k:load()
    k:unload()
    assert.is_false(k.loaded)
    assert.has_error(function() k:eval { ane.zeros({ 1, 64, 1, 32 }) } end, "eval: kernel is not loaded (call kernel:load())")
    k:load()
    k:eval { ane.zeros({ 1, 64, 1, 32 }) }
    k:close()
    assert.equal("ane.Kernel (closed)", tostring(k))
    assert.is_true(k.closed)
    assert.has_error(function() k:eval { ane.zeros({ 1, 64, 1, 32 }) } end, "eval: ane.Kernel is closed")
    assert.has_error(function() k:load() end, "load: ane.Kernel is closed")
    assert.has_error(function() k:close() end, "ane.Kernel is already closed")
  end)

  it("is freed by __close and by the collector", function()
    do
      local k <close> = ane.compile(relu)
      k:load()
    end
    for _ = 1, 50 do ane.compile(relu):load() end
    collectgarbage()
    collectgarbage()
  end)
end)

describe("bad input is a clear error", function()
  local k = ane.compile(two)
  k:load()
  local a = t({ 1, 2, 3, 4 }, { 1, 4 })
  local cases = {
    { function() k:eval { a } end, "1 input given, the kernel takes 2: a (fp16 [1, 4]), b (fp16 [1, 4])" },
    { function() k:eval { a, a, a } end, "3 inputs given, the kernel takes 2: a (fp16 [1, 4]), b (fp16 [1, 4])" },
    { function() k:eval { a = a } end, "input 'b' is missing (the kernel takes a (fp16 [1, 4]), b (fp16 [1, 4]))" },
    { function() k:eval(a) end, "one tensor given, the kernel takes 2 inputs: a (fp16 [1, 4]), b (fp16 [1, 4])" },
    { function() k:eval({ a, a }, { ane.zeros({ 1, 4 }) }) end, "1 output given, the kernel takes 2: " },
    { function() k:eval { a, ane.zeros({ 1, 5 }) } end, "eval: input 'b' has shape [1, 5], expected [1, 4]" },
    { function() k:eval { a, ane.zeros({ 1, 4 }, "fp32") } end, "eval: input 'b' has dtype fp32, expected fp16" },
    { function() k:eval { a = a, c = a } end, "the kernel has no input named 'c'" },
    { function() k:eval { a, 3 } end, "input 'b' must be an ane.Tensor, got number" },
    { function() k:eval(42) end, "table of ane.Tensor expected" },
    { function() k:eval({ a, a }, { ane.zeros({ 2, 4 }), ane.zeros({ 1, 4 }) }) end, "eval: output 's' has shape [2, 4], expected [1, 4]" },
  }
  for i, c in ipairs(cases) do
    it("case " .. i, function()
      local ok, err = pcall(c[1])
      assert.is_false(ok)
      assert.truthy(tostring(err):find(c[2], 1, true), tostring(err))
    end)
  end

  it("a closed input tensor", function()
    local x = ane.zeros({ 1, 4 })
    x:close()
    local ok, err = pcall(function() k:eval { a, x } end)
    assert.is_false(ok)
    assert.truthy(err:find("input 'b' is a closed ane.Tensor", 1, true), err)
  end)

  it("options are checked", function()
    assert.has_error(function() ane.compile(two, { bogus = 1 }) end)
    assert.has_error(function() ane.compile(two, { backend = "nope" }) end)
    assert.has_error(function() ane.compile(two, { strict = "yes" }) end)
    assert.has_error(function() ane.compile(two, { threads = -1 }) end)
    assert.has_error(function() ane.compile(two, { ["function"] = "other" }) end, "compile: the program has no function 'other'")
    assert.has_error(function() ane.compile(two, { strict = true, chip = "m9" }) end, "compile: unknown chip 'm9' (expected m1..m5)")
  end)

  it("MIL errors carry a position", function()
    local ok, err = pcall(ane.compile, "program(1.3)\n{\n  func main<ios18>(tensor<fp16, [2]> x) {\n    tensor<fp16, [3]> y = relu(x = x)[name = string(\"r\")];\n  } -> (y);\n}\n")
    assert.is_false(ok)
    assert.truthy(err:find(":4:", 1, true), err)
  end)

  it("a program whose weight file vanished", function()
    local dir = os.tmpname()
    os.remove(dir)
    local src = R.program({ { "x", "fp16", { 1, 4, 1, 2 } } }, {
      'tensor<fp16, [2, 4, 1, 1]> w = const()[name = string("w"), val = tensor<fp16, [2, 4, 1, 1]>(BLOBFILE(path = string("@model_path/weights/w.bin"), offset = uint64(64)))];',
      'tensor<fp16, [1, 2, 1, 2]> y = conv(x = x, weight = w)[name = string("c")];',
    }, { "y" })
    local ok, err = pcall(ane.compile, src, { model_path = dir })
    assert.is_false(ok)
    assert.truthy(err:find("w.bin", 1, true), err)
  end)
end)

describe("backends", function()
  it("lists cpu as available and reports the default", function()
    local list = ane.backends()
    local cpu
    for _, b in ipairs(list) do if b.name == "cpu" then cpu = b end end
    assert.is_table(cpu)
    assert.is_true(cpu.available)
    assert.is_string(ane.backend())
    assert.equal("cpu", ane.backend("cpu"))
    assert.has_error(function() ane.backend("nope") end)
  end)
end)

describe("strict mode", function()
  local function refused(src, pattern, opts)
    opts = opts or {}
    opts.strict = true
    ane.set_compile_budget(-1)
    local ok, err = pcall(ane.compile, src, opts)
    assert.is_false(ok, "expected a strict refusal")
    assert.truthy(err:find(pattern, 1, true), err)
    return err
  end
  local function un(op, dt, extra)
    return R.program({ { "x", dt or "fp16", { 1, 8, 1, 32 } } },
      { ("tensor<%s, [1, 8, 1, 32]> y = %s(x = x%s)[name = string(\"u\")];"):format(dt or "fp16", op, extra or "") }, { "y" })
  end

  it("accepts a plain fp16 kernel", function()
    ane.set_compile_budget(-1)
    local k <close> = ane.compile(relu, { strict = true })
    assert.equal("cpu", k.backend)
  end)

  it("warns at compile for rows that are not a multiple of 64 bytes, citing the field notes", function()
    ane.set_compile_budget(-1)
    local src = R.program({ { "x", "fp16", { 1, 4, 1, 20 } } },
      { 'tensor<fp16, [1, 4, 1, 20]> y = relu(x = x)[name = string("r")];' }, { "y" })
    local k <close> = ane.compile(src, { strict = true })
    assert.equal(2, #k.warnings)
    assert.matches("^input 'x': innermost row of 40 bytes is not a multiple of 64", k.warnings[1])
    assert.truthy(k.warnings[1]:find("ane-field-notes.md 2.8", 1, true))
    assert.matches("^output 'y'", k.warnings[2])
    local plain <close> = ane.compile(src) -- outside strict mode the cpu backend says nothing
    assert.same({}, plain.warnings)
    local ok <close> = ane.compile(relu, { strict = true }) -- [1, 8, 1, 32] fp16: 64-byte rows
    assert.same({}, ok.warnings)
    -- through Lua's warning system: shown by `ane -W`
    local path = H.tmpfile("local ane = require 'ane'\nane.compile([==[" .. src .. "]==], { strict = true })\n", ".lua")
    local _, okrun, _, err = H.ane { "-W", path }
    assert.is_true(okrun, err)
    assert.truthy(err:find("Lua warning: ane: cpu kernel: input 'x': innermost row of 40 bytes", 1, true), err)
  end)

  it("refuses ops with no ANE path, citing the source", function()
    local err = refused(un("asin"), "asin: the ANE has no inverse-trig path")
    assert.truthy(err:find("ane-field-notes.md 1.15", 1, true))
    refused(un("cos"), "cos needs A15 or newer", { chip = "m1" })
    local k <close> = ane.compile(un("cos"), { strict = true, chip = "m4" })
  end)

  it("refuses what ironmill's op matrix records the ANE compiler refusing, on every chip", function()
    local IM = "ironmill docs/design/ane-op-support-matrix.md"
    for _, op in ipairs { "sin", "tan", "asin", "acos", "sinh", "cosh" } do
      local err = refused(un(op), op .. ": ", { chip = "m4" })
      assert.truthy(err:find(IM, 1, true), err)
    end
    local function bin(op, dt)
      return R.program({ { "x", "fp16", { 1, 8, 1, 32 } } }, {
        ('tensor<%s, [1, 8, 1, 32]> a = cast(x = x, dtype = string("%s"))[name = string("a")];'):format(dt, dt),
        ('tensor<%s, [1, 8, 1, 32]> b = %s(x = a, y = a)[name = string("m")];'):format(dt, op),
        ('tensor<fp16, [1, 8, 1, 32]> y = cast(x = b, dtype = string("fp16"))[name = string("y")];'),
      }, { "y" })
    end
    local err = refused(bin("mod", "fp16"), "mod is refused by the ANE compiler; write sub(x, mul(floor_div(x, y), y))")
    assert.truthy(err:find(IM .. "; ANEForge op sweep", 1, true), err)
    for _, op in ipairs { "logical_and", "logical_or", "logical_xor" } do
      err = refused(bin(op, "bool"), op .. " has no hardware path on the ANE")
      assert.truthy(err:find(IM, 1, true), err)
    end
  end)

  it("refuses rsqrt, log and inverse without an explicit epsilon (ironmill)", function()
    for _, op in ipairs { "rsqrt", "log", "inverse" } do
      local err = refused(un(op), op .. " without an explicit epsilon is rejected by the ANE compiler")
      assert.truthy(err:find("ironmill docs/design/ane-op-support-matrix.md", 1, true), err)
      local k <close> = ane.compile(un(op, nil, ", epsilon = fp16(0x1p-10)"), { strict = true })
      assert.equal("cpu", k.backend)
      local k2 <close> = ane.compile(un(op)) -- outside strict mode the default epsilon applies
    end
  end)

  it("refuses fp32 compute inside the program, and fp32 I/O on M1/M2", function()
    refused(un("relu", "fp32"), "relu computes in fp32")
    local castio = R.program({ { "x", "fp32", { 1, 8, 1, 32 } } }, {
      'tensor<fp16, [1, 8, 1, 32]> h = cast(x = x, dtype = string("fp16"))[name = string("c")];',
      'tensor<fp16, [1, 8, 1, 32]> r = relu(x = h)[name = string("r")];',
      'tensor<fp32, [1, 8, 1, 32]> y = cast(x = r, dtype = string("fp32"))[name = string("o")];',
    }, { "y" })
    local k <close> = ane.compile(castio, { strict = true, chip = "m4" })
    refused(castio, "fp32 I/O 'x' with casts fails to compile on M1/M2", { chip = "m2" })
  end)

  it("refuses a masked sdpa, non-power-of-two channel softmax, wide conv kernels", function()
    refused(R.program({ { "q", "fp16", { 1, 2, 32, 8 } } }, {
      'tensor<fp16, [1, 2, 32, 8]> y = scaled_dot_product_attention(query = q, key = q, value = q, attn_mask = tensor<bool, [32, 32]>(' ..
        ("[" .. ("true, "):rep(32 * 32 - 1) .. "true]") .. '))[name = string("a")];' }, { "y" }), "ignores attn_mask")
    refused(R.program({ { "x", "fp16", { 1, 12, 1, 32 } } },
      { 'tensor<fp16, [1, 12, 1, 32]> y = softmax(x = x, axis = int32(1))[name = string("s")];' }, { "y" }), "not a power of two")
    refused(R.program({ { "x", "fp16", { 1, 1, 1, 64 } } },
      { 'tensor<fp16, [1, 1, 1, 49]> y = conv(x = x, weight = tensor<fp16, [1, 1, 1, 16]>([' .. ("1, "):rep(15) .. '1]))[name = string("c")];' }, { "y" }),
      "kernel width")
  end)

  it("refuses runtime matmul contractions that are not a multiple of 32", function()
    refused(R.program({ { "a", "fp16", { 1, 1, 32, 48 } }, { "b", "fp16", { 1, 1, 48, 32 } } },
      { 'tensor<fp16, [1, 1, 32, 32]> y = matmul(x = a, y = b, transpose_x = bool(false), transpose_y = bool(false))[name = string("m")];' }, { "y" }),
      "not a multiple of 32")
  end)

  it("flags fp16 overflow at eval, naming the op", function()
    ane.set_compile_budget(-1)
    local src = R.program({ { "x", "fp16", { 1, 8, 1, 32 } } },
      { 'tensor<fp16, [1, 8, 1, 32]> y = mul(x = x, y = x)[name = string("sq")];' }, { "y" })
    local k <close> = ane.compile(src, { strict = true })
    k:load()
    local x = ane.full({ 1, 8, 1, 32 }, 2)
    k:eval { x } -- fine
    x:set(1, 3, 1, 7, 300)
    local ok, err = pcall(k.eval, k, { x })
    assert.is_false(ok)
    assert.truthy(err:find("mul 'sq' overflowed fp16", 1, true), err)
    -- the same kernel without strict mode gives inf, as IEEE fp16 would
    local k2 <close> = ane.compile(src)
    k2:load()
    assert.equal(math.huge, k2:eval({ x }):get(1, 3, 1, 7))
  end)

  it("flags matmul results the ANE saturates (|v| > 32752)", function()
    local src = R.program({ { "a", "fp16", { 1, 1, 32, 32 } } },
      { 'tensor<fp16, [1, 1, 32, 32]> y = matmul(x = a, y = a, transpose_x = bool(false), transpose_y = bool(false))[name = string("mm")];' }, { "y" })
    local k <close> = ane.compile(src, { strict = true })
    k:load()
    local ok, err = pcall(k.eval, k, { ane.full({ 1, 1, 32, 32 }, 40) })
    assert.is_false(ok)
    assert.truthy(err:find("beyond +-32752", 1, true), err)
  end)

  it("counts compiles against the per-process budget and fails like the ANE when spent", function()
    ane.set_compile_budget(-1)
    local _, used = ane.compile_budget()
    ane.set_compile_budget(used + 2)
    ane.compile(relu, { strict = true })
    ane.compile(relu) -- non-strict cpu compiles are not counted
    ane.compile(relu, { strict = true })
    local ok, err = pcall(ane.compile, relu, { strict = true })
    assert.is_false(ok)
    assert.truthy(err:find("compile: ANE compile budget spent", 1, true), err)
    local limit, used2 = ane.compile_budget()
    assert.equal(used + 2, limit)
    assert.equal(used + 2, used2)
    ane.set_compile_budget(-1)
    ane.compile(relu, { strict = true })
  end)

  it("ANE_STRICT=1 turns strict mode on for a whole run", function()
    local script = H.tmpfile([[
      local ane = require "ane"
      local ok, err = pcall(ane.compile, ]] .. ("%q"):format(un("asin")) .. [[)
      io.write(ok and "compiled" or err)
    ]])
    local out = H.run({ "env", "ANE_STRICT=1", H.ane_bin, script })
    assert.truthy(out:find("no inverse-trig path", 1, true), out)
    out = H.run({ "env", "ANE_STRICT=0", H.ane_bin, script })
    assert.equal("compiled", out)
  end)
end)

describe("no drift", function()
  it("thousands of evals keep memory and the Lua stack bounded", function()
    local k <close> = ane.compile(two)
    k:load()
    local a, b = t({ 1, 2, 3, 4 }, { 1, 4 }), t({ 1, 1, 1, 1 }, { 1, 4 })
    local s, d = ane.zeros({ 1, 4 }), ane.zeros({ 1, 4 })
    for _ = 1, 200 do k:eval({ a, b }, { s, d }) end
    collectgarbage()
    local mem0, c_mem0 = collectgarbage("count"), ane.memory()
    for _ = 1, 5000 do k:eval({ a, b }, { s, d }) end
    for _ = 1, 2000 do k:eval { a, b } end
    collectgarbage()
    collectgarbage()
    assert.is_true(collectgarbage("count") < mem0 + 256, "Lua heap grew")
    assert.is_true(ane.memory() <= c_mem0 + 4096, "tensor storage grew")
    assert.same({ 2, 3, 4, 5 }, R.flat(s))
  end)
end)

describe("weights", function()
  local mil = require "ane.mil"
  -- W [3, 4] as a 1x1 conv over [1, 4, 1, 5]; reference in doubles from the same fp16 values
  local W = R.values(12, -1, 1, 4)
  local X = R.values(20, -2, 2, 5)
  local function ref()
    local out = {}
    for o = 0, 2 do for s = 0, 4 do
      local acc = 0
      for c = 0, 3 do acc = acc + W[o * 4 + c + 1] * X[c * 5 + s + 1] end
      out[#out + 1] = acc
    end end
    return out
  end
  local function builder()
    local p = mil.program { opset = "ios18" }
    local f = p:func("main")
    local x = f:input("x", "fp16", { 1, 4, 1, 5 })
    f:output(f:linear_conv(x, R.tensor("fp16", { 3, 4 }, W), { name = "y" }))
    return p
  end

  it("a builder program carries its blobs into compile", function()
    local k <close> = ane.compile(builder())
    k:load()
    local ok, msg = R.close(R.flat(k:eval { R.tensor("fp16", { 1, 4, 1, 5 }, X) }), ref(), 2, 1e-3)
    assert(ok, msg)
  end)

  it("BLOBFILE weights resolve from model_path", function()
    local dir = os.tmpname()
    os.remove(dir)
    local p = builder()
    p:save(dir)
    local fh = assert(io.open(dir .. "/model.mil"))
    local text = fh:read("a")
    fh:close()
    local k <close> = ane.compile(text, { model_path = dir })
    k:load()
    local ok, msg = R.close(R.flat(k:eval { R.tensor("fp16", { 1, 4, 1, 5 }, X) }), ref(), 2, 1e-3)
    assert(ok, msg)
    -- the weights are baked at compile: the kernel keeps working after the file is gone
    os.remove(dir .. "/weights/" .. (next(p:weights())):match("[^/]+$"))
    local ok2 = R.close(R.flat(k:eval { R.tensor("fp16", { 1, 4, 1, 5 }, X) }), ref(), 2, 1e-3)
    assert.is_true(ok2)
    local ok3, err = pcall(ane.compile, text, { model_path = dir })
    assert.is_false(ok3)
    assert.truthy(err:find("weight", 1, true), err)
  end)
end)

describe("strict mode, more limits", function()
  local function refused(src, pattern, opts)
    opts = opts or {}
    opts.strict = true
    ane.set_compile_budget(-1)
    local ok, err = pcall(ane.compile, src, opts)
    assert.is_false(ok, "expected a strict refusal")
    assert.truthy(err:find(pattern, 1, true), err)
  end

  it("refuses int32 I/O and int32 tensors made at run time", function()
    refused(R.program({ { "x", "int32", { 1, 8, 1, 32 } } },
      { 'tensor<int32, [1, 8, 1, 32]> y = abs(x = x)[name = string("a")];' }, { "y" }), "must be fp16")
    refused(R.program({ { "x", "fp16", { 1, 8, 1, 32 } } }, {
      'tensor<int32, [1, 8, 1, 32]> i = cast(x = x, dtype = string("int32"))[name = string("c")];',
      'tensor<fp16, [1, 8, 1, 32]> y = cast(x = i, dtype = string("fp16"))[name = string("d")];',
    }, { "y" }), "makes an int32 tensor at run time")
  end)

  it("refuses an output that is an input", function()
    refused(R.program({ { "x", "fp16", { 1, 8, 1, 32 } } }, {}, { "x" }), "empty body")
  end)

  it("refuses reduce_prod and logical ops", function()
    refused(R.program({ { "x", "fp16", { 1, 8, 1, 32 } } },
      { 'tensor<fp16, [1, 1, 1, 32]> y = reduce_prod(x = x, axes = tensor<int32, [1]>([1]), keep_dims = bool(true))[name = string("p")];' }, { "y" }),
      "no hardware path")
  end)

  it("flags the M1/M2 crop-DMA cliff on last-axis-offset slices", function()
    local src = R.program({ { "x", "fp16", { 1, 8, 1, 64 } } },
      { 'tensor<fp16, [1, 8, 1, 32]> y = slice_by_size(x = x, begin = tensor<int32, [4]>([0, 0, 0, 32]), size = tensor<int32, [4]>([1, 8, 1, 32]))[name = string("w")];' },
      { "y" })
    ane.set_compile_budget(-1)
    local x = ane.full({ 1, 8, 1, 64 }, 5000)
    local k1 <close> = ane.compile(src, { strict = true, chip = "m1" })
    k1:load()
    local ok, err = pcall(k1.eval, k1, { x })
    assert.is_false(ok)
    assert.truthy(err:find("beyond +-4094", 1, true), err)
    local k4 <close> = ane.compile(src, { strict = true, chip = "m4" })
    k4:load()
    assert.equal(5000, k4:eval({ x }):get(1, 1, 1, 1))
  end)

  it("allows -inf from a mask add when only softmax reads it", function()
    local src = R.program({ { "x", "fp16", { 1, 1, 32, 32 } } }, {
      'tensor<fp16, [1, 1, 32, 32]> m = add(x = x, y = fp16(-65504))[name = string("mask")];',
      'tensor<fp16, [1, 1, 32, 32]> y = softmax(x = m, axis = int32(-1))[name = string("p")];',
    }, { "y" })
    local k <close> = ane.compile(src, { strict = true })
    k:load()
    local x = ane.zeros({ 1, 1, 32, 32 })
    for j = 2, 32 do x:set(1, 1, 1, j, -100) end -- -65504 - 100 overflows to -inf in fp16
    local y = k:eval { x }
    assert.equal(1, y:get(1, 1, 1, 1))
    assert.equal(0, y:get(1, 1, 1, 2))
    assert.near(1 / 32, y:get(1, 1, 2, 1), 1e-3)
    -- a row masked everywhere is NaN (mil-reference.md 7.4 #11): strict mode names the softmax
    for j = 1, 32 do x:set(1, 1, 1, j, -100) end
    local ok, err = pcall(k.eval, k, { x })
    assert.is_false(ok)
    assert.truthy(err:find("softmax 'p' produced NaN", 1, true), err)
  end)
end)

describe("precision modes", function()
  it("fp16 mode rounds fp32 inputs read by compute ops; fp32 mode does not", function()
    -- reduce_sum over fp32: 1 + 2^-12 is not an fp16 value
    local src = R.program({ { "x", "fp32", { 1, 4 } } },
      { 'tensor<fp32, [1, 1]> y = reduce_sum(x = x, axes = tensor<int32, [1]>([1]), keep_dims = bool(true))[name = string("s")];' }, { "y" })
    local x = { 1 + 2 ^ -12, 1 + 2 ^ -12, 1 + 2 ^ -12, 1 + 2 ^ -12 }
    assert.same({ 4 }, R.run(src, { { "fp32", { 1, 4 }, x } }))
    assert.same({ 4 + 2 ^ -10 }, R.run(src, { { "fp32", { 1, 4 }, x } }, { precision = "fp32" }))
  end)

  it("fp16-declared values round in both modes", function()
    local src = R.program({ { "x", "fp16", { 2 } } },
      { 'tensor<fp16, [2]> y = real_div(x = x, y = fp16(3))[name = string("d")];' }, { "y" })
    local a = R.run(src, { { "fp16", { 2 }, { 1, 2 } } })
    local b = R.run(src, { { "fp16", { 2 }, { 1, 2 } } }, { precision = "fp32" })
    assert.same(a, b)
    assert.same({ R.f16(1 / 3), R.f16(2 / 3) }, a)
  end)

  it("ANE_PRECISION=fp32 sets the default for a run", function()
    local script = H.tmpfile([[
      local ane = require "ane"
      local R = require "cpu_ref"
      local src = R.program({ { "x", "fp32", { 1, 4 } } },
        { 'tensor<fp32, [1, 1]> y = reduce_sum(x = x, axes = tensor<int32, [1]>([1]), keep_dims = bool(true))[name = string("s")];' }, { "y" })
      local v = 1 + 2 ^ -12
      io.write(("%.10g"):format(R.run(src, { { "fp32", { 1, 4 }, { v, v, v, v } } })[1]))
    ]])
    assert.equal("4", (H.run({ "env", "ANE_PRECISION=fp16", H.ane_bin, script })))
    assert.equal(("%.10g"):format(4 + 2 ^ -10), (H.run({ "env", "ANE_PRECISION=fp32", H.ane_bin, script })))
  end)
end)

describe("strict mode, round", function()
  it("flags ties that the ANE rounds away from zero and values >= 1024", function()
    local src = R.program({ { "x", "fp16", { 1, 8, 1, 32 } } },
      { 'tensor<fp16, [1, 8, 1, 32]> y = round(x = x)[name = string("r")];' }, { "y" })
    ane.set_compile_budget(-1)
    local k <close> = ane.compile(src, { strict = true })
    k:load()
    local x = ane.full({ 1, 8, 1, 32 }, 1.25)
    x:set(1, 1, 1, 1, 1.5) -- tie: both rules give 2
    assert.equal(2, k:eval({ x }):get(1, 1, 1, 1))
    x:set(1, 1, 1, 2, 2.5) -- tie: even gives 2, the ANE 3
    local ok, err = pcall(k.eval, k, { x })
    assert.is_false(ok)
    assert.truthy(err:find("round 'r' rounds a tie to even", 1, true), err)
    x:set(1, 1, 1, 2, 1025)
    ok, err = pcall(k.eval, k, { x })
    assert.is_false(ok)
    assert.truthy(err:find("mis-rounds", 1, true), err)
  end)
end)

describe("compile options", function()
  it("compiles the function named by opts.function", function()
    local src = [[
program(1.3)
{
    func main<ios18>(tensor<fp16, [1, 4]> x) {
        tensor<fp16, [1, 4]> y = relu(x = x)[name = string("r")];
    } -> (y);
    func other<ios18>(tensor<fp16, [2, 2]> a) {
        tensor<fp16, [2, 2]> b = mul(x = a, y = fp16(3))[name = string("m")];
    } -> (b);
}
]]
    local k <close> = ane.compile(src, { ["function"] = "other" })
    assert.same({ { name = "a", dtype = "fp16", shape = { 2, 2 } } }, k.inputs)
    k:load()
    assert.same({ 3, -6, 0, 1.5 }, R.flat(k:eval { t({ 1, -2, 0, 0.5 }, { 2, 2 }) }))
    local m <close> = ane.compile(src)
    assert.equal("x", m.inputs[1].name)
  end)

  it("threads = 1 gives the same results as the default", function()
    local x = R.values(64 * 256, -3, 3, 11)
    local src = R.program({ { "x", "fp16", { 1, 64, 1, 256 } } }, {
      'tensor<fp16, [1, 64, 1, 256]> s = sigmoid(x = x)[name = string("s")];',
      'tensor<fp16, [1, 64, 1, 256]> y = softmax(x = s, axis = int32(1))[name = string("p")];',
    }, { "y" })
    local a = R.run(src, { { "fp16", { 1, 64, 1, 256 }, x } })
    local b = R.run(src, { { "fp16", { 1, 64, 1, 256 }, x } }, { threads = 1 })
    assert.same(a, b)
  end)
end)

describe("ane.sleep", function()
  it("blocks for at least the time asked and checks its argument", function()
    local t0 = ane.clock()
    assert.is_nil(ane.sleep(0.02))
    assert.is_true(ane.clock() - t0 >= 0.02)
    ane.sleep(0)
    assert.has_error(function() ane.sleep(-1) end, "bad argument #1 to 'sleep' (seconds must be in [0, 86400])")
    assert.has_error(function() ane.sleep("x") end)
  end)
end)
