/* test_panel.c - int8 panels (model/panel.h): every upper bound is at least the exact score
 * (panel_dot) and within about twice the quantisation error of it (a bound off by a wrong
 * product or sign would be far from it); partial panels (N not a multiple of 16), user counts
 * around the kernel's 8-row blocking, offsets n0, columns not a multiple of 4, rows sharing a
 * large common direction with the users (the axis), zero rows, growth, single-row updates and
 * copies; panel_dot against a double dot product. Built twice: with the machine's kernel (VNNI
 * where the compiler targets it) and, as test_panel_generic, with the plain loop. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "model/panel.h"
#include "model/rng.h"

// rows n0 .. n0 + N of x: [*, C] against inp: [B, C]: bounds >= panel_dot, not far above it.
// Rows from `rows` on were never set and are not checked. Returns the worst slack over the
// reference error allowance (<= 1 passes).
static double check_block(const Panels *p, const float *x, size_t rows, const float *inp, size_t n0,
                          int N, int B, int C) {
    float *upper = malloc(sizeof(float) * (size_t)B * (size_t)(N + 3));
    panel_upper_forward(upper, (size_t)N + 3, inp, p, n0, N, B);
    const float *m = p->axis;
    double worst = 0;
    for (int b = 0; b < B; b++) {
        const float *u = inp + (size_t)b * C;
        double a = 0, ul1 = 0, um1 = 0, vl1 = 0, vamax = 0; // u = a m + v
        for (int c = 0; c < C; c++) a += (double)u[c] * m[c], um1 += fabs((double)u[c] * m[c]);
        for (int c = 0; c < C; c++) {
            double v = u[c] - a * m[c];
            ul1 += fabs(u[c]), vl1 += fabs(v), vamax = fmax(vamax, fabs(v));
        }
        for (int j = 0; j < N && n0 + (size_t)j < rows; j++) {
            size_t n = n0 + (size_t)j;
            const float *xn = x + n * C;
            float up = upper[(size_t)b * ((size_t)N + 3) + j];
            double al = 0, xm1 = 0, xmax = 0, ramax = 0, rl1 = 0; // x = al m + r
            for (int c = 0; c < C; c++)
                al += (double)xn[c] * m[c], xm1 += fabs((double)xn[c] * m[c]);
            for (int c = 0; c < C; c++) {
                double r = xn[c] - al * m[c];
                ramax = fmax(ramax, fabs(r)), rl1 += fabs(r), xmax = fmax(xmax, fabs(xn[c]));
            }
            float exact = panel_dot(u, xn, C);
            CHECK_MSG(up >= exact, "row %zu user %d C %d: bound %.9g below the score %.9g", n, b, C,
                      up, exact);
            // |v.r - int8 product| <= s |v|_1 / 2 + t |r|_1 / 2 (s, t: max / 127), and the bound
            // adds that much again: 2x it, a little for r's own rounding, and float slack
            double err = ramax / 127 * vl1 / 2 + vamax / 127 * rl1 / 2;
            double slack =
                (up - exact) /
                (2.05 * err + 1e-4 * (um1 * fabs(al) + fabs(a) * xm1 + ul1 * (xmax + fabs(al))) +
                 1e-7);
            if (slack > worst) worst = slack;
        }
    }
    free(upper);
    return worst;
}

int main(void) {
    uint64_t rng = 42;
    // panel_dot: every C, against double
    for (int C = 1; C <= 300; C += 13) {
        float u[300], x[300];
        rng_fill_normal(u, (size_t)C, 0, 1, &rng);
        rng_fill_normal(x, (size_t)C, 0, 1, &rng);
        double ref = 0, mag = 0;
        for (int c = 0; c < C; c++) ref += (double)u[c] * x[c], mag += fabs((double)u[c] * x[c]);
        CHECK_MSG(fabs(panel_dot(u, x, C) - ref) <= 1e-6 * mag, "panel_dot C %d", C);
    }

    const int Ns[] = {1, 15, 16, 17, 100, 1000}, Bs[] = {1, 7, 8, 9, 20}, Cs[] = {3, 64, 256, 258};
    double worst = 0;
    for (size_t ci = 0; ci < sizeof Cs / sizeof *Cs; ci++)
        for (size_t ni = 0; ni < sizeof Ns / sizeof *Ns; ni++) {
            int C = Cs[ci], N = Ns[ni];
            float *x = malloc(sizeof(float) * (size_t)N * C);
            float *inp = malloc(sizeof(float) * 20 * (size_t)C);
            // a common direction in the rows and the users (what the axis takes out: the
            // allowance above is computed off it, so a bound that ignored the axis would exceed
            // it) plus rows of different magnitudes; one row with a large outlier; users with zeros
            float common[300];
            rng_fill_normal(common, (size_t)C, 0, 1, &rng);
            rng_fill_normal(x, (size_t)N * C, 0, 1, &rng);
            for (int n = 0; n < N; n++)
                for (int c = 0; c < C; c++)
                    x[(size_t)n * C + c] =
                        2 * common[c] + x[(size_t)n * C + c] * (float)(1 + n % 5) * 0.1f;
            x[(size_t)(N / 2) * C] = 9.0f;
            rng_fill_normal(inp, 20 * (size_t)C, 0, 1, &rng);
            for (int b = 0; b < 20; b++)
                for (int c = 0; c < C; c++) inp[(size_t)b * C + c] += (float)(b % 4) * common[c];
            inp[0] = 0, inp[(size_t)C - 1] = 0;
            Panels p = {0};
            CHECK(panel_reserve(&p, (size_t)N, C) == 0);
            CHECK(p.cap % PANEL_WIDTH == 0 && p.cap >= (size_t)N);
            CHECK(panel_reserve(&p, (size_t)N, C + 1) == -1); // C is fixed by the first call
            panel_pack(&p, x, (size_t)N);
            for (size_t bi = 0; bi < sizeof Bs / sizeof *Bs; bi++) {
                double s = check_block(&p, x, (size_t)N, inp, 0, (int)p.cap, Bs[bi], C);
                if (N > 32) // a block that starts at panel 2 and ends mid-panel
                    s = fmax(s, check_block(&p, x, (size_t)N, inp, 32, N - 37, Bs[bi], C));
                worst = fmax(worst, s);
            }
            // grow, set the rows added (the last one random, the others zero), clear row 0; copy
            // rows [0, N) and the axis elsewhere and set the rest there: the same bounds
            CHECK(panel_reserve(&p, (size_t)N + 40, C) == 0);
            float *x2 = calloc((size_t)(N + 40) * C, sizeof(float));
            memcpy(x2, x, sizeof(float) * (size_t)N * C);
            rng_fill_normal(x2 + (size_t)(N + 39) * C, (size_t)C, 0, 1, &rng);
            for (int n = N; n < N + 40; n++) panel_set_row(&p, (size_t)n, x2 + (size_t)n * C);
            memset(x2, 0, sizeof(float) * (size_t)C);
            panel_set_row(&p, 0, NULL);
            worst = fmax(worst, check_block(&p, x2, (size_t)N + 40, inp, 0, N + 40, 9, C));
            Panels q = {0};
            CHECK(panel_reserve(&q, (size_t)N + 40, C) == 0);
            panel_copy_rows(&q, &p, (size_t)N);
            CHECK(memcmp(q.axis, p.axis, sizeof(float) * (size_t)C) == 0);
            for (int n = N; n < N + 40; n++) panel_set_row(&q, (size_t)n, x2 + (size_t)n * C);
            float *a = malloc(sizeof(float) * 3 * (size_t)(N + 40));
            float *b = malloc(sizeof(float) * 3 * (size_t)(N + 40));
            panel_upper_forward(a, (size_t)N + 40, inp, &p, 0, N + 40, 3);
            panel_upper_forward(b, (size_t)N + 40, inp, &q, 0, N + 40, 3);
            CHECK_MSG(memcmp(a, b, sizeof(float) * 3 * (size_t)(N + 40)) == 0,
                      "copied rows differ (N %d C %d)", N, C);
            panel_free(&p), panel_free(&q);
            CHECK(p.q == NULL && p.cap == 0);
            free(x), free(x2), free(inp), free(a), free(b);
        }
    CHECK_MSG(worst <= 1.0, "a bound is %.3fx its reference error above the score", worst);
    printf("test_panel: bounds within %.3f of their allowance\n", worst);
    return check_done();
}
