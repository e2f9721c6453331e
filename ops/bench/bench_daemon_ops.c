/* bench_daemon_ops - cost of the daemon's operational shell per event and per scrape.
 *
 * The daemon's target is 20,000 events/s on 2 cores, i.e. a budget of 50 us of one core per
 * event for everything. This measures what the shell adds to each event (metric updates, an A/B
 * assignment, a prequential score, a debug-level log call that is filtered out) and what a
 * Prometheus scrape and a /recommend request cost over real loopback HTTP, and prints each as a
 * share of that budget.
 *
 * usage: bench_daemon_ops [events (default 2000000)] [requests (default 2000)]
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "model/clock.h"
#include "bench_args.h"
#include "daemon/abtest.h"
#include "daemon/http.h"
#include "daemon/log.h"
#include "daemon/metrics.h"

#define EVENT_BUDGET_NS 50000.0 /* 1 s / 20,000 events/s, one core */

static int recommend(void *ctx, const char *user, char **body, size_t *len) {
    (void)ctx;
    /* a realistic top-10 list */
    char *json = malloc(1024);
    int n = snprintf(json, 1024, "{\"user\":\"%s\",\"variant\":\"gru:a=3\",\"items\":[", user);
    for (int i = 0; i < 10; i++)
        n += snprintf(json + n, (size_t)(1024 - n), "%s{\"id\":\"B00%06d\",\"score\":%.4f}",
                      i ? "," : "", 1000 + i, 14.5 - i * 0.7);
    n += snprintf(json + n, (size_t)(1024 - n), "]}");
    *body = json;
    *len = (size_t)n;
    return 200;
}

/* One GET over a fresh connection; 0 on a 200. */
static int http_get(int port, const char *target) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        close(fd);
        return -1;
    }
    char req[256], buf[65536];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", target);
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        close(fd);
        return -1;
    }
    size_t got = 0;
    ssize_t r;
    while ((r = recv(fd, buf + got, sizeof buf - 1 - got, 0)) > 0 && got < sizeof buf - 1)
        got += (size_t)r;
    buf[got] = 0;
    close(fd);
    return strncmp(buf, "HTTP/1.1 200", 12) ? -1 : 0;
}

static void bench_http(MetricsRegistry *reg, int requests, const char *target, const char *what) {
    char err[256];
    HttpServerOptions opt = {
        .listen = "127.0.0.1:0", .timeout_ms = 5000, .metrics = reg, .recommend = recommend};
    HttpServer *srv;
    if (http_server_start(&opt, &srv, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    double bounds[] = {25e-6, 50e-6, 100e-6, 200e-6, 400e-6, 800e-6, 1.6e-3, 3.2e-3, 6.4e-3};
    MetricsRegistry *own = metrics_create();
    MetricHistogram *lat = metrics_histogram(own, "lat", "", NULL, bounds, 9, err, sizeof err);
    int failed = 0;
    double t0 = clock_monotonic_s();
    for (int i = 0; i < requests; i++) {
        double t = clock_monotonic_s();
        failed += http_get(http_server_port(srv), target) != 0;
        metric_histogram_observe(lat, clock_monotonic_s() - t);
    }
    double elapsed = clock_monotonic_s() - t0;
    printf("%-34s %8.0f req/s  p50 %6.0f us  p99 %6.0f us  (%d failed; new connection each)\n",
           what, requests / elapsed, metric_histogram_quantile(lat, 0.5) * 1e6,
           metric_histogram_quantile(lat, 0.99) * 1e6, failed);
    metrics_destroy(own);
    http_server_stop(srv);
}

int main(int argc, char **argv) {
    long events =
        argc > 1 ? bench_arg_long("bench_daemon_ops", "events", argv[1], 1, 1L << 40) : 2000000;
    int requests =
        argc > 2 ? (int)bench_arg_long("bench_daemon_ops", "requests", argv[2], 1, 1 << 24) : 2000;
    char err[256];
    MetricsRegistry *reg = metrics_create();
    const char *names[] = {"gru:a=3", "mean:a=3"};
    double weights[] = {1, 1};
    AbTest *ab;
    // with ssnad's window (ab.window): each observation also updates the window's gauges and the
    // comparison with the control, design effects over the user groups included
    if (abtest_create(names, weights, 2, 10, 1, reg, &ab, err, sizeof err) < 0 ||
        abtest_set_window(ab, 10000, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    /* the per-event series a daemon loop would touch */
    const char *applied[] = {"result", "applied", NULL};
    MetricCounter *events_total =
        metrics_counter(reg, "ssnad_events_total", "Events", applied, err, sizeof err);
    MetricGauge *queue =
        metrics_gauge(reg, "ssnad_embed_queue_depth", "Queue", NULL, err, sizeof err);
    MetricHistogram *latency =
        metrics_histogram(reg, "ssnad_event_to_recommendation_seconds", "Latency", NULL,
                          metrics_latency_buckets, metrics_latency_bucket_count, err, sizeof err);
    /* a realistic registry size for the scrape: a few dozen more series */
    for (int i = 0; i < 40; i++) {
        char name[64];
        snprintf(name, sizeof name, "ssnad_extra_%d_total", i);
        metric_counter_add(metrics_counter(reg, name, "Extra", NULL, err, sizeof err), i);
    }
    log_configure(stderr, LOG_FORMAT_JSON, LOG_INFO);

    int64_t list[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    char user[32];
    long sink = 0;
    double t0 = clock_monotonic_s();
    for (long e = 0; e < events; e++) {
        int len = snprintf(user, sizeof user, "user-%ld", e % 50000);
        int variant = abtest_assign(ab, user, (size_t)len);
        sink += abtest_observe(ab, variant, user, (size_t)len, list, 10, e % 40);
        metric_counter_inc(events_total);
        metric_gauge_set(queue, (double)(e & 1023));
        metric_histogram_observe(latency, (double)(e % 1000) * 1e-5);
        log_debug("event applied", LOG_STR("user", user), LOG_INT("item", e));
    }
    double per_event_ns = (clock_monotonic_s() - t0) / (double)events * 1e9;
    printf("events: %ld (%ld hits)\n", events, sink);
    printf("%-34s %8.1f ns/event  = %5.2f%% of the 50 us/event budget (20k events/s, 1 core)\n",
           "shell cost per event", per_event_ns, 100.0 * per_event_ns / EVENT_BUDGET_NS);

    /* JSON log lines actually written, to /dev/null */
    FILE *devnull = fopen("/dev/null", "w");
    log_configure(devnull, LOG_FORMAT_JSON, LOG_INFO);
    long lines = events / 10;
    t0 = clock_monotonic_s();
    for (long i = 0; i < lines; i++)
        log_info("recommendations published", LOG_STR("user", "user-12345"),
                 LOG_STR("variant", "gru:a=3"), LOG_INT("items", 10), LOG_F64("loss", 7.25));
    double per_line_ns = (clock_monotonic_s() - t0) / (double)lines * 1e9;
    log_configure(stderr, LOG_FORMAT_TEXT, LOG_INFO);
    fclose(devnull);
    printf("%-34s %8.1f ns/line   = %5.2f%% of the per-event budget\n", "JSON log line written",
           per_line_ns, 100.0 * per_line_ns / EVENT_BUDGET_NS);

    size_t len;
    t0 = clock_monotonic_s();
    for (int i = 0; i < 1000; i++) free(metrics_render(reg, &len));
    printf("%-34s %8.1f us/render (%zu bytes)\n", "metrics render (in process)",
           (clock_monotonic_s() - t0) / 1000 * 1e6, len);

    bench_http(reg, requests, "/metrics", "GET /metrics over loopback");
    bench_http(reg, requests, "/recommend?user=user-42", "GET /recommend over loopback");
    abtest_destroy(ab);
    metrics_destroy(reg);
    return 0;
}
