/* replay_source.h - a UniSRec-format dataset as `ssna replay` streams it: every user's full
 * sequence, every item's external id and text, and one interleaved order of all interactions.
 *
 * The folder holds NAME.test.inter (and for Scientific NAME.train/valid.inter, NAME.item2index,
 * NAME.user2index) plus NAME.text or NAME.item for the texts; NAME is found from the
 * *.test.inter file. Sequences come from interactions_load_unisrec without truncation (the whole
 * history is the stream), texts from the items reader; ids are the dataset's external ids
 * (Amazon ASINs and reviewer ids for Scientific, the dataset's indexes for Games).
 */
#ifndef SSNA_INGEST_REPLAY_SOURCE_H
#define SSNA_INGEST_REPLAY_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "ingest/interactions.h"

typedef struct {
    char name[64];        // dataset name, e.g. "Scientific"
    Interactions seqs;    // full sequences and external ids
    char **item_texts;    // [seqs.n_items] text of each item
    int texts_are_titles; // NAME.item (RecBole: a title column); NAME.text is
                          // title+categories+brand
} ReplaySource;

/* One interaction of the stream: user u's pos-th item (0 = oldest). */
typedef struct {
    uint32_t user;
    uint32_t item;
    uint32_t pos;
} ReplayEvent;

/* Load the dataset in dir. Returns 0, or -1 with err naming the file (and line). An item of a
 * sequence without a text is an error. */
int replay_source_load(const char *dir, ReplaySource *out, char *err, size_t errlen);
/* All interactions in one stream order: users interleaved at random (seeded, so a replay is
 * repeatable), each user's items in their own order. *out is malloc'd and holds
 * interactions_count(&s->seqs) events. Returns 0, or -1 with err. */
int replay_source_interleave(const ReplaySource *s, uint64_t seed, ReplayEvent **out, char *err,
                             size_t errlen);
/* Free everything load allocated; the struct is zeroed. */
void replay_source_free(ReplaySource *s);

#endif
