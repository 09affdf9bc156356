-- Weight blob files (ane-private-api.md section 3): byte-exact writer output, multi-tensor files,
-- the research generators' sloppy chunk headers, and @model_path resolution with its errors.
local ane = require "ane"
local H = require "helpers"

local function hdr(count) return string.pack("<I4I4", count, 2) .. string.rep("\0", 56) end
local function meta(code, size, off)
  return string.pack("<I4I4I8I8", 0xDEADBEEF, code, size, off) .. string.rep("\0", 40)
end
local function fp16s(...)
  local t = {}
  for i, v in ipairs { ... } do t[i] = string.pack("<I2", ane.fp16_bits(v)) end
  return table.concat(t)
end
local function pad64(s) return s .. string.rep("\0", (64 - #s % 64) % 64) end

-- A program with one const per {name, type, offset} on one weight file.
local function prog_with(consts, file)
  local lines = { "program(1.3)", "{", "    func main<ios18>() {" }
  local outs = {}
  for _, c in ipairs(consts) do
    lines[#lines + 1] = string.format(
      '        %s %s = const()[name = string("%s"), val = %s(BLOBFILE(path = string("@model_path/weights/%s"), offset = uint64(%d)))];',
      c[2], c[1], c[1], c[2], file or "w.bin", c[3])
    outs[#outs + 1] = c[1]
  end
  lines[#lines + 1] = "    } -> (" .. table.concat(outs, ", ") .. ");"
  lines[#lines + 1] = "}"
  return table.concat(lines, "\n") .. "\n"
end

-- The decoded elements of const `name` of main.
local function data(p, name) return p:constant("main", name) end

describe("mil blobs", function()
  describe("writer", function()
    it("writes the spec layout byte for byte: count, version 2, sentinel, real size and data offset", function()
      local bytes, offs = ane.mil_blob_write { ane.from_table({ 1, -2, 0.5 }, "fp16") }
      assert.same({ 64 }, offs)
      assert.equal(hdr(1) .. meta(1, 6, 128) .. pad64(fp16s(1, -2, 0.5)), bytes)
    end)

    it("puts several tensors at 64-aligned offsets with their own dtype codes", function()
      local bytes, offs = ane.mil_blob_write {
        ane.from_table({ 1, 2 }, "fp16"),
        ane.from_table({ 1.5 }, "fp32"),
        ane.from_table({ 1, 2, 255 }, "uint8"),
        ane.from_table({ -1, 127 }, "int8"),
        { dtype = "fp16", bytes = string.rep("\1", 64) },
      }
      assert.same({ 64, 192, 320, 448, 576 }, offs)
      local want = hdr(5)
        .. meta(1, 4, 128) .. pad64(fp16s(1, 2))
        .. meta(2, 4, 256) .. pad64(string.pack("<f", 1.5))
        .. meta(3, 3, 384) .. pad64("\1\2\255")
        .. meta(4, 2, 512) .. pad64("\255\127")
        .. meta(1, 64, 640) .. string.rep("\1", 64)
      assert.equal(want, bytes)
    end)

    it("rejects what the format cannot hold", function()
      assert.has_error(function() ane.mil_blob_write { ane.from_table({ 1 }, "int32") } end,
        "blob files hold fp16, fp32, int8 or uint8 tensors")
      assert.has_error(function() ane.mil_blob_write { { dtype = "int32", bytes = "abcd" } } end,
        "bad argument #1 to 'mil_blob_write' (item 1: needs dtype fp16/fp32/uint8/int8 and bytes)")
      assert.has_error(function() ane.mil_blob_write { 42 } end,
        "bad argument #1 to 'mil_blob_write' (item 1: ane.Tensor or {dtype=, bytes=} expected)")
    end)
  end)

  describe("reader", function()
    it("reads back each tensor of a multi-tensor file", function()
      local bytes, offs = ane.mil_blob_write { ane.from_table({ 3, 4 }, "fp16"), ane.from_table({ -5 }, "int8") }
      local a = ane.mil_blob_read(bytes, offs[1])
      assert.same({ dtype = "fp16", code = 1, bytes = fp16s(3, 4), sloppy = false }, a)
      local b = ane.mil_blob_read(bytes, offs[2])
      assert.same({ dtype = "int8", code = 4, bytes = "\251", sloppy = false }, b)
    end)

    it("validates header, sentinel and bounds", function()
      local bytes = ane.mil_blob_write { ane.from_table({ 3, 4 }, "fp16") }
      local cases = {
        { bytes:sub(1, 63), 64, "blob: 63 bytes, too small for a blob file header" },
        { string.pack("<I4I4", 1, 3) .. bytes:sub(9), 64, "blob: blob file version 3, expected 2" },
        { bytes, 0, "blob: offset 0 points into the file header" },
        { bytes, 192, "blob: offset 192 is past the end of the file (192 bytes)" },
        { bytes, 100, "blob: no blob metadata at offset 100 (found 0x00000000, expected 0xDEADBEEF)" },
        { hdr(1) .. meta(1, 1000, 128) .. string.rep("\0", 64), 64,
          "blob: tensor at offset 64: 1000 bytes at 128 extend past the end of the file (192 bytes)" },
        { hdr(1) .. meta(1, 4, 70) .. string.rep("\0", 64), 64,
          "blob: tensor at offset 64 has its data at 70, inside its own header" },
      }
      for _, c in ipairs(cases) do
        local r, err = ane.mil_blob_read(c[1], c[2])
        assert.is_nil(r)
        assert.equal(c[3], err)
      end
    end)

    it("tolerates the research generators' sloppy chunk headers (data offset 0, size wrong)", function()
      -- M:int8 layout: count left at 1, chunk i at 64 + i*cs, dtype byte 1 even for int8 data,
      -- only byte +10 of the size field set, data offset 0, data right after the record.
      local function chunk(data, sizebyte)
        local m = string.pack("<I4I4", 0xDEADBEEF, 1) .. "\0\0" .. string.char(sizebyte) .. string.rep("\0", 53)
        return m .. data
      end
      local w0 = string.rep("\3", 64)   -- int8 [64] of 3
      local w1 = fp16s(table.unpack((function() local t = {} for i = 1, 32 do t[i] = i end return t end)()))
      local file = hdr(1) .. chunk(w0, 8) .. chunk(w1, 16)
      local r = ane.mil_blob_read(file, 64)
      assert.is_true(r.sloppy)
      assert.equal(w0 .. string.sub(file, 193), r.bytes) -- everything to the end: size not trusted
      -- resolved through a program: each tensor takes what its declared type needs
      local dir = H.tmpdir("weights")
      H.write(dir .. "/weights/w.bin", file)
      local p = ane.mil_parse(prog_with { { "q", "tensor<int8, [64]>", 64 }, { "h", "tensor<fp16, [32]>", 64 + 128 } })
      p:resolve(dir)
      local q = data(p, "q")
      assert.equal(64, #q)
      for i = 1, 64 do assert.equal(3, q[i]) end
      local h = data(p, "h")
      assert.equal(32, #h)
      for i = 1, 32 do assert.equal(i, h[i]) end
    end)
  end)

  describe("@model_path resolution", function()
    it("decodes fp16, fp32, int8, uint8 tensors from one multi-tensor file", function()
      local bytes, offs = ane.mil_blob_write {
        ane.from_table({ 1, -0.5 }, "fp16"), ane.from_table({ 0.1 }, "fp32"),
        ane.from_table({ -7, 8 }, "int8"), ane.from_table({ 200 }, "uint8"),
      }
      local dir = H.tmpdir("weights")
      H.write(dir .. "/weights/w.bin", bytes)
      local p = ane.mil_parse(prog_with {
        { "a", "tensor<fp16, [2]>", offs[1] }, { "b", "tensor<fp32, [1]>", offs[2] },
        { "c", "tensor<int8, [2]>", offs[3] }, { "d", "tensor<uint8, [1]>", offs[4] },
      })
      p:resolve(dir)
      assert.is_nil(ane.mil_parse(p:text()):constant("main", "a")) -- unresolved: unknown
      assert.same({ 1, -0.5 }, data(p, "a"))
      assert.same({ (string.unpack("<f", string.pack("<f", 0.1))) }, data(p, "b"))
      assert.same({ -7, 8 }, data(p, "c"))
      assert.same({ 200 }, data(p, "d"))
      assert.truthy(p:weights()["@model_path/weights/w.bin"])
      assert.equal(#bytes, #p:weights()["@model_path/weights/w.bin"])
      -- the printer keeps BLOBFILE references, never the data
      assert.matches("BLOBFILE", p:text())
    end)

    it("unpacks sub-byte payloads (int4, uint2) little-endian bit first", function()
      local dir = H.tmpdir("weights")
      -- int4 [4] = 1, -1, 7, -8 -> nibbles 0x1, 0xF, 0x7, 0x8 -> bytes 0xF1, 0x87
      -- uint2 [4] = 0, 1, 2, 3 -> bits 00 01 10 11 -> byte 0xE4
      local file = hdr(2) .. meta(3, 2, 128) .. pad64("\xF1\x87") .. meta(3, 1, 256) .. pad64("\xE4")
      H.write(dir .. "/weights/w.bin", file)
      local p = ane.mil_parse(prog_with { { "a", "tensor<int4, [4]>", 64 }, { "b", "tensor<uint2, [4]>", 192 } })
      p:resolve(dir)
      assert.same({ 1, -1, 7, -8 }, data(p, "a"))
      assert.same({ 0, 1, 2, 3 }, data(p, "b"))
    end)

    it("names the place and the problem for a missing file, an offset past the end, a short tensor, a wrong dtype", function()
      local dir = H.tmpdir("weights")
      local bytes = ane.mil_blob_write { ane.from_table({ 1, 2, 3, 4 }, "fp16") }
      H.write(dir .. "/weights/w.bin", bytes)
      local function err_of(consts, file)
        local p = ane.mil_parse(prog_with(consts, file), "w.mil")
        local ok, err = pcall(p.resolve, p, dir)
        assert.is_false(ok)
        return err:match("^[^\n]*")
      end
      assert.equal("w.mil:4:65: cannot open weight file " .. dir .. "/weights/nope.bin (@model_path/weights/nope.bin): No such file or directory",
        err_of({ { "a", "tensor<fp16, [4]>", 64 } }, "nope.bin"))
      assert.equal("w.mil:4:65: @model_path/weights/w.bin: offset 4096 is past the end of the file (192 bytes)",
        err_of { { "a", "tensor<fp16, [4]>", 4096 } })
      assert.equal("w.mil:4:65: @model_path/weights/w.bin: tensor at offset 64 holds 8 bytes, fp16[8 elements] needs 16",
        err_of { { "a", "tensor<fp16, [8]>", 64 } })
      assert.equal("w.mil:4:65: @model_path/weights/w.bin: tensor at offset 64 is fp16 (code 1), the literal is fp32",
        err_of { { "a", "tensor<fp32, [2]>", 64 } })
      assert.equal("w.mil:4:65: @model_path/weights/w.bin: no blob metadata at offset 128 (found 0x40003C00, expected 0xDEADBEEF)",
        err_of { { "a", "tensor<fp16, [4]>", 128 } })
    end)

    it("rejects paths outside @model_path", function()
      local p = ane.mil_parse((prog_with { { "a", "tensor<fp16, [4]>", 64 } }):gsub("@model_path/weights/", "/etc/"), "w.mil")
      local ok, err = pcall(p.resolve, p, "/tmp")
      assert.is_false(ok)
      assert.equal("w.mil:4:65: BLOBFILE path '/etc/w.bin' does not start with @model_path/", err:match("^[^\n]*"))
    end)
  end)
end)
