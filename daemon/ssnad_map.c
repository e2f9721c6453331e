/* ssnad_map.c - the in-memory user table and the duplicate-event window of ssnad. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/ssnad.h"
#include "model/hash.h"

static SsnadUser **probe(SsnadUser **slots, size_t cap, const char *id) {
    size_t i = hash_fnv1a_str(id) & (cap - 1);
    while (slots[i] && strcmp(slots[i]->id, id)) i = (i + 1) & (cap - 1);
    return &slots[i];
}

SsnadUser *ssnad_users_find(SsnadUserMap *m, const char *id) {
    if (!m->cap) return NULL;
    return *probe(m->slots, m->cap, id);
}

static int grow(SsnadUserMap *m) {
    size_t cap = m->cap ? m->cap * 2 : 1024;
    SsnadUser **slots = calloc(cap, sizeof *slots);
    if (!slots) return -1;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i]) *probe(slots, cap, m->slots[i]->id) = m->slots[i];
    free(m->slots);
    m->slots = slots, m->cap = cap, m->hand = 0;
    return 0;
}

static void user_free(SsnadUser *u) {
    free(u->id), free(u->last_list), free(u);
}

/* Empty slot i, moving later entries of its probe chain back (no tombstones). */
static void remove_slot(SsnadUserMap *m, size_t i) {
    m->slots[i] = NULL;
    for (size_t j = (i + 1) & (m->cap - 1); m->slots[j]; j = (j + 1) & (m->cap - 1)) {
        size_t home = hash_fnv1a_str(m->slots[j]->id) & (m->cap - 1);
        int in_between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!in_between) m->slots[i] = m->slots[j], m->slots[j] = NULL, i = j;
    }
}

/* Evict one clean user: the clock hand passes recently used ones once (clearing the mark) and
 * dirty ones always, so two turns of the hand find one whenever a clean user exists. */
static int evict_one(SsnadUserMap *m) {
    if (m->count <= m->n_dirty) return 0; // every user waits for a list
    for (size_t steps = 0; steps < 2 * m->cap; steps++) {
        size_t i = m->hand;
        m->hand = (m->hand + 1) & (m->cap - 1);
        SsnadUser *u = m->slots[i];
        if (!u || u->dirty) continue;
        if (u->recent) {
            u->recent = 0;
            continue;
        }
        remove_slot(m, i);
        user_free(u);
        m->count--, m->evicted++;
        // the entry moved back into slot i has not been looked at yet
        m->hand = i;
        return 1;
    }
    return 0;
}

SsnadUser *ssnad_users_get(SsnadUserMap *m, const char *id) {
    SsnadUser *u = ssnad_users_find(m, id);
    if (u) {
        u->recent = 1;
        return u;
    }
    while (m->max && m->count >= m->max && evict_one(m)) // a table over max shrinks back
        ;
    if ((m->count + 1) * 2 > m->cap && grow(m)) return NULL; // load factor <= 1/2
    u = calloc(1, sizeof *u);
    if (!u || !(u->id = strdup(id))) {
        free(u);
        return NULL;
    }
    u->recent = 1;
    *probe(m->slots, m->cap, id) = u;
    m->count++;
    return u;
}

void ssnad_users_free(SsnadUserMap *m) {
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i]) user_free(m->slots[i]);
    free(m->slots);
    memset(m, 0, sizeof *m);
}

void ssnad_users_set_dirty(SsnadUserMap *m, SsnadUser *u, int dirty) {
    m->n_dirty += (size_t)(dirty && !u->dirty);
    m->n_dirty -= (size_t)(!dirty && u->dirty);
    u->dirty = dirty;
}

long ssnad_users_mark_stale(SsnadUserMap *m, int k, size_t n_present, SsnadUserList *out) {
    long n = 0;
    for (size_t i = 0; i < m->cap; i++) {
        SsnadUser *u = m->slots[i];
        if (!u || u->dirty || !u->last_list ||
            (u->last_len >= k && 2 * (size_t)u->last_catalogue > n_present))
            continue;
        if (ssnad_userlist_push(out, u)) return -1;
        ssnad_users_set_dirty(m, u, 1);
        u->refill = 1, n++;
    }
    return n;
}

int ssnad_userlist_push(SsnadUserList *l, SsnadUser *u) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 1024;
        SsnadUser **v = realloc(l->v, cap * sizeof *v);
        if (!v) return -1;
        l->v = v, l->cap = cap;
    }
    l->v[l->n++] = u;
    return 0;
}

/* ---- duplicate window ---- */

#define SET_CAP (SSNAD_DEDUP_WINDOW * 2)

static size_t set_find(const SsnadDedup *d, uint64_t h) {
    size_t i = h & (SET_CAP - 1);
    while (d->set[i] && d->set[i] != h) i = (i + 1) & (SET_CAP - 1);
    return i;
}

/* Backward-shift deletion keeps probe chains intact without tombstones. */
static void set_remove(SsnadDedup *d, uint64_t h) {
    size_t i = set_find(d, h);
    if (!d->set[i]) return;
    d->set[i] = 0;
    for (size_t j = (i + 1) & (SET_CAP - 1); d->set[j]; j = (j + 1) & (SET_CAP - 1)) {
        size_t home = d->set[j] & (SET_CAP - 1);
        // move j back to i when its home is not cyclically within (i, j]
        int in_between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!in_between) {
            d->set[i] = d->set[j], d->set[j] = 0;
            i = j;
        }
    }
}

static void remember(SsnadDedup *d, uint64_t h) {
    if (d->count == SSNAD_DEDUP_WINDOW)
        set_remove(d, d->ring[d->next]);
    else
        d->count++;
    d->ring[d->next] = h;
    d->next = (d->next + 1) % SSNAD_DEDUP_WINDOW;
    d->set[set_find(d, h)] = h;
}

int ssnad_dedup_check(SsnadDedup *d, uint64_t h) {
    if (!h) h = 1;
    if (d->set[set_find(d, h)] == h) return 1;
    remember(d, h);
    return 0;
}

/* Blob: u32 next, u32 count, then the ring (SSNAD_DEDUP_WINDOW u64), host byte order (the
 * store is local to one machine). */
const void *ssnad_dedup_blob(const SsnadDedup *d, size_t *len) {
    *len = sizeof d->ring + 2 * sizeof(uint32_t);
    _Static_assert(offsetof(SsnadDedup, ring) == 2 * sizeof(uint32_t), "blob layout");
    return &d->next;
}

int ssnad_dedup_load(SsnadDedup *d, const void *blob, size_t len) {
    const unsigned char *p = blob;
    uint32_t next, count;
    if (len != sizeof d->ring + 2 * sizeof(uint32_t)) return -1;
    memcpy(&next, p, 4), memcpy(&count, p + 4, 4);
    // a window that never filled was written from slot 0 on, so next == count; once full, next
    // is wherever the oldest id sits (any slot)
    if (next >= SSNAD_DEDUP_WINDOW || count > SSNAD_DEDUP_WINDOW ||
        (count < SSNAD_DEDUP_WINDOW && next != count))
        return -1;
    memset(d, 0, sizeof *d);
    // the ring is restored as it was (slots and all), so the window forgets ids in the same
    // order an uninterrupted one would; the set is rebuilt from its live slots
    memcpy(d->ring, p + 8, sizeof d->ring);
    for (uint32_t i = 0; i < count; i++) {
        uint64_t h = d->ring[i];
        size_t slot = set_find(d, h);
        if (!h || d->set[slot]) { // 0 is never stored, and an id is never remembered twice
            memset(d, 0, sizeof *d);
            return -1;
        }
        d->set[slot] = h;
    }
    d->next = next, d->count = count;
    return 0;
}
