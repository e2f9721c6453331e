/* test_popwindow - the pop arm's window (daemon/popwindow.h) against an oracle that recounts the
 * last W events from the whole stream: at every fill level around its bound (0, 1, W-1, W, W+1,
 * 2W, 3.6W events), saved and loaded (into the same, a smaller and a larger window), then fed a
 * probe stream long enough to wrap the ring again; every top-k (with eligibility, exclusions, the
 * cache's fallback and the padding of unchosen items) must be the oracle's. Malformed blobs are
 * refused and leave the window as it was. */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "daemon/popwindow.h"

#define W       100
#define N_ITEMS 40
#define K       10
#define MAX_EX  8

static uint64_t rng_state = 12345;
static uint32_t next_rand(void) { // xorshift64*
    rng_state ^= rng_state >> 12, rng_state ^= rng_state << 25, rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 2685821657736338717ull) >> 32);
}

/* a skewed stream: item i with weight ~ 1/(i+1), so the ranking has ties and movement */
static uint32_t draw_item(void) {
    uint32_t r = next_rand() % 1000;
    return r < 500 ? r % 4 : r < 800 ? 4 + r % 8 : 12 + r % (N_ITEMS - 12 - 2); // 2 never chosen
}

/* the oracle's top k of stream[0..n) over its last w events */
static int oracle_top_k(const uint32_t *stream, size_t n, size_t w, const unsigned char *eligible,
                        const uint32_t *ex, int n_ex, int k, int32_t *ids, float *scores) {
    uint32_t counts[N_ITEMS] = {0};
    for (size_t i = n > w ? n - w : 0; i < n; i++) counts[stream[i]]++;
    unsigned char used[N_ITEMS] = {0};
    for (int i = 0; i < n_ex; i++) used[ex[i]] = 1;
    for (int i = 0; i < N_ITEMS; i++)
        if (eligible && !eligible[i]) used[i] = 1;
    int got = 0;
    for (; got < k; got++) {
        int best = -1;
        for (int i = 0; i < N_ITEMS; i++)
            if (!used[i] && (best < 0 || counts[i] > counts[best])) best = i;
        if (best < 0) break;
        used[best] = 1, ids[got] = best, scores[got] = (float)counts[best];
    }
    return got;
}

static int same_top_k(PopWindow *p, const uint32_t *stream, size_t n, size_t w,
                      const unsigned char *eligible, const uint32_t *ex, int n_ex) {
    int32_t ids[K], want_ids[K];
    float scores[K], want_scores[K];
    int got = popwindow_top_k(p, eligible, N_ITEMS, ex, n_ex, K, ids, scores);
    int want = oracle_top_k(stream, n, w, eligible, ex, n_ex, K, want_ids, want_scores);
    if (got != want) return 0;
    for (int i = 0; i < got; i++)
        if (ids[i] != want_ids[i] || scores[i] != want_scores[i]) return 0;
    return 1;
}

/* every kind of question: plain, excluding a user's items, with the top items ineligible (the
 * cache of k + MAX_EX is used up: the full ranking is the fallback), all unchosen items padding */
static int all_questions_agree(PopWindow *p, const uint32_t *stream, size_t n, size_t w) {
    unsigned char eligible[N_ITEMS];
    for (int i = 0; i < N_ITEMS; i++) eligible[i] = i >= 20 || i % 7 == 3;
    uint32_t ex[MAX_EX] = {0, 1, 2, 5, 13, 21, 38, 39};
    return same_top_k(p, stream, n, w, NULL, NULL, 0) &&
           same_top_k(p, stream, n, w, NULL, ex, MAX_EX) &&
           same_top_k(p, stream, n, w, eligible, NULL, 0) &&
           same_top_k(p, stream, n, w, eligible, ex, 3);
}

static PopWindow *reload(PopWindow *from, size_t w2) {
    size_t len;
    void *blob = popwindow_save(from, &len);
    PopWindow *to = popwindow_create(w2, K, MAX_EX);
    char err[256];
    CHECK(blob && to && popwindow_load(to, blob, len, N_ITEMS, err, sizeof err) == 0);
    free(blob);
    return to;
}

static void run_fill(size_t n) {
    size_t probes = 5 * W / 2, total = n + probes;
    uint32_t *stream = malloc(total * sizeof *stream);
    for (size_t i = 0; i < total; i++) stream[i] = draw_item();
    PopWindow *p = popwindow_create(W, K, MAX_EX);
    int agree = 1;
    for (size_t i = 0; i < n; i++) {
        CHECK(popwindow_add(p, stream[i]) == 0);
        if (i % 37 == 0) agree &= all_questions_agree(p, stream, i + 1, W);
    }
    CHECK(popwindow_size(p) == (n < W ? n : W));
    PopWindow *same = reload(p, W), *smaller = reload(p, W / 2), *larger = reload(p, 3 * W);
    agree &= all_questions_agree(same, stream, n, W);
    agree &= all_questions_agree(smaller, stream, n, W / 2);
    // a larger window holds only what was saved (the last W), so it agrees once it is full again
    for (size_t i = n; i < total; i++) {
        PopWindow *ws[] = {p, same, smaller, larger};
        for (int j = 0; j < 4; j++) CHECK(popwindow_add(ws[j], stream[i]) == 0);
        agree &= all_questions_agree(p, stream, i + 1, W) &&
                 all_questions_agree(same, stream, i + 1, W) &&
                 all_questions_agree(smaller, stream, i + 1, W / 2);
        if (i + 1 - n >= 3 * W) agree &= all_questions_agree(larger, stream, i + 1, 3 * W);
        if (i == n + probes / 2) { // a second restart in the middle of the probes
            PopWindow *again = reload(same, W);
            popwindow_free(same);
            same = again;
        }
    }
    CHECK_MSG(agree, "fill %zu: a top-k differs from the oracle", n);
    uint32_t c = 0;
    for (uint32_t i = 0; i < N_ITEMS; i++) c += popwindow_count(p, i);
    CHECK(c == W);
    popwindow_free(p), popwindow_free(same), popwindow_free(smaller), popwindow_free(larger);
    free(stream);
}

static void check_malformed(void) {
    PopWindow *p = popwindow_create(W, K, MAX_EX);
    for (int i = 0; i < 150; i++) popwindow_add(p, (uint32_t)(i % 9));
    size_t len;
    unsigned char *blob = popwindow_save(p, &len);
    CHECK(len == 16 + 4 * W);
    unsigned char *bad = malloc(len);
    char err[256];
    int32_t before[K], after[K];
    float s[K];
    int nb = popwindow_top_k(p, NULL, N_ITEMS, NULL, 0, K, before, s);
    struct {
        size_t off, len;
        unsigned char byte;
        const char *says;
    } cases[] = {
        {0, len, 'X', "not a window"},
        {4, len, 9, "version 9"},
        {0, 15, 0, "not a window"},
        {0, len - 1, 0, "need"},
        {8, len, 0xff, "need"},
        {16, len, 40, "names item"},
        {16 + 4 * 50, len, 200, "item 200"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        memcpy(bad, blob, len);
        if (cases[c].byte || cases[c].off) bad[cases[c].off] = cases[c].byte;
        err[0] = 0;
        CHECK_MSG(popwindow_load(p, bad, cases[c].len, N_ITEMS, err, sizeof err) == -1,
                  "case %zu loaded", c);
        CHECK_MSG(strstr(err, cases[c].says), "case %zu: '%s' lacks '%s'", c, err, cases[c].says);
    }
    int na = popwindow_top_k(p, NULL, N_ITEMS, NULL, 0, K, after, s);
    CHECK(na == nb && !memcmp(before, after, (size_t)na * sizeof *after)); // unchanged
    CHECK(popwindow_size(p) == W);
    // an empty window round-trips; an item past the catalogue is refused
    PopWindow *e = popwindow_create(5, K, MAX_EX);
    free(blob);
    blob = popwindow_save(e, &len);
    CHECK(len == 16 && popwindow_load(p, blob, len, N_ITEMS, err, sizeof err) == 0);
    CHECK(popwindow_size(p) == 0);
    int32_t ids[K];
    CHECK(popwindow_top_k(p, NULL, 3, NULL, 0, K, ids, s) == 3); // 3 items, all padding
    CHECK(ids[0] == 0 && ids[1] == 1 && ids[2] == 2 && s[0] == 0);
    popwindow_add(e, 7);
    free(blob);
    blob = popwindow_save(e, &len);
    CHECK(popwindow_load(p, blob, len, 7, err, sizeof err) == -1 && strstr(err, "item 7"));
    // an item index far past the counts grows them
    CHECK(popwindow_add(e, 100000) == 0 && popwindow_count(e, 100000) == 1);
    CHECK(popwindow_create(0, K, MAX_EX) == NULL);
    popwindow_free(e), popwindow_free(p);
    free(blob), free(bad);
}

int main(void) {
    size_t fills[] = {0, 1, W - 1, W, W + 1, 2 * W, 36 * W / 10};
    for (size_t i = 0; i < sizeof fills / sizeof fills[0]; i++) run_fill(fills[i]);
    check_malformed();
    return check_done();
}
