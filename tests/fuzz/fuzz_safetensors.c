/* fuzz_safetensors - a model file's safetensors header (model/safetensors.c): the 8-byte length,
 * the JSON table of names, dtypes, shapes and offsets, checked against the file's size. The
 * loader maps a path, so each input is written to a private temporary file first. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "model/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char path[64];
    if (!path[0]) snprintf(path, sizeof path, "/tmp/fuzz-safetensors-%d", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    Safetensors st;
    char err[512];
    if (!safetensors_open(&st, path, err, sizeof err)) {
        const SafetensorsTensor *t = safetensors_find(&st, "w");
        const int64_t shape[1] = {16}; // read only a tensor of this shape: out has room for it
        float out[16];
        if (t) safetensors_read_f32(&st, t, shape, 1, out, err, sizeof err);
        safetensors_close(&st);
    }
    return 0;
}
