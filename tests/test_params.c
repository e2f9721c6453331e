/* test_params.c - the parameter block: declare/alloc/find, zero_grad, Adam by hand, and the
 * checkpoint blob (bit-exact round trip; truncated, corrupted and mismatched blobs rejected). */
#include <string.h>

#include "check.h"
#include "model/params.h"
#include "model/rng.h"

/* A two-tensor set as a model would declare it; 0 on success. */
static int make_set(ParamSet *ps, const char *second_name, int rows, int cols) {
    char err[256];
    int shape_w[2] = {rows, cols}, shape_b[1] = {cols};
    params_init(ps);
    if (params_declare(ps, "layer.weight", 2, shape_w, err, sizeof(err)) != 0) return -1;
    if (params_declare(ps, second_name, 1, shape_b, err, sizeof(err)) != 1) return -1;
    return params_alloc(ps, err, sizeof(err));
}

static void fill(ParamSet *ps, uint64_t seed) {
    rng_fill_normal(ps->params, ps->total, 0.0f, 1.0f, &seed);
    rng_fill_normal(ps->grads, ps->total, 0.0f, 1.0f, &seed);
    rng_fill_normal(ps->m, ps->total, 0.0f, 1.0f, &seed);
    rng_fill_uniform(ps->v, ps->total, 0.0f, 1.0f, &seed);
    ps->step = 17;
}

static void test_declare_alloc_find(void) {
    ParamSet ps;
    char err[256] = "";
    CHECK(make_set(&ps, "layer.bias", 3, 4) == 0);
    CHECK(ps.ntensors == 2 && ps.total == 16);
    CHECK(params_find(&ps, "layer.bias") == 1);
    CHECK(params_find(&ps, "layer.weight") == 0);
    CHECK(params_find(&ps, "nope") == -1);
    CHECK(params_data(&ps, 1) == ps.params + 12);
    CHECK(params_grad(&ps, 1) == ps.grads + 12);
    int zero_filled = 1;
    for (size_t i = 0; i < ps.total; i++)
        zero_filled &=
            ps.params[i] == 0.0f && ps.grads[i] == 0.0f && ps.m[i] == 0.0f && ps.v[i] == 0.0f;
    CHECK(zero_filled);
    int shape[1] = {2};
    CHECK(params_declare(&ps, "late", 1, shape, err, sizeof(err)) == -1);
    CHECK_MSG(strstr(err, "late") != NULL, "error does not name the tensor: %s", err);
    params_free(&ps);

    params_init(&ps);
    CHECK(params_declare(&ps, "a", 1, shape, err, sizeof(err)) == 0);
    CHECK(params_declare(&ps, "a", 1, shape, err, sizeof(err)) == -1); // duplicate
    CHECK(strstr(err, "already") != NULL);
    int bad_shape[2] = {3, 0};
    CHECK(params_declare(&ps, "b", 2, bad_shape, err, sizeof(err)) == -1);
    CHECK(params_declare(&ps, "c", 5, bad_shape, err, sizeof(err)) == -1); // ndim > max
    char long_name[PARAM_NAME_MAX + 8];
    memset(long_name, 'x', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    CHECK(params_declare(&ps, long_name, 1, shape, err, sizeof(err)) == -1);
    // growth past the initial capacity keeps offsets contiguous
    for (int i = 0; i < 40; i++) {
        char name[32];
        snprintf(name, sizeof(name), "t%d", i);
        CHECK(params_declare(&ps, name, 1, shape, err, sizeof(err)) == i + 1);
    }
    CHECK(params_alloc(&ps, err, sizeof(err)) == 0);
    CHECK(ps.tensors[40].offset == 80 && ps.total == 82);
    params_free(&ps);
}

static void test_zero_grad(void) {
    ParamSet ps;
    CHECK(make_set(&ps, "layer.bias", 3, 4) == 0);
    fill(&ps, 1);
    float p0 = ps.params[5];
    params_zero_grad(&ps);
    int all_zero = 1;
    for (size_t i = 0; i < ps.total; i++) all_zero &= ps.grads[i] == 0.0f;
    CHECK(all_zero);
    CHECK(ps.params[5] == p0); // parameters untouched
    params_free(&ps);
}

/* Adam against the PyTorch update written out in double for a single element. */
static void test_adam_by_hand(void) {
    ParamSet ps;
    CHECK(make_set(&ps, "layer.bias", 1, 1) == 0);
    AdamConfig cfg = adam_defaults();
    CHECK(cfg.lr == 1e-3f && cfg.beta1 == 0.9f && cfg.beta2 == 0.999f && cfg.eps == 1e-8f);
    cfg.lr = 0.1f, cfg.weight_decay = 0.01f;
    double p = 0.5, m = 0.0, v = 0.0;
    ps.params[0] = 0.5f;
    for (int t = 1; t <= 3; t++) {
        double g = 0.3 * t - 0.4;
        ps.grads[0] = (float)g;
        adam_step(&ps, &cfg);
        g += 0.01 * p;
        m = 0.9 * m + 0.1 * g;
        v = 0.999 * v + 0.001 * g * g;
        p -= 0.1 / (1 - pow(0.9, t)) * m / (sqrt(v) / sqrt(1 - pow(0.999, t)) + 1e-8);
        CHECK_CLOSE(ps.params[0], p, 1e-6, 1e-5);
    }
    CHECK(ps.step == 3);
    params_free(&ps);
}

static void test_round_trip(void) {
    ParamSet a, b;
    char err[256] = "";
    CHECK(make_set(&a, "layer.bias", 3, 4) == 0);
    CHECK(make_set(&b, "layer.bias", 3, 4) == 0);
    fill(&a, 2);
    void *blob = NULL;
    size_t len = params_serialize(&a, &blob);
    CHECK(len > 0 && blob != NULL);
    CHECK_MSG(params_deserialize(&b, blob, len, err, sizeof(err)) == 0, "%s", err);
    size_t bytes = a.total * sizeof(float);
    CHECK(memcmp(a.params, b.params, bytes) == 0);
    CHECK(memcmp(a.m, b.m, bytes) == 0);
    CHECK(memcmp(a.v, b.v, bytes) == 0);
    CHECK(b.step == 17);

    // every truncation is rejected and leaves the target untouched
    fill(&b, 3);
    float before = b.params[0];
    int all_rejected = 1;
    for (size_t cut = 0; cut < len; cut++)
        all_rejected &= params_deserialize(&b, blob, cut, err, sizeof(err)) == -1;
    CHECK(all_rejected);
    CHECK(b.params[0] == before);
    CHECK(params_deserialize(&b, blob, len - 1, err, sizeof(err)) == -1);
    CHECK_MSG(strstr(err, "truncated") != NULL, "unclear error: %s", err);

    // a flipped bit in the data is caught by the checksum
    unsigned char *bytes_p = blob;
    bytes_p[len - 20] ^= 0x10;
    CHECK(params_deserialize(&b, blob, len, err, sizeof(err)) == -1);
    CHECK_MSG(strstr(err, "checksum") != NULL, "unclear error: %s", err);
    bytes_p[len - 20] ^= 0x10;
    bytes_p[0] = 'X';
    CHECK(params_deserialize(&b, blob, len, err, sizeof(err)) == -1);
    CHECK_MSG(strstr(err, "magic") != NULL, "unclear error: %s", err);
    free(blob);
    params_free(&a);
    params_free(&b);
}

static void test_mismatch(void) {
    ParamSet a, renamed, reshaped;
    char err[256] = "";
    CHECK(make_set(&a, "layer.bias", 3, 4) == 0);
    CHECK(make_set(&renamed, "layer.beta", 3, 4) == 0);
    // same names and total (16 floats), weight [4, 3] instead of [3, 4]
    int shape_w[2] = {4, 3}, shape_b[1] = {4};
    params_init(&reshaped);
    CHECK(params_declare(&reshaped, "layer.weight", 2, shape_w, err, sizeof(err)) == 0);
    CHECK(params_declare(&reshaped, "layer.bias", 1, shape_b, err, sizeof(err)) == 1);
    CHECK(params_alloc(&reshaped, err, sizeof(err)) == 0);
    fill(&a, 4);
    void *blob = NULL;
    size_t len = params_serialize(&a, &blob);
    CHECK(params_deserialize(&renamed, blob, len, err, sizeof(err)) == -1);
    CHECK_MSG(strstr(err, "layer.bias") && strstr(err, "layer.beta"), "unclear error: %s", err);
    CHECK(params_deserialize(&reshaped, blob, len, err, sizeof(err)) == -1);
    CHECK_MSG(strstr(err, "layer.weight") && strstr(err, "shape"), "unclear error: %s", err);
    ParamSet unallocated;
    params_init(&unallocated);
    CHECK(params_deserialize(&unallocated, blob, len, err, sizeof(err)) == -1);
    // params_blob_fits: the layout alone (names, shapes), as params_deserialize checks it
    ParamSet same, wider;
    CHECK(make_set(&same, "layer.bias", 3, 4) == 0);
    CHECK(make_set(&wider, "layer.bias", 3, 5) == 0);
    CHECK(params_blob_fits(&same, blob, len) == 1);
    CHECK(params_blob_fits(&wider, blob, len) == 0);
    CHECK(params_blob_fits(&renamed, blob, len) == 0);
    CHECK(params_blob_fits(&reshaped, blob, len) == 0);
    CHECK(params_blob_fits(&same, blob, 20) == 0); // the header cut short
    ((unsigned char *)blob)[len - 20] ^= 0x10;     // a corrupted value: the layout still fits
    CHECK(params_blob_fits(&same, blob, len) == 1);
    CHECK(params_deserialize(&same, blob, len, err, sizeof(err)) == -1);
    params_free(&same);
    params_free(&wider);
    free(blob);
    params_free(&a);
    params_free(&renamed);
    params_free(&reshaped);
}

int main(void) {
    test_declare_alloc_find();
    test_zero_grad();
    test_adam_by_hand();
    test_round_trip();
    test_mismatch();
    return check_done();
}
