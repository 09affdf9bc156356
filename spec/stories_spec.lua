-- ane.stories: the kernel generators on a tiny config. Every kernel builds, prints, parses back to
-- the same program and checks, its inputs and outputs are what its layout says and what the
-- documentation lists (written out here independently); the one-program layer forward matches
-- the double-precision reference (spec/support/llama_train_ref.lua) and the NumPy script; static
-- (baked) and dynamic (weights as inputs) kernels compute the same thing. The gradients of the
-- whole model are checked in spec/model_spec.lua.
local ane = require "ane"
local H = require "helpers"
local stories = require "ane.stories"
local mil = require "ane.mil"
local ref = require "support.llama_train_ref"

local TINY = { dim = 64, hidden = 128, n_heads = 4, seq = 16, n_layers = 2, vocab = 96 }

local function shape_of(v) return table.concat(v, "x") end

-- The documented I/O of every kernel (activations [1, C, 1, S]; dynamic weights in their shape).
local function expected(c)
  local D, Hd, S, KV, V, SC = c.dim, c.hidden, c.seq, c.kv_dim, c.vocab, c.n_heads * c.seq
  local function a(C) return { 1, C, 1, S } end
  return {
    attnFwd = { { x = a(D) }, { rms_att = { D }, wq = { D, D }, wk = { KV, D }, wv = { KV, D }, wo = { D, D } },
      { xn = a(D), q = a(D), k = a(KV), v = a(KV), attn = a(D), x2 = a(D) } },
    ffnFwd = { { x2 = a(D) }, { rms_ffn = { D }, w1 = { Hd, D }, w3 = { Hd, D }, w2 = { D, Hd } },
      { x2n = a(D), h1 = a(Hd), h3 = a(Hd), gate = a(Hd), y = a(D) } },
    ffnBwd = { { dy = a(D), h1 = a(Hd), h3 = a(Hd) }, { w1 = { Hd, D }, w3 = { Hd, D }, w2 = { D, Hd } },
      { dh1 = a(Hd), dh3 = a(Hd), dxn = a(D) } },
    sdpaBwd1 = { { q = a(D), k = a(KV), v = a(KV), dx2 = a(D) }, { wo = { D, D } },
      { dv = a(KV), probs = a(SC), dp = a(SC) } },
    sdpaBwd2 = { { probs = a(SC), dp = a(SC), q = a(D), k = a(KV) }, {}, { dq = a(D), dk = a(KV) } },
    qkvBwd = { { dq = a(D), dk = a(KV), dv = a(KV) }, { wq = { D, D }, wk = { KV, D }, wv = { KV, D } }, { dxn = a(D) } },
    rmsAttBwd = { { dy = a(D), x = a(D) }, { rms_att = { D } }, { dx = a(D) } },
    rmsFFNBwd = { { dy = a(D), x = a(D) }, { rms_ffn = { D } }, { dx = a(D) } },
    finalRms = { { x = a(D) }, { rms_final = { D } }, { xf = a(D) } },
    classifierFwd = { { xf = a(D) }, { embed = { V, D } }, { logits = a(V) } },
    softmaxVocab = { { logits = a(V) }, {}, { probs = a(V) } },
    classifierBwd = { { dlogits = a(V) }, { embed = { V, D } }, { dxf = a(D) } },
  }
end

local function roundtrip(p)
  local text = p:text()
  local parsed = mil.parse(text, "<stories>")
  assert.equal(text, parsed:text()) -- canonical printing is a fixed point
  local checked = p:program() -- parse + blobs + check
  assert.is_true(checked:equal(parsed))
  return checked
end

-- the program's I/O against its layout and the expected table
local function check_io(name, prog, layout, want, static)
  local byname = {}
  for _, e in ipairs(prog:inputs()) do
    assert.equal("fp32", e.dtype, name)
    byname[e.name] = shape_of(e.shape)
  end
  local n = 0
  for k, s in pairs(want[1]) do
    n = n + 1
    assert.equal(shape_of(s), byname[k], name .. " input " .. k)
  end
  if not static then
    for k, s in pairs(want[2]) do
      n = n + 1
      assert.equal(shape_of(s), byname[k], name .. " weight input " .. k)
    end
  end
  assert.equal(n, #prog:inputs(), name .. ": number of inputs")
  assert.equal(n, #layout.input)
  for _, e in ipairs(layout.input) do assert.equal(byname[e[1]], shape_of(e[2])) end
  local outs = prog:outputs()
  local m = 0
  for k in pairs(want[3]) do m = m + 1 end
  assert.equal(m, #outs, name .. ": number of outputs")
  for i, e in ipairs(outs) do
    assert.equal("fp32", e.dtype)
    assert.equal(layout.output[i][1], e.name)
    assert.equal(shape_of(want[3][e.name]), shape_of(e.shape), name .. " output " .. e.name)
  end
end

describe("ane.stories config", function()
  it("defaults to Stories110M", function()
    local c = stories.config {}
    assert.same({ 768, 2048, 12, 12, 12, 64, 768, 32000, 256 },
      { c.dim, c.hidden, c.n_layers, c.n_heads, c.n_kv_heads, c.head_dim, c.kv_dim, c.vocab, c.seq })
    assert.is_true(c.rope)
    assert.is_true(c.shared_classifier)
  end)

  it("rejects bad configs with clear messages", function()
    local cases = {
      { { dim = 65, n_heads = 4 }, "stories.config: dim 65 does not split into 4 heads" },
      { { dim = 0 }, "stories.config: 'dim' must be a positive integer, got 0" },
      { { seq = 1.5 }, "stories.config: 'seq' must be a positive integer, got 1.5" },
      { { heads = 4 }, "stories.config: unknown field 'heads'" },
      { { dim = 12, n_heads = 4 }, "stories.config: RoPE needs an even head_dim, got 3" },
      { { norm_eps = 0 }, "stories.config: 'norm_eps' must be a positive number" },
      { { n_heads = 12, n_kv_heads = 5 }, "stories.config: 12 heads do not split into 5 kv heads" },
      { { shared_classifier = 1 }, "stories.config: 'shared_classifier' must be a boolean" },
    }
    for _, case in ipairs(cases) do
      local ok, err = pcall(stories.config, case[1])
      assert.is_false(ok)
      assert.matches(case[2], err, 1, true)
    end
    -- without RoPE an odd head_dim is fine; GQA gives kv_dim
    assert.equal(3, stories.config { dim = 12, n_heads = 4, rope = false }.head_dim)
    assert.equal(256, stories.config { n_kv_heads = 4 }.kv_dim)
  end)

  it("rejects missing and mis-shaped weights, naming the weight", function()
    local c = stories.config(TINY)
    local w = stories.init_weights(c, { seed = 1, layers = 1, embed = false }).layers[1]
    local bad = {}
    for k, v in pairs(w) do bad[k] = v end
    bad.wk = nil
    local ok, err = pcall(stories.layer_forward, c, bad)
    assert.is_false(ok)
    assert.matches("stories.layer_forward: weight 'wk' missing (an ane.Tensor)", err, 1, true)
    bad.wk = ane.zeros { c.dim, c.hidden }
    ok, err = pcall(stories.kernel, c, "attnFwd", { weights = bad })
    assert.is_false(ok)
    assert.matches("stories.attnFwd: weight 'wk' has shape [64, 128], expected [64, 64]", err, 1, true)
    ok, err = pcall(stories.kernel, c, "fwdAttn", {})
    assert.is_false(ok)
    assert.matches("stories.kernel: unknown kernel 'fwdAttn'", err, 1, true)
    ok, err = pcall(stories.model_kernels, c, { style = "fast" })
    assert.is_false(ok)
    assert.matches('style must be "static", "static_extras" or "dynamic"', err, 1, true)
  end)
end)

describe("ane.stories kernels (tiny config)", function()
  for _, cfgt in ipairs { TINY, { dim = 64, hidden = 128, n_heads = 4, n_kv_heads = 2, seq = 16, n_layers = 1, vocab = 96, shared_classifier = false } } do
    local c = stories.config(cfgt)
    local tag = c.n_kv_heads < c.n_heads and " (GQA, untied classifier)" or ""
    it("every kernel, static and dynamic, builds, round-trips, checks, with the documented I/O" .. tag, function()
      local want = expected(c)
      local cls = c.shared_classifier and "embed" or "wcls"
      for _, e in pairs(want) do
        if e[2].embed and cls == "wcls" then e[2].wcls, e[2].embed = e[2].embed, nil end
      end
      local list = stories.model_kernels(c, { style = "static_extras", seed = 7 })
      assert.equal(8 * c.n_layers + 4, #list)
      for _, e in ipairs(list) do
        local p, layout = e.build()
        check_io(e.name, roundtrip(p), layout, want[e.kernel], true)
      end
      local dyn = stories.model_kernels(c, { style = "dynamic" })
      assert.equal(6, #dyn)
      for _, n in ipairs { table.unpack(stories.LAYER_KERNELS), table.unpack(stories.EXTRA_LAYER_KERNELS) } do
        local p, layout = stories.kernel(c, n, {})
        check_io(n, roundtrip(p), layout, want[n], false)
      end
      for _, n in ipairs(stories.EXTRA_MODEL_KERNELS) do
        local p, layout = stories.kernel(c, n, { precision = "fp32" })
        check_io(n, roundtrip(p), layout, want[n], false)
      end
    end)
  end

  it("without RoPE the kernels carry no rotation (the research's stories_mil.h form)", function()
    local c = stories.config(TINY)
    local c0 = stories.config { dim = 64, hidden = 128, n_heads = 4, seq = 16, n_layers = 1, vocab = 96, rope = false }
    local w = stories.init_weights(c, { seed = 7, layers = 1, embed = false }).layers[1]
    local with = stories.kernel(c, "attnFwd", { weights = w }):text()
    local without = stories.kernel(c0, "attnFwd", { weights = w }):text()
    assert.truthy(with:find("rope_cos", 1, true))
    assert.falsy(without:find("rope_cos", 1, true))
    assert.falsy(without:find("slice_by_size", 1, true)) -- the pair rotation slices; nothing else does
  end)

  it("stories110M at full size builds the layer and the dynamic kernels (text only)", function()
    local big = stories.config {}
    local w = stories.init_weights(big, { seed = 1, layers = 1, embed = false }).layers[1]
    local prog = roundtrip(stories.layer_forward(big, w))
    assert.same({ 1, 768, 1, 256 }, prog:inputs()[1].shape)
    assert.same({ 1, 768, 1, 256 }, prog:outputs()[1].shape)
    local p2, layout = stories.kernel(big, "attnFwd", {})
    assert.equal(6, #roundtrip(p2):inputs())
    assert.same({ "wq", { 768, 768 } }, layout.input[3])
  end)
end)

-- ===================================================================
-- numerics (the CPU backend)
-- ===================================================================

local function max_abs_diff(t, rows, C, S)
  local md, mref = 0, 0
  local f = t:reshape { C, S }
  for c = 1, C do
    for s = 1, S do
      local d = math.abs(f:get(c, s) - rows[c][s])
      if d ~= d then return math.huge, mref end -- NaN
      if d > md then md = d end
      if math.abs(rows[c][s]) > mref then mref = math.abs(rows[c][s]) end
    end
  end
  return md, mref
end

local function run(p, ins, prec)
  local k = ane.compile(p, { precision = prec or "fp16" })
  k:load()
  return k:eval(ins)
end

describe("ane.stories numerics", function()
  it("ane.compile is available, so the numeric checks below run", function()
    assert.is_function(ane.compile)
  end)
  if not ane.compile then return end

  local c = stories.config(TINY)
  -- std 0.15 ≈ 1/√dim: unit-scale projections, so attention is far from uniform and RoPE,
  -- the mask and both branches all move the output
  local w = stories.init_weights(c, { seed = 11, layers = 1, embed = false, std = 0.15, rms_std = 0.15 }).layers[1]
  local D, S = c.dim, c.seq
  local x = ane.rand({ 1, D, 1, S }, { dist = "normal", seed = 5, dtype = "fp32" })

  it("the layer forward matches the double-precision reference: fp16 tolerance, and 1e-5 in fp32", function()
    local rows = ref.layer(c, w, x)
    local md, mref = max_abs_diff(run(stories.layer_forward(c, w), { x }), rows, D, S)
    assert.is_true(mref > 1, "reference output has a sane magnitude")
    -- fp16 rounding of every intermediate: ~1e-3 relative over a few chained ops
    assert.is_true(md < 8e-3 * mref, string.format("max |diff| %.3g vs max |ref| %.3g", md, mref))
    local md32 = max_abs_diff(run(stories.layer_forward(c, w, { precision = "fp32" }), { x }, "fp32"), rows, D, S)
    assert.is_true(md32 < 1e-5 * mref, string.format("fp32: max |diff| %.3g", md32))
  end)

  it("the reference is sensitive to what the kernel computes (RoPE, mask, residuals)", function()
    local y = run(stories.layer_forward(c, w), { x })
    local c0 = stories.config { dim = 64, hidden = 128, n_heads = 4, seq = 16, n_layers = 1, vocab = 96, rope = false }
    local md = max_abs_diff(y, ref.layer(c0, w, x), D, S)
    assert.is_true(md > 0.05, "RoPE changes the output measurably: " .. md)
    local md0, mref0 = max_abs_diff(run(stories.layer_forward(c0, w), { x }), ref.layer(c0, w, x), D, S)
    assert.is_true(md0 < 8e-3 * mref0)
  end)

  it("scripts/bench_layer_ref.py (NumPy) computes the same layer from the files Lua writes", function()
    local cjson = require "cjson"
    local lr = dofile(H.root .. "/scripts/layer_ref.lua")
    local dir = H.tmpdir()
    lr.save_layer_npy(dir, w, x)
    local out = dir .. "/y.npy"
    local pipe = assert(io.popen(lr.ref_command(c, dir, { iters = 1, warmup = 0, out = out }) .. " 2>&1"))
    local line = pipe:read("a")
    local ok = pipe:close()
    assert.is_true(ok == true, line)
    local r = cjson.decode(line)
    assert.is_true(r.ms_per_iter > 0)
    assert.same({ 64, 128, 4, 16, true }, { r.dim, r.hidden, r.heads, r.seq, r.rope })
    local yn = assert(ane.load_npy(out))
    local rows = ref.layer(c, w, x)
    local mdn, mref = max_abs_diff(yn, rows, D, S)
    assert.is_true(mdn < 1e-4 * mref, "NumPy fp32 vs double reference: " .. mdn) -- fp32 only
    local y = run(stories.layer_forward(c, w), { x })
    local md = max_abs_diff(y, yn:reshape { D, S }:to_table(), D, S)
    assert.is_true(md < 8e-3 * mref, "MIL kernel vs NumPy: " .. md)
    local s, a = lr.checksum(y)
    assert.is_true(math.abs(s - r.checksum) < 2e-3 * a and math.abs(a - r.abs_checksum) < 2e-3 * a,
      string.format("checksums %.6g/%.6g vs %.6g/%.6g", s, a, r.checksum, r.abs_checksum))
    for _, f in ipairs { "wq", "wk", "wv", "wo", "w1", "w2", "w3", "rms_att", "rms_ffn", "x", "y" } do
      os.remove(dir .. "/" .. f .. ".npy")
    end
    os.remove(dir)
  end)

  it("attnFwd + ffnFwd reproduce the fused layer forward", function()
    local st = stories.transposed(w)
    local a = table.pack(run(stories.kernel(c, "attnFwd", { weights = st }), { x = x }))
    local f = table.pack(run(stories.kernel(c, "ffnFwd", { weights = st }), { x2 = a[6] }))
    local md, mref = max_abs_diff(f[5], ref.layer(c, w, x), D, S)
    assert.is_true(md < 8e-3 * mref, string.format("max |diff| %.3g", md))
  end)

  it("static (baked) and dynamic (weights as inputs) kernels compute the same, kernel by kernel", function()
    local st = stories.transposed(w)
    local rng = ane.rng(3)
    for _, n in ipairs { table.unpack(stories.LAYER_KERNELS), table.unpack(stories.EXTRA_LAYER_KERNELS) } do
      local ps, ls = stories.kernel(c, n, { weights = st, precision = "fp32" })
      local pd, ld = stories.kernel(c, n, { precision = "fp32" })
      local ins_s, ins_d = {}, {}
      for _, e in ipairs(ls.input) do
        local t = ane.zeros(e[2], "fp32")
        t:rand { dist = "uniform", lo = e[1] == "probs" and 0 or -1, hi = 1, rng = rng }
        ins_s[e[1]], ins_d[e[1]] = t, t
      end
      for _, e in ipairs(ld.input) do ins_d[e[1]] = ins_d[e[1]] or w[e[1]] end
      local a = table.pack(run(ps, ins_s, "fp32"))
      local b = table.pack(run(pd, ins_d, "fp32"))
      for i = 1, a.n do
        local fa, fb = a[i]:reshape { a[i]:numel() }, b[i]:reshape { b[i]:numel() }
        local md, mx = 0, 0
        for j = 1, a[i]:numel() do
          md = math.max(md, math.abs(fa[j] - fb[j]))
          mx = math.max(mx, math.abs(fb[j]))
        end
        assert.is_true(mx > 1e-3 and md <= 1e-5 * mx, string.format("%s %s: |diff| %.3g of %.3g", n, ls.output[i][1], md, mx))
      end
    end
  end)
end)
