-- probe_peak_throughput: n chained 1x1 convs of 512 channels at spatial 64, as one program
-- (research record: 7.50 TFLOPS at 96x on M4, 11.14 at 128x on M4 Max; ane-private-api.md 8).
--   ane scripts/probe_peak_throughput.lua [--backend NAME] [--json out.json] [--quick]
local P = require "ane.probe"

local run = P.start("peak_throughput", arg, { ch = 512, sp = 64, depths = "1,8,32,64", evals = 10 },
  { ch = 128, depths = "1,2", evals = 2 })
local c = run.cfg
local best = 0
for d in tostring(c.depths):gmatch("%d+") do
  local n = tonumber(d)
  local prog = P.conv_program(c.ch, c.sp, n, n, 1 / c.ch)
  local k, tc = run:compile(prog)
  local x = P.input(c.ch, c.sp)
  local y = k:eval { x }
  local dt = run:time(function()
    for _ = 1, c.evals do k:eval({ x }, { y }) end
  end, 3) / c.evals
  local flops = 2 * c.ch * c.ch * c.sp * n
  local tflops = flops / dt / 1e12
  if tflops > best then best = tflops end
  run:row(("%dx conv %dch sp%d"):format(n, c.ch, c.sp), {
    ms_per_eval = dt * 1e3, tflops = tflops, weights_mb = n * c.ch * c.ch * 2 / 2 ^ 20,
    compile_ms = tc * 1e3,
  })
  k:close()
end
run:fact("peak_tflops", best)
run:finish()
