/* ssnad_snapshot.c - model snapshots that never stall the main loop.
 *
 * A variant's training copy (parameters, Adam moments and step: ~9 MB for gru a = 3 on MiniLM at
 * the default d = 64, ~43 MB at 256) is too big to serialize and write inside the main thread's
 * checkpoint without delaying every event that arrives meanwhile, and reading it there would
 * also wait for the running training step. So the trainer writes it, between two steps, into a
 * second LMDB environment (<db.path>/models) and syncs it; the checkpoint transaction of the main
 * store then commits only a reference "slot step" (model_ref:<label>) to a snapshot that is
 * already durable.
 *
 * Each variant has two slots. The trainer writes the slot that the committed reference does not
 * name, and only when the main thread asks for a snapshot, which it does right after committing
 * a reference to the previous one: so the committed reference always names a complete snapshot,
 * whatever crashes when. Per variant, under Ssnad.feed_mu:
 *   IDLE -> WANTED (main, after a commit) -> WRITING (trainer) -> READY (trainer, durable)
 *   -> reference put in the next checkpoint -> committed: ref_slot = slot, IDLE -> WANTED ...
 * When the trainer is not running (the final checkpoint of a clean stop), the main thread writes
 * the snapshots itself, so a stop keeps all the training done until then. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "daemon/ssnad.h"
#include "model/errmsg.h"

#define MODEL_BLOB_MAGIC "ssnad-model v1 "
#define REF_MAGIC        "ssnad-model-ref v1"

enum { SNAP_IDLE = 0, SNAP_WANTED, SNAP_WRITING, SNAP_READY };

/* One variant's snapshot (under Ssnad.feed_mu but ref_slot and in_txn, the main thread's). */
typedef struct {
    int state;    // SNAP_*
    int slot;     // slot of the ready snapshot
    int64_t step; // its Adam step
    int in_txn;   // its reference is in the open checkpoint transaction
    int ref_slot; // slot the committed checkpoint names, -1 none
} Snapshot;

struct SsnadSnapshots {
    Store *models; // <db.path>/models
    Snapshot var[CONFIG_VARIANTS_MAX];
};

static void slot_name(const char *label, int slot, char *buf, size_t n) {
    snprintf(buf, n, "model:%s:%d", label, slot);
}

static void ref_name(const char *label, char *buf, size_t n) {
    snprintf(buf, n, "model_ref:%s", label);
}

int ssnad_snapshot_open(Ssnad *d, char *err, size_t errlen) {
    char dir[CONFIG_STRING_MAX + 16];
    snprintf(dir, sizeof dir, "%s/models", d->cfg->db_path);
    SsnadSnapshots *s = calloc(1, sizeof *s);
    if (!s) return errmsg_fail(err, errlen, "model snapshots: out of memory");
    for (int i = 0; i < CONFIG_VARIANTS_MAX; i++)
        s->var[i] = (Snapshot){.state = SNAP_WANTED, .ref_slot = -1}; // WANTED: the first one
    d->snaps = s;
    return store_open(&s->models, dir, NULL, err, errlen);
}

void ssnad_snapshot_close(Ssnad *d) {
    if (!d->snaps) return;
    store_close(d->snaps->models);
    free(d->snaps);
    d->snaps = NULL;
}

/* The parameters of a blob saved under label into m: 0, -1 with err, or 1 with err when its
 * tensors have other shapes than m's (nothing loaded). */
static int model_from_blob(SsnaModel *m, const char *label, const char *where, const void *blob,
                           size_t len, char *err, size_t errlen) {
    char head[128];
    int hl = snprintf(head, sizeof head, "%s%s\n", MODEL_BLOB_MAGIC, label);
    if (len < (size_t)hl || memcmp(blob, head, (size_t)hl)) {
        return errmsg_fail(err, errlen, "%s: not a model of variant %s", where, label);
    }
    const char *params = (const char *)blob + hl;
    char why[256];
    if (params_deserialize(&m->ps, params, len - (size_t)hl, why, sizeof why) == 0) return 0;
    snprintf(err, errlen, "%s: %s", where, why);
    return params_blob_fits(&m->ps, params, len - (size_t)hl) ? -1 : 1; // why it did not load
}

/* Load a blob saved under label into both copies of v: 0, -1 with err, or (must_fit == 0) 1 when
 * it has another shape. Under the arm's own label, another shape is most likely a model saved
 * 256 wide before arms from random weights became 64 wide: err says how to go on with it. */
static int load_blob(SsnadVariant *v, const char *label, const char *where, const void *blob,
                     size_t len, int must_fit, char *err, size_t errlen) {
    int rc = model_from_blob(&v->train, label, where, blob, len, err, errlen);
    if (!rc) rc = model_from_blob(&v->serve, label, where, blob, len, err, errlen);
    if (rc != 1) return rc;
    if (!must_fit) return 1;
    size_t n = strlen(err);
    if (v->cv.d_set)
        snprintf(err + n, errlen - n, " (the saved model has another shape than arm %s)",
                 v->cv.label);
    else
        snprintf(err + n, errlen - n,
                 " (the saved model has another shape than arm %s, d = %d; until 2026-12-07 every "
                 "arm was 256 wide: %s:d=256 goes on with that model, %s:d=%d starts a new arm "
                 "beside it)",
                 v->cv.label, v->train.cfg.d, v->cv.label, v->cv.label, v->train.cfg.d);
    return -1;
}

/* ssnad_snapshot_load of the model saved under label (v's own, or a fallback that must fit). */
static int load_label(Ssnad *d, int vi, const char *label, int *found, char *err, size_t errlen) {
    SsnadVariant *v = &d->var[vi];
    Snapshot *sn = &d->snaps->var[vi];
    int own = !strcmp(label, v->cv.label);
    char name[160], where[CONFIG_STRING_MAX + 200];
    void *blob = NULL;
    size_t len = 0;
    ref_name(label, name, sizeof name);
    int rc = store_get_checkpoint(d->store, d->txn, name, &blob, &len, err, errlen);
    if (rc < 0) return -1;
    if (rc == STORE_NOTFOUND) { // a store from before snapshots: the model sits in the main store
        snprintf(name, sizeof name, "model:%s", label);
        rc = store_get_checkpoint(d->store, d->txn, name, &blob, &len, err, errlen);
        if (rc < 0) return -1;
        if (rc == STORE_NOTFOUND) return 0;
        snprintf(where, sizeof where, "%s: checkpoint %s", d->cfg->db_path, name);
        rc = load_blob(v, label, where, blob, len, own, err, errlen);
        free(blob);
        if (rc == 0) *found = SSNAD_SNAPSHOT_LEGACY;
        return rc < 0 ? -1 : 0;
    }
    int slot = -1;
    long long step = -1;
    char text[64] = "";
    memcpy(text, blob, len < sizeof text - 1 ? len : sizeof text - 1);
    free(blob);
    if (sscanf(text, REF_MAGIC " %d %lld", &slot, &step) != 2 || (slot != 0 && slot != 1)) {
        return errmsg_fail(err, errlen, "%s: checkpoint %s: malformed model reference",
                           d->cfg->db_path, name);
    }
    slot_name(label, slot, name, sizeof name);
    snprintf(where, sizeof where, "%s/models: %s", d->cfg->db_path, name);
    rc = store_get_checkpoint(d->snaps->models, NULL, name, &blob, &len, err, errlen);
    if (rc < 0) return -1;
    if (rc == STORE_NOTFOUND) {
        return errmsg_fail(err, errlen,
                           "%s: the committed checkpoint names this snapshot but it is missing",
                           where);
    }
    rc = load_blob(v, label, where, blob, len, own, err, errlen);
    free(blob);
    if (rc == 1) return 0; // a fallback of another shape: not this arm's model
    if (!rc && v->train.ps.step != step) {
        snprintf(err, errlen, "%s: holds step %lld, the committed checkpoint names step %lld",
                 where, (long long)v->train.ps.step, step);
        rc = -1;
    }
    // a fallback's slots are another label's: the arm's first snapshot goes to its own slot 0
    if (!rc)
        sn->ref_slot = own ? slot : -1, *found = own ? SSNAD_SNAPSHOT_SLOT : SSNAD_SNAPSHOT_LEGACY;
    return rc;
}

int ssnad_snapshot_load(Ssnad *d, int vi, int *found, char *err, size_t errlen) {
    SsnadVariant *v = &d->var[vi];
    *found = 0;
    d->snaps->var[vi].ref_slot = -1;
    if (load_label(d, vi, v->cv.label, found, err, errlen)) return -1;
    // an arm that names its width (":d=N", last in the label) goes on with the model saved under
    // the label without it when that has its shape: one saved before d=N existed (256 wide)
    const char *dpos = strstr(v->cv.label, ":d=");
    if (*found || !v->cv.d_set || !dpos) return 0;
    char bare[sizeof v->cv.label];
    snprintf(bare, sizeof bare, "%.*s", (int)(dpos - v->cv.label), v->cv.label);
    if (load_label(d, vi, bare, found, err, errlen)) return -1;
    if (*found)
        log_info("model restored from its label without d=N", LOG_STR("variant", v->cv.label),
                 LOG_STR("saved_as", bare), LOG_INT("steps", v->train.ps.step));
    return 0;
}

/* Serialize v's training copy into `slot` of the models store and sync it. The caller is the
 * only thread touching v->train (the trainer, or the main thread once the trainer stopped). */
static int write_slot(Ssnad *d, SsnadVariant *v, int slot, char *err, size_t errlen) {
    void *pb = NULL;
    size_t plen = params_serialize(&v->train.ps, &pb);
    char head[128], name[160];
    int hl = snprintf(head, sizeof head, "%s%s\n", MODEL_BLOB_MAGIC, v->cv.label);
    char *blob = plen ? malloc((size_t)hl + plen) : NULL;
    if (!blob) {
        free(pb);
        return errmsg_fail(err, errlen, "model snapshot of %s: out of memory", v->cv.label);
    }
    memcpy(blob, head, (size_t)hl), memcpy(blob + hl, pb, plen);
    free(pb);
    slot_name(v->cv.label, slot, name, sizeof name);
    StoreTxn *t = NULL;
    int rc = store_txn_begin(d->snaps->models, &t, err, errlen);
    if (!rc) rc = store_put_checkpoint(t, name, blob, (size_t)hl + plen, err, errlen);
    if (!rc) {
        rc = store_txn_commit(t, STORE_COMMIT_SYNC, err, errlen);
    } else {
        store_txn_abort(t);
    }
    free(blob);
    return rc ? -1 : 0;
}

int ssnad_snapshot_wanted(Ssnad *d) {
    for (int i = 0; i < d->n_var; i++)
        if (d->snaps->var[i].state == SNAP_WANTED) return 1;
    return 0;
}

void ssnad_snapshot_service(Ssnad *d) {
    for (int i = 0; i < d->n_var; i++) {
        SsnadVariant *v = &d->var[i];
        Snapshot *sn = &d->snaps->var[i];
        pthread_mutex_lock(&d->feed_mu);
        int go = sn->state == SNAP_WANTED, slot = sn->ref_slot == 0 ? 1 : 0;
        if (go) sn->state = SNAP_WRITING;
        pthread_mutex_unlock(&d->feed_mu);
        if (!go) continue;
        char err[512] = "";
        int64_t step = v->train.ps.step;
        int rc = write_slot(d, v, slot, err, sizeof err);
        if (rc) // the committed reference still names the previous snapshot; asked again later
            log_error("model snapshot failed", LOG_STR("variant", v->cv.label),
                      LOG_STR("error", err));
        pthread_mutex_lock(&d->feed_mu);
        sn->state = rc ? SNAP_IDLE : SNAP_READY;
        sn->slot = slot, sn->step = step;
        pthread_mutex_unlock(&d->feed_mu);
    }
}

int ssnad_snapshot_now(Ssnad *d, char *err, size_t errlen) {
    for (int i = 0; i < d->n_var; i++) {
        SsnadVariant *v = &d->var[i];
        Snapshot *sn = &d->snaps->var[i];
        int slot = sn->ref_slot == 0 ? 1 : 0;
        if (write_slot(d, v, slot, err, errlen)) return -1;
        sn->state = SNAP_READY, sn->slot = slot, sn->step = v->train.ps.step;
        log_info("model saved", LOG_STR("variant", v->cv.label), LOG_INT("steps", sn->step),
                 LOG_INT("slot", slot));
    }
    return 0;
}

int ssnad_snapshot_put_refs(Ssnad *d, char *err, size_t errlen) {
    for (int i = 0; i < d->n_var; i++) {
        SsnadVariant *v = &d->var[i];
        Snapshot *sn = &d->snaps->var[i];
        pthread_mutex_lock(&d->feed_mu);
        int ready = sn->state == SNAP_READY, slot = sn->slot;
        long long step = (long long)sn->step;
        pthread_mutex_unlock(&d->feed_mu);
        sn->in_txn = ready; // a snapshot finished after this point waits for the next one
        if (!ready) continue;
        char name[160], text[64];
        ref_name(v->cv.label, name, sizeof name);
        int n = snprintf(text, sizeof text, REF_MAGIC " %d %lld", slot, step);
        if (store_put_checkpoint(d->txn, name, text, (size_t)n, err, errlen)) return -1;
    }
    return 0;
}

void ssnad_snapshot_committed(Ssnad *d) {
    pthread_mutex_lock(&d->feed_mu);
    for (int i = 0; i < d->n_var; i++) {
        SsnadVariant *v = &d->var[i];
        Snapshot *sn = &d->snaps->var[i];
        if (sn->in_txn) sn->ref_slot = sn->slot, sn->state = SNAP_IDLE;
        if (sn->in_txn && v->warm_unsaved) v->warm_unsaved = 0, d->warm_unsaved--;
        sn->in_txn = 0;
        if (sn->state == SNAP_IDLE) sn->state = SNAP_WANTED;
    }
    pthread_cond_broadcast(&d->feed_cv);
    pthread_mutex_unlock(&d->feed_mu);
}
