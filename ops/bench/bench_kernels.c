/* bench_kernels.c - throughput of the linear and attention kernels at the model's shapes, and of
 * ssnad's list scoring (float sgemm vs the int8 bound kernel), held against this machine's
 * single-GEMM ceiling measured in the same run.
 *
 * Usage: bench_kernels [seconds per measurement, default 0.5]
 * Threads: OpenBLAS reads OPENBLAS_NUM_THREADS; the count in use is printed.
 * Each figure is total FLOPs / wall time over repeated calls after one warm-up call.
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/clock.h"
#include "bench_args.h"
#include "model/kernels.h"
#include "model/panel.h"
#include "model/rng.h"

typedef void (*BenchFn)(void *ctx);

/* Seconds per call: one warm-up, then repeat until min_seconds have passed (at least 3 calls). */
static double time_per_call(BenchFn fn, void *ctx, double min_seconds) {
    fn(ctx);
    int reps = 0;
    double t0 = clock_monotonic_s(), t;
    do {
        fn(ctx);
        reps++;
        t = clock_monotonic_s() - t0;
    } while (t < min_seconds || reps < 3);
    return t / reps;
}

static float *rand_buf(size_t n, uint64_t *rng) {
    float *x = malloc(n * sizeof(float));
    if (!x) {
        fprintf(stderr, "bench_kernels: out of memory for %zu floats\n", n);
        exit(1);
    }
    rng_fill_normal(x, n, 0.0f, 0.5f, rng);
    return x;
}

/* ---- the ceiling: one big square GEMM ------------------------------------------------------- */

typedef struct {
    int n;
    float *a, *b, *c;
} SquareGemm;

static void square_gemm(void *p) {
    SquareGemm *g = p;
    // c[n, n] = a[n, n] @ b[n, n]
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->n, g->n, g->n, 1.0f, g->a, g->n, g->b,
                g->n, 0.0f, g->c, g->n);
}

/* ---- linear ---------------------------------------------------------------------------------- */

typedef struct {
    int N, C, OC;
    float *inp, *w, *b, *out, *dinp, *dw, *db;
} LinearBench;

static void linear_fwd(void *p) {
    LinearBench *l = p;
    linear_forward(l->out, l->inp, l->w, l->b, l->N, l->C, l->OC);
}

static void linear_bwd_dinp(void *p) {
    LinearBench *l = p;
    linear_backward(l->dinp, NULL, NULL, l->out, l->inp, l->w, l->N, l->C, l->OC);
}

static void linear_bwd_dw(void *p) {
    LinearBench *l = p;
    linear_backward(NULL, l->dw, l->db, l->out, l->inp, l->w, l->N, l->C, l->OC);
}

static void report(const char *what, double flops, double seconds, double peak) {
    double gflops = flops / seconds * 1e-9;
    printf("  %-44s %9.3f ms %8.1f GFLOP/s  %5.2f x peak\n", what, seconds * 1e3, gflops,
           gflops / peak);
}

static void bench_linear(int N, int C, int OC, double peak, double min_seconds, uint64_t *rng) {
    LinearBench l = {N, C, OC, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    l.inp = rand_buf((size_t)N * C, rng), l.w = rand_buf((size_t)OC * C, rng);
    l.b = rand_buf(OC, rng), l.out = rand_buf((size_t)N * OC, rng);
    l.dinp = rand_buf((size_t)N * C, rng), l.dw = rand_buf((size_t)OC * C, rng);
    l.db = rand_buf(OC, rng);
    double flops = 2.0 * N * C * OC;
    char what[96];
    snprintf(what, sizeof(what), "linear %dx%d @ %dx%d forward (+bias)", N, C, C, OC);
    report(what, flops, time_per_call(linear_fwd, &l, min_seconds), peak);
    snprintf(what, sizeof(what), "linear %dx%d @ %dx%d backward dinp", N, C, C, OC);
    report(what, flops, time_per_call(linear_bwd_dinp, &l, min_seconds), peak);
    snprintf(what, sizeof(what), "linear %dx%d @ %dx%d backward dw+db", N, C, C, OC);
    report(what, flops, time_per_call(linear_bwd_dw, &l, min_seconds), peak);
    free(l.inp), free(l.w), free(l.b), free(l.out), free(l.dinp), free(l.dw), free(l.db);
}

/* ---- attention ------------------------------------------------------------------------------- */

typedef struct {
    int B, T, C, NH;
    const int *lens;
    float *q, *k, *v, *out, *att, *dq, *dk, *dv, *scratch;
} AttentionBench;

static void attention_fwd(void *p) {
    AttentionBench *a = p;
    attention_forward(a->out, a->att, NULL, NULL, 0.0f, a->q, a->k, a->v, a->lens, 1, a->B, a->T,
                      a->C, a->NH);
}

static void attention_bwd(void *p) {
    AttentionBench *a = p;
    attention_backward(a->dq, a->dk, a->dv, a->out, a->att, NULL, NULL, 0.0f, a->q, a->k, a->v,
                       a->lens, 1, a->B, a->T, a->C, a->NH, a->scratch);
}

static void bench_attention(const int *lens, const char *label, double peak, double min_seconds,
                            uint64_t *rng) {
    AttentionBench a = {256,  50,   256,  2,    lens, NULL, NULL,
                        NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    size_t n = (size_t)a.B * a.T * a.C;
    a.q = rand_buf(n, rng), a.k = rand_buf(n, rng), a.v = rand_buf(n, rng);
    a.out = rand_buf(n, rng), a.att = rand_buf((size_t)a.B * a.NH * a.T * a.T, rng);
    a.dq = rand_buf(n, rng), a.dk = rand_buf(n, rng), a.dv = rand_buf(n, rng);
    a.scratch = rand_buf(a.T, rng);
    // FLOPs the kernel issues: the full [L, L] score block per (row, head), 2 GEMMs forward
    // (scores, probabilities @ V) and 4 backward (dV, dP, dQ, dK), each 2 L^2 hs
    double l2 = 0.0;
    for (int b = 0; b < a.B; b++) l2 += lens ? (double)lens[b] * lens[b] : (double)a.T * a.T;
    double gemm = 2.0 * l2 * a.NH * (a.C / a.NH);
    char what[96];
    snprintf(what, sizeof(what), "attention B=256 T=50 C=256 NH=2 %s fwd", label);
    report(what, 2.0 * gemm, time_per_call(attention_fwd, &a, min_seconds), peak);
    snprintf(what, sizeof(what), "attention B=256 T=50 C=256 NH=2 %s bwd", label);
    report(what, 4.0 * gemm, time_per_call(attention_bwd, &a, min_seconds), peak);
    free(a.q), free(a.k), free(a.v), free(a.out), free(a.att), free(a.dq), free(a.dk), free(a.dv);
    free(a.scratch);
}

/* ---- list scoring: a few users against a whole catalogue --------------------------------- */

typedef struct {
    int B, N, C;
    float *user, *items, *out;
    Panels panels;
} ScoringBench;

static void scoring_sgemm(void *p) {
    ScoringBench *s = p;
    // out: [B, N] = user [B, C] x items [N, C]^T
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s->B, s->N, s->C, 1.0f, s->user, s->C,
                s->items, s->C, 0.0f, s->out, s->N);
}

static void scoring_bounds(void *p) {
    ScoringBench *s = p;
    panel_upper_forward(s->out, (size_t)s->N, s->user, &s->panels, 0, s->N, s->B);
}

/* ssnad's scoring pass at the Games catalogue (16,859 items, d = 256): float sgemm (exact
 * scores of every item) against the int8 bound kernel over panels (model/panel.h) that ssnad
 * runs instead, before it scores the few items whose bound passes. Both count 2 B N C
 * operations (float for sgemm, int8 for the bounds), held against the float sgemm peak. */
static void bench_scoring(int B, double peak, double min_seconds, uint64_t *rng) {
    ScoringBench s = {B, 16859, 256, NULL, NULL, NULL, {0}};
    s.user = rand_buf((size_t)B * s.C, rng), s.items = rand_buf((size_t)s.N * s.C, rng);
    s.out = rand_buf((size_t)B * s.N, rng);
    if (panel_reserve(&s.panels, (size_t)s.N, s.C)) {
        fprintf(stderr, "bench_kernels: out of memory\n");
        exit(1);
    }
    panel_pack(&s.panels, s.items, (size_t)s.N);
    double flops = 2.0 * B * s.N * s.C, t_gemm = time_per_call(scoring_sgemm, &s, min_seconds);
    double t_bounds = time_per_call(scoring_bounds, &s, min_seconds);
    char what[96];
    snprintf(what, sizeof(what), "scores %d users x 16859 items sgemm", B);
    report(what, flops, t_gemm, peak);
    snprintf(what, sizeof(what), "bounds %d users x 16859 items int8", B);
    report(what, flops, t_bounds, peak);
    printf("  %-44s %9.2fx\n", "  int8 bounds vs sgemm (speed-up)", t_gemm / t_bounds);
    free(s.user), free(s.items), free(s.out), panel_free(&s.panels);
}

int main(int argc, char **argv) {
    double min_seconds =
        argc > 1 ? bench_arg_double("bench_kernels", "seconds per measurement", argv[1], 1e-3, 3600)
                 : 0.5;
    uint64_t rng = 42;
    const char *env = getenv("OPENBLAS_NUM_THREADS");
    printf("bench_kernels: OpenBLAS %s, %d thread(s) (OPENBLAS_NUM_THREADS=%s)\n",
           openblas_get_config(), openblas_get_num_threads(), env ? env : "unset");

    SquareGemm g = {2048, NULL, NULL, NULL};
    size_t nn = (size_t)g.n * g.n;
    g.a = rand_buf(nn, &rng), g.b = rand_buf(nn, &rng), g.c = rand_buf(nn, &rng);
    double t = time_per_call(square_gemm, &g, min_seconds);
    double peak = 2.0 * g.n * g.n * (double)g.n / t * 1e-9;
    printf("  %-44s %9.3f ms %8.1f GFLOP/s  (the peak below)\n", "peak: cblas_sgemm 2048^3",
           t * 1e3, peak);
    free(g.a), free(g.b), free(g.c);

    bench_linear(4096, 768, 2048, peak, min_seconds, &rng);
    bench_linear(12800, 256, 256, peak, min_seconds, &rng);
    bench_linear(256, 256, 256, peak, min_seconds, &rng);
    bench_linear(256, 768, 2048, peak, min_seconds, &rng);

    // full rows, then the length mix of a real batch (uniform 1..50; the kernel skips padding)
    bench_attention(NULL, "full", peak, min_seconds, &rng);
    int lens[256];
    for (int b = 0; b < 256; b++) lens[b] = 1 + (int)(rng_next(&rng) % 50);
    bench_attention(lens, "lens~U[1,50]", peak, min_seconds, &rng);

    for (int B = 8; B <= 128; B *= 4) bench_scoring(B, peak, min_seconds, &rng);
    return 0;
}
