/* encoder_kernels.c - the elementwise parts of the encoder's forward pass, written so GCC
 * vectorises them at -O2.
 *
 * Why not kernels.h: the training kernels call erff/expf per element and accumulate layer-norm
 * statistics in double, which is right for gradients but left GELU, LayerNorm and softmax taking
 * most of the encoder's time (about 60 ns per GELU element against under 1 ns here). Inference
 * needs neither saved statistics nor double sums over 384..1024 values. GCC's default -O2 cost
 * model only vectorises loops that need no scalar epilogue, so the hot loops work on fixed
 * blocks of ENC_LANES floats with a scalar tail.
 */
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "model/encoder_internal.h"

#define ENC_LANES 16

/* erf(x) for |x| <= 4 (beyond, +-1 to float precision) as the odd/even rational approximation
 * XLA and Eigen use for float (max error a few ulp): only multiplies, adds and one divide. */
static inline float erf_rational(float x) {
    x = x > 4.0f ? 4.0f : x;
    x = x < -4.0f ? -4.0f : x;
    float x2 = x * x;
    float p = x2 * -2.72614225801306e-10f + 2.77068142495902e-08f;
    p = x2 * p + -2.10102402082508e-06f;
    p = x2 * p + -5.69250639462346e-05f;
    p = x2 * p + -7.34990630326855e-04f;
    p = x2 * p + -2.95459980854025e-03f;
    p = x2 * p + -1.60960333262415e-02f;
    p = x * p;
    float q = x2 * -1.45660718464996e-05f + -2.13374055278905e-04f;
    q = x2 * q + -1.68282697438203e-03f;
    q = x2 * q + -7.37332916720468e-03f;
    q = x2 * q + -1.42647390514189e-02f;
    return p / q;
}

static inline float gelu_one(float x) {
    return 0.5f * x * (1.0f + erf_rational(x * 0.70710678118654752440f));
}

// x: [n], in place
void encoder_gelu(float *x, size_t n) {
    size_t i = 0;
    for (; i + ENC_LANES <= n; i += ENC_LANES)
        for (int k = 0; k < ENC_LANES; k++) x[i + k] = gelu_one(x[i + k]);
    for (; i < n; i++) x[i] = gelu_one(x[i]);
}

/* e^x for x <= 0 (softmax after subtracting the row maximum): 2^n e^r with |r| <= ln2/2 and a
 * degree-6 Taylor polynomial (relative error < 2e-7); 2^n is built in the exponent bits. */
static inline float exp_nonpositive(float x) {
    x = x < -87.0f ? -87.0f : x;
    // round x / ln2 to the nearest integer with the 1.5 * 2^23 trick (no libm call)
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693145751953125f - n * 1.42860682030941723e-06f;
    float p = 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    union {
        int32_t i;
        float f;
    } scale = {.i = ((int32_t)n + 127) << 23};
    return p * scale.f;
}

/* row[0..n) = softmax(row), in place. */
static void softmax_row_fast(float *row, int n) {
    float mx = row[0];
    for (int i = 1; i < n; i++) mx = row[i] > mx ? row[i] : mx;
    float acc[ENC_LANES] = {0};
    int i = 0;
    for (; i + ENC_LANES <= n; i += ENC_LANES)
        for (int k = 0; k < ENC_LANES; k++) {
            row[i + k] = exp_nonpositive(row[i + k] - mx);
            acc[k] += row[i + k];
        }
    float sum = 0.0f;
    for (; i < n; i++) {
        row[i] = exp_nonpositive(row[i] - mx);
        sum += row[i];
    }
    for (int k = 0; k < ENC_LANES; k++) sum += acc[k];
    float inv = 1.0f / sum;
    for (i = 0; i < n; i++) row[i] *= inv;
}

// out: [L, C]; q, k, v: [L, C] rows ld apart, C = NH * hs, heads contiguous hs-slices; att: [L, L]
void encoder_attention(float *out, float *att, const float *q, const float *k, const float *v,
                       int ld, int L, int C, int NH) {
    int hs = C / NH;
    float scale = 1.0f / sqrtf((float)hs);
    for (int h = 0; h < NH; h++) {
        // att = scale * q_h k_h^T: [L, L]; every key is visible (one unpadded sequence)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, L, L, hs, scale, q + h * hs, ld,
                    k + h * hs, ld, 0.0f, att, L);
        for (int i = 0; i < L; i++) softmax_row_fast(att + (size_t)i * L, L);
        // out_h = att v_h: [L, hs]
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L, hs, L, 1.0f, att, L, v + h * hs,
                    ld, 0.0f, out + h * hs, C);
    }
}

// out: [C]; q: [C]; k, v: [L, C] rows ld apart; att: [L]. Only the first token's query: the
// last block computed, when only first-token states are returned (ENCODER_POOL_CLS).
void encoder_attention_first(float *out, float *att, const float *q, const float *k, const float *v,
                             int ld, int L, int C, int NH) {
    int hs = C / NH;
    float scale = 1.0f / sqrtf((float)hs);
    for (int h = 0; h < NH; h++) {
        // att = scale * k_h q_h: [L]
        cblas_sgemv(CblasRowMajor, CblasNoTrans, L, hs, scale, k + h * hs, ld, q + h * hs, 1, 0.0f,
                    att, 1);
        softmax_row_fast(att, L);
        // out_h = v_h^T att: [hs]
        cblas_sgemv(CblasRowMajor, CblasTrans, L, hs, 1.0f, v + h * hs, ld, att, 1, 0.0f,
                    out + h * hs, 1);
    }
}

/* Sum of x[0..n) with ENC_LANES independent partial sums (vectorisable without reassociation). */
static float row_total(const float *x, int n) {
    float acc[ENC_LANES] = {0}, s = 0.0f;
    int i = 0;
    for (; i + ENC_LANES <= n; i += ENC_LANES)
        for (int k = 0; k < ENC_LANES; k++) acc[k] += x[i + k];
    for (; i < n; i++) s += x[i];
    for (int k = 0; k < ENC_LANES; k++) s += acc[k];
    return s;
}

/* Sum of (x[i] - mean)^2 over i < n, the same way. */
static float row_sq_dev(const float *x, int n, float mean) {
    float acc[ENC_LANES] = {0}, s = 0.0f;
    int i = 0;
    for (; i + ENC_LANES <= n; i += ENC_LANES)
        for (int k = 0; k < ENC_LANES; k++) {
            float d = x[i + k] - mean;
            acc[k] += d * d;
        }
    for (; i < n; i++) s += (x[i] - mean) * (x[i] - mean);
    for (int k = 0; k < ENC_LANES; k++) s += acc[k];
    return s;
}

// x: [N, C] in place: x = LayerNorm(x + r) * w + b; r: [N, C] or NULL; w, b: [C]
void encoder_add_layernorm(float *x, const float *r, const float *w, const float *b, int N, int C,
                           float eps) {
    for (int n = 0; n < N; n++) {
        float *row = x + (size_t)n * C;
        if (r)
            for (int i = 0; i < C; i++) row[i] += r[(size_t)n * C + i];
        float mean = row_total(row, C) / (float)C;
        // two passes: no cancellation when |mean| >> std
        float rstd = 1.0f / sqrtf(row_sq_dev(row, C, mean) / (float)C + eps);
        for (int i = 0; i < C; i++) row[i] = (row[i] - mean) * rstd * w[i] + b[i];
    }
}
