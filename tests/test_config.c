/* test_config.c - daemon/config: defaults, file syntax, errors with file:line, overrides,
 * variants, kafka pass-through, and that ops/ssnad.conf.example and docs/daemon.md document
 * every key with its real default. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "daemon/config.h"
#include "model/ssna.h"

static char tmp_path[256];

/* Write text to a fresh temporary file; returns its path (static buffer). */
static const char *write_temp(const char *text) {
    snprintf(tmp_path, sizeof tmp_path, "/tmp/ssna_test_config_XXXXXX");
    int fd = mkstemp(tmp_path);
    if (fd < 0) return NULL;
    size_t n = strlen(text);
    CHECK(write(fd, text, n) == (ssize_t)n);
    close(fd);
    return tmp_path;
}

/* Load text as a config file on top of the defaults; returns the rc, err filled. */
static int load_text(DaemonConfig *cfg, const char *text, char *err, size_t errlen) {
    config_init(cfg);
    const char *path = write_temp(text);
    if (!path) return -2;
    int rc = config_load_file(cfg, path, err, errlen);
    unlink(path);
    return rc;
}

static void test_defaults(void) {
    DaemonConfig cfg;
    char err[512];
    config_init(&cfg);
    for (size_t i = 0; i < config_key_count(); i++) {
        const ConfigKeyInfo *k = config_key_info(i);
        CHECK_MSG(config_set(&cfg, k->key, k->default_value, "t", err, sizeof err) == 0,
                  "default of %s rejected: %s", k->key, err);
        CHECK_MSG(k->doc && *k->doc && k->range && *k->range, "%s undocumented", k->key);
    }
    CHECK(config_key_info(config_key_count()) == NULL);
    CHECK(!strcmp(cfg.brokers, "127.0.0.1:9092"));
    CHECK(!strcmp(cfg.http_listen, "127.0.0.1:8080"));
    CHECK(!strcmp(cfg.topic_dead_letter, "dead-letter"));
    CHECK(cfg.top_k == 10);
    CHECK(cfg.train_lr == 2e-3 && cfg.train_lr_init == 3e-4);
    CHECK(cfg.log_format == LOG_FORMAT_JSON && cfg.log_level == LOG_INFO);
    CHECK(cfg.train_sched_idle == 1 && cfg.train_nice == 19 && cfg.train_threads == 1);
    CHECK(!strcmp(cfg.train_cgroup, "off"));
    CHECK(cfg.n_variants == 2);
    CHECK(!strcmp(cfg.variants[0].label, "gru:a=3") && cfg.variants[0].kind == SSNA_VARIANT_GRU);
    CHECK(!strcmp(cfg.variants[1].label, "mean:a=3") && cfg.variants[1].layers == 3);
    CHECK(config_kafka_count(&cfg) == 0);
    long long iv;
    double dv;
    const char *sv;
    CHECK(config_get_int(&cfg, "top_k", &iv) == 0 && iv == 10);
    CHECK(config_get_double(&cfg, "train.replay_fraction", &dv) == 0 && dv == 0.5);
    CHECK(config_get_string(&cfg, "log.level", &sv) == 0 && !strcmp(sv, "info"));
    CHECK(config_get_int(&cfg, "train.lr", &iv) < 0); /* a double, not an int */
    CHECK(config_get_string(&cfg, "nope", &sv) < 0);
    config_free(&cfg);
}

static void test_file_syntax(void) {
    DaemonConfig cfg;
    char err[512] = "";
    int rc = load_text(&cfg,
                       "\xef\xbb\xbf# a comment\n"
                       "   \n"
                       "  brokers =  b1:9092,b2:9092  \r\n"
                       "\t# indented comment\n"
                       "top_k=25\n"
                       "train.lr = 1e-3\n"
                       "kafka.sasl.password = p#ss = word\n"
                       "kafka.fetch.wait.max.ms = 10\n"
                       "log.format = text\n"
                       "log.level = debug\n"
                       "variants = gru:a=2:weight=3, mean , tmlp\n"
                       "http.listen = [::1]:0\n"
                       "checkpoint.every_seconds = 2.5",
                       err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    CHECK(!strcmp(cfg.brokers, "b1:9092,b2:9092"));
    CHECK(cfg.top_k == 25);
    CHECK(cfg.train_lr == 1e-3);
    CHECK(cfg.checkpoint_every_seconds == 2.5);
    CHECK(cfg.log_format == LOG_FORMAT_TEXT && cfg.log_level == LOG_DEBUG);
    CHECK(!strcmp(cfg.http_listen, "[::1]:0"));
    CHECK(cfg.n_variants == 3);
    CHECK(!strcmp(cfg.variants[0].label, "gru:a=2") && cfg.variants[0].weight == 3);
    CHECK(!strcmp(cfg.variants[1].label, "mean:a=3") && cfg.variants[1].weight == 1);
    CHECK(!strcmp(cfg.variants[2].label, "tmlp:a=1") && cfg.variants[2].kind == SSNA_VARIANT_TMLP);
    CHECK(cfg.variants[0].loss == -1 && cfg.train_loss_logq == 1); // train.loss decides: logq
    const char *k, *v;
    CHECK(config_kafka_count(&cfg) == 2);
    CHECK(config_kafka_entry(&cfg, 0, &k, &v) == 0 && !strcmp(k, "sasl.password") &&
          !strcmp(v, "p#ss = word"));
    CHECK(config_kafka_entry(&cfg, 1, &k, &v) == 0 && !strcmp(k, "fetch.wait.max.ms") &&
          !strcmp(v, "10"));
    CHECK(config_kafka_entry(&cfg, 2, &k, &v) < 0);
    config_free(&cfg);
}

/* The file's text must fail with an error holding every one of the needles. */
static void expect_error(const char *text, const char *needle1, const char *needle2) {
    DaemonConfig cfg;
    char err[512] = "";
    int rc = load_text(&cfg, text, err, sizeof err);
    CHECK_MSG(rc == -1, "accepted: %s", text);
    CHECK_MSG(strstr(err, needle1) && (!needle2 || strstr(err, needle2)),
              "error '%s' lacks '%s' / '%s'", err, needle1, needle2 ? needle2 : "");
    CHECK_MSG(strstr(err, "/tmp/ssna_test_config_"), "error '%s' does not name the file", err);
    config_free(&cfg);
}

static void test_file_errors(void) {
    expect_error("top_k = 5\n# c\ntopk = 5\n", ":3:", "unknown key 'topk'");
    expect_error("top_k = 0\n", ":1:", "out of range (1 .. 1000)");
    expect_error("top_k = 12abc\n", ":1:", "not an integer");
    expect_error("top_k = 99999999999999999999\n", ":1:", "top_k");
    expect_error("\n\ntrain.lr = nan\n", ":3:", "not a finite number");
    expect_error("train.replay_fraction = 0.99\n", ":1:", "out of range");
    expect_error("checkpoint.every_seconds = 1e9\n", ":1:", "checkpoint.every_seconds");
    expect_error("brokers = a\nbrokers = b\n", ":2:", "already set on line 1");
    expect_error("just words\n", ":1:", "expected 'key = value'");
    expect_error("= value\n", ":1:", "bad key");
    expect_error("brokers =\n", ":1:", "brokers");
    expect_error("kafka.bootstrap.servers = x:1\n", ":1:", "'brokers'");
    expect_error("kafka.group.id = g\n", ":1:", "'group.id'");
    expect_error("kafka. = 1\n", ":1:", "empty key");
    expect_error("log.format = xml\n", ":1:", "json or text");
    expect_error("log.level = loud\n", ":1:", "log.level");
    expect_error("train.sched = fifo\n", ":1:", "idle or normal");
    expect_error("train.cgroup = sys/fs/cgroup/cpu/train\n", ":1:", "absolute path");
    expect_error("http.listen = localhost\n", ":1:", "host:port");
    expect_error("http.listen = 127.0.0.1:65536\n", ":1:", "http.listen");
    expect_error("variants = gru:a=3,bert\n", ":1:", "unknown kind 'bert'");
    expect_error("variants = gru:a=0\n", ":1:", "a must be");
    expect_error("variants = gru:b=1\n", ":1:", "unknown option 'b=1'");
    expect_error("variants = mean:weight=-1\n", ":1:", "weight");
    expect_error("variants = gru:loss=full\n", ":1:", "loss must be logq or inbatch");
    expect_error("variants = gru:a=3,gru:a=3:loss=logq:loss=logq,gru:loss=logq\n",
                 ":1:", "listed twice");
    expect_error("train.loss = full\n", ":1:", "logq or inbatch");
    expect_error("variants = gru:lr=0\n", ":1:", "lr must be a number in 1e-7 .. 1");
    expect_error("variants = gru:lr=2\n", ":1:", "lr must be");
    expect_error("variants = gru:lr=x\n", ":1:", "lr must be");
    expect_error("variants = gru,pop:lr=0.1\n", ":1:", "pop takes only weight=W");
    expect_error("variants = gru:a=3:d=63\n",
                 ":1:", "variant 'gru:a=3:d=63': d must be an even integer 2 .. 4096");
    expect_error("variants = gru:d=0\n", ":1:", "d must be an even integer");
    expect_error("variants = gru:d=4098\n", ":1:", "d must be an even integer");
    expect_error("variants = gru:d=\n", ":1:", "d must be an even integer");
    expect_error("variants = pop:d=64,gru\n", ":1:", "pop takes only weight=W");
    expect_error("variants = gru:lr=1e-3,gru:a=3:lr=0.001\n", ":1:", "listed twice");
    expect_error("variants = gru:a=3:init=\n", ":1:", "init needs a path");
    expect_error("variants = gru,gru:a=3\n", ":1:", "listed twice");
    expect_error("variants = ,\n", ":1:", "no variant");
    expect_error("variants = pop:a=1,gru\n", ":1:", "pop takes only weight=W");
    expect_error("variants = gru,pop:loss=logq\n", ":1:", "pop takes only weight=W");
    expect_error("variants = pop:weight=2\n", ":1:", "pop needs a model arm beside it");

    DaemonConfig cfg;
    char err[512] = "";
    config_init(&cfg);
    CHECK(config_load_file(&cfg, "/nonexistent/ssnad.conf", err, sizeof err) == -1);
    CHECK(strstr(err, "/nonexistent/ssnad.conf") != NULL);
    /* a rejected value leaves the earlier one whole */
    CHECK(config_set(&cfg, "variants", "gru:a=2,bogus", "t", err, sizeof err) == -1);
    CHECK(cfg.n_variants == 2 && !strcmp(cfg.variants[0].label, "gru:a=3"));
    CHECK(config_set(&cfg, "variants", "pop:weight=2,gru:a=3", "t", err, sizeof err) == 0);
    CHECK(cfg.n_variants == 2 && cfg.variants[0].kind == CONFIG_VARIANT_POP &&
          !strcmp(cfg.variants[0].label, "pop") && cfg.variants[0].weight == 2 &&
          cfg.variants[0].layers == 1 && cfg.variants[1].kind == SSNA_VARIANT_GRU);
    CHECK(config_set(&cfg, "top_k", "-3", "t", err, sizeof err) == -1 && cfg.top_k == 10);
    CHECK(config_set(&cfg, "train.sched", "normal", "t", err, sizeof err) == 0);
    CHECK(cfg.train_sched_idle == 0);
    CHECK(config_set(&cfg, "train.sched", "batch", "t", err, sizeof err) == -1);
    CHECK(cfg.train_sched_idle == 0);
    CHECK(cfg.train_center == 1); // on unless set: fresh arms are centred (ssnad_train.c)
    CHECK(config_set(&cfg, "train.center", "off", "t", err, sizeof err) == 0);
    CHECK(cfg.train_center == 0);
    CHECK(config_set(&cfg, "train.center", "yes", "t", err, sizeof err) == -1);
    CHECK(cfg.train_center == 0 && strstr(err, "train.center") != NULL);
    config_free(&cfg);
}

static void test_args(void) {
    const char *path = write_temp("top_k = 7\ngroup.id = from-file\nkafka.acks = all\n");
    char path_copy[256];
    snprintf(path_copy, sizeof path_copy, "%s", path);
    char config_arg[300];
    snprintf(config_arg, sizeof config_arg, "--config=%s", path_copy);
    DaemonConfig cfg;
    char err[512] = "";
    /* --set applies after the file whatever the argument order; later --set wins */
    char *argv1[] = {"ssnad", "--set",        "top_k=9", config_arg,      "--set=top_k = 11",
                     "--set", "kafka.acks=1", "--set",   "log.level=warn"};
    CHECK_MSG(config_load_args(&cfg, 9, argv1, err, sizeof err) == 0, "%s", err);
    CHECK(cfg.top_k == 11);
    CHECK(!strcmp(cfg.group_id, "from-file"));
    CHECK(cfg.log_level == LOG_WARN);
    const char *k, *v;
    CHECK(config_kafka_count(&cfg) == 1 && config_kafka_entry(&cfg, 0, &k, &v) == 0 &&
          !strcmp(k, "acks") && !strcmp(v, "1"));
    config_free(&cfg);

    char *argv2[] = {"ssnad", "--config", path_copy, "--set", "top_k=0"};
    CHECK(config_load_args(&cfg, 5, argv2, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "argument 4") && strstr(err, "top_k"), "%s", err);
    config_free(&cfg);
    char *argv3[] = {"ssnad", "--verbose"};
    CHECK(config_load_args(&cfg, 2, argv3, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "unknown option '--verbose'"), "%s", err);
    config_free(&cfg);
    char *argv4[] = {"ssnad", "--set"};
    CHECK(config_load_args(&cfg, 2, argv4, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "missing value"), "%s", err);
    config_free(&cfg);
    char *argv5[] = {"ssnad", "--set", "top_k"};
    CHECK(config_load_args(&cfg, 3, argv5, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "key=value"), "%s", err);
    config_free(&cfg);
    char *argv6[] = {"ssnad", "--config", path_copy, "--config", path_copy};
    CHECK(config_load_args(&cfg, 5, argv6, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "twice"), "%s", err);
    config_free(&cfg);
    unlink(path_copy);
}

/* config_write's output loads back to the same values (secrets redacted). */
static void test_write_roundtrip(void) {
    DaemonConfig a, b;
    char err[512] = "";
    int rc = load_text(&a,
                       "top_k = 33\ntrain.lr = 0.00123\nvariants = weighted:a=2,tmoe\n"
                       "kafka.sasl.password = hunter2\nkafka.linger.ms = 5\nlog.format = text\n",
                       err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    config_write(&a, mem);
    fclose(mem);
    CHECK(strstr(text, "hunter2") == NULL);
    CHECK(strstr(text, "kafka.sasl.password = <redacted>") != NULL);
    rc = load_text(&b, text, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    for (size_t i = 0; i < config_key_count(); i++) {
        const char *key = config_key_info(i)->key, *sa, *sb;
        long long ia, ib;
        double da, db;
        if (config_get_string(&a, key, &sa) == 0)
            CHECK_MSG(config_get_string(&b, key, &sb) == 0 && !strcmp(sa, sb), "%s", key);
        else if (config_get_int(&a, key, &ia) == 0)
            CHECK_MSG(config_get_int(&b, key, &ib) == 0 && ia == ib, "%s", key);
        else
            CHECK_MSG(config_get_double(&a, key, &da) == 0 &&
                          config_get_double(&b, key, &db) == 0 && da == db,
                      "%s", key);
    }
    CHECK(b.n_variants == 2 && !strcmp(b.variants[1].label, "tmoe:a=1"));
    CHECK(config_kafka_count(&b) == 2);
    free(text);
    config_free(&a);
    config_free(&b);

    /* the reference names every key with its default */
    mem = open_memstream(&text, &len);
    config_print_reference(mem);
    fclose(mem);
    for (size_t i = 0; i < config_key_count(); i++) {
        char line[512];
        snprintf(line, sizeof line, "%s = %s\n", config_key_info(i)->key,
                 config_key_info(i)->default_value);
        CHECK_MSG(strstr(text, line) != NULL, "reference lacks '%s'", line);
    }
    free(text);
}

static char *read_all(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, n, mem);
    fclose(mem);
    fclose(f);
    return text;
}

/* The example file and the docs show every key with the default the code uses. */
static void test_documentation(void) {
    const char *src = getenv("SSNA_SOURCE_DIR");
    CHECK_MSG(src != NULL, "SSNA_SOURCE_DIR is not set (run the test through ctest)");
    if (!src) return;
    char path[1024];
    snprintf(path, sizeof path, "%s/ops/ssnad.conf.example", src);
    char *example = read_all(path);
    CHECK_MSG(example != NULL, "cannot read %s", path);
    snprintf(path, sizeof path, "%s/docs/daemon.md", src);
    char *docs = read_all(path);
    CHECK_MSG(docs != NULL, "cannot read %s", path);
    if (!example || !docs) {
        free(example);
        free(docs);
        return;
    }
    DaemonConfig cfg;
    char err[512];
    config_init(&cfg);
    snprintf(path, sizeof path, "%s/ops/ssnad.conf.example", src);
    CHECK_MSG(config_load_file(&cfg, path, err, sizeof err) == 0, "%s", err);
    config_free(&cfg);
    for (size_t i = 0; i < config_key_count(); i++) {
        const ConfigKeyInfo *k = config_key_info(i);
        char line[512], doc_row[512];
        snprintf(line, sizeof line, "\n# %s = %s\n", k->key, k->default_value);
        snprintf(doc_row, sizeof doc_row, "| `%s` | `%s` |", k->key, k->default_value);
        CHECK_MSG(strstr(example, line) != NULL, "example lacks the line '# %s = %s'", k->key,
                  k->default_value);
        CHECK_MSG(strstr(docs, doc_row) != NULL, "docs/daemon.md lacks the row '%s'", doc_row);
    }
    free(example);
    free(docs);
}

/* The systemd unit runs ssnad as the docs say, as a dedicated user, restarted on failure. */
static void test_service_unit(void) {
    const char *src = getenv("SSNA_SOURCE_DIR");
    if (!src) return; /* already reported by test_documentation */
    char path[1024];
    snprintf(path, sizeof path, "%s/ops/ssnad.service", src);
    char *unit = read_all(path);
    CHECK_MSG(unit != NULL, "cannot read %s", path);
    if (!unit) return;
    const char *required[] = {"\n[Service]\n",
                              "\nType=simple\n",
                              "\nExecStart=/usr/local/bin/ssnad --config /etc/ssna/ssnad.conf\n",
                              "\nRestart=on-failure\n",
                              "\nUser=ssna\n",
                              "\nDynamicUser=yes\n",
                              "\nStateDirectory=ssna\n",
                              "\nNoNewPrivileges=yes\n",
                              "\nProtectSystem=strict\n",
                              "\nKillSignal=SIGTERM\n",
                              "\n[Install]\nWantedBy=multi-user.target\n"};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        CHECK_MSG(strstr(unit, required[i]) != NULL, "ssnad.service lacks '%s'", required[i]);
    /* the default db.path must lie inside the StateDirectory systemd makes writable */
    DaemonConfig cfg;
    config_init(&cfg);
    CHECK(!strncmp(cfg.db_path, "/var/lib/ssna/", 14));
    config_free(&cfg);
    free(unit);
}

/* An arm may name its own objective (two gru arms that differ only by it are two arms) and an
 * offline checkpoint to start from (not part of its label: the arm is the same arm). */
static void test_variant_loss(void) {
    DaemonConfig cfg;
    char err[512] = "";
    int rc = load_text(&cfg,
                       "train.loss = inbatch\nvariants = gru:a=3:init=/srv/g.ckpt, "
                       "gru:a=3:loss=logq\n",
                       err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    CHECK(cfg.train_loss_logq == 0 && cfg.n_variants == 2);
    CHECK(!strcmp(cfg.variants[0].label, "gru:a=3") && cfg.variants[0].loss == -1);
    CHECK(!strcmp(cfg.variants[0].init, "/srv/g.ckpt") && !cfg.variants[1].init[0]);
    CHECK(!strcmp(cfg.variants[1].label, "gru:a=3:loss=logq") &&
          cfg.variants[1].loss == SSNA_LOSS_LOGQ);
    CHECK(cfg.variants[0].lr == 0 && cfg.variants[1].lr == 0);
    config_free(&cfg);
    // and its own learning rate: part of the label, as the loss is
    rc = load_text(&cfg, "variants = gru:a=3, gru:a=3:lr=0.003, mean:loss=inbatch:lr=2e-4\n", err,
                   sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    CHECK(cfg.n_variants == 3 && cfg.variants[1].lr == 0.003 && cfg.variants[2].lr == 2e-4);
    CHECK_MSG(!strcmp(cfg.variants[1].label, "gru:a=3:lr=0.003") &&
                  !strcmp(cfg.variants[2].label, "mean:a=3:loss=inbatch:lr=0.0002"),
              "%s, %s", cfg.variants[1].label, cfg.variants[2].label);
    config_free(&cfg);
}

/* An arm's width: 64 from random weights unless it names d=N, ssna train's default for an init=
 * arm (so that its default checkpoints fit); a named d ends the label (it is another model). */
static void test_variant_width(void) {
    DaemonConfig cfg;
    char err[512] = "";
    int rc = load_text(&cfg,
                       "variants = gru:a=3, mean:a=3:d=128, gru:a=3:init=/srv/g.ckpt:lr=1e-4, "
                       "gru:a=3:d=64:loss=inbatch\n",
                       err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    CHECK(cfg.n_variants == 4);
    const ConfigVariant *v = cfg.variants;
    CHECK(!strcmp(v[0].label, "gru:a=3") && v[0].d == CONFIG_VARIANT_COLD_D && !v[0].d_set);
    CHECK(CONFIG_VARIANT_COLD_D == 64);
    CHECK(!strcmp(v[1].label, "mean:a=3:d=128") && v[1].d == 128 && v[1].d_set);
    CHECK_MSG(!strcmp(v[2].label, "gru:a=3:lr=0.0001") && v[2].d == CONFIG_VARIANT_INIT_D,
              "%s d %d", v[2].label, v[2].d);
    CHECK(ssna_config_default(SSNA_VARIANT_GRU, 10, 384, 3).d == CONFIG_VARIANT_INIT_D);
    CHECK_MSG(!strcmp(v[3].label, "gru:a=3:loss=inbatch:d=64") && v[3].d == 64, "%s", v[3].label);
    config_free(&cfg);
}

int main(void) {
    test_defaults();
    test_variant_loss();
    test_variant_width();
    test_file_syntax();
    test_file_errors();
    test_args();
    test_write_roundtrip();
    test_documentation();
    test_service_unit();
    return check_done();
}
