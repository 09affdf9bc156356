-- .npy files from Lua: ane.load_npy / t:save_npy round trips, malformed files written here, and
-- files exchanged with NumPy when /usr/bin/python3 has it.
--
-- Convention under test: file problems (missing, unreadable, malformed) are expected failures and
-- return nil, message (like io.open and loadfile); wrong argument types raise.
local ane = require "ane"
local H = require "helpers"

local function tmp(suffix) return os.tmpname() .. (suffix or ".npy") end

-- A .npy image: format 1.0, header text padded with spaces to 64-byte alignment, raw data bytes.
local function npy_bytes(header, data, opts)
  opts = opts or {}
  local major = opts.major or 1
  local pre = 6 + 2 + (major == 1 and 2 or 4)
  local pad = (64 - (pre + #header + 1) % 64) % 64
  local h = header .. string.rep(" ", pad) .. "\n"
  local len = major == 1 and string.pack("<I2", #h) or string.pack("<I4", #h)
  return (opts.magic or "\x93NUMPY") .. string.char(major, 0) .. len .. h .. data
end

local function header(descr, shape, fortran)
  return string.format("{'descr': '%s', 'fortran_order': %s, 'shape': %s, }", descr, fortran and "True" or "False", shape)
end

describe("npy", function()
  it("round-trips every dtype and rank through save_npy/load_npy", function()
    local cases = {
      { "fp16", { { 1.5, -2 }, { 65504, 0.0999755859375 } } },
      { "fp32", { 0.1, -1e30, 3.25 } },
      { "int32", { { { 1, -2147483648, 2147483647 } } } },
      { "int8", { -128, 127, 0 } },
      { "uint8", { { 0 }, { 255 } } },
      { "bool", { true, false, true } },
    }
    for _, c in ipairs(cases) do
      local t = ane.from_table(c[2], c[1])
      local path = tmp()
      assert.is_true(t:save_npy(path))
      local u = assert(ane.load_npy(path))
      assert.equal(c[1], u:dtype())
      assert.same(t:shape(), u:shape())
      assert.same(c[1] == "fp32" and t:to_table() or c[2], u:to_table())
      os.remove(path)
    end
    local five = ane.rand({ 2, 1, 3, 1, 2 }, { seed = 5, dtype = "fp32" })
    local path = tmp()
    five:save_npy(path)
    assert.same(five:to_table(), ane.load_npy(path):to_table())
    os.remove(path)
  end)

  it("loads a rank-0 array as a rank-0 tensor", function()
    local path = H.write(tmp(), npy_bytes(header("<f4", "()"), string.pack("<f", 2.5)))
    local t = assert(ane.load_npy(path))
    assert.same({}, t:shape())
    assert.equal(1, t:numel())
    assert.same({ 2.5 }, t:to_table())
    os.remove(path)
  end)

  it("reads format 2.0 headers", function()
    local path = H.write(tmp(), npy_bytes(header("<i4", "(2,)"), string.pack("<i4i4", 7, -7), { major = 2 }))
    assert.same({ 7, -7 }, assert(ane.load_npy(path)):to_table())
    os.remove(path)
  end)

  -- Files NumPy itself wrote (spec/fixtures/npy/make_fixtures.py, committed): every dtype in
  -- both byte orders, C and Fortran order, ranks 1..5, formats 1.0, 2.0 and 3.0. Element i in C
  -- order has the value the script's values() gives it.
  describe("NumPy's own files (spec/fixtures/npy)", function()
    local dir = H.root .. "/spec/fixtures/npy"
    local SHAPES = { { 5 }, { 3, 4 }, { 2, 3, 4 }, { 2, 1, 3, 2 }, { 2, 3, 1, 2, 2 } }
    local DTYPES = { f2 = "fp16", f4 = "fp32", i4 = "int32", i1 = "int8", u1 = "uint8", b1 = "bool" }
    local function value(code, i)
      if code == "i1" then return (i * 11) % 256 - 128 end
      if code == "u1" then return (i * 37 + 3) % 256 end
      if code == "b1" then return i % 3 == 0 end
      if code == "i4" then return (i - 12) * 100000007 end
      return (i - 7) / 4
    end
    local function check(file, code, rank)
      local t, err = ane.load_npy(dir .. "/" .. file)
      assert(t, err)
      assert.equal(DTYPES[code], t:dtype(), file)
      assert.same(SHAPES[rank], t:shape(), file)
      local flat = t:reshape({ -1 }):to_table()
      for i = 1, #flat do
        if flat[i] ~= value(code, i - 1) then
          error(("%s: element %d (C order) is %s, NumPy wrote %s"):format(file, i, tostring(flat[i]),
            tostring(value(code, i - 1))))
        end
      end
      return t
    end

    it("reads every dtype, both byte orders, C and Fortran order, ranks 1..5", function()
      local n = 0
      for code in pairs(DTYPES) do
        local endians = #code == 2 and code:sub(2) == "1" and { "" } or { "_le", "_be" }
        for _, endian in ipairs(endians) do
          for rank = 1, 5 do
            for _, order in ipairs(rank == 1 and { "C" } or { "C", "F" }) do
              check(("%s%s_%s_r%d.npy"):format(code, endian, order, rank), code, rank)
              n = n + 1
            end
          end
        end
      end
      assert.equal(81, n)
    end)

    it("reads formats 2.0 and 3.0 in either order", function()
      for _, v in ipairs { 2, 3 } do
        check(("v%d_f4_be_F_r3.npy"):format(v), "f4", 3)
        check(("v%d_i1_F_r2.npy"):format(v), "i1", 2)
        check(("v%d_f2_le_C_r4.npy"):format(v), "f2", 4)
      end
    end)

    it("saves what it read in C order, little-endian", function()
      local t = check("f4_be_F_r3.npy", "f4", 3)
      local path = tmp()
      assert.is_true(t:save_npy(path))
      local bytes = H.read(path)
      assert.matches("'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 4)", bytes, 1, true)
      assert.equal(string.pack("<f", value("f4", 0)) .. string.pack("<f", value("f4", 1)),
        bytes:sub(129, 136))
      assert.same(t:to_table(), ane.load_npy(path):to_table())
      os.remove(path)
    end)

    it("ane mil run --in reads a Fortran-order big-endian file", function()
      local prog = H.tmpfile([[
program(1.3)
{
    func main<ios18>(tensor<fp32, [2, 3, 4]> x) {
        tensor<fp32, [2, 3, 4]> y = add(x = x, y = x)[name = string("dbl")];
    } -> (y);
}
]], ".mil")
      local out = tmp()
      local stdout, ok, _, err = H.ane { "mil", "run", prog, "--backend", "cpu",
        "--in", "x=" .. dir .. "/f4_be_F_r3.npy", "--out", "y=" .. out }
      assert(ok, stdout .. err)
      local y = assert(ane.load_npy(out))
      local flat = y:reshape({ -1 }):to_table()
      for i = 1, 24 do assert.equal(2 * value("f4", i - 1), flat[i]) end
      os.remove(out)
    end)
  end)

  it("returns nil and a message naming the file for missing and malformed files", function()
    local missing = "/nonexistent/dir/x.npy"
    local t, msg = ane.load_npy(missing)
    assert.is_nil(t)
    assert.equal(missing .. ": No such file or directory", msg)

    local data8 = string.rep("\0", 8)
    local bad = {
      { npy_bytes(header("<f8", "(1,)"), data8), "unsupported dtype '<f8' (supported: <f2 >f2 <f4 >f4 <i4 >i4 |i1 |u1 |b1)" },
      { npy_bytes(header(">f8", "(1,)"), data8), "unsupported dtype '>f8' (supported: <f2 >f2 <f4 >f4 <i4 >i4 |i1 |u1 |b1)" },
      { npy_bytes(header("|f4", "(2,)"), data8), "unsupported dtype '|f4' (supported: <f2 >f2 <f4 >f4 <i4 >i4 |i1 |u1 |b1)" },
      { npy_bytes(header(">f4", "(2, 3)", true), data8), "truncated .npy data: expected 24 bytes, found 8" },
      { npy_bytes(header("<f4", "(2,)"), data8, { magic = "\x93NUMPZ" }), "not a .npy file (bad magic)" },
      { "PK\3\4 this is a zip", "not a .npy file (bad magic)" },
      { npy_bytes(header("<f4", "(2,)"), "\0\0\0"), "truncated .npy data: expected 8 bytes, found 3" },
      { npy_bytes(header("<f4", "(2,)"), data8 .. "x"), "1 unexpected bytes after the .npy data" },
      { npy_bytes(header("<f2", "(1, 1, 1, 1, 1, 1)"), "\0\0"), "rank is more than 5" },
      { npy_bytes(header("<f4", "(1000000000000,)"), data8), "truncated .npy data: expected 4000000000000 bytes, found 8" },
      { npy_bytes("{'descr': '<f4'}", data8), "malformed .npy header: missing key 'fortran_order'" },
      { "\x93NUMPY\1\0\200\0{'descr'", "truncated .npy header (file is 18 bytes, header needs 210)" },
      { "\x93NUMPY\9\0\0\0", "unsupported .npy format version 9.0" },
    }
    for _, c in ipairs(bad) do
      local path = H.write(tmp(), c[1])
      local ok, err = ane.load_npy(path)
      assert.is_nil(ok)
      assert.equal(path .. ": " .. c[2], err)
      os.remove(path)
    end
  end)

  it("save_npy returns nil and a message when the file cannot be written", function()
    local ok, msg = ane.zeros({ 2 }):save_npy("/nonexistent/dir/y.npy")
    assert.is_nil(ok)
    assert.equal("/nonexistent/dir/y.npy: No such file or directory", msg)
  end)

  it("raises for wrong argument types and closed tensors", function()
    assert.matches("bad argument #1 to '[%w_%.]*load_npy' %(string expected, got no value%)", select(2, pcall(ane.load_npy)))
    local t = ane.zeros({ 2 })
    assert.matches("bad argument #1 to 'save_npy' %(string expected, got table%)$",
      select(2, pcall(function() return t:save_npy({}) end)))
    t:close()
    assert.matches("calling 'save_npy' on bad self %(ane.Tensor is closed%)$",
      select(2, pcall(function() return t:save_npy("/tmp/never.npy") end)))
  end)

  local py = "/usr/bin/python3"
  local _, have_numpy = H.run({ py, "-c", "import numpy" })
  if not have_numpy then
    pending("NumPy interop: " .. py .. " with numpy is not installed")
    return
  end

  it("loads files NumPy wrote (1.0 and 2.0 headers) with the same values", function()
    local dir = H.tmpdir()
    local script = H.tmpfile(([==[
import numpy as np
d = %q
np.save(d + "/f2.npy", (np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 7).astype("<f2"))
np.save(d + "/f4.npy", np.linspace(-1, 1, 10, dtype="<f4"))
np.save(d + "/i4.npy", np.array([[1, -2], [2**31 - 1, -2**31]], dtype="<i4"))
np.save(d + "/i1.npy", np.array([-128, 5, 127], dtype="i1"))
np.save(d + "/u1.npy", np.array([0, 200, 255], dtype="u1"))
np.save(d + "/b1.npy", np.array([True, False, True]))
with open(d + "/v2.npy", "wb") as f:
    np.lib.format.write_array(f, np.array([1.5, 2.5], dtype="<f4"), version=(2, 0))
np.save(d + "/f8.npy", np.zeros(3))
np.save(d + "/fortran.npy", np.arange(6, dtype="<f4").reshape(2, 3).T)
np.save(d + "/be.npy", np.array([1.5, -2, 3e9], dtype=">f4"))
]==]):format(dir), ".py")
    local out, ok, _, err = H.run({ py, script })
    assert(ok, out .. err)
    local f2 = assert(ane.load_npy(dir .. "/f2.npy"))
    assert.same({ 2, 3, 4 }, f2:shape())
    assert.equal(ane.fp16_round(23 / 7), f2:get(2, 3, 4))
    assert.equal(ane.fp16_round(5 / 7), f2:get(1, 2, 2))
    local f4 = assert(ane.load_npy(dir .. "/f4.npy"))
    assert.equal(-1, f4[1])
    assert.equal(1, f4[10])
    assert.near(-1 + 2 / 9, f4[2], 1e-6)
    assert.same({ { 1, -2 }, { 2147483647, -2147483648 } }, assert(ane.load_npy(dir .. "/i4.npy")):to_table())
    assert.same({ -128, 5, 127 }, assert(ane.load_npy(dir .. "/i1.npy")):to_table())
    assert.same({ 0, 200, 255 }, assert(ane.load_npy(dir .. "/u1.npy")):to_table())
    assert.same({ true, false, true }, assert(ane.load_npy(dir .. "/b1.npy")):to_table())
    assert.same({ 1.5, 2.5 }, assert(ane.load_npy(dir .. "/v2.npy")):to_table())
    assert.matches(": unsupported dtype '<f8'", select(2, ane.load_npy(dir .. "/f8.npy")))
    assert.same({ { 0, 3 }, { 1, 4 }, { 2, 5 } }, assert(ane.load_npy(dir .. "/fortran.npy")):to_table())
    assert.same({ 1.5, -2, 3e9 }, assert(ane.load_npy(dir .. "/be.npy")):to_table())
    os.execute("rm -rf " .. H.shquote(dir))
  end)

  it("writes files NumPy reads back with the same dtype, shape and values", function()
    local cases = {
      { "fp16", ane.from_table({ { 0.1, -2 }, { 65504, 1e-7 } }, "fp16") },
      { "fp32", ane.rand({ 3, 5 }, { seed = 8, dtype = "fp32", dist = "normal" }) },
      { "int32", ane.from_table({ 1, -2147483648 }, "int32") },
      { "int8", ane.from_table({ -128, 127 }, "int8") },
      { "uint8", ane.from_table({ { { 9 } } }, "uint8") },
      { "bool", ane.from_table({ false, true }, "bool") },
    }
    for _, c in ipairs(cases) do
      local path = tmp()
      assert.is_true(c[2]:save_npy(path))
      local out, ok, _, err = H.run({ py, "-c", ([[
import numpy as np, json
a = np.load(%q)
print(a.dtype.str, json.dumps(list(a.shape)), json.dumps(a.astype(float).ravel().tolist()))
]]):format(path) })
      assert(ok, err)
      local descr, shape, values = out:match("^(%S+) (%b[]) (%b[])")
      local want = { fp16 = "<f2", fp32 = "<f4", int32 = "<i4", int8 = "|i1", uint8 = "|u1", bool = "|b1" }
      assert.equal(want[c[1]], descr)
      assert.equal("[" .. table.concat(c[2]:shape(), ", ") .. "]", shape)
      local flat = c[2]:reshape({ -1 }):to_table()
      local i = 0
      for v in values:gmatch("[^%[%], ]+") do
        i = i + 1
        local mine = flat[i]
        if type(mine) == "boolean" then mine = mine and 1 or 0 end
        assert.equal(mine, tonumber(v))
      end
      assert.equal(#flat, i)
      os.remove(path)
    end
  end)
end)
