/* test_ssnad_refresh.c - the hand-over of a trainer refresh (ssnad_train_take_refresh): the
 * serving copy gets the refresh's parameters, its vectors for the rows of the trainer's snapshot,
 * and vectors from the new parameters for the rows that arrived after it, all in one hold of
 * serve_mu. A refresh of the serving size is swapped in (the old buffers go back to the trainer
 * as its spare, nothing copied); one of another size (the catalogue grew since the snapshot) is
 * copied. Either way the vectors must equal an item-tower pass over every row with the new
 * parameters, and the lists (int8 bounds, then exact scores) those of scoring every item. That
 * holds too for rows whose states were written after the trainer's copy (a placeholder's text
 * that arrived meanwhile): the refresh carries their old vectors, and the hand-over recomputes
 * them (CI, 2026-12-07: a member's lists never held the items encoded last). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "daemon/ssnad.h"
#include "model/rng.h"

#define N_ITEMS 3000
#define CAP     4096 // the serving buffers' rows (vec_cap)
#define HIDDEN  32
#define LAYERS  2
#define USERS   9
#define K       10

static uint64_t rng = 0x2545f4914f6cdd1dull;
static float frand(void) { // uniform in [-0.5, 0.5)
    return rng_uniform(&rng) - 0.5f;
}

/* What the trainer hands over: parameters of a model with this seed, vectors of rows [0, n) in
 * buffers of cap rows, their int8 panels. */
static float *post_refresh(Ssnad *d, const SsnaConfig *cfg, uint64_t seed, size_t n, size_t cap,
                           SsnaModel *model) {
    char err[256];
    size_t dd = (size_t)cfg->d;
    CHECK_MSG(ssna_create(model, cfg, seed, err, sizeof err) == 0, "%s", err);
    float *params = malloc(model->ps.total * sizeof(float));
    memcpy(params, model->ps.params, model->ps.total * sizeof(float));
    float *raw = malloc(cap * dd * sizeof(float)), *norm = malloc(cap * dd * sizeof(float));
    CHECK(ssna_item_vectors(model, d->var[0].states, NULL, (int)n, raw, norm, err, sizeof err) ==
          0);
    Panels bounds = {0};
    CHECK(panel_reserve(&bounds, cap, (int)dd) == 0);
    panel_pack(&bounds, norm, n);
    ssnad_train_post_refresh(d, 0, params, raw, norm, &bounds, n, cap, (int64_t)seed, d->state_gen);
    CHECK(bounds.cap == 0); // the feed owns them now
    return raw;
}

/* The serving copy after a hand-over against the model it should now be. */
static void check_serving(Ssnad *d, SsnadVariant *v, SsnaModel *m, const char *what) {
    char err[256];
    int dd = v->serve.cfg.d;
    CHECK_MSG(!memcmp(v->serve.ps.params, m->ps.params, m->ps.total * sizeof(float)) &&
                  !memcmp(v->serve_aux.ps.params, m->ps.params, m->ps.total * sizeof(float)),
              "%s: serving parameters are not the refresh's", what);
    CHECK(v->serve_steps == v->serve.ps.step);
    float *raw = malloc(sizeof(float) * N_ITEMS * (size_t)dd);
    float *norm = malloc(sizeof(float) * N_ITEMS * (size_t)dd);
    m->cfg.n_items = N_ITEMS;
    CHECK(ssna_item_vectors(m, v->states, NULL, N_ITEMS, raw, norm, err, sizeof err) == 0);
    double worst = 0;
    for (size_t i = 0; i < (size_t)N_ITEMS * (size_t)dd; i++) {
        double e = fabs((double)v->raw[i] - raw[i]) + fabs((double)v->norm[i] - norm[i]);
        if (e > worst) worst = e;
    }
    CHECK_MSG(worst < 1e-5, "%s: serving vectors differ from the new model's by %g", what, worst);

    // lists: through the bounds, against every item scored with the reference vectors
    static uint32_t seq[USERS][8];
    const uint32_t *seqs[USERS];
    int lens[USERS], counts[USERS];
    for (int u = 0; u < USERS; u++) {
        lens[u] = 1 + u % 8;
        for (int t = 0; t < lens[u]; t++) seq[u][t] = (uint32_t)((u * 331 + t * 977) % N_ITEMS);
        seqs[u] = seq[u];
    }
    int32_t ids[USERS * K];
    float scores[USERS * K], user[64];
    CHECK_MSG(ssnad_top_k_batch(d, 0, seqs, lens, USERS, K, ids, scores, counts, err, sizeof err) ==
                  0,
              "%s: %s", what, err);
    for (int u = 0; u < USERS; u++) {
        int offsets[2] = {0, lens[u]}, items[8];
        for (int t = 0; t < lens[u]; t++) items[t] = (int)seq[u][t];
        SsnaBatch b = {1, offsets, items, NULL};
        CHECK(ssna_user_vectors(m, &b, raw, user, err, sizeof err) == 0);
        float best[K];
        int n = 0;
        for (int i = 0; i < N_ITEMS; i++) { // the K best scores, by insertion
            int own = 0;
            for (int t = 0; t < lens[u]; t++) own |= seq[u][t] == (uint32_t)i;
            if (own) continue;
            double s = 0;
            for (int c = 0; c < dd; c++) s += (double)user[c] * norm[(size_t)i * dd + c];
            float f = (float)(s / m->cfg.tau);
            if (n == K && f <= best[K - 1]) continue;
            int at = n < K ? n++ : K - 1;
            while (at > 0 && best[at - 1] < f) best[at] = best[at - 1], at--;
            best[at] = f;
        }
        CHECK(counts[u] == K);
        for (int r = 0; r < K && r < counts[u]; r++)
            CHECK_MSG(fabsf(scores[u * K + r] - best[r]) < 1e-4f, "%s: user %d rank %d: %g vs %g",
                      what, u, r, scores[u * K + r], best[r]);
    }
    free(raw), free(norm);
}

int main(void) {
    char err[256];
    Ssnad *d = calloc(1, sizeof *d);
    float *states = malloc(sizeof(float) * N_ITEMS * LAYERS * HIDDEN);
    for (int i = 0; i < N_ITEMS * LAYERS * HIDDEN; i++) states[i] = frand();
    SsnaConfig cfg = ssna_config_default(SSNA_VARIANT_GRU, N_ITEMS, HIDDEN, LAYERS);
    cfg.d = 64;
    // the serving copy before: model 7's vectors in buffers of CAP rows
    CHECK_MSG(ssnad_state_open_serving(d, &cfg, 7, states, NULL, N_ITEMS, err, sizeof err) == 0,
              "%s", err);
    SsnadVariant *v = &d->var[0];
    CHECK(v->vec_cap == CAP && v->n_vec == N_ITEMS && v->bounds_axis_rows == N_ITEMS);
    DaemonConfig dcfg;
    config_init(&dcfg);
    d->cfg = &dcfg;
    CHECK_MSG(ssnad_train_open(d, err, sizeof err) == 0, "%s", err);

    // 1. the serving size: swapped in; the trainer saw 2,900 rows, 100 arrived after
    SsnaModel m8, m9, m10;
    float *old_raw = v->raw, *new_raw = post_refresh(d, &cfg, 8, N_ITEMS - 100, CAP, &m8);
    ssnad_train_take_refresh(d);
    CHECK_MSG(v->raw == new_raw, "a refresh of the serving size was not swapped in");
    check_serving(d, v, &m8, "swapped");

    // 2. another size (the catalogue outgrew the trainer's buffers): copied, 1,000 rows seen;
    // the spare slot is still full (no trainer took it), so the leftovers are freed
    post_refresh(d, &cfg, 9, 1000, 2048, &m9);
    ssnad_train_take_refresh(d);
    CHECK_MSG(v->raw == new_raw, "a refresh of another size replaced the serving buffers");
    check_serving(d, v, &m9, "copied");

    // the trainer's spare: the buffers the swap replaced, not the copied refresh's leftovers
    float *spare_raw, *spare_norm;
    Panels spare_bounds;
    size_t spare_cap = ssnad_train_take_spare(d, 0, &spare_raw, &spare_norm, &spare_bounds);
    CHECK_MSG(spare_raw == old_raw && spare_cap == CAP,
              "the swapped-out buffers are not the trainer's spare (%zu rows)", spare_cap);
    free(spare_raw), free(spare_norm);
    panel_free(&spare_bounds);
    // taken once: the slot is empty until the next hand-over
    CHECK(ssnad_train_take_spare(d, 0, &spare_raw, &spare_norm, &spare_bounds) == 0 && !spare_raw &&
          !spare_norm && !spare_bounds.cap);

    // 3. rows that got new states after the trainer's copy: the refresh holds vectors of their
    // old states (every row of the catalogue in it, so only the generation tells them apart)
    SsnaModel m11;
    post_refresh(d, &cfg, 11, N_ITEMS, CAP, &m11);
    static float fresh[3][LAYERS * HIDDEN];
    SsnadItemState late[3];
    const uint32_t rows[3] = {5, 1999, N_ITEMS - 1};
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < LAYERS * HIDDEN; j++) fresh[i][j] = 3 * frand();
        late[i] = (SsnadItemState){rows[i], "late", fresh[i]};
    }
    uint64_t gen = d->state_gen;
    CHECK_MSG(ssnad_state_set_items(d, late, 3, err, sizeof err) == 0, "%s", err);
    CHECK(d->state_gen == gen + 1 && d->row_gen[1999] == d->state_gen && d->row_gen[6] <= gen);
    ssnad_train_take_refresh(d);
    check_serving(d, v, &m11, "rows written after the trainer's copy");

    // a refresh never taken is freed with the feed
    post_refresh(d, &cfg, 10, N_ITEMS, CAP, &m10);
    ssnad_train_stop(d);
    CHECK(d->feed == NULL);

    ssna_free(&m8), ssna_free(&m9), ssna_free(&m10), ssna_free(&m11);
    ssnad_state_close(d);
    free(states), free(d);
    return check_done();
}
