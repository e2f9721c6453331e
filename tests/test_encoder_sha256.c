/* sha256 (the digest naming a weights file in encoder identities): FIPS 180-4 known answers, and
 * streaming in uneven chunks equal to one call, across the padding boundaries. */
#include <string.h>

#include "check.h"
#include "model/sha256.h"

int main(void) {
    char hex[65];
    sha256_hex("", 0, hex);
    CHECK(!strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    sha256_hex("abc", 3, hex);
    CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    const char *two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha256_hex(two_blocks, strlen(two_blocks), hex);
    CHECK(!strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));

    // one million 'a' fed in chunks of 1..97 bytes
    static char million[1000000];
    memset(million, 'a', sizeof million);
    Sha256 s;
    sha256_init(&s);
    for (size_t off = 0, step = 1; off < sizeof million; off += step, step = step % 97 + 1)
        sha256_update(&s, million + off, off + step > sizeof million ? sizeof million - off : step);
    uint8_t d[32];
    sha256_final(&s, d);
    static const uint8_t want[32] = {0xcd, 0xc7, 0x6e, 0x5c, 0x99, 0x14, 0xfb, 0x92,
                                     0x81, 0xa1, 0xc7, 0xe2, 0x84, 0xd7, 0x3e, 0x67,
                                     0xf1, 0x80, 0x9a, 0x48, 0xa4, 0x97, 0x20, 0x0e,
                                     0x04, 0x6d, 0x39, 0xcc, 0xc7, 0x11, 0x2c, 0xd0};
    CHECK(!memcmp(d, want, 32));

    // every length 0..200 streamed byte by byte equals the one-shot digest
    for (size_t n = 0; n <= 200; n++) {
        char one[65], streamed[65];
        sha256_hex(million, n, one);
        sha256_init(&s);
        for (size_t i = 0; i < n; i++) sha256_update(&s, million + i, 1);
        sha256_final(&s, d);
        for (int i = 0; i < 32; i++) snprintf(streamed + 2 * i, 3, "%02x", d[i]);
        CHECK_MSG(!strcmp(one, streamed), "length %zu", n);
    }
    return check_done();
}
