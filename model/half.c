/* half.c - F16/BF16 conversions. The scalar forms are the reference; the F16C array path exists
 * because the encoder converts tens of millions of weights at load and the store converts every
 * cached item state on read. */
#include "model/half.h"

#include <string.h>

#if defined(__F16C__)
#include <immintrin.h>
#endif

static uint32_t float_bits(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    return x;
}

static float bits_float(uint32_t x) {
    float f;
    memcpy(&f, &x, sizeof f);
    return f;
}

float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    if (exp == 0) {
        /* zero or subnormal: man * 2^-24, exact in float */
        float v = (float)man * 0x1p-24f;
        return bits_float(float_bits(v) | sign);
    }
    if (exp == 31) return bits_float(sign | 0x7f800000u | (man << 13));
    return bits_float(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t half_from_float(float f) {
    uint32_t x = float_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) {
        /* inf stays inf; NaN keeps its top payload bits and is forced quiet */
        if (absx == 0x7f800000u) return sign | 0x7c00;
        return (uint16_t)(sign | 0x7e00 | ((absx >> 13) & 0x3ff));
    }
    if (absx >= 0x477ff000u) return sign | 0x7c00; /* >= 65520 rounds past 65504 */
    if (absx >= 0x38800000u) {
        /* normal: rebias the exponent, then round the 13 dropped bits to nearest even; a carry
         * out of the mantissa correctly bumps the exponent */
        uint32_t v = absx - (112u << 23);
        v += 0xfffu + ((v >> 13) & 1);
        return (uint16_t)(sign | (v >> 13));
    }
    /* subnormal result: value / 2^-24 rounded to nearest even integer */
    uint32_t e = absx >> 23;
    if (e < 102) return sign; /* below 2^-25 (ties at 2^-25 go to the even 0) */
    uint32_t m = (absx & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - e; /* 14..24 */
    uint32_t q = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1);
    uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (q & 1))) q++;
    return (uint16_t)(sign | q);
}

float bf16_to_float(uint16_t b) {
    return bits_float((uint32_t)b << 16);
}

uint16_t bf16_from_float(float f) {
    uint32_t x = float_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);
    x += 0x7fffu + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

void half_to_float_array(const uint16_t *src, float *dst, size_t n) {
    size_t i = 0;
#if defined(__F16C__)
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
#endif
    for (; i < n; i++) dst[i] = half_to_float(src[i]);
}

void half_from_float_array(const float *src, uint16_t *dst, size_t n) {
    size_t i = 0;
#if defined(__F16C__)
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
#endif
    for (; i < n; i++) dst[i] = half_from_float(src[i]);
}

void bf16_to_float_array(const uint16_t *src, float *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = bf16_to_float(src[i]);
}
