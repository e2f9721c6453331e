/* JSON reader: values, escapes, UTF-8, and every malformed input rejected with a position. */
#include <string.h>

#include "check.h"
#include "model/json.h"

static int parses(const char *s) {
    JsonValue v;
    char err[256];
    int rc = json_parse(&v, s, strlen(s), err, sizeof err);
    json_free(&v);
    return rc == 0;
}

int main(void) {
    JsonValue v;
    char err[256];
    const char *doc =
        "{\"a\": [1, -2.5e2, true, false, null], \"s\": \"x\\u00e9\\ud83d\\ude00\\n\","
        " \"o\": {\"k\": \"v\"}}";
    CHECK(json_parse(&v, doc, strlen(doc), err, sizeof err) == 0);
    const JsonValue *a = json_get(&v, "a");
    CHECK(a && a->type == JSON_VALUE_ARRAY && a->len == 5);
    if (a && a->len == 5) {
        CHECK(a->items[0].number == 1 && a->items[1].number == -250);
        CHECK(a->items[2].type == JSON_VALUE_BOOL && a->items[2].boolean == 1);
        CHECK(a->items[4].type == JSON_VALUE_NULL);
    }
    const char *s = json_get_string(&v, "s", NULL);
    CHECK(s && !strcmp(s, "x\xc3\xa9\xf0\x9f\x98\x80\n"));
    CHECK(!strcmp(json_get_string(json_get(&v, "o"), "k", ""), "v"));
    CHECK(json_get(&v, "missing") == NULL);
    CHECK(json_get_number(&v, "missing", 7) == 7);
    json_free(&v);

    /* an embedded NUL survives with its length */
    CHECK(json_parse(&v, "\"a\\u0000b\"", 10, err, sizeof err) == 0 && v.len == 3);
    json_free(&v);

    const char *bad[] = {"",
                         "{",
                         "[1,]",
                         "{\"a\" 1}",
                         "\"abc",
                         "\"\\x\"",
                         "01",
                         "1.",
                         "1e",
                         "tru",
                         "[1] x",
                         "\"\\ud800\"",
                         "\"\\udc00\"",
                         "\"\x01\"",
                         "\"\xc3\x28\"",
                         "\"\xed\xa0\x80\"",
                         "\"\xc0\xaf\"",
                         "{1:2}",
                         "-"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_MSG(!parses(bad[i]), "accepted bad input #%zu", i);

    /* the error names a position */
    CHECK(json_parse(&v, "{\n\"a\": ]}", 9, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "line 2") != NULL, "%s", err);

    CHECK_MSG(strstr(err, "column") != NULL, "%s", err);

    /* a key given twice is an error, not a silent pick of one value */
    CHECK(!parses("{\"a\": 1, \"a\": 2}"));
    /* members keep document order; a 20-digit integer is a number, not an error */
    const char *order = "{\"z\": 99999999999999999999, \"a\": 2, \"m\": 3}";
    CHECK(json_parse(&v, order, strlen(order), err, sizeof err) == 0);
    CHECK(v.len == 3 && !strcmp(v.keys[0], "z") && !strcmp(v.keys[1], "a") &&
          !strcmp(v.keys[2], "m") && v.items[0].number == 1e20);
    json_free(&v);

    /* nesting is bounded, not a stack overflow */
    char deep[1000];
    memset(deep, '[', sizeof deep);
    CHECK(json_parse(&v, deep, sizeof deep, err, sizeof err) == -1);
    /* and a complete document nested deeper than JSON_MAX_DEPTH is refused too */
    char nested[2 * (JSON_MAX_DEPTH + 2) + 1];
    memset(nested, '[', JSON_MAX_DEPTH + 2);
    memset(nested + JSON_MAX_DEPTH + 2, ']', JSON_MAX_DEPTH + 2);
    CHECK(json_parse(&v, nested, 2 * (JSON_MAX_DEPTH + 2), err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "deeper") != NULL, "%s", err);

    /* every truncation of a valid document fails cleanly */
    size_t n = strlen(doc);
    int clean = 1;
    for (size_t k = 0; k < n; k++) {
        if (json_parse(&v, doc, k, err, sizeof err) == 0) clean = 0, json_free(&v);
    }
    CHECK(clean);
    /* whole ints only, within int: a C cast of 3.3e114 or 2^31 would be undefined behaviour
     * (fuzz_tokfiles found it in a tokenizer.json vocabulary id) */
    const char *nums = "{\"big\": 3.3e114, \"max\": 2147483647, \"over\": 2147483648, "
                       "\"min\": -2147483648, \"half\": 1.5, \"s\": \"7\"}";
    CHECK(json_parse(&v, nums, strlen(nums), err, sizeof err) == 0);
    int x = 0;
    CHECK(json_get_int(&v, "big", 5, &x) == -1 && json_get_int(&v, "over", 5, &x) == -1);
    CHECK(json_get_int(&v, "half", 5, &x) == -1);
    CHECK(json_get_int(&v, "max", 5, &x) == 0 && x == 2147483647);
    CHECK(json_get_int(&v, "min", 5, &x) == 0 && x == -2147483647 - 1);
    CHECK(json_get_int(&v, "absent", 5, &x) == 0 && x == 5);
    CHECK(json_get_int(&v, "s", 5, &x) == 0 && x == 5); /* not a number: the default */
    CHECK(json_number_int(json_get(&v, "big"), &x) == -1 && json_number_int(NULL, &x) == -1);
    json_free(&v);
    return check_done();
}
