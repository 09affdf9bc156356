-- ane.queue / ane.Future: background compiles whose results and errors arrive on wait.
local ane = require "ane"
local H = require "helpers"

-- y = x * k on [1, 8, 1, 4] fp16: each k gives a distinct program (distinct weights).
local function scaled(k)
  return ([[
program(1.3)
{
    func main<ios18>(tensor<fp16, [1, 8, 1, 4]> x) {
        fp16 k = const()[name = string("k"), val = fp16(%s)];
        tensor<fp16, [1, 8, 1, 4]> y = mul(x = x, y = k)[name = string("m")];
    } -> (y);
}
]]):format(("%.1f"):format(k))
end

local function input()
  local x = ane.zeros({ 1, 8, 1, 4 }, "fp16")
  for i = 1, 32 do x:set(1, (i - 1) // 4 + 1, 1, (i - 1) % 4 + 1, (i % 7) - 3) end
  return x
end

-- The kernel computes x * k exactly (small integers are exact in fp16).
local function assert_scales(kern, k)
  local x = input()
  local y = kern:eval { x }
  for c = 1, 8 do
    for s = 1, 4 do
      assert.are.equal(x:get(1, c, 1, s) * k, y:get(1, c, 1, s))
    end
  end
end

describe("ane.queue", function()
  it("compiles in the background and hands back the same kind of kernel as ane.compile", function()
    local q <close> = ane.queue { workers = 2, capacity = 4 }
    local f = q:compile(scaled(3))
    local k = f:wait()
    assert.are.equal(getmetatable(ane.compile(scaled(1))), getmetatable(k))
    assert_scales(k, 3)
    assert.is_true(f:done())
    assert.are.equal("done", f:state())
    assert.are.equal(k, f:wait()) -- a second wait returns the same kernel
    assert.is_false(f:cancel())   -- cancelling a finished future is a no-op
    assert.are.equal(k, f:wait(0))
  end)

  it("delivers every result of many compiles to the right future", function()
    local q <close> = ane.queue { workers = 2, capacity = 4 } -- capacity < jobs: back-pressure
    local fs = {}
    for i = 1, 24 do fs[i] = q:compile(scaled(i % 9 - 4)) end
    for i = 1, 24 do assert_scales(fs[i]:wait(), i % 9 - 4) end
    local s = q:stats()
    assert.are.equal(24, s.submitted)
    assert.are.equal(24, s.done)
  end)

  it("raises parse and check errors at submission, with the program's position", function()
    local q <close> = ane.queue {}
    local bad = scaled(2):gsub("mul%(x = x, y = k%)", "mul(x = x, y = nope)")
    local ok, err = pcall(q.compile, q, bad)
    assert.is_false(ok)
    assert.matches("nope", err)
    assert.matches(":%d+:%d+:", err)
    assert.are.equal(0, q:stats().submitted)
  end)

  it("delivers a compile error from the worker on wait, with the same message ane.compile gives", function()
    -- Strict mode refuses asin (no ANE path) in the backend's compile, i.e. on the worker.
    local prog = [[
program(1.3)
{
    func main<ios18>(tensor<fp16, [1, 8, 1, 4]> x) {
        tensor<fp16, [1, 8, 1, 4]> y = asin(x = x)[name = string("y")];
    } -> (y);
}
]]
    local q <close> = ane.queue {}
    local f = q:compile(prog, { strict = true, backend = "cpu" }) -- accepted: the program is valid
    local ok, err = pcall(f.wait, f)
    assert.is_false(ok)
    local ok2, err2 = pcall(ane.compile, prog, { strict = true, backend = "cpu" })
    assert.is_false(ok2)
    assert.are.equal(err2, err)
    assert.matches("asin", err)
    assert.matches(":4:9:", err) -- the program's own position
    assert.are.equal("failed", f:state())
    assert.is_false(f:cancel())
    assert.are.equal(1, q:stats().failed)
    -- Without strict mode the same program compiles.
    local x = ane.full({ 1, 8, 1, 4 }, 0.5, "fp16")
    local y = q:compile(prog, { backend = "cpu" }):wait():eval { x }
    assert.is_true(math.abs(y:get(1, 1, 1, 1) - math.asin(0.5)) < 1e-3)
  end)

  it("reports a timeout as nil plus a message, then the result once it is there", function()
    local q <close> = ane.queue { workers = 1 }
    q:pause()
    local f = q:compile(scaled(2))
    local k, msg = f:wait(0.01)
    assert.is_nil(k)
    assert.matches("timed out", msg)
    assert.is_false(f:done())
    assert.are.equal("pending", f:state())
    q:resume()
    assert_scales(f:wait(), 2)
  end)

  it("cancels a pending compile: wait raises 'cancelled', a second cancel is a no-op", function()
    local q <close> = ane.queue { workers = 1 }
    q:pause()
    local a, b = q:compile(scaled(2)), q:compile(scaled(5))
    assert.is_true(a:cancel())
    assert.is_false(a:cancel())
    assert.is_true(a:done())
    assert.are.equal("cancelled", a:state())
    local ok, err = pcall(a.wait, a)
    assert.is_false(ok)
    assert.matches("cancelled", err)
    assert.are.equal(0, q:stats().queued - 1) -- only b remains queued
    q:resume()
    assert_scales(b:wait(), 5)
    assert.are.equal(1, q:stats().cancelled)
  end)

  it("refuses compiles on a closed queue and cancels what close found pending", function()
    local q = ane.queue { workers = 1 }
    q:pause()
    local f = q:compile(scaled(2))
    q:close()
    assert.matches("cancelled", select(2, pcall(f.wait, f)))
    assert.has_error(function() q:compile(scaled(2)) end, "queue is closed")
    assert.matches("closed", tostring(q))
    q:close() -- idempotent
    assert.matches("ane.Future %(cancelled%)", tostring(f))
  end)

  it("try_compile returns nil and a message instead of blocking on a full queue", function()
    local q <close> = ane.queue { workers = 1, capacity = 2 }
    q:pause()
    local a, b = q:try_compile(scaled(1)), q:try_compile(scaled(2))
    assert.is_truthy(a and b)
    local c, msg = q:try_compile(scaled(3))
    assert.is_nil(c)
    assert.matches("queue full", msg)
    q:resume()
    assert_scales(b:wait(), 2)
  end)

  it("checks its arguments", function()
    assert.has_error(function() ane.queue { workers = 0 } end)
    assert.matches("unknown option 'bogus'", select(2, pcall(ane.queue, { bogus = 1 })))
    assert.matches("workers", select(2, pcall(ane.queue, { workers = "two" })))
    assert.matches("'idle' must be a boolean", select(2, pcall(ane.queue, { idle = 1 })))
    assert.matches("'nice' must be an integer in 0..19", select(2, pcall(ane.queue, { nice = 25 })))
    local iq <close> = ane.queue { idle = true, nice = 19 } -- lowest priority still compiles
    assert_scales(iq:compile(scaled(3)):wait(), 3)
    local q <close> = ane.queue {}
    assert.has_error(function() q:compile(42) end)
    local f = q:compile(scaled(1))
    assert.matches("timeout must be >= 0", select(2, pcall(f.wait, f, -1)))
    assert.matches("ane.Queue expected", select(2, pcall(q.compile, f, scaled(1))))
  end)

  it("survives a script that exits with compiles still pending", function()
    local script = H.tmpfile(([[
      local ane = require "ane"
      local q = ane.queue { workers = 1, capacity = 64 }
      local fs = {}
      for i = 1, 30 do fs[i] = q:compile(%q) end
      q:pause()
      for i = 1, 30 do fs[#fs + 1] = q:compile(%q) end
      -- a full paused queue refuses rather than blocking forever
      while true do
        local ok, f = pcall(q.compile, q, %q)
        if not ok then assert(f:find("paused"), f) break end
        fs[#fs + 1] = f
      end
      print("leaving with", q:stats().queued, "queued")
    ]]):format(scaled(2), scaled(3), scaled(4)))
    local out, ok = H.run { "timeout", "30", H.ane_bin, script }
    assert.is_true(ok)
    assert.matches("leaving with\t64\tqueued", out)
  end)

  it("loses no result and leaks nothing under load with random cancels", function()
    collectgarbage()
    collectgarbage()
    local live0, mem0 = ane.live_futures(), ane.memory()
    do
      local q <close> = ane.queue { workers = 2, capacity = 8 }
      local rng = ane.rng(7)
      local fs, ks, cancelled = {}, {}, {}
      for i = 1, 300 do
        ks[i] = i % 11 - 5
        fs[i] = q:compile(scaled(ks[i]))
        if rng:uniform() < 0.3 then
          local j = math.floor(rng:uniform() * i) + 1
          if fs[j]:cancel() then cancelled[j] = true end
        end
      end
      local done = 0
      for i = 1, 300 do
        if cancelled[i] then
          assert.matches("cancelled", select(2, pcall(fs[i].wait, fs[i])))
        else
          assert_scales(fs[i]:wait(), ks[i])
          done = done + 1
        end
      end
      local s = q:stats()
      local ncancelled = 0
      for _ in pairs(cancelled) do ncancelled = ncancelled + 1 end
      assert.are.equal(300, done + ncancelled)
      assert.are.equal(300, s.submitted)
      assert.are.equal(done, s.done)
      fs, ks = nil, nil
    end
    collectgarbage()
    collectgarbage()
    assert.are.equal(live0, ane.live_futures())
    assert.are.equal(mem0, ane.memory())
  end)
end)
