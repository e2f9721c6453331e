/* test_ssnad_rebalance - a second ssnad joins the consumer group while the first is consuming,
 * then leaves again. Each member keeps its own store (docs/ssnad.md), so the member that stays
 * must end with every event applied exactly once: it commits before its partitions move (revoke
 * hook) and, when they come back, resumes from its own stored offsets. The member that left must
 * hold a consistent subset: never more events than the stream, each user's counter equal to its
 * stored sequence length. */
#include "check.h"
#include "ssnad_harness.h"

#define N_USERS  60
#define N_EVENTS 3000
#define N_ITEMS  8

static KafkaProducer *producer;

static void send_range(int from, int to) {
    char err[256];
    for (int e = from; e < to; e++) {
        Ssna__Interaction ev;
        ssna__interaction__init(&ev);
        char user[32], item[32], eid[32];
        snprintf(user, sizeof user, "user-%d", e % N_USERS);
        snprintf(item, sizeof item, "ITEM-%d", (e * 5 + e / N_USERS) % N_ITEMS);
        snprintf(eid, sizeof eid, "event-%d", e);
        ev.user_id = user, ev.item_id = item, ev.event_id = eid, ev.event_time_ms = 1000 + e;
        uint8_t *buf;
        size_t len;
        if (codec_interaction_encode(&ev, NULL, &buf, &len, err, sizeof err) ||
            kafka_producer_send_owned(producer, "events", user, strlen(user), buf, len, err,
                                      sizeof err))
            harness_die("event: %s", err);
    }
    if (kafka_producer_flush(producer, 30000, err, sizeof err)) harness_die("flush: %s", err);
}

/* Sum of the users' stored event counters of a store, and whether each equals the stored
 * sequence length (they do below 50 events per user). */
static long user_events(Harness *h, const char *name, int *consistent) {
    char db[512], err[256];
    snprintf(db, sizeof db, "%s/%s.db", h->work, name);
    StoreOptions o = {.read_only = 1};
    Store *s;
    long sum = 0;
    *consistent = 1;
    if (store_open(&s, db, &o, err, sizeof err)) harness_die("%s", err);
    for (int u = 0; u < N_USERS; u++) {
        char user[32];
        uint32_t seq[STORE_USER_SEQ_MAX];
        size_t n = 0;
        uint64_t events = 0;
        snprintf(user, sizeof user, "user-%d", u);
        int rc = store_get_user_seq(s, NULL, user, seq, STORE_USER_SEQ_MAX, &n, &events, err,
                                    sizeof err);
        if (rc < 0) harness_die("%s", err);
        if (rc == STORE_NOTFOUND) continue;
        sum += (long)events;
        if (events < STORE_USER_SEQ_MAX && events != n) *consistent = 0;
    }
    store_close(s);
    return sum;
}

int main(void) {
    Harness h;
    harness_init(&h, "rebalance");
    harness_broker_start(&h);
    char err[256];
    KafkaProducerOptions po = {.brokers = h.brokers};
    if (kafka_producer_open(&po, &producer, err, sizeof err)) harness_die("producer: %s", err);
    for (int i = 0; i < N_ITEMS; i++) {
        Ssna__Item it;
        ssna__item__init(&it);
        char id[32], title[64];
        snprintf(id, sizeof id, "ITEM-%d", i);
        snprintf(title, sizeof title, "lab instrument number %d", i);
        it.item_id = id, it.title = title;
        uint8_t *buf;
        size_t len;
        if (codec_item_encode(&it, NULL, &buf, &len, err, sizeof err) ||
            kafka_producer_send_owned(producer, "items", id, strlen(id), buf, len, err, sizeof err))
            harness_die("item: %s", err);
    }
    // both members share group.id "rebalance" and have their own stores
    const char *common = "checkpoint.every_seconds = 1\nkafka.session.timeout.ms = 10000\n"
                         "kafka.heartbeat.interval.ms = 1000";
    harness_config(&h, "a", common);
    harness_config(&h, "b", common);
    if (harness_sh("sed -i 's/^group.id = .*/group.id = rebalance/' %s/a.conf %s/b.conf", h.work,
                   h.work))
        harness_die("config");
    pid_t a = harness_ssnad_start(&h, "a");
    send_range(0, N_EVENTS / 3);
    CHECK(harness_wait_events(&h, "a", N_EVENTS / 3, 180) == 0);

    pid_t b = harness_ssnad_start(&h, "b"); // joins: partitions are split
    char bdb[512];
    snprintf(bdb, sizeof bdb, "%s/b.db", h.work);
    send_range(N_EVENTS / 3, 2 * N_EVENTS / 3);
    for (double t0 = harness_now(); !harness_events_applied(bdb) && harness_now() - t0 < 120;)
        usleep(200000);
    CHECK_MSG(harness_events_applied(bdb) > 0, "the second member never consumed anything");
    CHECK(harness_ssnad_stop(b, SIGTERM, 120) == 0); // leaves: a gets everything back
    send_range(2 * N_EVENTS / 3, N_EVENTS);
    CHECK(harness_wait_events(&h, "a", N_EVENTS, 240) == 0);
    sleep(3);
    char adb[512];
    snprintf(adb, sizeof adb, "%s/a.db", h.work);
    CHECK(harness_ssnad_stop(a, SIGTERM, 120) == 0);
    uint64_t applied_a = harness_events_applied(adb), applied_b = harness_events_applied(bdb);
    int cons_a, cons_b;
    long users_a = user_events(&h, "a", &cons_a), users_b = user_events(&h, "b", &cons_b);
    fprintf(stderr, "member a applied %llu, member b %llu (stream %d)\n",
            (unsigned long long)applied_a, (unsigned long long)applied_b, N_EVENTS);
    CHECK_MSG(applied_a == N_EVENTS, "member a applied %llu of %d", (unsigned long long)applied_a,
              N_EVENTS);
    CHECK(users_a == N_EVENTS);
    CHECK(cons_a);
    CHECK(applied_b > 0 && applied_b < N_EVENTS);
    CHECK(users_b == (long)applied_b);
    CHECK(cons_b);
    CHECK(!harness_sh("grep -q '\"why\":\"revoke\"' %s/a.log", h.work)); // a committed first
    kafka_producer_close(producer, 5000);
    harness_cleanup(&h, check_failed_count > 0);
    return check_done();
}
