#!/usr/bin/env bash
# wine32-unavailable.sh REASON_FILE: the ctest test that stands in for the 32-bit
# specs (wine32-spec-*) when 32-bit Wine is not installed. It prints why, from
# the file .ci/setup --windows wrote when apt could not install wine32:i386, and
#  - exits 77, which ctest shows as "Skipped" in its summary, when apt's reason
#    is the mirror's index being mid-sync: the machine is fine, the mirror is
#    not, and a later run will install it;
#  - exits 77 too when setup did not try for lack of disk space;
#  - exits 1 (a failure) otherwise: no reason recorded, or any other apt error,
#    since then installing was expected to work.
set -euo pipefail
reason=${1:?usage: wine32-unavailable.sh REASON_FILE}

echo "32-bit Wine (wine32:i386, /usr/lib/wine/wine) is not installed:"
echo "the 32-bit Windows build was compiled, but its specs (wine32-spec-*) and the"
echo "LuaRocks tests (wine32-rocks-*) did NOT run."
if [ ! -s "$reason" ]; then
  echo "No reason was recorded ($reason is missing): run .ci/setup --windows."
  exit 1
fi
sed 's/^/  | /' "$reason"
if grep -qE 'unexpected size|[Mm]irror sync in progress|Hash Sum mismatch' "$reason"; then
  echo "The mirror's package index was mid-sync when .ci/setup ran: reported as skipped."
  exit 77
fi
if grep -q "MB free on the build's file system" "$reason"; then
  echo "The machine's disk had too little room for it: reported as skipped."
  exit 77
fi
echo "apt failed for another reason: reported as a failure."
exit 1
