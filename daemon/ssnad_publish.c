/* ssnad_publish.c - top-k for a user from the serving model of the user's variant, the
 * Recommendations messages for users whose sequence changed, and /recommend.
 *
 * A list never holds an item of the user's own (last 50) sequence, nor an item whose states have
 * not arrived (catalogue placeholders). Scores are cos(u, v*) / tau, best first. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "daemon/ssnad.h"
#include "ingest/codec.h"

int ssnad_top_k(Ssnad *d, int vi, const uint32_t *seq, int len, int k, int32_t *ids, float *scores,
                char *err, size_t errlen) {
    SsnadVariant *v = &d->var[vi];
    int dd = v->serve.cfg.d, max_len = v->serve.cfg.max_len, n_items = (int)d->n_items;
    if (len <= 0 || n_items <= 0) return 0;
    int first = len > max_len ? len - max_len : 0, L = len - first;
    int items[SSNAD_SEQ_MAX], offsets[2] = {0, L};
    for (int t = 0; t < L; t++) items[t] = (int)seq[first + t];
    float user[1024], *all = malloc((size_t)n_items * sizeof(float));
    if (!all || dd > 1024) {
        free(all);
        snprintf(err, errlen, "top-k: out of memory");
        return -1;
    }
    SsnaBatch b = {1, offsets, items, NULL};
    v->serve.cfg.n_items = n_items;
    if (ssna_user_vectors(&v->serve, &b, v->raw, user, err, errlen)) {
        free(all);
        return -1;
    }
    // all: [n_items] = norm [n_items, d] x user [d]
    cblas_sgemv(CblasRowMajor, CblasNoTrans, n_items, dd, 1.0f, v->norm, dd, user, 1, 0.0f, all, 1);
    for (int t = 0; t < len; t++) all[seq[t]] = -INFINITY; // the user's own items
    int n = 0;
    for (int i = 0; i < n_items; i++) {
        if (!d->present[i] || all[i] == -INFINITY) continue;
        if (n == k && all[i] <= scores[k - 1]) continue;
        int p = n < k ? n++ : k - 1; // insertion into the sorted top-k
        while (p > 0 && scores[p - 1] < all[i]) {
            scores[p] = scores[p - 1], ids[p] = ids[p - 1];
            p--;
        }
        scores[p] = all[i], ids[p] = i;
    }
    for (int i = 0; i < n; i++) scores[i] /= v->serve.cfg.tau;
    free(all);
    return n;
}

/* Build and send one user's list; caller holds serve_mu. 1 sent, 0 deferred (a short list
 * while item texts are still queued for the encoder), -1 error. */
static int publish_user(Ssnad *d, SsnadUser *u, char *err, size_t errlen) {
    int k = (int)d->cfg->top_k;
    int32_t ids[1000];
    float scores[1000];
    int n = ssnad_top_k(d, u->variant, u->seq, u->seq_len, k, ids, scores, err, errlen);
    if (n < 0) return -1;
    if (n < k && ssnad_embed_depth(d)) return 0; // cold start: wait for the queued texts
    if (!u->last_list && !(u->last_list = malloc((size_t)k * sizeof *u->last_list))) {
        snprintf(err, errlen, "publish: out of memory");
        return -1;
    }
    memcpy(u->last_list, ids, (size_t)n * sizeof *ids);
    u->last_len = n;
    SsnadVariant *v = &d->var[u->variant];
    Ssna__ScoredItem si[1000], *sp[1000];
    for (int i = 0; i < n; i++) {
        ssna__scored_item__init(&si[i]);
        si[i].item_id = d->item_ids[ids[i]];
        si[i].score = scores[i];
        sp[i] = &si[i];
    }
    char version[32];
    snprintf(version, sizeof version, "%lld", (long long)v->serve_steps);
    Ssna__Recommendations rec;
    ssna__recommendations__init(&rec);
    rec.user_id = u->id;
    rec.n_items = (size_t)n, rec.items = sp;
    rec.model_version = version;
    rec.variant = v->cv.label;
    rec.generated_at_ms = ssnad_wall_ms();
    rec.source_topic = u->src_topic;
    rec.source_partition = u->src_partition;
    rec.source_offset = u->src_offset;
    rec.source_event_time_ms = u->src_event_ms;
    uint8_t *buf = NULL;
    size_t len = 0;
    if (codec_recommendations_encode(&rec, NULL, &buf, &len, err, errlen) ||
        kafka_producer_send_owned(d->producer, d->cfg->topic_recommendations, u->id, strlen(u->id),
                                  buf, len, err, errlen))
        return -1;
    metric_counter_inc(v->m_published);
    metric_histogram_observe(d->m_latency, ssnad_now() - u->src_seen_s);
    return 1;
}

int ssnad_publish_dirty(Ssnad *d, double budget_s, char *err, size_t errlen) {
    double t0 = ssnad_now();
    if (d->deferred.n && !ssnad_embed_depth(d)) { // the texts they waited for are in
        for (size_t i = 0; i < d->deferred.n; i++)
            if (ssnad_userlist_push(&d->dirty, d->deferred.v[i])) {
                snprintf(err, errlen, "publish: out of memory");
                return -1;
            }
        d->deferred.n = 0;
    }
    size_t done = 0;
    int rc = 0;
    while (done < d->dirty.n && !rc) {
        pthread_mutex_lock(&d->serve_mu);
        SsnadUser *u = d->dirty.v[done++];
        int sent = publish_user(d, u, err, errlen);
        if (sent == 0)
            rc = ssnad_userlist_push(&d->deferred, u); // stays dirty
        else
            u->dirty = 0, rc = sent < 0 ? -1 : 0;
        pthread_mutex_unlock(&d->serve_mu);
        if (ssnad_now() - t0 > budget_s) break;
    }
    if (done) memmove(d->dirty.v, d->dirty.v + done, (d->dirty.n - done) * sizeof *d->dirty.v);
    d->dirty.n -= done;
    kafka_producer_poll(d->producer, 0);
    return rc;
}

/* ---- /recommend ---- */

typedef struct {
    char *s;
    size_t len, cap;
    int oom;
} Buf;

static void put(Buf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->cap ? b->cap * 2 : 1024) + n;
        char *ns = realloc(b->s, cap);
        if (!ns) {
            b->oom = 1;
            return;
        }
        b->s = ns, b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

static void put_json_string(Buf *b, const char *s) {
    put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c;
            put(b, esc, 2);
        } else if (c < 0x20) {
            put(b, esc, (size_t)snprintf(esc, sizeof esc, "\\u%04x", c));
        } else {
            put(b, (const char *)&c, 1);
        }
    }
    put(b, "\"", 1);
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
    int n =
        ssnad_top_k(d, variant, seq, (int)len, (int)d->cfg->top_k, ids, scores, err, sizeof err);
    Buf b = {0};
    char num[64];
    put(&b, "{\"user\":", 8);
    put_json_string(&b, user);
    put(&b, ",\"variant\":", 11);
    put_json_string(&b, d->var[variant].cv.label);
    put(&b, num,
        (size_t)snprintf(num, sizeof num, ",\"model_version\":%lld,\"items\":[",
                         (long long)d->var[variant].serve_steps));
    for (int i = 0; i < n; i++) {
        const char *id = d->item_ids[ids[i]];
        char *text = NULL; // committed text; an item newer than the last checkpoint shows ""
        store_catalogue_get(d->store, NULL, id, NULL, &text, NULL, err, sizeof err);
        put(&b, i ? ",{\"id\":" : "{\"id\":", i ? 7 : 6);
        put_json_string(&b, id);
        put(&b, num, (size_t)snprintf(num, sizeof num, ",\"score\":%.6g,\"text\":", scores[i]));
        put_json_string(&b, text ? text : "");
        put(&b, "}", 1);
        free(text);
    }
    pthread_mutex_unlock(&d->serve_mu);
    put(&b, "]}\n", 3);
    if (n < 0 || b.oom) {
        free(b.s);
        return 500;
    }
    *body = b.s, *body_len = b.len;
    return 200;
}
