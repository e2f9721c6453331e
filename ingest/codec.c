/* codec.c - validated protobuf encode/decode of ssna's wire messages.
 *
 * protobuf-c's unpack says only "NULL" for a bad buffer and accepts any bytes in a string field,
 * so decoding first walks the wire format against the message descriptor itself: that gives the
 * byte position of the first problem and checks every string (UTF-8, no NUL, size) on the raw
 * bytes, where an embedded NUL is still visible. Encoding walks the C struct through the same
 * descriptor (field offsets), so both directions share one notion of a valid message.
 */
#include "ingest/codec.h"
#include "model/errmsg.h"
#include "model/utf8.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

CodecLimits codec_limits_default(void) {
    return (CodecLimits){.max_id_bytes = CODEC_DEFAULT_MAX_ID_BYTES,
                         .max_text_bytes = CODEC_DEFAULT_MAX_TEXT_BYTES,
                         .max_message_bytes = CODEC_DEFAULT_MAX_MESSAGE_BYTES};
}

/* Ids are short keys; every other string is text with its own, larger limit. */
static size_t string_limit(const ProtobufCFieldDescriptor *f, const CodecLimits *lim) {
    size_t n = strlen(f->name);
    int is_id = n >= 3 && !strcmp(f->name + n - 3, "_id");
    return is_id ? lim->max_id_bytes : lim->max_text_bytes;
}

/* One string's bytes: UTF-8, no NUL (C consumers would silently cut there), within its limit.
 * where_base is the string's offset in the message, or SIZE_MAX when checking a C struct. */
static int check_string(const char *path, const ProtobufCFieldDescriptor *f, const uint8_t *s,
                        size_t n, size_t where_base, const CodecLimits *lim, char *err,
                        size_t errlen) {
    size_t limit = string_limit(f, lim), bad;
    const char *of = where_base == SIZE_MAX ? "of the field" : "of the message";
    size_t shift = where_base == SIZE_MAX ? 0 : where_base;
    if (n > limit)
        return errmsg_fail(err, errlen, "%s.%s (tag %u): %zu bytes, more than the limit of %zu",
                           path, f->name, f->id, n, limit);
    const uint8_t *nul = memchr(s, 0, n);
    if (nul)
        return errmsg_fail(err, errlen, "%s.%s (tag %u): NUL byte at byte %zu %s", path, f->name,
                           f->id, (size_t)(nul - s) + shift, of);
    if ((bad = utf8_invalid_at(s, n)) < n)
        return errmsg_fail(err, errlen, "%s.%s (tag %u): invalid UTF-8 at byte %zu %s", path,
                           f->name, f->id, bad + shift, of);
    return 0;
}

static int read_varint(const uint8_t *buf, size_t len, size_t *pos, uint64_t *value) {
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 70; shift += 7) {
        if (*pos >= len) return -1;
        uint8_t b = buf[(*pos)++];
        v |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) {
            *value = v;
            return 0;
        }
    }
    return -1; // more than 10 bytes
}

static int expected_wire_type(ProtobufCType type) {
    switch (type) {
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
        return 5;
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 1;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_BYTES:
    case PROTOBUF_C_TYPE_MESSAGE:
        return 2;
    default:
        return 0;
    }
}

/* Walk buf[0..len), which sits at byte base of the outermost message, against desc. */
static int wire_check(const ProtobufCMessageDescriptor *desc, const char *path, const uint8_t *buf,
                      size_t len, size_t base, const CodecLimits *lim, char *err, size_t errlen) {
    size_t pos = 0;
    while (pos < len) {
        size_t key_at = pos;
        uint64_t key, value;
        if (read_varint(buf, len, &pos, &key))
            return errmsg_fail(err, errlen, "%s: truncated or overlong field key at byte %zu", path,
                               base + key_at);
        uint64_t tag = key >> 3;
        int wire = (int)(key & 7);
        if (tag == 0 || tag > 536870911u)
            return errmsg_fail(err, errlen, "%s: invalid field number %llu at byte %zu", path,
                               (unsigned long long)tag, base + key_at);
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field(desc, (unsigned)tag);
        if (f) {
            int want = expected_wire_type(f->type);
            int packed = wire == 2 && f->label == PROTOBUF_C_LABEL_REPEATED && want != 2;
            if (wire != want && !packed)
                return errmsg_fail(
                    err, errlen, "%s.%s (tag %u): wire type %d at byte %zu, the schema expects %d",
                    path, f->name, f->id, wire, base + key_at, want);
        }
        size_t value_at = pos;
        switch (wire) {
        case 0:
            if (read_varint(buf, len, &pos, &value))
                return errmsg_fail(err, errlen, "%s: truncated varint of field %llu at byte %zu",
                                   path, (unsigned long long)tag, base + value_at);
            break;
        case 1:
        case 5: {
            size_t width = wire == 1 ? 8 : 4;
            if (len - pos < width)
                return errmsg_fail(err, errlen,
                                   "%s: field %llu needs %zu bytes at byte %zu, %zu left", path,
                                   (unsigned long long)tag, width, base + pos, len - pos);
            pos += width;
            break;
        }
        case 2: {
            if (read_varint(buf, len, &pos, &value))
                return errmsg_fail(err, errlen, "%s: truncated length of field %llu at byte %zu",
                                   path, (unsigned long long)tag, base + value_at);
            if (value > len - pos)
                return errmsg_fail(
                    err, errlen,
                    "%s: field %llu at byte %zu has length %llu but only %zu bytes remain", path,
                    (unsigned long long)tag, base + key_at, (unsigned long long)value, len - pos);
            size_t n = (size_t)value;
            if (f && f->type == PROTOBUF_C_TYPE_STRING &&
                check_string(path, f, buf + pos, n, base + pos, lim, err, errlen))
                return -1;
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
                char sub[160];
                snprintf(sub, sizeof sub, "%s.%s", path, f->name);
                if (wire_check(f->descriptor, sub, buf + pos, n, base + pos, lim, err, errlen))
                    return -1;
            }
            pos += n;
            break;
        }
        default:
            return errmsg_fail(err, errlen, "%s: unsupported wire type %d at byte %zu", path, wire,
                               base + key_at);
        }
    }
    return 0;
}

/* The C-struct side of wire_check: every string (and nested message) of msg, via the
 * descriptor's field offsets. NULL strings count as empty, as protobuf-c packs them. */
static int struct_check(const ProtobufCMessage *msg, const char *path, const CodecLimits *lim,
                        char *err, size_t errlen) {
    const ProtobufCMessageDescriptor *desc = msg->descriptor;
    for (unsigned i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &desc->fields[i];
        if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE) continue;
        const char *member = (const char *)msg + f->offset;
        size_t count = 1;
        const void *const *values = (const void *const *)member;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            count = *(const size_t *)((const char *)msg + f->quantifier_offset);
            values = *(const void *const *const *)member;
        }
        for (size_t k = 0; k < count; k++) {
            const void *v = values[k];
            if (!v) continue;
            if (f->type == PROTOBUF_C_TYPE_STRING) {
                if (check_string(path, f, v, strlen(v), SIZE_MAX, lim, err, errlen)) return -1;
            } else {
                char sub[160];
                snprintf(sub, sizeof sub, "%s.%s[%zu]", path, f->name, k);
                if (struct_check(v, sub, lim, err, errlen)) return -1;
            }
        }
    }
    return 0;
}

static int is_empty(const char *s) {
    return !s || !s[0];
}

/* The rules of each message beyond well-formed strings. */
typedef int (*rules_fn)(const ProtobufCMessage *msg, char *err, size_t errlen);

static int interaction_rules(const ProtobufCMessage *m, char *err, size_t errlen) {
    const Ssna__Interaction *x = (const Ssna__Interaction *)m;
    if (is_empty(x->user_id)) return errmsg_fail(err, errlen, "Interaction.user_id (tag 1): empty");
    if (is_empty(x->item_id)) return errmsg_fail(err, errlen, "Interaction.item_id (tag 2): empty");
    if (x->weight_present_case == SSNA__INTERACTION__WEIGHT_PRESENT_WEIGHT && !isfinite(x->weight))
        return errmsg_fail(err, errlen, "Interaction.weight (tag 5): not a finite number");
    return 0;
}

static int item_rules(const ProtobufCMessage *m, char *err, size_t errlen) {
    const Ssna__Item *x = (const Ssna__Item *)m;
    if (is_empty(x->item_id)) return errmsg_fail(err, errlen, "Item.item_id (tag 1): empty");
    int has_text = !is_empty(x->title) || !is_empty(x->brand) || !is_empty(x->text);
    for (size_t i = 0; i < x->n_categories && !has_text; i++)
        has_text = !is_empty(x->categories[i]);
    if (!has_text)
        return errmsg_fail(err, errlen,
                           "Item %s: no text (title, categories, brand and text are all empty)",
                           x->item_id);
    return 0;
}

static int recommendations_rules(const ProtobufCMessage *m, char *err, size_t errlen) {
    const Ssna__Recommendations *x = (const Ssna__Recommendations *)m;
    if (is_empty(x->user_id))
        return errmsg_fail(err, errlen, "Recommendations.user_id (tag 1): empty");
    for (size_t i = 0; i < x->n_items; i++) {
        const Ssna__ScoredItem *s = x->items[i];
        if (!s || is_empty(s->item_id))
            return errmsg_fail(err, errlen, "Recommendations.items[%zu].item_id (tag 1): empty", i);
        if (!isfinite(s->score))
            return errmsg_fail(err, errlen, "Recommendations.items[%zu].score (tag 2): not finite",
                               i);
    }
    return 0;
}

static int dead_letter_rules(const ProtobufCMessage *m, char *err, size_t errlen) {
    const Ssna__DeadLetter *x = (const Ssna__DeadLetter *)m;
    if (is_empty(x->error)) return errmsg_fail(err, errlen, "DeadLetter.error (tag 6): empty");
    return 0;
}

static const CodecLimits *limits_or_default(const CodecLimits *lim, CodecLimits *storage) {
    if (lim) return lim;
    *storage = codec_limits_default();
    return storage;
}

static int encode(const ProtobufCMessage *msg, rules_fn rules, const CodecLimits *lim,
                  uint8_t **out, size_t *out_len, char *err, size_t errlen) {
    CodecLimits defaults;
    lim = limits_or_default(lim, &defaults);
    *out = NULL;
    *out_len = 0;
    const char *name = msg->descriptor->short_name;
    if (struct_check(msg, name, lim, err, errlen) || rules(msg, err, errlen)) return -1;
    size_t n = protobuf_c_message_get_packed_size(msg);
    if (n > lim->max_message_bytes)
        return errmsg_fail(err, errlen, "%s: %zu bytes encoded, more than the limit of %zu", name,
                           n, lim->max_message_bytes);
    uint8_t *buf = malloc(n ? n : 1); // an all-default message packs to 0 bytes
    if (!buf) return errmsg_fail(err, errlen, "%s: out of memory for %zu bytes", name, n);
    protobuf_c_message_pack(msg, buf);
    *out = buf;
    *out_len = n;
    return 0;
}

static int decode(const ProtobufCMessageDescriptor *desc, rules_fn rules, const uint8_t *buf,
                  size_t len, const CodecLimits *lim, ProtobufCMessage **out, char *err,
                  size_t errlen) {
    CodecLimits defaults;
    lim = limits_or_default(lim, &defaults);
    *out = NULL;
    const char *name = desc->short_name;
    if (len > lim->max_message_bytes)
        return errmsg_fail(err, errlen, "%s: %zu bytes, more than the limit of %zu", name, len,
                           lim->max_message_bytes);
    if (len && !buf) return errmsg_fail(err, errlen, "%s: NULL buffer of %zu bytes", name, len);
    if (wire_check(desc, name, buf, len, 0, lim, err, errlen)) return -1;
    ProtobufCMessage *msg = protobuf_c_message_unpack(desc, NULL, len, buf);
    if (!msg)
        return errmsg_fail(err, errlen, "%s: %zu bytes that protobuf-c cannot unpack", name, len);
    if (rules(msg, err, errlen)) {
        protobuf_c_message_free_unpacked(msg, NULL);
        return -1;
    }
    *out = msg;
    return 0;
}

/* The public functions differ only in their message type. */
#define CODEC_MESSAGE(lower, Type, rules)                                                          \
    int codec_##lower##_encode(const Type *msg, const CodecLimits *limits, uint8_t **out,          \
                               size_t *out_len, char *err, size_t errlen) {                        \
        return encode(&msg->base, rules, limits, out, out_len, err, errlen);                       \
    }                                                                                              \
    int codec_##lower##_decode(const uint8_t *buf, size_t len, const CodecLimits *limits,          \
                               Type **out, char *err, size_t errlen) {                             \
        return decode(&ssna__##lower##__descriptor, rules, buf, len, limits,                       \
                      (ProtobufCMessage **)out, err, errlen);                                      \
    }                                                                                              \
    void codec_##lower##_free(Type *msg) {                                                         \
        if (msg) protobuf_c_message_free_unpacked(&msg->base, NULL);                               \
    }

CODEC_MESSAGE(interaction, Ssna__Interaction, interaction_rules)
CODEC_MESSAGE(item, Ssna__Item, item_rules)
CODEC_MESSAGE(recommendations, Ssna__Recommendations, recommendations_rules)
CODEC_MESSAGE(dead_letter, Ssna__DeadLetter, dead_letter_rules)
