/* store.h - the LMDB environment of ssna and its tables.
 *
 * One environment (a directory holding data.mdb + lock.mdb) with named tables:
 *   meta        "encoder" -> the encoder identity (a JSON object, see store_set_identity)
 *   items       item id -> text hash + the kept per-layer states (F16 by default)
 *   catalogue   item id -> dense index + item text;  catalogue_index: dense index -> item id
 *   users       user id -> last STORE_USER_SEQ_MAX dense item indexes + an event counter
 *   checkpoint  name -> one opaque blob (model parameters + Adam state + config)
 *   offsets     (topic, partition) -> next offset to consume
 * Record formats and rules are in docs/store.md.
 *
 * Writes go through a StoreTxn: every put inside one transaction commits atomically, so a
 * checkpoint, the item cache, the sequences and the consumer offsets can be made durable as one
 * unit. The environment runs with MDB_NOSYNC (a killed process loses nothing that was committed;
 * an OS crash may lose the last unsynced commits but never corrupts the file);
 * STORE_COMMIT_SYNC or store_sync() flush to disk at checkpoints. When the memory map fills up
 * the store grows it (doubling, up to StoreOptions.max_map_size) and replays the transaction,
 * so callers never see MDB_MAP_FULL unless the cap is reached.
 *
 * Reads take an optional transaction: NULL reads the latest committed state, a write transaction
 * reads its own uncommitted writes. One process writes at a time (LMDB serialises writers);
 * readers in other threads are fine.
 *
 * Every function returns STORE_OK (0), STORE_NOTFOUND (>0, lookups only) or a negative
 * StoreStatus, and fills err (when non-NULL) with a message naming the store directory, the
 * table and the key.
 */
#ifndef SSNA_STORE_STORE_H
#define SSNA_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

enum {
    STORE_OK = 0,
    STORE_NOTFOUND = 1,      /* lookup: no such key */
    STORE_ERR = -1,          /* I/O, LMDB or usage error */
    STORE_ERR_FULL = -2,     /* map at max_map_size, or disk full; committed data intact */
    STORE_ERR_IDENTITY = -3, /* items from another encoder */
    STORE_ERR_CORRUPT = -4,  /* a stored record fails its format or checksum checks */
};

/* Storage dtype of item states. */
typedef enum { STORE_F16 = 1, STORE_F32 = 2 } StoreDtype;

#define STORE_USER_SEQ_MAX 50  /* items kept per user sequence (SASRec's max length) */
#define STORE_KEY_MAX      511 /* LMDB's default maximum key size in bytes */
#define STORE_TOPIC_MAX    249 /* Kafka's maximum topic name length */
#define STORE_COMMIT_SYNC  1   /* store_txn_commit flag: flush to disk before returning */

typedef struct Store Store;
typedef struct StoreTxn StoreTxn;

typedef struct {
    size_t map_size;     /* initial map size in bytes; 0 = 64 MiB */
    size_t max_map_size; /* growth stops here; 0 = 1 TiB */
    int read_only;       /* open without write access (no table creation) */
} StoreOptions;

/* What the encoder identity says about item records (parsed from its JSON). */
typedef struct {
    int layers;       /* kept layers per item ("layers_kept") */
    int hidden;       /* state width ("hidden_size") */
    StoreDtype dtype; /* storage dtype ("dtype": "f16" or "f32") */
} StoreItemShape;

/* Fields of one item record (store_get_item). */
typedef struct {
    uint64_t text_hash;
    int layers, hidden;
    StoreDtype dtype;
} StoreItemInfo;

/* One consumer position. */
typedef struct {
    char topic[STORE_TOPIC_MAX + 1];
    int32_t partition;
    int64_t offset; /* next offset to consume */
} StoreOffset;

/* ---- environment ---- */

/* Open (creating when missing, unless read_only) the environment in directory dir. opts may be
 * NULL for defaults. On success *out is the store. */
int store_open(Store **out, const char *dir, const StoreOptions *opts, char *err, size_t errlen);
/* Close the store; every transaction must have ended. NULL is a no-op. */
void store_close(Store *s);
/* Flush committed transactions to disk (fsync). */
int store_sync(Store *s, char *err, size_t errlen);
/* Current size of the memory map in bytes (it grows on demand). */
size_t store_map_size(Store *s);

/* ---- write transactions ---- */

/* Begin a write transaction (blocks while another writer is active). */
int store_txn_begin(Store *s, StoreTxn **out, char *err, size_t errlen);
/* Commit and free the transaction; flags: 0 or STORE_COMMIT_SYNC. On failure nothing of the
 * transaction is stored and it is freed all the same. */
int store_txn_commit(StoreTxn *t, int flags, char *err, size_t errlen);
/* Discard the transaction's writes and free it. NULL is a no-op. */
void store_txn_abort(StoreTxn *t);

/* ---- encoder identity (table meta) ---- */

/* Record the encoder identity: a JSON object with at least "layers_kept", "hidden_size" and
 * "dtype" ("f16"|"f32"), plus whatever names the encoder (config, weights sha256, pooling).
 * If the store already has an identity, it must be equal as JSON (member order ignored), else
 * STORE_ERR_IDENTITY with both identities in err. */
int store_set_identity(StoreTxn *t, const char *identity_json, char *err, size_t errlen);
/* Compare identity_json with the stored one: STORE_OK when equal, STORE_NOTFOUND when none is
 * stored yet, STORE_ERR_IDENTITY (both named in err) when they differ. */
int store_check_identity(Store *s, const char *identity_json, char *err, size_t errlen);
/* Copy the stored identity JSON into buf (NUL-terminated); STORE_NOTFOUND when none. */
int store_get_identity(Store *s, char *buf, size_t buflen, char *err, size_t errlen);
/* Item shape of the stored identity; STORE_NOTFOUND when none is stored. */
int store_item_shape(Store *s, StoreItemShape *shape, char *err, size_t errlen);

/* ---- items: item id -> text hash + kept layer states ---- */

/* 64-bit FNV-1a of the exact text bytes: the "has this text changed" key. */
uint64_t store_text_hash(const char *text, size_t len);
/* Store an item's states (converted to the identity's dtype); needs an identity set in this
 * transaction or earlier, whose layers/hidden the arguments must match.
 * states: [layers, hidden], row 0 = top layer. */
int store_put_item(StoreTxn *t, const char *item_id, uint64_t text_hash, const float *states,
                   int layers, int hidden, char *err, size_t errlen);
/* Read an item. info may be NULL; states (may be NULL) receives [layers, hidden] floats and must
 * hold states_cap >= layers * hidden of them. STORE_NOTFOUND when absent, STORE_ERR_CORRUPT for
 * a truncated or damaged record. */
int store_get_item(Store *s, StoreTxn *t, const char *item_id, StoreItemInfo *info, float *states,
                   size_t states_cap, char *err, size_t errlen);
/* 1 when the item is stored with this text hash (no need to re-encode), 0 when absent or
 * changed, negative on error. */
int store_item_text_unchanged(Store *s, StoreTxn *t, const char *item_id, uint64_t text_hash,
                              char *err, size_t errlen);
/* Number of items with stored states into *count. */
int store_item_count(Store *s, StoreTxn *t, size_t *count, char *err, size_t errlen);

/* Every catalogue item's states in dense-index order, for ranking all items:
 * out: [n_items, layers, hidden] with n_items = store_catalogue_count; present: [n_items] gets
 * 1 where the item has states and 0 (its rows zeroed) where it has none yet. The shape must
 * match the stored identity's. */
int store_load_item_states(Store *s, StoreTxn *t, float *out, unsigned char *present,
                           size_t n_items, int layers, int hidden, char *err, size_t errlen);

/* ---- catalogue: item id <-> dense index, with the text ---- */

/* Add an item to the catalogue or update its text; a new id gets the next dense index
 * (0, 1, 2, ...), a known id keeps its own. *index (may be NULL) receives it. */
int store_catalogue_put(StoreTxn *t, const char *item_id, const char *text, size_t text_len,
                        uint32_t *index, char *err, size_t errlen);
/* Look up an item id: dense index and (when text is non-NULL) a malloc'd NUL-terminated copy of
 * its text the caller frees, with its length in *text_len (may be NULL). */
int store_catalogue_get(Store *s, StoreTxn *t, const char *item_id, uint32_t *index, char **text,
                        size_t *text_len, char *err, size_t errlen);
/* Item id of a dense index, NUL-terminated into id (idlen >= STORE_KEY_MAX + 1 always fits). */
int store_catalogue_id(Store *s, StoreTxn *t, uint32_t index, char *id, size_t idlen, char *err,
                       size_t errlen);
/* Number of catalogue entries (= the next dense index). */
int store_catalogue_count(Store *s, StoreTxn *t, size_t *count, char *err, size_t errlen);

/* ---- users: user id -> last STORE_USER_SEQ_MAX item indexes + event count ---- */

/* Replace a user's sequence (oldest first; only the last STORE_USER_SEQ_MAX are kept) and event
 * counter. items: [n] */
int store_put_user_seq(StoreTxn *t, const char *user_id, const uint32_t *items, size_t n,
                       uint64_t events, char *err, size_t errlen);
/* Read a user's sequence into items (capacity cap >= STORE_USER_SEQ_MAX always fits), its
 * length into *n and the event counter into *events (may be NULL). */
int store_get_user_seq(Store *s, StoreTxn *t, const char *user_id, uint32_t *items, size_t cap,
                       size_t *n, uint64_t *events, char *err, size_t errlen);
/* Append one event: item goes to the end of the user's sequence (creating the user), the
 * oldest item drops out past STORE_USER_SEQ_MAX, the counter grows by one. */
int store_append_user_event(StoreTxn *t, const char *user_id, uint32_t item, char *err,
                            size_t errlen);
/* Called once per user by store_foreach_user; a non-zero return stops the walk and is returned.
 * The arguments are valid during the call only. items: [n] */
typedef int (*StoreUserVisitor)(const char *user_id, const uint32_t *items, size_t n,
                                uint64_t events, void *ctx);
/* Visit every user in user-id byte order (e.g. to dump or compare state). STORE_OK, the
 * visitor's non-zero return, or an error (STORE_ERR_CORRUPT naming a damaged record). */
int store_foreach_user(Store *s, StoreTxn *t, StoreUserVisitor visit, void *ctx, char *err,
                       size_t errlen);
/* Number of users into *count. */
int store_user_count(Store *s, StoreTxn *t, size_t *count, char *err, size_t errlen);

/* ---- named counters (table meta), e.g. events processed; commit them with what they count ---- */

/* Set counter name to value. */
int store_put_counter(StoreTxn *t, const char *name, uint64_t value, char *err, size_t errlen);
/* Read counter name; STORE_NOTFOUND (and *value = 0) when never set. */
int store_get_counter(Store *s, StoreTxn *t, const char *name, uint64_t *value, char *err,
                      size_t errlen);

/* ---- checkpoints and consumer offsets ---- */

/* Store a named checkpoint blob (e.g. "main", or one per A/B variant); a length and checksum
 * header guards it. Commit it in the same transaction as the offsets it corresponds to. */
int store_put_checkpoint(StoreTxn *t, const char *name, const void *blob, size_t len, char *err,
                         size_t errlen);
/* Read a checkpoint into a malloc'd *blob (caller frees) of *len bytes; STORE_NOTFOUND when
 * absent, STORE_ERR_CORRUPT when its checksum fails. */
int store_get_checkpoint(Store *s, StoreTxn *t, const char *name, void **blob, size_t *len,
                         char *err, size_t errlen);
/* Record the next offset to consume for (topic, partition). */
int store_put_offset(StoreTxn *t, const char *topic, int32_t partition, int64_t offset, char *err,
                     size_t errlen);
/* Every stored offset, sorted by topic then partition, into a malloc'd *offsets (caller frees;
 * NULL when *n is 0). */
int store_get_offsets(Store *s, StoreTxn *t, StoreOffset **offsets, size_t *n, char *err,
                      size_t errlen);

#endif
