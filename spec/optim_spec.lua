-- ane.optim: AdamW, clipping and loss scaling against their textbook formulas (plain Lua, double).
local ane = require "ane"
local optim = require "ane.optim"

-- A model-shaped object: params() in a fixed order, fp32 tensors.
local function fake_model(values, grads, decay)
  local ps = {}
  for i, vals in ipairs(values) do
    ps[i] = {
      name = "p" .. i, decay = decay and decay[i] or false,
      param = ane.from_table(vals, "fp32"), grad = ane.from_table(grads[i], "fp32"),
    }
  end
  return { params = function() return ps end, ps = ps }
end

local function tolist(t)
  local r = {}
  for i = 1, t:numel() do r[i] = t:get(i) end
  return r
end

-- Textbook AdamW (Loshchilov & Hutter, with Adam's bias correction), one tensor, in double.
local function ref_adamw(p, g, m, v, t, o)
  local out = {}
  for i = 1, #p do
    m[i] = o.beta1 * m[i] + (1 - o.beta1) * g[i]
    v[i] = o.beta2 * v[i] + (1 - o.beta2) * g[i] * g[i]
    local mh, vh = m[i] / (1 - o.beta1 ^ t), v[i] / (1 - o.beta2 ^ t)
    out[i] = p[i] - o.lr * (mh / (math.sqrt(vh) + o.eps) + o.wd * p[i])
  end
  return out
end

local function close(a, b, rel)
  assert.are.equal(#a, #b)
  for i = 1, #a do
    local tol = rel * math.max(1, math.abs(b[i]))
    if math.abs(a[i] - b[i]) > tol then
      error(string.format("element %d: %.9g vs reference %.9g", i, a[i], b[i]), 2)
    end
  end
end

describe("ane.optim.adamw", function()
  it("matches the textbook update over several steps, with and without weight decay", function()
    local rng = ane.rng(7)
    local p1, p2, g1, g2 = {}, {}, {}, {}
    for i = 1, 37 do p1[i] = rng:normal(); g1[i] = rng:normal() * 0.1 end
    for i = 1, 5 do p2[i] = rng:normal(); g2[i] = rng:normal() end
    local model = fake_model({ p1, p2 }, { g1, g2 }, { true, false })
    local o = { lr = 1e-2, beta1 = 0.9, beta2 = 0.99, eps = 1e-8, wd = 0.1 }
    local opt = optim.adamw { lr = o.lr, beta1 = o.beta1, beta2 = o.beta2, eps = o.eps,
                              weight_decay = o.wd, clip = 0 }
    local rp = { tolist(model.ps[1].param), tolist(model.ps[2].param) }
    local rm, rv = { {}, {} }, { {}, {} }
    for k = 1, 2 do for i = 1, #rp[k] do rm[k][i], rv[k][i] = 0, 0 end end
    for t = 1, 5 do
      local lr = o.lr * t / 5
      opt:step(model, { lr = lr })
      for k = 1, 2 do
        local g = tolist(model.ps[k].grad)
        rp[k] = ref_adamw(rp[k], g, rm[k], rv[k], t,
          { lr = lr, beta1 = o.beta1, beta2 = o.beta2, eps = o.eps, wd = k == 1 and o.wd or 0 })
        close(tolist(model.ps[k].param), rp[k], 2e-6)
      end
    end
    assert.are.equal(5, opt.t)
  end)

  it("clips to the global norm over all parameters", function()
    local model = fake_model({ { 1, 2 }, { 3 } }, { { 3, 0 }, { 4 } }) -- global norm 5
    local opt = optim.adamw { lr = 0.1, clip = 1, weight_decay = 0, beta1 = 0.5, beta2 = 0.5, eps = 0 }
    local r = opt:step(model)
    assert.is_true(r.clipped)
    assert.is_true(math.abs(r.grad_norm - 5) < 1e-9)
    -- after clipping g = (0.6, 0, 0.8); the first Adam step moves each by lr * sign(g)
    close(tolist(model.ps[1].param), { 0.9, 2 }, 1e-6)
    close(tolist(model.ps[2].param), { 2.9 }, 1e-6)
    -- the moments hold the clipped gradient: m = (1 - beta1) g
    local st = opt:state()
    close(tolist(st.moments[1].m), { 0.5 * 0.6, 0 }, 1e-6)
    close(tolist(st.moments[2].v), { 0.5 * 0.64 }, 1e-6)
  end)

  it("divides the loss scale out before clipping and moments", function()
    local model = fake_model({ { 0, 0 } }, { { 3 * 1024, 4 * 1024 } })
    local opt = optim.adamw { lr = 0.1, clip = 0, weight_decay = 0, beta1 = 0.5, beta2 = 0.5,
                              loss_scale = 1024 }
    local r = opt:step(model)
    assert.is_true(math.abs(r.grad_norm - 5) < 1e-9)
    close(tolist(opt:state().moments[1].m), { 1.5, 2 }, 1e-6)
  end)

  it("dynamic loss scaling: skips a non-finite step, halves, doubles after a clean window", function()
    local model = fake_model({ { 1, 1 } }, { { 1 / 0, 1 } })
    local opt = optim.adamw { lr = 0.1, loss_scale = "dynamic", init_scale = 256, scale_window = 3 }
    local r = opt:step(model)
    assert.is_true(r.skipped)
    assert.are.equal(128, opt.loss_scale)
    assert.same({ 1, 1 }, tolist(model.ps[1].param))
    assert.are.equal(0, opt.t)
    model.ps[1].grad:set(1, 0 / 0)
    assert.is_true(opt:step(model).skipped)
    assert.are.equal(64, opt.loss_scale)
    model.ps[1].grad:set(1, 1)
    for _ = 1, 2 do assert.is_false(opt:step(model).skipped) end
    assert.are.equal(64, opt.loss_scale)
    opt:step(model)
    assert.are.equal(128, opt.loss_scale)
    assert.are.equal(3, opt.t)
    assert.are.equal(2, opt.skipped)
  end)

  it("without dynamic scaling a non-finite gradient is an error naming the update", function()
    local model = fake_model({ { 1 } }, { { 0 / 0 } })
    local opt = optim.adamw {}
    assert.has_error(function() opt:step(model) end,
      "adamw: gradient is not finite (inf or NaN) at update 1")
  end)

  it("rejects unknown and bad options", function()
    assert.has_error(function() optim.adamw { learning_rate = 1 } end, "adamw: unknown option 'learning_rate'")
    assert.has_error(function() optim.adamw { lr = -1 } end, "adamw: lr must be a number >= 0, got -1")
    assert.has_error(function() optim.adamw { loss_scale = "auto" } end,
      'adamw: loss_scale must be a positive number or "dynamic", got auto')
  end)

  it("state round-trips into a fresh optimizer and continues identically", function()
    local g = { 0.3, -0.2, 0.1 }
    local a = fake_model({ { 1, 2, 3 } }, { g })
    local b = fake_model({ { 1, 2, 3 } }, { g })
    local oa = optim.adamw { lr = 0.01 }
    oa:step(a); oa:step(a)
    local ob = optim.adamw { lr = 0.01 }
    ob:step(b); ob:step(b)
    local st = ob:state()
    local oc = optim.adamw { lr = 0.01 }
    local c = fake_model({ tolist(b.ps[1].param) }, { g })
    oc:load_state({ t = st.t, loss_scale = st.loss_scale, moments = {
      { name = "p1", m = st.moments[1].m:clone(), v = st.moments[1].v:clone() } } }, c)
    oa:step(a); oc:step(c)
    assert.same(tolist(a.ps[1].param), tolist(c.ps[1].param))
  end)

  it("sumsq is the squared norm and is not finite exactly when an element is not", function()
    local t = ane.rand({ 40000 }, { dtype = "fp32", seed = 3, lo = -1, hi = 1 })
    local ref = 0
    for i = 1, t:numel() do ref = ref + t:get(i) ^ 2 end
    assert.is_true(math.abs(ane.nn.sumsq(t) - ref) < 1e-6 * ref)
    t:set(39999, 1e30) -- finite, but its square overflows fp32
    assert.is_true(ane.nn.sumsq(t) < math.huge)
    t:set(7, 1 / 0)
    assert.are.equal(math.huge, ane.nn.sumsq(t))
  end)
end)

describe("ane.optim.schedule", function()
  it("cosine with warm-up", function()
    local f = optim.schedule { kind = "cosine", lr = 1, warmup = 10, steps = 110, min_lr = 0.1 }
    assert.are.equal(0.1, f(1))
    assert.are.equal(1, f(10))
    assert.is_true(math.abs(f(60) - 0.55) < 1e-12)
    assert.are.equal(0.1, f(110))
    assert.are.equal(0.1, f(200))
  end)
  it("constant, optionally warmed up", function()
    local f = optim.schedule { kind = "constant", lr = 2, warmup = 4 }
    assert.are.equal(1, f(2))
    assert.are.equal(2, f(4))
    assert.are.equal(2, f(1000))
  end)
end)
