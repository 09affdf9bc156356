-- llama2.c .bin checkpoints (ane.llama2c.load/save) and ane.atomic_write: files built by hand with
-- string.pack, round trips (MHA and GQA, shared and unshared classifier, fp16 input), and
-- truncated or inconsistent files, each checked for its message.
local ane = require "ane"
local H = require "helpers"

local names = { "embed", "rms_att", "wq", "wk", "wv", "wo", "rms_ffn", "w1", "w2", "w3", "rms_final" }

local function shapes(c)
  local kv = c.dim * c.n_kv_heads // c.n_heads
  local L = c.n_layers
  return {
    embed = { c.vocab, c.dim }, rms_att = { L, c.dim }, wq = { L, c.dim, c.dim }, wk = { L, kv, c.dim },
    wv = { L, kv, c.dim }, wo = { L, c.dim, c.dim }, rms_ffn = { L, c.dim }, w1 = { L, c.hidden, c.dim },
    w2 = { L, c.dim, c.hidden }, w3 = { L, c.hidden, c.dim }, rms_final = { c.dim }, wcls = { c.vocab, c.dim },
  }
end

local function numel(s) local n = 1 for _, d in ipairs(s) do n = n * d end return n end

-- A checkpoint image where weight k's element i is k * 1000 + i (exact in fp32), RoPE tables of
-- 0.5s, and the classifier's elements -(i + 1) when unshared.
local function image(c, opts)
  opts = opts or {}
  local s = shapes(c)
  local parts = { string.pack("<i4i4i4i4i4i4i4", c.dim, c.hidden, c.n_layers, c.n_heads, c.n_kv_heads,
    c.shared and c.vocab or -c.vocab, c.seq) }
  for k, name in ipairs(names) do
    local n = numel(s[name])
    local vals = {}
    for i = 0, n - 1 do vals[#vals + 1] = string.pack("<f", k * 1000 + i) end
    parts[#parts + 1] = table.concat(vals)
  end
  local hs = c.dim // c.n_heads
  parts[#parts + 1] = string.rep(string.pack("<f", 0.5), c.seq * hs // 2 * 2)
  if not c.shared then
    local vals = {}
    for i = 0, c.vocab * c.dim - 1 do vals[#vals + 1] = string.pack("<f", -(i + 1)) end
    parts[#parts + 1] = table.concat(vals)
  end
  return table.concat(parts)
end

local function tmp() return os.tmpname() .. ".bin" end

local function random_weights(c, dtype, seed)
  local w = {}
  for name, s in pairs(shapes(c)) do
    w[name] = ane.rand(s, { seed = seed + #name, dtype = dtype })
  end
  return w
end

local function err_of(f, ...)
  local ok, e = pcall(f, ...)
  assert.is_false(ok, "expected an error")
  return tostring(e)
end

describe("llama2c", function()
  local mha = { dim = 8, hidden = 12, n_layers = 2, n_heads = 2, n_kv_heads = 2, vocab = 5, seq = 4, shared = true }
  local gqa = { dim = 8, hidden = 6, n_layers = 3, n_heads = 4, n_kv_heads = 2, vocab = 7, seq = 3, shared = false }

  it("loads a hand-built file: config, shapes and values in llama2.c's order", function()
    for _, c in ipairs({ mha, gqa }) do
      local path = H.write(tmp(), image(c))
      local ck = ane.llama2c.load(path)
      local cfg = ck.config
      assert.same({ c.dim, c.hidden, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab, c.seq, c.shared },
        { cfg.dim, cfg.hidden, cfg.n_layers, cfg.n_heads, cfg.n_kv_heads, cfg.vocab, cfg.seq, cfg.shared_classifier })
      assert.equal(c.dim * c.n_kv_heads // c.n_heads, cfg.kv_dim)
      assert.equal("interleaved", cfg.rope)
      local s = shapes(c)
      for k, name in ipairs(names) do
        local t = ck.weights[name]
        assert.equal("fp32", t:dtype())
        assert.same(s[name], t:shape())
        local flat = t:reshape({ t:numel() })
        assert.equal(k * 1000, flat:get(1))
        assert.equal(k * 1000 + t:numel() - 1, flat:get(t:numel()))
        assert.equal("mmap", t:storage_kind())
      end
      if c.shared then
        assert.equal(ck.weights.embed, ck.weights.wcls)
      else
        local w = ck.weights.wcls
        assert.same({ c.vocab, c.dim }, w:shape())
        assert.equal(-1, w:get(1, 1))
        assert.equal(-(c.vocab * c.dim), w:get(c.vocab, c.dim))
      end
      os.remove(path)
    end
  end)

  it("keeps the mapping alive while any view lives, and writes stay in memory", function()
    local path = H.write(tmp(), image(gqa))
    local ck = ane.llama2c.load(path)
    local w2 = ck.weights.w2
    ck = nil
    collectgarbage()
    collectgarbage()
    assert.equal(9000, w2:get(1, 1, 1))
    w2:set(1, 1, 1, 42)
    assert.equal(42, w2:get(1, 1, 1))
    assert.equal(image(gqa), H.read(path)) -- private mapping: the file is unchanged
    os.remove(path)
  end)

  it("round-trips through save (MHA, GQA, shared, unshared; fp16 tensors are written as fp32)", function()
    for _, c in ipairs({ mha, gqa }) do
      for _, dt in ipairs({ "fp32", "fp16" }) do
        local cfg = { dim = c.dim, hidden = c.hidden, n_layers = c.n_layers, n_heads = c.n_heads,
          n_kv_heads = c.n_kv_heads, vocab = c.vocab, seq = c.seq }
        local w = random_weights(c, dt, 7)
        if c.shared then w.wcls = w.embed end
        local path = tmp()
        assert.is_true(ane.llama2c.save(path, cfg, w))
        local ck = ane.llama2c.load(path)
        assert.equal(c.shared, ck.config.shared_classifier)
        for name in pairs(shapes(c)) do
          assert.same(w[name]:to_table(), ck.weights[name]:to_table(), name)
        end
        -- and the RoPE tables hold llama2.c's cos/sin (theta 10000): position 1, pair 0 = cos(1)
        local bytes = H.read(path)
        local hs = c.dim // c.n_heads
        local rope_off = 28 + 4 * (c.vocab * c.dim + 2 * c.n_layers * c.dim + 2 * c.n_layers * c.dim * c.dim
          + 2 * c.n_layers * c.dim * (c.dim * c.n_kv_heads // c.n_heads) + 3 * c.n_layers * c.dim * c.hidden + c.dim)
        local cos1 = string.unpack("<f", bytes, rope_off + 1 + 4 * (hs // 2))
        assert.near(math.cos(1), cos1, 1e-6)
        -- save again over the same path (atomic replace), from the loaded views
        assert.is_true(ane.llama2c.save(path, ck.config, ck.weights))
        assert.equal(bytes, H.read(path))
        os.remove(path)
      end
    end
  end)

  it("infers shared_classifier from weights.wcls and honours an explicit setting", function()
    local cfg = { dim = 8, hidden = 12, n_layers = 1, n_heads = 2, vocab = 5, seq = 4 }
    local c = { dim = 8, hidden = 12, n_layers = 1, n_heads = 2, n_kv_heads = 2, vocab = 5, seq = 4 }
    local w = random_weights(c, "fp32", 1)
    local path = tmp()
    ane.llama2c.save(path, cfg, w) -- wcls distinct: unshared
    assert.is_false(ane.llama2c.load(path).config.shared_classifier)
    cfg.shared_classifier = true
    ane.llama2c.save(path, cfg, w)
    local ck = ane.llama2c.load(path)
    assert.is_true(ck.config.shared_classifier)
    assert.same(w.embed:to_table(), ck.weights.wcls:to_table())
    os.remove(path)
  end)

  it("names the file and the missing array of a truncated file", function()
    local img = image(gqa)
    local path = tmp()
    H.write(path, img:sub(1, 10))
    assert.matches(H.escape(path) .. ": truncated llama2.c checkpoint: 10 bytes, the header alone is 28",
      err_of(ane.llama2c.load, path))
    H.write(path, img:sub(1, 28 + 4 * 7 * 8 + 5))
    assert.matches("truncated llama2.c checkpoint: 257 bytes, the header %(dim 8, layers 3, vocab 7, unshared classifier%) needs "
      .. #img .. "; rms_att %(from byte 252%) is missing", err_of(ane.llama2c.load, path))
    H.write(path, img:sub(1, #img - 1))
    assert.matches("wcls %(the unshared classifier%) %(from byte %d+%) is missing", err_of(ane.llama2c.load, path))
    local shared = image(mha)
    H.write(path, shared:sub(1, #shared - 4))
    assert.matches("freq_cis_real/imag %(the RoPE tables%)", err_of(ane.llama2c.load, path))
    -- every truncation is an error, never a crash
    for n = 0, #shared - 1, 37 do
      H.write(path, shared:sub(1, n))
      assert.matches("truncated", err_of(ane.llama2c.load, path))
    end
    os.remove(path)
  end)

  it("rejects inconsistent headers and oversized files", function()
    local path = tmp()
    local function hdr(...) return string.pack("<i4i4i4i4i4i4i4", ...) .. string.rep("\0", 64) end
    local cases = {
      { hdr(0, 12, 2, 2, 2, 5, 4), "not a llama2.c checkpoint %(dim 0, hidden 12, layers 2, heads 2, kv heads 2, vocab 5, seq 4%): header: dim is 0, must be positive" },
      { hdr(8, 12, 2, 3, 3, 5, 4), "dim 8 is not a multiple of n_heads 3" },
      { hdr(8, 12, 2, 4, 3, 5, 4), "n_heads 4 is not a multiple of n_kv_heads 3" },
      { hdr(8, 12, 2, 8, 8, 5, 4), "head size 1 %(dim / n_heads%) is odd" },
      { hdr(8, 12, 2, 2, 2, 0, 4), "vocab_size is 0" },
      { hdr(8, 12, 2, 2, 2, 5, -1), "seq_len is %-1" },
      { hdr(0x40000000, 0x40000000, 0x40000000, 2, 2, 5, 4), "impossibly large" },
      { hdr(0x7ffffffe, 0x7fffffff, 0x7fffffff, 1, 1, -0x7fffffff, 0x7fffffff), "impossibly large" }, -- found by fuzzing
    }
    for _, c in ipairs(cases) do
      H.write(path, c[1])
      local e = err_of(ane.llama2c.load, path)
      assert.matches(H.escape(path), e)
      assert.matches(c[2], e)
    end
    H.write(path, image(mha) .. "xyzw")
    assert.matches("inconsistent llama2.c checkpoint: %d+ bytes, .* implies %d+ %(4 extra%)", err_of(ane.llama2c.load, path))
    os.remove(path)
    assert.matches("cannot open: No such file", err_of(ane.llama2c.load, path))
  end)

  it("save checks names, shapes and dtypes before writing anything", function()
    local c = { dim = 8, hidden = 12, n_layers = 1, n_heads = 2, n_kv_heads = 2, vocab = 5, seq = 4 }
    local path = tmp()
    local w = random_weights(c, "fp32", 3)
    w.w2 = ane.zeros({ 1, 12, 8 }, "fp32")
    assert.matches("weight w2 has shape %[1, 12, 8%]; the config needs %[1, 8, 12%]", err_of(ane.llama2c.save, path, c, w))
    w.w2 = ane.zeros({ 1, 8, 12 }, "int32")
    assert.matches("weight w2 is int32; fp32 or fp16 expected", err_of(ane.llama2c.save, path, c, w))
    w.w2 = nil
    assert.matches("weights.w2 must be an open ane.Tensor, got nil", err_of(ane.llama2c.save, path, c, w))
    assert.matches("config.vocab must be a positive integer, got nil",
      err_of(ane.llama2c.save, path, { dim = 8, hidden = 12, n_layers = 1, n_heads = 2, seq = 4 }, w))
    assert.is_nil(H.read(path))
  end)
end)

describe("atomic_write", function()
  local function leftovers(dir)
    local p = io.popen("ls -a " .. H.shquote(dir))
    local n = 0
    for name in p:lines() do if name:match("%.tmp%.") then n = n + 1 end end
    p:close()
    return n
  end

  it("writes a string, or strings and tensors in order, replacing the old file", function()
    local dir = H.tmpdir()
    local path = dir .. "/out.bin"
    assert.is_true(ane.atomic_write(path, "old"))
    assert.equal("old", H.read(path))
    local t = ane.from_table({ 1, 2 }, "int32")
    assert.is_true(ane.atomic_write(path, { "ab", t, "", "c" }))
    assert.equal("ab" .. string.pack("<i4i4", 1, 2) .. "c", H.read(path))
    assert.is_true(ane.atomic_write(path, {}))
    assert.equal("", H.read(path))
    assert.equal(0, leftovers(dir))
    os.execute("rm -rf " .. H.shquote(dir))
  end)

  it("fails cleanly: bad pieces, a missing directory; the old file stays", function()
    local dir = H.tmpdir()
    local path = dir .. "/keep.txt"
    ane.atomic_write(path, "keep")
    assert.matches("piece 2 is a number; strings and open ane.Tensors expected",
      err_of(ane.atomic_write, path, { "x", 5 }))
    assert.matches(H.escape(dir) .. "/nodir/f: cannot create a temp file beside it: No such file",
      err_of(ane.atomic_write, dir .. "/nodir/f", "x"))
    assert.equal("keep", H.read(path))
    assert.equal(0, leftovers(dir))
    os.execute("rm -rf " .. H.shquote(dir))
  end)
end)
