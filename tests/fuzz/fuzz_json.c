/* fuzz_json - the JSON parser (model/json.c) that reads config.json and tokenizer.json of any
 * model folder a user points --model at, on arbitrary bytes. */
#include <stddef.h>
#include <stdint.h>

#include "model/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    JsonValue v;
    char err[256];
    if (!json_parse(&v, (const char *)data, size, err, sizeof err)) {
        json_get_number(&v, "hidden_size", 0);
        json_get_string(&v, "model_type", "");
        json_free(&v);
    }
    return 0;
}
