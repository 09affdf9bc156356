-- ane.Tensor: construction, element access (1-based), views, conversions, RNG, arithmetic, errors.
local ane = require "ane"

-- The message of a call that must raise; the function name in "bad argument #k to 'f'" depends on
-- how Lua found the function, so `argerr` matches the name loosely and the rest exactly.
local function err(f, ...)
  local ok, msg = pcall(f, ...)
  assert(not ok, "expected an error")
  return tostring(msg)
end
local function esc(s) return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0")) end
local function argerr(k, fname, text)
  return "bad argument #" .. k .. " to '[%w_%.]*" .. esc(fname) .. "' %(" .. esc(text) .. "%)$"
end
local function selferr(fname, text)
  return "calling '" .. esc(fname) .. "' on bad self %(" .. esc(text) .. "%)$"
end

describe("ane.Tensor", function()
  describe("construction", function()
    it("zeros gives a zeroed tensor of the shape and dtype asked", function()
      local t = ane.zeros({ 2, 3, 4 }, "fp32")
      assert.same({ 2, 3, 4 }, t:shape())
      assert.equal("fp32", t:dtype())
      assert.equal(24, t:numel())
      assert.equal(3, t:rank())
      assert.equal(96, t:nbytes())
      assert.equal("heap", t:storage_kind())
      assert.equal(2, #t)
      for _, row in ipairs(t:to_table()) do
        for _, col in ipairs(row) do
          for _, v in ipairs(col) do assert.equal(0, v) end
        end
      end
    end)

    it("defaults to fp16", function()
      assert.equal("fp16", ane.zeros({ 4 }):dtype())
      assert.same({ "fp16", "fp32", "int32", "int8", "uint8", "bool" }, ane.dtypes)
    end)

    it("full fills every element", function()
      assert.same({ { 7, 7 }, { 7, 7 } }, ane.full({ 2, 2 }, 7, "int32"):to_table())
      assert.same({ true, true }, ane.full({ 2 }, true, "bool"):to_table())
    end)

    it("from_table infers the shape of nested tables and round-trips", function()
      local src = { { { 1, 2 }, { 3, 4 }, { 5, 6 } }, { { 7, 8 }, { 9, 10 }, { 11, 12 } } }
      for _, dt in ipairs({ "fp16", "fp32", "int32", "int8", "uint8" }) do
        local t = ane.from_table(src, dt)
        assert.same({ 2, 3, 2 }, t:shape())
        assert.same(src, t:to_table())
      end
      assert.same({ true, false, true }, ane.from_table({ true, false, 1 }, "bool"):to_table())
    end)

    it("from_table with a shape takes a flat list", function()
      local t = ane.from_table({ 1, 2, 3, 4, 5, 6 }, "fp32", { 3, 2 })
      assert.same({ { 1, 2 }, { 3, 4 }, { 5, 6 } }, t:to_table())
    end)

    it("integer dtypes give Lua integers, floats give floats", function()
      assert.equal(math.type(ane.from_table({ 3 }, "int32")[1]), "integer")
      assert.equal(math.type(ane.from_table({ 3 }, "fp32")[1]), "float")
    end)
  end)

  describe("element access (1-based)", function()
    it("get/set take one 1-based index per dimension", function()
      local t = ane.zeros({ 2, 3 }, "fp32")
      assert.equal(t, t:set(2, 3, 1.5))
      assert.equal(1.5, t:get(2, 3))
      assert.same({ { 0, 0, 0 }, { 0, 0, 1.5 } }, t:to_table())
    end)

    it("fp16 stores round to nearest even once", function()
      local t = ane.zeros({ 1 })
      t:set(1, 0.1)
      assert.equal(ane.fp16_round(0.1), t:get(1))
      assert.equal(0.0999755859375, t:get(1))
      t:set(1, 1 + 2 ^ -11 + 2 ^ -40) -- just above a tie: rounding through fp32 first would give 1
      assert.equal(1 + 2 ^ -10, t:get(1))
      t:set(1, 1e6)
      assert.equal(math.huge, t:get(1))
    end)

    it("t[i] reads an element of a rank-1 tensor and a row view otherwise", function()
      local t = ane.from_table({ { 1, 2 }, { 3, 4 } }, "fp32")
      local row = t[2]
      assert.same({ 2 }, row:shape())
      assert.equal(4, row[2])
      row[1] = 30
      assert.equal(30, t:get(2, 1)) -- the row shares storage
      assert.is_nil(t.nosuchmethod)
    end)

    it("rejects bad indices with the position", function()
      local t = ane.zeros({ 2, 3 })
      assert.matches(argerr(1, "get", "ane.Tensor expected, got number"), err(function() return t.get(1, 1) end))
      assert.matches(argerr(2, "get", "index 4 out of range [1, 3]"), err(function() return t:get(1, 4) end))
      assert.matches(argerr(1, "get", "index 0 out of range [1, 2]"), err(function() return t:get(0, 1) end))
      assert.matches(argerr(2, "get", "number has no integer representation"), err(function() return t:get(1, 1.5) end))
      assert.matches("expected 2 indices for a rank%-2 ane.Tensor, got 1$", err(function() return t:get(1) end))
      assert.matches(argerr(3, "set", "number expected, got string"), err(function() return t:set(1, 1, "x") end))
      assert.matches("index 3 out of range %[1, 2%]$", err(function() return t[3] end))
      assert.matches("t%[i%] = v needs a rank%-1 ane.Tensor %(this one has rank 2; use t:set%)$",
        err(function() t[1] = 0 end))
      assert.matches("cannot assign field 'x' of an ane.Tensor$", err(function() t.x = 0 end))
    end)

    it("integer dtypes refuse values they cannot hold", function()
      local t = ane.zeros({ 2 }, "uint8")
      assert.matches(argerr(2, "set", "256 is not a valid uint8 value"), err(function() return t:set(1, 256) end))
      assert.matches(argerr(2, "set", "1.5 is not a valid uint8 value"), err(function() return t:set(1, 1.5) end))
      assert.matches(argerr(1, "fill", "-1 is not a valid uint8 value"), err(function() return t:fill(-1) end))
      t:fill(255)
      assert.same({ 255, 255 }, t:to_table())
    end)
  end)

  describe("views", function()
    it("reshape shares storage and infers one -1", function()
      local t = ane.from_table({ 1, 2, 3, 4, 5, 6 }, "fp32")
      local r = t:reshape({ 2, -1 })
      assert.same({ 2, 3 }, r:shape())
      r:set(2, 1, 40)
      assert.equal(40, t[4])
      assert.matches(argerr(1, "reshape", "shape [4, 2] does not have the 6 elements of [6]"),
        err(function() return t:reshape({ 4, 2 }) end))
      assert.matches(argerr(1, "reshape", "cannot infer shape[2]: 6 elements"), err(function() return t:reshape({ 4, -1 }) end))
      assert.matches(argerr(1, "reshape", "cannot infer shape[3]: 6 elements"),
        err(function() return t:reshape({ 2 ^ 62, 2 ^ 62, -1 }) end))
      assert.matches(argerr(1, "reshape", "shape[2]: only one dimension may be -1"),
        err(function() return t:reshape({ -1, -1 }) end))
      assert.matches(argerr(1, "reshape", "shape [1, 1] does not have the 6 elements of [6]"),
        err(function() return t:reshape({ 1, 1 }) end))
      assert.matches(argerr(1, "reshape", "shape[1] must be a positive integer, got -2"),
        err(function() return t:reshape({ -2, 3 }) end))
    end)

    it("sub takes rows first..last (1-based, inclusive, negatives from the end)", function()
      local t = ane.from_table({ { 1 }, { 2 }, { 3 }, { 4 } }, "int32")
      assert.same({ { 2 }, { 3 } }, t:sub(2, 3):to_table())
      assert.same({ { 4 } }, t:sub(-1):to_table())
      assert.same({ { 3 }, { 4 } }, t:sub(-2, -1):to_table())
      assert.matches(argerr(1, "sub", "index 5 out of range [1, 4]"), err(function() return t:sub(5) end))
      assert.matches(argerr(2, "sub", "last index 1 out of range [2, 4]"), err(function() return t:sub(2, 1) end))
    end)

    it("a view keeps its storage alive after the base is collected or closed", function()
      collectgarbage(); collectgarbage()
      local before = ane.memory()
      local view
      do
        local base = ane.from_table({ { 1, 2 }, { 3, 4 } }, "fp32")
        view = base:sub(2)
      end
      collectgarbage(); collectgarbage()
      assert.same({ { 3, 4 } }, view:to_table())
      assert.equal(before + 16, ane.memory())
      local base2 = ane.from_table({ 5, 6 }, "fp32")
      local v2 = base2:reshape({ 2, 1 })
      base2:close()
      assert.same({ { 5 }, { 6 } }, v2:to_table())
      view = nil; v2 = nil
      collectgarbage(); collectgarbage()
      assert.equal(before, ane.memory())
    end)
  end)

  describe("conversion and copies", function()
    it("clone converts dtypes; copy converts in place", function()
      local t = ane.from_table({ 1.25, -2.5, 300 }, "fp32")
      assert.same({ 1, -2, 127 }, t:clone("int8"):to_table()) -- truncate, saturate
      assert.same({ 1.25, -2.5, 300 }, t:clone("fp16"):to_table())
      local d = ane.zeros({ 3, 1 }, "fp16")
      assert.equal(d, d:copy(t))
      assert.same({ { 1.25 }, { -2.5 }, { 300 } }, d:to_table())
      assert.matches(argerr(1, "copy", "shape [2] does not match [3, 1] (element counts differ)"),
        err(function() return d:copy(ane.zeros({ 2 })) end))
    end)

    it("bytes and from_bytes exchange raw little-endian data", function()
      local t = ane.from_table({ { 1.5, -2 }, { 1e9, 0 } }, "fp32")
      assert.equal(string.pack("<ffff", 1.5, -2, 1e9, 0), t:bytes())
      local u = ane.from_bytes(string.pack("<i4i4i4", 7, -1, 2147483647), "int32", { 3 })
      assert.same({ 7, -1, 2147483647 }, u:to_table())
      assert.equal(string.pack("<I2", 0x3c00), ane.from_table({ 1 }):bytes())
      assert.same({ 1, 2 }, ane.from_bytes("\0\60\0\64", "fp16", { 2 }):to_table())
      assert.matches(argerr(1, "from_bytes", "3 bytes for 4 expected"), err(ane.from_bytes, "abc", "fp16", { 2 }))
      assert.matches(argerr(3, "from_bytes", "table expected, got no value"), err(ane.from_bytes, "ab", "int8"))
      assert.matches(argerr(1, "from_bytes", "string expected, got table"), err(ane.from_bytes, {}, "int8", { 1 }))
      assert.matches(argerr(2, "from_bytes", "string expected, got no value"), err(ane.from_bytes, "ab"))
    end)

    it("fp16 helpers", function()
      assert.equal(0x3c00, ane.fp16_bits(1))
      assert.equal(65504, ane.fp16_from_bits(0x7bff))
      assert.equal(65504, ane.fp16_round(65519))
      assert.equal(math.huge, ane.fp16_round(65520))
      assert.matches(argerr(1, "fp16_from_bits", "fp16 bits must be in 0..65535"), err(ane.fp16_from_bits, 70000))
      local path = ane.fp16_simd()
      assert.equal("scalar", ane.fp16_simd(false))
      local big = ane.rand({ 1000 }, { seed = 1, dtype = "fp32", lo = -70000, hi = 70000 })
      local scalar = big:clone("fp16"):to_table()
      assert.equal(path, ane.fp16_simd(true))
      assert.same(scalar, big:clone("fp16"):to_table())
      assert.matches(argerr(1, "fp16_simd", "boolean expected, got number"), err(ane.fp16_simd, 1))
    end)
  end)

  describe("random fills", function()
    it("the same seed gives the same values, another seed others", function()
      local a = ane.rand({ 64 }, { seed = 1, dtype = "fp32" }):to_table()
      local b = ane.rand({ 64 }, { seed = 1, dtype = "fp32" }):to_table()
      local c = ane.rand({ 64 }, { seed = 2, dtype = "fp32" }):to_table()
      assert.same(a, b)
      assert.are_not.same(a, c)
    end)

    it("uniform and normal statistics are roughly right", function()
      local n = 20000
      local u = ane.rand({ n }, { seed = 3, lo = -1, hi = 3, dtype = "fp32" })
      local z = ane.rand({ 100, 200 }, { seed = 4, dist = "normal", mean = 5, std = 2, dtype = "fp32" })
      local s, s2, lo, hi = 0, 0, math.huge, -math.huge
      for _, v in ipairs(u:to_table()) do s = s + v; lo = math.min(lo, v); hi = math.max(hi, v) end
      assert.near(1, s / n, 0.05)
      assert.is_true(lo >= -1 and hi < 3 and lo < -0.99 and hi > 2.99)
      s = 0
      for _, row in ipairs(z:to_table()) do for _, v in ipairs(row) do s = s + v; s2 = s2 + v * v end end
      local mean = s / n
      assert.near(5, mean, 0.05)
      assert.near(2, math.sqrt(s2 / n - mean * mean), 0.05)
    end)

    it("an ane.Rng continues one stream across fills", function()
      local g1, g2 = ane.rng(9), ane.rng(9)
      local a = ane.rand({ 4 }, { rng = g1, dtype = "fp32" })
      local b = ane.zeros({ 4 }, "fp32"):rand({ rng = g1 })
      local both = ane.rand({ 8 }, { rng = g2, dtype = "fp32" }):to_table()
      local joined = a:to_table()
      for _, v in ipairs(b:to_table()) do joined[#joined + 1] = v end
      assert.same(both, joined)
      local x, y = ane.rng(1):uniform(), ane.rng(1):uniform()
      assert.equal(x, y)
      assert.is_true(x >= 0 and x < 1)
      assert.equal("ane.Rng", tostring(g1))
    end)

    it("rejects bad options by name", function()
      assert.matches(argerr(2, "rand", "unknown option 'sed'"), err(ane.rand, { 2 }, { sed = 1 }))
      assert.matches(argerr(2, "rand", 'option \'dist\' must be "uniform" or "normal"'),
        err(ane.rand, { 2 }, { dist = "gauss" }))
      assert.matches(argerr(2, "rand", 'options \'mean\' and \'std\' apply to dist = "normal"'),
        err(ane.rand, { 2 }, { mean = 1 }))
      assert.matches(argerr(2, "rand", "option 'seed' must be an integer"), err(ane.rand, { 2 }, { seed = 1.5 }))
      assert.matches(argerr(2, "rand", "give 'seed' or 'rng', not both"),
        err(ane.rand, { 2 }, { seed = 1, rng = ane.rng(1) }))
      assert.matches(argerr(2, "rand", "option 'lo' must be a number, got string"), err(ane.rand, { 2 }, { lo = "0" }))
    end)
  end)

  describe("arithmetic", function()
    it("scale, add and axpy work in place and return self", function()
      for _, dt in ipairs({ "fp16", "fp32" }) do
        local y = ane.from_table({ 1, 2, 3 }, dt)
        local x = ane.from_table({ 10, 20, 30 }, dt)
        assert.equal(y, y:scale(2))
        assert.same({ 2, 4, 6 }, y:to_table())
        assert.equal(y, y:add(x))
        assert.same({ 12, 24, 36 }, y:to_table())
        assert.equal(y, y:axpy(-0.5, x))
        assert.same({ 7, 14, 21 }, y:to_table())
      end
    end)

    it("fp16 results are rounded once from fp32", function()
      local y = ane.full({ 4 }, 1, "fp16")
      y:axpy(3, ane.full({ 4 }, 2 ^ -12, "fp32")) -- 1 + 3*2^-12 -> nearest fp16 is 1 + 2^-10
      assert.equal(1 + 2 ^ -10, y[1])
    end)

    it("rejects non-float tensors and mismatched sizes", function()
      local y = ane.zeros({ 3 })
      assert.matches(argerr(2, "axpy", "fp16 or fp32 ane.Tensor expected, got int8"),
        err(function() return y:axpy(1, ane.zeros({ 3 }, "int8")) end))
      assert.matches(argerr(1, "add", "shape [4] does not match [3] (element counts differ)"),
        err(function() return y:add(ane.zeros({ 4 })) end))
      assert.matches(argerr(1, "scale", "number expected, got string"), err(function() return y:scale("two") end))
      local i = ane.zeros({ 3 }, "int32")
      assert.matches(selferr("scale", "fp16 or fp32 ane.Tensor expected, got int32"), err(function() return i:scale(2) end))
      assert.matches(argerr(1, "add", "ane.Tensor expected, got table"), err(function() return y:add({}) end))
    end)
  end)

  describe("bad construction arguments", function()
    local cases = {
      { "zeros", { 5 }, argerr(1, "zeros", "table expected, got number") },
      { "zeros", { {} }, argerr(1, "zeros", "shape must have 1 to 5 dimensions, got 0") },
      { "zeros", { { 1, 1, 1, 1, 1, 1 } }, argerr(1, "zeros", "shape must have 1 to 5 dimensions, got 6") },
      { "zeros", { { 2, 0 } }, argerr(1, "zeros", "shape[2] must be a positive integer, got 0") },
      { "zeros", { { 2, -3 } }, argerr(1, "zeros", "shape[2] must be a positive integer, got -3") },
      { "zeros", { { 2.5 } }, argerr(1, "zeros", "shape[1] must be a positive integer, got 2.5") },
      { "zeros", { { "2" } }, argerr(1, "zeros", "shape[1] must be a positive integer, got string") },
      { "zeros", { { 2 ^ 40, 2 ^ 40 } }, argerr(1, "zeros", "shape [1099511627776, 1099511627776] of fp16 is too large") },
      { "zeros", { { 2 }, "fp64" }, argerr(2, "zeros", "unknown dtype 'fp64' (fp16, fp32, int32, int8, uint8, bool)") },
      { "zeros", { { 2 }, 16 }, argerr(2, "zeros", "unknown dtype '16' (fp16, fp32, int32, int8, uint8, bool)") },
      { "full", { { 2 } }, argerr(2, "full", "number expected, got nil") },
      { "from_table", { 1 }, argerr(1, "from_table", "table expected, got number") },
      { "from_table", { {} }, argerr(1, "from_table", "empty table") },
      { "from_table", { { {} } }, argerr(1, "from_table", "empty table at [1]") },
      { "from_table", { { { 1, 2 }, { 3 } } }, argerr(1, "from_table", "ragged table: [2] has 1 entries, expected 2") },
      { "from_table", { { { 1 }, 2 } }, argerr(1, "from_table", "ragged table: [2] is a number, expected a table") },
      { "from_table", { { 1, { 2 } } }, argerr(1, "from_table", "element [2]: number expected, got table") },
      { "from_table", { { { 1, "x" } } }, argerr(1, "from_table", "element [1][2]: number expected, got string") },
      { "from_table", { { { { { { { 1 } } } } } } }, argerr(1, "from_table", "nested deeper than 5 levels") },
      { "from_table", { { 1, 2, 3 }, "fp32", { 2, 2 } }, argerr(1, "from_table", "3 values for a shape of 4 elements") },
      { "from_table", { { 1, 2, 3.5 }, "int32", { 3 } }, argerr(1, "from_table", "element [3]: 3.5 is not a valid int32 value") },
      { "rng", { "x" }, argerr(1, "rng", "number expected, got string") },
      { "load_npy", { {} }, argerr(1, "load_npy", "string expected, got table") },
    }
    for _, c in ipairs(cases) do
      it(c[1] .. " " .. c[3]:gsub("%%", ""), function()
        assert.matches(c[3], err(ane[c[1]], table.unpack(c[2], 1, 3)))
      end)
    end
  end)

  describe("wrong argument types, every function", function()
    local t = ane.zeros({ 2, 2 }, "fp32")
    local cases = {
      { function() return ane.full("x", 1) end, argerr(1, "full", "table expected, got string") },
      { function() return ane.rand(7) end, argerr(1, "rand", "table expected, got number") },
      { function() return ane.rand({ 2 }, 7) end, argerr(2, "rand", "table expected, got number") },
      { function() return ane.rand({ 2 }, { rng = 3 }) end, argerr(2, "rand", "option 'rng' must be an ane.Rng") },
      { function() return ane.rand({ 2 }, { dtype = "f" }) end,
        argerr(2, "rand", "option 'dtype' must be one of fp16, fp32, int32, int8, uint8, bool") },
      { function() return ane.fp16_round("a") end, argerr(1, "fp16_round", "number expected, got string") },
      { function() return ane.fp16_bits() end, argerr(1, "fp16_bits", "number expected, got no value") },
      { function() return ane.fp16_from_bits(1.5) end, argerr(1, "fp16_from_bits", "number has no integer representation") },
      { function() return ane.rng(1):uniform("a") end, argerr(1, "uniform", "number expected, got string") },
      { function() return ane.rng(1):normal(0, {}) end, argerr(2, "normal", "number expected, got table") },
      { function() return ane.rng(1).uniform(t) end, argerr(1, "uniform", "ane.Rng expected, got ane.Tensor") },
      { function() return t:copy(5) end, argerr(1, "copy", "ane.Tensor expected, got number") },
      { function() return t:clone("fp64") end, argerr(1, "clone", "unknown dtype 'fp64' (fp16, fp32, int32, int8, uint8, bool)") },
      { function() return t:reshape("2") end, argerr(1, "reshape", "table expected, got string") },
      { function() return t:sub("a") end, argerr(1, "sub", "number expected, got string") },
      { function() return t:sub(1, {}) end, argerr(2, "sub", "number expected, got table") },
      { function() return t:rand({ dtype = "fp16" }) end, argerr(1, "rand", "unknown option 'dtype'") },
      { function() return t:fill({}) end, argerr(1, "fill", "number expected, got table") },
      { function() return t:axpy("a", t) end, argerr(1, "axpy", "number expected, got string") },
      { function() return t:axpy(1) end, argerr(2, "axpy", "ane.Tensor expected, got no value") },
      { function() return t.shape({}) end, argerr(1, "shape", "ane.Tensor expected, got table") },
      { function() return t.dtype(nil) end, argerr(1, "dtype", "ane.Tensor expected, got nil") },
      { function() return t.numel(ane.rng()) end, argerr(1, "numel", "ane.Tensor expected, got ane.Rng") },
      { function() return t.to_table(1) end, argerr(1, "to_table", "ane.Tensor expected, got number") },
      { function() return t.storage_kind("x") end, argerr(1, "storage_kind", "ane.Tensor expected, got string") },
      { function() return t.nbytes() end, argerr(1, "nbytes", "ane.Tensor expected, got no value") },
      { function() return t[1.5] end, "ane.Tensor index must be an integer, got 1.5$" },
      { function() return t:set(1, 1) end, "expected 2 indices for a rank%-2 ane.Tensor, got 1$" },
      { function() local v = ane.zeros({ 2 }); v[1] = "x" end, "bad value for t%[1%] %(number expected, got string%)$" },
    }
    for i, c in ipairs(cases) do
      it("case " .. i .. ": " .. c[2]:gsub("%%", ""), function()
        assert.matches(c[2], err(c[1]))
      end)
    end
  end)

  describe("lifetime", function()
    it("__tostring shows dtype, shape and a few values, and (closed) after close", function()
      local t = ane.from_table({ 1, 2, 3 }, "fp32")
      assert.equal("ane.Tensor fp32 [3] {1, 2, 3}", tostring(t))
      assert.equal("ane.Tensor int32 [10] {0, 0, 0, 0, 0, 0, ...}", tostring(ane.zeros({ 10 }, "int32")))
      assert.equal("ane.Tensor bool [2] {true, false}", tostring(ane.from_table({ true, false }, "bool")))
      t:close()
      assert.equal("ane.Tensor (closed)", tostring(t))
    end)

    it("use after close raises; close twice raises; __gc/__close after close are harmless", function()
      local t = ane.zeros({ 2 })
      t:close()
      assert.matches(selferr("numel", "ane.Tensor is closed"), err(function() return t:numel() end))
      assert.matches(selferr("close", "ane.Tensor is closed"), err(function() return t:close() end))
      assert.matches(argerr(1, "copy", "ane.Tensor is closed"), err(function() return ane.zeros({ 2 }):copy(t) end))
      assert.matches("ane.Tensor is closed", err(function() return #t end))
      assert.matches("ane.Tensor is closed", err(function() return t[1] end))
      getmetatable(t).__gc(t)
      getmetatable(t).__close(t)
    end)

    it("<close> releases the storage at scope exit", function()
      collectgarbage(); collectgarbage()
      local before = ane.memory()
      local keep
      do
        local t <close> = ane.zeros({ 1000 }, "fp32")
        keep = t
        assert.equal(before + 4000, ane.memory())
      end
      assert.equal(before, ane.memory())
      assert.equal("ane.Tensor (closed)", tostring(keep))
    end)

    it("many large temporaries do not pile up (the GC is told about storage bytes)", function()
      collectgarbage(); collectgarbage()
      local before = ane.memory()
      for _ = 1, 200 do
        local _ = ane.zeros({ 1024, 1024 }, "fp32") -- 4 MiB each, dropped at once
      end
      assert.is_true(ane.memory() - before < 200 * 4 * 2 ^ 20 / 2, "storage was not collected along the way")
    end)

    it("methods can be added through ane.Tensor", function()
      ane.Tensor.sum_for_test = function(self)
        local s = 0
        for i = 1, #self do s = s + self[i] end
        return s
      end
      assert.equal(6, ane.from_table({ 1, 2, 3 }):sum_for_test())
      ane.Tensor.sum_for_test = nil
    end)
  end)
end)
