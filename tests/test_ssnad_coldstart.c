/* test_ssnad_coldstart - events before the catalogue, on a real broker. A shop's interactions can
 * reach ssnad before the texts of the items they name (another member's items consumer lagging,
 * a catalogue feed restarted late): each user then gets a list at once, short or empty, since no
 * item is recommendable yet. Once the texts arrive and are encoded, every such user must get a
 * full list (top_k items) without any new event of theirs, and the refill must be counted
 * (ssnad_lists_refilled_total). This was the cause of a CI failure in test_ssnad_members: a
 * member whose items consumer joined late published only empty lists, for good. */
#include "check.h"
#include "ssnad_harness.h"

#define N_USERS 60
#define TOP_K   10

typedef struct {
    char (*users)[64];
    int *len; // items in the user's latest list
    int n;
    long messages;
} Latest;

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
        snprintf(l->users[l->n++], 64, "%s", r->user_id);
    }
    l->len[i] = (int)r->n_items; // a partition is in offset order: the last one read is latest
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
    free(l->users), free(l->len);
    memset(l, 0, sizeof *l);
}

int main(void) {
    Harness h;
    harness_init(&h, "coldstart");
    harness_slice(&h, N_USERS);
    harness_broker_start(&h);
    harness_config(&h, "cs", "top_k = 10\nvariants = mean:a=1");
    pid_t pid = harness_ssnad_start(&h, "cs");

    // the events alone: every item they name is a placeholder without states
    CHECK(harness_replay(&h, "--items none --seed 3") == 0);
    long n_events = harness_replay_count(&h, "events");
    CHECK_MSG(n_events > 0 && harness_replay_count(&h, "items") == 0,
              "replay published %ld items, %ld events", harness_replay_count(&h, "items"),
              n_events);
    CHECK(harness_wait_events(&h, "cs", (uint64_t)n_events, 300) == 0);
    Latest before = {0};
    harness_read_topic(&h, "recommendations", 4, 3, on_list, &before);
    fprintf(stderr, "coldstart: %ld events, %d users with a list, %d of them short\n", n_events,
            before.n, short_lists(&before));
    CHECK_MSG(before.n > N_USERS / 2, "%d users got a list", before.n);
    CHECK_MSG(short_lists(&before) == before.n, "%d of %d lists are full with no item known",
              before.n - short_lists(&before), before.n);

    // then the catalogue: every user's list fills up, with no event of theirs
    CHECK(harness_replay(&h, "--items first --limit 0") == 0);
    long n_items = harness_replay_count(&h, "items");
    CHECK_MSG(n_items > TOP_K, "replay published %ld items", n_items);
    CHECK(harness_wait_items(&h, "cs", (size_t)n_items, 300) == 0);
    Latest after = {0};
    for (double t0 = harness_now(); harness_now() - t0 < 60;) {
        latest_free(&after);
        harness_read_topic(&h, "recommendations", 2, 2, on_list, &after);
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
    CHECK(harness_ssnad_stop(pid, SIGTERM, 120) == 0);
    latest_free(&before), latest_free(&after);
    harness_cleanup(&h, check_failed_count > 0);
    return check_done();
}
