/* encoder_load.c - reading a Hugging Face checkpoint folder into an Encoder (see encoder.h). */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/errmsg.h"
#include "model/encoder_internal.h"
#include "model/json.h"
#include "model/safetensors.h"
#include "model/sha256.h"

/* Tensor names of one block, as printf formats of the layer index, without ".weight"/".bias";
 * a NULL LayerNorm bias never happens in these families. */
typedef struct {
    const char *prefix; /* the task-model prefix some checkpoints carry ("bert.") */
    const char *q, *k, *v, *o, *ln1, *f1, *f2, *ln2;
    const char *emb_ln;
} EncoderNames;

static const EncoderNames bert_names = {"bert.",
                                        "encoder.layer.%d.attention.self.query",
                                        "encoder.layer.%d.attention.self.key",
                                        "encoder.layer.%d.attention.self.value",
                                        "encoder.layer.%d.attention.output.dense",
                                        "encoder.layer.%d.attention.output.LayerNorm",
                                        "encoder.layer.%d.intermediate.dense",
                                        "encoder.layer.%d.output.dense",
                                        "encoder.layer.%d.output.LayerNorm",
                                        "embeddings.LayerNorm"};

static const EncoderNames distilbert_names = {"distilbert.",
                                              "transformer.layer.%d.attention.q_lin",
                                              "transformer.layer.%d.attention.k_lin",
                                              "transformer.layer.%d.attention.v_lin",
                                              "transformer.layer.%d.attention.out_lin",
                                              "transformer.layer.%d.sa_layer_norm",
                                              "transformer.layer.%d.ffn.lin1",
                                              "transformer.layer.%d.ffn.lin2",
                                              "transformer.layer.%d.output_layer_norm",
                                              "embeddings.LayerNorm"};

/* Everything loading needs in one place, so helpers take one pointer. */
typedef struct {
    Encoder *e;
    Safetensors st;
    const EncoderNames *names;
    char *err;
    size_t errlen;
} EncoderLoader;

/* A new buffer of n floats owned by the encoder (freed by encoder_free), or NULL. */
static float *alloc_owned(EncoderLoader *ld, size_t n) {
    float *buf = malloc(n * sizeof(float));
    float **allocs = realloc(ld->e->allocs, (size_t)(ld->e->n_allocs + 1) * sizeof *allocs);
    if (allocs) ld->e->allocs = allocs;
    if (!buf || !allocs) {
        free(buf);
        snprintf(ld->err, ld->errlen, "%s: out of memory", ld->st.path);
        return NULL;
    }
    ld->e->allocs[ld->e->n_allocs++] = buf;
    return buf;
}

/* Read tensor `name` (with or without the family prefix), which must have shape [d0, d1] (or
 * [d0] when d1 is 0), into dst; -1 with a message naming the file and tensor. */
static int read_tensor(EncoderLoader *ld, const char *name, int64_t d0, int64_t d1, float *dst) {
    char prefixed[256];
    snprintf(prefixed, sizeof prefixed, "%s%s", ld->names->prefix, name);
    const SafetensorsTensor *t = safetensors_find(&ld->st, name);
    if (!t) t = safetensors_find(&ld->st, prefixed);
    if (!t) {
        snprintf(ld->err, ld->errlen, "%s: missing tensor '%s' (also tried '%s')", ld->st.path,
                 name, prefixed);
        return -1;
    }
    int64_t shape[2] = {d0, d1};
    return safetensors_read_f32(&ld->st, t, shape, d1 ? 2 : 1, dst, ld->err, ld->errlen);
}

/* read_tensor into a new encoder-owned buffer. */
static float *load_tensor(EncoderLoader *ld, const char *name, int64_t d0, int64_t d1) {
    float *buf = alloc_owned(ld, (size_t)d0 * (size_t)(d1 ? d1 : 1));
    return buf && !read_tensor(ld, name, d0, d1, buf) ? buf : NULL;
}

/* Weight [d0, d1] and bias [d0] of the layer named by fmt and index l into w and b. */
static int read_linear(EncoderLoader *ld, const char *fmt, int l, int64_t d0, int64_t d1, float *w,
                       float *b) {
    char base[192], name[256];
    snprintf(base, sizeof base, fmt, l);
    snprintf(name, sizeof name, "%s.weight", base);
    if (read_tensor(ld, name, d0, d1, w)) return -1;
    snprintf(name, sizeof name, "%s.bias", base);
    return read_tensor(ld, name, d0, 0, b);
}

/* read_linear into new encoder-owned buffers. */
static int load_linear(EncoderLoader *ld, const char *fmt, int l, int64_t d0, int64_t d1, float **w,
                       float **b) {
    *w = alloc_owned(ld, (size_t)d0 * (size_t)(d1 ? d1 : 1));
    *b = *w ? alloc_owned(ld, (size_t)d0) : NULL;
    return *b ? read_linear(ld, fmt, l, d0, d1, *w, *b) : -1;
}

/* Query, key and value projections of block l stacked into one [3C, C] weight and [3C] bias, so
 * the forward pass makes one GEMM of them. */
static int load_qkv(EncoderLoader *ld, int l, EncoderBlock *b) {
    size_t C = (size_t)ld->e->hidden;
    const char *fmts[3] = {ld->names->q, ld->names->k, ld->names->v};
    if (!(b->wqkv = alloc_owned(ld, 3 * C * C)) || !(b->bqkv = alloc_owned(ld, 3 * C))) return -1;
    for (int i = 0; i < 3; i++)
        if (read_linear(ld, fmts[i], l, (int64_t)C, (int64_t)C, b->wqkv + i * C * C,
                        b->bqkv + i * C))
            return -1;
    return 0;
}

static int load_weights(EncoderLoader *ld) {
    Encoder *e = ld->e;
    int C = e->hidden, F = e->ffn;
    if (!(e->wte = load_tensor(ld, "embeddings.word_embeddings.weight", e->vocab, C))) return -1;
    if (!(e->wpe = load_tensor(ld, "embeddings.position_embeddings.weight", e->n_positions, C)))
        return -1;
    if (e->family != ENCODER_DISTILBERT) {
        float *tt = load_tensor(ld, "embeddings.token_type_embeddings.weight", e->n_types, C);
        if (!tt) return -1;
        e->wtt0 = tt; // only type 0 is ever used: one text per sequence
    }
    if (load_linear(ld, ld->names->emb_ln, -1, C, 0, &e->emb_ln_w, &e->emb_ln_b)) return -1;
    e->blocks = calloc((size_t)e->n_layers, sizeof *e->blocks);
    if (!e->blocks) {
        snprintf(ld->err, ld->errlen, "out of memory");
        return -1;
    }
    const EncoderNames *n = ld->names;
    for (int l = 0; l < e->n_layers; l++) {
        EncoderBlock *b = &e->blocks[l];
        if (load_qkv(ld, l, b) || load_linear(ld, n->o, l, C, C, &b->wo, &b->bo) ||
            load_linear(ld, n->ln1, l, C, 0, &b->ln1_w, &b->ln1_b) ||
            load_linear(ld, n->f1, l, F, C, &b->w1, &b->b1) ||
            load_linear(ld, n->f2, l, C, F, &b->w2, &b->b2) ||
            load_linear(ld, n->ln2, l, C, 0, &b->ln2_w, &b->ln2_b))
            return -1;
    }
    return 0;
}

/* A required positive integer field of config.json. */
static int config_int(const JsonValue *cfg, const char *path, const char *key, int *out, char *err,
                      size_t errlen) {
    const JsonValue *v = json_get(cfg, key);
    if (!v || v->type != JSON_VALUE_NUMBER || v->number < 1 || v->number > 1e7 ||
        v->number != floor(v->number)) {
        return errmsg_fail(err, errlen, "%s: field '%s' missing or not a positive integer", path,
                           key);
    }
    *out = (int)v->number;
    return 0;
}

/* Family and dimensions from config.json. */
static int read_config(Encoder *e, const JsonValue *cfg, const char *path, char *err,
                       size_t errlen) {
    const char *type = json_get_string(cfg, "model_type", "");
    const JsonValue *archs = json_get(cfg, "architectures");
    const char *arch = archs && archs->type == JSON_VALUE_ARRAY && archs->len &&
                               archs->items[0].type == JSON_VALUE_STRING
                           ? archs->items[0].str
                           : "";
    if (!strcmp(type, "bert") || (!*type && !strncmp(arch, "Bert", 4)))
        e->family = ENCODER_BERT;
    else if (!strcmp(type, "distilbert") || (!*type && !strncmp(arch, "DistilBert", 10)))
        e->family = ENCODER_DISTILBERT;
    else if (!strcmp(type, "roberta") || (!*type && !strncmp(arch, "Roberta", 7)))
        e->family = ENCODER_ROBERTA;
    else {
        snprintf(err, errlen,
                 "%s: unsupported architecture '%s' (model_type '%s'); supported: BERT, "
                 "DistilBERT, RoBERTa",
                 path, arch, type);
        return -1;
    }
    snprintf(e->architecture, sizeof e->architecture, "%s", *arch ? arch : type);
    int distil = e->family == ENCODER_DISTILBERT;
    const char *act_key = distil ? "activation" : "hidden_act";
    const char *act = json_get_string(cfg, act_key, "gelu");
    if (strcmp(act, "gelu")) {
        return errmsg_fail(err, errlen, "%s: unsupported %s '%s' (only erf 'gelu')", path, act_key,
                           act);
    }
    const char *pos_type = json_get_string(cfg, "position_embedding_type", "absolute");
    if (strcmp(pos_type, "absolute")) {
        return errmsg_fail(err, errlen, "%s: unsupported position_embedding_type '%s'", path,
                           pos_type);
    }
    if (config_int(cfg, path, distil ? "dim" : "hidden_size", &e->hidden, err, errlen) ||
        config_int(cfg, path, distil ? "n_layers" : "num_hidden_layers", &e->n_layers, err,
                   errlen) ||
        config_int(cfg, path, distil ? "n_heads" : "num_attention_heads", &e->n_heads, err,
                   errlen) ||
        config_int(cfg, path, distil ? "hidden_dim" : "intermediate_size", &e->ffn, err, errlen) ||
        config_int(cfg, path, "vocab_size", &e->vocab, err, errlen) ||
        config_int(cfg, path, "max_position_embeddings", &e->n_positions, err, errlen))
        return -1;
    if (e->hidden % e->n_heads) {
        return errmsg_fail(err, errlen, "%s: hidden size %d is not a multiple of the %d heads",
                           path, e->hidden, e->n_heads);
    }
    e->n_types = 0;
    if (!distil && config_int(cfg, path, "type_vocab_size", &e->n_types, err, errlen)) return -1;
    e->eps = (float)json_get_number(cfg, "layer_norm_eps", 1e-12);
    e->position_offset = 0;
    if (e->family == ENCODER_ROBERTA) {
        int pad = 1;
        if (json_get_int(cfg, "pad_token_id", 1, &pad) || pad < -1 || pad >= e->n_positions - 1) {
            return errmsg_fail(err, errlen, "%s: pad_token_id leaves no positions", path);
        }
        e->position_offset = pad + 1;
    }
    return 0;
}

/* sha256 of the mapped weights file as hex. */
static void file_sha256(const Safetensors *st, char hex[65]) {
    sha256_hex(st->map ? st->map : (const uint8_t *)"", st->size, hex);
}

static int build_identity(Encoder *e, const Safetensors *st, char *err, size_t errlen) {
    char sha[65];
    file_sha256(st, sha);
    size_t cap = 1024;
    e->identity = malloc(cap);
    if (!e->identity) {
        return errmsg_fail(err, errlen, "out of memory");
    }
    snprintf(e->identity, cap,
             "{\"architecture\":\"%s\",\"family\":\"%s\",\"num_layers\":%d,\"hidden_size\":%d,"
             "\"num_heads\":%d,\"intermediate_size\":%d,\"vocab_size\":%d,"
             "\"max_position_embeddings\":%d,\"layer_norm_eps\":%g,\"weights_sha256\":\"%s\","
             "\"weights_dtype\":\"%s\",\"tokenizer\":\"%s\",\"max_len\":%d}",
             e->architecture,
             e->family == ENCODER_BERT         ? "bert"
             : e->family == ENCODER_DISTILBERT ? "distilbert"
                                               : "roberta",
             e->n_layers, e->hidden, e->n_heads, e->ffn, e->vocab, e->n_positions, e->eps, sha,
             safetensors_float_dtype(st), e->tok ? tokenizer_kind(e->tok) : "none", e->max_len);
    return 0;
}

/* Whether dir holds any tokenizer file tokenizer_load would read. */
static int has_tokenizer_file(const char *dir) {
    static const char *files[] = {"tokenizer.json", "vocab.txt", "vocab.json"};
    char path[4096];
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        if (access(path, R_OK) == 0) return 1;
    }
    return 0;
}

int encoder_load(Encoder **out, const char *model_dir, char *err, size_t errlen) {
    *out = NULL;
    Encoder *e = calloc(1, sizeof *e);
    if (!e) {
        return errmsg_fail(err, errlen, "out of memory");
    }
    e->n_threads = 2;
    e->batch_tokens = 2048;
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", model_dir);
    JsonValue cfg;
    if (json_parse_file(&cfg, path, err, errlen)) {
        encoder_free(e);
        return -1;
    }
    int rc = read_config(e, &cfg, path, err, errlen);
    json_free(&cfg);
    if (rc) {
        encoder_free(e);
        return -1;
    }
    EncoderLoader ld = {.e = e,
                        .names = e->family == ENCODER_DISTILBERT ? &distilbert_names : &bert_names,
                        .err = err,
                        .errlen = errlen};
    snprintf(path, sizeof path, "%s/model.safetensors", model_dir);
    if (safetensors_open(&ld.st, path, err, errlen)) {
        encoder_free(e);
        return -1;
    }
    EncoderNames roberta_names;
    if (e->family == ENCODER_ROBERTA) {
        roberta_names = bert_names;
        roberta_names.prefix = "roberta.";
        ld.names = &roberta_names;
    }
    rc = load_weights(&ld);
    if (!rc && has_tokenizer_file(model_dir)) rc = tokenizer_load(&e->tok, model_dir, err, errlen);
    if (!rc) {
        encoder_set_max_len(e, 0);
        e->default_max_len = e->max_len;
        rc = build_identity(e, &ld.st, err, errlen);
    }
    safetensors_close(&ld.st);
    if (rc) {
        encoder_free(e);
        return -1;
    }
    *out = e;
    return 0;
}

void encoder_free(Encoder *e) {
    if (!e) return;
    for (int i = 0; i < e->n_allocs; i++) free(e->allocs[i]);
    free(e->allocs);
    free(e->blocks);
    tokenizer_free(e->tok);
    free(e->identity);
    free(e);
}

const char *encoder_default_model_dir(char *buf, size_t len) {
    const char *env = getenv("SSNA_MODEL_DIR");
    if (env && *env) return env;
    if (!access("models/minilm-l6/config.json", R_OK)) return "models/minilm-l6";
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        // strip the program name, its folder and the build folder: the repository root remains
        for (int up = 0; up < 3; up++) {
            char *slash = strrchr(exe, '/');
            if (!slash) break;
            *slash = 0;
        }
        char probe[PATH_MAX + 64];
        snprintf(probe, sizeof probe, "%s/models/minilm-l6/config.json", exe);
        int m = snprintf(buf, len, "%s/models/minilm-l6", exe);
        if (m > 0 && (size_t)m < len && !access(probe, R_OK)) return buf;
    }
    return "models/minilm-l6";
}
