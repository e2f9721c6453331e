/* test_abtest.c - daemon/abtest: assignment is stable across processes and instances, follows
 * the weights on 100k ids, mixes its input well, and the prequential hit-rate / NDCG arithmetic
 * matches hand-computed cases. */
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
    CHECK(abtest_observe(ab, 0, list, 4, 5) == 0);   /* rank 0: gain 1 */
    CHECK(abtest_observe(ab, 0, list, 4, 9) == 2);   /* rank 2: gain 1/log2(4) = 0.5 */
    CHECK(abtest_observe(ab, 0, list, 4, 11) == -1); /* rank 3 is outside the top 3 */
    CHECK(abtest_observe(ab, 0, list, 4, 42) == -1);
    AbTestStats s = abtest_stats(ab, 0);
    CHECK(s.scored == 4 && s.hits == 2);
    CHECK_CLOSE(s.ndcg_sum, 1.5, 1e-12, 0);
    CHECK_CLOSE(s.hit_rate, 0.5, 1e-12, 0);
    CHECK_CLOSE(s.ndcg, 0.375, 1e-12, 0);

    int64_t short_list[] = {9, 5};
    CHECK(abtest_observe(ab, 1, short_list, 2, 5) == 1);  /* rank 1: 1/log2(3) */
    CHECK(abtest_observe(ab, 1, short_list, 0, 5) == -1); /* nothing published */
    s = abtest_stats(ab, 1);
    CHECK(s.scored == 2 && s.hits == 1);
    CHECK_CLOSE(s.ndcg_sum, 0.63092975357145743, 1e-12, 0);
    CHECK(abtest_observe(ab, 2, list, 4, 5) == -1); /* no such variant: nothing counted */
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

static void *observe_many(void *arg) {
    AbTest *ab = arg;
    int64_t list[] = {1, 2, 3};
    for (int i = 0; i < 20000; i++) abtest_observe(ab, 0, list, 3, i % 4 + 1);
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

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--dump")) return dump_assignments();
    test_stability();
    test_weights();
    test_hash_mixing();
    test_online_metrics();
    test_concurrent_observe();
    test_bad_arguments();
    return check_done();
}
