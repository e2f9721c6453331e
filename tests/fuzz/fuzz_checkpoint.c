/* fuzz_checkpoint - an `ssna train --out` checkpoint (model/ssna_train.c: magic, "key value"
 * header, two length-prefixed parameter blobs, sha256 line) and the parameter blob format itself
 * (model/params.c params_deserialize), which the daemon's model snapshots also use. Each input is
 * written to a private temporary file. A checkpoint is only accepted when its digest matches, so
 * inputs whose first byte is odd get a correct "sha256 <hex>" line appended: that lets the
 * fuzzer reach the header and blob parsers behind the digest. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/params.h"
#include "model/sha256.h"
#include "model/ssna.h"
#include "model/ssna_train.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char path[64];
    if (!path[0]) snprintf(path, sizeof path, "/tmp/fuzz-checkpoint-%d", (int)getpid());
    if (size < 1) return 0;
    int sign = data[0] & 1, best = (data[0] >> 1) & 1;
    data++, size--;
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    if (sign) {
        char hex[65];
        sha256_hex(data, size, hex);
        fprintf(f, "sha256 %s\n", hex);
    }
    fclose(f);
    char err[512];
    SsnaModel m;
    SsnaTrainState st;
    void *blob = NULL;
    size_t blob_len = 0;
    int rc = ssna_checkpoint_load(path, best, &m, &st, &blob, &blob_len, err, sizeof err);
    if (getenv("FUZZ_VERBOSE")) fprintf(stderr, "fuzz_checkpoint: %s\n", rc ? err : "loaded");
    if (!rc) {
        if (m.ps.total == 0) abort(); // a loaded model has parameters
        free(blob);
        ssna_free(&m);
    }
    // the raw blob format, into a small declared set (what a snapshot restore does)
    ParamSet ps;
    params_init(&ps);
    const int shape[2] = {4, 3};
    rc = -1;
    if (params_declare(&ps, "a", 2, shape, err, sizeof err) >= 0 && // returns the index
        params_declare(&ps, "b", 1, shape, err, sizeof err) >= 0 &&
        !params_alloc(&ps, err, sizeof err))
        rc = params_deserialize(&ps, data, size, err, sizeof err);
    if (getenv("FUZZ_VERBOSE")) fprintf(stderr, "fuzz_checkpoint: blob %s\n", rc ? err : "loaded");
    params_free(&ps);
    return 0;
}
