/* abtest.h - live A/B testing: which variant serves a user, and how well each variant does.
 *
 * Assignment is a pure function of (seed, user id, weights): a seeded 64-bit hash of the user id's
 * bytes (MurmurHash64A, read little-endian so every platform agrees) mapped to [0, 1) and
 * through the cumulative weights. It needs no state, survives restarts and is the same on every
 * ssnad of a consumer group, so a user stays with one variant for the life of a configuration.
 *
 * Online metrics are prequential ("test then train"): when a user's next event arrives, the list
 * last published to that user is scored against the item actually chosen, before the event
 * updates anything. Per variant: lists scored, hits (item in the top k) and the sum of
 * NDCG@k = 1 / log2(rank + 2) for a hit at 0-based rank (0 for a miss; one relevant item, so
 * the ideal DCG is 1). All updates are thread-safe. The first variant is the control every other
 * one is compared with.
 */
#ifndef SSNA_DAEMON_ABTEST_H
#define SSNA_DAEMON_ABTEST_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/abstats.h"
#include "daemon/metrics.h"

#define ABTEST_MAX_VARIANTS 16
/* The report's history (the dashboard's curves): a point every ABTEST_HISTORY_FIRST_STEP scored
 * lists (all arms together); when ABTEST_HISTORY points are kept, every other one is dropped and
 * the step doubles, so the history spans the whole run in bounded memory. */
#define ABTEST_HISTORY            256
#define ABTEST_HISTORY_FIRST_STEP 16

typedef struct AbTest AbTest;

/* Totals of one variant. */
typedef struct {
    uint64_t scored; /* lists scored against a next item */
    uint64_t hits;   /* next item within the top k */
    double ndcg_sum; /* sum of NDCG@k over scored lists */
    double hit_rate; /* hits / scored (0 when nothing scored) */
    double ndcg;     /* ndcg_sum / scored */
} AbTestStats;

/* Variants by name with weights (> 0, finite; relative shares), k >= 1 the list length scored.
 * When reg is not NULL the per-variant metrics are registered there:
 *   ssnad_online_scored_total, ssnad_online_hits_total, ssnad_online_ndcg_sum (counters),
 *   ssnad_online_hit_rate, ssnad_online_ndcg (gauges), each labelled variant="<name>", k="<k>".
 * 0 and *out, or -1 with err. */
int abtest_create(const char *const *names, const double *weights, int n_variants, int k,
                  uint64_t seed, MetricsRegistry *reg, AbTest **out, char *err, size_t errlen);
void abtest_destroy(AbTest *ab);

/* Seeded 64-bit hash of key[0..len) (MurmurHash64A). */
uint64_t abtest_hash(const void *key, size_t len, uint64_t seed);
/* The variant index (0 .. n_variants-1) that serves this user. */
int abtest_assign(const AbTest *ab, const char *user_id, size_t len);
int abtest_variant_count(const AbTest *ab);
const char *abtest_variant_name(const AbTest *ab, int variant);

/* The user's group (0 .. ABSTATS_GROUPS-1) for the clustered intervals: a hash with another seed
 * than the assignment's. */
int abtest_group(const AbTest *ab, const char *user_id, size_t len);
/* Score the list last published to a user (items ranked best first, n of them; only the first k
 * count) against the item the user chose next. Returns the 0-based rank of next_item within
 * the top k, or -1 for a miss. */
int abtest_observe(AbTest *ab, int variant, const char *user_id, size_t user_len,
                   const int64_t *published, size_t n, int64_t next_item);
/* Totals of one variant so far. */
AbTestStats abtest_stats(const AbTest *ab, int variant);

/* Also keep each variant's last `window` scored lists (once, before the first observation), and
 * with a registry the gauges ssnad_online_hit_rate_window / ssnad_online_ndcg_window{variant,k,
 * window} and, for every variant but the first (the control), ssnad_ab_hit_rate_diff and
 * ssnad_ab_hit_rate_p_value{variant,control,k}. 0, or -1 with err. */
int abtest_set_window(AbTest *ab, size_t window, char *err, size_t errlen);
/* The whole A/B as JSON (malloc'ed, *len bytes): per variant since start and over the window,
 * scored lists, hits, hit rate and NDCG with 95% intervals, and every variant but the first
 * against the first (difference, interval, p-value; daemon/abstats.h says which methods); the
 * start and current unix time, lists scored in all, and the history: {"step", "points": [{"scored",
 * "time", "hit_rate": [per arm], "hit_rate_window": [...], "ndcg_window": [...]}]} (the window's
 * figures are the cumulative ones when no window is set). Each scope also gives its design effects
 * (daemon/abstats.h). Numbers without enough data are null.
 * NULL when out of memory. */
char *abtest_report_json(AbTest *ab, size_t *len);

#endif
