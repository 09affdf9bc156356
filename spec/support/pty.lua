--- Drive a program through a pseudo-terminal (spec/support/ptydrive.c) as a person would.
-- steps: { {"send", text}, {"expect", text}, {"wait"} }; text may hold any bytes ("\3" is ^C).
local H = require "helpers"
local P = {}

P.driver = H.build .. "/support/ptydrive"

local function escape(s)
  return (s:gsub("[%c\\]", function(c)
    if c == "\\" then return "\\\\" end
    return string.format("\\x%02x", c:byte())
  end))
end

--- Run argv on a terminal following steps; env is a list of "K=V" strings.
-- Returns the transcript (without "\r"), the exit code, and the driver's stderr (it names the
-- step that timed out, if any).
function P.drive(steps, argv, env)
  local lines = {}
  for _, s in ipairs(steps) do
    lines[#lines + 1] = s[2] and (s[1] .. " " .. escape(s[2])) or s[1]
  end
  local script = H.tmpfile(table.concat(lines, "\n") .. "\n", ".pty")
  local cmd = { "env", "TERM=dumb", "PTYDRIVE_TIMEOUT=60" }
  for _, e in ipairs(env or {}) do cmd[#cmd + 1] = e end
  cmd[#cmd + 1] = P.driver
  cmd[#cmd + 1] = script
  cmd[#cmd + 1] = "--"
  for _, a in ipairs(argv) do cmd[#cmd + 1] = a end
  local out, _, code, err = H.run(cmd)
  return out, code, err
end

--- Convenience for the REPL: start `ane` with a fresh history file, run steps, end with ^D.
function P.repl(steps, opts)
  opts = opts or {}
  local hist = opts.history or (os.tmpname())
  if not opts.history then os.remove(hist) end
  local all = { { "expect", "> " } }
  for _, s in ipairs(steps) do all[#all + 1] = s end
  all[#all + 1] = { "send", "\4" }
  all[#all + 1] = { "wait" }
  local out, code, err = P.drive(all, { H.ane_bin }, { "ANE_HISTORY_FILE=" .. hist })
  return out, code, err, hist
end

return P
