#!/usr/bin/env bash
# .ci/hardgc/build-deps.sh PREFIX: Lua 5.4 and Lua 5.2 for Linux, built from
# Debian's source packages with HARDMEMTESTS (a full collection, finalizers
# included, wherever the collector may run: llimits.h `condchangemem`, called
# by lgc.h `luaC_condGC`), LUA_USE_APICHECK (5.4's luaconf.h, 5.2's
# llimits.h: every api_check of lapi.c is an assert(), which aborts: a binding that pops too much, walks a
# non-table or reads past its frame stops there) and AddressSanitizer +
# UBSan, for the hardgc-* tests (cmake/hardgc.cmake, docs/hardgc.md):
#   PREFIX/5.4/bin/lua, PREFIX/5.4/include/*.h
#   PREFIX/5.2/bin/lua, PREFIX/5.2/include/*.h
# Lua 5.2 is there because its lua_pushlstring steps the collector before it
# copies the bytes (5.3 and 5.4 after), as 5.1 and LuaJIT do, which have no
# such switch. Busted and its C modules are Debian's (lua-busted): the Lua
# keeps Debian's module paths (debian/patches), and the modules, built
# without ASan, run in the ASan process as they are.
# Sources: `apt-get source` (deb-src entries added when there are none,
# .ci/deb-src.sh), or the lua5.4 tree .ci/win/build-deps.sh fetched when
# IMALLOC_HARDGC_SOURCES names its PREFIX/src (read only). Needs root when it
# fetches (deb-src entries, apt-get update). Idempotent: a Lua in PREFIX
# built with these flags (PREFIX/V/build-flags) is kept; one built with
# others (an older version of this script) is built again.
set -euo pipefail
me=hardgc/build-deps.sh
die() { printf '%s: error: %s\n' "$me" "$*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: .ci/hardgc/build-deps.sh PREFIX"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$1"
prefix=$(cd "$1" && pwd)
log=$prefix/build-deps.log
versions=(5.4 5.2)

multiarch=$(gcc -print-multiarch)
# -O1: ASan's advice for a usable speed with exact reports. NDEBUG stays
# undefined: LUA_USE_APICHECK's checks are assert()s.
flags=(-std=gnu99 -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined
       -fno-sanitize-recover=all -DHARDMEMTESTS -DLUA_USE_APICHECK -UNDEBUG)
# built V: PREFIX/V has a Lua built with these flags.
built() {
  [ -x "$prefix/$1/bin/lua" ] && [ -f "$prefix/$1/include/lua.h" ] &&
    [ "$(cat "$prefix/$1/build-flags" 2>/dev/null)" = "${flags[*]}" ]
}

need=
for v in "${versions[@]}"; do
  built "$v" || need=1
done
[ -n "$need" ] || exit 0
: >"$log"

# shellcheck source=../deb-src.sh
. "$here/../deb-src.sh"
# fetch PKG: the unpacked source of PKG in $src (.ci/deb-src.sh).
fetch() {
  deb_src_fetch "$1" "$prefix/src" "$log" "${IMALLOC_HARDGC_SOURCES:-}" ||
    die "$1: no source from apt-get source; see $log"
  src=$DEB_SRC_TREE
}

for v in "${versions[@]}"; do
  out=$prefix/$v
  built "$v" && continue
  case $v in
    5.4) compat=(-DLUA_COMPAT_5_3 -DLUA_USE_LINUX) ;;
    # LUA_USE_LINUX but readline, which lua.c would then need
    # and 5.2's hash of a float (ltable.c hashnum) sums ints that overflow
    5.2) compat=(-DLUA_COMPAT_ALL -DLUA_USE_POSIX -DLUA_USE_DLOPEN -DLUA_USE_STRTODHEX
                 -DLUA_USE_AFORMAT -DLUA_USE_LONGLONG -fno-sanitize=signed-integer-overflow) ;;
  esac
  fetch "lua$v"
  grep -q 'defined(HARDMEMTESTS)' "$src/src/llimits.h" ||
    die "lua$v's llimits.h has no HARDMEMTESTS switch"
  # 5.4: luaconf.h; 5.2: llimits.h (luai_apicheck is assert(e) there)
  cat "$src/src/luaconf.h" "$src/src/llimits.h" | grep -q 'defined(LUA_USE_APICHECK)' ||
    die "lua$v has no LUA_USE_APICHECK switch (luaconf.h, llimits.h)"
  obj=$prefix/build/$v
  rm -rf "$obj" "$out"
  mkdir -p "$obj" "$out/bin" "$out/include"
  # Debian's luaconf.h (debian/patches) names its multiarch directory in a
  # header its build generates.
  echo "#define DEB_HOST_MULTIARCH \"$multiarch\"" >"$out/include/lua$v-deb-multiarch.h"
  for f in "$src"/src/*.c; do
    case $(basename "$f") in lua.c|luac.c) ;; *) echo "$f" ;; esac
  done | xargs -P 2 -I{} sh -c '"$@" -c "{}" -o "'"$obj"'/$(basename "{}" .c).o"' \
    sh gcc "${flags[@]}" "${compat[@]}" -I"$out/include" >>"$log" 2>&1 ||
    die "lua$v did not build; see $log"
  for f in lua.h luaconf.h lualib.h lauxlib.h lua.hpp; do
    [ ! -f "$src/src/$f" ] || cp "$src/src/$f" "$out/include/"
  done
  # -Wl,-E: the C modules (busted's, imalloc's) take the API from lua.
  gcc "${flags[@]}" "${compat[@]}" -I"$out/include" -o "$out/bin/lua.new" "$src/src/lua.c" \
    "$obj"/*.o -Wl,-E -ldl -lm >>"$log" 2>&1 || die "lua$v did not link; see $log"
  # The API checks are on: a C program that pops a value from an empty
  # stack stops on lapi.c's assert (SIGABRT) instead of going on.
  cat >"$obj/apicheck.c" <<'EOF2'
#include <stdio.h>
#include "lua.h"
#include "lauxlib.h"
int main(void) {
  lua_State *L = luaL_newstate();
  lua_settop(L, -2);  /* nothing to pop: api_check "invalid new top" */
  puts("not checked");
  return 0;
}
EOF2
  gcc "${flags[@]}" "${compat[@]}" -I"$out/include" -o "$obj/apicheck" "$obj/apicheck.c" \
    "$obj"/*.o -ldl -lm >>"$log" 2>&1 ||
    die "lua$v's API check test did not link; see $log"
  status=0
  # (in a shell of its own: bash would report the abort on stderr)
  ASAN_OPTIONS=detect_leaks=0 sh -c '"$1" 2>&1; echo "status $?"' sh "$obj/apicheck" >>"$log"
  status=$(sed -n 's/^status //p' "$log" | tail -n 1)
  [ "$status" -eq 134 ] ||
    die "lua$v does not check its API (LUA_USE_APICHECK): exit $status, not 134 (SIGABRT); see $log"
  rm -rf "$obj"
  # The switch is on: a C function that allocates, called right after an
  # object with a finalizer became garbage, has run the finalizer.
  ASAN_OPTIONS=detect_leaks=0 "$out/bin/lua.new" -e "
    local n = 0
    local function garbage() setmetatable({}, {__gc = function() n = n + 1 end}) end
    garbage()
    local s = ('x'):rep(2, ',')
    assert(n == 1, 'HARDMEMTESTS is not in effect')" ||
    die "$out/bin/lua.new does not collect at every allocation"
  mv "$out/bin/lua.new" "$out/bin/lua"
  echo "${flags[*]}" >"$out/build-flags"
done
rm -rf "$prefix/build"
