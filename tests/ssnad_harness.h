/* ssnad_harness.h - what the ssnad integration tests share: a real local Kafka broker on a free
 * port in a temporary work folder (ops/kafka.sh), a slice of the Scientific data, `ssna replay`,
 * the ssnad process, and reading topics back. Every missing dependency (java, the Kafka jars, the
 * encoder, the data, the binaries) is a test FAILURE with a message, never a skip. */
#ifndef SSNA_TESTS_SSNAD_HARNESS_H
#define SSNA_TESTS_SSNAD_HARNESS_H

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#include "daemon/ssnad.h"
#include "ingest/codec.h"
#include "ingest/kafka.h"
#include "model/clock.h"
#include "model/fileio.h"

typedef struct {
    const char *src, *build, *model, *data;
    char work[256];   // temporary folder of this test
    char brokers[64]; // 127.0.0.1:PORT
    int port;
    char slice[512]; // the data slice folder
} Harness;

static Harness *harness_current; // the broker to stop when the test dies

static inline int harness_broker(Harness *h, const char *action);

static inline void harness_die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FAIL: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (harness_current && harness_current->port) harness_broker(harness_current, "stop");
    exit(1);
}

/* ctest's timeout (SIGTERM) or ^C: stop the broker rather than leave a JVM behind. */
static inline void harness_on_signal(int sig) {
    if (harness_current && harness_current->port) harness_broker(harness_current, "stop");
    _exit(128 + sig);
}

static inline double harness_now(void) {
    return clock_monotonic_s();
}

static inline int harness_sh(const char *fmt, ...) {
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

static inline int port_free(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0) close(fd);
    return ok;
}

/* Check every dependency, make the work folder, pick a free port pair for the broker. */
static inline void harness_init(Harness *h, const char *name) {
    memset(h, 0, sizeof *h);
    h->src = getenv("SSNA_SOURCE_DIR"), h->build = getenv("SSNA_BUILD_DIR");
    h->model = getenv("SSNA_MODEL_DIR"), h->data = getenv("SSNA_DATA_DIR");
    if (!h->src || !h->build || !h->model || !h->data)
        harness_die("SSNA_SOURCE_DIR, SSNA_BUILD_DIR, SSNA_MODEL_DIR, SSNA_DATA_DIR must be set "
                    "(run through ctest)");
    char p[1024];
    if (harness_sh("command -v java >/dev/null 2>&1"))
        harness_die("java is not installed: the Kafka broker needs it (ops/setup.sh installs it)");
    snprintf(p, sizeof p, "ls %s/ops/kafka/lib/kafka_2.13-*.jar >/dev/null 2>&1", h->src);
    if (harness_sh("%s", p))
        harness_die("the Kafka jars are missing in %s/ops/kafka/lib (run ops/setup.sh)", h->src);
    snprintf(p, sizeof p, "%s/model.safetensors", h->model);
    if (access(p, R_OK)) harness_die("encoder missing: %s (run ops/setup.sh)", p);
    snprintf(p, sizeof p, "%s/amazon-scientific/Scientific.test.inter", h->data);
    if (access(p, R_OK)) harness_die("data missing: %s", p);
    snprintf(p, sizeof p, "%s/daemon/ssnad", h->build);
    if (access(p, X_OK)) harness_die("not built: %s", p);
    snprintf(h->work, sizeof h->work, "/tmp/ssnad-%s-XXXXXX", name);
    if (!mkdtemp(h->work)) harness_die("mkdtemp: %s", strerror(errno));
    srand((unsigned)(getpid() ^ time(NULL)));
    for (int tries = 0; tries < 200 && !h->port; tries++) {
        int port = 20000 + rand() % 30000;
        if (port_free(port) && port_free(port + 1)) h->port = port;
    }
    if (!h->port) harness_die("no free port pair");
    snprintf(h->brokers, sizeof h->brokers, "127.0.0.1:%d", h->port);
    harness_current = h;
    signal(SIGTERM, harness_on_signal);
    signal(SIGINT, harness_on_signal);
    fprintf(stderr, "harness: work %s, broker %s\n", h->work, h->brokers);
}

static inline int harness_broker(Harness *h, const char *action) {
    return harness_sh("SSNA_KAFKA_PORT=%d SSNA_KAFKA_PARTITIONS=4 bash %s/ops/kafka.sh %s %s/kafka "
                      ">>%s/kafka.sh.log 2>&1",
                      h->port, h->src, action, h->work, h->work);
}

static inline void harness_broker_start(Harness *h) {
    if (harness_broker(h, "start"))
        harness_die("ops/kafka.sh start failed (log: %s/kafka.sh.log)", h->work);
}

/* The first n_users users of Scientific (their train/valid/test rows and the items they use) in
 * a folder `ssna replay` reads. */
static inline void harness_slice(Harness *h, int n_users) {
    snprintf(h->slice, sizeof h->slice, "%s/slice", h->work);
    const char *s = h->data;
    int rc = harness_sh(
        "set -e; mkdir -p %s; cd %s; S=%s/amazon-scientific; "
        "for f in train valid test; do awk -F'\\t' -v n=%d 'NR==1 || $1 < n' "
        "$S/Scientific.$f.inter > Scientific.$f.inter; done; "
        "m=$(awk -F'\\t' 'NR>1{k=split($2,a,\" \"); for(i=1;i<=k;i++) if(a[i]+0>m) m=a[i]+0; "
        "if($3+0>m) m=$3+0} END{print m+1}' Scientific.test.inter); "
        "head -n \"$m\" $S/Scientific.item2index > Scientific.item2index; "
        "head -n %d $S/Scientific.user2index > Scientific.user2index; "
        "cp $S/Scientific.text .",
        h->slice, h->slice, s, n_users, n_users);
    if (rc) harness_die("building the data slice in %s failed", h->slice);
}

/* ssna replay of the slice (extra: more options). 0 or the exit status. */
static inline int harness_replay(Harness *h, const char *extra) {
    return harness_sh("%s/daemon/ssna replay --data %s --brokers %s --items just-in-time --quiet "
                      "%s >>%s/replay.log 2>&1",
                      h->build, h->slice, h->brokers, extra ? extra : "", h->work);
}

/* Write a config for ssnad instance `name` (db in work/name.db); extra lines appended (a key
 * they set replaces the harness default). */
static inline void harness_config(Harness *h, const char *name, const char *extra) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s.conf", h->work, name);
    FILE *f = fopen(path, "w");
    if (!f) harness_die("cannot write %s", path);
    if (!extra) extra = "";
    fprintf(f,
            "brokers = %s\ngroup.id = %s\ndb.path = %s/%s.db\nmodel.dir = %s\n"
            "http.listen = 127.0.0.1:0\nlog.format = json\n%s%s%s\n",
            h->brokers, name, h->work, name, h->model,
            strstr(extra, "checkpoint.every_seconds") ? "" : "checkpoint.every_seconds = 2\n",
            strstr(extra, "train.batch") ? "" : "train.batch = 16\n", extra);
    fclose(f);
}

/* Start ssnad with work/name.conf, stderr appended to work/name.log. posix_spawn, not fork: a
 * fork of this process (whose Kafka clients run threads) then freopen in the child is not
 * async-signal-safe, and under ThreadSanitizer the parent's librdkafka threads crashed in the
 * allocator after such forks (test_ssnad_bounds). */
static inline pid_t harness_ssnad_start(Harness *h, const char *name) {
    char conf[512], log[512], bin[512];
    snprintf(conf, sizeof conf, "%s/%s.conf", h->work, name);
    snprintf(log, sizeof log, "%s/%s.log", h->work, name);
    snprintf(bin, sizeof bin, "%s/daemon/ssnad", h->build);
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t dfl;
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGTERM); // the daemon installs its own; never run the harness's there
    sigaddset(&dfl, SIGINT);
    if (posix_spawn_file_actions_init(&fa) || posix_spawnattr_init(&attr) ||
        posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, log, O_WRONLY | O_APPEND | O_CREAT,
                                         0644) ||
        posix_spawnattr_setsigdefault(&attr, &dfl) ||
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF))
        harness_die("posix_spawn set-up for %s", name);
    char *argv[] = {bin, "--config", conf, NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, bin, &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc) harness_die("posix_spawn %s: %s", bin, strerror(rc));
    return pid;
}

/* 1 when process pid runs the daemon (it has exec'd: before that the forked child still has this
 * harness's own handlers) and has a handler for sig (SigCgt of /proc/PID/status), else 0. */
static inline int harness_catches_signal(pid_t pid, int sig) {
    char path[64], line[256], exe[512];
    snprintf(path, sizeof path, "/proc/%d/exe", (int)pid);
    ssize_t n = readlink(path, exe, sizeof exe - 1);
    if (n <= 0) return 0;
    exe[n] = 0;
    const char *base = strrchr(exe, '/');
    if (strcmp(base ? base + 1 : exe, "ssnad")) return 0;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    unsigned long long mask = 0;
    int found = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "SigCgt: %llx", &mask) == 1) found = 1;
    if (f) fclose(f);
    return found && (mask >> (sig - 1) & 1);
}

/* Send sig (0: none, just wait for the exit) and wait up to timeout_s; returns the exit status
 * (128+signal if killed), -1 on timeout (then SIGKILL). */
static inline int harness_ssnad_stop(pid_t pid, int sig, double timeout_s) {
    int st;
    double t0 = harness_now();
    // A graceful stop is only a test of the daemon once it handles the signal: sent in the first
    // milliseconds after exec it would meet the default action (termination), so wait until
    // /proc says the process catches it (or has exited already).
    while (sig > 0 && sig != SIGKILL && !harness_catches_signal(pid, sig) &&
           harness_now() - t0 < timeout_s) {
        if (waitpid(pid, &st, WNOHANG) == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        usleep(10000);
    }
    kill(pid, sig);
    while (harness_now() - t0 < timeout_s) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        usleep(20000);
    }
    // a hang is a bug: show where every thread is (when gdb is there) before killing it
    fprintf(stderr, "harness: pid %d did not stop within %.0f s\n", (int)pid, timeout_s);
    harness_sh("command -v gdb >/dev/null && gdb -p %d -batch -ex 'thread apply all bt 12' "
               "2>/dev/null | grep -E '^#|^Thread' | head -120 >&2",
               (int)pid);
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

/* The committed events_applied counter of a store (0 while it has none). */
static inline uint64_t harness_events_applied(const char *db) {
    StoreOptions o = {.read_only = 1};
    Store *s = NULL;
    char err[256];
    uint64_t v = 0;
    if (store_open(&s, db, &o, err, sizeof err)) return 0;
    store_get_counter(s, NULL, "events_applied", &v, err, sizeof err);
    store_close(s);
    return v;
}

/* Wait until the store of instance name has committed at least n events. 0, or -1 on timeout. */
static inline int harness_wait_events(Harness *h, const char *name, uint64_t n, double timeout_s) {
    char db[512];
    snprintf(db, sizeof db, "%s/%s.db", h->work, name);
    double t0 = harness_now();
    while (harness_now() - t0 < timeout_s) {
        if (harness_events_applied(db) >= n) return 0;
        usleep(200000);
    }
    fprintf(stderr, "harness: %s committed %llu of %llu events after %.0f s\n", name,
            (unsigned long long)harness_events_applied(db), (unsigned long long)n, timeout_s);
    return -1;
}

/* Wait until the store of instance name holds states of at least n items. 0, or -1. */
static inline int harness_wait_items(Harness *h, const char *name, size_t n, double timeout_s) {
    char db[512], err[256];
    snprintf(db, sizeof db, "%s/%s.db", h->work, name);
    size_t have = 0;
    for (double t0 = harness_now(); harness_now() - t0 < timeout_s; usleep(500000)) {
        StoreOptions o = {.read_only = 1};
        Store *s = NULL;
        if (store_open(&s, db, &o, err, sizeof err)) continue;
        if (store_item_count(s, NULL, &have, err, sizeof err)) have = 0;
        store_close(s);
        if (have >= n) return 0;
    }
    fprintf(stderr, "harness: %s stored %zu of %zu items after %.0f s\n", name, have, n, timeout_s);
    return -1;
}

typedef void (*HarnessMessageFn)(void *ctx, const KafkaMessage *m);

/* Read topic from the beginning in a fresh group to its end: until every assigned partition's
 * position has reached its high watermark (as of the consumer's last fetch) on two polls in a row
 * with nothing new. What a daemon is still producing is not waited for: harness_wait_lists first
 * where lists are read from a running daemon. Returns the number of messages; a topic that cannot
 * be read to its end in 120 s fails the test. */
static inline long harness_read_topic(Harness *h, const char *topic, HarnessMessageFn fn,
                                      void *ctx) {
    char group[64], err[512];
    snprintf(group, sizeof group, "reader-%d-%d", getpid(), rand());
    const char *topics[1] = {topic};
    KafkaSetting set[1] = {{"kafka.fetch.wait.max.ms", "10"}};
    KafkaConsumerOptions o = {.brokers = h->brokers,
                              .group_id = group,
                              .topics = topics,
                              .n_topics = 1,
                              .settings = set,
                              .n_settings = 1};
    KafkaConsumer *c;
    if (kafka_consumer_open(&o, &c, err, sizeof err)) harness_die("reader: %s", err);
    long n = 0;
    int at_end = 0;
    for (double t0 = harness_now(); at_end < 2;) {
        KafkaMessage m = {0};
        int rc = kafka_consumer_poll(c, 100, &m, err, sizeof err);
        if (rc == 1) {
            fn(ctx, &m);
            kafka_message_release(&m);
            n++;
            at_end = 0;
        } else if (rc == KAFKA_POLL_FATAL) {
            harness_die("reader: %s", err);
        } else {
            int end = kafka_consumer_assignment_size(c) > 0 && kafka_consumer_lag(c) == 0;
            at_end = end ? at_end + 1 : 0;
        }
        if (harness_now() - t0 > 120)
            harness_die("reader: %s not read to its end in 120 s (%ld messages)", topic, n);
    }
    kafka_consumer_close(c);
    return n;
}

/* `ssna replay`'s last summary in work/replay.log: the number of "items" or "events" it
 * published, or -1 when there is none. */
static inline long harness_replay_count(Harness *h, const char *what) {
    char path[512], line[1024];
    snprintf(path, sizeof path, "%s/replay.log", h->work);
    FILE *f = fopen(path, "r");
    long n = -1, items, events;
    while (f && fgets(line, sizeof line, f)) {
        char *p = strstr(line, "published ");
        if (p && sscanf(p, "published %ld items and %ld events", &items, &events) == 2)
            n = !strcmp(what, "items") ? items : events;
    }
    if (f) fclose(f);
    return n;
}

/* GET path from 127.0.0.1:port (HTTP/1.0): the whole response, malloc'd, or NULL. */
static inline char *harness_http_get(int port, const char *path) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a)) {
        if (fd >= 0) close(fd);
        return NULL;
    }
    char req[512];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\n\r\n", path);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return NULL;
    }
    size_t len = 0, cap = 65536;
    char *buf = malloc(cap);
    ssize_t r;
    while ((r = read(fd, buf + len, cap - len - 1)) > 0) {
        len += (size_t)r;
        if (cap - len < 1024) buf = realloc(buf, cap *= 2);
    }
    buf[len] = 0;
    close(fd);
    return buf;
}

/* The HTTP port of instance name's latest run (its last "http listening" log line), or 0. */
static inline int harness_http_port(Harness *h, const char *name) {
    char path[512], line[4096];
    snprintf(path, sizeof path, "%s/%s.log", h->work, name);
    FILE *f = fopen(path, "r");
    int port = 0;
    while (f && fgets(line, sizeof line, f))
        if (strstr(line, "\"http listening\"")) {
            char *p = strstr(line, "\"port\":");
            if (p) port = atoi(p + 7);
        }
    if (f) fclose(f);
    return port;
}

/* Sum of a metric family's samples (every label set) in a Prometheus text. */
static inline double harness_metric_sum(const char *text, const char *name) {
    double sum = 0;
    size_t nl = strlen(name);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (!strncmp(p, name, nl) && (p[nl] == '{' || p[nl] == ' ')) {
            const char *sp = strchr(p, ' ');
            if (sp) sum += atof(sp + 1);
        }
    return sum;
}

/* Wait until instance name has published a list for every user with news (its gauge
 * ssnad_users_pending_lists is 0), then a moment for the producer to deliver them. 0, or -1
 * after timeout_s (users may legitimately wait, e.g. for a catalogue: callers decide). */
static inline int harness_wait_lists(Harness *h, const char *name, double timeout_s) {
    sleep(1); // the gauge is refreshed every 0.5 s: a reading must include what was just committed
    for (double t0 = harness_now(); harness_now() - t0 < timeout_s; usleep(200000)) {
        int port = harness_http_port(h, name);
        char *m = port ? harness_http_get(port, "/metrics") : NULL;
        int done = m && strstr(m, "\nssnad_users_pending_lists ") &&
                   harness_metric_sum(m, "ssnad_users_pending_lists") == 0;
        free(m);
        if (done) {
            usleep(500000);
            return 0;
        }
    }
    fprintf(stderr, "harness: %s still has users waiting for a list after %.0f s\n", name,
            timeout_s);
    return -1;
}

/* Remove the work folder (after stopping the broker). */
static inline void harness_cleanup(Harness *h, int keep) {
    harness_broker(h, "stop");
    if (!keep)
        harness_sh("rm -rf %s", h->work);
    else
        fprintf(stderr, "harness: kept %s\n", h->work);
}

/* A whole file, NUL-terminated (to free()), or die naming it. */
static inline char *harness_read_file(const char *path) {
    char *data, err[512];
    size_t len;
    if (file_read_all(path, &data, &len, err, sizeof err)) harness_die("%s", err);
    return data;
}

/* The committed state of instance name's store as text (ssnad --dump-state, the users listed in
 * work/users.txt), to free(); dies when the dump fails. */
static inline char *harness_dump_state(Harness *h, const char *name) {
    char out[512];
    snprintf(out, sizeof out, "%s/%s.dump", h->work, name);
    if (harness_sh("%s/daemon/ssnad --dump-state %s/%s.db --users %s/users.txt > %s", h->build,
                   h->work, name, h->work, out))
        harness_die("dump of %s failed", name);
    return harness_read_file(out);
}

/* The lines in which two dumps differ (the first 10 printed, as label_a / label_b): the two state
 * digests of an item line are compared within float tolerance (the encoder's batches differ
 * between runs); with skip_offsets, offset lines are not compared (two consumer groups' positions
 * are their own). */
static inline long harness_compare_dumps(const char *a, const char *b, int skip_offsets,
                                         const char *label_a, const char *label_b) {
    long diffs = 0;
    while (*a || *b) {
        size_t la = strcspn(a, "\n"), lb = strcspn(b, "\n");
        char x[8192], y[8192];
        snprintf(x, sizeof x, "%.*s", (int)la, a);
        snprintf(y, sizeof y, "%.*s", (int)lb, b);
        int same = !strcmp(x, y);
        if (!same && skip_offsets && !strncmp(x, "offset ", 7) && !strncmp(y, "offset ", 7))
            same = 1;
        if (!same && !strncmp(x, "item ", 5) && !strncmp(y, "item ", 5)) {
            char *px = strstr(x, " states "), *py = strstr(y, " states ");
            double sx, qx, sy, qy;
            char hx[8], hy[8];
            if (px && py && px - x == py - y && !strncmp(x, y, (size_t)(px - x)) &&
                sscanf(px, " states %7s %lf %lf", hx, &sx, &qx) == 3 &&
                sscanf(py, " states %7s %lf %lf", hy, &sy, &qy) == 3 && !strcmp(hx, hy))
                same = fabs(sx - sy) <= 1e-2 * (1 + fabs(sx)) && fabs(qx - qy) <= 1e-3 * (1 + qx);
        }
        if (!same && diffs++ < 10)
            fprintf(stderr, "dumps differ:\n  %-10s %s\n  %-10s %s\n", label_a, x, label_b, y);
        a += la + (a[la] == '\n'), b += lb + (b[lb] == '\n');
    }
    return diffs;
}

#endif
