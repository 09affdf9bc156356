#!/usr/bin/env bash
# `luarocks make` installs ane into a fresh rocks tree, and stock lua5.4 with only that tree's
# paths does require "ane", compiles and evaluates a small program on the cpu backend.
# Run once by scripts/run-tests.sh (not under busted: it builds, and busted runs every spec twice).
# It reuses the suite's build: make reads BUILD and SANITIZE from the environment, so with an
# up-to-date build the rock's `make rock` has nothing to compile.
# Usage: spec/luarocks_spec.sh BUILD_DIR LUA_BIN "LUA_RUN_PREFIX" SANITIZE
set -eu
build=${1:-build}; lua=${2:-lua5.4}; lua_run=${3:-}; sanitize=${4:-}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tree=$(mktemp -d /tmp/ane-rocks.XXXXXX)
trap 'rm -rf "$tree"' EXIT

if ! env BUILD="$build" SANITIZE="$sanitize" luarocks --lua-version=5.4 make --tree "$tree" \
    ane-dev-1.rockspec >"$tree/make.log" 2>&1; then
  echo "luarocks make failed:"; cat "$tree/make.log"; exit 1
fi
for f in share/lua/5.4/ane/init.lua share/lua/5.4/ane/mil.lua share/lua/5.4/ane/cli/info.lua \
         lib/lua/5.4/ane/core.so; do
  [ -f "$tree/$f" ] || { echo "luarocks make did not install $f"; find "$tree" -type f; exit 1; }
done

cat >"$tree/check.lua" <<'LUA'
local tree = arg[1]
local ane = require "ane"
for _, m in ipairs { { "ane", package.path }, { "ane.core", package.cpath } } do
  local where = assert(package.searchpath(m[1], m[2]))
  assert(where:sub(1, #tree) == tree, m[1] .. " loaded from " .. where .. ", not the rocks tree")
end
local k <close> = ane.compile([[
program(1.3)
{
    func main<ios18>(tensor<fp32, [1, 3]> x) {
        tensor<fp32, [1, 3]> y = add(x = x, y = x)[name = string("dbl")];
    } -> (y);
}
]], { backend = "cpu" })
k:load()
local y = k:eval { ane.from_table({ { 1, 2.5, -4 } }, "fp32") }
local t = y:to_table()[1]
assert(t[1] == 2 and t[2] == 5 and t[3] == -8, "wrong result " .. tostring(y))
print("ok " .. ane.version .. " from " .. tree)
LUA
# only the tree's paths: nothing from the checkout or the system's Lua directories
# shellcheck disable=SC2086  # lua_run is a command prefix (env LD_PRELOAD=... under SANITIZE=1)
env -u LUA_PATH_5_4 -u LUA_CPATH_5_4 LUA_PATH="$tree/share/lua/5.4/?.lua;$tree/share/lua/5.4/?/init.lua" \
  LUA_CPATH="$tree/lib/lua/5.4/?.so" $lua_run "$lua" "$tree/check.lua" "$tree"
