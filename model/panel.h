/* panel.h - a matrix that is scored against a few rows at a time, stored in the layout the
 * scoring kernel reads.
 *
 * Serving scores every item of the catalogue for a handful of users per turn: out = u x^T with
 * x [N, C] large and u [B, C] small. cblas_sgemm repacks x on every call: at B = 8 users and the
 * Games catalogue it takes 3x as long as this kernel, at B = 128 the two are level
 * (ops/bench/kernels prints both). Kept in panels of PANEL_WIDTH rows,
 * x [N, C] is stored as [ceil(N / 16), C, 16]: rows n..n+15 of column c are contiguous, one vector
 * load, so the kernel streams x once per call and never repacks it.
 */
#ifndef SSNA_MODEL_PANEL_H
#define SSNA_MODEL_PANEL_H

#include <stddef.h>

#define PANEL_WIDTH 16

/* Floats held by x [N, C] in panel layout (N rounded up to a multiple of PANEL_WIDTH). */
size_t panel_floats(size_t N, int C);
// panels: [ceil(N / 16), C, 16] <- x: [N, C]; the rows that round N up are zero
void panel_pack(float *panels, const float *x, size_t N, int C);
// row n of panels <- row: [C]  (zero when row is NULL)
void panel_set_row(float *panels, size_t n, const float *row, int C);
// rows [0, N) of dst <- the same rows of src (both panels of C columns); other rows untouched
void panel_copy_rows(float *dst, const float *src, size_t N, int C);
// out: [B, N] with row stride ldo = inp: [B, C] x x[n0 : n0 + N, C]^T, x in panels; n0 is a
// multiple of PANEL_WIDTH. Same sums in the same order as a plain dot product over c.
void panel_matmul_forward(float *out, size_t ldo, const float *inp, const float *panels, size_t n0,
                          int N, int B, int C);

#endif
