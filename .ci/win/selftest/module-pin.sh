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

# winpath PATH: the same file seen from Windows through Wine's Z: drive.
winpath() { local p=${1//\//\\}; printf 'Z:%s' "$p"; }
# wintemplate 'a;b': each entry starting with '/' as a Z: path.
wintemplate() {
  local entry out='' IFS=';'
  for entry in $1; do
    case $entry in /*) entry=$(winpath "$entry") ;; esac
    out+="${out:+;}$entry"
  done
  printf '%s' "$out"
}
lua_path=$(wintemplate "$3")
lua_cpath=$(wintemplate "$4")

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

# Wine's services must not start under ole32=n (fake-ole32.sh says why): a
# plain run starts them, and the runs follow while that server is up (the
# test runs alone: RUN_SERIAL).
printf 'print("up")\n' >"$work/up.lua"
bash "$WIN/lua.sh" "$PREFIX" "$work/up.lua" >/dev/null

# As lua.sh runs lua.exe: no Wine debug output, no Mono/Gecko, no winedbg (a
# crash is a non-zero status), no display; and a start that Wine lost before
# any of the host's code ran (lua.sh's start_lost) is tried again, twice.
export WINEDEBUG=-all
unset DISPLAY WAYLAND_DISPLAY
start_lost='failed to map the shared user data|ShellExecuteEx failed|wine client error:[0-9]+: recvmsg: Connection reset by peer'
disable='mscoree,mshtml,winemenubuilder.exe,winedbg.exe=d'
for variant in "${variants[@]}"; do
  dir=$work/$variant
  overrides=$disable
  [ "$variant" = unloaded ] && overrides+=';ole32=n'
  for attempt in 1 2 3; do
    status=0
    WINEDLLOVERRIDES=$overrides wine "$dir/bin/module-pin.exe" \
      "$lua_path" "$lua_cpath" "$variant" </dev/null >"$work/out" 2>&1 ||
      status=$?
    if [ "$status" -ne 0 ] && ! grep -q '^module pin\|^FAIL' "$work/out" &&
       grep -qE "$start_lost" "$work/out" && [ "$attempt" -lt 3 ]; then
      printf '%s: Wine lost the start of module-pin.exe; starting it again\n' "$me" >&2
      continue
    fi
    break
  done
  if [ "$status" -eq 0 ] && grep -q "^module pin ($variant)" "$work/out"; then
    grep "^module pin" "$work/out"
  else
    printf 'FAILED: %s (status %s)\n' "$variant" "$status"
    sed 's/^/  | /' "$work/out"
    failed=1
  fi
done
exit "$failed"
