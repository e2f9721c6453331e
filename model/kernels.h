/* kernels.h - the numeric core: float32 layer kernels as _forward/_backward pairs.
 *
 * Conventions (as in llm.c):
 * - Flat row-major float arrays; shapes in the comment beside each function.
 * - Linear weights are stored PyTorch-style, w: [OC, C] (out = x w^T + b), so Hugging Face and
 *   torch checkpoints load without transposes.
 * - Every _backward ACCUMULATES (+=) into parameter gradients and into input gradients, so a
 *   tensor used twice gets both contributions; callers zero gradients once per step.
 * - Matrix products go through cblas_sgemm. Nothing here allocates except where noted.
 */
#ifndef SSNA_MODEL_KERNELS_H
#define SSNA_MODEL_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* ---- linear: out = inp @ w^T (+ b) --------------------------------------------------------- */
// out: [N, OC], inp: [N, C], w: [OC, C], b: [OC] or NULL (no bias)
void linear_forward(float *out, const float *inp, const float *w, const float *b, int N, int C,
                    int OC);
// dinp: [N, C] or NULL, dw: [OC, C] or NULL, db: [OC] or NULL; dout: [N, OC]
void linear_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                     const float *w, int N, int C, int OC);

/* ---- layer norm over the last dimension --------------------------------------------------- */
// out, inp: [N, C], w, b: [C], mean, rstd: [N] (saved for backward; may be NULL at inference)
void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w,
                       const float *b, int N, int C, float eps);
// dinp: [N, C], dw, db: [C]
void layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *w, const float *mean, const float *rstd, int N, int C);

/* ---- GELU, erf form (BERT): 0.5 x (1 + erf(x / sqrt 2)) ------------------------------------ */
// out, inp: [N]  (out may alias inp)
void gelu_forward(float *out, const float *inp, size_t N);
// dinp, inp, dout: [N]
void gelu_backward(float *dinp, const float *inp, const float *dout, size_t N);

/* ---- softmax over the last dimension ------------------------------------------------------- */
// out, inp: [N, C]  (out may alias inp)
void softmax_forward(float *out, const float *inp, int N, int C);
// dinp: [N, C]; uses the forward output
void softmax_backward(float *dinp, const float *out, const float *dout, int N, int C);

/* ---- softplus: log(1 + e^x), stable ------------------------------------------------------- */
// out, inp: [N]
void softplus_forward(float *out, const float *inp, size_t N);
void softplus_backward(float *dinp, const float *inp, const float *dout, size_t N);

/* ---- multi-head self-attention core (projections are separate linear_ calls) --------------- */
// q, k, v, out: [B, T, C] with C = NH * hs; heads are contiguous hs-slices of C.
// att: [B, NH, T, T] softmax probabilities, saved for backward.
// lens: [B] valid length of each row (right padding), or NULL for all T. Key j is visible to
// query i when j < lens[b] and (causal ? j <= i : 1). Rows of queries at i >= lens[b] output 0.
// scale = 1/sqrt(hs).
// Attention dropout (RecBole's attn_dropout_prob): keep: [B, NH, T, T] flags (1 kept) for the
// probabilities, inverted with probability p; att_drop: [B, NH, T, T] receives the dropped
// probabilities, which multiply v (saved for backward). keep = NULL: no dropout, att_drop unused.
void attention_forward(float *out, float *att, float *att_drop, const uint8_t *keep, float p,
                       const float *q, const float *k, const float *v, const int *lens, int causal,
                       int B, int T, int C, int NH);
// dq, dk, dv: [B, T, C] (accumulated); att, att_drop, keep, p: as the forward pass had them;
// scratch: [T] floats, used only when T > 4096 (shorter rows go through the GEMMs in blocks held
// on the stack)
void attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *att,
                        const float *att_drop, const uint8_t *keep, float p, const float *q,
                        const float *k, const float *v, const int *lens, int causal, int B, int T,
                        int C, int NH, float *scratch);

/* ---- dropout (inverted: kept values scaled by 1/(1-p)) ------------------------------------- */
// out, inp: [N]; mask: [N] bytes, 1 = kept (saved for backward). p = 0 copies and sets mask to 1.
// rng: state of the seeded generator in rng.h (advanced).
void dropout_forward(float *out, uint8_t *mask, const float *inp, size_t N, float p, uint64_t *rng);
void dropout_backward(float *dinp, const float *dout, const uint8_t *mask, size_t N, float p);

/* ---- GRU cell, PyTorch layout and equations ------------------------------------------------ */
// (The input size is IN, not I: <complex.h>, which <cblas.h> includes, defines I as a macro.)
// Gates ordered (r, z, n) in rows of w_ih: [3H, IN], w_hh: [3H, H], b_ih, b_hh: [3H].
//   r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
//   z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
//   n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
//   h' = (1 - z) * n + z * h
// x: [B, IN], h: [B, H] (NULL = zeros), h_out: [B, H]
// cache: [B, 4H] saved for backward: r, z, n, (W_hn h + b_hn)
// scratch: [B, 6H] floats (gate pre-activations)
void gru_cell_forward(float *h_out, float *cache, const float *x, const float *h, const float *w_ih,
                      const float *w_hh, const float *b_ih, const float *b_hh, int B, int IN, int H,
                      float *scratch);
// dx: [B, IN] or NULL, dh: [B, H] or NULL (both accumulated); dw_*, db_* accumulated.
// With h = NULL (h0 = 0) dw_hh gets nothing and db_hh still does.
// scratch: [B, 6H] floats
void gru_cell_backward(float *dx, float *dh, float *dw_ih, float *dw_hh, float *db_ih, float *db_hh,
                       const float *dh_out, const float *cache, const float *x, const float *h,
                       const float *w_ih, const float *w_hh, int B, int IN, int H, float *scratch);

/* ---- embedding gather / scatter-add ------------------------------------------------------ */
// out: [N, C], ids: [N] rows of table: [V, C]
void embedding_forward(float *out, const int *ids, const float *table, int N, int C);
// dtable: [V, C] accumulated
void embedding_backward(float *dtable, const float *dout, const int *ids, int N, int C);

/* ---- L2 normalisation (cosine = dot of normalised rows) ------------------------------------ */
// out, inp: [N, C]; norm: [N] saved (||x|| clamped below by eps)
void l2norm_forward(float *out, float *norm, const float *inp, int N, int C, float eps);
// The clamp is read back from out (||out|| < 1 only where ||x|| < eps): there the norm is a
// constant and only the 1/eps scaling flows back.
void l2norm_backward(float *dinp, const float *dout, const float *out, const float *norm, int N,
                     int C);
// cosine similarity of every row of a with every row of b: out [N, M] = norm(a) norm(b)^T * scale
// a: [N, C], b: [M, C] already L2-normalised by l2norm_forward
void cosine_scores(float *out, const float *a, const float *b, int N, int M, int C, float scale);

/* ---- softmax cross-entropy ------------------------------------------------------------------ */
// logits, probs: [N, V] (probs may alias logits); targets: [N] (a target < 0 means "no loss on
// this row");
// returns the mean loss over rows with a target; probs saved for backward.
float crossentropy_forward(float *probs, const float *logits, const int *targets, int N, int V);
// dlogits: [N, V] (overwritten, not accumulated) = scale * (probs - onehot) / (rows with a target)
// (scale: the gradient of the loss w.r.t. what the logits were computed from, e.g. 1 / tau)
void crossentropy_backward(float *dlogits, const float *probs, const int *targets, int N, int V,
                           float scale);

#endif
