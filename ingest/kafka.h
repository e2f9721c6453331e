/* kafka.h - ssna's thin layer over librdkafka: a consumer-group consumer whose offsets the caller
 * owns, an idempotent producer that accounts for every delivery, and the dead-letter publisher.
 *
 * Offsets: ssnad keeps the consumed offsets in its own LMDB checkpoint, in the same transaction as
 * the state they produced, so the consumer never auto-commits. On every assignment the caller's
 * assign hook says where each partition resumes; on every revocation the revoke hook runs first,
 * so the caller can checkpoint before the partitions move to another member.
 *
 * Configuration: every setting whose key starts with "kafka." goes to librdkafka unchanged with
 * the prefix removed ("kafka.security.protocol" -> "security.protocol"), after ssna's defaults, so
 * SASL, TLS and any tuning pass through. An unknown key or a bad value fails the open with an
 * error naming the full key.
 *
 * Threads: each handle is used by one thread at a time; hooks run inside kafka_consumer_poll
 * and kafka_consumer_close on the calling thread.
 */
#ifndef SSNA_INGEST_KAFKA_H
#define SSNA_INGEST_KAFKA_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

/* Special offsets an assign hook may set (librdkafka's values). */
#define KAFKA_OFFSET_BEGINNING (-2)
#define KAFKA_OFFSET_END       (-1)
#define KAFKA_OFFSET_STORED    (-1000) // the group's committed offset, else auto.offset.reset

/* kafka_consumer_poll results besides 1 (a message) and 0 (nothing yet). */
#define KAFKA_POLL_ERROR (-1) // a client error, e.g. a broker is down; librdkafka keeps retrying
#define KAFKA_POLL_FATAL (-2) // the consumer cannot go on (bad config, fatal broker error, hook)

typedef struct {
    const char *key; // "kafka.<librdkafka property>"; other keys are ignored
    const char *value;
} KafkaSetting;

typedef struct {
    const char *topic;
    int32_t partition;
    int64_t offset; // next offset to consume, or a KAFKA_OFFSET_* value
} KafkaPartition;

/* Set parts[i].offset for each newly assigned partition (it starts as KAFKA_OFFSET_STORED).
 * Nonzero: the caller cannot resume (e.g. its store failed); the poll returns KAFKA_POLL_FATAL. */
typedef int (*KafkaAssignHook)(void *ctx, KafkaPartition *parts, size_t n);
/* The partitions are about to be taken away; lost = 1 when they already belong to another member
 * (session timed out), so work on them must be dropped rather than committed. */
typedef void (*KafkaRevokeHook)(void *ctx, const KafkaPartition *parts, size_t n, int lost);

/* One librdkafka log line: level is syslog's (3 error, 4 warning, 6 info, 7 debug), facility
 * librdkafka's short tag ("FAIL", "REQTMOUT"). Called from librdkafka's own threads, so the hook
 * must be thread-safe (daemon/log.h is). */
typedef void (*KafkaLogHook)(void *ctx, int level, const char *facility, const char *message);

/* Route the librdkafka log lines of every consumer and producer opened from now on to hook
 * (NULL: back to librdkafka's stderr lines). Process-wide, like the daemon's logger: call it at
 * start-up, before opening handles. */
void kafka_set_log_hook(KafkaLogHook hook, void *ctx);

typedef struct {
    const char *brokers;  // bootstrap.servers; NULL if a kafka.bootstrap.servers setting has it
    const char *group_id; // group.id; NULL if a kafka.group.id setting has it
    const char *const *topics;
    size_t n_topics;
    const KafkaSetting *settings; // applied after ssna's defaults (no auto commit, earliest)
    size_t n_settings;
    KafkaAssignHook on_assign; // may be NULL: resume at KAFKA_OFFSET_STORED
    KafkaRevokeHook on_revoke; // may be NULL
    void *hook_ctx;
} KafkaConsumerOptions;

/* A consumed message; the pointers stay valid until kafka_message_release. */
typedef struct {
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms; // -1 if the broker gave none
    const uint8_t *key;   // NULL if the message has no key
    size_t key_len;
    const uint8_t *payload;
    size_t payload_len;
    void *handle; // librdkafka's message, owned by this struct
} KafkaMessage;

typedef struct KafkaConsumer KafkaConsumer;

/* Create the consumer and subscribe to the topics. Returns 0, or -1 with err naming the bad
 * setting or topic. */
int kafka_consumer_open(const KafkaConsumerOptions *opt, KafkaConsumer **out, char *err,
                        size_t errlen);
/* Wait up to timeout_ms for the next message, serving rebalances (the hooks) on the way.
 * Returns 1 with *msg filled (release it), 0 on timeout, or KAFKA_POLL_ERROR / KAFKA_POLL_FATAL
 * with err set. */
int kafka_consumer_poll(KafkaConsumer *c, int timeout_ms, KafkaMessage *msg, char *err,
                        size_t errlen);
/* Give a polled message back to librdkafka; a zeroed or already released message is a no-op. */
void kafka_message_release(KafkaMessage *msg);
/* Also commit offsets to the group, asynchronously: not what ssna resumes from, but it lets
 * Kafka's own tools show the group's lag. parts[i].offset is the next offset to consume. */
int kafka_consumer_commit(KafkaConsumer *c, const KafkaPartition *parts, size_t n, char *err,
                          size_t errlen);
/* Messages not yet consumed over the current assignment (high watermark minus position, from
 * the last fetch), or -1 while unknown. */
int64_t kafka_consumer_lag(KafkaConsumer *c);
/* Number of partitions currently assigned to this member. */
size_t kafka_consumer_assignment_size(KafkaConsumer *c);
/* Leave the group (the revoke hook runs) and free the consumer. NULL is a no-op. */
void kafka_consumer_close(KafkaConsumer *c);

typedef struct {
    const char *brokers; // bootstrap.servers; NULL if a kafka.bootstrap.servers setting has it
    const KafkaSetting *settings; // applied after ssna's defaults (idempotence, murmur2)
    size_t n_settings;
    // 0: a send that finds the local queue full gives up after about a second (ssnad: a list
    // not sent is sent again later). 1: it waits, serving delivery reports, until there is room
    // or *stop (if not NULL) is set; the wait is bounded all the same, as librdkafka fails
    // queued messages after message.timeout.ms (ssna replay: slow down, never drop).
    int wait_when_full;
    const volatile sig_atomic_t *stop;
} KafkaProducerOptions;

typedef struct {
    uint64_t queued;    // accepted by kafka_producer_send*
    uint64_t delivered; // acknowledged by the broker
    uint64_t failed;    // permanently failed (after librdkafka's retries)
    uint64_t errors;    // client errors reported on the side (e.g. broker down)
    char last_error[256];
} KafkaProducerStats;

typedef struct KafkaProducer KafkaProducer;

/* Create an idempotent producer (acks=all, no duplicates or reordering on retry; keys are
 * partitioned with murmur2 like the Java client). Returns 0, or -1 with err. */
int kafka_producer_open(const KafkaProducerOptions *opt, KafkaProducer **out, char *err,
                        size_t errlen);
/* Queue a copy of payload (key may be NULL) for topic; when the local queue is full, serve
 * delivery reports until there is room (for up to a second unless wait_when_full). Returns 0,
 * or -1 with err. */
int kafka_producer_send(KafkaProducer *p, const char *topic, const void *key, size_t key_len,
                        const void *payload, size_t payload_len, char *err, size_t errlen);
/* Same, taking ownership of a malloc'd payload (freed by librdkafka, or here on error): the
 * buffer of codec_*_encode goes out without a copy. */
int kafka_producer_send_owned(KafkaProducer *p, const char *topic, const void *key, size_t key_len,
                              uint8_t *payload, size_t payload_len, char *err, size_t errlen);
/* Serve delivery reports for up to timeout_ms (0: just what is ready). */
void kafka_producer_poll(KafkaProducer *p, int timeout_ms);
/* Wait up to timeout_ms until everything queued is delivered or failed. Returns 0 if nothing is
 * left and nothing failed since the previous flush, else -1 with err (counts, last error). */
int kafka_producer_flush(KafkaProducer *p, int timeout_ms, char *err, size_t errlen);
/* Messages queued but not yet delivered or failed. */
int kafka_producer_in_flight(KafkaProducer *p);
/* Counters since open. */
void kafka_producer_stats(KafkaProducer *p, KafkaProducerStats *out);
/* Flush for up to timeout_ms, then free. NULL is a no-op. */
void kafka_producer_close(KafkaProducer *p, int timeout_ms);

/* Publish a DeadLetter for a rejected input message to topic, keyed like the original: its
 * topic, partition, offset, key and payload, and the reason (invalid UTF-8 in reason becomes
 * '?'). Returns 0 when queued, or -1 with err. */
int kafka_dead_letter_publish(KafkaProducer *p, const char *topic, const KafkaMessage *rejected,
                              const char *reason, char *err, size_t errlen);

#endif
