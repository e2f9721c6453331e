/* test_ssna_grad.c - finite-difference gradient check of the WHOLE model, for every loss.
 *
 * The kernels have their own checks (test_kernels_grad); this one checks what ssna.c adds on
 * top of them for each training objective (inbatch, logq, full): the candidate sets, the
 * log-count and log-q offsets, the scatter of target gradients back to the item tower. Dropout
 * is 0 and the MoE gate noise replays the same fixed draws on every forward pass, so the loss is
 * a deterministic function of the parameters.
 *
 * For every parameter tensor, its largest-gradient element and FD_EACH random ones are compared
 * with the central difference (loss(p + h) - loss(p - h)) / 2h, h = FD_STEP or less (so that h
 * times the tensor's largest gradient stays <= 0.01), and must satisfy
 * |num - ana| <= FD_ATOL + FD_RTOL * max(|num|, |ana|). The model runs in float32: a loss of ~3
 * carries ~2e-7 of rounding per evaluation, i.e. up to ~1e-4 in the quotient; the tolerances
 * (those of test_kernels_grad) sit above that and far
 * below the error of a wrong formula (a dropped offset or a lost scatter changes gradients by
 * their own size).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "model/rng.h"
#include "model/ssna.h"

#define FD_STEP 5e-3f
#define FD_ATOL 1e-3
#define FD_RTOL 3e-2
#define FD_EACH 3

/* The same draws on every forward: all kept, normals from a fixed counter-based sequence. */
typedef struct {
    uint64_t n;
} FixedNoise;

static int fixed_mask(void *ctx, uint8_t *keep, size_t n, float p) {
    (void)ctx, (void)p;
    memset(keep, 1, n);
    return 0;
}

static int fixed_normal(void *ctx, float *x, size_t n) {
    FixedNoise *f = ctx;
    for (size_t i = 0; i < n; i++, f->n++) x[i] = (float)sin(0.7 * (double)f->n + 0.3);
    return 0;
}

static double loss_of(SsnaModel *m, FixedNoise *fn, const SsnaBatch *b, const float *states) {
    char err[256];
    float loss = 0;
    fn->n = 0;
    int rc = ssna_forward(m, b, states, &loss, err, sizeof err);
    CHECK_MSG(rc == 0, "forward: %s", err);
    return loss;
}

static void check_case(SsnaVariant variant, int layers, SsnaLoss loss, SsnaScore score,
                       int item_ids, uint64_t seed) {
    enum { N_ITEMS = 30, HIDDEN = 12 };
    char err[256], label[64];
    snprintf(label, sizeof label, "%s%s a=%d loss %s %s", ssna_variant_name(variant),
             item_ids ? "+ids" : "", layers, ssna_loss_name(loss), ssna_score_name(score));
    SsnaConfig cfg = ssna_config_default(variant, N_ITEMS, HIDDEN, layers);
    cfg.loss = loss, cfg.score = score, cfg.d = 8, cfg.n_heads = 2, cfg.inner = 12, cfg.max_len = 8;
    cfg.n_experts = 3, cfg.adapter_dropout = 0.0f, cfg.hidden_dropout = 0.0f;
    cfg.item_ids = item_ids;
    SsnaModel m;
    if (ssna_create(&m, &cfg, seed, err, sizeof err)) {
        CHECK_MSG(0, "%s: %s", label, err);
        return;
    }
    FixedNoise fn = {0};
    SsnaNoise noise = {fixed_mask, fixed_normal, &fn};
    m.noise = &noise;
    uint64_t rng = seed * 77 + 1;
    float *states = malloc((size_t)N_ITEMS * layers * HIDDEN * sizeof(float));
    double counts[N_ITEMS];
    for (int i = 0; i < N_ITEMS * layers * HIDDEN; i++) states[i] = rng_normal(&rng);
    for (int i = 0; i < N_ITEMS; i++) counts[i] = (double)((i * 37) % 11) * (i % 5); // skewed
    CHECK(ssna_set_item_counts(&m, counts, err, sizeof err) == 0);
    /* rows of 5, 3, 6 and 1 positions; targets from few items (repeats: log k), one without */
    static const int offsets[5] = {0, 5, 8, 14, 15};
    int items[15], targets[15];
    for (int n = 0; n < 15; n++)
        items[n] = (int)(rng_next(&rng) % N_ITEMS), targets[n] = (int)(rng_next(&rng) % 6) * 4;
    targets[6] = -1;
    SsnaBatch b = {4, offsets, items, targets};

    /* analytic gradients */
    params_zero_grad(&m.ps);
    loss_of(&m, &fn, &b, states);
    CHECK(ssna_backward(&m) == 0);
    float *grads = malloc(m.ps.total * sizeof(float));
    memcpy(grads, m.ps.grads, m.ps.total * sizeof(float));

    int bad_total = 0, checked = 0, tensors_with_signal = 0;
    for (int t = 0; t < m.ps.ntensors; t++) {
        float *p = params_data(&m.ps, t);
        const float *g = grads + (p - m.ps.params);
        size_t n = m.ps.tensors[t].size, top = 0;
        for (size_t i = 1; i < n; i++)
            if (fabsf(g[i]) > fabsf(g[top])) top = i;
        if (fabsf(g[top]) > 1e-4f)
            tensors_with_signal++;
        else
            printf("  %s: %s has max |grad| %.3g\n", label, m.ps.tensors[t].name, fabsf(g[top]));
        /* a step that moves the loss by at most ~0.01: tiny item vectors (tmlp's at init) make
         * the cosine's gradient large and curved, and FD_STEP would cross the curve */
        float h = fminf(FD_STEP, 0.01f / fmaxf(fabsf(g[top]), 1e-6f));
        for (int k = 0; k <= FD_EACH; k++) {
            size_t i = k == 0 ? top : (size_t)(rng_next(&rng) % n);
            float orig = p[i];
            p[i] = orig + h;
            double lp = loss_of(&m, &fn, &b, states);
            p[i] = orig - h;
            double lm = loss_of(&m, &fn, &b, states);
            p[i] = orig;
            double num = (lp - lm) / ((double)(orig + h) - (double)(orig - h)), ana = g[i];
            int bad = fabs(num - ana) > FD_ATOL + FD_RTOL * fmax(fabs(num), fabs(ana));
            CHECK_MSG(!bad, "%s: %s[%zu] numeric %.6g analytic %.6g", label, m.ps.tensors[t].name,
                      i, num, ana);
            bad_total += bad, checked++;
        }
    }
    // a loss that ignored most parameters would pass trivially: demand gradient almost everywhere
    CHECK_MSG(tensors_with_signal >= m.ps.ntensors - 2, "%s: only %d of %d tensors have gradient",
              label, tensors_with_signal, m.ps.ntensors);
    printf("%-28s %3d tensors, %4d elements checked, %d off\n", label, m.ps.ntensors, checked,
           bad_total);
    free(grads);
    free(states);
    ssna_free(&m);
}

/* The three losses give different values on the same batch and weights (the options are not
 * silently the same objective), and logq without counts is an error, not inbatch. */
static void check_losses_differ(void) {
    char err[256];
    double v[3];
    static const int offsets[3] = {0, 4, 7};
    static const int items[7] = {1, 2, 3, 4, 5, 6, 7}, targets[7] = {2, 3, 2, 5, 6, 7, 2};
    SsnaBatch b = {2, offsets, items, targets};
    for (int l = 0; l < 3; l++) {
        SsnaConfig cfg = ssna_config_default(SSNA_VARIANT_ID, 20, 0, 1);
        cfg.loss = (SsnaLoss)l, cfg.d = 8, cfg.inner = 8, cfg.hidden_dropout = 0.0f;
        SsnaModel m;
        CHECK(ssna_create(&m, &cfg, 3, err, sizeof err) == 0);
        float loss = 0;
        if (l == SSNA_LOSS_LOGQ) {
            CHECK(ssna_forward(&m, &b, NULL, &loss, err, sizeof err) == -1);
            CHECK_MSG(strstr(err, "logq") != NULL, "logq without counts: %s", err);
            double counts[20] = {0};
            counts[2] = 30, counts[5] = 3;
            CHECK(ssna_set_item_counts(&m, counts, err, sizeof err) == 0);
        }
        CHECK_MSG(ssna_forward(&m, &b, NULL, &loss, err, sizeof err) == 0, "%s", err);
        v[l] = loss;
        ssna_free(&m);
    }
    CHECK_MSG(fabs(v[0] - v[1]) > 1e-3 && fabs(v[0] - v[2]) > 1e-3 && fabs(v[1] - v[2]) > 1e-3,
              "losses inbatch %.6f full %.6f logq %.6f", v[0], v[1], v[2]);
    CHECK(ssna_loss_parse("full") == SSNA_LOSS_FULL && ssna_loss_parse("logq") == SSNA_LOSS_LOGQ);
    CHECK(ssna_loss_parse("inbatch") == SSNA_LOSS_INBATCH && ssna_loss_parse("sampled") == -1);
    CHECK(ssna_loss_parse("sampled-logq") == SSNA_LOSS_LOGQ);
}

/* cos and dot are different logits on the same weights, and the names parse. */
static void check_scores_differ(void) {
    char err[256];
    double v[2];
    static const int offsets[3] = {0, 4, 7};
    static const int items[7] = {1, 2, 3, 4, 5, 6, 7}, targets[7] = {2, 3, 2, 5, 6, 7, 2};
    SsnaBatch b = {2, offsets, items, targets};
    for (int sc = 0; sc < 2; sc++) {
        SsnaConfig cfg = ssna_config_default(SSNA_VARIANT_ID, 20, 0, 1);
        cfg.loss = SSNA_LOSS_FULL, cfg.score = (SsnaScore)sc, cfg.d = 8, cfg.inner = 8;
        cfg.hidden_dropout = 0.0f;
        SsnaModel m;
        CHECK(ssna_create(&m, &cfg, 3, err, sizeof err) == 0);
        float loss = 0;
        CHECK_MSG(ssna_forward(&m, &b, NULL, &loss, err, sizeof err) == 0, "%s", err);
        v[sc] = loss;
        ssna_free(&m);
    }
    CHECK_MSG(fabs(v[0] - v[1]) > 1e-3, "losses cos %.6f dot %.6f", v[0], v[1]);
    CHECK(ssna_score_parse("cos") == SSNA_SCORE_COS && ssna_score_parse("dot") == SSNA_SCORE_DOT);
    CHECK(ssna_score_parse("cosine") == -1 && !strcmp(ssna_score_name(SSNA_SCORE_DOT), "dot"));
}

int main(void) {
    for (int l = 0; l < 3; l++) {
        check_case(SSNA_VARIANT_GRU, 2, (SsnaLoss)l, SSNA_SCORE_COS, 0, 11 + (uint64_t)l);
        check_case(SSNA_VARIANT_TMLP, 1, (SsnaLoss)l, SSNA_SCORE_COS, 0, 21 + (uint64_t)l);
        check_case(SSNA_VARIANT_ID, 1, (SsnaLoss)l, SSNA_SCORE_COS, 0, 31 + (uint64_t)l);
    }
    check_case(SSNA_VARIANT_WEIGHTED, 3, SSNA_LOSS_FULL, SSNA_SCORE_COS, 0, 41);
    // RecBole's dot-product logits: no normalisation between the towers and the loss
    check_case(SSNA_VARIANT_ID, 1, SSNA_LOSS_FULL, SSNA_SCORE_DOT, 0, 51);
    check_case(SSNA_VARIANT_GRU, 2, SSNA_LOSS_LOGQ, SSNA_SCORE_DOT, 0, 52);
    check_case(SSNA_VARIANT_MEAN, 3, SSNA_LOSS_INBATCH, SSNA_SCORE_DOT, 0, 53);
    // text + ID rows (UniSRec's fine-tuning): the ID rows' gradients beside the adapters'
    check_case(SSNA_VARIANT_GRU, 2, SSNA_LOSS_LOGQ, SSNA_SCORE_COS, 1, 61);
    check_case(SSNA_VARIANT_TMLP, 1, SSNA_LOSS_FULL, SSNA_SCORE_DOT, 1, 62);
    check_scores_differ();
    check_losses_differ();
    return check_done();
}
