-- Writes the weight files and the sample input of examples/mil/linear.mil (already committed;
-- run again to regenerate): weights/w.bin = W [8, 4], weights/b.bin = b [8] (fp16 blob files,
-- one tensor each, data at offset 64), and x.npy = x [1, 4].
--   build/ane examples/mil/make_weights.lua
local ane = require "ane"
local dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."

local function write(path, bytes)
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
end

-- W[i][j] = (i - j) / 4 and b[i] = i / 8 - 0.5: small exact fp16 values, easy to check by hand.
local W, b = {}, {}
for i = 1, 8 do
  W[i] = {}
  for j = 1, 4 do W[i][j] = (i - j) / 4 end
  b[i] = i / 8 - 0.5
end
write(dir .. "/weights/w.bin", (ane.mil_blob_write { ane.from_table(W, "fp16") }))
write(dir .. "/weights/b.bin", (ane.mil_blob_write { ane.from_table(b, "fp16") }))
assert(ane.from_table({ { 1, 2, 3, 4 } }, "fp16"):save_npy(dir .. "/x.npy"))
