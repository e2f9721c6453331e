/* popularity.h - the most-popular baseline: every user gets the same ranking, items ordered by
 * how often they occur in the TRAINING part of the leave-one-out split (each user's sequence
 * s[0..n-2), as ssna_train.h defines it), so validation and test targets never count.
 *
 * Evaluation is the one of ssna_evaluate: the held-out item is ranked against ALL items, the
 * user's own items are not removed, ties count against the item (metrics_rank), users with
 * fewer than 3 items are skipped.
 */
#ifndef SSNA_MODEL_POPULARITY_H
#define SSNA_MODEL_POPULARITY_H

#include <stddef.h>

#include "model/metrics.h"

/* counts[i] (i < n_items) = occurrences of item i in s[0..n-2) over all users u < n_users
 * (offsets/items as ingest/interactions.h gives them). 0 or -1 when an item index is out of
 * range (err names the user and position). */
int popularity_count(int n_users, const int *offsets, const int *items, int n_items, long *counts,
                     char *err, size_t errlen);

/* Rank every user's held-out item of split 0 (validation: s[n-2]) or 1 (test: s[n-1]) by the
 * counts; out gets Recall / NDCG at 10 and 50. ranks (may be NULL): [n_users], the 0-based rank
 * per user, -1 for users skipped (fewer than 3 items). */
void popularity_evaluate(const long *counts, int n_items, int n_users, const int *offsets,
                         const int *items, int split, Metrics *out, int *ranks);

/* The k most popular items, most popular first (ties: lower index first), leaving out the n
 * items of seen (NULL or n = 0: none). top_ids gets -1 past the catalogue's end. */
void popularity_top_k(const long *counts, int n_items, const int *seen, int n, int k, int *top_ids);

/* A popularity "checkpoint": a text file "SSNAPOP 1", the caller's one-line JSON meta, n_items
 * and one count per line. Written atomically (path.tmp, then rename). 0 or -1 with err. */
int popularity_save(const char *path, const long *counts, int n_items, const char *meta, char *err,
                    size_t errlen);

/* 1 when path starts with the popularity checkpoint's magic line, else 0 (also when unreadable). */
int popularity_is_file(const char *path);

/* Read a file popularity_save wrote: *counts (malloc'd, the caller frees), *n_items, meta
 * (may be NULL; metalen bytes). 0 or -1 with err naming the file and line. */
int popularity_load(const char *path, long **counts, int *n_items, char *meta, size_t metalen,
                    char *err, size_t errlen);

#endif
