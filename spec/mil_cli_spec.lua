-- `ane mil check|fmt|run` through the real build/ane binary: exit codes, stdout, stderr.
local H = require "helpers"
local ane = require "ane"

local ADD = [[
program(1.3)
{
    func main<ios18>(tensor<fp16, [1, 4]> x) {
        fp16 two = const()[name = string("two"), val = fp16(2)];
        tensor<fp16, [1, 4]> y = mul(x = x, y = two)[name = string("y")];
    } -> (y);
}
]]

-- y = x + w with w read from @model_path/weights/w.bin
local WEIGHTED = [[
program(1.3)
{
    func main<ios18>(tensor<fp16, [4]> x) {
        tensor<fp16, [4]> w = const()[name = string("w"), val = tensor<fp16, [4]>(BLOBFILE(path = string("@model_path/weights/w.bin"), offset = uint64(64)))];
        tensor<fp16, [4]> y = add(x = x, y = w)[name = string("y")];
    } -> (y);
}
]]

describe("ane mil", function()
  describe("check", function()
    it("exits 0 for a valid program", function()
      local f = H.tmpfile(ADD, ".mil")
      local out, ok, code, err = H.ane { "mil", "check", f }
      assert.same({ true, 0, "", "" }, { ok, code, out, err })
    end)

    it("reports a parse error as PROG.mil:LINE:COL with the line and a caret", function()
      local f = H.tmpfile(ADD:gsub("x = x, y = two", "x = x, y = three"), ".mil")
      local _, ok, code, err = H.ane { "mil", "check", f }
      assert.is_false(ok)
      assert.equal(1, code)
      assert.equal(f .. ":5:49: undefined value 'three'\n" ..
        "            tensor<fp16, [1, 4]> y = mul(x = x, y = three)[name = string(\"y\")];\n" ..
        "    " .. string.rep(" ", 48) .. "^\n", err)
    end)

    it("reports a type error at the op", function()
      local f = H.tmpfile(ADD:gsub("fp16 two", "fp32 two"):gsub("fp16%(2%)", "fp32(2)"), ".mil")
      local _, ok, code, err = H.ane { "mil", "check", f }
      assert.is_false(ok)
      assert.equal(1, code)
      -- the checker points at the offending input binding
      assert.matches("^" .. H.escape(f) .. ":5:45: mul: ", err)
    end)

    it("accepts lenient forms only with --lenient", function()
      local f = H.tmpfile(ADD:gsub("tensor<fp16, %[1, 4%]> x%)", "tensor<fp16, [?, 4]> x)"), ".mil")
      local _, ok, _, err = H.ane { "mil", "check", f }
      assert.is_false(ok)
      assert.equal(f .. ":3:36: unknown dimension is accepted only with --lenient (or {lenient = true})", err:match("^[^\n]*"))
      local _, ok2 = H.ane { "mil", "fmt", "--lenient", f }
      assert.is_true(ok2)
    end)

    it("accepts // comments without --lenient, and fmt keeps whole-line ones", function()
      local f = H.tmpfile("// note\n" .. ADD:gsub("(\n        fp16 two)", "\n        // two%1"), ".mil")
      local _, ok, code, err = H.ane { "mil", "check", f }
      assert.same({ true, 0, "" }, { ok, code, err })
      local out, ok2 = H.ane { "mil", "fmt", f }
      assert.is_true(ok2)
      assert.matches("^// note\nprogram%(1%.3%)\n{\n    func main<ios18>%(tensor<fp16, %[1, 4%]> x%) {\n        // two\n        fp16 two = ", out)
    end)

    it("rejects bad arguments", function()
      -- bad usage: exit 2, the message and the usage; a file that cannot be read: exit 1
      local cases = {
        { { "mil", "check" }, "ane mil check: missing PROG.mil\nusage: ane mil", 2 },
        { { "mil", "check", "a.mil", "b.mil" }, "ane mil check: unexpected argument 'b.mil'\nusage: ane mil", 2 },
        { { "mil", "check", "--fast", "a.mil" }, "ane mil check: unknown option '--fast'\nusage: ane mil", 2 },
        { { "mil", "check", "/nonexistent/p.mil" }, "ane mil check: /nonexistent/p.mil: No such file or directory\n", 1 },
      }
      for _, c in ipairs(cases) do
        local _, ok, code, err = H.ane(c[1])
        assert.is_false(ok)
        assert.equal(c[3], code)
        assert.equal(c[2], err:sub(1, #c[2]))
      end
    end)

    it("prints usage for no command and for an unknown one (exit 2), and for --help (stdout, exit 0)", function()
      local _, ok, code, err = H.ane { "mil" }
      assert.same({ false, 2 }, { ok, code })
      assert.matches("^ane mil: missing command\nusage: ane mil check", err)
      local _, ok2, code2, err2 = H.ane { "mil", "lint", "x" }
      assert.same({ false, 2 }, { ok2, code2 })
      assert.matches("^ane mil: unknown command 'lint'\nusage:", err2)
      for _, argv in ipairs { { "mil", "--help" }, { "mil", "-h" }, { "mil", "help" }, { "mil", "check", "--help" },
                              { "mil", "fmt", "--help" }, { "mil", "run", "x.mil", "--help" } } do
        local out, ok3, code3, err3 = H.ane(argv)
        assert.same({ true, 0, "" }, { ok3, code3, err3 }, table.concat(argv, " "))
        assert.matches("^usage: ane mil check", out)
        assert.matches("ane mil %[COMMAND%] %-%-help", out)
      end
    end)
  end)

  describe("fmt", function()
    it("prints canonical text in the program's dialect or the one asked for", function()
      local f = H.tmpfile("program(1.3){func main<ios18>(fp16 x){fp16 y=relu(x=x);}->(y);}", ".mil")
      local out, ok = H.ane { "mil", "fmt", f }
      assert.is_true(ok)
      assert.equal([[
program(1.3)
{
    func main<ios18>(fp16 x) {
        fp16 y = relu(x = x)[name = string("y")];
    } -> (y);
}
]], out)
      local out2 = H.ane { "mil", "fmt", "--dialect", "1.0", f }
      assert.matches("^program%(1%.0%)\n", out2)
      assert.matches("tensor<fp16, %[%]> y = relu%(x = x%)%[name = tensor<string, %[%]>%(\"y\"%)%];", out2)
      local _, ok3, code3, err3 = H.ane { "mil", "fmt", "--dialect=2", f }
      assert.same({ false, 2 }, { ok3, code3 })
      assert.matches("^ane mil fmt: %-%-dialect must be 1%.0 or 1%.3, got '2'\nusage: ane mil", err3)
    end)

    it("formats every corpus program to text that parses back to the same program", function()
      for _, name in ipairs { "ref_causal_attention.mil", "ref_rmsnorm_v2.mil" } do
        local path = H.root .. "/spec/fixtures/mil/" .. name
        local out, ok = H.ane { "mil", "fmt", path }
        assert.is_true(ok)
        local p = ane.mil_parse_file(path)
        assert.is_true(p:equal(ane.mil_parse(out)))
      end
    end)
  end)

  describe("run", function()
    local prog, x_npy
    setup(function()
      prog = H.tmpfile(ADD, ".mil")
      x_npy = os.tmpname() .. ".npy"
      ane.from_table({ { 1, -2, 0.5, 3 } }, "fp16"):save_npy(x_npy)
    end)

    it("evaluates main and writes the requested outputs", function()
      local y_npy = os.tmpname() .. ".npy"
      local _, ok, code, err = H.ane { "mil", "run", prog, "--in", "x=" .. x_npy, "--out", "y=" .. y_npy, "--backend", "cpu" }
      assert.same({ true, 0 }, { ok, code }, err)
      local y = assert(ane.load_npy(y_npy))
      assert.equal("fp16", y:dtype())
      assert.same({ 1, 4 }, y:shape())
      assert.same({ { 2, -4, 1, 6 } }, y:to_table())
    end)

    it("times N evaluations after a warm-up with --repeat", function()
      local _, ok, _, err = H.ane { "mil", "run", prog, "--in=x=" .. x_npy, "--repeat", "3" }
      assert.is_true(ok, err)
      assert.matches("compile: [%d.]+ ms\n", err)
      assert.matches("eval: median [%d.]+ ms, min [%d.]+ ms over 3\n", err)
    end)

    it("resolves @model_path against --model-path (default: the program's directory)", function()
      local dir = H.tmpdir("weights")
      local bytes = ane.mil_blob_write { ane.from_table({ 10, 20, 30, 40 }, "fp16") }
      H.write(dir .. "/weights/w.bin", bytes)
      local text = WEIGHTED
      local p = H.write(dir .. "/p.mil", text)
      local x4 = os.tmpname() .. ".npy"
      ane.from_table({ 1, 2, 3, 4 }, "fp16"):save_npy(x4)
      local y = os.tmpname() .. ".npy"
      local _, ok, _, err = H.ane { "mil", "run", p, "--in", "x=" .. x4, "--out", "y=" .. y }
      assert.is_true(ok, err)
      assert.same({ 11, 22, 33, 44 }, ane.load_npy(y):to_table())
      -- elsewhere, with --model-path
      local p2 = H.tmpfile(text, ".mil")
      local _, ok2, _, err2 = H.ane { "mil", "run", p2, "--in", "x=" .. x4 }
      assert.is_false(ok2)
      assert.matches("^" .. H.escape(p2) .. ":4:65: cannot open weight file .*/weights/w%.bin %(@model_path/weights/w%.bin%): No such file or directory", err2)
      local _, ok3, _, err3 = H.ane { "mil", "run", p2, "--in", "x=" .. x4, "--model-path", dir }
      assert.is_true(ok3, err3)
    end)

    it("check opens the weight files with --model-path", function()
      local dir = H.tmpdir("weights")
      H.write(dir .. "/weights/w.bin", ane.mil_blob_write { ane.from_table({ 1, 2, 3, 4 }, "fp16") })
      local text = WEIGHTED
      local p = H.tmpfile(text, ".mil")
      local _, ok, code, err = H.ane { "mil", "check", p } -- no file beside it: said, and still 0
      assert.same({ true, 0 }, { ok, code })
      assert.matches("^ane mil check: weights not checked: no file at .*/weights/w%.bin\n$", err)
      _, ok, _, err = H.ane { "mil", "check", p, "--model-path", dir }
      assert.is_true(ok, err)
      local empty = H.tmpdir()
      _, ok, _, err = H.ane { "mil", "check", p, "--model-path", empty }
      assert.is_false(ok)
      assert.matches("^" .. H.escape(p) .. ":4:65: cannot open weight file .*/weights/w%.bin", err)
      -- a record for 4 fp16 values where the literal wants 8
      local p8 = H.tmpfile((text:gsub("%[4%]", "[8]")), ".mil")
      _, ok, _, err = H.ane { "mil", "check", p8, "--model-path", dir }
      assert.is_false(ok)
      assert.matches("^" .. H.escape(p8) .. ":4:", err)
    end)

    it("check without --model-path checks the weight files beside the program, as run finds them", function()
      local dir = H.tmpdir("weights")
      local p = H.write(dir .. "/p.mil", WEIGHTED)
      H.write(dir .. "/weights/w.bin", ane.mil_blob_write { ane.from_table({ 1, 2, 3, 4 }, "fp16") })
      local out, ok, code, err = H.ane { "mil", "check", p }
      assert.same({ true, 0, "", "" }, { ok, code, out, err })
      -- a 10-byte w.bin beside it is refused, positioned at the literal
      H.write(dir .. "/weights/w.bin", "0123456789")
      _, ok, code, err = H.ane { "mil", "check", p }
      assert.same({ false, 1 }, { ok, code })
      assert.matches("^" .. H.escape(p) .. ":4:65: ", err)
      -- two literals in one absent file: one line naming it once
      local two = H.write(dir .. "/two.mil", (WEIGHTED:gsub("(\n%s*tensor<fp16, %[4%]> y)",
        '\n        tensor<fp16, [4]> w2 = const()[name = string("w2"), val = tensor<fp16, [4]>(BLOBFILE(path = string("@model_path/weights/v.bin"), offset = uint64(64)))];' ..
        '\n        tensor<fp16, [4]> w3 = const()[name = string("w3"), val = tensor<fp16, [4]>(BLOBFILE(path = string("@model_path/weights/v.bin"), offset = uint64(192)))];%1')))
      H.write(dir .. "/weights/w.bin", ane.mil_blob_write { ane.from_table({ 1, 2, 3, 4 }, "fp16") })
      _, ok, code, err = H.ane { "mil", "check", two }
      assert.same({ true, 0 }, { ok, code })
      assert.equal("ane mil check: weights not checked: no file at " .. dir .. "/weights/v.bin\n", err)
    end)

    it("rejects bad arguments, missing inputs and mismatched files", function()
      local f32 = os.tmpname() .. ".npy"
      ane.from_table({ { 1, 2, 3, 4 } }, "fp32"):save_npy(f32)
      local wrong_shape = os.tmpname() .. ".npy"
      ane.from_table({ 1, 2, 3, 4 }, "fp16"):save_npy(wrong_shape)
      local nomain = H.tmpfile((ADD:gsub("func main", "func other")), ".mil")
      local cases = {
        { { "--repeat", "0" }, "--repeat expects a positive integer, got '0'", 2 },
        { { "--repeat", "x" }, "--repeat expects a positive integer, got 'x'", 2 },
        { { "--repeat" }, "option '--repeat' needs a value", 2 },
        { { "--in", "x" }, "--in expects NAME=FILE.npy, got 'x'", 2 },
        { { "--in", "x=a.npy", "--in", "x=b.npy" }, "--in 'x' given twice", 2 },
        { { "--in", "q=" .. x_npy }, "--in q: main has no input 'q'" },
        { {}, "missing input 'x' (fp16 [1, 4]): give --in x=FILE.npy" },
        { { "--in", "x=" .. f32 }, "--in x: " .. f32 .. " holds fp32, main declares fp16" },
        { { "--in", "x=" .. wrong_shape }, "--in x: " .. wrong_shape .. " has shape [4], main declares [1, 4]" },
        { { "--in", "x=/nonexistent.npy" }, "--in x: /nonexistent.npy: " },
        { { "--in", "x=" .. x_npy, "--out", "z=z.npy" }, "--out z: main returns no value 'z'" },
        { { "--in", "x=" .. x_npy, "--backend", "tpu" }, "--backend tpu: unknown backend 'tpu' (known: ", 2 },
        { { "--bogus" }, "unknown option '--bogus'", 2 },
      }
      for _, c in ipairs(cases) do
        local argv = { "mil", "run", prog }
        for _, a in ipairs(c[1]) do argv[#argv + 1] = a end
        local _, ok, code, err = H.ane(argv)
        assert.is_false(ok, table.concat(c[1], " "))
        assert.equal(c[3] or 1, code, table.concat(c[1], " "))
        assert.matches("^ane mil run: " .. H.escape(c[2]), err)
      end
      local _, ok, _, err = H.ane { "mil", "run", nomain }
      assert.is_false(ok)
      assert.equal("ane mil run: " .. nomain .. " has no function 'main'\n", err)
    end)
  end)
end)
