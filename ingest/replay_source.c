/* replay_source.c - a dataset folder as a stream of item texts and interleaved interactions. */
#include "ingest/replay_source.h"
#include "model/errmsg.h"

#include <dirent.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ingest/items.h"

/* NAME of the folder's NAME.test.inter; exactly one must exist. */
static int find_dataset_name(const char *dir, char *name, size_t cap, char *err, size_t errlen) {
    DIR *d = opendir(dir);
    if (!d) return errmsg_fail(err, errlen, "%s: cannot open the data folder", dir);
    const char *suffix = ".test.inter";
    size_t slen = strlen(suffix);
    int found = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        if (n <= slen || strcmp(e->d_name + n - slen, suffix)) continue;
        if (found++ || n - slen >= cap) break;
        memcpy(name, e->d_name, n - slen);
        name[n - slen] = 0;
    }
    closedir(d);
    if (found != 1)
        return errmsg_fail(err, errlen, "%s: expected exactly one *.test.inter file, found %s", dir,
                           found ? "several (or a name too long)" : "none");
    return 0;
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

typedef struct {
    const char *id;
    int item; // index in seqs
} IdIndex;

static int compare_id(const void *a, const void *b) {
    return strcmp(((const IdIndex *)a)->id, ((const IdIndex *)b)->id);
}

/* Give every sequence item its text from the text file (ids matched by bsearch). */
static int load_texts(ReplaySource *s, const char *path, char *err, size_t errlen) {
    int n = s->seqs.n_items, rc = -1;
    IdIndex *by_id = malloc((size_t)(n ? n : 1) * sizeof *by_id);
    s->item_texts = calloc((size_t)(n ? n : 1), sizeof *s->item_texts);
    if (!by_id || !s->item_texts) {
        free(by_id);
        return errmsg_fail(err, errlen, "%s: out of memory", path);
    }
    for (int i = 0; i < n; i++) by_id[i] = (IdIndex){s->seqs.item_ids[i], i};
    qsort(by_id, (size_t)n, sizeof *by_id, compare_id);
    ItemsReader *r = NULL;
    if (items_open(&r, path, ITEMS_FORMAT_ATOMIC, err, errlen)) goto done;
    ItemText it;
    int got;
    while ((got = items_next(r, &it, err, errlen)) == 1) {
        IdIndex key = {it.id, 0};
        IdIndex *hit = bsearch(&key, by_id, (size_t)n, sizeof *by_id, compare_id);
        if (!hit || s->item_texts[hit->item]) continue; // text of an item no one interacted with
        if (!(s->item_texts[hit->item] = strdup(it.text))) {
            errmsg_fail(err, errlen, "%s: out of memory", path);
            goto done;
        }
    }
    if (got < 0) goto done;
    for (int i = 0; i < n; i++)
        if (!s->item_texts[i]) {
            errmsg_fail(err, errlen, "%s: no text for item %s", path, s->seqs.item_ids[i]);
            goto done;
        }
    rc = 0;
done:
    items_close(r);
    free(by_id);
    return rc;
}

int replay_source_load(const char *dir, ReplaySource *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (find_dataset_name(dir, out->name, sizeof out->name, err, errlen)) return -1;
    // the stream is the whole history: no truncation to the model's 50
    if (interactions_load_unisrec(&out->seqs, dir, out->name, INT_MAX, err, errlen)) {
        memset(out, 0, sizeof *out);
        return -1;
    }
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s.text", dir, out->name);
    if (!file_exists(path)) {
        snprintf(path, sizeof path, "%s/%s.item", dir, out->name);
        out->texts_are_titles = 1;
    }
    if (load_texts(out, path, err, errlen)) {
        replay_source_free(out);
        return -1;
    }
    return 0;
}

int replay_source_interleave(const ReplaySource *s, uint64_t seed, ReplayEvent **out, char *err,
                             size_t errlen) {
    const Interactions *q = &s->seqs;
    size_t n = (size_t)interactions_count(q);
    ReplayEvent *ev = malloc((n ? n : 1) * sizeof *ev);
    uint32_t *next = calloc((size_t)(q->n_users ? q->n_users : 1), sizeof *next);
    if (!ev || !next) {
        free(ev), free(next);
        return errmsg_fail(err, errlen, "replay: out of memory for %zu events", n);
    }
    // A uniformly random merge of the sequences: shuffle one slot per interaction labelled with
    // its user, then give each user's slots that user's items in order.
    size_t k = 0;
    for (int u = 0; u < q->n_users; u++)
        for (int i = q->offsets[u]; i < q->offsets[u + 1]; i++) ev[k++].user = (uint32_t)u;
    uint64_t x = seed ? seed : 0x9E3779B97F4A7C15ull;
    for (size_t i = n; i > 1; i--) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17; // xorshift64
        size_t j = (size_t)(x % i);
        uint32_t t = ev[i - 1].user;
        ev[i - 1].user = ev[j].user;
        ev[j].user = t;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t u = ev[i].user;
        ev[i].pos = next[u]++;
        ev[i].item = (uint32_t)q->items[q->offsets[u] + (int)ev[i].pos];
    }
    free(next);
    *out = ev;
    return 0;
}

void replay_source_free(ReplaySource *s) {
    for (int i = 0; s->item_texts && i < s->seqs.n_items; i++) free(s->item_texts[i]);
    free(s->item_texts);
    interactions_free(&s->seqs);
    memset(s, 0, sizeof *s);
}
