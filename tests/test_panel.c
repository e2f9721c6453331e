/* test_panel.c - the panel layout (model/panel.h) and its scoring kernel against a plain
 * double-precision dot product: partial panels (N not a multiple of 16), row counts around the
 * kernel's 8-row blocking, offsets n0 into the panels, single-row updates and copies. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "model/panel.h"
#include "model/rng.h"

// max |out - inp x[n0 : n0 + N]^T| over the block, reference in double
static double max_err(const float *out, size_t ldo, const float *inp, const float *x, size_t n0,
                      int N, int B, int C) {
    double worst = 0;
    for (int b = 0; b < B; b++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int c = 0; c < C; c++)
                s += (double)inp[(size_t)b * C + c] * x[(n0 + (size_t)j) * C + c];
            double e = fabs(s - out[(size_t)b * ldo + j]);
            if (e > worst) worst = e;
        }
    return worst;
}

int main(void) {
    uint64_t rng = 42;
    const int Ns[] = {1, 15, 16, 17, 100, 1000}, Bs[] = {1, 7, 8, 9, 20}, Cs[] = {3, 64, 256};
    for (size_t ci = 0; ci < sizeof Cs / sizeof *Cs; ci++)
        for (size_t ni = 0; ni < sizeof Ns / sizeof *Ns; ni++) {
            int C = Cs[ci], N = Ns[ni];
            float *x = malloc(sizeof(float) * (size_t)N * C);
            float *panels = malloc(sizeof(float) * panel_floats((size_t)N, C));
            float *inp = malloc(sizeof(float) * 20 * (size_t)C);
            float *out = malloc(sizeof(float) * 20 * (size_t)(N + 16));
            rng_fill_normal(x, (size_t)N * C, 0.0f, 1.0f, &rng);
            rng_fill_normal(inp, 20 * (size_t)C, 0.0f, 1.0f, &rng);
            panel_pack(panels, x, (size_t)N, C);
            // the rows that round N up to whole panels score exactly zero
            int padded = (int)(panel_floats((size_t)N, C) / (size_t)C);
            CHECK(padded % 16 == 0 && padded >= N && padded < N + 16);
            panel_matmul_forward(out, (size_t)padded, inp, panels, 0, padded, 1, C);
            for (int j = N; j < padded; j++) CHECK(out[j] == 0.0f);
            for (int b = 0; b < (int)(sizeof Bs / sizeof *Bs); b++) {
                int B = Bs[b];
                // tolerance: float sums of C products of N(0, 1) values
                double tol = 1e-5 * C;
                panel_matmul_forward(out, (size_t)N + 5, inp, panels, 0, N, B, C);
                double e = max_err(out, (size_t)N + 5, inp, x, 0, N, B, C);
                CHECK_MSG(e < tol, "N %d B %d C %d: max error %g", N, B, C, e);
                if (N > 32) { // a block that starts at panel 2 and ends mid-panel
                    int w = N - 32 - 3;
                    panel_matmul_forward(out, (size_t)w, inp, panels, 32, w, B, C);
                    e = max_err(out, (size_t)w, inp, x, 32, w, B, C);
                    CHECK_MSG(e < tol, "N %d n0 32 B %d C %d: max error %g", N, B, C, e);
                }
            }
            // set one row (and clear another), then copy rows [0, N - 1) into fresh panels
            if (N >= 2) {
                float *row = malloc(sizeof(float) * (size_t)C);
                rng_fill_normal(row, (size_t)C, 0.0f, 1.0f, &rng);
                panel_set_row(panels, (size_t)N - 1, row, C);
                memcpy(x + (size_t)(N - 1) * C, row, sizeof(float) * (size_t)C);
                panel_set_row(panels, 0, NULL, C);
                memset(x, 0, sizeof(float) * (size_t)C);
                float *copy = malloc(sizeof(float) * panel_floats((size_t)N, C));
                for (size_t i = 0; i < panel_floats((size_t)N, C); i++) copy[i] = 7.0f;
                panel_copy_rows(copy, panels, (size_t)N - 1, C);
                panel_matmul_forward(out, (size_t)N, inp, copy, 0, N - 1, 3, C);
                double e = max_err(out, (size_t)N, inp, x, 0, N - 1, 3, C);
                CHECK_MSG(e < 1e-5 * C, "N %d C %d: copied rows, max error %g", N, C, e);
                // row N - 1 was not copied: it keeps the 7s
                panel_matmul_forward(out, 1, inp, copy, (size_t)(N - 1) / 16 * 16, (N - 1) % 16 + 1,
                                     1, C);
                float ones = 0;
                for (int c = 0; c < C; c++) ones += 7.0f * inp[c];
                CHECK(fabsf(out[(N - 1) % 16] - ones) < 1e-3f * C);
                panel_matmul_forward(out, (size_t)N, inp, panels, 0, N, 2, C);
                e = max_err(out, (size_t)N, inp, x, 0, N, 2, C);
                CHECK_MSG(e < 1e-5 * C, "N %d C %d: after set_row, max error %g", N, C, e);
                free(row), free(copy);
            }
            free(x), free(panels), free(inp), free(out);
        }
    return check_done();
}
