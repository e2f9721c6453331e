/* fuzz_blobs - the blobs ssnad loads from its checkpoint at start-up, on arbitrary bytes: the
 * duplicate window (ssnad_dedup_load; the blob issue 16 found unloadable once the ring wrapped)
 * and the pending-lists blob (ssnad_pending_parse). The first byte picks the loader. A window
 * blob is 131,080 bytes: ops/fuzz.sh gives this harness a larger -max_len. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "daemon/ssnad.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count_id(void *ctx, const char *id) {
    (void)id;
    (*(size_t *)ctx)++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    char err[256];
    if (data[0] & 1) {
        size_t n = 0;
        ssnad_pending_parse(data + 1, size - 1, count_id, &n, err, sizeof err);
        return 0;
    }
    static SsnadDedup d; // 384 KiB: not on the stack
    memset(&d, 0, sizeof d);
    if (!ssnad_dedup_load(&d, data + 1, size - 1)) ssnad_dedup_check(&d, 42); // usable after
    return 0;
}
