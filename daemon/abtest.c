/* abtest.c - see abtest.h. */
#include "daemon/abtest.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *name;
    double upper; /* cumulative share: users with u in [previous upper, upper) get this variant */
    AbTestStats stats;
    MetricCounter *scored, *hits, *ndcg_sum;
    MetricGauge *hit_rate, *ndcg;
} AbVariant;

struct AbTest {
    pthread_mutex_t mutex; /* guards every stats */
    uint64_t seed;
    int k;
    int n;
    AbVariant variants[ABTEST_MAX_VARIANTS];
};

uint64_t abtest_hash(const void *key, size_t len, uint64_t seed) {
    const uint64_t m = 0xc6a4a7935bd1e995ULL;
    const int r = 47;
    const unsigned char *p = key;
    uint64_t h = seed ^ ((uint64_t)len * m);
    size_t blocks = len / 8;
    for (size_t b = 0; b < blocks; b++, p += 8) {
        uint64_t k = 0;
        for (int i = 7; i >= 0; i--) k = (k << 8) | p[i]; /* little-endian load */
        k *= m;
        k ^= k >> r;
        k *= m;
        h ^= k;
        h *= m;
    }
    size_t tail = len & 7;
    if (tail) {
        for (size_t i = tail; i-- > 0;) h ^= (uint64_t)p[i] << (8 * i);
        h *= m;
    }
    h ^= h >> r;
    h *= m;
    h ^= h >> r;
    return h;
}

static int register_metrics(AbVariant *v, int k, MetricsRegistry *reg, char *err, size_t errlen) {
    char k_text[16];
    snprintf(k_text, sizeof k_text, "%d", k);
    const char *labels[] = {"variant", v->name, "k", k_text, NULL};
    v->scored =
        metrics_counter(reg, "ssnad_online_scored_total",
                        "Published lists scored against the user's next item", labels, err, errlen);
    v->hits = v->scored ? metrics_counter(reg, "ssnad_online_hits_total",
                                          "Scored lists that held the next item in the top k",
                                          labels, err, errlen)
                        : NULL;
    v->ndcg_sum = v->hits ? metrics_counter(reg, "ssnad_online_ndcg_sum",
                                            "Sum of NDCG@k over scored lists", labels, err, errlen)
                          : NULL;
    v->hit_rate = v->ndcg_sum
                      ? metrics_gauge(reg, "ssnad_online_hit_rate",
                                      "Online hit rate at k (hits / scored)", labels, err, errlen)
                      : NULL;
    v->ndcg = v->hit_rate ? metrics_gauge(reg, "ssnad_online_ndcg", "Online mean NDCG at k", labels,
                                          err, errlen)
                          : NULL;
    return v->ndcg ? 0 : -1;
}

int abtest_create(const char *const *names, const double *weights, int n_variants, int k,
                  uint64_t seed, MetricsRegistry *reg, AbTest **out, char *err, size_t errlen) {
    if (n_variants < 1 || n_variants > ABTEST_MAX_VARIANTS || k < 1) {
        snprintf(err, errlen, "abtest: need 1 .. %d variants and k >= 1 (got %d, k %d)",
                 ABTEST_MAX_VARIANTS, n_variants, k);
        return -1;
    }
    double total = 0;
    for (int i = 0; i < n_variants; i++) {
        if (!(weights[i] > 0) || !isfinite(weights[i]) || !names[i] || !*names[i]) {
            snprintf(err, errlen, "abtest: variant %d needs a name and a finite weight > 0", i);
            return -1;
        }
        total += weights[i];
    }
    AbTest *ab = calloc(1, sizeof *ab);
    if (!ab) {
        snprintf(err, errlen, "abtest: out of memory");
        return -1;
    }
    pthread_mutex_init(&ab->mutex, NULL);
    ab->seed = seed;
    ab->k = k;
    ab->n = n_variants;
    double cumulative = 0;
    for (int i = 0; i < n_variants; i++) {
        AbVariant *v = &ab->variants[i];
        cumulative += weights[i];
        v->upper = i == n_variants - 1 ? 1.0 : cumulative / total;
        v->name = strdup(names[i]);
        if (!v->name) {
            snprintf(err, errlen, "abtest: out of memory");
            abtest_destroy(ab);
            return -1;
        }
        if (reg && register_metrics(v, k, reg, err, errlen) < 0) {
            abtest_destroy(ab);
            return -1;
        }
    }
    *out = ab;
    return 0;
}

void abtest_destroy(AbTest *ab) {
    if (!ab) return;
    for (int i = 0; i < ab->n; i++) free(ab->variants[i].name);
    pthread_mutex_destroy(&ab->mutex);
    free(ab);
}

int abtest_assign(const AbTest *ab, const char *user_id, size_t len) {
    /* the top 53 bits as a uniform double in [0, 1) */
    double u = (double)(abtest_hash(user_id, len, ab->seed) >> 11) * 0x1.0p-53;
    for (int i = 0; i < ab->n - 1; i++)
        if (u < ab->variants[i].upper) return i;
    return ab->n - 1;
}

int abtest_variant_count(const AbTest *ab) {
    return ab->n;
}

const char *abtest_variant_name(const AbTest *ab, int variant) {
    return variant >= 0 && variant < ab->n ? ab->variants[variant].name : NULL;
}

int abtest_observe(AbTest *ab, int variant, const int64_t *published, size_t n, int64_t next_item) {
    if (variant < 0 || variant >= ab->n) return -1;
    size_t top = n < (size_t)ab->k ? n : (size_t)ab->k;
    int rank = -1;
    for (size_t i = 0; i < top && rank < 0; i++)
        if (published[i] == next_item) rank = (int)i;
    double gain = rank >= 0 ? 1.0 / log2((double)rank + 2.0) : 0.0;

    AbVariant *v = &ab->variants[variant];
    pthread_mutex_lock(&ab->mutex);
    AbTestStats *s = &v->stats;
    s->scored++;
    s->hits += rank >= 0;
    s->ndcg_sum += gain;
    s->hit_rate = (double)s->hits / (double)s->scored;
    s->ndcg = s->ndcg_sum / (double)s->scored;
    if (v->scored) {
        metric_counter_inc(v->scored);
        if (rank >= 0) metric_counter_inc(v->hits);
        metric_counter_add(v->ndcg_sum, gain);
        metric_gauge_set(v->hit_rate, s->hit_rate);
        metric_gauge_set(v->ndcg, s->ndcg);
    }
    pthread_mutex_unlock(&ab->mutex);
    return rank;
}

AbTestStats abtest_stats(const AbTest *ab, int variant) {
    AbTestStats s = {0};
    if (variant < 0 || variant >= ab->n) return s;
    pthread_mutex_lock((pthread_mutex_t *)&ab->mutex);
    s = ab->variants[variant].stats;
    pthread_mutex_unlock((pthread_mutex_t *)&ab->mutex);
    return s;
}
