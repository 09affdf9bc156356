--- ane.tokenizer: llama2.c tokenizer.bin and Hugging Face tokenizer.json, one ane.Tokenizer type.
--
--   tok = ane.tokenizer.load(path [, {vocab_size = N}])
--     path: a llama2.c tokenizer.bin (vocab_size, when given, is the checkpoint's; the file is
--     read to its end otherwise), a tokenizer.json, or a model directory holding tokenizer.json
--     (else tokenizer.bin). Raises on a bad file, naming it and what is wrong.
--   tok:encode(text, {bos = tok.add_bos, eos = false}) -> array of 0-based ids
--   tok:decode(prev_id, id) -> bytes; tok:decode_all(ids) -> bytes (BOS contributes nothing)
--   tok:piece(id), tok:score(id), tok:id(piece) -> id or nil, tok:close()
--   tok.vocab_size, tok.bos_id, tok.eos_id (nil when none), tok.kind ("llama2c" | "bpe"),
--   tok.add_bos, tok.max_len
--   ane.tokenizer.save_bin(path, pieces, scores, max_len) -- llama2.c's format, atomically
local core = require "ane.core"
local cjson = require "cjson"
local C = core._tokenizer

local M = {}

local function is_dir(path)
  local f = io.open(path .. "/.", "rb")
  if f then f:close() return true end
  return false
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

local function read_all(path)
  local f, err = io.open(path, "rb")
  if not f then error(err, 3) end
  local s = f:read("a")
  f:close()
  return s
end

M.save_bin = C.save_bin

-- ---- tokenizer.json (Hugging Face): the components are read here and handed to C ----

local function isnull(v) return v == nil or (cjson and v == cjson.null) end

local function unsupported(name, what, comp)
  error(name .. ": " .. what .. " " .. tostring(comp) .. " is not implemented by ane", 0)
end

local function regex_of(pattern, name, what)
  if type(pattern) ~= "table" then error(name .. ": " .. what .. ": pattern must be {String = ...} or {Regex = ...}", 0) end
  if type(pattern.Regex) == "string" then return pattern.Regex end
  if type(pattern.String) == "string" then -- a literal: escape every character Oniguruma treats specially
    return (pattern.String:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?%{%}%|\\/]", "\\%0"))
  end
  error(name .. ": " .. what .. ": pattern must be {String = ...} or {Regex = ...}", 0)
end

local function flatten(node, key, out, name, what)
  if isnull(node) then return out end
  if type(node) ~= "table" then error(name .. ": " .. what .. " must be an object", 0) end
  if node.type == "Sequence" then
    for _, n in ipairs(node[key] or {}) do flatten(n, key, out, name, what) end
  else
    out[#out + 1] = node
  end
  return out
end

local function normalizer_steps(j, name)
  local steps = {}
  for _, n in ipairs(flatten(j.normalizer, "normalizers", {}, name, "normalizer")) do
    if n.type == "NFC" then
      steps[#steps + 1] = { kind = "nfc" }
    elseif n.type == "Prepend" then
      steps[#steps + 1] = { kind = "prepend", a = n.prepend }
    elseif n.type == "Replace" then
      if type(n.pattern) ~= "table" or type(n.pattern.String) ~= "string" then
        unsupported(name, "normalizer", "Replace with a Regex pattern")
      end
      steps[#steps + 1] = { kind = "replace", a = n.pattern.String, b = n.content }
    else
      unsupported(name, "normalizer", n.type)
    end
  end
  return steps
end

local behaviors = { Isolated = "isolated", Removed = "removed", MergedWithPrevious = "merged_with_previous",
  MergedWithNext = "merged_with_next", Contiguous = "contiguous" }

local function pre_steps(j, name)
  local steps = {}
  for _, n in ipairs(flatten(j.pre_tokenizer, "pretokenizers", {}, name, "pre_tokenizer")) do
    if n.type == "Split" then
      local b = behaviors[n.behavior]
      if not b then unsupported(name, "pre_tokenizer Split behavior", n.behavior) end
      steps[#steps + 1] = { kind = "split", regex = regex_of(n.pattern, name, "pre_tokenizer Split"), behavior = b,
        invert = n.invert == true }
    elseif n.type == "ByteLevel" then
      steps[#steps + 1] = { kind = "bytelevel", add_prefix_space = n.add_prefix_space == true,
        use_regex = n.use_regex ~= false }
    elseif n.type == "Metaspace" then
      local scheme = n.prepend_scheme
      if isnull(scheme) then scheme = n.add_prefix_space == false and "never" or "always" end
      steps[#steps + 1] = { kind = "metaspace", replacement = n.replacement or "▁", prepend_scheme = scheme,
        split = n.split ~= false }
    else
      unsupported(name, "pre_tokenizer", n.type)
    end
  end
  return steps
end

local function decoder_of(j, name)
  local parts = flatten(j.decoder, "decoders", {}, name, "decoder")
  if #parts == 0 then return "none", false end
  if #parts == 1 and parts[1].type == "ByteLevel" then return "bytelevel", false end
  if #parts == 1 and parts[1].type == "Metaspace" then
    local scheme = parts[1].prepend_scheme
    return "metaspace", scheme ~= "never" and parts[1].add_prefix_space ~= false
  end
  local strip = false
  for _, d in ipairs(parts) do
    if d.type == "Replace" then
      if type(d.pattern) ~= "table" or d.pattern.String ~= "▁" or d.content ~= " " then
        unsupported(name, "decoder", "Replace other than \"▁\" -> \" \"")
      end
    elseif d.type == "Strip" then
      if d.content ~= " " or (d.stop or 0) ~= 0 or (d.start or 0) > 1 then unsupported(name, "decoder", "Strip other than one leading space") end
      strip = (d.start or 0) == 1
    elseif d.type ~= "ByteFallback" and d.type ~= "Fuse" then
      unsupported(name, "decoder", d.type)
    end
  end
  return "sentencepiece", strip
end

-- bos from the post-processor template: its first item, when that is a special token.
local function template_bos(j, name, ids_of)
  local pp = flatten(j.post_processor, "processors", {}, name, "post_processor")
  local bos
  for _, p in ipairs(pp) do
    if p.type == "TemplateProcessing" then
      local first = type(p.single) == "table" and p.single[1]
      if type(first) == "table" and type(first.SpecialToken) == "table" then
        local st = p.special_tokens and p.special_tokens[first.SpecialToken.id]
        bos = st and type(st.ids) == "table" and st.ids[1] or ids_of(first.SpecialToken.id)
      end
    elseif p.type ~= "ByteLevel" then
      unsupported(name, "post_processor", p.type)
    end
  end
  return bos and math.tointeger(bos)
end

local function token_content(v)
  if type(v) == "string" then return v end
  if type(v) == "table" and type(v.content) == "string" then return v.content end
end

--- An ane.Tokenizer from the text of a tokenizer.json (name for messages; the directory of name
-- is searched for tokenizer_config.json, which names bos/eos and add_bos_token).
function M.from_json(text, name)
  name = name or "tokenizer.json"
  local ok, j = pcall(cjson.decode, text)
  if not ok or type(j) ~= "table" then error(name .. ": not valid JSON: " .. tostring(j), 2) end
  local model = j.model
  if type(model) ~= "table" then error(name .. ": no model", 2) end
  if model.type ~= "BPE" then unsupported(name, "model", model.type) end
  if not isnull(model.dropout) then unsupported(name, "model BPE option", "dropout") end
  for _, k in ipairs({ "continuing_subword_prefix", "end_of_word_suffix" }) do
    if not isnull(model[k]) and model[k] ~= "" then unsupported(name, "model BPE option", k) end
  end
  if type(model.vocab) ~= "table" then error(name .. ": model.vocab must be an object", 2) end
  local pieces, in_model, n = {}, {}, 0
  for piece, id in pairs(model.vocab) do
    id = math.tointeger(id)
    if not id or id < 0 or id > 16777215 then error(name .. ": model.vocab[" .. tostring(piece) .. "] is not a valid id", 2) end
    if pieces[id + 1] then error(name .. ": model.vocab gives id " .. id .. " to two tokens", 2) end
    pieces[id + 1] = piece
    in_model[id + 1] = true
    if id + 1 > n then n = id + 1 end
  end
  local added, by_content = {}, {}
  for i, a in ipairs(type(j.added_tokens) == "table" and j.added_tokens or {}) do
    local id = math.tointeger(a.id)
    if not id or id < 0 or id > 16777215 or type(a.content) ~= "string" then
      error(name .. ": added_tokens[" .. i .. "] needs an id and a content", 2)
    end
    if pieces[id + 1] and pieces[id + 1] ~= a.content then
      error(name .. ": added token " .. a.content .. " has id " .. id .. ", which model.vocab gives to " .. pieces[id + 1], 2)
    end
    pieces[id + 1] = a.content
    added[#added + 1] = id
    by_content[a.content] = id
    if id + 1 > n then n = id + 1 end
  end
  for i = 1, n do
    if pieces[i] == nil then pieces[i] = false; in_model[i] = false
    elseif not in_model[i] then in_model[i] = false end
  end
  local merges = {}
  for i, m in ipairs(type(model.merges) == "table" and model.merges or {}) do
    if type(m) == "string" then
      local l, r = m:match("^([^ ]+) ([^ ]+)$")
      if not l then error(name .. ": merge " .. i .. " (\"" .. m .. "\") is not two tokens separated by one space", 2) end
      merges[i] = { l, r }
    elseif type(m) == "table" and type(m[1]) == "string" and type(m[2]) == "string" then
      merges[i] = { m[1], m[2] }
    else
      error(name .. ": merge " .. i .. " is neither \"a b\" nor [a, b]", 2)
    end
  end
  local function ids_of(content)
    if content == nil then return nil end
    return by_content[content] or (model.vocab[content] and math.tointeger(model.vocab[content]))
  end
  local ok2, res = pcall(function()
    local spec = {
      name = name, pieces = pieces, model = in_model, merges = merges, added = added,
      byte_fallback = model.byte_fallback == true, fuse_unk = model.fuse_unk == true,
      ignore_merges = model.ignore_merges == true,
      normalizer = normalizer_steps(j, name), pre = pre_steps(j, name),
    }
    spec.decoder, spec.decoder_strip = decoder_of(j, name)
    if not isnull(model.unk_token) then
      spec.unk_id = ids_of(model.unk_token)
      if not spec.unk_id then error(name .. ": model.unk_token " .. tostring(model.unk_token) .. " is not a token", 0) end
    end
    -- bos/eos: tokenizer_config.json beside the file, else the template and common names
    local dir = name:match("^(.*)/[^/]*$") or "."
    local cfg
    local f = io.open(dir .. "/tokenizer_config.json", "rb")
    if f then
      local okc, c = pcall(cjson.decode, f:read("a"))
      f:close()
      if okc and type(c) == "table" then cfg = c end
    end
    local tbos = template_bos(j, name, ids_of)
    spec.bos_id = (cfg and ids_of(token_content(cfg.bos_token))) or tbos or ids_of("<s>") or ids_of("<|begin_of_text|>")
    spec.eos_id = (cfg and ids_of(token_content(cfg.eos_token))) or ids_of("</s>") or ids_of("<|endoftext|>")
      or ids_of("<|end_of_text|>")
    if cfg and type(cfg.add_bos_token) == "boolean" then spec.add_bos = cfg.add_bos_token and spec.bos_id ~= nil
    else spec.add_bos = tbos ~= nil end
    return C.new_bpe(spec)
  end)
  if not ok2 then error(res, 2) end
  return res
end

--- Load a tokenizer (see the module comment).
function M.load(path, opts)
  if type(path) ~= "string" then error("bad argument #1 to 'load' (string expected, got " .. type(path) .. ")", 2) end
  opts = opts or {}
  for k in pairs(opts) do
    if k ~= "vocab_size" then error("bad argument #2 to 'load' (unknown option '" .. tostring(k) .. "')", 2) end
  end
  if is_dir(path) then
    local dir = path
    if exists(dir .. "/tokenizer.json") then path = dir .. "/tokenizer.json"
    elseif exists(dir .. "/tokenizer.bin") then path = dir .. "/tokenizer.bin"
    else error(dir .. ": no tokenizer.json or tokenizer.bin in this directory", 2) end
  end
  if path:match("%.json$") then
    local ok, tok = pcall(M.from_json, read_all(path), path)
    if not ok then error(tok, 2) end
    return tok
  end
  local ok, tok = pcall(C.load_bin, path, opts.vocab_size)
  if not ok then error(tok, 2) end
  return tok
end

return M
