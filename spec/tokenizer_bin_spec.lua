-- llama2.c tokenizer.bin: ane.tokenizer.load/save_bin, run.c's encode and decode rules checked
-- against hand-computed encodings and against a plain Lua transcription of run.c's quadratic
-- merge loop on random texts; truncated and inconsistent files.
local ane = require "ane"
local H = require "helpers"

-- The vocabulary: <unk>, BOS, EOS, the 256 byte tokens, then the pieces below with their scores.
local extra = {
  { " ", -1 }, { "a", -1 }, { "b", -1 }, { "c", -1 }, { " a", -3 }, { "ab", -2 }, { " ab", -4 },
  { "bc", -2 }, { "é", -1 }, { "h", -1 }, { "e", -1 }, { "l", -1 }, { "o", -1 }, { "he", -5 },
  { "ll", -5 }, { "llo", -6 }, { "hello", -7 }, { " hello", -8 }, { "ca", -2 }, { "\n", -1 },
  { "€", -1 }, { "x", -1 }, { "xx", -1e11 }, { "日本", -1 }, { "日", -1 }, { "本", -1 },
}

local function vocab()
  local pieces, scores = { "<unk>", "\n<s>\n", "\n</s>\n" }, { 0, 0, 0 }
  for b = 0, 255 do pieces[#pieces + 1] = string.format("<0x%02X>", b); scores[#scores + 1] = 0 end
  for _, e in ipairs(extra) do pieces[#pieces + 1] = e[1]; scores[#scores + 1] = e[2] end
  return pieces, scores
end

local pieces, scores = vocab()
local id_of = {}
for i, p in ipairs(pieces) do id_of[p] = id_of[p] or i - 1 end

local path = os.tmpname() .. ".bin"
ane.tokenizer.save_bin(path, pieces, scores)
local tok = ane.tokenizer.load(path)

local function ids(...)
  local out = {}
  for _, p in ipairs({ ... }) do out[#out + 1] = type(p) == "number" and p or assert(id_of[p], p) end
  return out
end

-- run.c's encode, transcribed plainly (linear lookups, a full scan per merge).
local function ref_encode(text, bos, eos)
  local out = {}
  if bos then out[#out + 1] = 1 end
  local function lookup(s)
    for i, p in ipairs(pieces) do if p == s then return i - 1 end end
    return -1
  end
  if #text > 0 then out[#out + 1] = lookup(" ") end
  local buf = ""
  for i = 1, #text do
    local c = text:byte(i)
    if c & 0xC0 ~= 0x80 then buf = "" end
    buf = buf .. string.char(c)
    local nx = text:byte(i + 1)
    if not (nx and nx & 0xC0 == 0x80 and #buf < 4) then
      local id = lookup(buf)
      if id ~= -1 then out[#out + 1] = id
      else for k = 1, #buf do out[#out + 1] = buf:byte(k) + 3 end end
      buf = ""
    end
  end
  while true do
    local best, best_id, best_idx = -1e10, -1, -1
    for i = 1, #out - 1 do
      local id = lookup(pieces[out[i] + 1] .. pieces[out[i + 1] + 1])
      if id ~= -1 and scores[id + 1] > best then best, best_id, best_idx = scores[id + 1], id, i end
    end
    if best_idx == -1 then break end
    out[best_idx] = best_id
    table.remove(out, best_idx + 1)
  end
  if eos then out[#out + 1] = 2 end
  return out
end

describe("tokenizer.bin", function()
  it("loads the fields run.c uses", function()
    assert.equal(#pieces, tok.vocab_size)
    assert.equal(1, tok.bos_id)
    assert.equal(2, tok.eos_id)
    assert.equal("llama2c", tok.kind)
    assert.equal(6, tok.max_len)
    assert.equal(" hello", tok:piece(id_of[" hello"]))
    assert.equal(-8, tok:score(id_of[" hello"]))
    assert.equal(id_of["ab"], tok:id("ab"))
    assert.is_nil(tok:id("zzz"))
    assert.matches("ane.Tokenizer %(llama2c, %d+ tokens%)", tostring(tok))
  end)

  it("encodes by run.c's rules (hand-computed)", function()
    -- dummy prefix " ", then "ab" (-2) beats " a" (-3); then " " + "ab" = " ab"
    assert.same(ids(1, " ab"), tok:encode("ab"))
    assert.same(ids(" ab"), tok:encode("ab", { bos = false }))
    assert.same(ids(1, " ab", 2), tok:encode("ab", { eos = true }))
    assert.same({ 1 }, tok:encode(""))                       -- no dummy prefix for empty text
    assert.same({}, tok:encode("", { bos = false }))
    -- "hello": he/ll (-5, tie: leftmost first), llo, hello, then " hello"
    assert.same(ids(1, " hello"), tok:encode("hello"))
    -- leading spaces: " " + " " has no merge; the second space merges into " a"?  " a" exists:
    -- tokens " ", " ", "a" -> " " + "a" = " a" (-3) -> [" ", " a"]
    assert.same(ids(1, " ", " a"), tok:encode(" a"))
    -- multi-byte: "é" is a token; "ü" (C3 BC) is not: its bytes at id byte + 3
    assert.same(ids(1, " ", "é"), tok:encode("é"))
    assert.same(ids(1, " ", 0xC3 + 3, 0xBC + 3), tok:encode("ü"))
    -- three-byte "€" and a CJK pair whose merge exists
    assert.same(ids(1, " ", "€", "x"), tok:encode("€x"))
    assert.same(ids(1, " ", "日本"), tok:encode("日本"))
    -- a merge scoring <= -1e10 never happens (run.c starts its best score there)
    assert.same(ids(1, " ", "x", "x"), tok:encode("xx"))
    -- "bca": "bc" (-2) and "ca" (-2) tie: the leftmost pair merges
    assert.same(ids(1, " ", "bc", "a"), tok:encode("bca"))
    -- a stray continuation byte and a truncated sequence fall back to bytes
    assert.same(ids(1, " ", 0x80 + 3, "a"), tok:encode("\x80a"))
    assert.same(ids(1, " ", 0xE2 + 3, 0x82 + 3), tok:encode("\xE2\x82"))
  end)

  it("matches a plain transcription of run.c on random texts", function()
    local alphabet = { "a", "b", "c", " ", "h", "e", "l", "o", "é", "ü", "€", "\n", "x", "日", "本", "z" }
    local rng = ane.rng(11)
    for _ = 1, 60 do
      local parts = {}
      for _ = 1, math.floor(rng:uniform() * 25) do
        parts[#parts + 1] = alphabet[1 + math.floor(rng:uniform() * #alphabet)]
      end
      local text = table.concat(parts)
      assert.same(ref_encode(text, true, false), tok:encode(text), text)
    end
  end)

  it("decodes by run.c's rules and round-trips", function()
    assert.equal("ab", tok:decode(1, id_of[" ab"]))          -- leading space dropped after BOS
    assert.equal(" ab", tok:decode(5, id_of[" ab"]))
    assert.equal(" ab", tok:decode(nil, id_of[" ab"]))
    assert.equal("A", tok:decode(1, 0x41 + 3))              -- raw byte token <0x41>
    assert.equal(" ", tok:decode(1, 0x20 + 3))              -- a space byte token keeps its space
    for _, text in ipairs({ "hello world", "ab\nbc", "ü€日本x", "  two spaces", "\x80a", "" }) do
      assert.equal(text, tok:decode_all(tok:encode(text)), text)
    end
    assert.equal(" hello", tok:decode_all(tok:encode("hello", { bos = false })))
  end)

  it("rejects ids out of range and bad arguments", function()
    local function err(f, ...) local ok, e = pcall(f, ...) assert.is_false(ok) return e end
    assert.matches("token id 999 out of range %[0, " .. (#pieces - 1) .. "%]", err(tok.decode, tok, 1, 999))
    assert.matches("token id %-1 out of range", err(tok.piece, tok, -1))
    assert.matches("ids%[2%] is 1000000: token ids are integers", err(tok.decode_all, tok, { 1, 1000000 }))
    assert.matches("ids%[1%] is x", err(tok.decode_all, tok, { "x" }))
    assert.matches("unknown option 'bos_id'", err(tok.encode, tok, "a", { bos_id = 1 }))
    local t2 = ane.tokenizer.load(path)
    t2:close()
    assert.matches("ane.Tokenizer is closed", err(t2.encode, t2, "a"))
    assert.equal("ane.Tokenizer (closed)", tostring(t2))
  end)

  it("encodes long texts without quadratic merging", function()
    local text = string.rep("hello abc ", 20000) -- 200 kB
    local out = tok:encode(text)
    assert.is_true(#out < 20000 * 6)
    assert.equal(text, tok:decode_all(out))
  end)

  it("names the file and the problem of a truncated or inconsistent file", function()
    local good = H.read(path)
    local bad = os.tmpname() .. ".bin"
    local function err(...) local ok, e = pcall(ane.tokenizer.load, ...) assert.is_false(ok) return e end
    H.write(bad, good:sub(1, 2))
    assert.matches(H.escape(bad) .. ": truncated tokenizer.bin: 2 bytes", err(bad))
    H.write(bad, good:sub(1, 4 + 8 + 3))
    assert.matches("token 0 needs 5 bytes at byte 12, the file has 15 bytes", err(bad))
    H.write(bad, good:sub(1, 4 + 8 + 5 + 6))
    assert.matches("token 1 needs a score and a length at byte 17", err(bad))
    H.write(bad, string.pack("<i4fi4", 2, 0, 5) .. "<unk>")
    assert.matches("inconsistent tokenizer.bin: token 0 has length 5, the header's max token length is 2", err(bad))
    H.write(bad, string.pack("<i4", -1))
    assert.matches("max token length %-1 is negative", err(bad))
    assert.matches("token " .. #pieces .. " needs a score and a length", err(path, { vocab_size = #pieces + 1 }))
    assert.equal(50, ane.tokenizer.load(path, { vocab_size = 50 }).vocab_size) -- trailing tokens ignored
    for n = 0, 400, 7 do -- every truncation is an error or a shorter vocabulary, never a crash
      H.write(bad, good:sub(1, n))
      pcall(ane.tokenizer.load, bad)
    end
    os.remove(bad)
    assert.matches("cannot open", err(bad))
    assert.matches("unknown option 'vocab'", err(path, { vocab = 3 }))
  end)

  it("needs a ' ' token for run.c's dummy prefix, and byte tokens for its fallback", function()
    local p = os.tmpname() .. ".bin"
    ane.tokenizer.save_bin(p, { "<unk>", "<s>", "</s>", "a" }, { 0, 0, 0, 0 })
    local t = ane.tokenizer.load(p)
    local ok, e = pcall(t.encode, t, "a")
    assert.is_false(ok)
    assert.matches("the vocabulary has no \" \" token, which run.c's encoder needs", e)
    ane.tokenizer.save_bin(p, { "<unk>", "<s>", "</s>", " " }, { 0, 0, 0, 0 })
    t = ane.tokenizer.load(p)
    ok, e = pcall(t.encode, t, "q")
    assert.is_false(ok)
    assert.matches("byte 0x71 of the text falls back to token 116, but the vocabulary has 4 tokens", e)
    os.remove(p)
  end)

  it("save_bin writes llama2.c's layout and checks its arguments", function()
    local p = os.tmpname() .. ".bin"
    assert.is_true(ane.tokenizer.save_bin(p, { "a", "bc" }, { 0.5, -1 }, 7))
    assert.equal(string.pack("<i4fi4", 7, 0.5, 1) .. "a" .. string.pack("<fi4", -1, 2) .. "bc", H.read(p))
    local function err(...) local ok, e = pcall(ane.tokenizer.save_bin, ...) assert.is_false(ok) return e end
    assert.matches("token 1 is 2 bytes, longer than max_len 1", err(p, { "a", "bc" }, { 0, 0 }, 1))
    assert.matches("2 scores for 1 pieces", err(p, { "a" }, { 0, 0 }))
    assert.matches("pieces%[1%] is a number", err(p, { 1 }, { 0 }))
    os.remove(p)
  end)
end)
