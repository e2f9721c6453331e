/* dashboard_fixture.c - the daemon's HTTP server and A/B over a scripted stream of scored lists,
 * for tests/test_dashboard.py (the dashboard in a real headless browser). Not a test itself.
 *
 * Three arms: "pop" (hits 1 list in 10), "gru:a=3" (1 in 4) and an arm whose name is markup, to
 * show the page puts names in as text; it scores nothing for the first 5,000 lists, so its curve
 * starts late. 20,000 lists are scored before the server starts: past the history's bound (the
 * step doubles three times). Prints "port N", then reads commands from stdin:
 *   more N   score N more lists, then print "scored TOTAL"
 *   EOF      stop the server and exit 0
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/abtest.h"
#include "daemon/http.h"

static const char *const ARMS[] = {"pop", "gru:a=3", "<b id=\"injected\">x</b> & \"arm\""};

static void report(void *ctx, char **body, size_t *len) {
    *body = abtest_report_json(ctx, len);
}

static uint64_t scored;

static void score(AbTest *ab, uint64_t n) {
    static uint64_t own[3];
    const int64_t list[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    const uint64_t every[3] = {10, 4, 2};
    for (uint64_t i = 0; i < n; i++, scored++) {
        int arm = scored < 5000 ? (int)(scored % 2) : (int)(scored % 3);
        uint64_t j = own[arm]++;
        char user[24]; // a few hundred users per arm, as a page shows them
        int len = snprintf(user, sizeof user, "user-%llu", (unsigned long long)(j % 300));
        abtest_observe(ab, arm, user, (size_t)len, list, 10,
                       j % every[arm] == 0 ? (int64_t)(j / every[arm] % 10) : 99);
    }
}

int main(void) {
    char err[256];
    double weights[] = {1, 2, 1};
    AbTest *ab = NULL;
    if (abtest_create(ARMS, weights, 3, 10, 1, NULL, &ab, err, sizeof err) ||
        abtest_set_window(ab, 500, err, sizeof err)) {
        fprintf(stderr, "dashboard_fixture: %s\n", err);
        return 1;
    }
    score(ab, 20000);
    HttpServerOptions opt = {
        .listen = "127.0.0.1:0", .timeout_ms = 5000, .abtest = report, .abtest_ctx = ab};
    HttpServer *srv = NULL;
    if (http_server_start(&opt, &srv, err, sizeof err)) {
        fprintf(stderr, "dashboard_fixture: %s\n", err);
        abtest_destroy(ab);
        return 1;
    }
    printf("port %d\n", http_server_port(srv));
    fflush(stdout);
    char line[64];
    unsigned long long n;
    while (fgets(line, sizeof line, stdin)) {
        if (sscanf(line, "more %llu", &n) != 1) {
            fprintf(stderr, "dashboard_fixture: unknown command %s", line);
            continue;
        }
        score(ab, n);
        printf("scored %llu\n", (unsigned long long)scored);
        fflush(stdout);
    }
    http_server_stop(srv);
    abtest_destroy(ab);
    return 0;
}
