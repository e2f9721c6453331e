/* popwindow.c - the most chosen items over a sliding window of events (popwindow.h). */
#include "daemon/popwindow.h"

#include <stdlib.h>
#include <string.h>

#include "model/errmsg.h"

#define BLOB_MAGIC   0x57504f50u // "POPW" little-endian
#define BLOB_VERSION 1u
#define BLOB_HEADER  16 // magic u32, version u32, events u64

struct PopWindow {
    uint32_t *ring; // [window] item of each event, oldest at next once full
    size_t window, next, size;
    uint32_t *counts; // [counts_cap] per item over the ring
    size_t counts_cap;
    size_t n_positive; // items with a count > 0
    int k, max_exclude;
    int32_t *rank; // [rank_cap] the most chosen items, best first (cache)
    int rank_n, rank_cap, stale;
};

PopWindow *popwindow_create(size_t window, int k, int max_exclude) {
    if (!window || k < 1 || max_exclude < 0) return NULL;
    PopWindow *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->window = window, p->k = k, p->max_exclude = max_exclude, p->stale = 1;
    p->rank_cap = k + max_exclude;
    p->ring = malloc(window * sizeof *p->ring);
    p->rank = malloc((size_t)p->rank_cap * sizeof *p->rank);
    if (!p->ring || !p->rank) {
        popwindow_free(p);
        return NULL;
    }
    return p;
}

void popwindow_free(PopWindow *p) {
    if (!p) return;
    free(p->ring), free(p->counts), free(p->rank);
    free(p);
}

static int grow_counts(PopWindow *p, uint32_t item) {
    if (item < p->counts_cap) return 0;
    size_t cap = p->counts_cap ? p->counts_cap : 1024;
    while (cap <= item) cap *= 2;
    uint32_t *c = realloc(p->counts, cap * sizeof *c);
    if (!c) return -1;
    memset(c + p->counts_cap, 0, (cap - p->counts_cap) * sizeof *c);
    p->counts = c, p->counts_cap = cap;
    return 0;
}

int popwindow_add(PopWindow *p, uint32_t item) {
    if (grow_counts(p, item)) return -1;
    if (p->size == p->window) { // the oldest event leaves
        uint32_t old = p->ring[p->next];
        if (--p->counts[old] == 0) p->n_positive--;
    } else {
        p->size++;
    }
    p->ring[p->next] = item;
    p->next = (p->next + 1) % p->window;
    if (p->counts[item]++ == 0) p->n_positive++;
    p->stale = 1;
    return 0;
}

uint32_t popwindow_count(const PopWindow *p, uint32_t item) {
    return item < p->counts_cap ? p->counts[item] : 0;
}

size_t popwindow_size(const PopWindow *p) {
    return p->size;
}

/* a ranks before b: more chosen, then the lower index */
static int before(const PopWindow *p, uint32_t a, uint32_t b) {
    return p->counts[a] > p->counts[b] || (p->counts[a] == p->counts[b] && a < b);
}

/* out[0..return) = the top cap items with a count, best first (insertion into a sorted array:
 * cap is small for the cache; the full ranking is the rare path). */
static int rank_top(const PopWindow *p, int32_t *out, int cap) {
    int n = 0;
    for (uint32_t i = 0; i < p->counts_cap; i++) {
        if (!p->counts[i] || (n == cap && !before(p, i, (uint32_t)out[n - 1]))) continue;
        int j = n < cap ? n++ : cap - 1; // the last one drops out when full
        for (; j > 0 && before(p, i, (uint32_t)out[j - 1]); j--) out[j] = out[j - 1];
        out[j] = (int32_t)i;
    }
    return n;
}

static int excluded(uint32_t item, const uint32_t *exclude, int n_exclude) {
    for (int i = 0; i < n_exclude; i++)
        if (exclude[i] == item) return 1;
    return 0;
}

/* The first k usable items of order[0..n) into ids/scores; returns how many. */
static int take(const PopWindow *p, const int32_t *order, int n, const unsigned char *eligible,
                size_t n_items, const uint32_t *exclude, int n_exclude, int k, int32_t *ids,
                float *scores) {
    int got = 0;
    for (int i = 0; i < n && got < k; i++) {
        uint32_t it = (uint32_t)order[i];
        if (it >= n_items || (eligible && !eligible[it]) || excluded(it, exclude, n_exclude))
            continue;
        ids[got] = (int32_t)it, scores[got++] = (float)p->counts[it];
    }
    return got;
}

int popwindow_top_k(PopWindow *p, const unsigned char *eligible, size_t n_items,
                    const uint32_t *exclude, int n_exclude, int k, int32_t *ids, float *scores) {
    if (k > p->k) k = p->k;
    if (n_exclude > p->max_exclude) n_exclude = p->max_exclude;
    if (p->stale) p->rank_n = rank_top(p, p->rank, p->rank_cap), p->stale = 0;
    int got = take(p, p->rank, p->rank_n, eligible, n_items, exclude, n_exclude, k, ids, scores);
    if (got < k && (size_t)p->rank_n < p->n_positive) { // ineligible items filled the cache
        int32_t *all = malloc(p->n_positive * sizeof *all);
        if (!all) return -1;
        int n = rank_top(p, all, (int)p->n_positive);
        got = take(p, all, n, eligible, n_items, exclude, n_exclude, k, ids, scores);
        free(all);
    }
    // pad with the eligible items chosen by no event in the window, lower index first
    for (uint32_t i = 0; i < n_items && got < k; i++)
        if (!popwindow_count(p, i) && (!eligible || eligible[i]) &&
            !excluded(i, exclude, n_exclude))
            ids[got] = (int32_t)i, scores[got++] = 0;
    return got;
}

static void put_u32(unsigned char *b, uint32_t v) {
    for (int i = 0; i < 4; i++) b[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *b) {
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

void *popwindow_save(const PopWindow *p, size_t *len) {
    *len = BLOB_HEADER + p->size * 4;
    unsigned char *b = malloc(*len);
    if (!b) return NULL;
    put_u32(b, BLOB_MAGIC), put_u32(b + 4, BLOB_VERSION);
    put_u32(b + 8, (uint32_t)p->size), put_u32(b + 12, (uint32_t)((uint64_t)p->size >> 32));
    size_t first = p->size == p->window ? p->next : 0; // oldest
    for (size_t i = 0; i < p->size; i++)
        put_u32(b + BLOB_HEADER + 4 * i, p->ring[(first + i) % p->window]);
    return b;
}

int popwindow_load(PopWindow *p, const void *blob, size_t len, size_t n_items, char *err,
                   size_t errlen) {
    const unsigned char *b = blob;
    if (len < BLOB_HEADER || get_u32(b) != BLOB_MAGIC)
        return errmsg_fail(err, errlen, "popularity window: not a window blob (%zu bytes)", len);
    if (get_u32(b + 4) != BLOB_VERSION)
        return errmsg_fail(err, errlen, "popularity window: version %u, this ssnad reads %u",
                           get_u32(b + 4), BLOB_VERSION);
    uint64_t n = get_u32(b + 8) | (uint64_t)get_u32(b + 12) << 32;
    if (n > (len - BLOB_HEADER) / 4 || len != BLOB_HEADER + n * 4)
        return errmsg_fail(err, errlen,
                           "popularity window: %llu events need %llu bytes, the blob has %zu",
                           (unsigned long long)n, (unsigned long long)(BLOB_HEADER + n * 4), len);
    for (uint64_t i = 0; i < n; i++)
        if (get_u32(b + BLOB_HEADER + 4 * i) >= n_items)
            return errmsg_fail(err, errlen,
                               "popularity window: event %llu names item %u of a catalogue of %zu",
                               (unsigned long long)i, get_u32(b + BLOB_HEADER + 4 * i), n_items);
    uint32_t *counts = calloc(n_items ? n_items : 1, sizeof *counts);
    if (!counts) return errmsg_fail(err, errlen, "popularity window: out of memory");
    free(p->counts);
    p->counts = counts, p->counts_cap = n_items;
    p->size = p->next = p->n_positive = 0;
    for (uint64_t i = n > p->window ? n - p->window : 0; i < n; i++)
        popwindow_add(p, get_u32(b + BLOB_HEADER + 4 * i)); // counts already fit: cannot fail
    p->stale = 1;
    return 0;
}
