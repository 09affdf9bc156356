-- Embedding: the example host app (examples/embed), the stock lua5.4 module, and an installed
-- tree (make install PREFIX=...) used three ways: the installed `ane`, stock lua5.4, and a C
-- program built with pkg-config against the installed library.
local H = require "helpers"

local embed_host = H.build .. "/examples/embed/host"
local experiment = H.root .. "/examples/embed/experiment.lua"
local lua_path = H.root .. "/lua/?.lua;" .. H.root .. "/lua/?/init.lua"

-- Stock lua5.4 is not instrumented: under SANITIZE=1 the module needs the ASan runtime
-- preloaded (the Makefile does the same for the busted run under lua5.4).
local function stock_lua(...)
  local cmd = { "env" }
  if H.build:match("build%-san$") then
    local lib = H.run({ os.getenv("CC") or "cc", "-print-file-name=libasan.so" }):gsub("%s+$", "")
    cmd[#cmd + 1] = "LD_PRELOAD=" .. lib
    cmd[#cmd + 1] = "ASAN_OPTIONS=detect_leaks=0"
  end
  for _, a in ipairs { ... } do cmd[#cmd + 1] = a end
  return cmd
end

describe("the embedding example", function()
  it("runs the Lua experiment and reads the fitted line back in C", function()
    local out, ok, code, err = H.run({ "env", "ANE_LUA_PATH=" .. lua_path, embed_host, experiment, "300" })
    assert.is_true(ok, err)
    assert.equal(0, code)
    local slope, intercept, loss = out:match("slope (%S+) intercept (%S+) loss (%S+) after 300 steps\n$")
    assert.is_not_nil(slope, out)
    -- the data is y = 3x - 1 plus noise of at most 0.05
    assert.is_true(math.abs(tonumber(slope) - 3) < 0.05, out)
    assert.is_true(math.abs(tonumber(intercept) + 1) < 0.05, out)
    assert.is_true(tonumber(loss) < 0.0025, out)
  end)

  it("reports an experiment's error with its traceback and exits 1", function()
    local f = H.tmpfile("local function check(n) assert(n > 1000, 'too few steps') end\ncheck(...)\n")
    local out, ok, code, err = H.run({ "env", "ANE_LUA_PATH=" .. lua_path, embed_host, f, "5" })
    assert.is_false(ok)
    assert.equal(1, code)
    assert.equal("", out)
    assert.matches("^host: experiment failed: " .. H.escape(f) .. ":1: too few steps\nstack traceback:", err)
    assert.matches("in local 'check'", err)
  end)

  it("reports a missing experiment file", function()
    local _, _, code, err = H.run({ embed_host, "/nonexistent/experiment.lua" })
    assert.equal(1, code)
    assert.matches("^host: cannot open /nonexistent/experiment%.lua", err)
  end)
end)

describe("stock lua5.4", function()
  it("loads the module with LUA_PATH/LUA_CPATH pointing into the build", function()
    local lua = os.getenv("ANE_STOCK_LUA") or "lua5.4"
    local out, ok, _, err = H.run(stock_lua("LUA_PATH=" .. lua_path .. ";;", "LUA_CPATH=" .. H.build .. "/lua/?.so;;",
      lua, "-e", "local ane = require 'ane' print(ane.version, package.searchpath('ane.core', package.cpath))"))
    assert.is_true(ok, err)
    assert.equal("0.1.0\t" .. H.build .. "/lua/ane/core.so\n", out)
  end)
end)

describe("make install", function()
  local prefix
  local sanitize = H.build:match("build%-san$") and "1" or H.build:match("build%-tsan$") and "thread" or ""

  setup(function()
    prefix = H.tmpdir()
    local out, ok, _, err = H.run({ "env", "-u", "MAKEFLAGS", "-u", "MAKELEVEL", "-u", "MFLAGS",
      "make", "-s", "-C", H.root, "install", "PREFIX=" .. prefix, "SANITIZE=" .. sanitize })
    assert(ok, "make install failed:\n" .. out .. err)
  end)

  teardown(function()
    if prefix then os.execute("rm -rf " .. H.shquote(prefix)) end
  end)

  it("installs binary, library, header, Lua modules, C module and pkg-config file", function()
    for _, f in ipairs { "bin/ane", "lib/libane.a", "include/ane.h", "share/lua/5.4/ane/init.lua",
      "share/lua/5.4/ane/cli/info.lua", "lib/lua/5.4/ane/core.so", "lib/pkgconfig/ane.pc" } do
      local fh = io.open(prefix .. "/" .. f, "rb")
      assert.is_not_nil(fh, "missing " .. f)
      fh:close()
    end
  end)

  -- An empty environment, except the sanitizers' own settings (suppressions) under SANITIZE.
  local function bare(...)
    local cmd = { "env", "-i" }
    for _, k in ipairs { "ASAN_OPTIONS", "LSAN_OPTIONS", "UBSAN_OPTIONS" } do
      if os.getenv(k) then cmd[#cmd + 1] = k .. "=" .. os.getenv(k) end
    end
    for _, a in ipairs { ... } do cmd[#cmd + 1] = a end
    return cmd
  end

  it("the installed ane finds its modules with no environment at all", function()
    local out, ok, _, err = H.run(bare(prefix .. "/bin/ane", "-e",
      "print(require('ane').version, package.searchpath('ane', package.path))"))
    assert.is_true(ok, err)
    assert.equal("0.1.0\t" .. prefix .. "/share/lua/5.4/ane/init.lua\n", out)
    out, ok, _, err = H.run(bare(prefix .. "/bin/ane", "info"))
    assert.is_true(ok, err)
    assert.matches("lua module +" .. H.escape(prefix) .. "/share/lua/5.4/ane/init.lua\n", out)
  end)

  it("stock lua5.4 loads the installed module through LUA_PATH/LUA_CPATH", function()
    local share = prefix .. "/share/lua/5.4"
    local out, ok, _, err = H.run(stock_lua("LUA_PATH=" .. share .. "/?.lua;" .. share .. "/?/init.lua",
      "LUA_CPATH=" .. prefix .. "/lib/lua/5.4/?.so", os.getenv("ANE_STOCK_LUA") or "lua5.4", "-e",
      "print(require('ane').version, package.searchpath('ane.core', package.cpath))"))
    assert.is_true(ok, err)
    assert.equal("0.1.0\t" .. prefix .. "/lib/lua/5.4/ane/core.so\n", out)
  end)

  it("builds the embedding example with pkg-config against the install and runs it", function()
    local pc = "PKG_CONFIG_PATH=" .. prefix .. "/lib/pkgconfig"
    local luadir = H.run({ "env", pc, "pkg-config", "--variable=luadir", "ane" }):gsub("%s+$", "")
    assert.equal(prefix .. "/share/lua/5.4", luadir)
    local work = H.tmpdir()
    assert(os.execute("cp " .. H.root .. "/examples/embed/* " .. H.shquote(work)))
    -- exactly the command examples/embed/Makefile documents, run in its folder, with no
    -- PKG_CONFIG_PATH in the environment (GNU Make 4.3 does not pass `make VAR=...` to $(shell))
    local out, ok, _, err = H.run({ "env", "-u", "MAKEFLAGS", "-u", "MAKELEVEL", "-u", "PKG_CONFIG_PATH", "sh", "-c",
      "cd " .. H.shquote(work) .. " && make " .. H.shquote(pc) })
    assert.is_true(ok, "build failed:\n" .. out .. err)
    out, ok, _, err = H.run({ "env", "ANE_LUA_PATH=" .. luadir .. "/?.lua;" .. luadir .. "/?/init.lua",
      work .. "/host", work .. "/experiment.lua", "100" })
    os.execute("rm -rf " .. H.shquote(work))
    assert.is_true(ok, err)
    assert.matches("^host: ane 0%.1%.0 %(Lua 5%.4, fp16 %w+%): slope .* after 100 steps\n$", out)
  end)
end)
