#!/usr/bin/env bash
# selftest/c-test.sh PREFIX CC SOURCE [ARGS...]: a C test of tests/c/ that
# needs no Lua (tests/c/platform_h.c), built with CC (mingw-w64 for
# PREFIX's architecture) as C99 against src/ and tests/support/, and run
# under Wine in PREFIX's Wine prefix. Passes when it exits 0 and prints its
# tally ("N passed, 0 failed", tests/support/check.h).
set -euo pipefail

me=selftest/c-test.sh
if [ $# -lt 3 ] || [ ! -d "$1" ]; then
  echo "usage: $me PREFIX CC SOURCE [ARGS...]" >&2
  exit 2
fi
PREFIX=$(cd "$1" && pwd)
CC=$2
SOURCE=$3
shift 3
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WIN=$(cd "$HERE/.." && pwd)
ROOT=$(cd "$WIN/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export WINEPREFIX=${WINEPREFIX:-$PREFIX/wineprefix}

# shellcheck source=../wine-env.sh
. "$WIN/wine-env.sh"
exe=$work/$(basename "$SOURCE" .c).exe
"$CC" -std=c99 -Wall -Wextra -pedantic -Werror -I"$ROOT/src" \
  -I"$ROOT/tests/support" -o "$exe" "$SOURCE"
wine_quiet
status=0
wine_run "$work/out" '^[0-9]+ passed|^FAIL' wine "$exe" "$@" || status=$?
cat "$work/out"
if [ "$status" -ne 0 ]; then
  printf '%s: %s exited %s\n' "$me" "$(basename "$exe")" "$status"
  exit 1
fi
if ! grep -qE '^[0-9]+ passed, 0 failed' "$work/out"; then
  printf '%s: %s exited 0 without its tally: nothing ran\n' "$me" "$(basename "$exe")"
  exit 1
fi
