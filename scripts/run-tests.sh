#!/usr/bin/env bash
# Runs the whole suite: C unit tests, the busted specs under stock lua5.4 and under the `ane`
# host, and a short fuzz run. Prints one closing line "N passed, N failed".
# Usage: scripts/run-tests.sh BUILD_DIR LUA_BIN "LUA_RUN_PREFIX" SANITIZE
set -u
build=${1:-build}; lua=${2:-lua5.4}; lua_run=${3:-}; sanitize=${4:-}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export ANE_ROOT="$root" ANE_BUILD="$root/$build"
export LUA_PATH="$root/lua/?.lua;$root/lua/?/init.lua;$root/spec/?.lua;;"
export LUA_CPATH="$root/$build/lua/?.so;;"
export ANE_HISTORY_FILE="$(mktemp -u /tmp/ane-test-history.XXXXXX)"
# Off macOS the ane backend has no framework by default: the tests load the stand-in on purpose.
[ "$(uname -s)" != Darwin ] && export ANE_FRAMEWORK_PATH="$root/$build/standin/libANEStandin.so"
[ "$sanitize" = 1 ] && export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
passed=0; failed=0

note() { printf '\n== %s\n' "$*"; }

note "C unit tests"
for t in "$build"/test/test_*; do
  [ -x "$t" ] || continue
  if out=$("$t" 2>&1); then
    passed=$((passed + 1)); printf 'ok   %s\n' "$(basename "$t")"
  else
    failed=$((failed + 1)); printf 'FAIL %s\n%s\n' "$(basename "$t")" "$out"
  fi
done

run_busted() { # label, interpreter command...
  local label=$1; shift
  note "busted specs under $label"
  local log; log=$(mktemp)
  "$@" /usr/bin/env busted --lua="$BUSTED_LUA" -o utfTerminal spec 2>&1 | tee "$log"
  local summary; summary=$(grep -aE '[0-9]+ successes? / [0-9]+ failures? / [0-9]+ errors?' "$log" | tail -1)
  if [ -z "$summary" ]; then failed=$((failed + 1)); echo "busted under $label printed no summary"; rm -f "$log"; return; fi
  local s f e
  s=$(echo "$summary" | sed -E 's/.*\b([0-9]+) successes?.*/\1/')
  f=$(echo "$summary" | sed -E 's/.* ([0-9]+) failures?.*/\1/')
  e=$(echo "$summary" | sed -E 's/.* ([0-9]+) errors?.*/\1/')
  passed=$((passed + s)); failed=$((failed + f + e))
  rm -f "$log"
}

BUSTED_LUA=$(command -v "$lua") run_busted "stock $lua" env $lua_run
BUSTED_LUA="$root/$build/ane" run_busted "the ane host" env

# Once, not under busted (it builds through the Makefile, and busted runs every spec twice).
note "luarocks make into a temporary rocks tree, then stock $lua loads it (spec/luarocks_spec.sh)"
if ! command -v luarocks >/dev/null; then
  failed=$((failed + 1)); echo "FAIL luarocks is not installed (scripts/install-deps.sh installs it)"
elif out=$(bash spec/luarocks_spec.sh "$build" "$lua" "$lua_run" "$sanitize" 2>&1); then
  passed=$((passed + 1)); printf 'ok   %s\n' "$(echo "$out" | tail -1)"
else
  failed=$((failed + 1)); printf 'FAIL luarocks_spec.sh\n%s\n' "$out"
fi

if [ -x "$build/fuzz/mil_fuzz" ]; then
  note "fuzz: MIL parser+checker, ${FUZZ_SECONDS:-5} s"
  if "$build/fuzz/mil_fuzz" -max_total_time="${FUZZ_SECONDS:-5}" -rss_limit_mb=2048 "$build/fuzz/corpus" spec/fixtures/fuzz >/tmp/ane-fuzz.log 2>&1; then
    passed=$((passed + 1)); tail -1 /tmp/ane-fuzz.log
  else
    failed=$((failed + 1)); tail -40 /tmp/ane-fuzz.log
  fi
fi

if [ -x "$build/fuzz/formats_fuzz" ]; then
  note "fuzz: llama2.c and tokenizer.bin readers, ${FUZZ_SECONDS:-5} s"
  mkdir -p "$build/fuzz/corpus_formats"
  if "$build/fuzz/formats_fuzz" -max_total_time="${FUZZ_SECONDS:-5}" -rss_limit_mb=2048 "$build/fuzz/corpus_formats" spec/fixtures/fuzz_formats >/tmp/ane-fuzz-formats.log 2>&1; then
    passed=$((passed + 1)); tail -1 /tmp/ane-fuzz-formats.log
  else
    failed=$((failed + 1)); tail -40 /tmp/ane-fuzz-formats.log
  fi
fi

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
