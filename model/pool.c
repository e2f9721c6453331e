/* pool.c - one helper thread for pool_for (see pool.h). */
#include "model/pool.h"

#include <cblas.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

static struct {
    pthread_mutex_t owner; // held by the caller whose loop the helper is on
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    // read by every pool_for caller without a lock (atomic, release/acquire: a caller that sees
    // it set also sees the helper's thread created); set once, under `owner`
    atomic_int started;
    atomic_int split_products; // set before `started` (so read after it), never cleared
    // pool_start_for_caller's mode (set before `started`): only member threads split, and a
    // caller takes back a half the helper has not picked up
    atomic_int members_only;
    atomic_int helper_tid; // the helper's kernel thread id, once it runs
    PoolFn fn;             // posted job: fn(ctx, begin, end); NULL when none waits
    void *ctx;
    size_t begin, end;
    int done;
} pool = {.owner = PTHREAD_MUTEX_INITIALIZER,
          .mu = PTHREAD_MUTEX_INITIALIZER,
          .cv = PTHREAD_COND_INITIALIZER};

static _Thread_local int pool_member; // this thread called pool_start_for_caller

static void *helper_main(void *arg) {
    const char *name = arg;
    if (name) pthread_setname_np(pthread_self(), name); // what top -H and /proc show
    atomic_store(&pool.helper_tid, (int)syscall(SYS_gettid));
    pthread_mutex_lock(&pool.mu);
    for (;;) {
        while (!pool.fn) pthread_cond_wait(&pool.cv, &pool.mu);
        PoolFn fn = pool.fn;
        void *ctx = pool.ctx;
        size_t begin = pool.begin, end = pool.end;
        pool.fn = NULL; // picked up: the caller now waits for it instead of taking it back
        pthread_mutex_unlock(&pool.mu);
        fn(ctx, begin, end);
        pthread_mutex_lock(&pool.mu);
        pool.done = 1;
        pthread_cond_broadcast(&pool.cv);
    }
    return NULL; // the helper lives as long as the process
}

static int pool_start(int members_only, const char *helper_name) {
    if (atomic_load_explicit(&pool.started, memory_order_acquire)) return 0;
    pthread_mutex_lock(&pool.owner); // two first callers at once start one helper
    int rc = 0;
    if (!atomic_load_explicit(&pool.started, memory_order_relaxed)) {
        atomic_store_explicit(&pool.members_only, members_only, memory_order_relaxed);
        rc = pthread_create(&pool.thread, NULL, helper_main, (void *)helper_name) ? -1 : 0;
        if (!rc) pthread_detach(pool.thread);
        // with two OpenBLAS threads the pool splits the products instead (pool.h); with more,
        // OpenBLAS keeps them: the pool's two threads would use fewer cores
        if (!rc && openblas_get_num_threads() <= 2) {
            openblas_set_num_threads(1);
            atomic_store_explicit(&pool.split_products, 1, memory_order_relaxed);
        }
        if (!rc) atomic_store_explicit(&pool.started, 1, memory_order_release);
    }
    pthread_mutex_unlock(&pool.owner);
    return rc;
}

int pool_set_threads(int n) {
    return n < 2 ? 0 : pool_start(0, NULL);
}

int pool_start_for_caller(const char *helper_name) {
    pool_member = 1;
    return pool_start(1, helper_name);
}

int pool_helper_tid(void) {
    return atomic_load(&pool.helper_tid);
}

/* The pool works for this thread: it runs, and (members-only mode) the thread is a member. */
static int pool_serves_caller(void) {
    return atomic_load_explicit(&pool.started, memory_order_acquire) &&
           (pool_member || !atomic_load_explicit(&pool.members_only, memory_order_relaxed));
}

int pool_splits_products(void) {
    return pool_serves_caller() && atomic_load_explicit(&pool.split_products, memory_order_relaxed);
}

void pool_for(size_t n, size_t grain, PoolFn fn, void *ctx) {
    if (!pool_serves_caller() || n < 2 * grain || pthread_mutex_trylock(&pool.owner)) {
        fn(ctx, 0, n);
        return;
    }
    size_t half = n / 2;
    pthread_mutex_lock(&pool.mu);
    pool.ctx = ctx, pool.begin = half, pool.end = n, pool.done = 0;
    pool.fn = fn;
    pthread_cond_broadcast(&pool.cv);
    pthread_mutex_unlock(&pool.mu);
    fn(ctx, 0, half);
    pthread_mutex_lock(&pool.mu);
    if (pool.fn && atomic_load_explicit(&pool.members_only, memory_order_relaxed)) {
        // the helper has not picked it up (no core for it, or not yet awake): do it here rather
        // than wait for a thread that may get no cycles at all
        pool.fn = NULL;
        pthread_mutex_unlock(&pool.mu);
        fn(ctx, half, n);
    } else {
        while (!pool.done) pthread_cond_wait(&pool.cv, &pool.mu);
        pthread_mutex_unlock(&pool.mu);
    }
    pthread_mutex_unlock(&pool.owner);
}
