-- ane selftest --report (lua/ane/firstrun.lua) on the stand-in, for every answer a Mac could
-- give: request indices by declaration, name or size, with and without the model's own
-- description, external surfaces accepted or refused (statusType 0x9), and a crashing case.
local ane = require "ane"
local H = require "helpers"
local st = require "ane_standin"
local firstrun = require "ane.firstrun"
local cjson = require "cjson"

local ORDERS = { declaration = 0, name = 1, size = 2 }

local function env_run(env, argv)
  local parts = {}
  for k, v in pairs(env) do parts[#parts + 1] = k .. "=" .. H.shquote(v) end
  parts[#parts + 1] = "ANE_FRAMEWORK_PATH=" .. H.shquote(st.path())
  local errf = os.tmpname()
  local cmd = "env " .. table.concat(parts, " ") .. " " .. table.concat(argv, " ") .. " 2>" .. errf
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  local ok, _, code = p:close()
  local err = H.read(errf) or ""
  os.remove(errf)
  return out, ok == true, code, err
end

describe("ane selftest --report (first run)", function()
  before_each(function() st.reset() end)
  after_each(function() st.reset() end)

  for order, mode in pairs(ORDERS) do
    for _, described in ipairs { true, false } do
      it(("finds index order '%s' %s the model's description"):format(order, described and "from" or "without"), function()
        st.inject("io_order", mode)
        st.inject("describe", described and 1 or 0)
        for _, name in ipairs { "input_order", "output_order" } do
          local r = firstrun.run_case(name)
          assert.is_true(r.ok, cjson.encode(r))
          assert.equals(order, r.found)
          assert.equals(described, r.described)
        end
      end)
    end
  end

  it("runs every case in a child process and writes the report (name order, no description, 0x9)", function()
    local path = H.tmpdir("firstrun") .. "/report.json"
    local out, ok, code, err = env_run({ ANE_STANDIN_IO_ORDER = "size", ANE_STANDIN_DESCRIBE = "0",
      ANE_STANDIN_REFUSE_EXTERNAL = "1" }, { H.shquote(H.ane_bin), "selftest", "--report", H.shquote(path) })
    assert.is_true(ok, out .. err)
    assert.matches("input_order%s+ok%s+order: size", out)
    assert.matches("chain_direct%s+ok%s+direct binding refused; ane.chain stages a copy", out)
    assert.matches("run with ANE_IO_ORDER=size", out, 1, true)
    local rep = cjson.decode(H.read(path))
    assert.equals(#firstrun.cases, #rep.cases)
    for _, c in ipairs(rep.cases) do assert.is_true(c.ok, cjson.encode(c)) end
    assert.equals("size", rep.findings.input_order)
    assert.equals("size", rep.findings.output_order)
    assert.is_false(rep.findings.chain_direct)
    assert.equals("ANE_IO_ORDER=size", rep.findings.set)
    assert.is_string(rep.os)
    assert.is_string(rep.chip)
    -- and what it recommends works: ANE_IO_ORDER=size makes a kernel right on that device
    local script = H.tmpfile([[
local ane = require "ane"
local src = require("ane.firstrun")._programs.INPUTS
local k = ane.compile(src, { backend = "ane" }); k:load()
local y = k:eval { ane.full({ 1, 2, 1, 32 }, 1, "fp16"), ane.full({ 1, 1, 1, 32 }, 2, "fp16"), ane.full({ 1, 4, 1, 32 }, 0.25, "fp16") }
print(k:ane_info().io_source, y:get(1, 1, 1, 1))
]], ".lua")
    out, ok, _, err = env_run({ ANE_STANDIN_IO_ORDER = "size", ANE_STANDIN_DESCRIBE = "0", ANE_IO_ORDER = "size" },
      { H.shquote(H.ane_bin), H.shquote(script) })
    assert.is_true(ok, err)
    assert.equals("ANE_IO_ORDER\t122.0", out:gsub("\n$", ""))
  end)

  it("records a case that crashes its process and goes on with the others", function()
    local dir = H.tmpdir("firstrun-crash")
    -- a child killed by a signal on one case (SIGKILL: no handler, not even ASan's in a sanitizer
    -- run, can turn it into an exit) and the real ane for the others
    local wrapper = dir .. "/ane-wrapper"
    H.write(wrapper, "#!/bin/sh\n[ \"$3\" = two_functions ] && kill -KILL $$\nexec " .. H.shquote(H.ane_bin) .. " \"$@\"\n")
    os.execute("chmod +x " .. H.shquote(wrapper))
    local path = dir .. "/report.json"
    local script = H.tmpfile(("os.exit(require('ane.firstrun').report(%q, %q))"):format(path, wrapper), ".lua")
    local out, ok, code = env_run({}, { H.shquote(H.ane_bin), H.shquote(script) })
    assert.is_false(ok)
    assert.equals(1, code)
    assert.matches("two_functions%s+FAIL%s+crashed: signal 9", out)
    local rep = cjson.decode(H.read(path))
    for _, c in ipairs(rep.cases) do
      if c.name == "two_functions" then assert.equals("signal 9", c.crashed) else assert.is_true(c.ok) end
    end
  end)
end)
