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
local reps = QUICK and 4 or 10
-- Kernel and sgemm alternate rep by rep and each keeps its best, so a burst of load on the shared
-- machine hits both sides alike.
-- Each side runs after a pause, so the other side's idle threads are parked: after a call
-- OpenBLAS's workers spin for about 2^28 cycles waiting for more work, and the kernel's pool
-- workers spin for up to 20 ms (runtime/backend/cpu/cpu_util.c); either would take a core from
-- the side measured next, a collision only this interleaving creates. (ane keeps OpenBLAS at one
-- thread and splits GEMMs over its own pool; bench_sgemm gives the baseline all cores.)
local function park() ane.sleep(0.15) end
local function side_by_side(k, ins, outs, m, n, kk, batch)
  local tk, ts = math.huge, math.huge
  for _ = 1, reps do
    park()
    tk = math.min(tk, (ane.bench_eval(k, ins, outs, 8)))
    park()
    ts = math.min(ts, ane.bench_sgemm(m, n, kk, 8, batch))
  end
  return tk, ts
end
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
  local tk, ts = side_by_side(k, { xi }, { yo }, c[3], SEQ, c[2])
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
  local tk, ts = side_by_side(k, { a, b }, { s }, SEQ, SEQ, DIM // HEADS, HEADS)
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
  local tk, ts = side_by_side(k, { ai, wi }, { yo }, SEQ, DIM, DIM)
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
  local n = QUICK and 3 or 6
  -- alternate rounds of the kernel and of NumPy; each side keeps its best
  local best, mean, nb, nm, err = math.huge, math.huge, math.huge, math.huge, nil
  ane.bench_eval(k, { x }, { y }, 1)
  for _ = 1, QUICK and 2 or 3 do
    local b, m = ane.bench_eval(k, { x }, { y }, n)
    best, mean = math.min(best, b), math.min(mean, m)
    local py = io.popen("/usr/bin/python3 " .. ROOT .. "/scripts/bench_layer_ref.py " .. n .. " 2>&1")
    local out = py:read("a")
    py:close()
    local b2, m2 = out:match("([%d.]+) ([%d.]+)")
    if b2 then nb, nm = math.min(nb, tonumber(b2)), math.min(nm, tonumber(m2)) else err = out end
  end
  row("", "best ms", "mean ms", "")
  row("ane cpu kernel (fp16 numerics)", ("%.2f"):format(best * 1e3), ("%.2f"):format(mean * 1e3), "")
  if not err then
    row("NumPy fp32 (scripts/bench_layer_ref.py)", ("%.2f"):format(nb), ("%.2f"):format(nm), "")
    local r = best * 1e3 / nb
    print(("  time ratio (best) %.2fx (target <= 1.0x: %s, aim 0.8x)"):format(r, r <= 1.0 and "met" or "MISSED"))
  else
    print("  NumPy reference did not run: " .. err)
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
  -- Timed: ane.mil.parse of the text, registering the program's weight blobs, ane.compile
  -- (check, weight resolution, plan). Not timed: generating the programs (ane.stories, builder).
  local stories = require "ane.stories"
  local cfg = stories.config {}
  local function time_set(list)
    local total, n, bytes = 0, 0, 0
    for _, item in ipairs(list) do
      local p = item.build()
      local text, blobs = p:text(), p:weights()
      for _, b in pairs(blobs) do bytes = bytes + #b end
      local t0 = ane.clock()
      local prog = mil.parse(text, item.name)
      for path, b in pairs(blobs) do prog:add_blob(path, b) end
      local k = ane.compile(prog)
      total = total + (ane.clock() - t0)
      k:close()
      prog:close()
      n = n + 1
      collectgarbage()
    end
    return total, n, bytes
  end
  -- dynamic weights (ane-private-api.md 7): the 6 kernels shared by all 12 layers
  local dyn, ndyn = time_set(stories.model_kernels(cfg, { style = "dynamic" }))
  print(("  dynamic-weight set (ane.stories, shared by the 12 layers): %d kernels, %.1f ms (target <= 100 ms: %s)"):format(
    ndyn, dyn * 1e3, dyn <= 0.1 and "met" or "MISSED"))
  -- static weights (the 6 kernels per layer of ane.model's static style, weights baked): all 12 layers' 72 kernels,
  -- kept alive as a model keeps them (the first compile of a process: every buffer is fresh
  -- memory), then all closed and compiled again, as a static-weight training loop does after each
  -- weight update (the freed buffers are recycled, runtime/core/bigmem.h). Every layer bakes
  -- layer 1's weights: the work does not depend on the values and no content is shared.
  local w1 = stories.transposed(stories.init_weights(cfg, { seed = 1, layers = 1, embed = false }).layers[1])
  local texts, sbytes = {}, 0
  for _, name in ipairs(stories.LAYER_KERNELS) do
    local program = stories.kernel(cfg, name, { weights = w1 })
    local blobs = program:weights()
    for _, b in pairs(blobs) do sbytes = sbytes + #b end
    texts[#texts + 1] = { name = name, text = program:text(), blobs = blobs }
  end
  local function compile_all()
    local kernels, t = {}, 0
    for _ = 1, cfg.n_layers do
      for _, it in ipairs(texts) do
        local t0 = ane.clock()
        local prog = mil.parse(it.text, it.name)
        for path, b in pairs(it.blobs) do prog:add_blob(path, b) end
        kernels[#kernels + 1] = ane.compile(prog)
        t = t + (ane.clock() - t0)
        prog:close()
      end
    end
    return kernels, t
  end
  local function close_all(ks)
    local t0 = ane.clock()
    for _, k in ipairs(ks) do k:close() end
    return ane.clock() - t0
  end
  collectgarbage()
  local ks, cold = compile_all()
  local tclose = close_all(ks)
  local warm = math.huge
  for _ = 1, QUICK and 1 or 3 do
    ks = nil
    collectgarbage()
    local t
    ks, t = compile_all()
    warm = math.min(warm, t)
    close_all(ks)
  end
  print(("  static set: %d layers x %d kernels, %.0f MB of fp16 weights"):format(cfg.n_layers, #texts, cfg.n_layers * sbytes / 2 ^ 20))
  print(("    first compile (fresh memory)        %.0f ms (target <= 100 ms: %s)"):format(cold * 1e3, cold <= 0.1 and "met" or "MISSED"))
  print(("    recompile after closing the set     %.0f ms (target <= 100 ms: %s); closing the %d kernels %.0f ms"):format(
    warm * 1e3, warm <= 0.1 and "met" or "MISSED", cfg.n_layers * #texts, tclose * 1e3))
  print("  (static compiles are dominated by the baked weights: copying the blobs, converting them to fp32 once; the 4 classifier kernels are not included)")
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
