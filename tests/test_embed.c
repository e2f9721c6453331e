/* `ssna embed` end to end on real data and the real all-MiniLM-L6-v2 weights: the first 200
 * Scientific items, stopped after 80 (--limit) and run again, finish without redoing the done
 * items, and the cache then equals a fresh one-shot run with other batch sizes; the stored states
 * are the encoder's own (top layer first, [CLS] pooled) rounded to F16; a changed text is
 * re-encoded alone; a run killed with SIGKILL mid-way and restarted encodes only the rest; a
 * different encoder identity is refused. Needs SSNA_BUILD_DIR (the ssna
 * binary), SSNA_DATA_DIR and SSNA_MODEL_DIR. */
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "ingest/items.h"
#include "model/encoder.h"
#include "model/half.h"
#include "store/store.h"

#define N_ITEMS 200
#define LAYERS  3

static char err[4096];
static char ssna[4096], tmp[64];
static char *ids[N_ITEMS], *texts[N_ITEMS];
static size_t text_lens[N_ITEMS];

/* Run `ssna embed ARGS`, capture stdout+stderr into out; returns the exit status. */
static int run_embed(const char *args, char *out, size_t outlen) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' embed %s 2>&1", ssna, args);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, outlen - 1, p);
    out[n] = 0;
    int status = pclose(p);
    fprintf(stderr, "$ ssna embed %s\n%s", args, out);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Write the first N_ITEMS items of Scientific.text (header included) to path and keep them. */
static int write_slice(const char *data, const char *path) {
    char src[4096];
    snprintf(src, sizeof src, "%s/amazon-scientific/Scientific.text", data);
    FILE *in = fopen(src, "rb"), *out = fopen(path, "wb");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int n = -1;
    while (in && out && n < N_ITEMS && (len = getline(&line, &cap, in)) > 0) {
        fwrite(line, 1, (size_t)len, out);
        if (n >= 0) {
            char *tab = strchr(line, '\t');
            if (!tab) break;
            ids[n] = strndup(line, (size_t)(tab - line));
            text_lens[n] = (size_t)(line + len - 1 - (tab + 1)); /* without the LF */
            texts[n] = strndup(tab + 1, text_lens[n]);
        }
        n++;
    }
    free(line);
    if (in) fclose(in);
    if (out) fclose(out);
    return n == N_ITEMS ? 0 : -1;
}

/* Start `ssna embed` on the slice into db, SIGKILL it once a few batches are committed, then
 * run it again: it must finish only the rest. Returns the number committed before the kill. */
static size_t kill_and_resume(const char *slice, const char *db) {
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) {
            dup2(devnull, STDOUT_FILENO);
            dup2(devnull, STDERR_FILENO);
        }
        execl(ssna, "ssna", "embed", "--items", slice, "--db", db, "--batch", "16", (char *)NULL);
        _exit(127);
    }
    size_t before = 0;
    Store *watch = NULL;
    StoreOptions ro = {.read_only = 1};
    for (int tries = 0; tries < 6000 && before < 32; tries++) { /* up to 5 minutes */
        struct timespec pause = {0, 50 * 1000 * 1000};
        nanosleep(&pause, NULL);
        if (!watch && store_open(&watch, db, &ro, err, sizeof err)) continue;
        if (store_item_count(watch, NULL, &before, err, sizeof err)) before = 0;
    }
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK_MSG(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
              "the first run ended before it was killed (status %d)", status);
    store_item_count(watch, NULL, &before, err, sizeof err);
    store_close(watch);
    printf("killed with %zu of %d items committed\n", before, N_ITEMS);
    CHECK(before >= 32 && before < N_ITEMS && before % 16 == 0);
    char args[1024], out[16384], want[64];
    snprintf(args, sizeof args, "--items %s --db %s --batch 16", slice, db);
    CHECK(run_embed(args, out, sizeof out) == 0);
    snprintf(want, sizeof want, "encoded %zu, unchanged %zu,", N_ITEMS - before, before);
    CHECK_MSG(strstr(out, want), "want '%s' in %s", want, out);
    return before;
}

static void check_count(Store *s, size_t want) {
    size_t n = 0;
    CHECK(store_item_count(s, NULL, &n, err, sizeof err) == STORE_OK);
    CHECK_MSG(n == want, "store holds %zu items, want %zu", n, want);
}

/* The resumed cache equals the one-shot cache, item by item. */
static void compare_stores(Store *a, Store *b) {
    static float xa[LAYERS * 384], xb[LAYERS * 384];
    double max_diff = 0;
    long exact = 0, total = 0, missing = 0, hash_bad = 0;
    for (int i = 0; i < N_ITEMS; i++) {
        StoreItemInfo ia, ib;
        if (store_get_item(a, NULL, ids[i], &ia, xa, LAYERS * 384, err, sizeof err) ||
            store_get_item(b, NULL, ids[i], &ib, xb, LAYERS * 384, err, sizeof err)) {
            missing++;
            continue;
        }
        hash_bad += ia.text_hash != ib.text_hash || ia.layers != LAYERS || ia.hidden != 384;
        for (int j = 0; j < LAYERS * 384; j++) {
            double d = fabs((double)xa[j] - xb[j]);
            if (d > max_diff) max_diff = d;
            exact += xa[j] == xb[j];
            total++;
        }
    }
    printf("resumed vs one-shot: %ld of %ld values bit-identical, max |diff| %.3g\n", exact, total,
           max_diff);
    CHECK(missing == 0 && hash_bad == 0);
    /* the encoder packs sequences without padding and reduces each one in a fixed order, so
     * batch composition must not change a single bit: resuming is indistinguishable */
    CHECK_MSG(exact == total, "only %ld of %ld values identical (max |diff| %.3g)", exact, total,
              max_diff);
}

/* The states of store b are encoder_embed's top-3 [CLS] states rounded to F16. */
static void compare_with_encoder(Store *b, const char *model_dir) {
    Encoder *enc;
    CHECK_MSG(encoder_load(&enc, model_dir, err, sizeof err) == 0, "%s", err);
    if (!enc) return;
    enum { K = 8 };
    static float direct[K * LAYERS * 384], stored[LAYERS * 384];
    const char *t[K];
    for (int i = 0; i < K; i++) t[i] = texts[i];
    int n = encoder_num_layers(enc);
    CHECK(encoder_hidden(enc) == 384);
    CHECK(encoder_embed(enc, t, text_lens, K, ENCODER_POOL_CLS, n, LAYERS, direct, err,
                        sizeof err) == 0);
    double max_diff = 0;
    for (int i = 0; i < K; i++) {
        CHECK(store_get_item(b, NULL, ids[i], NULL, stored, LAYERS * 384, err, sizeof err) == 0);
        for (int j = 0; j < LAYERS * 384; j++) {
            float want = half_to_float(half_from_float(direct[i * LAYERS * 384 + j]));
            double d = fabs((double)stored[j] - want) / (1 + fabs(want));
            if (d > max_diff) max_diff = d;
        }
    }
    printf("stored vs direct encoder (F16-rounded): max relative diff %.3g\n", max_diff);
    CHECK_MSG(max_diff < 2e-3, "stored states are not the encoder's: %.3g", max_diff);
    /* and they are per-layer different: row 0 (top layer) is not row 1 */
    CHECK(memcmp(stored, stored + 384, 384 * sizeof *stored) != 0);
    encoder_free(enc);
}

static void check_catalogue_and_hashes(Store *a) {
    size_t n = 0;
    CHECK(store_catalogue_count(a, NULL, &n, err, sizeof err) == 0 && n == N_ITEMS);
    int bad = 0;
    for (int i = 0; i < N_ITEMS; i++) {
        char id[STORE_KEY_MAX + 1];
        char *text = NULL;
        size_t len = 0;
        uint32_t index = 0;
        bad += store_catalogue_id(a, NULL, (uint32_t)i, id, sizeof id, err, sizeof err) != 0 ||
               strcmp(id, ids[i]) != 0;
        bad += store_catalogue_get(a, NULL, ids[i], &index, &text, &len, err, sizeof err) != 0 ||
               index != (uint32_t)i || len != text_lens[i] || memcmp(text, texts[i], len) != 0;
        free(text);
        bad += store_item_text_unchanged(a, NULL, ids[i], store_text_hash(texts[i], text_lens[i]),
                                         err, sizeof err) != 1;
    }
    CHECK_MSG(bad == 0, "%d catalogue/hash mismatches", bad);
}

static void test_changed_text(const char *db, Store *oneshot) {
    /* item 5 gets a new text, and one malformed line is slipped in */
    char path[256], args[1024], out[16384];
    snprintf(path, sizeof path, "%s/changed.text", tmp);
    FILE *f = fopen(path, "wb");
    fputs("item_id:token\ttext:token_seq\n", f);
    for (int i = 0; i < N_ITEMS; i++) {
        fprintf(f, "%s\t%s\n", ids[i], i == 5 ? "A completely different product" : texts[i]);
        if (i == 10) fputs("malformed line without a tab\n", f);
    }
    fclose(f);
    snprintf(args, sizeof args, "--items %s --db %s", path, db);
    CHECK(run_embed(args, out, sizeof out) == 0);
    CHECK_MSG(strstr(out, "encoded 1, unchanged 199, malformed 1"), "%s", out);
    CHECK_MSG(strstr(out, "changed.text:13:"), "malformed line named: %s", out);
    Store *a;
    CHECK(store_open(&a, db, NULL, err, sizeof err) == 0);
    if (!a) return;
    const char *nt = "A completely different product";
    CHECK(store_item_text_unchanged(a, NULL, ids[5], store_text_hash(nt, strlen(nt)), err,
                                    sizeof err) == 1);
    static float x5[LAYERS * 384], old5[LAYERS * 384];
    CHECK(store_get_item(a, NULL, ids[5], NULL, x5, LAYERS * 384, err, sizeof err) == 0);
    CHECK(store_get_item(oneshot, NULL, ids[5], NULL, old5, LAYERS * 384, err, sizeof err) == 0);
    CHECK(memcmp(x5, old5, sizeof x5) != 0);
    char *text = NULL;
    CHECK(store_catalogue_get(a, NULL, ids[5], NULL, &text, NULL, err, sizeof err) == 0 && text &&
          !strcmp(text, nt));
    free(text);
    check_count(a, N_ITEMS);
    store_close(a);
}

int main(void) {
    const char *build = getenv("SSNA_BUILD_DIR"), *data = getenv("SSNA_DATA_DIR");
    const char *model = getenv("SSNA_MODEL_DIR");
    CHECK_MSG(build && data && model,
              "SSNA_BUILD_DIR, SSNA_DATA_DIR and SSNA_MODEL_DIR must be set (run under ctest)");
    if (!build || !data || !model) return check_done();
    snprintf(ssna, sizeof ssna, "%s/daemon/ssna", build);
    CHECK_MSG(access(ssna, X_OK) == 0, "%s is missing: build the ssna target first", ssna);
    check_temp_dir(tmp, sizeof tmp, "embed");
    char slice[128], db_a[128], db_b[128], db_k[128], args[1024], out[16384];
    snprintf(slice, sizeof slice, "%s/slice.text", tmp);
    snprintf(db_a, sizeof db_a, "%s/resumed", tmp);
    snprintf(db_b, sizeof db_b, "%s/oneshot", tmp);
    snprintf(db_k, sizeof db_k, "%s/killed", tmp);
    int have_slice = write_slice(data, slice) == 0;
    CHECK_MSG(have_slice, "cannot read %s/amazon-scientific/Scientific.text", data);
    if (!have_slice) { // failed: every check after this needs the items
        check_remove_tree(tmp);
        return check_done();
    }

    CHECK(run_embed("--help", out, sizeof out) == 0 && strstr(out, "--layers") &&
          strstr(out, "--pool"));
    CHECK(run_embed("--items", out, sizeof out) == 2);
    CHECK(run_embed("--items x --db y --pool max", out, sizeof out) == 2);

    /* interrupted after 80 items, then finished */
    snprintf(args, sizeof args, "--items %s --db %s --limit 80 --batch 32", slice, db_a);
    CHECK(run_embed(args, out, sizeof out) == 0);
    CHECK_MSG(strstr(out, "encoded 80, unchanged 0") && strstr(out, "holds 80 items"), "%s", out);
    snprintf(args, sizeof args, "--items %s --db %s --batch 32", slice, db_a);
    CHECK(run_embed(args, out, sizeof out) == 0);
    CHECK_MSG(strstr(out, "encoded 120, unchanged 80") && strstr(out, "holds 200 items"), "%s",
              out);
    /* a third run has nothing left to do */
    CHECK(run_embed(args, out, sizeof out) == 0);
    CHECK_MSG(strstr(out, "encoded 0, unchanged 200"), "%s", out);

    /* one shot, other batch size */
    snprintf(args, sizeof args, "--items %s --db %s --batch 64 --model %s", slice, db_b, model);
    CHECK(run_embed(args, out, sizeof out) == 0);
    CHECK_MSG(strstr(out, "encoded 200, unchanged 0"), "%s", out);

    /* another encoder configuration is refused and changes nothing */
    snprintf(args, sizeof args, "--items %s --db %s --pool mean", slice, db_a);
    CHECK(run_embed(args, out, sizeof out) == 1);
    CHECK_MSG(strstr(out, "another encoder (differs in: pooling)") && strstr(out, "\"mean\"") &&
                  strstr(out, "\"cls\""),
              "%s", out);
    snprintf(args, sizeof args, "--items %s --db %s --layers 2", slice, db_a);
    CHECK(run_embed(args, out, sizeof out) == 1);

    /* killed with SIGKILL mid-run, then finished */
    kill_and_resume(slice, db_k);

    Store *a = NULL, *b = NULL, *k = NULL;
    CHECK(store_open(&a, db_a, NULL, err, sizeof err) == 0);
    CHECK(store_open(&b, db_b, NULL, err, sizeof err) == 0);
    if (a && b) {
        check_count(a, N_ITEMS);
        check_count(b, N_ITEMS);
        compare_stores(a, b);
        CHECK(store_open(&k, db_k, NULL, err, sizeof err) == 0);
        if (k) compare_stores(k, b);
        store_close(k);
        check_catalogue_and_hashes(a);
        compare_with_encoder(b, model);
        store_close(a);
        test_changed_text(db_a, b);
    } else {
        store_close(a);
    }
    store_close(b);
    for (int i = 0; i < N_ITEMS; i++) {
        free(ids[i]);
        free(texts[i]);
    }
    check_remove_tree(tmp);
    return check_done();
}
