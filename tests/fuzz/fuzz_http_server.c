/* fuzz_http_server - raw bytes to the daemon's HTTP server (libmicrohttpd parsing, our routing,
 * strict percent-decoding and callbacks) over a real loopback connection, as any client could
 * send them. Every answer must be one well-formed HTTP/1.1 status line with a known code, or the
 * connection closes without one; nothing may crash or leak. One server serves every input. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "daemon/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int recommend(void *ctx, const char *user, char **body, size_t *body_len) {
    (void)ctx;
    if (!strcmp(user, "unknown")) return 404;
    size_t n = strlen(user);
    if (!(*body = malloc(n + 16))) return 500;
    *body_len = (size_t)snprintf(*body, n + 16, "{\"n\":%zu}", n);
    return 200;
}

static int port(void) {
    static int p;
    if (!p) {
        static MetricsRegistry *reg; // lives as long as the server (the whole run)
        char err[256];
        reg = metrics_create();
        HttpServerOptions o = {
            .listen = "127.0.0.1:0", .timeout_ms = 1000, .metrics = reg, .recommend = recommend};
        HttpServer *srv;
        if (!reg || http_server_start(&o, &srv, err, sizeof err)) {
            fprintf(stderr, "fuzz_http_server: %s\n", err);
            abort();
        }
        p = http_server_port(srv);
    }
    return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 32768) return 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port())};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a)) abort();
    for (size_t off = 0; off < size;) { // the server may answer and close before all is sent
        ssize_t n = send(fd, data + off, size - off, MSG_NOSIGNAL);
        if (n <= 0) break;
        off += (size_t)n;
    }
    shutdown(fd, SHUT_WR);
    static char reply[1 << 16];
    size_t len = 0;
    ssize_t got;
    while (len < sizeof reply - 1 && (got = recv(fd, reply + len, sizeof reply - 1 - len, 0)) > 0)
        len += (size_t)got;
    close(fd);
    reply[len] = 0;
    if (len) {
        int code = 0;
        if (sscanf(reply, "HTTP/1.1 %3d ", &code) != 1 || code < 200 || code > 599 ||
            !strstr(reply, "\r\n\r\n")) {
            fprintf(stderr, "fuzz_http_server: malformed answer: %.200s\n", reply);
            abort();
        }
    }
    return 0;
}
