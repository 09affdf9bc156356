-- ane.model: a tiny llama-style model (GQA, untied classifier, batch 2) trained one step in each
-- of the three styles. The loss and every gradient match an independent plain-Lua reference in
-- double precision (spec/support/llama_train_ref.lua) and central finite differences; the styles agree
-- with each other (fp32 to 1e-5, fp16 within its tolerance); loss scaling, batches and errors.
local ane = require "ane"
local model = require "ane.model"
local stories = require "ane.stories"
local ref = require "support.llama_train_ref"

local TINY = { dim = 16, hidden = 32, n_layers = 2, n_heads = 4, n_kv_heads = 2, vocab = 24, seq = 8,
  shared_classifier = false }
local STYLES = { "dynamic", "static", "static_extras" }

local function batch(n, V, seed)
  local rng = ane.rng(seed)
  local tok, tgt = {}, {}
  for i = 1, n do
    tok[i] = math.floor(rng:uniform() * V)
    tgt[i] = math.floor(rng:uniform() * V)
  end
  return tok, tgt
end

local function flat(t)
  if type(t[1]) ~= "table" then return t end
  local out = {}
  for _, row in ipairs(t) do for _, v in ipairs(row) do out[#out + 1] = v end end
  return out
end

local function new(style, prec, cfg)
  return model.new(cfg or TINY, { style = style, precision = prec or "fp32", seed = 3, std = 0.3 })
end

describe("ane.model", function()
  local tok, tgt = batch(2 * TINY.seq, TINY.vocab, 1)

  it("has one parameter list in llama2.c order, with stacked storage and grads", function()
    local m <close> = new("dynamic")
    local ps = m:params()
    assert.equal(1 + 9 * 2 + 2, #ps)
    assert.same({ "embed", "layers.1.rms_att", "layers.1.wq", "layers.1.wk" },
      { ps[1].name, ps[2].name, ps[3].name, ps[4].name })
    assert.equal("wcls", ps[#ps].name)
    assert.same({ 8, 16 }, ps[4].param:shape()) -- wk [kv_dim, dim]
    assert.is_false(ps[2].decay)
    assert.is_true(ps[3].decay)
    for _, p in ipairs(ps) do assert.same(p.param:shape(), p.grad:shape()) end
    -- the same seed gives the same parameters
    local m2 <close> = new("static")
    assert.equal(ps[3].param:get(2, 3), m2:params()[3].param:get(2, 3))
  end)

  for _, style in ipairs(STYLES) do
    it(style .. ": one training step (loss, every gradient) matches the double-precision reference", function()
      local m <close> = new(style)
      local loss = m:forward(tok, tgt)
      m:zero_grad()
      m:backward()
      local W = {}
      for _, p in ipairs(m:params()) do W[p.name] = p.param:to_table() end
      local rl, G = ref.step(m.cfg, W, tok, tgt)
      assert.is_true(math.abs(loss - rl) <= 1e-5 * rl, string.format("loss %.9g vs reference %.9g", loss, rl))
      for _, p in ipairs(m:params()) do
        local g, r = p.grad:reshape { p.grad:numel() }, flat(G[p.name])
        local md, mx = 0, 0
        for i = 1, #r do
          md = math.max(md, math.abs(g[i] - r[i]))
          mx = math.max(mx, math.abs(r[i]))
        end
        assert.is_true(mx > 1e-3, p.name .. " has a non-trivial gradient")
        assert.is_true(md <= 1e-5 * mx + 1e-7, string.format("%s: |diff| %.3g of %.3g", p.name, md, mx))
      end
    end)
  end

  for _, style in ipairs(STYLES) do
    it(style .. ": every parameter's gradient agrees with central finite differences (fp32)", function()
      local m <close> = new(style)
      local t1, g1 = batch(TINY.seq, TINY.vocab, 5)
      m:forward(t1, g1)
      m:zero_grad()
      m:backward()
      local picks = style == "dynamic" and 3 or 1
      for pi, p in ipairs(m:params()) do
        local x, g = p.param:reshape { p.param:numel() }, p.grad:reshape { p.grad:numel() }
        for j = 1, picks do
          local i = 1 + (pi * 7 + j * 13) % p.param:numel()
          local v, h = x[i], 1e-2
          x[i] = v + h; m:weights_changed()
          local lp = m:forward(t1, g1)
          x[i] = v - h; m:weights_changed()
          local lm = m:forward(t1, g1)
          x[i] = v; m:weights_changed()
          local fd = (lp - lm) / (2 * h)
          assert.is_true(math.abs(fd - g[i]) <= 2e-2 * math.abs(fd) + 2e-4,
            string.format("%s[%d]: backward %.6g, finite difference %.6g", p.name, i, g[i], fd))
        end
      end
    end)
  end

  it("the three styles give the same losses and gradients: fp32 to 1e-5, fp16 within its tolerance", function()
    local res = {}
    for _, prec in ipairs { "fp32", "fp16" } do
      for _, style in ipairs(STYLES) do
        local m <close> = new(style, prec)
        local loss = m:forward(tok, tgt)
        m:zero_grad()
        m:backward()
        res[style .. prec] = { loss = loss, g = m:params()[3].grad:clone() }
      end
    end
    local base = res.dynamicfp32
    for _, style in ipairs(STYLES) do
      local r32, r16 = res[style .. "fp32"], res[style .. "fp16"]
      assert.is_true(math.abs(r32.loss - base.loss) <= 1e-5 * base.loss, style .. " fp32 loss")
      assert.is_true(math.abs(r16.loss - base.loss) <= 5e-3 * base.loss,
        string.format("%s fp16 loss %.6g vs %.6g", style, r16.loss, base.loss))
      local a, b = r16.g:reshape { r16.g:numel() }, base.g:reshape { base.g:numel() }
      local md, mx = 0, 0
      for i = 1, r16.g:numel() do
        md = math.max(md, math.abs(a[i] - b[i]))
        mx = math.max(mx, math.abs(b[i]))
      end
      assert.is_true(md <= 0.05 * mx, string.format("%s fp16 grad |diff| %.3g of %.3g", style, md, mx))
    end
  end)

  it("scales gradients by loss_scale; a batch of two is the mean of its sequences", function()
    local m <close> = new("dynamic")
    local l2 = m:forward(tok, tgt)
    m:zero_grad()
    m:backward(8)
    local g8 = m:params()[5].grad:get(2, 2)
    m:zero_grad()
    local S = TINY.seq
    local l_a = m:forward({ table.unpack(tok, 1, S) }, { table.unpack(tgt, 1, S) })
    local l_b = m:forward({ table.unpack(tok, S + 1, 2 * S) }, { table.unpack(tgt, S + 1, 2 * S) })
    assert.is_true(math.abs(l2 - (l_a + l_b) / 2) < 1e-6 * l2)
    m:forward(tok, tgt)
    m:zero_grad()
    m:backward(1)
    assert.is_true(math.abs(g8 - 8 * m:params()[5].grad:get(2, 2)) <= 1e-6 * math.abs(g8))
  end)

  it("active-vocab compaction: the full set changes nothing; a subset is a softmax over it alone", function()
    local m <close> = new("dynamic")
    local full = m:forward(tok, tgt)
    m:zero_grad()
    m:backward()
    local g_full = m:params()[3].grad:clone()
    local all = {}
    for v = 0, TINY.vocab - 1 do all[#all + 1] = TINY.vocab - 1 - v end
    m:set_active_vocab(all)
    assert.is_true(math.abs(m:forward(tok, tgt) - full) <= 1e-6 * full)
    m:zero_grad()
    m:backward()
    local a, b = g_full:reshape { g_full:numel() }, m:params()[3].grad:reshape { g_full:numel() }
    for i = 1, g_full:numel() do assert.is_true(math.abs(a[i] - b[i]) <= 1e-6) end
    -- the targets plus two more ids
    local ids, seen = { 0, 1 }, { [0] = true, [1] = true }
    for _, t in ipairs(tgt) do if not seen[t] then seen[t] = true; ids[#ids + 1] = t end end
    m:set_active_vocab(ids)
    local loss = m:forward(tok, tgt)
    assert.is_true(loss < full, "fewer classes, lower loss")
    m:zero_grad()
    m:backward()
    local wcls = m:params()[#m:params()]
    for v = 0, TINY.vocab - 1 do
      if not seen[v] then assert.equal(0, wcls.grad:get(v + 1, 1)) end
    end
    for _, p in ipairs { m:params()[3], wcls } do -- finite differences of the compacted loss
      local x, g = p.param:reshape { p.param:numel() }, p.grad:reshape { p.grad:numel() }
      local i = tgt[1] * TINY.dim + 2
      local v, h = x[i], 1e-2
      x[i] = v + h
      local lp = m:forward(tok, tgt)
      x[i] = v - h
      local lm = m:forward(tok, tgt)
      x[i] = v
      local fd = (lp - lm) / (2 * h)
      assert.is_true(math.abs(fd - g[i]) <= 2e-2 * math.abs(fd) + 2e-4, p.name .. ": " .. g[i] .. " vs " .. fd)
    end
    local bad = { table.unpack(tgt) }
    local missing
    for v = 0, TINY.vocab - 1 do if not seen[v] then missing = v; break end end
    bad[2] = missing
    local ok, e = pcall(m.forward, m, tok, bad)
    assert.is_false(ok)
    assert.matches("is not in the active vocabulary", e, 1, true)
    m:set_active_vocab(nil)
    assert.equal(full, m:forward(tok, tgt))
  end)

  it("overlapped weight-gradient GEMMs (a worker thread) give the same gradients", function()
    for _, style in ipairs { "dynamic", "static_extras" } do
      local a <close> = model.new(TINY, { style = style, precision = "fp32", seed = 3, std = 0.3, overlap = false })
      local b <close> = model.new(TINY, { style = style, precision = "fp32", seed = 3, std = 0.3, overlap = true })
      for _, m in ipairs { a, b } do
        m:forward(tok, tgt)
        m:zero_grad()
        m:backward(4)
      end
      for i, p in ipairs(a:params()) do
        local q = b:params()[i]
        local x, y = p.grad:reshape { p.grad:numel() }, q.grad:reshape { p.grad:numel() }
        for j = 1, p.grad:numel() do
          assert.is_true(math.abs(x[j] - y[j]) <= 1e-6 * (1 + math.abs(x[j])), style .. " " .. p.name)
        end
      end
    end
  end)

  it("takes int32 tensors as well as arrays", function()
    local m <close> = new("dynamic")
    local a = m:forward(tok, tgt)
    local b = m:forward(ane.from_table(tok, "int32"), ane.from_table(tgt, "int32"))
    assert.equal(a, b)
  end)

  it("refuses bad options, bad tokens and use after close, with clear messages", function()
    local function err(f, ...)
      local ok, e = pcall(f, ...)
      assert.is_false(ok)
      return e
    end
    assert.matches('style must be "static", "static_extras" or "dynamic", got fast',
      err(model.new, TINY, { style = "fast" }), 1, true)
    assert.matches("unknown option 'styel'", err(model.new, TINY, { styel = "static" }), 1, true)
    local m = new("dynamic")
    assert.matches("is not a whole number of sequences of 8", err(m.forward, m, { 1, 2, 3 }, { 1, 2, 3 }), 1, true)
    local bad = { table.unpack(tok) }
    bad[3] = 24
    assert.matches("token 24 at position 3 is outside the vocabulary [0, 24)", err(m.forward, m, bad, tgt), 1, true)
    assert.matches("call forward first", err(m.backward, m), 1, true)
    m:close()
    m:close() -- idempotent
    assert.matches("the model is closed", err(m.forward, m, tok, tgt), 1, true)
  end)

  it("saves and loads llama2.c checkpoints (when ane.llama2c is built)", function()
    if not ane.llama2c then
      pending("ane.llama2c is not in this build yet")
      return
    end
    local m <close> = new("dynamic", "fp32", { dim = 16, hidden = 32, n_layers = 2, n_heads = 4, n_kv_heads = 2,
      vocab = 24, seq = 8 })
    local path = os.tmpname()
    m:save(path)
    local m2 <close> = model.load(path, { style = "static", precision = "fp32" })
    assert.equal(m:forward(tok, tgt), m2:forward(tok, tgt))
    os.remove(path)
  end)
end)

describe("ane.stories parameter list", function()
  it("drives the shapes, with GQA and the untied classifier", function()
    local c = stories.config(TINY)
    assert.equal(8, c.kv_dim)
    local names = {}
    for _, p in ipairs(stories.params(c)) do names[#names + 1] = p.name .. "=" .. table.concat(p.shape, "x") end
    assert.equal("embed=24x16", names[1])
    assert.equal("layers.1.wk=8x16", names[4])
    assert.equal("wcls=24x16", names[#names])
    local shared = stories.params(stories.config { dim = 16, hidden = 32, n_layers = 1, n_heads = 4, vocab = 24, seq = 8 })
    assert.equal("rms_final", shared[#shared].name)
  end)
end)
