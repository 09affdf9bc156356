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

  it("exits 3 and records why when the framework is missing", function()
    local out = os.tmpname()
    local stdout, ok, code = H.run { "env", "ANE_FRAMEWORK_PATH=/nonexistent/fw", H.ane_bin,
      "selftest", "--out", out }
    assert.is_false(ok)
    assert.equals(3, code)
    local r = read_json(out)
    assert.matches("framework not found", r.unavailable, 1, true)
    assert.same({}, r.cases)
    assert.matches("unavailable", stdout, 1, true)
  end)

  it("rejects bad arguments with its usage, exit 2; --help prints it on stdout, exit 0", function()
    for _, c in ipairs {
      { { "--bogus" }, "unknown argument '--bogus'" },
      { { "--evals", "0" }, "--evals expects a positive integer, got '0'" },
      { { "--evals", "-5" }, "--evals expects a positive integer, got '-5'" },
      { { "--evals", "1.5" }, "--evals expects a positive integer, got '1.5'" },
      { { "--evals" }, "option '--evals' needs a value" },
      { { "--backend", "nope" }, "--backend nope: unknown backend 'nope' (known: " },
    } do
      local out, ok, code, err = H.ane { "selftest", table.unpack(c[1]) }
      assert.same({ false, 2, "" }, { ok, code, out }, table.concat(c[1], " "))
      assert.equal("ane selftest: " .. c[2], err:sub(1, #("ane selftest: " .. c[2])))
      assert.matches("\nusage: ane selftest ", err)
    end
    local out, ok, code, err = H.ane { "selftest", "--help" }
    assert.same({ true, 0, "" }, { ok, code, err })
    assert.matches("^usage: ane selftest %[%-%-out FILE%]", out)
  end)
end)
