#!/usr/bin/env bash
# lua.sh PREFIX SCRIPT [args...]: run a Lua script with the Windows Lua of
# .ci/win/build-deps.sh PREFIX, under Wine, and exit with its exit code.
# Debian's pure-Lua modules (/usr/share/lua/5.4: busted, penlight, ...) and
# the cross-built C modules in PREFIX are on the Lua paths.
#
# Environment:
#   IMALLOC_WIN_LUA_PATH, IMALLOC_WIN_LUA_CPATH  ';'-separated templates put in front
#       of package.path / package.cpath, e.g. "$PWD/build-win/?.dll". Entries that
#       start with '/' are turned into Wine's Z: drive paths; others are kept as they are.
#   IMALLOC_WIN_WINEDEBUG  Wine's WINEDEBUG for the run (default -all), e.g.
#       warn+heap: heap checking, whose heap delays frees (the wine-heapcheck tests).
#   WINEPREFIX  the Wine prefix to use (default PREFIX/wineprefix, made on first use;
#       for LuaJIT's PREFIX/luajit, PREFIX's).
# No X display is needed; DISPLAY is unset for Wine. A status 0 with no sign
# that Lua ran the script (see "sentinel" below) becomes 1: nothing ran.
set -euo pipefail

me=lua.sh
die() { printf '%s: error: %s\n' "$me" "$*" >&2; exit 2; }

if [ $# -lt 1 ] || [ -z "$1" ]; then die "usage: $me PREFIX [busted args...]"; fi
[ -d "$1" ] || die "no such directory: $1 (run .ci/win/build-deps.sh $1 first)"
PREFIX=$(cd "$1" && pwd)
script=$2
shift 2
# PREFIX/luajit of build-deps.sh holds LuaJIT (luajit.exe, modules for 5.1).
LUA_EXE=$PREFIX/bin/lua.exe LUA_V=5.4
[ -f "$PREFIX/bin/luajit.exe" ] && LUA_EXE=$PREFIX/bin/luajit.exe LUA_V=5.1
[ -f "$LUA_EXE" ] || die "$LUA_EXE is missing (run .ci/win/build-deps.sh $PREFIX first)"
[ -d /usr/share/lua/$LUA_V/busted ] || die "Debian's busted is missing (apt-get install lua-busted)"
command -v wine >/dev/null || die "wine is missing (apt-get install wine wine64)"

# winpath, wintemplates, wine_quiet, wine_run, WINE_START_LOST
# shellcheck source=wine-env.sh
. "$(dirname "${BASH_SOURCE[0]}")/wine-env.sh"

# A Wine prefix belongs to an architecture, not to a Lua: LuaJIT's PREFIX/luajit
# (no ARCH file of its own) shares the prefix of the PREFIX that holds it. One
# prefix is about 700 MB and several seconds of wineboot: make it once.
home=$PREFIX
if [ ! -f "$PREFIX/ARCH" ] && [ -f "$PREFIX/../ARCH" ]; then home=$(cd "$PREFIX/.." && pwd); fi
export WINEPREFIX=${WINEPREFIX:-$home/wineprefix}
# A 32-bit PREFIX (build-deps.sh PREFIX i686) runs in a 32-bit Wine prefix, which
# needs Debian's wine32:i386: without it, Wine "runs" a 32-bit exe by doing nothing.
if [ "$(cat "$home/ARCH" 2>/dev/null)" = i686 ]; then
  export WINEARCH=win32
  [ -x /usr/lib/wine/wine ] ||
    die "$LUA_EXE is 32-bit and 32-bit Wine is not installed (wine32:i386, see .ci/setup)"
fi
wine_quiet

# What a failed wineboot needs to be understood: the room left on the prefix's
# file system and in memory (a full disk leaves a prefix without its DLLs).
resources() {
  df -h "$(dirname "$WINEPREFIX")" | sed 's/^/  | /'
  grep -E '^(MemAvailable|CommitLimit|Committed_AS):' /proc/meminfo | sed 's/^/  | /'
}

# make_prefix: wineboot -i into an empty WINEPREFIX. On failure, prints Wine's
# output and removes the half-made prefix, so that no later run finds a
# system.reg in a prefix that cannot start a program.
make_prefix() {
  local log status=0
  log=$(mktemp)
  { wineboot -i && wineserver -w; } >"$log" 2>&1 || status=$?
  if [ "$status" -ne 0 ]; then
    sed 's/^/  | /' "$log" >&2
    resources >&2
    wineserver -k >/dev/null 2>&1 || true
    rm -rf "$WINEPREFIX"
  fi
  rm -f "$log"
  return "$status"
}

# First use: create the prefix once, even when several runs start together.
# A failure is reported with its cause; a second attempt follows, because
# what breaks wineboot here (memory or disk taken by a concurrent run for a
# moment) is a fault of the machine, not of what is tested.
if [ ! -f "$WINEPREFIX/system.reg" ]; then
  mkdir -p "$(dirname "$WINEPREFIX")"
  (
    flock 9
    if [ ! -f "$WINEPREFIX/system.reg" ]; then
      if ! make_prefix; then
        printf '%s: wineboot -i failed for WINEPREFIX=%s (above); trying once more\n' \
          "$me" "$WINEPREFIX" >&2
        make_prefix || die "wineboot -i failed twice for WINEPREFIX=$WINEPREFIX"
      fi
    fi
  ) 9>"$WINEPREFIX.lock"
fi

# Start Wine's server and its services (services.exe, winedevice.exe, ...) with
# stdio on /dev/null before lua.exe runs: the process that starts them hands them
# its stdout and stderr, which they keep open as long as the server runs. A caller
# reading lua.exe's output through a pipe (ctest, `| tee`, the stderr watch below)
# would otherwise wait for the server to end: until the last concurrent run in the
# same prefix ends, or forever with a persistent server (`wineserver -p`). The
# server then stays 5 s after its last client, so the run below finds it up.
wineserver -p5 </dev/null >/dev/null 2>&1 || true  # fails if one runs already

# lua.exe starts at all (a start that Wine lost is tried again: wine-env.sh).
probe=0
probe_out=$(mktemp)
wine_run "$probe_out" "" wine "$LUA_EXE" -e "" || probe=$?
if [ "$probe" -ne 0 ]; then
  sed 's/^/  | /' "$probe_out" >&2
  rm -f "$probe_out"
  resources >&2
  die "$LUA_EXE does not start under Wine (WINEPREFIX=$WINEPREFIX)"
fi
rm -f "$probe_out"

# The script as Windows sees it: an absolute Unix path through Z:, a relative
# one as it is (Wine starts in the current directory).
case $script in /*) script=$(winpath "$script") ;; esac

# Lua's 5.4-specific variables win over LUA_PATH/LUA_CPATH: set them, and drop any
# Linux values that would otherwise leak into Windows Lua. LuaJIT reads the plain
# LUA_PATH and LUA_CPATH.
unset LUA_PATH LUA_CPATH LUA_INIT LUA_INIT_5_4
share=$(winpath /usr/share/lua/$LUA_V)
cmod=$(winpath "$PREFIX/lib/lua/$LUA_V")
lua_path="$(wintemplates "${IMALLOC_WIN_LUA_PATH:-}")$share\\?.lua;$share\\?\\init.lua;;"
lua_cpath="$(wintemplates "${IMALLOC_WIN_LUA_CPATH:-}")$cmod\\?.dll;;"
if [ "$LUA_V" = 5.4 ]; then
  export LUA_PATH_5_4=$lua_path LUA_CPATH_5_4=$lua_cpath
else
  export LUA_PATH=$lua_path LUA_CPATH=$lua_cpath
fi

# Copy Wine's stderr through, noting whether it reported an unhandled exception.
crashed=$(mktemp)
# What the Lua side wrote to prove it ran: "started" before the script, then
# "exit" (os.exit) or "closed" (lua_close after the script returned). Wine can
# end with status 0 having run nothing (an exe that does not start, a Lua that
# is not Lua); a 0 without both marks is a failure.
ran=$(mktemp)
# Whether Wine's stderr showed the lost start above.
lost=$(mktemp)
trap 'rm -f "$crashed" "$ran" "$lost"' EXIT
export IMALLOC_WIN_RAN
IMALLOC_WIN_RAN=$(winpath "$ran")
# One chunk run by `lua.exe -e` before the script; its locals stay its own.
# shellcheck disable=SC2016 # Lua code, not shell
sentinel='local path = os.getenv("IMALLOC_WIN_RAN")
local function mark(what)
  local f = path and io.open(path, "ab")  -- binary: no \r
  if f then f:write(what, "\n") f:close() end
end
mark("started")
local exit = os.exit
os.exit = function(...) mark("exit") return exit(...) end
-- run by lua_close: a table'"'"'s __gc, or a userdata'"'"'s in LuaJIT (no __gc on tables)
local closed, keep = function() mark("closed") end, nil
if newproxy then
  keep = newproxy(true)
  getmetatable(keep).__gc = closed
else
  keep = setmetatable({}, { __gc = closed })
end
debug.getregistry()["imalloc.lua.sh"] = keep'
watch_stderr() {
  local line
  while IFS= read -r line || [ -n "$line" ]; do
    printf '%s\n' "$line" >&2
    case $line in 'wine: Unhandled '*) printf x >"$crashed" ;; esac
    if [[ $line =~ $WINE_START_LOST ]]; then printf x >"$lost"; fi
  done
}
# The script's run, tried again likewise when Wine lost its start (the
# stderr watch sees the sign, and Lua left no mark of having started).
attempts=3
for attempt in $(seq "$attempts"); do
  : >"$crashed"; : >"$ran"; : >"$lost"
  status=0
  exec 3>&1
  wine "$LUA_EXE" -e "$sentinel" "$script" "$@" 2>&1 >&3 3>&- | watch_stderr 3>&- ||
    status=${PIPESTATUS[0]}
  exec 3>&-
  if [ -s "$lost" ] && ! grep -qx started "$ran" && [ "$attempt" -lt "$attempts" ]; then
    printf '%s: Wine could not create the %s process, nothing ran; starting it again\n' \
      "$me" "$LUA_EXE" >&2
    continue
  fi
  break
done
if [ -s "$crashed" ] && [ "$status" -eq 0 ]; then
  printf '%s: lua.exe crashed (see above) but Wine gave status 0; exiting 1\n' "$me" >&2
  status=1
fi
if [ "$status" -eq 0 ]; then
  if ! grep -qx started "$ran"; then
    printf '%s: %s exited 0 but never started Lua: nothing ran; exiting 1\n' \
      "$me" "$LUA_EXE" >&2
    status=1
  elif ! grep -qxE 'exit|closed' "$ran"; then
    printf '%s: %s exited 0 before the script ended; exiting 1\n' "$me" "$LUA_EXE" >&2
    status=1
  fi
fi
exit "$status"
