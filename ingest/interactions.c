/* interactions.c - UniSRec .inter and generic CSV/TSV interaction readers with the paper's
 * preprocessing (iterative k-core, last-max_len truncation). */
#include "ingest/interactions.h"
#include "model/errmsg.h"
#include "model/hash.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- small containers ----------------------------------------------------------------------- */

typedef struct {
    int *v;
    int n, cap;
} IntVec;

static int intvec_push(IntVec *a, int x) {
    if (a->n == a->cap) {
        int cap = a->cap ? 2 * a->cap : 8;
        int *v = realloc(a->v, (size_t)cap * sizeof(int));
        if (!v) return -1;
        a->v = v, a->cap = cap;
    }
    a->v[a->n++] = x;
    return 0;
}

/* String -> dense index, open addressing; keys are copied. */
typedef struct {
    char **keys; /* [cap] or NULL */
    int *vals;
    size_t cap, n;
    char **by_index; /* [n] the keys in index order */
} StrMap;

static int strmap_grow(StrMap *m) {
    size_t cap = m->cap ? 2 * m->cap : 1024;
    char **keys = calloc(cap, sizeof *keys);
    int *vals = malloc(cap * sizeof *vals);
    char **by = realloc(m->by_index, cap * sizeof *by);
    if (!keys || !vals || !by) {
        free(keys), free(vals);
        if (by) m->by_index = by;
        return -1;
    }
    m->by_index = by;
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i]) {
            size_t j = hash_fnv1a_str(m->keys[i]) & (cap - 1);
            while (keys[j]) j = (j + 1) & (cap - 1);
            keys[j] = m->keys[i], vals[j] = m->vals[i];
        }
    free(m->keys), free(m->vals);
    m->keys = keys, m->vals = vals, m->cap = cap;
    return 0;
}

/* Index of key, adding it when absent; -1 on allocation failure. */
static int strmap_index(StrMap *m, const char *key) {
    if (2 * (m->n + 1) > m->cap && strmap_grow(m)) return -1;
    size_t j = hash_fnv1a_str(key) & (m->cap - 1);
    while (m->keys[j]) {
        if (!strcmp(m->keys[j], key)) return m->vals[j];
        j = (j + 1) & (m->cap - 1);
    }
    char *copy = strdup(key);
    if (!copy) return -1;
    m->keys[j] = copy, m->vals[j] = (int)m->n;
    m->by_index[m->n] = copy;
    return (int)m->n++;
}

static void strmap_free(StrMap *m) {
    for (size_t i = 0; i < m->cap; i++) free(m->keys[i]);
    free(m->keys), free(m->vals), free(m->by_index);
    memset(m, 0, sizeof *m);
}

/* ---- files ---------------------------------------------------------------------------------- */

/* Whole file, NUL-terminated; NULL (err set) when unreadable. */
static char *read_file(const char *path, size_t *len, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t n = 0, cap = 0, got;
    do {
        if (cap - n < 65536) {
            cap = cap ? 2 * cap : 1 << 20;
            char *b = realloc(buf, cap + 1);
            if (!b) {
                free(buf), fclose(f);
                snprintf(err, errlen, "%s: out of memory", path);
                return NULL;
            }
            buf = b;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        snprintf(err, errlen, "%s: read error", path);
        return NULL;
    }
    buf[n] = 0;
    /* the line parser stops at a NUL: a stray one would silently drop the rest of the file */
    const char *nul = memchr(buf, 0, n);
    if (nul) {
        long line = 1;
        for (const char *p = buf; p < nul; p++) line += *p == '\n';
        snprintf(err, errlen, "%s:%ld: a NUL byte (file offset %zu): not a text file", path, line,
                 (size_t)(nul - buf));
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

/* Next line of *pos (CR LF or LF stripped, modified in place); NULL at the end. */
static char *next_line(char **pos) {
    char *s = *pos;
    if (!*s) return NULL;
    char *e = strchr(s, '\n');
    if (e) {
        *e = 0;
        *pos = e + 1;
    } else {
        *pos = s + strlen(s);
    }
    size_t n = strlen(s);
    if (n && s[n - 1] == '\r') s[n - 1] = 0;
    return s;
}

static int parse_int(const char *s, char **end, int *out) {
    errno = 0;
    long v = strtol(s, end, 10);
    if (*end == s || errno || v < 0 || v > INT32_MAX) return -1;
    *out = (int)v;
    return 0;
}

/* ---- UniSRec files -------------------------------------------------------------------------- */

typedef struct {
    int user, target, hist_len, hist_first;
    IntVec hist; /* only filled for test rows */
} InterRow;

/* One "user<TAB>h1 h2 ...<TAB>target" line. keep_hist: store the history in row->hist. */
static int parse_inter_line(char *line, InterRow *row, int keep_hist, const char *path, int ln,
                            char *err, size_t errlen) {
    char *end, *p = line;
    memset(row, 0, sizeof *row);
    row->hist_first = -1;
    if (parse_int(p, &end, &row->user) || *end != '\t') goto bad;
    p = end + 1;
    while (*p && *p != '\t') {
        int it;
        if (parse_int(p, &end, &it)) goto bad;
        if (row->hist_len++ == 0) row->hist_first = it;
        if (keep_hist && intvec_push(&row->hist, it)) goto bad;
        p = end;
        while (*p == ' ') p++;
    }
    if (*p != '\t' || parse_int(p + 1, &end, &row->target) || *end) goto bad;
    return 0;
bad:
    free(row->hist.v);
    return errmsg_fail(err, errlen,
                       "%s:%d: expected 'user<TAB>item item ...<TAB>item' with integer ids", path,
                       ln);
}

/* Calls fn on every data row of DIR/NAME.SPLIT.inter; returns rows read or -1. missing_ok:
 * an absent file reads as 0 rows. */
typedef int (*InterRowFn)(void *ctx, InterRow *row, const char *path, int ln, char *err,
                          size_t errlen);

static int read_inter(const char *dir, const char *name, const char *split, int keep_hist,
                      int missing_ok, InterRowFn fn, void *ctx, char *err, size_t errlen) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.%s.inter", dir, name, split);
    if (missing_ok) {
        FILE *f = fopen(path, "rb");
        if (!f) return 0;
        fclose(f);
    }
    size_t len;
    char *buf = read_file(path, &len, err, errlen), *pos = buf, *line;
    if (!buf) return -1;
    int ln = 0, rows = 0, rc = 0;
    while ((line = next_line(&pos))) {
        ln++;
        if (ln == 1 && strstr(line, ":token")) continue; /* RecBole atomic-file header */
        if (!*line) continue;
        InterRow row;
        if (parse_inter_line(line, &row, keep_hist, path, ln, err, errlen) ||
            fn(ctx, &row, path, ln, err, errlen)) {
            rc = -1;
            break;
        }
        rows++;
    }
    free(buf);
    return rc ? -1 : rows;
}

typedef struct {
    int n_users;            /* capacity of the arrays below */
    IntVec *train_targets;  /* per user, file order (newest first) */
    int *first, *first_len; /* first item: history of the shortest train row */
    int *valid, *test;      /* targets, -1 = none */
    IntVec *test_hist;
    int *test_line;
    int max_item, max_user;
} Rebuild;

static int rebuild_reserve(Rebuild *r, int user) {
    if (user > r->max_user) r->max_user = user;
    if (user < r->n_users) return 0;
    int n = user + 1 > 2 * r->n_users ? user + 1 : 2 * r->n_users;
    IntVec *tt = realloc(r->train_targets, (size_t)n * sizeof *tt);
    if (tt) r->train_targets = tt;
    IntVec *th = realloc(r->test_hist, (size_t)n * sizeof *th);
    if (th) r->test_hist = th;
    int **arrays[] = {&r->first, &r->first_len, &r->valid, &r->test, &r->test_line};
    int ok = tt && th;
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0] && ok; i++) {
        int *a = realloc(*arrays[i], (size_t)n * sizeof(int));
        if (!a)
            ok = 0;
        else
            *arrays[i] = a;
    }
    if (!ok) return -1;
    for (int u = r->n_users; u < n; u++) {
        memset(&r->train_targets[u], 0, sizeof(IntVec));
        memset(&r->test_hist[u], 0, sizeof(IntVec));
        r->first[u] = r->valid[u] = r->test[u] = -1;
        r->first_len[u] = INT32_MAX;
        r->test_line[u] = 0;
    }
    r->n_users = n;
    return 0;
}

static void note_item(Rebuild *r, int item) {
    if (item > r->max_item) r->max_item = item;
}

static int on_train_row(void *ctx, InterRow *row, const char *path, int ln, char *err,
                        size_t errlen) {
    Rebuild *r = ctx;
    if (rebuild_reserve(r, row->user) || intvec_push(&r->train_targets[row->user], row->target)) {
        return errmsg_fail(err, errlen, "%s:%d: out of memory", path, ln);
    }
    if (row->hist_len > 0 && row->hist_len < r->first_len[row->user]) {
        r->first_len[row->user] = row->hist_len;
        r->first[row->user] = row->hist_first;
    }
    note_item(r, row->target);
    note_item(r, row->hist_first);
    return 0;
}

static int on_valid_row(void *ctx, InterRow *row, const char *path, int ln, char *err,
                        size_t errlen) {
    Rebuild *r = ctx;
    if (rebuild_reserve(r, row->user)) {
        return errmsg_fail(err, errlen, "%s:%d: out of memory", path, ln);
    }
    r->valid[row->user] = row->target;
    note_item(r, row->target);
    return 0;
}

static int on_test_row(void *ctx, InterRow *row, const char *path, int ln, char *err,
                       size_t errlen) {
    Rebuild *r = ctx;
    if (rebuild_reserve(r, row->user)) {
        free(row->hist.v);
        return errmsg_fail(err, errlen, "%s:%d: out of memory", path, ln);
    }
    free(r->test_hist[row->user].v);
    r->test_hist[row->user] = row->hist;
    r->test[row->user] = row->target;
    r->test_line[row->user] = ln;
    note_item(r, row->target);
    for (int i = 0; i < row->hist.n; i++) note_item(r, row->hist.v[i]);
    return 0;
}

static void rebuild_free(Rebuild *r) {
    for (int u = 0; u < r->n_users; u++) {
        free(r->train_targets[u].v);
        free(r->test_hist[u].v);
    }
    free(r->train_targets), free(r->test_hist), free(r->first), free(r->first_len);
    free(r->valid), free(r->test), free(r->test_line);
}

/* Rebuilt full sequence of user u into seq (cleared first). */
static int rebuild_user(const Rebuild *r, int u, IntVec *seq) {
    seq->n = 0;
    const IntVec *tt = &r->train_targets[u];
    int rc = 0;
    if (tt->n > 0) {
        rc |= intvec_push(seq, r->first[u]);
        for (int i = tt->n - 1; i >= 0; i--) rc |= intvec_push(seq, tt->v[i]);
        rc |= intvec_push(seq, r->valid[u]);
    } else {
        for (int i = 0; i < r->test_hist[u].n; i++) rc |= intvec_push(seq, r->test_hist[u].v[i]);
    }
    return rc | intvec_push(seq, r->test[u]);
}

/* DIR/NAME.SUFFIX as "key<TAB>index" lines into names[index]; 0 when absent (names untouched). */
static int read_index_names(const char *dir, const char *name, const char *suffix, char **names,
                            int n, char *err, size_t errlen) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.%s", dir, name, suffix);
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    fclose(f);
    size_t len;
    char *buf = read_file(path, &len, err, errlen), *pos = buf, *line;
    if (!buf) return -1;
    int ln = 0;
    while ((line = next_line(&pos))) {
        ln++;
        if (!*line) continue;
        char *tab = strchr(line, '\t'), *end;
        int idx;
        if (!tab || parse_int(tab + 1, &end, &idx) || *end || idx >= n) {
            snprintf(err, errlen, "%s:%d: expected 'id<TAB>index' with index < %d", path, ln, n);
            free(buf);
            return -1;
        }
        *tab = 0;
        char *copy = strdup(line);
        if (!copy) {
            free(buf);
            return errmsg_fail(err, errlen, "%s:%d: out of memory", path, ln);
        }
        free(names[idx]);
        names[idx] = copy;
    }
    free(buf);
    return 0;
}

/* names[i] = decimal i where still NULL */
static int fill_numeric_names(char **names, int n) {
    char tmp[16];
    for (int i = 0; i < n; i++)
        if (!names[i]) {
            snprintf(tmp, sizeof tmp, "%d", i);
            if (!(names[i] = strdup(tmp))) return -1;
        }
    return 0;
}

int interactions_load_unisrec(Interactions *d, const char *dir, const char *name, int max_len,
                              char *err, size_t errlen) {
    memset(d, 0, sizeof *d);
    Rebuild r = {0};
    r.max_item = -1;
    r.max_user = -1;
    IntVec seq = {0}, all = {0};
    int rc = -1;
    char path[4096];
    if (read_inter(dir, name, "train", 0, 1, on_train_row, &r, err, errlen) < 0 ||
        read_inter(dir, name, "valid", 0, 0, on_valid_row, &r, err, errlen) < 0 ||
        read_inter(dir, name, "test", 1, 0, on_test_row, &r, err, errlen) < 0)
        goto done;
    snprintf(path, sizeof path, "%s/%s.test.inter", dir, name);
    d->n_users = r.max_user + 1;
    d->n_items = r.max_item + 1;
    d->offsets = calloc((size_t)d->n_users + 1, sizeof(int));
    if (!d->offsets) goto oom;
    for (int u = 0; u < d->n_users; u++) {
        if (r.test[u] < 0) {
            snprintf(err, errlen, "%s: user %d has no test row", path, u);
            goto done;
        }
        if (rebuild_user(&r, u, &seq)) goto oom;
        /* the rebuilt sequence must end with test.inter's (possibly truncated) history */
        const IntVec *h = &r.test_hist[u];
        int ok = seq.n >= h->n + 1 && seq.v[seq.n - 1] == r.test[u];
        for (int i = 0; ok && i < h->n; i++) ok = seq.v[seq.n - 1 - h->n + i] == h->v[i];
        if (!ok || (r.train_targets[u].n > 0 && r.valid[u] < 0)) {
            snprintf(err, errlen,
                     "%s:%d: user %d: the sequence rebuilt from train/valid rows does not end "
                     "with this history",
                     path, r.test_line[u], u);
            goto done;
        }
        d->raw_interactions += seq.n;
        int start = seq.n > max_len ? seq.n - max_len : 0;
        for (int i = start; i < seq.n; i++)
            if (intvec_push(&all, seq.v[i])) goto oom;
        d->offsets[u + 1] = all.n;
    }
    d->items = all.v;
    all.v = NULL;
    d->user_ids = calloc((size_t)d->n_users, sizeof(char *));
    d->item_ids = calloc((size_t)d->n_items, sizeof(char *));
    if (!d->user_ids || !d->item_ids) goto oom;
    if (read_index_names(dir, name, "user2index", d->user_ids, d->n_users, err, errlen) ||
        read_index_names(dir, name, "item2index", d->item_ids, d->n_items, err, errlen))
        goto done;
    if (fill_numeric_names(d->user_ids, d->n_users) || fill_numeric_names(d->item_ids, d->n_items))
        goto oom;
    rc = 0;
    goto done;
oom:
    snprintf(err, errlen, "%s/%s: out of memory", dir, name);
done:
    rebuild_free(&r);
    free(seq.v), free(all.v);
    if (rc) interactions_free(d);
    return rc;
}

/* ---- generic CSV / TSV ---------------------------------------------------------------------- */

/* Split line into at most max fields at delim, honouring "quoted, fields" with "" escapes;
 * fields are unquoted in place. Returns the field count or -1 for an unterminated quote. */
static int split_fields(char *line, char delim, char **fields, int max) {
    int n = 0;
    char *p = line;
    for (;;) {
        char *out = p, *start = p;
        if (*p == '"') {
            p++;
            for (;;) {
                if (!*p) return -1;
                if (*p == '"' && p[1] == '"')
                    *out++ = '"', p += 2;
                else if (*p == '"') {
                    p++;
                    break;
                } else
                    *out++ = *p++;
            }
            while (*p && *p != delim) *out++ = *p++;
        } else {
            while (*p && *p != delim) p++;
            out = p;
        }
        char next = *p;
        *out = 0;
        if (n < max) fields[n] = start;
        n++;
        if (!next) return n;
        p++;
    }
}

static int is_number(const char *s) {
    char *end;
    if (!*s) return 0;
    strtod(s, &end);
    return *end == 0;
}

static int find_column(char **fields, int n, const char *const *names) {
    for (int i = 0; i < n; i++)
        for (int j = 0; names[j]; j++)
            if (!strcasecmp(fields[i], names[j])) return i;
    return -1;
}

InteractionOptions interactions_default_options(void) {
    InteractionOptions o = {0, -1, -1, -1, 5, 50};
    return o;
}

typedef struct {
    int user, item;
    double time;
    int order;
} Event;

static int cmp_event(const void *a, const void *b) {
    const Event *x = a, *y = b;
    if (x->user != y->user) return x->user < y->user ? -1 : 1;
    if (x->time != y->time) return x->time < y->time ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Iterative k-core: drop events of users / items with fewer than k events until none is left
 * to drop. Compacts ev in place; returns the new count. */
static int k_core(Event *ev, int n, int n_users, int n_items, int k, int *ucount, int *icount) {
    for (int changed = 1; changed && k > 1;) {
        memset(ucount, 0, (size_t)n_users * sizeof(int));
        memset(icount, 0, (size_t)n_items * sizeof(int));
        for (int i = 0; i < n; i++) ucount[ev[i].user]++, icount[ev[i].item]++;
        int m = 0;
        for (int i = 0; i < n; i++)
            if (ucount[ev[i].user] >= k && icount[ev[i].item] >= k) ev[m++] = ev[i];
        changed = m != n;
        n = m;
    }
    return n;
}

int interactions_load_csv(Interactions *d, const char *path, const InteractionOptions *opt,
                          char *err, size_t errlen) {
    static const char *const user_names[] = {"user", "userId", "user_id", "user_id:token", NULL};
    static const char *const item_names[] = {"item",    "itemId",        "item_id",
                                             "movieId", "item_id:token", NULL};
    static const char *const time_names[] = {"timestamp", "time", "timestamp:float", NULL};
    memset(d, 0, sizeof *d);
    size_t len;
    char *buf = read_file(path, &len, err, errlen), *pos = buf, *line;
    if (!buf) return -1;
    StrMap users = {0}, items = {0};
    Event *ev = NULL;
    int n = 0, cap = 0, ln = 0, rc = -1;
    int *ucount = NULL, *icount = NULL, *umap = NULL, *imap = NULL;
    char delim = opt->delimiter;
    int uc = opt->user_col, ic = opt->item_col, tc = opt->time_col;
    char *fields[64];
    while ((line = next_line(&pos))) {
        ln++;
        if (!*line) continue;
        if (!delim) delim = strchr(line, '\t') ? '\t' : ',';
        int nf = split_fields(line, delim, fields, 64);
        if (nf < 0) {
            snprintf(err, errlen, "%s:%d: unterminated quoted field", path, ln);
            goto done;
        }
        if (nf > 64) nf = 64;
        if (n == 0 && ln == 1) {
            int t = tc >= 0 ? tc : find_column(fields, nf, time_names);
            if (t < 0) t = 2;
            if (t < nf && !is_number(fields[t])) { /* a header line */
                if (uc < 0) uc = find_column(fields, nf, user_names);
                if (ic < 0) ic = find_column(fields, nf, item_names);
                if (tc < 0) tc = find_column(fields, nf, time_names);
                continue;
            }
        }
        if (uc < 0) uc = 0;
        if (ic < 0) ic = 1;
        if (tc < 0) tc = 2;
        if (uc >= nf || ic >= nf || tc >= nf || !is_number(fields[tc])) {
            snprintf(err, errlen, "%s:%d: need user (column %d), item (%d) and a numeric time (%d)",
                     path, ln, uc, ic, tc);
            goto done;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 4096;
            Event *e = realloc(ev, (size_t)cap * sizeof *e);
            if (!e) goto oom;
            ev = e;
        }
        ev[n].user = strmap_index(&users, fields[uc]);
        ev[n].item = strmap_index(&items, fields[ic]);
        if (ev[n].user < 0 || ev[n].item < 0) goto oom;
        ev[n].time = strtod(fields[tc], NULL);
        ev[n].order = n;
        n++;
    }
    d->raw_interactions = n;
    ucount = calloc(users.n + 1, sizeof(int));
    icount = calloc(items.n + 1, sizeof(int));
    umap = malloc((users.n + 1) * sizeof(int));
    imap = malloc((items.n + 1) * sizeof(int));
    if (!ucount || !icount || !umap || !imap) goto oom;
    n = k_core(ev, n, (int)users.n, (int)items.n, opt->k_core, ucount, icount);
    if (n == 0) {
        snprintf(err, errlen, "%s: no interactions left after the %d-core filter", path,
                 opt->k_core);
        goto done;
    }
    /* dense users in order of first appearance, each user's events by time, then the tail */
    for (size_t i = 0; i < users.n; i++) umap[i] = -1;
    for (size_t i = 0; i < items.n; i++) imap[i] = -1;
    for (int i = 0; i < n; i++)
        if (umap[ev[i].user] < 0) umap[ev[i].user] = d->n_users++;
    for (int i = 0; i < n; i++) ev[i].user = umap[ev[i].user];
    qsort(ev, (size_t)n, sizeof *ev, cmp_event);
    d->offsets = calloc((size_t)d->n_users + 1, sizeof(int));
    d->items = malloc((size_t)n * sizeof(int));
    d->user_ids = calloc((size_t)d->n_users, sizeof(char *));
    if (!d->offsets || !d->items || !d->user_ids) goto oom;
    int *keep_from = ucount; /* per dense user: index of its first kept event */
    for (int i = 0, u = 0; i < n; u++) {
        int j = i;
        while (j < n && ev[j].user == u) j++;
        keep_from[u] = j - i > opt->max_len ? j - opt->max_len : i;
        i = j;
    }
    int raw = (int)d->raw_interactions, kept = 0; /* < INT_MAX: events were counted in an int */
    Event *tmp = malloc((size_t)n * sizeof *tmp);
    int *first_seen = malloc((size_t)(raw > 0 ? raw : 1) * sizeof(int));
    if (!tmp || !first_seen) {
        free(tmp), free(first_seen);
        goto oom;
    }
    for (int i = 0; i < n; i++)
        if (i >= keep_from[ev[i].user]) tmp[kept++] = ev[i];
    /* items numbered in order of first appearance in the file among kept events */
    for (int o = 0; o < raw; o++) first_seen[o] = -1;
    for (int i = 0; i < kept; i++) first_seen[tmp[i].order] = tmp[i].item;
    int n_items = 0;
    for (int o = 0; o < raw; o++)
        if (first_seen[o] >= 0 && imap[first_seen[o]] < 0) imap[first_seen[o]] = n_items++;
    free(first_seen);
    d->n_items = n_items;
    d->item_ids = calloc((size_t)n_items, sizeof(char *));
    if (!d->item_ids) {
        free(tmp);
        goto oom;
    }
    for (size_t i = 0; i < items.n; i++)
        if (imap[i] >= 0 && !(d->item_ids[imap[i]] = strdup(items.by_index[i]))) {
            free(tmp);
            goto oom;
        }
    for (size_t i = 0; i < users.n; i++)
        if (umap[i] >= 0 && !(d->user_ids[umap[i]] = strdup(users.by_index[i]))) {
            free(tmp);
            goto oom;
        }
    for (int i = 0; i < kept; i++) {
        d->items[i] = imap[tmp[i].item];
        d->offsets[tmp[i].user + 1] = i + 1;
    }
    free(tmp);
    rc = 0;
    goto done;
oom:
    snprintf(err, errlen, "%s: out of memory", path);
done:
    free(buf), free(ev), free(ucount), free(icount), free(umap), free(imap);
    strmap_free(&users), strmap_free(&items);
    if (rc) interactions_free(d);
    return rc;
}

void interactions_free(Interactions *d) {
    for (int i = 0; d->user_ids && i < d->n_users; i++) free(d->user_ids[i]);
    for (int i = 0; d->item_ids && i < d->n_items; i++) free(d->item_ids[i]);
    free(d->user_ids), free(d->item_ids), free(d->offsets), free(d->items);
    memset(d, 0, sizeof *d);
}

long interactions_count(const Interactions *d) {
    return d->offsets ? d->offsets[d->n_users] : 0;
}
