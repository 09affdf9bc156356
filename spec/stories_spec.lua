-- ane.stories: the Stories110M kernel generators on a tiny config. Every kernel builds, prints,
-- parses back to the same program and checks; input/output shapes follow the documented
-- packing; the one-program layer forward matches a double-precision reference; and (when a
-- backend can compile) the static backward kernels chained together give the gradient of the
-- reference layer, and the dynamic-weight kernels agree with the static ones.
local ane = require "ane"
local H = require "helpers"
local stories = require "ane.stories"
local mil = require "ane.mil"

local TINY = { dim = 64, hidden = 128, n_heads = 4, seq = 16, n_layers = 2, vocab = 96 }

local function shape_of(v) return table.concat(v, "x") end

-- The documented packing, written out independently of the generators.
local function expected_static(c)
  local D, H, S, SC = c.dim, c.hidden, c.seq, c.n_heads * c.seq
  return {
    fwdAttn = { { 1, D, 1, S }, { 1, 6 * D, 1, S } },
    fwdFFN = { { 1, D, 1, S }, { 1, 2 * D + 3 * H, 1, S } },
    ffnBwd = { { 1, D + 2 * H, 1, S }, { 1, D + 2 * H, 1, S } },
    sdpaBwd1 = { { 1, 4 * D, 1, S }, { 1, D + 2 * SC, 1, S } },
    sdpaBwd2 = { { 1, 2 * SC + 2 * D, 1, S }, { 1, 2 * D, 1, S } },
    qkvBwd = { { 1, 3 * D, 1, S }, { 1, D, 1, S } },
    rmsAttBwd = { { 1, 2 * D, 1, S }, { 1, D, 1, S } },
    rmsFFNBwd = { { 1, 2 * D, 1, S }, { 1, D, 1, S } },
    finalRms = { { 1, D, 1, S }, { 1, D, 1, S } },
    classifierFwd = { { 1, D, 1, S }, { 1, c.vocab, 1, S } },
    softmaxVocab = { { 1, c.vocab, 1, S }, { 1, c.vocab, 1, S } },
    classifierBwd = { { 1, c.vocab, 1, S }, { 1, D, 1, S } },
  }
end

local function expected_dynamic(c)
  local D, H, S, SC = c.dim, c.hidden, c.seq, c.n_heads * c.seq
  return {
    sdpaFwd = { { 1, D, 1, S + 3 * D }, { 1, 5 * D, 1, S } },
    woFwd = { { 1, D, 1, S + D }, { 1, D, 1, S } },
    ffnFused = { { 1, D, 1, 2 * S + 3 * H }, { 1, D + 3 * H, 1, S } },
    ffnBwdW2t = { { 1, D, 1, S + H }, { 1, H, 1, S } },
    ffnBwdW13t = { { 1, H, 1, 2 * S + 2 * D }, { 1, D, 1, S } },
    wotBwd = { { 1, D, 1, S + D }, { 1, D, 1, S } },
    sdpaBwd1 = { { 1, 4 * D, 1, S }, { 1, D + 2 * SC, 1, S } },
    sdpaBwd2 = { { 1, 2 * SC + 2 * D, 1, S }, { 1, 2 * D, 1, S } },
    qBwd = { { 1, D, 1, S + D }, { 1, D, 1, S } },
    kvBwd = { { 1, D, 1, 2 * S + 2 * D }, { 1, D, 1, S } },
  }
end

-- the program's single input and output, from the parsed C program
local function io_shapes(prog)
  local ins, outs = prog:inputs(), prog:outputs()
  assert.equal(1, #ins)
  assert.equal(1, #outs)
  assert.equal("fp16", ins[1].dtype)
  assert.equal("fp16", outs[1].dtype)
  return ins[1].shape, outs[1].shape
end

local function roundtrip(p)
  local text = p:text()
  local parsed = mil.parse(text, "<stories>")
  assert.equal(text, parsed:text()) -- canonical printing is a fixed point
  local checked = p:program() -- parse + blobs + check
  assert.is_true(checked:equal(parsed))
  return checked
end

describe("ane.stories config", function()
  it("defaults to Stories110M", function()
    local c = stories.config {}
    assert.same({ 768, 2048, 12, 12, 64, 32000, 256 },
      { c.dim, c.hidden, c.n_layers, c.n_heads, c.head_dim, c.vocab, c.seq })
    assert.is_true(c.rope)
  end)

  it("rejects bad configs with clear messages", function()
    local cases = {
      { { dim = 65, n_heads = 4 }, "stories.config: dim 65 does not split into 4 heads" },
      { { dim = 0 }, "stories.config: 'dim' must be a positive integer, got 0" },
      { { seq = 1.5 }, "stories.config: 'seq' must be a positive integer, got 1.5" },
      { { heads = 4 }, "stories.config: unknown field 'heads'" },
      { { dim = 12, n_heads = 4 }, "stories.config: RoPE needs an even head_dim, got 3" },
      { { eps = 0 }, "stories.config: 'eps' must be a positive number" },
    }
    for _, case in ipairs(cases) do
      local ok, err = pcall(stories.config, case[1])
      assert.is_false(ok)
      assert.matches(case[2], err, 1, true)
    end
    -- without RoPE an odd head_dim is fine
    assert.equal(3, stories.config { dim = 12, n_heads = 4, rope = false }.head_dim)
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
    ok, err = pcall(stories.static.qkvBwd, c, bad)
    assert.is_false(ok)
    assert.matches("stories.qkvBwd: weight 'wk' has shape [64, 128], expected [64, 64]", err, 1, true)
    ok, err = pcall(stories.model_kernels, c, { style = "fast" })
    assert.is_false(ok)
    assert.matches('style must be "static" or "dynamic"', err, 1, true)
  end)
end)

describe("ane.stories kernels (tiny config)", function()
  local c = stories.config(TINY)
  local W = stories.init_weights(c, { seed = 7 })

  it("the layer forward builds, round-trips and has [1, D, 1, S] in and out", function()
    local prog = roundtrip(stories.layer_forward(c, W.layers[1]))
    local i, o = io_shapes(prog)
    assert.same({ 1, 64, 1, 16 }, i)
    assert.same({ 1, 64, 1, 16 }, o)
  end)

  it("every static kernel of the model builds, round-trips, checks, with the documented shapes", function()
    local want = expected_static(c)
    local list = stories.model_kernels(c, { weights = W })
    assert.equal(#stories.STATIC_LAYER_KERNELS * c.n_layers + #stories.STATIC_MODEL_KERNELS, #list)
    assert.equal(8 * 2 + 4, #list)
    local seen = {}
    for _, e in ipairs(list) do
      seen[e.name] = true
      local i, o = io_shapes(roundtrip(e.build()))
      local wi = assert(want[e.kernel], e.kernel)
      assert.equal(shape_of(wi[1]), shape_of(i), e.name .. " input")
      assert.equal(shape_of(wi[2]), shape_of(o), e.name .. " output")
    end
    assert.is_true(seen["L2.sdpaBwd2"] and seen["L1.fwdAttn"] and seen.classifierBwd)
  end)

  it("every dynamic-weight kernel builds, round-trips, checks, with the documented shapes", function()
    local want = expected_dynamic(c)
    local list = stories.model_kernels(c, { style = "dynamic" })
    assert.equal(10, #list)
    for _, e in ipairs(list) do
      local i, o = io_shapes(roundtrip(e.build()))
      assert.equal(shape_of(want[e.kernel][1]), shape_of(i), e.name .. " input")
      assert.equal(shape_of(want[e.kernel][2]), shape_of(o), e.name .. " output")
    end
  end)

  it("without RoPE the static kernels carry no rotation (the research's stories_mil.h form)", function()
    local c0 = stories.config { dim = 64, hidden = 128, n_heads = 4, seq = 16, n_layers = 1, vocab = 96, rope = false }
    local with = stories.static.fwdAttn(c, W.layers[1]):text()
    local without = stories.static.fwdAttn(c0, W.layers[1]):text()
    assert.truthy(with:find("rope_cos", 1, true))
    assert.falsy(without:find("rope_cos", 1, true))
    assert.falsy(without:find("slice_by_size", 1, true)) -- the pair rotation slices; nothing else does
  end)

  it("stories110M at full size builds the layer and its kernels (text only, no weights evaluated)", function()
    local big = stories.config {}
    local w = stories.init_weights(big, { seed = 1, layers = 1, embed = false }).layers[1]
    local i, o = io_shapes(roundtrip(stories.layer_forward(big, w)))
    assert.same({ 1, 768, 1, 256 }, i)
    assert.same({ 1, 768, 1, 256 }, o)
    local i2, o2 = io_shapes(roundtrip(stories.dynamic.sdpaFwd(big)))
    assert.same({ 1, 768, 1, 256 + 3 * 768 }, i2)
    assert.same({ 1, 5 * 768, 1, 256 }, o2)
  end)
end)

-- ===================================================================
-- numerics (need a backend that compiles: the CPU backend)
-- ===================================================================

local function max_abs_diff(t, ref, C, S)
  local md, mref = 0, 0
  for c = 1, C do
    for s = 1, S do
      local d = math.abs(t:get(1, c, 1, s) - ref[c][s])
      if d ~= d then return math.huge, mref end -- NaN
      if d > md then md = d end
      if math.abs(ref[c][s]) > mref then mref = math.abs(ref[c][s]) end
    end
  end
  return md, mref
end

-- pack [1, C_i, 1, S] tensors along channels into one input
local function pack_ch(parts, S)
  local C = 0
  for _, t in ipairs(parts) do C = C + t:shape()[2] end
  local out = ane.zeros { 1, C, 1, S }
  local flat = out:reshape { C, S }
  local c0 = 0
  for _, t in ipairs(parts) do
    local n = t:shape()[2]
    flat:sub(c0 + 1, c0 + n):copy(t:reshape { n, S })
    c0 = c0 + n
  end
  return out
end

-- channels [c0, c0 + n) of a [1, C, 1, S] output as a fresh tensor
local function take(t, c0, n, S)
  local C = t:shape()[2]
  local r = ane.zeros { 1, n, 1, S }
  r:reshape { n, S }:copy(t:reshape { C, S }:sub(c0 + 1, c0 + n))
  return r
end

-- pack along S: act [1, IC, 1, S] then matrices [IC, n_j] (rows = input channels)
local function pack_sp(parts)
  local IC = parts[1]:shape()[1] == 1 and parts[1]:shape()[2] or parts[1]:shape()[1]
  local cols = {}
  local W = 0
  for i, t in ipairs(parts) do
    local s = t:shape()
    local rows = #s == 4 and t:reshape { s[2], s[4] } or t
    cols[i] = rows
    W = W + rows:shape()[2]
  end
  local out = ane.zeros { 1, IC, 1, W }
  local o2 = out:reshape { IC, W }
  for r = 1, IC do
    local dst = o2[r]
    local c0 = 0
    for _, m in ipairs(cols) do
      local row = m[r]
      local n = row:shape()[1]
      for j = 1, n do dst[c0 + j] = row[j] end
      c0 = c0 + n
    end
  end
  return out
end

local function run(p, x)
  local k = ane.compile(p)
  k:load()
  return (k:eval { x })
end

describe("ane.stories numerics", function()
  -- Guarded, not skipped: the comparisons run wherever ane.compile exists (it does on the CPU
  -- backend, which is always built), and the guard itself is asserted so it cannot hide.
  it("ane.compile is available, so the numeric checks below run", function()
    assert.is_function(ane.compile)
  end)
  if not ane.compile then return end

  local c = stories.config(TINY)
  -- std 0.15 ≈ 1/√dim: unit-scale projections, so attention is far from uniform and RoPE,
  -- the mask and both branches all move the output
  local W = stories.init_weights(c, { seed = 11, layers = 1, embed = false, std = 0.15 })
  local w = W.layers[1]
  local D, S = c.dim, c.seq
  local x = ane.rand({ 1, D, 1, S }, { dist = "normal", seed = 5 })

  it("the layer forward matches the double-precision reference within fp16 tolerance", function()
    local y = run(stories.layer_forward(c, w), x)
    local ref = stories.reference_layer(c, w, x)
    local md, mref = max_abs_diff(y, ref, D, S)
    assert.is_true(mref > 1, "reference output has a sane magnitude")
    -- fp16 rounding of every intermediate: ~1e-3 relative over a few chained ops
    assert.is_true(md < 8e-3 * mref, string.format("max |diff| %.3g vs max |ref| %.3g", md, mref))
  end)

  it("the reference is sensitive to what the kernel computes (RoPE, mask, residuals)", function()
    local y = run(stories.layer_forward(c, w), x)
    local c0 = stories.config { dim = 64, hidden = 128, n_heads = 4, seq = 16, n_layers = 1, vocab = 96, rope = false }
    local md = max_abs_diff(y, stories.reference_layer(c0, w, x), D, S)
    assert.is_true(md > 0.05, "RoPE changes the output measurably: " .. md)
    local y0 = run(stories.layer_forward(c0, w), x)
    local md0, mref0 = max_abs_diff(y0, stories.reference_layer(c0, w, x), D, S)
    assert.is_true(md0 < 8e-3 * mref0)
  end)

  it("scripts/bench_layer_ref.py (NumPy) computes the same layer from the files Lua writes", function()
    local cjson = require "cjson"
    local dir = H.tmpdir()
    stories.save_layer_npy(dir, w, x)
    local out = dir .. "/y.npy"
    local pipe = assert(io.popen(stories.ref_command(c, dir, { iters = 1, warmup = 0, out = out }) .. " 2>&1"))
    local line = pipe:read("a")
    local ok = pipe:close()
    assert.is_true(ok == true, line)
    local r = cjson.decode(line)
    assert.is_true(r.ms_per_iter > 0)
    assert.same({ 64, 128, 4, 16, true }, { r.dim, r.hidden, r.heads, r.seq, r.rope })
    local yn = assert(ane.load_npy(out))
    local y = run(stories.layer_forward(c, w), x)
    local ref = stories.reference_layer(c, w, x)
    local mdn, mref = max_abs_diff(yn, ref, D, S)
    assert.is_true(mdn < 1e-4 * mref, "NumPy fp32 vs double reference: " .. mdn) -- fp32 only
    local md = max_abs_diff(y, yn:reshape { D, S }:to_table(), D, S)
    assert.is_true(md < 8e-3 * mref, "MIL kernel vs NumPy: " .. md)
    local s, a = stories.checksum(y)
    assert.is_true(math.abs(s - r.checksum) < 2e-3 * a and math.abs(a - r.abs_checksum) < 2e-3 * a,
      string.format("checksums %.6g/%.6g vs %.6g/%.6g", s, a, r.checksum, r.abs_checksum))
    for _, f in ipairs { "wq", "wk", "wv", "wo", "w1", "w2", "w3", "rms_att", "rms_ffn", "x", "y" } do
      os.remove(dir .. "/" .. f .. ".npy")
    end
    os.remove(dir)
  end)

  it("fwdAttn + fwdFFN taps reproduce the fused layer forward", function()
    local a = run(stories.static.fwdAttn(c, w), x)
    local o_out = take(a, 0, D, S)
    local x2 = x:clone():add(o_out)
    local fo = run(stories.static.fwdFFN(c, w), x2)
    local y = x2:clone():add(take(fo, 0, D, S))
    local ref = stories.reference_layer(c, w, x)
    local md, mref = max_abs_diff(y, ref, D, S)
    assert.is_true(md < 8e-3 * mref, string.format("max |diff| %.3g", md))
  end)

  it("the static backward kernels chained give the reference layer's gradient", function()
    -- L = <g, layer(x)>; backward as train_large_ane runs it, then compared with a central
    -- difference of the double reference along a random direction.
    local g = ane.rand({ 1, D, 1, S }, { dist = "normal", seed = 21 })
    local K = {}
    for _, n in ipairs(stories.STATIC_LAYER_KERNELS) do
      K[n] = ane.compile(stories.static[n](c, w))
      K[n]:load()
    end
    local fa = K.fwdAttn:eval { x }
    local q, kk, v = take(fa, D, D, S), take(fa, 2 * D, D, S), take(fa, 3 * D, D, S)
    local x2 = x:clone():add(take(fa, 0, D, S))
    local ff = K.fwdFFN:eval { x2 }
    local h1, h3 = take(ff, D, c.hidden, S), take(ff, D + c.hidden, c.hidden, S)
    -- FFN branch: y = x2 + ffn(rms(x2)); dy = g
    local fb = K.ffnBwd:eval { pack_ch({ g, h1, h3 }, S) }
    local dxn2 = take(fb, 0, D, S)
    local dx2 = K.rmsFFNBwd:eval { pack_ch({ dxn2, x2 }, S) }:add(g)
    -- attention branch: x2 = x + Wo·attn(rms(x))
    local b1 = K.sdpaBwd1:eval { pack_ch({ q, kk, v, dx2 }, S) }
    local SC = c.n_heads * S
    local dv = take(b1, 0, D, S)
    local b2 = K.sdpaBwd2:eval { pack_ch({ take(b1, D, SC, S), take(b1, D + SC, SC, S), q, kk }, S) }
    local dxn = K.qkvBwd:eval { pack_ch({ take(b2, 0, D, S), take(b2, D, D, S), dv }, S) }
    local dx = K.rmsAttBwd:eval { pack_ch({ dxn, x }, S) }:add(dx2)
    -- directional derivative through the reference
    local rng = ane.rng(99)
    local xr = x:reshape { D, S }:to_table()
    local dir = {}
    for ci = 1, D do
      dir[ci] = {}
      for s = 1, S do dir[ci][s] = rng:normal() end
    end
    local gr = g:reshape { D, S }:to_table()
    local function L(eps)
      local xp = {}
      for ci = 1, D do
        xp[ci] = {}
        for s = 1, S do xp[ci][s] = xr[ci][s] + eps * dir[ci][s] end
      end
      local y = stories.reference_layer(c, w, xp)
      local acc = 0
      for ci = 1, D do for s = 1, S do acc = acc + gr[ci][s] * y[ci][s] end end
      return acc
    end
    local h = 1e-4
    local fd = (L(h) - L(-h)) / (2 * h)
    local an, norm = 0, 0
    for ci = 1, D do
      for s = 1, S do
        local gv = dx:get(1, ci, 1, s)
        an = an + gv * dir[ci][s]
        norm = norm + math.abs(gv * dir[ci][s])
      end
    end
    assert.is_true(math.abs(fd) > 1, "a non-trivial directional derivative: " .. fd)
    assert.is_true(math.abs(an - fd) < 0.02 * math.abs(fd),
      string.format("kernels %.5g vs finite difference %.5g (scale %.3g)", an, fd, norm))
  end)

  it("the dynamic-weight kernels compute what the static ones do", function()
    local function T(m) return stories.transpose(m) end -- [out, in] -> [in, out] rows = input channels
    local fa = run(stories.static.fwdAttn(c, w), x)
    local xn = take(fa, 5 * D, D, S)
    local sd = run(stories.dynamic.sdpaFwd(c), pack_sp({ xn, T(w.wq), T(w.wk), T(w.wv) }))
    -- static: (o_out, q, k, v, attn, xn); dynamic: (attn, q, k, v, xn)
    local function close(a, b, what)
      local n = a:numel()
      local fa_, fb_ = a:reshape { n }, b:reshape { n }
      local md, mx = 0, 0
      for i = 1, n do
        md = math.max(md, math.abs(fa_[i] - fb_[i]))
        mx = math.max(mx, math.abs(fb_[i]))
      end
      assert.is_true(mx > 0.01 and md <= 4e-3 * mx + 1e-3, string.format("%s: |diff| %.3g of %.3g", what, md, mx))
    end
    close(take(sd, 0, D, S), take(fa, 4 * D, D, S), "attn")
    close(take(sd, D, 3 * D, S), take(fa, D, 3 * D, S), "q, k, v")
    local attn = take(fa, 4 * D, D, S)
    close(run(stories.dynamic.woFwd(c), pack_sp({ attn, T(w.wo) })), take(fa, 0, D, S), "woFwd")
    -- FFN
    local x2 = x:clone():add(take(fa, 0, D, S))
    local ff = run(stories.static.fwdFFN(c, w), x2)
    local x2n = take(ff, D + 3 * c.hidden, D, S)
    local fu = run(stories.dynamic.ffnFused(c), pack_sp({ x2n, x2, T(w.w1), T(w.w3), w.w2 }))
    close(take(fu, 0, D, S), x2:clone():add(take(ff, 0, D, S)), "x_next")
    close(take(fu, D, 3 * c.hidden, S), take(ff, D, 3 * c.hidden, S), "h1, h3, gate")
    -- backward dx pieces against the static ffnBwd / qkvBwd
    local g = ane.rand({ 1, D, 1, S }, { dist = "normal", seed = 3 })
    local h1, h3 = take(ff, D, c.hidden, S), take(ff, D + c.hidden, c.hidden, S)
    local fb = run(stories.static.ffnBwd(c, w), pack_ch({ g, h1, h3 }, S))
    local dh1, dh3 = take(fb, D, c.hidden, S), take(fb, D + c.hidden, c.hidden, S)
    close(run(stories.dynamic.ffnBwdW13t(c), pack_sp({ dh1, dh3, w.w1, w.w3 })), take(fb, 0, D, S), "ffnBwdW13t")
    local dsilu = run(stories.dynamic.ffnBwdW2t(c), pack_sp({ g, w.w2 }))
    assert.same({ 1, c.hidden, 1, S }, dsilu:shape())
    local dq, dk, dv = ane.rand({ 1, D, 1, S }, { dist = "normal", seed = 4 }),
        ane.rand({ 1, D, 1, S }, { dist = "normal", seed = 5 }), ane.rand({ 1, D, 1, S }, { dist = "normal", seed = 6 })
    local qkv = run(stories.static.qkvBwd(c, w), pack_ch({ dq, dk, dv }, S))
    local qb = run(stories.dynamic.qBwd(c), pack_sp({ dq, w.wq }))
    local kvb = run(stories.dynamic.kvBwd(c), pack_sp({ dk, dv, w.wk, w.wv }))
    close(qb:clone():add(kvb), qkv, "qBwd + kvBwd")
    local da = run(stories.dynamic.wotBwd(c), pack_sp({ g, w.wo }))
    local q, k, v = take(fa, D, D, S), take(fa, 2 * D, D, S), take(fa, 3 * D, D, S)
    close(run(stories.dynamic.sdpaBwd1(c), pack_ch({ q, k, v, da }, S)),
      run(stories.static.sdpaBwd1(c, w), pack_ch({ q, k, v, g }, S)), "sdpaBwd1")
  end)
end)
