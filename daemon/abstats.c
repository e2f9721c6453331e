/* abstats.c - see abstats.h. */
#include "daemon/abstats.h"

#include <math.h>

static const AbInterval no_interval = {NAN, NAN, NAN};

double abstats_p_two_sided(double z) {
    return erfc(fabs(z) / sqrt(2.0));
}

AbInterval abstats_rate(uint64_t hits, uint64_t n) {
    if (!n) return no_interval;
    double z = ABSTATS_Z95, nn = (double)n, p = (double)hits / nn;
    double centre = (p + z * z / (2 * nn)) / (1 + z * z / nn);
    double half = z / (1 + z * z / nn) * sqrt(p * (1 - p) / nn + z * z / (4 * nn * nn));
    AbInterval r = {p, centre - half, centre + half};
    if (r.lo < 0) r.lo = 0; // rounding at hits = 0
    if (r.hi > 1) r.hi = 1;
    return r;
}

/* Sample variance of the NDCG values; NaN with fewer than 2. */
static double variance(const AbSums *s) {
    if (s->n < 2) return NAN;
    double n = (double)s->n, v = (s->ndcg_sq_sum - s->ndcg_sum * s->ndcg_sum / n) / (n - 1);
    return v > 0 ? v : 0; // cancellation can leave a tiny negative
}

AbInterval abstats_mean(const AbSums *s) {
    if (!s->n) return no_interval;
    double m = s->ndcg_sum / (double)s->n, v = variance(s);
    double half = isnan(v) ? NAN : ABSTATS_Z95 * sqrt(v / (double)s->n);
    return (AbInterval){m, m - half, m + half};
}

AbDiff abstats_rate_diff(uint64_t hits_a, uint64_t n_a, uint64_t hits_c, uint64_t n_c) {
    AbDiff d = {no_interval, NAN};
    if (n_a < 2 || n_c < 2) return d;
    double pa = (double)hits_a / (double)n_a, pc = (double)hits_c / (double)n_c;
    double se = sqrt(pa * (1 - pa) / (double)n_a + pc * (1 - pc) / (double)n_c);
    d.diff = (AbInterval){pa - pc, pa - pc - ABSTATS_Z95 * se, pa - pc + ABSTATS_Z95 * se};
    double p = (double)(hits_a + hits_c) / (double)(n_a + n_c);
    double se0 = sqrt(p * (1 - p) * (1.0 / (double)n_a + 1.0 / (double)n_c));
    if (se0 > 0) d.p_value = abstats_p_two_sided((pa - pc) / se0);
    return d;
}

AbDiff abstats_mean_diff(const AbSums *a, const AbSums *c) {
    AbDiff d = {no_interval, NAN};
    double va = variance(a), vc = variance(c);
    if (isnan(va) || isnan(vc)) return d;
    double ma = a->ndcg_sum / (double)a->n, mc = c->ndcg_sum / (double)c->n;
    double se = sqrt(va / (double)a->n + vc / (double)c->n);
    d.diff = (AbInterval){ma - mc, ma - mc - ABSTATS_Z95 * se, ma - mc + ABSTATS_Z95 * se};
    if (se > 0) d.p_value = abstats_p_two_sided((ma - mc) / se);
    return d;
}
