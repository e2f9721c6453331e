/* test_encoder_util.h - what the encoder reference tests share: the id and state files exchanged
 * with tests/reference/encoder_ref.py, running it, and comparing states. Static inline, since each
 * test uses only some. */
#ifndef SSNA_TESTS_TEST_ENCODER_UTIL_H
#define SSNA_TESTS_TEST_ENCODER_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "check.h"
#include "model/encoder.h"

/* An environment variable the test cannot run without; exits with a message when unset. */
static inline const char *require_env(const char *name) {
    const char *v = getenv(name);
    if (!v || !*v) {
        fprintf(stderr, "FAIL: %s is not set (run the test through ctest)\n", name);
        exit(1);
    }
    return v;
}

/* A fresh temporary folder under $SSNA_BUILD_DIR (or /tmp) into path[len]. */
static inline void make_temp_dir(char *path, size_t len, const char *tag) {
    const char *base = getenv("SSNA_BUILD_DIR");
    snprintf(path, len, "%s/%s-XXXXXX", base && *base ? base : "/tmp", tag);
    if (!mkdtemp(path)) {
        perror("mkdtemp");
        exit(1);
    }
}

/* Item texts i = 0, stride, 2 stride, ... of a UniSRec .text file (header line, then item_id TAB
 * text) into a new texts[]; their number, or -1 when the file cannot be read. */
static inline int read_item_texts(const char *path, int stride, char ***texts) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int n = 0, alloc = 0, item = 0, lineno = 0;
    *texts = NULL;
    while ((len = getline(&line, &cap, f)) > 0) {
        if (lineno++ == 0) continue; // header
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        char *tab = strchr(line, '\t');
        if (!tab || item++ % stride) continue;
        if (n == alloc) {
            alloc = alloc ? 2 * alloc : 1024;
            *texts = realloc(*texts, (size_t)alloc * sizeof **texts);
        }
        (*texts)[n++] = strdup(tab + 1);
    }
    free(line);
    fclose(f);
    return n;
}

/* The real encoder of $SSNA_MODEL_DIR into *e and the Scientific item texts 0, stride,
 * 2 stride, ... of $SSNA_DATA_DIR into a new *texts (read_item_texts); their number. Exits 1 saying
 * which is missing: a test on real weights and data cannot run without them. */
static inline int load_real_encoder_and_texts(Encoder **e, int stride, char ***texts) {
    const char *model = require_env("SSNA_MODEL_DIR"), *data = require_env("SSNA_DATA_DIR");
    char err[512], path[4096];
    if (encoder_load(e, model, err, sizeof err)) {
        fprintf(stderr, "FAIL: cannot load the real encoder: %s\n", err);
        exit(1);
    }
    snprintf(path, sizeof path, "%s/amazon-scientific/Scientific.text", data);
    int n = read_item_texts(path, stride, texts);
    if (n <= 0) {
        fprintf(stderr, "FAIL: cannot read the Scientific item texts from %s\n", path);
        exit(1);
    }
    return n;
}

/* The ids file of encoder_ref.py: int32 n, then per sequence its length and ids. */
static inline int write_ids_file(const char *path, const int *const *ids, const int *n_ids, int n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int32_t v = n;
    fwrite(&v, 4, 1, f);
    for (int i = 0; i < n; i++) {
        v = n_ids[i];
        fwrite(&v, 4, 1, f);
        for (int t = 0; t < n_ids[i]; t++) {
            v = ids[i][t];
            fwrite(&v, 4, 1, f);
        }
    }
    return fclose(f);
}

/* Exactly count floats from path into a new buffer, or NULL with a message. */
static inline float *read_floats(const char *path, size_t count) {
    FILE *f = fopen(path, "rb");
    float *buf = malloc(count * sizeof(float) + 1);
    size_t got = f && buf ? fread(buf, sizeof(float), count + 1, f) : 0;
    if (f) fclose(f);
    if (got != count) {
        fprintf(stderr, "FAIL: %s: expected %zu floats, read %zu\n", path, count, got);
        free(buf);
        return NULL;
    }
    return buf;
}

/* Run the python reference with the given arguments; 0 when it exited 0. */
static inline int run_reference(const char *args) {
    char cmd[20000];
    snprintf(cmd, sizeof cmd, "'%s' '%s/tests/reference/encoder_ref.py' %s",
             require_env("SSNA_PYTHON"), require_env("SSNA_SOURCE_DIR"), args);
    int st = system(cmd);
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "FAIL: the torch reference failed (is python3-torch installed?): %s\n",
                cmd);
        return -1;
    }
    return 0;
}

/* Compare the encoder's states of every layer, pooled by `pool`, for sequences 0, stride,
 * 2 stride, ... with ref: [n, L + 1, 2, C] (bottom layer first, pool 0 = first token, 1 = mean,
 * as encoder_ref.py writes them). Checks max |diff| <= atol and cosine >= min_cos per vector and
 * prints the worst figures under label. */
static inline void compare_with_reference(Encoder *e, const int *const *ids, const int *n_ids,
                                          int n, int stride, int pool, const float *ref,
                                          double atol, double min_cos, const char *label) {
    int C = encoder_hidden(e), L = encoder_num_layers(e), nl = L + 1;
    int m = (n + stride - 1) / stride;
    const int **sub_ids = malloc((size_t)m * sizeof *sub_ids);
    int *sub_n = malloc((size_t)m * sizeof *sub_n);
    for (int s = 0; s < m; s++) sub_ids[s] = ids[s * stride], sub_n[s] = n_ids[s * stride];
    float *out = malloc((size_t)m * nl * C * sizeof *out);
    char err[512];
    int rc = encoder_forward_ids(e, sub_ids, sub_n, m, pool, L, nl, out, err, sizeof err);
    CHECK_MSG(rc == 0, "%s: %s", label, err);
    double worst = 0, worst_cos = 1;
    int worst_i = 0, worst_l = 0;
    for (int s = 0; !rc && s < m; s++)
        for (int j = 0; j < nl; j++) {
            const float *a = out + ((size_t)s * nl + j) * C;
            const float *b = ref + (((size_t)s * stride * nl + (L - j)) * 2 + pool) * C;
            double dot = 0, na = 0, nb = 0, d = 0;
            for (int c = 0; c < C; c++) {
                d = fmax(d, fabs((double)a[c] - b[c]));
                dot += (double)a[c] * b[c];
                na += (double)a[c] * a[c];
                nb += (double)b[c] * b[c];
            }
            double cs = dot / sqrt(na * nb + 1e-300);
            if (d > worst) worst = d, worst_i = s * stride, worst_l = L - j;
            if (cs < worst_cos) worst_cos = cs;
        }
    printf("%s, %s pooling: %d sequences x %d layers: max |diff| %.3g (sequence %d, layer %d), "
           "min cosine %.9f\n",
           label, pool ? "mean" : "cls", m, nl, worst, worst_i, worst_l, worst_cos);
    CHECK_MSG(worst <= atol, "%s: max |diff| %.3g > %.3g", label, worst, atol);
    CHECK_MSG(worst_cos >= min_cos, "%s: min cosine %.9f < %.9f", label, worst_cos, min_cos);
    free(out);
    free(sub_n);
    free(sub_ids);
}

#endif
