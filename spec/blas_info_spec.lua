-- ane.blas_info and `ane info`'s GEMM kernel line (openblas_get_corename) with its AVX-512 hint.
local H = require "helpers"
local ane = require "ane"

describe("ane.blas_info", function()
  it("names the BLAS and, for OpenBLAS, the kernel set it selected", function()
    local bi = ane.blas_info()
    assert.is_string(bi.name)
    if bi.name == "OpenBLAS" then
      assert.is_string(bi.corename)
      assert.is_true(bi.threads >= 1)
    end
  end)

  it("ane info shows the GEMM kernel and says when AVX-512 goes unused", function()
    if ane.blas_info().name ~= "OpenBLAS" then return end
    local cpuinfo = H.read("/proc/cpuinfo") or ""
    local has512 = cpuinfo:find(" avx512f ", 1, true) ~= nil
    local out, ok, _, err = H.run({ "env", "OPENBLAS_CORETYPE=Haswell", H.ane_bin, "info" })
    assert.is_true(ok, err)
    assert.matches("gemm kernel +OpenBLAS Haswell", out)
    if has512 then
      assert.matches("OPENBLAS_CORETYPE=SkylakeX selects the AVX%-512 ones", out)
      local out2 = H.run({ "env", "OPENBLAS_CORETYPE=SkylakeX", H.ane_bin, "info" })
      assert.matches("gemm kernel +OpenBLAS SkylakeX", out2)
      assert.is_nil(out2:find("selects the AVX-512", 1, true))
    end
  end)
end)
