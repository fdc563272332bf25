/* SPDX-License-Identifier: MIT */
/*
 * dpsd's log: one line per event on standard error, as text or JSON, written
 * with a single write() so lines from several threads never interleave. The
 * access log (one line per HTTP request) goes through the same writer with
 * its own kind. Never pass secrets here: no Authorization headers, no query
 * strings, no keys, no request bodies.
 */
#ifndef DPS_SERVER_LOG_H
#define DPS_SERVER_LOG_H

/* Do not include <syslog.h> beside this header: it defines the same names. */
enum log_level { LOG_ERROR = 0, LOG_WARNING, LOG_INFO, LOG_DEBUG };

/* The least severe level written; set by log_init() before threads start. */
extern int log_threshold;

/*
 * Sets the format (false: text, true: JSON lines) and the threshold. Call
 * once, before any worker thread starts.
 */
void log_init(bool json, enum log_level threshold);

/* Formats and writes one line at level; use log_msg(), which skips the formatting when filtered. */
void log_write(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_msg(level, ...)                                                                        \
    do {                                                                                           \
        if ((int)(level) <= log_threshold)                                                         \
            log_write((level), __VA_ARGS__);                                                       \
    } while (0)

/*
 * Writes one access-log line at LOG_INFO.
 *
 * method, path: the request line's method and path; the caller must strip
 *               the query string (it may carry a SAS signature).
 * status:       the HTTP status sent.
 * ms:           time from the complete request to the reply, in milliseconds.
 * peer:         "ADDR:PORT" of the client.
 * tracking_id:  the request's tracking id (also in error bodies), or NULL.
 */
void log_access(const char *method, const char *path, int status, double ms, const char *peer,
                const char *tracking_id);

#endif
