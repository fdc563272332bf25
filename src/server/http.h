/* SPDX-License-Identifier: MIT */
/*
 * HTTP/1.1 for dpsd without I/O: a bounded request reader on http-parser,
 * the request object handlers see, a router over route tables, percent-
 * decoding, and the Azure error body. The connection layer (server/server.h)
 * feeds bytes in and sends the replies; the fuzz target drives the reader
 * directly.
 */
#ifndef DPS_SERVER_HTTP_H
#define DPS_SERVER_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <openssl/x509.h>

struct conn;
struct worker;

/* Limits every request is held to; exceeding one ends the request with a 4xx. */
struct http_limits {
    size_t max_url;          /* request-target bytes (414) */
    size_t max_header_bytes; /* all header names and values (431) */
    size_t max_headers;      /* header count (431) */
    size_t max_body;         /* body bytes (413) */
};

/* The default limits: 8 KiB URL, 32 KiB headers, 64 headers, 96 KiB body. */
extern const struct http_limits http_default_limits;

struct http_header {
    char *name; /* as sent */
    char *value;
};

struct http_param {
    char *name; /* percent-decoded */
    char *value;
};

/*
 * One complete request. Handlers read it and must answer it exactly once,
 * with one of the http_reply*() functions of server/server.h, either before
 * returning or later from the worker's thread (a deferred reply); the reply
 * frees it.
 */
struct http_request {
    char method[16]; /* "GET", "PUT", ... */
    char *target;    /* request-target as sent: never log it (query may hold a SAS) */
    char *path;      /* target without the query string, not decoded */
    char **segments; /* path split on '/', percent-decoded; empty segments dropped */
    size_t nsegments;
    struct http_param *query; /* decoded query parameters, in order */
    size_t nquery;
    struct http_header *headers; /* in order */
    size_t nheaders;
    char *body; /* NUL-terminated for convenience; body_len excludes it */
    size_t body_len;
    bool keep_alive;      /* the client allows another request on the connection */
    char tracking_id[37]; /* uuid; the trackingId of error bodies, x-ms-request-id */

    /* Set by the router on a match: the `{name}` captures of the pattern. */
    struct http_param *params;
    size_t nparams;

    /* Set by the connection layer; NULL when parsed without one (tests, fuzzing). */
    struct conn *conn;
    struct worker *worker;
    const char *peer;            /* "ADDR:PORT"; borrowed from the connection */
    STACK_OF(X509) * peer_chain; /* leaf first, as presented over TLS; NULL when none;
                                    borrowed, valid until the reply */
    double start_ms;             /* monotonic time the request was complete */

    /* Extra reply headers added with http_reply_header() (server/server.h). */
    struct http_header *reply_headers;
    size_t nreply_headers;
};

/* Case-insensitive header lookup: the first value of name, or NULL. Borrowed from req. */
const char *http_request_header(const struct http_request *req, const char *name);

/* The first decoded query parameter name (case-sensitive), or NULL. Borrowed from req. */
const char *http_request_query(const struct http_request *req, const char *name);

/* The router's `{name}` capture, or NULL. Borrowed from req. */
const char *http_request_param(const struct http_request *req, const char *name);

/* Frees a request and everything it owns; req may be NULL. Only the reply path calls it. */
void http_request_free(struct http_request *req);

/* A streaming request reader: bytes in, complete requests out, one at a time. */
struct http_reader;

/* Returns a new reader bound to limits (copied). Free with http_reader_free(). */
struct http_reader *http_reader_new(const struct http_limits *limits);

/* Frees reader and any half-read request; reader may be NULL. */
void http_reader_free(struct http_reader *reader);

/* True when the reader holds no part of a request (between requests). */
bool http_reader_idle(const struct http_reader *reader);

/*
 * True once per request when the client sent `Expect: 100-continue` and
 * waits for an interim `100 Continue` before sending the body; the
 * connection layer sends it. A request refused at its headers (413) never
 * sets it.
 */
bool http_reader_take_continue(struct http_reader *reader);

/*
 * Feeds up to len bytes. Stops after the first complete request, so that
 * pipelined requests are answered in order: call again with the rest.
 *
 * consumed: receives how many bytes of buf were used.
 * out:      receives a complete request (caller owns it, see struct
 *           http_request) or NULL when more bytes are needed.
 * status:   on failure, receives the HTTP status to answer with before
 *           closing the connection: 400, 413, 414, 431 or 505.
 *
 * Returns: DPS_OK (check *out); DPS_ERR_PROTOCOL for malformed input;
 * DPS_ERR_TOO_LARGE for a limit exceeded. After a failure the reader is
 * unusable: answer and close.
 */
int http_reader_feed(struct http_reader *reader, const char *buf, size_t len, size_t *consumed,
                     struct http_request **out, int *status, struct dps_error *err);

/*
 * Decodes %XX escapes of s[0..len) into a new NUL-terminated string; with
 * plus_is_space, '+' becomes ' ' (query strings).
 *
 * Returns: the owned string, or NULL when an escape is malformed or decodes
 * to a NUL byte.
 */
char *http_percent_decode(const char *s, size_t len, bool plus_is_space);

/*
 * A handler: answers req now or later (see struct http_request). arg is the
 * route's arg.
 */
typedef void (*http_handler_fn)(struct http_request *req, void *arg);

/*
 * One route. pattern is a path of '/'-separated segments compared case-
 * insensitively with the decoded request segments: a literal segment matches
 * itself, `{name}` matches any one segment and captures it, and a final `*`
 * matches any remaining segments (zero or more). method NULL matches any.
 */
struct http_route {
    const char *method;
    const char *pattern;
    http_handler_fn handler;
    void *arg;
};

struct http_router;

/* Returns an empty router; free with http_router_free(). */
struct http_router *http_router_new(void);

/* Frees router (not the route tables it points to); router may be NULL. */
void http_router_free(struct http_router *router);

/*
 * Adds a table of n routes (borrowed: must outlive the router). Routes are
 * tried in the order added, first match wins: add literal routes before
 * patterns that would also match them. Not thread-safe: build the router
 * before the workers start; it is read-only afterwards.
 */
void http_router_add(struct http_router *router, const struct http_route *routes, size_t n);

/*
 * Finds the route for req and fills req->params with its captures.
 *
 * Returns: the route, or NULL with *status set to 404 (no path matches) or
 * 405 (the path matches, the method does not).
 */
const struct http_route *http_router_match(const struct http_router *router,
                                           struct http_request *req, int *status);

/* Writes a random (version 4) uuid, 36 characters and a NUL, into buf[37]. */
void http_uuid(char buf[37]);

/* Writes the current UTC time with 7 fractional digits, as Azure does, into buf[32]. */
void http_utc_now(char buf[32]);

/*
 * Returns the Azure error body
 * {"errorCode":status*1000+sub_code,"trackingId":...,"message":...,"timestampUtc":...}
 * as an owned string (caller frees); *len receives its length.
 */
char *http_error_body(int status, int sub_code, const char *tracking_id, const char *message,
                      size_t *len);

/* The reason phrase for status ("Not Found"), or "Unknown". */
const char *http_reason(int status);

#endif
