-- ane.Program: the builder primitives and inspection methods of l_mil.c (what lua/ane/mil.lua
-- builds on). Op typing comes from the checker; these specs use ops whose typing is trivial.
local ane = require "ane"

describe("ane.Program builder primitives", function()
  it("builds params, literals, const ops and outputs, and prints them", function()
    local p = ane.mil_program()
    assert.equal("ane.Program (1.3, 0 functions, 0 ops)", tostring(p))
    local fn = p:func("main", "ios18")
    assert.equal(1, fn)
    local x = p:param("main", "x", "fp16", { 1, 4, 1, 8 })
    assert.equal(1, x)
    local lit = p:literal(fn, "int32", { 2, 2 }, { { 1, 2 }, { 3, 4 } })
    local k = p:op(fn, "const", {}, "kk", "k", { val = lit })
    local s = p:op(fn, "const", { val = p:literal(fn, "fp16", {}, 0.1) })
    local name, dtype, shape, is_const = p:value_info(fn, k)
    assert.same({ "k", "int32", { 2, 2 }, true }, { name, dtype, shape, is_const })
    assert.same({ "const", "fp16", {}, true }, { p:value_info(fn, s) })
    assert.same({ nil, "fp16", { 1, 4, 1, 8 }, false }, { nil, select(2, p:value_info(fn, x)) })
    p:output(fn, { k, s })
    assert.equal([=[
program(1.3)
{
    func main<ios18>(tensor<fp16, [1, 4, 1, 8]> x) {
        tensor<int32, [2, 2]> k = const()[name = string("kk"), val = tensor<int32, [2, 2]>([[1, 2], [3, 4]])];
        fp16 const = const()[name = string("const"), val = fp16(0x1.998p-4)];
    } -> (k, const);
}
]=], p:text())
    local q = ane.mil_parse(p:text())
    assert.is_true(p:equal(q))
    assert.same({ { name = "x", dtype = "fp16", shape = { 1, 4, 1, 8 }, id = 1 } }, p:inputs())
    assert.equal("k", p:outputs()[1].name)
  end)

  it("generates unique result names", function()
    local p = ane.mil_program()
    local fn = p:func("main")
    local a = p:op(fn, "const", { val = p:literal(fn, "int32", {}, 1) }, "c")
    local b = p:op(fn, "const", { val = p:literal(fn, "int32", {}, 2) }, "c")
    assert.equal("c", (p:value_info(fn, a)))
    assert.equal("c_1", (p:value_info(fn, b)))
  end)

  it("converts literal values by dtype and checks them", function()
    local p = ane.mil_program()
    local fn = p:func("main")
    local v = p:literal(fn, "bool", { 3 }, { true, false, true })
    assert.equal("bool", select(2, p:value_info(fn, v)))
    p:literal(fn, "string", {}, "valid")
    p:literal(fn, "fp16", { 2 }, ane.from_table({ 1.5, 2.5 }, "fp32"))
    assert.has_error(function() p:literal(fn, "int8", {}, 300) end,
      "bad argument #4 to 'literal' (element 1: 300 out of range for int8)")
    assert.has_error(function() p:literal(fn, "int32", {}, 1.5) end,
      "bad argument #4 to 'literal' (element 1: integer expected for int32)")
    assert.has_error(function() p:literal(fn, "fp16", { 3 }, { 1, 2 }) end,
      "bad argument #4 to 'literal' (2 values given, the shape needs 3)")
    assert.has_error(function() p:literal(fn, "fp16", { 100000000, 100000000 }, { 1 }) end,
      "bad argument #4 to 'literal' (1 values given, the shape needs 10000000000000000)")
    assert.has_error(function() p:literal(fn, "float", {}, 1) end, "bad argument #2 to 'literal' (unknown dtype 'float')")
    assert.has_error(function() p:literal(fn, "bool", {}, 1) end,
      "bad argument #4 to 'literal' (element 1: bool expected, got number)")
  end)

  it("rejects bad functions, ids and names with the argument position", function()
    local p = ane.mil_program()
    local fn = p:func("main")
    assert.has_error(function() p:param("nope", "x", "fp16", { 1 }) end, "bad argument #1 to 'param' (no function 'nope')")
    assert.has_error(function() p:param(2, "x", "fp16", { 1 }) end, "bad argument #1 to 'param' (no function 2 (program has 1))")
    assert.has_error(function() p:param(fn, "x", "fp16", { -1 }) end,
      "bad argument #4 to 'param' (dimension 1 must be an integer >= 0)")
    assert.has_error(function() p:param(fn, "1x", "fp16", { 1 }) end, "bad name '1x'")
    p:param(fn, "x", "fp16", { 1 })
    assert.has_error(function() p:param(fn, "x", "fp16", { 1 }) end, "duplicate name 'x'")
    assert.has_error(function() p:func("main") end, "duplicate function 'main'")
    assert.has_error(function() p:op(fn, "const", { val = 99 }) end, "bad argument #3 to 'op' ('val' is not a value id)")
    assert.has_error(function() p:output(fn, { 42 }) end, "bad argument #2 to 'output' (output 1 is not a value id)")
    assert.has_error(function() ane.mil_program("x.y") end, "bad argument #1 to 'mil_program' (bad program version 'x.y' (expected like 1.3))")
  end)

  it("leaves the program unchanged when an op is rejected", function()
    local p = ane.mil_program()
    local fn = p:func("main")
    local x = p:param(fn, "x", "fp16", { 4 })
    local before = p:text()
    assert.has_error(function() p:op(fn, "const", { x = x }) end)
    assert.equal(before, p:text())
    assert.equal(0, #p:ops())
  end)

  it("registers weight files and resolves BLOBFILE literals against them", function()
    local p = ane.mil_program()
    local fn = p:func("main")
    local t = ane.from_table({ 1, 2, 3, 4 }, "fp16")
    assert.equal(64, p:add_blob("@model_path/weights/w.bin", t))
    local w = p:op(fn, "const", { val = p:literal(fn, "fp16", { 4 }, { blob = "@model_path/weights/w.bin", offset = 64 }) }, "w")
    p:output(fn, { w })
    assert.matches('BLOBFILE%(path = string%("@model_path/weights/w.bin"%), offset = uint64%(64%)%)', p:text())
    local files = p:weights()
    assert.equal(128 + 64, #files["@model_path/weights/w.bin"])
    -- the literal data was decoded from the blob right away: a wrong offset fails at the call
    assert.has_error(function()
      p:literal(fn, "fp16", { 4 }, { blob = "@model_path/weights/w.bin", offset = 192 })
    end, "@model_path/weights/w.bin: offset 192 is past the end of the file (192 bytes)")
    assert.has_error(function()
      p:literal(fn, "fp16", { 4 }, { blob = "@model_path/weights/w.bin", offset = 128 })
    end, "@model_path/weights/w.bin: no blob metadata at offset 128 (found 0x40003C00, expected 0xDEADBEEF)")
    assert.has_error(function()
      p:literal(fn, "fp16", { 64 }, { blob = "@model_path/weights/w.bin", offset = 64 })
    end, "@model_path/weights/w.bin: tensor at offset 64 holds 8 bytes, fp16[64 elements] needs 128")
    assert.has_error(function() p:add_blob("@model_path/weights/w.bin", "x") end,
      "weight file '@model_path/weights/w.bin' is already registered")
  end)

  it("closes, and reports use after close", function()
    local p = ane.mil_program()
    p:close()
    assert.equal("ane.Program (closed)", tostring(p))
    assert.has_error(function() p:text() end, "ane.Program is closed")
    p:close() -- idempotent
    do local q <close> = ane.mil_parse("program(1.3) { func main<ios18>() {} -> (); }") end
  end)
end)
