#!/usr/bin/env bash
# Runs every libFuzzer target in BUILD_DIR for SECONDS each (or, with RUNS,
# for RUNS executions each and no time limit: make fuzz-long), seeded from
# the committed corpus (new inputs go to a scratch copy, not into the repo).
# A crash leaves its input in BUILD_DIR/artifacts and fails the run: copy it
# into tests/fuzz/regressions/<target>/ so the replay test pins it.
set -euo pipefail
build=${1:?usage: run-fuzzers.sh BUILD_DIR SECONDS [RUNS]}
seconds=${2:-60}
runs=${3:-}
limit=(-max_total_time="$seconds")
[[ -n $runs ]] && limit=(-runs="$runs")
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$build/artifacts"
status=0
for bin in "$build"/tests/fuzz/fuzz_*; do
  name=$(basename "$bin"); name=${name#fuzz_}
  work="$build/fuzz-corpus/$name"
  mkdir -p "$work"
  seeds=("$root/tests/fuzz/corpus/$name")
  [[ -d "$root/tests/fuzz/regressions/$name" ]] && seeds+=("$root/tests/fuzz/regressions/$name")
  if [[ -n $runs ]]; then echo "--- fuzz $name for $runs runs"; else echo "--- fuzz $name for ${seconds}s"; fi
  if ! "$bin" "$work" "${seeds[@]}" "${limit[@]}" -timeout=10 -rss_limit_mb=2048 \
       -max_len=16384 -artifact_prefix="$build/artifacts/$name-" -print_final_stats=1 2>"$build/fuzz-$name.log"; then
    echo "fuzz $name FAILED; last lines:"; tail -40 "$build/fuzz-$name.log"
    status=1
  else
    grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$build/fuzz-$name.log" || true
  fi
done
exit $status
