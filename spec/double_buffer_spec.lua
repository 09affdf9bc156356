-- ane.double_buffer: evaluate the active set while the next one compiles; swap when ready.
local ane = require "ane"

local function scaled(k, fn)
  return ([[
program(1.3)
{
    func main<ios18>(tensor<fp16, [1, 4, 1, 4]> x) {
        fp16 k = const()[name = string("k"), val = fp16(%s)];
        tensor<fp16, [1, 4, 1, 4]> y = %s(x = x, y = k)[name = string("m")];
    } -> (y);
}
]]):format(("%.1f"):format(k), fn or "mul")
end

local function apply(kern)
  local x = ane.full({ 1, 4, 1, 4 }, 3, "fp16")
  return kern:eval({ x }):get(1, 2, 1, 3)
end

describe("ane.double_buffer", function()
  it("starts with the set built from the initial weights", function()
    local db <close> = ane.double_buffer.new { build = scaled, weights = 2 }
    assert.are.equal(6, apply(db:active()))
    assert.is_false(db:pending())
    assert.is_false(db:swap()) -- nothing to swap to
    assert.are.equal(0, db.generation)
  end)

  it("keeps the active set while the next one compiles and swaps only when it is ready", function()
    local q <close> = ane.queue { workers = 1 }
    local db <close> = ane.double_buffer.new { build = scaled, weights = 2, queue = q }
    q:pause() -- the background compile cannot finish yet
    db:update(5)
    assert.is_true(db:pending())
    assert.is_false(db:ready())
    assert.is_false(db:swap()) -- does not wait
    assert.are.equal(6, apply(db:active()))
    q:resume()
    while not db:ready() do end -- a real loop would keep evaluating the active set here
    assert.is_true(db:swap())
    assert.are.equal(15, apply(db:active()))
    assert.are.equal(1, db.generation)
    assert.are.equal(1, db.swaps)
    assert.is_false(db:pending())
  end)

  it("drops a background set that newer weights replace before it was swapped in", function()
    local q <close> = ane.queue { workers = 1 }
    local db <close> = ane.double_buffer.new { build = scaled, weights = 1, queue = q }
    q:pause()
    db:update(2)
    db:update(4) -- the set for 2 is cancelled, never swapped in
    assert.are.equal(1, q:stats().cancelled)
    q:resume()
    assert.is_true(db:finish())
    assert.are.equal(12, apply(db:active()))
    assert.are.equal(2, db.generation)
  end)

  it("handles a table of programs as one set", function()
    local build = function(k) return { up = scaled(k), shift = scaled(k, "add") } end
    local db <close> = ane.double_buffer.new { build = build, weights = 2 }
    local set = db:active()
    assert.are.equal(6, apply(set.up))
    assert.are.equal(5, apply(set.shift))
    db:update(3)
    db:finish()
    set = db:active()
    assert.are.equal(9, apply(set.up))
    assert.are.equal(6, apply(set.shift))
  end)

  it("raises a background compile's own error at swap and keeps the active set", function()
    local build = function(k)
      if k == "bad" then return (scaled(1):gsub("y = k", "y = missing")) end
      return scaled(k)
    end
    local db <close> = ane.double_buffer.new { build = build, weights = 2 }
    -- A program error is caught on the main thread at update, before any worker runs.
    local ok, err = pcall(db.update, db, "bad")
    assert.is_false(ok)
    assert.matches("missing", err)
    assert.are.equal(6, apply(db:active()))
    -- A backend refusal (strict mode: no asin on the ANE) happens on the worker: swap raises
    -- it, with the program's own message, and the active set stays.
    local strict <close> = ane.double_buffer.new {
      build = function(w)
        if w == "asin" then return (scaled(1):gsub("mul%(x = x, y = k%)", "asin(x = x)")) end
        return scaled(w)
      end,
      weights = 2, opts = { strict = true, backend = "cpu" },
    }
    strict:update("asin")
    while not strict:ready() do end
    local ok2, err2 = pcall(strict.swap, strict)
    assert.is_false(ok2)
    assert.matches("asin", err2)
    assert.matches(":%d+:%d+:", err2)
    assert.are.equal(6, apply(strict:active()))
    assert.is_false(strict:pending())
    assert.are.equal(0, strict.swaps)
  end)

  it("checks its options and refuses use after close", function()
    assert.matches("'build' must be a function", select(2, pcall(ane.double_buffer.new, { weights = 1 })))
    assert.matches("unknown option 'weight'", select(2, pcall(ane.double_buffer.new, { build = scaled, weight = 1 })))
    local db = ane.double_buffer.new { build = scaled, weights = 1 }
    db:close()
    assert.matches("closed", select(2, pcall(db.active, db)))
    assert.matches("closed", tostring(db))
    db:close() -- idempotent
  end)
end)
