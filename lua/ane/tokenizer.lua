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

function M.from_json(text, name)
  error((name or "tokenizer.json") .. ": tokenizer.json is not supported yet", 2)
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
