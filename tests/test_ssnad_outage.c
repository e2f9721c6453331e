/* test_ssnad_outage - the broker goes away for longer than the client timeouts (session timeout
 * included) and comes back on the same port: ssnad reconnects (reloading itself from its last
 * checkpoint when the group expired its session) and every event, before, during and after the
 * outage, is applied exactly once. */
#include "check.h"
#include "ssnad_harness.h"

#define N_ITEMS  8
#define N_BEFORE 400
#define N_AFTER  400
#define DOWN_S   15 // > 2 x session.timeout.ms (6 s below: the broker's minimum)

static void send_events(Harness *h, int from, int to) {
    char err[256];
    KafkaProducerOptions po = {.brokers = h->brokers};
    KafkaProducer *p;
    if (kafka_producer_open(&po, &p, err, sizeof err)) harness_die("producer: %s", err);
    static const char *titles[N_ITEMS] = {"Glass beaker set", "Digital caliper", "Nitrile gloves",
                                          "Magnetic stirrer", "Pipette tips",    "Safety goggles",
                                          "Lab thermometer",  "Petri dishes"};
    for (int i = 0; from == 0 && i < N_ITEMS; i++) {
        Ssna__Item it;
        ssna__item__init(&it);
        char id[32];
        snprintf(id, sizeof id, "ITEM-%d", i);
        it.item_id = id, it.title = (char *)titles[i];
        uint8_t *buf;
        size_t len;
        if (codec_item_encode(&it, NULL, &buf, &len, err, sizeof err) ||
            kafka_producer_send_owned(p, "items", id, strlen(id), buf, len, err, sizeof err))
            harness_die("item: %s", err);
    }
    for (int e = from; e < to; e++) {
        Ssna__Interaction ev;
        ssna__interaction__init(&ev);
        char user[32], item[32], eid[32];
        snprintf(user, sizeof user, "user-%d", e % 50);
        snprintf(item, sizeof item, "ITEM-%d", (e * 7 + e / 50) % N_ITEMS);
        snprintf(eid, sizeof eid, "event-%d", e);
        ev.user_id = user, ev.item_id = item, ev.event_id = eid, ev.event_time_ms = 1000 + e;
        uint8_t *buf;
        size_t len;
        if (codec_interaction_encode(&ev, NULL, &buf, &len, err, sizeof err) ||
            kafka_producer_send_owned(p, "events", user, strlen(user), buf, len, err, sizeof err))
            harness_die("event: %s", err);
    }
    if (kafka_producer_flush(p, 30000, err, sizeof err)) harness_die("flush: %s", err);
    kafka_producer_close(p, 1000);
}

int main(void) {
    Harness h;
    harness_init(&h, "outage");
    harness_broker_start(&h);
    harness_config(&h, "out",
                   "checkpoint.every_seconds = 1\nkafka.session.timeout.ms = 6000\n"
                   "kafka.heartbeat.interval.ms = 1000");
    pid_t pid = harness_ssnad_start(&h, "out");
    send_events(&h, 0, N_BEFORE);
    CHECK(harness_wait_events(&h, "out", N_BEFORE, 180) == 0);

    CHECK(harness_broker(&h, "stop") == 0);
    fprintf(stderr, "broker down for %d s\n", DOWN_S);
    sleep(DOWN_S);
    CHECK_MSG(kill(pid, 0) == 0, "ssnad died while the broker was down");
    CHECK(harness_broker(&h, "start") == 0);
    send_events(&h, N_BEFORE, N_BEFORE + N_AFTER);
    CHECK(harness_wait_events(&h, "out", N_BEFORE + N_AFTER, 240) == 0);
    int code = harness_ssnad_stop(pid, SIGTERM, 120);
    CHECK_MSG(code == 0, "ssnad exit status %d", code);
    char db[512];
    snprintf(db, sizeof db, "%s/out.db", h.work);
    CHECK(harness_events_applied(db) == N_BEFORE + N_AFTER); // none twice
    // the path this test is for: the session expired, the partitions were lost, and the daemon
    // reloaded itself (closing a consumer that is in no group any more: kafka.c must not assume
    // a rebalance protocol then)
    CHECK_MSG(harness_sh("grep -q '\"partitions lost\"' %s/out.log && "
                         "grep -q 'reloading from the last checkpoint' %s/out.log",
                         h.work, h.work) == 0,
              "no session expiry and reload in %s/out.log", h.work);
    harness_cleanup(&h, check_failed_count > 0);
    return check_done();
}
