-- What the runtime claims about the ane backend off macOS: with no framework path set it is
-- unavailable with the reason (Apple's framework exists only on macOS), and the project's
-- stand-in is used only when ANE_FRAMEWORK_PATH names it, every report then saying so.
local H = require "helpers"
local cjson = require "cjson"

local uname = io.popen("uname -s"):read("l")
if uname == "Darwin" then
  pending("off-macOS claims: this is macOS")
  return
end

local STANDIN = os.getenv("ANE_FRAMEWORK_PATH") or (H.build .. "/standin/libANEStandin.so")
local WHY = "not macOS (Apple's private framework exists only there)"

-- the host with ANE_FRAMEWORK_PATH removed (default build, as installed) or set to path
local function ane(fw, args)
  local argv = { "env" }
  if fw then argv[#argv + 1] = "ANE_FRAMEWORK_PATH=" .. fw else argv[#argv + 1] = "-u"; argv[#argv + 1] = "ANE_FRAMEWORK_PATH" end
  argv[#argv + 1] = H.ane_bin
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  return H.run(argv)
end

local function ane_entry(json)
  for _, b in ipairs(cjson.decode(json).backends) do
    if b.name == "ane" then return b end
  end
end

describe("off macOS, without ANE_FRAMEWORK_PATH", function()
  it("ane info says the ane backend is unavailable and why", function()
    local out, ok, _, err = ane(nil, { "info" })
    assert(ok, err)
    assert.matches("\nbackends +ane   unavailable %- " .. H.escape(WHY) .. "\n", out)
    assert.not_matches("stand%-in", out)
    assert.matches("default backend +cpu", out)
  end)

  it("ane info --json carries the same reason", function()
    local out, ok, _, err = ane(nil, { "info", "--json" })
    assert(ok, err)
    local b = ane_entry(out)
    assert.is_false(b.available)
    assert.equal(WHY, b.why)
    assert.equal("ane", b.label)
  end)

  it("the backend refuses to run, naming the reason", function()
    local code = [[
      local ane = require "ane"
      local fw = ane.ane_framework()
      print("path", fw.path, "standin", fw.standin)
      print(pcall(ane.compile, "program(1.3) {}", { backend = "ane" }))
    ]]
    local out, ok, _, err = ane(nil, { "-e", code })
    assert(ok, err)
    assert.matches("path\tnil\tstandin\tfalse", out, 1, true)
    assert.matches("false\tcompile: backend 'ane' is not available here: " .. WHY, out, 1, true)
    local _, ok2, _, err2 = ane(nil, { "--backend", "ane", "-e", "print(1)" })
    assert.is_false(ok2)
    assert.matches(WHY, err2, 1, true)
  end)
end)

describe("with ANE_FRAMEWORK_PATH naming the stand-in", function()
  local label = "ane (stand-in at " .. STANDIN .. ")"

  it("ane info names it as the stand-in", function()
    local out, ok, _, err = ane(STANDIN, { "info" })
    assert(ok, err)
    assert.matches("\nbackends +" .. H.escape(label) .. " available %- ", out)
    local b = ane_entry((ane(STANDIN, { "info", "--json" })))
    assert.is_true(b.available)
    assert.equal(label, b.label)
  end)

  it("ane selftest's JSON report names it as the stand-in", function()
    local json = os.tmpname()
    local out, ok, _, err = ane(STANDIN, { "selftest", "--out", json, "--evals", "1" })
    assert(ok, out .. err)
    local r = cjson.decode((assert(H.read(json))))
    os.remove(json)
    assert.equal(label, r.backend)
    assert.is_true(r.framework.standin)
    assert.equal("standin", r.framework.facts.platform)
    for _, c in ipairs(r.cases) do assert.equal(label, c.ane.backend) end
  end)

  it("a probe's table and JSON name it as the stand-in", function()
    local json = os.tmpname()
    local out, ok, _, err = ane(STANDIN, { H.root .. "/scripts/probe_eval_throughput.lua", "--quick",
      "--backend", "ane", "--json", json })
    assert(ok, out .. err)
    assert.matches("probe eval_throughput on backend " .. H.escape(label) .. " %(quick%)", out)
    local r = cjson.decode((assert(H.read(json))))
    os.remove(json)
    assert.equal(label, r.backend)
  end)
end)
