/* abtest.c - see abtest.h. */
#include "daemon/abtest.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/clock.h"
#include "model/errmsg.h"

typedef struct {
    char *name;
    double weight;
    double upper; /* cumulative share: users with u in [previous upper, upper) get this variant */
    AbGrouped all, win;   /* since start; over the ring */
    float *ring;          /* [window] NDCG of the last scored lists (0: a miss); oldest at head */
    unsigned char *group; /* [window] their users' groups (abtest_group) */
    size_t ring_head, ring_n, since_resum;
    MetricCounter *scored, *hits, *ndcg_sum;
    MetricGauge *hit_rate, *ndcg;
    MetricGauge *win_hit_rate, *win_ndcg, *diff_rate, *p_rate; /* diff / p: not the control's */
} AbVariant;

/* One point of the history: every arm's hit rate and NDCG at a moment (NaN: nothing scored). */
typedef struct {
    uint64_t scored; /* lists scored by all arms together */
    double time;     /* unix seconds */
    float hit_rate[ABTEST_MAX_VARIANTS], hit_rate_window[ABTEST_MAX_VARIANTS];
    float ndcg_window[ABTEST_MAX_VARIANTS];
} AbPoint;

struct AbTest {
    pthread_mutex_t mutex; /* guards every stats */
    uint64_t seed;
    int k;
    int n;
    size_t window; /* lists in the sliding window; 0 until abtest_set_window */
    MetricsRegistry *reg;
    double started;  /* unix seconds at abtest_create */
    uint64_t scored; /* lists scored by all arms together */
    uint64_t step;   /* a history point every `step` scored lists; doubles when the history fills */
    size_t history_n; /* points in history, oldest first */
    AbPoint history[ABTEST_HISTORY];
    AbVariant variants[ABTEST_MAX_VARIANTS];
};

static double unix_now(void) {
    return 1e-3 * (double)clock_wall_ms();
}

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

/* The window's and the comparison's gauges (abtest_set_window). */
static int register_window_metrics(AbTest *ab, int i, char *err, size_t errlen) {
    AbVariant *v = &ab->variants[i];
    char k_text[16], w_text[24];
    snprintf(k_text, sizeof k_text, "%d", ab->k);
    snprintf(w_text, sizeof w_text, "%zu", ab->window);
    const char *labels[] = {"variant", v->name, "k", k_text, "window", w_text, NULL};
    v->win_hit_rate = metrics_gauge(ab->reg, "ssnad_online_hit_rate_window",
                                    "Online hit rate at k over the last `window` scored lists",
                                    labels, err, errlen);
    v->win_ndcg = v->win_hit_rate ? metrics_gauge(ab->reg, "ssnad_online_ndcg_window",
                                                  "Online mean NDCG at k over the last `window` "
                                                  "scored lists",
                                                  labels, err, errlen)
                                  : NULL;
    if (!v->win_ndcg) return -1;
    if (i == 0) return 0;
    const char *vs[] = {"variant", v->name, "control", ab->variants[0].name, "k", k_text, NULL};
    v->diff_rate = metrics_gauge(ab->reg, "ssnad_ab_hit_rate_diff",
                                 "Online hit rate at k, this variant minus the control (the first "
                                 "variant), since start",
                                 vs, err, errlen);
    v->p_rate = v->diff_rate ? metrics_gauge(ab->reg, "ssnad_ab_hit_rate_p_value",
                                             "Two-sided p-value of that difference (pooled "
                                             "two-proportion z-test, variances times their "
                                             "design effects)",
                                             vs, err, errlen)
                             : NULL;
    return v->p_rate ? 0 : -1;
}

int abtest_create(const char *const *names, const double *weights, int n_variants, int k,
                  uint64_t seed, MetricsRegistry *reg, AbTest **out, char *err, size_t errlen) {
    if (n_variants < 1 || n_variants > ABTEST_MAX_VARIANTS || k < 1) {
        return errmsg_fail(err, errlen, "abtest: need 1 .. %d variants and k >= 1 (got %d, k %d)",
                           ABTEST_MAX_VARIANTS, n_variants, k);
    }
    double total = 0;
    for (int i = 0; i < n_variants; i++) {
        if (!(weights[i] > 0) || !isfinite(weights[i]) || !names[i] || !*names[i]) {
            return errmsg_fail(err, errlen,
                               "abtest: variant %d needs a name and a finite weight > 0", i);
        }
        total += weights[i];
    }
    AbTest *ab = calloc(1, sizeof *ab);
    if (!ab) {
        return errmsg_fail(err, errlen, "abtest: out of memory");
    }
    pthread_mutex_init(&ab->mutex, NULL);
    ab->seed = seed;
    ab->k = k;
    ab->n = n_variants;
    ab->reg = reg;
    ab->started = unix_now();
    ab->step = ABTEST_HISTORY_FIRST_STEP;
    double cumulative = 0;
    for (int i = 0; i < n_variants; i++) {
        AbVariant *v = &ab->variants[i];
        cumulative += weights[i];
        v->weight = weights[i];
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
    for (int i = 0; i < ab->n; i++)
        free(ab->variants[i].name), free(ab->variants[i].ring), free(ab->variants[i].group);
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

int abtest_group(const AbTest *ab, const char *user_id, size_t len) {
    // another seed than the assignment's: within an arm the groups split its users evenly
    return (int)(abtest_hash(user_id, len, ab->seed ^ 0x9e3779b97f4a7c15ULL) % ABSTATS_GROUPS);
}

/* One list into the ring, the oldest out once it is full. Adding and removing doubles drifts, so
 * the sums are recomputed from the ring once per `window` lists (O(1) per list amortised). */
static void window_push(AbTest *ab, AbVariant *v, float gain, int group) {
    if (v->ring_n == ab->window)
        abstats_grouped_add(&v->win, v->group[v->ring_head], v->ring[v->ring_head], -1);
    else
        v->ring_n++;
    v->ring[v->ring_head] = gain;
    v->group[v->ring_head] = (unsigned char)group;
    v->ring_head = (v->ring_head + 1) % ab->window;
    abstats_grouped_add(&v->win, group, gain, 1);
    if (++v->since_resum >= ab->window) {
        memset(&v->win, 0, sizeof v->win);
        for (size_t i = 0; i < v->ring_n; i++)
            abstats_grouped_add(&v->win, v->group[i], v->ring[i], 1);
        v->since_resum = 0;
    }
}

/* The window gauges of a variant, and every comparison when the control (variant 0) changed. */
static void update_window_gauges(AbTest *ab, int variant) {
    AbVariant *v = &ab->variants[variant];
    const AbSums *w = &v->win.total;
    metric_gauge_set(v->win_hit_rate, w->n ? (double)w->hits / (double)w->n : 0);
    metric_gauge_set(v->win_ndcg, w->n ? w->ndcg_sum / (double)w->n : 0);
    const AbVariant *c = &ab->variants[0];
    for (int i = variant ? variant : 1; i < (variant ? variant + 1 : ab->n); i++) {
        AbDiff d = abstats_rate_diff_grouped(&ab->variants[i].all, &c->all);
        if (isnan(d.diff.est)) continue;
        metric_gauge_set(ab->variants[i].diff_rate, d.diff.est);
        if (!isnan(d.p_value)) metric_gauge_set(ab->variants[i].p_rate, d.p_value);
    }
}

int abtest_set_window(AbTest *ab, size_t window, char *err, size_t errlen) {
    if (window < 1 || ab->window) {
        return errmsg_fail(err, errlen,
                           "abtest: the window is set once, to 1 or more lists (got %zu)", window);
    }
    for (int i = 0; i < ab->n; i++)
        if (!(ab->variants[i].ring = calloc(window, sizeof(float))) ||
            !(ab->variants[i].group = calloc(window, 1))) {
            return errmsg_fail(err, errlen, "abtest: out of memory for a window of %zu lists",
                               window);
        }
    ab->window = window;
    for (int i = 0; i < ab->n && ab->reg; i++)
        if (register_window_metrics(ab, i, err, errlen)) return -1;
    return 0;
}

static float ratio(double num, uint64_t den) {
    return den ? (float)(num / (double)den) : NAN;
}

/* A history point every `step` lists; a full history keeps every other point (those on the
 * doubled step), so it always spans the whole run at the same memory. */
static void history_push(AbTest *ab) {
    if (++ab->scored % ab->step) return;
    if (ab->history_n == ABTEST_HISTORY) {
        for (size_t i = 1; i < ABTEST_HISTORY; i += 2) ab->history[i / 2] = ab->history[i];
        ab->history_n = ABTEST_HISTORY / 2;
        ab->step *= 2;
        if (ab->scored % ab->step) return;
    }
    AbPoint *p = &ab->history[ab->history_n++];
    p->scored = ab->scored;
    p->time = unix_now();
    for (int i = 0; i < ab->n; i++) {
        const AbVariant *v = &ab->variants[i];
        const AbSums *w = ab->window ? &v->win.total : &v->all.total;
        p->hit_rate[i] = ratio((double)v->all.total.hits, v->all.total.n);
        p->hit_rate_window[i] = ratio((double)w->hits, w->n);
        p->ndcg_window[i] = ratio(w->ndcg_sum, w->n);
    }
}

int abtest_observe(AbTest *ab, int variant, const char *user_id, size_t user_len,
                   const int64_t *published, size_t n, int64_t next_item) {
    if (variant < 0 || variant >= ab->n) return -1;
    int group = abtest_group(ab, user_id, user_len);
    size_t top = n < (size_t)ab->k ? n : (size_t)ab->k;
    int rank = -1;
    for (size_t i = 0; i < top && rank < 0; i++)
        if (published[i] == next_item) rank = (int)i;
    double gain = rank >= 0 ? 1.0 / log2((double)rank + 2.0) : 0.0;

    AbVariant *v = &ab->variants[variant];
    pthread_mutex_lock(&ab->mutex);
    abstats_grouped_add(&v->all, group, gain, 1);
    if (ab->window) window_push(ab, v, (float)gain, group);
    if (v->scored) {
        metric_counter_inc(v->scored);
        if (rank >= 0) metric_counter_inc(v->hits);
        metric_counter_add(v->ndcg_sum, gain);
        const AbSums *all = &v->all.total;
        metric_gauge_set(v->hit_rate, (double)all->hits / (double)all->n);
        metric_gauge_set(v->ndcg, all->ndcg_sum / (double)all->n);
    }
    if (v->win_hit_rate) update_window_gauges(ab, variant);
    history_push(ab);
    pthread_mutex_unlock(&ab->mutex);
    return rank;
}

AbTestStats abtest_stats(const AbTest *ab, int variant) {
    AbTestStats s = {0};
    if (variant < 0 || variant >= ab->n) return s;
    pthread_mutex_lock((pthread_mutex_t *)&ab->mutex);
    AbSums all = ab->variants[variant].all.total;
    pthread_mutex_unlock((pthread_mutex_t *)&ab->mutex);
    s.scored = all.n, s.hits = all.hits, s.ndcg_sum = all.ndcg_sum;
    if (all.n) s.hit_rate = (double)all.hits / (double)all.n, s.ndcg = all.ndcg_sum / (double)all.n;
    return s;
}

/* ---- the report ---- */

static json_t *number(double x) {
    return isfinite(x) ? json_real(x) : json_null(); // JSON has no NaN: null = not enough data
}

static json_t *interval(AbInterval r) {
    return json_pack("{s:o, s:o, s:o}", "estimate", number(r.est), "low", number(r.lo), "high",
                     number(r.hi));
}

static json_t *scope(const AbGrouped *s) {
    return json_pack("{s:I, s:I, s:o, s:o, s:o}", "scored", (json_int_t)s->total.n, "hits",
                     (json_int_t)s->total.hits, "hit_rate", interval(abstats_rate_grouped(s)),
                     "ndcg", interval(abstats_mean_grouped(s)), "design_effect",
                     json_pack("{s:o, s:o}", "hit_rate", number(abstats_rate_deff(s)), "ndcg",
                               number(abstats_mean_deff(s))));
}

static json_t *diff(AbDiff d) {
    return json_pack("{s:o, s:o, s:o, s:o}", "difference", number(d.diff.est), "low",
                     number(d.diff.lo), "high", number(d.diff.hi), "p_value", number(d.p_value));
}

static json_t *versus(const AbGrouped *a, const AbGrouped *c) {
    return json_pack("{s:o, s:o}", "hit_rate", diff(abstats_rate_diff_grouped(a, c)), "ndcg",
                     diff(abstats_mean_diff_grouped(a, c)));
}

/* {"step", "points": [{"scored", "time", "hit_rate": [arm...], "hit_rate_window", "ndcg_window"}]}
 */
static json_t *history(const AbTest *ab) {
    json_t *points = json_array();
    for (size_t j = 0; j < ab->history_n && points; j++) {
        const AbPoint *p = &ab->history[j];
        json_t *hit = json_array(), *hit_w = json_array(), *ndcg_w = json_array();
        int ok = hit && hit_w && ndcg_w;
        for (int i = 0; i < ab->n && ok; i++)
            ok = !json_array_append_new(hit, number(p->hit_rate[i])) &&
                 !json_array_append_new(hit_w, number(p->hit_rate_window[i])) &&
                 !json_array_append_new(ndcg_w, number(p->ndcg_window[i]));
        json_t *point = ok ? json_pack("{s:I, s:f, s:o, s:o, s:o}", "scored", (json_int_t)p->scored,
                                       "time", p->time, "hit_rate", hit, "hit_rate_window", hit_w,
                                       "ndcg_window", ndcg_w)
                           : (json_decref(hit), json_decref(hit_w), json_decref(ndcg_w), NULL);
        if (!point || json_array_append_new(points, point)) json_decref(points), points = NULL;
    }
    return json_pack("{s:I, s:o}", "step", (json_int_t)ab->step, "points", points);
}

char *abtest_report_json(AbTest *ab, size_t *len) {
    pthread_mutex_lock(&ab->mutex);
    const AbVariant *c = &ab->variants[0];
    json_t *arms = json_array();
    for (int i = 0; i < ab->n && arms; i++) {
        const AbVariant *v = &ab->variants[i];
        json_t *arm = json_pack("{s:s, s:f, s:o, s:o}", "variant", v->name, "weight", v->weight,
                                "cumulative", scope(&v->all), "window", scope(&v->win));
        if (arm && i)
            json_object_set_new(arm, "vs_control",
                                json_pack("{s:o, s:o}", "cumulative", versus(&v->all, &c->all),
                                          "window", versus(&v->win, &c->win)));
        if (!arm || json_array_append_new(arms, arm)) json_decref(arms), arms = NULL;
    }
    json_t *doc = arms ? json_pack("{s:i, s:I, s:s, s:f, s:f, s:I, s:o, s:s, s:o}", "k", ab->k,
                                   "window", (json_int_t)ab->window, "control", c->name, "started",
                                   ab->started, "now", unix_now(), "scored", (json_int_t)ab->scored,
                                   "history", history(ab), "method",
                                   "95% intervals: Wilson (hit rate), normal (NDCG); differences "
                                   "arm - control: Wald intervals, pooled z-test (hit rate), "
                                   "Welch z (NDCG); each variance times its design effect over "
                                   "64 hashed groups of users (a user's lists are not "
                                   "independent)",
                                   "arms", arms)
                       : NULL;
    pthread_mutex_unlock(&ab->mutex);
    char *text = doc ? json_dumps(doc, JSON_INDENT(1) | JSON_REAL_PRECISION(6)) : NULL;
    json_decref(doc);
    if (text) *len = strlen(text);
    return text;
}
