/* test_metrics.c - daemon/metrics: registration rules, exact values under concurrent updates,
 * histogram buckets and quantiles, and a rendering that a strict parser of the Prometheus text
 * format 0.0.4 (written here from the format's specification) accepts and reads back. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "daemon/metrics.h"

/* ---- a strict reader of the text exposition format -------------------------------------- */

typedef struct {
    char name[128];
    char label_names[8][64];
    char label_values[8][256];
    int n_labels;
    double value;
} Sample;

static int name_char(char c, int first) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
           (!first && c >= '0' && c <= '9');
}

/* Parse one sample line; 0 or -1 when it breaks the format. */
static int parse_sample(const char *line, Sample *s) {
    const char *p = line;
    size_t n = 0;
    memset(s, 0, sizeof *s);
    while (name_char(*p, n == 0) && n + 1 < sizeof s->name) s->name[n++] = *p++;
    if (n == 0) return -1;
    if (*p == '{') {
        p++;
        while (*p != '}') {
            if (s->n_labels == 8) return -1;
            size_t k = 0;
            while (name_char(*p, k == 0) && *p != ':' && k + 1 < 64)
                s->label_names[s->n_labels][k++] = *p++;
            if (k == 0 || *p++ != '=' || *p++ != '"') return -1;
            size_t v = 0;
            for (; *p != '"'; p++) {
                if (!*p || *p == '\n' || v + 1 >= 256) return -1;
                char c = *p;
                if (c == '\\') {
                    p++;
                    if (*p == 'n')
                        c = '\n';
                    else if (*p == '\\' || *p == '"')
                        c = *p;
                    else
                        return -1;
                }
                s->label_values[s->n_labels][v++] = c;
            }
            p++;
            s->n_labels++;
            if (*p == ',')
                p++;
            else if (*p != '}')
                return -1;
        }
        p++;
    }
    if (*p++ != ' ') return -1;
    char *end;
    if (!strcmp(p, "+Inf"))
        s->value = INFINITY;
    else if (!strcmp(p, "-Inf"))
        s->value = -INFINITY;
    else if (!strcmp(p, "NaN"))
        s->value = NAN;
    else {
        s->value = strtod(p, &end);
        if (end == p || *end) return -1;
    }
    return 0;
}

static const char *label(const Sample *s, const char *name) {
    for (int i = 0; i < s->n_labels; i++)
        if (!strcmp(s->label_names[i], name)) return s->label_values[i];
    return NULL;
}

/* Validate the whole text: HELP and TYPE once per family, before its samples, samples of a
 * family contiguous and named for its type. Returns the samples (malloc'ed) and their count. */
static Sample *parse_exposition(char *text, int *n_samples, int *ok) {
    Sample *samples = calloc(4096, sizeof *samples);
    char family[128] = "", type[32] = "";
    char seen[64][128];
    int n_seen = 0, n = 0;
    *ok = 1;
    for (char *line = strtok(text, "\n"); line && n < 4096; line = strtok(NULL, "\n")) {
        if (!strncmp(line, "# HELP ", 7)) {
            char name[128];
            if (sscanf(line + 7, "%127s", name) != 1) *ok = 0;
            for (int i = 0; i < n_seen; i++)
                if (!strcmp(seen[i], name)) *ok = 0; /* family split or repeated */
            snprintf(seen[n_seen++ % 64], 128, "%s", name);
            snprintf(family, sizeof family, "%s", name);
            type[0] = 0;
            /* HELP text: only \\ and \n escapes, no raw newline (strtok split on it) */
            for (const char *h = line + 7 + strlen(name); *h; h++)
                if (*h == '\\' && h[1] != '\\' && h[1] != 'n')
                    *ok = 0;
                else if (*h == '\\')
                    h++;
        } else if (!strncmp(line, "# TYPE ", 7)) {
            char name[128];
            if (sscanf(line + 7, "%127s %31s", name, type) != 2 || strcmp(name, family)) *ok = 0;
            if (strcmp(type, "counter") && strcmp(type, "gauge") && strcmp(type, "histogram"))
                *ok = 0;
        } else if (line[0] == '#') {
            *ok = 0;
        } else {
            Sample *s = &samples[n++];
            if (parse_sample(line, s) < 0 || !type[0]) {
                fprintf(stderr, "bad sample line: %s\n", line);
                *ok = 0;
                continue;
            }
            size_t fl = strlen(family);
            int named = !strcmp(s->name, family);
            if (!strcmp(type, "histogram"))
                named = !strncmp(s->name, family, fl) &&
                        (!strcmp(s->name + fl, "_bucket") || !strcmp(s->name + fl, "_sum") ||
                         !strcmp(s->name + fl, "_count"));
            if (!named) {
                fprintf(stderr, "sample %s outside its family %s\n", s->name, family);
                *ok = 0;
            }
        }
    }
    *n_samples = n;
    return samples;
}

static const Sample *find_sample(const Sample *s, int n, const char *name, const char *lname,
                                 const char *lvalue) {
    for (int i = 0; i < n; i++) {
        if (strcmp(s[i].name, name)) continue;
        const char *v = lname ? label(&s[i], lname) : NULL;
        if (!lname || (v && !strcmp(v, lvalue))) return &s[i];
    }
    return NULL;
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_registration(void) {
    char err[256];
    MetricsRegistry *reg = metrics_create();
    const char *gru[] = {"variant", "gru", "k", "10", NULL};
    const char *gru_reordered[] = {"k", "10", "variant", "gru", NULL};
    const char *mean[] = {"variant", "mean", NULL};
    MetricCounter *a = metrics_counter(reg, "ssnad_hits_total", "hits", gru, err, sizeof err);
    CHECK(a != NULL);
    CHECK(metrics_counter(reg, "ssnad_hits_total", "other help", gru_reordered, err, sizeof err) ==
          a);
    MetricCounter *b = metrics_counter(reg, "ssnad_hits_total", "hits", mean, err, sizeof err);
    CHECK(b != NULL && b != a);
    CHECK(metrics_gauge(reg, "ssnad_hits_total", "x", NULL, err, sizeof err) == NULL);
    CHECK(strstr(err, "already a counter") != NULL);
    CHECK(metrics_counter(reg, "1abc", "x", NULL, err, sizeof err) == NULL);
    CHECK(metrics_counter(reg, "a-b", "x", NULL, err, sizeof err) == NULL);
    CHECK(metrics_counter(reg, "", "x", NULL, err, sizeof err) == NULL);
    const char *reserved[] = {"__name", "x", NULL};
    CHECK(metrics_counter(reg, "ok_total", "x", reserved, err, sizeof err) == NULL);
    const char *colon[] = {"a:b", "x", NULL};
    CHECK(metrics_counter(reg, "ok_total", "x", colon, err, sizeof err) == NULL);
    const char *twice[] = {"v", "1", "v", "2", NULL};
    CHECK(metrics_counter(reg, "ok_total", "x", twice, err, sizeof err) == NULL);
    CHECK(strstr(err, "twice") != NULL);
    const char *many[] = {"a", "1", "b", "2", "c", "3", "d", "4", "e", "5", NULL};
    CHECK(metrics_counter(reg, "ok_total", "x", many, err, sizeof err) == NULL);
    double bounds[] = {0.1, 1}, bad_bounds[] = {1, 1}, other[] = {0.1, 2};
    CHECK(metrics_histogram(reg, "lat_seconds", "x", NULL, bounds, 2, err, sizeof err) != NULL);
    CHECK(metrics_histogram(reg, "lat_seconds", "x", mean, other, 2, err, sizeof err) == NULL);
    CHECK(metrics_histogram(reg, "lat2_seconds", "x", NULL, bad_bounds, 2, err, sizeof err) ==
          NULL);
    CHECK(metrics_histogram(reg, "lat3_seconds", "x", NULL, bounds, 0, err, sizeof err) == NULL);

    metric_counter_add(a, 2.5);
    metric_counter_add(a, -1);  /* counters never go down */
    metric_counter_add(a, NAN); /* nor become NaN */
    metric_counter_inc(a);
    CHECK(metric_counter_value(a) == 3.5);
    CHECK(metric_counter_value(b) == 0);
    metrics_destroy(reg);
}

static void test_format_value(void) {
    char buf[40];
    metrics_format_value(buf, sizeof buf, 0.1);
    CHECK(!strcmp(buf, "0.1"));
    metrics_format_value(buf, sizeof buf, 1e-4);
    CHECK(!strcmp(buf, "0.0001"));
    metrics_format_value(buf, sizeof buf, 42);
    CHECK(!strcmp(buf, "42"));
    metrics_format_value(buf, sizeof buf, INFINITY);
    CHECK(!strcmp(buf, "+Inf"));
    metrics_format_value(buf, sizeof buf, -INFINITY);
    CHECK(!strcmp(buf, "-Inf"));
    metrics_format_value(buf, sizeof buf, NAN);
    CHECK(!strcmp(buf, "NaN"));
    double third = 1.0 / 3.0;
    metrics_format_value(buf, sizeof buf, third);
    CHECK(strtod(buf, NULL) == third);
}

static void test_histogram(void) {
    char err[256];
    MetricsRegistry *reg = metrics_create();
    double bounds[] = {1, 2, 3, 4};
    MetricHistogram *h = metrics_histogram(reg, "h", "x", NULL, bounds, 4, err, sizeof err);
    CHECK(isnan(metric_histogram_quantile(h, 0.5)));
    /* 25 observations in each bucket, none on a bound */
    for (int i = 0; i < 100; i++) metric_histogram_observe(h, (i + 0.5) / 25.0);
    CHECK(metric_histogram_count(h) == 100);
    CHECK_CLOSE(metric_histogram_sum(h), 200.0, 1e-9, 0);
    /* rank 50 is the end of bucket (1, 2]; rank 99 is 24/25 into (3, 4] */
    CHECK_CLOSE(metric_histogram_quantile(h, 0.5), 2.0, 1e-12, 0);
    CHECK_CLOSE(metric_histogram_quantile(h, 0.99), 3.96, 1e-12, 0);
    CHECK_CLOSE(metric_histogram_quantile(h, 0.1), 0.4, 1e-12, 0);
    metric_histogram_observe(h, 1000); /* over every bound: +Inf bucket answers the last bound */
    CHECK(metric_histogram_quantile(h, 1.0) == 4.0);
    metric_histogram_observe(h, 2.0); /* on a bound: counted in that bound's bucket (le) */
    CHECK(metric_histogram_count(h) == 102);
    metrics_destroy(reg);
}

typedef struct {
    MetricCounter *counter;
    MetricGauge *gauge;
    MetricHistogram *hist;
    MetricsRegistry *reg;
} Shared;

static void *hammer(void *arg) {
    Shared *s = arg;
    for (int i = 0; i < 100000; i++) {
        metric_counter_inc(s->counter);
        metric_gauge_add(s->gauge, 0.5);
        metric_histogram_observe(s->hist, (i % 4) * 0.001);
    }
    return NULL;
}

static void *render_loop(void *arg) {
    Shared *s = arg;
    for (int i = 0; i < 50; i++) {
        size_t len;
        free(metrics_render(s->reg, &len));
    }
    return NULL;
}

static void test_concurrency(void) {
    char err[256];
    Shared s;
    s.reg = metrics_create();
    s.counter = metrics_counter(s.reg, "c_total", "x", NULL, err, sizeof err);
    s.gauge = metrics_gauge(s.reg, "g", "x", NULL, err, sizeof err);
    s.hist = metrics_histogram(s.reg, "h_seconds", "x", NULL, metrics_latency_buckets,
                               metrics_latency_bucket_count, err, sizeof err);
    pthread_t t[5];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, hammer, &s);
    pthread_create(&t[4], NULL, render_loop, &s);
    for (int i = 0; i < 5; i++) pthread_join(t[i], NULL);
    CHECK(metric_counter_value(s.counter) == 400000);
    CHECK(metric_gauge_value(s.gauge) == 200000);
    CHECK(metric_histogram_count(s.hist) == 400000);
    /* 100k each of 0, 1, 2, 3 ms */
    CHECK_CLOSE(metric_histogram_sum(s.hist), 600.0, 1e-6, 0);
    metrics_destroy(s.reg);
}

static int hook_calls;

static void collect_hook(void *ctx) {
    hook_calls++;
    metric_gauge_set(ctx, 7.25);
}

static void test_render(void) {
    char err[256];
    MetricsRegistry *reg = metrics_create();
    const char *odd[] = {"variant", "a\"b\\c\nd", NULL};
    const char *plain[] = {"variant", "gru:a=3", NULL};
    MetricCounter *c1 = metrics_counter(reg, "ssnad_events_total", "Events applied.\nTwo \\ lines",
                                        odd, err, sizeof err);
    MetricGauge *age =
        metrics_gauge(reg, "ssnad_checkpoint_age_seconds", "Age", NULL, err, sizeof err);
    MetricCounter *c2 =
        metrics_counter(reg, "ssnad_events_total", "ignored", plain, err, sizeof err);
    double bounds[] = {0.1, 1};
    MetricHistogram *h = metrics_histogram(reg, "ssnad_latency_seconds", "Latency", plain, bounds,
                                           2, err, sizeof err);
    metric_counter_add(c1, 3);
    metric_counter_add(c2, 1e20);
    metric_histogram_observe(h, 0.05);
    metric_histogram_observe(h, 0.2);
    metric_histogram_observe(h, 0.2);
    metric_histogram_observe(h, 5);
    metrics_set_collect_hook(reg, collect_hook, age);
    size_t len = 0;
    char *text = metrics_render(reg, &len);
    CHECK(text && len == strlen(text) && text[len - 1] == '\n');
    CHECK(hook_calls == 1);
    CHECK(strstr(text, "# HELP ssnad_events_total Events applied.\\nTwo \\\\ lines\n") != NULL);
    CHECK(strstr(text, "# TYPE ssnad_latency_seconds histogram\n") != NULL);
    int n, ok;
    Sample *s = parse_exposition(text, &n, &ok);
    CHECK(ok);
    CHECK(n == 3 + 5); /* two counters, a gauge, 3 buckets + sum + count */
    const Sample *x = find_sample(s, n, "ssnad_events_total", "variant", "a\"b\\c\nd");
    CHECK(x && x->value == 3);
    x = find_sample(s, n, "ssnad_events_total", "variant", "gru:a=3");
    CHECK(x && x->value == 1e20);
    x = find_sample(s, n, "ssnad_checkpoint_age_seconds", NULL, NULL);
    CHECK(x && x->value == 7.25 && x->n_labels == 0);
    x = find_sample(s, n, "ssnad_latency_seconds_bucket", "le", "0.1");
    CHECK(x && x->value == 1 && !strcmp(label(x, "variant"), "gru:a=3"));
    x = find_sample(s, n, "ssnad_latency_seconds_bucket", "le", "1");
    CHECK(x && x->value == 3);
    x = find_sample(s, n, "ssnad_latency_seconds_bucket", "le", "+Inf");
    CHECK(x && x->value == 4);
    x = find_sample(s, n, "ssnad_latency_seconds_sum", "variant", "gru:a=3");
    CHECK(x && fabs(x->value - 5.45) < 1e-12);
    x = find_sample(s, n, "ssnad_latency_seconds_count", "variant", "gru:a=3");
    CHECK(x && x->value == 4);
    free(s);
    free(text);
    metrics_destroy(reg);

    /* an empty registry renders to an empty document */
    reg = metrics_create();
    text = metrics_render(reg, &len);
    CHECK(text && len == 0);
    free(text);
    metrics_destroy(reg);
}

int main(void) {
    test_registration();
    test_format_value();
    test_histogram();
    test_concurrency();
    test_render();
    return check_done();
}
