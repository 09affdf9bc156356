-- scripts/bench_train_step.lua: one ane.model training step (forward, zero_grad, backward, AdamW),
-- ms/step split by where the time goes, and the step's GEMMs alone on the same engine.
--
--   build/ane scripts/bench_train_step.lua [--config stories15M|stories110M|tiny]
--       [--style dynamic|static|static_extras] [--precision fp32|fp16] [--steps N] [--batch B]
--       [--active-vocab K] [--overlap 0|1] [--no-optim]
--
-- Prints per step: total ms, the model's timing split (kernels / CPU / compile wait) and the
-- optimizer's ms; then the median step, tokens/s, GFLOP/s (6·params·tokens + attention), and
-- "GEMMs alone": every GEMM of the step (projections, attention scores and values, classifier,
-- input and weight gradients) run back to back through ane.nn.gemm (cpu_sgemm, the kernels'
-- own GEMM path) on scratch tensors of the step's shapes. GEMMs alone / step is the share of the
-- step that is GEMM work (the issue's target: at least 80%); the rest is everything else.
-- Ratios only mean something measured side by side in one run on this loaded machine.
local ane = require "ane"
local stories = require "ane.stories"
local model = require "ane.model"

local o = { config = "stories15M", style = "dynamic", precision = "fp32", steps = 4, batch = 1, optim = true }
local i = 1
while arg and i <= #arg do
  local a = arg[i]
  local k = a:match("^%-%-(.+)$")
  if k == "no-optim" then o.optim = false
  elseif k and arg[i + 1] then
    o[k:gsub("-", "_")] = tonumber(arg[i + 1]) or arg[i + 1]
    i = i + 1
  else
    io.stderr:write("usage: bench_train_step.lua [--config NAME] [--style S] [--precision P] [--steps N] [--batch B] [--active-vocab K] [--no-optim]\n")
    os.exit(2)
  end
  i = i + 1
end

local CONFIGS = { stories15M = stories.STORIES15M, stories110M = stories.STORIES110M,
  tiny = { dim = 64, hidden = 176, n_layers = 2, n_heads = 4, vocab = 512, seq = 64 } }
local cfg = stories.config(assert(CONFIGS[o.config], "unknown config " .. tostring(o.config)))
local S, B = cfg.seq, o.batch

local overlap
if o.overlap ~= nil then overlap = o.overlap == 1 end
local m <close> = model.new(cfg, { style = o.style, precision = o.precision, seed = 1, overlap = overlap })
local nparams = 0
for _, p in ipairs(m:params()) do nparams = nparams + p.param:numel() end
local rng = ane.rng(7)
local tok, tgt = ane.zeros({ B * S }, "int32"), ane.zeros({ B * S }, "int32")
local V = cfg.vocab
local active = o.active_vocab and math.min(o.active_vocab, V) or nil
local idmax = active or V
for j = 1, B * S do
  tok[j] = math.floor(rng:uniform() * idmax)
  tgt[j] = math.floor(rng:uniform() * idmax)
end
if active then
  local ids = {}
  for v = 0, active - 1 do ids[#ids + 1] = v end
  m:set_active_vocab(ids)
end
local opt = o.optim and require("ane.optim").adamw { lr = 1e-4 } or nil

print(string.format("ane.model %s, style %s, precision %s, batch %d x seq %d, %.1fM parameters%s, backend %s, dW GEMMs %s",
  o.config, o.style, o.precision, B, S, nparams / 1e6, active and (", active vocab " .. active) or "",
  ane.backend(), m.overlap and "overlapped (worker thread)" or "inline"))
local times = {}
for step = 1, o.steps do
  local t0 = ane.now()
  m:forward(tok, tgt)
  m:zero_grad()
  m:backward(1)
  local t1 = ane.now()
  if opt then opt:step(m, { lr = 1e-4 }) end
  local t2 = ane.now()
  local tm = m.timing
  local total = (t2 - t0) * 1e3
  print(string.format("  step %d: %7.1f ms  (kernels %.1f, cpu %.1f, compile wait %.1f, optimizer %.1f)",
    step, total, tm.kernels, tm.cpu, tm.compile_wait, (t2 - t1) * 1e3))
  tm.kernels, tm.cpu, tm.compile_wait = 0, 0, 0
  if step > 1 or o.steps == 1 then times[#times + 1] = total end
end
table.sort(times)
local med = times[(#times + 1) // 2]

-- every GEMM of the step, alone: {M, N, K, count}
local D, H, KV, L = cfg.dim, cfg.hidden, cfg.kv_dim, cfg.n_layers
local Va = active or V
local shapes = {}
local function add(Mm, N, K, n) shapes[#shapes + 1] = { Mm, N, K, n } end
for _, w in ipairs { { D, D }, { KV, D }, { KV, D }, { D, D }, { H, D }, { H, D }, { D, H } } do
  add(w[1], S, w[2], 3 * L * B) -- forward y = W·x, input gradient Wᵀ·dy, weight gradient dy·xᵀ
end
-- attention per head: scores S×S×Dh and values S×Dh×S, forward; backward four of the same size
add(S, S, cfg.head_dim, 3 * cfg.n_heads * L * B)
add(S, cfg.head_dim, S, 3 * cfg.n_heads * L * B)
add(S, Va, D, 3 * B) -- classifier: logits, dx, dW
local flops, t_gemm = 0, 0
for _, sh in ipairs(shapes) do
  local Mm, N, K, n = sh[1], sh[2], sh[3], sh[4]
  local C, A, Bm = ane.zeros({ Mm, N }, "fp32"), ane.rand({ Mm, K }, { dtype = "fp32", seed = 1 }),
      ane.rand({ K, N }, { dtype = "fp32", seed = 2 })
  ane.nn.gemm(C, A, Bm, false, false)
  local best = math.huge
  for _ = 1, 2 do
    local t0 = ane.now()
    for _ = 1, n do ane.nn.gemm(C, A, Bm, false, false) end
    best = math.min(best, ane.now() - t0)
  end
  t_gemm = t_gemm + best * 1e3
  flops = flops + 2 * Mm * N * K * n
end
local tokens = B * S
print(string.format("median step %.1f ms: %.0f tokens/s, %.1f GFLOP/s (%.1f GFLOP per step)", med,
  tokens / (med / 1e3), flops / (med / 1e3) / 1e9, flops / 1e9))
print(string.format("the step's GEMMs alone: %.1f ms (%.1f GFLOP/s): %.0f%% of the step is GEMM work, %.1f ms is the rest",
  t_gemm, flops / (t_gemm / 1e3) / 1e9, 100 * t_gemm / med, med - t_gemm))
