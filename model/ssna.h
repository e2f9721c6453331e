/* ssna.h - the SSNA sequential recommender: item tower (adapters over cached frozen-encoder layer
 * states) + SASRec user tower, cosine / temperature scores, in-batch-negative cross-entropy.
 *
 * Item tower (per distinct item of a batch, once):
 *   kept layer states h^m: [hidden], m = 0 is the encoder's TOP layer, m = a-1 the lowest kept.
 *   MoE adapter m (UniSRec): e_k = (dropout_0.2(h) - b_k) W_k^T, k < n_experts;
 *     gate logits g = h Wg^T (+ N(0,1) * (softplus(h Wn^T) + 0.01) in training only);
 *     z^m = sum_k softmax(g)_k e_k                                  z^m: [d]
 *   integration: gru (PyTorch GRU over z^0, z^1, .., z^(a-1), h0 = 0, v* = last state),
 *     mean (v* = mean_m z^m), weighted (v* = sum_m softmax(w)_m z^m, w: [a] learned);
 *   tmoe: v* = z^0 of one MoE adapter on the top layer (a = 1);
 *   tmlp: v* = MLP(dropout_0.2(h^0)), Linear(hidden, d) then (GELU, Linear(d, d)) x (n_l - 1);
 *   id: v* = a learned embedding row (ID-based SASRec baseline; no text, item states unused).
 *   item_ids (text variants): v* = the text vector above + a learned ID row item_emb[i]
 *     (UniSRec's transductive fine-tuning: text for what an item says, the row for what its
 *     co-occurrences say; an item never trained on keeps its N(0, 0.02) row, near zero).
 * User tower (RecBole SASRec, post-LN, eps 1e-12): x = dropout(LN(v*_t + pos_t)); per block
 *   x = LN(x + dropout(attn(x) W_o)), x = LN(x + dropout(GELU(x W_1) W_2)); causal attention
 *   with key padding; the attention probabilities go through dropout(attn_dropout) (RecBole's
 *   attn_dropout_prob) before they weight the values.
 * Loss: every position t of a sequence predicts the item at t + 1 (SASRec's all-prefix signal);
 *   mean cross-entropy over positions, of logits cos(u_t, v*_j) / tau over candidates j (score
 *   dot: u_t . v*_j, RecBole SASRec's logits, no normalisation and no tau):
 *   inbatch: UniSRec's in-batch negatives: the targets of all positions of the batch, logits of
 *     OTHER positions with the row's own target masked (a negative item that is the target of k
 *     positions counts k times). Computed over the DISTINCT targets j of the batch as
 *     cos / tau + (j is not t's target ? log k_j : 0).
 *   logq: inbatch minus log q_j for every candidate (own target included), q_j = the item's
 *     share of all training targets (ssna_set_item_counts): the sampling-bias correction of
 *     Yi et al. (RecSys 2019). In-batch candidates are drawn in proportion to popularity, so
 *     the plain softmax learns p(j | user) / q_j and ranks popular items too low.
 *   full: every item of the catalogue is a candidate (RecBole's CE, UniSRec fine-tuning): all
 *     n_items go through the item tower (with dropout) once per step.
 *
 * Sequences are packed: no padding to max_len; only attention sees a [B, T_max_of_batch] layout.
 * Randomness (dropout masks, gate noise) comes from the model's seeded rng, or from a caller's
 * SsnaNoise (the torch reference test supplies its own) in the fixed order documented there.
 */
#ifndef SSNA_MODEL_SSNA_H
#define SSNA_MODEL_SSNA_H

#include <stddef.h>
#include <stdint.h>

#include "model/params.h"

typedef enum {
    SSNA_VARIANT_GRU = 0,
    SSNA_VARIANT_MEAN,
    SSNA_VARIANT_WEIGHTED,
    SSNA_VARIANT_TMOE,
    SSNA_VARIANT_TMLP,
    SSNA_VARIANT_ID,
} SsnaVariant;

typedef enum {
    SSNA_LOSS_INBATCH = 0,
    SSNA_LOSS_FULL,
    SSNA_LOSS_LOGQ,
} SsnaLoss;

typedef enum {
    SSNA_SCORE_COS = 0, /* cos(u, v) / tau: the paper's and UniSRec's (the default) */
    SSNA_SCORE_DOT,     /* u . v: RecBole SASRec's; item and user vectors keep their lengths */
} SsnaScore;

typedef struct {
    SsnaVariant variant;
    SsnaLoss loss;   /* training objective (ssna.h's header says each); inference ignores it */
    SsnaScore score; /* the logits of training and the ranking score of inference */
    int n_items;     /* catalogue size; item ids are 0..n_items-1 */
    int hidden;      /* encoder hidden size of the cached states */
    int layers;      /* a: kept layers per item in the states (tmoe / tmlp use layer 0 only) */
    int d;           /* adapter output = SASRec width */
    int n_experts;   /* MoE whitening heads per adapter */
    int tmlp_layers;
    int n_blocks, n_heads, inner, max_len;
    float adapter_dropout, hidden_dropout, ln_eps, tau;
    float attn_dropout; /* on the attention probabilities; 0 = none (checkpoints before it) */
    int item_ids;       /* text variants: 1 = v* += a learned ID row item_emb[i] (UniSRec's
                           text + ID fine-tuning); 0 = text only (the paper's) */
} SsnaConfig;

/* A batch of B sequences, packed: row b holds items[offsets[b] .. offsets[b+1]), length <= max_len.
 * targets[n] is the item position n must predict, or -1 for no loss there. */
typedef struct {
    int B;
    const int *offsets; /* [B + 1], offsets[0] = 0, N = offsets[B] */
    const int *items;   /* [N] */
    const int *targets; /* [N] or NULL (scoring only) */
} SsnaBatch;

/* Where the training randomness comes from, in this order per forward pass:
 *   for m in 0..a-1 (tmlp: m = 0 only): mask [U, hidden] (adapter dropout),
 *                                      then (moe variants) normal [U, n_experts] (gate noise);
 *   mask [N, d] (embedding dropout); per block: mask [B, NH, T, T] (attention probabilities,
 *   T = longest row of the batch; only when attn_dropout > 0), mask [N, d] (attention output),
 *   mask [N, d] (feed-forward output).
 * U = distinct items of the batch (inputs and targets) in ascending id order (loss full: every
 * item 0..n_items-1); N = packed
 * positions in batch order. draw_mask fills keep flags (1 kept) for dropout probability p;
 * draw_normal fills N(0, 1). Each returns 0, or -1 to abort the forward pass. */
typedef struct {
    int (*draw_mask)(void *ctx, uint8_t *keep, size_t n, float p);
    int (*draw_normal)(void *ctx, float *x, size_t n);
    void *ctx;
} SsnaNoise;

typedef struct SsnaWork SsnaWork;
typedef struct SsnaParams SsnaParams;

typedef struct {
    SsnaConfig cfg;
    ParamSet ps;            /* every tensor in one blob (checkpoints, Adam), declared by name */
    SsnaParams *p;          /* the same tensors as typed pointers, resolved once in ssna_create */
    uint64_t rng;           /* drives dropout and gate noise when no SsnaNoise is set */
    const SsnaNoise *noise; /* optional override of rng (tests) */
    SsnaWork *work;         /* activations of the last training forward, for backward */
    float *log_q;           /* [n_items] log target shares (loss logq), ssna_set_item_counts */
    int log_q_cap;          /* rows log_q has room for */
} SsnaModel;

/* The paper's defaults for a variant: d 256, 8 experts, 2 blocks x 2 heads, inner 256, max_len
 * 50, adapter dropout 0.2, hidden dropout 0.5, attention dropout 0.5, eps 1e-12, tau 0.07, tmlp
 * 2 layers, loss inbatch. */
SsnaConfig ssna_config_default(SsnaVariant variant, int n_items, int hidden, int layers);
/* Parse / name a loss ("inbatch", "full", "logq" or its alias "sampled-logq"); -1 if unknown. */
int ssna_loss_parse(const char *name);
const char *ssna_loss_name(SsnaLoss loss);
/* Parse / name a score ("cos", "dot"); -1 if unknown. */
int ssna_score_parse(const char *name);
const char *ssna_score_name(SsnaScore score);
/* Parse / name a variant ("gru", "mean", "weighted", "tmoe", "tmlp", "id"); -1 if unknown. */
int ssna_variant_parse(const char *name);
const char *ssna_variant_name(SsnaVariant variant);

/* Check the config, declare and allocate every parameter, initialise them from seed as
 * DESIGN.md says. 0, or -1 with err. */
int ssna_create(SsnaModel *m, const SsnaConfig *cfg, uint64_t seed, char *err, size_t errlen);
void ssna_free(SsnaModel *m);
/* Number of parameters (floats) a config declares, without allocating them; 0 for a bad config.
 * Lets a loader compare a file's config with its parameter blob before allocating. */
size_t ssna_param_count(const SsnaConfig *cfg);
/* The logq loss's sampling shares: counts[i] = how often item i is a training target. Stored as
 * log((counts[i] + 1) / (sum + n_items)) (never log 0). 0, or -1 with err (out of memory). */
int ssna_set_item_counts(SsnaModel *m, const double *counts, char *err, size_t errlen);

/* Centre a model's item tower on a catalogue, an initialisation for a model that has not
 * trained yet, so that its item vectors tell items apart from the first step:
 *  - every whitening head's b becomes the mean mu of the present items' states at the layer its
 *    adapter reads (tmlp: the first layer's bias becomes -W mu), so adapters map x - mu. A frozen
 *    encoder's states share one large direction; uncentred, every item vector leans that way
 *    (mean pairwise cosine 0.92 for mean a=3 on MiniLM, tests/test_ssna_center.c);
 *  - gru: its biases become 0. Drawn as torch draws them (U(-1/sqrt(d), 1/sqrt(d))) they
 *    outweigh the small adapter outputs (W ~ N(0, 0.02)) at every gate, and every item gets
 *    nearly the same vector (mean pairwise cosine 0.998, centred or not).
 * Without it a fresh model scores all items alike until training has moved these biases
 * (docs/results.md, "Items scored alike"). states: [n_items, layers, hidden]; present: [n_items]
 * (NULL: every row has states; rows with 0 are placeholders and skipped). The id variant has
 * nothing to centre (0). 0, or -1 with err when no row has states (nothing changed). */
int ssna_center_items(SsnaModel *m, const float *states, const unsigned char *present,
                      size_t n_items, char *err, size_t errlen);

/* Training forward: mean loss of the batch (dropout and gate noise on; cfg.loss; logq needs
 * ssna_set_item_counts first). Saves what backward needs. states: [n_items, layers, hidden] cached
 * encoder states (NULL for the id variant). Returns 0 with *loss set, or -1 with err (bad item id,
 * sequence too long, ...). */
int ssna_forward(SsnaModel *m, const SsnaBatch *batch, const float *states, float *loss, char *err,
                 size_t errlen);
/* Backward of the last ssna_forward: accumulates into m->ps.grads (caller zeroes them).
 * 0, or -1 when scratch memory could not be allocated (gradients are then incomplete). */
int ssna_backward(SsnaModel *m);

/* Inference item vectors v* for ids[0..n) (ids NULL = 0..n-1), one item-tower pass: raw [n, d]
 * (what the user tower reads) and, unless norm is NULL, norm [n, d] the same rows L2-normalised
 * (what scores use; score dot: the raw rows unchanged). */
int ssna_item_vectors(SsnaModel *m, const float *states, const int *ids, int n, float *raw,
                      float *norm, char *err, size_t errlen);
/* Inference user vectors, L2-normalised (score dot: as they are), read at the last position of
 * each row: out [B, d]. A score is then the dot product of out with a norm row.
 * Only batch->offsets and batch->items are used; item_raw: [n_items, d] raw item vectors of
 * every item from ssna_item_vectors (computed once per evaluation, not per batch). */
int ssna_user_vectors(SsnaModel *m, const SsnaBatch *batch, const float *item_raw, float *out,
                      char *err, size_t errlen);

#endif
