/* panel.c - int8 panels and the bound kernel over them (see panel.h).
 *
 * The bound. The rows share an axis m (unit: their mean's direction when packed); a row is
 * x = alpha m + r with alpha = x.m, and r ~ s q (|r_c - s q_c| <= s / 2) is what is quantised. A
 * user is split the same way, u = a m + v, v ~ t p (|v_c - t p_c| <= t / 2). As r is orthogonal
 * to m, u.x = a alpha + v.r, and
 *   |v.r - t s (p.q)| <= |v.(r - s q)| + |(v - t p).s q| <= s |v|_1 / 2 + t |s q|_1 / 2:
 * the error scales with what differs between rows and with the part of the user off the axis,
 * which is what ranks them, not with the common direction both share. What is left are float
 * roundings: of u.m and x.m, of r and v (orthogonal to m only up to them), of |m| = 1, and
 * panel_dot's own sum (within (C / 16 + 4) 2^-23 |u|_1 max |x_c| of u.x); quantize_user's K1..K4
 * carry them, each with a margin, test_panel checks the result against panel_dot on every row
 * it builds.
 *
 * The kernel keeps PANEL_ROWS users' sums for one panel (16 rows) in vector accumulators and, per
 * group of 4 columns, loads the panel's 64 bytes once and broadcasts 4 bytes of each user. With
 * AVX-512 VNNI one instruction does the 64 multiply-adds of a group; elsewhere a plain loop gives
 * the same integers. */
#include "model/panel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__AVX512F__) && defined(__AVX512VNNI__) && !defined(PANEL_GENERIC)
#include <immintrin.h>
#define PANEL_VNNI 1
#endif

#define PANEL_ROWS 8   // users per pass over a panel: 8 accumulators + 1 panel vector
#define GROUP      4   // columns per 4-byte lane of the VNNI instruction
#define PANEL_ZERO 128 // the stored byte of a zero value (q + 128)

static int groups(int C) {
    return (C + GROUP - 1) / GROUP;
}

// bytes of one panel: 16 rows x ceil(C / 4) groups x 4 columns
static size_t panel_bytes(int C) {
    return (size_t)groups(C) * PANEL_WIDTH * GROUP;
}

int panel_reserve(Panels *p, size_t N, int C) {
    size_t rows = (N + PANEL_WIDTH - 1) / PANEL_WIDTH * PANEL_WIDTH;
    if (p->cap && p->C != C) return -1;
    if (rows <= p->cap) return 0;
    uint8_t *q = realloc(p->q, rows / PANEL_WIDTH * panel_bytes(C));
    if (!q) return -1;
    p->q = q;
    float **per_row[] = {&p->scale, &p->l1, &p->along, &p->xmax, &p->xm1};
    for (size_t i = 0; i < sizeof per_row / sizeof *per_row; i++) {
        float *f = realloc(*per_row[i], rows * sizeof *f);
        if (!f) return -1;
        *per_row[i] = f;
        memset(f + p->cap, 0, (rows - p->cap) * sizeof *f);
    }
    if (!p->axis && !(p->axis = calloc((size_t)C, sizeof *p->axis))) return -1;
    memset(q + p->cap / PANEL_WIDTH * panel_bytes(C), PANEL_ZERO,
           (rows - p->cap) / PANEL_WIDTH * panel_bytes(C));
    p->cap = rows, p->C = C;
    return 0;
}

void panel_free(Panels *p) {
    free(p->q), free(p->scale), free(p->l1), free(p->along), free(p->xmax), free(p->xm1);
    free(p->axis);
    memset(p, 0, sizeof *p);
}

// the byte of row n, column c
static uint8_t *panel_byte(const Panels *p, size_t n, int c) {
    return p->q + n / PANEL_WIDTH * panel_bytes(p->C) + (size_t)(c / GROUP) * PANEL_WIDTH * GROUP +
           n % PANEL_WIDTH * GROUP + c % GROUP;
}

// x.m (float, in order), sum |x_c m_c| and the largest |x_c - (x.m) m_c|: x split along the axis
static float split_row(const float *x, const float *m, int C, float *xm1, float *amax) {
    float along = 0;
    *xm1 = 0, *amax = 0;
    for (int c = 0; c < C; c++) along += x[c] * m[c], *xm1 += fabsf(x[c] * m[c]);
    for (int c = 0; c < C; c++) *amax = fmaxf(*amax, fabsf(x[c] - along * m[c]));
    return along;
}

void panel_set_row(Panels *p, size_t n, const float *row) {
    int C = p->C;
    float amax = 0, along = 0, xm1 = 0, xmax = 0, l1 = 0;
    if (row) {
        along = split_row(row, p->axis, C, &xm1, &amax);
        for (int c = 0; c < C; c++) xmax = fmaxf(xmax, fabsf(row[c]));
    }
    float s = amax / 127.0f, inv = amax > 0 ? 127.0f / amax : 0;
    for (int c = 0; c < C; c++) {
        long q = amax > 0 ? lrintf((row[c] - along * p->axis[c]) * inv) : 0;
        q = q > 127 ? 127 : q < -127 ? -127 : q;
        *panel_byte(p, n, c) = (uint8_t)(q + PANEL_ZERO);
        l1 += fabsf((float)q) * s;
    }
    p->scale[n] = s, p->l1[n] = l1, p->along[n] = along, p->xmax[n] = xmax, p->xm1[n] = xm1;
}

void panel_pack(Panels *p, const float *x, size_t N) {
    double norm = 0;
    for (int c = 0; c < p->C; c++) { // the mean, in double: N can be large
        double sum = 0;
        for (size_t n = 0; n < N; n++) sum += x[n * (size_t)p->C + c];
        p->axis[c] = (float)sum, norm += sum * sum;
    }
    for (int c = 0; c < p->C; c++) p->axis[c] = norm > 0 ? (float)(p->axis[c] / sqrt(norm)) : 0;
    for (size_t n = 0; n < N; n++) panel_set_row(p, n, x + n * (size_t)p->C);
}

void panel_copy_rows(Panels *dst, const Panels *src, size_t N) {
    size_t whole = N / PANEL_WIDTH; // whole panels in one copy, the rest byte by byte
    memcpy(dst->q, src->q, whole * panel_bytes(src->C));
    for (size_t n = whole * PANEL_WIDTH; n < N; n++)
        for (int c = 0; c < src->C; c++) *panel_byte(dst, n, c) = *panel_byte(src, n, c);
    memcpy(dst->scale, src->scale, N * sizeof *src->scale);
    memcpy(dst->l1, src->l1, N * sizeof *src->l1);
    memcpy(dst->along, src->along, N * sizeof *src->along);
    memcpy(dst->xmax, src->xmax, N * sizeof *src->xmax);
    memcpy(dst->xm1, src->xm1, N * sizeof *src->xm1);
    memcpy(dst->axis, src->axis, (size_t)src->C * sizeof *src->axis);
}

/* One user split along the axis (a) and quantised off it: q [ceil(C / 4) * 4] (zero padded),
 * v ~ t q; corr = 128 sum q (the offset the stored bytes add to every product); H and G scale
 * the quantisation terms of the bound, K1..K4 its rounding terms (header comment). */
typedef struct {
    float a, t, H, G, K1, K2, K3, K4;
    int32_t corr;
} QUser;

static QUser quantize_user(int8_t *q, const float *u, const float *m, int C) {
    float um1 = 0, vmax = 0, u1 = 0, v1 = 0;
    float a = split_row(u, m, C, &um1, &vmax);
    for (int c = 0; c < C; c++) u1 += fabsf(u[c]), v1 += fabsf(u[c] - a * m[c]);
    float t = vmax / 127.0f, inv = vmax > 0 ? 127.0f / vmax : 0;
    int32_t sum = 0;
    memset(q, 0, (size_t)groups(C) * GROUP);
    for (int c = 0; c < C; c++) {
        long v = vmax > 0 ? lrintf((u[c] - a * m[c]) * inv) : 0;
        q[c] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
        sum += q[c];
    }
    float eps = (float)C * 0x1p-23f, margin = 1.01f; // eps: float sums of C terms
    QUser r = {a, t, 0, 0, 0, 0, 0, 0, PANEL_ZERO * sum};
    r.H = v1 * (1 + eps) * 0.5001f * margin;
    r.G = t * 0.5001f * (1 + eps) * margin;
    // |alpha| (u.m - a), a (m.r): x.m - alpha and alpha (1 - |m|^2); v and r off the axis by
    // their roundings; panel_dot's own error
    r.K1 = (eps * um1 + fabsf(a) * 0x1p-21f) * margin;
    r.K2 = fabsf(a) * eps * margin;
    r.K3 = (u1 + fabsf(a) * sqrtf((float)C)) * 0x1p-22f * margin;
    r.K4 = ((float)C / 16 + 4) * 0x1p-23f * u1 * margin;
    return r;
}

#ifdef PANEL_VNNI
// a[r] += pan [groups, 16, 4] bytes x uq[r] for r < rn; inlined, so that the call with the
// constant PANEL_ROWS keeps the accumulators in registers
static inline __attribute__((always_inline)) void
vnni_rows(__m512i *a, const uint8_t *pan, int8_t uq[PANEL_ROWS][PANEL_MAX_C], int rn, int Cg) {
    for (int g = 0; g < Cg; g++) {
        __m512i x = _mm512_loadu_si512(pan + (size_t)g * PANEL_WIDTH * GROUP);
        for (int r = 0; r < rn; r++) {
            int32_t w;
            memcpy(&w, &uq[r][g * GROUP], sizeof w);
            a[r] = _mm512_dpbusd_epi32(a[r], x, _mm512_set1_epi32(w));
        }
    }
}
#endif

// acc: [PANEL_ROWS, 16] = sum over groups of pan [groups, 16, 4] bytes x uq [rn, C] per user
static void panel_block(int32_t acc[PANEL_ROWS][PANEL_WIDTH], const uint8_t *pan,
                        int8_t uq[PANEL_ROWS][PANEL_MAX_C], int rn, int Cg) {
#ifdef PANEL_VNNI
    __m512i a[PANEL_ROWS];
    for (int r = 0; r < PANEL_ROWS; r++) a[r] = _mm512_setzero_si512();
    if (rn == PANEL_ROWS)
        vnni_rows(a, pan, uq, PANEL_ROWS, Cg);
    else
        vnni_rows(a, pan, uq, rn, Cg);
    for (int r = 0; r < rn; r++) _mm512_storeu_si512(acc[r], a[r]);
#else
    for (int r = 0; r < rn; r++)
        for (int l = 0; l < PANEL_WIDTH; l++) {
            int32_t s = 0;
            for (int g = 0; g < Cg; g++)
                for (int k = 0; k < GROUP; k++)
                    s += pan[((size_t)g * PANEL_WIDTH + l) * GROUP + k] * uq[r][g * GROUP + k];
            acc[r][l] = s;
        }
#endif
}

void panel_upper_forward(float *upper, size_t ldo, const float *inp, const Panels *p, size_t n0,
                         int N, int B) {
    int C = p->C, Cg = groups(C);
    const uint8_t *first = p->q + n0 / PANEL_WIDTH * panel_bytes(C);
    for (int r0 = 0; r0 < B; r0 += PANEL_ROWS) {
        int rn = B - r0 < PANEL_ROWS ? B - r0 : PANEL_ROWS;
        int8_t uq[PANEL_ROWS][PANEL_MAX_C];
        QUser qu[PANEL_ROWS];
        for (int r = 0; r < rn; r++)
            qu[r] = quantize_user(uq[r], inp + (size_t)(r0 + r) * C, p->axis, C);
        for (int j0 = 0; j0 < N; j0 += PANEL_WIDTH) {
            int w = N - j0 < PANEL_WIDTH ? N - j0 : PANEL_WIDTH; // the last panel may be partial
            int32_t acc[PANEL_ROWS][PANEL_WIDTH];
            panel_block(acc, first + (size_t)(j0 / PANEL_WIDTH) * panel_bytes(C), uq, rn, Cg);
            const float *s = p->scale + n0 + j0, *l1 = p->l1 + n0 + j0;
            const float *al = p->along + n0 + j0, *xm = p->xmax + n0 + j0, *x1 = p->xm1 + n0 + j0;
            for (int r = 0; r < rn; r++) {
                const QUser *qr = &qu[r];
                float *out = upper + (size_t)(r0 + r) * ldo + j0;
                for (int l = 0; l < w; l++) {
                    float on = qr->a * al[l], off = qr->t * s[l] * (float)(acc[r][l] - qr->corr);
                    float err = s[l] * qr->H + qr->G * l1[l] + fabsf(al[l]) * qr->K1 +
                                x1[l] * qr->K2 + (xm[l] + fabsf(al[l])) * qr->K3 + xm[l] * qr->K4;
                    float sum = on + off + err + (fabsf(on) + fabsf(off)) * 0x1p-20f;
                    out[l] = sum + fabsf(sum) * 0x1p-20f; // the rounding of the sum itself
                }
            }
        }
    }
}

float panel_dot(const float *u, const float *x, int C) {
    float s[PANEL_WIDTH] = {0};
    int c = 0;
    for (; c + PANEL_WIDTH <= C; c += PANEL_WIDTH)
        for (int l = 0; l < PANEL_WIDTH; l++) s[l] += u[c + l] * x[c + l];
    for (int l = 0; c + l < C; l++) s[l] += u[c + l] * x[c + l];
    for (int h = PANEL_WIDTH / 2; h; h /= 2) // pairwise, in a fixed order
        for (int l = 0; l < h; l++) s[l] += s[l + h];
    return s[0];
}
