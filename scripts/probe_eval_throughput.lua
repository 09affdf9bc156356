-- probe_eval_throughput: pure eval throughput of one loaded kernel (research record: conv
-- 128x128, spatial 64, 1000 evals; 0.189 ms / 11.09 GFLOPS on M4, ane-private-api.md 8).
--   ane scripts/probe_eval_throughput.lua [--backend NAME] [--json out.json] [--quick]
local ane = require "ane"
local P = require "ane.probe"

local run = P.start("eval_throughput", arg, { ch = 128, sp = 64, evals = 1000 }, { evals = 20 })
local c = run.cfg
local prog, ws = P.conv_program(c.ch, c.sp, 1, 1)
local k, tc = run:compile(prog)
local x = P.input(c.ch, c.sp)
local y = k:eval { x } -- warm-up; output buffer reused below
local rel = P.check_conv(y, ws[1], x)
local t0 = P.now()
for _ = 1, c.evals do k:eval({ x }, { y }) end
local dt = (P.now() - t0) / c.evals
local flops = 2 * c.ch * c.ch * c.sp
run:row(("conv %dx%d sp%d"):format(c.ch, c.ch, c.sp), {
  ms_per_eval = dt * 1e3, gflops = flops / dt / 1e9, evals = c.evals, compile_ms = tc * 1e3,
})
run:fact("max_rel_error_vs_reference", rel)
run:fact("verified", rel < 1e-2)
run:finish()
if rel >= 1e-2 then os.exit(1) end
