/* numparse.h - the one strict number parser of ssna: the whole text is a number of the asked
 * kind within [lo, hi], or it is refused. atoi/atof read "x" as 0, "12abc" as 12 and "1e9999" as
 * whatever they liked, silently; every option, configuration key, checkpoint header and bench
 * argument that takes a number goes through here instead.
 *
 * Each returns 0 and sets *out, NUMPARSE_SYNTAX when s is not wholly a number of that kind
 * (empty, trailing characters, not finite, outside the type), or NUMPARSE_RANGE when it is one
 * but outside [lo, hi]; *out is untouched on failure. Leading white space is accepted (strtol's
 * rule); nothing may follow the number.
 */
#ifndef SSNA_MODEL_NUMPARSE_H
#define SSNA_MODEL_NUMPARSE_H

#define NUMPARSE_SYNTAX (-1)
#define NUMPARSE_RANGE  (-2)

/* A base-10 integer. */
int numparse_long(const char *s, long lo, long hi, long *out);
int numparse_int(const char *s, int lo, int hi, int *out);
/* A finite decimal or hexadecimal floating-point number (strtod's syntax; no inf or nan). */
int numparse_double(const char *s, double lo, double hi, double *out);

#endif
