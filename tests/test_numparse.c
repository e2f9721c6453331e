/* test_numparse.c - model/numparse: whole numbers only, in range, the two failures told apart,
 * *out untouched on failure; at the edges of long and double. */
#include <limits.h>
#include <math.h>
#include <stdio.h>

#include "check.h"
#include "model/numparse.h"

int main(void) {
    long l = 7;
    CHECK(numparse_long("42", 0, 100, &l) == 0 && l == 42);
    CHECK(numparse_long("-5", -10, 10, &l) == 0 && l == -5);
    CHECK(numparse_long(" 9", 0, 10, &l) == 0 && l == 9); /* leading space: strtol's rule */
    l = 7;
    const char *bad[] = {"", " ", "x", "12abc", "1.5", "1e3", "9 ", "0x10", "--1", "+", NULL};
    for (int i = 0; bad[i]; i++)
        CHECK_MSG(numparse_long(bad[i], LONG_MIN, LONG_MAX, &l) == NUMPARSE_SYNTAX && l == 7,
                  "'%s' taken as an integer", bad[i]);
    CHECK(numparse_long("101", 0, 100, &l) == NUMPARSE_RANGE && l == 7);
    CHECK(numparse_long("-1", 0, 100, &l) == NUMPARSE_RANGE && l == 7);
    CHECK(numparse_long("9223372036854775807", LONG_MIN, LONG_MAX, &l) == 0 && l == LONG_MAX);
    l = 7;
    CHECK(numparse_long("9223372036854775808", LONG_MIN, LONG_MAX, &l) == NUMPARSE_SYNTAX);
    CHECK(l == 7); /* past long: not a long at all */

    int i = 3;
    CHECK(numparse_int("2147483647", INT_MIN, INT_MAX, &i) == 0 && i == INT_MAX);
    CHECK(numparse_int("2147483648", INT_MIN, INT_MAX, &i) == NUMPARSE_RANGE && i == INT_MAX);
    CHECK(numparse_int("", 0, 1, &i) == NUMPARSE_SYNTAX);

    double d = 2;
    CHECK(numparse_double("1e-3", 0, 1, &d) == 0 && d == 1e-3);
    CHECK(numparse_double("0x1p-2", 0, 1, &d) == 0 && d == 0.25);
    CHECK(numparse_double("-0.5", -1, 1, &d) == 0 && d == -0.5);
    CHECK(numparse_double("1e-320", 0, 1, &d) == 0 && d > 0); /* a denormal is still a number */
    d = 2;
    const char *bad_d[] = {"", "x", "1,5", "1.5x", "inf", "-inf", "nan", "1e9999", "-1e400", NULL};
    for (int k = 0; bad_d[k]; k++)
        CHECK_MSG(numparse_double(bad_d[k], -HUGE_VAL, HUGE_VAL, &d) == NUMPARSE_SYNTAX && d == 2,
                  "'%s' taken as a number", bad_d[k]);
    CHECK(numparse_double("1.0000001", 0, 1, &d) == NUMPARSE_RANGE && d == 2);
    CHECK(numparse_double("0", 0x1p-1022, 1, &d) == NUMPARSE_RANGE); /* an open lower bound */
    return check_done();
}
