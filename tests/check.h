/* check.h - the few assertions ssna's C tests need.
 *
 * A failed CHECK prints file:line and the expression, counts the failure, and the test goes on so
 * one run reports every broken case; check_done() prints the summary and gives main's exit code.
 */
#ifndef SSNA_TESTS_CHECK_H
#define SSNA_TESTS_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

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

#endif
