/* SPDX-License-Identifier: MIT */
/*
 * Workers, connections and replies. Each connection lives on one worker
 * and is touched only by that worker's thread, so nothing here takes a
 * lock. A connection answers one request at a time, in order: while a
 * request waits for its (possibly deferred) reply, later pipelined bytes
 * stay buffered, bounded by the read watermark. The same connection carries
 * MQTT (on the MQTT port, or after a WebSocket upgrade on the HTTPS port):
 * then an mqtt_session (server/mqtt_session.h) reads the bytes instead of
 * the HTTP reader.
 */
#include "core/common.h"
#include "server/server.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <openssl/err.h>

#include "server/log.h"
#include "server/mqtt_session.h"
#include "server/tls.h"
#include "server/websocket.h"

/* What a connection speaks now. */
enum conn_proto {
    CONN_HTTP,      /* HTTP/1.1 requests through the router */
    CONN_MQTT,      /* MQTT directly on TLS (the MQTT port) */
    CONN_WEBSOCKET, /* MQTT inside WebSocket binary messages, after an upgrade */
};

struct conn {
    struct worker *w;
    struct bufferevent *bev; /* NULL once closed */
    struct http_reader *reader;
    struct http_request *pending; /* dispatched, not yet answered */
    STACK_OF(X509) * chain;
    bool chain_fetched;
    bool in_dispatch;       /* inside a handler: the read loop resumes by itself */
    bool close_after_write; /* the last reply is queued; close when it is sent */
    enum conn_proto proto;
    struct mqtt_session *mqtt; /* CONN_MQTT, CONN_WEBSOCKET: made on the first bytes */
    struct websocket *ws;      /* CONN_WEBSOCKET */
    struct evbuffer *ws_in;    /* CONN_WEBSOCKET: MQTT bytes unwrapped from messages */
    long read_timeout;         /* seconds, as last set on bev */
    char peer[64];
    struct conn *prev, *next;
};

#define WORKER_SLOTS 8

struct worker_slot {
    const void *key;
    void *data;
    void (*free_fn)(void *);
};

struct worker {
    struct server *srv;
    int index;
    struct event_base *base;
    pthread_t thread;
    int fd; /* listening socket until the listener owns it */
    struct evconnlistener *listener;
    int mqtt_fd; /* MQTT listening socket until its listener owns it */
    struct evconnlistener *mqtt_listener;
    struct conn *conns;
    size_t nconns; /* including closed connections with a pending request */
    bool draining;
    struct event *drain_timer;
    struct worker_slot slots[WORKER_SLOTS];
};

struct server {
    const struct config *cfg;
    SSL_CTX *ssl;
    const struct http_router *router;
    void *app;
    struct http_limits limits;
    struct timespec started;
    char https_address[300];
    struct mqtt_service *mqtt; /* NULL: MQTT is not served */
    char mqtt_address[300];
    bool mqtt_bound; /* the MQTT port is served (not only WebSocket) */
    int claims[2];   /* claim_address() of the HTTPS and the MQTT address, or -1 */
    struct worker *workers;
    size_t nworkers;
};

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void conn_process(struct conn *c);

/* Frees a connection whose socket is closed and which has no request outstanding. */
static void conn_free(struct conn *c)
{
    struct worker *w = c->w;

    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->nconns--;
    http_reader_free(c->reader);
    mqtt_session_free(c->mqtt);
    websocket_free(c->ws);
    if (c->ws_in)
        evbuffer_free(c->ws_in);
    sk_X509_pop_free(c->chain, X509_free);
    free(c);
    if (w->draining && w->nconns == 0)
        event_base_loopexit(w->base, NULL);
}

/* True while a handler or the group commit still owes this connection an answer. */
static bool conn_owed(const struct conn *c)
{
    return c->pending || (c->mqtt && mqtt_session_outstanding(c->mqtt) > 0);
}

/*
 * Sends TLS close_notify so that the peer can tell an orderly close from a
 * truncated stream (OpenSSL 3 clients report "unexpected eof while
 * reading" without it). Only after a completed handshake, with nothing
 * queued before the alert, and never after a fatal TLS error; the peer's
 * own close_notify is not awaited. The alert is one small record written
 * straight to the socket; if the socket cannot take it, it is dropped.
 */
static void conn_send_close_notify(struct conn *c)
{
    SSL *ssl = bufferevent_openssl_get_ssl(c->bev);

    if (!ssl || !SSL_is_init_finished(ssl) || (SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN) ||
        evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
        return;
    ERR_set_mark();
    SSL_shutdown(ssl);
    ERR_pop_to_mark();
}

/*
 * Closes the socket, first sending close_notify when notify is set (an
 * orderly close); the struct lives on while an answer is still owed.
 */
static void conn_close(struct conn *c, bool notify)
{
    if (c->bev) {
        if (notify)
            conn_send_close_notify(c);
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
    if (!conn_owed(c))
        conn_free(c);
}

/*
 * Writes bytes to the peer. When nothing is queued before them they go to
 * the socket at once with one SSL_write(): through the bufferevent they
 * would wait for the next pass of the loop, and for a write event that
 * costs two epoll_ctl calls and an epoll_wait per answer. Whatever the
 * socket does not take at once (SSL_write wants to wait, or failed) is
 * queued in the output buffer, which retries the same bytes as OpenSSL
 * requires, or reports the error.
 */
static void conn_write(struct conn *c, const void *buf, size_t len)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    SSL *ssl;

    if (len == 0)
        return;
    if (evbuffer_get_length(out) == 0 && len <= INT_MAX &&
        (ssl = bufferevent_openssl_get_ssl(c->bev)) && SSL_is_init_finished(ssl)) {
        ERR_clear_error();
        if (SSL_write(ssl, buf, (int)len) == (int)len) {
            /* as the bufferevent would: the write callback closes after the last reply */
            if (c->close_after_write)
                bufferevent_trigger(c->bev, EV_WRITE, BEV_TRIG_DEFER_CALLBACKS);
            return;
        }
        ERR_clear_error();
    }
    evbuffer_add(out, buf, len);
}

/* Sends status line, headers and body; with close, the connection closes once it is sent. */
static void conn_send(struct conn *c, int status, const char *content_type,
                      const struct http_header *extra, size_t nextra, const char *tracking_id,
                      const char *body, size_t len, bool close)
{
    struct evbuffer *msg = evbuffer_new();
    struct evbuffer_iovec v;

    if (!msg) {
        log_msg(LOG_ERROR, "%s: out of memory for a reply", c->peer);
        abort();
    }
    evbuffer_add_printf(msg, "HTTP/1.1 %d %s\r\n", status, http_reason(status));
    if (content_type)
        evbuffer_add_printf(msg, "Content-Type: %s\r\n", content_type);
    evbuffer_add_printf(msg, "Content-Length: %zu\r\n", len);
    if (tracking_id)
        evbuffer_add_printf(msg, "x-ms-request-id: %s\r\n", tracking_id);
    for (size_t i = 0; i < nextra; i++)
        evbuffer_add_printf(msg, "%s: %s\r\n", extra[i].name, extra[i].value);
    if (close)
        evbuffer_add_printf(msg, "Connection: close\r\n");
    evbuffer_add(msg, "\r\n", 2);
    evbuffer_add(msg, body, len);
    if (close) {
        c->close_after_write = true;
        bufferevent_disable(c->bev, EV_READ);
    }
    /* one write, so that headers and body leave in one TLS record */
    v.iov_len = evbuffer_get_length(msg);
    v.iov_base = evbuffer_pullup(msg, -1);
    conn_write(c, v.iov_base, v.iov_len);
    evbuffer_free(msg);
}

static const char json_content_type[] = "application/json; charset=utf-8";

/* Answers a request the reader rejected, then closes. */
static void conn_reject(struct conn *c, int status, const char *message)
{
    char id[37];
    size_t len;
    char *body;

    http_uuid(id);
    body = http_error_body(status, 0, id, message, &len);
    log_access("-", "-", status, 0, c->peer, id);
    conn_send(c, status, json_content_type, NULL, 0, id, body, len, true);
    free(body);
}

void http_reply(struct http_request *req, int status, const char *content_type, const char *body,
                size_t len)
{
    struct conn *c = req->conn;
    bool close;

    if (!c) {
        http_request_free(req);
        return;
    }
    assert(c->pending == req);
    log_access(req->method, req->path, status, now_ms() - req->start_ms, c->peer, req->tracking_id);
    c->pending = NULL;
    if (!c->bev) {
        /* The client went away while the handler worked. */
        http_request_free(req);
        conn_free(c);
        return;
    }
    close = !req->keep_alive || c->w->draining;
    conn_send(c, status, content_type, req->reply_headers, req->nreply_headers, req->tracking_id,
              body ? body : "", len, close);
    http_request_free(req);
    if (!close && !c->in_dispatch)
        conn_process(c);
}

void http_reply_json(struct http_request *req, int status, const char *json, size_t len)
{
    http_reply(req, status, json_content_type, json, len);
}

void http_reply_jansson(struct http_request *req, int status, json_t *obj)
{
    char *s = obj ? json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

    json_decref(obj);
    if (!s) {
        http_reply_error(req, 500, 0, "cannot encode the reply");
        return;
    }
    http_reply_json(req, status, s, strlen(s));
    free(s);
}

void http_reply_error(struct http_request *req, int status, int sub_code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    size_t len;
    char *body;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    body = http_error_body(status, sub_code, req->tracking_id, msg, &len);
    http_reply_json(req, status, body, len);
    free(body);
}

void http_reply_header(struct http_request *req, const char *name, const char *value)
{
    struct http_header *h;

    if (strpbrk(name, "\r\n:") || strpbrk(value, "\r\n")) {
        log_msg(LOG_ERROR, "reply header '%s' dropped: it contains CR, LF or ':'", name);
        return;
    }
    req->reply_headers =
        xrealloc(req->reply_headers, (req->nreply_headers + 1) * sizeof(*req->reply_headers));
    h = &req->reply_headers[req->nreply_headers++];
    h->name = xstrdup(name);
    h->value = xstrdup(value);
}

bool http_request_abandoned(const struct http_request *req)
{
    return req->conn && !req->conn->bev;
}

static void healthz(struct http_request *req, void *arg)
{
    struct server *srv = arg;
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    http_reply_jansson(req, 200,
                       json_pack("{s:s,s:s,s:I}", "status", "ok", "version", DPS_VERSION,
                                 "uptimeSeconds", (json_int_t)(now.tv_sec - srv->started.tv_sec)));
}

/* The client's certificate chain, read from the TLS session once it is established. */
static void conn_fetch_chain(struct conn *c)
{
    if (!c->chain_fetched) {
        SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
        c->chain = ssl ? tls_peer_chain(ssl) : NULL;
        c->chain_fetched = true;
    }
}

/* Stops reading and closes once everything queued is written. */
static void conn_finish(struct conn *c)
{
    c->close_after_write = true;
    bufferevent_disable(c->bev, EV_READ);
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
        conn_close(c, true);
}

static void conn_set_read_timeout(struct conn *c, long seconds)
{
    struct timeval rd = {.tv_sec = seconds}, wr = {.tv_sec = c->w->srv->cfg->idle_timeout};

    if (seconds == c->read_timeout)
        return;
    c->read_timeout = seconds;
    bufferevent_set_timeouts(c->bev, &rd, &wr);
}

/* A deferred answer may arrive after the peer left: then its bytes are dropped. */
static void mqtt_send_tls(void *arg, const void *buf, size_t len)
{
    struct conn *c = arg;

    if (c->bev)
        conn_write(c, buf, len);
}

static void mqtt_send_ws(void *arg, const void *buf, size_t len)
{
    struct conn *c = arg;

    if (c->bev)
        websocket_send(c->ws, buf, len);
}

static bool ws_on_message(void *arg, const void *buf, size_t len)
{
    struct conn *c = arg;

    evbuffer_add(c->ws_in, buf, len);
    return mqtt_session_input(c->mqtt, c->ws_in) == MQTT_SESSION_OPEN;
}

static bool conn_mqtt_output_full(struct conn *c);

/*
 * After a deferred MQTT answer: free a connection whose peer left; close
 * after a deferred CONNECT refusal or over the output limit; else read
 * the packets that waited for a deferred CONNACK.
 */
static void mqtt_answered(void *arg)
{
    struct conn *c = arg;
    struct evbuffer *in;

    if (!c->bev) {
        if (!conn_owed(c))
            conn_free(c);
        return;
    }
    if (c->close_after_write)
        return;
    if (!mqtt_session_closing(c->mqtt) && !conn_mqtt_output_full(c)) {
        in = c->proto == CONN_MQTT ? bufferevent_get_input(c->bev) : c->ws_in;
        if (evbuffer_get_length(in) == 0 || mqtt_session_input(c->mqtt, in) == MQTT_SESSION_OPEN) {
            conn_set_read_timeout(c,
                                  mqtt_session_read_timeout(c->mqtt, c->w->srv->cfg->idle_timeout));
            return;
        }
    }
    if (c->proto == CONN_WEBSOCKET)
        websocket_close(c->ws);
    conn_finish(c);
}

static struct mqtt_session *conn_mqtt_session(struct conn *c, mqtt_send_fn send)
{
    struct server *srv = c->w->srv;
    struct mqtt_backend be = mqtt_service_backend(srv->mqtt, c->w);
    struct mqtt_session *s;

    conn_fetch_chain(c);
    s = mqtt_session_new(&be, mqtt_service_max_packet(srv->mqtt), c->chain, c->peer, send, c);
    mqtt_session_set_answered(s, mqtt_answered);
    return s;
}

/* True (and logged) when the peer leaves more responses unread than allowed. */
static bool conn_mqtt_output_full(struct conn *c)
{
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) <= MQTT_SESSION_MAX_OUTPUT)
        return false;
    log_msg(LOG_WARNING,
            "%s: mqtt: closing the connection: more than %d bytes of responses are not read",
            c->peer, MQTT_SESSION_MAX_OUTPUT);
    return true;
}

/* Reads MQTT, directly or through WebSocket frames, and keeps the timeouts in step. */
static void conn_mqtt_read(struct conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    bool open;

    if (c->close_after_write)
        return;
    if (c->proto == CONN_MQTT) {
        if (!c->mqtt)
            c->mqtt = conn_mqtt_session(c, mqtt_send_tls);
        open = mqtt_session_input(c->mqtt, in) == MQTT_SESSION_OPEN;
    } else {
        open = websocket_input(c->ws, in);
    }
    if (open && conn_mqtt_output_full(c))
        open = false;
    if (!open) {
        if (c->proto == CONN_WEBSOCKET)
            websocket_close(c->ws);
        evbuffer_drain(in, evbuffer_get_length(in));
        conn_finish(c);
        return;
    }
    conn_set_read_timeout(c, mqtt_session_read_timeout(c->mqtt, c->w->srv->cfg->idle_timeout));
}

/* True when a header value holds token, in a comma-separated list, in any case. */
static bool header_has_token(const char *value, const char *token)
{
    size_t n = strlen(token);

    for (const char *p = value; p && *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (strncasecmp(p, token, n) == 0 && (p[n] == '\0' || strchr(" \t,", p[n])))
            return true;
        p = strchr(p, ',');
    }
    return false;
}

/*
 * GET /$iothub/websocket with an upgrade to WebSocket and the subprotocol
 * mqtt (§5.5): answers 101 and turns the connection into MQTT over
 * WebSocket; anything else gets an HTTP error.
 */
static void conn_upgrade(struct conn *c, struct http_request *req)
{
    struct server *srv = c->w->srv;
    char accept[WEBSOCKET_ACCEPT_SIZE], protocol[WEBSOCKET_PROTOCOL_MAX + 1];
    const char *version = http_request_header(req, "Sec-WebSocket-Version");

    if (strcmp(req->method, "GET") != 0) {
        http_reply_error(req, 405, 0, "method '%s' is not allowed on '%s'", req->method,
                         WEBSOCKET_MQTT_PATH);
        return;
    }
    if (!header_has_token(http_request_header(req, "Upgrade"), "websocket") ||
        !header_has_token(http_request_header(req, "Connection"), "upgrade")) {
        http_reply_error(req, 400, 0, "'%s' serves only a WebSocket upgrade", WEBSOCKET_MQTT_PATH);
        return;
    }
    if (!version || strcmp(version, "13") != 0) {
        http_reply_header(req, "Sec-WebSocket-Version", "13");
        http_reply_error(req, 426, 0, "'Sec-WebSocket-Version' must be 13");
        return;
    }
    if (!websocket_accept_key(http_request_header(req, "Sec-WebSocket-Key"), accept)) {
        http_reply_error(req, 400, 0, "'Sec-WebSocket-Key' is not a 16-byte nonce in base64");
        return;
    }
    if (!websocket_select_mqtt(http_request_header(req, "Sec-WebSocket-Protocol"), protocol)) {
        http_reply_error(req, 400, 0, "'Sec-WebSocket-Protocol' must name 'mqtt'");
        return;
    }
    evbuffer_add_printf(bufferevent_get_output(c->bev),
                        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
                        "Sec-WebSocket-Protocol: %s\r\nx-ms-request-id: %s\r\n\r\n",
                        accept, protocol, req->tracking_id);
    log_access(req->method, req->path, 101, now_ms() - req->start_ms, c->peer, req->tracking_id);
    c->pending = NULL;
    http_request_free(req);
    c->proto = CONN_WEBSOCKET;
    c->ws_in = evbuffer_new();
    c->ws = websocket_new(mqtt_service_max_packet(srv->mqtt), ws_on_message, c,
                          bufferevent_get_output(c->bev));
    c->mqtt = conn_mqtt_session(c, mqtt_send_ws);
    if (!c->ws_in || !c->ws) {
        log_msg(LOG_ERROR, "%s: cannot set up a websocket", c->peer);
        conn_finish(c);
        return;
    }
    conn_set_read_timeout(c, MQTT_SESSION_CONNECT_TIMEOUT);
}

static bool is_websocket_path(const struct http_request *req)
{
    return req->nsegments == 2 && strcasecmp(req->segments[0], "$iothub") == 0 &&
           strcasecmp(req->segments[1], "websocket") == 0;
}

static void dispatch(struct conn *c, struct http_request *req)
{
    struct server *srv = c->w->srv;
    const struct http_route *rt = NULL;
    int status = 404;

    conn_fetch_chain(c);
    req->conn = c;
    req->worker = c->w;
    req->peer = c->peer;
    req->peer_chain = c->chain;
    req->start_ms = now_ms();
    c->pending = req;
    c->in_dispatch = true;
    if (srv->mqtt && is_websocket_path(req)) {
        conn_upgrade(c, req);
    } else if (req->nsegments == 1 && strcasecmp(req->segments[0], "healthz") == 0) {
        if (strcmp(req->method, "GET") == 0)
            healthz(req, srv);
        else
            http_reply_error(req, 405, 0, "method '%s' is not allowed on '/healthz'", req->method);
    } else if (srv->router && (rt = http_router_match(srv->router, req, &status))) {
        rt->handler(req, rt->arg);
    } else if (status == 405) {
        http_reply_error(req, 405, 0, "method '%s' is not allowed on this path", req->method);
    } else {
        http_reply_error(req, 404, 0, "no such resource");
    }
    c->in_dispatch = false;
}

/* Reads requests from the input buffer and dispatches them, one at a time. */
static void conn_process(struct conn *c)
{
    while (c->bev && c->proto == CONN_HTTP && !c->pending && !c->close_after_write) {
        struct evbuffer *in = bufferevent_get_input(c->bev);
        struct evbuffer_iovec v;
        struct http_request *req;
        struct dps_error err;
        size_t used;
        int status = 400;

        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
            break;
        if (http_reader_feed(c->reader, v.iov_base, v.iov_len, &used, &req, &status, &err) !=
            DPS_OK) {
            log_msg(LOG_DEBUG, "%s: request rejected: %s", c->peer, err.msg);
            evbuffer_drain(in, evbuffer_get_length(in));
            conn_reject(c, status, err.msg);
            break;
        }
        evbuffer_drain(in, used);
        if (http_reader_take_continue(c->reader) && !req)
            evbuffer_add(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n", 25);
        if (req)
            dispatch(c, req);
        else if (used == 0)
            break;
    }
    if (c->bev && c->proto != CONN_HTTP) {
        /* Bytes that followed the upgrade request are the first WebSocket frames. */
        if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
            conn_mqtt_read(c);
        return;
    }
    if (c->bev && c->w->draining && !c->pending && !c->close_after_write &&
        http_reader_idle(c->reader))
        conn_close(c, true);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;

    if (c->proto == CONN_HTTP)
        conn_process(c);
    else
        conn_mqtt_read(c);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;

    if (c->close_after_write && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        conn_close(c, true);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;
    SSL *ssl;

    if (what & BEV_EVENT_CONNECTED) {
        /*
         * Acknowledge the client's last handshake flight now. The server
         * sends nothing after it (no session tickets), so the ACK would
         * wait for the delayed-ACK timer (40 ms), and a client whose
         * Nagle holds its request until that ACK (most device stacks do
         * not set TCP_NODELAY) would wait with it.
         */
        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_QUICKACK, &(int){1}, sizeof(int));
        return;
    }
    if ((what & BEV_EVENT_TIMEOUT) && c->pending && !c->close_after_write) {
        /* Waiting on our own handler is not the client being idle. */
        bufferevent_enable(bev, EV_READ | EV_WRITE);
        return;
    }
    if ((what & BEV_EVENT_TIMEOUT) && c->proto != CONN_HTTP && !c->close_after_write) {
        if (c->mqtt && mqtt_session_connected(c->mqtt))
            log_msg(LOG_WARNING,
                    "%s: mqtt: closing the connection: nothing received for %ld s "
                    "(keep-alive)",
                    c->peer, c->read_timeout);
        else
            log_msg(LOG_WARNING, "%s: mqtt: closing the connection: no CONNECT within %d s",
                    c->peer, MQTT_SESSION_CONNECT_TIMEOUT);
    }
    if (what & BEV_EVENT_ERROR) {
        unsigned long e = bufferevent_get_openssl_error(bev);
        log_msg(LOG_DEBUG, "%s: connection error: %s", c->peer,
                e ? ERR_reason_error_string(e) : strerror(EVUTIL_SOCKET_ERROR()));
        conn_close(c, false);
        return;
    }
    /*
     * An idle timeout is our orderly close; at end of file, answer the
     * peer's close_notify, but not a bare TCP close (a fatal TLS error in
     * OpenSSL 3, after which no alert may be sent).
     */
    ssl = bufferevent_openssl_get_ssl(bev);
    conn_close(c, (what & BEV_EVENT_TIMEOUT) ||
                      (ssl && (SSL_get_shutdown(ssl) & SSL_RECEIVED_SHUTDOWN)));
}

static void format_peer(const struct sockaddr *sa, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        port = ntohs(in->sin_port);
        snprintf(buf, len, "%s:%d", host, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        port = ntohs(in6->sin6_port);
        snprintf(buf, len, "[%s]:%d", host, port);
    } else {
        snprintf(buf, len, "unknown");
    }
}

static void accept_conn(struct worker *w, evutil_socket_t fd, struct sockaddr *sa,
                        enum conn_proto proto)
{
    struct server *srv = w->srv;
    struct conn *c;
    SSL *ssl;

    if (w->draining || w->nconns >= (size_t)srv->cfg->max_connections_per_worker) {
        log_msg(LOG_WARNING, "worker %d: connection refused: %zu connections open", w->index,
                w->nconns);
        evutil_closesocket(fd);
        return;
    }
    /*
     * Replies are written whole, so Nagle only delays the tail of a reply
     * larger than one segment until the client's delayed ACK (40 ms).
     */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
    ssl = SSL_new(srv->ssl);
    if (!ssl) {
        evutil_closesocket(fd);
        return;
    }
    c = xcalloc(1, sizeof(*c));
    c->w = w;
    c->proto = proto;
    format_peer(sa, c->peer, sizeof(c->peer));
    c->bev = bufferevent_openssl_socket_new(w->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                            BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) {
        SSL_free(ssl);
        evutil_closesocket(fd);
        free(c);
        return;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    c->reader = http_reader_new(&srv->limits);
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->nconns++;
    /* Bounds what a client can queue behind a request that waits for its reply. */
    bufferevent_setwatermark(c->bev, EV_READ, 0,
                             srv->limits.max_body + srv->limits.max_header_bytes +
                                 srv->limits.max_url + 4096);
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    /* On the MQTT port, TLS and CONNECT must be done within the connect timeout. */
    conn_set_read_timeout(c, proto == CONN_MQTT ? MQTT_SESSION_CONNECT_TIMEOUT
                                                : srv->cfg->idle_timeout);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    accept_conn(arg, fd, sa, CONN_HTTP);
}

static void on_accept_mqtt(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                           int salen, void *arg)
{
    accept_conn(arg, fd, sa, CONN_MQTT);
}

struct call {
    void (*fn)(void *);
    void *arg;
};

static void run_call(evutil_socket_t fd, short what, void *arg)
{
    struct call call = *(struct call *)arg;

    free(arg);
    call.fn(call.arg);
}

void worker_call(struct worker *w, void (*fn)(void *arg), void *arg)
{
    struct call *call = xmalloc(sizeof(*call));
    struct timeval now = {0, 0};

    call->fn = fn;
    call->arg = arg;
    if (event_base_once(w->base, -1, EV_TIMEOUT, run_call, call, &now) != 0) {
        log_msg(LOG_ERROR, "worker %d: cannot schedule a call", w->index);
        free(call);
    }
}

static void drain_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;

    log_msg(LOG_WARNING, "worker %d: shutdown timeout reached, dropping %zu connections", w->index,
            w->nconns);
    event_base_loopbreak(w->base);
}

/* On the worker's thread: stop accepting, close idle connections, wait for the rest. */
static void worker_stop(void *arg)
{
    struct worker *w = arg;
    struct timeval tv = {.tv_sec = w->srv->cfg->shutdown_timeout};
    struct conn *c, *next;

    w->draining = true;
    if (w->listener) {
        evconnlistener_free(w->listener);
        w->listener = NULL;
    }
    if (w->mqtt_listener) {
        evconnlistener_free(w->mqtt_listener);
        w->mqtt_listener = NULL;
    }
    for (c = w->conns; c; c = next) {
        next = c->next;
        /* An MQTT connection owed answers stays counted until they arrive (conn_owed()). */
        if (c->bev && c->proto != CONN_HTTP)
            conn_close(c, true);
        else if (c->bev && !c->pending && !c->close_after_write && http_reader_idle(c->reader) &&
                 evbuffer_get_length(bufferevent_get_input(c->bev)) == 0)
            conn_close(c, true);
    }
    if (w->nconns == 0) {
        event_base_loopexit(w->base, NULL);
        return;
    }
    w->drain_timer = evtimer_new(w->base, drain_timeout, w);
    evtimer_add(w->drain_timer, &tv);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;

    event_base_dispatch(w->base);
    return NULL;
}

/*
 * A worker's event loop. With epoll's change list, the interest changes a
 * connection makes during one pass of the loop (a TLS bufferevent turns
 * reading and writing on and off several times per handshake) reach the
 * kernel as one epoll_ctl per descriptor, or none when they cancel out.
 */
static struct event_base *worker_base_new(void)
{
    struct event_config *cfg = event_config_new();
    struct event_base *base;

    if (!cfg)
        return NULL;
    event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    return base;
}

/* Binds one listening socket; reuse_port lets every worker bind the same address. */
static int bind_listener(const char *host, int port, bool reuse_port, int *fd_out, int *port_out,
                         struct dps_error *err)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_ADDRCONFIG};
    struct addrinfo *res = NULL;
    char portstr[8];
    int fd = -1, one = 1, rc;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);

    snprintf(portstr, sizeof(portstr), "%d", port);
    rc = getaddrinfo(*host ? host : NULL, portstr, &hints, &res);
    if (rc != 0)
        return dps_error_set(err, DPS_ERR_INVAL, "cannot resolve listen address '%s': %s", host,
                             gai_strerror(rc));
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = dps_error_set(err, DPS_ERR_IO, "cannot create a socket: %s", strerror(errno));
        goto out;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
        rc = dps_error_set(err, DPS_ERR_IO, "cannot set SO_REUSEPORT: %s", strerror(errno));
        goto out;
    }
    if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
        rc = dps_error_set(err, DPS_ERR_IO, "cannot listen on '%s:%d': %s", host, port,
                           strerror(errno));
        goto out;
    }
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        *port_out = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                   : ((struct sockaddr_in *)&ss)->sin_port);
    *fd_out = fd;
    fd = -1;
    rc = DPS_OK;
out:
    if (fd >= 0)
        close(fd);
    freeaddrinfo(res);
    return rc;
}

/*
 * Takes the address the probe socket is bound to for this process: an
 * abstract unix socket named after it, which the kernel lets one process of
 * this network namespace bind at a time and frees when that process exits,
 * however it exits. The probe (bound without SO_REUSEPORT) finds an address
 * in use; two dpsd starting at the same moment could both pass it before
 * either had its SO_REUSEPORT listeners, and then share the port without a
 * word. The claim, taken while the probe still holds the address, stops the
 * second. Where unix sockets are not allowed, dpsd goes on without it.
 */
static int claim_address(int probe, const char *host, int *fd_out, struct dps_error *err)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    char addr[INET6_ADDRSTRLEN] = "";
    int port = 0, n, fd;

    if (getsockname(probe, (struct sockaddr *)&ss, &sl) != 0)
        return dps_error_set(err, DPS_ERR_IO, "cannot read the address of '%s': %s", host,
                             strerror(errno));
    if (ss.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, addr, sizeof(addr));
        port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    } else {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, addr, sizeof(addr));
        port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    /* sun_path[0] stays 0: the abstract namespace, no file */
    n = snprintf(un.sun_path + 1, sizeof(un.sun_path) - 1, "dpsd/tcp/[%s]:%d", addr, port);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&un,
                        (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n)) == 0) {
        *fd_out = fd;
        return DPS_OK;
    }
    if (errno == EADDRINUSE) {
        close(fd);
        return dps_error_set(err, DPS_ERR_IO,
                             "cannot listen on '%s:%d': another dpsd is starting on it", host,
                             port);
    }
    log_msg(LOG_WARNING,
            "cannot claim '%s:%d' for this process (%s): a dpsd starting at the same moment on "
            "it would not be stopped",
            host, port, strerror(errno));
    if (fd >= 0)
        close(fd);
    return DPS_OK;
}

/*
 * Makes sure host:*port is free and keeps it for this process (*claim_fd,
 * see claim_address()) before the workers bind it with SO_REUSEPORT, which
 * would otherwise share it with another process of the same user without a
 * word. Port 0 becomes the port the kernel chose.
 */
static int reserve_address(const char *host, int *port, int *claim_fd, struct dps_error *err)
{
    int probe = -1, rc;

    if ((rc = bind_listener(host, *port, false, &probe, port, err)) != DPS_OK)
        return rc;
    rc = claim_address(probe, host, claim_fd, err);
    close(probe);
    return rc;
}

static void enable_threads(void)
{
    /* Makes every event_base lockable and wakeable from other threads (worker_call). */
    evthread_use_pthreads();
}

int server_new(const struct config *cfg, SSL_CTX *ssl, const struct http_router *router, void *app,
               struct server **out, struct dps_error *err)
{
    struct server *srv = xcalloc(1, sizeof(*srv));
    char host[256];
    int port, rc;
    static pthread_once_t once = PTHREAD_ONCE_INIT;

    pthread_once(&once, enable_threads);
    srv->cfg = cfg;
    srv->ssl = ssl;
    srv->router = router;
    srv->app = app;
    srv->limits = http_default_limits;
    srv->limits.max_body = (size_t)cfg->max_body;
    clock_gettime(CLOCK_MONOTONIC, &srv->started);
    srv->claims[0] = srv->claims[1] = -1;
    srv->nworkers = (size_t)cfg->workers;
    srv->workers = xcalloc(srv->nworkers, sizeof(*srv->workers));
    for (size_t i = 0; i < srv->nworkers; i++)
        srv->workers[i].fd = srv->workers[i].mqtt_fd = -1;

    if ((rc = config_split_listen(cfg->https_listen, host, sizeof(host), &port, err)) != DPS_OK)
        goto fail;
    if ((rc = reserve_address(host, &port, &srv->claims[0], err)) != DPS_OK)
        goto fail;
    for (size_t i = 0; i < srv->nworkers; i++) {
        struct worker *w = &srv->workers[i];
        w->srv = srv;
        w->index = (int)i;
        if ((rc = bind_listener(host, port, true, &w->fd, &port, err)) != DPS_OK)
            goto fail;
        w->base = worker_base_new();
        if (!w->base) {
            rc = dps_error_set(err, DPS_ERR_INTERNAL, "cannot create an event loop");
            goto fail;
        }
        w->listener = evconnlistener_new(w->base, on_accept, w,
                                         LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, w->fd);
        if (!w->listener) {
            rc = dps_error_set(err, DPS_ERR_INTERNAL, "cannot create a listener");
            goto fail;
        }
        w->fd = -1;
    }
    snprintf(srv->https_address, sizeof(srv->https_address),
             strchr(host, ':') ? "[%s]:%d" : "%s:%d", *host ? host : "0.0.0.0", port);
    *out = srv;
    return DPS_OK;
fail:
    server_free(srv);
    return rc;
}

/* Never runs: the signals are blocked and taken by sigwait(). */
static void on_signal(int sig)
{
}

static void stop_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
}

void server_block_signals(void)
{
    sigset_t set;

    /*
     * A disposition of SIG_IGN (inherited, e.g. SIGINT of a background job)
     * would discard the signal before sigwait() saw it.
     */
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    stop_signals(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

int server_run(struct server *srv)
{
    sigset_t set;
    int sig = 0;
    size_t started = 0;

    server_block_signals(); /* no-op when main has done it, as it should */
    stop_signals(&set);
    signal(SIGPIPE, SIG_IGN);
    for (; started < srv->nworkers; started++)
        if (pthread_create(&srv->workers[started].thread, NULL, worker_main,
                           &srv->workers[started]) != 0)
            break;
    if (started == srv->nworkers) {
        sigwait(&set, &sig);
        log_msg(LOG_INFO, "%s received: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    } else {
        log_msg(LOG_ERROR, "cannot start worker thread %zu", started);
    }
    for (size_t i = 0; i < started; i++)
        worker_call(&srv->workers[i], worker_stop, &srv->workers[i]);
    for (size_t i = 0; i < started; i++)
        pthread_join(srv->workers[i].thread, NULL);
    return started == srv->nworkers ? DPS_OK : DPS_ERR_INTERNAL;
}

void server_free(struct server *srv)
{
    if (!srv)
        return;
    for (size_t i = 0; i < srv->nworkers; i++) {
        struct worker *w = &srv->workers[i];
        while (w->conns) {
            struct conn *c = w->conns;
            /* Only after a forced stop: no handler or answer runs any more. */
            http_request_free(c->pending);
            c->pending = NULL;
            w->draining = false;
            if (c->bev) {
                bufferevent_free(c->bev);
                c->bev = NULL;
            }
            conn_free(c);
        }
        if (w->listener)
            evconnlistener_free(w->listener);
        if (w->mqtt_listener)
            evconnlistener_free(w->mqtt_listener);
        if (w->fd >= 0)
            close(w->fd);
        if (w->mqtt_fd >= 0)
            close(w->mqtt_fd);
        if (w->drain_timer)
            event_free(w->drain_timer);
        for (size_t j = 0; j < WORKER_SLOTS; j++)
            if (w->slots[j].key && w->slots[j].free_fn)
                w->slots[j].free_fn(w->slots[j].data);
        if (w->base)
            event_base_free(w->base);
    }
    free(srv->workers);
    for (size_t i = 0; i < ARRAY_SIZE(srv->claims); i++)
        if (srv->claims[i] >= 0)
            close(srv->claims[i]);
    free(srv);
}

const char *server_https_address(const struct server *srv)
{
    return srv->https_address;
}

int server_serve_mqtt(struct server *srv, struct mqtt_service *svc, struct dps_error *err)
{
    char host[256];
    int port, rc;

    srv->mqtt = svc;
    if ((rc = config_split_listen(srv->cfg->mqtt_listen, host, sizeof(host), &port, err)) != DPS_OK)
        return rc;
    if ((rc = reserve_address(host, &port, &srv->claims[1], err)) != DPS_OK)
        return rc;
    for (size_t i = 0; i < srv->nworkers; i++) {
        struct worker *w = &srv->workers[i];
        if ((rc = bind_listener(host, port, true, &w->mqtt_fd, &port, err)) != DPS_OK)
            return rc;
        w->mqtt_listener =
            evconnlistener_new(w->base, on_accept_mqtt, w,
                               LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, w->mqtt_fd);
        if (!w->mqtt_listener)
            return dps_error_set(err, DPS_ERR_INTERNAL, "cannot create a listener");
        w->mqtt_fd = -1;
    }
    srv->mqtt_bound = true;
    snprintf(srv->mqtt_address, sizeof(srv->mqtt_address), strchr(host, ':') ? "[%s]:%d" : "%s:%d",
             *host ? host : "0.0.0.0", port);
    return DPS_OK;
}

const char *server_mqtt_address(const struct server *srv)
{
    return srv->mqtt_bound ? srv->mqtt_address : NULL;
}

void *server_app(const struct server *srv)
{
    return srv->app;
}

const struct config *server_config(const struct server *srv)
{
    return srv->cfg;
}

void *worker_data(const struct worker *w, const void *key)
{
    for (size_t i = 0; i < WORKER_SLOTS; i++)
        if (w->slots[i].key == key)
            return w->slots[i].data;
    return NULL;
}

void worker_set_data(struct worker *w, const void *key, void *data, void (*free_fn)(void *))
{
    struct worker_slot *free_slot = NULL;

    for (size_t i = 0; i < WORKER_SLOTS; i++) {
        struct worker_slot *s = &w->slots[i];
        if (s->key == key) {
            if (s->free_fn && s->data != data)
                s->free_fn(s->data);
            s->data = data;
            s->free_fn = free_fn;
            return;
        }
        if (!s->key && !free_slot)
            free_slot = s;
    }
    if (!free_slot) {
        /* A fixed handful of modules keep per-worker data: running out is a bug. */
        log_msg(LOG_ERROR, "worker %d: more than %d per-worker data slots", w->index, WORKER_SLOTS);
        abort();
    }
    free_slot->key = key;
    free_slot->data = data;
    free_slot->free_fn = free_fn;
}

struct server *worker_server(const struct worker *w)
{
    return w->srv;
}

struct event_base *worker_base(const struct worker *w)
{
    return w->base;
}

int worker_index(const struct worker *w)
{
    return w->index;
}
