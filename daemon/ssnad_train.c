/* ssnad_train.c - the training thread: mini-batches that mix fresh sequences (users whose
 * sequence just changed, from a bounded ring: when events come faster than training, the oldest
 * fresh sequences are dropped, so the backlog stays bounded) with a replay sample of older ones
 * (a reservoir over every sequence offered, against forgetting). Variants train round-robin on
 * their training copies; every REFRESH_STEPS steps or REFRESH_SECONDS the trainer computes item
 * vectors with its parameters and hands both to the main thread, which swaps them into the
 * serving copy, so user and item vectors always come from the same parameters. */
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "daemon/cgroup.h"
#include "daemon/log.h"
#include "daemon/ssnad.h"
#include "model/errmsg.h"
#include "model/pool.h"
#include "model/rng.h"

#define OFFER_STAGE 512 // offers the main thread keeps while feed_mu is busy

typedef struct {
    uint32_t seq[SSNAD_SEQ_MAX];
    int len;
    double offered_s; // monotonic seconds when the event that made it was applied
} SsnadSeq;

/* Item vectors of one variant with the parameters that made them: a refresh handed from the
 * trainer to the main thread, or the serving buffers a hand-over replaced, handed back for the
 * trainer to refill. Rows [0, n) computed, cap allocated. */
typedef struct {
    float *params, *raw, *norm;
    Panels bounds;
    size_t n, cap;
    int64_t steps;
    uint64_t gen; // the item states' generation (Ssnad.state_gen) the vectors were made from
} Refresh;

/* Everything between the main thread and the trainer, under Ssnad.feed_mu (but the staged
 * offers, which are the main thread's alone). */
struct SsnadFeed {
    pthread_t thread;
    pid_t tid;       // its kernel thread id, for ssnad_train_stop to lift its priority
    int threaded;    // a training thread runs (not so for ssnad_train_open's feed)
    SsnadSeq *fresh; // ring [fresh_cap]
    size_t fresh_head, fresh_len, fresh_cap;
    // offers staged by the main thread until feed_mu is free (it never waits for the trainer,
    // which runs at the lowest priority and may be descheduled while it holds the lock); a
    // ring, oldest dropped
    SsnadSeq offer_stage[OFFER_STAGE];
    size_t offer_head, offer_len;
    SsnadSeq *reservoir; // [res_cap]
    size_t res_len, res_cap;
    uint64_t res_seen, rng;
    size_t n_items;         // item rows the trainer may use
    size_t item_cap;        // item rows allocated (every variant's vec_cap): a refresh's size
    uint32_t *changed_rows; // rows below n_items whose states changed since the sync
    size_t n_changed, changed_cap;
    uint64_t gen_told; // every row written up to this state generation is in n_items/changed_rows
    int stop;
    int setup; // 0 until the trainer has set itself up, then 1, or -1 (setup_err)
    char setup_err[512];
    int failed; // the trainer stopped: no memory for its batch, a failed step or refresh
    char error[512];
    Refresh pend[CONFIG_VARIANTS_MAX];  // a refresh ready for the main thread (params set)
    Refresh spare[CONFIG_VARIANTS_MAX]; // buffers back from the main thread
};

static void refresh_free(Refresh *r) {
    free(r->params), free(r->raw), free(r->norm), panel_free(&r->bounds);
    memset(r, 0, sizeof *r);
}

#define FRESH_CAP       1024
#define RESERVOIR_CAP   8192
#define REFRESH_STEPS   20
#define REFRESH_SECONDS 5.0

/* The trainer's own copy of a variant's state rows, so training never holds serve_mu for long. */
typedef struct {
    float *states;
    size_t n, cap;
    double last_refresh, refresh_cost; // seconds
    int64_t refresh_steps;
    int reserved_items; // distinct items of the last reserve() (0: none yet)
    double *counts;     // [counts_cap] times each item was a target of this variant's steps
    size_t counts_cap;  // (train.loss = logq: its candidates' sampling shares)
    size_t centred_on;  // items with states when train.center last centred it (0: never)
    uint64_t gen;       // states as of this generation (Ssnad.state_gen) at least
} TrainView;

/* Rows of a buffer that grows with the catalogue: doubled from 1,024 until it holds `need`, so a
 * catalogue arriving item by item costs log(n) reallocations, not n. */
static size_t doubled_cap(size_t cap, size_t need) {
    if (!cap) cap = 1024;
    while (cap < need) cap *= 2;
    return cap;
}

/* train.loss = logq: add a step's targets[0..N) to the variant's counts (grown with the
 * catalogue) and hand the model the shares it corrects its in-batch logits by. The counts start
 * at 0 with each process: after a restart the shares are relearnt from the stream. 0 or -1. */
static int logq_count(SsnadVariant *v, TrainView *tv, const int *targets, int N, char *err,
                      size_t errlen) {
    if (v->train.cfg.loss != SSNA_LOSS_LOGQ) return 0;
    if (tv->n > tv->counts_cap) {
        size_t cap = doubled_cap(tv->counts_cap, tv->n);
        double *c = realloc(tv->counts, cap * sizeof *c);
        if (!c) return snprintf(err, errlen, "out of memory for %zu item counts", cap), -1;
        memset(c + tv->counts_cap, 0, (cap - tv->counts_cap) * sizeof *c);
        tv->counts = c, tv->counts_cap = cap;
    }
    for (int i = 0; i < N; i++)
        if (targets[i] >= 0 && (size_t)targets[i] < tv->n) tv->counts[targets[i]] += 1.0;
    v->train.cfg.n_items = (int)tv->n;
    return ssna_set_item_counts(&v->train, tv->counts, err, errlen);
}

/* SSNAD_FAULT=train_batch (a test hook, docs/daemon.md): the batch allocation fails, so tests
 * can see that a trainer without memory stops the daemon with its reason. */
static int fault_injected(const char *site) {
    const char *f = getenv("SSNAD_FAULT");
    return f && strstr(f, site) != NULL;
}

/* The trainer cannot go on: record why (the first reason) for the main thread, which stops. */
static void train_fail(Ssnad *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void train_fail(Ssnad *d, const char *fmt, ...) {
    char msg[sizeof d->feed->error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_error("training stopped", LOG_STR("error", msg));
    pthread_mutex_lock(&d->feed_mu);
    if (!d->feed->failed) {
        d->feed->failed = 1;
        memcpy(d->feed->error, msg, sizeof msg);
    }
    pthread_mutex_unlock(&d->feed_mu);
}

int ssnad_train_failed(Ssnad *d, char *err, size_t errlen) {
    if (!d->feed || pthread_mutex_trylock(&d->feed_mu)) return 0;
    int failed = d->feed->failed;
    if (failed) snprintf(err, errlen, "%s", d->feed->error);
    pthread_mutex_unlock(&d->feed_mu);
    return failed;
}

/* One sequence into the fresh ring (oldest dropped when full) and the reservoir. Caller holds
 * feed_mu. */
static void feed_locked(Ssnad *d, const SsnadSeq *s) {
    SsnadFeed *f = d->feed;
    if (f->fresh_len == f->fresh_cap) { // drop the oldest fresh sequence
        f->fresh_head = (f->fresh_head + 1) % f->fresh_cap;
        f->fresh_len--;
        metric_counter_inc(d->m_fresh_dropped);
    }
    f->fresh[(f->fresh_head + f->fresh_len++) % f->fresh_cap] = *s;
    f->res_seen++;
    if (f->res_len < f->res_cap) {
        f->reservoir[f->res_len++] = *s;
    } else {
        uint64_t j = rng_next(&f->rng) % f->res_seen;
        if (j < f->res_cap) f->reservoir[j] = *s;
    }
}

void ssnad_train_offer(Ssnad *d, const uint32_t *seq, int len) {
    SsnadFeed *f = d->feed;
    if (len < 2 || !f) return;         // one item predicts nothing
    if (f->offer_len == OFFER_STAGE) { // the trainer held feed_mu that long: drop oldest
        f->offer_head = (f->offer_head + 1) % OFFER_STAGE;
        f->offer_len--;
        metric_counter_inc(d->m_fresh_dropped);
    }
    SsnadSeq *s = &f->offer_stage[(f->offer_head + f->offer_len++) % OFFER_STAGE];
    memcpy(s->seq, seq, (size_t)len * sizeof *seq);
    s->len = len;
    s->offered_s = clock_monotonic_s();
    metric_counter_inc(d->m_offered);
    ssnad_train_flush_offers(d);
}

void ssnad_train_flush_offers(Ssnad *d) {
    // trylock: a trainer descheduled inside feed_mu (at the lowest priority, on a busy core it
    // can wait 100+ ms for its next slice) must not stall ingest; the staged offers go on a
    // later turn
    SsnadFeed *f = d->feed;
    if (!f || !f->offer_len || pthread_mutex_trylock(&d->feed_mu)) return;
    for (; f->offer_len; f->offer_len--) {
        feed_locked(d, &f->offer_stage[f->offer_head]);
        f->offer_head = (f->offer_head + 1) % OFFER_STAGE;
    }
    pthread_cond_signal(&d->feed_cv);
    pthread_mutex_unlock(&d->feed_mu);
}

void ssnad_train_set_items(Ssnad *d, size_t n_items, long changed_row, uint64_t gen) {
    SsnadFeed *f = d->feed;
    if (!f) return;
    pthread_mutex_lock(&d->feed_mu);
    f->n_items = n_items, f->item_cap = d->item_cap;
    if (gen > f->gen_told) f->gen_told = gen;
    if (changed_row >= 0) {
        if (f->n_changed == f->changed_cap) {
            size_t cap = f->changed_cap ? 2 * f->changed_cap : 256;
            uint32_t *r = realloc(f->changed_rows, cap * sizeof *r);
            if (r) f->changed_rows = r, f->changed_cap = cap;
        }
        // out of memory: the trainer keeps the old row until the next refresh of that row
        if (f->n_changed < f->changed_cap) f->changed_rows[f->n_changed++] = (uint32_t)changed_row;
    }
    pthread_mutex_unlock(&d->feed_mu);
}

/* Take a batch: up to B - replay fresh sequences (first, *n_fresh of them), the rest from the
 * reservoir. Caller holds feed_mu. Returns the number of sequences. */
static int take_batch(Ssnad *d, SsnadSeq *out, int B, int *n_fresh) {
    SsnadFeed *f = d->feed;
    int want_replay = f->fresh_len ? (int)((double)B * d->cfg->train_replay_fraction + 0.5) : B;
    if ((size_t)want_replay > f->res_len) want_replay = (int)f->res_len;
    int n = 0;
    while (n < B - want_replay && f->fresh_len) {
        out[n++] = f->fresh[f->fresh_head];
        f->fresh_head = (f->fresh_head + 1) % f->fresh_cap;
        f->fresh_len--;
    }
    *n_fresh = n;
    for (int i = 0; i < want_replay; i++) out[n++] = f->reservoir[rng_next(&f->rng) % f->res_len];
    return n;
}

#define SYNC_ROWS 128 // new rows copied per hold of serve_mu (~0.6 MB at 3 x 384 floats)

/* The trainer's copy of which item rows have states (Ssnad.present): an item named by an event
 * before its text was encoded is a placeholder of zero states. Its vector is the same for every
 * such item, so a target there would teach every arm that "some item not encoded yet" is what
 * users choose next (and the logq counts would credit it): those positions get no target. */
typedef struct {
    unsigned char *v;
    size_t n, cap;
} TrainPresence;

/* Bring every variant's trainer copy of the state rows up to the main matrices: new rows, and
 * the changed rows[0..n_rows). serve_mu is held for SYNC_ROWS new rows at a time and the copy is
 * grown and touched before: after a catalogue load the new rows are 70+ MB, and the main thread
 * (which publishes lists under serve_mu) must not wait for that copy or its page faults. */
static int sync_views(Ssnad *d, TrainView *views, TrainPresence *present, size_t n_items,
                      const uint32_t *rows, size_t n_rows) {
    if (n_items > present->cap) {
        size_t cap = doubled_cap(present->cap, n_items);
        unsigned char *p = realloc(present->v, cap);
        if (!p) return -1;
        present->v = p, present->cap = cap;
    }
    if (n_items > present->n) { // bytes: one hold of serve_mu however many rows are new
        pthread_mutex_lock(&d->serve_mu);
        memcpy(present->v + present->n, d->present + present->n, n_items - present->n);
        pthread_mutex_unlock(&d->serve_mu);
    }
    for (int i = 0; i < d->n_var; i++) {
        size_t rf = (size_t)d->var[i].cv.layers * (size_t)d->hidden;
        TrainView *tv = &views[i];
        if (n_items > tv->cap) {
            size_t cap = doubled_cap(tv->cap, n_items);
            float *s = realloc(tv->states, cap * rf * sizeof(float));
            if (!s) return -1;
            memset(s + tv->cap * rf, 0, (cap - tv->cap) * rf * sizeof(float));
            tv->states = s, tv->cap = cap;
        }
    }
    for (int i = 0; i < d->n_var; i++) {
        size_t rf = (size_t)d->var[i].cv.layers * (size_t)d->hidden;
        TrainView *tv = &views[i];
        for (size_t r0 = tv->n; r0 < n_items; r0 += SYNC_ROWS) { // rows below n_items are set
            size_t n = n_items - r0 < SYNC_ROWS ? n_items - r0 : SYNC_ROWS;
            pthread_mutex_lock(&d->serve_mu);
            memcpy(tv->states + r0 * rf, d->var[i].states + r0 * rf, n * rf * sizeof(float));
            pthread_mutex_unlock(&d->serve_mu);
        }
    }
    if (n_rows) pthread_mutex_lock(&d->serve_mu); // most steps have no changed rows
    for (size_t r = 0; r < n_rows; r++)           // a placeholder whose text was encoded since
        if (rows[r] < present->n) present->v[rows[r]] = d->present[rows[r]];
    if (n_items > present->n) present->n = n_items;
    for (int i = 0; i < d->n_var; i++) {
        size_t rf = (size_t)d->var[i].cv.layers * (size_t)d->hidden;
        TrainView *tv = &views[i];
        const float *src = d->var[i].states;
        for (size_t r = 0; r < n_rows; r++)
            if (rows[r] < tv->n)
                memcpy(tv->states + rows[r] * rf, src + rows[r] * rf, rf * sizeof(float));
        if (n_items > tv->n) tv->n = n_items;
    }
    if (n_rows) pthread_mutex_unlock(&d->serve_mu);
    return 0;
}

/* train.center: an arm from random weights that has not stepped yet is centred on the items that
 * have states (ssna_center_items: its first lists tell items apart instead of leaning all one way,
 * docs/results.md "Items scored alike"), again whenever more items have states before its first
 * step, and its next refresh is brought forward so that the lists it serves are centred too.
 * Once it steps, the bias trains like any parameter; an init= arm is never touched. 0 or -1. */
static int center_fresh(const Ssnad *d, SsnadVariant *v, TrainView *tv,
                        const TrainPresence *present, char *err, size_t errlen) {
    if (!d->cfg->train_center || v->cv.init[0] || v->train.ps.step > 0) return 0;
    size_t n_present = 0;
    for (size_t i = 0; i < present->n; i++) n_present += present->v[i] != 0;
    if (!n_present || n_present == tv->centred_on) return 0;
    if (ssna_center_items(&v->train, tv->states, present->v, present->n, err, errlen)) return -1;
    tv->centred_on = n_present;
    if (tv->refresh_steps < REFRESH_STEPS - 1) tv->refresh_steps = REFRESH_STEPS - 1;
    log_info("item tower centred", LOG_STR("variant", v->cv.label),
             LOG_INT("items", (long long)n_present));
    return 0;
}

/* One Adam step of v on seqs[0..B): 0, 1 when no position has a target with states (no step),
 * or -1 with err. */
static int step(Ssnad *d, SsnadVariant *v, TrainView *tv, const TrainPresence *present,
                const SsnadSeq *seqs, int B, const AdamConfig *adam, float *loss, char *err,
                size_t errlen) {
    int max_len = v->train.cfg.max_len, N = 0, n_targets = 0;
    int offsets[4097], *items = malloc((size_t)B * SSNAD_SEQ_MAX * sizeof(int));
    int *targets = malloc((size_t)B * SSNAD_SEQ_MAX * sizeof(int));
    int rc = -1;
    if (!items || !targets) goto done;
    offsets[0] = 0;
    for (int r = 0; r < B; r++) {
        int L = seqs[r].len - 1, first = 0; // s[t] predicts s[t + 1]
        if (L > max_len) first = L - max_len, L = max_len;
        for (int t = 0; t < L; t++) {
            uint32_t tg = seqs[r].seq[first + t + 1];
            items[N + t] = (int)seqs[r].seq[first + t];
            targets[N + t] = tg < present->n && present->v[tg] ? (int)tg : -1;
            n_targets += targets[N + t] >= 0;
        }
        N += L;
        offsets[r + 1] = N;
    }
    if (!n_targets) { // every next item a placeholder: nothing to learn yet
        rc = 1;
        goto done;
    }
    SsnaBatch b = {B, offsets, items, targets};
    v->train.cfg.n_items = (int)tv->n;
    params_zero_grad(&v->train.ps);
    if (logq_count(v, tv, targets, N, err, errlen)) goto done;
    rc = ssna_forward(&v->train, &b, tv->states, loss, err, errlen);
    if (!rc) {
        ssna_backward(&v->train);
        adam_step(&v->train.ps, adam);
    }
done:
    free(items), free(targets);
    if (rc < 0 && !err[0]) snprintf(err, errlen, "train: out of memory");
    return rc;
}

/* A training step's scratch memory grows with its batch's positions and distinct items, which
 * rise slowly as users' sequences lengthen: left alone, resident memory creeps up for hours (the
 * soak measured +48 MiB over 30,000 events of Scientific) and a leak could hide in the creep. One
 * step at the largest shape train.batch allows - B rows of max_len positions, every input and
 * target a different item while the catalogue has enough - grows every buffer to its bound at
 * once (about half a GiB per a=3 variant of d = 256 at train.batch 64 with MiniLM: what a
 * long-running daemon, whose users all have max_len items, reaches anyway). Its gradients are
 * dropped and the model's random stream restored: training goes on as if it had not run.
 * Repeated while the catalogue is below that bound, each time it has grown by an eighth of the
 * bound or a quarter (so a catalogue loading item by item costs about ten such steps). */
static int reserve(SsnadVariant *v, TrainView *tv, int B, char *err, size_t errlen) {
    int T = v->train.cfg.max_len, per_row = T + 1, want = B * per_row;
    if (want > (int)tv->n) want = (int)tv->n;
    if (want <= tv->reserved_items || tv->n == 0) return 0;
    int grow = tv->reserved_items / 4 > B * per_row / 8 ? tv->reserved_items / 4 : B * per_row / 8;
    if (want < B * per_row && tv->reserved_items && want < tv->reserved_items + grow) return 0;
    int *offsets = malloc((size_t)(B + 1) * sizeof(int));
    int *items = malloc((size_t)B * T * sizeof(int)),
        *targets = malloc((size_t)B * T * sizeof(int));
    int rc = -1;
    if (offsets && items && targets) {
        offsets[0] = 0;
        for (int r = 0; r < B; r++) {
            for (int t = 0; t < T; t++) {
                items[r * T + t] = (r * per_row + t) % want;
                targets[r * T + t] = (r * per_row + t + 1) % want;
            }
            offsets[r + 1] = (r + 1) * T;
        }
        SsnaBatch b = {B, offsets, items, targets};
        uint64_t rng = v->train.rng;
        float loss;
        v->train.cfg.n_items = (int)tv->n;
        rc = logq_count(v, tv, targets, 0, err, errlen); // shares for every item, none counted
        if (!rc) rc = ssna_forward(&v->train, &b, tv->states, &loss, err, errlen);
        if (!rc) rc = ssna_backward(&v->train);
        v->train.rng = rng;
        params_zero_grad(&v->train.ps);
        if (!rc) tv->reserved_items = want;
    }
    free(offsets), free(items), free(targets);
    if (rc && !err[0]) snprintf(err, errlen, "out of memory for the largest batch (train.batch)");
    return rc;
}

/* Item vectors of every row with the training parameters, handed to the main thread. They are
 * written into the buffers the previous hand-over replaced when those still have the serving
 * size (no 40 MB to allocate and fault in per refresh), and a hand-over of that size is a swap
 * of pointers on the main thread, not a copy. */
static void refresh(Ssnad *d, int vi, TrainView *tv) {
    SsnadVariant *v = &d->var[vi];
    size_t dd = (size_t)v->train.cfg.d, total = v->train.ps.total;
    pthread_mutex_lock(&d->feed_mu);
    size_t cap = d->feed->item_cap > tv->n ? d->feed->item_cap : tv->n;
    pthread_mutex_unlock(&d->feed_mu);
    float *raw, *norm;
    Panels bounds;
    size_t spare_cap = ssnad_train_take_spare(d, vi, &raw, &norm, &bounds);
    // freed outside feed_mu: the main thread blocks on it for item counts and checkpoints
    if (spare_cap != cap) { // the catalogue outgrew them
        free(raw), free(norm), panel_free(&bounds);
        raw = norm = NULL;
    }
    if (!raw) raw = malloc(cap * dd * sizeof(float));
    if (!norm) norm = malloc(cap * dd * sizeof(float));
    float *params = malloc(total * sizeof(float));
    char err[256] = "";
    int rc = !raw || !norm || !params || panel_reserve(&bounds, cap, (int)dd);
    if (!rc) {
        v->train.cfg.n_items = (int)tv->n;
        rc = ssna_item_vectors(&v->train, tv->states, NULL, (int)tv->n, raw, norm, err, sizeof err);
        memcpy(params, v->train.ps.params, total * sizeof(float));
    }
    if (!rc) panel_pack(&bounds, norm, tv->n); // here, not on the main thread
    if (rc) {
        train_fail(d, "variant %s: refresh of the serving vectors failed: %s", v->cv.label,
                   err[0] ? err : "out of memory");
        free(raw), free(norm), free(params), panel_free(&bounds);
        return;
    }
    ssnad_train_post_refresh(d, vi, params, raw, norm, &bounds, tv->n, cap, v->train.ps.step,
                             tv->gen);
}

void ssnad_train_post_refresh(Ssnad *d, int vi, float *params, float *raw, float *norm,
                              Panels *bounds, size_t n, size_t cap, int64_t steps, uint64_t gen) {
    pthread_mutex_lock(&d->feed_mu);
    Refresh *pend = &d->feed->pend[vi], old = *pend; // an untaken older one, freed after unlock
    *pend = (Refresh){params, raw, norm, *bounds, n, cap, steps, gen};
    pthread_mutex_unlock(&d->feed_mu);
    memset(bounds, 0, sizeof *bounds);
    refresh_free(&old);
}

size_t ssnad_train_take_spare(Ssnad *d, int vi, float **raw, float **norm, Panels *bounds) {
    pthread_mutex_lock(&d->feed_mu);
    Refresh *spare = &d->feed->spare[vi], r = *spare;
    memset(spare, 0, sizeof *spare);
    pthread_mutex_unlock(&d->feed_mu);
    *raw = r.raw, *norm = r.norm, *bounds = r.bounds;
    return r.cap;
}

/* Training yields the cores to ingest and publishing, whose latency users see. A niceness alone
 * does not do it: a core busy with a nice-19 trainer is still a busy core, so a serving thread
 * that wakes up is queued on the other one, behind whatever runs there (a co-located broker,
 * say). Under SCHED_IDLE the kernel counts a core that runs only the trainer as idle when it
 * places a waking thread, and preempts the trainer at once. It does not move a thread already
 * queued elsewhere, and under group scheduling (cgroups, autogroups) the trainer's time still
 * counts against the daemon's share (docs/ssnad.md, "Measured"). */
static void train_lower_priority(const DaemonConfig *cfg, pid_t tid) {
    if (cfg->train_sched_idle) {
        struct sched_param sp = {0};
        if (sched_setscheduler(tid, SCHED_IDLE, &sp)) // Linux: a thread id works
            log_warn("train: cannot switch the thread to SCHED_IDLE",
                     LOG_STR("error", strerror(errno)));
    } else if (cfg->train_nice && // Linux keeps a niceness per thread
               setpriority(PRIO_PROCESS, (id_t)tid, (int)cfg->train_nice)) {
        log_warn("train: cannot lower the thread's priority", LOG_INT("nice", cfg->train_nice));
    }
}

/* A stop waits for the step in flight, and on cores saturated by other work a trainer at the
 * lowest priority can take longer than stop.timeout_seconds to finish it (seen once in the
 * soak, a broker restart beside three CPU-bound jobs): so the stop gives the thread back the
 * normal policy first. Best effort: without permission it keeps its priority (and a warning). */
static void train_restore_priority(const DaemonConfig *cfg, pid_t tid) {
    if (!tid) return;
    if (cfg->train_sched_idle) {
        struct sched_param sp = {0};
        if (sched_setscheduler(tid, SCHED_OTHER, &sp))
            log_warn("train: cannot lift the thread out of SCHED_IDLE to stop it",
                     LOG_STR("error", strerror(errno)));
    } else if (cfg->train_nice && setpriority(PRIO_PROCESS, (id_t)tid, 0)) {
        log_warn("train: cannot restore the thread's priority to stop it",
                 LOG_STR("error", strerror(errno)));
    }
}

static void *train_main(void *arg) {
    Ssnad *d = arg;
    SsnadFeed *f = d->feed;
    pthread_setname_np(pthread_self(), "ssnad-train"); // what top -H and /proc show
    train_lower_priority(d->cfg, (pid_t)syscall(SYS_gettid));
    char err_cg[sizeof f->setup_err] = "";
    int join_rc = strcmp(d->cfg->train_cgroup, "off")
                      ? cgroup_join_thread(d->cfg->train_cgroup, err_cg, sizeof err_cg)
                      : 0;
    pthread_mutex_lock(&d->feed_mu); // ssnad_train_start waits for this
    f->tid = (pid_t)syscall(SYS_gettid);
    f->setup = join_rc ? -1 : 1;
    memcpy(f->setup_err, err_cg, sizeof err_cg);
    pthread_cond_broadcast(&d->feed_cv);
    pthread_mutex_unlock(&d->feed_mu);
    if (join_rc) return NULL;
    // train.threads = 2: the pool's helper, created here so that it inherits this thread's
    // policy and cgroup, takes half of each step's loops and products when a core is free
    // (pool_start_for_caller); serving threads never use it
    if (d->cfg->train_threads > 1) {
        if (pool_start_for_caller("ssnad-train-2"))
            log_warn("train: no helper thread (train.threads = 2); training runs on one");
        else if (pool_helper_tid()) // it ran before (an earlier trainer of this process)
            train_lower_priority(d->cfg, (pid_t)pool_helper_tid());
    }
    int B = (int)d->cfg->train_batch, turn = 0;
    long idle_steps = 0;
    AdamConfig adam = adam_defaults();
    SsnadSeq *batch = fault_injected("train_batch") ? NULL : malloc((size_t)B * sizeof *batch);
    if (!batch) {
        train_fail(d, "out of memory for a batch of %d sequences (train.batch)", B);
        return NULL;
    }
    TrainView views[CONFIG_VARIANTS_MAX] = {0};
    TrainPresence present = {0};
    for (int i = 0; i < d->n_var; i++) views[i].last_refresh = clock_monotonic_s();
    pthread_mutex_lock(&d->feed_mu);
    while (!f->stop && !f->failed) {
        // without fresh sequences, replay-only steps continue until they add up to about two
        // passes over the sequences offered so far, then the trainer sleeps until new events come
        int idle_ok = f->res_len && (uint64_t)idle_steps * (uint64_t)B < 2 * f->res_seen;
        if (ssnad_snapshot_wanted(d)) { // between two steps: the checkpoint asked for one
            pthread_mutex_unlock(&d->feed_mu);
            ssnad_snapshot_service(d);
            pthread_mutex_lock(&d->feed_mu);
            continue;
        }
        if (!f->fresh_len && !idle_ok) {
            pthread_cond_wait(&d->feed_cv, &d->feed_mu);
            continue;
        }
        if (!f->fresh_len) idle_steps++;
        int n_fresh = 0, n = take_batch(d, batch, B, &n_fresh);
        size_t n_items = f->n_items, n_rows = f->n_changed;
        uint64_t gen = f->gen_told; // what the sync below copies is at least this new
        uint32_t *rows = f->changed_rows;
        f->changed_rows = NULL, f->n_changed = f->changed_cap = 0;
        pthread_mutex_unlock(&d->feed_mu);

        int vi = turn++ % d->n_var;
        SsnadVariant *v = &d->var[vi];
        TrainView *tv = &views[vi];
        // an arm started from an offline model takes smaller steps (train.lr_init); an arm
        // may name its own (lr=X)
        adam.lr = (float)(v->cv.lr > 0    ? v->cv.lr
                          : v->cv.init[0] ? d->cfg->train_lr_init
                                          : d->cfg->train_lr);
        char err[512] = "";
        float loss = 0;
        int synced = sync_views(d, views, &present, n_items, rows, n_rows), stepped = -1;
        free(rows);
        for (int i = 0; i < d->n_var && !synced; i++) views[i].gen = gen;
        if (synced) {
            train_fail(d, "out of memory for the trainer's copy of %zu item states", n_items);
        } else if (reserve(v, tv, B, err, sizeof err)) {
            train_fail(d, "variant %s: reserving the scratch of a full batch: %s", v->cv.label,
                       err);
        } else if (center_fresh(d, v, tv, &present, err, sizeof err)) {
            train_fail(d, "variant %s: centring its item tower: %s", v->cv.label, err);
        } else {
            stepped = step(d, v, tv, &present, batch, n, &adam, &loss, err, sizeof err);
            if (stepped < 0)
                train_fail(d, "variant %s: training step failed: %s", v->cv.label, err);
        }
        if (stepped == 0) { // 1: every target a placeholder, no step
            metric_counter_inc(v->m_steps);
            metric_gauge_set(v->m_loss, loss);
            metric_counter_add(v->m_seq_fresh, n_fresh);
            metric_counter_add(v->m_seq_replay, n - n_fresh);
            double done = clock_monotonic_s();
            for (int i = 0; i < n_fresh; i++)
                metric_histogram_observe(v->m_freshness, done - batch[i].offered_s);
            // a refresh costs one item-tower pass over the catalogue: keep it under ~20% of
            // the trainer's time however large the catalogue grows
            double since = clock_monotonic_s() - tv->last_refresh;
            if ((++tv->refresh_steps >= REFRESH_STEPS || since >= REFRESH_SECONDS) &&
                since >= 4 * tv->refresh_cost) {
                double t0 = clock_monotonic_s();
                refresh(d, vi, tv); // a failure ends the loop (feed->failed)
                tv->refresh_cost = clock_monotonic_s() - t0;
                tv->refresh_steps = 0, tv->last_refresh = clock_monotonic_s();
            }
        }
        pthread_mutex_lock(&d->feed_mu);
    }
    pthread_mutex_unlock(&d->feed_mu);
    int policy = sched_getscheduler(0); // normal once a stop has lifted it (tests check it)
    log_info("trainer stopped", LOG_STR("policy", policy == SCHED_IDLE    ? "idle"
                                                  : policy == SCHED_OTHER ? "normal"
                                                                          : "other"));
    for (int i = 0; i < d->n_var; i++) free(views[i].states), free(views[i].counts);
    free(present.v);
    free(batch);
    return NULL;
}

int ssnad_train_open(Ssnad *d, char *err, size_t errlen) {
    SsnadFeed *f = calloc(1, sizeof *f);
    if (!f) return errmsg_fail(err, errlen, "train: out of memory");
    pthread_mutex_init(&d->feed_mu, NULL);
    pthread_cond_init(&d->feed_cv, NULL);
    d->feed = f; // from here ssnad_train_stop frees it
    f->fresh_cap = FRESH_CAP, f->res_cap = RESERVOIR_CAP;
    f->fresh = malloc(f->fresh_cap * sizeof *f->fresh);
    f->reservoir = malloc(f->res_cap * sizeof *f->reservoir);
    f->rng = (uint64_t)d->cfg->train_seed * 2654435761u + 1;
    f->n_items = d->n_items, f->item_cap = d->item_cap;
    if (!f->fresh || !f->reservoir) return errmsg_fail(err, errlen, "train: out of memory");
    return 0;
}

int ssnad_train_start(Ssnad *d, char *err, size_t errlen) {
    if (d->cfg->train_batch > 4096) {
        return errmsg_fail(err, errlen, "train.batch: %lld is over 4096", d->cfg->train_batch);
    }
    if (ssnad_train_open(d, err, errlen)) return ssnad_train_stop(d), -1;
    SsnadFeed *f = d->feed;
    if (pthread_create(&f->thread, NULL, train_main, d)) {
        ssnad_train_stop(d);
        return errmsg_fail(err, errlen, "train: cannot start the training thread");
    }
    pthread_mutex_lock(&d->feed_mu);
    while (!f->setup) pthread_cond_wait(&d->feed_cv, &d->feed_mu);
    int setup = f->setup;
    pthread_mutex_unlock(&d->feed_mu);
    if (setup < 0) { // the thread has returned
        pthread_join(f->thread, NULL);
        errmsg_fail(err, errlen, "train.cgroup: %s", f->setup_err);
        ssnad_train_stop(d);
        return -1;
    }
    f->threaded = 1;
    return 0;
}

void ssnad_train_stop(Ssnad *d) {
    SsnadFeed *f = d->feed;
    if (!f) return;
    if (f->threaded) {
        pthread_mutex_lock(&d->feed_mu);
        f->stop = 1;
        pthread_cond_broadcast(&d->feed_cv);
        pid_t tid = f->tid;
        pthread_mutex_unlock(&d->feed_mu);
        train_restore_priority(d->cfg, tid);
        if (d->cfg->train_threads > 1) train_restore_priority(d->cfg, (pid_t)pool_helper_tid());
        pthread_join(f->thread, NULL);
    }
    for (int i = 0; i < CONFIG_VARIANTS_MAX; i++)
        refresh_free(&f->pend[i]), refresh_free(&f->spare[i]);
    free(f->fresh), free(f->reservoir), free(f->changed_rows);
    free(f);
    d->feed = NULL; // feed_mu stays: the snapshots' states still use it
}

/* Exchange v's serving vectors with a refresh's (caller holds serve_mu). */
static void swap_vectors(SsnadVariant *v, float **raw, float **norm, Panels *bounds) {
    float *r = v->raw, *n = v->norm;
    Panels b = v->bounds;
    v->raw = *raw, v->norm = *norm, v->bounds = *bounds;
    *raw = r, *norm = n, *bounds = b;
}

void ssnad_train_take_refresh(Ssnad *d) {
    for (int i = 0; i < d->n_var; i++) {
        SsnadVariant *v = &d->var[i];
        if (!d->feed) return;
        // trylock, as for offers: the main thread never waits for a descheduled trainer; a
        // refresh not taken now is taken on a later turn
        if (pthread_mutex_trylock(&d->feed_mu)) continue;
        Refresh r = d->feed->pend[i];
        if (r.params) memset(&d->feed->pend[i], 0, sizeof r);
        pthread_mutex_unlock(&d->feed_mu);
        if (!r.params) continue;
        size_t dd = (size_t)v->serve.cfg.d, n = r.n;
        char err[256] = "";
        pthread_mutex_lock(&d->serve_mu);
        memcpy(v->serve.ps.params, r.params, v->serve.ps.total * sizeof(float));
        memcpy(v->serve_aux.ps.params, r.params, v->serve.ps.total * sizeof(float));
        v->serve.ps.step = r.steps;
        v->serve_steps = r.steps;
        if (n > d->n_items) n = d->n_items;
        if (r.cap == v->vec_cap) { // the common case: the old vectors become the trainer's spare
            swap_vectors(v, &r.raw, &r.norm, &r.bounds);
        } else if (n) { // the catalogue grew past the trainer's size since its snapshot
            memcpy(v->raw, r.raw, n * dd * sizeof(float));
            memcpy(v->norm, r.norm, n * dd * sizeof(float));
            panel_copy_rows(&v->bounds, &r.bounds, n);
        }
        v->bounds_axis_rows = n;
        // rows that arrived, or got their states, after the trainer's copy: vectors from the new
        // parameters, along the new axis, before anything (/recommend, say) is scored against
        // them (the refresh holds what the copy had: a placeholder's vector, an old text's)
        int rc = ssnad_state_refresh_stale(d, i, n, r.gen, err, sizeof err);
        pthread_mutex_unlock(&d->serve_mu);
        if (rc)
            log_error("serving vectors failed", LOG_STR("variant", v->cv.label),
                      LOG_STR("error", err));
        free(r.params);
        r.params = NULL;
        // the replaced buffers go back for the trainer's next refresh (swapped or copied, they
        // hold r.cap rows); when the trainer holds feed_mu now, they are freed and it allocates
        // new ones
        if (!pthread_mutex_trylock(&d->feed_mu)) {
            Refresh *spare = &d->feed->spare[i];
            if (!spare->raw && !spare->norm && !spare->bounds.cap) {
                *spare = r;
                memset(&r, 0, sizeof r);
            }
            pthread_mutex_unlock(&d->feed_mu);
        }
        refresh_free(&r);
    }
}
