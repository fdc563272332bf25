/* SPDX-License-Identifier: MIT */
/*
 * The log writer: formats into a stack buffer and writes the line with one
 * write(2), which POSIX keeps whole for pipes up to PIPE_BUF and which Linux
 * keeps whole for files; long messages are truncated, never split.
 */
#include "core/common.h"
#include "server/log.h"

#include <stdarg.h>
#include <sys/time.h>
#include <unistd.h>

int log_threshold = LOG_INFO;
static bool log_json;

/* Longest message, cut beyond (the line adds the time and the level). */
#define MSG_MAX 2048

static const char *const level_names[] = {"error", "warning", "info", "debug"};

void log_init(bool json, enum log_level threshold)
{
    log_json = json;
    log_threshold = threshold;
}

static size_t timestamp(char *buf, size_t len)
{
    struct timeval tv;
    struct tm tm;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    return strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm) +
           (size_t)snprintf(buf + 19, len - 19, ".%03ldZ", (long)tv.tv_usec / 1000);
}

/* Appends s to buf as the inside of a JSON string; returns the new length. */
static size_t json_escape(char *buf, size_t pos, size_t cap, const char *s)
{
    for (; *s && pos + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[pos++] = '\\';
            buf[pos++] = (char)c;
        } else if (c < 0x20) {
            pos += (size_t)snprintf(buf + pos, cap - pos, "\\u%04x", c);
        } else {
            buf[pos++] = (char)c;
        }
    }
    return pos;
}

static void emit(enum log_level level, const char *msg)
{
    char line[4096], ts[40];
    size_t pos;

    timestamp(ts, sizeof(ts));
    if (log_json) {
        pos = (size_t)snprintf(line, sizeof(line), "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"",
                               ts, level_names[level]);
        pos = json_escape(line, pos, sizeof(line) - 3, msg);
        line[pos++] = '"';
        line[pos++] = '}';
    } else {
        /* Control characters from peers must not forge log lines. */
        pos = (size_t)snprintf(line, sizeof(line), "%s %s ", ts, level_names[level]);
        for (const char *s = msg; *s && pos < sizeof(line) - 1; s++)
            line[pos++] = (unsigned char)*s < 0x20 ? '?' : *s;
    }
    if (pos > sizeof(line) - 1)
        pos = sizeof(line) - 1;
    line[pos++] = '\n';
    (void)!write(STDERR_FILENO, line, pos);
}

void log_write(enum log_level level, const char *fmt, ...)
{
    char msg[MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    emit(level, msg);
}

void log_access(const char *method, const char *path, int status, double ms, const char *peer,
                const char *tracking_id)
{
    char line[3072], ts[40];
    size_t pos, end;
    int n;

    if (LOG_INFO > log_threshold)
        return;
    timestamp(ts, sizeof(ts));
    if (log_json) {
        /* Structured fields, so that log tools need not parse the message. */
        pos = (size_t)snprintf(line, sizeof(line),
                               "{\"time\":\"%s\",\"level\":\"info\",\"kind\":\"access\","
                               "\"status\":%d,\"ms\":%.3f,\"trackingId\":\"%s\",\"method\":\"",
                               ts, status, ms, tracking_id ? tracking_id : "");
        pos = json_escape(line, pos, sizeof(line) - 1200, method);
        pos += (size_t)snprintf(line + pos, sizeof(line) - pos, "\",\"peer\":\"");
        pos = json_escape(line, pos, sizeof(line) - 1100, peer);
        pos += (size_t)snprintf(line + pos, sizeof(line) - pos, "\",\"path\":\"");
        pos = json_escape(line, pos, sizeof(line) - 4, path);
        line[pos++] = '"';
        line[pos++] = '}';
        line[pos++] = '\n';
        (void)!write(STDERR_FILENO, line, pos);
        return;
    }
    /*
     * The line emit() would write, formatted in place (one format and one
     * copy fewer per request): the message cut as log_write() cuts it, and
     * control characters from peers replaced so they cannot forge lines.
     */
    pos = (size_t)snprintf(line, sizeof(line), "%s %s ", ts, level_names[LOG_INFO]);
    n = snprintf(line + pos, MSG_MAX, "access %s %s %d %.3fms peer=%s tracking=%s", method, path,
                 status, ms, peer, tracking_id ? tracking_id : "-");
    end = pos + (n < 0 ? 0 : (size_t)n < MSG_MAX ? (size_t)n : MSG_MAX - 1);
    for (; pos < end; pos++)
        if ((unsigned char)line[pos] < 0x20)
            line[pos] = '?';
    line[end++] = '\n';
    (void)!write(STDERR_FILENO, line, end);
}
