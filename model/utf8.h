/* utf8.h - the one UTF-8 validator: shortest form only, no UTF-16 surrogates, nothing past
 * U+10FFFF (RFC 3629). Kafka messages, item files, JSON, logs and dead letters all hold text to
 * this same rule, so what one accepts another never refuses. */
#ifndef SSNA_MODEL_UTF8_H
#define SSNA_MODEL_UTF8_H

#include <stddef.h>

/* Length (1-4) of the valid UTF-8 sequence that starts s[0..n), or 0 when it is not one. n >= 1. */
size_t utf8_sequence_length(const unsigned char *s, size_t n);
/* Offset of the first byte of s[0..n) that does not start a valid sequence; n when all is valid. */
size_t utf8_invalid_at(const void *s, size_t n);

#endif
