/* ssna_internal.h - what the three files of the SSNA model (ssna.c: batch, loss, API;
 * ssna_item.c: item tower; ssna_user.c: SASRec user tower) share. Not a public interface. */
#ifndef SSNA_MODEL_SSNA_INTERNAL_H
#define SSNA_MODEL_SSNA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "model/ssna.h"

#define SSNA_MAX_LAYERS 32
#define SSNA_MAX_BLOCKS 8
#define SSNA_MAX_TMLP   64

/* ---- parameters: typed pointers into the model's blobs (llm.c's ParameterTensors) ---- */

/* One tensor's values and gradient. NULL for a tensor the model's variant does not have. */
typedef struct {
    float *val, *grad;
} SsnaTensor;

/* "prefix.w" + "prefix.b": a linear layer (w [out, in], b [out]) or a layer norm (w, b [d]). */
typedef struct {
    SsnaTensor w, b;
} SsnaPair;

/* Adapter a of the item tower: expert weights [nE * d, H], biases [nE, H], gate and noise
 * projections [nE, H]. */
typedef struct {
    SsnaTensor w, b, gate, noise;
} SsnaAdapterParams;

/* One SASRec block: qkv [3d, d], attn_out [d, d], ln1 [d], ffn1 [inner, d], ffn2 [d, inner],
 * ln2 [d]. */
typedef struct {
    SsnaPair qkv, attn_out, ln1, ffn1, ffn2, ln2;
} SsnaBlockParams;

struct SsnaParams {
    /* item tower */
    SsnaAdapterParams adapter[SSNA_MAX_LAYERS];
    SsnaTensor gru_w_ih, gru_w_hh, gru_b_ih, gru_b_hh; /* [3d, d], [3d, d], [3d], [3d] */
    SsnaTensor integrate_w;                            /* [layers] (weighted) */
    SsnaPair tmlp[SSNA_MAX_TMLP];                      /* [d, H or d], [d] */
    SsnaTensor item_emb;                               /* [n_items, d] (ID) */
    /* user tower */
    SsnaTensor pos_emb; /* [max_len, d] */
    SsnaPair emb_ln;    /* [d] */
    SsnaBlockParams block[SSNA_MAX_BLOCKS];
};

/* A growable scratch buffer: grows, never shrinks, freed with the model. */
typedef struct {
    void *p;
    size_t cap;
} SsnaBuf;

/* Item tower activations for U items (one chunk), kept for backward. */
typedef struct {
    int U, train;
    SsnaBuf ids;                  /* int [U] */
    SsnaBuf x, xd, keep;          /* [a, U, H] states, dropped-out states, keep flags */
    SsnaBuf e;                    /* [a, U, nE * d] expert outputs */
    SsnaBuf g, s, eps, p;         /* [a, U, nE] gate logits, noise pre-softplus, N(0,1), softmax */
    SsnaBuf z;                    /* [a, U, d] adapter outputs */
    SsnaBuf h, cache, gscratch;   /* GRU: [a, U, d] states, [a, U, 4d] cache, [U, 6d] scratch */
    SsnaBuf mlp_pre, mlp_act;     /* tmlp: [L, U, d] linear outputs, GELU outputs */
    SsnaBuf dz, dh, de, dp, dtmp; /* backward scratch */
} SsnaItemWork;

/* One SASRec block's activations over N packed positions. */
typedef struct {
    SsnaBuf qkv, ctx, att, ao, keep_a, r1, h1, m1, s1, f1, g1, f2, keep_f, r2, h2, m2, s2;
    SsnaBuf att_keep, att_drop; /* attention dropout: [B, NH, T, T] flags, dropped probabilities */
} SsnaBlockWork;

/* User tower activations for N packed positions of B rows (T = longest row). */
typedef struct {
    int B, N, T, train;
    SsnaBuf offsets, lens;                   /* int [B + 1], int [B] */
    SsnaBuf x0, ln0, ln0_mean, ln0_rstd, h0; /* [N, d] / [N] */
    SsnaBuf keep0;                           /* [N, d] */
    SsnaBlockWork blk[SSNA_MAX_BLOCKS];
    SsnaBuf pad_q, pad_k, pad_v, pad_o;       /* [B, T, d] attention layout */
    SsnaBuf dx, dy, dqkv, dinner, dpad, dscr; /* backward scratch */
} SsnaUserWork;

struct SsnaWork {
    SsnaItemWork item;
    SsnaUserWork user;
    /* batch bookkeeping of the last training forward */
    int U, N, Ut;
    SsnaBuf uniq, all_ids, in_local, tgt_col, tgt_local, mark;
    SsnaBuf v, vin, vt, vtn, vt_norm, vt_count, u, un, u_norm, logits, probs; /* floats */
    SsnaBuf dv, dvin, dvt, dvtn, du, dun, dlogits;
    SsnaBuf out_rows;
};
/* Inference calls (ssna_item_vectors, ssna_user_vectors) reuse these buffers: they invalidate a
 * pending training forward, so call ssna_backward before evaluating. */

/* Reserve n bytes in b; NULL on allocation failure. */
void *ssna_buf(SsnaBuf *b, size_t n);
#define SSNA_FLOATS(buf, n) ((float *)ssna_buf(&(buf), (size_t)(n) * sizeof(float)))
#define SSNA_INTS(buf, n)   ((int *)ssna_buf(&(buf), (size_t)(n) * sizeof(int)))
#define SSNA_BYTES(buf, n)  ((uint8_t *)ssna_buf(&(buf), (size_t)(n)))
void ssna_buf_free(SsnaBuf *b);

/* Training randomness through m->noise or m->rng; 0 or -1. */
int ssna_draw_mask(SsnaModel *m, uint8_t *keep, size_t n, float p);
int ssna_draw_normal(SsnaModel *m, float *x, size_t n);
/* Inverted dropout with given keep flags: out = keep ? inp / (1 - p) : 0 (out may alias inp). */
void ssna_apply_mask(float *out, const float *inp, const uint8_t *keep, size_t n, float p);

/* Parameters of each tower (called by ssna_create before params_alloc) and their init. */
int ssna_item_declare(SsnaModel *m, char *err, size_t errlen);
void ssna_item_init(SsnaModel *m, uint64_t *rng);
int ssna_user_declare(SsnaModel *m, char *err, size_t errlen);
void ssna_user_init(SsnaModel *m, uint64_t *rng);

/* Item tower: v: [U, d] for item ids[0..U). train = dropout and gate noise on. */
int ssna_item_forward(SsnaModel *m, const float *states, const int *ids, int U, int train, float *v,
                      char *err, size_t errlen);
/* dv: [U, d] gradient of the last ssna_item_forward's output (train mode). */
int ssna_item_backward(SsnaModel *m, const float *dv);

/* User tower over packed rows: vin: [N, d] item vectors of the positions, out: [N, d]; or, with
 * last_only (inference only), out: [B, d], the last position of each row, computed without the
 * last block's work for the other positions (what serving needs). */
int ssna_user_forward(SsnaModel *m, int B, const int *offsets, const float *vin, int train,
                      int last_only, float *out, char *err, size_t errlen);
/* dout: [N, d]; dvin: [N, d] accumulated. */
int ssna_user_backward(SsnaModel *m, const float *dout, float *dvin);

#endif
