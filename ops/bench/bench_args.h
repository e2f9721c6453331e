/* bench_args.h - the benches' numeric arguments, checked (model/numparse.h): a typo stops the
 * bench with a message instead of measuring something else (atoi read "x" as 0). */
#ifndef SSNA_OPS_BENCH_ARGS_H
#define SSNA_OPS_BENCH_ARGS_H

#include <stdio.h>
#include <stdlib.h>

#include "model/numparse.h"

/* s as an integer in [lo, hi], or exit 2 naming the bench and the argument. */
static inline long bench_arg_long(const char *bench, const char *what, const char *s, long lo,
                                  long hi) {
    long v;
    if (numparse_long(s, lo, hi, &v)) {
        fprintf(stderr, "%s: %s: \"%s\" is not an integer in %ld .. %ld\n", bench, what, s, lo, hi);
        exit(2);
    }
    return v;
}

/* s as a finite number in [lo, hi], or exit 2. */
static inline double bench_arg_double(const char *bench, const char *what, const char *s, double lo,
                                      double hi) {
    double v;
    if (numparse_double(s, lo, hi, &v)) {
        fprintf(stderr, "%s: %s: \"%s\" is not a number in %g .. %g\n", bench, what, s, lo, hi);
        exit(2);
    }
    return v;
}

#endif
