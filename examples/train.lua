-- Train a llama-style model on the CPU or the ANE (see docs/training.md):
--   ane examples/train.lua --out build/run --text README.md --steps 200
--   ane examples/train.lua --out run110M --config stories110M --data tinystories.bin --steps 1000
-- The loop itself is lua/ane/train.lua; this file only hands it the command line.
local train = require "ane.train"
os.exit(train.main(arg, { self_argv = { arg[-1], arg[0] } }))
