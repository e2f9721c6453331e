/* ssna_center_items on real MiniLM states: why a fresh model scores every item alike, and that
 * centring the item tower on the catalogue undoes it.
 *
 * Every 8th Scientific text goes through the real all-MiniLM-L6-v2 ([CLS], the top 3 layers, as
 * ssnad keeps them). For each text variant at d 64 (the width of ssnad's arms from random
 * weights) the mean pairwise cosine of the item vectors lists are scored on is printed before and
 * after centring. Checked: after centring the vectors are spread (mean cosine < 0.2 and below
 * the uncentred one, which is above 0.8 for gru and mean); gru's biases are 0; each whitening
 * bias is the mean state of its layer over the present rows, computed here independently;
 * placeholder rows (present 0) do not count; tmlp's first layer has zero mean pre-activation
 * over the items; a catalogue of placeholders only is refused; the id variant is left as it is.
 * Fails when the model folder or the data is missing. */
#include "model/ssna.h"
#include "model/ssna_internal.h"
#include "test_encoder_util.h"

#define LAYERS 3
#define D      64

/* Mean cosine over all pairs i < j of the L2-normalised rows norm[n, D]. */
static double mean_pair_cosine(const float *norm, int n) {
    double sum = 0;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            double dot = 0;
            for (int k = 0; k < D; k++) dot += (double)norm[i * D + k] * norm[j * D + k];
            sum += dot;
        }
    return sum / ((double)n * (n - 1) / 2);
}

static double item_cosine(SsnaModel *m, const float *states, int n) {
    float *raw = malloc((size_t)n * D * sizeof *raw), *norm = malloc((size_t)n * D * sizeof *norm);
    char err[256];
    double c = -2;
    if (raw && norm && ssna_item_vectors(m, states, NULL, n, raw, norm, err, sizeof err) == 0)
        c = mean_pair_cosine(norm, n);
    free(raw), free(norm);
    return c;
}

/* Each whitening head's b against the mean state of its layer over the present rows. */
static void check_adapter_means(const SsnaModel *m, const float *states,
                                const unsigned char *present, int n, int H) {
    for (int a = 0; a < LAYERS; a++) {
        double worst = 0;
        for (int h = 0; h < H; h++) {
            double s = 0;
            int cnt = 0;
            for (int i = 0; i < n; i++)
                if (!present || present[i]) s += states[((size_t)i * LAYERS + a) * H + h], cnt++;
            for (int k = 0; k < m->cfg.n_experts; k++) {
                double diff = fabs(m->p->adapter[a].b.val[(size_t)k * H + h] - s / cnt);
                if (diff > worst) worst = diff;
            }
        }
        CHECK_MSG(worst < 1e-5, "adapter %d: b differs from the layer's mean by %g", a, worst);
    }
}

/* tmlp: the first layer's pre-activation W0 x + b0 averages to 0 over the items. */
static void check_tmlp_centred(const SsnaModel *m, const float *states, int n, int H) {
    const float *W = m->p->tmlp[0].w.val, *b = m->p->tmlp[0].b.val;
    double worst = 0;
    for (int o = 0; o < D; o++) {
        double s = 0;
        for (int i = 0; i < n; i++) {
            double pre = b[o];
            for (int h = 0; h < H; h++)
                pre += (double)W[(size_t)o * H + h] * states[(size_t)i * LAYERS * H + h];
            s += pre;
        }
        if (fabs(s / n) > worst) worst = fabs(s / n);
    }
    CHECK_MSG(worst < 1e-4, "tmlp: mean first-layer pre-activation %g, expected 0", worst);
}

static void check_variant(SsnaVariant variant, const float *states, int n, int H) {
    // every variant reads rows of LAYERS states (tmoe and tmlp only the top one)
    SsnaConfig cfg = ssna_config_default(variant, n, H, LAYERS);
    cfg.d = D;
    SsnaModel m;
    char err[256];
    if (ssna_create(&m, &cfg, 1, err, sizeof err)) {
        CHECK_MSG(0, "ssna_create %s: %s", ssna_variant_name(variant), err);
        return;
    }
    double before = item_cosine(&m, states, n);
    CHECK(ssna_center_items(&m, states, NULL, (size_t)n, err, sizeof err) == 0);
    double after = item_cosine(&m, states, n);
    printf("%-8s d %d: mean pairwise cosine of %d item vectors: %.4f uncentred, %.4f centred\n",
           ssna_variant_name(variant), D, n, before, after);
    CHECK_MSG(after < 0.2 && after < before, "%s: %.4f after centring (%.4f before)",
              ssna_variant_name(variant), after, before);
    if (variant == SSNA_VARIANT_GRU || variant == SSNA_VARIANT_MEAN) // what centring is for
        CHECK_MSG(before > 0.8, "%s: uncentred items already spread (%.4f)",
                  ssna_variant_name(variant), before);
    if (variant == SSNA_VARIANT_GRU) {
        int nonzero = 0;
        for (int k = 0; k < 3 * D; k++)
            nonzero += m.p->gru_b_ih.val[k] != 0 || m.p->gru_b_hh.val[k] != 0;
        CHECK_MSG(nonzero == 0, "gru: %d biases left non-zero", nonzero);
    }
    if (variant == SSNA_VARIANT_TMLP)
        check_tmlp_centred(&m, states, n, H);
    else if (variant != SSNA_VARIANT_TMOE)
        check_adapter_means(&m, states, NULL, n, H);
    ssna_free(&m);
}

/* Placeholders (present 0) must not move the means; all placeholders is an error; id: no-op. */
static void check_present_and_refusals(const float *states, int n, int H) {
    SsnaConfig cfg = ssna_config_default(SSNA_VARIANT_GRU, n, H, LAYERS);
    cfg.d = D;
    SsnaModel m;
    char err[256] = "";
    if (ssna_create(&m, &cfg, 2, err, sizeof err)) {
        CHECK_MSG(0, "ssna_create: %s", err);
        return;
    }
    size_t ns = (size_t)n * LAYERS * H;
    float *with_junk = malloc(ns * sizeof *with_junk);
    unsigned char *present = malloc((size_t)n);
    memcpy(with_junk, states, ns * sizeof *with_junk);
    for (int i = 0; i < n; i++) {
        present[i] = i % 3 != 0;
        if (!present[i]) // a placeholder's row: what it holds must not count
            for (size_t k = 0; k < (size_t)LAYERS * H; k++)
                with_junk[(size_t)i * LAYERS * H + k] = 1e3f;
    }
    CHECK(ssna_center_items(&m, with_junk, present, (size_t)n, err, sizeof err) == 0);
    check_adapter_means(&m, states, present, n, H);
    memset(present, 0, (size_t)n);
    float b0 = m.p->adapter[0].b.val[0];
    CHECK(ssna_center_items(&m, with_junk, present, (size_t)n, err, sizeof err) == -1);
    printf("all placeholders -> %s\n", err);
    CHECK(strstr(err, "none of") != NULL);
    CHECK(m.p->adapter[0].b.val[0] == b0); // nothing changed by the refusal
    ssna_free(&m);
    free(with_junk), free(present);

    SsnaConfig idc = ssna_config_default(SSNA_VARIANT_ID, n, H, 1);
    idc.d = D;
    if (ssna_create(&m, &idc, 3, err, sizeof err) == 0) {
        float *copy = malloc(m.ps.total * sizeof *copy);
        memcpy(copy, m.ps.params, m.ps.total * sizeof *copy);
        CHECK(ssna_center_items(&m, NULL, NULL, (size_t)n, err, sizeof err) == 0);
        CHECK(memcmp(copy, m.ps.params, m.ps.total * sizeof *copy) == 0);
        free(copy);
        ssna_free(&m);
    }
}

int main(void) {
    Encoder *e;
    char **texts, err[512];
    int n = load_real_encoder_and_texts(&e, 8, &texts);
    int H = encoder_hidden(e);
    float *states = malloc((size_t)n * LAYERS * H * sizeof *states);
    if (!states || encoder_embed(e, (const char *const *)texts, NULL, n, ENCODER_POOL_CLS,
                                 encoder_num_layers(e), LAYERS, states, err, sizeof err)) {
        fprintf(stderr, "FAIL: encoding %d texts: %s\n", n, err);
        return 1;
    }
    SsnaVariant variants[] = {SSNA_VARIANT_GRU, SSNA_VARIANT_MEAN, SSNA_VARIANT_TMOE,
                              SSNA_VARIANT_TMLP};
    for (size_t i = 0; i < sizeof variants / sizeof *variants; i++)
        check_variant(variants[i], states, n, H);
    check_present_and_refusals(states, n, H);
    for (int i = 0; i < n; i++) free(texts[i]);
    free(texts), free(states);
    encoder_free(e);
    return check_done();
}
