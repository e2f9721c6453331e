/* test_abtest.c - daemon/abtest: assignment is stable across processes and instances, follows
 * the weights on 100k ids, mixes its input well, and the prequential hit-rate / NDCG arithmetic
 * matches hand-computed cases; the A/B statistics match scipy, the sliding window holds exactly
 * the last `window` lists past its bound, the report's history spans the run past its bound, and
 * the /abtest report parses back to the same figures. The clustered (per user group) intervals
 * match numpy's, and in simulated A/A tests whose users differ they cover the true difference
 * as often as they claim where the list-level ones do not.
 */
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "daemon/abtest.h"
#include "daemon/metrics.h"

#define N_IDS 100000

static AbTest *make(const double *weights, int n, int k, uint64_t seed, MetricsRegistry *reg) {
    const char *names[] = {"gru:a=3", "mean:a=3", "tmlp:a=1", "id"};
    char err[256] = "";
    AbTest *ab = NULL;
    CHECK_MSG(abtest_create(names, weights, n, k, seed, reg, &ab, err, sizeof err) == 0, "%s", err);
    return ab;
}

static int assign(const AbTest *ab, int i) {
    char id[32];
    int len = snprintf(id, sizeof id, "user-%d", i);
    return abtest_assign(ab, id, (size_t)len);
}

/* The child process mode: print the assignment of the first 1000 ids. */
static int dump_assignments(void) {
    double weights[] = {1, 2, 1};
    AbTest *ab = make(weights, 3, 10, 7, NULL);
    for (int i = 0; i < 1000; i++) putchar('0' + assign(ab, i));
    abtest_destroy(ab);
    return 0;
}

static void test_stability(void) {
    double weights[] = {1, 2, 1};
    AbTest *a = make(weights, 3, 10, 7, NULL), *b = make(weights, 3, 10, 7, NULL);
    char expected[1001] = "";
    int same = 1;
    for (int i = 999; i >= 0; i--) same &= assign(a, i) == assign(b, i); /* order-free */
    for (int i = 0; i < 1000; i++) expected[i] = (char)('0' + assign(a, i));
    CHECK(same);
    /* a fresh process (new address space layout) computes the same assignment */
    int pipefd[2];
    CHECK(pipe(pipefd) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pipefd[1], 1);
        close(pipefd[0]);
        execl("/proc/self/exe", "test_abtest", "--dump", (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    char got[1001] = "";
    size_t len = 0;
    ssize_t n;
    while (len < 1000 && (n = read(pipefd[0], got + len, 1000 - len)) > 0) len += (size_t)n;
    close(pipefd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_MSG(len == 1000 && !memcmp(got, expected, 1000), "child process assigned differently");
    abtest_destroy(a);
    abtest_destroy(b);
}

static void check_shares(const double *weights, int n) {
    AbTest *ab = make(weights, n, 10, 1, NULL);
    int counts[4] = {0};
    double total = 0;
    for (int v = 0; v < n; v++) total += weights[v];
    for (int i = 0; i < N_IDS; i++) counts[assign(ab, i)]++;
    for (int v = 0; v < n; v++) {
        /* binomial standard deviation is at most 0.0016 here: 0.01 is over 6 sigma */
        double share = (double)counts[v] / N_IDS, want = weights[v] / total;
        CHECK_MSG(fabs(share - want) < 0.01, "variant %d of %d: share %.4f, weight says %.4f", v, n,
                  share, want);
    }
    abtest_destroy(ab);
}

static void test_weights(void) {
    double even[] = {1, 1}, skewed[] = {0.1, 0.9}, three[] = {1, 2, 1}, four[] = {5, 1, 3, 1};
    check_shares(even, 2);
    check_shares(skewed, 2);
    check_shares(three, 3);
    check_shares(four, 4);
    double one[] = {3};
    AbTest *ab = make(one, 1, 10, 1, NULL);
    int all_zero = 1;
    for (int i = 0; i < 1000; i++) all_zero &= assign(ab, i) == 0;
    CHECK(all_zero);
    abtest_destroy(ab);

    /* another seed reshuffles: about half the users of two even arms change arm */
    AbTest *s1 = make(even, 2, 10, 1, NULL), *s2 = make(even, 2, 10, 2, NULL);
    int moved = 0;
    for (int i = 0; i < N_IDS; i++) moved += assign(s1, i) != assign(s2, i);
    CHECK_MSG(fabs((double)moved / N_IDS - 0.5) < 0.01, "seed change moved %d users", moved);
    abtest_destroy(s1);
    abtest_destroy(s2);
}

/* Flipping one input bit flips about half of the 64 output bits (avalanche). */
static void test_hash_mixing(void) {
    uint64_t state = 12345;
    double flipped = 0;
    int trials = 0;
    for (int t = 0; t < 2000; t++) {
        unsigned char key[13];
        size_t len = 1 + (size_t)(t % 13);
        for (size_t i = 0; i < len; i++) {
            state = state * 6364136223846793005ULL + 1442695040888963407ULL;
            key[i] = (unsigned char)(state >> 56);
        }
        uint64_t h = abtest_hash(key, len, 99);
        size_t bit = (size_t)(state >> 20) % (len * 8);
        key[bit / 8] ^= (unsigned char)(1u << (bit % 8));
        flipped += __builtin_popcountll(h ^ abtest_hash(key, len, 99));
        trials++;
    }
    double mean = flipped / trials;
    CHECK_MSG(mean > 30 && mean < 34, "mean flipped bits %.2f", mean);
    CHECK(abtest_hash("abc", 3, 1) != abtest_hash("abc", 3, 2));
    CHECK(abtest_hash("abc", 3, 1) != abtest_hash("abd", 3, 1));
    CHECK(abtest_hash("", 0, 1) != abtest_hash("", 0, 2));
    /* the length takes part: a key and the same key with a NUL appended differ */
    CHECK(abtest_hash("ab\0", 3, 1) != abtest_hash("ab", 2, 1));
}

static void test_online_metrics(void) {
    MetricsRegistry *reg = metrics_create();
    double w[] = {1, 1};
    AbTest *ab = make(w, 2, 3, 1, reg);
    int64_t list[] = {5, 7, 9, 11};
    CHECK(abtest_observe(ab, 0, "u", 1, list, 4, 5) == 0);   /* rank 0: gain 1 */
    CHECK(abtest_observe(ab, 0, "u", 1, list, 4, 9) == 2);   /* rank 2: gain 1/log2(4) = 0.5 */
    CHECK(abtest_observe(ab, 0, "u", 1, list, 4, 11) == -1); /* rank 3 is outside the top 3 */
    CHECK(abtest_observe(ab, 0, "u", 1, list, 4, 42) == -1);
    AbTestStats s = abtest_stats(ab, 0);
    CHECK(s.scored == 4 && s.hits == 2);
    CHECK_CLOSE(s.ndcg_sum, 1.5, 1e-12, 0);
    CHECK_CLOSE(s.hit_rate, 0.5, 1e-12, 0);
    CHECK_CLOSE(s.ndcg, 0.375, 1e-12, 0);

    int64_t short_list[] = {9, 5};
    CHECK(abtest_observe(ab, 1, "u", 1, short_list, 2, 5) == 1);  /* rank 1: 1/log2(3) */
    CHECK(abtest_observe(ab, 1, "u", 1, short_list, 0, 5) == -1); /* nothing published */
    s = abtest_stats(ab, 1);
    CHECK(s.scored == 2 && s.hits == 1);
    CHECK_CLOSE(s.ndcg_sum, 0.63092975357145743, 1e-12, 0);
    CHECK(abtest_observe(ab, 2, "u", 1, list, 4, 5) == -1); /* no such variant: nothing counted */
    CHECK(abtest_stats(ab, 2).scored == 0);
    CHECK(abtest_variant_count(ab) == 2 && !strcmp(abtest_variant_name(ab, 1), "mean:a=3"));
    CHECK(abtest_variant_name(ab, 2) == NULL);

    size_t len;
    char *text = metrics_render(reg, &len);
    CHECK(strstr(text, "ssnad_online_hits_total{k=\"3\",variant=\"gru:a=3\"} 2\n") != NULL);
    CHECK(strstr(text, "ssnad_online_scored_total{k=\"3\",variant=\"mean:a=3\"} 2\n") != NULL);
    CHECK(strstr(text, "ssnad_online_ndcg{k=\"3\",variant=\"gru:a=3\"} 0.375\n") != NULL);
    CHECK(strstr(text, "ssnad_online_hit_rate{k=\"3\",variant=\"mean:a=3\"} 0.5\n") != NULL);
    free(text);
    abtest_destroy(ab);
    metrics_destroy(reg);
}

/* The statistics against scipy 1.10.1 (Debian bookworm's python3-scipy), computed with:
 *   st.binomtest(h, n).proportion_ci(0.95, method='wilson')          -> rate intervals
 *   p = (h1+h2)/(n1+n2); z = (h1/n1-h2/n2)/sqrt(p(1-p)(1/n1+1/n2)); 2*st.norm.sf(|z|)
 *   st.ttest_ind_from_stats(m1, s1, n1, m2, s2, n2, equal_var=False) -> Welch (t, p) */
static void test_statistics(void) {
    AbInterval r = abstats_rate(10, 100);
    CHECK_CLOSE(r.est, 0.1, 1e-15, 0);
    CHECK_CLOSE(r.lo, 0.05522913706067508, 1e-12, 0);
    CHECK_CLOSE(r.hi, 0.17436566150491345, 1e-12, 0);
    r = abstats_rate(0, 50);
    CHECK(r.lo == 0 && fabs(r.hi - 0.07134759913335872) < 1e-12);
    r = abstats_rate(412, 5000);
    CHECK(fabs(r.lo - 0.07509504921994331) < 1e-12 && fabs(r.hi - 0.0903461354445684) < 1e-12);
    CHECK(isnan(abstats_rate(0, 0).est));

    AbDiff d = abstats_rate_diff(412, 5000, 350, 5100);
    CHECK_CLOSE(d.p_value, 0.008786850860006126, 0, 1e-9);
    double se = sqrt(0.0824 * 0.9176 / 5000 + (350.0 / 5100) * (1 - 350.0 / 5100) / 5100);
    CHECK_CLOSE(d.diff.est, 0.0824 - 350.0 / 5100, 1e-15, 0);
    CHECK_CLOSE(d.diff.hi - d.diff.est, ABSTATS_Z95 * se, 1e-15, 0);
    CHECK(isnan(abstats_rate_diff(1, 1, 5, 10).p_value));  /* one list: no test */
    CHECK(isnan(abstats_rate_diff(0, 10, 0, 10).p_value)); /* no hit anywhere: no variance */

    /* Welch on sums built to have means 0.061 / 0.055 and sample sds 0.21 / 0.20 */
    AbSums a = {.n = 20000, .ndcg_sum = 0.061 * 20000}, c = {.n = 21000, .ndcg_sum = 0.055 * 21000};
    a.ndcg_sq_sum = 0.21 * 0.21 * 19999 + a.ndcg_sum * a.ndcg_sum / 20000;
    c.ndcg_sq_sum = 0.20 * 0.20 * 20999 + c.ndcg_sum * c.ndcg_sum / 21000;
    d = abstats_mean_diff(&a, &c);
    double z = d.diff.est / ((d.diff.hi - d.diff.lo) / (2 * ABSTATS_Z95));
    CHECK_CLOSE(z, 2.9596674710697255, 0, 1e-9);
    CHECK_CLOSE(d.p_value, 0.0030797126250132504, 0, 1e-7); /* normal; scipy's t: 0.0030815 */
    CHECK_CLOSE(d.p_value, 0.003081490234067442, 0, 1e-3);
    r = abstats_mean(&a);
    CHECK_CLOSE(r.hi - r.est, ABSTATS_Z95 * 0.21 / sqrt(20000), 0, 1e-9);
    AbSums one = {.n = 1, .ndcg_sum = 1, .ndcg_sq_sum = 1};
    CHECK(isnan(abstats_mean(&one).lo) && isnan(abstats_mean_diff(&one, &c).p_value));
}

/* The window past its bound: 2.5 windows of lists, then the window equals the last `window`
 * lists recomputed here, while the cumulative figures hold all of them; the report (parsed back
 * with jansson) says the same, compares variant 1 with the control, and writes null where a
 * figure has no data. The gauges are in the registry. */
static void test_window_and_report(void) {
    MetricsRegistry *reg = metrics_create();
    double w[] = {1, 1, 2};
    AbTest *ab = make(w, 3, 10, 1, reg);
    char err[256];
    CHECK(abtest_set_window(ab, 100, err, sizeof err) == 0);
    CHECK(abtest_set_window(ab, 50, err, sizeof err) == -1); /* once */
    int64_t list[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    int ranks[250];
    uint64_t state = 7;
    for (int i = 0; i < 250; i++) {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        int next = (int)(state >> 59); /* 0..31: a hit at rank next when < 10 */
        ranks[i] = abtest_observe(ab, 0, "u", 1, list, 10, next);
        abtest_observe(ab, 1, "u", 1, list, 10, i % 3 ? 99 : 0); /* 1 in 3 a hit at rank 0 */
    }
    AbSums want = {0};
    for (int i = 150; i < 250; i++) {
        double g = ranks[i] >= 0 ? 1.0 / log2(ranks[i] + 2.0) : 0;
        want.n++, want.hits += ranks[i] >= 0, want.ndcg_sum += g, want.ndcg_sq_sum += g * g;
    }
    size_t len = 0;
    char *text = abtest_report_json(ab, &len);
    CHECK(text && len == strlen(text));
    json_error_t jerr;
    json_t *doc = text ? json_loads(text, 0, &jerr) : NULL;
    CHECK_MSG(doc != NULL, "report is not JSON: %s", text ? jerr.text : "NULL");
    json_t *arms = json_object_get(doc, "arms");
    CHECK(json_array_size(arms) == 3 && json_integer_value(json_object_get(doc, "window")) == 100);
    CHECK(!strcmp(json_string_value(json_object_get(doc, "control")), "gru:a=3"));
    json_t *a0 = json_array_get(arms, 0), *a1 = json_array_get(arms, 1),
           *a2 = json_array_get(arms, 2);
    json_t *win = json_object_get(a0, "window"), *all = json_object_get(a0, "cumulative");
    CHECK(json_integer_value(json_object_get(win, "scored")) == 100);
    CHECK(json_integer_value(json_object_get(win, "hits")) == (json_int_t)want.hits);
    CHECK(json_integer_value(json_object_get(all, "scored")) == 250);
    AbInterval ndcg = abstats_mean(&want);
    json_t *wn = json_object_get(win, "ndcg");
    CHECK_CLOSE(json_real_value(json_object_get(wn, "estimate")), ndcg.est, 1e-5, 1e-5);
    CHECK_CLOSE(json_real_value(json_object_get(wn, "high")), ndcg.hi, 1e-5, 1e-5);
    CHECK(json_object_get(a0, "vs_control") == NULL);
    json_t *vs = json_object_get(json_object_get(a1, "vs_control"), "cumulative");
    AbTestStats s0 = abtest_stats(ab, 0), s1 = abtest_stats(ab, 1);
    AbDiff dr = abstats_rate_diff(s1.hits, s1.scored, s0.hits, s0.scored);
    json_t *hr = json_object_get(vs, "hit_rate");
    CHECK_CLOSE(json_real_value(json_object_get(hr, "difference")), dr.diff.est, 1e-5, 1e-5);
    CHECK_CLOSE(json_real_value(json_object_get(hr, "p_value")), dr.p_value, 1e-5, 1e-5);
    /* variant 2 scored nothing: its figures and its comparison are null, not 0 or NaN */
    json_t *e = json_object_get(json_object_get(a2, "cumulative"), "hit_rate");
    CHECK(json_is_null(json_object_get(e, "estimate")) && json_is_null(json_object_get(e, "low")));
    e = json_object_get(json_object_get(json_object_get(a2, "vs_control"), "window"), "ndcg");
    CHECK(json_is_null(json_object_get(e, "p_value")));
    json_decref(doc);
    free(text);

    /* a thousand windows later, the window still holds exactly the last 100 lists */
    for (int i = 0; i < 100000; i++) abtest_observe(ab, 1, "u", 1, list, 10, i % 3 ? 99 : 0);
    text = metrics_render(reg, &len);
    CHECK(strstr(text, "ssnad_online_hit_rate_window{k=\"10\",variant=\"mean:a=3\",window=\"100\"} "
                       "0.34\n") != NULL); /* 34 of i = 99900 .. 99999 are multiples of 3 */
    /* NDCG 1 per hit (rank 0): the window's NDCG is 0.34 too */
    CHECK(strstr(text, "ssnad_online_ndcg_window{k=\"10\",variant=\"mean:a=3\",window=\"100\"} "
                       "0.34\n") != NULL);
    CHECK(strstr(text, "ssnad_ab_hit_rate_p_value{control=\"gru:a=3\",k=\"10\",variant="
                       "\"mean:a=3\"}") != NULL);
    CHECK(strstr(text, "ssnad_ab_hit_rate_diff{control=\"gru:a=3\",k=\"10\",variant="
                       "\"gru:a=3\"}") == NULL); /* the control is not compared with itself */
    free(text);
    abtest_destroy(ab);
    metrics_destroy(reg);
}

/* Hits among lists j in [from, to) of an arm that hits when j % every == 0. */
static uint64_t hits_between(uint64_t from, uint64_t to, uint64_t every) {
    uint64_t h = 0;
    for (uint64_t j = from; j < to; j++) h += j % every == 0;
    return h;
}

/* The history past its bound: lists alternate between two arms (arm 0 hits every 4th of its
 * lists, arm 1 every 2nd) for 9 fillings of the history; every point kept lies on the current
 * step, the points span the whole run, and each point's figures are what the arms had then. */
static void test_history(void) {
    double w[] = {1, 1};
    AbTest *ab = make(w, 2, 10, 1, NULL);
    char err[256];
    CHECK(abtest_set_window(ab, 64, err, sizeof err) == 0);
    int64_t list[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    const uint64_t total = (uint64_t)ABTEST_HISTORY * ABTEST_HISTORY_FIRST_STEP * 9 + 37;
    for (uint64_t i = 0; i < total; i++) {
        uint64_t j = i / 2; /* the arm's own list index */
        int hit = i % 2 ? j % 2 == 0 : j % 4 == 0;
        abtest_observe(ab, (int)(i % 2), "u", 1, list, 10, hit ? 0 : 99);
    }
    size_t len;
    char *text = abtest_report_json(ab, &len);
    json_t *doc = text ? json_loads(text, 0, NULL) : NULL;
    CHECK(doc != NULL);
    CHECK(json_integer_value(json_object_get(doc, "scored")) == (json_int_t)total);
    json_t *hist = json_object_get(doc, "history"), *points = json_object_get(hist, "points");
    uint64_t step = (uint64_t)json_integer_value(json_object_get(hist, "step"));
    /* 9 fillings: the step doubled 4 times (16 -> 256 lists), the points cover 0 .. total */
    CHECK(step == ABTEST_HISTORY_FIRST_STEP * 16);
    CHECK(json_array_size(points) == total / step);
    CHECK(json_array_size(points) > ABTEST_HISTORY / 2 &&
          json_array_size(points) <= ABTEST_HISTORY);
    double started = json_real_value(json_object_get(doc, "started")), last_time = started;
    for (size_t p = 0; p < json_array_size(points); p++) {
        json_t *pt = json_array_get(points, p);
        uint64_t s = (uint64_t)json_integer_value(json_object_get(pt, "scored"));
        CHECK_MSG(s == (p + 1) * step, "point %zu at %llu lists, step %llu", p,
                  (unsigned long long)s, (unsigned long long)step);
        double t = json_real_value(json_object_get(pt, "time"));
        CHECK(t >= last_time && t <= json_real_value(json_object_get(doc, "now")));
        last_time = t;
        uint64_t n[2] = {(s + 1) / 2, s / 2}, every[2] = {4, 2};
        for (int a = 0; a < 2; a++) {
            double want = (double)hits_between(0, n[a], every[a]) / (double)n[a];
            uint64_t from = n[a] > 64 ? n[a] - 64 : 0;
            double want_w = (double)hits_between(from, n[a], every[a]) / (double)(n[a] - from);
            json_t *hr = json_array_get(json_object_get(pt, "hit_rate"), (size_t)a);
            json_t *hw = json_array_get(json_object_get(pt, "hit_rate_window"), (size_t)a);
            json_t *nw = json_array_get(json_object_get(pt, "ndcg_window"), (size_t)a);
            CHECK_CLOSE(json_real_value(hr), want, 1e-6, 1e-6);
            CHECK_CLOSE(json_real_value(hw), want_w, 1e-6, 1e-6);
            CHECK_CLOSE(json_real_value(nw), want_w, 1e-6, 1e-6); /* hits at rank 0: NDCG 1 */
        }
    }
    json_decref(doc);
    free(text);
    abtest_destroy(ab);

    /* before the first step there is no point; an arm that scored nothing is null in every point */
    ab = make(w, 2, 10, 1, NULL);
    for (int i = 0; i < ABTEST_HISTORY_FIRST_STEP - 1; i++)
        abtest_observe(ab, 0, "u", 1, list, 10, 0);
    text = abtest_report_json(ab, &len);
    doc = text ? json_loads(text, 0, NULL) : NULL;
    CHECK(json_array_size(json_object_get(json_object_get(doc, "history"), "points")) == 0);
    json_decref(doc);
    free(text);
    abtest_observe(ab, 0, "u", 1, list, 10, 0);
    text = abtest_report_json(ab, &len);
    doc = text ? json_loads(text, 0, NULL) : NULL;
    json_t *pt = json_array_get(json_object_get(json_object_get(doc, "history"), "points"), 0);
    CHECK(json_real_value(json_array_get(json_object_get(pt, "hit_rate_window"), 0)) == 1.0);
    CHECK(json_is_null(json_array_get(json_object_get(pt, "hit_rate"), 1)));
    CHECK(json_is_null(json_array_get(json_object_get(pt, "ndcg_window"), 1)));
    json_decref(doc);
    free(text);
    abtest_destroy(ab);
}

static void *observe_many(void *arg) {
    AbTest *ab = arg;
    int64_t list[] = {1, 2, 3};
    for (int i = 0; i < 20000; i++) abtest_observe(ab, 0, "u", 1, list, 3, i % 4 + 1);
    return NULL;
}

static void test_concurrent_observe(void) {
    MetricsRegistry *reg = metrics_create();
    double w[] = {1};
    AbTest *ab = make(w, 1, 3, 1, reg);
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, observe_many, ab);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    AbTestStats s = abtest_stats(ab, 0);
    CHECK(s.scored == 80000 && s.hits == 60000);
    abtest_destroy(ab);
    metrics_destroy(reg);
}

static void test_bad_arguments(void) {
    const char *names[] = {"a", "b"};
    double zero[] = {1, 0}, nan_w[] = {1, NAN}, ok[] = {1, 1};
    char err[256];
    AbTest *ab = NULL;
    CHECK(abtest_create(names, zero, 2, 10, 1, NULL, &ab, err, sizeof err) == -1);
    CHECK(abtest_create(names, nan_w, 2, 10, 1, NULL, &ab, err, sizeof err) == -1);
    CHECK(abtest_create(names, ok, 0, 10, 1, NULL, &ab, err, sizeof err) == -1);
    CHECK(abtest_create(names, ok, 2, 0, 1, NULL, &ab, err, sizeof err) == -1);
    CHECK(ab == NULL);
}

/* The design effect of 4 groups with (lists, hits) (100, 30) (80, 2) (120, 10) (50, 20), against
 * numpy 1.24 on the 350 lists (y the hits, e = y - mean, G = 4 groups):
 *   V = G / (G - 1) * sum_g (sum of e in g)^2 / N^2;  deff = V / (mean (1 - mean) / N)
 * and Wilson's interval at N / deff (scipy's norm.ppf(0.975) for z). */
static void test_grouped_statistics(void) {
    AbGrouped s = {0};
    const int lists[4] = {100, 80, 120, 50}, hits[4] = {30, 2, 10, 20};
    for (int g = 0; g < 4; g++)
        for (int i = 0; i < lists[g]; i++) abstats_grouped_add(&s, g * 9, i < hits[g], 1);
    CHECK(s.total.n == 350 && s.total.hits == 62);
    CHECK_CLOSE(abstats_rate_deff(&s), 14.373442566990953, 0, 1e-12);
    AbInterval r = abstats_rate_grouped(&s);
    CHECK_CLOSE(r.lo, 0.07349689269431584, 1e-12, 0);
    CHECK_CLOSE(r.hi, 0.36877447721592915, 1e-12, 0);
    /* a removal undoes an addition */
    abstats_grouped_add(&s, 0, 1, 1);
    abstats_grouped_add(&s, 0, 1, -1);
    CHECK_CLOSE(abstats_rate_deff(&s), 14.373442566990953, 0, 1e-12);
    /* one group: no spread between groups to measure, the list-level figures */
    AbGrouped one = {0};
    for (int i = 0; i < 100; i++) abstats_grouped_add(&one, 5, i % 4 == 0, 1);
    AbInterval plain = abstats_rate(25, 100), grouped = abstats_rate_grouped(&one);
    CHECK(abstats_rate_deff(&one) == 1 && plain.lo == grouped.lo && plain.hi == grouped.hi);
    AbGrouped none = {0};
    CHECK(abstats_rate_deff(&none) == 1 && isnan(abstats_rate_grouped(&none).est));
}

/* A simulated A/A test: two arms of `users` users each, drawn alike (a user hits with a
 * probability of their own, 0.02 or, for one in six, 0.25, on 1 + Geometric(mean 24) lists), so
 * the true difference is 0. Whether the 95% interval of the difference covers 0, with the
 * clustered variance (grouped) or the list-level one. */
static void simulate_aa(uint64_t *state, int users, int *covered_grouped, int *covered_lists) {
    AbGrouped arm[2];
    memset(arm, 0, sizeof arm);
    for (int a = 0; a < 2; a++)
        for (int u = 0; u < users; u++) {
            *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
            double p = (*state >> 40) % 6 == 0 ? 0.25 : 0.02;
            int n = 1;
            for (;;) {
                *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
                if ((double)(*state >> 11) * 0x1.0p-53 < 1.0 / 25) break;
                n++;
            }
            for (int i = 0; i < n; i++) {
                *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
                abstats_grouped_add(&arm[a], u % ABSTATS_GROUPS,
                                    (double)(*state >> 11) * 0x1.0p-53 < p, 1);
            }
        }
    AbDiff g = abstats_rate_diff_grouped(&arm[1], &arm[0]);
    AbDiff l =
        abstats_rate_diff(arm[1].total.hits, arm[1].total.n, arm[0].total.hits, arm[0].total.n);
    *covered_grouped += g.diff.lo <= 0 && 0 <= g.diff.hi;
    *covered_lists += l.diff.lo <= 0 && 0 <= l.diff.hi;
}

/* 400 A/A tests of 1,000 users an arm: the clustered interval covers the truth about 95% of
 * the time (binomial sd of the rate over 400 runs: 0.011), the list-level one far less (0.56 when
 * this was written: the design effect of these users is about 7.5). */
static void test_grouped_coverage(void) {
    uint64_t state = 11;
    int grouped = 0, lists = 0, runs = 400;
    for (int i = 0; i < runs; i++) simulate_aa(&state, 1000, &grouped, &lists);
    double cg = (double)grouped / runs, cl = (double)lists / runs;
    printf("A/A coverage of the 95%% interval over %d runs: clustered %.3f, list-level %.3f\n",
           runs, cg, cl);
    CHECK_MSG(cg >= 0.92 && cg <= 0.985, "clustered coverage %.3f", cg);
    CHECK_MSG(cl < 0.85, "list-level coverage %.3f: these users were meant to be unlike", cl);
}

/* Through an AbTest: users' groups come from abtest_group (every group used by 10,000 ids), and
 * with users who differ the report's interval is wider than the list-level one by its design
 * effect, which it states. The window's per-group sums, 2.5 windows past its bound, are those of
 * its last lists, built again here. */
static void test_grouped_report(void) {
    double w[] = {1, 1};
    AbTest *ab = make(w, 2, 10, 3, NULL);
    char err[256];
    CHECK(abtest_set_window(ab, 6000, err, sizeof err) == 0);
    AbGrouped want = {0}; /* the last 6,000 of the 15,000 lists below */
    int seen[ABSTATS_GROUPS] = {0};
    for (int i = 0; i < 10000; i++) {
        char id[32];
        int len = snprintf(id, sizeof id, "user-%d", i), g = abtest_group(ab, id, (size_t)len);
        CHECK(g >= 0 && g < ABSTATS_GROUPS);
        seen[g]++;
    }
    for (int g = 0; g < ABSTATS_GROUPS; g++) CHECK(seen[g] > 80); /* 156 each on average */
    int64_t list[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    for (int i = 0; i < 500; i++) {
        char id[32];
        int len = snprintf(id, sizeof id, "user-%d", i);
        for (int j = 0; j < 30; j++) { /* users 0, 5, 10, ... always hit; the rest never */
            abtest_observe(ab, 0, id, (size_t)len, list, 10, i % 5 ? 99 : 0);
            if (i >= 300)
                abstats_grouped_add(&want, abtest_group(ab, id, (size_t)len), !(i % 5), 1);
        }
    }
    size_t len = 0;
    char *text = abtest_report_json(ab, &len);
    json_t *doc = text ? json_loads(text, 0, NULL) : NULL;
    json_t *all = json_object_get(json_array_get(json_object_get(doc, "arms"), 0), "cumulative");
    json_t *hr = json_object_get(all, "hit_rate");
    double deff =
        json_real_value(json_object_get(json_object_get(all, "design_effect"), "hit_rate"));
    AbInterval plain = abstats_rate(3000, 15000);
    CHECK_CLOSE(json_real_value(json_object_get(hr, "estimate")), 0.2, 1e-6, 0);
    CHECK_MSG(deff > 10, "design effect %.2f of users who always or never hit", deff);
    CHECK(json_real_value(json_object_get(hr, "high")) - 0.2 > 2 * (plain.hi - 0.2));
    json_t *win = json_object_get(json_array_get(json_object_get(doc, "arms"), 0), "window");
    double wdeff =
        json_real_value(json_object_get(json_object_get(win, "design_effect"), "hit_rate"));
    CHECK(json_integer_value(json_object_get(win, "scored")) == 6000);
    CHECK_CLOSE(wdeff, abstats_rate_deff(&want), 1e-5, 1e-5);
    CHECK(abstats_rate_deff(&want) > 10);
    json_decref(doc);
    free(text);
    abtest_destroy(ab);
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--dump")) return dump_assignments();
    test_stability();
    test_weights();
    test_hash_mixing();
    test_online_metrics();
    test_statistics();
    test_window_and_report();
    test_grouped_statistics();
    test_grouped_coverage();
    test_grouped_report();
    test_history();
    test_concurrent_observe();
    test_bad_arguments();
    return check_done();
}
