-- The REPL as a person uses it: typed through a pseudo-terminal (spec/support/ptydrive.c), so
-- line editing, prompts, Ctrl-C and Ctrl-D go through a real terminal line discipline.
-- Each step waits for the next prompt ("\n> ") before typing on, as a person would.
local H = require "helpers"
local P = require "support.pty"

local function read_all(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

describe("the ane REPL", function()
  it("prints the value of an expression without '='", function()
    local out, code, err = P.repl {
      { "send", "1 + 2\n" }, { "expect", "\n3\n> " },
      { "send", "'a' .. 'b', nil, 2^10\n" }, { "expect", "\nab\tnil\t1024.0\n> " },
    }
    assert.equal(0, code, err)
    assert.matches("^ane 0%.1%.0 %(Lua 5%.4", out)
  end)

  it("shows a plain table one level deep, array part first, keys sorted", function()
    local out, code, err = P.repl {
      { "send", "{10, 20, zeta = 1, alpha = 'x', nested = {1}, [true] = 0}\n" },
      { "expect", '{10, 20, alpha = "x", nested = {...}, zeta = 1, [true] = 0}\n> ' },
    }
    assert.equal(0, code, err .. out)
  end)

  it("prints an error with a traceback and keeps going", function()
    local out, code, err = P.repl {
      { "send", "error('boom')\n" }, { "expect", "stdin:1: boom\nstack traceback:\n" },
      { "expect", "\n> " },
      { "send", "40 + 2\n" }, { "expect", "\n42\n> " },
    }
    assert.equal(0, code, err .. out)
    assert.not_matches("ane: stdin", out) -- no program name in interactive errors
  end)

  it("reports a syntax error and keeps going", function()
    local out, code, err = P.repl {
      { "send", "x = = 1\n" }, { "expect", "stdin:1: unexpected symbol near '='\n> " },
      { "send", "'still here'\n" }, { "expect", "\nstill here\n> " },
    }
    assert.equal(0, code, err .. out)
  end)

  it("continues an incomplete statement on the next line", function()
    local out, code, err = P.repl {
      { "send", "function sq(x)\n" }, { "expect", "\n>> " },
      { "send", "  return x * x\n" }, { "expect", "\n>> " },
      { "send", "end\n" }, { "expect", "\n> " },
      { "send", "sq(7)\n" }, { "expect", "\n49\n> " },
    }
    assert.equal(0, code, err .. out)
  end)

  it("interrupts a running statement on Ctrl-C and returns to the prompt", function()
    local out, code, err = P.repl {
      -- "spin" is printed once the statement runs, so ^C lands inside the loop
      { "send", "print('sp' .. 'in') while true do end\n" }, { "expect", "\nspin\n" },
      { "send", "\3" }, { "expect", "interrupted!\nstack traceback:" }, { "expect", "\n> " },
      { "send", "6 * 7\n" }, { "expect", "\n42\n> " },
    }
    assert.equal(0, code, err .. out)
  end)

  it("clears the line on Ctrl-C at the prompt, and drops a pending multi-line statement", function()
    local out, code, err = P.repl {
      { "send", "error('typed but never run')" }, { "expect", "never run')" },
      { "send", "\3" }, { "expect", "^C\n> " },
      { "send", "function half_typed()\n" }, { "expect", "\n>> " },
      { "send", "\3" }, { "expect", "^C\n> " },
      { "send", "half_typed\n" }, { "expect", "\nnil\n> " },
    }
    assert.equal(0, code, err .. out)
    assert.not_matches("traceback", out)
  end)

  it("clears the line on a Ctrl-C typed while it is still taking in keys", function()
    -- No waiting for the whole echo: ^C lands while the REPL is busy with the long line (and the
    -- terminal throws away the part not read yet). Every round must still end in "^C" and a
    -- fresh prompt; a ^C that went missing (handled on another thread, or a read left waiting
    -- for input the terminal discarded) stalls the run here. Many rounds, because one round
    -- hits that moment only sometimes.
    local steps, long = {}, string.rep("a", 2000)
    for i = 1, 40 do
      steps[#steps + 1] = { "send", "error('never run " .. i .. " " .. long .. "')" }
      steps[#steps + 1] = { "expect", "error('never run " .. i }
      steps[#steps + 1] = { "send", "\3" }
      steps[#steps + 1] = { "expect", "^C\n> " }
    end
    steps[#steps + 1] = { "send", "6 * 7\n" }
    steps[#steps + 1] = { "expect", "\n42\n> " }
    local out, code, err = P.repl(steps)
    local shown = (err .. out):gsub("a+", function(r) return #r > 8 and "a*" .. #r or r end)
    assert.equal(0, code, shown)
    assert.not_matches("traceback", out)
  end)

  it("gives statements the terminal in its usual mode (echo, whole lines)", function()
    -- readline leaves the terminal raw; a statement reading stdin must still get an echoed line.
    -- Type only once the statement runs ("say:" is printed then), as a person would.
    local out, code, err = P.repl {
      { "send", "io.write('sa' .. 'y: ') return io.read()\n" }, { "expect", "\nsay: " },
      { "send", "typed for io.read\n" },
      { "expect", "typed for io.read\ntyped for io.read\n> " },
    }
    assert.equal(0, code, err .. out)
  end)

  it("exits with status 0 on Ctrl-D", function()
    local out, code, err = P.repl {}
    assert.equal(0, code, err .. out)
  end)

  it("writes statements to the history file and recalls them in the next session", function()
    local hist = os.tmpname()
    os.remove(hist)
    local out, code, err = P.repl({
      { "send", "answer = 6 * 7\n" }, { "expect", "\n> " },
      { "send", "function two()\n" }, { "expect", "\n>> " },
      { "send", "return 2 end\n" }, { "expect", "\n> " },
    }, { history = hist })
    assert.equal(0, code, err .. out)
    assert.equal("answer = 6 * 7\nfunction two()\\nreturn 2 end\n", read_all(hist))
    -- ^P twice recalls "answer = 6 * 7" (the newest entry is the function)
    out, code, err = P.repl({
      { "send", "\16\16\n" }, { "expect", "\n> " },
      { "send", "answer\n" }, { "expect", "\n42\n> " },
    }, { history = hist })
    os.remove(hist)
    assert.equal(0, code, err .. out)
  end)

  it("completes globals and table fields on Tab", function()
    local out, code, err = P.repl {
      { "send", "ane.vers\t" }, { "expect", "ane.version" },
      { "send", "\n" }, { "expect", "\n0.1.0\n> " },
      { "send", "string.upp\t('x')\n" }, { "expect", "\nX\n> " },
    }
    assert.equal(0, code, err .. out)
  end)

  it("reads plain lines when stdin is not a terminal (ane -i)", function()
    local out, ok, code, err = H.ane({ "-i" }, "1 + 1\nfunction f()\nreturn 5 end\nf()\nerror('x')\n'after'\n")
    assert.is_true(ok, err)
    assert.equal(0, code)
    assert.matches("> 2\n", out)
    assert.matches("> >> > 5\n", out)
    assert.matches("> after\n", out)
    assert.matches("^stdin:1: x\nstack traceback:", err)
  end)
end)

describe("ane.host REPL helpers", function()
  local host = require "ane.host"

  it("formats values like the REPL prints them", function()
    assert.equal("1\ttwo\tnil\ttrue", host.format(1, "two", nil, true))
    assert.equal("{}", host.format({}))
    assert.equal('{"a\\nb", {}, {...}}', host.format({ "a\nb", {}, { 1 } }))
    local named = setmetatable({}, { __tostring = function() return "<thing>" end })
    assert.equal("<thing>", host.format(named))
    assert.equal("{[1.5] = 1, [false] = 2}", host.format({ [1.5] = 1, [false] = 2 }))
  end)

  it("shows at most 24 entries of a long table", function()
    local t = {}
    for i = 1, 100 do t[i] = i end
    local s = host.pretty(t)
    assert.matches("^{1, 2, 3, ", s)
    assert.matches(", 24, %.%.%. %(76 more%)}$", s)
  end)

  it("completes without running code", function()
    rawset(_G, "spec_tbl", setmetatable({ alpha = 1, alps = 2, beta = 3 },
      { __index = function() error("must not be called") end }))
    assert.same({ "spec_tbl.alpha", "spec_tbl.alps" }, host.complete("spec_tbl.al"))
    assert.same({ "spec_tbl" }, host.complete("spec_tb"))
    assert.same({}, host.complete("spec_tbl.nothing.deeper"))
    rawset(_G, "spec_tbl", nil)
    assert.same({ "string.upper" }, host.complete("string.upp"))
    local s = "x"
    rawset(_G, "spec_str", s)
    assert.same({ "spec_str:upper" }, host.complete("spec_str:upp"))
    rawset(_G, "spec_str", nil)
    assert.same({ "return" }, host.complete("retur"))
  end)
end)
