-- Every MIL op on the CPU backend against an independent reference in plain Lua doubles
-- (spec/cpu_ref.lua). Small shapes, many edge cases; tolerances in fp16 ulps of the reference.
local ane = require "ane"
local R = require "cpu_ref"

local P, ty, ints = R.program, R.ty, R.ints

--- One-op program: inputs named a, b, c ... with dtypes/shapes; `call` is the op text.
local function one(inputs, out_dtype, out_shape, call, opset)
  local params, names = {}, { "a", "b", "c", "d" }
  for i, inp in ipairs(inputs) do params[i] = { names[i], inp[1], inp[2] } end
  return P(params, { ty(out_dtype, out_shape) .. " y = " .. call .. '[name = string("op")];' }, { "y" }, opset)
end

local function check(got, ref, ulps, abs)
  local ok, msg = R.close(got, ref, ulps, abs)
  assert(ok, msg)
end

local function map(t, f)
  local o = {}
  for i, v in ipairs(t) do o[i] = f(v, i) end -- unary refs must ignore i (wrap math.atan etc.)
  return o
end

describe("cpu backend: elementwise binary ops", function()
  local cases = {
    { "add", function(x, y) return x + y end },
    { "sub", function(x, y) return x - y end },
    { "mul", function(x, y) return x * y end },
    { "real_div", function(x, y) return x / y end },
    { "maximum", math.max },
    { "minimum", math.min },
    { "floor_div", function(x, y) return math.floor(x / y) end },
    { "mod", function(x, y) return x - math.floor(x / y) * y end },
  }
  local shapes = {
    { { 2, 3, 4 }, { 2, 3, 4 } },
    { { 2, 3, 4 }, { 3, 1 } },      -- right-aligned broadcast
    { { 1, 4 }, { 3, 1 } },         -- both sides broadcast
    { { 2, 1, 4 }, { 1, 3, 1 } },
  }
  for _, c in ipairs(cases) do
    for si, sh in ipairs(shapes) do
      it(c[1] .. " broadcasts " .. si, function()
        local a = R.values(R.numel(sh[1]), -4, 4, 7 + si)
        local b = R.values(R.numel(sh[2]), 0.5, 3, 11 + si)
        local ref, so = R.broadcast(a, sh[1], b, sh[2], c[2])
        local src = one({ { "fp16", sh[1] }, { "fp16", sh[2] } }, "fp16", so, c[1] .. "(x = a, y = b)")
        check(R.run(src, { { "fp16", sh[1], a }, { "fp16", sh[2], b } }), ref, 1)
      end)
    end
  end

  it("rank-0 operands broadcast against anything", function()
    local a = R.values(6, -4, 4, 3)
    for _, c in ipairs(cases) do
      local src = one({ { "fp16", { 2, 3 } } }, "fp16", { 2, 3 }, c[1] .. "(x = a, y = fp16(1.5))")
      check(R.run(src, { { "fp16", { 2, 3 }, a } }), map(a, function(x) return c[2](x, 1.5) end), 1)
      src = one({ { "fp16", { 2, 3 } } }, "fp16", { 2, 3 }, c[1] .. "(x = fp16(-2.5), y = a)")
      local b = map(a, function(x) return x == 0 and 1 or x end)
      check(R.run(src, { { "fp16", { 2, 3 }, b } }), map(b, function(x) return c[2](-2.5, x) end), 1)
    end
  end)

  it("pow with a const exponent and negative bases", function()
    local a = { 0.25, 1, 2, 9, 0, -2, 3, 16 }
    local src = one({ { "fp16", { 8 } } }, "fp16", { 8 }, "pow(x = a, y = fp16(-0.5))")
    local got = R.run(src, { { "fp16", { 8 }, a } })
    check(got, map(a, function(x) return x == 0 and math.huge or (x < 0 and 0 / 0 or x ^ -0.5) end), 1)
  end)

  it("comparisons return bool", function()
    local a, b = { 1, 2, 3, -1, 0, 5 }, { 1, 3, 2, -1, -0.5, 5 }
    for op, f in pairs { equal = function(x, y) return x == y end, not_equal = function(x, y) return x ~= y end,
      greater = function(x, y) return x > y end, greater_equal = function(x, y) return x >= y end,
      less = function(x, y) return x < y end, less_equal = function(x, y) return x <= y end } do
      local src = one({ { "fp16", { 6 } }, { "fp16", { 6 } } }, "bool", { 6 }, op .. "(x = a, y = b)")
      local got = R.run(src, { { "fp16", { 6 }, a }, { "fp16", { 6 }, b } })
      assert.same(map(a, function(x, i) return f(x, b[i]) and 1 or 0 end), got, op)
    end
  end)

  it("logical ops on bool", function()
    local a, b = { 0, 0, 1, 1 }, { 0, 1, 0, 1 }
    local want = { logical_and = { 0, 0, 0, 1 }, logical_or = { 0, 1, 1, 1 }, logical_xor = { 0, 1, 1, 0 } }
    for op, w in pairs(want) do
      local src = one({ { "bool", { 4 } }, { "bool", { 4 } } }, "bool", { 4 }, op .. "(x = a, y = b)")
      assert.same(w, R.run(src, { { "bool", { 4 }, a }, { "bool", { 4 }, b } }), op)
    end
    local src = one({ { "bool", { 4 } } }, "bool", { 4 }, "logical_not(x = a)")
    assert.same({ 1, 1, 0, 0 }, R.run(src, { { "bool", { 4 }, a } }))
  end)

  it("int32 arithmetic stays integral", function()
    local a, b = { 7, -7, 9, 100 }, { 2, 2, -4, 7 }
    local src = one({ { "int32", { 4 } }, { "int32", { 4 } } }, "int32", { 4 }, "floor_div(x = a, y = b)")
    assert.same({ 3, -4, -3, 14 }, R.run(src, { { "int32", { 4 }, a }, { "int32", { 4 }, b } }))
    src = one({ { "int32", { 4 } }, { "int32", { 4 } } }, "int32", { 4 }, "mul(x = a, y = b)")
    assert.same({ 14, -14, -36, 700 }, R.run(src, { { "int32", { 4 }, a }, { "int32", { 4 }, b } }))
  end)

  it("rounds each result to fp16 (no double rounding across ops)", function()
    -- 1 + 2^-11 is a tie in fp16: RNE gives 1; adding 2^-11 twice from 1 stays 1 in fp16 steps
    local src = P({ { "a", "fp16", { 1 } } }, {
      'tensor<fp16, [1]> t = add(x = a, y = fp16(0x1p-11))[name = string("t")];',
      'tensor<fp16, [1]> y = add(x = t, y = fp16(0x1p-11))[name = string("y")];',
    }, { "y" })
    assert.same({ 1 }, R.run(src, { { "fp16", { 1 }, { 1 } } }))
  end)
end)

describe("cpu backend: unary ops and activations", function()
  local erf = function(x) -- Abramowitz-Stegun 7.1.26 is too coarse; use a series/continued form
    local t = 1 / (1 + 0.5 * math.abs(x))
    local y = 1 - t * math.exp(-x * x - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
      t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))))
    return x >= 0 and y or -y
  end
  local sig = function(x) return 1 / (1 + math.exp(-x)) end
  local tanh = function(x) local e = math.exp(2 * x); return (e - 1) / (e + 1) end
  local cases = {
    { "relu", function(x) return math.max(x, 0) end },
    { "relu6", function(x) return math.min(math.max(x, 0), 6) end },
    { "sigmoid", sig },
    { "silu", function(x) return x * sig(x) end },
    { "tanh", tanh },
    { "exp", math.exp },
    { "exp2", function(x) return 2 ^ x end },
    { "sin", math.sin }, { "cos", math.cos }, { "tan", math.tan, -1.2, 1.2 },
    { "asin", math.asin, -1, 1 }, { "acos", math.acos, -1, 1 }, { "atan", function(x) return math.atan(x) end },
    { "atanh", function(x) return 0.5 * math.log((1 + x) / (1 - x)) end, -0.9, 0.9 },
    { "sinh", function(x) return (math.exp(x) - math.exp(-x)) / 2 end },
    { "cosh", function(x) return (math.exp(x) + math.exp(-x)) / 2 end },
    { "erf", erf },
    { "floor", math.floor }, { "ceil", math.ceil },
    { "abs", math.abs }, { "sign", function(x) return x > 0 and 1 or (x < 0 and -1 or 0) end },
    { "square", function(x) return x * x end },
    { "sqrt", math.sqrt, 0, 8 },
    { "softplus", function(x) return math.log(1 + math.exp(x)) end },
    { "softsign", function(x) return x / (1 + math.abs(x)) end },
  }
  for _, c in ipairs(cases) do
    it(c[1], function()
      local lo, hi = c[3] or -4, c[4] or 4
      local a = R.values(24, lo, hi, 3)
      local src = one({ { "fp16", { 2, 3, 4 } } }, "fp16", { 2, 3, 4 }, c[1] .. "(x = a)")
      check(R.run(src, { { "fp16", { 2, 3, 4 }, a } }), map(a, c[2]), 1, 1e-6)
    end)
  end

  it("round ties to even", function()
    local a = { 0.5, 1.5, 2.5, -0.5, -1.5, 0.25, 2.75 }
    local src = one({ { "fp16", { 7 } } }, "fp16", { 7 }, "round(x = a)")
    assert.same({ 0, 2, 2, -0, -2, 0, 3 }, R.run(src, { { "fp16", { 7 }, a } }))
  end)

  it("rsqrt, inverse, log with epsilon", function()
    local a = R.values(8, 0.1, 5, 5)
    local src = one({ { "fp16", { 8 } } }, "fp16", { 8 }, "rsqrt(x = a, epsilon = fp16(0.5))")
    check(R.run(src, { { "fp16", { 8 }, a } }), map(a, function(x) return 1 / math.sqrt(x + 0.5) end), 1)
    src = one({ { "fp16", { 8 } } }, "fp16", { 8 }, "inverse(x = a, epsilon = fp16(0.25))")
    check(R.run(src, { { "fp16", { 8 }, a } }), map(a, function(x) return 1 / (x + 0.25) end), 1)
    src = one({ { "fp16", { 8 } } }, "fp16", { 8 }, "log(x = a, epsilon = fp16(1))")
    check(R.run(src, { { "fp16", { 8 }, a } }), map(a, function(x) return math.log(x + 1) end), 1)
  end)

  it("rsqrt's default epsilon 1e-12 is 0 in fp16 (reference 7.4 #9)", function()
    local src = one({ { "fp16", { 2 } } }, "fp16", { 2 }, "rsqrt(x = a)")
    assert.same({ math.huge, 0.5 }, R.run(src, { { "fp16", { 2 }, { 0, 4 } } }))
  end)

  it("activations with alpha/beta", function()
    local a = R.values(16, -5, 5, 9)
    local cases2 = {
      { "clip(x = a, alpha = fp16(-1), beta = fp16(2.5))", function(x) return math.min(math.max(x, -1), 2.5) end },
      { "threshold(x = a, alpha = fp16(0.5))", function(x) return math.max(x, 0.5) end },
      { "leaky_relu(x = a, alpha = fp16(0.125))", function(x) return x >= 0 and x or 0.125 * x end },
      { "elu(x = a, alpha = fp16(1.5))", function(x) return x > 0 and x or 1.5 * (math.exp(x) - 1) end },
      { "thresholded_relu(x = a, alpha = fp16(1))", function(x) return x >= 1 and x or 0 end },
      { "clamped_relu(x = a, alpha = fp16(0.5), beta = fp16(3))", function(x) return math.min(3, x >= 0 and x or 0.5 * x) end },
      { "linear_activation(x = a, alpha = fp16(2), beta = fp16(-1))", function(x) return 2 * x - 1 end },
      { "scaled_tanh(x = a, alpha = fp16(2), beta = fp16(0.5))", function(x) return 2 * tanh(0.5 * x) end },
      { "sigmoid_hard(x = a, alpha = fp16(0.25), beta = fp16(0.5))", function(x) return math.min(math.max(0.25 * x + 0.5, 0), 1) end },
      { 'gelu(x = a, mode = string("EXACT"))', function(x) return 0.5 * x * (1 + erf(x / math.sqrt(2))) end },
      { 'gelu(x = a, mode = string("TANH_APPROXIMATION"))',
        function(x) return 0.5 * x * (1 + tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ^ 3))) end },
      { 'gelu(x = a, mode = string("SIGMOID_APPROXIMATION"))', function(x) return x * sig(1.702 * x) end },
    }
    for _, c in ipairs(cases2) do
      local src = one({ { "fp16", { 16 } } }, "fp16", { 16 }, c[1])
      local ok, msg = R.close(R.run(src, { { "fp16", { 16 }, a } }), map(a, c[2]), 1, 1e-6)
      assert(ok, c[1] .. ": " .. tostring(msg))
    end
  end)

  it("prelu is per channel", function()
    local a = R.values(2 * 3 * 4, -3, 3, 2)
    local al = { 0.5, -1, 2 }
    local src = one({ { "fp16", { 2, 3, 4 } } }, "fp16", { 2, 3, 4 }, "prelu(x = a, alpha = " .. R.lit("fp16", { 3 }, al) .. ")")
    local ref = map(a, function(x, i) local c = ((i - 1) // 4) % 3; return x > 0 and x or al[c + 1] * x end)
    check(R.run(src, { { "fp16", { 2, 3, 4 }, a } }), ref, 0)
  end)
end)

describe("cpu backend: cast and precision modes", function()
  it("fp32 -> fp16 rounds to nearest even, fp16 -> fp32 is exact", function()
    local v = { 1 + 2 ^ -11, 1 + 3 * 2 ^ -11, 65519, 65520, 1e-8, -3.14159 }
    local src = one({ { "fp32", { 6 } } }, "fp16", { 6 }, 'cast(x = a, dtype = string("fp16"))')
    assert.same(map(v, R.f16), R.run(src, { { "fp32", { 6 }, v } }))
  end)

  it("float -> int truncates toward zero and saturates; -> bool is != 0", function()
    local src = one({ { "fp16", { 5 } } }, "int32", { 5 }, 'cast(x = a, dtype = string("int32"))')
    assert.same({ 2, -2, 0, 7, -1 }, R.run(src, { { "fp16", { 5 }, { 2.75, -2.75, 0.5, 7, -1.5 } } }))
    src = one({ { "fp16", { 4 } } }, "bool", { 4 }, 'cast(x = a, dtype = string("bool"))')
    assert.same({ 1, 0, 1, 1 }, R.run(src, { { "fp16", { 4 }, { 2, 0, -0.5, 1e-3 } } }))
  end)

  -- fp32 I/O with a computation inside: fp16 mode demotes it (7.3 rule 3), fp32 mode keeps it.
  local src = P({ { "x", "fp32", { 3 } } }, {
    'tensor<fp32, [3]> y = add(x = x, y = fp32(0x1p-13))[name = string("y")];',
  }, { "y" })
  local x = { 1, 1 + 2 ^ -12, 1000.3 }

  it("fp16 mode (default) rounds fp32 values inside the program", function()
    local got = R.run(src, { { "fp32", { 3 }, x } })
    assert.same(map(x, function(v) return R.f16(R.f16(v) + 0) end), got)
  end)

  it("fp32 mode computes in the declared dtype", function()
    local got = R.run(src, { { "fp32", { 3 }, x } }, { precision = "fp32" })
    for i = 1, 3 do
      local want = (x[i] + 2 ^ -13)
      assert(math.abs(got[i] - want) <= math.abs(want) * 2 ^ -23, ("%d: %.10g vs %.10g"):format(i, got[i], want))
    end
  end)

  it("ANE_PRECISION-style options are validated", function()
    assert.has_error(function() ane.compile(src, { precision = "fp64" }) end)
  end)
end)

describe("cpu backend: reductions and softmax", function()
  local shape = { 2, 3, 4 }
  local a = R.values(24, -3, 3, 21)
  local function ref_reduce(axes, keep, init, step, fin)
    local red = {}
    for _, ax in ipairs(axes) do red[(ax % 3) + 1] = true end
    local oshape, full = {}, {}
    for i = 1, 3 do
      full[i] = red[i] and 1 or shape[i]
      if not red[i] then oshape[#oshape + 1] = shape[i] elseif keep then oshape[#oshape + 1] = 1 end
    end
    local acc, cnt = {}, {}
    for k = 1, 24 do
      local idx = R.index(shape, k)
      for i = 1, 3 do if red[i] then idx[i] = 0 end end
      local o = R.at(full, idx)
      acc[o] = step(acc[o] == nil and init or acc[o], a[k])
      cnt[o] = (cnt[o] or 0) + 1
    end
    for o = 1, #acc do acc[o] = fin and fin(acc[o], cnt[o]) or acc[o] end
    return acc, oshape
  end
  local ops = {
    { "reduce_sum", 0, function(s, x) return s + x end },
    { "reduce_mean", 0, function(s, x) return s + x end, function(s, n) return s / n end },
    { "reduce_max", -math.huge, math.max },
    { "reduce_min", math.huge, math.min },
    { "reduce_prod", 1, function(s, x) return s * x end },
    { "reduce_sum_square", 0, function(s, x) return s + x * x end },
    { "reduce_l1_norm", 0, function(s, x) return s + math.abs(x) end },
    { "reduce_l2_norm", 0, function(s, x) return s + x * x end, function(s) return math.sqrt(s) end },
    { "reduce_log_sum_exp", 0, function(s, x) return s + math.exp(x) end, function(s) return math.log(s) end },
  }
  for _, axes in ipairs { { 1 }, { -1 }, { 0, 2 }, { 0, 1, 2 } } do
    for _, keep in ipairs { true, false } do
      for _, op in ipairs(ops) do
        it(("%s axes {%s} keep_dims=%s"):format(op[1], table.concat(axes, ","), tostring(keep)), function()
          local ref, oshape = ref_reduce(axes, keep, op[2], op[3], op[4])
          local src = one({ { "fp16", shape } }, "fp16", oshape,
            ("%s(x = a, axes = %s, keep_dims = %s)"):format(op[1], ints(axes), R.bool(keep)))
          check(R.run(src, { { "fp16", shape, a } }), ref, 2, 1e-3)
        end)
      end
    end
  end

  it("reduce_log_sum", function()
    local p = R.values(24, 0.1, 2, 4)
    local src = one({ { "fp16", shape } }, "fp16", { 2, 4 }, "reduce_log_sum(x = a, axes = " .. ints { 1 } .. ", keep_dims = " .. R.bool(false) .. ")")
    local ref = {}
    for i = 0, 1 do for j = 0, 3 do
      local s = 0
      for c = 0, 2 do s = s + p[R.at(shape, { i, c, j })] end
      ref[#ref + 1] = math.log(s)
    end end
    check(R.run(src, { { "fp16", shape, p } }), ref, 2)
  end)

  it("reduce_argmax/argmin return first int32 index", function()
    local v = { 1, 5, 5, 2, 9, 0, 9, -1 }
    local src = one({ { "fp16", { 2, 4 } } }, "int32", { 2 }, "reduce_argmax(x = a, axis = " .. R.int(-1) .. ", keep_dims = " .. R.bool(false) .. ")")
    assert.same({ 1, 0 }, R.run(src, { { "fp16", { 2, 4 }, v } }))
    src = one({ { "fp16", { 2, 4 } } }, "int32", { 4 }, "reduce_argmin(x = a, axis = " .. R.int(0) .. ", keep_dims = " .. R.bool(false) .. ")")
    assert.same({ 0, 1, 0, 1 }, R.run(src, { { "fp16", { 2, 4 }, v } }))
  end)

  for _, axis in ipairs { -1, 1, 0 } do
    it("softmax axis " .. axis, function()
      local src = one({ { "fp16", shape } }, "fp16", shape, "softmax(x = a, axis = " .. R.int(axis) .. ")")
      local ax = (axis % 3) + 1
      local ref = {}
      for k = 1, 24 do
        local idx = R.index(shape, k)
        local m, s = -math.huge, 0
        for j = 0, shape[ax] - 1 do idx[ax] = j; m = math.max(m, a[R.at(shape, idx)]) end
        for j = 0, shape[ax] - 1 do idx[ax] = j; s = s + math.exp(a[R.at(shape, idx)] - m) end
        ref[k] = math.exp(a[k] - m) / s
      end
      check(R.run(src, { { "fp16", shape, a } }), ref, 1, 1e-6)
    end)
  end

  it("softmax with a -65504 mask row entry gives 0 weight (attention masks)", function()
    local src = one({ { "fp16", { 1, 4 } } }, "fp16", { 1, 4 }, "softmax(x = a, axis = " .. R.int(-1) .. ")")
    local got = R.run(src, { { "fp16", { 1, 4 }, { 0, 0, -65504, -65504 } } })
    assert.same({ 0.5, 0.5, 0, 0 }, got)
  end)
end)

describe("cpu backend: linear algebra", function()
  -- reference matmul over logical [.., M, K] x [.., K, N] with numpy batch broadcast
  local function ref_matmul(x, xs, y, ys, tx, ty)
    local function mat(v, s, t) -- returns getter over logical (b..., r, c), shape
      local r = #s
      local rows, cols = s[r - 1], s[r]
      return function(bidx, i, j)
        local idx = {}
        for k = 1, r - 2 do idx[k] = bidx[k] end
        if t then idx[r - 1], idx[r] = j, i else idx[r - 1], idx[r] = i, j end
        return v[R.at(s, idx)]
      end, t and cols or rows, t and rows or cols
    end
    local gx, M, K = mat(x, xs, tx)
    local gy, K2, N = mat(y, ys, ty)
    assert(K == K2)
    local nb = math.max(#xs, #ys) - 2
    local bs = {}
    for i = 1, nb do
      local dx = xs[i - (nb - (#xs - 2))] or 1
      local dy = ys[i - (nb - (#ys - 2))] or 1
      bs[i] = math.max(dx, dy)
    end
    local out, oshape = {}, {}
    for i = 1, nb do oshape[i] = bs[i] end
    oshape[nb + 1], oshape[nb + 2] = M, N
    for b = 1, R.numel(bs) do
      local bidx = nb > 0 and R.index(bs, b) or {}
      local bx, by = {}, {}
      for i = 1, #xs - 2 do local j = i + nb - (#xs - 2); bx[i] = xs[i] == 1 and 0 or bidx[j] end
      for i = 1, #ys - 2 do local j = i + nb - (#ys - 2); by[i] = ys[i] == 1 and 0 or bidx[j] end
      for m = 0, M - 1 do for n = 0, N - 1 do
        local s = 0
        for k = 0, K - 1 do s = s + gx(bx, m, k) * gy(by, k, n) end
        out[#out + 1] = s
      end end
    end
    return out, oshape
  end

  local cases = {
    { { 3, 4 }, { 4, 5 }, false, false },
    { { 2, 3, 4 }, { 2, 5, 4 }, false, true },
    { { 2, 4, 3 }, { 4, 5 }, true, false },        -- y broadcast over the batch
    { { 1, 2, 4, 3 }, { 3, 1, 5, 4 }, true, true }, -- both batch dims broadcast
    { { 1, 3, 4 }, { 2, 4, 5 }, false, false },
  }
  for ci, c in ipairs(cases) do
    it("matmul case " .. ci, function()
      local x = R.values(R.numel(c[1]), -2, 2, ci)
      local y = R.values(R.numel(c[2]), -2, 2, ci + 50)
      local ref, os = ref_matmul(x, c[1], y, c[2], c[3], c[4])
      local src = one({ { "fp16", c[1] }, { "fp16", c[2] } }, "fp16", os,
        ("matmul(x = a, y = b, transpose_x = %s, transpose_y = %s)"):format(R.bool(c[3]), R.bool(c[4])))
      check(R.run(src, { { "fp16", c[1], x }, { "fp16", c[2], y } }), ref, 2, 1e-3)
    end)
  end

  -- Large GEMMs are split over the thread pool (by rows or by columns of the product, whichever
  -- shares the larger operand) and the heads of a batched matmul run one per thread; threads = 1
  -- runs the same GEMMs whole on the calling thread. A part's fp32 sums may differ from the whole
  -- GEMM's in the last bits (BLAS blocks edge tiles differently), which near-cancelling sums turn
  -- into several fp16 ulps: the two agree within the reference tolerance, and sampled elements
  -- match the reference.
  local big = {
    { { 200, 96 }, { 96, 130 }, false, false }, -- split by rows
    { { 96, 200 }, { 130, 96 }, true, true },
    { { 130, 96 }, { 96, 200 }, false, false }, -- split by columns
    { { 96, 130 }, { 200, 96 }, true, true },
    { { 1, 4, 128, 64 }, { 1, 4, 64, 128 }, false, false }, -- a head per thread
    { { 1, 4, 64, 128 }, { 1, 4, 128, 64 }, true, true },
  }
  for ci, c in ipairs(big) do
    it("large matmul " .. ci .. " split over the pool equals the whole GEMM and the reference", function()
      local x = R.values(R.numel(c[1]), -2, 2, 100 + ci)
      local y = R.values(R.numel(c[2]), -2, 2, 200 + ci)
      local r = #c[1]
      local M = c[3] and c[1][r] or c[1][r - 1]
      local N = c[4] and c[2][r - 1] or c[2][r]
      local os = {}
      for i = 1, r - 2 do os[i] = c[1][i] end
      os[r - 1], os[r] = M, N
      local src = one({ { "fp16", c[1] }, { "fp16", c[2] } }, "fp16", os,
        ("matmul(x = a, y = b, transpose_x = %s, transpose_y = %s)"):format(R.bool(c[3]), R.bool(c[4])))
      local ins = { { "fp16", c[1], x }, { "fp16", c[2], y } }
      local split, whole = R.run(src, ins), R.run(src, ins, { threads = 1 })
      check(split, whole, 2, 1e-3)
      -- reference at 97 sampled elements (the full product is millions of Lua multiply-adds)
      local K = c[3] and c[1][r - 1] or c[1][r]
      local xs, ys = R.strides(c[1]), R.strides(c[2])
      local got, ref = {}, {}
      for e = 0, 96 do
        local flat = (e * 7919) % #split + 1
        local idx = R.index(os, flat)
        local bx, by = 0, 0 -- R.index is 0-based; the batch dims of x and y are equal here
        for i = 1, r - 2 do bx, by = bx + idx[i] * xs[i], by + idx[i] * ys[i] end
        local m, n = idx[r - 1], idx[r]
        local acc = 0
        for k = 0, K - 1 do
          local xi = c[3] and (k * xs[r - 1] + m * xs[r]) or (m * xs[r - 1] + k * xs[r])
          local yi = c[4] and (n * ys[r - 1] + k * ys[r]) or (k * ys[r - 1] + n * ys[r])
          acc = acc + x[bx + xi + 1] * y[by + yi + 1]
        end
        got[#got + 1], ref[#ref + 1] = split[flat], acc
      end
      check(got, ref, 2, 1e-3)
    end)
  end

  it("matmul through explicit transposes (folded into the GEMM) and of the result", function()
    -- reference 10.2 shape pattern: [1,H,D,S] -transpose-> [1,H,S,D], QK^T, transpose of PV
    local H, D, S = 2, 4, 3
    local q = R.values(H * D * S, -1, 1, 3)
    local k = R.values(H * D * S, -1, 1, 4)
    local src = P({ { "q", "fp16", { 1, H, D, S } }, { "k", "fp16", { 1, H, D, S } } }, {
      ty("fp16", { 1, H, S, D }) .. " qt = transpose(x = q, perm = " .. ints { 0, 1, 3, 2 } .. ')[name = string("qt")];',
      ty("fp16", { 1, H, S, D }) .. " kt = transpose(x = k, perm = " .. ints { 0, 1, 3, 2 } .. ')[name = string("kt")];',
      ty("fp16", { 1, H, S, S }) .. " s = matmul(x = qt, y = kt, transpose_x = " .. R.bool(false) .. ", transpose_y = " .. R.bool(true) .. ')[name = string("s")];',
      ty("fp16", { 1, H, S, D }) .. " o = matmul(x = s, y = kt, transpose_x = " .. R.bool(false) .. ", transpose_y = " .. R.bool(false) .. ')[name = string("o")];',
      ty("fp16", { 1, H, D, S }) .. " y = transpose(x = o, perm = " .. ints { 0, 1, 3, 2 } .. ')[name = string("y")];',
    }, { "y", "s" })
    local y, s = R.run(src, { { "fp16", { 1, H, D, S }, q }, { "fp16", { 1, H, D, S }, k } })
    -- reference: s[h,i,j] = sum_d q[h,d,i] k[h,d,j]; o[h,i,d] = sum_j s16[h,i,j] k[h,d,j]; y[h,d,i] = o[h,i,d]
    local sref, yref = {}, {}
    local s16 = {}
    for h = 0, H - 1 do for i = 0, S - 1 do for j = 0, S - 1 do
      local acc = 0
      for d = 0, D - 1 do acc = acc + q[R.at({ 1, H, D, S }, { 0, h, d, i })] * k[R.at({ 1, H, D, S }, { 0, h, d, j })] end
      sref[#sref + 1] = acc
      s16[#s16 + 1] = R.f16(acc)
    end end end
    for h = 0, H - 1 do for d = 0, D - 1 do for i = 0, S - 1 do
      local acc = 0
      for j = 0, S - 1 do acc = acc + s16[R.at({ H, S, S }, { h, i, j })] * k[R.at({ 1, H, D, S }, { 0, h, d, j })] end
      yref[#yref + 1] = acc
    end end end
    check(s, sref, 1, 1e-4)
    check(y, yref, 2, 1e-3)
  end)

  it("linear with bias, rank 1 to 3", function()
    local W = R.values(15, -1, 1, 8)
    local bias = { 0.5, -1, 2 }
    for _, xs in ipairs { { 5 }, { 2, 5 }, { 2, 2, 5 } } do
      local x = R.values(R.numel(xs), -2, 2, 9)
      local os = {}
      for i = 1, #xs - 1 do os[i] = xs[i] end
      os[#xs] = 3
      local src = one({ { "fp16", xs } }, "fp16", os, "linear(x = a, weight = " .. R.lit("fp16", { 3, 5 }, W) ..
        ", bias = " .. R.lit("fp16", { 3 }, bias) .. ")")
      local ref = {}
      for r = 0, R.numel(xs) // 5 - 1 do for o = 0, 2 do
        local s = bias[o + 1]
        for i = 0, 4 do s = s + x[r * 5 + i + 1] * W[o * 5 + i + 1] end
        ref[#ref + 1] = s
      end end
      check(R.run(src, { { "fp16", xs, x } }), ref, 2, 1e-3)
    end
  end)

  -- direct conv reference over 1 or 2 spatial dims (x [N, C, H, W])
  local function ref_conv(x, xs, w, ws, b, st, dl, pb, groups, os)
    local N, C = xs[1], xs[2]
    local Co, Cg = ws[1], ws[2]
    local out = {}
    for n = 0, N - 1 do for co = 0, Co - 1 do
      local g = co // (Co // groups)
      for oh = 0, os[3] - 1 do for ow = 0, os[4] - 1 do
        local s = b and b[co + 1] or 0
        for c = 0, Cg - 1 do for kh = 0, ws[3] - 1 do for kw = 0, ws[4] - 1 do
          local ih = oh * st[1] + kh * dl[1] - pb[1]
          local iw = ow * st[2] + kw * dl[2] - pb[2]
          if ih >= 0 and ih < xs[3] and iw >= 0 and iw < xs[4] then
            s = s + w[R.at(ws, { co, c, kh, kw })] * x[R.at(xs, { n, g * Cg + c, ih, iw })]
          end
        end end end
        out[#out + 1] = s
      end end
    end end
    return out
  end
  local conv_cases = {
    -- xs, ws, strides, dilations, pad_type, pad, groups, out spatial, pad before used by the ref
    { { 1, 4, 1, 6 }, { 3, 4, 1, 1 }, { 1, 1 }, { 1, 1 }, "valid", nil, 1, { 1, 6 }, { 0, 0 } },
    { { 2, 4, 5, 5 }, { 2, 4, 3, 3 }, { 1, 1 }, { 1, 1 }, "valid", nil, 1, { 3, 3 }, { 0, 0 } },
    { { 1, 2, 5, 6 }, { 4, 2, 3, 3 }, { 2, 2 }, { 1, 1 }, "same", nil, 1, { 3, 3 }, { 1, 0 } }, -- W: total pad 1, before 0
    { { 1, 2, 5, 6 }, { 2, 2, 2, 2 }, { 1, 1 }, { 1, 1 }, "same", nil, 1, { 5, 6 }, { 0, 0 } },
    { { 1, 2, 5, 6 }, { 2, 2, 2, 2 }, { 1, 1 }, { 1, 1 }, "same_lower", nil, 1, { 5, 6 }, { 1, 1 } },
    { { 1, 4, 4, 7 }, { 6, 2, 3, 3 }, { 1, 2 }, { 1, 1 }, "custom", { 1, 0, 2, 1 }, 2, { 3, 4 }, { 1, 2 } },
    { { 1, 3, 7, 7 }, { 3, 1, 3, 3 }, { 1, 1 }, { 2, 2 }, "custom", { 1, 1, 1, 1 }, 3, { 5, 5 }, { 1, 1 } },
    { { 1, 6, 1, 8 }, { 6, 2, 1, 1 }, { 1, 1 }, { 1, 1 }, "valid", nil, 3, { 1, 8 }, { 0, 0 } },
  }
  for ci, c in ipairs(conv_cases) do
    it("conv case " .. ci .. " (" .. c[5] .. ", groups " .. c[7] .. ")", function()
      local xs, ws = c[1], c[2]
      local x = R.values(R.numel(xs), -2, 2, ci)
      local w = R.values(R.numel(ws), -1, 1, ci + 9)
      local b = ci % 2 == 0 and R.values(ws[1], -1, 1, 3) or nil
      local os = { xs[1], ws[1], c[8][1], c[8][2] }
      local call = ("conv(x = a, weight = %s, strides = %s, dilations = %s, pad_type = %s, groups = %s%s%s)"):format(
        R.lit("fp16", ws, w), ints(c[3]), ints(c[4]), R.str(c[5]), R.int(c[7]),
        c[6] and (", pad = " .. ints(c[6])) or "", b and (", bias = " .. R.lit("fp16", { ws[1] }, b)) or "")
      local src = one({ { "fp16", xs } }, "fp16", os, call)
      local ref = ref_conv(x, xs, w, ws, b, c[3], c[4], c[9], c[7], os)
      check(R.run(src, { { "fp16", xs, x } }), ref, 2, 2e-3)
    end)
  end

  it("conv with runtime weights (dynamic weights)", function()
    local xs, ws = { 1, 4, 1, 5 }, { 3, 4, 1, 1 }
    local x, w = R.values(20, -2, 2, 1), R.values(12, -1, 1, 2)
    local src = one({ { "fp16", xs }, { "fp16", ws } }, "fp16", { 1, 3, 1, 5 }, "conv(x = a, weight = b)")
    local ref = ref_conv(x, xs, w, ws, nil, { 1, 1 }, { 1, 1 }, { 0, 0 }, 1, { 1, 3, 1, 5 })
    check(R.run(src, { { "fp16", xs, x }, { "fp16", ws, w } }), ref, 2, 1e-3)
  end)

  it("conv_transpose scatters with stride, padding and groups", function()
    -- 1-D along W: x [1, Cin, 1, L], weight [Cin, Cout/g, 1, K]
    for _, c in ipairs {
      { Cin = 2, Cout = 3, g = 1, L = 4, K = 3, s = 2, pad = { 0, 0, 0, 0 }, out = 9 },
      { Cin = 4, Cout = 2, g = 2, L = 3, K = 2, s = 1, pad = { 0, 0, 1, 0 }, out = 3 },
    } do
      local xs, ws = { 1, c.Cin, 1, c.L }, { c.Cin, c.Cout // c.g, 1, c.K }
      local x, w = R.values(R.numel(xs), -2, 2, 5), R.values(R.numel(ws), -1, 1, 6)
      local src = one({ { "fp16", xs } }, "fp16", { 1, c.Cout, 1, c.out },
        ("conv_transpose(x = a, weight = %s, strides = %s, pad_type = %s, pad = %s, groups = %s)"):format(
          R.lit("fp16", ws, w), ints { 1, c.s }, R.str("custom"), ints(c.pad), R.int(c.g)))
      local ref = {}
      for i = 1, c.Cout * c.out do ref[i] = 0 end
      local cig, cog = c.Cin // c.g, c.Cout // c.g
      for ci = 0, c.Cin - 1 do for i = 0, c.L - 1 do for k = 0, c.K - 1 do for co = 0, cog - 1 do
        local o = i * c.s + k - c.pad[3]
        if o >= 0 and o < c.out then
          local ch = (ci // cig) * cog + co
          ref[ch * c.out + o + 1] = ref[ch * c.out + o + 1] + x[ci * c.L + i + 1] * w[R.at(ws, { ci, co, 0, k })]
        end
      end end end end
      check(R.run(src, { { "fp16", xs, x } }), ref, 2, 1e-3)
    end
  end)
end)

describe("cpu backend: normalisation", function()
  local function ln_ref(x, shape, axes, g, b, eps)
    local red = {}
    for _, a in ipairs(axes) do red[(a % #shape) + 1] = true end
    local groups = {}
    for k = 1, #x do
      local idx = R.index(shape, k)
      local key = {}
      for i = 1, #shape do key[i] = red[i] and 0 or idx[i] end
      local kk = table.concat(key, ",")
      groups[kk] = groups[kk] or {}
      table.insert(groups[kk], k)
    end
    local out = {}
    for _, ks in pairs(groups) do
      local m, v = 0, 0
      for _, k in ipairs(ks) do m = m + x[k] end
      m = m / #ks
      for _, k in ipairs(ks) do v = v + (x[k] - m) ^ 2 end
      v = v / #ks
      for j, k in ipairs(ks) do
        out[k] = (x[k] - m) / math.sqrt(v + eps) * (g and g[j] or 1) + (b and b[j] or 0)
      end
    end
    return out
  end

  for _, c in ipairs { { { 2, 3, 4 }, { -1 } }, { { 1, 4, 1, 5 }, { 1 } }, { { 2, 3, 4 }, { 0, 2 } }, { { 2, 3, 4 }, { 1, 2 } } } do
    it("layer_norm axes {" .. table.concat(c[2], ",") .. "} on " .. table.concat(c[1], "x"), function()
      local shape, axes = c[1], c[2]
      local x = R.values(R.numel(shape), -3, 5, 12)
      local n = 1
      local gshape = {}
      for _, a in ipairs(axes) do n = n * shape[(a % #shape) + 1]; gshape[#gshape + 1] = shape[(a % #shape) + 1] end
      local g, b = R.values(n, 0.5, 1.5, 1), R.values(n, -1, 1, 2)
      local src = one({ { "fp16", shape } }, "fp16", shape, ("layer_norm(x = a, axes = %s, gamma = %s, beta = %s, epsilon = %s)"):format(
        ints(axes), R.lit("fp16", gshape, g), R.lit("fp16", gshape, b), R.fp16(1e-3)))
      check(R.run(src, { { "fp16", shape, x } }), ln_ref(x, shape, axes, g, b, R.f16(1e-3)), 2, 2e-3)
    end)
  end

  it("batch_norm and instance_norm per channel", function()
    local shape = { 2, 3, 4 }
    local x = R.values(24, -2, 4, 4)
    local mean, var, g, b = { 0.5, -1, 2 }, { 1, 4, 0.25 }, { 1, 2, -1 }, { 0, 0.5, 1 }
    local src = one({ { "fp16", shape } }, "fp16", shape, ("batch_norm(x = a, mean = %s, variance = %s, gamma = %s, beta = %s, epsilon = %s)"):format(
      R.lit("fp16", { 3 }, mean), R.lit("fp16", { 3 }, var), R.lit("fp16", { 3 }, g), R.lit("fp16", { 3 }, b), R.fp16(0.125)))
    local ref = map(x, function(v, i) local c = ((i - 1) // 4) % 3 + 1; return (v - mean[c]) / math.sqrt(var[c] + 0.125) * g[c] + b[c] end)
    check(R.run(src, { { "fp16", shape, x } }), ref, 2, 1e-3)
    src = one({ { "fp16", shape } }, "fp16", shape, ("instance_norm(x = a, gamma = %s, beta = %s, epsilon = %s)"):format(
      R.lit("fp16", { 3 }, g), R.lit("fp16", { 3 }, b), R.fp16(0.125)))
    local iref = ln_ref(x, shape, { 2 }, nil, nil, 0.125)
    iref = map(iref, function(v, i) local c = ((i - 1) // 4) % 3 + 1; return v * g[c] + b[c] end)
    check(R.run(src, { { "fp16", shape, x } }), iref, 2, 1e-3)
  end)

  it("l2_norm over the last three axes", function()
    local shape = { 2, 2, 2, 3 }
    local x = R.values(24, -2, 2, 6)
    local src = one({ { "fp16", shape } }, "fp16", shape, "l2_norm(x = a, epsilon = " .. R.fp16(0.01) .. ")")
    local ref = {}
    for b = 0, 1 do
      local s = 0
      for i = 1, 12 do s = s + x[b * 12 + i] ^ 2 end
      for i = 1, 12 do ref[b * 12 + i] = x[b * 12 + i] / math.sqrt(s + R.f16(0.01)) end
    end
    check(R.run(src, { { "fp16", shape, x } }), ref, 2, 1e-3)
  end)

  it("local_response_norm over a channel window", function()
    local shape = { 1, 5, 1, 2 }
    local x = R.values(10, -2, 2, 7)
    local src = one({ { "fp16", shape } }, "fp16", shape, ("local_response_norm(x = a, size = %s, alpha = %s, beta = %s, k = %s)"):format(
      R.int(3), R.fp16(0.5), R.fp16(0.75), R.fp16(1)))
    local ref = {}
    for c = 0, 4 do for i = 0, 1 do
      local s = 0
      for cc = math.max(0, c - 1), math.min(4, c + 1) do s = s + x[cc * 2 + i + 1] ^ 2 end
      ref[c * 2 + i + 1] = x[c * 2 + i + 1] / (1 + 0.5 / 3 * s) ^ 0.75
    end end
    check(R.run(src, { { "fp16", shape, x } }), ref, 2, 1e-3)
  end)
end)

describe("cpu backend: shape and data movement", function()
  local shape = { 2, 3, 4 }
  local a = {}
  for i = 1, 24 do a[i] = i end -- distinct values: positions are checkable exactly

  local function gather_ref(src_shape, out_shape, f) -- f(out_idx) -> src idx
    local out = {}
    for k = 1, R.numel(out_shape) do out[k] = a[R.at(src_shape, f(R.index(out_shape, k)))] end
    return out
  end

  it("reshape, expand_dims, squeeze, identity keep row-major order", function()
    for _, c in ipairs {
      { "reshape(x = a, shape = " .. ints { 4, 6 } .. ")", { 4, 6 } },
      { "reshape(x = a, shape = " .. ints { 6, -1 } .. ")", { 6, 4 } },
      { "expand_dims(x = a, axes = " .. ints { 0, -1 } .. ")", { 1, 2, 3, 4, 1 } },
      { "identity(x = a)", shape },
    } do
      assert.same(a, R.run(one({ { "fp16", shape } }, "fp16", c[2], c[1]), { { "fp16", shape, a } }), c[1])
    end
    local src = one({ { "fp16", { 2, 1, 3, 1 } } }, "fp16", { 2, 3 }, "squeeze(x = a, axes = " .. ints { 1, -1 } .. ")")
    assert.same({ 1, 2, 3, 4, 5, 6 }, R.run(src, { { "fp16", { 2, 1, 3, 1 }, { 1, 2, 3, 4, 5, 6 } } }))
  end)

  for _, perm in ipairs { { 2, 0, 1 }, { 0, 2, 1 }, { 1, 0, 2 }, { -1, 0, 1 } } do
    it("transpose perm {" .. table.concat(perm, ",") .. "}", function()
      local p = map(perm, function(v) return v % 3 end)
      local os = map(p, function(v) return shape[v + 1] end)
      local ref = gather_ref(shape, os, function(oi) local si = {}; for i = 1, 3 do si[p[i] + 1] = oi[i] end; return si end)
      assert.same(ref, R.run(one({ { "fp16", shape } }, "fp16", os, "transpose(x = a, perm = " .. ints(perm) .. ")"), { { "fp16", shape, a } }))
    end)
  end

  it("transpose moving only size-1 axes is a view with the same order", function()
    local src = one({ { "fp16", { 1, 4, 1, 3 } } }, "fp16", { 1, 1, 4, 3 }, "transpose(x = a, perm = " .. ints { 0, 2, 1, 3 } .. ")")
    local v = R.values(12, -1, 1, 2)
    assert.same(v, R.run(src, { { "fp16", { 1, 4, 1, 3 }, v } }))
  end)

  it("slice_by_size: contiguous block (view) and strided (copy), negative begin, size -1", function()
    local cases = {
      { { 1, 0, 0 }, { 1, 2, 4 } },       -- contiguous: one batch, rows 0-1
      { { 0, 1, 1 }, { 2, 2, 2 } },       -- strided
      { { -1, -2, 0 }, { -1, -1, 3 } },   -- negatives
    }
    for _, c in ipairs(cases) do
      local b, s = {}, {}
      for i = 1, 3 do
        b[i] = c[1][i] < 0 and c[1][i] + shape[i] or c[1][i]
        s[i] = c[2][i] == -1 and shape[i] - b[i] or c[2][i]
      end
      local ref = gather_ref(shape, s, function(oi) return { oi[1] + b[1], oi[2] + b[2], oi[3] + b[3] } end)
      local src = one({ { "fp16", shape } }, "fp16", s, ("slice_by_size(x = a, begin = %s, size = %s)"):format(ints(c[1]), ints(c[2])))
      assert.same(ref, R.run(src, { { "fp16", shape, a } }))
    end
  end)

  it("slice_by_index: strides, negative stride, masks, squeeze", function()
    local src = one({ { "fp16", shape } }, "fp16", { 2, 2, 2 },
      ("slice_by_index(x = a, begin = %s, end = %s, stride = %s)"):format(ints { 0, 0, 3 }, ints { 2, 3, 0 }, ints { 1, 2, -2 }))
    local ref = gather_ref(shape, { 2, 2, 2 }, function(oi) return { oi[1], oi[2] * 2, 3 - oi[3] * 2 } end)
    assert.same(ref, R.run(src, { { "fp16", shape, a } }))
    src = one({ { "fp16", shape } }, "fp16", { 3, 2 },
      ("slice_by_index(x = a, begin = %s, end = %s, stride = %s, begin_mask = %s, end_mask = %s, squeeze_mask = %s)"):format(
        ints { 1, 9, -3 }, ints { 0, 0, -1 }, ints { 1, 1, 1 },
        R.lit("bool", { 3 }, { 0, 1, 0 }), R.lit("bool", { 3 }, { 0, 1, 0 }), R.lit("bool", { 3 }, { 1, 0, 0 })))
    ref = gather_ref(shape, { 3, 2 }, function(oi) return { 1, oi[1], 1 + oi[2] } end)
    assert.same(ref, R.run(src, { { "fp16", shape, a } }))
  end)

  it("concat along each axis, and interleaved", function()
    local b = map(a, function(v) return -v end)
    for axis = 0, 2 do
      local os = { 2, 3, 4 }
      os[axis + 1] = os[axis + 1] * 2
      for _, inter in ipairs { false, true } do
        local src = one({ { "fp16", shape }, { "fp16", shape } }, "fp16", os,
          ("concat(values = (a, b), axis = %s, interleave = %s)"):format(R.int(axis), R.bool(inter)))
        local ref = {}
        for k = 1, R.numel(os) do
          local oi = R.index(os, k)
          local j = oi[axis + 1]
          local which, src_j
          if inter then which, src_j = j % 2, j // 2 else which, src_j = j // shape[axis + 1], j % shape[axis + 1] end
          oi[axis + 1] = src_j
          local v = a[R.at(shape, oi)]
          ref[k] = which == 0 and v or -v
        end
        assert.same(ref, R.run(src, { { "fp16", shape, a }, { "fp16", shape, b } }), "axis " .. axis .. " interleave " .. tostring(inter))
      end
    end
  end)

  it("split by num_splits and split_sizes (multi-result)", function()
    local src = P({ { "a", "fp16", shape } }, {
      ty("fp16", { 2, 1, 4 }) .. " p, " .. ty("fp16", { 2, 2, 4 }) .. " q = split(x = a, axis = " .. R.int(1) ..
        ", split_sizes = " .. ints { 1, 2 } .. ')[name = string("s")];',
      ty("fp16", { 1, 3, 4 }) .. " u, " .. ty("fp16", { 1, 3, 4 }) .. " v = split(x = a, axis = " .. R.int(0) ..
        ", num_splits = " .. R.int(2) .. ')[name = string("t")];',
    }, { "p", "q", "u", "v" })
    local p, q, u, v = R.run(src, { { "fp16", shape, a } })
    assert.same(gather_ref(shape, { 2, 1, 4 }, function(oi) return oi end), p)
    assert.same(gather_ref(shape, { 2, 2, 4 }, function(oi) return { oi[1], oi[2] + 1, oi[3] } end), q)
    assert.same({ table.unpack(a, 1, 12) }, u)
    assert.same({ table.unpack(a, 13, 24) }, v)
  end)

  it("tile, fill, band_part", function()
    local src = one({ { "fp16", { 2, 3 } } }, "fp16", { 4, 6 }, "tile(x = a, reps = " .. ints { 2, 2 } .. ")")
    local x = { 1, 2, 3, 4, 5, 6 }
    local ref = {}
    for i = 0, 3 do for j = 0, 5 do ref[#ref + 1] = x[(i % 2) * 3 + (j % 3) + 1] end end
    assert.same(ref, R.run(src, { { "fp16", { 2, 3 }, x } }))
    src = P({ { "a", "fp16", { 1 } } }, {
      ty("fp16", { 2, 3 }) .. " f = fill(shape = " .. ints { 2, 3 } .. ", value = " .. R.fp16(2.5) .. ')[name = string("f")];',
      ty("fp16", { 2, 3 }) .. " y = add(x = f, y = a)[name = string(\"y\")];",
    }, { "y" })
    assert.same({ 3.5, 3.5, 3.5, 3.5, 3.5, 3.5 }, R.run(src, { { "fp16", { 1 }, { 1 } } }))
    for _, lu in ipairs { { -1, 0 }, { 0, -1 }, { 1, 1 }, { 0, 0 } } do
      src = one({ { "fp16", { 2, 4, 4 } } }, "fp16", { 2, 4, 4 }, ("band_part(x = a, lower = %s, upper = %s)"):format(R.int(lu[1]), R.int(lu[2])))
      local v = {}
      for i = 1, 32 do v[i] = i end
      local want = {}
      for k = 1, 32 do
        local idx = R.index({ 2, 4, 4 }, k)
        local m, n = idx[2], idx[3]
        local keep = (lu[1] < 0 or m - n <= lu[1]) and (lu[2] < 0 or n - m <= lu[2])
        want[k] = keep and v[k] or 0
      end
      assert.same(want, R.run(src, { { "fp16", { 2, 4, 4 }, v } }))
    end
  end)

  it("select broadcasts cond, a and b", function()
    local src = one({ { "bool", { 2, 1 } }, { "fp16", { 2, 3 } }, { "fp16", { 3 } } }, "fp16", { 2, 3 }, "select(cond = a, a = b, b = c)")
    assert.same({ 1, 2, 3, -1, -2, -3 }, R.run(src, { { "bool", { 2, 1 }, { 1, 0 } }, { "fp16", { 2, 3 }, { 1, 2, 3, 4, 5, 6 } }, { "fp16", { 3 }, { -1, -2, -3 } } }))
  end)

  it("slice_update writes into a box", function()
    local src = one({ { "fp16", { 3, 4 } }, { "fp16", { 2, 2 } } }, "fp16", { 3, 4 },
      ("slice_update(x = a, update = b, begin = %s, end = %s, stride = %s)"):format(ints { 1, 0 }, ints { 3, 4 }, ints { 1, 2 }))
    local x = {}
    for i = 1, 12 do x[i] = i end
    assert.same({ 1, 2, 3, 4, -1, 6, -2, 8, -3, 10, -4, 12 },
      R.run(src, { { "fp16", { 3, 4 }, x }, { "fp16", { 2, 2 }, { -1, -2, -3, -4 } } }))
  end)
end)

describe("cpu backend: gather and scatter", function()
  it("gather along an axis with negative indices", function()
    local x = {}
    for i = 1, 24 do x[i] = i end
    local src = one({ { "fp16", { 2, 3, 4 } }, { "int32", { 2 } } }, "fp16", { 2, 2, 4 }, "gather(x = a, indices = b, axis = " .. R.int(1) .. ")")
    local got = R.run(src, { { "fp16", { 2, 3, 4 }, x }, { "int32", { 2 }, { 2, -3 } } })
    assert.same({ 9, 10, 11, 12, 1, 2, 3, 4, 21, 22, 23, 24, 13, 14, 15, 16 }, got)
  end)

  it("gather with batch_dims", function()
    local x = { 1, 2, 3, 4, 5, 6 } -- [2, 3]
    local src = one({ { "fp16", { 2, 3 } }, { "int32", { 2, 2 } } }, "fp16", { 2, 2 },
      "gather(x = a, indices = b, axis = " .. R.int(1) .. ", batch_dims = " .. R.int(1) .. ")", "ios17")
    assert.same({ 3, 1, 5, 6 }, R.run(src, { { "fp16", { 2, 3 }, x }, { "int32", { 2, 2 }, { 2, 0, 1, 2 } } }))
  end)

  it("gather_along_axis and scatter_along_axis are inverse-shaped", function()
    local x = { 10, 11, 12, 20, 21, 22 } -- [2, 3]
    local src = one({ { "fp16", { 2, 3 } }, { "int32", { 2, 2 } } }, "fp16", { 2, 2 }, "gather_along_axis(x = a, indices = b, axis = " .. R.int(1) .. ")")
    assert.same({ 12, 10, 21, 21 }, R.run(src, { { "fp16", { 2, 3 }, x }, { "int32", { 2, 2 }, { 2, 0, 1, 1 } } }))
    src = one({ { "fp16", { 2, 3 } }, { "int32", { 2, 2 } }, { "fp16", { 2, 2 } } }, "fp16", { 2, 3 },
      'scatter_along_axis(data = a, indices = b, updates = c, axis = ' .. R.int(1) .. ', mode = string("add"))')
    assert.same({ 11, 11, 17, 20, 28, 22 }, R.run(src, { { "fp16", { 2, 3 }, x }, { "int32", { 2, 2 }, { 2, 0, 1, 1 } }, { "fp16", { 2, 2 }, { 5, 1, 3, 4 } } }))
  end)

  for mode, want in pairs { update = { 1, 7, 3, 8 }, add = { 1, 9, 3, 12 }, sub = { 1, -5, 3, -4 }, mul = { 1, 14, 3, 32 },
                            max = { 1, 7, 3, 8 }, min = { 1, 2, 3, 4 }, div = { 1, 2 / 7, 3, 0.5 } } do
    it("scatter mode " .. mode, function()
      local src = one({ { "fp16", { 4 } }, { "int32", { 2 } }, { "fp16", { 2 } } }, "fp16", { 4 },
        'scatter(data = a, indices = b, updates = c, axis = ' .. R.int(0) .. ', mode = string("' .. mode .. '"))')
      check(R.run(src, { { "fp16", { 4 }, { 1, 2, 3, 4 } }, { "int32", { 2 }, { 1, -1 } }, { "fp16", { 2 }, { 7, 8 } } }), want, 0)
    end)
  end
end)

describe("cpu backend: attention and quantisation", function()
  local function sdpa_ref(q, k, v, B, L, S, E, Ev, mask)
    local out = {}
    for b = 0, B - 1 do for l = 0, L - 1 do
      local sc, m = {}, -math.huge
      for s = 0, S - 1 do
        local acc = 0
        for e = 0, E - 1 do acc = acc + q[(b * L + l) * E + e + 1] * k[(b * S + s) * E + e + 1] end
        acc = acc / math.sqrt(E) + (mask and mask(l, s) or 0)
        sc[s] = acc
        m = math.max(m, acc)
      end
      local z = 0
      for s = 0, S - 1 do sc[s] = math.exp(sc[s] - m); z = z + sc[s] end
      for e = 0, Ev - 1 do
        local acc = 0
        for s = 0, S - 1 do acc = acc + sc[s] / z * v[(b * S + s) * Ev + e + 1] end
        out[#out + 1] = acc
      end
    end end
    return out
  end

  it("scaled_dot_product_attention without and with masks", function()
    local B, L, S, E, Ev = 2, 3, 4, 8, 5
    local q, k, v = R.values(B * L * E, -1, 1, 1), R.values(B * S * E, -1, 1, 2), R.values(B * S * Ev, -1, 1, 3)
    local ins = { { "fp16", { 1, B, L, E } }, { "fp16", { 1, B, S, E } }, { "fp16", { 1, B, S, Ev } } }
    local vals = { { "fp16", { 1, B, L, E }, q }, { "fp16", { 1, B, S, E }, k }, { "fp16", { 1, B, S, Ev }, v } }
    local src = one(ins, "fp16", { 1, B, L, Ev }, "scaled_dot_product_attention(query = a, key = b, value = c)")
    check(R.run(src, vals), sdpa_ref(q, k, v, B, L, S, E, Ev), 2, 1e-3)
    -- bool mask [L, S]: causal-like (attend where s <= l + 1)
    local mb = {}
    for l = 0, L - 1 do for s = 0, S - 1 do mb[#mb + 1] = s <= l + 1 and 1 or 0 end end
    src = one(ins, "fp16", { 1, B, L, Ev }, "scaled_dot_product_attention(query = a, key = b, value = c, attn_mask = " .. R.lit("bool", { L, S }, mb) .. ")")
    check(R.run(src, vals), sdpa_ref(q, k, v, B, L, S, E, Ev, function(l, s) return s <= l + 1 and 0 or -math.huge end), 2, 1e-3)
    -- float additive mask broadcast over batch
    local mf = R.values(L * S, -2, 2, 9)
    src = one(ins, "fp16", { 1, B, L, Ev }, "scaled_dot_product_attention(query = a, key = b, value = c, attn_mask = " .. R.lit("fp16", { 1, 1, L, S }, mf) .. ")")
    check(R.run(src, vals), sdpa_ref(q, k, v, B, L, S, E, Ev, function(l, s) return mf[l * S + s + 1] end), 2, 1e-3)
  end)

  it("quantize and dequantize, scalar and per-axis", function()
    local x = { -1, -0.3, 0, 0.26, 0.5, 20, -20, 0.125 }
    local src = one({ { "fp16", { 8 } } }, "int8", { 8 }, 'quantize(input = a, scale = ' .. R.fp16(0.125) .. ', output_dtype = string("int8"))')
    assert.same({ -8, -2, 0, 2, 4, 127, -128, 1 }, R.run(src, { { "fp16", { 8 }, x } }))
    src = one({ { "fp16", { 2, 4 } } }, "uint8", { 2, 4 }, 'quantize(input = a, scale = ' .. R.lit("fp16", { 2 }, { 0.5, 0.25 }) ..
      ', zero_point = ' .. R.lit("uint8", { 2 }, { 10, 128 }) .. ', axis = ' .. R.int(0) .. ', output_dtype = string("uint8"))')
    assert.same({ 8, 9, 10, 11, 130, 208, 48, 128 }, R.run(src, { { "fp16", { 2, 4 }, x } }))
    src = one({ { "int8", { 2, 3 } } }, "fp16", { 2, 3 }, 'dequantize(input = a, scale = ' .. R.lit("fp16", { 3 }, { 0.5, 1, 2 }) ..
      ', zero_point = ' .. R.lit("int8", { 3 }, { 1, 0, -1 }) .. ', axis = ' .. R.int(1) .. ')')
    assert.same({ -1, 5, 8, 0, -3, -2 }, R.run(src, { { "int8", { 2, 3 }, { -1, 5, 3, 1, -3, -2 } } }))
  end)

  it("constexpr ops fold into constants", function()
    local src = P({ { "a", "fp16", { 2, 3 } } }, {
      ty("fp16", { 2, 3 }) .. " w = constexpr_affine_dequantize()[quantized_data = " .. R.lit("int8", { 2, 3 }, { 1, 2, 3, -1, -2, -3 }) ..
        ", zero_point = " .. R.lit("int8", {}, 1) .. ", scale = " .. R.fp16(0.5) .. ", axis = " .. R.int(0) .. ', name = string("w")];',
      ty("fp16", { 2, 3 }) .. " v = constexpr_blockwise_shift_scale()[data = " .. R.lit("int8", { 2, 3 }, { 1, 2, 3, 4, 5, 6 }) ..
        ", scale = " .. R.lit("fp16", { 1, 3 }, { 1, 2, 4 }) .. ", offset = " .. R.lit("int8", { 1, 3 }, { 1, 1, 1 }) .. ', name = string("v")];',
      ty("fp16", { 2, 3 }) .. ' y = add(x = a, y = w)[name = string("y")];',
      ty("fp16", { 2, 3 }) .. ' z = add(x = a, y = v)[name = string("z")];',
    }, { "y", "z" })
    local y, z = R.run(src, { { "fp16", { 2, 3 }, { 0, 0, 0, 0, 0, 0 } } })
    assert.same({ 0, 0.5, 1, -1, -1.5, -2 }, y)
    assert.same({ 0, 2, 8, 3, 8, 20 }, z)
  end)
end)

describe("cpu backend: more edges", function()
  it("transcendentals at the edges: overflow to inf, underflow to 0, NaN propagates", function()
    local nan = 0 / 0
    local a = { 12, -20, 0, 100, -100, nan }
    local function run(op)
      return R.run(one({ { "fp16", { 6 } } }, "fp16", { 6 }, op .. "(x = a)"), { { "fp16", { 6 }, a } })
    end
    local e = run("exp")
    assert.equal(math.huge, e[1])           -- e^12 = 162755 > 65504
    assert.equal(R.f16(math.exp(-20)), e[2]) -- fp16 subnormal
    assert.equal(1, e[3])
    assert.is_true(e[6] ~= e[6])
    local s = run("sigmoid")
    assert.same({ R.f16(1 / (1 + math.exp(-12))), R.f16(1 / (1 + math.exp(20))), 0.5, 1, 0 }, { table.unpack(s, 1, 5) })
    assert.is_true(s[6] ~= s[6])
    local t = run("tanh")
    assert.same({ 1, -1, 0, 1, -1 }, { table.unpack(t, 1, 5) })
    assert.is_true(t[6] ~= t[6])
  end)

  it("tanh is accurate across the small/large switch", function()
    local a = {}
    for i = 1, 64 do a[i] = R.f16(-1.2 + i * 0.0375) end
    local got = R.run(one({ { "fp16", { 64 } } }, "fp16", { 64 }, "tanh(x = a)"), { { "fp16", { 64 }, a } })
    local ok, msg = R.close(got, map(a, function(x) local e2 = math.exp(2 * x); return (e2 - 1) / (e2 + 1) end), 1, 1e-7)
    assert(ok, msg)
  end)

  it("constexpr_cast widens fp16 to fp32 exactly", function()
    local src = P({ { "a", "fp32", { 3 } } }, {
      ty("fp32", { 3 }) .. " w = constexpr_cast()[source_val = " .. R.lit("fp16", { 3 }, { 0.1, -2.5, 65504 }) ..
        ', output_dtype = string("fp32"), name = string("w")];',
      ty("fp32", { 3 }) .. ' y = add(x = a, y = w)[name = string("y")];',
    }, { "y" })
    assert.same({ R.f16(0.1), -2.5, 65504 }, R.run(src, { { "fp32", { 3 }, { 0, 0, 0 } } }, { precision = "fp32" }))
  end)

  it("conv over 1 and 3 spatial dims", function()
    -- 1-D: x [1, 2, 7], w [3, 2, 3], stride 2, valid -> [1, 3, 3]
    local x, w = R.values(14, -2, 2, 1), R.values(18, -1, 1, 2)
    local src = one({ { "fp16", { 1, 2, 7 } } }, "fp16", { 1, 3, 3 },
      ("conv(x = a, weight = %s, strides = %s, pad_type = %s)"):format(R.lit("fp16", { 3, 2, 3 }, w), ints { 2 }, R.str("valid")))
    local ref = {}
    for co = 0, 2 do for o = 0, 2 do
      local s = 0
      for c = 0, 1 do for kk = 0, 2 do s = s + w[(co * 2 + c) * 3 + kk + 1] * x[c * 7 + o * 2 + kk + 1] end end
      ref[#ref + 1] = s
    end end
    check(R.run(src, { { "fp16", { 1, 2, 7 }, x } }), ref, 2, 1e-3)
    -- 3-D: x [1, 1, 3, 3, 3], w [2, 1, 2, 2, 2], valid -> [1, 2, 2, 2, 2]
    local x3, w3 = R.values(27, -2, 2, 3), R.values(16, -1, 1, 4)
    src = one({ { "fp16", { 1, 1, 3, 3, 3 } } }, "fp16", { 1, 2, 2, 2, 2 },
      ("conv(x = a, weight = %s, pad_type = %s)"):format(R.lit("fp16", { 2, 1, 2, 2, 2 }, w3), R.str("valid")))
    ref = {}
    for co = 0, 1 do for d = 0, 1 do for h = 0, 1 do for ww = 0, 1 do
      local s = 0
      for a = 0, 1 do for b = 0, 1 do for c = 0, 1 do
        s = s + w3[co * 8 + a * 4 + b * 2 + c + 1] * x3[(d + a) * 9 + (h + b) * 3 + (ww + c) + 1]
      end end end
      ref[#ref + 1] = s
    end end end end
    check(R.run(src, { { "fp16", { 1, 1, 3, 3, 3 }, x3 } }), ref, 2, 1e-3)
  end)

  it("matmul with rank-1 operands", function()
    local x, y = { 1, 2, 3 }, { 1, 0, -1, 2, 1, 0 } -- [3] x [3, 2]
    local src = one({ { "fp16", { 3 } }, { "fp16", { 3, 2 } } }, "fp16", { 2 }, "matmul(x = a, y = b, transpose_x = " .. R.bool(false) .. ", transpose_y = " .. R.bool(false) .. ")")
    assert.same({ 1 * 1 + 2 * -1 + 3 * 1, 1 * 0 + 2 * 2 + 3 * 0 }, R.run(src, { { "fp16", { 3 }, x }, { "fp16", { 3, 2 }, y } }))
  end)
end)

describe("cpu backend: large tensors (threaded loops and conversions)", function()
  it("sigmoid, add, softmax and the fp16 I/O over 512K elements match the reference", function()
    local shape = { 1, 512, 1, 1024 }
    local src = P({ { "x", "fp16", shape } }, {
      ty("fp16", shape) .. ' s = sigmoid(x = x)[name = string("s")];',
      ty("fp16", shape) .. ' a = add(x = s, y = x)[name = string("a")];',
      ty("fp16", shape) .. ' y = softmax(x = a, axis = int32(-1))[name = string("p")];',
    }, { "y", "s" })
    local k <close> = ane.compile(src)
    k:load()
    local x = ane.rand(shape, { dist = "normal", std = 2, seed = 3 })
    local y, s = k:eval { x }
    for _, c in ipairs { 1, 77, 256, 511 } do
      local row, m = {}, -math.huge
      for j = 1, 1024 do
        local v = x:get(1, c, 1, j)
        local sg = R.f16(1 / (1 + math.exp(-v)))
        if j % 97 == 1 then assert.near(sg, s:get(1, c, 1, j), R.ulp16(sg)) end
        row[j] = R.f16(sg + v)
        m = math.max(m, row[j])
      end
      local z = 0
      for j = 1, 1024 do z = z + math.exp(row[j] - m) end
      for j = 1, 1024, 61 do
        local want = R.f16(math.exp(row[j] - m) / z)
        assert.near(want, y:get(1, c, 1, j), R.ulp16(want) + 1e-7)
      end
    end
  end)
end)

describe("cpu backend: large baked weights", function()
  -- 256K fp16 weights: the plan converts them to fp32 split over the pool in a foreground compile
  -- and on the calling thread in a queue worker (lowered priority); both must give W exactly.
  it("convert to the same values on the pool and in a background (queue) compile", function()
    local shape = { 1, 512, 1, 512 }
    local W = ane.rand(shape, { dist = "normal", std = 3, seed = 11, dtype = "fp16" })
    local text = P({ { "x", "fp16", shape } }, {
      ty("fp16", shape) .. ' w = const()[name = string("w"), val = ' .. ty("fp16", shape) ..
        '(BLOBFILE(path = string("@model_path/weights/w.bin"), offset = uint64(64)))];',
      ty("fp16", shape) .. ' y = add(x = x, y = w)[name = string("y")];',
    }, { "y" })
    local function prog()
      local p = ane.mil_parse(text)
      p:add_blob("@model_path/weights/w.bin", W)
      return p
    end
    local fg <close> = ane.compile(prog())
    local q <close> = ane.queue { workers = 1 }
    local bg <close> = q:compile(prog()):wait()
    local x = ane.zeros(shape)
    for _, k in ipairs { fg, bg } do
      k:load()
      local y = k:eval { x }
      local bad = 0
      for c = 1, 512 do
        for j = 1, 512 do
          if y:get(1, c, 1, j) ~= W:get(1, c, 1, j) then bad = bad + 1 end
        end
      end
      assert.equal(0, bad)
    end
  end)
end)

-- Omitted inputs take the op signature table's default (runtime/mil/sig.c), the one place a
-- default is written. Each case runs the op with its defaulted inputs omitted, with each default
-- spelled out (values from mil-reference.md section 8 / coremltools), and with another value
-- that must change the result, so a wrong or missing default cannot pass.
describe("cpu backend: omitted inputs read the signature table's defaults", function()
  local f32, f16 = function(v) return R.lit("fp32", {}, v) end, R.fp16
  local S = { 2, 3, 4 }
  local cases = {
    -- name, x dtype, x lo/hi, out shape, op, required inputs, {input, default, other value}...;
    -- other_shape: the other value changes the result's shape, so the default already shows in
    -- the declared output type (a wrong one fails to compile)
    { "rsqrt", "fp32", 0, 2, S, "rsqrt", "", { "epsilon", f32(1e-12), f32(1) } },
    { "inverse", "fp32", 0, 2, S, "inverse", "", { "epsilon", f32(1e-4), f32(1) } },
    { "log", "fp32", 0, 2, S, "log", "", { "epsilon", f32(1e-45), f32(1) } },
    { "leaky_relu", "fp16", -4, 4, S, "leaky_relu", "", { "alpha", f16(0.01), f16(0.5) } },
    { "elu", "fp16", -4, 4, S, "elu", "", { "alpha", f16(1), f16(0.5) } },
    { "thresholded_relu", "fp16", -4, 4, S, "thresholded_relu", "", { "alpha", f16(1), f16(2) } },
    { "scaled_tanh", "fp16", -2, 2, S, "scaled_tanh", "",
      { "alpha", f16(1), f16(2) }, { "beta", f16(1), f16(0.5) } },
    { "sigmoid_hard", "fp16", -4, 4, S, "sigmoid_hard", "",
      { "alpha", f16(0.2), f16(0.4) }, { "beta", f16(0.5), f16(0.25) } },
    { "linear_activation", "fp16", -4, 4, S, "linear_activation", ", alpha = " .. f16(2),
      { "beta", f16(0), f16(1) } },
    { "gelu", "fp16", -4, 4, S, "gelu", "", { "mode", R.str("EXACT"), R.str("TANH_APPROXIMATION") } },
    { "softmax", "fp16", -2, 2, S, "softmax", "", { "axis", R.int(-1), R.int(1) } },
    { "l2_norm", "fp32", -1e-4, 1e-4, S, "l2_norm", "", { "epsilon", f32(1e-6), f32(1) } },
    { "instance_norm", "fp32", -2, 2, S, "instance_norm", "", { "epsilon", f32(1e-5), f32(1) } },
    { "layer_norm", "fp32", -2, 2, S, "layer_norm", ", axes = " .. ints({ 2 }), { "epsilon", f32(1e-5), f32(1) } },
    { "local_response_norm", "fp32", -100, 100, S, "local_response_norm", ", size = " .. R.int(3),
      { "alpha", f32(1e-4), f32(0.5) }, { "beta", f32(0.75), f32(0.5) }, { "k", f32(1), f32(2) } },
    { "band_part", "fp16", -2, 2, S, "band_part", "",
      { "lower", R.int(-1), R.int(0) }, { "upper", R.int(-1), R.int(1) } },
    { "reduce_argmax", "fp16", -2, 2, { 2, 3 }, "reduce_argmax", "", { "axis", R.int(-1), R.int(1), other_shape = true },
      out = "int32" },
    { "matmul", "fp16", -2, 2, { 2, 3, 3 }, "matmul", ", y = " .. R.lit("fp16", { 4, 3 }, R.values(12, -1, 1, 5)),
      { "transpose_y", R.bool(false), R.bool(true), other_shape = true } },
    -- list defaults, which depend on x's rank (strides of ones, zero pads, all axes, all false)
    { "conv", "fp16", -2, 2, { 1, 2, 2, 2 }, "conv",
      ", weight = " .. R.lit("fp16", { 2, 2, 3, 3 }, R.values(36, -1, 1, 9)) .. ", pad_type = " .. R.str("custom"),
      { "strides", ints { 1, 1 }, ints { 2, 2 }, other_shape = true },
      { "dilations", ints { 1, 1 }, ints { 2, 2 }, other_shape = true },
      { "pad", ints { 0, 0, 0, 0 }, ints { 1, 1, 1, 1 }, other_shape = true }, xs = { 1, 2, 4, 4 } },
    { "slice_by_index", "fp16", -2, 2, { 2, 2, 2 }, "slice_by_index",
      ", begin = " .. ints { 0, 1, 1 } .. ", end = " .. ints { 2, 3, 3 },
      { "stride", ints { 1, 1, 1 }, ints { 1, 1, 2 }, other_shape = true },
      { "begin_mask", R.lit("bool", { 3 }, { 0, 0, 0 }), R.lit("bool", { 3 }, { 0, 1, 0 }), other_shape = true },
      { "end_mask", R.lit("bool", { 3 }, { 0, 0, 0 }), R.lit("bool", { 3 }, { 0, 0, 1 }), other_shape = true },
      { "squeeze_mask", R.lit("bool", { 3 }, { 0, 0, 0 }), R.lit("bool", { 3 }, { 1, 0, 0 }), other_shape = true } },
    { "reduce_sum", "fp16", -2, 2, {}, "reduce_sum", "", { "axes", ints { 0, 1, 2 }, ints { 1 }, other_shape = true } },
    { "layer_norm (axes)", "fp32", -2, 2, S, "layer_norm", "", { "axes", ints { 0, 1, 2 }, ints { 2 } } },
    { "squeeze", "fp16", -2, 2, { 3 }, "squeeze", "", { "axes", ints { 0, 2 }, ints { 0 }, other_shape = true },
      xs = { 1, 3, 1 } },
  }
  for _, c in ipairs(cases) do
    it(c[1], function()
      local xs = c.xs or S
      local x = R.values(R.numel(xs), c[3], c[4], 17, c[2])
      local od = c.out or c[2]
      local function run(extra)
        local src = one({ { c[2], xs } }, od, c[5], c[6] .. "(x = a" .. c[7] .. extra .. ")")
        return R.run(src, { { c[2], xs, x } })
      end
      local omitted = run("")
      local all = {}
      for i = 8, #c do all[#all + 1] = ", " .. c[i][1] .. " = " .. c[i][2] end
      assert.same(omitted, run(table.concat(all)), "all defaults written out")
      for i = 8, #c do
        local d = c[i]
        assert.same(omitted, run(", " .. d[1] .. " = " .. d[2]), d[1] .. " written out")
        if not d.other_shape then
          assert.are_not.same(omitted, run(", " .. d[1] .. " = " .. d[3]), d[1] .. " = other value")
        end
      end
    end)
  end
end)
