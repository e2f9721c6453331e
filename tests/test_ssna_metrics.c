/* test_ssna_metrics.c - leave-one-out ranking metrics (model/metrics.h) on hand-made ranks. */
#include <math.h>

#include "check.h"
#include "model/metrics.h"

int main(void) {
    /* rank = items scoring higher + ties with other items (pessimistic) */
    const float scores[6] = {0.1f, 0.9f, 0.5f, 0.5f, -1.0f, 0.7f};
    CHECK(metrics_rank(scores, 6, 1) == 0);
    CHECK(metrics_rank(scores, 6, 5) == 1);
    CHECK(metrics_rank(scores, 6, 2) == 3); /* 0.9, 0.7 and the tied 0.5 */
    CHECK(metrics_rank(scores, 6, 4) == 5);
    const float flat[4] = {0.3f, 0.3f, 0.3f, 0.3f};
    CHECK(metrics_rank(flat, 4, 0) == 3); /* a constant scorer earns nothing */

    const int ks[2] = {10, 50};
    Metrics m;
    metrics_init(&m, ks, 2);
    CHECK(metrics_recall(&m, 0) == 0.0 && metrics_ndcg(&m, 1) == 0.0);
    metrics_add(&m, 0);  /* hit at both: ndcg 1 */
    metrics_add(&m, 9);  /* last place inside @10: 1/log2(11) */
    metrics_add(&m, 10); /* outside @10, inside @50: 1/log2(12) */
    metrics_add(&m, 50); /* outside both */
    CHECK(m.count == 4);
    CHECK_CLOSE(metrics_recall(&m, 0), 2.0 / 4, 1e-12, 0);
    CHECK_CLOSE(metrics_recall(&m, 1), 3.0 / 4, 1e-12, 0);
    CHECK_CLOSE(metrics_ndcg(&m, 0), (1.0 + 1.0 / log2(11.0)) / 4, 1e-12, 0);
    CHECK_CLOSE(metrics_ndcg(&m, 1), (1.0 + 1.0 / log2(11.0) + 1.0 / log2(12.0)) / 4, 1e-12, 0);

    Metrics other;
    metrics_init(&other, ks, 2);
    metrics_add(&other, 0);
    metrics_merge(&m, &other);
    CHECK(m.count == 5);
    CHECK_CLOSE(metrics_recall(&m, 0), 3.0 / 5, 1e-12, 0);
    return check_done();
}
