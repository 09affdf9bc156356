-- ane.objc on the ANE backend's kernels (k:objc) and the bridge's probe scripts, on the
-- stand-in framework.
local H = require "helpers"
local ane = require "ane"
local cjson = require "cjson"
local objc = ane.objc
local st = require "ane_standin"

local SRC_ADD = [[
program(1.3)
{
    func main<ios18>(tensor<fp16, [1, 4, 1, 32]> x) {
        tensor<fp16, [1, 4, 1, 32]> y = add(x = x, y = x)[name = string("dbl")];
    } -> (y);
}
]]

local function probe(name, args, env)
  local json = os.tmpname()
  local argv = { H.root .. "/scripts/probe_" .. name .. ".lua", "--json", json }
  for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
  local out, ok, _, err
  if env then
    local cmd = { "env", env, H.ane_bin }
    for _, a in ipairs(argv) do cmd[#cmd + 1] = a end
    out, ok, _, err = H.run(cmd)
  else
    out, ok, _, err = H.ane(argv)
  end
  local text = H.read(json)
  os.remove(json)
  return out, ok, err, text
end

describe("k:objc()", function()
  it("gives the kernel's model, request and surfaces as bridge objects", function()
    assert(objc.framework())
    do
      local k <close> = ane.compile(SRC_ADD, { backend = "ane" })
      k:load()
      local o = k:objc()
      assert.are.equal("_ANEInMemoryModel", o.model:name())
      assert.is_nil(o.request) -- no eval yet
      assert.are.equal(k:ane_info().hex, o.model:call("hexStringIdentifier"):lua())
      local x, y = k:new_input(1), k:new_output(1)
      k:eval({ x }, { y })
      o = k:objc()
      assert.are.equal("_ANERequest", o.request:name())
      assert.are.equal(1, #o.inputs)
      assert.are.equal(1, #o.outputs)
      assert.are.equal("userdata", type(o.inputs[1]))
      -- a surface goes back into the framework through the bridge
      local so = objc.send("_ANEIOSurfaceObject", "objectWithIOSurface:", o.inputs[1])
      assert.are.equal(o.inputs[1], so:call("ioSurface"))
      -- and a tensor on a surface converts to its IOSurfaceRef
      assert.are.equal(o.inputs[1], objc.send("_ANEIOSurfaceObject", "objectWithIOSurface:", x):call("ioSurface"))
      o, so = nil, nil
    end
    collectgarbage(); collectgarbage()
    assert.are.equal(0, st.live("_ANEInMemoryModel"))
    assert.are.equal(0, st.live("_ANEIOSurfaceObject"))
    assert.has_error(function() ane.compile(SRC_ADD, { backend = "cpu" }):objc() end)
  end)
end)

describe("objc probe scripts", function()
  it("probe_classes dumps every _ANE class as sorted, stable JSON", function()
    local out, ok, err, text = probe("classes", {})
    assert.is_true(ok, err .. out)
    assert.matches("_ANEInMemoryModel", out)
    local r = cjson.decode(text)
    assert.are.equal("classes", r.probe)
    local m = r.classes._ANEInMemoryModel
    assert.are.equal("NSObject", m.superclass)
    local types = {}
    for _, e in ipairs(m.instance_methods) do types[e.name] = e.type end
    assert.are.equal("BOOL (unsigned int, id, id, NSError **)", types["evaluateWithQoS:options:request:error:"])
    assert.are.same({ "MLE5" }, r.absent)
    local _, _, _, again = probe("classes", {})
    assert.are.equal(text, again) -- stable: the same text twice
  end)

  it("probe_chaining runs the phases as far as the stand-in goes", function()
    local out, ok, err, text = probe("chaining", { "--quick" })
    assert.is_true(ok, err .. out)
    local r = cjson.decode(text)
    local rows = {}
    for _, row in ipairs(r.rows) do rows[row.label] = row.values end
    assert.is_true(rows.kernel.ok)
    assert.is_true(rows._ANEBuffer.ok)
    assert.is_true(rows["output sets"].ok)
    assert.is_true(rows["chaining request"].ok)
    assert.matches("validate = YES", rows["chaining request"].result)
    assert.is_false(rows.prepareChaining.ok)
    assert.matches("Code=15", rows.prepareChaining.result)
    assert.matches("^skipped: class IOSurfaceSharedEvent is absent", rows["shared events"].result)
  end)

  it("probe_eval_paths measures processRequest and the direct path through the bridge", function()
    local out, ok, err, text = probe("eval_paths", { "--quick", "--backend", "ane" })
    assert.is_true(ok, err .. out)
    local rows = {}
    for _, row in ipairs(cjson.decode(text).rows) do rows[row.label] = row.values end
    assert.is_true(rows["objc processRequest"].ok)
    assert.is_true(rows["objc direct"].ok)
  end)

  it("skip cleanly, with the reason, where there is no Objective-C runtime", function()
    for _, name in ipairs { "classes", "chaining" } do
      local out, ok, err, text = probe(name, { "--quick" }, "ANE_OBJC_RUNTIME=/nonexistent/libobjc.so")
      assert.is_true(ok, err .. out)
      assert.matches("skipped: no Objective%-C runtime", out)
      assert.matches("Objective%-C runtime not found", cjson.decode(text).skipped)
    end
  end)
end)
