#!/usr/bin/env bash
# Runs each fuzz target for a bounded time and prints how many inputs each one executed.
#   scripts/fuzz.sh SECONDS TARGET...
# Fails when any target finds a crash, a hang (an input that runs over 10 s) or an input that
# needs over 1 GB; libFuzzer then leaves the input in fuzz/artifacts/<target>/, to be turned
# into a file of fuzz/regressions/<target>/ once the bug is fixed.
#
# The committed corpus (fuzz/corpus/<target>, seeded from real captures) is read but not
# written: what a run adds goes to a scratch corpus under the build directory, kept between runs.
#
# cargo-fuzz passes libFuzzer's instrumentation flags to rustc, which only a nightly compiler
# accepts; RUSTC_BOOTSTRAP=1 lets the stable toolchain take them. No sanitizer: the core forbids
# unsafe code, so AddressSanitizer would find nothing the Rust checks do not, at a third of the
# speed; debug assertions (-a) are on, so arithmetic overflow is a crash too.
set -uo pipefail
seconds=$1
shift
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/fuzz"
export RUSTC_BOOTSTRAP=1
# The build directory for fuzzing is its own: the instrumented build shares nothing with others.
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-${CARGO_TARGET_DIR:-$root/target}/fuzz}"
unset CARGO_BUILD_BUILD_DIR
scratch="$CARGO_TARGET_DIR/corpus"
declare -A execs result
failed=0
if ! cargo fuzz build -s none -a; then
  echo "make fuzz: the fuzz targets did not build" >&2
  exit 1
fi
for target in "$@"; do
  mkdir -p "$scratch/$target" "artifacts/$target" "corpus/$target"
  log="$CARGO_TARGET_DIR/fuzz-$target.log"
  echo "fuzzing $target for ${seconds}s (log: $log)"
  cargo fuzz run -s none -a "$target" "$scratch/$target" "corpus/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 -max_len=8192 \
    -artifact_prefix="artifacts/$target/" -print_final_stats=1 >"$log" 2>&1
  rc=$?
  execs[$target]=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  if [ $rc -eq 0 ]; then
    result[$target]=ok
  else
    result[$target]="FAILED (exit $rc)"
    failed=1
    grep -E "panicked|ERROR: libFuzzer|Test unit written|SUMMARY" "$log" | head -8 >&2
  fi
done
printf '\n%-14s %14s  %s\n' target executions result
for target in "$@"; do
  printf '%-14s %14s  %s\n' "$target" "${execs[$target]:-?}" "${result[$target]}"
done
if [ $failed -ne 0 ]; then
  echo "make fuzz: a target failed; its input is in fuzz/artifacts/<target>/" >&2
  exit 1
fi
echo "make fuzz: every target ran ${seconds}s without a finding"
