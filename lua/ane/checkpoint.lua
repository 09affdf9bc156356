--- ane.checkpoint: what a training run leaves in its directory, written so that a SIGKILL at any
-- instant leaves the previous checkpoint or the new one, never a torn one.
--
--   DIR/model.bin   the weights in llama2.c's format (model:save), for run.c, ane's generator
--                   and --model; written first
--   DIR/state.bin   everything --resume needs, self-contained: the fp32 parameters, both AdamW
--                   moments, the step, the optimizer's scalars (update count, loss scale and its
--                   clean-step count), the data generator's state, and the run's config; written
--                   last, so it is the checkpoint's commit record
--
-- Both go through ane.atomic_write (temp file in DIR, fsync, rename, fsync of DIR). Resuming
-- reads only state.bin, so a kill between the two writes resumes from the previous state (and
-- model.bin, one checkpoint newer, is rewritten at the next one).
--
-- state.bin layout (little-endian):
--   "ANESTATE"  u32 version (1)  u32 header bytes  header (JSON)  zero padding to 64 bytes
--   then for each parameter in model:params() order: parameter, first moment, second moment
--   (fp32, raw). The header holds a checksum of all of that, the byte count, and names/sizes.
local ane = require "ane"
local cjson = require "cjson"

local M = {}

local MAGIC, VERSION = "ANESTATE", 1

local function fail(msg) error(msg, 0) end

local function write_atomic(path, pieces)
  local ok, err = ane.atomic_write(path, pieces)
  if not ok then fail(tostring(err)) end
end

local function hex64(x) return string.format("%016x", x) end

--- json(v) -> compact JSON text of v (tables with keys 1..n are arrays; others objects with
-- sorted keys). Numbers keep every bit (%.17g; integers as integers), unlike lua-cjson's 14
-- digits, so logged losses and saved settings compare exactly after a round trip.
local function json(v)
  local tv = type(v)
  if tv == "number" then
    if math.type(v) == "integer" then return tostring(v) end
    if v ~= v or v == math.huge or v == -math.huge then return "null" end
    if v == math.floor(v) and math.abs(v) < 2 ^ 53 then return string.format("%d", v) end
    return string.format("%.17g", v)
  elseif tv == "string" then
    return '"' .. v:gsub('[%c"\\]', function(c)
      local map = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\t"] = "\\t" }
      return map[c] or string.format("\\u%04x", c:byte())
    end) .. '"'
  elseif tv == "boolean" then
    return tostring(v)
  elseif tv == "table" then
    local n = #v
    if n > 0 or next(v) == nil then
      local parts = {}
      for i = 1, n do parts[i] = json(v[i]) end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = tostring(k) end
    table.sort(keys)
    local parts = {}
    for i, k in ipairs(keys) do parts[i] = json(k) .. ":" .. json(v[k]) end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  return "null"
end
M.json = json

--- config_diff(a, b) -> array of "key: A in the checkpoint, B in this run" for every key whose
-- value differs (a = the checkpoint's config, b = this run's), sorted by key.
function M.config_diff(a, b)
  local keys, seen = {}, {}
  for k in pairs(a) do if not seen[k] then keys[#keys + 1], seen[k] = k, true end end
  for k in pairs(b) do if not seen[k] then keys[#keys + 1], seen[k] = k, true end end
  table.sort(keys)
  local function show(v)
    if v == nil then return "(none)" end
    if math.type(v) == "float" and v == math.floor(v) and math.abs(v) < 2 ^ 53 then
      return string.format("%d", v) -- JSON numbers come back as floats
    end
    return tostring(v)
  end
  local out = {}
  for _, k in ipairs(keys) do
    local x, y = a[k], b[k]
    if x ~= y and not (type(x) == "number" and type(y) == "number" and x == y) then
      out[#out + 1] = string.format("%s: %s in the checkpoint, %s in this run", k, show(x), show(y))
    end
  end
  return out
end

--- save(dir, run): run = {model, opt, step, rng (hex state), config (flat table of scalars),
-- extra (table, optional JSON-able)}.
function M.save(dir, run)
  local model, opt = run.model, run.opt
  model:save(dir .. "/model.bin")
  local params = model:params()
  local st = opt:state(model)
  local pieces, names, h, bytes = { false }, {}, 0, 0
  for i, p in ipairs(params) do
    local mo = st.moments[i]
    for _, t in ipairs { p.param, mo.m, mo.v } do
      pieces[#pieces + 1] = t
      h = ane.nn.checksum(t, h)
      bytes = bytes + t:nbytes()
    end
    names[i] = { p.name, p.param:numel() }
  end
  local header = json {
    step = run.step, rng = run.rng, config = run.config, extra = run.extra or { none = true },
    opt = { t = st.t, clean = st.clean, skipped = st.skipped, loss_scale = st.loss_scale },
    params = names, data_bytes = bytes, checksum = hex64(h),
  }
  local head = MAGIC .. string.pack("<I4I4", VERSION, #header) .. header
  head = head .. string.rep("\0", (-#head) % 64)
  pieces[1] = head
  write_atomic(dir .. "/state.bin", pieces)
end

--- read_header(path) -> header table, data offset. Raises a message naming the file when it is
-- missing, not a state file, from another version, or damaged.
function M.read_header(path)
  local f, err = io.open(path, "rb")
  if not f then fail(err) end
  local size = f:seek("end")
  f:seek("set", 0)
  local pre = f:read(16)
  local function corrupt(why)
    if io.type(f) == "file" then f:close() end
    fail(string.format("%s: corrupt checkpoint state (%s); resume from another copy or start over "
      .. "without --resume", path, why))
  end
  if not pre or #pre < 16 then corrupt("file too short") end
  if pre:sub(1, 8) ~= MAGIC then corrupt("not an ane training state file") end
  local version, hlen = string.unpack("<I4I4", pre, 9)
  if version ~= VERSION then corrupt("format version " .. version .. ", this ane reads " .. VERSION) end
  if hlen > size - 16 then corrupt("header runs past the end of the file") end
  local text = f:read(hlen)
  f:close()
  local ok, h = pcall(cjson.decode, text or "")
  if not ok or type(h) ~= "table" or type(h.params) ~= "table" or type(h.opt) ~= "table"
    or type(h.config) ~= "table" or math.type(h.step) == nil then
    corrupt("unreadable header")
  end
  local off = 16 + hlen
  off = off + (-off) % 64
  if off + h.data_bytes ~= size then
    corrupt(string.format("%d bytes, expected %d", size, off + h.data_bytes))
  end
  return h, off
end

--- load(dir, run) -> header. run = {model, opt, config}: checks config against the checkpoint's
-- (an error names every difference), then fills the model's parameters and the optimizer's
-- moments and scalars from DIR/state.bin and verifies its checksum.
function M.load(dir, run)
  local path = dir .. "/state.bin"
  local h, off = M.read_header(path)
  local diff = M.config_diff(h.config, run.config)
  if #diff > 0 then
    fail(string.format("%s: the checkpoint is from another config:\n  %s\n(resume with the "
      .. "arguments it was started with, or use another --out)", path, table.concat(diff, "\n  ")))
  end
  local model, opt = run.model, run.opt
  local params = model:params()
  if #params ~= #h.params then
    fail(string.format("%s: %d parameters in the checkpoint, %d in the model", path, #h.params, #params))
  end
  local st = opt:state(model)
  local hsum = 0
  for i, p in ipairs(params) do
    local name, numel = h.params[i][1], h.params[i][2]
    if name ~= p.name or numel ~= p.param:numel() then
      fail(string.format("%s: parameter %d is %s (%d values) in the checkpoint, %s (%d) in the model",
        path, i, tostring(name), numel or -1, p.name, p.param:numel()))
    end
    for _, t in ipairs { p.param, st.moments[i].m, st.moments[i].v } do
      local ok, err = ane.nn.read_into(t, path, off)
      if not ok then fail(err) end
      off = off + t:nbytes()
      hsum = ane.nn.checksum(t, hsum)
    end
  end
  if hex64(hsum) ~= h.checksum then
    fail(path .. ": corrupt checkpoint state (checksum mismatch); resume from another copy or "
      .. "start over without --resume")
  end
  opt:load_state({ t = h.opt.t, clean = h.opt.clean, skipped = h.opt.skipped,
    loss_scale = h.opt.loss_scale }, model)
  return h
end

return M
