/* rng.c - splitmix64: tiny state, good statistical quality, trivially reproducible by seed. */
#include "model/rng.h"

#include <math.h>

uint64_t rng_next(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

float rng_uniform(uint64_t *state) {
    /* top 24 bits: every value exactly representable, never 1.0 */
    return (float)(rng_next(state) >> 40) * (1.0f / 16777216.0f);
}

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
