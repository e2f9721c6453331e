/* fuzz_tokfiles - a checkpoint folder's tokenizer files (model/tokenizer_load.c): tokenizer.json
 * (WordPiece or BPE), vocab.txt with tokenizer_config.json, vocab.json with merges.txt. The first
 * byte picks the layout; the rest is split at 0xFF bytes into that layout's files, written to a
 * private temporary folder. A tokenizer that loads must then encode any text, the input itself
 * included, into [special] ... [special] within max_len. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const files[] = {"tokenizer.json", "vocab.txt", "tokenizer_config.json",
                                    "vocab.json", "merges.txt"};
#define N_FILES (sizeof files / sizeof files[0])

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char dir[64];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/fuzz-tokfiles-%d", (int)getpid());
        char cmd[96];
        snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", dir, dir);
        if (system(cmd)) abort();
    }
    if (size < 1) return 0;
    // layouts: tokenizer.json | vocab.txt + tokenizer_config.json | vocab.json + merges.txt
    static const int layout[3][2] = {{0, -1}, {1, 2}, {3, 4}};
    const int *pick = layout[data[0] % 3];
    char path[128], err[512];
    for (size_t k = 0; k < N_FILES; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[k]);
        unlink(path);
    }
    size_t start = 1;
    for (int k = 0; k < 2 && pick[k] >= 0; k++) {
        const uint8_t *sep = start < size ? memchr(data + start, 0xFF, size - start) : NULL;
        size_t end = sep ? (size_t)(sep - data) : size;
        snprintf(path, sizeof path, "%s/%s", dir, files[pick[k]]);
        FILE *f = fopen(path, "wb");
        if (!f) abort();
        if (end > start && fwrite(data + start, 1, end - start, f) != end - start) abort();
        fclose(f);
        start = end < size ? end + 1 : size;
    }
    Tokenizer *t = NULL;
    if (tokenizer_load(&t, dir, err, sizeof err)) {
        if (getenv("FUZZ_VERBOSE")) fprintf(stderr, "fuzz_tokfiles: %s\n", err); // seed upkeep
        return 0;
    }
    if (getenv("FUZZ_VERBOSE")) fprintf(stderr, "fuzz_tokfiles: loaded (%s)\n", tokenizer_kind(t));
    int ids[64], n_ids = 0, truncated = 0;
    static const char text[] = "Lab glassware: 250 ml beakers, CAFÉ naïve 測試 🙂";
    const char *texts[2] = {text, (const char *)data};
    size_t lens[2] = {sizeof text - 1, size};
    for (int i = 0; i < 2; i++) {
        int rc =
            tokenizer_encode(t, texts[i], lens[i], 64, ids, &n_ids, &truncated, err, sizeof err);
        if (rc == 0 && (n_ids < 0 || n_ids > 64)) abort();
        for (int j = 0; rc == 0 && j < n_ids; j++)
            if (ids[j] < 0 || ids[j] >= tokenizer_vocab_size(t)) abort();
    }
    tokenizer_free(t);
    return 0;
}
