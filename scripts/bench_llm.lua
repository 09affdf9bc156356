-- bench_llm.lua: inference speed of ane.llm against llama2.c's run.c (and PyTorch when present),
-- side by side in one run, on a checkpoint this script writes (dim 512, hidden 1376, 8 layers,
-- 8 heads, vocab 512, seq 256, random weights; a tokenizer with a " " token for run.c's dummy
-- prefix). Each speed is also given as a share of the memory-bandwidth bound measured in the same
-- run: one stream read of all the weights with two threads (a decode step reads every weight once).
--
--   build/ane scripts/bench_llm.lua [--rounds N] [--dir DIR]
--   LLAMA2C_RUN=/path/to/built/run   or   LLAMA2C_DIR=/path/with/run.c (built here with
--   cc -Ofast -fopenmp -march=native); OMP_NUM_THREADS=2 for run.c. Without either, run.c is
--   skipped with a message. PyTorch: /usr/bin/python3 with Debian's python3-torch
--   (BENCH_TORCH_PYTHON=... to choose; BENCH_TORCH=0 skips it) on the same shape as an HF dir.
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
  -- the same shape as a Hugging Face directory (for PyTorch and for our HF path); the q/k rows
  -- are taken as stored (HF's rotate-half layout): same speed, different but equally random model
  local ok, cjson = pcall(require, "cjson")
  if ok then
    os.execute("mkdir -p " .. sh(dir .. "/hf"))
    local list = { { "model.embed_tokens.weight", w.embed }, { "model.norm.weight", w.rms_final } }
    local map = { rms_att = "input_layernorm.weight", rms_ffn = "post_attention_layernorm.weight",
      wq = "self_attn.q_proj.weight", wk = "self_attn.k_proj.weight", wv = "self_attn.v_proj.weight",
      wo = "self_attn.o_proj.weight", w1 = "mlp.gate_proj.weight", w3 = "mlp.up_proj.weight",
      w2 = "mlp.down_proj.weight" }
    for l = 1, L do
      for k, name in pairs(map) do list[#list + 1] = { "model.layers." .. (l - 1) .. "." .. name, w[k][l] } end
    end
    table.sort(list, function(a, b) return a[1] < b[1] end)
    local header, off = {}, 0
    for _, e in ipairs(list) do
      header[e[1]] = { dtype = "F32", shape = e[2]:shape(), data_offsets = { off, off + e[2]:nbytes() } }
      off = off + e[2]:nbytes()
    end
    local h = cjson.encode(header)
    h = h .. string.rep(" ", (8 - #h % 8) % 8)
    local parts = { string.pack("<I8", #h) .. h }
    for _, e in ipairs(list) do parts[#parts + 1] = e[2] end
    ane.atomic_write(dir .. "/hf/model.safetensors", parts)
    ane.atomic_write(dir .. "/hf/config.json", cjson.encode {
      architectures = { "LlamaForCausalLM" }, model_type = "llama", hidden_size = D, intermediate_size = H,
      num_hidden_layers = L, num_attention_heads = CFG.n_heads, num_key_value_heads = CFG.n_kv_heads,
      vocab_size = V, max_position_embeddings = CFG.seq, rms_norm_eps = 1e-5, rope_theta = 10000.0,
      tie_word_embeddings = true, hidden_act = "silu", torch_dtype = "float32" })
  end
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
    ane.tokenizer.save_bin(tok_path, pieces, scores)
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

local function child(prec, path)
  local out = readall(string.format("%s %s --child %s %s 2>&1", sh(ANE), sh(THIS), prec, sh(path or model_path)))
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

-- PyTorch (benchmark only): Debian's python3-torch on the HF directory
local torch_py = os.getenv("BENCH_TORCH_PYTHON") or "/usr/bin/python3"
local have_torch = os.getenv("BENCH_TORCH") ~= "0" and io.open(dir .. "/hf/config.json") ~= nil and
  os.execute(sh(torch_py) .. " -c 'import torch' >/dev/null 2>&1")
if not have_torch then print("PyTorch: skipped (no python3-torch for " .. torch_py .. ", or BENCH_TORCH=0)") end
local SCRIPT_DIR = THIS:match("^(.*)/[^/]*$") or "."
local function run_torch()
  local out = readall(string.format("%s %s %s %d %d 2>&1", sh(torch_py), sh(SCRIPT_DIR .. "/bench_llm_torch.py"),
    sh(dir .. "/hf"), PROMPT_LEN, CFG.seq - 1))
  return tonumber(out:match('"prefill": ([%d.e+-]+)')), tonumber(out:match('"decode": ([%d.e+-]+)')), out
end

-- the same text as run.c (greedy, fp32; the continuation of "a")
local text_check
if runc then
  local cmd = string.format("OMP_NUM_THREADS=2 %s %s -z %s -t 0 -n %d -i a 2>/dev/null", sh(runc), sh(model_path),
    sh(tok_path), 64)
  local theirs = readall(cmd)
  local ours = readall(string.format("%s generate %s --tokenizer %s --temperature 0 --steps 64 --prompt a --precision fp32 2>/dev/null",
    sh(ANE), sh(model_path), sh(tok_path)))
  text_check = theirs == ours and "identical" or ("DIFFERENT\n  run.c: " .. theirs .. "\n  ours:  " .. ours)
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
  if have_torch then
    local p, d = run_torch()
    keep("torch_prefill", p)
    keep("torch_decode", d)
  end
  if io.open(dir .. "/hf/config.json") then
    local c = child("fp32", dir .. "/hf")
    keep("hf_decode", c.decode)
    keep("hf_prefill", c.prefill)
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
line("ane.llm fp32 decode, HF dir", best.hf_decode, best.runc_decode)
line("ane.llm fp32 prefill, HF dir", best.hf_prefill, best.runc_prefill)
if best.torch_decode then
  line("PyTorch fp32 decode", best.torch_decode)
  line("PyTorch fp32 prefill", best.torch_prefill)
  print(string.format("  ours / PyTorch: decode %.2fx (fp32), %.2fx (fp16); prefill %.2fx (fp32), %.2fx (fp16)",
    best.fp32_decode / best.torch_decode, best.fp16_decode / best.torch_decode,
    best.fp32_prefill / best.torch_prefill, best.fp16_prefill / best.torch_prefill))
end
if text_check then print("greedy text vs run.c (64 steps, fp32): " .. text_check) end
for _, prec in ipairs { "fp32", "fp16" } do
  local c = rss[prec]
  local base = (weights_bytes + c.kv_bytes) / 1024
  print(string.format("  RSS %s: %.0f MB now, %.0f MB peak; weights + KV cache %.0f MB (now %.2fx, peak %.2fx)",
    prec, c.rss_kb / 1024, c.hwm_kb / 1024, base / 1024, c.rss_kb / base, c.hwm_kb / base))
end
print("files: " .. dir)
