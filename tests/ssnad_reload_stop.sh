#!/usr/bin/env bash
# tests/ssnad_reload_stop.sh - a stop signal during a reload is not lost. When the group takes
# the partitions away ssnad re-executes itself (exit path 4, ssnad_main.c); a SIGTERM that
# arrives meanwhile must still stop it cleanly (exit 0), in both windows:
#   - in the old image's shutdown (caught by its handler): ssnad exits 0 instead of re-executing;
#   - between the re-exec and the new image's handlers (blocked, pending across execve): the new
#     image stops as soon as it has them.
# SSNAD_FAULT=reload_stop_* (docs/daemon.md "Test hooks") makes the reload happen right after
# start-up and sends the SIGTERM in the window named. No broker is needed (state and threads
# start before Kafka is contacted). Without the fix each case ran on until this script killed it.
set -uo pipefail
build="${SSNA_BUILD_DIR:?run through ctest}"
model="${SSNA_MODEL_DIR:?run through ctest}"
ssnad="$build/daemon/ssnad"
tmp=$(mktemp -d)
fail=0
trap '[ $fail = 0 ] && rm -rf "$tmp"' EXIT
check() { # check DESCRIPTION COMMAND...
    if "${@:2}"; then echo "ok: $1"; else echo "FAILED: $1"; fail=1; fi
}
[ -x "$ssnad" ] && [ -d "$model" ] || { echo "FAILED: ssnad or $model missing"; exit 1; }

# run NAME FAULT: ssnad with SSNAD_FAULT=FAULT until it exits (at most 60 s, then SIGKILL);
# prints its exit status
run() {
    local name=$1 fault=$2
    SSNAD_FAULT=$fault "$ssnad" --set brokers=127.0.0.1:1 --set db.path="$tmp/db-$name" \
        --set model.dir="$model" --set http.listen=off --set log.format=text \
        > "$tmp/$name.log" 2>&1 &
    local pid=$! waited=0
    while kill -0 $pid 2>/dev/null && [ $waited -lt 600 ]; do
        sleep 0.1
        waited=$((waited + 1))
    done
    kill -KILL $pid 2>/dev/null && echo "  $name: still running after 60 s, killed" >&2
    wait $pid
    echo $?
}

st=$(run shutdown reload_stop_in_shutdown)
check "a stop during the reload's shutdown: exit 0 (not a re-exec that runs on)" test "$st" = 0
check "  and it says so" grep -q "stop signal during the reload" "$tmp/shutdown.log"
check "  without starting over" test "$(grep -c "ssnad running" "$tmp/shutdown.log")" -eq 1

st=$(run exec reload_stop_at_exec)
check "a stop between the re-exec and the new handlers: exit 0" test "$st" = 0
check "  the reload happened once" \
    test "$(grep -c "reloading from the last checkpoint" "$tmp/exec.log")" -eq 1
check "  and the new image stopped cleanly" grep -q "ssnad stopping exit_code=0" "$tmp/exec.log"
[ $fail = 0 ] || { echo "logs:"; tail -n 20 "$tmp"/*.log; }
exit $fail
