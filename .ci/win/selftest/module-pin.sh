#!/usr/bin/env bash
# selftest/module-pin.sh PREFIX CC LUA_PATH LUA_CPATH: imalloc/core.dll after
# lua_close, under Wine. module-pin.c, a host of PREFIX's Lua 5.4 built with
# CC (mingw-w64 for PREFIX's architecture), opens a state, requires imalloc,
# calls spy.start and closes the state, then asks whether the DLL is loaded:
#   pinned    with Wine's own ole32, whose CoRegisterMallocSpy takes the spy:
#             the module pinned itself (ole32 would call the spy after the
#             unload otherwise);
#   unloaded  with fake-ole32.c's spyfails variant (FAKE_MALLOC,
#             FAKE_SPY_FAILS) beside the host, loaded instead of Wine's
#             (ole32=n): the registration failed, so nothing pinned the
#             module and lua_close unloaded it.
# Each host sits in a directory of links to PREFIX/bin/ (lua54.dll), as the
# fake ole32s of fake-ole32.sh do. Uses PREFIX's Wine prefix.
set -euo pipefail

me=selftest/module-pin.sh
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
failed=0

trap 'rm -rf "$work"' EXIT

# shellcheck source=../wine-env.sh
. "$WIN/wine-env.sh"
lua_path=$(wintemplates "$3")
lua_cpath=$(wintemplates "$4")

variants=(pinned unloaded)
for variant in "${variants[@]}"; do
  dir=$work/$variant
  mkdir -p "$dir/bin"
  ln -s "$PREFIX"/bin/* "$dir/bin/"
  "$CC" -std=c99 -Wall -Wextra -pedantic -Werror -I"$PREFIX/include" \
    -o "$dir/bin/module-pin.exe" "$HERE/module-pin.c" "$PREFIX/lib/liblua54.dll.a"
  if [ "$variant" = unloaded ]; then
    "$CC" -shared -Wl,--kill-at -Wall -Wextra -Werror -DFAKE_MALLOC \
      -DFAKE_SPY_FAILS -o "$dir/bin/ole32.dll" "$HERE/fake-ole32.c"
  fi
done

# Wine's services must not start under ole32=n (wine-env.sh).
wine_services_up "$PREFIX"
wine_quiet
quiet=$WINEDLLOVERRIDES
for variant in "${variants[@]}"; do
  dir=$work/$variant
  export WINEDLLOVERRIDES=$quiet
  [ "$variant" = unloaded ] && WINEDLLOVERRIDES+=';ole32=n'
  status=0
  wine_run "$work/out" '^module pin|^FAIL' wine "$dir/bin/module-pin.exe" \
    "$lua_path" "$lua_cpath" "$variant" || status=$?
  if [ "$status" -eq 0 ] && grep -q "^module pin ($variant)" "$work/out"; then
    grep "^module pin" "$work/out"
  else
    printf 'FAILED: %s (status %s)\n' "$variant" "$status"
    sed 's/^/  | /' "$work/out"
    failed=1
  fi
done
exit "$failed"
