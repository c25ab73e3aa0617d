#!/usr/bin/env bash
# build-deps.sh PREFIX [ARCH]: cross-build Lua 5.4 and the C parts of busted for
# Windows, from Debian's source packages, into PREFIX. ARCH is x86_64 (64-bit,
# the default; CI: build/win-deps) or i686 (32-bit x86; CI: build/win32-deps).
#
# Run as root on Debian 12. Installs the Debian packages it needs, adds deb-src
# entries for bookworm when there are none, fetches with `apt-get source`:
#   lua5.4          -> PREFIX/bin/lua.exe lua54.dll luac.exe, PREFIX/lib/liblua54.dll.a,
#                      PREFIX/include/{lua.h,luaconf.h,lualib.h,lauxlib.h,lua.hpp}
#   lua-filesystem  -> PREFIX/lib/lua/5.4/lfs.dll
#   lua-term        -> PREFIX/lib/lua/5.4/term/core.dll
#   lua-system      -> PREFIX/lib/lua/5.4/system/core.dll
# Lua is built as its own makefile's `mingw` target builds it (LUA_BUILD_AS_DLL,
# lua.exe linked against lua54.dll), not with Debian's Linux build system.
# When a module's source cannot be fetched, its stand-in from .ci/win/replacements/
# is built instead and a line on stderr says so; PREFIX/MANIFEST records where
# each file came from. Idempotent: whatever is already in PREFIX is kept; remove
# PREFIX (or one output file) to rebuild it.
#
# Environment: IMALLOC_WIN_SKIP_SOURCE="pkg ..." does not fetch these source
# packages (to exercise the stand-ins).
set -euo pipefail

me="build-deps.sh"
die() { printf '%s: error: %s\n' "$me" "$*" >&2; exit 1; }
note() { printf '%s: %s\n' "$me" "$*" >&2; }

if [ $# -lt 1 ] || [ $# -gt 2 ] || [ -z "$1" ]; then die "usage: $me PREFIX [x86_64|i686]"; fi
[ "$(id -u)" -eq 0 ] || die "run as root (apt-get install, apt sources)"
mkdir -p "$1"
PREFIX=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The architecture: its mingw-w64 triplet and Debian's compiler package.
ARCH=${2:-x86_64}
case $ARCH in
  x86_64) TRIPLET=x86_64-w64-mingw32 MINGW_PACKAGE=gcc-mingw-w64-x86-64 ;;
  i686) TRIPLET=i686-w64-mingw32 MINGW_PACKAGE=gcc-mingw-w64-i686 ;;
  *) die "unknown ARCH '$ARCH': x86_64 or i686" ;;
esac
CC=$TRIPLET-gcc
LUA_V=5.4
CMOD=$PREFIX/lib/lua/$LUA_V
LOG=$PREFIX/build-deps.log
: >"$LOG"
# One architecture per PREFIX: a 64-bit lua.exe must not meet 32-bit modules.
if [ -f "$PREFIX/ARCH" ] && [ "$(cat "$PREFIX/ARCH")" != "$ARCH" ]; then
  die "$PREFIX holds a $(cat "$PREFIX/ARCH") build, not $ARCH: use another PREFIX"
fi
echo "$ARCH" >"$PREFIX/ARCH"

# run CMD...: output to the log; on failure show the log's tail and stop.
run() {
  if ! "$@" >>"$LOG" 2>&1; then
    tail -n 30 "$LOG" | sed 's/^/  | /' >&2
    die "failed: $* (full log: $LOG)"
  fi
}

export DEBIAN_FRONTEND=noninteractive
apt_updated=
apt_update() {
  [ -z "$apt_updated" ] || return 0
  apt_updated=1
  # A mirror that is mid-sync fails one index (e.g. i386) but serves the rest:
  # go on, and let the install or fetch that follows report what is missing.
  apt-get update -qq >>"$LOG" 2>&1 || note "apt-get update reported errors (see $LOG); going on"
}

# --- Debian packages --------------------------------------------------------------
install_packages() {
  local pkgs=(
    "$MINGW_PACKAGE" wine wine64 dpkg-dev xz-utils
    lua5.4 lua-busted lua-luassert lua-say lua-penlight lua-cliargs lua-mediator
    lua-dkjson lua-filesystem lua-term lua-system
  )
  local missing=() p
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  apt_update
  run apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# --- deb-src entries --------------------------------------------------------------
# deb-src copies of the bookworm entries when apt has none (.ci/deb-src.sh), and
# an update when apt does not know lua5.4's source yet.
# shellcheck source=../deb-src.sh
. "$HERE/../deb-src.sh"
deb_src_done=
ensure_deb_src() {
  [ -z "$deb_src_done" ] || return 0
  deb_src_done=1
  deb_src_add_entries || die "cannot add deb-src entries"
  [ -z "$DEB_SRC_ADDED" ] || apt_updated=
  apt-cache showsrc --only-source lua5.4 2>/dev/null | grep -q '^Package:' || apt_update
}

# --- sources ------------------------------------------------------------------------
# fetch PKG: sets SRC to the source tree and ORIGIN to how it was obtained, in
# PREFIX/src/PKG/. Sets SRC empty when nothing could be fetched.
fetch() {
  local pkg=$1 work=$PREFIX/src/$1 try d orig
  SRC="" ORIGIN=""
  case " ${IMALLOC_WIN_SKIP_SOURCE:-} " in
    *" $pkg "*) ORIGIN="not fetched (IMALLOC_WIN_SKIP_SOURCE)"; return 0 ;;
  esac
  rm -rf "$work"
  mkdir -p "$work"
  ensure_deb_src
  for try in 1 2; do
    if (cd "$work" && apt-get source -qq -o APT::Sandbox::User=root "$pkg") >>"$LOG" 2>&1; then
      break
    fi
    if [ "$try" -ne 1 ] || [ -n "$apt_updated" ]; then break; fi
    apt_update   # stale index: the pool file it names may be gone
  done
  for d in "$work"/*/; do
    [ -d "$d" ] || continue
    mv "${d%/}" "$work/tree"
    SRC=$work/tree
    ORIGIN="Debian source package $(basename "$(ls "$work"/*.dsc)" .dsc)"
    return 0
  done
  # No unpacked tree: apt-get fetches the files one by one and unpacks only when all
  # arrived. An upstream tarball alone is still the real source, minus Debian patches.
  for orig in "$work/${pkg}"_*.orig.tar.*; do
    [ -f "$orig" ] || continue
    mkdir "$work/tree"
    run tar -xf "$orig" -C "$work/tree" --strip-components=1
    SRC=$work/tree
    ORIGIN="upstream tarball $(basename "$orig") (Debian's patches not fetched)"
    note "$pkg: Debian's packaging could not be fetched; building the upstream tarball $(basename "$orig")"
    return 0
  done
  ORIGIN="no source fetched (apt-get source $pkg failed, see $LOG)"
}

manifest() { # FILE ORIGIN
  local rel=${1#"$PREFIX"/}
  touch "$PREFIX/MANIFEST"
  grep -v "^$rel	" "$PREFIX/MANIFEST" >"$PREFIX/MANIFEST.tmp" || true
  printf '%s\t%s\n' "$rel" "$2" >>"$PREFIX/MANIFEST.tmp"
  sort -o "$PREFIX/MANIFEST" "$PREFIX/MANIFEST.tmp"
  rm -f "$PREFIX/MANIFEST.tmp"
}

# cc_module OUT SOURCES...: a Lua C module DLL linked against lua54.dll.
cc_module() {
  local out=$1
  shift
  mkdir -p "$(dirname "$out")"
  run "$CC" -std=gnu99 -O2 -shared -s -static-libgcc -I"$PREFIX/include" \
    -o "$out" "$@" "$PREFIX/lib/liblua54.dll.a"
}

# --- Lua 5.4 -----------------------------------------------------------------------
build_lua() {
  local outs=(bin/lua.exe bin/lua54.dll bin/luac.exe lib/liblua54.dll.a include/lua.h
    include/luaconf.h include/lualib.h include/lauxlib.h include/lua.hpp) f need=
  for f in "${outs[@]}"; do [ -f "$PREFIX/$f" ] || need=1; done
  [ -n "$need" ] || return 0
  fetch lua5.4
  [ -n "$SRC" ] || die "lua5.4: $ORIGIN; Lua itself has no stand-in"
  local s=$SRC/src obj=$PREFIX/build/lua
  # The file lists and flags of Lua 5.4's src/Makefile, target mingw.
  local core=(lapi lcode lctype ldebug ldo ldump lfunc lgc llex lmem lobject lopcodes
    lparser lstate lstring ltable ltm lundump lvm lzio)
  local lib=(lauxlib lbaselib lcorolib ldblib liolib lmathlib loadlib loslib lstrlib
    ltablib lutf8lib linit)
  rm -rf "$obj"
  mkdir -p "$obj" "$PREFIX/bin" "$PREFIX/lib" "$PREFIX/include"
  printf '%s\n' "${core[@]}" "${lib[@]}" lua luac |
    run xargs -P "$(nproc)" -I{} "$CC" -std=gnu99 -O2 -Wall -Wextra -DLUA_COMPAT_5_3 \
      -DLUA_BUILD_AS_DLL -c "$s/{}.c" -o "$obj/{}.o"
  local objs=()
  for f in "${core[@]}" "${lib[@]}"; do objs+=("$obj/$f.o"); done
  run "$CC" -shared -s -static-libgcc -o "$PREFIX/bin/lua54.dll" "${objs[@]}" \
    -Wl,--out-implib,"$PREFIX/lib/liblua54.dll.a"
  run "$CC" -s -static-libgcc -o "$PREFIX/bin/lua.exe" "$obj/lua.o" "$PREFIX/lib/liblua54.dll.a"
  run "$CC" -s -static-libgcc -o "$PREFIX/bin/luac.exe" "$obj/luac.o" "${objs[@]}"
  for f in lua.h luaconf.h lualib.h lauxlib.h lua.hpp; do
    cp "$s/$f" "$PREFIX/include/$f"
  done
  for f in "${outs[@]}"; do manifest "$PREFIX/$f" "$ORIGIN"; done
}

# --- C modules busted needs ------------------------------------------------------------
# module PKG OUT STANDIN BUILD_FN: build OUT from PKG's source with BUILD_FN, or from
# .ci/win/replacements/STANDIN when the source cannot be fetched or does not build.
module() {
  local pkg=$1 out=$2 standin=$3 build=$4
  [ -f "$out" ] && return 0
  fetch "$pkg"
  if [ -n "$SRC" ]; then
    if (cd "$SRC" && "$build" "$out"); then
      manifest "$out" "$ORIGIN"
      return 0
    fi
    ORIGIN="$ORIGIN, which did not build (see $LOG)"
  fi
  note "$pkg: $ORIGIN; using the stand-in .ci/win/replacements/$standin"
  cc_module "$out" "$HERE/replacements/$standin"
  manifest "$out" "stand-in .ci/win/replacements/$standin: $pkg: $ORIGIN"
}

# Each runs in the source tree; their failure falls back to the stand-in, so their
# output goes to the log without stopping the script.
build_lfs() { "$CC" -std=gnu99 -O2 -shared -s -static-libgcc -I"$PREFIX/include" \
  -o "$1" src/lfs.c "$PREFIX/lib/liblua54.dll.a" >>"$LOG" 2>&1; }
build_term() { mkdir -p "$(dirname "$1")" && "$CC" -std=gnu99 -O2 -shared -s -static-libgcc \
  -I"$PREFIX/include" -o "$1" core.c "$PREFIX/lib/liblua54.dll.a" >>"$LOG" 2>&1; }
build_system() { mkdir -p "$(dirname "$1")" && "$CC" -std=gnu99 -O2 -shared -s -static-libgcc \
  -I"$PREFIX/include" -Isrc -o "$1" src/*.c "$PREFIX/lib/liblua54.dll.a" >>"$LOG" 2>&1; }

# --- LuaJIT 2.1 (x86_64) -------------------------------------------------------------
# PREFIX/luajit: a second Windows Lua, LuaJIT cross-built by its own makefile
# (bin/luajit.exe, bin/lua51.dll, lib/liblua51.dll.a, include/), and busted's C
# modules built against it in lib/lua/5.1, from the same sources as for 5.4 (or
# the same stand-ins). .ci/win/lua.sh runs luajit.exe when given this prefix.
LJ=$PREFIX/luajit
build_luajit() {
  local outs=(bin/luajit.exe bin/lua51.dll lib/liblua51.dll.a include/lua.h
    include/luaconf.h include/lualib.h include/lauxlib.h include/luajit.h) f need=
  for f in "${outs[@]}"; do [ -f "$LJ/$f" ] || need=1; done
  [ -n "$need" ] || return 0
  fetch luajit
  [ -n "$SRC" ] || die "luajit: $ORIGIN; LuaJIT itself has no stand-in"
  # HOST_CC builds the 64-bit build tools (minilua, buildvm) that generate code
  # for the 64-bit target.
  run make -C "$SRC" -j"$(nproc)" HOST_CC=gcc CROSS="$TRIPLET-" TARGET_SYS=Windows \
    BUILDMODE=dynamic
  mkdir -p "$LJ/bin" "$LJ/lib" "$LJ/include"
  cp "$SRC/src/luajit.exe" "$SRC/src/lua51.dll" "$LJ/bin/"
  cp "$SRC/src/libluajit-5.1.dll.a" "$LJ/lib/liblua51.dll.a"
  for f in lua.h luaconf.h lualib.h lauxlib.h luajit.h; do cp "$SRC/src/$f" "$LJ/include/"; done
  for f in "${outs[@]}"; do manifest "$LJ/$f" "$ORIGIN"; done
}

# luajit_module PKG OUT STANDIN SOURCES...: OUT built against lua51.dll from the
# source tree of PKG (fetched for Lua 5.4 above, or now), or from the stand-in.
luajit_module() {
  local pkg=$1 out=$2 standin=$3 tree=$PREFIX/src/$1/tree
  shift 3
  [ -f "$out" ] && return 0
  mkdir -p "$(dirname "$out")"
  [ -d "$tree" ] || { fetch "$pkg"; tree=$SRC; }
  if [ -n "$tree" ] && (cd "$tree" && "$CC" -std=gnu99 -O2 -shared -s -static-libgcc \
      -I"$LJ/include" -Isrc -o "$out" "$@" "$LJ/lib/liblua51.dll.a") >>"$LOG" 2>&1; then
    manifest "$out" "Debian source package $pkg, for LuaJIT"
    return 0
  fi
  note "$pkg for LuaJIT: using the stand-in .ci/win/replacements/$standin"
  run "$CC" -std=gnu99 -O2 -shared -s -static-libgcc -I"$LJ/include" -o "$out" \
    "$HERE/replacements/$standin" "$LJ/lib/liblua51.dll.a"
  manifest "$out" "stand-in .ci/win/replacements/$standin, for LuaJIT"
}

build_luajit_deps() {
  [ "$ARCH" = x86_64 ] || return 0
  build_luajit
  local cmod=$LJ/lib/lua/5.1
  luajit_module lua-filesystem "$cmod/lfs.dll" lfs.c src/lfs.c
  luajit_module lua-term "$cmod/term/core.dll" term_core.c core.c
  luajit_module lua-system "$cmod/system/core.dll" system_core.c src/*.c
}

install_packages
build_lua
mkdir -p "$CMOD"
module lua-filesystem "$CMOD/lfs.dll" lfs.c build_lfs
module lua-term "$CMOD/term/core.dll" term_core.c build_term
module lua-system "$CMOD/system/core.dll" system_core.c build_system
build_luajit_deps
rm -rf "$PREFIX/build"
