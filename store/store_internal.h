/* store_internal.h - what store_env.c (environment, transactions, map growth) shares with
 * store.c (the tables and their record formats). Not part of the public interface. */
#ifndef SSNA_STORE_STORE_INTERNAL_H
#define SSNA_STORE_STORE_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>
#include <string.h>

#include "store/store.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "store records are little-endian and copied as-is");

enum {
    TABLE_META,
    TABLE_ITEMS,
    TABLE_CATALOGUE,
    TABLE_CATALOGUE_INDEX,
    TABLE_USERS,
    TABLE_CHECKPOINT,
    TABLE_OFFSETS,
    TABLE_COUNT
};

/* Name of each table in the environment, indexed by TABLE_*. */
extern const char *const store_table_names[TABLE_COUNT];

/* One logged write, replayed into a fresh transaction after the map has grown. */
typedef struct {
    int table;
    int is_delete;
    size_t key_len, val_len;
    unsigned char *bytes; /* key then value */
} StoreOp;

struct Store {
    MDB_env *env;
    MDB_dbi dbi[TABLE_COUNT];
    char dir[4096];
    size_t map_size, max_map_size;
    int read_only;
    /* Every transaction holds it shared; resizing the map holds it exclusively, because LMDB
     * allows mdb_env_set_mapsize only while the process has no transaction open. */
    pthread_rwlock_t resize_lock;
    /* Identity as committed (identity_json NULL when none). */
    char *identity_json;
    StoreItemShape shape;
};

struct StoreTxn {
    Store *s;
    MDB_txn *txn; /* NULL after a failed growth */
    StoreOp *ops;
    size_t nops, cap;
    int failed; /* an earlier write failed: the transaction can only be aborted */
    /* Identity set in this transaction, applied to the Store on commit. */
    char *identity_json;
    StoreItemShape shape;
};

/* Fill err with "store DIR: <message>" and return code. */
int store_fail(const Store *s, char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Begin reading: the caller's transaction when t is non-NULL, else a fresh read snapshot. */
int store_read_begin(Store *s, StoreTxn *t, MDB_txn **txn, char *err, size_t errlen);
/* End what store_read_begin began. */
void store_read_end(Store *s, StoreTxn *t, MDB_txn *txn);
/* mdb_get with errors named: STORE_OK, STORE_NOTFOUND or STORE_ERR. */
int store_db_get(Store *s, MDB_txn *txn, int table, const void *key, size_t key_len, MDB_val *val,
                 char *err, size_t errlen);
/* Put / delete inside a write transaction, logged for replay; grows the map when full. */
int store_txn_put(StoreTxn *t, int table, const void *key, size_t key_len, const void *val,
                  size_t val_len, char *err, size_t errlen);
int store_txn_del(StoreTxn *t, int table, const void *key, size_t key_len, char *err,
                  size_t errlen);
/* One entry of a table scan: STORE_OK goes on, anything else (with err filled, store_fail) stops
 * the scan and is its result. txn is the scan's read transaction (for lookups in other tables). */
typedef int (*StoreScanFn)(Store *s, MDB_txn *txn, const MDB_val *key, const MDB_val *val,
                           void *ctx, char *err, size_t errlen);
/* Every entry of a table in key order, in the caller's transaction when t is non-NULL (else a
 * fresh read snapshot); a cursor failure is STORE_ERR naming the table. */
int store_db_scan(Store *s, StoreTxn *t, int table, StoreScanFn visit, void *ctx, char *err,
                  size_t errlen);
/* Entries in a table. */
int store_db_count(Store *s, StoreTxn *t, int table, size_t *count, char *err, size_t errlen);
/* Parse an identity JSON object into its item shape; STORE_ERR naming the bad member. */
int store_parse_shape(const Store *s, const char *json, size_t len, StoreItemShape *shape,
                      char *err, size_t errlen);
/* A non-empty id of at most STORE_KEY_MAX bytes: STORE_OK with *len, else STORE_ERR naming what. */
int store_check_key(const Store *s, const char *what, const char *key, size_t *len, char *err,
                    size_t errlen);

/* Record fields: little-endian integers (the host order, asserted above) at any alignment, and
 * big-endian u32 keys so that LMDB's byte order is numeric order. */
static inline void put_u16(unsigned char *p, uint16_t v) {
    memcpy(p, &v, sizeof v);
}
static inline void put_u32(unsigned char *p, uint32_t v) {
    memcpy(p, &v, sizeof v);
}
static inline void put_u64(unsigned char *p, uint64_t v) {
    memcpy(p, &v, sizeof v);
}
static inline uint16_t get_u16(const unsigned char *p) {
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline uint32_t get_u32(const unsigned char *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline uint64_t get_u64(const unsigned char *p) {
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void put_u32_be(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}
static inline uint32_t get_u32_be(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

#endif
