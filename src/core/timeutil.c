/* SPDX-License-Identifier: MIT */
/* ISO 8601 UTC formatting and parsing on gmtime_r/timegm. */
#include "core/common.h"
#include "core/timeutil.h"

void timeutil_now(struct timespec *ts)
{
    clock_gettime(CLOCK_REALTIME, ts);
}

static int to_tm(int64_t t, struct tm *tm)
{
    time_t tt = (time_t)t;

    if ((int64_t)tt != t || !gmtime_r(&tt, tm))
        return -1;
    if (tm->tm_year + 1900 < 0 || tm->tm_year + 1900 > 9999)
        return -1;
    return 0;
}

int timeutil_format(const struct timespec *ts, char out[TIMEUTIL_ISO_SIZE])
{
    char tmp[96];
    struct tm tm;
    long frac = ts->tv_nsec / 100;

    out[0] = '\0';
    if (ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000L || to_tm(ts->tv_sec, &tm) != 0)
        return -1;
    /* A roomy buffer keeps the compiler's truncation analysis quiet; the range is checked above. */
    snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02d.%07ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
    memcpy(out, tmp, TIMEUTIL_ISO_SIZE);
    out[TIMEUTIL_ISO_SIZE - 1] = '\0';
    return 0;
}

int timeutil_format_seconds(int64_t t, char out[TIMEUTIL_ISO_SECONDS_SIZE])
{
    char tmp[96];
    struct tm tm;

    out[0] = '\0';
    if (to_tm(t, &tm) != 0)
        return -1;
    snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    memcpy(out, tmp, TIMEUTIL_ISO_SECONDS_SIZE);
    out[TIMEUTIL_ISO_SECONDS_SIZE - 1] = '\0';
    return 0;
}

/* Reads exactly n decimal digits at s[*pos]. */
static int digits(const char *s, size_t len, size_t *pos, int n, int *value)
{
    int v = 0;

    if (*pos + (size_t)n > len)
        return -1;
    for (int i = 0; i < n; i++) {
        char c = s[*pos + (size_t)i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *pos += (size_t)n;
    *value = v;
    return 0;
}

static int expect(const char *s, size_t len, size_t *pos, char c)
{
    if (*pos >= len || s[*pos] != c)
        return -1;
    (*pos)++;
    return 0;
}

static int days_in_month(int year, int month)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

    return month == 2 && leap ? 29 : days[month - 1];
}

int timeutil_parse(const char *s, size_t len, struct timespec *out)
{
    struct tm tm;
    size_t pos = 0;
    int year, mon, day, hour, min, sec, oh = 0, om = 0;
    long nsec = 0;
    int64_t offset = 0;
    time_t t;

    if (digits(s, len, &pos, 4, &year) || expect(s, len, &pos, '-') ||
        digits(s, len, &pos, 2, &mon) || expect(s, len, &pos, '-') || digits(s, len, &pos, 2, &day))
        return -1;
    if (pos >= len || (s[pos] != 'T' && s[pos] != 't'))
        return -1;
    pos++;
    if (digits(s, len, &pos, 2, &hour) || expect(s, len, &pos, ':') ||
        digits(s, len, &pos, 2, &min) || expect(s, len, &pos, ':') || digits(s, len, &pos, 2, &sec))
        return -1;
    if (mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon) || hour > 23 || min > 59 ||
        sec > 60)
        return -1;
    if (pos < len && s[pos] == '.') {
        long scale = 100000000L;
        size_t start = ++pos;

        while (pos < len && s[pos] >= '0' && s[pos] <= '9') {
            nsec += (s[pos] - '0') * scale;
            scale /= 10;
            pos++;
        }
        if (pos == start)
            return -1;
    }
    if (pos < len && (s[pos] == 'Z' || s[pos] == 'z')) {
        pos++;
    } else if (pos < len && (s[pos] == '+' || s[pos] == '-')) {
        int sign = s[pos] == '-' ? -1 : 1;

        pos++;
        if (digits(s, len, &pos, 2, &oh) || expect(s, len, &pos, ':') ||
            digits(s, len, &pos, 2, &om) || oh > 23 || om > 59)
            return -1;
        offset = sign * ((int64_t)oh * 3600 + om * 60);
    } else {
        return -1;
    }
    if (pos != len)
        return -1;

    memset(&tm, 0, sizeof(tm));
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = min;
    tm.tm_sec = sec;
    t = timegm(&tm);
    out->tv_sec = t - offset;
    out->tv_nsec = nsec;
    return 0;
}
