-- The command line's rules, through the real binary: subcommand words, --help, exit codes.
local H = require "helpers"
local ane = require "ane"

local ADD = [[
program(1.3)
{
    func main<ios18>(tensor<fp16, [1, 4]> x) {
        fp16 two = const()[name = string("two"), val = fp16(2)];
        tensor<fp16, [1, 4]> y = mul(x = x, y = two)[name = string("y")];
        tensor<fp16, [1, 4]> z = add(x = x, y = two)[name = string("z")];
    } -> (y, z);
}
]]

-- Run the binary in directory dir: { "cd", dir, "&&", ane, args... } through sh.
local function ane_in(dir, args)
  local parts = { "cd " .. H.shquote(dir) .. " && " .. H.shquote(H.ane_bin) }
  for _, a in ipairs(args) do parts[#parts + 1] = H.shquote(a) end
  return H.run({ "sh", "-c", table.concat(parts, " ") })
end

describe("subcommand words", function()
  it("win over a file or folder of that name in the working directory; ./NAME runs the file", function()
    local d = H.tmpdir("mil")
    H.write(d .. "/mil/ok.mil", ADD)
    H.write(d .. "/info", "print('the file named info')\n")
    H.write(d .. "/selftest", "print('the file named selftest')\n")
    local out, ok, code, err = ane_in(d, { "mil", "check", "mil/ok.mil" })
    assert.same({ true, 0, "" }, { ok, code, err })
    out, ok = ane_in(d, { "info" })
    assert.is_true(ok)
    assert.matches("backends", out)
    out, ok, _, err = ane_in(d, { "./info" })
    assert.is_true(ok, err)
    assert.equal("the file named info\n", out)
    out = ane_in(d, { "selftest", "--help" })
    assert.matches("^usage: ane selftest", out)
    os.execute("rm -rf " .. H.shquote(d))
  end)

  it("are explained by ane --help", function()
    local out, ok = H.ane { "--help" }
    assert.is_true(ok)
    assert.matches("A subcommand word %(info, mil, selftest%) always means the subcommand", out)
    assert.matches("`ane %./mil`", out)
    assert.matches("%-%-bytecode", out)
  end)
end)

describe("every subcommand", function()
  it("prints its usage on stdout and exits 0 for --help, and exits 2 with it for a bad argument", function()
    for _, sub in ipairs { "info", "mil", "selftest" } do
      local out, ok, code, err = H.ane { sub, "--help" }
      assert.same({ true, 0, "" }, { ok, code, err }, sub)
      assert.matches("^usage: ane " .. sub, out)
      out, ok, code, err = H.ane { sub, "--no-such-option" }
      assert.same({ false, 2, "" }, { ok, code, out }, sub)
      assert.matches("\nusage: ane " .. sub, err)
    end
  end)
end)

describe("ane mil run", function()
  local d, prog, x_npy
  setup(function()
    d = H.tmpdir()
    prog = H.write(d .. "/p.mil", ADD)
    x_npy = d .. "/x.npy"
    assert(ane.from_table({ { 1, 2, 3, 4 } }, "fp16"):save_npy(x_npy))
  end)
  teardown(function() os.execute("rm -rf " .. H.shquote(d)) end)

  it("without --out prints every output: name, dtype, shape, values, min/max/mean", function()
    local out, ok, code, err = H.ane { "mil", "run", prog, "--in", "x=" .. x_npy }
    assert.same({ true, 0 }, { ok, code }, err)
    assert.equal("y: fp16 [1, 4] [2, 4, 6, 8] min 2 max 8 mean 5\n" ..
      "z: fp16 [1, 4] [3, 4, 5, 6] min 3 max 6 mean 4.5\n", out)
  end)

  it("exits 1 naming the file when an --out file cannot be written (it used to exit 0)", function()
    local out, ok, code, err = H.ane { "mil", "run", prog, "--in", "x=" .. x_npy, "--out", "y=/no/such/dir/y.npy" }
    assert.same({ false, 1, "" }, { ok, code, out })
    assert.matches("ane mil run: %-%-out y: cannot write /no/such/dir/y%.npy: ", err)
    -- a good --out writes the file and prints no summary
    out, ok = H.ane { "mil", "run", prog, "--in", "x=" .. x_npy, "--out", "z=" .. d .. "/z.npy" }
    assert.same({ true, "" }, { ok, out })
    assert.same({ { 3, 4, 5, 6 } }, ane.load_npy(d .. "/z.npy"):to_table())
  end)
end)

describe("examples/mil (what the README shows)", function()
  local function from_root(args)
    local parts = { "cd " .. H.shquote(H.root) .. " && " .. H.shquote(H.ane_bin) }
    for _, a in ipairs(args) do parts[#parts + 1] = H.shquote(a) end
    return H.run({ "sh", "-c", table.concat(parts, " ") })
  end

  it("checks, formats and runs examples/mil/linear.mil with its committed weights and input", function()
    local out, ok, code, err = from_root { "mil", "check", "examples/mil/linear.mil" }
    assert.same({ true, 0, "", "" }, { ok, code, out, err })
    out, ok, _, err = from_root { "mil", "fmt", "examples/mil/linear.mil" }
    assert.is_true(ok, err)
    assert.matches("^program%(1%.3%)\n", out)
    assert.matches("linear%(bias = b, weight = W, x = x%)", out)
    out, ok, _, err = from_root { "mil", "run", "examples/mil/linear.mil", "--in", "x=examples/mil/x.npy" }
    assert.is_true(ok, err)
    assert.equal("y: fp16 [1, 8] [0, 0, 0, 2.5, 5.125, 7.75, 10.375, 13] min 0 max 13 mean 4.84375\n", out)
  end)
end)
