#!/usr/bin/env bash
# ops/fuzz.sh - build the libFuzzer harnesses (tests/fuzz/fuzz_*.c) with clang under
# AddressSanitizer + UndefinedBehaviorSanitizer into build-fuzz/, replay every seed corpus
# (tests/fuzz/corpus/NAME/: the regressions), then fuzz each harness for SECONDS.
#
#   ops/fuzz.sh [SECONDS]     (default 60; CI runs 15)
#
# New inputs go to a scratch copy of each corpus (the repository's corpus grows only by inputs
# added on purpose: a crash, once fixed, is kept there as crash-WHAT). A crash stops that
# harness, its input is written to build-fuzz/artifacts/, and the script exits 1 after the table.
# Harnesses run SSNA_FUZZ_JOBS at a time (default: the number of cores).
# Needs clang and libclang-rt-14-dev (ops/setup.sh installs them).
set -euo pipefail
case "${1:-}" in
-h | --help)
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
esac
secs="${1:-60}"
[[ "$secs" =~ ^[0-9]+$ ]] || { echo "fuzz.sh: SECONDS must be a whole number, not '$secs'" >&2; exit 2; }
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="${SSNA_FUZZ_BUILD_DIR:-$root/build-fuzz}"
command -v clang >/dev/null || { echo "fuzz.sh: clang is missing (run ops/setup.sh)" >&2; exit 1; }
CC=clang cmake -S "$root" -B "$build" -DSSNA_FUZZ=ON -DSSNA_WERROR=OFF -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$build" -j2 --target fuzzers >/dev/null
mkdir -p "$build/artifacts"
rm -f "$build"/artifacts/*.row
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
jobs="${SSNA_FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}"

# One harness: corpus replay, then fuzzing; its table row goes to artifacts/NAME.row, and the
# status is 1 on a failure.
fuzz_one() {
    local name=$1 short=${1#fuzz_}
    local bin="$build/tests/fuzz/$name" seeds="$root/tests/fuzz/corpus/${1#fuzz_}"
    local max_len=4096 log="$build/artifacts/$name.log" row="$build/artifacts/$name.row"
    [ "$short" = blobs ] && max_len=140000 # a duplicate-window blob is 131,081 bytes
    [ "$short" = checkpoint ] && max_len=8192 # the seed checkpoints are ~6 KB
    # 1. the seeds and kept regressions, each once
    if ! "$bin" -runs=0 "$seeds" >"$log" 2>&1; then
        echo "fuzz.sh: $name fails on its own corpus ($seeds); see $log" >&2
        tail -20 "$log" >&2
        echo "| $name | corpus replay FAILED | - | - |" >"$row"
        return 1
    fi
    # 2. fuzzing from a scratch copy of the corpus
    local scratch status=ok rc=0
    scratch=$(mktemp -d)
    cp "$seeds"/* "$scratch"/
    if ! "$bin" -max_total_time="$secs" -max_len="$max_len" -print_final_stats=1 \
        -artifact_prefix="$build/artifacts/$name-" "$scratch" >>"$log" 2>&1; then
        status="CRASH (input in $build/artifacts/, log $log)"
        rc=1
        tail -30 "$log" >&2
    fi
    local execs
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    echo "| $name | $status | ${execs:-?} | $(ls "$scratch" | wc -l) |" >"$row"
    # the file harnesses write each input to a private temporary file or folder, named after them
    rm -rf "$scratch" /tmp/fuzz-"$short"-*
    return $rc
}

# the harnesses, $jobs at a time (each is one process on one core)
names=()
for src in "$root"/tests/fuzz/fuzz_*.c; do names+=("$(basename "$src" .c)"); done
failed=0
running=0
for name in "${names[@]}"; do
    if [ "$running" -ge "$jobs" ]; then
        wait -n || failed=1
        running=$((running - 1))
    fi
    fuzz_one "$name" &
    running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
    wait -n || failed=1
    running=$((running - 1))
done
echo "| harness | result | executions in ${secs} s | corpus after |"
echo "|---|---|---|---|"
for name in "${names[@]}"; do cat "$build/artifacts/$name.row"; done
exit $failed
