/* json.h - JSON documents (RFC 8259, read by jansson) as a plain tree, for config.json,
 * tokenizer.json, safetensors headers and JSON-lines inputs.
 *
 * The whole document becomes a tree of JsonValue; strings are decoded (escapes, surrogate pairs)
 * to NUL-terminated UTF-8 with an explicit length, object members keep document order. Invalid
 * UTF-8, trailing garbage, a key given twice, nesting over JSON_MAX_DEPTH and unterminated input
 * are errors naming the byte offset, line and column.
 */
#ifndef SSNA_MODEL_JSON_H
#define SSNA_MODEL_JSON_H

#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 128

typedef enum {
    JSON_VALUE_NULL,
    JSON_VALUE_BOOL,
    JSON_VALUE_NUMBER,
    JSON_VALUE_STRING,
    JSON_VALUE_ARRAY,
    JSON_VALUE_OBJECT
} JsonType;

typedef struct JsonValue {
    JsonType type;
    int boolean;             /* JSON_VALUE_BOOL */
    double number;           /* JSON_VALUE_NUMBER */
    char *str;               /* JSON_VALUE_STRING: decoded UTF-8, NUL-terminated */
    size_t len;              /* JSON_VALUE_STRING: bytes in str; ARRAY/OBJECT: element count */
    struct JsonValue *items; /* ARRAY elements / OBJECT values, [len] */
    char **keys;             /* OBJECT keys, [len], decoded and NUL-terminated */
    size_t *key_lens;        /* OBJECT key byte lengths, [len] */
} JsonValue;

/* Parse text[0..len) into *out. 0 on success; -1 with err ("offset N (line L, column C): ...")
 * otherwise, in which case *out holds nothing to free. */
int json_parse(JsonValue *out, const char *text, size_t len, char *err, size_t errlen);
/* Read a whole file and parse it; errors name the path. */
int json_parse_file(JsonValue *out, const char *path, char *err, size_t errlen);
/* Free everything under v (not v itself). */
void json_free(JsonValue *v);
/* Member of an object by key (first match), or NULL when absent or v is not an object. */
const JsonValue *json_get(const JsonValue *v, const char *key);
/* Typed look-ups with a default when the member is absent or of another type. */
double json_get_number(const JsonValue *v, const char *key, double dflt);
/* A number that is a whole int: *out = it and 0; -1 when it is not (a fraction, or outside
 * INT_MIN .. INT_MAX, where a C cast would be undefined). */
int json_number_int(const JsonValue *v, int *out);
/* Member key as an int: dflt when absent or not a number, -1 when a number but not a whole int. */
int json_get_int(const JsonValue *v, const char *key, int dflt, int *out);
const char *json_get_string(const JsonValue *v, const char *key, const char *dflt);
int json_get_bool(const JsonValue *v, const char *key, int dflt);

#endif
