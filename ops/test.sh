#!/usr/bin/env bash
# ops/test.sh - README command #2: set up what is missing, build, run the whole CTest suite.
#   ops/test.sh              normal build in build/
#   ops/test.sh --sanitize   AddressSanitizer + UndefinedBehaviorSanitizer build in build-asan/
# Extra arguments after the flags go to ctest (e.g. -R kernels).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="${SSNA_BUILD_DIR:-$root/build}"
flags="-DSSNA_WERROR=ON"
if [ "${1:-}" = "--sanitize" ]; then
    shift
    build="${SSNA_BUILD_DIR:-$root/build}-asan"
    flags="$flags -DSSNA_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug"
    # OpenBLAS keeps per-thread buffers for the life of the process; they are not leaks of ours.
    export LSAN_OPTIONS="suppressions=$root/tests/lsan.supp:print_suppressions=0"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
    export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
fi
SSNA_BUILD_DIR="$build" SSNA_CMAKE_FLAGS="$flags" bash "$root/ops/setup.sh"
cd "$build"
ctest --output-on-failure -j 2 "$@"
