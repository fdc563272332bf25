/* SPDX-License-Identifier: MIT */
/*
 * The blocking HTTPS/1.1 client under libdps's service client. The socket is
 * non-blocking so that one deadline bounds connect, handshake, send and
 * receive alike; responses are parsed by http-parser, which also decodes
 * chunked bodies.
 */
#include "core/common.h"
#include "client/https.h"

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <http_parser.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

struct https_conn {
    char *host;
    char *connect_host;
    int port;
    int timeout_ms;
    size_t max_response;
    SSL_CTX *ctx;
    SSL *ssl;
    int fd;
    unsigned connects;
    unsigned requests_on_conn; /* requests answered on the open connection */
};

/* Why reading a response stopped, for the retry decision. */
enum io_status { IO_OK, IO_EOF, IO_ERR };

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until fd is ready for events or the deadline passes: 1 ready, 0 timeout, -1 error. */
static int wait_fd(int fd, short events, long long deadline)
{
    for (;;) {
        long long left = deadline - now_ms();
        struct pollfd p = {.fd = fd, .events = events};
        int n;

        if (left <= 0)
            return 0;
        n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (n > 0)
            return 1;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

/* The first queued OpenSSL error as text, for messages; clears the queue. */
static const char *ssl_errstr(char *buf, size_t len)
{
    unsigned long e = ERR_get_error();

    if (!e) {
        snprintf(buf, len, "%s", errno ? strerror(errno) : "connection closed");
    } else {
        ERR_error_string_n(e, buf, len);
        ERR_clear_error();
    }
    return buf;
}

static void conn_close(struct https_conn *c)
{
    if (c->ssl) {
        /* A quiet close: the peer may be gone already, so no waiting for its notify. */
        SSL_set_quiet_shutdown(c->ssl, 1);
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    c->requests_on_conn = 0;
}

static int tcp_connect(struct https_conn *c, long long deadline, struct dps_error *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL, *ai;
    char port[16];
    int fd = -1, gai, last_errno = 0;

    snprintf(port, sizeof(port), "%d", c->port);
    gai = getaddrinfo(c->connect_host, port, &hints, &res);
    if (gai != 0)
        return dps_error_set(err, DPS_ERR_IO, "cannot resolve '%s': %s", c->connect_host,
                             gai_strerror(gai));
    for (ai = res; ai; ai = ai->ai_next) {
        int soerr = 0, one = 1, w;
        socklen_t sl = sizeof(soerr);

        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            last_errno = errno;
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        if (errno == EINPROGRESS) {
            w = wait_fd(fd, POLLOUT, deadline);
            if (w == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)
                break;
            last_errno = w == 0 ? ETIMEDOUT : soerr ? soerr : errno;
        } else {
            last_errno = errno;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        return dps_error_set(err, DPS_ERR_IO, "cannot connect to '%s:%d': %s", c->connect_host,
                             c->port, strerror(last_errno ? last_errno : ECONNREFUSED));
    c->fd = fd;
    return DPS_OK;
}

/*
 * Drives a non-blocking SSL call to completion: returns its positive result,
 * 0 on a clean EOF, -1 on failure (err filled unless it was a timeout, which
 * fills it too).
 */
static int ssl_wait(struct https_conn *c, int r, long long deadline, const char *what,
                    struct dps_error *err)
{
    char buf[200];
    int e = SSL_get_error(c->ssl, r), w;

    switch (e) {
    case SSL_ERROR_WANT_READ:
        w = wait_fd(c->fd, POLLIN, deadline);
        break;
    case SSL_ERROR_WANT_WRITE:
        w = wait_fd(c->fd, POLLOUT, deadline);
        break;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        if (ERR_peek_error() == 0 && (errno == 0 || errno == ECONNRESET || errno == EPIPE)) {
            dps_error_set(err, DPS_ERR_IO, "connection to '%s' closed during %s", c->host, what);
            return 0;
        }
        /* fall through */
    default:
        dps_error_set(err, DPS_ERR_IO, "%s with '%s' failed: %s", what, c->host,
                      ssl_errstr(buf, sizeof(buf)));
        return -1;
    }
    if (w == 1)
        return 1; /* retry */
    dps_error_set(err, DPS_ERR_IO, "%s with '%s' %s", what, c->host,
                  w == 0 ? "timed out" : "failed");
    return -1;
}

static bool is_ip_literal(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];

    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static int conn_open(struct https_conn *c, long long deadline, struct dps_error *err)
{
    char buf[200];
    int rc, r;

    rc = tcp_connect(c, deadline, err);
    if (rc != DPS_OK)
        return rc;
    c->ssl = SSL_new(c->ctx);
    if (!c->ssl || !SSL_set_fd(c->ssl, c->fd)) {
        rc = dps_error_set(err, DPS_ERR_NOMEM, "cannot set up tls");
        goto fail;
    }
    if (is_ip_literal(c->host)) {
        if (!X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), c->host)) {
            rc = dps_error_set(err, DPS_ERR_NOMEM, "cannot set up tls");
            goto fail;
        }
    } else if (!SSL_set_tlsext_host_name(c->ssl, c->host) || !SSL_set1_host(c->ssl, c->host)) {
        rc = dps_error_set(err, DPS_ERR_NOMEM, "cannot set up tls");
        goto fail;
    }
    ERR_clear_error();
    while ((r = SSL_connect(c->ssl)) != 1) {
        long vr = SSL_get_verify_result(c->ssl);

        if (vr != X509_V_OK) {
            rc = dps_error_set(err, DPS_ERR_TLS, "certificate of '%s' not trusted: %s", c->host,
                               X509_verify_cert_error_string(vr));
            goto fail;
        }
        if (SSL_get_error(c->ssl, r) == SSL_ERROR_SSL) {
            rc = dps_error_set(err, DPS_ERR_TLS, "tls handshake with '%s' failed: %s", c->host,
                               ssl_errstr(buf, sizeof(buf)));
            goto fail;
        }
        if (ssl_wait(c, r, deadline, "tls handshake", err) != 1) {
            rc = err ? err->code : DPS_ERR_IO;
            goto fail;
        }
    }
    c->connects++;
    return DPS_OK;
fail:
    conn_close(c);
    return rc;
}

static int write_all(struct https_conn *c, const char *p, size_t len, long long deadline,
                     struct dps_error *err)
{
    while (len > 0) {
        int chunk = len > INT32_MAX ? INT32_MAX : (int)len;
        int r, w;

        ERR_clear_error();
        errno = 0;
        r = SSL_write(c->ssl, p, chunk);
        if (r > 0) {
            p += r;
            len -= (size_t)r;
            continue;
        }
        w = ssl_wait(c, r, deadline, "sending the request", err);
        if (w != 1)
            return DPS_ERR_IO;
    }
    return DPS_OK;
}

/* Response parsing state for http-parser's callbacks. */
struct parse_ctx {
    struct https_response *r;
    size_t budget; /* bytes of headers and body still allowed */
    size_t header_bytes;
    char *field, *value;
    size_t field_len, value_len;
    bool in_value;
    bool complete;
    int rc; /* why a callback stopped the parser */
};

static int append(char **buf, size_t *len, const char *at, size_t n)
{
    char *p = realloc(*buf, *len + n + 1);

    if (!p)
        return -1;
    memcpy(p + *len, at, n);
    *len += n;
    p[*len] = '\0';
    *buf = p;
    return 0;
}

static int charge(struct parse_ctx *x, size_t n)
{
    if (n > x->budget) {
        x->rc = DPS_ERR_TOO_LARGE;
        return -1;
    }
    x->budget -= n;
    return 0;
}

static int commit_header(struct parse_ctx *x)
{
    struct https_response *r = x->r;
    struct https_header *h;

    if (!x->field)
        return 0;
    if (r->nheaders >= HTTPS_MAX_HEADERS) {
        x->rc = DPS_ERR_TOO_LARGE;
        return -1;
    }
    h = realloc(r->headers, (r->nheaders + 1) * sizeof(*h));
    if (!h) {
        x->rc = DPS_ERR_NOMEM;
        return -1;
    }
    r->headers = h;
    h[r->nheaders].name = x->field;
    h[r->nheaders].value = x->value ? x->value : strdup("");
    if (!h[r->nheaders].value) {
        x->rc = DPS_ERR_NOMEM;
        return -1;
    }
    r->nheaders++;
    x->field = x->value = NULL;
    x->field_len = x->value_len = 0;
    x->in_value = false;
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    struct parse_ctx *x = p->data;

    if (x->in_value && commit_header(x))
        return -1;
    x->header_bytes += n;
    if (x->header_bytes > HTTPS_MAX_HEADER_BYTES || charge(x, n)) {
        x->rc = DPS_ERR_TOO_LARGE;
        return -1;
    }
    if (append(&x->field, &x->field_len, at, n)) {
        x->rc = DPS_ERR_NOMEM;
        return -1;
    }
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    struct parse_ctx *x = p->data;

    x->in_value = true;
    x->header_bytes += n;
    if (x->header_bytes > HTTPS_MAX_HEADER_BYTES || charge(x, n)) {
        x->rc = DPS_ERR_TOO_LARGE;
        return -1;
    }
    if (append(&x->value, &x->value_len, at, n)) {
        x->rc = DPS_ERR_NOMEM;
        return -1;
    }
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct parse_ctx *x = p->data;

    if (commit_header(x))
        return -1;
    /* Refuse a declared oversized body before reading it. */
    if (p->content_length != ULLONG_MAX && p->content_length > x->budget) {
        x->rc = DPS_ERR_TOO_LARGE;
        return -1;
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    struct parse_ctx *x = p->data;

    if (charge(x, n))
        return -1;
    if (append(&x->r->body, &x->r->body_len, at, n)) {
        x->rc = DPS_ERR_NOMEM;
        return -1;
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct parse_ctx *x = p->data;

    x->complete = true;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/*
 * Reads and parses one response. *got_bytes tells the caller whether any
 * byte arrived, which decides whether a failed request on a reused
 * connection may be sent again.
 */
static int read_response(struct https_conn *c, struct https_response *r, long long deadline,
                         bool *keep_alive, bool *got_bytes, struct dps_error *err)
{
    struct parse_ctx x = {.r = r, .budget = c->max_response};
    http_parser parser;
    char buf[16384];
    bool leftover = false;
    int rc = DPS_OK;

    *got_bytes = false;
    http_parser_init(&parser, HTTP_RESPONSE);
    parser.data = &x;
    while (!x.complete) {
        size_t used;
        int n, w;

        ERR_clear_error();
        errno = 0;
        n = SSL_read(c->ssl, buf, sizeof(buf));
        if (n <= 0) {
            w = ssl_wait(c, n, deadline, "reading the response", err);
            if (w == 1)
                continue;
            if (w < 0) {
                rc = DPS_ERR_IO;
                goto out;
            }
            /* EOF: ends a body without length, or cuts a response short. */
            if (*got_bytes) {
                http_parser_execute(&parser, &parser_settings, NULL, 0);
                if (x.complete)
                    break;
            }
            rc = dps_error_set(err, DPS_ERR_IO,
                               "connection to '%s' closed before the response ended", c->host);
            goto out;
        }
        *got_bytes = true;
        used = http_parser_execute(&parser, &parser_settings, buf, (size_t)n);
        if (HTTP_PARSER_ERRNO(&parser) == HPE_PAUSED) {
            leftover = used != (size_t)n;
            break;
        }
        if (HTTP_PARSER_ERRNO(&parser) != HPE_OK || used != (size_t)n) {
            if (x.rc == DPS_ERR_TOO_LARGE)
                rc = dps_error_set(err, DPS_ERR_TOO_LARGE,
                                   "response from '%s' exceeds the limit of %zu bytes", c->host,
                                   c->max_response);
            else if (x.rc == DPS_ERR_NOMEM)
                rc = dps_error_set(err, DPS_ERR_NOMEM, "out of memory reading the response");
            else
                rc = dps_error_set(err, DPS_ERR_PROTOCOL, "malformed response from '%s': %s",
                                   c->host, http_errno_description(HTTP_PARSER_ERRNO(&parser)));
            goto out;
        }
    }
    if (!r->body && append(&r->body, &r->body_len, "", 0)) {
        rc = dps_error_set(err, DPS_ERR_NOMEM, "out of memory reading the response");
        goto out;
    }
    r->status = parser.status_code;
    /* Bytes after the response mean the stream is out of step: do not reuse it. */
    *keep_alive = http_should_keep_alive(&parser) && !leftover && SSL_pending(c->ssl) == 0;
out:
    free(x.field);
    free(x.value);
    return rc;
}

static int build_head(const struct https_conn *c, const char *method, const char *target,
                      const struct https_header *headers, size_t nheaders, const char *body,
                      size_t body_len, char **out, size_t *out_len)
{
    size_t cap = strlen(method) + strlen(target) + strlen(c->host) + 128, len;
    char *p;

    for (size_t i = 0; i < nheaders; i++)
        cap += strlen(headers[i].name) + strlen(headers[i].value) + 4;
    p = malloc(cap);
    if (!p)
        return DPS_ERR_NOMEM;
    len = (size_t)snprintf(p, cap, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, target, c->host);
    for (size_t i = 0; i < nheaders; i++)
        len +=
            (size_t)snprintf(p + len, cap - len, "%s: %s\r\n", headers[i].name, headers[i].value);
    if (body)
        len += (size_t)snprintf(p + len, cap - len, "Content-Length: %zu\r\n", body_len);
    len += (size_t)snprintf(p + len, cap - len, "\r\n");
    *out = p;
    *out_len = len;
    return DPS_OK;
}

static bool header_ok(const char *s)
{
    return strpbrk(s, "\r\n") == NULL;
}

/*
 * Writing to a socket the server closed raises SIGPIPE, which would kill
 * the calling program; a library must not change process-wide signal
 * dispositions, so block it on this thread and swallow any that is pending.
 */
static void sigpipe_block(sigset_t *old)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, old);
}

static void sigpipe_restore(const sigset_t *old)
{
    sigset_t set;
    struct timespec zero = {0, 0};

    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    if (!sigismember(old, SIGPIPE)) {
        while (sigtimedwait(&set, NULL, &zero) > 0)
            ;
    }
    pthread_sigmask(SIG_SETMASK, old, NULL);
}

int https_request(struct https_conn *c, const char *method, const char *target,
                  const struct https_header *headers, size_t nheaders, const char *body,
                  size_t body_len, struct https_response *resp, struct dps_error *err)
{
    struct https_response r = {0};
    long long deadline = now_ms() + c->timeout_ms;
    char *head = NULL;
    size_t head_len;
    sigset_t old;
    int rc, attempt;

    if (!header_ok(method) || !header_ok(target) || strchr(target, ' '))
        return dps_error_set(err, DPS_ERR_INVAL, "request target '%s' is not valid", target);
    for (size_t i = 0; i < nheaders; i++) {
        if (!header_ok(headers[i].name) || !header_ok(headers[i].value))
            return dps_error_set(err, DPS_ERR_INVAL, "header '%s' holds a line break",
                                 headers[i].name);
    }
    if (build_head(c, method, target, headers, nheaders, body, body_len, &head, &head_len))
        return dps_error_set(err, DPS_ERR_NOMEM, "out of memory building the request");

    sigpipe_block(&old);
    for (attempt = 0;; attempt++) {
        bool reused = c->ssl != NULL, keep = false, got = false;

        if (!c->ssl) {
            rc = conn_open(c, deadline, err);
            if (rc != DPS_OK)
                goto out;
        }
        rc = write_all(c, head, head_len, deadline, err);
        if (rc == DPS_OK && body && body_len)
            rc = write_all(c, body, body_len, deadline, err);
        if (rc == DPS_OK)
            rc = read_response(c, &r, deadline, &keep, &got, err);
        if (rc == DPS_OK) {
            c->requests_on_conn++;
            if (!keep)
                conn_close(c);
            break;
        }
        https_response_release(&r);
        conn_close(c);
        /* An idle keep-alive connection the server dropped: try once on a new one. */
        if (!(rc == DPS_ERR_IO && reused && !got && attempt == 0))
            goto out;
        dps_error_clear(err);
    }
    *resp = r;
    rc = DPS_OK;
out:
    sigpipe_restore(&old);
    free(head);
    return rc;
}

int https_conn_open(struct https_conn *c, struct dps_error *err)
{
    sigset_t old;
    int rc;

    if (c->ssl)
        return DPS_OK;
    sigpipe_block(&old);
    rc = conn_open(c, now_ms() + c->timeout_ms, err);
    sigpipe_restore(&old);
    return rc;
}

int https_conn_write(struct https_conn *c, const void *buf, size_t len, int timeout_ms,
                     struct dps_error *err)
{
    sigset_t old;
    int rc;

    if (!c->ssl)
        return dps_error_set(err, DPS_ERR_IO, "the connection to '%s' is not open", c->host);
    sigpipe_block(&old);
    rc = write_all(c, buf, len, now_ms() + timeout_ms, err);
    sigpipe_restore(&old);
    return rc;
}

int https_conn_read(struct https_conn *c, void *buf, size_t cap, int timeout_ms, size_t *got,
                    struct dps_error *err)
{
    long long deadline = now_ms() + timeout_ms;
    int chunk = cap > INT32_MAX ? INT32_MAX : (int)cap;

    if (!c->ssl)
        return dps_error_set(err, DPS_ERR_IO, "the connection to '%s' is not open", c->host);
    for (;;) {
        int r, w;

        ERR_clear_error();
        errno = 0;
        r = SSL_read(c->ssl, buf, chunk);
        if (r > 0) {
            *got = (size_t)r;
            return DPS_OK;
        }
        w = ssl_wait(c, r, deadline, "reading", err);
        if (w == 0 && !(err && err->code))
            return dps_error_set(err, DPS_ERR_IO, "'%s' closed the connection", c->host);
        if (w != 1)
            return DPS_ERR_IO;
    }
}

int https_conn_new(const struct https_options *opts, struct https_conn **out, struct dps_error *err)
{
    struct https_conn *c;
    const char *connect_host = opts->connect_host ? opts->connect_host : opts->host;
    int rc;

    if (!opts->host || !*opts->host)
        return dps_error_set(err, DPS_ERR_INVAL, "server host name is empty");
    if (opts->port < 0 || opts->port > 65535)
        return dps_error_set(err, DPS_ERR_INVAL, "port '%d' is out of range", opts->port);
    c = calloc(1, sizeof(*c));
    if (!c)
        return dps_error_set(err, DPS_ERR_NOMEM, "out of memory");
    c->fd = -1;
    c->port = opts->port ? opts->port : 443;
    c->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : HTTPS_DEFAULT_TIMEOUT_MS;
    c->max_response = opts->max_response ? opts->max_response : HTTPS_DEFAULT_MAX_RESPONSE;
    c->host = strdup(opts->host);
    c->connect_host = strdup(connect_host);
    c->ctx = SSL_CTX_new(TLS_client_method());
    if (!c->host || !c->connect_host || !c->ctx) {
        rc = dps_error_set(err, DPS_ERR_NOMEM, "out of memory");
        goto fail;
    }
    SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    if (opts->ca_file) {
        if (!SSL_CTX_load_verify_locations(c->ctx, opts->ca_file, NULL)) {
            char buf[200];

            rc = dps_error_set(err, DPS_ERR_TLS, "cannot load ca file '%s': %s", opts->ca_file,
                               ssl_errstr(buf, sizeof(buf)));
            goto fail;
        }
    } else if (!SSL_CTX_set_default_verify_paths(c->ctx)) {
        rc = dps_error_set(err, DPS_ERR_TLS, "cannot load the system trust store");
        goto fail;
    }
    if (opts->cert_file || opts->key_file) {
        char buf[200];

        if (!opts->cert_file || !opts->key_file) {
            rc = dps_error_set(err, DPS_ERR_INVAL,
                               "a client certificate needs both its file and "
                               "its key file");
            goto fail;
        }
        if (SSL_CTX_use_certificate_chain_file(c->ctx, opts->cert_file) != 1) {
            rc = dps_error_set(err, DPS_ERR_TLS, "cannot load certificate file '%s': %s",
                               opts->cert_file, ssl_errstr(buf, sizeof(buf)));
            goto fail;
        }
        if (SSL_CTX_use_PrivateKey_file(c->ctx, opts->key_file, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(c->ctx) != 1) {
            rc = dps_error_set(err, DPS_ERR_TLS, "cannot use key file '%s': %s", opts->key_file,
                               ssl_errstr(buf, sizeof(buf)));
            goto fail;
        }
    }
    *out = c;
    return DPS_OK;
fail:
    https_conn_free(c);
    return rc;
}

void https_conn_free(struct https_conn *c)
{
    if (!c)
        return;
    conn_close(c);
    SSL_CTX_free(c->ctx);
    free(c->host);
    free(c->connect_host);
    free(c);
}

unsigned https_conn_count(const struct https_conn *c)
{
    return c->connects;
}

const char *https_response_header(const struct https_response *r, const char *name)
{
    for (size_t i = 0; i < r->nheaders; i++) {
        if (!strcasecmp(r->headers[i].name, name))
            return r->headers[i].value;
    }
    return NULL;
}

void https_response_release(struct https_response *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nheaders; i++) {
        free((char *)r->headers[i].name);
        free((char *)r->headers[i].value);
    }
    free(r->headers);
    free(r->body);
    memset(r, 0, sizeof(*r));
}
