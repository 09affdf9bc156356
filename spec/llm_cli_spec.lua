-- `ane generate` / examples/generate.lua on a tiny llama2.c checkpoint and tokenizer written
-- here: stdout is run.c's (prompt echo, greedy continuation from the plain reference, newline),
-- stderr has both speeds, and bad flags or files fail with a message and status 2.
local ane = require "ane"
local H = require "helpers"
local ref = require "support.llama_ref"

local function rnd(shape, seed, std) return ane.rand(shape, { dist = "normal", std = std, seed = seed, dtype = "fp32" }) end

local function run(args)
  local out = os.tmpname()
  local errf = os.tmpname()
  local cmd = H.shquote(H.ane_bin) .. " " .. H.shquote(H.root .. "/examples/generate.lua") .. " " .. args
    .. " >" .. out .. " 2>" .. errf
  local ok, _, code = os.execute(cmd)
  local o, e = H.read(out), H.read(errf)
  os.remove(out)
  os.remove(errf)
  return ok and 0 or code, o, e
end

describe("ane generate", function()
  local dir, cfg, w, pieces
  setup(function()
    dir = H.tmpdir()
    local V, D, L, Hd = 300, 32, 2, 48
    cfg = { dim = D, hidden = Hd, n_layers = L, n_heads = 4, n_kv_heads = 4, vocab = V, seq = 64, shared_classifier = true }
    w = {
      embed = rnd({ V, D }, 1, 1.0), rms_att = ane.full({ L, D }, 1, "fp32"), wq = rnd({ L, D, D }, 2, 0.3),
      wk = rnd({ L, D, D }, 3, 0.3), wv = rnd({ L, D, D }, 4, 0.3), wo = rnd({ L, D, D }, 5, 0.3),
      rms_ffn = ane.full({ L, D }, 1, "fp32"), w1 = rnd({ L, Hd, D }, 6, 0.3), w2 = rnd({ L, D, Hd }, 7, 0.3),
      w3 = rnd({ L, Hd, D }, 8, 0.3), rms_final = ane.full({ D }, 1, "fp32"),
    }
    w.wcls = w.embed
    ane.llama2c.save(dir .. "/model.bin", cfg, w)
    pieces = { "<unk>", "<s>", "</s>" }
    for b = 0, 255 do pieces[#pieces + 1] = string.format("<0x%02X>", b) end
    for _, p in ipairs { " ", "a", "b", "c", " a", " b", " c", "ab", "ba", " ab", "Hi", " there", "!" } do pieces[#pieces + 1] = p end
    while #pieces < V do pieces[#pieces + 1] = "x" .. #pieces end
    local scores = {}
    for i = 1, #pieces do scores[i] = i > 259 and -(i - 1) / 10 or 0 end
    ane.tokenizer.save_bin(dir .. "/tokenizer.bin", pieces, scores)
  end)

  it("prints the prompt and the greedy continuation as run.c does", function()
    local tok = ane.tokenizer.load(dir .. "/tokenizer.bin", { vocab_size = cfg.vocab })
    local ids = tok:encode("ab ba", { bos = true })
    local steps = 20
    local cont = ref.greedy(ref.new(cfg, w), ids, steps - #ids + 1)
    local want, prev = {}, ids[1]
    local all = {}
    for _, id in ipairs(ids) do all[#all + 1] = id end
    for _, id in ipairs(cont) do
      if id == 1 then break end -- run.c stops at BOS
      all[#all + 1] = id
    end
    for i = 2, #all do
      local p = tok:decode(all[i - 1], all[i])
      -- run.c's safe_printf drops a lone control byte; bytes >= 0x80 are kept (assembled UTF-8)
      local b = #p == 1 and p:byte()
      if not (b and ((b < 32 and not p:match("%s")) or b == 127)) then want[#want + 1] = p end
    end
    local code, out, err = run(H.shquote(dir .. "/model.bin") .. " --prompt 'ab ba' --temperature 0 --steps " .. steps .. " --precision fp32")
    assert.are.equal(0, code, err)
    assert.are.equal(table.concat(want) .. "\n", out)
    assert.matches("prefill: [%d.]+ tok/s", err)
    assert.matches("decode: [%d.]+ tok/s", err)
    -- sampling is reproducible from the seed
    local _, a = run(H.shquote(dir .. "/model.bin") .. " --prompt 'ab' --seed 7 --steps 30")
    local _, b = run(H.shquote(dir .. "/model.bin") .. " --prompt 'ab' --seed 7 --steps 30")
    assert.are.equal(a, b)
  end)

  it("--chat answers each stdin line through the chat template", function()
    local input = H.write(os.tmpname(), "ab\nba\n")
    local code, out, err = run(H.shquote(dir .. "/model.bin") .. " --chat --temperature 0 --steps 8 < " .. H.shquote(input))
    os.remove(input)
    assert.are.equal(0, code, err)
    local _, users = out:gsub("User: ", "")
    local _, replies = out:gsub("Assistant: ", "")
    assert.are.equal(3, users) -- two lines, then the prompt that meets end of input
    assert.are.equal(2, replies)
    assert.matches("decode: [%d.]+ tok/s", err)
  end)

  it("refuses bad flags and files with a message", function()
    local code, _, err = run(H.shquote(dir .. "/model.bin") .. " --temperature hot")
    assert.are.equal(2, code)
    assert.matches("generate: %-%-temperature expects a number, got 'hot'", err)
    code, _, err = run(H.shquote(dir .. "/model.bin") .. " --bogus")
    assert.are.equal(2, code)
    assert.matches("unknown flag %-%-bogus", err)
    code, _, err = run(H.shquote(dir .. "/missing.bin"))
    assert.are.equal(2, code)
    assert.matches("missing.bin", err)
    local bad = H.write(dir .. "/short.bin", string.pack("<i4i4i4", 32, 48, 2))
    code, _, err = run(H.shquote(bad))
    assert.are.equal(2, code)
    assert.matches("short.bin", err)
  end)
end)
