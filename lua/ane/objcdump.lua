--- ane.objcdump: classes as plain tables, and stable JSON, for the ane.objc probe scripts and
-- the REPL (docs/objc.md).
--
--   local D = require "ane.objcdump"
--   D.class(ane.objc.class("_ANEClient"))  -> {name, superclass, class_methods, instance_methods,
--                                             properties, ivars, protocols}
--   D.json(value)                          -> JSON text with object keys sorted, one entry a line
local D = {}

local function strip(list, keep)
  local out = {}
  for i, e in ipairs(list) do
    local r = {}
    for _, k in ipairs(keep) do r[k] = e[k] end
    out[i] = r
  end
  return out
end

--- Everything the runtime says about one class (its own members, not its superclasses').
function D.class(cls)
  local super = cls:superclass()
  return {
    name = cls:name(),
    superclass = super and super:name() or nil,
    class_methods = strip(cls:methods { class = true }, { "name", "encoding", "type" }),
    instance_methods = strip(cls:methods(), { "name", "encoding", "type" }),
    properties = strip(cls:properties(), { "name", "attributes", "type" }),
    ivars = strip(cls:ivars(), { "name", "encoding", "type", "offset" }),
    protocols = strip(cls:protocols(), { "name" }),
  }
end

local function is_array(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n == #t
end

local function encode(v, indent, out)
  local tv = type(v)
  if tv == "table" then
    local pad = ("  "):rep(indent + 1)
    if is_array(v) then
      if #v == 0 then out[#out + 1] = "[]"; return end
      out[#out + 1] = "[\n"
      for i, e in ipairs(v) do
        out[#out + 1] = pad
        encode(e, indent + 1, out)
        out[#out + 1] = i < #v and ",\n" or "\n"
      end
      out[#out + 1] = ("  "):rep(indent) .. "]"
    else
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = tostring(k) end
      table.sort(keys)
      out[#out + 1] = "{\n"
      for i, k in ipairs(keys) do
        local e = v[k]
        if e == nil then e = v[tonumber(k)] end
        out[#out + 1] = pad
        encode(k, indent + 1, out)
        out[#out + 1] = ": "
        encode(e, indent + 1, out)
        out[#out + 1] = i < #keys and ",\n" or "\n"
      end
      out[#out + 1] = ("  "):rep(indent) .. "}"
    end
  elseif tv == "string" then
    local ok, cjson = pcall(require, "cjson")
    out[#out + 1] = ok and cjson.encode(v) or ("%q"):format(v)
  elseif tv == "number" then
    out[#out + 1] = math.type(v) == "integer" and tostring(v) or ("%.17g"):format(v)
  elseif tv == "boolean" or tv == "nil" then
    out[#out + 1] = tostring(v == nil and "null" or v)
  else
    out[#out + 1] = ("%q"):format(tostring(v))
  end
end

--- JSON with sorted keys and one entry per line: the same input always gives the same text, so
-- dumps from two macOS versions diff line by line.
function D.json(v)
  local out = {}
  encode(v, 0, out)
  out[#out + 1] = "\n"
  return table.concat(out)
end

return D
