-- bench_llm.lua: inference speed of ane.llm against llama2.c's run.c (and PyTorch when present),
-- side by side in one run, on a checkpoint this script writes (dim 512, hidden 1376, 8 layers,
-- 8 heads, vocab 512, seq 256, random weights; a tokenizer with a " " token for run.c's dummy
-- prefix). Each speed is also given as a share of the memory-bandwidth bound measured in the same
-- run: one stream read of all the weights with two threads (a decode step reads every weight once).
--
--   build/ane scripts/bench_llm.lua [--rounds N] [--dir DIR]
--   LLAMA2C_RUN=/path/to/built/run   or   LLAMA2C_DIR=/path/with/run.c (built here with
--   cc -Ofast -fopenmp -march=native); OMP_NUM_THREADS=2 for run.c. Without either, run.c is
--   skipped with a message. BENCH_TORCH=0 skips PyTorch.
--
-- Rounds interleave the programs (the machine is shared): each figure is the best of its rounds,
-- and the ratios are of those bests. Each of our runs is a child process, so its RSS is its own.
local ane = require "ane"

local THIS = debug.getinfo(1, "S").source:sub(2)
local ANE = (os.getenv("ANE_BUILD") or "build") .. "/ane"

local function sh(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function readall(cmd)
  local p = io.popen(cmd, "r")
  local s = p:read("a")
  p:close()
  return s
end

local CFG = { dim = 512, hidden = 1376, n_layers = 8, n_heads = 8, n_kv_heads = 8, vocab = 512, seq = 256,
  shared_classifier = true }
local PROMPT_LEN = 128 -- prefill length (tokens, BOS included)

-- ===================================================================
-- child: one configuration of ours, printed as key=value
-- ===================================================================
if arg[1] == "--child" then
  local llm = require "ane.llm"
  local prec, path = arg[2], arg[3]
  local m = llm.load(path, { precision = prec })
  collectgarbage("collect")
  local prompt = { 1 }
  for i = 2, PROMPT_LEN do prompt[i] = 3 + (i * 37) % (CFG.vocab - 3) end
  -- warm up: every kernel shape compiled once
  m:step(prompt)
  for _ in m:generate({ 1 }, { temperature = 0, steps = CFG.seq, eos = false }) do end
  local best_p, best_d = math.huge, math.huge
  for _ = 1, 2 do
    m:reset()
    local t0 = ane.now()
    m:step(prompt)
    best_p = math.min(best_p, ane.now() - t0)
    local ids = {}
    for id in m:generate({ 1 }, { temperature = 0, steps = CFG.seq, eos = false }) do ids[#ids + 1] = id end
    best_d = math.min(best_d, m.stats.decode_s / m.stats.decode_tokens)
  end
  local rss, hwm = 0, 0
  local f = io.open("/proc/self/status")
  if f then
    for l in f:lines() do
      rss = tonumber(l:match("^VmRSS:%s+(%d+)")) or rss
      hwm = tonumber(l:match("^VmHWM:%s+(%d+)")) or hwm
    end
    f:close()
  end
  local kv = m.kc:nbytes() + m.vc:nbytes()
  print(string.format("prefill=%.3f decode=%.3f rss_kb=%d hwm_kb=%d kv_bytes=%d", PROMPT_LEN / best_p,
    1 / best_d, rss, hwm, kv))
  m:close()
  os.exit(0)
end

-- ===================================================================
-- main
-- ===================================================================
local rounds, dir = 3, nil
do
  local i = 1
  while i <= #arg do
    if arg[i] == "--rounds" then rounds = tonumber(arg[i + 1]); i = i + 2
    elseif arg[i] == "--dir" then dir = arg[i + 1]; i = i + 2
    else error("bench_llm: unknown argument " .. arg[i]) end
  end
end
if not dir then
  dir = os.tmpname()
  os.remove(dir)
end
os.execute("mkdir -p " .. sh(dir))
local model_path, tok_path = dir .. "/model.bin", dir .. "/tokenizer.bin"

-- the checkpoint: random weights, std chosen so activations stay O(1)
do
  local L, D, H, V = CFG.n_layers, CFG.dim, CFG.hidden, CFG.vocab
  local function r(s, seed, std) return ane.rand(s, { dist = "normal", std = std, seed = seed, dtype = "fp32" }) end
  local w = {
    embed = r({ V, D }, 1, 1), rms_att = ane.full({ L, D }, 1, "fp32"), wq = r({ L, D, D }, 2, 0.05),
    wk = r({ L, D, D }, 3, 0.05), wv = r({ L, D, D }, 4, 0.05), wo = r({ L, D, D }, 5, 0.05),
    rms_ffn = ane.full({ L, D }, 1, "fp32"), w1 = r({ L, H, D }, 6, 0.05), w2 = r({ L, D, H }, 7, 0.03),
    w3 = r({ L, H, D }, 8, 0.05), rms_final = ane.full({ D }, 1, "fp32"),
  }
  w.wcls = w.embed
  ane.llama2c.save(model_path, CFG, w)
end
-- the tokenizer: <unk> <s> </s>, 256 byte tokens, " ", letters, " "+letter, letter pairs
do
  local pieces = { "<unk>", "<s>", "</s>" }
  for b = 0, 255 do pieces[#pieces + 1] = string.format("<0x%02X>", b) end
  pieces[#pieces + 1] = " "
  local al = "abcdefghijklmnopqrstuvwxyz"
  for c in al:gmatch(".") do pieces[#pieces + 1] = c end
  for c in al:gmatch(".") do pieces[#pieces + 1] = " " .. c end
  for a in al:gmatch(".") do
    for b in al:gmatch(".") do
      if #pieces < CFG.vocab then pieces[#pieces + 1] = a .. b end
    end
  end
  local scores = {}
  for i = 1, #pieces do scores[i] = i > 259 and -(i - 1) or 0.0 end
  if ane.tokenizer and ane.tokenizer.save_bin then
    ane.tokenizer.save_bin(tok_path, pieces, scores, 3)
  else
    local parts = { string.pack("<i4", 5) }
    for i, p in ipairs(pieces) do parts[#parts + 1] = string.pack("<fi4", scores[i], #p) .. p end
    local f = assert(io.open(tok_path, "wb"))
    f:write(table.concat(parts))
    f:close()
  end
end

-- run.c
local runc = os.getenv("LLAMA2C_RUN")
if not runc and os.getenv("LLAMA2C_DIR") then
  local src = os.getenv("LLAMA2C_DIR") .. "/run.c"
  runc = dir .. "/run"
  local cc = os.getenv("CC") or "cc"
  if not os.execute(string.format("%s -Ofast -fopenmp -march=native %s -lm -o %s", cc, sh(src), sh(runc))) then
    print("run.c: build failed (" .. src .. "); skipped")
    runc = nil
  end
end
if not runc then print("run.c: skipped (set LLAMA2C_RUN to a built run, or LLAMA2C_DIR to a directory with run.c)") end

local function run_runc(prompt, steps)
  local cmd = string.format("OMP_NUM_THREADS=2 %s %s -z %s -t 0 -n %d -i %s 2>&1 >/dev/null", sh(runc), sh(model_path),
    sh(tok_path), steps, sh(prompt))
  local out = readall(cmd)
  return tonumber(out:match("achieved tok/s: ([%d.]+)")), out
end

local function child(prec)
  local out = readall(string.format("%s %s --child %s %s", sh(ANE), sh(THIS), prec, sh(model_path)))
  local r = {}
  for k, v in out:gmatch("([%w_]+)=([%d.]+)") do r[k] = tonumber(v) end
  if not r.decode then error("bench_llm: child " .. prec .. " failed:\n" .. out) end
  return r
end

-- bytes a decode step reads: every weight once (the classifier is the embedding here)
local weights_bytes
local function bound_read()
  local ck = ane.llama2c.load(model_path)
  local seen, t, bytes = {}, 0, 0
  for _, w in pairs(ck.weights) do
    if not seen[w] then
      seen[w] = true
      ane.nn.stream_read(w, 2) -- pages in
      t = t + ane.nn.stream_read(w, 2)
      bytes = bytes + w:nbytes()
    end
  end
  weights_bytes = bytes
  return bytes / t
end

local best = {}
local function keep(k, v, hi)
  if v and (best[k] == nil or v > best[k]) then best[k] = v end
end
local rc_prompt = string.rep("a ", PROMPT_LEN - 1):sub(1, -2) -- BOS + 127 x " a"
local rss = {}
for r = 1, rounds do
  keep("bw", bound_read())
  if runc then
    local d = run_runc("a", CFG.seq)
    keep("runc_decode", d)
    keep("runc_prefill", run_runc(rc_prompt, PROMPT_LEN))
  end
  for _, prec in ipairs { "fp32", "fp16" } do
    local c = child(prec)
    keep(prec .. "_decode", c.decode)
    keep(prec .. "_prefill", c.prefill)
    rss[prec] = c
  end
  io.stderr:write(string.format("round %d/%d done\n", r, rounds))
end

local bound = best.bw / weights_bytes -- tok/s if a step only read the weights
print(string.format("checkpoint: dim %d, hidden %d, %d layers, %d heads, vocab %d, seq %d; weights %.1f MB",
  CFG.dim, CFG.hidden, CFG.n_layers, CFG.n_heads, CFG.vocab, CFG.seq, weights_bytes / 1e6))
print(string.format("stream read (2 threads): %.1f GB/s -> bandwidth bound %.0f tok/s (fp32 weights)", best.bw / 1e9, bound))
print(string.format("best of %d rounds, tok/s (share of the bound):", rounds))
local function line(name, v, ref)
  if not v then return end
  local s = string.format("  %-28s %8.1f  (%3.0f%%)", name, v, 100 * v / bound)
  if ref then s = s .. string.format("  %.2fx run.c", v / ref) end
  print(s)
end
line("run.c decode", best.runc_decode)
line("run.c prefill (1 tok/step)", best.runc_prefill)
for _, prec in ipairs { "fp32", "fp16" } do
  line("ane.llm " .. prec .. " decode", best[prec .. "_decode"], best.runc_decode)
  line("ane.llm " .. prec .. " prefill", best[prec .. "_prefill"], best.runc_prefill)
end
for _, prec in ipairs { "fp32", "fp16" } do
  local c = rss[prec]
  local base = (weights_bytes + c.kv_bytes) / 1024
  print(string.format("  RSS %s: %.0f MB now, %.0f MB peak; weights + KV cache %.0f MB (now %.2fx, peak %.2fx)",
    prec, c.rss_kb / 1024, c.hwm_kb / 1024, base / 1024, c.rss_kb / base, c.hwm_kb / base))
end
print("files: " .. dir)
