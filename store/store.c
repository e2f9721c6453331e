/* store.c - the tables of the store and their record formats (docs/store.md). Every record
 * carries its own length fields and, where a silent bit flip would poison the model (item states,
 * checkpoints), a checksum, so a damaged record is an error rather than wrong numbers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/half.h"
#include "model/json.h"
#include "store/store_internal.h"
#include "model/hash.h"

#define ITEM_MAGIC   "SSIT"
#define ITEM_VERSION 1
#define ITEM_HEADER  32
#define USER_MAGIC   "SSUS"
#define USER_HEADER  16
#define CKPT_MAGIC   "SSCK"
#define CKPT_VERSION 1
#define CKPT_HEADER  24

uint64_t store_text_hash(const char *text, size_t len) {
    return hash_fnv1a(text, len);
}

/* ---- identity ---- */

static int json_equal(const JsonValue *a, const JsonValue *b) {
    if (a->type != b->type) return 0;
    switch (a->type) {
    case JSON_VALUE_NULL:
        return 1;
    case JSON_VALUE_BOOL:
        return a->boolean == b->boolean;
    case JSON_VALUE_NUMBER:
        return a->number == b->number;
    case JSON_VALUE_STRING:
        return a->len == b->len && !memcmp(a->str, b->str, a->len);
    case JSON_VALUE_ARRAY:
        if (a->len != b->len) return 0;
        for (size_t i = 0; i < a->len; i++)
            if (!json_equal(&a->items[i], &b->items[i])) return 0;
        return 1;
    case JSON_VALUE_OBJECT:
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
    if (v.type != JSON_VALUE_OBJECT) {
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
    for (size_t i = 0; !same && a.type == JSON_VALUE_OBJECT && i < a.len; i++) {
        const JsonValue *bv = json_get(&b, a.keys[i]);
        if (bv && json_equal(&a.items[i], bv)) continue;
        int n = snprintf(diff + at, sizeof diff - at, "%s%s", at ? ", " : "", a.keys[i]);
        if (n < 0 || (size_t)n >= sizeof diff - at) break;
        at += (size_t)n;
    }
    for (size_t i = 0; !same && b.type == JSON_VALUE_OBJECT && i < b.len; i++) {
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
    size_t klen = 0;
    int rc = store_check_key(s, "item id", item_id, &klen, err, errlen);
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
    put_u64(rec + 24, hash_fnv1a(payload, n * width));
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

/* Read and check one item record inside txn; states (may be NULL) gets its floats. */
static int read_item(Store *s, MDB_txn *txn, const char *item_id, size_t klen, StoreItemInfo *info,
                     float *states, size_t states_cap, char *err, size_t errlen) {
    MDB_val v;
    int rc = store_db_get(s, txn, TABLE_ITEMS, item_id, klen, &v, err, errlen);
    if (!rc) rc = decode_item_header(s, item_id, &v, info, err, errlen);
    if (rc || !states) return rc;
    const unsigned char *payload = (const unsigned char *)v.mv_data + ITEM_HEADER;
    size_t n = (size_t)info->layers * (size_t)info->hidden;
    size_t width = info->dtype == STORE_F16 ? 2 : 4;
    if (hash_fnv1a(payload, n * width) != get_u64((const unsigned char *)v.mv_data + 24))
        return store_fail(s, err, errlen, STORE_ERR_CORRUPT,
                          "items['%s']: state checksum mismatch (damaged record)", item_id);
    if (states_cap < n)
        return store_fail(s, err, errlen, STORE_ERR,
                          "items['%s']: needs room for %zu floats, buffer holds %zu", item_id, n,
                          states_cap);
    if (info->dtype == STORE_F32) {
        memcpy(states, payload, n * 4);
        return STORE_OK;
    }
    /* an LMDB value may start at an odd address (after an odd-length key): copy to align */
    uint16_t stack[4096];
    uint16_t *h = n <= 4096 ? stack : malloc(n * sizeof *h);
    if (!h) return store_fail(s, err, errlen, STORE_ERR, "out of memory");
    memcpy(h, payload, n * 2);
    half_to_float_array(h, states, n);
    if (h != stack) free(h);
    return STORE_OK;
}

int store_get_item(Store *s, StoreTxn *t, const char *item_id, StoreItemInfo *info, float *states,
                   size_t states_cap, char *err, size_t errlen) {
    size_t klen = 0;
    int rc = store_check_key(s, "item id", item_id, &klen, err, errlen);
    if (rc) return rc;
    MDB_txn *txn;
    rc = store_read_begin(s, t, &txn, err, errlen);
    if (rc) return rc;
    StoreItemInfo got;
    rc = read_item(s, txn, item_id, klen, &got, states, states_cap, err, errlen);
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

typedef struct {
    float *out;
    unsigned char *present;
    size_t n_items, seen;
    int layers, hidden;
} StateScan;

/* key: a catalogue index (u32 big-endian); value: the item id, whose states go to that row. */
static int scan_item_state(Store *s, MDB_txn *txn, const MDB_val *k, const MDB_val *v, void *ctx,
                           char *err, size_t errlen) {
    StateScan *c = ctx;
    uint32_t index = k->mv_size == 4 ? get_u32_be(k->mv_data) : UINT32_MAX;
    if (index >= c->n_items || v->mv_size == 0 || v->mv_size > STORE_KEY_MAX)
        return store_fail(s, err, errlen, index == UINT32_MAX ? STORE_ERR_CORRUPT : STORE_ERR,
                          "catalogue_index: entry %u does not fit %zu items (or is damaged)", index,
                          c->n_items);
    char id[STORE_KEY_MAX + 1];
    memcpy(id, v->mv_data, v->mv_size);
    id[v->mv_size] = 0;
    size_t per_item = (size_t)c->layers * (size_t)c->hidden;
    float *row = c->out + (size_t)index * per_item; /* [layers, hidden] */
    StoreItemInfo info;
    c->seen++;
    int rc = read_item(s, txn, id, v->mv_size, &info, NULL, 0, err, errlen);
    if (rc == STORE_NOTFOUND) return STORE_OK; /* in the catalogue, not encoded yet */
    if (!rc && (info.layers != c->layers || info.hidden != c->hidden))
        return store_fail(s, err, errlen, STORE_ERR_IDENTITY,
                          "items['%s'] has %d layers x %d, caller expects %d x %d", id, info.layers,
                          info.hidden, c->layers, c->hidden);
    if (!rc) rc = read_item(s, txn, id, v->mv_size, &info, row, per_item, err, errlen);
    c->present[index] = !rc;
    return rc;
}

int store_load_item_states(Store *s, StoreTxn *t, float *out, unsigned char *present,
                           size_t n_items, int layers, int hidden, char *err, size_t errlen) {
    memset(present, 0, n_items);
    memset(out, 0, n_items * (size_t)layers * (size_t)hidden * sizeof *out);
    StateScan c = {out, present, n_items, 0, layers, hidden};
    int rc = store_db_scan(s, t, TABLE_CATALOGUE_INDEX, scan_item_state, &c, err, errlen);
    if (!rc && c.seen != n_items)
        rc = store_fail(s, err, errlen, STORE_ERR, "catalogue has %zu items, caller expects %zu",
                        c.seen, n_items);
    return rc;
}

/* ---- catalogue ---- */

int store_catalogue_put(StoreTxn *t, const char *item_id, const char *text, size_t text_len,
                        uint32_t *index, char *err, size_t errlen) {
    Store *s = t->s;
    size_t klen = 0;
    int rc = store_check_key(s, "item id", item_id, &klen, err, errlen);
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
    size_t klen = 0;
    int rc = store_check_key(s, "item id", item_id, &klen, err, errlen);
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
