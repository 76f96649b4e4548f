#!/usr/bin/env bash
# Short fuzz run for CI: every cargo-fuzz target for FUZZ_SECONDS (default
# 30) seconds, starting from the seed corpus in fuzz/corpus/<target>. The
# seeds are copied to a scratch directory so the run never grows the
# checked-in corpus. A crash fails the job; its input is left in
# fuzz/artifacts/<target>/ and the command to replay it is printed.
#
# Needs the nightly toolchain (libFuzzer needs -Z sanitizer flags) and
# cargo-fuzz, which is installed from crates.io when missing. Without
# nightly it skips, loudly, rather than pretend to have fuzzed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds="${FUZZ_SECONDS:-30}"

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "::warning::SKIPPED FUZZING: no nightly toolchain (rustup toolchain install nightly)" >&2
  echo "=== SKIPPED FUZZING: no nightly toolchain ===" >&2
  exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz is missing; installing it from crates.io" >&2
  cargo install --locked cargo-fuzz
fi

targets=$(cargo +nightly fuzz list)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# Build every target once before the timed runs.
cargo +nightly fuzz build

failed=()
for target in $targets; do
  mkdir -p "$scratch/$target"
  if [ -d "fuzz/corpus/$target" ]; then
    cp -R "fuzz/corpus/$target/." "$scratch/$target/"
  fi
  echo "=== fuzzing $target for ${seconds}s ==="
  # Only libFuzzer's summary is kept: the cache target's warnings on stderr
  # would drown it.
  if cargo +nightly fuzz run "$target" "$scratch/$target" -- \
      -max_total_time="$seconds" -print_final_stats=1 >"$scratch/$target.log" 2>&1; then
    grep -E '^(stat::number_of_executed_units|Done )' "$scratch/$target.log" || true
  else
    tail -n 60 "$scratch/$target.log"
    echo "=== $target FAILED; replay with: cargo +nightly fuzz run $target fuzz/artifacts/$target/<crash file> ===" >&2
    failed+=("$target")
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz targets with findings: ${failed[*]}" >&2
  exit 1
fi
echo "=== all fuzz targets ran ${seconds}s without findings ==="
