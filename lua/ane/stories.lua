--- ane.stories: MIL generators for the Stories110M transformer (llama2.c "stories110M") and the
-- kernels a training step runs, written the way the ANE research writes them.
--
--   local stories = require "ane.stories"            -- or ane.stories
--   local cfg = stories.config{}                     -- Stories110M; tests pass a tiny table
--   local w = stories.init_weights(cfg, {seed = 1})  -- or your own ane.Tensors (shapes below)
--   local p = stories.layer_forward(cfg, w.layers[1]) -- one full layer, one MIL program
--   local k = ane.compile(p); k:load(); local y = k:eval{x}
--
-- Layout: every activation is fp16 [1, C, 1, S] (channels = features, S = sequence), as on the
-- ANE. Weight matrices are ane.Tensors in the llama2.c / PyTorch orientation W[out][in]:
--   wq, wk, wv, wo [dim, dim]; w1, w3 [hidden, dim]; w2 [dim, hidden]; rms_att, rms_ffn [dim];
--   model: embed [vocab, dim] (shared with the classifier, as in stories110M), rms_final [dim].
-- Const weights become one blob file each (the builder's rule; M1 needs one tensor per file).
--
-- Sources mirrored (maderix/ANE, facts only): training/stories_mil.h (the static train_large
-- kernels), training/ane_classifier.h and ane_rmsnorm_bwd.h (train_large_ane), and
-- training/training_dynamic/mil_dynamic.h (weights as runtime inputs, RoPE); the model math is
-- llama2.c run.c.
--
-- RoPE: stories110M uses rotary embeddings on q and k (llama2.c, interleaved pairs (2i, 2i+1),
-- theta_i = pos / 10000^(2i/head_dim)). The static research kernels (stories_mil.h) leave RoPE
-- out; mil_dynamic.h applies it inside sdpaFwd with cos/sin blobs [1, 1, S, head_dim] and a
-- reshape-to-pairs / slice / negate / concat rotation. We apply it that way in every forward
-- kernel (cfg.rope = false reproduces the research's static kernels exactly), and sdpaBwd2
-- rotates dQ/dK back (the research does that step on the CPU, rope_backward_inplace), so its
-- outputs are gradients with respect to the un-rotated projections.
local ane = require "ane"
local mil = require "ane.mil"

local M = {}

-- ===================================================================
-- configuration
-- ===================================================================

--- The llama2.c stories110M shape (dim 768, hidden 2048, 12 layers, 12 heads of 64, vocab 32000).
M.STORIES110M = {
  dim = 768, hidden = 2048, n_layers = 12, n_heads = 12, vocab = 32000, seq = 256,
  eps = 1e-5, rope = true, rope_theta = 10000, residual_scale = 1,
}

local CONFIG_KEYS = {}
for k in pairs(M.STORIES110M) do CONFIG_KEYS[k] = true end

local function posint(cfg, k)
  local v = cfg[k]
  if math.type(v) ~= "integer" or v < 1 then
    error(string.format("stories.config: '%s' must be a positive integer, got %s", k, tostring(v)), 3)
  end
end

--- stories.config(t) -> a complete config: t's fields over the Stories110M defaults, checked.
-- Adds head_dim = dim / n_heads.
function M.config(t)
  t = t or {}
  if type(t) ~= "table" then error("stories.config: expected a table, got " .. type(t), 2) end
  local cfg = {}
  for k, v in pairs(M.STORIES110M) do cfg[k] = v end
  for k, v in pairs(t) do
    if k == "head_dim" then
      -- accepted when it agrees (a config that went through stories.config already)
    elseif not CONFIG_KEYS[k] then
      error("stories.config: unknown field '" .. tostring(k) .. "'", 2)
    else
      cfg[k] = v
    end
  end
  for _, k in ipairs { "dim", "hidden", "n_layers", "n_heads", "vocab", "seq" } do posint(cfg, k) end
  if cfg.dim % cfg.n_heads ~= 0 then
    error(string.format("stories.config: dim %d does not split into %d heads", cfg.dim, cfg.n_heads), 2)
  end
  cfg.head_dim = cfg.dim // cfg.n_heads
  if t.head_dim ~= nil and t.head_dim ~= cfg.head_dim then
    error("stories.config: head_dim must be dim / n_heads", 2)
  end
  if type(cfg.rope) ~= "boolean" then error("stories.config: 'rope' must be a boolean", 2) end
  if cfg.rope and cfg.head_dim % 2 ~= 0 then
    error("stories.config: RoPE needs an even head_dim, got " .. cfg.head_dim, 2)
  end
  for _, k in ipairs { "eps", "rope_theta", "residual_scale" } do
    if type(cfg[k]) ~= "number" or cfg[k] <= 0 then
      error(string.format("stories.config: '%s' must be a positive number", k), 2)
    end
  end
  return cfg
end

local function cfg_of(cfg)
  if type(cfg) ~= "table" then error("stories: config table expected, got " .. type(cfg), 3) end
  if not cfg.head_dim then return M.config(cfg) end
  return cfg
end

-- ===================================================================
-- weights
-- ===================================================================

local LAYER_SHAPES = function(cfg)
  local D, H = cfg.dim, cfg.hidden
  return {
    wq = { D, D }, wk = { D, D }, wv = { D, D }, wo = { D, D },
    w1 = { H, D }, w3 = { H, D }, w2 = { D, H },
    rms_att = { D }, rms_ffn = { D },
  }
end
M.layer_shapes = LAYER_SHAPES

local function check_layer(cfg, w, needed, who)
  if type(w) ~= "table" then error(who .. ": layer weights table expected, got " .. type(w), 3) end
  local shapes = LAYER_SHAPES(cfg)
  for _, k in ipairs(needed) do
    local t = w[k]
    if getmetatable(t) == nil or type(t) ~= "userdata" then
      error(string.format("%s: weight '%s' missing (an ane.Tensor)", who, k), 3)
    end
    local s, want = t:shape(), shapes[k]
    local ok = #s == #want
    for i = 1, #want do ok = ok and s[i] == want[i] end
    if not ok then
      error(string.format("%s: weight '%s' has shape [%s], expected [%s]", who, k,
        table.concat(s, ", "), table.concat(want, ", ")), 3)
    end
  end
end

--- stories.init_weights(cfg, {seed = 0, std = 0.02, layers = cfg.n_layers, embed = true})
-- -> {layers = {{wq=..., ...}, ...}, embed = [vocab, dim], rms_final = [dim]}: fp16 tensors,
-- matrices normal(0, std), RMSNorm weights 1 + normal(0, std) (so a bug that drops them shows).
function M.init_weights(cfg, opts)
  cfg = cfg_of(cfg)
  opts = opts or {}
  local rng = ane.rng(opts.seed or 0)
  local std = opts.std or 0.02
  local function mat(shape) return ane.rand(shape, { dist = "normal", std = std, rng = rng }) end
  local function norm(n) return ane.rand({ n }, { dist = "normal", mean = 1, std = std, rng = rng }) end
  local out = { layers = {} }
  for l = 1, opts.layers or cfg.n_layers do
    local shapes = LAYER_SHAPES(cfg)
    local w = {}
    for _, k in ipairs { "wq", "wk", "wv", "wo", "w1", "w3", "w2" } do w[k] = mat(shapes[k]) end
    w.rms_att, w.rms_ffn = norm(cfg.dim), norm(cfg.dim)
    out.layers[l] = w
  end
  if opts.embed ~= false then
    out.embed = mat({ cfg.vocab, cfg.dim })
    out.rms_final = norm(cfg.dim)
  end
  return out
end

-- W^T through the CPU backend (one transpose kernel per shape): the research's build_blob_t.
local transpose_kernels = {}
function M.transpose(t)
  local s = t:shape()
  if #s ~= 2 then error("stories.transpose: a rank-2 tensor expected", 2) end
  local key = s[1] .. "x" .. s[2] .. t:dtype()
  local k = transpose_kernels[key]
  if not k then
    local p = mil.program { opset = "ios18" }
    local f = p:func("main")
    local x = f:input("x", t:dtype(), s)
    f:output(f:transpose(x, { 1, 0 }, { name = "y" }))
    k = ane.compile(p, { backend = "cpu", precision = "fp32" })
    k:load()
    transpose_kernels[key] = k
  end
  return (k:eval { t })
end

-- ===================================================================
-- shared MIL pieces
-- ===================================================================

-- cos/sin tables [1, 1, S, head_dim] for interleaved pairs (mil_dynamic.h get_rope_*_blob),
-- cached per shape; neg = true gives -sin (the inverse rotation used in backward).
local rope_cache = {}
local function rope_tables(cfg)
  local S, Dh, th = cfg.seq, cfg.head_dim, cfg.rope_theta
  local key = S .. ":" .. Dh .. ":" .. th
  local r = rope_cache[key]
  if r then return r end
  local c, s, ns = {}, {}, {}
  for p = 0, S - 1 do
    for i = 0, Dh // 2 - 1 do
      local a = p / th ^ (2 * i / Dh)
      local base = p * Dh + 2 * i
      c[base + 1], c[base + 2] = math.cos(a), math.cos(a)
      s[base + 1], s[base + 2] = math.sin(a), math.sin(a)
      ns[base + 1], ns[base + 2] = -math.sin(a), -math.sin(a)
    end
  end
  local shape = { 1, 1, S, Dh }
  r = { cos = ane.from_table(c, "fp16", shape), sin = ane.from_table(s, "fp16", shape),
        nsin = ane.from_table(ns, "fp16", shape) }
  rope_cache[key] = r
  return r
end
M.rope_tables = rope_tables

local SWAP = { 0, 1, 3, 2 }

-- [1, H·Dh, 1, S] -> [1, H, S, Dh] (reshape + transpose, as every research kernel does)
local function to_heads(f, t, cfg, name)
  local r = f:reshape(t, { 1, cfg.n_heads, cfg.head_dim, cfg.seq })
  return f:transpose(r, SWAP, { name = name })
end

-- [1, H, S, Dh] -> [1, H·Dh, 1, S]
local function from_heads(f, t, cfg, name)
  local tr = f:transpose(t, SWAP)
  return f:reshape(tr, { 1, cfg.dim, 1, cfg.seq }, { name = name })
end

-- RoPE on [1, H, S, Dh]: t·cos + rot(t)·sin with rot(t)[2i] = -t[2i+1], rot(t)[2i+1] = t[2i]
-- (mil_dynamic.h: reshape to pairs [1, H, S·Dh/2, 2], slice even/odd, negate, concat axis 3).
local function rope(f, t, sin_t, cfg, name)
  local tabs = rope_tables(cfg)
  local H, S, Dh = t.shape[2], cfg.seq, cfg.head_dim
  local pairs_ = f:reshape(t, { 1, H, S * Dh // 2, 2 })
  local ev = f:slice_by_size(pairs_, { 0, 0, 0, 0 }, { 1, H, S * Dh // 2, 1 })
  local od = f:slice_by_size(pairs_, { 0, 0, 0, 1 }, { 1, H, S * Dh // 2, 1 })
  local rot = f:concat({ f:mul(od, -1), ev }, 3, false)
  local rot4 = f:reshape(rot, { 1, H, S, Dh })
  local tc = f:mul(t, f:const(tabs.cos, "fp16", { name = "rope_cos" }))
  local rs = f:mul(rot4, f:const(sin_t or tabs.sin, "fp16", { name = sin_t and "rope_nsin" or "rope_sin" }))
  return f:add(tc, rs, { name = name })
end

-- scores -> probabilities [1, H, S, S]: matmul(q, kᵀ)·(1/√Dh) + causal mask, softmax over keys
-- (stories_mil.h mm1/scl/msk/sm).
local function attn_probs(f, q, k, cfg)
  local s = f:matmul(q, k, false, true)
  s = f:mul(s, 1 / math.sqrt(cfg.head_dim))
  s = f:add(s, f:causal_mask(cfg.seq))
  return f:softmax(s, -1, { name = "probs" })
end

-- slice channels [c0, c0 + n) of a [1, C, 1, S] value (operands packed along channels)
local function ch_slice(f, x, c0, n, name)
  return f:slice_by_size(x, { 0, c0, 0, 0 }, { 1, n, 1, x.shape[4] }, { name = name })
end

-- slice spatial columns [s0, s0 + n) of a [1, C, 1, W] value (operands packed along S)
local function sp_slice(f, x, s0, n, name)
  return f:slice_by_size(x, { 0, 0, 0, s0 }, { 1, x.shape[2], 1, n }, { name = name })
end

local function cat(f, values, name)
  return f:concat(values, 1, false, { name = name })
end

-- y[oc][s] = Σ_ic act[ic][s]·W[ic][oc] with act [1, IC, 1, S] and W [1, IC, 1, OC] (values
-- sliced from a packed input): mil_dynamic.h gen_dyn_matmul (reshape, transpose, matmul).
local function dyn_matmul(f, act, wv, name)
  local IC, S, OC = act.shape[2], act.shape[4], wv.shape[4]
  local a3 = f:transpose(f:reshape(act, { 1, 1, IC, S }), SWAP)
  local W = f:reshape(wv, { 1, 1, IC, OC })
  local yh = f:matmul(a3, W, false, false)
  return f:reshape(f:transpose(yh, SWAP), { 1, OC, 1, S }, { name = name })
end

local function new_prog()
  local p = mil.program { opset = "ios18" }
  return p, p:func("main")
end

-- ===================================================================
-- (a) one full layer forward in one program
-- ===================================================================

--- stories.layer_forward(cfg, w) -> mil.Program: input x [1, dim, 1, seq] fp16, output
-- y [1, dim, 1, seq] = the llama2.c layer:
--   xn = rmsnorm(x)·rms_att; q, k, v = Wq xn, Wk xn, Wv xn; RoPE(q, k);
--   x2 = x + Wo·attn(q, k, v) (causal, per head softmax(q kᵀ/√Dh)·v);
--   y  = x2 + W2·(silu(W1 rmsnorm(x2)·rms_ffn) ⊙ W3 rmsnorm(x2)·rms_ffn).
-- Projections are 1×1 convs with const weights (stories_mil.h); this is fwdAttn + fwdFFN of
-- train_large fused, without the taps, plus both residuals.
function M.layer_forward(cfg, w)
  cfg = cfg_of(cfg)
  check_layer(cfg, w, { "wq", "wk", "wv", "wo", "w1", "w2", "w3", "rms_att", "rms_ffn" }, "stories.layer_forward")
  local p, f = new_prog()
  local x = f:input("x", "fp16", { 1, cfg.dim, 1, cfg.seq })
  local xn = f:rmsnorm(x, w.rms_att, cfg.eps, { name = "xn" })
  local qf = f:linear_conv(xn, w.wq, { name = "qf" })
  local kf = f:linear_conv(xn, w.wk, { name = "kf" })
  local vf = f:linear_conv(xn, w.wv, { name = "vf" })
  local q, k, v = to_heads(f, qf, cfg), to_heads(f, kf, cfg), to_heads(f, vf, cfg, "v")
  if cfg.rope then q, k = rope(f, q, nil, cfg, "q_rope"), rope(f, k, nil, cfg, "k_rope") end
  local probs = attn_probs(f, q, k, cfg)
  local af = from_heads(f, f:matmul(probs, v, false, false), cfg, "attn")
  local oo = f:linear_conv(af, w.wo, { name = "o_out" })
  if cfg.residual_scale ~= 1 then oo = f:mul(oo, cfg.residual_scale) end
  local x2 = f:add(x, oo, { name = "x2" })
  local x2n = f:rmsnorm(x2, w.rms_ffn, cfg.eps, { name = "x2n" })
  local h1 = f:linear_conv(x2n, w.w1, { name = "h1" })
  local h3 = f:linear_conv(x2n, w.w3, { name = "h3" })
  local silu = f:mul(h1, f:sigmoid(h1), { name = "silu" }) -- the research composes silu
  local gate = f:mul(silu, h3, { name = "gate" })
  local ffn = f:linear_conv(gate, w.w2, { name = "ffn_out" })
  if cfg.residual_scale ~= 1 then ffn = f:mul(ffn, cfg.residual_scale) end
  f:output(f:add(x2, ffn, { name = "y" }))
  return p
end

-- ===================================================================
-- (b) training kernels, static weights (train_large / train_large_ane)
-- ===================================================================
-- Each generator returns a mil.Program whose only input is `x` (packed operands; the research
-- gives every kernel one input surface) and whose only output is packed along channels.

local S_ = {}

--- fwdAttn (stories_mil.h gen_sdpa_fwd_taps): x [1, D, 1, S] ->
-- concat(o_out, q, k, v, attn, xn) [1, 6D, 1, S]; q, k after RoPE when cfg.rope.
function S_.fwdAttn(cfg, w)
  check_layer(cfg, w, { "wq", "wk", "wv", "wo", "rms_att" }, "stories.fwdAttn")
  local p, f = new_prog()
  local x = f:input("x", "fp16", { 1, cfg.dim, 1, cfg.seq })
  local xn = f:rmsnorm(x, w.rms_att, cfg.eps, { name = "xn" })
  local qf = f:linear_conv(xn, w.wq, { name = "qf" })
  local kf = f:linear_conv(xn, w.wk, { name = "kf" })
  local vf = f:linear_conv(xn, w.wv, { name = "vf" })
  local q, k, v = to_heads(f, qf, cfg), to_heads(f, kf, cfg), to_heads(f, vf, cfg)
  if cfg.rope then
    q, k = rope(f, q, nil, cfg, "q_rope"), rope(f, k, nil, cfg, "k_rope")
    qf, kf = from_heads(f, q, cfg, "qrf"), from_heads(f, k, cfg, "krf")
  end
  local probs = attn_probs(f, q, k, cfg)
  local af = from_heads(f, f:matmul(probs, v, false, false), cfg, "attn")
  local oo = f:linear_conv(af, w.wo, { name = "o_out" })
  f:output(cat(f, { oo, qf, kf, vf, af, xn }, "out"))
  return p
end

--- fwdFFN (stories_mil.h gen_ffn_fwd_taps): x2 [1, D, 1, S] ->
-- concat(ffn_out, h1, h3, gate, x2n) [1, 2D + 3H, 1, S].
function S_.fwdFFN(cfg, w)
  check_layer(cfg, w, { "w1", "w2", "w3", "rms_ffn" }, "stories.fwdFFN")
  local p, f = new_prog()
  local x = f:input("x", "fp16", { 1, cfg.dim, 1, cfg.seq })
  local xn = f:rmsnorm(x, w.rms_ffn, cfg.eps, { name = "xn" })
  local h1 = f:linear_conv(xn, w.w1, { name = "h1" })
  local h3 = f:linear_conv(xn, w.w3, { name = "h3" })
  local silu = f:mul(h1, f:sigmoid(h1), { name = "silu" })
  local gate = f:mul(silu, h3, { name = "gate" })
  local y = f:linear_conv(gate, w.w2, { name = "ffn_out" })
  f:output(cat(f, { y, h1, h3, gate, xn }, "out"))
  return p
end

--- ffnBwd (stories_mil.h gen_ffn_bwd): concat(dffn, h1, h3) [1, D + 2H, 1, S] ->
-- concat(dx, dh1, dh3) [1, D + 2H, 1, S] with dsilu = W2ᵀ dffn, dh3 = dsilu·silu(h1),
-- dh1 = dsilu·h3·σ(h1)(1 + h1(1 - σ(h1))), dx = W1ᵀ dh1 + W3ᵀ dh3. Weights W2ᵀ, W1ᵀ, W3ᵀ as
-- transposed blobs (build_blob_t).
function S_.ffnBwd(cfg, w)
  check_layer(cfg, w, { "w1", "w2", "w3" }, "stories.ffnBwd")
  local D, H = cfg.dim, cfg.hidden
  local p, f = new_prog()
  local x = f:input("x", "fp16", { 1, D + 2 * H, 1, cfg.seq })
  local dffn = ch_slice(f, x, 0, D, "dffn")
  local h1 = ch_slice(f, x, D, H, "h1")
  local h3 = ch_slice(f, x, D + H, H, "h3")
  local dsilu = f:linear_conv(dffn, M.transpose(w.w2), { name = "dsilu" })
  local sig = f:sigmoid(h1)
  local oms = f:sub(1, sig)
  local brk = f:add(1, f:mul(h1, oms))
  local dsd = f:mul(sig, brk)
  local dh1 = f:mul(f:mul(dsilu, h3), dsd, { name = "dh1" })
  local dh3 = f:mul(dsilu, f:mul(h1, sig), { name = "dh3" })
  local dx1 = f:linear_conv(dh1, M.transpose(w.w1))
  local dx3 = f:linear_conv(dh3, M.transpose(w.w3))
  local dx = f:add(dx1, dx3, { name = "dx" })
  f:output(cat(f, { dx, dh1, dh3 }, "out"))
  return p
end

-- sdpa backward part 1 body: q, k, v [1, D, 1, S] (k, v per head), da [1, D, 1, S] ->
-- concat(dv, probs, dp) [1, D + 2·H·S, 1, S] (probs and dp flattened to H·S channels).
local function sdpa_bwd1_body(f, cfg, qf, kf, vf, daf)
  local q, k, v, da = to_heads(f, qf, cfg), to_heads(f, kf, cfg), to_heads(f, vf, cfg), to_heads(f, daf, cfg)
  local probs = attn_probs(f, q, k, cfg)
  local dv4 = f:matmul(probs, da, true, false)
  local dp4 = f:matmul(da, v, false, true)
  local dvf = from_heads(f, dv4, cfg, "dv")
  local SC = cfg.n_heads * cfg.seq
  local pf = f:reshape(probs, { 1, SC, 1, cfg.seq }, { name = "pf" })
  local dpf = f:reshape(dp4, { 1, SC, 1, cfg.seq }, { name = "dpf" })
  return cat(f, { dvf, pf, dpf }, "out")
end

--- sdpaBwd1 (stories_mil.h gen_sdpa_bwd1): concat(q, k, v, dx2) [1, 4D, 1, S] ->
-- concat(dv, probs, dp) [1, D + 2·H·S, 1, S]; da = Woᵀ dx2 inside (blob Woᵀ), q and k as
-- fwdAttn tapped them (after RoPE), probs recomputed.
function S_.sdpaBwd1(cfg, w)
  check_layer(cfg, w, { "wo" }, "stories.sdpaBwd1")
  local D = cfg.dim
  local p, f = new_prog()
  local x = f:input("x", "fp16", { 1, 4 * D, 1, cfg.seq })
  local qf, kf, vf = ch_slice(f, x, 0, D, "qf"), ch_slice(f, x, D, D, "kf"), ch_slice(f, x, 2 * D, D, "vf")
  local dx2 = ch_slice(f, x, 3 * D, D, "dx2")
  local da = f:linear_conv(dx2, M.transpose(w.wo), { name = "da" })
  f:output(sdpa_bwd1_body(f, cfg, qf, kf, vf, da))
  return p
end

--- sdpaBwd2 (stories_mil.h gen_sdpa_bwd2, weight-free): concat(probs, dp, q, k)
-- [1, 2·H·S + 2D, 1, S] -> concat(dq, dk) [1, 2D, 1, S]:
-- ds = probs·(dp − Σ_keys probs·dp)/√Dh, dq = ds·k, dk = dsᵀ·q. With cfg.rope the inverse
-- rotation is applied in-kernel (the research does it on the CPU), so dq, dk are gradients of
-- the pre-RoPE projections, ready for qkvBwd.
function S_.sdpaBwd2(cfg)
  local D, H, S = cfg.dim, cfg.n_heads, cfg.seq
  local SC = H * S
  local p, f = new_prog()
  local x = f:input("x", "fp16", { 1, 2 * SC + 2 * D, 1, S })
  local pf, dpf = ch_slice(f, x, 0, SC, "pf"), ch_slice(f, x, SC, SC, "dpf")
  local qf, kf = ch_slice(f, x, 2 * SC, D, "qf"), ch_slice(f, x, 2 * SC + D, D, "kf")
  local probs = f:reshape(pf, { 1, H, S, S }, { name = "probs" })
  local dp = f:reshape(dpf, { 1, H, S, S }, { name = "dp" })
  local q, k = to_heads(f, qf, cfg), to_heads(f, kf, cfg)
  local spdp = f:reduce_sum(f:mul(probs, dp), { -1 }, true)
  local ds = f:mul(f:mul(probs, f:sub(dp, spdp)), 1 / math.sqrt(cfg.head_dim), { name = "ds" })
  local dq4 = f:matmul(ds, k, false, false)
  local dk4 = f:matmul(ds, q, true, false)
  if cfg.rope then
    local nsin = rope_tables(cfg).nsin
    dq4, dk4 = rope(f, dq4, nsin, cfg, "dq_pre"), rope(f, dk4, nsin, cfg, "dk_pre")
  end
  f:output(cat(f, { from_heads(f, dq4, cfg, "dq"), from_heads(f, dk4, cfg, "dk") }, "out"))
  return p
end

--- qkvBwd (stories_mil.h gen_qkvb): concat(dq, dk, dv) [1, 3D, 1, S] ->
-- dx = Wqᵀ dq + Wkᵀ dk + Wvᵀ dv [1, D, 1, S].
function S_.qkvBwd(cfg, w)
  check_layer(cfg, w, { "wq", "wk", "wv" }, "stories.qkvBwd")
  local D = cfg.dim
  local p, f = new_prog()
  local x = f:input("x", "fp16", { 1, 3 * D, 1, cfg.seq })
  local dq, dk, dv = ch_slice(f, x, 0, D, "dq"), ch_slice(f, x, D, D, "dk"), ch_slice(f, x, 2 * D, D, "dv")
  local dxq = f:linear_conv(dq, M.transpose(w.wq))
  local dxk = f:linear_conv(dk, M.transpose(w.wk))
  local dxv = f:linear_conv(dv, M.transpose(w.wv))
  f:output(f:add(f:add(dxq, dxk), dxv, { name = "dx" }))
  return p
end

--- rmsnormBwd (ane_rmsnorm_bwd.h gen_rmsnorm_bwd): concat(dy, x) [1, 2D, 1, S] ->
-- dx = (dy·w − x·(Σ_c dy·w·x)/D·r²)·r with r = (Σ_c x²/D + eps)^(-1/2); rms weight w const.
-- One per RMSNorm (rms_att and rms_ffn of each layer); dw stays on the CPU as in the research.
local function rmsnorm_bwd(cfg, wvec)
  local D = cfg.dim
  local p, f = new_prog()
  local x = f:input("x", "fp16", { 1, 2 * D, 1, cfg.seq })
  local dy, xx = ch_slice(f, x, 0, D, "dy"), ch_slice(f, x, D, D, "xin")
  local ss = f:reduce_sum(f:mul(xx, xx), { 1 }, true)
  local r = f:pow(f:add(f:mul(ss, 1 / D), cfg.eps), -0.5, { name = "rrms" })
  local wc = f:const(wvec:reshape({ 1, D, 1, 1 }), "fp16", { name = "rms_w" })
  local dyw = f:mul(dy, wc)
  local dot = f:mul(f:reduce_sum(f:mul(dyw, xx), { 1 }, true), 1 / D)
  local coeff = f:mul(dot, f:mul(r, r))
  f:output(f:mul(f:sub(dyw, f:mul(xx, coeff)), r, { name = "dx" }))
  return p
end
function S_.rmsAttBwd(cfg, w)
  check_layer(cfg, w, { "rms_att" }, "stories.rmsAttBwd")
  return rmsnorm_bwd(cfg, w.rms_att)
end
function S_.rmsFFNBwd(cfg, w)
  check_layer(cfg, w, { "rms_ffn" }, "stories.rmsFFNBwd")
  return rmsnorm_bwd(cfg, w.rms_ffn)
end

M.static = S_

--- The per-layer static kernels in the order train_large_ane evaluates/compiles them.
M.STATIC_LAYER_KERNELS = { "fwdAttn", "fwdFFN", "ffnBwd", "sdpaBwd1", "sdpaBwd2", "qkvBwd",
  "rmsAttBwd", "rmsFFNBwd" }

-- ---- model-level kernels (ane_classifier.h) ----

local function check_vec(t, n, what, who)
  local s = type(t) == "userdata" and t:shape()
  if not s or #s ~= n.rank or s[1] ~= n[1] or (n[2] and s[2] ~= n[2]) then
    error(string.format("%s: '%s' must be an ane.Tensor [%s]", who, what, table.concat(n, ", ")), 3)
  end
end

--- finalRms (gen_final_rmsnorm): x [1, D, 1, S] -> rmsnorm(x)·rms_final.
function S_.finalRms(cfg, model)
  check_vec(model.rms_final, { cfg.dim, rank = 1 }, "rms_final", "stories.finalRms")
  local p, f = new_prog()
  local x = f:input("x", "fp16", { 1, cfg.dim, 1, cfg.seq })
  f:output(f:rmsnorm(x, model.rms_final, cfg.eps, { name = "xn" }))
  return p
end

--- classifierFwd (gen_classifier_fwd): x [1, D, 1, S] -> logits = embed·x [1, V, 1, S]
-- (a 1×1 conv with vocab output channels).
function S_.classifierFwd(cfg, model)
  check_vec(model.embed, { cfg.vocab, cfg.dim, rank = 2 }, "embed", "stories.classifierFwd")
  local p, f = new_prog()
  local x = f:input("x", "fp16", { 1, cfg.dim, 1, cfg.seq })
  f:output(f:linear_conv(x, model.embed, { name = "logits" }))
  return p
end

--- softmaxVocab (gen_softmax_vocab): logits [1, V, 1, S] -> softmax over channels.
function S_.softmaxVocab(cfg)
  local p, f = new_prog()
  local x = f:input("x", "fp16", { 1, cfg.vocab, 1, cfg.seq })
  f:output(f:softmax(x, 1, { name = "probs" }))
  return p
end

--- classifierBwd (gen_classifier_bwd): dlogits [1, V, 1, S] -> dx = embedᵀ·dlogits [1, D, 1, S];
-- a matmul with embedᵀ [1, D, V] baked (the research notes the ANE rejects a conv with 32000
-- input channels).
function S_.classifierBwd(cfg, model)
  check_vec(model.embed, { cfg.vocab, cfg.dim, rank = 2 }, "embed", "stories.classifierBwd")
  local p, f = new_prog()
  local x = f:input("x", "fp16", { 1, cfg.vocab, 1, cfg.seq })
  local dl3 = f:reshape(x, { 1, cfg.vocab, cfg.seq })
  local et = f:const(M.transpose(model.embed):reshape({ 1, cfg.dim, cfg.vocab }), "fp16", { name = "embed_t" })
  local dx3 = f:matmul(et, dl3, false, false)
  f:output(f:reshape(dx3, { 1, cfg.dim, 1, cfg.seq }, { name = "dx" }))
  return p
end

M.STATIC_MODEL_KERNELS = { "finalRms", "classifierFwd", "softmaxVocab", "classifierBwd" }

-- ===================================================================
-- (b') training kernels with weights as inputs (training_dynamic/mil_dynamic.h)
-- ===================================================================
-- Compiled once and shared by every layer: each evaluation carries the layer's weights packed
-- along the spatial axis next to the activations. Packed weights are stored [IC][OC] (one row
-- per input channel): for y = W·x with W[out][in], the region holds Wᵀ.

local D_ = {}

local function dyn_mm_kernel(IC, OC, S)
  local p, f = new_prog()
  local x = f:input("x", "fp16", { 1, IC, 1, S + OC })
  f:output(dyn_matmul(f, sp_slice(f, x, 0, S, "act"), sp_slice(f, x, S, OC, "wt"), "y"))
  return p
end

--- sdpaFwd (gen_sdpa_fwd_dynamic): [1, D, 1, S + 3D] = (xnorm | Wqᵀ | Wkᵀ | Wvᵀ) ->
-- concat(attn, q_rope, k_rope, v, xnorm) [1, 5D, 1, S]. RMSNorm happens before (CPU in the
-- research).
function D_.sdpaFwd(cfg)
  local D, S = cfg.dim, cfg.seq
  local p, f = new_prog()
  local x = f:input("x", "fp16", { 1, D, 1, S + 3 * D })
  local xn = sp_slice(f, x, 0, S, "xn")
  local qf = dyn_matmul(f, xn, sp_slice(f, x, S, D, "wq"), "qf")
  local kf = dyn_matmul(f, xn, sp_slice(f, x, S + D, D, "wk"), "kf")
  local vf = dyn_matmul(f, xn, sp_slice(f, x, S + 2 * D, D, "wv"), "vf")
  local q, k, v = to_heads(f, qf, cfg), to_heads(f, kf, cfg), to_heads(f, vf, cfg)
  if cfg.rope then
    q, k = rope(f, q, nil, cfg, "q_rope"), rope(f, k, nil, cfg, "k_rope")
    qf, kf = from_heads(f, q, cfg, "qrf"), from_heads(f, k, cfg, "krf")
  end
  local probs = attn_probs(f, q, k, cfg)
  local af = from_heads(f, f:matmul(probs, v, false, false), cfg, "attn")
  f:output(cat(f, { af, qf, kf, vf, xn }, "out"))
  return p
end

--- woFwd (gen_wo_fwd_dynamic): [1, D, 1, S + D] = (attn | Woᵀ) -> o_out [1, D, 1, S].
function D_.woFwd(cfg) return dyn_mm_kernel(cfg.dim, cfg.dim, cfg.seq) end

--- ffnFused (gen_ffn_fused_dynamic): [1, D, 1, 2S + 3H] = (x2norm | x2 | W1ᵀ | W3ᵀ | W2) ->
-- concat(x_next, h1, h3, gate) [1, D + 3H, 1, S], x_next = x2 + residual_scale·W2·gate (the
-- research trains from scratch with 1/√(2·layers); llama2.c math is 1). W2 is packed as stored
-- ([D][H]) and transposed inside, as the research does.
function D_.ffnFused(cfg)
  local D, H, S = cfg.dim, cfg.hidden, cfg.seq
  local p, f = new_prog()
  local x = f:input("x", "fp16", { 1, D, 1, 2 * S + 3 * H })
  local xn, x2 = sp_slice(f, x, 0, S, "x2norm"), sp_slice(f, x, S, S, "x2")
  local h1 = dyn_matmul(f, xn, sp_slice(f, x, 2 * S, H, "w1"), "h1")
  local h3 = dyn_matmul(f, xn, sp_slice(f, x, 2 * S + H, H, "w3"), "h3")
  local silu = f:mul(h1, f:sigmoid(h1), { name = "silu" })
  local gate = f:mul(silu, h3, { name = "gate" })
  local w2 = f:reshape(sp_slice(f, x, 2 * S + 2 * H, H, "w2"), { 1, 1, D, H })
  local gt = f:transpose(f:reshape(gate, { 1, 1, H, S }), SWAP)
  local fm = f:matmul(gt, f:transpose(w2, SWAP), false, false)
  local ffn = f:reshape(f:transpose(fm, SWAP), { 1, D, 1, S }, { name = "ffn_out" })
  if cfg.residual_scale ~= 1 then ffn = f:mul(ffn, cfg.residual_scale) end
  f:output(cat(f, { f:add(x2, ffn, { name = "x_next" }), h1, h3, gate }, "out"))
  return p
end

--- ffnBwdW2t (gen_ffn_bwd_w2t_dynamic): [1, D, 1, S + H] = (dffn | W2 as [D][H]) -> dsilu [1, H, 1, S].
function D_.ffnBwdW2t(cfg) return dyn_mm_kernel(cfg.dim, cfg.hidden, cfg.seq) end

-- two dynamic matmuls from one packed input, summed: (a1 | a2 | W1 | W2) with IC rows
local function dyn_mm2_kernel(IC, OC, S)
  local p, f = new_prog()
  local x = f:input("x", "fp16", { 1, IC, 1, 2 * S + 2 * OC })
  local y1 = dyn_matmul(f, sp_slice(f, x, 0, S, "a1"), sp_slice(f, x, 2 * S, OC, "w_a"))
  local y2 = dyn_matmul(f, sp_slice(f, x, S, S, "a2"), sp_slice(f, x, 2 * S + OC, OC, "w_b"))
  f:output(f:add(y1, y2, { name = "dx" }))
  return p
end

--- ffnBwdW13t (gen_ffn_bwd_w13t_dynamic): [1, H, 1, 2S + 2D] = (dh1 | dh3 | W1 | W3, stored
-- [H][D]) -> dx = W1ᵀ dh1 + W3ᵀ dh3 [1, D, 1, S].
function D_.ffnBwdW13t(cfg) return dyn_mm2_kernel(cfg.hidden, cfg.dim, cfg.seq) end

--- wotBwd (gen_wot_dynamic): [1, D, 1, S + D] = (dy | Wo) -> da = Woᵀ dy [1, D, 1, S].
function D_.wotBwd(cfg) return dyn_mm_kernel(cfg.dim, cfg.dim, cfg.seq) end

--- sdpaBwd1 (gen_sdpa_bwd1_noweight): concat(q, k, v, da) [1, 4D, 1, S] ->
-- concat(dv, probs, dp) [1, D + 2·H·S, 1, S] (weight-free; Woᵀ is wotBwd).
function D_.sdpaBwd1(cfg)
  local D = cfg.dim
  local p, f = new_prog()
  local x = f:input("x", "fp16", { 1, 4 * D, 1, cfg.seq })
  f:output(sdpa_bwd1_body(f, cfg, ch_slice(f, x, 0, D, "qf"), ch_slice(f, x, D, D, "kf"),
    ch_slice(f, x, 2 * D, D, "vf"), ch_slice(f, x, 3 * D, D, "da")))
  return p
end

--- sdpaBwd2: identical to the static one (weight-free).
D_.sdpaBwd2 = S_.sdpaBwd2

--- qBwd (gen_q_bwd_dynamic): [1, D, 1, S + D] = (dq | Wq) -> Wqᵀ dq [1, D, 1, S].
function D_.qBwd(cfg) return dyn_mm_kernel(cfg.dim, cfg.dim, cfg.seq) end

--- kvBwd (gen_kv_bwd_dynamic): [1, D, 1, 2S + 2D] = (dk | dv | Wk | Wv) -> Wkᵀ dk + Wvᵀ dv.
function D_.kvBwd(cfg) return dyn_mm2_kernel(cfg.dim, cfg.dim, cfg.seq) end

M.dynamic = D_
M.DYNAMIC_KERNELS = { "sdpaFwd", "woFwd", "ffnFused", "ffnBwdW2t", "ffnBwdW13t", "wotBwd",
  "sdpaBwd1", "sdpaBwd2", "qBwd", "kvBwd" }

--- stories.layer_kernels(cfg, w, {style = "static" | "dynamic"}) -> list of {name, program}
-- for one layer (static) or the shared set (dynamic, w unused).
function M.layer_kernels(cfg, w, opts)
  cfg = cfg_of(cfg)
  local style = (opts and opts.style) or "static"
  local list = {}
  if style == "static" then
    for _, n in ipairs(M.STATIC_LAYER_KERNELS) do list[#list + 1] = { name = n, program = S_[n](cfg, w) } end
  elseif style == "dynamic" then
    for _, n in ipairs(M.DYNAMIC_KERNELS) do list[#list + 1] = { name = n, program = D_[n](cfg) } end
  else
    error("stories.layer_kernels: style must be \"static\" or \"dynamic\"", 2)
  end
  return list
end

-- ===================================================================
-- (c) the whole model's kernel set
-- ===================================================================

--- stories.model_kernels(cfg, {style = "static", weights = init_weights(...) | nil, seed = 0})
-- -> list of {name = "L3.fwdAttn" | "classifierFwd" | "sdpaFwd", kernel =, layer =,
--    build = function() -> mil.Program}.
-- static: for each of cfg.n_layers layers the 8 kernels of STATIC_LAYER_KERNELS (weights
-- baked, as train_large_ane compiles them, sdpaBwd2 included once per layer as it does), then
-- the 4 classifier kernels: 8·12 + 4 = 100 programs for Stories110M.
-- dynamic: the 10 shared kernels (every layer reuses them with its own weights).
-- Programs are built lazily (build()) so a harness can time and drop them one by one: the
-- static Stories110M set bakes about 400 MB of fp16 weights in total.
function M.model_kernels(cfg, opts)
  cfg = cfg_of(cfg)
  opts = opts or {}
  local style = opts.style or "static"
  local list = {}
  if style == "dynamic" then
    for _, n in ipairs(M.DYNAMIC_KERNELS) do
      list[#list + 1] = { name = n, kernel = n, build = function() return D_[n](cfg) end }
    end
    return list
  elseif style ~= "static" then
    error("stories.model_kernels: style must be \"static\" or \"dynamic\"", 2)
  end
  local weights = opts.weights or M.init_weights(cfg, { seed = opts.seed or 0 })
  if #weights.layers < cfg.n_layers then
    error(string.format("stories.model_kernels: %d layers of weights for %d layers", #weights.layers, cfg.n_layers), 2)
  end
  for l = 1, cfg.n_layers do
    local w = weights.layers[l]
    for _, n in ipairs(M.STATIC_LAYER_KERNELS) do
      list[#list + 1] = { name = "L" .. l .. "." .. n, kernel = n, layer = l,
        build = function() return S_[n](cfg, w) end }
    end
  end
  for _, n in ipairs(M.STATIC_MODEL_KERNELS) do
    list[#list + 1] = { name = n, kernel = n, build = function() return S_[n](cfg, weights) end }
  end
  return list
end

-- ===================================================================
-- the NumPy reference (scripts/bench_layer_ref.py)
-- ===================================================================

--- stories.save_layer_npy(dir, w, x): write x.npy and the layer's weights (wq ... rms_ffn, as
-- stored: fp16, W[out][in]) into an existing directory, the files bench_layer_ref.py --dir reads.
function M.save_layer_npy(dir, w, x)
  for _, k in ipairs { "wq", "wk", "wv", "wo", "w1", "w2", "w3", "rms_att", "rms_ffn" } do
    if not w[k] then error("stories.save_layer_npy: weight '" .. k .. "' missing", 2) end
    w[k]:save_npy(dir .. "/" .. k .. ".npy")
  end
  x:save_npy(dir .. "/x.npy")
end

--- stories.ref_command(cfg, dir, {iters = 10, warmup = 2, out = path}) -> the shell command
-- running scripts/bench_layer_ref.py on the files of save_layer_npy for this config.
function M.ref_command(cfg, dir, opts)
  cfg = cfg_of(cfg)
  opts = opts or {}
  local root = opts.root or os.getenv("ANE_ROOT") or "."
  local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
  local cmd = string.format("/usr/bin/python3 %s --dir %s --dim %d --hidden %d --heads %d --seq %d --eps %.17g --theta %.17g --iters %d --warmup %d",
    q(root .. "/scripts/bench_layer_ref.py"), q(dir), cfg.dim, cfg.hidden, cfg.n_heads, cfg.seq,
    cfg.eps, cfg.rope_theta, opts.iters or 10, opts.warmup or 2)
  if not cfg.rope then cmd = cmd .. " --no-rope" end
  if opts.out then cmd = cmd .. " --out " .. q(opts.out) end
  if cfg.residual_scale ~= 1 then error("stories.ref_command: the NumPy reference has residual_scale 1", 2) end
  return cmd
end

--- stories.checksum(t) -> sum, sum of |.|: the two figures bench_layer_ref.py prints, for a
-- kernel output (accumulated in double).
function M.checksum(t)
  local n = t:numel()
  local flat = t:reshape { n }
  local s, a = 0.0, 0.0
  for i = 1, n do
    local v = flat[i]
    s, a = s + v, a + math.abs(v)
  end
  return s, a
end

-- ===================================================================
-- plain-Lua reference (double precision; small configs only)
-- ===================================================================

local function tomat(t) -- ane.Tensor [r, c] -> rows of doubles
  return t:to_table()
end

-- y[o][s] = Σ_i W[o][i]·x[i][s]
local function matmul(W, x, S)
  local y = {}
  for o = 1, #W do
    local row, yo = W[o], {}
    for s = 1, S do
      local acc = 0.0
      for i = 1, #row do acc = acc + row[i] * x[i][s] end
      yo[s] = acc
    end
    y[o] = yo
  end
  return y
end

-- a + k·b, rows of doubles (the residual connection)
local function residual(a, b, k, S)
  local y = {}
  for c = 1, #a do
    y[c] = {}
    for s = 1, S do y[c][s] = a[c][s] + k * b[c][s] end
  end
  return y
end

local function rmsnorm_ref(x, wv, eps, S)
  local C = #x
  local y = {}
  for c = 1, C do y[c] = {} end
  for s = 1, S do
    local ss = 0.0
    for c = 1, C do ss = ss + x[c][s] * x[c][s] end
    local r = 1 / math.sqrt(ss / C + eps)
    for c = 1, C do y[c][s] = x[c][s] * r * wv[c] end
  end
  return y
end

--- stories.reference_layer(cfg, w, x) -> rows y[c][s] (doubles): the same layer as
-- layer_forward computed directly from llama2.c's definition in double precision. x is an
-- ane.Tensor [1, dim, 1, seq] (or rows x[c][s]). Cost ~ seq²·dim + seq·dim·hidden: keep it small.
function M.reference_layer(cfg, w, x)
  cfg = cfg_of(cfg)
  local D, S, Hn, Dh = cfg.dim, cfg.seq, cfg.n_heads, cfg.head_dim
  if type(x) == "userdata" then x = x:reshape({ D, S }):to_table() end
  local W = {}
  for _, k in ipairs { "wq", "wk", "wv", "wo", "w1", "w2", "w3" } do W[k] = tomat(w[k]) end
  local ra, rf = w.rms_att:to_table(), w.rms_ffn:to_table()
  local xn = rmsnorm_ref(x, ra, cfg.eps, S)
  local q, k, v = matmul(W.wq, xn, S), matmul(W.wk, xn, S), matmul(W.wv, xn, S)
  if cfg.rope then -- llama2.c: rotate pairs (j, j+1) of each head by pos·10000^(-(j mod Dh)/Dh)
    for _, t in ipairs { q, k } do
      for s = 1, S do
        local pos = s - 1
        for j = 0, D - 1, 2 do
          local hd = j % Dh
          local a = pos / cfg.rope_theta ^ (hd / Dh)
          local c, sn = math.cos(a), math.sin(a)
          local v0, v1 = t[j + 1][s], t[j + 2][s]
          t[j + 1][s], t[j + 2][s] = v0 * c - v1 * sn, v0 * sn + v1 * c
        end
      end
    end
  end
  local att = {}
  for c = 1, D do att[c] = {} end
  local scale = 1 / math.sqrt(Dh)
  for h = 0, Hn - 1 do
    local base = h * Dh
    for t = 1, S do
      local sc, mx = {}, -math.huge
      for u = 1, t do -- causal: keys u <= t
        local acc = 0.0
        for d = 1, Dh do acc = acc + q[base + d][t] * k[base + d][u] end
        sc[u] = acc * scale
        if sc[u] > mx then mx = sc[u] end
      end
      local sum = 0.0
      for u = 1, t do sc[u] = math.exp(sc[u] - mx); sum = sum + sc[u] end
      for d = 1, Dh do
        local acc = 0.0
        for u = 1, t do acc = acc + sc[u] / sum * v[base + d][u] end
        att[base + d][t] = acc
      end
    end
  end
  local x2 = residual(x, matmul(W.wo, att, S), cfg.residual_scale, S)
  local x2n = rmsnorm_ref(x2, rf, cfg.eps, S)
  local h1, h3 = matmul(W.w1, x2n, S), matmul(W.w3, x2n, S)
  for j = 1, #h1 do
    for s = 1, S do
      local a = h1[j][s]
      h1[j][s] = a / (1 + math.exp(-a)) * h3[j][s]
    end
  end
  return residual(x2, matmul(W.w2, h1, S), cfg.residual_scale, S)
end

return M
