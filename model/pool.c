/* pool.c - one helper thread for pool_for (see pool.h). */
#include "model/pool.h"

#include <cblas.h>
#include <pthread.h>
#include <stdatomic.h>

static struct {
    pthread_mutex_t owner; // held by the caller whose loop the helper is on
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    // read by every pool_for caller without a lock (atomic, release/acquire: a caller that sees
    // it set also sees the helper's thread created); set once, under `owner`
    atomic_int started;
    atomic_int split_products; // set before `started` (so read after it), never cleared
    PoolFn fn;                 // posted job: fn(ctx, begin, end); NULL when there is none
    void *ctx;
    size_t begin, end;
    int done;
} pool = {.owner = PTHREAD_MUTEX_INITIALIZER,
          .mu = PTHREAD_MUTEX_INITIALIZER,
          .cv = PTHREAD_COND_INITIALIZER};

static void *helper_main(void *arg) {
    (void)arg;
    pthread_mutex_lock(&pool.mu);
    for (;;) {
        while (!pool.fn) pthread_cond_wait(&pool.cv, &pool.mu);
        PoolFn fn = pool.fn;
        void *ctx = pool.ctx;
        size_t begin = pool.begin, end = pool.end;
        pthread_mutex_unlock(&pool.mu);
        fn(ctx, begin, end);
        pthread_mutex_lock(&pool.mu);
        pool.fn = NULL, pool.done = 1;
        pthread_cond_broadcast(&pool.cv);
    }
    return NULL; // the helper lives as long as the process
}

int pool_set_threads(int n) {
    if (n < 2 || atomic_load_explicit(&pool.started, memory_order_acquire)) return 0;
    pthread_mutex_lock(&pool.owner); // two first callers at once start one helper
    int rc = 0;
    if (!atomic_load_explicit(&pool.started, memory_order_relaxed)) {
        rc = pthread_create(&pool.thread, NULL, helper_main, NULL) ? -1 : 0;
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

int pool_splits_products(void) {
    return atomic_load_explicit(&pool.started, memory_order_acquire) &&
           atomic_load_explicit(&pool.split_products, memory_order_relaxed);
}

void pool_for(size_t n, size_t grain, PoolFn fn, void *ctx) {
    if (!atomic_load_explicit(&pool.started, memory_order_acquire) || n < 2 * grain ||
        pthread_mutex_trylock(&pool.owner)) {
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
    while (!pool.done) pthread_cond_wait(&pool.cv, &pool.mu);
    pthread_mutex_unlock(&pool.mu);
    pthread_mutex_unlock(&pool.owner);
}
