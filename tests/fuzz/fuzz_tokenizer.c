/* fuzz_tokenizer - the tokenizers on arbitrary bytes (item texts come from outside): the real
 * MiniLM tokenizer.json and BERT-base-uncased vocab.txt folders, loaded once (SSNA_FUZZ_MODELS,
 * default the repository's models/). The first byte picks the model; the rest is the text.
 * Invalid UTF-8 is counted and encoded as U+FFFD, never read past. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "model/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static Tokenizer *load(const char *sub) {
    const char *root = getenv("SSNA_FUZZ_MODELS") ? getenv("SSNA_FUZZ_MODELS") : SSNA_FUZZ_MODELS;
    char dir[1024], err[512];
    snprintf(dir, sizeof dir, "%s/%s", root, sub);
    Tokenizer *t = NULL;
    if (tokenizer_load(&t, dir, err, sizeof err)) {
        fprintf(stderr, "fuzz_tokenizer: %s\n", err); // a missing model fails, never skips
        abort();
    }
    return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static Tokenizer *tok[2];
    if (!tok[0]) tok[0] = load("minilm-l6"), tok[1] = load("bert-base-uncased");
    if (size < 1) return 0;
    const Tokenizer *t = tok[data[0] & 1];
    int ids[512], n_ids, truncated;
    size_t bad;
    char err[256];
    const char *text = (const char *)data + 1;
    tokenizer_invalid_utf8(text, size - 1, &bad);
    if (tokenizer_encode(t, text, size - 1, 512, ids, &n_ids, &truncated, err, sizeof err) ||
        n_ids < 2 || n_ids > 512)
        abort(); // any bytes are a text: [CLS] ... [SEP] at least
    return 0;
}
