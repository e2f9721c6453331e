/* sha256.h - SHA-256 (FIPS 180-4), to name a weights file by its content in encoder identities.
 *
 * Streaming: sha256_init, any number of sha256_update calls, sha256_final. Pure C, no tables
 * outside this module, no allocation.
 */
#ifndef SSNA_MODEL_SHA256_H
#define SSNA_MODEL_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t state[8];
    uint64_t n_bytes;  /* total bytes fed so far */
    uint8_t block[64]; /* pending partial block */
    size_t block_fill; /* bytes used in block */
} Sha256;

/* Start a new digest. */
void sha256_init(Sha256 *s);
/* Feed data[0..len). */
void sha256_update(Sha256 *s, const void *data, size_t len);
/* Finish and write the 32-byte digest; s must be re-initialised before reuse. */
void sha256_final(Sha256 *s, uint8_t digest[32]);
/* Digest of data[0..len) as 64 lower-case hex characters plus NUL into hex[65]. */
void sha256_hex(const void *data, size_t len, char hex[65]);

#endif
