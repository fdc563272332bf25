/* SPDX-License-Identifier: MIT */
/*
 * Error codes, their names and their HTTP statuses, and the aborting
 * allocators dpsd uses.
 */
#include "core/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    int http_status;
} err_table[] = {
    [DPS_OK] = {"ok", 200},
    [DPS_ERR_NOMEM] = {"out of memory", 500},
    [DPS_ERR_INVAL] = {"invalid input", 400},
    [DPS_ERR_AUTH] = {"unauthorized", 401},
    [DPS_ERR_FORBIDDEN] = {"forbidden", 401},
    [DPS_ERR_NOT_FOUND] = {"not found", 404},
    [DPS_ERR_CONFLICT] = {"conflict", 409},
    [DPS_ERR_PRECONDITION] = {"precondition failed", 412},
    [DPS_ERR_TOO_LARGE] = {"too large", 413},
    [DPS_ERR_STORE] = {"store failure", 500},
    [DPS_ERR_TLS] = {"tls failure", 400},
    [DPS_ERR_IO] = {"i/o failure", 500},
    [DPS_ERR_PROTOCOL] = {"protocol error", 400},
    [DPS_ERR_EXISTS] = {"already exists", 409},
    [DPS_ERR_INTERNAL] = {"internal error", 500},
    [DPS_ERR_BUSY] = {"busy", 503},
};

const char *dps_strerror(int code)
{
    if (code < 0 || (size_t)code >= ARRAY_SIZE(err_table) || !err_table[code].name)
        return "unknown error";
    return err_table[code].name;
}

int dps_err_http_status(int code)
{
    if (code < 0 || (size_t)code >= ARRAY_SIZE(err_table) || !err_table[code].name)
        return 500;
    return err_table[code].http_status;
}

int dps_error_set(struct dps_error *err, int code, const char *fmt, ...)
{
    va_list ap;

    if (!err)
        return code;
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return code;
}

void dps_error_clear(struct dps_error *err)
{
    if (!err)
        return;
    err->code = DPS_OK;
    err->msg[0] = '\0';
}

static void oom(size_t n)
{
    fprintf(stderr, "dpsd: out of memory allocating %zu bytes\n", n);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *xcalloc(size_t count, size_t n)
{
    void *p = calloc(count ? count : 1, n ? n : 1);
    if (!p)
        oom(count * n);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}
