/* metrics.h - top-K ranking metrics with one relevant item per query (leave-one-out):
 * Recall@K (hit rate) and NDCG@K = 1 / log2(rank + 2) when rank < K, rank 0-based.
 * The rank is taken against every candidate (all items): no sampled negatives. */
#ifndef SSNA_MODEL_METRICS_H
#define SSNA_MODEL_METRICS_H

#define METRICS_MAX_K 4

typedef struct {
    int n_k;
    int k[METRICS_MAX_K];
    double hits[METRICS_MAX_K], dcg[METRICS_MAX_K]; /* sums over queries */
    long count;                                     /* queries added */
} Metrics;

/* Start empty with cut-offs ks[0..n_k) (n_k <= METRICS_MAX_K). */
void metrics_init(Metrics *m, const int *ks, int n_k);
/* 0-based rank of scores[target] among scores[0..n): items scoring higher, plus ties with other
 * items (pessimistic, so a model that scores everything alike earns nothing). */
int metrics_rank(const float *scores, int n, int target);
/* Add one query whose target has this rank. */
void metrics_add(Metrics *m, int rank);
/* Add every query of another accumulator with the same cut-offs. */
void metrics_merge(Metrics *m, const Metrics *other);
/* Mean Recall@k[i] / NDCG@k[i] over the queries added (0 when none). */
double metrics_recall(const Metrics *m, int i);
double metrics_ndcg(const Metrics *m, int i);

#endif
