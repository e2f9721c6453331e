/* hash.c - see hash.h. */
#include "model/hash.h"

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME  0x100000001b3ull

uint64_t hash_fnv1a(const void *data, size_t len) {
    const unsigned char *p = data;
    uint64_t h = FNV_OFFSET;
    for (size_t i = 0; i < len; i++) h = (h ^ p[i]) * FNV_PRIME;
    return h;
}

uint64_t hash_fnv1a_str(const char *s) {
    uint64_t h = FNV_OFFSET;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * FNV_PRIME;
    return h;
}
