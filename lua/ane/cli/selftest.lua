--- `ane selftest [--out FILE] [--evals N] [--backend NAME]`: the first thing to run on a Mac.
-- `ane selftest --report FILE.json` answers what only hardware can (ane.firstrun: request index
-- order, multi-function programs, direct surface chaining, ...), each case in a child process.
-- Compiles a small set of kernels on the cpu backend and on the ANE backend (or NAME), evaluates
-- both on the same seeded inputs, compares the outputs, times compile and eval, and writes a JSON
-- report (default ane-selftest.json) to share. Exit status: 0 all kernels agree, 1 a kernel
-- failed or disagreed, 2 bad usage (the usage on stderr; --help prints it on stdout, exit 0),
-- 3 the backend is unavailable here (the report says why).
local ane = require "ane"

-- The ane-vs-cpu comparison and its fp16 tolerance are the first-run report's (ane.firstrun).
local firstrun = require "ane.firstrun"
local TOL, compare = firstrun.TOL, firstrun.compare

local function write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

-- Each case: MIL text, input shape/dtype, and the weight files it needs (name -> tensor).
local function cases()
  local rng = ane.rng(1234)
  local w = ane.rand({ 128, 64, 1, 1 }, { lo = -0.125, hi = 0.125, rng = rng })
  local b = ane.rand({ 128 }, { lo = -0.5, hi = 0.5, rng = rng })
  return {
    { name = "add_fp16_64x64", shape = { 1, 64, 1, 64 }, dtype = "fp16", mil = [[
program(1.3)
{
    func main<ios18>(tensor<fp16, [1, 64, 1, 64]> x) {
        tensor<fp16, [1, 64, 1, 64]> y = add(x = x, y = x)[name = string("dbl")];
    } -> (y);
}
]] },
    { name = "square_fp32_io", shape = { 1, 64, 1, 32 }, dtype = "fp32", mil = [[
program(1.3)
{
    func main<ios18>(tensor<fp32, [1, 64, 1, 32]> x) {
        string to16 = const()[name = string("to16"), val = string("fp16")];
        tensor<fp16, [1, 64, 1, 32]> xh = cast(dtype = to16, x = x)[name = string("cin")];
        tensor<fp16, [1, 64, 1, 32]> yh = mul(x = xh, y = xh)[name = string("sq")];
        string to32 = const()[name = string("to32"), val = string("fp32")];
        tensor<fp32, [1, 64, 1, 32]> y = cast(dtype = to32, x = yh)[name = string("cout")];
    } -> (y);
}
]] },
    { name = "conv1x1_64to128_blob_weights", shape = { 1, 64, 1, 32 }, dtype = "fp16",
      weights = { ["w.bin"] = w, ["b.bin"] = b }, mil = [[
program(1.3)
{
    func main<ios18>(tensor<fp16, [1, 64, 1, 32]> x) {
        tensor<fp16, [128, 64, 1, 1]> w = const()[name = string("w"), val = tensor<fp16, [128, 64, 1, 1]>(BLOBFILE(path = string("@model_path/weights/w.bin"), offset = uint64(64)))];
        tensor<fp16, [128]> b = const()[name = string("b"), val = tensor<fp16, [128]>(BLOBFILE(path = string("@model_path/weights/b.bin"), offset = uint64(64)))];
        tensor<int32, [2]> strides = const()[name = string("strides"), val = tensor<int32, [2]>([1, 1])];
        tensor<int32, [2]> dil = const()[name = string("dil"), val = tensor<int32, [2]>([1, 1])];
        tensor<int32, [4]> pad = const()[name = string("pad"), val = tensor<int32, [4]>([0, 0, 0, 0])];
        string pad_mode = const()[name = string("pad_mode"), val = string("valid")];
        int32 groups = const()[name = string("groups"), val = int32(1)];
        tensor<fp16, [1, 128, 1, 32]> y = conv(bias = b, dilations = dil, groups = groups, pad = pad, pad_type = pad_mode, strides = strides, weight = w, x = x)[name = string("proj")];
    } -> (y);
}
]] },
    { name = "softmax_channels_256", shape = { 1, 256, 1, 32 }, dtype = "fp16", mil = [[
program(1.3)
{
    func main<ios18>(tensor<fp16, [1, 256, 1, 32]> x) {
        int32 ax = const()[name = string("ax"), val = int32(1)];
        tensor<fp16, [1, 256, 1, 32]> y = softmax(axis = ax, x = x)[name = string("sm")];
    } -> (y);
}
]] },
  }
end

local function now() return os.clock() end -- CPU seconds; wall time from the kernel stats below


local function run_case(c, backend, dir, evals, x)
  local r = { backend = backend }
  local t0 = now()
  local ok, k = pcall(ane.compile, c.mil, { backend = backend, model_path = dir })
  if not ok then r.error = tostring(k) return r end
  local okl, errl = pcall(k.load, k)
  r.compile_load_cpu_s = now() - t0
  if not okl then k:close() r.error = tostring(errl) return r end
  local y
  local t1 = now()
  for _ = 1, evals do
    local oke, out = pcall(k.eval, k, { x })
    if not oke then r.error = tostring(out) break end
    y = out
  end
  r.eval_cpu_s = (now() - t1) / evals
  if backend ~= "cpu" and k.ane_info then
    local info = k:ane_info()
    r.hex, r.last_eval_ns = info.hex, k:perf_stats().eval_ns
  end
  k:close()
  return r, y
end

local USAGE = [[
usage: ane selftest [--out FILE] [--evals N] [--backend NAME]
       ane selftest --report FILE.json   the first-run questions, each case in a child process
  --out FILE      the JSON report (default ane-selftest.json)
  --evals N       timed evals per kernel and backend, a positive integer (default 20)
  --backend NAME  the backend compared with cpu (default ane)
Exit status: 0 every kernel agrees, 1 one failed or disagreed, 2 bad usage, 3 the backend is
unavailable here (the report says why).
]]

local function usage_error(msg)
  io.stderr:write("ane selftest: ", msg, "\n", USAGE)
  return 2
end

return function(args)
  local out, evals, backend = "ane-selftest.json", 20, "ane"
  local i = 1
  while i <= #args do
    local a = args[i]
    local function value()
      i = i + 1
      if args[i] == nil then error(usage_error("option '" .. a .. "' needs a value"), 0) end
      return args[i]
    end
    if a == "--report" or a == "--case" then
      local ok, v = pcall(value)
      if not ok then return v end
      return a == "--report" and firstrun.report(v) or firstrun.child(v)
    elseif a == "-h" or a == "--help" then
      io.stdout:write(USAGE)
      return 0
    elseif a == "--out" or a == "--evals" or a == "--backend" then
      local ok, v = pcall(value)
      if not ok then return v end
      if a == "--out" then
        out = v
      elseif a == "--evals" then
        evals = math.tointeger(tonumber(v))
        if not evals or evals < 1 then return usage_error("--evals expects a positive integer, got '" .. v .. "'") end
      else
        local known, err = pcall(require("ane.host").check_backend, v)
        if not known and tostring(err):match("^unknown backend") then return usage_error("--backend " .. v .. ": " .. err) end
        backend = v
      end
    else
      return usage_error("unknown argument '" .. a .. "'")
    end
    i = i + 1
  end

  local report = { version = ane.version, lua = _VERSION, backend = backend, evals = evals,
    tolerance = TOL, cases = {} }
  if ane.ane_framework then
    local fw = ane.ane_framework()
    report.framework = { path = fw.path, standin = fw.standin, available = fw.available, why = fw.why,
      facts = {} }
    for k, v in (fw.info or ""):gmatch("([%w_]+)=([^\n]*)") do report.framework.facts[k] = v end
  end
  local avail
  for _, b in ipairs(ane.backends()) do if b.name == backend then avail = b end end
  -- "ane (stand-in at PATH)" when the stand-in runs it: no figure of it can pass for a Mac's
  report.backend = avail and avail.label or backend
  local status = 0
  if not avail or not avail.available then
    report.unavailable = avail and avail.why or ("no backend named " .. backend)
    print(string.format("selftest: backend %s unavailable: %s", backend, report.unavailable))
    status = 3
  else
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p '" .. dir .. "/weights'"))
    for _, c in ipairs(cases()) do
      for name, t in pairs(c.weights or {}) do write(dir .. "/weights/" .. name, (ane.mil_blob_write { t })) end
      local x = ane.rand(c.shape, { lo = -2, hi = 2, seed = 42, dtype = c.dtype })
      local rc, yc = run_case(c, "cpu", dir, evals, x)
      local ra, ya = run_case(c, backend, dir, evals, x)
      ra.backend = report.backend
      local entry = { name = c.name, cpu = rc, [backend] = ra }
      if yc and ya then
        entry.max_abs_diff, entry.mismatches = compare(ya, yc)
        entry.ok = entry.mismatches == 0
      else
        entry.ok = false
      end
      if not entry.ok then status = 1 end
      report.cases[#report.cases + 1] = entry
      print(string.format("%-32s %s  max|diff| %s  compile+load %.1f ms  eval %.3f ms%s", c.name,
        entry.ok and "ok  " or "FAIL", entry.max_abs_diff and string.format("%.3g", entry.max_abs_diff) or "-",
        (ra.compile_load_cpu_s or 0) * 1e3, (ra.eval_cpu_s or 0) * 1e3, ra.error and ("  " .. ra.error) or ""))
    end
    os.execute("rm -rf '" .. dir .. "'")
  end
  local cjson = require "cjson"
  local f, err = io.open(out, "w")
  if not f then
    io.stderr:write("ane selftest: cannot write ", out, ": ", tostring(err), "\n")
    return 1
  end
  f:write(cjson.encode(report), "\n")
  f:close()
  print("report: " .. out)
  return status
end
