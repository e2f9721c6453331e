/* test_ssnad_coldstart - events before the catalogue, on a real broker. A shop's interactions can
 * reach ssnad before the texts of the items they name (another member's items consumer lagging,
 * a catalogue feed restarted late): each user then gets a list at once, short or empty, since no
 * item is recommendable yet. Once the texts arrive and are encoded, every such user must get a
 * full list (top_k items) without any new event of theirs, and the refill must be counted
 * (ssnad_lists_refilled_total). This was the cause of a CI failure in test_ssnad_members: a
 * member whose items consumer joined late published only empty lists, for good.
 *
 * One arm is `pop` (the control: the most chosen items of the last pop.window events). Its
 * refilled lists come after every event was applied, so they must be the whole stream's most
 * chosen items (pop.window exceeds the stream) less each user's own, with the counts as scores;
 * after a restart /recommend must give the same list (the window is in the checkpoint).
 *
 * Until the texts arrive no training step is taken: every next item is a placeholder. */
#include <jansson.h>

#include "check.h"
#include "ssnad_harness.h"

#define N_USERS 60
#define TOP_K   10
#define SEQ_MAX 50 // items of a user's sequence (STORE_USER_SEQ_MAX): what pop leaves out

typedef struct {
    char (*users)[64];
    int *len;                 // items in the user's latest list
    char (*items)[TOP_K][32]; // its item ids
    float (*scores)[TOP_K];   // and scores
    char (*variant)[64];
    int n;
    long messages;
} Latest;

/* The stream as the daemon applied it: how often each item was chosen, each user's items. */
typedef struct {
    char (*ids)[32];
    long *count;
    int n_items;
    char (*users)[64];
    int (*seq)[SEQ_MAX]; // a user's last SEQ_MAX items (local indexes), a ring
    int *n_seq, n_users;
} Stream;

static int stream_item(Stream *s, const char *id) {
    for (int i = 0; i < s->n_items; i++)
        if (!strcmp(s->ids[i], id)) return i;
    s->ids = realloc(s->ids, (size_t)(s->n_items + 1) * sizeof *s->ids);
    s->count = realloc(s->count, (size_t)(s->n_items + 1) * sizeof *s->count);
    snprintf(s->ids[s->n_items], sizeof s->ids[0], "%s", id);
    s->count[s->n_items] = 0;
    return s->n_items++;
}

static int stream_user(Stream *s, const char *id) {
    for (int i = 0; i < s->n_users; i++)
        if (!strcmp(s->users[i], id)) return i;
    s->users = realloc(s->users, (size_t)(s->n_users + 1) * sizeof *s->users);
    s->seq = realloc(s->seq, (size_t)(s->n_users + 1) * sizeof *s->seq);
    s->n_seq = realloc(s->n_seq, (size_t)(s->n_users + 1) * sizeof *s->n_seq);
    snprintf(s->users[s->n_users], sizeof s->users[0], "%s", id);
    s->n_seq[s->n_users] = 0;
    return s->n_users++;
}

static void on_event(void *ctx, const KafkaMessage *m) {
    Stream *s = ctx;
    Ssna__Interaction *ev = NULL;
    char err[256];
    if (codec_interaction_decode(m->payload, m->payload_len, NULL, &ev, err, sizeof err))
        harness_die("events: %s", err);
    int u = stream_user(s, ev->user_id), it = stream_item(s, ev->item_id);
    s->count[it]++;
    s->seq[u][s->n_seq[u]++ % SEQ_MAX] = it; // a partition is in order: so is each user
    codec_interaction_free(ev);
}

static int in_user_seq(const Stream *s, int u, int item) {
    int n = s->n_seq[u] < SEQ_MAX ? s->n_seq[u] : SEQ_MAX;
    for (int i = 0; i < n; i++)
        if (s->seq[u][i] == item) return 1;
    return 0;
}

/* A pop list of user u against the stream: the counts as scores, best first, and no item left
 * out that was chosen more often than the last one, unless it is the user's own. Returns the
 * number of problems (printed). */
static int pop_list_wrong(const Stream *s, const char *user, const char (*items)[32],
                          const float *scores, int n) {
    int u = -1, bad = 0;
    for (int i = 0; i < s->n_users && u < 0; i++)
        if (!strcmp(s->users[i], user)) u = i;
    if (u < 0 || n != TOP_K) {
        fprintf(stderr, "pop list of %s: %d items, user %s\n", user, n,
                u < 0 ? "unknown" : "known");
        return 1;
    }
    unsigned char *listed = calloc((size_t)s->n_items, 1);
    for (int i = 0; i < n; i++) {
        int it = -1;
        for (int j = 0; j < s->n_items && it < 0; j++)
            if (!strcmp(s->ids[j], items[i])) it = j;
        long c = it >= 0 ? s->count[it] : 0;
        if (it < 0 || (float)c != scores[i] || (i && scores[i] > scores[i - 1]) ||
            in_user_seq(s, u, it)) {
            fprintf(stderr, "pop list of %s, #%d %s: score %g, chosen %ld times%s\n", user, i,
                    items[i], scores[i], c,
                    it >= 0 && in_user_seq(s, u, it) ? ", the user's own" : "");
            bad++;
        }
        if (it >= 0) listed[it] = 1;
    }
    for (int j = 0; j < s->n_items; j++)
        if (!listed[j] && !in_user_seq(s, u, j) && (float)s->count[j] > scores[n - 1]) {
            fprintf(stderr, "pop list of %s leaves out %s (chosen %ld times > %g)\n", user,
                    s->ids[j], s->count[j], scores[n - 1]);
            bad++;
        }
    free(listed);
    return bad;
}

static void on_list(void *ctx, const KafkaMessage *m) {
    Latest *l = ctx;
    Ssna__Recommendations *r = NULL;
    char err[256];
    if (codec_recommendations_decode(m->payload, m->payload_len, NULL, &r, err, sizeof err))
        harness_die("recommendations: %s", err);
    int i = 0;
    while (i < l->n && strcmp(l->users[i], r->user_id)) i++;
    if (i == l->n) {
        l->users = realloc(l->users, (size_t)(l->n + 1) * sizeof *l->users);
        l->len = realloc(l->len, (size_t)(l->n + 1) * sizeof *l->len);
        l->items = realloc(l->items, (size_t)(l->n + 1) * sizeof *l->items);
        l->scores = realloc(l->scores, (size_t)(l->n + 1) * sizeof *l->scores);
        l->variant = realloc(l->variant, (size_t)(l->n + 1) * sizeof *l->variant);
        snprintf(l->users[l->n++], 64, "%s", r->user_id);
    }
    l->len[i] = (int)r->n_items; // a partition is in offset order: the last one read is latest
    for (size_t j = 0; j < r->n_items && j < TOP_K; j++) {
        snprintf(l->items[i][j], sizeof l->items[i][j], "%s", r->items[j]->item_id);
        l->scores[i][j] = r->items[j]->score;
    }
    snprintf(l->variant[i], sizeof l->variant[i], "%s", r->variant);
    l->messages++;
    codec_recommendations_free(r);
}

/* Users whose latest list holds fewer than TOP_K items. */
static int short_lists(const Latest *l) {
    int n = 0;
    for (int i = 0; i < l->n; i++) n += l->len[i] < TOP_K;
    return n;
}

static void latest_free(Latest *l) {
    free(l->users), free(l->len), free(l->items), free(l->scores), free(l->variant);
    memset(l, 0, sizeof *l);
}

/* How many runs of instance "cs" have opened their HTTP port (its log's "http listening" lines). */
static int http_runs(Harness *h) {
    char path[512], line[4096];
    snprintf(path, sizeof path, "%s/cs.log", h->work);
    FILE *f = fopen(path, "r");
    int n = 0;
    while (f && fgets(line, sizeof line, f)) n += strstr(line, "\"http listening\"") != NULL;
    if (f) fclose(f);
    return n;
}

int main(void) {
    Harness h;
    harness_init(&h, "coldstart");
    harness_slice(&h, N_USERS);
    harness_broker_start(&h);
    harness_config(&h, "cs", "top_k = 10\nvariants = pop,mean:a=1\npop.window = 100000");
    pid_t pid = harness_ssnad_start(&h, "cs");

    // the events alone: every item they name is a placeholder without states
    CHECK(harness_replay(&h, "--items none --seed 3") == 0);
    long n_events = harness_replay_count(&h, "events");
    CHECK_MSG(n_events > 0 && harness_replay_count(&h, "items") == 0,
              "replay published %ld items, %ld events", harness_replay_count(&h, "items"),
              n_events);
    CHECK(harness_wait_events(&h, "cs", (uint64_t)n_events, 300) == 0);
    Latest before = {0};
    CHECK(harness_wait_lists(&h, "cs", 60) == 0);
    harness_read_topic(&h, "recommendations", on_list, &before);
    fprintf(stderr, "coldstart: %ld events, %d users with a list, %d of them short\n", n_events,
            before.n, short_lists(&before));
    CHECK_MSG(before.n > N_USERS / 2, "%d users got a list", before.n);
    CHECK_MSG(short_lists(&before) == before.n, "%d of %d lists are full with no item known",
              before.n - short_lists(&before), before.n);
    // the trainer was offered every new sequence, and took no step on them: each next item was
    // a placeholder, whose zero states would teach the arm that "an item not encoded yet" is
    // what users choose
    int cs_port = harness_http_port(&h, "cs");
    char *m0 = cs_port ? harness_http_get(cs_port, "/metrics") : NULL;
    CHECK_MSG(m0 && strstr(m0, "\nssnad_train_steps_total{"), "no /metrics with training steps");
    double offered = m0 ? harness_metric_sum(m0, "ssnad_train_offered_total") : -1,
           steps = m0 ? harness_metric_sum(m0, "ssnad_train_steps_total") : -1;
    fprintf(stderr, "coldstart: %g sequences offered to the trainer, %g steps\n", offered, steps);
    CHECK(offered > 0 && steps == 0);
    free(m0);

    // then the catalogue: every user's list fills up, with no event of theirs
    CHECK(harness_replay(&h, "--items first --limit 0") == 0);
    long n_items = harness_replay_count(&h, "items");
    CHECK_MSG(n_items > TOP_K, "replay published %ld items", n_items);
    CHECK(harness_wait_items(&h, "cs", (size_t)n_items, 300) == 0);
    Latest after = {0};
    for (double t0 = harness_now(); harness_now() - t0 < 60;) {
        latest_free(&after);
        harness_wait_lists(&h, "cs", 10);
        harness_read_topic(&h, "recommendations", on_list, &after);
        if (after.n >= before.n && !short_lists(&after)) break;
    }
    fprintf(stderr, "coldstart: %ld items; %d users with a list, %d short (%ld lists in all)\n",
            n_items, after.n, short_lists(&after), after.messages);
    CHECK(after.n == before.n);
    CHECK_MSG(short_lists(&after) == 0, "%d users still have a short list", short_lists(&after));
    int port = harness_http_port(&h, "cs");
    char *metrics = port ? harness_http_get(port, "/metrics") : NULL;
    double refilled = metrics ? harness_metric_sum(metrics, "ssnad_lists_refilled_total") : -1;
    CHECK_MSG(refilled >= before.n, "ssnad_lists_refilled_total %g, %d users", refilled, before.n);
    free(metrics);

    // the pop arm's refilled lists: the whole stream's most chosen items less the user's own
    Stream st = {0};
    harness_read_topic(&h, "events", on_event, &st);
    int pop_users = 0, pop_wrong = 0;
    for (int i = 0; i < after.n; i++)
        if (!strcmp(after.variant[i], "pop"))
            pop_users++,
                pop_wrong += pop_list_wrong(&st, after.users[i], (const char(*)[32])after.items[i],
                                            after.scores[i], after.len[i]);
    fprintf(stderr, "coldstart: %d users on the pop arm, %d problems in their lists\n", pop_users,
            pop_wrong);
    CHECK(pop_users > 0 && pop_users < after.n);
    CHECK(pop_wrong == 0);

    // a restart keeps the window: /recommend gives the same pop lists
    CHECK(harness_ssnad_stop(pid, SIGTERM, 120) == 0);
    int runs = http_runs(&h);
    pid = harness_ssnad_start(&h, "cs");
    for (double t0 = harness_now(); http_runs(&h) == runs && harness_now() - t0 < 120;)
        usleep(200000);
    port = http_runs(&h) > runs ? harness_http_port(&h, "cs") : 0;
    CHECK_MSG(port > 0, "the restarted ssnad opened no HTTP port");
    int same = 0, asked = 0;
    for (int i = 0; i < after.n && port; i++) {
        if (strcmp(after.variant[i], "pop")) continue;
        char path[128], *resp;
        snprintf(path, sizeof path, "/recommend?user=%s", after.users[i]);
        const char *body = (resp = harness_http_get(port, path)) ? strstr(resp, "\r\n\r\n") : NULL;
        json_t *doc = body ? json_loads(body + 4, 0, NULL) : NULL;
        json_t *items = json_object_get(doc, "items");
        int match = json_array_size(items) == (size_t)after.len[i] &&
                    !strcmp(json_string_value(json_object_get(doc, "variant")), "pop");
        for (size_t j = 0; match && j < json_array_size(items); j++)
            match = !strcmp(json_string_value(json_object_get(json_array_get(items, j), "id")),
                            after.items[i][j]);
        if (!match)
            fprintf(stderr, "after the restart, /recommend for %s: %.300s\n", after.users[i],
                    body ? body : "(none)");
        same += match, asked++;
        json_decref(doc), free(resp);
    }
    fprintf(stderr, "coldstart: after a restart %d of %d pop lists are the same\n", same, asked);
    CHECK(asked == pop_users && same == asked);
    CHECK(harness_ssnad_stop(pid, SIGTERM, 120) == 0);
    free(st.ids), free(st.count), free(st.users), free(st.seq), free(st.n_seq);
    latest_free(&before), latest_free(&after);
    harness_cleanup(&h, check_failed_count > 0);
    return check_done();
}
