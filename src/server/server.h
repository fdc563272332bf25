/* SPDX-License-Identifier: MIT */
/*
 * dpsd's connection layer: N worker threads, each with its own event_base
 * and its own SO_REUSEPORT listening socket, TLS bufferevents, HTTP/1.1
 * requests read with server/http.h and dispatched through one router, and
 * the reply API handlers use, now or later; MQTT sessions on the MQTT port
 * and over WebSocket on the HTTPS port (server/mqtt_session.h). See docs/internals/threading.md
 * and docs/internals/http.md.
 */
#ifndef DPS_SERVER_SERVER_H
#define DPS_SERVER_SERVER_H

#include <jansson.h>
#include <openssl/ssl.h>

#include "server/config.h"
#include "server/http.h"

struct server;
struct worker;
struct mqtt_service;

/*
 * Creates the server and binds every worker's listening socket, so that a
 * port in use is reported here, before anything starts.
 *
 * cfg:    borrowed; must outlive the server.
 * ssl:    borrowed; must outlive the server.
 * router: borrowed and read-only from now on; must outlive the server. The
 *         built-in routes (GET /healthz) are tried before it.
 * app:    opaque application context for handlers (server_app()); borrowed.
 * out:    on DPS_OK, the server; free with server_free().
 *
 * Returns: DPS_OK; DPS_ERR_INVAL for a bad listen address; DPS_ERR_IO when
 * a socket cannot be bound (the message names the address and the reason).
 */
int server_new(const struct config *cfg, SSL_CTX *ssl, const struct http_router *router, void *app,
               struct server **out, struct dps_error *err);

/*
 * Blocks SIGTERM and SIGINT in the calling thread, and so in every thread
 * it starts from then on: they stay pending until server_run() takes them.
 * Call from the main thread before it starts any thread (the group commit's,
 * the store's), or a signal could be delivered to one of those and be lost.
 */
void server_block_signals(void);

/*
 * Starts the workers and serves until SIGTERM or SIGINT, then stops
 * accepting, lets requests in flight finish (at most cfg->shutdown_timeout
 * seconds) and returns. Call from the main thread, once, after
 * server_block_signals(); it waits for the signals with sigwait(), so one
 * that came during start-up stops the server at once.
 *
 * Returns: DPS_OK, or DPS_ERR_INTERNAL when a thread cannot be started.
 */
int server_run(struct server *srv);

/* Closes the sockets and frees srv; srv may be NULL. Call after server_run() returned. */
void server_free(struct server *srv);

/* The "ADDR:PORT" the HTTPS listener is bound to (port resolved when 0 was asked). */
const char *server_https_address(const struct server *srv);

/*
 * Serves the device API over MQTT with svc: binds every worker's listening
 * socket on cfg->mqtt_listen (MQTT over TLS) and accepts WebSocket
 * upgrades on the HTTPS port at /$iothub/websocket. Call after
 * server_new(), before server_run().
 *
 * svc: borrowed; must outlive the server.
 *
 * Returns: DPS_OK; DPS_ERR_INVAL for a bad listen address; DPS_ERR_IO when
 * the port cannot be bound (the message names the address and the reason);
 * DPS_ERR_INTERNAL. Whatever the result, the WebSocket path is served
 * (so a caller may go on without the MQTT port) and server_free() releases
 * what was bound.
 */
int server_serve_mqtt(struct server *srv, struct mqtt_service *svc, struct dps_error *err);

/* The "ADDR:PORT" the MQTT listener is bound to, or NULL when MQTT is not served. */
const char *server_mqtt_address(const struct server *srv);

/* The app pointer given to server_new(). */
void *server_app(const struct server *srv);

/* The configuration given to server_new(); borrowed. */
const struct config *server_config(const struct server *srv);

/* The server a worker belongs to. */
struct server *worker_server(const struct worker *w);

/* The worker's event loop, for timers and asynchronous I/O on the worker's thread. */
struct event_base *worker_base(const struct worker *w);

/* The worker's number, 0 .. workers-1. */
int worker_index(const struct worker *w);

/*
 * Per-worker data, such as the worker's own store connection, opened lazily
 * by the first handler that needs it. Only w's thread may call these.
 *
 * worker_data: returns the data set under key, or NULL.
 * worker_set_data: sets (or replaces, freeing the old value) the data under
 *   key; free_fn (may be NULL) is called on it by server_free(), after the
 *   workers stopped. key is compared by address: use the address of a
 *   static object of the module that owns the data.
 */
void *worker_data(const struct worker *w, const void *key);
void worker_set_data(struct worker *w, const void *key, void *data, void (*free_fn)(void *));

/*
 * Runs fn(arg) on w's thread, soon. Thread-safe: the way for work finished
 * elsewhere (a store commit, a webhook) to come back and reply.
 */
void worker_call(struct worker *w, void (*fn)(void *arg), void *arg);

/*
 * Adds a header to the reply of req; call before replying. name and value
 * are copied; they must not contain CR or LF (checked: such a header is
 * dropped).
 */
void http_reply_header(struct http_request *req, const char *name, const char *value);

/*
 * Sends the reply to req and frees req: req must not be used afterwards.
 * Every request gets exactly one reply, from the worker's thread, either
 * inside its handler or later (then keep req and reply from a callback on
 * worker_base() or via worker_call()). When the client has gone away
 * meanwhile the reply is dropped quietly.
 *
 * status:       HTTP status code.
 * content_type: the Content-Type header, or NULL for none (with len 0).
 * body, len:    copied.
 */
void http_reply(struct http_request *req, int status, const char *content_type, const char *body,
                size_t len);

/* http_reply() with `Content-Type: application/json; charset=utf-8`. */
void http_reply_json(struct http_request *req, int status, const char *json, size_t len);

/* http_reply_json() of obj, compact; takes ownership of obj (decref'd). */
void http_reply_jansson(struct http_request *req, int status, json_t *obj);

/*
 * Replies with the Azure error body, errorCode = status * 1000 + sub_code,
 * trackingId = req->tracking_id, and the printf-style message.
 */
void http_reply_error(struct http_request *req, int status, int sub_code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* True when the client has disconnected while req waits for its deferred reply. */
bool http_request_abandoned(const struct http_request *req);

#endif
