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

local USAGE = "usage: ane %s [--backend NAME] [--json FILE] [--quick]"

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
  run.quick = opts.quick
  run.json = opts.json
  run.backend = opts.backend or ane.backend()
  if type(run.backend) ~= "string" then run.backend = tostring(run.backend) end
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
  print(("probe %s on backend %s%s"):format(self.name, self.backend, self.quick and " (quick)" or ""))
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
    probe = self.name, backend = self.backend, quick = self.quick, config = self.cfg,
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

return P
