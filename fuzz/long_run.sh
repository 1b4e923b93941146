#!/usr/bin/env bash
# Long fuzzing campaign: every harness in OUT_DIR (default build-fuzz/) for RUNS executions
# (default 1,000,000), one at a time at the lowest CPU priority, corpus kept in
# OUT_DIR/corpus/<harness>. Prints one line per harness: executions, seconds, result.
# Usage: fuzz/long_run.sh [RUNS] [OUT_DIR] [HARNESS...]   (default: every harness in OUT_DIR)
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-1000000}
out=${2:-build-fuzz}
shift 2 2>/dev/null
names=("$@")
if [ ${#names[@]} = 0 ]; then
  for bin in "$out"/fuzz_*; do [ -x "$bin" ] && names+=("$(basename "$bin")"); done
fi
# OpenMP workers sleep right after each parallel region instead of spinning for 200 ms (the
# CPU is shared; spinning only steals it from the fuzzer and everyone else).
export KMP_BLOCKTIME=0
status=0
for name in "${names[@]}"; do
  corpus="$out/corpus/$name"
  mkdir -p "$corpus"
  [ -d "fuzz/corpus/$name" ] && cp -n fuzz/corpus/"$name"/* "$corpus"/ 2>/dev/null
  log="$out/$name.long.log"
  start=$(date +%s)
  (cd "$out" && nice -n 19 "./$name" -runs="$runs" -max_len=512 -print_final_stats=1 \
    "corpus/$name" >"$name.long.log" 2>&1)
  rc=$?
  secs=$(($(date +%s) - start))
  done_line=$(grep -E '^Done [0-9]+ runs' "$log" | tail -n 1)
  if [ $rc -eq 0 ]; then
    echo "$name: $done_line (wall ${secs}s) clean"
  else
    echo "$name: FAILED rc=$rc after ${secs}s; see $log"
    status=1
  fi
done
exit $status
