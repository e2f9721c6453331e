/* tokenizer_vocab.c - the two hash tables of the tokenizer models: token bytes -> id (open
 * addressing over the id array, FNV-1a) and BPE merges (id pair -> rank, merged id). Both are
 * built once at load and only read afterwards, so concurrent look-ups need no locking. */
#include "model/tokenizer_internal.h"
#include "model/hash.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Re-insert every id into a table of n_slots (a power of two, over twice the ids). */
static int vocab_rehash(TokVocab *v, size_t n_slots) {
    int *slots = malloc(n_slots * sizeof(*slots));
    if (!slots) return -1;
    memset(slots, 0xFF, n_slots * sizeof(*slots));
    for (int id = 0; id < v->n_ids; id++) {
        if (!v->tokens[id]) continue;
        size_t i = hash_fnv1a(v->tokens[id], v->token_len[id]) & (n_slots - 1);
        while (slots[i] >= 0) i = (i + 1) & (n_slots - 1);
        slots[i] = id;
    }
    free(v->slots);
    v->slots = slots;
    v->n_slots = n_slots;
    return 0;
}

int tok_vocab_find(const TokVocab *v, const char *s, size_t len) {
    if (!v->n_slots) return -1;
    size_t i = hash_fnv1a(s, len) & (v->n_slots - 1);
    for (;;) {
        int id = v->slots[i];
        if (id < 0) return -1;
        if (v->token_len[id] == len && memcmp(v->tokens[id], s, len) == 0) return id;
        i = (i + 1) & (v->n_slots - 1);
    }
}

int tok_vocab_add(TokVocab *v, const char *s, size_t len, int id, char *err, size_t errlen) {
    if (id < 0 || id > (1 << 28)) return errmsg_fail(err, errlen, "token id %d out of range", id);
    if (tok_vocab_find(v, s, len) >= 0)
        return errmsg_fail(err, errlen, "token \"%.*s\" appears twice", (int)(len > 40 ? 40 : len),
                           s);
    if (id >= v->n_ids) {
        int n = v->n_ids ? v->n_ids : 1024;
        while (n <= id) n *= 2;
        char **tokens = realloc(v->tokens, (size_t)n * sizeof(*tokens));
        if (!tokens) return errmsg_fail(err, errlen, "out of memory");
        v->tokens = tokens;
        size_t *lens = realloc(v->token_len, (size_t)n * sizeof(*lens));
        if (!lens) return errmsg_fail(err, errlen, "out of memory");
        v->token_len = lens;
        for (int i = v->n_ids; i < n; i++) v->tokens[i] = NULL, v->token_len[i] = 0;
        v->n_ids = n;
    }
    if (v->tokens[id]) return errmsg_fail(err, errlen, "token id %d is given twice", id);
    char *copy = malloc(len + 1);
    if (!copy) return errmsg_fail(err, errlen, "out of memory");
    memcpy(copy, s, len);
    copy[len] = 0;
    v->tokens[id] = copy;
    v->token_len[id] = len;
    if (len > v->max_token_len) v->max_token_len = len;
    /* keep the load factor under 1/2; the capacity follows n_ids, which only doubles */
    if (v->n_slots < 2 * (size_t)v->n_ids) {
        if (vocab_rehash(v, 4 * (size_t)v->n_ids) != 0)
            return errmsg_fail(err, errlen, "out of memory");
    } else {
        size_t i = hash_fnv1a(copy, len) & (v->n_slots - 1);
        while (v->slots[i] >= 0) i = (i + 1) & (v->n_slots - 1);
        v->slots[i] = id;
    }
    return 0;
}

void tok_vocab_free(TokVocab *v) {
    for (int i = 0; i < v->n_ids; i++) free(v->tokens[i]);
    free(v->tokens);
    free(v->token_len);
    free(v->slots);
    memset(v, 0, sizeof(*v));
}

static size_t merge_slot(uint64_t key, size_t n_slots) {
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdull;
    key ^= key >> 33;
    return (size_t)key & (n_slots - 1);
}

int tok_merges_add(TokMerges *m, int left, int right, int rank, int merged) {
    if (2 * (m->count + 1) > m->n_slots) {
        size_t n = m->n_slots ? 2 * m->n_slots : 1024;
        uint64_t *keys = malloc(n * sizeof(*keys));
        int *ranks = malloc(n * sizeof(*ranks)), *mids = malloc(n * sizeof(*mids));
        if (!keys || !ranks || !mids) {
            free(keys), free(ranks), free(mids);
            return -1;
        }
        memset(keys, 0xFF, n * sizeof(*keys));
        for (size_t i = 0; i < m->n_slots; i++) {
            if (m->keys[i] == UINT64_MAX) continue;
            size_t j = merge_slot(m->keys[i], n);
            while (keys[j] != UINT64_MAX) j = (j + 1) & (n - 1);
            keys[j] = m->keys[i], ranks[j] = m->rank[i], mids[j] = m->merged[i];
        }
        free(m->keys), free(m->rank), free(m->merged);
        m->keys = keys, m->rank = ranks, m->merged = mids, m->n_slots = n;
    }
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    size_t j = merge_slot(key, m->n_slots);
    while (m->keys[j] != UINT64_MAX) {
        if (m->keys[j] == key) return 0; /* a repeated merge keeps its first (best) rank */
        j = (j + 1) & (m->n_slots - 1);
    }
    m->keys[j] = key, m->rank[j] = rank, m->merged[j] = merged;
    m->count++;
    return 0;
}

int tok_merges_find(const TokMerges *m, int left, int right, int *merged) {
    if (!m->n_slots) return -1;
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    for (size_t j = merge_slot(key, m->n_slots);; j = (j + 1) & (m->n_slots - 1)) {
        if (m->keys[j] == UINT64_MAX) return -1;
        if (m->keys[j] == key) {
            *merged = m->merged[j];
            return m->rank[j];
        }
    }
}

void tok_merges_free(TokMerges *m) {
    free(m->keys), free(m->rank), free(m->merged);
    memset(m, 0, sizeof(*m));
}
