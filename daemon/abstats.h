/* abstats.h - the statistics of a live A/B test: intervals for one arm and tests between two.
 *
 * Large-sample (normal) methods, as online A/B tests use them: an arm is judged after thousands
 * of scored lists, where the normal approximation of a mean and of a difference of means is
 * accurate to well under the noise. Hit rate is a proportion (Wilson's score interval: sensible
 * at 0 and 1 and for small counts, where the plain Wald interval is not); NDCG@k is a mean of
 * values in [0, 1] (mean +/- z * s / sqrt(n)). Differences are arm minus control: Wald intervals
 * on the difference, and two-sided p-values from the pooled two-proportion z-test (hit rate) or
 * Welch's z-statistic (NDCG). tests/test_abtest.c checks each against scipy.stats.
 */
#ifndef SSNA_DAEMON_ABSTATS_H
#define SSNA_DAEMON_ABSTATS_H

#include <stdint.h>

#define ABSTATS_Z95 1.959963984540054 /* the standard normal's 97.5% quantile */

/* An estimate with its 95% interval; all three NaN when there is no data. */
typedef struct {
    double est, lo, hi;
} AbInterval;

/* A difference (arm - control) with its 95% interval and a two-sided p-value (NaN when either
 * side has too little data: fewer than 2 observations, or no variance at all). */
typedef struct {
    AbInterval diff;
    double p_value;
} AbDiff;

/* Running sums of one arm's per-list values (hit: 0/1; NDCG: in [0, 1]). */
typedef struct {
    uint64_t n;
    uint64_t hits;
    double ndcg_sum, ndcg_sq_sum;
} AbSums;

/* Two-sided p-value of a standard normal statistic z: P(|Z| >= |z|). */
double abstats_p_two_sided(double z);
/* Wilson score interval of hits / n at 95%. */
AbInterval abstats_rate(uint64_t hits, uint64_t n);
/* Mean NDCG with its 95% interval (sample variance from the sums). */
AbInterval abstats_mean(const AbSums *s);
/* Hit rate of arm a minus control c: Wald interval, pooled z-test p-value. */
AbDiff abstats_rate_diff(uint64_t hits_a, uint64_t n_a, uint64_t hits_c, uint64_t n_c);
/* Mean NDCG of arm a minus control c: Welch's standard error, normal p-value. */
AbDiff abstats_mean_diff(const AbSums *a, const AbSums *c);

#endif
