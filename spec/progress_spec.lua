-- ane.progress (status line) and ane.plot (loss.svg).
local progress = require "ane.progress"
local plot = require "ane.plot"

local function sink()
  local s = { buf = {} }
  function s:write(...) for _, v in ipairs { ... } do self.buf[#self.buf + 1] = v end end
  function s:flush() end
  function s:text() return table.concat(self.buf) end
  return s
end

local REC = { step = 3, loss = 2.5, eval_loss = 2.75, tokens_per_s = 1234,
  ms = { total = 10, kernels = 6, compile_wait = 1, cpu = 3 }, eta_s = 75 }

describe("ane.progress", function()
  it("formats step/total, losses, tokens/s, the ms split and the ETA", function()
    assert.are.equal("step 3/10  loss 2.5000  eval 2.7500  1234 tok/s  10.0 ms/step (kernels 6.0, "
      .. "compile wait 1.0, cpu 3.0)  ETA 1m15s", progress.format(REC, 10))
  end)
  it("rewrites one line on a terminal, prints plain lines otherwise, nothing when quiet", function()
    local t = sink()
    local p = progress.new { total = 10, tty = true, out = t }
    p:update(REC); p:update(REC); p:say("hello"); p:finish()
    assert.is_truthy(t:text():find("^\rstep 3/10"))
    assert.is_nil(t:text():find("ETA 1m15s\n\rstep", 1, true))
    assert.is_truthy(t:text():find("hello\n", 1, true))
    local clock = 0
    local f = sink()
    local q = progress.new { total = 10, tty = false, out = f, now = function() return clock end }
    q:update(REC); q:update(REC) -- within the second: one line
    clock = 2
    q:update(REC)
    local _, lines = f:text():gsub("\n", "")
    assert.are.equal(2, lines)
    assert.is_nil(f:text():find("\r", 1, true))
    local z = sink()
    local r = progress.new { total = 10, quiet = true, out = z }
    r:update(REC); r:say("x"); r:finish()
    assert.are.equal("", z:text())
  end)
end)

describe("ane.plot", function()
  it("draws train and eval loss with labelled axes", function()
    local train = {}
    for i = 1, 50 do train[i] = { i, 5 / i } end
    local svg = plot.loss_svg { train = train, eval = { { 10, 0.6 }, { 50, 0.2 } }, title = "a & b" }
    assert.is_truthy(svg:find("^<svg"))
    assert.is_truthy(svg:find(">step</text>", 1, true))
    assert.is_truthy(svg:find(">loss (nats/token)</text>", 1, true))
    assert.is_truthy(svg:find("a &amp; b", 1, true))
    local _, polys = svg:gsub("<polyline", "")
    assert.are.equal(2, polys)
    local _, dots = svg:gsub("<circle", "")
    assert.are.equal(2, dots)
    assert.is_truthy(plot.loss_svg {}:find("</svg>", 1, true)) -- empty run: still a valid picture
  end)
end)
