/* test_kernels_torch.c - model/kernels.c and adam_step against PyTorch 1.13.
 *
 * tests/reference/kernels_ref.py (the CTest fixture kernels_ref_generate) writes seeded inputs,
 * weights, torch's outputs and gradients to $SSNA_BUILD_DIR/tests/kernels_ref.bin; this test
 * recomputes every one with our kernels and compares elementwise:
 *   |ours - torch| <= REF_ATOL + REF_RTOL * |torch|
 * Both sides are float32 with different summation orders, so agreement is to a few ulps of the
 * magnitudes summed, not bit-exact; see docs/kernels.md.
 */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "model/kernels.h"
#include "model/params.h"

#define REF_ATOL 1e-5
#define REF_RTOL 1e-5
#define REF_MAX  256

typedef struct {
    char name[64];
    int ndim, shape[4];
    size_t n;
    float *data;
} RefTensor;

static RefTensor refs[REF_MAX];
static int nrefs;

/* Reads the whole reference file; 0, or -1 with a message on stderr. */
static int load_refs(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: cannot open (the kernels_ref_generate fixture must run first)\n",
                path);
        return -1;
    }
    char magic[8];
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, "SSNAREF1", 8) != 0) {
        fprintf(stderr, "%s: not a kernels reference file\n", path);
        fclose(f);
        return -1;
    }
    uint32_t nlen;
    while (fread(&nlen, 4, 1, f) == 1) {
        RefTensor *t = &refs[nrefs];
        uint32_t ndim = 0;
        if (nrefs == REF_MAX || nlen >= sizeof(t->name) || fread(t->name, 1, nlen, f) != nlen ||
            fread(&ndim, 4, 1, f) != 1 || ndim > 4 || fread(t->shape, 4, ndim, f) != ndim) {
            fprintf(stderr, "%s: malformed record %d\n", path, nrefs);
            fclose(f);
            return -1;
        }
        t->name[nlen] = '\0';
        t->ndim = (int)ndim;
        t->n = 1;
        for (uint32_t d = 0; d < ndim; d++) t->n *= (size_t)t->shape[d];
        t->data = malloc(t->n * sizeof(float) + 1);
        if (fread(t->data, sizeof(float), t->n, f) != t->n) {
            fprintf(stderr, "%s: truncated data of '%s'\n", path, t->name);
            fclose(f);
            return -1;
        }
        nrefs++;
    }
    fclose(f);
    return 0;
}

/* The reference tensor prefix.suffix with n elements; aborts the test run when missing, since
 * every later comparison would be meaningless. */
static float *ref(const char *prefix, const char *suffix, size_t n) {
    char name[64];
    snprintf(name, sizeof(name), "%s.%s", prefix, suffix);
    for (int i = 0; i < nrefs; i++) {
        if (strcmp(refs[i].name, name) != 0) continue;
        if (refs[i].n != n) {
            fprintf(stderr, "reference '%s' has %zu elements, expected %zu\n", name, refs[i].n, n);
            exit(1);
        }
        return refs[i].data;
    }
    fprintf(stderr, "reference '%s' missing: regenerate with kernels_ref.py\n", name);
    exit(1);
}

static void compare(const char *prefix, const char *what, const float *got, const float *want,
                    size_t n) {
    int bad = 0;
    size_t worst = 0;
    double worst_excess = -1.0, max_err = 0.0;
    for (size_t i = 0; i < n; i++) {
        double err = fabs((double)got[i] - want[i]);
        double excess = err - (REF_ATOL + REF_RTOL * fabs(want[i]));
        bad += excess > 0.0;
        if (excess > worst_excess) worst_excess = excess, worst = i;
        max_err = fmax(max_err, err);
    }
    CHECK_MSG(bad == 0, "%s %s: %d of %zu elements off; worst [%zu] ours %.9g torch %.9g", prefix,
              what, bad, n, worst, got[worst], want[worst]);
    printf("  %-16s %-8s %5zu elements, max |ours - torch| %.3g\n", prefix, what, n, max_err);
}

static float *zeros(size_t n) {
    return calloc(n ? n : 1, sizeof(float));
}

/* ---- GRU cell -------------------------------------------------------------------------------- */

static void test_gru(const char *p, int B, int IN, int H, int with_h) {
    int G = 3 * H;
    const float *x = ref(p, "x", (size_t)B * IN), *h = ref(p, "h", (size_t)B * H);
    const float *w_ih = ref(p, "w_ih", (size_t)G * IN), *w_hh = ref(p, "w_hh", (size_t)G * H);
    const float *b_ih = ref(p, "b_ih", G), *b_hh = ref(p, "b_hh", G);
    const float *wout = ref(p, "wout", (size_t)B * H);
    float *out = zeros((size_t)B * H), *cache = zeros((size_t)B * 4 * H);
    float *scratch = zeros((size_t)B * 6 * H);
    gru_cell_forward(out, cache, x, with_h ? h : NULL, w_ih, w_hh, b_ih, b_hh, B, IN, H, scratch);
    compare(p, "out", out, ref(p, "out", (size_t)B * H), (size_t)B * H);
    float *dx = zeros((size_t)B * IN), *dh = zeros((size_t)B * H);
    float *dw_ih = zeros((size_t)G * IN), *dw_hh = zeros((size_t)G * H);
    float *db_ih = zeros(G), *db_hh = zeros(G);
    gru_cell_backward(dx, with_h ? dh : NULL, dw_ih, dw_hh, db_ih, db_hh, wout, cache, x,
                      with_h ? h : NULL, w_ih, w_hh, B, IN, H, scratch);
    compare(p, "dx", dx, ref(p, "dx", (size_t)B * IN), (size_t)B * IN);
    if (with_h) compare(p, "dh", dh, ref(p, "dh", (size_t)B * H), (size_t)B * H);
    compare(p, "dw_ih", dw_ih, ref(p, "dw_ih", (size_t)G * IN), (size_t)G * IN);
    compare(p, "dw_hh", dw_hh, ref(p, "dw_hh", (size_t)G * H), (size_t)G * H);
    compare(p, "db_ih", db_ih, ref(p, "db_ih", G), G);
    compare(p, "db_hh", db_hh, ref(p, "db_hh", G), G);
    free(out), free(cache), free(scratch), free(dx), free(dh), free(dw_ih), free(dw_hh);
    free(db_ih), free(db_hh);
}

/* ---- multi-head attention block: q/k/v linears, attention core, out projection ------------- */

static void test_mha(const char *p) {
    const float *dims = ref(p, "dims", 5);
    int B = (int)dims[0], T = (int)dims[1], C = (int)dims[2], NH = (int)dims[3];
    int causal = (int)dims[4];
    size_t n = (size_t)B * T * C, cc = (size_t)C * C;
    const float *lens_f = ref(p, "lens", B);
    int *lens = malloc((size_t)B * sizeof(int));
    for (int b = 0; b < B; b++) lens[b] = (int)lens_f[b];
    const float *x = ref(p, "x", n), *in_w = ref(p, "in_w", 3 * cc), *in_b = ref(p, "in_b", 3 * C);
    const float *out_w = ref(p, "out_w", cc), *out_b = ref(p, "out_b", C);
    const float *wout = ref(p, "wout", n);

    // torch's in_proj_weight [3C, C] is q, k, v stacked: each projection is a row slice
    float *qkv[3], *dqkv[3];
    for (int i = 0; i < 3; i++) {
        qkv[i] = zeros(n), dqkv[i] = zeros(n);
        linear_forward(qkv[i], x, in_w + i * cc, in_b + (size_t)i * C, B * T, C, C);
    }
    float *y = zeros(n), *att = zeros((size_t)B * NH * T * T), *out = zeros(n);
    attention_forward(y, att, NULL, NULL, 0.0f, qkv[0], qkv[1], qkv[2], lens, causal, B, T, C, NH);
    linear_forward(out, y, out_w, out_b, B * T, C, C);
    for (int b = 0; b < B; b++) // padded query rows are not compared (see kernels_ref.py)
        memset(out + ((size_t)b * T + lens[b]) * C, 0, (size_t)(T - lens[b]) * C * sizeof(float));
    compare(p, "out", out, ref(p, "out", n), n);

    float *dx = zeros(n), *dy = zeros(n), *d_in_w = zeros(3 * cc), *d_in_b = zeros(3 * (size_t)C);
    float *d_out_w = zeros(cc), *d_out_b = zeros(C), *scratch = zeros(T);
    linear_backward(dy, d_out_w, d_out_b, wout, y, out_w, B * T, C, C);
    attention_backward(dqkv[0], dqkv[1], dqkv[2], dy, att, NULL, NULL, 0.0f, qkv[0], qkv[1], qkv[2],
                       lens, causal, B, T, C, NH, scratch);
    for (int i = 0; i < 3; i++) // x feeds all three projections: dx accumulates
        linear_backward(dx, d_in_w + i * cc, d_in_b + (size_t)i * C, dqkv[i], x, in_w + i * cc,
                        B * T, C, C);
    compare(p, "dx", dx, ref(p, "dx", n), n);
    compare(p, "d_in_w", d_in_w, ref(p, "d_in_w", 3 * cc), 3 * cc);
    compare(p, "d_in_b", d_in_b, ref(p, "d_in_b", 3 * (size_t)C), 3 * (size_t)C);
    compare(p, "d_out_w", d_out_w, ref(p, "d_out_w", cc), cc);
    compare(p, "d_out_b", d_out_b, ref(p, "d_out_b", C), C);
    for (int i = 0; i < 3; i++) free(qkv[i]), free(dqkv[i]);
    free(lens), free(y), free(att), free(out), free(dx), free(dy), free(d_in_w), free(d_in_b);
    free(d_out_w), free(d_out_b), free(scratch);
}

/* ---- layer norm and the row-wise / elementwise kernels -------------------------------------- */

static void test_layernorm(const char *p, int N, int C) {
    size_t n = (size_t)N * C;
    float eps = ref(p, "eps", 1)[0];
    const float *x = ref(p, "x", n), *w = ref(p, "w", C), *b = ref(p, "b", C);
    float *out = zeros(n), *mean = zeros(N), *rstd = zeros(N);
    layernorm_forward(out, mean, rstd, x, w, b, N, C, eps);
    compare(p, "out", out, ref(p, "out", n), n);
    float *dx = zeros(n), *dw = zeros(C), *db = zeros(C);
    layernorm_backward(dx, dw, db, ref(p, "wout", n), x, w, mean, rstd, N, C);
    compare(p, "dx", dx, ref(p, "dx", n), n);
    compare(p, "dw", dw, ref(p, "dw", C), C);
    compare(p, "db", db, ref(p, "db", C), C);
    free(out), free(mean), free(rstd), free(dx), free(dw), free(db);
}

static void test_unary(void) {
    size_t n = 165;
    const float *x = ref("gelu", "x", n);
    float *out = zeros(n), *dx = zeros(n);
    gelu_forward(out, x, n);
    gelu_backward(dx, x, ref("gelu", "wout", n), n);
    compare("gelu", "out", out, ref("gelu", "out", n), n);
    compare("gelu", "dx", dx, ref("gelu", "dx", n), n);
    free(out), free(dx);

    n = 121;
    x = ref("softplus", "x", n);
    out = zeros(n), dx = zeros(n);
    softplus_forward(out, x, n);
    softplus_backward(dx, x, ref("softplus", "wout", n), n);
    compare("softplus", "out", out, ref("softplus", "out", n), n);
    compare("softplus", "dx", dx, ref("softplus", "dx", n), n);
    free(out), free(dx);

    n = 55;
    x = ref("softmax", "x", n);
    out = zeros(n), dx = zeros(n);
    softmax_forward(out, x, 5, 11);
    softmax_backward(dx, out, ref("softmax", "wout", n), 5, 11);
    compare("softmax", "out", out, ref("softmax", "out", n), n);
    compare("softmax", "dx", dx, ref("softmax", "dx", n), n);
    free(out), free(dx);

    n = 72;
    x = ref("l2norm", "x", n);
    float norm[6];
    out = zeros(n), dx = zeros(n);
    l2norm_forward(out, norm, x, 6, 12, 1e-12f);
    l2norm_backward(dx, ref("l2norm", "wout", n), out, norm, 6, 12);
    compare("l2norm", "out", out, ref("l2norm", "out", n), n);
    compare("l2norm", "dx", dx, ref("l2norm", "dx", n), n);
    free(out), free(dx);
}

static void test_crossentropy(void) {
    int N = 6, V = 9;
    size_t n = (size_t)N * V;
    const float *logits = ref("ce", "logits", n), *targets_f = ref("ce", "targets", N);
    int targets[6];
    for (int i = 0; i < N; i++) targets[i] = (int)targets_f[i];
    float *probs = zeros(n), *dlogits = zeros(n);
    float loss = crossentropy_forward(probs, logits, targets, N, V);
    compare("ce", "loss", &loss, ref("ce", "loss", 1), 1);
    crossentropy_backward(dlogits, probs, targets, N, V, 1.0f);
    compare("ce", "dlogits", dlogits, ref("ce", "dlogits", n), n);
    free(probs), free(dlogits);
}

/* ---- Adam ------------------------------------------------------------------------------------ */

static void test_adam(const char *p) {
    const float *cfg = ref(p, "config", 6);
    int steps = (int)cfg[5];
    ParamSet ps;
    char err[256];
    int shape_w[2] = {5, 4}, shape_b[1] = {7};
    params_init(&ps);
    CHECK(params_declare(&ps, "w", 2, shape_w, err, sizeof(err)) == 0);
    CHECK(params_declare(&ps, "b", 1, shape_b, err, sizeof(err)) == 1);
    CHECK(params_alloc(&ps, err, sizeof(err)) == 0);
    size_t n = ps.total;
    memcpy(ps.params, ref(p, "p0", n), n * sizeof(float));
    AdamConfig ac = {cfg[0], cfg[1], cfg[2], cfg[3], cfg[4]};
    const float *grads = ref(p, "grads", (size_t)steps * n);
    const float *after = ref(p, "params", (size_t)steps * n);
    for (int s = 0; s < steps; s++) {
        memcpy(ps.grads, grads + (size_t)s * n, n * sizeof(float));
        adam_step(&ps, &ac);
        char what[32];
        snprintf(what, sizeof(what), "step %d", s + 1);
        compare(p, what, ps.params, after + (size_t)s * n, n);
    }
    compare(p, "m", ps.m, ref(p, "m", n), n);
    compare(p, "v", ps.v, ref(p, "v", n), n);
    CHECK(ps.step == steps);
    params_free(&ps);
}

int main(void) {
    const char *build = getenv("SSNA_BUILD_DIR");
    if (!build) {
        fprintf(stderr, "SSNA_BUILD_DIR is not set: run this test through ctest\n");
        return 1;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/tests/kernels_ref.bin", build);
    if (load_refs(path) != 0) return 1;
    printf("%d reference tensors from %s; |ours - torch| <= %g + %g |torch|\n", nrefs, path,
           REF_ATOL, REF_RTOL);
    test_gru("gru", 4, 10, 8, 1);
    test_gru("gru0", 3, 6, 5, 0);
    test_mha("mha_causal");
    test_mha("mha_causal_pad");
    test_mha("mha_pad");
    test_layernorm("ln", 6, 10);
    test_layernorm("ln12", 5, 32);
    test_unary();
    test_crossentropy();
    test_adam("adam");
    test_adam("adam_wd");
    for (int i = 0; i < nrefs; i++) free(refs[i].data);
    return check_done();
}
