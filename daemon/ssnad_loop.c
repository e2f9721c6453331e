/* ssnad_loop.c - the main loop of ssnad: start everything, then poll, apply, publish and
 * checkpoint until a stop signal; shut down with a final checkpoint. */
#include <cblas.h>
#include <signal.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/log.h"
#include "daemon/signals.h"
#include "daemon/ssnad.h"

#define POLL_BURST     512  // messages applied before the loop looks at anything else ...
#define POLL_BURST_MAX 4096 // ... or this many when lists are behind anyway (BACKLOG_USERS)
#define BACKLOG_USERS  512  // dirty users beyond which a turn favours ingest over lists
#define PUBLISH_BUDGET 0.02 // seconds of publishing per loop iteration
#define GAUGE_PERIOD   0.5  // seconds between refreshes of lag / age / rate gauges
#define SLOW_TURN      0.05 // a turn longer than this is logged (debug) with where it went
#define MAX_SETTINGS   128

static const char *const *labels_of(const char **buf, const char *name, const char *value) {
    buf[0] = name, buf[1] = value, buf[2] = NULL;
    return buf;
}

/* Seconds from an event to the training step that learns from it: ~0.1 s when training keeps
 * up, minutes when it does not. */
static const double freshness_buckets[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,  2.5,
                                           5,    10,    25,   50,  100,  250, 600};

static int register_metrics(Ssnad *d, char *err, size_t errlen) {
    MetricsRegistry *r = d->reg;
    const char *l[3];
    const char *h_ev = "Interaction messages by result", *h_it = "Item messages by result";
    d->m_events_applied = metrics_counter(r, "ssnad_events_total", h_ev,
                                          labels_of(l, "result", "applied"), err, errlen);
    d->m_events_dup = metrics_counter(r, "ssnad_events_total", h_ev,
                                      labels_of(l, "result", "duplicate"), err, errlen);
    d->m_events_rejected = metrics_counter(r, "ssnad_events_total", h_ev,
                                           labels_of(l, "result", "rejected"), err, errlen);
    d->m_items_new =
        metrics_counter(r, "ssnad_items_total", h_it, labels_of(l, "result", "new"), err, errlen);
    d->m_items_changed = metrics_counter(r, "ssnad_items_total", h_it,
                                         labels_of(l, "result", "changed"), err, errlen);
    d->m_items_unchanged = metrics_counter(r, "ssnad_items_total", h_it,
                                           labels_of(l, "result", "unchanged"), err, errlen);
    d->m_items_rejected = metrics_counter(r, "ssnad_items_total", h_it,
                                          labels_of(l, "result", "rejected"), err, errlen);
    d->m_checkpoints =
        metrics_counter(r, "ssnad_checkpoints_total", "checkpoints committed", NULL, err, errlen);
    d->m_queue = metrics_gauge(r, "ssnad_embed_queue_depth", "item texts waiting for the encoder",
                               NULL, err, errlen);
    d->m_ckpt_age = metrics_gauge(r, "ssnad_checkpoint_age_seconds",
                                  "time since the last committed checkpoint", NULL, err, errlen);
    d->m_lag =
        metrics_gauge(r, "ssnad_consumer_lag_messages",
                      "messages not yet consumed over the assigned partitions", NULL, err, errlen);
    d->m_eps =
        metrics_gauge(r, "ssnad_events_per_second", "applied events per second", NULL, err, errlen);
    d->m_latency =
        metrics_histogram(r, "ssnad_event_to_recommendation_seconds",
                          "from an event's consumption to its user's new list being produced", NULL,
                          metrics_latency_buckets, metrics_latency_bucket_count, err, errlen);
    d->m_apply_lag = metrics_histogram(
        r, "ssnad_event_apply_lag_seconds",
        "from an event's Kafka timestamp (when it was produced) to its application", NULL,
        metrics_latency_buckets, metrics_latency_bucket_count, err, errlen);
    d->m_apply_lag_max =
        metrics_gauge(r, "ssnad_event_apply_lag_max_seconds",
                      "the longest of those lags since the daemon started", NULL, err, errlen);
    d->m_users_cached =
        metrics_gauge(r, "ssnad_users_cached", "users held in memory", NULL, err, errlen);
    d->m_users_pending = metrics_gauge(r, "ssnad_users_pending_lists",
                                       "users whose next list is not published yet (they cannot "
                                       "be evicted)",
                                       NULL, err, errlen);
    d->m_users_evicted =
        metrics_counter(r, "ssnad_users_evicted_total",
                        "users evicted from memory (they stay in the store)", NULL, err, errlen);
    d->m_heap = metrics_gauge(r, "ssnad_heap_in_use_bytes",
                              "bytes the process has allocated and not freed (glibc's mallinfo2: "
                              "arenas and mmapped blocks), whether or not yet resident",
                              NULL, err, errlen);
    if (d->m_heap) { // measured from the first scrape on, never a 0 that was not measured
        struct mallinfo2 mi = mallinfo2();
        metric_gauge_set(d->m_heap, (double)(mi.uordblks + mi.hblkhd));
    }
    d->m_lists_refilled = metrics_counter(
        r, "ssnad_lists_refilled_total",
        "lists published again, unchanged sequence, because they were short of top_k and new "
        "items became recommendable",
        NULL, err, errlen);
    d->m_ckpt_seconds =
        metrics_histogram(r, "ssnad_checkpoint_duration_seconds", "time to commit one checkpoint",
                          NULL, metrics_latency_buckets, metrics_latency_bucket_count, err, errlen);
    d->m_offered = metrics_counter(r, "ssnad_train_offered_total",
                                   "sequences offered to the trainer (one per applied event of a "
                                   "user with two or more items)",
                                   NULL, err, errlen);
    d->m_fresh_dropped = metrics_counter(r, "ssnad_train_fresh_dropped_total",
                                         "offered sequences dropped before any training step "
                                         "(training fell behind: the fresh ring of 1,024 was full)",
                                         NULL, err, errlen);
    for (int i = 0; i < d->n_var; i++) {
        SsnadVariant *v = &d->var[i];
        labels_of(l, "variant", v->cv.label);
        v->m_steps =
            metrics_counter(r, "ssnad_train_steps_total", "training steps taken", l, err, errlen);
        const char *lf[] = {"variant", v->cv.label, "source", "fresh", NULL};
        const char *lr[] = {"variant", v->cv.label, "source", "replay", NULL};
        const char *help = "sequences in this variant's training batches: fresh (just offered) "
                           "or replay (sampled from the reservoir of older ones)";
        v->m_seq_fresh = metrics_counter(r, "ssnad_train_sequences_total", help, lf, err, errlen);
        v->m_seq_replay = metrics_counter(r, "ssnad_train_sequences_total", help, lr, err, errlen);
        v->m_freshness = metrics_histogram(
            r, "ssnad_train_freshness_seconds",
            "from a fresh sequence's event applied to the end of the training step that used it", l,
            freshness_buckets, sizeof freshness_buckets / sizeof freshness_buckets[0], err, errlen);
        v->m_loss =
            metrics_gauge(r, "ssnad_train_loss", "loss of the last training step", l, err, errlen);
        v->m_published = metrics_counter(r, "ssnad_recommendations_published_total",
                                         "lists published", l, err, errlen);
        v->m_bounded =
            metrics_counter(r, "ssnad_list_items_bounded_total",
                            "items given an int8 score bound for a list", l, err, errlen);
        v->m_scored =
            metrics_counter(r, "ssnad_list_items_scored_total",
                            "items scored exactly for a list (their bound passed)", l, err, errlen);
        if (!v->m_steps || !v->m_loss || !v->m_published || !v->m_bounded || !v->m_scored ||
            !v->m_seq_fresh || !v->m_seq_replay || !v->m_freshness)
            return -1;
    }
    for (int a = 0; a < d->n_arms; a++) {
        if (d->arm_var[a] >= 0) continue;
        labels_of(l, "variant", d->cfg->variants[a].label);
        if (!(d->m_pop_published = metrics_counter(r, "ssnad_recommendations_published_total",
                                                   "lists published", l, err, errlen)))
            return -1;
    }
    return d->m_events_applied && d->m_events_dup && d->m_events_rejected && d->m_items_new &&
                   d->m_items_changed && d->m_items_unchanged && d->m_items_rejected &&
                   d->m_checkpoints && d->m_queue && d->m_ckpt_age && d->m_lag && d->m_eps &&
                   d->m_latency && d->m_ckpt_seconds && d->m_apply_lag && d->m_apply_lag_max &&
                   d->m_users_cached && d->m_users_pending && d->m_users_evicted &&
                   d->m_lists_refilled && d->m_heap && d->m_offered && d->m_fresh_dropped
               ? 0
               : -1;
}

static int health(void *ctx, char **body, size_t *body_len) {
    Ssnad *d = ctx;
    return d->fatal ? 503 : 200;
}

/* kafka.* pass-through as KafkaSetting ("kafka.<key>"); strings owned by keys[]. */
static size_t kafka_settings(const DaemonConfig *cfg, KafkaSetting *out, char **keys) {
    size_t n = 0;
    for (size_t i = 0; i < config_kafka_count(cfg) && n < MAX_SETTINGS; i++) {
        const char *k, *v;
        config_kafka_entry(cfg, i, &k, &v);
        size_t kl = strlen(k) + 7;
        if (!(keys[n] = malloc(kl))) break;
        snprintf(keys[n], kl, "kafka.%s", k);
        out[n] = (KafkaSetting){keys[n], v};
        n++;
    }
    return n;
}

void ssnad_items_group(const DaemonConfig *cfg, char *out, size_t outlen) {
    if (strcmp(cfg->items_group_id, "auto")) {
        snprintf(out, outlen, "%s", cfg->items_group_id);
        return;
    }
    // the member is its host and its store: stable across restarts, distinct between members
    char member[4096 + 256] = "", host[256] = "", path[4096];
    gethostname(host, sizeof host - 1);
    const char *db = realpath(cfg->db_path, path) ? path : cfg->db_path;
    int n = snprintf(member, sizeof member, "%s:%s", host, db);
    uint64_t h = store_text_hash(member, n > 0 && (size_t)n < sizeof member ? (size_t)n : 0);
    snprintf(out, outlen, "%s.items.%016llx", cfg->group_id, (unsigned long long)h);
}

/* /abtest (HTTP thread): the A/B's own lock guards what it reads. */
static void abtest_report(void *ctx, char **body, size_t *len) {
    Ssnad *d = ctx;
    *body = abtest_report_json(d->ab, len);
}

static int start(Ssnad *d, const DaemonConfig *cfg, KafkaSetting *set, size_t n_set, char *err,
                 size_t errlen) {
    if (!(d->reg = metrics_create())) return -1;
    const char *names[CONFIG_VARIANTS_MAX];
    double weights[CONFIG_VARIANTS_MAX];
    for (int i = 0; i < cfg->n_variants; i++)
        names[i] = cfg->variants[i].label, weights[i] = cfg->variants[i].weight;
    if (abtest_create(names, weights, cfg->n_variants, (int)cfg->top_k, (uint64_t)cfg->ab_seed,
                      d->reg, &d->ab, err, errlen) ||
        abtest_set_window(d->ab, (size_t)cfg->ab_window, err, errlen))
        return -1;
    if (ssnad_state_open(d, cfg, err, errlen) || register_metrics(d, err, errlen)) return -1;
    KafkaProducerOptions po = {.brokers = cfg->brokers, .settings = set, .n_settings = n_set};
    if (kafka_producer_open(&po, &d->producer, err, errlen)) return -1;
    if (ssnad_embed_start(d, err, errlen) || ssnad_train_start(d, err, errlen) ||
        ssnad_publish_start(d, err, errlen))
        return -1;
    // low fetch latency by default; a kafka.* setting of the user comes later and wins
    KafkaSetting cset[MAX_SETTINGS + 1] = {{"kafka.fetch.wait.max.ms", "10"}};
    memcpy(cset + 1, set, n_set * sizeof *set);
    KafkaConsumerOptions co = {.brokers = cfg->brokers,
                               .group_id = cfg->group_id,
                               .topics = (const char *[]){cfg->topic_events},
                               .n_topics = 1,
                               .settings = cset,
                               .n_settings = n_set + 1,
                               .on_assign = ssnad_on_assign,
                               .on_revoke = ssnad_on_revoke,
                               .hook_ctx = d};
    if (kafka_consumer_open(&co, &d->consumer, err, errlen)) return -1;
    // every member reads every item (any list may hold any item of the catalogue): the items
    // topic goes through a group of this member alone, which Kafka assigns every partition,
    // new ones included; offsets still come from the store (ssnad_on_assign)
    char items_group[CONFIG_STRING_MAX + 64];
    ssnad_items_group(cfg, items_group, sizeof items_group);
    co.group_id = items_group;
    co.topics = (const char *[]){cfg->topic_items};
    if (kafka_consumer_open(&co, &d->items_consumer, err, errlen)) return -1;
    log_info("consumers", LOG_STR("group", cfg->group_id), LOG_STR("items_group", items_group));
    if (strcmp(cfg->http_listen, "off")) {
        HttpServerOptions ho = {.listen = cfg->http_listen,
                                .timeout_ms = (int)cfg->http_timeout_ms,
                                .metrics = d->reg,
                                .recommend = ssnad_http_recommend,
                                .recommend_ctx = d,
                                .abtest = abtest_report,
                                .abtest_ctx = d,
                                .health = health,
                                .health_ctx = d};
        if (http_server_start(&ho, &d->http, err, errlen)) return -1;
        log_info("http listening", LOG_STR("listen", cfg->http_listen),
                 LOG_INT("port", http_server_port(d->http)));
    }
    return 0;
}

static void update_gauges(Ssnad *d, double now) {
    metric_gauge_set(d->m_users_cached, (double)d->users.count);
    metric_gauge_set(d->m_users_pending, (double)d->users.n_dirty);
    metric_counter_add(d->m_users_evicted, (double)(d->users.evicted - d->users_evicted_seen));
    d->users_evicted_seen = d->users.evicted;
    metric_gauge_set(d->m_ckpt_age, now - d->last_checkpoint_s);
    metric_gauge_set(d->m_queue, (double)ssnad_embed_depth(d));
    int64_t lag = kafka_consumer_lag(d->consumer),
            items_lag = kafka_consumer_lag(d->items_consumer);
    if (lag >= 0 && items_lag >= 0) metric_gauge_set(d->m_lag, (double)(lag + items_lag));
    if (now - d->heap_since >= 1.0) {
        struct mallinfo2 mi = mallinfo2();
        metric_gauge_set(d->m_heap, (double)(mi.uordblks + mi.hblkhd));
        d->heap_since = now;
    }
    if (now - d->eps_since >= 10.0 || d->eps_since == 0) {
        if (d->eps_since > 0)
            metric_gauge_set(d->m_eps, (double)d->eps_count / (now - d->eps_since));
        d->eps_count = 0, d->eps_since = now;
    }
}

/* Apply up to burst messages of consumer c (waiting up to timeout_ms for the first). Item
 * messages are taken only while the embedding queue has room, so a catalogue load never blocks
 * the thread that applies events: the rest waits in Kafka. Returns the count, or -1 (fatal). */
static int apply_burst(Ssnad *d, KafkaConsumer *c, int items, int timeout_ms, int burst, char *err,
                       size_t errlen) {
    long long every = d->cfg->checkpoint_every_events;
    int n = 0;
    for (; n < burst && !d->fatal && (long long)d->since_checkpoint < every; n++) {
        if (items && !ssnad_embed_room(d)) break;
        KafkaMessage msg = {0};
        int rc = kafka_consumer_poll(c, n ? 0 : timeout_ms, &msg, err, errlen);
        if (rc == 0) break;
        if (rc == KAFKA_POLL_ERROR) {
            log_warn("kafka", LOG_STR("error", err)); // librdkafka keeps reconnecting
            break;
        }
        if (rc == KAFKA_POLL_FATAL) {
            d->fatal = 1, d->exit_code = 1;
            return -1;
        }
        rc = d->txn ? ssnad_ingest_message(d, &msg, err, errlen) : -1;
        kafka_message_release(&msg);
        if (rc) {
            d->fatal = 1, d->exit_code = SSNAD_EXIT_RESTART;
            return -1;
        }
    }
    return d->fatal ? -1 : n;
}

/* One turn: bursts of item and event messages, then embeddings, refreshes, lists and maybe a
 * checkpoint. */
static int turn(Ssnad *d, char *err, size_t errlen) {
    double t0 = clock_monotonic_s();
    // when events come faster than lists can follow, a user with several events in one burst
    // gets one list for all of them: a longer burst is then more events per list, which is
    // what lets ingest run far ahead of the ~2,000 lists/s publishing rate
    int burst = d->dirty.n > BACKLOG_USERS ? POLL_BURST_MAX : POLL_BURST;
    int n_items = apply_burst(d, d->items_consumer, 1, 0, POLL_BURST, err, errlen);
    if (n_items < 0) return -1;
    int n_msg = apply_burst(d, d->consumer, 0, d->dirty.n || n_items ? 0 : 50, burst, err, errlen);
    if (n_msg < 0) return -1;
    n_msg += n_items;
    if (d->fatal) return -1;
    double t_polled = clock_monotonic_s();
    if (ssnad_embed_collect(d, err, errlen)) {
        d->fatal = 1, d->exit_code = SSNAD_EXIT_RESTART;
        return -1;
    }
    double t_embed = clock_monotonic_s();
    ssnad_train_flush_offers(d);
    ssnad_train_take_refresh(d);
    if (ssnad_train_failed(d, err, errlen)) { // the models would stop learning unseen
        d->fatal = 1, d->exit_code = 1;
        return -1;
    }
    double t_refresh = clock_monotonic_s();
    size_t dirty = d->dirty.n;
    if (ssnad_publish_dirty(d, PUBLISH_BUDGET, err, errlen))
        log_error("publish failed", LOG_STR("error", err)); // lists are retried on the next event
    double now = clock_monotonic_s();
    if (now - t0 > SLOW_TURN)
        log_debug("slow turn", LOG_F64("seconds", now - t0), LOG_INT("messages", n_msg),
                  LOG_F64("apply_s", t_polled - t0), LOG_F64("embed_s", t_embed - t_polled),
                  LOG_F64("refresh_s", t_refresh - t_embed), LOG_F64("publish_s", now - t_refresh),
                  LOG_INT("dirty_users", dirty), LOG_INT("dirty_left", d->dirty.n));
    const DaemonConfig *cfg = d->cfg;
    if ((long long)d->since_checkpoint >= cfg->checkpoint_every_events ||
        (now - d->last_checkpoint_s >= cfg->checkpoint_every_seconds &&
         (d->since_checkpoint || d->collected_since_ckpt || d->warm_unsaved)))
        return ssnad_checkpoint(d, "periodic", err, errlen);
    return 0;
}

/* The step shutdown_all is in, for the stop deadline's message (signals_stop_deadline). */
static const char *volatile shutdown_phase;

static void shutdown_all(Ssnad *d, KafkaSetting *set, char **keys, size_t n_set) {
    char err[512];
    // a stop must end: whatever step hangs (a thread that does not join, a client library that
    // does not return), the process exits by the deadline; the last checkpoint stands
    shutdown_phase = "stopping the trainer";
    signals_stop_deadline((unsigned)d->cfg->stop_timeout_seconds, &shutdown_phase,
                          SSNAD_EXIT_STUCK);
    const char *fault = getenv("SSNAD_FAULT"); // the tests' hook: a step that never returns
    if (fault && strstr(fault, "stop_hang"))
        for (;;) pause();
    // training stops first: the checkpoints below then write the models themselves, with every
    // step taken (ssnad_snapshot_now)
    ssnad_train_stop(d);
    // the revoke hooks commit a checkpoint with the offsets
    shutdown_phase = "closing the events consumer";
    kafka_consumer_close(d->consumer);
    shutdown_phase = "closing the items consumer";
    kafka_consumer_close(d->items_consumer);
    d->consumer = d->items_consumer = NULL;
    shutdown_phase = "the final checkpoint";
    if (!d->fatal && d->txn &&
        (d->since_checkpoint || d->collected_since_ckpt || d->warm_unsaved) &&
        ssnad_checkpoint(d, "stop", err, sizeof err))
        log_error("final checkpoint failed", LOG_STR("error", err));
    shutdown_phase = "stopping the HTTP server";
    http_server_stop(d->http);
    shutdown_phase = "stopping the publisher";
    ssnad_publish_stop(d);
    shutdown_phase = "stopping the encoder";
    ssnad_embed_stop(d);
    shutdown_phase = "flushing the producer";
    kafka_producer_close(d->producer, 5000);
    shutdown_phase = "closing the store";
    ssnad_state_close(d);
    signals_stop_deadline(0, NULL, 0); // done (and no alarm may outlive a reload's exec)
    abtest_destroy(d->ab);
    metrics_destroy(d->reg);
    for (size_t i = 0; i < n_set; i++) free(keys[i]);
    (void)set;
}

int ssnad_run(const DaemonConfig *cfg) {
    char err[1024] = "";
    log_configure(stderr, cfg->log_format, cfg->log_level);
    openblas_set_num_threads(1); // the daemon runs its own threads: one BLAS thread per caller
    // a file-size limit (or quota) on the store must be a failed write (EFBIG), which fails the
    // commit cleanly, never a kill in the middle of it
    signal(SIGXFSZ, SIG_IGN);
    if (signals_install(err, sizeof err)) {
        log_error("startup failed", LOG_STR("error", err));
        return 1;
    }
    Ssnad *d = calloc(1, sizeof *d);
    KafkaSetting set[MAX_SETTINGS];
    char *keys[MAX_SETTINGS];
    if (!d) return 1;
    size_t n_set = kafka_settings(cfg, set, keys);
    d->cfg = cfg;
    d->exit_code = 0;
    if (start(d, cfg, set, n_set, err, sizeof err)) {
        log_error("startup failed", LOG_STR("error", err[0] ? err : "out of memory"));
        d->fatal = 1;
        shutdown_all(d, set, keys, n_set);
        free(d);
        return 1;
    }
    log_info("ssnad running", LOG_STR("brokers", cfg->brokers), LOG_STR("group", cfg->group_id));
    const char *fault = getenv("SSNAD_FAULT"); // tests: partitions lost at once, then a stop
    if (fault && strstr(fault, "reload_stop")) // in one of the reload's windows (ssnad_main.c)
        d->fatal = 1, d->exit_code = SSNAD_EXIT_RELOAD;
    double last_gauges = 0;
    while (!signals_stop_requested() && !d->fatal) {
        if (turn(d, err, sizeof err)) {
            log_error("loop stopped", LOG_STR("error", err));
            break;
        }
        double now = clock_monotonic_s();
        if (now - last_gauges >= GAUGE_PERIOD) update_gauges(d, now), last_gauges = now;
    }
    if (!d->fatal) { // answer every applied event before leaving
        double t0 = clock_monotonic_s();
        while (d->dirty.n && clock_monotonic_s() - t0 < 5.0 &&
               !ssnad_publish_dirty(d, 1.0, err, sizeof err))
            ;
        kafka_producer_flush(d->producer, 5000, err, sizeof err);
    }
    int code = d->fatal ? (d->exit_code ? d->exit_code : 1) : 0;
    log_info("ssnad stopping", LOG_INT("exit_code", code),
             LOG_INT("events_applied", d->events_applied));
    shutdown_all(d, set, keys, n_set);
    free(d);
    return code;
}
