--- ane.model: a llama-style transformer you can train: parameters, gradients, the kernels of
-- one of the research's three pipelines, and the CPU half of the step (runtime/nn via ane.nn).
--
--   local model = require("ane.model").new(cfg, {style = "dynamic", precision = "fp16", seed = 1})
--   local loss = model:forward(tokens, targets)   -- int32 tensors [B*S] or Lua arrays
--   model:zero_grad(); model:backward(loss_scale) -- every grad (scaled by loss_scale)
--   for _, p in ipairs(model:params()) do ... p.param, p.grad ... end
--   model:save("model.bin"); model = require("ane.model").load("model.bin", opts)
--   model:close()
--
-- cfg: ane.stories.config fields (dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq,
-- rope_theta, norm_eps, shared_classifier, ...). Styles (docs/training.md):
--   dynamic        weights are kernel inputs: six kernels compiled once, shared by every layer;
--   static         weights baked as constants: six kernels per layer, recompiled (on an
--                  ane.queue, in the order the step needs them) whenever the weights changed;
--   static_extras  static, plus the RMSNorm backward and the classifier (forward, softmax,
--                  backward) on the device.
-- The backend runs the forward and input-gradient kernels; the CPU (C, ane.nn) does the
-- embedding, the loss, the final RMSNorm and the classifier (static, dynamic), the RMSNorm
-- backward (static, dynamic) and every weight-gradient GEMM dW = dY·Xᵀ.
--
-- Memory: parameters and gradients are one fp32 tensor per parameter kind, stacked over layers
-- ([n_layers, ...], the llama2.c layout); params() hands out views. Activations of every layer
-- are kept for the backward pass ([B, C, S] per tensor); backward scratch is shared by layers.
local ane = require "ane"
local stories = require "ane.stories"
local nn = ane.nn

local M = {}
local Model = {}
Model.__index = Model

local STYLES = { dynamic = true, static = true, static_extras = true }
local OPTS = { style = true, precision = true, backend = true, seed = true, std = true,
  queue = true, init = true, overlap = true }

-- activations kept per layer, [B, C, S]: name -> channel count
local function act_channels(c)
  return { x = c.dim, xn = c.dim, q = c.dim, k = c.kv_dim, v = c.kv_dim, attn = c.dim, x2 = c.dim,
    x2n = c.dim, h1 = c.hidden, h3 = c.hidden, gate = c.hidden }
end
-- backward scratch shared by layers
local function scratch_channels(c)
  local SC = c.n_heads * c.seq
  return { dy = c.dim, dh1 = c.hidden, dh3 = c.hidden, dxn = c.dim, dv = c.kv_dim, dq = c.dim,
    dk = c.kv_dim, probs = SC, dp = SC, tmp = c.dim, dxf = c.dim, xf = c.dim, xL = c.dim }
end

-- kernel I/O names that are not the buffer of the same name
local REMAP = {
  ffnFwd = { y = "next" },
  sdpaBwd1 = { dx2 = "dy" },
  rmsAttBwd = { dy = "dxn", dx = "tmp" },
  rmsFFNBwd = { dy = "dxn", x = "x2", dx = "tmp" },
  finalRms = { x = "xL" },
  classifierFwd = { logits = "logitsC" },
  softmaxVocab = { logits = "logitsC", probs = "probsC" },
  classifierBwd = { dlogits = "probsC" },
}

local function check_open(self)
  if self.closed then error("model: the model is closed", 3) end
end

local function check_opts(opts)
  if opts == nil then return {} end
  if type(opts) ~= "table" then error("model.new: options must be a table", 3) end
  for k in pairs(opts) do
    if not OPTS[k] then error("model.new: unknown option '" .. tostring(k) .. "'", 3) end
  end
  if opts.style ~= nil and not STYLES[opts.style] then
    error('model.new: style must be "static", "static_extras" or "dynamic", got ' .. tostring(opts.style), 3)
  end
  if opts.precision ~= nil and opts.precision ~= "fp16" and opts.precision ~= "fp32" then
    error('model.new: precision must be "fp16" or "fp32", got ' .. tostring(opts.precision), 3)
  end
  return opts
end

--- model.new(cfg, {style = "dynamic", precision = "fp16", backend = ane.backend(), seed = 0,
-- std = 0.02, init = true, overlap = (backend ~= "cpu")}) -> Model with parameters initialised
-- from the seed (init = false: zeros, for load). overlap: run the weight-gradient GEMMs on a
-- worker thread while the backend runs the next kernels (off by default on the CPU backend,
-- where both would share the same cores).
function M.new(cfg, opts)
  opts = check_opts(opts)
  cfg = stories.config(cfg)
  local L = cfg.n_layers
  local self = setmetatable({
    cfg = cfg, style = opts.style or "dynamic", precision = opts.precision or os.getenv("ANE_PRECISION") or "fp16",
    backend = opts.backend, W = {}, G = {}, layers = {}, glayers = {}, plist = {},
    timing = { kernels = 0, cpu = 0, compile_wait = 0 }, compiles = 0, B = 0,
    dirty = true, closed = false,
  }, Model)
  if self.precision ~= "fp16" and self.precision ~= "fp32" then self.precision = "fp16" end
  for _, spec in ipairs(stories.LAYER_PARAMS) do
    local s = spec.shape(cfg)
    local shape = { L, table.unpack(s) }
    self.W[spec.key] = ane.zeros(shape, "fp32")
    self.G[spec.key] = ane.zeros(shape, "fp32")
  end
  for _, spec in ipairs(stories.MODEL_PARAMS) do
    if not (spec.unless and cfg[spec.unless]) then
      self.W[spec.key] = ane.zeros(spec.shape(cfg), "fp32")
      self.G[spec.key] = ane.zeros(spec.shape(cfg), "fp32")
    end
  end
  for l = 1, L do
    self.layers[l], self.glayers[l] = {}, {}
    for _, spec in ipairs(stories.LAYER_PARAMS) do
      self.layers[l][spec.key] = self.W[spec.key][l]
      self.glayers[l][spec.key] = self.G[spec.key][l]
    end
  end
  local rng = ane.rng(opts.seed or 0)
  for _, p in ipairs(stories.params(cfg)) do
    local param = p.layer and self.layers[p.layer][p.key] or self.W[p.key]
    local grad = p.layer and self.glayers[p.layer][p.key] or self.G[p.key]
    if opts.init ~= false then stories.init_param(param, p, cfg, rng, opts.std) end
    self.plist[#self.plist + 1] = { name = p.name, param = param, grad = grad, decay = p.decay,
      key = p.key, layer = p.layer }
  end
  self.cls = cfg.shared_classifier and "embed" or "wcls"
  local overlap = opts.overlap
  if overlap == nil then overlap = (self.backend or ane.backend()) ~= "cpu" end
  self.overlap = overlap and true or false
  -- compiles a training step costs (the compile budget): static styles recompile every kernel
  self.compiles_per_step = self.style == "static" and 6 * L
      or self.style == "static_extras" and 8 * L + 4 or 0
  return self
end

--- model:set_active_vocab(ids or nil): active-vocab compaction (the research's 32K -> 9.2K).
-- The classifier then scores only these token ids (0-based; an int32 tensor or an array, any
-- order, repeats ignored): the softmax runs over them alone, every target must be one of them,
-- and the rows of the other tokens get no classifier gradient. nil restores the full vocabulary.
-- static_extras keeps the full vocabulary (its classifier kernels are compiled for it).
function Model:set_active_vocab(ids)
  check_open(self)
  local c = self.cfg
  if ids == nil then
    self.av = nil
    self.B = 0 -- buffers follow the vocabulary size
    return
  end
  if self.style == "static_extras" then error("model:set_active_vocab: not with static_extras (its classifier kernels span the vocabulary)", 2) end
  local list = type(ids) == "table" and ids or (ids:numel() > 0 and ids:reshape { ids:numel() }:to_table() or {})
  local seen, sorted = {}, {}
  for _, v in ipairs(list) do
    if math.type(v) ~= "integer" and math.type(v) ~= "float" or v < 0 or v >= c.vocab or v ~= math.floor(v) then
      error(string.format("model:set_active_vocab: %s is not a token id below %d", tostring(v), c.vocab), 2)
    end
    v = math.tointeger(v)
    if not seen[v] then seen[v] = true; sorted[#sorted + 1] = v end
  end
  if #sorted == 0 then error("model:set_active_vocab: no ids", 2) end
  table.sort(sorted)
  local map = ane.full({ c.vocab }, -1, "int32")
  for i, v in ipairs(sorted) do map[v + 1] = i - 1 end
  self.av = { ids = ane.from_table(sorted, "int32"), map = map, n = #sorted,
    W = ane.zeros({ #sorted, c.dim }, "fp32"), G = ane.zeros({ #sorted, c.dim }, "fp32") }
  self.B = 0
end

--- model:params() -> {{name =, param =, grad =, decay =}, ...} in llama2.c order.
function Model:params()
  check_open(self)
  return self.plist
end

--- model:zero_grad(): every gradient to 0.
function Model:zero_grad()
  check_open(self)
  for _, g in pairs(self.G) do g:fill(0) end
end

--- model:weights_changed(): the parameters were changed by something other than an optimizer
-- step after backward (the static styles then recompile at the next forward).
function Model:weights_changed() self.dirty = true end

-- ===================================================================
-- buffers and bindings
-- ===================================================================

local function view4(t, b, C, S) return t[b]:reshape { 1, C, 1, S } end

function Model:_alloc(B)
  if self.B == B then return end
  local c, S = self.cfg, self.cfg.seq
  self.B = B
  self.acts = {}
  local ach = act_channels(c)
  for l = 1, c.n_layers do
    local a = {}
    for name, C in pairs(ach) do
      if name == "x" and l > 1 then
        a.x = self.acts[l - 1].next
      else
        a[name] = ane.zeros({ B, C, S }, "fp32")
      end
    end
    a.next = l < c.n_layers and ane.zeros({ B, c.dim, S }, "fp32") or nil
    self.acts[l] = a
  end
  self.s = {}
  for name, C in pairs(scratch_channels(c)) do self.s[name] = ane.zeros({ B, C, S }, "fp32") end
  self.acts[c.n_layers].next = self.s.xL
  if self.style == "static_extras" then
    self.s.logitsC = ane.zeros({ B, c.vocab, S }, "fp32")
    self.s.probsC = ane.zeros({ B, c.vocab, S }, "fp32")
  else
    self.s.logits = ane.zeros({ B * S, self.av and self.av.n or c.vocab }, "fp32")
    if self.av then self.tgt_a = ane.zeros({ B * S }, "int32") end
  end
  self.tok = ane.zeros({ B * S }, "int32")
  self.tgt = ane.zeros({ B * S }, "int32")
  self.bind = {}
end

-- The tensor bound to kernel I/O `name` for layer l, sequence b (views built once).
function Model:_resolve(kname, name, l, b, shape)
  local c = self.cfg
  local r = REMAP[kname] and REMAP[kname][name] or name
  if self.layers[1][r] then return self.layers[l][r] end
  if self.W[r] then return self.W[r] end
  local a = l and self.acts[l]
  local t = (a and a[r]) or self.s[r]
  if not t then error("model: no buffer for kernel " .. kname .. " '" .. name .. "'", 2) end
  local s = t:shape()
  local v = view4(t, b, s[2], c.seq)
  local vs = v:shape()
  for i = 1, 4 do
    if vs[i] ~= shape[i] then
      error(string.format("model: kernel %s '%s' is [%s], its buffer [%s]", kname, name,
        table.concat(shape, ", "), table.concat(vs, ", ")), 2)
    end
  end
  return v
end

-- ins, outs of kernel kname for (l, b), by name, from the kernel's layout
function Model:_io(kname, l, b)
  local key = kname .. ":" .. (l or 0) .. ":" .. b
  local io = self.bind[key]
  if io then return io[1], io[2] end
  local layout = self.layouts[kname]
  local ins, outs = {}, {}
  for _, e in ipairs(layout.input) do ins[e[1]] = self:_resolve(kname, e[1], l, b, e[2]) end
  for _, e in ipairs(layout.output) do outs[e[1]] = self:_resolve(kname, e[1], l, b, e[2]) end
  self.bind[key] = { ins, outs }
  return ins, outs
end

-- ===================================================================
-- kernels
-- ===================================================================

function Model:_compile_opts()
  return { precision = self.precision, backend = self.backend }
end

function Model:_kernel_names()
  local names = { table.unpack(stories.LAYER_KERNELS) }
  if self.style == "static_extras" then
    for _, n in ipairs(stories.EXTRA_LAYER_KERNELS) do names[#names + 1] = n end
  end
  return names
end

-- dynamic: compile the shared kernels once
function Model:_dynamic_kernels()
  if self.K then return end
  self.K, self.layouts = {}, {}
  local t0 = ane.now()
  for _, n in ipairs(stories.LAYER_KERNELS) do
    local p, layout = stories.kernel(self.cfg, n, { precision = self.precision })
    local k = ane.compile(p, self:_compile_opts())
    k:load()
    self.K[n], self.layouts[n] = k, layout
    self.compiles = self.compiles + 1
  end
  self.timing.compile_wait = self.timing.compile_wait + (ane.now() - t0) * 1e3
end

-- static: refresh the transposed weights and queue every kernel's compile, in the order of use
function Model:_static_kernels()
  if not self.dirty and self.SK then return end
  local c = self.cfg
  self:_close_static()
  self.queue = self.queue or ane.queue { workers = 1 }
  self.T = self.T or {}
  local names = self:_kernel_names()
  self.layouts = self.layouts or {}
  self.SK = {}
  local t0 = ane.now()
  local opts = self:_compile_opts()
  local wl = {}
  for l = 1, c.n_layers do
    local T = self.T[l]
    if not T then
      T = {}
      for _, k in ipairs { "wq", "wk", "wv", "wo", "w1", "w2", "w3" } do
        local s = self.layers[l][k]:shape()
        T[k .. "_t"] = ane.zeros({ s[2], s[1] }, "fp32")
      end
      self.T[l] = T
    end
    local w = setmetatable({}, { __index = function(_, k) return T[k] or self.layers[l][k] end })
    wl[l] = w
  end
  -- forward kernels first (layer order), then backward (reverse), as the step uses them
  local function submit(l, n, w)
    local p, layout = stories.kernel(c, n, { precision = self.precision, weights = w })
    self.layouts[n] = layout
    self.compiles = self.compiles + 1
    return self.queue:compile(p, opts)
  end
  for l = 1, c.n_layers do
    for k, t in pairs(self.T[l]) do nn.transpose(t, self.layers[l][k:sub(1, -3)]) end
  end
  local model_w
  if self.style == "static_extras" then
    self.TC = self.TC or ane.zeros({ c.dim, c.vocab }, "fp32")
    nn.transpose(self.TC, self.W[self.cls])
    model_w = setmetatable({ [self.cls .. "_t"] = self.TC }, { __index = self.W })
  end
  for l = 1, c.n_layers do
    self.SK[l] = {}
    for _, n in ipairs { "attnFwd", "ffnFwd" } do self.SK[l][n] = submit(l, n, wl[l]) end
  end
  if model_w then
    self.SK.model = {}
    for _, n in ipairs(stories.EXTRA_MODEL_KERNELS) do self.SK.model[n] = submit(nil, n, model_w) end
  end
  for l = c.n_layers, 1, -1 do
    for _, n in ipairs(names) do
      if n ~= "attnFwd" and n ~= "ffnFwd" then self.SK[l][n] = submit(l, n, wl[l]) end
    end
  end
  self.timing.cpu = self.timing.cpu + (ane.now() - t0) * 1e3
  self.dirty = false
end

function Model:_close_static()
  if not self.SK then return end
  for _, set in pairs(self.SK) do
    for _, f in pairs(set) do
      if type(f) == "userdata" then
        if f.cancel then
          if not f:cancel() then
            local ok, k = pcall(f.wait, f)
            if ok and k then k:close() end
          end
        elseif f.close and not f.closed then f:close() end
      end
    end
  end
  self.SK = nil
end

-- the kernel kname of layer l (static: wait for its compile the first time)
function Model:_k(kname, l)
  if self.K then return self.K[kname] end
  local set = l and self.SK[l] or self.SK.model
  local k = set[kname]
  if k.cancel then -- a future
    local t0 = ane.now()
    local kk = k:wait()
    self.timing.compile_wait = self.timing.compile_wait + (ane.now() - t0) * 1e3
    set[kname] = kk
    k = kk
  end
  return k
end

-- evaluate kernel kname of layer l on every sequence of the batch
function Model:_run(kname, l)
  local k = self:_k(kname, l)
  local t0 = ane.now()
  for b = 1, self.B do
    local ins, outs = self:_io(kname, l, b)
    k:eval(ins, outs)
  end
  local t1 = ane.now()
  self.timing.kernels = self.timing.kernels + (t1 - t0) * 1e3
end

-- ===================================================================
-- forward and backward
-- ===================================================================

local function as_int32(t, dst, what)
  if type(t) == "table" then
    if #t ~= dst:numel() then error(string.format("model: %s has %d entries, expected %d", what, #t, dst:numel()), 3) end
    for i = 1, #t do dst[i] = t[i] end
    return dst
  end
  if type(t) ~= "userdata" or t:dtype() ~= "int32" then error("model: " .. what .. " must be an int32 tensor or an array", 3) end
  if t:numel() ~= dst:numel() then error(string.format("model: %s has %d entries, expected %d", what, t:numel(), dst:numel()), 3) end
  dst:copy(t)
  return dst
end

--- model:forward(tokens, targets) -> mean loss. tokens, targets: int32 [B*S] (B sequences of
-- cfg.seq positions) or Lua arrays of 0-based ids.
function Model:forward(tokens, targets)
  check_open(self)
  local c, S = self.cfg, self.cfg.seq
  local n = type(tokens) == "table" and #tokens or (type(tokens) == "userdata" and tokens:numel() or 0)
  if n < S or n % S ~= 0 then
    error(string.format("model:forward: %d tokens is not a whole number of sequences of %d", n, S), 2)
  end
  local B = n // S
  self:_alloc(B)
  local tok = as_int32(tokens, self.tok, "tokens")
  local tgt = as_int32(targets, self.tgt, "targets")
  if self.style == "dynamic" then self:_dynamic_kernels() else self:_static_kernels() end
  local tm = self.timing
  local t0 = ane.now()
  nn.embed(self.acts[1].x, self.W.embed, tok, S)
  tm.cpu = tm.cpu + (ane.now() - t0) * 1e3
  for l = 1, c.n_layers do
    self:_run("attnFwd", l)
    self:_run("ffnFwd", l)
  end
  local s, N = self.s, B * S
  local loss
  if self.style == "static_extras" then
    self:_run("finalRms")
    self:_run("classifierFwd")
    self:_run("softmaxVocab")
    local t1 = ane.now()
    loss = nn.xent_probs(s.probsC, tgt, S, 1 / N)
    tm.cpu = tm.cpu + (ane.now() - t1) * 1e3
  else
    local t1 = ane.now()
    nn.rmsnorm(s.xf, s.xL, self.W.rms_final, S, c.norm_eps)
    local Wc, V, t = self.W[self.cls], c.vocab, tgt
    if self.av then -- the active rows of the classifier, the targets renumbered
      nn.gather_rows(self.av.W, Wc, self.av.ids)
      nn.remap(self.tgt_a, tgt, self.av.map, false)
      Wc, V, t = self.av.W, self.av.n, self.tgt_a
    end
    local lg = s.logits:reshape { B, S, V }
    for b = 1, B do nn.gemm(lg[b], s.xf[b], Wc, true, true) end -- logitsᵀ[S, V] = xfᵀ·Wclsᵀ
    loss = nn.xent(s.logits, t, 1 / N)
    tm.cpu = tm.cpu + (ane.now() - t1) * 1e3
  end
  self.forwarded = true
  return loss / N
end

-- dW += Σ_b dY_b · X_bᵀ for [B, OC, S] dY and [B, IC, S] X; on the GEMM queue when
-- overlapping (returns its ticket: wait for it before writing dY or X)
function Model:_dW(G, dy, x, B, ta, tb, alpha)
  if tb == nil then tb = true end
  if self.gq then return self.gq:gemm(G, dy, x, ta or false, tb, alpha or 1, 1, B) end
  nn.gemm(G, dy, x, ta or false, tb, alpha or 1, 1, B)
  return 0
end

function Model:_wait(ticket)
  if self.gq and ticket ~= 0 then
    local t0 = ane.now()
    self.gq:wait(ticket)
    self.timing.cpu = self.timing.cpu + (ane.now() - t0) * 1e3
  end
end

--- model:backward(loss_scale = 1): accumulate every gradient of the last forward's loss, times
-- loss_scale, into the grads (call zero_grad first for a fresh step).
function Model:backward(loss_scale)
  check_open(self)
  if not self.forwarded then error("model:backward: call forward first", 2) end
  local ls = loss_scale or 1
  local c, S, B = self.cfg, self.cfg.seq, self.B
  local s, tm = self.s, self.timing
  local Wc, Gc = self.W[self.cls], self.G[self.cls]
  if self.overlap and not self.gq then self.gq = nn.gemm_queue() end
  local t0 = ane.now()
  -- classifier and final RMSNorm
  if self.style == "static_extras" then
    if ls ~= 1 then s.probsC:scale(ls) end
    self:_dW(Gc, s.probsC, s.xf, B)
    tm.cpu = tm.cpu + (ane.now() - t0) * 1e3
    self:_run("classifierBwd")
    t0 = ane.now()
  else
    local V = self.av and self.av.n or c.vocab
    if self.av then Wc = self.av.W end
    local lg = s.logits:reshape { B, S, V }
    for b = 1, B do nn.gemm(s.dxf[b], Wc, lg[b], true, true, ls, 0) end -- dxf = Wclsᵀ·dlogitsᵀ
    if self.av then
      nn.gemm(self.av.G, lg, s.xf, true, true, ls, 0, B)
      nn.scatter_add_rows(Gc, self.av.G, self.av.ids)
    else
      self:_dW(Gc, lg, s.xf, B, true, true, ls)                              -- dW += dlᵀ·xfᵀ
    end
  end
  s.dy:fill(0)
  nn.rmsnorm_backward(s.dy, self.G.rms_final, s.dxf, s.xL, self.W.rms_final, S, c.norm_eps)
  tm.cpu = tm.cpu + (ane.now() - t0) * 1e3
  local extras = self.style == "static_extras"
  for l = c.n_layers, 1, -1 do
    local a, g, w = self.acts[l], self.glayers[l], self.layers[l]
    -- SwiGLU: y = x2 + W2·gate
    t0 = ane.now()
    local t_w2 = self:_dW(g.w2, s.dy, a.gate, B)
    tm.cpu = tm.cpu + (ane.now() - t0) * 1e3
    self:_run("ffnBwd", l)
    t0 = ane.now()
    self:_dW(g.w1, s.dh1, a.x2n, B)
    self:_dW(g.w3, s.dh3, a.x2n, B)
    if extras then
      nn.rmsnorm_backward(nil, g.rms_ffn, s.dxn, a.x2, w.rms_ffn, S, c.norm_eps)
      tm.cpu = tm.cpu + (ane.now() - t0) * 1e3
      self:_run("rmsFFNBwd", l)
      self:_wait(t_w2) -- dy is rewritten next
      t0 = ane.now()
      s.dy:add(s.tmp)
    else
      self:_wait(t_w2)
      nn.rmsnorm_backward(s.dy, g.rms_ffn, s.dxn, a.x2, w.rms_ffn, S, c.norm_eps) -- dy becomes dx2
    end
    -- attention: x2 = x + Wo·attn
    local t_wo = self:_dW(g.wo, s.dy, a.attn, B)
    tm.cpu = tm.cpu + (ane.now() - t0) * 1e3
    self:_run("sdpaBwd1", l) -- (dv and dq, dk of the layer above were waited for with t_w2)
    self:_run("sdpaBwd2", l)
    t0 = ane.now()
    self:_dW(g.wq, s.dq, a.xn, B)
    self:_dW(g.wk, s.dk, a.xn, B)
    self:_dW(g.wv, s.dv, a.xn, B)
    tm.cpu = tm.cpu + (ane.now() - t0) * 1e3
    self:_run("qkvBwd", l)
    if extras then
      t0 = ane.now()
      nn.rmsnorm_backward(nil, g.rms_att, s.dxn, a.x, w.rms_att, S, c.norm_eps)
      tm.cpu = tm.cpu + (ane.now() - t0) * 1e3
      self:_run("rmsAttBwd", l)
      self:_wait(t_wo) -- also dh1, dh3 (earlier tickets), which the next ffnBwd rewrites
      t0 = ane.now()
      s.dy:add(s.tmp)
    else
      self:_wait(t_wo)
      t0 = ane.now()
      nn.rmsnorm_backward(s.dy, g.rms_att, s.dxn, a.x, w.rms_att, S, c.norm_eps) -- dy becomes dx
    end
    tm.cpu = tm.cpu + (ane.now() - t0) * 1e3
  end
  self:_wait(-1) -- every gradient is complete (and the embedding grad may be the classifier's)
  t0 = ane.now()
  nn.embed_backward(self.G.embed, s.dy, self.tok, S)
  tm.cpu = tm.cpu + (ane.now() - t0) * 1e3
  self.forwarded = false
  self.dirty = true -- an optimizer step follows: static kernels recompile at the next forward
end

-- ===================================================================
-- checkpoints
-- ===================================================================

local function llama2c()
  local ok, m = pcall(function() return ane.llama2c end)
  if not ok or not m then error("model: ane.llama2c is not available in this build", 3) end
  return m
end

--- model:save(path): llama2.c .bin (atomic), through ane.llama2c.save.
function Model:save(path)
  check_open(self)
  local c = self.cfg
  local w = {}
  for k, t in pairs(self.W) do w[k] = t end
  w.wcls = self.W[self.cls]
  llama2c().save(path, { dim = c.dim, hidden = c.hidden, n_layers = c.n_layers, n_heads = c.n_heads,
    n_kv_heads = c.n_kv_heads, vocab = c.vocab, seq = c.seq, shared_classifier = c.shared_classifier }, w)
end

--- model.load(path, opts) -> Model with the checkpoint's config and weights (opts as for new;
-- opts.config overrides config fields such as seq, rope_theta).
function M.load(path, opts)
  opts = opts or {}
  local ck = llama2c().load(path)
  local cfg = {}
  for _, k in ipairs { "dim", "hidden", "n_layers", "n_heads", "n_kv_heads", "vocab", "seq", "shared_classifier" } do
    cfg[k] = ck.config[k]
  end
  local o = {}
  for k, v in pairs(opts) do if k ~= "config" then o[k] = v end end
  for k, v in pairs(opts.config or {}) do cfg[k] = v end
  o.init = false
  local m = M.new(cfg, o)
  for k, t in pairs(m.W) do
    local src = ck.weights[k]
    if not src then error("model.load: " .. path .. " has no '" .. k .. "'", 2) end
    t:copy(src)
  end
  return m
end
Model.load = M.load

--- model:close(): free kernels, buffers and parameters (idempotent; also __close / __gc).
function Model:close()
  if self.closed then return end
  self.closed = true
  self:_close_static()
  if self.K then for _, k in pairs(self.K) do k:close() end end
  if self.queue then self.queue:close() end
  if self.gq then self.gq:close() end
  self.gq, self.K, self.queue, self.acts, self.s, self.bind, self.T, self.TC = nil, nil, nil, nil, nil, nil, nil, nil
  self.W, self.G, self.layers, self.glayers, self.plist = {}, {}, {}, {}, {}
end
Model.__close = Model.close
Model.__gc = Model.close

M.Model = Model
return M
