/* test_codec - round trips of every wire message, and rejection (never a crash) of truncated
 * buffers at every length, random garbage, invalid UTF-8, NUL bytes, empty ids and oversized
 * texts, with errors that name the field. */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "ingest/codec.h"
#include "model/utf8.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t next_u32(void) {
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

static int contains(const char *s, const char *what) {
    return strstr(s, what) != NULL;
}

/* Every shorter prefix of a valid encoding either fails cleanly or, where it ends on a field
 * boundary, decodes to a message; no length may crash (ASan watches the reads). */
#define CHECK_TRUNCATIONS(lower, buf, len)                                                         \
    do {                                                                                           \
        int rejected_ = 0;                                                                         \
        for (size_t cut_ = 0; cut_ < (len); cut_++) {                                              \
            uint8_t *copy_ = malloc(cut_ ? cut_ : 1);                                              \
            memcpy(copy_, (buf), cut_);                                                            \
            char err_[256] = "";                                                                   \
            void *msg_ = (void *)1;                                                                \
            int rc_ = codec_##lower##_decode(copy_, cut_, NULL, (void *)&msg_, err_, sizeof err_); \
            if (rc_) {                                                                             \
                rejected_++;                                                                       \
                CHECK(msg_ == NULL && err_[0]);                                                    \
            } else {                                                                               \
                codec_##lower##_free(msg_);                                                        \
            }                                                                                      \
            free(copy_);                                                                           \
        }                                                                                          \
        CHECK_MSG(rejected_ > 0, "no truncation of %zu bytes was rejected", (size_t)(len));        \
    } while (0)

static void test_interaction(void) {
    Ssna__Interaction in = SSNA__INTERACTION__INIT;
    in.user_id = "A1SWWHE1L3XR3V";
    in.item_id = "B0000223SI";
    in.event_time_ms = 1700000000123;
    in.kind = SSNA__INTERACTION__KIND__PURCHASE;
    in.weight_present_case = SSNA__INTERACTION__WEIGHT_PRESENT_WEIGHT;
    in.weight = 4.5f;
    in.event_id = "ev-\xc3\xa9-1";
    uint8_t *buf = NULL;
    size_t len = 0;
    char err[256] = "";
    CHECK_MSG(codec_interaction_encode(&in, NULL, &buf, &len, err, sizeof err) == 0, "%s", err);
    Ssna__Interaction *out = NULL;
    CHECK_MSG(codec_interaction_decode(buf, len, NULL, &out, err, sizeof err) == 0, "%s", err);
    if (out) {
        CHECK(!strcmp(out->user_id, in.user_id) && !strcmp(out->item_id, in.item_id));
        CHECK(out->event_time_ms == in.event_time_ms && out->kind == in.kind);
        CHECK(out->weight_present_case == SSNA__INTERACTION__WEIGHT_PRESENT_WEIGHT);
        CHECK(out->weight == 4.5f && !strcmp(out->event_id, in.event_id));
    }
    codec_interaction_free(out);
    CHECK_TRUNCATIONS(interaction, buf, len);

    // the weight is absent unless set: presence survives the round trip
    in.weight_present_case = SSNA__INTERACTION__WEIGHT_PRESENT__NOT_SET;
    free(buf);
    CHECK(codec_interaction_encode(&in, NULL, &buf, &len, err, sizeof err) == 0);
    CHECK(codec_interaction_decode(buf, len, NULL, &out, err, sizeof err) == 0);
    if (out) CHECK(out->weight_present_case == SSNA__INTERACTION__WEIGHT_PRESENT__NOT_SET);
    codec_interaction_free(out);

    // a NUL byte hidden inside the item id on the wire: "B0000223SI" is at the end of a field
    // whose bytes we rewrite in place, so the struct side would never see it
    uint8_t *nul = memmem(buf, len, "B0000223SI", 10);
    CHECK(nul != NULL);
    if (nul) {
        nul[3] = 0;
        CHECK(codec_interaction_decode(buf, len, NULL, &out, err, sizeof err) == -1);
        CHECK_MSG(contains(err, "item_id") && contains(err, "NUL"), "%s", err);
        size_t where = (size_t)(nul + 3 - buf);
        char want[64];
        snprintf(want, sizeof want, "byte %zu", where);
        CHECK_MSG(contains(err, want), "%s (expected %s)", err, want);
        nul[3] = 0xC3; // a lead byte followed by an ASCII digit: invalid UTF-8 at the same spot
        CHECK(codec_interaction_decode(buf, len, NULL, &out, err, sizeof err) == -1);
        CHECK_MSG(contains(err, "item_id") && contains(err, "UTF-8") && contains(err, want), "%s",
                  err);
    }
    free(buf);

    // rules on the encode side
    in.user_id = "";
    CHECK(codec_interaction_encode(&in, NULL, &buf, &len, err, sizeof err) == -1);
    CHECK_MSG(contains(err, "user_id") && contains(err, "empty"), "%s", err);
    CHECK(buf == NULL);
    in.user_id = "u1";
    in.item_id = "bad\xe2\x28\xa1";
    CHECK(codec_interaction_encode(&in, NULL, &buf, &len, err, sizeof err) == -1);
    CHECK_MSG(contains(err, "item_id") && contains(err, "UTF-8 at byte 3"), "%s", err);
    in.item_id = "i1";
    in.weight_present_case = SSNA__INTERACTION__WEIGHT_PRESENT_WEIGHT;
    in.weight = NAN;
    CHECK(codec_interaction_encode(&in, NULL, &buf, &len, err, sizeof err) == -1);
    CHECK_MSG(contains(err, "weight"), "%s", err);

    // an empty buffer is a message with every field empty: rejected by the rules, not the wire
    CHECK(codec_interaction_decode((const uint8_t *)"", 0, NULL, &out, err, sizeof err) == -1);
    CHECK_MSG(contains(err, "user_id"), "%s", err);
}

static void test_item(void) {
    char *cats[] = {"Industrial & Scientific", "Abrasive & Finishing Products"};
    Ssna__Item in = SSNA__ITEM__INIT;
    in.item_id = "B0000223SI";
    in.title = "PORTER-CABLE 740000801 4 1/2-Inch Sanding Roll \xe2\x84\xa2";
    in.n_categories = 2;
    in.categories = cats;
    in.brand = "PORTER-CABLE";
    in.event_time_ms = 42;
    uint8_t *buf = NULL;
    size_t len = 0;
    char err[256] = "";
    CHECK_MSG(codec_item_encode(&in, NULL, &buf, &len, err, sizeof err) == 0, "%s", err);
    Ssna__Item *out = NULL;
    CHECK_MSG(codec_item_decode(buf, len, NULL, &out, err, sizeof err) == 0, "%s", err);
    if (out) {
        CHECK(!strcmp(out->item_id, in.item_id) && !strcmp(out->title, in.title));
        CHECK(out->n_categories == 2 && !strcmp(out->categories[1], cats[1]));
        CHECK(!strcmp(out->brand, in.brand) && !strcmp(out->text, "") && out->event_time_ms == 42);
    }
    codec_item_free(out);
    CHECK_TRUNCATIONS(item, buf, len);
    free(buf);

    // oversized text: the limit applies per field and names it
    CodecLimits lim = codec_limits_default();
    lim.max_text_bytes = 16;
    CHECK(codec_item_encode(&in, &lim, &buf, &len, err, sizeof err) == -1);
    CHECK_MSG(contains(err, "Item.title") && contains(err, "limit of 16"), "%s", err);
    CHECK(codec_item_encode(&in, NULL, &buf, &len, err, sizeof err) == 0);
    CHECK(codec_item_decode(buf, len, &lim, &out, err, sizeof err) == -1);
    CHECK_MSG(contains(err, "title") && contains(err, "limit of 16"), "%s", err);
    free(buf);

    // an item with no text at all is rejected, one with only a category is fine
    Ssna__Item empty = SSNA__ITEM__INIT;
    empty.item_id = "X1";
    CHECK(codec_item_encode(&empty, NULL, &buf, &len, err, sizeof err) == -1);
    CHECK_MSG(contains(err, "no text"), "%s", err);
    char *one[] = {"Lab"};
    empty.n_categories = 1;
    empty.categories = one;
    CHECK(codec_item_encode(&empty, NULL, &buf, &len, err, sizeof err) == 0);
    free(buf);

    // a category with invalid UTF-8 written straight onto the wire
    uint8_t raw[] = {0x0A, 2, 'I', '9', 0x1A, 3, 'a', 0xC0, 0x80};
    CHECK(codec_item_decode(raw, sizeof raw, NULL, &out, err, sizeof err) == -1);
    CHECK_MSG(contains(err, "categories") && contains(err, "UTF-8 at byte 7"), "%s", err);
    // a string field sent with the varint wire type
    uint8_t wrong[] = {0x0A, 2, 'I', '9', 0x10, 5};
    CHECK(codec_item_decode(wrong, sizeof wrong, NULL, &out, err, sizeof err) == -1);
    CHECK_MSG(contains(err, "title") && contains(err, "wire type 0 at byte 4"), "%s", err);
    // a length that runs past the end
    uint8_t past[] = {0x0A, 2, 'I', '9', 0x12, 50, 'a'};
    CHECK(codec_item_decode(past, sizeof past, NULL, &out, err, sizeof err) == -1);
    CHECK_MSG(contains(err, "byte 4") && contains(err, "length 50"), "%s", err);
}

static void test_recommendations(void) {
    Ssna__ScoredItem items[3] = {SSNA__SCORED_ITEM__INIT, SSNA__SCORED_ITEM__INIT,
                                 SSNA__SCORED_ITEM__INIT};
    Ssna__ScoredItem *ptrs[3] = {&items[0], &items[1], &items[2]};
    const char *ids[3] = {"B00TNNWMXI", "B00IBZE2EQ", "B010Y25PQC"};
    for (int i = 0; i < 3; i++) items[i].item_id = (char *)ids[i], items[i].score = 10.0f - i;
    Ssna__Recommendations in = SSNA__RECOMMENDATIONS__INIT;
    in.user_id = "ABW8NXS7SV55K";
    in.n_items = 3;
    in.items = ptrs;
    in.model_version = "1200";
    in.variant = "gru";
    in.generated_at_ms = 1700000000999;
    in.source_topic = "events";
    in.source_partition = 3;
    in.source_offset = 123456789012;
    in.source_event_time_ms = 1700000000000;
    uint8_t *buf = NULL;
    size_t len = 0;
    char err[256] = "";
    CHECK_MSG(codec_recommendations_encode(&in, NULL, &buf, &len, err, sizeof err) == 0, "%s", err);
    Ssna__Recommendations *out = NULL;
    CHECK_MSG(codec_recommendations_decode(buf, len, NULL, &out, err, sizeof err) == 0, "%s", err);
    if (out) {
        CHECK(!strcmp(out->user_id, in.user_id) && out->n_items == 3);
        for (size_t i = 0; i < out->n_items && i < 3; i++)
            CHECK(!strcmp(out->items[i]->item_id, ids[i]) && out->items[i]->score == 10.0f - i);
        CHECK(!strcmp(out->variant, "gru") && !strcmp(out->model_version, "1200"));
        CHECK(out->source_partition == 3 && out->source_offset == 123456789012);
        CHECK(out->generated_at_ms == in.generated_at_ms);
        CHECK(out->source_event_time_ms == in.source_event_time_ms);
    }
    codec_recommendations_free(out);
    CHECK_TRUNCATIONS(recommendations, buf, len);

    // invalid UTF-8 inside a nested ScoredItem, found on the wire with its outer position
    uint8_t *id = memmem(buf, len, "B00IBZE2EQ", 10);
    CHECK(id != NULL);
    if (id) {
        id[5] = 0xFF;
        CHECK(codec_recommendations_decode(buf, len, NULL, &out, err, sizeof err) == -1);
        char want[32];
        snprintf(want, sizeof want, "byte %zu", (size_t)(id + 5 - buf));
        CHECK_MSG(contains(err, "items.item_id") && contains(err, want), "%s (want %s)", err, want);
    }
    free(buf);
    items[1].item_id = "";
    CHECK(codec_recommendations_encode(&in, NULL, &buf, &len, err, sizeof err) == -1);
    CHECK_MSG(contains(err, "items[1].item_id"), "%s", err);
}

static void test_dead_letter(void) {
    uint8_t payload[] = {0xFF, 0x00, 0x12, 0x34}; // bytes: anything goes, that is the point
    Ssna__DeadLetter in = SSNA__DEAD_LETTER__INIT;
    in.source_topic = "events";
    in.source_partition = 2;
    in.source_offset = 77;
    in.key.data = (uint8_t *)"u\x00k";
    in.key.len = 3;
    in.payload.data = payload;
    in.payload.len = sizeof payload;
    in.error = "Interaction: truncated varint of field 3 at byte 12";
    in.rejected_at_ms = 5;
    uint8_t *buf = NULL;
    size_t len = 0;
    char err[256] = "";
    CHECK_MSG(codec_dead_letter_encode(&in, NULL, &buf, &len, err, sizeof err) == 0, "%s", err);
    Ssna__DeadLetter *out = NULL;
    CHECK_MSG(codec_dead_letter_decode(buf, len, NULL, &out, err, sizeof err) == 0, "%s", err);
    if (out) {
        CHECK(!strcmp(out->source_topic, "events") && out->source_partition == 2);
        CHECK(out->source_offset == 77 && out->rejected_at_ms == 5);
        CHECK(out->key.len == 3 && !memcmp(out->key.data, "u\x00k", 3));
        CHECK(out->payload.len == 4 && !memcmp(out->payload.data, payload, 4));
        CHECK(!strcmp(out->error, in.error));
    }
    codec_dead_letter_free(out);
    CHECK_TRUNCATIONS(dead_letter, buf, len);
    free(buf);
}

/* Random bytes and random mutations of valid messages: every outcome is a clean accept or a
 * clean reject with a message; a decoded message always satisfies the rules. */
static void test_garbage(void) {
    Ssna__Interaction in = SSNA__INTERACTION__INIT;
    in.user_id = "user-17";
    in.item_id = "item-4";
    in.event_time_ms = 99;
    uint8_t *valid = NULL;
    size_t valid_len = 0;
    char err[256];
    CHECK(codec_interaction_encode(&in, NULL, &valid, &valid_len, err, sizeof err) == 0);
    int accepted = 0, rejected = 0;
    for (int round = 0; round < 20000; round++) {
        uint8_t buf[96];
        size_t len;
        if (round % 2) {
            len = next_u32() % sizeof buf;
            for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)next_u32();
        } else {
            len = valid_len;
            memcpy(buf, valid, len);
            for (int flips = 1 + (int)(next_u32() % 3); flips > 0; flips--)
                buf[next_u32() % len] = (uint8_t)next_u32();
        }
        Ssna__Interaction *out = NULL;
        err[0] = 0;
        if (codec_interaction_decode(buf, len, NULL, &out, err, sizeof err) == 0) {
            accepted++;
            CHECK(out && out->user_id[0] && out->item_id[0]);
            CHECK(utf8_invalid_at(out->user_id, strlen(out->user_id)) == strlen(out->user_id));
            codec_interaction_free(out);
        } else {
            rejected++;
            CHECK(out == NULL && err[0]);
        }
    }
    free(valid);
    CHECK_MSG(accepted > 0 && rejected > 0, "accepted %d rejected %d", accepted, rejected);
    printf("garbage: %d accepted, %d rejected\n", accepted, rejected);
}

int main(void) {
    test_interaction();
    test_item();
    test_recommendations();
    test_dead_letter();
    test_garbage();
    return check_done();
}
