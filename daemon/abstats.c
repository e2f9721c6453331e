/* abstats.c - see abstats.h. */
#include "daemon/abstats.h"

#include <math.h>

static const AbInterval no_interval = {NAN, NAN, NAN};

double abstats_p_two_sided(double z) {
    return erfc(fabs(z) / sqrt(2.0));
}

void abstats_grouped_add(AbGrouped *s, int g, double gain, int sign) {
    AbSums *t[2] = {&s->total, &s->group[g]};
    for (int i = 0; i < 2; i++) {
        t[i]->n += (uint64_t)(int64_t)sign;
        t[i]->hits += (uint64_t)(int64_t)(gain > 0 ? sign : 0);
        t[i]->ndcg_sum += sign * gain;
        t[i]->ndcg_sq_sum += sign * gain * gain;
    }
}

/* Wilson's interval of hits / n, n possibly an effective (fractional) count. */
static AbInterval wilson(double p, double nn) {
    double z = ABSTATS_Z95;
    double centre = (p + z * z / (2 * nn)) / (1 + z * z / nn);
    double half = z / (1 + z * z / nn) * sqrt(p * (1 - p) / nn + z * z / (4 * nn * nn));
    AbInterval r = {p, centre - half, centre + half};
    if (r.lo < 0) r.lo = 0; // rounding at hits = 0
    if (r.hi > 1) r.hi = 1;
    return r;
}

AbInterval abstats_rate(uint64_t hits, uint64_t n) {
    return n ? wilson((double)hits / (double)n, (double)n) : no_interval;
}

/* Sample variance of the NDCG values; NaN with fewer than 2. */
static double variance(const AbSums *s) {
    if (s->n < 2) return NAN;
    double n = (double)s->n, v = (s->ndcg_sq_sum - s->ndcg_sum * s->ndcg_sum / n) / (n - 1);
    return v > 0 ? v : 0; // cancellation can leave a tiny negative
}

static AbInterval mean_deff(const AbSums *s, double deff) {
    if (!s->n) return no_interval;
    double m = s->ndcg_sum / (double)s->n, v = variance(s);
    double half = isnan(v) ? NAN : ABSTATS_Z95 * sqrt(deff * v / (double)s->n);
    return (AbInterval){m, m - half, m + half};
}

AbInterval abstats_mean(const AbSums *s) {
    return mean_deff(s, 1);
}

static AbDiff rate_diff_deff(const AbSums *a, double deff_a, const AbSums *c, double deff_c) {
    AbDiff d = {no_interval, NAN};
    if (a->n < 2 || c->n < 2) return d;
    double na = (double)a->n, nc = (double)c->n;
    double pa = (double)a->hits / na, pc = (double)c->hits / nc;
    double se = sqrt(deff_a * pa * (1 - pa) / na + deff_c * pc * (1 - pc) / nc);
    d.diff = (AbInterval){pa - pc, pa - pc - ABSTATS_Z95 * se, pa - pc + ABSTATS_Z95 * se};
    double p = (double)(a->hits + c->hits) / (na + nc);
    double se0 = sqrt(p * (1 - p) * (deff_a / na + deff_c / nc));
    if (se0 > 0) d.p_value = abstats_p_two_sided((pa - pc) / se0);
    return d;
}

AbDiff abstats_rate_diff(uint64_t hits_a, uint64_t n_a, uint64_t hits_c, uint64_t n_c) {
    AbSums a = {.n = n_a, .hits = hits_a}, c = {.n = n_c, .hits = hits_c};
    return rate_diff_deff(&a, 1, &c, 1);
}

static AbDiff mean_diff_deff(const AbSums *a, double deff_a, const AbSums *c, double deff_c) {
    AbDiff d = {no_interval, NAN};
    double va = variance(a), vc = variance(c);
    if (isnan(va) || isnan(vc)) return d;
    double ma = a->ndcg_sum / (double)a->n, mc = c->ndcg_sum / (double)c->n;
    double se = sqrt(deff_a * va / (double)a->n + deff_c * vc / (double)c->n);
    d.diff = (AbInterval){ma - mc, ma - mc - ABSTATS_Z95 * se, ma - mc + ABSTATS_Z95 * se};
    if (se > 0) d.p_value = abstats_p_two_sided((ma - mc) / se);
    return d;
}

AbDiff abstats_mean_diff(const AbSums *a, const AbSums *c) {
    return mean_diff_deff(a, 1, c, 1);
}

/* Clustered over list-level variance of the ratio sum(x) / n, x the hit (hits) or the gain:
 * between groups, G / (G - 1) * sum_g (x_g - r n_g)^2 / n^2 (the linearised variance of a ratio
 * estimate over G groups), against list_var / n. At least 1. */
static double deff(const AbGrouped *s, int hits, double list_var) {
    double n = (double)s->total.n, x = hits ? (double)s->total.hits : s->total.ndcg_sum;
    int groups = 0;
    double r = n > 0 ? x / n : 0, between = 0;
    for (int g = 0; g < ABSTATS_GROUPS; g++) {
        const AbSums *t = &s->group[g];
        if (!t->n) continue;
        double e = (hits ? (double)t->hits : t->ndcg_sum) - r * (double)t->n;
        between += e * e, groups++;
    }
    if (groups < 2 || !(list_var > 0)) return 1;
    double clustered = (double)groups / (groups - 1) * between / (n * n);
    double ratio = clustered / (list_var / n);
    return ratio > 1 ? ratio : 1;
}

double abstats_rate_deff(const AbGrouped *s) {
    double p = s->total.n ? (double)s->total.hits / (double)s->total.n : 0;
    return deff(s, 1, p * (1 - p));
}

double abstats_mean_deff(const AbGrouped *s) {
    return deff(s, 0, variance(&s->total));
}

AbInterval abstats_rate_grouped(const AbGrouped *s) {
    if (!s->total.n) return no_interval;
    double n = (double)s->total.n;
    return wilson((double)s->total.hits / n, n / abstats_rate_deff(s));
}

AbInterval abstats_mean_grouped(const AbGrouped *s) {
    return mean_deff(&s->total, abstats_mean_deff(s));
}

AbDiff abstats_rate_diff_grouped(const AbGrouped *a, const AbGrouped *c) {
    return rate_diff_deff(&a->total, abstats_rate_deff(a), &c->total, abstats_rate_deff(c));
}

AbDiff abstats_mean_diff_grouped(const AbGrouped *a, const AbGrouped *c) {
    return mean_diff_deff(&a->total, abstats_mean_deff(a), &c->total, abstats_mean_deff(c));
}
