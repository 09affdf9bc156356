-- experiment.lua - the Lua half of the embedding example (host.c runs it).
-- Fits y = a*x + b to noisy samples of y = 3x - 1 by gradient descent and returns the fit.
-- The host passes the number of steps and reads slope, intercept, loss and runtime back.
local ane = require "ane"
local steps = math.tointeger(...) or 200

-- Fixed pseudo-random noise (a small LCG) so every run, on every platform, sees the same data.
local seed = 12345
local function noise()
  seed = (seed * 1103515245 + 12345) % 2147483648
  return (seed / 2147483648 - 0.5) * 0.1
end

local xs, ys = {}, {}
for i = 1, 32 do
  xs[i] = (i - 16) / 16
  ys[i] = 3 * xs[i] - 1 + noise()
end

local a, b, lr = 0.0, 0.0, 0.5
local loss
for _ = 1, steps do
  local ga, gb, l = 0, 0, 0
  for i = 1, #xs do
    local err = a * xs[i] + b - ys[i]
    ga, gb, l = ga + err * xs[i], gb + err, l + err * err
  end
  a, b, loss = a - lr * ga / #xs, b - lr * gb / #xs, l / #xs
end

return { slope = a, intercept = b, loss = loss, runtime = "ane " .. ane.version }
