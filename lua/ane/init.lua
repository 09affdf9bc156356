--- ane: Apple Neural Engine research from Lua.
-- `require "ane"` returns this table. The C core is `ane.core`; the Lua libraries are loaded
-- lazily as fields (`ane.mil`, `ane.chain`, ...), so `require "ane"` stays cheap.
local core = require "ane.core"

local ane = {}
for k, v in pairs(core) do ane[k] = v end
-- Error messages name functions through package.loaded ("bad argument #1 to 'ane.compile'"):
-- the core's own table would make them 'ane.core.compile', a name no user wrote. So the core
-- module becomes a view of this table with no fields of its own (require "ane.core" still works).
package.loaded["ane.core"] = setmetatable({}, { __index = ane })

-- Lua submodules, loaded on first use: ane.mil -> require "ane.mil".
local lazy = { mil = true, stories = true, double_buffer = true, probe = true, llm = true, model = true,
  tokenizer = true, hf = true }
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
