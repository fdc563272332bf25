/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of core/trace: lines are the text snprintf writes for the same
 * format (the hand-formatted conversions and the vsnprintf fallback alike),
 * cut at TRACE_LINE_MAX bytes, and the line and JSON bookkeeping.
 */
#include "core/common.h"
#include "core/trace.h"

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>

#include "../t.h"

/* What vsnprintf writes into a TRACE_LINE_MAX + 1 buffer: the text a line must equal. */
__attribute__((format(printf, 2, 3))) static void reference(char out[TRACE_LINE_MAX + 1],
                                                            const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(out, TRACE_LINE_MAX + 1, fmt, ap);
    va_end(ap);
}

/* Adds a line and checks it against the reference. */
#define same_as_snprintf(t, ...)                                                                   \
    do {                                                                                           \
        char want_[TRACE_LINE_MAX + 1];                                                            \
        trace_add(t, __VA_ARGS__);                                                                 \
        reference(want_, __VA_ARGS__);                                                             \
        ok_str(trace_line(t, trace_line_count(t) - 1), want_);                                     \
    } while (0)

static void test_conversions(void)
{
    struct trace *t = trace_new();
    size_t zero = 0, big = SIZE_MAX;

    ok(t != NULL);
    same_as_snprintf(t, "plain text, no conversion");
    same_as_snprintf(t, "%s", "");
    same_as_snprintf(t, "%s", "only a string");
    same_as_snprintf(t, "hub '%s', device '%s' (%s)", "h.example", "dev-1", "initialAssignment");
    same_as_snprintf(t, "%d %d %d %d %d", 0, 7, -7, INT_MAX, INT_MIN);
    same_as_snprintf(t, "%zu candidate hub%s: %zu", zero, "s", big);
    same_as_snprintf(t, "100%% sure, %d%%", 50);
    same_as_snprintf(t, "%s%s%d%zu", "a", "b", 1, (size_t)2);
    same_as_snprintf(t, "ends with a conversion %d", -1);
    same_as_snprintf(t, "utf-8 \xc3\xa9 kept: '%s'", "\xe2\x82\xac");
    same_as_snprintf(t, "%.3s and %s", "abcdef", "rest");
    same_as_snprintf(t, "'%.128s' '%.0s' '%.10s'", "short", "gone", "exactly10!");
    same_as_snprintf(t, "%.1000s|", "longer than the line would hold? no, just long enough");
    ok_int(trace_line_count(t), 13);
end:
    trace_free(t);
}

/* Conversions the hand formatter leaves to vsnprintf give the same text. */
static void test_fallback(void)
{
    struct trace *t = trace_new();
    const char *volatile none = NULL;
    char want[TRACE_LINE_MAX + 1];

    ok(t != NULL);
    same_as_snprintf(t, "%5d|%-4s|%x|%ld|%u", 42, "ab", 255u, -3L, 9u);
    same_as_snprintf(t, "%.3d|%.3x|%.s|%.3zu", 5, 10u, "x", (size_t)4);
    same_as_snprintf(t, "%lld %zd %c", LLONG_MIN, (ssize_t)-5, 'q');
    /* after some hand-formatted text, the whole line is formatted again */
    same_as_snprintf(t, "%s %d then %02d", "first", 1, 2);
    trace_add(t, "missing: %s", none);
    reference(want, "missing: %s", none);
    ok_str(trace_line(t, trace_line_count(t) - 1), want);
end:
    trace_free(t);
}

/* Lines are cut at TRACE_LINE_MAX bytes wherever the limit falls. */
static void test_cut(void)
{
    struct trace *t = trace_new();
    char long_s[2 * TRACE_LINE_MAX], prefix[TRACE_LINE_MAX + 8];

    ok(t != NULL);
    memset(long_s, 'x', sizeof(long_s) - 1);
    long_s[sizeof(long_s) - 1] = '\0';
    same_as_snprintf(t, "%s", long_s);
    ok_int(strlen(trace_line(t, 0)), TRACE_LINE_MAX);
    same_as_snprintf(t, "before %s after %d %zu", long_s, 12345, (size_t)678);
    for (size_t cut = TRACE_LINE_MAX - 12; cut <= TRACE_LINE_MAX + 2; cut++) {
        memset(prefix, 'p', cut);
        prefix[cut] = '\0';
        /* the limit falls inside a number, a string, a literal and "%%" */
        same_as_snprintf(t, "%s%d", prefix, -123456789);
        same_as_snprintf(t, "%s%zu", prefix, (size_t)9876543210u);
        same_as_snprintf(t, "%s%s", prefix, "tail text");
        same_as_snprintf(t, "%sliteral tail", prefix);
        same_as_snprintf(t, "%s%%%%%%", prefix);
        same_as_snprintf(t, "%s%.5s", prefix, "abcdefgh");
    }
    trace_conclude(t, 0, NULL, "%s!", long_s);
    ok_int(strlen(trace_summary(t)), TRACE_LINE_MAX);
end:
    trace_free(t);
}

static void test_lines_and_json(void)
{
    struct trace *t = trace_new(), *back = NULL;
    struct dps_error err = {0};
    json_t *j = NULL;

    ok(t != NULL);
    for (int i = 0; i < TRACE_LINES_MAX + 3; i++)
        trace_add(t, "line %d", i);
    ok_int(trace_line_count(t), TRACE_LINES_MAX);
    ok_int(trace_omitted(t), 3);
    ok_str(trace_line(t, 0), "line 0");
    ok(trace_line(t, TRACE_LINES_MAX) == NULL);
    trace_conclude(t, 401002, "not authorized", "group '%s' is disabled", "g1");
    ok_int(trace_error_code(t), 401002);
    ok_str(trace_summary(t), "group 'g1' is disabled");
    ok_str(trace_device_message(t), "not authorized");
    ok(trace_contains(t, "'g1'"));
    ok(trace_contains(t, "line 199"));
    ok(!trace_contains(t, "line 200"));
    j = trace_to_json(t);
    ok(j != NULL);
    ok_int(trace_from_json(j, &back, &err), DPS_OK);
    ok_int(trace_line_count(back), TRACE_LINES_MAX);
    ok_int(trace_omitted(back), 3);
    ok_str(trace_summary(back), "group 'g1' is disabled");
    trace_add(NULL, "ignored %d", 1);
end:
    json_decref(j);
    trace_free(back);
    trace_free(t);
}

int main(void)
{
    subtest("conversions written by hand", test_conversions);
    subtest("other conversions through vsnprintf", test_fallback);
    subtest("lines cut at the limit", test_cut);
    subtest("lines, conclusion and json", test_lines_and_json);
    return t_done();
}
