/* http.c - see http.h. */
#include "daemon/http.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HTTP_DEFAULT_MAX_REQUEST     8192
#define HTTP_DEFAULT_MAX_CONNECTIONS 64
#define HTTP_MAX_BODY                1024
/* After the response, how long unread client bytes are drained before the close. */
#define HTTP_LINGER_MS 1000
/* How long accepting pauses when the process is out of descriptors or memory. */
#define HTTP_ACCEPT_PAUSE_MS 100

typedef enum { CONN_FREE = 0, CONN_READING, CONN_WRITING, CONN_DRAINING } ConnState;

typedef struct {
    ConnState state;
    int fd;
    char *in; /* [max_request + 1] */
    size_t in_len;
    char *out;
    size_t out_len, out_off;
    int64_t deadline_ms;
} HttpConn;

struct HttpServer {
    HttpServerOptions opt;
    int listen_fd;
    int wake_pipe[2];
    int port;
    pthread_t thread;
    HttpConn *conns; /* [opt.max_connections] */
    /* out of file descriptors: the listener stays readable, so stop polling it for a while
     * instead of spinning on accept */
    int64_t accept_paused_until_ms;
    struct pollfd *pfds; /* [max_connections + 2]: wake pipe, connections, listener */
    int *pfd_owner;      /* [max_connections + 2]: connection index of each pfds entry */
};

/* A response under construction. */
typedef struct {
    int status;
    const char *content_type;
    char *body; /* malloc'ed, or NULL with a static message in text */
    size_t body_len;
    const char *text;
    int head; /* HEAD request: headers only */
} HttpResponse;

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *reason_phrase(int status) {
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Internal Server Error";
    }
}

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
    snprintf(err, errlen, "'%s' is not host:port or [v6]:port with port 0 .. 65535", listen);
    return -1;
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

static void set_error(HttpResponse *r, int status, const char *message) {
    r->status = status;
    r->text = message;
}

/* Find the blank line that ends the headers; its end offset, or 0 if not there yet. */
static size_t find_header_end(const char *s, size_t n) {
    for (size_t i = 0; i + 1 < n; i++) {
        if (s[i] != '\n') continue;
        if (s[i + 1] == '\n') return i + 2;
        if (s[i + 1] == '\r' && i + 2 < n && s[i + 2] == '\n') return i + 3;
    }
    return 0;
}

static int is_token(const char *s, size_t n) {
    if (!n) return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f || strchr("()<>@,;:\\\"/[]?={}", s[i]))
            return 0;
    return 1;
}

/* Header facts the routing needs. */
typedef struct {
    int has_host;
    int chunked;
    long long content_length; /* -1 absent, -2 invalid */
} HeaderFacts;

/* Check every header line of lines (NUL-terminated, '\n'-separated, '\r' allowed before '\n').
 * -1 if one is malformed. */
static int scan_headers(char *lines, HeaderFacts *h) {
    h->has_host = h->chunked = 0;
    h->content_length = -1;
    for (char *line = lines; *line;) {
        char *nl = strchr(line, '\n');
        if (!nl) return -1;
        *nl = 0;
        if (nl > line && nl[-1] == '\r') nl[-1] = 0;
        if (!*line) break;
        char *colon = strchr(line, ':');
        if (!colon || !is_token(line, (size_t)(colon - line))) return -1;
        *colon = 0;
        char *value = colon + 1;
        while (*value == ' ' || *value == '\t') value++;
        if (!strcasecmp(line, "host")) {
            h->has_host = 1;
        } else if (!strcasecmp(line, "transfer-encoding")) {
            h->chunked = 1;
        } else if (!strcasecmp(line, "content-length")) {
            char *end;
            errno = 0;
            long long v = strtoll(value, &end, 10);
            while (*end == ' ' || *end == '\t') end++;
            /* two different lengths are a request-smuggling signature: refuse */
            if (end == value || *end || errno || v < 0 ||
                (h->content_length >= 0 && h->content_length != v))
                h->content_length = -2;
            else if (h->content_length != -2)
                h->content_length = v;
        }
        line = nl + 1;
    }
    return 0;
}

/* The value of query parameter `name` in query (not decoded yet): decoded into out. 1 found,
 * 0 absent, -1 bad encoding. */
static int query_param(const char *query, const char *name, char *out, size_t cap) {
    char key[64];
    for (const char *p = query; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t key_len = eq ? (size_t)(eq - p) : len;
        if (key_len < sizeof key && http_percent_decode(p, key_len, key, sizeof key, 1) >= 0 &&
            !strcmp(key, name)) {
            const char *v = eq ? eq + 1 : p + len;
            size_t vlen = (size_t)(p + len - v);
            return http_percent_decode(v, vlen, out, cap, 1) < 0 ? -1 : 1;
        }
        p = amp ? amp + 1 : NULL;
    }
    return 0;
}

static void route_recommend(HttpServer *srv, const char *query, HttpResponse *r) {
    size_t cap = query ? strlen(query) + 1 : 1;
    char *user = malloc(cap);
    if (!user) {
        set_error(r, 500, "out of memory");
        return;
    }
    int found = query ? query_param(query, "user", user, cap) : 0;
    if (found < 0) {
        set_error(r, 400, "bad percent-encoding in the query");
    } else if (found == 0 || !*user) {
        set_error(r, 400, "missing user: /recommend?user=ID");
    } else {
        int status = srv->opt.recommend(srv->opt.recommend_ctx, user, &r->body, &r->body_len);
        r->content_type = "application/json";
        if (status == 404 && !r->body)
            set_error(r, 404, "unknown user");
        else if (status == 200 && r->body)
            r->status = 200;
        else if (status == 404)
            r->status = 404;
        else
            set_error(r, 500, "recommend failed");
    }
    free(user);
}

static void route_health(HttpServer *srv, HttpResponse *r) {
    r->content_type = "text/plain; charset=utf-8";
    r->status =
        srv->opt.health ? srv->opt.health(srv->opt.health_ctx, &r->body, &r->body_len) : 200;
    if (r->status != 200 && r->status != 503) r->status = 503;
    if (!r->body) r->text = r->status == 200 ? "ok" : "unhealthy";
}

static void route_metrics(HttpServer *srv, HttpResponse *r) {
    r->body = metrics_render(srv->opt.metrics, &r->body_len);
    if (!r->body) {
        set_error(r, 500, "out of memory");
        return;
    }
    r->status = 200;
    r->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

/* Parse the request in req (NUL-terminated, headers complete) and fill r. */
static void handle_request(HttpServer *srv, char *req, HttpResponse *r) {
    char *nl = strchr(req, '\n');
    *nl = 0;
    if (nl > req && nl[-1] == '\r') nl[-1] = 0;
    char *sp1 = strchr(req, ' '), *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2 || strchr(sp2 + 1, ' ') || !is_token(req, (size_t)(sp1 - req))) {
        set_error(r, 400, "malformed request line");
        return;
    }
    *sp1 = *sp2 = 0;
    const char *method = req, *version = sp2 + 1;
    char *target = sp1 + 1;
    if (strncmp(version, "HTTP/", 5)) {
        set_error(r, 400, "malformed request line");
        return;
    }
    if (strcmp(version, "HTTP/1.1") && strcmp(version, "HTTP/1.0")) {
        set_error(r, 505, "only HTTP/1.0 and HTTP/1.1");
        return;
    }
    HeaderFacts h;
    if (scan_headers(nl + 1, &h) < 0) {
        set_error(r, 400, "malformed header line");
        return;
    }
    if (h.chunked) {
        set_error(r, 501, "request bodies are not supported");
        return;
    }
    if (h.content_length == -2) {
        set_error(r, 400, "bad Content-Length");
        return;
    }
    if (h.content_length > HTTP_MAX_BODY) {
        set_error(r, 413, "request body too large");
        return;
    }
    if (!h.has_host && !strcmp(version, "HTTP/1.1")) {
        set_error(r, 400, "HTTP/1.1 request without Host");
        return;
    }
    if (target[0] != '/') {
        set_error(r, 400, "request target must be a path");
        return;
    }
    char *query = strchr(target, '?');
    if (query) *query++ = 0;
    char path[64];
    if (http_percent_decode(target, strlen(target), path, sizeof path, 0) < 0) {
        /* too long for any route, or badly encoded */
        set_error(r, strlen(target) + 1 > sizeof path ? 404 : 400, "no such path");
        return;
    }
    int is_health = !strcmp(path, "/healthz"), is_metrics = !strcmp(path, "/metrics");
    int is_recommend = !strcmp(path, "/recommend");
    if ((is_metrics && !srv->opt.metrics) || (is_recommend && !srv->opt.recommend) ||
        (!is_health && !is_metrics && !is_recommend)) {
        set_error(r, 404, "no such path");
        return;
    }
    r->head = !strcmp(method, "HEAD");
    if (!r->head && strcmp(method, "GET")) {
        set_error(r, 405, "only GET and HEAD");
        return;
    }
    if (is_health)
        route_health(srv, r);
    else if (is_metrics)
        route_metrics(srv, r);
    else
        route_recommend(srv, query, r);
}

/* Serialise r into c->out and switch the connection to writing. */
static void start_response(HttpServer *srv, HttpConn *c, HttpResponse *r) {
    char head[512], text_body[160];
    const char *body = r->body;
    size_t body_len = r->body_len;
    if (!body) {
        const char *text = r->text ? r->text : reason_phrase(r->status);
        if (r->status >= 400) {
            snprintf(text_body, sizeof text_body, "{\"error\":\"%s\"}\n", text);
            r->content_type = "application/json";
        } else {
            snprintf(text_body, sizeof text_body, "%s\n", text);
        }
        body = text_body;
        body_len = strlen(text_body);
    }
    if (!r->content_type) r->content_type = "text/plain; charset=utf-8";
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\n%sConnection: close\r\n\r\n",
                     r->status, reason_phrase(r->status), r->content_type, body_len,
                     r->status == 405 ? "Allow: GET, HEAD\r\n" : "");
    size_t total = (size_t)n + (r->head ? 0 : body_len);
    free(c->out);
    c->out = malloc(total);
    if (c->out) {
        memcpy(c->out, head, (size_t)n);
        if (!r->head) memcpy(c->out + n, body, body_len);
        c->out_len = total;
    } else {
        c->out_len = 0; /* nothing to say: the connection just closes */
    }
    free(r->body);
    r->body = NULL;
    c->out_off = 0;
    c->state = CONN_WRITING;
    c->deadline_ms = now_ms() + srv->opt.timeout_ms;
}

static void respond_status(HttpServer *srv, HttpConn *c, int status) {
    HttpResponse r = {.status = status};
    start_response(srv, c, &r);
}

static void conn_close(HttpConn *c) {
    close(c->fd);
    free(c->in);
    free(c->out);
    memset(c, 0, sizeof *c);
}

static void conn_read(HttpServer *srv, HttpConn *c) {
    size_t cap = srv->opt.max_request;
    ssize_t got = recv(c->fd, c->in + c->in_len, cap - c->in_len, 0);
    if (got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        conn_close(c);
        return;
    }
    if (got < 0) return;
    c->in_len += (size_t)got;
    size_t end = find_header_end(c->in, c->in_len);
    if (end) {
        c->in[end] = 0;
        if (strlen(c->in) != end) { /* a NUL byte inside the request */
            respond_status(srv, c, 400);
            return;
        }
        HttpResponse r = {0};
        handle_request(srv, c->in, &r);
        start_response(srv, c, &r);
    } else if (c->in_len == cap) {
        /* no line break at all: the request line alone is too long */
        respond_status(srv, c, memchr(c->in, '\n', c->in_len) ? 431 : 414);
    }
}

static void conn_write(HttpServer *srv, HttpConn *c) {
    while (c->out_off < c->out_len) {
        ssize_t sent = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
        if (sent <= 0) {
            conn_close(c);
            return;
        }
        c->out_off += (size_t)sent;
    }
    /* lingering close: stop sending, let the client read, discard what it still sends */
    shutdown(c->fd, SHUT_WR);
    c->state = CONN_DRAINING;
    int linger = srv->opt.timeout_ms < HTTP_LINGER_MS ? srv->opt.timeout_ms : HTTP_LINGER_MS;
    c->deadline_ms = now_ms() + linger;
}

static void conn_drain(HttpConn *c) {
    char scratch[4096];
    ssize_t got = recv(c->fd, scratch, sizeof scratch, 0);
    if (got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
        conn_close(c);
}

static void accept_clients(HttpServer *srv) {
    for (int i = 0; i < srv->opt.max_connections; i++) {
        HttpConn *c = &srv->conns[i];
        if (c->state != CONN_FREE) continue;
        int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                srv->accept_paused_until_ms = now_ms() + HTTP_ACCEPT_PAUSE_MS;
            return; /* EAGAIN, or a client that left before we got to it */
        }
        c->in = malloc(srv->opt.max_request + 1);
        if (!c->in) {
            close(fd);
            return;
        }
        c->fd = fd;
        c->state = CONN_READING;
        c->in_len = 0;
        c->deadline_ms = now_ms() + srv->opt.timeout_ms;
    }
}

/* Service connection c after poll said revents (0: only its deadline may have passed). */
static void conn_service(HttpServer *srv, HttpConn *c, short revents) {
    if (revents & POLLNVAL) {
        conn_close(c);
        return;
    }
    if (revents) {
        if (c->state == CONN_READING)
            conn_read(srv, c);
        else if (c->state == CONN_WRITING)
            conn_write(srv, c);
        else
            conn_drain(c);
    }
    if (c->state == CONN_FREE || now_ms() < c->deadline_ms) return;
    if (c->state == CONN_READING) {
        respond_status(srv, c, 408);
        conn_write(srv, c);
    } else {
        conn_close(c); /* a client that does not take its response, or lingers */
    }
}

/* Wait timeout so the earliest connection deadline (or the end of an accept pause) is met. */
static int poll_timeout(int64_t timeout, int64_t until, int64_t now) {
    int64_t left = until > now ? until - now : 0;
    return (int)(timeout < 0 || left < timeout ? left : timeout);
}

static void *server_thread(void *arg) {
    HttpServer *srv = arg;
    struct pollfd *pfds = srv->pfds;
    int *owner = srv->pfd_owner;
    for (;;) {
        int n = 0, active = 0, timeout = -1;
        int64_t now = now_ms();
        pfds[n++] = (struct pollfd){.fd = srv->wake_pipe[0], .events = POLLIN};
        for (int i = 0; i < srv->opt.max_connections; i++) {
            HttpConn *c = &srv->conns[i];
            if (c->state == CONN_FREE) continue;
            active++;
            owner[n] = i;
            pfds[n++] =
                (struct pollfd){.fd = c->fd, .events = c->state == CONN_WRITING ? POLLOUT : POLLIN};
            timeout = poll_timeout(timeout, c->deadline_ms, now);
        }
        int listen_slot = -1;
        if (active < srv->opt.max_connections && now >= srv->accept_paused_until_ms) {
            listen_slot = n;
            pfds[n++] = (struct pollfd){.fd = srv->listen_fd, .events = POLLIN};
        } else if (now < srv->accept_paused_until_ms) {
            timeout = poll_timeout(timeout, srv->accept_paused_until_ms, now);
        }
        if (poll(pfds, (nfds_t)n, timeout) < 0 && errno != EINTR) break;
        if (pfds[0].revents) break; /* http_server_stop */
        for (int k = 1; k < n; k++)
            if (k != listen_slot) conn_service(srv, &srv->conns[owner[k]], pfds[k].revents);
        if (listen_slot > 0 && pfds[listen_slot].revents) accept_clients(srv);
    }
    return NULL;
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
        snprintf(err, errlen, "http.listen %s: %s", srv->opt.listen, gai_strerror(gai));
        return -1;
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
        snprintf(err, errlen, "http.listen %s: %s", srv->opt.listen, strerror(last_errno));
        return -1;
    }
    struct sockaddr_storage addr;
    socklen_t len = sizeof addr;
    getsockname(srv->listen_fd, (struct sockaddr *)&addr, &len);
    srv->port = ntohs(addr.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&addr)->sin6_port
                                                 : ((struct sockaddr_in *)&addr)->sin_port);
    return 0;
}

static void http_server_free(HttpServer *srv) {
    free(srv->conns);
    free(srv->pfds);
    free(srv->pfd_owner);
    free(srv);
}

int http_server_start(const HttpServerOptions *options, HttpServer **out, char *err,
                      size_t errlen) {
    HttpServer *srv = calloc(1, sizeof *srv);
    if (!srv) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    srv->opt = *options;
    if (!srv->opt.max_request) srv->opt.max_request = HTTP_DEFAULT_MAX_REQUEST;
    if (srv->opt.max_connections <= 0) srv->opt.max_connections = HTTP_DEFAULT_MAX_CONNECTIONS;
    if (srv->opt.timeout_ms <= 0) srv->opt.timeout_ms = 5000;
    srv->wake_pipe[0] = srv->wake_pipe[1] = srv->listen_fd = -1;
    size_t slots = (size_t)srv->opt.max_connections;
    srv->conns = calloc(slots, sizeof *srv->conns);
    srv->pfds = calloc(slots + 2, sizeof *srv->pfds);
    srv->pfd_owner = calloc(slots + 2, sizeof *srv->pfd_owner);
    if (!srv->conns || !srv->pfds || !srv->pfd_owner) {
        snprintf(err, errlen, "http server: out of memory");
        goto fail;
    }
    if (pipe2(srv->wake_pipe, O_NONBLOCK | O_CLOEXEC) < 0) {
        snprintf(err, errlen, "http server: %s", strerror(errno));
        goto fail;
    }
    if (bind_listener(srv, err, errlen) < 0) goto fail;
    int rc = pthread_create(&srv->thread, NULL, server_thread, srv);
    if (rc) {
        snprintf(err, errlen, "http server thread: %s", strerror(rc));
        goto fail;
    }
    *out = srv;
    return 0;
fail:
    if (srv->listen_fd >= 0) close(srv->listen_fd);
    if (srv->wake_pipe[0] >= 0) close(srv->wake_pipe[0]), close(srv->wake_pipe[1]);
    http_server_free(srv);
    return -1;
}

int http_server_port(const HttpServer *srv) {
    return srv->port;
}

void http_server_stop(HttpServer *srv) {
    if (!srv) return;
    ssize_t w;
    do w = write(srv->wake_pipe[1], "x", 1);
    while (w < 0 && errno == EINTR);
    pthread_join(srv->thread, NULL);
    for (int i = 0; i < srv->opt.max_connections; i++)
        if (srv->conns[i].state != CONN_FREE) conn_close(&srv->conns[i]);
    close(srv->listen_fd);
    close(srv->wake_pipe[0]);
    close(srv->wake_pipe[1]);
    http_server_free(srv);
}
