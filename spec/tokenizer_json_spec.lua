-- Hugging Face tokenizer.json through ane.tokenizer.load: a SentencePiece-style BPE (Llama's
-- Prepend + Replace normalizer, byte fallback, Strip decoder) and a byte-level BPE (Qwen2's NFC,
-- Split regex compiled by Oniguruma, ByteLevel), both tiny fixtures written here. Expected
-- encodings are worked out by hand from the merge ranks, written as pieces.
local ane = require "ane"
local cjson = require "cjson"
local H = require "helpers"

local function write_json(t)
  local dir = H.tmpdir()
  H.write(dir .. "/tokenizer.json", cjson.encode(t))
  return dir
end

local function err(f, ...)
  local ok, e = pcall(f, ...)
  assert.is_false(ok, "expected an error")
  return tostring(e)
end

-- ---- SentencePiece-style (Llama) ----
local sp_extra = { "▁", "a", "b", "▁a", "ab", "▁ab", "▁▁", "h", "i", "hi", "▁hi", "é", "▁b", "c" }
local function sp_json(over)
  local vocab = { ["<unk>"] = 0, ["<s>"] = 1, ["</s>"] = 2 }
  for b = 0, 255 do vocab[string.format("<0x%02X>", b)] = 3 + b end
  for i, p in ipairs(sp_extra) do vocab[p] = 258 + i end
  local j = {
    version = "1.0",
    added_tokens = {
      { id = 0, content = "<unk>", special = true }, { id = 1, content = "<s>", special = true },
      { id = 2, content = "</s>", special = true },
    },
    normalizer = { type = "Sequence", normalizers = {
      { type = "Prepend", prepend = "▁" }, { type = "Replace", pattern = { String = " " }, content = "▁" } } },
    post_processor = { type = "TemplateProcessing",
      single = { { SpecialToken = { id = "<s>", type_id = 0 } }, { Sequence = { id = "A", type_id = 0 } } },
      special_tokens = { ["<s>"] = { id = "<s>", ids = { 1 }, tokens = { "<s>" } } } },
    decoder = { type = "Sequence", decoders = {
      { type = "Replace", pattern = { String = "▁" }, content = " " }, { type = "ByteFallback" }, { type = "Fuse" },
      { type = "Strip", content = " ", start = 1, stop = 0 } } },
    model = { type = "BPE", unk_token = "<unk>", fuse_unk = true, byte_fallback = true, vocab = vocab,
      merges = { "a b", "▁ ab", "▁ a", "h i", "▁ hi", "▁ ▁", "▁ b" } },
  }
  for k, v in pairs(over or {}) do j[k] = v end
  return j, vocab
end

-- ---- byte-level (Qwen2) ----
local function bl_char(b) -- GPT-2's bytes_to_unicode
  if (b >= 33 and b <= 126) or (b >= 161 and b <= 172) or b >= 174 then return utf8.char(b) end
  local k = 0
  for x = 0, b - 1 do
    if not ((x >= 33 and x <= 126) or (x >= 161 and x <= 172) or x >= 174) then k = k + 1 end
  end
  return utf8.char(256 + k)
end
local QWEN = [[(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+]]
local bl_merges = { { "H", "e" }, { "l", "l" }, { "ll", "o" }, { "He", "llo" }, { "Ġ", "w" }, { "o", "r" },
  { "l", "d" }, { "or", "ld" }, { "Ġw", "orld" }, { "'", "m" }, { "Ġ", "x" }, { "Ã", "©" }, { "1", "2" },
  { "'", "M" } }
local function bl_json(over)
  local vocab, n = {}, 0
  for b = 0, 255 do vocab[bl_char(b)] = b end
  n = 256
  for _, m in ipairs(bl_merges) do vocab[m[1] .. m[2]] = n; n = n + 1 end
  local j = {
    added_tokens = { { id = n, content = "<|endoftext|>", special = true }, { id = n + 1, content = "<|im_start|>", special = true } },
    normalizer = { type = "NFC" },
    pre_tokenizer = { type = "Sequence", pretokenizers = {
      { type = "Split", pattern = { Regex = QWEN }, behavior = "Isolated", invert = false },
      { type = "ByteLevel", add_prefix_space = false, trim_offsets = false, use_regex = false } } },
    post_processor = { type = "ByteLevel", add_prefix_space = false, trim_offsets = false, use_regex = false },
    decoder = { type = "ByteLevel", add_prefix_space = false, trim_offsets = false, use_regex = false },
    model = { type = "BPE", unk_token = cjson.null, continuing_subword_prefix = "", end_of_word_suffix = "",
      fuse_unk = false, byte_fallback = false, vocab = vocab, merges = {} },
  }
  for i, m in ipairs(bl_merges) do j.model.merges[i] = i % 2 == 0 and (m[1] .. " " .. m[2]) or { m[1], m[2] } end
  vocab["<|endoftext|>"] = nil
  for k, v in pairs(over or {}) do j[k] = v end
  return j, vocab, n
end

describe("tokenizer.json, SentencePiece-style BPE", function()
  local j, vocab = sp_json()
  local dir = write_json(j)
  local tok = ane.tokenizer.load(dir)
  local function ids(...)
    local out = {}
    for _, p in ipairs({ ... }) do out[#out + 1] = type(p) == "number" and p or assert(vocab[p], p) end
    return out
  end

  it("reads the fields", function()
    assert.equal("bpe", tok.kind)
    assert.equal(259 + #sp_extra, tok.vocab_size)
    assert.equal(1, tok.bos_id)
    assert.equal(2, tok.eos_id)
    assert.is_true(tok.add_bos)
    assert.equal(vocab["▁ab"], tok:id("▁ab"))
  end)

  it("encodes by merge rank with Prepend and Replace (hand-computed)", function()
    assert.same(ids(1, "▁ab"), tok:encode("ab"))              -- a+b (rank 1) before ▁+a (rank 3)
    assert.same(ids("▁ab"), tok:encode("ab", { bos = false }))
    assert.same(ids(1, "▁ab", 2), tok:encode("ab", { eos = true }))
    assert.same(ids(1, "▁a", "▁b"), tok:encode("a b"))
    assert.same(ids(1, "▁▁", "▁a"), tok:encode("  a"))        -- leading spaces: ▁a first, then ▁▁
    assert.same(ids(1, "▁", "é"), tok:encode("é"))
    assert.same(ids(1, "▁", 3 + 0xC3, 3 + 0xBC), tok:encode("ü")) -- byte fallback <0xC3><0xBC>
    assert.same(ids(1, "▁", 3 + 0xE2, 3 + 0x82, 3 + 0xAC), tok:encode("€"))
    assert.same(ids(1, "▁hi", 2, "▁b"), tok:encode("hi</s>b")) -- special token first; each side normalized
    assert.same({ 1 }, tok:encode(""))
  end)

  it("decodes: ▁ as space, byte tokens as bytes, one leading space stripped", function()
    assert.equal("ab", tok:decode_all(tok:encode("ab")))
    assert.equal("ab", tok:decode(1, vocab["▁ab"]))
    assert.equal(" ab", tok:decode(5, vocab["▁ab"]))
    assert.equal("\xC3", tok:decode(5, 3 + 0xC3))
    for _, s in ipairs({ "  a", "ü€é", "a b hi" }) do
      assert.equal(s, tok:decode_all(tok:encode(s)), s)
    end
    -- the segment after a special token gets its own prefix "▁" (as in the Rust crate)
    assert.equal("hi</s> b", tok:decode_all(tok:encode("hi</s>b")))
  end)

  it("runs a Metaspace pre-tokenizer", function()
    local jm = sp_json({ normalizer = cjson.null,
      pre_tokenizer = { type = "Metaspace", replacement = "▁", prepend_scheme = "first", split = true },
      decoder = { type = "Metaspace", replacement = "▁", prepend_scheme = "first", split = true } })
    local t = ane.tokenizer.load(write_json(jm))
    assert.same(ids(1, "▁a", "▁b"), t:encode("a b"))
    assert.same(ids(1, "▁ab", 2, "b"), t:encode("ab</s>b"))  -- "first": no ▁ after a special token
    assert.equal("a b", t:decode_all(t:encode("a b")))
  end)
end)

describe("tokenizer.json, byte-level BPE", function()
  local j, vocab, n = bl_json()
  local dir = write_json(j)
  local tok = ane.tokenizer.load(dir .. "/tokenizer.json")
  local function ids(...)
    local out = {}
    for _, p in ipairs({ ... }) do out[#out + 1] = type(p) == "number" and p or assert(vocab[p], p) end
    return out
  end
  local function bytes(s) local out = {} for i = 1, #s do out[i] = s:byte(i) end return out end

  it("reads the fields", function()
    assert.is_nil(tok.bos_id)
    assert.equal(n, tok.eos_id)                                 -- <|endoftext|>
    assert.is_false(tok.add_bos)
    assert.equal(n + 2, tok.vocab_size)
  end)

  it("splits with Qwen's regex and merges by rank (hand-computed)", function()
    assert.same(ids("Hello", "Ġworld"), tok:encode("Hello world"))
    assert.same(ids("I", "'m"), tok:encode("I'm"))               -- a contraction
    assert.same(ids("I", "'M"), tok:encode("I'M"))               -- (?i:...) matches 'M too
    assert.same(bytes("12345"), tok:encode("12345"))             -- \p{N}: one digit per word, so no "12"
    assert.same(ids("Ġ", "Ġx"), tok:encode("  x"))              -- \s+(?!\S) leaves the last space to " x"
    assert.same(bytes("a\n\nb"), tok:encode("a\n\nb"))
    assert.same(ids("Ã©"), tok:encode("é"))                     -- two bytes, one merge
    assert.same(ids("Ã©"), tok:encode("e\u{301}"))               -- NFC first
    assert.same({ 104, 105, n, n + 1 }, tok:encode("hi<|endoftext|><|im_start|>"))
    assert.same({ n }, tok:encode("<|endoftext|>", { bos = true })) -- no BOS to add
  end)

  it("decodes bytes back and round-trips", function()
    for _, s in ipairs({ "Hello world", "I'm 12345  x", "a\n\nb é €日本", "hi<|endoftext|>!" }) do
      assert.equal(s, tok:decode_all(tok:encode(s)), s)
    end
    assert.equal(" world", tok:decode(nil, vocab["Ġworld"]))
    assert.equal("<|endoftext|>", tok:decode(nil, n))
  end)

  it("runs GPT-2's regex when ByteLevel has use_regex", function()
    local jg = bl_json({ normalizer = cjson.null,
      pre_tokenizer = { type = "ByteLevel", add_prefix_space = true, use_regex = true } })
    local t = ane.tokenizer.load(write_json(jg))
    -- add_prefix_space: " Hello world" -> " Hello", " world"; there is no "Ġ H" merge
    assert.same(ids("Ġ", "Hello", "Ġworld"), t:encode("Hello world"))
    assert.same(ids("Ġ", "Hello"), t:encode("Hello"))
    -- GPT-2's pattern keeps digit runs together (" ?\p{N}+"), so "1 2" merges here
    assert.same(ids("Ġ", "I", "'m", "Ġ", "12"), t:encode("I'm 12"))
  end)

  it("rejects bad input: invalid UTF-8, ids out of range", function()
    assert.matches("not valid UTF%-8 at byte 2", err(tok.encode, tok, "a\xff"))
    assert.matches("token id " .. (n + 2) .. " out of range", err(tok.decode, tok, nil, n + 2))
  end)
end)

describe("tokenizer.json errors", function()
  local function load_err(j)
    local dir = write_json(j)
    return err(ane.tokenizer.load, dir)
  end

  it("names components ane does not implement", function()
    assert.matches("tokenizer.json: normalizer Lowercase is not implemented by ane",
      load_err(sp_json({ normalizer = { type = "Lowercase" } })))
    assert.matches("pre_tokenizer Whitespace is not implemented", load_err(sp_json({ pre_tokenizer = { type = "Whitespace" } })))
    assert.matches("decoder CTC is not implemented", load_err(sp_json({ decoder = { type = "CTC" } })))
    assert.matches("post_processor BertProcessing is not implemented",
      load_err(sp_json({ post_processor = { type = "BertProcessing" } })))
    local j = sp_json()
    j.model.type = "WordPiece"
    assert.matches("model WordPiece is not implemented", load_err(j))
    j = sp_json()
    j.model.dropout = 0.1
    assert.matches("model BPE option dropout is not implemented", load_err(j))
    assert.matches("Split behavior \"Contiguous\" is not implemented", load_err(bl_json({ pre_tokenizer = {
      type = "Split", pattern = { Regex = "a" }, behavior = "Contiguous" } })))
  end)

  it("names broken content", function()
    local j = sp_json()
    j.model.merges = { "a zz" }
    assert.matches("merge 1 %(\"a zz\"%): its right part is not in the vocabulary", load_err(j))
    j.model.merges = { "abc" }
    assert.matches("merge 1 %(\"abc\"%) is not two tokens separated by one space", load_err(j))
    assert.matches("does not compile with Oniguruma", load_err(bl_json({ pre_tokenizer = {
      type = "Split", pattern = { Regex = "(?<" }, behavior = "Isolated" } })))
    local dir = H.tmpdir()
    H.write(dir .. "/tokenizer.json", "{ not json")
    assert.matches(H.escape(dir) .. "/tokenizer.json: not valid JSON", err(ane.tokenizer.load, dir))
    assert.matches("no tokenizer.json or tokenizer.bin", err(ane.tokenizer.load, H.tmpdir()))
    j = sp_json()
    j.added_tokens[2].id = 5
    assert.matches("added token <s> has id 5, which model.vocab gives to <0x02>", load_err(j))
  end)
end)
