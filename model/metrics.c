/* metrics.c - Recall@K and NDCG@K for leave-one-out ranking. */
#include "model/metrics.h"

#include <math.h>
#include <string.h>

void metrics_init(Metrics *m, const int *ks, int n_k) {
    memset(m, 0, sizeof *m);
    m->n_k = n_k > METRICS_MAX_K ? METRICS_MAX_K : n_k;
    for (int i = 0; i < m->n_k; i++) m->k[i] = ks[i];
}

int metrics_rank(const float *scores, int n, int target) {
    float t = scores[target];
    int rank = 0;
    for (int i = 0; i < n; i++) rank += (scores[i] > t) | (scores[i] == t && i != target);
    return rank;
}

void metrics_add(Metrics *m, int rank) {
    for (int i = 0; i < m->n_k; i++)
        if (rank < m->k[i]) {
            m->hits[i] += 1.0;
            m->dcg[i] += 1.0 / log2((double)rank + 2.0);
        }
    m->count++;
}

void metrics_merge(Metrics *m, const Metrics *other) {
    for (int i = 0; i < m->n_k; i++) {
        m->hits[i] += other->hits[i];
        m->dcg[i] += other->dcg[i];
    }
    m->count += other->count;
}

double metrics_recall(const Metrics *m, int i) {
    return m->count ? m->hits[i] / (double)m->count : 0.0;
}

double metrics_ndcg(const Metrics *m, int i) {
    return m->count ? m->dcg[i] / (double)m->count : 0.0;
}
