#!/usr/bin/env bash
# busted.sh PREFIX [busted args...]: Debian's busted (its Lua files in
# /usr/share/lua/5.4) run by the Windows Lua of .ci/win/build-deps.sh PREFIX
# under Wine (see lua.sh for the environment it reads); exits with busted's
# exit code.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ $# -ge 1 ] || { echo "usage: busted.sh PREFIX [busted args...]" >&2; exit 2; }
prefix=$1
shift
exec bash "$here/lua.sh" "$prefix" "$here/busted.lua" "$@"
