/* kafka.c - librdkafka consumer, producer and dead-letter publisher for ssna (see kafka.h). */
#include "ingest/kafka.h"
#include "model/errmsg.h"

#include <librdkafka/rdkafka.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ingest/codec.h"
#include "model/utf8.h"

#define SETTING_PREFIX "kafka."

/* shown: the name the user wrote (the full "kafka.*" key), so the message points at their file.
 * Values are not echoed: they may be passwords. */
static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, const char *shown,
                    char *err, size_t errlen) {
    char why[512];
    if (rd_kafka_conf_set(conf, name, value, why, sizeof why) != RD_KAFKA_CONF_OK)
        return errmsg_fail(err, errlen, "%s: %s", shown, why);
    return 0;
}

/* ssna's defaults, then the explicit bootstrap/group arguments, then every kafka.* setting, so
 * a user's setting always wins. Returns NULL with err on the first bad key. */
static rd_kafka_conf_t *conf_build(const char *const (*defaults)[2], size_t n_defaults,
                                   const char *brokers, const char *group_id,
                                   const KafkaSetting *settings, size_t n_settings, char *err,
                                   size_t errlen) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    for (size_t i = 0; i < n_defaults; i++)
        if (conf_set(conf, defaults[i][0], defaults[i][1], defaults[i][0], err, errlen)) goto bad;
    if (brokers && conf_set(conf, "bootstrap.servers", brokers, "brokers", err, errlen)) goto bad;
    if (group_id && conf_set(conf, "group.id", group_id, "group id", err, errlen)) goto bad;
    size_t plen = strlen(SETTING_PREFIX);
    for (size_t i = 0; i < n_settings; i++) {
        const char *key = settings[i].key;
        if (!key || strncmp(key, SETTING_PREFIX, plen)) continue;
        if (!key[plen]) {
            errmsg_fail(err, errlen, "%s: empty librdkafka property name", key);
            goto bad;
        }
        if (conf_set(conf, key + plen, settings[i].value ? settings[i].value : "", key, err,
                     errlen))
            goto bad;
    }
    return conf;
bad:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

/* The process-wide log route, captured by each handle when it opens, so a later change never
 * races with librdkafka threads that are logging for an existing handle. */
typedef struct {
    KafkaLogHook hook;
    void *ctx;
} LogRoute;

static LogRoute log_route;

void kafka_set_log_hook(KafkaLogHook hook, void *ctx) {
    log_route = (LogRoute){hook, ctx};
}

/* Both handle structs start with their LogRoute, so the callback finds it through the opaque. */
static void log_cb(const rd_kafka_t *rk, int level, const char *facility, const char *message) {
    const LogRoute *route = rd_kafka_opaque(rk);
    if (route && route->hook) route->hook(route->ctx, level, facility, message);
}

static void route_logs(rd_kafka_conf_t *conf, LogRoute *route) {
    *route = log_route;
    if (route->hook) rd_kafka_conf_set_log_cb(conf, log_cb);
}

/* --- consumer -------------------------------------------------------------------------------- */

struct KafkaConsumer {
    LogRoute log; // first: log_cb reads it through the opaque
    rd_kafka_t *rk;
    KafkaAssignHook on_assign;
    KafkaRevokeHook on_revoke;
    void *hook_ctx;
    int hook_failed;   // set by an assign hook that refused; the next poll reports it
    char failure[256]; // why the consumer cannot go on
};

static KafkaPartition *partitions_from_list(const rd_kafka_topic_partition_list_t *list) {
    KafkaPartition *parts = calloc(list->cnt ? (size_t)list->cnt : 1, sizeof *parts);
    if (!parts) return NULL;
    for (int i = 0; i < list->cnt; i++) {
        parts[i].topic = list->elems[i].topic;
        parts[i].partition = list->elems[i].partition;
        parts[i].offset = list->elems[i].offset;
    }
    return parts;
}

static void consumer_failed(KafkaConsumer *c, const char *what, const char *detail) {
    if (c->hook_failed) return; // keep the first cause
    c->hook_failed = 1;
    snprintf(c->failure, sizeof c->failure, "%s%s%s", what, detail ? ": " : "",
             detail ? detail : "");
}

/* Both rebalance protocols: eager (assign replaces the whole assignment) and cooperative
 * (incremental changes), whichever the partition.assignment.strategy setting picks. */
static void apply_assignment(KafkaConsumer *c, rd_kafka_topic_partition_list_t *list, int add) {
    // NULL while the consumer is in no group (a session lost in a broker outage, then closed)
    const char *protocol = rd_kafka_rebalance_protocol(c->rk);
    int cooperative = protocol && !strcmp(protocol, "COOPERATIVE");
    if (cooperative) {
        rd_kafka_error_t *e = add ? rd_kafka_incremental_assign(c->rk, list)
                                  : rd_kafka_incremental_unassign(c->rk, list);
        if (e) {
            consumer_failed(c, add ? "incremental assign" : "incremental unassign",
                            rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
        }
        return;
    }
    rd_kafka_resp_err_t e = rd_kafka_assign(c->rk, add ? list : NULL);
    if (e) consumer_failed(c, add ? "assign" : "unassign", rd_kafka_err2str(e));
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t why,
                         rd_kafka_topic_partition_list_t *list, void *opaque) {
    KafkaConsumer *c = opaque;
    if (why == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        for (int i = 0; i < list->cnt; i++) list->elems[i].offset = KAFKA_OFFSET_STORED;
        if (c->on_assign && list->cnt) {
            KafkaPartition *parts = partitions_from_list(list);
            if (!parts) {
                consumer_failed(c, "assign", "out of memory");
            } else {
                if (c->on_assign(c->hook_ctx, parts, (size_t)list->cnt))
                    consumer_failed(c, "the assign hook could not resume the partitions", NULL);
                for (int i = 0; i < list->cnt; i++) list->elems[i].offset = parts[i].offset;
                free(parts);
            }
        }
        // assign even after a failed hook: the poll reports the failure and the caller stops
        apply_assignment(c, list, 1);
    } else if (why == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        if (c->on_revoke && list->cnt) {
            KafkaPartition *parts = partitions_from_list(list);
            if (parts)
                c->on_revoke(c->hook_ctx, parts, (size_t)list->cnt, rd_kafka_assignment_lost(rk));
            free(parts);
        }
        apply_assignment(c, list, 0);
    } else {
        consumer_failed(c, "rebalance", rd_kafka_err2str(why));
        rd_kafka_assign(rk, NULL);
    }
}

int kafka_consumer_open(const KafkaConsumerOptions *opt, KafkaConsumer **out, char *err,
                        size_t errlen) {
    // ssna owns the offsets (LMDB), so librdkafka neither stores nor commits them by itself
    static const char *const defaults[][2] = {
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", "earliest"},
        {"enable.partition.eof", "false"},
        {"fetch.wait.max.ms", "100"},
        {"session.timeout.ms", "10000"},
        {"heartbeat.interval.ms", "1000"},
        {"client.id", "ssna"},
        {"topic.metadata.refresh.interval.ms", "10000"},
    };
    *out = NULL;
    if (!opt->n_topics)
        return errmsg_fail(err, errlen, "kafka consumer: no topics to subscribe to");
    KafkaConsumer *c = calloc(1, sizeof *c);
    if (!c) return errmsg_fail(err, errlen, "kafka consumer: out of memory");
    c->on_assign = opt->on_assign;
    c->on_revoke = opt->on_revoke;
    c->hook_ctx = opt->hook_ctx;
    rd_kafka_conf_t *conf = conf_build(defaults, sizeof defaults / sizeof defaults[0], opt->brokers,
                                       opt->group_id, opt->settings, opt->n_settings, err, errlen);
    if (!conf) {
        free(c);
        return -1;
    }
    char why[512] = "";
    size_t n = sizeof why;
    if (rd_kafka_conf_get(conf, "group.id", why, &n) != RD_KAFKA_CONF_OK || !why[0]) {
        rd_kafka_conf_destroy(conf);
        free(c);
        return errmsg_fail(err, errlen, "kafka consumer: no group id (give one or kafka.group.id)");
    }
    rd_kafka_conf_set_opaque(conf, c);
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    route_logs(conf, &c->log);
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why);
    if (!c->rk) { // rd_kafka_new frees conf only on success
        rd_kafka_conf_destroy(conf);
        free(c);
        return errmsg_fail(err, errlen, "kafka consumer: %s", why);
    }
    rd_kafka_poll_set_consumer(c->rk); // errors and rebalances arrive through consumer_poll
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new((int)opt->n_topics);
    for (size_t i = 0; i < opt->n_topics; i++)
        rd_kafka_topic_partition_list_add(topics, opt->topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(c->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (e) {
        errmsg_fail(err, errlen, "kafka consumer: subscribing to %s%s: %s", opt->topics[0],
                    opt->n_topics > 1 ? " and others" : "", rd_kafka_err2str(e));
        rd_kafka_destroy(c->rk);
        free(c);
        return -1;
    }
    *out = c;
    return 0;
}

int kafka_consumer_poll(KafkaConsumer *c, int timeout_ms, KafkaMessage *msg, char *err,
                        size_t errlen) {
    memset(msg, 0, sizeof *msg);
    rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, timeout_ms);
    if (c->hook_failed) {
        if (m) rd_kafka_message_destroy(m);
        errmsg_fail(err, errlen, "kafka consumer: %s", c->failure);
        return KAFKA_POLL_FATAL;
    }
    if (!m) return 0;
    if (m->err) {
        int rc = KAFKA_POLL_ERROR;
        char fatal[256] = "";
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            rc = 0; // only when a user enabled it; not an error
        } else if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
            rd_kafka_fatal_error(c->rk, fatal, sizeof fatal);
            errmsg_fail(err, errlen, "kafka consumer: fatal: %s", fatal);
            rc = KAFKA_POLL_FATAL;
        } else if (m->rkt) {
            errmsg_fail(err, errlen, "kafka consumer: %s [%d]: %s", rd_kafka_topic_name(m->rkt),
                        (int)m->partition, rd_kafka_message_errstr(m));
        } else {
            errmsg_fail(err, errlen, "kafka consumer: %s", rd_kafka_message_errstr(m));
        }
        // Not being allowed to read a topic never heals by itself. A missing topic may: a
        // broker that is still loading its metadata after a restart, or a topic being created,
        // so that one stays a plain error for the caller to count and log.
        if (m->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) rc = KAFKA_POLL_FATAL;
        rd_kafka_message_destroy(m);
        return rc;
    }
    msg->topic = rd_kafka_topic_name(m->rkt);
    msg->partition = m->partition;
    msg->offset = m->offset;
    msg->timestamp_ms = rd_kafka_message_timestamp(m, NULL);
    msg->key = m->key;
    msg->key_len = m->key_len;
    msg->payload = m->payload;
    msg->payload_len = m->len;
    msg->handle = m;
    return 1;
}

void kafka_message_release(KafkaMessage *msg) {
    if (msg && msg->handle) rd_kafka_message_destroy(msg->handle);
    if (msg) memset(msg, 0, sizeof *msg);
}

int kafka_consumer_commit(KafkaConsumer *c, const KafkaPartition *parts, size_t n, char *err,
                          size_t errlen) {
    if (!n) return 0;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)n);
    for (size_t i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(list, parts[i].topic, parts[i].partition)->offset =
            parts[i].offset;
    rd_kafka_resp_err_t e = rd_kafka_commit(c->rk, list, 1);
    rd_kafka_topic_partition_list_destroy(list);
    if (e) return errmsg_fail(err, errlen, "kafka consumer: commit: %s", rd_kafka_err2str(e));
    return 0;
}

int64_t kafka_consumer_lag(KafkaConsumer *c) {
    rd_kafka_topic_partition_list_t *list = NULL;
    if (rd_kafka_assignment(c->rk, &list) || !list) return -1;
    int64_t lag = 0;
    rd_kafka_position(c->rk, list);
    for (int i = 0; i < list->cnt && lag >= 0; i++) {
        int64_t low, high;
        rd_kafka_topic_partition_t *p = &list->elems[i];
        if (rd_kafka_get_watermark_offsets(c->rk, p->topic, p->partition, &low, &high) ||
            high < 0) {
            lag = -1;
        } else {
            int64_t pos = p->offset >= 0 ? p->offset : low; // nothing consumed yet
            lag += high > pos ? high - pos : 0;
        }
    }
    rd_kafka_topic_partition_list_destroy(list);
    return lag;
}

size_t kafka_consumer_assignment_size(KafkaConsumer *c) {
    rd_kafka_topic_partition_list_t *list = NULL;
    if (rd_kafka_assignment(c->rk, &list) || !list) return 0;
    size_t n = (size_t)list->cnt;
    rd_kafka_topic_partition_list_destroy(list);
    return n;
}

void kafka_consumer_close(KafkaConsumer *c) {
    if (!c) return;
    rd_kafka_consumer_close(c->rk); // serves the final revoke through rebalance_cb
    rd_kafka_destroy(c->rk);
    free(c);
}

/* --- producer -------------------------------------------------------------------------------- */

struct KafkaProducer {
    LogRoute log; // first: log_cb reads it through the opaque
    rd_kafka_t *rk;
    KafkaProducerStats stats;
    uint64_t failed_at_flush; // stats.failed at the previous flush
    int wait_when_full;
    const volatile sig_atomic_t *stop;
};

static void producer_note_error(KafkaProducer *p, const char *what, const char *detail) {
    p->stats.errors++;
    snprintf(p->stats.last_error, sizeof p->stats.last_error, "%s: %s", what, detail);
}

static void delivery_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    KafkaProducer *p = opaque;
    if (!m->err) {
        p->stats.delivered++;
        return;
    }
    p->stats.failed++;
    snprintf(p->stats.last_error, sizeof p->stats.last_error, "delivery to %s: %s",
             m->rkt ? rd_kafka_topic_name(m->rkt) : "?", rd_kafka_err2str(m->err));
}

static void producer_error_cb(rd_kafka_t *rk, int code, const char *reason, void *opaque) {
    producer_note_error(opaque, rd_kafka_err2name(code), reason);
}

int kafka_producer_open(const KafkaProducerOptions *opt, KafkaProducer **out, char *err,
                        size_t errlen) {
    // idempotence: retries never duplicate or reorder a partition's messages; murmur2: a key
    // lands on the same partition as with the Java client, so ssna and other producers agree
    static const char *const defaults[][2] = {
        {"enable.idempotence", "true"},
        {"partitioner", "murmur2_random"},
        {"linger.ms", "5"},
        {"client.id", "ssna"},
    };
    *out = NULL;
    KafkaProducer *p = calloc(1, sizeof *p);
    if (!p) return errmsg_fail(err, errlen, "kafka producer: out of memory");
    rd_kafka_conf_t *conf = conf_build(defaults, sizeof defaults / sizeof defaults[0], opt->brokers,
                                       NULL, opt->settings, opt->n_settings, err, errlen);
    if (!conf) {
        free(p);
        return -1;
    }
    p->wait_when_full = opt->wait_when_full, p->stop = opt->stop;
    rd_kafka_conf_set_opaque(conf, p);
    rd_kafka_conf_set_dr_msg_cb(conf, delivery_cb);
    route_logs(conf, &p->log);
    rd_kafka_conf_set_error_cb(conf, producer_error_cb);
    char why[512];
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    if (!p->rk) {
        rd_kafka_conf_destroy(conf);
        free(p);
        return errmsg_fail(err, errlen, "kafka producer: %s", why);
    }
    *out = p;
    return 0;
}

static int produce(KafkaProducer *p, const char *topic, const void *key, size_t key_len,
                   void *payload, size_t payload_len, int msgflags, char *err, size_t errlen) {
    char fatal[256];
    if (rd_kafka_fatal_error(p->rk, fatal, sizeof fatal))
        return errmsg_fail(err, errlen, "kafka producer: fatal: %s", fatal);
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int attempt = 0; attempt < 10 || (p->wait_when_full && !(p->stop && *p->stop));
         attempt++) {
        e = rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key_len),
                              RD_KAFKA_V_VALUE(payload, payload_len), RD_KAFKA_V_MSGFLAGS(msgflags),
                              RD_KAFKA_V_END);
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) break;
        rd_kafka_poll(p->rk, 100); // deliveries free queue space
    }
    if (e)
        return errmsg_fail(err, errlen, "kafka producer: %s (%zu bytes): %s", topic, payload_len,
                           rd_kafka_err2str(e));
    p->stats.queued++;
    rd_kafka_poll(p->rk, 0);
    return 0;
}

int kafka_producer_send(KafkaProducer *p, const char *topic, const void *key, size_t key_len,
                        const void *payload, size_t payload_len, char *err, size_t errlen) {
    return produce(p, topic, key, key_len, (void *)payload, payload_len, RD_KAFKA_MSG_F_COPY, err,
                   errlen);
}

int kafka_producer_send_owned(KafkaProducer *p, const char *topic, const void *key, size_t key_len,
                              uint8_t *payload, size_t payload_len, char *err, size_t errlen) {
    int rc =
        produce(p, topic, key, key_len, payload, payload_len, RD_KAFKA_MSG_F_FREE, err, errlen);
    if (rc) free(payload); // librdkafka takes ownership only of what it accepted
    return rc;
}

void kafka_producer_poll(KafkaProducer *p, int timeout_ms) {
    rd_kafka_poll(p->rk, timeout_ms);
}

int kafka_producer_in_flight(KafkaProducer *p) {
    return (int)(p->stats.queued - p->stats.delivered - p->stats.failed);
}

int kafka_producer_flush(KafkaProducer *p, int timeout_ms, char *err, size_t errlen) {
    rd_kafka_flush(p->rk, timeout_ms);
    int left = kafka_producer_in_flight(p);
    uint64_t failed = p->stats.failed - p->failed_at_flush;
    p->failed_at_flush = p->stats.failed;
    if (left || failed)
        return errmsg_fail(err, errlen,
                           "kafka producer: %d still in flight after %d ms, %llu failed%s%s", left,
                           timeout_ms, (unsigned long long)failed,
                           p->stats.last_error[0] ? "; last error: " : "", p->stats.last_error);
    return 0;
}

void kafka_producer_stats(KafkaProducer *p, KafkaProducerStats *out) {
    *out = p->stats;
}

void kafka_producer_close(KafkaProducer *p, int timeout_ms) {
    if (!p) return;
    rd_kafka_flush(p->rk, timeout_ms);
    rd_kafka_destroy(p->rk);
    free(p);
}

/* --- dead letters ---------------------------------------------------------------------------- */

int kafka_dead_letter_publish(KafkaProducer *p, const char *topic, const KafkaMessage *rejected,
                              const char *reason, char *err, size_t errlen) {
    // the reason may quote input bytes; DeadLetter.error must itself be valid UTF-8
    size_t n = strlen(reason ? reason : "");
    char *why = malloc(n + 2);
    if (!why) return errmsg_fail(err, errlen, "dead letter: out of memory");
    memcpy(why, reason ? reason : "", n + 1);
    for (size_t bad; (bad = utf8_invalid_at(why, n)) < n;) why[bad] = '?';
    if (!n) strcpy(why, "?");
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    Ssna__DeadLetter dl = SSNA__DEAD_LETTER__INIT;
    dl.source_topic = (char *)(rejected->topic ? rejected->topic : "");
    dl.source_partition = rejected->partition;
    dl.source_offset = rejected->offset;
    dl.key.data = (uint8_t *)rejected->key;
    dl.key.len = rejected->key ? rejected->key_len : 0;
    dl.payload.data = (uint8_t *)rejected->payload;
    dl.payload.len = rejected->payload ? rejected->payload_len : 0;
    dl.error = why;
    dl.rejected_at_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    // a rejected message may be as large as Kafka allows: the limit here is Kafka's, not ours
    CodecLimits lim = codec_limits_default();
    lim.max_message_bytes = dl.payload.len + dl.key.len + n + 4096;
    lim.max_text_bytes = n + 1 > lim.max_text_bytes ? n + 1 : lim.max_text_bytes;
    uint8_t *buf;
    size_t len;
    char why_encode[256];
    int rc = codec_dead_letter_encode(&dl, &lim, &buf, &len, why_encode, sizeof why_encode);
    free(why);
    if (rc) return errmsg_fail(err, errlen, "dead letter: %s", why_encode);
    return kafka_producer_send_owned(p, topic, rejected->key, dl.key.len, buf, len, err, errlen);
}
