--- `ane mil ...`: check, format and run MIL programs from the command line.
--   ane mil check PROG.mil [--lenient] [--model-path DIR]
--   ane mil fmt PROG.mil [--dialect 1.0|1.3] [--lenient]
--   ane mil run PROG.mil [--model-path DIR] [--in NAME=FILE.npy ...] [--out NAME=FILE.npy ...]
--                        [--backend NAME] [--repeat N] [--lenient]
-- --lenient: parse the lenient-only forms of mil-reference.md 4.2 (the same switch as the
-- {lenient = true} option of ane.compile, q:compile, ane.mil_parse and ane.mil_parse_file).
-- Exit status: 0 success; 1 the program, a file or the run failed (one message on stderr, MIL
-- errors as PROG.mil:LINE:COL: ...); 2 bad usage (the message and the usage on stderr).
-- `--help` (after mil or after a command) prints the usage on stdout and exits 0.
local ane = require "ane"

local USAGE = [[
usage: ane mil check PROG.mil [--lenient] [--model-path DIR]
       ane mil fmt PROG.mil [--dialect 1.0|1.3] [--lenient]
       ane mil run PROG.mil [--model-path DIR] [--in NAME=FILE.npy ...] [--out NAME=FILE.npy ...]
                            [--backend NAME] [--repeat N] [--lenient]
       ane mil [COMMAND] --help
check  parse and type-check; opens the weight files (--model-path DIR, else the program's folder)
fmt    print the program in canonical form (--dialect: the program(...) version to write)
run    compile and evaluate main: every input from --in NAME=FILE.npy; with --out each named
       output is written (a failed write exits 1 naming the file), without --out every output is
       printed as NAME: DTYPE [SHAPE] [first values] min .. max .. mean ..
--lenient accepts the lenient-only forms (bare true/false, unknown dimensions, parenthesised
results), as {lenient = true} does for ane.compile, q:compile and ane.mil_parse.
Exit status: 0 ok, 1 the program, a file or the run failed, 2 bad usage.
]]

-- A failure of usage: "ane mil CMD: <msg>", the usage, exit status 2.
local Usage = {}
local function usage_fail(fmt, ...)
  error(setmetatable({ msg = string.format(fmt, ...) }, Usage), 0)
end

-- A failure that is reported as "ane mil: <msg>" and exit status 1.
local Fail = {}
local function fail(fmt, ...)
  error(setmetatable({ msg = string.format(fmt, ...) }, Fail), 0)
end

--- Parse argv for one subcommand: spec maps option names to "flag", "value" or "list".
local function parse_args(args, spec)
  local o = { positional = {} }
  local i = 1
  while i <= #args do
    local a = args[i]
    local name, inline = a:match("^%-%-([%w%-]+)=(.*)$")
    name = name or a:match("^%-%-([%w%-]+)$")
    if name then
      local kind = spec[name]
      if not kind then usage_fail("unknown option '--%s'", name) end
      if kind == "flag" then
        if inline then usage_fail("option '--%s' takes no value", name) end
        o[name] = true
      else
        local v = inline
        if not v then
          i = i + 1
          v = args[i]
          if v == nil then usage_fail("option '--%s' needs a value", name) end
        end
        if kind == "list" then
          o[name] = o[name] or {}
          table.insert(o[name], v)
        else
          if o[name] ~= nil then usage_fail("option '--%s' given twice", name) end
          o[name] = v
        end
      end
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      usage_fail("unknown option '%s'", a)
    else
      table.insert(o.positional, a)
    end
    i = i + 1
  end
  return o
end

local function one_program(o)
  if #o.positional == 0 then usage_fail("missing PROG.mil") end
  if #o.positional > 1 then usage_fail("unexpected argument '%s'", o.positional[2]) end
  return o.positional[1]
end

-- Parse (raises the positioned message as a plain string, which main() prints as is).
local function load_program(path, lenient)
  local p, err = ane.mil_parse_file(path, { lenient = lenient or false })
  if not p then fail("%s", err) end
  return p
end

local function dirname(path)
  return path:match("^(.*)/[^/]*$") or "."
end

-- The weight files are opened too: every BLOBFILE must name a file under DIR (--model-path, else
-- the program's directory, as `run` does) with a well-formed record of the literal's dtype and
-- size at its offset. Without --model-path an absent file is reported in one line, not an error.
local function cmd_check(args)
  local o = parse_args(args, { lenient = "flag", ["model-path"] = "value" })
  local path = one_program(o)
  local p = load_program(path, o.lenient)
  p:check()
  if o["model-path"] then
    p:resolve(o["model-path"])
  else
    local _, missing = p:resolve(dirname(path), { missing = "skip" })
    if #missing > 0 then
      io.stderr:write("ane mil check: weights not checked: no file at ", table.concat(missing, ", "), "\n")
    end
  end
  return 0
end

local function cmd_fmt(args)
  local o = parse_args(args, { lenient = "flag", dialect = "value" })
  local p = load_program(one_program(o), o.lenient)
  if o.dialect and o.dialect ~= "1.0" and o.dialect ~= "1.3" then
    usage_fail("--dialect must be 1.0 or 1.3, got '%s'", o.dialect)
  end
  io.stdout:write(p:text { dialect = o.dialect })
  return 0
end

-- NAME=FILE pairs into an ordered list, rejecting malformed and repeated names.
local function pairs_of(list, what)
  local out, seen = {}, {}
  for _, s in ipairs(list or {}) do
    local name, file = s:match("^([^=]+)=(.+)$")
    if not name then usage_fail("%s expects NAME=FILE.npy, got '%s'", what, s) end
    if seen[name] then usage_fail("%s '%s' given twice", what, name) end
    seen[name] = true
    out[#out + 1] = { name = name, file = file }
  end
  return out
end

local function shape_str(shape) return "[" .. table.concat(shape, ", ") .. "]" end

local SHOWN = 8 -- values printed per output

--- One line per output for `run` without --out: name, dtype, shape, the first values, and
-- min / max / mean over all elements (fp16 values as stored, widened to double).
local function summary(name, t)
  local flat = t:reshape({ -1 }):to_table()
  local n = #flat
  local shown, lo, hi, sum = {}, math.huge, -math.huge, 0
  for i = 1, n do
    local v = flat[i]
    if type(v) == "boolean" then v = v and 1 or 0 end
    if i <= SHOWN then shown[i] = string.format("%.6g", v) end
    if v < lo then lo = v end
    if v > hi then hi = v end
    sum = sum + v
  end
  local vals = table.concat(shown, ", ") .. (n > SHOWN and ", ..." or "")
  if n == 0 then return string.format("%s: %s %s []", name, t:dtype(), shape_str(t:shape())) end
  return string.format("%s: %s %s [%s] min %.6g max %.6g mean %.6g", name, t:dtype(),
    shape_str(t:shape()), vals, lo, hi, sum / n)
end

--- What `run` hands to the execution step: everything validated, inputs loaded.
-- The execution step needs ane.compile (the backend issue); without it `run` stops here.
local function execute(plan)
  if not ane.compile then fail("no backend can execute the program") end
  local clock = ane.now or os.clock -- ane.now: monotonic wall clock (os.clock is CPU time)
  local t0 = clock()
  local k <close> = ane.compile(plan.program, { backend = plan.backend, model_path = plan.model_path })
  k:load()
  local t1 = clock()
  io.stderr:write(string.format("compile: %.3f ms\n", (t1 - t0) * 1e3))
  local outs = { k:eval(plan.inputs) }
  if plan.repeat_n then
    local times = {}
    for r = 1, plan.repeat_n do
      local s = clock()
      outs = { k:eval(plan.inputs) }
      times[r] = (clock() - s) * 1e3
    end
    table.sort(times)
    local n = #times
    local median = n % 2 == 1 and times[(n + 1) // 2] or (times[n // 2] + times[n // 2 + 1]) / 2
    io.stderr:write(string.format("eval: median %.3f ms, min %.3f ms over %d\n", median, times[1], n))
  end
  -- save_npy returns nil, msg on an I/O failure (and raises only on a misuse): both end here
  for _, o in ipairs(plan.outputs) do
    local ok, res, err = pcall(outs[o.index].save_npy, outs[o.index], o.file)
    if not ok or not res then fail("--out %s: cannot write %s: %s", o.name, o.file, tostring(ok and err or res)) end
  end
  if #plan.outputs == 0 then
    for k, d in ipairs(plan.declared_outputs) do io.stdout:write(summary(d.name, outs[k]), "\n") end
  end
  return 0
end

local function cmd_run(args)
  local o = parse_args(args, {
    ["model-path"] = "value", ["in"] = "list", out = "list", backend = "value", ["repeat"] = "value",
    lenient = "flag",
  })
  local path = one_program(o)
  local repeat_n
  if o["repeat"] then
    repeat_n = tonumber(o["repeat"])
    if not repeat_n or repeat_n ~= math.floor(repeat_n) or repeat_n < 1 then
      usage_fail("--repeat expects a positive integer, got '%s'", o["repeat"])
    end
    repeat_n = math.tointeger(repeat_n)
  end
  if o.backend then -- the one message for a name that is no backend (ane.host.check_backend)
    local ok, err = pcall(require("ane.host").check_backend, o.backend)
    if not ok then usage_fail("--backend %s: %s", o.backend, tostring(err)) end
  end
  local ins = pairs_of(o["in"], "--in")
  local outs = pairs_of(o.out, "--out")
  local p = load_program(path, o.lenient)
  p:check()
  local has_main = false
  for _, f in ipairs(p:functions()) do has_main = has_main or f == "main" end
  if not has_main then fail("%s has no function 'main'", path) end

  -- inputs: every declared input exactly once, dtype and shape as declared
  local declared, inputs = {}, {}
  for _, d in ipairs(p:inputs("main")) do declared[d.name] = d end
  for _, i in ipairs(ins) do
    if not declared[i.name] then fail("--in %s: main has no input '%s'", i.name, i.name) end
  end
  local given = {}
  for _, i in ipairs(ins) do given[i.name] = i.file end
  for _, d in ipairs(p:inputs("main")) do
    local file = given[d.name]
    if not file then fail("missing input '%s' (%s %s): give --in %s=FILE.npy", d.name, d.dtype, shape_str(d.shape), d.name) end
    local t, err = ane.load_npy(file)
    if not t then fail("--in %s: %s", d.name, tostring(err)) end
    if t:dtype() ~= d.dtype then
      fail("--in %s: %s holds %s, main declares %s", d.name, file, t:dtype(), d.dtype)
    end
    local ts = t:shape()
    if shape_str(ts) ~= shape_str(d.shape) then
      fail("--in %s: %s has shape %s, main declares %s", d.name, file, shape_str(ts), shape_str(d.shape))
    end
    inputs[d.name] = t
  end
  -- outputs: names of returned values
  local out_index = {}
  for k, d in ipairs(p:outputs("main")) do out_index[d.name] = k end
  local plan_outs = {}
  for _, x in ipairs(outs) do
    if not out_index[x.name] then fail("--out %s: main returns no value '%s'", x.name, x.name) end
    plan_outs[#plan_outs + 1] = { name = x.name, file = x.file, index = out_index[x.name] }
  end
  local model_path = o["model-path"] or dirname(path)
  p:resolve(model_path)
  return execute {
    program = p, inputs = inputs, outputs = plan_outs, backend = o.backend, repeat_n = repeat_n,
    model_path = model_path, declared_outputs = p:outputs("main"),
  }
end

local commands = { check = cmd_check, fmt = cmd_fmt, run = cmd_run }

return function(args)
  local sub = args[1]
  if sub == "-h" or sub == "--help" or sub == "help" then
    io.stdout:write(USAGE)
    return 0
  end
  local cmd = commands[sub]
  if not cmd then
    io.stderr:write(sub == nil and "ane mil: missing command\n" or ("ane mil: unknown command '" .. tostring(sub) .. "'\n"), USAGE)
    return 2
  end
  local rest = table.move(args, 2, #args, 1, {})
  for _, a in ipairs(rest) do
    if a == "--" then break end
    if a == "--help" or a == "-h" then
      io.stdout:write(USAGE)
      return 0
    end
  end
  local ok, res = pcall(cmd, rest)
  if ok then return res end
  if getmetatable(res) == Usage then
    io.stderr:write("ane mil " .. sub .. ": " .. res.msg .. "\n" .. USAGE)
    return 2
  elseif getmetatable(res) == Fail then
    io.stderr:write("ane mil " .. sub .. ": " .. res.msg .. "\n")
  elseif type(res) == "string" and res:match("^[^\n]+:%d+:%d+: ") then
    io.stderr:write(res, "\n") -- a positioned MIL error: PROG.mil:LINE:COL: message + caret
  else
    io.stderr:write("ane mil " .. sub .. ": " .. tostring(res) .. "\n")
  end
  return 1
end
