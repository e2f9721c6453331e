/* Item-text readers: the real UniSRec .text (Scientific) and RecBole .item (Games) files, the
 * same items written as JSON lines and read back identically, and malformed input (bad field
 * counts, invalid UTF-8 with its byte offset, empty text, over-long lines, broken JSON) reported
 * with path:line while the reader carries on. Needs SSNA_DATA_DIR (the shipped data). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "ingest/items.h"

static char err[1024];

typedef struct {
    char **ids, **texts;
    size_t *text_lens;
    long *lines;
    size_t n, cap;
    int errors;
    char last_err[1024];
} ItemList;

static void list_free(ItemList *l) {
    for (size_t i = 0; i < l->n; i++) {
        free(l->ids[i]);
        free(l->texts[i]);
    }
    free(l->ids);
    free(l->texts);
    free(l->text_lens);
    free(l->lines);
    memset(l, 0, sizeof *l);
}

/* Read every item of a file, collecting errors; -1 when the file does not open. */
static int read_all(const char *path, ItemsFormat fmt, ItemList *l) {
    memset(l, 0, sizeof *l);
    ItemsReader *r;
    if (items_open(&r, path, fmt, l->last_err, sizeof l->last_err)) return -1;
    ItemText it;
    int rc;
    while ((rc = items_next(r, &it, err, sizeof err)) != 0) {
        if (rc < 0) {
            l->errors++;
            snprintf(l->last_err, sizeof l->last_err, "%s", err);
            continue;
        }
        if (l->n == l->cap) {
            l->cap = l->cap ? 2 * l->cap : 1024;
            l->ids = realloc(l->ids, l->cap * sizeof *l->ids);
            l->texts = realloc(l->texts, l->cap * sizeof *l->texts);
            l->text_lens = realloc(l->text_lens, l->cap * sizeof *l->text_lens);
            l->lines = realloc(l->lines, l->cap * sizeof *l->lines);
        }
        l->ids[l->n] = strndup(it.id, it.id_len);
        l->texts[l->n] = malloc(it.text_len + 1);
        memcpy(l->texts[l->n], it.text, it.text_len + 1);
        l->text_lens[l->n] = it.text_len;
        l->lines[l->n] = it.line;
        l->n++;
    }
    items_close(r);
    return 0;
}

static void write_file(const char *path, const char *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len) {
        perror(path);
        exit(1);
    }
    fclose(f);
}

/* JSON string literal of s[0..n) (every control byte escaped). */
static void json_escape(FILE *f, const char *s, size_t n) {
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void write_str(const char *path, const char *s) {
    write_file(path, s, strlen(s));
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int distinct(char **ids, size_t n) {
    char **copy = malloc(n * sizeof *copy);
    memcpy(copy, ids, n * sizeof *copy);
    qsort(copy, n, sizeof *copy, cmp_str);
    int ok = 1;
    for (size_t i = 1; i < n; i++) ok &= strcmp(copy[i - 1], copy[i]) != 0;
    free(copy);
    return ok;
}

static void test_scientific(const char *data, const char *tmp) {
    char path[4096];
    snprintf(path, sizeof path, "%s/amazon-scientific/Scientific.text", data);
    ItemList l;
    CHECK_MSG(read_all(path, ITEMS_FORMAT_AUTO, &l) == 0, "cannot read %s: %s", path, l.last_err);
    CHECK_MSG(l.n == 4385 && l.errors == 0, "%zu items, %d errors (%s)", l.n, l.errors, l.last_err);
    if (l.n < 2) return;
    CHECK(distinct(l.ids, l.n));
    int empty = 0;
    for (size_t i = 0; i < l.n; i++) empty += l.text_lens[i] == 0;
    CHECK(empty == 0);
    CHECK(l.lines[0] == 2 && l.lines[l.n - 1] == (long)l.n + 1);

    /* the text is the line's bytes after the first TAB, trailing space included */
    FILE *f = fopen(path, "rb");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len = 0;
    for (int i = 0; i < 2 && f; i++) len = getline(&line, &cap, f);
    if (f) fclose(f);
    CHECK(len > 0 && line[len - 1] == '\n');
    char *tab = line ? strchr(line, '\t') : NULL;
    CHECK(tab && !strncmp(line, l.ids[0], (size_t)(tab - line)));
    CHECK(tab && l.text_lens[0] == (size_t)(line + len - 1 - (tab + 1)) &&
          !memcmp(l.texts[0], tab + 1, l.text_lens[0]));
    CHECK(l.texts[0][l.text_lens[0] - 1] == ' ');
    free(line);

    /* the same items as JSON lines read back byte-identical */
    snprintf(path, sizeof path, "%s/sci.jsonl", tmp);
    f = fopen(path, "wb");
    for (size_t i = 0; i < l.n && f; i++) {
        fputs("{\"item_id\": ", f);
        json_escape(f, l.ids[i], strlen(l.ids[i]));
        fputs(", \"extra\": [1, {}], \"text\": ", f);
        json_escape(f, l.texts[i], l.text_lens[i]);
        fputs("}\n", f);
    }
    if (f) fclose(f);
    ItemList j;
    CHECK(read_all(path, ITEMS_FORMAT_AUTO, &j) == 0);
    int same = j.n == l.n && j.errors == 0;
    for (size_t i = 0; same && i < l.n; i++)
        same = !strcmp(j.ids[i], l.ids[i]) && j.text_lens[i] == l.text_lens[i] &&
               !memcmp(j.texts[i], l.texts[i], l.text_lens[i]);
    CHECK_MSG(same, "JSON lines differ from the .text file (%zu vs %zu items)", j.n, l.n);
    list_free(&j);
    unlink(path);
    list_free(&l);
}

static void test_games(const char *data) {
    char path[4096];
    snprintf(path, sizeof path, "%s/amazon-games/Games.item", data);
    ItemList l;
    CHECK_MSG(read_all(path, ITEMS_FORMAT_ATOMIC, &l) == 0, "cannot read %s: %s", path, l.last_err);
    CHECK_MSG(l.n == 16859 && l.errors == 0, "%zu items, %d errors (%s)", l.n, l.errors,
              l.last_err);
    int order_bad = 0;
    for (size_t i = 0; i < l.n; i++) {
        char want[32];
        snprintf(want, sizeof want, "%zu", i);
        order_bad += strcmp(l.ids[i], want) != 0;
    }
    CHECK_MSG(order_bad == 0, "%d ids are not their 0-based row", order_bad);
    if (l.n) CHECK(!strcmp(l.texts[0], "Fire Emblem: The Sacred Stones"));
    list_free(&l);
}

static void test_malformed_atomic(const char *tmp) {
    char path[4096];
    snprintf(path, sizeof path, "%s/bad.text", tmp);
    const char bad[] = "\xef\xbb\xbfitem_id:token\ttext:token_seq\r\n"  /* BOM, CRLF */
                       "A1\tgood one\r\n"                               /* line 2 */
                       "A2\ttoo\tmany\n"                                /* 3: 3 fields */
                       "A3 no tab\n"                                    /* 4 */
                       "A4\tbad \xc3\x28 utf8\n"                        /* 5 */
                       "A5\t\n"                                         /* 6: empty text */
                       "\n   \n"                                        /* 7, 8: blank */
                       "\tno id\n"                                      /* 9 */
                       "A6\toverlong \xc0\xaf\n"                        /* 10 */
                       "A7\tsurrogate \xed\xa0\x80\n"                   /* 11 */
                       "A\0x\tNUL in the id\n"                          /* 12 (fuzz_readers) */
                       "A8\tcaf\xc3\xa9 \xf0\x9f\x98\x80 \xe4\xb8\xad"; /* 13, no final LF */
    write_file(path, bad, sizeof bad - 1);
    ItemsReader *r;
    ItemText it;
    CHECK(items_open(&r, path, ITEMS_FORMAT_AUTO, err, sizeof err) == 0);
    if (!r) return;
    CHECK(items_format(r) == ITEMS_FORMAT_ATOMIC);
    CHECK(items_next(r, &it, err, sizeof err) == 1 && !strcmp(it.id, "A1") && it.text_len == 8 &&
          !strcmp(it.text, "good one") && it.line == 2);
    CHECK(items_next(r, &it, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "bad.text:3:") && strstr(err, "found 3"), "%s", err);
    CHECK(items_next(r, &it, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "bad.text:4:") && strstr(err, "found 1"), "%s", err);
    CHECK(items_next(r, &it, err, sizeof err) == -1);
    /* byte offset of \xc3 in the file: everything before line 5 plus "A4\tbad " */
    long want = (long)(strstr(bad, "\xc3\x28") - bad);
    char wants[64];
    snprintf(wants, sizeof wants, "byte %ld ", want);
    CHECK_MSG(strstr(err, "bad.text:5:") && strstr(err, "UTF-8") && strstr(err, wants),
              "%s (want %s)", err, wants);
    CHECK(items_next(r, &it, err, sizeof err) == 1 && !strcmp(it.id, "A5") && it.text_len == 0 &&
          it.line == 6);
    CHECK(items_next(r, &it, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "bad.text:9:") && strstr(err, "empty item id"), "%s", err);
    CHECK(items_next(r, &it, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, ":10:") && strstr(err, "UTF-8"), "%s", err);
    CHECK(items_next(r, &it, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, ":11:") && strstr(err, "UTF-8"), "%s", err);
    CHECK(items_next(r, &it, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, ":12:") && strstr(err, "NUL byte (column 2)"), "%s", err);
    CHECK(items_next(r, &it, err, sizeof err) == 1 && !strcmp(it.id, "A8") && it.line == 13 &&
          !strcmp(it.text, "caf\xc3\xa9 \xf0\x9f\x98\x80 \xe4\xb8\xad"));
    CHECK(items_next(r, &it, err, sizeof err) == 0);
    CHECK(items_next(r, &it, err, sizeof err) == 0);
    items_close(r);

    /* headers that are not item files */
    write_str(path, "user_id:token\ttext:token_seq\n");
    CHECK(items_open(&r, path, ITEMS_FORMAT_AUTO, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "no item_id"), "%s", err);
    write_str(path, "item_id\ttext\n");
    CHECK(items_open(&r, path, ITEMS_FORMAT_AUTO, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "bad.text:1:") && strstr(err, "name:type"), "%s", err);
    write_str(path, "");
    CHECK(items_open(&r, path, ITEMS_FORMAT_AUTO, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "empty file"), "%s", err);
    CHECK(items_open(&r, "/nonexistent/x.text", ITEMS_FORMAT_AUTO, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "/nonexistent/x.text"), "%s", err);

    /* several text columns are joined by a space; an empty one adds nothing */
    write_str(path, "item_id:token\ttitle:token_seq\tprice:float\tbrand:token_seq\n"
                    "7\tA title\t9.5\tAcme\n8\tOnly title\t1\t\n");
    CHECK(items_open(&r, path, ITEMS_FORMAT_AUTO, err, sizeof err) == 0 && r);
    if (r) {
        CHECK(items_next(r, &it, err, sizeof err) == 1 && !strcmp(it.text, "A title Acme") &&
              it.text_len == 12);
        CHECK(items_next(r, &it, err, sizeof err) == 1 && !strcmp(it.text, "Only title"));
        items_close(r);
    }
    unlink(path);
}

static void test_huge_lines(const char *tmp) {
    char path[4096];
    snprintf(path, sizeof path, "%s/huge.text", tmp);
    size_t big = 500000, huge = 3 * (size_t)ITEMS_MAX_LINE;
    FILE *f = fopen(path, "wb");
    fputs("item_id:token\ttext:token_seq\nH1\t", f);
    for (size_t i = 0; i < big; i++) fputc('a' + (int)(i % 26), f);
    fputs("\nH2\t", f);
    for (size_t i = 0; i < huge; i++) fputc('x', f);
    fputs("\nH3\tafter\nH4\t", f);
    for (size_t i = 0; i < huge; i++) fputc('y', f); /* at end of file, no LF */
    fclose(f);
    ItemsReader *r;
    ItemText it;
    CHECK(items_open(&r, path, ITEMS_FORMAT_AUTO, err, sizeof err) == 0);
    if (!r) return;
    CHECK(items_next(r, &it, err, sizeof err) == 1 && it.text_len == big &&
          it.text[big - 1] == 'a' + (int)((big - 1) % 26));
    CHECK(items_next(r, &it, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "huge.text:3:") && strstr(err, "longer than"), "%s", err);
    CHECK(items_next(r, &it, err, sizeof err) == 1 && !strcmp(it.id, "H3") && it.line == 4 &&
          !strcmp(it.text, "after"));
    CHECK(items_next(r, &it, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "huge.text:5:") && strstr(err, "longer than"), "%s", err);
    CHECK(items_next(r, &it, err, sizeof err) == 0);
    items_close(r);
    unlink(path);
}

static void test_malformed_jsonl(const char *tmp) {
    char path[4096];
    snprintf(path, sizeof path, "%s/bad.jsonl", tmp);
    const char bad[] =
        "{\"item_id\": \"x1\", \"text\": \"caf\\u00e9 \\ud83d\\ude00 tab\\there\"}\n" /* 1 */
        "{\"item_id\": 42, \"text\": \"\"}\n"                                         /* 2 */
        "not json\n"                                                                  /* 3 */
        "{\"item_id\": \"x3\"}\n"                                                     /* 4 */
        "{\"item_id\": 1.5, \"text\": \"t\"}\n"                                       /* 5 */
        "[1, 2]\n"                                                                    /* 6 */
        "{\"item_id\": \"x4\", \"text\": \"bad \xff byte\"}\n"                        /* 7 */
        "\n"                                                                          /* 8 */
        "{\"item_id\": \"\", \"text\": \"t\"}\n"                                      /* 9 */
        "{\"item_id\": \"x5\", \"text\": \"nul\\u0000inside\"} trailing\n"            /* 10 */
        "{\"text\": \"last\", \"item_id\": \"x6\"}\r\n";                              /* 11 */
    write_file(path, bad, sizeof bad - 1);
    ItemsReader *r;
    ItemText it;
    CHECK(items_open(&r, path, ITEMS_FORMAT_AUTO, err, sizeof err) == 0);
    if (!r) return;
    CHECK(items_format(r) == ITEMS_FORMAT_JSONL);
    CHECK(items_next(r, &it, err, sizeof err) == 1 && !strcmp(it.id, "x1") &&
          !strcmp(it.text, "caf\xc3\xa9 \xf0\x9f\x98\x80 tab\there"));
    CHECK(items_next(r, &it, err, sizeof err) == 1 && !strcmp(it.id, "42") && it.text_len == 0);
    CHECK(items_next(r, &it, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "bad.jsonl:3:"), "%s", err);
    CHECK(items_next(r, &it, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "bad.jsonl:4:") && strstr(err, "\"text\""), "%s", err);
    CHECK(items_next(r, &it, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "bad.jsonl:5:") && strstr(err, "integer"), "%s", err);
    CHECK(items_next(r, &it, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "bad.jsonl:6:") && strstr(err, "object"), "%s", err);
    CHECK(items_next(r, &it, err, sizeof err) == -1);
    char wants[64];
    snprintf(wants, sizeof wants, "byte %ld ", (long)(strchr(bad, '\xff') - bad));
    CHECK_MSG(strstr(err, "bad.jsonl:7:") && strstr(err, "UTF-8") && strstr(err, wants),
              "%s (want %s)", err, wants);
    CHECK(items_next(r, &it, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "bad.jsonl:9:") && strstr(err, "empty item id"), "%s", err);
    CHECK(items_next(r, &it, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "bad.jsonl:10:"), "%s", err);
    CHECK(items_next(r, &it, err, sizeof err) == 1 && !strcmp(it.id, "x6") && it.line == 11 &&
          !strcmp(it.text, "last"));
    CHECK(items_next(r, &it, err, sizeof err) == 0);
    items_close(r);

    /* an embedded NUL from \u0000 keeps its length */
    write_str(path, "{\"item_id\":\"n\",\"text\":\"a\\u0000b\"}");
    CHECK(items_open(&r, path, ITEMS_FORMAT_JSONL, err, sizeof err) == 0);
    if (r) {
        CHECK(items_next(r, &it, err, sizeof err) == 1 && it.text_len == 3 && it.text[2] == 'b');
        items_close(r);
    }
    unlink(path);
}

int main(void) {
    const char *data = getenv("SSNA_DATA_DIR");
    CHECK_MSG(data && *data, "SSNA_DATA_DIR is not set: the shipped data sets are required");
    char tmp[64];
    check_temp_dir(tmp, sizeof tmp, "items");
    if (data && *data) {
        test_scientific(data, tmp);
        test_games(data);
    }
    test_malformed_atomic(tmp);
    test_huge_lines(tmp);
    test_malformed_jsonl(tmp);
    check_remove_tree(tmp);
    return check_done();
}
