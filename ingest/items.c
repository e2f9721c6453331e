/* items.c - item-text readers. Lines are read through a bounded buffer (never more than
 * ITEMS_MAX_LINE bytes held for one line), so a file without newlines cannot exhaust memory. */
#include "ingest/items.h"
#include "model/errmsg.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/json.h"
#include "model/utf8.h"

#define READ_CHUNK  (64 << 10)
#define MAX_COLUMNS 64

struct ItemsReader {
    FILE *f;
    char *path;
    ItemsFormat format;
    /* buffered line reader: bytes buf[start..end) are read but not yet consumed */
    char *buf;
    size_t cap, start, end;
    long line;           /* number of the line last returned */
    long long line_pos;  /* file offset of that line's first byte */
    long long buf_pos;   /* file offset of buf[0] */
    int eof, read_error; /* read_error: stop at the next call */
    /* atomic format: column roles from the header */
    int n_columns, id_column;
    int text_columns[MAX_COLUMNS], n_text_columns;
    /* storage for the current item */
    char *id_copy, *text_copy;
    size_t text_cap;
    JsonValue json;
    int have_json;
};

const char *items_format_name(ItemsFormat format) {
    switch (format) {
    case ITEMS_FORMAT_ATOMIC:
        return "atomic";
    case ITEMS_FORMAT_JSONL:
        return "jsonl";
    default:
        return "auto";
    }
}

ItemsFormat items_format(const ItemsReader *r) {
    return r->format;
}

/* Refill so that buf holds more unread bytes; 0 when nothing more can be read. */
static size_t fill(ItemsReader *r) {
    if (r->eof || r->read_error) return 0;
    if (r->start > 0) { /* compact */
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->buf_pos += (long long)r->start;
        r->end -= r->start;
        r->start = 0;
    }
    if (r->cap - r->end < READ_CHUNK) {
        size_t cap = r->cap ? r->cap * 2 : 2 * READ_CHUNK;
        char *b = realloc(r->buf, cap);
        if (!b) {
            r->read_error = 1;
            return 0;
        }
        r->buf = b;
        r->cap = cap;
    }
    size_t got = fread(r->buf + r->end, 1, r->cap - r->end - 1, r->f);
    if (got == 0) {
        if (ferror(r->f)) r->read_error = 1;
        r->eof = 1;
    }
    r->end += got;
    return got;
}

/* Next raw line (without LF, and without a CR before it): 1 with *line and *len, 0 at end, -1 with
 * err for an over-long line (skipped) or a read error. */
static int next_line(ItemsReader *r, char **line, size_t *len, char *err, size_t errlen) {
    size_t scanned = 0;
    for (;;) {
        char *nl = memchr(r->buf + r->start + scanned, '\n', r->end - r->start - scanned);
        size_t have = r->end - r->start;
        if (nl || (r->eof && have > 0)) {
            size_t n = nl ? (size_t)(nl - (r->buf + r->start)) : have;
            r->line++;
            r->line_pos = r->buf_pos + (long long)r->start;
            *line = r->buf + r->start;
            r->start += n + (nl ? 1 : 0);
            if (n > 0 && (*line)[n - 1] == '\r') n--;
            (*line)[n] = 0; /* the LF/CR (or the spare byte fill keeps) */
            *len = n;
            if (n > ITEMS_MAX_LINE)
                return errmsg_fail(err, errlen, "%s:%ld: line longer than %d bytes", r->path,
                                   r->line, ITEMS_MAX_LINE);
            return 1;
        }
        if (have > ITEMS_MAX_LINE) {
            /* drop the line's bytes up to its end, then report it */
            long line_no = ++r->line;
            for (;;) {
                r->start = r->end;
                if (!fill(r)) break;
                nl = memchr(r->buf + r->start, '\n', r->end - r->start);
                if (nl) {
                    r->start = (size_t)(nl - r->buf) + 1;
                    break;
                }
            }
            return errmsg_fail(err, errlen, "%s:%ld: line longer than %d bytes", r->path, line_no,
                               ITEMS_MAX_LINE);
        }
        scanned = have;
        if (!fill(r)) {
            if (r->read_error)
                return errmsg_fail(err, errlen, "%s:%ld: read error: %s", r->path, r->line + 1,
                                   strerror(errno));
            if (r->end == r->start) return 0;
        }
    }
}

static int check_utf8(ItemsReader *r, const char *what, const char *s, size_t len,
                      long long file_offset, char *err, size_t errlen) {
    size_t bad = utf8_invalid_at(s, len);
    if (bad == len) return 0;
    return errmsg_fail(err, errlen,
                       "%s:%ld: invalid UTF-8 in %s at byte %lld of the file (byte 0x%02x)",
                       r->path, r->line, what, file_offset + (long long)bad, (unsigned char)s[bad]);
}

/* Split on TAB in place; returns the number of fields (up to max). */
static int split_tabs(char *line, size_t len, char **fields, size_t *lens, int max) {
    int n = 0;
    char *p = line, *end = line + len;
    for (;;) {
        char *tab = memchr(p, '\t', (size_t)(end - p));
        char *stop = tab ? tab : end;
        if (n < max) {
            fields[n] = p;
            lens[n] = (size_t)(stop - p);
            *stop = 0;
        }
        n++;
        if (!tab) return n;
        p = tab + 1;
    }
}

static int read_atomic_header(ItemsReader *r, char *err, size_t errlen) {
    char *line;
    size_t len;
    int rc;
    do rc = next_line(r, &line, &len, err, errlen);
    while (rc == 1 && len == 0);
    if (rc < 0) return rc;
    if (rc == 0)
        return errmsg_fail(err, errlen, "%s: empty file (expected a header line)", r->path);
    char *fields[MAX_COLUMNS];
    size_t lens[MAX_COLUMNS];
    int n = split_tabs(line, len, fields, lens, MAX_COLUMNS);
    if (n > MAX_COLUMNS)
        return errmsg_fail(err, errlen, "%s:%ld: header has %d columns (at most %d)", r->path,
                           r->line, n, MAX_COLUMNS);
    r->n_columns = n;
    r->id_column = -1;
    for (int i = 0; i < n; i++) {
        char *colon = strchr(fields[i], ':');
        if (!colon)
            return errmsg_fail(
                err, errlen,
                "%s:%ld: header column %d '%s' is not name:type (an atomic .text/.item "
                "file starts with e.g. 'item_id:token<TAB>text:token_seq')",
                r->path, r->line, i + 1, fields[i]);
        *colon = 0;
        if (!strcmp(fields[i], "item_id"))
            r->id_column = i;
        else if (!strcmp(colon + 1, "token_seq"))
            r->text_columns[r->n_text_columns++] = i;
    }
    if (r->id_column < 0)
        return errmsg_fail(err, errlen, "%s:%ld: header has no item_id column", r->path, r->line);
    if (r->n_text_columns == 0)
        return errmsg_fail(err, errlen, "%s:%ld: header has no text column (name:token_seq)",
                           r->path, r->line);
    return 0;
}

static int keep_text(ItemsReader *r, size_t need) {
    if (need + 1 <= r->text_cap) return 0;
    char *t = realloc(r->text_copy, need + 1);
    if (!t) return -1;
    r->text_copy = t;
    r->text_cap = need + 1;
    return 0;
}

static int parse_atomic(ItemsReader *r, char *line, size_t len, ItemText *item, char *err,
                        size_t errlen) {
    char *fields[MAX_COLUMNS];
    size_t lens[MAX_COLUMNS];
    int n = split_tabs(line, len, fields, lens, MAX_COLUMNS);
    if (n != r->n_columns)
        return errmsg_fail(err, errlen, "%s:%ld: expected %d tab-separated fields, found %d",
                           r->path, r->line, r->n_columns, n);
    for (int i = 0; i < n; i++) {
        if (check_utf8(r, i == r->id_column ? "the item id" : "the text", fields[i], lens[i],
                       r->line_pos + (fields[i] - line), err, errlen))
            return -1;
    }
    item->id = fields[r->id_column];
    item->id_len = lens[r->id_column];
    if (r->n_text_columns == 1) {
        item->text = fields[r->text_columns[0]];
        item->text_len = lens[r->text_columns[0]];
        return 0;
    }
    size_t total = 0;
    for (int i = 0; i < r->n_text_columns; i++) total += lens[r->text_columns[i]] + 1;
    if (keep_text(r, total))
        return errmsg_fail(err, errlen, "%s:%ld: out of memory", r->path, r->line);
    size_t at = 0;
    for (int i = 0; i < r->n_text_columns; i++) {
        int c = r->text_columns[i];
        if (!lens[c]) continue;
        if (at) r->text_copy[at++] = ' ';
        memcpy(r->text_copy + at, fields[c], lens[c]);
        at += lens[c];
    }
    r->text_copy[at] = 0;
    item->text = r->text_copy;
    item->text_len = at;
    return 0;
}

static int parse_jsonl(ItemsReader *r, const char *line, size_t len, ItemText *item, char *err,
                       size_t errlen) {
    if (check_utf8(r, "the line", line, len, r->line_pos, err, errlen)) return -1;
    if (r->have_json) json_free(&r->json);
    r->have_json = 0;
    char jerr[256];
    if (json_parse(&r->json, line, len, jerr, sizeof jerr))
        return errmsg_fail(err, errlen, "%s:%ld: %s", r->path, r->line, jerr);
    r->have_json = 1;
    if (r->json.type != JSON_VALUE_OBJECT)
        return errmsg_fail(err, errlen,
                           "%s:%ld: expected a JSON object {\"item_id\":..,\"text\":..}", r->path,
                           r->line);
    const JsonValue *id = json_get(&r->json, "item_id");
    const JsonValue *text = json_get(&r->json, "text");
    if (!id || !(id->type == JSON_VALUE_STRING || id->type == JSON_VALUE_NUMBER))
        return errmsg_fail(err, errlen, "%s:%ld: missing \"item_id\" (a string or an integer)",
                           r->path, r->line);
    if (!text || text->type != JSON_VALUE_STRING)
        return errmsg_fail(err, errlen, "%s:%ld: missing \"text\" (a string)", r->path, r->line);
    if (id->type == JSON_VALUE_NUMBER) {
        double v = id->number;
        if (v != (double)(long long)v || v < -9e15 || v > 9e15)
            return errmsg_fail(err, errlen, "%s:%ld: \"item_id\" %g is not an integer", r->path,
                               r->line, v);
        char num[32];
        int n = snprintf(num, sizeof num, "%lld", (long long)v);
        free(r->id_copy);
        r->id_copy = strdup(num);
        if (!r->id_copy) return errmsg_fail(err, errlen, "%s:%ld: out of memory", r->path, r->line);
        item->id = r->id_copy;
        item->id_len = (size_t)n;
    } else {
        if (memchr(id->str, 0, id->len))
            return errmsg_fail(err, errlen, "%s:%ld: \"item_id\" contains a NUL character", r->path,
                               r->line);
        item->id = id->str;
        item->id_len = id->len;
    }
    item->text = text->str;
    item->text_len = text->len;
    return 0;
}

int items_next(ItemsReader *r, ItemText *item, char *err, size_t errlen) {
    for (;;) {
        if (r->read_error) return 0;
        char *line;
        size_t len;
        int rc = next_line(r, &line, &len, err, errlen);
        if (rc <= 0) return rc;
        if (len == 0) continue;
        /* a line of spaces is not an item in either format (a lone TAB is: an empty id) */
        if (strspn(line, " ") == len) continue;
        rc = r->format == ITEMS_FORMAT_JSONL ? parse_jsonl(r, line, len, item, err, errlen)
                                             : parse_atomic(r, line, len, item, err, errlen);
        if (rc) return -1;
        if (item->id_len == 0)
            return errmsg_fail(err, errlen, "%s:%ld: empty item id", r->path, r->line);
        /* ids are C strings downstream (store keys, logs): "A\0x" would silently become "A" */
        const char *nul = memchr(item->id, 0, item->id_len);
        if (nul)
            return errmsg_fail(err, errlen, "%s:%ld: the item id contains a NUL byte (column %zu)",
                               r->path, r->line, (size_t)(nul - item->id) + 1);
        if (item->id_len > ITEMS_ID_MAX)
            return errmsg_fail(err, errlen, "%s:%ld: item id is %zu bytes (at most %d)", r->path,
                               r->line, item->id_len, ITEMS_ID_MAX);
        item->line = r->line;
        return 1;
    }
}

static int has_suffix(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

int items_open(ItemsReader **out, const char *path, ItemsFormat format, char *err, size_t errlen) {
    *out = NULL;
    ItemsReader *r = calloc(1, sizeof *r);
    if (!r || !(r->path = strdup(path))) {
        free(r);
        return errmsg_fail(err, errlen, "%s: out of memory", path);
    }
    r->f = fopen(path, "rb");
    if (!r->f) {
        int e = errno;
        items_close(r);
        return errmsg_fail(err, errlen, "%s: cannot open: %s", path, strerror(e));
    }
    fill(r);
    if (r->end >= 3 && !memcmp(r->buf, "\xef\xbb\xbf", 3)) r->start = 3;
    if (format == ITEMS_FORMAT_AUTO) {
        if (has_suffix(path, ".text") || has_suffix(path, ".item")) {
            format = ITEMS_FORMAT_ATOMIC;
        } else if (has_suffix(path, ".jsonl") || has_suffix(path, ".ndjson") ||
                   has_suffix(path, ".json")) {
            format = ITEMS_FORMAT_JSONL;
        } else {
            size_t i = r->start;
            while (i < r->end && strchr(" \t\r\n", r->buf[i])) i++;
            format = i < r->end && r->buf[i] == '{' ? ITEMS_FORMAT_JSONL : ITEMS_FORMAT_ATOMIC;
        }
    }
    r->format = format;
    if (format == ITEMS_FORMAT_ATOMIC && read_atomic_header(r, err, errlen)) {
        items_close(r);
        return -1;
    }
    *out = r;
    return 0;
}

void items_close(ItemsReader *r) {
    if (!r) return;
    if (r->f) fclose(r->f);
    if (r->have_json) json_free(&r->json);
    free(r->buf);
    free(r->path);
    free(r->id_copy);
    free(r->text_copy);
    free(r);
}
