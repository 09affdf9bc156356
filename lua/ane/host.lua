--- ane.host: small helpers the `ane` program and `ane info` share.
-- Not part of the experiment API; kept in Lua so the C host stays small.
local M = {}

--- The runtime's backends as a list of { name, label, available, why, description }, sorted by
-- name (label: the name as reports show it, "ane (stand-in at PATH)" on the test stand-in),
-- or nil when this build cannot list them (no ane.backends yet).
-- ane.backends() may return names, records, or a name -> record/boolean map; all are accepted.
function M.backend_list()
  local ok, ane = pcall(require, "ane")
  if not ok or type(rawget(ane, "backends") or ane.backends) ~= "function" then return nil end
  local list = {}
  for k, v in pairs(ane.backends()) do
    local rec = { name = type(k) == "string" and k or nil, available = true }
    if type(v) == "string" then
      rec.name = v
    elseif type(v) == "boolean" then
      rec.available = v
    elseif type(v) == "table" then
      rec.name = v.name or rec.name
      if v.available ~= nil then rec.available = v.available and true or false end
      rec.why = v.why or v.reason
      rec.description = v.description
      rec.label = v.label
    end
    rec.label = rec.label or rec.name
    if rec.name then list[#list + 1] = rec end
  end
  table.sort(list, function(a, b) return a.name < b.name end)
  return list
end

--- Raise a clear error if `name` is not a backend this runtime knows, or is known but
-- unavailable here. Accepts any name when the runtime cannot list its backends yet.
function M.check_backend(name)
  local list = M.backend_list()
  if not list then return true end
  local names = {}
  for _, b in ipairs(list) do
    if b.name == name then
      if not b.available then
        error(string.format("backend '%s' is not available here%s", name,
          b.why and (": " .. b.why) or ""), 0)
      end
      return true
    end
    names[#names + 1] = b.name
  end
  error(string.format("unknown backend '%s' (known: %s)", name, table.concat(names, ", ")), 0)
end

-- {=================================================================
-- REPL printing
-- ==================================================================

local MAX_ITEMS = 24      -- table entries shown before "..."
local MAX_STRING = 80     -- longer strings inside tables are cut

local function quote(s)
  if #s > MAX_STRING then s = s:sub(1, MAX_STRING) .. "..." end
  return (string.format("%q", s):gsub("\\\n", "\\n"))
end

-- A table with its own identity (a metatable naming a type or printing itself) is shown by
-- tostring; a plain table is opened one level.
local function is_plain(t)
  local mt = getmetatable(t)
  return not (mt and (rawget(mt, "__tostring") or rawget(mt, "__name")))
end

local function short(v)
  local tv = type(v)
  if tv == "string" then return quote(v) end
  if tv == "table" and is_plain(v) then return next(v) == nil and "{}" or "{...}" end
  return tostring(v)
end

local key_rank = { number = 1, string = 2, boolean = 3 }
local function key_less(a, b)
  local ra, rb = key_rank[type(a)] or 4, key_rank[type(b)] or 4
  if ra ~= rb then return ra < rb end
  if ra == 1 or ra == 2 then return a < b end
  return tostring(a) < tostring(b)
end

--- One-level view of a plain table: the array part in order, then the other keys sorted.
function M.pretty(t)
  if type(t) ~= "table" or not is_plain(t) then return tostring(t) end
  local items, n = {}, 0
  local len = 0
  while rawget(t, len + 1) ~= nil do len = len + 1 end
  for i = 1, math.min(len, MAX_ITEMS) do items[#items + 1] = short(rawget(t, i)) end
  local keys = {}
  for k in next, t do
    if not (math.type(k) == "integer" and k >= 1 and k <= len) then keys[#keys + 1] = k end
  end
  table.sort(keys, key_less)
  for _, k in ipairs(keys) do
    if #items >= MAX_ITEMS then break end
    local ks = type(k) == "string" and k:match("^[%a_][%w_]*$") and k or ("[" .. short(k) .. "]")
    items[#items + 1] = ks .. " = " .. short(rawget(t, k))
  end
  n = len + #keys
  if n > #items then items[#items + 1] = string.format("... (%d more)", n - #items) end
  return "{" .. table.concat(items, ", ") .. "}"
end

--- What the REPL prints for the values of an expression: tab-separated; strings as they are,
-- plain tables opened one level, everything else through tostring.
function M.format(...)
  local out = {}
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    out[i] = type(v) == "table" and M.pretty(v) or tostring(v)
  end
  return table.concat(out, "\t")
end

-- }=================================================================

-- {=================================================================
-- REPL completion
-- ==================================================================

local keywords = {
  "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in",
  "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
}

-- Fields reachable from v without running code: its own keys (tables) and those of the
-- __index tables of its metatables (methods of userdata, strings, lazy modules already loaded).
local function fields(v, out, depth)
  depth = depth or 0
  if depth > 4 then return out end
  if type(v) == "table" then
    for k in next, v do
      if type(k) == "string" then out[k] = type(rawget(v, k)) end
    end
  end
  local mt = getmetatable(v)
  if type(mt) == "table" then
    local idx = rawget(mt, "__index")
    if type(idx) == "table" then fields(idx, out, depth + 1) end
  end
  return out
end

local function lookup(v, name)
  if type(v) == "table" then
    local r = rawget(v, name)
    if r ~= nil then return r end
  end
  local mt = getmetatable(v)
  local idx = type(mt) == "table" and rawget(mt, "__index")
  if type(idx) == "table" then return lookup(idx, name) end
  return nil
end

--- Completions for the word being typed: "pri" -> {"print"}, "ane.ver" -> {"ane.version"},
-- "s:up" -> {"s:upper"} when s is a string. Never calls user code (no __index functions).
function M.complete(text)
  local path, sep, partial = text:match("^([%a_][%w_%.]-)([%.:])([%a_]?[%w_]*)$")
  local base, prefix
  if path then
    base = _G
    for name in path:gmatch("[^%.]+") do
      base = lookup(base, name)
      if base == nil then return {} end
    end
    prefix = path .. sep
  else
    partial = text:match("^[%a_]?[%w_]*$")
    if not partial then return {} end
    base, prefix = _G, ""
  end
  local found = {}
  for k, ty in pairs(fields(base, {})) do
    if k:match("^[%a_][%w_]*$") and k:sub(1, #partial) == partial and (sep ~= ":" or ty == "function") then
      found[#found + 1] = prefix .. k
    end
  end
  if not path then
    for _, k in ipairs(keywords) do
      if k:sub(1, #partial) == partial then found[#found + 1] = k end
    end
  end
  table.sort(found)
  return found
end

-- }=================================================================

return M
