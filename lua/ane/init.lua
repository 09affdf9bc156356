--- ane: Apple Neural Engine research from Lua.
-- `require "ane"` returns this table. The C core is `ane.core`; the Lua libraries are loaded
-- lazily as fields (`ane.mil`, `ane.chain`, ...), so `require "ane"` stays cheap.
local core = require "ane.core"

local ane = {}
for k, v in pairs(core) do ane[k] = v end

-- Lua submodules, loaded on first use: ane.mil -> require "ane.mil".
local lazy = { mil = true, stories = true, double_buffer = true, probe = true, llm = true, model = true }
setmetatable(ane, {
  __index = function(t, k)
    if lazy[k] then
      local m = require("ane." .. k)
      rawset(t, k, m)
      return m
    end
  end,
})

return ane
