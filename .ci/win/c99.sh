#!/usr/bin/env bash
# c99.sh LUA_INCDIR SOURCE...: compiles each Windows source as C99, the C that
# MSVC's default mode and LuaRocks' builtin backend (no flags) give, with
# warnings as errors, for 64-bit and 32-bit x86: mingw-w64 gcc, clang
# targeting mingw-w64, and the same clang with _MSC_VER defined. None of them
# is MSVC: they check the code against C99 and the Windows headers, not MSVC's
# own headers (which are not on this machine). Prints one line per compile;
# exits 1 if any failed.
set -uo pipefail
if [ $# -lt 2 ]; then
  echo "usage: c99.sh LUA_INCDIR SOURCE..." >&2
  exit 2
fi
lua_incdir=$1
shift
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
flags=(-std=c99 -pedantic -Werror -Wall -Wextra -fsyntax-only)
compilers=(
  "x86_64-w64-mingw32-gcc"
  "i686-w64-mingw32-gcc"
  "clang --target=x86_64-w64-windows-gnu -isystem /usr/x86_64-w64-mingw32/include"
  "clang --target=i686-w64-windows-gnu -isystem /usr/i686-w64-mingw32/include"
  # The closest to MSVC here: _MSC_VER defined, so src/platform.h takes its
  # MSVC branch (__declspec(thread)), with Microsoft's extensions on; still
  # mingw-w64's headers, as MSVC's own are not on this machine.
  "clang --target=x86_64-w64-windows-gnu -fms-extensions -fdeclspec -D_MSC_VER=1930 -isystem /usr/x86_64-w64-mingw32/include"
  "clang --target=i686-w64-windows-gnu -fms-extensions -fdeclspec -D_MSC_VER=1930 -isystem /usr/i686-w64-mingw32/include"
)
failed=0 ran=0
for cc in "${compilers[@]}"; do
  read -r -a cmd <<<"$cc"
  if ! command -v "${cmd[0]}" >/dev/null; then
    echo "FAILED: ${cmd[0]} is not installed (.ci/setup --windows)"
    failed=1
    continue
  fi
  for src in "$@"; do
    ran=$((ran + 1))
    if out=$("${cmd[@]}" "${flags[@]}" -I"$root/src" -I"$lua_incdir" "$src" 2>&1); then
      echo "ok: ${cmd[*]} -std=c99 -pedantic -Werror $src"
    else
      echo "FAILED: ${cmd[*]} ${flags[*]} $src"
      printf '%s\n' "$out" | sed 's/^/  | /'
      failed=1
    fi
  done
done
echo "$ran compiles, $([ $failed -eq 0 ] && echo all passed || echo some FAILED)"
exit "$failed"
