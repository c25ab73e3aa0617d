#!/usr/bin/env bash
# run.sh FUZZER SECONDS SEEDS WORK: a bounded libFuzzer run, as CI does it.
#   FUZZER   the fuzz target's binary
#   SECONDS  -max_total_time
#   SEEDS    the committed corpus (tests/fuzz/corpus/NAME), read only
#   WORK     a directory for new inputs and crash artifacts (made if missing)
# Runs the seeds first, then fuzzes; a crash, a leak, a sanitizer report or
# a failed check ends it non-zero, with the input saved in WORK. Prints a
# line "fuzz: NAME: N executions in S s, N seed inputs, N new inputs, 0 crashes".
# To keep what a run found: FUZZER -merge=1 SEEDS WORK/corpus
set -euo pipefail
fuzzer=$1 seconds=$2 seeds=$3 work=$4
name=$(basename "$fuzzer")
mkdir -p "$work/corpus" "$work/artifacts"
log=$work/last.log
status=0
"$fuzzer" -max_total_time="$seconds" -print_final_stats=1 -timeout=20 \
  -rss_limit_mb=4096 -artifact_prefix="$work/artifacts/" \
  "$work/corpus" "$seeds" >"$log" 2>&1 || status=$?
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
added=$(sed -n 's/^stat::new_units_added: *//p' "$log")
if [ "$status" -ne 0 ] || [ -z "$execs" ]; then
  tail -n 60 "$log"
  echo "fuzz: $name: FAILED (status $status); inputs in $work/artifacts"
  exit 1
fi
echo "fuzz: $name: $execs executions in $seconds s, $(ls "$seeds" | wc -l) seed inputs," \
     "$added new inputs, 0 crashes"
