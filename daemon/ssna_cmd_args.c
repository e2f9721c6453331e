/* ssna_cmd_args.c - checked numbers for the subcommands' options (atoi made "--epochs x" 0 and
 * "--batch 12abc" 12 without a word, so every numeric option goes through here), and the one
 * JSON string writer of their summary lines. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/ssna_cmd.h"
#include "model/utf8.h"

int ssna_parse_long(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int ssna_parse_int(const char *s, int lo, int hi, int *out) {
    long v;
    if (ssna_parse_long(s, lo, hi, &v)) return -1;
    *out = (int)v;
    return 0;
}

int ssna_opt_int(const char *cmd, const char *opt, const char *s, int lo, int hi, int *out) {
    if (!ssna_parse_int(s, lo, hi, out)) return 0;
    fprintf(stderr, "ssna %s: %s: \"%s\" is not an integer in %d .. %d\n", cmd, opt, s, lo, hi);
    return -1;
}

int ssna_opt_double(const char *cmd, const char *opt, const char *s, double lo, double hi,
                    double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!errno && end != s && !*end && isfinite(v) && v >= lo && v <= hi) {
        *out = v;
        return 0;
    }
    fprintf(stderr, "ssna %s: %s: \"%s\" is not a number in %g .. %g\n", cmd, opt, s, lo, hi);
    return -1;
}

char *ssna_json_string(const char *s) {
    size_t n = strlen(s), o = 0;
    char *clean = malloc(3 * n + 1); // each byte at most one U+FFFD (3 bytes)
    if (!clean) return NULL;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_sequence_length((const unsigned char *)s + i, n - i);
        if (k) {
            memcpy(clean + o, s + i, k), o += k, i += k;
        } else {
            memcpy(clean + o, "\xef\xbf\xbd", 3), o += 3, i++;
        }
    }
    json_t *j = json_stringn(clean, o);
    free(clean);
    char *out = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
    json_decref(j);
    return out;
}
