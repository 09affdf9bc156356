-- The `ane` host program: scripts, -e, exit codes, stderr.
local H = require "helpers"

describe("ane host", function()
  it("prints the version of the module", function()
    local out, ok = H.ane({ "-e", "print(require('ane').version)" })
    assert.is_true(ok)
    assert.equal("0.1.0\n", out)
  end)

  it("runs a script with arg set like lua", function()
    local f = H.tmpfile("print(arg[0], arg[1], select('#', ...), ...)")
    local out, ok = H.ane({ f, "x", "y" })
    assert.is_true(ok)
    assert.equal(f .. "\tx\t2\tx\ty\n", out)
  end)

  it("reports a script error with file:line and a traceback, exit 1", function()
    local f = H.tmpfile("local x = 1\nerror('boom')\n")
    local out, ok, code, err = H.ane({ f })
    assert.is_false(ok)
    assert.equal(1, code)
    assert.matches("^ane: " .. H.escape(f) .. ":2: boom\nstack traceback:", err)
  end)
end)
