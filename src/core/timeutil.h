/* SPDX-License-Identifier: MIT */
/*
 * UTC time stamps in the ISO 8601 shape Azure uses on the wire:
 * "2022-08-31T22:02:50.5163352Z" (seven fractional digits) for records and
 * errors, "2017-11-14T12:34:18Z" (whole seconds) for certificate dates.
 * Pure functions; no locale, no time zone database.
 */
#ifndef DPS_CORE_TIMEUTIL_H
#define DPS_CORE_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Buffer size for timeutil_format(): "YYYY-MM-DDTHH:MM:SS.fffffffZ" and its NUL. */
#define TIMEUTIL_ISO_SIZE 29
/* Buffer size for timeutil_format_seconds(): "YYYY-MM-DDTHH:MM:SSZ" and its NUL. */
#define TIMEUTIL_ISO_SECONDS_SIZE 21

/* The current wall-clock time (CLOCK_REALTIME). */
void timeutil_now(struct timespec *ts);

/*
 * Formats ts as "YYYY-MM-DDTHH:MM:SS.fffffffZ" (100 ns resolution, Azure's
 * seven digits) into out, which holds TIMEUTIL_ISO_SIZE bytes.
 *
 * Returns: 0, or -1 when the year is outside 0000..9999 (out is then "").
 */
int timeutil_format(const struct timespec *ts, char out[TIMEUTIL_ISO_SIZE]);

/*
 * Formats t as "YYYY-MM-DDTHH:MM:SSZ" into out (TIMEUTIL_ISO_SECONDS_SIZE bytes).
 *
 * Returns: 0, or -1 when the year is outside 0000..9999 (out is then "").
 */
int timeutil_format_seconds(int64_t t, char out[TIMEUTIL_ISO_SECONDS_SIZE]);

/*
 * Parses an ISO 8601 date-time: "YYYY-MM-DDTHH:MM:SS", an optional fraction
 * of 1 to 9 digits (more are accepted and truncated to nanoseconds), then
 * "Z" or a "+HH:MM" / "-HH:MM" offset. 't' and 'z' are accepted in lower
 * case. The whole of s[0..len) must be consumed.
 *
 * out: on success, the instant in UTC.
 *
 * Returns: 0, or -1 when the text is not such a date (out untouched).
 */
int timeutil_parse(const char *s, size_t len, struct timespec *out);

#endif
