-- CPU backend benchmarks (make bench). Every figure is a ratio measured side by side in this run:
--   1. GEMM-shaped kernels at Stories110M shapes vs cblas_sgemm called directly (target >= 0.9x)
--   2. one Stories110M layer forward in MIL vs the same math in NumPy (target <= 1.0x, aim 0.8x)
--   3. kernel:eval overhead from Lua on relu [1,64,1,32] beyond the op's own work (<= 1 us)
--   4. parse + check + plan of all forward and backward kernels of a 12-layer model (<= 100 ms)
--   5. peak memory of the layer forward vs fp32 weights + largest live activations (<= 1.5x)
-- ANE_BENCH_QUICK=1 runs fewer repetitions. Figures go to stdout; BENCHMARKS.md records a run.
local ane = require "ane"
local mil = require "ane.mil"

local QUICK = os.getenv("ANE_BENCH_QUICK") == "1"
local DIM, HIDDEN, SEQ, HEADS = 768, 2048, 256, 12
local ROOT = os.getenv("ANE_ROOT") or "."

local function randn(shape, seed, std)
  return ane.rand(shape, { dist = "normal", mean = 0, std = std or 0.02, seed = seed })
end

-- ---------------------------------------------------------------------------------------------
-- the layer (shared by 2, 4 and 5)
-- ---------------------------------------------------------------------------------------------

--- One Stories110M layer forward: x [1, DIM, 1, SEQ] -> y; weights baked (blobs) unless dynamic.
local function layer_program(seed)
  local p = mil.program { opset = "ios18" }
  local f = p:func("main")
  local x = f:input("x", "fp16", { 1, DIM, 1, SEQ })
  local W = {}
  for i, n in ipairs { "wq", "wk", "wv", "wo" } do W[n] = randn({ DIM, DIM }, seed + i) end
  W.w1, W.w3 = randn({ HIDDEN, DIM }, seed + 5), randn({ HIDDEN, DIM }, seed + 6)
  W.w2 = randn({ DIM, HIDDEN }, seed + 7)
  local ones = ane.full({ DIM }, 1)
  local h = f:rmsnorm(x, ones)
  local q, k, v = f:linear_conv(h, W.wq), f:linear_conv(h, W.wk), f:linear_conv(h, W.wv)
  local o = f:attention(q, k, v, { heads = HEADS, causal = true })
  local x2 = f:add(x, f:linear_conv(o, W.wo))
  local h2 = f:rmsnorm(x2, ones)
  local a, b = f:linear_conv(h2, W.w1), f:linear_conv(h2, W.w3)
  local g = f:mul(f:mul(a, f:sigmoid(a)), b)
  local y = f:add(x2, f:linear_conv(g, W.w2), { name = "y" })
  f:output(y)
  local wbytes = 4 * (4 * DIM * DIM + 3 * DIM * HIDDEN) -- as fp32
  return p, wbytes
end

-- ---------------------------------------------------------------------------------------------
-- memory child: `ane scripts/bench.lua --memory` prints peak RSS growth of compile+load+eval
-- ---------------------------------------------------------------------------------------------

local function rss_kb(field)
  local fh = io.open("/proc/self/status")
  if not fh then return nil end
  local s = fh:read("a")
  fh:close()
  return tonumber(s:match(field .. ":%s*(%d+)"))
end

if arg and arg[1] == "--memory" then
  local p, wbytes = layer_program(100)
  local prog = p:program()
  collectgarbage()
  collectgarbage()
  local base = rss_kb("VmRSS")
  local k = ane.compile(prog)
  k:load()
  local x = randn({ 1, DIM, 1, SEQ }, 9, 1)
  local y = ane.zeros({ 1, DIM, 1, SEQ })
  k:eval({ x }, { y })
  local peak = rss_kb("VmHWM")
  local st = k:stats()
  io.write(("%d %d %d %d\n"):format((peak - base) * 1024, wbytes, st.arena_bytes, st.const_bytes))
  os.exit(0)
end

local function fmt_ratio(r) return ("%.2fx"):format(r) end
local function row(...) print(("  %-44s %12s %12s %9s"):format(...)) end

-- ---------------------------------------------------------------------------------------------
-- 1. GEMM-shaped kernels vs cblas_sgemm
-- ---------------------------------------------------------------------------------------------

print(("== 1. GEMM kernels at Stories110M shapes vs direct cblas_sgemm (dim %d, hidden %d, seq %d)"):format(DIM, HIDDEN, SEQ))
row("kernel", "kernel ms", "sgemm ms", "ratio")
local reps = QUICK and 3 or 8
local gemm_cases = {
  { "conv 1x1 768->768 (wq/wk/wv/wo)", DIM, DIM },
  { "conv 1x1 768->2048 (w1/w3)", DIM, HIDDEN },
  { "conv 1x1 2048->768 (w2)", HIDDEN, DIM },
}
local worst = math.huge
for i, c in ipairs(gemm_cases) do
  local p = mil.program { opset = "ios18" }
  local f = p:func("main")
  local x = f:input("x", "fp16", { 1, c[2], 1, SEQ })
  f:output(f:linear_conv(x, randn({ c[3], c[2] }, i), { name = "y" }))
  local k = ane.compile(p)
  k:load()
  local xi, yo = randn({ 1, c[2], 1, SEQ }, 3, 1), ane.zeros({ 1, c[3], 1, SEQ })
  local tk = ane.bench_eval(k, { xi }, { yo }, reps)
  local ts = ane.bench_sgemm(c[3], SEQ, c[2], reps)
  worst = math.min(worst, ts / tk)
  row(c[1], ("%.3f"):format(tk * 1e3), ("%.3f"):format(ts * 1e3), fmt_ratio(ts / tk))
  k:close()
end
do -- attention scores: batched Q^T K through the transposes of reference 10.2
  local p = mil.program { opset = "ios18" }
  local f = p:func("main")
  local q = f:input("q", "fp16", { 1, HEADS, DIM // HEADS, SEQ })
  local kk = f:input("k", "fp16", { 1, HEADS, DIM // HEADS, SEQ })
  local qt = f:transpose(q, { 0, 1, 3, 2 })
  local kt = f:transpose(kk, { 0, 1, 3, 2 })
  f:output(f:matmul(qt, kt, false, true, { name = "s" }))
  local k = ane.compile(p)
  k:load()
  local a, b = randn({ 1, HEADS, DIM // HEADS, SEQ }, 1, 1), randn({ 1, HEADS, DIM // HEADS, SEQ }, 2, 1)
  local s = ane.zeros({ 1, HEADS, SEQ, SEQ })
  local tk = ane.bench_eval(k, { a, b }, { s }, reps)
  local ts = ane.bench_sgemm(SEQ, SEQ, DIM // HEADS, reps, HEADS)
  worst = math.min(worst, ts / tk)
  row("matmul Q^T K, 12 heads x [256,64]x[64,256]", ("%.3f"):format(tk * 1e3), ("%.3f"):format(ts * 1e3), fmt_ratio(ts / tk))
  k:close()
end
do -- runtime weights: [1,1,S,768] x [1,1,768,768] (dynamic-weight training kernels)
  local p = mil.program { opset = "ios18" }
  local f = p:func("main")
  local a = f:input("a", "fp16", { 1, 1, SEQ, DIM })
  local w = f:input("w", "fp16", { 1, 1, DIM, DIM })
  f:output(f:matmul(a, w, false, false, { name = "y" }))
  local k = ane.compile(p)
  k:load()
  local ai, wi, yo = randn({ 1, 1, SEQ, DIM }, 1, 1), randn({ 1, 1, DIM, DIM }, 2), ane.zeros({ 1, 1, SEQ, DIM })
  local tk = ane.bench_eval(k, { ai, wi }, { yo }, reps)
  local ts = ane.bench_sgemm(SEQ, DIM, DIM, reps)
  worst = math.min(worst, ts / tk)
  row("matmul runtime weights [256,768]x[768,768]", ("%.3f"):format(tk * 1e3), ("%.3f"):format(ts * 1e3), fmt_ratio(ts / tk))
  k:close()
end
print(("  worst ratio %.2fx (target >= 0.9x: %s)"):format(worst, worst >= 0.9 and "met" or "MISSED"))

-- ---------------------------------------------------------------------------------------------
-- 2. layer forward vs NumPy
-- ---------------------------------------------------------------------------------------------

print("\n== 2. Stories110M layer forward (RMSNorm, QKV, causal attention, wo, SwiGLU FFN, residuals), seq 256")
do
  local p = layer_program(10)
  local k = ane.compile(p)
  k:load()
  local x, y = randn({ 1, DIM, 1, SEQ }, 9, 1), ane.zeros({ 1, DIM, 1, SEQ })
  local n = QUICK and 4 or 10
  local best, mean = ane.bench_eval(k, { x }, { y }, n)
  local py = io.popen("/usr/bin/python3 " .. ROOT .. "/scripts/bench_layer_ref.py " .. n .. " 2>&1")
  local out = py:read("a")
  py:close()
  local nb, nm = out:match("([%d.]+) ([%d.]+)")
  row("", "best ms", "mean ms", "")
  row("ane cpu kernel (fp16 numerics)", ("%.2f"):format(best * 1e3), ("%.2f"):format(mean * 1e3), "")
  if nb then
    nb, nm = tonumber(nb), tonumber(nm)
    row("NumPy fp32 (scripts/bench_layer_ref.py)", ("%.2f"):format(nb), ("%.2f"):format(nm), "")
    local r = best * 1e3 / nb
    print(("  time ratio (best) %.2fx (target <= 1.0x: %s, aim 0.8x)"):format(r, r <= 1.0 and "met" or "MISSED"))
  else
    print("  NumPy reference did not run: " .. out)
  end
  local st = k:stats()
  print(("  plan: %d nodes run at eval, arena %.1f MB, weights %.1f MB fp32"):format(st.nodes, st.arena_bytes / 2 ^ 20, st.const_bytes / 2 ^ 20))
  k:close()
end

-- ---------------------------------------------------------------------------------------------
-- 3. eval overhead from Lua
-- ---------------------------------------------------------------------------------------------

print("\n== 3. kernel:eval overhead from Lua, relu [1,64,1,32]")
do
  local src = [[
program(1.3)
{
    func main<ios18>(tensor<fp16, [1, 64, 1, 32]> x) {
        tensor<fp16, [1, 64, 1, 32]> y = relu(x = x)[name = string("r")];
    } -> (y);
}
]]
  local k = ane.compile(src)
  k:load()
  local x, y = randn({ 1, 64, 1, 32 }, 1, 1), ane.zeros({ 1, 64, 1, 32 })
  local ins, outs = { x }, { y }
  local N = QUICK and 20000 or 100000
  local best_lua, best_c = math.huge, math.huge
  for _ = 1, 5 do
    local t0 = ane.clock()
    for _ = 1, N do k:eval(ins, outs) end
    best_lua = math.min(best_lua, (ane.clock() - t0) / N)
    local _, mean = ane.bench_eval(k, ins, outs, N)
    best_c = math.min(best_c, mean)
  end
  row("", "us/eval", "", "")
  row("k:eval(ins, outs) from Lua", ("%.3f"):format(best_lua * 1e6), "", "")
  row("the same eval called from C (op's own work)", ("%.3f"):format(best_c * 1e6), "", "")
  local ov = (best_lua - best_c) * 1e6
  print(("  overhead %.3f us (target <= 1 us: %s)"):format(ov, ov <= 1 and "met" or "MISSED"))
end

-- ---------------------------------------------------------------------------------------------
-- 4. compile time of a 12-layer model's forward and backward kernels
-- ---------------------------------------------------------------------------------------------

print("\n== 4. parse + check + plan, all forward and backward kernels of a 12-layer Stories110M model")
do
  -- Per layer (weights as inputs, the dynamic-weight design of ane-private-api.md 7):
  -- fwd attention block, fwd FFN block, bwd FFN, bwd attention output + scores, bwd QKV + rmsnorm.
  local texts, blobs = {}, {}
  local function kernel(build)
    local p = mil.program { opset = "ios18" }
    local f = p:func("main")
    build(f)
    texts[#texts + 1] = p:text()
    blobs[#blobs + 1] = p:weights() -- the causal mask travels as a blob, as the builder makes it
  end
  local C, S, Hd, Hh = DIM, SEQ, DIM // HEADS, HEADS
  local function mm(f, a, b, ta, tb) return f:matmul(a, b, ta or false, tb or false) end
  local function as2(f, v) return f:reshape(v, { 1, 1, v.shape[2], v.shape[4] }) end -- [1,C,1,S] -> [1,1,C,S]
  local function as4(f, v) return f:reshape(v, { 1, v.shape[3], 1, v.shape[4] }) end
  local builders = {
    function(f) -- fwd attention: rmsnorm, q k v, causal attention, wo, residual
      local x = f:input("x", "fp16", { 1, C, 1, S })
      local wq, wk, wv, wo = f:input("wq", "fp16", { 1, 1, C, C }), f:input("wk", "fp16", { 1, 1, C, C }),
          f:input("wv", "fp16", { 1, 1, C, C }), f:input("wo", "fp16", { 1, 1, C, C })
      local h = as2(f, f:rmsnorm(x))
      local q, k, v = as4(f, mm(f, wq, h)), as4(f, mm(f, wk, h)), as4(f, mm(f, wv, h))
      local o = as2(f, f:attention(q, k, v, { heads = Hh, causal = true }))
      f:output(f:add(x, as4(f, mm(f, wo, o))), q, k, v)
    end,
    function(f) -- fwd FFN
      local x = f:input("x", "fp16", { 1, C, 1, S })
      local w1, w3, w2 = f:input("w1", "fp16", { 1, 1, HIDDEN, C }), f:input("w3", "fp16", { 1, 1, HIDDEN, C }),
          f:input("w2", "fp16", { 1, 1, C, HIDDEN })
      local h = as2(f, f:rmsnorm(x))
      local a, b = mm(f, w1, h), mm(f, w3, h)
      local g = f:mul(f:mul(a, f:sigmoid(a)), b)
      f:output(f:add(x, as4(f, mm(f, w2, g))), a, b)
    end,
    function(f) -- bwd FFN: dx, dW1, dW2, dW3
      local dy = f:input("dy", "fp16", { 1, 1, C, S })
      local h = f:input("h", "fp16", { 1, 1, C, S })
      local a, b = f:input("a", "fp16", { 1, 1, HIDDEN, S }), f:input("b", "fp16", { 1, 1, HIDDEN, S })
      local w1, w3, w2 = f:input("w1", "fp16", { 1, 1, HIDDEN, C }), f:input("w3", "fp16", { 1, 1, HIDDEN, C }),
          f:input("w2", "fp16", { 1, 1, C, HIDDEN })
      local sg = f:sigmoid(a)
      local silu = f:mul(a, sg)
      local g = f:mul(silu, b)
      local dg = mm(f, w2, dy, true, false)
      local db = f:mul(dg, silu)
      local ds = f:mul(dg, b)
      local da = f:mul(ds, f:mul(sg, f:add(f:mul(a, f:sub(1, sg)), 1)))
      local dx = f:add(mm(f, w1, da, true, false), mm(f, w3, db, true, false))
      f:output(dx, mm(f, dy, g, false, true), mm(f, da, h, false, true), mm(f, db, h, false, true))
    end,
    function(f) -- bwd attention scores: dV, dQ, dK from dO (per head)
      local q = f:input("q", "fp16", { 1, Hh, Hd, S })
      local k = f:input("k", "fp16", { 1, Hh, Hd, S })
      local v = f:input("v", "fp16", { 1, Hh, Hd, S })
      local dO = f:input("do", "fp16", { 1, Hh, Hd, S })
      local s = f:mul(mm(f, q, k, true, false), 1 / math.sqrt(Hd))
      s = f:add(s, f:causal_mask(S))
      local p = f:softmax(s, -1)
      local dv = mm(f, dO, p, false, false)                    -- [H, Hd, S]
      local dp = mm(f, dO, v, true, false)                     -- [H, S, S]
      local t = f:reduce_sum(f:mul(dp, p), { -1 }, true)
      local dsc = f:mul(f:mul(p, f:sub(dp, t)), 1 / math.sqrt(Hd))
      f:output(dv, mm(f, k, dsc, false, true), mm(f, q, dsc, false, false))
    end,
    function(f) -- bwd projections + rmsnorm: dx from dq, dk, dv, do; dWq..dWo
      local x = f:input("x", "fp16", { 1, 1, C, S })
      local dq, dk, dv = f:input("dq", "fp16", { 1, 1, C, S }), f:input("dk", "fp16", { 1, 1, C, S }),
          f:input("dv", "fp16", { 1, 1, C, S })
      local wq, wk, wv = f:input("wq", "fp16", { 1, 1, C, C }), f:input("wk", "fp16", { 1, 1, C, C }),
          f:input("wv", "fp16", { 1, 1, C, C })
      local dh = f:add(f:add(mm(f, wq, dq, true, false), mm(f, wk, dk, true, false)), mm(f, wv, dv, true, false))
      local ss = f:reduce_sum(f:mul(x, x), { 2 }, true)
      local r = f:pow(f:add(f:mul(ss, 1 / C), 1e-5), -0.5)
      local h = f:mul(x, r)
      local proj = f:reduce_sum(f:mul(dh, h), { 2 }, true)
      local dx = f:mul(f:sub(dh, f:mul(h, f:mul(proj, 1 / C))), r)
      f:output(dx, mm(f, dq, h, false, true), mm(f, dk, h, false, true), mm(f, dv, h, false, true))
    end,
  }
  for _ = 1, 12 do for _, b in ipairs(builders) do kernel(b) end end
  local t0 = ane.clock()
  local ks = {}
  for i, t in ipairs(texts) do
    local prog = mil.parse(t, "kernel" .. i)
    for path, bytes in pairs(blobs[i]) do prog:add_blob(path, bytes) end
    ks[i] = ane.compile(prog) -- check + resolve + plan
  end
  local dt = ane.clock() - t0
  local bytes = 0
  for _, t in ipairs(texts) do bytes = bytes + #t end
  print(("  %d kernels (%d per layer x 12), %.0f KB of MIL: %.1f ms total, %.2f ms per kernel (target <= 100 ms: %s)"):format(
    #texts, #builders, bytes / 1024, dt * 1e3, dt * 1e3 / #texts, dt <= 0.1 and "met" or "MISSED"))
  for _, k in ipairs(ks) do k:close() end
end

-- ---------------------------------------------------------------------------------------------
-- 5. peak memory
-- ---------------------------------------------------------------------------------------------

print("\n== 5. peak memory of the layer forward (a child process: compile + load + eval)")
do
  local bin = os.getenv("ANE_BUILD") and (os.getenv("ANE_BUILD") .. "/ane") or "build/ane"
  local p = io.popen(bin .. " " .. ROOT .. "/scripts/bench.lua --memory 2>&1")
  local out = p:read("a")
  p:close()
  local grow, w, arena, consts = out:match("(%d+) (%d+) (%d+) (%d+)")
  if grow then
    grow, w, arena = tonumber(grow), tonumber(w), tonumber(arena)
    local r = grow / (w + arena)
    print(("  RSS growth %.1f MB; fp32 weights %.1f MB + largest live activations (arena) %.1f MB = %.1f MB"):format(
      grow / 2 ^ 20, w / 2 ^ 20, arena / 2 ^ 20, (w + arena) / 2 ^ 20))
    print(("  ratio %.2fx (target <= 1.5x: %s)"):format(r, r <= 1.5 and "met" or "MISSED"))
  else
    print("  memory child failed: " .. out)
  end
end
