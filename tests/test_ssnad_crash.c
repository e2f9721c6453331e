/* test_ssnad_crash - exactly-once state across crashes: ssnad is killed with SIGKILL at random
 * points while it consumes a replayed slice of Scientific, restarted each time, and at the end its
 * committed state (events applied, offsets, every user's sequence, the item cache) equals that of
 * an uninterrupted run over the same topics, and no event was skipped. */
#include <math.h>

#include "check.h"
#include "ssnad_harness.h"

#define N_USERS 30
#define KILLS   5

int main(void) {
    Harness h;
    harness_init(&h, "crash");
    harness_slice(&h, N_USERS);
    if (harness_sh("cut -f1 %s/Scientific.user2index > %s/users.txt", h.slice, h.work))
        harness_die("user list");
    harness_broker_start(&h);
    CHECK(harness_replay(&h, "--seed 5") == 0);
    long n = harness_replay_count(&h, "events"), n_items = harness_replay_count(&h, "items");
    CHECK_MSG(n > 0 && n_items > 0, "replay published %ld events, %ld items", n, n_items);

    // the reference: one uninterrupted run over the whole stream
    harness_config(&h, "ref", "checkpoint.every_events = 100");
    pid_t ref = harness_ssnad_start(&h, "ref");
    // the two topics are consumed at their own paces: wait for both
    CHECK(harness_wait_events(&h, "ref", (uint64_t)n, 400) == 0);
    CHECK(harness_wait_items(&h, "ref", (size_t)n_items, 400) == 0);
    CHECK(harness_ssnad_stop(ref, SIGTERM, 120) == 0);

    // the same stream, killed at random points (small checkpoints, so kills fall between them,
    // inside them and inside the embedding backlog)
    harness_config(&h, "crash", "checkpoint.every_events = 37\ncheckpoint.every_seconds = 0.5");
    char db[512];
    snprintf(db, sizeof db, "%s/crash.db", h.work);
    uint64_t last = 0;
    for (int k = 0; k < KILLS; k++) {
        pid_t pid = harness_ssnad_start(&h, "crash");
        // kill after this run has committed something new, at a random point after that
        for (double t0 = harness_now();
             harness_events_applied(db) <= last && (uint64_t)n > last && harness_now() - t0 < 120;)
            usleep(100000);
        usleep((useconds_t)(rand() % 2000000));
        int st = harness_ssnad_stop(pid, SIGKILL, 30);
        uint64_t now = harness_events_applied(db);
        fprintf(stderr, "kill %d: status %d, committed %llu of %ld events\n", k, st,
                (unsigned long long)now, n);
        CHECK(st == 128 + SIGKILL || st == 0);
        CHECK(now >= last); // committed progress never goes back
        last = now;
    }
    pid_t pid = harness_ssnad_start(&h, "crash");
    CHECK(harness_wait_events(&h, "crash", (uint64_t)n, 400) == 0);
    CHECK(harness_wait_items(&h, "crash", (size_t)n_items, 400) == 0);
    int final_status = harness_ssnad_stop(pid, SIGTERM, 120);
    CHECK_MSG(final_status == 0, "final SIGTERM stop: exit status %d", final_status);

    char *a = harness_dump_state(&h, "ref"), *b = harness_dump_state(&h, "crash");
    char expect[64];
    snprintf(expect, sizeof expect, "events_applied %ld\n", n);
    CHECK_MSG(!strncmp(a, expect, strlen(expect)), "reference: %.40s", a);
    CHECK_MSG(!strncmp(b, expect, strlen(expect)), "crashed: %.40s", b);
    // every user's stored event counter adds up to the stream: nothing skipped, nothing twice
    long sum = 0;
    for (const char *p = strstr(b, "\nuser "); p; p = strstr(p + 1, "\nuser ")) {
        const char *e = strstr(p, " events ");
        const char *nl = strchr(p + 1, '\n');
        if (e && (!nl || e < nl)) sum += atol(e + 8);
    }
    CHECK_MSG(sum == n, "user event counters add up to %ld, stream has %ld", sum, n);
    CHECK(strstr(b, "states no") == NULL); // every item of the stream was encoded
    CHECK(harness_compare_dumps(a, b, 0, "ref:", "crash:") == 0);
    free(a), free(b);
    harness_cleanup(&h, check_failed_count > 0);
    return check_done();
}
