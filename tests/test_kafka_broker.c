/* test_kafka_broker - the real local Kafka of ops/kafka.sh, end to end: start it in a temporary
 * work folder on free ports, check the topics it created (partitions, compaction), replay a slice
 * of the Scientific data into it with `ssna replay`, consume it back through ingest/kafka.h,
 * stop and restart the broker on the same port under a live consumer that then gets both the old
 * data and what is replayed after the restart; `ssna replay --skip --items none` continuing the
 * first replay; stop it.
 * A missing java or missing Kafka jars make ops/kafka.sh fail, and so this test. */
#include <arpa/inet.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "model/clock.h"
#include "check.h"
#include "ingest/codec.h"
#include "ingest/kafka.h"
#include "ingest/replay_source.h"

#define REPLAYED 300

static char work[256], brokers[64], kafka_sh_path[1024];
static int broker_started;

static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof a) &&
        !getsockname(fd, (struct sockaddr *)&a, &len))
        port = ntohs(a.sin_port);
    if (fd >= 0) close(fd);
    return port;
}

/* Run a shell command line; returns its exit status (or -1). */
static int run(const char *cmd) {
    fprintf(stderr, "+ %s\n", cmd);
    int st = system(cmd);
    return st == -1 || !WIFEXITED(st) ? -1 : WEXITSTATUS(st);
}

static int kafka_sh(const char *action) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "bash '%s' %s '%s'", kafka_sh_path, action, work);
    return run(cmd);
}

/* Partition count and cleanup.policy of a topic, through librdkafka's metadata and admin API. */
static void check_topic(rd_kafka_t *rk, const char *topic, int partitions, const char *policy) {
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    CHECK(rd_kafka_metadata(rk, 0, t, &md, 10000) == 0);
    if (md) {
        CHECK_MSG(
            md->topic_cnt == 1 && !md->topics[0].err && md->topics[0].partition_cnt == partitions,
            "%s: %d partitions, error %s", topic, md->topic_cnt ? md->topics[0].partition_cnt : -1,
            md->topic_cnt ? rd_kafka_err2str(md->topics[0].err) : "no topic");
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(t);

    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_ConfigResource_t *res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
    rd_kafka_DescribeConfigs(rk, &res, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 15000);
    const char *found = NULL;
    const rd_kafka_DescribeConfigs_result_t *r =
        ev ? rd_kafka_event_DescribeConfigs_result(ev) : NULL;
    size_t n_res = 0, n_cfg = 0;
    const rd_kafka_ConfigResource_t **rs =
        r ? rd_kafka_DescribeConfigs_result_resources(r, &n_res) : NULL;
    const rd_kafka_ConfigEntry_t **cfg =
        n_res ? rd_kafka_ConfigResource_configs(rs[0], &n_cfg) : NULL;
    for (size_t i = 0; i < n_cfg; i++)
        if (!strcmp(rd_kafka_ConfigEntry_name(cfg[i]), "cleanup.policy"))
            found = rd_kafka_ConfigEntry_value(cfg[i]);
    CHECK_MSG(found && !strcmp(found, policy), "%s: cleanup.policy %s, expected %s", topic,
              found ? found : "(none)", policy);
    if (ev) rd_kafka_event_destroy(ev);
    rd_kafka_ConfigResource_destroy(res);
    rd_kafka_queue_destroy(q);
}

static void check_topics(void) {
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    CHECK_MSG(rk != NULL, "%s", err);
    if (!rk) return;
    check_topic(rk, "events", 4, "delete");
    check_topic(rk, "items", 4, "delete");
    check_topic(rk, "recommendations", 4, "compact");
    check_topic(rk, "dead-letter", 1, "delete");
    rd_kafka_destroy(rk);
}

typedef struct {
    int events, items, bad;
    char users[2 * REPLAYED][64];
    long long last_time[2 * REPLAYED];
    int n_users;
    char event_items[2 * REPLAYED][64]; // distinct items the events name
    int n_event_items;
    int64_t next[2][8]; // the reader's own positions: [events, items][partition] -> next offset
    char event_ids[4 * REPLAYED][64]; // every event id read (duplicates across replays kept once)
    int n_event_ids;
} Consumed;

/* The reader resumes where it was, as ssnad does from its checkpoint: the group's committed
 * offsets are never used, so without this a re-assignment starts again at the beginning. */
static int resume_hook(void *ctx, KafkaPartition *parts, size_t n) {
    Consumed *c = ctx;
    for (size_t i = 0; i < n; i++) {
        int t = strcmp(parts[i].topic, "events") != 0;
        if (parts[i].partition < 8 && c->next[t][parts[i].partition] > 0)
            parts[i].offset = c->next[t][parts[i].partition];
    }
    return 0;
}

/* Index of s in list[0..*n), appended when new and there is room. */
static int find_or_add(char (*list)[64], int *n, const char *s) {
    int i = 0;
    while (i < *n && strcmp(list[i], s)) i++;
    if (i == *n && i < 2 * REPLAYED) snprintf(list[(*n)++], 64, "%s", s);
    return i;
}

static void note_event(Consumed *c, const KafkaMessage *m) {
    char err[256];
    Ssna__Interaction *in = NULL;
    if (codec_interaction_decode(m->payload, m->payload_len, NULL, &in, err, sizeof err)) {
        c->bad++;
        fprintf(stderr, "events offset %lld: %s\n", (long long)m->offset, err);
        return;
    }
    c->events++;
    CHECK(m->key_len == strlen(in->user_id) && !memcmp(m->key, in->user_id, m->key_len));
    int u = find_or_add(c->users, &c->n_users, in->user_id);
    int id = 0;
    while (id < c->n_event_ids && strcmp(c->event_ids[id], in->event_id)) id++;
    if (id == c->n_event_ids && id < 4 * REPLAYED)
        snprintf(c->event_ids[c->n_event_ids++], 64, "%s", in->event_id);
    find_or_add(c->event_items, &c->n_event_items, in->item_id);
    if (u < 2 * REPLAYED) {
        CHECK_MSG(in->event_time_ms > c->last_time[u], "user %s: events out of order", in->user_id);
        c->last_time[u] = in->event_time_ms;
    }
    codec_interaction_free(in);
}

static KafkaConsumer *open_reader(const char *group, Consumed *c) {
    const char *topics[] = {"events", "items"};
    KafkaSetting settings[] = {{"kafka.fetch.wait.max.ms", "10"}};
    KafkaConsumerOptions opt = {.brokers = brokers,
                                .group_id = group,
                                .topics = topics,
                                .n_topics = 2,
                                .settings = settings,
                                .n_settings = 1,
                                .on_assign = resume_hook,
                                .hook_ctx = c};
    KafkaConsumer *k = NULL;
    char err[512] = "";
    CHECK_MSG(kafka_consumer_open(&opt, &k, err, sizeof err) == 0, "%s", err);
    return k;
}

/* Poll until c holds `want` events, then a second of quiet for trailing items, or a deadline;
 * for at least min_s seconds (an outage: nothing may be fatal meanwhile). */
static void drain(KafkaConsumer *k, int want, double min_s, Consumed *c) {
    char err[512];
    double start = clock_monotonic_s(), deadline = start + 120;
    int idle = 0;
    while (clock_monotonic_s() < deadline &&
           (c->events < want || idle < 10 || clock_monotonic_s() < start + min_s)) {
        KafkaMessage m;
        int rc = kafka_consumer_poll(k, 100, &m, err, sizeof err);
        CHECK_MSG(rc != KAFKA_POLL_FATAL, "%s", err);
        if (rc == KAFKA_POLL_FATAL) break;
        if (rc != 1) {
            idle += c->events >= want;
            continue;
        }
        int t = strcmp(m.topic, "events") != 0;
        if (m.partition >= 0 && m.partition < 8) c->next[t][m.partition] = m.offset + 1;
        if (!t) {
            note_event(c, &m);
        } else {
            Ssna__Item *it = NULL;
            if (codec_item_decode(m.payload, m.payload_len, NULL, &it, err, sizeof err) == 0)
                c->items++;
            else
                c->bad++;
            codec_item_free(it);
        }
        kafka_message_release(&m);
    }
}

/* Read events and items from the start with a fresh group until `want` events arrived. */
static void consume(const char *group, int want, Consumed *c) {
    memset(c, 0, sizeof *c);
    KafkaConsumer *k = open_reader(group, c);
    if (!k) return;
    drain(k, want, 0, c);
    kafka_consumer_close(k);
}

static int replay(const char *build, const char *data, int limit, int seed, const char *extra) {
    char cmd[4096], ssna[1024];
    snprintf(ssna, sizeof ssna, "%s/daemon/ssna", build);
    CHECK_MSG(access(ssna, X_OK) == 0, "%s is not built", ssna);
    snprintf(cmd, sizeof cmd,
             "'%s' replay --data '%s/amazon-scientific' --brokers %s --limit %d --seed %d --quiet "
             "%s",
             ssna, data, brokers, limit, seed, extra ? extra : "--items just-in-time");
    return run(cmd);
}

/* `ssna replay --skip N --items none` continues an earlier replay of the same seed: the events
 * it publishes are those at positions N.. of the interleaving, with no Item messages. */
static void check_skip(const char *build, const char *data, Consumed *c, int events_before,
                       int items_before) {
    char dir[1024], err[512];
    snprintf(dir, sizeof dir, "%s/amazon-scientific", data);
    ReplaySource src;
    ReplayEvent *ev = NULL;
    CHECK_MSG(replay_source_load(dir, &src, err, sizeof err) == 0 &&
                  replay_source_interleave(&src, 3, &ev, err, sizeof err) == 0,
              "%s", err);
    CHECK(replay(build, data, 100, 3, "--items none --skip 300") == 0);
    memset(c, 0, sizeof *c);
    KafkaConsumer *k = open_reader("broker-test-3", c);
    if (k) {
        drain(k, events_before + 100, 0, c);
        kafka_consumer_close(k);
    }
    CHECK_MSG(c->events == events_before + 100 && c->items == items_before,
              "--skip: %d events, %d items", c->events, c->items);
    int missing = 0;
    for (int i = REPLAYED; ev && i < REPLAYED + 100; i++) {
        char id[128];
        snprintf(id, sizeof id, "%s:%u", src.seqs.user_ids[ev[i].user], (unsigned)ev[i].pos);
        int j = 0;
        while (j < c->n_event_ids && strcmp(c->event_ids[j], id)) j++;
        missing += j == c->n_event_ids;
    }
    CHECK_MSG(missing == 0, "--skip 300: %d of events 300..399 of the interleaving not published",
              missing);
    free(ev);
    replay_source_free(&src);
}

static void stop_broker(void) {
    if (broker_started) CHECK(kafka_sh("stop") == 0);
    broker_started = 0;
}

int main(void) {
    const char *src = getenv("SSNA_SOURCE_DIR"), *build = getenv("SSNA_BUILD_DIR");
    const char *data = getenv("SSNA_DATA_DIR");
    CHECK_MSG(src && build && data, "SSNA_SOURCE_DIR, SSNA_BUILD_DIR, SSNA_DATA_DIR must be set "
                                    "(run through ctest)");
    if (!src || !build || !data) return check_done();
    snprintf(kafka_sh_path, sizeof kafka_sh_path, "%s/ops/kafka.sh", src);
    check_temp_dir(work, sizeof work, "kafka-test");
    int port = free_port(), cport = free_port();
    while (cport == port) cport = free_port();
    CHECK(port > 0 && cport > 0);
    char value[32];
    snprintf(value, sizeof value, "%d", port);
    setenv("SSNA_KAFKA_PORT", value, 1);
    snprintf(value, sizeof value, "%d", cport);
    setenv("SSNA_KAFKA_CONTROLLER_PORT", value, 1);
    setenv("SSNA_KAFKA_HEAP", "384m", 1);
    snprintf(brokers, sizeof brokers, "127.0.0.1:%d", port);

    CHECK(kafka_sh("status") == 1); // nothing there yet
    int started = kafka_sh("start") == 0;
    CHECK_MSG(started, "ops/kafka.sh start failed: is java 17+ on PATH and are the jars in "
                       "ops/kafka/lib (ops/setup.sh)?");
    broker_started = 1; // stop even after a half-failed start
    if (started) {
        CHECK(kafka_sh("status") == 0);
        check_topics();

        CHECK(replay(build, data, REPLAYED, 3, NULL) == 0);
        Consumed *c = calloc(1, sizeof *c);
        consume("broker-test-1", REPLAYED, c);
        CHECK_MSG(c->events == REPLAYED && c->bad == 0, "%d events, %d bad", c->events, c->bad);
        // just in time: exactly one Item per distinct item of the slice
        CHECK_MSG(c->items == c->n_event_items, "%d items for %d distinct", c->items,
                  c->n_event_items);
        CHECK(c->n_users > 1);
        int items_before = c->items;

        // An outage: one reader keeps its consumer while the broker stops and comes back on the
        // same port. The log survives the restart (formatted once), and what is produced after
        // it reaches the same reader exactly once: no event lost, none repeated.
        memset(c, 0, sizeof *c);
        KafkaConsumer *k = open_reader("broker-test-2", c);
        if (k) {
            drain(k, REPLAYED, 0, c);
            CHECK_MSG(c->events == REPLAYED && c->items == items_before, "%d events, %d items",
                      c->events, c->items);
            CHECK(kafka_sh("stop") == 0);
            CHECK(kafka_sh("status") == 1);
            drain(k, REPLAYED, 3, c); // down for a while: errors at most, nothing fatal
            CHECK(kafka_sh("start") == 0);
            CHECK(replay(build, data, REPLAYED / 2, 4, NULL) == 0);
            drain(k, REPLAYED + REPLAYED / 2, 0, c);
            CHECK_MSG(c->events == REPLAYED + REPLAYED / 2 && c->bad == 0,
                      "after the restart: %d events, %d bad", c->events, c->bad);
            kafka_consumer_close(k);
        }
        check_skip(build, data, c, REPLAYED + REPLAYED / 2, c->items); // every item so far
        free(c);
    }
    stop_broker();
    CHECK(kafka_sh("status") == 1);
    check_remove_tree(work);
    return check_done();
}
