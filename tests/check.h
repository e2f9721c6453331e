/* check.h - the few assertions ssna's C tests need.
 *
 * A failed CHECK prints file:line and the expression, counts the failure, and the test goes on so
 * one run reports every broken case; check_done() prints the summary and gives main's exit code.
 */
#ifndef SSNA_TESTS_CHECK_H
#define SSNA_TESTS_CHECK_H

#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failed_count;
static int check_passed_count;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (cond) {                                                                                \
            check_passed_count++;                                                                  \
        } else {                                                                                   \
            check_failed_count++;                                                                  \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                       \
    do {                                                                                           \
        if (cond) {                                                                                \
            check_passed_count++;                                                                  \
        } else {                                                                                   \
            check_failed_count++;                                                                  \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

/* |a - b| <= atol + rtol * |b| */
#define CHECK_CLOSE(a, b, atol, rtol)                                                              \
    do {                                                                                           \
        double check_a_ = (a), check_b_ = (b);                                                     \
        CHECK_MSG(fabs(check_a_ - check_b_) <= (atol) + (rtol)*fabs(check_b_), "%.9g vs %.9g",     \
                  check_a_, check_b_);                                                             \
    } while (0)

/* Prints "N passed, N failed" and returns the process exit code. */
static inline int check_done(void) {
    printf("%d passed, %d failed\n", check_passed_count, check_failed_count);
    return check_failed_count ? 1 : 0;
}

/* A fresh directory /tmp/ssna-TAG-XXXXXX (cap >= 64 bytes), or exit 1 saying why: a test without
 * its scratch space cannot run. Remove it with check_remove_tree. */
static inline void check_temp_dir(char *buf, size_t cap, const char *tag) {
    snprintf(buf, cap, "/tmp/ssna-%s-XXXXXX", tag);
    if (!mkdtemp(buf)) {
        fprintf(stderr, "mkdtemp %s: %s\n", buf, strerror(errno));
        exit(1);
    }
}

static inline int check_remove_entry(const char *path, const struct stat *st, int flag,
                                     struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0; // go on: remove what can be removed
}

/* Remove dir and everything below it, depth first, links not followed. */
static inline void check_remove_tree(const char *dir) {
    nftw(dir, check_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
