/* test_ssnad_members - two ssnad members of one group on a real broker, 4 partitions per topic.
 * Users are split between the members by the group (the events topic), but each member reads the
 * WHOLE items topic (a group of its own, items.group.id): both stores hold every item, and each
 * member's lists draw on items of every items partition, not only on the partitions a shared
 * group would have given it (asked through /recommend once both hold the whole catalogue: a list
 * published while the texts were still being encoded draws on the items encoded so far, and under
 * ASan, or on a busy machine, the last items partition can arrive after a member's last event -
 * a CI failure of this test, "b 7", was exactly that). Then one member is killed with SIGKILL: the
 * other takes its users over and ends with every event applied once — each user's stored sequence
 * equals the user's events in the data (an oracle computed here from the slice files, not from a
 * daemon run; the slice's longest history is 34 items, so test.inter's histories are whole, never
 * truncated). */
#include <jansson.h>

#include "check.h"
#include "ssnad_harness.h"

#define N_USERS 150
#define PARTS   4

typedef struct {
    char **ids; // item id by items partition
    int *part;
    size_t n, cap;
} ItemParts;

static void on_item(void *ctx, const KafkaMessage *m) {
    ItemParts *ip = ctx;
    if (ip->n == ip->cap) {
        ip->cap = ip->cap ? 2 * ip->cap : 1024;
        ip->ids = realloc(ip->ids, ip->cap * sizeof *ip->ids);
        ip->part = realloc(ip->part, ip->cap * sizeof *ip->part);
    }
    ip->ids[ip->n] = strndup((const char *)m->key, m->key_len);
    ip->part[ip->n++] = m->partition;
}

static int item_partition(const ItemParts *ip, const char *id) {
    for (size_t i = 0; i < ip->n; i++)
        if (!strcmp(ip->ids[i], id)) return ip->part[i];
    return -1;
}

/* Which member stores a user: 'a', 'b', 0 (neither) or '2' (both). */
static int owner(Harness *h, const char *user) {
    int who = 0;
    for (const char *m = "ab"; *m; m++) {
        char db[512], err[256];
        snprintf(db, sizeof db, "%s/%c.db", h->work, *m);
        StoreOptions o = {.read_only = 1};
        Store *s;
        if (store_open(&s, db, &o, err, sizeof err)) harness_die("%s", err);
        uint32_t seq[STORE_USER_SEQ_MAX];
        size_t n;
        if (store_get_user_seq(s, NULL, user, seq, STORE_USER_SEQ_MAX, &n, NULL, err, sizeof err) ==
            STORE_OK)
            who = who ? '2' : *m;
        store_close(s);
    }
    return who;
}

typedef struct {
    Harness *h;
    const ItemParts *ip;
    unsigned covered[2]; // bit p: a list of member a / b held an item of items partition p
    long lists[2], unknown_items, both;
} Lists;

static void on_list(void *ctx, const KafkaMessage *m) {
    Lists *l = ctx;
    Ssna__Recommendations *r = NULL;
    char err[256];
    if (codec_recommendations_decode(m->payload, m->payload_len, NULL, &r, err, sizeof err))
        harness_die("recommendations: %s", err);
    int who = owner(l->h, r->user_id);
    if (who == '2') l->both++;
    if (who == 'a' || who == 'b') {
        l->lists[who - 'a']++;
        for (size_t i = 0; i < r->n_items; i++) {
            int p = item_partition(l->ip, r->items[i]->item_id);
            if (p < 0)
                l->unknown_items++;
            else
                l->covered[who - 'a'] |= 1u << p;
        }
    }
    codec_recommendations_free(r);
}

/* Items partitions (bits) of the items in member's /recommend answers for every user it holds
 * (users.txt: the slice's users; another member's users get 404); *answers counts the 200s. */
static unsigned recommend_coverage(Harness *h, const char *member, const ItemParts *ip,
                                   long *answers) {
    char path[600], line[256];
    snprintf(path, sizeof path, "%s/users.txt", h->work);
    FILE *f = fopen(path, "r");
    int port = harness_http_port(h, member);
    unsigned covered = 0;
    *answers = 0;
    while (f && port && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char req[300];
        snprintf(req, sizeof req, "/recommend?user=%s", line);
        char *resp = harness_http_get(port, req);
        const char *body = resp && strstr(resp, " 200 ") ? strstr(resp, "\r\n\r\n") : NULL;
        json_t *doc = body ? json_loads(body + 4, 0, NULL) : NULL;
        json_t *items = json_object_get(doc, "items");
        *answers += doc != NULL;
        for (size_t i = 0; i < json_array_size(items); i++) {
            const char *id = json_string_value(json_object_get(json_array_get(items, i), "id"));
            int p = id ? item_partition(ip, id) : -1;
            if (p >= 0) covered |= 1u << p;
        }
        json_decref(doc), free(resp);
    }
    if (f) fclose(f);
    return covered;
}

int main(void) {
    Harness h;
    harness_init(&h, "members");
    harness_slice(&h, N_USERS);
    harness_broker_start(&h);
    // the oracle: "user <id> events <n> seq <last 50 item ids>", as ssnad --dump-state prints
    if (harness_sh(
            "cd %s && awk -F'\\t' 'FNR == 1 && FILENAME ~ /inter$/ {next} "
            "FILENAME ~ /item2index/ {item[$2] = $1; next} "
            "FILENAME ~ /user2index/ {user[$2] = $1; next} "
            "{k = split($2, a, \" \"); a[++k] = $3; line = \"user \" user[$1] \" events \" k "
            "\" seq\"; for (i = (k > 50 ? k - 49 : 1); i <= k; i++) line = line \" \" "
            "item[a[i]]; print line}' Scientific.item2index Scientific.user2index "
            "Scientific.test.inter | sort > %s/oracle.txt && "
            "cut -d' ' -f2 %s/oracle.txt > %s/users.txt",
            h.slice, h.work, h.work, h.work))
        harness_die("oracle");
    // the check below is that each member's lists can draw on every items partition, which
    // says nothing about what a model prefers. Two CI runs since arms from random weights are 64
    // wide failed it on what the model prefers: a member's lists all within one partition (the
    // items it had encoded first, ranked above all others by a model that learnt from them),
    // then, with the weights kept at their start, all within three (most likely 10-item lists
    // too alike across its users). So the weights stay where they start (train.lr at its
    // minimum) and lists hold 100 items of the 967, a quarter of them from each partition
    // unless the order favours one
    const char *common = "checkpoint.every_seconds = 1\nkafka.session.timeout.ms = 6000\n"
                         "kafka.heartbeat.interval.ms = 500\nvariants = mean:a=1\n"
                         "train.lr = 1e-7\ntop_k = 100";
    harness_config(&h, "a", common);
    harness_config(&h, "b", common);
    if (harness_sh("sed -i 's/^group.id = .*/group.id = members/' %s/a.conf %s/b.conf", h.work,
                   h.work))
        harness_die("config");
    pid_t a = harness_ssnad_start(&h, "a"), b = harness_ssnad_start(&h, "b");
    // both members in the group (each has its events partitions) before the stream starts
    for (double t0 = harness_now(); harness_now() - t0 < 120; usleep(300000))
        if (!harness_sh("grep -q '\"topic\":\"events\"' %s/a.log && "
                        "grep -q '\"topic\":\"events\"' %s/b.log && "
                        "[ $(grep -c '\"topic\":\"events\"' %s/a.log %s/b.log | "
                        "awk -F: '{s += $2} END {print s}') -ge %d ]",
                        h.work, h.work, h.work, h.work, PARTS))
            break;
    CHECK(harness_replay(&h, "--seed 3") == 0);
    long n = harness_replay_count(&h, "events"), n_items = harness_replay_count(&h, "items");
    CHECK_MSG(n > 0 && n_items > 0, "replay: %ld items, %ld events", n_items, n);
    char adb[512], bdb[512];
    snprintf(adb, sizeof adb, "%s/a.db", h.work), snprintf(bdb, sizeof bdb, "%s/b.db", h.work);
    for (double t0 = harness_now(); harness_now() - t0 < 300; usleep(300000))
        if (harness_events_applied(adb) + harness_events_applied(bdb) >= (uint64_t)n) break;
    uint64_t ea = harness_events_applied(adb), eb = harness_events_applied(bdb);
    fprintf(stderr, "members: a applied %llu, b %llu of %ld events\n", (unsigned long long)ea,
            (unsigned long long)eb, n);
    CHECK(ea > 0 && eb > 0 && ea + eb == (uint64_t)n); // users split, none applied twice
    // every member holds every item: the items topic is not split
    CHECK(harness_wait_items(&h, "a", (size_t)n_items, 300) == 0);
    CHECK(harness_wait_items(&h, "b", (size_t)n_items, 300) == 0);
    // lists for the last events
    CHECK(harness_wait_lists(&h, "a", 60) == 0 && harness_wait_lists(&h, "b", 60) == 0);
    ItemParts ip = {0};
    harness_read_topic(&h, "items", on_item, &ip);
    Lists l = {.h = &h, .ip = &ip};
    harness_read_topic(&h, "recommendations", on_list, &l);
    fprintf(stderr,
            "members: %zu items; lists a %ld (items partitions %x), b %ld (%x); users in both "
            "stores %ld\n",
            ip.n, l.lists[0], l.covered[0], l.lists[1], l.covered[1], l.both);
    CHECK(ip.n == (size_t)n_items);
    CHECK(l.both == 0 && l.unknown_items == 0);
    CHECK(l.lists[0] > 0 && l.lists[1] > 0);
    // any item of the catalogue: each member's lists, asked now that it holds every item, draw
    // on all four items partitions (the published ones on those encoded when they were made).
    // Lists made while a member held part of the catalogue are made again once it holds over
    // twice as much (the refill rule, docs/ssnad.md "Publishing"): on the publisher's next
    // turns, so the answers are asked again until they cover it, for at most 60 s.
    long answers[2];
    unsigned now[2], all = (1u << PARTS) - 1;
    for (double t0 = harness_now();; sleep(1)) {
        now[0] = recommend_coverage(&h, "a", &ip, &answers[0]);
        now[1] = recommend_coverage(&h, "b", &ip, &answers[1]);
        if ((now[0] == all && now[1] == all) || harness_now() - t0 > 60) break;
    }
    fprintf(stderr, "members: /recommend answers a %ld (items partitions %x), b %ld (%x)\n",
            answers[0], now[0], answers[1], now[1]);
    CHECK(answers[0] > 0 && answers[1] > 0 && answers[0] + answers[1] == N_USERS);
    CHECK_MSG(now[0] == all && now[1] == all, "items partitions in /recommend lists: a %x, b %x",
              now[0], now[1]);

    // b dies; a takes its users over (its partitions are new to a's store: read from the start)
    CHECK(harness_ssnad_stop(b, SIGKILL, 30) == 128 + SIGKILL);
    CHECK(harness_wait_events(&h, "a", (uint64_t)n, 300) == 0);
    CHECK(harness_ssnad_stop(a, SIGTERM, 120) == 0);
    CHECK(harness_events_applied(adb) == (uint64_t)n);
    if (harness_sh("%s/daemon/ssnad --dump-state %s --users %s/users.txt | grep '^user ' | sort > "
                   "%s/a.users",
                   h.build, adb, h.work, h.work))
        harness_die("dump");
    int same = !harness_sh("cmp -s %s/a.users %s/oracle.txt", h.work, h.work);
    if (!same) harness_sh("diff %s/oracle.txt %s/a.users | head -5 >&2", h.work, h.work);
    CHECK_MSG(same, "after the takeover, a's users differ from the data (%s/a.users)", h.work);
    for (size_t i = 0; i < ip.n; i++) free(ip.ids[i]);
    free(ip.ids), free(ip.part);
    harness_cleanup(&h, check_failed_count > 0);
    return check_done();
}
