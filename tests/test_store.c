/* LMDB store: round trips of every table, encoder identity rules, text-hash skip, atomicity of
 * transactions (abort, checkpoint + offsets), persistence across re-open, map growth and a full
 * map or disk without damage to committed data, and damaged records reported as errors. */
#include <lmdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "model/half.h"
#include "model/rng.h"
#include "store/store.h"

#define LAYERS 3
#define HIDDEN 384
#define ID_F16                                                                                     \
    "{\"model\":\"minilm\",\"weights_sha256\":\"abc\",\"layers_kept\":3,\"hidden_size\":384,"      \
    "\"pooling\":\"cls\",\"dtype\":\"f16\"}"

static char err[4096];

static void fill_states(float *x, uint64_t seed) {
    rng_fill_normal(x, LAYERS * HIDDEN, 0, 1, &seed);
}

/* Store items "item0".."item{n-1}" in one transaction (identity set first). */
static int put_items(Store *s, int first, int n, const char *identity) {
    StoreTxn *t;
    if (store_txn_begin(s, &t, err, sizeof err)) return -100;
    int rc = store_set_identity(t, identity, err, sizeof err);
    float x[LAYERS * HIDDEN];
    for (int i = first; i < first + n && !rc; i++) {
        char id[32];
        snprintf(id, sizeof id, "item%d", i);
        fill_states(x, (uint64_t)i);
        rc = store_put_item(t, id, (uint64_t)i * 977, x, LAYERS, HIDDEN, err, sizeof err);
    }
    if (rc) {
        store_txn_abort(t);
        return rc;
    }
    return store_txn_commit(t, 0, err, sizeof err);
}

/* Item i is stored exactly as its F16-rounded states. */
static int item_ok(Store *s, int i) {
    char id[32];
    snprintf(id, sizeof id, "item%d", i);
    float x[LAYERS * HIDDEN], got[LAYERS * HIDDEN];
    StoreItemInfo info;
    if (store_get_item(s, NULL, id, &info, got, LAYERS * HIDDEN, err, sizeof err)) return 0;
    fill_states(x, (uint64_t)i);
    for (int j = 0; j < LAYERS * HIDDEN; j++)
        if (got[j] != half_to_float(half_from_float(x[j]))) return 0;
    return info.text_hash == (uint64_t)i * 977 && info.layers == LAYERS && info.hidden == HIDDEN;
}

static void test_items_and_identity(Store *s) {
    StoreItemShape shape;
    CHECK(store_item_shape(s, &shape, err, sizeof err) == STORE_NOTFOUND);
    CHECK(store_check_identity(s, ID_F16, err, sizeof err) == STORE_NOTFOUND);

    StoreTxn *t;
    float x[LAYERS * HIDDEN], got[LAYERS * HIDDEN];
    fill_states(x, 1);
    CHECK(store_txn_begin(s, &t, err, sizeof err) == STORE_OK);
    CHECK(store_put_item(t, "a", 1, x, LAYERS, HIDDEN, err, sizeof err) == STORE_ERR);
    CHECK_MSG(strstr(err, "no encoder identity"), "%s", err);
    CHECK(store_set_identity(t, "{\"layers_kept\":3}", err, sizeof err) == STORE_ERR);
    CHECK(store_set_identity(t, "not json", err, sizeof err) == STORE_ERR);
    CHECK(store_set_identity(t, ID_F16, err, sizeof err) == STORE_OK);
    CHECK(store_put_item(t, "a", 1, x, 2, HIDDEN, err, sizeof err) == STORE_ERR_IDENTITY);
    CHECK(store_put_item(t, "", 1, x, LAYERS, HIDDEN, err, sizeof err) == STORE_ERR);
    char long_id[600];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = 0;
    CHECK(store_put_item(t, long_id, 1, x, LAYERS, HIDDEN, err, sizeof err) == STORE_ERR);
    CHECK(store_txn_commit(t, 0, err, sizeof err) == STORE_OK);

    CHECK(put_items(s, 0, 10, ID_F16) == STORE_OK);
    int bad = 0;
    for (int i = 0; i < 10; i++) bad += !item_ok(s, i);
    CHECK_MSG(bad == 0, "%d items differ from their F16-rounded states", bad);
    size_t count = 0;
    CHECK(store_item_count(s, NULL, &count, err, sizeof err) == STORE_OK && count == 10);
    CHECK(store_get_item(s, NULL, "nope", NULL, got, LAYERS * HIDDEN, err, sizeof err) ==
          STORE_NOTFOUND);
    CHECK(store_get_item(s, NULL, "item1", NULL, got, 10, err, sizeof err) == STORE_ERR);

    /* text hash: unchanged / changed / absent */
    CHECK(store_item_text_unchanged(s, NULL, "item3", 3 * 977, err, sizeof err) == 1);
    CHECK(store_item_text_unchanged(s, NULL, "item3", 3 * 977 + 1, err, sizeof err) == 0);
    CHECK(store_item_text_unchanged(s, NULL, "item99", 0, err, sizeof err) == 0);
    const char *txt = "Fire Emblem: The Sacred Stones";
    CHECK(store_text_hash(txt, strlen(txt)) == store_text_hash(txt, strlen(txt)));
    CHECK(store_text_hash(txt, strlen(txt)) != store_text_hash(txt, strlen(txt) - 1));

    /* identity: equal regardless of member order; a different encoder is refused */
    CHECK(
        store_check_identity(s,
                             "{\"dtype\":\"f16\",\"layers_kept\":3,\"hidden_size\":384,"
                             "\"pooling\":\"cls\",\"weights_sha256\":\"abc\",\"model\":\"minilm\"}",
                             err, sizeof err) == STORE_OK);
    const char *other = "{\"model\":\"minilm\",\"weights_sha256\":\"def\",\"layers_kept\":3,"
                        "\"hidden_size\":384,\"pooling\":\"cls\",\"dtype\":\"f16\"}";
    CHECK(store_check_identity(s, other, err, sizeof err) == STORE_ERR_IDENTITY);
    CHECK_MSG(strstr(err, "\"abc\"") && strstr(err, "\"def\""), "error names both: %s", err);
    CHECK_MSG(strstr(err, "differs in: weights_sha256)"), "error names the member: %s", err);
    CHECK(put_items(s, 100, 1, other) == STORE_ERR_IDENTITY);
    CHECK(store_item_count(s, NULL, &count, err, sizeof err) == STORE_OK && count == 10);
    char idbuf[512];
    CHECK(store_get_identity(s, idbuf, sizeof idbuf, err, sizeof err) == STORE_OK &&
          !strcmp(idbuf, ID_F16));
    CHECK(store_item_shape(s, &shape, err, sizeof err) == STORE_OK && shape.layers == LAYERS &&
          shape.hidden == HIDDEN && shape.dtype == STORE_F16);
}

static void test_f32_items(void) {
    char dir[64];
    check_temp_dir(dir, sizeof dir, "f32");
    Store *s;
    CHECK(store_open(&s, dir, NULL, err, sizeof err) == STORE_OK);
    StoreTxn *t;
    float x[2 * 5] = {1e-30f, -3.14159274f, 65536.5f, 1e30f, 0.1f, 7, 8, 9, 10, -0.0f}, got[10];
    CHECK(store_txn_begin(s, &t, err, sizeof err) == STORE_OK);
    CHECK(store_set_identity(t, "{\"layers_kept\":2,\"hidden_size\":5,\"dtype\":\"f32\"}", err,
                             sizeof err) == STORE_OK);
    CHECK(store_put_item(t, "x", 5, x, 2, 5, err, sizeof err) == STORE_OK);
    /* reads inside the writing transaction see its own writes */
    StoreItemInfo info;
    CHECK(store_get_item(s, t, "x", &info, got, 10, err, sizeof err) == STORE_OK);
    CHECK(store_txn_commit(t, STORE_COMMIT_SYNC, err, sizeof err) == STORE_OK);
    CHECK(store_get_item(s, NULL, "x", &info, got, 10, err, sizeof err) == STORE_OK);
    CHECK(info.dtype == STORE_F32 && memcmp(got, x, sizeof x) == 0);
    store_close(s);
    check_remove_tree(dir);
}

typedef struct {
    int calls;
    char ids[4][16];
    size_t lens[4];
    uint64_t events[4];
    uint32_t last[4];
} UserWalk;

static int visit_user(const char *id, const uint32_t *items, size_t n, uint64_t events, void *ctx) {
    UserWalk *w = ctx;
    if (w->calls < 4) {
        snprintf(w->ids[w->calls], sizeof w->ids[0], "%s", id);
        w->lens[w->calls] = n;
        w->events[w->calls] = events;
        w->last[w->calls] = n ? items[n - 1] : 0;
    }
    return ++w->calls == 99 ? 7 : 0;
}

static int stop_at_first(const char *id, const uint32_t *items, size_t n, uint64_t events,
                         void *ctx) {
    ++*(int *)ctx;
    return 5;
}

static void test_catalogue_users(Store *s) {
    StoreTxn *t;
    uint32_t idx[3];
    CHECK(store_txn_begin(s, &t, err, sizeof err) == STORE_OK);
    CHECK(store_catalogue_put(t, "B00A", "first text", 10, &idx[0], err, sizeof err) == 0);
    CHECK(store_catalogue_put(t, "B00B", "", 0, &idx[1], err, sizeof err) == 0);
    CHECK(store_catalogue_put(t, "B00C", "third", 5, &idx[2], err, sizeof err) == 0);
    CHECK(idx[0] == 0 && idx[1] == 1 && idx[2] == 2);
    uint32_t again = 99;
    CHECK(store_catalogue_put(t, "B00A", "changed text", 12, &again, err, sizeof err) == 0);
    CHECK(again == 0);
    for (uint32_t i = 0; i < 60; i++)
        CHECK(store_append_user_event(t, "user1", i, err, sizeof err) == STORE_OK);
    uint32_t seq[3] = {2, 0, 1};
    CHECK(store_put_user_seq(t, "user2", seq, 3, 7, err, sizeof err) == STORE_OK);
    CHECK(store_txn_commit(t, 0, err, sizeof err) == STORE_OK);

    size_t count = 0, tlen = 0;
    CHECK(store_catalogue_count(s, NULL, &count, err, sizeof err) == 0 && count == 3);
    char *text = NULL;
    uint32_t index = 99;
    CHECK(store_catalogue_get(s, NULL, "B00A", &index, &text, &tlen, err, sizeof err) == 0);
    CHECK(index == 0 && text && tlen == 12 && !strcmp(text, "changed text"));
    free(text);
    CHECK(store_catalogue_get(s, NULL, "B00B", &index, &text, &tlen, err, sizeof err) == 0);
    CHECK(index == 1 && tlen == 0 && text && !*text);
    free(text);
    CHECK(store_catalogue_get(s, NULL, "B00Z", &index, NULL, NULL, err, sizeof err) ==
          STORE_NOTFOUND);
    char id[STORE_KEY_MAX + 1];
    CHECK(store_catalogue_id(s, NULL, 2, id, sizeof id, err, sizeof err) == 0 &&
          !strcmp(id, "B00C"));
    CHECK(store_catalogue_id(s, NULL, 3, id, sizeof id, err, sizeof err) == STORE_NOTFOUND);

    uint32_t got[STORE_USER_SEQ_MAX];
    size_t n = 0;
    uint64_t events = 0;
    CHECK(store_get_user_seq(s, NULL, "user1", got, STORE_USER_SEQ_MAX, &n, &events, err,
                             sizeof err) == 0);
    CHECK(n == STORE_USER_SEQ_MAX && events == 60 && got[0] == 10 && got[49] == 59);
    CHECK(store_get_user_seq(s, NULL, "user2", got, STORE_USER_SEQ_MAX, &n, &events, err,
                             sizeof err) == 0);
    CHECK(n == 3 && events == 7 && got[0] == 2 && got[1] == 0 && got[2] == 1);
    CHECK(store_get_user_seq(s, NULL, "user2", got, 2, &n, &events, err, sizeof err) == STORE_ERR);
    CHECK(store_get_user_seq(s, NULL, "nobody", got, 50, &n, NULL, err, sizeof err) ==
          STORE_NOTFOUND);
    CHECK(store_user_count(s, NULL, &count, err, sizeof err) == 0 && count == 2);
    UserWalk w = {0};
    CHECK(store_foreach_user(s, NULL, visit_user, &w, err, sizeof err) == STORE_OK);
    CHECK(w.calls == 2 && !strcmp(w.ids[0], "user1") && !strcmp(w.ids[1], "user2"));
    CHECK(w.lens[0] == 50 && w.events[0] == 60 && w.last[0] == 59);
    CHECK(w.lens[1] == 3 && w.events[1] == 7 && w.last[1] == 1);
    int calls = 0;
    CHECK(store_foreach_user(s, NULL, stop_at_first, &calls, err, sizeof err) == 5 && calls == 1);
}

/* Bulk load in dense-index order: rows of items without states stay zero and are flagged. */
static void test_bulk_load_and_counters(Store *s) {
    StoreTxn *t;
    uint32_t i3 = 0, i5 = 0;
    CHECK(store_txn_begin(s, &t, err, sizeof err) == STORE_OK);
    CHECK(store_catalogue_put(t, "item3", "t3", 2, &i3, err, sizeof err) == 0);
    CHECK(store_catalogue_put(t, "item5", "t5", 2, &i5, err, sizeof err) == 0);
    CHECK(store_put_counter(t, "events", 42, err, sizeof err) == 0);
    uint64_t v = 0;
    CHECK(store_get_counter(s, t, "events", &v, err, sizeof err) == 0 && v == 42);
    CHECK(store_get_counter(s, NULL, "events", &v, err, sizeof err) == STORE_NOTFOUND && v == 0);
    CHECK(store_txn_commit(t, 0, err, sizeof err) == STORE_OK);
    CHECK(i3 == 3 && i5 == 4);
    CHECK(store_get_counter(s, NULL, "events", &v, err, sizeof err) == 0 && v == 42);

    enum { N = 5 };
    static float all[N * LAYERS * HIDDEN], want[LAYERS * HIDDEN];
    unsigned char present[N];
    CHECK(store_load_item_states(s, NULL, all, present, N, LAYERS, HIDDEN, err, sizeof err) == 0);
    CHECK(!present[0] && !present[1] && !present[2] && present[3] && present[4]);
    CHECK(store_get_item(s, NULL, "item5", NULL, want, LAYERS * HIDDEN, err, sizeof err) == 0);
    CHECK(!memcmp(all + 4 * LAYERS * HIDDEN, want, sizeof want));
    int nonzero = 0;
    for (int j = 0; j < 3 * LAYERS * HIDDEN; j++) nonzero += all[j] != 0;
    CHECK(nonzero == 0);
    CHECK(store_load_item_states(s, NULL, all, present, N - 1, LAYERS, HIDDEN, err, sizeof err) ==
          STORE_ERR);
    CHECK(store_load_item_states(s, NULL, all, present, N, 2, HIDDEN, err, sizeof err) ==
          STORE_ERR_IDENTITY);
}

static int offsets_are(Store *s, int64_t o0, int64_t o1) {
    StoreOffset *o;
    size_t n;
    if (store_get_offsets(s, NULL, &o, &n, err, sizeof err)) return 0;
    int ok = n == 3 && !strcmp(o[0].topic, "events") && o[0].partition == 0 && o[0].offset == o0 &&
             !strcmp(o[1].topic, "events") && o[1].partition == 1 && o[1].offset == o1 &&
             !strcmp(o[2].topic, "items") && o[2].offset == 5;
    free(o);
    return ok;
}

static int checkpoint_is(Store *s, const char *want) {
    void *blob;
    size_t len;
    if (store_get_checkpoint(s, NULL, "main", &blob, &len, err, sizeof err)) return 0;
    int ok = len == strlen(want) && !memcmp(blob, want, len);
    free(blob);
    return ok;
}

static void test_atomicity(Store *s) {
    StoreTxn *t;
    /* checkpoint + offsets in one transaction */
    CHECK(store_txn_begin(s, &t, err, sizeof err) == STORE_OK);
    CHECK(store_put_checkpoint(t, "main", "params-v1", 9, err, sizeof err) == STORE_OK);
    CHECK(store_put_offset(t, "items", 0, 5, err, sizeof err) == STORE_OK);
    CHECK(store_put_offset(t, "events", 1, 200, err, sizeof err) == STORE_OK);
    CHECK(store_put_offset(t, "events", 0, 100, err, sizeof err) == STORE_OK);
    CHECK(store_put_offset(t, "", 0, 1, err, sizeof err) == STORE_ERR);
    CHECK(store_txn_commit(t, STORE_COMMIT_SYNC, err, sizeof err) == STORE_OK);
    CHECK(checkpoint_is(s, "params-v1") && offsets_are(s, 100, 200));

    /* an aborted transaction over every table leaves nothing behind */
    size_t items0, cat0, users0, items1, cat1, users1;
    store_item_count(s, NULL, &items0, err, sizeof err);
    store_catalogue_count(s, NULL, &cat0, err, sizeof err);
    store_user_count(s, NULL, &users0, err, sizeof err);
    float x[LAYERS * HIDDEN];
    fill_states(x, 5);
    CHECK(store_txn_begin(s, &t, err, sizeof err) == STORE_OK);
    CHECK(store_put_checkpoint(t, "main", "params-v2", 9, err, sizeof err) == STORE_OK);
    CHECK(store_put_offset(t, "events", 0, 150, err, sizeof err) == STORE_OK);
    CHECK(store_put_offset(t, "events", 1, 250, err, sizeof err) == STORE_OK);
    CHECK(store_put_item(t, "item-new", 1, x, LAYERS, HIDDEN, err, sizeof err) == STORE_OK);
    CHECK(store_catalogue_put(t, "item-new", "t", 1, NULL, err, sizeof err) == STORE_OK);
    CHECK(store_append_user_event(t, "user-new", 3, err, sizeof err) == STORE_OK);
    CHECK(store_append_user_event(t, "user1", 3, err, sizeof err) == STORE_OK);
    CHECK(store_put_counter(t, "events", 43, err, sizeof err) == STORE_OK);
    store_txn_abort(t);
    CHECK(checkpoint_is(s, "params-v1") && offsets_are(s, 100, 200));
    store_item_count(s, NULL, &items1, err, sizeof err);
    store_catalogue_count(s, NULL, &cat1, err, sizeof err);
    store_user_count(s, NULL, &users1, err, sizeof err);
    CHECK(items1 == items0 && cat1 == cat0 && users1 == users0);
    uint64_t counter = 0;
    CHECK(store_get_counter(s, NULL, "events", &counter, err, sizeof err) == 0 && counter == 42);
    uint64_t events = 0;
    uint32_t seq[STORE_USER_SEQ_MAX];
    size_t n;
    CHECK(store_get_user_seq(s, NULL, "user1", seq, 50, &n, &events, err, sizeof err) == 0);
    CHECK(events == 60 && seq[49] == 59);

    /* the same unit committed: all of it at once */
    CHECK(store_txn_begin(s, &t, err, sizeof err) == STORE_OK);
    CHECK(store_put_checkpoint(t, "main", "params-v2", 9, err, sizeof err) == STORE_OK);
    CHECK(store_put_offset(t, "events", 0, 150, err, sizeof err) == STORE_OK);
    CHECK(store_put_offset(t, "events", 1, 250, err, sizeof err) == STORE_OK);
    /* other readers see the old state until commit */
    CHECK(checkpoint_is(s, "params-v1") && offsets_are(s, 100, 200));
    CHECK(store_txn_commit(t, 0, err, sizeof err) == STORE_OK);
    CHECK(checkpoint_is(s, "params-v2") && offsets_are(s, 150, 250));
    void *blob;
    size_t len;
    CHECK(store_get_checkpoint(s, NULL, "other", &blob, &len, err, sizeof err) == STORE_NOTFOUND);
}

/* A map too small for the data, with growth capped: the failing transaction is rolled back as a
 * whole and everything committed before stays readable; with growth allowed the same
 * transaction (spanning several resizes) commits whole. */
static void test_map_full(void) {
    char dir[64];
    check_temp_dir(dir, sizeof dir, "full");
    Store *s;
    StoreOptions small = {.map_size = 256 << 10, .max_map_size = 256 << 10};
    CHECK(store_open(&s, dir, &small, err, sizeof err) == STORE_OK);
    CHECK(put_items(s, 0, 20, ID_F16) == STORE_OK);
    int rc = put_items(s, 20, 200, ID_F16);
    CHECK_MSG(rc == STORE_ERR_FULL, "rc %d: %s", rc, err);
    CHECK_MSG(strstr(err, "intact"), "%s", err);
    size_t count = 0;
    CHECK(store_item_count(s, NULL, &count, err, sizeof err) == 0 && count == 20);
    int bad = 0;
    for (int i = 0; i < 20; i++) bad += !item_ok(s, i);
    CHECK(bad == 0);
    store_close(s);

    StoreOptions grow = {.map_size = 256 << 10};
    CHECK(store_open(&s, dir, &grow, err, sizeof err) == STORE_OK);
    CHECK(put_items(s, 20, 400, ID_F16) == STORE_OK);
    CHECK_MSG(store_map_size(s) >= (size_t)(1 << 20), "map %zu", store_map_size(s));
    CHECK(store_item_count(s, NULL, &count, err, sizeof err) == 0 && count == 420);
    bad = 0;
    for (int i = 0; i < 420; i++) bad += !item_ok(s, i);
    CHECK_MSG(bad == 0, "%d items wrong after growth", bad);
    store_close(s);
    check_remove_tree(dir);
}

/* A full disk, simulated with the file-size limit: the commit fails with STORE_ERR_FULL and the
 * committed data survives, readable after re-open. */
static void test_disk_full(void) {
    char dir[64], path[128];
    check_temp_dir(dir, sizeof dir, "disk");
    Store *s;
    CHECK(store_open(&s, dir, NULL, err, sizeof err) == STORE_OK);
    CHECK(put_items(s, 0, 50, ID_F16) == STORE_OK);
    CHECK(store_sync(s, err, sizeof err) == STORE_OK);
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    struct stat st;
    CHECK(stat(path, &st) == 0);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = (rlim_t)st.st_size + 64 * 1024;
    signal(SIGXFSZ, SIG_IGN);
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    int rc = put_items(s, 50, 300, ID_F16);
    setrlimit(RLIMIT_FSIZE, &old);
    CHECK_MSG(rc == STORE_ERR_FULL, "rc %d: %s", rc, err);
    CHECK_MSG(strstr(err, "disk full"), "%s", err);
    store_close(s);
    CHECK(store_open(&s, dir, NULL, err, sizeof err) == STORE_OK);
    size_t count = 0;
    CHECK(store_item_count(s, NULL, &count, err, sizeof err) == 0 && count == 50);
    int bad = 0;
    for (int i = 0; i < 50; i++) bad += !item_ok(s, i);
    CHECK(bad == 0);
    CHECK(put_items(s, 50, 300, ID_F16) == STORE_OK); /* space is back: it works again */
    store_close(s);
    check_remove_tree(dir);
}

/* Overwrite a record behind the store's back with raw LMDB. */
static void raw_put(const char *dir, const char *table, const char *key, const void *val,
                    size_t len) {
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    mdb_env_create(&env);
    mdb_env_set_maxdbs(env, 16);
    int rc = mdb_env_open(env, dir, 0, 0644);
    if (!rc) rc = mdb_txn_begin(env, NULL, 0, &txn);
    if (!rc) rc = mdb_dbi_open(txn, table, 0, &dbi);
    MDB_val k = {strlen(key), (void *)key}, v = {len, (void *)val};
    if (!rc) rc = mdb_put(txn, dbi, &k, &v, 0);
    if (!rc) rc = mdb_txn_commit(txn);
    CHECK_MSG(rc == 0, "raw put into %s: %s", table, mdb_strerror(rc));
    mdb_env_close(env);
}

/* Copy of a stored record, damaged by f(rec, len) and written back. */
static void damage(const char *dir, const char *table, const char *key, int truncate_by,
                   int flip_at) {
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k = {strlen(key), (void *)key}, v;
    unsigned char *copy = NULL;
    size_t len = 0;
    mdb_env_create(&env);
    mdb_env_set_maxdbs(env, 16);
    if (!mdb_env_open(env, dir, MDB_RDONLY, 0644) && !mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) {
        if (!mdb_dbi_open(txn, table, 0, &dbi) && !mdb_get(txn, dbi, &k, &v)) {
            len = v.mv_size;
            copy = malloc(len);
            memcpy(copy, v.mv_data, len);
        }
        mdb_txn_abort(txn);
    }
    mdb_env_close(env);
    CHECK_MSG(copy, "no record %s[%s] to damage", table, key);
    if (!copy) return;
    if (flip_at >= 0 && (size_t)flip_at < len) copy[flip_at] ^= 0x10;
    raw_put(dir, table, key, copy, len - (size_t)truncate_by);
    free(copy);
}

static void test_corrupt_records(const char *dir) {
    damage(dir, "items", "item1", 2, -1);     /* truncated */
    damage(dir, "items", "item2", 0, 40);     /* bit flip in the states */
    damage(dir, "items", "item3", 0, 0);      /* bad magic */
    damage(dir, "users", "user2", 3, -1);     /* truncated */
    damage(dir, "checkpoint", "main", 0, 30); /* bit flip in the blob */
    raw_put(dir, "catalogue", "B00C", "ab", 2);
    raw_put(dir, "offsets", "events", "xyz", 3); /* no partition, a 3-byte offset */
    Store *s;
    CHECK(store_open(&s, dir, NULL, err, sizeof err) == STORE_OK);
    float got[LAYERS * HIDDEN];
    int rc = store_get_item(s, NULL, "item1", NULL, got, LAYERS * HIDDEN, err, sizeof err);
    CHECK_MSG(rc == STORE_ERR_CORRUPT && strstr(err, "item1"), "%d %s", rc, err);
    rc = store_get_item(s, NULL, "item2", NULL, got, LAYERS * HIDDEN, err, sizeof err);
    CHECK_MSG(rc == STORE_ERR_CORRUPT && strstr(err, "checksum"), "%d %s", rc, err);
    rc = store_item_text_unchanged(s, NULL, "item3", 3 * 977, err, sizeof err);
    CHECK_MSG(rc == STORE_ERR_CORRUPT, "%d %s", rc, err);
    CHECK(item_ok(s, 4)); /* neighbours are untouched */
    uint32_t seq[STORE_USER_SEQ_MAX];
    size_t n;
    CHECK(store_get_user_seq(s, NULL, "user2", seq, 50, &n, NULL, err, sizeof err) ==
          STORE_ERR_CORRUPT);
    UserWalk w = {0};
    CHECK(store_foreach_user(s, NULL, visit_user, &w, err, sizeof err) == STORE_ERR_CORRUPT);
    CHECK_MSG(strstr(err, "user2"), "%s", err);
    void *blob;
    size_t len;
    CHECK(store_get_checkpoint(s, NULL, "main", &blob, &len, err, sizeof err) == STORE_ERR_CORRUPT);
    CHECK(blob == NULL);
    uint32_t index;
    CHECK(store_catalogue_get(s, NULL, "B00C", &index, NULL, NULL, err, sizeof err) ==
          STORE_ERR_CORRUPT);
    StoreOffset *offsets = (StoreOffset *)&index; /* must be reset, not freed, on failure */
    rc = store_get_offsets(s, NULL, &offsets, &n, err, sizeof err);
    CHECK_MSG(rc == STORE_ERR_CORRUPT && strstr(err, "offsets: damaged record") && !offsets &&
                  n == 0,
              "%d %s", rc, err);
    store_close(s);
}

/* A damaged catalogue_index entry (a 3-byte index) after a sound one: loading the states stops
 * there, corrupt, naming the table. */
static void test_corrupt_index(void) {
    char dir[64];
    check_temp_dir(dir, sizeof dir, "index");
    Store *s;
    StoreTxn *t;
    uint32_t index;
    CHECK(store_open(&s, dir, NULL, err, sizeof err) == STORE_OK);
    if (!s) return;
    CHECK(store_txn_begin(s, &t, err, sizeof err) == STORE_OK);
    CHECK(store_catalogue_put(t, "A", "a text", 6, &index, err, sizeof err) == STORE_OK);
    CHECK(store_txn_commit(t, 0, err, sizeof err) == STORE_OK);
    float states[LAYERS * HIDDEN];
    unsigned char present[1];
    CHECK(store_load_item_states(s, NULL, states, present, 1, LAYERS, HIDDEN, err, sizeof err) ==
          STORE_OK);
    CHECK(present[0] == 0); /* in the catalogue, not encoded */
    store_close(s);
    raw_put(dir, "catalogue_index", "abc", "A", 1);
    CHECK(store_open(&s, dir, NULL, err, sizeof err) == STORE_OK);
    if (s) {
        int rc =
            store_load_item_states(s, NULL, states, present, 1, LAYERS, HIDDEN, err, sizeof err);
        CHECK_MSG(rc == STORE_ERR_CORRUPT && strstr(err, "catalogue_index"), "%d %s", rc, err);
        store_close(s);
    }
    check_remove_tree(dir);
}

int main(void) {
    char dir[64];
    check_temp_dir(dir, sizeof dir, "main");
    Store *s;
    CHECK(store_open(&s, dir, NULL, err, sizeof err) == STORE_OK);
    if (!s) return check_done();
    test_items_and_identity(s);
    test_catalogue_users(s);
    test_bulk_load_and_counters(s);
    test_atomicity(s);
    store_close(s);

    /* re-open: everything persisted, the identity included */
    CHECK(store_open(&s, dir, NULL, err, sizeof err) == STORE_OK);
    if (s) {
        CHECK(item_ok(s, 7) && checkpoint_is(s, "params-v2") && offsets_are(s, 150, 250));
        CHECK(store_check_identity(s, ID_F16, err, sizeof err) == STORE_OK);
        store_close(s);
    }
    StoreOptions ro = {.read_only = 1};
    CHECK(store_open(&s, dir, &ro, err, sizeof err) == STORE_OK);
    if (s) {
        StoreTxn *t;
        CHECK(item_ok(s, 9));
        CHECK(store_txn_begin(s, &t, err, sizeof err) == STORE_ERR);
        store_close(s);
    }
    CHECK(store_open(&s, "/proc/ssna-no-such-dir", NULL, err, sizeof err) == STORE_ERR);
    CHECK_MSG(strstr(err, "/proc/ssna-no-such-dir"), "%s", err);

    test_corrupt_records(dir);
    check_remove_tree(dir);
    test_corrupt_index();
    test_f32_items();
    test_map_full();
    test_disk_full();
    return check_done();
}
