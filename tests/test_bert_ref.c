/* Google's BERT-base-uncased (converted by ops/convert_tf_bert.py) through our tokenizer and
 * encoder against Hugging Face `transformers` (BertTokenizerFast + BertModel, run by the
 * bert_reference fixture: tests/reference/bert_ref.py) on the Scientific item texts 0, K, 2K, ...
 * (K = $SSNA_BERT_REF_STRIDE; see tests/bert.cmake for what each build runs):
 *   - our token ids equal Hugging Face's for every one of those texts;
 *   - the first-token states of all 13 layers (embeddings + 12 blocks) of every one, and the mean
 *     states of every 8th, within max |diff| 1e-4 and cosine >= 0.99999 of the reference.
 * Fails when the model folder, the data or the fixture's output is missing. */
#include "model/fileio.h"
#include "test_encoder_util.h"

/* The reference's ids (encoder_ref.py's format) into a new buffer; NULL when absent or short. */
static int *read_ref_ids(const char *path, size_t *count) {
    char *buf, err[512];
    size_t bytes;
    if (file_read_all(path, &buf, &bytes, err, sizeof err)) return NULL;
    if (bytes < 4) {
        free(buf);
        return NULL;
    }
    *count = bytes / 4;
    return (int *)(void *)buf;
}

int main(void) {
    const char *model = require_env("SSNA_BERT_MODEL_DIR");
    const char *data = require_env("SSNA_DATA_DIR");
    const char *refdir = require_env("SSNA_BERT_REF_DIR");
    int stride = atoi(require_env("SSNA_BERT_REF_STRIDE"));
    char err[512], path[4096];
    Encoder *e;
    if (encoder_load(&e, model, err, sizeof err)) {
        fprintf(stderr, "FAIL: cannot load BERT-base-uncased (run ops/setup.sh): %s\n", err);
        return 1;
    }
    snprintf(path, sizeof path, "%s/amazon-scientific/Scientific.text", data);
    char **texts;
    int n = stride >= 1 ? read_item_texts(path, stride, &texts) : -1;
    if (n <= 0) {
        fprintf(stderr, "FAIL: no Scientific item texts from %s (stride %d)\n", path, stride);
        return 1;
    }
    CHECK(n == (4385 + stride - 1) / stride);
    snprintf(path, sizeof path, "%s/ids.bin", refdir);
    size_t n_ref = 0;
    int *ref_ids = read_ref_ids(path, &n_ref);
    CHECK_MSG(ref_ids && n_ref > 0 && ref_ids[0] == n, "%s: missing, or not %d texts", path, n);
    const Tokenizer *tok = encoder_tokenizer(e);
    int max_len = encoder_max_len(e), C = encoder_hidden(e), L = encoder_num_layers(e);
    int *flat = malloc((size_t)n * max_len * sizeof *flat), *n_ids = malloc((size_t)n * 4);
    const int **ids = malloc((size_t)n * sizeof *ids);
    long total = 0, mismatched = 0, first_bad = -1;
    size_t pos = 1;
    for (int i = 0; i < n; i++) {
        int *dst = flat + (size_t)i * max_len;
        CHECK(tokenizer_encode(tok, texts[i], strlen(texts[i]), max_len, dst, &n_ids[i], NULL, err,
                               sizeof err) == 0);
        ids[i] = dst;
        total += n_ids[i];
        // Hugging Face's ids of the same text, as the fixture wrote them
        int same = ref_ids && pos < n_ref && ref_ids[pos] == n_ids[i] &&
                   pos + 1 + n_ids[i] <= n_ref &&
                   !memcmp(ref_ids + pos + 1, dst, (size_t)n_ids[i] * sizeof *dst);
        if (!same && first_bad < 0) first_bad = i;
        mismatched += !same;
        if (ref_ids && pos < n_ref) pos += 1 + (size_t)(ref_ids[pos] > 0 ? ref_ids[pos] : 0);
    }
    printf("%d texts (every %d), %ld tokens; ids differing from BertTokenizerFast: %ld\n", n,
           stride, total, mismatched);
    CHECK_MSG(mismatched == 0, "%ld texts tokenized differently, first: text %ld", mismatched,
              first_bad * stride);
    snprintf(path, sizeof path, "%s/states.bin", refdir);
    float *ref = read_floats(path, (size_t)n * (L + 1) * 2 * C);
    CHECK_MSG(ref != NULL, "no reference states");
    if (ref) {
        compare_with_reference(e, ids, n_ids, n, 1, ENCODER_POOL_CLS, ref, 1e-4, 0.99999,
                               "Scientific, BERT-base-uncased vs transformers");
        compare_with_reference(e, ids, n_ids, n, 8, ENCODER_POOL_MEAN, ref, 1e-4, 0.99999,
                               "Scientific, BERT-base-uncased vs transformers");
    }
    free(ref);
    free(ref_ids);
    for (int i = 0; i < n; i++) free(texts[i]);
    free(texts);
    free(ids);
    free(n_ids);
    free(flat);
    encoder_free(e);
    return check_done();
}
