/* panel.c - panel layout and the scoring kernel over it (see panel.h).
 *
 * The kernel keeps PANEL_ROWS rows of out in vector accumulators of PANEL_WIDTH floats and, per
 * column c, loads one vector of the panel and broadcasts one scalar of each inp row: one load
 * per PANEL_ROWS multiply-adds, with the panel (C x 16 floats) and the rows in L1. GCC's vector
 * extension lowers the 16-float vectors to whatever the target has (one AVX-512 register, two
 * AVX, four SSE). */
#include "model/panel.h"

#include <string.h>

#define PANEL_ROWS 8 // rows of out per pass over a panel: 8 accumulators + 1 panel vector

typedef float PanelVec __attribute__((vector_size(PANEL_WIDTH * sizeof(float))));

size_t panel_floats(size_t N, int C) {
    return (N + PANEL_WIDTH - 1) / PANEL_WIDTH * PANEL_WIDTH * (size_t)C;
}

static float *panel_cell(float *panels, size_t n, int c, int C) {
    return panels + (n / PANEL_WIDTH) * (size_t)C * PANEL_WIDTH + (size_t)c * PANEL_WIDTH +
           n % PANEL_WIDTH;
}

void panel_pack(float *panels, const float *x, size_t N, int C) {
    memset(panels, 0, panel_floats(N, C) * sizeof(float));
    for (size_t n = 0; n < N; n++) panel_set_row(panels, n, x + n * (size_t)C, C);
}

void panel_set_row(float *panels, size_t n, const float *row, int C) {
    float *p = panel_cell(panels, n, 0, C);
    for (int c = 0; c < C; c++) p[(size_t)c * PANEL_WIDTH] = row ? row[c] : 0.0f;
}

void panel_copy_rows(float *dst, const float *src, size_t N, int C) {
    size_t whole = N / PANEL_WIDTH * PANEL_WIDTH; // whole panels in one copy
    memcpy(dst, src, panel_floats(whole, C) * sizeof(float));
    for (size_t n = whole; n < N; n++) {
        float *d = panel_cell(dst, n, 0, C);
        const float *s = panel_cell((float *)src, n, 0, C);
        for (int c = 0; c < C; c++) d[(size_t)c * PANEL_WIDTH] = s[(size_t)c * PANEL_WIDTH];
    }
}

// acc[r] = sum over c of pan[c, :] * inp[r, c], for r < rn (rn <= PANEL_ROWS)
static void panel_rows(PanelVec *acc, const float *pan, const float *inp, int rn, int C) {
    memset(acc, 0, PANEL_ROWS * sizeof *acc);
    if (rn == PANEL_ROWS) { // a constant trip count: the accumulators stay in registers
        for (int c = 0; c < C; c++) {
            PanelVec pv;
            memcpy(&pv, pan + (size_t)c * PANEL_WIDTH, sizeof pv);
            for (int r = 0; r < PANEL_ROWS; r++) acc[r] += pv * inp[(size_t)r * C + c];
        }
        return;
    }
    for (int c = 0; c < C; c++) {
        PanelVec pv;
        memcpy(&pv, pan + (size_t)c * PANEL_WIDTH, sizeof pv);
        for (int r = 0; r < rn; r++) acc[r] += pv * inp[(size_t)r * C + c];
    }
}

void panel_matmul_forward(float *out, size_t ldo, const float *inp, const float *panels, size_t n0,
                          int N, int B, int C) {
    const float *first = panels + n0 / PANEL_WIDTH * (size_t)C * PANEL_WIDTH;
    for (int j0 = 0; j0 < N; j0 += PANEL_WIDTH) {
        const float *pan = first + (size_t)(j0 / PANEL_WIDTH) * (size_t)C * PANEL_WIDTH;
        int w = N - j0 < PANEL_WIDTH ? N - j0 : PANEL_WIDTH; // the last panel may be partial
        for (int r0 = 0; r0 < B; r0 += PANEL_ROWS) {
            int rn = B - r0 < PANEL_ROWS ? B - r0 : PANEL_ROWS;
            PanelVec acc[PANEL_ROWS];
            panel_rows(acc, pan, inp + (size_t)r0 * C, rn, C);
            for (int r = 0; r < rn; r++)
                memcpy(out + (size_t)(r0 + r) * ldo + j0, &acc[r], (size_t)w * sizeof(float));
        }
    }
}
