-- probe_weight_reload: overwrite a compiled kernel's weight file, unload + load (no compile),
-- evaluate again, and report whether the output changed (research record, seed 003 /
-- ane-private-api.md 6.6: on M4/M5 the output is identical, max diff 0: weights are baked in
-- at compile time). Backends without the experiment say so.
--   ane scripts/probe_weight_reload.lua [--backend NAME] [--json out.json] [--quick]
local ane = require "ane"
local P = require "ane.probe"

local run = P.start("weight_reload", arg, { ch = 64, sp = 32 }, {})
local c = run.cfg
-- identity weights, then 3x identity
local mil = ane.mil
local p = mil.program { opset = "ios18" }
local f = p:func("main")
local xv = f:input("x", "fp16", { 1, c.ch, 1, c.sp })
local I = ane.zeros({ c.ch, c.ch }, "fp16")
for i = 1, c.ch do I:set(i, i, 1) end
f:output(f:linear_conv(xv, I, { name = "y" }))
local k, tc = run:compile(p)
local x = P.input(c.ch, c.sp)
local a = k:eval { x }:clone()
local wname
for path in pairs(p:weights()) do wname = path end
run:row("compile + load", { ms = tc * 1e3 })
if not k.reload_weights or run.backend ~= "ane" then
  run:fact("reload_supported", false)
  run:note(("backend %s has no weight-reload hook (its kernels own their packed weights; "
    .. "there is no weight file to rewrite): nothing was measured"):format(run.backend))
  run:finish()
  return
end
local I3 = I:clone()
I3:scale(3)
local t0 = P.now()
local ok, err = pcall(k.reload_weights, k, wname, I3)
local reload = P.now() - t0
run:fact("reload_supported", ok)
if not ok then
  run:note("reload_weights failed: " .. tostring(err))
  run:finish()
  return
end
local b = k:eval { x }
local maxdiff = 0
for ch = 1, c.ch do
  for s = 1, c.sp do
    local d = math.abs(a:get(1, ch, 1, s) - b:get(1, ch, 1, s))
    if d > maxdiff then maxdiff = d end
  end
end
run:row("rewrite + unload + load", { ms = reload * 1e3 })
run:fact("max_diff_before_after", maxdiff)
run:fact("weights_baked_at_compile", maxdiff == 0)
run:note(maxdiff == 0 and "output unchanged after reload: weights are baked at compile time"
  or "output changed after reload: the reloaded weight file was used")
run:finish()
