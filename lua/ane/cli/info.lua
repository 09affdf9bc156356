--- `ane info [--json]`: what this runtime is and what it can use here.
-- Version, Lua, backends (with the reason when one is unavailable), the BLAS in use, CPU facts
-- and the paths the runtime loads from. Facts are read from the system, never assumed.
local host = require "ane.host"

local function read_file(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function command(cmd)
  local p = io.popen(cmd .. " 2>/dev/null")
  if not p then return nil end
  local s = p:read("a")
  p:close()
  s = s and s:gsub("%s+$", "")
  return s ~= "" and s or nil
end

local function os_name()
  local uname = command("uname -s") or "?"
  local release = command("uname -r")
  return uname, release and (uname .. " " .. release) or uname
end

-- Cores, model and the vector features the runtime's kernels care about.
local function cpu_facts(uname)
  local cpu = { features = {} }
  if uname == "Darwin" then
    cpu.model = command("sysctl -n machdep.cpu.brand_string")
    cpu.cores = tonumber(command("sysctl -n hw.ncpu"))
    if command("sysctl -n hw.optional.arm.FEAT_FP16") == "1" then cpu.features[#cpu.features + 1] = "FP16" end
    if command("sysctl -n hw.optional.neon") == "1" or (command("uname -m") == "arm64") then
      table.insert(cpu.features, 1, "NEON")
    end
    return cpu
  end
  local info = read_file("/proc/cpuinfo") or ""
  cpu.model = info:match("model name%s*:%s*([^\n]+)") or info:match("Model%s*:%s*([^\n]+)")
  cpu.cores = tonumber(command("getconf _NPROCESSORS_ONLN"))
  local flags = " " .. (info:match("\nflags%s*:%s*([^\n]+)") or info:match("^flags%s*:%s*([^\n]+)")
    or info:match("Features%s*:%s*([^\n]+)") or "") .. " "
  local wanted = {
    { "f16c", "F16C" }, { "avx2", "AVX2" }, { "fma", "FMA" }, { "avx512f", "AVX-512F" },
    { "avx512_fp16", "AVX-512-FP16" }, { "asimd", "NEON" }, { "fphp", "FP16" },
  }
  for _, w in ipairs(wanted) do
    if flags:find(" " .. w[1] .. " ", 1, true) then cpu.features[#cpu.features + 1] = w[2] end
  end
  return cpu
end

-- The BLAS actually mapped into this process (the CPU backend links one); a build that exposes
-- ane.build_info may say more.
local function blas_in_use(uname, ane)
  local bi = ane and rawget(ane, "build_info")
  if type(bi) == "function" then bi = bi() end
  if type(bi) == "table" and bi.blas then return tostring(bi.blas) end
  if uname == "Darwin" then return "Accelerate (vecLib)" end
  local maps = read_file("/proc/self/maps") or ""
  for lib in maps:gmatch("[^\n ]*/(lib[%w_%-]*blas[%w_%-%.]*%.so[%w%.]*)") do
    return lib
  end
  return "none loaded (the CPU backend is not linked in this build)"
end

-- The GEMM kernel set the BLAS picked at run time (OpenBLAS: openblas_get_corename(), which
-- OPENBLAS_CORETYPE overrides), and a hint when the CPU has AVX-512 the kernels leave unused
-- (OpenBLAS 0.3.21 takes Zen 4/5 for Haswell: AVX2 kernels at ~60% of the AVX-512 ones).
local AVX512_CORES = { skylakex = true, cooperlake = true, sapphirerapids = true }
local function gemm_kernel(ane, cpu)
  local bi = ane and type(rawget(ane, "blas_info")) == "function" and ane.blas_info()
  if not bi then return nil end
  local g = { name = bi.name, corename = bi.corename, threads = bi.threads,
    coretype_env = os.getenv("OPENBLAS_CORETYPE") }
  local has512 = false
  for _, f in ipairs(cpu.features) do if f == "AVX-512F" then has512 = true end end
  if has512 and bi.corename and not AVX512_CORES[bi.corename:lower()] then
    g.note = string.format("the CPU has AVX-512 but OpenBLAS runs its %s kernels; "
      .. "OPENBLAS_CORETYPE=SkylakeX selects the AVX-512 ones (faster sgemm)", bi.corename)
  end
  return g
end

local function gather()
  local ok, ane = pcall(require, "ane")
  local uname, osdesc = os_name()
  local t = {
    version = ok and ane.version or nil,
    load_error = not ok and tostring(ane) or nil,
    lua = _VERSION,
    os = osdesc,
    interpreter = arg and arg[-1] or nil,
    -- what the runtime will actually use (ane.backend() resolves $ANE_BACKEND and availability)
    default_backend = ok and type(rawget(ane, "backend")) == "function" and select(2, pcall(ane.backend))
      or os.getenv("ANE_BACKEND"),
    env = {},
    paths = {},
  }
  for _, k in ipairs { "ANE_BACKEND", "ANE_PRECISION", "ANE_STRICT", "ANE_HISTORY_FILE" } do
    t.env[k] = os.getenv(k)
  end
  t.backends = host.backend_list()
  if ok and type(rawget(ane, "ane_framework")) == "function" then
    local fw = ane.ane_framework()
    t.ane_io_order = fw.available and (fw.info or ""):match("io_order=([^\n]*)") or nil
  end
  t.blas = blas_in_use(uname, ok and ane or nil)
  t.cpu = cpu_facts(uname)
  t.gemm = gemm_kernel(ok and ane or nil, t.cpu)
  t.paths.module = package.searchpath("ane", package.path)
  t.paths.core = package.preload["ane.core"] and "linked into this program"
    or package.searchpath("ane.core", package.cpath)
  local home = os.getenv("HOME")
  t.paths.history = os.getenv("ANE_HISTORY_FILE") or (home and home .. "/.ane_history")
  return t
end

local function print_text(t)
  local function line(k, v) print(string.format("%-16s %s", k, v)) end
  line("ane", t.version or ("cannot load: " .. tostring(t.load_error)))
  line("lua", t.lua .. (t.interpreter and ("  (" .. t.interpreter .. ")") or ""))
  line("os", t.os)
  if t.backends then
    for i, b in ipairs(t.backends) do
      -- an unavailable backend shows its reason, an available one what it is
      local state = b.available and "available" or "unavailable"
      local what = b.available and b.description or (b.why or "no reason given")
      if what and what ~= "" then state = state .. " - " .. what end
      line(i == 1 and "backends" or "", string.format("%-5s %s", b.label or b.name, state))
    end
  else
    line("backends", "this build cannot list them yet (no ane.backends)")
  end
  local env = t.env.ANE_BACKEND
  local why = not env and "" or env == t.default_backend and "  (from ANE_BACKEND)"
    or string.format("  (ANE_BACKEND=%q is not used)", env)
  line("default backend", (t.default_backend or "?") .. why)
  if t.ane_io_order then line("ane io order", t.ane_io_order) end
  line("blas", t.blas)
  if t.gemm then
    line("gemm kernel", string.format("%s %s%s", t.gemm.name, t.gemm.corename or "",
      t.gemm.coretype_env and ("  (OPENBLAS_CORETYPE=" .. t.gemm.coretype_env .. ")") or ""))
    if t.gemm.note then line("", "note: " .. t.gemm.note) end
  end
  line("cpu", string.format("%s, %s cores", t.cpu.model or "?", t.cpu.cores or "?"))
  line("cpu features", #t.cpu.features > 0 and table.concat(t.cpu.features, " ") or "none of F16C/AVX2/AVX-512/NEON")
  line("lua module", t.paths.module or "not found on package.path")
  line("c core", t.paths.core or "not found on package.cpath")
  line("history", t.paths.history or "none")
  for _, k in ipairs { "ANE_PRECISION", "ANE_STRICT" } do
    if t.env[k] then line(k, t.env[k]) end
  end
end

local USAGE = [[
usage: ane info [--json]
  --json  the same facts as one JSON object on stdout
Exit status: 0, or 2 for bad usage.
]]

return function(args)
  local json = false
  for _, a in ipairs(args) do
    if a == "--json" then
      json = true
    elseif a == "-h" or a == "--help" then
      io.stdout:write(USAGE)
      return 0
    else
      io.stderr:write("ane info: unknown argument '", a, "'\n", USAGE)
      return 2
    end
  end
  local t = gather()
  if json then
    print(require("cjson").encode(t))
  else
    print_text(t)
  end
  return t.version and 0 or 1
end
