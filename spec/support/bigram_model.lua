--- A stand-in model for the training loop's specs: a bigram table (logits = W[token]) behind the
-- interface of ane.model (params, forward, zero_grad, backward, save, load, close, timing). Plain
-- Lua over ane.Tensors, tiny vocabularies only. With style = "static" every forward compiles a
-- small kernel, so the compile budget (ANE_STRICT=1 on the CPU) runs out the way it does for the
-- static pipeline.
local ane = require "ane"

local M = {}
local Model = {}
Model.__index = Model

local STATIC_MIL = [[
program(1.3)
{
    func main<ios18>(tensor<fp16, [1, 4, 1, 4]> x) {
        tensor<fp16, [1, 4, 1, 4]> y = add(x = x, y = x)[name = string("y")];
    } -> (y);
}
]]

function M.new(cfg, opts)
  opts = opts or {}
  local self = setmetatable({ cfg = cfg, style = opts.style or "dynamic",
    timing = { kernels = 0, cpu = 0, compile_wait = 0 }, compiles_per_step = 0 }, Model)
  local v = cfg.vocab
  self.w = ane.rand({ v, v }, { dtype = "fp32", dist = "normal", std = 0.02, seed = opts.seed or 1 })
  self.g = ane.zeros({ v, v }, "fp32")
  self.list = { { name = "embed", param = self.w, grad = self.g, decay = false } }
  if self.style == "static" then self.compiles_per_step = 1 end
  return self
end

function M.load(path, opts)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  local v = string.unpack("<i4", s)
  local m = M.new({ vocab = v }, opts)
  m.w:copy(ane.from_bytes(s:sub(5), "fp32", { v, v }))
  return m
end

function Model:params() return self.list end

local function totable(t)
  if type(t) == "table" then return t end
  local r = {}
  for i = 1, t:numel() do r[i] = t:get(i) end
  return r
end

function Model:forward(tokens, targets)
  local t0 = os.clock()
  if self.style == "static" then
    local k = ane.compile(STATIC_MIL) -- raises when the compile budget is spent
    k:close()
  end
  local tok, tgt = totable(tokens), totable(targets)
  local v, w = self.cfg.vocab, self.w
  local loss, probs = 0, {}
  for i = 1, #tok do
    local r = tok[i] + 1
    local row, mx = {}, -math.huge
    for j = 1, v do row[j] = w:get(r, j); if row[j] > mx then mx = row[j] end end
    local z = 0
    for j = 1, v do row[j] = math.exp(row[j] - mx); z = z + row[j] end
    for j = 1, v do row[j] = row[j] / z end
    loss = loss - math.log(row[tgt[i] + 1])
    probs[i] = row
  end
  self._cache = { tok = tok, tgt = tgt, probs = probs }
  self.timing.cpu = self.timing.cpu + (os.clock() - t0) * 1e3
  return loss / #tok
end

function Model:zero_grad() self.g:fill(0) end

function Model:backward(scale)
  scale = scale or 1
  local c, v, g = self._cache, self.cfg.vocab, self.g
  local n = #c.tok
  for i = 1, n do
    local r, row = c.tok[i] + 1, c.probs[i]
    for j = 1, v do
      local d = row[j] - (j == c.tgt[i] + 1 and 1 or 0)
      g:set(r, j, g:get(r, j) + d * scale / n)
    end
  end
end

function Model:save(path)
  assert(ane.atomic_write(path, { string.pack("<i4", self.cfg.vocab), self.w }))
end

function Model:close() end

return M
