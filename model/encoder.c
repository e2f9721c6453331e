/* encoder.c - the forward pass of the frozen encoder (see encoder.h): packed length-sorted
 * batches, per-sequence attention, worker threads. */
#include <cblas.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/errmsg.h"
#include "model/encoder_internal.h"
#include "model/kernels.h"

/* One packed batch: sequences order[first .. first + count) of the length-sorted order. */
typedef struct {
    int first, count, n_tokens, max_len;
} EncoderBatch;

/* What every worker shares for one call. */
typedef struct {
    const Encoder *e;
    const int *const *ids;
    const int *n_ids;
    const int *order; /* sequence indices sorted by length, longest first */
    const EncoderBatch *batches;
    int n_batches;
    atomic_int next_batch;
    int pool, first_layer, n_layers;
    const size_t *token_offset; /* ENCODER_POOL_TOKENS: first output row of each sequence */
    float *out;                 /* [n, n_layers, C], or [total tokens, n_layers, C] */
} EncoderJob;

/* Scratch of one worker, sized for the largest batch. */
typedef struct {
    float *x, *tmp, *att_out; // [N, C]
    float *qkv;               // [N, 3C]
    float *ff;                // [N, F]
    float *att;               // [T, T]
} EncoderWork;

static void work_free(EncoderWork *w) {
    free(w->x);
    free(w->tmp);
    free(w->qkv);
    free(w->att_out);
    free(w->ff);
    free(w->att);
}

static int work_alloc(EncoderWork *w, const Encoder *e, int n_tokens, int max_len) {
    size_t nc = (size_t)n_tokens * e->hidden;
    memset(w, 0, sizeof *w);
    w->x = malloc(nc * sizeof(float));
    w->tmp = malloc(nc * sizeof(float));
    w->qkv = malloc(3 * nc * sizeof(float));
    w->att_out = malloc(nc * sizeof(float));
    w->ff = malloc((size_t)n_tokens * e->ffn * sizeof(float));
    w->att = malloc((size_t)max_len * max_len * sizeof(float));
    if (!w->x || !w->tmp || !w->qkv || !w->att_out || !w->ff || !w->att) {
        work_free(w);
        return -1;
    }
    return 0;
}

/* Pool layer `layer` of every sequence of the batch into job->out when the caller asked for it.
 * x: [N, C] packed states of the batch. */
static void record_layer(EncoderJob *job, const EncoderBatch *b, const float *x, int layer) {
    int j = job->first_layer - layer;
    if (j < 0 || j >= job->n_layers) return;
    int C = job->e->hidden;
    size_t off = 0;
    for (int s = 0; s < b->count; s++) {
        int seq = job->order[b->first + s];
        int L = job->n_ids[seq];
        float *dst = job->out + ((size_t)seq * job->n_layers + j) * C;
        const float *xs = x + off * C;
        if (job->pool == ENCODER_POOL_TOKENS) {
            for (int t = 0; t < L; t++)
                memcpy(job->out + ((job->token_offset[seq] + t) * job->n_layers + j) * C,
                       xs + (size_t)t * C, (size_t)C * sizeof(float));
        } else if (job->pool == ENCODER_POOL_MEAN) {
            for (int c = 0; c < C; c++) dst[c] = 0.0f;
            for (int t = 0; t < L; t++)
                for (int c = 0; c < C; c++) dst[c] += xs[(size_t)t * C + c];
            for (int c = 0; c < C; c++) dst[c] /= (float)L;
        } else {
            memcpy(dst, xs, (size_t)C * sizeof(float));
        }
        off += (size_t)L;
    }
}

/* Embeddings (word + position + token type 0, LayerNorm) of the batch into w->x: [N, C]. */
static void embed_batch(const EncoderJob *job, const EncoderBatch *b, EncoderWork *w) {
    const Encoder *e = job->e;
    int C = e->hidden;
    size_t t = 0;
    for (int s = 0; s < b->count; s++) {
        int seq = job->order[b->first + s];
        for (int i = 0; i < job->n_ids[seq]; i++, t++) {
            float *row = w->x + t * C;
            const float *we = e->wte + (size_t)job->ids[seq][i] * C;
            const float *pe = e->wpe + (size_t)(e->position_offset + i) * C;
            for (int c = 0; c < C; c++) row[c] = we[c] + pe[c];
            if (e->wtt0)
                for (int c = 0; c < C; c++) row[c] += e->wtt0[c];
        }
    }
    encoder_add_layernorm(w->x, NULL, e->emb_ln_w, e->emb_ln_b, b->n_tokens, C, e->eps);
}

/* The rest of a post-LayerNorm block once attention has run, over N rows: x = LN1(x + att Wo),
 * then x = LN2(x + FFN(x)). x, att, tmp: [N, C]; ff: [N, F]; att is read, tmp and ff are scratch.
 */
static void block_after_attention(const Encoder *e, const EncoderBlock *blk, float *x,
                                  const float *att, float *tmp, float *ff, int N) {
    int C = e->hidden, F = e->ffn;
    linear_forward(tmp, att, blk->wo, blk->bo, N, C, C);
    encoder_add_layernorm(x, tmp, blk->ln1_w, blk->ln1_b, N, C, e->eps);
    linear_forward(ff, x, blk->w1, blk->b1, N, C, F);
    encoder_gelu(ff, (size_t)N * F);
    linear_forward(tmp, ff, blk->w2, blk->b2, N, F, C);
    encoder_add_layernorm(x, tmp, blk->ln2_w, blk->ln2_b, N, C, e->eps);
}

/* One post-LayerNorm block over the packed batch, in place on w->x: [N, C]. */
static void block_forward(const Encoder *e, const EncoderBlock *blk, const EncoderJob *job,
                          const EncoderBatch *b, EncoderWork *w) {
    int N = b->n_tokens, C = e->hidden;
    // one GEMM for Q, K and V: qkv rows are [q | k | v], 3C floats
    linear_forward(w->qkv, w->x, blk->wqkv, blk->bqkv, N, C, 3 * C);
    // each sequence attends only to itself: packing needs no padding mask
    size_t off = 0;
    for (int s = 0; s < b->count; s++) {
        int L = job->n_ids[job->order[b->first + s]];
        size_t o = off * C;
        const float *q = w->qkv + 3 * o;
        encoder_attention(w->att_out + o, w->att, q, q + C, q + 2 * C, 3 * C, L, C, e->n_heads);
        off += (size_t)L;
    }
    block_after_attention(e, blk, w->x, w->att_out, w->tmp, w->ff, N);
}

/* The same block when only each sequence's first token is wanted from it (the last block
 * computed, with ENCODER_POOL_CLS): keys and values of every token, but the query, attention
 * output, projection and feed-forward of the first tokens only, 2C^2 instead of (4C + 2F)C
 * multiply-adds per token. x: [N, C] packed; afterwards only each sequence's first row of it is
 * this block's output (what record_layer reads for [CLS] pooling), the other rows are scratch. */
static void block_forward_first(const Encoder *e, const EncoderBlock *blk, const EncoderJob *job,
                                const EncoderBatch *b, EncoderWork *w) {
    int N = b->n_tokens, S = b->count, C = e->hidden;
    float *kv = w->qkv, *h = w->tmp, *q = w->att_out;
    // kv: [N, 2C], rows C..3C of the qkv weight; h: [S, C] the first tokens' inputs
    linear_forward(kv, w->x, blk->wqkv + (size_t)C * C, blk->bqkv + C, N, C, 2 * C);
    size_t off = 0;
    for (int s = 0; s < S; s++) {
        memcpy(h + (size_t)s * C, w->x + off * C, (size_t)C * sizeof(float));
        off += (size_t)job->n_ids[job->order[b->first + s]];
    }
    linear_forward(q, h, blk->wqkv, blk->bqkv, S, C, C); // q: [S, C]
    off = 0;
    for (int s = 0; s < S; s++) { // attention out: [S, C] into w->x, whose rows are spent
        int L = job->n_ids[job->order[b->first + s]];
        const float *k = kv + off * 2 * C;
        encoder_attention_first(w->x + (size_t)s * C, w->att, q + (size_t)s * C, k, k + C, 2 * C, L,
                                C, e->n_heads);
        off += (size_t)L;
    }
    block_after_attention(e, blk, h, w->x, q, w->ff, S);
    off = 0;
    for (int s = 0; s < S; s++) { // back to each sequence's first row
        memcpy(w->x + off * C, h + (size_t)s * C, (size_t)C * sizeof(float));
        off += (size_t)job->n_ids[job->order[b->first + s]];
    }
}

static void run_batch(EncoderJob *job, const EncoderBatch *b, EncoderWork *w) {
    embed_batch(job, b, w);
    record_layer(job, b, w->x, 0);
    // layers above first_layer are never returned, so they are not computed
    for (int l = 0; l < job->first_layer; l++) {
        if (l == job->first_layer - 1 && job->pool == ENCODER_POOL_CLS)
            block_forward_first(job->e, &job->e->blocks[l], job, b, w);
        else
            block_forward(job->e, &job->e->blocks[l], job, b, w);
        record_layer(job, b, w->x, l + 1);
    }
}

typedef struct {
    EncoderJob *job;
    EncoderWork work;
} EncoderWorker;

static void *worker_main(void *arg) {
    EncoderWorker *wk = arg;
    EncoderJob *job = wk->job;
    for (;;) {
        int i = atomic_fetch_add(&job->next_batch, 1);
        if (i >= job->n_batches) break;
        run_batch(job, &job->batches[i], &wk->work);
    }
    return NULL;
}

static int cmp_len_desc(const void *a, const void *b, void *lens) {
    const int *n = lens;
    int x = *(const int *)a, y = *(const int *)b;
    if (n[x] != n[y]) return n[y] - n[x];
    return x - y;
}

/* Length-sorted order and greedy packing into batches of at most batch_tokens tokens. */
static int plan_batches(EncoderJob *job, int *order, EncoderBatch *batches, int n, int batch_tokens,
                        int *max_tokens) {
    for (int i = 0; i < n; i++) order[i] = i;
    qsort_r(order, (size_t)n, sizeof *order, cmp_len_desc, (void *)job->n_ids);
    int nb = 0;
    *max_tokens = 0;
    for (int i = 0; i < n;) {
        EncoderBatch *b = &batches[nb++];
        b->first = i;
        b->count = 0;
        b->n_tokens = 0;
        b->max_len = job->n_ids[order[i]];
        while (i < n && (b->count == 0 || b->n_tokens + job->n_ids[order[i]] <= batch_tokens)) {
            b->n_tokens += job->n_ids[order[i]];
            b->count++;
            i++;
        }
        if (b->n_tokens > *max_tokens) *max_tokens = b->n_tokens;
    }
    return nb;
}

int encoder_forward_ids(Encoder *e, const int *const *ids, const int *n_ids, int n, int pool,
                        int first_layer, int n_layers, float *out, char *err, size_t errlen) {
    if (pool != ENCODER_POOL_CLS && pool != ENCODER_POOL_MEAN && pool != ENCODER_POOL_TOKENS) {
        return errmsg_fail(err, errlen, "encoder: unknown pooling %d", pool);
    }
    if (first_layer < 0 || first_layer > e->n_layers || n_layers < 1 ||
        first_layer - n_layers + 1 < 0) {
        snprintf(err, errlen,
                 "encoder: layers %d down to %d requested, but the model has layers 0..%d",
                 first_layer, first_layer - n_layers + 1, e->n_layers);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (n_ids[i] < 1 || n_ids[i] > e->max_len) {
            return errmsg_fail(err, errlen, "encoder: sequence %d has %d tokens (allowed 1..%d)", i,
                               n_ids[i], e->max_len);
        }
        for (int t = 0; t < n_ids[i]; t++)
            if (ids[i][t] < 0 || ids[i][t] >= e->vocab) {
                return errmsg_fail(err, errlen,
                                   "encoder: sequence %d, token %d: id %d outside [0, %d)", i, t,
                                   ids[i][t], e->vocab);
            }
    }
    if (n <= 0) return 0;
    EncoderJob job = {.e = e,
                      .ids = ids,
                      .n_ids = n_ids,
                      .pool = pool,
                      .first_layer = first_layer,
                      .n_layers = n_layers,
                      .out = out};
    int *order = malloc((size_t)n * sizeof *order);
    EncoderBatch *batches = malloc((size_t)n * sizeof *batches);
    int n_workers = e->n_threads;
    EncoderWorker *workers = calloc((size_t)n_workers, sizeof *workers);
    size_t *token_offset = pool == ENCODER_POOL_TOKENS ? malloc((size_t)n * sizeof(size_t)) : NULL;
    int rc = -1, n_ready = 0, max_tokens = 0;
    if (!order || !batches || !workers || (pool == ENCODER_POOL_TOKENS && !token_offset)) goto oom;
    if (token_offset) {
        token_offset[0] = 0;
        for (int i = 1; i < n; i++) token_offset[i] = token_offset[i - 1] + (size_t)n_ids[i - 1];
        job.token_offset = token_offset;
    }
    job.order = order;
    job.batches = batches;
    job.n_batches = plan_batches(&job, order, batches, n, e->batch_tokens, &max_tokens);
    atomic_init(&job.next_batch, 0);
    if (n_workers > job.n_batches) n_workers = job.n_batches;
    for (; n_ready < n_workers; n_ready++) {
        workers[n_ready].job = &job;
        if (work_alloc(&workers[n_ready].work, e, max_tokens, batches[0].max_len)) goto oom;
    }
    if (n_workers == 1) {
        worker_main(&workers[0]);
    } else {
        // several callers into OpenBLAS at once: each must run its GEMMs on its own thread
        int blas_threads = openblas_get_num_threads();
        openblas_set_num_threads(1);
        pthread_t tids[n_workers];
        int started = 0;
        for (; started < n_workers; started++)
            if (pthread_create(&tids[started], NULL, worker_main, &workers[started])) break;
        if (started == 0) worker_main(&workers[0]); // no thread could start: do it all here
        for (int i = 0; i < started; i++) pthread_join(tids[i], NULL);
        openblas_set_num_threads(blas_threads);
    }
    rc = 0;
oom:
    if (rc) snprintf(err, errlen, "encoder: out of memory for %d sequences", n);
    for (int i = 0; i < n_ready; i++) work_free(&workers[i].work);
    free(token_offset);
    free(workers);
    free(batches);
    free(order);
    return rc;
}

int encoder_embed(Encoder *e, const char *const *texts, const size_t *lens, int n, int pool,
                  int first_layer, int n_layers, float *out, char *err, size_t errlen) {
    if (!e->tok) {
        snprintf(err, errlen,
                 "encoder: the checkpoint has no tokenizer (tokenizer.json, "
                 "vocab.txt or vocab.json + merges.txt)");
        return -1;
    }
    if (pool == ENCODER_POOL_TOKENS) {
        return errmsg_fail(err, errlen, "encoder: per-token states need encoder_forward_ids");
    }
    if (n <= 0) return 0;
    int *flat = malloc((size_t)n * e->max_len * sizeof *flat);
    int *n_ids = malloc((size_t)n * sizeof *n_ids);
    const int **ids = malloc((size_t)n * sizeof *ids);
    int rc = -1;
    if (!flat || !n_ids || !ids) {
        snprintf(err, errlen, "encoder: out of memory for %d texts", n);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        int *dst = flat + (size_t)i * e->max_len;
        size_t len = lens ? lens[i] : strlen(texts[i]);
        char terr[256];
        if (tokenizer_encode(e->tok, texts[i], len, e->max_len, dst, &n_ids[i], NULL, terr,
                             sizeof terr)) {
            snprintf(err, errlen, "encoder: text %d: %s", i, terr);
            goto done;
        }
        ids[i] = dst;
    }
    rc = encoder_forward_ids(e, ids, n_ids, n, pool, first_layer, n_layers, out, err, errlen);
done:
    free(ids);
    free(n_ids);
    free(flat);
    return rc;
}

int encoder_num_layers(const Encoder *e) {
    return e->n_layers;
}

int encoder_hidden(const Encoder *e) {
    return e->hidden;
}

int encoder_max_len(const Encoder *e) {
    return e->max_len;
}

void encoder_set_max_len(Encoder *e, int max_len) {
    int cap = e->n_positions - e->position_offset;
    if (max_len <= 0) max_len = e->tok ? tokenizer_max_len(e->tok) : cap;
    e->max_len = max_len < cap ? max_len : cap;
}

void encoder_set_threads(Encoder *e, int n_threads) {
    e->n_threads = n_threads < 1 ? 1 : n_threads;
}

void encoder_set_batch_tokens(Encoder *e, int batch_tokens) {
    e->batch_tokens = batch_tokens < 1 ? 1 : batch_tokens;
}

const Tokenizer *encoder_tokenizer(const Encoder *e) {
    return e->tok;
}

const char *encoder_identity(const Encoder *e) {
    return e->identity;
}

double encoder_flops(const Encoder *e, int n_tokens) {
    double C = e->hidden, F = e->ffn, T = n_tokens;
    // per block: Q, K, V, O projections, two FFN matrices, and QK^T plus PV
    double per_block = 2.0 * T * (4.0 * C * C + 2.0 * C * F) + 4.0 * T * T * C;
    return per_block * e->n_layers;
}

double encoder_flops_cls(const Encoder *e, int n_tokens) {
    double C = e->hidden, F = e->ffn, T = n_tokens;
    // the top block: keys and values of every token, everything else for one row
    double top = 2.0 * T * 2.0 * C * C + 2.0 * (2.0 * C * C + 2.0 * C * F) + 4.0 * T * C;
    double full = encoder_flops(e, n_tokens);
    return e->n_layers ? full - full / e->n_layers + top : full;
}
