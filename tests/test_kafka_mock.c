/* test_kafka_mock - ingest/kafka.h against librdkafka's mock cluster (real protocol on loopback):
 * produce and consume through the wrappers, resume offsets set by the assign hook, revocation
 * and re-assignment when a second group member joins and leaves, dead letters, and kafka.*
 * pass-through errors that name the key. */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <string.h>
#include <time.h>

#include "model/clock.h"
#include "check.h"
#include "ingest/codec.h"
#include "ingest/kafka.h"

#define N_USERS    7
#define N_EVENTS   120
#define RESUME_AT  5 // the assign hook resumes partition 0 here, as ssnad would from LMDB
#define PARTITIONS 2

static const KafkaSetting test_settings[] = {
    {"kafka.session.timeout.ms", "6000"}, // the mock's rejoin wait is session.timeout.ms - 1 s
    {"kafka.fetch.wait.max.ms", "10"},
    {"kafka.topic.metadata.refresh.interval.ms", "500"},
    {"not.kafka.ignored", "whatever"}, // only kafka.* keys pass through
};

typedef struct {
    int assigns, revokes;
    size_t assigned; // partitions held after the last hook
    int64_t start_offset[PARTITIONS];
} Member;

static int on_assign(void *ctx, KafkaPartition *parts, size_t n) {
    Member *m = ctx;
    m->assigns++;
    m->assigned += n;
    for (size_t i = 0; i < n; i++) {
        CHECK(!strcmp(parts[i].topic, "events"));
        CHECK(parts[i].offset == KAFKA_OFFSET_STORED);
        parts[i].offset = parts[i].partition == 0 ? RESUME_AT : KAFKA_OFFSET_BEGINNING;
    }
    return 0;
}

static void on_revoke(void *ctx, const KafkaPartition *parts, size_t n, int lost) {
    Member *m = ctx;
    m->revokes++;
    m->assigned -= n;
    CHECK(!lost);
}

static KafkaConsumer *open_member(const char *brokers, const char *group, const char *topic,
                                  Member *m) {
    const char *topics[] = {topic};
    KafkaConsumerOptions opt = {.brokers = brokers,
                                .group_id = group,
                                .topics = topics,
                                .n_topics = 1,
                                .settings = test_settings,
                                .n_settings = sizeof test_settings / sizeof test_settings[0],
                                .on_assign = m ? on_assign : NULL,
                                .on_revoke = m ? on_revoke : NULL,
                                .hook_ctx = m};
    KafkaConsumer *c = NULL;
    char err[512] = "";
    CHECK_MSG(kafka_consumer_open(&opt, &c, err, sizeof err) == 0, "%s", err);
    return c;
}

static void produce_events(KafkaProducer *p) {
    char err[512] = "";
    for (int i = 0; i < N_EVENTS; i++) {
        char user[32], item[32];
        snprintf(user, sizeof user, "user-%d", i % N_USERS);
        snprintf(item, sizeof item, "item-%d", i);
        Ssna__Interaction in = SSNA__INTERACTION__INIT;
        in.user_id = user;
        in.item_id = item;
        in.event_time_ms = 1000 + i;
        uint8_t *buf;
        size_t len;
        CHECK(codec_interaction_encode(&in, NULL, &buf, &len, err, sizeof err) == 0);
        CHECK_MSG(kafka_producer_send_owned(p, "events", user, strlen(user), buf, len, err,
                                            sizeof err) == 0,
                  "%s", err);
    }
    CHECK_MSG(kafka_producer_flush(p, 30000, err, sizeof err) == 0, "%s", err);
    KafkaProducerStats st;
    kafka_producer_stats(p, &st);
    CHECK_MSG(st.queued == N_EVENTS && st.delivered == N_EVENTS && st.failed == 0,
              "queued %llu delivered %llu failed %llu", (unsigned long long)st.queued,
              (unsigned long long)st.delivered, (unsigned long long)st.failed);
    CHECK(kafka_producer_in_flight(p) == 0);
}

/* Consume until every event but the skipped ones arrived; check the resume point, the per-user
 * order and that one user's events all sit in one partition (keyed partitioning). */
static void consume_events(KafkaConsumer *c, Member *m) {
    int seen = 0, want = N_EVENTS - RESUME_AT;
    int64_t last_time[N_USERS] = {0}, first_offset[PARTITIONS] = {-1, -1};
    int user_partition[N_USERS] = {-1, -1, -1, -1, -1, -1, -1};
    char err[512];
    double deadline = clock_monotonic_s() + 90;
    while (seen < want && clock_monotonic_s() < deadline) {
        KafkaMessage msg;
        int rc = kafka_consumer_poll(c, 100, &msg, err, sizeof err);
        CHECK_MSG(rc >= KAFKA_POLL_ERROR, "%s", err);
        if (rc != 1) continue;
        seen++;
        CHECK(msg.partition >= 0 && msg.partition < PARTITIONS);
        if (msg.partition >= 0 && msg.partition < PARTITIONS && first_offset[msg.partition] < 0)
            first_offset[msg.partition] = msg.offset;
        Ssna__Interaction *in = NULL;
        CHECK_MSG(
            codec_interaction_decode(msg.payload, msg.payload_len, NULL, &in, err, sizeof err) == 0,
            "%s", err);
        if (in) {
            int u = atoi(in->user_id + 5);
            CHECK(u >= 0 && u < N_USERS && msg.key_len == strlen(in->user_id) &&
                  !memcmp(msg.key, in->user_id, msg.key_len));
            if (u >= 0 && u < N_USERS) {
                CHECK_MSG(in->event_time_ms > last_time[u], "user %d out of order", u);
                last_time[u] = in->event_time_ms;
                if (user_partition[u] < 0) user_partition[u] = msg.partition;
                CHECK(user_partition[u] == msg.partition);
            }
        }
        codec_interaction_free(in);
        kafka_message_release(&msg);
    }
    CHECK_MSG(seen == want, "consumed %d of %d", seen, want);
    CHECK_MSG(first_offset[0] == RESUME_AT, "partition 0 resumed at %lld",
              (long long)first_offset[0]);
    CHECK_MSG(first_offset[1] == 0, "partition 1 began at %lld", (long long)first_offset[1]);
    CHECK(m->assigns >= 1 && m->assigned == PARTITIONS);
    CHECK(kafka_consumer_assignment_size(c) == PARTITIONS);
    CHECK_MSG(kafka_consumer_lag(c) == 0, "lag %lld", (long long)kafka_consumer_lag(c));
}

/* A second member joins (both get one partition), then leaves (the first gets both back). */
static void rebalance(const char *brokers, KafkaConsumer *a, Member *ma) {
    Member mb = {0};
    KafkaConsumer *b = open_member(brokers, "ssna-test", "events", &mb);
    char err[512];
    KafkaMessage msg;
    double deadline = clock_monotonic_s() + 90;
    while (clock_monotonic_s() < deadline && !(ma->assigned == 1 && mb.assigned == 1)) {
        if (kafka_consumer_poll(a, 50, &msg, err, sizeof err) == 1) kafka_message_release(&msg);
        if (kafka_consumer_poll(b, 50, &msg, err, sizeof err) == 1) kafka_message_release(&msg);
    }
    CHECK_MSG(ma->assigned == 1 && mb.assigned == 1, "split %zu / %zu", ma->assigned, mb.assigned);
    CHECK(ma->revokes >= 1);
    int revokes_before = mb.revokes;
    kafka_consumer_close(b);
    CHECK_MSG(mb.revokes == revokes_before + 1 && mb.assigned == 0, "b: %d revokes, %zu held",
              mb.revokes, mb.assigned);
    deadline = clock_monotonic_s() + 90;
    while (clock_monotonic_s() < deadline && ma->assigned != PARTITIONS)
        if (kafka_consumer_poll(a, 100, &msg, err, sizeof err) == 1) kafka_message_release(&msg);
    CHECK_MSG(ma->assigned == PARTITIONS, "a holds %zu after b left", ma->assigned);
}

static void dead_letter(const char *brokers, KafkaProducer *p) {
    const uint8_t garbage[] = {0x0A, 0x05, 'a'};
    KafkaMessage rejected = {.topic = "events",
                             .partition = 1,
                             .offset = 42,
                             .key = (const uint8_t *)"user-3",
                             .key_len = 6,
                             .payload = garbage,
                             .payload_len = sizeof garbage};
    char err[512] = "";
    CHECK_MSG(kafka_dead_letter_publish(p, "dead-letter", &rejected, "Interaction: bad \xff length",
                                        err, sizeof err) == 0,
              "%s", err);
    CHECK_MSG(kafka_producer_flush(p, 30000, err, sizeof err) == 0, "%s", err);
    KafkaConsumer *c = open_member(brokers, "ssna-dlq-reader", "dead-letter", NULL);
    if (!c) return;
    KafkaMessage msg;
    int got = 0;
    double deadline = clock_monotonic_s() + 90;
    while (!got && clock_monotonic_s() < deadline) {
        if (kafka_consumer_poll(c, 100, &msg, err, sizeof err) != 1) continue;
        got = 1;
        CHECK(msg.key_len == 6 && !memcmp(msg.key, "user-3", 6));
        Ssna__DeadLetter *dl = NULL;
        CHECK_MSG(
            codec_dead_letter_decode(msg.payload, msg.payload_len, NULL, &dl, err, sizeof err) == 0,
            "%s", err);
        if (dl) {
            CHECK(!strcmp(dl->source_topic, "events") && dl->source_partition == 1);
            CHECK(dl->source_offset == 42 && dl->rejected_at_ms > 0);
            CHECK(dl->payload.len == sizeof garbage && !memcmp(dl->payload.data, garbage, 3));
            CHECK_MSG(!strcmp(dl->error, "Interaction: bad ? length"), "%s", dl->error);
        }
        codec_dead_letter_free(dl);
        kafka_message_release(&msg);
    }
    CHECK(got);
    kafka_consumer_close(c);
}

static void config_errors(const char *brokers) {
    char err[512] = "";
    KafkaProducer *p = NULL;
    KafkaSetting unknown[] = {{"kafka.no.such.property", "1"}};
    KafkaProducerOptions po = {.brokers = brokers, .settings = unknown, .n_settings = 1};
    CHECK(kafka_producer_open(&po, &p, err, sizeof err) == -1 && p == NULL);
    CHECK_MSG(strstr(err, "kafka.no.such.property") != NULL, "%s", err);
    KafkaSetting bad_value[] = {{"kafka.linger.ms", "-7"}};
    po.settings = bad_value;
    CHECK(kafka_producer_open(&po, &p, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "kafka.linger.ms") != NULL, "%s", err);
    KafkaSetting empty[] = {{"kafka.", "x"}};
    po.settings = empty;
    CHECK(kafka_producer_open(&po, &p, err, sizeof err) == -1);

    // a consumer without a group id anywhere, and one whose group comes from kafka.group.id
    const char *topics[] = {"events"};
    KafkaConsumer *c = NULL;
    KafkaConsumerOptions co = {.brokers = brokers, .topics = topics, .n_topics = 1};
    CHECK(kafka_consumer_open(&co, &c, err, sizeof err) == -1 && c == NULL);
    CHECK_MSG(strstr(err, "group") != NULL, "%s", err);
    KafkaSetting bad_consumer[] = {{"kafka.group.id", "g"}, {"kafka.auto.offset.reset", "soon"}};
    co.settings = bad_consumer;
    co.n_settings = 2;
    CHECK(kafka_consumer_open(&co, &c, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "kafka.auto.offset.reset") != NULL, "%s", err);
    co.n_settings = 1;
    CHECK_MSG(kafka_consumer_open(&co, &c, err, sizeof err) == 0, "%s", err);
    kafka_consumer_close(c);

    // the bootstrap servers may come through kafka.* as well, and the producer works with them
    char servers[256];
    snprintf(servers, sizeof servers, "%s", brokers);
    KafkaSetting via_setting[] = {{"kafka.bootstrap.servers", servers},
                                  {"kafka.client.id", "ssna-test"}};
    KafkaProducerOptions vo = {.settings = via_setting, .n_settings = 2};
    CHECK_MSG(kafka_producer_open(&vo, &p, err, sizeof err) == 0, "%s", err);
    if (p) {
        CHECK(kafka_producer_send(p, "events", "k", 1, "\x0a\x01u\x12\x01i", 6, err, sizeof err) ==
              0);
        CHECK_MSG(kafka_producer_flush(p, 30000, err, sizeof err) == 0, "%s", err);
        kafka_producer_close(p, 1000);
    }
}

static void count_log_line(void *ctx, int level, const char *facility, const char *message) {
    __atomic_fetch_add((int *)ctx, 1, __ATOMIC_RELAXED); // librdkafka threads call this
}

/* With the only broker down, a message times out: the delivery report counts it as failed and
 * flush says so, naming the count. */
static void delivery_failure(rd_kafka_mock_cluster_t *mock, const char *brokers) {
    char err[512] = "";
    KafkaSetting quick[] = {{"kafka.message.timeout.ms", "1500"}};
    static int log_lines;
    kafka_set_log_hook(count_log_line, &log_lines);
    KafkaProducerOptions po = {.brokers = brokers, .settings = quick, .n_settings = 1};
    KafkaProducer *p = NULL;
    CHECK_MSG(kafka_producer_open(&po, &p, err, sizeof err) == 0, "%s", err);
    if (!p) return;
    rd_kafka_mock_broker_set_down(mock, 1);
    CHECK(kafka_producer_send(p, "events", "k", 1, "x", 1, err, sizeof err) == 0);
    CHECK(kafka_producer_flush(p, 30000, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "1 failed") != NULL, "%s", err);
    KafkaProducerStats st;
    kafka_producer_stats(p, &st);
    CHECK(st.queued == 1 && st.failed == 1 && st.delivered == 0 && st.last_error[0]);
    rd_kafka_mock_broker_set_up(mock, 1);
    kafka_producer_close(p, 1000);
    // the lost connection was reported through the hook, not on stderr
    CHECK_MSG(__atomic_load_n(&log_lines, __ATOMIC_RELAXED) > 0, "no log line reached the hook");
    kafka_set_log_hook(NULL, NULL);
}

/* A full local queue with the broker down: by default the send gives up after about a second,
 * naming the cause; with wait_when_full it waits until librdkafka has failed the queued
 * messages (message.timeout.ms) and then queues the new one. */
static void full_queue(rd_kafka_mock_cluster_t *mock, const char *brokers) {
    char err[512] = "";
    KafkaSetting small[] = {{"kafka.message.timeout.ms", "1500"},
                            {"kafka.queue.buffering.max.messages", "2"}};
    rd_kafka_mock_broker_set_down(mock, 1);
    for (int wait = 0; wait < 2; wait++) {
        KafkaProducerOptions po = {
            .brokers = brokers, .settings = small, .n_settings = 2, .wait_when_full = wait};
        KafkaProducer *p = NULL;
        CHECK_MSG(kafka_producer_open(&po, &p, err, sizeof err) == 0, "%s", err);
        if (!p) continue;
        for (int i = 0; i < 2; i++)
            CHECK(kafka_producer_send(p, "events", "k", 1, "x", 1, err, sizeof err) == 0);
        double t0 = clock_monotonic_s();
        int rc = kafka_producer_send(p, "events", "k", 1, "x", 1, err, sizeof err);
        double waited = clock_monotonic_s() - t0;
        KafkaProducerStats st;
        kafka_producer_stats(p, &st);
        if (!wait) {
            CHECK_MSG(rc == -1 && strstr(err, "Queue full") && waited < 5, "rc %d after %.1f s: %s",
                      rc, waited, err);
            CHECK(st.queued == 2);
        } else {
            CHECK_MSG(rc == 0 && waited > 1.0, "rc %d after %.1f s: %s", rc, waited, err);
            CHECK(st.queued == 3 && st.failed >= 2);
        }
        kafka_producer_close(p, 100);
    }
    rd_kafka_mock_broker_set_up(mock, 1);
}

int main(void) {
    char err[512];
    // The mock cluster lives inside a client handle of its own.
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "topic.metadata.refresh.interval.ms", "500", err, sizeof err);
    rd_kafka_t *host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    CHECK_MSG(host != NULL, "%s", err);
    if (!host) return check_done();
    rd_kafka_mock_cluster_t *mock = rd_kafka_mock_cluster_new(host, 1);
    CHECK(mock != NULL);
    if (!mock) return check_done();
    const char *brokers = rd_kafka_mock_cluster_bootstraps(mock);
    CHECK(rd_kafka_mock_topic_create(mock, "events", PARTITIONS, 1) == 0);
    CHECK(rd_kafka_mock_topic_create(mock, "dead-letter", 1, 1) == 0);

    KafkaProducer *p = NULL;
    KafkaProducerOptions po = {.brokers = brokers};
    CHECK_MSG(kafka_producer_open(&po, &p, err, sizeof err) == 0, "%s", err);
    if (p) {
        produce_events(p);
        Member ma = {0};
        KafkaConsumer *a = open_member(brokers, "ssna-test", "events", &ma);
        if (a) {
            consume_events(a, &ma);
            rebalance(brokers, a, &ma);
            kafka_consumer_close(a);
            CHECK(ma.assigned == 0);
        }
        dead_letter(brokers, p);
        kafka_producer_close(p, 5000);
    }
    config_errors(brokers);
    delivery_failure(mock, brokers);
    full_queue(mock, brokers);
    rd_kafka_mock_cluster_destroy(mock);
    rd_kafka_destroy(host);
    return check_done();
}
