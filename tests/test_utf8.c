/* test_utf8.c - model/utf8, the one validator behind Kafka messages, item files, JSON, logs and
 * dead letters: valid 1-4 byte forms and the edges of Unicode pass; stray continuation bytes,
 * truncated forms, overlong forms, UTF-16 surrogates, code points past U+10FFFF and the bytes
 * 0xF5-0xFF fail, at the offset of the sequence's first byte. */
#include <string.h>

#include "check.h"
#include "model/utf8.h"

int main(void) {
    const char ok[] = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
    CHECK(utf8_invalid_at("", 0) == 0);
    CHECK(utf8_invalid_at(ok, strlen(ok)) == strlen(ok));
    CHECK(utf8_invalid_at("\xf4\x8f\xbf\xbf", 4) == 4); /* U+10FFFF */
    CHECK(utf8_invalid_at("\xed\x9f\xbf", 3) == 3);     /* U+D7FF, just below the surrogates */
    CHECK(utf8_invalid_at("\xee\x80\x80", 3) == 3);     /* U+E000, just above them */
    CHECK(utf8_invalid_at("\xc2\x80", 2) == 2);         /* U+0080, the shortest 2-byte form */
    CHECK(utf8_invalid_at("a\0b", 3) == 3);             /* NUL is UTF-8 (callers refuse it) */
    struct {
        const char *s;
        size_t n, bad_at;
    } bad[] = {
        {"ab\x80", 3, 2},             /* lone continuation byte */
        {"a\xc3", 2, 1},              /* truncated 2-byte form */
        {"abc\xe2\x82", 5, 3},        /* truncated at the end */
        {"\xc0\xaf", 2, 0},           /* overlong '/' */
        {"\xc1\xbf", 2, 0},           /* overlong */
        {"xy\xe0\x80\xaf", 5, 2},     /* overlong 3-byte form */
        {"\xf0\x8f\xbf\xbf", 4, 0},   /* overlong 4-byte form */
        {"\xed\xa0\x80", 3, 0},       /* UTF-16 surrogate U+D800 */
        {"\xed\xbf\xbf", 3, 0},       /* U+DFFF */
        {"ok\xf4\x90\x80\x80", 6, 2}, /* past U+10FFFF */
        {"\xf5\x80\x80\x80", 4, 0},   /* lead byte past Unicode */
        {"\xff", 1, 0},
        {"\xee\x80\x80\xf8", 4, 3}, /* a valid sequence, then 0xF8 */
        {"\xe2\x28\xa1", 3, 0},     /* second byte not a continuation */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t at = utf8_invalid_at(bad[i].s, bad[i].n);
        CHECK_MSG(at == bad[i].bad_at, "case %zu: bad byte %zu, expected %zu", i, at,
                  bad[i].bad_at);
        CHECK(utf8_sequence_length((const unsigned char *)bad[i].s + at, bad[i].n - at) == 0);
    }
    CHECK(utf8_sequence_length((const unsigned char *)"\xf0\x9f\x98\x80", 4) == 4);
    CHECK(utf8_sequence_length((const unsigned char *)"\xf0\x9f\x98\x80", 3) == 0); /* cut */
    return check_done();
}
