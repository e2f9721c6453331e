/* popularity.c - the most-popular baseline: training-part counts, ranking, its small file. */
#include "model/popularity.h"
#include "model/errmsg.h"
#include "model/fileio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POP_MAGIC "SSNAPOP 1\n"

int popularity_count(int n_users, const int *offsets, const int *items, int n_items, long *counts,
                     char *err, size_t errlen) {
    memset(counts, 0, (size_t)n_items * sizeof *counts);
    for (int u = 0; u < n_users; u++) {
        int n = offsets[u + 1] - offsets[u];
        for (int t = 0; t < n - 2; t++) { /* s[n-2] validates, s[n-1] tests: never counted */
            int it = items[offsets[u] + t];
            if (it < 0 || it >= n_items) {
                return errmsg_fail(err, errlen,
                                   "popularity: user %d position %d: item %d outside [0, %d)", u, t,
                                   it, n_items);
            }
            counts[it]++;
        }
    }
    return 0;
}

/* 0-based rank of target among all items: more popular ones, plus ties with other items. */
static int count_rank(const long *counts, int n_items, int target) {
    long c = counts[target];
    int rank = 0;
    for (int i = 0; i < n_items; i++) rank += (counts[i] > c) | (counts[i] == c && i != target);
    return rank;
}

void popularity_evaluate(const long *counts, int n_items, int n_users, const int *offsets,
                         const int *items, int split, Metrics *out, int *ranks) {
    const int ks[] = {10, 50};
    metrics_init(out, ks, 2);
    for (int u = 0; u < n_users; u++) {
        int n = offsets[u + 1] - offsets[u];
        if (ranks) ranks[u] = -1;
        if (n < 3) continue;
        int r = count_rank(counts, n_items, items[offsets[u] + (split ? n - 1 : n - 2)]);
        metrics_add(out, r);
        if (ranks) ranks[u] = r;
    }
}

void popularity_top_k(const long *counts, int n_items, const int *seen, int n, int k,
                      int *top_ids) {
    for (int j = 0; j < k; j++) { /* k is small: selection beats a sort */
        int best = -1;
        for (int i = 0; i < n_items; i++) {
            if (best >= 0 && counts[i] <= counts[best]) continue;
            int taken = 0;
            for (int p = 0; p < j && !taken; p++) taken = top_ids[p] == i;
            for (int p = 0; p < n && !taken; p++) taken = seen[p] == i;
            if (!taken) best = i;
        }
        top_ids[j] = best;
    }
}

int popularity_save(const char *path, const long *counts, int n_items, const char *meta, char *err,
                    size_t errlen) {
    FileBuffer b;
    if (file_buffer_open(&b, err, errlen)) return -1;
    fprintf(b.f, "%smeta %s\nn_items %d\n", POP_MAGIC, meta ? meta : "{}", n_items);
    for (int i = 0; i < n_items; i++) fprintf(b.f, "%ld\n", counts[i]);
    return file_buffer_commit(&b, path, err, errlen);
}

int popularity_is_file(const char *path) {
    char head[sizeof POP_MAGIC] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t got = fread(head, 1, sizeof POP_MAGIC - 1, f);
    fclose(f);
    return got == sizeof POP_MAGIC - 1 && !memcmp(head, POP_MAGIC, got);
}

int popularity_load(const char *path, long **counts, int *n_items, char *meta, size_t metalen,
                    char *err, size_t errlen) {
    *counts = NULL;
    FILE *f = fopen(path, "r");
    if (!f) {
        return errmsg_fail(err, errlen, "%s: %s", path, strerror(errno));
    }
    char line[8192];
    int rc = -1, n = -1, lineno = 2;
    if (!fgets(line, sizeof line, f) || strcmp(line, POP_MAGIC)) {
        snprintf(err, errlen, "%s:1: not a popularity file", path);
        goto done;
    }
    if (!fgets(line, sizeof line, f) || strncmp(line, "meta ", 5)) {
        snprintf(err, errlen, "%s:2: expected 'meta {...}'", path);
        goto done;
    }
    line[strcspn(line, "\n")] = 0;
    if (meta) snprintf(meta, metalen, "%s", line + 5);
    lineno++;
    if (!fgets(line, sizeof line, f) || sscanf(line, "n_items %d", &n) != 1 || n < 1) {
        snprintf(err, errlen, "%s:%d: expected 'n_items N' with N > 0", path, lineno);
        goto done;
    }
    *counts = malloc((size_t)n * sizeof **counts);
    if (!*counts) {
        snprintf(err, errlen, "%s: out of memory for %d counts", path, n);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        char *end;
        lineno++;
        if (!fgets(line, sizeof line, f)) {
            snprintf(err, errlen, "%s:%d: file ends after %d of %d counts", path, lineno, i, n);
            goto done;
        }
        errno = 0;
        (*counts)[i] = strtol(line, &end, 10);
        if (errno || end == line || (*end != '\n' && *end != 0) || (*counts)[i] < 0) {
            snprintf(err, errlen, "%s:%d: expected a count >= 0", path, lineno);
            goto done;
        }
    }
    *n_items = n;
    rc = 0;
done:
    if (rc) free(*counts), *counts = NULL;
    fclose(f);
    return rc;
}
