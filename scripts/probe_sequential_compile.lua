-- probe_sequential_compile: compile 20 kernels with distinct weights one after another, each
-- verified against a double-precision reference (research record: ~23-29 ms per compile on
-- M4, 20 in a row without degradation; ane-private-api.md 6.1 and 8).
--   ane scripts/probe_sequential_compile.lua [--backend NAME] [--json out.json] [--quick]
local ane = require "ane"
local P = require "ane.probe"

local run = P.start("sequential_compile", arg, { ch = 64, sp = 32, kernels = 20 }, { kernels = 3 })
local c = run.cfg
local x = P.input(c.ch, c.sp)
local times, verified, worst = {}, 0, 0
local budget0, used0 = ane.compile_budget()
for i = 1, c.kernels do
  local prog, ws = P.conv_program(c.ch, c.sp, 1, 100 + i)
  local k, tc = run:compile(prog)
  times[i] = tc
  local rel = P.check_conv(k:eval { x }, ws[1], x, { 1, c.sp // 2, c.sp })
  if rel < 1e-2 then verified = verified + 1 end
  if rel > worst then worst = rel end
  k:close()
end
local first, last = times[1], times[#times]
run:row(("%d compiles, conv %dx%d sp%d"):format(c.kernels, c.ch, c.ch, c.sp), {
  median_ms = P.median(times) * 1e3, first_ms = first * 1e3, last_ms = last * 1e3,
  min_ms = math.min(table.unpack(times)) * 1e3, max_ms = math.max(table.unpack(times)) * 1e3,
})
run:fact("verified", ("%d of %d"):format(verified, c.kernels))
run:fact("max_rel_error_vs_reference", worst)
local budget, used = ane.compile_budget()
run:fact("compile_budget", budget < 0 and "unlimited" or budget)
run:fact("compiles_counted_against_budget", used - used0)
if used == used0 then
  run:note("this backend did not count these compiles against the per-process budget "
    .. "(the cpu backend counts only in strict mode)")
end
run:finish()
if verified ~= c.kernels then os.exit(1) end
