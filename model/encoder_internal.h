/* encoder_internal.h - the Encoder struct shared by encoder_load.c (checkpoint reading) and
 * encoder.c (the forward pass). Not part of the public interface. */
#ifndef SSNA_MODEL_ENCODER_INTERNAL_H
#define SSNA_MODEL_ENCODER_INTERNAL_H

#include "model/encoder.h"

typedef enum { ENCODER_BERT, ENCODER_DISTILBERT, ENCODER_ROBERTA } EncoderFamily;

/* One post-LayerNorm transformer block; linear weights PyTorch-style [out, in]. */
typedef struct {
    float *wqkv, *bqkv;   // [3C, C], [3C]: query, key, value rows fused
    float *wo, *bo;       // [C, C], [C]
    float *ln1_w, *ln1_b; // [C] after attention + residual
    float *w1, *b1;       // [F, C], [F]
    float *w2, *b2;       // [C, F], [C]
    float *ln2_w, *ln2_b; // [C] after feed-forward + residual
} EncoderBlock;

struct Encoder {
    EncoderFamily family;
    char architecture[64];
    int n_layers, hidden, n_heads, ffn, vocab, n_positions, n_types;
    int position_offset; /* position id of the first token: 0, or pad_token_id + 1 (RoBERTa) */
    float eps;
    float *wte;                 /* [V, C] word embeddings */
    float *wpe;                 /* [P, C] position embeddings */
    float *wtt0;                /* [C] token-type-0 embedding, or NULL (DistilBERT) */
    float *emb_ln_w, *emb_ln_b; /* [C] */
    EncoderBlock *blocks;       /* [n_layers] */
    float **allocs;             /* every weight buffer, for encoder_free */
    int n_allocs;
    Tokenizer *tok;
    int max_len, default_max_len;
    int n_threads, batch_tokens;
    char *identity;
};

/* Inference kernels of encoder_kernels.c (vectorised; see there why not kernels.h). */
// x: [n], in place: x = GELU(x), erf form
void encoder_gelu(float *x, size_t n);
// x: [N, C] in place: x = LayerNorm(x + r) * w + b; r: [N, C] or NULL; w, b: [C]
void encoder_add_layernorm(float *x, const float *r, const float *w, const float *b, int N, int C,
                           float eps);
// out: [L, C]; q, k, v: [L, C] rows ld floats apart (NH heads of C / NH); att: [L, L] scratch.
// One unpadded sequence.
void encoder_attention(float *out, float *att, const float *q, const float *k, const float *v,
                       int ld, int L, int C, int NH);
// out: [C], the first token's attention output; q: [C]; k, v: [L, C] rows ld floats apart;
// att: [L] scratch. One unpadded sequence.
void encoder_attention_first(float *out, float *att, const float *q, const float *k, const float *v,
                             int ld, int L, int C, int NH);

#endif
