--- ane.data: training data for the training program.
--
-- Two sources:
--   * the research's pretokenized files (`--data`): flat little-endian uint16 token ids, as
--     llama2.c's TinyStories pretokenizer writes them; validated like the research does
--     (length a multiple of 2, at least seq + 1 tokens, every id below the vocab size);
--   * UTF-8 text (`--text`) through a byte-level tokenizer in the llama2.c layout: ids 0, 1, 2 are
--     <unk>, <s> (BOS), </s> (EOS) and 3..258 are the bytes 0..255 (vocab 259); its tokenizer.bin
--     is written next to the run so llama2.c's run.c and ane's generator can decode the model.
--
-- The last `holdout` share (5% by default) of the tokens is held out for the eval loss. Training
-- batches are windows of seq + 1 tokens at positions drawn from a seeded generator whose state
-- is part of the checkpoint, so a resumed run draws exactly the batches an uninterrupted one does.
local ane = require "ane"

local M = {}

-- ---- a seeded generator with a savable state (xoshiro256** over Lua's 64-bit integers) ----
local Rng = {}
Rng.__index = Rng

local function splitmix(x)
  x = x + 0x9e3779b97f4a7c15
  local z = x
  z = (z ~ (z >> 30)) * 0xbf58476d1ce4e5b9
  z = (z ~ (z >> 27)) * 0x94d049bb133111eb
  return x, z ~ (z >> 31)
end

local function rotl(x, k) return (x << k) | (x >> (64 - k)) end

--- rng(seed) -> generator; g:next() (a 64-bit integer), g:below(n) (0 <= r < n),
-- g:state() -> hex string, g:set_state(hex).
function M.rng(seed)
  local s, x = {}, math.tointeger(seed) or error("rng: integer seed expected", 2)
  for i = 1, 4 do x, s[i] = splitmix(x) end
  return setmetatable({ s = s }, Rng)
end

function Rng:next()
  local s = self.s
  local r = rotl(s[2] * 5, 7) * 9
  local t = s[2] << 17
  s[3] = s[3] ~ s[1]; s[4] = s[4] ~ s[2]; s[2] = s[2] ~ s[3]; s[1] = s[1] ~ s[4]
  s[3] = s[3] ~ t; s[4] = rotl(s[4], 45)
  return r
end

function Rng:below(n)
  return math.floor(((self:next() >> 11) * 2.0 ^ -53) * n)
end

function Rng:state()
  local s = self.s
  return string.format("%016x%016x%016x%016x", s[1], s[2], s[3], s[4])
end

function Rng:set_state(hex)
  if type(hex) ~= "string" or not hex:match("^%x+$") or #hex ~= 64 then
    error("rng: bad state " .. tostring(hex), 2)
  end
  for i = 1, 4 do self.s[i] = math.tointeger(tonumber(hex:sub(16 * i - 15, 16 * i - 8), 16) << 32
    | tonumber(hex:sub(16 * i - 7, 16 * i), 16)) end
end

-- ---- token sets ----
local Data = {}
Data.__index = Data

local function fail(msg) error(msg, 0) end

--- from_string(bytes, name, {vocab, seq, holdout = 0.05, align}) -> data set over the uint16
-- token string bytes; name is used in messages (the file's path). Raises a message naming the
-- file on anything invalid. align = seq + 1 makes the data a list of fixed-length examples:
-- windows start only at multiples of align (the split falls on an example boundary too).
function M.from_string(bytes, name, o)
  local vocab, seq = assert(o.vocab, "vocab"), assert(o.seq, "seq")
  local holdout = o.holdout or 0.05
  local align = o.align
  if #bytes % 2 ~= 0 then
    fail(string.format("%s: %d bytes is not a whole number of uint16 tokens (truncated?)", name, #bytes))
  end
  local n = #bytes // 2
  if n < seq + 1 then
    fail(string.format("%s: %d tokens, need at least seq + 1 = %d", name, n, seq + 1))
  end
  local bad, id = ane.nn.tokens_check(bytes, vocab)
  if bad then
    fail(string.format("%s: token id %d at byte offset %d (token %d) is not below the vocab size %d",
      name, id, 2 * bad, bad, vocab))
  end
  if align and (align ~= seq + 1 or n % align ~= 0) then
    fail(string.format("%s: %d tokens are not whole examples of seq + 1 = %d tokens", name, n, seq + 1))
  end
  local neval = math.floor(n * holdout)
  if align then neval = neval - neval % align end
  if neval < seq + 1 then neval = 0 end -- too little for one held-out window: no eval split
  local self = setmetatable({ bytes = bytes, name = name, seq = seq, vocab = vocab,
    ntokens = n, neval = neval, ntrain = n - neval, align = align }, Data)
  if self.ntrain < seq + 1 then
    fail(string.format("%s: %d tokens leave %d for training after the %d%% held-out split, need %d",
      name, n, self.ntrain, math.floor(holdout * 100 + 0.5), seq + 1))
  end
  return self
end

--- open(path, opts) -> data set over a pretokenized uint16 file (see from_string).
function M.open(path, o)
  local f, err = io.open(path, "rb")
  if not f then fail(err) end
  local bytes = f:read("a")
  f:close()
  if not bytes then fail(path .. ": cannot read") end
  return M.from_string(bytes, path, o)
end

-- Reusable int32 batch tensors, sized once per batch size.
function Data:_buffers(b)
  local key = b * self.seq
  if self._n ~= key then
    self._n = key
    self._tok = ane.zeros({ key }, "int32")
    self._tgt = ane.zeros({ key }, "int32")
  end
  return self._tok, self._tgt
end

--- batch(b, rng) -> tokens, targets: int32 [b * seq] tensors (reused by the next call) from b
-- windows of the training split at positions drawn from rng.
function Data:batch(b, rng)
  local tok, tgt = self:_buffers(b)
  local starts, span = {}, self.ntrain - self.seq
  if self.align then
    local count = self.ntrain // self.align
    for i = 1, b do starts[i] = rng:below(count) * self.align end
  else
    for i = 1, b do starts[i] = rng:below(span) end
  end
  ane.nn.tokens_gather(self.bytes, 0, self.ntrain, starts, self.seq, tok, tgt)
  return tok, tgt
end

--- eval_batches(b, max_batches) -> iterator of (tokens, targets) over consecutive windows of the
-- held-out split (the same windows every time); nothing when there is no held-out split.
function Data:eval_batches(b, max_batches)
  local count = self.neval
  local stride = self.align or self.seq
  local windows = count > self.seq and (count - 1 - self.seq) // stride + 1 or 0
  local nb = math.min(max_batches or math.huge, windows // b)
  if nb == 0 and windows > 0 then b, nb = windows, 1 end
  local i = 0
  return function()
    if i >= nb then return nil end
    local tok, tgt = self:_buffers(b)
    local starts = {}
    for k = 1, b do starts[k] = (i * b + k - 1) * stride end
    i = i + 1
    ane.nn.tokens_gather(self.bytes, self.ntrain, count, starts, self.seq, tok, tgt)
    return tok, tgt
  end
end

-- ---- the byte-level tokenizer ----
M.BYTE_VOCAB = 259
M.UNK, M.BOS, M.EOS = 0, 1, 2

-- The piece of every id: printable ASCII as itself (so run.c's encoder finds " " and letters and
-- lands on the same ids as its byte fallback), the other bytes as <0xXX> (run.c's byte pieces).
local function byte_pieces()
  local p = { [0] = "<unk>", "<s>", "</s>" }
  for b = 0, 255 do
    p[b + 3] = (b >= 32 and b < 127) and string.char(b) or string.format("<0x%02X>", b)
  end
  return p
end

--- byte_tokenizer_bin() -> the bytes of a llama2.c tokenizer.bin for the byte-level vocab.
function M.byte_tokenizer_bin()
  local p = byte_pieces()
  local parts = { string.pack("<i4", 6) } -- max_token_length: "<0xFF>"
  for id = 0, M.BYTE_VOCAB - 1 do
    parts[#parts + 1] = string.pack("<fi4", 0.0, #p[id]) .. p[id]
  end
  return table.concat(parts)
end

--- encode_bytes(text) -> uint16 token string: BOS then one token per byte.
function M.encode_bytes(text)
  local out = { string.pack("<I2", M.BOS) }
  local CH = 4096
  for i = 1, #text, CH do
    local chunk = text:sub(i, i + CH - 1)
    local ids = { chunk:byte(1, -1) }
    for k = 1, #ids do ids[k] = ids[k] + 3 end
    out[#out + 1] = string.pack(string.rep("<I2", #ids), table.unpack(ids))
  end
  return table.concat(out)
end

--- open_text(path, opts) -> data set of the UTF-8 text file at path, byte-tokenized (vocab 259).
-- The text must be valid UTF-8 (a clear error names the byte offset otherwise).
function M.open_text(path, o)
  local f, err = io.open(path, "rb")
  if not f then fail(err) end
  local text = f:read("a")
  f:close()
  local ok, pos = utf8.len(text)
  if not ok then fail(string.format("%s: not UTF-8 text (invalid byte at offset %d)", path, pos - 1)) end
  local opts = {}
  for k, v in pairs(o) do opts[k] = v end
  opts.vocab = M.BYTE_VOCAB
  return M.from_string(M.encode_bytes(text), path, opts)
end

return M
