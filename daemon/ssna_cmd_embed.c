/* ssna embed - run every item text of a file through the frozen encoder into the LMDB cache.
 *
 * Restartable by construction: each batch of encoded items is committed in one transaction
 * together with its catalogue entries, and an item whose text hash is already stored is skipped,
 * so a run that was interrupted (Ctrl-C, kill -9, --limit) and started again encodes only what
 * is missing or changed.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon/signals.h"
#include "daemon/ssna_cmd.h"
#include "model/errmsg.h"
#include "model/numparse.h"
#include "ingest/items.h"
#include "model/encoder.h"
#include "store/store.h"
#include "model/clock.h"

typedef struct {
    const char *model_dir, *items_path, *db_dir;
    int layers, pool, batch, threads, strict, progress_every;
    long limit;
    ItemsFormat format;
    StoreDtype dtype;
} EmbedOptions;

/* One item waiting for the encoder. */
typedef struct {
    char *id, *text;
    size_t text_len;
    uint64_t hash;
    long line;
} PendingItem;

typedef struct {
    EmbedOptions opt;
    Encoder *enc;
    Store *store;
    PendingItem *batch; /* [opt.batch] */
    int n_batch;
    const char **texts; /* [opt.batch] views of batch[i].text for the encoder */
    size_t *lens;       /* [opt.batch] */
    float *states;      /* [opt.batch, layers, hidden] */
    int hidden, first_layer;
    long total, seen, encoded, unchanged, malformed;
    double t_start, t_last_report, encode_seconds;
    int tty, progress_shown;
} EmbedRun;

static void usage(FILE *out) {
    fprintf(
        out,
        "usage: ssna embed --items FILE --db DIR [options]\n"
        "\n"
        "Encode every item text of FILE with the frozen encoder and store the first-token\n"
        "(or mean) state of the top A layers per item in the LMDB cache DIR, with the item\n"
        "catalogue (id -> dense index and text). Items whose text is unchanged since they were\n"
        "stored are skipped, so an interrupted run continues where it stopped. A cache only\n"
        "ever holds states of one encoder identity (weights, config, layers, pooling, dtype);\n"
        "a different one is refused.\n"
        "\n"
        "options:\n"
        "  --items FILE       item texts: UniSRec .text, RecBole .item (item_id:token +\n"
        "                     token_seq columns) or JSON lines {\"item_id\":..,\"text\":..}\n"
        "  --format F         auto (default: by extension, else by content), atomic, jsonl\n"
        "  --db DIR           LMDB store directory (created when missing)\n"
        "  --model DIR        Hugging Face checkpoint folder (default: $SSNA_MODEL_DIR, else\n"
        "                     models/minilm-l6 in the current directory or the repository)\n"
        "  --layers A         keep the top A layer states, top layer first (default 3)\n"
        "  --pool cls|mean    first-token state (default, as in the paper) or token mean\n"
        "  --dtype f16|f32    storage dtype of the states (default f16)\n"
        "  --batch N          items per encoder call and per transaction (default 256)\n"
        "  --threads N        encoder worker threads (default 2)\n"
        "  --limit N          stop after encoding N items (skipped items do not count)\n"
        "  --strict           stop at the first malformed line (default: report, skip it)\n"
        "  --progress-every S seconds between log lines when stderr is not a terminal\n"
        "                     (default 10; on a terminal one line is updated in place)\n"
        "  -h, --help         this help\n"
        "\n"
        "exit status: 0 done (or stopped by --limit), 1 error, 2 bad usage, 130 interrupted\n"
        "(what was committed stays; run again to finish).\n");
}

/* 0 ok, 1 --help shown, 2 bad usage (message printed). */
static int parse_args(int argc, char **argv, EmbedOptions *o, char *model_buf, size_t model_len) {
    *o = (EmbedOptions){.layers = 3,
                        .pool = ENCODER_POOL_CLS,
                        .batch = 256,
                        .threads = 2,
                        .progress_every = 10,
                        .dtype = STORE_F16};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 1;
        }
        if (!strcmp(a, "--strict")) {
            o->strict = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "ssna embed: %s needs a value (or is unknown); see --help\n", a);
            return 2;
        }
        const char *v = argv[++i];
        int bad = 0;
        if (!strcmp(a, "--items"))
            o->items_path = v;
        else if (!strcmp(a, "--db"))
            o->db_dir = v;
        else if (!strcmp(a, "--model"))
            o->model_dir = v;
        else if (!strcmp(a, "--layers"))
            bad = numparse_int(v, 1, 1000, &o->layers);
        else if (!strcmp(a, "--batch"))
            bad = numparse_int(v, 1, 1 << 16, &o->batch);
        else if (!strcmp(a, "--threads"))
            bad = numparse_int(v, 1, 256, &o->threads);
        else if (!strcmp(a, "--limit"))
            bad = numparse_long(v, 1, LONG_MAX, &o->limit);
        else if (!strcmp(a, "--progress-every"))
            bad = numparse_int(v, 1, 86400, &o->progress_every);
        else if (!strcmp(a, "--pool")) {
            bad = strcmp(v, "cls") && strcmp(v, "mean");
            o->pool = strcmp(v, "mean") ? ENCODER_POOL_CLS : ENCODER_POOL_MEAN;
        } else if (!strcmp(a, "--dtype")) {
            bad = strcmp(v, "f16") && strcmp(v, "f32");
            o->dtype = strcmp(v, "f32") ? STORE_F16 : STORE_F32;
        } else if (!strcmp(a, "--format")) {
            o->format = !strcmp(v, "atomic")  ? ITEMS_FORMAT_ATOMIC
                        : !strcmp(v, "jsonl") ? ITEMS_FORMAT_JSONL
                                              : ITEMS_FORMAT_AUTO;
            bad = o->format == ITEMS_FORMAT_AUTO && strcmp(v, "auto");
        } else {
            fprintf(stderr, "ssna embed: unknown option '%s'; see --help\n", a);
            return 2;
        }
        if (bad) {
            fprintf(stderr, "ssna embed: bad value '%s' for %s; see --help\n", v, a);
            return 2;
        }
    }
    if (!o->items_path || !o->db_dir) {
        fprintf(stderr, "ssna embed: --items and --db are required; see --help\n");
        return 2;
    }
    if (!o->model_dir) o->model_dir = encoder_default_model_dir(model_buf, model_len);
    return 0;
}

/* The store's identity: the encoder's own plus what this command decides about the states. */
static char *make_identity(const EmbedRun *r) {
    const char *enc = encoder_identity(r->enc);
    size_t n = strlen(enc) + 256;
    char *s = malloc(n);
    if (!s) return NULL;
    snprintf(s, n,
             "{\"encoder\":%s,\"layers_kept\":%d,\"first_layer\":%d,\"hidden_size\":%d,"
             "\"pooling\":\"%s\",\"dtype\":\"%s\"}",
             enc, r->opt.layers, r->first_layer, r->hidden,
             r->opt.pool == ENCODER_POOL_MEAN ? "mean" : "cls",
             r->opt.dtype == STORE_F32 ? "f32" : "f16");
    return s;
}

static void format_eta(double seconds, char *buf, size_t n) {
    if (seconds < 0 || seconds > 1e7) {
        snprintf(buf, n, "?");
        return;
    }
    long s = (long)(seconds + 0.5);
    if (s >= 3600)
        snprintf(buf, n, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(buf, n, "%ld:%02ld", s / 60, s % 60);
}

static void report_progress(EmbedRun *r, int force) {
    double t = clock_monotonic_s();
    double every = r->tty ? 0.25 : (double)r->opt.progress_every;
    if (!force && t - r->t_last_report < every) return;
    r->t_last_report = t;
    double rate = r->encode_seconds > 0 ? r->encoded / r->encode_seconds : 0;
    char eta[32];
    format_eta(rate > 0 ? (double)(r->total - r->seen) / rate : -1, eta, sizeof eta);
    double pct = r->total ? 100.0 * (double)r->seen / (double)r->total : 100;
    if (r->tty) {
        fprintf(stderr,
                "\rssna embed: %ld/%ld items (%.0f%%), encoded %ld, unchanged %ld, %.1f items/s, "
                "ETA %s   ",
                r->seen, r->total, pct, r->encoded, r->unchanged, rate, eta);
        r->progress_shown = 1;
    } else {
        fprintf(stderr,
                "ssna embed: progress %ld/%ld items (%.0f%%) encoded=%ld unchanged=%ld "
                "malformed=%ld rate=%.1f items/s eta=%s\n",
                r->seen, r->total, pct, r->encoded, r->unchanged, r->malformed, rate, eta);
    }
    fflush(stderr);
}

static void clear_batch(EmbedRun *r) {
    for (int i = 0; i < r->n_batch; i++) {
        free(r->batch[i].id);
        free(r->batch[i].text);
    }
    r->n_batch = 0;
}

/* Encode the pending batch and commit its states and catalogue entries in one transaction. */
static int flush_batch(EmbedRun *r, char *err, size_t errlen) {
    if (!r->n_batch) return 0;
    for (int i = 0; i < r->n_batch; i++) {
        r->texts[i] = r->batch[i].text;
        r->lens[i] = r->batch[i].text_len;
    }
    double t0 = clock_monotonic_s();
    char eerr[512];
    /* states: [n_batch, layers, hidden], top layer first */
    if (encoder_embed(r->enc, r->texts, r->lens, r->n_batch, r->opt.pool, r->first_layer,
                      r->opt.layers, r->states, eerr, sizeof eerr)) {
        return errmsg_fail(err, errlen, "%s: encoder failed on the batch starting at line %ld: %s",
                           r->opt.items_path, r->batch[0].line, eerr);
    }
    r->encode_seconds += clock_monotonic_s() - t0;
    StoreTxn *t;
    int rc = store_txn_begin(r->store, &t, err, errlen);
    size_t per_item = (size_t)r->opt.layers * (size_t)r->hidden;
    for (int i = 0; i < r->n_batch && !rc; i++) {
        PendingItem *p = &r->batch[i];
        rc = store_put_item(t, p->id, p->hash, r->states + (size_t)i * per_item, r->opt.layers,
                            r->hidden, err, errlen);
        if (!rc) rc = store_catalogue_put(t, p->id, p->text, p->text_len, NULL, err, errlen);
    }
    if (rc) {
        store_txn_abort(t);
        return -1;
    }
    if (store_txn_commit(t, 0, err, errlen)) return -1;
    r->encoded += r->n_batch;
    clear_batch(r);
    return 0;
}

static int add_item(EmbedRun *r, const ItemText *it, uint64_t hash, char *err, size_t errlen) {
    PendingItem *p = &r->batch[r->n_batch];
    p->id = strndup(it->id, it->id_len);
    p->text = malloc(it->text_len + 1);
    if (!p->id || !p->text) {
        free(p->id);
        free(p->text);
        return errmsg_fail(err, errlen, "out of memory");
    }
    memcpy(p->text, it->text, it->text_len);
    p->text[it->text_len] = 0;
    p->text_len = it->text_len;
    p->hash = hash;
    p->line = it->line;
    r->n_batch++;
    return 0;
}

static long count_items(const EmbedOptions *o) {
    ItemsReader *rd;
    char err[256];
    if (items_open(&rd, o->items_path, o->format, err, sizeof err)) return 0;
    ItemText it;
    long n = 0;
    int rc;
    while ((rc = items_next(rd, &it, err, sizeof err)) != 0) n += rc == 1;
    items_close(rd);
    return n;
}

/* Read, skip unchanged, encode the rest. 0 done, 1 stopped by a signal, -1 error. */
static int embed_items(EmbedRun *r, ItemsReader *rd, char *err, size_t errlen) {
    ItemText it;
    int rc;
    char lerr[1024];
    while (!signals_stop_requested() && (rc = items_next(rd, &it, lerr, sizeof lerr)) != 0) {
        if (rc < 0) {
            r->malformed++;
            if (r->opt.strict) {
                return errmsg_fail(err, errlen, "%s", lerr);
            }
            if (r->tty && r->progress_shown) fputc('\n', stderr);
            fprintf(stderr, "ssna embed: skipping malformed line: %s\n", lerr);
            continue;
        }
        r->seen++;
        uint64_t hash = store_text_hash(it.text, it.text_len);
        int same = store_item_text_unchanged(r->store, NULL, it.id, hash, lerr, sizeof lerr);
        if (same == STORE_ERR_CORRUPT) {
            fprintf(stderr, "ssna embed: re-encoding a damaged record: %s\n", lerr);
            same = 0;
        }
        if (same < 0) {
            return errmsg_fail(err, errlen, "%s", lerr);
        }
        if (same) {
            r->unchanged++;
        } else {
            if (add_item(r, &it, hash, err, errlen)) return -1;
            int at_limit = r->opt.limit && r->encoded + r->n_batch >= r->opt.limit;
            if ((r->n_batch == r->opt.batch || at_limit) && flush_batch(r, err, errlen)) return -1;
            if (at_limit) return 0;
        }
        report_progress(r, 0);
    }
    if (flush_batch(r, err, errlen)) return -1;
    return signals_stop_requested() ? 1 : 0;
}

static int setup_run(EmbedRun *r, char *err, size_t errlen) {
    if (encoder_load(&r->enc, r->opt.model_dir, err, errlen)) return -1;
    encoder_set_threads(r->enc, r->opt.threads);
    int n = encoder_num_layers(r->enc);
    if (r->opt.layers > n + 1) {
        return errmsg_fail(err, errlen, "--layers %d: %s has states of layers 0..%d only",
                           r->opt.layers, r->opt.model_dir, n);
    }
    r->first_layer = n;
    r->hidden = encoder_hidden(r->enc);
    r->batch = calloc((size_t)r->opt.batch, sizeof *r->batch);
    r->texts = calloc((size_t)r->opt.batch, sizeof *r->texts);
    r->lens = calloc((size_t)r->opt.batch, sizeof *r->lens);
    r->states = malloc((size_t)r->opt.batch * (size_t)r->opt.layers * (size_t)r->hidden *
                       sizeof *r->states);
    if (!r->batch || !r->texts || !r->lens || !r->states) {
        return errmsg_fail(err, errlen, "out of memory for a batch of %d", r->opt.batch);
    }
    if (store_open(&r->store, r->opt.db_dir, NULL, err, errlen)) return -1;
    char *identity = make_identity(r);
    if (!identity) {
        return errmsg_fail(err, errlen, "out of memory");
    }
    /* refuse a foreign cache before encoding anything; record ours in a fresh one */
    StoreTxn *t;
    int rc = store_txn_begin(r->store, &t, err, errlen);
    if (!rc) {
        rc = store_set_identity(t, identity, err, errlen);
        if (rc)
            store_txn_abort(t);
        else
            rc = store_txn_commit(t, 0, err, errlen);
    }
    free(identity);
    return rc ? -1 : 0;
}

static void free_run(EmbedRun *r) {
    if (r->batch) clear_batch(r);
    free(r->batch);
    free(r->texts);
    free(r->lens);
    free(r->states);
    store_close(r->store);
    encoder_free(r->enc);
}

int ssna_cmd_embed(int argc, char **argv) {
    EmbedRun r = {0};
    char model_buf[PATH_MAX];
    int prc = parse_args(argc, argv, &r.opt, model_buf, sizeof model_buf);
    if (prc) return prc == 1 ? 0 : 2;
    char err[4096];
    ItemsReader *rd = NULL;
    if (items_open(&rd, r.opt.items_path, r.opt.format, err, sizeof err) ||
        setup_run(&r, err, sizeof err)) {
        fprintf(stderr, "ssna embed: %s\n", err);
        items_close(rd);
        free_run(&r);
        return 1;
    }
    signals_install_stop(1, err, sizeof err); /* reads continue; the loop polls between items */

    r.tty = isatty(STDERR_FILENO);
    r.total = count_items(&r.opt);
    r.t_start = r.t_last_report = clock_monotonic_s();
    int rc = embed_items(&r, rd, err, sizeof err);
    items_close(rd);
    if (r.tty && r.progress_shown) fputc('\n', stderr);
    if (rc < 0) fprintf(stderr, "ssna embed: %s\n", err);
    char serr[512];
    size_t stored = 0;
    if (store_sync(r.store, serr, sizeof serr) ||
        store_item_count(r.store, NULL, &stored, serr, sizeof serr)) {
        fprintf(stderr, "ssna embed: %s\n", serr);
        rc = -1;
    }
    double elapsed = clock_monotonic_s() - r.t_start;
    printf("ssna embed: %s: read %ld items, encoded %ld, unchanged %ld, malformed %ld; "
           "%.1f items/s encoding, %.1f s in all; %s holds %zu items%s\n",
           r.opt.items_path, r.seen, r.encoded, r.unchanged, r.malformed,
           r.encode_seconds > 0 ? r.encoded / r.encode_seconds : 0.0, elapsed, r.opt.db_dir, stored,
           rc == 1                                   ? " (interrupted; run again to finish)"
           : r.opt.limit && r.encoded >= r.opt.limit ? " (stopped at --limit)"
                                                     : "");
    free_run(&r);
    return rc < 0 ? 1 : rc == 1 ? 130 : 0;
}
