--- ane.optim: AdamW with global-norm clipping and dynamic loss scaling, and learning-rate
-- schedules. The arithmetic is C (runtime/nn/adamw.c through ane.nn.adamw / ane.nn.sumsq); this
-- file keeps the moments, the step count and the loss scale, and decides what a step does.
--
--   local opt = require("ane.optim").adamw{lr = 3e-4, weight_decay = 0.1, clip = 1.0,
--                                          loss_scale = "dynamic"}
--   model:zero_grad(); model:backward(opt.loss_scale)
--   local r = opt:step(model, {lr = sched(step)})  -- r.skipped, r.grad_norm, r.loss_scale
--
-- A step with a non-finite gradient (inf/NaN anywhere, the sign of fp16 overflow at this loss
-- scale) changes no parameter: with dynamic scaling the scale halves and the step is skipped;
-- after `scale_window` clean steps in a row it doubles (up to `max_scale`). Without dynamic
-- scaling a non-finite gradient raises.
local ane = require "ane"

local M = {}

local Opt = {}
Opt.__index = Opt

local KNOWN = {
  lr = true, beta1 = true, beta2 = true, eps = true, weight_decay = true, clip = true,
  loss_scale = true, scale_window = true, min_scale = true, max_scale = true, init_scale = true,
}

local function num(o, k, default, lo, hi)
  local v = o[k]
  if v == nil then return default end
  if type(v) ~= "number" or v ~= v or (lo and v < lo) or (hi and v > hi) then
    error(string.format("adamw: %s must be a number%s, got %s", k,
      lo and hi and string.format(" in [%g, %g]", lo, hi) or lo and string.format(" >= %g", lo) or "",
      tostring(v)), 3)
  end
  return v
end

--- adamw{lr = 3e-4, beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.1, clip = 1.0,
--        loss_scale = 1 | number | "dynamic", init_scale = 65536, scale_window = 200,
--        min_scale = 1, max_scale = 2^24}
-- clip = 0 (or false) turns clipping off. weight_decay applies only to parameters whose
-- entry in model:params() has decay = true (matrices; not norms).
function M.adamw(o)
  o = o or {}
  if type(o) ~= "table" then error("adamw: options table expected", 2) end
  for k in pairs(o) do
    if not KNOWN[k] then error("adamw: unknown option '" .. tostring(k) .. "'", 2) end
  end
  local self = setmetatable({}, Opt)
  self.lr = num(o, "lr", 3e-4, 0)
  self.beta1 = num(o, "beta1", 0.9, 0, 0.999999)
  self.beta2 = num(o, "beta2", 0.95, 0, 0.99999999)
  self.eps = num(o, "eps", 1e-8, 0)
  self.weight_decay = num(o, "weight_decay", 0.1, 0)
  self.clip = o.clip == false and 0 or num(o, "clip", 1.0, 0)
  local ls = o.loss_scale
  if ls == "dynamic" then
    self.dynamic = true
    self.loss_scale = num(o, "init_scale", 65536, 1)
  elseif ls == nil then
    self.loss_scale = 1
  elseif type(ls) == "number" and ls > 0 then
    self.loss_scale = ls
  else
    error("adamw: loss_scale must be a positive number or \"dynamic\", got " .. tostring(ls), 2)
  end
  self.scale_window = math.floor(num(o, "scale_window", 200, 1))
  self.min_scale = num(o, "min_scale", 1, 0)
  self.max_scale = num(o, "max_scale", 2 ^ 24, 1)
  self.t = 0          -- updates applied (the bias-correction step)
  self.clean = 0      -- clean steps since the scale last changed
  self.skipped = 0    -- steps skipped for a non-finite gradient
  self.moments = nil  -- {[i] = {name, m, v}} in model:params() order, made on first use
  return self
end

-- The model's parameter list and one pair of zeroed moments per entry (made once).
function Opt:_bind(model)
  if self._model == model and self._params then return self._params end
  local params = model:params()
  if self.moments then
    if #self.moments ~= #params then
      error(string.format("adamw: the model has %d parameters, the optimizer state %d",
        #params, #self.moments), 3)
    end
    for i, p in ipairs(params) do
      local mo = self.moments[i]
      if mo.name ~= p.name or mo.m:numel() ~= p.param:numel() then
        error(string.format("adamw: parameter %d is %s (%d values), the optimizer state has %s (%d)",
          i, p.name, p.param:numel(), mo.name, mo.m:numel()), 3)
      end
    end
  else
    self.moments = {}
    for i, p in ipairs(params) do
      local shape = p.param:shape()
      self.moments[i] = { name = p.name, m = ane.zeros(shape, "fp32"), v = ane.zeros(shape, "fp32") }
    end
  end
  self._model, self._params = model, params
  return params
end

--- Global L2 norm of the gradients as the model holds them (still multiplied by the loss scale);
-- inf or NaN when any element is not finite.
function Opt:grad_sumsq(model)
  local ss = 0
  for _, p in ipairs(self:_bind(model)) do ss = ss + ane.nn.sumsq(p.grad) end
  return ss
end

--- One optimizer step over every parameter of model. o.lr overrides the base rate for this
-- step (schedules pass it). Returns {skipped, grad_norm (unscaled, before clipping),
-- loss_scale (for the next backward), clipped}.
function Opt:step(model, o)
  local lr = o and o.lr or self.lr
  local params = self:_bind(model)
  local ss = 0
  for _, p in ipairs(params) do ss = ss + ane.nn.sumsq(p.grad) end
  local scale = self.loss_scale
  if ss ~= ss or ss == math.huge then
    if not self.dynamic then
      error("adamw: gradient is not finite (inf or NaN) at update " .. (self.t + 1), 2)
    end
    self.skipped = self.skipped + 1
    self.clean = 0
    self.loss_scale = math.max(scale / 2, self.min_scale)
    return { skipped = true, grad_norm = ss, loss_scale = self.loss_scale }
  end
  local norm = math.sqrt(ss) / scale
  local gs = 1 / scale
  local clipped = false
  if self.clip > 0 and norm > self.clip then
    gs = gs * (self.clip / norm)
    clipped = true
  end
  self.t = self.t + 1
  local b1, b2 = self.beta1, self.beta2
  local bc1, bc2 = 1 - b1 ^ self.t, 1 - b2 ^ self.t
  local wd, eps, adamw = self.weight_decay, self.eps, ane.nn.adamw
  for i, p in ipairs(params) do
    local mo = self.moments[i]
    adamw(p.param, p.grad, mo.m, mo.v, lr, b1, b2, eps, p.decay and wd or 0, gs, bc1, bc2)
  end
  if self.dynamic then
    self.clean = self.clean + 1
    if self.clean >= self.scale_window then
      self.clean = 0
      self.loss_scale = math.min(scale * 2, self.max_scale)
    end
  end
  return { skipped = false, grad_norm = norm, loss_scale = self.loss_scale, clipped = clipped }
end

--- The optimizer's state: scalars plus the moment tensors (views, not copies) in parameter
-- order. The checkpoint module writes it; load_state puts it back.
function Opt:state(model)
  if model then self:_bind(model) end
  return {
    t = self.t, clean = self.clean, skipped = self.skipped, loss_scale = self.loss_scale,
    dynamic = self.dynamic or false, moments = self.moments,
  }
end

--- Restore scalars and (when given) moments; moment tensors are copied into this optimizer's.
function Opt:load_state(st, model)
  self.t, self.clean, self.skipped = st.t, st.clean or 0, st.skipped or 0
  self.loss_scale = st.loss_scale or self.loss_scale
  if model then self:_bind(model) end
  if st.moments and st.moments ~= self.moments then
    if not self.moments then
      self.moments = st.moments
    else
      for i, mo in ipairs(st.moments) do
        self.moments[i].m:copy(mo.m)
        self.moments[i].v:copy(mo.v)
      end
    end
  end
end

-- ---- learning-rate schedules ----

--- schedule{kind = "constant" | "cosine", lr, warmup = 0, steps (cosine), min_lr = lr/10}
-- -> function(step) -> lr for 1-based step. Warm-up rises linearly to lr over `warmup` steps;
-- cosine then decays to min_lr at `steps` (and stays there).
function M.schedule(o)
  local kind = o.kind or "cosine"
  local lr = o.lr or error("schedule: lr is required", 2)
  local warmup = o.warmup or 0
  if kind == "constant" then
    return function(step)
      if step <= warmup then return lr * step / warmup end
      return lr
    end
  elseif kind == "cosine" then
    local steps = o.steps or error("schedule: cosine needs steps", 2)
    local min_lr = o.min_lr or lr / 10
    return function(step)
      if step <= warmup then return lr * step / warmup end
      if step >= steps then return min_lr end
      local r = (step - warmup) / math.max(1, steps - warmup)
      return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * r))
    end
  end
  error("schedule: kind must be \"constant\" or \"cosine\", got " .. tostring(kind), 2)
end

return M
