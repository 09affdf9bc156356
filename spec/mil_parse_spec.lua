-- MIL parser: every grammar form of mil-reference.md section 3, the variants V1-V13, and every
-- error form with its exact position.
local ane = require "ane"

-- Wrap statements into a one-function program (function body at 8 spaces, like the research).
local function prog(body, params, outs, header)
  return (header or "program(1.3)\n") .. "{\n    func main<ios18>(" .. (params or "tensor<fp16, [1, 4]> x") ..
    ") {\n" .. body .. "\n    } -> (" .. (outs or "x") .. ");\n}\n"
end

local function parse_err(text, opts)
  local ok, err = pcall(ane.mil_parse, text, "t.mil", opts)
  assert.is_false(ok, "expected a parse error")
  return err
end

-- The first line of an error: "t.mil:L:C: message".
local function first_line(err) return (err:match("^[^\n]*")) end

describe("mil parser", function()
  describe("grammar forms", function()
    it("parses V1: program(1.3), buildInfo dict<string, string>, bare scalar types", function()
      local p = ane.mil_parse([[
program(1.3)
[buildInfo = dict<string, string>({{"coremlc-component-MIL", "3510.2.1"}, {"coremlc-version", "3505.4.1"}})]
{
    func main<ios18>(tensor<fp16, [1, 64, 1, 32]> x) {
        string pt = const()[name=string("pt"), val=string("valid")];
        fp16 s = const()[name = string("s"), val = fp16(0x1p-3)];
        int32 ax = const()[name = string("ax"), val = int32(-1)];
        bool b = const()[name = string("b"), val = bool(false)];
        tensor<fp16, [1, 64, 1, 32]> y = mul(x = x, y = s)[name = string("m")];
    } -> (y);
}
]])
      assert.equal("1.3", p:version())
      local ops = p:ops()
      assert.equal(5, #ops)
      assert.same({ "pt" }, ops[1].results)
      assert.equal("string", ops[1].result_types[1].dtype)
      assert.same({}, ops[2].result_types[1].shape)
      assert.equal("m", ops[5].label)
      assert.same({ x = "x", y = "s" }, ops[5].inputs)
      assert.matches('buildInfo = dict<string, string>%({{"coremlc%-component%-MIL", "3510.2.1"}', p:text())
    end)

    it("parses V2: program(1.0), tensor<T, []> scalars everywhere, >> closing two brackets", function()
      local p = ane.mil_parse([[
program(1.0)
[buildInfo = dict<tensor<string, []>, tensor<string, []>>({{"coremlc-version", "3505.4.1"}})]
{
    func main<ios16>(tensor<fp16, [1, 8, 1, 4]> x) {
        tensor<fp16, []> h = const()[name = tensor<string, []>("h"), val = tensor<fp16, []>(0.5)];
        tensor<fp16, [8]> w = const()[name = tensor<string, []>("w"), val = tensor<fp16, [8]>(BLOBFILE(path = tensor<string, []>("@model_path/weights/w.bin"), offset = tensor<uint64, []>(64)))];
        tensor<fp16, [1, 8, 1, 4]> y = mul(x = x, y = h)[name = tensor<string, []>("y")];
    } -> (y);
}
]])
      assert.equal("1.0", p:version())
      assert.equal("fp16", p:ops()[1].result_types[1].dtype)
      assert.same({}, p:ops()[1].result_types[1].shape)
      -- printed back in its own dialect, and as V1 on request
      assert.matches("val = tensor<fp16, %[%]>%(0x1p%-1%)", p:text())
      local v1 = p:text { dialect = "1.3" }
      assert.matches("^program%(1.3%)", v1)
      assert.matches("fp16 h = const%(%)%[name = string%(\"h\"%), val = fp16%(0x1p%-1%)%]", v1)
      assert.matches('BLOBFILE%(path = string%("@model_path/weights/w.bin"%), offset = uint64%(64%)%)', v1)
    end)

    it("parses V3 (no attribute block), several functions, zero params, empty dict", function()
      local p = ane.mil_parse([[
program(1.3)
[info = dict<string, string>({})]
{
    func main<ios18>(tensor<fp16, [2]> a) {
    } -> (a);
    func other<ios17>() {
        int32 k = const()[name = string("k"), val = int32(7)];
    } -> (k);
}
]])
      assert.same({ "main", "other" }, p:functions())
      assert.same({}, p:inputs("other"))
      assert.equal("k", p:outputs("other")[1].name)
      assert.equal("a", p:inputs()[1].name)
    end)

    it("parses V4/V5/V6: several params, tuple returns, rank 2 and 3 values", function()
      local p = ane.mil_parse(prog([[
        tensor<fp16, [1, 64, 32]> t = identity(x = x)[name = string("t")];]],
        "tensor<fp16, [1, 64, 32]> x, tensor<fp16, [1, 96, 64]> W, tensor<fp16, [256, 64]> m", "t, W, m"))
      local ins = p:inputs()
      assert.equal(3, #ins)
      assert.same({ 1, 96, 64 }, ins[2].shape)
      assert.same({ 256, 64 }, ins[3].shape)
      local outs = p:outputs()
      assert.same({ "t", "W", "m" }, { outs[1].name, outs[2].name, outs[3].name })
    end)

    it("parses V7: inline literal arguments, printed back inline", function()
      local p = ane.mil_parse(prog([[
        tensor<fp16, [1, 4]> y = gelu(mode = string("TANH_APPROXIMATION"), x = x)[name = string("g")];]],
        nil, "y"))
      assert.equal('string("TANH_APPROXIMATION")', p:ops()[1].inputs.mode)
      assert.matches('gelu%(mode = string%("TANH_APPROXIMATION"%), x = x%)', p:text())
    end)

    it("parses V8: constexpr with () and all inputs as attributes", function()
      local p = ane.mil_parse(prog([[
        tensor<fp16, [2, 2, 1, 1]> W = constexpr_affine_dequantize()[axis = int32(0), name = string("W"), quantized_data = tensor<int8, [2, 2, 1, 1]>(BLOBFILE(path = string("@model_path/weights/q.bin"), offset = uint64(64))), scale = fp16(0x1p-3), zero_point = int8(0)];]],
        nil, "W"))
      local op = p:ops()[1]
      assert.same({}, op.inputs)
      assert.equal("int32(0)", op.attrs.axis)
      assert.equal("int8(0)", op.attrs.zero_point)
      assert.matches("BLOBFILE", op.attrs.quantized_data)
    end)

    it("parses V9/V10: nested rank-2 lists with %.8e numbers and flat rank-4 lists", function()
      local p = ane.mil_parse(prog([=[
        tensor<fp16, [2, 3]> a = const()[name = string("a"), val = tensor<fp16, [2, 3]>([[1.00000000e+00, -1.23456789e-02, 0.125000], [-65504, 1e-05, 0x1p-24]])];
        tensor<fp16, [1, 1, 2, 2]> m = const()[name = string("m"), val = tensor<fp16, [1, 1, 2, 2]>([0, -65504, 0, 0])];]=],
        nil, "a, m"))
      local t = p:text()
      -- rounded once to fp16 (values checked against NumPy's float16)
      assert.matches("%[%[0x1p%+0, %-0x1%.948p%-7, 0x1p%-3%], %[%-0x1%.ffcp%+15, 0x1%.5p%-17, 0x1p%-24%]%]", t)
      -- rank 4 is printed nested to the shape
      assert.matches("%[%[%[%[0x0p%+0, %-0x1%.ffcp%+15%], %[0x0p%+0, 0x0p%+0%]%]%]%]", t)
    end)

    it("parses V11 bare bools only in lenient mode", function()
      local text = prog([[
        tensor<fp16, [1, 4]> y = identity(flag = true, x = x)[name = string("i")];]], nil, "y")
      local err = parse_err(text)
      assert.equal("t.mil:4:50: bare 'true' is accepted only with --lenient (or {lenient = true}); write bool(true)", first_line(err))
      local p = ane.mil_parse(text, "t.mil", { lenient = true })
      assert.equal("bool(true)", p:ops()[1].inputs.flag)
    end)

    it("parses V12: labels independent of var names; var names equal to op names", function()
      local p = ane.mil_parse(prog([[
        tensor<int32, [2]> perm = const()[name = string("rs"), val = tensor<int32, [2]>([1, 0])];
        tensor<fp16, [4, 1]> silu = transpose(perm = perm, x = x)[name = string("perm")];]], nil, "silu"))
      assert.equal("rs", p:ops()[1].label)
      assert.equal("perm", p:ops()[2].label)
      assert.equal("perm", p:ops()[2].inputs.perm)
    end)

    it("parses V13 layout and no whitespace at all (`}->(y);`, `name=string(...)`)", function()
      local p = ane.mil_parse(
        "program(1.3){func main<ios18>(tensor<fp16,[1,4]> x){tensor<fp16,[1,4]> y=relu(x=x)[name=string(\"r\")];}->(y);}")
      assert.equal("y", p:outputs()[1].name)
      local q = ane.mil_parse(p:text())
      assert.is_true(p:equal(q))
    end)

    it("parses multi-result statements in both forms and tuple bindings", function()
      local body = [[
        int32 ax = const()[name = string("ax"), val = int32(1)];
        int32 n = const()[name = string("n"), val = int32(2)];
        tensor<fp16, [1, 2]> a, tensor<fp16, [1, 2]> b = split(axis = ax, num_splits = n, x = x)[name = string("sp")];
        (tensor<fp16, [1, 2]> c, tensor<fp16, [1, 2]> d) = split(axis = ax, num_splits = n, x = x)[name = string("sp2")];
        bool il = const()[name = string("il"), val = bool(false)];
        tensor<fp16, [1, 8]> e = concat(axis = ax, interleave = il, values = (a, b, c, d))[name = string("cat")];
        tensor<fp16, [1, 2]> f = concat(axis = ax, interleave = il, values = (a))[name = string("one")];]]
      local p = ane.mil_parse(prog(body, nil, "e, f"), "t.mil", { lenient = true })
      local ops = p:ops()
      assert.same({ "a", "b" }, ops[3].results)
      assert.same({ "c", "d" }, ops[4].results)
      assert.same({ "a", "b", "c", "d" }, ops[6].inputs.values)
      assert.same({ "a" }, ops[7].inputs.values)
      local t = p:text()
      assert.matches("tensor<fp16, %[1, 2%]> c, tensor<fp16, %[1, 2%]> d = split", t)
      assert.matches("values = %(a%)", t)
    end)

    it("reads every scalar and dtype form, hex floats, inf/nan, escapes, @ in names", function()
      local p = ane.mil_parse(prog([[
        fp32 a = const()[name = string("a"), val = fp32(-0x1.6ap-3)];
        fp16 b = const()[name = string("b"), val = fp16(0x0p+0)];
        fp16 c = const()[name = string("c"), val = fp16(-inf)];
        fp32 d = const()[name = string("d"), val = fp32(nan)];
        uint64 e = const()[name = string("e"), val = uint64(18446744073709551615)];
        int8 f = const()[name = string("f"), val = int8(-128)];
        string g = const()[name = string("g"), val = string("q\"uo\\te")];
        tensor<bool, [3]> h = const()[name = string("h"), val = tensor<bool, [3]>([true, false, true])];
        tensor<uint4, [2]> i = const()[name = string("i"), val = tensor<uint4, [2]>([15, 0])];
        tensor<int32, [0]> j = const()[name = string("j"), val = tensor<int32, [0]>([])];
        fp16 k@1 = const()[name = string("k"), val = fp16(1e-05)];
        fp64 l = const()[name = string("l"), val = fp64(1e300)];
        bf16 m = const()[name = string("m"), val = bf16(1)];]], nil, "x"))
      local t = p:text()
      for _, want in ipairs {
        "fp32%(%-0x1%.6ap%-3%)", "fp16%(0x0p%+0%)", "fp16%(%-inf%)", "fp32%(nan%)",
        "uint64%(18446744073709551615%)", "int8%(%-128%)", 'string%("q\\"uo\\\\te"%)',
        "%[true, false, true%]", "tensor<uint4, %[2%]>%(%[15, 0%]%)", "tensor<int32, %[0%]>%(%[%]%)",
        "fp16 k@1 =", "fp16%(0x1%.5p%-17%)", "fp64%(0x1%.7e43c8800759cp%+996%)", "bf16%(0x1p%+0%)",
      } do
        assert.matches(want, t)
      end
      assert.is_true(p:equal(ane.mil_parse(t)))
    end)

    it("parses state, list and tuple types and ? dims (lenient)", function()
      local p = ane.mil_parse(prog([[
        tensor<fp16, [1, 4]> y = identity(x = x)[name = string("i")];]],
        "state<tensor<fp16, [1, 4]>> s, list<tensor<int32, [2]>, ?> l, tuple<fp16, int32> t, tensor<fp16, [?, 4]> x",
        "y"), "t.mil", { lenient = true })
      local ins = p:inputs()
      assert.equal("state", ins[1].dtype)
      assert.equal("list", ins[2].dtype)
      assert.equal("tuple", ins[3].dtype)
      assert.same({ -1, 4 }, ins[4].shape)
      assert.matches("state<tensor<fp16, %[1, 4%]>> s, list<tensor<int32, %[2%]>, %?> l, tuple<fp16, int32> t, tensor<fp16, %[%?, 4%]> x", p:text())
    end)

    it("refuses parenthesised results in strict mode, naming the form to write", function()
      local text = prog([[
        int32 ax = const()[name = string("ax"), val = int32(1)];
        (tensor<fp16, [1, 2]> c, tensor<fp16, [1, 2]> d) = split(axis = ax, num_splits = int32(2), x = x)[name = string("sp")];]],
        nil, "c")
      assert.equal("t.mil:5:9: parenthesised results are accepted only with --lenient (or {lenient = true}) (Apple's parser " ..
        "rejects them); write them without parentheses: tensor<...> a, tensor<...> b = split(...)",
        first_line(parse_err(text)))
      local p = ane.mil_parse(text, "t.mil", { lenient = true })
      assert.matches("\n        tensor<fp16, %[1, 2%]> c, tensor<fp16, %[1, 2%]> d = split", p:text())
    end)

    it("accepts // comments in strict mode too (Apple's parser takes them)", function()
      local text = prog("        // a comment\n        tensor<fp16, [1, 4]> y = relu(x = x)[name = string(\"r\")];", nil, "y")
      for _, lenient in ipairs { false, true } do
        local p = ane.mil_parse(text, "t.mil", { lenient = lenient })
        assert.matches("\n        // a comment\n        tensor<fp16, %[1, 4%]> y = relu", p:text())
      end
    end)

    it("keeps whole-line comments where they stood when printing; drops end-of-line ones", function()
      local text = table.concat({
        "// file header",
        "  //   indented, trailing blanks dropped   ",
        "program(1.3)",
        "{",
        "// before func",
        "    func main<ios18>(tensor<fp16, [1, 4]> x) {",
        "        // before r",
        "        tensor<fp16, [1, 4]> r = relu(x = x)[name = string(\"r\")]; // end of line: dropped",
        "        tensor<fp16, [1, 4]> s = sigmoid(",
        "            // inside s: kept with s",
        "            x = r)[name = string(\"s\")];",
        "        // string(\"not // a comment\") before the close",
        "    } -> (s);",
        "    // before the program's close",
        "}",
        "// after everything",
      }, "\n")
      local p = ane.mil_parse(text, "t.mil")
      p:check()
      local want = table.concat({
        "// file header",
        "//   indented, trailing blanks dropped",
        "program(1.3)",
        "{",
        "    // before func",
        "    func main<ios18>(tensor<fp16, [1, 4]> x) {",
        "        // before r",
        "        tensor<fp16, [1, 4]> r = relu(x = x)[name = string(\"r\")];",
        "        // inside s: kept with s",
        "        tensor<fp16, [1, 4]> s = sigmoid(x = r)[name = string(\"s\")];",
        "        // string(\"not // a comment\") before the close",
        "    } -> (s);",
        "    // before the program's close",
        "}",
        "// after everything",
        "",
      }, "\n")
      assert.equal(want, p:text())
      -- a fixed point, in both dialects
      assert.equal(want, ane.mil_parse(want):text())
      assert.equal(p:text { dialect = "1.0" }, ane.mil_parse(p:text { dialect = "1.0" }):text { dialect = "1.0" })
      -- a string holding // is not a comment
      local q = ane.mil_parse(prog([[
        string s = const()[name = string("s"), val = string("a // b")];]], nil, "x"))
      assert.matches('val = string%("a // b"%)', q:text())
    end)

    it("accepts program versions 1, 1.0, 1.3", function()
      for _, v in ipairs { "1", "1.0", "1.3" } do
        assert.equal(v, ane.mil_parse(prog("", nil, nil, "program(" .. v .. ")\n")):version())
      end
    end)
  end)

  describe("errors name the place", function()
    local cases = {
      { "no program keyword", "prog(1.3)", "t.mil:1:1: expected 'program', got 'prog'" },
      { "bad version", "program(1.x)", "t.mil:1:9: malformed number" },
      { "missing brace", "program(1.3) func", "t.mil:1:14: expected '{', got 'func'" },
      { "empty program", "program(1.3) {}", "t.mil:1:15: expected 'func', got '}'" },
      { "trailing text", prog("", nil, "x") .. "junk", "t.mil:7:1: expected end of input after the program, got 'junk'" },
      { "undefined operand", prog("        tensor<fp16, [1, 4]> y = relu(x = z)[name = string(\"r\")];", nil, "y"),
        "t.mil:4:43: undefined value 'z'" },
      { "undefined output", prog("", nil, "q"), "t.mil:5:11: undefined output 'q'" },
      { "duplicate result", prog("        tensor<fp16, [1, 4]> x = relu(x = x)[name = string(\"r\")];"),
        "t.mil:4:30: duplicate name 'x'" },
      { "duplicate param", prog("", "fp16 a, fp16 a"), "t.mil:3:35: duplicate parameter 'a'" },
      { "duplicate input", prog("        tensor<fp16, [1, 4]> y = add(x = x, x = x)[name = string(\"r\")];", nil, "y"),
        "t.mil:4:45: duplicate input 'x'" },
      { "duplicate function", "program(1.3) { func f<ios18>() {} -> (); func f<ios18>() {} -> (); }",
        "t.mil:1:47: duplicate function 'f'" },
      { "untyped literal", prog("        tensor<fp16, [1, 4]> y = relu(x = 1.5)[name = string(\"r\")];", nil, "y"),
        "t.mil:4:43: a literal needs its type, e.g. fp16(1) or string(\"x\")" },
      { "int out of range", prog("        int8 a = const()[name = string(\"a\"), val = int8(128)];"),
        "t.mil:4:57: value '128' out of range for int8" },
      { "float for int", prog("        int32 a = const()[name = string(\"a\"), val = int32(1.5)];"),
        "t.mil:4:59: expected an integer for int32, got '1.5'" },
      { "too many elements", prog("        tensor<int32, [2]> a = const()[name = string(\"a\"), val = tensor<int32, [2]>([1, 2, 3])];"),
        "t.mil:4:92: too many elements for shape [2] (2 expected)" },
      { "too few elements", prog("        tensor<int32, [3]> a = const()[name = string(\"a\"), val = tensor<int32, [3]>([1, 2])];"),
        "t.mil:4:90: list literal has 2 elements, shape [3] needs 3" },
      { "huge literal shape (no allocation before the count check)", prog("        tensor<fp16, [100000000, 100000000]> a = const()[name = string(\"a\"), val = tensor<fp16, [100000000, 100000000]>([1, 2])];"),
        "t.mil:4:126: list literal has 2 elements, shape [100000000, 100000000] needs 10000000000000000" },
      { "huge flat literal", prog("        tensor<fp16, [100000000, 100000000]> a = const()[name = string(\"a\"), val = tensor<fp16, [100000000, 100000000]>([[1, 2]])];"),
        "t.mil:4:122: dimension 1 has 2 elements, shape says 100000000" },
      { "overflowing shape", prog("        tensor<fp16, [4294967296, 4294967296]> a = const()[name = string(\"a\"), val = tensor<fp16, [4294967296, 4294967296]>([1])];"),
        "t.mil:4:86: literal shape must be static and not overflow" },
      { "nested mismatch", prog("        tensor<int32, [2, 2]> a = const()[name = string(\"a\"), val = tensor<int32, [2, 2]>([[1, 2], [3]])];"),
        "t.mil:4:100: dimension 1 has 1 elements, shape says 2" },
      { "rank limit", prog("", "tensor<fp16, [1, 1, 1, 1, 1, 1, 1, 1, 1]> a"), "t.mil:3:60: rank exceeds the limit of 8" },
      { "negative dim", prog("", "tensor<fp16, [-1]> a"), "t.mil:3:36: negative dimension" },
      { "unknown dim strict", prog("", "tensor<fp16, [?]> a"), "t.mil:3:36: unknown dimension is accepted only with --lenient (or {lenient = true})" },
      { "unterminated string", prog("        string a = const()[name = string(\"a), val = string(\"b\")];"),
        "t.mil:4:61: expected ')', got 'b'" },
      { "string at end of line", "program(1.3) { func f<ios18>() { string a = const()[name = string(\"a\n",
        "t.mil:1:67: unterminated string" },
      { "bad escape", prog("        string a = const()[name = string(\"a\\n\"), val = string(\"b\")];"),
        "t.mil:4:42: unknown escape in string (only \\\" and \\\\ are allowed)" },
      { "hex without exponent", prog("        fp16 a = const()[name = string(\"a\"), val = fp16(0x1.8)];"),
        "t.mil:4:57: malformed hex float: missing 'p' exponent" },
      { "stray character", prog("        fp16 a = const()[name = string(\"a\"), val = fp16(1)] $;"),
        "t.mil:4:61: unexpected character" },
      { "lone minus", prog("        fp16 a = const()[name = string(\"a\"), val = fp16(- 1)];"),
        "t.mil:4:57: unexpected '-'" },
      { "bad type", prog("", "tensor<float, [1]> a"), "t.mil:3:29: expected an element type (fp16, int32, ...), got 'float'" },
      { "blob path type", prog("        tensor<fp16, [2]> w = const()[name = string(\"w\"), val = tensor<fp16, [2]>(BLOBFILE(path = int32(1), offset = uint64(64)))];"),
        "t.mil:4:99: BLOBFILE path must be a string" },
      { "blob offset type", prog("        tensor<fp16, [2]> w = const()[name = string(\"w\"), val = tensor<fp16, [2]>(BLOBFILE(path = string(\"@model_path/w.bin\"), offset = int32(64)))];"),
        "t.mil:4:137: BLOBFILE offset must be a uint64" },
      { "string blob", prog("        tensor<string, [2]> w = const()[name = string(\"w\"), val = tensor<string, [2]>(BLOBFILE(path = string(\"@model_path/w.bin\"), offset = uint64(64)))];"),
        "t.mil:4:87: BLOBFILE cannot hold string data" },
      { "scalar for vector", prog("        tensor<fp16, [2]> w = const()[name = string(\"w\"), val = tensor<fp16, [2]>(1)];"),
        "t.mil:4:83: a single value cannot fill shape [2]; write a list" },
      { "missing semicolon", prog("        fp16 a = const()[name = string(\"a\"), val = fp16(1)]\n        fp16 b = const()[name = string(\"b\"), val = fp16(1)];"),
        "t.mil:5:9: expected ';', got 'fp16'" },
      { "statement without type", prog("        a = relu(x = x);"), "t.mil:4:9: expected a result type, got 'a'" },
      { "too deep types", prog("", string.rep("dict<", 20) .. "fp16, fp16" .. string.rep(">", 20) .. " a"),
        "t.mil:3:107: types nested deeper than 16" },
      { "empty input", "", "t.mil:1:1: expected 'program', got end of input" },
    }
    for _, c in ipairs(cases) do
      it(c[1], function()
        local err = parse_err(c[2])
        assert.equal(c[3], first_line(err))
      end)
    end

    it("shows the offending line with a caret under the column", function()
      local err = parse_err(prog("        tensor<fp16, [1, 4]> y = relu(x = zz)[name = string(\"r\")];", nil, "y"))
      assert.equal("t.mil:4:43: undefined value 'zz'\n" ..
        "            tensor<fp16, [1, 4]> y = relu(x = zz)[name = string(\"r\")];\n" ..
        "                                              ^", err)
    end)

    it("never crashes on truncations of a valid program", function()
      local text = io.open(os.getenv("ANE_ROOT") .. "/spec/fixtures/mil/ref_causal_attention.mil"):read("a")
      for n = 0, #text - 1, 7 do
        local ok, err = pcall(ane.mil_parse, text:sub(1, n), "cut.mil")
        assert.is_false(ok)
        assert.matches("^cut%.mil:%d+:%d+: ", err)
      end
    end)
  end)
end)
