/* SPDX-License-Identifier: MIT */
/*
 * Error codes shared by every dpsd module and by libdps.
 *
 * Functions that can fail in ways a user must act on fill a caller-owned
 * struct dps_error with a message in plain words; the code alone says what
 * kind of failure it was. One table (see dps_err_http_status) maps codes to
 * HTTP statuses.
 */
#ifndef DPS_ERROR_H
#define DPS_ERROR_H

#include <stddef.h>

enum dps_err {
    DPS_OK = 0,
    DPS_ERR_NOMEM,        /* out of memory */
    DPS_ERR_INVAL,        /* malformed or invalid input */
    DPS_ERR_AUTH,         /* authentication failed */
    DPS_ERR_FORBIDDEN,    /* authenticated, but the right is missing */
    DPS_ERR_NOT_FOUND,    /* no such object */
    DPS_ERR_CONFLICT,     /* the object exists already */
    DPS_ERR_PRECONDITION, /* If-Match did not match */
    DPS_ERR_TOO_LARGE,    /* input over its limit */
    DPS_ERR_STORE,        /* the store failed */
    DPS_ERR_TLS,          /* TLS or certificate failure */
    DPS_ERR_IO,           /* file or network I/O failed */
    DPS_ERR_PROTOCOL,     /* the peer broke the protocol */
    DPS_ERR_EXISTS,       /* a file exists and may not be overwritten */
    DPS_ERR_INTERNAL,     /* a bug or an unexpected library failure */
    DPS_ERR_BUSY,         /* overloaded: a queue is full, try again later */
};

/* A failure with a message for the person who has to fix it. */
struct dps_error {
    int code;      /* an enum dps_err value */
    char msg[256]; /* lower case, no full stop, the subject in quotes */
};

/* Returns a static, human-readable name for an enum dps_err value. */
const char *dps_strerror(int code);

/*
 * Fills err (which may be NULL) with code and a printf-style message.
 *
 * Returns: code, so that callers can write `return dps_error_set(...)`.
 */
int dps_error_set(struct dps_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Resets err to DPS_OK with an empty message; err may be NULL. */
void dps_error_clear(struct dps_error *err);

/* The HTTP status that answers a failure with this code. */
int dps_err_http_status(int code);

#endif
