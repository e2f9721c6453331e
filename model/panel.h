/* panel.h - item vectors in int8 panels: cheap upper bounds on the scores of a few users against
 * every item, so that only items which could enter a top-k are scored exactly.
 *
 * Serving scores every item of the catalogue for a handful of users per turn: u x^T with x [N, C]
 * large and u [B, C] small. In float that streams the whole catalogue (17 MB for the Games items
 * at C = 256) through the cores for every batch of users. Here each row of x is kept as int8 with
 * one scale per row, in panels of PANEL_WIDTH rows: [ceil(N / 16), ceil(C / 4), 16, 4] bytes, so
 * one 64-byte load holds 4 columns of 16 rows, the operand of one AVX-512 VNNI dot-product
 * instruction (4x the multiply-adds of a float FMA, a quarter of the bytes). Item vectors share a
 * large common direction (and so do the user vectors made from them): each row is split into its
 * float component along an axis shared by all rows (their mean's direction when packed) and the
 * rest, and only the rest is quantised; users are split the same way. The error bound then scales
 * with what differs between items and users, not with what they share. The integer products
 * plus a bound on the quantisation error give, for every row, a value that is never below the
 * exact float score (panel_dot); the caller scores exactly only the rows whose bound beats its
 * current k-th best, so its lists are those of exhaustive exact scoring.
 */
#ifndef SSNA_MODEL_PANEL_H
#define SSNA_MODEL_PANEL_H

#include <stddef.h>
#include <stdint.h>

#define PANEL_WIDTH 16
#define PANEL_MAX_C 4096 // columns the bound kernel takes (its quantised users live on the stack)

typedef struct {
    uint8_t *q;   // [cap / 16, ceil(C / 4), 16, 4]: round(r / scale) + 128, in 1..255
    float *scale; // [cap] per row: max |r_c| / 127, r the row off the axis (0 for a zero row)
    float *l1;    // [cap] per row: sum over c of |scale * (q - 128)|, the int8 part's L1 norm
    float *along; // [cap] per row: x . axis, in float
    float *xmax;  // [cap] per row: max |x_c| (for the float rounding terms of the bound)
    float *xm1;   // [cap] per row: sum |x_c axis_c| (the same)
    float *axis;  // [C] a unit vector, or zero until panel_pack: the direction kept in float
    size_t cap;   // rows allocated, a multiple of PANEL_WIDTH
    int C;
} Panels;

/* Room for at least N rows of C columns; rows added are zero until set. The first call fixes C.
 * On failure (-1, out of memory) p is unchanged. */
int panel_reserve(Panels *p, size_t N, int C);
void panel_free(Panels *p);
// row n of p <- row: [C] quantised (a zero row when row is NULL); n < p->cap
void panel_set_row(Panels *p, size_t n, const float *row);
// the axis <- the direction of the mean of x: [N, C], then rows [0, N) of p <- x; N <= p->cap.
// The rows after N are stale (split along the old axis) until set again.
void panel_pack(Panels *p, const float *x, size_t N);
// rows [0, N) and the axis of dst <- those of src (same C, both with room); the other rows of
// dst are stale until set again (panel_set_row)
void panel_copy_rows(Panels *dst, const Panels *src, size_t N);
// upper: [B, N] with row stride ldo; upper[b, j] >= panel_dot(inp[b], x[n0 + j]) for every row
// x that p holds quantised, with inp: [B, C], C <= PANEL_MAX_C; n0 a multiple of PANEL_WIDTH
void panel_upper_forward(float *upper, size_t ldo, const float *inp, const Panels *p, size_t n0,
                         int N, int B);
// The exact score of one row, x: [C] . u: [C] in float: 16 running sums (c mod 16), added in a
// fixed order. Every score a list carries comes from here.
float panel_dot(const float *u, const float *x, int C);

#endif
