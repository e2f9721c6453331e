/* ssna encode - tokenize texts and print the frozen encoder's per-layer vectors as JSON: the tool
 * to see what the encoder does with a text. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/ssna_cmd.h"
#include "model/numparse.h"
#include "model/encoder.h"

static void encode_usage(FILE *out) {
    fprintf(
        out,
        "usage: ssna encode [options] TEXT...\n"
        "\n"
        "Tokenize each TEXT with the checkpoint's tokenizer, run the frozen encoder, and print\n"
        "one JSON object: the encoder's identity and, per text, its token ids and tokens and\n"
        "one vector per layer, top layer first (layer 0 is the embeddings output).\n"
        "\n"
        "options:\n"
        "  --model DIR        Hugging Face checkpoint folder: config.json, model.safetensors,\n"
        "                     tokenizer files (default: $SSNA_MODEL_DIR, else\n"
        "                     models/minilm-l6 here or in the repository of this program)\n"
        "  --pool cls|mean    first-token state (default, as SSNA keeps) or the mean over\n"
        "                     the text's tokens (how all-MiniLM-L6-v2 was trained)\n"
        "  --normalize        scale every vector to unit L2 norm\n"
        "  --layers all|A     all layers (default) or the top A layers\n"
        "  --max-len N        truncate texts to N tokens, special tokens included\n"
        "                     (default: the tokenizer's truncation length)\n"
        "  -h, --help         this help\n"
        "\n"
        "exit status: 0 success, 1 error (model or encoding), 2 bad usage\n");
}

/* s as a JSON string literal on stdout. */
static void print_json_string(const char *s) {
    char *q = ssna_json_string(s);
    fputs(q ? q : "\"\"", stdout);
    free(q);
}

/* The JSON of one text: ids, tokens, and its vectors v: [n_layers, C], top layer first. */
static void print_text(const Encoder *e, const char *text, int max_len, const float *v,
                       int n_layers, int normalize) {
    const Tokenizer *tok = encoder_tokenizer(e);
    int C = encoder_hidden(e), top = encoder_num_layers(e);
    int *ids = malloc((size_t)max_len * sizeof *ids), n_ids = 0;
    char err[256];
    if (!ids ||
        tokenizer_encode(tok, text, strlen(text), max_len, ids, &n_ids, NULL, err, sizeof err))
        n_ids = 0; // encoder_embed succeeded on the same text, so this cannot fail
    fputs("{\"text\": ", stdout);
    print_json_string(text);
    fputs(", \"ids\": [", stdout);
    for (int t = 0; t < n_ids; t++) printf(t ? ", %d" : "%d", ids[t]);
    fputs("], \"tokens\": [", stdout);
    for (int t = 0; t < n_ids; t++) {
        const char *s = tokenizer_id_to_token(tok, ids[t]);
        if (t) fputs(", ", stdout);
        print_json_string(s ? s : "");
    }
    fputs("], \"layers\": [", stdout);
    for (int j = 0; j < n_layers; j++) {
        const float *x = v + (size_t)j * C;
        double scale = 1.0;
        if (normalize) {
            double ss = 0;
            for (int c = 0; c < C; c++) ss += (double)x[c] * x[c];
            scale = ss > 0 ? 1.0 / sqrt(ss) : 1.0;
        }
        printf("%s\n    {\"layer\": %d, \"vector\": [", j ? "," : "", top - j);
        for (int c = 0; c < C; c++) printf(c ? ", %.8g" : "%.8g", x[c] * scale);
        fputs("]}", stdout);
    }
    fputs("]}", stdout);
    free(ids);
}

int ssna_cmd_encode(int argc, char **argv) {
    char model_buf[PATH_MAX];
    const char *model_dir = NULL;
    int pool = ENCODER_POOL_CLS, normalize = 0, layers = -1, max_len = 0, first_text = argc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_value = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            encode_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--normalize")) {
            normalize = 1;
        } else if (!strcmp(a, "--model") && has_value) {
            model_dir = argv[++i];
        } else if (!strcmp(a, "--pool") && has_value) {
            const char *v = argv[++i];
            if (!strcmp(v, "cls"))
                pool = ENCODER_POOL_CLS;
            else if (!strcmp(v, "mean"))
                pool = ENCODER_POOL_MEAN;
            else {
                fprintf(stderr, "ssna encode: --pool must be cls or mean, not '%s'\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--layers") && has_value) {
            const char *v = argv[++i];
            if (strcmp(v, "all") && numparse_int(v, 1, 1000, &layers)) {
                fprintf(stderr, "ssna encode: --layers must be 'all' or a count >= 1, not '%s'\n",
                        v);
                return 2;
            }
        } else if (!strcmp(a, "--max-len") && has_value) {
            if (numparse_int(argv[++i], 3, 1 << 20, &max_len)) {
                fprintf(stderr, "ssna encode: --max-len must be an integer >= 3\n");
                return 2;
            }
        } else if (!strcmp(a, "--")) {
            first_text = i + 1;
            break;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "ssna encode: unknown option or missing value: '%s'\n", a);
            encode_usage(stderr);
            return 2;
        } else {
            first_text = i;
            break;
        }
    }
    int n = argc - first_text;
    if (n <= 0) {
        fprintf(stderr, "ssna encode: no TEXT given\n");
        encode_usage(stderr);
        return 2;
    }
    if (!model_dir) model_dir = encoder_default_model_dir(model_buf, sizeof model_buf);
    char err[1024];
    Encoder *e;
    if (encoder_load(&e, model_dir, err, sizeof err)) {
        fprintf(stderr, "ssna encode: %s\n", err);
        return 1;
    }
    int top = encoder_num_layers(e), C = encoder_hidden(e);
    if (layers < 0 || layers > top + 1) layers = top + 1;
    if (max_len) encoder_set_max_len(e, max_len);
    const char *const *texts = (const char *const *)(argv + first_text);
    float *out = malloc((size_t)n * layers * C * sizeof *out);
    int rc = 1;
    if (!out) {
        fprintf(stderr, "ssna encode: out of memory\n");
    } else if (encoder_embed(e, texts, NULL, n, pool, top, layers, out, err, sizeof err)) {
        fprintf(stderr, "ssna encode: %s\n", err);
    } else {
        printf("{\"model\": ");
        print_json_string(model_dir);
        printf(",\n \"encoder\": %s,\n \"pool\": \"%s\", \"normalized\": %s, \"max_len\": %d,\n"
               " \"texts\": [",
               encoder_identity(e), pool ? "mean" : "cls", normalize ? "true" : "false",
               encoder_max_len(e));
        for (int i = 0; i < n; i++) {
            fputs(i ? ",\n  " : "\n  ", stdout);
            print_text(e, texts[i], encoder_max_len(e), out + (size_t)i * layers * C, layers,
                       normalize);
        }
        printf("]}\n");
        rc = 0;
    }
    free(out);
    encoder_free(e);
    return rc;
}
