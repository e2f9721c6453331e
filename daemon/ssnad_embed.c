/* ssnad_embed.c - the embedding worker: item texts queued by the main thread go through the
 * frozen encoder on this thread; the main thread collects the states, stores them in its open
 * transaction and makes the items recommendable (cold start). The queue is bounded by
 * embed.queue_max: when it is full the main thread waits (back-pressure on the items topic). */
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "daemon/ssnad.h"

#define EMBED_BATCH 32 // texts per encoder call

static void job_free(SsnadEmbedJob *j) {
    free(j->id), free(j->text), free(j->states), free(j->error);
    memset(j, 0, sizeof *j);
}

/* Encode jobs[0..n); a failing batch is retried text by text so one bad text names itself. */
static void encode_batch(Ssnad *d, SsnadEmbedJob *jobs, int n) {
    size_t per = (size_t)d->layers * (size_t)d->hidden;
    const char *texts[EMBED_BATCH] = {0};
    size_t lens[EMBED_BATCH] = {0};
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
                jobs[i].error = strdup("out of memory");
        }
    } else if (n > 1) {
        for (int i = 0; i < n; i++) encode_batch(d, jobs + i, 1);
    } else {
        jobs[0].error = strdup(out ? err : "out of memory");
    }
    free(out);
}

static void *embed_main(void *arg) {
    Ssnad *d = arg;
    pthread_setname_np(pthread_self(), "ssnad-embed");
    SsnadEmbedJob batch[EMBED_BATCH];
    size_t qmax = (size_t)d->cfg->embed_queue_max;
    pthread_mutex_lock(&d->embed_mu);
    for (;;) {
        while (!d->embed_len && !d->embed_stop) pthread_cond_wait(&d->embed_cv, &d->embed_mu);
        if (!d->embed_len && d->embed_stop) break;
        int n = 0;
        while (d->embed_len && n < EMBED_BATCH) {
            batch[n++] = d->embed_q[d->embed_head];
            d->embed_head = (d->embed_head + 1) % qmax;
            d->embed_len--;
        }
        d->embed_busy = (size_t)n;
        pthread_cond_broadcast(&d->embed_done_cv); // room in the queue
        pthread_mutex_unlock(&d->embed_mu);
        encode_batch(d, batch, n);
        pthread_mutex_lock(&d->embed_mu);
        if (d->done_len + (size_t)n > d->done_cap) {
            size_t cap = (d->done_cap ? d->done_cap * 2 : 64) + (size_t)n;
            SsnadEmbedJob *nd = realloc(d->embed_done, cap * sizeof *nd);
            if (!nd) { // nothing sensible to do: report them as failed below
                for (int i = 0; i < n; i++)
                    log_error("embed: out of memory", LOG_STR("item", batch[i].id)),
                        job_free(&batch[i]);
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
        snprintf(err, errlen, "embed queue: out of memory for %lld entries",
                 d->cfg->embed_queue_max);
        return -1;
    }
    if (pthread_create(&d->embed_thread, NULL, embed_main, d)) {
        snprintf(err, errlen, "embed: cannot start the encoder thread");
        return -1;
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

int ssnad_embed_submit(Ssnad *d, const char *id, const char *text, size_t len, uint64_t hash,
                       uint32_t index, char *err, size_t errlen) {
    SsnadEmbedJob j = {.text_len = len, .hash = hash, .index = index};
    j.id = strdup(id);
    j.text = malloc(len + 1);
    if (!j.id || !j.text) {
        job_free(&j);
        snprintf(err, errlen, "embed queue: out of memory for item %s", id);
        return -1;
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

int ssnad_embed_collect(Ssnad *d, int drain, char *err, size_t errlen) {
    pthread_mutex_lock(&d->embed_mu);
    if (drain)
        while (d->embed_len || d->embed_busy) pthread_cond_wait(&d->embed_done_cv, &d->embed_mu);
    SsnadEmbedJob *done = d->embed_done;
    size_t n = d->done_len;
    d->embed_done = NULL, d->done_len = d->done_cap = 0;
    metric_gauge_set(d->m_queue, (double)(d->embed_len + d->embed_busy));
    pthread_mutex_unlock(&d->embed_mu);
    int rc = 0;
    size_t m = 0;
    SsnadItemState *set = malloc((n ? n : 1) * sizeof *set);
    if (!set) rc = -1, snprintf(err, errlen, "embed: out of memory");
    for (size_t i = 0; i < n && !rc; i++) {
        SsnadEmbedJob *j = &done[i];
        if (j->error) {
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
    for (size_t i = 0; i < n; i++) job_free(&done[i]);
    free(set), free(done);
    return rc ? -1 : 0;
}
