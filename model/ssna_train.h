/* ssna_train.h - offline training and leave-one-out evaluation of an SsnaModel, and its
 * checkpoint file.
 *
 * Data is one chronological item sequence per user (offsets/items as ingest/interactions.h
 * gives them). Leave-one-out: for a sequence s of length n, test = predict s[n-1] from
 * s[0..n-1), validation = predict s[n-2] from s[0..n-2), training sequence = s[0..n-2), whose
 * every position t predicts s[t+1] (one row per user, the loss at every position).
 * Inputs longer than max_len keep their most recent max_len items.
 */
#ifndef SSNA_MODEL_SSNA_TRAIN_H
#define SSNA_MODEL_SSNA_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "model/metrics.h"
#include "model/params.h"
#include "model/ssna.h"

typedef struct {
    int n_users;
    const int *offsets; /* [n_users + 1] */
    const int *items;   /* [offsets[n_users]] */
} SsnaSequences;

typedef enum { SSNA_SPLIT_VALID = 0, SSNA_SPLIT_TEST = 1 } SsnaSplit;

/* Metric cut-offs every evaluation reports: Recall / NDCG at 10 and 50. */
#define SSNA_EVAL_KS                                                                               \
    { 10, 50 }

/* Training progress that a checkpoint carries so a resumed run continues the same run. */
typedef struct {
    int epoch;                          /* epochs completed */
    int best_epoch;                     /* 0 = none yet */
    int bad_epochs;                     /* epochs since the best validation R@10 */
    double best_valid[4], best_test[4]; /* R@10, R@50, N@10, N@50 at the best epoch */
    double train_seconds;               /* summed over every epoch, resumed runs included */
    uint64_t shuffle_rng;               /* batch order */
    uint64_t model_rng;                 /* dropout / gate noise */
    char meta[4096]; /* the caller's JSON object: data, encoder identity, options */
} SsnaTrainState;

/* One epoch: users in an order shuffled by *shuffle_rng, `batch` users per Adam step. Users
 * whose training sequence has fewer than 2 items contribute nothing. *mean_loss = mean over
 * steps weighted by target positions; *steps = Adam steps. 0 or -1 with err. */
int ssna_train_epoch(SsnaModel *m, const float *states, const SsnaSequences *seq, int batch,
                     const AdamConfig *adam, uint64_t *shuffle_rng, double *mean_loss, int *steps,
                     char *err, size_t errlen);

/* Rank every user's held-out item of `split` against ALL items (users with fewer than 3 items
 * are skipped); out gets Recall / NDCG at SSNA_EVAL_KS. 0 or -1 with err. */
int ssna_evaluate(SsnaModel *m, const float *states, const SsnaSequences *seq, SsnaSplit split,
                  int batch, Metrics *out, char *err, size_t errlen);
/* ssna_evaluate that also writes ranks[u] (u < seq->n_users): user u's 0-based rank of its
 * held-out item, -1 for users skipped. ranks may be NULL. */
int ssna_evaluate_ranks(SsnaModel *m, const float *states, const SsnaSequences *seq,
                        SsnaSplit split, int batch, Metrics *out, int *ranks, char *err,
                        size_t errlen);

/* Top-k items for one input sequence items[0..n) (most recent last): ids and scores (cosines;
 * dot products for score dot), best first. item_norm: [n_items, d] scoring item vectors,
 * item_raw: raw ones (both from ssna_item_vectors). exclude_seen: leave out items of the input. 0
 * or -1. */
int ssna_top_k(SsnaModel *m, const float *item_raw, const float *item_norm, const int *items, int n,
               int k, int exclude_seen, int *top_ids, float *top_scores, char *err, size_t errlen);

/* Write a checkpoint atomically (path.tmp, then rename): config, state, the current parameters
 * with Adam moments (for resuming) and best_blob (params_serialize of the best epoch's set, or
 * NULL to store the current one as best). 0 or -1 with err. */
int ssna_checkpoint_save(const char *path, const SsnaModel *m, const SsnaTrainState *st,
                         const void *best_blob, size_t best_len, char *err, size_t errlen);

/* Read a checkpoint: creates *m from its config with the latest (best = 0) or the best
 * (best = 1) parameters; st (may be NULL) receives the state; *best_blob (may be NULL)
 * receives a malloc'd copy of the best parameters blob the caller frees. 0 or -1 with err. */
int ssna_checkpoint_load(const char *path, int best, SsnaModel *m, SsnaTrainState *st,
                         void **best_blob, size_t *best_len, char *err, size_t errlen);

#endif
