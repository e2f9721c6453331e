/* tokenizer.c - the encoding pipeline of Hugging Face `tokenizers`, for one sequence:
 *   decode UTF-8 (repairing) -> split off added tokens matched on the raw text -> normalize
 *   (BertNormalizer) -> split off added tokens matched on normalized text -> pre-tokenize
 *   (BertPreTokenizer, or ByteLevel with the GPT-2 pattern) -> model (WordPiece or BPE) ->
 *   truncate -> special tokens.
 * Every step reads only the immutable Tokenizer and per-call scratch memory, so encode calls may
 * run concurrently. */
#include "model/tokenizer_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A possible BPE merge of the symbol at pos with its right neighbour. */
typedef struct {
    int rank, pos, left, right, merged;
} BpeCand;

/* Content ids of one call, and scratch space for the word being tokenized. */
typedef struct {
    int *ids;
    size_t n, cap;    /* ids has room for cap + 1: one past cap tells that truncation happened */
    char *word;       /* UTF-8 of the current word */
    char *key;        /* vocabulary look-up key: prefix + piece + suffix */
    size_t *char_off; /* byte offset of each character of the word, [chars + 1] */
    int *symbols;     /* BPE: symbol ids of the word, [4 * word_cap] (one per byte at most) */
    int *next, *prev; /* BPE: neighbours of each symbol, -1 at the ends, [4 * word_cap] each */
    BpeCand *heap;    /* BPE: candidate merges, [12 * word_cap] */
    size_t word_cap;  /* capacity in code points of the buffers above */
} Output;

static int output_full(const Output *o) {
    return o->n > o->cap;
}

static void output_push(Output *o, int id) {
    if (o->n <= o->cap) o->ids[o->n++] = id;
}

static void output_free(Output *o) {
    free(o->word), free(o->key), free(o->char_off), free(o->symbols);
    free(o->next), free(o->prev), free(o->heap);
}

/* Make the word buffers hold a word of n code points (4 bytes each at most). */
static int output_reserve_word(Output *o, size_t n) {
    if (n <= o->word_cap) return 0;
    size_t cap = n < 64 ? 64 : 2 * n;
    Output fresh = {0};
    fresh.word = malloc(4 * cap + 1);
    fresh.key = malloc(4 * cap + 64);
    fresh.char_off = malloc((4 * cap + 1) * sizeof(size_t));
    fresh.symbols = malloc(4 * cap * sizeof(int));
    fresh.next = malloc(4 * cap * sizeof(int));
    fresh.prev = malloc(4 * cap * sizeof(int));
    fresh.heap = malloc(12 * cap * sizeof(BpeCand));
    if (!fresh.word || !fresh.key || !fresh.char_off || !fresh.symbols || !fresh.next ||
        !fresh.prev || !fresh.heap) {
        output_free(&fresh);
        return -1;
    }
    output_free(o);
    o->word = fresh.word, o->key = fresh.key, o->char_off = fresh.char_off;
    o->symbols = fresh.symbols, o->next = fresh.next, o->prev = fresh.prev, o->heap = fresh.heap;
    o->word_cap = cap;
    return 0;
}

/* UTF-8 of cps[0..n) into o->word, with the byte offset of every character; returns the bytes. */
static size_t output_word_utf8(Output *o, const uint32_t *cps, size_t n) {
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        o->char_off[i] = bytes;
        bytes += (size_t)tok_utf8_put(cps[i], o->word + bytes);
    }
    o->char_off[n] = bytes;
    return bytes;
}

/* Id of prefix + word[a..b) + suffix (prefix/suffix may be empty), or -1. */
static int lookup_piece(const Tokenizer *t, Output *o, size_t a, size_t b, int with_prefix,
                        int with_suffix) {
    size_t plen = with_prefix ? t->subword_prefix_len : 0;
    size_t slen = with_suffix ? t->word_suffix_len : 0;
    if (!plen && !slen) return tok_vocab_find(&t->vocab, o->word + a, b - a);
    memcpy(o->key, t->subword_prefix, plen);
    memcpy(o->key + plen, o->word + a, b - a);
    memcpy(o->key + plen + (b - a), t->word_suffix, slen);
    return tok_vocab_find(&t->vocab, o->key, plen + (b - a) + slen);
}

/* ---- WordPiece ---- */

/* Greedy longest-match-first over the characters of one word, cps[0..n). */
static int wordpiece_word(const Tokenizer *t, Output *o, const uint32_t *cps, size_t n) {
    if (n > (size_t)t->max_chars_per_word) {
        output_push(o, t->unk_id);
        return 0;
    }
    if (output_reserve_word(o, n) != 0) return -1;
    output_word_utf8(o, cps, n);
    size_t first = o->n;
    for (size_t s = 0; s < n;) { /* to the end: a bad piece late in the word makes it all unk */
        size_t extra = s > 0 ? t->subword_prefix_len : 0, e = n;
        /* no vocabulary entry is longer than max_token_len: skip hopeless look-ups */
        while (e > s && o->char_off[e] - o->char_off[s] + extra > t->vocab.max_token_len) e--;
        int id = -1;
        for (; e > s; e--) {
            id = lookup_piece(t, o, o->char_off[s], o->char_off[e], s > 0, 0);
            if (id >= 0) break;
        }
        if (id < 0) { /* some piece matches nothing: the whole word is unknown */
            o->n = first;
            output_push(o, t->unk_id);
            return 0;
        }
        output_push(o, id);
        s = e;
    }
    return 0;
}

/* ---- BPE ---- */

static int cand_less(const BpeCand *a, const BpeCand *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

/* Push the merge of symbol pos with its right neighbour, if the merges table has it. */
static void cand_push(const Tokenizer *t, Output *o, size_t *n_heap, int pos) {
    if (pos < 0 || o->next[pos] < 0) return;
    int right = o->next[pos], merged;
    int rank = tok_merges_find(&t->merges, o->symbols[pos], o->symbols[right], &merged);
    if (rank < 0) return;
    BpeCand c = {rank, pos, o->symbols[pos], o->symbols[right], merged};
    size_t i = (*n_heap)++;
    while (i > 0 && cand_less(&c, &o->heap[(i - 1) / 2])) {
        o->heap[i] = o->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    o->heap[i] = c;
}

static BpeCand cand_pop(Output *o, size_t *n_heap) {
    BpeCand top = o->heap[0], last = o->heap[--*n_heap];
    size_t i = 0, n = *n_heap;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= n) break;
        if (child + 1 < n && cand_less(&o->heap[child + 1], &o->heap[child])) child++;
        if (!cand_less(&o->heap[child], &last)) break;
        o->heap[i] = o->heap[child];
        i = child;
    }
    if (n > 0) o->heap[i] = last;
    return top;
}

/* Merge the n symbols in o->symbols, lowest merge rank first and leftmost among equals, with a
 * priority queue as Hugging Face's BPE does (O(n log n), so a long word cannot stall a call),
 * then emit what is left. A popped candidate is stale when either side has merged since: a
 * symbol's text only grows, so its id never comes back. */
static void bpe_merge_emit(const Tokenizer *t, Output *o, size_t n) {
    if (n == 0) return;
    int *sym = o->symbols;
    for (size_t i = 0; i < n; i++) {
        o->prev[i] = (int)i - 1;
        o->next[i] = i + 1 < n ? (int)i + 1 : -1;
    }
    size_t n_heap = 0;
    for (size_t i = 0; i + 1 < n; i++) cand_push(t, o, &n_heap, (int)i);
    while (n_heap > 0) {
        BpeCand c = cand_pop(o, &n_heap);
        int right = o->next[c.pos];
        if (sym[c.pos] != c.left || right < 0 || sym[right] != c.right) continue;
        sym[c.pos] = c.merged;
        sym[right] = -1;
        o->next[c.pos] = o->next[right];
        if (o->next[right] >= 0) o->prev[o->next[right]] = c.pos;
        cand_push(t, o, &n_heap, o->prev[c.pos]);
        cand_push(t, o, &n_heap, c.pos);
    }
    for (int i = 0; i >= 0; i = o->next[i]) output_push(o, sym[i]);
}

/* One pre-tokenized word cps[0..n) through BPE. */
static int bpe_word(const Tokenizer *t, Output *o, const uint32_t *cps, size_t n) {
    if (output_reserve_word(o, n) != 0) return -1;
    size_t bytes = output_word_utf8(o, cps, n);
    if (t->ignore_merges) {
        int id = lookup_piece(t, o, 0, bytes, 0, 0); /* the bare word, as HF looks it up */
        if (id >= 0) {
            output_push(o, id);
            return 0;
        }
    }
    int *sym = o->symbols;
    size_t ns = 0;
    if (t->byte_level) {
        /* GPT-2 symbols are bytes; a byte missing from the vocabulary is dropped, as
         * `tokenizers` does for a model without an unknown token */
        for (size_t i = 0; i < bytes; i++) {
            int id = t->byte_ids[(unsigned char)o->word[i]];
            if (id >= 0) sym[ns++] = id;
        }
    } else {
        int prev_unk = 0;
        for (size_t i = 0; i < n; i++) {
            int id = lookup_piece(t, o, o->char_off[i], o->char_off[i + 1], i > 0, i + 1 == n);
            if (id < 0) {
                if (t->unk_id < 0 || (t->fuse_unk && prev_unk)) continue;
                id = t->unk_id;
            }
            prev_unk = id == t->unk_id;
            sym[ns++] = id;
        }
    }
    bpe_merge_emit(t, o, ns);
    return 0;
}

static int model_word(const Tokenizer *t, Output *o, const uint32_t *cps, size_t n) {
    if (n == 0 || output_full(o)) return 0;
    return t->model == TOK_MODEL_WORDPIECE ? wordpiece_word(t, o, cps, n) : bpe_word(t, o, cps, n);
}

/* ---- pre-tokenizers ---- */

/* BertPreTokenizer: split on whitespace (dropped) and around every punctuation character. */
static int pre_bert(const Tokenizer *t, Output *o, const uint32_t *c, size_t n) {
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        int ws = tok_is_whitespace(c[i]);
        if (!ws && !tok_is_bert_punct(c[i])) continue;
        if (model_word(t, o, c + start, i - start) != 0) return -1;
        if (!ws && model_word(t, o, c + i, 1) != 0) return -1;
        start = i + 1;
    }
    return model_word(t, o, c + start, n - start);
}

/* WhitespaceSplit: words are the maximal runs of non-whitespace. */
static int pre_whitespace_split(const Tokenizer *t, Output *o, const uint32_t *c, size_t n) {
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && !tok_is_whitespace(c[i])) continue;
        if (model_word(t, o, c + start, i - start) != 0) return -1;
        start = i + 1;
    }
    return 0;
}

enum { GPT2_LETTER, GPT2_NUMBER, GPT2_OTHER, GPT2_SPACE };

static int gpt2_kind(uint32_t cp) {
    if (tok_is_whitespace(cp)) return GPT2_SPACE;
    int props = tok_unicode_props(cp);
    return (props & TOK_PROP_LETTER)   ? GPT2_LETTER
           : (props & TOK_PROP_NUMBER) ? GPT2_NUMBER
                                       : GPT2_OTHER;
}

/* End of the GPT-2 pattern's match at c[i] (i < n), by hand:
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * tried in that order, as Oniguruma does. */
static size_t gpt2_match_end(const uint32_t *c, size_t n, size_t i) {
    if (c[i] == '\'' && i + 1 < n) {
        uint32_t a = c[i + 1], b = i + 2 < n ? c[i + 2] : 0;
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
            return i + 3;
    }
    size_t j = i;
    if (c[i] == ' ' && i + 1 < n && gpt2_kind(c[i + 1]) != GPT2_SPACE) j = i + 1;
    int kind = gpt2_kind(c[j]);
    if (kind != GPT2_SPACE) {
        size_t e = j + 1;
        while (e < n && gpt2_kind(c[e]) == kind) e++;
        return e;
    }
    size_t e = i + 1;
    while (e < n && tok_is_whitespace(c[e])) e++;
    /* \s+(?!\S): leave the last space of a run to the word that follows it */
    if (e < n && e - i >= 2) return e - 1;
    return e;
}

/* ByteLevel: optional leading space, then the GPT-2 pattern (when use_regex) splits words. */
static int pre_byte_level(const Tokenizer *t, Output *o, const uint32_t *c, size_t n,
                          uint32_t *with_space) {
    if (n == 0) return 0;
    if (t->add_prefix_space && c[0] != ' ') {
        with_space[0] = ' ';
        memcpy(with_space + 1, c, n * sizeof(*c));
        c = with_space, n++;
    }
    if (!t->use_regex) return model_word(t, o, c, n);
    for (size_t i = 0; i < n && !output_full(o);) {
        size_t e = gpt2_match_end(c, n, i);
        if (model_word(t, o, c + i, e - i) != 0) return -1;
        i = e;
    }
    return 0;
}

/* ---- normalizer and added tokens ---- */

size_t tok_normalize(const Tokenizer *t, const uint32_t *in, size_t n, uint32_t *out) {
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = in[i];
        if (t->clean_text) {
            /* control characters go first, even those that are also White_Space (\v, \f,
             * U+0085); only \t \n \r survive, as spaces */
            int keep_control = cp == '\t' || cp == '\n' || cp == '\r';
            if (cp == 0 || cp == 0xFFFD ||
                (!keep_control && (tok_unicode_props(cp) & TOK_PROP_OTHER)))
                continue;
            if (tok_is_whitespace(cp)) cp = ' ';
        }
        int pad = t->cjk_chars && tok_is_cjk(cp);
        if (pad) out[m++] = ' ';
        uint32_t stripped[3];
        int ns = 1;
        stripped[0] = cp;
        if (t->strip_accents) ns = tok_strip_accents(cp, stripped);
        for (int k = 0; k < ns; k++) {
            if (t->lowercase)
                m += (size_t)tok_to_lower(stripped[k], out + m);
            else
                out[m++] = stripped[k];
        }
        if (pad) out[m++] = ' ';
    }
    return m;
}

/* Longest added token (of the given normalized-ness) that starts at c[i], or NULL. */
static const TokAddedToken *added_match(const Tokenizer *t, const uint32_t *c, size_t n, size_t i,
                                        int normalized) {
    const TokAddedToken *best = NULL;
    for (size_t k = 0; k < t->n_added; k++) {
        const TokAddedToken *a = &t->added[k];
        if (a->normalized != normalized || a->n_cps == 0 || a->n_cps > n - i) continue;
        if (best && a->n_cps <= best->n_cps) continue;
        if (c[i] == a->cps[0] && memcmp(c + i, a->cps, a->n_cps * sizeof(*c)) == 0) best = a;
    }
    return best;
}

typedef struct {
    uint32_t *norm;  /* normalized text, room for 6 code points per input code point */
    uint32_t *spare; /* room for one pre-tokenizer input with a prefix space */
} Scratch;

static int pre_tokenize(const Tokenizer *t, Output *o, Scratch *s, const uint32_t *c, size_t n) {
    switch (t->pre) {
    case TOK_PRE_BERT:
        return pre_bert(t, o, c, n);
    case TOK_PRE_BYTE_LEVEL:
        return pre_byte_level(t, o, c, n, s->spare);
    case TOK_PRE_WHITESPACE_SPLIT:
        return pre_whitespace_split(t, o, c, n);
    case TOK_PRE_NONE:
        return model_word(t, o, c, n);
    }
    return 0;
}

/* Split c[0..n) on added tokens of the given normalized-ness (leftmost, longest), handing the
 * text between them on: to the normalizer (stage 0) or to the pre-tokenizer (stage 1). */
static int split_added(const Tokenizer *t, Output *o, Scratch *s, const uint32_t *c, size_t n,
                       int stage) {
    size_t start = 0;
    for (size_t i = 0; i <= n && !output_full(o);) {
        const TokAddedToken *a = i < n ? added_match(t, c, n, i, stage) : NULL;
        if (i < n && !a) {
            i++;
            continue;
        }
        size_t end = i; /* the text before the token; lstrip eats its trailing whitespace */
        if (a && a->lstrip)
            while (end > start && tok_is_whitespace(c[end - 1])) end--;
        if (end > start) {
            int rc = stage == 0 ? split_added(t, o, s, s->norm,
                                              tok_normalize(t, c + start, end - start, s->norm), 1)
                                : pre_tokenize(t, o, s, c + start, end - start);
            if (rc != 0) return -1;
        }
        if (!a) break;
        output_push(o, a->id);
        i += a->n_cps;
        if (a->rstrip)
            while (i < n && tok_is_whitespace(c[i])) i++;
        start = i;
    }
    return 0;
}

/* ---- public interface ---- */

size_t tokenizer_invalid_utf8(const char *text, size_t len, size_t *first_offset) {
    size_t bad = 0, first = SIZE_MAX;
    tok_utf8_decode(text, len, NULL, &bad, &first);
    if (first_offset && bad) *first_offset = first;
    return bad;
}

int tokenizer_encode(const Tokenizer *t, const char *text, size_t len, int max_len, int *ids,
                     int *n_ids, int *truncated, char *err, size_t errlen) {
    *n_ids = 0;
    if (truncated) *truncated = 0;
    if (max_len <= 0) max_len = t->max_len;
    int n_special = t->n_prefix + t->n_suffix;
    if (max_len < n_special)
        return errmsg_fail(err, errlen, "max_len %d cannot hold the %d special tokens", max_len,
                           n_special);
    if (!text && len) return errmsg_fail(err, errlen, "text is NULL");
    if (len > ((size_t)1 << 30))
        return errmsg_fail(err, errlen, "text of %zu bytes is over the 1 GiB limit", len);
    Output o = {0};
    o.cap = (size_t)(max_len - n_special);
    Scratch s = {0};
    uint32_t *cps = malloc((len + 1) * sizeof(*cps));
    s.norm = malloc((6 * len + 1) * sizeof(*s.norm));
    s.spare = malloc((6 * len + 2) * sizeof(*s.spare));
    o.ids = malloc((o.cap + 1) * sizeof(*o.ids));
    int rc = -1;
    if (!cps || !s.norm || !s.spare || !o.ids) {
        errmsg_fail(err, errlen, "out of memory for a text of %zu bytes", len);
        goto done;
    }
    size_t n = tok_utf8_decode(text, len, cps, NULL, NULL);
    if (split_added(t, &o, &s, cps, n, 0) != 0) {
        errmsg_fail(err, errlen, "out of memory for a text of %zu bytes", len);
        goto done;
    }
    size_t kept = o.n > o.cap ? o.cap : o.n;
    if (truncated) *truncated = o.n > o.cap;
    int k = 0;
    for (int i = 0; i < t->n_prefix; i++) ids[k++] = t->prefix_ids[i];
    for (size_t i = 0; i < kept; i++) ids[k++] = o.ids[i];
    for (int i = 0; i < t->n_suffix; i++) ids[k++] = t->suffix_ids[i];
    *n_ids = k;
    rc = 0;
done:
    free(cps), free(s.norm), free(s.spare), free(o.ids);
    output_free(&o);
    return rc;
}

void tokenizer_free(Tokenizer *t) {
    if (!t) return;
    tok_vocab_free(&t->vocab);
    tok_merges_free(&t->merges);
    for (size_t i = 0; i < t->n_added; i++) free(t->added[i].cps);
    free(t->added);
    free(t);
}

int tokenizer_pad_id(const Tokenizer *t) {
    return t->pad_id;
}

int tokenizer_max_len(const Tokenizer *t) {
    return t->max_len;
}

void tokenizer_set_max_len(Tokenizer *t, int max_len) {
    if (max_len > 0) t->max_len = max_len;
}

const char *tokenizer_kind(const Tokenizer *t) {
    return t->kind;
}

int tokenizer_vocab_size(const Tokenizer *t) {
    int n = t->vocab.n_ids;
    while (n > 0 && !t->vocab.tokens[n - 1]) n--;
    return n;
}

const char *tokenizer_id_to_token(const Tokenizer *t, int id) {
    return id >= 0 && id < t->vocab.n_ids ? t->vocab.tokens[id] : NULL;
}

int tokenizer_token_to_id(const Tokenizer *t, const char *token) {
    return tok_vocab_find(&t->vocab, token, strlen(token));
}
