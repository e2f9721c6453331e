/* ssnad_state.c - what ssnad keeps: the store and its open transaction, one model per variant
 * (training and serving copy, restored from the checkpoint), the item-state matrix and the
 * serving item vectors, the checkpoint commit and the state dump. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/log.h"
#include "daemon/ssnad.h"
#include "model/errmsg.h"

#define COUNTER_EVENTS "events_applied"
#define DEDUP_BLOB     "dedup"
#define POP_BLOB       "pop_window"
#define PENDING_BLOB   "pending_lists"
#define FLUSH_MS       10000 // a checkpoint waits this long for the outputs to be delivered

static int load_pending(Ssnad *d, char *err, size_t errlen);

/* ---- item matrices ---- */

static size_t row_floats(const Ssnad *d, int layers) {
    return (size_t)layers * (size_t)d->hidden;
}

/* Grow every per-item array to hold at least need rows. Caller holds serve_mu: the trainer
 * reads the state matrices under it too (see ssnad_train.c). */
static int grow_items(Ssnad *d, size_t need, char *err, size_t errlen) {
    if (need <= d->item_cap) return 0;
    size_t cap = d->item_cap ? d->item_cap : 1024;
    while (cap < need) cap *= 2;
    float *states = realloc(d->states, cap * row_floats(d, d->layers) * sizeof(float));
    if (states) d->states = states;
    unsigned char *present = realloc(d->present, cap);
    if (present) d->present = present;
    char **ids = realloc(d->item_ids, cap * sizeof *ids);
    if (ids) d->item_ids = ids;
    if (!states || !present || !ids) goto oom;
    memset(d->present + d->item_cap, 0, cap - d->item_cap);
    memset(d->item_ids + d->item_cap, 0, (cap - d->item_cap) * sizeof *ids);
    memset(d->states + d->item_cap * row_floats(d, d->layers), 0,
           (cap - d->item_cap) * row_floats(d, d->layers) * sizeof(float));
    for (int i = 0; i < d->n_var; i++) {
        SsnadVariant *v = &d->var[i];
        if (v->cv.layers == d->layers) {
            v->states = d->states;
        } else {
            size_t rf = row_floats(d, v->cv.layers);
            float *s = realloc(v->states, cap * rf * sizeof(float));
            if (!s) goto oom;
            memset(s + d->item_cap * rf, 0, (cap - d->item_cap) * rf * sizeof(float));
            v->states = s;
        }
        size_t dd = (size_t)v->serve.cfg.d;
        float *raw = realloc(v->raw, cap * dd * sizeof(float));
        if (raw) v->raw = raw;
        float *norm = realloc(v->norm, cap * dd * sizeof(float));
        if (norm) v->norm = norm;
        // grown rows bound to 0 (panel_upper_forward reads whole panels)
        if (!raw || !norm || panel_reserve(&v->bounds, cap, (int)dd)) goto oom;
        v->vec_cap = cap;
    }
    d->item_cap = cap;
    return 0;
oom:
    return errmsg_fail(err, errlen, "ssnad: out of memory for %zu item rows", cap);
}

/* Copy item idx's top a layers into a variant's own matrix (when it keeps fewer layers). */
static void copy_variant_row(Ssnad *d, SsnadVariant *v, size_t idx) {
    if (v->states == d->states) return;
    memcpy(v->states + idx * row_floats(d, v->cv.layers),
           d->states + idx * row_floats(d, d->layers), row_floats(d, v->cv.layers) * sizeof(float));
}

/* Serving vectors (raw and normalised) of rows ids[0..n) with v's serving parameters, one
 * item-tower pass. Caller holds serve_mu (or no other thread runs yet). */
static int serve_vectors(Ssnad *d, SsnadVariant *v, const int *ids, size_t n, char *err,
                         size_t errlen) {
    if (!n) return 0;
    size_t dd = (size_t)v->serve.cfg.d;
    float *raw = malloc(n * dd * sizeof *raw), *norm = malloc(n * dd * sizeof *norm);
    int rc = raw && norm ? 0 : -1;
    if (rc) snprintf(err, errlen, "ssnad: out of memory for %zu item vectors", n);
    v->serve.cfg.n_items = (int)d->n_items;
    if (!rc) rc = ssna_item_vectors(&v->serve, v->states, ids, (int)n, raw, norm, err, errlen);
    for (size_t i = 0; i < n && !rc; i++) {
        memcpy(v->raw + (size_t)ids[i] * dd, raw + i * dd, dd * sizeof(float));
        memcpy(v->norm + (size_t)ids[i] * dd, norm + i * dd, dd * sizeof(float));
        panel_set_row(&v->bounds, (size_t)ids[i], norm + i * dd);
    }
    // a catalogue that doubled since its bounds' axis was taken (a cold start, before any
    // refresh) gets a new one: a stale axis leaves wide bounds, and many items scored exactly
    if (!rc && d->n_items >= 2 * v->bounds_axis_rows) {
        panel_pack(&v->bounds, v->norm, d->n_items);
        v->bounds_axis_rows = d->n_items;
    }
    free(raw), free(norm);
    return rc;
}

/* serve_vectors of rows [from, to). */
static int serve_range(Ssnad *d, SsnadVariant *v, size_t from, size_t to, char *err,
                       size_t errlen) {
    if (to <= from) return 0;
    int *ids = malloc((to - from) * sizeof *ids);
    if (!ids) {
        return errmsg_fail(err, errlen, "ssnad: out of memory");
    }
    for (size_t i = from; i < to; i++) ids[i - from] = (int)i;
    int rc = serve_vectors(d, v, ids, to - from, err, errlen);
    free(ids);
    return rc;
}

int ssnad_state_refresh_rows(Ssnad *d, int v, size_t from, char *err, size_t errlen) {
    return serve_range(d, &d->var[v], from, d->n_items, err, errlen);
}

/* Grow the in-memory catalogue to idx + 1 rows. A placeholder row (no states yet) has zero
 * item vectors: it is never scored, and in a user's sequence it contributes only its position.
 * Caller holds serve_mu. */
static int ensure_locked(Ssnad *d, uint32_t idx, const char *id, char *err, size_t errlen) {
    if (idx < d->n_items) return 0;
    if (grow_items(d, (size_t)idx + 1, err, errlen)) return -1;
    if (!(d->item_ids[idx] = strdup(id))) {
        return errmsg_fail(err, errlen, "item %s: out of memory", id);
    }
    size_t from = d->n_items;
    d->n_items = (size_t)idx + 1;
    for (int i = 0; i < d->n_var; i++) { // zero vectors: a placeholder adds only its position
        size_t dd = (size_t)d->var[i].serve.cfg.d;
        memset(d->var[i].raw + from * dd, 0, (d->n_items - from) * dd * sizeof(float));
        memset(d->var[i].norm + from * dd, 0, (d->n_items - from) * dd * sizeof(float));
        for (size_t r = from; r < d->n_items; r++) panel_set_row(&d->var[i].bounds, r, NULL);
        d->var[i].n_vec = d->n_items;
    }
    return 0;
}

int ssnad_state_ensure_item(Ssnad *d, uint32_t idx, const char *id, char *err, size_t errlen) {
    if (idx < d->n_items) return 0;
    pthread_mutex_lock(&d->serve_mu);
    int rc = ensure_locked(d, idx, id, err, errlen);
    pthread_mutex_unlock(&d->serve_mu);
    ssnad_train_set_items(d, d->n_items, -1);
    return rc;
}

int ssnad_state_set_items(Ssnad *d, const SsnadItemState *items, size_t n, char *err,
                          size_t errlen) {
    if (!n) return 0;
    unsigned char *existed = malloc(n);
    int *ids = malloc(n * sizeof *ids);
    if (!existed || !ids) {
        free(existed), free(ids);
        return errmsg_fail(err, errlen, "ssnad: out of memory");
    }
    int rc = 0;
    pthread_mutex_lock(&d->serve_mu);
    for (size_t i = 0; i < n && !rc; i++) {
        uint32_t idx = items[i].index;
        ids[i] = (int)idx;
        existed[i] = idx < d->n_items; // the trainer may hold a copy of the old row
        rc = ensure_locked(d, idx, items[i].id, err, errlen);
        if (!rc) {
            memcpy(d->states + (size_t)idx * row_floats(d, d->layers), items[i].states,
                   row_floats(d, d->layers) * sizeof(float));
            d->n_present += !d->present[idx];
            d->present[idx] = 1;
        }
    }
    if (!rc) d->items_ready += n;
    for (int v = 0; v < d->n_var && !rc; v++) {
        for (size_t i = 0; i < n; i++) copy_variant_row(d, &d->var[v], items[i].index);
        rc = serve_vectors(d, &d->var[v], ids, n, err, errlen);
    }
    pthread_mutex_unlock(&d->serve_mu);
    for (size_t i = 0; i < n; i++)
        ssnad_train_set_items(d, d->n_items, existed[i] ? (long)items[i].index : -1);
    free(existed), free(ids);
    return rc;
}

/* ---- models ---- */

/* Model arm i from the configured arm a. */
static int open_variant(Ssnad *d, int i, int a, char *err, size_t errlen) {
    SsnadVariant *v = &d->var[i];
    v->cv = d->cfg->variants[a];
    if (v->cv.kind == SSNA_VARIANT_ID) {
        snprintf(err, errlen,
                 "variant %s: the id baseline has a fixed item table and cannot "
                 "serve a growing catalogue; use a text variant",
                 v->cv.label);
        return -1;
    }
    int n = d->n_items > 0 ? (int)d->n_items : 1;
    SsnaConfig mc = ssna_config_default((SsnaVariant)v->cv.kind, n, d->hidden, v->cv.layers);
    mc.loss = v->cv.loss >= 0           ? (SsnaLoss)v->cv.loss
              : d->cfg->train_loss_logq ? SSNA_LOSS_LOGQ
                                        : SSNA_LOSS_INBATCH;
    if (mc.d > PANEL_MAX_C) {
        return errmsg_fail(err, errlen, "variant %s: d = %d, lists are scored for d <= %d",
                           v->cv.label, mc.d, PANEL_MAX_C);
    }
    uint64_t seed = (uint64_t)d->cfg->train_seed + 7919u * (uint64_t)i;
    if (ssna_create(&v->train, &mc, seed, err, errlen) ||
        ssna_create(&v->serve, &mc, seed, err, errlen) ||
        ssna_create(&v->serve_aux, &mc, seed, err, errlen))
        return -1;
    v->train.rng = seed ^ 0x9e3779b97f4a7c15ull;
    int found;
    if (ssnad_snapshot_load(d, v, &found, err, errlen)) return -1;
    if (found)
        log_info("model restored", LOG_STR("variant", v->cv.label),
                 LOG_INT("steps", v->train.ps.step));
    else if (v->cv.init[0]) { // its own snapshot, once there is one, wins over init=
        if (ssnad_warm_start(d, v, err, errlen)) return -1;
    } else
        log_info("model created", LOG_STR("variant", v->cv.label),
                 LOG_INT("seed", (long long)seed));
    memcpy(v->serve_aux.ps.params, v->serve.ps.params, v->serve.ps.total * sizeof(float));
    v->serve_steps = v->serve.ps.step;
    return 0;
}

static int open_identity(Ssnad *d, char *err, size_t errlen) {
    const char *enc = encoder_identity(d->enc);
    size_t n = strlen(enc) + 256;
    if (!(d->identity = malloc(n))) return -1;
    // the same identity `ssna embed` writes, so a store it prepared is reused as is
    snprintf(d->identity, n,
             "{\"encoder\":%s,\"layers_kept\":%d,\"first_layer\":%d,\"hidden_size\":%d,"
             "\"pooling\":\"cls\",\"dtype\":\"f16\"}",
             enc, d->layers, d->first_layer, d->hidden);
    int rc = store_check_identity(d->store, d->identity, err, errlen);
    if (rc == STORE_NOTFOUND) rc = store_set_identity(d->txn, d->identity, err, errlen);
    return rc ? -1 : 0;
}

static int load_items(Ssnad *d, char *err, size_t errlen) {
    size_t n;
    if (store_catalogue_count(d->store, d->txn, &n, err, errlen)) return -1;
    if (grow_items(d, n > 0 ? n : 1, err, errlen)) return -1;
    if (n && store_load_item_states(d->store, d->txn, d->states, d->present, n, d->layers,
                                    d->hidden, err, errlen))
        return -1;
    d->n_items = n;
    for (size_t r = 0; r < n; r++) d->n_present += d->present[r];
    char id[STORE_KEY_MAX + 1];
    for (size_t r = 0; r < n; r++) {
        if (store_catalogue_id(d->store, d->txn, (uint32_t)r, id, sizeof id, err, errlen))
            return -1;
        if (!(d->item_ids[r] = strdup(id))) return -1;
    }
    for (int i = 0; i < d->n_var; i++) {
        for (size_t r = 0; r < n; r++) copy_variant_row(d, &d->var[i], r);
        if (serve_range(d, &d->var[i], 0, n, err, errlen)) return -1;
        d->var[i].n_vec = n;
    }
    return 0;
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

int ssnad_state_open(Ssnad *d, const DaemonConfig *cfg, char *err, size_t errlen) {
    d->cfg = cfg;
    d->n_arms = cfg->n_variants;
    for (int a = 0; a < d->n_arms; a++)
        d->arm_var[a] = cfg->variants[a].kind == CONFIG_VARIANT_POP ? -1 : d->n_var++;
    d->pop = popwindow_create((size_t)cfg->pop_window, (int)cfg->top_k, SSNAD_SEQ_MAX);
    if (!d->pop) return errmsg_fail(err, errlen, "ssnad: out of memory (pop.window)");
    d->users.max = (size_t)cfg->users_cache_max;
    pthread_mutex_init(&d->serve_mu, NULL);
    if (store_open(&d->store, cfg->db_path, NULL, err, errlen)) return -1;
    if (encoder_load(&d->enc, cfg->model_dir, err, errlen)) return -1;
    encoder_set_threads(d->enc, 1); // the embed thread is one of the daemon's threads
    d->hidden = encoder_hidden(d->enc);
    d->first_layer = encoder_num_layers(d->enc);
    d->layers = 1;
    for (int a = 0; a < d->n_arms; a++)
        if (cfg->variants[a].layers > d->layers) d->layers = cfg->variants[a].layers;
    if (d->layers > d->first_layer + 1) {
        return errmsg_fail(err, errlen, "variants keep %d layers but %s has %d", d->layers,
                           cfg->model_dir, d->first_layer + 1);
    }
    if (store_txn_begin(d->store, &d->txn, err, errlen)) return -1;
    if (ssnad_snapshot_open(d, err, errlen) || open_identity(d, err, errlen)) return -1;
    for (int a = 0; a < d->n_arms; a++)
        if (d->arm_var[a] >= 0 && open_variant(d, d->arm_var[a], a, err, errlen)) return -1;
    if (load_items(d, err, errlen) || load_counters(d, err, errlen) || load_pending(d, err, errlen))
        return -1;
    d->last_checkpoint_s = clock_monotonic_s();
    log_info("state opened", LOG_STR("db", cfg->db_path), LOG_INT("items", d->n_items),
             LOG_INT("events_applied", d->events_applied), LOG_INT("variants", d->n_var));
    return 0;
}

void ssnad_state_close(Ssnad *d) {
    store_txn_abort(d->txn);
    d->txn = NULL;
    for (int i = 0; i < d->n_var; i++) {
        SsnadVariant *v = &d->var[i];
        ssna_free(&v->train), ssna_free(&v->serve), ssna_free(&v->serve_aux);
        if (v->states != d->states) free(v->states);
        free(v->raw), free(v->norm);
        panel_free(&v->bounds);
    }
    for (size_t i = 0; i < d->n_items; i++) free(d->item_ids[i]);
    free(d->item_ids), free(d->dirty.v), free(d->deferred.v);
    free(d->states), free(d->present), free(d->identity);
    ssnad_users_free(&d->users);
    popwindow_free(d->pop);
    d->pop = NULL;
    encoder_free(d->enc);
    ssnad_snapshot_close(d);
    store_close(d->store);
    pthread_mutex_destroy(&d->serve_mu);
}

/* ---- checkpoint ---- */

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
