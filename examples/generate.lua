-- generate.lua - text generation from a llama2.c .bin or a Hugging Face model directory, printed
-- as llama2.c's run.c prints it (the prompt, then its continuation); prefill and decode speeds on
-- stderr. The same program is `ane generate ...`; flags: --help, or docs/inference.md.
--   build/ane examples/generate.lua stories15M.bin --prompt "Once upon a time" --temperature 0
local code = require("ane.cli.generate")(arg)
os.exit(code or 0)
