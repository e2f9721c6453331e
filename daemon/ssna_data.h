/* ssna_data.h - the data set the offline subcommands (train, eval, recommend, export) share:
 * one reader for a UniSRec folder or a generic CSV/TSV file, so every command sees the same
 * sequences and the same leave-one-out split. */
#ifndef SSNA_DAEMON_SSNA_DATA_H
#define SSNA_DAEMON_SSNA_DATA_H

#include <stddef.h>

#include "ingest/interactions.h"

/* Load `data`: a folder is a UniSRec data set (its NAME is `name`, or the one NAME.test.inter
 * there; the NAME used goes to name_out, "" for a file), a file is a user,item,timestamp
 * CSV/TSV with the k-core. Every sequence keeps its last max_len items. 0 or -1 with err. */
int ssna_data_load(const char *data, const char *name, int k_core, int max_len, Interactions *out,
                   char *name_out, size_t name_len, char *err, size_t errlen);

#endif
