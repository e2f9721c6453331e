/* test_ssna_serving.c - the serving shortcut of the user tower (last_only: the last block runs
 * only for each row's last position, with a one-query attention) against the full tower's last
 * positions, on the same weights and inputs: rows of length 1 .. 50 in one batch. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "model/ssna.h"
#include "model/ssna_internal.h"

#define N_ITEMS 300
#define HIDDEN  48
#define B       23

static uint64_t rng = 12345;
static float frand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 40) & 0xffffff) / 16777216.0f - 0.5f;
}

int main(void) {
    char err[512];
    SsnaModel m;
    SsnaConfig cfg = ssna_config_default(SSNA_VARIANT_GRU, N_ITEMS, HIDDEN, 2);
    CHECK_MSG(ssna_create(&m, &cfg, 3, err, sizeof err) == 0, "%s", err);
    int d = cfg.d, offsets[B + 1] = {0};
    for (int b = 0; b < B; b++) offsets[b + 1] = offsets[b] + 1 + (b * 17) % cfg.max_len;
    int N = offsets[B];
    float *vin = malloc(sizeof(float) * (size_t)N * d), *full = malloc(sizeof(float) * N * d);
    float *last = malloc(sizeof(float) * B * d);
    for (int i = 0; i < N * d; i++) vin[i] = frand();
    CHECK(ssna_user_forward(&m, B, offsets, vin, 0, 0, full, err, sizeof err) == 0);
    CHECK(ssna_user_forward(&m, B, offsets, vin, 0, 1, last, err, sizeof err) == 0);
    double worst = 0;
    for (int b = 0; b < B; b++)
        for (int j = 0; j < d; j++) {
            double x = full[(size_t)(offsets[b + 1] - 1) * d + j], y = last[(size_t)b * d + j];
            if (fabs(x - y) > worst) worst = fabs(x - y);
        }
    fprintf(stderr, "last-only vs full tower: max |diff| %.3g over %d rows\n", worst, B);
    CHECK_MSG(worst < 1e-5, "max |diff| %g", worst);
    free(vin), free(full), free(last);
    ssna_free(&m);
    return check_done();
}
