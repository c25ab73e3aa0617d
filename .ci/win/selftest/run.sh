#!/usr/bin/env bash
# selftest/run.sh PREFIX: check the Windows test chain end to end, quietly.
#  - cmake/mingw-w64-x86_64.cmake cross-builds a Lua C module (winselftest.dll)
#    against PREFIX's Lua and a test program that ctest runs through Wine;
#  - .ci/win/busted.sh runs spec/ (lfs, system.core, term.core, the module, ole32's
#    CoGetMalloc + IMalloc Alloc/GetSize/DidAlloc/Free) and must exit 0, with each
#    output handler busted's CI use needs;
#  - it runs failing/ and must exit non-zero, and crashing/ (an access violation in
#    the module) must exit non-zero too.
set -euo pipefail

me=selftest/run.sh
die() { printf '%s: error: %s\n' "$me" "$*" >&2; exit 1; }

if [ $# -ne 1 ] || [ ! -d "$1" ]; then die "usage: $me PREFIX (made by .ci/win/build-deps.sh)"; fi
PREFIX=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# quiet CMD...: no output unless it fails.
quiet() {
  if ! "$@" >"$work/out" 2>&1; then
    sed 's/^/  | /' "$work/out" >&2
    die "failed: $*"
  fi
}

quiet cmake -S "$HERE" -B "$work/build" -DIMALLOC_WIN_DEPS="$PREFIX" \
  -DCMAKE_TOOLCHAIN_FILE="$ROOT/cmake/mingw-w64-x86_64.cmake"
quiet cmake --build "$work/build"
export IMALLOC_WIN_LUA_CPATH="$work/build/?.dll"
# ctest's emulator gets the same Wine settings as busted.sh (its prefix exists
# once busted.sh has run).
quiet "$ROOT/.ci/win/busted.sh" "$PREFIX" "$HERE/spec"
(
  export WINEPREFIX=$PREFIX/wineprefix WINEDEBUG=-all WINEDLLOVERRIDES=winedbg.exe=d
  unset DISPLAY
  cd "$work/build" && quiet ctest --output-on-failure
)

for handler in plainTerminal utfTerminal TAP json junit gtest; do
  quiet "$ROOT/.ci/win/busted.sh" "$PREFIX" -o "$handler" "$HERE/spec"
done
grep -q '^ok 7 - ' <("$ROOT/.ci/win/busted.sh" "$PREFIX" -o TAP "$HERE/spec") ||
  die "TAP output lacks 'ok 7'"

status=0
"$ROOT/.ci/win/busted.sh" "$PREFIX" -o TAP "$HERE/failing" >"$work/out" 2>&1 || status=$?
if [ "$status" -eq 0 ] || ! grep -q '^not ok 2 - ' "$work/out"; then
  sed 's/^/  | /' "$work/out" >&2
  die "a failing spec gave status $status"
fi

status=0
"$ROOT/.ci/win/busted.sh" "$PREFIX" "$HERE/crashing" >"$work/out" 2>&1 || status=$?
if [ "$status" -eq 0 ] || ! grep -q '^wine: Unhandled page fault' "$work/out"; then
  sed 's/^/  | /' "$work/out" >&2
  die "a crashing spec gave status $status"
fi
