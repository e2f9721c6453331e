/* bench_train - seconds per training epoch and peak RSS of the C SSNA model on Scientific.
 *
 * Same work as `ssna train` (all-position rows, in-batch negatives, Adam), without the
 * evaluation. Item states are N(0, 1) from a fixed seed, [n_items, a, hidden]: the cost does not
 * depend on their values, so the benchmark needs no encoder cache. --dump FILE writes the
 * sequences (int32 n_users, offsets[n_users + 1], items) and the states (int32 n, a, hidden,
 * float32 data) for ops/bench/train's torch reference to train on the same data.
 *
 * usage: bench_train [--data DIR] [--variant V] [--layers A] [--hidden H] [--batch N]
 *                    [--epochs N] [--dump FILE]
 */
#include <cblas.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "model/clock.h"
#include "bench_args.h"
#include "ingest/interactions.h"
#include "model/pool.h"
#include "model/rng.h"
#include "model/ssna.h"
#include "model/ssna_train.h"

static double peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

static int dump(const char *path, const Interactions *d, const float *states, int a, int hidden) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int32_t hdr[4] = {d->n_users, d->n_items, a, hidden};
    size_t n = (size_t)d->offsets[d->n_users], ns = (size_t)d->n_items * a * hidden;
    int ok = fwrite(hdr, sizeof hdr, 1, f) == 1 &&
             fwrite(d->offsets, sizeof(int), (size_t)d->n_users + 1, f) == (size_t)d->n_users + 1 &&
             fwrite(d->items, sizeof(int), n, f) == n && fwrite(states, sizeof(float), ns, f) == ns;
    return fclose(f) == 0 && ok ? 0 : -1;
}

int main(int argc, char **argv) {
    const char *data = NULL, *dump_path = NULL;
    int variant = SSNA_VARIANT_GRU, layers = 3, hidden = 384, batch = 256, epochs = 1;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: bench_train [--data DIR] [--variant V] [--layers A] [--hidden H] "
                   "[--batch N] [--epochs N] [--dump FILE]\n"
                   "seconds per training epoch and peak RSS on Scientific (defaults: gru, a = 3, "
                   "hidden 384, batch 256, 1 epoch); ops/bench/train runs it beside torch\n");
            return 0;
        }
    if (argc % 2 == 0) {
        fprintf(stderr, "bench_train: option %s needs a value (--help)\n", argv[argc - 1]);
        return 2;
    }
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--data"))
            data = argv[i + 1];
        else if (!strcmp(argv[i], "--variant"))
            variant = ssna_variant_parse(argv[i + 1]);
        else if (!strcmp(argv[i], "--layers"))
            layers = (int)bench_arg_long("bench_train", "--layers", argv[i + 1], 1, 64);
        else if (!strcmp(argv[i], "--hidden"))
            hidden = (int)bench_arg_long("bench_train", "--hidden", argv[i + 1], 8, 8192);
        else if (!strcmp(argv[i], "--batch"))
            batch = (int)bench_arg_long("bench_train", "--batch", argv[i + 1], 1, 1 << 20);
        else if (!strcmp(argv[i], "--epochs"))
            epochs = (int)bench_arg_long("bench_train", "--epochs", argv[i + 1], 1, 10000);
        else if (!strcmp(argv[i], "--dump"))
            dump_path = argv[i + 1];
        else {
            fprintf(stderr, "bench_train: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (variant < 0 || layers < 1 || hidden < 1 || batch < 1 || epochs < 0) {
        fprintf(stderr, "bench_train: bad option value\n");
        return 2;
    }
    // as ssna train: the pool's helper takes the second core (loops and products, model/pool.h)
    if (openblas_get_num_threads() > 1 && pool_set_threads(2)) {
        fprintf(stderr, "bench_train: cannot start the helper thread\n");
        return 1;
    }
    char dir[4096], err[1024];
    if (data)
        snprintf(dir, sizeof dir, "%s", data);
    else
        snprintf(dir, sizeof dir, "%s/amazon-scientific",
                 getenv("SSNA_DATA_DIR") ? getenv("SSNA_DATA_DIR") : "../shared/data");
    Interactions d;
    if (interactions_load_unisrec(&d, dir, "Scientific", 50, err, sizeof err)) {
        fprintf(stderr, "bench_train: %s\n", err);
        return 1;
    }
    size_t ns = (size_t)d.n_items * layers * hidden;
    float *states = malloc(ns * sizeof(float));
    uint64_t seed = 1;
    if (!states) return 1;
    rng_fill_normal(states, ns, 0.0f, 1.0f, &seed);
    if (dump_path && dump(dump_path, &d, states, layers, hidden)) {
        fprintf(stderr, "bench_train: cannot write %s\n", dump_path);
        return 1;
    }
    SsnaConfig cfg = ssna_config_default((SsnaVariant)variant, d.n_items, hidden, layers);
    SsnaModel m;
    if (ssna_create(&m, &cfg, 42, err, sizeof err)) {
        fprintf(stderr, "bench_train: %s\n", err);
        return 1;
    }
    SsnaSequences seq = {d.n_users, d.offsets, d.items};
    AdamConfig adam = adam_defaults();
    adam.lr = 3e-4f;
    uint64_t shuffle = 7;
    double best = 1e30, total = 0;
    for (int e = 1; e <= epochs; e++) {
        double t0 = clock_monotonic_s(), loss;
        int steps;
        if (ssna_train_epoch(&m, states, &seq, batch, &adam, &shuffle, &loss, &steps, err,
                             sizeof err)) {
            fprintf(stderr, "bench_train: %s\n", err);
            return 1;
        }
        double s = clock_monotonic_s() - t0;
        total += s;
        if (s < best) best = s;
        printf("c epoch %d: %.2f s, %d Adam steps, mean loss %.4f, peak RSS %.0f MB\n", e, s, steps,
               loss, peak_rss_mb());
    }
    printf("c summary: variant %s a=%d hidden=%d d=%d batch=%d: %.2f s/epoch (best %.2f), peak "
           "RSS %.0f MB, %zu parameters\n",
           ssna_variant_name(cfg.variant), layers, hidden, cfg.d, batch,
           epochs ? total / epochs : 0.0, best, peak_rss_mb(), m.ps.total);
    ssna_free(&m);
    free(states);
    interactions_free(&d);
    return 0;
}
