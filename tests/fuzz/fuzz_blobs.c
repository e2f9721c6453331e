/* fuzz_blobs - the blobs ssnad loads from its checkpoint at start-up, on arbitrary bytes: the
 * duplicate window (ssnad_dedup_load; the blob issue 16 found unloadable once the ring wrapped),
 * the pending-lists blob (ssnad_pending_parse) and the pop arm's window (popwindow_load). The
 * first byte picks the loader: odd pending, 2 (bit 1 of an even byte) pop, else duplicates. A
 * duplicate-window blob is 131,080 bytes: ops/fuzz.sh gives this harness a larger -max_len. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "daemon/popwindow.h"
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
    if (data[0] & 2) {
        PopWindow *p = popwindow_create(100, 10, 50);
        if (!p) return 0;
        int32_t ids[10];
        float scores[10];
        uint32_t seen[2] = {0, 3};
        if (!popwindow_load(p, data + 1, size - 1, 5000, err, sizeof err)) // usable after
            popwindow_top_k(p, NULL, 5000, seen, 2, 10, ids, scores), popwindow_add(p, 4999);
        popwindow_free(p);
        return 0;
    }
    static SsnadDedup d; // 384 KiB: not on the stack
    memset(&d, 0, sizeof d);
    if (!ssnad_dedup_load(&d, data + 1, size - 1)) ssnad_dedup_check(&d, 42); // usable after
    return 0;
}
