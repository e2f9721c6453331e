/* codec.h - protobuf encode/decode of the wire messages of proto/ssna.proto, with validation.
 *
 * Decoding never trusts its input: the raw wire bytes are walked first (tags, varints, lengths,
 * nested messages) so a truncated or garbage buffer is rejected with the byte position where it
 * breaks, every string field is checked to be valid UTF-8 without NUL bytes and within its size
 * limit, and then the message's own rules apply (non-empty ids, an item has some text). Encoding
 * applies the same rules to the struct, so ssna never publishes what it would reject.
 *
 * Error messages name the message, the field and a byte position, e.g.
 *   "Interaction.item_id (tag 2): invalid UTF-8 at byte 17 of the message"
 * Functions return 0 on success and -1 on error with err filled (err may be NULL).
 * A NULL limits pointer means the defaults below.
 */
#ifndef SSNA_INGEST_CODEC_H
#define SSNA_INGEST_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "proto/ssna.pb-c.h"

#define CODEC_DEFAULT_MAX_ID_BYTES      256
#define CODEC_DEFAULT_MAX_TEXT_BYTES    (64 * 1024)
#define CODEC_DEFAULT_MAX_MESSAGE_BYTES (1024 * 1024)

typedef struct {
    size_t max_id_bytes;      // any field whose name ends in "_id", and ScoredItem.item_id
    size_t max_text_bytes;    // every other string field, each on its own
    size_t max_message_bytes; // the whole encoded message
} CodecLimits;

/* The defaults: 256-byte ids, 64 KiB texts, 1 MiB messages. */
CodecLimits codec_limits_default(void);

/* Validate and encode msg into a malloc'd buffer *out of *out_len bytes (the caller frees it,
 * or hands it to librdkafka with RD_KAFKA_MSG_F_FREE). */
int codec_interaction_encode(const Ssna__Interaction *msg, const CodecLimits *limits, uint8_t **out,
                             size_t *out_len, char *err, size_t errlen);
int codec_item_encode(const Ssna__Item *msg, const CodecLimits *limits, uint8_t **out,
                      size_t *out_len, char *err, size_t errlen);
int codec_recommendations_encode(const Ssna__Recommendations *msg, const CodecLimits *limits,
                                 uint8_t **out, size_t *out_len, char *err, size_t errlen);
int codec_dead_letter_encode(const Ssna__DeadLetter *msg, const CodecLimits *limits, uint8_t **out,
                             size_t *out_len, char *err, size_t errlen);

/* Validate and decode buf[0..len) into *out, freed with the matching codec_*_free. On error *out
 * is NULL. */
int codec_interaction_decode(const uint8_t *buf, size_t len, const CodecLimits *limits,
                             Ssna__Interaction **out, char *err, size_t errlen);
int codec_item_decode(const uint8_t *buf, size_t len, const CodecLimits *limits, Ssna__Item **out,
                      char *err, size_t errlen);
int codec_recommendations_decode(const uint8_t *buf, size_t len, const CodecLimits *limits,
                                 Ssna__Recommendations **out, char *err, size_t errlen);
int codec_dead_letter_decode(const uint8_t *buf, size_t len, const CodecLimits *limits,
                             Ssna__DeadLetter **out, char *err, size_t errlen);

/* Free a decoded message; NULL is a no-op. */
void codec_interaction_free(Ssna__Interaction *msg);
void codec_item_free(Ssna__Item *msg);
void codec_recommendations_free(Ssna__Recommendations *msg);
void codec_dead_letter_free(Ssna__DeadLetter *msg);

#endif
