-- hello.lua - the example `make demo` runs: build a MIL program in Lua, compile it, evaluate it.
--   build/ane examples/hello.lua            (ANE_BACKEND=cpu or --backend picks the backend)
--
-- The program is one small layer, y = relu(x @ w + b), in fp16 as the Neural Engine computes.
-- Its output is checked against the same arithmetic done in plain Lua doubles.
local ane = require "ane"
local mil = ane.mil

-- Inputs and weights from ane's seeded generator: the same numbers on every machine.
local x_in = ane.rand({ 1, 8 }, { dist = "normal", seed = 1 })
local w = ane.rand({ 8, 4 }, { dist = "normal", std = 0.5, seed = 4 })
local b = ane.from_table({ { 0.1, -0.2, 0.3, -0.4 } })

-- 1. Build the program; every op is type-checked the moment it is added.
local p = mil.program { opset = "ios18" }
local f = p:func("main")
local x = f:input("x", "fp16", { 1, 8 })
local y = f:relu(f:add(f:matmul(x, w), b), { name = "y" })
f:output(y)
print(p:text())

-- 2. Compile for the default backend (the ANE on a Mac, else the CPU reference) and load it.
local k <close> = ane.compile(p)
k:load()
print("backend: " .. ane.backend())

-- 3. Evaluate and compare with a plain-Lua reference.
local out = k:eval { x_in }
print("x = " .. tostring(x_in))
print("y = " .. tostring(out))
local ref, worst = {}, 0
for j = 1, 4 do
  local acc = b:get(1, j)
  for i = 1, 8 do acc = acc + x_in:get(1, i) * w:get(i, j) end
  ref[j] = math.max(acc, 0)
  worst = math.max(worst, math.abs(ref[j] - out:get(1, j)) / math.max(1, math.abs(ref[j])))
end
print(string.format("reference (doubles): {%.5g, %.5g, %.5g, %.5g}", table.unpack(ref)))
print(string.format("largest relative difference: %.1e (fp16 keeps 11 significant bits: ~1e-3)", worst))
