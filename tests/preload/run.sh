#!/usr/bin/env bash
# tests/preload/run.sh STUB ERRNO COMMAND...: runs COMMAND (busted on the
# specs that wrap pointers) with STUB preloaded, so that process_vm_readv
# fails with ERRNO. Fails unless the command passes AND the stub was called:
# a run that never reached it would test nothing.
set -u
stub=$1 errno=$2
shift 2
mark=$(mktemp)
trap 'rm -f "$mark"' EXIT
NO_VM_READV_ERRNO=$errno NO_VM_READV_MARK=$mark LD_PRELOAD=$stub "$@"
rc=$?
if ! grep -q "^answered $errno" "$mark"; then
  echo "FAIL: process_vm_readv was never called: the fallback was not tested"
  exit 1
fi
echo "process_vm_readv answered $errno, in $(wc -l < "$mark") process(es)"
exit $rc
