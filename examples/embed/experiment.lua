-- experiment.lua - the Lua half of the embedding example (host.c runs it).
-- Fits y = a*x + b to noisy samples of y = 3x - 1 by gradient descent and returns the fit.
-- The host passes the number of steps and reads slope, intercept, loss and runtime back.
local ane = require "ane"
local steps = math.tointeger(...) or 200

-- The data lives in ane tensors; the noise comes from ane's seeded generator, so every run on
-- every platform sees the same samples.
local n = 32
local x = ane.zeros({ n }, "fp32")
for i = 1, n do x[i] = (i - 16) / 16 end
local y = ane.rand({ n }, { dist = "normal", std = 0.02, seed = 7, dtype = "fp32" })
y:axpy(3, x):add(ane.full({ n }, -1, "fp32"))          -- y = noise + 3x - 1

local a, b, lr, loss = 0.0, 0.0, 0.5, nil
for _ = 1, steps do
  local ga, gb, l = 0, 0, 0
  for i = 1, n do
    local err = a * x[i] + b - y[i]
    ga, gb, l = ga + err * x[i], gb + err, l + err * err
  end
  a, b, loss = a - lr * ga / n, b - lr * gb / n, l / n
end

return { slope = a, intercept = b, loss = loss, runtime = _VERSION .. ", fp16 " .. ane.fp16_simd() }
