/* bench_publish - how many lists per second ssnad's publisher computes, at the Games shape
 * (16,859 items, MiniLM hidden 384, a = 3, d = 256), by batch size and sequence length, with one
 * thread and with the publish helper (publish.threads = 2), and the sgemm peak of one thread
 * measured in the same run for scale.
 *
 * Each figure is ssnad_top_k_batch (the user tower of the batch, int8 bounds against the whole
 * catalogue, exact scores where a bound passes, top-10) over random item states and sequences.
 * The weights change only how many items pass their bound (scored exactly: a dot product each),
 * not the tower or the bound pass.
 * Usage: bench_publish [seconds per measurement, default 0.5]
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/ssnad.h"
#include "model/rng.h"

#define N_ITEMS 16859
#define HIDDEN  384
#define LAYERS  3
#define K       10
#define B_MAX   128

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

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
    double t0 = now(), t;
    do {
        if (ssnad_top_k_batch(d, 0, seqs, lens, B, K, ids, scores, counts, err, sizeof err)) {
            fprintf(stderr, "bench_publish: %s\n", err);
            exit(1);
        }
        reps++;
        t = now() - t0;
    } while (t < min_seconds || reps < 3);
    return t / reps;
}

int main(int argc, char **argv) {
    double min_seconds = argc > 1 ? atof(argv[1]) : 0.5;
    if (min_seconds <= 0.0) {
        fprintf(stderr, "usage: bench_publish [seconds per measurement > 0]\n");
        return 2;
    }
    openblas_set_num_threads(1); // as ssnad: one BLAS thread per caller
    char err[512];
    uint64_t rng = 42;
    // the peak for scale: one 1024^3 sgemm on one thread
    int n = 1024;
    float *a = must(malloc(sizeof(float) * n * n)), *c = must(malloc(sizeof(float) * n * n));
    rng_fill_normal(a, (size_t)n * n, 0.0f, 1.0f, &rng);
    double t0 = now();
    for (int r = 0; r < 5; r++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, a, n, 0.0f, c,
                    n);
    printf("bench_publish: sgemm 1024^3 on one thread: %.1f GFLOP/s\n",
           5 * 2.0 * n * n * n / (now() - t0) * 1e-9);
    free(a), free(c);

    Ssnad *d = must(calloc(1, sizeof *d));
    SsnadVariant *v = &d->var[0];
    d->n_var = 1, d->n_items = N_ITEMS;
    d->present = must(malloc(N_ITEMS));
    memset(d->present, 1, N_ITEMS);
    float *states = must(malloc(sizeof(float) * N_ITEMS * LAYERS * HIDDEN));
    rng_fill_normal(states, (size_t)N_ITEMS * LAYERS * HIDDEN, 0.0f, 1.0f, &rng);
    SsnaConfig cfg = ssna_config_default(SSNA_VARIANT_GRU, N_ITEMS, HIDDEN, LAYERS);
    if (ssna_create(&v->serve, &cfg, 7, err, sizeof err) ||
        ssna_create(&v->serve_aux, &cfg, 7, err, sizeof err)) {
        fprintf(stderr, "bench_publish: %s\n", err);
        return 1;
    }
    int dd = cfg.d;
    float *norm = must(malloc(sizeof(float) * N_ITEMS * dd));
    v->raw = must(malloc(sizeof(float) * N_ITEMS * dd));
    v->norm = norm;
    if (ssna_item_vectors(&v->serve, states, NULL, N_ITEMS, v->raw, norm, err, sizeof err)) {
        fprintf(stderr, "bench_publish: %s\n", err);
        return 1;
    }
    if (panel_reserve(&v->bounds, N_ITEMS, dd)) {
        fprintf(stderr, "bench_publish: out of memory\n");
        return 1;
    }
    panel_pack(&v->bounds, norm, N_ITEMS);

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
    ssna_free(&v->serve), ssna_free(&v->serve_aux);
    free(v->raw), free(norm), free(states), free(d->present);
    panel_free(&v->bounds), free(d);
    return 0;
}
