/* hash.h - FNV-1a, the one non-cryptographic hash of the code base (64-bit, the standard offset
 * basis and prime). Stable across platforms and versions: checkpoints and the store persist some
 * of these values (a parameter blob's checksum, item text hashes), so it must never change. */
#ifndef SSNA_MODEL_HASH_H
#define SSNA_MODEL_HASH_H

#include <stddef.h>
#include <stdint.h>

/* FNV-1a of data[0..len). */
uint64_t hash_fnv1a(const void *data, size_t len);
/* FNV-1a of a NUL-terminated string (its bytes, without the NUL). */
uint64_t hash_fnv1a_str(const char *s);

#endif
