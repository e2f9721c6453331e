/* metrics.h - a small, thread-safe registry of counters, gauges and histograms rendered in the
 * Prometheus text exposition format 0.0.4.
 *
 * A metric family (one name, one HELP, one TYPE) holds one series per distinct label set, e.g.
 * ssnad_online_hits_total{variant="gru:a=3"}. Registering returns a handle that stays valid until
 * metrics_destroy; registering the same name and labels again returns the same handle, so modules
 * need not coordinate. Updates are lock-free atomics (safe from any thread); registration and
 * rendering take the registry mutex. Label sets are given as NULL-terminated name, value pairs:
 *     const char *labels[] = {"variant", "gru:a=3", NULL};
 */
#ifndef SSNA_DAEMON_METRICS_H
#define SSNA_DAEMON_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define METRICS_MAX_LABELS  4
#define METRICS_MAX_BUCKETS 32

typedef struct MetricsRegistry MetricsRegistry;
typedef struct MetricSeries MetricCounter;   /* only goes up */
typedef struct MetricSeries MetricGauge;     /* set, add */
typedef struct MetricSeries MetricHistogram; /* observations into fixed buckets */

/* An empty registry, or NULL when out of memory. */
MetricsRegistry *metrics_create(void);
/* Free the registry and every handle it gave out. */
void metrics_destroy(MetricsRegistry *reg);

/* Register (or look up) a series. name: [a-zA-Z_:][a-zA-Z0-9_:]*; label names
 * [a-zA-Z_][a-zA-Z0-9_]* not starting "__", at most METRICS_MAX_LABELS; label values any UTF-8.
 * The help of the first registration of a name is kept. NULL with err when a name or label is
 * invalid, the name is already a family of another type (or, for histograms, other buckets).
 * bounds: histogram upper bounds, strictly increasing and finite, 1..METRICS_MAX_BUCKETS of them
 * (+Inf is implied). */
MetricCounter *metrics_counter(MetricsRegistry *reg, const char *name, const char *help,
                               const char *const *labels, char *err, size_t errlen);
MetricGauge *metrics_gauge(MetricsRegistry *reg, const char *name, const char *help,
                           const char *const *labels, char *err, size_t errlen);
MetricHistogram *metrics_histogram(MetricsRegistry *reg, const char *name, const char *help,
                                   const char *const *labels, const double *bounds, size_t n_bounds,
                                   char *err, size_t errlen);

/* Counter += v (v >= 0; negative or NaN v is ignored, a counter never goes down). */
void metric_counter_add(MetricCounter *c, double v);
void metric_counter_inc(MetricCounter *c);
double metric_counter_value(const MetricCounter *c);
void metric_gauge_set(MetricGauge *g, double v);
void metric_gauge_add(MetricGauge *g, double v);
double metric_gauge_value(const MetricGauge *g);
/* Count v into the first bucket whose bound is >= v (Prometheus `le` semantics). */
void metric_histogram_observe(MetricHistogram *h, double v);
/* Observations so far and their sum. */
uint64_t metric_histogram_count(const MetricHistogram *h);
double metric_histogram_sum(const MetricHistogram *h);
/* Estimate of the q-quantile (0 <= q <= 1) by linear interpolation inside the bucket that holds
 * it, as Prometheus' histogram_quantile does; the bucket under the first bound starts at 0 (or
 * the bound itself when it is negative); the +Inf bucket answers the last finite bound. NaN when
 * empty. */
double metric_histogram_quantile(const MetricHistogram *h, double q);

/* Called at the start of every render (under no lock), e.g. to refresh gauges such as checkpoint
 * age or consumer lag that are cheaper to compute on demand. NULL removes it. */
void metrics_set_collect_hook(MetricsRegistry *reg, void (*hook)(void *ctx), void *ctx);
/* The whole registry in text format 0.0.4 (families in registration order), malloc'ed and
 * NUL-terminated; *len its length. NULL when out of memory. */
char *metrics_render(MetricsRegistry *reg, size_t *len);
/* Format v as Prometheus expects ("+Inf", "-Inf", "NaN", else the shortest text that reads back
 * as the same double) into buf (>= 32 bytes). */
void metrics_format_value(char *buf, size_t cap, double v);

/* Latency buckets in seconds, 100 us .. 10 s (for event-to-recommendation and HTTP latency). */
extern const double metrics_latency_buckets[];
extern const size_t metrics_latency_bucket_count;

#endif
