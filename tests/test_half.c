/* F16/BF16 conversions: exact on every representable value, round-to-nearest-even between them,
 * overflow and NaN rules, and the vectorised array forms bit-identical to the scalar ones. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "model/half.h"
#include "model/rng.h"

static int is_nan_half(uint16_t h) {
    return (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
}

static uint32_t bits(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    return x;
}

int main(void) {
    /* every finite/inf binary16 value survives a round trip through float */
    int roundtrip_bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        if (is_nan_half((uint16_t)h)) {
            roundtrip_bad += !isnan(half_to_float((uint16_t)h));
            continue;
        }
        roundtrip_bad += half_from_float(half_to_float((uint16_t)h)) != h;
    }
    CHECK_MSG(roundtrip_bad == 0, "%d values changed", roundtrip_bad);

    /* the decoded value is the IEEE value: sign * 2^(e-15) * 1.m, or 2^-14 * 0.m */
    int value_bad = 0;
    for (uint32_t h = 0; h < 0x7c00; h++) {
        int e = (int)(h >> 10), m = (int)(h & 0x3ff);
        double want = e ? ldexp(1.0 + m / 1024.0, e - 15) : ldexp(m / 1024.0, -14);
        value_bad += (double)half_to_float((uint16_t)h) != want;
        value_bad += (double)half_to_float((uint16_t)(h | 0x8000)) != -want;
    }
    CHECK_MSG(value_bad == 0, "%d decoded values differ from the IEEE formula", value_bad);

    /* midpoints between neighbours round to the even one; a hair above/below goes to the
     * nearer one. Covers subnormals, normals and the largest finite values. */
    int mid_bad = 0;
    for (uint32_t h = 0; h < 0x7bff; h++) {
        double lo = half_to_float((uint16_t)h), hi = half_to_float((uint16_t)(h + 1));
        float mid = (float)((lo + hi) / 2); /* exact: halves have 11 significant bits */
        uint16_t even = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
        mid_bad += half_from_float(mid) != even;
        mid_bad += half_from_float(nextafterf(mid, INFINITY)) != h + 1;
        mid_bad += half_from_float(nextafterf(mid, -INFINITY)) != h;
        mid_bad += half_from_float(-mid) != (even | 0x8000);
    }
    CHECK_MSG(mid_bad == 0, "%d rounding cases wrong", mid_bad);

    /* range ends */
    CHECK(half_from_float(65504.0f) == 0x7bff);
    CHECK(half_from_float(65519.996f) == 0x7bff);
    CHECK(half_from_float(65520.0f) == 0x7c00);
    CHECK(half_from_float(-1e30f) == 0xfc00);
    CHECK(half_from_float(INFINITY) == 0x7c00);
    CHECK(is_nan_half(half_from_float(NAN)));
    CHECK(half_from_float(0x1p-25f) == 0);                /* tie to even zero */
    CHECK(half_from_float(nextafterf(0x1p-25f, 1)) == 1); /* just above: smallest subnormal */
    CHECK(half_from_float(1e-30f) == 0 && half_from_float(-1e-30f) == 0x8000);
    CHECK(half_from_float(1.0f) == 0x3c00 && half_to_float(0x3c00) == 1.0f);

    /* bf16: exact round trip of every non-NaN value; ties to even */
    int bf_bad = 0;
    for (uint32_t b = 0; b < 65536; b++) {
        float f = bf16_to_float((uint16_t)b);
        if (isnan(f)) continue;
        bf_bad += bf16_from_float(f) != b;
        bf_bad += bits(f) != b << 16;
    }
    CHECK_MSG(bf_bad == 0, "%d bf16 values wrong", bf_bad);
    CHECK(bf16_from_float(bf16_to_float(0x3f80) + 0x1p-8f) == 0x3f80); /* 1 + half ulp -> 1 */
    CHECK(bf16_from_float(bf16_to_float(0x3f81) + 0x1p-8f) == 0x3f82); /* odd + half -> even */
    CHECK(isnan(bf16_to_float(bf16_from_float(NAN))));

    /* array forms (F16C when compiled in) equal the scalar ones on random floats over the whole
     * F16 range, including subnormals and overflow, at lengths that exercise the tail loop */
    enum { N = 100003 };
    static float src[N], back[N], back_ref[N];
    static uint16_t h_arr[N];
    uint64_t rng = 7;
    for (int i = 0; i < N; i++) {
        float mag = ldexpf(rng_uniform(&rng), (int)(rng_next(&rng) % 44) - 28);
        src[i] = (rng_next(&rng) & 1) ? -mag : mag;
    }
    half_from_float_array(src, h_arr, N);
    int arr_bad = 0;
    for (int i = 0; i < N; i++) arr_bad += h_arr[i] != half_from_float(src[i]);
    CHECK_MSG(arr_bad == 0, "%d array conversions differ from scalar", arr_bad);
    half_to_float_array(h_arr, back, N);
    for (int i = 0; i < N; i++) back_ref[i] = half_to_float(h_arr[i]);
    CHECK(memcmp(back, back_ref, sizeof back) == 0);
    uint16_t b_arr[9] = {0x3f80, 0xbf80, 0, 0x8000, 0x7f80, 0x4049, 0x0001, 0x3eaa, 0xc2f7};
    float bf[9];
    bf16_to_float_array(b_arr, bf, 9);
    int bfa_bad = 0;
    for (int i = 0; i < 9; i++) bfa_bad += bits(bf[i]) != bits(bf16_to_float(b_arr[i]));
    CHECK(bfa_bad == 0);
    return check_done();
}
