--- ane.llm.kernels: the MIL programs inference runs (weights are kernel inputs, not constants).
--
-- One transformer layer is two kernels, so the K/V of the new positions reach the cache before
-- attention reads it:
--   qkv(cfg, S)      x [S, D], rms_att [D], wq [D, D], wk [KV, D], wv [KV, D], (bq [D], bk [KV],
--                    bv [KV]), cos [S, hd/2], sin [S, hd/2]
--                    -> q [S, D], k [S, KV], v [S, KV]          (q, k rotated)
--   attn_ffn(cfg, S, T) x [S, D], q [S, D], kc [T, KV], vc [T, KV], mask [S, T], wo [D, D],
--                    rms_ffn [D], w1 [H, D], w2 [D, H], w3 [H, D]  -> y [S, D]
--   head(cfg, S)     x [S, D], rms_final [D], wcls [V, D]      -> logits [S, V]
-- Rows are positions, columns features (row-major [S, D]): every weight product is
-- matmul(x, W, transpose_y = true) on W[out][in] as stored, which the CPU backend runs as one
-- GEMM (S > 1) or GEMV (S = 1) per weight, split over its thread pool, reading W in place.
-- Causal attention is matmul + additive mask + softmax (the ANE ignores an SDPA mask); GQA
-- groups the query heads of one KV head into one batched matmul.
--
-- Precision: the programs are fp32 throughout. cfg.fp16 = true means they are compiled with
-- precision = "fp16" (every op rounds its result to fp16, mil-reference.md 7.3) and every input
-- is read through cast(x, "fp32"): an exact cast, which the CPU backend plans as a view, so the
-- input (weights included) is read in place instead of being rounded into a copy on every eval.
-- The caller passes fp16-valued data (weights rounded once at load), so nothing is lost.
-- Compile with M.precision(cfg).
local mil = require "ane.mil"

local M = {}

function M.precision(cfg) return cfg.fp16 and "fp16" or "fp32" end

local function rounder() return function(v) return v end end

-- The function's inputs ({name, shape} in order) by name; in fp16 mode each read through an
-- exact cast (above). MIL wants every input declared before the first op.
local function inputs(f, cfg, list)
  local v = {}
  for _, e in ipairs(list) do v[e[1]] = f:input(e[1], "fp32", e[2]) end
  if cfg.fp16 then
    for _, e in ipairs(list) do v[e[1]] = f:cast(v[e[1]], "fp32") end
  end
  return v
end

-- y = x Wᵀ (+ b)
local function proj(f, R, x, W, b)
  local y = R(f:matmul(x, W, false, true))
  if b then y = R(f:add(y, b)) end
  return y
end

-- RMSNorm over the last axis: x / sqrt(mean(x²) + eps) · w
local function rmsnorm(f, R, x, w, eps)
  local ms = R(f:reduce_mean(R(f:mul(x, x)), { -1 }, true))
  local r = R(f:rsqrt(R(f:add(ms, eps)), 0.0))
  return R(f:mul(R(f:mul(x, r)), w))
end

-- Rotary embedding of t [S, C] with heads of hd: pairs (2i, 2i+1) ("interleaved", llama2.c) or
-- (i, i + hd/2) ("half", Hugging Face / GPT-NeoX); cos, sin [S, hd/2].
local function rope(f, R, t, S, nh, hd, cos, sin, style)
  local h = hd // 2
  local shape, cshape, axis
  if style == "half" then
    shape, cshape, axis = { S, nh, 2, h }, { S, 1, 1, h }, 2
  else
    shape, cshape, axis = { S, nh, h, 2 }, { S, 1, h, 1 }, 3
  end
  local x = f:reshape(t, shape)
  local a, b = f:split(x, axis, 2)
  local c, s = f:reshape(cos, cshape), f:reshape(sin, cshape)
  local ra = R(f:sub(R(f:mul(a, c)), R(f:mul(b, s))))
  local rb = R(f:add(R(f:mul(a, s)), R(f:mul(b, c))))
  return f:reshape(f:concat({ ra, rb }, axis, false), { S, nh * hd })
end

function M.qkv(cfg, S)
  local D, KV, hd = cfg.dim, cfg.kv_dim, cfg.head_dim
  local p = mil.program {}
  local f = p:func("main")
  local R = rounder()
  local list = { { "x", { S, D } }, { "rms_att", { D } }, { "wq", { D, D } }, { "wk", { KV, D } }, { "wv", { KV, D } } }
  if cfg.qkv_bias then
    for _, e in ipairs { { "bq", { D } }, { "bk", { KV } }, { "bv", { KV } } } do list[#list + 1] = e end
  end
  list[#list + 1] = { "cos", { S, hd // 2 } }
  list[#list + 1] = { "sin", { S, hd // 2 } }
  local I = inputs(f, cfg, list)
  local x, rms, wq, wk, wv, bq, bk, bv, cos, sin = I.x, I.rms_att, I.wq, I.wk, I.wv, I.bq, I.bk, I.bv, I.cos, I.sin
  local xn = rmsnorm(f, R, x, rms, cfg.norm_eps)
  local q = proj(f, R, xn, wq, bq)
  local k = proj(f, R, xn, wk, bk)
  local v = proj(f, R, xn, wv, bv)
  q = rope(f, R, q, S, cfg.n_heads, hd, cos, sin, cfg.rope_style)
  k = rope(f, R, k, S, cfg.n_kv_heads, hd, cos, sin, cfg.rope_style)
  f:output(f:identity(q, { name = "q" }), f:identity(k, { name = "k" }), f:identity(v, { name = "v" }))
  return p
end

function M.attn_ffn(cfg, S, T)
  local D, KV, H, hd = cfg.dim, cfg.kv_dim, cfg.hidden, cfg.head_dim
  local nkv, G = cfg.n_kv_heads, cfg.n_heads // cfg.n_kv_heads
  local p = mil.program {}
  local f = p:func("main")
  local R = rounder()
  local I = inputs(f, cfg, { { "x", { S, D } }, { "q", { S, D } }, { "kc", { T, KV } }, { "vc", { T, KV } },
    { "mask", { S, T } }, { "wo", { D, D } }, { "rms_ffn", { D } }, { "w1", { H, D } }, { "w2", { D, H } },
    { "w3", { H, D } } })
  local x, q, kc, vc, mask, wo, rms, w1, w2, w3 = I.x, I.q, I.kc, I.vc, I.mask, I.wo, I.rms_ffn, I.w1, I.w2, I.w3
  -- q [S, D] -> [nkv, G*S, hd]: the query heads sharing one KV head in one batch
  local qh = f:reshape(f:transpose(f:reshape(q, { S, nkv, G, hd }), { 1, 2, 0, 3 }), { nkv, G * S, hd })
  local kh = f:transpose(f:reshape(kc, { T, nkv, hd }), { 1, 0, 2 })
  local vh = f:transpose(f:reshape(vc, { T, nkv, hd }), { 1, 0, 2 })
  local sc = R(f:mul(R(f:matmul(qh, kh, false, true)), 1 / math.sqrt(hd)))
  sc = R(f:add(f:reshape(sc, { nkv, G, S, T }), mask))
  local pr = R(f:softmax(sc, -1))
  local o = R(f:matmul(f:reshape(pr, { nkv, G * S, T }), vh, false, false))
  o = f:reshape(f:transpose(f:reshape(o, { nkv, G, S, hd }), { 2, 0, 1, 3 }), { S, D })
  local x2 = R(f:add(x, proj(f, R, o, wo)))
  local xn = rmsnorm(f, R, x2, rms, cfg.norm_eps)
  local h1 = proj(f, R, xn, w1)
  local h3 = proj(f, R, xn, w3)
  local g = R(f:mul(R(f:silu(h1)), h3))
  local y = R(f:add(x2, proj(f, R, g, w2)))
  f:output(f:identity(y, { name = "y" }))
  return p
end

function M.head(cfg, S)
  local D, V = cfg.dim, cfg.vocab
  local p = mil.program {}
  local f = p:func("main")
  local R = rounder()
  local I = inputs(f, cfg, { { "x", { S, D } }, { "rms_final", { D } }, { "wcls", { V, D } } })
  local x, rms, w = I.x, I.rms_final, I.wcls
  local xn = rmsnorm(f, R, x, rms, cfg.norm_eps)
  f:output(f:identity(proj(f, R, xn, w), { name = "logits" }))
  return p
end

return M
