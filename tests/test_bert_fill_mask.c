/* Google's BERT-base-uncased, converted by ops/convert_tf_bert.py from its TensorFlow bundle,
 * through our encoder: the fill-mask example of the bert-base-uncased model card. Our tokenizer
 * and encoder produce the top layer's state at [MASK]; the masked-LM head (dense, GELU,
 * LayerNorm, the tied word embeddings plus a bias) is computed here in double from the converted
 * checkpoint's cls.predictions.* tensors. The card's top five for "The man worked as a [MASK]."
 * are carpenter 0.0975, waiter 0.0524, barber 0.0496, mechanic, salesman.
 * Fails when models/bert-base-uncased (ops/setup.sh installs it) is missing. */
#include "model/safetensors.h"
#include "test_encoder_util.h"

/* The head's tensor `name` of shape [d0] or [d0, d1] as a new float buffer (NULL + FAIL). */
static float *head_tensor(const Safetensors *st, const char *name, int64_t d0, int64_t d1) {
    const SafetensorsTensor *t = safetensors_find(st, name);
    int64_t shape[2] = {d0, d1};
    float *buf = malloc((size_t)d0 * (size_t)(d1 ? d1 : 1) * sizeof *buf);
    char err[512];
    if (!t || safetensors_read_f32(st, t, shape, d1 ? 2 : 1, buf, err, sizeof err)) {
        fprintf(stderr, "FAIL: %s: tensor '%s': %s\n", st->path, name, t ? err : "missing");
        free(buf);
        return NULL;
    }
    return buf;
}

/* Masked-LM probabilities over the vocabulary from the top-layer state x: [C] into prob: [V]. */
static int mlm_head(const char *model, const float *x, int C, int V, double *prob) {
    char path[4096], err[512];
    snprintf(path, sizeof path, "%s/model.safetensors", model);
    Safetensors st;
    if (safetensors_open(&st, path, err, sizeof err)) {
        fprintf(stderr, "FAIL: %s\n", err);
        return -1;
    }
    float *w = head_tensor(&st, "cls.predictions.transform.dense.weight", C, C);
    float *b = head_tensor(&st, "cls.predictions.transform.dense.bias", C, 0);
    float *g = head_tensor(&st, "cls.predictions.transform.LayerNorm.weight", C, 0);
    float *beta = head_tensor(&st, "cls.predictions.transform.LayerNorm.bias", C, 0);
    float *bias = head_tensor(&st, "cls.predictions.bias", V, 0);
    float *emb = head_tensor(&st, "bert.embeddings.word_embeddings.weight", V, C);
    double *h = malloc((size_t)C * sizeof *h);
    int rc = w && b && g && beta && bias && emb ? 0 : -1;
    if (!rc) {
        double mean = 0, var = 0;
        for (int o = 0; o < C; o++) { // dense [out, in], then erf-GELU
            double s = b[o];
            for (int i = 0; i < C; i++) s += (double)w[(size_t)o * C + i] * x[i];
            h[o] = 0.5 * s * (1.0 + erf(s / sqrt(2.0)));
            mean += h[o] / C;
        }
        for (int o = 0; o < C; o++) var += (h[o] - mean) * (h[o] - mean) / C;
        for (int o = 0; o < C; o++) h[o] = (h[o] - mean) / sqrt(var + 1e-12) * g[o] + beta[o];
        double mx = -1e300, sum = 0;
        for (int v = 0; v < V; v++) { // decoder tied to the word embeddings
            double s = bias[v];
            for (int i = 0; i < C; i++) s += (double)emb[(size_t)v * C + i] * h[i];
            prob[v] = s;
            mx = fmax(mx, s);
        }
        for (int v = 0; v < V; v++) sum += (prob[v] = exp(prob[v] - mx));
        for (int v = 0; v < V; v++) prob[v] /= sum;
    }
    free(h);
    free(emb);
    free(bias);
    free(beta);
    free(g);
    free(b);
    free(w);
    safetensors_close(&st);
    return rc;
}

int main(void) {
    const char *model = require_env("SSNA_BERT_MODEL_DIR");
    char err[512];
    Encoder *e;
    if (encoder_load(&e, model, err, sizeof err)) {
        fprintf(stderr, "FAIL: cannot load BERT-base-uncased (run ops/setup.sh): %s\n", err);
        return 1;
    }
    int C = encoder_hidden(e), L = encoder_num_layers(e),
        V = tokenizer_vocab_size(encoder_tokenizer(e));
    CHECK(C == 768 && L == 12 && V == 30522);
    CHECK(strstr(encoder_identity(e), "\"num_heads\":12,\"intermediate_size\":3072") != NULL);
    CHECK(encoder_max_len(e) == 512);
    // ids as Hugging Face's BertTokenizer gives them: [MASK] (103) is kept whole
    const char *text = "The man worked as a [MASK].";
    int ids[16], n_ids = 0, mask = -1;
    static const int want_ids[] = {101, 1996, 2158, 2499, 2004, 1037, 103, 1012, 102};
    CHECK(tokenizer_encode(encoder_tokenizer(e), text, strlen(text), 16, ids, &n_ids, NULL, err,
                           sizeof err) == 0);
    CHECK(n_ids == 9 && !memcmp(ids, want_ids, sizeof want_ids));
    for (int t = 0; t < n_ids; t++)
        if (ids[t] == tokenizer_token_to_id(encoder_tokenizer(e), "[MASK]")) mask = t;
    CHECK(mask == 6);
    float *states = malloc((size_t)n_ids * C * sizeof *states);
    double *prob = malloc((size_t)V * sizeof *prob);
    const int *idp = ids;
    CHECK(encoder_forward_ids(e, &idp, &n_ids, 1, ENCODER_POOL_TOKENS, L, 1, states, err,
                              sizeof err) == 0);
    if (mask >= 0 && mlm_head(model, states + (size_t)mask * C, C, V, prob) == 0) {
        static const char *want_tok[] = {"carpenter", "waiter", "barber", "mechanic", "salesman"};
        static const double want_p[] = {0.0975, 0.0524, 0.0496}; // the card, 4 decimals
        int top[5];
        for (int k = 0; k < 5; k++) { // top five by probability
            top[k] = -1;
            for (int v = 0; v < V; v++) {
                int taken = 0;
                for (int j = 0; j < k; j++) taken |= top[j] == v;
                if (!taken && (top[k] < 0 || prob[v] > prob[top[k]])) top[k] = v;
            }
            const char *tok = tokenizer_id_to_token(encoder_tokenizer(e), top[k]);
            printf("%d. %-10s %.6f\n", k + 1, tok, prob[top[k]]);
            CHECK_MSG(tok && !strcmp(tok, want_tok[k]), "rank %d: '%s', the card says '%s'", k + 1,
                      tok ? tok : "?", want_tok[k]);
            // the card rounds to 4 decimals (+-5e-5); the rest allows for float32 arithmetic
            if (k < 3)
                CHECK_MSG(fabs(prob[top[k]] - want_p[k]) <= 1e-4, "'%s': %.6f, the card says %.4f",
                          want_tok[k], prob[top[k]], want_p[k]);
        }
    } else {
        CHECK_MSG(0, "no masked-LM probabilities");
    }
    free(prob);
    free(states);
    encoder_free(e);
    return check_done();
}
