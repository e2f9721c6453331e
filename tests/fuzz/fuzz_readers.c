/* fuzz_readers - the offline readers of outside files: the generic user,item,timestamp CSV/TSV
 * reader and the UniSRec .inter reader (ingest/interactions.c), and the item-text readers
 * (ingest/items.c: atomic .text/.item and JSON lines). The first byte picks the reader; the rest
 * is split at 0xFF bytes into the files that reader opens (UniSRec: train, valid, test,
 * item2index), written to a private temporary folder. Every reader must return an error or a
 * result whose indexes are inside its own tables. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ingest/interactions.h"
#include "ingest/items.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];

/* Write part k of data[0..size) (parts separated by 0xFF; a missing part is no file). */
static int write_part(const uint8_t *data, size_t size, int k, const char *name) {
    size_t start = 0;
    for (int i = 0; i < k; i++) {
        const uint8_t *sep = memchr(data + start, 0xFF, size - start);
        if (!sep) return 0;
        start = (size_t)(sep - data) + 1;
    }
    const uint8_t *sep = memchr(data + start, 0xFF, size - start);
    size_t end = sep ? (size_t)(sep - data) : size;
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (end > start && fwrite(data + start, 1, end - start, f) != end - start) abort();
    fclose(f);
    return 1;
}

static void check_interactions(const Interactions *d) {
    if (d->n_users < 0 || d->n_items < 0 || d->offsets[0] != 0) abort();
    for (int u = 0; u < d->n_users; u++) {
        if (d->offsets[u + 1] < d->offsets[u] || !d->user_ids[u]) abort();
        for (int i = d->offsets[u]; i < d->offsets[u + 1]; i++)
            if (d->items[i] < 0 || d->items[i] >= d->n_items) abort();
    }
    for (int i = 0; i < d->n_items; i++)
        if (!d->item_ids[i]) abort();
}

/* FUZZ_VERBOSE=1: say what each input gave (to keep the seeds meaningful) */
static void say(const char *what, int rc, const char *err) {
    if (getenv("FUZZ_VERBOSE")) fprintf(stderr, "fuzz_readers: %s: %s\n", what, rc ? err : "ok");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/fuzz-readers-%d", (int)getpid());
        char cmd[96];
        snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", dir, dir);
        if (system(cmd)) abort();
    }
    if (size < 1) return 0;
    int which = data[0] % 4;
    data++, size--;
    char err[512], path[128];
    static const char *const unisrec[4] = {"D.train.inter", "D.valid.inter", "D.test.inter",
                                           "D.item2index"};
    for (int k = 0; k < 4; k++) { // no file of an earlier input stays behind
        snprintf(path, sizeof path, "%s/%s", dir, unisrec[k]);
        unlink(path);
    }
    if (which == 0) { // CSV / TSV
        write_part(data, size, 0, "r.csv");
        snprintf(path, sizeof path, "%s/r.csv", dir);
        InteractionOptions o = interactions_default_options();
        o.k_core = size % 3;
        o.max_len = 3 + (int)(size % 5);
        Interactions d;
        int rc = interactions_load_csv(&d, path, &o, err, sizeof err);
        say("csv", rc, err);
        if (!rc) {
            check_interactions(&d);
            interactions_free(&d);
        }
    } else if (which == 1) { // UniSRec .inter files
        for (int k = 0; k < 4; k++) write_part(data, size, k, unisrec[k]);
        Interactions d;
        int rc = interactions_load_unisrec(&d, dir, "D", 3 + (int)(size % 5), err, sizeof err);
        say("unisrec", rc, err);
        if (!rc) {
            check_interactions(&d);
            interactions_free(&d);
        }
    } else { // item texts: atomic or JSON lines
        const char *name = which == 2 ? "i.text" : "i.jsonl";
        write_part(data, size, 0, name);
        snprintf(path, sizeof path, "%s/%s", dir, name);
        ItemsReader *r;
        if (items_open(&r, path, ITEMS_FORMAT_AUTO, err, sizeof err)) {
            say(name, -1, err);
            return 0;
        }
        ItemText it;
        int rc, n = 0;
        while ((rc = items_next(r, &it, err, sizeof err)) != 0 && n++ < 100000) {
            if (rc == 1 && (it.id_len == 0 || strlen(it.id) != it.id_len)) abort();
            say(name, rc == 1 ? 0 : -1, err);
        }
        items_close(r);
    }
    return 0;
}
