-- probe_eval_paths: the ways one kernel can be evaluated, side by side (research record at
-- 768x256: every path near 0.2 ms on the ANE; ane-private-api.md 5.2 and 8). Paths that the
-- selected backend does not have are listed as unavailable, not skipped silently.
--   ane scripts/probe_eval_paths.lua [--backend NAME] [--json out.json] [--quick]
local ane = require "ane"
local P = require "ane.probe"

local run = P.start("eval_paths", arg, { ch = 768, sp = 256, evals = 200 }, { ch = 64, sp = 32, evals = 5 })
local c = run.cfg
local prog, ws = P.conv_program(c.ch, c.sp, 1, 3)
local k = run:compile(prog)
local x = P.input(c.ch, c.sp)
local ref = k:eval { x }
local function per_eval(fn) return run:time(function() for _ = 1, c.evals do fn() end end, 3) / c.evals end
local function same(y)
  for ch = 1, c.ch, math.max(1, c.ch // 16) do
    if y:get(1, ch, 1, 1) ~= ref:get(1, ch, 1, 1) then return false end
  end
  return true
end

local y = ref:clone()
run:row("eval, new outputs", { ms = per_eval(function() k:eval { x } end) * 1e3, ok = true })
run:row("eval into outputs", { ms = per_eval(function() k:eval({ x }, { y }) end) * 1e3, ok = same(y) })
local ch <close> = ane.chain { k }
run:row("ane.chain of 1", { ms = per_eval(function() ch:run { x } end) * 1e3, ok = same(ch:outputs()[1]) })
if k.new_input and run.backend == "ane" then
  local xi, yo = k:new_input(1), k:new_output(1)
  xi:copy(x)
  run:row("backend-owned I/O", { ms = per_eval(function() k:eval({ xi }, { yo }) end) * 1e3, ok = same(yo) })
  for _, path in ipairs { "standard", "realtime" } do
    local ok, err = pcall(k.ane_configure, k, { path = path })
    if ok then
      run:row("ane path " .. path, { ms = per_eval(function() k:eval({ xi }, { yo }) end) * 1e3, ok = same(yo) })
    else
      run:row("ane path " .. path, { ok = false })
      run:note(path .. ": " .. tostring(err))
    end
  end
  -- processRequest and the direct client path: not in the backend, reached through ane.objc
  local objc = ane.objc
  local have_objc, objc_why = objc.available()
  if have_objc and k.objc then
    pcall(k.ane_configure, k, { path = "standard" })
    k:eval({ xi }, { yo }) -- the cached request now binds xi and yo
    local o, info = k:objc(), k:ane_info()
    local opts = objc.dict {}
    local PR = "processRequest:model:qos:qIndex:modelStringID:options:returnValue:error:"
    local program = o.model:responds("program") and o.model:call("program")
    if program and program:responds(PR) then
      local rv
      yo:fill(0)
      local ms = per_eval(function()
        local ok, r, err = program:call(PR, o.request, o.model, info.qos, 0, info.hex, opts)
        if not ok then error("processRequest: " .. tostring(err)) end
        rv = r
      end) * 1e3
      run:row("objc processRequest", { ms = ms, ok = same(yo) })
      run:fact("process_request_return_value", rv)
    else
      run:note("processRequest: the model has no program answering " .. PR)
    end
    local C = objc.class("_ANEClient")
    local client = C and C:call("sharedConnection")
    local DS = "doEvaluateDirectWithModel:options:request:qos:error:"
    if client and client:responds(DS) then
      yo:fill(0)
      local ms = per_eval(function()
        local ok, err = client:call(DS, o.model, opts, o.request, info.qos)
        if not ok then error("direct: " .. tostring(err)) end
      end) * 1e3
      run:row("objc direct", { ms = ms, ok = same(yo) })
    else
      run:note("direct path: no _ANEClient answering " .. DS)
    end
  else
    run:note("processRequest and the direct client path need ane.objc: " .. tostring(objc_why))
  end
else
  run:note(("backend %s has no ANE evaluation paths (standard/realtime request, IOSurface I/O); "
    .. "only the portable paths were measured"):format(run.backend))
end
run:fact("verified_against", "the first eval's output")
run:finish()
