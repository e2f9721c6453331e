/* test_replay_source - the replay stream of the real Scientific and Games data: the counts of each
 * SOURCE.md, every item with its text, and an interleaving that is a permutation of all
 * interactions keeping each user's order and mixing users. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ingest/replay_source.h"

static void check_stream(const ReplaySource *s, uint64_t seed) {
    char err[512] = "";
    ReplayEvent *ev = NULL;
    CHECK_MSG(replay_source_interleave(s, seed, &ev, err, sizeof err) == 0, "%s", err);
    if (!ev) return;
    const Interactions *q = &s->seqs;
    size_t n = (size_t)interactions_count(q);
    uint32_t *next = calloc((size_t)q->n_users, sizeof *next);
    size_t order_errors = 0, user_changes = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t u = ev[i].user;
        if (u >= (uint32_t)q->n_users) {
            order_errors++;
            continue;
        }
        // each user's events arrive as 0, 1, 2, ... and carry that position's item
        if (ev[i].pos != next[u] || (int)ev[i].item != q->items[q->offsets[u] + (int)next[u]])
            order_errors++;
        next[u]++;
        if (i && ev[i].user != ev[i - 1].user) user_changes++;
    }
    size_t incomplete = 0;
    for (int u = 0; u < q->n_users; u++)
        if ((int)next[u] != q->offsets[u + 1] - q->offsets[u]) incomplete++;
    CHECK_MSG(order_errors == 0, "%zu events out of their user's order", order_errors);
    CHECK_MSG(incomplete == 0, "%zu users not replayed completely", incomplete);
    // interleaved, not user after user: almost every neighbour pair differs in user
    CHECK_MSG(user_changes > n * 9 / 10, "%zu user changes in %zu events", user_changes, n);
    // the seed decides the order, and the same seed gives the same order
    ReplayEvent *again = NULL, *other = NULL;
    CHECK(replay_source_interleave(s, seed, &again, err, sizeof err) == 0);
    CHECK(replay_source_interleave(s, seed + 1, &other, err, sizeof err) == 0);
    if (again && other) {
        CHECK(!memcmp(ev, again, n * sizeof *ev));
        CHECK(memcmp(ev, other, n * sizeof *ev) != 0);
    }
    free(again), free(other), free(next), free(ev);
}

static void load(const char *data_dir, const char *folder, int users, int items, long events,
                 const char *item_id, const char *text_prefix) {
    char dir[1024], err[512] = "";
    snprintf(dir, sizeof dir, "%s/%s", data_dir, folder);
    ReplaySource s;
    CHECK_MSG(replay_source_load(dir, &s, err, sizeof err) == 0, "%s: %s", dir, err);
    if (err[0]) return;
    CHECK_MSG(s.seqs.n_users == users, "%s: %d users", folder, s.seqs.n_users);
    CHECK_MSG(s.seqs.n_items == items, "%s: %d items", folder, s.seqs.n_items);
    CHECK_MSG(interactions_count(&s.seqs) == events, "%s: %ld interactions", folder,
              interactions_count(&s.seqs));
    int found = 0;
    for (int i = 0; i < s.seqs.n_items; i++) {
        CHECK(s.item_texts[i] && s.item_texts[i][0]);
        if (!strcmp(s.seqs.item_ids[i], item_id)) {
            found = 1;
            CHECK_MSG(!strncmp(s.item_texts[i], text_prefix, strlen(text_prefix)), "%s: %s",
                      item_id, s.item_texts[i]);
        }
    }
    CHECK_MSG(found, "%s: item %s missing", folder, item_id);
    check_stream(&s, 7);
    replay_source_free(&s);
}

int main(void) {
    const char *data = getenv("SSNA_DATA_DIR");
    CHECK_MSG(data != NULL, "SSNA_DATA_DIR is not set (run through ctest)");
    if (!data) return check_done();
    // counts from each folder's SOURCE.md (rebuilt full sequences)
    load(data, "amazon-scientific", 8442, 4385, 59427, "B0000223SI",
         "PORTER-CABLE 740000801 4 1/2-Inch x 10yd 80 Grit");
    load(data, "amazon-games", 50546, 16859, 440264, "1", "GBA 6-Pak Care Case");

    char err[512] = "";
    ReplaySource s;
    CHECK(replay_source_load("/nonexistent/folder", &s, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "/nonexistent/folder") != NULL, "%s", err);
    return check_done();
}
