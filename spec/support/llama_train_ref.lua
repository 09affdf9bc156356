-- spec/support/llama_train_ref.lua: the llama2.c transformer in plain Lua, in double precision, with
-- its backward pass written out by hand. Independent of ane.stories and ane.model: it reads
-- weights as nested Lua tables and knows nothing about kernels or layouts. Small configs only
-- (cost ~ seq·(params + seq·dim) per sequence, interpreted).
--
--   local ref = require "support.llama_train_ref"
--   local y = ref.layer(cfg, w, x)                    -- one layer, x[c][s] rows (as ane layouts)
--   local loss, grads = ref.step(cfg, W, tokens, targets)  -- W: name -> table, like params()
-- cfg: dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq, norm_eps, rope_theta, rope,
-- residual_scale, shared_classifier (ane.stories.config fields).
local R = {}

local exp, sqrt, log, cos, sin = math.exp, math.sqrt, math.log, math.cos, math.sin

local function zeros(n)
  local t = {}
  for i = 1, n do t[i] = 0.0 end
  return t
end

local function zmat(r, c)
  local m = {}
  for i = 1, r do m[i] = zeros(c) end
  return m
end

-- y = W·x for W rows [out][in]
local function mv(W, x)
  local y = {}
  for o = 1, #W do
    local row, acc = W[o], 0.0
    for i = 1, #x do acc = acc + row[i] * x[i] end
    y[o] = acc
  end
  return y
end

-- y = Wᵀ·g
local function mtv(W, g)
  local y = zeros(#W[1])
  for o = 1, #W do
    local row, go = W[o], g[o]
    for i = 1, #y do y[i] = y[i] + row[i] * go end
  end
  return y
end

-- G += g ⊗ x
local function outer_add(G, g, x)
  for o = 1, #G do
    local row, go = G[o], g[o]
    for i = 1, #x do row[i] = row[i] + go * x[i] end
  end
end

local function rmsnorm(x, w, eps)
  local ss = 0.0
  for i = 1, #x do ss = ss + x[i] * x[i] end
  local r = 1 / sqrt(ss / #x + eps)
  local y = {}
  for i = 1, #x do y[i] = x[i] * r * w[i] end
  return y, r
end

-- dL/dx of y = x·r·w (adds dL/dw into dw)
local function rmsnorm_bwd(dy, x, w, r, dw)
  local D, dot = #x, 0.0
  for i = 1, D do
    dot = dot + dy[i] * w[i] * x[i]
    dw[i] = dw[i] + dy[i] * x[i] * r
  end
  local dx = {}
  for i = 1, D do dx[i] = r * dy[i] * w[i] - x[i] * r * r * r * dot / D end
  return dx
end

-- rotate pairs (j, j+1) of each head by pos·theta^(-(j mod Dh)/Dh); sign -1 undoes it
local function rope(v, pos, Dh, theta, sign)
  for j = 1, #v, 2 do
    local hd = (j - 1) % Dh
    local a = sign * pos / theta ^ (hd / Dh)
    local c, s = cos(a), sin(a)
    local v0, v1 = v[j], v[j + 1]
    v[j], v[j + 1] = v0 * c - v1 * s, v0 * s + v1 * c
  end
end

local function silu(a) return a / (1 + exp(-a)) end

-- forward of one layer for one sequence; x: positions of vectors. Returns y and the tape.
local function layer_fwd(c, w, x)
  local S, Dh, H, KVH = #x, c.dim // c.n_heads, c.n_heads, c.n_kv_heads or c.n_heads
  local grp, rs = H // KVH, c.residual_scale or 1
  local T = { x = x, xn = {}, r1 = {}, q = {}, k = {}, v = {}, p = {}, att = {}, x2 = {}, x2n = {},
    r2 = {}, h1 = {}, h3 = {}, gate = {} }
  for s = 1, S do
    T.xn[s], T.r1[s] = rmsnorm(x[s], w.rms_att, c.norm_eps)
    T.q[s], T.k[s], T.v[s] = mv(w.wq, T.xn[s]), mv(w.wk, T.xn[s]), mv(w.wv, T.xn[s])
    if c.rope ~= false then
      rope(T.q[s], s - 1, Dh, c.rope_theta, 1)
      rope(T.k[s], s - 1, Dh, c.rope_theta, 1)
    end
  end
  local scale = 1 / sqrt(Dh)
  for t = 1, S do
    T.p[t], T.att[t] = {}, zeros(c.dim)
    for h = 0, H - 1 do
      local qb, kb = h * Dh, (h // grp) * Dh
      local sc, mx = {}, -math.huge
      for u = 1, t do
        local acc = 0.0
        for d = 1, Dh do acc = acc + T.q[t][qb + d] * T.k[u][kb + d] end
        sc[u] = acc * scale
        if sc[u] > mx then mx = sc[u] end
      end
      local sum = 0.0
      for u = 1, t do sc[u] = exp(sc[u] - mx); sum = sum + sc[u] end
      for u = 1, t do sc[u] = sc[u] / sum end
      T.p[t][h] = sc
      for d = 1, Dh do
        local acc = 0.0
        for u = 1, t do acc = acc + sc[u] * T.v[u][kb + d] end
        T.att[t][qb + d] = acc
      end
    end
  end
  local y = {}
  for s = 1, S do
    local o = mv(w.wo, T.att[s])
    local x2 = {}
    for i = 1, c.dim do x2[i] = x[s][i] + rs * o[i] end
    T.x2[s] = x2
    T.x2n[s], T.r2[s] = rmsnorm(x2, w.rms_ffn, c.norm_eps)
    T.h1[s], T.h3[s] = mv(w.w1, T.x2n[s]), mv(w.w3, T.x2n[s])
    local g = {}
    for j = 1, c.hidden do g[j] = silu(T.h1[s][j]) * T.h3[s][j] end
    T.gate[s] = g
    local f = mv(w.w2, g)
    local ys = {}
    for i = 1, c.dim do ys[i] = x2[i] + rs * f[i] end
    y[s] = ys
  end
  return y, T
end

-- backward of one layer: dy per position -> dx; adds weight gradients into gw
local function layer_bwd(c, w, T, dy, gw)
  local S, Dh, H, KVH = #dy, c.dim // c.n_heads, c.n_heads, c.n_kv_heads or c.n_heads
  local grp, rs = H // KVH, c.residual_scale or 1
  local dx2 = {}
  for s = 1, S do
    local g = {}
    for i = 1, c.dim do g[i] = rs * dy[s][i] end
    outer_add(gw.w2, g, T.gate[s])
    local dgate = mtv(w.w2, g)
    local dh1, dh3 = {}, {}
    for j = 1, c.hidden do
      local a = T.h1[s][j]
      local sg = 1 / (1 + exp(-a))
      dh3[j] = dgate[j] * a * sg
      dh1[j] = dgate[j] * T.h3[s][j] * sg * (1 + a * (1 - sg))
    end
    outer_add(gw.w1, dh1, T.x2n[s])
    outer_add(gw.w3, dh3, T.x2n[s])
    local dxn = mtv(w.w1, dh1)
    local d3 = mtv(w.w3, dh3)
    for i = 1, c.dim do dxn[i] = dxn[i] + d3[i] end
    local d = rmsnorm_bwd(dxn, T.x2[s], w.rms_ffn, T.r2[s], gw.rms_ffn)
    for i = 1, c.dim do d[i] = d[i] + dy[s][i] end
    dx2[s] = d
  end
  local datt = {}
  for s = 1, S do
    local g = {}
    for i = 1, c.dim do g[i] = rs * dx2[s][i] end
    outer_add(gw.wo, g, T.att[s])
    datt[s] = mtv(w.wo, g)
  end
  local dq, dk, dv = zmat(S, c.dim), zmat(S, #T.k[1]), zmat(S, #T.v[1])
  local scale = 1 / sqrt(Dh)
  for t = 1, S do
    for h = 0, H - 1 do
      local qb, kb = h * Dh, (h // grp) * Dh
      local p = T.p[t][h]
      local dp, acc = {}, 0.0
      for u = 1, t do
        local v = 0.0
        for d = 1, Dh do
          v = v + datt[t][qb + d] * T.v[u][kb + d]
          dv[u][kb + d] = dv[u][kb + d] + p[u] * datt[t][qb + d]
        end
        dp[u] = v
        acc = acc + p[u] * v
      end
      for u = 1, t do
        local ds = p[u] * (dp[u] - acc) * scale
        for d = 1, Dh do
          dq[t][qb + d] = dq[t][qb + d] + ds * T.k[u][kb + d]
          dk[u][kb + d] = dk[u][kb + d] + ds * T.q[t][qb + d]
        end
      end
    end
  end
  local dx = {}
  for s = 1, S do
    if c.rope ~= false then
      rope(dq[s], s - 1, Dh, c.rope_theta, -1)
      rope(dk[s], s - 1, Dh, c.rope_theta, -1)
    end
    outer_add(gw.wq, dq[s], T.xn[s])
    outer_add(gw.wk, dk[s], T.xn[s])
    outer_add(gw.wv, dv[s], T.xn[s])
    local dxn = mtv(w.wq, dq[s])
    local a, b = mtv(w.wk, dk[s]), mtv(w.wv, dv[s])
    for i = 1, c.dim do dxn[i] = dxn[i] + a[i] + b[i] end
    local d = rmsnorm_bwd(dxn, T.x[s], w.rms_att, T.r1[s], gw.rms_att)
    for i = 1, c.dim do d[i] = d[i] + dx2[s][i] end
    dx[s] = d
  end
  return dx
end

--- ref.layer(cfg, w, x) -> y[c][s]: one layer, x given as rows x[c][s] (channel-major, the
-- ane layout) and w as tensors or tables of rows.
function R.layer(cfg, w, x)
  local tw = {}
  for k, v in pairs(w) do tw[k] = type(v) == "userdata" and v:to_table() or v end
  if type(x) == "userdata" then x = x:reshape({ cfg.dim, cfg.seq }):to_table() end
  local S = #x[1]
  local xs = {}
  for s = 1, S do
    xs[s] = {}
    for ch = 1, #x do xs[s][ch] = x[ch][s] end
  end
  local y = layer_fwd(cfg, tw, xs)
  local out = {}
  for ch = 1, #x do
    out[ch] = {}
    for s = 1, S do out[ch][s] = y[s][ch] end
  end
  return out
end

local LAYER_KEYS = { "rms_att", "wq", "wk", "wv", "wo", "rms_ffn", "w1", "w2", "w3" }

local function zeros_like(t)
  if type(t[1]) == "table" then
    local m = {}
    for i = 1, #t do m[i] = zeros(#t[i]) end
    return m
  end
  return zeros(#t)
end

--- ref.step(cfg, W, tokens, targets) -> mean loss, grads: W maps parameter names ("embed",
-- "layers.1.wq", ..., "rms_final", "wcls" unless shared) to nested tables; tokens and targets
-- are 0-based ids, B·seq of them. grads has the same names and shapes.
function R.step(c, W, tokens, targets)
  local S = c.seq
  local B = #tokens // S
  local layers, G, glayers = {}, {}, {}
  for name, t in pairs(W) do G[name] = zeros_like(t) end
  for l = 1, c.n_layers do
    layers[l], glayers[l] = {}, {}
    for _, k in ipairs(LAYER_KEYS) do
      layers[l][k] = W["layers." .. l .. "." .. k]
      glayers[l][k] = G["layers." .. l .. "." .. k]
    end
  end
  local cls = c.shared_classifier ~= false and "embed" or "wcls"
  local N, total = B * S, 0.0
  for b = 0, B - 1 do
    local x = {}
    for s = 1, S do
      local row = W.embed[tokens[b * S + s] + 1]
      x[s] = {}
      for i = 1, c.dim do x[s][i] = row[i] end
    end
    local tapes = {}
    for l = 1, c.n_layers do x, tapes[l] = layer_fwd(c, layers[l], x) end
    local dx = {}
    for s = 1, S do
      local xf, r = rmsnorm(x[s], W.rms_final, c.norm_eps)
      local lg = mv(W[cls], xf)
      local mx = -math.huge
      for v = 1, #lg do if lg[v] > mx then mx = lg[v] end end
      local sum = 0.0
      for v = 1, #lg do sum = sum + exp(lg[v] - mx) end
      local t = targets[b * S + s] + 1
      total = total + (log(sum) + mx - lg[t])
      local dl = {}
      for v = 1, #lg do dl[v] = exp(lg[v] - mx) / sum / N end
      dl[t] = dl[t] - 1 / N
      outer_add(G[cls], dl, xf)
      dx[s] = rmsnorm_bwd(mtv(W[cls], dl), x[s], W.rms_final, r, G.rms_final)
    end
    for l = c.n_layers, 1, -1 do dx = layer_bwd(c, layers[l], tapes[l], dx, glayers[l]) end
    for s = 1, S do
      local row = G.embed[tokens[b * S + s] + 1]
      for i = 1, c.dim do row[i] = row[i] + dx[s][i] end
    end
  end
  return total / N, G
end

return R
