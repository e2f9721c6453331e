/* test_pool.c - pool_for (model/pool.h): every element exactly once, whole loops inline while
 * the helper is busy (two callers at once), and the kernels that use it (GELU, the GRU cell,
 * Adam) give bit-identical results with the helper as without it. */
#include <pthread.h>
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
} Results;

enum { B = 300, IN = 48, H = 40, NG = 70000 };

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
    free(x), free(dout), free(xi), free(h), free(w_ih), free(w_hh), free(b_ih), free(b_hh);
    free(scratch);
    return r;
}

static int same(const float *a, const float *b, size_t n) {
    return memcmp(a, b, n * sizeof(float)) == 0;
}

static void free_results(Results *r) {
    free(r->gelu), free(r->dgelu), free(r->h_out), free(r->cache), free(r->dx), free(r->dh);
    free(r->dw_ih), free(r->dw_hh), free(r->db_ih), free(r->db_hh), free(r->params);
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
    CHECK(pool_set_threads(2) == 0);
    CHECK(pool_set_threads(2) == 0); // once started, a no-op
    pthread_join(racer, NULL);
    int early_wrong = 0;
    for (size_t i = 0; i < N_COUNT; i++) early_wrong += early.hits[i] != 50;
    CHECK_MSG(early_wrong == 0, "%d elements not visited 50 times", early_wrong);
    free(early.hits);
    Results two = run_kernels();
    CHECK(same(one.gelu, two.gelu, NG) && same(one.dgelu, two.dgelu, NG));
    CHECK(same(one.h_out, two.h_out, B * H) && same(one.cache, two.cache, 4 * B * H));
    CHECK(same(one.dx, two.dx, B * IN) && same(one.dh, two.dh, B * H));
    CHECK(same(one.dw_ih, two.dw_ih, 3 * H * IN) && same(one.dw_hh, two.dw_hh, 3 * H * H));
    CHECK(same(one.db_ih, two.db_ih, 3 * H) && same(one.db_hh, two.db_hh, 3 * H));
    CHECK(same(one.params, two.params, 400 * 500));
    free_results(&one), free_results(&two);

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
