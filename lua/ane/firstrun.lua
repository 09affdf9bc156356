--- ane.firstrun: `ane selftest --report FILE.json`, the questions only a Mac's first run answers.
--
-- Each case runs in a child process (`ane selftest --case NAME`, which prints one JSON line), so
-- a case that crashes the process is recorded as crashed and the others still run. A case
-- compiles its programs on the ane backend, evaluates them on seeded inputs and compares with
-- the cpu backend. The questions (docs/mac.md "First run"):
--   * request index order: declaration, by name or by size (maderix's README reports 0x1d for
--     several inputs): three inputs and, separately, three outputs declared in reverse
--     alphabetical order with sizes that make the three orders three different permutations,
--     each evaluated under every hypothesis (k:ane_configure{io_order = ...}); the one that gives
--     the right values is the answer;
--   * a two-function program (procedure index 1);
--   * whether an output surface can be the next kernel's input (ane.chain; another project saw
--     statusType 0x9), and the staged copy;
--   * a maderix-style conv with blob weights, the same without [buildInfo], the same in the 1.0
--     dialect, rows that are not a multiple of 64 bytes, perf stats with hwExecutionTime.
local ane = require "ane"

local M = {}

-- fp16 tolerance: the ANE computes in fp16; the cpu backend rounds through fp16 too, but
-- accumulation order differs.
local TOL = { abs = 2e-2, rel = 2e-2 }
M.TOL = TOL

-- max |a - b| and the count of elements outside TOL (b is the reference)
local function max_diff(a, b)
  local n = a:numel()
  local ta = { string.unpack(string.rep("<f", n), a:clone("fp32"):bytes()) }
  local tb = { string.unpack(string.rep("<f", n), b:clone("fp32"):bytes()) }
  local worst, bad = 0, 0
  for i = 1, n do
    local d = math.abs(ta[i] - tb[i])
    if d > worst then worst = d end
    if d > TOL.abs + TOL.rel * math.abs(tb[i]) then bad = bad + 1 end
  end
  return worst, bad
end
M.compare = max_diff

-- ---------------------------------------------------------------- programs
local CONV = [[
program(1.3)
[buildInfo = dict<string, string>({{"coremlc-component-MIL", "3510.2.1"}, {"coremlc-version", "3505.4.1"}})]
{
    func main<ios18>(tensor<fp16, [1, 64, 1, 32]> x) {
        tensor<fp16, [128, 64, 1, 1]> w = const()[name = string("w"), val = tensor<fp16, [128, 64, 1, 1]>(BLOBFILE(path = string("@model_path/weights/w.bin"), offset = uint64(64)))];
        tensor<int32, [2]> strides = const()[name = string("strides"), val = tensor<int32, [2]>([1, 1])];
        tensor<int32, [2]> dil = const()[name = string("dil"), val = tensor<int32, [2]>([1, 1])];
        tensor<int32, [4]> pad = const()[name = string("pad"), val = tensor<int32, [4]>([0, 0, 0, 0])];
        string pad_mode = const()[name = string("pad_mode"), val = string("valid")];
        int32 groups = const()[name = string("groups"), val = int32(1)];
        tensor<fp16, [1, 128, 1, 32]> y = conv(dilations = dil, groups = groups, pad = pad, pad_type = pad_mode, strides = strides, weight = w, x = x)[name = string("proj")];
    } -> (y);
}
]]

local CONV_10 = [[
program(1.0)
[buildInfo = dict<tensor<string, []>, tensor<string, []>>({{"coremlc-version", "3505.4.1"}})]
{
    func main<ios16>(tensor<fp16, [1, 64, 1, 32]> x) {
        tensor<fp16, [128, 64, 1, 1]> w = const()[name = tensor<string, []>("w"), val = tensor<fp16, [128, 64, 1, 1]>(BLOBFILE(path = tensor<string, []>("@model_path/weights/w.bin"), offset = tensor<uint64, []>(64)))];
        tensor<int32, [2]> strides = const()[name = tensor<string, []>("strides"), val = tensor<int32, [2]>([1, 1])];
        tensor<int32, [2]> dil = const()[name = tensor<string, []>("dil"), val = tensor<int32, [2]>([1, 1])];
        tensor<int32, [4]> pad = const()[name = tensor<string, []>("pad"), val = tensor<int32, [4]>([0, 0, 0, 0])];
        tensor<string, []> pad_mode = const()[name = tensor<string, []>("pad_mode"), val = tensor<string, []>("valid")];
        tensor<int32, []> groups = const()[name = tensor<string, []>("groups"), val = tensor<int32, []>(1)];
        tensor<fp16, [1, 128, 1, 32]> y = conv(dilations = dil, groups = groups, pad = pad, pad_type = pad_mode, strides = strides, weight = w, x = x)[name = tensor<string, []>("proj")];
    } -> (y);
}
]]

-- inputs declared c, b, a with sizes b < c < a: declaration (c, b, a), name (a, b, c) and size
-- (b, c, a) are three different permutations; y mixes them with weights 1, 10, 100
local INPUTS = [[
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
        tensor<fp16, [1, 1, 1, 32]> y = add(x = cb, y = a100)[name = string("y")];
    } -> (y);
}
]]

-- outputs declared r, q, p with sizes q < r < p, each a different multiple of x
local OUTPUTS = [[
program(1.3)
{
    func main<ios18>(tensor<fp16, [1, 4, 1, 32]> x) {
        tensor<int32, [4]> b2 = const()[name = string("b2"), val = tensor<int32, [4]>([0, 0, 0, 0])];
        tensor<int32, [4]> e2 = const()[name = string("e2"), val = tensor<int32, [4]>([1, 2, 1, 32])];
        tensor<int32, [4]> e1 = const()[name = string("e1"), val = tensor<int32, [4]>([1, 1, 1, 32])];
        tensor<fp16, [1, 2, 1, 32]> x2 = slice_by_index(begin = b2, end = e2, x = x)[name = string("x2")];
        tensor<fp16, [1, 1, 1, 32]> x1 = slice_by_index(begin = b2, end = e1, x = x)[name = string("x1")];
        fp16 two = const()[name = string("two"), val = fp16(2)];
        fp16 three = const()[name = string("three"), val = fp16(3)];
        fp16 five = const()[name = string("five"), val = fp16(5)];
        tensor<fp16, [1, 2, 1, 32]> r = mul(x = x2, y = two)[name = string("r")];
        tensor<fp16, [1, 1, 1, 32]> q = mul(x = x1, y = three)[name = string("q")];
        tensor<fp16, [1, 4, 1, 32]> p = mul(x = x, y = five)[name = string("p")];
    } -> (r, q, p);
}
]]

local TWO_FUNCS = [[
program(1.3)
{
    func main<ios18>(tensor<fp16, [1, 4, 1, 32]> x) {
        tensor<fp16, [1, 4, 1, 32]> y = add(x = x, y = x)[name = string("dbl")];
    } -> (y);
    func second<ios18>(tensor<fp16, [1, 4, 1, 32]> x) {
        tensor<fp16, [1, 4, 1, 32]> y = mul(x = x, y = x)[name = string("sq")];
    } -> (y);
}
]]

local function scale_prog(s, name)
  return ([[
program(1.3)
{
    func main<ios18>(tensor<fp16, [1, 4, 1, 32]> x) {
        fp16 s = const()[name = string("s"), val = fp16(%s)];
        tensor<fp16, [1, 4, 1, 32]> y = mul(x = x, y = s)[name = string("%s")];
    } -> (y);
}
]]):format(s, name)
end

local ROWS_20 = [[
program(1.3)
{
    func main<ios18>(tensor<fp16, [1, 4, 1, 20]> x) {
        tensor<fp16, [1, 4, 1, 20]> y = add(x = x, y = x)[name = string("dbl")];
    } -> (y);
}
]]

-- ---------------------------------------------------------------- helpers
local function weights_dir()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p '" .. dir .. "/weights'"))
  local w = ane.rand({ 128, 64, 1, 1 }, { lo = -0.125, hi = 0.125, seed = 7 })
  local f = assert(io.open(dir .. "/weights/w.bin", "wb"))
  f:write((ane.mil_blob_write { w }))
  f:close()
  return dir
end

local function compile(src, opts)
  opts = opts or {}
  local k = ane.compile(src, opts)
  k:load()
  return k
end

-- the ane result against the cpu backend's on the same inputs
local function against_cpu(src, inputs, opts)
  opts = opts or {}
  local r = {}
  local kc = compile(src, { backend = "cpu", model_path = opts.model_path, ["function"] = opts["function"] })
  local want = { kc:eval(inputs) }
  kc:close()
  local ka = compile(src, { backend = "ane", model_path = opts.model_path, ["function"] = opts["function"] })
  if opts.configure then opts.configure(ka) end
  local got = { ka:eval(inputs) }
  r.max_abs_diff, r.mismatches = 0, 0
  for i = 1, #want do
    local d, bad = max_diff(got[i], want[i])
    r.max_abs_diff = math.max(r.max_abs_diff, d)
    r.mismatches = r.mismatches + bad
  end
  r.ok = r.mismatches == 0
  return r, ka
end

-- ---------------------------------------------------------------- cases
local CASES = {}
local ORDER = {}
local function case(name, fn, what) CASES[name] = { fn = fn, what = what }; ORDER[#ORDER + 1] = name end

case("conv_blob", function()
  local dir = weights_dir()
  local r, k = against_cpu(CONV, { ane.rand({ 1, 64, 1, 32 }, { lo = -2, hi = 2, seed = 1 }) }, { model_path = dir })
  k:close()
  os.execute("rm -rf '" .. dir .. "'")
  return r
end, "maderix-style 1x1 conv, fp16 blob weights")

case("no_build_info", function()
  local dir = weights_dir()
  local src = CONV:gsub("%[buildInfo[^\n]*\n", "")
  local r, k = against_cpu(src, { ane.rand({ 1, 64, 1, 32 }, { lo = -2, hi = 2, seed = 1 }) }, { model_path = dir })
  local f = io.open(k:ane_info().dir .. "/model.mil", "rb")
  local sent = f and f:read("a") or ""
  if f then f:close() end
  r.sent_build_info = sent:find("[buildInfo", 1, true) ~= nil
  k:close()
  os.execute("rm -rf '" .. dir .. "'")
  return r
end, "the conv without [buildInfo] (the backend adds coremlc's)")

case("dialect_1_0", function()
  local dir = weights_dir()
  local r, k = against_cpu(CONV_10, { ane.rand({ 1, 64, 1, 32 }, { lo = -2, hi = 2, seed = 1 }) }, { model_path = dir })
  k:close()
  os.execute("rm -rf '" .. dir .. "'")
  return r
end, "the conv in the program(1.0) dialect")

-- Every hypothesis on the same kernel; the right values under exactly one of them answer it.
local function order_trials(src, inputs, check)
  local k = compile(src, { backend = "ane" })
  local info = k:ane_info()
  local r = { described = info.io_source == "description", trials = {} }
  if r.described then r.described_indices = { inputs = info.input_indices, outputs = info.output_indices } end
  local right = {}
  for _, h in ipairs { "declaration", "name", "size" } do
    k:ane_configure { io_order = h }
    local ok, a, b, c = pcall(k.eval, k, inputs)
    local t = { order = h }
    if not ok then t.error = tostring(a)
    else t.ok = check(a, b, c) end
    r.trials[#r.trials + 1] = t
    if t.ok then right[#right + 1] = h end
  end
  k:close()
  r.found = #right == 1 and right[1] or nil
  r.ok = r.found ~= nil
  if #right ~= 1 then r.note = #right == 0 and "no order gave the right values" or "several orders agreed" end
  return r
end

case("input_order", function()
  return order_trials(INPUTS, { ane.full({ 1, 2, 1, 32 }, 1, "fp16"), ane.full({ 1, 1, 1, 32 }, 2, "fp16"),
    ane.full({ 1, 4, 1, 32 }, 0.25, "fp16") }, function(y) return y:get(1, 1, 1, 7) == 2 + 20 + 100 end)
end, "three inputs c, b, a of sizes 2, 1, 4 channels: which request index is which")

case("output_order", function()
  return order_trials(OUTPUTS, { ane.full({ 1, 4, 1, 32 }, 1, "fp16") }, function(r, q, p)
    return r:get(1, 2, 1, 3) == 2 and q:get(1, 1, 1, 3) == 3 and p:get(1, 4, 1, 3) == 5
  end)
end, "three outputs r, q, p of sizes 2, 1, 4 channels: which request index is which")

case("two_functions", function()
  local x = ane.full({ 1, 4, 1, 32 }, 3, "fp16")
  local r, k = against_cpu(TWO_FUNCS, { x }, { ["function"] = "second" })
  r.procedure = k:ane_info().procedure
  k:close()
  return r
end, "function 'second' of a two-function program (procedure index 1, local I/O indices)")

case("chain_direct", function()
  local k1, k2 = compile(scale_prog(2, "a"), { backend = "ane" }), compile(scale_prog(3, "b"), { backend = "ane" })
  local ch = ane.chain { k1, k2 }
  local y = ch:run { ane.full({ 1, 4, 1, 32 }, 1, "fp16") }
  local r = { ok = y:get(1, 4, 1, 32) == 6, staged = ch:staged() }
  r.direct = #r.staged == 0
  ch:close(); k1:close(); k2:close()
  return r
end, "kernel 1's output surface bound as kernel 2's input (ane.chain stages a copy if refused)")

case("chain_staged", function()
  local k1, k2 = compile(scale_prog(2, "a"), { backend = "ane" }), compile(scale_prog(3, "b"), { backend = "ane" })
  local h = k1:eval { ane.full({ 1, 4, 1, 32 }, 1, "fp16") }
  local y = k2:eval { h:clone() } -- a heap copy: staged through k2's own surface
  local r = { ok = y:get(1, 4, 1, 32) == 6 }
  k1:close(); k2:close()
  return r
end, "the same through a copy of kernel 1's output")

case("rows_not_64", function()
  local r, k = against_cpu(ROWS_20, { ane.rand({ 1, 4, 1, 20 }, { lo = -2, hi = 2, seed = 3 }) })
  r.warnings = #k.warnings
  k:close()
  return r
end, "innermost rows of 40 bytes (not a multiple of 64)")

case("perf_stats", function()
  local k = ane.compile(scale_prog(2, "a"), { backend = "ane" })
  k:ane_configure { perf_mask = 1 }
  k:load()
  k:eval { ane.full({ 1, 4, 1, 32 }, 1, "fp16") }
  local p = k:perf_stats()
  k:close()
  return { ok = true, hw_ns = p.hw_ns, eval_ns = p.eval_ns, filled = p.hw_ns ~= nil }
end, "perfStatsMask = 1, hwExecutionTime read as unsigned long long")

M.cases = ORDER
M._programs = { CONV = CONV, CONV_10 = CONV_10, INPUTS = INPUTS, OUTPUTS = OUTPUTS, TWO_FUNCS = TWO_FUNCS }

--- Run one case in this process; the result table (never raises: an error is recorded).
function M.run_case(name)
  local c = CASES[name]
  if not c then return nil, "unknown case '" .. tostring(name) .. "'" end
  ane.set_compile_budget(-1)
  local ok, r = pcall(c.fn)
  if not ok then r = { ok = false, error = tostring(r) } end
  r.name, r.what = name, c.what
  return r
end

local function shquote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- One case in a child process: its JSON line, or what killed it.
local function run_child(exe, name)
  local cjson = require "cjson"
  local p = io.popen(shquote(exe) .. " selftest --case " .. name .. " 2>&1", "r")
  local out = p:read("a")
  local _, how, code = p:close()
  local line = out:match("FIRSTRUN (%b{})")
  local ok, r = pcall(cjson.decode, line or "")
  if ok and type(r) == "table" then return r end
  r = { name = name, what = CASES[name].what, ok = false }
  -- popen runs the child under sh, which reports a child killed by signal N as exit 128 + N
  if how == "exit" and code and code > 128 and code < 160 then how, code = "signal", code - 128 end
  r.crashed = (how == "signal" and "signal " or "exit ") .. tostring(code)
  r.output = out:sub(-400)
  return r
end

--- ane selftest --case NAME: the child's side, one line "FIRSTRUN {json}" on stdout.
function M.child(name)
  local r, err = M.run_case(name)
  if not r then io.stderr:write("ane selftest: ", err, "\n") return 2 end
  io.stdout:write("FIRSTRUN ", require("cjson").encode(r), "\n")
  return 0
end

--- ane selftest --report FILE: every case in its own process, a table, and the JSON report.
function M.report(path, exe)
  local cjson = require "cjson"
  exe = exe or (arg and arg[-1]) or "ane"
  local fw = ane.ane_framework and ane.ane_framework() or { available = false, why = "no ane backend in this build" }
  local facts = {}
  for k, v in (fw.info or ""):gmatch("([%w_]+)=([^\n]*)") do facts[k] = v end
  local rep = { version = ane.version, os = facts.os, chip = facts.chip, platform = facts.platform,
    framework = { path = fw.path, available = fw.available, why = fw.why }, cases = {}, findings = {} }
  if not fw.available then
    print("selftest --report: the ane backend is unavailable: " .. tostring(fw.why))
    rep.unavailable = fw.why
  else
    for _, name in ipairs(ORDER) do
      local r = run_child(exe, name)
      rep.cases[#rep.cases + 1] = r
      local detail = r.crashed and ("crashed: " .. r.crashed) or r.error or r.note
        or (r.found and ("order: " .. r.found .. (r.described and " (the model described it)" or "")))
        or (r.direct ~= nil and (r.direct and "direct binding works" or "direct binding refused; ane.chain stages a copy"))
        or (r.filled ~= nil and (r.filled and ("hwExecutionTime " .. r.hw_ns .. " ns") or "hwExecutionTime not filled"))
        or (r.max_abs_diff and string.format("max|diff| %.3g", r.max_abs_diff)) or ""
      print(string.format("%-14s %-5s %s", name, r.ok and "ok" or "FAIL", detail))
    end
    local by = {}
    for _, r in ipairs(rep.cases) do by[r.name] = r end
    local f = rep.findings
    f.input_order = by.input_order and (by.input_order.found or "unknown")
    f.output_order = by.output_order and (by.output_order.found or "unknown")
    f.described = by.input_order and by.input_order.described or false
    f.chain_direct = by.chain_direct and by.chain_direct.ok and by.chain_direct.direct or false
    f.build_info_needed = by.no_build_info and by.conv_blob and by.conv_blob.ok and by.no_build_info.ok
      and "unknown (the backend always sends one)" or nil
    f.hw_execution_time = by.perf_stats and by.perf_stats.filled or false
    if f.input_order ~= "unknown" and f.input_order == f.output_order and f.input_order ~= "declaration"
      and not f.described then
      f.set = "ANE_IO_ORDER=" .. f.input_order
      print("\nthe device reads request indices by " .. f.input_order .. ": run with " .. f.set)
    end
  end
  local out, err = io.open(path, "w")
  if not out then
    io.stderr:write("ane selftest: cannot write ", path, ": ", tostring(err), "\n")
    return 1
  end
  out:write(cjson.encode(rep), "\n")
  out:close()
  print("report: " .. path .. " (send it with the output above)")
  for _, r in ipairs(rep.cases) do if not r.ok then return 1 end end
  return rep.unavailable and 3 or 0 -- as `ane selftest`: 3 = the backend is unavailable here
end

return M
