/* ssnad_embed.c - the embedding worker: item texts queued by the main thread go through the
 * frozen encoder on this thread; the main thread collects the states, stores them in its open
 * transaction and makes the items recommendable (cold start). The queue is bounded by
 * embed.queue_max: while it is full the main loop reads no Item messages (back-pressure on the
 * items topic) and goes on applying events. A checkpoint never waits for the queue: it holds
 * back the items offsets of texts not yet stored (ssnad_embed_hold_back). */
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "daemon/ssnad.h"
#include "model/errmsg.h"

/* Embedding queue entry / result. */
typedef struct {
    char *id, *text;
    size_t text_len;
    uint64_t hash;
    uint32_t index;
    int32_t partition; // the Item message's place in the items topic: a checkpoint resumes
    int64_t offset;    // that partition no later than this while the text is not stored
    float *states;     // result [layers, hidden]; NULL until encoded
    char *error;       // encoder error for this text (the item is rejected)
    int oom;           // no memory for the result: the daemon must restart (nothing rejected)
} SsnadEmbedJob;

#define SSNAD_EMBED_BATCH 32 // texts per encoder call

/* The queue between the main thread and the encoder thread. Jobs move q -> batch (while the
 * encoder runs them; busy of them) -> done (until the main thread collects them). */
struct SsnadEmbedQueue {
    Ssnad *d; // encoder, shapes, configuration and the queue gauge
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;      // a job was queued, or stop
    pthread_cond_t done_cv; // room in the queue, or a batch finished
    SsnadEmbedJob *q;       // ring [qmax]
    size_t qmax, head, len, busy;
    SsnadEmbedJob batch[SSNAD_EMBED_BATCH]; // the busy jobs being encoded
    SsnadEmbedJob *done;
    size_t done_len, done_cap;
    int stop, started;
    int oom; // results were lost for want of memory: restart
};

static void job_free(SsnadEmbedJob *j) {
    free(j->id), free(j->text), free(j->states), free(j->error);
    memset(j, 0, sizeof *j);
}

/* Encode jobs[0..n); a failing batch is retried text by text so one bad text names itself. */
static void encode_batch(Ssnad *d, SsnadEmbedJob *jobs, int n) {
    size_t per = (size_t)d->layers * (size_t)d->hidden;
    const char *texts[SSNAD_EMBED_BATCH] = {0};
    size_t lens[SSNAD_EMBED_BATCH] = {0};
    float *out = malloc((size_t)n * per * sizeof(float));
    char err[512] = "";
    for (int i = 0; i < n; i++) texts[i] = jobs[i].text, lens[i] = jobs[i].text_len;
    if (out && !encoder_embed(d->enc, texts, lens, n, ENCODER_POOL_CLS, d->first_layer, d->layers,
                              out, err, sizeof err)) {
        for (int i = 0; i < n; i++) {
            jobs[i].states = malloc(per * sizeof(float));
            if (jobs[i].states)
                memcpy(jobs[i].states, out + (size_t)i * per, per * sizeof(float));
            else
                jobs[i].oom = 1;
        }
    } else if (n > 1) {
        for (int i = 0; i < n; i++) encode_batch(d, jobs + i, 1);
    } else if (!out || !(jobs[0].error = strdup(err))) {
        jobs[0].oom = 1; // a text is rejected for what it is, never for a lack of memory
    }
    free(out);
}

static void *embed_main(void *arg) {
    SsnadEmbedQueue *e = arg;
    Ssnad *d = e->d;
    pthread_setname_np(pthread_self(), "ssnad-embed");
    SsnadEmbedJob *batch = e->batch; // the main thread reads their offsets under mu
    size_t qmax = e->qmax;
    pthread_mutex_lock(&e->mu);
    for (;;) {
        while (!e->len && !e->stop) pthread_cond_wait(&e->cv, &e->mu);
        if (!e->len && e->stop) break;
        int n = 0;
        while (e->len && n < SSNAD_EMBED_BATCH) {
            batch[n++] = e->q[e->head];
            e->head = (e->head + 1) % qmax;
            e->len--;
        }
        e->busy = (size_t)n;
        pthread_cond_broadcast(&e->done_cv); // room in the queue
        pthread_mutex_unlock(&e->mu);
        // the strings and results of batch[] belong to this thread while embed_busy is set;
        // the main thread reads only their partition and offset, under embed_mu
        encode_batch(d, batch, n);
        pthread_mutex_lock(&e->mu);
        if (e->done_len + (size_t)n > e->done_cap) {
            size_t cap = (e->done_cap ? e->done_cap * 2 : 64) + (size_t)n;
            SsnadEmbedJob *nd = realloc(e->done, cap * sizeof *nd);
            if (!nd) { // the main thread restarts from its checkpoint, which re-reads them
                log_error("embed: out of memory for finished texts", LOG_INT("texts", n));
                for (int i = 0; i < n; i++) job_free(&batch[i]);
                e->oom = 1;
                n = 0;
            } else {
                e->done = nd, e->done_cap = cap;
            }
        }
        for (int i = 0; i < n; i++) e->done[e->done_len++] = batch[i];
        e->busy = 0;
        // also from here: a checkpoint drain blocks the main thread's gauge updates
        metric_gauge_set(d->m_queue, (double)e->len);
        pthread_cond_broadcast(&e->done_cv);
    }
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

int ssnad_embed_start(Ssnad *d, char *err, size_t errlen) {
    SsnadEmbedQueue *e = calloc(1, sizeof *e);
    if (!e) return errmsg_fail(err, errlen, "embed queue: out of memory");
    e->d = d;
    e->qmax = (size_t)d->cfg->embed_queue_max;
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    pthread_cond_init(&e->done_cv, NULL);
    d->embed = e; // from here ssnad_embed_stop frees it
    e->q = calloc(e->qmax, sizeof *e->q);
    if (!e->q) {
        return errmsg_fail(err, errlen, "embed queue: out of memory for %lld entries",
                           d->cfg->embed_queue_max);
    }
    if (pthread_create(&e->thread, NULL, embed_main, e)) {
        return errmsg_fail(err, errlen, "embed: cannot start the encoder thread");
    }
    e->started = 1;
    return 0;
}

void ssnad_embed_stop(Ssnad *d) {
    SsnadEmbedQueue *e = d->embed;
    if (!e) return;
    if (e->started) {
        pthread_mutex_lock(&e->mu);
        e->stop = 1;
        pthread_cond_broadcast(&e->cv);
        pthread_mutex_unlock(&e->mu);
        pthread_join(e->thread, NULL);
    }
    for (size_t i = 0; i < e->len; i++) job_free(&e->q[(e->head + i) % e->qmax]);
    for (size_t i = 0; i < e->done_len; i++) job_free(&e->done[i]);
    free(e->q), free(e->done);
    pthread_cond_destroy(&e->cv), pthread_cond_destroy(&e->done_cv);
    pthread_mutex_destroy(&e->mu);
    free(e);
    d->embed = NULL;
}

size_t ssnad_embed_depth(Ssnad *d) {
    SsnadEmbedQueue *e = d->embed;
    if (!e) return 0;
    pthread_mutex_lock(&e->mu);
    size_t n = e->len + e->busy;
    pthread_mutex_unlock(&e->mu);
    return n;
}

size_t ssnad_embed_room(Ssnad *d) {
    SsnadEmbedQueue *e = d->embed;
    if (!e) return 0;
    pthread_mutex_lock(&e->mu);
    size_t n = e->qmax - e->len;
    pthread_mutex_unlock(&e->mu);
    return n;
}

int ssnad_embed_submit(Ssnad *d, const char *id, const char *text, size_t len, uint64_t hash,
                       uint32_t index, int32_t partition, int64_t offset, char *err,
                       size_t errlen) {
    SsnadEmbedJob j = {
        .text_len = len, .hash = hash, .index = index, .partition = partition, .offset = offset};
    j.id = strdup(id);
    j.text = malloc(len + 1);
    if (!j.id || !j.text) {
        job_free(&j);
        return errmsg_fail(err, errlen, "embed queue: out of memory for item %s", id);
    }
    memcpy(j.text, text, len), j.text[len] = 0;
    SsnadEmbedQueue *e = d->embed;
    size_t qmax = e->qmax;
    pthread_mutex_lock(&e->mu);
    while (e->len == qmax) pthread_cond_wait(&e->done_cv, &e->mu);
    e->q[(e->head + e->len) % qmax] = j;
    e->len++;
    metric_gauge_set(d->m_queue, (double)(e->len + e->busy));
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    return 0;
}

int ssnad_embed_collect(Ssnad *d, char *err, size_t errlen) {
    SsnadEmbedQueue *e = d->embed;
    if (!e) return 0;
    pthread_mutex_lock(&e->mu);
    SsnadEmbedJob *done = e->done;
    size_t n = e->done_len;
    int lost = e->oom;
    e->done = NULL, e->done_len = e->done_cap = 0;
    metric_gauge_set(d->m_queue, (double)(e->len + e->busy));
    pthread_mutex_unlock(&e->mu);
    int rc = 0;
    size_t m = 0;
    SsnadItemState *set = malloc((n ? n : 1) * sizeof *set);
    if (!set || lost) rc = -1, snprintf(err, errlen, "embed: out of memory for encoded texts");
    for (size_t i = 0; i < n && !rc; i++) {
        SsnadEmbedJob *j = &done[i];
        if (j->oom) {
            rc = -1, snprintf(err, errlen, "embed: out of memory for the states of item %s", j->id);
        } else if (j->error) {
            metric_counter_inc(d->m_items_rejected);
            log_warn("item not encoded", LOG_STR("item", j->id), LOG_STR("error", j->error));
        } else {
            rc = store_put_item(d->txn, j->id, j->hash, j->states, d->layers, d->hidden, err,
                                errlen);
            set[m++] = (SsnadItemState){j->index, j->id, j->states};
        }
    }
    // the same item twice in one collection (its text changed again meanwhile): in queue order,
    // so the later states win
    if (!rc) rc = ssnad_state_set_items(d, set, m, err, errlen);
    if (!rc) d->collected_since_ckpt += n;
    for (size_t i = 0; i < n; i++) job_free(&done[i]);
    free(set), free(done);
    return rc ? -1 : 0;
}

/* parts[i].offset = min(parts[i].offset, offset) for the items partition of job j. */
static void hold_back_job(Ssnad *d, const SsnadEmbedJob *j, KafkaPartition *parts, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (parts[i].partition == j->partition && parts[i].offset > j->offset &&
            !strcmp(parts[i].topic, d->cfg->topic_items))
            parts[i].offset = j->offset;
}

void ssnad_embed_hold_back(Ssnad *d, KafkaPartition *parts, size_t n) {
    SsnadEmbedQueue *e = d->embed;
    if (!e) return;
    size_t qmax = e->qmax;
    pthread_mutex_lock(&e->mu);
    for (size_t i = 0; i < e->len; i++) hold_back_job(d, &e->q[(e->head + i) % qmax], parts, n);
    for (size_t i = 0; i < e->busy; i++) hold_back_job(d, &e->batch[i], parts, n);
    for (size_t i = 0; i < e->done_len; i++) hold_back_job(d, &e->done[i], parts, n);
    pthread_mutex_unlock(&e->mu);
}
