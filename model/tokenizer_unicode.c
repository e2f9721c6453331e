/* tokenizer_unicode.c - the Unicode properties the tokenizers need, over the generated tables in
 * tokenizer_tables.c, plus UTF-8 decoding with repair. */
#include "model/tokenizer_internal.h"

#include <stdint.h>

int tok_unicode_props(uint32_t cp) {
    if (cp >= 0x110000) return 0;
    /* last run whose start <= cp */
    size_t lo = 0, hi = tok_prop_runs_count;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if ((tok_prop_runs[mid] >> 5) <= cp)
            lo = mid;
        else
            hi = mid;
    }
    return (int)(tok_prop_runs[lo] & 31);
}

int tok_is_whitespace(uint32_t cp) {
    switch (cp) {
    case 0x09:
    case 0x0A:
    case 0x0B:
    case 0x0C:
    case 0x0D:
    case 0x20:
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
        return 1;
    default:
        return cp >= 0x2000 && cp <= 0x200A;
    }
}

int tok_is_bert_punct(uint32_t cp) {
    /* BERT counts all of ASCII's non-alphanumeric printables as punctuation, "$+<=>^`|~" too,
     * although Unicode files them as symbols. */
    if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) ||
        (cp >= 123 && cp <= 126))
        return 1;
    return (tok_unicode_props(cp) & TOK_PROP_PUNCT) != 0;
}

int tok_is_cjk(uint32_t cp) {
    /* The ranges of Hugging Face's BertNormalizer (its 0x2B920 differs from Google BERT's 0x2B820;
     * ids are compared with Hugging Face's). */
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
           (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
           (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

int tok_strip_accents(uint32_t cp, uint32_t out[3]) {
    if (cp >= 0xAC00 && cp <= 0xD7A3) {
        /* Hangul syllable: algorithmic NFD into leading, vowel and optional trailing jamo (all
         * Lo, so nothing is stripped). */
        uint32_t s = cp - 0xAC00;
        out[0] = 0x1100 + s / (21 * 28);
        out[1] = 0x1161 + (s % (21 * 28)) / 28;
        if (s % 28 == 0) return 2;
        out[2] = 0x11A7 + s % 28;
        return 3;
    }
    if (cp < 0xC0) {
        out[0] = cp;
        return (tok_unicode_props(cp) & TOK_PROP_MN) ? 0 : 1;
    }
    size_t lo = 0, hi = tok_strip_single_count / 2;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint32_t key = tok_strip_single[2 * mid];
        if (key == cp) {
            out[0] = tok_strip_single[2 * mid + 1];
            return 1;
        }
        if (key < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    lo = 0, hi = tok_strip_multi_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const TokStripMulti *m = &tok_strip_multi[mid];
        if (m->cp == cp) {
            int n = 0;
            while (n < 3 && m->out[n]) out[n] = m->out[n], n++;
            return n;
        }
        if (m->cp < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    out[0] = cp;
    return (tok_unicode_props(cp) & TOK_PROP_MN) ? 0 : 1;
}

int tok_to_lower(uint32_t cp, uint32_t out[2]) {
    if (cp < 0x80) {
        out[0] = cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
        return 1;
    }
    if (cp == 0x130) { /* the one unconditional multi-character lowering: i + combining dot */
        out[0] = 'i';
        out[1] = 0x307;
        return 2;
    }
    out[0] = cp;
    size_t lo = 0, hi = tok_lower_runs_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const TokLowerRun *r = &tok_lower_runs[mid];
        if (cp < r->start) {
            hi = mid;
        } else if (cp > r->end) {
            lo = mid + 1;
        } else {
            if ((cp - r->start) % r->stride == 0) out[0] = (uint32_t)((int32_t)cp + r->delta);
            break;
        }
    }
    return 1;
}

/* Length of the well-formed UTF-8 prefix at s[0..avail) per Unicode Table 3-7: returns the full
 * sequence length when complete (decoding into *cp), else -(bytes forming a maximal invalid
 * subpart, at least 1). */
static int utf8_sequence(const unsigned char *s, size_t avail, uint32_t *cp) {
    unsigned char b0 = s[0];
    if (b0 < 0x80) {
        *cp = b0;
        return 1;
    }
    int need;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        need = 1;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        need = 2;
        if (b0 == 0xE0) lo = 0xA0;
        if (b0 == 0xED) hi = 0x9F; /* no surrogates */
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        need = 3;
        if (b0 == 0xF0) lo = 0x90;
        if (b0 == 0xF4) hi = 0x8F;
    } else {
        return -1;
    }
    uint32_t v = b0 & (0x3F >> need);
    for (int i = 1; i <= need; i++) {
        if ((size_t)i >= avail) return -i;
        unsigned char b = s[i];
        if (b < lo || b > hi) return -i;
        lo = 0x80, hi = 0xBF;
        v = v << 6 | (b & 0x3F);
    }
    *cp = v;
    return need + 1;
}

size_t tok_utf8_decode(const char *text, size_t len, uint32_t *cps, size_t *n_invalid,
                       size_t *first_invalid) {
    const unsigned char *s = (const unsigned char *)text;
    size_t n = 0, bad = 0, first = SIZE_MAX;
    for (size_t i = 0; i < len;) {
        uint32_t cp = 0;
        int k = utf8_sequence(s + i, len - i, &cp);
        if (k > 0) {
            if (cps) cps[n] = cp;
            n++;
            i += (size_t)k;
        } else {
            if (first == SIZE_MAX) first = i;
            bad++;
            if (cps) cps[n] = 0xFFFD;
            n++;
            i += (size_t)-k;
        }
    }
    if (n_invalid) *n_invalid = bad;
    if (first_invalid) *first_invalid = first;
    return n;
}

int tok_utf8_put(uint32_t cp, char *out) {
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | cp >> 6);
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | cp >> 18);
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}
