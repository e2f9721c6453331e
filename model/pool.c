/* pool.c - one helper thread for pool_for (see pool.h). */
#include "model/pool.h"

#include <pthread.h>

static struct {
    pthread_mutex_t owner; // held by the caller whose loop the helper is on
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    int started;
    PoolFn fn; // posted job: fn(ctx, begin, end); NULL when there is none
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
    if (n < 2 || pool.started) return 0;
    if (pthread_create(&pool.thread, NULL, helper_main, NULL)) return -1;
    pthread_detach(pool.thread);
    pool.started = 1;
    return 0;
}

void pool_for(size_t n, size_t grain, PoolFn fn, void *ctx) {
    if (!pool.started || n < 2 * grain || pthread_mutex_trylock(&pool.owner)) {
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
