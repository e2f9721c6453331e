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
    Ssnad *d = arg;
    pthread_setname_np(pthread_self(), "ssnad-embed");
    SsnadEmbedJob *batch = d->embed_batch; // the main thread reads their offsets under embed_mu
    size_t qmax = (size_t)d->cfg->embed_queue_max;
    pthread_mutex_lock(&d->embed_mu);
    for (;;) {
        while (!d->embed_len && !d->embed_stop) pthread_cond_wait(&d->embed_cv, &d->embed_mu);
        if (!d->embed_len && d->embed_stop) break;
        int n = 0;
        while (d->embed_len && n < SSNAD_EMBED_BATCH) {
            batch[n++] = d->embed_q[d->embed_head];
            d->embed_head = (d->embed_head + 1) % qmax;
            d->embed_len--;
        }
        d->embed_busy = (size_t)n;
        pthread_cond_broadcast(&d->embed_done_cv); // room in the queue
        pthread_mutex_unlock(&d->embed_mu);
        // the strings and results of batch[] belong to this thread while embed_busy is set;
        // the main thread reads only their partition and offset, under embed_mu
        encode_batch(d, batch, n);
        pthread_mutex_lock(&d->embed_mu);
        if (d->done_len + (size_t)n > d->done_cap) {
            size_t cap = (d->done_cap ? d->done_cap * 2 : 64) + (size_t)n;
            SsnadEmbedJob *nd = realloc(d->embed_done, cap * sizeof *nd);
            if (!nd) { // the main thread restarts from its checkpoint, which re-reads them
                log_error("embed: out of memory for finished texts", LOG_INT("texts", n));
                for (int i = 0; i < n; i++) job_free(&batch[i]);
                d->embed_oom = 1;
                n = 0;
            } else {
                d->embed_done = nd, d->done_cap = cap;
            }
        }
        for (int i = 0; i < n; i++) d->embed_done[d->done_len++] = batch[i];
        d->embed_busy = 0;
        // also from here: a checkpoint drain blocks the main thread's gauge updates
        metric_gauge_set(d->m_queue, (double)d->embed_len);
        pthread_cond_broadcast(&d->embed_done_cv);
    }
    pthread_mutex_unlock(&d->embed_mu);
    return NULL;
}

int ssnad_embed_start(Ssnad *d, char *err, size_t errlen) {
    pthread_mutex_init(&d->embed_mu, NULL);
    pthread_cond_init(&d->embed_cv, NULL);
    pthread_cond_init(&d->embed_done_cv, NULL);
    d->embed_q = calloc((size_t)d->cfg->embed_queue_max, sizeof *d->embed_q);
    if (!d->embed_q) {
        return errmsg_fail(err, errlen, "embed queue: out of memory for %lld entries",
                           d->cfg->embed_queue_max);
    }
    if (pthread_create(&d->embed_thread, NULL, embed_main, d)) {
        return errmsg_fail(err, errlen, "embed: cannot start the encoder thread");
    }
    d->embed_started = 1;
    return 0;
}

void ssnad_embed_stop(Ssnad *d) {
    if (d->embed_started) {
        pthread_mutex_lock(&d->embed_mu);
        d->embed_stop = 1;
        pthread_cond_broadcast(&d->embed_cv);
        pthread_mutex_unlock(&d->embed_mu);
        pthread_join(d->embed_thread, NULL);
        d->embed_started = 0;
    }
    size_t qmax = (size_t)(d->cfg ? d->cfg->embed_queue_max : 0);
    for (size_t i = 0; i < d->embed_len; i++) job_free(&d->embed_q[(d->embed_head + i) % qmax]);
    for (size_t i = 0; i < d->done_len; i++) job_free(&d->embed_done[i]);
    free(d->embed_q), free(d->embed_done);
    d->embed_q = NULL, d->embed_done = NULL, d->embed_len = d->done_len = 0;
}

size_t ssnad_embed_depth(Ssnad *d) {
    pthread_mutex_lock(&d->embed_mu);
    size_t n = d->embed_len + d->embed_busy;
    pthread_mutex_unlock(&d->embed_mu);
    return n;
}

size_t ssnad_embed_room(Ssnad *d) {
    pthread_mutex_lock(&d->embed_mu);
    size_t n = (size_t)d->cfg->embed_queue_max - d->embed_len;
    pthread_mutex_unlock(&d->embed_mu);
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
    size_t qmax = (size_t)d->cfg->embed_queue_max;
    pthread_mutex_lock(&d->embed_mu);
    while (d->embed_len == qmax) pthread_cond_wait(&d->embed_done_cv, &d->embed_mu);
    d->embed_q[(d->embed_head + d->embed_len) % qmax] = j;
    d->embed_len++;
    metric_gauge_set(d->m_queue, (double)(d->embed_len + d->embed_busy));
    pthread_cond_signal(&d->embed_cv);
    pthread_mutex_unlock(&d->embed_mu);
    return 0;
}

int ssnad_embed_collect(Ssnad *d, char *err, size_t errlen) {
    pthread_mutex_lock(&d->embed_mu);
    SsnadEmbedJob *done = d->embed_done;
    size_t n = d->done_len;
    int lost = d->embed_oom;
    d->embed_done = NULL, d->done_len = d->done_cap = 0;
    metric_gauge_set(d->m_queue, (double)(d->embed_len + d->embed_busy));
    pthread_mutex_unlock(&d->embed_mu);
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
    size_t qmax = (size_t)d->cfg->embed_queue_max;
    pthread_mutex_lock(&d->embed_mu);
    for (size_t i = 0; i < d->embed_len; i++)
        hold_back_job(d, &d->embed_q[(d->embed_head + i) % qmax], parts, n);
    for (size_t i = 0; i < d->embed_busy; i++) hold_back_job(d, &d->embed_batch[i], parts, n);
    for (size_t i = 0; i < d->done_len; i++) hold_back_job(d, &d->embed_done[i], parts, n);
    pthread_mutex_unlock(&d->embed_mu);
}
