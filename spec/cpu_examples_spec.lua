-- The example programs of shared/docs/mil-reference.md section 10, run on the CPU backend and
-- compared with plain-Lua references: the research's own kernel shapes end to end (BLOBFILE
-- weights written here in the blob format of ane-private-api.md 3.1).
local ane = require "ane"
local R = require "cpu_ref"

local EX = {}
EX["10.1"] = [==[
program(1.3)
[buildInfo = dict<string, string>({{"coremlc-component-MIL", "3510.2.1"}, {"coremlc-version", "3505.4.1"}})]
{
    func main<ios18>(tensor<fp32, [1, 64, 1, 32]> x) {
        string to_fp16 = const()[name = string("to_fp16"), val = string("fp16")];
        tensor<fp16, [1, 64, 1, 32]> x_h = cast(dtype = to_fp16, x = x)[name = string("cast_in")];
        tensor<fp16, [128, 64, 1, 1]> w = const()[name = string("w"), val = tensor<fp16, [128, 64, 1, 1]>(BLOBFILE(path = string("@model_path/weights/w.bin"), offset = uint64(64)))];
        tensor<fp16, [128]> b = const()[name = string("b"), val = tensor<fp16, [128]>(BLOBFILE(path = string("@model_path/weights/b.bin"), offset = uint64(64)))];
        tensor<int32, [2]> strides = const()[name = string("strides"), val = tensor<int32, [2]>([1, 1])];
        tensor<int32, [2]> dil = const()[name = string("dil"), val = tensor<int32, [2]>([1, 1])];
        tensor<int32, [4]> pad = const()[name = string("pad"), val = tensor<int32, [4]>([0, 0, 0, 0])];
        string pad_mode = const()[name = string("pad_mode"), val = string("valid")];
        int32 groups = const()[name = string("groups"), val = int32(1)];
        tensor<fp16, [1, 128, 1, 32]> y_h = conv(bias = b, dilations = dil, groups = groups, pad = pad, pad_type = pad_mode, strides = strides, weight = w, x = x_h)[name = string("proj")];
        string to_fp32 = const()[name = string("to_fp32"), val = string("fp32")];
        tensor<fp32, [1, 128, 1, 32]> y = cast(dtype = to_fp32, x = y_h)[name = string("cast_out")];
    } -> (y);
}
]==]
EX["10.2"] = [==[
program(1.3)
{
    func main<ios18>(tensor<fp16, [1, 192, 1, 16]> qkv) {
        tensor<int32, [4]> sz = const()[name = string("sz"), val = tensor<int32, [4]>([1, 64, 1, 16])];
        tensor<int32, [4]> bq = const()[name = string("bq"), val = tensor<int32, [4]>([0, 0, 0, 0])];
        tensor<int32, [4]> bk = const()[name = string("bk"), val = tensor<int32, [4]>([0, 64, 0, 0])];
        tensor<int32, [4]> bv = const()[name = string("bv"), val = tensor<int32, [4]>([0, 128, 0, 0])];
        tensor<fp16, [1, 64, 1, 16]> qf = slice_by_size(begin = bq, size = sz, x = qkv)[name = string("qf")];
        tensor<fp16, [1, 64, 1, 16]> kf = slice_by_size(begin = bk, size = sz, x = qkv)[name = string("kf")];
        tensor<fp16, [1, 64, 1, 16]> vf = slice_by_size(begin = bv, size = sz, x = qkv)[name = string("vf")];
        tensor<int32, [4]> heads = const()[name = string("heads"), val = tensor<int32, [4]>([1, 2, 32, 16])];
        tensor<int32, [4]> swap = const()[name = string("swap"), val = tensor<int32, [4]>([0, 1, 3, 2])];
        tensor<fp16, [1, 2, 32, 16]> q4 = reshape(shape = heads, x = qf)[name = string("q4")];
        tensor<fp16, [1, 2, 16, 32]> q = transpose(perm = swap, x = q4)[name = string("q")];
        tensor<fp16, [1, 2, 32, 16]> k4 = reshape(shape = heads, x = kf)[name = string("k4")];
        tensor<fp16, [1, 2, 16, 32]> k = transpose(perm = swap, x = k4)[name = string("k")];
        tensor<fp16, [1, 2, 32, 16]> v4 = reshape(shape = heads, x = vf)[name = string("v4")];
        tensor<fp16, [1, 2, 16, 32]> v = transpose(perm = swap, x = v4)[name = string("v")];
        bool no = const()[name = string("no"), val = bool(false)];
        bool yes = const()[name = string("yes"), val = bool(true)];
        tensor<fp16, [1, 2, 16, 16]> s = matmul(transpose_x = no, transpose_y = yes, x = q, y = k)[name = string("qk")];
        fp16 scale = const()[name = string("scale"), val = fp16(0x1.6ap-3)];
        tensor<fp16, [1, 2, 16, 16]> s_sc = mul(x = s, y = scale)[name = string("s_sc")];
        tensor<fp16, [1, 1, 16, 16]> mask = const()[name = string("mask"), val = tensor<fp16, [1, 1, 16, 16]>(BLOBFILE(path = string("@model_path/weights/mask.bin"), offset = uint64(64)))];
        tensor<fp16, [1, 2, 16, 16]> s_m = add(x = s_sc, y = mask)[name = string("s_m")];
        int32 last = const()[name = string("last"), val = int32(-1)];
        tensor<fp16, [1, 2, 16, 16]> p = softmax(axis = last, x = s_m)[name = string("p")];
        tensor<fp16, [1, 2, 16, 32]> o = matmul(transpose_x = no, transpose_y = no, x = p, y = v)[name = string("pv")];
        tensor<fp16, [1, 2, 32, 16]> o_t = transpose(perm = swap, x = o)[name = string("o_t")];
        tensor<int32, [4]> flat = const()[name = string("flat"), val = tensor<int32, [4]>([1, 64, 1, 16])];
        tensor<fp16, [1, 64, 1, 16]> out = reshape(shape = flat, x = o_t)[name = string("out")];
    } -> (out);
}
]==]
EX["10.3"] = [==[
program(1.3)
{
    func main<ios18>(tensor<fp16, [1, 64, 1, 128]> x) {
        tensor<int32, [4]> a_begin = const()[name = string("a_begin"), val = tensor<int32, [4]>([0, 0, 0, 0])];
        tensor<int32, [4]> a_size = const()[name = string("a_size"), val = tensor<int32, [4]>([1, 64, 1, 32])];
        tensor<fp16, [1, 64, 1, 32]> act = slice_by_size(begin = a_begin, size = a_size, x = x)[name = string("act")];
        tensor<int32, [4]> w_begin = const()[name = string("w_begin"), val = tensor<int32, [4]>([0, 0, 0, 32])];
        tensor<int32, [4]> w_size = const()[name = string("w_size"), val = tensor<int32, [4]>([1, 64, 1, 96])];
        tensor<fp16, [1, 64, 1, 96]> w_raw = slice_by_size(begin = w_begin, size = w_size, x = x)[name = string("w_raw")];
        tensor<int32, [4]> a_shape = const()[name = string("a_shape"), val = tensor<int32, [4]>([1, 1, 64, 32])];
        tensor<fp16, [1, 1, 64, 32]> a2 = reshape(shape = a_shape, x = act)[name = string("a2")];
        tensor<int32, [4]> swap = const()[name = string("swap"), val = tensor<int32, [4]>([0, 1, 3, 2])];
        tensor<fp16, [1, 1, 32, 64]> a_t = transpose(perm = swap, x = a2)[name = string("a_t")];
        tensor<int32, [4]> w_shape = const()[name = string("w_shape"), val = tensor<int32, [4]>([1, 1, 64, 96])];
        tensor<fp16, [1, 1, 64, 96]> w = reshape(shape = w_shape, x = w_raw)[name = string("w")];
        bool no = const()[name = string("no"), val = bool(false)];
        tensor<fp16, [1, 1, 32, 96]> y2 = matmul(transpose_x = no, transpose_y = no, x = a_t, y = w)[name = string("mm")];
        tensor<fp16, [1, 1, 96, 32]> y_t = transpose(perm = swap, x = y2)[name = string("y_t")];
        tensor<int32, [4]> o_shape = const()[name = string("o_shape"), val = tensor<int32, [4]>([1, 96, 1, 32])];
        tensor<fp16, [1, 96, 1, 32]> y = reshape(shape = o_shape, x = y_t)[name = string("y")];
    } -> (y);
}
]==]
EX["10.4"] = [==[
program(1.3)
{
    func main<ios18>(tensor<fp16, [1, 64, 1, 16]> x) {
        tensor<int32, [1]> ch = const()[name = string("ch"), val = tensor<int32, [1]>([1])];
        tensor<fp16, [64]> gamma = const()[name = string("gamma"), val = tensor<fp16, [64]>(BLOBFILE(path = string("@model_path/weights/gamma.bin"), offset = uint64(64)))];
        tensor<fp16, [64]> beta = const()[name = string("beta"), val = tensor<fp16, [64]>(BLOBFILE(path = string("@model_path/weights/beta.bin"), offset = uint64(64)))];
        fp16 eps = const()[name = string("eps"), val = fp16(1e-5)];
        tensor<fp16, [1, 64, 1, 16]> n = layer_norm(axes = ch, beta = beta, epsilon = eps, gamma = gamma, x = x)[name = string("ln")];
        tensor<fp16, [1, 64, 1, 16]> y = gelu(mode = string("TANH_APPROXIMATION"), x = n)[name = string("act")];
    } -> (y);
}
]==]
EX["10.5"] = [==[
program(1.0)
[buildInfo = dict<tensor<string, []>, tensor<string, []>>({{"coremlc-version", "3505.4.1"}})]
{
    func main<ios16>(tensor<fp16, [1, 64, 1, 16]> x) {
        tensor<fp16, [1, 64, 1, 16]> sq = mul(x = x, y = x)[name = tensor<string, []>("sq")];
        tensor<int32, [1]> ch = const()[name = tensor<string, []>("ch"), val = tensor<int32, [1]>([1])];
        tensor<bool, []> keep = const()[name = tensor<string, []>("keep"), val = tensor<bool, []>(true)];
        tensor<fp16, [1, 1, 1, 16]> ss = reduce_sum(axes = ch, keep_dims = keep, x = sq)[name = tensor<string, []>("ss")];
        tensor<fp16, []> inv_n = const()[name = tensor<string, []>("inv_n"), val = tensor<fp16, []>(0.015625)];
        tensor<fp16, [1, 1, 1, 16]> ms = mul(x = ss, y = inv_n)[name = tensor<string, []>("ms")];
        tensor<fp16, []> eps = const()[name = tensor<string, []>("eps"), val = tensor<fp16, []>(0.00001)];
        tensor<fp16, [1, 1, 1, 16]> ms_e = add(x = ms, y = eps)[name = tensor<string, []>("ms_e")];
        tensor<fp16, []> m_half = const()[name = tensor<string, []>("m_half"), val = tensor<fp16, []>(-0.5)];
        tensor<fp16, [1, 1, 1, 16]> r = pow(x = ms_e, y = m_half)[name = tensor<string, []>("r")];
        tensor<fp16, [1, 64, 1, 16]> xr = mul(x = x, y = r)[name = tensor<string, []>("xr")];
        tensor<fp16, [1, 64, 1, 1]> w = const()[name = tensor<string, []>("w"), val = tensor<fp16, [1, 64, 1, 1]>(BLOBFILE(path = tensor<string, []>("@model_path/weights/rms.bin"), offset = tensor<uint64, []>(64)))];
        tensor<fp16, [1, 64, 1, 16]> y = mul(x = xr, y = w)[name = tensor<string, []>("y")];
    } -> (y);
}
]==]

--- Write dir/weights/<name>.bin holding one fp16 tensor (ane-private-api.md 3.1 layout).
local function write_blob(dir, name, shape, vals)
  local t = R.tensor("fp16", shape, vals)
  local data = t:bytes()
  local bytes = string.pack("<I4I4", 1, 2) .. ("\0"):rep(56)
      .. string.pack("<I4I4I8I8", 0xDEADBEEF, 1, #data, 128) .. ("\0"):rep(40) .. data
  local fh = assert(io.open(dir .. "/weights/" .. name .. ".bin", "wb"))
  fh:write(bytes)
  fh:close()
end

local function model_dir()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p '" .. dir .. "/weights'"))
  return dir
end

local function run(src, opts, inputs)
  return R.run(src, inputs, opts)
end

local f16 = R.f16

describe("mil-reference section 10 examples on the cpu backend", function()
  it("10.1 1x1 conv with blob weights and fp32 <-> fp16 casts", function()
    local dir = model_dir()
    local W, b = R.values(128 * 64, -0.2, 0.2, 1), R.values(128, -1, 1, 2)
    write_blob(dir, "w", { 128, 64, 1, 1 }, W)
    write_blob(dir, "b", { 128 }, b)
    local x = R.values(64 * 32, -3, 3, 3, "fp32")
    local y = run(EX["10.1"], { model_path = dir }, { { "fp32", { 1, 64, 1, 32 }, x } })
    local ref = {}
    for co = 0, 127 do for s = 0, 31 do
      local acc = b[co + 1]
      for ci = 0, 63 do acc = acc + W[co * 64 + ci + 1] * f16(x[ci * 32 + s + 1]) end
      ref[#ref + 1] = acc
    end end
    local ok, msg = R.close(y, ref, 2, 1e-3)
    assert(ok, msg)
  end)

  it("10.2 causal multi-head attention with matmul/softmax", function()
    local dir = model_dir()
    local mask = {}
    for t = 0, 15 do for u = 0, 15 do mask[#mask + 1] = u <= t and 0 or -65504 end end
    write_blob(dir, "mask", { 1, 1, 16, 16 }, mask)
    local qkv = R.values(192 * 16, -2, 2, 4)
    local y = run(EX["10.2"], { model_path = dir }, { { "fp16", { 1, 192, 1, 16 }, qkv } })
    local function at(c, s) return qkv[c * 16 + s + 1] end
    local scale = f16(0x1.6ap-3)
    local ref = {}
    for h = 0, 1 do
      local o = {}
      for i = 0, 15 do
        local sc, m = {}, -math.huge
        for j = 0, 15 do
          local acc = 0
          for d = 0, 31 do acc = acc + at(h * 32 + d, i) * at(64 + h * 32 + d, j) end
          sc[j] = acc * scale + (j <= i and 0 or -math.huge)
          m = math.max(m, sc[j])
        end
        local z = 0
        for j = 0, 15 do sc[j] = math.exp(sc[j] - m); z = z + sc[j] end
        o[i] = {}
        for d = 0, 31 do
          local acc = 0
          for j = 0, 15 do acc = acc + sc[j] / z * at(128 + h * 32 + d, j) end
          o[i][d] = acc
        end
      end
      for d = 0, 31 do for i = 0, 15 do ref[(h * 32 + d) * 16 + i + 1] = o[i][d] end end
    end
    local ok, msg = R.close(y, ref, 4, 4e-3)
    assert(ok, msg)
  end)

  it("10.3 dynamic weights sliced out of the input's spatial axis", function()
    local x = R.values(64 * 128, -1, 1, 5)
    local y = run(EX["10.3"], nil, { { "fp16", { 1, 64, 1, 128 }, x } })
    local ref = {}
    for oc = 0, 95 do for s = 0, 31 do
      local acc = 0
      for ci = 0, 63 do acc = acc + x[ci * 128 + s + 1] * x[ci * 128 + 32 + oc + 1] end
      ref[#ref + 1] = acc
    end end
    local ok, msg = R.close(y, ref, 2, 2e-3)
    assert(ok, msg)
  end)

  it("10.4 channel LayerNorm + GELU (tanh form)", function()
    local dir = model_dir()
    local g, be = R.values(64, 0.5, 1.5, 6), R.values(64, -0.5, 0.5, 7)
    write_blob(dir, "gamma", { 64 }, g)
    write_blob(dir, "beta", { 64 }, be)
    local x = R.values(64 * 16, -2, 3, 8)
    local y = run(EX["10.4"], { model_path = dir }, { { "fp16", { 1, 64, 1, 16 }, x } })
    local eps = f16(1e-5)
    local ref = {}
    for s = 0, 15 do
      local m, v = 0, 0
      for c = 0, 63 do m = m + x[c * 16 + s + 1] end
      m = m / 64
      for c = 0, 63 do v = v + (x[c * 16 + s + 1] - m) ^ 2 end
      v = v / 64
      for c = 0, 63 do
        local n = f16((x[c * 16 + s + 1] - m) / math.sqrt(v + eps) * g[c + 1] + be[c + 1])
        local u = math.sqrt(2 / math.pi) * (n + 0.044715 * n ^ 3)
        local th = (math.exp(2 * u) - 1) / (math.exp(2 * u) + 1)
        ref[c * 16 + s + 1] = 0.5 * n * (1 + th)
      end
    end
    local ok, msg = R.close(y, ref, 3, 2e-3)
    assert(ok, msg)
  end)

  it("10.5 RMSNorm from reduce_sum/pow/mul (program(1.0), ios16 dialect)", function()
    local dir = model_dir()
    local w = R.values(64, 0.5, 1.5, 9)
    write_blob(dir, "rms", { 1, 64, 1, 1 }, w)
    local x = R.values(64 * 16, -2, 2, 10)
    local y = run(EX["10.5"], { model_path = dir }, { { "fp16", { 1, 64, 1, 16 }, x } })
    local ref = {}
    for s = 0, 15 do
      local ss = 0
      for c = 0, 63 do ss = ss + f16(x[c * 16 + s + 1] ^ 2) end
      local r = (f16(f16(ss) * 0.015625) + f16(0.00001)) ^ -0.5
      for c = 0, 63 do ref[c * 16 + s + 1] = x[c * 16 + s + 1] * r * w[c + 1] end
    end
    local ok, msg = R.close(y, ref, 3, 1e-3)
    assert(ok, msg)
  end)

  it("the same examples pass strict mode on M4 (they are the research's working kernels)", function()
    ane.set_compile_budget(-1)
    for _, name in ipairs { "10.3" } do
      local k <close> = ane.compile(EX[name], { strict = true, chip = "m4" })
      assert.equal("cpu", k.backend)
    end
    -- 10.1 uses fp32 I/O with casts: refused for M1/M2 (ane-private-api.md 4.4)
    local dir = model_dir()
    write_blob(dir, "w", { 128, 64, 1, 1 }, R.values(128 * 64, -0.2, 0.2, 1))
    write_blob(dir, "b", { 128 }, R.values(128, -1, 1, 2))
    local k <close> = ane.compile(EX["10.1"], { strict = true, chip = "m4", model_path = dir })
    local ok, err = pcall(ane.compile, EX["10.1"], { strict = true, chip = "m1", model_path = dir })
    assert.is_false(ok)
    assert.truthy(err:find("fails to compile on M1/M2", 1, true), err)
  end)
end)
