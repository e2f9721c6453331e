/* bench_encoder - frozen-encoder throughput: items/s and achieved GFLOP/s of encoder_forward_ids
 * over a UniSRec .text file, for each thread layout, next to the cblas_sgemm ceiling measured in
 * the same run.
 *
 *   bench_encoder MODEL_DIR ITEMS.text [--ids-out FILE] [--repeat N] [--layers A] [--limit N]
 *
 * The states kept are SSNA's: first-token states of the top A layers (default 3). Besides the
 * human-readable lines it prints "PEAK <GFLOP/s>" (2-thread sgemm) and "RESULT ssna <seconds>
 * <GFLOP>" (the fastest layout) for ops/bench/encoder.
 *
 * Texts are tokenized once (not timed); --ids-out writes the ids in
 * tests/reference/encoder_ref.py's format so ops/bench/encoder can time torch on exactly the same
 * sequences. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/clock.h"
#include "bench_args.h"
#include "model/encoder.h"

/* Best-of-3 GFLOP/s of one [M, K] x [K, N] sgemm with OpenBLAS on `threads` threads. */
static double sgemm_gflops(int M, int N, int K, int threads) {
    float *a = calloc((size_t)M * K, sizeof(float)), *b = calloc((size_t)K * N, sizeof(float));
    float *c = calloc((size_t)M * N, sizeof(float));
    for (size_t i = 0; i < (size_t)M * K; i++) a[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < (size_t)K * N; i++) b[i] = (float)(i % 5) * 0.1f;
    openblas_set_num_threads(threads);
    double best = 0;
    for (int r = 0; r < 3; r++) {
        double t0 = clock_monotonic_s();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, a, K, b, K, 0.0f, c, N);
        double g = 2.0 * M * N * K / (clock_monotonic_s() - t0) / 1e9;
        if (g > best) best = g;
    }
    free(a);
    free(b);
    free(c);
    return best;
}

static int read_texts(const char *path, char ***texts) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int n = 0, alloc = 0, lineno = 0;
    while ((len = getline(&line, &cap, f)) > 0) {
        if (lineno++ == 0) continue; // header
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        char *tab = strchr(line, '\t');
        if (!tab) continue;
        if (n == alloc) *texts = realloc(*texts, (size_t)(alloc = alloc ? 2 * alloc : 1024) * 8);
        (*texts)[n++] = strdup(tab + 1);
    }
    free(line);
    fclose(f);
    return n;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr,
                "usage: %s MODEL_DIR ITEMS.text [--ids-out FILE] [--repeat N] "
                "[--layers A] [--limit N]\n",
                argv[0]);
        return 2;
    }
    const char *ids_out = NULL;
    int repeat = 1, keep = 3, limit = 0;
    for (int i = 3; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--ids-out"))
            ids_out = argv[i + 1];
        else if (!strcmp(argv[i], "--repeat"))
            repeat = (int)bench_arg_long(argv[0], "--repeat", argv[i + 1], 1, 1000000);
        else if (!strcmp(argv[i], "--layers"))
            keep = (int)bench_arg_long(argv[0], "--layers", argv[i + 1], 1, 1000);
        else if (!strcmp(argv[i], "--limit"))
            limit = (int)bench_arg_long(argv[0], "--limit", argv[i + 1], 0, 1 << 30);
        else {
            fprintf(stderr, "%s: unknown option '%s'\n", argv[0], argv[i]);
            return 2;
        }
    }
    char err[512];
    Encoder *e;
    if (encoder_load(&e, argv[1], err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    char **texts = NULL;
    int n_read = read_texts(argv[2], &texts), n = n_read;
    if (n <= 0 || !encoder_tokenizer(e)) {
        fprintf(stderr, "%s: no texts, or the model has no tokenizer\n", argv[2]);
        return 1;
    }
    if (limit > 0 && limit < n) n = limit;
    int max_len = encoder_max_len(e), L = encoder_num_layers(e), C = encoder_hidden(e);
    if (keep > L + 1) keep = L + 1;
    int *flat = malloc((size_t)n * max_len * sizeof *flat), *n_ids = malloc((size_t)n * 4);
    const int **ids = malloc((size_t)n * sizeof *ids);
    long tokens = 0;
    double flops = 0, flops_done = 0;
    for (int i = 0; i < n; i++) {
        ids[i] = flat + (size_t)i * max_len;
        if (tokenizer_encode(encoder_tokenizer(e), texts[i], strlen(texts[i]), max_len,
                             (int *)ids[i], &n_ids[i], NULL, err, sizeof err)) {
            fprintf(stderr, "text %d: %s\n", i, err);
            return 1;
        }
        tokens += n_ids[i];
        flops += encoder_flops(e, n_ids[i]);
        flops_done += encoder_flops_cls(e, n_ids[i]);
    }
    if (ids_out) {
        FILE *f = fopen(ids_out, "wb");
        fwrite(&n, 4, 1, f);
        for (int i = 0; i < n; i++) {
            fwrite(&n_ids[i], 4, 1, f);
            fwrite(ids[i], 4, (size_t)n_ids[i], f);
        }
        fclose(f);
    }
    printf("model %s: %d layers x %d hidden; %d texts, %ld tokens (max %d), %.1f GFLOP per pass\n",
           argv[1], L, C, n, tokens, max_len, flops / 1e9);
    // GFLOP/s below count the whole pass (as torch and ONNX Runtime compute it); ssna skips most
    // of the top block with [CLS] pooling, so its share of the ceiling on the work it does is lower
    printf("ssna performs %.1f GFLOP of them ([CLS] pooling: the top block for the first token "
           "only, %.1f%% less)\n",
           flops_done / 1e9, 100.0 * (1.0 - flops_done / flops));
    double peak1 = sgemm_gflops(2048, 1536, C, 1), peak2 = sgemm_gflops(2048, 1536, C, 2);
    printf("sgemm ceiling [2048 x %d] x [%d x 1536]: %.1f GFLOP/s on 1 thread, %.1f on 2\n", C, C,
           peak1, peak2);
    openblas_set_num_threads(2);
    printf("PEAK %.2f\n", peak2);
    float *out = malloc((size_t)n * keep * C * sizeof *out);
    double fastest = 1e30;
    static const struct {
        int threads, batch_tokens;
        const char *what;
    } layouts[] = {{2, 2048, "2 workers x 1 BLAS thread, 2048-token batches"},
                   {1, 2048, "1 worker x 2 BLAS threads, 2048-token batches"}};
    // warm-up: page in the weights and let OpenBLAS start its threads before anything is timed
    int warm = n < 256 ? n : 256;
    if (encoder_forward_ids(e, ids, n_ids, warm, ENCODER_POOL_CLS, L, keep, out, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    for (size_t k = 0; k < sizeof layouts / sizeof layouts[0]; k++) {
        encoder_set_threads(e, layouts[k].threads);
        encoder_set_batch_tokens(e, layouts[k].batch_tokens);
        double best = 1e30;
        for (int r = 0; r < repeat; r++) {
            double t0 = clock_monotonic_s();
            if (encoder_forward_ids(e, ids, n_ids, n, ENCODER_POOL_CLS, L, keep, out, err,
                                    sizeof err)) {
                fprintf(stderr, "%s\n", err);
                return 1;
            }
            double t = clock_monotonic_s() - t0;
            if (t < best) best = t;
        }
        double gf = flops / best / 1e9;
        if (best < fastest) fastest = best;
        printf("ssna  %-48s %7.3f s  %8.1f items/s  %6.1f GFLOP/s  %4.0f%% of the 2-thread "
               "sgemm ceiling (%.0f%% on the work done)\n",
               layouts[k].what, best, n / best, gf, 100 * gf / peak2,
               100 * flops_done / best / 1e9 / peak2);
    }
    printf("RESULT ssna %.4f %.2f\n", fastest, flops / 1e9);
    free(out);
    free(ids);
    free(n_ids);
    free(flat);
    for (int i = 0; i < n_read; i++) free(texts[i]);
    free(texts);
    encoder_free(e);
    return 0;
}
