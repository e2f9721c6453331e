/* config.c - see config.h. */
#include "daemon/config.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/http.h"
#include "model/errmsg.h"
#include "model/numparse.h"
#include "model/ssna.h"

#define KAFKA_PREFIX     "kafka."
#define KAFKA_PREFIX_LEN (sizeof KAFKA_PREFIX - 1)

/* One row of the key table. STRING keys are copied into the char[CONFIG_STRING_MAX] at offset and
 * then handed to apply (if any) for a deeper check; INT and DOUBLE keys are range-checked against
 * [min, max]; CHOICE keys are entirely apply's business and show() renders them back. */
typedef struct {
    ConfigKeyInfo info;
    size_t offset;
    double min, max;
    int (*apply)(DaemonConfig *cfg, const char *value, char *err, size_t errlen);
    const char *(*show)(const DaemonConfig *cfg);
} ConfigKey;

static int apply_variants(DaemonConfig *cfg, const char *value, char *err, size_t errlen) {
    ConfigVariant parsed[CONFIG_VARIANTS_MAX];
    int n;
    /* parse aside so a bad value leaves the previous list whole */
    if (config_parse_variants(value, parsed, CONFIG_VARIANTS_MAX, &n, err, errlen) < 0) return -1;
    memcpy(cfg->variants, parsed, sizeof parsed);
    cfg->n_variants = n;
    return 0;
}

static int apply_listen(DaemonConfig *cfg, const char *value, char *err, size_t errlen) {
    char host[256];
    int port;
    if (!strcmp(value, "off")) return 0;
    return http_parse_listen(value, host, sizeof host, &port, err, errlen);
}

static int apply_log_format(DaemonConfig *cfg, const char *value, char *err, size_t errlen) {
    if (log_format_parse(value, &cfg->log_format) == 0) return 0;
    return errmsg_fail(err, errlen, "'%s' is not json or text", value);
}

static int apply_log_level(DaemonConfig *cfg, const char *value, char *err, size_t errlen) {
    if (log_level_parse(value, &cfg->log_level) == 0) return 0;
    return errmsg_fail(err, errlen, "'%s' is not debug, info, warn or error", value);
}

static int apply_train_sched(DaemonConfig *cfg, const char *value, char *err, size_t errlen) {
    if (!strcmp(value, "idle") || !strcmp(value, "normal")) {
        cfg->train_sched_idle = !strcmp(value, "idle");
        return 0;
    }
    return errmsg_fail(err, errlen, "'%s' is not idle or normal", value);
}

static int apply_train_cgroup(DaemonConfig *cfg, const char *value, char *err, size_t errlen) {
    (void)cfg;
    if (!strcmp(value, "off") || value[0] == '/') return 0;
    return errmsg_fail(err, errlen, "'%s' is not off or an absolute path (a cgroup directory)",
                       value);
}

static int parse_on_off(const char *value, int *out, char *err, size_t errlen) {
    if (strcmp(value, "on") && strcmp(value, "off"))
        return errmsg_fail(err, errlen, "'%s' is not on or off", value);
    *out = !strcmp(value, "on");
    return 0;
}

static int apply_debug_verify(DaemonConfig *cfg, const char *value, char *err, size_t errlen) {
    return parse_on_off(value, &cfg->debug_verify, err, errlen);
}

static int apply_pop_exclude_seen(DaemonConfig *cfg, const char *value, char *err, size_t errlen) {
    return parse_on_off(value, &cfg->pop_exclude_seen, err, errlen);
}

static const char *show_pop_exclude_seen(const DaemonConfig *cfg) {
    return cfg->pop_exclude_seen ? "on" : "off";
}

static int apply_train_center(DaemonConfig *cfg, const char *value, char *err, size_t errlen) {
    return parse_on_off(value, &cfg->train_center, err, errlen);
}

static const char *show_train_center(const DaemonConfig *cfg) {
    return cfg->train_center ? "on" : "off";
}

static const char *show_debug_verify(const DaemonConfig *cfg) {
    return cfg->debug_verify ? "on" : "off";
}

static int apply_train_loss(DaemonConfig *cfg, const char *value, char *err, size_t errlen) {
    if (!strcmp(value, "logq") || !strcmp(value, "inbatch")) {
        cfg->train_loss_logq = !strcmp(value, "logq");
        return 0;
    }
    return errmsg_fail(err, errlen, "'%s' is not logq or inbatch", value);
}

static const char *show_train_loss(const DaemonConfig *cfg) {
    return cfg->train_loss_logq ? "logq" : "inbatch";
}

static const char *show_train_sched(const DaemonConfig *cfg) {
    return cfg->train_sched_idle ? "idle" : "normal";
}

static const char *show_log_format(const DaemonConfig *cfg) {
    return cfg->log_format == LOG_FORMAT_JSON ? "json" : "text";
}

static const char *show_log_level(const DaemonConfig *cfg) {
    return log_level_name(cfg->log_level);
}

#define STR_KEY(name, field, dflt, apply_fn, doc)                                                  \
    {                                                                                              \
        {name, CONFIG_STRING, dflt, "non-empty text", doc}, offsetof(DaemonConfig, field), 0, 0,   \
            apply_fn, NULL                                                                         \
    }
#define NUM_KEY(name, type, field, dflt, lo, hi, range, doc)                                       \
    { {name, type, dflt, range, doc}, offsetof(DaemonConfig, field), lo, hi, NULL, NULL }
#define CHOICE_KEY(name, dflt, range, apply_fn, show_fn, doc)                                      \
    { {name, CONFIG_CHOICE, dflt, range, doc}, 0, 0, 0, apply_fn, show_fn }

static const ConfigKey config_keys[] = {
    STR_KEY("brokers", brokers, "127.0.0.1:9092", NULL,
            "Kafka bootstrap servers (librdkafka bootstrap.servers), comma-separated host:port"),
    STR_KEY("group.id", group_id, "ssnad", NULL,
            "consumer group; every ssnad of one deployment shares it"),
    STR_KEY("items.group.id", items_group_id, "auto", NULL,
            "consumer group of this member alone that reads the whole items topic (every member "
            "holds every item); auto: <group.id>.items.<hash of host name and db.path>. Must "
            "differ between members and stay the same across restarts"),
    STR_KEY("topics.events", topic_events, "events", NULL, "input topic of Interaction messages"),
    STR_KEY("topics.items", topic_items, "items", NULL, "input topic of Item messages"),
    STR_KEY("topics.recommendations", topic_recommendations, "recommendations", NULL,
            "output topic of Recommendations, keyed by user id, log-compacted (upserts)"),
    STR_KEY("topics.dead_letter", topic_dead_letter, "dead-letter", NULL,
            "where rejected input goes, with the reason"),
    STR_KEY("db.path", db_path, "/var/lib/ssna/db", NULL,
            "LMDB directory: items, users, checkpoints and consumer offsets; model snapshots in "
            "its models/ subdirectory"),
    STR_KEY("model.dir", model_dir, "/usr/local/share/ssna/minilm-l6", NULL,
            "frozen encoder folder (Hugging Face layout: config.json, model.safetensors, "
            "tokenizer.json)"),
    STR_KEY("variants", variants_spec, "gru:a=3,mean:a=3", apply_variants,
            "A/B arms, comma list of kind:a=N[:weight=W][:loss=L][:lr=X][:d=N][:init=PATH]; kind "
            "is gru, mean, weighted, tmoe, tmlp or id; d is the adapter output = SASRec width "
            "(default 64 from random weights, where it learns faster than the offline 256; an "
            "init= arm defaults to ssna train's 256); or pop[:weight=W], the most chosen items "
            "of the last pop.window events (the control: list it first to compare every arm "
            "with it)"),
    NUM_KEY("ab.seed", CONFIG_INT, ab_seed, "1", 0, 9.007199254740992e15, "0 .. 2^53",
            "seed of the user -> variant hash; changing it reshuffles users"),
    NUM_KEY("ab.window", CONFIG_INT, ab_window, "10000", 100, 1e7, "100 .. 1e7",
            "scored lists per variant in the A/B's sliding window (/abtest, *_window gauges)"),
    NUM_KEY("pop.window", CONFIG_INT, pop_window, "10000", 1, 1e8, "1 .. 1e8",
            "events the pop arm counts (the most recent ones; saved in each checkpoint)"),
    CHOICE_KEY("pop.exclude_seen", "on", "on | off", apply_pop_exclude_seen, show_pop_exclude_seen,
               "on: the pop arm leaves a user's own items out of the list, as the model arms do"),
    NUM_KEY("top_k", CONFIG_INT, top_k, "10", 1, 1000, "1 .. 1000",
            "length of each published list and the k of online hit rate / NDCG"),
    NUM_KEY("checkpoint.every_events", CONFIG_INT, checkpoint_every_events, "10000", 1, 1e9,
            "1 .. 1e9", "commit a checkpoint after this many applied events"),
    NUM_KEY("checkpoint.every_seconds", CONFIG_DOUBLE, checkpoint_every_seconds, "30", 0.1, 86400,
            "0.1 .. 86400", "... or after this many seconds, whichever comes first"),
    NUM_KEY("stop.timeout_seconds", CONFIG_INT, stop_timeout_seconds, "60", 1, 3600, "1 .. 3600",
            "after a stop signal, the longest shutdown may take; then ssnad exits 5 naming the "
            "step it was stuck in (the last checkpoint stands)"),
    NUM_KEY("train.batch", CONFIG_INT, train_batch, "64", 1, 4096, "1 .. 4096",
            "sequences per training step"),
    NUM_KEY("train.replay_fraction", CONFIG_DOUBLE, train_replay_fraction, "0.5", 0, 0.95,
            "0 .. 0.95", "share of each batch sampled from older sequences (against forgetting)"),
    NUM_KEY("train.lr", CONFIG_DOUBLE, train_lr, "0.002", 1e-7, 1, "1e-7 .. 1",
            "Adam learning rate of arms that start from random weights"),
    NUM_KEY("train.lr_init", CONFIG_DOUBLE, train_lr_init, "0.0003", 1e-7, 1, "1e-7 .. 1",
            "Adam learning rate of arms started from an offline model (init=): a smaller step "
            "keeps what it learnt"),
    CHOICE_KEY("train.center", "on", "on | off", apply_train_center, show_train_center,
               "on: an arm from random weights centres its item tower on the catalogue before its "
               "first step (whitening bias = the mean item state, a GRU's biases 0), so its first "
               "lists tell items apart; off: UniSRec's and torch's init"),
    NUM_KEY("train.seed", CONFIG_INT, train_seed, "42", 0, 9.007199254740992e15, "0 .. 2^53",
            "seed of parameter initialisation, dropout and replay sampling"),
    CHOICE_KEY("train.loss", "logq", "logq | inbatch", apply_train_loss, show_train_loss,
               "training objective of the SSNA arms: in-batch negatives corrected by each "
               "item's share of the targets trained on so far (logq), or uncorrected (inbatch, "
               "which pushes popular items down; `ssna train --loss`, docs/results.md)"),
    CHOICE_KEY("train.sched", "idle", "idle | normal", apply_train_sched, show_train_sched,
               "scheduling of the training thread: idle (SCHED_IDLE) runs it only on cycles no "
               "other thread of its scheduling group wants (see train.cgroup), normal at "
               "train.nice"),
    NUM_KEY("train.nice", CONFIG_INT, train_nice, "19", 0, 19, "0 .. 19",
            "niceness of the training thread when train.sched = normal"),
    NUM_KEY("train.threads", CONFIG_INT, train_threads, "1", 1, 2, "1 .. 2",
            "threads of a training step: 2 adds a helper at the trainer's priority (and "
            "cgroup) that takes half of each step's loops and products when a core is idle"),
    STR_KEY("train.cgroup", train_cgroup, "off", apply_train_cgroup,
            "cgroup directory the training thread moves into (e.g. one with cpu.idle = 1), so "
            "its CPU time stops counting against the daemon's own group; off keeps it with the "
            "other threads"),
    NUM_KEY("publish.threads", CONFIG_INT, publish_threads, "2", 1, 2, "1 .. 2",
            "threads computing lists: 2 splits each batch of users over two cores"),
    NUM_KEY("embed.queue_max", CONFIG_INT, embed_queue_max, "10000", 1, 1e7, "1 .. 1e7",
            "bound of the queue of item texts waiting for the encoder"),
    NUM_KEY("users.cache_max", CONFIG_INT, users_cache_max, "1000000", 16, 1e9, "16 .. 1e9",
            "users held in memory (about 300 bytes each); beyond it the least recently used user "
            "without a pending list is evicted and read from the store on its next event (its "
            "last list is forgotten: that event is not scored in the online metrics)"),
    STR_KEY("http.listen", http_listen, "127.0.0.1:8080", apply_listen,
            "address of / (dashboard), /healthz, /metrics, /abtest, /recommend: host:port, "
            "[v6]:port, or off"),
    NUM_KEY("http.timeout_ms", CONFIG_INT, http_timeout_ms, "5000", 10, 600000, "10 .. 600000",
            "a client must send its whole request within this time"),
    CHOICE_KEY("debug.verify", "off", "on | off", apply_debug_verify, show_debug_verify,
               "at every checkpoint, check each in-memory user sequence against the store and "
               "stop (status 3) on the first difference; costs a store read per cached user, for "
               "tests and soak runs"),
    CHOICE_KEY("log.format", "json", "json | text", apply_log_format, show_log_format,
               "one JSON object per line, or plain text"),
    CHOICE_KEY("log.level", "info", "debug | info | warn | error", apply_log_level, show_log_level,
               "least severe level written"),
};

#define CONFIG_KEY_COUNT (sizeof config_keys / sizeof config_keys[0])

static const ConfigKey *find_key(const char *key) {
    for (size_t i = 0; i < CONFIG_KEY_COUNT; i++)
        if (!strcmp(config_keys[i].info.key, key)) return &config_keys[i];
    return NULL;
}

size_t config_key_count(void) {
    return CONFIG_KEY_COUNT;
}

const ConfigKeyInfo *config_key_info(size_t i) {
    return i < CONFIG_KEY_COUNT ? &config_keys[i].info : NULL;
}

void config_init(DaemonConfig *cfg) {
    char err[256];
    memset(cfg, 0, sizeof *cfg);
    /* defaults go through the same checks as user values (tests/test_config.c sees them pass) */
    for (size_t i = 0; i < CONFIG_KEY_COUNT; i++)
        (void)config_set(cfg, config_keys[i].info.key, config_keys[i].info.default_value, "default",
                         err, sizeof err);
}

void config_free(DaemonConfig *cfg) {
    for (size_t i = 0; i < cfg->kafka_count; i++) {
        free(cfg->kafka_keys[i]);
        free(cfg->kafka_values[i]);
    }
    free(cfg->kafka_keys);
    free(cfg->kafka_values);
    cfg->kafka_keys = cfg->kafka_values = NULL;
    cfg->kafka_count = 0;
}

static int set_kafka(DaemonConfig *cfg, const char *key, const char *value, const char *origin,
                     char *err, size_t errlen) {
    const char *sub = key + KAFKA_PREFIX_LEN;
    if (!*sub) {
        return errmsg_fail(err, errlen, "%s: empty key after 'kafka.'", origin);
    }
    if (!strcmp(sub, "bootstrap.servers") || !strcmp(sub, "group.id")) {
        return errmsg_fail(err, errlen, "%s: set '%s' with the key '%s' instead", origin, key,
                           !strcmp(sub, "group.id") ? "group.id" : "brokers");
    }
    char *copy = strdup(value);
    if (!copy) goto oom;
    for (size_t i = 0; i < cfg->kafka_count; i++) {
        if (!strcmp(cfg->kafka_keys[i], sub)) {
            free(cfg->kafka_values[i]);
            cfg->kafka_values[i] = copy;
            return 0;
        }
    }
    char *key_copy = strdup(sub);
    char **keys = realloc(cfg->kafka_keys, (cfg->kafka_count + 1) * sizeof *keys);
    if (keys) cfg->kafka_keys = keys;
    char **values = realloc(cfg->kafka_values, (cfg->kafka_count + 1) * sizeof *values);
    if (values) cfg->kafka_values = values;
    if (!key_copy || !keys || !values) {
        free(key_copy);
        free(copy);
        goto oom;
    }
    cfg->kafka_keys[cfg->kafka_count] = key_copy;
    cfg->kafka_values[cfg->kafka_count] = copy;
    cfg->kafka_count++;
    return 0;
oom:
    return errmsg_fail(err, errlen, "%s: out of memory", origin);
}

static int set_number(DaemonConfig *cfg, const ConfigKey *k, const char *value, const char *origin,
                      char *err, size_t errlen) {
    int rc;
    if (k->info.type == CONFIG_INT) {
        long v; // 64-bit here (Linux LP64): every integer key's range fits
        rc = numparse_long(value, (long)k->min, (long)k->max, &v);
        if (!rc) *(long long *)((char *)cfg + k->offset) = v;
    } else {
        rc = numparse_double(value, k->min, k->max, (double *)((char *)cfg + k->offset));
    }
    if (!rc) return 0;
    if (rc == NUMPARSE_SYNTAX) {
        return errmsg_fail(err, errlen, "%s: %s: '%s' is not %s", origin, k->info.key, value,
                           k->info.type == CONFIG_INT ? "an integer" : "a finite number");
    }
    return errmsg_fail(err, errlen, "%s: %s: %s is out of range (%s)", origin, k->info.key, value,
                       k->info.range);
}

int config_set(DaemonConfig *cfg, const char *key, const char *value, const char *origin, char *err,
               size_t errlen) {
    char why[256];
    if (!strncmp(key, KAFKA_PREFIX, KAFKA_PREFIX_LEN))
        return set_kafka(cfg, key, value, origin, err, errlen);
    const ConfigKey *k = find_key(key);
    if (!k) {
        return errmsg_fail(err, errlen, "%s: unknown key '%s'", origin, key);
    }
    switch (k->info.type) {
    case CONFIG_INT:
    case CONFIG_DOUBLE:
        return set_number(cfg, k, value, origin, err, errlen);
    case CONFIG_STRING: {
        size_t len = strlen(value);
        if (len == 0 || len >= CONFIG_STRING_MAX) {
            return errmsg_fail(err, errlen, "%s: %s: value must be 1 to %d bytes", origin, key,
                               CONFIG_STRING_MAX - 1);
        }
        if (k->apply && k->apply(cfg, value, why, sizeof why) < 0) break;
        memcpy((char *)cfg + k->offset, value, len + 1);
        return 0;
    }
    case CONFIG_CHOICE:
        if (k->apply(cfg, value, why, sizeof why) < 0) break;
        return 0;
    }
    return errmsg_fail(err, errlen, "%s: %s: %s", origin, key, why);
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = 0;
    return s;
}

/* Keys seen so far in one file, to reject a repeated key with both line numbers. */
typedef struct {
    char **keys;
    long *lines;
    size_t n;
} SeenKeys;

static long seen_line(const SeenKeys *seen, const char *key) {
    for (size_t i = 0; i < seen->n; i++)
        if (!strcmp(seen->keys[i], key)) return seen->lines[i];
    return 0;
}

static int seen_add(SeenKeys *seen, const char *key, long line) {
    char *copy = strdup(key);
    char **keys = realloc(seen->keys, (seen->n + 1) * sizeof *keys);
    if (keys) seen->keys = keys;
    long *lines = realloc(seen->lines, (seen->n + 1) * sizeof *lines);
    if (lines) seen->lines = lines;
    if (!copy || !keys || !lines) {
        free(copy);
        return -1;
    }
    seen->keys[seen->n] = copy;
    seen->lines[seen->n++] = line;
    return 0;
}

static void seen_free(SeenKeys *seen) {
    for (size_t i = 0; i < seen->n; i++) free(seen->keys[i]);
    free(seen->keys);
    free(seen->lines);
}

static int valid_key(const char *key) {
    if (!*key) return 0;
    for (const char *p = key; *p; p++)
        if (!(('a' <= *p && *p <= 'z') || ('A' <= *p && *p <= 'Z') || ('0' <= *p && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-'))
            return 0;
    return 1;
}

/* One non-comment line "key = value" of a file. */
static int load_line(DaemonConfig *cfg, SeenKeys *seen, char *text, const char *origin, long line,
                     char *err, size_t errlen) {
    char *eq = strchr(text, '=');
    if (!eq) {
        return errmsg_fail(err, errlen, "%s: expected 'key = value'", origin);
    }
    *eq = 0;
    char *key = trim(text), *value = trim(eq + 1);
    if (!valid_key(key)) {
        return errmsg_fail(err, errlen, "%s: bad key '%.64s' (letters, digits, '.', '_', '-')",
                           origin, key);
    }
    long first = seen_line(seen, key);
    if (first) {
        return errmsg_fail(err, errlen, "%s: '%s' already set on line %ld", origin, key, first);
    }
    if (config_set(cfg, key, value, origin, err, errlen) < 0) return -1;
    if (seen_add(seen, key, line) < 0) {
        return errmsg_fail(err, errlen, "%s: out of memory", origin);
    }
    return 0;
}

int config_load_file(DaemonConfig *cfg, const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "r");
    if (!f) {
        return errmsg_fail(err, errlen, "%s: %s", path, strerror(errno));
    }
    SeenKeys seen = {0};
    char *buf = NULL, origin[CONFIG_STRING_MAX + 32];
    size_t cap = 0;
    ssize_t got;
    long line = 0;
    int rc = 0;
    while (rc == 0 && (got = getline(&buf, &cap, f)) >= 0) {
        line++;
        snprintf(origin, sizeof origin, "%s:%ld", path, line);
        if ((size_t)got != strlen(buf)) {
            snprintf(err, errlen, "%s: NUL byte in line", origin);
            rc = -1;
            break;
        }
        char *text = buf;
        if (line == 1 && !strncmp(text, "\xef\xbb\xbf", 3)) text += 3; /* UTF-8 byte order mark */
        text = trim(text);
        if (!*text || *text == '#') continue;
        rc = load_line(cfg, &seen, text, origin, line, err, errlen);
    }
    if (rc == 0 && ferror(f)) {
        snprintf(err, errlen, "%s: read error after line %ld", path, line);
        rc = -1;
    }
    free(buf);
    seen_free(&seen);
    fclose(f);
    return rc;
}

/* The value of option `name` at argv[*i]: "--name=V" or "--name V" (advancing *i). NULL if
 * argv[*i] is not this option; *missing set when the value is absent. */
static const char *option_value(int argc, char **argv, int *i, const char *name, int *missing) {
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n)) return NULL;
    if (argv[*i][n] == '=') return argv[*i] + n + 1;
    if (argv[*i][n]) return NULL;
    if (*i + 1 >= argc) {
        *missing = 1;
        return NULL;
    }
    return argv[++*i];
}

int config_load_args(DaemonConfig *cfg, int argc, char **argv, char *err, size_t errlen) {
    const char *path = NULL;
    int rc = 0;
    config_init(cfg);
    /* first pass: find the file, check every argument's form */
    for (int i = 1; i < argc; i++) {
        int missing = 0;
        const char *v;
        if ((v = option_value(argc, argv, &i, "--config", &missing))) {
            if (path) {
                return errmsg_fail(err, errlen, "argument %d: --config given twice", i);
            }
            path = v;
        } else if ((v = option_value(argc, argv, &i, "--set", &missing))) {
            if (!strchr(v, '=')) {
                return errmsg_fail(err, errlen, "argument %d: --set needs key=value, got '%s'", i,
                                   v);
            }
        } else {
            return errmsg_fail(err, errlen, "argument %d: %s '%s'", i,
                               missing ? "missing value after" : "unknown option", argv[i]);
        }
    }
    if (path && config_load_file(cfg, path, err, errlen) < 0) return -1;
    for (int i = 1; i < argc && rc == 0; i++) {
        int missing = 0;
        const char *v = option_value(argc, argv, &i, "--set", &missing);
        if (!v) {
            option_value(argc, argv, &i, "--config", &missing); /* skip its value */
            continue;
        }
        char key[CONFIG_STRING_MAX], origin[64];
        size_t klen = (size_t)(strchr(v, '=') - v);
        if (klen >= sizeof key) klen = sizeof key - 1;
        memcpy(key, v, klen);
        key[klen] = 0;
        char *k = trim(key);
        snprintf(origin, sizeof origin, "argument %d (--set)", i);
        char *value = strdup(strchr(v, '=') + 1);
        if (!value) {
            return errmsg_fail(err, errlen, "%s: out of memory", origin);
        }
        rc = config_set(cfg, k, trim(value), origin, err, errlen);
        free(value);
    }
    return rc;
}

static const ConfigKey *typed_key(const char *key, ConfigType type) {
    const ConfigKey *k = find_key(key);
    return k && k->info.type == type ? k : NULL;
}

int config_get_string(const DaemonConfig *cfg, const char *key, const char **out) {
    const ConfigKey *k = find_key(key);
    if (!k || (k->info.type != CONFIG_STRING && k->info.type != CONFIG_CHOICE)) return -1;
    *out = k->info.type == CONFIG_CHOICE ? k->show(cfg) : (const char *)cfg + k->offset;
    return 0;
}

int config_get_int(const DaemonConfig *cfg, const char *key, long long *out) {
    const ConfigKey *k = typed_key(key, CONFIG_INT);
    if (!k) return -1;
    *out = *(const long long *)((const char *)cfg + k->offset);
    return 0;
}

int config_get_double(const DaemonConfig *cfg, const char *key, double *out) {
    const ConfigKey *k = typed_key(key, CONFIG_DOUBLE);
    if (!k) return -1;
    *out = *(const double *)((const char *)cfg + k->offset);
    return 0;
}

size_t config_kafka_count(const DaemonConfig *cfg) {
    return cfg->kafka_count;
}

int config_kafka_entry(const DaemonConfig *cfg, size_t i, const char **key, const char **value) {
    if (i >= cfg->kafka_count) return -1;
    *key = cfg->kafka_keys[i];
    *value = cfg->kafka_values[i];
    return 0;
}

/* Options of one variant item after its kind: "a=N", "weight=W", "loss=L", "lr=X", "d=N" and
 * "init=PATH", ':'-separated (so PATH cannot hold ':' or ','). */
static int parse_variant_options(char *opts, ConfigVariant *v, const char *item, char *err,
                                 size_t errlen) {
    for (char *save = NULL, *opt = strtok_r(opts, ":", &save); opt;
         opt = strtok_r(NULL, ":", &save)) {
        if (!strncmp(opt, "a=", 2)) {
            if (numparse_int(opt + 2, 1, 64, &v->layers)) {
                return errmsg_fail(err, errlen, "variant '%s': a must be an integer 1 .. 64", item);
            }
        } else if (!strncmp(opt, "weight=", 7)) {
            if (numparse_double(opt + 7, 0x1p-1022, 1e6, &v->weight)) {
                return errmsg_fail(err, errlen, "variant '%s': weight must be a number in (0, 1e6]",
                                   item);
            }
        } else if (!strncmp(opt, "lr=", 3)) {
            if (numparse_double(opt + 3, 1e-7, 1, &v->lr)) {
                return errmsg_fail(err, errlen, "variant '%s': lr must be a number in 1e-7 .. 1",
                                   item);
            }
        } else if (!strncmp(opt, "d=", 2)) { // SASRec's 2 heads split it; lists score d <= 4096
            v->d_set = 1;
            if (numparse_int(opt + 2, 2, 4096, &v->d) || v->d % 2) {
                return errmsg_fail(err, errlen, "variant '%s': d must be an even integer 2 .. 4096",
                                   item);
            }
        } else if (!strncmp(opt, "init=", 5)) {
            if (!opt[5] || strlen(opt + 5) >= sizeof v->init) {
                return errmsg_fail(err, errlen,
                                   "variant '%s': init needs a path (shorter than %zu bytes)", item,
                                   sizeof v->init);
            }
            snprintf(v->init, sizeof v->init, "%s", opt + 5);
        } else if (!strncmp(opt, "loss=", 5)) {
            if (strcmp(opt + 5, "logq") && strcmp(opt + 5, "inbatch")) {
                return errmsg_fail(err, errlen, "variant '%s': loss must be logq or inbatch", item);
            }
            v->loss = ssna_loss_parse(opt + 5);
        } else {
            snprintf(
                err, errlen,
                "variant '%s': unknown option '%s' (a=N, weight=W, loss=L, lr=X, d=N, init=PATH)",
                item, opt);
            return -1;
        }
    }
    return 0;
}

static int parse_variant(char *item, ConfigVariant *v, char *err, size_t errlen) {
    char original[128];
    snprintf(original, sizeof original, "%s", item);
    char *colon = strchr(item, ':');
    if (colon) *colon = 0;
    if (!strcmp(item, "pop")) { // the control arm: no model, so only a weight
        *v = (ConfigVariant){.kind = CONFIG_VARIANT_POP, .layers = 0, .weight = 1, .loss = -1};
        snprintf(v->label, sizeof v->label, "pop");
        if (colon && parse_variant_options(colon + 1, v, original, err, errlen) < 0) return -1;
        if (v->layers || v->loss >= 0 || v->init[0] || v->lr > 0 || v->d_set)
            return errmsg_fail(err, errlen, "variant '%s': pop takes only weight=W", original);
        v->layers = 1; // no encoder layers of its own; 1 keeps the max over arms meaningful
        return 0;
    }
    int kind = ssna_variant_parse(item);
    if (kind < 0) {
        snprintf(err, errlen,
                 "variant '%s': unknown kind '%s' (gru, mean, weighted, tmoe, tmlp, id, pop)",
                 original, item);
        return -1;
    }
    v->kind = kind;
    /* the paper's SSNA keeps 3 layers; the single-adapter baselines use the top one */
    v->layers =
        kind == SSNA_VARIANT_TMOE || kind == SSNA_VARIANT_TMLP || kind == SSNA_VARIANT_ID ? 1 : 3;
    v->weight = 1;
    v->loss = -1;
    v->lr = 0;
    v->d = 0, v->d_set = 0;
    v->init[0] = 0;
    if (colon && parse_variant_options(colon + 1, v, original, err, errlen) < 0) return -1;
    if (!v->d_set) v->d = v->init[0] ? CONFIG_VARIANT_INIT_D : CONFIG_VARIANT_COLD_D;
    if (kind == SSNA_VARIANT_ID)
        snprintf(v->label, sizeof v->label, "id");
    else
        snprintf(v->label, sizeof v->label, "%s:a=%d", item, v->layers);
    if (v->loss >= 0) { // two arms may differ only by their objective: the label tells them apart
        size_t n = strlen(v->label);
        snprintf(v->label + n, sizeof v->label - n, ":loss=%s", ssna_loss_name(v->loss));
    }
    if (v->lr > 0) { // and by their learning rate
        size_t n = strlen(v->label);
        snprintf(v->label + n, sizeof v->label - n, ":lr=%g", v->lr);
    }
    // and by their width, last: ssnad_snapshot_load cuts ":d=N" off to find a model saved
    // before arms named it
    if (v->d_set) {
        size_t n = strlen(v->label);
        snprintf(v->label + n, sizeof v->label - n, ":d=%d", v->d);
    }
    return 0;
}

int config_parse_variants(const char *spec, ConfigVariant *out, int max, int *n, char *err,
                          size_t errlen) {
    char *copy = strdup(spec);
    int count = 0, rc = 0;
    if (!copy) {
        return errmsg_fail(err, errlen, "out of memory");
    }
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item && rc == 0;
         item = strtok_r(NULL, ",", &save)) {
        item = trim(item);
        if (count == max) {
            snprintf(err, errlen, "more than %d variants", max);
            rc = -1;
        } else if (parse_variant(item, &out[count], err, errlen) < 0) {
            rc = -1;
        } else {
            for (int j = 0; j < count && rc == 0; j++) {
                if (!strcmp(out[j].label, out[count].label)) {
                    snprintf(err, errlen, "variant '%s' listed twice", out[count].label);
                    rc = -1;
                }
            }
            count++;
        }
    }
    free(copy);
    if (rc == 0 && count == 0) {
        snprintf(err, errlen, "no variant in '%s'", spec);
        rc = -1;
    }
    int models = 0;
    for (int j = 0; j < count; j++) models += out[j].kind != CONFIG_VARIANT_POP;
    if (rc == 0 && !models) // the daemon exists to serve a model; pop is its baseline
        rc = errmsg_fail(err, errlen, "variants '%s': pop needs a model arm beside it", spec);
    if (rc == 0) *n = count;
    return rc;
}

void config_print_reference(FILE *out) {
    for (size_t i = 0; i < CONFIG_KEY_COUNT; i++) {
        const ConfigKeyInfo *k = &config_keys[i].info;
        fprintf(out, "%s = %s\n    %s (%s)\n", k->key, k->default_value, k->doc, k->range);
    }
    fprintf(out, "kafka.<name> = <value>\n    passed verbatim to librdkafka as <name>\n");
}

/* kafka.* keys whose values must not reach a log (sasl.password, ssl.key.password, ...). */
static int secret_key(const char *key) {
    return strstr(key, "password") || strstr(key, "secret") || strstr(key, ".key") ||
           strstr(key, "token");
}

void config_write(const DaemonConfig *cfg, FILE *out) {
    for (size_t i = 0; i < CONFIG_KEY_COUNT; i++) {
        const ConfigKey *k = &config_keys[i];
        const char *s;
        long long iv;
        double dv;
        if (config_get_string(cfg, k->info.key, &s) == 0)
            fprintf(out, "%s = %s\n", k->info.key, s);
        else if (config_get_int(cfg, k->info.key, &iv) == 0)
            fprintf(out, "%s = %lld\n", k->info.key, iv);
        else if (config_get_double(cfg, k->info.key, &dv) == 0)
            fprintf(out, "%s = %.15g\n", k->info.key, dv); /* re-reads to the same double */
    }
    for (size_t i = 0; i < cfg->kafka_count; i++)
        fprintf(out, "%s%s = %s\n", KAFKA_PREFIX, cfg->kafka_keys[i],
                secret_key(cfg->kafka_keys[i]) ? "<redacted>" : cfg->kafka_values[i]);
}
