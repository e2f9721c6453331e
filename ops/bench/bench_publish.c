/* bench_publish - how many lists per second ssnad's publisher computes, at the Games shape
 * (16,859 items, MiniLM hidden 384, a = 3, d = 256), by batch size and sequence length, with one
 * thread and with the publish helper (publish.threads = 2), and the sgemm peak of one thread
 * measured in the same run for scale.
 *
 * Each figure is ssnad_top_k_batch (the user tower of the batch, int8 bounds against the whole
 * catalogue, exact scores where a bound passes, top-10) over random item states and sequences.
 * The weights change only how many items pass their bound (scored exactly: a dot product each),
 * not the tower or the bound pass.
 * Then the refresh hand-over (ssnad_train_take_refresh, on the main thread: a publishing turn
 * waits for it), two variants' worth of calls: a refresh of the serving size, swapped in, and
 * one the catalogue outgrew, copied (~39 MB a variant at this shape, what every hand-over did
 * before the swap); without and with 16 rows that arrived after the trainer's snapshot (the main
 * thread computes their vectors then).
 * Usage: bench_publish [seconds per measurement, default 0.5]
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/clock.h"
#include "bench_args.h"
#include "daemon/ssnad.h"
#include "model/rng.h"

#define N_ITEMS 16859
#define HIDDEN  384
#define LAYERS  3
#define K       10
#define B_MAX   128

static void *must(void *p) {
    if (!p) {
        fprintf(stderr, "bench_publish: out of memory\n");
        exit(1);
    }
    return p;
}

// seconds per ssnad_top_k_batch call of B users with sequences of length len
static double time_batch(Ssnad *d, int B, int len, double min_seconds, uint64_t *rng) {
    static uint32_t seq[B_MAX][SSNAD_SEQ_MAX];
    const uint32_t *seqs[B_MAX];
    int lens[B_MAX], counts[B_MAX];
    static int32_t ids[B_MAX * K];
    static float scores[B_MAX * K];
    char err[256];
    for (int u = 0; u < B; u++) {
        for (int t = 0; t < len; t++) seq[u][t] = (uint32_t)(rng_next(rng) % N_ITEMS);
        seqs[u] = seq[u], lens[u] = len;
    }
    int reps = 0;
    double t0 = clock_monotonic_s(), t;
    do {
        if (ssnad_top_k_batch(d, 0, seqs, lens, B, K, ids, scores, counts, err, sizeof err)) {
            fprintf(stderr, "bench_publish: %s\n", err);
            exit(1);
        }
        reps++;
        t = clock_monotonic_s() - t0;
    } while (t < min_seconds || reps < 3);
    return t / reps;
}

// a refresh of rows [0, n) in buffers of cap rows, posted as the trainer posts it; vectors are
// the serving ones (the cost does not depend on their values), every page written
static void post_refresh(Ssnad *d, size_t n, size_t cap) {
    SsnadVariant *v = &d->var[0];
    size_t dd = (size_t)v->serve.cfg.d;
    float *params = must(malloc(v->serve.ps.total * sizeof(float)));
    memcpy(params, v->serve.ps.params, v->serve.ps.total * sizeof(float));
    float *raw = must(malloc(cap * dd * sizeof(float)));
    float *norm = must(malloc(cap * dd * sizeof(float)));
    memcpy(raw, v->raw, n * dd * sizeof(float));
    memcpy(norm, v->norm, n * dd * sizeof(float));
    Panels bounds = {0};
    if (panel_reserve(&bounds, cap, (int)dd)) must(NULL);
    panel_copy_rows(&bounds, &v->bounds, n);
    ssnad_train_post_refresh(d, 0, params, raw, norm, &bounds, n, cap, v->serve.ps.step,
                             d->state_gen);
}

// seconds per ssnad_train_take_refresh of a refresh of cap rows, late rows after its snapshot
// (the trainer's spare emptied between calls, as the trainer does)
static double time_handover(Ssnad *d, size_t cap, size_t late, double min_seconds) {
    double total = 0;
    int reps = 0;
    do {
        post_refresh(d, d->n_items - late, cap);
        double t0 = clock_monotonic_s();
        ssnad_train_take_refresh(d);
        total += clock_monotonic_s() - t0;
        reps++;
        float *raw, *norm;
        Panels bounds;
        ssnad_train_take_spare(d, 0, &raw, &norm, &bounds);
        free(raw), free(norm), panel_free(&bounds);
    } while (total < min_seconds || reps < 5);
    return total / reps;
}

int main(int argc, char **argv) {
    double min_seconds =
        argc > 1 ? bench_arg_double("bench_publish", "seconds per measurement", argv[1], 1e-3, 3600)
                 : 0.5;
    openblas_set_num_threads(1); // as ssnad: one BLAS thread per caller
    char err[512];
    uint64_t rng = 42;
    // the peak for scale: one 1024^3 sgemm on one thread
    int n = 1024;
    float *a = must(malloc(sizeof(float) * n * n)), *c = must(malloc(sizeof(float) * n * n));
    rng_fill_normal(a, (size_t)n * n, 0.0f, 1.0f, &rng);
    double t0 = clock_monotonic_s();
    for (int r = 0; r < 5; r++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, a, n, 0.0f, c,
                    n);
    printf("bench_publish: sgemm 1024^3 on one thread: %.1f GFLOP/s\n",
           5 * 2.0 * n * n * n / (clock_monotonic_s() - t0) * 1e-9);
    free(a), free(c);

    Ssnad *d = must(calloc(1, sizeof *d));
    float *states = must(malloc(sizeof(float) * N_ITEMS * LAYERS * HIDDEN));
    rng_fill_normal(states, (size_t)N_ITEMS * LAYERS * HIDDEN, 0.0f, 1.0f, &rng);
    SsnaConfig cfg = ssna_config_default(SSNA_VARIANT_GRU, N_ITEMS, HIDDEN, LAYERS);
    if (ssnad_state_open_serving(d, &cfg, 7, states, NULL, N_ITEMS, err, sizeof err)) {
        fprintf(stderr, "bench_publish: %s\n", err);
        return 1;
    }
    free(states);
    SsnadVariant *v = &d->var[0];

    DaemonConfig dc;
    config_init(&dc);
    d->cfg = &dc;
    const int batches[] = {1, 8, 32, 128}, lengths[] = {2, 8, 50};
    printf("  %-30s %12s %12s %12s\n", "batch x sequence length", "1 thread", "2 threads",
           "speed-up");
    for (size_t li = 0; li < sizeof lengths / sizeof *lengths; li++)
        for (size_t bi = 0; bi < sizeof batches / sizeof *batches; bi++) {
            int B = batches[bi], len = lengths[li];
            dc.publish_threads = 1;
            double t1 = time_batch(d, B, len, min_seconds, &rng);
            dc.publish_threads = 2;
            if (ssnad_publish_start(d, err, sizeof err)) {
                fprintf(stderr, "bench_publish: %s\n", err);
                return 1;
            }
            double t2 = time_batch(d, B, len, min_seconds, &rng);
            ssnad_publish_stop(d);
            char what[64];
            snprintf(what, sizeof what, "%3d users x %2d items", B, len);
            printf("  %-30s %7.0f /s   %7.0f /s   %9.2fx   (%.2f / %.2f ms a batch)\n", what,
                   B / t1, B / t2, t1 / t2, t1 * 1e3, t2 * 1e3);
        }

    // the hand-over: refreshes of the serving buffers' size (vec_cap rows) and of another; the
    // 16 late rows get their vectors from the new parameters
    if (ssnad_train_open(d, err, sizeof err)) {
        fprintf(stderr, "bench_publish: %s\n", err);
        return 1;
    }
    for (size_t late = 0; late <= 16; late += 16) {
        double swap = time_handover(d, v->vec_cap, late, min_seconds);
        double copy = time_handover(d, v->vec_cap + 16, late, min_seconds); // copied
        printf("  refresh hand-over, 2 variants, %2zu late rows: swapped %.2f ms, copied %.2f ms "
               "(%.1fx)\n",
               late, 2e3 * swap, 2e3 * copy, copy / swap);
    }
    ssnad_train_stop(d);
    ssnad_state_close(d);
    free(d);
    return 0;
}
