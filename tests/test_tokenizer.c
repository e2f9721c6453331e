/* test_tokenizer.c - model/tokenizer against Hugging Face `tokenizers`.
 *
 * The reference ids come from tests/reference/tokenizer_ref.py (run by CTest as a fixture into
 * $SSNA_BUILD_DIR/tokref): every Scientific and Games item text plus hard cases and 3,000 seeded
 * random texts over all of Unicode (with invalid UTF-8 mixed in), through the real
 * all-MiniLM-L6-v2 tokenizer.json, the same vocabulary as vocab.txt (cased and uncased), and a
 * byte-level BPE trained there (vocab.json + merges.txt, and tokenizer.json). The rest checks
 * what needs no reference: the published ids of the example sentence, invalid UTF-8 handling,
 * truncation, concurrent encoding, accessors and load errors.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "model/tokenizer.h"

#define MAX_IDS 100000

static const char *env_or_fail(const char *name) {
    const char *v = getenv(name);
    if (!v || !*v) {
        fprintf(stderr, "FAIL: environment variable %s is not set (run through ctest)\n", name);
        exit(1);
    }
    return v;
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Decode hex[0..n) into a fresh buffer of exactly n/2 bytes (no terminator, so ASan catches any
 * read past the text). */
static char *hex_decode(const char *hex, size_t n, size_t *len) {
    *len = n / 2;
    char *out = malloc(*len ? *len : 1);
    for (size_t i = 0; i < *len; i++)
        out[i] = (char)(hex_value(hex[2 * i]) << 4 | hex_value(hex[2 * i + 1]));
    return out;
}

static void print_text(const char *text, size_t len) {
    fputc('"', stderr);
    for (size_t i = 0; i < len && i < 300; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c >= 0x20 && c != 0x7f && c != '"')
            fputc(c, stderr);
        else
            fprintf(stderr, "\\x%02x", c);
    }
    fprintf(stderr, "\"%s\n", len > 300 ? "..." : "");
}

static void print_ids(const char *what, const int *ids, int n) {
    fprintf(stderr, "  %s (%d):", what, n);
    for (int i = 0; i < n && i < 60; i++) fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, "%s\n", n > 60 ? " ..." : "");
}

/* One "model" section of the reference file: compares every record, reports the first
 * difference. Returns the number of records compared. */
typedef struct {
    Tokenizer *tok;
    char label[256];
    int max_len;
    long records, mismatches;
} Section;

static void section_record(Section *s, const char *line, int *ids, int *want) {
    const char *tab = strchr(line, '\t');
    if (!tab) {
        CHECK_MSG(0, "malformed reference line in section %s", s->label);
        return;
    }
    size_t len;
    char *text = hex_decode(line, (size_t)(tab - line), &len);
    int n_want = 0;
    for (char *p = (char *)tab + 1, *end; n_want < MAX_IDS; p = end) {
        long v = strtol(p, &end, 10);
        if (end == p) break;
        want[n_want++] = (int)v;
    }
    int n = -1, truncated = -1;
    char err[256] = "";
    int rc = tokenizer_encode(s->tok, text, len, s->max_len, ids, &n, &truncated, err, sizeof(err));
    s->records++;
    if (rc != 0 || n != n_want || memcmp(ids, want, (size_t)n * sizeof(int)) != 0) {
        if (s->mismatches++ == 0) {
            fprintf(stderr, "[%s] first differing text (record %ld): ", s->label, s->records);
            print_text(text, len);
            if (rc != 0) fprintf(stderr, "  encode failed: %s\n", err);
            print_ids("hugging face", want, n_want);
            print_ids("ours", ids, n);
        }
    }
    free(text);
}

static void test_reference_file(void) {
    char path[4096];
    snprintf(path, sizeof(path), "%s/tokref/tokenizer_ref.txt", env_or_fail("SSNA_BUILD_DIR"));
    FILE *f = fopen(path, "r");
    CHECK_MSG(f != NULL,
              "%s is missing: the tokenizer_reference fixture (python + tokenizers) "
              "must run first",
              path);
    if (!f) return;
    int *ids = malloc(MAX_IDS * sizeof(int)), *want = malloc(MAX_IDS * sizeof(int));
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    Section s = {0};
    int sections = 0;
    long total = 0;
    while ((got = getline(&line, &cap, f)) > 0) {
        if (line[got - 1] == '\n') line[--got] = 0;
        if (strncmp(line, "model ", 6) == 0) {
            char *dir = line + 6, *t1 = strchr(dir, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
            CHECK_MSG(t2 != NULL, "malformed model line: %s", line);
            if (!t2) break;
            *t1 = 0;
            memset(&s, 0, sizeof(s));
            s.max_len = atoi(t1 + 1);
            snprintf(s.label, sizeof(s.label), "%s", t2 + 1);
            char err[512] = "";
            int rc = tokenizer_load(&s.tok, dir, err, sizeof(err));
            CHECK_MSG(rc == 0, "[%s] loading %s: %s", s.label, dir, err);
            if (rc != 0) break;
        } else if (strncmp(line, "end ", 4) == 0) {
            long expected = atol(line + 4);
            CHECK_MSG(s.records == expected && expected > 0, "[%s] %ld records read, %ld written",
                      s.label, s.records, expected);
            CHECK_MSG(s.mismatches == 0, "[%s] %ld of %ld texts differ from Hugging Face", s.label,
                      s.mismatches, s.records);
            printf("[%s] %ld texts, %ld differ\n", s.label, s.records, s.mismatches);
            total += s.records;
            sections++;
            tokenizer_free(s.tok);
            s.tok = NULL;
        } else if (s.tok) {
            section_record(&s, line, ids, want);
        }
    }
    tokenizer_free(s.tok);
    CHECK_MSG(sections == 12, "%d reference sections compared, expected 12", sections);
    CHECK_MSG(total > 60000, "only %ld reference texts compared", total);
    free(line), free(ids), free(want);
    fclose(f);
}

/* ---- checks that need no python ---- */

static int encode_str(const Tokenizer *t, const char *s, int max_len, int *ids, int *truncated) {
    int n = -1;
    char err[256];
    if (tokenizer_encode(t, s, strlen(s), max_len, ids, &n, truncated, err, sizeof(err)) != 0)
        return -1;
    return n;
}

static void test_published_ids(const Tokenizer *t) {
    static const int want[] = {101, 2023, 2003, 2019, 2742, 6251, 102};
    int ids[64], truncated = -1;
    int n = encode_str(t, "This is an example sentence", 64, ids, &truncated);
    CHECK(n == 7);
    CHECK(n == 7 && memcmp(ids, want, sizeof(want)) == 0);
    CHECK(truncated == 0);
    CHECK(strcmp(tokenizer_kind(t), "bert-wordpiece") == 0);
    CHECK(tokenizer_pad_id(t) == 0);
    CHECK(tokenizer_vocab_size(t) == 30522);
    CHECK(tokenizer_max_len(t) == 128); /* tokenizer.json's truncation */
    CHECK(tokenizer_token_to_id(t, "[CLS]") == 101);
    CHECK(tokenizer_id_to_token(t, 102) && strcmp(tokenizer_id_to_token(t, 102), "[SEP]") == 0);
    CHECK(tokenizer_id_to_token(t, 30522) == NULL && tokenizer_id_to_token(t, -1) == NULL);
}

static void test_invalid_utf8(const Tokenizer *t) {
    size_t first = 0;
    CHECK(tokenizer_invalid_utf8("abc\xff"
                                 "def",
                                 7, &first) == 1 &&
          first == 3);
    CHECK(tokenizer_invalid_utf8("ok \xe2\x82\xac \xe2\x82", 9, &first) == 1 && first == 7);
    CHECK(tokenizer_invalid_utf8("\xf0\x9f\x98\x80", 4, &first) == 0);
    CHECK(tokenizer_invalid_utf8("\xed\xa0\x80", 3, &first) == 3 && first == 0);
    /* repaired, and U+FFFD dropped by clean_text: the same ids as without the bad bytes */
    int a[64], b[64], na = -1, nb = -1;
    char err[256];
    /* exactly sized buffers: ASan would catch a read past the end */
    char *text = malloc(4);
    memcpy(text, "caf\xc3", 4);
    CHECK(tokenizer_encode(t, text, 4, 64, a, &na, NULL, err, sizeof(err)) == 0);
    CHECK(tokenizer_encode(t, "caf", 3, 64, b, &nb, NULL, err, sizeof(err)) == 0);
    CHECK(na == nb && na > 2 && memcmp(a, b, (size_t)na * sizeof(int)) == 0);
    memcpy(text, "\xf0\x9f\x98\x80", 4); /* a whole emoji is [UNK] for this vocabulary */
    CHECK(tokenizer_encode(t, text, 3, 64, a, &na, NULL, err, sizeof(err)) == 0 && na == 2);
    CHECK(tokenizer_encode(t, text, 4, 64, a, &na, NULL, err, sizeof(err)) == 0 && na == 3 &&
          a[1] == 100);
    free(text);
    /* a NUL inside the text is a character (dropped), not an end */
    CHECK(tokenizer_encode(t, "a\0b", 3, 64, a, &na, NULL, err, sizeof(err)) == 0 && na == 3);
}

static void test_truncation(const Tokenizer *t) {
    int ids[8], truncated = -1, n;
    char err[256] = "";
    CHECK(tokenizer_encode(t, "hello world", 11, 1, ids, &n, NULL, err, sizeof(err)) == -1);
    CHECK(strstr(err, "special") != NULL);
    n = encode_str(t, "hello world", 2, ids, &truncated);
    CHECK(n == 2 && ids[0] == 101 && ids[1] == 102 && truncated == 1);
    n = encode_str(t, "hello world", 4, ids, &truncated);
    CHECK(n == 4 && ids[3] == 102 && truncated == 0);
    n = encode_str(t, "hello world again", 4, ids, &truncated);
    CHECK(n == 4 && ids[3] == 102 && truncated == 1);
    n = encode_str(t, "", 2, ids, &truncated);
    CHECK(n == 2 && truncated == 0);
}

/* ---- concurrency: two threads encode the same texts and must agree with one thread ---- */

typedef struct {
    const Tokenizer *t;
    char **texts;
    int n_texts, start;
    long checksum;
    int failures;
} Job;

static void *encode_all(void *arg) {
    Job *j = arg;
    int ids[512], n;
    char err[256];
    for (int k = 0; k < j->n_texts; k++) {
        int i = (k + j->start) % j->n_texts; /* different order per thread */
        if (tokenizer_encode(j->t, j->texts[i], strlen(j->texts[i]), 512, ids, &n, NULL, err,
                             sizeof(err)) != 0) {
            j->failures++;
            continue;
        }
        for (int m = 0; m < n; m++) j->checksum += (long)ids[m] * (m + 1) * (i + 1);
    }
    return NULL;
}

static void test_threads(const Tokenizer *t) {
    char path[4096];
    snprintf(path, sizeof(path), "%s/amazon-scientific/Scientific.text",
             env_or_fail("SSNA_DATA_DIR"));
    FILE *f = fopen(path, "r");
    CHECK_MSG(f != NULL, "%s is missing", path);
    if (!f) return;
    char **texts = NULL, *line = NULL;
    size_t cap = 0;
    int n = 0;
    for (ssize_t got; (got = getline(&line, &cap, f)) > 0;) {
        char *tab = strchr(line, '\t');
        if (!tab) continue;
        texts = realloc(texts, (size_t)(n + 1) * sizeof(*texts));
        texts[n++] = strdup(tab + 1);
    }
    fclose(f);
    free(line);
    CHECK(n == 4386); /* the header line has a tab too */
    Job one = {t, texts, n, 0, 0, 0}, a = {t, texts, n, 0, 0, 0}, b = {t, texts, n, n / 2, 0, 0};
    encode_all(&one);
    pthread_t ta, tb;
    pthread_create(&ta, NULL, encode_all, &a);
    pthread_create(&tb, NULL, encode_all, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    CHECK(one.failures == 0 && a.failures == 0 && b.failures == 0);
    CHECK(one.checksum != 0 && a.checksum == one.checksum && b.checksum == one.checksum);
    for (int i = 0; i < n; i++) free(texts[i]);
    free(texts);
}

/* ---- load errors name the file and the problem ---- */

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    CHECK_MSG(f != NULL, "cannot write %s", path);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

static void test_load_errors(void) {
    Tokenizer *t = NULL;
    char err[512] = "";
    CHECK(tokenizer_load(&t, "/nonexistent/model", err, sizeof(err)) == -1 && t == NULL);
    CHECK(strstr(err, "/nonexistent/model") != NULL);

    char dir[4096], path[4200];
    snprintf(dir, sizeof(dir), "%s/tokenizer-bad-model", env_or_fail("SSNA_BUILD_DIR"));
    mkdir(dir, 0755);
    snprintf(path, sizeof(path), "%s/tokenizer.json", dir);
    write_file(path, "{\"model\": {\"type\": \"Unigram\", \"vocab\": {\"a\": 0}}}");
    CHECK(tokenizer_load(&t, dir, err, sizeof(err)) == -1);
    CHECK(strstr(err, "Unigram") != NULL && strstr(err, "tokenizer.json") != NULL);
    write_file(path, "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}, "
                     "\"unk_token\": \"[UNK]\"}}");
    CHECK(tokenizer_load(&t, dir, err, sizeof(err)) == -1 && strstr(err, "[UNK]") != NULL);
    write_file(path, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, "
                     "\"merges\": [\"a b\"]}}");
    CHECK(tokenizer_load(&t, dir, err, sizeof(err)) == -1 && strstr(err, "merge 1") != NULL);
    write_file(path, "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0,");
    CHECK(tokenizer_load(&t, dir, err, sizeof(err)) == -1 && strstr(err, "tokenizer.json") != NULL);
    remove(path);
    snprintf(path, sizeof(path), "%s/vocab.txt", dir);
    write_file(path, "[PAD]\n[UNK]\nhello\n");
    CHECK(tokenizer_load(&t, dir, err, sizeof(err)) == -1 && strstr(err, "[CLS]") != NULL);
    write_file(path, "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\nhello\n");
    CHECK(tokenizer_load(&t, dir, err, sizeof(err)) == -1 && strstr(err, "line 6") != NULL);
    write_file(path, "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n##s\n");
    CHECK(tokenizer_load(&t, dir, err, sizeof(err)) == 0);
    int ids[16], truncated;
    int n = t ? encode_str(t, "HELLOS hello? x", 16, ids, &truncated) : -1;
    /* [CLS] hello ##s hello [UNK]('?') [UNK]('x') [SEP] */
    static const int want[] = {2, 4, 5, 4, 1, 1, 3};
    CHECK(n == 7 && memcmp(ids, want, sizeof(want)) == 0);
    tokenizer_free(t);
    remove(path);
    rmdir(dir);
}

int main(void) {
    const char *model_dir = env_or_fail("SSNA_MODEL_DIR");
    Tokenizer *t = NULL;
    char err[512] = "";
    int rc = tokenizer_load(&t, model_dir, err, sizeof(err));
    CHECK_MSG(rc == 0, "loading the real encoder's tokenizer from %s: %s", model_dir, err);
    if (rc == 0) {
        test_published_ids(t);
        test_invalid_utf8(t);
        test_truncation(t);
        test_threads(t);
        tokenizer_free(t);
    }
    test_load_errors();
    test_reference_file();
    return check_done();
}
