/* test_ssna_reference.c - the whole SSNA model against the python3-torch reference.
 *
 * tests/reference/ssna_ref.py (a CTest fixture) writes, per variant and loss (inbatch for every
 * variant; full and logq for some; dot-product scores for two; text + ID rows for two), the
 * weights, a batch, the noise of each training step, the torch loss of each step, every
 * parameter gradient of step 0 and the parameters after 3 Adam steps. This test loads the same
 * weights, replays the same noise through SsnaNoise, and checks (float32 C against float64 torch):
 *   loss:      |c - t| <= 1e-4 * |t|
 *   gradients: per tensor, max |c - t| <= 1e-4 * max |t| + 1e-6, and no tensor without gradient
 *   Adam:      after 3 steps (lr 1e-3), every parameter within 5e-5 of torch (a step is ~1e-3),
 *              except where torch's step-0 gradient is below 1e-6 of its tensor's largest (Adam
 *              makes float rounding of a ~0 gradient a full step; the count is printed)
 * Two gradients are zero in exact arithmetic and so excluded where noted: the key bias (softmax
 * ignores a per-row constant q.b_k; Adam would blow its float rounding up to full steps) and
 * the GRU's w_hh when a = 1 (h0 = 0).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "model/fileio.h"
#include "model/params.h"
#include "model/ssna.h"

typedef struct {
    char name[96];
    uint32_t dtype, ndim, dims[4];
    size_t count;
    const void *data;
} RefTensor;

typedef struct {
    unsigned char *bytes;
    RefTensor *t;
    int n;
} RefFile;

static int ref_load(RefFile *rf, const char *path) {
    memset(rf, 0, sizeof *rf);
    char *file, err[512];
    size_t len;
    if (file_read_all(path, &file, &len, err, sizeof err)) {
        fprintf(stderr, "%s (did the ssna_reference fixture run?)\n", err);
        return -1;
    }
    rf->bytes = (unsigned char *)file;
    if (len < 8 || memcmp(rf->bytes, "SSNAREF1", 8)) {
        fprintf(stderr, "%s: not a reference file\n", path);
        return -1;
    }
    size_t pos = 8;
    int cap = 0;
    while (pos + 4 <= (size_t)len) {
        RefTensor t = {0};
        uint32_t nl;
        memcpy(&nl, rf->bytes + pos, 4);
        pos += 4;
        if (nl >= sizeof t.name || pos + nl + 8 > (size_t)len) return -1;
        memcpy(t.name, rf->bytes + pos, nl);
        pos += nl;
        memcpy(&t.dtype, rf->bytes + pos, 4);
        memcpy(&t.ndim, rf->bytes + pos + 4, 4);
        pos += 8;
        if (t.ndim > 4) return -1;
        t.count = 1;
        for (uint32_t i = 0; i < t.ndim; i++, pos += 4) {
            memcpy(&t.dims[i], rf->bytes + pos, 4);
            t.count *= t.dims[i];
        }
        size_t bytes = t.count * (t.dtype == 2 ? 1 : 4);
        if (pos + bytes > (size_t)len) return -1;
        void *copy = malloc(bytes ? bytes : 1); /* records are packed: copy for alignment */
        if (!copy) return -1;
        memcpy(copy, rf->bytes + pos, bytes);
        t.data = copy;
        pos += bytes;
        if (rf->n == cap) {
            cap = cap ? 2 * cap : 64;
            RefTensor *grown = realloc(rf->t, (size_t)cap * sizeof *rf->t);
            if (!grown) {
                free(copy);
                return -1;
            }
            rf->t = grown;
        }
        rf->t[rf->n++] = t;
    }
    return 0;
}

static const RefTensor *ref_get(const RefFile *rf, const char *name) {
    for (int i = 0; i < rf->n; i++)
        if (!strcmp(rf->t[i].name, name)) return &rf->t[i];
    return NULL;
}

static void ref_free(RefFile *rf) {
    for (int i = 0; i < rf->n; i++) free((void *)rf->t[i].data);
    free(rf->bytes);
    free(rf->t);
}

/* Replays the reference's noise records "noise.<step>.<k>" in order. */
typedef struct {
    const RefFile *rf;
    int step, k;
} Replay;

static const RefTensor *replay_next(Replay *r, size_t n, uint32_t dtype) {
    char name[64];
    snprintf(name, sizeof name, "noise.%d.%d", r->step, r->k++);
    const RefTensor *t = ref_get(r->rf, name);
    CHECK_MSG(t && t->count == n && t->dtype == dtype, "%s: want %zu values of type %u", name, n,
              dtype);
    return t && t->count == n && t->dtype == dtype ? t : NULL;
}

static int replay_mask(void *ctx, uint8_t *keep, size_t n, float p) {
    const RefTensor *t = replay_next(ctx, n, 2);
    if (!t) return -1;
    memcpy(keep, t->data, n);
    return 0;
}

static int replay_normal(void *ctx, float *x, size_t n) {
    const RefTensor *t = replay_next(ctx, n, 0);
    if (!t) return -1;
    memcpy(x, t->data, n * sizeof(float));
    return 0;
}

static double worst_grad_error; /* max over tensors of max|c - t| / max|t| */

/* Elements [*lo, *hi) of a tensor whose exact gradient is zero (see the top comment). */
static int zero_gradient_range(const char *name, int d, int layers, size_t size, size_t *lo,
                               size_t *hi) {
    size_t n = strlen(name);
    if (n >= 5 && !strcmp(name + n - 5, "qkv.b")) {
        *lo = (size_t)d, *hi = 2 * (size_t)d;
        return 1;
    }
    if (layers == 1 && !strcmp(name, "gru.w_hh")) {
        *lo = 0, *hi = size;
        return 1;
    }
    return 0;
}

static int adam_skipped; /* parameters left out of the after-Adam comparison */

static void compare_tensors(const ParamSet *ps, const RefFile *rf, const char *prefix,
                            int use_grads, double rel, double atol, const char *cs, int d,
                            int layers) {
    for (int i = 0; i < ps->ntensors; i++) {
        const ParamTensor *pt = &ps->tensors[i];
        char name[128];
        snprintf(name, sizeof name, "%s%s", prefix, pt->name);
        const RefTensor *t = ref_get(rf, name);
        CHECK_MSG(t && t->count == pt->size, "%s %s: missing or wrong size", cs, name);
        if (!t || t->count != pt->size) continue;
        const float *c = (use_grads ? ps->grads : ps->params) + pt->offset;
        const float *r = t->data;
        double maxref = 0, maxerr = 0, gmax = 0;
        size_t lo = 0, hi = 0;
        int has_zero = zero_gradient_range(pt->name, d, layers, pt->size, &lo, &hi);
        /* Adam divides by sqrt(v): where the exact gradient is ~0 (1e-9 here, 1e-7 in C) it
         * turns float rounding into a full lr step of either sign, so those elements are not
         * compared after the steps (the gradients themselves are, above) */
        char gname[160];
        snprintf(gname, sizeof gname, "grad.%s", pt->name);
        const RefTensor *g0 = use_grads ? NULL : ref_get(rf, gname);
        const float *gr = g0 && g0->count == pt->size ? g0->data : NULL;
        for (size_t j = 0; gr && j < pt->size; j++) gmax = fmax(gmax, fabs(gr[j]));
        for (size_t j = 0; j < pt->size; j++) {
            if (has_zero && j >= lo && j < hi) {
                if (use_grads)
                    CHECK_MSG(fabs(c[j]) < 1e-4, "%s %s[%zu]: %g, want 0", cs, name, j, c[j]);
                continue;
            }
            if (gr && gr[j] != 0.0f && fabs(gr[j]) < 1e-6 * gmax) {
                adam_skipped++;
                continue;
            }
            if (fabs(r[j]) > maxref) maxref = fabs(r[j]);
            if (fabs(c[j] - r[j]) > maxerr) maxerr = fabs(c[j] - r[j]);
        }
        if (use_grads && !(has_zero && lo == 0 && hi == pt->size))
            CHECK_MSG(maxref > 0, "%s %s: torch gives no gradient", cs, name);
        if (use_grads && maxref > 0 && maxerr / maxref > worst_grad_error)
            worst_grad_error = maxerr / maxref;
        CHECK_MSG(maxerr <= rel * maxref + atol, "%s %s: max error %.3g (max |torch| %.3g)", cs,
                  name, maxerr, maxref);
    }
}

static void run_case(const char *dir, const char *cs) {
    char path[1100], err[256];
    snprintf(path, sizeof path, "%s/%s.bin", dir, cs);
    RefFile rf;
    int ok = ref_load(&rf, path) == 0;
    CHECK_MSG(ok, "%s: unreadable", path);
    if (!ok) {
        ref_free(&rf);
        return;
    }
    const RefTensor *ci = ref_get(&rf, "config"), *cf = ref_get(&rf, "config_f");
    const RefTensor *st = ref_get(&rf, "states"), *off = ref_get(&rf, "offsets");
    const RefTensor *it = ref_get(&rf, "items"), *tg = ref_get(&rf, "targets");
    const RefTensor *counts = ref_get(&rf, "item_counts");
    int ok_records = ci && cf && st && off && it && tg && counts && ci->count == 15 &&
                     cf->count == 6 && counts->count == (size_t)((const int32_t *)ci->data)[1];
    CHECK_MSG(ok_records, "%s: records missing or of the wrong size", cs);
    if (!ok_records) {
        ref_free(&rf);
        return;
    }
    const int32_t *c = ci->data;
    const float *f = cf->data;
    SsnaConfig cfg = ssna_config_default((SsnaVariant)c[0], c[1], c[2], c[3]);
    cfg.d = c[4], cfg.n_experts = c[5], cfg.tmlp_layers = c[6], cfg.n_blocks = c[7];
    cfg.n_heads = c[8], cfg.inner = c[9], cfg.max_len = c[10];
    cfg.adapter_dropout = f[0], cfg.hidden_dropout = f[1], cfg.ln_eps = f[2], cfg.tau = f[3];
    cfg.attn_dropout = f[5];
    cfg.loss = (SsnaLoss)c[12], cfg.score = (SsnaScore)c[13], cfg.item_ids = c[14];
    int steps = c[11];
    SsnaModel m;
    CHECK_MSG(ssna_create(&m, &cfg, 7, err, sizeof err) == 0, "%s: %s", cs, err);
    /* the logq loss's target shares, from the reference's counts (every case sets them: the
     * other losses must ignore them) */
    double *cnt = malloc((size_t)cfg.n_items * sizeof(double));
    CHECK(cnt != NULL);
    for (int i = 0; cnt && i < cfg.n_items; i++) cnt[i] = ((const float *)counts->data)[i];
    CHECK_MSG(cnt && ssna_set_item_counts(&m, cnt, err, sizeof err) == 0, "%s: %s", cs, err);
    free(cnt);

    /* the reference's weights, by name; every C tensor must have one and nothing more */
    int nparam_records = 0;
    for (int i = 0; i < rf.n; i++) nparam_records += !strncmp(rf.t[i].name, "param.", 6);
    CHECK_MSG(nparam_records == m.ps.ntensors, "%s: %d reference tensors, C has %d", cs,
              nparam_records, m.ps.ntensors);
    for (int i = 0; i < m.ps.ntensors; i++) {
        char name[128];
        snprintf(name, sizeof name, "param.%s", m.ps.tensors[i].name);
        const RefTensor *t = ref_get(&rf, name);
        CHECK_MSG(t && t->count == m.ps.tensors[i].size, "%s: %s missing or wrong size", cs, name);
        if (t && t->count == m.ps.tensors[i].size)
            memcpy(params_data(&m.ps, i), t->data, t->count * sizeof(float));
    }

    Replay replay = {&rf, 0, 0};
    SsnaNoise noise = {replay_mask, replay_normal, &replay};
    m.noise = &noise;
    SsnaBatch batch = {(int)off->count - 1, off->data, it->data, tg->data};
    AdamConfig adam = adam_defaults();
    adam.lr = f[4];
    for (int s = 0; s < steps; s++) {
        replay.step = s, replay.k = 0;
        params_zero_grad(&m.ps);
        float loss = 0;
        int rc = ssna_forward(&m, &batch, st->data, &loss, err, sizeof err);
        CHECK_MSG(rc == 0, "%s step %d: %s", cs, s, err);
        if (rc) break;
        char name[64];
        snprintf(name, sizeof name, "noise.%d.%d", s, replay.k);
        CHECK_MSG(!ref_get(&rf, name), "%s step %d: C drew fewer noise tensors than torch", cs, s);
        snprintf(name, sizeof name, "loss.%d", s);
        const RefTensor *lt = ref_get(&rf, name);
        CHECK(lt != NULL);
        if (lt) CHECK_CLOSE(loss, ((const float *)lt->data)[0], 0.0, 1e-4);
        CHECK(ssna_backward(&m) == 0);
        if (s == 0) compare_tensors(&m.ps, &rf, "grad.", 1, 1e-4, 1e-6, cs, cfg.d, cfg.layers);
        adam_step(&m.ps, &adam);
    }
    compare_tensors(&m.ps, &rf, "final.", 0, 0.0, 5e-5, cs, cfg.d, cfg.layers);
    printf("%s: checked loss, %d gradients, %d steps of Adam\n", cs, m.ps.ntensors, steps);
    ssna_free(&m);
    ref_free(&rf);
}

int main(void) {
    const char *build = getenv("SSNA_BUILD_DIR");
    CHECK_MSG(build != NULL, "SSNA_BUILD_DIR is not set (run through ctest)");
    if (!build) return check_done();
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/ssna_ref", build);
    const char *cases[] = {
        "gru3",      "gru1",        "mean3",         "weighted2",     "tmoe",
        "tmlp",      "id",          "gru3_full",     "id_full",       "gru3_logq",
        "tmlp_logq", "id_full_dot", "gru3_logq_dot", "gru3_logq_ids", "tmlp_full_dot_ids"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(dir, cases[i]);
    printf("worst gradient error, relative to the tensor's largest torch gradient: %.3g\n",
           worst_grad_error);
    printf("parameters with a non-zero step-0 gradient below 1e-6 of their tensor's largest, not "
           "compared after Adam: %d\n",
           adam_skipped);
    return check_done();
}
