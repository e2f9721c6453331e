/* rng.h - seeded, reproducible random numbers (splitmix64 state, one uint64_t). */
#ifndef SSNA_MODEL_RNG_H
#define SSNA_MODEL_RNG_H

#include <stddef.h>
#include <stdint.h>

#define RNG_GAMMA 0x9E3779B97F4A7C15ull

static inline uint64_t rng_mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
/* Next 64 random bits; advances *state. Inline: dropout masks draw one per activation. */
static inline uint64_t rng_next(uint64_t *state) {
    return rng_mix(*state += RNG_GAMMA);
}
/* The bits the (i + 1)-th rng_next from `state` would return, without the i draws before it:
 * the state only counts, so a long stream splits over threads into the same numbers. */
static inline uint64_t rng_at(uint64_t state, uint64_t i) {
    return rng_mix(state + (i + 1) * RNG_GAMMA);
}
/* Uniform in [0, 1) from 64 random bits: the top 24, so every value is exactly representable and
 * never 1.0. */
static inline float rng_unit(uint64_t bits) {
    return (float)(bits >> 40) * (1.0f / 16777216.0f);
}
static inline float rng_uniform(uint64_t *state) {
    return rng_unit(rng_next(state));
}
/* Standard normal (Box-Muller). */
float rng_normal(uint64_t *state);
/* Fill x[0..n) with N(mean, std). */
void rng_fill_normal(float *x, size_t n, float mean, float std, uint64_t *state);
/* Fill x[0..n) with U(lo, hi). */
void rng_fill_uniform(float *x, size_t n, float lo, float hi, uint64_t *state);

#endif
