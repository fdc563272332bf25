/* SPDX-License-Identifier: MIT */
/*
 * A small blocking HTTPS/1.1 client for libdps: one TLS connection kept
 * alive across requests, the server verified against a CA file or the
 * system store and its host name, every request bounded by a deadline and
 * every response by a size limit. It is not a general HTTP client: no
 * proxies, no redirects, no compression.
 */
#ifndef DPS_CLIENT_HTTPS_H
#define DPS_CLIENT_HTTPS_H

#include <stddef.h>

#include "dps/error.h"

struct https_conn;

/* Default limits, used when the options leave a field at zero. */
#define HTTPS_DEFAULT_TIMEOUT_MS 30000
#define HTTPS_DEFAULT_MAX_RESPONSE (32u * 1024 * 1024)
#define HTTPS_MAX_HEADERS 100
#define HTTPS_MAX_HEADER_BYTES (64u * 1024)

struct https_options {
    const char *host;         /* the server's name: SNI, Host header, certificate check */
    const char *connect_host; /* where to connect; NULL = host */
    int port;                 /* 0 = 443 */
    const char *ca_file;      /* PEM file of trusted roots; NULL = the system store */
    int timeout_ms;           /* deadline of one request, connect included; 0 = default */
    size_t max_response;      /* bytes of headers plus body; 0 = default */
    /* TLS client certificate chain (PEM, leaf first) and its key; both NULL for none. */
    const char *cert_file;
    const char *key_file;
};

struct https_header {
    const char *name;
    const char *value;
};

/* A parsed response. Everything is owned by the struct. */
struct https_response {
    int status;
    char *body; /* NUL-terminated for convenience; body_len excludes the NUL */
    size_t body_len;
    struct https_header *headers; /* names and values heap strings */
    size_t nheaders;
};

/*
 * Makes a connection object; nothing is connected until the first request.
 * The options' strings are copied.
 *
 * Returns: DPS_OK and *out (free with https_conn_free()); DPS_ERR_NOMEM;
 * DPS_ERR_TLS when the CA file cannot be loaded; DPS_ERR_INVAL on bad options.
 */
int https_conn_new(const struct https_options *opts, struct https_conn **out,
                   struct dps_error *err);

/* Closes the connection and frees c; c may be NULL. */
void https_conn_free(struct https_conn *c);

/*
 * Sends one request and reads its response, reusing the open connection
 * when the server kept it alive. A reused connection that the server closed
 * while idle is reopened once, transparently, provided no byte of a response
 * arrived. The request adds Host, Content-Length (when body is not NULL) and
 * nothing else: headers holds the rest.
 *
 * target: the path and query, already percent-encoded.
 * body: may be NULL (no body, no Content-Length).
 * resp: filled only on DPS_OK; release with https_response_release().
 *
 * Returns: DPS_OK for any HTTP status; DPS_ERR_NOMEM; DPS_ERR_IO on a network
 * failure or timeout; DPS_ERR_TLS on a handshake or verification failure;
 * DPS_ERR_PROTOCOL on a malformed response; DPS_ERR_TOO_LARGE when the
 * response exceeds the limit.
 */
int https_request(struct https_conn *c, const char *method, const char *target,
                  const struct https_header *headers, size_t nheaders, const char *body,
                  size_t body_len, struct https_response *resp, struct dps_error *err);

/*
 * The TLS stream without HTTP, for protocols on the same setup (MQTT on
 * 8883, or a WebSocket after an upgrade request written with
 * https_conn_write()): the server is verified and the client certificate
 * sent exactly as for a request. SIGPIPE is kept from the process as in
 * https_request().
 */

/*
 * Connects now (TCP and TLS handshake within the options' timeout) unless
 * the connection is open already.
 *
 * Returns: DPS_OK; DPS_ERR_IO (cannot connect, timeout); DPS_ERR_TLS
 * (handshake or verification failure); DPS_ERR_NOMEM.
 */
int https_conn_open(struct https_conn *c, struct dps_error *err);

/*
 * Writes all len bytes of buf on the open connection within timeout_ms.
 *
 * Returns: DPS_OK; DPS_ERR_IO (not open, closed by the peer, timeout).
 */
int https_conn_write(struct https_conn *c, const void *buf, size_t len, int timeout_ms,
                     struct dps_error *err);

/*
 * Reads what arrived, at most cap bytes, waiting up to timeout_ms for the
 * first one.
 *
 * got: on DPS_OK, the bytes read, at least 1.
 *
 * Returns: DPS_OK; DPS_ERR_IO (not open, closed by the peer, timeout: the
 * message says which).
 */
int https_conn_read(struct https_conn *c, void *buf, size_t cap, int timeout_ms, size_t *got,
                    struct dps_error *err);

/* Number of TCP connections opened so far (keep-alive makes it stay at 1). */
unsigned https_conn_count(const struct https_conn *c);

/* The first header of that name (case-insensitive), or NULL; borrowed from r. */
const char *https_response_header(const struct https_response *r, const char *name);

/* Frees what r holds and zeroes it; r may be NULL. */
void https_response_release(struct https_response *r);

#endif
