-- Hugging Face model directories through ane.hf.load: config.json (Llama, Qwen2), safetensors
-- written here (F32, F16, BF16; single file and sharded), the q/k reordering into llama2.c's
-- interleaved RoPE pairs, tied and untied classifiers, Qwen2 biases, and broken files.
local ane = require "ane"
local cjson = require "cjson"
local H = require "helpers"

local function err(f, ...)
  local ok, e = pcall(f, ...)
  assert.is_false(ok, "expected an error")
  return tostring(e)
end

local function pack_values(dtype, vals)
  local out = {}
  for i, v in ipairs(vals) do
    if dtype == "F32" then out[i] = string.pack("<f", v)
    elseif dtype == "F16" then out[i] = string.pack("<I2", ane.fp16_bits(v))
    elseif dtype == "BF16" then out[i] = string.pack("<I2", string.unpack("<I4", string.pack("<f", v)) >> 16)
    else out[i] = string.pack("<i8", v) end
  end
  return table.concat(out)
end

-- A safetensors image from {name = {dtype, shape, values}}; opts.tamper(header) may edit entries.
local function safetensors(tensors, opts)
  opts = opts or {}
  local names = {}
  for k in pairs(tensors) do names[#names + 1] = k end
  table.sort(names)
  local header, data, off = { __metadata__ = { format = "pt" } }, {}, 0
  for _, k in ipairs(names) do
    local t = tensors[k]
    local bytes = pack_values(t[1], t[3])
    header[k] = { dtype = t[1], shape = t[2], data_offsets = { off, off + #bytes } }
    data[#data + 1] = bytes
    off = off + #bytes
  end
  if opts.tamper then opts.tamper(header) end
  local h = cjson.encode(header)
  h = h .. string.rep(" ", (8 - #h % 8) % 8)
  return string.pack("<I8", #h) .. h .. table.concat(data)
end

-- A model's tensors: every value is a small integer code (exact in bf16) from name and index.
local function model_tensors(c, dtype)
  local t, code = {}, 0
  local function add(name, shape, fill)
    local n = 1
    for _, d in ipairs(shape) do n = n * d end
    local vals = {}
    code = code + 1
    for i = 1, n do vals[i] = fill and fill(i) or ((code * 7 + i) % 61 - 30) / 4 end
    t[name] = { dtype, shape, vals }
  end
  local hs = c.dim // c.n_heads
  local kv = hs * c.n_kv_heads
  add("model.embed_tokens.weight", { c.vocab, c.dim })
  add("model.norm.weight", { c.dim })
  if not c.tie then add("lm_head.weight", { c.vocab, c.dim }) end
  for l = 0, c.n_layers - 1 do
    local p = "model.layers." .. l .. "."
    add(p .. "input_layernorm.weight", { c.dim })
    add(p .. "post_attention_layernorm.weight", { c.dim })
    -- q/k rows hold their row number (+ 100 * layer): the reordering is visible
    add(p .. "self_attn.q_proj.weight", { c.dim, c.dim }, function(i) return (i - 1) // c.dim + 100 * l end)
    add(p .. "self_attn.k_proj.weight", { kv, c.dim }, function(i) return (i - 1) // c.dim + 100 * l end)
    add(p .. "self_attn.v_proj.weight", { kv, c.dim })
    add(p .. "self_attn.o_proj.weight", { c.dim, c.dim })
    add(p .. "mlp.gate_proj.weight", { c.hidden, c.dim })
    add(p .. "mlp.up_proj.weight", { c.hidden, c.dim })
    add(p .. "mlp.down_proj.weight", { c.dim, c.hidden })
    if c.arch == "qwen2" then
      add(p .. "self_attn.q_proj.bias", { c.dim }, function(i) return i - 1 end)
      add(p .. "self_attn.k_proj.bias", { kv }, function(i) return i - 1 end)
      add(p .. "self_attn.v_proj.bias", { kv })
    end
  end
  return t
end

local function config_json(c, extra)
  local j = {
    architectures = { c.arch == "qwen2" and "Qwen2ForCausalLM" or "LlamaForCausalLM" },
    model_type = c.arch, hidden_size = c.dim, intermediate_size = c.hidden, num_hidden_layers = c.n_layers,
    num_attention_heads = c.n_heads, num_key_value_heads = c.n_kv_heads, vocab_size = c.vocab,
    max_position_embeddings = 64, rope_theta = c.arch == "qwen2" and 1000000.0 or 10000.0, rms_norm_eps = 1e-6,
    tie_word_embeddings = c.tie, hidden_act = "silu", rope_scaling = cjson.null,
  }
  for k, v in pairs(extra or {}) do j[k] = v end
  return cjson.encode(j)
end

local function write_model(c, dtype, opts)
  opts = opts or {}
  local dir = H.tmpdir()
  H.write(dir .. "/config.json", config_json(c, opts.config))
  local t = model_tensors(c, dtype)
  if opts.shards then
    local a, b, map = {}, {}, {}
    for k, v in pairs(t) do
      local f = k:match("layers%.0%.") and "model-00001-of-00002.safetensors" or "model-00002-of-00002.safetensors"
      ;(f:match("00001") and a or b)[k] = v
      map[k] = f
    end
    H.write(dir .. "/model-00001-of-00002.safetensors", safetensors(a))
    H.write(dir .. "/model-00002-of-00002.safetensors", safetensors(b))
    H.write(dir .. "/model.safetensors.index.json", cjson.encode({ metadata = { total_size = 0 }, weight_map = map }))
  else
    H.write(dir .. "/model.safetensors", safetensors(t, opts))
  end
  return dir, t
end

local llama = { arch = "llama", dim = 8, hidden = 12, n_layers = 2, n_heads = 2, n_kv_heads = 1, vocab = 5, tie = false }
local qwen = { arch = "qwen2", dim = 8, hidden = 6, n_layers = 2, n_heads = 2, n_kv_heads = 2, vocab = 7, tie = true }

local function flat(t) return t:reshape({ t:numel() }):to_table() end

describe("hf", function()
  it("loads Llama (GQA, untied) in F32, F16 and BF16 with the llama2.c names and shapes", function()
    for _, dtype in ipairs({ "F32", "F16", "BF16" }) do
      local dir, t = write_model(llama, dtype)
      local ck = ane.hf.load(dir)
      local c = ck.config
      assert.same({ "llama", 8, 12, 2, 2, 1, 5, 64, false, 4, 4, "interleaved", 10000.0 },
        { c.arch, c.dim, c.hidden, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab, c.seq, c.shared_classifier,
          c.head_size, c.kv_dim, c.rope, c.rope_theta })
      local w = ck.weights
      assert.equal("interleaved", c.rope_style)
      assert.same({ 5, 8 }, w.embed:shape())
      assert.same({ 2, 8, 8 }, w.wq:shape())
      assert.same({ 2, 4, 8 }, w.wk:shape())
      assert.same({ 2, 12, 8 }, w.w1:shape())
      assert.same({ 2, 8, 12 }, w.w2:shape())
      assert.same({ 2, 8 }, w.rms_att:shape())
      assert.equal("fp32", w.wq:dtype())
      assert.same(t["model.embed_tokens.weight"][3], flat(w.embed))
      assert.same(t["lm_head.weight"][3], flat(w.wcls))
      assert.same(t["model.layers.1.mlp.down_proj.weight"][3], flat(w.w2[2]))
      assert.same(t["model.layers.0.mlp.gate_proj.weight"][3], flat(w.w1[1]))
      assert.same(t["model.layers.1.mlp.up_proj.weight"][3], flat(w.w3[2]))
      -- rotate-half rows -> interleaved pairs: per head of 4 rows, HF rows 0, 2, 1, 3
      local order = { 0, 2, 1, 3, 4, 6, 5, 7 }
      for r = 1, 8 do assert.equal(100 + order[r], w.wq:get(2, r, 1)) end
      for r = 1, 4 do assert.equal(order[r], w.wk:get(1, r, 3)) end
      assert.is_nil(w.bq)
    end
  end)

  it("loads Qwen2 (tied, biases reordered like q and k) from shards, in fp16 on request", function()
    local dir, t = write_model(qwen, "BF16", { shards = true })
    local ck = ane.hf.load(dir, { dtype = "fp16" })
    local c, w = ck.config, ck.weights
    assert.equal("qwen2", c.arch)
    assert.is_true(c.shared_classifier)
    assert.equal(1000000.0, c.rope_theta)
    assert.equal(1e-6, c.norm_eps)
    assert.equal(w.embed, w.wcls)
    assert.equal("fp16", w.wq:dtype())
    assert.same({ 2, 8 }, w.bq:shape())
    assert.same({ 2, 8 }, w.bk:shape())
    assert.same({ 0, 2, 1, 3, 4, 6, 5, 7 }, w.bq[1]:to_table())
    assert.same({ 0, 2, 1, 3, 4, 6, 5, 7 }, w.bk[2]:to_table())
    assert.same(t["model.layers.1.self_attn.v_proj.bias"][3], w.bv[2]:to_table())
    assert.same(t["model.layers.0.self_attn.o_proj.weight"][3], flat(w.wo[1]))
  end)

  it("checks config.json", function()
    local function cfg_err(extra)
      local dir = write_model(llama, "F32", { config = extra })
      return err(ane.hf.load, dir)
    end
    assert.matches("config.json: architecture MistralForCausalLM is not supported",
      cfg_err({ architectures = { "MistralForCausalLM" } }))
    assert.matches("config.json: rope_scaling is not supported", cfg_err({ rope_scaling = { type = "linear", factor = 2 } }))
    assert.matches("config.json: hidden_act gelu is not supported", cfg_err({ hidden_act = "gelu" }))
    assert.matches("config.json: hidden_size must be a positive integer", cfg_err({ hidden_size = "x" }))
    assert.matches("config.json: num_attention_heads is not a multiple of num_key_value_heads",
      cfg_err({ num_key_value_heads = 3 }))
    assert.matches("model.safetensors: tensor model.embed_tokens.weight has shape %[5, 8%], config.json implies %[6, 8%]",
      cfg_err({ vocab_size = 6 }))
    local dir = write_model(llama, "F32", { config = { tie_word_embeddings = true } })
    assert.is_true(ane.hf.load(dir).config.shared_classifier) -- lm_head present but unused
    local empty = H.tmpdir()
    H.write(empty .. "/config.json", config_json(llama))
    assert.matches(H.escape(empty) .. ": no model.safetensors or model.safetensors.index.json", err(ane.hf.load, empty))
    assert.matches("config.json: No such file", err(ane.hf.load, H.tmpdir()))
  end)

  it("validates the safetensors header before reading any tensor", function()
    local function st_err(tamper, bytes)
      local dir = write_model(llama, "F32", { tamper = tamper })
      if bytes then H.write(dir .. "/model.safetensors", bytes(H.read(dir .. "/model.safetensors"))) end
      return err(ane.hf.load, dir)
    end
    local W = "model.layers.0.mlp.up_proj.weight"
    assert.matches("model.safetensors: tensor model.norm.weight: data_offsets %[%d+, %d+%] run past the data section %(%d+ bytes%): the file is truncated",
      st_err(nil, function(s) return s:sub(1, #s - 10) end))
    assert.matches("tensor " .. H.escape(W) .. ": F32 with 96 elements needs 384 bytes, data_offsets give 380",
      st_err(function(h) h[W].data_offsets[2] = h[W].data_offsets[2] - 4 end))
    assert.matches("tensors " .. H.escape(W) .. " and model.norm.weight overlap %(bytes %[%d+, %d+%) and %[%d+, %d+%)%)",
      st_err(function(h) local b = h[W].data_offsets[1]; h["model.norm.weight"].data_offsets = { b + 4, b + 36 } end))
    assert.matches("tensor " .. H.escape(W) .. ": unknown dtype F12", st_err(function(h) h[W].dtype = "F12" end))
    assert.matches("tensor " .. H.escape(W) .. " has dtype I32; F32, F16 and BF16 are supported",
      st_err(function(h) h[W].dtype = "I32" end))
    assert.matches("header length %d+ runs past the end", st_err(nil, function(s) return string.pack("<I8", 1 << 20) .. s:sub(9) end))
    assert.matches("truncated safetensors file: 3 bytes", st_err(nil, function() return "abc" end))
    assert.matches("the safetensors header is not valid JSON", st_err(nil, function(s) return s:sub(1, 9) .. "{" .. s:sub(11) end))
    local dir = write_model(llama, "F32", { tamper = function(h) h["model.norm.weight"] = nil end })
    assert.matches("tensor model.norm.weight is missing", err(ane.hf.load, dir))
  end)
end)
