-- The ane backend against the stand-in framework (spec/support/standin): the documented protocol
-- (ane-private-api.md 2, 4, 5), IOSurface tensors, failure injection, the compile budget, leaks.
local ane = require "ane"
local H = require "helpers"

local ok_st, st = pcall(require, "ane_standin")
if not ok_st then
  -- The stand-in is built on every non-Apple system; missing here means the build is broken.
  error("ane_standin module not found: " .. tostring(st))
end

local function events()
  local out = {}
  for _, line in ipairs(st.events()) do
    local name, rest = line:match("^(%S+)%s*(.*)$")
    local ev = { name = name, line = line }
    for k, v in rest:gmatch("(%S+)=(%S+)") do ev[k] = v end
    out[#out + 1] = ev
  end
  return out
end

local function names(evs, filter)
  local out = {}
  for _, e in ipairs(evs) do
    if not filter or filter[e.name] then out[#out + 1] = e.name end
  end
  return out
end

local function find(evs, name)
  for _, e in ipairs(evs) do if e.name == name then return e end end
end

local function count(evs, name)
  local n = 0
  for _, e in ipairs(evs) do if e.name == name then n = n + 1 end end
  return n
end

local function dir_exists(path)
  local f = io.open(path .. "/model.mil", "rb")
  if f then f:close() return true end
  return false
end

-- fp16 bytes of a list of numbers (through an ane.Tensor, so conversion is the project's own).
local function fp16_bytes(vals)
  local t = ane.from_table(vals, "fp16")
  return t:bytes()
end

-- A one-tensor weight blob in the documented layout (section 3.1), built here independently;
-- data padded to 64 bytes as 3.2 recommends (what the project's blob writer does too).
local function blob(data, dtype_code)
  local n = #data
  return string.pack("<I4I4", 1, 2) .. string.rep("\0", 56)
      .. string.pack("<I4I4I8I8", 0xDEADBEEF, dtype_code or 1, n, 128) .. string.rep("\0", 40)
      .. data .. string.rep("\0", (64 - n % 64) % 64)
end

local SRC_ADD = [[
program(1.3)
{
    func main<ios18>(tensor<fp16, [1, 4, 1, 32]> x) {
        tensor<fp16, [1, 4, 1, 32]> y = add(x = x, y = x)[name = string("dbl")];
    } -> (y);
}
]]

local SRC_W = [[
program(1.3)
{
    func main<ios18>(tensor<fp16, [1, 8, 1, 32]> x) {
        tensor<fp16, [1, 8, 1, 1]> w = const()[name = string("w"), val = tensor<fp16, [1, 8, 1, 1]>(BLOBFILE(path = string("@model_path/weights/w.bin"), offset = uint64(64)))];
        tensor<fp16, [1, 8, 1, 32]> y = mul(x = x, y = w)[name = string("scale")];
    } -> (y);
}
]]

local SRC_FP32 = [[
program(1.3)
{
    func main<ios18>(tensor<fp32, [1, 4, 1, 32]> x) {
        string to16 = const()[name = string("to16"), val = string("fp16")];
        tensor<fp16, [1, 4, 1, 32]> xh = cast(dtype = to16, x = x)[name = string("cin")];
        tensor<fp16, [1, 4, 1, 32]> yh = mul(x = xh, y = xh)[name = string("sq")];
        string to32 = const()[name = string("to32"), val = string("fp32")];
        tensor<fp32, [1, 4, 1, 32]> y = cast(dtype = to32, x = yh)[name = string("cout")];
    } -> (y);
}
]]

local WVALS = { 0.5, 1, 1.5, 2, -1, 0.25, 3, -2 }

local function weight_dir()
  local d = H.tmpdir("weights")
  H.write(d .. "/weights/w.bin", blob(fp16_bytes(WVALS)))
  return d
end

local function compile(src, opts)
  opts = opts or {}
  opts.backend = opts.backend or "ane"
  local k = ane.compile(src, opts)
  k:load()
  return k
end

describe("ane backend (stand-in framework)", function()
  local saved_budget

  setup(function()
    saved_budget = ane.compile_budget()
    ane.set_compile_budget(-1) -- this file compiles a lot; the budget has its own test
  end)
  teardown(function() ane.set_compile_budget(saved_budget) end)
  before_each(function() st.reset() end)

  it("is registered and available through the stand-in, while cpu stays the default here", function()
    local found
    for _, b in ipairs(ane.backends()) do if b.name == "ane" then found = b end end
    assert.is_truthy(found)
    assert.is_true(found.available)
    assert.equals("ane (stand-in at " .. st.path() .. ")", found.label)
    local fw = ane.ane_framework()
    assert.is_true(fw.available)
    assert.is_true(fw.standin)
    assert.equals(st.path(), fw.path)
    assert.matches("platform=standin", fw.info, 1, true)
    assert.matches("ane_subtype=standin", fw.info, 1, true)
    if not os.getenv("ANE_BACKEND") then assert.equals("cpu", ane.backend()) end
  end)

  it("follows the documented call order from compile to free, each call inside a pool", function()
    local k = compile(SRC_ADD)
    local x = k:new_input(1)
    x:fill(1)
    k:eval { x }
    k:close()
    local evs = events()
    local core = { ["desc.create"] = true, ["model.create"] = true, ["model.hex"] = true,
      ["model.compile"] = true, ["model.load"] = true, ["request.create"] = true,
      ["model.eval"] = true, ["model.unload"] = true }
    assert.same({ "desc.create", "model.create", "model.hex", "model.compile", "model.load",
      "request.create", "model.eval", "model.unload" }, names(evs, core))
    for _, e in ipairs(evs) do
      if core[e.name] then
        assert.is_true(tonumber(e.pool) >= 1, e.line .. " ran outside an autorelease pool")
      end
      assert.is_nil(e.name:match("^error%."), e.line)
    end
    assert.equals("21", find(evs, "model.compile").qos)
    assert.equals("empty", find(evs, "model.compile").options)
    assert.equals("21", find(evs, "model.load").qos)
    assert.equals("nil", find(evs, "desc.create").options)
    -- teardown order (5.3): unload, then the request, then the model
    local seq = {}
    for _, e in ipairs(evs) do
      if e.name == "model.unload" then seq[#seq + 1] = "unload"
      elseif e.name == "dealloc" then seq[#seq + 1] = e.class end
    end
    local pos = {}
    for i, v in ipairs(seq) do pos[v] = pos[v] or i end
    assert.is_true(pos.unload < pos._ANERequest and pos._ANERequest < pos._ANEInMemoryModel)
  end)

  it("sends the source's own dialect, and a [buildInfo] when the program has none", function()
    -- a program(1.0) source with <ios16> functions stays 1.0 (tensor<T, []> scalars), never the
    -- untested 1.3-with-ios16 mix
    local v10 = [[
program(1.0)
{
    func main<ios16>(tensor<fp16, [1, 4, 1, 32]> x) {
        tensor<fp16, [1, 4, 1, 32]> y = add(x = x, y = x)[name = tensor<string, []>("dbl")];
    } -> (y);
}
]]
    compile(v10):close()
    local mil = st.mil()
    assert.matches("^program%(1%.0%)\n", mil)
    assert.matches('name = tensor<string, []>("dbl")', mil, 1, true)
    assert.matches('[buildInfo = dict<tensor<string, []>, tensor<string, []>>({{"coremlc-version", "3505.4.1"}})]', mil, 1, true)
    st.reset()
    compile(SRC_ADD):close() -- 1.3 without buildInfo gets coremlc's two pairs
    mil = st.mil()
    assert.matches("^program%(1%.3%)\n%[buildInfo = dict<string, string>%(", mil)
    assert.matches('{"coremlc-component-MIL", "3510.2.1"}, {"coremlc-version", "3505.4.1"}', mil, 1, true)
    -- one that has its own keeps it, and gets no second one
    st.reset()
    compile((SRC_ADD:gsub("program%(1%.3%)\n", 'program(1.3)\n[buildInfo = dict<string, string>({{"mine", "1"}})]\n'))):close()
    mil = st.mil()
    assert.matches('{{"mine", "1"}}', mil, 1, true)
    assert.is_nil(mil:find("coremlc", 1, true))
  end)

  it("pre-populates NSTemporaryDirectory()/hex with model.mil and the weight blobs, byte for byte", function()
    local d = weight_dir()
    local k = compile(SRC_W, { model_path = d })
    local info = k:ane_info()
    assert.equals(info.hex, info.dir:match("([^/]+)$"))
    assert.is_true(dir_exists(info.dir))
    -- what the descriptor received
    local mil = st.mil()
    assert.matches("BLOBFILE", mil, 1, true)
    local w = st.weights()
    assert.equals(1, #w)
    assert.equals("@model_path/weights/w.bin", w[1].key)
    assert.equals(0, w[1].offset)
    assert.equals(blob(fp16_bytes(WVALS)), w[1].data)
    -- what the directory held when compileWithQoS: ran
    local files = st.files()
    assert.equals(mil, files["model.mil"])
    assert.equals(w[1].data, files["weights/w.bin"])
    -- the blob layout itself (3.1): header, metadata at 64, data at 128
    local count_, version = string.unpack("<I4I4", w[1].data)
    local sentinel, dt, size, off = string.unpack("<I4I4I8I8", w[1].data, 65)
    assert.same({ 1, 2, 0xDEADBEEF, 1, 16, 128 }, { count_, version, sentinel, dt, size, off })
    local desc = find(events(), "desc.weight")
    assert.equals("@model_path/weights/w.bin", desc.key)
    assert.equals("0", desc.offset)
    k:close()
    assert.is_false(dir_exists(info.dir))
    os.remove(d .. "/weights/w.bin"); os.remove(d .. "/weights"); os.remove(d)
  end)

  it("gives the same outputs as the cpu backend, fp16 and fp32 at the boundary", function()
    local d = weight_dir()
    for _, case in ipairs { { SRC_W, { 1, 8, 1, 32 }, "fp16" }, { SRC_FP32, { 1, 4, 1, 32 }, "fp32" } } do
      local ka = compile(case[1], { model_path = d })
      local kc = compile(case[1], { model_path = d, backend = "cpu" })
      local x = ane.zeros(case[2], case[3])
      x:rand { lo = -2, hi = 2, seed = 7 }
      local ya = ka:eval { x }
      local yc = kc:eval { x }
      assert.equals(case[3], ya:dtype())
      assert.equals("iosurface", ya:storage_kind())
      assert.equals(yc:bytes(), ya:bytes())
      ka:close(); kc:close()
    end
    os.remove(d .. "/weights/w.bin"); os.remove(d .. "/weights"); os.remove(d)
  end)

  it("keeps inputs and outputs on IOSurfaces: written and read from Lua, chained without copies", function()
    local k1 = compile(SRC_ADD)
    local k2 = compile(SRC_ADD .. "\n") -- a different program text: its own model and hex
    local x = k1:new_input("x")
    assert.equals("iosurface", x:storage_kind())
    for c = 1, 4 do for s = 1, 32 do x:set(1, c, 1, s, (c - 1) * 32 + s) end end
    local y1 = k1:new_output(1)
    k1:eval({ x }, { y1 })
    local i1 = k1:ane_info()
    assert.equals(1, i1.direct_inputs)
    assert.equals(1, i1.direct_outputs)
    local y2 = k2:eval { y1 } -- the first kernel's output surface is the second's input
    assert.equals(1, k2:ane_info().direct_inputs)
    for c = 1, 4 do for s = 1, 32 do
      assert.equals(4 * ((c - 1) * 32 + s), y2:get(1, c, 1, s))
    end end
    local evs = events()
    local reqs = {}
    for _, e in ipairs(evs) do if e.name == "request.create" then reqs[#reqs + 1] = e end end
    assert.equals(2, #reqs)
    assert.equals(reqs[1].outputs, reqs[2].inputs)
    assert.equals("0", reqs[1].in_idx)
    assert.equals("0", reqs[1].out_idx)
    assert.equals("nil", reqs[1].weights_buffer)
    assert.equals("0", reqs[1].proc)
    for _, e in ipairs(evs) do
      if e.name == "surface.create" then
        assert.equals("256", e.width); assert.equals("1", e.height); assert.equals("1", e.bpe)
        assert.equals("256", e.bpr); assert.equals("256", e.alloc); assert.equals("0", e.pixfmt)
      end
      if e.name == "model.eval" then assert.equals("0", e.locked) end
    end
    -- reusing the same surfaces reuses the request
    k1:eval({ x }, { y1 })
    assert.equals(2, count(events(), "request.create"))
    k1:close(); k2:close()
  end)

  it("binds only surfaces of the tensor's exact size; a view at the start of a larger one is staged", function()
    local kbig = compile([[
program(1.3)
{
    func main<ios18>(tensor<fp16, [1, 8, 1, 32]> x) {
        tensor<fp16, [1, 8, 1, 32]> y = add(x = x, y = x)[name = string("dbl8")];
    } -> (y);
}
]])
    local big = kbig:new_input(1) -- 512 bytes
    big:fill(0.5)
    local head = big:reshape { 8, 32 }:sub(1, 4):reshape { 1, 4, 1, 32 } -- offset 0, 256 bytes
    assert.equals("iosurface", head:storage_kind())
    local k = compile(SRC_ADD)
    st.reset()
    local y = k:eval { head }
    assert.equals(1, y:get(1, 4, 1, 32))
    assert.equals(0, k:ane_info().direct_inputs)
    for _, e in ipairs(events()) do
      if e.name == "surface.create" then assert.equals("256", e.alloc) end
    end
    k:close(); kbig:close()
  end)

  it("warns at compile for rows that are not a multiple of 64 bytes", function()
    local k = compile((SRC_ADD:gsub("32%]", "20]")))
    assert.equals(2, #k.warnings)
    assert.matches("^input 'x': innermost row of 40 bytes is not a multiple of 64", k.warnings[1])
    k:close()
    k = compile(SRC_ADD)
    assert.same({}, k.warnings)
    k:close()
  end)

  describe("request indices (docs/mac.md, First run)", function()
    -- three inputs declared c, b, a (reverse alphabetical) with sizes b < c < a, so declaration,
    -- name and size order are three different permutations; two outputs q (small), p (large)
    local SRC_IO = [[
program(1.3)
{
    func main<ios18>(tensor<fp16, [1, 2, 1, 32]> c, tensor<fp16, [1, 1, 1, 32]> b, tensor<fp16, [1, 4, 1, 32]> a) {
        tensor<int32, [1]> ax = const()[name = string("ax"), val = tensor<int32, [1]>([1])];
        bool kd = const()[name = string("kd"), val = bool(true)];
        tensor<fp16, [1, 1, 1, 32]> sc = reduce_sum(axes = ax, keep_dims = kd, x = c)[name = string("sc")];
        tensor<fp16, [1, 1, 1, 32]> sb = reduce_sum(axes = ax, keep_dims = kd, x = b)[name = string("sb")];
        tensor<fp16, [1, 1, 1, 32]> sa = reduce_sum(axes = ax, keep_dims = kd, x = a)[name = string("sa")];
        fp16 ten = const()[name = string("ten"), val = fp16(10)];
        fp16 hundred = const()[name = string("hundred"), val = fp16(100)];
        tensor<fp16, [1, 1, 1, 32]> b10 = mul(x = sb, y = ten)[name = string("b10")];
        tensor<fp16, [1, 1, 1, 32]> a100 = mul(x = sa, y = hundred)[name = string("a100")];
        tensor<fp16, [1, 1, 1, 32]> cb = add(x = sc, y = b10)[name = string("cb")];
        tensor<fp16, [1, 1, 1, 32]> q = add(x = cb, y = a100)[name = string("q")];
        tensor<fp16, [1, 4, 1, 32]> p = mul(x = a, y = ten)[name = string("p")];
    } -> (q, p);
}
]]
    local ORDERS = { declaration = 0, name = 1, size = 2 }
    local WANT_IN = { declaration = { 0, 1, 2 }, name = { 2, 1, 0 }, size = { 1, 0, 2 } }
    local function run(k)
      local c, b, a = ane.full({ 1, 2, 1, 32 }, 1, "fp16"), ane.full({ 1, 1, 1, 32 }, 2, "fp16"),
        ane.full({ 1, 4, 1, 32 }, 0.25, "fp16")
      local ok, q, p = pcall(k.eval, k, { c, b, a })
      return ok and q:get(1, 1, 1, 5) == 2 + 20 + 100 and p:get(1, 4, 1, 9) == 2.5, q
    end

    for order, mode in pairs(ORDERS) do
      it("follows the model's own description when the device reads indices by " .. order, function()
        st.inject("io_order", mode)
        local k = compile(SRC_IO)
        local info = k:ane_info()
        assert.equals("description", info.io_source)
        assert.same(WANT_IN[order], info.input_indices)
        assert.is_true(run(k))
        k:close()
      end)

      it("without a description assumes declaration order (" .. order .. " device), and takes io_order when told", function()
        st.inject("io_order", mode)
        st.inject("describe", 0)
        local k = compile(SRC_IO)
        local info = k:ane_info()
        assert.equals("assumed", info.io_source)
        assert.equals("declaration", info.io_order)
        assert.equals(order == "declaration", (run(k)))
        k:ane_configure { io_order = order }
        info = k:ane_info()
        assert.equals("configured", info.io_source)
        assert.same(WANT_IN[order], info.input_indices)
        assert.is_true(run(k))
        k:close()
      end)
    end

    it("refuses an unknown io_order", function()
      local k = compile(SRC_ADD)
      assert.has_error(function() k:ane_configure { io_order = "random" } end,
        "bad argument #1 to 'ane_configure' (option 'io_order' must be \"declaration\", \"name\" or \"size\")")
      k:close()
    end)
  end)

  it("ane.chain binds output surfaces directly, and stages copies where the device refuses them (0x9)", function()
    for _, refuse in ipairs { 0, 1 } do
      st.reset()
      st.inject("refuse_external", refuse)
      local k1, k2 = compile(SRC_ADD), compile(SRC_ADD .. "\n")
      local ch <close> = ane.chain { k1, k2 }
      local x = ane.full({ 1, 4, 1, 32 }, 0.75, "fp16")
      for _ = 1, 2 do -- the second run keeps the choice made by the first
        local y = ch:run { x }
        assert.equals(3, y:get(1, 4, 1, 32))
      end
      assert.same(refuse == 1 and { 2 } or {}, ch:staged())
      local refused = 0
      for _, e in ipairs(events()) do
        if e.name == "model.eval" and e.ok == "0" then refused = refused + 1 end
      end
      assert.equals(refuse, refused) -- one refused direct eval, then copies
      ch:close(); k1:close(); k2:close()
    end
  end)

  it("copies heap tensors through staging surfaces", function()
    local k = compile(SRC_ADD)
    local x = ane.full({ 1, 4, 1, 32 }, 1.25, "fp16")
    local y = ane.zeros({ 1, 4, 1, 32 }, "fp16")
    k:eval({ x }, { y })
    assert.equals("heap", y:storage_kind())
    assert.equals(2.5, y:get(1, 3, 1, 7))
    local info = k:ane_info()
    assert.equals(0, info.direct_inputs)
    assert.equals(0, info.direct_outputs)
    k:close()
  end)

  it("shares one temp directory between identical programs until the last one closes", function()
    local a = compile(SRC_ADD)
    local b = compile(SRC_ADD)
    local da = a:ane_info().dir
    assert.equals(da, b:ane_info().dir)
    a:close()
    assert.is_true(dir_exists(da))
    b:close()
    assert.is_false(dir_exists(da))
  end)

  describe("failure injection", function()
    it("turns a compile NSError into a Lua error and cleans up", function()
      local base = st.live("*")
      st.inject("compile")
      local ok, err = pcall(ane.compile, SRC_ADD, { backend = "ane" })
      assert.is_false(ok)
      assert.matches("compile: ANE compile failed: .*InvalidMILProgram", err)
      assert.matches("domain com.apple.appleneuralengine", err, 1, true)
      local files_dir = find(events(), "model.compile")
      assert.is_truthy(files_dir)
      assert.equals(base, st.live("*"))
      -- the directory of the failed compile is gone; a retry works
      local k = compile(SRC_ADD)
      k:close()
    end)

    it("retries a failed load once after 100 ms (6.2)", function()
      local k = ane.compile(SRC_ADD, { backend = "ane" })
      st.inject("load", 0, 1)
      k:load()
      assert.equals(2, count(events(), "model.load"))
      assert.is_true(k.loaded)
      k:close()
    end)

    it("reports a load that fails twice with both errors", function()
      local k = ane.compile(SRC_ADD, { backend = "ane" })
      st.inject("load", 0, 2)
      local ok, err = pcall(k.load, k)
      assert.is_false(ok)
      assert.matches("load: ANE load failed twice %(retried after 100 ms%)", err)
      assert.matches("first attempt: .*slot busy", err)
      assert.is_false(k.loaded)
      k:close()
    end)

    it("turns an eval NSError into a Lua error; the kernel stays usable", function()
      local k = compile(SRC_ADD)
      local x = k:new_input(1)
      st.inject("eval")
      local ok, err = pcall(k.eval, k, { x })
      assert.is_false(ok)
      assert.matches("eval: ANE evaluate failed: .*statusType=0x9", err)
      local y = k:eval { x }
      assert.equals(0, y:get(1, 1, 1, 1))
      k:close()
    end)

    it("reports the framework's own compile limit clearly", function()
      st.inject("compile_limit", ane.ane_framework().compiles)
      local ok, err = pcall(ane.compile, SRC_ADD, { backend = "ane" })
      assert.is_false(ok)
      assert.matches("ANE compile failed: .*per%-process limit", err)
    end)

    it("stops at the process compile budget with what to do", function()
      local _, used = ane.compile_budget()
      ane.set_compile_budget(used + 1)
      local k = ane.compile(SRC_ADD, { backend = "ane" })
      local ok, err = pcall(ane.compile, SRC_ADD, { backend = "ane" })
      ane.set_compile_budget(-1)
      k:close()
      assert.is_false(ok)
      assert.matches("budget spent", err, 1, true)
      assert.matches("restart the process", err, 1, true)
      assert.is_nil(find(events(), "error.no_pool"))
    end)

    local function run_child(env, code)
      local argv = { "env" }
      for _, kv in ipairs(env) do argv[#argv + 1] = kv end
      argv[#argv + 1] = H.ane_bin
      argv[#argv + 1] = "-e"
      argv[#argv + 1] = code
      return H.run(argv)
    end

    local probe = [[
      local ane = require "ane"
      for _, b in ipairs(ane.backends()) do
        if b.name == "ane" then print("available", b.available, b.why) end
      end
      print("default", ane.backend())
      local ok, err = pcall(ane.compile, "program(1.3) {}", { backend = "ane" })
      print("compile", ok, err)
    ]]

    it("reports a missing class as unavailable and leaves cpu as the default", function()
      local out, ok = run_child({ "ANE_STANDIN_MISSING_CLASS=_ANERequest" }, probe)
      assert.is_true(ok, out)
      assert.matches("available\tfalse\tclass _ANERequest not found", out, 1, true)
      assert.matches("default\tcpu", out, 1, true)
      assert.matches("compile\tfalse\t.*not available here: class _ANERequest not found", out)
    end)

    it("without ANE_FRAMEWORK_PATH loads nothing: unavailable, not macOS", function()
      local out, ok = run_child({ "-u", "ANE_FRAMEWORK_PATH" }, probe)
      assert.is_true(ok, out)
      assert.matches("available\tfalse\tnot macOS (Apple's private framework exists only there)", out, 1, true)
      assert.matches("default\tcpu", out, 1, true)
    end)

    it("reports a missing framework as unavailable with the loader's reason", function()
      local out, ok = run_child({ "ANE_FRAMEWORK_PATH=/nonexistent/AppleNeuralEngine" }, probe)
      assert.is_true(ok, out)
      assert.matches("available\tfalse\tframework not found: ", out, 1, true)
      assert.matches("/nonexistent/AppleNeuralEngine", out, 1, true)
      assert.matches("default\tcpu", out, 1, true)
    end)
  end)

  describe("experimental calls", function()
    it("reload_weights rewrites the blob, unloads and loads without compiling; output stays baked", function()
      local d = weight_dir()
      local k = compile(SRC_W, { model_path = d })
      local x = ane.full({ 1, 8, 1, 32 }, 1, "fp16")
      local before = k:eval({ x }):bytes()
      st.reset()
      local tripled = {}
      for i, v in ipairs(WVALS) do tripled[i] = 3 * v end
      k:reload_weights("@model_path/weights/w.bin", ane.from_table(tripled, "fp16"):reshape { 1, 8, 1, 1 })
      assert.equals(blob(fp16_bytes(tripled)), H.read(k:ane_info().dir .. "/weights/w.bin"))
      assert.same({ "model.unload", "model.load" }, names(events(), { ["model.unload"] = true,
        ["model.load"] = true, ["model.compile"] = true }))
      assert.equals(before, k:eval({ x }):bytes()) -- as measured on M4/M5 (6.6)
      assert.has_error(function() k:reload_weights("weights/other.bin", "x") end,
        "reload_weights: the program has no weight file 'weights/other.bin'")
      assert.has_error(function() k:reload_weights("/etc/passwd", "x") end)
      k:close()
      os.remove(d .. "/weights/w.bin"); os.remove(d .. "/weights"); os.remove(d)
    end)

    it("evaluates on the real-time path when asked", function()
      local k = compile(SRC_ADD)
      k:ane_configure { path = "realtime" }
      local x = k:new_input(1)
      x:fill(2)
      local y = k:eval { x }
      assert.equals(4, y:get(1, 1, 1, 1))
      assert.equals("realtime", k:ane_info().last_path)
      assert.equals(1, count(events(), "client.eval_rt"))
      assert.equals(0, count(events(), "model.eval"))
      k:close()
    end)

    it("requests perf stats when a mask is set; hw time only when the OS fills it", function()
      local k = ane.compile(SRC_ADD, { backend = "ane" })
      k:ane_configure { perf_mask = 1, qos = 33 }
      k:load()
      local x = k:new_input(1)
      k:eval { x }
      local p = k:perf_stats()
      assert.is_nil(p.hw_ns) -- stays nil on real hardware (6.7)
      assert.is_true(p.eval_ns > 0)
      assert.equals("1", find(events(), "model.set_perf_mask").mask)
      assert.equals("array", find(events(), "request.create").perf)
      assert.equals("33", find(events(), "model.load").qos)
      st.inject("perf", 1)
      k:eval { x }
      assert.is_true(k:perf_stats().hw_ns > 0)
      k:close()
    end)

    it("refuses other backends' kernels and bad options", function()
      local kc = compile(SRC_ADD, { backend = "cpu" })
      assert.has_error(function() kc:ane_info() end)
      local ok, err = pcall(kc.ane_info, kc)
      assert.matches("needs a kernel of the ane backend, got one of 'cpu'", err, 1, true)
      kc:close()
      local k = compile(SRC_ADD)
      ok, err = pcall(k.ane_configure, k, { path = "fast" })
      assert.matches("option 'path' must be \"standard\" or \"realtime\"", err, 1, true)
      ok, err = pcall(k.ane_configure, k, { qos = 64 })
      assert.matches("0..63", err, 1, true)
      ok, err = pcall(k.ane_configure, k, { speed = 1 })
      assert.matches("unknown option 'speed'", err, 1, true)
      ok, err = pcall(k.new_input, k, 2)
      assert.matches("input 2 out of range (kernel has 1)", err, 1, true)
      ok, err = pcall(k.new_output, k, "z")
      assert.matches("the kernel has no output named 'z'", err, 1, true)
      k:close()
    end)
  end)

  it("leaks nothing over many compile/eval/close cycles", function()
    collectgarbage()
    local base_objs, base_surf = st.live("*"), st.live("IOSurface")
    local x = ane.full({ 1, 4, 1, 32 }, 1, "fp16")
    for i = 1, 30 do
      local k = compile(SRC_ADD)
      local xi = k:new_input(1)
      xi:fill(i)
      local y = k:eval { xi }
      k:eval { x }
      assert.equals(2 * i, y:get(1, 1, 1, 1))
      k:close()
      xi:close(); y:close()
    end
    collectgarbage()
    assert.equals(base_objs, st.live("*"))
    assert.equals(base_surf, st.live("IOSurface"))
    for _, e in ipairs(events()) do assert.is_nil(e.name:match("^error%."), e.line) end
    assert.equals(0, st.live("_ANEInMemoryModel"))
    assert.equals(0, st.live("_ANERequest"))
  end)
end)
