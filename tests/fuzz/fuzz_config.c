/* fuzz_config - `ssnad --set KEY=VALUE` and config-file lines (daemon/config.c), on arbitrary
 * bytes: the input is split at newlines and each line given to config_load_args as one --set. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 4096) return 0;
    char *text = malloc(size + 1);
    char *argv[2 + 2 * 64];
    int argc = 0;
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    argv[argc++] = "ssnad";
    for (char *line = strtok(text, "\n"); line && argc < 2 * 64; line = strtok(NULL, "\n")) {
        argv[argc++] = "--set";
        argv[argc++] = line;
    }
    argv[argc] = NULL;
    DaemonConfig cfg;
    char err[512];
    config_load_args(&cfg, argc, argv, err, sizeof err);
    config_free(&cfg);
    free(text);
    return 0;
}
