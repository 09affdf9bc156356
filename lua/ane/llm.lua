--- ane.llm: transformer inference (llama2.c and Hugging Face Llama/Qwen2 checkpoints).
--
--   local llm = require "ane.llm"
--   local model <close> = llm.load("stories15M.bin", {tokenizer = "tokenizer.bin"})
--   for id, piece in model:generate("Once upon a time", {steps = 64, temperature = 0}) do
--     io.write(piece)
--   end
--   local logits = model:forward({1, 403, 2501})   -- fp32 [n, vocab], one row per position
--
-- How a token walks: prefill runs the whole prompt through batched kernels (S positions of a
-- layer in one eval; ane.llm.kernels), writing each layer's K/V straight into the cache tensors;
-- decode runs the same kernels at S = 1 against the cache. Kernels take the weights as inputs
-- (read in place, never copied per eval), so one set of weights serves every kernel shape, and
-- shapes are compiled lazily per bucket: S in powers of two, the attended length T in powers of
-- two (>= 16) up to the cache's rows, with a causal mask input (ane.nn.causal_mask) hiding the
-- rows not yet written. Sampling is C (ane.nn.sampler).
local ane = require "ane"
local K = require "ane.llm.kernels"

local M = {}
M.kernels = K

local Model = {}
Model.__index = Model
M.Model = Model

local function is_tensor(v)
  local mt = getmetatable(v)
  return type(mt) == "table" and mt.__name == "ane.Tensor"
end

local function pow2ceil(n)
  local p = 1
  while p < n do p = p * 2 end
  return p
end

local function pow2floor(n)
  local p = 1
  while p * 2 <= n do p = p * 2 end
  return p
end

local LOAD_KEYS = { backend = true, precision = true, max_seq = true, tokenizer = true, threads = true,
  max_chunk = true }

local function checkopts(opts, known, what)
  opts = opts or {}
  if type(opts) ~= "table" then error(what .. ": options must be a table", 3) end
  for k in pairs(opts) do
    if not known[k] then error(what .. ": unknown option '" .. tostring(k) .. "'", 3) end
  end
  return opts
end

local function shape_is(t, want)
  local s = t:shape()
  if #s ~= #want then return false end
  for i = 1, #s do if s[i] ~= want[i] then return false end end
  return true
end

-- Normalise a checkpoint's config (ane.llama2c / ane.hf) into what the kernels need.
local function normalise(c, w)
  local cfg = {}
  for _, k in ipairs { "dim", "hidden", "n_layers", "n_heads", "vocab", "seq" } do
    local v = c[k]
    if math.type(v) ~= "integer" or v < 1 then
      error(string.format("llm: config.%s must be a positive integer, got %s", k, tostring(v)), 3)
    end
    cfg[k] = v
  end
  cfg.n_kv_heads = c.n_kv_heads or c.n_heads
  if cfg.dim % cfg.n_heads ~= 0 then error("llm: dim does not split into n_heads", 3) end
  if cfg.n_heads % cfg.n_kv_heads ~= 0 then error("llm: n_heads is not a multiple of n_kv_heads", 3) end
  cfg.head_dim = cfg.dim // cfg.n_heads
  if cfg.head_dim % 2 ~= 0 then error("llm: RoPE needs an even head_dim", 3) end
  cfg.kv_dim = cfg.head_dim * cfg.n_kv_heads
  cfg.rope_theta = c.rope_theta or 10000.0
  cfg.norm_eps = c.norm_eps or 1e-5
  cfg.arch = c.arch or "llama2c"
  -- llama2.c rotates interleaved pairs, and ane.hf reorders Hugging Face q/k rows to match
  -- (config.rope = "interleaved"); "half" (pairs (i, i + hd/2)) is there for weights as HF stores them
  cfg.rope_style = c.rope_style or (type(c.rope) == "string" and c.rope) or "interleaved"
  if cfg.rope_style ~= "interleaved" and cfg.rope_style ~= "half" then
    error("llm: unknown RoPE style '" .. tostring(cfg.rope_style) .. "' (interleaved or half)", 3)
  end
  cfg.qkv_bias = w.bq ~= nil
  cfg.shared_classifier = c.shared_classifier
  cfg.bos_id = c.bos_id
  cfg.eos_id = c.eos_id
  local L, D, KV, H, V = cfg.n_layers, cfg.dim, cfg.kv_dim, cfg.hidden, cfg.vocab
  local want = {
    embed = { V, D }, rms_att = { L, D }, wq = { L, D, D }, wk = { L, KV, D }, wv = { L, KV, D },
    wo = { L, D, D }, rms_ffn = { L, D }, w1 = { L, H, D }, w2 = { L, D, H }, w3 = { L, H, D },
    rms_final = { D },
  }
  if cfg.qkv_bias then want.bq, want.bk, want.bv = { L, D }, { L, KV }, { L, KV } end
  for name, shape in pairs(want) do
    local t = w[name]
    if not is_tensor(t) then error("llm: weight '" .. name .. "' is missing", 3) end
    if not shape_is(t, shape) then
      error(string.format("llm: weight '%s' has shape [%s], expected [%s]", name,
        table.concat(t:shape(), ", "), table.concat(shape, ", ")), 3)
    end
  end
  local wc = w.wcls or w.embed
  if not shape_is(wc, { V, D }) then error("llm: weight 'wcls' must be [vocab, dim]", 3) end
  return cfg
end

-- Weights as the kernels read them: fp32; in fp16 mode copies rounded to fp16 (the ANE holds
-- fp16 weights), in fp32 mode the caller's tensors themselves (the checkpoint's map, no copy).
local function prepare_weights(w, fp16)
  local out = {}
  local function conv(t)
    if t:dtype() == "fp32" and not fp16 then return t end
    local r = ane.zeros(t:shape(), "fp32")
    local s = t:shape()
    if #s >= 2 and s[1] > 1 then
      for i = 1, s[1] do -- a layer at a time: the fp16 staging copy stays small
        local row = t[i]
        r[i]:copy(fp16 and row:clone("fp16") or row)
        ane.nn.evict(row) -- a mapped checkpoint's pages leave RSS once copied
      end
    else
      r:copy(fp16 and t:clone("fp16") or t)
      ane.nn.evict(t)
    end
    return r
  end
  local done = {}
  for name, t in pairs(w) do
    if is_tensor(t) then
      out[name] = done[t] or conv(t)
      done[t] = out[name]
    end
  end
  out.wcls = out.wcls or out.embed
  return out
end

--- llm.new(config, weights, opts) -> Model over weight tensors you hold (the names and shapes of
-- ane.llama2c.load; biases bq/bk/bv optional). opts as llm.load.
function M.new(config, weights, opts)
  opts = checkopts(opts, LOAD_KEYS, "llm.new")
  if type(config) ~= "table" or type(weights) ~= "table" then
    error("llm.new: expected (config, weights) tables", 2)
  end
  local cfg = normalise(config, weights)
  local prec = opts.precision or "fp16"
  if prec ~= "fp16" and prec ~= "fp32" then error("llm: precision must be 'fp16' or 'fp32'", 2) end
  cfg.fp16 = prec == "fp16"
  local max_seq = opts.max_seq or math.min(cfg.seq, 2048)
  if math.type(max_seq) ~= "integer" or max_seq < 1 then error("llm: max_seq must be a positive integer", 2) end
  local self = setmetatable({
    config = cfg, precision = prec, backend = opts.backend, threads = opts.threads,
    max_seq = max_seq, pos = 0, kernels = {}, bufs = {},
    max_chunk = opts.max_chunk or 256,
    stats = { prefill_tokens = 0, prefill_s = 0, decode_tokens = 0, decode_s = 0, compile_s = 0 },
  }, Model)
  self.rows = pow2ceil(max_seq) -- cache rows: every bucket of T fits
  self.w = prepare_weights(weights, cfg.fp16)
  local L, KV, hd = cfg.n_layers, cfg.kv_dim, cfg.head_dim
  self.kc = ane.zeros({ L, self.rows, KV }, "fp32")
  self.vc = ane.zeros({ L, self.rows, KV }, "fp32")
  -- RoPE tables [rows, hd/2]: theta_i = pos / base^(2i/hd)
  local h = hd // 2
  local cs, sn = {}, {}
  for p = 0, self.rows - 1 do
    for i = 0, h - 1 do
      local a = p / cfg.rope_theta ^ (2 * i / hd)
      cs[#cs + 1] = math.cos(a)
      sn[#sn + 1] = math.sin(a)
    end
  end
  local dt = cfg.fp16 and "fp16" or "fp32"
  self.cos = ane.from_table(cs, dt, { self.rows, h }):clone("fp32")
  self.sin = ane.from_table(sn, dt, { self.rows, h }):clone("fp32")
  -- per-layer views, made once
  self.lw = {}
  for l = 1, L do
    local w = self.w
    self.lw[l] = {
      rms_att = w.rms_att[l], wq = w.wq[l], wk = w.wk[l], wv = w.wv[l],
      bq = w.bq and w.bq[l], bk = w.bk and w.bk[l], bv = w.bv and w.bv[l],
      wo = w.wo[l], rms_ffn = w.rms_ffn[l], w1 = w.w1[l], w2 = w.w2[l], w3 = w.w3[l],
      kc = self.kc[l], vc = self.vc[l],
    }
  end
  return self
end

--- llm.load(path_or_dir, opts) -> Model. path: a llama2.c .bin (ane.llama2c) or a Hugging Face
-- model directory (ane.hf). opts: backend, precision ("fp16" default | "fp32"), max_seq (cache
-- length, default min(config seq, 2048)), tokenizer (a path; default: tokenizer.bin next to a
-- .bin, the directory itself for HF), threads.
function M.load(path, opts)
  opts = checkopts(opts, LOAD_KEYS, "llm.load")
  if type(path) ~= "string" then error("llm.load: expected a path", 2) end
  local ckpt, tokpath
  local isdir = false
  local ok_lfs, lfs = pcall(require, "lfs")
  if ok_lfs then isdir = lfs.attributes(path, "mode") == "directory" end
  if isdir then
    if not ane.hf then error("llm.load: this build has no Hugging Face reader (ane.hf)", 2) end
    -- fp16 numerics: read the weights as fp16 (half the memory while they are rounded and copied)
    ckpt = ane.hf.load(path, { dtype = (opts.precision or "fp16") == "fp16" and "fp16" or "fp32" })
    tokpath = opts.tokenizer
    for _, name in ipairs { "tokenizer.json", "tokenizer.bin" } do
      local f = not tokpath and io.open(path .. "/" .. name, "rb")
      if f then
        f:close()
        tokpath = path
      end
    end
  else
    if not ane.llama2c then error("llm.load: this build has no llama2.c reader (ane.llama2c)", 2) end
    ckpt = ane.llama2c.load(path)
    tokpath = opts.tokenizer
    if not tokpath then
      local dir = path:match("^(.*)/[^/]*$") or "."
      local f = io.open(dir .. "/tokenizer.bin", "rb")
      if f then
        f:close()
        tokpath = dir .. "/tokenizer.bin"
      end
    end
  end
  local o = {}
  for k, v in pairs(opts) do if k ~= "tokenizer" then o[k] = v end end
  local model = M.new(ckpt.config, ckpt.weights, o)
  model.checkpoint = model.precision == "fp32" and ckpt or nil -- fp32 kernels read its map
  ckpt = nil
  collectgarbage("collect") -- fp16: the map / HF tensors go once their rounded copies exist
  if tokpath and ane.tokenizer then
    model.tokenizer = ane.tokenizer.load(tokpath, { vocab_size = model.config.vocab })
    if model.tokenizer.vocab_size > model.config.vocab then
      error(string.format("llm.load: the tokenizer has %d tokens, the model %d", model.tokenizer.vocab_size,
        model.config.vocab), 2)
    end
  end
  return model
end

-- ===================================================================
-- kernels and buffers
-- ===================================================================

function Model:_kernel(key, build)
  local k = self.kernels[key]
  if k then return k end
  local t0 = ane.now()
  k = ane.compile(build(), { precision = K.precision(self.config), backend = self.backend, threads = self.threads })
  k:load()
  self.stats.compile_s = self.stats.compile_s + (ane.now() - t0)
  self.kernels[key] = k
  return k
end

function Model:_buf(S)
  local b = self.bufs[S]
  if b then return b end
  local c = self.config
  local h = c.head_dim // 2
  b = {
    x = ane.zeros({ S, c.dim }, "fp32"), y = ane.zeros({ S, c.dim }, "fp32"),
    q = ane.zeros({ S, c.dim }, "fp32"), k = ane.zeros({ S, c.kv_dim }, "fp32"),
    v = ane.zeros({ S, c.kv_dim }, "fp32"), cos = ane.zeros({ S, h }, "fp32"),
    sin = ane.zeros({ S, h }, "fp32"), logits = ane.zeros({ S, c.vocab }, "fp32"),
    tabs = {},
  }
  self.bufs[S] = b
  return b
end

local function tbucket(n, rows)
  local t = 16
  while t < n do t = t * 2 end
  return t < rows and t or rows
end

-- The eval argument tables of every layer for chunk size S attending over T rows, built once:
-- a decode step then creates no tensors or tables.
function Model:_tables(b, S, T)
  local t = b.tabs[T]
  if t then return t end
  local c = self.config
  t = { mask = ane.zeros({ S, T }, "fp32") }
  for l = 1, c.n_layers do
    local lw = self.lw[l]
    local x, y = b.x, b.y
    if l % 2 == 0 then x, y = y, x end
    lw.kT = lw.kT or {}
    lw.vT = lw.vT or {}
    lw.kT[T] = lw.kT[T] or lw.kc:sub(1, T)
    lw.vT[T] = lw.vT[T] or lw.vc:sub(1, T)
    local qin
    if c.qkv_bias then
      qin = { x, lw.rms_att, lw.wq, lw.wk, lw.wv, lw.bq, lw.bk, lw.bv, b.cos, b.sin }
    else
      qin = { x, lw.rms_att, lw.wq, lw.wk, lw.wv, b.cos, b.sin }
    end
    t[l] = {
      qin = qin, qout = { b.q, b.k, b.v },
      ain = { x, b.q, lw.kT[T], lw.vT[T], t.mask, lw.wo, lw.rms_ffn, lw.w1, lw.w2, lw.w3 }, aout = { y },
    }
  end
  t.out = c.n_layers % 2 == 0 and b.x or b.y
  b.tabs[T] = t
  return t
end

-- Run n = #ids tokens at positions self.pos.. through the layers (one chunk, S a power of two
-- with pos + S <= rows); returns the buffer, S and the tensor [S, D] holding the final hidden
-- states in rows 1..n.
function Model:_chunk(ids, first, n)
  if self.closed then error("llm: model is closed", 3) end
  local c = self.config
  local S = pow2ceil(n)
  local pos = self.pos
  local b = self:_buf(S)
  local embed = self.w.embed
  local copy_rows = ane.nn.copy_rows
  for i = 1, n do
    local id = ids[first + i - 1]
    if math.type(id) ~= "integer" or id < 0 or id >= c.vocab then
      error(string.format("llm: token id %s out of range [0, %d)", tostring(id), c.vocab), 3)
    end
    copy_rows(b.x, i - 1, embed, id)
  end
  local T = tbucket(pos + n, self.rows) -- padded rows past it see every column: harmless
  local kq = self.kernels["qkv:" .. S] or self:_kernel("qkv:" .. S, function() return K.qkv(c, S) end)
  local akey = "attn:" .. S .. ":" .. T
  local ka = self.kernels[akey] or self:_kernel(akey, function() return K.attn_ffn(c, S, T) end)
  local tabs = self:_tables(b, S, T)
  ane.nn.causal_mask(tabs.mask, pos)
  copy_rows(b.cos, 0, self.cos, pos, S)
  copy_rows(b.sin, 0, self.sin, pos, S)
  local lws = self.lw
  for l = 1, c.n_layers do
    local t, lw = tabs[l], lws[l]
    kq:eval(t.qin, t.qout)
    copy_rows(lw.kc, pos, b.k, 0, n) -- only the real rows: padding never reaches the cache
    copy_rows(lw.vc, pos, b.v, 0, n)
    ka:eval(t.ain, t.aout)
  end
  self.pos = pos + n
  return b, S, tabs.out
end

-- Feed ids (array of 0-based ids) at the current position in chunks; returns the buffer and row
-- of the last one's hidden state. With all_logits, also the logits of every position.
function Model:_feed(ids, all_logits)
  local n = #ids
  if n == 0 then error("llm: no tokens to feed", 3) end
  if self.pos + n > self.max_seq then
    error(string.format("llm: %d tokens at position %d exceed max_seq %d", n, self.pos, self.max_seq), 3)
  end
  local out = all_logits and ane.zeros({ n, self.config.vocab }, "fp32") or nil
  local done = 0
  local b, S, take, hid
  while done < n do
    local room = pow2floor(self.rows - self.pos)
    take = math.min(n - done, self.max_chunk, room)
    take = math.min(take, pow2floor(math.min(self.max_chunk, room)))
    b, S, hid = self:_chunk(ids, done + 1, take)
    if out then
      local kh = self:_kernel("head:" .. S, function() return K.head(self.config, S) end)
      kh:eval({ hid, self.w.rms_final, self.w.wcls }, { b.logits })
      ane.nn.copy_rows(out, done, b.logits, 0, take)
    end
    done = done + take
  end
  return hid, take, out
end

-- Logits [1, V] of row r of hidden states hid (the last position fed).
function Model:_last_logits(hid, r)
  local kh = self.kernels["head:1"] or self:_kernel("head:1", function() return K.head(self.config, 1) end)
  local one = self:_buf(1)
  if not one.last then one.last = ane.zeros({ 1, self.config.dim }, "fp32") end
  local x = one.last
  ane.nn.copy_rows(x, 0, hid, r - 1)
  one.headin = one.headin or { x, self.w.rms_final, self.w.wcls }
  one.headout = one.headout or { one.logits }
  kh:eval(one.headin, one.headout)
  return one.logits
end

--- model:reset(): forget the context (the cache is overwritten from position 0).
function Model:reset() self.pos = 0 end

--- model:forward(tokens) -> fp32 logits [n, vocab] for tokens (0-based ids) from position 0.
function Model:forward(tokens)
  if type(tokens) ~= "table" then error("forward: expected an array of token ids", 2) end
  self.pos = 0
  local _, _, out = self:_feed(tokens, true)
  return out
end

--- model:step(ids) -> fp32 logits [1, vocab] after feeding ids (0-based) at the current position:
-- a prefill when #ids > 1, one decode step when #ids == 1. The logits tensor is reused by the
-- next call (copy it to keep it).
function Model:step(ids)
  if type(ids) == "number" then ids = { ids } end
  local b, r = self:_feed(ids, false)
  return self:_last_logits(b, r)
end

-- ===================================================================
-- generation
-- ===================================================================

local GEN_KEYS = { steps = true, max_tokens = true, temperature = true, topk = true, topp = true,
  seed = true, repetition_penalty = true, stop = true, eos = true, bos = true, continue = true,
  sampler = true }

-- Length of the longest incomplete UTF-8 sequence at the end of s (bytes to hold back).
local function utf8_tail(s)
  local n = #s
  for back = 1, math.min(3, n) do
    local c = s:byte(n - back + 1)
    if c >= 0xC0 then -- a lead byte: complete if it has enough continuation bytes after it
      local need = c >= 0xF0 and 4 or c >= 0xE0 and 3 or 2
      return back < need and back or 0
    elseif c < 0x80 then
      return 0
    end
  end
  return 0
end

--- model:generate(prompt, opts) -> iterator of (id, text piece).
-- prompt: a string (encoded with model.tokenizer, BOS first) or an array of 0-based ids.
-- opts: max_tokens (new tokens; default until the context is full), steps (run.c's meaning:
-- total positions including the prompt), temperature (default 1; 0 = greedy), topk, topp,
-- repetition_penalty, seed, stop (a string or an array of strings: generation ends before it),
-- eos (default true: stop at the tokenizer's EOS, and at BOS as run.c does), continue (keep the
-- cache and append the prompt after it). Pieces are whole UTF-8 characters: bytes of a
-- character split over byte tokens are held until it is complete. The prompt's tokens are not
-- yielded. After the loop, model.stats holds prefill/decode token counts and seconds.
function Model:generate(prompt, opts)
  opts = checkopts(opts, GEN_KEYS, "generate")
  local c = self.config
  local tok = self.tokenizer
  local ids
  if type(prompt) == "string" then
    if not tok then error("generate: a text prompt needs a tokenizer (model.tokenizer)", 2) end
    local bos = opts.bos
    if bos == nil then bos = tok.add_bos ~= false end
    ids = tok:encode(prompt, { bos = bos, eos = false })
  elseif type(prompt) == "table" then
    ids = prompt
  else
    error("generate: prompt must be a string or an array of token ids", 2)
  end
  if #ids == 0 then error("generate: empty prompt (no tokens)", 2) end
  if not opts.continue then self.pos = 0 end
  -- the last sampled token is never fed, hence + 1 (run.c: steps positions, each printing one piece)
  local limit = self.max_seq - self.pos - #ids + 1
  if opts.steps then limit = math.min(limit, opts.steps - #ids + 1) end
  if opts.max_tokens then limit = math.min(limit, opts.max_tokens) end
  if limit < 0 then error("generate: the prompt does not fit in max_seq", 2) end
  local sampler = opts.sampler or ane.nn.sampler {
    vocab = c.vocab, temperature = opts.temperature or 1.0, topk = opts.topk, topp = opts.topp,
    repetition_penalty = opts.repetition_penalty, seed = opts.seed,
  }
  if opts.repetition_penalty and opts.repetition_penalty ~= 1 then
    for _, id in ipairs(ids) do sampler:accept(id) end
  end
  local stops = opts.stop
  if type(stops) == "string" then stops = { stops } end
  stops = stops or {}
  local maxstop = 0
  for _, s in ipairs(stops) do maxstop = math.max(maxstop, #s) end
  local eos_on = opts.eos ~= false
  -- run.c stops a llama2.c model at BOS (it delimits sequences) and prints EOS; HF models stop at EOS
  local stop_id = {}
  if c.arch == "llama2c" then
    stop_id[tok and tok.bos_id or c.bos_id or 1] = true
  else
    stop_id[tok and tok.eos_id or c.eos_id or 2] = true
  end
  local st = self.stats
  local clock = ane.now
  local t0 = clock()
  local b, r = self:_feed(ids, false)
  local logits = self:_last_logits(b, r)
  st.prefill_tokens, st.prefill_s = #ids, clock() - t0
  st.decode_tokens, st.decode_s = 0, 0
  local prev = ids[#ids]
  local count, done = 0, false
  local pending = "" -- text held back (incomplete UTF-8, a possible stop-string prefix)
  local queue = {}   -- (id, text) ready to hand out
  local function emit_text(id, final)
    -- returns the text that may be released now
    if maxstop > 0 then
      for _, s in ipairs(stops) do
        local at = pending:find(s, 1, true)
        if at then
          local out = pending:sub(1, at - 1)
          pending = ""
          done = true
          return out
        end
      end
    end
    if final then
      local out = pending
      pending = ""
      return out
    end
    local keep = utf8_tail(pending)
    if maxstop > 1 then keep = math.max(keep, math.min(#pending, maxstop - 1)) end
    local out = pending:sub(1, #pending - keep)
    pending = pending:sub(#pending - keep + 1)
    return out
  end
  return function()
    if #queue > 0 then return table.unpack(table.remove(queue, 1)) end
    while not done do
      if count >= limit then
        done = true
        break
      end
      if count > 0 then
        local t1 = clock()
        logits = self:step({ prev })
        st.decode_s = st.decode_s + (clock() - t1)
        st.decode_tokens = st.decode_tokens + 1
      end
      local id = sampler:sample(logits)
      if eos_on and stop_id[id] then
        done = true
        break
      end
      sampler:accept(id)
      count = count + 1
      local piece = tok and tok:decode(prev, id) or ""
      prev = id
      pending = pending .. piece
      local out = emit_text(id, false)
      if done then
        if #out > 0 then return id, out end
        break
      end
      return id, out
    end
    if #pending > 0 then
      local out = emit_text(nil, true)
      if #out > 0 then return prev, out end
    end
    return nil
  end
end

--- model:close(): frees kernels, cache and the weights it owns (also __close / __gc).
function Model:close()
  if self.closed then return end
  self.closed = true
  for _, k in pairs(self.kernels) do pcall(k.close, k) end
  self.kernels = {}
  self.bufs, self.lw, self.w = {}, {}, {}
  self.kc, self.vc, self.checkpoint = nil, nil, nil
end
Model.__close = Model.close
Model.__gc = Model.close

return M
