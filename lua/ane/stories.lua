--- ane.stories: the llama-style transformer of llama2.c's "stories" models: its configuration,
-- its one parameter list, and the MIL generators of the kernels a training step runs, written
-- the way the ANE research writes them.
--
--   local stories = require "ane.stories"
--   local cfg = stories.config{}                       -- Stories110M; tests pass a tiny table
--   for _, p in ipairs(stories.params(cfg)) do ... end -- {name = "layers.1.wq", shape = ..., init = ...}
--   local prog, layout = stories.kernel(cfg, "attnFwd", {precision = "fp16"})          -- dynamic
--   local prog, layout = stories.kernel(cfg, "attnFwd", {weights = w.layers[1]})       -- static
--   local k = ane.compile(prog); k:load(); k:eval(inputs_by_name, outputs_by_name)
--
-- Layout: an activation of C channels over a sequence of S positions is [1, C, 1, S] (channels =
-- features), as on the ANE. Weight matrices are W[out][in] as llama2.c and PyTorch store them:
--   wq, wo [dim, dim]; wk, wv [kv_dim, dim]; w1, w3 [hidden, dim]; w2 [dim, hidden];
--   rms_att, rms_ffn [dim]; model: embed [vocab, dim], rms_final [dim], wcls [vocab, dim] when
--   the classifier is not shared with the embedding.
-- Kernel I/O is fp32 (ANE: M3 and later; casts at the boundary); inside, the program computes in
-- the precision asked for (fp16: casts after the inputs and before the outputs; fp32: none).
--
-- Every generator returns its program and its layout: {input = {{name, shape}, ...},
-- output = {{name, shape}, ...}} with activations [1, C, 1, S] and weights in their parameter
-- shape. Inputs and outputs are separate named tensors: the caller binds them by name (no
-- packing offsets). A kernel is "static" when opts.weights holds the layer's tensors (baked as
-- constants: 1x1 convs, as stories_mil.h) and "dynamic" otherwise (weights are inputs of the
-- same name, multiplied with matmul, as training_dynamic/mil_dynamic.h; compiled once for every
-- layer). The attention and SwiGLU blocks are written once; the projection is what differs.
--
-- Sources mirrored (maderix/ANE, facts only): training/stories_mil.h (static kernels),
-- training/ane_classifier.h and ane_rmsnorm_bwd.h (the device extras), and
-- training/training_dynamic/mil_dynamic.h (weights as inputs, RoPE, GQA); the math is llama2.c
-- run.c. RoPE (interleaved pairs (2i, 2i+1), theta_i = pos / rope_theta^(2i/head_dim)) is applied
-- in the forward kernels with cos/sin constants and a pairs reshape / slice / negate / concat, and
-- sdpaBwd2 rotates dq, dk back, so its outputs are gradients of the un-rotated projections.
-- cfg.rope = false gives the research's static kernels (no rotation).
local ane = require "ane"
local mil = require "ane.mil"

local M = {}

-- ===================================================================
-- configuration
-- ===================================================================

--- The llama2.c stories110M shape (dim 768, hidden 2048, 12 layers, 12 heads of 64, vocab 32000).
M.STORIES110M = {
  dim = 768, hidden = 2048, n_layers = 12, n_heads = 12, vocab = 32000, seq = 256,
  norm_eps = 1e-5, rope = true, rope_theta = 10000, residual_scale = 1, shared_classifier = true,
}
--- stories15M (llama2.c): dim 288, hidden 768, 6 layers, 6 heads.
M.STORIES15M = { dim = 288, hidden = 768, n_layers = 6, n_heads = 6, vocab = 32000, seq = 256 }

local CONFIG_KEYS = { n_kv_heads = true }
for k in pairs(M.STORIES110M) do CONFIG_KEYS[k] = true end
local DERIVED = { head_dim = true, kv_dim = true }

local function posint(cfg, k)
  local v = cfg[k]
  if math.type(v) ~= "integer" or v < 1 then
    error(string.format("stories.config: '%s' must be a positive integer, got %s", k, tostring(v)), 3)
  end
end

--- stories.config(t) -> a complete config: t's fields over the Stories110M defaults, checked.
-- Adds head_dim = dim / n_heads and kv_dim = head_dim · n_kv_heads (n_kv_heads defaults to
-- n_heads; fewer is grouped-query attention).
function M.config(t)
  t = t or {}
  if type(t) ~= "table" then error("stories.config: expected a table, got " .. type(t), 2) end
  local cfg = {}
  for k, v in pairs(M.STORIES110M) do cfg[k] = v end
  for k, v in pairs(t) do
    if DERIVED[k] then
      -- accepted when it agrees (a config that went through stories.config already)
    elseif not CONFIG_KEYS[k] then
      error("stories.config: unknown field '" .. tostring(k) .. "'", 2)
    else
      cfg[k] = v
    end
  end
  if cfg.n_kv_heads == nil then cfg.n_kv_heads = cfg.n_heads end
  for _, k in ipairs { "dim", "hidden", "n_layers", "n_heads", "n_kv_heads", "vocab", "seq" } do posint(cfg, k) end
  if cfg.dim % cfg.n_heads ~= 0 then
    error(string.format("stories.config: dim %d does not split into %d heads", cfg.dim, cfg.n_heads), 2)
  end
  if cfg.n_heads % cfg.n_kv_heads ~= 0 then
    error(string.format("stories.config: %d heads do not split into %d kv heads", cfg.n_heads, cfg.n_kv_heads), 2)
  end
  cfg.head_dim = cfg.dim // cfg.n_heads
  cfg.kv_dim = cfg.head_dim * cfg.n_kv_heads
  for k in pairs(DERIVED) do
    if t[k] ~= nil and t[k] ~= cfg[k] then error("stories.config: " .. k .. " disagrees with the config", 2) end
  end
  for _, k in ipairs { "rope", "shared_classifier" } do
    if type(cfg[k]) ~= "boolean" then error("stories.config: '" .. k .. "' must be a boolean", 2) end
  end
  if cfg.rope and cfg.head_dim % 2 ~= 0 then
    error("stories.config: RoPE needs an even head_dim, got " .. cfg.head_dim, 2)
  end
  for _, k in ipairs { "norm_eps", "rope_theta", "residual_scale" } do
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
-- the parameter list
-- ===================================================================
-- One list drives parameters, gradients, both Adam moments, checkpoints and the references.
-- init: "normal" (std), "residual" (std / √(2·n_layers): the projections that feed a residual,
-- GPT-2's rule) or "ones" (RMSNorm weights). decay: whether AdamW decays it.

M.LAYER_PARAMS = {
  { key = "rms_att", shape = function(c) return { c.dim } end, init = "ones", decay = false },
  { key = "wq", shape = function(c) return { c.dim, c.dim } end, init = "normal", decay = true },
  { key = "wk", shape = function(c) return { c.kv_dim, c.dim } end, init = "normal", decay = true },
  { key = "wv", shape = function(c) return { c.kv_dim, c.dim } end, init = "normal", decay = true },
  { key = "wo", shape = function(c) return { c.dim, c.dim } end, init = "residual", decay = true },
  { key = "rms_ffn", shape = function(c) return { c.dim } end, init = "ones", decay = false },
  { key = "w1", shape = function(c) return { c.hidden, c.dim } end, init = "normal", decay = true },
  { key = "w2", shape = function(c) return { c.dim, c.hidden } end, init = "residual", decay = true },
  { key = "w3", shape = function(c) return { c.hidden, c.dim } end, init = "normal", decay = true },
}
M.MODEL_PARAMS = {
  { key = "embed", shape = function(c) return { c.vocab, c.dim } end, init = "normal", decay = true },
  { key = "rms_final", shape = function(c) return { c.dim } end, init = "ones", decay = false },
  { key = "wcls", shape = function(c) return { c.vocab, c.dim } end, init = "normal", decay = true,
    unless = "shared_classifier" },
}

--- stories.params(cfg) -> the flat parameter list in llama2.c's order (embed, then each layer's
-- tensors, rms_final, wcls): {name = "layers.3.wq" | "embed", key = "wq", layer = 3 | nil,
-- shape = {...}, init =, decay =}.
function M.params(cfg)
  cfg = cfg_of(cfg)
  local list = {}
  local function add(spec, l)
    if spec.unless and cfg[spec.unless] then return end
    list[#list + 1] = { name = l and ("layers." .. l .. "." .. spec.key) or spec.key, key = spec.key,
      layer = l, shape = spec.shape(cfg), init = spec.init, decay = spec.decay }
  end
  add(M.MODEL_PARAMS[1])
  for l = 1, cfg.n_layers do
    for _, spec in ipairs(M.LAYER_PARAMS) do add(spec, l) end
  end
  add(M.MODEL_PARAMS[2])
  add(M.MODEL_PARAMS[3])
  return list
end

--- stories.init_param(t, p, cfg, rng, std): fill tensor t for parameter p of the list.
function M.init_param(t, p, cfg, rng, std)
  std = std or 0.02
  if p.init == "ones" then
    t:fill(1)
  else
    local s = p.init == "residual" and std / math.sqrt(2 * cfg.n_layers) or std
    t:rand { dist = "normal", std = s, rng = rng }
  end
  return t
end

--- stories.init_weights(cfg, {seed = 0, std = 0.02, layers = cfg.n_layers, embed = true,
-- dtype = "fp32", rms_std = 0}) -> {layers = {{wq=..., ...}, ...}, embed =, rms_final = [, wcls]}:
-- separate tensors from the parameter list (a model keeps its own, stacked). rms_std > 0 gives
-- RMSNorm weights 1 + normal(0, rms_std) (so a test notices a kernel that drops them).
function M.init_weights(cfg, opts)
  cfg = cfg_of(cfg)
  opts = opts or {}
  local rng = ane.rng(opts.seed or 0)
  local out = { layers = {} }
  local nl = opts.layers or cfg.n_layers
  for _, p in ipairs(M.params(cfg)) do
    if (p.layer == nil and opts.embed ~= false) or (p.layer and p.layer <= nl) then
      local t = ane.zeros(p.shape, opts.dtype or "fp32")
      M.init_param(t, p, cfg, rng, opts.std)
      if p.init == "ones" and (opts.rms_std or 0) > 0 then
        t:rand { dist = "normal", mean = 1, std = opts.rms_std, rng = rng }
      end
      if p.layer then
        out.layers[p.layer] = out.layers[p.layer] or {}
        out.layers[p.layer][p.key] = t
      else
        out[p.key] = t
      end
    end
  end
  return out
end

local function check_weights(cfg, w, needed, who, transposed)
  if type(w) ~= "table" then error(who .. ": weights table expected, got " .. type(w), 3) end
  local shapes = {}
  for _, s in ipairs(M.LAYER_PARAMS) do shapes[s.key] = s.shape(cfg) end
  for _, s in ipairs(M.MODEL_PARAMS) do shapes[s.key] = s.shape(cfg) end
  for _, k in ipairs(needed) do
    local t = w[k]
    if type(t) ~= "userdata" or getmetatable(t) == nil then
      error(string.format("%s: weight '%s' missing (an ane.Tensor)", who, k), 3)
    end
    local s, want = t:shape(), shapes[k:gsub("_t$", "")]
    if k:match("_t$") then want = { want[2], want[1] } end
    local ok = #s == #want
    for i = 1, #want do ok = ok and s[i] == want[i] end
    if not ok then
      error(string.format("%s: weight '%s' has shape [%s], expected [%s]", who, k,
        table.concat(s, ", "), table.concat(want, ", ")), 3)
    end
  end
end

-- ===================================================================
-- shared MIL pieces
-- ===================================================================

-- cos/sin tables [1, 1, S, head_dim] for interleaved pairs (mil_dynamic.h get_rope_*_blob); neg
-- gives -sin (the inverse rotation). Built per program: a program owns its constants.
local function rope_tables(cfg, dt)
  local S, Dh, th = cfg.seq, cfg.head_dim, cfg.rope_theta
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
  return { cos = ane.from_table(c, dt, shape), sin = ane.from_table(s, dt, shape),
           nsin = ane.from_table(ns, dt, shape) }
end
M.rope_tables = rope_tables

local SWAP = { 0, 1, 3, 2 }

-- A generator's context: the builder function, the config, the compute dtype, the I/O table.
local Gen = {}
Gen.__index = Gen

local function new_gen(cfg, opts, who)
  cfg = cfg_of(cfg)
  opts = opts or {}
  local prec = opts.precision or "fp16"
  if prec ~= "fp16" and prec ~= "fp32" then
    error(who .. ": precision must be \"fp16\" or \"fp32\", got " .. tostring(prec), 3)
  end
  local p = mil.program { opset = "ios18" }
  local g = setmetatable({ cfg = cfg, dt = prec, p = p, f = p:func("main"), w = opts.weights,
    layout = { input = {}, output = {} }, who = who }, Gen)
  return g
end

-- Declare inputs {name, shape} (activations: a channel count; weights: a shape table); returns
-- values by name, cast to the compute dtype. In a static kernel weights are not inputs.
function Gen:inputs(list)
  local f, S, raw = self.f, self.cfg.seq, {}
  for _, e in ipairs(list) do
    local shape = type(e[2]) == "table" and e[2] or { 1, e[2], 1, S }
    self.layout.input[#self.layout.input + 1] = { e[1], shape }
    raw[#raw + 1] = { e[1], f:input(e[1], "fp32", shape) }
  end
  local v = {}
  for _, r in ipairs(raw) do
    v[r[1]] = self.dt == "fp16" and f:cast(r[2], "fp16") or r[2]
  end
  return v
end

-- Weights of a dynamic kernel are inputs: add them to a list of inputs (nothing when static).
function Gen:weight_inputs(list, keys)
  if self.w then return list end
  local shapes = {}
  for _, s in ipairs(M.LAYER_PARAMS) do shapes[s.key] = s.shape(self.cfg) end
  for _, s in ipairs(M.MODEL_PARAMS) do shapes[s.key] = s.shape(self.cfg) end
  for _, k in ipairs(keys) do list[#list + 1] = { k, shapes[k] } end
  return list
end

-- Outputs {name, value}: cast back to fp32, in order; returns the program and its layout.
function Gen:outputs(list)
  local f, outs = self.f, {}
  for i, e in ipairs(list) do
    local v = e[2]
    if self.dt == "fp16" then v = f:cast(v, "fp32", { name = e[1] })
    else v = f:identity(v, { name = e[1] }) end
    outs[i] = v
    self.layout.output[i] = { e[1], v.shape }
  end
  f:output(table.unpack(outs))
  return self.p, self.layout
end

-- The projection, passed to the blocks: y = W·x (or Wᵀ·x with t) for W named key, x [1, IC, 1, S].
-- Static: a 1x1 conv with the baked weight (Wᵀ is the model's transposed copy, key .. "_t", as
-- the research's build_blob_t). Dynamic: W is the input of that name, and a matmul on
-- [1, 1, OC, IC] x [1, 1, IC, S] (no transposes of the activations; transpose_x for Wᵀ).
function Gen:proj(x, key, t, v, name)
  local f = self.f
  if self.w then
    local k = t and key .. "_t" or key
    local W = self.w[k]
    local sh = W:shape()
    return f:linear_conv(x, f:const(W:reshape { sh[1], sh[2], 1, 1 }, self.dt, { name = k }), { name = name })
  end
  local W = v[key]
  local OC = t and W.shape[2] or W.shape[1]
  local IC, S = x.shape[2], x.shape[4]
  local W4 = f:reshape(W, { 1, 1, W.shape[1], W.shape[2] })
  local y = f:matmul(W4, f:reshape(x, { 1, 1, IC, S }), t and true or false, false)
  return f:reshape(y, { 1, OC, 1, S }, { name = name })
end

-- An RMSNorm weight: baked, or the input of that name ([D] reshaped to [1, D, 1, 1]).
function Gen:rms_weight(key, v)
  if self.w then return self.f:const(self.w[key]:reshape { 1, self.cfg.dim, 1, 1 }, self.dt, { name = key }) end
  return self.f:reshape(v[key], { 1, self.cfg.dim, 1, 1 })
end

-- [1, n·Dh, 1, S] -> [1, n, S, Dh] (reshape + transpose, as every research kernel does)
function Gen:to_heads(t, n)
  local c = self.cfg
  return self.f:transpose(self.f:reshape(t, { 1, n, c.head_dim, c.seq }), SWAP)
end

-- [1, n, S, Dh] -> [1, n·Dh, 1, S]
function Gen:from_heads(t, name)
  local c = self.cfg
  local n = t.shape[2]
  return self.f:reshape(self.f:transpose(t, SWAP), { 1, n * c.head_dim, 1, c.seq }, { name = name })
end

-- GQA: kv heads [1, KVH, S, Dh] repeated to [1, H, S, Dh] (head h reads kv head h // group).
function Gen:repeat_kv(t)
  local c = self.cfg
  local g = c.n_heads // c.n_kv_heads
  if g == 1 then return t end
  local f = self.f
  local r = f:reshape(t, { 1, c.n_kv_heads, 1, c.seq * c.head_dim })
  return f:reshape(f:tile(r, { 1, 1, g, 1 }), { 1, c.n_heads, c.seq, c.head_dim })
end

-- GQA backward: the gradient of repeat_kv sums each group of query heads.
function Gen:sum_kv(t)
  local c = self.cfg
  local g = c.n_heads // c.n_kv_heads
  if g == 1 then return t end
  local f = self.f
  local r = f:reshape(t, { 1, c.n_kv_heads, g, c.seq * c.head_dim })
  return f:reshape(f:reduce_sum(r, { 2 }, true), { 1, c.n_kv_heads, c.seq, c.head_dim })
end

-- RoPE on [1, n, S, Dh]: t·cos + rot(t)·sin with rot(t)[2i] = -t[2i+1], rot(t)[2i+1] = t[2i]
-- (mil_dynamic.h: reshape to pairs [1, n, S·Dh/2, 2], slice even/odd, negate, concat axis 3).
function Gen:rope(t, inverse, name)
  local f, c = self.f, self.cfg
  self.rope_t = self.rope_t or rope_tables(c, self.dt)
  local tabs = self.rope_t
  local n, S, Dh = t.shape[2], c.seq, c.head_dim
  local pairs_ = f:reshape(t, { 1, n, S * Dh // 2, 2 })
  local ev = f:slice_by_size(pairs_, { 0, 0, 0, 0 }, { 1, n, S * Dh // 2, 1 })
  local od = f:slice_by_size(pairs_, { 0, 0, 0, 1 }, { 1, n, S * Dh // 2, 1 })
  local rot = f:reshape(f:concat({ f:mul(od, -1), ev }, 3, false), { 1, n, S, Dh })
  local tc = f:mul(t, f:const(tabs.cos, self.dt, { name = "rope_cos" }))
  local sn = inverse and f:const(tabs.nsin, self.dt, { name = "rope_nsin" })
      or f:const(tabs.sin, self.dt, { name = "rope_sin" })
  return f:add(tc, f:mul(rot, sn), { name = name })
end

-- scores -> probabilities [1, H, S, S]: q kᵀ/√Dh + causal mask, softmax over keys
function Gen:attn_probs(q, k)
  local f, c = self.f, self.cfg
  local s = f:matmul(q, self:repeat_kv(k), false, true)
  s = f:mul(s, 1 / math.sqrt(c.head_dim))
  s = f:add(s, f:causal_mask(c.seq, self.dt))
  return f:softmax(s, -1, { name = "probs_" })
end

-- ===================================================================
-- the blocks, written once
-- ===================================================================

-- Attention forward: x -> xn, q, k (after RoPE), v, attn, x2 = x + rs·Wo·attn.
function Gen:attention_fwd(x, v)
  local f, c = self.f, self.cfg
  local xn = f:rmsnorm(x, self:rms_weight("rms_att", v), c.norm_eps, { name = "xn_" })
  local qf = self:proj(xn, "wq", false, v, "qf")
  local kf = self:proj(xn, "wk", false, v, "kf")
  local vf = self:proj(xn, "wv", false, v, "vf")
  local q, k, vh = self:to_heads(qf, c.n_heads), self:to_heads(kf, c.n_kv_heads), self:to_heads(vf, c.n_kv_heads)
  if c.rope then
    q, k = self:rope(q, false, "q_rope"), self:rope(k, false, "k_rope")
    qf, kf = self:from_heads(q, "qr"), self:from_heads(k, "kr")
  end
  local probs = self:attn_probs(q, k)
  local attn = self:from_heads(f:matmul(probs, self:repeat_kv(vh), false, false), "attn_")
  local o = self:proj(attn, "wo", false, v, "o_out")
  if c.residual_scale ~= 1 then o = f:mul(o, c.residual_scale) end
  return { xn = xn, q = qf, k = kf, v = vf, attn = attn, x2 = f:add(x, o, { name = "x2_" }) }
end

-- SwiGLU forward: x2 -> x2n, h1, h3, gate = silu(h1)·h3, y = x2 + rs·W2·gate.
function Gen:ffn_fwd(x2, v)
  local f, c = self.f, self.cfg
  local xn = f:rmsnorm(x2, self:rms_weight("rms_ffn", v), c.norm_eps, { name = "x2n_" })
  local h1 = self:proj(xn, "w1", false, v, "h1_")
  local h3 = self:proj(xn, "w3", false, v, "h3_")
  local gate = f:mul(f:mul(h1, f:sigmoid(h1)), h3, { name = "gate_" }) -- the research composes silu
  local o = self:proj(gate, "w2", false, v, "ffn_out")
  if c.residual_scale ~= 1 then o = f:mul(o, c.residual_scale) end
  return { x2n = xn, h1 = h1, h3 = h3, gate = gate, y = f:add(x2, o, { name = "y_" }) }
end

-- SwiGLU backward: dy (gradient of y), h1, h3 -> dh1, dh3, dxn = W1ᵀ dh1 + W3ᵀ dh3 (stories_mil.h
-- gen_ffn_bwd: dsilu = W2ᵀ dy, dh3 = dsilu·silu(h1), dh1 = dsilu·h3·σ(h1)(1 + h1(1 − σ(h1)))).
function Gen:ffn_bwd(dy, h1, h3, v)
  local f, c = self.f, self.cfg
  if c.residual_scale ~= 1 then dy = f:mul(dy, c.residual_scale) end
  local dsilu = self:proj(dy, "w2", true, v, "dsilu")
  local sig = f:sigmoid(h1)
  local dsd = f:mul(sig, f:add(1, f:mul(h1, f:sub(1, sig))))
  local dh1 = f:mul(f:mul(dsilu, h3), dsd, { name = "dh1_" })
  local dh3 = f:mul(dsilu, f:mul(h1, sig), { name = "dh3_" })
  local dx = f:add(self:proj(dh1, "w1", true, v), self:proj(dh3, "w3", true, v), { name = "dxn_" })
  return { dh1 = dh1, dh3 = dh3, dxn = dx }
end

-- Attention backward part 1 (gen_sdpa_bwd1): q, k, v, dx2 -> da = rs·Woᵀ dx2, probs recomputed,
-- dv = Σ_group probsᵀ·da, dp = da·vᵀ (probs and dp flattened to [1, H·S, 1, S]).
function Gen:sdpa_bwd1(qf, kf, vf, dx2, v)
  local f, c = self.f, self.cfg
  if c.residual_scale ~= 1 then dx2 = f:mul(dx2, c.residual_scale) end
  local daf = self:proj(dx2, "wo", true, v, "da")
  local q, k = self:to_heads(qf, c.n_heads), self:to_heads(kf, c.n_kv_heads)
  local vh, da = self:to_heads(vf, c.n_kv_heads), self:to_heads(daf, c.n_heads)
  local probs = self:attn_probs(q, k)
  local dv = self:sum_kv(f:matmul(probs, da, true, false))
  local dp = f:matmul(da, self:repeat_kv(vh), false, true)
  local SC = c.n_heads * c.seq
  return { dv = self:from_heads(dv, "dv_"), probs = f:reshape(probs, { 1, SC, 1, c.seq }, { name = "pf" }),
           dp = f:reshape(dp, { 1, SC, 1, c.seq }, { name = "dpf" }) }
end

-- Attention backward part 2 (gen_sdpa_bwd2, weight-free): probs, dp, q, k -> dq, dk before RoPE:
-- ds = probs·(dp − Σ_keys probs·dp)/√Dh, dq = ds·k, dk = Σ_group dsᵀ·q, then the inverse rotation.
function Gen:sdpa_bwd2(pf, dpf, qf, kf)
  local f, c = self.f, self.cfg
  local H, S = c.n_heads, c.seq
  local probs = f:reshape(pf, { 1, H, S, S })
  local dp = f:reshape(dpf, { 1, H, S, S })
  local q, k = self:to_heads(qf, H), self:to_heads(kf, c.n_kv_heads)
  local spdp = f:reduce_sum(f:mul(probs, dp), { -1 }, true)
  local ds = f:mul(f:mul(probs, f:sub(dp, spdp)), 1 / math.sqrt(c.head_dim), { name = "ds" })
  local dq = f:matmul(ds, self:repeat_kv(k), false, false)
  local dk = self:sum_kv(f:matmul(ds, q, true, false))
  if c.rope then dq, dk = self:rope(dq, true, "dq_pre"), self:rope(dk, true, "dk_pre") end
  return { dq = self:from_heads(dq, "dq_"), dk = self:from_heads(dk, "dk_") }
end

-- RMSNorm backward (ane_rmsnorm_bwd.h): dy, x -> dx = (dy·w − x·(Σ_c dy·w·x)/D·r²)·r.
function Gen:rmsnorm_bwd(dy, x, key, v)
  local f, c = self.f, self.cfg
  local D = x.shape[2]
  local r = f:pow(f:add(f:mul(f:reduce_sum(f:mul(x, x), { 1 }, true), 1 / D), c.norm_eps), -0.5)
  local dyw = f:mul(dy, self:rms_weight(key, v))
  local dot = f:mul(f:reduce_sum(f:mul(dyw, x), { 1 }, true), 1 / D)
  return f:mul(f:sub(dyw, f:mul(x, f:mul(dot, f:mul(r, r)))), r, { name = "dx_" })
end

-- ===================================================================
-- the kernels
-- ===================================================================

local K = {}

--- attnFwd: x -> xn, q, k, v, attn, x2 (q, k after RoPE). Weights wq wk wv wo rms_att.
function K.attnFwd(g)
  local c = g.cfg
  local v = g:inputs(g:weight_inputs({ { "x", c.dim } }, { "rms_att", "wq", "wk", "wv", "wo" }))
  local o = g:attention_fwd(v.x, v)
  return g:outputs { { "xn", o.xn }, { "q", o.q }, { "k", o.k }, { "v", o.v }, { "attn", o.attn }, { "x2", o.x2 } }
end

--- ffnFwd: x2 -> x2n, h1, h3, gate, y. Weights rms_ffn w1 w3 w2.
function K.ffnFwd(g)
  local c = g.cfg
  local v = g:inputs(g:weight_inputs({ { "x2", c.dim } }, { "rms_ffn", "w1", "w3", "w2" }))
  local o = g:ffn_fwd(v.x2, v)
  return g:outputs { { "x2n", o.x2n }, { "h1", o.h1 }, { "h3", o.h3 }, { "gate", o.gate }, { "y", o.y } }
end

--- ffnBwd: dy, h1, h3 -> dh1, dh3, dxn. Weights w1 w3 w2 (static: their transposes).
function K.ffnBwd(g)
  local c = g.cfg
  local v = g:inputs(g:weight_inputs({ { "dy", c.dim }, { "h1", c.hidden }, { "h3", c.hidden } }, { "w1", "w3", "w2" }))
  local o = g:ffn_bwd(v.dy, v.h1, v.h3, v)
  return g:outputs { { "dh1", o.dh1 }, { "dh3", o.dh3 }, { "dxn", o.dxn } }
end

--- sdpaBwd1: q, k, v, dx2 -> dv, probs, dp. Weight wo (static: woᵀ).
function K.sdpaBwd1(g)
  local c = g.cfg
  local v = g:inputs(g:weight_inputs({ { "q", c.dim }, { "k", c.kv_dim }, { "v", c.kv_dim }, { "dx2", c.dim } }, { "wo" }))
  local o = g:sdpa_bwd1(v.q, v.k, v.v, v.dx2, v)
  return g:outputs { { "dv", o.dv }, { "probs", o.probs }, { "dp", o.dp } }
end

--- sdpaBwd2 (weight-free): probs, dp, q, k -> dq, dk.
function K.sdpaBwd2(g)
  local c = g.cfg
  local SC = c.n_heads * c.seq
  local v = g:inputs { { "probs", SC }, { "dp", SC }, { "q", c.dim }, { "k", c.kv_dim } }
  local o = g:sdpa_bwd2(v.probs, v.dp, v.q, v.k)
  return g:outputs { { "dq", o.dq }, { "dk", o.dk } }
end

--- qkvBwd: dq, dk, dv -> dxn = Wqᵀ dq + Wkᵀ dk + Wvᵀ dv. Weights wq wk wv.
function K.qkvBwd(g)
  local c = g.cfg
  local v = g:inputs(g:weight_inputs({ { "dq", c.dim }, { "dk", c.kv_dim }, { "dv", c.kv_dim } }, { "wq", "wk", "wv" }))
  local f = g.f
  local dx = f:add(f:add(g:proj(v.dq, "wq", true, v), g:proj(v.dk, "wk", true, v)), g:proj(v.dv, "wv", true, v))
  return g:outputs { { "dxn", dx } }
end

--- rmsAttBwd / rmsFFNBwd (device extras): dy, x -> dx through that RMSNorm.
function K.rmsAttBwd(g)
  local v = g:inputs(g:weight_inputs({ { "dy", g.cfg.dim }, { "x", g.cfg.dim } }, { "rms_att" }))
  return g:outputs { { "dx", g:rmsnorm_bwd(v.dy, v.x, "rms_att", v) } }
end
function K.rmsFFNBwd(g)
  local v = g:inputs(g:weight_inputs({ { "dy", g.cfg.dim }, { "x", g.cfg.dim } }, { "rms_ffn" }))
  return g:outputs { { "dx", g:rmsnorm_bwd(v.dy, v.x, "rms_ffn", v) } }
end

-- The classifier's weight: wcls, or embed when shared.
local function cls_key(c) return c.shared_classifier and "embed" or "wcls" end

--- finalRms (gen_final_rmsnorm): x -> xf = rmsnorm(x)·rms_final.
function K.finalRms(g)
  local v = g:inputs(g:weight_inputs({ { "x", g.cfg.dim } }, { "rms_final" }))
  return g:outputs { { "xf", g.f:rmsnorm(v.x, g:rms_weight("rms_final", v), g.cfg.norm_eps) } }
end

--- classifierFwd (gen_classifier_fwd): xf -> logits = Wcls·xf [1, V, 1, S] (a 1x1 conv).
function K.classifierFwd(g)
  local key = cls_key(g.cfg)
  local v = g:inputs(g:weight_inputs({ { "xf", g.cfg.dim } }, { key }))
  return g:outputs { { "logits", g:proj(v.xf, key, false, v) } }
end

--- softmaxVocab (gen_softmax_vocab): logits -> softmax over the vocabulary (channels).
function K.softmaxVocab(g)
  local v = g:inputs { { "logits", g.cfg.vocab } }
  return g:outputs { { "probs", g.f:softmax(v.logits, 1) } }
end

--- classifierBwd (gen_classifier_bwd): dlogits -> dxf = Wclsᵀ·dlogits. Static: a matmul with
-- Wclsᵀ [1, D, V] baked (the research notes the ANE rejects a conv with 32000 input channels).
function K.classifierBwd(g)
  local c = g.cfg
  local key = cls_key(c)
  local v = g:inputs(g:weight_inputs({ { "dlogits", c.vocab } }, { key }))
  local f = g.f
  local dx
  if g.w then
    local et = f:const(g.w[key .. "_t"]:reshape { 1, c.dim, c.vocab }, g.dt, { name = key .. "_t" })
    dx = f:reshape(f:matmul(et, f:reshape(v.dlogits, { 1, c.vocab, c.seq }), false, false), { 1, c.dim, 1, c.seq })
  else
    dx = g:proj(v.dlogits, key, true, v)
  end
  return g:outputs { { "dxf", dx } }
end

M.LAYER_KERNELS = { "attnFwd", "ffnFwd", "ffnBwd", "sdpaBwd1", "sdpaBwd2", "qkvBwd" }
M.EXTRA_LAYER_KERNELS = { "rmsAttBwd", "rmsFFNBwd" }
M.EXTRA_MODEL_KERNELS = { "finalRms", "classifierFwd", "softmaxVocab", "classifierBwd" }

-- which weights each static kernel bakes (transposes end in _t)
local BAKES = {
  attnFwd = { "rms_att", "wq", "wk", "wv", "wo" }, ffnFwd = { "rms_ffn", "w1", "w3", "w2" },
  ffnBwd = { "w1_t", "w3_t", "w2_t" }, sdpaBwd1 = { "wo_t" }, sdpaBwd2 = {},
  qkvBwd = { "wq_t", "wk_t", "wv_t" }, rmsAttBwd = { "rms_att" }, rmsFFNBwd = { "rms_ffn" },
  finalRms = { "rms_final" }, softmaxVocab = {},
}

--- stories.kernel(cfg, name, {precision = "fp16" | "fp32", weights = nil | table}) ->
-- mil.Program, layout. weights: the layer's (or, for the classifier kernels, the model's)
-- tensors to bake, with the transposes the backward kernels need under key .. "_t" (wq_t = wqᵀ,
-- ...); nil makes the dynamic kernel (weights are inputs).
function M.kernel(cfg, name, opts)
  local gen = K[name]
  if not gen then error("stories.kernel: unknown kernel '" .. tostring(name) .. "'", 2) end
  local g = new_gen(cfg, opts, "stories." .. name)
  if g.w then
    local need = BAKES[name]
    if not need then
      local key = cls_key(g.cfg)
      need = name == "classifierFwd" and { key } or { key .. "_t" }
    end
    check_weights(g.cfg, g.w, need, "stories." .. name)
  end
  return gen(g)
end

--- stories.layer_forward(cfg, w, {precision}) -> mil.Program: one whole layer in one program,
-- the two blocks with const projections: input x [1, dim, 1, seq], output y.
function M.layer_forward(cfg, w, opts)
  opts = opts or {}
  local g = new_gen(cfg, { precision = opts.precision, weights = w }, "stories.layer_forward")
  check_weights(g.cfg, w, { "rms_att", "wq", "wk", "wv", "wo", "rms_ffn", "w1", "w2", "w3" }, "stories.layer_forward")
  local v = g:inputs { { "x", g.cfg.dim } }
  local a = g:attention_fwd(v.x, v)
  local o = g:ffn_fwd(a.x2, v)
  return (g:outputs { { "y", o.y } })
end

--- stories.transposed(w, keys) -> w with key .. "_t" = Wᵀ added for each matrix key (new fp32
-- tensors; a model keeps its own and refreshes them in place).
function M.transposed(w, keys)
  for _, k in ipairs(keys or { "wq", "wk", "wv", "wo", "w1", "w2", "w3" }) do
    local s = w[k]:shape()
    local t = ane.zeros({ s[2], s[1] }, "fp32")
    ane.nn.transpose(t, w[k])
    w[k .. "_t"] = t
  end
  return w
end

--- stories.model_kernels(cfg, {style = "static" | "static_extras" | "dynamic", weights, seed,
-- precision}) -> list of {name = "L3.attnFwd" | "classifierFwd" | "attnFwd", kernel =, layer =,
-- build = function() -> program, layout}: what a model of that style compiles. dynamic: the six
-- shared kernels; static: six per layer with baked weights (the transposes made here);
-- static_extras adds the two RMSNorm backward kernels per layer and the four classifier kernels.
function M.model_kernels(cfg, opts)
  cfg = cfg_of(cfg)
  opts = opts or {}
  local style = opts.style or "static"
  local popts = { precision = opts.precision }
  local list = {}
  if style == "dynamic" then
    for _, n in ipairs(M.LAYER_KERNELS) do
      list[#list + 1] = { name = n, kernel = n, build = function() return M.kernel(cfg, n, popts) end }
    end
    return list
  elseif style ~= "static" and style ~= "static_extras" then
    error('stories.model_kernels: style must be "static", "static_extras" or "dynamic"', 2)
  end
  local weights = opts.weights or M.init_weights(cfg, { seed = opts.seed or 0 })
  if #weights.layers < cfg.n_layers then
    error(string.format("stories.model_kernels: %d layers of weights for %d layers", #weights.layers, cfg.n_layers), 2)
  end
  local names = { table.unpack(M.LAYER_KERNELS) }
  if style == "static_extras" then
    for _, n in ipairs(M.EXTRA_LAYER_KERNELS) do names[#names + 1] = n end
  end
  for l = 1, cfg.n_layers do
    local w = weights.layers[l]
    for _, n in ipairs(names) do
      list[#list + 1] = { name = "L" .. l .. "." .. n, kernel = n, layer = l, build = function()
        if not w.wq_t then M.transposed(w) end
        return M.kernel(cfg, n, { precision = opts.precision, weights = w })
      end }
    end
  end
  if style == "static_extras" then
    for _, n in ipairs(M.EXTRA_MODEL_KERNELS) do
      list[#list + 1] = { name = n, kernel = n, build = function()
        local key = cls_key(cfg)
        if not weights[key .. "_t"] then M.transposed(weights, { key }) end
        return M.kernel(cfg, n, { precision = opts.precision, weights = weights })
      end }
    end
  end
  return list
end

return M
