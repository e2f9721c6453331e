/* ssnad_checkpoint.c - what a checkpoint commits and a start restores: the finished item
 * embeddings, model snapshot references, the events counter, the duplicate window, the pop
 * window, the users whose lists were pending and the offsets of assigned partitions, in the
 * main thread's long-lived transaction, committed with one sync; and the dump of a committed
 * store that tests compare. The other modules hand it their parts (ssnad_embed_collect,
 * ssnad_snapshot_put_refs, ssnad_dedup_blob, popwindow_save); nothing calls back into it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "daemon/ssnad.h"
#include "model/errmsg.h"

#define COUNTER_EVENTS "events_applied"
#define DEDUP_BLOB     "dedup"
#define POP_BLOB       "pop_window"
#define PENDING_BLOB   "pending_lists"
#define FLUSH_MS       10000 // a checkpoint waits this long for the outputs to be delivered

/* debug.verify: every user held in memory has the sequence the store has (in the open
 * transaction). 0, or -1 with err naming the first user that differs. */
static int verify_users(Ssnad *d, char *err, size_t errlen) {
    for (size_t i = 0; i < d->users.cap; i++) {
        SsnadUser *u = d->users.slots[i];
        if (!u || !u->loaded) continue;
        uint32_t seq[SSNAD_SEQ_MAX];
        size_t n = 0;
        int rc =
            store_get_user_seq(d->store, d->txn, u->id, seq, SSNAD_SEQ_MAX, &n, NULL, err, errlen);
        if (rc < 0) return -1;
        if (rc == STORE_NOTFOUND || n != (size_t)u->seq_len || memcmp(seq, u->seq, n * sizeof *seq))
            return errmsg_fail(
                err, errlen, "debug.verify: user %s holds %d items in memory, the store %zu%s",
                u->id, u->seq_len, n, n == (size_t)u->seq_len ? " (different items)" : "");
    }
    return 0;
}

/* POP_BLOB: the pop window (daemon/popwindow.h), saved whether or not an arm serves it. */
static int put_pop(Ssnad *d, char *err, size_t errlen) {
    size_t len;
    pthread_mutex_lock(&d->serve_mu); // /recommend reads the window
    void *blob = popwindow_save(d->pop, &len);
    pthread_mutex_unlock(&d->serve_mu);
    if (!blob) return errmsg_fail(err, errlen, "checkpoint: out of memory (pop window)");
    int rc = store_put_checkpoint(d->txn, POP_BLOB, blob, len, err, errlen);
    free(blob);
    return rc;
}

/* PENDING_BLOB: the users whose lists are not out yet (dirty, or deferred for queued texts),
 * each as a u32 length and its id bytes. Their events are committed with this checkpoint, so
 * after a crash nothing would publish their lists: the next start marks them dirty again. */
static int put_pending(Ssnad *d, char *err, size_t errlen) {
    size_t len = 0, cap = 4096;
    unsigned char *blob = malloc(cap);
    for (size_t i = 0; blob && i < d->users.cap; i++) {
        SsnadUser *u = d->users.slots[i];
        if (!u || !u->dirty) continue;
        uint32_t n = (uint32_t)strlen(u->id);
        if (len + 4 + n > cap) {
            while (len + 4 + n > cap) cap *= 2;
            unsigned char *bigger = realloc(blob, cap);
            if (!bigger) free(blob);
            blob = bigger;
            if (!blob) break;
        }
        memcpy(blob + len, &n, 4), memcpy(blob + len + 4, u->id, n);
        len += 4 + n;
    }
    int rc = blob ? store_put_checkpoint(d->txn, PENDING_BLOB, blob, len, err, errlen)
                  : errmsg_fail(err, errlen, "checkpoint: out of memory for pending lists");
    free(blob);
    return rc;
}

int ssnad_pending_parse(const void *blob, size_t len, int (*fn)(void *ctx, const char *id),
                        void *ctx, char *err, size_t errlen) {
    const unsigned char *p = blob;
    char id[STORE_KEY_MAX + 1];
    for (size_t at = 0; at < len;) {
        uint32_t n;
        if (len - at < 4) return errmsg_fail(err, errlen, "cut at byte %zu", at);
        memcpy(&n, p + at, 4);
        if (n == 0 || n > STORE_KEY_MAX || len - at - 4 < n || memchr(p + at + 4, 0, n))
            return errmsg_fail(err, errlen, "bad user id length %u at byte %zu", n, at);
        memcpy(id, p + at + 4, n), id[n] = 0;
        if (fn(ctx, id)) return -1;
        at += 4 + n;
    }
    return 0;
}

typedef struct {
    Ssnad *d;
    char *err;
    size_t errlen;
    size_t n;
} PendingLoad;

static int mark_pending(void *ctx, const char *id) {
    PendingLoad *pl = ctx;
    pl->n++;
    return ssnad_ingest_mark_pending(pl->d, id, pl->err, pl->errlen);
}

static int load_pending(Ssnad *d, char *err, size_t errlen) {
    void *blob = NULL;
    size_t len = 0;
    int rc = store_get_checkpoint(d->store, d->txn, PENDING_BLOB, &blob, &len, err, errlen);
    if (rc == STORE_NOTFOUND) return 0;
    PendingLoad pl = {d, err, errlen, 0};
    char perr[256] = "";
    if (rc == STORE_OK && ssnad_pending_parse(blob, len, mark_pending, &pl, perr, sizeof perr)) {
        if (perr[0]) errmsg_fail(err, errlen, "checkpoint %s: malformed: %s", PENDING_BLOB, perr);
        rc = -1;
    }
    free(blob);
    if (!rc && pl.n) log_info("lists pending at the checkpoint", LOG_INT("users", pl.n));
    return rc ? -1 : 0;
}

static int load_counters(Ssnad *d, char *err, size_t errlen) {
    if (store_get_counter(d->store, d->txn, COUNTER_EVENTS, &d->events_applied, err, errlen) < 0)
        return -1;
    void *blob = NULL;
    size_t len = 0;
    int rc = store_get_checkpoint(d->store, d->txn, DEDUP_BLOB, &blob, &len, err, errlen);
    if (rc < 0) return -1;
    if (rc == STORE_OK && ssnad_dedup_load(&d->dedup, blob, len)) {
        snprintf(err, errlen, "checkpoint %s: malformed duplicate window (%zu bytes)", DEDUP_BLOB,
                 len);
        rc = -1;
    } else {
        rc = 0;
    }
    free(blob), blob = NULL;
    // the pop window (kept whether or not an arm serves it, so one can be added at any time)
    if (!rc) rc = store_get_checkpoint(d->store, d->txn, POP_BLOB, &blob, &len, err, errlen);
    if (rc == STORE_OK) {
        char perr[256];
        rc = popwindow_load(d->pop, blob, len, d->n_items, perr, sizeof perr)
                 ? errmsg_fail(err, errlen, "checkpoint %s: %s", POP_BLOB, perr)
                 : 0;
    } else if (rc == STORE_NOTFOUND) {
        rc = 0; // a store from before the pop arm: its window starts empty
    }
    free(blob);
    return rc < 0 ? -1 : 0;
}

int ssnad_checkpoint_restore(Ssnad *d, char *err, size_t errlen) {
    return load_counters(d, err, errlen) || load_pending(d, err, errlen) ? -1 : 0;
}

/* Also commit topic's offsets to the consumer's group: only for Kafka's own lag tools, ssnad
 * resumes from the store. offs: [d->n_parts] */
static void commit_to_group(Ssnad *d, KafkaConsumer *c, const char *topic,
                            const KafkaPartition *offs) {
    KafkaPartition mine[SSNAD_MAX_PARTS];
    size_t n = 0;
    for (size_t i = 0; i < d->n_parts; i++)
        if (!strcmp(offs[i].topic, topic)) mine[n++] = offs[i];
    char err[256];
    if (c && n) kafka_consumer_commit(c, mine, n, err, sizeof err);
}

int ssnad_checkpoint(Ssnad *d, const char *why, char *err, size_t errlen) {
    double t0 = clock_monotonic_s();
    if (!d->txn) {
        return errmsg_fail(err, errlen, "checkpoint: no open transaction");
    }
    // outputs first: the offsets committed below must never run ahead of the lists and dead
    // letters their events produced (a crash after the commit would lose those for good)
    char perr[512];
    if (d->producer && kafka_producer_flush(d->producer, FLUSH_MS, perr, sizeof perr)) {
        if (kafka_producer_in_flight(d->producer) > 0) { // the broker is away: try again later
            log_warn("checkpoint postponed", LOG_STR("why", why), LOG_STR("error", perr));
            d->last_checkpoint_s = clock_monotonic_s();
            return 0;
        }
        errmsg_fail(err, errlen, "checkpoint: outputs were lost: %s", perr);
        d->fatal = 1, d->exit_code = SSNAD_EXIT_RESTART; // the restart produces them again
        log_error("checkpoint failed", LOG_STR("why", why), LOG_STR("error", err));
        return -1;
    }
    // finished embeddings go into this transaction; texts still queued are not waited for: the
    // offsets below are held back to them, so a restart reads their Item messages again
    int rc = ssnad_embed_collect(d, err, errlen);
    if (!rc && d->cfg->debug_verify) rc = verify_users(d, err, errlen);
    KafkaPartition offs[SSNAD_MAX_PARTS];
    memcpy(offs, d->parts, d->n_parts * sizeof *offs);
    ssnad_embed_hold_back(d, offs, d->n_parts);
    size_t held = 0;
    for (size_t i = 0; i < d->n_parts; i++) held += offs[i].offset != d->parts[i].offset;
    double t_embed = clock_monotonic_s();
    // the trainer writes snapshots between its steps; once it has stopped (a clean stop), the
    // models are written here, so no training is lost
    if (!rc && !d->feed) rc = ssnad_snapshot_now(d, err, errlen);
    if (!rc) rc = ssnad_snapshot_put_refs(d, err, errlen);
    double t_model = clock_monotonic_s();
    if (!rc) rc = store_put_counter(d->txn, COUNTER_EVENTS, d->events_applied, err, errlen);
    size_t dlen;
    const void *dblob = ssnad_dedup_blob(&d->dedup, &dlen);
    if (!rc) rc = store_put_checkpoint(d->txn, DEDUP_BLOB, dblob, dlen, err, errlen);
    if (!rc) rc = put_pop(d, err, errlen);
    if (!rc) rc = put_pending(d, err, errlen);
    for (size_t i = 0; i < d->n_parts && !rc; i++)
        rc =
            store_put_offset(d->txn, offs[i].topic, offs[i].partition, offs[i].offset, err, errlen);
    if (!rc) {
        rc = store_txn_commit(d->txn, STORE_COMMIT_SYNC, err, errlen);
        d->txn = NULL;
    }
    if (rc) {
        d->fatal = 1, d->exit_code = SSNAD_EXIT_RESTART;
        log_error("checkpoint failed", LOG_STR("why", why), LOG_STR("error", err),
                  LOG_BOOL("disk_full", rc == STORE_ERR_FULL));
        return -1;
    }
    ssnad_snapshot_committed(d);
    double secs = clock_monotonic_s() - t0;
    d->last_checkpoint_s = clock_monotonic_s();
    metric_counter_inc(d->m_checkpoints);
    metric_histogram_observe(d->m_ckpt_seconds, secs);
    log_info("checkpoint committed", LOG_STR("why", why), LOG_INT("events", d->events_applied),
             LOG_INT("since_last", d->since_checkpoint), LOG_F64("seconds", secs),
             LOG_F64("embed_s", t_embed - t0), LOG_F64("models_s", t_model - t_embed),
             LOG_F64("commit_s", t0 + secs - t_model), LOG_INT("partitions_held_back", held));
    d->since_checkpoint = 0, d->collected_since_ckpt = 0;
    commit_to_group(d, d->consumer, d->cfg->topic_events, offs);
    commit_to_group(d, d->items_consumer, d->cfg->topic_items, offs);
    if (store_txn_begin(d->store, &d->txn, err, errlen)) {
        d->fatal = 1, d->exit_code = SSNAD_EXIT_RESTART;
        return -1;
    }
    return 0;
}

/* ---- dump ---- */

typedef struct {
    char *id;
    uint32_t index;
} DumpItem;

static int cmp_item(const void *a, const void *b) {
    return strcmp(((const DumpItem *)a)->id, ((const DumpItem *)b)->id);
}

static int dump_items(Store *s, FILE *out, char *err, size_t errlen) {
    size_t n;
    StoreItemShape shape = {0};
    if (store_catalogue_count(s, NULL, &n, err, errlen)) return -1;
    int has_shape = store_item_shape(s, &shape, err, errlen) == STORE_OK;
    DumpItem *items = calloc(n ? n : 1, sizeof *items);
    size_t per = has_shape ? (size_t)shape.layers * (size_t)shape.hidden : 0;
    float *states = malloc((per ? per : 1) * sizeof(float));
    int rc = items && states ? 0 : -1;
    char id[STORE_KEY_MAX + 1];
    for (size_t i = 0; i < n && !rc; i++) {
        rc = store_catalogue_id(s, NULL, (uint32_t)i, id, sizeof id, err, errlen);
        if (!rc && !(items[i].id = strdup(id))) rc = -1;
        items[i].index = (uint32_t)i;
    }
    if (!rc) qsort(items, n, sizeof *items, cmp_item);
    fprintf(out, "catalogue %zu\n", n);
    for (size_t i = 0; i < n && !rc; i++) {
        char *text = NULL;
        size_t tl = 0;
        StoreItemInfo info;
        rc = store_catalogue_get(s, NULL, items[i].id, NULL, &text, &tl, err, errlen);
        int got = rc ? rc : store_get_item(s, NULL, items[i].id, &info, states, per, err, errlen);
        if (got < 0) rc = -1;
        if (!rc) {
            double sum = 0, sq = 0;
            if (got == STORE_OK)
                for (size_t k = 0; k < per; k++)
                    sum += states[k], sq += (double)states[k] * states[k];
            fprintf(out, "item %s text_len %zu text_hash %016llx states %s %.6g %.6g\n",
                    items[i].id, tl, (unsigned long long)store_text_hash(text, tl),
                    got == STORE_OK ? "yes" : "no", sum, sq);
        }
        free(text);
    }
    for (size_t i = 0; i < n; i++) free(items[i].id);
    free(items), free(states);
    if (rc && err && !err[0]) snprintf(err, errlen, "dump: out of memory");
    return rc ? -1 : 0;
}

static int dump_users(Store *s, FILE *users_in, FILE *out, char *err, size_t errlen) {
    size_t n;
    if (store_user_count(s, NULL, &n, err, errlen)) return -1;
    fprintf(out, "users %zu\n", n);
    if (!users_in) return 0;
    char line[STORE_KEY_MAX + 2], id[STORE_KEY_MAX + 1];
    while (fgets(line, sizeof line, users_in)) {
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0]) continue;
        uint32_t seq[STORE_USER_SEQ_MAX];
        size_t len;
        uint64_t events;
        int rc =
            store_get_user_seq(s, NULL, line, seq, STORE_USER_SEQ_MAX, &len, &events, err, errlen);
        if (rc < 0) return -1;
        if (rc == STORE_NOTFOUND) {
            fprintf(out, "user %s absent\n", line);
            continue;
        }
        fprintf(out, "user %s events %llu seq", line, (unsigned long long)events);
        for (size_t i = 0; i < len; i++) {
            if (store_catalogue_id(s, NULL, seq[i], id, sizeof id, err, errlen)) return -1;
            fprintf(out, " %s", id);
        }
        fputc('\n', out);
    }
    return 0;
}

int ssnad_dump_state(const char *db_path, FILE *users_in, FILE *out, char *err, size_t errlen) {
    StoreOptions opt = {.read_only = 1};
    Store *s = NULL;
    if (store_open(&s, db_path, &opt, err, errlen)) return -1;
    uint64_t events = 0;
    int rc = store_get_counter(s, NULL, COUNTER_EVENTS, &events, err, errlen) < 0 ? -1 : 0;
    if (!rc) fprintf(out, "events_applied %llu\n", (unsigned long long)events);
    StoreOffset *offs = NULL;
    size_t n_offs = 0;
    if (!rc && store_get_offsets(s, NULL, &offs, &n_offs, err, errlen)) rc = -1;
    for (size_t i = 0; i < n_offs; i++)
        fprintf(out, "offset %s %d %lld\n", offs[i].topic, offs[i].partition,
                (long long)offs[i].offset);
    free(offs);
    if (!rc) rc = dump_items(s, out, err, errlen);
    if (!rc) rc = dump_users(s, users_in, out, err, errlen);
    store_close(s);
    return rc;
}
