#!/usr/bin/env bash
# .ci/m32/build-deps.sh PREFIX: Lua 5.4 and busted's C modules for 32-bit
# x86 Linux (gcc -m32, gcc-multilib), from Debian's sources, for the
# m32-spec tests (tests/m32/CMakeLists.txt):
#   PREFIX/bin/lua, PREFIX/include/*.h,
#   PREFIX/lib/lua/5.4/lfs.so, term/core.so, system/core.so.
# Lua and lua-filesystem come from `apt-get source` (Debian's patches
# applied); lua-term from its upstream tarball when Debian's is missing (as
# on this project's mirror); system.core is .ci/m32/system_core.c (lua-system's
# source is not served). apt needs deb-src entries: .ci/win/build-deps.sh
# adds them (IMALLOC_M32_SOURCES=ITS_PREFIX/src reuses what it fetched), as
# this script does when run as root and there are none (.ci/deb-src.sh).
# Idempotent: what exists in PREFIX is kept.
set -euo pipefail
me=m32/build-deps.sh
die() { printf '%s: error: %s\n' "$me" "$*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: .ci/m32/build-deps.sh PREFIX"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$1"
prefix=$(cd "$1" && pwd)
log=$prefix/build-deps.log

outs=(bin/lua include/lua.h lib/lua/5.4/lfs.so lib/lua/5.4/term/core.so
      lib/lua/5.4/system/core.so)
need=
for f in "${outs[@]}"; do [ -f "$prefix/$f" ] || need=1; done
[ -n "$need" ] || exit 0
: >"$log"

echo 'int main(void) { return sizeof(void *) != 4; }' >"$prefix/probe.c"
gcc -m32 -o "$prefix/probe" "$prefix/probe.c" >>"$log" 2>&1 && "$prefix/probe" ||
  die "gcc -m32 cannot build a 32-bit program (install gcc-multilib); see $log"

# fetch PKG: the unpacked source of PKG in $src ("" when none); the tree
# .ci/win/build-deps.sh already fetched when IMALLOC_M32_SOURCES names its
# PREFIX/src (read only: objects go to PREFIX/build). .ci/deb-src.sh.
# shellcheck source=../deb-src.sh
. "$here/../deb-src.sh"
fetch() {
  deb_src_fetch "$1" "$prefix/src" "$log" "${IMALLOC_M32_SOURCES:-}" || true
  src=$DEB_SRC_TREE
}

cc=(gcc -m32 -std=gnu99 -O2)
mkdir -p "$prefix/bin" "$prefix/include" "$prefix/lib/lua/5.4/term" \
  "$prefix/lib/lua/5.4/system" "$prefix/build"

if [ ! -f "$prefix/bin/lua" ] || [ ! -f "$prefix/include/lua.h" ]; then
  fetch lua5.4
  [ -n "$src" ] || die "lua5.4: no source from apt-get source (deb-src entries? run .ci/win/build-deps.sh first); see $log"
  obj=$prefix/build/lua
  rm -rf "$obj" && mkdir -p "$obj"
  # Debian's luaconf.h names its multiarch directory in a generated header.
  echo '#define DEB_HOST_MULTIARCH "i386-linux-gnu"' >"$prefix/include/lua5.4-deb-multiarch.h"
  for f in "$src"/src/*.c; do
    case $(basename "$f") in lua.c|luac.c) ;; *) echo "$f" ;; esac
  done | xargs -P 2 -I{} sh -c '"$@" -c "{}" -o "'"$obj"'/$(basename "{}" .c).o"' \
    sh "${cc[@]}" -I"$prefix/include" -DLUA_COMPAT_5_3 -DLUA_USE_LINUX >>"$log" 2>&1 ||
    die "lua5.4 did not build; see $log"
  ar rcs "$prefix/build/liblua.a" "$obj"/*.o
  for f in lua.h luaconf.h lualib.h lauxlib.h lua.hpp; do cp "$src/src/$f" "$prefix/include/"; done
  "${cc[@]}" -I"$prefix/include" -DLUA_COMPAT_5_3 -DLUA_USE_LINUX -o "$prefix/bin/lua" \
    "$src/src/lua.c" "$prefix/build/liblua.a" -Wl,-E -ldl -lm >>"$log" 2>&1 ||
    die "lua did not link; see $log"
fi

module() { # OUT SOURCE
  "${cc[@]}" -shared -fPIC -I"$prefix/include" -o "$prefix/lib/lua/5.4/$1" "$2" >>"$log" 2>&1 ||
    die "$1 did not build from $2; see $log"
}
if [ ! -f "$prefix/lib/lua/5.4/lfs.so" ]; then
  fetch lua-filesystem
  [ -n "$src" ] || die "lua-filesystem: no source; see $log"
  module lfs.so "$src/src/lfs.c"
fi
if [ ! -f "$prefix/lib/lua/5.4/term/core.so" ]; then
  fetch lua-term
  [ -n "$src" ] || die "lua-term: no source; see $log"
  module term/core.so "$src/core.c"
fi
[ -f "$prefix/lib/lua/5.4/system/core.so" ] || module system/core.so "$here/system_core.c"

"$prefix/bin/lua" -e 'assert(string.packsize("T") == 4 and math.maxinteger > 2^53)' ||
  die "$prefix/bin/lua is not a 32-bit Lua 5.4 with 64-bit integers"
