-- probe_background_overlap: does a compile on a background worker overlap foreground evals?
-- (research record: a 26.8 ms compile on a GCD queue while 119 foreground evals ran, both
-- correct, M4). The foreground evaluates one loaded kernel in a loop while an ane.queue worker
-- compiles (and loads) a bigger program; we count the evals that completed while the compile
-- was running and compare both sides with their idle speeds. "overlap" is yes only when evals
-- completed while the worker was inside the compile; everything is measured, nothing assumed.
--   ane scripts/probe_background_overlap.lua [--backend NAME] [--json out.json] [--quick]
local ane = require "ane"
local P = require "ane.probe"

local run = P.start("background_overlap", arg,
  { ch = 128, sp = 64, bg_ch = 512, bg_layers = 24, bg_sp = 64, idle_evals = 500, idle = false, fg_threads = 0 },
  { bg_layers = 4, idle_evals = 20 })
local c = run.cfg
local fprog, fw = P.conv_program(c.ch, c.sp, 1, 1)
-- fg_threads > 0 pins the foreground kernel's CPU threads (cpu backend: BLAS + pool), leaving
-- a core to the worker
local fk = ane.compile(fprog, { backend = run.backend, threads = c.fg_threads > 0 and c.fg_threads or nil }):load()
local x = P.input(c.ch, c.sp)
local y = fk:eval { x }
local ref = y:clone()

-- idle foreground speed
local t0 = P.now()
for _ = 1, c.idle_evals do fk:eval({ x }, { y }) end
local idle_eval = (P.now() - t0) / c.idle_evals

-- idle compile time of the background program (same queue settings)
local q <close> = ane.queue { workers = 1, idle = c.idle }
local bprog, bw = P.conv_program(c.bg_ch, c.bg_sp, c.bg_layers, 7, 0.05)
local f0 = q:compile(bprog, run.compile_opts) -- parse + check happen here, on this thread
t0 = P.now()
f0:wait()
local idle_compile = P.now() - t0

-- the overlap run
local bprog2 = P.conv_program(c.bg_ch, c.bg_sp, c.bg_layers, 8, 0.05)
local f = q:compile(bprog2, run.compile_opts)
local started = P.now()
local evals, during_running, first_running = 0, 0, nil
while not f:done() do
  local st = f:state()
  fk:eval({ x }, { y })
  evals = evals + 1
  if st == "running" and f:state() == "running" then
    during_running = during_running + 1 -- the compile ran before and after this eval
    first_running = first_running or P.now()
  end
end
local bg_elapsed = P.now() - started
local bk = f:wait()
-- correctness of both sides after the overlap
local fg_ok = true
for s = 1, c.sp, c.sp - 1 do
  for ch = 1, c.ch do
    if y:get(1, ch, 1, s) ~= ref:get(1, ch, 1, s) then fg_ok = false end
  end
end
-- the background kernel must compute what the same program compiled in the foreground does
local bx = P.input(c.bg_ch, c.bg_sp, 5)
local by = bk:eval { bx }
local ry = run:compile(bprog2):eval { bx }
local bk_ok = true
for ch = 1, c.bg_ch do
  for s = 1, c.bg_sp, c.bg_sp - 1 do
    if by:get(1, ch, 1, s) ~= ry:get(1, ch, 1, s) then bk_ok = false end
  end
end
run:row("foreground idle", { ms_per_eval = idle_eval * 1e3 })
run:row("foreground during compile", {
  ms_per_eval = evals > 0 and bg_elapsed / evals * 1e3 or nil, evals = evals,
  evals_while_compiling = during_running,
})
run:row("background compile idle", { ms = idle_compile * 1e3 })
run:row("background compile + fg", { ms = bg_elapsed * 1e3 })
local overlap = during_running > 0
run:fact("overlap", overlap and "yes" or "no")
run:fact("foreground_outputs_unchanged", fg_ok)
run:fact("background_kernel_matches_foreground_compile", bk_ok)
if evals > 0 then run:fact("fg_throughput_during_vs_idle", (idle_eval * evals) / bg_elapsed) end
if not overlap then
  run:note("no foreground eval completed while the worker was compiling: the compile was too "
    .. "short to observe (" .. ("%.3f"):format(idle_compile * 1e3) .. " ms) or did not run "
    .. "concurrently; raise bg_layers to lengthen it")
end
run:finish()
if not (fg_ok and bk_ok) then os.exit(1) end
