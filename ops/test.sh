#!/usr/bin/env bash
# ops/test.sh - README command #2: set up what is missing, build, run the whole CTest suite.
#   ops/test.sh              normal build in build/
#   ops/test.sh --sanitize   AddressSanitizer + UndefinedBehaviorSanitizer build in build-asan/
#   ops/test.sh --tsan       ThreadSanitizer build in build-tsan/, the tests labelled tsan (the
#                            pool, the metrics, the logger, the HTTP server, the publish helper,
#                            the refresh hand-over: threads of ours sharing memory in one process;
#                            tests/ssnad.cmake says why not the broker tests); a report fails the test
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
elif [ "${1:-}" = "--tsan" ]; then
    shift
    build="${SSNA_BUILD_DIR:-$root/build}-tsan"
    flags="$flags -DSSNA_TSAN=ON -DCMAKE_BUILD_TYPE=Debug"
    # every suppression in tests/tsan.supp says why; a report exits the process with 66
    export TSAN_OPTIONS="halt_on_error=1:exitcode=66:second_deadlock_stack=1:suppressions=$root/tests/tsan.supp"
    set -- -L tsan "$@"
fi
SSNA_BUILD_DIR="$build" SSNA_CMAKE_FLAGS="$flags" bash "$root/ops/setup.sh"
cd "$build"
# at least 2 at once: the broker tests (one at a time, tests/ssnad.cmake) mostly wait on their
# daemons, so a CPU-bound test beside them uses what they leave
jobs=$(nproc 2>/dev/null || echo 2)
[ "$jobs" -ge 2 ] || jobs=2
ctest --output-on-failure -j "$jobs" "$@"
