/* abstats.h - the statistics of a live A/B test: intervals for one arm and tests between two.
 *
 * Large-sample (normal) methods, as online A/B tests use them: an arm is judged after thousands
 * of scored lists, where the normal approximation of a mean and of a difference of means is
 * accurate to well under the noise. Hit rate is a proportion (Wilson's score interval: sensible
 * at 0 and 1 and for small counts, where the plain Wald interval is not); NDCG@k is a mean of
 * values in [0, 1] (mean +/- z * s / sqrt(n)). Differences are arm minus control: Wald intervals
 * on the difference, and two-sided p-values from the pooled two-proportion z-test (hit rate) or
 * Welch's z-statistic (NDCG). tests/test_abtest.c checks each against scipy.stats.
 *
 * Those methods count every list as an independent sample, but a user's lists are not (a user
 * who hits often keeps hitting), and the arm is drawn per user: the list-level intervals are too
 * narrow by the square root of the design effect (1.06-1.25 for hit@10 on Games replayed at
 * 2,000 events/s; in test_abtest.c's A/A simulation of users who differ more, ~7.5, and the
 * list-level intervals cover the truth 56% of the time instead of 95%). The _grouped functions
 * therefore also keep sums per group of users (ABSTATS_GROUPS groups by a hash of the user id)
 * and widen each figure by its design effect: the variance of the ratio estimate between groups
 * (the clustered, linearised variance) over the list-level one, never below 1. With one group, or
 * users whose lists are independent, they give the list-level figures.
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

#define ABSTATS_GROUPS 64 /* groups of users for the clustered variance */

/* One arm's sums, in all and per group of users (the totals are the groups' sums). */
typedef struct {
    AbSums total;
    AbSums group[ABSTATS_GROUPS];
} AbGrouped;

/* Add (sign 1) or remove (sign -1) one list of a user in group g (0 .. ABSTATS_GROUPS-1) with
 * NDCG gain (0: a miss). */
void abstats_grouped_add(AbGrouped *s, int g, double gain, int sign);
/* Design effects (>= 1) of the hit rate and of the mean NDCG: clustered over list-level
 * variance; 1 with fewer than 2 groups holding lists or no list-level variance. */
double abstats_rate_deff(const AbGrouped *s);
double abstats_mean_deff(const AbGrouped *s);

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

/* The four above with each side's variance multiplied by its design effect: Wilson's interval at
 * the effective list count n / deff, the differences' standard errors (and the pooled test's)
 * from the widened variances. */
AbInterval abstats_rate_grouped(const AbGrouped *s);
AbInterval abstats_mean_grouped(const AbGrouped *s);
AbDiff abstats_rate_diff_grouped(const AbGrouped *a, const AbGrouped *c);
AbDiff abstats_mean_diff_grouped(const AbGrouped *a, const AbGrouped *c);

#endif
