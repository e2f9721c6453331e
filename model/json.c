/* json.c - JSON documents read by jansson (Debian's libjansson: strict RFC 8259, UTF-8 checked,
 * errors with line and column), handed out as a plain tree of JsonValue so that the tokenizer,
 * safetensors and config readers walk structs rather than jansson's API. Numbers are read as
 * doubles (JSON_DECODE_INT_AS_REAL: a 20-digit integer is a number, not an error); a key given
 * twice is an error, not a silent choice between the two values. */
#include "model/json.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "model/errmsg.h"

static const size_t JSON_FLAGS =
    JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL;

static char *copy_bytes(const char *s, size_t n) {
    char *c = malloc(n + 1);
    if (c) memcpy(c, s, n), c[n] = 0;
    return c;
}

/* jansson's tree j -> *v. -1 (err set) when out of memory or nested deeper than JSON_MAX_DEPTH. */
static int convert(JsonValue *v, json_t *j, int depth, char *err, size_t errlen) {
    memset(v, 0, sizeof *v);
    if (depth > JSON_MAX_DEPTH) {
        return errmsg_fail(err, errlen, "nested deeper than %d arrays/objects", JSON_MAX_DEPTH);
    }
    switch (json_typeof(j)) {
    case JSON_OBJECT:
    case JSON_ARRAY: {
        int object = json_is_object(j);
        size_t n = object ? json_object_size(j) : json_array_size(j);
        v->type = object ? JSON_VALUE_OBJECT : JSON_VALUE_ARRAY;
        v->items = calloc(n ? n : 1, sizeof *v->items);
        if (object) {
            v->keys = calloc(n ? n : 1, sizeof *v->keys);
            v->key_lens = calloc(n ? n : 1, sizeof *v->key_lens);
        }
        if (!v->items || (object && (!v->keys || !v->key_lens))) break;
        const char *key;
        size_t klen, i = 0;
        json_t *m;
        if (object) {
            json_object_keylen_foreach(j, key, klen, m) { // document order (jansson >= 2.8)
                v->len = i + 1; // so that json_free frees a half-built object
                if (!(v->keys[i] = copy_bytes(key, klen))) goto oom;
                v->key_lens[i] = klen;
                if (convert(&v->items[i++], m, depth + 1, err, errlen)) return -1;
            }
        } else {
            json_array_foreach(j, i, m) {
                v->len = i + 1;
                if (convert(&v->items[i], m, depth + 1, err, errlen)) return -1;
            }
        }
        v->len = n;
        return 0;
    }
    case JSON_STRING:
        v->type = JSON_VALUE_STRING;
        v->len = json_string_length(j);
        if (!(v->str = copy_bytes(json_string_value(j), v->len))) break;
        return 0;
    case JSON_INTEGER: // not with JSON_DECODE_INT_AS_REAL, but a tree may come from elsewhere
    case JSON_REAL:
        v->type = JSON_VALUE_NUMBER;
        v->number = json_number_value(j);
        return 0;
    case JSON_TRUE:
    case JSON_FALSE:
        v->type = JSON_VALUE_BOOL;
        v->boolean = json_is_true(j);
        return 0;
    case JSON_NULL:
        v->type = JSON_VALUE_NULL;
        return 0;
    }
oom:
    return errmsg_fail(err, errlen, "out of memory");
}

/* Convert a parsed document (or report jansson's error) and release it. */
static int finish(JsonValue *out, json_t *doc, const json_error_t *je, const char *path, char *err,
                  size_t errlen) {
    const char *pre = path ? path : "", *sep = path ? ": " : "";
    if (!doc) {
        return errmsg_fail(err, errlen, "%s%soffset %d (line %d, column %d): %s", pre, sep,
                           je->position, je->line, je->column, je->text);
    }
    char inner[256];
    int rc = convert(out, doc, 0, inner, sizeof inner);
    json_decref(doc);
    if (rc) {
        json_free(out);
        snprintf(err, errlen, "%s%s%s", pre, sep, inner);
    }
    return rc;
}

int json_parse(JsonValue *out, const char *text, size_t len, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    json_error_t je;
    return finish(out, json_loadb(text, len, JSON_FLAGS, &je), &je, NULL, err, errlen);
}

int json_parse_file(JsonValue *out, const char *path, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    json_error_t je;
    return finish(out, json_load_file(path, JSON_FLAGS, &je), &je, path, err, errlen);
}

void json_free(JsonValue *v) {
    if (!v) return;
    if (v->type == JSON_VALUE_STRING) free(v->str);
    if (v->type == JSON_VALUE_ARRAY || v->type == JSON_VALUE_OBJECT) {
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
    if (!v || v->type != JSON_VALUE_OBJECT) return NULL;
    for (size_t i = 0; i < v->len; i++)
        if (!strcmp(v->keys[i], key)) return &v->items[i];
    return NULL;
}

double json_get_number(const JsonValue *v, const char *key, double dflt) {
    const JsonValue *m = json_get(v, key);
    return m && m->type == JSON_VALUE_NUMBER ? m->number : dflt;
}

int json_number_int(const JsonValue *v, int *out) {
    if (!v || v->type != JSON_VALUE_NUMBER || !(v->number >= INT_MIN && v->number <= INT_MAX) ||
        v->number != (double)(int)v->number)
        return -1;
    *out = (int)v->number;
    return 0;
}

int json_get_int(const JsonValue *v, const char *key, int dflt, int *out) {
    const JsonValue *m = json_get(v, key);
    if (!m || m->type != JSON_VALUE_NUMBER) {
        *out = dflt;
        return 0;
    }
    return json_number_int(m, out);
}

const char *json_get_string(const JsonValue *v, const char *key, const char *dflt) {
    const JsonValue *m = json_get(v, key);
    return m && m->type == JSON_VALUE_STRING ? m->str : dflt;
}

int json_get_bool(const JsonValue *v, const char *key, int dflt) {
    const JsonValue *m = json_get(v, key);
    return m && m->type == JSON_VALUE_BOOL ? m->boolean : dflt;
}
