/* test_pool.c - pool_for (model/pool.h): every element exactly once, whole loops inline while
 * the helper is busy (two callers at once), and the kernels that use it (GELU, the GRU cell,
 * Adam, attention, cross-entropy, the matrix products split in two) give bit-identical results
 * with the helper as without it; rng_at is the stream rng_next walks. */
#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "model/kernels.h"
#include "model/params.h"
#include "model/pool.h"
#include "model/rng.h"

#define N_COUNT 100003

typedef struct {
    unsigned char *hits;
} CountJob;

static void count_range(void *p, size_t begin, size_t end) {
    CountJob *j = p;
    for (size_t i = begin; i < end; i++) j->hits[i]++;
}

static void *count_twice(void *p) { // a second caller, racing the main thread for the helper
    for (int r = 0; r < 200; r++) pool_for(N_COUNT, 16, count_range, p);
    return NULL;
}

typedef struct {
    float *gelu, *dgelu, *h_out, *cache, *dx, *dh, *dw_ih, *dw_hh, *db_ih, *db_hh, *params;
    float *att_out, *att, *att_drop, *dqkv, *probs, *dlogits, *scores, *wide, *lin, *dlin, *dwlin;
    float loss;
} Results;

enum { B = 300, IN = 48, H = 40, NG = 70000 };
enum { AB = 40, AT = 12, AC = 32, ANH = 4, CN = 300, CV = 500, LN = 333, LC = 96, LOC = 130 };

static float *normal(size_t n, float std, uint64_t *rng) {
    float *x = malloc(sizeof(float) * n);
    rng_fill_normal(x, n, 0.0f, std, rng);
    return x;
}

/* attention over ragged rows with dropout, cross-entropy with a row without a target, and linear
 * / cosine products big enough to split (pool.h); into r */
static void run_rows(Results *r, uint64_t *rng) {
    size_t nq = (size_t)AB * AT * AC, na = (size_t)AB * ANH * AT * AT;
    float *q = normal(nq, 1.0f, rng), *k = normal(nq, 1.0f, rng), *v = normal(nq, 1.0f, rng);
    float *dout = normal(nq, 1.0f, rng);
    uint8_t *keep = malloc(na);
    int lens[AB];
    for (size_t i = 0; i < na; i++) keep[i] = rng_uniform(rng) >= 0.2f;
    for (int b = 0; b < AB; b++) lens[b] = b % (AT + 1);
    r->att_out = malloc(sizeof(float) * nq);
    r->att = malloc(sizeof(float) * na), r->att_drop = malloc(sizeof(float) * na);
    attention_forward(r->att_out, r->att, r->att_drop, keep, 0.2f, q, k, v, lens, 1, AB, AT, AC,
                      ANH);
    r->dqkv = calloc(3 * nq, sizeof(float));
    attention_backward(r->dqkv, r->dqkv + nq, r->dqkv + 2 * nq, dout, r->att, r->att_drop, keep,
                       0.2f, q, k, v, lens, 1, AB, AT, AC, ANH, NULL);

    float *logits = normal((size_t)CN * CV, 3.0f, rng);
    int targets[CN];
    for (int n = 0; n < CN; n++) targets[n] = n == 7 ? -1 : (int)(rng_next(rng) % CV);
    r->probs = malloc(sizeof(float) * CN * CV), r->dlogits = malloc(sizeof(float) * CN * CV);
    r->loss = crossentropy_forward(r->probs, logits, targets, CN, CV);
    crossentropy_backward(r->dlogits, r->probs, targets, CN, CV, 1.0f / 0.07f);

    float *x = normal((size_t)LN * LC, 1.0f, rng), *w = normal((size_t)LOC * LC, 0.2f, rng);
    float *b = normal(LOC, 0.2f, rng), *dy = normal((size_t)LN * LOC, 1.0f, rng);
    r->lin = malloc(sizeof(float) * LN * LOC);
    linear_forward(r->lin, x, w, b, LN, LC, LOC);
    r->dlin = calloc((size_t)LN * LC, sizeof(float));
    r->dwlin = calloc((size_t)LOC * LC + LOC, sizeof(float));
    linear_backward(r->dlin, r->dwlin, r->dwlin + LOC * LC, dy, x, w, LN, LC, LOC);
    r->scores = malloc(sizeof(float) * LN * LOC);
    cosine_scores(r->scores, x, w, LN, LOC, LC, 1.0f / 0.07f); // rows N >= M: split by rows
    r->wide = malloc(sizeof(float) * LOC * LN);
    cosine_scores(r->wide, w, x, LOC, LN, LC, 1.0f); // rows N < M: split by columns
    free(q), free(k), free(v), free(dout), free(keep), free(logits), free(x), free(w), free(b);
    free(dy);
}

// every pooled kernel once, from the same inputs (seeded), into fresh buffers
static Results run_kernels(void) {
    uint64_t rng = 7;
    Results r;
    float *x = malloc(sizeof(float) * NG), *dout = malloc(sizeof(float) * NG);
    rng_fill_normal(x, NG, 0.0f, 2.0f, &rng);
    rng_fill_normal(dout, NG, 0.0f, 1.0f, &rng);
    r.gelu = malloc(sizeof(float) * NG), r.dgelu = calloc(NG, sizeof(float));
    gelu_forward(r.gelu, x, NG);
    gelu_backward(r.dgelu, x, dout, NG);

    float *xi = malloc(sizeof(float) * B * IN), *h = malloc(sizeof(float) * B * H);
    float *w_ih = malloc(sizeof(float) * 3 * H * IN), *w_hh = malloc(sizeof(float) * 3 * H * H);
    float *b_ih = malloc(sizeof(float) * 3 * H), *b_hh = malloc(sizeof(float) * 3 * H);
    float *scratch = malloc(sizeof(float) * 6 * B * H);
    rng_fill_normal(xi, B * IN, 0.0f, 1.0f, &rng), rng_fill_normal(h, B * H, 0.0f, 1.0f, &rng);
    rng_fill_normal(w_ih, 3 * H * IN, 0.0f, 0.3f, &rng);
    rng_fill_normal(w_hh, 3 * H * H, 0.0f, 0.3f, &rng);
    rng_fill_normal(b_ih, 3 * H, 0.0f, 0.3f, &rng), rng_fill_normal(b_hh, 3 * H, 0.0f, 0.3f, &rng);
    r.h_out = malloc(sizeof(float) * B * H), r.cache = malloc(sizeof(float) * 4 * B * H);
    gru_cell_forward(r.h_out, r.cache, xi, h, w_ih, w_hh, b_ih, b_hh, B, IN, H, scratch);
    r.dx = calloc(B * IN, sizeof(float)), r.dh = calloc(B * H, sizeof(float));
    r.dw_ih = calloc(3 * H * IN, sizeof(float)), r.dw_hh = calloc(3 * H * H, sizeof(float));
    r.db_ih = calloc(3 * H, sizeof(float)), r.db_hh = calloc(3 * H, sizeof(float));
    gru_cell_backward(r.dx, r.dh, r.dw_ih, r.dw_hh, r.db_ih, r.db_hh, r.h_out, r.cache, xi, h, w_ih,
                      w_hh, B, IN, H, scratch);

    ParamSet ps;
    memset(&ps, 0, sizeof ps);
    char err[256];
    int shape[2] = {400, 500};
    CHECK(params_declare(&ps, "w", 2, shape, err, sizeof err) >= 0);
    CHECK(params_alloc(&ps, err, sizeof err) == 0);
    rng_fill_normal(ps.params, ps.total, 0.0f, 1.0f, &rng);
    AdamConfig adam = adam_defaults();
    for (int s = 0; s < 3; s++) {
        rng_fill_normal(ps.grads, ps.total, 0.0f, 1.0f, &rng);
        adam_step(&ps, &adam);
    }
    r.params = malloc(sizeof(float) * ps.total);
    memcpy(r.params, ps.params, sizeof(float) * ps.total);
    params_free(&ps);
    run_rows(&r, &rng);
    free(x), free(dout), free(xi), free(h), free(w_ih), free(w_hh), free(b_ih), free(b_hh);
    free(scratch);
    return r;
}

/* Bit for bit (tol 0), or within tol * (1 + |a|): a product split in two may round its last bit
 * differently (pool.h). */
static int within(const float *a, const float *b, size_t n, float tol) {
    for (size_t i = 0; i < n; i++)
        if (tol == 0.0f ? memcmp(a + i, b + i, sizeof(float)) != 0
                        : !(fabsf(a[i] - b[i]) <= tol * (1.0f + fabsf(a[i])))) {
            fprintf(stderr, "first difference at %zu of %zu: %.9g vs %.9g\n", i, n, a[i], b[i]);
            return 0;
        }
    return 1;
}

static int same(const float *a, const float *b, size_t n) {
    return within(a, b, n, 0.0f);
}

#define GEMM_TOL 1e-5f // sums of up to 333 products of order 1, rounded in another order

static void free_results(Results *r) {
    free(r->gelu), free(r->dgelu), free(r->h_out), free(r->cache), free(r->dx), free(r->dh);
    free(r->dw_ih), free(r->dw_hh), free(r->db_ih), free(r->db_hh), free(r->params);
    free(r->att_out), free(r->att), free(r->att_drop), free(r->dqkv), free(r->probs);
    free(r->dlogits), free(r->scores), free(r->wide), free(r->lin), free(r->dlin), free(r->dwlin);
}

/* Calls pool_for while the main thread starts the helper: pool_set_threads racing the first
 * pool_for callers (ThreadSanitizer, ops/test.sh --tsan, reports it if `started` is plain). */
static void *count_while_starting(void *arg) {
    for (int r = 0; r < 50; r++) pool_for(N_COUNT, 16, count_range, arg);
    return NULL;
}

int main(void) {
    Results one = run_kernels(); // no helper yet: every loop inline
    CountJob early = {calloc(N_COUNT, 1)};
    pthread_t racer;
    CHECK(pthread_create(&racer, NULL, count_while_starting, &early) == 0);
    openblas_set_num_threads(2); // as on a 2-core machine: the pool then splits the products
    CHECK(pool_set_threads(2) == 0);
    CHECK(pool_set_threads(2) == 0); // once started, a no-op
    CHECK(openblas_get_num_threads() == 1);
    pthread_join(racer, NULL);
    int early_wrong = 0;
    for (size_t i = 0; i < N_COUNT; i++) early_wrong += early.hits[i] != 50;
    CHECK_MSG(early_wrong == 0, "%d elements not visited 50 times", early_wrong);
    free(early.hits);
    Results two = run_kernels();
    CHECK(pool_splits_products());
    // the elementwise loops and the attention rows: bit for bit
    CHECK(same(one.gelu, two.gelu, NG) && same(one.dgelu, two.dgelu, NG));
    CHECK(same(one.params, two.params, 400 * 500));
    size_t nq = (size_t)AB * AT * AC, na = (size_t)AB * ANH * AT * AT;
    CHECK(same(one.att_out, two.att_out, nq) && same(one.dqkv, two.dqkv, 3 * nq));
    CHECK(same(one.att, two.att, na) && same(one.att_drop, two.att_drop, na));
    CHECK(one.loss == two.loss && same(one.probs, two.probs, (size_t)CN * CV));
    CHECK(same(one.dlogits, two.dlogits, (size_t)CN * CV));
    CHECK(same(one.db_ih, two.db_ih, 3 * H) && same(one.db_hh, two.db_hh, 3 * H));
    // what went through a split product: to rounding
    CHECK(within(one.h_out, two.h_out, B * H, GEMM_TOL));
    CHECK(within(one.cache, two.cache, 4 * B * H, GEMM_TOL));
    CHECK(within(one.dx, two.dx, B * IN, GEMM_TOL) && within(one.dh, two.dh, B * H, GEMM_TOL));
    CHECK(within(one.dw_ih, two.dw_ih, 3 * H * IN, GEMM_TOL));
    CHECK(within(one.dw_hh, two.dw_hh, 3 * H * H, GEMM_TOL));
    CHECK(within(one.lin, two.lin, (size_t)LN * LOC, GEMM_TOL));
    CHECK(within(one.dlin, two.dlin, (size_t)LN * LC, GEMM_TOL));
    CHECK(within(one.dwlin, two.dwlin, (size_t)LOC * LC + LOC, GEMM_TOL));
    CHECK(within(one.scores, two.scores, (size_t)LN * LOC, GEMM_TOL));
    CHECK(within(one.wide, two.wide, (size_t)LOC * LN, GEMM_TOL));
    free_results(&one), free_results(&two);

    // rng_at(s, i) is the (i + 1)-th rng_next from s, far into the stream too
    uint64_t s0 = 12345, walk = s0;
    int rng_wrong = 0;
    for (uint64_t i = 0; i < 100000; i++) rng_wrong += rng_next(&walk) != rng_at(s0, i);
    CHECK_MSG(rng_wrong == 0, "%d draws differ from rng_at", rng_wrong);

    // coverage, with a second thread competing for the helper: each element 400 times
    CountJob job = {calloc(N_COUNT, 1)};
    CountJob job2 = {calloc(N_COUNT, 1)};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, count_twice, &job2) == 0);
    for (int r = 0; r < 200; r++) pool_for(N_COUNT, 16, count_range, &job);
    pthread_join(t, NULL);
    int wrong = 0;
    for (size_t i = 0; i < N_COUNT; i++) wrong += job.hits[i] != 200 || job2.hits[i] != 200;
    CHECK_MSG(wrong == 0, "%d elements not visited exactly 200 times", wrong);
    pool_for(1, 16, count_range, &job); // below the grain: inline
    CHECK(job.hits[0] == 201);
    free(job.hits), free(job2.hits);
    return check_done();
}
