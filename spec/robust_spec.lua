-- What Lua values can do to the runtime: no crash, clear errors that name what the user wrote.
local ane = require "ane"

local RELU = [[
program(1.3)
{
    func main<ios18>(tensor<fp16, [1, 4]> x) {
        tensor<fp16, [1, 4]> y = relu(x = x)[name = string("y")];
    } -> (y);
}
]]

describe("ane.compile with values that have a :program() method", function()
  it("bounds a chain of :program() results with a clear error (it used to kill the process)", function()
    local function mk() return { program = function() return mk() end } end
    local ok, err = pcall(ane.compile, mk())
    assert.is_false(ok)
    assert.equal("bad argument #1 to 'ane.compile' (:program() returned a value with its own :program() " ..
      "more than 16 times in a row)", err)
    -- the same through a queue, which compiles the same way
    local q <close> = ane.queue { workers = 1 }
    local ok2, err2 = pcall(function() return q:compile(mk()) end)
    assert.is_false(ok2)
    assert.matches("bad argument #1 to 'compile' %(:program%(%) returned a value with its own", err2)
  end)

  it("follows a short chain, and names the user's argument for what the chain ends in", function()
    local depth = 0
    local function mk(n) return { program = function() depth = depth + 1; return n == 0 and RELU or mk(n - 1) end } end
    local k = ane.compile(mk(5), { backend = "cpu" })
    assert.equal(6, depth)
    k:close()
    local ok, err = pcall(ane.compile, { program = function() return 5 end })
    assert.is_false(ok)
    assert.equal("bad argument #1 to 'ane.compile' (:program() returned a number, expected MIL text or a program)", err)
    ok, err = pcall(ane.compile, {})
    assert.equal("bad argument #1 to 'ane.compile' (expected MIL text, an ane.Program or a builder with :program())", err)
  end)
end)

describe("error messages name the function and the argument as the user wrote them", function()
  it("module functions by their ane.* name, methods by type and name", function()
    local _, err = pcall(ane.compile, 42)
    assert.equal("bad argument #1 to 'ane.compile' (MIL text or program expected, got number)", err)
    local k = ane.compile(RELU, { backend = "cpu" })
    k:load()
    local _, e1 = pcall(function() return k:eval { z = ane.zeros { 1, 4 } } end)
    assert.matches(":%d+: bad argument #1 to 'eval' %(the kernel has no input named 'z' %(it takes x %(fp16 %[1, 4%]%)%)%)$", e1)
    local _, e2 = pcall(k.eval, k, { z = ane.zeros { 1, 4 } })
    assert.equal("bad argument #2 to 'ane.Kernel.eval' (the kernel has no input named 'z' (it takes x (fp16 [1, 4])))", e2)
    local _, e3 = pcall(ane.zeros({ 2 }).get, ane.zeros({ 2 }), "x")
    assert.matches("^bad argument #2 to 'ane.Tensor.get'", e3)
    k:close()
    -- require "ane.core" still gives the core's functions
    assert.equal(ane.compile, require("ane.core").compile)
  end)
end)

describe("kernel:eval takes exactly the kernel's inputs and outputs", function()
  it("refuses too many or too few, naming the expected list", function()
    local k = ane.compile(RELU, { backend = "cpu" })
    k:load()
    local x = ane.zeros { 1, 4 }
    assert.has_error(function() k:eval { x, x } end, nil)
    local _, err = pcall(function() return k:eval { x, x } end)
    assert.matches("bad argument #1 to 'eval' %(2 inputs given, the kernel takes 1: x %(fp16 %[1, 4%]%)%)$", err)
    _, err = pcall(function() return k:eval {} end)
    assert.matches("input 'x' is missing %(the kernel takes x %(fp16 %[1, 4%]%)%)", err)
    _, err = pcall(function() return k:eval({ x }, { x, x }) end)
    assert.matches("bad argument #2 to 'eval' %(2 outputs given, the kernel takes 1: y %(fp16 %[1, 4%]%)%)$", err)
    assert.equal(1, select("#", k:eval { x }))
    k:close()
  end)
end)

describe("zero-size dimensions", function()
  it("are refused at check time with line:col, except in constants", function()
    local p = ane.mil_parse((RELU:gsub("%[1, 4%]", "[1, 0]")), "zero.mil")
    local ok, err = pcall(p.check, p)
    assert.is_false(ok)
    assert.matches("^zero.mil:3:43: function input 'x' has a zero%-size dimension %(dimension 2%): only constants may be empty", err)
    assert.has_error(function() ane.compile((RELU:gsub("%[1, 4%]", "[1, 0]"))) end)
    -- an empty constant (an empty axes list, say) stays legal
    local empty = RELU:gsub("        tensor<fp16, %[1, 4%]> y",
      "        tensor<int32, [0]> e = const()[name = string(\"e\"), val = tensor<int32, [0]>([])];\n%0")
    ane.mil_parse(empty):check()
  end)
end)

describe("the default backend is runtime state, not the environment", function()
  it("ane.backend(name) leaves the environment alone", function()
    local before = os.getenv("ANE_BACKEND")
    local was = ane.backend()
    assert.equal("cpu", ane.backend("cpu"))
    assert.equal(before, os.getenv("ANE_BACKEND"))
    ane.backend(was)
  end)

  it("unknown names are an error listing the known ones", function()
    local _, err = pcall(ane.backend, "nope")
    assert.matches("unknown backend 'nope' %(known: [%w, ]*cpu", err)
    _, err = pcall(ane.compile, RELU, { backend = "nope" })
    assert.matches("unknown backend 'nope' %(known: [%w, ]*cpu", err)
  end)

  -- Run under ThreadSanitizer by `make test-queue-tsan`: workers compile (reading the settings)
  -- while this thread sets the default, which used to be setenv against getenv.
  it("a queue compiles while the Lua thread switches the default backend", function()
    local was = ane.backend()
    local names = { "cpu", was }
    local q <close> = ane.queue { workers = 2, capacity = 8 }
    local futures = {}
    for i = 1, 24 do
      futures[i] = q:compile((RELU:gsub("name = string%(\"y\"%)", ("name = string(\"y%d\")"):format(i))),
        { backend = "cpu" })
      for j = 1, 20 do ane.backend(names[(i + j) % 2 + 1]) end
    end
    for i = 1, 24 do
      local k = futures[i]:wait()
      k:load()
      local y = k:eval { ane.from_table({ { -1, 2, -3, 4 } }) }
      assert.same({ { 0, 2, 0, 4 } }, y:to_table())
      k:close()
    end
    ane.backend(was)
  end)
end)

describe("the Lua MIL builder's op labels", function()
  it("are want, want_1, want_2, ... skipping labels already taken (O(1) per op)", function()
    local p = ane.mil.program()
    local f = p:func("main")
    local x = f:input("x", "fp16", { 1, 4 })
    local a = f:relu(x)
    local b = f:relu(a, { label = "relu_2" })
    local c = f:relu(b)
    local d = f:relu(c)
    f:output(d)
    local labels = {}
    for _, op in ipairs(p:program():ops("main")) do labels[#labels + 1] = op.label or op.name end
    assert.same({ "relu", "relu_2", "relu_1", "relu_3" }, labels)
  end)
end)
