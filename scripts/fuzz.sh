#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for SECONDS each (default 15), starting from the committed
# seed corpus (fuzz/corpus/<target>, never modified: new inputs go to a scratch copy), and
# exits non-zero if any target crashes. A crash leaves its input in
# fuzz/artifacts/<target>/ and its reproduction command in the output.
#   scripts/fuzz.sh 15            # every target, 15 s each (what CI runs)
#   scripts/fuzz.sh 1800 routes   # one target for 30 minutes
#   FUZZ_MAX_RUNS=10000000 scripts/fuzz.sh 1800   # each target until 10 M executions or 30 min
# Needs cargo-fuzz (installed here if missing). cargo fuzz uses unstable compiler flags
# (sanitizers, coverage passes); RUSTC_BOOTSTRAP lets the stable toolchain take them, for
# this build only.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-15}"
shift || true
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
  echo "usage: scripts/fuzz.sh SECONDS [TARGET...]" >&2
  exit 2
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked --version 0.13.2
fi

export RUSTC_BOOTSTRAP=1
cd fuzz
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi

echo "== building ${#targets[@]} fuzz targets"
# cargo fuzz has no --locked: check that fuzz/Cargo.lock needs no change first.
cargo metadata --locked --format-version 1 >/dev/null
cargo fuzz build -O

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
failed=()
printf '%-16s %14s %10s %8s\n' target executions exec/s corpus
for target in "${targets[@]}"; do
  mkdir -p "$scratch/$target" "corpus/$target"
  log="$scratch/$target.log"
  # -rss_limit_mb: a target that needs more than this is itself a finding.
  if cargo fuzz run -O "$target" "$scratch/$target" "corpus/$target" -- \
      -max_total_time="$seconds" ${FUZZ_MAX_RUNS:+-runs="$FUZZ_MAX_RUNS"} -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    speed="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
    units="$(find "$scratch/$target" "corpus/$target" -type f | wc -l)"
    printf '%-16s %14s %10s %8s\n' "$target" "${runs:-?}" "${speed:-?}" "$units"
  else
    echo "!! $target crashed:"
    grep -E "ERROR|panicked|SUMMARY|Test unit written|artifact_prefix" "$log" | head -20 || tail -40 "$log"
    failed+=("$target")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found crashes in: ${failed[*]}" >&2
  exit 1
fi
echo "fuzzing: no crash in ${#targets[@]} targets, ${seconds} s each"
