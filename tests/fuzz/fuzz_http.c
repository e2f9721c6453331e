/* fuzz_http - the outside text the HTTP server decodes by itself: http.listen values and
 * percent-encoded query values (user=ID of /recommend). The first byte picks which. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > 4096) return 0;
    char *s = malloc(size), host[256], out[4096], err[256];
    if (!s) return 0;
    memcpy(s, data + 1, size - 1);
    s[size - 1] = 0;
    if (data[0] & 1) {
        int port;
        http_parse_listen(s, host, sizeof host, &port, err, sizeof err);
    } else {
        long n = http_percent_decode(s, size - 1, out, sizeof out, data[0] & 2);
        if (n > (long)sizeof out) abort();
    }
    free(s);
    return 0;
}
