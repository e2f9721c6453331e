/* The encoder on the real all-MiniLM-L6-v2 weights against an independent hand-written torch
 * forward pass (tests/reference/encoder_ref.py) over every item text of the Scientific data:
 * per-layer first-token states of all 4,385 texts (mean states of every 8th), tokenized by our
 * tokenizer (every 8th text only under the sanitizers: SSNA_ENCODER_REF_STRIDE).
 * Fails when the model folder, the data or python3-torch is missing. */
#include <unistd.h>

#include "test_encoder_util.h"

int main(void) {
    const char *model = require_env("SSNA_MODEL_DIR");
    char err[512], tmp[4096], ids_path[4200], ref_path[4200], args[16384];
    Encoder *e;
    char **texts;
    int n = load_real_encoder_and_texts(&e, 1, &texts);
    CHECK(n == 4385);
    // sanitizer builds (tests/encoder.cmake) take every 8th text: the same code paths for ASan in
    // an eighth of the time; the normal build compares every text
    const char *st = getenv("SSNA_ENCODER_REF_STRIDE");
    int stride = st ? atoi(st) : 1;
    if (stride > 1) {
        int m = 0;
        for (int i = 0; i < n; i++)
            if (i % stride == 0)
                texts[m++] = texts[i];
            else
                free(texts[i]);
        n = m;
    }
    const Tokenizer *tok = encoder_tokenizer(e);
    int max_len = encoder_max_len(e);
    int *flat = malloc((size_t)n * max_len * sizeof *flat);
    int *n_ids = malloc((size_t)n * sizeof *n_ids);
    const int **ids = malloc((size_t)n * sizeof *ids);
    long total = 0;
    for (int i = 0; i < n; i++) {
        int *dst = flat + (size_t)i * max_len;
        CHECK(tokenizer_encode(tok, texts[i], strlen(texts[i]), max_len, dst, &n_ids[i], NULL, err,
                               sizeof err) == 0);
        ids[i] = dst;
        total += n_ids[i];
    }
    printf("%d texts, %ld tokens (max length %d)\n", n, total, max_len);
    make_temp_dir(tmp, sizeof tmp, "encoder-ref");
    snprintf(ids_path, sizeof ids_path, "%s/ids.bin", tmp);
    snprintf(ref_path, sizeof ref_path, "%s/ref.bin", tmp);
    CHECK(write_ids_file(ids_path, ids, n_ids, n) == 0);
    snprintf(args, sizeof args, "forward --model '%s' --ids '%s' --out '%s'", model, ids_path,
             ref_path);
    int C = encoder_hidden(e), L = encoder_num_layers(e);
    float *ref = NULL;
    if (run_reference(args) == 0) ref = read_floats(ref_path, (size_t)n * (L + 1) * 2 * C);
    CHECK_MSG(ref != NULL, "no reference states");
    // every text's first-token states (what SSNA keeps); mean states of every 8th text (a second
    // full pass would double the test's time for little more coverage)
    if (ref) {
        compare_with_reference(e, ids, n_ids, n, 1, ENCODER_POOL_CLS, ref, 1e-4, 0.99999,
                               "Scientific, MiniLM");
        compare_with_reference(e, ids, n_ids, n, 8, ENCODER_POOL_MEAN, ref, 1e-4, 0.99999,
                               "Scientific, MiniLM");
    }
    unlink(ids_path);
    unlink(ref_path);
    rmdir(tmp);
    free(ref);
    for (int i = 0; i < n; i++) free(texts[i]);
    free(texts);
    free(ids);
    free(n_ids);
    free(flat);
    encoder_free(e);
    return check_done();
}
