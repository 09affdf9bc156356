-- ane.chain: kernels run back to back over shared buffers.
local ane = require "ane"

-- out = in + c on a [1, ch, 1, sp] fp16 tensor; names of the input and output are parameters.
local function adder(c, opts)
  opts = opts or {}
  local ch, sp = opts.ch or 8, opts.sp or 4
  local xin, yout = opts.input or "x", opts.output or "y"
  local dt = opts.dtype or "fp16"
  return ane.compile(([[
program(1.3)
{
    func main<ios18>(tensor<%s, [1, %d, 1, %d]> %s) {
        %s c = const()[name = string("c"), val = %s(%s)];
        tensor<%s, [1, %d, 1, %d]> %s = add(x = %s, y = c)[name = string("a")];
    } -> (%s);
}
]]):format(dt, ch, sp, xin, dt, dt, ("%.1f"):format(c), dt, ch, sp, yout, xin, yout))
end

local function ramp(ch, sp)
  local x = ane.zeros({ 1, ch, 1, sp }, "fp16")
  for c = 1, ch do for s = 1, sp do x:set(1, c, 1, s, (c - 1) * sp + s - 16) end end
  return x
end

describe("ane.chain", function()
  it("runs twelve kernels in order and matches evaluating them one by one", function()
    local ks = {}
    for i = 1, 12 do ks[i] = adder(i) end
    local ch <close> = ane.chain(ks)
    assert.are.equal(12, #ch)
    local x = ramp(8, 4)
    local y = ch:run { x }
    -- reference: the same kernels one at a time through kernel:eval
    local ref = x
    for i = 1, 12 do ref = ks[i]:eval { ref } end
    assert.are.equal(ch:outputs().y, y) -- outputs by position and by name
    assert.are.equal(ch:outputs()[1], y)
    for c = 1, 8 do
      for s = 1, 4 do
        assert.are.equal(x:get(1, c, 1, s) + 78, y:get(1, c, 1, s))
        assert.are.equal(ref:get(1, c, 1, s), y:get(1, c, 1, s))
      end
    end
    local t = ch:times()
    assert.are.equal(12, #t)
    local sum = 0
    for i = 1, 12 do
      assert.is_true(t[i] >= 0)
      sum = sum + t[i]
    end
    assert.is_true(t.total >= sum)
  end)

  it("runs on its own input buffers written in place, and reuses its output buffers", function()
    local ch <close> = ane.chain { adder(1), adder(2) }
    local inp = ch:inputs()
    assert.are.equal(inp[1], inp.x)
    inp[1]:fill(5)
    local out = ch:run()
    assert.are.equal(8, out:get(1, 3, 1, 2))
    inp.x:fill(-1)
    local out2 = ch:run()
    assert.are.equal(out, out2) -- the same buffer, overwritten
    assert.are.equal(2, out:get(1, 1, 1, 1))
    assert.are.equal(out, ch:outputs()[1])
  end)

  it("binds by name when the names line up, else by position", function()
    local ch <close> = ane.chain { adder(1, { output = "h" }), adder(1, { input = "h", output = "z" }) }
    assert.are.equal(1, ch:binding(2, 1))
    local ch2 <close> = ane.chain { adder(1, { output = "h" }), adder(1, { input = "q" }) }
    assert.are.equal(1, ch2:binding(2, 1))
    local ok, err = pcall(ane.chain, { adder(1, { output = "h" }), adder(1, { input = "q" }), bind = "name",
      names = { "first", "second" } })
    assert.is_false(ok)
    assert.matches("second input 'q' has no output of that name in first", err)
  end)

  it("refuses shape and dtype mismatches at bind time, naming both kernels and the tensor", function()
    local ok, err = pcall(ane.chain, { adder(1, { sp = 4 }), adder(1, { sp = 8 }) })
    assert.is_false(ok)
    assert.matches("kernel 2 input 'x' %[1, 8, 1, 8%] fp16 does not match kernel 1 output 'y' %[1, 8, 1, 4%] fp16", err)
    ok, err = pcall(ane.chain, { adder(1), adder(1, { dtype = "fp32" }), names = { "enc", "dec" } })
    assert.is_false(ok)
    assert.matches("dec input 'x' %[1, 8, 1, 4%] fp32 does not match enc output 'y' %[1, 8, 1, 4%] fp16", err)
  end)

  it("checks its arguments and kernels closed after binding", function()
    assert.matches("at least one", select(2, pcall(ane.chain, {})))
    assert.matches("element 2 is not an open ane.Kernel", select(2, pcall(ane.chain, { adder(1), 42 })))
    assert.matches("unknown option 'speed'", select(2, pcall(ane.chain, { adder(1), speed = 2 })))
    assert.matches("invalid option 'diagonal'", select(2, pcall(ane.chain, { adder(1), bind = "diagonal" })))
    local k2 = adder(2)
    local ch = ane.chain { adder(1), k2 }
    assert.matches("not an open ane.Tensor", select(2, pcall(ch.run, ch, { 42 })))
    assert.matches("input 1 is %[1, 8, 1, 5%]", select(2, pcall(ch.run, ch, { ane.zeros({ 1, 8, 1, 5 }, "fp16") })))
    k2:close()
    assert.matches("kernel 2 was closed", select(2, pcall(ch.run, ch)))
    ch:close()
    assert.matches("chain is closed", select(2, pcall(ch.run, ch)))
    assert.are.equal("ane.Chain (closed)", tostring(ch))
  end)

  it("keeps its kernels alive while it lives", function()
    local ch = ane.chain { adder(1), adder(2), adder(3) }
    collectgarbage()
    collectgarbage()
    local out = ch:run { ramp(8, 4) }
    assert.are.equal(-15 + 6, out:get(1, 1, 1, 1))
  end)
end)
