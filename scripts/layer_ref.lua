-- scripts/layer_ref.lua: glue between one ane.stories layer and the NumPy reference
-- scripts/bench_layer_ref.py (benchmark 2 of scripts/bench.lua, and spec/stories_spec.lua).
--   local lr = dofile(ROOT .. "/scripts/layer_ref.lua")
--   lr.save_layer_npy(dir, w, x); os.execute(lr.ref_command(cfg, dir, {iters = 10, out = ...}))
--   local sum, abs_sum = lr.checksum(y)
local R = {}

local KEYS = { "wq", "wk", "wv", "wo", "w1", "w2", "w3", "rms_att", "rms_ffn" }

--- Write x.npy and the layer's weights (W[out][in], as stored) into an existing directory.
function R.save_layer_npy(dir, w, x)
  for _, k in ipairs(KEYS) do
    if not w[k] then error("save_layer_npy: weight '" .. k .. "' missing", 2) end
    w[k]:save_npy(dir .. "/" .. k .. ".npy")
  end
  x:save_npy(dir .. "/x.npy")
end

--- The shell command running bench_layer_ref.py on those files for this config
-- (opts: iters = 10, warmup = 2, out = path, root = $ANE_ROOT or ".").
function R.ref_command(cfg, dir, opts)
  opts = opts or {}
  if cfg.residual_scale ~= 1 then error("ref_command: the NumPy reference has residual_scale 1", 2) end
  if cfg.n_kv_heads ~= cfg.n_heads then error("ref_command: the NumPy reference has no GQA", 2) end
  local root = opts.root or os.getenv("ANE_ROOT") or "."
  local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
  local cmd = string.format("/usr/bin/python3 %s --dir %s --dim %d --hidden %d --heads %d --seq %d --eps %.17g --theta %.17g --iters %d --warmup %d",
    q(root .. "/scripts/bench_layer_ref.py"), q(dir), cfg.dim, cfg.hidden, cfg.n_heads, cfg.seq,
    cfg.norm_eps, cfg.rope_theta, opts.iters or 10, opts.warmup or 2)
  if not cfg.rope then cmd = cmd .. " --no-rope" end
  if opts.out then cmd = cmd .. " --out " .. q(opts.out) end
  return cmd
end

--- sum, sum of |.| of a tensor (accumulated in double): the two figures the script prints.
function R.checksum(t)
  local n = t:numel()
  local flat = t:reshape { n }
  local s, a = 0.0, 0.0
  for i = 1, n do
    local v = flat[i]
    s, a = s + v, a + math.abs(v)
  end
  return s, a
end

return R
