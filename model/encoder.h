/* encoder.h - the frozen text encoder: inference of a Hugging Face BERT-family checkpoint.
 *
 * A checkpoint folder holds config.json, model.safetensors (F32, F16 or BF16; converted to
 * float32 at load) and the tokenizer files model/tokenizer.h reads. Families:
 *   - BERT (BertModel / model_type "bert", any size; names with or without "bert."),
 *   - DistilBERT (model_type "distilbert"; names with or without "distilbert."; no token types),
 *   - RoBERTa / DistilRoBERTa (model_type "roberta"; names with or without "roberta."; positions
 *     start at pad_token_id + 1; token type 0).
 * All are post-LayerNorm transformers with erf-GELU; anything else is refused with a message.
 *
 * Outputs are per-layer states: layer 0 is the embeddings output (after its LayerNorm), layer l
 * the output of transformer block l, up to encoder_num_layers(). Per sequence and layer either
 * the first-token state ([CLS] / <s>) or the mean over the sequence's tokens is returned.
 *
 * Sequences are sorted by length and packed into batches without padding: every linear layer runs
 * on all real tokens of a batch at once (one cblas_sgemm per weight matrix, Q/K/V fused), and
 * attention runs per sequence over its own length. Batches are spread over worker threads; with
 * more than one worker a call sets OpenBLAS to one thread (process-wide, as OpenBLAS offers it)
 * and restores the previous count before returning, so a process that runs other BLAS work on
 * other threads at the same time should use one worker (encoder_set_threads(e, 1)), which
 * leaves OpenBLAS's threading alone.
 * An Encoder is not thread-safe: one call at a time.
 */
#ifndef SSNA_MODEL_ENCODER_H
#define SSNA_MODEL_ENCODER_H

#include <stddef.h>

#include "model/tokenizer.h"

typedef struct Encoder Encoder;

/* What a call returns per sequence and layer: the first token's state, the mean over the
 * sequence's tokens, or every token's state (no pooling; e.g. for a masked-LM head). */
enum { ENCODER_POOL_CLS = 0, ENCODER_POOL_MEAN = 1, ENCODER_POOL_TOKENS = 2 };

/* Load config.json, model.safetensors and the tokenizer of model_dir. A folder without any
 * tokenizer file loads (encoder_forward_ids works, encoder_embed reports the missing tokenizer).
 * 0 on success; -1 with a message naming the file (and tensor or config field) otherwise. */
int encoder_load(Encoder **out, const char *model_dir, char *err, size_t errlen);
/* Free e and everything it owns (NULL is fine). */
void encoder_free(Encoder *e);
/* The default checkpoint folder of the command-line tools: $SSNA_MODEL_DIR when set, else
 * models/minilm-l6 in the current directory when it has a config.json, else models/minilm-l6 in
 * the repository the running executable was built in (BUILD_DIR/<folder>/<program>), else
 * "models/minilm-l6". Returns buf or a static string; buf: [len]. */
const char *encoder_default_model_dir(char *buf, size_t len);

/* Number of transformer blocks n (states exist for layers 0..n). */
int encoder_num_layers(const Encoder *e);
/* Hidden size (length of every returned vector). */
int encoder_hidden(const Encoder *e);
/* Longest sequence in tokens, special tokens included, that the encoder will run (texts are
 * truncated to it; encoder_forward_ids refuses longer ones). */
int encoder_max_len(const Encoder *e);
/* Set the maximum sequence length (clamped to what the position table allows; <= 0 restores the
 * default: the tokenizer's truncation length, capped by the position table). */
void encoder_set_max_len(Encoder *e, int max_len);
/* Worker threads for encoder_embed / encoder_forward_ids (default 2; 1 = the calling thread with
 * OpenBLAS's own threads). */
void encoder_set_threads(Encoder *e, int n_threads);
/* Tokens per packed batch (default 2048). */
void encoder_set_batch_tokens(Encoder *e, int batch_tokens);
/* The tokenizer of the checkpoint, or NULL when the folder has none. */
const Tokenizer *encoder_tokenizer(const Encoder *e);
/* A JSON object naming this encoder exactly: architecture, the config fields that shape the
 * computation, sha256 and storage dtype of the weights file, tokenizer kind and max length.
 * Owned by e. Two encoders with the same identity produce the same states. */
const char *encoder_identity(const Encoder *e);
/* FLOPs (multiply-adds x 2) of running the encoder over one sequence of n_tokens tokens. */
double encoder_flops(const Encoder *e, int n_tokens);
/* The FLOPs encoder_forward_ids performs for one sequence with ENCODER_POOL_CLS up to the top
 * layer: encoder_flops less what the top block skips (all but the first token's query,
 * attention, projection and feed-forward). */
double encoder_flops_cls(const Encoder *e, int n_tokens);

/* Tokenize texts[i][0..lens[i]) (lens may be NULL for NUL-terminated texts) and run them.
 * Returns, for each text i and j < n_layers, the pooled state of layer first_layer - j in
 *   out[(i * n_layers + j) * hidden .. + hidden)          out: [n, n_layers, hidden]
 * so first_layer = encoder_num_layers(e) gives the top layer first (as SSNA keeps them).
 * pool: ENCODER_POOL_CLS or ENCODER_POOL_MEAN, or ENCODER_POOL_TOKENS for every token's state:
 *   out[((o_i + t) * n_layers + j) * hidden .. + hidden)   out: [sum of lengths, n_layers, hidden]
 * for token t of sequence i, o_i being the total length of sequences 0..i-1 (encoder_forward_ids
 * only: encoder_embed refuses it, since its caller does not know the lengths to size out).
 * 0 on success, -1 with a message (naming the text index when one is at fault). */
int encoder_embed(Encoder *e, const char *const *texts, const size_t *lens, int n, int pool,
                  int first_layer, int n_layers, float *out, char *err, size_t errlen);
/* The same from token ids: sequence i is ids[i][0..n_ids[i]), special tokens included. Ids must
 * lie in [0, vocab_size) and lengths in [1, encoder_max_len(e)]. */
int encoder_forward_ids(Encoder *e, const int *const *ids, const int *n_ids, int n, int pool,
                        int first_layer, int n_layers, float *out, char *err, size_t errlen);

#endif
