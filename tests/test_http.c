/* test_http.c - daemon/http (libmicrohttpd underneath) over real loopback sockets: the three
 * endpoints and the dashboard page, status codes, strict percent-decoding, oversize and malformed
 * requests, stalled clients that must not block others, the connection limit, concurrent clients,
 * and a clean shutdown. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "check.h"
#include "daemon/http.h"
#include "daemon/metrics.h"

/* ---- the daemon side: a recommend callback over a fixed set of users ---------------------- */

static pthread_mutex_t seen_mutex = PTHREAD_MUTEX_INITIALIZER;
static char last_user[256];
static _Atomic int unhealthy;

static int recommend(void *ctx, const char *user, char **body, size_t *body_len) {
    const char *const *known = ctx;
    pthread_mutex_lock(&seen_mutex);
    snprintf(last_user, sizeof last_user, "%s", user);
    pthread_mutex_unlock(&seen_mutex);
    for (; *known; known++) {
        if (strcmp(*known, user)) continue;
        char *json = malloc(strlen(user) + 32);
        sprintf(json, "{\"user\":\"%s\",\"items\":[]}", user);
        *body = json;
        *body_len = strlen(json);
        return 200;
    }
    return 404;
}

static void abtest(void *ctx, char **body, size_t *body_len) {
    (void)ctx;
    *body = strdup("{\"arms\":[]}");
    *body_len = strlen(*body);
}

/* The user the recommend callback saw last (it runs on the server thread). */
static int last_user_is(const char *want) {
    pthread_mutex_lock(&seen_mutex);
    int same = !strcmp(last_user, want);
    pthread_mutex_unlock(&seen_mutex);
    return same;
}

static int health(void *ctx, char **body, size_t *body_len) {
    (void)ctx;
    if (!unhealthy) return 200;
    *body = strdup("checkpoint failing\n");
    *body_len = strlen(*body);
    return 503;
}

/* ---- the client side ---------------------------------------------------------------------- */

typedef struct {
    int status;
    char headers[2048];
    char body[16384];
    size_t body_len;
} Reply;

static int connect_to(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 20};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *data, size_t n) {
    while (n) {
        ssize_t sent = send(fd, data, n, MSG_NOSIGNAL);
        if (sent <= 0) return -1;
        data += sent;
        n -= (size_t)sent;
    }
    return 0;
}

/* Read a whole response (the server closes after it) and split it. 0, or -1 on a broken one. */
static int read_reply(int fd, Reply *r) {
    static __thread char raw[65536];
    size_t len = 0;
    ssize_t got;
    while (len < sizeof raw - 1 && (got = recv(fd, raw + len, sizeof raw - 1 - len, 0)) > 0)
        len += (size_t)got;
    raw[len] = 0;
    memset(r, 0, sizeof *r);
    char *end = strstr(raw, "\r\n\r\n");
    if (!end || sscanf(raw, "HTTP/1.1 %d ", &r->status) != 1) return -1;
    size_t head_len = (size_t)(end - raw);
    if (head_len >= sizeof r->headers) return -1;
    memcpy(r->headers, raw, head_len);
    r->body_len = len - head_len - 4;
    if (r->body_len >= sizeof r->body) return -1;
    memcpy(r->body, end + 4, r->body_len);
    const char *cl = strstr(r->headers, "Content-Length: ");
    return cl ? 0 : -1;
}

/* One request, one reply. */
static int exchange(int port, const char *request, size_t n, Reply *r) {
    int fd = connect_to(port);
    if (fd < 0) return -1;
    int rc = send_all(fd, request, n) == 0 ? read_reply(fd, r) : -1;
    close(fd);
    return rc;
}

/* GET target over HTTP/1.1 with a Host header; the status, or -1. */
static int get(int port, const char *method, const char *target, Reply *r) {
    char request[4096];
    int n = snprintf(request, sizeof request, "%s %s HTTP/1.1\r\nHost: localhost\r\n\r\n", method,
                     target);
    if (exchange(port, request, (size_t)n, r) < 0) return -1;
    return r->status;
}

static int content_length(const Reply *r) {
    const char *cl = strstr(r->headers, "Content-Length: ");
    return cl ? atoi(cl + 16) : -1;
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_parsers(void) {
    char host[64], out[64], err[256];
    int port;
    CHECK(http_parse_listen("127.0.0.1:8080", host, sizeof host, &port, err, sizeof err) == 0 &&
          !strcmp(host, "127.0.0.1") && port == 8080);
    CHECK(http_parse_listen("[::1]:0", host, sizeof host, &port, err, sizeof err) == 0 &&
          !strcmp(host, "::1") && port == 0);
    CHECK(http_parse_listen("localhost:65535", host, sizeof host, &port, err, sizeof err) == 0);
    const char *bad[] = {"8080", ":8080", "h:", "h:65536", "h:80x", "::1:80", "[::1]80", "h:-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_MSG(http_parse_listen(bad[i], host, sizeof host, &port, err, sizeof err) < 0,
                  "accepted %s", bad[i]);
    CHECK(http_percent_decode("a%20b+c%2B", 10, out, sizeof out, 1) == 6 && !strcmp(out, "a b c+"));
    CHECK(http_percent_decode("a+b", 3, out, sizeof out, 0) == 3 && !strcmp(out, "a+b"));
    CHECK(http_percent_decode("caf%C3%a9", 9, out, sizeof out, 1) == 5 &&
          !strcmp(out, "caf\xc3\xa9"));
    CHECK(http_percent_decode("%4", 2, out, sizeof out, 1) == -1);
    CHECK(http_percent_decode("%g0", 3, out, sizeof out, 1) == -1);
    CHECK(http_percent_decode("a%00b", 5, out, sizeof out, 1) == -1);
    CHECK(http_percent_decode("abc", 3, out, 3, 1) == -1); /* no room for the NUL */
}

static void test_endpoints(int port) {
    Reply r;
    CHECK(get(port, "GET", "/healthz", &r) == 200);
    CHECK(!strcmp(r.body, "ok\n") && content_length(&r) == 3);
    CHECK(strstr(r.headers, "Connection: close") != NULL);
    unhealthy = 1;
    CHECK(get(port, "GET", "/healthz", &r) == 503);
    CHECK(!strcmp(r.body, "checkpoint failing\n"));
    unhealthy = 0;

    CHECK(get(port, "GET", "/metrics", &r) == 200);
    CHECK(strstr(r.headers, "Content-Type: text/plain; version=0.0.4") != NULL);
    CHECK(content_length(&r) == (int)r.body_len);
    CHECK(strstr(r.body, "# HELP ssnad_test_events_total Events.\n") != NULL);
    CHECK(strstr(r.body, "# TYPE ssnad_test_events_total counter\n") != NULL);
    CHECK(strstr(r.body, "\nssnad_test_events_total{variant=\"gru:a=3\"} 5\n") != NULL);
    /* every sample line is "name[{labels}] value" with a number as value */
    int samples = 0;
    for (char *line = strtok(r.body, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#') continue;
        char *space = strrchr(line, ' '), *end;
        CHECK(space != NULL);
        if (!space) continue;
        strtod(space + 1, &end);
        CHECK_MSG(*end == 0 && end != space + 1, "bad sample '%s'", line);
        samples++;
    }
    CHECK(samples == 1);

    CHECK(get(port, "GET", "/recommend?user=alice", &r) == 200);
    CHECK(!strcmp(r.body, "{\"user\":\"alice\",\"items\":[]}"));
    CHECK(strstr(r.headers, "Content-Type: application/json") != NULL);
    CHECK(get(port, "GET", "/recommend?k=5&user=caf%C3%A9%2F42", &r) == 200);
    CHECK(strstr(r.body, "caf\xc3\xa9/42") != NULL);
    CHECK(get(port, "GET", "/recommend?user=a+b%2Bc", &r) == 200);
    CHECK(last_user_is("a b+c"));
    CHECK(get(port, "GET", "/recommend?user=bob", &r) == 404);
    CHECK(last_user_is("bob"));
    CHECK(strstr(r.body, "\"error\"") != NULL);
    CHECK(get(port, "GET", "/recommend", &r) == 400);
    CHECK(strstr(r.body, "missing user") != NULL);
    CHECK(get(port, "GET", "/recommend?user=", &r) == 400);
    CHECK(get(port, "GET", "/recommend?users=alice", &r) == 400);
    CHECK(get(port, "GET", "/recommend?user=%zz", &r) == 400);
    CHECK(get(port, "GET", "/recommend?user=al%00ice", &r) == 400);
    CHECK(get(port, "GET", "/recomm%65nd?user=alice", &r) == 200); /* the path is decoded too */

    CHECK(get(port, "GET", "/abtest", &r) == 200);
    CHECK(!strcmp(r.body, "{\"arms\":[]}") && strstr(r.headers, "application/json") != NULL);
    /* the dashboard: the compiled-in page, whole, with a policy that keeps it to this server */
    CHECK(get(port, "GET", "/", &r) == 200);
    CHECK(strstr(r.headers, "Content-Type: text/html; charset=utf-8") != NULL);
    CHECK(strstr(r.headers, "Content-Security-Policy: default-src 'none';") != NULL);
    CHECK(strstr(r.headers, "connect-src 'self'") != NULL);
    CHECK(strstr(r.headers, "X-Content-Type-Options: nosniff") != NULL);
    CHECK(r.body_len == (size_t)content_length(&r) && r.body_len > 1000);
    CHECK(!strncmp(r.body, "<!doctype html>", 15) && strstr(r.body, "</html>\n") != NULL);
    CHECK(strstr(r.body, "fetch(\"abtest\"") != NULL &&
          strstr(r.body, "http://") == strstr(r.body, "http://www.w3.org"));
    CHECK(get(port, "HEAD", "/", &r) == 200 && r.body_len == 0);
    CHECK(get(port, "GET", "/index.html", &r) == 404);
    CHECK(get(port, "GET", "/healthz/x", &r) == 404);
    CHECK(get(port, "POST", "/healthz", &r) == 405);
    CHECK(strstr(r.headers, "Allow: GET, HEAD") != NULL);
    CHECK(get(port, "DELETE", "/recommend?user=alice", &r) == 405);
    CHECK(get(port, "POST", "/nowhere", &r) == 404);
    CHECK(get(port, "HEAD", "/healthz", &r) == 200);
    CHECK(r.body_len == 0 && content_length(&r) == 3);
}

static void test_malformed(int port) {
    Reply r;
    const char *cases[][2] = {
        {"GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n", "505"},
        {"GET /healthz HTTP/1.1\r\n\r\n", "400"}, /* HTTP/1.1 needs Host */
        {"GET /healthz HTTP/1.0\r\n\r\n", "200"},
        {"GET /healthz HTTP/1.1\nHost: x\n\n", "200"}, /* bare LF line ends */
        {"HELLO\r\n\r\n", "close"}, /* not a request line: closed without an answer */
        {"GET  /healthz HTTP/1.1\r\nHost: x\r\n\r\n", "200"}, /* libmicrohttpd allows it */
        {"GET /healthz HTTP/1.1\r\nHost x\r\n\r\n", "400"},
        {"GET http://x/healthz HTTP/1.1\r\nHost: x\r\n\r\n", "400"},
        {"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n", "413"},
        {"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", "200"},
        {"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", "400"},
        /* two lengths: harmless here, no body is read and the connection closes after the answer,
         * so nothing can be smuggled in as a second request */
        {"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
         "200"},
        {"POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", "501"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = exchange(port, cases[i][0], strlen(cases[i][0]), &r);
        int want = atoi(cases[i][1]); /* 0: "close" */
        CHECK_MSG(want ? rc == 0 && r.status == want : rc == -1 && r.status == 0,
                  "'%s': got %d, want %s", cases[i][0], r.status, cases[i][1]);
    }
    /* a pipelined second request gets nothing: one answer, then the close */
    const char *two = "GET /recommend?user=alice HTTP/1.1\r\nHost: x\r\n\r\n"
                      "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK(exchange(port, two, strlen(two), &r) == 0 && r.status == 200);
    CHECK(!strcmp(r.body, "{\"user\":\"alice\",\"items\":[]}"));
    /* oversize: headers past 8 KiB, and a request line past it with no line break at all */
    size_t big = 20000;
    char *request = malloc(big + 64);
    int n = sprintf(request, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ");
    memset(request + n, 'a', big);
    strcpy(request + n + big, "\r\n\r\n");
    CHECK(exchange(port, request, strlen(request), &r) == 0 && r.status == 431);
    n = sprintf(request, "GET /recommend?user=");
    memset(request + n, 'b', big);
    strcpy(request + n + big, " HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(exchange(port, request, strlen(request), &r) == 0 && r.status == 414);
    free(request);
}

/* A client that sends half a request and stalls must not delay anyone else. */
static void test_stalled_clients(int port) {
    int stalled[8];
    const char *half = "GET /healthz HTTP/1.1\r\nHo";
    for (int i = 0; i < 8; i++) {
        stalled[i] = connect_to(port);
        CHECK(stalled[i] >= 0 && send_all(stalled[i], half, strlen(half)) == 0);
    }
    Reply r;
    for (int i = 0; i < 5; i++) CHECK(get(port, "GET", "/healthz", &r) == 200);
    /* the stalled ones were served nothing meanwhile: they are still waiting, not queued behind */
    char byte;
    CHECK(recv(stalled[0], &byte, 1, MSG_DONTWAIT) == -1 && errno == EAGAIN);
    /* ... and are closed, without an answer, once their time is up */
    CHECK(read_reply(stalled[0], &r) == -1 && r.status == 0);
    for (int i = 0; i < 8; i++) close(stalled[i]);
}

typedef struct {
    int port;
    int ok;
} ClientRun;

static void *client_thread(void *arg) {
    ClientRun *run = arg;
    Reply *r = malloc(sizeof *r);
    for (int i = 0; i < 40; i++) {
        const char *target = i % 3 == 0   ? "/metrics"
                             : i % 3 == 1 ? "/healthz"
                                          : "/recommend?user=alice";
        if (get(run->port, "GET", target, r) == 200) run->ok++;
    }
    free(r);
    return NULL;
}

static void test_concurrent(int port) {
    pthread_t t[6];
    ClientRun runs[6];
    for (int i = 0; i < 6; i++) {
        runs[i] = (ClientRun){.port = port};
        pthread_create(&t[i], NULL, client_thread, &runs[i]);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(t[i], NULL);
        CHECK_MSG(runs[i].ok == 40, "client %d: %d of 40 answered 200", i, runs[i].ok);
    }
}

/* With every slot held by a stalled client, a new client waits in the backlog and is served as
 * soon as a slot frees (here: when the stalled ones time out). */
static void test_connection_limit(void) {
    char err[256];
    HttpServerOptions opt = {.listen = "127.0.0.1:0", .timeout_ms = 200, .max_connections = 2};
    HttpServer *srv = NULL;
    CHECK_MSG(http_server_start(&opt, &srv, err, sizeof err) == 0, "%s", err);
    if (!srv) return;
    int port = http_server_port(srv);
    int stalled[2];
    for (int i = 0; i < 2; i++) {
        stalled[i] = connect_to(port);
        CHECK(stalled[i] >= 0 && send_all(stalled[i], "GET /", 5) == 0);
    }
    Reply r;
    CHECK(get(port, "GET", "/healthz", &r) == 200);
    CHECK(get(port, "GET", "/metrics", &r) == 404);          /* no registry given */
    CHECK(get(port, "GET", "/recommend?user=x", &r) == 404); /* no callback given */
    CHECK(get(port, "GET", "/abtest", &r) == 404);
    CHECK(get(port, "GET", "/", &r) == 404); /* the dashboard needs /abtest */
    for (int i = 0; i < 2; i++) {
        CHECK(read_reply(stalled[i], &r) == -1 && r.status == 0);
        close(stalled[i]);
    }
    http_server_stop(srv);
}

int main(void) {
    char err[256];
    test_parsers();

    MetricsRegistry *reg = metrics_create();
    const char *labels[] = {"variant", "gru:a=3", NULL};
    MetricCounter *c =
        metrics_counter(reg, "ssnad_test_events_total", "Events.", labels, err, sizeof err);
    metric_counter_add(c, 5);
    const char *users[] = {"alice", "caf\xc3\xa9/42", "a b+c", NULL};
    HttpServerOptions opt = {.listen = "127.0.0.1:0",
                             .timeout_ms = 2000,
                             .metrics = reg,
                             .recommend = recommend,
                             .recommend_ctx = users,
                             .abtest = abtest,
                             .health = health};
    HttpServer *srv = NULL;
    CHECK_MSG(http_server_start(&opt, &srv, err, sizeof err) == 0, "%s", err);
    if (!srv) return check_done();
    int port = http_server_port(srv);
    CHECK(port > 0);

    /* the port is taken: a second server on it fails with a message naming the address */
    char taken[64];
    snprintf(taken, sizeof taken, "127.0.0.1:%d", port);
    HttpServerOptions opt2 = opt;
    opt2.listen = taken;
    HttpServer *srv2 = NULL;
    CHECK(http_server_start(&opt2, &srv2, err, sizeof err) == -1 && strstr(err, taken));
    opt2.listen = "nohost";
    CHECK(http_server_start(&opt2, &srv2, err, sizeof err) == -1);

    test_endpoints(port);
    test_malformed(port);
    test_stalled_clients(port);
    test_concurrent(port);
    test_connection_limit();

    /* shutdown with a client connected mid-request: returns, and the port stops answering */
    int pending = connect_to(port);
    CHECK(pending >= 0 && send_all(pending, "GET /", 5) == 0);
    http_server_stop(srv);
    Reply r;
    CHECK(read_reply(pending, &r) == -1); /* closed without a response */
    close(pending);
    CHECK(connect_to(port) == -1);
    metrics_destroy(reg);
    return check_done();
}
