-- The probe scripts (scripts/probe_*.lua) run on every backend in their --quick configuration,
-- print a table naming the backend, and write JSON that says what they measured.
local H = require "helpers"
local cjson = require "cjson"

local function probe(name, ...)
  local json = os.tmpname()
  local args = { H.root .. "/scripts/probe_" .. name .. ".lua", "--quick", "--json", json, ... }
  local out, ok, code, err = H.ane(args)
  local data = H.read(json)
  os.remove(json)
  return out, ok, err, data and data ~= "" and cjson.decode(data) or nil
end

local probes = { "eval_throughput", "ping_pong", "sequential_compile", "background_overlap",
  "peak_throughput", "eval_paths", "weight_reload" }

describe("probe scripts", function()
  for _, backend in ipairs { "cpu", "ane" } do
    for _, name in ipairs(probes) do
      it(name .. " runs on " .. backend .. " and reports what it measured", function()
        local out, ok, err, r = probe(name, "--backend", backend)
        assert.is_true(ok, err .. out)
        -- the ane backend here is the stand-in, loaded on purpose: every report says so
        local label = backend == "ane" and "ane (stand-in at " .. os.getenv("ANE_FRAMEWORK_PATH") .. ")" or backend
        assert.matches("probe " .. name .. " on backend " .. H.escape(label) .. " %(quick%)", out)
        assert.is_table(r)
        assert.are.equal(name, r.probe)
        assert.are.equal(label, r.backend)
        assert.is_true(r.quick)
        assert.is_true(#r.rows >= 1)
        if backend == "ane" then
          -- on Linux the ane backend is the stand-in: the probe must say so
          assert.matches("stand%-in", table.concat(r.notes, "\n"))
        end
        if name == "eval_throughput" then
          assert.is_true(r.facts.verified)
          assert.is_true(r.rows[1].values.ms_per_eval > 0)
        elseif name == "sequential_compile" then
          assert.are.equal("3 of 3", r.facts.verified)
        elseif name == "ping_pong" then
          assert.is_true(r.facts.both_outputs_verified)
        elseif name == "background_overlap" then
          assert.is_truthy(r.facts.overlap == "yes" or r.facts.overlap == "no")
          assert.is_true(r.facts.foreground_outputs_unchanged)
          assert.is_true(r.facts.background_kernel_matches_foreground_compile)
        elseif name == "eval_paths" then
          for _, row in ipairs(r.rows) do assert.is_true(row.values.ok, row.label) end
        elseif name == "weight_reload" then
          if backend == "cpu" then
            assert.is_false(r.facts.reload_supported)
            assert.matches("no weight%-reload hook", table.concat(r.notes, "\n"))
          else
            assert.is_true(r.facts.reload_supported)
            assert.are.equal(0, r.facts.max_diff_before_after) -- the stand-in bakes weights like M4/M5
          end
        end
      end)
    end
  end

  it("rejects unknown arguments, settings and backends with a clear message", function()
    local out, ok, err = probe("eval_throughput", "--frobnicate")
    assert.is_false(ok)
    assert.matches("unknown argument '%-%-frobnicate'", err)
    out, ok, err = probe("eval_throughput", "--backend", "tpu")
    assert.is_false(ok)
    assert.matches("unknown backend 'tpu'", err)
    out, ok, err = probe("eval_throughput", "--set", "bogus=1")
    assert.is_false(ok)
    assert.matches("unknown setting 'bogus'", err)
  end)
end)
