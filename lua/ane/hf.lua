--- ane.hf: Hugging Face model directories (Llama and Qwen2) as the weights table of ane.llama2c.
--
--   ckpt = ane.hf.load(dir [, {dtype = "fp32" | "fp16"}])
--   ckpt.config  = {dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq, shared_classifier,
--                   head_size, kv_dim, rope_theta, norm_eps, arch = "llama" | "qwen2",
--                   rope = "interleaved", rope_style = "interleaved", bias = bool,
--                   bos_id, eos_id (from bos_token_id / eos_token_id when given)}
--   ckpt.weights = the names and shapes of ane.llama2c.load (embed, rms_att, wq, ..., wcls), plus
--                  bq [L, dim], bk [L, kv_dim], bv [L, kv_dim] for Qwen2.
--
-- Weights come from model.safetensors or the shards named by model.safetensors.index.json; each
-- file's header is checked (dtype, shape against byte size, offsets inside the file, no overlap)
-- before any tensor is read. F32, F16 and BF16 are converted to the requested dtype (a copy: the
-- per-layer tensors are stacked). HF stores q_proj/k_proj (and their biases) for rotate-half
-- RoPE; they are reordered here so that every weights table, llama2.c's or HF's, uses llama2.c's
-- interleaved pairs (config.rope = "interleaved"). Every problem raises an error naming the file.
local core = require "ane.core"
local cjson = require "cjson"

local M = {}

local function read_json(path)
  local f, err = io.open(path, "rb")
  if not f then error(err, 0) end
  local s = f:read("a")
  f:close()
  local ok, v = pcall(cjson.decode, s)
  if not ok then error(path .. ": not valid JSON: " .. tostring(v), 0) end
  if type(v) ~= "table" then error(path .. ": a JSON object expected", 0) end
  return v
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

local function isnull(v) return v == nil or v == cjson.null end

local ARCH = { LlamaForCausalLM = "llama", Qwen2ForCausalLM = "qwen2", llama = "llama", qwen2 = "qwen2" }

--- The model config of dir/config.json, checked.
function M.config(dir)
  local path = dir .. "/config.json"
  local j = read_json(path)
  local archname = type(j.architectures) == "table" and j.architectures[1] or j.model_type
  local arch = ARCH[archname]
  if not arch then
    error(path .. ": architecture " .. tostring(archname) .. " is not supported (LlamaForCausalLM, Qwen2ForCausalLM)", 0)
  end
  local function int(k, default)
    local v = j[k]
    if isnull(v) then v = default end
    if math.type(v) ~= "integer" and not (type(v) == "number" and v == math.floor(v)) or v == nil or v < 1 then
      error(path .. ": " .. k .. " must be a positive integer, got " .. tostring(v), 0)
    end
    return math.tointeger(v)
  end
  local function num(k, default)
    local v = j[k]
    if isnull(v) then v = default end
    if type(v) ~= "number" then error(path .. ": " .. k .. " must be a number, got " .. tostring(v), 0) end
    return v
  end
  local c = {
    arch = arch, dim = int("hidden_size"), hidden = int("intermediate_size"), n_layers = int("num_hidden_layers"),
    n_heads = int("num_attention_heads"), vocab = int("vocab_size"), seq = int("max_position_embeddings"),
    rope_theta = num("rope_theta", 10000.0), norm_eps = num("rms_norm_eps", 1e-6), rope = "interleaved",
    rope_style = "interleaved", -- the same, under the name ane.llm reads: q/k rows are reordered at load
  }
  if math.type(j.bos_token_id) == "integer" then c.bos_id = j.bos_token_id end
  if math.type(j.eos_token_id) == "integer" then c.eos_id = j.eos_token_id end
  c.n_kv_heads = int("num_key_value_heads", c.n_heads)
  c.shared_classifier = j.tie_word_embeddings == true
  c.bias = arch == "qwen2"
  if c.dim % c.n_heads ~= 0 then error(path .. ": hidden_size " .. c.dim .. " is not a multiple of num_attention_heads " .. c.n_heads, 0) end
  if c.n_heads % c.n_kv_heads ~= 0 then error(path .. ": num_attention_heads is not a multiple of num_key_value_heads", 0) end
  c.head_size = c.dim // c.n_heads
  c.kv_dim = c.head_size * c.n_kv_heads
  if c.head_size % 2 ~= 0 then error(path .. ": head size " .. c.head_size .. " is odd; RoPE needs pairs", 0) end
  if not isnull(j.head_dim) and j.head_dim ~= c.head_size then
    error(path .. ": head_dim " .. tostring(j.head_dim) .. " differs from hidden_size / num_attention_heads: not supported", 0)
  end
  if not isnull(j.rope_scaling) then error(path .. ": rope_scaling is not supported", 0) end
  if not isnull(j.hidden_act) and j.hidden_act ~= "silu" then
    error(path .. ": hidden_act " .. tostring(j.hidden_act) .. " is not supported (silu)", 0)
  end
  if j.attention_bias == true and arch == "llama" then error(path .. ": attention_bias = true is not supported for Llama", 0) end
  if j.mlp_bias == true then error(path .. ": mlp_bias = true is not supported", 0) end
  return c
end

-- The safetensors files of dir, opened and checked: name -> {h = handle, i = entry, shape, file}.
local function open_weights(dir)
  local files, index = {}, dir .. "/model.safetensors.index.json"
  if exists(index) then
    local j = read_json(index)
    if type(j.weight_map) ~= "table" then error(index .. ": weight_map missing", 0) end
    local seen = {}
    for _, f in pairs(j.weight_map) do
      if type(f) ~= "string" or f:find("/", 1, true) then error(index .. ": bad file name " .. tostring(f), 0) end
      if not seen[f] then seen[f] = true; files[#files + 1] = f end
    end
    table.sort(files)
  elseif exists(dir .. "/model.safetensors") then
    files[1] = "model.safetensors"
  else
    error(dir .. ": no model.safetensors or model.safetensors.index.json", 0)
  end
  local map, handles = {}, {}
  for _, f in ipairs(files) do
    local path = dir .. "/" .. f
    local h, header = core._hf.open(path)
    handles[#handles + 1] = h
    local ok, j = pcall(cjson.decode, header)
    if not ok or type(j) ~= "table" then error(path .. ": the safetensors header is not valid JSON: " .. tostring(j), 0) end
    local entries = {}
    for name, v in pairs(j) do
      if name ~= "__metadata__" then
        if type(v) ~= "table" or type(v.data_offsets) ~= "table" or type(v.shape) ~= "table" then
          error(path .. ": tensor " .. tostring(name) .. ": dtype, shape and data_offsets expected", 0)
        end
        if map[name] then error(path .. ": tensor " .. name .. " is also in " .. map[name].file, 0) end
        entries[#entries + 1] = { name = name, dtype = v.dtype, shape = v.shape,
          begin = v.data_offsets[1], ["end"] = v.data_offsets[2] }
      end
    end
    table.sort(entries, function(a, b) return a.name < b.name end)
    h:set_entries(entries)
    for i, e in ipairs(entries) do
      local shape = {}
      for k, d in ipairs(e.shape) do shape[k] = math.tointeger(d) end
      map[e.name] = { h = h, i = i, shape = shape, file = path }
    end
  end
  return map, handles
end

local function shape_str(s)
  local t = {}
  for i, d in ipairs(s) do t[i] = tostring(d) end
  return "[" .. table.concat(t, ", ") .. "]"
end

--- Load dir (see the module comment).
function M.load(dir, opts)
  if type(dir) ~= "string" then error("bad argument #1 to 'load' (string expected, got " .. type(dir) .. ")", 2) end
  opts = opts or {}
  for k in pairs(opts) do
    if k ~= "dtype" then error("bad argument #2 to 'load' (unknown option '" .. tostring(k) .. "')", 2) end
  end
  local dtype = opts.dtype or "fp32"
  if dtype ~= "fp32" and dtype ~= "fp16" then error("bad argument #2 to 'load' (dtype must be fp32 or fp16)", 2) end
  local c
  local ok, res = pcall(function()
    c = M.config(dir)
    local map, handles = open_weights(dir)
    local function entry(name, shape)
      local e = map[name]
      if not e then error(dir .. ": tensor " .. name .. " is missing from the safetensors files", 0) end
      if shape_str(e.shape) ~= shape_str(shape) then
        error(e.file .. ": tensor " .. name .. " has shape " .. shape_str(e.shape) .. ", config.json implies " .. shape_str(shape), 0)
      end
      return e
    end
    local function single(name, shape)
      local e = entry(name, shape)
      local t = core.zeros(shape, dtype)
      e.h:read(e.i, t, 0, 0, name)
      return t
    end
    local L, d, kv, h = c.n_layers, c.dim, c.kv_dim, c.hidden
    local function stacked(suffix, shape, heads)
      local full = { L }
      for i, s in ipairs(shape) do full[i + 1] = s end
      local t = core.zeros(full, dtype)
      local per = 1
      for _, s in ipairs(shape) do per = per * s end
      for l = 0, L - 1 do
        local name = "model.layers." .. l .. "." .. suffix
        local e = entry(name, shape)
        e.h:read(e.i, t, l * per, heads or 0, name)
      end
      return t
    end
    local w = {
      embed = single("model.embed_tokens.weight", { c.vocab, d }),
      rms_att = stacked("input_layernorm.weight", { d }),
      wq = stacked("self_attn.q_proj.weight", { d, d }, c.n_heads),
      wk = stacked("self_attn.k_proj.weight", { kv, d }, c.n_kv_heads),
      wv = stacked("self_attn.v_proj.weight", { kv, d }),
      wo = stacked("self_attn.o_proj.weight", { d, d }),
      rms_ffn = stacked("post_attention_layernorm.weight", { d }),
      w1 = stacked("mlp.gate_proj.weight", { h, d }),
      w2 = stacked("mlp.down_proj.weight", { d, h }),
      w3 = stacked("mlp.up_proj.weight", { h, d }),
      rms_final = single("model.norm.weight", { d }),
    }
    if c.bias then
      w.bq = stacked("self_attn.q_proj.bias", { d }, c.n_heads)
      w.bk = stacked("self_attn.k_proj.bias", { kv }, c.n_kv_heads)
      w.bv = stacked("self_attn.v_proj.bias", { kv })
    end
    if c.shared_classifier then
      w.wcls = w.embed
    else
      w.wcls = single("lm_head.weight", { c.vocab, d })
    end
    for _, hd in ipairs(handles) do hd:close() end
    return w
  end)
  if not ok then error(res, 2) end
  return { config = c, weights = res }
end

return M
