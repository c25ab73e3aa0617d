#!/usr/bin/env bash
# unixtool.sh WINEPREFIX TOOL [ARG...] -- STATUS_FILE [ARG...]: the Linux side
# of unixtool.exe (unixtool.c). A NAME.sh beside NAME.exe calls it; it runs
# TOOL with its fixed ARGs, then the arguments a Windows program gave
# NAME.exe, with Windows paths turned into Linux ones, and writes TOOL's exit
# status into STATUS_FILE (a Windows path) for unixtool.exe to return.
#
# Paths: every '\' becomes '/', then 'Z:/' (Wine's drive for '/') becomes '/'
# and 'C:/' the prefix's drive_c, wherever they appear in an argument
# (-IZ:\x, -FoZ:\x.obj, -out:C:\...); an argument that is a path alone
# becomes relative to the current directory. TOOL's standard output goes to
# STATUS_FILE.out, which unixtool.exe copies to its own. The INCLUDE and LIB variables, which
# cl and link read (the Developer Command Prompt sets them), are translated
# the same way, entry by entry.
set -uo pipefail
prefix=$1
shift
tool=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do tool+=("$1"); shift; done
shift
status_file=$1
shift

export PATH=/usr/local/bin:/usr/bin:/bin
cdrive=$(readlink -f "$prefix/dosdevices/c:")

unix() {
  local a=${1//\\//}
  a=${a//[Zz]:\//\/}
  a=${a//[Cc]:\//$cdrive\/}
  printf '%s' "$a"
}

# list VALUE: a ';'-separated list of Windows paths, as Linux paths (';').
list() {
  local entry out='' IFS=';'
  for entry in $1; do
    [ -n "$entry" ] && out+="$(unix "$entry");"
  done
  printf '%s' "${out%;}"
}
if [ -n "${INCLUDE:-}" ]; then INCLUDE=$(list "$INCLUDE"); export INCLUDE; fi
if [ -n "${LIB:-}" ]; then LIB=$(list "$LIB"); export LIB; fi

# An argument that is a whole absolute Windows path becomes a relative one:
# clang-cl and lld-link would read /work/x as an option.
args=()
for a in "$@"; do
  case $a in
    [A-Za-z]:[\\/]*) args+=("$(realpath -m --relative-to=. "$(unix "$a")")") ;;
    *) args+=("$(unix "$a")") ;;
  esac
done
status_file=$(unix "$status_file")
# Standard output to a file that unixtool.exe copies to its own (no Windows
# pipe reaches a Linux process).
"${tool[@]}" "${args[@]}" </dev/null >"$status_file.out"
status=$?
# Complete before it is seen: unixtool.exe reads the file until it holds a number.
printf '%d\n' "$status" >"$status_file.tmp" && mv -f "$status_file.tmp" "$status_file"
exit "$status"
