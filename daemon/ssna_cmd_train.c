/* ssna train / eval / recommend - offline SSNA: train with leave-one-out early stopping,
 * evaluate a checkpoint against all items, print one user's top-k. */
#include <cblas.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "daemon/ssna_cmd.h"
#include "daemon/ssna_train_cli.h"
#include "model/errmsg.h"
#include "model/fileio.h"
#include "daemon/ssna_data.h"
#include "ingest/interactions.h"
#include "ingest/items.h"
#include "model/pool.h"
#include "model/popularity.h"
#include "model/ssna.h"
#include "model/ssna_train.h"
#include "store/store.h"
#include "model/clock.h"

typedef struct {
    Interactions inter;
    float *states; /* [n_items, layers, hidden] or NULL (id variant) */
    int hidden;
    char identity[2048]; /* encoder identity JSON, "null" without states */
    char name[256];      /* UniSRec dataset name, "" for a CSV file */
} Dataset;

/* ---- small helpers -------------------------------------------------------------------------- */

static double peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0; /* ru_maxrss is in KiB on Linux */
}

static void metrics_json(char *buf, size_t len, const double v[4]) {
    snprintf(buf, len, "{\"recall@10\":%.6f,\"recall@50\":%.6f,\"ndcg@10\":%.6f,\"ndcg@50\":%.6f}",
             v[0], v[1], v[2], v[3]);
}

static void metrics_values(const Metrics *m, double v[4]) {
    v[0] = metrics_recall(m, 0), v[1] = metrics_recall(m, 1);
    v[2] = metrics_ndcg(m, 0), v[3] = metrics_ndcg(m, 1);
}

/* ---- data ----------------------------------------------------------------------------------- */

static int load_interactions(const SsnaTrainOptions *o, Dataset *ds, char *err, size_t errlen) {
    return ssna_data_load(o->data, o->name, o->k_core, o->max_len, &ds->inter, ds->name,
                          sizeof ds->name, err, errlen);
}

/* Item states of every item of the data set from the LMDB cache `ssna embed` filled. */
static int load_states(const SsnaTrainOptions *o, Dataset *ds, int layers, char *err,
                       size_t errlen) {
    snprintf(ds->identity, sizeof ds->identity, "null");
    if (o->variant == SSNA_VARIANT_ID) return 0;
    if (!o->db) {
        return errmsg_fail(err, errlen, "--db DIR is required: variant %s reads cached item states",
                           ssna_variant_name((SsnaVariant)o->variant));
    }
    Store *s = NULL;
    StoreOptions so = {0};
    so.read_only = 1;
    StoreItemShape shape;
    int rc = -1;
    float *one = NULL;
    if (store_open(&s, o->db, &so, err, errlen) || store_item_shape(s, &shape, err, errlen) ||
        store_get_identity(s, ds->identity, sizeof ds->identity, err, errlen))
        goto done;
    if (layers > shape.layers) {
        snprintf(err, errlen, "%s: caches %d layers per item, --layers %d asks for more", o->db,
                 shape.layers, layers);
        goto done;
    }
    int n = ds->inter.n_items, H = ds->hidden = shape.hidden;
    ds->states = malloc((size_t)n * layers * H * sizeof(float));
    one = malloc((size_t)shape.layers * H * sizeof(float));
    if (!ds->states || !one) {
        snprintf(err, errlen, "out of memory for %d item states", n);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        int got = store_get_item(s, NULL, ds->inter.item_ids[i], NULL, one,
                                 (size_t)shape.layers * H, err, errlen);
        if (got == STORE_NOTFOUND) {
            snprintf(err, errlen, "%s: item '%s' (index %d) has no cached states; run ssna embed",
                     o->db, ds->inter.item_ids[i], i);
            goto done;
        }
        if (got != STORE_OK) goto done;
        /* rows are top layer first, so the top `layers` rows are the kept ones */
        memcpy(ds->states + (size_t)i * layers * H, one, (size_t)layers * H * sizeof(float));
    }
    rc = 0;
done:
    free(one);
    store_close(s);
    return rc;
}

static void dataset_free(Dataset *ds) {
    interactions_free(&ds->inter);
    free(ds->states);
}

static SsnaSequences dataset_sequences(const Dataset *ds) {
    SsnaSequences s = {ds->inter.n_users, ds->inter.offsets, ds->inter.items};
    return s;
}

/* ---- train ---------------------------------------------------------------------------------- */

/* One progress line; test (may be NULL) is --test-curve's figures for this epoch. */
static void print_epoch(int epoch, double loss, const double v[4], const double *test,
                        double train_s, double eval_s, int improved) {
    char tc[96] = "";
    if (test)
        snprintf(tc, sizeof tc, "  test R@10 %.4f R@50 %.4f N@10 %.4f N@50 %.4f", test[0], test[1],
                 test[2], test[3]);
    fprintf(stderr,
            "epoch %3d  loss %.4f  valid R@10 %.4f R@50 %.4f N@10 %.4f N@50 %.4f%s  train %.1fs "
            "eval %.1fs  peak RSS %.0f MB%s\n",
            epoch, loss, v[0], v[1], v[2], v[3], tc, train_s, eval_s, peak_rss_mb(),
            improved ? "  *" : "");
}

static int train_run(const SsnaTrainOptions *o, Dataset *ds, SsnaModel *m, SsnaTrainState *st,
                     void **best, size_t *best_len, double *eval_total, char *err, size_t errlen) {
    SsnaSequences seq = dataset_sequences(ds);
    AdamConfig adam = adam_defaults();
    adam.lr = o->lr;
    while (st->epoch < o->epochs && (st->best_epoch == 0 || st->bad_epochs < o->patience)) {
        double t0 = clock_monotonic_s(), loss;
        int steps;
        m->rng = st->model_rng;
        if (ssna_train_epoch(m, ds->states, &seq, o->batch, &adam, &st->shuffle_rng, &loss, &steps,
                             err, errlen))
            return -1;
        st->model_rng = m->rng;
        double t1 = clock_monotonic_s();
        Metrics valid, test;
        if (ssna_evaluate(m, ds->states, &seq, SSNA_SPLIT_VALID, o->eval_batch, &valid, err,
                          errlen))
            return -1;
        double v[4];
        metrics_values(&valid, v);
        st->epoch++;
        int improved = st->best_epoch == 0 || v[0] > st->best_valid[0];
        // the test split is ranked for the best epoch only, unless --test-curve asks every epoch
        double tv[4] = {0};
        if (improved || o->test_curve) {
            if (ssna_evaluate(m, ds->states, &seq, SSNA_SPLIT_TEST, o->eval_batch, &test, err,
                              errlen))
                return -1;
            metrics_values(&test, tv);
        }
        if (improved) {
            memcpy(st->best_valid, v, sizeof v);
            memcpy(st->best_test, tv, sizeof tv);
            st->best_epoch = st->epoch;
            st->bad_epochs = 0;
            free(*best);
            *best_len = params_serialize(&m->ps, best);
        } else {
            st->bad_epochs++;
        }
        double t2 = clock_monotonic_s();
        st->train_seconds += t1 - t0;
        *eval_total += t2 - t1;
        print_epoch(st->epoch, loss, v, o->test_curve ? tv : NULL, t1 - t0, t2 - t1, improved);
        if (ssna_checkpoint_save(o->out, m, st, *best, *best_len, err, errlen)) return -1;
    }
    return 0;
}

/* ---- most popular --------------------------------------------------------------------------- */

/* One TSV line per evaluated user: external id, 0-based validation rank, test rank. */
static int write_per_user(const char *path, const Dataset *ds, const int *rank_valid,
                          const int *rank_test, char *err, size_t errlen) {
    FileBuffer b;
    if (file_buffer_open(&b, err, errlen)) return -1;
    FILE *f = b.f;
    fprintf(f, "user\tvalid_rank\ttest_rank\n");
    for (int u = 0; u < ds->inter.n_users; u++)
        if (rank_valid[u] >= 0 && rank_test[u] >= 0)
            fprintf(f, "%s\t%d\t%d\n", ds->inter.user_ids[u], rank_valid[u], rank_test[u]);
    return file_buffer_commit(&b, path, err, errlen);
}

/* Counts of the training part and, when ranks are wanted, both splits' ranks per user. */
static int pop_evaluate(const SsnaTrainOptions *o, const Dataset *ds, const long *counts,
                        double v[4], double t[4], long *users, char *err, size_t errlen) {
    const Interactions *in = &ds->inter;
    int *rv = o->per_user ? malloc((size_t)in->n_users * sizeof(int)) : NULL;
    int *rt = o->per_user ? malloc((size_t)in->n_users * sizeof(int)) : NULL, rc = -1;
    Metrics mv, mt;
    if (o->per_user && (!rv || !rt)) {
        snprintf(err, errlen, "out of memory for %d ranks", in->n_users);
        goto done;
    }
    popularity_evaluate(counts, in->n_items, in->n_users, in->offsets, in->items, 0, &mv, rv);
    popularity_evaluate(counts, in->n_items, in->n_users, in->offsets, in->items, 1, &mt, rt);
    metrics_values(&mv, v);
    metrics_values(&mt, t);
    *users = mt.count;
    rc = o->per_user ? write_per_user(o->per_user, ds, rv, rt, err, errlen) : 0;
done:
    free(rv), free(rt);
    return rc;
}

/* ssna train --variant pop: count, evaluate, write the counts; the same progress line and final
 * JSON as a model (one "epoch": the count). */
static int pop_train(const SsnaTrainOptions *o) {
    char err[1024], meta[2048], vj[256], tj[256], *qd = NULL;
    Dataset ds = {0};
    long *counts = NULL, users;
    int rc = 1;
    double v[4], t[4], t0 = clock_monotonic_s();
    if (load_interactions(o, &ds, err, sizeof err)) goto fail;
    counts = malloc((size_t)ds.inter.n_items * sizeof *counts);
    if (!counts) {
        snprintf(err, sizeof err, "out of memory for %d counts", ds.inter.n_items);
        goto fail;
    }
    if (popularity_count(ds.inter.n_users, ds.inter.offsets, ds.inter.items, ds.inter.n_items,
                         counts, err, sizeof err))
        goto fail;
    double t1 = clock_monotonic_s();
    if (pop_evaluate(o, &ds, counts, v, t, &users, err, sizeof err)) goto fail;
    double t2 = clock_monotonic_s();
    if (!(qd = ssna_json_string(o->data))) {
        snprintf(err, sizeof err, "out of memory");
        goto fail;
    }
    snprintf(meta, sizeof meta, "{\"data\":%s,\"k_core\":%d,\"max_len\":%d}", qd, o->k_core,
             o->max_len);
    if (popularity_save(o->out, counts, ds.inter.n_items, meta, err, sizeof err)) goto fail;
    print_epoch(1, 0.0, v, NULL, t1 - t0, t2 - t1, 1);
    metrics_json(vj, sizeof vj, v);
    metrics_json(tj, sizeof tj, t);
    printf("{\"command\":\"train\",\"variant\":\"pop\",\"layers\":0,\"users\":%d,\"items\":%d,"
           "\"epochs\":1,\"best_epoch\":1,\"stopped_early\":false,\"valid\":%s,\"test\":%s,"
           "\"train_seconds\":%.3f,\"seconds_per_epoch\":%.3f,\"eval_seconds_this_run\":%.2f,"
           "\"peak_rss_mb\":%.1f,\"parameters\":0,\"loss\":\"none: item counts of the training "
           "part\",\"run\":%s}\n",
           ds.inter.n_users, ds.inter.n_items, vj, tj, t1 - t0, t1 - t0, t2 - t1, peak_rss_mb(),
           meta);
    rc = 0;
fail:
    if (rc) fprintf(stderr, "ssna train: %s\n", err);
    free(counts), free(qd);
    dataset_free(&ds);
    return rc;
}

/* Counts from a popularity file that must match the data's catalogue. */
static int pop_load(const SsnaTrainOptions *o, Dataset *ds, long **counts, char *meta,
                    size_t metalen, char *err, size_t errlen) {
    int n = 0;
    if (popularity_load(o->ckpt, counts, &n, meta, metalen, err, errlen) ||
        load_interactions(o, ds, err, errlen))
        return -1;
    if (n != ds->inter.n_items) {
        return errmsg_fail(err, errlen, "%s counts %d items, data has %d", o->ckpt, n,
                           ds->inter.n_items);
    }
    return 0;
}

static int pop_eval(const SsnaTrainOptions *o) {
    char err[1024], meta[2048], vj[256], tj[256];
    Dataset ds = {0};
    long *counts = NULL, users = 0;
    double v[4], t[4], t0 = clock_monotonic_s();
    int rc = 1;
    if (pop_load(o, &ds, &counts, meta, sizeof meta, err, sizeof err) ||
        pop_evaluate(o, &ds, counts, v, t, &users, err, sizeof err))
        goto fail;
    metrics_json(vj, sizeof vj, v);
    metrics_json(tj, sizeof tj, t);
    printf("{\"command\":\"eval\",\"weights\":\"counts\",\"variant\":\"pop\",\"layers\":0,"
           "\"epoch\":1,\"best_epoch\":1,\"users\":%ld,\"valid\":%s,\"test\":%s,"
           "\"seconds\":%.2f,\"peak_rss_mb\":%.1f,\"run\":%s}\n",
           users, vj, tj, clock_monotonic_s() - t0, peak_rss_mb(), meta);
    rc = 0;
fail:
    if (rc) fprintf(stderr, "ssna eval: %s\n", err);
    free(counts);
    dataset_free(&ds);
    return rc;
}

int ssna_cmd_train(int argc, char **argv) {
    SsnaTrainOptions o;
    int rc = ssna_train_parse_options("train", argc, argv, &o);
    if (rc >= 0) return rc;
    if (!o.out) {
        fprintf(stderr, "ssna train: --out CKPT is required\n");
        return 2;
    }
    if (o.pop) return pop_train(&o);
    // a second core (OPENBLAS_NUM_THREADS > 1): the pool's helper takes half of every loop, and
    // of every product where OpenBLAS had two threads (model/pool.h)
    if (openblas_get_num_threads() > 1 && pool_set_threads(2))
        fprintf(stderr, "ssna train: no helper thread; elementwise loops run on one core\n");
    char err[1024];
    Dataset ds = {0};
    SsnaModel m = {0};
    SsnaTrainState st;
    memset(&st, 0, sizeof st);
    void *best = NULL;
    size_t best_len = 0;
    double eval_total = 0.0;
    rc = 1;
    FILE *existing = o.resume ? fopen(o.out, "rb") : NULL;
    if (existing) { /* resume: the checkpoint's config decides variant and layers */
        fclose(existing);
        if (ssna_checkpoint_load(o.out, 0, &m, &st, &best, &best_len, err, sizeof err)) goto fail;
        o.variant = m.cfg.variant;
        o.layers = m.cfg.layers;
        fprintf(stderr, "ssna train: resuming %s after epoch %d (best epoch %d)\n", o.out, st.epoch,
                st.best_epoch);
    }
    if (load_interactions(&o, &ds, err, sizeof err) ||
        load_states(&o, &ds, o.layers, err, sizeof err))
        goto fail;
    /* one row per user: at 256 a 610-user set got 3 Adam steps an epoch and early stopping
     * ended a barely trained model (MovieLens, docs/results.md) */
    if (!o.batch)
        o.batch = ds.inter.n_users / 32 < 16    ? 16
                  : ds.inter.n_users / 32 > 256 ? 256
                                                : ds.inter.n_users / 32;
    if (existing) {
        if (m.cfg.n_items != ds.inter.n_items || (ds.states && m.cfg.hidden != ds.hidden)) {
            snprintf(err, sizeof err, "%s was trained on %d items / hidden %d, data has %d / %d",
                     o.out, m.cfg.n_items, m.cfg.hidden, ds.inter.n_items, ds.hidden);
            goto fail;
        }
    } else {
        SsnaConfig cfg = ssna_config_default((SsnaVariant)o.variant, ds.inter.n_items,
                                             ds.states ? ds.hidden : 0, o.layers);
        cfg.loss = (SsnaLoss)o.loss;
        if (o.dropout >= 0) cfg.hidden_dropout = o.dropout;
        if (o.attn_dropout >= 0) cfg.attn_dropout = o.attn_dropout;
        if (o.d) cfg.d = o.d;
        if (o.inner) cfg.inner = o.inner;
        if (o.tau > 0) cfg.tau = o.tau;
        cfg.score = (SsnaScore)o.score;
        cfg.item_ids = o.item_ids;
        if (ssna_create(&m, &cfg, o.seed, err, sizeof err)) goto fail;
        st.shuffle_rng = o.seed * 0x9E3779B97F4A7C15ull + 1;
        st.model_rng = m.rng;
        char *qd = ssna_json_string(o.data), *qb = ssna_json_string(o.db ? o.db : "");
        if (!qd || !qb) {
            free(qd), free(qb);
            snprintf(err, sizeof err, "out of memory");
            goto fail;
        }
        snprintf(st.meta, sizeof st.meta,
                 "{\"data\":%s,\"db\":%s,\"encoder\":%s,\"seed\":%" PRIu64
                 ",\"batch\":%d,\"lr\":%g,\"patience\":%d}",
                 qd, qb, ds.identity, o.seed, o.batch, o.lr, o.patience);
        free(qd), free(qb);
        for (char *p = st.meta; *p; p++) /* the checkpoint header is line based */
            if (*p == '\n' || *p == '\r') *p = ' ';
    }
    fprintf(stderr,
            "ssna train: %s%s, a = %d, loss %s, score %s, %d users, %d items, %zu parameters\n",
            ssna_variant_name(m.cfg.variant), m.cfg.item_ids ? " + item ids" : "", m.cfg.layers,
            ssna_loss_name(m.cfg.loss), ssna_score_name(m.cfg.score), ds.inter.n_users,
            ds.inter.n_items, m.ps.total);
    if (train_run(&o, &ds, &m, &st, &best, &best_len, &eval_total, err, sizeof err)) goto fail;
    char vj[256], tj[256];
    metrics_json(vj, sizeof vj, st.best_valid);
    metrics_json(tj, sizeof tj, st.best_test);
    printf("{\"command\":\"train\",\"variant\":\"%s\",\"layers\":%d,\"users\":%d,\"items\":%d,"
           "\"epochs\":%d,\"best_epoch\":%d,\"stopped_early\":%s,\"valid\":%s,\"test\":%s,"
           "\"train_seconds\":%.2f,\"seconds_per_epoch\":%.3f,\"eval_seconds_this_run\":%.2f,"
           "\"peak_rss_mb\":%.1f,\"parameters\":%zu,\"loss\":\"%s\",\"score\":\"%s\",\"tau\":%.7g,"
           "\"dropout\":%.7g,\"attn_dropout\":%.7g,\"d\":%d,\"inner\":%d,\"item_ids\":%s,"
           "\"run\":%s}\n",
           ssna_variant_name(m.cfg.variant), m.cfg.layers, ds.inter.n_users, ds.inter.n_items,
           st.epoch, st.best_epoch, st.epoch < o.epochs ? "true" : "false", vj, tj,
           st.train_seconds, st.epoch ? st.train_seconds / st.epoch : 0.0, eval_total,
           peak_rss_mb(), m.ps.total, ssna_loss_name(m.cfg.loss), ssna_score_name(m.cfg.score),
           m.cfg.tau, m.cfg.hidden_dropout, m.cfg.attn_dropout, m.cfg.d, m.cfg.inner,
           m.cfg.item_ids ? "true" : "false", st.meta);
    rc = 0;
fail:
    if (rc) fprintf(stderr, "ssna train: %s\n", err);
    free(best);
    ssna_free(&m);
    dataset_free(&ds);
    return rc;
}

/* ---- eval / recommend ----------------------------------------------------------------------- */

/* Load a checkpoint plus the data and states it needs. */
static int load_for_inference(SsnaTrainOptions *o, int best, SsnaModel *m, SsnaTrainState *st,
                              Dataset *ds, char *err, size_t errlen) {
    if (!o->ckpt) {
        return errmsg_fail(err, errlen, "--ckpt CKPT is required");
    }
    if (ssna_checkpoint_load(o->ckpt, best, m, st, NULL, NULL, err, errlen)) return -1;
    o->variant = m->cfg.variant;
    if (load_interactions(o, ds, err, errlen) || load_states(o, ds, m->cfg.layers, err, errlen))
        return -1;
    if (m->cfg.n_items != ds->inter.n_items || (ds->states && m->cfg.hidden != ds->hidden)) {
        return errmsg_fail(err, errlen, "%s was trained on %d items / hidden %d, data has %d / %d",
                           o->ckpt, m->cfg.n_items, m->cfg.hidden, ds->inter.n_items, ds->hidden);
    }
    return 0;
}

int ssna_cmd_eval(int argc, char **argv) {
    SsnaTrainOptions o;
    int rc = ssna_train_parse_options("eval", argc, argv, &o);
    if (rc >= 0) return rc;
    char err[1024];
    Dataset ds = {0};
    SsnaModel m = {0};
    SsnaTrainState st;
    if (o.ckpt && popularity_is_file(o.ckpt)) return pop_eval(&o);
    rc = 1;
    int *rv = NULL, *rt = NULL;
    double t0 = clock_monotonic_s();
    if (load_for_inference(&o, !o.latest, &m, &st, &ds, err, sizeof err)) goto fail;
    SsnaSequences seq = dataset_sequences(&ds);
    Metrics mv, mt;
    if (o.per_user) {
        rv = malloc((size_t)ds.inter.n_users * sizeof(int));
        rt = malloc((size_t)ds.inter.n_users * sizeof(int));
        if (!rv || !rt) {
            snprintf(err, sizeof err, "out of memory for %d ranks", ds.inter.n_users);
            goto fail;
        }
    }
    if (ssna_evaluate_ranks(&m, ds.states, &seq, SSNA_SPLIT_VALID, o.eval_batch, &mv, rv, err,
                            sizeof err) ||
        ssna_evaluate_ranks(&m, ds.states, &seq, SSNA_SPLIT_TEST, o.eval_batch, &mt, rt, err,
                            sizeof err) ||
        (o.per_user && write_per_user(o.per_user, &ds, rv, rt, err, sizeof err)))
        goto fail;
    double v[4], t[4];
    metrics_values(&mv, v);
    metrics_values(&mt, t);
    char vj[256], tj[256];
    metrics_json(vj, sizeof vj, v);
    metrics_json(tj, sizeof tj, t);
    printf("{\"command\":\"eval\",\"weights\":\"%s\",\"variant\":\"%s\",\"layers\":%d,"
           "\"epoch\":%d,\"best_epoch\":%d,\"users\":%ld,\"valid\":%s,\"test\":%s,"
           "\"seconds\":%.2f,\"peak_rss_mb\":%.1f,\"run\":%s}\n",
           o.latest ? "latest" : "best", ssna_variant_name(m.cfg.variant), m.cfg.layers, st.epoch,
           st.best_epoch, mt.count, vj, tj, clock_monotonic_s() - t0, peak_rss_mb(), st.meta);
    rc = 0;
fail:
    if (rc) fprintf(stderr, "ssna eval: %s\n", err);
    free(rv), free(rt);
    ssna_free(&m);
    dataset_free(&ds);
    return rc;
}

/* The item-text file: --text, else the UniSRec NAME.text or NAME.item; NULL when none. */
static ItemsReader *open_texts(const SsnaTrainOptions *o, const Dataset *ds) {
    static const char *const suffixes[] = {"text", "item"};
    ItemsReader *r = NULL;
    char path[4096], err[512];
    if (o->text) {
        if (items_open(&r, o->text, ITEMS_FORMAT_AUTO, err, sizeof err)) {
            fprintf(stderr, "ssna recommend: %s\n", err);
            return NULL;
        }
        return r;
    }
    for (int i = 0; ds->name[0] && i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s.%s", o->data, ds->name, suffixes[i]);
        if (!items_open(&r, path, ITEMS_FORMAT_AUTO, err, sizeof err)) return r;
    }
    return NULL;
}

/* One line per recommended item: rank, id, score, text (found in the item-text file). */
static void print_recommendations(const SsnaTrainOptions *o, const Dataset *ds, const int *ids,
                                  const float *scores, int k) {
    char **texts = calloc((size_t)k, sizeof *texts), err[512];
    ItemsReader *r = texts ? open_texts(o, ds) : NULL;
    ItemText it;
    int got;
    while (r && (got = items_next(r, &it, err, sizeof err)) != 0) {
        if (got < 0) continue; /* a malformed line elsewhere does not hide the others */
        for (int j = 0; j < k; j++)
            if (ids[j] >= 0 && !texts[j] && !strcmp(ds->inter.item_ids[ids[j]], it.id))
                texts[j] = strdup(it.text);
    }
    items_close(r);
    for (int j = 0; j < k && ids[j] >= 0; j++)
        printf("%2d  %-12s  %.4f  %s\n", j + 1, ds->inter.item_ids[ids[j]], scores[j],
               texts && texts[j] ? texts[j] : "(no text)");
    for (int j = 0; texts && j < k; j++) free(texts[j]);
    free(texts);
}

int ssna_cmd_recommend(int argc, char **argv) {
    SsnaTrainOptions o;
    int rc = ssna_train_parse_options("recommend", argc, argv, &o);
    if (rc >= 0) return rc;
    char err[1024];
    Dataset ds = {0};
    SsnaModel m = {0};
    SsnaTrainState st;
    float *raw = NULL, *norm = NULL, *scores = NULL;
    int *ids = NULL;
    rc = 1;
    long *counts = NULL;
    if (!o.user) {
        snprintf(err, sizeof err, "--user ID is required");
        goto fail;
    }
    int pop = o.ckpt && popularity_is_file(o.ckpt);
    if (pop ? pop_load(&o, &ds, &counts, NULL, 0, err, sizeof err)
            : load_for_inference(&o, 1, &m, &st, &ds, err, sizeof err))
        goto fail;
    int u = -1;
    for (int i = 0; i < ds.inter.n_users && u < 0; i++)
        if (!strcmp(ds.inter.user_ids[i], o.user)) u = i;
    if (u < 0) {
        snprintf(err, sizeof err, "no user '%s' in %s", o.user, o.data);
        goto fail;
    }
    size_t nd = pop ? 1 : (size_t)m.cfg.n_items * m.cfg.d;
    raw = malloc(nd * sizeof(float)), norm = malloc(nd * sizeof(float));
    ids = malloc((size_t)o.k * sizeof(int)), scores = malloc((size_t)o.k * sizeof(float));
    if (!raw || !norm || !ids || !scores) {
        snprintf(err, sizeof err, "out of memory");
        goto fail;
    }
    const int *seq = ds.inter.items + ds.inter.offsets[u];
    int n = ds.inter.offsets[u + 1] - ds.inter.offsets[u];
    if (pop) { /* the score printed is the item's training count */
        popularity_top_k(counts, ds.inter.n_items, seq, o.include_seen ? 0 : n, o.k, ids);
        for (int j = 0; j < o.k; j++) scores[j] = ids[j] >= 0 ? (float)counts[ids[j]] : 0.0f;
    } else if (ssna_item_vectors(&m, ds.states, NULL, m.cfg.n_items, raw, norm, err, sizeof err) ||
               ssna_top_k(&m, raw, norm, seq, n, o.k, !o.include_seen, ids, scores, err,
                          sizeof err))
        goto fail;
    printf("user %s: %d items seen, last: %s\n", o.user, n, ds.inter.item_ids[seq[n - 1]]);
    print_recommendations(&o, &ds, ids, scores, o.k);
    rc = 0;
fail:
    if (rc) fprintf(stderr, "ssna recommend: %s\n", err);
    free(raw), free(norm), free(ids), free(scores), free(counts);
    ssna_free(&m);
    dataset_free(&ds);
    return rc;
}
