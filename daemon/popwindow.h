/* popwindow.h - the `pop` A/B arm of ssnad: the items most chosen over the last W applied events.
 *
 * A ring of the last W item indexes and a count per item over it. Its ranking (count, then lower
 * index first, as `ssna train --variant pop` breaks ties offline) is cached and recomputed only
 * after the window changed, so a batch of lists costs one pass over the counts, not one per
 * user. Eligible items with no count in the window pad a list to k, so a pop list is as long as
 * the other arms' (a short list would be sent again each time the catalogue grows).
 *
 * The window is saved in ssnad's checkpoint beside the duplicate window and loaded at start-up,
 * so a restart (or a replay from the checkpoint after a crash) ranks exactly as an uninterrupted
 * run. Not thread-safe: ssnad uses it under serve_mu.
 */
#ifndef SSNA_DAEMON_POPWINDOW_H
#define SSNA_DAEMON_POPWINDOW_H

#include <stddef.h>
#include <stdint.h>

typedef struct PopWindow PopWindow;

/* A window of the last `window` (>= 1) events; lists of up to k items leaving out at most
 * max_exclude of the user's own items are served from the cached ranking. NULL when out of
 * memory or window is 0. */
PopWindow *popwindow_create(size_t window, int k, int max_exclude);
void popwindow_free(PopWindow *p);

/* One applied event chose item; the event W back leaves the window. 0, or -1 when out of memory
 * (the window is unchanged). */
int popwindow_add(PopWindow *p, uint32_t item);
/* How often item was chosen within the window. */
uint32_t popwindow_count(const PopWindow *p, uint32_t item);
/* Events in the window now (min(added, window)). */
size_t popwindow_size(const PopWindow *p);

/* The top k (<= the k given at creation) of items [0, n_items) with eligible[i] set (NULL: all),
 * leaving out the n_exclude items of exclude (<= max_exclude; NULL or 0: none): most chosen first,
 * ties to the lower index; ids get the items, scores their counts. Returns how many (< k only when
 * fewer items are eligible), or -1 when out of memory. */
int popwindow_top_k(PopWindow *p, const unsigned char *eligible, size_t n_items,
                    const uint32_t *exclude, int n_exclude, int k, int32_t *ids, float *scores);

/* The window as a blob for the checkpoint: its events oldest first (malloc'ed, *len bytes).
 * NULL when out of memory. */
void *popwindow_save(const PopWindow *p, size_t *len);
/* Replace the window's events with a blob's (popwindow_save's layout), keeping the newest
 * `window` when the blob holds more; every item must be < n_items. 0, or -1 with err naming what
 * is malformed (the window is then unchanged). */
int popwindow_load(PopWindow *p, const void *blob, size_t len, size_t n_items, char *err,
                   size_t errlen);

#endif
