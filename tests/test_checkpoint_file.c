/* test_checkpoint_file - `ssna train --out` checkpoints as files kept for later: a round trip
 * gives back the same parameters; a file cut at any length or with any byte changed is refused
 * with an error naming the file (never loaded, never a crash); a version 1 file (no digest) still
 * loads, and its header cannot make the loader allocate more than the file holds;
 * file_write_durable leaves no temporary file behind, and when a write fails (a full disk,
 * simulated with RLIMIT_FSIZE) the old file stays whole and the error names the path. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "check.h"
#include "model/fileio.h"
#include "model/ssna.h"
#include "model/ssna_train.h"

static char dir[64];

static int load(const char *path, SsnaModel *m, char *err, size_t errlen) {
    SsnaTrainState st;
    err[0] = 0;
    return ssna_checkpoint_load(path, 0, m, &st, NULL, NULL, err, errlen);
}

static void write_bytes(const char *path, const char *buf, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(buf, 1, n, f) == n);
    if (f) fclose(f);
}

int main(void) {
    check_temp_dir(dir, sizeof dir, "ckpt");
    char path[256], cut[256], err[512];
    snprintf(path, sizeof path, "%s/model.ckpt", dir);
    snprintf(cut, sizeof cut, "%s/cut.ckpt", dir);
    SsnaConfig cfg = ssna_config_default(SSNA_VARIANT_GRU, 20, 16, 2);
    cfg.d = 8, cfg.inner = 8, cfg.n_experts = 2;
    SsnaModel m, back;
    CHECK(ssna_create(&m, &cfg, 5, err, sizeof err) == 0);
    SsnaTrainState st = {.epoch = 3, .best_epoch = 2};
    snprintf(st.meta, sizeof st.meta, "test");
    CHECK_MSG(ssna_checkpoint_save(path, &m, &st, NULL, 0, err, sizeof err) == 0, "%s", err);
    CHECK_MSG(load(path, &back, err, sizeof err) == 0, "%s", err);
    CHECK(back.ps.total == m.ps.total &&
          !memcmp(back.ps.params, m.ps.params, m.ps.total * sizeof(float)));
    ssna_free(&back);
    char *buf;
    size_t n;
    CHECK(file_read_all(path, &buf, &n, err, sizeof err) == 0);
    CHECK_MSG(n > 1000, "checkpoint of %zu bytes", n);

    // every cut: refused, naming the file
    int loaded = 0, unnamed = 0, tries = 0;
    for (size_t len = 0; len < n; len += len < 600 || len + 80 > n ? 1 : 97, tries++) {
        write_bytes(cut, buf, len);
        if (load(cut, &back, err, sizeof err) == 0)
            loaded++, ssna_free(&back);
        else if (!strstr(err, cut))
            unnamed++;
    }
    CHECK_MSG(loaded == 0, "%d of %d cut files loaded", loaded, tries);
    CHECK_MSG(unnamed == 0, "%d errors do not name the file", unnamed);
    // every changed byte (one in 37, and all of the header and the digest line)
    loaded = unnamed = tries = 0;
    for (size_t at = 0; at < n; at += at < 400 || at + 80 > n ? 1 : 37, tries++) {
        buf[at] ^= 0x20;
        write_bytes(cut, buf, n);
        buf[at] ^= 0x20;
        if (load(cut, &back, err, sizeof err) == 0)
            loaded++, ssna_free(&back);
        else if (!strstr(err, cut))
            unnamed++;
    }
    CHECK_MSG(loaded == 0, "%d of %d damaged files loaded", loaded, tries);
    CHECK_MSG(unnamed == 0, "%d errors do not name the file", unnamed);

    // version 1: the same contents without the digest line, still loads
    size_t body = n - (strlen("sha256 ") + 65);
    buf[strlen("SSNACKPT ")] = '1';
    write_bytes(cut, buf, body);
    CHECK_MSG(load(cut, &back, err, sizeof err) == 0, "version 1: %s", err);
    if (!err[0]) ssna_free(&back);
    // (fuzz_checkpoint) a version 1 file, so no digest stops it: a header asking for feed-forward
    // layers 60,000 wide is refused before anything of that size is allocated; a blob length past
    // the end of the file is a truncated file, not a 46 GB allocation
    char *big = malloc(body + 32), *at = memmem(buf, body, "inner 8\n", 8);
    CHECK(big && at);
    if (big && at) {
        size_t head = (size_t)(at - buf);
        memcpy(big, buf, head);
        size_t k = head + (size_t)sprintf(big + head, "inner 60000\n");
        memcpy(big + k, at + 8, body - head - 8);
        write_bytes(cut, big, k + body - head - 8);
        CHECK(load(cut, &back, err, sizeof err) == -1);
        CHECK_MSG(strstr(err, cut) && strstr(err, "parameters, its blob holds"), "%s", err);
        char *blob = memmem(buf, body, "\nend\n", 5);
        CHECK(blob != NULL);
        if (blob) {
            memcpy(big, buf, body);
            memset(big + (blob - buf) + 5 + 4, 0x7f, 3); // the u64 length's high bytes
            write_bytes(cut, big, body);
            CHECK(load(cut, &back, err, sizeof err) == -1);
            CHECK_MSG(strstr(err, cut) && strstr(err, "truncated parameter blobs"), "%s", err);
        }
        // header numbers are checked, not read with atoi ("inner x" was 0, "8x" was 8)
        const char *bad[] = {"inner x\n", "inner 8x\n", "inner 99999999999\n", "inner \n"};
        for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
            memcpy(big, buf, head);
            size_t kb = head + (size_t)sprintf(big + head, "%s", bad[b]);
            memcpy(big + kb, at + 8, body - head - 8);
            write_bytes(cut, big, kb + body - head - 8);
            CHECK(load(cut, &back, err, sizeof err) == -1);
            CHECK_MSG(strstr(err, cut) && strstr(err, "bad header field 'inner'"), "%s: %s", bad[b],
                      err);
        }
    }
    free(big);
    free(buf);

    // no temporary file left beside the target
    char cmd[512];
    snprintf(cmd, sizeof cmd, "ls %s | grep -c tmp >/dev/null", dir);
    CHECK(system(cmd) != 0);
    // a missing directory names the path
    char nodir[300];
    snprintf(nodir, sizeof nodir, "%s/no/such/dir.ckpt", dir);
    CHECK(ssna_checkpoint_save(nodir, &m, &st, NULL, 0, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "no/such/dir.ckpt") != NULL, "%s", err);
    // a write that fails half way (the file-size limit stands in for a full disk): the old file
    // is untouched, the temporary one removed
    char *before;
    size_t before_n;
    CHECK(file_read_all(path, &before, &before_n, err, sizeof err) == 0);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit old, lim = {4096, 4096};
    getrlimit(RLIMIT_FSIZE, &old);
    lim.rlim_max = old.rlim_max;
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    int rc = ssna_checkpoint_save(path, &m, &st, NULL, 0, err, sizeof err);
    setrlimit(RLIMIT_FSIZE, &old);
    CHECK(rc == -1);
    CHECK_MSG(strstr(err, path) && strstr(err, "write failed"), "%s", err);
    char *after;
    size_t after_n;
    CHECK(file_read_all(path, &after, &after_n, err, sizeof err) == 0);
    CHECK(after_n == before_n && !memcmp(after, before, before_n));
    CHECK(system(cmd) != 0);
    free(before), free(after);
    CHECK(file_read_all(nodir, &before, &before_n, err, sizeof err) == -1 && strstr(err, nodir));

    ssna_free(&m);
    check_remove_tree(dir);
    return check_done();
}
