-- hello.lua - the first thing `make demo` runs: a small, real tour of what works today.
--   build/ane examples/hello.lua
-- It makes tensors, does the arithmetic training loops use, and shows fp16 rounding, which is
-- what the Neural Engine computes in. (When the MIL builder and the CPU backend land, this
-- example builds a MIL program, compiles it and evaluates it instead.)
local ane = require "ane"

print(string.format("ane %s on %s; fp16 conversion path: %s", ane.version, _VERSION, ane.fp16_simd()))
local function show(label, v) print(string.format("%-10s %s", label, tostring(v))) end

-- A 2x4 fp32 input from ane's seeded generator (same numbers on every machine) and a weight.
local x = ane.rand({ 2, 4 }, { dist = "normal", seed = 1, dtype = "fp32" })
local w = ane.from_table({ { 1, 2, 3, 4 }, { -1, -2, -3, -4 } }, "fp32")
show("x", x)
show("w", w)

-- y = x + 0.5 w, in place on a copy (axpy is one of the CPU helpers training loops need)
local y = x:clone():axpy(0.5, w)
show("x + 0.5 w", y)

-- The same values as the ANE would hold them: fp16, rounded to nearest even once.
local h = y:clone("fp16")
show("as fp16", h)
local worst = 0
for i = 1, 2 do
  for j = 1, 4 do
    worst = math.max(worst, math.abs(h:get(i, j) - y:get(i, j)))
  end
end
print(string.format("largest fp16 rounding error: %.2e (fp16 keeps 11 significant bits)", worst))
