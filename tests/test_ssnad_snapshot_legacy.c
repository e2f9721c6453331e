/* test_ssnad_snapshot_legacy.c - a store written before model snapshots moved to db/models kept
 * each variant's model as the checkpoint "model:<label>" in the main store ("ssnad-model v1
 * <label>\n" + params_serialize). ssnad_snapshot_load must still restore it into both copies
 * (parameters, Adam state, step), refuse a blob of another variant under that name with an error
 * naming the store, and report nothing found in a store with neither kind of model. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "daemon/ssnad.h"

#define LABEL "gru:a=3"

/* A model of seed 11 with a step count and moments, as an old ssnad committed it under name. */
static void put_legacy_model(Store *s, const char *name, const char *label, SsnaModel *m) {
    char err[256];
    SsnaConfig cfg = ssna_config_default(SSNA_VARIANT_GRU, 50, 32, 3);
    CHECK_MSG(ssna_create(m, &cfg, 11, err, sizeof err) == 0, "%s", err);
    m->ps.step = 123;
    for (size_t i = 0; i < m->ps.total; i++) m->ps.m[i] = 1e-3f * (float)(i % 17);
    void *pb = NULL;
    size_t plen = params_serialize(&m->ps, &pb);
    char head[128];
    int hl = snprintf(head, sizeof head, "ssnad-model v1 %s\n", label);
    char *blob = malloc((size_t)hl + plen);
    CHECK(plen > 0 && blob != NULL);
    memcpy(blob, head, (size_t)hl);
    memcpy(blob + hl, pb, plen);
    StoreTxn *t = NULL;
    CHECK(store_txn_begin(s, &t, err, sizeof err) == 0);
    CHECK_MSG(store_put_checkpoint(t, name, blob, (size_t)hl + plen, err, sizeof err) == 0, "%s",
              err);
    CHECK(store_txn_commit(t, STORE_COMMIT_SYNC, err, sizeof err) == 0);
    free(blob), free(pb);
}

/* ssnad_snapshot_load of variant LABEL from the store at dir; fresh models of seed 5 first. */
static int load(const char *dir, SsnadVariant *v, int *found, char *err, size_t errlen) {
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
    snprintf(dv->cv.label, sizeof dv->cv.label, "%s", LABEL);
    SsnaConfig mc = ssna_config_default(SSNA_VARIANT_GRU, 50, 32, 3);
    CHECK(ssna_create(&dv->train, &mc, 5, err, errlen) == 0);
    CHECK(ssna_create(&dv->serve, &mc, 5, err, errlen) == 0);
    int rc = ssnad_snapshot_load(d, 0, found, err, errlen);
    *v = *dv; // the caller frees the models
    ssnad_snapshot_close(d);
    CHECK(d->snaps == NULL);
    store_txn_abort(d->txn);
    store_close(d->store);
    free(d);
    config_free(&cfg);
    return rc;
}

int main(void) {
    char root[64], dir[600], err[512] = "";
    check_temp_dir(root, sizeof root, "legacy");
    Store *s = NULL;
    SsnaModel saved;
    SsnadVariant v;
    int found = -1;

    // an old store with this variant's model
    snprintf(dir, sizeof dir, "%s/old", root);
    CHECK(store_open(&s, dir, NULL, err, sizeof err) == 0);
    put_legacy_model(s, "model:" LABEL, LABEL, &saved);
    store_close(s);
    memset(&v, 0, sizeof v);
    CHECK_MSG(load(dir, &v, &found, err, sizeof err) == 0, "%s", err);
    CHECK(found == SSNAD_SNAPSHOT_LEGACY);
    CHECK(v.train.ps.step == 123 && v.serve.ps.step == 123);
    size_t bytes = saved.ps.total * sizeof(float);
    CHECK_MSG(!memcmp(v.train.ps.params, saved.ps.params, bytes) &&
                  !memcmp(v.serve.ps.params, saved.ps.params, bytes),
              "restored parameters differ from the stored ones");
    CHECK_MSG(!memcmp(v.train.ps.m, saved.ps.m, bytes), "Adam moments not restored");
    ssna_free(&v.train), ssna_free(&v.serve), ssna_free(&saved);

    // another variant's model under this variant's name
    snprintf(dir, sizeof dir, "%s/other", root);
    CHECK(store_open(&s, dir, NULL, err, sizeof err) == 0);
    put_legacy_model(s, "model:" LABEL, "mean:a=3", &saved);
    store_close(s);
    memset(&v, 0, sizeof v);
    CHECK(load(dir, &v, &found, err, sizeof err) == -1 && found == 0);
    CHECK_MSG(strstr(err, dir) && strstr(err, "model:" LABEL) && strstr(err, "not a model of"),
              "error: %s", err);
    ssna_free(&v.train), ssna_free(&v.serve), ssna_free(&saved);

    // a store with no model at all
    snprintf(dir, sizeof dir, "%s/empty", root);
    memset(&v, 0, sizeof v);
    CHECK_MSG(load(dir, &v, &found, err, sizeof err) == 0, "%s", err);
    CHECK(found == 0 && v.train.ps.step == 0);
    ssna_free(&v.train), ssna_free(&v.serve);

    check_remove_tree(root);
    return check_done();
}
