-- Two processes compiling the same program on the ane backend share NSTemporaryDirectory()/hex
-- (the hex is content-derived: ane-field-notes 9.1). Freeing the kernel in one must not remove
-- the directory under the other: the other still loads and evaluates, and the last user removes
-- it. Run on the stand-in with ANE_STANDIN_TMPDIR, which shares its temp directory between
-- processes the way Foundation's per-user one is shared on a Mac.
local H = require "helpers"

if not os.getenv("ANE_FRAMEWORK_PATH") then
  pending("two processes on one temp directory: needs the stand-in (ANE_FRAMEWORK_PATH)")
  return
end

-- role A compiles, waits for B to have compiled, frees its kernel and exits; role B compiles,
-- waits for A to be gone, then checks the directory, evaluates, reloads, evaluates, and frees.
local CHILD = [==[
local ane = require "ane"
local role, sync, wdir = arg[1], arg[2], arg[3]
local function touch(name) assert(io.open(sync .. "/" .. name, "w")):close() end
local function wait_for(name)
  for _ = 1, 3000 do
    local f = io.open(sync .. "/" .. name)
    if f then f:close() return end
    ane.sleep(0.01)
  end
  error(role .. ": timed out waiting for " .. name)
end
local function present(path)
  local f = io.open(path)
  if f then f:close() end
  return f and "present" or "gone"
end
local SRC = [[
program(1.3)
{
    func main<ios18>(tensor<fp16, [1, 4, 1, 8]> x) {
        tensor<fp16, [1, 4, 1, 1]> w = const()[name = string("w"), val = tensor<fp16, [1, 4, 1, 1]>(BLOBFILE(path = string("@model_path/weights/w.bin"), offset = uint64(64)))];
        tensor<fp16, [1, 4, 1, 8]> y = mul(x = x, y = w)[name = string("scale")];
    } -> (y);
}
]]
local k = ane.compile(SRC, { backend = "ane", model_path = wdir })
k:load()
local dir = k:ane_info().dir
print(role, "dir", dir)
touch(role .. ".compiled")
if role == "A" then
  wait_for("B.compiled")
  k:close()
  print(role, "freed", present(dir .. "/model.mil"))
  return
end
wait_for("A.compiled")
wait_for("A.done") -- the parent saw A exit
print(role, "after twin freed", present(dir .. "/model.mil"), present(dir .. "/weights/w.bin"))
local x = ane.from_table({ { { { 1, 2, 3, 4, 5, 6, 7, 8 } }, { { 1, 1, 1, 1, 1, 1, 1, 1 } },
  { { 2, 2, 2, 2, 2, 2, 2, 2 } }, { { -1, -1, -1, -1, -1, -1, -1, -1 } } } }, "fp16")
local function check()
  local y = k:eval { x }:to_table()[1]
  return y[1][1][3] == 1.5 and y[2][1][1] == 1 and y[3][1][1] == 3 and y[4][1][1] == -2
end
print(role, "eval", check())
k:unload()
k:load()
print(role, "reload+eval", check())
k:close()
print(role, "last freed", present(dir))
]==]

-- a one-tensor fp16 weight blob, values 0.5 1 1.5 2 (the layout of ane-private-api.md 3.1)
local function blob()
  local data = ""
  for _, h in ipairs { 0x3800, 0x3c00, 0x3e00, 0x4000 } do data = data .. string.pack("<I2", h) end
  return string.pack("<I4I4", 1, 2) .. string.rep("\0", 56)
      .. string.pack("<I4I4I8I8", 0xDEADBEEF, 1, #data, 128) .. string.rep("\0", 40)
      .. data .. string.rep("\0", 64 - #data)
end

describe("two processes compiling the same program on the ane backend", function()
  it("share the temp directory; freeing one leaves it to the other, the last removes it", function()
    local shared, sync, wdir = H.tmpdir(), H.tmpdir(), H.tmpdir("weights")
    H.write(wdir .. "/weights/w.bin", blob())
    local script = H.tmpfile(CHILD, ".lua")
    local function start(role)
      local cmd = ("ANE_STANDIN_TMPDIR=%s %s %s %s %s %s 2>&1"):format(H.shquote(shared), H.shquote(H.ane_bin),
        H.shquote(script), role, H.shquote(sync), H.shquote(wdir))
      return assert(io.popen(cmd, "r"))
    end
    local a, b = start("A"), start("B")
    local out_a = a:read("a")
    local ok_a = a:close()
    H.write(sync .. "/A.done", "")
    local out_b = b:read("a")
    local ok_b = b:close()
    assert(ok_a, out_a)
    assert(ok_b, out_b)
    local dir_a, dir_b = out_a:match("A\tdir\t([^\n]+)"), out_b:match("B\tdir\t([^\n]+)")
    assert.is_truthy(dir_a, out_a)
    assert.equal(dir_a, dir_b) -- one directory: the same hex under the shared temp dir
    assert.equal(shared .. "/", dir_a:sub(1, #shared + 1))
    assert.matches("A\tfreed\tpresent", out_a, 1, true)
    assert.matches("B\tafter twin freed\tpresent\tpresent", out_b, 1, true)
    assert.matches("B\teval\ttrue", out_b, 1, true)
    assert.matches("B\treload+eval\ttrue", out_b, 1, true)
    assert.matches("B\tlast freed\tgone", out_b, 1, true)
    -- nothing left behind: no directory, no lock file
    local left = io.popen("ls -A " .. H.shquote(shared)):read("a")
    assert.equal("", left)
    os.execute("rm -rf " .. H.shquote(shared) .. " " .. H.shquote(sync) .. " " .. H.shquote(wdir))
  end)
end)
