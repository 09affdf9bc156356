-- probe_chaining: the chaining family of ane-private-api.md 9.2, phase by phase, through
-- ane.objc on a kernel compiled by ane.compile: _ANEBuffer from the kernel's surfaces,
-- _ANEIOSurfaceOutputSets with a stats surface, _ANEChainingRequest built and validated,
-- prepareChainingWithModel: attempted (its NSError or exception reported), shared events where
-- IOSurfaceSharedEvent exists. Each phase reports what came back; a phase whose class or
-- prerequisite is missing says so and the rest go on.
--   ane scripts/probe_chaining.lua [--json FILE] [--quick]
-- Skips (exit 0, with the reason) without the ane backend or an Objective-C runtime.
local ane = require "ane"
local P = require "ane.probe"

local function skip(why, argv)
  local json
  for i = 1, #argv do if argv[i] == "--json" then json = argv[i + 1] end end
  print("probe chaining: skipped: " .. why)
  if json then
    local f = assert(io.open(json, "w"))
    f:write(require("cjson").encode { probe = "chaining", skipped = why }, "\n")
    f:close()
  end
  os.exit(0)
end

local have_ane
for _, b in ipairs(ane.backends()) do
  if b.name == "ane" and b.available then have_ane = true end
end
if not have_ane then skip("the ane backend is not available here", arg) end
local objc = ane.objc
local ok_rt, why_rt = objc.available()
if not ok_rt then skip("no Objective-C runtime: " .. tostring(why_rt), arg) end
objc.framework()

local argv = { "--backend", "ane" }
for _, a in ipairs(arg) do argv[#argv + 1] = a end
local run = P.start("chaining", argv, { ch = 64, sp = 32, qos = 21 }, { ch = 16, sp = 8 })
local c = run.cfg

local state = {}
--- Run one phase: fn returns ok (boolean) and a result text; errors are reported, not raised.
local function phase(label, needs, fn)
  for _, n in ipairs(needs) do
    if state[n] == nil then
      run:row(label, { ok = false, result = "skipped: needs " .. n })
      return
    end
  end
  local okc, ok, text = pcall(fn)
  if not okc then
    local msg = tostring(ok)
    ok, text = false, msg:find("^skipped:") and msg or ("error: " .. msg)
  end
  run:row(label, { ok = ok and true or false, result = tostring(text) })
end

local function class(name)
  local cls = objc.class(name)
  if not cls then error(("skipped: class %s is absent"):format(name), 0) end
  return cls
end

local classes = { "_ANEIOSurfaceObject", "_ANEBuffer", "_ANEIOSurfaceOutputSets",
  "_ANEChainingRequest", "_ANEInputBuffersReady", "_ANEOutputSetEnqueue", "_ANESharedSignalEvent",
  "_ANESharedWaitEvent", "_ANESharedEvents", "_ANEProgramForEvaluation", "_ANEClient",
  "_ANEModel", "IOSurfaceSharedEvent" }
local present, absent = {}, {}
for _, n in ipairs(classes) do
  if objc.class(n) then present[#present + 1] = n else absent[#absent + 1] = n end
end
run:fact("classes_present", table.concat(present, " "))
run:fact("classes_absent", table.concat(absent, " "))

phase("kernel", {}, function()
  local k = run:compile((P.conv_program(c.ch, c.sp, 1, 7)))
  state.x, state.y, state.stats = k:new_input(1), k:new_output(1), k:new_output(1)
  state.x:copy(P.input(c.ch, c.sp))
  k:eval({ state.x }, { state.y })
  state.k = k
  state.o = k:objc()
  return state.o.request ~= nil, ("model %s, request %s, %d input and %d output surfaces"):format(
    state.o.model:name(), state.o.request and state.o.request:name() or "nil", #state.o.inputs,
    #state.o.outputs)
end)

phase("_ANEBuffer", { "o" }, function()
  local SO, B = class("_ANEIOSurfaceObject"), class("_ANEBuffer")
  local sel = "bufferWithIOSurfaceObject:symbolIndex:source:"
  local inobj = SO:call("objectWithIOSurface:", state.o.inputs[1])
  local outobj = SO:call("objectWithIOSurface:", state.o.outputs[1])
  state.bin = B:call(sel, inobj, 0, 0)     -- source 0 = ANE
  state.bout = B:call(sel, outobj, 0, 1)   -- source 1 = output
  return state.bin ~= nil and state.bout ~= nil, tostring(state.bin)
end)

phase("output sets", { "bout" }, function()
  local OS = class("_ANEIOSurfaceOutputSets")
  state.outset = OS:call("objectWithstatsSurRef:outputBuffer:", state.stats, objc.array { state.bout })
  return state.outset ~= nil, tostring(state.outset)
end)

phase("chaining request", { "bin", "outset" }, function()
  local CR = class("_ANEChainingRequest")
  -- the record's working combination: nil loop-back ids and procedure, @[] events, @0 x 3
  state.req = CR:call("chainingRequestWithInputs:outputSets:lbInputSymbolId:lbOutputSymbolId:"
    .. "procedureIndex:signalEvents:transactionHandle:fwEnqueueDelay:memoryPoolId:",
    objc.array { state.bin }, objc.array { state.outset }, nil, nil, nil, objc.array {}, 0, 0, 0)
  if not state.req then return false, "chainingRequestWith... returned nil" end
  local valid = state.req:call("validate")
  return valid, "validate = " .. (valid and "YES" or "NO")
end)

phase("prepareChaining", { "req" }, function()
  local client = class("_ANEClient"):call("sharedConnection")
  local ok, err = client:call("prepareChainingWithModel:options:chainingReq:qos:error:",
    state.o.model, objc.dict {}, state.req, c.qos)
  return ok, ok and "YES" or ("NO: " .. tostring(err))
end)

phase("shared events", {}, function()
  local E = class("IOSurfaceSharedEvent")
  local ev = E:call("new")
  local sig = class("_ANESharedSignalEvent"):call("signalEventWithValue:symbolIndex:eventType:sharedEvent:",
    1, 0, 0, ev)
  local wait = class("_ANESharedWaitEvent"):call("waitEventWithValue:sharedEvent:", 1, ev)
  return sig ~= nil and wait ~= nil, ("signal %s, wait %s"):format(tostring(sig), tostring(wait))
end)

if #absent > 0 then run:note("absent here: " .. table.concat(absent, ", ")) end
run:note("on macOS 15+ prepareChaining is expected to fail (Code=15 for _ANEModel, an exception "
  .. "for the in-memory model: ane-private-api.md 9.2); ok=false there is a result, not a bug")
run:finish()
