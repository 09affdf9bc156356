--- ane.train: the training program behind `ane examples/train.lua` and `ane train`.
--
-- One step reads like llm.c's train_gpt2.c:
--     local loss = model:forward(tokens, targets)
--     model:zero_grad()
--     model:backward(opt.loss_scale)
--     opt:step(model, {lr = schedule(step)})
-- around it: data (ane.data), checkpoints that survive SIGKILL (ane.checkpoint), the log, the loss
-- plot (ane.plot), live progress (ane.progress), the compile-budget restart and the efficiency
-- report. docs/training.md describes every flag and file.
local ane = require "ane"
local checkpoint = require "ane.checkpoint"
local data = require "ane.data"
local optim = require "ane.optim"
local plot = require "ane.plot"
local progress = require "ane.progress"

local M = {}
local json = checkpoint.json

M.USAGE = [[
usage: ane examples/train.lua --out DIR [--config tiny|stories15M|stories110M|FILE.json]
    [--model CKPT.bin] [--data TOKENS.bin | --text FILE] [--style static|static_extras|dynamic]
    [--steps N] [--lr F] [--batch B] [--seq S] [--seed S] [--precision fp16|fp32]
    [--backend NAME] [--ckpt-every K] [--eval-every K] [--resume] [--quiet]
(also `ane train ...`; see docs/training.md)]]

-- Model shapes by name (llama2.c's stories models; tiny for tests and quick experiments).
M.CONFIGS = {
  tiny = { dim = 64, hidden = 176, n_layers = 2, n_heads = 4, n_kv_heads = 4, vocab = 32000, seq = 64 },
  stories15M = { dim = 288, hidden = 768, n_layers = 6, n_heads = 6, n_kv_heads = 6, vocab = 32000, seq = 256 },
  stories110M = { dim = 768, hidden = 2048, n_layers = 12, n_heads = 12, n_kv_heads = 12, vocab = 32000, seq = 256 },
}
local CFG_KEYS = { "dim", "hidden", "n_layers", "n_heads", "n_kv_heads", "vocab", "seq", "rope_theta",
  "norm_eps", "shared_classifier" }

-- Optimizer settings (llama2.c's train.py): AdamW beta2 0.95, weight decay 0.1 on matrices,
-- clipping at global norm 1, cosine decay to lr/10 after a linear warm-up.
M.DEFAULTS = {
  config = "tiny", style = "dynamic", precision = "fp16", steps = 100, lr = 5e-4, batch = 4,
  seed = 1, ckpt_every = 100, eval_every = 50, eval_batches = 8, weight_decay = 0.1, clip = 1.0,
  beta1 = 0.9, beta2 = 0.95, init_scale = 1024, scale_window = 100,
}

local FLAGS = {
  ["--out"] = "out", ["--config"] = "config", ["--model"] = "model", ["--data"] = "data",
  ["--text"] = "text", ["--style"] = "style", ["--steps"] = "steps", ["--lr"] = "lr",
  ["--batch"] = "batch", ["--seq"] = "seq", ["--seed"] = "seed", ["--precision"] = "precision",
  ["--backend"] = "backend", ["--ckpt-every"] = "ckpt_every", ["--eval-every"] = "eval_every",
}
local SWITCHES = { ["--resume"] = "resume", ["--quiet"] = "quiet" }
local INTEGER = { steps = 1, batch = 1, seq = 2, seed = 0, ckpt_every = 1, eval_every = 0 }

local function usage_error(msg) error({ usage = msg }, 0) end
local function fail(msg) error(msg, 0) end

--- parse_args(argv) -> options table (defaults filled in). Raises {usage = message} on bad
-- flags.
function M.parse_args(argv)
  local o = {}
  local i = 1
  while i <= #argv do
    local a = argv[i]
    local flag, val = a:match("^(%-%-[%w%-]+)=(.*)$")
    flag = flag or a
    if SWITCHES[flag] and not val then
      o[SWITCHES[flag]] = true
    elseif FLAGS[flag] then
      if not val then
        i = i + 1
        val = argv[i]
        if val == nil then usage_error(flag .. " needs a value") end
      end
      o[FLAGS[flag]] = val
    elseif flag == "-h" or flag == "--help" then
      o.help = true
    else
      usage_error("unknown argument '" .. a .. "'")
    end
    i = i + 1
  end
  if o.help then return o end
  for k, lo in pairs(INTEGER) do
    if o[k] ~= nil then
      local n = math.tointeger(tonumber(o[k]))
      if not n or n < lo then usage_error(string.format("--%s must be an integer >= %d, got '%s'", k:gsub("_", "-"), lo, o[k])) end
      o[k] = n
    end
  end
  if o.lr ~= nil then
    local n = tonumber(o.lr)
    if not n or n < 0 or n ~= n then usage_error("--lr must be a number >= 0, got '" .. o.lr .. "'") end
    o.lr = n
  end
  if o.style and o.style ~= "static" and o.style ~= "static_extras" and o.style ~= "dynamic" then
    usage_error("--style must be static, static_extras or dynamic, got '" .. o.style .. "'")
  end
  if o.precision and o.precision ~= "fp16" and o.precision ~= "fp32" then
    usage_error("--precision must be fp16 or fp32, got '" .. o.precision .. "'")
  end
  if not o.out then usage_error("--out DIR is required") end
  if o.data and o.text then usage_error("--data and --text are alternatives; give one") end
  if not o.data and not o.text then usage_error("give the training data: --data TOKENS.bin or --text FILE") end
  for k, v in pairs(M.DEFAULTS) do if o[k] == nil then o[k] = v end end
  return o
end

-- ---- helpers ----
local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

local function mkdir_p(dir)
  local ok = os.execute("mkdir -p '" .. dir:gsub("'", "'\\''") .. "'")
  if not ok then fail("cannot create the directory " .. dir) end
end

local function read_config(name)
  if M.CONFIGS[name] then
    local c = {}
    for k, v in pairs(M.CONFIGS[name]) do c[k] = v end
    return c
  end
  if not name:match("%.json$") then
    fail("--config: unknown config '" .. name .. "' (tiny, stories15M, stories110M or a .json file)")
  end
  local f, err = io.open(name, "rb")
  if not f then fail("--config: " .. err) end
  local text = f:read("a")
  f:close()
  local ok, c = pcall(require("cjson").decode, text)
  if not ok or type(c) ~= "table" then fail(name .. ": not a JSON object") end
  local known = {}
  for _, k in ipairs(CFG_KEYS) do known[k] = true end
  for k in pairs(c) do
    if not known[k] then fail(name .. ": unknown config field '" .. tostring(k) .. "'") end
  end
  for _, k in ipairs { "dim", "hidden", "n_layers", "n_heads", "vocab", "seq" } do
    if math.type(c[k]) == nil or c[k] < 1 then fail(name .. ": '" .. k .. "' must be a positive integer") end
    c[k] = math.tointeger(c[k]) or fail(name .. ": '" .. k .. "' must be a positive integer")
  end
  c.n_kv_heads = math.tointeger(c.n_kv_heads or c.n_heads)
  return c
end

-- Matmul FLOPs of one training step (forward + backward = 3x forward): 6 per weight per token
-- for every projection and the classifier, plus attention's two S x S products per layer.
function M.step_flops(cfg, batch, seq)
  local kv = cfg.dim * (cfg.n_kv_heads or cfg.n_heads) // cfg.n_heads
  local per_layer = 2 * cfg.dim * cfg.dim + 2 * cfg.dim * kv + 3 * cfg.dim * cfg.hidden
  local n = cfg.n_layers * per_layer + cfg.vocab * cfg.dim
  local tokens = batch * seq
  return 6 * n * tokens + 12 * cfg.n_layers * cfg.dim * seq * tokens / 2
end

-- Log records kept on resume: those of steps up to `upto` (a kill may have left later ones, and a
-- torn last line).
local function read_log(path, upto)
  local kept, train_pts, eval_pts = {}, {}, {}
  local f = io.open(path, "rb")
  if not f then return kept, train_pts, eval_pts end
  local cjson = require "cjson"
  for line in f:lines() do
    local ok, r = pcall(cjson.decode, line)
    if ok and type(r) == "table" and type(r.step) == "number" and r.step <= upto then
      kept[#kept + 1] = line
      if r.loss then train_pts[#train_pts + 1] = { r.step, r.loss } end
      if r.eval_loss then eval_pts[#eval_pts + 1] = { r.step, r.eval_loss } end
    end
  end
  f:close()
  return kept, train_pts, eval_pts
end

-- ---- the run ----

--- run(o [, hooks]) -> true. o from parse_args; hooks.model_module (default "ane.model"),
-- hooks.self_argv (how to start this program again: {interpreter, script}), hooks.out (stdout),
-- hooks.after_step(step, model) (called after each step's log record and checkpoint; returning
-- "stop" ends the run there, checkpointed), hooks.data(cfg) -> data set (instead of --data/--text),
-- hooks.keep_model (return model, data set instead of closing the model).
-- Raises a message string on bad input or a failed run.
function M.run(o, hooks)
  hooks = hooks or {}
  local wall0 = ane.now()
  local dir = o.out
  mkdir_p(dir)
  local Model = require(hooks.model_module or "ane.model")
  -- ANE_COMPILE_BUDGET=N: a smaller per-process compile budget (to try the restart on the CPU
  -- with ANE_STRICT=1; the ANE's own is ~119)
  local env_budget = os.getenv("ANE_COMPILE_BUDGET")
  if env_budget and env_budget ~= "" then
    local n = math.tointeger(tonumber(env_budget))
    if not n then fail("ANE_COMPILE_BUDGET must be an integer, got '" .. env_budget .. "'") end
    ane.set_compile_budget(n)
  end

  -- model shape: --model's checkpoint, or --config
  local cfg
  if o.model then
    if not exists(o.model) then fail(o.model .. ": No such file or directory") end
    local ck, err = ane.llama2c.load(o.model)
    if not ck then fail(tostring(err)) end
    cfg = {}
    for k, v in pairs(ck.config) do cfg[k] = v end
  else
    cfg = read_config(o.config)
  end
  if o.text and not o.model then cfg.vocab = data.BYTE_VOCAB end
  if o.seq then cfg.seq = o.seq end
  local seq = cfg.seq

  -- data (validated before anything is written)
  local ds
  if hooks.data then
    ds = hooks.data(cfg)
  elseif o.text then
    ds = data.open_text(o.text, { vocab = cfg.vocab, seq = seq })
  else
    ds = data.open(o.data, { vocab = cfg.vocab, seq = seq })
  end

  local run_config = {
    style = o.style, precision = o.precision, batch = o.batch, seed = o.seed, lr = o.lr,
    data = string.format("%d tokens, checksum %016x", ds.ntokens, ane.nn.checksum(ds.bytes)),
  }
  for _, k in ipairs(CFG_KEYS) do if type(cfg[k]) ~= "table" then run_config[k] = cfg[k] end end

  local state_path = dir .. "/state.bin"
  if o.resume and not exists(state_path) then
    fail(state_path .. ": No such file or directory (nothing to resume; run without --resume)")
  end
  if not o.resume and exists(state_path) then
    fail(dir .. " holds a checkpoint (state.bin): continue it with --resume, or choose another --out")
  end
  if o.resume then -- fail on a foreign or damaged checkpoint before building anything
    local h = checkpoint.read_header(state_path)
    local diff = checkpoint.config_diff(h.config, run_config)
    if #diff > 0 then
      fail(string.format("%s: the checkpoint is from another config:\n  %s\n(resume with the "
        .. "arguments it was started with, or use another --out)", state_path, table.concat(diff, "\n  ")))
    end
  end
  if o.text then
    local tok_path = dir .. "/tokenizer.bin"
    local ok, err = ane.atomic_write(tok_path, data.byte_tokenizer_bin())
    if not ok then fail(tostring(err)) end
  end

  -- model and optimizer
  local mopts = { style = o.style, precision = o.precision, backend = o.backend, seed = o.seed,
    std = o.init_std }
  local tb = ane.now()
  local model = o.model and Model.load(o.model, mopts) or Model.new(cfg, mopts)
  local build_ms = (ane.now() - tb) * 1e3
  local fp16 = o.precision == "fp16"
  local opt = optim.adamw {
    lr = o.lr, beta1 = o.beta1, beta2 = o.beta2, weight_decay = o.weight_decay, clip = o.clip,
    loss_scale = fp16 and "dynamic" or nil, init_scale = o.init_scale, scale_window = o.scale_window,
  }
  local warmup = math.min(1000, o.steps // 10)
  local schedule = optim.schedule { kind = "cosine", lr = o.lr, warmup = warmup, steps = o.steps }
  local rng = data.rng(o.seed)

  local start = 0
  local log_path = dir .. "/log.jsonl"
  local kept, train_pts, eval_pts = {}, {}, {}
  local resume_header
  if o.resume then
    local h = checkpoint.load(dir, { model = model, opt = opt, config = run_config })
    start = math.tointeger(h.step)
    resume_header = h
    rng:set_state(h.rng)
    kept, train_pts, eval_pts = read_log(log_path, start)
  end
  -- the log holds exactly the records up to the starting step
  local ok, err = ane.atomic_write(log_path, #kept > 0 and table.concat(kept, "\n") .. "\n" or "")
  if not ok then fail(tostring(err)) end
  local log = assert(io.open(log_path, "ab"))
  local function record(r)
    log:write(json(r), "\n")
    log:flush()
  end

  local prog = progress.new { total = o.steps, quiet = o.quiet, out = hooks.out, now = ane.now }
  local say = function(s) prog:say(s) end
  if start > 0 then say(string.format("resuming %s at step %d", dir, start)) end
  local last_ckpt = start

  local function save(step, rng_state, extra)
    checkpoint.save(dir, { model = model, opt = opt, step = step, rng = rng_state, config = run_config,
      extra = extra })
    local ok2, err2 = ane.atomic_write(dir .. "/loss.svg", plot.loss_svg {
      train = train_pts, eval = eval_pts,
      title = string.format("%s, %s, %s: loss by step", o.config or "model", o.style, o.precision) })
    if not ok2 then fail(tostring(err2)) end
    last_ckpt = step
  end

  -- The compile budget: a static run checkpoints the state before this step and starts itself
  -- again with --resume (a fresh process has a fresh budget).
  local done_here = 0
  local function restart(step, rng_state, why, eval_pending)
    if done_here == 0 then
      local limit = ane.compile_budget()
      fail(string.format("the compile budget (%d compiles per process) is too small for one training "
        .. "step of this model (%s)", limit, why))
    end
    save(step - 1, rng_state, eval_pending and { eval_pending = true } or nil)
    record { step = step - 1, event = "restart", reason = why }
    log:close()
    say(string.format("compile budget: checkpointed at step %d, restarting (%s)", step - 1, why))
    prog:finish()
    local argv = {}
    for _, a in ipairs(hooks.self_argv or { arg and arg[-1] or "ane", arg and arg[0] }) do argv[#argv + 1] = a end
    local has_resume = false
    for _, a in ipairs(hooks.argv or {}) do
      argv[#argv + 1] = a
      if a == "--resume" then has_resume = true end
    end
    if not has_resume then argv[#argv + 1] = "--resume" end
    local _, e = ane.exec(argv)
    fail("compile budget restart failed: " .. tostring(e))
  end

  local function eval_loss(step)
    local sum, n = 0, 0
    for tok, tgt in ds:eval_batches(o.batch, o.eval_batches) do
      local okf, l = pcall(model.forward, model, tok, tgt)
      if not okf then
        if tostring(l):find("compile budget spent", 1, true) then
          restart(step + 1, rng:state(), "compile budget spent", true) -- the eval runs after it
        end
        error(l, 0)
      end
      sum = sum + l
      n = n + 1
    end
    if model.timing then model.timing.kernels, model.timing.cpu, model.timing.compile_wait = 0, 0, 0 end
    return n > 0 and sum / n or nil
  end

  local tokens_per_step = o.batch * seq
  local flops = M.step_flops(cfg, o.batch, seq)
  local stats = { steps = 0, ms = 0, kernels = 0, wait = 0, cpu = 0 }
  local recent = {}
  local last_eval
  if resume_header and resume_header.extra and resume_header.extra.eval_pending then
    last_eval = eval_loss(start)
    if last_eval then
      record { step = start, eval_loss = last_eval }
      eval_pts[#eval_pts + 1] = { start, last_eval }
    end
  end
  local steps_t0 = ane.now()
  for step = start + 1, o.steps do
    local t0 = ane.now()
    local rng_before = rng:state()
    local limit, used = ane.compile_budget()
    local need = model.compiles_per_step or 0
    if need > 0 and limit >= 0 and limit - used < need then
      restart(step, rng_before, string.format("%d of %d compiles used, a step needs %d", used, limit, need))
    end
    local tokens, targets = ds:batch(o.batch, rng)
    local okf, loss = pcall(function()
      local l = model:forward(tokens, targets)
      model:zero_grad()
      model:backward(opt.loss_scale)
      return l
    end)
    if not okf then
      if tostring(loss):find("compile budget spent", 1, true) then
        restart(step, rng_before, "compile budget spent")
      end
      error(loss, 0)
    end
    if loss ~= loss or loss == math.huge or loss == -math.huge then
      record { step = step, loss = loss ~= loss and "nan" or tostring(loss), event = "stopped" }
      fail(string.format("step %d: the loss is %s (%s numerics); stopped. The last good checkpoint "
        .. "in %s is step %d%s", step, tostring(loss), o.precision, dir, last_ckpt,
        last_ckpt == 0 and " (none written yet)" or ""))
    end
    local lr = schedule(step)
    local r = opt:step(model, { lr = lr })
    local t1 = ane.now()
    local tm = model.timing or {}
    local ms = { total = (t1 - t0) * 1e3, kernels = tm.kernels or 0, compile_wait = tm.compile_wait or 0 }
    ms.cpu = math.max(0, ms.total - ms.kernels - ms.compile_wait)
    if model.timing then tm.kernels, tm.cpu, tm.compile_wait = 0, 0, 0 end
    done_here = done_here + 1
    stats.steps, stats.ms = stats.steps + 1, stats.ms + ms.total
    stats.kernels, stats.wait, stats.cpu = stats.kernels + ms.kernels, stats.wait + ms.compile_wait, stats.cpu + ms.cpu
    recent[#recent + 1] = ms.total
    if #recent > 20 then table.remove(recent, 1) end
    local avg = 0
    for _, v in ipairs(recent) do avg = avg + v end
    avg = avg / #recent
    local rec = { step = step, loss = loss, lr = lr, tokens_per_s = tokens_per_step / (ms.total / 1e3),
      ms = ms, loss_scale = r.loss_scale, grad_norm = r.grad_norm == r.grad_norm and r.grad_norm < math.huge
      and r.grad_norm or nil, skipped = r.skipped or nil }
    record(rec)
    train_pts[#train_pts + 1] = { step, loss }
    local is_eval = o.eval_every > 0 and (step % o.eval_every == 0 or step == o.steps)
    if is_eval then
      last_eval = eval_loss(step)
      if last_eval then
        record { step = step, eval_loss = last_eval }
        eval_pts[#eval_pts + 1] = { step, last_eval }
      end
    end
    rec.eval_loss = last_eval
    rec.eta_s = avg * (o.steps - step) / 1e3
    prog:update(rec, is_eval)
    if step % o.ckpt_every == 0 or step == o.steps then save(step, rng:state()) end
    if hooks.after_step and hooks.after_step(step, model) == "stop" then
      if step % o.ckpt_every ~= 0 and step ~= o.steps then save(step, rng:state()) end
      break
    end
  end
  local steps_wall = ane.now() - steps_t0
  log:close()
  prog:finish()
  if start >= o.steps then
    say(string.format("%s is already at step %d of %d; nothing to do", dir, start, o.steps))
  end

  -- the efficiency report (like the research's)
  if not o.quiet and stats.steps > 0 then
    local wall = ane.now() - wall0
    local compile_s = (build_ms + stats.wait) / 1e3
    local n = stats.steps
    local out = hooks.out or io.stdout
    out:write(string.format(
      "efficiency report (%s, %s, backend %s)\n"
      .. "  steps        %d (%d..%d), batch %d x seq %d\n"
      .. "  wall         %.2f s (%.2f s in steps)\n"
      .. "  compile      %.2f s (%.1f%% of wall: model build %.0f ms + waiting %.0f ms)\n"
      .. "  ms/step      %.1f (kernels %.1f, compile wait %.1f, cpu %.1f)\n"
      .. "  tokens/s     %.0f\n"
      .. "  sustained    %.2f GFLOP/s (%.3g GFLOP per step: 6 x params x tokens + attention)\n",
      o.style, o.precision, o.backend or ane.backend(),
      n, start + 1, start + n, o.batch, seq, wall, steps_wall,
      compile_s, 100 * compile_s / wall, build_ms, stats.wait,
      stats.ms / n, stats.kernels / n, stats.wait / n, stats.cpu / n,
      tokens_per_step * n / (stats.ms / 1e3),
      flops * n / (stats.ms / 1e3) / 1e9, flops / 1e9))
    out:flush()
  end
  if hooks.keep_model then return model, ds end
  if model.close then model:close() end
  return true
end

--- main(argv [, hooks]) -> exit code: parse, run, and print errors as "train: message".
function M.main(argv, hooks)
  hooks = hooks or {}
  hooks.argv = argv
  local ok, o = pcall(M.parse_args, argv)
  if not ok then
    if type(o) == "table" and o.usage then
      io.stderr:write("train: ", o.usage, "\n", M.USAGE, "\n")
      return 1
    end
    error(o, 0)
  end
  if o.help then print(M.USAGE) return 0 end
  local okr, err = pcall(M.run, o, hooks)
  if not okr then
    io.stdout:flush()
    io.stderr:write("\ntrain: ", tostring(err), "\n")
    return 1
  end
  return 0
end

return M
