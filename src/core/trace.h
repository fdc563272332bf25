/* SPDX-License-Identifier: MIT */
/*
 * The decision trace of one registration attempt: an ordered list of lines in
 * operator words (which enrollments were considered, why each was passed
 * over, which link of a certificate chain failed and what to fix), plus the
 * conclusion: an Azure error code, a one-line operator summary and the short
 * message a device may see. It is built by attestation and allocation and
 * stored with the attempt; it does no I/O and holds no secrets.
 *
 * Recording never fails from the caller's point of view: lines beyond
 * TRACE_LINES_MAX are counted and dropped, lines longer than TRACE_LINE_MAX
 * are cut, and an allocation failure marks the trace truncated. A trace is
 * diagnostics, so it must never be the reason a registration fails.
 */
#ifndef DPS_CORE_TRACE_H
#define DPS_CORE_TRACE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "dps/error.h"

/* Lines kept at most; later ones are counted in trace_omitted(). */
#define TRACE_LINES_MAX 200
/* Longest line, summary or device message kept, in bytes (longer ones are cut). */
#define TRACE_LINE_MAX 512

struct trace;

/*
 * Creates an empty trace: no lines, error code 0, no summary, no device message.
 *
 * Returns: the trace, which the caller frees with trace_free(), or NULL when
 * out of memory.
 */
struct trace *trace_new(void);

/* Frees t and every string it holds; trace_free(NULL) is a no-op. */
void trace_free(struct trace *t);

/*
 * Appends one operator line built from a printf-style format. A NULL t is
 * accepted and ignored, so tracing can be optional for a caller.
 */
void trace_add(struct trace *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Sets the conclusion of the attempt, replacing an earlier one.
 *
 * error_code: the Azure extended error code (e.g. 401002), or 0 on success.
 * device_message: the short message for the device (borrowed, copied); it must
 *   name no enrollment, group or CA. NULL clears it.
 * fmt: the one-line operator summary (what went wrong and what to fix, or
 *   what was decided). A NULL t is ignored.
 */
void trace_conclude(struct trace *t, int error_code, const char *device_message, const char *fmt,
                    ...) __attribute__((format(printf, 4, 5)));

/* Number of lines kept (at most TRACE_LINES_MAX). */
size_t trace_line_count(const struct trace *t);

/* Line i (0-based, in the order added); borrowed, valid until t changes or is freed. NULL if i is
 * out of range. */
const char *trace_line(const struct trace *t, size_t i);

/* Lines dropped because TRACE_LINES_MAX was reached. */
size_t trace_omitted(const struct trace *t);

/* True when an allocation failure lost part of the trace. */
bool trace_truncated(const struct trace *t);

/* The Azure error code of the conclusion; 0 when none or success. */
int trace_error_code(const struct trace *t);

/* The operator summary; borrowed; "" when none was set. */
const char *trace_summary(const struct trace *t);

/* The device message; borrowed; "" when none was set. */
const char *trace_device_message(const struct trace *t);

/*
 * True when needle occurs in a line or in the summary (case-sensitive).
 * Used by tests and by tools that look for one reason in a stored trace.
 */
bool trace_contains(const struct trace *t, const char *needle);

/*
 * The trace as a JSON object for storage:
 *   {"errorCode": 401002, "summary": "...", "deviceMessage": "...",
 *    "steps": ["...", ...], "omitted": 0, "truncated": false}
 *
 * Returns: a new reference the caller releases with json_decref(), or NULL
 * when out of memory.
 */
json_t *trace_to_json(const struct trace *t);

/*
 * Rebuilds a trace from the object trace_to_json() made. Unknown members are
 * ignored; steps beyond TRACE_LINES_MAX count as omitted.
 *
 * out: set on success to a new trace the caller frees with trace_free().
 *
 * Returns: DPS_OK, DPS_ERR_INVAL (not an object, or a member of the wrong
 * type: the message names it), DPS_ERR_NOMEM.
 */
int trace_from_json(const json_t *j, struct trace **out, struct dps_error *err);

#endif
