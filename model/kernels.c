/* kernels.c - float32 forward/backward kernels (see kernels.h for the conventions).
 *
 * Matrix products are cblas_sgemm calls on strided views (a head of q is q + h*hs with leading
 * dimension C), so nothing is copied or transposed in memory. Elementwise kernels are plain loops
 * that the compiler vectorises. Reductions that feed a division (layer-norm statistics, softmax
 * sums, cross-entropy log-sum-exp) are accumulated in double: the cost is negligible next to the
 * GEMMs and it keeps the kernels within float rounding of a double-precision reference.
 */
#include "model/kernels.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "model/pool.h"
#include "model/rng.h"

/* ---- linear ---------------------------------------------------------------------------------- */

/* One row-major sgemm, C[M, N] = alpha op(A) op(B) + beta C, split in two over the pool when it
 * splits products (pool.h: then OpenBLAS runs one thread per caller, and the two halves stand in
 * for its two threads): rows of C when M >= N, columns otherwise. Each half is an sgemm of its own
 * over disjoint outputs with the full K, so no sum is split. Products too small to gain stay whole.
 */
typedef struct {
    CBLAS_TRANSPOSE ta, tb;
    int M, N, K, lda, ldb, ldc, by_rows;
    float alpha, beta;
    const float *A, *B;
    float *C;
} SgemmJob;

static void sgemm_range(void *p, size_t begin, size_t end) {
    const SgemmJob *j = p;
    int b = (int)begin, n = (int)(end - begin);
    if (j->by_rows) // rows [b, b + n) of C: rows of op(A)
        cblas_sgemm(CblasRowMajor, j->ta, j->tb, n, j->N, j->K, j->alpha,
                    j->A + (j->ta == CblasNoTrans ? (size_t)b * j->lda : (size_t)b), j->lda, j->B,
                    j->ldb, j->beta, j->C + (size_t)b * j->ldc, j->ldc);
    else // columns [b, b + n) of C: columns of op(B)
        cblas_sgemm(CblasRowMajor, j->ta, j->tb, j->M, n, j->K, j->alpha, j->A, j->lda,
                    j->B + (j->tb == CblasNoTrans ? (size_t)b : (size_t)b * j->ldb), j->ldb,
                    j->beta, j->C + b, j->ldc);
}

#define SGEMM_SPLIT_FLOPS (1 << 21) // below ~2 MFLOP the hand-over costs more than half the work

static void sgemm_pooled(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int M, int N, int K, float alpha,
                         const float *A, int lda, const float *B, int ldb, float beta, float *C,
                         int ldc) {
    SgemmJob j = {ta, tb, M, N, K, lda, ldb, ldc, M >= N, alpha, beta, A, B, C};
    if (!pool_splits_products() || 2.0 * M * N * K < SGEMM_SPLIT_FLOPS) {
        cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    pool_for((size_t)(j.by_rows ? M : N), 8, sgemm_range, &j);
}

void linear_forward(float *out, const float *inp, const float *w, const float *b, int N, int C,
                    int OC) {
    float beta = 0.0f;
    if (b) {
        // out starts as the broadcast bias so the GEMM adds onto it in one pass
        for (int n = 0; n < N; n++) memcpy(out + (size_t)n * OC, b, (size_t)OC * sizeof(float));
        beta = 1.0f;
    }
    // out[N, OC] (+)= inp[N, C] @ w[OC, C]^T
    sgemm_pooled(CblasNoTrans, CblasTrans, N, OC, C, 1.0f, inp, C, w, C, beta, out, OC);
}

void linear_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                     const float *w, int N, int C, int OC) {
    // dinp[N, C] += dout[N, OC] @ w[OC, C]
    if (dinp)
        sgemm_pooled(CblasNoTrans, CblasNoTrans, N, C, OC, 1.0f, dout, OC, w, C, 1.0f, dinp, C);
    // dw[OC, C] += dout[N, OC]^T @ inp[N, C]
    if (dw) sgemm_pooled(CblasTrans, CblasNoTrans, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dw, C);
    if (db) {
        for (int n = 0; n < N; n++) {
            const float *row = dout + (size_t)n * OC;
            for (int o = 0; o < OC; o++) db[o] += row[o];
        }
    }
}

/* ---- layer norm ------------------------------------------------------------------------------ */

void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w,
                       const float *b, int N, int C, float eps) {
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *y = out + (size_t)n * C;
        double sum = 0.0;
        for (int i = 0; i < C; i++) sum += x[i];
        double mu = sum / C;
        // two-pass variance: no cancellation when |mean| >> std
        double ss = 0.0;
        for (int i = 0; i < C; i++) ss += (x[i] - mu) * (x[i] - mu);
        float m = (float)mu;
        float s = (float)(1.0 / sqrt(ss / C + eps));
        for (int i = 0; i < C; i++) y[i] = (x[i] - m) * s * w[i] + b[i];
        if (mean) mean[n] = m;
        if (rstd) rstd[n] = s;
    }
}

void layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *w, const float *mean, const float *rstd, int N, int C) {
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        const float *dy = dout + (size_t)n * C;
        float *dx = dinp + (size_t)n * C;
        float m = mean[n], s = rstd[n];
        // dx = s * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * w
        double g_mean = 0.0, gx_mean = 0.0;
        for (int i = 0; i < C; i++) {
            float xhat = (x[i] - m) * s;
            float g = dy[i] * w[i];
            g_mean += g;
            gx_mean += g * xhat;
            db[i] += dy[i];
            dw[i] += dy[i] * xhat;
        }
        float gm = (float)(g_mean / C), gxm = (float)(gx_mean / C);
        for (int i = 0; i < C; i++) {
            float xhat = (x[i] - m) * s;
            dx[i] += s * (dy[i] * w[i] - gm - xhat * gxm);
        }
    }
}

/* ---- GELU (erf) ------------------------------------------------------------------------------ */

#define INV_SQRT2    0.70710678118654752440f
#define INV_SQRT_2PI 0.39894228040143267794f

#define ELEMENT_GRAIN 16384 // elementwise loops shorter than 2x this stay on one thread

typedef struct {
    float *out;
    const float *inp, *dout;
} GeluJob;

static void gelu_forward_range(void *p, size_t begin, size_t end) {
    GeluJob *j = p;
    for (size_t i = begin; i < end; i++) {
        float x = j->inp[i];
        j->out[i] = 0.5f * x * (1.0f + erff(x * INV_SQRT2));
    }
}

void gelu_forward(float *out, const float *inp, size_t N) {
    GeluJob j = {out, inp, NULL};
    pool_for(N, ELEMENT_GRAIN, gelu_forward_range, &j);
}

static void gelu_backward_range(void *p, size_t begin, size_t end) {
    GeluJob *j = p;
    for (size_t i = begin; i < end; i++) {
        float x = j->inp[i];
        float cdf = 0.5f * (1.0f + erff(x * INV_SQRT2));
        float pdf = INV_SQRT_2PI * expf(-0.5f * x * x);
        j->out[i] += j->dout[i] * (cdf + x * pdf);
    }
}

void gelu_backward(float *dinp, const float *inp, const float *dout, size_t N) {
    GeluJob j = {dinp, inp, dout};
    pool_for(N, ELEMENT_GRAIN, gelu_backward_range, &j);
}

/* ---- softmax --------------------------------------------------------------------------------- */

/* One row, out may alias inp; -inf entries (masked logits) get probability 0. Returns the
 * log-sum-exp of the row, which cross-entropy needs and would otherwise recompute. */
static double softmax_row(float *out, const float *inp, int C) {
    float mx = -INFINITY;
    for (int i = 0; i < C; i++) mx = inp[i] > mx ? inp[i] : mx;
    double sum = 0.0;
    for (int i = 0; i < C; i++) {
        out[i] = expf(inp[i] - mx);
        sum += out[i];
    }
    float inv = (float)(1.0 / sum);
    for (int i = 0; i < C; i++) out[i] *= inv;
    return (double)mx + log(sum);
}

/* dinp += p * (dout - <p, dout>) for one row of length C */
static void softmax_row_backward(float *dinp, const float *p, const float *dout, int C) {
    double dot = 0.0;
    for (int i = 0; i < C; i++) dot += p[i] * dout[i];
    float d = (float)dot;
    for (int i = 0; i < C; i++) dinp[i] += p[i] * (dout[i] - d);
}

void softmax_forward(float *out, const float *inp, int N, int C) {
    for (int n = 0; n < N; n++) softmax_row(out + (size_t)n * C, inp + (size_t)n * C, C);
}

void softmax_backward(float *dinp, const float *out, const float *dout, int N, int C) {
    for (int n = 0; n < N; n++) {
        size_t o = (size_t)n * C;
        softmax_row_backward(dinp + o, out + o, dout + o, C);
    }
}

/* ---- softplus -------------------------------------------------------------------------------- */

void softplus_forward(float *out, const float *inp, size_t N) {
    // max(x, 0) + log1p(e^-|x|): never overflows, exact to float rounding at both tails
    for (size_t i = 0; i < N; i++) {
        float x = inp[i];
        out[i] = fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x)));
    }
}

void softplus_backward(float *dinp, const float *inp, const float *dout, size_t N) {
    for (size_t i = 0; i < N; i++) {
        // sigmoid(x) written so that e^x is never formed for large x
        float e = expf(-fabsf(inp[i]));
        float sig = inp[i] >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
        dinp[i] += dout[i] * sig;
    }
}

/* ---- attention ------------------------------------------------------------------------------- */

#define ATT_ROW_GRAIN 8 // sequences (each NH heads of [T, T] products) per half, at least

/* Valid length of row b: lens[b] clamped to [0, T], or T without lens. */
static int attention_len(const int *lens, int b, int T) {
    if (!lens) return T;
    int L = lens[b];
    return L < 0 ? 0 : (L > T ? T : L);
}

/* The arguments of one attention_forward / attention_backward call, for pool_for over rows b:
 * each row's heads read and write only that row's slices, so rows split without changing a sum.
 * att / att_drop are written by the forward pass and only read by the backward pass (which sets
 * them from its const arguments). */
typedef struct {
    float *out, *att, *att_drop, *dq, *dk, *dv, *scratch;
    const float *q, *k, *v, *dout;
    const uint8_t *keep;
    const int *lens;
    float p;
    int causal, T, C, NH;
} AttentionJob;

static void attention_forward_rows(void *arg, size_t b0, size_t b1) {
    const AttentionJob *job = arg;
    float *out = job->out, *att = job->att, *att_drop = job->att_drop;
    const float *q = job->q, *k = job->k, *v = job->v;
    const uint8_t *keep = job->keep;
    const int *lens = job->lens;
    int causal = job->causal, T = job->T, C = job->C, NH = job->NH, hs = C / NH;
    float p = job->p, scale = 1.0f / sqrtf((float)hs);
    float keep_scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    for (int b = (int)b0; b < (int)b1; b++) {
        int L = attention_len(lens, b, T);
        size_t bo = (size_t)b * T * C;
        // padded query rows produce 0; only the [L, L] block is computed
        if (L < T) memset(out + bo + (size_t)L * C, 0, (size_t)(T - L) * C * sizeof(float));
        for (int h = 0; h < NH; h++) {
            float *a = att + ((size_t)b * NH + h) * T * T; // a: [T, T]
            const float *qh = q + bo + (size_t)h * hs;     // qh, kh, vh: [T, hs], stride C
            const float *kh = k + bo + (size_t)h * hs;
            const float *vh = v + bo + (size_t)h * hs;
            float *oh = out + bo + (size_t)h * hs;
            memset(a, 0, (size_t)T * T * sizeof(float));
            float *ad = keep ? att_drop + ((size_t)b * NH + h) * T * T : NULL;
            if (ad) memset(ad, 0, (size_t)T * T * sizeof(float)); // defined for empty rows too
            if (L == 0) continue;
            // a[:L, :L] = scale * qh[:L] @ kh[:L]^T
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, L, L, hs, scale, qh, C, kh, C,
                        0.0f, a, T);
            for (int i = 0; i < L; i++) {
                float *row = a + (size_t)i * T;
                int nk = causal ? i + 1 : L; // visible keys [0, nk)
                softmax_row(row, row, nk);
                for (int j = nk; j < L; j++) row[j] = 0.0f;
            }
            const float *av = a; // the probabilities that weight v: a, or a after dropout
            if (ad) {
                size_t ho = ((size_t)b * NH + h) * T * T;
                for (int i = 0; i < L; i++)
                    for (int j = 0; j < L; j++) {
                        size_t ij = (size_t)i * T + j;
                        ad[ij] = keep[ho + ij] ? a[ij] * keep_scale : 0.0f;
                    }
                av = ad;
            }
            // oh[:L] = av[:L, :L] @ vh[:L]
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L, hs, L, 1.0f, av, T, vh, C,
                        0.0f, oh, C);
        }
    }
}

void attention_forward(float *out, float *att, float *att_drop, const uint8_t *keep, float p,
                       const float *q, const float *k, const float *v, const int *lens, int causal,
                       int B, int T, int C, int NH) {
    AttentionJob j = {.out = out,
                      .att = att,
                      .att_drop = att_drop,
                      .q = q,
                      .k = k,
                      .v = v,
                      .keep = keep,
                      .lens = lens,
                      .p = p,
                      .causal = causal,
                      .T = T,
                      .C = C,
                      .NH = NH};
    pool_for((size_t)B, ATT_ROW_GRAIN, attention_forward_rows, &j);
}

/* Query rows per GEMM block in the backward pass: the block's [rows, L] gradient of the scores
 * lives on the stack (16 KiB), so rows go through the GEMMs together and nothing is allocated.
 * Only a row longer than the block (T > 4096) falls back to the caller's [T] scratch, one row at
 * a time. */
#define ATT_BWD_BLOCK_FLOATS 4096

static void attention_backward_rows(void *arg, size_t b0, size_t b1) {
    const AttentionJob *job = arg;
    float *dq = job->dq, *dk = job->dk, *dv = job->dv, *scratch = job->scratch;
    const float *dout = job->dout, *att = job->att, *att_drop = job->att_drop;
    const float *q = job->q, *k = job->k, *v = job->v;
    const uint8_t *keep = job->keep;
    const int *lens = job->lens;
    int T = job->T, C = job->C, NH = job->NH, hs = C / NH;
    float p = job->p, scale = 1.0f / sqrtf((float)hs);
    float keep_scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    float block[ATT_BWD_BLOCK_FLOATS];
    for (int b = (int)b0; b < (int)b1; b++) {
        int L = attention_len(lens, b, T);
        if (L == 0) continue;
        int rows_per_block = L <= ATT_BWD_BLOCK_FLOATS ? ATT_BWD_BLOCK_FLOATS / L : 1;
        float *dscore = L <= ATT_BWD_BLOCK_FLOATS ? block : scratch;
        size_t bo = (size_t)b * T * C;
        for (int h = 0; h < NH; h++) {
            size_t ao = ((size_t)b * NH + h) * T * T;
            const float *a = att + ao;                   // a: [T, T]
            const float *av = keep ? att_drop + ao : a;  // what weighted v
            const uint8_t *kp = keep ? keep + ao : NULL; // [T, T]
            size_t ho = bo + (size_t)h * hs;             // head slices: [T, hs], stride C
            // dvh[:L] += av[:L, :L]^T @ douth[:L]
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, L, hs, L, 1.0f, av, T, dout + ho,
                        C, 1.0f, dv + ho, C);
            for (int r0 = 0; r0 < L; r0 += rows_per_block) {
                int R = L - r0 < rows_per_block ? L - r0 : rows_per_block;
                size_t ro = ho + (size_t)r0 * C;
                // dscore[R, L] = douth[r0:r0+R] @ vh[:L]^T  (gradient of the probabilities)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, R, L, hs, 1.0f, dout + ro, C,
                            v + ho, C, 0.0f, dscore, L);
                // back through the dropout, then the softmax; masked keys have p = 0 and so
                // get 0
                for (int i = 0; i < R; i++) {
                    const float *pr = a + (size_t)(r0 + i) * T;
                    float *g = dscore + (size_t)i * L;
                    if (kp)
                        for (int j = 0; j < L; j++)
                            g[j] = kp[(size_t)(r0 + i) * T + j] ? g[j] * keep_scale : 0.0f;
                    double dot = 0.0;
                    for (int j = 0; j < L; j++) dot += pr[j] * g[j];
                    float d = (float)dot;
                    for (int j = 0; j < L; j++) g[j] = scale * pr[j] * (g[j] - d);
                }
                // dqh[r0:r0+R] += dscore @ kh[:L];  dkh[:L] += dscore^T @ qh[r0:r0+R]
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, R, hs, L, 1.0f, dscore, L,
                            k + ho, C, 1.0f, dq + ro, C);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, L, hs, R, 1.0f, dscore, L,
                            q + ro, C, 1.0f, dk + ho, C);
            }
        }
    }
}

void attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *att,
                        const float *att_drop, const uint8_t *keep, float p, const float *q,
                        const float *k, const float *v, const int *lens, int causal, int B, int T,
                        int C, int NH, float *scratch) {
    (void)causal; // the saved probabilities are already 0 at masked keys
    AttentionJob j = {.dq = dq,
                      .dk = dk,
                      .dv = dv,
                      .scratch = scratch,
                      .dout = dout,
                      .att = (float *)att, // read only (attention_backward_rows)
                      .att_drop = (float *)att_drop,
                      .q = q,
                      .k = k,
                      .v = v,
                      .keep = keep,
                      .lens = lens,
                      .p = p,
                      .T = T,
                      .C = C,
                      .NH = NH};
    // rows longer than the stack block share the caller's one scratch row: no split then
    if (T > ATT_BWD_BLOCK_FLOATS)
        attention_backward_rows(&j, 0, (size_t)B);
    else
        pool_for((size_t)B, ATT_ROW_GRAIN, attention_backward_rows, &j);
}

/* ---- dropout --------------------------------------------------------------------------------- */

void dropout_forward(float *out, uint8_t *mask, const float *inp, size_t N, float p,
                     uint64_t *rng) {
    if (p <= 0.0f) {
        if (out != inp) memmove(out, inp, N * sizeof(float));
        memset(mask, 1, N);
        return;
    }
    float keep_scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    for (size_t i = 0; i < N; i++) {
        mask[i] = rng_uniform(rng) >= p;
        out[i] = mask[i] ? inp[i] * keep_scale : 0.0f;
    }
}

void dropout_backward(float *dinp, const float *dout, const uint8_t *mask, size_t N, float p) {
    float keep_scale = p <= 0.0f ? 1.0f : (p < 1.0f ? 1.0f / (1.0f - p) : 0.0f);
    for (size_t i = 0; i < N; i++)
        if (mask[i]) dinp[i] += dout[i] * keep_scale;
}

/* ---- GRU cell ---------------------------------------------------------------------------- */
/* -------------------------------------------------------------------------------- */

static inline float sigmoidf(float x) {
    return 1.0f / (1.0f + expf(-x));
}

/* tanh from one expf: glibc's tanhf goes through expm1f, which made the GRU gates 8% of a
 * training epoch. Absolute error < 1e-7 over [-20, 20] (the 1 - e cancellation near 0 is absolute,
 * not relative, and tanh'(0) = 1 keeps it there); test_kernels_torch holds the cell to 1e-5. */
static inline float tanh_expf(float x) {
    float e = expf(-2.0f * fabsf(x));
    return copysignf((1.0f - e) / (1.0f + e), x);
}

#define ROW_GRAIN 64 // row loops (of a few hundred floats each) shorter than 2x this stay whole

/* The pointwise part of a GRU cell over rows [begin, end): forward reads gi/gh (the two input
 * products) and writes h_out and cache; backward reads cache and dh_out and writes the product
 * gradients (into gi/gh) and dh. */
typedef struct {
    float *h_out, *cache; // forward outputs
    const float *dh_out;  // backward input
    float *dh;            // backward: += direct-path gradient (or NULL)
    const float *cache_in;
    float *gi, *gh;
    const float *h;
    int H;
} GruJob;

static void gru_gates_forward(void *p, size_t begin, size_t end) {
    GruJob *job = p;
    int H = job->H, G = 3 * H;
    const float *h = job->h;
    for (size_t n = begin; n < end; n++) {
        const float *gin = job->gi + n * G, *ghn = job->gh + n * G;
        float *c = job->cache + n * 4 * H; // c: [r | z | n | W_hn h + b_hn], each [H]
        float *ho = job->h_out + n * H;
        for (int j = 0; j < H; j++) {
            float r = sigmoidf(gin[j] + ghn[j]);
            float z = sigmoidf(gin[H + j] + ghn[H + j]);
            float hn = ghn[2 * H + j];
            float nn = tanh_expf(gin[2 * H + j] + r * hn);
            float hp = h ? h[n * H + j] : 0.0f;
            c[j] = r;
            c[H + j] = z;
            c[2 * H + j] = nn;
            c[3 * H + j] = hn;
            ho[j] = (1.0f - z) * nn + z * hp;
        }
    }
}

static void gru_gates_backward(void *p, size_t begin, size_t end) {
    GruJob *job = p;
    int H = job->H, G = 3 * H;
    const float *h = job->h;
    for (size_t n = begin; n < end; n++) {
        const float *c = job->cache_in + n * 4 * H;
        const float *dho = job->dh_out + n * H;
        float *gi = job->gi + n * G, *gh = job->gh + n * G;
        for (int j = 0; j < H; j++) {
            float r = c[j], z = c[H + j], nn = c[2 * H + j], hn = c[3 * H + j];
            float hp = h ? h[n * H + j] : 0.0f;
            float dn_pre = dho[j] * (1.0f - z) * (1.0f - nn * nn);
            float dz_pre = dho[j] * (hp - nn) * z * (1.0f - z);
            float dr_pre = dn_pre * hn * r * (1.0f - r);
            gi[j] = gh[j] = dr_pre;
            gi[H + j] = gh[H + j] = dz_pre;
            gi[2 * H + j] = dn_pre;
            gh[2 * H + j] = dn_pre * r;
            if (job->dh) job->dh[n * H + j] += dho[j] * z; // direct path h' = ... + z h
        }
    }
}

void gru_cell_forward(float *h_out, float *cache, const float *x, const float *h, const float *w_ih,
                      const float *w_hh, const float *b_ih, const float *b_hh, int B, int IN, int H,
                      float *scratch) {
    int G = 3 * H;
    float *gi = scratch;                 // gi: [B, 3H] = x W_ih^T + b_ih
    float *gh = scratch + (size_t)B * G; // gh: [B, 3H] = h W_hh^T + b_hh
    linear_forward(gi, x, w_ih, b_ih, B, IN, G);
    if (h) {
        linear_forward(gh, h, w_hh, b_hh, B, H, G);
    } else {
        for (int n = 0; n < B; n++) memcpy(gh + (size_t)n * G, b_hh, (size_t)G * sizeof(float));
    }
    GruJob job = {h_out, cache, NULL, NULL, NULL, gi, gh, h, H};
    pool_for((size_t)B, ROW_GRAIN, gru_gates_forward, &job);
}

void gru_cell_backward(float *dx, float *dh, float *dw_ih, float *dw_hh, float *db_ih, float *db_hh,
                       const float *dh_out, const float *cache, const float *x, const float *h,
                       const float *w_ih, const float *w_hh, int B, int IN, int H, float *scratch) {
    int G = 3 * H;
    float *dgi = scratch;                 // dgi: [B, 3H] gradient of x W_ih^T + b_ih
    float *dgh = scratch + (size_t)B * G; // dgh: [B, 3H] gradient of h W_hh^T + b_hh
    GruJob job = {NULL, NULL, dh_out, dh, cache, dgi, dgh, h, H};
    pool_for((size_t)B, ROW_GRAIN, gru_gates_backward, &job);
    linear_backward(dx, dw_ih, db_ih, dgi, x, w_ih, B, IN, G);
    if (h) {
        linear_backward(dh, dw_hh, db_hh, dgh, h, w_hh, B, H, G);
    } else {
        // h = 0: W_hh gets no gradient, b_hh still does
        linear_backward(NULL, NULL, db_hh, dgh, NULL, w_hh, B, H, G);
    }
}

/* ---- embedding ------------------------------------------------------------------------------- */

void embedding_forward(float *out, const int *ids, const float *table, int N, int C) {
    for (int n = 0; n < N; n++)
        memcpy(out + (size_t)n * C, table + (size_t)ids[n] * C, (size_t)C * sizeof(float));
}

void embedding_backward(float *dtable, const float *dout, const int *ids, int N, int C) {
    for (int n = 0; n < N; n++) {
        float *row = dtable + (size_t)ids[n] * C;
        const float *d = dout + (size_t)n * C;
        for (int c = 0; c < C; c++) row[c] += d[c];
    }
}

/* ---- L2 normalisation ------------------------------------------------------------------------ */

void l2norm_forward(float *out, float *norm, const float *inp, int N, int C, float eps) {
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *y = out + (size_t)n * C;
        double ss = 0.0;
        for (int c = 0; c < C; c++) ss += (double)x[c] * x[c];
        float nr = (float)sqrt(ss);
        nr = nr > eps ? nr : eps;
        float inv = 1.0f / nr;
        for (int c = 0; c < C; c++) y[c] = x[c] * inv;
        norm[n] = nr;
    }
}

void l2norm_backward(float *dinp, const float *dout, const float *out, const float *norm, int N,
                     int C) {
    for (int n = 0; n < N; n++) {
        const float *y = out + (size_t)n * C;
        const float *dy = dout + (size_t)n * C;
        float *dx = dinp + (size_t)n * C;
        double yy = 0.0, ydy = 0.0;
        for (int c = 0; c < C; c++) {
            yy += (double)y[c] * y[c];
            ydy += (double)y[c] * dy[c];
        }
        // A clamped norm (||x|| < eps) is a constant, so only the 1/eps scaling flows back. The
        // clamp shows in the output: ||y|| = ||x|| / eps < 1 there, and 1 up to rounding
        // otherwise.
        float proj = yy < 1.0 - 1e-4 ? 0.0f : (float)ydy;
        float inv = 1.0f / norm[n];
        for (int c = 0; c < C; c++) dx[c] += (dy[c] - y[c] * proj) * inv;
    }
}

void cosine_scores(float *out, const float *a, const float *b, int N, int M, int C, float scale) {
    // out[N, M] = scale * a[N, C] @ b[M, C]^T
    sgemm_pooled(CblasNoTrans, CblasTrans, N, M, C, scale, a, C, b, C, 0.0f, out, M);
}

/* ---- cross-entropy --------------------------------------------------------------------------- */

#define CE_ROW_GRAIN(V) ((size_t)(V) >= 4096 ? 1 : 4096 / (size_t)(V)) // >= ~4k logits a half

/* Rows [begin, end) of the cross-entropy: forward adds its rows' losses into sum[half], backward
 * writes its rows of dlogits. Each half owns its slot, so the halves never share a sum. */
typedef struct {
    float *probs, *dlogits;
    const float *logits;
    const int *targets;
    int V;
    float scale;
    double sum[2];
    int counted[2];
} CrossEntropyJob;

static void crossentropy_forward_rows(void *arg, size_t begin, size_t end) {
    CrossEntropyJob *j = arg;
    int V = j->V, slot = begin > 0; // pool_for's second half starts past 0, the first at 0
    for (size_t n = begin; n < end; n++) {
        const float *z = j->logits + n * V;
        float *p = j->probs + n * V;
        int t = j->targets[n];
        float zt = t >= 0 ? z[t] : 0.0f; // read before probs may overwrite it
        // -log p[t] as log-sum-exp - z[t]: exact even where p[t] underflows to 0
        double lse = softmax_row(p, z, V);
        if (t < 0) continue;
        j->sum[slot] += lse - zt;
        j->counted[slot]++;
    }
}

float crossentropy_forward(float *probs, const float *logits, const int *targets, int N, int V) {
    CrossEntropyJob j = {.probs = probs, .logits = logits, .targets = targets, .V = V};
    pool_for((size_t)N, CE_ROW_GRAIN(V), crossentropy_forward_rows, &j);
    int counted = j.counted[0] + j.counted[1];
    return counted ? (float)((j.sum[0] + j.sum[1]) / counted) : 0.0f;
}

static void crossentropy_backward_rows(void *arg, size_t begin, size_t end) {
    CrossEntropyJob *j = arg;
    int V = j->V;
    float inv = j->scale;
    for (size_t n = begin; n < end; n++) {
        float *d = j->dlogits + n * V;
        const float *p = j->probs + n * V;
        if (j->targets[n] < 0) {
            memset(d, 0, (size_t)V * sizeof(float));
            continue;
        }
        for (int i = 0; i < V; i++) d[i] = p[i] * inv;
        d[j->targets[n]] -= inv;
    }
}

void crossentropy_backward(float *dlogits, const float *probs, const int *targets, int N, int V,
                           float scale) {
    int counted = 0;
    for (int n = 0; n < N; n++) counted += targets[n] >= 0;
    CrossEntropyJob j = {.probs = (float *)probs,
                         .dlogits = dlogits,
                         .targets = targets,
                         .V = V,
                         .scale = counted ? scale / (float)counted : 0.0f};
    pool_for((size_t)N, CE_ROW_GRAIN(V), crossentropy_backward_rows, &j);
}
