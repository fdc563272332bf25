/* SPDX-License-Identifier: MIT */
/*
 * The request reader (http-parser callbacks that build a struct
 * http_request under the limits), percent-decoding, the router and the
 * Azure error body. Nothing here touches a socket.
 */
#include "core/common.h"
#include "server/http.h"

#include "core/b64.h"
#include "core/hex.h"
#include "core/rand_pool.h"

#include <ctype.h>
#include <http_parser.h>
#include <jansson.h>

const struct http_limits http_default_limits = {
    .max_url = 8 * 1024,
    .max_header_bytes = 32 * 1024,
    .max_headers = 64,
    .max_body = 96 * 1024,
};

#define MAX_SEGMENTS 32
#define MAX_QUERY 32
#define MAX_PARAMS 8

struct http_reader {
    http_parser parser;
    http_parser_settings settings;
    struct http_limits limits;
    struct http_request *req; /* being built */
    struct http_request *done;
    size_t url_len, url_cap;
    size_t header_bytes;
    size_t body_cap;
    bool last_was_value;
    bool in_message;
    bool expect_continue;
    int status;      /* set by a callback that rejects the request */
    const char *why; /* and its reason */
};

/* Appends len bytes to *buf (cap grows geometrically, *len tracks the used part). */
static void append(char **buf, size_t *len, size_t *cap, const char *at, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 64;
        while (c < *len + n + 1)
            c *= 2;
        *buf = xrealloc(*buf, c);
        *cap = c;
    }
    memcpy(*buf + *len, at, n);
    *len += n;
    (*buf)[*len] = '\0';
}

static int reject(struct http_reader *r, int status, const char *why)
{
    r->status = status;
    r->why = why;
    /* Not 1: on_headers_complete would read that as "no body follows". */
    return -1;
}

static int on_message_begin(http_parser *p)
{
    struct http_reader *r = p->data;

    http_request_free(r->req);
    r->req = xcalloc(1, sizeof(*r->req));
    r->url_len = r->url_cap = r->header_bytes = r->body_cap = 0;
    r->last_was_value = false;
    r->in_message = true;
    r->expect_continue = false;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    struct http_reader *r = p->data;

    if (r->url_len + n > r->limits.max_url)
        return reject(r, 414, "request target too long");
    append(&r->req->target, &r->url_len, &r->url_cap, at, n);
    return 0;
}

static int header_bytes(struct http_reader *r, size_t n)
{
    r->header_bytes += n;
    return r->header_bytes > r->limits.max_header_bytes;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    struct http_reader *r = p->data;
    struct http_request *req = r->req;
    struct http_header *h;

    if (header_bytes(r, n))
        return reject(r, 431, "request headers too large");
    if (req->nheaders == 0 || r->last_was_value) {
        if (req->nheaders >= r->limits.max_headers)
            return reject(r, 431, "too many request headers");
        req->headers = xrealloc(req->headers, (req->nheaders + 1) * sizeof(*req->headers));
        h = &req->headers[req->nheaders++];
        h->name = xstrdup("");
        h->value = xstrdup("");
        r->last_was_value = false;
    }
    h = &req->headers[req->nheaders - 1];
    {
        size_t len = strlen(h->name), cap = len + 1;
        append(&h->name, &len, &cap, at, n);
    }
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    struct http_reader *r = p->data;
    struct http_header *h;
    size_t len, cap;

    if (header_bytes(r, n))
        return reject(r, 431, "request headers too large");
    if (r->req->nheaders == 0)
        return reject(r, 400, "header value without a name");
    h = &r->req->headers[r->req->nheaders - 1];
    len = strlen(h->value);
    cap = len + 1;
    append(&h->value, &len, &cap, at, n);
    r->last_was_value = true;
    return 0;
}

static void add_segment(struct http_request *req, char *seg)
{
    req->segments = xrealloc(req->segments, (req->nsegments + 1) * sizeof(*req->segments));
    req->segments[req->nsegments++] = seg;
}

/* Splits the target into path, decoded segments and decoded query parameters. */
static int split_target(struct http_reader *r)
{
    struct http_request *req = r->req;
    const char *t = req->target, *q, *s, *end;

    if (!t || t[0] != '/')
        return reject(r, 400, "request target must be an absolute path");
    q = strchr(t, '?');
    end = q ? q : t + strlen(t);
    req->path = xstrndup(t, (size_t)(end - t));
    for (s = t; s < end;) {
        const char *slash;
        while (s < end && *s == '/')
            s++;
        if (s == end)
            break;
        slash = memchr(s, '/', (size_t)(end - s));
        if (!slash)
            slash = end;
        char *seg = http_percent_decode(s, (size_t)(slash - s), false);
        if (!seg)
            return reject(r, 400, "malformed percent-encoding in the path");
        if (req->nsegments >= MAX_SEGMENTS) {
            free(seg);
            return reject(r, 414, "too many path segments");
        }
        add_segment(req, seg);
        s = slash;
    }
    for (s = q ? q + 1 : NULL; s && *s;) {
        const char *amp = strchr(s, '&'), *eq;
        size_t len = amp ? (size_t)(amp - s) : strlen(s);
        if (len) {
            if (req->nquery >= MAX_QUERY)
                return reject(r, 400, "too many query parameters");
            eq = memchr(s, '=', len);
            size_t nl = eq ? (size_t)(eq - s) : len;
            char *name = http_percent_decode(s, nl, true);
            char *value = eq ? http_percent_decode(eq + 1, len - nl - 1, true) : xstrdup("");
            if (!name || !value) {
                free(name);
                free(value);
                return reject(r, 400, "malformed percent-encoding in the query");
            }
            req->query = xrealloc(req->query, (req->nquery + 1) * sizeof(*req->query));
            req->query[req->nquery].name = name;
            req->query[req->nquery++].value = value;
        }
        s = amp ? amp + 1 : s + len;
    }
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct http_reader *r = p->data;
    struct http_request *req = r->req;

    if (p->http_major != 1)
        return reject(r, 505, "only HTTP/1.x is supported");
    snprintf(req->method, sizeof(req->method), "%s", http_method_str(p->method));
    req->keep_alive = http_should_keep_alive(p);
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > r->limits.max_body)
        return reject(r, 413, "request body too large");
    const char *expect = http_request_header(req, "expect");
    if (expect && strcasecmp(expect, "100-continue") == 0 && p->http_minor >= 1 &&
        ((p->flags & F_CHUNKED) || ((p->flags & F_CONTENTLENGTH) && p->content_length > 0)))
        r->expect_continue = true;
    return split_target(r);
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    struct http_reader *r = p->data;

    if (r->req->body_len + n > r->limits.max_body)
        return reject(r, 413, "request body too large");
    append(&r->req->body, &r->req->body_len, &r->body_cap, at, n);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct http_reader *r = p->data;

    if (!r->req->body)
        r->req->body = xstrdup("");
    http_uuid(r->req->tracking_id);
    r->done = r->req;
    r->req = NULL;
    r->in_message = false;
    /* One request at a time: the caller answers it before reading the next. */
    http_parser_pause(p, 1);
    return 0;
}

struct http_reader *http_reader_new(const struct http_limits *limits)
{
    struct http_reader *r = xcalloc(1, sizeof(*r));

    r->limits = *limits;
    http_parser_init(&r->parser, HTTP_REQUEST);
    r->parser.data = r;
    http_parser_settings_init(&r->settings);
    r->settings.on_message_begin = on_message_begin;
    r->settings.on_url = on_url;
    r->settings.on_header_field = on_header_field;
    r->settings.on_header_value = on_header_value;
    r->settings.on_headers_complete = on_headers_complete;
    r->settings.on_body = on_body;
    r->settings.on_message_complete = on_message_complete;
    return r;
}

void http_reader_free(struct http_reader *r)
{
    if (!r)
        return;
    http_request_free(r->req);
    http_request_free(r->done);
    free(r);
}

bool http_reader_take_continue(struct http_reader *r)
{
    bool e = r->expect_continue;

    r->expect_continue = false;
    return e;
}

bool http_reader_idle(const struct http_reader *r)
{
    return !r->in_message;
}

int http_reader_feed(struct http_reader *r, const char *buf, size_t len, size_t *consumed,
                     struct http_request **out, int *status, struct dps_error *err)
{
    size_t n;
    enum http_errno e;

    *out = NULL;
    *consumed = 0;
    if (HTTP_PARSER_ERRNO(&r->parser) == HPE_PAUSED)
        http_parser_pause(&r->parser, 0);
    n = http_parser_execute(&r->parser, &r->settings, buf, len);
    e = HTTP_PARSER_ERRNO(&r->parser);
    if (e != HPE_OK && e != HPE_PAUSED) {
        if (r->status) {
            *status = r->status;
            return dps_error_set(err, r->status == 400 ? DPS_ERR_PROTOCOL : DPS_ERR_TOO_LARGE, "%s",
                                 r->why);
        }
        *status = e == HPE_HEADER_OVERFLOW ? 431 : 400;
        return dps_error_set(err, DPS_ERR_PROTOCOL, "malformed request: %s",
                             http_errno_description(e));
    }
    *consumed = n;
    *out = r->done;
    r->done = NULL;
    return DPS_OK;
}

static void free_params(struct http_param *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(p[i].name);
        free(p[i].value);
    }
    free(p);
}

void http_request_free(struct http_request *req)
{
    if (!req)
        return;
    free(req->target);
    free(req->path);
    for (size_t i = 0; i < req->nsegments; i++)
        free(req->segments[i]);
    free(req->segments);
    free_params(req->query, req->nquery);
    free_params(req->params, req->nparams);
    for (size_t i = 0; i < req->nheaders; i++) {
        free(req->headers[i].name);
        free(req->headers[i].value);
    }
    free(req->headers);
    for (size_t i = 0; i < req->nreply_headers; i++) {
        free(req->reply_headers[i].name);
        free(req->reply_headers[i].value);
    }
    free(req->reply_headers);
    free(req->body);
    free(req);
}

const char *http_request_header(const struct http_request *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (strcasecmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    return NULL;
}

const char *http_request_query(const struct http_request *req, const char *name)
{
    for (size_t i = 0; i < req->nquery; i++)
        if (strcmp(req->query[i].name, name) == 0)
            return req->query[i].value;
    return NULL;
}

const char *http_request_param(const struct http_request *req, const char *name)
{
    for (size_t i = 0; i < req->nparams; i++)
        if (strcmp(req->params[i].name, name) == 0)
            return req->params[i].value;
    return NULL;
}

char *http_percent_decode(const char *s, size_t len, bool plus_is_space)
{
    char *out = xmalloc(len + 1);
    size_t j = 0;

    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= len)
                goto bad;
            hi = pct_hex_value((unsigned char)s[i + 1]);
            lo = pct_hex_value((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                goto bad;
            c = (char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        } else if (c == '\0') {
            goto bad;
        }
        out[j++] = c;
    }
    out[j] = '\0';
    return out;
bad:
    free(out);
    return NULL;
}

struct http_router {
    const struct http_route **routes;
    size_t n;
};

struct http_router *http_router_new(void)
{
    return xcalloc(1, sizeof(struct http_router));
}

void http_router_free(struct http_router *router)
{
    if (!router)
        return;
    free(router->routes);
    free(router);
}

void http_router_add(struct http_router *router, const struct http_route *routes, size_t n)
{
    router->routes = xrealloc(router->routes, (router->n + n) * sizeof(*router->routes));
    for (size_t i = 0; i < n; i++)
        router->routes[router->n++] = &routes[i];
}

/*
 * Matches pattern against the request's segments. With caps non-NULL,
 * records the captures there (at most MAX_PARAMS).
 */
static bool match_path(const char *pattern, const struct http_request *req, struct http_param *caps,
                       size_t *ncaps)
{
    const char *p = pattern;
    size_t i = 0, nc = 0;

    for (;;) {
        const char *end;
        size_t len;

        while (*p == '/')
            p++;
        if (!*p)
            break;
        end = strchr(p, '/');
        len = end ? (size_t)(end - p) : strlen(p);
        if (len == 1 && *p == '*' && !end) {
            i = req->nsegments;
            break;
        }
        if (i >= req->nsegments)
            return false;
        if (len >= 2 && p[0] == '{' && p[len - 1] == '}') {
            if (caps && nc < MAX_PARAMS) {
                caps[nc].name = xstrndup(p + 1, len - 2);
                caps[nc].value = xstrdup(req->segments[i]);
                nc++;
            }
        } else if (strlen(req->segments[i]) != len || strncasecmp(req->segments[i], p, len) != 0) {
            return false;
        }
        i++;
        p += len;
    }
    if (i != req->nsegments)
        return false;
    if (ncaps)
        *ncaps = nc;
    return true;
}

const struct http_route *http_router_match(const struct http_router *router,
                                           struct http_request *req, int *status)
{
    bool path_matched = false;

    for (size_t i = 0; i < router->n; i++) {
        const struct http_route *rt = router->routes[i];
        struct http_param caps[MAX_PARAMS];
        size_t nc = 0;

        if (!match_path(rt->pattern, req, NULL, NULL))
            continue;
        path_matched = true;
        if (rt->method && strcasecmp(rt->method, req->method) != 0)
            continue;
        match_path(rt->pattern, req, caps, &nc);
        free_params(req->params, req->nparams);
        req->params = xmalloc((nc ? nc : 1) * sizeof(*req->params));
        memcpy(req->params, caps, nc * sizeof(*caps));
        req->nparams = nc;
        return rt;
    }
    *status = path_matched ? 405 : 404;
    return NULL;
}

void http_uuid(char buf[37])
{
    unsigned char b[16];

    if (rand_pool_bytes(b, sizeof(b)) != 0) {
        /* The RNG failing is not something a request can recover from. */
        fprintf(stderr, "dpsd: random number generator failed\n");
        abort();
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    hex_uuid_format(b, buf);
}

void http_utc_now(char buf[32])
{
    struct timespec ts;
    struct tm tm;
    size_t n;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, 32 - n, ".%07ldZ", ts.tv_nsec / 100);
}

char *http_error_body(int status, int sub_code, const char *tracking_id, const char *message,
                      size_t *len)
{
    char now[32];
    json_t *o;
    char *s;

    http_utc_now(now);
    o = json_pack("{s:I,s:s,s:s,s:s}", "errorCode", (json_int_t)status * 1000 + sub_code,
                  "trackingId", tracking_id ? tracking_id : "", "message", message, "timestampUtc",
                  now);
    s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    if (!s) {
        /* Only reachable with invalid UTF-8 in message or out of memory. */
        s = xstrdup("{\"errorCode\":500000,\"message\":\"internal error\"}");
    }
    *len = strlen(s);
    return s;
}

const char *http_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Payload Too Large";
    case 414:
        return "URI Too Long";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}
