-- The flagship: a small llama-style model learns to reverse a list of digits, from scratch, in
-- a couple of minutes on two CPU cores (or on the ANE), through the same library as
-- examples/train.lua (ane.train: model, AdamW, checkpoints, log, plot, live progress).
--
--   ane examples/train_tiny.lua [--out DIR] [--backend NAME] [--quiet]
--
-- Task: "<s>31415926>62951413\n" - eight random digits, '>', the same digits reversed. The
-- tokens are bytes (ids 3..258, llama2.c's byte layout), so DIR/tokenizer.bin and DIR/model.bin
-- also work in examples/generate.lua. Success: greedy answers on held-out lists (never seen in
-- training) match exactly; the program exits 0 only at >= 95% within 3 minutes of wall time.
local ane = require "ane"
local data = require "ane.data"
local train = require "ane.train"

local DIGITS = 8                     -- list length
local SEQ = 2 * DIGITS + 2           -- <s> digits > reversed \n  = seq + 1 tokens
local GOAL, BUDGET_S = 0.95, 180     -- held-out exact match, wall-clock seconds
local N_TRAIN, N_VAL, N_HELD = 20000, 200, 500 -- distinct lists: train, early stop, report
local CONFIG = { dim = 96, hidden = 256, n_layers = 2, n_heads = 4, n_kv_heads = 4,
  vocab = data.BYTE_VOCAB, seq = SEQ }
local SETTINGS = { "--steps", "800", "--batch", "16", "--lr", "4e-3", "--eval-every", "100",
  "--ckpt-every", "200", "--seed", "1" }

local t_start = ane.now()
local usage = "usage: ane examples/train_tiny.lua [--out DIR] [--backend NAME] [--quiet]"
local out, backend, quiet = (os.getenv("ANE_BUILD") or "build") .. "/train_tiny", nil, false
do
  local i = 1
  while i <= #arg do
    local a = arg[i]
    if a == "--out" and arg[i + 1] then out, i = arg[i + 1], i + 1
    elseif a == "--backend" and arg[i + 1] then backend, i = arg[i + 1], i + 1
    elseif a == "--quiet" then quiet = true
    elseif a == "-h" or a == "--help" then print(usage) os.exit(0)
    else io.stderr:write("train_tiny: unknown argument '", a, "'\n", usage, "\n") os.exit(1) end
    i = i + 1
  end
end
local function say(...) if not quiet then print(string.format(...)) end end

-- ---- the task's data: distinct random lists, held-out ones never in training ----
local BOS, ZERO, SEP, NL = data.BOS, 48 + 3, 62 + 3, 10 + 3  -- ids of <s>, '0', '>', '\n'
local function example(digits)
  local ids = { BOS }
  for i = 1, DIGITS do ids[#ids + 1] = ZERO + digits[i] end
  ids[#ids + 1] = SEP
  for i = DIGITS, 1, -1 do ids[#ids + 1] = ZERO + digits[i] end
  ids[#ids + 1] = NL
  return ids
end

local rng = data.rng(2024)
local seen, lists = {}, {}
while #lists < N_TRAIN + N_VAL + N_HELD do
  local d, key = {}, 0
  for i = 1, DIGITS do d[i] = rng:below(10); key = key * 10 + d[i] end
  if not seen[key] then seen[key] = true; lists[#lists + 1] = d end
end
local val, held = {}, {}
for i = 1, N_VAL do val[i] = lists[N_TRAIN + i] end
for i = 1, N_HELD do held[i] = lists[N_TRAIN + N_VAL + i] end
os.execute("mkdir -p '" .. out:gsub("'", "'\\''") .. "'")
os.remove(out .. "/state.bin") -- the demo always starts fresh
local parts = {}
for i = 1, N_TRAIN do
  local ids = example(lists[i])
  parts[i] = string.pack(string.rep("<I2", #ids), table.unpack(ids))
end
local data_path = out .. "/reverse.bin"
assert(ane.atomic_write(data_path, table.concat(parts)))
local f = assert(io.open(out .. "/config.json", "w"))
f:write(require("ane.checkpoint").json(CONFIG), "\n")
f:close()
assert(ane.atomic_write(out .. "/tokenizer.bin", data.byte_tokenizer_bin()))

say("task: reverse %d digits (\"<s>31415926>62951413\")  model: %d layers, dim %d, hidden %d, "
  .. "%d heads, vocab %d, seq %d", DIGITS, CONFIG.n_layers, CONFIG.dim, CONFIG.hidden,
  CONFIG.n_heads, CONFIG.vocab, CONFIG.seq)
say("data: %d training lists, %d for early stopping, %d held out; goal: >= %d%% held-out exact "
  .. "match within %d s", N_TRAIN, N_VAL, N_HELD, GOAL * 100, BUDGET_S)

-- ---- answers of the model being trained ----
-- Exact match of greedy decoding equals "every answer digit is the argmax given the true digits
-- before it": greedy's first wrong digit is the first position where that fails. So accuracy is
-- one batched forward over the full examples (teacher forcing); the printed examples are decoded
-- greedily, one forward per digit.
-- The model's scores of the last forward, fp32 [B*S, vocab]. Without model:logits(), the
-- training model's own buffer: after the fused loss it holds (softmax - onehot(target)) / N,
-- which orders ids 1.. like the logits when every target is id 0 (<unk>, never an answer).
local function logits_of(model)
  if model.logits then return model:logits() end
  return model.s.logits
end

-- argmax over ids 1..vocab-1 of row `row` of lg (ids are 0-based; 0 is <unk>)
local function argmax(lg, row)
  local best, arg = -math.huge, 0
  for v = 1, CONFIG.vocab - 1 do
    local x = lg:get(row, v + 1)
    if x > best then best, arg = x, v end
  end
  return arg
end

local function batch_of(lists_)
  local B = #lists_
  local tok, tgt = ane.zeros({ B * SEQ }, "int32"), ane.zeros({ B * SEQ }, "int32")
  for b = 1, B do
    local ids = example(lists_[b])
    for j = 1, SEQ do tok[(b - 1) * SEQ + j], tgt[(b - 1) * SEQ + j] = ids[j], ids[j + 1] end
  end
  return tok, tgt
end

-- fraction of lists whose whole answer is right
local function accuracy(model, lists_)
  local tok, tgt = batch_of(lists_)
  model:forward(tok, ane.zeros({ #lists_ * SEQ }, "int32"))
  local lg, right = logits_of(model), 0
  for b = 1, #lists_ do
    local ok = true
    for k = 1, DIGITS do
      local row = (b - 1) * SEQ + DIGITS + 1 + k -- this position's logits predict answer digit k
      if argmax(lg, row) ~= tgt[row] then ok = false; break end
    end
    if ok then right = right + 1 end
  end
  return right / #lists_
end

-- greedy answers (arrays of ids) for a few lists
local function greedy(model, lists_)
  local tok, tgt = batch_of(lists_)
  local answers = {}
  for b = 1, #lists_ do
    answers[b] = {}
    for j = DIGITS + 3, SEQ do tok[(b - 1) * SEQ + j] = 0 end -- hide the answer
  end
  local zero = ane.zeros({ #lists_ * SEQ }, "int32")
  for k = 1, DIGITS do
    model:forward(tok, zero)
    local lg = logits_of(model)
    for b = 1, #lists_ do
      local row = (b - 1) * SEQ + DIGITS + 1 + k
      answers[b][k] = argmax(lg, row)
      if k < DIGITS then tok[row + 1] = answers[b][k] end
    end
  end
  for b = 1, #lists_ do
    local ok = true
    for k = 1, DIGITS do
      if answers[b][k] ~= ZERO + lists_[b][DIGITS + 1 - k] then ok = false end
    end
    answers[b].ok = ok
  end
  return answers
end

local function show(list, ans)
  local s, r = {}, {}
  for i = 1, DIGITS do s[i] = tostring(list[i]) end
  for k = 1, DIGITS do r[k] = ans[k] >= 3 and ans[k] < 259 and string.char(ans[k] - 3) or "?" end
  return table.concat(s) .. ">" .. table.concat(r)
end

-- ---- train (ane.train does the loop, log, checkpoints, plot and progress) ----
local argv = { "--out", out, "--config", out .. "/config.json", "--data", data_path }
for _, a in ipairs(SETTINGS) do argv[#argv + 1] = a end
if backend then argv[#argv + 1] = "--backend"; argv[#argv + 1] = backend end
if quiet then argv[#argv + 1] = "--quiet" end
local opts = train.parse_args(argv)
-- initial weights ~ N(0, 0.06^2), about PyTorch's default for 96 inputs: at GPT-2's 0.02 a model
-- this small sits on the loss plateau of "digits are uniform" for hundreds of steps
opts.init_std = 0.06
local acc
local ok, model = pcall(train.run, opts, {
  keep_model = true,
  data = function(cfg)
    return data.open(data_path, { vocab = cfg.vocab, seq = cfg.seq, align = cfg.seq + 1 })
  end,
  after_step = function(step, model)
    if step >= 150 and step % 50 == 0 then -- stop once the validation lists are solved, or out of time
      local a = accuracy(model, val)
      say("  step %d: exact match on the %d validation lists %.1f%%", step, N_VAL, 100 * a)
      if a >= 0.995 then return "stop" end
    end
    if ane.now() - t_start > BUDGET_S - 25 then return "stop" end
  end,
})
if not ok then
  io.stderr:write("train_tiny: ", tostring(model), "\n")
  os.exit(1)
end

acc = accuracy(model, held)
local shown = {}
for i = 1, 6 do shown[i] = held[i] end
local answers = greedy(model, shown)
local wall = ane.now() - t_start
say("\nheld-out exact match: %.1f%% of %d lists (goal %d%%), %.0f s of wall time (budget %d s)",
  100 * acc, N_HELD, GOAL * 100, wall, BUDGET_S)
say("held-out examples (input > the model's greedy answer):")
for i = 1, 6 do
  say("  %s  %s", show(held[i], answers[i]), answers[i].ok and "right" or "WRONG")
end
say("files: %s/log.jsonl, %s/loss.svg, %s/model.bin (llama2.c format), %s/tokenizer.bin", out, out, out, out)
model:close()
if acc >= GOAL and wall <= BUDGET_S then
  say("goal reached")
  os.exit(0)
end
io.stderr:write(string.format("train_tiny: goal missed: %.1f%% held-out exact match in %.0f s (need >= %d%% within %d s)\n",
  100 * acc, wall, GOAL * 100, BUDGET_S))
os.exit(1)
