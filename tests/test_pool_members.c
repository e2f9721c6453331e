/* test_pool_members.c - the daemon's form of the pool (pool_start_for_caller, model/pool.h):
 * the helper works for member threads only and a member takes back a half the helper has not
 * picked up. Its own process: the pool's mode is decided once per process (test_pool has the
 * other form). Checked:
 *   - a member's loops visit every element exactly once, whether the helper or the member ran
 *     the second half (take-back must neither lose a half nor run it twice), and both happen:
 *     with a core of its own the helper runs long second halves; moved under SCHED_IDLE onto
 *     the member's core (the daemon's case on busy cores: a helper that gets no cycles) its
 *     halves are taken back and the loops still complete;
 *   - a thread that is not a member never has a half run by the helper, and its products are
 *     not split (pool_splits_products is per thread);
 *   - the helper carries the name given and its thread id is reported;
 *   - a second start from another thread makes that thread a member (one helper for both).
 * ThreadSanitizer runs it too (ops/test.sh --tsan). */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"
#include "model/pool.h"

#define N_LONG 2000003 // a few ms a half: the helper is awake before the member's half ends
#define N_TINY 64      // ~100 ns a half: over before a sleeping helper can wake
#define ROUNDS 100
#define HELPER "pool-test-2"

typedef struct {
    unsigned char *hits;
    size_t n;
    pid_t caller;                // the thread that called pool_for
    atomic_int halves_elsewhere; // halves run by another thread (the helper)
    atomic_int second_by_caller; // second halves the caller ran itself (taken back)
    int wrong, splits, start_rc; // a thread's findings, CHECKed by main (check.h is not atomic)
} Job;

static void visit(void *p, size_t begin, size_t end) {
    Job *j = p;
    for (size_t i = begin; i < end; i++) j->hits[i]++;
    pid_t self = (pid_t)syscall(SYS_gettid);
    if (self != j->caller) atomic_fetch_add(&j->halves_elsewhere, 1);
    if (begin > 0 && self == j->caller) atomic_fetch_add(&j->second_by_caller, 1);
}

/* ROUNDS loops of n over one job from the calling thread; 0 when every element was visited
 * exactly ROUNDS times. */
static int run_rounds(Job *j, size_t n) {
    j->n = n, j->hits = calloc(n, 1), j->caller = (pid_t)syscall(SYS_gettid);
    atomic_store(&j->halves_elsewhere, 0), atomic_store(&j->second_by_caller, 0);
    for (int r = 0; r < ROUNDS; r++) pool_for(n, 16, visit, j);
    int wrong = 0;
    for (size_t i = 0; i < n; i++) wrong += j->hits[i] != ROUNDS;
    free(j->hits);
    return wrong;
}

static void *outsider(void *arg) { // never calls pool_start_for_caller
    Job *j = arg;
    j->wrong = run_rounds(j, N_LONG);
    j->splits = pool_splits_products();
    return NULL;
}

static void *second_member(void *arg) {
    Job *j = arg;
    j->start_rc = pool_start_for_caller(HELPER); // already started: joins
    j->splits = pool_splits_products();
    j->wrong = run_rounds(j, N_TINY);
    return NULL;
}

/* Put thread tid on one cpu (or on every cpu of `all`) under policy. 0, or -1. */
static int place(pid_t tid, int cpu, const cpu_set_t *all, int policy) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    struct sched_param sp = {0};
    int rc = sched_setaffinity(tid, sizeof(cpu_set_t), all ? all : &one);
    return rc || sched_setscheduler(tid, policy, &sp) ? -1 : 0;
}

int main(void) {
    CHECK(pool_helper_tid() == 0);
    CHECK(pool_start_for_caller(HELPER) == 0);
    CHECK(pool_splits_products());

    Job long_job = {0};
    int wrong = run_rounds(&long_job, N_LONG);
    CHECK_MSG(wrong == 0, "long loops: %d elements not visited %d times", wrong, ROUNDS);
    int helped = atomic_load(&long_job.halves_elsewhere);
    printf("long loops (%d x %d elements): the helper ran %d second halves, the member took "
           "back %d\n",
           ROUNDS, N_LONG, helped, atomic_load(&long_job.second_by_caller));
    CHECK_MSG(helped > 0, "the helper ran none of %d long second halves", ROUNDS);
    CHECK(helped + atomic_load(&long_job.second_by_caller) == ROUNDS);

    // the helper without cycles: SCHED_IDLE on the member's own core, which the member keeps busy
    int tid = pool_helper_tid();
    pid_t self = (pid_t)syscall(SYS_gettid);
    cpu_set_t all;
    int cpu = sched_getcpu();
    CHECK(tid > 0 && cpu >= 0 && sched_getaffinity(0, sizeof all, &all) == 0);
    CHECK(place(self, cpu, NULL, SCHED_OTHER) == 0 && place(tid, cpu, NULL, SCHED_IDLE) == 0);
    Job starved = {0};
    wrong = run_rounds(&starved, N_LONG);
    CHECK_MSG(wrong == 0, "starved helper: %d elements not visited %d times", wrong, ROUNDS);
    int taken = atomic_load(&starved.second_by_caller);
    printf("helper under SCHED_IDLE on the member's core: %d of %d second halves taken back\n",
           taken, ROUNDS);
    CHECK_MSG(taken > ROUNDS / 2, "only %d of %d second halves taken back", taken, ROUNDS);
    CHECK(place(self, 0, &all, SCHED_OTHER) == 0 && place(tid, 0, &all, SCHED_OTHER) == 0);

    // the helper's identity: named as asked, its thread id reported
    char path[64], name[32] = "";
    snprintf(path, sizeof path, "/proc/self/task/%d/comm", tid);
    FILE *f = fopen(path, "r");
    CHECK_MSG(f && fscanf(f, "%31s", name) == 1 && !strcmp(name, HELPER), "helper %d is '%s'", tid,
              name);
    if (f) fclose(f);

    // a non-member racing the members for the helper, and a second member
    Job out = {0}, second = {0}, again = {0};
    pthread_t t1, t2;
    CHECK(pthread_create(&t1, NULL, outsider, &out) == 0);
    CHECK(pthread_create(&t2, NULL, second_member, &second) == 0);
    wrong = run_rounds(&again, N_TINY);
    CHECK_MSG(wrong == 0, "member beside the others: %d elements wrong", wrong);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    CHECK_MSG(out.wrong == 0, "outsider: %d elements not visited %d times", out.wrong, ROUNDS);
    CHECK_MSG(atomic_load(&out.halves_elsewhere) == 0,
              "the helper ran %d halves of a thread that is not a member",
              atomic_load(&out.halves_elsewhere));
    CHECK_MSG(!out.splits, "a thread that is not a member splits its products");
    CHECK(second.start_rc == 0 && second.splits);
    CHECK_MSG(second.wrong == 0, "second member: %d elements wrong", second.wrong);
    return check_done();
}
