/* ssna_train.c - epochs, leave-one-out evaluation against all items, top-k, checkpoints. */
#include "model/ssna_train.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/errmsg.h"
#include "model/fileio.h"
#include "model/kernels.h"
#include "model/numparse.h"
#include "model/rng.h"
#include "model/sha256.h"

/* ---- batches -------------------------------------------------------------------------------- */

typedef struct {
    int *offsets, *items, *targets;
    int cap_rows, cap_pos;
} BatchBuf;

static int batch_reserve(BatchBuf *b, int rows, int pos) {
    if (rows + 1 > b->cap_rows) {
        int *o = realloc(b->offsets, (size_t)(rows + 1) * sizeof(int));
        if (!o) return -1;
        b->offsets = o, b->cap_rows = rows + 1;
    }
    if (pos > b->cap_pos) {
        int *i = realloc(b->items, (size_t)pos * sizeof(int));
        if (i) b->items = i;
        int *t = realloc(b->targets, (size_t)pos * sizeof(int));
        if (t) b->targets = t;
        if (!i || !t) return -1;
        b->cap_pos = pos;
    }
    return 0;
}

static void batch_free(BatchBuf *b) {
    free(b->offsets), free(b->items), free(b->targets);
}

static int seq_len(const SsnaSequences *s, int u) {
    return s->offsets[u + 1] - s->offsets[u];
}

/* ---- training ------------------------------------------------------------------------------- */

/* Training rows: users whose training sequence s[0..n-2) has >= 2 items; row u's positions t
 * (the last max_len) predict s[first + t + 1]. */
static int train_row(const SsnaSequences *seq, int u, int max_len, int *first) {
    int L = seq_len(seq, u) - 3;
    *first = L > max_len ? L - max_len : 0;
    return L > max_len ? max_len : L;
}

/* The logq loss's shares: how often each item is a target of the positions ssna_train_epoch
 * trains on (the same every epoch, so a resumed run computes the same). */
static int set_target_counts(SsnaModel *m, const SsnaSequences *seq, char *err, size_t errlen) {
    double *counts = calloc((size_t)m->cfg.n_items, sizeof(double));
    if (!counts) return snprintf(err, errlen, "ssna train: out of memory"), -1;
    for (int u = 0, first; u < seq->n_users; u++) {
        const int *s = seq->items + seq->offsets[u];
        for (int t = 0, L = train_row(seq, u, m->cfg.max_len, &first); t < L; t++)
            if (s[first + t + 1] >= 0 && s[first + t + 1] < m->cfg.n_items)
                counts[s[first + t + 1]] += 1.0;
    }
    int rc = ssna_set_item_counts(m, counts, err, errlen);
    free(counts);
    return rc;
}

int ssna_train_epoch(SsnaModel *m, const float *states, const SsnaSequences *seq, int batch,
                     const AdamConfig *adam, uint64_t *shuffle_rng, double *mean_loss, int *steps,
                     char *err, size_t errlen) {
    int max_len = m->cfg.max_len, n = 0, rc = -1;
    int *order = malloc((size_t)(seq->n_users > 0 ? seq->n_users : 1) * sizeof(int));
    BatchBuf b = {0};
    if (!order || batch_reserve(&b, batch, batch * max_len)) {
        snprintf(err, errlen, "ssna train: out of memory");
        goto done;
    }
    if (m->cfg.loss == SSNA_LOSS_LOGQ && m->log_q_cap < m->cfg.n_items &&
        set_target_counts(m, seq, err, errlen))
        goto done;
    for (int u = 0, first; u < seq->n_users; u++)
        if (train_row(seq, u, max_len, &first) >= 1) order[n++] = u;
    for (int i = n - 1; i > 0; i--) { /* Fisher-Yates */
        int j = (int)(rng_next(shuffle_rng) % (uint64_t)(i + 1));
        int t = order[i];
        order[i] = order[j], order[j] = t;
    }
    double loss_sum = 0.0;
    long positions = 0;
    *steps = 0;
    for (int start = 0; start < n; start += batch) {
        int rows = n - start < batch ? n - start : batch, N = 0;
        b.offsets[0] = 0;
        for (int r = 0; r < rows; r++) {
            int u = order[start + r], first;
            const int *s = seq->items + seq->offsets[u];
            int L = train_row(seq, u, max_len, &first); /* positions: s[t] predicts s[t + 1] */
            for (int t = 0; t < L; t++) {
                b.items[N + t] = s[first + t];
                b.targets[N + t] = s[first + t + 1];
            }
            N += L;
            b.offsets[r + 1] = N;
        }
        SsnaBatch sb = {rows, b.offsets, b.items, b.targets};
        float loss;
        params_zero_grad(&m->ps);
        if (ssna_forward(m, &sb, states, &loss, err, errlen)) goto done;
        if (ssna_backward(m)) {
            snprintf(err, errlen, "ssna train: out of memory in backward (%d positions)", N);
            goto done;
        }
        adam_step(&m->ps, adam);
        loss_sum += (double)loss * N;
        positions += N;
        (*steps)++;
    }
    *mean_loss = positions ? loss_sum / (double)positions : 0.0;
    rc = 0;
done:
    free(order);
    batch_free(&b);
    return rc;
}

/* ---- evaluation ----------------------------------------------------------------------------- */

/* Raw and normalised vectors of every item: [n_items, d] each, malloc'd; one item-tower pass. */
static int all_item_vectors(SsnaModel *m, const float *states, float **raw, float **norm, char *err,
                            size_t errlen) {
    size_t n = (size_t)m->cfg.n_items * m->cfg.d;
    *raw = malloc(n * sizeof(float));
    *norm = malloc(n * sizeof(float));
    if (!*raw || !*norm) {
        return errmsg_fail(err, errlen, "ssna eval: out of memory for %d item vectors",
                           m->cfg.n_items);
    }
    return ssna_item_vectors(m, states, NULL, m->cfg.n_items, *raw, *norm, err, errlen);
}

int ssna_evaluate(SsnaModel *m, const float *states, const SsnaSequences *seq, SsnaSplit split,
                  int batch, Metrics *out, char *err, size_t errlen) {
    return ssna_evaluate_ranks(m, states, seq, split, batch, out, NULL, err, errlen);
}

int ssna_evaluate_ranks(SsnaModel *m, const float *states, const SsnaSequences *seq,
                        SsnaSplit split, int batch, Metrics *out, int *ranks, char *err,
                        size_t errlen) {
    const int ks[] = SSNA_EVAL_KS;
    int d = m->cfg.d, n_items = m->cfg.n_items, max_len = m->cfg.max_len, rc = -1;
    metrics_init(out, ks, (int)(sizeof ks / sizeof ks[0]));
    float *raw = NULL, *norm = NULL;
    float *users = malloc((size_t)batch * d * sizeof(float));
    float *scores = malloc((size_t)batch * n_items * sizeof(float));
    int *target = malloc((size_t)batch * sizeof(int)), *user = malloc((size_t)batch * sizeof(int));
    BatchBuf b = {0};
    if (!users || !scores || !target || !user || batch_reserve(&b, batch, batch * max_len)) {
        snprintf(err, errlen, "ssna eval: out of memory");
        goto done;
    }
    if (all_item_vectors(m, states, &raw, &norm, err, errlen)) goto done;
    for (int u = 0; ranks && u < seq->n_users; u++) ranks[u] = -1;
    for (int u0 = 0; u0 < seq->n_users;) {
        int rows = 0, N = 0;
        b.offsets[0] = 0;
        for (; u0 < seq->n_users && rows < batch; u0++) {
            int n = seq_len(seq, u0);
            if (n < 3) continue;
            const int *s = seq->items + seq->offsets[u0];
            int held = split == SSNA_SPLIT_TEST ? n - 1 : n - 2; /* input s[0..held) */
            int first = held > max_len ? held - max_len : 0;
            memcpy(b.items + N, s + first, (size_t)(held - first) * sizeof(int));
            N += held - first;
            b.offsets[++rows] = N;
            target[rows - 1] = s[held];
            user[rows - 1] = u0;
        }
        if (!rows) break;
        SsnaBatch sb = {rows, b.offsets, b.items, NULL};
        if (ssna_user_vectors(m, &sb, raw, users, err, errlen)) goto done;
        cosine_scores(scores, users, norm, rows, n_items, d, 1.0f);
        for (int r = 0; r < rows; r++) {
            int rank = metrics_rank(scores + (size_t)r * n_items, n_items, target[r]);
            metrics_add(out, rank);
            if (ranks) ranks[user[r]] = rank;
        }
    }
    rc = 0;
done:
    free(raw), free(norm), free(users), free(scores), free(target), free(user);
    batch_free(&b);
    return rc;
}

int ssna_top_k(SsnaModel *m, const float *item_raw, const float *item_norm, const int *items, int n,
               int k, int exclude_seen, int *top_ids, float *top_scores, char *err, size_t errlen) {
    int d = m->cfg.d, n_items = m->cfg.n_items, first = n > m->cfg.max_len ? n - m->cfg.max_len : 0;
    int offsets[2] = {0, n - first};
    float *user = malloc((size_t)d * sizeof(float));
    float *scores = malloc((size_t)n_items * sizeof(float));
    int rc = -1;
    if (!user || !scores) {
        snprintf(err, errlen, "ssna recommend: out of memory");
        goto done;
    }
    SsnaBatch sb = {1, offsets, items + first, NULL};
    if (ssna_user_vectors(m, &sb, item_raw, user, err, errlen)) goto done;
    cosine_scores(scores, user, item_norm, 1, n_items, d, 1.0f);
    /* taken (or excluded) items score -inf: below any cosine and any dot product */
    if (exclude_seen)
        for (int i = 0; i < n; i++) scores[items[i]] = -INFINITY;
    for (int j = 0; j < k; j++) { /* k is small: selection beats a sort */
        int best = -1;
        for (int i = 0; i < n_items; i++)
            if (scores[i] > -INFINITY && (best < 0 || scores[i] > scores[best])) best = i;
        top_ids[j] = best;
        top_scores[j] = best >= 0 ? scores[best] : 0.0f;
        if (best >= 0) scores[best] = -INFINITY;
    }
    rc = 0;
done:
    free(user), free(scores);
    return rc;
}

/* ---- checkpoints ---------------------------------------------------------------------------- */

/* Version 2 ends with a "sha256 <hex of everything before it>\n" line, so a truncated or
 * damaged file is refused as such; version 1 files (no digest) still load. */
#define CKPT_MAGIC    "SSNACKPT 2\n"
#define CKPT_MAGIC_V1 "SSNACKPT 1\n"
#define CKPT_DIGEST   "sha256 "

static void write_header(FILE *f, const SsnaConfig *c, const SsnaTrainState *st) {
    fprintf(f, "variant %s\nn_items %d\nhidden %d\nlayers %d\nd %d\nn_experts %d\n",
            ssna_variant_name(c->variant), c->n_items, c->hidden, c->layers, c->d, c->n_experts);
    fprintf(f, "tmlp_layers %d\nn_blocks %d\nn_heads %d\ninner %d\nmax_len %d\n", c->tmlp_layers,
            c->n_blocks, c->n_heads, c->inner, c->max_len);
    fprintf(f,
            "adapter_dropout %.9g\nhidden_dropout %.9g\nattn_dropout %.9g\nln_eps %.9g\ntau %.9g\n"
            "loss %s\n",
            c->adapter_dropout, c->hidden_dropout, c->attn_dropout, c->ln_eps, c->tau,
            ssna_loss_name(c->loss));
    // only a dot-product model says so: every cosine checkpoint stays readable by earlier builds
    if (c->score != SSNA_SCORE_COS) fprintf(f, "score %s\n", ssna_score_name(c->score));
    if (c->item_ids) fprintf(f, "item_ids %d\n", c->item_ids); // likewise: absent = text only
    fprintf(f, "epoch %d\nbest_epoch %d\nbad_epochs %d\ntrain_seconds %.17g\n", st->epoch,
            st->best_epoch, st->bad_epochs, st->train_seconds);
    for (int i = 0; i < 4; i++)
        fprintf(f, "best_valid%d %.17g\nbest_test%d %.17g\n", i, st->best_valid[i], i,
                st->best_test[i]);
    fprintf(f, "shuffle_rng %" PRIu64 "\nmodel_rng %" PRIu64 "\nmeta %s\nend\n", st->shuffle_rng,
            st->model_rng, st->meta);
}

static int write_blob(FILE *f, const void *blob, size_t len) {
    uint64_t n = len;
    return fwrite(&n, sizeof n, 1, f) == 1 && fwrite(blob, 1, len, f) == len ? 0 : -1;
}

int ssna_checkpoint_save(const char *path, const SsnaModel *m, const SsnaTrainState *st,
                         const void *best_blob, size_t best_len, char *err, size_t errlen) {
    void *blob = NULL;
    size_t len = params_serialize(&m->ps, &blob);
    FileBuffer b;
    if (!len || file_buffer_open(&b, err, errlen)) {
        free(blob);
        return len ? -1 : errmsg_fail(err, errlen, "%s: cannot serialise", path);
    }
    fputs(CKPT_MAGIC, b.f);
    write_header(b.f, &m->cfg, st);
    int bad = write_blob(b.f, blob, len) ||
              write_blob(b.f, best_blob ? best_blob : blob, best_blob ? best_len : len);
    free(blob);
    char hex[65];
    if (!bad && !fflush(b.f)) { // data and len are valid after a flush
        sha256_hex(b.data, b.len, hex);
        fprintf(b.f, "%s%s\n", CKPT_DIGEST, hex);
    }
    if (bad) {
        file_buffer_discard(&b);
        return errmsg_fail(err, errlen, "%s: out of memory", path);
    }
    return file_buffer_commit(&b, path, err, errlen);
}

/* Check the digest line that ends a version 2 file and cut it off (*len shrinks); version 1 has
 * none. 0, or -1 with err. */
static int check_digest(const char *path, const char *buf, size_t *len, char *err, size_t errlen) {
    size_t magic = strlen(CKPT_MAGIC), tail = strlen(CKPT_DIGEST) + 64 + 1;
    if (*len >= magic && !memcmp(buf, CKPT_MAGIC_V1, magic)) return 0;
    if (*len < magic || memcmp(buf, CKPT_MAGIC, magic))
        return errmsg_fail(err, errlen, "%s: not an ssna checkpoint", path);
    const char *d = *len >= magic + tail ? buf + *len - tail : NULL;
    char hex[65];
    if (!d || memcmp(d, CKPT_DIGEST, strlen(CKPT_DIGEST)) || buf[*len - 1] != '\n')
        return errmsg_fail(err, errlen, "%s: truncated (%zu bytes, no digest at the end)", path,
                           *len);
    sha256_hex(buf, (size_t)(d - buf), hex);
    if (memcmp(hex, d + strlen(CKPT_DIGEST), 64))
        return errmsg_fail(err, errlen, "%s: damaged (its sha256 does not match its contents)",
                           path);
    *len = (size_t)(d - buf);
    return 0;
}

/* A header value as an int / a finite double: 0, or -1 when it is not one (model/numparse.h). */
static int parse_header_int(const char *val, int *out) {
    return numparse_int(val, INT_MIN, INT_MAX, out) ? -1 : 0;
}

static int parse_header_double(const char *val, double *out) {
    return numparse_double(val, -HUGE_VAL, HUGE_VAL, out) ? -1 : 0;
}

/* One "key value" header line into the config or state; 0, or -1 for an unknown key or a value
 * that is not a number of its type. */
static int read_header_line(const char *key, const char *val, SsnaConfig *c, SsnaTrainState *st) {
    struct {
        const char *key;
        int *i;
        float *f;
        double *d;
    } fields[] = {
        {"n_items", &c->n_items, NULL, NULL},
        {"hidden", &c->hidden, NULL, NULL},
        {"layers", &c->layers, NULL, NULL},
        {"d", &c->d, NULL, NULL},
        {"n_experts", &c->n_experts, NULL, NULL},
        {"tmlp_layers", &c->tmlp_layers, NULL, NULL},
        {"n_blocks", &c->n_blocks, NULL, NULL},
        {"n_heads", &c->n_heads, NULL, NULL},
        {"inner", &c->inner, NULL, NULL},
        {"max_len", &c->max_len, NULL, NULL},
        {"item_ids", &c->item_ids, NULL, NULL},
        {"adapter_dropout", NULL, &c->adapter_dropout, NULL},
        {"hidden_dropout", NULL, &c->hidden_dropout, NULL},
        {"attn_dropout", NULL, &c->attn_dropout, NULL},
        {"ln_eps", NULL, &c->ln_eps, NULL},
        {"tau", NULL, &c->tau, NULL},
        {"epoch", &st->epoch, NULL, NULL},
        {"best_epoch", &st->best_epoch, NULL, NULL},
        {"bad_epochs", &st->bad_epochs, NULL, NULL},
        {"train_seconds", NULL, NULL, &st->train_seconds},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (strcmp(key, fields[i].key)) continue;
        double v;
        if (fields[i].i) return parse_header_int(val, fields[i].i);
        if (parse_header_double(val, &v)) return -1;
        if (fields[i].f) *fields[i].f = (float)v;
        if (fields[i].d) *fields[i].d = v;
        return 0;
    }
    if (!strcmp(key, "variant")) {
        int v = ssna_variant_parse(val);
        if (v < 0) return -1;
        c->variant = (SsnaVariant)v;
    } else if (!strcmp(key, "score")) { // absent: cos
        int sc = ssna_score_parse(val);
        if (sc < 0) return -1;
        c->score = (SsnaScore)sc;
    } else if (!strcmp(key, "loss")) { // absent before the loss option: inbatch
        int l = ssna_loss_parse(val);
        if (l < 0) return -1;
        c->loss = (SsnaLoss)l;
    } else if (!strncmp(key, "best_valid", 10) || !strncmp(key, "best_test", 9)) {
        int idx = key[strlen(key) - 1] - '0';
        if (idx < 0 || idx > 3) return -1;
        return parse_header_double(val, &(key[5] == 'v' ? st->best_valid : st->best_test)[idx]);
    } else if (!strcmp(key, "shuffle_rng") || !strcmp(key, "model_rng")) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(val, &end, 10);
        if (end == val || *end || errno || val[0] == '-') return -1;
        *(key[0] == 's' ? &st->shuffle_rng : &st->model_rng) = v;
    } else if (!strcmp(key, "meta")) {
        snprintf(st->meta, sizeof st->meta, "%s", val);
    } else {
        return -1;
    }
    return 0;
}

/* One length-prefixed blob of the file f (file_len bytes in all): a length past the end is a
 * truncated file, not an allocation. */
static void *read_blob(FILE *f, size_t file_len, size_t *len) {
    uint64_t n;
    long pos = ftell(f);
    if (fread(&n, sizeof n, 1, f) != 1 || pos < 0 || n > file_len - (size_t)pos) return NULL;
    void *b = malloc(n ? (size_t)n : 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        return NULL;
    }
    *len = (size_t)n;
    return b;
}

int ssna_checkpoint_load(const char *path, int best, SsnaModel *m, SsnaTrainState *st_out,
                         void **best_blob, size_t *best_len, char *err, size_t errlen) {
    char *buf = NULL;
    size_t buf_len = 0;
    if (file_read_all(path, &buf, &buf_len, err, errlen)) return -1;
    if (check_digest(path, buf, &buf_len, err, errlen)) {
        free(buf);
        return -1;
    }
    FILE *f = fmemopen(buf, buf_len ? buf_len : 1, "rb");
    if (!f) {
        free(buf);
        return errmsg_fail(err, errlen, "%s: out of memory", path);
    }
    char line[8192];
    SsnaConfig c = ssna_config_default(SSNA_VARIANT_GRU, 1, 1, 1);
    c.attn_dropout = 0.0f; // files written before attention dropout trained without it
    SsnaTrainState st;
    memset(&st, 0, sizeof st);
    void *latest = NULL, *bestb = NULL;
    size_t latest_len = 0, bl = 0;
    int ln = 1, rc = -1;
    memset(m, 0, sizeof *m);
    if (!fgets(line, sizeof line, f) || (strcmp(line, CKPT_MAGIC) && strcmp(line, CKPT_MAGIC_V1))) {
        snprintf(err, errlen, "%s: not an ssna checkpoint", path);
        goto done;
    }
    while (fgets(line, sizeof line, f)) {
        ln++;
        line[strcspn(line, "\n")] = 0;
        if (!strcmp(line, "end")) break;
        char *sp = strchr(line, ' ');
        if (!sp)
            sp = line + strlen(line);
        else
            *sp++ = 0;
        if (read_header_line(line, sp, &c, &st)) {
            snprintf(err, errlen, "%s:%d: unknown or bad header field '%s'", path, ln, line);
            goto done;
        }
    }
    latest = read_blob(f, buf_len, &latest_len);
    bestb = latest ? read_blob(f, buf_len, &bl) : NULL;
    if (!bestb) {
        snprintf(err, errlen, "%s: truncated parameter blobs", path);
        goto done;
    }
    /* the header's config must declare what the blob holds (its total at offset 16) before
     * anything of the config's size is allocated */
    uint64_t blob_total = 0;
    if (latest_len >= 24) memcpy(&blob_total, (const char *)latest + 16, 8);
    size_t want = ssna_param_count(&c);
    if (want && want != blob_total) {
        snprintf(err, errlen, "%s: its config declares %zu parameters, its blob holds %" PRIu64,
                 path, want, blob_total);
        goto done;
    }
    if (ssna_create(m, &c, 1, err, errlen)) goto done;
    if (params_deserialize(&m->ps, best ? bestb : latest, best ? bl : latest_len, err, errlen))
        goto done;
    m->rng = st.model_rng;
    if (st_out) *st_out = st;
    if (best_blob) {
        *best_blob = bestb, *best_len = bl;
        bestb = NULL;
    }
    rc = 0;
done:
    fclose(f);
    free(buf), free(latest), free(bestb);
    if (rc && m->work) ssna_free(m);
    return rc;
}
