/* ssna_cmd_args.c - checked numbers for the subcommands' options (model/numparse.h, with the
 * message a user sees), and the one JSON string writer of their summary lines. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/ssna_cmd.h"
#include "model/numparse.h"
#include "model/utf8.h"

int ssna_opt_long(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out) {
    if (!numparse_long(s, lo, hi, out)) return 0;
    fprintf(stderr, "ssna %s: %s: \"%s\" is not an integer in %ld .. %ld\n", cmd, opt, s, lo, hi);
    return -1;
}

int ssna_opt_int(const char *cmd, const char *opt, const char *s, int lo, int hi, int *out) {
    if (!numparse_int(s, lo, hi, out)) return 0;
    fprintf(stderr, "ssna %s: %s: \"%s\" is not an integer in %d .. %d\n", cmd, opt, s, lo, hi);
    return -1;
}

int ssna_opt_double(const char *cmd, const char *opt, const char *s, double lo, double hi,
                    double *out) {
    if (!numparse_double(s, lo, hi, out)) return 0;
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
