/* ssna.c - the SSNA model's public interface: config, parameters, per-batch item
 * de-duplication, the losses (inbatch, logq, full; cosine or dot scores), and inference vectors.
 * The towers live in ssna_item.c and ssna_user.c. */
#include "model/ssna.h"

#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/errmsg.h"
#include "model/kernels.h"
#include "model/pool.h"
#include "model/rng.h"
#include "model/ssna_internal.h"

#define SSNA_NORM_EPS    1e-12f /* F.normalize's eps */
#define SSNA_INFER_CHUNK 1024
#define SSNA_MAX_ITEMS   (1 << 28)
#define SSNA_MAX_WIDTH   65536

static const char *const variant_names[] = {"gru", "mean", "weighted", "tmoe", "tmlp", "id"};
static const char *const loss_names[] = {"inbatch", "full", "logq"};
static const char *const score_names[] = {"cos", "dot"};

int ssna_score_parse(const char *name) {
    for (int i = 0; i < (int)(sizeof score_names / sizeof score_names[0]); i++)
        if (!strcmp(name, score_names[i])) return i;
    return -1;
}

const char *ssna_score_name(SsnaScore score) {
    if ((int)score < 0 || (int)score >= (int)(sizeof score_names / sizeof score_names[0]))
        return "?";
    return score_names[score];
}

int ssna_loss_parse(const char *name) {
    for (int i = 0; i < (int)(sizeof loss_names / sizeof loss_names[0]); i++)
        if (!strcmp(name, loss_names[i])) return i;
    return !strcmp(name, "sampled-logq") ? SSNA_LOSS_LOGQ : -1; // the name issue 17 gave it
}

const char *ssna_loss_name(SsnaLoss loss) {
    if ((int)loss < 0 || (int)loss >= (int)(sizeof loss_names / sizeof loss_names[0])) return "?";
    return loss_names[loss];
}

int ssna_variant_parse(const char *name) {
    for (int i = 0; i < (int)(sizeof variant_names / sizeof variant_names[0]); i++)
        if (!strcmp(name, variant_names[i])) return i;
    return -1;
}

const char *ssna_variant_name(SsnaVariant variant) {
    if ((int)variant < 0 || (int)variant >= (int)(sizeof variant_names / sizeof variant_names[0]))
        return "?";
    return variant_names[variant];
}

SsnaConfig ssna_config_default(SsnaVariant variant, int n_items, int hidden, int layers) {
    SsnaConfig c = {0};
    c.variant = variant;
    c.n_items = n_items;
    c.hidden = hidden;
    c.layers = layers;
    c.d = 256;
    c.n_experts = 8;
    c.tmlp_layers = 2;
    c.n_blocks = 2;
    c.n_heads = 2;
    c.inner = 256;
    c.max_len = 50;
    c.adapter_dropout = 0.2f; /* UniSRec adaptor_dropout_prob */
    c.hidden_dropout = 0.5f;  /* UniSRec / RecBole SASRec hidden_dropout_prob */
    c.attn_dropout = 0.5f;    /* UniSRec / RecBole SASRec attn_dropout_prob */
    c.ln_eps = 1e-12f;
    c.tau = 0.07f;
    return c;
}

/* ---- scratch buffers ------------------------------------------------------------------------ */

void *ssna_buf(SsnaBuf *b, size_t n) {
    if (n == 0) n = 1;
    if (n > b->cap) {
        /* grow by half again so slowly rising batch sizes do not reallocate every time */
        size_t cap = n + n / 2;
        void *p = realloc(b->p, cap);
        if (!p) return NULL;
        b->p = p;
        b->cap = cap;
    }
    return b->p;
}

void ssna_buf_free(SsnaBuf *b) {
    free(b->p);
    b->p = NULL;
    b->cap = 0;
}

/* Every member of a work struct from `first` to its end is an SsnaBuf. */
static void free_buf_run(void *base, size_t first_offset, size_t struct_size) {
    SsnaBuf *b = (SsnaBuf *)((char *)base + first_offset);
    for (size_t i = 0; i < (struct_size - first_offset) / sizeof(SsnaBuf); i++)
        ssna_buf_free(&b[i]);
}
_Static_assert((sizeof(SsnaItemWork) - offsetof(SsnaItemWork, ids)) % sizeof(SsnaBuf) == 0,
               "SsnaItemWork: only buffers after ids");
_Static_assert((sizeof(SsnaUserWork) - offsetof(SsnaUserWork, offsets)) % sizeof(SsnaBuf) == 0,
               "SsnaUserWork: only buffers after offsets");
_Static_assert((sizeof(SsnaWork) - offsetof(SsnaWork, uniq)) % sizeof(SsnaBuf) == 0,
               "SsnaWork: only buffers after uniq");

/* ---- parameters, noise ---------------------------------------------------------------------- */

/* t = the tensor named fmt(...) if the model declared it (else t stays NULL); counts it. */
static void resolve(const SsnaModel *m, SsnaTensor *t, int *found, const char *fmt, ...) {
    char name[PARAM_NAME_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    int idx = params_find(&m->ps, name);
    if (idx < 0) return;
    t->val = params_data(&m->ps, idx), t->grad = params_grad(&m->ps, idx);
    (*found)++;
}

/* Typed pointers to every declared tensor, looked up by name once. Every declared tensor must
 * land in a field: a name declared by a tower and not resolved here is an error, not a silent
 * NULL. 0, or -1 with err. */
static int resolve_params(SsnaModel *m, char *err, size_t errlen) {
    SsnaParams *p = m->p;
    int n = 0;
    for (int a = 0; a < SSNA_MAX_LAYERS; a++) {
        resolve(m, &p->adapter[a].w, &n, "adapter.%d.w", a);
        resolve(m, &p->adapter[a].b, &n, "adapter.%d.b", a);
        resolve(m, &p->adapter[a].gate, &n, "adapter.%d.gate", a);
        resolve(m, &p->adapter[a].noise, &n, "adapter.%d.noise", a);
    }
    resolve(m, &p->gru_w_ih, &n, "gru.w_ih"), resolve(m, &p->gru_w_hh, &n, "gru.w_hh");
    resolve(m, &p->gru_b_ih, &n, "gru.b_ih"), resolve(m, &p->gru_b_hh, &n, "gru.b_hh");
    resolve(m, &p->integrate_w, &n, "integrate.w");
    for (int l = 0; l < SSNA_MAX_TMLP; l++) {
        resolve(m, &p->tmlp[l].w, &n, "tmlp.%d.w", l);
        resolve(m, &p->tmlp[l].b, &n, "tmlp.%d.b", l);
    }
    resolve(m, &p->item_emb, &n, "item_emb");
    resolve(m, &p->pos_emb, &n, "pos_emb");
    resolve(m, &p->emb_ln.w, &n, "emb_ln.w"), resolve(m, &p->emb_ln.b, &n, "emb_ln.b");
    static const char *const pairs[] = {"qkv", "attn_out", "ln1", "ffn1", "ffn2", "ln2"};
    for (int l = 0; l < SSNA_MAX_BLOCKS; l++) {
        SsnaPair *bp[] = {&p->block[l].qkv,  &p->block[l].attn_out, &p->block[l].ln1,
                          &p->block[l].ffn1, &p->block[l].ffn2,     &p->block[l].ln2};
        for (int i = 0; i < 6; i++) {
            resolve(m, &bp[i]->w, &n, "block.%d.%s.w", l, pairs[i]);
            resolve(m, &bp[i]->b, &n, "block.%d.%s.b", l, pairs[i]);
        }
    }
    if (n != m->ps.ntensors)
        return errmsg_fail(err, errlen, "ssna: %d of %d declared tensors have no typed field",
                           m->ps.ntensors - n, m->ps.ntensors);
    return 0;
}

typedef struct {
    uint8_t *keep;
    uint64_t state;
    float p;
} DrawMaskJob;

// keep[i] = (the i-th uniform from state) >= p: the same numbers as n rng_uniform calls in turn
static void draw_mask_range(void *arg, size_t begin, size_t end) {
    const DrawMaskJob *j = arg;
    for (size_t i = begin; i < end; i++) j->keep[i] = rng_unit(rng_at(j->state, i)) >= j->p;
}

int ssna_draw_mask(SsnaModel *m, uint8_t *keep, size_t n, float p) {
    if (m->noise) return m->noise->draw_mask(m->noise->ctx, keep, n, p);
    DrawMaskJob j = {keep, m->rng, p};
    pool_for(n, 16384, draw_mask_range, &j);
    m->rng += (uint64_t)n * RNG_GAMMA;
    return 0;
}

int ssna_draw_normal(SsnaModel *m, float *x, size_t n) {
    if (m->noise) return m->noise->draw_normal(m->noise->ctx, x, n);
    rng_fill_normal(x, n, 0.0f, 1.0f, &m->rng);
    return 0;
}

typedef struct {
    float *out;
    const float *inp;
    const uint8_t *keep;
    float scale;
} MaskJob;

static void apply_mask_range(void *arg, size_t begin, size_t end) {
    const MaskJob *j = arg;
    // locals, not j->: a store through out could alias the job, which stops vectorisation
    float *restrict out = j->out, scale = j->scale;
    const float *restrict inp = j->inp;
    const uint8_t *restrict keep = j->keep;
    for (size_t i = begin; i < end; i++) out[i] = keep[i] ? inp[i] * scale : 0.0f;
}

void ssna_apply_mask(float *out, const float *inp, const uint8_t *keep, size_t n, float p) {
    MaskJob j = {out, inp, keep, p < 1.0f ? 1.0f / (1.0f - p) : 0.0f};
    pool_for(n, 16384, apply_mask_range, &j);
}

/* ---- create / free -------------------------------------------------------------------------- */

/* Every size is bounded, so no product of two of them overflows an int and a checkpoint header
 * cannot ask for an absurd allocation; NaN fails every float test. */
static int check_config(const SsnaConfig *c, char *err, size_t errlen) {
    const char *why = NULL;
    if ((int)c->variant < SSNA_VARIANT_GRU || c->variant > SSNA_VARIANT_ID)
        why = "unknown variant";
    else if (c->n_items <= 0 || c->n_items > SSNA_MAX_ITEMS)
        why = "n_items must be 1..2^28";
    else if ((c->variant != SSNA_VARIANT_ID && c->hidden <= 0) || c->hidden > SSNA_MAX_WIDTH)
        why = "hidden must be 1..65536";
    else if (c->layers < 1 || c->layers > SSNA_MAX_LAYERS)
        why = "layers must be 1..32";
    else if (c->d <= 0 || c->d > SSNA_MAX_WIDTH || c->n_heads <= 0 || c->d % c->n_heads)
        why = "d must be 1..65536 and a multiple of heads";
    else if (c->n_experts <= 0 || c->n_experts > 1024)
        why = "n_experts must be 1..1024";
    else if (c->n_blocks < 1 || c->n_blocks > SSNA_MAX_BLOCKS)
        why = "blocks must be 1..8";
    else if (c->inner <= 0 || c->inner > SSNA_MAX_WIDTH || c->max_len <= 0 ||
             c->max_len > SSNA_MAX_WIDTH)
        why = "inner and max_len must be 1..65536";
    else if (c->variant == SSNA_VARIANT_TMLP && (c->tmlp_layers < 1 || c->tmlp_layers > 64))
        why = "tmlp needs 1..64 layers";
    else if ((int)c->loss < SSNA_LOSS_INBATCH || c->loss > SSNA_LOSS_LOGQ)
        why = "unknown loss";
    else if ((int)c->score < SSNA_SCORE_COS || c->score > SSNA_SCORE_DOT)
        why = "unknown score";
    else if (c->item_ids != 0 && c->item_ids != 1)
        why = "item_ids must be 0 or 1";
    else if (!(c->tau > 0.0f) || !(c->ln_eps > 0.0f))
        why = "tau and ln_eps must be positive";
    else if (!(c->adapter_dropout >= 0 && c->adapter_dropout < 1) ||
             !(c->hidden_dropout >= 0 && c->hidden_dropout < 1) ||
             !(c->attn_dropout >= 0 && c->attn_dropout < 1))
        why = "dropout must be in [0, 1)";
    if (!why) return 0;
    return errmsg_fail(err, errlen, "ssna: bad config: %s", why);
}

size_t ssna_param_count(const SsnaConfig *cfg) {
    char err[256];
    SsnaModel m;
    memset(&m, 0, sizeof m);
    if (check_config(cfg, err, sizeof err)) return 0;
    m.cfg = *cfg;
    params_init(&m.ps); // the tensor table only: nothing of the parameters' size is allocated
    size_t total = ssna_item_declare(&m, err, sizeof err) || ssna_user_declare(&m, err, sizeof err)
                       ? 0
                       : m.ps.total;
    params_free(&m.ps);
    return total;
}

int ssna_create(SsnaModel *m, const SsnaConfig *cfg, uint64_t seed, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    if (check_config(cfg, err, errlen)) return -1;
    m->cfg = *cfg;
    params_init(&m->ps);
    m->work = calloc(1, sizeof *m->work);
    if (!m->work) {
        return errmsg_fail(err, errlen, "ssna: out of memory");
    }
    m->p = calloc(1, sizeof *m->p);
    if (!m->p) {
        ssna_free(m);
        return errmsg_fail(err, errlen, "ssna: out of memory");
    }
    if (ssna_item_declare(m, err, errlen) || ssna_user_declare(m, err, errlen) ||
        params_alloc(&m->ps, err, errlen) || resolve_params(m, err, errlen)) {
        ssna_free(m);
        return -1;
    }
    uint64_t init_rng = seed;
    ssna_item_init(m, &init_rng);
    ssna_user_init(m, &init_rng);
    m->rng = seed ^ 0x5DEECE66Dull; /* training noise: a stream apart from the init stream */
    return 0;
}

void ssna_free(SsnaModel *m) {
    if (m->work) {
        SsnaWork *w = m->work;
        free_buf_run(&w->item, offsetof(SsnaItemWork, ids), sizeof w->item);
        free_buf_run(&w->user, offsetof(SsnaUserWork, offsets), sizeof w->user);
        free_buf_run(w, offsetof(SsnaWork, uniq), sizeof *w);
        free(w);
    }
    params_free(&m->ps);
    free(m->log_q), free(m->p);
    memset(m, 0, sizeof *m);
}

int ssna_set_item_counts(SsnaModel *m, const double *counts, char *err, size_t errlen) {
    int n = m->cfg.n_items; // grows with the daemon's catalogue
    if (n > m->log_q_cap) {
        float *q = realloc(m->log_q, (size_t)n * sizeof(float));
        if (!q) return snprintf(err, errlen, "ssna: out of memory for %d item counts", n), -1;
        m->log_q = q, m->log_q_cap = n;
    }
    double sum = n;
    for (int i = 0; i < n; i++) sum += counts[i];
    for (int i = 0; i < n; i++) m->log_q[i] = (float)log((counts[i] + 1.0) / sum);
    return 0;
}

/* ---- batches -------------------------------------------------------------------------------- */

static int check_batch(const SsnaModel *m, const SsnaBatch *b, int need_targets, char *err,
                       size_t errlen) {
    if (b->B <= 0 || b->offsets[0] != 0) {
        return errmsg_fail(err, errlen, "ssna: batch: need B > 0 rows and offsets[0] = 0");
    }
    for (int r = 0; r < b->B; r++) {
        int len = b->offsets[r + 1] - b->offsets[r];
        if (len < 1 || len > m->cfg.max_len) {
            return errmsg_fail(err, errlen, "ssna: batch row %d: length %d outside 1..%d", r, len,
                               m->cfg.max_len);
        }
    }
    for (int n = 0; n < b->offsets[b->B]; n++) {
        int it = b->items[n], tg = need_targets ? b->targets[n] : -1;
        if (it < 0 || it >= m->cfg.n_items || tg < -1 || tg >= m->cfg.n_items) {
            return errmsg_fail(err, errlen,
                               "ssna: batch position %d: item %d / target %d outside 0..%d", n, it,
                               tg, m->cfg.n_items - 1);
        }
    }
    return 0;
}

/* Distinct ids of list[0..n) (ids >= 0) in ascending order into uniq; local[i] = index of
 * list[i] in uniq (-1 for negative ids). mark: [n_items] scratch, returned all -1. */
static int dedup(int *uniq, int *local, const int *list, int n, int *mark, int n_items) {
    int U = 0;
    for (int i = 0; i < n; i++)
        if (list[i] >= 0) mark[list[i]] = 0;
    for (int id = 0; id < n_items; id++)
        if (mark[id] == 0) {
            mark[id] = U;
            uniq[U++] = id;
        }
    for (int i = 0; i < n; i++) local[i] = list[i] >= 0 ? mark[list[i]] : -1;
    for (int u = 0; u < U; u++) mark[uniq[u]] = -1;
    return U;
}

static int *mark_buffer(SsnaWork *w, int n_items) {
    int fresh = w->mark.cap < (size_t)n_items * sizeof(int);
    int *mark = SSNA_INTS(w->mark, n_items);
    if (mark && fresh)
        for (int i = 0; i < n_items; i++) mark[i] = -1;
    return mark;
}

/* rows[i] = vectors[local[i]] for i < n; vectors: [*, d] */
static void gather_rows(float *rows, const float *vectors, const int *local, int n, int d) {
    for (int i = 0; i < n; i++)
        memcpy(rows + (size_t)i * d, vectors + (size_t)local[i] * d, (size_t)d * sizeof(float));
}

static void scatter_add_rows(float *vectors, const float *rows, const int *local, int n, int d) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < d; j++) vectors[(size_t)local[i] * d + j] += rows[(size_t)i * d + j];
}

/* ---- training forward / backward ------------------------------------------------------------ */

typedef struct {
    float *logits;
    const int *tgt_col;
    const float *log_count, *corr;
    int Ut;
} OffsetJob;

static void add_offsets_rows(void *arg, size_t begin, size_t end) {
    const OffsetJob *j = arg;
    for (size_t n = begin; n < end; n++) {
        int t = j->tgt_col[n];
        if (t < 0) continue;
        float *row = j->logits + n * j->Ut;
        for (int c = 0; c < j->Ut; c++) row[c] += j->corr[c] + (c != t ? j->log_count[c] : 0.0f);
    }
}

/* In-batch logits [N, Ut] gain constant offsets (no gradient of their own). UniSRec scores every
 * position's target as a negative and masks only the copies of the row's OWN target: a distinct
 * negative item seen k times counts k times, i.e. its logit gains log k, while the own target
 * counts once. With log_q (loss logq), every candidate j also loses log q_j. 0, or -1 (memory). */
static int in_batch_offsets(SsnaWork *w, float *logits, const int *tgt_uniq, int N, int Ut,
                            const float *log_q) {
    const int *tgt_col = w->tgt_col.p;
    float *log_count = SSNA_FLOATS(w->vt_count, 2 * (size_t)Ut), *corr = log_count + Ut;
    if (!log_count) return -1;
    memset(log_count, 0, (size_t)Ut * sizeof(float));
    for (int n = 0; n < N; n++)
        if (tgt_col[n] >= 0) log_count[tgt_col[n]] += 1.0f;
    for (int j = 0; j < Ut; j++) {
        log_count[j] = logf(log_count[j]);
        corr[j] = log_q ? -log_q[tgt_uniq[j]] : 0.0f;
    }
    OffsetJob job = {logits, tgt_col, log_count, corr, Ut};
    pool_for((size_t)N, 16, add_offsets_rows, &job);
    return 0;
}

/* What a logit is per unit of score: 1/tau for cosines, 1 for dot products. */
static float logit_scale(const SsnaConfig *c) {
    return c->score == SSNA_SCORE_DOT ? 1.0f : 1.0f / c->tau;
}

int ssna_forward(SsnaModel *m, const SsnaBatch *b, const float *states, float *loss, char *err,
                 size_t errlen) {
    const SsnaConfig *c = &m->cfg;
    SsnaWork *w = m->work;
    int d = c->d, N = b->offsets[b->B];
    if (!b->targets) {
        return errmsg_fail(err, errlen, "ssna: training batch without targets");
    }
    if (check_batch(m, b, 1, err, errlen)) return -1;
    if (c->loss == SSNA_LOSS_LOGQ && m->log_q_cap < c->n_items) {
        snprintf(err, errlen,
                 "ssna: loss logq without counts of all %d items (ssna_set_item_counts)",
                 c->n_items);
        return -1;
    }
    w->N = N;
    int full = c->loss == SSNA_LOSS_FULL, n_all = full ? c->n_items : 2 * N;
    /* every item the batch touches (inputs and targets; full: every item) goes through the item
     * tower once */
    int *all = SSNA_INTS(w->all_ids, 2 * N), *uniq = SSNA_INTS(w->uniq, n_all);
    int *in_local = SSNA_INTS(w->in_local, 2 * N), *mark = mark_buffer(w, c->n_items);
    if (!all || !uniq || !in_local || !mark) goto oom;
    memcpy(all, b->items, (size_t)N * sizeof(int));
    memcpy(all + N, b->targets, (size_t)N * sizeof(int));
    if (full) {
        for (int i = 0; i < c->n_items; i++) uniq[i] = i;
        for (int i = 0; i < 2 * N; i++) in_local[i] = all[i];
        w->U = c->n_items;
    } else {
        w->U = dedup(uniq, in_local, all, 2 * N, mark, c->n_items);
    }
    float *v = SSNA_FLOATS(w->v, (size_t)w->U * d), *vin = SSNA_FLOATS(w->vin, (size_t)N * d);
    float *u = SSNA_FLOATS(w->u, (size_t)N * d);
    if (!v || !vin || !u) goto oom;
    if (ssna_item_forward(m, states, uniq, w->U, 1, v, err, errlen)) return -1;
    gather_rows(vin, v, in_local, N, d);
    if (ssna_user_forward(m, b->B, b->offsets, vin, 1, 0, u, err, errlen)) return -1;

    /* candidates: the distinct targets (in-batch negatives with same-target masking), or
     * every item (full) */
    int *tgt_col = SSNA_INTS(w->tgt_col, N), *tgt_local = SSNA_INTS(w->tgt_local, full ? n_all : N);
    int *tgt_uniq = SSNA_INTS(w->out_rows, full ? n_all : N);
    if (!tgt_col || !tgt_local || !tgt_uniq) goto oom;
    w->Ut = dedup(tgt_uniq, tgt_col, b->targets, N, mark, c->n_items);
    if (w->Ut == 0) {
        return errmsg_fail(err, errlen, "ssna: batch has no position with a target");
    }
    if (full) {
        for (int j = 0; j < c->n_items; j++) tgt_uniq[j] = tgt_local[j] = j;
        memcpy(tgt_col, b->targets, (size_t)N * sizeof(int));
        w->Ut = c->n_items;
    } else { /* U-local index of each distinct target: the second half of in_local holds them */
        for (int n = 0; n < N; n++)
            if (b->targets[n] >= 0) tgt_local[tgt_col[n]] = in_local[N + n];
    }
    int Ut = w->Ut;
    float *vt = SSNA_FLOATS(w->vt, (size_t)Ut * d), *vtn = SSNA_FLOATS(w->vtn, (size_t)Ut * d);
    float *vt_norm = SSNA_FLOATS(w->vt_norm, Ut), *un = SSNA_FLOATS(w->un, (size_t)N * d);
    float *u_norm = SSNA_FLOATS(w->u_norm, N), *logits = SSNA_FLOATS(w->logits, (size_t)N * Ut);
    float *probs = SSNA_FLOATS(w->probs, (size_t)N * Ut);
    if (!vt || !vtn || !vt_norm || !un || !u_norm || !logits || !probs) goto oom;
    gather_rows(vt, v, tgt_local, Ut, d);
    if (c->score == SSNA_SCORE_DOT) { // RecBole's logits: the vectors as they are
        memcpy(vtn, vt, (size_t)Ut * d * sizeof(float));
        memcpy(un, u, (size_t)N * d * sizeof(float));
    } else {
        l2norm_forward(vtn, vt_norm, vt, Ut, d, SSNA_NORM_EPS);
        l2norm_forward(un, u_norm, u, N, d, SSNA_NORM_EPS);
    }
    cosine_scores(logits, un, vtn, N, Ut, d, logit_scale(c));
    if (!full &&
        in_batch_offsets(w, logits, tgt_uniq, N, Ut, c->loss == SSNA_LOSS_LOGQ ? m->log_q : NULL))
        goto oom;
    *loss = crossentropy_forward(probs, logits, tgt_col, N, Ut);
    return 0;
oom:
    return errmsg_fail(err, errlen, "ssna: out of memory for a batch of %d positions", N);
}

int ssna_backward(SsnaModel *m) {
    const SsnaConfig *c = &m->cfg;
    SsnaWork *w = m->work;
    int d = c->d, N = w->N, Ut = w->Ut, U = w->U;
    float *dlogits = SSNA_FLOATS(w->dlogits, (size_t)N * Ut);
    float *dun = SSNA_FLOATS(w->dun, (size_t)N * d), *du = SSNA_FLOATS(w->du, (size_t)N * d);
    float *dvtn = SSNA_FLOATS(w->dvtn, (size_t)Ut * d), *dvt = SSNA_FLOATS(w->dvt, (size_t)Ut * d);
    float *dvin = SSNA_FLOATS(w->dvin, (size_t)N * d), *dv = SSNA_FLOATS(w->dv, (size_t)U * d);
    if (!dlogits || !dun || !du || !dvtn || !dvt || !dvin || !dv) return -1;
    crossentropy_backward(dlogits, w->probs.p, w->tgt_col.p, N, Ut, logit_scale(c));
    memset(dun, 0, (size_t)N * d * sizeof(float));
    memset(dvtn, 0, (size_t)Ut * d * sizeof(float));
    linear_backward(dun, dvtn, NULL, dlogits, w->un.p, w->vtn.p, N, d, Ut);
    memset(du, 0, (size_t)N * d * sizeof(float));
    memset(dvt, 0, (size_t)Ut * d * sizeof(float));
    if (c->score == SSNA_SCORE_DOT) {
        memcpy(du, dun, (size_t)N * d * sizeof(float));
        memcpy(dvt, dvtn, (size_t)Ut * d * sizeof(float));
    } else {
        l2norm_backward(du, dun, w->un.p, w->u_norm.p, N, d);
        l2norm_backward(dvt, dvtn, w->vtn.p, w->vt_norm.p, Ut, d);
    }
    memset(dvin, 0, (size_t)N * d * sizeof(float));
    if (ssna_user_backward(m, du, dvin)) return -1;
    memset(dv, 0, (size_t)U * d * sizeof(float));
    scatter_add_rows(dv, dvin, w->in_local.p, N, d);
    scatter_add_rows(dv, dvt, w->tgt_local.p, Ut, d);
    return ssna_item_backward(m, dv);
}

/* ---- inference ------------------------------------------------------------------------------ */

/* The rows scores are dot products of: x L2-normalised (cos), or x itself (dot).
 * out, x: [n, d]; len: [n] scratch. */
static void scoring_rows(const SsnaModel *m, float *out, float *len, const float *x, int n) {
    int d = m->cfg.d;
    if (m->cfg.score == SSNA_SCORE_DOT)
        memcpy(out, x, (size_t)n * d * sizeof(float));
    else
        l2norm_forward(out, len, x, n, d, SSNA_NORM_EPS);
}

int ssna_item_vectors(SsnaModel *m, const float *states, const int *ids, int n, float *raw,
                      float *norm, char *err, size_t errlen) {
    int d = m->cfg.d;
    SsnaWork *w = m->work;
    int *chunk = SSNA_INTS(w->out_rows, SSNA_INFER_CHUNK);
    float *len = SSNA_FLOATS(w->u_norm, SSNA_INFER_CHUNK);
    if (!chunk || !len) {
        return errmsg_fail(err, errlen, "ssna: out of memory");
    }
    for (int start = 0; start < n; start += SSNA_INFER_CHUNK) {
        int cn = n - start < SSNA_INFER_CHUNK ? n - start : SSNA_INFER_CHUNK;
        for (int i = 0; i < cn; i++) {
            chunk[i] = ids ? ids[start + i] : start + i;
            if (chunk[i] < 0 || chunk[i] >= m->cfg.n_items) {
                return errmsg_fail(err, errlen, "ssna: item id %d outside 0..%d", chunk[i],
                                   m->cfg.n_items - 1);
            }
        }
        float *r = raw + (size_t)start * d;
        if (ssna_item_forward(m, states, chunk, cn, 0, r, err, errlen)) return -1;
        if (norm) scoring_rows(m, norm + (size_t)start * d, len, r, cn);
    }
    return 0;
}

int ssna_user_vectors(SsnaModel *m, const SsnaBatch *b, const float *item_raw, float *out,
                      char *err, size_t errlen) {
    int d = m->cfg.d;
    SsnaWork *w = m->work;
    if (check_batch(m, b, 0, err, errlen)) return -1;
    int N = b->offsets[b->B];
    float *vin = SSNA_FLOATS(w->vin, (size_t)N * d);
    float *norm = SSNA_FLOATS(w->u_norm, b->B), *last = SSNA_FLOATS(w->un, (size_t)b->B * d);
    if (!vin || !norm || !last) {
        return errmsg_fail(err, errlen, "ssna: out of memory for %d positions", N);
    }
    gather_rows(vin, item_raw, b->items, N, d);
    if (ssna_user_forward(m, b->B, b->offsets, vin, 0, 1, last, err, errlen)) return -1;
    scoring_rows(m, out, norm, last, b->B);
    return 0;
}
