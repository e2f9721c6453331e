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
    harness_cleanup(&h, check_failed_count > 0);
    return check_done();
}
