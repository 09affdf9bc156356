-- ane.data: the seeded generator, batches, the held-out split and the byte-level tokenizer.
local ane = require "ane"
local data = require "ane.data"

local function u16(ids)
  return string.pack(string.rep("<I2", #ids), table.unpack(ids))
end

describe("ane.data", function()
  it("the generator is deterministic and its state round-trips", function()
    local a, b = data.rng(42), data.rng(42)
    for _ = 1, 5 do assert.are.equal(a:next(), b:next()) end
    local st = a:state()
    local x = { a:next(), a:below(1000), a:below(7) }
    local c = data.rng(0)
    c:set_state(st)
    assert.same(x, { c:next(), c:below(1000), c:below(7) })
    for _ = 1, 1000 do local r = c:below(10); assert.is_true(r >= 0 and r < 10) end
  end)

  it("batches are windows of seq + 1 tokens from the training split; eval windows are held out", function()
    local ids = {}
    for i = 1, 400 do ids[i] = i % 300 end
    local ds = data.from_string(u16(ids), "t.bin", { vocab = 300, seq = 8 })
    assert.are.equal(400, ds.ntokens)
    assert.are.equal(20, ds.neval)
    local tok, tgt = ds:batch(3, data.rng(1))
    assert.are.equal(24, tok:numel())
    for b = 0, 2 do
      local first = tok:get(b * 8 + 1)
      for j = 1, 8 do
        assert.are.equal((first + j - 1) % 300, tok:get(b * 8 + j))
        assert.are.equal((first + j) % 300, tgt:get(b * 8 + j))
      end
      assert.is_true(first >= 1 and first + 8 <= 380) -- inside the training split
    end
    local n = 0
    for etok, etgt in ds:eval_batches(1) do
      n = n + 1
      assert.are.equal((380 + (n - 1) * 8 + 1) % 300, etok:get(1)) -- token k holds (k + 1) % 300
      assert.are.equal(etok:get(2), etgt:get(1))
    end
    assert.are.equal(2, n) -- 20 held-out tokens: two windows of 8 (+1)
  end)

  it("validates files: errors name the file and, for a bad id, its byte offset", function()
    assert.has_error(function() data.from_string("abc", "f.bin", { vocab = 10, seq = 1 }) end,
      "f.bin: 3 bytes is not a whole number of uint16 tokens (truncated?)")
    assert.has_error(function() data.from_string(u16 { 1, 2 }, "f.bin", { vocab = 10, seq = 4 }) end,
      "f.bin: 2 tokens, need at least seq + 1 = 5")
    assert.has_error(function() data.from_string(u16 { 1, 2, 3, 12, 4 }, "f.bin", { vocab = 10, seq = 2 }) end,
      "f.bin: token id 12 at byte offset 6 (token 3) is not below the vocab size 10")
    assert.has_error(function() data.open("/nonexistent.bin", { vocab = 10, seq = 2 }) end,
      "/nonexistent.bin: No such file or directory")
  end)

  it("byte-level tokens and a llama2.c tokenizer.bin for them", function()
    local s = data.encode_bytes("Hi\n")
    assert.are.equal(u16 { 1, 72 + 3, 105 + 3, 10 + 3 }, s)
    local bin = data.byte_tokenizer_bin()
    local max_len, pos = string.unpack("<i4", bin)
    assert.are.equal(6, max_len)
    local pieces = {}
    for id = 0, 258 do
      local score, len
      score, len, pos = string.unpack("<fi4", bin, pos)
      pieces[id] = bin:sub(pos, pos + len - 1)
      pos = pos + len
    end
    assert.are.equal(#bin + 1, pos)
    assert.are.equal("<s>", pieces[1])
    assert.are.equal("A", pieces[65 + 3])
    assert.are.equal("<0x0A>", pieces[10 + 3])
    assert.are.equal("<0xFF>", pieces[258])
    local tk = rawget(ane, "tokenizer") or (pcall(require, "ane.tokenizer") and require("ane.tokenizer"))
    if tk and tk.load then -- the formats library reads it back
      local path = os.tmpname()
      local f = assert(io.open(path, "wb")); f:write(bin); f:close()
      local t = tk.load(path)
      assert.are.equal(259, t.vocab_size)
      assert.are.equal("Hi\n", t:decode_all { 72 + 3, 105 + 3, 10 + 3 })
      os.remove(path)
    end
  end)
end)
