# shellcheck shell=bash
# wine-env.sh: what the scripts that run Windows programs under Wine share
# (lua.sh, selftest/*.sh), sourced by each after it sets `me`, its name for
# messages. Defines no variable of the caller's but WINE_START_LOST.

# winpath UNIXPATH: the same file seen from Windows through Wine's Z: drive.
winpath() { local p=${1//\//\\}; printf 'Z:%s' "$p"; }

# wintemplates 'a;b;...': each entry starting with '/' as a Z: path, ';'
# after each (empty entries dropped).
wintemplates() {
  local entry out='' IFS=';'
  for entry in $1; do
    [ -n "$entry" ] || continue
    case $entry in /*) entry=$(winpath "$entry") ;; esac
    out+="$entry;"
  done
  printf '%s' "$out"
}

# wine_quiet: the environment of every run here. No Wine debug output
# (IMALLOC_WIN_WINEDEBUG, e.g. warn+heap, says otherwise), no Mono/Gecko
# install prompt (they would be downloaded), no menu entries, no display;
# and no winedbg unless IMALLOC_WIN_WINEDBG=1: a crash then ends the program
# with the exception code's low byte as status (0xC0000005 -> 5) and a
# one-line report on stderr, where winedbg would print its backtrace on
# stdout and end the process with status 0. WINEDLLOVERRIDES already set
# is kept after these.
wine_quiet() {
  local disable=mscoree,mshtml,winemenubuilder.exe
  [ "${IMALLOC_WIN_WINEDBG:-}" = 1 ] || disable+=,winedbg.exe
  export WINEDEBUG=${IMALLOC_WIN_WINEDEBUG:--all}
  export WINEDLLOVERRIDES="$disable=d${WINEDLLOVERRIDES:+;$WINEDLLOVERRIDES}"
  unset DISPLAY WAYLAND_DISPLAY
}

# Wine's start of a process can lose to address-space randomization: a
# mapping already sits where Windows keeps its shared user data page, and
# the new process ends ("failed to map the shared user data", an err: line
# that WINEDEBUG=-all hides) before any of its code runs; the start.exe
# that Wine runs to create it then says "ShellExecuteEx failed". Seen once
# in about 600 runs of the suite. So can a start that reached the server as
# it was ending (it stays 5 s after its last client, and runs in parallel
# share it): "wine client error:0: recvmsg: Connection reset by peer", seen
# once in a CI run of 710 tests. Such a start, and only one that left no
# sign of the program running, is tried again, at most twice: nothing
# tested had run.
WINE_START_LOST='failed to map the shared user data|ShellExecuteEx failed|wine client error:[0-9]+: recvmsg: Connection reset by peer'

# wine_run OUT SIGN CMD...: runs CMD (wine PROGRAM ...) with no input, its
# stdout and stderr in the file OUT, and returns its status. A run that
# failed with no line of OUT matching SIGN (a line only the program writes;
# empty: none) and with a lost start in OUT is run again, 3 runs at most.
wine_run() {
  local out=$1 sign=$2 attempt status
  shift 2
  for attempt in 1 2 3; do
    status=0
    "$@" </dev/null >"$out" 2>&1 || status=$?
    if [ "$status" -ne 0 ] && [ "$attempt" -lt 3 ] &&
       ! { [ -n "$sign" ] && grep -qE "$sign" "$out"; } &&
       grep -qE "$WINE_START_LOST" "$out"; then
      printf '%s: Wine lost the start of %s; starting it again\n' "${me:-wine-env.sh}" "$2" >&2
      continue
    fi
    break
  done
  return "$status"
}

# wine_services_up PREFIX: starts Wine's server and its services
# (winedevice.exe...) with a plain run of PREFIX's Lua. A program run under
# ole32=n would otherwise start them, and they would load the fake ole32
# and hang or abort for the programs of later tests; the runs that follow
# at once find that server up (it stays 5 s after its last program, and
# such tests run alone: RUN_SERIAL).
wine_services_up() {
  local up
  up=$(mktemp --suffix=.lua)
  printf 'print("up")\n' >"$up"
  bash "$(dirname "${BASH_SOURCE[0]}")/lua.sh" "$1" "$up" >/dev/null
  rm -f "$up"
}
