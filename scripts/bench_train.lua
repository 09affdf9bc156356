-- bench_train: training Stories110M on the CPU backend against PyTorch, side by side in one run.
--
--   build/ane scripts/bench_train.lua [--python PY] [--steps N] [--config stories110M|stories15M]
--                                     [--styles dynamic,static,static_extras] [--report-steps N]
--
-- 1. ms/step of ane's dynamic style (fp32 and the default fp16 numerics) and of PyTorch (fp32,
--    scripts/bench_train_ref.py) on the same model (all layers, vocab 32000, batch 1, seq 256,
--    AdamW with clipping), same thread count, PyTorch run the careful way: OMP_WAIT_POLICY=passive
--    and jemalloc with decay off (LD_PRELOAD, MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1);
--    both sides use the OpenBLAS core type the environment selects (printed).
-- 2. tokens/s, GFLOP/s (6·params·tokens + attention) and that as a share of cblas_sgemm's GFLOP/s
--    on the step's own GEMM shapes (measured in this run); the ideal GEMM time of a step as a
--    share of the step (a lower bound of the time the step spends in GEMMs).
-- 3. peak RSS of each ane run (its own process) against parameters + gradients + two moments +
--    the activations a step keeps.
-- 4. a --report-steps (default 20) run of examples/train.lua per style: its efficiency report.
-- PyTorch is found through --python or $ANE_TORCH_PYTHON (default: /usr/bin/python3, python3);
-- without torch that part is skipped with a message. Never run in CI.
local ane = require "ane"

local function now() return ane.now() end
local root = os.getenv("ANE_ROOT") or "."
local function shq(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local args = {}
do
  local i = 1
  while i <= #arg do
    local k = arg[i]:match("^%-%-(.+)")
    if k == "one" then args.one = { arg[i + 1], arg[i + 2], arg[i + 3], arg[i + 4] }; i = i + 4
    elseif k then args[k] = arg[i + 1]; i = i + 1 end
    i = i + 1
  end
end

local CONFIGS = require("ane.train").CONFIGS

-- ---- one measured ane run in this process: --one CONFIG STYLE PRECISION STEPS ----
local function peak_rss_mb()
  local f = io.open("/proc/self/status")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  local kb = s:match("VmHWM:%s*(%d+)")
  return kb and tonumber(kb) / 1024
end

if args.one then
  local cname, style, prec, steps = args.one[1], args.one[2], args.one[3], tonumber(args.one[4])
  local cfg = {}
  for k, v in pairs(CONFIGS[cname]) do cfg[k] = v end
  local Model = require "ane.model"
  local optim = require "ane.optim"
  local m = Model.new(cfg, { style = style, precision = prec, seed = 1 })
  local opt = optim.adamw { lr = 1e-4, loss_scale = prec == "fp16" and "dynamic" or nil }
  local S = cfg.seq
  local tok, tgt = ane.zeros({ S }, "int32"), ane.zeros({ S }, "int32")
  local rng = require("ane.data").rng(1)
  local times, kern, wait, optms = {}, {}, {}, {}
  for step = 1, steps + 2 do
    for j = 1, S do tok[j] = rng:below(cfg.vocab); tgt[j] = rng:below(cfg.vocab) end
    m.timing.kernels, m.timing.cpu, m.timing.compile_wait = 0, 0, 0
    local t0 = now()
    m:forward(tok, tgt)
    m:zero_grad()
    m:backward(opt.loss_scale)
    local t1 = now()
    opt:step(m)
    local t2 = now()
    if step > 2 then -- the first two steps compile and fault pages in
      times[#times + 1] = (t2 - t0) * 1e3
      kern[#kern + 1], wait[#wait + 1] = m.timing.kernels, m.timing.compile_wait
      optms[#optms + 1] = (t2 - t1) * 1e3
    end
  end
  local function median(t)
    local c = { table.unpack(t) }
    table.sort(c)
    return c[(#c + 1) // 2]
  end
  local n = 0
  for _, p in ipairs(m:params()) do n = n + p.param:numel() end
  print(require("ane.checkpoint").json {
    ms = median(times), best = math.min(table.unpack(times)), kernels = median(kern),
    compile_wait = median(wait), optimizer = median(optms), params = n, rss_mb = peak_rss_mb() })
  m:close()
  return
end

-- ---- the driver ----
local cname = args.config or "stories110M"
local cfg = CONFIGS[cname]
local steps = tonumber(args.steps or 5)
local threads = tonumber(os.getenv("ANE_CPU_THREADS") or "") or tonumber(io.popen("getconf _NPROCESSORS_ONLN"):read("l"))
local bi = ane.blas_info()
local coretype = os.getenv("OPENBLAS_CORETYPE")
print(string.format("bench_train: %s (dim %d, hidden %d, %d layers, %d heads, vocab %d), batch 1, seq %d, AdamW",
  cname, cfg.dim, cfg.hidden, cfg.n_layers, cfg.n_heads, cfg.vocab, cfg.seq))
print(string.format("  threads %d; GEMM kernel: %s %s (OPENBLAS_CORETYPE=%s, used by both sides)",
  threads, bi.name, bi.corename or "", coretype or "unset"))

local self_cmd = shq(arg[-1]) .. " " .. shq(arg[0])
local function one(style, prec)
  local p = io.popen(self_cmd .. " --one " .. cname .. " " .. style .. " " .. prec .. " " .. steps .. " 2>&1")
  local out = p:read("a")
  p:close()
  local ok, r = pcall(require("cjson").decode, out:match(".*(%b{})") or "")
  if not ok then error("ane run failed: " .. out, 0) end
  return r
end

-- PyTorch, tuned
local py = args.python or os.getenv("ANE_TORCH_PYTHON")
if not py then
  for _, c in ipairs { "/usr/bin/python3", "python3" } do
    if os.execute(shq(c) .. " -c 'import torch' >/dev/null 2>&1") then py = c; break end
  end
end
local torch
if py and os.execute(shq(py) .. " -c 'import torch' >/dev/null 2>&1") then
  local jemalloc
  for _, p in ipairs { "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2",
    "/usr/lib/libjemalloc.so.2" } do
    local f = io.open(p)
    if f then f:close(); jemalloc = p; break end
  end
  local env = "OMP_WAIT_POLICY=passive OMP_NUM_THREADS=" .. threads
  if jemalloc then env = env .. " LD_PRELOAD=" .. jemalloc .. " MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1" end
  print("  PyTorch: " .. py .. " with " .. env .. (jemalloc and "" or "  (libjemalloc2 not found: allocator untuned)"))
  local cmd = string.format("env %s %s %s/scripts/bench_train_ref.py --dim %d --hidden %d --layers %d --heads %d "
    .. "--kv-heads %d --vocab %d --seq %d --steps %d --threads %d 2>&1", env, shq(py), shq(root), cfg.dim,
    cfg.hidden, cfg.n_layers, cfg.n_heads, cfg.n_kv_heads, cfg.vocab, cfg.seq, steps, threads)
  torch = { cmd = cmd }
else
  print("  PyTorch: skipped (no python with torch; install python3-torch and libjemalloc2, or set --python / ANE_TORCH_PYTHON)")
end

-- side by side: ane fp32, torch, ane fp16 (interleaved so load changes hit both)
local fp32 = one("dynamic", "fp32")
if torch then
  local out = io.popen(torch.cmd):read("a")
  local ok, r = pcall(require("cjson").decode, out:match("(%b{})"))
  if ok then torch.r = r else print("  PyTorch run failed: " .. out) torch = nil end
end
local fp16 = one("dynamic", "fp16")

local flops = require("ane.train").step_flops(cfg, 1, cfg.seq)
local tokens = cfg.seq
local function row(name, ms, extra)
  print(string.format("  %-26s %8.1f ms/step  %7.1f tokens/s  %6.1f GFLOP/s%s", name, ms, tokens / (ms / 1e3),
    flops / (ms / 1e3) / 1e9, extra or ""))
end
print("\nms/step (median of " .. steps .. " steps after 2 warm-up steps)")
row("ane dynamic fp32", fp32.ms, string.format("  (kernels %.0f, optimizer %.0f)", fp32.kernels, fp32.optimizer))
row("ane dynamic fp16", fp16.ms, string.format("  (kernels %.0f, optimizer %.0f)", fp16.kernels, fp16.optimizer))
if torch then
  row("PyTorch fp32 (tuned)", torch.r.ms_per_step, "  torch " .. torch.r.torch)
  print(string.format("  ratio ane/PyTorch: fp32 %.2fx (target <= 1.0x), fp16 %.2fx (target <= 1.2x)",
    fp32.ms / torch.r.ms_per_step, fp16.ms / torch.r.ms_per_step))
end

-- cblas_sgemm on the step's own GEMM shapes: forward y = W x, backward dx = Wᵀ dy and dW = dy xᵀ
local D, H, V, S = cfg.dim, cfg.hidden, cfg.vocab, cfg.seq
local kv = D * cfg.n_kv_heads // cfg.n_heads
local shapes = { -- {m, n, k, count per step}
  { D, S, D, 2 * cfg.n_layers }, { kv, S, D, 2 * cfg.n_layers }, { H, S, D, 2 * cfg.n_layers },
  { D, S, H, cfg.n_layers }, { S, V, D, 1 },                       -- forward (+ classifier)
  { D, S, D, 2 * cfg.n_layers }, { D, S, kv, 2 * cfg.n_layers }, { D, S, H, 2 * cfg.n_layers },
  { H, S, D, cfg.n_layers }, { S, D, V, 1 },                       -- input gradients
  { D, D, S, 2 * cfg.n_layers }, { kv, D, S, 2 * cfg.n_layers }, { H, D, S, 2 * cfg.n_layers },
  { D, H, S, cfg.n_layers }, { V, D, S, 1 },                       -- weight gradients
}
local gemm_s, gemm_flops = 0, 0
for _, sh in ipairs(shapes) do
  local best = ane.bench_sgemm(sh[1], sh[2], sh[3], 3)
  gemm_s = gemm_s + best * sh[4]
  gemm_flops = gemm_flops + 2 * sh[1] * sh[2] * sh[3] * sh[4]
end
local sgemm_gflops = gemm_flops / gemm_s / 1e9
print(string.format("\ncblas_sgemm on the step's GEMM shapes (%d threads): %.1f GFLOP/s, %.1f ms for one step's GEMMs",
  threads, sgemm_gflops, gemm_s * 1e3))
for _, r in ipairs { { "fp32", fp32 }, { "fp16", fp16 } } do
  local g = flops / (r[2].ms / 1e3) / 1e9
  print(string.format("  ane dynamic %s: %.1f GFLOP/s = %.0f%% of cblas_sgemm (goal >= 70%%); ideal GEMM time %.0f%% of the step (goal >= 80%%)",
    r[1], g, 100 * g / sgemm_gflops, 100 * gemm_s * 1e3 / r[2].ms))
end

-- memory
local params = fp32.params
local act = cfg.n_layers * (8 * D + 3 * H) * S * 4 + cfg.n_layers * cfg.n_heads * S * S * 4 * 2 + 2 * S * V * 4
local floor_mb = (params * 4 * 4 + act) / 2 ^ 20
print(string.format("\npeak RSS (each run its own process): fp32 %.0f MB, fp16 %.0f MB; params+grads+moments %.0f MB + activations %.0f MB = %.0f MB -> %.2fx, %.2fx (target <= 1.3x)",
  fp32.rss_mb, fp16.rss_mb, params * 16 / 2 ^ 20, act / 2 ^ 20, floor_mb, fp32.rss_mb / floor_mb, fp16.rss_mb / floor_mb))

-- 20-step efficiency reports per style (examples/train.lua on random tokens)
local rsteps = tonumber(args["report-steps"] or 20)
if rsteps > 0 then
  local dir = os.tmpname()
  os.remove(dir)
  os.execute("mkdir -p " .. shq(dir))
  local n = (rsteps + 2) * cfg.seq + cfg.seq + 1
  local r = require("ane.data").rng(3)
  local parts = {}
  for i = 1, n do parts[i] = string.pack("<I2", r:below(cfg.vocab)) end
  local data = dir .. "/tokens.bin"
  local f = assert(io.open(data, "wb")); f:write(table.concat(parts)); f:close()
  print(string.format("\n%d-step runs of examples/train.lua (--config %s --batch 1, random tokens); the research's M4 "
    .. "figures: static 106.7 ms/step (75%% of wall in compiles), static + extras 91.8, dynamic 111 (0.4 s compile)", rsteps, cname))
  for style in (args.styles or "dynamic,static,static_extras"):gmatch("[^,]+") do
    local out = io.popen(string.format("%s %s/examples/train.lua --out %s/%s --config %s --data %s --batch 1 --steps %d "
      .. "--style %s --eval-every 0 --ckpt-every %d 2>&1", shq(arg[-1]), shq(root), shq(dir), style, cname, shq(data),
      rsteps, style, rsteps * 10)):read("a")
    print(out:match("(efficiency report.*)") or ("  " .. style .. " failed:\n" .. out))
  end
  os.execute("rm -rf " .. shq(dir))
end
