/* tokenizer.h - the text tokenizers of Hugging Face checkpoints, in C: BERT WordPiece and
 * (byte-level) BPE as RoBERTa/GPT-2 use it, producing the same ids as Hugging Face `tokenizers`.
 *
 * A checkpoint folder is read in this order of preference:
 *   1. tokenizer.json  - the `tokenizers` format: normalizer (BertNormalizer, Lowercase),
 *                        pre-tokenizer (BertPreTokenizer, ByteLevel), model (WordPiece, BPE),
 *                        added/special tokens, post-processor (TemplateProcessing,
 *                        BertProcessing, RobertaProcessing);
 *   2. vocab.txt       - BERT WordPiece; tokenizer_config.json's do_lower_case, strip_accents and
 *                        tokenize_chinese_chars when present (default: lower-case, strip accents);
 *   3. vocab.json + merges.txt - RoBERTa byte-level BPE with <s> ... </s>.
 *
 * Invalid UTF-8 is repaired, never rejected: each maximal invalid byte sequence becomes U+FFFD
 * (exactly what Python's bytes.decode(errors="replace") and Rust's from_utf8_lossy do). BERT's
 * clean_text then drops it; byte-level BPE encodes it as the bytes of U+FFFD. Nothing is read
 * past text[len - 1]; text need not be NUL-terminated.
 *
 * A loaded Tokenizer is immutable: tokenizer_encode may run on any number of threads at once.
 */
#ifndef SSNA_MODEL_TOKENIZER_H
#define SSNA_MODEL_TOKENIZER_H

#include <stddef.h>

typedef struct Tokenizer Tokenizer;

/* Load the tokenizer of the checkpoint folder model_dir (see above for the files tried).
 * 0 on success with *out set; -1 with a message naming the file (and entry) otherwise. */
int tokenizer_load(Tokenizer **out, const char *model_dir, char *err, size_t errlen);

/* Tokenize text[0..len) into ids[0..*n_ids), special tokens included ([CLS] ... [SEP] or
 * <s> ... </s>). ids must have room for max_len entries; max_len <= 0 means
 * tokenizer_max_len(t). Longer results are truncated as Hugging Face does for one sequence: the
 * first max_len - (number of special tokens) content tokens are kept, then the closing special
 * token(s). *truncated (when not NULL) says whether tokens were dropped. Returns 0, or -1 when
 * max_len cannot even hold the special tokens or memory runs out. */
int tokenizer_encode(const Tokenizer *t, const char *text, size_t len, int max_len, int *ids,
                     int *n_ids, int *truncated, char *err, size_t errlen);

/* Number of invalid UTF-8 sequences in text[0..len) that encoding would replace by U+FFFD, and
 * the byte offset of the first in *first_offset (when not NULL and there is one). For callers
 * that want to warn about or reject such input. */
size_t tokenizer_invalid_utf8(const char *text, size_t len, size_t *first_offset);

/* Free t and everything it owns (NULL is fine). */
void tokenizer_free(Tokenizer *t);

/* Id used to pad a batch ([PAD], <pad>, or 0 when the vocabulary has none). */
int tokenizer_pad_id(const Tokenizer *t);
/* Default max_len: the truncation length of tokenizer.json, else 512. */
int tokenizer_max_len(const Tokenizer *t);
/* Override the default max_len (e.g. to config.json's max_position_embeddings, or 128 as
 * sentence-transformers uses for all-MiniLM-L6-v2). Call before sharing t between threads. */
void tokenizer_set_max_len(Tokenizer *t, int max_len);
/* "bert-wordpiece", "byte-level-bpe" or "bpe". */
const char *tokenizer_kind(const Tokenizer *t);
/* One past the largest token id. */
int tokenizer_vocab_size(const Tokenizer *t);
/* Text of token id (NUL-terminated, owned by t), or NULL when id is unused or out of range. */
const char *tokenizer_id_to_token(const Tokenizer *t, int id);
/* Id of token text (exact vocabulary entry, e.g. "[CLS]"), or -1. */
int tokenizer_token_to_id(const Tokenizer *t, const char *token);

#endif
