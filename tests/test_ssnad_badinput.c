/* test_ssnad_badinput - hostile input on a real broker: malformed protobuf, invalid UTF-8, empty
 * and oversized texts, empty ids, duplicate events and unknown item ids are counted, logged and
 * dead-lettered (unknown items become placeholders, see docs/ssnad.md) while the daemon keeps
 * running; then a full disk for the LMDB directory (a file-size limit on the daemon) stops it with
 * a clear error and exit status 3, and a restart without the limit loses nothing committed and
 * applies every event exactly once. */
#include <sys/resource.h>

#include "check.h"
#include "ssnad_harness.h"

#define N_FILL 3000 // events of the full-disk phase

static KafkaProducer *producer;

static void send_raw(const char *topic, const char *key, const void *buf, size_t len) {
    char err[256];
    if (kafka_producer_send(producer, topic, key, strlen(key), buf, len, err, sizeof err))
        harness_die("send to %s: %s", topic, err);
}

/* Items are packed with protobuf-c directly so that invalid ones reach the wire. */
static void send_item(const char *id, const char *title, const char *text) {
    Ssna__Item it;
    ssna__item__init(&it);
    it.item_id = (char *)id, it.title = (char *)title, it.text = (char *)text;
    size_t len = ssna__item__get_packed_size(&it);
    uint8_t *buf = malloc(len ? len : 1);
    ssna__item__pack(&it, buf);
    send_raw("items", id[0] ? id : "empty", buf, len);
    free(buf);
}

static void send_event(const char *user, const char *item, const char *event_id) {
    Ssna__Interaction ev;
    ssna__interaction__init(&ev);
    ev.user_id = (char *)user, ev.item_id = (char *)item, ev.event_id = (char *)event_id;
    ev.event_time_ms = 1764000000000;
    size_t len = ssna__interaction__get_packed_size(&ev);
    uint8_t *buf = malloc(len ? len : 1);
    ssna__interaction__pack(&ev, buf);
    send_raw("events", user[0] ? user : "empty", buf, len);
    free(buf);
}

typedef struct {
    long total, malformed_item, malformed_event, duplicate, bad;
} DeadLetters;

static void on_dead_letter(void *ctx, const KafkaMessage *m) {
    DeadLetters *d = ctx;
    Ssna__DeadLetter *dl = NULL;
    char err[256];
    d->total++;
    if (codec_dead_letter_decode(m->payload, m->payload_len, NULL, &dl, err, sizeof err)) {
        d->bad++;
        return;
    }
    if (!strncmp(dl->error, "malformed_item", 14)) d->malformed_item++;
    if (!strncmp(dl->error, "malformed_event", 15)) d->malformed_event++;
    if (!strncmp(dl->error, "duplicate_event", 15)) d->duplicate++;
    if (!dl->payload.len && strncmp(dl->error, "malformed", 9)) d->bad++;
    codec_dead_letter_free(dl);
}

typedef struct {
    long lists, with_placeholder;
} Lists;

static void on_list(void *ctx, const KafkaMessage *m) {
    Lists *l = ctx;
    Ssna__Recommendations *r = NULL;
    char err[256];
    if (codec_recommendations_decode(m->payload, m->payload_len, NULL, &r, err, sizeof err)) return;
    l->lists++;
    for (size_t i = 0; i < r->n_items; i++)
        l->with_placeholder += !strcmp(r->items[i]->item_id, "NEVER-SENT");
    codec_recommendations_free(r);
}

/* ssnad with a file-size limit (the "disk" of its LMDB directory fills up at limit bytes). */
static pid_t start_limited(Harness *h, const char *name, rlim_t limit) {
    char conf[512], log[512], bin[512];
    snprintf(conf, sizeof conf, "%s/%s.conf", h->work, name);
    snprintf(log, sizeof log, "%s/%s.log", h->work, name);
    snprintf(bin, sizeof bin, "%s/daemon/ssnad", h->build);
    pid_t pid = fork();
    if (pid == 0) {
        struct rlimit rl = {limit, limit};
        if (!freopen(log, "a", stderr) || setrlimit(RLIMIT_FSIZE, &rl)) _exit(127);
        execl(bin, bin, "--config", conf, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static int log_has(Harness *h, const char *name, const char *what) {
    return !harness_sh("grep -q '%s' %s/%s.log", what, h->work, name);
}

int main(void) {
    Harness h;
    harness_init(&h, "badinput");
    harness_broker_start(&h);
    harness_config(&h, "bad", "checkpoint.every_seconds = 0.5\ntop_k = 3");
    pid_t pid = harness_ssnad_start(&h, "bad");
    char err[256];
    KafkaProducerOptions po = {.brokers = h.brokers};
    if (kafka_producer_open(&po, &producer, err, sizeof err)) harness_die("producer: %s", err);

    send_item("GOOD-1", "Glass beaker set", "Borosilicate glass beakers, 50 to 1000 ml");
    send_item("GOOD-2", "Digital caliper", "Stainless steel electronic vernier caliper");
    send_item("GOOD-3", "Nitrile gloves", "Powder-free disposable lab gloves");
    send_item("GOOD-4", "Magnetic stirrer", "Hot plate magnetic stirrer with stir bars");
    static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0x0f, 0x12};
    send_raw("items", "garbage", garbage, sizeof garbage); // malformed protobuf
    send_item("EMPTY-TEXT", "", "");                       // an item without any text
    char *big = malloc(70 * 1024 + 1);
    memset(big, 'a', 70 * 1024), big[70 * 1024] = 0;
    send_item("HUGE-TEXT", "huge", big); // over the 64 KiB limit
    free(big);
    send_item("BAD-UTF8", "caf\xc3\x28 beans", "text");     // invalid UTF-8
    send_raw("events", "garbage", garbage, sizeof garbage); // malformed protobuf
    send_event("user-\xe2\x82", "GOOD-1", "e-bad-utf8");    // invalid UTF-8 user id
    send_event("", "GOOD-1", "e-empty-user");               // empty user id
    send_event("user-1", "GOOD-1", "e1");
    send_event("user-1", "GOOD-2", "dup-1");
    send_event("user-1", "GOOD-2", "dup-1"); // the same event again
    send_event("user-2", "GOOD-3", "e2");
    send_event("user-2", "NEVER-SENT", "e3"); // an item whose text never comes
    send_event("user-2", "GOOD-4", "e4");
    send_event("user-3", "GOOD-1", "e5");
    kafka_producer_flush(producer, 10000, err, sizeof err);
    const long applied = 6; // e1, dup-1 once, e2, e3, e4, e5

    CHECK(harness_wait_events(&h, "bad", applied, 180) == 0);
    sleep(2);
    CHECK_MSG(kill(pid, 0) == 0, "ssnad is not running after the bad input");
    DeadLetters dl = {0};
    harness_read_topic(&h, "dead-letter", on_dead_letter, &dl);
    fprintf(stderr, "dead letters: %ld (items %ld, events %ld, duplicates %ld, bad %ld)\n",
            dl.total, dl.malformed_item, dl.malformed_event, dl.duplicate, dl.bad);
    CHECK(dl.total == 8);
    CHECK(dl.malformed_item == 4);
    CHECK(dl.malformed_event == 3);
    CHECK(dl.duplicate == 1);
    CHECK(dl.bad == 0);
    CHECK(log_has(&h, "bad", "\"input rejected\""));
    CHECK(log_has(&h, "bad", "duplicate_event"));
    Lists lists = {0};
    CHECK(harness_wait_lists(&h, "bad", 60) == 0);
    harness_read_topic(&h, "recommendations", on_list, &lists);
    CHECK_MSG(lists.lists >= 3, "%ld lists", lists.lists);
    CHECK(lists.with_placeholder == 0); // an item without a text is never recommended
    CHECK(harness_ssnad_stop(pid, SIGTERM, 120) == 0);

    // full disk: the LMDB file may grow by 64 KiB only; N_FILL new users need far more
    char db[512], path[600];
    snprintf(db, sizeof db, "%s/bad.db", h.work);
    snprintf(path, sizeof path, "%s/data.mdb", db);
    struct stat st;
    CHECK(stat(path, &st) == 0);
    for (int i = 0; i < N_FILL; i++) {
        char user[32], eid[32];
        snprintf(user, sizeof user, "fill-user-%d", i);
        snprintf(eid, sizeof eid, "fill-%d", i);
        send_event(user, i % 2 ? "GOOD-1" : "GOOD-3", eid);
    }
    kafka_producer_flush(producer, 10000, err, sizeof err);
    pid = start_limited(&h, "bad", (rlim_t)st.st_size + 64 * 1024);
    int code = harness_ssnad_stop(pid, 0, 180); // signal 0: just wait for it to stop
    CHECK_MSG(code == 3, "ssnad on a full disk exited with %d, expected 3", code);
    CHECK(log_has(&h, "bad", "\"checkpoint failed\""));
    uint64_t committed = harness_events_applied(db);
    CHECK(committed >= (uint64_t)applied && committed < (uint64_t)applied + N_FILL);

    // the disk has room again: the daemon resumes from its last commit and loses nothing
    pid = harness_ssnad_start(&h, "bad");
    CHECK(harness_wait_events(&h, "bad", applied + N_FILL, 180) == 0);
    CHECK(harness_ssnad_stop(pid, SIGTERM, 120) == 0);
    CHECK(harness_events_applied(db) == (uint64_t)(applied + N_FILL));
    kafka_producer_close(producer, 5000);
    harness_cleanup(&h, check_failed_count > 0);
    return check_done();
}
