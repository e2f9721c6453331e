/* tokenizer_load.c - reading a checkpoint's tokenizer: tokenizer.json, vocab.txt (+
 * tokenizer_config.json) or vocab.json + merges.txt, into the immutable Tokenizer that
 * tokenizer.c runs. Unsupported components are errors naming the file and component, never
 * silently different ids. */
#include "model/tokenizer_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model/json.h"

#define TOK_DEFAULT_MAX_LEN 512

/* ---- shared helpers ---- */

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int join_path(char *out, size_t cap, const char *dir, const char *name, char *err,
                     size_t errlen) {
    int n = snprintf(out, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap)
        return errmsg_fail(err, errlen, "%s/%s: path too long", dir, name);
    return 0;
}

/* Read a whole file into a NUL-terminated buffer. */
static char *read_file(const char *path, size_t *len, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        errmsg_fail(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n < cap - 1) break;
        char *nb = realloc(buf, cap *= 2);
        if (!nb) free(buf);
        buf = nb;
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        errmsg_fail(err, errlen, "%s: %s", path, bad ? "read error" : "out of memory");
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

static int set_string(char *dst, size_t cap, size_t *len, const char *src, const char *path,
                      const char *what, char *err, size_t errlen) {
    size_t n = strlen(src);
    if (n >= cap) return errmsg_fail(err, errlen, "%s: %s \"%s\" is too long", path, what, src);
    memcpy(dst, src, n + 1);
    if (len) *len = n;
    return 0;
}

/* Register an added token (matched before the model, never split); content gets normalized now
 * when the token is matched on normalized text. */
static int add_token(Tokenizer *t, const char *content, size_t len, int id, int lstrip, int rstrip,
                     int normalized) {
    TokAddedToken *a = realloc(t->added, (t->n_added + 1) * sizeof(*a));
    if (!a) return -1;
    t->added = a;
    a = &t->added[t->n_added];
    memset(a, 0, sizeof(*a));
    uint32_t *raw = malloc((len + 1) * sizeof(*raw));
    uint32_t *cps = malloc((6 * len + 1) * sizeof(*cps));
    if (!raw || !cps) {
        free(raw), free(cps);
        return -1;
    }
    size_t n = tok_utf8_decode(content, len, raw, NULL, NULL);
    if (normalized)
        n = tok_normalize(t, raw, n, cps); /* matched against normalized text */
    else
        memcpy(cps, raw, n * sizeof(*cps));
    free(raw);
    a->cps = cps, a->n_cps = n, a->id = id;
    a->lstrip = lstrip, a->rstrip = rstrip, a->normalized = normalized;
    t->n_added++;
    return 0;
}

/* Each special token of names[] present in the vocabulary becomes an added token. */
static int add_vocab_specials(Tokenizer *t, const char *const *names, size_t count,
                              const char *lstrip_name) {
    for (size_t i = 0; i < count; i++) {
        int id = tok_vocab_find(&t->vocab, names[i], strlen(names[i]));
        int lstrip = lstrip_name && strcmp(names[i], lstrip_name) == 0;
        if (id >= 0 && add_token(t, names[i], strlen(names[i]), id, lstrip, 0, 0) != 0) return -1;
    }
    return 0;
}

static int find_required(Tokenizer *t, const char *token, const char *path, char *err,
                         size_t errlen) {
    int id = tok_vocab_find(&t->vocab, token, strlen(token));
    if (id < 0)
        return errmsg_fail(err, errlen, "%s: token \"%s\" is not in the vocabulary", path, token);
    return id;
}

/* GPT-2's reversible map from bytes to printable code points, as vocabulary ids. */
static void byte_level_ids(Tokenizer *t) {
    int next = 256;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
        uint32_t cp = printable ? (uint32_t)b : (uint32_t)next++;
        char utf8[4];
        int n = tok_utf8_put(cp, utf8);
        t->byte_ids[b] = tok_vocab_find(&t->vocab, utf8, (size_t)n);
    }
}

static int add_merge(Tokenizer *t, const char *a, size_t alen, const char *b, size_t blen, int rank,
                     const char *path, char *err, size_t errlen) {
    char joined[512];
    if (alen + blen >= sizeof(joined))
        return errmsg_fail(err, errlen, "%s: merge %d is too long", path, rank + 1);
    int ia = tok_vocab_find(&t->vocab, a, alen), ib = tok_vocab_find(&t->vocab, b, blen);
    /* "##a" + "##l" is "##al": the right part's continuation prefix goes */
    size_t plen = t->subword_prefix_len, skip = 0;
    if (plen && blen >= plen && memcmp(b, t->subword_prefix, plen) == 0) skip = plen;
    memcpy(joined, a, alen);
    memcpy(joined + alen, b + skip, blen - skip);
    int im = tok_vocab_find(&t->vocab, joined, alen + blen - skip);
    if (ia < 0 || ib < 0 || im < 0)
        return errmsg_fail(err, errlen,
                           "%s: merge %d (\"%.*s\" \"%.*s\") uses a token not in the vocabulary",
                           path, rank + 1, (int)alen, a, (int)blen, b);
    if (tok_merges_add(&t->merges, ia, ib, rank, im) != 0)
        return errmsg_fail(err, errlen, "out of memory");
    return 0;
}

/* Vocabulary from a JSON object token -> id. */
static int vocab_from_object(Tokenizer *t, const JsonValue *vocab, const char *path, char *err,
                             size_t errlen) {
    if (!vocab || vocab->type != JSON_VALUE_OBJECT || vocab->len == 0)
        return errmsg_fail(err, errlen, "%s: the vocabulary is missing or not an object", path);
    for (size_t i = 0; i < vocab->len; i++) {
        int id;
        if (json_number_int(&vocab->items[i], &id))
            return errmsg_fail(err, errlen, "%s: vocabulary entry \"%s\" has no integer id", path,
                               vocab->keys[i]);
        char msg[160];
        if (tok_vocab_add(&t->vocab, vocab->keys[i], vocab->key_lens[i], id, msg, sizeof(msg)) != 0)
            return errmsg_fail(err, errlen, "%s: vocabulary: %s", path, msg);
    }
    return 0;
}

/* ---- tokenizer.json ---- */

static int json_normalizer(Tokenizer *t, const JsonValue *n, const char *path, char *err,
                           size_t errlen) {
    if (!n || n->type == JSON_VALUE_NULL) return 0;
    const char *type = json_get_string(n, "type", "");
    if (strcmp(type, "BertNormalizer") == 0) {
        t->clean_text = json_get_bool(n, "clean_text", 1);
        t->cjk_chars = json_get_bool(n, "handle_chinese_chars", 1);
        t->lowercase = json_get_bool(n, "lowercase", 1);
        t->strip_accents = json_get_bool(n, "strip_accents", t->lowercase);
        return 0;
    }
    if (strcmp(type, "Lowercase") == 0) {
        t->lowercase = 1;
        return 0;
    }
    return errmsg_fail(err, errlen,
                       "%s: normalizer \"%s\" is not supported (BertNormalizer, Lowercase)", path,
                       type);
}

static int json_pre_tokenizer(Tokenizer *t, const JsonValue *p, const char *path, char *err,
                              size_t errlen) {
    if (!p || p->type == JSON_VALUE_NULL) return 0;
    const char *type = json_get_string(p, "type", "");
    if (strcmp(type, "BertPreTokenizer") == 0) {
        t->pre = TOK_PRE_BERT;
    } else if (strcmp(type, "ByteLevel") == 0) {
        t->pre = TOK_PRE_BYTE_LEVEL;
        t->add_prefix_space = json_get_bool(p, "add_prefix_space", 1);
        t->use_regex = json_get_bool(p, "use_regex", 1);
        t->byte_level = 1;
    } else if (strcmp(type, "WhitespaceSplit") == 0) {
        t->pre = TOK_PRE_WHITESPACE_SPLIT;
    } else {
        return errmsg_fail(
            err, errlen,
            "%s: pre_tokenizer \"%s\" is not supported (BertPreTokenizer, ByteLevel, "
            "WhitespaceSplit)",
            path, type);
    }
    return 0;
}

/* Append the ids of special token `name` (TemplateProcessing's special_tokens table) to ids. */
static int template_special(const JsonValue *specials, const char *name, int *ids, int *n,
                            const char *path, char *err, size_t errlen) {
    const JsonValue *ids_v = json_get(json_get(specials, name), "ids");
    if (!ids_v || ids_v->type != JSON_VALUE_ARRAY)
        return errmsg_fail(err, errlen, "%s: post_processor: special token \"%s\" has no ids", path,
                           name);
    for (size_t i = 0; i < ids_v->len; i++) {
        if (*n >= TOK_MAX_SPECIAL)
            return errmsg_fail(err, errlen, "%s: post_processor: too many special tokens", path);
        ids[(*n)++] = (int)ids_v->items[i].number;
    }
    return 0;
}

/* ["[CLS]", 101] of BertProcessing / RobertaProcessing. */
static int pair_id(const JsonValue *pair, const char *path, const char *what, char *err,
                   size_t errlen) {
    if (!pair || pair->type != JSON_VALUE_ARRAY || pair->len != 2 ||
        pair->items[1].type != JSON_VALUE_NUMBER)
        return errmsg_fail(err, errlen, "%s: post_processor: bad \"%s\"", path, what);
    return (int)pair->items[1].number;
}

static int json_post_processor(Tokenizer *t, const JsonValue *p, const char *path, char *err,
                               size_t errlen) {
    if (!p || p->type == JSON_VALUE_NULL) return 0;
    const char *type = json_get_string(p, "type", "");
    if (strcmp(type, "TemplateProcessing") == 0) {
        const JsonValue *single = json_get(p, "single"), *specials = json_get(p, "special_tokens");
        if (!single || single->type != JSON_VALUE_ARRAY)
            return errmsg_fail(err, errlen, "%s: post_processor: no \"single\" template", path);
        int seen_sequence = 0;
        t->n_prefix = t->n_suffix = 0;
        for (size_t i = 0; i < single->len; i++) {
            const JsonValue *sp = json_get(&single->items[i], "SpecialToken");
            if (!sp) {
                seen_sequence = 1;
                continue;
            }
            const char *name = json_get_string(sp, "id", "");
            int rc = seen_sequence ? template_special(specials, name, t->suffix_ids, &t->n_suffix,
                                                      path, err, errlen)
                                   : template_special(specials, name, t->prefix_ids, &t->n_prefix,
                                                      path, err, errlen);
            if (rc != 0) return -1;
        }
        return 0;
    }
    if (strcmp(type, "BertProcessing") == 0 || strcmp(type, "RobertaProcessing") == 0) {
        int cls = pair_id(json_get(p, "cls"), path, "cls", err, errlen);
        int sep = cls < 0 ? -1 : pair_id(json_get(p, "sep"), path, "sep", err, errlen);
        if (sep < 0) return -1;
        t->prefix_ids[0] = cls, t->n_prefix = 1;
        t->suffix_ids[0] = sep, t->n_suffix = 1;
        return 0;
    }
    if (strcmp(type, "ByteLevel") == 0) return 0; /* offsets only; ids unchanged */
    if (strcmp(type, "Sequence") == 0) {
        const JsonValue *list = json_get(p, "processors");
        for (size_t i = 0; list && list->type == JSON_VALUE_ARRAY && i < list->len; i++)
            if (json_post_processor(t, &list->items[i], path, err, errlen) != 0) return -1;
        return 0;
    }
    return errmsg_fail(err, errlen, "%s: post_processor \"%s\" is not supported", path, type);
}

static int json_bpe_merges(Tokenizer *t, const JsonValue *merges, const char *path, char *err,
                           size_t errlen) {
    if (!merges || merges->type != JSON_VALUE_ARRAY)
        return errmsg_fail(err, errlen, "%s: model.merges is missing", path);
    for (size_t i = 0; i < merges->len; i++) {
        const JsonValue *m = &merges->items[i];
        int rc;
        if (m->type == JSON_VALUE_STRING) { /* "a b" (tokenizers < 0.20) */
            const char *space = memchr(m->str, ' ', m->len);
            if (!space) return errmsg_fail(err, errlen, "%s: merge %zu has no space", path, i + 1);
            rc = add_merge(t, m->str, (size_t)(space - m->str), space + 1,
                           m->len - (size_t)(space - m->str) - 1, (int)i, path, err, errlen);
        } else if (m->type == JSON_VALUE_ARRAY && m->len == 2 &&
                   m->items[0].type == JSON_VALUE_STRING &&
                   m->items[1].type == JSON_VALUE_STRING) { /* ["a", "b"] */
            rc = add_merge(t, m->items[0].str, m->items[0].len, m->items[1].str, m->items[1].len,
                           (int)i, path, err, errlen);
        } else {
            return errmsg_fail(err, errlen, "%s: merge %zu is neither \"a b\" nor [a, b]", path,
                               i + 1);
        }
        if (rc != 0) return -1;
    }
    return 0;
}

static int json_model(Tokenizer *t, const JsonValue *m, const char *path, char *err,
                      size_t errlen) {
    const char *type = json_get_string(m, "type", "");
    if (vocab_from_object(t, json_get(m, "vocab"), path, err, errlen) != 0) return -1;
    const char *unk = json_get_string(m, "unk_token", NULL);
    t->unk_id = unk ? find_required(t, unk, path, err, errlen) : -1;
    if (unk && t->unk_id < 0) return -1;
    const char *prefix = json_get_string(m, "continuing_subword_prefix", NULL);
    if (strcmp(type, "WordPiece") == 0) {
        t->model = TOK_MODEL_WORDPIECE;
        if (t->unk_id < 0)
            return errmsg_fail(err, errlen, "%s: WordPiece needs an unk_token", path);
        if (json_get_int(m, "max_input_chars_per_word", 100, &t->max_chars_per_word))
            return errmsg_fail(err, errlen, "%s: max_input_chars_per_word is not an integer", path);
        return set_string(t->subword_prefix, sizeof(t->subword_prefix), &t->subword_prefix_len,
                          prefix ? prefix : "##", path, "continuing_subword_prefix", err, errlen);
    }
    if (strcmp(type, "BPE") != 0)
        return errmsg_fail(err, errlen, "%s: model \"%s\" is not supported (WordPiece, BPE)", path,
                           type);
    t->model = TOK_MODEL_BPE;
    if (json_get_bool(m, "byte_fallback", 0))
        return errmsg_fail(err, errlen, "%s: BPE byte_fallback is not supported", path);
    if (json_get_number(m, "dropout", 0) > 0)
        return errmsg_fail(err, errlen, "%s: BPE dropout is not supported at inference", path);
    t->fuse_unk = json_get_bool(m, "fuse_unk", 0);
    t->ignore_merges = json_get_bool(m, "ignore_merges", 0);
    const char *suffix = json_get_string(m, "end_of_word_suffix", "");
    if (set_string(t->subword_prefix, sizeof(t->subword_prefix), &t->subword_prefix_len,
                   prefix ? prefix : "", path, "continuing_subword_prefix", err, errlen) != 0 ||
        set_string(t->word_suffix, sizeof(t->word_suffix), &t->word_suffix_len, suffix, path,
                   "end_of_word_suffix", err, errlen) != 0)
        return -1;
    return json_bpe_merges(t, json_get(m, "merges"), path, err, errlen);
}

static int json_added_tokens(Tokenizer *t, const JsonValue *list, const char *path, char *err,
                             size_t errlen) {
    for (size_t i = 0; list && list->type == JSON_VALUE_ARRAY && i < list->len; i++) {
        const JsonValue *a = &list->items[i], *content = json_get(a, "content");
        const JsonValue *id = json_get(a, "id");
        int tid;
        if (!content || content->type != JSON_VALUE_STRING || json_number_int(id, &tid))
            return errmsg_fail(err, errlen, "%s: added_tokens[%zu] needs content and an integer id",
                               path, i);
        if (json_get_bool(a, "single_word", 0))
            return errmsg_fail(err, errlen, "%s: added token \"%s\": single_word is not supported",
                               path, content->str);
        /* added tokens may extend the model's vocabulary */
        if (tok_vocab_find(&t->vocab, content->str, content->len) < 0 &&
            (tid >= t->vocab.n_ids || !t->vocab.tokens[tid])) {
            char msg[160];
            if (tok_vocab_add(&t->vocab, content->str, content->len, tid, msg, sizeof(msg)) != 0)
                return errmsg_fail(err, errlen, "%s: added_tokens[%zu]: %s", path, i, msg);
        }
        if (add_token(t, content->str, content->len, tid, json_get_bool(a, "lstrip", 0),
                      json_get_bool(a, "rstrip", 0), json_get_bool(a, "normalized", 0)) != 0)
            return errmsg_fail(err, errlen, "out of memory");
    }
    return 0;
}

int tok_load_tokenizer_json(Tokenizer *t, const char *path, char *err, size_t errlen) {
    JsonValue root;
    char msg[256];
    if (json_parse_file(&root, path, msg, sizeof(msg)) != 0)
        return errmsg_fail(err, errlen, "%s", msg);
    int rc = -1;
    const JsonValue *model = json_get(&root, "model");
    if (!model || model->type != JSON_VALUE_OBJECT) {
        errmsg_fail(err, errlen, "%s: no \"model\" object", path);
        goto done;
    }
    if (json_normalizer(t, json_get(&root, "normalizer"), path, err, errlen) != 0 ||
        json_pre_tokenizer(t, json_get(&root, "pre_tokenizer"), path, err, errlen) != 0 ||
        json_model(t, model, path, err, errlen) != 0 ||
        json_added_tokens(t, json_get(&root, "added_tokens"), path, err, errlen) != 0 ||
        json_post_processor(t, json_get(&root, "post_processor"), path, err, errlen) != 0)
        goto done;
    if (t->byte_level && t->model == TOK_MODEL_BPE) byte_level_ids(t);
    const JsonValue *trunc = json_get(&root, "truncation");
    if (trunc && trunc->type == JSON_VALUE_OBJECT)
        if (json_get_int(trunc, "max_length", TOK_DEFAULT_MAX_LEN, &t->max_len)) {
            errmsg_fail(err, errlen, "%s: truncation.max_length is not an integer", path);
            goto done;
        }
    const JsonValue *pad = json_get(&root, "padding");
    if (pad && pad->type == JSON_VALUE_OBJECT) {
        if (json_get_int(pad, "pad_id", 0, &t->pad_id)) {
            errmsg_fail(err, errlen, "%s: padding.pad_id is not an integer", path);
            goto done;
        }
    } else {
        int id = tok_vocab_find(&t->vocab, "[PAD]", 5);
        t->pad_id = id >= 0 ? id : (id = tok_vocab_find(&t->vocab, "<pad>", 5)) >= 0 ? id : 0;
    }
    rc = 0;
done:
    json_free(&root);
    return rc;
}

/* ---- vocab.txt ---- */

int tok_load_vocab_txt(Tokenizer *t, const char *dir, char *err, size_t errlen) {
    char path[4096];
    if (join_path(path, sizeof(path), dir, "vocab.txt", err, errlen) != 0) return -1;
    size_t len;
    char *text = read_file(path, &len, err, errlen);
    if (!text) return -1;
    int id = 0, rc = 0;
    for (size_t pos = 0; pos < len && rc == 0; id++) {
        const char *line = text + pos, *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + (nl != NULL);
        while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t')) n--;
        char msg[160];
        if (tok_vocab_add(&t->vocab, line, n, id, msg, sizeof(msg)) != 0)
            rc = errmsg_fail(err, errlen, "%s: line %d: %s", path, id + 1, msg);
    }
    free(text);
    if (rc != 0) return -1;

    /* BertTokenizer's defaults, unless tokenizer_config.json says otherwise */
    t->model = TOK_MODEL_WORDPIECE;
    t->pre = TOK_PRE_BERT;
    t->clean_text = 1, t->cjk_chars = 1, t->lowercase = 1;
    t->max_chars_per_word = 100;
    memcpy(t->subword_prefix, "##", 3), t->subword_prefix_len = 2;
    char cfg_path[4096];
    if (join_path(cfg_path, sizeof(cfg_path), dir, "tokenizer_config.json", err, errlen) != 0)
        return -1;
    if (file_exists(cfg_path)) {
        JsonValue cfg;
        char msg[256];
        if (json_parse_file(&cfg, cfg_path, msg, sizeof(msg)) != 0)
            return errmsg_fail(err, errlen, "%s", msg);
        t->lowercase = json_get_bool(&cfg, "do_lower_case", 1);
        t->cjk_chars = json_get_bool(&cfg, "tokenize_chinese_chars", 1);
        t->strip_accents = json_get_bool(&cfg, "strip_accents", t->lowercase);
        int max_len = 0; // absent, or not a whole int (1e30 is common here): no limit from it
        if (json_get_int(&cfg, "model_max_length", 0, &max_len)) max_len = 0;
        if (max_len > 0 && max_len < TOK_DEFAULT_MAX_LEN) t->max_len = max_len;
        json_free(&cfg);
    } else {
        t->strip_accents = 1;
    }
    static const char *const specials[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    if ((t->unk_id = find_required(t, "[UNK]", path, err, errlen)) < 0 ||
        (t->prefix_ids[0] = find_required(t, "[CLS]", path, err, errlen)) < 0 ||
        (t->suffix_ids[0] = find_required(t, "[SEP]", path, err, errlen)) < 0)
        return -1;
    t->n_prefix = t->n_suffix = 1;
    int pad = tok_vocab_find(&t->vocab, "[PAD]", 5);
    t->pad_id = pad >= 0 ? pad : 0;
    if (add_vocab_specials(t, specials, 5, NULL) != 0)
        return errmsg_fail(err, errlen, "out of memory");
    return 0;
}

/* ---- vocab.json + merges.txt ---- */

int tok_load_vocab_json(Tokenizer *t, const char *dir, char *err, size_t errlen) {
    char path[4096];
    if (join_path(path, sizeof(path), dir, "vocab.json", err, errlen) != 0) return -1;
    JsonValue vocab;
    char msg[256];
    if (json_parse_file(&vocab, path, msg, sizeof(msg)) != 0)
        return errmsg_fail(err, errlen, "%s", msg);
    int rc = vocab_from_object(t, &vocab, path, err, errlen);
    json_free(&vocab);
    if (rc != 0) return -1;

    if (join_path(path, sizeof(path), dir, "merges.txt", err, errlen) != 0) return -1;
    size_t len;
    char *text = read_file(path, &len, err, errlen);
    if (!text) return -1;
    int rank = 0;
    for (size_t pos = 0, line_no = 1; pos < len && rc == 0; line_no++) {
        const char *line = text + pos, *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + (nl != NULL);
        if (n > 0 && line[n - 1] == '\r') n--;
        if (n >= 8 && memcmp(line, "#version", 8) == 0) continue;
        const char *space = memchr(line, ' ', n);
        if (!space || memchr(space + 1, ' ', n - (size_t)(space + 1 - line)))
            rc = errmsg_fail(err, errlen, "%s: line %zu is not \"left right\"", path, line_no);
        else
            rc = add_merge(t, line, (size_t)(space - line), space + 1,
                           n - (size_t)(space + 1 - line), rank++, path, err, errlen);
    }
    free(text);
    if (rc != 0) return -1;

    /* RobertaTokenizer: byte-level BPE, no normalizer, <s> ... </s> */
    t->model = TOK_MODEL_BPE;
    t->pre = TOK_PRE_BYTE_LEVEL;
    t->byte_level = 1, t->use_regex = 1, t->add_prefix_space = 0;
    t->unk_id = -1;
    byte_level_ids(t);
    if ((t->prefix_ids[0] = find_required(t, "<s>", path, err, errlen)) < 0 ||
        (t->suffix_ids[0] = find_required(t, "</s>", path, err, errlen)) < 0)
        return -1;
    t->n_prefix = t->n_suffix = 1;
    int pad = tok_vocab_find(&t->vocab, "<pad>", 5);
    t->pad_id = pad >= 0 ? pad : 0;
    static const char *const specials[] = {"<s>", "<pad>", "</s>", "<unk>", "<mask>"};
    if (add_vocab_specials(t, specials, 5, "<mask>") != 0)
        return errmsg_fail(err, errlen, "out of memory");
    return 0;
}

/* ---- entry point ---- */

/* config.json's max_position_embeddings caps the default length (RoBERTa's 514 counts two
 * padding offsets, hence the 512 ceiling). */
static void cap_by_config(Tokenizer *t, const char *dir) {
    char path[4096];
    if (snprintf(path, sizeof(path), "%s/config.json", dir) >= (int)sizeof(path)) return;
    if (!file_exists(path)) return;
    JsonValue cfg;
    char msg[256];
    if (json_parse_file(&cfg, path, msg, sizeof(msg)) != 0) return; /* the encoder reports it */
    int mpe = 0;
    if (json_get_int(&cfg, "max_position_embeddings", 0, &mpe)) mpe = 0;
    if (mpe > 0 && mpe < t->max_len) t->max_len = mpe;
    json_free(&cfg);
}

int tokenizer_load(Tokenizer **out, const char *model_dir, char *err, size_t errlen) {
    *out = NULL;
    Tokenizer *t = calloc(1, sizeof(*t));
    if (!t) return errmsg_fail(err, errlen, "out of memory");
    t->unk_id = -1;
    t->max_len = TOK_DEFAULT_MAX_LEN;
    t->max_chars_per_word = 100;
    for (int b = 0; b < 256; b++) t->byte_ids[b] = -1;
    char path[4096], merges[4096];
    int rc;
    if (join_path(path, sizeof(path), model_dir, "tokenizer.json", err, errlen) != 0 ||
        join_path(merges, sizeof(merges), model_dir, "merges.txt", err, errlen) != 0) {
        rc = -1;
    } else if (file_exists(path)) {
        rc = tok_load_tokenizer_json(t, path, err, errlen);
    } else if (join_path(path, sizeof(path), model_dir, "vocab.txt", err, errlen) == 0 &&
               file_exists(path)) {
        rc = tok_load_vocab_txt(t, model_dir, err, errlen);
    } else if (join_path(path, sizeof(path), model_dir, "vocab.json", err, errlen) == 0 &&
               file_exists(path) && file_exists(merges)) {
        rc = tok_load_vocab_json(t, model_dir, err, errlen);
    } else {
        rc = errmsg_fail(
            err, errlen,
            "%s: no tokenizer.json, vocab.txt, or vocab.json + merges.txt in the folder",
            model_dir);
    }
    if (rc == 0) {
        cap_by_config(t, model_dir);
        snprintf(t->kind, sizeof(t->kind), "%s",
                 t->model == TOK_MODEL_WORDPIECE ? "bert-wordpiece"
                 : t->byte_level                 ? "byte-level-bpe"
                                                 : "bpe");
    }
    if (rc != 0) {
        tokenizer_free(t);
        return -1;
    }
    *out = t;
    return 0;
}
