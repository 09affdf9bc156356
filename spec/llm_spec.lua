-- ane.llm: inference on tiny random models. Greedy generation equals the plain double-precision
-- reference (spec/support/llama_ref.lua) in precision fp32 for MHA and GQA, shared and unshared
-- classifiers, Qwen2-style biases with half-split RoPE; prefill logits equal token-by-token
-- decode logits; the C sampler is reproducible and validates its options; text assembly holds
-- UTF-8 across byte tokens and stops before a stop string; bad input raises clear errors.
local ane = require "ane"
local llm = require "ane.llm"
local ref = require "support.llama_ref"

local function rnd(shape, seed, std)
  return ane.rand(shape, { dist = "normal", std = std, seed = seed, dtype = "fp32" })
end

local function gains(shape, seed) return ane.rand(shape, { lo = 0.6, hi = 1.4, seed = seed, dtype = "fp32" }) end

-- A random model of the llama2.c contract's names and shapes.
local function tiny(c, seed)
  seed = seed or 1
  local L, D, H, V = c.n_layers, c.dim, c.hidden, c.vocab
  local KV = D * (c.n_kv_heads or c.n_heads) // c.n_heads
  local w = {
    embed = rnd({ V, D }, seed, 1.0), rms_att = gains({ L, D }, seed + 1),
    wq = rnd({ L, D, D }, seed + 2, 0.35), wk = rnd({ L, KV, D }, seed + 3, 0.35),
    wv = rnd({ L, KV, D }, seed + 4, 0.35), wo = rnd({ L, D, D }, seed + 5, 0.25),
    rms_ffn = gains({ L, D }, seed + 6), w1 = rnd({ L, H, D }, seed + 7, 0.3),
    w2 = rnd({ L, D, H }, seed + 8, 0.25), w3 = rnd({ L, H, D }, seed + 9, 0.3),
    rms_final = gains({ D }, seed + 10),
  }
  if c.shared_classifier == false then w.wcls = rnd({ V, D }, seed + 11, 0.4) else w.wcls = w.embed end
  if c.bias then
    w.bq, w.bk, w.bv = rnd({ L, D }, seed + 12, 0.3), rnd({ L, KV }, seed + 13, 0.3), rnd({ L, KV }, seed + 14, 0.3)
  end
  local cfg = {}
  for k, v in pairs(c) do if k ~= "bias" then cfg[k] = v end end
  return cfg, w
end

local function greedy(m, prompt, n)
  local got = {}
  for id in m:generate(prompt, { temperature = 0, max_tokens = n, eos = false }) do got[#got + 1] = id end
  return got
end

local SHAPES = {
  { name = "MHA, shared classifier", cfg = { dim = 32, hidden = 48, n_layers = 2, n_heads = 4, vocab = 48, seq = 32, shared_classifier = true } },
  { name = "GQA, unshared classifier", cfg = { dim = 32, hidden = 40, n_layers = 2, n_heads = 4, n_kv_heads = 2, vocab = 37, seq = 40, shared_classifier = false } },
  { name = "Qwen2-style: GQA 4:1, q/k/v biases, half RoPE, theta 1e6", cfg = { dim = 32, hidden = 64, n_layers = 2, n_heads = 8, n_kv_heads = 2, vocab = 50, seq = 32, shared_classifier = true, arch = "qwen2", rope_style = "half", rope_theta = 1e6, norm_eps = 1e-6, bias = true } },
}

describe("ane.llm greedy generation vs the plain reference (fp32)", function()
  for i, s in ipairs(SHAPES) do
    it(s.name, function()
      local cfg, w = tiny(s.cfg, 10 * i)
      local m <close> = llm.new(cfg, w, { precision = "fp32" })
      local prompt = { 1, 3, 5, 7, 11 }
      local got = greedy(m, prompt, 18)
      local want = ref.greedy(ref.new(cfg, w), prompt, 18)
      assert.are.same(want, got)
      -- the logits themselves, all positions through one prefill
      local seq = { 1, 3, 5, 7, 11, 2, 4, 6, 8 }
      local lg = m:forward(seq)
      local r = ref.new(cfg, w)
      local maxd, scale = 0, 0
      for p, id in ipairs(seq) do
        local l = r:forward(id, p - 1)
        for j = 1, cfg.vocab do
          maxd = math.max(maxd, math.abs(l[j] - lg:get(p, j)))
          scale = math.max(scale, math.abs(l[j]))
        end
      end
      assert.is_true(maxd <= 1e-4 * scale, ("max |diff| %g of %g"):format(maxd, scale))
    end)
  end
end)

describe("ane.llm prefill and decode", function()
  it("prefill logits equal token-by-token decode logits (fp32 and fp16)", function()
    local cfg, w = tiny(SHAPES[2].cfg, 7)
    for _, prec in ipairs { "fp32", "fp16" } do
      local m <close> = llm.new(cfg, w, { precision = prec })
      local seq = {}
      for i = 1, 21 do seq[i] = (i * 7) % cfg.vocab end -- 21 tokens: chunks of 16 + 4 + 1
      local all = m:forward(seq)
      m:reset()
      local tol = prec == "fp32" and 1e-4 or 0.05
      for p, id in ipairs(seq) do
        local lg = m:step({ id })
        for j = 1, cfg.vocab, 3 do
          local a, b = all:get(p, j), lg:get(1, j)
          assert.is_true(math.abs(a - b) <= tol * (1 + math.abs(a)), ("%s pos %d logit %d: %g vs %g"):format(prec, p, j, a, b))
        end
      end
    end
  end)

  it("fp16 numerics stay close to fp32 and are deterministic", function()
    local cfg, w = tiny(SHAPES[1].cfg, 3)
    local a <close> = llm.new(cfg, w, { precision = "fp16" })
    local b <close> = llm.new(cfg, w, { precision = "fp32" })
    local seq = { 1, 2, 3, 4, 5, 6 }
    local la, lb = a:forward(seq), b:forward(seq)
    local maxd, scale = 0, 0
    for p = 1, #seq do
      for j = 1, cfg.vocab do
        maxd = math.max(maxd, math.abs(la:get(p, j) - lb:get(p, j)))
        scale = math.max(scale, math.abs(lb:get(p, j)))
      end
    end
    assert.is_true(maxd < 0.05 * scale, ("fp16 vs fp32: %g of %g"):format(maxd, scale))
    assert.are.same(la:to_table(), a:forward(seq):to_table())
  end)

  it("continues a context (continue = true) like one long prompt", function()
    local cfg, w = tiny(SHAPES[1].cfg, 5)
    local m <close> = llm.new(cfg, w, { precision = "fp32" })
    local whole = greedy(m, { 1, 4, 9, 16, 25 }, 6)
    m:reset()
    local l1 = m:step({ 1, 4, 9 })
    assert.are.equal(3, m.pos)
    local got = {}
    for id in m:generate({ 16, 25 }, { temperature = 0, max_tokens = 6, eos = false, continue = true }) do got[#got + 1] = id end
    assert.are.same(whole, got)
    assert.is_not_nil(l1)
  end)

  it("rejects bad input with clear errors", function()
    local cfg, w = tiny(SHAPES[1].cfg, 1)
    local m <close> = llm.new(cfg, w, { precision = "fp32", max_seq = 16 })
    assert.has_error(function() m:forward({ 1, 48 }) end, "llm: token id 48 out of range [0, 48)")
    assert.has_error(function() m:forward({ 1, -1 }) end, "llm: token id -1 out of range [0, 48)")
    assert.has_error(function() m:forward({ 1, 2.5 }) end, "llm: token id 2.5 out of range [0, 48)")
    local long = {}
    for i = 1, 17 do long[i] = 1 end
    assert.has_error(function() m:forward(long) end, "llm: 17 tokens at position 0 exceed max_seq 16")
    assert.has_error(function() m:generate({ 1 }, { temprature = 0 }) end, "generate: unknown option 'temprature'")
    assert.has_error(function() m:generate("hi") end, "generate: a text prompt needs a tokenizer (model.tokenizer)")
    assert.has_error(function() llm.new(cfg, w, { precision = "bf16" }) end, "llm: precision must be 'fp16' or 'fp32'")
    local w2 = {}
    for k, v in pairs(w) do w2[k] = v end
    w2.wq = ane.zeros({ 2, 32, 16 }, "fp32")
    assert.has_error(function() llm.new(cfg, w2) end, "llm: weight 'wq' has shape [2, 32, 16], expected [2, 32, 32]")
    w2.wq = nil
    assert.has_error(function() llm.new(cfg, w2) end, "llm: weight 'wq' is missing")
    m:close()
    assert.has_error(function() m:forward({ 1 }) end, "llm: model is closed")
  end)
end)

describe("ane.nn.sampler", function()
  local V = 64
  local function logits(seed) return ane.rand({ V }, { dist = "normal", std = 2, seed = seed, dtype = "fp32" }) end

  it("greedy is argmax; top-k 1 is greedy at any temperature", function()
    local l = logits(1)
    local best = ane.nn.argmax(l)
    assert.are.equal(best, ane.nn.sampler { vocab = V, temperature = 0 }:sample(l))
    assert.are.equal(best, ane.nn.sampler { vocab = V, temperature = 5, topk = 1, seed = 3 }:sample(l))
  end)

  it("is reproducible from its seed and follows the distribution", function()
    local l = logits(2)
    local function draws(opts)
      local s = ane.nn.sampler(opts)
      local out = {}
      for i = 1, 200 do out[i] = s:sample(l) end
      return out
    end
    local a = draws { vocab = V, temperature = 1, seed = 42 }
    assert.are.same(a, draws { vocab = V, temperature = 1, seed = 42 })
    assert.are_not.same(a, draws { vocab = V, temperature = 1, seed = 43 })
    -- top-k 3: only the three largest appear
    local t = l:to_table()
    local order = {}
    for i = 1, V do order[i] = i - 1 end
    table.sort(order, function(x, y) return t[x + 1] > t[y + 1] end)
    local allowed = { [order[1]] = true, [order[2]] = true, [order[3]] = true }
    for _, id in ipairs(draws { vocab = V, temperature = 1, topk = 3, seed = 5 }) do assert.is_true(allowed[id]) end
    -- top-p tiny: the nucleus is the single best
    for _, id in ipairs(draws { vocab = V, temperature = 1, topp = 1e-6, seed = 6 }) do assert.are.equal(order[1], id) end
  end)

  it("matches run.c's xorshift coin", function()
    -- run.c: state ^= state >> 12; ^= << 25; ^= >> 27; (state * 0x2545F4914F6CDD1D) >> 32, then >> 8 / 2^24
    local s = ane.nn.sampler { vocab = 1, seed = 1 }
    local st = 1
    for _ = 1, 5 do
      st = st ~ (st >> 12); st = st ~ (st << 25); st = st ~ (st >> 27)
      local u = ((st * 0x2545F4914F6CDD1D) >> 32) & 0xffffffff
      assert.are.equal((u >> 8) / 16777216.0, s:coin())
    end
  end)

  it("repetition penalty lowers seen ids", function()
    local l = ane.from_table({ 1.0, 0.9, 0.1 }, "fp32")
    local s = ane.nn.sampler { vocab = 3, temperature = 0, repetition_penalty = 2 }
    assert.are.equal(0, s:sample(l))
    s:accept(0)
    assert.are.equal(1, s:sample(l))
    s:reset()
    assert.are.equal(0, s:sample(l))
  end)

  it("validates its options and input", function()
    assert.has_error(function() ane.nn.sampler { vocab = 0 } end, "sampler: vocab must be in [1, 2^30], got 0")
    assert.has_error(function() ane.nn.sampler { vocab = 4, temperature = -1 } end, "sampler: temperature must be a finite number >= 0")
    assert.has_error(function() ane.nn.sampler { vocab = 4, topp = 2 } end, "sampler: topp must be in [0, 1]")
    assert.has_error(function() ane.nn.sampler { vocab = 4, topk = -1 } end, "sampler: 'topk' must be an integer >= 0")
    assert.has_error(function() ane.nn.sampler { vocab = 4, repetition_penalty = 0 } end, "sampler: repetition_penalty must be a finite number > 0")
    assert.has_error(function() ane.nn.sampler { vocab = 4, tempreature = 1 } end)
    local s = ane.nn.sampler { vocab = 4 }
    assert.has_error(function() s:sample(ane.zeros({ 5 }, "fp32")) end, "sampler: 5 logits, expected the vocab of 4")
    assert.has_error(function() s:sample(ane.zeros({ 4 }, "fp16")) end)
    s:close()
    assert.has_error(function() s:sample(ane.zeros({ 4 }, "fp32")) end, "ane.Sampler is closed")
    assert.matches("closed", tostring(s))
  end)

  it("causal_mask fills 0 / -inf by offset", function()
    local m = ane.nn.causal_mask(ane.zeros({ 2, 4 }, "fp32"), 1)
    assert.are.same({ { 0, 0, -math.huge, -math.huge }, { 0, 0, 0, -math.huge } }, m:to_table())
  end)
end)

describe("ane.llm text streaming", function()
  -- A stand-in tokenizer: id -> piece, with two byte tokens making one UTF-8 character.
  local pieces = { [0] = "<unk>", "<s>", "</s>", "a", "b", " STOP", "\xC3", "\xA9", "c" }
  local fake = {
    vocab_size = 9, bos_id = 1, eos_id = 2,
    decode = function(_, _, id) return pieces[id] end,
    encode = function() return { 1, 3 } end,
  }
  -- a model whose greedy choices we dictate: the classifier favours one id per position via embed
  local function scripted(seq)
    local cfg = { dim = 16, hidden = 16, n_layers = 1, n_heads = 2, vocab = 9, seq = 32, shared_classifier = false }
    local _, w = tiny(cfg, 1)
    local m = llm.new(cfg, w, { precision = "fp32" })
    m.tokenizer = fake
    local i = 0
    m.step = function() return nil end -- logits unused: the sampler below is scripted
    local s = { sample = function() i = i + 1; return seq[i] or 2 end, accept = function() end }
    return m, s
  end

  it("holds UTF-8 bytes until the character is complete", function()
    local m, s = scripted { 3, 6, 7, 8, 1 } -- llama2.c models end at BOS (run.c)
    local out = {}
    for _, piece in m:generate("x", { sampler = s, max_tokens = 10 }) do out[#out + 1] = piece end
    assert.are.same({ "a", "", "\xC3\xA9", "c" }, out)
  end)

  it("stops before a stop string, and at EOS", function()
    local m, s = scripted { 3, 4, 5, 3, 3 }
    local text = {}
    for _, piece in m:generate("x", { sampler = s, stop = " STOP", max_tokens = 10 }) do text[#text + 1] = piece end
    assert.are.equal("ab", table.concat(text))
    local m2, s2 = scripted { 3, 4, 2, 3 }
    text = {}
    m2.config.arch = "llama"
    for _, piece in m2:generate("x", { sampler = s2, max_tokens = 10 }) do text[#text + 1] = piece end
    assert.are.equal("ab", table.concat(text))
  end)
end)

-- Both file formats, written here from random weights, through llm.load.
describe("ane.llm from files", function()
  local H = require "helpers"

  it("ane.atomic_write takes an array of many pieces (one per layer tensor, as an HF writer does)", function()
    local dir = H.tmpdir()
    local t = ane.rand({ 4, 8 }, { seed = 1, dtype = "fp32" })
    local parts = {}
    for i = 1, 200 do parts[i] = i % 2 == 0 and t[i % 4 + 1] or "x" end
    ane.atomic_write(dir .. "/many.bin", parts)
    assert.are.equal(100 * (1 + 32), #H.read(dir .. "/many.bin"))
  end)

  it("a llama2.c checkpoint (GQA, unshared classifier) decodes as the reference", function()
    local cfg, w = tiny(SHAPES[2].cfg, 21)
    local dir = H.tmpdir()
    ane.llama2c.save(dir .. "/m.bin", cfg, w)
    local m <close> = llm.load(dir .. "/m.bin", { precision = "fp32" })
    assert.is_nil(m.tokenizer)
    local prompt = { 1, 9, 4 }
    assert.are.same(ref.greedy(ref.new(cfg, w), prompt, 12), greedy(m, prompt, 12))
  end)

  -- HF stores q/k rows for rotate-half RoPE; the reference runs those weights with half RoPE,
  -- ane.hf reorders them to llama2.c's interleaved pairs: the two must agree.
  local function write_hf(dir, cfg, w, arch)
    local cjson = require "cjson"
    local L = cfg.n_layers
    local tensors = {}
    local function add(name, t) tensors[#tensors + 1] = { name, t } end
    add("model.embed_tokens.weight", w.embed)
    add("model.norm.weight", w.rms_final)
    if cfg.shared_classifier == false then add("lm_head.weight", w.wcls) end
    local map = { rms_att = "input_layernorm.weight", rms_ffn = "post_attention_layernorm.weight",
      wq = "self_attn.q_proj.weight", wk = "self_attn.k_proj.weight", wv = "self_attn.v_proj.weight",
      wo = "self_attn.o_proj.weight", w1 = "mlp.gate_proj.weight", w3 = "mlp.up_proj.weight",
      w2 = "mlp.down_proj.weight", bq = "self_attn.q_proj.bias", bk = "self_attn.k_proj.bias",
      bv = "self_attn.v_proj.bias" }
    for l = 1, L do
      for k, hfname in pairs(map) do
        if w[k] then add("model.layers." .. (l - 1) .. "." .. hfname, w[k][l]) end
      end
    end
    table.sort(tensors, function(a, b) return a[1] < b[1] end)
    local header, data, off = {}, {}, 0
    for _, e in ipairs(tensors) do
      local bytes = e[2]:bytes()
      header[e[1]] = { dtype = "F32", shape = e[2]:shape(), data_offsets = { off, off + #bytes } }
      data[#data + 1] = bytes
      off = off + #bytes
    end
    local h = cjson.encode(header)
    h = h .. string.rep(" ", (8 - #h % 8) % 8)
    H.write(dir .. "/model.safetensors", string.pack("<I8", #h) .. h .. table.concat(data))
    H.write(dir .. "/config.json", cjson.encode {
      architectures = { arch == "qwen2" and "Qwen2ForCausalLM" or "LlamaForCausalLM" },
      model_type = arch, hidden_size = cfg.dim, intermediate_size = cfg.hidden,
      num_hidden_layers = L, num_attention_heads = cfg.n_heads, num_key_value_heads = cfg.n_kv_heads,
      vocab_size = cfg.vocab, max_position_embeddings = cfg.seq, rms_norm_eps = cfg.norm_eps or 1e-5,
      rope_theta = cfg.rope_theta or 10000.0, tie_word_embeddings = cfg.shared_classifier ~= false,
      hidden_act = "silu", torch_dtype = "float32",
    })
  end

  for _, case in ipairs {
    { "Llama (GQA, untied)", { dim = 32, hidden = 40, n_layers = 2, n_heads = 4, n_kv_heads = 2, vocab = 37, seq = 64, shared_classifier = false, norm_eps = 1e-5 }, "llama" },
    { "Qwen2 (biases, tied, theta 1e6)", { dim = 32, hidden = 64, n_layers = 2, n_heads = 8, n_kv_heads = 2, vocab = 50, seq = 64, shared_classifier = true, rope_theta = 1e6, norm_eps = 1e-6, bias = true }, "qwen2" },
  } do
    it("a Hugging Face directory: " .. case[1], function()
      if not ane.hf then pending("ane.hf not in this build") return end
      local cfg, w = tiny(case[2], 31)
      local dir = H.tmpdir()
      write_hf(dir, cfg, w, case[3])
      local m <close> = llm.load(dir, { precision = "fp32" })
      local rc = {}
      for k, v in pairs(cfg) do rc[k] = v end
      rc.rope_style = "half" -- the weights as written: HF's rotate-half convention
      local prompt = { 1, 9, 4, 2 }
      assert.are.same(ref.greedy(ref.new(rc, w), prompt, 12), greedy(m, prompt, 12))
    end)
  end
end)
