-- Tensor throughput: fp16 conversion (vector vs scalar path), axpy, random fills, .npy I/O.
-- Run: ANE_ROOT=. build/ane scripts/bench_tensor.lua [n_elements]   (default 8M, ~2 s)
local ane = require "ane"

local n = tonumber(arg and arg[1]) or 8 * 1024 * 1024

local function bench(label, bytes, f)
  f() -- warm up (page faults, caches)
  local reps, t0 = 0, os.clock()
  repeat
    f(); reps = reps + 1
  until os.clock() - t0 > 0.2
  local dt = (os.clock() - t0) / reps
  print(string.format("%-34s %8.2f ms  %7.2f GB/s", label, dt * 1e3, bytes / dt / 1e9))
end

local h = ane.rand({ n }, { seed = 1, dtype = "fp16", lo = -4, hi = 4 })
local f = ane.zeros({ n }, "fp32")
local path = ane.fp16_simd()
print(string.format("n = %d elements, vector path: %s", n, path))
for _, on in ipairs({ true, false }) do
  local name = ane.fp16_simd(on)
  bench("fp16 -> fp32 copy (" .. name .. ")", n * 6, function() f:copy(h) end)
  bench("fp32 -> fp16 copy (" .. name .. ")", n * 6, function() h:copy(f) end)
  bench("fp16 axpy (" .. name .. ")", n * 6, function() h:axpy(1e-3, h) end)
end
ane.fp16_simd(true)
bench("fp32 axpy", n * 12, function() f:axpy(1e-3, f) end)
bench("fp32 uniform fill", n * 4, function() f:rand({ seed = 2 }) end)
bench("fp32 normal fill", n * 4, function() f:rand({ seed = 2, dist = "normal" }) end)
local file = os.tmpname()
bench("fp32 save_npy", n * 4, function() assert(f:save_npy(file)) end)
bench("fp32 load_npy", n * 4, function() assert(ane.load_npy(file)):close() end)
os.remove(file)
