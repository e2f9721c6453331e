/* json.c - recursive-descent JSON parser. Depth is bounded so hostile input cannot exhaust the
 * stack; every read is bounds-checked against the input length, never a NUL terminator. */
#include "model/json.h"
#include "model/utf8.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *s;
    size_t len, pos;
    char *err;
    size_t errlen;
} Parser;

static int fail(Parser *p, const char *fmt, ...) {
    if (!p->err || !p->errlen) return -1;
    size_t line = 1;
    for (size_t i = 0; i < p->pos && i < p->len; i++) line += p->s[i] == '\n';
    int n = snprintf(p->err, p->errlen, "offset %zu (line %zu): ", p->pos, line);
    if (n < 0 || (size_t)n >= p->errlen) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static void skip_ws(Parser *p) {
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

/* Growable byte buffer for decoded strings. */
typedef struct {
    char *b;
    size_t n, cap;
} Buf;

static int buf_put(Buf *b, const char *src, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 32;
        while (cap < b->n + n + 1) cap *= 2;
        char *nb = realloc(b->b, cap);
        if (!nb) return -1;
        b->b = nb;
        b->cap = cap;
    }
    memcpy(b->b + b->n, src, n);
    b->n += n;
    b->b[b->n] = 0;
    return 0;
}

static size_t utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static int parse_hex4(Parser *p, uint32_t *out) {
    if (p->pos + 4 > p->len) return fail(p, "truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p->s[p->pos + i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return fail(p, "bad hex digit in \\u escape");
    }
    p->pos += 4;
    *out = v;
    return 0;
}

static int parse_escape(Parser *p, Buf *b) {
    if (p->pos >= p->len) return fail(p, "unterminated escape");
    char c = p->s[p->pos++], o;
    switch (c) {
    case '"':
        o = '"';
        break;
    case '\\':
        o = '\\';
        break;
    case '/':
        o = '/';
        break;
    case 'b':
        o = '\b';
        break;
    case 'f':
        o = '\f';
        break;
    case 'n':
        o = '\n';
        break;
    case 'r':
        o = '\r';
        break;
    case 't':
        o = '\t';
        break;
    case 'u': {
        uint32_t cp, lo;
        if (parse_hex4(p, &cp)) return -1;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (p->pos + 2 > p->len || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
                return fail(p, "high surrogate without a low surrogate");
            p->pos += 2;
            if (parse_hex4(p, &lo)) return -1;
            if (lo < 0xDC00 || lo > 0xDFFF) return fail(p, "invalid low surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return fail(p, "lone low surrogate");
        }
        char tmp[4];
        return buf_put(b, tmp, utf8_encode(cp, tmp)) ? fail(p, "out of memory") : 0;
    }
    default:
        p->pos--;
        return fail(p, "invalid escape '\\%c'", c);
    }
    return buf_put(b, &o, 1) ? fail(p, "out of memory") : 0;
}

/* p->pos is at the opening quote. */
static int parse_string(Parser *p, char **out, size_t *outlen) {
    Buf b = {0};
    p->pos++;
    if (buf_put(&b, "", 0)) return fail(p, "out of memory");
    for (;;) {
        if (p->pos >= p->len) {
            free(b.b);
            return fail(p, "unterminated string");
        }
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c == '"') {
            p->pos++;
            break;
        }
        int rc = 0;
        if (c == '\\') {
            p->pos++;
            rc = parse_escape(p, &b);
        } else if (c < 0x20) {
            rc = fail(p, "control character 0x%02x in string", c);
        } else {
            /* copy the longest run of plain bytes at once */
            size_t start = p->pos;
            while (p->pos < p->len) {
                unsigned char d = (unsigned char)p->s[p->pos];
                if (d == '"' || d == '\\' || d < 0x20) break;
                size_t k =
                    utf8_sequence_length((const unsigned char *)p->s + p->pos, p->len - p->pos);
                if (!k) {
                    rc = fail(p, "invalid UTF-8 byte 0x%02x in string", d);
                    break;
                }
                p->pos += k;
            }
            if (!rc && buf_put(&b, p->s + start, p->pos - start)) rc = fail(p, "out of memory");
        }
        if (rc) {
            free(b.b);
            return -1;
        }
    }
    *out = b.b;
    *outlen = b.n;
    return 0;
}

static int parse_number(Parser *p, double *out) {
    size_t start = p->pos;
    if (p->pos < p->len && p->s[p->pos] == '-') p->pos++;
    if (p->pos >= p->len) return fail(p, "truncated number");
    if (p->s[p->pos] == '0')
        p->pos++;
    else if (p->s[p->pos] >= '1' && p->s[p->pos] <= '9')
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
    else
        return fail(p, "invalid number");
    if (p->pos < p->len && p->s[p->pos] == '.') {
        p->pos++;
        size_t d = p->pos;
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
        if (p->pos == d) return fail(p, "digit expected after '.'");
    }
    if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        p->pos++;
        if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-')) p->pos++;
        size_t d = p->pos;
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
        if (p->pos == d) return fail(p, "digit expected in exponent");
    }
    /* strtod needs a terminated copy: the input is not NUL-terminated */
    char tmp[64];
    size_t n = p->pos - start;
    if (n >= sizeof tmp) {
        char *big = malloc(n + 1);
        if (!big) return fail(p, "out of memory");
        memcpy(big, p->s + start, n);
        big[n] = 0;
        *out = strtod(big, NULL);
        free(big);
    } else {
        memcpy(tmp, p->s + start, n);
        tmp[n] = 0;
        *out = strtod(tmp, NULL);
    }
    return 0;
}

static int parse_value(Parser *p, JsonValue *v, int depth);

/* Parses '[' ... ']' or '{' ... '}' growing items (and keys for objects). */
static int parse_container(Parser *p, JsonValue *v, int depth, int is_object) {
    char close = is_object ? '}' : ']';
    size_t cap = 0;
    v->type = is_object ? JSON_OBJECT : JSON_ARRAY;
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
        return 0;
    }
    for (;;) {
        if (v->len == cap) {
            cap = cap ? cap * 2 : 8;
            JsonValue *ni = realloc(v->items, cap * sizeof *ni);
            if (ni) v->items = ni;
            if (is_object && ni) {
                char **nk = realloc(v->keys, cap * sizeof *nk);
                if (nk) v->keys = nk;
                size_t *nl = nk ? realloc(v->key_lens, cap * sizeof *nl) : NULL;
                if (nl) v->key_lens = nl;
                if (!nk || !nl) ni = NULL;
            }
            if (!ni) return fail(p, "out of memory");
        }
        skip_ws(p);
        if (is_object) {
            if (p->pos >= p->len || p->s[p->pos] != '"') return fail(p, "object key expected");
            if (parse_string(p, &v->keys[v->len], &v->key_lens[v->len])) return -1;
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':') {
                free(v->keys[v->len]);
                return fail(p, "':' expected");
            }
            p->pos++;
        }
        memset(&v->items[v->len], 0, sizeof v->items[0]);
        if (parse_value(p, &v->items[v->len], depth + 1)) {
            json_free(&v->items[v->len]);
            if (is_object) free(v->keys[v->len]);
            return -1;
        }
        v->len++;
        skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->len && p->s[p->pos] == close) {
            p->pos++;
            return 0;
        }
        return fail(p, "',' or '%c' expected", close);
    }
}

static int parse_literal(Parser *p, const char *word) {
    size_t n = strlen(word);
    if (p->pos + n > p->len || memcmp(p->s + p->pos, word, n)) return fail(p, "invalid literal");
    p->pos += n;
    return 0;
}

static int parse_value(Parser *p, JsonValue *v, int depth) {
    if (depth > JSON_MAX_DEPTH) return fail(p, "nesting deeper than %d", JSON_MAX_DEPTH);
    skip_ws(p);
    if (p->pos >= p->len) return fail(p, "value expected, input ends");
    char c = p->s[p->pos];
    switch (c) {
    case '{':
        return parse_container(p, v, depth, 1);
    case '[':
        return parse_container(p, v, depth, 0);
    case '"':
        v->type = JSON_STRING;
        return parse_string(p, &v->str, &v->len);
    case 't':
        v->type = JSON_BOOL, v->boolean = 1;
        return parse_literal(p, "true");
    case 'f':
        v->type = JSON_BOOL, v->boolean = 0;
        return parse_literal(p, "false");
    case 'n':
        v->type = JSON_NULL;
        return parse_literal(p, "null");
    default:
        if (c == '-' || (c >= '0' && c <= '9')) {
            v->type = JSON_NUMBER;
            return parse_number(p, &v->number);
        }
        return fail(p, "unexpected character '%c'", c);
    }
}

int json_parse(JsonValue *out, const char *text, size_t len, char *err, size_t errlen) {
    Parser p = {text, len, 0, err, errlen};
    memset(out, 0, sizeof *out);
    if (parse_value(&p, out, 0) == 0) {
        skip_ws(&p);
        if (p.pos == p.len) return 0;
        fail(&p, "trailing characters after the JSON value");
    }
    json_free(out);
    memset(out, 0, sizeof *out);
    return -1;
}

int json_parse_file(JsonValue *out, const char *path, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                snprintf(err, errlen, "%s: out of memory", path);
                return -1;
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        snprintf(err, errlen, "%s: read error", path);
        return -1;
    }
    char inner[512];
    int rc = json_parse(out, buf, n, inner, sizeof inner);
    free(buf);
    if (rc) snprintf(err, errlen, "%s: %s", path, inner);
    return rc;
}

void json_free(JsonValue *v) {
    if (!v) return;
    if (v->type == JSON_STRING) free(v->str);
    if (v->type == JSON_ARRAY || v->type == JSON_OBJECT) {
        for (size_t i = 0; i < v->len; i++) {
            json_free(&v->items[i]);
            if (v->keys) free(v->keys[i]);
        }
        free(v->items);
        free(v->keys);
        free(v->key_lens);
    }
    memset(v, 0, sizeof *v);
}

const JsonValue *json_get(const JsonValue *v, const char *key) {
    if (!v || v->type != JSON_OBJECT) return NULL;
    for (size_t i = 0; i < v->len; i++)
        if (!strcmp(v->keys[i], key)) return &v->items[i];
    return NULL;
}

double json_get_number(const JsonValue *v, const char *key, double dflt) {
    const JsonValue *m = json_get(v, key);
    return m && m->type == JSON_NUMBER ? m->number : dflt;
}

int json_number_int(const JsonValue *v, int *out) {
    if (!v || v->type != JSON_NUMBER || !(v->number >= INT_MIN && v->number <= INT_MAX) ||
        v->number != (double)(int)v->number)
        return -1;
    *out = (int)v->number;
    return 0;
}

int json_get_int(const JsonValue *v, const char *key, int dflt, int *out) {
    const JsonValue *m = json_get(v, key);
    if (!m || m->type != JSON_NUMBER) {
        *out = dflt;
        return 0;
    }
    return json_number_int(m, out);
}

const char *json_get_string(const JsonValue *v, const char *key, const char *dflt) {
    const JsonValue *m = json_get(v, key);
    return m && m->type == JSON_STRING ? m->str : dflt;
}

int json_get_bool(const JsonValue *v, const char *key, int dflt) {
    const JsonValue *m = json_get(v, key);
    return m && m->type == JSON_BOOL ? m->boolean : dflt;
}
