/* rng.c - splitmix64: tiny state, good statistical quality, trivially reproducible by seed. */
#include "model/rng.h"

#include <math.h>

float rng_normal(uint64_t *state) {
    /* Box-Muller; u1 in (0, 1] so log() is finite */
    float u1 = 1.0f - rng_uniform(state);
    float u2 = rng_uniform(state);
    return sqrtf(-2.0f * logf(u1)) * cosf(6.28318530717958647692f * u2);
}

void rng_fill_normal(float *x, size_t n, float mean, float std, uint64_t *state) {
    for (size_t i = 0; i < n; i++) x[i] = mean + std * rng_normal(state);
}

void rng_fill_uniform(float *x, size_t n, float lo, float hi, uint64_t *state) {
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * rng_uniform(state);
}
