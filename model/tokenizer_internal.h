/* tokenizer_internal.h - what the tokenizer_*.c files share; not part of the public interface
 * (that is model/tokenizer.h).
 *
 * Text moves through the pipeline as arrays of Unicode code points (uint32_t): decoding with
 * repair happens once, the normalizer and pre-tokenizers work per code point, and the models see
 * UTF-8 bytes of one word at a time.
 */
#ifndef SSNA_MODEL_TOKENIZER_INTERNAL_H
#define SSNA_MODEL_TOKENIZER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "model/errmsg.h"
#include "model/tokenizer.h"

/* ---- Unicode (tokenizer_unicode.c, tables in tokenizer_tables.c) ---- */

/* Property bits of a code point. The BERT ones follow Unicode 8.0, as Hugging Face's
 * unicode_categories crate does; letters and numbers (the GPT-2 pattern) a recent Unicode. */
enum {
    TOK_PROP_OTHER = 1,   /* Cc Cf Cs Co: dropped by BERT's clean_text */
    TOK_PROP_MN = 2,      /* nonspacing mark: dropped by accent stripping */
    TOK_PROP_PUNCT = 4,   /* P*: split off by BertPreTokenizer */
    TOK_PROP_LETTER = 8,  /* L* */
    TOK_PROP_NUMBER = 16, /* N* */
};

typedef struct {
    uint32_t cp;
    uint32_t out[3]; /* 0-terminated when shorter */
} TokStripMulti;

typedef struct {
    uint32_t start, end; /* inclusive */
    int32_t delta;       /* lower = cp + delta */
    uint32_t stride;     /* every stride-th code point from start maps */
} TokLowerRun;

extern const uint32_t tok_prop_runs[]; /* start << 5 | TOK_PROP_* bits, ascending starts */
extern const size_t tok_prop_runs_count;
extern const uint32_t tok_strip_single[]; /* pairs: cp, NFD(cp) without Mn (one code point) */
extern const size_t tok_strip_single_count;
extern const TokStripMulti tok_strip_multi[];
extern const size_t tok_strip_multi_count;
extern const TokLowerRun tok_lower_runs[];
extern const size_t tok_lower_runs_count;

/* TOK_PROP_* bits of code point cp. */
int tok_unicode_props(uint32_t cp);
/* Unicode White_Space property (what Rust's char::is_whitespace and Oniguruma's \s test). */
int tok_is_whitespace(uint32_t cp);
/* BERT punctuation: ASCII punctuation or any P* category. */
int tok_is_bert_punct(uint32_t cp);
/* The CJK ideograph blocks BERT pads with spaces. */
int tok_is_cjk(uint32_t cp);
/* NFD of cp with every Mn mark removed, written to out[0..3]; returns how many (0-3). */
int tok_strip_accents(uint32_t cp, uint32_t out[3]);
/* Full lower-case mapping of cp into out[0..2]; returns how many (1 or 2). */
int tok_to_lower(uint32_t cp, uint32_t out[2]);
/* Decode UTF-8 text[0..len) into cps (room for len code points), replacing each maximal invalid
 * subsequence by U+FFFD as Rust's from_utf8_lossy and Python's errors="replace" do. Returns the
 * number of code points (cps may be NULL to only count); *n_invalid counts replacements and
 * *first_invalid is the byte offset of the first one (SIZE_MAX when none). */
size_t tok_utf8_decode(const char *text, size_t len, uint32_t *cps, size_t *n_invalid,
                       size_t *first_invalid);
/* Append the UTF-8 encoding of cp to out (room for 4 bytes); returns bytes written. */
int tok_utf8_put(uint32_t cp, char *out);

/* ---- Vocabulary: byte string -> id (tokenizer_vocab.c) ---- */

typedef struct {
    char **tokens;     /* [n_ids] id -> NUL-terminated token, NULL for unused ids */
    size_t *token_len; /* [n_ids] */
    int n_ids;
    int *slots; /* open addressing, [n_slots] ids, -1 empty */
    size_t n_slots;
    size_t max_token_len;
} TokVocab;

/* Add token s[0..len) with id; a duplicate token or id is an error (-1). */
int tok_vocab_add(TokVocab *v, const char *s, size_t len, int id, char *err, size_t errlen);
/* Id of token s[0..len), or -1. */
int tok_vocab_find(const TokVocab *v, const char *s, size_t len);
void tok_vocab_free(TokVocab *v);

/* BPE merges: (left id, right id) -> (rank, merged id). */
typedef struct {
    uint64_t *keys; /* left << 32 | right, UINT64_MAX empty */
    int *rank, *merged;
    size_t n_slots, count;
} TokMerges;

int tok_merges_add(TokMerges *m, int left, int right, int rank, int merged);
/* Rank of merging left+right (and the merged id in *merged), or -1 when they never merge. */
int tok_merges_find(const TokMerges *m, int left, int right, int *merged);
void tok_merges_free(TokMerges *m);

/* ---- The tokenizer ---- */

typedef enum { TOK_MODEL_WORDPIECE, TOK_MODEL_BPE } TokModelKind;
typedef enum {
    TOK_PRE_NONE,
    TOK_PRE_BERT,
    TOK_PRE_BYTE_LEVEL,
    TOK_PRE_WHITESPACE_SPLIT
} TokPreKind;

typedef struct {
    uint32_t *cps; /* content as code points (normalized already when normalized is set) */
    size_t n_cps;
    int id;
    int lstrip, rstrip, normalized;
} TokAddedToken;

#define TOK_MAX_SPECIAL 8

struct Tokenizer {
    TokModelKind model;
    char kind[32]; /* "bert-wordpiece", "byte-level-bpe", "bpe" */
    /* normalizer (BertNormalizer flags; a bare Lowercase normalizer sets only lowercase) */
    int clean_text, cjk_chars, strip_accents, lowercase;
    /* pre-tokenizer */
    TokPreKind pre;
    int add_prefix_space, use_regex, byte_level; /* byte_level: BPE symbols are GPT-2 bytes */
    /* model */
    TokVocab vocab;
    int unk_id;              /* -1 when the model has no unknown token */
    char subword_prefix[16]; /* WordPiece "##", BPE continuing_subword_prefix */
    size_t subword_prefix_len;
    char word_suffix[16]; /* BPE end_of_word_suffix */
    size_t word_suffix_len;
    int max_chars_per_word; /* WordPiece: longer words become unk */
    int fuse_unk, ignore_merges;
    TokMerges merges;
    int byte_ids[256]; /* byte-level BPE: id of each byte's symbol, -1 when absent */
    /* added tokens, matched before (normalized == 0) or after (1) normalization */
    TokAddedToken *added;
    size_t n_added;
    /* post-processor: ids around the sequence */
    int prefix_ids[TOK_MAX_SPECIAL], n_prefix;
    int suffix_ids[TOK_MAX_SPECIAL], n_suffix;
    int pad_id;
    int max_len; /* default truncation length */
};

/* The normalizer of t (BertNormalizer steps in Hugging Face's order: clean_text, CJK padding,
 * NFD + Mn removal, lower-casing) on in[0..n) into out, which has room for 6n code points.
 * Returns the output length. (tokenizer.c) */
size_t tok_normalize(const Tokenizer *t, const uint32_t *in, size_t n, uint32_t *out);

/* Loaders (tokenizer_load.c): fill t from a file in dir; errors name the file. */
int tok_load_tokenizer_json(Tokenizer *t, const char *path, char *err, size_t errlen);
int tok_load_vocab_txt(Tokenizer *t, const char *dir, char *err, size_t errlen);
int tok_load_vocab_json(Tokenizer *t, const char *dir, char *err, size_t errlen);

#endif
