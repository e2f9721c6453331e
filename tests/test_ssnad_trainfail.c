/* test_ssnad_trainfail - a trainer that cannot allocate its batch stops the daemon with a clear
 * error (exit status 1, the reason in the log) instead of leaving the models silently untrained.
 * The allocation failure comes from the daemon's test hook SSNAD_FAULT=train_batch; no broker is
 * needed, since the trainer starts before the first poll. */
#include "check.h"
#include "ssnad_harness.h"

int main(void) {
    Harness h;
    harness_init(&h, "trainfail");
    harness_config(&h, "t", NULL); // its broker port: nothing listens there
    setenv("SSNAD_FAULT", "train_batch", 1);
    pid_t pid = harness_ssnad_start(&h, "t");
    int st = harness_ssnad_stop(pid, 0, 120);
    unsetenv("SSNAD_FAULT");
    CHECK_MSG(st == 1, "exit status %d", st);
    CHECK(!harness_sh("grep -q 'training stopped' %s/t.log", h.work));
    CHECK(!harness_sh("grep '\"loop stopped\"' %s/t.log | grep -q 'out of memory for a batch of "
                      "16 sequences (train.batch)'",
                      h.work));
    // without the fault the same configuration keeps running (until stopped)
    pid = harness_ssnad_start(&h, "t");
    sleep(5);
    CHECK(waitpid(pid, NULL, WNOHANG) == 0);
    CHECK(harness_ssnad_stop(pid, SIGTERM, 60) == 0);

    // a shutdown step that never returns (SSNAD_FAULT=stop_hang) ends by stop.timeout_seconds:
    // exit status 5, the step named on stderr
    harness_config(&h, "s", "stop.timeout_seconds = 2");
    setenv("SSNAD_FAULT", "stop_hang", 1);
    pid = harness_ssnad_start(&h, "s");
    unsetenv("SSNAD_FAULT");
    double t0 = harness_now();
    st = harness_ssnad_stop(pid, SIGTERM, 60);
    double took = harness_now() - t0;
    CHECK_MSG(st == 5, "a hung shutdown: exit status %d, not 5", st);
    CHECK_MSG(took < 30, "a hung shutdown took %.0f s with stop.timeout_seconds = 2", took);
    CHECK(
        !harness_sh("grep -q 'shutdown stuck in stopping the trainer after 2 s' %s/s.log", h.work));
    harness_cleanup(&h, check_failed_count > 0);
    return check_done();
}
