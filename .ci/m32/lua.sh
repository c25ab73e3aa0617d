#!/usr/bin/env bash
# .ci/m32/lua.sh [lua args...]: the 32-bit Lua 5.4 of .ci/m32/build-deps.sh
# (in IMALLOC_M32_DEPS, default build/m32-deps), with busted's 32-bit C
# modules before Lua's default paths.
set -euo pipefail
prefix=${IMALLOC_M32_DEPS:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/m32-deps}
export LUA_CPATH_5_4="$prefix/lib/lua/5.4/?.so;;"
unset LUA_CPATH LUA_INIT LUA_INIT_5_4
exec "$prefix/bin/lua" "$@"
