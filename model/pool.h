/* pool.h - a second thread for training: the matrix products and the loops between them.
 *
 * Training's products are many and medium-sized, and the loops between them (GRU gates, adapter
 * mixing, GELU, dropout masks, attention rows, cross-entropy rows, Adam) are many and short. With
 * OpenBLAS's own two threads the products used both cores but the loops ran on one while the BLAS
 * worker spun in sched_yield (a third of an epoch), and the spinning worker lost badly to any
 * other load on the machine. So the pool does both: pool_for splits a loop in two halves, the
 * caller runs the first and one helper thread the second, and kernels.h's products are split the
 * same way (rows or columns of the output), each half a one-thread OpenBLAS call. Starting the
 * helper therefore sets OpenBLAS to one thread (where it had two; with more cores OpenBLAS keeps
 * the products). Only the callers that ask for it use it: ssna train and bench_train for every
 * thread (pool_set_threads), ssnad for its trainer alone (pool_start_for_caller, train.threads =
 * 2), whose helper must never hold up serving or the trainer itself.
 *
 * Safe from any thread: a caller that finds the helper busy (another pool_for in flight) runs its
 * whole loop itself. Each half must touch only its own elements and no sum crosses the split, so
 * the loops give identical numbers on one thread or two. A split product can differ from the
 * whole one in the last bit (OpenBLAS may pick another kernel for a smaller shape).
 */
#ifndef SSNA_MODEL_POOL_H
#define SSNA_MODEL_POOL_H

#include <stddef.h>

// fn(ctx, begin, end): the loop body over elements [begin, end)
typedef void (*PoolFn)(void *ctx, size_t begin, size_t end);

/* 1 (default: every loop on the calling thread) or 2 (start the helper; if OpenBLAS has at most
 * two threads, set it to one per caller and split the products over the pool). Call it before the
 * loops run; 0, or -1 if the helper cannot start (everything then runs as before). */
int pool_set_threads(int n);
/* The daemon's form of pool_set_threads(2): the helper (named helper_name, NULL = unnamed)
 * works for the calling thread alone and for any other thread that calls this; every other
 * thread's loops and products run whole, as without a pool. The helper inherits the caller's
 * scheduling policy and cgroup (ssnad's trainer: SCHED_IDLE), and a caller that finishes its half
 * before the helper has picked up the other takes it back, so a helper that gets no core costs
 * nothing but the hand-over. Only the first start (of either form) decides the mode. 0, or -1 if
 * the helper cannot start (the caller's loops then run whole). */
int pool_start_for_caller(const char *helper_name);
/* The helper's kernel thread id once it runs (to lift its priority at a stop), else 0. */
int pool_helper_tid(void);
/* 1 when the helper runs for this thread and kernels.h's products split over it (OpenBLAS had at
 * most two threads when it started), else 0. */
int pool_splits_products(void);
/* fn over [0, n): split in two when the helper is free and n >= 2 * grain. */
void pool_for(size_t n, size_t grain, PoolFn fn, void *ctx);

#endif
