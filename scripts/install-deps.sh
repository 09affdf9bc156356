#!/usr/bin/env bash
# Install what `ane` needs from the distribution; idempotent, prints what it installs.
# Debian/Ubuntu: apt-get. macOS: Homebrew (Accelerate and libedit come with the OS).
set -euo pipefail

if [ "$(uname -s)" = Darwin ]; then
  need=()
  for f in lua luarocks pkg-config oniguruma utf8proc; do brew list "$f" >/dev/null 2>&1 || need+=("$f"); done
  if [ ${#need[@]} -gt 0 ]; then echo "install-deps: brew install ${need[*]}"; brew install "${need[@]}"; fi
  for r in luafilesystem lua-cjson busted; do
    luarocks --lua-version=5.4 show "$r" >/dev/null 2>&1 || { echo "install-deps: luarocks install $r"; luarocks --lua-version=5.4 install "$r"; }
  done
  echo "install-deps: all present"
  exit 0
fi

pkgs=(
  build-essential pkg-config
  lua5.4 liblua5.4-dev lua-filesystem lua-cjson lua-busted
  luarocks                  # `luarocks make` (ane-dev-1.rockspec) and its test, spec/luarocks_spec.sh
  libopenblas-dev libedit-dev
  libonig-dev libutf8proc-dev # tokenizer.json: Oniguruma regexes (as the Rust tokenizers crate), NFC
  gobjc libffi-dev          # Objective-C runtime (ANE stand-in, ane.objc) and libffi (ane.objc sends)
  clang libclang-rt-14-dev  # libFuzzer and sanitizers for `make fuzz`, `make test SANITIZE=1`
  python3-numpy             # reference script for `make bench` only
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then echo "install-deps: all present"; exit 0; fi
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "install-deps: apt-get install ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
