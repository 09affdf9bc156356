-- The training program (lua/ane/train.lua through spec/support/train_standin.lua): resume gives
-- bit-identical losses, the compile-budget restart, and every kind of bad input as a clear error
-- with exit 1 and nothing on disk lost. Tiny configs only.
local H = require "helpers"
local cjson = require "cjson"

local SCRIPT = H.root .. "/spec/support/train_standin.lua"
local MODEL = os.getenv("TRAIN_SPEC_MODEL") or "support.bigram_model"

local function train(args, env, model)
  local argv = { "env", "TRAIN_MODEL=" .. (model or MODEL) }
  for k, v in pairs(env or {}) do argv[#argv + 1] = k .. "=" .. v end
  argv[#argv + 1] = H.ane_bin
  argv[#argv + 1] = SCRIPT
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  return H.run(argv)
end

local TEXT = H.tmpfile(string.rep("the quick brown fox jumps over the lazy dog. ", 40), ".txt")
local function base(dir, extra)
  local a = { "--out", dir, "--text", TEXT, "--seq", "8", "--batch", "2", "--steps", "12",
    "--eval-every", "4", "--ckpt-every", "4", "--quiet" }
  for _, x in ipairs(extra or {}) do a[#a + 1] = x end
  return a
end

local function losses(dir)
  local r = {}
  for line in assert(io.open(dir .. "/log.jsonl")):lines() do
    local t = cjson.decode(line)
    if t.loss then r[#r + 1] = string.format("%d %.17g", t.step, t.loss) end
    if t.eval_loss then r[#r + 1] = string.format("%d eval %.17g", t.step, t.eval_loss) end
  end
  return r
end

describe("train", function()
  it("writes log.jsonl, model.bin, state.bin, loss.svg and tokenizer.bin", function()
    local dir = H.tmpdir()
    local out, ok, code, err = train(base(dir))
    assert.is_true(ok, err)
    for _, f in ipairs { "log.jsonl", "model.bin", "state.bin", "loss.svg", "tokenizer.bin" } do
      assert.is_truthy(H.read(dir .. "/" .. f), f)
    end
    local first = cjson.decode(H.read(dir .. "/log.jsonl"):match("^[^\n]+"))
    for _, k in ipairs { "step", "loss", "lr", "tokens_per_s", "loss_scale" } do assert.is_not_nil(first[k], k) end
    for _, k in ipairs { "total", "kernels", "compile_wait", "cpu" } do assert.is_not_nil(first.ms[k], k) end
    assert.are.equal(15, #losses(dir)) -- 12 steps + 3 evals
    local svg = H.read(dir .. "/loss.svg")
    assert.is_truthy(svg:find("<svg", 1, true))
    assert.is_truthy(svg:find(">step<", 1, true))
    assert.are.equal("", out) -- --quiet
  end)

  it("a run killed after a step and resumed logs bit-identical losses", function()
    local a, b = H.tmpdir(), H.tmpdir()
    assert.is_true(select(2, train(base(a))))
    local _, ok = train(base(b), { TRAIN_KILL_AT = "6" }) -- checkpoint at 4, records 5 and 6 dropped
    assert.is_false(ok)
    local out, ok2, _, err = train(base(b, { "--resume" }))
    assert.is_true(ok2, err)
    assert.same(losses(a), losses(b))
    assert.are.equal(H.read(a .. "/model.bin"), H.read(b .. "/model.bin"))
  end)

  it("static style under a small compile budget checkpoints, restarts itself, and matches", function()
    local a, b = H.tmpdir(), H.tmpdir()
    assert.is_true(select(2, train(base(a, { "--style", "static" }))))
    local out, ok, _, err = train(base(b, { "--style", "static" }),
      { ANE_STRICT = "1", ANE_COMPILE_BUDGET = "8" })
    assert.is_true(ok, err)
    assert.same(losses(a), losses(b))
    local restarts = 0
    for line in io.open(b .. "/log.jsonl"):lines() do
      if line:find('"event":"restart"', 1, true) then restarts = restarts + 1 end
    end
    assert.is_true(restarts >= 2)
  end)

  describe("with ane.model", function()
    -- one layer, dim 16: every style's step in well under a second
    local CFG = H.tmpfile('{"dim": 16, "hidden": 32, "n_layers": 1, "n_heads": 2, "n_kv_heads": 1, '
      .. '"vocab": 259, "seq": 8}', ".json")
    local function args(dir, style, extra)
      local a = { "--out", dir, "--text", TEXT, "--config", CFG, "--batch", "2", "--steps", "6",
        "--eval-every", "3", "--ckpt-every", "3", "--style", style, "--quiet" }
      for _, x in ipairs(extra or {}) do a[#a + 1] = x end
      return a
    end
    for _, style in ipairs { "dynamic", "static", "static_extras" } do
      it(style .. ": killed after step 4 and resumed, the losses are bit-identical", function()
        local a, b = H.tmpdir(), H.tmpdir()
        local _, ok, _, err = train(args(a, style), nil, "ane.model")
        assert.is_true(ok, err)
        assert.is_false(select(2, train(args(b, style), { TRAIN_KILL_AT = "4" }, "ane.model")))
        _, ok, _, err = train(args(b, style, { "--resume" }), nil, "ane.model")
        assert.is_true(ok, err)
        assert.same(losses(a), losses(b))
        assert.are.equal(H.read(a .. "/model.bin"), H.read(b .. "/model.bin"))
      end)
    end

    it("static: a compile budget smaller than the run restarts it and the losses match", function()
      -- strict mode wants ANE-friendly shapes (matmul inner dimensions multiples of 32)
      local cfg = H.tmpfile('{"dim": 64, "hidden": 64, "n_layers": 1, "n_heads": 2, "vocab": 259, "seq": 32}', ".json")
      local function sargs(dir) return args(dir, "static", { "--config", cfg, "--batch", "1" }) end
      local a, b = H.tmpdir(), H.tmpdir()
      local _, ok0, _, err0 = train(sargs(a), { ANE_STRICT = "1" }, "ane.model")
      assert.is_true(ok0, err0)
      local _, ok, _, err = train(sargs(b), { ANE_STRICT = "1", ANE_COMPILE_BUDGET = "20" }, "ane.model")
      assert.is_true(ok, err)
      assert.same(losses(a), losses(b))
      assert.is_truthy(H.read(b .. "/log.jsonl"):find('"event":"restart"', 1, true))
    end)
  end)

  describe("bad input: a clear error, exit 1, nothing lost", function()
    local function fails(args, pattern, env)
      local out, ok, code, err = train(args, env)
      assert.is_false(ok)
      assert.are.equal(1, code)
      assert.is_truthy(err:find(pattern, 1, true), "stderr: " .. err)
      return err
    end

    it("missing, truncated, too short and out-of-range data", function()
      local dir = H.tmpdir()
      fails({ "--out", dir, "--data", "/nonexistent/tok.bin" }, "/nonexistent/tok.bin: No such file or directory")
      local odd = H.tmpfile(string.rep("\1\0", 100) .. "\1", ".bin")
      fails({ "--out", dir, "--data", odd }, odd .. ": 201 bytes is not a whole number of uint16 tokens")
      local short = H.tmpfile(string.rep("\1\0", 10), ".bin")
      fails({ "--out", dir, "--data", short }, short .. ": 10 tokens, need at least seq + 1 = 65")
      local bad = H.tmpfile(string.rep("\1\0", 100) .. "\255\255" .. string.rep("\1\0", 10), ".bin")
      fails({ "--out", dir, "--data", bad },
        bad .. ": token id 65535 at byte offset 200 (token 100) is not below the vocab size 32000")
      assert.is_nil(H.read(dir .. "/state.bin"))
    end)

    it("a checkpoint from another config names what differs", function()
      local dir = H.tmpdir()
      assert.is_true(select(2, train(base(dir))))
      local before = H.read(dir .. "/state.bin")
      fails(base(dir, { "--resume", "--batch", "3", "--seed", "9" }),
        "the checkpoint is from another config:\n  batch: 2 in the checkpoint, 3 in this run\n  seed: 1 in the checkpoint, 9 in this run")
      fails(base(dir), "holds a checkpoint (state.bin): continue it with --resume")
      assert.are.equal(before, H.read(dir .. "/state.bin"))
    end)

    it("a corrupt or truncated state.bin", function()
      local dir = H.tmpdir()
      assert.is_true(select(2, train(base(dir))))
      local good = H.read(dir .. "/state.bin")
      H.write(dir .. "/state.bin", good:sub(1, #good - 10))
      fails(base(dir, { "--resume" }), "state.bin: corrupt checkpoint state (")
      H.write(dir .. "/state.bin", good:sub(1, #good - 8) .. "garbage!")
      fails(base(dir, { "--resume" }), "state.bin: corrupt checkpoint state (checksum mismatch)")
      H.write(dir .. "/state.bin", "hello")
      fails(base(dir, { "--resume" }), "state.bin: corrupt checkpoint state (file too short)")
      H.write(dir .. "/state.bin", "ANESTATE\1\0\0\0\4\0\0\0{{{{")
      fails(base(dir, { "--resume" }), "state.bin: corrupt checkpoint state (unreadable header)")
    end)

    it("a NaN loss in fp32 stops with the step number; the last checkpoint stays", function()
      local dir = H.tmpdir()
      local err = fails(base(dir, { "--precision", "fp32", "--lr", "1e30", "--ckpt-every", "1" }),
        "(fp32 numerics); stopped. The last good checkpoint in " .. dir .. " is step ")
      local step, last = err:match("step (%d+): the loss is .- is step (%d+)")
      assert.are.equal(tonumber(step) - 1, tonumber(last))
      -- the checkpoint it names resumes
      local h = require("ane.checkpoint").read_header(dir .. "/state.bin")
      assert.are.equal(tonumber(last), h.step)
    end)

    it("usage errors", function()
      fails({ "--out", "x", "--text", TEXT, "--steps", "zero" }, "--steps must be an integer >= 1, got 'zero'")
      fails({ "--text", TEXT }, "--out DIR is required")
      fails({ "--out", "x", "--text", TEXT, "--frobnicate" }, "unknown argument '--frobnicate'")
      fails({ "--out", "x", "--text", TEXT, "--style", "fast" }, "--style must be static, static_extras or dynamic")
    end)
  end)
end)
