/* ssnad_state.c - what ssnad keeps: the store and its open transaction, one model per variant
 * (training and serving copy, restored from the checkpoint), the item-state matrix and the
 * serving item vectors. What a checkpoint writes and reads back is ssnad_checkpoint.c's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/log.h"
#include "daemon/ssnad.h"
#include "model/errmsg.h"

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
    uint64_t *gen = realloc(d->row_gen, cap * sizeof *gen);
    if (gen) d->row_gen = gen;
    if (!states || !present || !ids || !gen) goto oom;
    memset(d->present + d->item_cap, 0, cap - d->item_cap);
    memset(d->row_gen + d->item_cap, 0, (cap - d->item_cap) * sizeof *gen);
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

int ssnad_state_refresh_stale(Ssnad *d, int v, size_t n, uint64_t gen, char *err, size_t errlen) {
    if (n > d->n_items) n = d->n_items;
    size_t stale = 0;
    for (size_t i = 0; i < n; i++) stale += d->row_gen[i] > gen;
    int rc = 0;
    if (stale) { // texts that arrived (or changed) while the trainer worked on its copy
        int *ids = malloc(stale * sizeof *ids);
        if (!ids) return errmsg_fail(err, errlen, "ssnad: out of memory");
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (d->row_gen[i] > gen) ids[k++] = (int)i;
        rc = serve_vectors(d, &d->var[v], ids, stale, err, errlen);
        free(ids);
    }
    return rc ? rc : serve_range(d, &d->var[v], n, d->n_items, err, errlen);
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
    ssnad_train_set_items(d, d->n_items, -1, d->state_gen);
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
    uint64_t gen = ++d->state_gen;
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
            d->row_gen[idx] = gen;
        }
    }
    if (!rc) d->items_ready += n;
    for (int v = 0; v < d->n_var && !rc; v++) {
        for (size_t i = 0; i < n; i++) copy_variant_row(d, &d->var[v], items[i].index);
        rc = serve_vectors(d, &d->var[v], ids, n, err, errlen);
    }
    pthread_mutex_unlock(&d->serve_mu);
    for (size_t i = 0; i < n; i++)
        ssnad_train_set_items(d, d->n_items, existed[i] ? (long)items[i].index : -1, gen);
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
    mc.d = v->cv.d; // config_parse_variants set it: d=N, or the default of an arm of its kind
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
    if (ssnad_snapshot_load(d, i, &found, err, errlen)) return -1;
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
    if (load_items(d, err, errlen) || ssnad_checkpoint_restore(d, err, errlen)) return -1;
    d->last_checkpoint_s = clock_monotonic_s();
    log_info("state opened", LOG_STR("db", cfg->db_path), LOG_INT("items", d->n_items),
             LOG_INT("events_applied", d->events_applied), LOG_INT("variants", d->n_var));
    return 0;
}

int ssnad_state_open_serving(Ssnad *d, const SsnaConfig *cfg, uint64_t seed, const float *states,
                             const unsigned char *present, size_t n_items, char *err,
                             size_t errlen) {
    SsnadVariant *v = &d->var[0];
    pthread_mutex_init(&d->serve_mu, NULL);
    d->hidden = cfg->hidden, d->layers = cfg->layers, d->first_layer = cfg->layers - 1;
    d->n_var = d->n_arms = 1;
    v->cv.kind = (int)cfg->variant, v->cv.layers = cfg->layers;
    snprintf(v->cv.label, sizeof v->cv.label, "serving");
    SsnaConfig mc = *cfg;
    mc.n_items = n_items ? (int)n_items : 1;
    if (ssna_create(&v->train, &mc, seed, err, errlen) ||
        ssna_create(&v->serve, &mc, seed, err, errlen) ||
        ssna_create(&v->serve_aux, &mc, seed, err, errlen) || grow_items(d, n_items, err, errlen))
        return -1;
    memcpy(d->states, states, n_items * row_floats(d, d->layers) * sizeof(float));
    for (size_t i = 0; i < n_items; i++) d->present[i] = present ? present[i] != 0 : 1;
    d->n_items = n_items;
    for (size_t i = 0; i < n_items; i++) d->n_present += d->present[i];
    if (serve_range(d, v, 0, n_items, err, errlen)) return -1;
    v->n_vec = n_items;
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
    free(d->states), free(d->present), free(d->row_gen), free(d->identity);
    ssnad_users_free(&d->users);
    popwindow_free(d->pop);
    d->pop = NULL;
    encoder_free(d->enc);
    ssnad_snapshot_close(d);
    store_close(d->store);
    pthread_mutex_destroy(&d->serve_mu);
}
