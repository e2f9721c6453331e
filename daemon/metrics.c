/* metrics.c - see metrics.h. */
#include "daemon/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM } MetricKind;

static const char *const kind_names[] = {"counter", "gauge", "histogram"};

typedef struct MetricFamily MetricFamily;

struct MetricSeries {
    MetricKind kind;
    const MetricFamily *family;
    char *labels;                /* canonical rendered set: a="1",b="2" (sorted), "" if none */
    _Atomic uint64_t value_bits; /* counter / gauge value, histogram sum: a double's bits */
    _Atomic uint64_t *buckets;   /* histogram: [n_bounds + 1] counts, not cumulative; last +Inf */
    struct MetricSeries *next;
};

struct MetricFamily {
    char *name;
    char *help;
    MetricKind kind;
    double bounds[METRICS_MAX_BUCKETS];
    size_t n_bounds;
    struct MetricSeries *first, *last;
    struct MetricFamily *next;
};

struct MetricsRegistry {
    pthread_mutex_t mutex;
    MetricFamily *first, *last;
    void (*hook)(void *ctx);
    void *hook_ctx;
};

const double metrics_latency_buckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                          0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                          1,      2.5,     5,      10};
const size_t metrics_latency_bucket_count =
    sizeof metrics_latency_buckets / sizeof metrics_latency_buckets[0];

static double bits_to_double(uint64_t bits) {
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

static uint64_t double_to_bits(double v) {
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return bits;
}

/* C11 has no atomic add for doubles: compare-and-swap on the bits. */
static void atomic_add_double(_Atomic uint64_t *bits, double v) {
    uint64_t old = atomic_load_explicit(bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(bits, &old,
                                                  double_to_bits(bits_to_double(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

/* A growable text buffer; `failed` latches an allocation failure. */
typedef struct {
    char *p;
    size_t len, cap;
    int failed;
} TextBuf;

static void buf_put(TextBuf *b, const char *s, size_t n) {
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (b->len + n + 1 > cap) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void buf_puts(TextBuf *b, const char *s) {
    buf_put(b, s, strlen(s));
}

/* HELP text escapes \ and newline; label values also escape the double quote. */
static void buf_put_escaped(TextBuf *b, const char *s, int quote) {
    for (; *s; s++) {
        if (*s == '\\')
            buf_put(b, "\\\\", 2);
        else if (*s == '\n')
            buf_put(b, "\\n", 2);
        else if (*s == '"' && quote)
            buf_put(b, "\\\"", 2);
        else
            buf_put(b, s, 1);
    }
}

void metrics_format_value(char *buf, size_t cap, double v) {
    if (isnan(v)) {
        snprintf(buf, cap, "NaN");
    } else if (isinf(v)) {
        snprintf(buf, cap, v > 0 ? "+Inf" : "-Inf");
    } else {
        for (int precision = 15; precision <= 17; precision++) {
            snprintf(buf, cap, "%.*g", precision, v);
            if (strtod(buf, NULL) == v) break;
        }
    }
}

static int valid_name(const char *s, int allow_colon) {
    if (!s || !*s) return 0;
    for (const char *p = s; *p; p++) {
        int alpha = ('a' <= *p && *p <= 'z') || ('A' <= *p && *p <= 'Z') || *p == '_' ||
                    (allow_colon && *p == ':');
        if (!alpha && !(p > s && '0' <= *p && *p <= '9')) return 0;
    }
    return 1;
}

/* Check a label list and render it canonically (sorted by name) into a new string. */
static char *canonical_labels(const char *const *labels, char *err, size_t errlen) {
    const char *names[METRICS_MAX_LABELS], *values[METRICS_MAX_LABELS];
    size_t n = 0;
    for (; labels && labels[2 * n]; n++) {
        if (n == METRICS_MAX_LABELS) {
            snprintf(err, errlen, "more than %d labels", METRICS_MAX_LABELS);
            return NULL;
        }
        names[n] = labels[2 * n];
        values[n] = labels[2 * n + 1];
        if (!valid_name(names[n], 0) || !strncmp(names[n], "__", 2) || !values[n]) {
            snprintf(err, errlen, "bad label '%s'", names[n]);
            return NULL;
        }
        for (size_t j = n; j > 0 && strcmp(names[j - 1], names[j]) >= 0; j--) {
            if (!strcmp(names[j - 1], names[j])) {
                snprintf(err, errlen, "label '%s' given twice", names[j]);
                return NULL;
            }
            const char *tn = names[j], *tv = values[j];
            names[j] = names[j - 1], values[j] = values[j - 1];
            names[j - 1] = tn, values[j - 1] = tv;
        }
    }
    TextBuf b = {0};
    buf_put(&b, "", 0);
    for (size_t i = 0; i < n; i++) {
        if (i) buf_put(&b, ",", 1);
        buf_puts(&b, names[i]);
        buf_put(&b, "=\"", 2);
        buf_put_escaped(&b, values[i], 1);
        buf_put(&b, "\"", 1);
    }
    if (b.failed) {
        free(b.p);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    return b.p;
}

MetricsRegistry *metrics_create(void) {
    MetricsRegistry *reg = calloc(1, sizeof *reg);
    if (reg) pthread_mutex_init(&reg->mutex, NULL);
    return reg;
}

void metrics_destroy(MetricsRegistry *reg) {
    if (!reg) return;
    for (MetricFamily *f = reg->first, *fnext; f; f = fnext) {
        fnext = f->next;
        for (struct MetricSeries *s = f->first, *snext; s; s = snext) {
            snext = s->next;
            free(s->labels);
            free(s->buckets);
            free(s);
        }
        free(f->name);
        free(f->help);
        free(f);
    }
    pthread_mutex_destroy(&reg->mutex);
    free(reg);
}

static MetricFamily *find_or_add_family(MetricsRegistry *reg, const char *name, const char *help,
                                        MetricKind kind, const double *bounds, size_t n_bounds,
                                        char *err, size_t errlen) {
    for (MetricFamily *f = reg->first; f; f = f->next) {
        if (strcmp(f->name, name)) continue;
        if (f->kind != kind) {
            snprintf(err, errlen, "%s is already a %s", name, kind_names[f->kind]);
            return NULL;
        }
        if (f->n_bounds != n_bounds ||
            (n_bounds && memcmp(f->bounds, bounds, n_bounds * sizeof *bounds))) {
            snprintf(err, errlen, "%s is already a histogram with other buckets", name);
            return NULL;
        }
        return f;
    }
    MetricFamily *f = calloc(1, sizeof *f);
    if (f) {
        f->name = strdup(name);
        f->help = strdup(help ? help : "");
    }
    if (!f || !f->name || !f->help) {
        if (f) free(f->name), free(f->help);
        free(f);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    f->kind = kind;
    if (n_bounds) memcpy(f->bounds, bounds, n_bounds * sizeof *bounds);
    f->n_bounds = n_bounds;
    if (reg->last)
        reg->last->next = f;
    else
        reg->first = f;
    reg->last = f;
    return f;
}

static struct MetricSeries *register_series(MetricsRegistry *reg, const char *name,
                                            const char *help, MetricKind kind,
                                            const char *const *labels, const double *bounds,
                                            size_t n_bounds, char *err, size_t errlen) {
    if (!valid_name(name, 1)) {
        snprintf(err, errlen, "bad metric name '%s'", name ? name : "(null)");
        return NULL;
    }
    char *canon = canonical_labels(labels, err, errlen);
    if (!canon) return NULL;
    pthread_mutex_lock(&reg->mutex);
    struct MetricSeries *s = NULL;
    MetricFamily *f = find_or_add_family(reg, name, help, kind, bounds, n_bounds, err, errlen);
    if (f) {
        for (s = f->first; s && strcmp(s->labels, canon); s = s->next) {
        }
    }
    if (f && !s) {
        s = calloc(1, sizeof *s);
        if (s && n_bounds) s->buckets = calloc(n_bounds + 1, sizeof *s->buckets);
        if (!s || (n_bounds && !s->buckets)) {
            if (s) free(s->buckets);
            free(s);
            s = NULL;
            snprintf(err, errlen, "out of memory");
        } else {
            s->kind = kind;
            s->family = f;
            s->labels = canon;
            canon = NULL;
            atomic_init(&s->value_bits, double_to_bits(0));
            for (size_t i = 0; i < n_bounds + 1 && s->buckets; i++) atomic_init(&s->buckets[i], 0);
            if (f->last)
                f->last->next = s;
            else
                f->first = s;
            f->last = s;
        }
    }
    pthread_mutex_unlock(&reg->mutex);
    free(canon);
    return s;
}

MetricCounter *metrics_counter(MetricsRegistry *reg, const char *name, const char *help,
                               const char *const *labels, char *err, size_t errlen) {
    return register_series(reg, name, help, KIND_COUNTER, labels, NULL, 0, err, errlen);
}

MetricGauge *metrics_gauge(MetricsRegistry *reg, const char *name, const char *help,
                           const char *const *labels, char *err, size_t errlen) {
    return register_series(reg, name, help, KIND_GAUGE, labels, NULL, 0, err, errlen);
}

MetricHistogram *metrics_histogram(MetricsRegistry *reg, const char *name, const char *help,
                                   const char *const *labels, const double *bounds, size_t n_bounds,
                                   char *err, size_t errlen) {
    if (n_bounds < 1 || n_bounds > METRICS_MAX_BUCKETS) {
        snprintf(err, errlen, "%s: 1 to %d bucket bounds, not %zu", name, METRICS_MAX_BUCKETS,
                 n_bounds);
        return NULL;
    }
    for (size_t i = 0; i < n_bounds; i++) {
        if (!isfinite(bounds[i]) || (i && bounds[i] <= bounds[i - 1])) {
            snprintf(err, errlen, "%s: bucket bounds must be finite and increasing (bound %zu)",
                     name, i);
            return NULL;
        }
    }
    return register_series(reg, name, help, KIND_HISTOGRAM, labels, bounds, n_bounds, err, errlen);
}

void metric_counter_add(MetricCounter *c, double v) {
    if (!(v >= 0)) return;
    atomic_add_double(&c->value_bits, v);
}

void metric_counter_inc(MetricCounter *c) {
    atomic_add_double(&c->value_bits, 1);
}

double metric_counter_value(const MetricCounter *c) {
    return bits_to_double(
        atomic_load_explicit(&((MetricCounter *)c)->value_bits, memory_order_relaxed));
}

void metric_gauge_set(MetricGauge *g, double v) {
    atomic_store_explicit(&g->value_bits, double_to_bits(v), memory_order_relaxed);
}

void metric_gauge_add(MetricGauge *g, double v) {
    atomic_add_double(&g->value_bits, v);
}

double metric_gauge_value(const MetricGauge *g) {
    return metric_counter_value(g);
}

void metric_histogram_observe(MetricHistogram *h, double v) {
    const MetricFamily *f = h->family;
    size_t i = 0;
    /* NaN falls through every comparison into +Inf, as in the Prometheus clients */
    while (i < f->n_bounds && !(v <= f->bounds[i])) i++;
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_add_double(&h->value_bits, v);
}

/* Snapshot of a histogram's bucket counts; returns the total. */
static uint64_t histogram_snapshot(const MetricHistogram *h, uint64_t *counts) {
    uint64_t total = 0;
    for (size_t i = 0; i <= h->family->n_bounds; i++) {
        counts[i] = atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        total += counts[i];
    }
    return total;
}

uint64_t metric_histogram_count(const MetricHistogram *h) {
    uint64_t counts[METRICS_MAX_BUCKETS + 1];
    return histogram_snapshot(h, counts);
}

double metric_histogram_sum(const MetricHistogram *h) {
    return metric_counter_value(h);
}

double metric_histogram_quantile(const MetricHistogram *h, double q) {
    const MetricFamily *f = h->family;
    uint64_t counts[METRICS_MAX_BUCKETS + 1];
    uint64_t total = histogram_snapshot(h, counts);
    if (total == 0 || !(q >= 0 && q <= 1)) return NAN;
    double rank = q * (double)total, below = 0;
    size_t i = 0;
    while (i < f->n_bounds && below + (double)counts[i] < rank) below += (double)counts[i++];
    if (i == f->n_bounds) return f->bounds[f->n_bounds - 1];
    double lower = i ? f->bounds[i - 1] : (f->bounds[0] > 0 ? 0 : f->bounds[0]);
    if (counts[i] == 0) return lower;
    return lower + (f->bounds[i] - lower) * (rank - below) / (double)counts[i];
}

void metrics_set_collect_hook(MetricsRegistry *reg, void (*hook)(void *ctx), void *ctx) {
    pthread_mutex_lock(&reg->mutex);
    reg->hook = hook;
    reg->hook_ctx = ctx;
    pthread_mutex_unlock(&reg->mutex);
}

/* name{labels[,extra]} value\n */
static void render_sample(TextBuf *b, const char *name, const char *suffix, const char *labels,
                          const char *extra, double v) {
    char num[40];
    buf_puts(b, name);
    buf_puts(b, suffix);
    if (*labels || extra) {
        buf_put(b, "{", 1);
        buf_puts(b, labels);
        if (*labels && extra) buf_put(b, ",", 1);
        if (extra) buf_puts(b, extra);
        buf_put(b, "}", 1);
    }
    metrics_format_value(num, sizeof num, v);
    buf_put(b, " ", 1);
    buf_puts(b, num);
    buf_put(b, "\n", 1);
}

static void render_histogram(TextBuf *b, const MetricFamily *f, const struct MetricSeries *s) {
    uint64_t counts[METRICS_MAX_BUCKETS + 1];
    uint64_t total = histogram_snapshot(s, counts), cumulative = 0;
    char le[64], num[40];
    for (size_t i = 0; i <= f->n_bounds; i++) {
        cumulative += counts[i];
        if (i < f->n_bounds)
            metrics_format_value(num, sizeof num, f->bounds[i]);
        else
            snprintf(num, sizeof num, "+Inf");
        snprintf(le, sizeof le, "le=\"%s\"", num);
        render_sample(b, f->name, "_bucket", s->labels, le, (double)cumulative);
    }
    render_sample(b, f->name, "_sum", s->labels, NULL, metric_histogram_sum(s));
    render_sample(b, f->name, "_count", s->labels, NULL, (double)total);
}

char *metrics_render(MetricsRegistry *reg, size_t *len) {
    pthread_mutex_lock(&reg->mutex);
    void (*hook)(void *) = reg->hook;
    void *ctx = reg->hook_ctx;
    pthread_mutex_unlock(&reg->mutex);
    if (hook) hook(ctx);

    TextBuf b = {0};
    buf_put(&b, "", 0);
    pthread_mutex_lock(&reg->mutex);
    for (const MetricFamily *f = reg->first; f; f = f->next) {
        buf_puts(&b, "# HELP ");
        buf_puts(&b, f->name);
        buf_put(&b, " ", 1);
        buf_put_escaped(&b, f->help, 0);
        buf_puts(&b, "\n# TYPE ");
        buf_puts(&b, f->name);
        buf_put(&b, " ", 1);
        buf_puts(&b, kind_names[f->kind]);
        buf_put(&b, "\n", 1);
        for (const struct MetricSeries *s = f->first; s; s = s->next) {
            if (f->kind == KIND_HISTOGRAM)
                render_histogram(&b, f, s);
            else
                render_sample(&b, f->name, "", s->labels, NULL, metric_counter_value(s));
        }
    }
    pthread_mutex_unlock(&reg->mutex);
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    if (len) *len = b.len;
    return b.p;
}
