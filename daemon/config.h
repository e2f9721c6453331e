/* config.h - ssnad's configuration: a key = value file plus command-line overrides.
 *
 * File syntax: one `key = value` per line; whitespace around key and value is trimmed; a line
 * whose first non-blank character is '#' is a comment, as is a blank line ('#' inside a value is
 * part of the value, so passwords may hold it). A key may appear once per file. Every key is
 * defined in a table (config.c) with its type, default, allowed range and a one-line doc; an
 * unknown key is an error naming file:line. Keys under the `kafka.` prefix are not checked:
 * they go verbatim (prefix removed) to librdkafka, e.g. `kafka.security.protocol = SASL_SSL`;
 * kafka.bootstrap.servers and kafka.group.id are rejected because `brokers` and `group.id` say
 * the same thing. Precedence: defaults < file < `--set key=value` (in argument order).
 *
 * docs/daemon.md and ops/ssnad.conf.example list every key; tests/test_config.c checks the
 * example against the table.
 */
#ifndef SSNA_DAEMON_CONFIG_H
#define SSNA_DAEMON_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "daemon/log.h"

#define CONFIG_STRING_MAX   1024
#define CONFIG_VARIANTS_MAX 8

#define CONFIG_VARIANT_POP (-1) /* ConfigVariant.kind of the `pop` control arm (no model) */

/* Width (adapter output = SASRec width) of an arm from random weights that names no d=N. Online,
 * a cold arm's quality is bounded by the training steps it gets: at 64 the gru a=3 arm takes ~7x
 * the steps a second of 256 (docs/results.md, "Games at 2,000 events/s"). An init= arm's default
 * is `ssna train`'s 256, so that its default checkpoints fit it. */
#define CONFIG_VARIANT_COLD_D 64
#define CONFIG_VARIANT_INIT_D 256 /* ssna_config_default's d, `ssna train --d`'s default */

/* One A/B arm of `variants`: "kind:a=N[:weight=W][:loss=L][:lr=X][:d=N][:init=PATH]", e.g.
 * "gru:a=3", "mean:a=2:weight=0.5", "gru:a=3:loss=inbatch" (an arm that trains with another
 * objective than train.loss) or "gru:a=3:init=/srv/ssna/gru3.ckpt" (an arm that starts from an
 * offline model); or "pop[:weight=W]", the control arm: the most chosen items of the last
 * pop.window events. */
typedef struct {
    char label[64]; /* canonical "kind:a=N[:loss=L][:lr=X][:d=N]" or "pop": with each list, in
                       metrics, naming its model snapshots */
    int kind;       /* SsnaVariant (model/ssna.h), or CONFIG_VARIANT_POP */
    int layers;     /* a: encoder layers kept, 1..64 */
    double weight;  /* relative share of users, > 0 (default 1) */
    int loss;       /* SsnaLoss of "loss=L", or -1: train.loss */
    char init[512]; /* "init=PATH": an `ssna train` checkpoint to start from, or "" */
    double lr;      /* "lr=X": this arm's Adam learning rate, or 0: train.lr / train.lr_init */
    int d;          /* "d=N": adapter output = SASRec width; else CONFIG_VARIANT_COLD_D, or
                       `ssna train`'s default (CONFIG_VARIANT_INIT_D) for an init= arm */
    int d_set;      /* 1: the arm names its d (then ":d=N" ends its label) */
} ConfigVariant;

/* A parsed configuration; every field holds its default until set. */
typedef struct {
    char brokers[CONFIG_STRING_MAX];        /* brokers: librdkafka bootstrap.servers */
    char group_id[CONFIG_STRING_MAX];       /* group.id: consumer group */
    char items_group_id[CONFIG_STRING_MAX]; /* items.group.id: this member's own group, or auto */
    char topic_events[CONFIG_STRING_MAX];
    char topic_items[CONFIG_STRING_MAX];
    char topic_recommendations[CONFIG_STRING_MAX];
    char topic_dead_letter[CONFIG_STRING_MAX];
    char db_path[CONFIG_STRING_MAX];
    char model_dir[CONFIG_STRING_MAX];
    char variants_spec[CONFIG_STRING_MAX]; /* as written; parsed into variants[] */
    ConfigVariant variants[CONFIG_VARIANTS_MAX];
    int n_variants;
    long long ab_seed;
    long long ab_window;
    long long pop_window; /* pop.window: events the pop arm counts */
    int pop_exclude_seen; /* pop.exclude_seen: 1 leaves the user's own items out of pop lists */
    long long top_k;
    long long checkpoint_every_events;
    double checkpoint_every_seconds;
    long long stop_timeout_seconds; /* stop.timeout_seconds: bound on the shutdown (signals.h) */
    long long train_batch;
    double train_replay_fraction;
    double train_lr;      /* train.lr: arms from random weights */
    double train_lr_init; /* train.lr_init: arms started from init=PATH */
    long long train_seed;
    int train_center; /* train.center: 1 centres a fresh arm's item tower (ssna_center_items) */
    long long train_nice;
    long long train_threads; /* train.threads: 2 adds the pool's helper (model/pool.h) */
    int train_sched_idle;    /* train.sched: 1 idle, 0 normal */
    int train_loss_logq;     /* train.loss: 1 logq, 0 inbatch */
    char train_cgroup[CONFIG_STRING_MAX]; /* train.cgroup: a cgroup directory, or "off" */
    long long publish_threads;
    long long embed_queue_max;
    long long users_cache_max;
    int debug_verify; /* debug.verify: 1 checks in-memory state against the store at checkpoints */
    char http_listen[CONFIG_STRING_MAX]; /* "host:port", "[v6]:port", or "off" */
    long long http_timeout_ms;
    LogFormat log_format;
    LogLevel log_level;

    /* kafka.* pass-through, in first-set order; keys without the prefix; owned (config_free) */
    char **kafka_keys;
    char **kafka_values;
    size_t kafka_count;
} DaemonConfig;

typedef enum { CONFIG_STRING, CONFIG_INT, CONFIG_DOUBLE, CONFIG_CHOICE } ConfigType;

/* What the key table says about one key (for docs, --help and tests). */
typedef struct {
    const char *key;
    ConfigType type;
    const char *default_value; /* as it would be written in the file */
    const char *range;         /* human-readable allowed values */
    const char *doc;
} ConfigKeyInfo;

/* Fill cfg with every default (always valid). */
void config_init(DaemonConfig *cfg);
/* Free the kafka.* pass-through list; cfg can be config_init'ed again. */
void config_free(DaemonConfig *cfg);
/* Set one key from its text form, with type and range checks. origin names where the value came
 * from ("ssnad.conf:12", "--set") and prefixes the error. 0, or -1 with err. */
int config_set(DaemonConfig *cfg, const char *key, const char *value, const char *origin, char *err,
               size_t errlen);
/* Read a key = value file on top of cfg. 0, or -1 with err "path:line: ...". */
int config_load_file(DaemonConfig *cfg, const char *path, char *err, size_t errlen);
/* Parse ssnad's arguments (argv[0] skipped): `--config FILE` (at most once, read first) and any
 * number of `--set key=value` (applied after the file, in order); both also as --opt=VALUE.
 * Starts from config_init. 0, or -1 with err; cfg needs config_free either way. */
int config_load_args(DaemonConfig *cfg, int argc, char **argv, char *err, size_t errlen);

/* Typed getters by key name, for code that is driven by key names (e.g. a generic dump).
 * Return 0 and the value, or -1 when the key is unknown or of another type. */
int config_get_string(const DaemonConfig *cfg, const char *key, const char **out);
int config_get_int(const DaemonConfig *cfg, const char *key, long long *out);
int config_get_double(const DaemonConfig *cfg, const char *key, double *out);

/* Number of kafka.* pass-through entries, and entry i (key without "kafka."). */
size_t config_kafka_count(const DaemonConfig *cfg);
int config_kafka_entry(const DaemonConfig *cfg, size_t i, const char **key, const char **value);

/* Parse a variants list ("gru:a=3,mean:a=3") into out[0..max); *n set. 0, or -1 with err naming
 * the item. Labels must be distinct. */
int config_parse_variants(const char *spec, ConfigVariant *out, int max, int *n, char *err,
                          size_t errlen);

/* The key table: count and entry i (0 <= i < count). */
size_t config_key_count(void);
const ConfigKeyInfo *config_key_info(size_t i);
/* Print every key with its default, allowed values and doc, for `ssnad --help-config`. */
void config_print_reference(FILE *out);
/* Write the effective configuration as a loadable key = value file; kafka.* values of keys that
 * look secret (password, secret, key) are written as "<redacted>". */
void config_write(const DaemonConfig *cfg, FILE *out);

#endif
