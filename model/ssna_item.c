/* ssna_item.c - the item tower: MoE whitening adapters over cached layer states, their
 * integration (GRU / mean / weighted), the tmoe / tmlp / id variants; forward and backward.
 *
 * It runs once per DISTINCT item of a batch (U rows), so every matrix product is one sgemm over
 * all U items: the n_experts whitening heads of an adapter are one [n_experts * d, H] weight.
 */
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "model/errmsg.h"
#include "model/kernels.h"
#include "model/pool.h"
#include "model/rng.h"
#include "model/ssna_internal.h"

/* How many MoE adapters a variant runs (each on one kept layer, top layer first). */
static int item_adapters(const SsnaConfig *c) {
    switch (c->variant) {
    case SSNA_VARIANT_GRU:
    case SSNA_VARIANT_MEAN:
    case SSNA_VARIANT_WEIGHTED:
        return c->layers;
    case SSNA_VARIANT_TMOE:
        return 1;
    default:
        return 0;
    }
}

/* Whether items have an ID row: the id variant, or a text variant with item_ids. */
static int item_has_ids(const SsnaConfig *c) {
    return c->variant == SSNA_VARIANT_ID || c->item_ids;
}

/* v[u] += item_emb[ids[u]] for a text variant with item_ids. */
// v: [U, d]
static void item_add_ids(SsnaModel *m, const int *ids, int U, float *v) {
    const SsnaConfig *c = &m->cfg;
    if (c->variant == SSNA_VARIANT_ID || !c->item_ids) return;
    for (int u = 0; u < U; u++) {
        const float *restrict row = m->p->item_emb.val + (size_t)ids[u] * c->d;
        float *restrict vu = v + (size_t)u * c->d;
        for (int k = 0; k < c->d; k++) vu[k] += row[k];
    }
}

static int declare(SsnaModel *m, const char *name, int ndim, int d0, int d1, char *err,
                   size_t errlen) {
    int shape[2] = {d0, d1};
    return params_declare(&m->ps, name, ndim, shape, err, errlen) < 0 ? -1 : 0;
}

int ssna_item_declare(SsnaModel *m, char *err, size_t errlen) {
    const SsnaConfig *c = &m->cfg;
    char name[PARAM_NAME_MAX];
    int rc = 0;
    for (int a = 0; a < item_adapters(c); a++) {
        snprintf(name, sizeof name, "adapter.%d.w", a);
        rc |= declare(m, name, 2, c->n_experts * c->d, c->hidden, err, errlen);
        snprintf(name, sizeof name, "adapter.%d.b", a);
        rc |= declare(m, name, 2, c->n_experts, c->hidden, err, errlen);
        snprintf(name, sizeof name, "adapter.%d.gate", a);
        rc |= declare(m, name, 2, c->n_experts, c->hidden, err, errlen);
        snprintf(name, sizeof name, "adapter.%d.noise", a);
        rc |= declare(m, name, 2, c->n_experts, c->hidden, err, errlen);
    }
    if (c->variant == SSNA_VARIANT_GRU) {
        rc |= declare(m, "gru.w_ih", 2, 3 * c->d, c->d, err, errlen);
        rc |= declare(m, "gru.w_hh", 2, 3 * c->d, c->d, err, errlen);
        rc |= declare(m, "gru.b_ih", 1, 3 * c->d, 0, err, errlen);
        rc |= declare(m, "gru.b_hh", 1, 3 * c->d, 0, err, errlen);
    }
    if (c->variant == SSNA_VARIANT_WEIGHTED)
        rc |= declare(m, "integrate.w", 1, c->layers, 0, err, errlen);
    if (c->variant == SSNA_VARIANT_TMLP) {
        for (int l = 0; l < c->tmlp_layers; l++) {
            snprintf(name, sizeof name, "tmlp.%d.w", l);
            rc |= declare(m, name, 2, c->d, l == 0 ? c->hidden : c->d, err, errlen);
            snprintf(name, sizeof name, "tmlp.%d.b", l);
            rc |= declare(m, name, 1, c->d, 0, err, errlen);
        }
    }
    if (item_has_ids(c)) rc |= declare(m, "item_emb", 2, c->n_items, c->d, err, errlen);
    return rc ? -1 : 0;
}

void ssna_item_init(SsnaModel *m, uint64_t *rng) {
    const SsnaConfig *c = &m->cfg;
    /* UniSRec: whitening W ~ N(0, 0.02), b = 0; gate and noise matrices 0 (uniform gates) */
    for (int a = 0; a < item_adapters(c); a++)
        rng_fill_normal(m->p->adapter[a].w.val, (size_t)c->n_experts * c->d * c->hidden, 0.0f,
                        0.02f, rng);
    if (c->variant == SSNA_VARIANT_GRU) {
        float bound = 1.0f / sqrtf((float)c->d);
        size_t n = (size_t)3 * c->d;
        rng_fill_uniform(m->p->gru_w_ih.val, n * c->d, -bound, bound, rng);
        rng_fill_uniform(m->p->gru_w_hh.val, n * c->d, -bound, bound, rng);
        rng_fill_uniform(m->p->gru_b_ih.val, n, -bound, bound, rng);
        rng_fill_uniform(m->p->gru_b_hh.val, n, -bound, bound, rng);
    }
    if (c->variant == SSNA_VARIANT_TMLP)
        for (int l = 0; l < c->tmlp_layers; l++)
            rng_fill_normal(m->p->tmlp[l].w.val, (size_t)c->d * (l == 0 ? c->hidden : c->d), 0.0f,
                            0.02f, rng);
    if (item_has_ids(c))
        rng_fill_normal(m->p->item_emb.val, (size_t)c->n_items * c->d, 0.0f, 0.02f, rng);
}

int ssna_center_items(SsnaModel *m, const float *states, const unsigned char *present,
                      size_t n_items, char *err, size_t errlen) {
    const SsnaConfig *c = &m->cfg;
    int H = c->hidden, A = item_adapters(c), nx = A ? A : 1; // tmlp reads the top layer only
    if (!A && c->variant != SSNA_VARIANT_TMLP) return 0;     // id: no text tower to centre
    double *mu = calloc((size_t)nx * H, sizeof *mu);         // [nx, H]: double, a catalogue is long
    float *muf = malloc((size_t)nx * H * sizeof *muf);
    if (!mu || !muf) {
        free(mu), free(muf);
        return errmsg_fail(err, errlen, "ssna_center_items: out of memory");
    }
    size_t n = 0;
    for (size_t i = 0; i < n_items; i++) {
        if (present && !present[i]) continue;
        n++;
        for (int t = 0; t < nx; t++) {
            const float *x = states + (i * (size_t)c->layers + t) * H;
            for (int h = 0; h < H; h++) mu[(size_t)t * H + h] += x[h];
        }
    }
    if (!n) {
        free(mu), free(muf);
        return errmsg_fail(err, errlen, "ssna_center_items: none of %zu items has states", n_items);
    }
    for (size_t k = 0; k < (size_t)nx * H; k++) muf[k] = (float)(mu[k] / (double)n);
    if (c->variant == SSNA_VARIANT_TMLP) { // b0 = -W0 mu: W0 (x - mu) + 0
        // W0: [d, H], mu: [H]
        const float *W = m->p->tmlp[0].w.val;
        for (int o = 0; o < c->d; o++) {
            float acc = 0;
            for (int h = 0; h < H; h++) acc += W[(size_t)o * H + h] * muf[h];
            m->p->tmlp[0].b.val[o] = -acc;
        }
    } else {
        if (c->variant == SSNA_VARIANT_GRU) { // see ssna.h: biases that outweigh every input
            memset(m->p->gru_b_ih.val, 0, (size_t)3 * c->d * sizeof(float));
            memset(m->p->gru_b_hh.val, 0, (size_t)3 * c->d * sizeof(float));
        }
        for (int a = 0; a < A; a++) // b: [nE, H], each head the mean of its adapter's layer
            for (int k = 0; k < c->n_experts; k++)
                memcpy(m->p->adapter[a].b.val + (size_t)k * H, muf + (size_t)a * H,
                       (size_t)H * sizeof(float));
    }
    free(mu), free(muf);
    return 0;
}

/* ---- one MoE adapter ------------------------------------------------------------------------ */

/* The expert mixture z[u] = sum_k p[u, k] (e[u, k] - shift[k]) over rows [begin, end) (forward),
 * and its gradients de[u, k] = p[u, k] dz[u], dp[u, k] = <dz[u], e[u, k] - shift[k]> (backward).
 * e is the raw product xd W^T; each head's shift W_k b_k is subtracted here, in registers, rather
 * than in a pass of its own over the [U, nE * d] outputs (the same float operations). */
typedef struct {
    float *out, *dp;                 // forward: z [U, d]; backward: de [U, nE, d], dp [U, nE]
    const float *e, *shift, *p, *dz; // e: [U, nE, d]; shift: [nE, d]; p: [U, nE]; dz: [U, d]
    int nE, d;
} MixJob;

static void mix_forward(void *arg, size_t begin, size_t end) {
    const MixJob *j = arg;
    int nE = j->nE, d = j->d;
    for (size_t u = begin; u < end; u++) {
        float *restrict zu = j->out + u * d;
        memset(zu, 0, (size_t)d * sizeof(float));
        for (int k = 0; k < nE; k++) {
            float pk = j->p[u * nE + k];
            const float *restrict ek = j->e + (u * nE + k) * d, *restrict sk = j->shift + k * d;
            for (int c = 0; c < d; c++) zu[c] += pk * (ek[c] - sk[c]);
        }
    }
}

static void mix_backward(void *arg, size_t begin, size_t end) {
    const MixJob *j = arg;
    int nE = j->nE, d = j->d;
    for (size_t u = begin; u < end; u++) {
        const float *restrict dzu = j->dz + u * d;
        for (int k = 0; k < nE; k++) {
            const float *restrict ek = j->e + (u * nE + k) * d, *restrict sk = j->shift + k * d;
            float *restrict dek = j->out + (u * nE + k) * d;
            float pk = j->p[u * nE + k], dot = 0.0f;
            for (int c = 0; c < d; c++) {
                dot += dzu[c] * (ek[c] - sk[c]);
                dek[c] = pk * dzu[c];
            }
            j->dp[u * nE + k] = dot;
        }
    }
}

/* shift: [nE, d], head k's W_k b_k (its bias b_k: [H] through W_k: [d, H]) */
static void moe_shift(const SsnaModel *m, int a, float *shift) {
    const SsnaConfig *c = &m->cfg;
    int H = c->hidden, d = c->d;
    const float *W = m->p->adapter[a].w.val, *b = m->p->adapter[a].b.val;
    for (int k = 0; k < c->n_experts; k++)
        linear_forward(shift + k * d, b + (size_t)k * H, W + (size_t)k * d * H, NULL, 1, H, d);
}

// x, xd: [U, H] states and their dropped-out copy; e: [U, nE * d]; g, s, eps, p: [U, nE];
// z: [U, d] output
static int moe_forward(SsnaModel *m, SsnaItemWork *w, int a, const float *x, float *xd,
                       uint8_t *keep, float *e, float *g, float *s, float *eps, float *p,
                       float *z) {
    const SsnaConfig *c = &m->cfg;
    int U = w->U, H = c->hidden, nE = c->n_experts, d = c->d;
    const float *W = m->p->adapter[a].w.val;
    if (w->train) {
        if (ssna_draw_mask(m, keep, (size_t)U * H, c->adapter_dropout)) return -1;
        ssna_apply_mask(xd, x, keep, (size_t)U * H, c->adapter_dropout);
    } else {
        memcpy(xd, x, (size_t)U * H * sizeof(float));
    }
    /* (xd - b_k) W_k^T = xd W_k^T - W_k b_k: one sgemm for all heads; the mixture subtracts the
     * per-head shift */
    linear_forward(e, xd, W, NULL, U, H, nE * d);
    float *shift = SSNA_FLOATS(w->dtmp, (size_t)nE * d);
    if (!shift) return -1;
    moe_shift(m, a, shift);

    linear_forward(g, x, m->p->adapter[a].gate.val, NULL, U, H, nE);
    if (w->train) {
        /* reparameterised routing noise: g += N(0,1) * (softplus(x Wn^T) + 0.01) */
        linear_forward(s, x, m->p->adapter[a].noise.val, NULL, U, H, nE);
        if (ssna_draw_normal(m, eps, (size_t)U * nE)) return -1;
        softplus_forward(p, s, (size_t)U * nE);
        for (size_t i = 0; i < (size_t)U * nE; i++) g[i] += eps[i] * (p[i] + 0.01f);
    }
    softmax_forward(p, g, U, nE);
    MixJob job = {z, NULL, e, shift, p, NULL, nE, d};
    pool_for((size_t)U, 64, mix_forward, &job);
    return 0;
}

// dz: [U, d] gradient of the adapter output; accumulates into the adapter's parameter grads
static int moe_backward(SsnaModel *m, SsnaItemWork *w, int a, const float *x, const float *xd,
                        const float *e, const float *s, const float *eps, const float *p,
                        const float *dz) {
    const SsnaConfig *c = &m->cfg;
    int U = w->U, H = c->hidden, nE = c->n_experts, d = c->d;
    float *de = SSNA_FLOATS(w->de, (size_t)U * nE * d);
    float *dp = SSNA_FLOATS(w->dp, (size_t)U * nE * 3);
    float *shift = SSNA_FLOATS(w->dtmp, (size_t)nE * d * 2);
    if (!de || !dp || !shift) return -1;
    float *dshift = shift + (size_t)nE * d, *dg = dp + (size_t)U * nE, *ds = dg + (size_t)U * nE;
    moe_shift(m, a, shift); // as the forward pass had it: the weights have not moved since
    MixJob job = {de, dp, e, shift, p, dz, nE, d};
    pool_for((size_t)U, 64, mix_backward, &job);
    memset(dg, 0, (size_t)U * nE * 2 * sizeof(float));
    softmax_backward(dg, p, dp, U, nE);
    linear_backward(NULL, m->p->adapter[a].gate.grad, NULL, dg, x, m->p->adapter[a].gate.val, U, H,
                    nE);
    if (w->train) {
        for (size_t i = 0; i < (size_t)U * nE; i++) dp[i] = dg[i] * eps[i]; /* d std */
        softplus_backward(ds, s, dp, (size_t)U * nE);
        linear_backward(NULL, m->p->adapter[a].noise.grad, NULL, ds, x, m->p->adapter[a].noise.val,
                        U, H, nE);
    }
    const float *W = m->p->adapter[a].w.val, *b = m->p->adapter[a].b.val;
    float *dW = m->p->adapter[a].w.grad, *db = m->p->adapter[a].b.grad;
    linear_backward(NULL, dW, NULL, de, xd, W, U, H, nE * d);
    /* dshift_k = -sum_u de[u, k] = -sum_u p[u, k] dz[u]: one [nE, U] x [U, d] product, which reads
     * p and dz instead of the 8x larger de */
    memset(dshift, 0, (size_t)nE * d * sizeof(float));
    linear_backward(NULL, dshift, NULL, p, dz, NULL, U, d, nE);
    for (int i = 0; i < nE * d; i++) dshift[i] = -dshift[i];
    for (int k = 0; k < nE; k++)
        linear_backward(db + (size_t)k * H, dW + (size_t)k * d * H, NULL, dshift + k * d,
                        b + (size_t)k * H, W + (size_t)k * d * H, 1, H, d);
    return 0;
}

/* ---- integration of the adapter outputs ----------------------------------------------------- */

static void weighted_softmax(const SsnaModel *m, float *sw) {
    softmax_forward(sw, m->p->integrate_w.val, 1, m->cfg.layers);
}

// z: [A, U, d] adapter outputs; v: [U, d]
static int integrate_forward(SsnaModel *m, SsnaItemWork *w, int A, const float *z, float *v) {
    const SsnaConfig *c = &m->cfg;
    int U = w->U, d = c->d;
    size_t ud = (size_t)U * d;
    if (c->variant == SSNA_VARIANT_GRU) {
        float *h = SSNA_FLOATS(w->h, (size_t)A * ud);
        float *cache = SSNA_FLOATS(w->cache, (size_t)A * ud * 4);
        float *scr = SSNA_FLOATS(w->gscratch, ud * 6);
        if (!h || !cache || !scr) return -1;
        for (int t = 0; t < A; t++) /* top layer first, h0 = 0 */
            gru_cell_forward(h + t * ud, cache + t * ud * 4, z + t * ud,
                             t ? h + (t - 1) * ud : NULL, m->p->gru_w_ih.val, m->p->gru_w_hh.val,
                             m->p->gru_b_ih.val, m->p->gru_b_hh.val, U, d, d, scr);
        memcpy(v, h + (A - 1) * ud, ud * sizeof(float));
    } else if (c->variant == SSNA_VARIANT_MEAN || c->variant == SSNA_VARIANT_WEIGHTED) {
        float sw[SSNA_MAX_LAYERS];
        if (c->variant == SSNA_VARIANT_WEIGHTED)
            weighted_softmax(m, sw);
        else
            for (int t = 0; t < A; t++) sw[t] = 1.0f / (float)A;
        memset(v, 0, ud * sizeof(float));
        for (int t = 0; t < A; t++)
            for (size_t i = 0; i < ud; i++) v[i] += sw[t] * z[t * ud + i];
    } else {
        memcpy(v, z, ud * sizeof(float));
    }
    return 0;
}

// dv: [U, d]; dz: [A, U, d] (overwritten)
static int integrate_backward(SsnaModel *m, SsnaItemWork *w, int A, const float *z, const float *dv,
                              float *dz) {
    const SsnaConfig *c = &m->cfg;
    int U = w->U, d = c->d;
    size_t ud = (size_t)U * d;
    memset(dz, 0, (size_t)A * ud * sizeof(float));
    if (c->variant == SSNA_VARIANT_GRU) {
        float *h = (float *)w->h.p, *cache = (float *)w->cache.p, *scr = (float *)w->gscratch.p;
        float *dh = SSNA_FLOATS(w->dh, 2 * ud);
        if (!dh) return -1;
        float *dcur = dh, *dprev = dh + ud;
        memcpy(dcur, dv, ud * sizeof(float));
        for (int t = A - 1; t >= 0; t--) {
            memset(dprev, 0, ud * sizeof(float));
            gru_cell_backward(dz + t * ud, t ? dprev : NULL, m->p->gru_w_ih.grad,
                              m->p->gru_w_hh.grad, m->p->gru_b_ih.grad, m->p->gru_b_hh.grad, dcur,
                              cache + t * ud * 4, z + t * ud, t ? h + (t - 1) * ud : NULL,
                              m->p->gru_w_ih.val, m->p->gru_w_hh.val, U, d, d, scr);
            float *tmp = dcur;
            dcur = dprev;
            dprev = tmp;
        }
    } else if (c->variant == SSNA_VARIANT_MEAN || c->variant == SSNA_VARIANT_WEIGHTED) {
        float sw[SSNA_MAX_LAYERS], dsw[SSNA_MAX_LAYERS];
        if (c->variant == SSNA_VARIANT_WEIGHTED)
            weighted_softmax(m, sw);
        else
            for (int t = 0; t < A; t++) sw[t] = 1.0f / (float)A;
        for (int t = 0; t < A; t++) {
            double dot = 0.0;
            for (size_t i = 0; i < ud; i++) {
                dz[t * ud + i] = sw[t] * dv[i];
                dot += (double)dv[i] * z[t * ud + i];
            }
            dsw[t] = (float)dot;
        }
        if (c->variant == SSNA_VARIANT_WEIGHTED)
            softmax_backward(m->p->integrate_w.grad, sw, dsw, 1, A);
    } else {
        memcpy(dz, dv, ud * sizeof(float));
    }
    return 0;
}

/* ---- tmlp: an MLP on the top layer ---------------------------------------------------------- */

// xd: [U, H]; pre, act: [L, U, d]; v: [U, d]
static void tmlp_forward(SsnaModel *m, int U, const float *xd, float *pre, float *act, float *v) {
    const SsnaConfig *c = &m->cfg;
    size_t ud = (size_t)U * c->d;
    for (int l = 0; l < c->tmlp_layers; l++) {
        const float *in = l ? act + (l - 1) * ud : xd;
        linear_forward(pre + l * ud, in, m->p->tmlp[l].w.val, m->p->tmlp[l].b.val, U,
                       l ? c->d : c->hidden, c->d);
        if (l + 1 < c->tmlp_layers) gelu_forward(act + l * ud, pre + l * ud, ud);
    }
    memcpy(v, pre + (c->tmlp_layers - 1) * ud, ud * sizeof(float));
}

static int tmlp_backward(SsnaModel *m, SsnaItemWork *w, const float *xd, const float *dv) {
    const SsnaConfig *c = &m->cfg;
    int U = w->U, L = c->tmlp_layers;
    size_t ud = (size_t)U * c->d;
    const float *pre = (const float *)w->mlp_pre.p, *act = (const float *)w->mlp_act.p;
    float *buf = SSNA_FLOATS(w->dh, 2 * ud);
    if (!buf) return -1;
    float *dpre = buf, *dact = buf + ud;
    memcpy(dpre, dv, ud * sizeof(float));
    for (int l = L - 1; l >= 0; l--) {
        const float *in = l ? act + (l - 1) * ud : xd;
        if (l) memset(dact, 0, ud * sizeof(float));
        linear_backward(l ? dact : NULL, m->p->tmlp[l].w.grad, m->p->tmlp[l].b.grad, dpre, in,
                        m->p->tmlp[l].w.val, U, l ? c->d : c->hidden, c->d);
        if (l) {
            memset(dpre, 0, ud * sizeof(float));
            gelu_backward(dpre, pre + (l - 1) * ud, dact, ud);
        }
    }
    return 0;
}

/* ---- the tower ------------------------------------------------------------------------------ */

int ssna_item_forward(SsnaModel *m, const float *states, const int *ids, int U, int train, float *v,
                      char *err, size_t errlen) {
    const SsnaConfig *c = &m->cfg;
    SsnaItemWork *w = &m->work->item;
    int H = c->hidden, nE = c->n_experts, d = c->d, A = item_adapters(c);
    w->U = U;
    w->train = train;
    int *wid = SSNA_INTS(w->ids, U > 0 ? U : 1);
    if (!wid) goto oom;
    memcpy(wid, ids, (size_t)U * sizeof(int));
    if (c->variant == SSNA_VARIANT_ID) {
        embedding_forward(v, ids, m->p->item_emb.val, U, d);
        return 0;
    }
    if (!states) {
        return errmsg_fail(err, errlen, "ssna: variant %s needs item layer states",
                           ssna_variant_name(c->variant));
    }
    int nx = A ? A : 1; /* tmlp reads the top layer only */
    size_t uh = (size_t)U * H;
    float *x = SSNA_FLOATS(w->x, nx * uh), *xd = SSNA_FLOATS(w->xd, nx * uh);
    uint8_t *keep = SSNA_BYTES(w->keep, nx * uh);
    if (!x || !xd || !keep) goto oom;
    for (int t = 0; t < nx; t++)
        for (int u = 0; u < U; u++)
            memcpy(x + t * uh + (size_t)u * H, states + ((size_t)ids[u] * c->layers + t) * H,
                   (size_t)H * sizeof(float));
    if (c->variant == SSNA_VARIANT_TMLP) {
        float *pre = SSNA_FLOATS(w->mlp_pre, (size_t)c->tmlp_layers * U * d);
        float *act = SSNA_FLOATS(w->mlp_act, (size_t)c->tmlp_layers * U * d);
        if (!pre || !act) goto oom;
        if (train) {
            if (ssna_draw_mask(m, keep, uh, c->adapter_dropout)) goto noise;
            ssna_apply_mask(xd, x, keep, uh, c->adapter_dropout);
        } else {
            memcpy(xd, x, uh * sizeof(float));
        }
        tmlp_forward(m, U, xd, pre, act, v);
        item_add_ids(m, ids, U, v);
        return 0;
    }
    size_t une = (size_t)U * nE;
    float *e = SSNA_FLOATS(w->e, (size_t)A * une * d);
    float *g = SSNA_FLOATS(w->g, A * une), *s = SSNA_FLOATS(w->s, A * une);
    float *eps = SSNA_FLOATS(w->eps, A * une), *p = SSNA_FLOATS(w->p, A * une);
    float *z = SSNA_FLOATS(w->z, (size_t)A * U * d);
    if (!e || !g || !s || !eps || !p || !z) goto oom;
    for (int t = 0; t < A; t++)
        if (moe_forward(m, w, t, x + t * uh, xd + t * uh, keep + t * uh, e + t * une * d,
                        g + t * une, s + t * une, eps + t * une, p + t * une,
                        z + (size_t)t * U * d))
            goto noise;
    if (integrate_forward(m, w, A, z, v)) goto oom;
    item_add_ids(m, ids, U, v);
    return 0;
oom:
    return errmsg_fail(err, errlen, "ssna: out of memory in the item tower (%d items)", U);
noise:
    return errmsg_fail(err, errlen, "ssna: the noise source failed in the item tower");
}

int ssna_item_backward(SsnaModel *m, const float *dv) {
    const SsnaConfig *c = &m->cfg;
    SsnaItemWork *w = &m->work->item;
    int U = w->U, H = c->hidden, nE = c->n_experts, d = c->d, A = item_adapters(c);
    if (item_has_ids(c)) embedding_backward(m->p->item_emb.grad, dv, (const int *)w->ids.p, U, d);
    if (c->variant == SSNA_VARIANT_ID) return 0;
    size_t uh = (size_t)U * H, une = (size_t)U * nE;
    const float *x = w->x.p, *xd = w->xd.p;
    if (c->variant == SSNA_VARIANT_TMLP) return tmlp_backward(m, w, xd, dv);
    float *dz = SSNA_FLOATS(w->dz, (size_t)A * U * d);
    if (!dz) return -1;
    const float *z = w->z.p, *e = w->e.p, *s = w->s.p, *eps = w->eps.p, *p = w->p.p;
    if (integrate_backward(m, w, A, z, dv, dz)) return -1;
    for (int t = 0; t < A; t++)
        if (moe_backward(m, w, t, x + t * uh, xd + t * uh, e + t * une * d, s + t * une,
                         eps + t * une, p + t * une, dz + (size_t)t * U * d))
            return -1;
    return 0;
}
