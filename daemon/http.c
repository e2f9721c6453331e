/* http.c - see http.h. The HTTP protocol itself (request line, headers, bodies, timeouts,
 * connection limits) is libmicrohttpd's; this file binds the listener, routes the paths and
 * writes the answers. */
#include "daemon/http.h"

#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dashboard_html.h" /* dashboard_html[]: daemon/dashboard.html, generated at build time */
#include "model/errmsg.h"

#define HTTP_DEFAULT_MAX_REQUEST     8192
#define HTTP_DEFAULT_MAX_CONNECTIONS 64
#define HTTP_MAX_BODY                1024

struct HttpServer {
    HttpServerOptions opt;
    int listen_fd;
    int port;
    struct MHD_Daemon *mhd;
};

int http_parse_listen(const char *listen, char *host, size_t host_cap, int *port, char *err,
                      size_t errlen) {
    const char *colon, *host_start = listen, *host_end;
    if (listen[0] == '[') {
        host_end = strchr(listen, ']');
        if (!host_end || host_end[1] != ':') goto bad;
        host_start = listen + 1;
        colon = host_end + 1;
    } else {
        colon = strrchr(listen, ':');
        if (!colon || memchr(listen, ':', (size_t)(colon - listen))) goto bad;
        host_end = colon;
    }
    size_t host_len = (size_t)(host_end - host_start);
    const char *digits = colon + 1;
    size_t n_digits = strlen(digits);
    if (host_len == 0 || host_len >= host_cap || n_digits == 0 || n_digits > 5) goto bad;
    long p = 0;
    for (size_t i = 0; i < n_digits; i++) {
        if (digits[i] < '0' || digits[i] > '9') goto bad;
        p = p * 10 + (digits[i] - '0');
    }
    if (p > 65535) goto bad;
    memcpy(host, host_start, host_len);
    host[host_len] = 0;
    *port = (int)p;
    return 0;
bad:
    return errmsg_fail(err, errlen, "'%s' is not host:port or [v6]:port with port 0 .. 65535",
                       listen);
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

long http_percent_decode(const char *in, size_t n, char *out, size_t cap, int plus_is_space) {
    size_t o = 0;
    if (cap < n + 1) return -1;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (c == '%') {
            if (i + 2 >= n) return -1;
            int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
            if (hi < 0 || lo < 0) return -1;
            c = (char)(hi * 16 + lo);
            if (c == 0) return -1;
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        } else if (c == 0) {
            return -1;
        }
        out[o++] = c;
    }
    out[o] = 0;
    return (long)o;
}

/* MHD_OPTION_UNESCAPE_CALLBACK: the path, query keys and values are decoded strictly by
 * http_percent_decode. A bad escape or %00 leaves a value whose first byte is NUL but whose length
 * is 1, which answer() tells from every valid value (a valid one holds no NUL). */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s) {
    (void)cls, (void)c;
    size_t n = strlen(s);
    long m = http_percent_decode(s, n, s, n + 1, 1);
    if (m >= 0) return (size_t)m;
    s[0] = 0;
    return 1;
}

/* Queue a response with body[0..len) (copied, or kept when `persistent`) and the headers every
 * answer carries. */
static enum MHD_Result reply_mode(struct MHD_Connection *c, unsigned status, const char *type,
                                  const char *body, size_t len, int persistent) {
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, (void *)body, persistent ? MHD_RESPMEM_PERSISTENT : MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (!strncmp(type, "text/html", 9)) // the page's own script and style only; it reads /abtest
        MHD_add_response_header(r, "Content-Security-Policy",
                                "default-src 'none'; script-src 'unsafe-inline'; style-src "
                                "'unsafe-inline'; connect-src 'self'; base-uri 'none'; "
                                "form-action 'none'; frame-ancestors 'none'");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED) MHD_add_response_header(r, "Allow", "GET, HEAD");
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
                             const char *body, size_t len) {
    return reply_mode(c, status, type, body, len, 0);
}

/* An error answer: {"error":"message"}. */
static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned status, const char *message) {
    char body[256];
    int n = snprintf(body, sizeof body, "{\"error\":\"%s\"}\n", message);
    return reply(c, status, "application/json", body, (size_t)n);
}

/* Queue a malloc'ed body (freed here). */
static enum MHD_Result reply_owned(struct MHD_Connection *c, unsigned status, const char *type,
                                   char *body, size_t len) {
    enum MHD_Result ok = reply(c, status, type, body, len);
    free(body);
    return ok;
}

static enum MHD_Result route_recommend(HttpServer *srv, struct MHD_Connection *c) {
    const char *user = NULL;
    size_t len = 0;
    if (MHD_lookup_connection_value_n(c, MHD_GET_ARGUMENT_KIND, "user", 4, &user, &len) ==
            MHD_YES &&
        user && strlen(user) != len)
        return reply_error(c, 400, "bad percent-encoding in the query");
    if (!user || !len) return reply_error(c, 400, "missing user: /recommend?user=ID");
    char *body = NULL;
    size_t body_len = 0;
    int status = srv->opt.recommend(srv->opt.recommend_ctx, user, &body, &body_len);
    if (status == 200 && body) return reply_owned(c, 200, "application/json", body, body_len);
    if (status == 404 && body) return reply_owned(c, 404, "application/json", body, body_len);
    free(body);
    return status == 404 ? reply_error(c, 404, "unknown user")
                         : reply_error(c, 500, "recommend failed");
}

static enum MHD_Result route_health(HttpServer *srv, struct MHD_Connection *c) {
    char *body = NULL;
    size_t len = 0;
    int status = srv->opt.health ? srv->opt.health(srv->opt.health_ctx, &body, &len) : 200;
    if (status != 200) status = 503;
    const char *type = "text/plain; charset=utf-8";
    if (body) return reply_owned(c, (unsigned)status, type, body, len);
    return status == 200 ? reply(c, 200, type, "ok\n", 3) : reply(c, 503, type, "unhealthy\n", 10);
}

static enum MHD_Result route_abtest(HttpServer *srv, struct MHD_Connection *c) {
    char *body = NULL;
    size_t len = 0;
    srv->opt.abtest(srv->opt.abtest_ctx, &body, &len);
    if (!body) return reply_error(c, 500, "out of memory");
    return reply_owned(c, 200, "application/json", body, len);
}

static enum MHD_Result route_dashboard(struct MHD_Connection *c) {
    return reply_mode(c, 200, "text/html; charset=utf-8", (const char *)dashboard_html,
                      sizeof dashboard_html, 1);
}

static enum MHD_Result route_metrics(HttpServer *srv, struct MHD_Connection *c) {
    size_t len = 0;
    char *body = metrics_render(srv->opt.metrics, &len);
    if (!body) return reply_error(c, 500, "out of memory");
    return reply_owned(c, 200, "text/plain; version=0.0.4; charset=utf-8", body, len);
}

/* MHD's access handler: called once the request line and headers are in (*state NULL), then
 * per piece of body. Every answer is given at the first call; a body is never read. */
static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **state) {
    HttpServer *srv = cls;
    (void)version, (void)upload;
    if (*state) { // a body arriving after the answer was queued: discard it
        *upload_size = 0;
        return MHD_YES;
    }
    *state = srv;
    const char *te = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Transfer-Encoding");
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    if (te) return reply_error(c, 501, "request bodies are not supported");
    if (cl && strtoull(cl, NULL, 10) > HTTP_MAX_BODY)
        return reply_error(c, 413, "request body too large");
    if (url[0] != '/') return reply_error(c, 400, "request target must be a path");
    int is_health = !strcmp(url, "/healthz"), is_metrics = !strcmp(url, "/metrics");
    int is_recommend = !strcmp(url, "/recommend"), is_abtest = !strcmp(url, "/abtest");
    int is_dashboard = !strcmp(url, "/");
    if ((is_metrics && !srv->opt.metrics) || (is_recommend && !srv->opt.recommend) ||
        ((is_abtest || is_dashboard) && !srv->opt.abtest) ||
        (!is_health && !is_metrics && !is_recommend && !is_abtest && !is_dashboard))
        return reply_error(c, 404, "no such path");
    if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
        return reply_error(c, 405, "only GET and HEAD");
    if (is_health) return route_health(srv, c);
    if (is_metrics) return route_metrics(srv, c);
    if (is_abtest) return route_abtest(srv, c);
    if (is_dashboard) return route_dashboard(c);
    return route_recommend(srv, c);
}

static int bind_listener(HttpServer *srv, char *err, size_t errlen) {
    char host[256], port_text[8];
    int port;
    if (http_parse_listen(srv->opt.listen, host, sizeof host, &port, err, errlen) < 0) return -1;
    snprintf(port_text, sizeof port_text, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res;
    int gai = getaddrinfo(host, port_text, &hints, &res);
    if (gai) {
        return errmsg_fail(err, errlen, "http.listen %s: %s", srv->opt.listen, gai_strerror(gai));
    }
    int last_errno = 0;
    srv->listen_fd = -1;
    for (struct addrinfo *ai = res; ai && srv->listen_fd < 0; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int one = 1;
        if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 &&
            bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 128) == 0) {
            srv->listen_fd = fd;
        } else {
            last_errno = errno;
            if (fd >= 0) close(fd);
        }
    }
    freeaddrinfo(res);
    if (srv->listen_fd < 0) {
        return errmsg_fail(err, errlen, "http.listen %s: %s", srv->opt.listen,
                           strerror(last_errno));
    }
    struct sockaddr_storage addr;
    socklen_t len = sizeof addr;
    getsockname(srv->listen_fd, (struct sockaddr *)&addr, &len);
    srv->port = ntohs(addr.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&addr)->sin6_port
                                                 : ((struct sockaddr_in *)&addr)->sin_port);
    return 0;
}

int http_server_start(const HttpServerOptions *options, HttpServer **out, char *err,
                      size_t errlen) {
    HttpServer *srv = calloc(1, sizeof *srv);
    if (!srv) {
        return errmsg_fail(err, errlen, "out of memory");
    }
    srv->opt = *options;
    if (!srv->opt.max_request) srv->opt.max_request = HTTP_DEFAULT_MAX_REQUEST;
    if (srv->opt.max_connections <= 0) srv->opt.max_connections = HTTP_DEFAULT_MAX_CONNECTIONS;
    if (srv->opt.timeout_ms <= 0) srv->opt.timeout_ms = 5000;
    srv->listen_fd = -1;
    if (bind_listener(srv, err, errlen) < 0) {
        free(srv);
        return -1;
    }
    // MHD's timeout is in whole seconds; its per-connection memory pool holds the request line
    // and headers (and a response's headers), so twice max_request leaves room for both
    unsigned timeout_s = (unsigned)((srv->opt.timeout_ms + 999) / 1000);
    srv->mhd =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC, 0, NULL,
                         NULL, answer, srv, MHD_OPTION_LISTEN_SOCKET, srv->listen_fd,
                         MHD_OPTION_CONNECTION_TIMEOUT, timeout_s, MHD_OPTION_CONNECTION_LIMIT,
                         (unsigned)srv->opt.max_connections, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                         (size_t)2 * srv->opt.max_request, MHD_OPTION_UNESCAPE_CALLBACK, unescape,
                         NULL, MHD_OPTION_STRICT_FOR_CLIENT, 1, MHD_OPTION_END);
    if (!srv->mhd) {
        snprintf(err, errlen, "http.listen %s: libmicrohttpd did not start", srv->opt.listen);
        close(srv->listen_fd);
        free(srv);
        return -1;
    }
    *out = srv;
    return 0;
}

int http_server_port(const HttpServer *srv) {
    return srv->port;
}

void http_server_stop(HttpServer *srv) {
    if (!srv) return;
    MHD_stop_daemon(srv->mhd); // closes every connection and the listening socket
    free(srv);
}
