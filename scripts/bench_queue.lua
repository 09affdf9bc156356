-- Queue and chain benchmarks (make bench; figures, not tests). Each is measured side by side in
-- this run, alternating the two conditions so machine load hits both alike:
--   1. foreground eval throughput while a background compile runs, vs idle (target >= 0.9x,
--      cpu backend, this 2-core machine). The foreground kernel is pinned to one thread
--      (compile option threads = 1) and the queue has one worker: one core each. The same
--      figure with the foreground on every core (threads = 0) is printed for comparison.
--   2. a chain of 12 kernels: wall time of chain:run minus the kernels' own eval time, per link
--      (target <= 2 us), and the same kernels driven from a Lua loop of kernel:eval.
-- Each figure is the median of ROUNDS rounds; a target's verdict is "met" or "MISSED" only when
-- the middle half of the rounds agrees (else "unclear" with the quartiles). ANE_BENCH_QUICK=1
-- shortens every phase.
local ane = require "ane"
local P = require "ane.probe"

local QUICK = os.getenv("ANE_BENCH_QUICK") == "1"
local PHASE = QUICK and 0.05 or 0.25 -- seconds per measured phase
local ROUNDS = QUICK and 3 or 9

local function median(t) return P.median(t) end

-- Quartiles of a list (linear interpolation), for verdicts that do not flip with one noisy round.
local function quantile(t, q)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  local pos = 1 + (#s - 1) * q
  local lo = math.floor(pos)
  return s[lo] + (s[math.min(lo + 1, #s)] - s[lo]) * (pos - lo)
end

-- "met" when the lower quartile of the rounds meets the target, "MISSED" when the upper quartile
-- does not, "unclear" when the middle half of the rounds straddles it (the machine's load, not
-- the code, decides such a run: two runs of the same build disagreed on a median of 5).
local function verdict(rounds, ok)
  local q1, q3 = quantile(rounds, 0.25), quantile(rounds, 0.75)
  if ok(q1) and ok(q3) then return "met" end
  if not ok(q1) and not ok(q3) then return "MISSED" end
  return ("unclear: quartiles %.3g..%.3g"):format(q1, q3)
end

-- ---------------------------------------------------------------------------------------------
-- 1. foreground eval throughput during background compiles
-- ---------------------------------------------------------------------------------------------
local function fg_vs_bg(threads, queue_opts)
  local fprog = P.conv_program(128, 64, 1, 1)
  local fk = ane.compile(fprog, { backend = "cpu", threads = threads }):load()
  local x = P.input(128, 64)
  local y = fk:eval { x }
  local bprogs = {}
  for i = 1, 4 do bprogs[i] = P.conv_program(512, 64, 16, 20 + i, 0.05):program() end
  local q <close> = ane.queue(queue_opts)
  local function evals_for(seconds, with_bg)
    local n, compiles, f, i = 0, 0, nil, 0
    local t0 = ane.now()
    local stop = t0 + seconds
    while true do
      if with_bg and (f == nil or f:done()) then
        if f then f:wait(); compiles = compiles + 1 end
        i = i % #bprogs + 1
        f = q:compile(bprogs[i], { backend = "cpu" })
      end
      fk:eval({ x }, { y })
      n = n + 1
      if ane.now() >= stop then break end
    end
    local dt = ane.now() - t0
    if f then f:wait() end
    return n / dt, compiles
  end
  evals_for(PHASE / 2, false) -- warm-up
  local ratios, idle_rates, compiles = {}, {}, 0
  for r = 1, ROUNDS do
    local idle = evals_for(PHASE, false)
    local busy, c = evals_for(PHASE, true)
    ratios[r], idle_rates[r] = busy / idle, idle
    compiles = compiles + c
  end
  return median(ratios), median(idle_rates), compiles / (ROUNDS * PHASE), ratios
end

print("1. foreground eval (conv 128x128 sp64, cpu) while compiles of 16x conv 512 run on a worker")
local rows = {
  { "fg threads=auto, worker nice 10", 0, { workers = 1 } },
  { "fg threads=auto, worker SCHED_IDLE", 0, { workers = 1, idle = true } },
  { "fg threads=1, worker nice 10", 1, { workers = 1 } },
  { "fg threads=1, worker SCHED_IDLE", 1, { workers = 1, idle = true } },
}
for _, r in ipairs(rows) do
  local ratio, idle, cps, ratios = fg_vs_bg(r[2] > 0 and r[2] or nil, r[3])
  print(("   %-36s %6.0f evals/s idle   ratio %.3f (median of %d)   (%.0f background compiles/s)%s"):format(
    r[1], idle, ratio, #ratios, cps,
    r[2] == 1 and ("   [target >= 0.9: " .. verdict(ratios, function(v) return v >= 0.9 end) .. "]") or ""))
end

-- ---------------------------------------------------------------------------------------------
-- 2. chain of 12 kernels: overhead per link
-- ---------------------------------------------------------------------------------------------
local function adder(c)
  return ane.compile(([[
program(1.3)
{
    func main<ios18>(tensor<fp16, [1, 64, 1, 32]> x) {
        fp16 c = const()[name = string("c"), val = fp16(%s)];
        tensor<fp16, [1, 64, 1, 32]> y = add(x = x, y = c)[name = string("a")];
    } -> (y);
}
]]):format(("%.1f"):format(c)), { backend = "cpu" }):load()
end

local ks = {}
for i = 1, 12 do ks[i] = adder(i % 3) end
local ch <close> = ane.chain(ks)
local x = ane.rand({ 1, 64, 1, 32 }, { dtype = "fp16", seed = 3 })
local N = QUICK and 2000 or 20000
for _ = 1, 200 do ch:run { x } end
local per_link, lua_loop, chain_run = {}, {}, {}
local outs = {}
for i = 1, 12 do outs[i] = ks[i]:eval { i == 1 and x or outs[i - 1] } end
for r = 1, ROUNDS do
  -- wall time of N chain runs from Lua
  local t0 = ane.now()
  for _ = 1, N do ch:run { x } end
  local wall = (ane.now() - t0) / N
  -- the kernels' own eval time per run, as the chain measures it in C around each eval
  local own = 0
  for _ = 1, N do
    ch:run { x }
    local t = ch:times()
    for i = 1, 12 do own = own + t[i] end
  end
  own = own / N
  per_link[r] = (wall - own) / 12
  chain_run[r] = wall
  -- the same kernels from a Lua loop, outputs preallocated
  t0 = ane.now()
  for _ = 1, N do
    local prev = x
    for i = 1, 12 do ks[i]:eval({ prev }, { outs[i] }); prev = outs[i] end
  end
  lua_loop[r] = (ane.now() - t0) / N
end
local pl = median(per_link)
print("2. chain of 12 kernels (add on [1, 64, 1, 32], cpu)")
print(("   overhead per link beyond the kernels' own eval: %.2f us (median of %d)   [target <= 2 us: %s]"):format(
  pl * 1e6, #per_link, verdict(per_link, function(v) return v <= 2e-6 end)))
print(("   one chain:run %.2f us vs 12 kernel:eval calls from Lua %.2f us"):format(
  median(chain_run) * 1e6, median(lua_loop) * 1e6))
