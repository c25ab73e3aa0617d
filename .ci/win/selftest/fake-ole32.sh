#!/usr/bin/env bash
# selftest/fake-ole32.sh PREFIX CC LUA_PATH LUA_CPATH: the module under Wine
# with an ole32.dll that lacks what the backend needs (fake-ole32.c), each
# variant built with CC (mingw-w64 for PREFIX's architecture) and put in a
# directory of links to PREFIX/bin/, beside lua.exe, where Windows looks for
# a DLL before its system directory; Wine is told to load that one
# (ole32=n). fake-ole32.lua checks what get and spy.start answer. Uses
# PREFIX's Wine prefix.
set -euo pipefail

me=selftest/fake-ole32.sh
if [ $# -ne 4 ] || [ ! -d "$1" ]; then
  echo "usage: $me PREFIX CC LUA_PATH LUA_CPATH" >&2
  exit 2
fi
PREFIX=$(cd "$1" && pwd)
CC=$2
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WIN=$(cd "$HERE/.." && pwd)
work=$(mktemp -d)
export WINEPREFIX=${WINEPREFIX:-$PREFIX/wineprefix}
export IMALLOC_WIN_LUA_PATH=$3 IMALLOC_WIN_LUA_CPATH=$4
failed=0

trap 'rm -rf "$work"' EXIT

variants=(noprocs nullmalloc spyfails nospy lateload)
for variant in "${variants[@]}"; do
  dir=$work/$variant
  mkdir -p "$dir/bin"
  ln -s "$PREFIX"/bin/* "$dir/bin/"
  define=()
  case $variant in
    nullmalloc) define=(-DFAKE_NULL_MALLOC) ;;
    spyfails) define=(-DFAKE_MALLOC -DFAKE_SPY_FAILS) ;;
    nospy) define=(-DFAKE_MALLOC) ;;
    lateload) continue ;;  # none: the script copies nospy's in
  esac
  "$CC" -shared -Wl,--kill-at -Wall -Wextra -Werror "${define[@]}" \
    -o "$dir/bin/ole32.dll" "$HERE/fake-ole32.c"
done

# shellcheck source=../wine-env.sh
. "$WIN/wine-env.sh"
# Wine's services must not start under ole32=n (wine-env.sh).
wine_services_up "$PREFIX"
export WINEDLLOVERRIDES=ole32=n
for variant in "${variants[@]}"; do
  dir=$work/$variant
  status=0
  args=()
  case $variant in
    spyfails | nospy) args=("$(winpath "$dir/counts")") ;;
    lateload)
      args=("$(winpath "$work/nospy/bin/ole32.dll")" "$(winpath "$dir/bin")"
            "$(winpath "$dir/counts")") ;;
  esac
  FAKE_OLE32_COUNTS=$(winpath "$dir/counts") \
    bash "$WIN/lua.sh" "$dir" "$HERE/fake-ole32.lua" "$variant" "${args[@]}" \
    >"$work/out" 2>&1 || status=$?
  if [ "$status" -eq 0 ] && grep -q "^fake ole32 ($variant)" "$work/out"; then
    grep "^fake ole32" "$work/out"
  else
    printf 'FAILED: %s (status %s)\n' "$variant" "$status"
    sed 's/^/  | /' "$work/out"
    failed=1
  fi
done
exit "$failed"
