/* pool.h - a second thread for the elementwise loops of training.
 *
 * With 2 OpenBLAS threads the matrix products use both cores, but everything between them (GRU
 * gates, adapter mixing, GELU, cross-entropy rows, Adam) ran on one, while the BLAS worker spun
 * idle: a third of a training epoch. pool_for splits such a loop in two halves, the caller runs
 * the first and one helper thread the second. Only the callers that ask for it use it (ssna train,
 * bench_train); the daemon keeps its own threads and never starts the helper.
 *
 * Safe from any thread: a caller that finds the helper busy (another pool_for in flight) runs its
 * whole loop itself. Each half must touch only its own elements; results do not depend on the
 * split (no reduction crosses it), so one and two threads give identical numbers.
 */
#ifndef SSNA_MODEL_POOL_H
#define SSNA_MODEL_POOL_H

#include <stddef.h>

// fn(ctx, begin, end): the loop body over elements [begin, end)
typedef void (*PoolFn)(void *ctx, size_t begin, size_t end);

/* 1 (default: every loop on the calling thread) or 2 (start the helper). Call it before the
 * loops run, from one thread; 0 or -1 if the helper cannot start (the loops then run inline). */
int pool_set_threads(int n);
/* fn over [0, n): split in two when the helper is free and n >= 2 * grain. */
void pool_for(size_t n, size_t grain, PoolFn fn, void *ctx);

#endif
