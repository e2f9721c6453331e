/* half.h - IEEE binary16 (F16) and bfloat16 (BF16) <-> float32 conversions.
 *
 * Every float -> 16-bit conversion rounds to nearest, ties to even, as torch and numpy do; values
 * beyond the F16 range become infinity, NaN stays NaN (quiet). 16-bit -> float is exact. The
 * array forms use the CPU's F16C instructions when the build enables them and give the same bits
 * as the scalar forms.
 */
#ifndef SSNA_MODEL_HALF_H
#define SSNA_MODEL_HALF_H

#include <stddef.h>
#include <stdint.h>

/* binary16 bits -> float (exact). */
float half_to_float(uint16_t h);
/* float -> binary16 bits, round to nearest even; overflow -> +-inf. */
uint16_t half_from_float(float f);
/* bfloat16 bits -> float (exact). */
float bf16_to_float(uint16_t b);
/* float -> bfloat16 bits, round to nearest even. */
uint16_t bf16_from_float(float f);

/* dst[i] = half_to_float(src[i]) for i < n.   src: [n], dst: [n] */
void half_to_float_array(const uint16_t *src, float *dst, size_t n);
/* dst[i] = half_from_float(src[i]) for i < n.  src: [n], dst: [n] */
void half_from_float_array(const float *src, uint16_t *dst, size_t n);
/* dst[i] = bf16_to_float(src[i]) for i < n.    src: [n], dst: [n] */
void bf16_to_float_array(const uint16_t *src, float *dst, size_t n);

#endif
