-- `ane selftest` against the stand-in: every kernel agrees with the cpu backend, the JSON report
-- is complete, and an unavailable framework gives exit status 2 with the reason in the report.
local H = require "helpers"
local cjson = require "cjson"

local function read_json(path)
  local s = assert(H.read(path))
  os.remove(path)
  return cjson.decode(s)
end

describe("ane selftest", function()
  it("compares every kernel on cpu and ane and writes the report", function()
    local out = os.tmpname()
    local stdout, ok, code = H.ane { "selftest", "--out", out, "--evals", "2" }
    assert.is_true(ok, stdout)
    assert.equals(0, code)
    local r = read_json(out)
    assert.equals("ane (stand-in at " .. os.getenv("ANE_FRAMEWORK_PATH") .. ")", r.backend)
    assert.is_true(r.framework.available)
    assert.equals("standin", r.framework.facts.platform)
    assert.is_true(#r.cases >= 4)
    for _, c in ipairs(r.cases) do
      assert.is_true(c.ok, c.name)
      assert.equals(0, c.mismatches)
      assert.is_string(c.ane.hex)
      assert.is_number(c.cpu.compile_load_cpu_s)
      assert.is_number(c.ane.eval_cpu_s)
      assert.matches(H.escape(c.name) .. "%s+ok", stdout)
    end
  end)

  it("exits 2 and records why when the framework is missing", function()
    local out = os.tmpname()
    local stdout, ok, code = H.run { "env", "ANE_FRAMEWORK_PATH=/nonexistent/fw", H.ane_bin,
      "selftest", "--out", out }
    assert.is_false(ok)
    assert.equals(2, code)
    local r = read_json(out)
    assert.matches("framework not found", r.unavailable, 1, true)
    assert.same({}, r.cases)
    assert.matches("unavailable", stdout, 1, true)
  end)

  it("rejects unknown arguments", function()
    local _, ok, code, err = H.ane { "selftest", "--bogus" }
    assert.is_false(ok)
    assert.equals(3, code)
    assert.matches("unknown argument '--bogus'", err, 1, true)
  end)
end)
