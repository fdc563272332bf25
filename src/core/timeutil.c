/* SPDX-License-Identifier: MIT */
/*
 * ISO 8601 UTC formatting by integer calendar arithmetic (no gmtime_r, no
 * printf), and parsing on timegm.
 */
#include "core/common.h"
#include "core/timeutil.h"

void timeutil_now(struct timespec *ts)
{
    clock_gettime(CLOCK_REALTIME, ts);
}

/* The first and last seconds the four-digit year of the formats can show. */
#define YEAR_0_START (-62167219200LL) /* 0000-01-01T00:00:00Z */
#define YEAR_9999_END 253402300799LL  /* 9999-12-31T23:59:59Z */

/* A broken-down UTC time; the fields as printed (month and day from 1). */
struct civil {
    int year, month, day, hour, min, sec;
};

/*
 * Splits t into the proleptic Gregorian calendar, as gmtime_r does, with
 * integer arithmetic only: records are stamped several times per
 * registration. Days are counted in 400-year eras of 146097 days that
 * start on 1 March, so that the leap day is the last day of a year.
 *
 * Returns: 0, or -1 when the year is outside 0000..9999.
 */
static int to_civil(int64_t t, struct civil *c)
{
    int64_t days, secs, era, doe, yoe, doy, mp;

    if (t < YEAR_0_START || t > YEAR_9999_END)
        return -1;
    days = t / 86400;
    secs = t % 86400;
    if (secs < 0) {
        secs += 86400;
        days--;
    }
    days += 719468; /* from 1970-01-01 to 0000-03-01 */
    era = (days >= 0 ? days : days - 146096) / 146097;
    doe = days - era * 146097;                                   /* 0..146096 */
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* 0..399 */
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* 0..365 */
    mp = (5 * doy + 2) / 153;                                    /* 0 = March */
    c->day = (int)(doy - (153 * mp + 2) / 5 + 1);
    c->month = (int)(mp < 10 ? mp + 3 : mp - 9);
    c->year = (int)(yoe + era * 400 + (c->month <= 2));
    c->hour = (int)(secs / 3600);
    c->min = (int)(secs / 60 % 60);
    c->sec = (int)(secs % 60);
    return 0;
}

/* Writes v (0 <= v < 10^n) as exactly n decimal digits; returns where the next character goes. */
static char *put_digits(char *p, long v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + n;
}

/* Writes "YYYY-MM-DDTHH:MM:SS"; returns where the next character goes. */
static char *put_date_time(char *p, const struct civil *c)
{
    p = put_digits(p, c->year, 4);
    *p++ = '-';
    p = put_digits(p, c->month, 2);
    *p++ = '-';
    p = put_digits(p, c->day, 2);
    *p++ = 'T';
    p = put_digits(p, c->hour, 2);
    *p++ = ':';
    p = put_digits(p, c->min, 2);
    *p++ = ':';
    return put_digits(p, c->sec, 2);
}

int timeutil_format(const struct timespec *ts, char out[TIMEUTIL_ISO_SIZE])
{
    struct civil c;
    char *p;

    out[0] = '\0';
    if (ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000L || to_civil(ts->tv_sec, &c) != 0)
        return -1;
    p = put_date_time(out, &c);
    *p++ = '.';
    p = put_digits(p, ts->tv_nsec / 100, 7);
    *p++ = 'Z';
    *p = '\0';
    return 0;
}

int timeutil_format_seconds(int64_t t, char out[TIMEUTIL_ISO_SECONDS_SIZE])
{
    struct civil c;
    char *p;

    out[0] = '\0';
    if (to_civil(t, &c) != 0)
        return -1;
    p = put_date_time(out, &c);
    *p++ = 'Z';
    *p = '\0';
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
    int year = 0, mon = 0, day = 0, hour = 0, min = 0, sec = 0, oh = 0, om = 0;
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
