/* store.c - the tables of the store and their record formats (docs/store.md). Every record
 * carries its own length fields and, where a silent bit flip would poison the model (item states,
 * checkpoints), a checksum, so a damaged record is an error rather than wrong numbers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/half.h"
#include "model/json.h"
#include "store/store_internal.h"

#define ITEM_MAGIC   "SSIT"
#define ITEM_VERSION 1
#define ITEM_HEADER  32
#define USER_MAGIC   "SSUS"
#define USER_HEADER  16
#define CKPT_MAGIC   "SSCK"
#define CKPT_VERSION 1
#define CKPT_HEADER  24

/* ---- little helpers ---- */

static void put_u16(unsigned char *p, uint16_t v) {
    memcpy(p, &v, sizeof v);
}
static void put_u32(unsigned char *p, uint32_t v) {
    memcpy(p, &v, sizeof v);
}
static void put_u64(unsigned char *p, uint64_t v) {
    memcpy(p, &v, sizeof v);
}
static uint16_t get_u16(const unsigned char *p) {
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}
static uint32_t get_u32(const unsigned char *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}
static uint64_t get_u64(const unsigned char *p) {
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static void put_u32_be(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Keys are ids as given; LMDB caps them at STORE_KEY_MAX bytes. */
static int check_key(const Store *s, const char *what, const char *key, size_t *len, char *err,
                     size_t errlen) {
    if (!key || !*key) return store_fail(s, err, errlen, STORE_ERR, "%s is empty", what);
    *len = strlen(key);
    if (*len > STORE_KEY_MAX)
        return store_fail(s, err, errlen, STORE_ERR,
                          "%s '%.40s...' is %zu bytes; LMDB keys hold at most %d", what, key, *len,
                          STORE_KEY_MAX);
    return STORE_OK;
}

uint64_t store_text_hash(const char *text, size_t len) {
    return store_fnv1a64(text, len);
}

/* ---- identity ---- */

static int json_equal(const JsonValue *a, const JsonValue *b) {
    if (a->type != b->type) return 0;
    switch (a->type) {
    case JSON_NULL:
        return 1;
    case JSON_BOOL:
        return a->boolean == b->boolean;
    case JSON_NUMBER:
        return a->number == b->number;
    case JSON_STRING:
        return a->len == b->len && !memcmp(a->str, b->str, a->len);
    case JSON_ARRAY:
        if (a->len != b->len) return 0;
        for (size_t i = 0; i < a->len; i++)
            if (!json_equal(&a->items[i], &b->items[i])) return 0;
        return 1;
    case JSON_OBJECT:
        if (a->len != b->len) return 0;
        for (size_t i = 0; i < a->len; i++) {
            const JsonValue *bv = json_get(b, a->keys[i]);
            if (!bv || !json_equal(&a->items[i], bv)) return 0;
        }
        return 1;
    }
    return 0;
}

int store_parse_shape(const Store *s, const char *json, size_t len, StoreItemShape *shape,
                      char *err, size_t errlen) {
    JsonValue v;
    char jerr[256];
    if (json_parse(&v, json, len, jerr, sizeof jerr))
        return store_fail(s, err, errlen, STORE_ERR, "encoder identity is not valid JSON: %s",
                          jerr);
    int rc = STORE_OK;
    double layers = json_get_number(&v, "layers_kept", -1);
    double hidden = json_get_number(&v, "hidden_size", -1);
    const char *dtype = json_get_string(&v, "dtype", "");
    if (v.type != JSON_OBJECT) {
        rc = store_fail(s, err, errlen, STORE_ERR, "encoder identity is not a JSON object");
    } else if (layers < 1 || layers > 65535 || layers != (int)layers) {
        rc = store_fail(s, err, errlen, STORE_ERR,
                        "encoder identity needs \"layers_kept\": an integer in 1..65535");
    } else if (hidden < 1 || hidden > (1 << 20) || hidden != (int)hidden) {
        rc = store_fail(s, err, errlen, STORE_ERR,
                        "encoder identity needs \"hidden_size\": an integer in 1..1048576");
    } else if (strcmp(dtype, "f16") && strcmp(dtype, "f32")) {
        rc = store_fail(s, err, errlen, STORE_ERR,
                        "encoder identity needs \"dtype\": \"f16\" or \"f32\" (got \"%s\")", dtype);
    } else {
        shape->layers = (int)layers;
        shape->hidden = (int)hidden;
        shape->dtype = strcmp(dtype, "f16") ? STORE_F32 : STORE_F16;
    }
    json_free(&v);
    return rc;
}

/* STORE_OK when equal as JSON, STORE_ERR_IDENTITY naming both otherwise. */
static int compare_identity(const Store *s, const char *stored, const char *given, char *err,
                            size_t errlen) {
    JsonValue a, b;
    char jerr[256];
    if (json_parse(&a, stored, strlen(stored), jerr, sizeof jerr))
        return store_fail(s, err, errlen, STORE_ERR_CORRUPT, "stored encoder identity: %s", jerr);
    if (json_parse(&b, given, strlen(given), jerr, sizeof jerr)) {
        json_free(&a);
        return store_fail(s, err, errlen, STORE_ERR, "encoder identity is not valid JSON: %s",
                          jerr);
    }
    int same = json_equal(&a, &b);
    /* name the top-level members that differ, so the cause is visible in a long identity */
    char diff[256] = "";
    size_t at = 0;
    for (size_t i = 0; !same && a.type == JSON_OBJECT && i < a.len; i++) {
        const JsonValue *bv = json_get(&b, a.keys[i]);
        if (bv && json_equal(&a.items[i], bv)) continue;
        int n = snprintf(diff + at, sizeof diff - at, "%s%s", at ? ", " : "", a.keys[i]);
        if (n < 0 || (size_t)n >= sizeof diff - at) break;
        at += (size_t)n;
    }
    for (size_t i = 0; !same && b.type == JSON_OBJECT && i < b.len; i++) {
        if (json_get(&a, b.keys[i])) continue;
        int n = snprintf(diff + at, sizeof diff - at, "%s%s", at ? ", " : "", b.keys[i]);
        if (n < 0 || (size_t)n >= sizeof diff - at) break;
        at += (size_t)n;
    }
    json_free(&a);
    json_free(&b);
    if (same) return STORE_OK;
    return store_fail(s, err, errlen, STORE_ERR_IDENTITY,
                      "holds item states of another encoder (differs in: %s); refusing to mix "
                      "them.\n  stored:    %s\n  requested: %s\n"
                      "Use another store directory, or delete this one to re-encode.",
                      at ? diff : "the identity's structure", stored, given);
}

int store_set_identity(StoreTxn *t, const char *identity_json, char *err, size_t errlen) {
    Store *s = t->s;
    StoreItemShape shape;
    int rc = store_parse_shape(s, identity_json, strlen(identity_json), &shape, err, errlen);
    if (rc) return rc;
    const char *current = t->identity_json ? t->identity_json : s->identity_json;
    if (current) return compare_identity(s, current, identity_json, err, errlen);
    rc = store_txn_put(t, TABLE_META, "encoder", 7, identity_json, strlen(identity_json), err,
                       errlen);
    if (rc) return rc;
    t->identity_json = strdup(identity_json);
    if (!t->identity_json) return store_fail(s, err, errlen, STORE_ERR, "out of memory");
    t->shape = shape;
    return STORE_OK;
}

int store_check_identity(Store *s, const char *identity_json, char *err, size_t errlen) {
    if (!s->identity_json) return STORE_NOTFOUND;
    return compare_identity(s, s->identity_json, identity_json, err, errlen);
}

int store_get_identity(Store *s, char *buf, size_t buflen, char *err, size_t errlen) {
    if (!s->identity_json) return STORE_NOTFOUND;
    if (strlen(s->identity_json) >= buflen)
        return store_fail(s, err, errlen, STORE_ERR, "identity needs %zu bytes, buffer has %zu",
                          strlen(s->identity_json) + 1, buflen);
    memcpy(buf, s->identity_json, strlen(s->identity_json) + 1);
    return STORE_OK;
}

int store_item_shape(Store *s, StoreItemShape *shape, char *err, size_t errlen) {
    if (!s->identity_json) return STORE_NOTFOUND;
    *shape = s->shape;
    return STORE_OK;
}

/* ---- items ---- */

int store_put_item(StoreTxn *t, const char *item_id, uint64_t text_hash, const float *states,
                   int layers, int hidden, char *err, size_t errlen) {
    Store *s = t->s;
    size_t klen;
    int rc = check_key(s, "item id", item_id, &klen, err, errlen);
    if (rc) return rc;
    const StoreItemShape *shape = t->identity_json ? &t->shape : &s->shape;
    if (!t->identity_json && !s->identity_json)
        return store_fail(s, err, errlen, STORE_ERR,
                          "item '%s': no encoder identity set; call store_set_identity first",
                          item_id);
    if (layers != shape->layers || hidden != shape->hidden)
        return store_fail(s, err, errlen, STORE_ERR_IDENTITY,
                          "item '%s' has %d layers x %d, the store's encoder keeps %d x %d",
                          item_id, layers, hidden, shape->layers, shape->hidden);
    size_t n = (size_t)layers * (size_t)hidden;
    size_t width = shape->dtype == STORE_F16 ? 2 : 4;
    size_t size = ITEM_HEADER + n * width;
    unsigned char *rec = malloc(size);
    if (!rec) return store_fail(s, err, errlen, STORE_ERR, "out of memory");
    unsigned char *payload = rec + ITEM_HEADER;
    if (shape->dtype == STORE_F16) {
        uint16_t *h = malloc(n * sizeof *h);
        if (!h) {
            free(rec);
            return store_fail(s, err, errlen, STORE_ERR, "out of memory");
        }
        half_from_float_array(states, h, n); /* states: [layers, hidden] */
        memcpy(payload, h, n * 2);
        free(h);
    } else {
        memcpy(payload, states, n * 4);
    }
    memset(rec, 0, ITEM_HEADER);
    memcpy(rec, ITEM_MAGIC, 4);
    put_u16(rec + 4, ITEM_VERSION);
    rec[6] = (unsigned char)shape->dtype;
    put_u16(rec + 8, (uint16_t)layers);
    put_u32(rec + 12, (uint32_t)hidden);
    put_u64(rec + 16, text_hash);
    put_u64(rec + 24, store_fnv1a64(payload, n * width));
    rc = store_txn_put(t, TABLE_ITEMS, item_id, klen, rec, size, err, errlen);
    free(rec);
    return rc;
}

/* Validate an item record's header against its size; fills info. */
static int decode_item_header(const Store *s, const char *item_id, const MDB_val *v,
                              StoreItemInfo *info, char *err, size_t errlen) {
    const unsigned char *p = v->mv_data;
    if (v->mv_size < ITEM_HEADER || memcmp(p, ITEM_MAGIC, 4) || get_u16(p + 4) != ITEM_VERSION)
        return store_fail(s, err, errlen, STORE_ERR_CORRUPT,
                          "items['%s']: %zu-byte record without a valid header", item_id,
                          (size_t)v->mv_size);
    info->dtype = (StoreDtype)p[6];
    info->layers = get_u16(p + 8);
    info->hidden = (int)get_u32(p + 12);
    info->text_hash = get_u64(p + 16);
    size_t width = info->dtype == STORE_F16 ? 2 : info->dtype == STORE_F32 ? 4 : 0;
    size_t want = ITEM_HEADER + (size_t)info->layers * (size_t)info->hidden * width;
    if (!width || v->mv_size != want)
        return store_fail(s, err, errlen, STORE_ERR_CORRUPT,
                          "items['%s']: record is %zu bytes, its header (%d x %d, dtype %d) "
                          "says %zu: truncated or damaged",
                          item_id, (size_t)v->mv_size, info->layers, info->hidden, (int)info->dtype,
                          want);
    return STORE_OK;
}

int store_get_item(Store *s, StoreTxn *t, const char *item_id, StoreItemInfo *info, float *states,
                   size_t states_cap, char *err, size_t errlen) {
    size_t klen;
    int rc = check_key(s, "item id", item_id, &klen, err, errlen);
    if (rc) return rc;
    MDB_txn *txn;
    rc = store_read_begin(s, t, &txn, err, errlen);
    if (rc) return rc;
    MDB_val v;
    StoreItemInfo got;
    rc = store_db_get(s, txn, TABLE_ITEMS, item_id, klen, &v, err, errlen);
    if (!rc) rc = decode_item_header(s, item_id, &v, &got, err, errlen);
    if (!rc && states) {
        const unsigned char *payload = (const unsigned char *)v.mv_data + ITEM_HEADER;
        size_t n = (size_t)got.layers * (size_t)got.hidden;
        size_t width = got.dtype == STORE_F16 ? 2 : 4;
        if (store_fnv1a64(payload, n * width) != get_u64((const unsigned char *)v.mv_data + 24)) {
            rc = store_fail(s, err, errlen, STORE_ERR_CORRUPT,
                            "items['%s']: state checksum mismatch (damaged record)", item_id);
        } else if (states_cap < n) {
            rc = store_fail(s, err, errlen, STORE_ERR,
                            "items['%s']: needs room for %zu floats, buffer holds %zu", item_id, n,
                            states_cap);
        } else if (got.dtype == STORE_F16) {
            /* LMDB values are only 2-byte aligned, which uint16_t reads tolerate */
            uint16_t *h = malloc(n * sizeof *h);
            if (!h) {
                rc = store_fail(s, err, errlen, STORE_ERR, "out of memory");
            } else {
                memcpy(h, payload, n * 2);
                half_to_float_array(h, states, n);
                free(h);
            }
        } else {
            memcpy(states, payload, n * 4);
        }
    }
    store_read_end(s, t, txn);
    if (!rc && info) *info = got;
    return rc;
}

int store_item_text_unchanged(Store *s, StoreTxn *t, const char *item_id, uint64_t text_hash,
                              char *err, size_t errlen) {
    StoreItemInfo info;
    int rc = store_get_item(s, t, item_id, &info, NULL, 0, err, errlen);
    if (rc == STORE_NOTFOUND) return 0;
    if (rc) return rc;
    return info.text_hash == text_hash;
}

int store_item_count(Store *s, StoreTxn *t, size_t *count, char *err, size_t errlen) {
    return store_db_count(s, t, TABLE_ITEMS, count, err, errlen);
}

/* ---- catalogue ---- */

int store_catalogue_put(StoreTxn *t, const char *item_id, const char *text, size_t text_len,
                        uint32_t *index, char *err, size_t errlen) {
    Store *s = t->s;
    size_t klen;
    int rc = check_key(s, "item id", item_id, &klen, err, errlen);
    if (rc) return rc;
    MDB_txn *txn;
    rc = store_read_begin(s, t, &txn, err, errlen); /* refuses a failed transaction */
    if (rc) return rc;
    MDB_val v;
    rc = store_db_get(s, txn, TABLE_CATALOGUE, item_id, klen, &v, err, errlen);
    if (rc < 0) return rc;
    uint32_t idx;
    int is_new = rc == STORE_NOTFOUND;
    if (!is_new) {
        if (v.mv_size < 4)
            return store_fail(s, err, errlen, STORE_ERR_CORRUPT,
                              "catalogue['%s']: %zu-byte record is truncated", item_id,
                              (size_t)v.mv_size);
        idx = get_u32(v.mv_data);
        if (v.mv_size - 4 == text_len && !memcmp((char *)v.mv_data + 4, text, text_len)) {
            if (index) *index = idx;
            return STORE_OK;
        }
    } else {
        size_t count;
        rc = store_db_count(s, t, TABLE_CATALOGUE, &count, err, errlen);
        if (rc) return rc;
        if (count >= UINT32_MAX)
            return store_fail(s, err, errlen, STORE_ERR, "catalogue is full (2^32 items)");
        idx = (uint32_t)count;
    }
    unsigned char *rec = malloc(4 + text_len);
    if (!rec) return store_fail(s, err, errlen, STORE_ERR, "out of memory");
    put_u32(rec, idx);
    if (text_len) memcpy(rec + 4, text, text_len);
    rc = store_txn_put(t, TABLE_CATALOGUE, item_id, klen, rec, 4 + text_len, err, errlen);
    free(rec);
    if (!rc && is_new) {
        unsigned char key[4];
        put_u32_be(key, idx); /* big-endian so LMDB's byte order is index order */
        rc = store_txn_put(t, TABLE_CATALOGUE_INDEX, key, 4, item_id, klen, err, errlen);
    }
    if (!rc && index) *index = idx;
    return rc;
}

int store_catalogue_get(Store *s, StoreTxn *t, const char *item_id, uint32_t *index, char **text,
                        size_t *text_len, char *err, size_t errlen) {
    size_t klen;
    int rc = check_key(s, "item id", item_id, &klen, err, errlen);
    if (rc) return rc;
    MDB_txn *txn;
    rc = store_read_begin(s, t, &txn, err, errlen);
    if (rc) return rc;
    MDB_val v;
    rc = store_db_get(s, txn, TABLE_CATALOGUE, item_id, klen, &v, err, errlen);
    if (!rc && v.mv_size < 4)
        rc =
            store_fail(s, err, errlen, STORE_ERR_CORRUPT,
                       "catalogue['%s']: %zu-byte record is truncated", item_id, (size_t)v.mv_size);
    if (!rc) {
        if (index) *index = get_u32(v.mv_data);
        size_t n = v.mv_size - 4;
        if (text_len) *text_len = n;
        if (text) {
            *text = malloc(n + 1);
            if (!*text) {
                rc = store_fail(s, err, errlen, STORE_ERR, "out of memory");
            } else {
                memcpy(*text, (char *)v.mv_data + 4, n);
                (*text)[n] = 0;
            }
        }
    }
    store_read_end(s, t, txn);
    return rc;
}

int store_catalogue_id(Store *s, StoreTxn *t, uint32_t index, char *id, size_t idlen, char *err,
                       size_t errlen) {
    MDB_txn *txn;
    int rc = store_read_begin(s, t, &txn, err, errlen);
    if (rc) return rc;
    unsigned char key[4];
    put_u32_be(key, index);
    MDB_val v;
    rc = store_db_get(s, txn, TABLE_CATALOGUE_INDEX, key, 4, &v, err, errlen);
    if (!rc && v.mv_size >= idlen)
        rc = store_fail(s, err, errlen, STORE_ERR, "catalogue index %u: id needs %zu bytes", index,
                        (size_t)v.mv_size + 1);
    if (!rc) {
        memcpy(id, v.mv_data, v.mv_size);
        id[v.mv_size] = 0;
    }
    store_read_end(s, t, txn);
    return rc;
}

int store_catalogue_count(Store *s, StoreTxn *t, size_t *count, char *err, size_t errlen) {
    return store_db_count(s, t, TABLE_CATALOGUE, count, err, errlen);
}

/* ---- users ---- */

int store_put_user_seq(StoreTxn *t, const char *user_id, const uint32_t *items, size_t n,
                       uint64_t events, char *err, size_t errlen) {
    size_t klen;
    int rc = check_key(t->s, "user id", user_id, &klen, err, errlen);
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

int store_get_user_seq(Store *s, StoreTxn *t, const char *user_id, uint32_t *items, size_t cap,
                       size_t *n, uint64_t *events, char *err, size_t errlen) {
    size_t klen;
    int rc = check_key(s, "user id", user_id, &klen, err, errlen);
    if (rc) return rc;
    MDB_txn *txn;
    rc = store_read_begin(s, t, &txn, err, errlen);
    if (rc) return rc;
    MDB_val v;
    rc = store_db_get(s, txn, TABLE_USERS, user_id, klen, &v, err, errlen);
    if (!rc) {
        const unsigned char *p = v.mv_data;
        uint32_t len = v.mv_size >= USER_HEADER ? get_u32(p + 4) : 0;
        if (v.mv_size < USER_HEADER || memcmp(p, USER_MAGIC, 4) || len > STORE_USER_SEQ_MAX ||
            v.mv_size != USER_HEADER + 4 * (size_t)len) {
            rc = store_fail(s, err, errlen, STORE_ERR_CORRUPT,
                            "users['%s']: %zu-byte record is truncated or damaged", user_id,
                            (size_t)v.mv_size);
        } else if (len > cap) {
            rc = store_fail(s, err, errlen, STORE_ERR,
                            "users['%s']: %u items do not fit a buffer of %zu", user_id, len, cap);
        } else {
            if (len) memcpy(items, p + USER_HEADER, 4 * (size_t)len);
            *n = len;
            if (events) *events = get_u64(p + 8);
        }
    }
    store_read_end(s, t, txn);
    return rc;
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

/* ---- checkpoints ---- */

int store_put_checkpoint(StoreTxn *t, const char *name, const void *blob, size_t len, char *err,
                         size_t errlen) {
    size_t klen;
    int rc = check_key(t->s, "checkpoint name", name, &klen, err, errlen);
    if (rc) return rc;
    unsigned char *rec = malloc(CKPT_HEADER + len);
    if (!rec) return store_fail(t->s, err, errlen, STORE_ERR, "out of memory");
    memcpy(rec, CKPT_MAGIC, 4);
    put_u32(rec + 4, CKPT_VERSION);
    put_u64(rec + 8, len);
    put_u64(rec + 16, store_fnv1a64(blob, len));
    if (len) memcpy(rec + CKPT_HEADER, blob, len);
    rc = store_txn_put(t, TABLE_CHECKPOINT, name, klen, rec, CKPT_HEADER + len, err, errlen);
    free(rec);
    return rc;
}

int store_get_checkpoint(Store *s, StoreTxn *t, const char *name, void **blob, size_t *len,
                         char *err, size_t errlen) {
    *blob = NULL;
    *len = 0;
    size_t klen;
    int rc = check_key(s, "checkpoint name", name, &klen, err, errlen);
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
        } else if (store_fnv1a64(p + CKPT_HEADER, n) != get_u64(p + 16)) {
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

int store_get_offsets(Store *s, StoreTxn *t, StoreOffset **offsets, size_t *n, char *err,
                      size_t errlen) {
    *offsets = NULL;
    *n = 0;
    MDB_txn *txn;
    int rc = store_read_begin(s, t, &txn, err, errlen);
    if (rc) return rc;
    MDB_cursor *cur;
    int mrc = mdb_cursor_open(txn, s->dbi[TABLE_OFFSETS], &cur);
    if (mrc) {
        store_read_end(s, t, txn);
        return store_fail(s, err, errlen, STORE_ERR, "cannot read table 'offsets': %s",
                          mdb_strerror(mrc));
    }
    MDB_val k, v;
    size_t cap = 0;
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); !mrc && !rc;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const unsigned char *kp = k.mv_data;
        size_t tlen = k.mv_size >= 5 ? k.mv_size - 5 : 0;
        if (k.mv_size < 6 || tlen > STORE_TOPIC_MAX || kp[tlen] || v.mv_size != 8) {
            rc = store_fail(s, err, errlen, STORE_ERR_CORRUPT,
                            "offsets: damaged record (key %zu bytes, value %zu bytes)",
                            (size_t)k.mv_size, (size_t)v.mv_size);
            break;
        }
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            StoreOffset *grown = realloc(*offsets, cap * sizeof *grown);
            if (!grown) {
                rc = store_fail(s, err, errlen, STORE_ERR, "out of memory");
                break;
            }
            *offsets = grown;
        }
        StoreOffset *o = &(*offsets)[(*n)++];
        memcpy(o->topic, kp, tlen);
        o->topic[tlen] = 0;
        const unsigned char *pp = kp + tlen + 1;
        o->partition =
            (int32_t)((uint32_t)pp[0] << 24 | (uint32_t)pp[1] << 16 | (uint32_t)pp[2] << 8 | pp[3]);
        o->offset = (int64_t)get_u64(v.mv_data);
    }
    if (!rc && mrc != MDB_NOTFOUND)
        rc = store_fail(s, err, errlen, STORE_ERR, "cannot read table 'offsets': %s",
                        mdb_strerror(mrc));
    mdb_cursor_close(cur);
    store_read_end(s, t, txn);
    if (rc) {
        free(*offsets);
        *offsets = NULL;
        *n = 0;
    }
    return rc;
}
