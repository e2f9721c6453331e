/* store_state.c - the streaming state tables: user sequences, named counters, checkpoints and
 * consumer offsets. They are written together in the daemon's commit transaction, so a restart
 * resumes from one consistent point (docs/store.md). */
#include <stdlib.h>
#include <string.h>

#include "store/store_internal.h"
#include "model/hash.h"

#define USER_MAGIC   "SSUS"
#define USER_HEADER  16
#define CKPT_MAGIC   "SSCK"
#define CKPT_VERSION 1
#define CKPT_HEADER  24

/* ---- users ---- */

int store_put_user_seq(StoreTxn *t, const char *user_id, const uint32_t *items, size_t n,
                       uint64_t events, char *err, size_t errlen) {
    size_t klen = 0;
    int rc = store_check_key(t->s, "user id", user_id, &klen, err, errlen);
    if (rc) return rc;
    if (n > STORE_USER_SEQ_MAX) {
        items += n - STORE_USER_SEQ_MAX; /* keep the most recent */
        n = STORE_USER_SEQ_MAX;
    }
    unsigned char rec[USER_HEADER + 4 * STORE_USER_SEQ_MAX];
    memcpy(rec, USER_MAGIC, 4);
    put_u32(rec + 4, (uint32_t)n);
    put_u64(rec + 8, events);
    if (n) memcpy(rec + USER_HEADER, items, 4 * n);
    return store_txn_put(t, TABLE_USERS, user_id, klen, rec, USER_HEADER + 4 * n, err, errlen);
}

/* Check a user record and copy its sequence out. */
static int decode_user(Store *s, const char *user_id, const MDB_val *v, uint32_t *items, size_t cap,
                       size_t *n, uint64_t *events, char *err, size_t errlen) {
    const unsigned char *p = v->mv_data;
    uint32_t len = v->mv_size >= USER_HEADER ? get_u32(p + 4) : 0;
    if (v->mv_size < USER_HEADER || memcmp(p, USER_MAGIC, 4) || len > STORE_USER_SEQ_MAX ||
        v->mv_size != USER_HEADER + 4 * (size_t)len)
        return store_fail(s, err, errlen, STORE_ERR_CORRUPT,
                          "users['%s']: %zu-byte record is truncated or damaged", user_id,
                          (size_t)v->mv_size);
    if (len > cap)
        return store_fail(s, err, errlen, STORE_ERR,
                          "users['%s']: %u items do not fit a buffer of %zu", user_id, len, cap);
    if (len) memcpy(items, p + USER_HEADER, 4 * (size_t)len);
    *n = len;
    if (events) *events = get_u64(p + 8);
    return STORE_OK;
}

int store_get_user_seq(Store *s, StoreTxn *t, const char *user_id, uint32_t *items, size_t cap,
                       size_t *n, uint64_t *events, char *err, size_t errlen) {
    size_t klen = 0;
    int rc = store_check_key(s, "user id", user_id, &klen, err, errlen);
    if (rc) return rc;
    MDB_txn *txn;
    rc = store_read_begin(s, t, &txn, err, errlen);
    if (rc) return rc;
    MDB_val v;
    rc = store_db_get(s, txn, TABLE_USERS, user_id, klen, &v, err, errlen);
    if (!rc) rc = decode_user(s, user_id, &v, items, cap, n, events, err, errlen);
    store_read_end(s, t, txn);
    return rc;
}

typedef struct {
    StoreUserVisitor visit;
    void *ctx;
} UserScan;

static int scan_user(Store *s, MDB_txn *txn, const MDB_val *k, const MDB_val *v, void *ctx,
                     char *err, size_t errlen) {
    UserScan *u = ctx;
    (void)txn;
    char id[STORE_KEY_MAX + 1];
    uint32_t seq[STORE_USER_SEQ_MAX];
    size_t n = 0, klen = k->mv_size > STORE_KEY_MAX ? STORE_KEY_MAX : k->mv_size;
    uint64_t events = 0;
    memcpy(id, k->mv_data, klen);
    id[klen] = 0;
    int rc = decode_user(s, id, v, seq, STORE_USER_SEQ_MAX, &n, &events, err, errlen);
    return rc ? rc : u->visit(id, seq, n, events, u->ctx);
}

int store_foreach_user(Store *s, StoreTxn *t, StoreUserVisitor visit, void *ctx, char *err,
                       size_t errlen) {
    UserScan u = {visit, ctx};
    return store_db_scan(s, t, TABLE_USERS, scan_user, &u, err, errlen);
}

int store_append_user_event(StoreTxn *t, const char *user_id, uint32_t item, char *err,
                            size_t errlen) {
    uint32_t seq[STORE_USER_SEQ_MAX + 1];
    size_t n = 0;
    uint64_t events = 0;
    int rc =
        store_get_user_seq(t->s, t, user_id, seq, STORE_USER_SEQ_MAX, &n, &events, err, errlen);
    if (rc < 0) return rc;
    seq[n++] = item;
    return store_put_user_seq(t, user_id, seq, n, events + 1, err, errlen);
}

int store_user_count(Store *s, StoreTxn *t, size_t *count, char *err, size_t errlen) {
    return store_db_count(s, t, TABLE_USERS, count, err, errlen);
}

/* ---- counters ---- */

/* Counters live in meta under "counter:" + name, apart from the identity key. */
static int counter_key(const Store *s, const char *name, char *key, size_t *klen, char *err,
                       size_t errlen) {
    size_t n = name ? strlen(name) : 0;
    if (!n || n + 8 > STORE_KEY_MAX)
        return store_fail(s, err, errlen, STORE_ERR, "counter name must be 1..%d bytes",
                          STORE_KEY_MAX - 8);
    memcpy(key, "counter:", 8);
    memcpy(key + 8, name, n);
    *klen = n + 8;
    return STORE_OK;
}

int store_put_counter(StoreTxn *t, const char *name, uint64_t value, char *err, size_t errlen) {
    char key[STORE_KEY_MAX];
    size_t klen = 0;
    int rc = counter_key(t->s, name, key, &klen, err, errlen);
    if (rc) return rc;
    unsigned char val[8];
    put_u64(val, value);
    return store_txn_put(t, TABLE_META, key, klen, val, 8, err, errlen);
}

int store_get_counter(Store *s, StoreTxn *t, const char *name, uint64_t *value, char *err,
                      size_t errlen) {
    *value = 0;
    char key[STORE_KEY_MAX];
    size_t klen = 0;
    int rc = counter_key(s, name, key, &klen, err, errlen);
    if (rc) return rc;
    MDB_txn *txn;
    rc = store_read_begin(s, t, &txn, err, errlen);
    if (rc) return rc;
    MDB_val v;
    rc = store_db_get(s, txn, TABLE_META, key, klen, &v, err, errlen);
    if (!rc && v.mv_size != 8)
        rc = store_fail(s, err, errlen, STORE_ERR_CORRUPT, "counter '%s': %zu-byte record", name,
                        (size_t)v.mv_size);
    if (!rc) *value = get_u64(v.mv_data);
    store_read_end(s, t, txn);
    return rc;
}

/* ---- checkpoints ---- */

int store_put_checkpoint(StoreTxn *t, const char *name, const void *blob, size_t len, char *err,
                         size_t errlen) {
    size_t klen = 0;
    int rc = store_check_key(t->s, "checkpoint name", name, &klen, err, errlen);
    if (rc) return rc;
    unsigned char *rec = malloc(CKPT_HEADER + len);
    if (!rec) return store_fail(t->s, err, errlen, STORE_ERR, "out of memory");
    memcpy(rec, CKPT_MAGIC, 4);
    put_u32(rec + 4, CKPT_VERSION);
    put_u64(rec + 8, len);
    put_u64(rec + 16, hash_fnv1a(blob, len));
    if (len) memcpy(rec + CKPT_HEADER, blob, len);
    rc = store_txn_put(t, TABLE_CHECKPOINT, name, klen, rec, CKPT_HEADER + len, err, errlen);
    free(rec);
    return rc;
}

int store_get_checkpoint(Store *s, StoreTxn *t, const char *name, void **blob, size_t *len,
                         char *err, size_t errlen) {
    *blob = NULL;
    *len = 0;
    size_t klen = 0;
    int rc = store_check_key(s, "checkpoint name", name, &klen, err, errlen);
    if (rc) return rc;
    MDB_txn *txn;
    rc = store_read_begin(s, t, &txn, err, errlen);
    if (rc) return rc;
    MDB_val v;
    rc = store_db_get(s, txn, TABLE_CHECKPOINT, name, klen, &v, err, errlen);
    if (!rc) {
        const unsigned char *p = v.mv_data;
        uint64_t n = v.mv_size >= CKPT_HEADER ? get_u64(p + 8) : 0;
        if (v.mv_size < CKPT_HEADER || memcmp(p, CKPT_MAGIC, 4) || get_u32(p + 4) != CKPT_VERSION ||
            n != v.mv_size - CKPT_HEADER) {
            rc = store_fail(s, err, errlen, STORE_ERR_CORRUPT,
                            "checkpoint['%s']: %zu-byte record is truncated or damaged", name,
                            (size_t)v.mv_size);
        } else if (hash_fnv1a(p + CKPT_HEADER, n) != get_u64(p + 16)) {
            rc = store_fail(s, err, errlen, STORE_ERR_CORRUPT,
                            "checkpoint['%s']: checksum mismatch (damaged record)", name);
        } else if (!(*blob = malloc(n ? n : 1))) {
            rc = store_fail(s, err, errlen, STORE_ERR, "out of memory");
        } else {
            memcpy(*blob, p + CKPT_HEADER, n);
            *len = n;
        }
    }
    store_read_end(s, t, txn);
    return rc;
}

/* ---- offsets ---- */

int store_put_offset(StoreTxn *t, const char *topic, int32_t partition, int64_t offset, char *err,
                     size_t errlen) {
    size_t tlen = topic ? strlen(topic) : 0;
    if (!tlen || tlen > STORE_TOPIC_MAX || partition < 0)
        return store_fail(t->s, err, errlen, STORE_ERR,
                          "offset key (topic '%s', partition %d): topic must be 1..%d bytes, "
                          "partition >= 0",
                          topic ? topic : "", (int)partition, STORE_TOPIC_MAX);
    /* key: topic, NUL, partition big-endian, so keys sort by topic then partition */
    unsigned char key[STORE_TOPIC_MAX + 5];
    memcpy(key, topic, tlen);
    key[tlen] = 0;
    put_u32_be(key + tlen + 1, (uint32_t)partition);
    unsigned char val[8];
    put_u64(val, (uint64_t)offset);
    return store_txn_put(t, TABLE_OFFSETS, key, tlen + 5, val, 8, err, errlen);
}

typedef struct {
    StoreOffset *offsets;
    size_t n, cap;
} OffsetScan;

/* key: topic, NUL, partition (u32 big-endian); value: the offset (u64). */
static int scan_offset(Store *s, MDB_txn *txn, const MDB_val *k, const MDB_val *v, void *ctx,
                       char *err, size_t errlen) {
    OffsetScan *o = ctx;
    (void)txn;
    const unsigned char *kp = k->mv_data;
    size_t tlen = k->mv_size >= 5 ? k->mv_size - 5 : 0;
    if (k->mv_size < 6 || tlen > STORE_TOPIC_MAX || kp[tlen] || v->mv_size != 8)
        return store_fail(s, err, errlen, STORE_ERR_CORRUPT,
                          "offsets: damaged record (key %zu bytes, value %zu bytes)",
                          (size_t)k->mv_size, (size_t)v->mv_size);
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 16;
        StoreOffset *grown = realloc(o->offsets, cap * sizeof *grown);
        if (!grown) return store_fail(s, err, errlen, STORE_ERR, "out of memory");
        o->offsets = grown, o->cap = cap;
    }
    StoreOffset *r = &o->offsets[o->n++];
    memcpy(r->topic, kp, tlen);
    r->topic[tlen] = 0;
    r->partition = (int32_t)get_u32_be(kp + tlen + 1);
    r->offset = (int64_t)get_u64(v->mv_data);
    return STORE_OK;
}

int store_get_offsets(Store *s, StoreTxn *t, StoreOffset **offsets, size_t *n, char *err,
                      size_t errlen) {
    OffsetScan o = {0};
    int rc = store_db_scan(s, t, TABLE_OFFSETS, scan_offset, &o, err, errlen);
    if (rc) {
        free(o.offsets);
        o.offsets = NULL, o.n = 0;
    }
    *offsets = o.offsets, *n = o.n;
    return rc;
}
