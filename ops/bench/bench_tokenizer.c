/* bench_tokenizer.c - texts/s of model/tokenizer against Hugging Face `tokenizers` (Rust, from
 * Python) on the same texts, same tokenizer file, no truncation/padding, in one run.
 *
 * Usage: bench_tokenizer [model_dir [items_file [venv_python]]]
 *   defaults: models/minilm-l6, ../shared/data/amazon-scientific/Scientific.text, .venv/bin/python
 *   (run from the repository root). items_file: header line, then id<TAB>text per line.
 * Figures: ours on 1 and 2 threads (each thread encodes every text); Hugging Face one text per
 * call (Tokenizer.encode) and encode_batch with RAYON_NUM_THREADS=1 and 2. Each figure is the
 * best of 3 passes over all texts.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/clock.h"
#include "model/tokenizer.h"

typedef struct {
    const Tokenizer *tok;
    char **texts;
    int n_texts;
    long tokens;
} Pass;

static void *encode_pass(void *arg) {
    Pass *p = arg;
    int ids[8192], n;
    char err[256];
    p->tokens = 0;
    for (int i = 0; i < p->n_texts; i++) {
        if (tokenizer_encode(p->tok, p->texts[i], strlen(p->texts[i]), 8192, ids, &n, NULL, err,
                             sizeof(err)) != 0) {
            fprintf(stderr, "bench_tokenizer: text %d: %s\n", i, err);
            exit(1);
        }
        p->tokens += n;
    }
    return NULL;
}

/* Best texts/s (over all threads) of 3 passes with n_threads each encoding every text. */
static double ours_texts_per_s(const Tokenizer *tok, char **texts, int n_texts, int n_threads,
                               long *tokens) {
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        Pass p[2] = {{tok, texts, n_texts, 0}, {tok, texts, n_texts, 0}};
        pthread_t th[2];
        double t0 = clock_monotonic_s();
        for (int k = 0; k < n_threads; k++) pthread_create(&th[k], NULL, encode_pass, &p[k]);
        for (int k = 0; k < n_threads; k++) pthread_join(th[k], NULL);
        double rate = (double)n_texts * n_threads / (clock_monotonic_s() - t0);
        if (rate > best) best = rate;
        *tokens = p[0].tokens;
    }
    return best;
}

static char **read_texts(const char *path, int *n_out) {
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        exit(1);
    }
    char **texts = NULL, *line = NULL;
    size_t cap = 0;
    int n = 0;
    ssize_t got = getline(&line, &cap, f); /* header */
    while ((got = getline(&line, &cap, f)) > 0) {
        if (line[got - 1] == '\n') line[--got] = 0;
        char *tab = strchr(line, '\t');
        if (!tab) continue;
        texts = realloc(texts, (size_t)(n + 1) * sizeof(*texts));
        texts[n++] = strdup(tab + 1);
    }
    free(line);
    fclose(f);
    *n_out = n;
    return texts;
}

/* Hugging Face's figure for one mode, printed by python as "texts_per_s tokens". */
static double hf_texts_per_s(const char *python, const char *model_dir, const char *items,
                             const char *mode, int threads, long *tokens) {
    char cmd[8192];
    snprintf(
        cmd, sizeof(cmd),
        "RAYON_NUM_THREADS=%d '%s' - '%s' '%s' %s <<'EOF'\n"
        "import sys, time\n"
        "from tokenizers import Tokenizer\n"
        "tok = Tokenizer.from_file(sys.argv[1] + '/tokenizer.json')\n"
        "tok.no_truncation(); tok.no_padding()\n"
        "lines = open(sys.argv[2], encoding='utf-8', errors='replace').read().split('\\n')[1:]\n"
        "texts = [l.split('\\t', 1)[1] for l in lines if '\\t' in l]\n"
        "best = 0\n"
        "for _ in range(3):\n"
        "    t0 = time.perf_counter()\n"
        "    encs = tok.encode_batch(texts) if sys.argv[3] == 'batch' else [tok.encode(t) for t in "
        "texts]\n"
        "    best = max(best, len(texts) / (time.perf_counter() - t0))\n"
        "print(best, sum(len(e.ids) for e in encs))\n"
        "EOF",
        threads, python, model_dir, items, mode);
    FILE *p = popen(cmd, "r");
    double rate = 0;
    if (!p || fscanf(p, "%lf %ld", &rate, tokens) != 2) rate = 0;
    if (p) pclose(p);
    return rate;
}

int main(int argc, char **argv) {
    const char *model_dir = argc > 1 ? argv[1] : "models/minilm-l6";
    const char *items = argc > 2 ? argv[2] : "../shared/data/amazon-scientific/Scientific.text";
    const char *python = argc > 3 ? argv[3] : ".venv/bin/python";
    Tokenizer *tok;
    char err[512];
    if (tokenizer_load(&tok, model_dir, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench_tokenizer: %s\n", err);
        return 1;
    }
    int n_texts;
    char **texts = read_texts(items, &n_texts);
    printf("tokenizer %s (%s), %d texts from %s\n", model_dir, tokenizer_kind(tok), n_texts, items);

    long tok1 = 0, tok2 = 0, hf_tokens = 0;
    double ours1 = ours_texts_per_s(tok, texts, n_texts, 1, &tok1);
    double ours2 = ours_texts_per_s(tok, texts, n_texts, 2, &tok2);
    printf("ours, 1 thread:                 %10.0f texts/s (%ld tokens per pass)\n", ours1, tok1);
    printf("ours, 2 threads:                %10.0f texts/s\n", ours2);
    double hf_one = hf_texts_per_s(python, model_dir, items, "single", 1, &hf_tokens);
    double hf_b1 = hf_texts_per_s(python, model_dir, items, "batch", 1, &hf_tokens);
    double hf_b2 = hf_texts_per_s(python, model_dir, items, "batch", 2, &hf_tokens);
    if (hf_one <= 0 || hf_b1 <= 0 || hf_b2 <= 0) {
        printf("hugging face: not measured (%s with tokenizers needed)\n", python);
    } else {
        printf("hf encode, 1 per call:          %10.0f texts/s (%ld tokens per pass%s)\n", hf_one,
               hf_tokens, hf_tokens == tok1 ? ", same as ours" : ", DIFFERS from ours");
        printf("hf encode_batch, 1 thread:      %10.0f texts/s\n", hf_b1);
        printf("hf encode_batch, 2 threads:     %10.0f texts/s\n", hf_b2);
        printf("ratio ours/hf: 1 thread vs batch %.2fx, vs 1 per call %.2fx, 2 threads %.2fx\n",
               ours1 / hf_b1, ours1 / hf_one, ours2 / hf_b2);
    }
    for (int i = 0; i < n_texts; i++) free(texts[i]);
    free(texts);
    tokenizer_free(tok);
    return 0;
}
