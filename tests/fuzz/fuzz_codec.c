/* fuzz_codec - the protobuf messages from Kafka: Interaction and Item decode + validation
 * (ingest/codec.c), on arbitrary bytes. The first byte picks the message type, so one corpus
 * holds both. A decode either succeeds with a message that encodes again, or fails with a
 * message in err; it never crashes or leaks. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "ingest/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    CodecLimits limits = codec_limits_default();
    char err[256];
    uint8_t *again = NULL;
    size_t again_len;
    if (data[0] & 1) {
        Ssna__Item *it = NULL;
        if (!codec_item_decode(data + 1, size - 1, &limits, &it, err, sizeof err)) {
            if (codec_item_encode(it, &limits, &again, &again_len, err, sizeof err)) abort();
            codec_item_free(it);
        }
    } else {
        Ssna__Interaction *ev = NULL;
        if (!codec_interaction_decode(data + 1, size - 1, &limits, &ev, err, sizeof err)) {
            if (codec_interaction_encode(ev, &limits, &again, &again_len, err, sizeof err)) abort();
            codec_interaction_free(ev);
        }
    }
    free(again);
    return 0;
}
