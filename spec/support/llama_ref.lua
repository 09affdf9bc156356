--- llama_ref: an independent plain-Lua (double precision) Llama forward pass, token by token with
-- a KV cache, the way llama2.c's run.c computes it. For the inference specs only: slow, exact.
--
--   local ref = require "support.llama_ref"
--   local m = ref.new(config, weights)   -- ane.Tensors (llama2.c names) read once into tables
--   local logits = m:forward(token, pos) -- Lua array [vocab]
--   local ids = ref.greedy(m, prompt_ids, n)
local R = {}
R.__index = R

local function rows(t)
  local s = t:shape()
  local flat = t:clone("fp32"):to_table()
  -- to_table is nested for rank >= 2; flatten to a plain array
  local out = {}
  local function walk(x)
    if type(x) == "table" then for _, v in ipairs(x) do walk(v) end else out[#out + 1] = x end
  end
  walk(flat)
  return out, s
end

-- Matrix [n, d] at flat offset off (0-based element offset) times vector x[1..d].
local function matvec(W, off, n, d, x)
  local y = {}
  for i = 0, n - 1 do
    local s, base = 0.0, off + i * d
    for j = 1, d do s = s + W[base + j] * x[j] end
    y[i + 1] = s
  end
  return y
end

local function rmsnorm(x, w, off, eps)
  local ss = 0.0
  for i = 1, #x do ss = ss + x[i] * x[i] end
  local r = 1 / math.sqrt(ss / #x + eps)
  local y = {}
  for i = 1, #x do y[i] = x[i] * r * w[off + i] end
  return y
end

function R.new(config, weights)
  local c = {}
  for k, v in pairs(config) do c[k] = v end
  c.n_kv_heads = c.n_kv_heads or c.n_heads
  c.hd = c.dim // c.n_heads
  c.kv_dim = c.hd * c.n_kv_heads
  c.eps = c.norm_eps or 1e-5
  c.theta = c.rope_theta or 10000.0
  c.rope_style = c.rope_style or (type(c.rope) == "string" and c.rope) or "interleaved"
  local w = {}
  for name, t in pairs(weights) do w[name] = rows(t) end
  w.wcls = w.wcls or w.embed
  local self = setmetatable({ c = c, w = w, kc = {}, vc = {} }, R)
  for l = 1, c.n_layers do
    self.kc[l], self.vc[l] = {}, {}
  end
  return self
end

local function rope(v, nh, hd, pos, theta, style)
  for h = 0, nh - 1 do
    for i = 0, hd // 2 - 1 do
      local a = pos / theta ^ (2 * i / hd)
      local cs, sn = math.cos(a), math.sin(a)
      local i0, i1
      if style == "half" then
        i0, i1 = h * hd + i + 1, h * hd + i + hd // 2 + 1
      else
        i0, i1 = h * hd + 2 * i + 1, h * hd + 2 * i + 2
      end
      local x0, x1 = v[i0], v[i1]
      v[i0] = x0 * cs - x1 * sn
      v[i1] = x0 * sn + x1 * cs
    end
  end
end

--- m:forward(token, pos) -> logits (Lua array of vocab doubles); token is a 0-based id.
function R:forward(token, pos)
  local c, w = self.c, self.w
  local D, KV, H, hd = c.dim, c.kv_dim, c.hidden, c.hd
  local x = {}
  for i = 1, D do x[i] = w.embed[token * D + i] end
  for l = 0, c.n_layers - 1 do
    local xn = rmsnorm(x, w.rms_att, l * D, c.eps)
    local q = matvec(w.wq, l * D * D, D, D, xn)
    local k = matvec(w.wk, l * KV * D, KV, D, xn)
    local v = matvec(w.wv, l * KV * D, KV, D, xn)
    if w.bq then
      for i = 1, D do q[i] = q[i] + w.bq[l * D + i] end
      for i = 1, KV do
        k[i] = k[i] + w.bk[l * KV + i]
        v[i] = v[i] + w.bv[l * KV + i]
      end
    end
    rope(q, c.n_heads, hd, pos, c.theta, c.rope_style)
    rope(k, c.n_kv_heads, hd, pos, c.theta, c.rope_style)
    self.kc[l + 1][pos + 1], self.vc[l + 1][pos + 1] = k, v
    local att = {}
    local G = c.n_heads // c.n_kv_heads
    for h = 0, c.n_heads - 1 do
      local kvh = h // G
      local sc, mx = {}, -math.huge
      for t = 1, pos + 1 do
        local kt, s = self.kc[l + 1][t], 0.0
        for i = 1, hd do s = s + q[h * hd + i] * kt[kvh * hd + i] end
        sc[t] = s / math.sqrt(hd)
        if sc[t] > mx then mx = sc[t] end
      end
      local sum = 0.0
      for t = 1, pos + 1 do
        sc[t] = math.exp(sc[t] - mx)
        sum = sum + sc[t]
      end
      for i = 1, hd do
        local s = 0.0
        for t = 1, pos + 1 do s = s + sc[t] / sum * self.vc[l + 1][t][kvh * hd + i] end
        att[h * hd + i] = s
      end
    end
    local o = matvec(w.wo, l * D * D, D, D, att)
    for i = 1, D do x[i] = x[i] + o[i] end
    xn = rmsnorm(x, w.rms_ffn, l * D, c.eps)
    local h1 = matvec(w.w1, l * H * D, H, D, xn)
    local h3 = matvec(w.w3, l * H * D, H, D, xn)
    for i = 1, H do h1[i] = h1[i] / (1 + math.exp(-h1[i])) * h3[i] end
    local y = matvec(w.w2, l * D * H, D, H, h1)
    for i = 1, D do x[i] = x[i] + y[i] end
  end
  x = rmsnorm(x, w.rms_final, 0, c.eps)
  return matvec(w.wcls, 0, c.vocab, D, x)
end

local function argmax(v)
  local b = 1
  for i = 2, #v do if v[i] > v[b] then b = i end end
  return b - 1
end
R.argmax = argmax

--- ref.greedy(m, prompt, n) -> prompt's continuation: n ids chosen by argmax (0-based ids).
function R.greedy(m, prompt, n)
  local logits
  for pos, id in ipairs(prompt) do logits = m:forward(id, pos - 1) end
  local out, pos = {}, #prompt
  for i = 1, n do
    local id = argmax(logits)
    out[i] = id
    if i < n then
      logits = m:forward(id, pos)
      pos = pos + 1
    end
  end
  return out
end

return R
