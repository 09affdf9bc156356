-- Shared helpers for the specs: paths into the build, running the host, temp files.
local H = {}

H.root = os.getenv("ANE_ROOT") or "."
H.build = os.getenv("ANE_BUILD") or (H.root .. "/build")
H.ane_bin = H.build .. "/ane"

local tmpfiles = {}

--- Write bytes to path (created or replaced) and return path.
function H.write(path, bytes)
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
  return path
end

--- The whole contents of a file, or nil when it cannot be opened.
function H.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

--- Write text to a new temp file and return its path (removed at exit by the OS tmp cleaner).
function H.tmpfile(text, suffix)
  local path = H.write(os.tmpname() .. (suffix or ".lua"), text)
  tmpfiles[#tmpfiles + 1] = path
  return path
end

--- Make a new empty temp directory (with the subdirectory sub inside, when given) and return
-- its path.
function H.tmpdir(sub)
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -p " .. H.shquote(sub and d .. "/" .. sub or d)))
  return d
end

function H.escape(s)
  return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"))
end

local function shquote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
H.shquote = shquote

--- Run a command line; returns stdout, ok, exit code, stderr. stdin text optional.
function H.run(argv, stdin)
  local errf = os.tmpname()
  local parts = {}
  for i, a in ipairs(argv) do parts[i] = shquote(a) end
  local cmd = table.concat(parts, " ") .. " 2>" .. shquote(errf)
  if stdin then
    local inf = H.tmpfile(stdin, ".txt")
    cmd = cmd .. " <" .. shquote(inf)
  else
    cmd = cmd .. " </dev/null"
  end
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  local ok, _, code = p:close()
  local ef = io.open(errf, "rb")
  local err = ef and ef:read("a") or ""
  if ef then ef:close() end
  os.remove(errf)
  return out, ok == true, code, err
end

--- Run the ane host with arguments.
function H.ane(args, stdin)
  local argv = { H.ane_bin }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  return H.run(argv, stdin)
end

return H
