#!/usr/bin/env bash
# selftest/ran-nothing.sh PREFIX CC: lua.sh fails a run that ran nothing.
#  - a lua.exe that exits 0 without running Lua (what Wine does when it cannot
#    really start a program) must make lua.sh and busted.sh exit non-zero and
#    say that nothing ran;
#  - the real lua.exe of PREFIX must still pass a script's status through: 0 for
#    a script that returns or calls os.exit(0), 3 for os.exit(3), 1 for an error.
# CC is the mingw-w64 compiler of PREFIX's architecture. Uses PREFIX's Wine prefix.
set -euo pipefail

me=selftest/ran-nothing.sh
if [ $# -ne 2 ] || [ ! -d "$1" ]; then
  echo "usage: $me PREFIX CC" >&2
  exit 2
fi
PREFIX=$(cd "$1" && pwd)
CC=$2
WIN=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export WINEPREFIX=${WINEPREFIX:-$PREFIX/wineprefix}
failed=0

# expect STATUS PATTERN CMD...: CMD exits with STATUS (any non-zero for "!0") and,
# when PATTERN is not empty, prints a line matching it.
expect() {
  local want=$1 pattern=$2 got=0
  shift 2
  "$@" >"$work/out" 2>&1 || got=$?
  if { [ "$want" = '!0' ] && [ "$got" -ne 0 ]; } || [ "$got" = "$want" ]; then
    if [ -z "$pattern" ] || grep -qE "$pattern" "$work/out"; then
      printf 'ok: status %s: %s\n' "$got" "${*##*/}"
      return 0
    fi
  fi
  printf 'FAILED: wanted status %s%s, got %s: %s\n' "$want" \
    "${pattern:+ and /$pattern/}" "$got" "$*"
  sed 's/^/  | /' "$work/out"
  failed=1
}

mkdir -p "$work/empty/bin"
printf 'int main(void) { return 0; }\n' >"$work/exit0.c"
"$CC" -o "$work/empty/bin/lua.exe" "$work/exit0.c"
printf 'print("ran")\n' >"$work/prints.lua"
printf 'os.exit(0)\n' >"$work/exit0.lua"
printf 'os.exit(3)\n' >"$work/exit3.lua"
printf 'error("raised")\n' >"$work/error.lua"

expect '!0' 'nothing ran' bash "$WIN/lua.sh" "$work/empty" "$work/prints.lua"
expect '!0' 'nothing ran' bash "$WIN/busted.sh" "$work/empty" "$WIN/selftest/spec"
expect 0 '^ran' bash "$WIN/lua.sh" "$PREFIX" "$work/prints.lua"
expect 0 '' bash "$WIN/lua.sh" "$PREFIX" "$work/exit0.lua"
expect 3 '' bash "$WIN/lua.sh" "$PREFIX" "$work/exit3.lua"
expect 1 'raised' bash "$WIN/lua.sh" "$PREFIX" "$work/error.lua"
exit "$failed"
