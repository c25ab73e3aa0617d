#!/usr/bin/env bash
# msvc.sh ARCH DEPS OUT: the MSVC-interface toolchain stand-in, for LuaRocks
# for Windows under Wine (.ci/win/rocks.sh msvc). No Wine runs here.
#
#   OUT/sdk/lib/                import libraries made here with llvm-dlltool
#                               (ucrtbase, kernel32, ole32), and msvcrt.lib =
#                               ucrtbase's imports + crt_start.c, which is what
#                               cl /MD asks the linker for; oldnames.lib (empty)
#   OUT/lua/                    Lua 5.4 built the same way from the source
#                               .ci/win/build-deps.sh fetched into DEPS/src:
#                               bin/lua.exe lua54.dll, lib/lua54.lib, include/;
#                               lib/lua/5.4/: busted's C modules, the same way;
#                               imalloc_testkit.dll, imalloc_peer.dll (tests)
#
# The C headers are Wine's (libwine-dev), which in MSVC mode (_MSC_VER,
# defined by clang-cl) are those of the Universal C Runtime; INCLUDE puts
# .ci/win/rocks/include first (declarations Wine's lack). clang-cl and
# lld-link read INCLUDE and LIB as cl and link do: rocks.sh sets them for
# LuaRocks as a Developer Command Prompt would, and puts cl.exe and link.exe
# (unixtool.exe running clang-cl-14 and lld-link-14) on its PATH. Idempotent: what is in OUT is
# kept (delete OUT to rebuild).
set -euo pipefail
me=msvc.sh
die() { printf '%s: error: %s\n' "$me" "$*" >&2; exit 1; }
[ $# -eq 3 ] || die "usage: $me x86_64|i686 DEPS OUT"
ARCH=$1
DEPS=$(cd "$2" && pwd)
mkdir -p "$3"
OUT=$(cd "$3" && pwd)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
case $ARCH in
  x86_64) TARGET=x86_64-pc-windows-msvc MACHINE=i386:x86-64 MINGW=x86_64-w64-mingw32 ;;
  i686) TARGET=i686-pc-windows-msvc MACHINE=i386 MINGW=i686-w64-mingw32 ;;
  *) die "unknown ARCH $ARCH" ;;
esac
for tool in clang-cl-14 lld-link-14 llvm-dlltool-14 llvm-lib-14 llvm-nm-14; do
  command -v $tool >/dev/null || die "$tool is missing (.ci/setup --windows installs clang-tools-14, lld-14, llvm-14)"
done
[ -d /usr/include/wine/wine/msvcrt ] || die "Wine's headers are missing (apt-get install libwine-dev)"
[ -f "$OUT/lua/bin/lua.exe" ] && [ -f "$OUT/lua/lib/lua/5.4/imalloc_peer.dll" ] && exit 0

export INCLUDE="$HERE/include;/usr/include/wine/wine/msvcrt;/usr/include/wine/wine/windows"
export LIB="$OUT/sdk/lib"
LOG=$OUT/msvc.log
: >"$LOG"
run() {
  if ! "$@" >>"$LOG" 2>&1; then
    tail -n 30 "$LOG" | sed 's/^/  | /' >&2
    die "failed: $*"
  fi
}
# cl [ARGS...] -- FILES...: clang-cl as LuaRocks' cl (its default CFLAGS).
# Files after `--`: an absolute Linux path would read as a /option.
cl() { run clang-cl-14 --target=$TARGET /nologo /MD /O2 "$@"; }
mkdir -p "$OUT/sdk/lib" "$OUT/obj"

# --- import libraries -------------------------------------------------------
# def MINGW_IMPORT_LIBRARY: a .def of the DLL's exports, named as the linker
# sees them, from the import members of mingw-w64's library for that DLL
# (on i686 with the @N of __stdcall, which llvm-dlltool -k leaves out of
# the names imported at run time).
def() {
  echo EXPORTS
  llvm-nm-14 "$1" 2>/dev/null | awk -v arch="$ARCH" '
    $2 == "I" && $3 ~ /^__imp_/ {
      e = substr($3, 7)
      if (arch == "i686") { if (e ~ /^_/) e = substr(e, 2); else next }
      if (e ~ /^[A-Za-z_][A-Za-z0-9_]*(@[0-9]+)?$/) print e
    }' | LC_ALL=C sort -u
}
implib() { # NAME DLL
  def "/usr/$MINGW/lib/lib$1.a" >"$OUT/sdk/lib/$1.def"
  run llvm-dlltool-14 -m $MACHINE -k -d "$OUT/sdk/lib/$1.def" -l "$OUT/sdk/lib/$1.lib" -D "$2"
}
implib ucrtbase ucrtbase.dll
implib kernel32 KERNEL32.dll
implib ole32 ole32.dll
# msvcrt.lib, as cl /MD names it: the C runtime DLL's imports and the
# static start-up parts (crt_start.c).
(cd "$OUT/obj" && cl -c -Focrt_start.obj -- "$HERE/crt_start.c" &&
  cl /DCRT_START_EXE -c -Focrt_start_exe.obj -- "$HERE/crt_start.c")
rm -f "$OUT/sdk/lib/msvcrt.lib" "$OUT/sdk/lib/oldnames.lib"
run llvm-lib-14 /out:"$OUT/sdk/lib/msvcrt.lib" "$OUT/sdk/lib/ucrtbase.lib" \
  "$OUT/obj/crt_start.obj" "$OUT/obj/crt_start_exe.obj"
# oldnames.lib maps POSIX names (strdup) to the CRT's (_strdup); ucrtbase's
# import library has both, so it is empty here.
printf '/* empty */\n' >"$OUT/obj/empty.c"
(cd "$OUT/obj" && cl -c -Foempty.obj empty.c)
run llvm-lib-14 /out:"$OUT/sdk/lib/oldnames.lib" "$OUT/obj/empty.obj"

# --- Lua 5.4 -------------------------------------------------------------------
src=$DEPS/src/lua5.4/tree/src
[ -f "$src/lua.c" ] || die "no Lua source in $DEPS/src/lua5.4 (.ci/win/build-deps.sh fetches it)"
L=$OUT/lua
mkdir -p "$L/bin" "$L/lib/lua/5.4" "$L/include" "$OUT/obj/lua"
core=(lapi lcode lctype ldebug ldo ldump lfunc lgc llex lmem lobject lopcodes lparser lstate
  lstring ltable ltm lundump lvm lzio lauxlib lbaselib lcorolib ldblib liolib lmathlib loadlib
  loslib lstrlib ltablib lutf8lib linit)
files=()
for f in "${core[@]}" lua; do files+=("$src/$f.c"); done
(cd "$OUT/obj/lua" && cl /W3 /DLUA_BUILD_AS_DLL /DLUA_COMPAT_5_3 -c -- "${files[@]}")
objs=()
for f in "${core[@]}"; do objs+=("$OUT/obj/lua/$f.obj"); done
run lld-link-14 /nologo /dll /out:"$L/bin/lua54.dll" /implib:"$L/lib/lua54.lib" "${objs[@]}"
run lld-link-14 /nologo /out:"$L/bin/lua.exe" "$OUT/obj/lua/lua.obj" "$L/lib/lua54.lib"
for f in lua.h luaconf.h lualib.h lauxlib.h lua.hpp; do cp "$src/$f" "$L/include/"; done
echo "$ARCH" >"$L/ARCH"
rm -f "$L/lib/lua54.exp"

# --- Lua C modules: busted's, and the specs' test modules ---------------------------
# dll MODULE SOURCES...: the Lua C module MODULE (a.b: a/b.dll) built by cl
# and link as LuaRocks builds one: a .def exporting luaopen_a_b.
dll() {
  local module=$1 out obj
  shift
  out=$L/lib/lua/5.4/${module//.//}.dll
  obj=$OUT/obj/$module
  mkdir -p "$(dirname "$out")" "$obj"
  printf 'EXPORTS\nluaopen_%s\n' "${module//./_}" >"$obj/module.def"
  (cd "$obj" && cl /I"$L/include" /I"$HERE/../../../src" -c -- "$@")
  run lld-link-14 /nologo /dll /def:"$obj/module.def" /out:"$out" "$obj"/*.obj \
    "$L/lib/lua54.lib" ole32.lib
  rm -f "${out%.dll}.lib" "${out%.dll}.exp"
}
lfs=$DEPS/src/lua-filesystem/tree/src/lfs.c
[ -f "$lfs" ] || lfs=$HERE/../replacements/lfs.c
term=$DEPS/src/lua-term/tree/core.c
[ -f "$term" ] || term=$HERE/../replacements/term_core.c
dll lfs "$lfs"
dll term.core "$term"
if [ -d "$DEPS/src/lua-system/tree/src" ]; then
  dll system.core "$DEPS/src/lua-system/tree/src"/*.c
else
  dll system.core "$HERE/../replacements/system_core.c"
fi
ROOT=$(cd "$HERE/../../.." && pwd)
dll imalloc_testkit "$ROOT/spec/testkit.c"
dll imalloc_peer "$ROOT/spec/peer.c"
