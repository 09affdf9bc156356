--- ane.progress: the training program's live status.
-- On a terminal one status line is rewritten in place (step/total, loss, eval loss, tokens/s,
-- ms/step split into kernels / compile wait / CPU, ETA); when stdout is not a terminal, plain
-- lines at most once a second (and at every eval and the last step); quiet prints nothing.
-- Messages (p:say) go on their own line above the status line.
local M = {}
local P = {}
P.__index = P

--- is_tty(fd = 1) -> true when the file descriptor is a terminal (TERM=dumb counts as not).
function M.is_tty(fd)
  if os.getenv("TERM") == "dumb" then return false end
  local ok = os.execute("test -t " .. (fd or 1))
  return ok == true
end

--- new{total, quiet, tty (default: detected), out = io.stdout, now = function() seconds end}
function M.new(o)
  local self = setmetatable({}, P)
  self.total, self.quiet, self.out = o.total, o.quiet, o.out or io.stdout
  if o.tty == nil then self.tty = not o.quiet and M.is_tty(1) else self.tty = o.tty end
  self.now = o.now or os.time
  self.last_plain = -math.huge
  self.width = 0
  return self
end

local function fmt_eta(s)
  if not s or s ~= s or s == math.huge then return "?" end
  s = math.floor(s + 0.5)
  if s >= 3600 then return string.format("%dh%02dm", s // 3600, s % 3600 // 60) end
  if s >= 60 then return string.format("%dm%02ds", s // 60, s % 60) end
  return s .. "s"
end
M.fmt_eta = fmt_eta

--- The status text of one step record r = {step, loss, eval_loss, tokens_per_s, ms = {...}, eta_s}.
function M.format(r, total)
  local ms = r.ms or {}
  return string.format("step %d/%d  loss %.4f  eval %s  %s tok/s  %.1f ms/step (kernels %.1f, "
    .. "compile wait %.1f, cpu %.1f)  ETA %s",
    r.step, total, r.loss, r.eval_loss and string.format("%.4f", r.eval_loss) or "-",
    r.tokens_per_s and string.format("%.0f", r.tokens_per_s) or "-", ms.total or 0, ms.kernels or 0,
    ms.compile_wait or 0, ms.cpu or 0, fmt_eta(r.eta_s))
end

--- update(r [, force]): show step record r (force: print a plain line even within the second).
function P:update(r, force)
  if self.quiet then return end
  local text = M.format(r, self.total)
  if self.tty then
    local pad = self.width > #text and string.rep(" ", self.width - #text) or ""
    self.out:write("\r", text, pad)
    self.width = #text
    self.out:flush()
    self.dirty = true
  else
    local t = self.now()
    if force or r.step == self.total or t - self.last_plain >= 1 then
      self.out:write(text, "\n")
      self.out:flush()
      self.last_plain = t
    end
  end
end

--- say(text): a message on its own line (clears the status line first on a terminal).
function P:say(text)
  if self.quiet then return end
  if self.tty and self.dirty then
    self.out:write("\r", string.rep(" ", self.width), "\r")
    self.dirty, self.width = false, 0
  end
  self.out:write(text, "\n")
  self.out:flush()
end

--- finish(): end the status line (keeps its last text on screen).
function P:finish()
  if self.quiet then return end
  if self.tty and self.dirty then self.out:write("\n"); self.dirty = false; self.width = 0 end
  self.out:flush()
end

return M
