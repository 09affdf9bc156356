--- ane.probe: shared plumbing of the probe scripts in scripts/probe_*.lua.
--
-- Each probe reproduces one experiment of the research record (shared/docs/ane-private-api.md
-- section 8) over the runtime, on whatever backend is selected, prints a table of what it
-- measured (always naming the backend) and writes the same facts as JSON.
--
--   local P = require "ane.probe"
--   local run = P.start("eval_throughput", arg, { evals = 1000 }, { evals = 20 })
--   ... run.cfg.evals, run.backend, run:time(fn) ...
--   run:row("eval", { ms = 0.19, gflops = 11.1 })
--   run:finish()          -- prints the table, writes --json FILE if given
local ane = require "ane"

local P = {}

local USAGE = "usage: ane %s [--backend NAME] [--json FILE] [--quick] [--set key=value]"

--- Monotonic wall-clock seconds (the C clock; os.clock is CPU time).
P.now = ane.now

--- Parse the common arguments; returns a run object.
-- defaults: the full configuration; quick: overrides used with --quick (specs use it).
function P.start(name, argv, defaults, quick)
  local run = setmetatable({ name = name, rows = {}, facts = {}, notes = {} }, { __index = P })
  local opts = { quick = false }
  local i = 1
  argv = argv or {}
  while i <= #argv do
    local a = argv[i]
    if a == "--backend" then
      opts.backend = argv[i + 1]; i = i + 2
    elseif a == "--json" then
      opts.json = argv[i + 1]; i = i + 2
    elseif a == "--quick" then
      opts.quick = true; i = i + 1
    elseif a == "--set" then -- --set key=value overrides one configuration entry
      local k, v = tostring(argv[i + 1]):match("^([%w_]+)=(.*)$")
      if not k then error(("probe_%s: --set needs key=value"):format(name), 0) end
      opts.set = opts.set or {}
      opts.set[k] = (v == "true" and true) or (v == "false" and false) or tonumber(v) or v
      i = i + 2
    elseif a == "-h" or a == "--help" then
      print(USAGE:format("scripts/probe_" .. name .. ".lua")); os.exit(0)
    else
      error(("probe_%s: unknown argument '%s'\n" .. USAGE):format(name, a, "scripts/probe_" .. name .. ".lua"), 0)
    end
    if (a == "--backend" or a == "--json") and not argv[i - 1] then
      error(("probe_%s: %s needs a value"):format(name, a), 0)
    end
  end
  run.cfg = {}
  for k, v in pairs(defaults or {}) do run.cfg[k] = v end
  if opts.quick then for k, v in pairs(quick or {}) do run.cfg[k] = v end end
  for k, v in pairs(opts.set or {}) do
    if run.cfg[k] == nil then error(("probe_%s: unknown setting '%s'"):format(name, k), 0) end
    run.cfg[k] = v
  end
  run.quick = opts.quick
  run.json = opts.json
  run.backend = opts.backend or ane.backend()
  if type(run.backend) ~= "string" then run.backend = tostring(run.backend) end
  local found
  for _, b in ipairs(ane.backends()) do
    if b.name == run.backend then found = b end
  end
  if not found then error(("probe_%s: unknown backend '%s'"):format(name, run.backend), 0) end
  if not found.available then
    error(("probe_%s: backend '%s' is not available here"):format(name, run.backend), 0)
  end
  run.facts.backend_description = found.description
  run.backend_label = found.label or run.backend -- "ane (stand-in at PATH)" on the stand-in
  if run.backend == "ane" and ane.ane_framework then
    local fw = ane.ane_framework()
    run.facts.framework = fw.path
    if fw.standin then
      run:note("the ane backend runs on this project's stand-in framework (not Neural Engine "
        .. "hardware): its timings are CPU timings")
    end
  end
  run.compile_opts = { backend = run.backend }
  return run
end

--- Seconds fn() takes, best of `reps` (>= 1) runs.
function P:time(fn, reps)
  local best = math.huge
  for _ = 1, reps or 1 do
    local t0 = P.now()
    fn()
    local dt = P.now() - t0
    if dt < best then best = dt end
  end
  return best
end

--- Record one row of the result table: label + a table of named values.
function P:row(label, values)
  self.rows[#self.rows + 1] = { label = label, values = values }
end

--- A fact about the run (printed under the table, saved in JSON).
function P:fact(key, value) self.facts[key] = value end

--- A sentence for the reader (what was not measured and why, surprises).
function P:note(text) self.notes[#self.notes + 1] = text end

local function fmt(v)
  if type(v) == "number" then
    if math.type(v) == "integer" then return tostring(v) end
    local a = math.abs(v)
    if a ~= 0 and (a < 1e-3 or a >= 1e6) then return ("%.3e"):format(v) end
    return ("%.4g"):format(v)
  end
  return tostring(v)
end

--- Print the table and write JSON when asked. Returns the result table.
function P:finish()
  local cols, seen = {}, {}
  for _, r in ipairs(self.rows) do
    local keys = {}
    for k in pairs(r.values) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do
      if not seen[k] then seen[k] = true; cols[#cols + 1] = k end
    end
  end
  local backend = self.backend_label or self.backend
  print(("probe %s on backend %s%s"):format(self.name, backend, self.quick and " (quick)" or ""))
  local widths = { 24 }
  for i, c in ipairs(cols) do widths[i + 1] = math.max(#c, 10) end
  local head = { ("%-24s"):format("") }
  for i, c in ipairs(cols) do head[#head + 1] = ("%" .. widths[i + 1] .. "s"):format(c) end
  print(table.concat(head, "  "))
  for _, r in ipairs(self.rows) do
    local line = { ("%-24s"):format(r.label) }
    for i, c in ipairs(cols) do
      local v = r.values[c]
      line[#line + 1] = ("%" .. widths[i + 1] .. "s"):format(v == nil and "-" or fmt(v))
    end
    print(table.concat(line, "  "))
  end
  local fkeys = {}
  for k in pairs(self.facts) do fkeys[#fkeys + 1] = k end
  table.sort(fkeys)
  for _, k in ipairs(fkeys) do print(("  %s: %s"):format(k, fmt(self.facts[k]))) end
  for _, n in ipairs(self.notes) do print("  note: " .. n) end
  local result = {
    probe = self.name, backend = backend, quick = self.quick, config = self.cfg,
    rows = self.rows, facts = self.facts, notes = self.notes,
  }
  if self.json then
    local cjson = require "cjson"
    local f = assert(io.open(self.json, "w"))
    f:write(cjson.encode(result), "\n")
    f:close()
    print("  json: " .. self.json)
  end
  return result
end

-- ---------------------------------------------------------------------------------------
-- programs the probes share (built with ane.mil; fp16 I/O, [1, C, 1, S] layout)
-- ---------------------------------------------------------------------------------------

--- n chained 1x1 convs (ch -> ch) over spatial sp, weights uniform in +-scale from `seed`.
-- Returns the builder program and the list of weight tensors ([ch, ch] fp16).
function P.conv_program(ch, sp, n, seed, scale)
  local mil = ane.mil
  local p = mil.program { opset = "ios18" }
  local f = p:func("main")
  local x = f:input("x", "fp16", { 1, ch, 1, sp })
  local ws = {}
  local y = x
  scale = scale or 1 / math.sqrt(ch)
  for i = 1, n or 1 do
    ws[i] = ane.rand({ ch, ch }, { dtype = "fp16", seed = (seed or 1) * 1000 + i, lo = -scale, hi = scale })
    y = f:linear_conv(y, ws[i], { name = i == (n or 1) and "y" or ("h" .. i) })
  end
  f:output(y)
  return p, ws
end

--- Compile and load on the run's backend; returns the kernel and the seconds it took.
function P:compile(prog)
  local t0 = P.now()
  local k = ane.compile(prog, self.compile_opts)
  k:load()
  return k, P.now() - t0
end

--- A seeded fp16 input [1, ch, 1, sp].
function P.input(ch, sp, seed)
  return ane.rand({ 1, ch, 1, sp }, { dtype = "fp16", seed = seed or 99, lo = -1, hi = 1 })
end

--- Largest |y - W x| over spatial columns `cols` (double-precision reference in Lua), relative
-- to the largest |reference| value: verifies a one-conv kernel's output.
function P.check_conv(y, W, x, cols)
  local ch = W:shape()[1]
  local cin = W:shape()[2]
  local sp = x:shape()[4]
  local maxerr, maxref = 0, 1e-6
  for _, s in ipairs(cols or { 1, sp }) do
    for o = 1, ch do
      local acc = 0
      for i = 1, cin do acc = acc + W:get(o, i) * x:get(1, i, 1, s) end
      local d = math.abs(y:get(1, o, 1, s) - acc)
      if d > maxerr then maxerr = d end
      if math.abs(acc) > maxref then maxref = math.abs(acc) end
    end
  end
  return maxerr / maxref
end

--- Median of a list of numbers.
function P.median(t)
  local c = {}
  for i, v in ipairs(t) do c[i] = v end
  table.sort(c)
  local n = #c
  if n == 0 then return nil end
  if n % 2 == 1 then return c[(n + 1) // 2] end
  return (c[n // 2] + c[n // 2 + 1]) / 2
end

return P
