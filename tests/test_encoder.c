/* Frozen encoder on the real all-MiniLM-L6-v2 weights: sentence-transformers' published vector,
 * and the invariances the packed, threaded forward pass must keep (batch composition, thread
 * count, layer selection). Fails when the model folder is missing. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "model/encoder.h"

static void l2_normalize(float *x, int n) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float inv = (float)(1.0 / sqrt(ss));
    for (int i = 0; i < n; i++) x[i] *= inv;
}

static float max_abs_diff(const float *a, const float *b, size_t n) {
    float m = 0;
    for (size_t i = 0; i < n; i++) m = fmaxf(m, fabsf(a[i] - b[i]));
    return m;
}

/* ENCODER_POOL_TOKENS over texts of different lengths (packed and reordered by length): every
 * sequence's rows land at its own offset, token 0 is the CLS state of every layer (cls: [nt, L +
 * 1, C], top first) and the token mean is the MEAN state; encoder_embed refuses it. */
static void check_token_states(Encoder *e, const char *const *texts, int nt, const float *cls) {
    int C = encoder_hidden(e), n = encoder_num_layers(e), nl = n + 1, max_len = encoder_max_len(e);
    int *flat = malloc((size_t)nt * max_len * sizeof *flat), n_ids[8], total = 0;
    const int *ids[8];
    char err[256];
    for (int i = 0; i < nt; i++) {
        ids[i] = flat + (size_t)i * max_len;
        CHECK(tokenizer_encode(encoder_tokenizer(e), texts[i], strlen(texts[i]), 0, (int *)ids[i],
                               &n_ids[i], NULL, err, sizeof err) == 0);
        total += n_ids[i];
    }
    float *tok = malloc((size_t)total * nl * C * sizeof *tok);
    float *mean = malloc((size_t)nt * nl * C * sizeof *mean), *avg = malloc((size_t)C * 4);
    CHECK(encoder_forward_ids(e, ids, n_ids, nt, ENCODER_POOL_TOKENS, n, nl, tok, err,
                              sizeof err) == 0);
    CHECK(encoder_forward_ids(e, ids, n_ids, nt, ENCODER_POOL_MEAN, n, nl, mean, err, sizeof err) ==
          0);
    size_t off = 0;
    for (int i = 0; i < nt; i++) {
        CHECK_MSG(max_abs_diff(tok + off * nl * C, cls + (size_t)i * nl * C, (size_t)nl * C) < 1e-5,
                  "text %d: token 0 of every layer is its CLS state", i);
        for (int j = 0; j < nl; j++) {
            for (int c = 0; c < C; c++) avg[c] = 0;
            for (int t = 0; t < n_ids[i]; t++)
                for (int c = 0; c < C; c++) avg[c] += tok[((off + t) * nl + j) * C + c];
            for (int c = 0; c < C; c++) avg[c] /= (float)n_ids[i];
            CHECK_MSG(max_abs_diff(avg, mean + ((size_t)i * nl + j) * C, C) < 1e-5,
                      "text %d layer %d: token mean is the MEAN state", i, n - j);
        }
        off += (size_t)n_ids[i];
    }
    CHECK(encoder_embed(e, texts, NULL, nt, ENCODER_POOL_TOKENS, n, 1, tok, err, sizeof err) ==
              -1 &&
          strstr(err, "encoder_forward_ids"));
    free(avg);
    free(mean);
    free(tok);
    free(flat);
}

int main(void) {
    const char *dir = getenv("SSNA_MODEL_DIR");
    if (!dir) {
        fprintf(stderr, "SSNA_MODEL_DIR is not set (run through ctest)\n");
        return 1;
    }
    char err[512];
    Encoder *e;
    if (encoder_load(&e, dir, err, sizeof err)) {
        fprintf(stderr, "FAIL: cannot load the real encoder: %s\n", err);
        return 1;
    }
    int C = encoder_hidden(e), n = encoder_num_layers(e);
    CHECK(C == 384 && n == 6);
    CHECK(strstr(encoder_identity(e),
                 "6638f625a0a60bdaa1e34c5fee0a17c705f13b98b43a7973e9d366106a55273d") != NULL);
    CHECK(strstr(encoder_identity(e), "\"weights_dtype\":\"F16\"") != NULL);

    const char *sentence = "This is an example sentence";
    int ids[16], n_ids = 0;
    CHECK(tokenizer_encode(encoder_tokenizer(e), sentence, strlen(sentence), 16, ids, &n_ids, NULL,
                           err, sizeof err) == 0);
    const int want_ids[] = {101, 2023, 2003, 2019, 2742, 6251, 102};
    CHECK(n_ids == 7 && !memcmp(ids, want_ids, sizeof want_ids));

    // sentence-transformers' published all-MiniLM-L6-v2 output (fp32 weights); fp16 within 2e-4
    const float want[6] = {0.06765693f, 0.06349593f, 0.04871314f,
                           0.07930495f, 0.03744806f, 0.00265273f};
    float *v = malloc((size_t)C * sizeof *v);
    CHECK(encoder_embed(e, &sentence, NULL, 1, ENCODER_POOL_MEAN, n, 1, v, err, sizeof err) == 0);
    l2_normalize(v, C);
    for (int i = 0; i < 6; i++) CHECK_CLOSE(v[i], want[i], 2e-4, 0);

    // the same text inside a batch of others (packing, sorting, threads) gives the same states
    const char *texts[] = {"a", sentence,
                           "Another, much longer sentence about lab equipment: "
                           "beakers, flasks and pipettes!",
                           "", "caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80"};
    int nt = 5, nl = n + 1;
    float *all = malloc((size_t)nt * nl * C * sizeof *all);
    float *one = malloc((size_t)nl * C * sizeof *one);
    CHECK(encoder_embed(e, texts, NULL, nt, ENCODER_POOL_CLS, n, nl, all, err, sizeof err) == 0);
    for (int i = 0; i < nt; i++) {
        CHECK(encoder_embed(e, &texts[i], NULL, 1, ENCODER_POOL_CLS, n, nl, one, err, sizeof err) ==
              0);
        CHECK_MSG(max_abs_diff(all + (size_t)i * nl * C, one, (size_t)nl * C) < 1e-5,
                  "text %d alone vs in a batch", i);
    }
    // tiny batches on one thread (OpenBLAS threads) vs the default: same numbers
    float *alt = malloc((size_t)nt * nl * C * sizeof *alt);
    encoder_set_threads(e, 1);
    encoder_set_batch_tokens(e, 8);
    CHECK(encoder_embed(e, texts, NULL, nt, ENCODER_POOL_CLS, n, nl, alt, err, sizeof err) == 0);
    CHECK(max_abs_diff(all, alt, (size_t)nt * nl * C) < 1e-5);
    encoder_set_threads(e, 2);
    encoder_set_batch_tokens(e, 2048);
    // layer j of a top-first request is layer n - j asked alone (asked alone, layer l is the last
    // computed, so it takes the first-token-only block; in the full request it is an inner one)
    for (int l = 0; l <= n; l++) {
        CHECK(encoder_embed(e, &texts[2], NULL, 1, ENCODER_POOL_CLS, l, 1, one, err, sizeof err) ==
              0);
        CHECK(max_abs_diff(all + ((size_t)2 * nl + (n - l)) * C, one, C) < 1e-5);
    }
    // layers differ from each other and CLS differs from the mean
    CHECK(max_abs_diff(all + (size_t)2 * nl * C, all + ((size_t)2 * nl + 1) * C, C) > 1e-2);
    CHECK(encoder_embed(e, &texts[2], NULL, 1, ENCODER_POOL_MEAN, n, 1, one, err, sizeof err) == 0);
    CHECK(max_abs_diff(all + (size_t)2 * nl * C, one, C) > 1e-2);
    check_token_states(e, texts, nt, all);

    // truncation to the maximum length keeps [CLS] ... [SEP]
    encoder_set_max_len(e, 4);
    CHECK(encoder_max_len(e) == 4);
    CHECK(encoder_embed(e, &texts[2], NULL, 1, ENCODER_POOL_CLS, n, 1, one, err, sizeof err) == 0);
    encoder_set_max_len(e, 0);
    CHECK(encoder_max_len(e) == 128);

    // bad requests are refused with a message
    const int *idp = want_ids;
    int bad_len = 7;
    CHECK(encoder_forward_ids(e, &idp, &bad_len, 1, ENCODER_POOL_CLS, n + 1, 1, one, err,
                              sizeof err) == -1 &&
          strstr(err, "layers"));
    CHECK(encoder_forward_ids(e, &idp, &bad_len, 1, ENCODER_POOL_CLS, 1, 3, one, err, sizeof err) ==
          -1);
    CHECK(encoder_forward_ids(e, &idp, &bad_len, 1, 7, n, 1, one, err, sizeof err) == -1);
    int big[2] = {101, 40000}, two = 2;
    const int *bigp = big;
    CHECK(encoder_forward_ids(e, &bigp, &two, 1, ENCODER_POOL_CLS, n, 1, one, err, sizeof err) ==
              -1 &&
          strstr(err, "40000"));
    int zero = 0;
    CHECK(encoder_forward_ids(e, &bigp, &zero, 1, ENCODER_POOL_CLS, n, 1, one, err, sizeof err) ==
          -1);
    free(alt);
    free(one);
    free(all);
    free(v);
    encoder_free(e);
    return check_done();
}
