/* SPDX-License-Identifier: MIT */
/*
 * The decision trace: operator lines and the conclusion of one registration
 * attempt, and their JSON form for storage. Allocation failures never
 * propagate: the trace only records that it lost something.
 */
#include "core/common.h"
#include "core/trace.h"

#include <stdarg.h>

struct trace {
    char *lines[TRACE_LINES_MAX];
    size_t n_lines;
    size_t omitted;
    bool truncated;
    int error_code;
    char *summary;
    char *device_message;
};

struct trace *trace_new(void)
{
    return calloc(1, sizeof(struct trace));
}

void trace_free(struct trace *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_lines; i++)
        free(t->lines[i]);
    free(t->summary);
    free(t->device_message);
    free(t);
}

/* Appends s[0..n) at buf[*len], cut at TRACE_LINE_MAX bytes as vsnprintf cuts. */
static void put(char *buf, size_t *len, const char *s, size_t n)
{
    size_t room = TRACE_LINE_MAX - *len;

    if (n > room)
        n = room;
    memcpy(buf + *len, s, n);
    *len += n;
}

/* Writes the decimal digits of v (negative when neg) at the end of num; returns the first. */
static char *put_decimal(char num[24], unsigned long long v, bool neg)
{
    char *p = num + 24;

    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    if (neg)
        *--p = '-';
    return p;
}

/*
 * Formats the conversions trace lines are written with (%s, %.Ns, %d,
 * %zu and %%) by hand, into buf as vsnprintf(buf, TRACE_LINE_MAX + 1, ...) would:
 * several lines are recorded per registration, and vsnprintf is most of
 * their cost. Anything else (flags, a width, another conversion, a NULL
 * string) returns -1 with buf unspecified, for the caller to use vsnprintf.
 */
static int format_simple(char buf[TRACE_LINE_MAX + 1], const char *fmt, va_list ap)
{
    const char *p = fmt, *pct;
    size_t len = 0;
    char num[24], *d;

    while ((pct = strchr(p, '%'))) {
        put(buf, &len, p, (size_t)(pct - p));
        if (pct[1] == 's' || (pct[1] == '.' && pct[2] >= '0' && pct[2] <= '9')) {
            /* "%s", or "%.Ns": at most N bytes of the string */
            size_t max = TRACE_LINE_MAX - len, prec;
            const char *s;

            p = pct + 1;
            if (*p == '.') {
                for (prec = 0, p++; *p >= '0' && *p <= '9' && prec <= TRACE_LINE_MAX; p++)
                    prec = prec * 10 + (size_t)(*p - '0');
                if (*p != 's')
                    return -1;
                if (prec < max)
                    max = prec;
            }
            s = va_arg(ap, const char *);
            if (!s)
                return -1;
            put(buf, &len, s, strnlen(s, max));
            p++;
        } else if (pct[1] == 'd') {
            int v = va_arg(ap, int);

            /* the magnitude in unsigned arithmetic, so that INT_MIN has one */
            d = put_decimal(num, v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v,
                            v < 0);
            put(buf, &len, d, (size_t)(num + sizeof(num) - d));
            p = pct + 2;
        } else if (pct[1] == 'z' && pct[2] == 'u') {
            d = put_decimal(num, va_arg(ap, size_t), false);
            put(buf, &len, d, (size_t)(num + sizeof(num) - d));
            p = pct + 3;
        } else if (pct[1] == '%') {
            put(buf, &len, "%", 1);
            p = pct + 2;
        } else {
            return -1;
        }
    }
    put(buf, &len, p, strnlen(p, TRACE_LINE_MAX - len));
    buf[len] = '\0';
    return 0;
}

/* Formats into a new string cut at TRACE_LINE_MAX bytes; NULL when out of memory. */
__attribute__((format(printf, 1, 0))) static char *format_line(const char *fmt, va_list ap)
{
    char buf[TRACE_LINE_MAX + 1];
    va_list aq;
    int rc;

    va_copy(aq, ap);
    rc = format_simple(buf, fmt, aq);
    va_end(aq);
    if (rc != 0 && vsnprintf(buf, sizeof(buf), fmt, ap) < 0)
        buf[0] = '\0';
    return strdup(buf);
}

static char *copy_line(const char *s)
{
    size_t n = strnlen(s, TRACE_LINE_MAX);

    return strndup(s, n);
}

static void push_line(struct trace *t, char *line)
{
    if (!line) {
        t->truncated = true;
        return;
    }
    if (t->n_lines == TRACE_LINES_MAX) {
        t->omitted++;
        free(line);
        return;
    }
    t->lines[t->n_lines++] = line;
}

void trace_add(struct trace *t, const char *fmt, ...)
{
    va_list ap;

    if (!t)
        return;
    if (t->n_lines == TRACE_LINES_MAX) {
        t->omitted++;
        return;
    }
    va_start(ap, fmt);
    push_line(t, format_line(fmt, ap));
    va_end(ap);
}

void trace_conclude(struct trace *t, int error_code, const char *device_message, const char *fmt,
                    ...)
{
    va_list ap;

    if (!t)
        return;
    t->error_code = error_code;
    free(t->device_message);
    t->device_message = NULL;
    if (device_message) {
        t->device_message = copy_line(device_message);
        if (!t->device_message)
            t->truncated = true;
    }
    free(t->summary);
    va_start(ap, fmt);
    t->summary = format_line(fmt, ap);
    va_end(ap);
    if (!t->summary)
        t->truncated = true;
}

size_t trace_line_count(const struct trace *t)
{
    return t->n_lines;
}

const char *trace_line(const struct trace *t, size_t i)
{
    return i < t->n_lines ? t->lines[i] : NULL;
}

size_t trace_omitted(const struct trace *t)
{
    return t->omitted;
}

bool trace_truncated(const struct trace *t)
{
    return t->truncated;
}

int trace_error_code(const struct trace *t)
{
    return t->error_code;
}

const char *trace_summary(const struct trace *t)
{
    return t->summary ? t->summary : "";
}

const char *trace_device_message(const struct trace *t)
{
    return t->device_message ? t->device_message : "";
}

bool trace_contains(const struct trace *t, const char *needle)
{
    if (t->summary && strstr(t->summary, needle))
        return true;
    for (size_t i = 0; i < t->n_lines; i++) {
        if (strstr(t->lines[i], needle))
            return true;
    }
    return false;
}

json_t *trace_to_json(const struct trace *t)
{
    json_t *root = json_object();
    json_t *steps = json_array();

    if (!root || !steps)
        goto fail;
    for (size_t i = 0; i < t->n_lines; i++) {
        if (json_array_append_new(steps, json_string(t->lines[i])) != 0)
            goto fail;
    }
    if (json_object_set_new(root, "errorCode", json_integer(t->error_code)) != 0 ||
        json_object_set_new(root, "summary", json_string(trace_summary(t))) != 0 ||
        json_object_set_new(root, "deviceMessage", json_string(trace_device_message(t))) != 0 ||
        json_object_set_new(root, "omitted", json_integer((json_int_t)t->omitted)) != 0 ||
        json_object_set_new(root, "truncated", json_boolean(t->truncated)) != 0)
        goto fail;
    if (json_object_set_new(root, "steps", steps) != 0) {
        steps = NULL;
        goto fail;
    }
    return root;
fail:
    json_decref(steps);
    json_decref(root);
    return NULL;
}

/* Copies the optional string member name into *dst; DPS_OK when absent. */
static int member_string(const json_t *j, const char *name, char **dst, struct dps_error *err)
{
    const json_t *v = json_object_get(j, name);

    if (!v)
        return DPS_OK;
    if (!json_is_string(v))
        return dps_error_set(err, DPS_ERR_INVAL, "trace member '%s' is not a string", name);
    *dst = copy_line(json_string_value(v));
    if (!*dst)
        return dps_error_set(err, DPS_ERR_NOMEM, "out of memory reading the trace");
    return DPS_OK;
}

int trace_from_json(const json_t *j, struct trace **out, struct dps_error *err)
{
    struct trace *t = NULL;
    const json_t *v, *step;
    size_t i;
    int rc;

    if (!json_is_object(j)) {
        rc = dps_error_set(err, DPS_ERR_INVAL, "trace is not a json object");
        goto out;
    }
    t = trace_new();
    if (!t) {
        rc = dps_error_set(err, DPS_ERR_NOMEM, "out of memory reading the trace");
        goto out;
    }
    v = json_object_get(j, "errorCode");
    if (v && !json_is_integer(v)) {
        rc = dps_error_set(err, DPS_ERR_INVAL, "trace member 'errorCode' is not an integer");
        goto out;
    }
    t->error_code = v ? (int)json_integer_value(v) : 0;
    rc = member_string(j, "summary", &t->summary, err);
    if (rc != DPS_OK)
        goto out;
    rc = member_string(j, "deviceMessage", &t->device_message, err);
    if (rc != DPS_OK)
        goto out;
    v = json_object_get(j, "omitted");
    if (v && (!json_is_integer(v) || json_integer_value(v) < 0)) {
        rc = dps_error_set(err, DPS_ERR_INVAL, "trace member 'omitted' is not a count");
        goto out;
    }
    t->omitted = v ? (size_t)json_integer_value(v) : 0;
    t->truncated = json_is_true(json_object_get(j, "truncated"));
    v = json_object_get(j, "steps");
    if (v && !json_is_array(v)) {
        rc = dps_error_set(err, DPS_ERR_INVAL, "trace member 'steps' is not an array");
        goto out;
    }
    json_array_foreach(v, i, step)
    {
        if (!json_is_string(step)) {
            rc = dps_error_set(err, DPS_ERR_INVAL, "trace step %zu is not a string", i);
            goto out;
        }
        push_line(t, copy_line(json_string_value(step)));
    }
    *out = t;
    t = NULL;
    rc = DPS_OK;
out:
    trace_free(t);
    return rc;
}
