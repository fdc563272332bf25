/* SPDX-License-Identifier: MIT */
/*
 * WebSocket (RFC 6455) for MQTT over WebSocket on the HTTPS port
 * (dps-protocol.md §5.5): the upgrade handshake values and a server-side
 * frame layer on wslay that moves binary message payloads in and out of
 * evbuffers. No sockets: the connection layer (server.c) owns the
 * bufferevent and hands the bytes over.
 */
#ifndef DPS_SERVER_WEBSOCKET_H
#define DPS_SERVER_WEBSOCKET_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/buffer.h>

/* The path MQTT over WebSocket is served on (matched case-insensitively). */
#define WEBSOCKET_MQTT_PATH "/$iothub/websocket"
/* Bytes of a Sec-WebSocket-Accept value, with its terminator. */
#define WEBSOCKET_ACCEPT_SIZE 29
/* Longest subprotocol name echoed. */
#define WEBSOCKET_PROTOCOL_MAX 32

/*
 * Computes Sec-WebSocket-Accept: base64(SHA-1(key "258EAFA5-...")).
 *
 * key: the Sec-WebSocket-Key header; must be 24 base64 characters (a
 *      16-byte nonce).
 * out: on success, the NUL-terminated value.
 *
 * Returns: true, or false when key is not a valid nonce.
 */
bool websocket_accept_key(const char *key, char out[WEBSOCKET_ACCEPT_SIZE]);

/*
 * Finds "mqtt" (any case) in a Sec-WebSocket-Protocol header, a
 * comma-separated list, and copies it as the client wrote it (the C SDK
 * sends "MQTT", Node and Python "mqtt": the reply echoes it exactly).
 *
 * header: the header value, or NULL.
 * out:    on success, the NUL-terminated token.
 *
 * Returns: true, or false when the list names no mqtt.
 */
bool websocket_select_mqtt(const char *header, char out[WEBSOCKET_PROTOCOL_MAX + 1]);

/*
 * Called with each complete binary message; returns true to go on, false
 * to close the WebSocket (then websocket_input() returns false too).
 */
typedef bool (*websocket_message_fn)(void *arg, const void *buf, size_t len);

struct websocket;

/*
 * Creates the server side of an upgraded connection.
 *
 * max_message: largest message accepted; a larger one closes with 1009.
 * on_message:  receives binary messages; text messages close with 1003.
 * arg:         for on_message.
 * out:         where frames to the client are written (the bufferevent's
 *              output); borrowed, must outlive the websocket.
 *
 * Returns: the websocket (free with websocket_free()), or NULL when wslay
 * cannot allocate its context.
 */
struct websocket *websocket_new(size_t max_message, websocket_message_fn on_message, void *arg,
                                struct evbuffer *out);

/* Frees ws; NULL is a no-op. */
void websocket_free(struct websocket *ws);

/*
 * Reads every complete frame of in (draining it), answers pings and
 * closes, and calls on_message for each binary message.
 *
 * Returns: true while the WebSocket stays open; false when it is closing
 * (the peer closed, a protocol error, or on_message said so): write out
 * what is queued, then close the connection.
 */
bool websocket_input(struct websocket *ws, struct evbuffer *in);

/* Sends buf as one binary message (copied). */
void websocket_send(struct websocket *ws, const void *buf, size_t len);

/* Starts a normal close (status 1000): queues the close frame. */
void websocket_close(struct websocket *ws);

#endif
