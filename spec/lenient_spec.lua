-- One `lenient` switch with one meaning wherever MIL text enters: `ane mil check|fmt|run
-- --lenient`, ane.compile / q:compile / ane.mil_parse / ane.mil_parse_file {lenient = true}.
-- Without it a lenient-only form is refused with a message naming the switch.
local ane = require "ane"
local H = require "helpers"

-- bare `false`/`true` arguments: lenient-only (shared/docs/mil-reference.md 4.2)
local TEXT = [[
program(1.3)
{
    func main<ios18>(tensor<fp32, [2, 3]> a, tensor<fp32, [2, 3]> b) {
        tensor<fp32, [2, 2]> y = matmul(transpose_x = false, transpose_y = true, x = a, y = b)[name = string("mm")];
    } -> (y);
}
]]
local WANT = "4:55: bare 'false' is accepted only with --lenient (or {lenient = true}); write bool(false)"

local function first_line(s) return (tostring(s):match("^[^\n]*")) end

local function check_kernel(k)
  k:load()
  local a = ane.from_table({ { 1, 2, 3 }, { 4, 5, 6 } }, "fp32")
  assert.same({ { 14, 32 }, { 32, 77 } }, k:eval({ a, a }):to_table())
  k:close()
end

describe("the lenient switch", function()
  it("ane.compile refuses the form naming the switch, and takes {lenient = true}", function()
    local ok, err = pcall(ane.compile, TEXT, { backend = "cpu" })
    assert.is_false(ok)
    assert.equal("<string>:" .. WANT, first_line(err))
    check_kernel(ane.compile(TEXT, { backend = "cpu", lenient = true }))
    check_kernel(ane.compile(TEXT:gsub("= false", "= bool(false)"):gsub("= true", "= bool(true)"),
      { backend = "cpu", lenient = false }))
  end)

  it("q:compile takes the same option with the same meaning", function()
    local q <close> = ane.queue()
    local ok, err = pcall(q.compile, q, TEXT, { backend = "cpu" })
    assert.is_false(ok)
    assert.equal("<string>:" .. WANT, first_line(err))
    check_kernel(q:compile(TEXT, { backend = "cpu", lenient = true }):wait())
  end)

  it("ane.mil_parse and ane.mil_parse_file take it too", function()
    local ok, err = pcall(ane.mil_parse, TEXT, "t.mil")
    assert.is_false(ok)
    assert.equal("t.mil:" .. WANT, first_line(err))
    assert.equal("bool(false)", ane.mil_parse(TEXT, "t.mil", { lenient = true }):ops()[1].inputs.transpose_x)
    local f = H.tmpfile(TEXT, ".mil")
    ok, err = pcall(ane.mil_parse_file, f)
    assert.is_false(ok)
    assert.equal(f .. ":" .. WANT, first_line(err))
    assert.is_truthy(ane.mil_parse_file(f, { lenient = true }))
  end)

  it("is a boolean everywhere", function()
    local msg = "option 'lenient' must be a boolean"
    assert.matches(msg, select(2, pcall(ane.compile, TEXT, { backend = "cpu", lenient = "yes" })), 1, true)
    local q <close> = ane.queue()
    assert.matches(msg, select(2, pcall(q.compile, q, TEXT, { backend = "cpu", lenient = 1 })), 1, true)
    assert.matches(msg, select(2, pcall(ane.mil_parse, TEXT, "t.mil", { lenient = "yes" })), 1, true)
    assert.matches(msg, select(2, pcall(ane.mil_parse_file, "/nonexistent.mil", { lenient = 0 })), 1, true)
  end)

  it("ane mil check, fmt and run take --lenient and list it in their usage", function()
    local f = H.tmpfile(TEXT, ".mil")
    for _, sub in ipairs { "check", "fmt", "run" } do
      local _, ok, code, err = H.ane { "mil", sub, f }
      assert.is_false(ok, sub)
      assert.equal(1, code)
      assert.equal(f .. ":" .. WANT, first_line(err), sub)
    end
    local _, ok, _, err = H.ane { "mil", "check", "--lenient", f }
    assert(ok, err)
    local out
    out, ok, _, err = H.ane { "mil", "fmt", "--lenient", f }
    assert(ok, err)
    assert.matches("transpose_x = bool(false)", out, 1, true) -- fmt writes the strict form
    local a = os.tmpname() .. ".npy"
    local y = os.tmpname() .. ".npy"
    assert.is_true(ane.from_table({ { 1, 2, 3 }, { 4, 5, 6 } }, "fp32"):save_npy(a))
    _, ok, _, err = H.ane { "mil", "run", "--lenient", f, "--backend", "cpu", "--in", "a=" .. a,
      "--in", "b=" .. a, "--out", "y=" .. y }
    assert(ok, err)
    assert.same({ { 14, 32 }, { 32, 77 } }, assert(ane.load_npy(y)):to_table())
    os.remove(a)
    os.remove(y)
    local usage
    usage, ok, _, err = H.ane { "mil", "--help" }
    usage = usage .. err -- the usage text, wherever this version prints it
    for _, sub in ipairs { "check", "fmt", "run" } do
      local line = usage:match("ane mil " .. sub .. " [^\n]*\n[^\n]*")
      assert.is_truthy(line, sub)
      assert.matches("[--lenient]", line, 1, true)
    end
  end)
end)
