-- probe_ping_pong: two loaded kernels evaluated alternately vs one kernel repeatedly (research
-- record: 0.207 ms/eval ping-pong, about +10 % over a single model on M4; 20+ models loaded).
--   ane scripts/probe_ping_pong.lua [--backend NAME] [--json out.json] [--quick]
local P = require "ane.probe"

local run = P.start("ping_pong", arg, { ch = 128, sp = 64, pairs = 500 }, { pairs = 10 })
local c = run.cfg
local pa, wa = P.conv_program(c.ch, c.sp, 1, 1)
local pb, wb = P.conv_program(c.ch, c.sp, 1, 2)
local ka, kb = run:compile(pa), run:compile(pb)
local x = P.input(c.ch, c.sp)
local ya, yb = ka:eval { x }, kb:eval { x }
local ok = P.check_conv(ya, wa[1], x) < 1e-2 and P.check_conv(yb, wb[1], x) < 1e-2

local n = 2 * c.pairs
local t0 = P.now()
for _ = 1, n do ka:eval({ x }, { ya }) end
local single = (P.now() - t0) / n
t0 = P.now()
for _ = 1, c.pairs do
  ka:eval({ x }, { ya })
  kb:eval({ x }, { yb })
end
local pp = (P.now() - t0) / n
-- Both results must still be their own kernel's (no state leaks between loaded models).
ok = ok and P.check_conv(ya, wa[1], x) < 1e-2 and P.check_conv(yb, wb[1], x) < 1e-2
run:row("one kernel", { ms_per_eval = single * 1e3, evals = n })
run:row("ping-pong A/B", { ms_per_eval = pp * 1e3, evals = n, ms_per_pair = 2 * pp * 1e3 })
run:fact("ping_pong_vs_single", pp / single)
run:fact("both_outputs_verified", ok)
run:finish()
if not ok then os.exit(1) end
