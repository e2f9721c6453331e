/* store_env.c - the LMDB environment: opening, write transactions with a replay log, growing the
 * map on MDB_MAP_FULL, and the error conventions every table function uses.
 *
 * Why a replay log: LMDB reports MDB_MAP_FULL in the middle of a transaction, after which the
 * transaction is unusable, and the map can only be resized with no transaction open. Keeping a
 * copy of each write lets the store abort, grow, and redo the same transaction, so a caller's
 * multi-put unit (items + sequences + checkpoint + offsets) stays atomic across a resize.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "store/store_internal.h"

#define DEFAULT_MAP_SIZE     ((size_t)64 << 20)
#define DEFAULT_MAX_MAP_SIZE ((size_t)1 << 40)

const char *const store_table_names[TABLE_COUNT] = {
    "meta", "items", "catalogue", "catalogue_index", "users", "checkpoint", "offsets"};

int store_fail(const Store *s, char *err, size_t errlen, int code, const char *fmt, ...) {
    if (!err || !errlen) return code;
    int n = snprintf(err, errlen, "store %s: ", s ? s->dir : "");
    if (n < 0 || (size_t)n >= errlen) return code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return code;
}

/* Keys are ids as given; LMDB caps them at STORE_KEY_MAX bytes. */
int store_check_key(const Store *s, const char *what, const char *key, size_t *len, char *err,
                    size_t errlen) {
    if (!key || !*key) return store_fail(s, err, errlen, STORE_ERR, "%s is empty", what);
    *len = strlen(key);
    if (*len > STORE_KEY_MAX)
        return store_fail(s, err, errlen, STORE_ERR,
                          "%s '%.40s...' is %zu bytes; LMDB keys hold at most %d", what, key, *len,
                          STORE_KEY_MAX);
    return STORE_OK;
}

/* A write that failed for lack of space: the disk (ENOSPC), the file-size limit (EFBIG) or the
 * map cap. Everything else is a plain error. */
static int lmdb_status(int rc) {
    if (rc == MDB_MAP_FULL || rc == ENOSPC || rc == EFBIG || rc == EDQUOT) return STORE_ERR_FULL;
    return STORE_ERR;
}

/* Why a commit's page writes failed. LMDB turns a short write into EIO, which is what a disk
 * that fills up mid-commit gives, so EIO counts as "full" when the disk or the file-size limit
 * has no room left for another page. */
static int diagnose_write_failure(const Store *s, int rc, const char **why) {
    *why = "";
    if (rc == ENOSPC || rc == EDQUOT || rc == EFBIG) {
        *why = " (disk full or file-size limit reached)";
        return STORE_ERR_FULL;
    }
    if (rc != EIO) return lmdb_status(rc);
    char path[sizeof s->dir + 16];
    snprintf(path, sizeof path, "%s/data.mdb", s->dir);
    struct statvfs fs;
    if (!statvfs(s->dir, &fs) && (uint64_t)fs.f_bavail * fs.f_frsize < (1u << 20)) {
        *why = " (disk full)";
        return STORE_ERR_FULL;
    }
    struct stat st;
    struct rlimit lim;
    if (!stat(path, &st) && !getrlimit(RLIMIT_FSIZE, &lim) && lim.rlim_cur != RLIM_INFINITY &&
        (uint64_t)st.st_size + 4096 > (uint64_t)lim.rlim_cur) {
        *why = " (disk full: the file-size limit is reached)";
        return STORE_ERR_FULL;
    }
    return STORE_ERR;
}

static int begin_txn(Store *s, unsigned flags, MDB_txn **txn, char *err, size_t errlen) {
    pthread_rwlock_rdlock(&s->resize_lock);
    int rc = mdb_txn_begin(s->env, NULL, flags, txn);
    if (rc == MDB_MAP_RESIZED) {
        /* another process grew the map: adopt its size, then retry */
        pthread_rwlock_unlock(&s->resize_lock);
        pthread_rwlock_wrlock(&s->resize_lock);
        rc = mdb_env_set_mapsize(s->env, 0);
        MDB_envinfo info;
        if (!rc && !mdb_env_info(s->env, &info)) s->map_size = info.me_mapsize;
        pthread_rwlock_unlock(&s->resize_lock);
        pthread_rwlock_rdlock(&s->resize_lock);
        if (!rc) rc = mdb_txn_begin(s->env, NULL, flags, txn);
    }
    if (rc) {
        pthread_rwlock_unlock(&s->resize_lock);
        return store_fail(s, err, errlen, lmdb_status(rc), "cannot begin a transaction: %s",
                          mdb_strerror(rc));
    }
    return STORE_OK;
}

static int open_tables(Store *s, char *err, size_t errlen) {
    MDB_txn *txn;
    int rc = begin_txn(s, s->read_only ? MDB_RDONLY : 0, &txn, err, errlen);
    if (rc) return rc;
    for (int i = 0; i < TABLE_COUNT; i++) {
        int mrc =
            mdb_dbi_open(txn, store_table_names[i], s->read_only ? 0 : MDB_CREATE, &s->dbi[i]);
        if (mrc) {
            mdb_txn_abort(txn);
            pthread_rwlock_unlock(&s->resize_lock);
            return store_fail(s, err, errlen, lmdb_status(mrc), "cannot open table '%s': %s%s",
                              store_table_names[i], mdb_strerror(mrc),
                              mrc == MDB_NOTFOUND ? " (not an ssna store?)" : "");
        }
    }
    rc = mdb_txn_commit(txn);
    pthread_rwlock_unlock(&s->resize_lock);
    if (rc)
        return store_fail(s, err, errlen, lmdb_status(rc), "cannot create tables: %s",
                          mdb_strerror(rc));
    return STORE_OK;
}

static int load_identity(Store *s, char *err, size_t errlen) {
    MDB_txn *txn;
    int rc = store_read_begin(s, NULL, &txn, err, errlen);
    if (rc) return rc;
    MDB_val v;
    rc = store_db_get(s, txn, TABLE_META, "encoder", 7, &v, err, errlen);
    if (rc == STORE_OK) {
        s->identity_json = malloc(v.mv_size + 1);
        if (!s->identity_json) {
            rc = store_fail(s, err, errlen, STORE_ERR, "out of memory");
        } else {
            memcpy(s->identity_json, v.mv_data, v.mv_size);
            s->identity_json[v.mv_size] = 0;
            rc = store_parse_shape(s, s->identity_json, v.mv_size, &s->shape, err, errlen);
            if (rc) rc = STORE_ERR_CORRUPT;
        }
    } else if (rc == STORE_NOTFOUND) {
        rc = STORE_OK;
    }
    store_read_end(s, NULL, txn);
    return rc;
}

int store_open(Store **out, const char *dir, const StoreOptions *opts, char *err, size_t errlen) {
    *out = NULL;
    StoreOptions o = opts ? *opts : (StoreOptions){0};
    Store *s = calloc(1, sizeof *s);
    if (!s) return store_fail(NULL, err, errlen, STORE_ERR, "%s: out of memory", dir);
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    if (strlen(dir) >= sizeof s->dir) {
        free(s);
        return store_fail(NULL, err, errlen, STORE_ERR, "directory name too long");
    }
    s->read_only = o.read_only;
    s->map_size = o.map_size ? o.map_size : DEFAULT_MAP_SIZE;
    s->max_map_size = o.max_map_size ? o.max_map_size : DEFAULT_MAX_MAP_SIZE;
    if (s->max_map_size < s->map_size) s->max_map_size = s->map_size;
    pthread_rwlock_init(&s->resize_lock, NULL);
    if (!s->read_only && mkdir(dir, 0755) && errno != EEXIST) {
        int rc = store_fail(s, err, errlen, STORE_ERR, "cannot create the directory: %s",
                            strerror(errno));
        store_close(s);
        return rc;
    }
    int rc = mdb_env_create(&s->env);
    if (!rc) rc = mdb_env_set_maxdbs(s->env, TABLE_COUNT + 2);
    if (!rc) rc = mdb_env_set_mapsize(s->env, s->map_size);
    if (rc) {
        rc = store_fail(s, err, errlen, STORE_ERR, "cannot set up LMDB: %s", mdb_strerror(rc));
        store_close(s);
        return rc;
    }
    unsigned flags = MDB_NOSYNC | MDB_NOTLS | (s->read_only ? MDB_RDONLY : 0);
    rc = mdb_env_open(s->env, dir, flags, 0644);
    if (rc) {
        rc = store_fail(s, err, errlen, lmdb_status(rc), "cannot open the LMDB environment: %s",
                        mdb_strerror(rc));
        store_close(s);
        return rc;
    }
    MDB_envinfo info;
    if (!mdb_env_info(s->env, &info)) s->map_size = info.me_mapsize;
    if (s->max_map_size < s->map_size) s->max_map_size = s->map_size;
    rc = open_tables(s, err, errlen);
    if (!rc) rc = load_identity(s, err, errlen);
    if (rc) {
        store_close(s);
        return rc;
    }
    *out = s;
    return STORE_OK;
}

void store_close(Store *s) {
    if (!s) return;
    if (s->env) {
        if (!s->read_only) mdb_env_sync(s->env, 1);
        mdb_env_close(s->env);
    }
    pthread_rwlock_destroy(&s->resize_lock);
    free(s->identity_json);
    free(s);
}

int store_sync(Store *s, char *err, size_t errlen) {
    int rc = mdb_env_sync(s->env, 1);
    if (rc) return store_fail(s, err, errlen, lmdb_status(rc), "sync failed: %s", mdb_strerror(rc));
    return STORE_OK;
}

size_t store_map_size(Store *s) {
    pthread_rwlock_rdlock(&s->resize_lock);
    size_t n = s->map_size;
    pthread_rwlock_unlock(&s->resize_lock);
    return n;
}

int store_read_begin(Store *s, StoreTxn *t, MDB_txn **txn, char *err, size_t errlen) {
    if (t) {
        if (t->s != s)
            return store_fail(s, err, errlen, STORE_ERR, "transaction belongs to another store");
        if (t->failed || !t->txn)
            return store_fail(s, err, errlen, STORE_ERR,
                              "transaction failed earlier; it can only be aborted");
        *txn = t->txn;
        return STORE_OK;
    }
    return begin_txn(s, MDB_RDONLY, txn, err, errlen);
}

void store_read_end(Store *s, StoreTxn *t, MDB_txn *txn) {
    if (t) return;
    mdb_txn_abort(txn);
    pthread_rwlock_unlock(&s->resize_lock);
}

int store_db_get(Store *s, MDB_txn *txn, int table, const void *key, size_t key_len, MDB_val *val,
                 char *err, size_t errlen) {
    MDB_val k = {key_len, (void *)key};
    int rc = mdb_get(txn, s->dbi[table], &k, val);
    if (rc == MDB_NOTFOUND) return STORE_NOTFOUND;
    if (rc)
        return store_fail(s, err, errlen, STORE_ERR, "read from table '%s' failed: %s",
                          store_table_names[table], mdb_strerror(rc));
    return STORE_OK;
}

int store_db_scan(Store *s, StoreTxn *t, int table, StoreScanFn visit, void *ctx, char *err,
                  size_t errlen) {
    MDB_txn *txn;
    int rc = store_read_begin(s, t, &txn, err, errlen);
    if (rc) return rc;
    MDB_cursor *cur;
    int mrc = mdb_cursor_open(txn, s->dbi[table], &cur);
    if (!mrc) {
        MDB_val k, v;
        for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); !mrc && !rc;
             mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
            rc = visit(s, txn, &k, &v, ctx, err, errlen);
        mdb_cursor_close(cur);
    }
    store_read_end(s, t, txn);
    if (!rc && mrc && mrc != MDB_NOTFOUND)
        rc = store_fail(s, err, errlen, STORE_ERR, "cannot read table '%s': %s",
                        store_table_names[table], mdb_strerror(mrc));
    return rc;
}

int store_db_count(Store *s, StoreTxn *t, int table, size_t *count, char *err, size_t errlen) {
    MDB_txn *txn;
    int rc = store_read_begin(s, t, &txn, err, errlen);
    if (rc) return rc;
    MDB_stat st;
    int mrc = mdb_stat(txn, s->dbi[table], &st);
    store_read_end(s, t, txn);
    if (mrc)
        return store_fail(s, err, errlen, STORE_ERR, "cannot count table '%s': %s",
                          store_table_names[table], mdb_strerror(mrc));
    *count = st.ms_entries;
    return STORE_OK;
}

int store_txn_begin(Store *s, StoreTxn **out, char *err, size_t errlen) {
    *out = NULL;
    if (s->read_only) return store_fail(s, err, errlen, STORE_ERR, "opened read-only");
    StoreTxn *t = calloc(1, sizeof *t);
    if (!t) return store_fail(s, err, errlen, STORE_ERR, "out of memory");
    t->s = s;
    int rc = begin_txn(s, 0, &t->txn, err, errlen);
    if (rc) {
        free(t);
        return rc;
    }
    *out = t;
    return STORE_OK;
}

static void txn_free(StoreTxn *t) {
    for (size_t i = 0; i < t->nops; i++) free(t->ops[i].bytes);
    free(t->ops);
    free(t->identity_json);
    free(t);
}

void store_txn_abort(StoreTxn *t) {
    if (!t) return;
    if (t->txn) {
        mdb_txn_abort(t->txn);
        pthread_rwlock_unlock(&t->s->resize_lock);
    }
    txn_free(t);
}

static int apply_op(StoreTxn *t, const StoreOp *op) {
    MDB_val k = {op->key_len, op->bytes};
    if (op->is_delete) {
        int rc = mdb_del(t->txn, t->s->dbi[op->table], &k, NULL);
        return rc == MDB_NOTFOUND ? 0 : rc;
    }
    MDB_val v = {op->val_len, op->bytes + op->key_len};
    return mdb_put(t->txn, t->s->dbi[op->table], &k, &v, 0);
}

/* The map is full: abort, grow the map (doubling, capped), begin again and replay every logged
 * write. On return the transaction is either whole again or marked failed (t->txn NULL). */
static int txn_grow_and_replay(StoreTxn *t, char *err, size_t errlen) {
    Store *s = t->s;
    for (;;) {
        if (t->txn) mdb_txn_abort(t->txn);
        t->txn = NULL;
        pthread_rwlock_unlock(&s->resize_lock);
        pthread_rwlock_wrlock(&s->resize_lock);
        size_t old = s->map_size;
        size_t want = old > s->max_map_size / 2 ? s->max_map_size : old * 2;
        int rc = want > old ? mdb_env_set_mapsize(s->env, want) : MDB_MAP_FULL;
        if (!rc) s->map_size = want;
        pthread_rwlock_unlock(&s->resize_lock);
        if (rc) {
            t->failed = 1;
            if (rc == MDB_MAP_FULL)
                return store_fail(s, err, errlen, STORE_ERR_FULL,
                                  "map full at %zu bytes (the maximum map size); the transaction "
                                  "was rolled back, committed data is intact",
                                  old);
            return store_fail(s, err, errlen, STORE_ERR, "cannot grow the map to %zu bytes: %s",
                              want, mdb_strerror(rc));
        }
        pthread_rwlock_rdlock(&s->resize_lock);
        rc = mdb_txn_begin(s->env, NULL, 0, &t->txn);
        if (rc) {
            t->txn = NULL;
            t->failed = 1;
            pthread_rwlock_unlock(&s->resize_lock);
            return store_fail(s, err, errlen, lmdb_status(rc),
                              "cannot begin a transaction after growing the map: %s",
                              mdb_strerror(rc));
        }
        for (size_t i = 0; i < t->nops && !rc; i++) rc = apply_op(t, &t->ops[i]);
        if (!rc) return STORE_OK;
        if (rc != MDB_MAP_FULL) {
            mdb_txn_abort(t->txn);
            t->txn = NULL;
            t->failed = 1;
            pthread_rwlock_unlock(&s->resize_lock);
            return store_fail(s, err, errlen, STORE_ERR, "replay after growing the map failed: %s",
                              mdb_strerror(rc));
        }
    }
}

static int log_op(StoreTxn *t, int table, int is_delete, const void *key, size_t key_len,
                  const void *val, size_t val_len) {
    if (t->nops == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        StoreOp *ops = realloc(t->ops, cap * sizeof *ops);
        if (!ops) return -1;
        t->ops = ops;
        t->cap = cap;
    }
    StoreOp *op = &t->ops[t->nops];
    op->bytes = malloc(key_len + val_len + 1);
    if (!op->bytes) return -1;
    memcpy(op->bytes, key, key_len);
    if (val_len) memcpy(op->bytes + key_len, val, val_len);
    op->table = table;
    op->is_delete = is_delete;
    op->key_len = key_len;
    op->val_len = val_len;
    t->nops++;
    return 0;
}

static int txn_write(StoreTxn *t, int table, int is_delete, const void *key, size_t key_len,
                     const void *val, size_t val_len, char *err, size_t errlen) {
    Store *s = t->s;
    if (t->failed || !t->txn)
        return store_fail(s, err, errlen, STORE_ERR,
                          "transaction failed earlier; it can only be aborted");
    if (log_op(t, table, is_delete, key, key_len, val, val_len)) {
        t->failed = 1;
        return store_fail(s, err, errlen, STORE_ERR, "out of memory logging a write");
    }
    int rc = apply_op(t, &t->ops[t->nops - 1]);
    if (rc == MDB_MAP_FULL) return txn_grow_and_replay(t, err, errlen);
    if (rc) {
        t->failed = 1;
        return store_fail(s, err, errlen, lmdb_status(rc), "write to table '%s' failed: %s",
                          store_table_names[table], mdb_strerror(rc));
    }
    return STORE_OK;
}

int store_txn_put(StoreTxn *t, int table, const void *key, size_t key_len, const void *val,
                  size_t val_len, char *err, size_t errlen) {
    return txn_write(t, table, 0, key, key_len, val, val_len, err, errlen);
}

int store_txn_del(StoreTxn *t, int table, const void *key, size_t key_len, char *err,
                  size_t errlen) {
    return txn_write(t, table, 1, key, key_len, NULL, 0, err, errlen);
}

int store_txn_commit(StoreTxn *t, int flags, char *err, size_t errlen) {
    Store *s = t->s;
    if (t->failed || !t->txn) {
        store_txn_abort(t);
        return store_fail(s, err, errlen, STORE_ERR,
                          "commit of a failed transaction refused; nothing was stored");
    }
    int rc;
    for (;;) {
        rc = mdb_txn_commit(t->txn); /* frees the LMDB transaction, success or not */
        t->txn = NULL;
        if (rc != MDB_MAP_FULL) break;
        /* the free-page bookkeeping at commit can itself need pages; the shared lock taken at
         * begin is still held, as txn_grow_and_replay expects */
        int grc = txn_grow_and_replay(t, err, errlen);
        if (grc) {
            txn_free(t);
            return grc;
        }
    }
    pthread_rwlock_unlock(&s->resize_lock);
    if (rc) {
        txn_free(t);
        const char *why;
        int code = diagnose_write_failure(s, rc, &why);
        return store_fail(s, err, errlen, code,
                          "commit failed: %s%s; the transaction was rolled back, committed data "
                          "is intact",
                          mdb_strerror(rc), why);
    }
    if (t->identity_json) {
        free(s->identity_json);
        s->identity_json = t->identity_json;
        s->shape = t->shape;
        t->identity_json = NULL;
    }
    txn_free(t);
    if (flags & STORE_COMMIT_SYNC) return store_sync(s, err, errlen);
    return STORE_OK;
}
