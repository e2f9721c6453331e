/* ssnad_publish.c - top-k for a user from the serving model of the user's variant, the
 * Recommendations messages for users whose sequence changed, and /recommend.
 *
 * A list never holds an item of the user's own (last 50) sequence, nor an item whose states have
 * not arrived (catalogue placeholders). Scores are cos(u, v*) / tau, best first. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "daemon/ssnad.h"
#include "ingest/codec.h"
#include "model/errmsg.h"

/* The publish helper: the second half of a batch's user tower (rows) and of its scoring (items)
 * on the other core while the main thread computes the first (ssnad_publish.c). */
enum { SCORER_TOWER, SCORER_SCORE };
enum { SCORER_IDLE, SCORER_POSTED, SCORER_RUNNING };
struct SsnadScorer {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int threaded, stop; // threaded: a thread runs the jobs (not so for a stalled helper)
    int job; // SCORER_IDLE, SCORER_POSTED (the main thread may still take it back), SCORER_RUNNING
    // the job (set by the main thread while the helper is idle): kind, variant vi, the batch
    // (seqs, lens, rows[0..nb) with items, k), then the tower's rows[lo..hi) into user, or the
    // top-k over items [i0, i1) of user [nb, d] into ids/scores/counts
    int kind, vi, k, nb, lo, hi, i0, i1, rc;
    const uint32_t *const *seqs;
    const int *lens, *rows;
    float *user;
    int32_t *ids;
    float *scores;
    int *counts;
    char err[256];
};

#define SCORE_BLOCK   4096 // items per bound pass: scratch [B, 4096] whatever the catalogue
#define PUBLISH_BATCH 128  // dirty users whose lists are computed together

/* Insert (id, s) into a row's top-k, kept sorted best first; *n entries so far. */
static void top_k_insert(int32_t *ids, float *scores, int *n, int k, int32_t id, float s) {
    if (*n == k && s <= scores[k - 1]) return;
    int p = *n < k ? (*n)++ : k - 1;
    while (p > 0 && scores[p - 1] < s) {
        scores[p] = scores[p - 1], ids[p] = ids[p - 1];
        p--;
    }
    scores[p] = s, ids[p] = id;
}

/* User vectors of rows[lo..hi) (indexes into seqs/lens, each with at least one item) with
 * serving copy m of v: user [hi - lo, d], L2-normalised, from each row's last max_len items. */
static int tower_rows(Ssnad *d, SsnadVariant *v, SsnaModel *m, const uint32_t *const *seqs,
                      const int *lens, const int *rows, int lo, int hi, float *user, char *err,
                      size_t errlen) {
    int n = hi - lo, max_len = m->cfg.max_len;
    if (n <= 0) return 0;
    int *offsets = malloc((size_t)(n + 1) * sizeof *offsets);
    int *items = malloc((size_t)n * (size_t)max_len * sizeof *items);
    int rc = -1;
    if (!offsets || !items) {
        snprintf(err, errlen, "top-k: out of memory (%d users)", n);
        goto done;
    }
    offsets[0] = 0;
    for (int j = 0; j < n; j++) {
        int r = rows[lo + j], first = lens[r] > max_len ? lens[r] - max_len : 0;
        offsets[j + 1] = offsets[j];
        for (int t = first; t < lens[r]; t++) items[offsets[j + 1]++] = (int)seqs[r][t];
    }
    SsnaBatch b = {n, offsets, items, NULL};
    m->cfg.n_items = (int)d->n_items;
    rc = ssna_user_vectors(m, &b, v->raw, user, err, errlen);
done:
    free(offsets), free(items);
    return rc;
}

/* The top-k over items [i0, i1) (i0 a multiple of PANEL_WIDTH) of the nb rows rows[0..nb) whose
 * vectors are user [nb, d]: ids/scores [B, k] and counts [B] in the caller's row order, counts
 * starting at 0. Scores are cosines (not yet over tau), each from panel_dot: an item is scored
 * exactly only when its int8 upper bound beats the row's current k-th best, which skips only
 * items that could not have entered the list, so the lists are those of scoring every item. */
static int score_range(Ssnad *d, const SsnadVariant *v, const float *user, const int *rows, int nb,
                       const uint32_t *const *seqs, const int *lens, int k, int i0, int i1,
                       int32_t *ids, float *scores, int *counts, char *err, size_t errlen) {
    int dd = v->serve.cfg.d, w_max = i1 - i0 < SCORE_BLOCK ? i1 - i0 : SCORE_BLOCK;
    if (w_max <= 0 || nb <= 0) return 0;
    float *block = malloc((size_t)nb * (size_t)w_max * sizeof *block);
    if (!block) {
        return errmsg_fail(err, errlen, "top-k: out of memory (%d users)", nb);
    }
    long exact = 0;
    for (int b0 = i0; b0 < i1; b0 += SCORE_BLOCK) {
        int w = i1 - b0 < SCORE_BLOCK ? i1 - b0 : SCORE_BLOCK;
        // block: [nb, w] upper bounds of user [nb, d] x norm[b0 : b0 + w, d]^T
        panel_upper_forward(block, (size_t)w, user, &v->bounds, (size_t)b0, w, nb);
        for (int j = 0; j < nb; j++) {
            int r = rows[j];
            const float *u = user + (size_t)j * dd;
            float *s = block + (size_t)j * (size_t)w;
            for (int t = 0; t < lens[r]; t++) // the user's own items
                if (seqs[r][t] >= (uint32_t)b0 && seqs[r][t] < (uint32_t)(b0 + w))
                    s[seqs[r][t] - (uint32_t)b0] = -INFINITY;
            // most bounds lose to the row's current k-th best: test that first (own items are
            // -inf and never pass; a row starts at -inf, so it fills up with any finite score)
            int32_t *ri = ids + (size_t)r * k;
            float *rs = scores + (size_t)r * k, kth = counts[r] == k ? rs[k - 1] : -INFINITY;
            for (int c = 0; c < w; c++)
                if (s[c] > kth && d->present[b0 + c]) {
                    exact++;
                    float e = panel_dot(u, v->norm + (size_t)(b0 + c) * dd, dd);
                    if (e <= kth) continue;
                    top_k_insert(ri, rs, &counts[r], k, b0 + c, e);
                    if (counts[r] == k) kth = rs[k - 1];
                }
        }
    }
    free(block);
    if (v->m_bounded) { // (a daemon's variants have metrics; the tests' bare ones do not)
        metric_counter_add(v->m_bounded, (double)nb * (i1 - i0));
        metric_counter_add(v->m_scored, (double)exact);
    }
    return 0;
}

/* The helper's share of a batch: the user tower of rows[lo..hi) (with the variant's second
 * serving copy, which has its own scratch), or the top-k over items [i0, i1). */
static int helper_job(Ssnad *d, SsnadScorer *s, char *err, size_t errlen) {
    SsnadVariant *v = &d->var[s->vi];
    if (s->kind == SCORER_TOWER)
        return tower_rows(d, v, &v->serve_aux, s->seqs, s->lens, s->rows, s->lo, s->hi, s->user,
                          err, errlen);
    return score_range(d, v, s->user, s->rows, s->nb, s->seqs, s->lens, s->k, s->i0, s->i1, s->ids,
                       s->scores, s->counts, err, errlen);
}

static void *scorer_main(void *arg) {
    Ssnad *d = arg;
    pthread_setname_np(pthread_self(), "ssnad-publish");
    SsnadScorer *s = d->scorer;
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        if (s->job != SCORER_POSTED) {
            pthread_cond_wait(&s->cv, &s->mu);
            continue;
        }
        s->job = SCORER_RUNNING;
        pthread_mutex_unlock(&s->mu);
        char err[256] = "";
        int rc = helper_job(d, s, err, sizeof err);
        pthread_mutex_lock(&s->mu);
        memcpy(s->err, err, sizeof err);
        s->rc = rc, s->job = SCORER_IDLE;
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static int scorer_create(Ssnad *d, char *err, size_t errlen) {
    SsnadScorer *s = calloc(1, sizeof *s);
    if (!s) return errmsg_fail(err, errlen, "publish: out of memory for the helper");
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->job = SCORER_IDLE;
    d->scorer = s;
    return 0;
}

int ssnad_publish_start(Ssnad *d, char *err, size_t errlen) {
    if (d->cfg->publish_threads < 2) return 0;
    if (scorer_create(d, err, errlen)) return -1;
    if (pthread_create(&d->scorer->thread, NULL, scorer_main, d)) {
        ssnad_publish_stop(d);
        return errmsg_fail(err, errlen, "publish: cannot start the helper thread");
    }
    d->scorer->threaded = 1;
    return 0;
}

int ssnad_publish_start_stalled(Ssnad *d, char *err, size_t errlen) {
    return scorer_create(d, err, errlen);
}

void ssnad_publish_stop(Ssnad *d) {
    SsnadScorer *s = d->scorer;
    if (!s) return;
    if (s->threaded) {
        pthread_mutex_lock(&s->mu);
        s->stop = 1;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
    }
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
    d->scorer = NULL;
}

int ssnad_publish_helper_busy(Ssnad *d) {
    SsnadScorer *s = d->scorer;
    if (!s) return 0;
    pthread_mutex_lock(&s->mu);
    int busy = s->job != SCORER_IDLE;
    pthread_mutex_unlock(&s->mu);
    return busy;
}

/* Post the job described in *s (fields set by the caller, under no lock: the helper is
 * idle) and return at once. */
static void helper_post(SsnadScorer *s) {
    pthread_mutex_lock(&s->mu);
    s->job = SCORER_POSTED;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* Finish the posted job: wait for it if the helper has started it, else take it back and run
 * it here. On a busy machine the helper may wait tens of milliseconds for a core (behind the
 * broker, say); the lists must not wait with it. Its error, if any, into err (unless rc
 * already failed). */
static int helper_finish(Ssnad *d, int rc, char *err, size_t errlen) {
    SsnadScorer *s = d->scorer;
    pthread_mutex_lock(&s->mu);
    int mine = s->job == SCORER_POSTED;
    if (mine) s->job = SCORER_IDLE;
    while (s->job != SCORER_IDLE) pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    // the helper is idle now and reads the job only once it is posted again
    if (mine) s->err[0] = 0, s->rc = helper_job(d, s, s->err, sizeof s->err);
    if (s->rc && !rc) rc = -1, snprintf(err, errlen, "%s", s->err);
    return rc;
}

/* The user tower's scratch grows with the positions of the rows it is given, which rise as
 * users' sequences lengthen; both serving copies are grown once to the most rows of max_len
 * items a publish batch hands each of them (the soak checks that memory stops growing). */
static int reserve_serving(Ssnad *d, SsnadVariant *v, char *err, size_t errlen) {
    int T = v->serve.cfg.max_len, B = PUBLISH_BATCH, rc = -1;
    uint32_t *seq = calloc((size_t)T, sizeof *seq); // item 0 throughout: only shapes matter
    const uint32_t **seqs = malloc((size_t)B * sizeof *seqs);
    int *lens = malloc((size_t)B * sizeof *lens), *rows = malloc((size_t)B * sizeof *rows);
    float *user = malloc((size_t)B * (size_t)v->serve.cfg.d * sizeof *user);
    if (seq && seqs && lens && rows && user) {
        for (int r = 0; r < B; r++) seqs[r] = seq, lens[r] = T, rows[r] = r;
        int half = d->scorer ? (B + 1) / 2 : B; // ssnad_top_k_batch's split
        rc = tower_rows(d, v, &v->serve, seqs, lens, rows, 0, half, user, err, errlen);
        if (!rc && d->scorer)
            rc = tower_rows(d, v, &v->serve_aux, seqs, lens, rows, 0, half, user, err, errlen);
        if (!rc) v->serve_reserved = 1;
    } else {
        snprintf(err, errlen, "top-k: out of memory reserving a publish batch");
    }
    free(seq), free(seqs), free(lens), free(rows), free(user);
    return rc;
}

#define SPLIT_TOWER_MIN 16 // rows below which one thread runs the whole user tower
// rows below which one thread scores the whole catalogue: the int8 pass of 1-3 users costs less
// than handing half of it to the helper (bench_publish: 1 user 0.86x with the split)
#define SPLIT_SCORE_MIN 4

int ssnad_top_k_batch(Ssnad *d, int vi, const uint32_t *const *seqs, const int *lens, int B, int k,
                      int32_t *ids, float *scores, int *counts, char *err, size_t errlen) {
    SsnadScorer *s = d->scorer;
    SsnadVariant *v = &d->var[vi];
    int dd = v->serve.cfg.d, n_items = (int)d->n_items, nb = 0, rc = 0;
    for (int r = 0; r < B; r++) counts[r] = 0;
    if (B <= 0 || n_items <= 0) return 0;
    if (!v->serve_reserved && reserve_serving(d, v, err, errlen)) return -1;
    int *rows = malloc((size_t)B * sizeof *rows);
    float *user = malloc((size_t)B * (size_t)dd * sizeof *user);
    int32_t *ids2 = NULL;
    float *scores2 = NULL;
    int *counts2 = NULL;
    if (!rows || !user) {
        snprintf(err, errlen, "top-k: out of memory (%d users)", B);
        rc = -1;
        goto done;
    }
    for (int r = 0; r < B; r++)
        if (lens[r] > 0) rows[nb++] = r; // an empty sequence gets no list
    if (!nb) goto done;
    if (s) s->vi = vi, s->seqs = seqs, s->lens = lens, s->rows = rows, s->k = k;
    // the user tower: rows split in halves over the two threads (each has its own scratch)
    if (s && nb >= 2 * SPLIT_TOWER_MIN) {
        int half = nb / 2;
        s->kind = SCORER_TOWER, s->lo = half, s->hi = nb, s->user = user + (size_t)half * dd;
        helper_post(s);
        rc = tower_rows(d, v, &v->serve, seqs, lens, rows, 0, half, user, err, errlen);
        rc = helper_finish(d, rc, err, errlen);
    } else {
        rc = tower_rows(d, v, &v->serve, seqs, lens, rows, 0, nb, user, err, errlen);
    }
    if (rc) goto done;
    // scoring: the catalogue split in halves (every pass streams its items once, however few
    // the rows: splitting rows would stream all of them twice); the halves' top-k merged
    int mid = n_items / 2 / PANEL_WIDTH * PANEL_WIDTH;
    if (s && mid > 0 && nb >= SPLIT_SCORE_MIN) {
        ids2 = malloc((size_t)B * (size_t)k * sizeof *ids2);
        scores2 = malloc((size_t)B * (size_t)k * sizeof *scores2);
        counts2 = calloc((size_t)B, sizeof *counts2);
        if (!ids2 || !scores2 || !counts2) {
            snprintf(err, errlen, "top-k: out of memory (%d users)", B);
            rc = -1;
            goto done;
        }
        s->kind = SCORER_SCORE, s->user = user, s->nb = nb, s->i0 = mid, s->i1 = n_items;
        s->ids = ids2, s->scores = scores2, s->counts = counts2;
        helper_post(s);
        rc = score_range(d, v, user, rows, nb, seqs, lens, k, 0, mid, ids, scores, counts, err,
                         errlen);
        rc = helper_finish(d, rc, err, errlen);
        for (int j = 0; j < nb && !rc; j++) {
            int r = rows[j];
            for (int i = 0; i < counts2[r]; i++)
                top_k_insert(ids + (size_t)r * k, scores + (size_t)r * k, &counts[r], k,
                             ids2[(size_t)r * k + i], scores2[(size_t)r * k + i]);
        }
    } else {
        rc = score_range(d, v, user, rows, nb, seqs, lens, k, 0, n_items, ids, scores, counts, err,
                         errlen);
    }
    for (int r = 0; r < B && !rc; r++)
        for (int i = 0; i < counts[r]; i++) scores[(size_t)r * k + i] /= v->serve.cfg.tau;
done:
    free(rows), free(user), free(ids2), free(scores2), free(counts2);
    return rc;
}

int ssnad_top_k(Ssnad *d, int vi, const uint32_t *seq, int len, int k, int32_t *ids, float *scores,
                char *err, size_t errlen) {
    int n = 0;
    return ssnad_top_k_batch(d, vi, &seq, &len, 1, k, ids, scores, &n, err, errlen) ? -1 : n;
}

/* The model version an arm's lists carry: the training steps behind its serving parameters, or
 * for the pop arm the events in its window. */
static int64_t arm_version(const Ssnad *d, int arm) {
    int vi = d->arm_var[arm];
    return vi >= 0 ? d->var[vi].serve_steps : (int64_t)popwindow_size(d->pop);
}

/* The pop arm's lists of B users (caller holds serve_mu): the window's most chosen items among
 * those with states (what the model arms can rank), less each user's own items unless
 * pop.exclude_seen is off. 0 or -1. */
static int pop_top_k(Ssnad *d, const uint32_t *const *seqs, const int *lens, int B, int k,
                     int32_t *ids, float *scores, int *counts, char *err, size_t errlen) {
    int excl = d->cfg->pop_exclude_seen;
    for (int r = 0; r < B; r++) {
        counts[r] =
            popwindow_top_k(d->pop, d->present, d->n_items, excl ? seqs[r] : NULL,
                            excl ? lens[r] : 0, k, ids + (size_t)r * k, scores + (size_t)r * k);
        if (counts[r] < 0) return errmsg_fail(err, errlen, "publish: out of memory (pop)");
    }
    return 0;
}

/* Top-k of B sequences for arm a (caller holds serve_mu). 0 or -1. */
static int arm_top_k(Ssnad *d, int a, const uint32_t *const *seqs, const int *lens, int B, int k,
                     int32_t *ids, float *scores, int *counts, char *err, size_t errlen) {
    int vi = d->arm_var[a];
    return vi >= 0 ? ssnad_top_k_batch(d, vi, seqs, lens, B, k, ids, scores, counts, err, errlen)
                   : pop_top_k(d, seqs, lens, B, k, ids, scores, counts, err, errlen);
}

/* Send one user's list; caller holds serve_mu. 1 sent, 0 deferred (a short list while item
 * texts are still queued for the encoder), -1 error. */
static int send_list(Ssnad *d, SsnadUser *u, const int32_t *ids, const float *scores, int n,
                     char *err, size_t errlen) {
    int k = (int)d->cfg->top_k;
    if (n < k && ssnad_embed_depth(d)) return 0; // cold start: wait for the queued texts
    if (!u->last_list && !(u->last_list = malloc((size_t)k * sizeof *u->last_list))) {
        return errmsg_fail(err, errlen, "publish: out of memory");
    }
    memcpy(u->last_list, ids, (size_t)n * sizeof *ids);
    u->last_len = n;
    u->last_catalogue = (uint32_t)d->n_present;
    int vi = d->arm_var[u->variant];
    Ssna__ScoredItem si[1000], *sp[1000];
    for (int i = 0; i < n; i++) {
        ssna__scored_item__init(&si[i]);
        si[i].item_id = d->item_ids[ids[i]];
        si[i].score = scores[i];
        sp[i] = &si[i];
    }
    char version[32];
    snprintf(version, sizeof version, "%lld", (long long)arm_version(d, u->variant));
    Ssna__Recommendations rec;
    ssna__recommendations__init(&rec);
    rec.user_id = u->id;
    rec.n_items = (size_t)n, rec.items = sp;
    rec.model_version = version;
    rec.variant = (char *)d->cfg->variants[u->variant].label;
    rec.generated_at_ms = clock_wall_ms();
    rec.source_topic = (char *)d->cfg->topic_events; // protobuf-c does not write through it
    rec.source_partition = u->src_partition;
    rec.source_offset = u->src_offset;
    rec.source_event_time_ms = u->src_event_ms;
    uint8_t *buf = NULL;
    size_t len = 0;
    if (codec_recommendations_encode(&rec, NULL, &buf, &len, err, errlen) ||
        kafka_producer_send_owned(d->producer, d->cfg->topic_recommendations, u->id, strlen(u->id),
                                  buf, len, err, errlen))
        return -1;
    metric_counter_inc(vi >= 0 ? d->var[vi].m_published : d->m_pop_published);
    if (!u->refill) metric_histogram_observe(d->m_latency, clock_monotonic_s() - u->src_seen_s);
    u->refill = 0;
    return 1;
}

/* Lists for us[0..n), one user-tower pass and one scoring pass per variant; caller holds
 * serve_mu. Users sent leave the dirty state; deferred ones go to d->deferred; after an error,
 * the users not handled yet are put in failed[0..*n_failed) to be tried again. 0 or -1. */
static int publish_batch(Ssnad *d, SsnadUser **us, int n, SsnadUser **failed, int *n_failed,
                         char *err, size_t errlen) {
    int k = (int)d->cfg->top_k, rc = 0;
    int32_t *ids = malloc((size_t)n * (size_t)k * sizeof *ids);
    float *scores = malloc((size_t)n * (size_t)k * sizeof *scores);
    int *counts = malloc((size_t)n * sizeof *counts), *lens = malloc((size_t)n * sizeof *lens);
    int *sel = malloc((size_t)n * sizeof *sel);
    const uint32_t **seqs = malloc((size_t)n * sizeof *seqs);
    unsigned char handled[PUBLISH_BATCH] = {0};
    if (!ids || !scores || !counts || !lens || !sel || !seqs) {
        snprintf(err, errlen, "publish: out of memory (%d users)", n);
        rc = -1;
    }
    for (int a = 0; a < d->n_arms && !rc; a++) {
        int m = 0; // sel[0..m): indexes in us of this arm's users
        for (int i = 0; i < n; i++)
            if (us[i]->variant == a) sel[m] = i, seqs[m] = us[i]->seq, lens[m++] = us[i]->seq_len;
        if (!m) continue;
        rc = arm_top_k(d, a, seqs, lens, m, k, ids, scores, counts, err, errlen);
        for (int j = 0; j < m && !rc; j++) {
            SsnadUser *u = us[sel[j]];
            int sent = send_list(d, u, ids + (size_t)j * k, scores + (size_t)j * k, counts[j], err,
                                 errlen);
            if (sent == 0)
                rc = ssnad_userlist_push(&d->deferred, u); // stays dirty
            else if (sent > 0)
                ssnad_users_set_dirty(&d->users, u, 0);
            else
                rc = -1;
            handled[sel[j]] = !rc;
        }
    }
    *n_failed = 0;
    if (rc)
        for (int i = 0; i < n; i++)
            if (!handled[i]) failed[(*n_failed)++] = us[i];
    free(ids), free(scores), free(counts), free(lens), free(sel), free(seqs);
    return rc;
}

int ssnad_publish_dirty(Ssnad *d, double budget_s, char *err, size_t errlen) {
    double t0 = clock_monotonic_s();
    if (d->deferred.n && !ssnad_embed_depth(d)) { // the texts they waited for are in
        for (size_t i = 0; i < d->deferred.n; i++)
            if (ssnad_userlist_push(&d->dirty, d->deferred.v[i])) {
                return errmsg_fail(err, errlen, "publish: out of memory");
            }
        d->deferred.n = 0;
    }
    // new items became recommendable and none is queued: lists drawn from too small a catalogue
    // (short, or from under half of today's: sent while the catalogue was still being encoded)
    // go out again, answering the same event
    if (d->items_ready != d->items_ready_swept && !ssnad_embed_depth(d)) {
        pthread_mutex_lock(&d->serve_mu);
        long n = ssnad_users_mark_stale(&d->users, (int)d->cfg->top_k, d->n_present, &d->dirty);
        pthread_mutex_unlock(&d->serve_mu);
        if (n < 0) {
            return errmsg_fail(err, errlen, "publish: out of memory");
        }
        d->items_ready_swept = d->items_ready;
        metric_counter_add(d->m_lists_refilled, (double)n);
    }
    // dirty.v[0..kept) collects users to try again; [done, n) are not reached yet
    size_t done = 0, kept = 0;
    int rc = 0;
    while (done < d->dirty.n && !rc) {
        int n = d->dirty.n - done < PUBLISH_BATCH ? (int)(d->dirty.n - done) : PUBLISH_BATCH;
        SsnadUser *failed[PUBLISH_BATCH];
        int n_failed = 0;
        pthread_mutex_lock(&d->serve_mu);
        rc = publish_batch(d, d->dirty.v + done, n, failed, &n_failed, err, errlen);
        pthread_mutex_unlock(&d->serve_mu);
        done += (size_t)n;
        for (int i = 0; i < n_failed; i++) d->dirty.v[kept++] = failed[i];
        if (clock_monotonic_s() - t0 > budget_s) break;
    }
    if (done) { // (an empty list may have no array at all)
        memmove(d->dirty.v + kept, d->dirty.v + done, (d->dirty.n - done) * sizeof *d->dirty.v);
        d->dirty.n = kept + d->dirty.n - done;
    }
    kafka_producer_poll(d->producer, 0);
    return rc;
}

/* ---- /recommend ---- */

/* A JSON string of s (stored ids and texts were checked as UTF-8 on the way in, so jansson, which
 * refuses invalid UTF-8, takes them; anything else shows as U+FFFD rather than breaking the
 * document). */
static json_t *json_text(const char *s) {
    json_t *j = json_string(s);
    return j ? j : json_string("\xef\xbf\xbd");
}

int ssnad_http_recommend(void *ctx, const char *user, char **body, size_t *body_len) {
    Ssnad *d = ctx;
    char err[512];
    uint32_t seq[SSNAD_SEQ_MAX];
    size_t len = 0;
    int variant = abtest_assign(d->ab, user, strlen(user));
    pthread_mutex_lock(&d->serve_mu);
    SsnadUser *u = ssnad_users_find(&d->users, user);
    if (u && u->loaded) {
        len = (size_t)u->seq_len;
        memcpy(seq, u->seq, len * sizeof *seq);
    } else if (store_get_user_seq(d->store, NULL, user, seq, SSNAD_SEQ_MAX, &len, NULL, err,
                                  sizeof err) != STORE_OK) {
        pthread_mutex_unlock(&d->serve_mu);
        return 404;
    }
    int32_t ids[1000];
    float scores[1000];
    int n = 0;
    const uint32_t *seqp = seq;
    int lenv = (int)len;
    if (arm_top_k(d, variant, &seqp, &lenv, 1, (int)d->cfg->top_k, ids, scores, &n, err,
                  sizeof err))
        n = -1;
    json_t *items = n >= 0 ? json_array() : NULL;
    for (int i = 0; i < n && items; i++) {
        const char *id = d->item_ids[ids[i]];
        char *text = NULL; // committed text; an item newer than the last checkpoint shows ""
        store_catalogue_get(d->store, NULL, id, NULL, &text, NULL, err, sizeof err);
        if (json_array_append_new(items, json_pack("{s:o, s:f, s:o}", "id", json_text(id), "score",
                                                   (double)scores[i], "text",
                                                   json_text(text ? text : ""))))
            json_decref(items), items = NULL;
        free(text);
    }
    json_t *doc = items ? json_pack("{s:o, s:s, s:I, s:o}", "user", json_text(user), "variant",
                                    d->cfg->variants[variant].label, "model_version",
                                    (json_int_t)arm_version(d, variant), "items", items)
                        : NULL;
    pthread_mutex_unlock(&d->serve_mu);
    char *out = doc ? json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
    json_decref(doc);
    if (!out) return 500;
    *body = out, *body_len = strlen(out);
    return 200;
}
