/* test_ssnad_topk.c - the publisher's batched top-k (one user-tower pass and blocked scoring
 * products over item panels for many users) against a plain reference: one user at a time, every
 * item scored by a dot product, a full sort. A catalogue of 9,000 items crosses two scoring-block
 * boundaries; users' own items and items without states must never appear. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "daemon/ssnad.h"

#define N_ITEMS 9000
#define HIDDEN  32
#define LAYERS  2
#define USERS   37
#define K       10

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float frand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 40) & 0xffffff) / 16777216.0f - 0.5f;
}

typedef struct {
    float s;
    int id;
} Scored;

static int by_score_desc(const void *a, const void *b) {
    float x = ((const Scored *)a)->s, y = ((const Scored *)b)->s;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Batches of 37 (rows split over the threads), 1 and 5 users through ssnad_top_k_batch with
 * the helper as set up by the caller; the lists must equal the one-thread ones (ids, scores,
 * counts). */
static void check_two_threads(Ssnad *d, const uint32_t **seqs, const int *lens, const int32_t *ids,
                              const float *scores, const int *counts, const char *what) {
    char err[512];
    int32_t ids2[USERS * K];
    float scores2[USERS * K];
    int counts2[USERS];
    const int batch_first[] = {0, 1, 3, 0}, batch_sizes[] = {USERS, 1, 5, USERS};
    for (int rep = 0; rep < 4; rep++) { // the helper thread is reused batch after batch
        int u0 = batch_first[rep], nb = batch_sizes[rep];
        CHECK_MSG(ssnad_top_k_batch(d, 0, seqs + u0, lens + u0, nb, K, ids2 + u0 * K,
                                    scores2 + u0 * K, counts2 + u0, err, sizeof err) == 0,
                  "%s: %s", what, err);
        CHECK(memcmp(counts + u0, counts2 + u0, sizeof(int) * (size_t)nb) == 0);
        CHECK(lens[u0] == 0 || counts2[u0] == K); // users with items get full lists
        int differ = 0;
        for (int u = u0; u < u0 + nb; u++)
            for (int r = 0; r < counts[u] && r < counts2[u]; r++)
                differ += ids[u * K + r] != ids2[u * K + r] &&
                          fabsf(scores[u * K + r] - scores2[u * K + r]) > 1e-4f;
        CHECK_MSG(differ == 0, "%s: %d entries differ from one thread", what, differ);
    }
}

int main(void) {
    char err[512];
    Ssnad *d = calloc(1, sizeof *d);
    unsigned char *present = malloc(N_ITEMS);
    float *states = malloc(sizeof(float) * N_ITEMS * LAYERS * HIDDEN);
    for (int i = 0; i < N_ITEMS * LAYERS * HIDDEN; i++) states[i] = frand();
    for (int i = 0; i < N_ITEMS; i++) present[i] = i % 97 != 5; // a few placeholders
    SsnaConfig cfg = ssna_config_default(SSNA_VARIANT_GRU, N_ITEMS, HIDDEN, LAYERS);
    cfg.d = 64;
    CHECK_MSG(ssnad_state_open_serving(d, &cfg, 7, states, present, N_ITEMS, err, sizeof err) == 0,
              "%s", err);
    SsnadVariant *v = &d->var[0];
    int dd = cfg.d;
    CHECK(d->n_items == N_ITEMS && d->n_present == N_ITEMS - (N_ITEMS + 91) / 97);
    // the reference's own item vectors: one item-tower pass with the serving parameters
    float *raw = malloc(sizeof(float) * N_ITEMS * dd), *norm = malloc(sizeof(float) * N_ITEMS * dd);
    CHECK(ssna_item_vectors(&v->serve, states, NULL, N_ITEMS, raw, norm, err, sizeof err) == 0);
    CHECK_MSG(!memcmp(v->raw, raw, sizeof(float) * N_ITEMS * dd) &&
                  !memcmp(v->norm, norm, sizeof(float) * N_ITEMS * dd),
              "the serving set's vectors are not the item tower's");

    // users: lengths 0 .. 60 (longer than max_len 50: only the last 50 feed the tower, but all
    // are excluded from the list), items drawn across the whole catalogue
    static uint32_t seq[USERS][60];
    const uint32_t *seqs[USERS];
    int lens[USERS], counts[USERS];
    for (int u = 0; u < USERS; u++) {
        lens[u] = (u * 7) % 61;
        for (int t = 0; t < lens[u]; t++) seq[u][t] = (uint32_t)((frand() + 0.5f) * (N_ITEMS - 1));
        seqs[u] = seq[u];
    }
    int32_t *ids = malloc(sizeof(int32_t) * USERS * K);
    float *scores = malloc(sizeof(float) * USERS * K);
    CHECK_MSG(ssnad_top_k_batch(d, 0, seqs, lens, USERS, K, ids, scores, counts, err, sizeof err) ==
                  0,
              "%s", err);

    Scored *all = malloc(sizeof(Scored) * N_ITEMS);
    int mismatches = 0;
    for (int u = 0; u < USERS; u++) {
        if (!lens[u]) {
            CHECK(counts[u] == 0);
            continue;
        }
        // reference user vector: a batch of one
        int first = lens[u] > cfg.max_len ? lens[u] - cfg.max_len : 0, L = lens[u] - first;
        int items[64], offsets[2] = {0, L};
        for (int t = 0; t < L; t++) items[t] = (int)seq[u][first + t];
        SsnaBatch b = {1, offsets, items, NULL};
        float user[64];
        CHECK(ssna_user_vectors(&v->serve, &b, raw, user, err, sizeof err) == 0);
        int n = 0;
        for (int i = 0; i < N_ITEMS; i++) {
            int own = 0;
            for (int t = 0; t < lens[u]; t++) own |= seq[u][t] == (uint32_t)i;
            if (own || !d->present[i]) continue;
            double s = 0;
            for (int c = 0; c < dd; c++) s += (double)user[c] * norm[(size_t)i * dd + c];
            all[n++] = (Scored){(float)(s / cfg.tau), i};
        }
        qsort(all, (size_t)n, sizeof *all, by_score_desc);
        CHECK(counts[u] == K);
        for (int r = 0; r < K && r < counts[u]; r++) {
            int32_t got = ids[u * K + r];
            // equal up to float summation order; a near-tie may swap neighbours
            int same = got == all[r].id || fabsf(scores[u * K + r] - all[r].s) < 1e-4f;
            mismatches += !same;
            CHECK_MSG(fabsf(scores[u * K + r] - all[r].s) < 1e-3f, "user %d rank %d: %g vs %g", u,
                      r, scores[u * K + r], all[r].s);
            CHECK_MSG(d->present[got], "user %d rank %d: item %d has no states", u, r, got);
            for (int t = 0; t < lens[u]; t++)
                CHECK_MSG(seq[u][t] != (uint32_t)got, "user %d: own item %d listed", u, got);
        }
    }
    CHECK_MSG(mismatches == 0, "%d ranks differ from the reference", mismatches);

    // two threads (publish.threads = 2): the helper computes the second half of the user tower
    // (rows, with the variant's second serving copy) and of the scoring (items, merged); the
    // lists must be the same, for a batch that splits its rows (37) and ones that do not (1, 5)
    DaemonConfig cfgd;
    config_init(&cfgd);
    cfgd.publish_threads = 2;
    d->cfg = &cfgd;
    CHECK_MSG(ssnad_publish_start(d, err, sizeof err) == 0, "%s", err);
    CHECK(d->scorer != NULL);
    check_two_threads(d, seqs, lens, ids, scores, counts, "helper thread");
    CHECK(!ssnad_publish_helper_busy(d));
    ssnad_publish_stop(d);
    CHECK(d->scorer == NULL);
    // a helper that never gets a core: every job it is posted stays posted, and the main thread
    // takes it back and runs it itself (helper_finish) instead of waiting
    CHECK_MSG(ssnad_publish_start_stalled(d, err, sizeof err) == 0, "%s", err);
    check_two_threads(d, seqs, lens, ids, scores, counts, "helper never running");
    CHECK(!ssnad_publish_helper_busy(d));
    ssnad_publish_stop(d);

    // the single-user entry point is the same computation
    int32_t one[K];
    float one_s[K];
    int n1 = ssnad_top_k(d, 0, seq[3], lens[3], K, one, one_s, err, sizeof err);
    CHECK(n1 == counts[3]);
    CHECK(n1 > 0 && memcmp(one, ids + 3 * K, sizeof(int32_t) * (size_t)n1) == 0);

    free(all), free(ids), free(scores), free(states), free(present), free(raw), free(norm);
    ssnad_state_close(d);
    free(d);
    return check_done();
}
