--- ane.double_buffer: keep evaluating one kernel set while the next one compiles.
--
-- Research training loops change weights every step, and on the ANE weights are baked in at
-- compile time (~25 ms) while an eval costs ~0.2 ms. A double buffer holds two kernel sets: the
-- active one, which the loop evaluates, and a background one, compiling on an ane.queue with
-- newer weights. At a batch boundary the loop calls db:swap(), which switches to the background
-- set only if it is ready and never waits for it, so weights lag by however many batches the
-- compile takes (usually one).
--
--   local db = ane.double_buffer.new{
--     build = function(w) return { fwd = make_fwd(w), bwd = make_bwd(w) } end, -- programs
--     weights = w0,            -- the first set is compiled synchronously
--     opts = { backend = "cpu" },   -- compile options (as for ane.compile), optional
--     queue = q,               -- optional; default: a private ane.queue{workers = 1}
--   }
--   for step = 1, n do
--     local k = db:active()    -- { fwd = ane.Kernel, bwd = ane.Kernel }
--     ... evaluate k.fwd, k.bwd, update w ...
--     db:swap()                -- switch if the set compiled from older weights is ready
--     db:update(w)             -- start compiling the next set (replaces one still queued)
--   end
--   db:close()
--
-- `build` may return one program instead of a table; active() then returns one kernel.
-- Kernels of a set that is swapped out are closed at the swap (when their type has :close):
-- do not keep them beyond the next successful swap.
local ane = require "ane"

local DB = {}
DB.__index = DB

local known = { build = true, weights = true, opts = true, queue = true }

local function close_set(set)
  if set == nil then return end
  local items = set.single and { set.kernels } or set.kernels
  for _, k in pairs(items) do
    if type(k) == "userdata" and k.close then k:close() end
  end
end

--- Create a double buffer; compiles the first set synchronously from `opts.weights`.
function DB.new(o)
  if type(o) ~= "table" then error("double_buffer.new: expected an options table", 2) end
  for k in pairs(o) do
    if not known[k] then error("double_buffer.new: unknown option '" .. tostring(k) .. "'", 2) end
  end
  if type(o.build) ~= "function" then error("double_buffer.new: 'build' must be a function", 2) end
  local self = setmetatable({
    build = o.build,
    opts = o.opts,
    own_queue = o.queue == nil,
    queue = o.queue or ane.queue { workers = 1, capacity = 4 },
    swaps = 0,          -- successful swaps so far
    generation = 0,     -- generation of the active set (0 = the initial weights)
    submitted = 0,      -- generations handed to the queue
  }, DB)
  local progs = self.build(o.weights)
  self.current = self:_compile_now(progs)
  return self
end

-- Compile a set synchronously (first set only).
function DB:_compile_now(progs)
  if type(progs) == "table" and getmetatable(progs) == nil then
    local ks = {}
    for name, p in pairs(progs) do ks[name] = ane.compile(p, self.opts):load() end
    return { kernels = ks, generation = 0 }
  end
  return { kernels = ane.compile(progs, self.opts):load(), single = true, generation = 0 }
end

--- Start compiling a new set from weights `w` in the background. A set still compiling from
-- older weights is cancelled: only the newest weights are worth finishing.
function DB:update(w)
  if self.closed then error("double_buffer: closed", 2) end
  local progs = self.build(w)
  self:_cancel_pending()
  self.submitted = self.submitted + 1
  local pend = { generation = self.submitted }
  if type(progs) == "table" and getmetatable(progs) == nil then
    pend.futures = {}
    for name, p in pairs(progs) do pend.futures[name] = self.queue:compile(p, self.opts) end
  else
    pend.futures = self.queue:compile(progs, self.opts)
    pend.single = true
  end
  self.next_set = pend
end

function DB:_cancel_pending()
  local pend = self.next_set
  if not pend then return end
  self.next_set = nil
  if pend.single then pend.futures:cancel()
  else for _, f in pairs(pend.futures) do f:cancel() end end
end

--- True when a background set exists and every kernel of it has compiled (or failed).
function DB:ready()
  local pend = self.next_set
  if not pend then return false end
  if pend.single then return pend.futures:done() end
  for _, f in pairs(pend.futures) do
    if not f:done() then return false end
  end
  return true
end

--- Is a background set compiling or waiting to be swapped in?
function DB:pending() return self.next_set ~= nil end

--- Switch to the background set if it is ready; returns true when it switched. Never waits.
-- A compile failure in the background set is raised here (with the compile's own message).
function DB:swap()
  if self.closed then error("double_buffer: closed", 2) end
  if not self:ready() then return false end
  local pend = self.next_set
  self.next_set = nil
  local new = { generation = pend.generation, single = pend.single }
  if pend.single then
    new.kernels = pend.futures:wait(0)
  else
    new.kernels = {}
    for name, f in pairs(pend.futures) do new.kernels[name] = f:wait(0) end
  end
  local old = self.current
  self.current = new
  self.generation = new.generation
  self.swaps = self.swaps + 1
  close_set(old)
  return true
end

--- Block until the background set (if any) is ready, then swap. For the end of a run.
function DB:finish()
  local pend = self.next_set
  if not pend then return false end
  if pend.single then pend.futures:wait()
  else for _, f in pairs(pend.futures) do f:wait() end end
  return self:swap()
end

--- The active kernel set (a table of kernels, or one kernel when `build` returned one program).
function DB:active()
  if self.closed then error("double_buffer: closed", 2) end
  return self.current.kernels
end

--- Cancel the background set, close both sets' kernels and the private queue.
function DB:close()
  if self.closed then return end
  self:_cancel_pending()
  close_set(self.current)
  self.current = nil
  if self.own_queue then self.queue:close() end
  self.closed = true
end
DB.__close = DB.close

function DB:__tostring()
  if self.closed then return "ane.DoubleBuffer (closed)" end
  return string.format("ane.DoubleBuffer (generation %d, %d swaps, %s)", self.generation, self.swaps,
    self.next_set and (self:ready() and "next set ready" or "next set compiling") or "idle")
end

return setmetatable({ new = DB.new, DoubleBuffer = DB }, {
  __call = function(_, o) return DB.new(o) end,
})
