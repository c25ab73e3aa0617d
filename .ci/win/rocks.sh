#!/usr/bin/env bash
# .ci/win/rocks.sh STEP ARCH DEPS TESTKIT OUT: LuaRocks for Windows under Wine,
# as a Windows user runs it, on the rockspec of this checkout:
#   mingw          `luarocks make` with mingw-w64 (mingw32-gcc on PATH, as in
#                  MSYS2; LuaRocks' mingw defaults); the module must need no
#                  DLL of gcc's (libgcc_s_*), which is not on PATH
#   msvc           `luarocks make` in a Developer Command Prompt's environment
#                  (cl and link on PATH, INCLUDE, LIB, VCINSTALLDIR): clang-cl and
#                  lld-link with Wine's headers, against a Lua built the same way
#                  (rocks/msvc.sh); then `luarocks pack` of the installed rock: the
#                  binary rock OUT/rocks/5.4/imalloc-scm-1.win32-ARCH.rock, which
#                  needs no compiler's runtime DLL (mingw's build needs gcc's)
#   binary         `luarocks install` of the binary rock that `msvc` packed, with
#                  no compiler on PATH, for the Lua of DEPS (built by mingw-w64)
#   luajit-mingw, luajit-msvc, luajit-binary   the same for LuaJIT (x86_64):
#                  its binary rock is OUT/rocks/5.1/imalloc-scm-1.win32-x86_64.rock
# each followed by the demo (examples/flow.lua) and spec files run by that Lua
# with the module from the tree LuaRocks installed into (rocks/where.lua
# checks it comes from there). ARCH: x86_64 or i686. DEPS: the Windows Lua of
# .ci/win/build-deps.sh (its Wine prefix is used, as by the Wine specs).
# TESTKIT: the directory of the CMake build's imalloc_testkit.dll and
# imalloc_peer.dll for that Lua (test modules the specs need; for msvc,
# rocks/msvc.sh builds its own). OUT: this ARCH's work directory, e.g.
# build/rocks/x86_64. All Windows commands of a STEP run in one Wine session
# (OUT/run-STEP/steps.bat, the commands of docs/windows.md); the exit status is 0 only if
# every one of them succeeded and their output shows it.
set -euo pipefail
me=rocks.sh
die() { printf '%s: error: %s\n' "$me" "$*" >&2; exit 1; }
[ $# -eq 5 ] || die "usage: $me [luajit-]mingw|msvc|binary x86_64|i686 DEPS TESTKIT OUT"
STEP=$1 ARCH=$2
DEPS=$(cd "$3" && pwd)
TESTKIT=$(cd "$4" && pwd)
mkdir -p "$5"
OUT=$(cd "$5" && pwd)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
R=$HERE/rocks
case $ARCH in
  x86_64) TRIPLET=x86_64-w64-mingw32 ROCKARCH=win32-x86_64 ;;
  i686) TRIPLET=i686-w64-mingw32 ROCKARCH=win32-x86 ;;
  *) die "unknown ARCH $ARCH" ;;
esac
export WINEPREFIX=${WINEPREFIX:-$DEPS/wineprefix}
win() { local p=${1//\//\\}; printf 'Z:%s' "$p"; }
# The spec files run from each installed tree (all of them run against the
# CMake build in wine-spec-*): loading, the handle, the article's flow, and
# blocks crossing to another module (imalloc_peer).
SPECS=
for f in module/functions handle/get docs/flow_example memory/crossing; do SPECS+=" $(win "$ROOT/spec/${f}_spec.lua")"; done

# unixtool DIR NAME COMMAND...: DIR/NAME.exe, which Windows programs find on
# PATH, runs COMMAND with their arguments on the Linux side (rocks/unixtool.c).
unixtool() {
  local dir=$1 name=$2
  shift 2
  mkdir -p "$dir"
  cp "$W/unixtool.exe" "$dir/$name.exe"
  {
    echo '#!/bin/sh'
    printf 'exec bash %q %q' "$R/unixtool.sh" "$WINEPREFIX"
    printf ' %q' "$@"
    echo ' -- "$@"'
  } >"$dir/$name.sh"
  chmod +x "$dir/$name.sh"
}
W=$OUT/run-$STEP
rm -rf "$W"
mkdir -p "$W/src"
# Everything a step runs is in its own W: steps run in parallel under ctest.
"$TRIPLET-gcc" -std=c99 -O2 -Wall -Wextra -pedantic -Werror -s -o "$W/unixtool.exe" "$R/unixtool.c"
# What LuaRocks for Windows ships beside itself: 7z (zip, for .rock files) and
# md5sum. Linux's, here.
unixtool "$W/tools" 7z 7z
unixtool "$W/tools" md5sum md5sum

# --- the Lua of the step ------------------------------------------------------------
LIBDIR=
case $STEP in
  mingw | binary) LUAV=5.4 PREFIX=$DEPS LUAEXE=lua.exe LUALIB=liblua54.dll.a LUADLL=lua54.dll ;;
  msvc) LUAV=5.4 PREFIX=$OUT/msvc/lua LUAEXE=lua.exe LUALIB='' LUADLL=lua54.dll ;;
  luajit-*)
    [ "$ARCH" = x86_64 ] || die "LuaJIT for Windows is built for x86_64 only (.ci/win/build-deps.sh)"
    LUAV=5.1 PREFIX=$DEPS/luajit LUAEXE=luajit.exe LUALIB=liblua51.dll.a LUADLL=lua51.dll
    [ "$STEP" != luajit-msvc ] || LIBDIR=$OUT/msvc/luajit/lib LUALIB=lua51.lib
    ;;
  *) die "unknown STEP $STEP" ;;
esac
TOOLS=${STEP#luajit-}
case $TOOLS in mingw | msvc | binary) ;; *) die "unknown STEP $STEP" ;; esac
if [ "$TOOLS" = msvc ]; then
  bash "$R/msvc.sh" "$ARCH" "$DEPS" "$OUT/msvc"
  [ "$STEP" != msvc ] || TESTKIT=$PREFIX/lib/lua/5.4
  unixtool "$W/bin" cl clang-cl-14 --target="$ARCH-pc-windows-msvc"
  unixtool "$W/bin" link lld-link-14
fi
if [ "$TOOLS" = mingw ]; then
  unixtool "$W/bin" mingw32-gcc "$TRIPLET-gcc"
fi
ROCKS=$OUT/rocks/$LUAV
ROCK=$ROCKS/imalloc-scm-1.$ROCKARCH.rock

[ "$TOOLS" != msvc ] || rm -f "$ROCK"  # packed anew, or the check below fails
mkdir -p "$ROCKS"
cp -r "$ROOT/rockspec" "$ROOT/src" "$ROOT/lua" "$W/src/"
TREE=$(win "$W/tree")
LUA="$(win "$PREFIX/bin/$LUAEXE")"

# The LuaRocks configuration a Windows user writes (%APPDATA%\luarocks\
# config-5.4.lua): where Lua is. Nothing about compilers: LuaRocks' defaults.
{
  echo "-- LuaRocks for Windows: $STEP, $ARCH (.ci/win/rocks.sh)"
  echo "variables = {"
  echo "  LUA_DIR = [[$(win "$PREFIX")]],"
  echo "  LUA_BINDIR = [[$(win "$PREFIX/bin")]],"
  echo "  LUA_INCDIR = [[$(win "$PREFIX/include")]],"
  echo "  LUA_LIBDIR = [[$(win "${LIBDIR:-$PREFIX/lib}")]],"
  [ -z "$LUALIB" ] || echo "  LUALIB = \"$LUALIB\","
  echo "}"
} >"$W/config.lua"
# luarocks.bat: LuaRocks (Debian's, in Lua) run by this Lua (rocks/luarocks.lua).
printf '@"%s" "%s" "Z:\\usr\\bin\\luarocks" %%*\r\n' "$LUA" "$(win "$R/luarocks.lua")" \
  >"$W/luarocks.bat"

# --- the batch file: docs/windows.md's commands----------------------------------
bat=$W/steps.bat
line() { printf '%s\r\n' "$*" >>"$bat"; }
# must COMMAND: a line of the batch file that stops it when COMMAND fails
# (Wine's cmd runs the right side of `a || b` whatever a's status).
must() { line "$*"; line 'if errorlevel 1 exit /b 1'; }
: >"$bat"
line '@echo off'
line "set \"LUAROCKS_CONFIG=$(win "$W/config.lua")\""
case $TOOLS in
  mingw)
    line "set \"PATH=$(win "$W/bin");$(win "$W");$(win "$W/tools");%PATH%\""
    line "cd /d $(win "$W/src")"
    line "echo == luarocks make, mingw-w64 ($ARCH, $LUAEXE)"
    must "call luarocks --tree $TREE make rockspec\\imalloc-scm-1.rockspec"
    ;;
  msvc)
    # What a Developer Command Prompt sets (vcvarsall.bat), for this stand-in.
    line "set \"VCINSTALLDIR=$(win "$OUT/msvc")\\\""
    line "set \"INCLUDE=$(win "$R/include");Z:\\usr\\include\\wine\\wine\\msvcrt;Z:\\usr\\include\\wine\\wine\\windows\""
    line "set \"LIB=$(win "$OUT/msvc/sdk/lib")\""
    line "set \"PATH=$(win "$W/bin");$(win "$W");$(win "$W/tools");%PATH%\""
    line "cd /d $(win "$W/src")"
    line "echo == luarocks make, MSVC interface ($ARCH: clang-cl, lld-link)"
    must "call luarocks --tree $TREE make rockspec\\imalloc-scm-1.rockspec"
    line "cd /d $(win "$ROCKS")"
    line "echo == luarocks pack: the binary rock"
    must "call luarocks --tree $TREE pack imalloc scm-1"
    ;;
  binary)
    [ -f "$ROCK" ] || die "$ROCK is missing: the step ${STEP%binary}msvc packs it"
    # A machine with Lua and LuaRocks (and its 7z) but no compiler.
    line "set \"PATH=$(win "$W");$(win "$W/tools");C:\\windows\\system32;C:\\windows\""
    line "cd /d $(win "$ROCKS")"
    line "echo == luarocks install of the binary rock, no compiler on PATH"
    must "call luarocks --tree $TREE install imalloc-scm-1.$ROCKARCH.rock"
    ;;
esac
# The demo and the specs, with imalloc from the tree and nothing from the checkout.
lua_path="$TREE\\share\\lua\\$LUAV\\?.lua;$TREE\\share\\lua\\$LUAV\\?\\init.lua;$(win "$ROOT/spec")\\?.lua;Z:\\usr\\share\\lua\\$LUAV\\?.lua;Z:\\usr\\share\\lua\\$LUAV\\?\\init.lua"
lua_cpath="$TREE\\lib\\lua\\$LUAV\\?.dll;$(win "$TESTKIT")\\?.dll;$(win "$PREFIX/lib/lua/$LUAV")\\?.dll"
suffix=_5_4
[ "$LUAV" = 5.4 ] || suffix=
line "echo == the demo and the specs, imalloc from $TREE"
line "set \"LUA_PATH$suffix=$lua_path\""
line "set \"LUA_CPATH$suffix=$lua_cpath\""
# In the checkout (the specs read examples/), but without its .busted, which
# puts the checkout's lua/ and build/ on the paths: a configuration of none.
line "cd /d $(win "$ROOT")"
printf 'return {}\n' >"$W/none.busted"
check=
[ "$TOOLS" != binary ] || check=no-compiler
must "\"$LUA\" $(win "$R/where.lua") $TREE $check"
must "\"$LUA\" $(win "$ROOT/examples/flow.lua")"
must "\"$LUA\" $(win "$HERE/busted.lua") --config-file=$(win "$W/none.busted") --output=plainTerminal $SPECS"
line "echo == $STEP: done"

# --- run it, and check what it printed ---------------------------------------------
log=$W/log
status=0
IMALLOC_WIN_LUA_PATH='' IMALLOC_WIN_LUA_CPATH='' \
  bash "$HERE/lua.sh" "$PREFIX" "$R/run.lua" "$(win "$bat")" 2>&1 | tee "$log" ||
  status=${PIPESTATUS[0]}
log_has() { grep -qE "$1" "$log" || { echo "$me: the output lacks: $2" >&2; status=1; }; }
log_has "^imalloc.core: $(printf '%s' "$TREE" | sed 's/[\\.]/\\&/g')" "imalloc.core found in the tree"
log_has 'from the installed module' "the installed module allocating"
log_has '^Free: +done' "the demo's flow"
log_has '^[1-9][0-9]* successes / 0 failures / 0 errors / 0 pending' "the specs' summary with no failure"
log_has "^== $STEP: done" "the end of the batch file"
case $TOOLS in
  mingw)
    log_has '^mingw32-gcc .*-c ' "the compiler LuaRocks ran (mingw32-gcc)"
    # Nothing of gcc's at run time: a module handed to a machine without
    # mingw-w64 must load (src/platform.h: no __thread on Windows).
    dll=$W/tree/lib/lua/$LUAV/imalloc/core.dll
    imports=$(llvm-readobj-14 --coff-imports "$dll" | sed -n 's/^ *Name: \(.*\.dll\)$/\1/p' | sort -u | tr '\n' ' ')
    echo "imports of the installed imalloc\\core.dll: $imports"
    case " $imports " in *" libgcc"*) echo "$me: imalloc\\core.dll needs gcc's runtime: $imports" >&2; status=1 ;; esac
    ;;
  msvc)
    [ -f "$ROCK" ] || { echo "$me: luarocks pack made no $ROCK" >&2; status=1; }
    log_has '^cl /nologo /MD /O2 -c -Fo' "the compiler LuaRocks ran (cl)"
    log_has '^link -dll -def:' "the linker LuaRocks ran (link)"
    # The module shares the C runtime of the Lua it was built for (the UCRT).
    dll=$W/tree/lib/lua/$LUAV/imalloc/core.dll
    imports=$(llvm-readobj-14 --coff-imports "$dll" | sed -n 's/^ *Name: \(.*\.dll\)$/\1/p' | sort -u | tr '\n' ' ')
    echo "imports of the installed imalloc\\core.dll: $imports"
    for dll in ucrtbase.dll $LUADLL; do
      case " $imports " in *" $dll "*) ;; *) echo "$me: imalloc\\core.dll does not import $dll" >&2; status=1 ;; esac
    done
    case " $imports " in *" msvcrt.dll "*) echo "$me: imalloc\\core.dll imports msvcrt.dll" >&2; status=1 ;; esac
    ;;
  binary) log_has '^no compiler: ' "the check that no compiler is on PATH" ;;
esac
exit "$status"
