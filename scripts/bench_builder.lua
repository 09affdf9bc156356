-- scripts/bench_builder.lua - the Lua MIL builder's cost per op (issue 11: naming was quadratic).
-- Builds a chain of N unnamed ops of one kind (f:relu, each labelled relu_K by the builder) for
-- N = 1000 and N = 20000, side by side in one run, best of REPS, and prints the time per op of
-- each and their ratio: about 1 when building is linear in the number of ops (20000 ops in ~20x
-- the time of 1000). Run: `build/ane scripts/bench_builder.lua` (or `make bench`).
local ane = require "ane"

local REPS = tonumber(os.getenv("BENCH_REPS") or "") or 3

local function build(n)
  local t0 = ane.clock()
  local p = ane.mil.program()
  local f = p:func("main")
  local x = f:input("x", "fp16", { 1, 4 })
  for _ = 1, n do x = f:relu(x) end
  f:output(x)
  return ane.clock() - t0
end

local function best(n)
  local b = math.huge
  for _ = 1, REPS do
    collectgarbage()
    b = math.min(b, build(n))
  end
  return b
end

local small, large = 1000, 20000
local ts, tl = best(small), best(large)
local per_s, per_l = ts / small * 1e6, tl / large * 1e6
print(string.format("builder: %d ops %.1f ms (%.2f us/op), %d ops %.1f ms (%.2f us/op); " ..
  "time ratio %.1f for %dx the ops, per-op ratio %.2f (1 = linear)", small, ts * 1e3, per_s, large,
  tl * 1e3, per_l, tl / ts, large // small, per_l / per_s))
