/* test_ssnad_e2e - ssnad end to end on a real Kafka broker: replay a slice of Scientific, read
 * the recommendations topic back, and check that every user with events got lists from the
 * variant the A/B hash assigns, that an item published mid-stream is recommended at once (beside
 * the item whose text it copies, with the same score), and that the online hit rate beats a
 * random and a most-popular ranker on the same stream. */
#include <dirent.h>
#include <jansson.h>
#include <sched.h>
#include <sys/stat.h>

#include "check.h"
#include "ssnad_harness.h"

#define N_USERS 100
#define TOP_K   10
#define TWIN_ID "NEW-ITEM-TWIN"

typedef struct {
    char user[64];
    char items[TOP_K][64];
    int n;
    char variant[64];
} List;

typedef struct {
    List *lists; // latest per user
    size_t n, cap;
    long messages, twin_lists, bad;
} Lists;

static List *list_for(Lists *l, const char *user) {
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->lists[i].user, user)) return &l->lists[i];
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->lists = realloc(l->lists, l->cap * sizeof *l->lists);
    }
    List *x = &l->lists[l->n++];
    memset(x, 0, sizeof *x);
    snprintf(x->user, sizeof x->user, "%s", user);
    return x;
}

static void on_list(void *ctx, const KafkaMessage *m) {
    Lists *l = ctx;
    Ssna__Recommendations *r = NULL;
    char err[256];
    l->messages++;
    if (codec_recommendations_decode(m->payload, m->payload_len, NULL, &r, err, sizeof err)) {
        l->bad++;
        return;
    }
    List *x = list_for(l, r->user_id);
    x->n = 0;
    snprintf(x->variant, sizeof x->variant, "%s", r->variant);
    for (size_t i = 0; i < r->n_items && i < TOP_K; i++) {
        snprintf(x->items[x->n++], 64, "%s", r->items[i]->item_id);
        if (!strncmp(r->items[i]->item_id, TWIN_ID, strlen(TWIN_ID))) l->twin_lists++;
    }
    codec_recommendations_free(r);
}

/* ---- the most-popular ranker, prequential over the events topic ---- */

typedef struct {
    char (*ids)[64]; // item ids by local index
    int *count;
    int n_items, cap;
    char (*users)[64];
    int **seen; // per user: local item indexes (up to 256)
    int *n_seen, n_users;
    long scored, hits;
} Popular;

static int local_item(Popular *p, const char *id) {
    for (int i = 0; i < p->n_items; i++)
        if (!strcmp(p->ids[i], id)) return i;
    if (p->n_items == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 1024;
        p->ids = realloc(p->ids, (size_t)p->cap * 64);
        p->count = realloc(p->count, (size_t)p->cap * sizeof(int));
    }
    snprintf(p->ids[p->n_items], 64, "%s", id);
    p->count[p->n_items] = 0;
    return p->n_items++;
}

static int local_user(Popular *p, const char *id) {
    for (int i = 0; i < p->n_users; i++)
        if (!strcmp(p->users[i], id)) return i;
    p->users = realloc(p->users, (size_t)(p->n_users + 1) * 64);
    p->seen = realloc(p->seen, (size_t)(p->n_users + 1) * sizeof *p->seen);
    p->n_seen = realloc(p->n_seen, (size_t)(p->n_users + 1) * sizeof(int));
    snprintf(p->users[p->n_users], 64, "%s", id);
    p->seen[p->n_users] = calloc(256, sizeof(int));
    p->n_seen[p->n_users] = 0;
    return p->n_users++;
}

static int was_seen(const Popular *p, int u, int item) {
    for (int i = 0; i < p->n_seen[u]; i++)
        if (p->seen[u][i] == item) return 1;
    return 0;
}

static void on_event(void *ctx, const KafkaMessage *m) {
    Popular *p = ctx;
    Ssna__Interaction *ev = NULL;
    char err[256];
    if (codec_interaction_decode(m->payload, m->payload_len, NULL, &ev, err, sizeof err)) return;
    if (!strncmp(ev->event_id, "twin-", 5)) { // after the stream, not in the daemon's figures
        codec_interaction_free(ev);
        return;
    }
    int u = local_user(p, ev->user_id), item = local_item(p, ev->item_id);
    if (p->n_seen[u] > 0) { // a list would have been published: score top-k most popular
        int top[TOP_K], n = 0;
        for (int i = 0; i < p->n_items; i++) {
            if (!p->count[i] || was_seen(p, u, i)) continue;
            if (n == TOP_K && p->count[i] <= p->count[top[TOP_K - 1]]) continue;
            int pos = n < TOP_K ? n++ : TOP_K - 1;
            while (pos > 0 && p->count[top[pos - 1]] < p->count[i]) top[pos] = top[pos - 1], pos--;
            top[pos] = i;
        }
        p->scored++;
        for (int i = 0; i < n; i++) p->hits += top[i] == item;
    }
    p->count[item]++;
    if (p->n_seen[u] < 256) p->seen[u][p->n_seen[u]++] = item;
    codec_interaction_free(ev);
}

/* Text of a Scientific item id from the .text file (malloc'd). */
static char *item_text(Harness *h, const char *id) {
    char path[1024], line[65536];
    snprintf(path, sizeof path, "%s/Scientific.text", h->slice);
    FILE *f = fopen(path, "r");
    char *text = NULL;
    size_t il = strlen(id);
    while (f && !text && fgets(line, sizeof line, f))
        if (!strncmp(line, id, il) && line[il] == '\t') {
            line[strcspn(line, "\r\n")] = 0;
            text = strdup(line + il + 1);
        }
    if (f) fclose(f);
    return text;
}

static void publish(KafkaProducer *p, const char *topic, const char *key, uint8_t *buf,
                    size_t len) {
    char err[256];
    if (kafka_producer_send_owned(p, topic, key, strlen(key), buf, len, err, sizeof err))
        harness_die("publish to %s: %s", topic, err);
}

/* One /recommend answer: item ids and scores in rank order. */
typedef struct {
    char items[TOP_K][64];
    double scores[TOP_K];
    int n;
} Served;

/* GET /recommend?user=user into *out; 0, or -1 when the answer is not a 200 with items. */
static int served_list(int port, const char *user, Served *out) {
    char path[256];
    snprintf(path, sizeof path, "/recommend?user=%s", user);
    char *r = harness_http_get(port, path);
    out->n = 0;
    if (!r || !strstr(r, " 200 ")) {
        free(r);
        return -1;
    }
    // texts are JSON-escaped, so `{"id":"` only opens an item
    for (char *p = strstr(r, "{\"id\":\""); p && out->n < TOP_K; p = strstr(p, "{\"id\":\"")) {
        p += 7;
        size_t len = strcspn(p, "\"");
        char *sc = strstr(p, "\"score\":");
        if (len >= sizeof out->items[0] || !sc) break;
        memcpy(out->items[out->n], p, len), out->items[out->n][len] = 0;
        out->scores[out->n++] = strtod(sc + 8, NULL);
    }
    free(r);
    return 0;
}

static int rank_of(const Served *s, const char *id) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->items[i], id)) return i;
    return -1;
}

/* Cold start of one item, checked where no timing can interfere: x is the item /recommend ranks
 * above last place for the most users; twin_id is published with x's text. Once it is stored,
 * its vector equals x's (same text, same frozen encoder and adapters), so every /recommend answer
 * that ranks x above last place must hold the twin too, with x's score. Then one event with x
 * per such user (x leaves their lists) keeps the stream going (*sent counts them). Returns how
 * many answers ranked x above last at the check: 0 when training meanwhile took x out of every
 * list, and nothing was checked. */
static int twin_try(Harness *h, int port, const Lists *l, KafkaProducer *p, const char *twin_id,
                    int *sent) {
    Served *before = calloc(l->n, sizeof *before);
    char x[64] = "";
    int best = 0;
    for (size_t i = 0; i < l->n; i++) served_list(port, l->lists[i].user, &before[i]);
    for (size_t i = 0; i < l->n; i++)
        for (int r = 0; r + 1 < before[i].n; r++) {
            // (an earlier try's twin has no text of its own to copy)
            if (!strncmp(before[i].items[r], TWIN_ID, strlen(TWIN_ID))) continue;
            int c = 0;
            for (size_t j = 0; j < l->n; j++) {
                int q = rank_of(&before[j], before[i].items[r]);
                c += q >= 0 && q + 1 < before[j].n;
            }
            if (c > best) best = c, snprintf(x, sizeof x, "%s", before[i].items[r]);
        }
    free(before);
    CHECK_MSG(best > 0, "no /recommend answer of %zu users ranks any item above last", l->n);

    char err[256], db[512];
    char *text = item_text(h, x);
    CHECK_MSG(text != NULL, "no text for %s", x);
    Ssna__Item it;
    ssna__item__init(&it);
    it.item_id = (char *)twin_id, it.text = text ? text : "twin";
    uint8_t *buf;
    size_t len;
    if (codec_item_encode(&it, NULL, &buf, &len, err, sizeof err)) harness_die("%s", err);
    publish(p, "items", twin_id, buf, len);
    kafka_producer_flush(p, 10000, err, sizeof err);
    free(text);
    snprintf(db, sizeof db, "%s/e2e.db", h->work);
    int stored = 0;
    for (double t0 = harness_now(); !stored && harness_now() - t0 < 120;) {
        StoreOptions o = {.read_only = 1};
        Store *s;
        if (!store_open(&s, db, &o, err, sizeof err)) {
            stored = store_get_item(s, NULL, twin_id, NULL, NULL, 0, err, sizeof err) == STORE_OK;
            store_close(s);
        }
        if (!stored) usleep(200000);
    }
    CHECK_MSG(stored, "the new item %s was not stored within 120 s", twin_id);

    // stored is not yet served: each arm takes the new item's states into its serving vectors on
    // its own turn (under a loaded runner, seconds later). Ask, without sending anything, until
    // every answer that ranks x above last also holds the twin, for at most 60 s; the check
    // below then asks once more and says what differs. Every user is asked, not only those whose
    // answer held x before: a refresh of the models meanwhile reorders the lists.
    for (double t0 = harness_now(); harness_now() - t0 < 60; sleep(1)) {
        int ranked = 0, twinned = 0;
        for (size_t i = 0; i < l->n; i++) {
            Served now;
            if (served_list(port, l->lists[i].user, &now)) continue;
            int rx = rank_of(&now, x);
            if (rx < 0 || rx + 1 >= now.n) continue;
            ranked++;
            twinned += rank_of(&now, twin_id) >= 0;
        }
        if (ranked > 0 && twinned == ranked) break;
    }

    int with_x = 0, with_twin = 0;
    for (size_t i = 0; i < l->n; i++) {
        Served now;
        if (served_list(port, l->lists[i].user, &now)) continue;
        int rx = rank_of(&now, x), rt = rank_of(&now, twin_id);
        if (rx < 0 || rx + 1 >= now.n) continue;
        with_x++;
        if (rt >= 0 && fabs(now.scores[rt] - now.scores[rx]) <= 1e-3 * (1 + fabs(now.scores[rx])))
            with_twin++;
        else
            fprintf(stderr, "user %s: %s at rank %d (score %g), %s at rank %d (score %g)\n",
                    l->lists[i].user, x, rx + 1, now.scores[rx], twin_id, rt + 1,
                    rt >= 0 ? now.scores[rt] : 0.0);
        Ssna__Interaction ev;
        ssna__interaction__init(&ev);
        char eid[96];
        snprintf(eid, sizeof eid, "twin-%s-%zu", twin_id, i);
        ev.user_id = l->lists[i].user;
        ev.item_id = x;
        ev.event_time_ms = 1, ev.event_id = eid;
        if (codec_interaction_encode(&ev, NULL, &buf, &len, err, sizeof err))
            harness_die("%s", err);
        publish(p, "events", ev.user_id, buf, len);
        (*sent)++;
    }
    fprintf(stderr,
            "%s, twin of %s: %d answers rank %s above last (before: %d), %d hold the twin\n",
            twin_id, x, with_x, x, best, with_twin);
    CHECK_MSG(with_twin == with_x, "%d of %d answers ranking %s above last miss its twin %s",
              with_x - with_twin, with_x, x, twin_id);
    return with_x;
}

/* The cold-start check of twin_try, tried again with a new item and a new twin (TWIN_ID-2, ...)
 * while training takes the chosen item out of every list before the check (a loaded runner):
 * the property is only tested where some answer ranks the item. Returns the events sent. */
static int check_twin(Harness *h, int port, const Lists *l) {
    char err[256], twin_id[64];
    KafkaProducerOptions po = {.brokers = h->brokers};
    KafkaProducer *p;
    if (kafka_producer_open(&po, &p, err, sizeof err)) harness_die("producer: %s", err);
    int sent = 0, checked = 0;
    for (int t = 0; t < 3 && !checked; t++) {
        snprintf(twin_id, sizeof twin_id, t ? "%s-%d" : "%s", TWIN_ID, t + 1);
        checked = twin_try(h, port, l, p, twin_id, &sent);
    }
    CHECK_MSG(checked > 0, "in 3 tries, no answer ranked the chosen item above last by the check");
    kafka_producer_close(p, 10000);
    return sent;
}

/* Sum of the samples whose line starts with prefix (a name and its first labels). */
static double metric_with(const char *text, const char *prefix) {
    double sum = 0;
    size_t n = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (!strncmp(p, prefix, n) && strchr(p, ' ')) sum += atof(strchr(p, ' ') + 1);
    return sum;
}

/* What training got of the stream: every offered sequence was trained on as a fresh one by one
 * variant, dropped (counted), or still waits in the fresh ring or the offer stage (at most 1,024
 * + 512); each fresh one has its event-to-training time in the histogram. */
static void check_training_share(const char *metrics, long n_events) {
    if (!metrics) return;
    double offered = harness_metric_sum(metrics, "ssnad_train_offered_total");
    double dropped = harness_metric_sum(metrics, "ssnad_train_fresh_dropped_total");
    double fresh = metric_with(metrics, "ssnad_train_sequences_total{source=\"fresh\"");
    double replay = metric_with(metrics, "ssnad_train_sequences_total{source=\"replay\"");
    double timed = harness_metric_sum(metrics, "ssnad_train_freshness_seconds_count");
    double wait = harness_metric_sum(metrics, "ssnad_train_freshness_seconds_sum");
    fprintf(stderr,
            "training: %.0f sequences offered for %ld events, %.0f trained fresh, %.0f dropped, "
            "%.0f replayed; mean event-to-training %.2f s\n",
            offered, n_events, fresh, dropped, replay, timed > 0 ? wait / timed : -1);
    CHECK_MSG(offered > n_events / 2 && offered <= n_events, "%.0f offered", offered);
    CHECK_MSG(fresh + dropped <= offered && fresh + dropped >= offered - 1536,
              "fresh %.0f + dropped %.0f vs offered %.0f", fresh, dropped, offered);
    CHECK_MSG(timed <= fresh && fresh - timed <= 64, "%.0f timed of %.0f fresh", timed, fresh);
    CHECK(replay > 0);
}

/* The trainer runs under SCHED_IDLE: on a machine busy with other work (a CI runner beside
 * CPU-bound tests) it may not have taken a step by the time the stream is applied. Wait, bounded,
 * until every variant has trained on fresh and on replayed sequences, so that what is checked after
 * (training share, models saved at the stop) is about the daemon, not the runner's load. */
static void wait_for_training(int port, const char *const *variants, int n, double timeout_s) {
    double t0 = harness_now();
    for (;; usleep(500000)) {
        char *metrics = harness_http_get(port, "/metrics");
        int ready = metrics != NULL;
        for (int i = 0; ready && i < n; i++) {
            char fresh[200], replay[200]; // labels in name order (daemon/metrics.c)
            snprintf(fresh, sizeof fresh,
                     "ssnad_train_sequences_total{source=\"fresh\",variant=\"%s\"}", variants[i]);
            snprintf(replay, sizeof replay,
                     "ssnad_train_sequences_total{source=\"replay\",variant=\"%s\"}", variants[i]);
            ready = metric_with(metrics, fresh) > 0 && metric_with(metrics, replay) > 0;
        }
        free(metrics);
        if (ready) {
            fprintf(stderr, "training: every variant trained after %.1f s of waiting\n",
                    harness_now() - t0);
            return;
        }
        if (harness_now() - t0 > timeout_s) {
            CHECK_MSG(0, "a variant took no fresh and replayed training step in %.0f s", timeout_s);
            return;
        }
    }
}

/* GET /abtest, read at the same moment as /metrics: both arms, their scored lists and hits
 * adding up to the Prometheus counters, intervals around each estimate, and the second arm
 * compared with the first (the control). */
static void check_abtest(const char *response, double scored, double hits) {
    const char *body = response ? strstr(response, "\r\n\r\n") : NULL;
    CHECK_MSG(body && strstr(response, " 200 "), "GET /abtest: %.200s", response ? response : "");
    if (!body) return;
    json_error_t jerr;
    json_t *doc = json_loads(body + 4, 0, &jerr);
    CHECK_MSG(doc != NULL, "/abtest is not JSON: %s", jerr.text);
    fprintf(stderr, "GET /abtest:\n%s\n", body + 4);
    json_t *arms = json_object_get(doc, "arms");
    CHECK(json_array_size(arms) == 2 && json_integer_value(json_object_get(doc, "k")) == TOP_K);
    double n = 0, h = 0;
    for (size_t i = 0; i < json_array_size(arms); i++) {
        json_t *all = json_object_get(json_array_get(arms, i), "cumulative");
        n += (double)json_integer_value(json_object_get(all, "scored"));
        h += (double)json_integer_value(json_object_get(all, "hits"));
        json_t *r = json_object_get(all, "hit_rate");
        double est = json_real_value(json_object_get(r, "estimate"));
        CHECK(json_real_value(json_object_get(r, "low")) <= est &&
              est <= json_real_value(json_object_get(r, "high")));
    }
    CHECK_MSG(n == scored && h == hits, "/abtest: %g scored, %g hits; /metrics: %g, %g", n, h,
              scored, hits);
    // the history the dashboard draws: on its step, and at most what was scored by then
    json_t *hist = json_object_get(doc, "history"), *pts = json_object_get(hist, "points");
    json_int_t step = json_integer_value(json_object_get(hist, "step"));
    json_t *last = json_array_get(pts, json_array_size(pts) - 1);
    CHECK_MSG(json_integer_value(json_object_get(doc, "scored")) == (json_int_t)n &&
                  json_array_size(pts) == (size_t)(n / (double)(step ? step : 1)) && last &&
                  json_array_size(json_object_get(last, "hit_rate")) == 2,
              "/abtest history: %zu points of step %lld for %g lists", json_array_size(pts),
              (long long)step, n);
    json_t *vs =
        json_object_get(json_object_get(json_array_get(arms, 1), "vs_control"), "cumulative");
    double p = json_real_value(json_object_get(json_object_get(vs, "hit_rate"), "p_value"));
    CHECK_MSG(p > 0 && p <= 1, "p-value %g", p);
    fprintf(stderr, "abtest: %s vs %s, hit rate difference %.4f, p = %.3g\n",
            json_string_value(json_object_get(json_array_get(arms, 1), "variant")),
            json_string_value(json_object_get(doc, "control")),
            json_real_value(json_object_get(json_object_get(vs, "hit_rate"), "difference")), p);
    json_decref(doc);
}

/* The integer field key of the last JSON log record in text with this msg and variant; -1 if
 * none. */
static long long last_int(const char *text, const char *msg, const char *variant, const char *key) {
    char m[128], v[128], k[64];
    snprintf(m, sizeof m, "\"msg\":\"%s\"", msg);
    snprintf(v, sizeof v, "\"variant\":\"%s\"", variant);
    snprintf(k, sizeof k, "\"%s\":", key);
    long long value = -1;
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        const char *end = strchr(p, '\n');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        char line[1024];
        if (n >= sizeof line) continue;
        memcpy(line, p, n), line[n] = 0;
        const char *s = strstr(line, k);
        if (strstr(line, m) && strstr(line, v) && s) value = atoll(s + strlen(k));
    }
    return value;
}

/* train.center (on by default): each arm from random weights is centred on the catalogue before
 * its first step. The whole catalogue was stored before the first event, so the one record per
 * arm must count every item (ssna_center_items itself: tests/test_ssna_center.c). */
static void check_arms_centred(Harness *h, const char *const *variants, int n, long n_items) {
    char log[512];
    snprintf(log, sizeof log, "%s/e2e.log", h->work);
    char *text = harness_read_file(log);
    for (int i = 0; i < n; i++) {
        long long items = text ? last_int(text, "item tower centred", variants[i], "items") : -1;
        CHECK_MSG(items == n_items, "arm %s: centred on %lld items, the catalogue has %ld",
                  variants[i], items, n_items);
    }
    free(text);
}

/* The trainer runs under SCHED_IDLE, so on saturated cores the step in flight at a stop could
 * outlast stop.timeout_seconds (the soak saw it once): the stop lifts the thread to the normal
 * policy before it waits for it, and the trainer logs the policy it ended under. */
static void check_stop_lifts_trainer(Harness *h) {
    char log[512];
    snprintf(log, sizeof log, "%s/e2e.log", h->work);
    char *text = harness_read_file(log);
    const char *line = text ? strstr(text, "\"msg\":\"trainer stopped\"") : NULL;
    const char *eol = line ? strchr(line, '\n') : NULL;
    static const char normal[] = "\"policy\":\"normal\"";
    const char *policy = line ? strstr(line, "\"policy\":\"") : NULL;
    CHECK_MSG(line && policy && (!eol || policy < eol), "no 'trainer stopped' record in %s", log);
    if (policy && (!eol || policy < eol))
        CHECK_MSG(!strncmp(policy, normal, sizeof normal - 1),
                  "the trainer ended under %.24s, not lifted to the normal policy", policy);
    free(text);
}

/* A clean stop saves every variant's model with all its training steps; a restart restores
 * exactly those (the checkpoint names the snapshot in db/models, ssnad_snapshot.c). */
static void check_models_survive_restart(Harness *h) {
    char log[512];
    snprintf(log, sizeof log, "%s/e2e.log", h->work);
    char *before = harness_read_file(log);
    size_t at = strlen(before);
    pid_t pid = harness_ssnad_start(h, "e2e");
    char *after = NULL;
    for (double t0 = harness_now(); harness_now() - t0 < 120; usleep(200000)) {
        free(after);
        after = harness_read_file(log);
        if (strstr(after + at, "\"msg\":\"ssnad running\"")) break;
    }
    CHECK_MSG(harness_ssnad_stop(pid, SIGTERM, 120) == 0, "restarted ssnad did not stop cleanly");
    free(after);
    after = harness_read_file(log);
    const char *variants[] = {"gru:a=3", "mean:a=3"};
    for (int i = 0; i < 2; i++) {
        long long saved = last_int(before, "model saved", variants[i], "steps");
        long long restored = last_int(after + at, "model restored", variants[i], "steps");
        fprintf(stderr, "%s: %lld steps saved at the stop, %lld restored\n", variants[i], saved,
                restored);
        CHECK_MSG(saved > 0, "%s: no model saved at the clean stop", variants[i]);
        CHECK_MSG(restored == saved, "%s: restored %lld steps, saved %lld", variants[i], restored,
                  saved);
    }
    free(before), free(after);
}

/* The daemon's threads by name: the trainer and its helper (train.threads = 2) run under
 * SCHED_IDLE (train.sched's default), the threads users wait on under the normal policy; the
 * trainer joined train.cgroup (a plain directory with a tasks file here, cgroupfs's v1 interface:
 * its thread id is written there; a real cgroup would hold the helper it created too). */
static void check_thread_policies(pid_t pid, const char *cgroup_tasks) {
    long joined = -1;
    FILE *tf = fopen(cgroup_tasks, "r");
    if (!tf || fscanf(tf, "%ld", &joined) != 1) joined = -1;
    if (tf) fclose(tf);
    char path[300];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *dir = opendir(path);
    CHECK_MSG(dir != NULL, "cannot list %s", path);
    if (!dir) return;
    int seen_train = 0, seen_publish = 0;
    for (struct dirent *e; (e = readdir(dir));) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "/proc/%d/task/%s/comm", (int)pid, e->d_name);
        char name[32] = "";
        FILE *f = fopen(path, "r"); // (a thread may have ended since the listing)
        if (!f) continue;
        int named = fscanf(f, "%31[^\n]", name) == 1;
        fclose(f);
        int policy = sched_getscheduler((pid_t)atoi(e->d_name)); // Linux: a thread id works
        if (!named || policy < 0) continue;
        if (!strcmp(name, "ssnad-train")) {
            seen_train = 1;
            CHECK_MSG(policy == SCHED_IDLE, "trainer policy %d, not SCHED_IDLE", policy);
            CHECK_MSG(joined == atol(e->d_name), "train.cgroup has thread %ld, the trainer is %s",
                      joined, e->d_name);
        } else if (!strcmp(name, "ssnad-train-2")) { // train.threads = 2 only; 1 here (below)
            CHECK_MSG(policy == SCHED_IDLE, "training helper policy %d, not SCHED_IDLE", policy);
        } else {
            seen_publish += !strcmp(name, "ssnad-publish");
            CHECK_MSG(policy == SCHED_OTHER, "thread %s policy %d", name, policy);
        }
    }
    closedir(dir);
    // (train.threads is 1 here: with the helper, training moved the lists so fast that the
    // cold-start twin check lost its item in CI; test_pool_members covers the helper)
    CHECK_MSG(seen_train && seen_publish, "no thread named ssnad-train / ssnad-publish");
}

/* A train.cgroup the trainer cannot join stops the start, with the key, the directory and the
 * reason in the log (an operator who asked for it must not get a daemon without it). */
static void check_bad_cgroup(Harness *h) {
    char conf[700], log[512];
    snprintf(conf, sizeof conf, "train.cgroup = %s/no-such-cgroup", h->work);
    harness_config(h, "badcg", conf);
    int code = harness_ssnad_stop(harness_ssnad_start(h, "badcg"), 0, 120);
    CHECK_MSG(code == 1, "ssnad with a missing train.cgroup: exit status %d, not 1", code);
    snprintf(log, sizeof log, "%s/badcg.log", h->work);
    char *text = harness_read_file(log);
    CHECK_MSG(strstr(text, "train.cgroup") && strstr(text, "no-such-cgroup") &&
                  strstr(text, "not a cgroup directory"),
              "startup error does not name train.cgroup and the directory:\n%s", text);
    free(text);
}

int main(void) {
    Harness h;
    harness_init(&h, "e2e");
    harness_slice(&h, N_USERS);
    harness_broker_start(&h);
    check_bad_cgroup(&h);
    char cgroup[600], tasks[700], conf[900];
    snprintf(cgroup, sizeof cgroup, "%s/cgroup", h.work);
    snprintf(tasks, sizeof tasks, "%s/tasks", cgroup);
    FILE *tf = mkdir(cgroup, 0755) ? NULL : fopen(tasks, "w");
    CHECK_MSG(tf != NULL, "cannot create %s", tasks);
    if (tf) fclose(tf);
    snprintf(conf, sizeof conf,
             "top_k = 10\nvariants = gru:a=3,mean:a=3\nab.seed = 7\ntrain.cgroup = %s", cgroup);
    harness_config(&h, "e2e", conf);
    pid_t pid = harness_ssnad_start(&h, "e2e");
    // the catalogue first (cold start of the whole shop), then the events at a steady rate so
    // that lists are published between a user's events (prequential metrics need that)
    CHECK(harness_replay(&h, "--items first --limit 0") == 0);
    long n_items = harness_replay_count(&h, "items");
    CHECK_MSG(n_items > 0, "replay published %ld items", n_items);
    CHECK(harness_wait_items(&h, "e2e", (size_t)n_items, 300) == 0);
    CHECK(harness_replay(&h, "--seed 3 --rate 100") == 0);
    long n_events = harness_replay_count(&h, "events");
    CHECK_MSG(n_events > 0, "replay published %ld events", n_events);
    CHECK(harness_wait_events(&h, "e2e", (uint64_t)n_events, 400) == 0);
    check_thread_policies(pid, tasks);
    int port = harness_http_port(&h, "e2e");
    CHECK(port > 0);
    const char *names[2] = {"gru:a=3", "mean:a=3"};
    if (port) wait_for_training(port, names, 2, 300);
    // online metrics of the stream itself, before the twin's events (hits by construction)
    char *metrics = port ? harness_http_get(port, "/metrics") : NULL;
    char *abtest = port ? harness_http_get(port, "/abtest") : NULL;

    // the lists so far, and the item they hold most often
    Lists lists = {0};
    CHECK(harness_wait_lists(&h, "e2e", 60) == 0);
    harness_read_topic(&h, "recommendations", on_list, &lists);
    CHECK(lists.bad == 0);
    CHECK_MSG(lists.n == N_USERS, "%zu of %d users got a list", lists.n, N_USERS);
    double weights[2] = {1, 1};
    AbTest *ab;
    char err[256];
    if (abtest_create(names, weights, 2, TOP_K, 7, NULL, &ab, err, sizeof err))
        harness_die("%s", err);
    int wrong_variant = 0, by_variant[2] = {0};
    for (size_t i = 0; i < lists.n; i++) {
        int v = abtest_assign(ab, lists.lists[i].user, strlen(lists.lists[i].user));
        wrong_variant += strcmp(lists.lists[i].variant, names[v]) != 0;
        by_variant[v]++;
    }
    CHECK_MSG(wrong_variant == 0, "%d users got a list from another variant", wrong_variant);
    CHECK(by_variant[0] > 0 && by_variant[1] > 0);
    abtest_destroy(ab);

    int sent = port ? check_twin(&h, port, &lists) : 0;
    CHECK(harness_wait_events(&h, "e2e", (uint64_t)(n_events + sent), 120) == 0);
    Lists after = {0};
    CHECK(harness_wait_lists(&h, "e2e", 60) == 0);
    harness_read_topic(&h, "recommendations", on_list, &after);
    fprintf(stderr, "lists published after the twins' users consumed the originals: %ld hold one\n",
            after.twin_lists);

    // online metrics of the daemon against the two baselines on the same stream
    char *rec = port ? harness_http_get(port, "/recommend?user=A1SWWHE1L3XR3V") : NULL;
    char *health = port ? harness_http_get(port, "/healthz") : NULL;
    char *page = port ? harness_http_get(port, "/") : NULL; // the dashboard (test_dashboard.py)
    CHECK(page && strstr(page, " 200 ") && strstr(page, "text/html") && strstr(page, "/abtest"));
    free(page);
    CHECK(metrics && strstr(metrics, "ssnad_online_hit_rate"));
    CHECK(health && strstr(health, " 200 "));
    CHECK(rec && (strstr(rec, " 200 ") || strstr(rec, " 404 ")));
    if (rec && strstr(rec, " 200 ")) { // a JSON document that names the user and holds items
        json_error_t jerr;
        const char *body = strstr(rec, "\r\n\r\n");
        json_t *doc = body ? json_loads(body + 4, 0, &jerr) : NULL;
        CHECK_MSG(doc != NULL, "/recommend is not JSON: %s", body ? jerr.text : rec);
        CHECK(!strcmp(json_string_value(json_object_get(doc, "user")), "A1SWWHE1L3XR3V"));
        json_t *items = json_object_get(doc, "items");
        CHECK(json_array_size(items) > 0 &&
              json_is_string(json_object_get(json_array_get(items, 0), "text")));
        json_decref(doc);
    }
    double scored = metrics ? harness_metric_sum(metrics, "ssnad_online_scored_total") : 0;
    double hits = metrics ? harness_metric_sum(metrics, "ssnad_online_hits_total") : 0;
    check_abtest(abtest, scored, hits);
    free(abtest);
    check_training_share(metrics, n_events);
    check_arms_centred(&h, names, 2, n_items);
    Popular pop = {0};
    harness_read_topic(&h, "events", on_event, &pop);
    double hit_rate = scored > 0 ? hits / scored : 0;
    double pop_rate = pop.scored ? (double)pop.hits / (double)pop.scored : 0;
    double random_rate = (double)TOP_K / (double)(n_items > TOP_K ? n_items : TOP_K);
    fprintf(stderr,
            "online hit@10: ssnad %.4f (%g of %g), most-popular %.4f (%ld of %ld), random %.4f\n",
            hit_rate, hits, scored, pop_rate, pop.hits, pop.scored, random_rate);
    CHECK(scored > n_events / 2);
    CHECK_MSG(hit_rate > random_rate, "hit rate %.4f <= random %.4f", hit_rate, random_rate);
    CHECK_MSG(hit_rate > pop_rate, "hit rate %.4f <= most-popular %.4f", hit_rate, pop_rate);
    // the int8 bounds prune: most items are never scored exactly (2-3% are on the Games stream)
    double bounded = metrics ? harness_metric_sum(metrics, "ssnad_list_items_bounded_total") : 0;
    double exact = metrics ? harness_metric_sum(metrics, "ssnad_list_items_scored_total") : 0;
    fprintf(stderr, "items scored exactly: %g of %g bounded (%.1f%%)\n", exact, bounded,
            bounded > 0 ? 100 * exact / bounded : 0);
    CHECK_MSG(bounded > 0 && exact > 0 && exact < bounded / 2, "scored exactly %g of %g", exact,
              bounded);
    free(metrics), free(rec), free(health);
    for (int i = 0; i < pop.n_users; i++) free(pop.seen[i]);
    free(pop.ids), free(pop.count), free(pop.users), free(pop.seen), free(pop.n_seen);

    int code = harness_ssnad_stop(pid, SIGTERM, 120);
    CHECK_MSG(code == 0, "ssnad exit status %d after SIGTERM", code);
    check_stop_lifts_trainer(&h);
    check_models_survive_restart(&h);
    free(lists.lists), free(after.lists);
    harness_cleanup(&h, check_failed_count > 0);
    return check_done();
}
