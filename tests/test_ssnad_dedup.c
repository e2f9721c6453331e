/* test_ssnad_dedup - the duplicate-event window saved into a checkpoint and loaded back, at every
 * fill level around its bound (0, 1, W-1, W, W+1, 2W, 3.6W remembered ids): the loaded window
 * must answer exactly as the uninterrupted one and as an independent oracle (which knows when
 * each id was last remembered), for a probe stream long enough to wrap the ring again, across a
 * second restart in the middle of it. Malformed blobs are refused. */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "daemon/ssnad.h"

#define W SSNAD_DEDUP_WINDOW

static uint64_t mix(uint64_t k) { // splitmix64: distinct inputs give distinct ids
    uint64_t z = k + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The oracle: id k was last remembered as the t-th remembered id (-1: never); the window holds
 * the last W remembered ids, so k is a duplicate iff t >= remembered - W. */
typedef struct {
    int64_t *when; // [cap] by id
    size_t *who;   // [cap] by time: the id remembered t-th
    int64_t remembered;
} Oracle;

static int oracle_check(Oracle *o, size_t k) {
    if (o->when[k] >= 0 && o->when[k] >= o->remembered - W) return 1;
    o->who[o->remembered] = k;
    o->when[k] = o->remembered++;
    return 0;
}

static void save_load(const SsnadDedup *from, SsnadDedup *to) {
    size_t len;
    const void *blob = ssnad_dedup_blob(from, &len);
    unsigned char *copy = malloc(len);
    memcpy(copy, blob, len);
    CHECK(ssnad_dedup_load(to, copy, len) == 0);
    size_t len2;
    const void *again = ssnad_dedup_blob(to, &len2);
    CHECK(len2 == len && !memcmp(again, copy, len)); // the same window, slot for slot
    free(copy);
}

/* Fill a window with n fresh ids, restart it, then probe. */
static void run_fill(size_t n, uint64_t seed) {
    size_t probes = 5 * W / 2, cap = n + probes + 1;
    Oracle o = {malloc(cap * sizeof(int64_t)), malloc(cap * sizeof(size_t)), 0};
    for (size_t k = 0; k < cap; k++) o.when[k] = -1;
    SsnadDedup *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    int bad = 0;
    for (size_t k = 0; k < n; k++) {
        int got = ssnad_dedup_check(a, mix(k)), want = oracle_check(&o, k);
        bad += got != want;
    }
    CHECK_MSG(!bad, "fill %zu: %d answers differ from the oracle while filling", n, bad);
    CHECK(a->count == (n < W ? n : W));
    save_load(a, b);
    size_t next_fresh = n;
    int64_t dups = 0, mismatch_a = 0, mismatch_b = 0;
    for (size_t i = 0; i < probes; i++) {
        if (i == probes / 2) { // a second restart of the loaded window, mid-stream
            SsnadDedup *c = calloc(1, sizeof *c);
            save_load(b, c);
            free(b);
            b = c;
        }
        uint64_t r = mix(seed ^ (i * 7919u));
        size_t k;
        if (r % 3 == 0 || next_fresh == 0) {
            k = next_fresh++;
        } else {
            // an old id, most often near the window's edge (ages W-16 .. W+16), else any age
            int64_t age = (r >> 8) % 2 ? (int64_t)W - 16 + (int64_t)((r >> 16) % 33)
                                       : (int64_t)((r >> 16) % (next_fresh + 1));
            int64_t t = o.remembered - 1 - age;
            k = t >= 0 ? o.who[t] : (size_t)((r >> 32) % next_fresh);
        }
        uint64_t h = mix(k);
        int want = oracle_check(&o, k);
        int ga = ssnad_dedup_check(a, h), gb = ssnad_dedup_check(b, h);
        mismatch_a += ga != want, mismatch_b += gb != want;
        dups += want;
    }
    CHECK_MSG(mismatch_a == 0 && mismatch_b == 0,
              "fill %zu: uninterrupted window wrong %lld times, restarted %lld times of %zu", n,
              (long long)mismatch_a, (long long)mismatch_b, probes);
    CHECK_MSG(dups > (int64_t)probes / 10, "fill %zu: only %lld duplicates probed", n,
              (long long)dups);
    fprintf(stderr, "fill %zu: %zu probes, %lld duplicates, restarted window agrees\n", n, probes,
            (long long)dups);
    free(o.when), free(o.who), free(a), free(b);
}

static void check_malformed(void) {
    SsnadDedup *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    for (size_t k = 0; k < W + 5; k++) ssnad_dedup_check(a, mix(k));
    size_t len;
    unsigned char *blob = malloc(sizeof(uint32_t) * 2 + sizeof a->ring);
    const void *src = ssnad_dedup_blob(a, &len);
    memcpy(blob, src, len);
    uint32_t next, count;
    memcpy(&next, blob, 4), memcpy(&count, blob + 4, 4);
    CHECK(count == W && next == 5);
    CHECK(ssnad_dedup_load(b, blob, len) == 0); // the window of issue 16 (full, next != 0)
    CHECK(ssnad_dedup_load(b, blob, len - 1) == -1);
    CHECK(ssnad_dedup_load(b, blob, len + 8) == -1);
    unsigned char *bad = malloc(len);
    uint32_t v;
    memcpy(bad, blob, len), v = W, memcpy(bad, &v, 4);
    CHECK(ssnad_dedup_load(b, bad, len) == -1); // next out of range
    memcpy(bad, blob, len), v = W + 1, memcpy(bad + 4, &v, 4);
    CHECK(ssnad_dedup_load(b, bad, len) == -1); // count out of range
    memcpy(bad, blob, len), v = 7, memcpy(bad + 4, &v, 4);
    CHECK(ssnad_dedup_load(b, bad, len) == -1); // not full, yet next != count
    memcpy(bad, blob, len), memset(bad + 8 + 8 * 100, 0, 8);
    CHECK(ssnad_dedup_load(b, bad, len) == -1); // an empty slot inside the window
    memcpy(bad, blob, len), memcpy(bad + 8 + 8 * 100, bad + 8 + 8 * 200, 8);
    CHECK(ssnad_dedup_load(b, bad, len) == -1); // one id twice
    // a refused blob leaves an empty window, never half of one
    CHECK(b->count == 0 && b->next == 0 && ssnad_dedup_check(b, mix(3)) == 0);
    free(bad), free(blob), free(a), free(b);
}

int main(void) {
    const size_t fills[] = {0, 1, W - 1, W, W + 1, 2 * W, (size_t)(3.6 * W)};
    for (size_t i = 0; i < sizeof fills / sizeof *fills; i++) run_fill(fills[i], 11 + i);
    check_malformed();
    // hash 0 is kept as 1 (0 marks an empty slot)
    SsnadDedup *d = calloc(1, sizeof *d);
    CHECK(ssnad_dedup_check(d, 0) == 0 && ssnad_dedup_check(d, 1) == 1);
    free(d);
    return check_done();
}
