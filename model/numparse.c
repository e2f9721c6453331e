/* numparse.c - see numparse.h. */
#include "model/numparse.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

int numparse_long(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno == ERANGE) return NUMPARSE_SYNTAX;
    if (v < lo || v > hi) return NUMPARSE_RANGE;
    *out = v;
    return 0;
}

int numparse_int(const char *s, int lo, int hi, int *out) {
    long v;
    int rc = numparse_long(s, lo, hi, &v);
    if (!rc) *out = (int)v;
    return rc;
}

int numparse_double(const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || !isfinite(v) || (errno == ERANGE && fabs(v) > 1))
        return NUMPARSE_SYNTAX; // overflow; an underflow to a tiny number is still that number
    if (!(v >= lo && v <= hi)) return NUMPARSE_RANGE;
    *out = v;
    return 0;
}
