/* test_ssnad_crash - exactly-once state across crashes: ssnad is killed with SIGKILL at random
 * points while it consumes a replayed slice of Scientific, restarted each time, and at the end its
 * committed state (events applied, offsets, every user's sequence, the item cache) equals that of
 * an uninterrupted run over the same topics, and no event was skipped. */
#include <math.h>

#include "check.h"
#include "ssnad_harness.h"

#define N_USERS 30
#define KILLS   5

/* Dump a store (ssnad --dump-state) into a malloc'd text. */
static char *dump(Harness *h, const char *name) {
    char db[512], users[512], out[512];
    snprintf(db, sizeof db, "%s/%s.db", h->work, name);
    snprintf(users, sizeof users, "%s/users.txt", h->work);
    snprintf(out, sizeof out, "%s/%s.dump", h->work, name);
    if (harness_sh("%s/daemon/ssnad --dump-state %s --users %s > %s", h->build, db, users, out))
        harness_die("dump of %s failed", db);
    FILE *f = fopen(out, "r");
    if (!f) harness_die("cannot read %s", out);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *s = calloc((size_t)n + 1, 1);
    if (fread(s, 1, (size_t)n, f) != (size_t)n) harness_die("short read of %s", out);
    fclose(f);
    return s;
}

/* Lines equal, except the two state digests of an item line, which may differ in the last bits
 * (the encoder's batches differ between runs). Returns the number of differing lines. */
static int compare_dumps(const char *a, const char *b) {
    int diffs = 0;
    while (*a || *b) {
        size_t la = strcspn(a, "\n"), lb = strcspn(b, "\n");
        char x[8192], y[8192];
        snprintf(x, sizeof x, "%.*s", (int)la, a);
        snprintf(y, sizeof y, "%.*s", (int)lb, b);
        int same = !strcmp(x, y);
        if (!same && !strncmp(x, "item ", 5) && !strncmp(y, "item ", 5)) {
            char *px = strstr(x, " states "), *py = strstr(y, " states ");
            double sx, qx, sy, qy;
            char hx[8], hy[8];
            if (px && py && (size_t)(px - x) == (size_t)(py - y) &&
                !strncmp(x, y, (size_t)(px - x)) &&
                sscanf(px, " states %7s %lf %lf", hx, &sx, &qx) == 3 &&
                sscanf(py, " states %7s %lf %lf", hy, &sy, &qy) == 3 && !strcmp(hx, hy))
                same = fabs(sx - sy) <= 1e-2 * (1 + fabs(sx)) && fabs(qx - qy) <= 1e-3 * (1 + qx);
        }
        if (!same && diffs++ < 10)
            fprintf(stderr, "dump differs:\n  ref:   %s\n  crash: %s\n", x, y);
        a += la + (a[la] == '\n'), b += lb + (b[lb] == '\n');
    }
    return diffs;
}

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

    char *a = dump(&h, "ref"), *b = dump(&h, "crash");
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
    CHECK(compare_dumps(a, b) == 0);
    free(a), free(b);
    harness_cleanup(&h, check_failed_count > 0);
    return check_done();
}
