/* test_ssna_interactions.c - dataset readers against the statistics in each SOURCE.md (computed
 * there independently with python), and their error messages on broken input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "ingest/interactions.h"

static int max_len_of(const Interactions *d) {
    int mx = 0;
    for (int u = 0; u < d->n_users; u++)
        if (d->offsets[u + 1] - d->offsets[u] > mx) mx = d->offsets[u + 1] - d->offsets[u];
    return mx;
}

static void test_scientific(const char *data) {
    char dir[1024], err[512];
    snprintf(dir, sizeof dir, "%s/amazon-scientific", data);
    Interactions d;
    int rc = interactions_load_unisrec(&d, dir, "Scientific", 50, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    if (rc) return;
    /* SOURCE.md: rebuilt full sequences 59,427; + last 50 per user: 59,381 */
    CHECK(d.n_users == 8442);
    CHECK(d.n_items == 4385);
    CHECK(d.raw_interactions == 59427);
    CHECK(interactions_count(&d) == 59381);
    CHECK(max_len_of(&d) == 50);
    /* user 0: test.inter history 0..12, target 13, and train rows give the same prefix */
    int ok = d.offsets[1] == 14;
    for (int i = 0; ok && i < 14; i++) ok = d.items[i] == i;
    CHECK_MSG(ok, "user 0 should be items 0..13");
    CHECK(!strcmp(d.item_ids[0], "B00TNNWMXI")); /* Scientific.item2index line 1 */
    CHECK(!strcmp(d.user_ids[0], "ABW8NXS7SV55K"));
    long train = 0;
    for (int u = 0; u < d.n_users; u++) train += d.offsets[u + 1] - d.offsets[u] - 2;
    CHECK(train == 42497); /* SOURCE.md: training interactions after leave-one-out */
    interactions_free(&d);
}

static void test_games(const char *data) {
    char dir[1024], err[512];
    snprintf(dir, sizeof dir, "%s/amazon-games", data);
    Interactions d;
    int rc = interactions_load_unisrec(&d, dir, "Games", 50, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    if (rc) return;
    CHECK(d.n_users == 50546);
    CHECK(d.n_items == 16859);
    CHECK(interactions_count(&d) == 440264); /* SOURCE.md: as shipped */
    CHECK(max_len_of(&d) == 50);
    interactions_free(&d);
}

static void test_movielens(const char *data) {
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/movielens-latest-small/ratings.csv", data);
    Interactions d;
    InteractionOptions o = interactions_default_options();
    int rc = interactions_load_csv(&d, path, &o, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    if (rc) return;
    /* SOURCE.md: raw 100,836; 5-core + last 50: 610 users, 3,351 items, 25,973 interactions */
    CHECK(d.raw_interactions == 100836);
    CHECK(d.n_users == 610);
    CHECK(d.n_items == 3351);
    CHECK(interactions_count(&d) == 25973);
    CHECK(!strcmp(d.user_ids[0], "1"));
    interactions_free(&d);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void test_small_and_errors(void) {
    char dir[64], path[256], err[512];
    check_temp_dir(dir, sizeof dir, "inter");
    Interactions d;
    /* TSV, no header, ties in time keep file order, 2-core drops user c and item z */
    snprintf(path, sizeof path, "%s/log.tsv", dir);
    write_file(path, "a\tx\t3\na\ty\t1\nb\tx\t5\nb\ty\t5\nc\tz\t1\na\tx\t9\n");
    InteractionOptions o = interactions_default_options();
    o.k_core = 2;
    o.max_len = 2;
    int rc = interactions_load_csv(&d, path, &o, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    if (!rc) {
        CHECK(d.n_users == 2 && d.n_items == 2);
        /* a: y(1) x(3) x(9) -> last 2: x x; b: x(5) y(5) in file order */
        CHECK(d.offsets[1] == 2 && d.offsets[2] == 4);
        CHECK(!strcmp(d.item_ids[d.items[0]], "x") && !strcmp(d.item_ids[d.items[1]], "x"));
        CHECK(!strcmp(d.item_ids[d.items[2]], "x") && !strcmp(d.item_ids[d.items[3]], "y"));
        interactions_free(&d);
    }
    /* CSV with a header, quotes and CRLF; a bad time on line 3 is reported as file:3 */
    snprintf(path, sizeof path, "%s/bad.csv", dir);
    write_file(path, "user,item,timestamp\r\n\"u,1\",i1,1\r\nu2,i2,soon\r\n");
    rc = interactions_load_csv(&d, path, &o, err, sizeof err);
    char want[300];
    snprintf(want, sizeof want, "%s:3:", path);
    CHECK_MSG(rc != 0 && strstr(err, want), "got '%s'", err);
    /* a NUL byte is an error naming file:line, not a silent end of file (fuzz_readers) */
    snprintf(path, sizeof path, "%s/nul.csv", dir);
    {
        FILE *f = fopen(path, "wb");
        CHECK(f != NULL);
        if (f) fwrite("a,x,1\nb,y,2\nc,\0z,3\nd,w,4\n", 1, 24, f), fclose(f);
    }
    rc = interactions_load_csv(&d, path, &o, err, sizeof err);
    snprintf(want, sizeof want, "%s:3: a NUL byte (file offset 14)", path);
    CHECK_MSG(rc != 0 && strstr(err, want), "got '%s'", err);
    /* a broken .inter line names file:line */
    snprintf(path, sizeof path, "%s/X.valid.inter", dir);
    write_file(path, "user_id:token\titem_id_list:token_seq\titem_id:token\n0\t1 2\t3\n");
    snprintf(path, sizeof path, "%s/X.test.inter", dir);
    write_file(path,
               "user_id:token\titem_id_list:token_seq\titem_id:token\n0\t1 2 3\t4\n1\t5 x\t6\n");
    rc = interactions_load_unisrec(&d, dir, "X", 50, err, sizeof err);
    snprintf(want, sizeof want, "%s/X.test.inter:3:", dir);
    CHECK_MSG(rc != 0 && strstr(err, want), "got '%s'", err);
    check_remove_tree(dir);
}

int main(void) {
    const char *data = getenv("SSNA_DATA_DIR");
    CHECK_MSG(data != NULL, "SSNA_DATA_DIR is not set (run through ctest)");
    if (data) {
        test_scientific(data);
        test_games(data);
        test_movielens(data);
    }
    test_small_and_errors();
    return check_done();
}
