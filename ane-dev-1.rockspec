-- LuaRocks: `luarocks make` in this directory builds ane.core (the C core, as `make` does) and
-- installs it with the Lua half (lua/ane/*) into a rocks tree; then stock lua5.4 does
-- `require "ane"`. The build goes through the Makefile (targets `rock` and `rock-install`,
-- mk/rock.mk), so it uses the same sources, flags and build directory as `make`.
rockspec_format = "3.0"
package = "ane"
version = "dev-1"
source = {
  url = "git+file://.", -- built from a checkout with `luarocks make`; nothing is fetched
}
description = {
  summary = "A Lua 5.4 runtime for Apple Neural Engine research",
  detailed = [[
MIL programs (parse, check, build, print), tensors with fp16 and .npy, a CPU backend with the
ANE's numerics and an ANE backend through Apple's private framework (macOS only; elsewhere it
reports itself unavailable), background compile queues. See README.md.
]],
}
dependencies = {
  "lua >= 5.4, < 5.5",
}
build = {
  type = "make",
  build_target = "rock",
  build_variables = {
    LUA_CFLAGS = "-I$(LUA_INCDIR)",   -- the Lua headers LuaRocks found (the Makefile's pkg-config otherwise)
    EXTRA_CFLAGS = "$(CFLAGS)",
  },
  install_target = "rock-install",
  install_variables = {
    LUADIR = "$(LUADIR)",             -- lua/ane/** goes here (deployed to TREE/share/lua/5.4)
    LIBDIR = "$(LIBDIR)",             -- ane/core.so goes here (deployed to TREE/lib/lua/5.4)
  },
}
