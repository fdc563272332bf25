/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of core/timeutil formatting: fixed cases at the edges of
 * years, days and fractions, and a comparison with gmtime_r + snprintf
 * (what the functions were written as before) across the whole range.
 */
#include "core/common.h"
#include "core/timeutil.h"

#include "../t.h"

/* The reference: gmtime_r and snprintf. Returns 0, or -1 outside years 0000..9999. */
static int reference(int64_t sec, long nsec, bool fraction, char *out, size_t size)
{
    time_t t = (time_t)sec;
    struct tm tm;

    if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999)
        return -1;
    if (fraction)
        snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%07ldZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, nsec / 100);
    else
        snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return 0;
}

static const char *fmt(int64_t sec, long nsec, char out[TIMEUTIL_ISO_SIZE])
{
    struct timespec ts = {.tv_sec = (time_t)sec, .tv_nsec = nsec};

    return timeutil_format(&ts, out) == 0 ? out : "(error)";
}

static void test_fixed(void)
{
    char buf[TIMEUTIL_ISO_SIZE], sec[TIMEUTIL_ISO_SECONDS_SIZE];

    ok_str(fmt(0, 0, buf), "1970-01-01T00:00:00.0000000Z");
    ok_str(fmt(0, 999999999, buf), "1970-01-01T00:00:00.9999999Z");
    ok_str(fmt(-1, 0, buf), "1969-12-31T23:59:59.0000000Z");
    ok_str(fmt(1661983370, 516335299, buf), "2022-08-31T22:02:50.5163352Z");
    /* 100 ns resolution: 0 and 9999999 hundreds, and the 99 ns below a step dropped */
    ok_str(fmt(1661983370, 99, buf), "2022-08-31T22:02:50.0000000Z");
    ok_str(fmt(1661983370, 100, buf), "2022-08-31T22:02:50.0000001Z");
    ok_str(fmt(1661983370, 999999900, buf), "2022-08-31T22:02:50.9999999Z");
    /* year boundaries */
    ok_str(fmt(1704067199, 0, buf), "2023-12-31T23:59:59.0000000Z");
    ok_str(fmt(1704067200, 0, buf), "2024-01-01T00:00:00.0000000Z");
    ok_str(fmt(946684799, 0, buf), "1999-12-31T23:59:59.0000000Z");
    ok_str(fmt(946684800, 0, buf), "2000-01-01T00:00:00.0000000Z");
    /* leap days: every fourth year, not 1900 or 2100, but 2000 */
    ok_str(fmt(951782400, 0, buf), "2000-02-29T00:00:00.0000000Z");
    ok_str(fmt(951868800, 0, buf), "2000-03-01T00:00:00.0000000Z");
    ok_str(fmt(1709164800, 0, buf), "2024-02-29T00:00:00.0000000Z");
    ok_str(fmt(1709251199, 0, buf), "2024-02-29T23:59:59.0000000Z");
    ok_str(fmt(-2203891201, 0, buf), "1900-02-28T23:59:59.0000000Z");
    ok_str(fmt(-2203891200, 0, buf), "1900-03-01T00:00:00.0000000Z");
    ok_str(fmt(4107542399, 0, buf), "2100-02-28T23:59:59.0000000Z");
    ok_str(fmt(4107542400, 0, buf), "2100-03-01T00:00:00.0000000Z");
    ok_str(fmt(1735603200, 0, buf), "2024-12-31T00:00:00.0000000Z");
    /* the ends of the four-digit range */
    ok_str(fmt(-62167219200, 0, buf), "0000-01-01T00:00:00.0000000Z");
    ok_str(fmt(253402300799, 999999999, buf), "9999-12-31T23:59:59.9999999Z");
    ok(timeutil_format_seconds(1510662858, sec) == 0);
    ok_str(sec, "2017-11-14T12:34:18Z");
    ok(timeutil_format_seconds(-62167219200, sec) == 0);
    ok_str(sec, "0000-01-01T00:00:00Z");
    ok(timeutil_format_seconds(253402300799, sec) == 0);
    ok_str(sec, "9999-12-31T23:59:59Z");
    ok_int(strlen(sec), TIMEUTIL_ISO_SECONDS_SIZE - 1);
end:;
}

static void test_refused(void)
{
    struct timespec ts = {.tv_sec = 0, .tv_nsec = 0};
    char buf[TIMEUTIL_ISO_SIZE], sec[TIMEUTIL_ISO_SECONDS_SIZE];

    memset(buf, 'x', sizeof(buf));
    ts.tv_nsec = -1;
    ok(timeutil_format(&ts, buf) == -1);
    ok_str(buf, "");
    ts.tv_nsec = 1000000000L;
    ok(timeutil_format(&ts, buf) == -1);
    ts.tv_nsec = 0;
    ts.tv_sec = (time_t)(-62167219200LL - 1);
    ok(timeutil_format(&ts, buf) == -1);
    ts.tv_sec = (time_t)253402300800LL;
    ok(timeutil_format(&ts, buf) == -1);
    ok_str(buf, "");
    memset(sec, 'x', sizeof(sec));
    ok(timeutil_format_seconds(253402300800LL, sec) == -1);
    ok_str(sec, "");
    ok(timeutil_format_seconds(-62167219201LL, sec) == -1);
    ok(timeutil_format_seconds(INT64_MAX, sec) == -1);
    ok(timeutil_format_seconds(INT64_MIN, sec) == -1);
end:;
}

/* Every day of the range once (at a varying time of day), and random instants. */
static void test_matches_reference(void)
{
    char got[TIMEUTIL_ISO_SIZE], want[96], got_sec[TIMEUTIL_ISO_SECONDS_SIZE];
    struct timespec ts;
    uint64_t x = 88172645463325252ULL;

    for (int64_t day = -719528; day <= 2932896; day++) {
        int64_t t = day * 86400 + (day * 7919 % 86400 + 86400) % 86400;

        ok(reference(t, 0, false, want, sizeof(want)) == 0);
        ok(timeutil_format_seconds(t, got_sec) == 0);
        ok_str(got_sec, want);
    }
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        ts.tv_sec = (time_t)(-62167219200LL - 86400 + (int64_t)(x % 315569606400ULL));
        ts.tv_nsec = (long)(x % 1000000000ULL);
        if (reference(ts.tv_sec, ts.tv_nsec, true, want, sizeof(want)) != 0) {
            ok(timeutil_format(&ts, got) == -1);
            continue;
        }
        ok(timeutil_format(&ts, got) == 0);
        ok_str(got, want);
    }
end:;
}

int main(void)
{
    subtest("fixed instants", test_fixed);
    subtest("out of range refused", test_refused);
    subtest("same text as gmtime_r and snprintf", test_matches_reference);
    return t_done();
}
