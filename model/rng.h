/* rng.h - seeded, reproducible random numbers (splitmix64 state, one uint64_t). */
#ifndef SSNA_MODEL_RNG_H
#define SSNA_MODEL_RNG_H

#include <stddef.h>
#include <stdint.h>

/* Next 64 random bits; advances *state. */
uint64_t rng_next(uint64_t *state);
/* Uniform in [0, 1). */
float rng_uniform(uint64_t *state);
/* Standard normal (Box-Muller). */
float rng_normal(uint64_t *state);
/* Fill x[0..n) with N(mean, std). */
void rng_fill_normal(float *x, size_t n, float mean, float std, uint64_t *state);
/* Fill x[0..n) with U(lo, hi). */
void rng_fill_uniform(float *x, size_t n, float lo, float hi, uint64_t *state);

#endif
