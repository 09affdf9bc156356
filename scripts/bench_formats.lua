-- Formats: loading a llama2.c checkpoint by mmap against reading its bytes (wall time), and
-- tokenizer encode speed under llama2.c's rules as the text grows (CPU time, best of 3), all in
-- one run: the ratios are what counts. The tokenizer is synthetic (frequent substrings of a
-- random-word text), so tokens per byte differ from a real model's.
-- Run: ANE_ROOT=. build/ane scripts/bench_formats.lua [small]   ("small": a 15M-shaped checkpoint)
local ane = require "ane"

local small = arg and arg[1] == "small"
-- Stories110M's shape (dim 768, 12 layers, vocab 32000), or Stories15M's
local cfg = small and { dim = 288, hidden = 768, n_layers = 6, n_heads = 6, n_kv_heads = 6, vocab = 32000, seq = 256 }
  or { dim = 768, hidden = 2048, n_layers = 12, n_heads = 12, n_kv_heads = 12, vocab = 32000, seq = 1024 }
local now = ane.clock

local function shapes(c)
  local L, d, h = c.n_layers, c.dim, c.hidden
  return { embed = { c.vocab, d }, rms_att = { L, d }, wq = { L, d, d }, wk = { L, d, d }, wv = { L, d, d },
    wo = { L, d, d }, rms_ffn = { L, d }, w1 = { L, h, d }, w2 = { L, d, h }, w3 = { L, h, d }, rms_final = { d } }
end

local path = os.tmpname() .. ".bin"
local w = {}
for k, s in pairs(shapes(cfg)) do w[k] = ane.rand(s, { seed = #k, dtype = "fp32" }) end
local t0 = now()
ane.llama2c.save(path, cfg, w)
local t_save = now() - t0
w = nil
collectgarbage()
local size = #assert(io.open(path, "rb")):read("a")
collectgarbage()
print(string.format("checkpoint %s: %.1f MB, saved (atomic, fsync) in %.0f ms", small and "15M-shaped" or "110M-shaped",
  size / 1e6, t_save * 1e3))

local function best(n, f, clock)
  clock = clock or now
  local b = math.huge
  for _ = 1, n do
    collectgarbage()
    local s = clock()
    f()
    b = math.min(b, clock() - s)
  end
  return b
end
local t_map = best(5, function() local ck = ane.llama2c.load(path); ck.weights.embed:close() end)
local t_read = best(5, function() local f = io.open(path, "rb"); local s = f:read("a"); f:close(); assert(#s == size) end)
local t_touch = best(3, function()
  local ck = ane.llama2c.load(path)
  local sum = 0
  for _, k in ipairs({ "embed", "wq", "w1", "w2" }) do
    local t = ck.weights[k]
    local flat = t:reshape({ t:numel() })
    sum = sum + flat:get(1) + flat:get(t:numel())
  end
  return sum
end)
print(string.format("llama2c.load (mmap):            %8.3f ms", t_map * 1e3))
print(string.format("reading the file into memory:   %8.3f ms  (%.0fx the mmap load)", t_read * 1e3, t_read / t_map))
print(string.format("load + first and last element of 4 tensors: %.3f ms", t_touch * 1e3))
os.remove(path)

-- A tokenizer.bin: the 256 byte tokens and 31k pieces, the most frequent substrings of a text.
local rng = ane.rng(5)
local words = {}
for i = 1, 2000 do
  local n, s = 2 + math.floor(rng:uniform() * 7), {}
  for j = 1, n do s[j] = string.char(97 + math.floor(rng:uniform() * 26)) end
  words[i] = table.concat(s)
end
local function text_of(nbytes)
  local out, len = {}, 0
  while len < nbytes do
    local wd = words[1 + math.floor(rng:uniform() ^ 2 * #words)]
    out[#out + 1] = wd
    len = len + #wd + 1
  end
  return table.concat(out, " ")
end
local corpus = text_of(400000)
local count = {}
for wd in corpus:gmatch("%S+") do
  local s = " " .. wd
  for i = 1, #s do
    for j = i + 1, math.min(#s, i + 7) do local p = s:sub(i, j); count[p] = (count[p] or 0) + 1 end
  end
end
local cand = {}
for p, n in pairs(count) do cand[#cand + 1] = { p, n } end
table.sort(cand, function(a, b) return a[2] > b[2] or (a[2] == b[2] and a[1] < b[1]) end)
local pieces, scores = { "<unk>", "\n<s>\n", "\n</s>\n" }, { 0, 0, 0 }
for b = 0, 255 do pieces[#pieces + 1] = string.format("<0x%02X>", b); scores[#scores + 1] = 0 end
pieces[#pieces + 1] = " "; scores[#scores + 1] = 0
for c = 97, 122 do pieces[#pieces + 1] = string.char(c); scores[#scores + 1] = 0 end
for i = 1, math.min(#cand, 32000 - #pieces) do
  if #cand[i][1] > 1 then pieces[#pieces + 1] = cand[i][1]; scores[#scores + 1] = -i end
end
local tpath = os.tmpname() .. ".bin"
ane.tokenizer.save_bin(tpath, pieces, scores)
local tok = ane.tokenizer.load(tpath)
os.remove(tpath)
print(string.format("tokenizer.bin: %d tokens", tok.vocab_size))
local base
for _, n in ipairs({ 1000, 10000, 100000, 1000000 }) do
  local text = text_of(n)
  local ids
  local t = best(3, function() ids = tok:encode(text) end, os.clock) -- CPU time: the machine is shared
  assert(tok:decode_all(ids) == text)
  local per = t / #text
  base = base or per
  print(string.format("encode %8d bytes -> %7d tokens: %8.2f ms  %6.2f MB/s  (%.2fx the time per byte of 1 kB)",
    #text, #ids, t * 1e3, #text / t / 1e6, per / base))
end
