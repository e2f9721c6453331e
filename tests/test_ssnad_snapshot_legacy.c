/* test_ssnad_snapshot_legacy.c - stores written by older ssnad versions.
 *
 * Before model snapshots moved to db/models, a store kept each variant's model as the checkpoint
 * "model:<label>" in the main store ("ssnad-model v1 <label>\n" + params_serialize).
 * ssnad_snapshot_load must still restore it into both copies (parameters, Adam state, step),
 * refuse a blob of another variant under that name with an error naming the store, and report
 * nothing found in a store with neither kind of model.
 *
 * Before 2026-12-07 every arm was 256 wide; arms from random weights are 64 wide now
 * (CONFIG_VARIANT_COLD_D), and a store of then holds 256-wide models under labels without ":d=N".
 * For such a store (its models in db/models slots, or in the main store) ssnad_snapshot_load must
 *   - refuse the default arm "gru:a=3" (now 64 wide) with an error that names the snapshot and
 *     says how to go on with the model ("gru:a=3:d=256");
 *   - restore that model into "gru:a=3:d=256" (parameters, Adam moments, step), reported as not
 *     the arm's own snapshot, so that its first snapshot is written under its own label;
 *   - start "gru:a=3:d=64" from its fresh weights (the saved model does not fit it).
 * And an arm with its own model under its label never looks under the bare label. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "daemon/ssnad.h"

#define BARE "gru:a=3"

/* A gru a=3 model of width d and seed 11 with a step count and moments, as an older ssnad saved
 * it: under model_ref + slot 1 in db/models (slots = 1), or as "model:<label>" in the
 * main store (slots = 0). */
static void put_model(const char *dir, const char *label, int d, int slots, SsnaModel *m) {
    char err[256], name[160];
    SsnaConfig cfg = ssna_config_default(SSNA_VARIANT_GRU, 50, 32, 3);
    cfg.d = d;
    CHECK_MSG(ssna_create(m, &cfg, 11, err, sizeof err) == 0, "%s", err);
    m->ps.step = 123;
    for (size_t i = 0; i < m->ps.total; i++) m->ps.m[i] = 1e-3f * (float)(i % 17);
    void *pb = NULL;
    size_t plen = params_serialize(&m->ps, &pb);
    char head[128];
    int hl = snprintf(head, sizeof head, "ssnad-model v1 %s\n", label);
    char *blob = malloc((size_t)hl + plen);
    CHECK(plen > 0 && blob != NULL);
    memcpy(blob, head, (size_t)hl), memcpy(blob + hl, pb, plen);
    Store *main_store = NULL, *models = NULL;
    StoreTxn *t = NULL;
    char models_dir[700];
    snprintf(models_dir, sizeof models_dir, "%s/models", dir);
    CHECK(store_open(&main_store, dir, NULL, err, sizeof err) == 0);
    if (slots) {
        CHECK(store_open(&models, models_dir, NULL, err, sizeof err) == 0);
        snprintf(name, sizeof name, "model:%s:1", label);
        CHECK(store_txn_begin(models, &t, err, sizeof err) == 0);
        CHECK(store_put_checkpoint(t, name, blob, (size_t)hl + plen, err, sizeof err) == 0);
        CHECK(store_txn_commit(t, STORE_COMMIT_SYNC, err, sizeof err) == 0);
        store_close(models);
        snprintf(name, sizeof name, "model_ref:%s", label);
        const char *ref = "ssnad-model-ref v1 1 123";
        CHECK(store_txn_begin(main_store, &t, err, sizeof err) == 0);
        CHECK(store_put_checkpoint(t, name, ref, strlen(ref), err, sizeof err) == 0);
    } else {
        snprintf(name, sizeof name, "model:%s", label);
        CHECK(store_txn_begin(main_store, &t, err, sizeof err) == 0);
        CHECK(store_put_checkpoint(t, name, blob, (size_t)hl + plen, err, sizeof err) == 0);
    }
    CHECK(store_txn_commit(t, STORE_COMMIT_SYNC, err, sizeof err) == 0);
    store_close(main_store);
    free(blob), free(pb);
}

/* ssnad_snapshot_load of the arm `spec` (config_parse_variants) from the store at dir into *v,
 * fresh models of seed 5 and the arm's width first. */
static int load(const char *dir, const char *spec, SsnadVariant *v, int *found, char *err,
                size_t errlen) {
    DaemonConfig cfg;
    config_init(&cfg);
    snprintf(cfg.db_path, sizeof cfg.db_path, "%s", dir);
    Ssnad *d = calloc(1, sizeof *d);
    d->cfg = &cfg;
    CHECK(store_open(&d->store, dir, NULL, err, errlen) == 0);
    CHECK(store_txn_begin(d->store, &d->txn, err, errlen) == 0);
    CHECK(ssnad_snapshot_open(d, err, errlen) == 0);
    SsnadVariant *dv = &d->var[0];
    d->n_var = 1;
    int n = 0;
    CHECK_MSG(config_parse_variants(spec, &dv->cv, 1, &n, err, errlen) == 0 && n == 1, "%s", err);
    SsnaConfig mc = ssna_config_default(SSNA_VARIANT_GRU, 50, 32, 3);
    mc.d = dv->cv.d;
    CHECK(ssna_create(&dv->train, &mc, 5, err, errlen) == 0);
    CHECK(ssna_create(&dv->serve, &mc, 5, err, errlen) == 0);
    int rc = ssnad_snapshot_load(d, 0, found, err, errlen);
    *v = *dv; // the caller frees the models
    ssnad_snapshot_close(d);
    store_txn_abort(d->txn);
    store_close(d->store);
    free(d);
    config_free(&cfg);
    return rc;
}

/* v holds saved's parameters, moments and step in both copies. */
static int same_model(const SsnadVariant *v, const SsnaModel *saved) {
    if (v->train.ps.total != saved->ps.total || v->serve.ps.total != saved->ps.total) return 0;
    size_t bytes = saved->ps.total * sizeof(float);
    return v->train.ps.step == saved->ps.step && v->serve.ps.step == saved->ps.step &&
           !memcmp(v->train.ps.params, saved->ps.params, bytes) &&
           !memcmp(v->serve.ps.params, saved->ps.params, bytes) &&
           !memcmp(v->train.ps.m, saved->ps.m, bytes);
}

/* Put the main store's checkpoint `from` of dir under the name `to` as well. */
static void rename_checkpoint(const char *dir, const char *from, const char *to) {
    char err[256];
    Store *s = NULL;
    StoreTxn *t = NULL;
    void *blob = NULL;
    size_t len = 0;
    CHECK(store_open(&s, dir, NULL, err, sizeof err) == 0);
    CHECK(store_txn_begin(s, &t, err, sizeof err) == 0);
    CHECK(store_get_checkpoint(s, t, from, &blob, &len, err, sizeof err) == 0);
    CHECK(store_put_checkpoint(t, to, blob, len, err, sizeof err) == 0);
    CHECK(store_txn_commit(t, STORE_COMMIT_SYNC, err, sizeof err) == 0);
    store_close(s);
    free(blob);
}

/* The model of a store from before db/models: restored; another variant's: refused; none. */
static void check_pre_snapshot_store(const char *root) {
    char dir[600], err[1024] = "";
    SsnaModel saved;
    SsnadVariant v;
    int found = -1;

    // an old store with this variant's model
    snprintf(dir, sizeof dir, "%s/old", root);
    put_model(dir, BARE, CONFIG_VARIANT_COLD_D, 0, &saved);
    memset(&v, 0, sizeof v);
    CHECK_MSG(load(dir, BARE, &v, &found, err, sizeof err) == 0, "%s", err);
    CHECK(found == SSNAD_SNAPSHOT_LEGACY);
    CHECK_MSG(same_model(&v, &saved), "restored parameters or moments differ from the stored ones");
    ssna_free(&v.train), ssna_free(&v.serve), ssna_free(&saved);

    // another variant's model under this variant's name
    snprintf(dir, sizeof dir, "%s/other", root);
    put_model(dir, "mean:a=3", CONFIG_VARIANT_COLD_D, 0, &saved);
    rename_checkpoint(dir, "model:mean:a=3", "model:" BARE);
    memset(&v, 0, sizeof v);
    CHECK(load(dir, BARE, &v, &found, err, sizeof err) == -1 && found == 0);
    CHECK_MSG(strstr(err, dir) && strstr(err, "model:" BARE) && strstr(err, "not a model of"),
              "error: %s", err);
    ssna_free(&v.train), ssna_free(&v.serve), ssna_free(&saved);

    // a store with no model at all
    snprintf(dir, sizeof dir, "%s/empty", root);
    memset(&v, 0, sizeof v);
    CHECK_MSG(load(dir, BARE, &v, &found, err, sizeof err) == 0, "%s", err);
    CHECK(found == 0 && v.train.ps.step == 0);
    ssna_free(&v.train), ssna_free(&v.serve);
}

static void check_old_store(const char *root, int slots) {
    char dir[600], err[1024] = "";
    SsnaModel saved;
    SsnadVariant v;
    int found = -1;
    snprintf(dir, sizeof dir, "%s/old%d", root, slots);
    put_model(dir, BARE, 256, slots, &saved);

    // the default arm is 64 wide now: refused, naming the snapshot and the way to keep it
    memset(&v, 0, sizeof v);
    CHECK(v.cv.d == 0);
    CHECK(load(dir, BARE, &v, &found, err, sizeof err) == -1 && found == 0);
    CHECK_MSG(strstr(err, dir) && strstr(err, slots ? "model:" BARE ":1" : "model:" BARE) &&
                  strstr(err, "d = 64") && strstr(err, BARE ":d=256 goes on with that model"),
              "error: %s", err);
    ssna_free(&v.train), ssna_free(&v.serve);

    // the arm that names the old width goes on with it
    memset(&v, 0, sizeof v);
    CHECK_MSG(load(dir, BARE ":d=256", &v, &found, err, sizeof err) == 0, "%s", err);
    CHECK_MSG(found == SSNAD_SNAPSHOT_LEGACY, "found %d", found);
    CHECK_MSG(same_model(&v, &saved), "the 256-wide model was not restored (slots %d)", slots);
    ssna_free(&v.train), ssna_free(&v.serve);

    // a new 64-wide arm beside it starts from its own weights
    memset(&v, 0, sizeof v);
    CHECK_MSG(load(dir, BARE ":d=64", &v, &found, err, sizeof err) == 0, "%s", err);
    CHECK(found == 0 && v.train.cfg.d == 64 && v.train.ps.step == 0);
    ssna_free(&v.train), ssna_free(&v.serve), ssna_free(&saved);
}

int main(void) {
    char root[64], dir[600], err[1024] = "";
    check_temp_dir(root, sizeof root, "legacy");
    check_pre_snapshot_store(root);
    check_old_store(root, 1);
    check_old_store(root, 0);

    // an arm's own model wins over the bare label's, which is not read at all (here it is not
    // even a model of this variant)
    SsnaModel own, other;
    SsnadVariant v;
    int found = -1;
    snprintf(dir, sizeof dir, "%s/both", root);
    put_model(dir, BARE ":d=128", 128, 1, &own);
    put_model(dir, "mean:a=3", 256, 0, &other);
    rename_checkpoint(dir, "model:mean:a=3", "model:" BARE);
    memset(&v, 0, sizeof v);
    CHECK_MSG(load(dir, BARE ":d=128", &v, &found, err, sizeof err) == 0, "%s", err);
    CHECK(found == SSNAD_SNAPSHOT_SLOT && same_model(&v, &own));
    ssna_free(&v.train), ssna_free(&v.serve);
    // without a model of its own the arm does look there, and a blob of another variant under
    // that name is an error, not a fresh start
    memset(&v, 0, sizeof v);
    CHECK(load(dir, BARE ":d=96", &v, &found, err, sizeof err) == -1 && found == 0);
    CHECK_MSG(strstr(err, "not a model of variant " BARE), "error: %s", err);
    ssna_free(&v.train), ssna_free(&v.serve), ssna_free(&own), ssna_free(&other);

    check_remove_tree(root);
    return check_done();
}
