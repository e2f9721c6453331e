/* test_ssnad_users - the in-memory user table past its bound (users.cache_max): it never holds
 * more than max users while they are clean, never evicts a user with a list pending, keeps a user
 * that is used again and again (second chance), grows past max in a burst of dirty users and
 * shrinks back once their lists are out, and finds every user it holds after thousands of
 * evictions (the backward-shift removals keep the probe chains whole); lists that went out short
 * are marked for a refill once, only for clean users. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "daemon/ssnad.h"

static char *name(int i) {
    static char buf[32];
    snprintf(buf, sizeof buf, "user-%d", i);
    return buf;
}

/* Every slot's user is found under its own id; returns how many users the table holds. */
static size_t check_table(SsnadUserMap *m) {
    size_t n = 0;
    int lost = 0;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i]) n++, lost += ssnad_users_find(m, m->slots[i]->id) != m->slots[i];
    CHECK_MSG(lost == 0, "%d users in the table are not found by their id", lost);
    return n;
}

int main(void) {
    SsnadUserMap m = {.max = 100};
    int over = 0, dirty_lost = 0, n_dirty = 0;
    for (int i = 0; i < 5000; i++) {
        SsnadUser *u = ssnad_users_get(&m, name(i));
        CHECK(u && !strcmp(u->id, name(i)));
        ssnad_users_set_dirty(&m, u, i % 7 == 0 && i > 4900); // a few lists pending at the end
        n_dirty += u->dirty;
        over += m.count > m.max + (size_t)n_dirty;
        if (i == 0) ssnad_users_get(&m, name(0))->seq_len = 42;
        ssnad_users_get(&m, name(0)); // used on every turn: must survive
    }
    for (int i = 4901; i < 5000; i++) dirty_lost += i % 7 == 0 && !ssnad_users_find(&m, name(i));
    CHECK_MSG(over == 0, "over max %d times", over);
    CHECK_MSG(dirty_lost == 0, "%d users with a pending list evicted", dirty_lost);
    SsnadUser *zero = ssnad_users_find(&m, "user-0");
    CHECK(zero && zero->seq_len == 42);
    CHECK(check_table(&m) == m.count && m.count <= m.max);
    CHECK_MSG(m.evicted == 5000 - m.count, "evicted %llu, holds %zu", (unsigned long long)m.evicted,
              m.count);
    CHECK(ssnad_users_find(&m, name(10)) == NULL); // long gone

    // a burst: 300 users at once, all waiting for lists: nobody can go
    for (int i = 10000; i < 10300; i++) ssnad_users_set_dirty(&m, ssnad_users_get(&m, name(i)), 1);
    CHECK_MSG(m.count >= 300 && m.n_dirty == 300 + (size_t)n_dirty, "holds %zu of 300 pending",
              m.count);
    for (int i = 10000; i < 10300; i++) CHECK(ssnad_users_find(&m, name(i)) != NULL);
    // their lists go out; new users bring the table back to its bound
    for (int i = 10000; i < 10300; i++) ssnad_users_set_dirty(&m, ssnad_users_find(&m, name(i)), 0);
    for (int i = 20000; i < 20050; i++) ssnad_users_get(&m, name(i));
    CHECK_MSG(m.count <= m.max, "holds %zu after the burst (max %zu)", m.count, m.max);
    CHECK(check_table(&m) == m.count);
    ssnad_users_free(&m);

    // lists drawn from too small a catalogue - short (fewer than k items), or computed when the
    // catalogue was under half of today's 1,000 items (it was still being encoded) - are marked
    // for a refill, once, and only those of clean users; pending users and full lists from at
    // least half the catalogue (501 .. 1,000 items: 500 is exactly half, stale) are left
    SsnadUserMap sh = {.max = 64};
    SsnadUserList out = {0};
    int want = 0;
    const size_t catalogue = 1000;
    for (int i = 0; i < 200; i++) { // past max: evicted users are simply not refilled
        SsnadUser *u = ssnad_users_get(&sh, name(i));
        u->last_list = calloc(10, sizeof *u->last_list);
        u->last_len = i % 3 == 0 ? 10 : i % 11;                              // full, or 0..10 items
        u->last_catalogue = (uint32_t)(i % 7 == 0 ? 499 + i % 3 : 1000 - i); // 499, 500, 501, ...
        ssnad_users_set_dirty(&sh, u, i % 5 == 0);
    }
    for (size_t i = 0; i < sh.cap; i++) {
        SsnadUser *u = sh.slots[i];
        want += u && !u->dirty && (u->last_len < 10 || u->last_catalogue <= catalogue / 2);
    }
    size_t dirty_before = sh.n_dirty;
    CHECK(ssnad_users_mark_stale(&sh, 10, catalogue, &out) == want && want > 0 &&
          out.n == (size_t)want);
    int wrong = 0, by_catalogue = 0;
    for (size_t i = 0; i < out.n; i++) {
        const SsnadUser *u = out.v[i];
        wrong += !u->dirty || !u->refill || (u->last_len >= 10 && u->last_catalogue > 500);
        by_catalogue += u->last_len >= 10;
    }
    CHECK_MSG(wrong == 0, "%d users marked for a refill that should not be", wrong);
    CHECK_MSG(by_catalogue > 0, "no full list from half the catalogue was marked");
    CHECK(sh.n_dirty == dirty_before + (size_t)want);
    CHECK(ssnad_users_mark_stale(&sh, 10, catalogue, &out) == 0 &&
          out.n == (size_t)want); // all dirty now
    free(out.v);
    ssnad_users_free(&sh);

    // max 0: no bound
    SsnadUserMap all = {0};
    for (int i = 0; i < 3000; i++) ssnad_users_get(&all, name(i));
    CHECK(all.count == 3000 && all.evicted == 0 && check_table(&all) == 3000);
    ssnad_users_free(&all);
    return check_done();
}
