/* errmsg.h - the one way ssna code fills a caller's error buffer.
 *
 * Every fallible function takes (char *err, size_t errlen) and returns a code; this writes the
 * message (truncated to errlen, always NUL-terminated, nothing when err is NULL or errlen 0).
 */
#ifndef SSNA_MODEL_ERRMSG_H
#define SSNA_MODEL_ERRMSG_H

#include <stddef.h>

/* printf-format a message into err; returns -1 so callers can `return errmsg_fail(...)`. */
int errmsg_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
