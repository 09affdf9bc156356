-- The training program for the specs: the real model (ane.model) or, with TRAIN_MODEL set, another
-- module with its interface (spec/support/bigram_model.lua). TRAIN_KILL_AT=N sends this process
-- SIGKILL right after step N (its log record and any checkpoint written), as a crash would.
local train = require "ane.train"
local kill_at = tonumber(os.getenv("TRAIN_KILL_AT") or "")
local function after_step(step)
  if step == kill_at then
    local f = assert(io.open("/proc/self/stat"))
    local pid = f:read("a"):match("^(%d+)")
    f:close()
    io.stdout:flush()
    os.execute("kill -9 " .. pid)
  end
end
os.exit(train.main(arg, { model_module = os.getenv("TRAIN_MODEL") or "ane.model",
  self_argv = { arg[-1], arg[0] }, after_step = after_step }))
