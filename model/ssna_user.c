/* ssna_user.c - the user tower: RecBole's SASRec (post-LN, learned positions, causal attention
 * with key padding) over PACKED rows; forward and backward.
 *
 * Every per-position layer (linears, layer norms, GELU, dropout) runs on the N real positions
 * of the batch, never on padding; only the attention core sees the [B, T, d] layout, with T the
 * batch's longest row, so a batch of short sequences costs what its positions cost.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model/errmsg.h"
#include "model/kernels.h"
#include "model/rng.h"
#include "model/ssna_internal.h"

static int declare(SsnaModel *m, const char *name, int ndim, int d0, int d1, char *err,
                   size_t errlen) {
    int shape[2] = {d0, d1};
    return params_declare(&m->ps, name, ndim, shape, err, errlen) < 0 ? -1 : 0;
}

/* name = prefix + suffix in a PARAM_NAME_MAX buffer; -1 (with a message) if it does not fit. */
static int suffixed(char name[PARAM_NAME_MAX], const char *prefix, const char *suffix, char *err,
                    size_t errlen) {
    if (snprintf(name, PARAM_NAME_MAX, "%s%s", prefix, suffix) < PARAM_NAME_MAX) return 0;
    return errmsg_fail(err, errlen, "parameter name %s%s longer than %d bytes", prefix, suffix,
                       PARAM_NAME_MAX - 1);
}

/* "prefix.w" (shape w0, or [w0, w1] when w1 > 0) + "prefix.b" [b]. */
static int declare_wb(SsnaModel *m, const char *prefix, int w0, int w1, int b, char *err,
                      size_t errlen) {
    char w[PARAM_NAME_MAX], bn[PARAM_NAME_MAX];
    if (suffixed(w, prefix, ".w", err, errlen) || suffixed(bn, prefix, ".b", err, errlen))
        return -1;
    return declare(m, w, w1 > 0 ? 2 : 1, w0, w1, err, errlen) |
           declare(m, bn, 1, b, 0, err, errlen);
}

/* A linear layer "prefix.w" [out, in] + "prefix.b" [out]. */
static int declare_linear(SsnaModel *m, const char *prefix, int out, int in, char *err,
                          size_t errlen) {
    return declare_wb(m, prefix, out, in, out, err, errlen);
}

/* A layer norm "prefix.w" [d] + "prefix.b" [d]. */
static int declare_norm(SsnaModel *m, const char *prefix, int d, char *err, size_t errlen) {
    return declare_wb(m, prefix, d, 0, d, err, errlen);
}

int ssna_user_declare(SsnaModel *m, char *err, size_t errlen) {
    const SsnaConfig *c = &m->cfg;
    char name[PARAM_NAME_MAX];
    int rc = declare(m, "pos_emb", 2, c->max_len, c->d, err, errlen);
    rc |= declare_norm(m, "emb_ln", c->d, err, errlen);
    for (int l = 0; l < c->n_blocks; l++) {
        /* Q, K and V as one [3d, d] linear: same maths as three, one sgemm */
        snprintf(name, sizeof name, "block.%d.qkv", l);
        rc |= declare_linear(m, name, 3 * c->d, c->d, err, errlen);
        snprintf(name, sizeof name, "block.%d.attn_out", l);
        rc |= declare_linear(m, name, c->d, c->d, err, errlen);
        snprintf(name, sizeof name, "block.%d.ln1", l);
        rc |= declare_norm(m, name, c->d, err, errlen);
        snprintf(name, sizeof name, "block.%d.ffn1", l);
        rc |= declare_linear(m, name, c->inner, c->d, err, errlen);
        snprintf(name, sizeof name, "block.%d.ffn2", l);
        rc |= declare_linear(m, name, c->d, c->inner, err, errlen);
        snprintf(name, sizeof name, "block.%d.ln2", l);
        rc |= declare_norm(m, name, c->d, err, errlen);
    }
    return rc ? -1 : 0;
}

static void fill_ones(float *x, int n) {
    for (int i = 0; i < n; i++) x[i] = 1.0f;
}

void ssna_user_init(SsnaModel *m, uint64_t *rng) {
    const SsnaConfig *c = &m->cfg;
    int d = c->d;
    /* RecBole: N(0, 0.02) weights and positions, zero biases, layer norms (1, 0) */
    rng_fill_normal(m->p->pos_emb.val, (size_t)c->max_len * d, 0.0f, 0.02f, rng);
    fill_ones(m->p->emb_ln.w.val, d);
    for (int l = 0; l < c->n_blocks; l++) {
        rng_fill_normal(m->p->block[l].qkv.w.val, (size_t)3 * d * d, 0.0f, 0.02f, rng);
        rng_fill_normal(m->p->block[l].attn_out.w.val, (size_t)d * d, 0.0f, 0.02f, rng);
        rng_fill_normal(m->p->block[l].ffn1.w.val, (size_t)c->inner * d, 0.0f, 0.02f, rng);
        rng_fill_normal(m->p->block[l].ffn2.w.val, (size_t)c->inner * d, 0.0f, 0.02f, rng);
        fill_ones(m->p->block[l].ln1.w.val, d);
        fill_ones(m->p->block[l].ln2.w.val, d);
    }
}

/* packed [N, ld] columns [col, col + C) <-> padded [B, T, C]; padding rows of pad are zeroed */
static void pack_to_pad(float *pad, const float *packed, int ld, int col, const int *offsets, int B,
                        int T, int C) {
    for (int b = 0; b < B; b++) {
        int len = offsets[b + 1] - offsets[b];
        for (int t = 0; t < len; t++)
            memcpy(pad + ((size_t)b * T + t) * C, packed + (size_t)(offsets[b] + t) * ld + col,
                   (size_t)C * sizeof(float));
        memset(pad + ((size_t)b * T + len) * C, 0, (size_t)(T - len) * C * sizeof(float));
    }
}

static void pad_to_pack(float *packed, int ld, int col, const float *pad, const int *offsets, int B,
                        int T, int C) {
    for (int b = 0; b < B; b++)
        for (int t = 0; t < offsets[b + 1] - offsets[b]; t++)
            memcpy(packed + (size_t)(offsets[b] + t) * ld + col, pad + ((size_t)b * T + t) * C,
                   (size_t)C * sizeof(float));
}

/* Dropout with fresh keep flags in training; identity at inference. */
static int maybe_dropout(SsnaModel *m, int train, float *x, uint8_t *keep, size_t n, float p) {
    if (!train) return 0;
    if (ssna_draw_mask(m, keep, n, p)) return -1;
    ssna_apply_mask(x, x, keep, n, p);
    return 0;
}

/* Attention of each row's LAST query over its keys, for inference (no probabilities kept).
 * ctx: [B, d]; qkv: [N, 3d] packed rows (q | k | v); scores: [T_max] scratch. */
static void attention_last(float *ctx, const float *qkv, const int *offsets, int B, int d, int NH,
                           float *scores) {
    int hs = d / NH;
    float scale = 1.0f / sqrtf((float)hs);
    size_t ld = 3 * (size_t)d;
    for (int b = 0; b < B; b++) {
        int first = offsets[b], last = offsets[b + 1] - 1;
        const float *q = qkv + (size_t)last * ld;
        for (int h = 0; h < NH; h++) {
            float mx = -INFINITY, sum = 0;
            for (int n = first; n <= last; n++) {
                const float *k = qkv + (size_t)n * ld + d + h * hs;
                float s = 0;
                for (int j = 0; j < hs; j++) s += q[h * hs + j] * k[j];
                scores[n - first] = s * scale;
                if (scores[n - first] > mx) mx = scores[n - first];
            }
            for (int n = first; n <= last; n++)
                sum += scores[n - first] = expf(scores[n - first] - mx);
            float *o = ctx + (size_t)b * d + h * hs;
            for (int j = 0; j < hs; j++) o[j] = 0;
            for (int n = first; n <= last; n++) {
                const float *v = qkv + (size_t)n * ld + 2 * d + h * hs;
                float pn = scores[n - first] / sum;
                for (int j = 0; j < hs; j++) o[j] += pn * v[j];
            }
        }
    }
}

/* Block l after attention, over R rows: x = LN(xin + dropout(ctx W_o)),
 * x = LN(x + dropout(GELU(x W_1) W_2)). ctx, xin: [R, d]; *out = the block output [R, d] (in k's
 * buffers, which keep what backward needs). 0, -1 out of memory, -2 the noise source failed. */
static int block_tail(SsnaModel *m, SsnaBlockWork *k, int l, int R, const float *ctx,
                      const float *xin, int train, const float **out) {
    const SsnaConfig *c = &m->cfg;
    int d = c->d, I = c->inner;
    size_t nd = (size_t)R * d;
    float p = c->hidden_dropout;
    float *ao = SSNA_FLOATS(k->ao, nd), *r1 = SSNA_FLOATS(k->r1, nd), *h1 = SSNA_FLOATS(k->h1, nd);
    float *m1 = SSNA_FLOATS(k->m1, R), *s1 = SSNA_FLOATS(k->s1, R);
    float *f1 = SSNA_FLOATS(k->f1, (size_t)R * I), *g1 = SSNA_FLOATS(k->g1, (size_t)R * I);
    float *f2 = SSNA_FLOATS(k->f2, nd), *r2 = SSNA_FLOATS(k->r2, nd);
    float *h2 = SSNA_FLOATS(k->h2, nd), *m2 = SSNA_FLOATS(k->m2, R), *s2 = SSNA_FLOATS(k->s2, R);
    uint8_t *keep_a = SSNA_BYTES(k->keep_a, nd), *keep_f = SSNA_BYTES(k->keep_f, nd);
    if (!ao || !r1 || !h1 || !m1 || !s1 || !f1 || !g1 || !f2 || !r2 || !h2 || !m2 || !s2 ||
        !keep_a || !keep_f)
        return -1;
    linear_forward(ao, ctx, m->p->block[l].attn_out.w.val, m->p->block[l].attn_out.b.val, R, d, d);
    if (maybe_dropout(m, train, ao, keep_a, nd, p)) return -2;
    for (size_t i = 0; i < nd; i++) r1[i] = ao[i] + xin[i];
    layernorm_forward(h1, m1, s1, r1, m->p->block[l].ln1.w.val, m->p->block[l].ln1.b.val, R, d,
                      c->ln_eps);
    linear_forward(f1, h1, m->p->block[l].ffn1.w.val, m->p->block[l].ffn1.b.val, R, d, I);
    gelu_forward(g1, f1, (size_t)R * I);
    linear_forward(f2, g1, m->p->block[l].ffn2.w.val, m->p->block[l].ffn2.b.val, R, I, d);
    if (maybe_dropout(m, train, f2, keep_f, nd, p)) return -2;
    for (size_t i = 0; i < nd; i++) r2[i] = f2[i] + h1[i];
    layernorm_forward(h2, m2, s2, r2, m->p->block[l].ln2.w.val, m->p->block[l].ln2.b.val, R, d,
                      c->ln_eps);
    *out = h2;
    return 0;
}

int ssna_user_forward(SsnaModel *m, int B, const int *offsets, const float *vin, int train,
                      int last_only, float *out, char *err, size_t errlen) {
    const SsnaConfig *c = &m->cfg;
    SsnaUserWork *w = &m->work->user;
    int d = c->d, N = offsets[B], T = 0, NH = c->n_heads, rc = 0;
    size_t nd = (size_t)N * d;
    float p = c->hidden_dropout;
    last_only = last_only && !train;
    for (int b = 0; b < B; b++)
        if (offsets[b + 1] - offsets[b] > T) T = offsets[b + 1] - offsets[b];
    w->B = B, w->N = N, w->T = T, w->train = train;
    int *off = SSNA_INTS(w->offsets, B + 1), *lens = SSNA_INTS(w->lens, B);
    float *x0 = SSNA_FLOATS(w->x0, nd), *ln0 = SSNA_FLOATS(w->ln0, nd);
    float *mean0 = SSNA_FLOATS(w->ln0_mean, N), *rstd0 = SSNA_FLOATS(w->ln0_rstd, N);
    float *pq = SSNA_FLOATS(w->pad_q, (size_t)B * T * d),
          *pk = SSNA_FLOATS(w->pad_k, (size_t)B * T * d);
    float *pv = SSNA_FLOATS(w->pad_v, (size_t)B * T * d),
          *po = SSNA_FLOATS(w->pad_o, (size_t)B * T * d);
    uint8_t *keep0 = SSNA_BYTES(w->keep0, nd);
    if (!off || !lens || !x0 || !ln0 || !mean0 || !rstd0 || !pq || !pk || !pv || !po || !keep0)
        goto oom;
    memcpy(off, offsets, (size_t)(B + 1) * sizeof(int));
    for (int b = 0; b < B; b++) lens[b] = offsets[b + 1] - offsets[b];

    const float *pos = m->p->pos_emb.val;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < lens[b]; t++) {
            size_t n = (size_t)offsets[b] + t;
            for (int j = 0; j < d; j++) x0[n * d + j] = vin[n * d + j] + pos[(size_t)t * d + j];
        }
    layernorm_forward(ln0, mean0, rstd0, x0, m->p->emb_ln.w.val, m->p->emb_ln.b.val, N, d,
                      c->ln_eps);
    if (maybe_dropout(m, train, ln0, keep0, nd, p)) goto noise;

    const float *xin = ln0;
    int R = N; // rows the blocks carry: every position, or one per row in the last block
    for (int l = 0; l < c->n_blocks && !rc; l++) {
        SsnaBlockWork *k = &w->blk[l];
        float *qkv = SSNA_FLOATS(k->qkv, 3 * nd), *ctx = SSNA_FLOATS(k->ctx, nd);
        float *att = SSNA_FLOATS(k->att, (size_t)B * NH * T * T);
        if (!qkv || !ctx || !att) goto oom;
        linear_forward(qkv, xin, m->p->block[l].qkv.w.val, m->p->block[l].qkv.b.val, N, d, 3 * d);
        if (last_only && l == c->n_blocks - 1) {
            // only the last position of each row is read: its query attends to every key, and
            // the rest of the block runs on B rows instead of N (pq holds their inputs)
            attention_last(ctx, qkv, offsets, B, d, NH, pk);
            for (int b = 0; b < B; b++)
                memcpy(pq + (size_t)b * d, xin + (size_t)(offsets[b + 1] - 1) * d,
                       (size_t)d * sizeof(float));
            xin = pq, R = B;
        } else {
            pack_to_pad(pq, qkv, 3 * d, 0, offsets, B, T, d);
            pack_to_pad(pk, qkv, 3 * d, d, offsets, B, T, d);
            pack_to_pad(pv, qkv, 3 * d, 2 * d, offsets, B, T, d);
            uint8_t *keep = NULL;
            float *att_drop = NULL;
            if (train && c->attn_dropout > 0.0f) {
                size_t na = (size_t)B * NH * T * T;
                keep = SSNA_BYTES(k->att_keep, na), att_drop = SSNA_FLOATS(k->att_drop, na);
                if (!keep || !att_drop) goto oom;
                if (ssna_draw_mask(m, keep, na, c->attn_dropout)) goto noise;
            }
            attention_forward(po, att, att_drop, keep, c->attn_dropout, pq, pk, pv, lens, 1, B, T,
                              d, NH);
            pad_to_pack(ctx, d, 0, po, offsets, B, T, d);
        }
        rc = block_tail(m, k, l, R, ctx, xin, train, &xin);
    }
    if (rc == -1) goto oom;
    if (rc == -2) goto noise;
    memcpy(out, xin, (size_t)R * d * sizeof(float));
    return 0;
oom:
    return errmsg_fail(err, errlen, "ssna: out of memory in the user tower (%d rows, %d positions)",
                       B, N);
noise:
    return errmsg_fail(err, errlen, "ssna: the noise source failed in the user tower");
}

/* Gradient through inverted dropout (training) or identity. */
static void dropout_grad(float *dinp, const float *dout, const uint8_t *keep, size_t n, int train,
                         float p) {
    if (train)
        ssna_apply_mask(dinp, dout, keep, n, p);
    else
        memcpy(dinp, dout, n * sizeof(float));
}

int ssna_user_backward(SsnaModel *m, const float *dout, float *dvin) {
    const SsnaConfig *c = &m->cfg;
    SsnaUserWork *w = &m->work->user;
    int d = c->d, N = w->N, B = w->B, T = w->T, NH = c->n_heads, I = c->inner;
    const int *off = w->offsets.p, *lens = w->lens.p;
    size_t nd = (size_t)N * d, btd = (size_t)B * T * d;
    float p = c->hidden_dropout;
    float *buf = SSNA_FLOATS(w->dx, 5 * nd), *dqkv = SSNA_FLOATS(w->dqkv, 3 * nd);
    float *dinner = SSNA_FLOATS(w->dinner, (size_t)2 * N * I);
    float *dpad = SSNA_FLOATS(w->dpad, 4 * btd), *scr = SSNA_FLOATS(w->dscr, T > 0 ? T : 1);
    if (!buf || !dqkv || !dinner || !dpad || !scr) return -1;
    float *cur = buf, *dr = buf + nd, *dh1 = buf + 2 * nd, *tmp = buf + 3 * nd,
          *dxin = buf + 4 * nd;
    float *dg1 = dinner, *df1 = dinner + (size_t)N * I;
    float *dpq = dpad, *dpk = dpad + btd, *dpv = dpad + 2 * btd, *dpo = dpad + 3 * btd;
    float *pq = w->pad_q.p, *pk = w->pad_k.p, *pv = w->pad_v.p;
    memcpy(cur, dout, nd * sizeof(float));

    for (int l = c->n_blocks - 1; l >= 0; l--) {
        SsnaBlockWork *k = &w->blk[l];
        const float *xin = l ? (const float *)w->blk[l - 1].h2.p : (const float *)w->ln0.p;
        memset(dr, 0, nd * sizeof(float));
        layernorm_backward(dr, m->p->block[l].ln2.w.grad, m->p->block[l].ln2.b.grad, cur, k->r2.p,
                           m->p->block[l].ln2.w.val, k->m2.p, k->s2.p, N, d);
        memcpy(dh1, dr, nd * sizeof(float));
        dropout_grad(tmp, dr, k->keep_f.p, nd, w->train, p);
        memset(dinner, 0, (size_t)2 * N * I * sizeof(float));
        linear_backward(dg1, m->p->block[l].ffn2.w.grad, m->p->block[l].ffn2.b.grad, tmp, k->g1.p,
                        m->p->block[l].ffn2.w.val, N, I, d);
        gelu_backward(df1, k->f1.p, dg1, (size_t)N * I);
        linear_backward(dh1, m->p->block[l].ffn1.w.grad, m->p->block[l].ffn1.b.grad, df1, k->h1.p,
                        m->p->block[l].ffn1.w.val, N, d, I);
        memset(dr, 0, nd * sizeof(float));
        layernorm_backward(dr, m->p->block[l].ln1.w.grad, m->p->block[l].ln1.b.grad, dh1, k->r1.p,
                           m->p->block[l].ln1.w.val, k->m1.p, k->s1.p, N, d);
        memcpy(dxin, dr, nd * sizeof(float));
        dropout_grad(tmp, dr, k->keep_a.p, nd, w->train, p);
        memset(dh1, 0, nd * sizeof(float)); /* reused as d ctx */
        linear_backward(dh1, m->p->block[l].attn_out.w.grad, m->p->block[l].attn_out.b.grad, tmp,
                        k->ctx.p, m->p->block[l].attn_out.w.val, N, d, d);
        pack_to_pad(dpo, dh1, d, 0, off, B, T, d);
        pack_to_pad(pq, k->qkv.p, 3 * d, 0, off, B, T, d);
        pack_to_pad(pk, k->qkv.p, 3 * d, d, off, B, T, d);
        pack_to_pad(pv, k->qkv.p, 3 * d, 2 * d, off, B, T, d);
        memset(dpad, 0, 3 * btd * sizeof(float));
        int att_dropped = w->train && c->attn_dropout > 0.0f;
        attention_backward(dpq, dpk, dpv, dpo, k->att.p, att_dropped ? k->att_drop.p : NULL,
                           att_dropped ? k->att_keep.p : NULL, c->attn_dropout, pq, pk, pv, lens, 1,
                           B, T, d, NH, scr);
        pad_to_pack(dqkv, 3 * d, 0, dpq, off, B, T, d);
        pad_to_pack(dqkv, 3 * d, d, dpk, off, B, T, d);
        pad_to_pack(dqkv, 3 * d, 2 * d, dpv, off, B, T, d);
        linear_backward(dxin, m->p->block[l].qkv.w.grad, m->p->block[l].qkv.b.grad, dqkv, xin,
                        m->p->block[l].qkv.w.val, N, d, 3 * d);
        memcpy(cur, dxin, nd * sizeof(float));
    }
    dropout_grad(tmp, cur, w->keep0.p, nd, w->train, p);
    memset(dr, 0, nd * sizeof(float));
    layernorm_backward(dr, m->p->emb_ln.w.grad, m->p->emb_ln.b.grad, tmp, w->x0.p,
                       m->p->emb_ln.w.val, w->ln0_mean.p, w->ln0_rstd.p, N, d);
    float *dpos = m->p->pos_emb.grad;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < lens[b]; t++) {
            size_t n = (size_t)off[b] + t;
            for (int j = 0; j < d; j++) {
                dvin[n * d + j] += dr[n * d + j];
                dpos[(size_t)t * d + j] += dr[n * d + j];
            }
        }
    return 0;
}
