/* http.h - the daemon's small HTTP/1.1 endpoint, served by libmicrohttpd on its own thread.
 *
 *   GET /healthz             200 "ok" (or what the health callback says; 503 when unhealthy)
 *   GET /metrics             200, Prometheus text format 0.0.4 of a MetricsRegistry
 *   GET /recommend?user=ID   200 JSON from the recommend callback; 400 without user, 404 unknown
 *   GET /abtest              200 JSON from the abtest callback (the live A/B and its statistics)
 *   GET /                    200 HTML: the live A/B dashboard (daemon/dashboard.html, compiled
 *                            in), a page that reads /abtest every 2 s and draws it; 404 without
 *                            an abtest callback. Sent with a Content-Security-Policy that lets
 *                            it run its own script and reach nothing but this server.
 * HEAD works wherever GET does; other methods get 405 with Allow. Unknown paths 404; a request
 * line or headers that do not fit in 2 x max_request bytes 414 / 431; a declared body over 1 KiB
 * 413 (no endpoint takes one); Transfer-Encoding 501; HTTP/1.1 without Host 400 (libmicrohttpd's
 * strict client checks). The path and query are percent-decoded strictly ('+' is a space in the
 * query); a bad escape or %00 is 400. The HTTP parsing itself is libmicrohttpd's.
 *
 * One poll() thread serves every connection, so a client that sends half a request and stalls
 * holds one slot, never the thread; a connection that has not completed its request within
 * timeout_ms (rounded up to whole seconds) is closed without an answer. At max_connections the
 * listener is not polled: new clients wait in the kernel's backlog until a slot frees. Every
 * response closes the connection (Connection: close): no body is ever read, so nothing a client
 * sends after its request line and headers can be taken for a second request. The callbacks run
 * on the server thread: they must be thread-safe against the daemon loop and quick (they block
 * other requests while they run).
 */
#ifndef SSNA_DAEMON_HTTP_H
#define SSNA_DAEMON_HTTP_H

#include <stddef.h>

#include "daemon/metrics.h"

typedef struct HttpServer HttpServer;

/* /recommend: return 200 with *body a malloc'ed JSON document of *body_len bytes (the server
 * frees it), 404 when the user is unknown (body optional), anything else becomes 500. */
typedef int (*HttpRecommendFn)(void *ctx, const char *user, char **body, size_t *body_len);
/* /abtest: *body a malloc'ed JSON document of *body_len bytes (freed by the server); NULL: 500. */
typedef void (*HttpAbTestFn)(void *ctx, char **body, size_t *body_len);
/* /healthz: 200 healthy or 503 not; *body may be set to a malloc'ed text (freed by the server). */
typedef int (*HttpHealthFn)(void *ctx, char **body, size_t *body_len);

typedef struct {
    const char *listen;        /* "127.0.0.1:8080", "[::1]:0", "localhost:9000"; port 0 = any */
    int timeout_ms;            /* per connection, to send its request (rounded up to seconds) */
    size_t max_request;        /* request line + headers must fit in twice this; 0 = 8192 */
    int max_connections;       /* open at once; more wait in the listen backlog; 0 = 64 */
    MetricsRegistry *metrics;  /* NULL: /metrics is 404 */
    HttpRecommendFn recommend; /* NULL: /recommend is 404 */
    void *recommend_ctx;
    HttpAbTestFn abtest; /* NULL: /abtest is 404 */
    void *abtest_ctx;
    HttpHealthFn health; /* NULL: always healthy */
    void *health_ctx;
} HttpServerOptions;

/* Bind, listen and start the server thread. 0 and *out, or -1 with err naming the address. */
int http_server_start(const HttpServerOptions *options, HttpServer **out, char *err, size_t errlen);
/* The bound port (useful with port 0). */
int http_server_port(const HttpServer *srv);
/* Stop the thread, close every connection and the listener, free srv. NULL is a no-op. */
void http_server_stop(HttpServer *srv);

/* Split "host:port" or "[v6addr]:port" into host (brackets removed) and port 0..65535.
 * 0, or -1 with err. */
int http_parse_listen(const char *listen, char *host, size_t host_cap, int *port, char *err,
                      size_t errlen);
/* Percent-decode in[0..n) into out (cap >= n + 1, NUL-terminated); '+' becomes ' ' when
 * plus_is_space. Returns the decoded length, or -1 on a bad escape or a decoded NUL byte. */
long http_percent_decode(const char *in, size_t n, char *out, size_t cap, int plus_is_space);

#endif
