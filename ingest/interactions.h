/* interactions.h - user interaction sequences for offline training: UniSRec .inter files and
 * generic user,item,timestamp CSV/TSV logs, with the paper's preprocessing and split.
 *
 * The result is one chronological item sequence per user (dense user and item indexes, the
 * external ids kept for printing and for the item-state cache), truncated to the most recent
 * max_len items. Leave-one-out on a sequence s of length n: test target s[n-1] (input s[0..n-1)),
 * validation target s[n-2] (input s[0..n-2)), training sequence s[0..n-2).
 */
#ifndef SSNA_INGEST_INTERACTIONS_H
#define SSNA_INGEST_INTERACTIONS_H

#include <stddef.h>

typedef struct {
    int n_users, n_items;
    int *offsets;          /* [n_users + 1]: user u's items are items[offsets[u] .. offsets[u+1]) */
    int *items;            /* [offsets[n_users]] dense item indexes, oldest first */
    char **user_ids;       /* [n_users] external user ids */
    char **item_ids;       /* [n_items] external item ids (ASIN, movieId, ...): the cache keys */
    long raw_interactions; /* before k-core and truncation */
} Interactions;

/* Options of the generic reader. Columns are 0-based; -1 = find by header name (user/userId/
 * user_id, item/itemId/item_id/movieId, timestamp/time) or else 0, 1, 2. */
typedef struct {
    char delimiter; /* ',' or '\t'; 0 = guess from the first line */
    int user_col, item_col, time_col;
    int k_core;  /* iterative k-core on users and items (0 or 1 = none); default 5 */
    int max_len; /* keep the most recent max_len items per user; default 50 */
} InteractionOptions;

InteractionOptions interactions_default_options(void);

/* Read the UniSRec files DIR/NAME.{train,valid,test}.inter (train.inter optional, as for
 * Games) and rebuild every user's full sequence: train.inter lists a user's training targets
 * newest first and its last row's history is the first item, so full = [first item] + targets
 * oldest first + valid target + test target; without train.inter, test history + target. The
 * result is truncated to max_len. Item ids come from NAME.item2index (ASIN) when present, else
 * the index itself. Errors name file:line. 0 or -1. */
int interactions_load_unisrec(Interactions *d, const char *dir, const char *name, int max_len,
                              char *err, size_t errlen);

/* Read a user,item,timestamp file (CSV with quotes and CRLF, or TSV; a header line is detected
 * when its time column is not a number), order each user's events by timestamp (ties in file
 * order), apply the iterative k-core, then keep the last max_len items per user. Items are
 * indexed in order of first appearance after filtering. Errors name file:line. 0 or -1. */
int interactions_load_csv(Interactions *d, const char *path, const InteractionOptions *opt,
                          char *err, size_t errlen);

/* Free everything. */
void interactions_free(Interactions *d);

/* Total interactions (sum of sequence lengths). */
long interactions_count(const Interactions *d);

#endif
