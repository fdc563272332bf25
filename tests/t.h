/* SPDX-License-Identifier: MIT */
/*
 * The unit-test harness: ok(cond) records a check, a failing check jumps to
 * the enclosing function's `end:` label so cleanup still runs, subtest()
 * runs one named case, and t_done() prints the closing line
 * `N passed, N failed` and returns the exit status.
 *
 *     static void test_parse(void)
 *     {
 *         char *s = strdup("x");
 *         ok(s != NULL);
 *         ok(strcmp(s, "x") == 0);
 *     end:
 *         free(s);
 *     }
 *     int main(void) { subtest("parse", test_parse); return t_done(); }
 */
#ifndef DPS_T_H
#define DPS_T_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_passed, t_failed, t_checks_failed;
static const char *t_current = "";

#define ok(cond)                                                                                   \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "  not ok: %s: %s:%d: %s\n", t_current, __FILE__, __LINE__, #cond);    \
            t_checks_failed++;                                                                     \
            goto end;                                                                              \
        }                                                                                          \
    } while (0)

/* ok() for two strings, printing both when they differ. */
#define ok_str(a, b)                                                                               \
    do {                                                                                           \
        const char *t_a_ = (a), *t_b_ = (b);                                                       \
        if (!t_a_ || !t_b_ || strcmp(t_a_, t_b_) != 0) {                                           \
            fprintf(stderr,                                                                        \
                    "  not ok: %s: %s:%d: %s == %s\n    got      '%s'\n    expected '%s'\n",       \
                    t_current, __FILE__, __LINE__, #a, #b, t_a_ ? t_a_ : "(null)",                 \
                    t_b_ ? t_b_ : "(null)");                                                       \
            t_checks_failed++;                                                                     \
            goto end;                                                                              \
        }                                                                                          \
    } while (0)

/* ok() for two integers, printing both when they differ. */
#define ok_int(a, b)                                                                               \
    do {                                                                                           \
        long long t_a_ = (long long)(a), t_b_ = (long long)(b);                                    \
        if (t_a_ != t_b_) {                                                                        \
            fprintf(stderr, "  not ok: %s: %s:%d: %s == %s (%lld != %lld)\n", t_current, __FILE__, \
                    __LINE__, #a, #b, t_a_, t_b_);                                                 \
            t_checks_failed++;                                                                     \
            goto end;                                                                              \
        }                                                                                          \
    } while (0)

static inline void subtest(const char *name, void (*fn)(void))
{
    int before = t_checks_failed;

    t_current = name;
    fn();
    if (t_checks_failed == before) {
        t_passed++;
        printf("ok %s\n", name);
    } else {
        t_failed++;
        printf("FAILED %s\n", name);
    }
    fflush(stdout);
}

static inline int t_done(void)
{
    printf("%d passed, %d failed\n", t_passed, t_failed);
    return t_failed == 0 && t_passed > 0 ? 0 : 1;
}

#endif
