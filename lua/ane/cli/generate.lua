--- `ane generate MODEL [flags]` (also examples/generate.lua): text generation as llama2.c's run.c
-- prints it (the prompt echoed, then the continuation), with the prefill and decode speeds on
-- stderr. MODEL is a llama2.c .bin or a Hugging Face model directory.
local ane = require "ane"
local llm = require "ane.llm"

local USAGE = [[
usage: ane generate MODEL [flags]      (or: ane examples/generate.lua MODEL [flags])
  MODEL                 a llama2.c .bin checkpoint or a Hugging Face model directory
  --tokenizer F         tokenizer (default: tokenizer.bin next to a .bin; the model dir for HF)
  --prompt S            prompt text (default: empty, i.e. BOS only)
  --prompt-file F       prompt read from a file
  --steps N             positions to run, prompt included, as run.c counts (default 256; 0 = max)
  --temperature T       0 = greedy (default 1.0)
  --topp P              nucleus sampling (default 0.9, as run.c; 0 or 1 = off)
  --topk K              keep the K most likely (default 0 = off)
  --repetition-penalty R  (default 1 = off)
  --seed S              random seed (default: the time)
  --stop S              stop before this text (repeatable)
  --precision fp16|fp32 numerics (default fp16, the ANE's)
  --backend NAME        kernel backend (default: ane.backend())
  --max-seq N           KV-cache length (default: the model's, at most 2048)
  --chat                a conversation on stdin using tokenizer_config.json's chat template
  --system S            system message for --chat
]]

local function fail(msg)
  io.stderr:write("generate: ", msg, "\n")
  return 2
end

local function parse(args)
  local o = { temperature = 1.0, topp = 0.9, topk = 0, steps = 256, stop = {}, precision = "fp16" }
  local num = { ["--steps"] = "steps", ["--temperature"] = "temperature", ["--topp"] = "topp",
    ["--topk"] = "topk", ["--seed"] = "seed", ["--repetition-penalty"] = "repetition_penalty",
    ["--max-seq"] = "max_seq" }
  local str = { ["--tokenizer"] = "tokenizer", ["--prompt"] = "prompt", ["--prompt-file"] = "prompt_file",
    ["--precision"] = "precision", ["--backend"] = "backend", ["--system"] = "system" }
  local ints = { steps = true, topk = true, seed = true, max_seq = true }
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "-h" or a == "--help" then
      io.write(USAGE)
      return nil, 0
    elseif a == "--chat" then
      o.chat = true
      i = i + 1
    elseif num[a] or str[a] or a == "--stop" then
      local v = args[i + 1]
      if v == nil then return nil, fail(a .. " needs a value") end
      if a == "--stop" then
        o.stop[#o.stop + 1] = v
      elseif str[a] then
        o[str[a]] = v
      else
        local n = tonumber(v)
        local key = num[a]
        if not n or (ints[key] and math.type(math.tointeger(n)) ~= "integer") then
          return nil, fail(a .. " expects a" .. (ints[key] and "n integer" or " number") .. ", got '" .. v .. "'")
        end
        o[key] = ints[key] and math.tointeger(n) or n
      end
      i = i + 2
    elseif a:sub(1, 2) == "--" then
      return nil, fail("unknown flag " .. a .. " (see --help)")
    elseif not o.model then
      o.model = a
      i = i + 1
    else
      return nil, fail("unexpected argument '" .. a .. "'")
    end
  end
  if not o.model then
    io.stderr:write(USAGE)
    return nil, 2
  end
  if o.precision ~= "fp16" and o.precision ~= "fp32" then return nil, fail("--precision must be fp16 or fp32") end
  if o.prompt and o.prompt_file then return nil, fail("--prompt and --prompt-file exclude each other") end
  if o.prompt_file then
    local f, err = io.open(o.prompt_file, "rb")
    if not f then return nil, fail(err) end
    o.prompt = f:read("a")
    f:close()
  end
  if o.temperature < 0 then return nil, fail("--temperature must be >= 0") end
  if o.topp < 0 or o.topp > 1 then return nil, fail("--topp must be in [0, 1]") end
  if o.steps < 0 then return nil, fail("--steps must be >= 0") end
  if o.topk < 0 then return nil, fail("--topk must be >= 0") end
  return o
end

-- run.c's safe_printf: a piece that is one control byte is not printed.
local function printable(piece)
  if #piece == 1 then
    local b = piece:byte()
    if b < 32 and not (b >= 9 and b <= 13) or b == 127 then return "" end
  end
  return piece
end

local function sampling(o, model)
  return { temperature = o.temperature, topp = o.topp, topk = o.topk, seed = o.seed or os.time(),
    repetition_penalty = o.repetition_penalty, stop = #o.stop > 0 and o.stop or nil }
end

local function report(model)
  local s = model.stats
  if s.prefill_tokens > 0 and s.prefill_s > 0 then
    io.stderr:write(string.format("prefill: %.1f tok/s (%d tokens)\n", s.prefill_tokens / s.prefill_s, s.prefill_tokens))
  end
  if s.decode_tokens > 0 and s.decode_s > 0 then
    io.stderr:write(string.format("decode: %.1f tok/s (%d tokens)\n", s.decode_tokens / s.decode_s, s.decode_tokens))
  end
end

local function generate(o, model)
  local tok = model.tokenizer
  local ids = tok:encode(o.prompt or "", { bos = true, eos = false })
  -- the prompt echo: run.c prints each forced token's piece as it goes
  local out = {}
  for i = 2, #ids do out[#out + 1] = printable(tok:decode(ids[i - 1], ids[i])) end
  io.write(table.concat(out))
  io.stdout:flush()
  local opts = sampling(o, model)
  opts.steps = o.steps > 0 and o.steps or nil
  for _, piece in model:generate(ids, opts) do
    io.write(printable(piece))
    io.stdout:flush()
  end
  io.write("\n")
  report(model)
  return 0
end

local function chat(o, model, path)
  local template = require "ane.llm.chat"
  local tmpl, err = template.load(path, model)
  if not tmpl then return fail(err) end
  local messages = {}
  if o.system then messages[1] = { role = "system", content = o.system } end
  local stops = tmpl.stops
  while true do
    io.write("User: ")
    io.stdout:flush()
    local line = io.read("l")
    if not line then break end
    messages[#messages + 1] = { role = "user", content = line }
    local text = tmpl:render(messages, true)
    local ids = model.tokenizer:encode(text, { bos = false, eos = false })
    local opts = sampling(o, model)
    opts.stop = stops
    opts.max_tokens = o.steps > 0 and o.steps or nil
    io.write("Assistant: ")
    local reply = {}
    for _, piece in model:generate(ids, opts) do
      reply[#reply + 1] = piece
      io.write(piece)
      io.stdout:flush()
    end
    io.write("\n")
    messages[#messages + 1] = { role = "assistant", content = table.concat(reply) }
    report(model)
  end
  return 0
end

return function(args)
  local o, code = parse(args)
  if not o then return code end
  local ok, model = pcall(llm.load, o.model, { precision = o.precision, backend = o.backend,
    tokenizer = o.tokenizer, max_seq = o.max_seq })
  if not ok then return fail(tostring(model)) end
  if not model.tokenizer then
    model:close()
    return fail("no tokenizer found for " .. o.model .. " (pass --tokenizer F)")
  end
  local run_ok, res = pcall(o.chat and chat or generate, o, model, o.model)
  model:close()
  if not run_ok then return fail(tostring(res)) end
  return res
end
