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
# Needs clang and libclang-rt-14-dev (ops/setup.sh installs them).
set -euo pipefail
case "${1:-}" in
-h | --help)
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
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
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
failed=0
rows=()
for src in "$root"/tests/fuzz/fuzz_*.c; do
    name=$(basename "$src" .c)
    short=${name#fuzz_}
    bin="$build/tests/fuzz/$name"
    seeds="$root/tests/fuzz/corpus/$short"
    max_len=4096
    [ "$short" = blobs ] && max_len=140000 # a duplicate-window blob is 131,081 bytes
    [ "$short" = checkpoint ] && max_len=8192 # the seed checkpoints are ~6 KB
    log="$build/artifacts/$name.log"
    # 1. the seeds and kept regressions, each once
    if ! "$bin" -runs=0 "$seeds" >"$log" 2>&1; then
        echo "fuzz.sh: $name fails on its own corpus ($seeds); see $log" >&2
        tail -20 "$log" >&2
        failed=1
        rows+=("| $name | corpus replay FAILED | - | - |")
        continue
    fi
    # 2. fuzzing from a scratch copy of the corpus
    scratch=$(mktemp -d)
    cp "$seeds"/* "$scratch"/
    status=ok
    if ! "$bin" -max_total_time="$secs" -max_len="$max_len" -print_final_stats=1 \
        -artifact_prefix="$build/artifacts/$name-" "$scratch" >>"$log" 2>&1; then
        status="CRASH (input in $build/artifacts/, log $log)"
        failed=1
        tail -30 "$log" >&2
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rows+=("| $name | $status | ${execs:-?} | $(ls "$scratch" | wc -l) |")
    # the file harnesses write each input to a private temporary file or folder
    rm -rf "$scratch" /tmp/fuzz-safetensors-* /tmp/fuzz-readers-* /tmp/fuzz-tokfiles-* \
        /tmp/fuzz-checkpoint-*
done
echo "| harness | result | executions in ${secs} s | corpus after |"
echo "|---|---|---|---|"
printf '%s\n' "${rows[@]}"
exit $failed
