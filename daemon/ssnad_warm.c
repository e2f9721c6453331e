/* ssnad_warm.c - an A/B arm that starts from an offline model (variants = gru:a=3:init=PATH).
 *
 * `ssna train --out` trains on a replay's history; the daemon then learns online from its
 * continuation instead of from random weights. Only an arm without a snapshot of its own is
 * initialised: after the first checkpoint the store's snapshot is the arm's model, and a restart
 * goes on from it. The checkpoint must fit the arm exactly, checked before anything is copied:
 *   - the same encoder (its identity, weights digest included, as `ssna embed` recorded it in
 *     the checkpoint's run metadata) and the same pooling of the item states;
 *   - the same variant, kept layers and every shape (d, experts, blocks, heads, inner, max_len;
 *     an init= arm is 256 wide unless it names its d=N, as `ssna train --d` defaults to 256),
 *     and the same scores (cosine, at the arm's tau: `ssna train --score dot` models are
 *     offline only), and no item-ID rows (`ssna train --item-ids` models are offline only).
 * The catalogue size may differ: a text variant has no per-item parameters. The parameters are
 * the checkpoint's best-validation ones; Adam starts afresh at train.lr. The next checkpoint
 * (even one with no event, a clean stop's) snapshots the arm, so the store no longer needs the
 * file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "daemon/ssnad.h"
#include "model/errmsg.h"
#include "model/ssna_train.h"

/* The first shape field in which a and b differ, or NULL. */
static const char *shape_mismatch(const SsnaConfig *a, const SsnaConfig *b) {
    if (a->variant != b->variant) return "variant";
    if (a->layers != b->layers) return "kept layers (a)";
    if (a->hidden != b->hidden) return "encoder hidden size";
    if (a->d != b->d) return "d";
    if (a->n_experts != b->n_experts) return "experts";
    if (a->tmlp_layers != b->tmlp_layers && a->variant == SSNA_VARIANT_TMLP) return "tmlp layers";
    if (a->n_blocks != b->n_blocks) return "blocks";
    if (a->n_heads != b->n_heads) return "heads";
    if (a->inner != b->inner) return "inner";
    if (a->max_len != b->max_len) return "max_len";
    // an item that arrives online has no trained ID row: the arm's items are their text alone
    if (a->item_ids != b->item_ids) return "item ids (ssnad's items are text alone)";
    // the serving path (int8 bounds, published scores) is built on unit vectors
    if (a->score != b->score) return "score (ssnad serves cos, not dot)";
    if (a->tau != b->tau) return "tau"; // online steps would train another objective
    return NULL;
}

int ssnad_warm_start(Ssnad *d, SsnadVariant *v, char *err, size_t errlen) {
    const char *path = v->cv.init;
    char why[512];
    SsnaModel m;
    SsnaTrainState st;
    if (ssna_checkpoint_load(path, 1, &m, &st, NULL, NULL, why, sizeof why)) {
        return errmsg_fail(err, errlen, "variant %s: init: %s", v->cv.label, why);
    }
    int rc = -1;
    // the run metadata holds the store identity `ssna embed` wrote: {"encoder":<encoder>,...}
    char enc[4096];
    snprintf(enc, sizeof enc, "{\"encoder\":%s,", encoder_identity(d->enc));
    const char *mismatch = shape_mismatch(&m.cfg, &v->train.cfg);
    if (!strstr(st.meta, enc))
        snprintf(err, errlen,
                 "variant %s: init %s was trained on item states of another encoder (its run: "
                 "%.300s) than model.dir's",
                 v->cv.label, path, st.meta);
    else if (!strstr(st.meta, "\"pooling\":\"cls\""))
        snprintf(err, errlen,
                 "variant %s: init %s was trained on states not pooled as ssnad's ([CLS])",
                 v->cv.label, path);
    else if (mismatch && !strcmp(mismatch, "d")) // the one shape an arm option can match
        snprintf(err, errlen,
                 "variant %s: init %s differs in its d (the checkpoint is %d wide, the arm %d: "
                 "name its width in the arm, :d=%d)",
                 v->cv.label, path, m.cfg.d, v->train.cfg.d, m.cfg.d);
    else if (mismatch)
        snprintf(err, errlen, "variant %s: init %s differs in its %s (it is a %s a=%d model)",
                 v->cv.label, path, mismatch, ssna_variant_name(m.cfg.variant), m.cfg.layers);
    else if (m.ps.total != v->train.ps.total)
        snprintf(err, errlen, "variant %s: init %s has %zu parameters, the arm %zu", v->cv.label,
                 path, m.ps.total, v->train.ps.total);
    else
        rc = 0;
    if (!rc) {
        size_t bytes = m.ps.total * sizeof(float);
        memcpy(v->train.ps.params, m.ps.params, bytes);
        memcpy(v->serve.ps.params, m.ps.params, bytes);
        v->warm_unsaved = 1, d->warm_unsaved++; // checkpoints until a snapshot of it is committed
        log_info("model initialised", LOG_STR("variant", v->cv.label), LOG_STR("from", path),
                 LOG_INT("offline_epoch", st.best_epoch));
    }
    ssna_free(&m);
    return rc;
}
