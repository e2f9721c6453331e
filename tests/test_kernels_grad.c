/* test_kernels_grad.c - finite-difference gradient checks for every backward kernel.
 *
 * For each kernel: loss = sum(out * wout) with fixed random wout (accumulated in double), so the
 * analytic gradient is the kernel's backward with dout = wout. Each input/parameter element is
 * compared with the central difference (loss(x + h) - loss(x - h)) / (2h), h = FD_STEP, and must
 * satisfy |num - ana| <= FD_ATOL + FD_RTOL * max(|num|, |ana|). The kernels run in float32, so
 * the difference quotient carries ~1e-5 of rounding noise and O(h^2) truncation; the tolerances
 * sit two orders above that and far below the error of any wrong formula.
 * Gradient buffers start from a non-zero "prior" that is subtracted afterwards: this also checks
 * that every _backward accumulates (+=) rather than overwrites.
 */
#include <string.h>

#include "check.h"
#include "model/kernels.h"
#include "model/rng.h"

#define FD_STEP     5e-3f
#define FD_ATOL     1e-3
#define FD_RTOL     1e-2
#define FD_MAX_EACH 400 /* elements checked per tensor; larger tensors get a random sample */

typedef double (*LossFn)(void *ctx);

static uint64_t test_rng = 12345;

static float *randn(size_t n, float std) {
    float *x = malloc(n * sizeof(float));
    rng_fill_normal(x, n, 0.0f, std, &test_rng);
    return x;
}

static float *zeros(size_t n) {
    return calloc(n ? n : 1, sizeof(float));
}

static double weighted_sum(const float *out, const float *w, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)out[i] * w[i];
    return s;
}

/* The prior every gradient buffer starts from, so accumulation is visible. */
static float prior(size_t i) {
    return 0.125f * (float)(i % 7) - 0.375f;
}

static float *prior_buf(size_t n) {
    float *g = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) g[i] = prior(i);
    return g;
}

/* Compares d loss / d x (grad, with the prior still in it) against central differences; returns
 * how many checked elements are off and prints the worst when verbose. */
static int grad_mismatches(const char *what, LossFn loss, void *ctx, float *x, const float *grad,
                           size_t n, int verbose) {
    int bad = 0, checked = 0;
    double worst = 0.0, worst_num = 0.0, worst_ana = 0.0, max_ana = 0.0;
    size_t worst_i = 0;
    for (size_t k = 0; k < n && k < FD_MAX_EACH; k++) {
        size_t i = n <= FD_MAX_EACH ? k : (size_t)(rng_next(&test_rng) % n);
        float orig = x[i];
        float xp = orig + FD_STEP, xm = orig - FD_STEP;
        x[i] = xp;
        double lp = loss(ctx);
        x[i] = xm;
        double lm = loss(ctx);
        x[i] = orig;
        double num = (lp - lm) / ((double)xp - (double)xm);
        double ana = (double)grad[i] - prior(i);
        double err = fabs(num - ana);
        double lim = FD_ATOL + FD_RTOL * fmax(fabs(num), fabs(ana));
        if (err > lim) bad++;
        if (err - lim > worst) {
            worst = err - lim;
            worst_i = i, worst_num = num, worst_ana = ana;
        }
        max_ana = fmax(max_ana, fabs(ana));
        checked++;
    }
    if (verbose) {
        CHECK_MSG(bad == 0, "%s: %d of %d elements off; worst [%zu] numeric %.6g analytic %.6g",
                  what, bad, checked, worst_i, worst_num, worst_ana);
        // an all-zero gradient would pass against a loss that ignores x: demand a real signal
        CHECK_MSG(max_ana > 1e-2, "%s: gradient is (nearly) zero everywhere", what);
        printf("  %-36s %4d elements checked, max |grad| %.3g\n", what, checked, max_ana);
    }
    return bad;
}

static void grad_check(const char *what, LossFn loss, void *ctx, float *x, const float *grad,
                       size_t n) {
    grad_mismatches(what, loss, ctx, x, grad, n, 1);
}

/* Asserts that grad[start, start + n) still holds exactly its prior (no gradient flowed there). */
static void check_untouched(const char *what, const float *grad, size_t start, size_t n) {
    int changed = 0;
    for (size_t i = start; i < start + n; i++) changed += grad[i] != prior(i);
    CHECK_MSG(changed == 0, "%s: %d elements changed, expected no gradient", what, changed);
}

/* ---- linear ---------------------------------------------------------------------------------- */

typedef struct {
    int N, C, OC;
    float *inp, *w, *b, *out, *wout;
} LinearCase;

static double linear_loss(void *p) {
    LinearCase *c = p;
    linear_forward(c->out, c->inp, c->w, c->b, c->N, c->C, c->OC);
    return weighted_sum(c->out, c->wout, (size_t)c->N * c->OC);
}

static void test_linear(int with_bias) {
    LinearCase c = {5, 7, 4, NULL, NULL, NULL, NULL, NULL};
    c.inp = randn(35, 1.0f), c.w = randn(28, 0.5f), c.b = with_bias ? randn(4, 0.5f) : NULL;
    c.out = zeros(20), c.wout = randn(20, 1.0f);
    float *dinp = prior_buf(35), *dw = prior_buf(28), *db = prior_buf(4);
    linear_backward(dinp, dw, with_bias ? db : NULL, c.wout, c.inp, c.w, c.N, c.C, c.OC);
    grad_check(with_bias ? "linear(bias) dinp" : "linear(no bias) dinp", linear_loss, &c, c.inp,
               dinp, 35);
    grad_check(with_bias ? "linear(bias) dw" : "linear(no bias) dw", linear_loss, &c, c.w, dw, 28);
    if (with_bias)
        grad_check("linear(bias) db", linear_loss, &c, c.b, db, 4);
    else
        check_untouched("linear(no bias) db", db, 0, 4);
    free(c.inp), free(c.w), free(c.b), free(c.out), free(c.wout), free(dinp), free(dw), free(db);
}

/* ---- layer norm ------------------------------------------------------------------------------ */

typedef struct {
    int N, C;
    float *inp, *w, *b, *out, *mean, *rstd, *wout;
} LayerNormCase;

static double layernorm_loss(void *p) {
    LayerNormCase *c = p;
    layernorm_forward(c->out, c->mean, c->rstd, c->inp, c->w, c->b, c->N, c->C, 1e-5f);
    return weighted_sum(c->out, c->wout, (size_t)c->N * c->C);
}

static void test_layernorm(void) {
    LayerNormCase c = {4, 9, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    size_t n = 36;
    c.inp = randn(n, 1.0f), c.w = randn(9, 0.3f), c.b = randn(9, 0.3f);
    for (size_t i = 0; i < n; i++) c.inp[i] += 0.5f; // non-zero mean
    for (int i = 0; i < 9; i++) c.w[i] += 1.0f;
    c.out = zeros(n), c.mean = zeros(4), c.rstd = zeros(4), c.wout = randn(n, 1.0f);
    layernorm_loss(&c);
    float *dinp = prior_buf(n), *dw = prior_buf(9), *db = prior_buf(9);
    layernorm_backward(dinp, dw, db, c.wout, c.inp, c.w, c.mean, c.rstd, c.N, c.C);
    grad_check("layernorm dinp", layernorm_loss, &c, c.inp, dinp, n);
    grad_check("layernorm dw", layernorm_loss, &c, c.w, dw, 9);
    grad_check("layernorm db", layernorm_loss, &c, c.b, db, 9);
    free(c.inp), free(c.w), free(c.b), free(c.out), free(c.mean), free(c.rstd), free(c.wout);
    free(dinp), free(dw), free(db);
}

/* ---- elementwise: gelu, softplus, dropout ---------------------------------------------------- */

typedef struct {
    size_t n;
    float *inp, *out, *wout;
    uint8_t *mask;
    float p;
    uint64_t seed;
    int kind; /* 0 gelu, 1 softplus, 2 dropout */
} ElementwiseCase;

static double elementwise_loss(void *p) {
    ElementwiseCase *c = p;
    uint64_t rng = c->seed; // the same dropout mask on every evaluation
    if (c->kind == 0)
        gelu_forward(c->out, c->inp, c->n);
    else if (c->kind == 1)
        softplus_forward(c->out, c->inp, c->n);
    else
        dropout_forward(c->out, c->mask, c->inp, c->n, c->p, &rng);
    return weighted_sum(c->out, c->wout, c->n);
}

static void test_elementwise(int kind, const char *what, float lo, float hi) {
    ElementwiseCase c = {60, NULL, NULL, NULL, NULL, 0.3f, 777, kind};
    c.inp = zeros(c.n), c.out = zeros(c.n), c.wout = randn(c.n, 1.0f), c.mask = malloc(c.n);
    rng_fill_uniform(c.inp, c.n, lo, hi, &test_rng);
    elementwise_loss(&c);
    float *dinp = prior_buf(c.n);
    if (kind == 0)
        gelu_backward(dinp, c.inp, c.wout, c.n);
    else if (kind == 1)
        softplus_backward(dinp, c.inp, c.wout, c.n);
    else
        dropout_backward(dinp, c.wout, c.mask, c.n, c.p);
    grad_check(what, elementwise_loss, &c, c.inp, dinp, c.n);
    if (kind == 2) {
        elementwise_loss(&c); // grad_check left the last element perturbed in out
        int kept = 0, scaled = 1;
        for (size_t i = 0; i < c.n; i++) {
            kept += c.mask[i];
            float want = c.mask[i] ? c.inp[i] / (1.0f - c.p) : 0.0f;
            scaled &= fabsf(c.out[i] - want) <= 1e-6f * fabsf(want);
        }
        CHECK_MSG(kept > 20 && kept < 60, "dropout kept %d of 60 at p = 0.3", kept);
        CHECK_MSG(scaled, "dropout: kept values not scaled by 1/(1-p), dropped not 0");
    }
    free(c.inp), free(c.out), free(c.wout), free(c.mask), free(dinp);
}

/* ---- softmax --------------------------------------------------------------------------------- */

typedef struct {
    int N, C;
    float *inp, *out, *wout;
} SoftmaxCase;

static double softmax_loss(void *p) {
    SoftmaxCase *c = p;
    softmax_forward(c->out, c->inp, c->N, c->C);
    return weighted_sum(c->out, c->wout, (size_t)c->N * c->C);
}

static void test_softmax(void) {
    SoftmaxCase c = {3, 8, NULL, NULL, NULL};
    c.inp = randn(24, 2.0f), c.out = zeros(24), c.wout = randn(24, 1.0f);
    softmax_loss(&c);
    float *dinp = prior_buf(24);
    softmax_backward(dinp, c.out, c.wout, c.N, c.C);
    grad_check("softmax dinp", softmax_loss, &c, c.inp, dinp, 24);
    free(c.inp), free(c.out), free(c.wout), free(dinp);
}

/* ---- attention ------------------------------------------------------------------------------- */

#define ATT_MAX_T 160

typedef struct {
    int B, T, C, NH, causal;
    const int *lens;
    float *q, *k, *v, *out, *att, *wout;
    float p, *att_drop; // attention dropout: keep flags [B, NH, T, T] (NULL: none), probability
    uint8_t *keep;
} AttentionCase;

static double attention_loss(void *p) {
    AttentionCase *c = p;
    attention_forward(c->out, c->att, c->att_drop, c->keep, c->p, c->q, c->k, c->v, c->lens,
                      c->causal, c->B, c->T, c->C, c->NH);
    return weighted_sum(c->out, c->wout, (size_t)c->B * c->T * c->C);
}

/* Straightforward double-precision attention with the documented masks, to check the forward
 * pass independently of the gradient check (which only proves forward and backward agree). */
static double attention_naive_maxdiff(const AttentionCase *c) {
    int hs = c->C / c->NH;
    double maxdiff = 0.0;
    for (int b = 0; b < c->B; b++) {
        int L = c->lens ? c->lens[b] : c->T;
        for (int h = 0; h < c->NH; h++) {
            for (int i = 0; i < c->T; i++) {
                double s[ATT_MAX_T], sum = 0.0, mx = -1e300;
                int nk = i >= L ? 0 : (c->causal ? i + 1 : L);
                for (int j = 0; j < nk; j++) {
                    double d = 0.0;
                    for (int e = 0; e < hs; e++)
                        d += (double)c->q[((size_t)b * c->T + i) * c->C + h * hs + e] *
                             c->k[((size_t)b * c->T + j) * c->C + h * hs + e];
                    s[j] = d / sqrt((double)hs);
                    mx = fmax(mx, s[j]);
                }
                for (int j = 0; j < nk; j++) sum += (s[j] = exp(s[j] - mx));
                const uint8_t *keep =
                    c->keep ? c->keep + (((size_t)b * c->NH + h) * c->T + i) * c->T : NULL;
                for (int e = 0; e < hs; e++) {
                    double o = 0.0;
                    for (int j = 0; j < nk; j++)
                        o += (keep ? (keep[j] ? 1.0 / (1.0 - c->p) : 0.0) : 1.0) * s[j] / sum *
                             c->v[((size_t)b * c->T + j) * c->C + h * hs + e];
                    double got = c->out[((size_t)b * c->T + i) * c->C + h * hs + e];
                    maxdiff = fmax(maxdiff, fabs(got - o));
                }
            }
        }
    }
    return maxdiff;
}

static void test_attention(int B, int T, int causal, const int *lens, float p_drop,
                           const char *label) {
    AttentionCase c = {B,    T,    8,    2,    causal, lens, NULL, NULL,
                       NULL, NULL, NULL, NULL, p_drop, NULL, NULL};
    size_t n = (size_t)c.B * c.T * c.C, na = (size_t)c.B * c.NH * c.T * c.T;
    c.q = randn(n, 1.0f), c.k = randn(n, 1.0f), c.v = randn(n, 1.0f);
    c.out = zeros(n), c.att = zeros(na), c.wout = randn(n, 1.0f);
    if (p_drop > 0.0f) { // a fixed mask: the loss stays a function of q, k, v
        c.keep = malloc(na), c.att_drop = zeros(na);
        for (size_t i = 0; i < na; i++) c.keep[i] = rng_uniform(&test_rng) >= p_drop;
    }
    attention_loss(&c);
    double diff = attention_naive_maxdiff(&c);
    CHECK_MSG(diff < 1e-5, "attention %s forward differs from the naive reference by %g", label,
              diff);
    float *dq = prior_buf(n), *dk = prior_buf(n), *dv = prior_buf(n), scratch[ATT_MAX_T];
    attention_backward(dq, dk, dv, c.wout, c.att, c.att_drop, c.keep, c.p, c.q, c.k, c.v, lens,
                       causal, c.B, c.T, c.C, c.NH, scratch);
    char what[64];
    snprintf(what, sizeof(what), "attention %s dq", label);
    grad_check(what, attention_loss, &c, c.q, dq, n);
    snprintf(what, sizeof(what), "attention %s dk", label);
    grad_check(what, attention_loss, &c, c.k, dk, n);
    snprintf(what, sizeof(what), "attention %s dv", label);
    grad_check(what, attention_loss, &c, c.v, dv, n);
    free(c.q), free(c.k), free(c.v), free(c.out), free(c.att), free(c.wout);
    free(c.keep), free(c.att_drop);
    free(dq), free(dk), free(dv);
}

/* ---- GRU cell -------------------------------------------------------------------------------- */

typedef struct {
    int B, IN, H;
    float *x, *h, *w_ih, *w_hh, *b_ih, *b_hh, *h_out, *cache, *scratch, *wout;
    int no_h;
} GruCase;

static double gru_loss(void *p) {
    GruCase *c = p;
    gru_cell_forward(c->h_out, c->cache, c->x, c->no_h ? NULL : c->h, c->w_ih, c->w_hh, c->b_ih,
                     c->b_hh, c->B, c->IN, c->H, c->scratch);
    return weighted_sum(c->h_out, c->wout, (size_t)c->B * c->H);
}

static void test_gru(int no_h) {
    GruCase c = {3, 5, 4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, no_h};
    int B = c.B, IN = c.IN, H = c.H, G = 3 * H;
    c.x = randn((size_t)B * IN, 1.0f), c.h = randn((size_t)B * H, 0.8f);
    c.w_ih = randn((size_t)G * IN, 0.5f), c.w_hh = randn((size_t)G * H, 0.5f);
    c.b_ih = randn(G, 0.3f), c.b_hh = randn(G, 0.3f);
    c.h_out = zeros((size_t)B * H), c.cache = zeros((size_t)B * 4 * H);
    c.scratch = zeros((size_t)B * 6 * H), c.wout = randn((size_t)B * H, 1.0f);
    gru_loss(&c);
    float *dx = prior_buf((size_t)B * IN), *dh = prior_buf((size_t)B * H);
    float *dw_ih = prior_buf((size_t)G * IN), *dw_hh = prior_buf((size_t)G * H);
    float *db_ih = prior_buf(G), *db_hh = prior_buf(G);
    gru_cell_backward(dx, no_h ? NULL : dh, dw_ih, dw_hh, db_ih, db_hh, c.wout, c.cache, c.x,
                      no_h ? NULL : c.h, c.w_ih, c.w_hh, B, IN, H, c.scratch);
    const char *tag = no_h ? "gru(h0 = 0)" : "gru";
    char what[64];
#define GRU_CHECK(t, grad, n)                                                                      \
    snprintf(what, sizeof(what), "%s %s", tag, #grad);                                             \
    grad_check(what, gru_loss, &c, c.t, grad, n)
    GRU_CHECK(x, dx, (size_t)B * IN);
    GRU_CHECK(w_ih, dw_ih, (size_t)G * IN);
    GRU_CHECK(b_ih, db_ih, G);
    GRU_CHECK(b_hh, db_hh, G);
    if (no_h) {
        check_untouched("gru(h0 = 0) dw_hh", dw_hh, 0, (size_t)G * H);
        check_untouched("gru(h0 = 0) dh", dh, 0, (size_t)B * H);
    } else {
        GRU_CHECK(h, dh, (size_t)B * H);
        GRU_CHECK(w_hh, dw_hh, (size_t)G * H);
    }
#undef GRU_CHECK
    free(c.x), free(c.h), free(c.w_ih), free(c.w_hh), free(c.b_ih), free(c.b_hh), free(c.h_out);
    free(c.cache), free(c.scratch), free(c.wout);
    free(dx), free(dh), free(dw_ih), free(dw_hh), free(db_ih), free(db_hh);
}

/* ---- embedding ------------------------------------------------------------------------------- */

typedef struct {
    int N, C;
    const int *ids;
    float *table, *out, *wout;
} EmbeddingCase;

static double embedding_loss(void *p) {
    EmbeddingCase *c = p;
    embedding_forward(c->out, c->ids, c->table, c->N, c->C);
    return weighted_sum(c->out, c->wout, (size_t)c->N * c->C);
}

static void test_embedding(void) {
    static const int ids[8] = {1, 3, 1, 0, 5, 1, 3, 2}; // 1 three times, 3 twice, 4 never
    EmbeddingCase c = {8, 3, ids, NULL, NULL, NULL};
    c.table = randn(18, 1.0f), c.out = zeros(24), c.wout = randn(24, 1.0f);
    float *dtable = prior_buf(18);
    embedding_backward(dtable, c.wout, ids, c.N, c.C);
    grad_check("embedding dtable (repeated ids)", embedding_loss, &c, c.table, dtable, 18);
    check_untouched("embedding dtable row 4 (unused id)", dtable, 12, 3);
    free(c.table), free(c.out), free(c.wout), free(dtable);
}

/* ---- l2 norm -----------------------------------------------------------------------------------
 */

typedef struct {
    int N, C;
    float eps;
    float *inp, *out, *norm, *wout;
} L2NormCase;

static double l2norm_loss(void *p) {
    L2NormCase *c = p;
    l2norm_forward(c->out, c->norm, c->inp, c->N, c->C, c->eps);
    return weighted_sum(c->out, c->wout, (size_t)c->N * c->C);
}

static void test_l2norm(void) {
    // eps = 0.05 so that row 3 (norm ~1e-3, and < 0.05 under every FD step) is clamped
    L2NormCase c = {4, 6, 0.05f, NULL, NULL, NULL, NULL};
    c.inp = randn(24, 1.0f), c.out = zeros(24), c.norm = zeros(4), c.wout = randn(24, 1.0f);
    for (int i = 18; i < 24; i++) c.inp[i] *= 4e-4f;
    l2norm_loss(&c);
    CHECK_MSG(c.norm[3] == c.eps, "l2norm: row 3 norm %g not clamped to eps", c.norm[3]);
    float *dinp = prior_buf(24);
    l2norm_backward(dinp, c.wout, c.out, c.norm, c.N, c.C);
    grad_check("l2norm dinp (incl. clamped row)", l2norm_loss, &c, c.inp, dinp, 24);

    // cosine_scores on the normalised rows is the plain dot product, scaled
    float scores[16];
    cosine_scores(scores, c.out, c.out, 4, 4, 6, 2.0f);
    for (int i = 0; i < 3; i++) CHECK_CLOSE(scores[i * 4 + i], 2.0, 1e-5, 0.0);
    double d = 0.0;
    for (int e = 0; e < 6; e++) d += (double)c.out[e] * c.out[6 + e];
    CHECK_CLOSE(scores[1], 2.0 * d, 1e-6, 1e-5);
    free(c.inp), free(c.out), free(c.norm), free(c.wout), free(dinp);
}

/* ---- cross-entropy --------------------------------------------------------------------------- */

typedef struct {
    int N, V;
    const int *targets;
    float *logits, *probs;
} CrossEntropyCase;

static double crossentropy_loss(void *p) {
    CrossEntropyCase *c = p;
    return crossentropy_forward(c->probs, c->logits, c->targets, c->N, c->V);
}

static void test_crossentropy(void) {
    static const int targets[5] = {2, -1, 0, 6, -1};
    CrossEntropyCase c = {5, 7, targets, NULL, NULL};
    c.logits = randn(35, 2.0f), c.probs = zeros(35);
    double loss = crossentropy_loss(&c);
    double want = 0.0;
    for (int n = 0; n < 5; n++) {
        if (targets[n] < 0) continue;
        double s = 0.0;
        for (int i = 0; i < 7; i++) s += exp(c.logits[n * 7 + i]);
        want += log(s) - c.logits[n * 7 + targets[n]];
    }
    CHECK_CLOSE(loss, want / 3.0, 1e-6, 1e-6);
    // in place (probs == logits) gives the same loss and probabilities
    float inplace[35];
    memcpy(inplace, c.logits, sizeof(inplace));
    CHECK(crossentropy_forward(inplace, inplace, targets, c.N, c.V) == (float)loss);
    CHECK(memcmp(inplace, c.probs, sizeof(inplace)) == 0);
    // backward overwrites: the prior must be gone, so add it back for grad_check's subtraction
    float *dlogits = prior_buf(35);
    crossentropy_backward(dlogits, c.probs, targets, c.N, c.V, 1.0f);
    int ignored_zero = 1;
    for (int i = 0; i < 7; i++) ignored_zero &= dlogits[7 + i] == 0.0f && dlogits[28 + i] == 0.0f;
    CHECK_MSG(ignored_zero, "crossentropy: ignored rows must get exactly zero gradient");
    for (size_t i = 0; i < 35; i++) dlogits[i] += prior(i);
    grad_check("crossentropy dlogits (ignored rows)", crossentropy_loss, &c, c.logits, dlogits, 35);
    free(c.logits), free(c.probs), free(dlogits);
}

/* The checker itself must reject a gradient that is 5% off in one element. */
static void test_checker_rejects_wrong_gradient(void) {
    LinearCase c = {4, 3, 2, NULL, NULL, NULL, NULL, NULL};
    c.inp = randn(12, 1.0f), c.w = randn(6, 1.0f), c.b = randn(2, 1.0f);
    c.out = zeros(8), c.wout = randn(8, 1.0f);
    float *dw = prior_buf(6);
    linear_backward(NULL, dw, NULL, c.wout, c.inp, c.w, c.N, c.C, c.OC);
    CHECK(grad_mismatches("linear dw", linear_loss, &c, c.w, dw, 6, 0) == 0);
    size_t i = 0;
    for (size_t j = 1; j < 6; j++) i = fabsf(dw[j] - prior(j)) > fabsf(dw[i] - prior(i)) ? j : i;
    dw[i] += 0.05f * (dw[i] - prior(i));
    CHECK_MSG(grad_mismatches("linear dw", linear_loss, &c, c.w, dw, 6, 0) == 1,
              "the gradient checker accepted a gradient 5%% off");
    free(c.inp), free(c.w), free(c.b), free(c.out), free(c.wout), free(dw);
}

int main(void) {
    static const int lens[3] = {6, 3, 1}, lens_empty[3] = {0, 6, 2}; // an empty row too
    printf("finite differences: h = %g, |num - ana| <= %g + %g * max(|num|, |ana|)\n", FD_STEP,
           FD_ATOL, FD_RTOL);
    test_checker_rejects_wrong_gradient();
    test_linear(1);
    test_linear(0);
    test_layernorm();
    test_elementwise(0, "gelu dinp", -4.0f, 4.0f);
    test_elementwise(1, "softplus dinp", -25.0f, 25.0f);
    test_elementwise(2, "dropout dinp (p = 0.3)", -2.0f, 2.0f);
    test_softmax();
    test_attention(3, 6, 1, NULL, 0.0f, "causal");
    test_attention(3, 6, 1, lens, 0.0f, "causal+padding");
    test_attention(3, 6, 1, lens, 0.4f, "causal+padding+dropout");
    test_attention(3, 6, 0, lens, 0.0f, "padding");
    test_attention(3, 6, 1, lens_empty, 0.0f, "causal+empty row");
    // rows longer than 64 take the backward pass in several query-row blocks
    static const int long_lens[2] = {150, 97};
    test_attention(2, 150, 1, long_lens, 0.0f, "causal, 6 and 3 row blocks");
    test_attention(2, 150, 1, long_lens, 0.5f, "causal, row blocks, dropout");
    test_gru(0);
    test_gru(1);
    test_embedding();
    test_l2norm();
    test_crossentropy();
    return check_done();
}
