/* The encoder on generated checkpoints: seeded random weights written by
 * tests/reference/encoder_ref.py as real safetensors files (BERT with a "bert." prefix and a
 * task head to ignore, DistilBERT with "distilbert.", RoBERTa without prefix; each in F32, F16
 * and BF16), compared layer by layer with its float64 torch forward pass. Then the loader's
 * errors on damaged copies: truncated file, corrupt header, unknown dtype, missing tensor, shape
 * mismatch, unsupported architecture - each message must name the file and the tensor or field.
 * Fails when python3-torch or the model folder (for its tokenizer.json) is missing. */
#include <sys/stat.h>
#include <unistd.h>

#include "model/fileio.h"
#include "model/rng.h"
#include "test_encoder_util.h"

#define N_SEQS  40
#define MAX_SEQ 64

/* Whole file into a new buffer (model/fileio.h); *len its size; NULL when unreadable. */
static char *slurp(const char *path, size_t *len) {
    char *buf, err[512];
    return file_read_all(path, &buf, len, err, sizeof err) ? NULL : buf;
}

static void spit(const char *path, const char *buf, size_t len) {
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(buf, 1, len, f);
        fclose(f);
    }
}

/* Replace the first occurrence of `from` by `to` (same length) in buf[0..len). */
static int patch(char *buf, size_t len, const char *from, const char *to) {
    size_t n = strlen(from);
    for (size_t i = 0; i + n <= len; i++)
        if (!memcmp(buf + i, from, n)) {
            memcpy(buf + i, to, n);
            return 0;
        }
    return -1;
}

/* Load dir, expect failure whose message contains every one of the needles. */
static void expect_load_error(const char *dir, const char *case_name, const char *needle1,
                              const char *needle2) {
    Encoder *e = NULL;
    char err[1024] = "";
    int rc = encoder_load(&e, dir, err, sizeof err);
    printf("%s -> %s\n", case_name, err);
    CHECK_MSG(rc == -1 && e == NULL, "%s: loaded", case_name);
    CHECK_MSG(strstr(err, needle1) != NULL, "%s: '%s' lacks '%s'", case_name, err, needle1);
    if (needle2)
        CHECK_MSG(strstr(err, needle2) != NULL, "%s: '%s' lacks '%s'", case_name, err, needle2);
    encoder_free(e);
}

/* Copy the checkpoint src to dst with model.safetensors (or config.json) replaced by data. */
static void write_variant(const char *src, const char *dst, const char *file, const char *data,
                          size_t len) {
    static const char *files[] = {"config.json", "model.safetensors"};
    char p[4300];
    mkdir(dst, 0755);
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s/%s", src, files[i]);
        size_t n = 0;
        char *buf = slurp(p, &n);
        snprintf(p, sizeof p, "%s/%s", dst, files[i]);
        if (!strcmp(files[i], file))
            spit(p, data, len);
        else if (buf)
            spit(p, buf, n);
        free(buf);
    }
}

static void error_cases(const char *tmp) {
    char src[4200], dst[4200], st_path[4300], cfg_path[4300];
    snprintf(src, sizeof src, "%s/bert-F32", tmp);
    snprintf(st_path, sizeof st_path, "%s/model.safetensors", src);
    snprintf(cfg_path, sizeof cfg_path, "%s/config.json", src);
    size_t len = 0, cfg_len = 0;
    char *st = slurp(st_path, &len), *cfg = slurp(cfg_path, &cfg_len);
    CHECK(st && len > 1000 && cfg);
    if (!st || !cfg) return;
    char *copy = malloc(len + 1);
    const char *tensor = "bert.encoder.layer.1.output.dense.weight";

    snprintf(dst, sizeof dst, "%s/truncated", tmp);
    write_variant(src, dst, "model.safetensors", st, len - 100);
    expect_load_error(dst, "truncated file", "truncated", "model.safetensors");

    snprintf(dst, sizeof dst, "%s/short", tmp);
    write_variant(src, dst, "model.safetensors", st, 5);
    expect_load_error(dst, "5-byte file", "truncated", "model.safetensors");

    memcpy(copy, st, len);
    copy[6] = 0x7f; // header length far beyond the file
    snprintf(dst, sizeof dst, "%s/hlen", tmp);
    write_variant(src, dst, "model.safetensors", copy, len);
    expect_load_error(dst, "header length", "header length", "model.safetensors");

    memcpy(copy, st, len);
    copy[8] = '['; // not a JSON object any more
    snprintf(dst, sizeof dst, "%s/corrupt", tmp);
    write_variant(src, dst, "model.safetensors", copy, len);
    expect_load_error(dst, "corrupt header", "corrupt header", "model.safetensors");

    memcpy(copy, st, len);
    CHECK(patch(copy, len, "\"F32\"", "\"X32\"") == 0);
    snprintf(dst, sizeof dst, "%s/dtype", tmp);
    write_variant(src, dst, "model.safetensors", copy, len);
    expect_load_error(dst, "unknown dtype", "unknown dtype 'X32'", "model.safetensors");

    memcpy(copy, st, len);
    CHECK(patch(copy, len, tensor, "bert.encoder.layer.1.output.dense.weighs") == 0);
    snprintf(dst, sizeof dst, "%s/missing", tmp);
    write_variant(src, dst, "model.safetensors", copy, len);
    expect_load_error(dst, "missing tensor", "missing tensor 'encoder.layer.1.output.dense.weight'",
                      "model.safetensors");

    memcpy(copy, st, len);
    CHECK(patch(copy, len, "\"data_offsets\": [0, ", "\"data_offsets\": [1, ") == 0);
    snprintf(dst, sizeof dst, "%s/offsets", tmp);
    write_variant(src, dst, "model.safetensors", copy, len);
    expect_load_error(dst, "inconsistent offsets", "corrupt header", "model.safetensors");

    char *c2 = malloc(cfg_len + 1);
    memcpy(c2, cfg, cfg_len);
    CHECK(patch(c2, cfg_len, "\"intermediate_size\": 72", "\"intermediate_size\": 73") == 0);
    snprintf(dst, sizeof dst, "%s/shape", tmp);
    write_variant(src, dst, "config.json", c2, cfg_len);
    expect_load_error(dst, "shape mismatch", "has shape [72, 40], expected [73, 40]",
                      "intermediate.dense.weight");

    memcpy(c2, cfg, cfg_len);
    CHECK(patch(c2, cfg_len, "\"model_type\": \"bert\"", "\"model_type\": \"gpt2\"") == 0);
    snprintf(dst, sizeof dst, "%s/arch", tmp);
    write_variant(src, dst, "config.json", c2, cfg_len);
    expect_load_error(dst, "unsupported architecture", "unsupported architecture", "config.json");

    memcpy(c2, cfg, cfg_len);
    CHECK(patch(c2, cfg_len, "\"num_hidden_layers\": 2", "\"num_hidden_layers\": 3") == 0);
    snprintf(dst, sizeof dst, "%s/layers", tmp);
    write_variant(src, dst, "config.json", c2, cfg_len);
    expect_load_error(dst, "more layers than tensors", "missing tensor 'encoder.layer.2.", NULL);

    snprintf(dst, sizeof dst, "%s/nowhere", tmp);
    expect_load_error(dst, "missing folder", "config.json", NULL);
    free(c2);
    free(copy);
    free(st);
    free(cfg);
}

int main(void) {
    const char *model = require_env("SSNA_MODEL_DIR");
    char tmp[4096], ids_path[4200], args[16384], dir[4300], path[4400], err[512];
    // lengths 1 .. MAX_SEQ; <s>/[PAD]=0 first, 2 last, ids valid in every generated vocabulary
    int seq_ids[N_SEQS][MAX_SEQ], n_ids[N_SEQS];
    const int *ids[N_SEQS];
    uint64_t rng = 7;
    for (int i = 0; i < N_SEQS; i++) {
        n_ids[i] = i < 3 ? i + 1 : 1 + (int)(rng_next(&rng) % MAX_SEQ);
        for (int t = 0; t < n_ids[i]; t++) seq_ids[i][t] = 3 + (int)(rng_next(&rng) % 997);
        seq_ids[i][0] = 0;
        if (n_ids[i] > 1) seq_ids[i][n_ids[i] - 1] = 2;
        ids[i] = seq_ids[i];
    }
    make_temp_dir(tmp, sizeof tmp, "encoder-gen");
    snprintf(ids_path, sizeof ids_path, "%s/ids.bin", tmp);
    CHECK(write_ids_file(ids_path, ids, n_ids, N_SEQS) == 0);
    snprintf(args, sizeof args, "checkpoints --out '%s' --ids '%s' --tokenizer '%s/tokenizer.json'",
             tmp, ids_path, model);
    if (run_reference(args)) return 1;

    static const char *families[] = {"bert", "distilbert", "roberta"};
    static const char *dtypes[] = {"F32", "F16", "BF16"};
    for (int f = 0; f < 3; f++)
        for (int d = 0; d < 3; d++) {
            snprintf(dir, sizeof dir, "%s/%s-%s", tmp, families[f], dtypes[d]);
            Encoder *e;
            if (encoder_load(&e, dir, err, sizeof err)) {
                CHECK_MSG(0, "%s", err);
                continue;
            }
            char want[64];
            snprintf(want, sizeof want, "\"weights_dtype\":\"%s\"", dtypes[d]);
            CHECK_MSG(strstr(encoder_identity(e), want), "%s", encoder_identity(e));
            snprintf(path, sizeof path, "%s/ref.bin", dir);
            int C = encoder_hidden(e), L = encoder_num_layers(e);
            float *ref = read_floats(path, (size_t)N_SEQS * (L + 1) * 2 * C);
            CHECK(ref != NULL);
            if (ref) {
                snprintf(path, sizeof path, "%s-%s", families[f], dtypes[d]);
                for (int pool = 0; pool < 2; pool++)
                    compare_with_reference(e, ids, n_ids, N_SEQS, 1, pool, ref, 1e-4, 0.999999,
                                           path);
            }
            // the tokenizer copied beside DistilBERT/BERT runs through encoder_embed; RoBERTa's
            // folder has none and says so
            const char *text = "Digital caliper, 150 mm";
            float *v = malloc((size_t)C * sizeof *v);
            int rc = encoder_embed(e, &text, NULL, 1, ENCODER_POOL_MEAN, L, 1, v, err, sizeof err);
            if (f == 2)
                CHECK(rc == -1 && strstr(err, "no tokenizer"));
            else
                CHECK_MSG(rc == 0, "%s", err);
            free(v);
            free(ref);
            encoder_free(e);
        }
    error_cases(tmp);
    snprintf(args, sizeof args, "rm -rf '%s'", tmp);
    CHECK(system(args) == 0);
    return check_done();
}
