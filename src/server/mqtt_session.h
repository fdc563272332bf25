/* SPDX-License-Identifier: MIT */
/*
 * The device API over MQTT (dps-protocol.md §5): one session per connection
 * turns the bytes a device sends into CONNACK, SUBACK, PUBACK, UNSUBACK,
 * PINGRESP and response PUBLISHes, and asks a backend to authenticate the
 * CONNECT and to answer register and poll requests. The session does no
 * I/O: the connection layer (server.c, directly on TLS or inside WebSocket
 * frames) feeds it an evbuffer and gets bytes back through a callback, so
 * the fuzz target drives it without sockets. The backend of dpsd
 * (mqtt_service) maps requests onto the registration service, provision.h,
 * the same code as the HTTPS device API. See docs/internals/mqtt.md.
 */
#ifndef DPS_SERVER_MQTT_SESSION_H
#define DPS_SERVER_MQTT_SESSION_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/buffer.h>
#include <openssl/x509.h>

#include "core/dps_mqtt.h"
#include "core/mqtt_codec.h"
#include "server/config.h"
#include "server/provision.h"

/* Seconds a new connection has to complete TLS and send CONNECT. */
#define MQTT_SESSION_CONNECT_TIMEOUT 10
/*
 * Register and poll requests one read may carry: DPS clients wait for each
 * response before the next request, so more is a misbehaving peer.
 */
#define MQTT_SESSION_MAX_INFLIGHT 8
/* Bytes queued to a peer that does not read its responses before the connection is closed. */
#define MQTT_SESSION_MAX_OUTPUT (1024 * 1024)
/* Longest topic name or filter accepted; DPS topics are well under it. */
#define MQTT_SESSION_MAX_TOPIC 512
/* Longest client id accepted (a registration id is at most 128 bytes). */
#define MQTT_SESSION_MAX_CLIENT_ID 256

/* What a device asked, handed to the backend; every pointer borrowed for the call. */
struct mqtt_request {
    enum dps_mqtt_request kind;  /* 0 for the CONNECT authentication */
    const char *id_scope;        /* from the CONNECT user name, decoded */
    const char *registration_id; /* from the CONNECT user name, decoded */
    const char *api_version;     /* may be "" */
    STACK_OF(X509) * chain;      /* the TLS client chain, leaf first; NULL when none */
    const char *sas_token;       /* the CONNECT password; NULL when none */
    size_t sas_len;
    const char *body; /* register: the DeviceRegistration JSON (may be empty) */
    size_t body_len;
    const char *operation_id; /* poll: NUL-terminated, as sent in the topic */
    const char *tracking_id;  /* a fresh uuid */
    const char *peer;         /* "ADDR:PORT", for logs */
};

/*
 * What the session needs from the provisioning side.
 *
 * authenticate: called once, on CONNECT, only when the device sent a
 *   password (a SAS token). Returns MQTT_CONNACK_ACCEPTED, or the CONNACK
 *   code to refuse with: MQTT_CONNACK_NOT_AUTHORIZED for a malformed,
 *   expired or wrong token, MQTT_CONNACK_SERVER_UNAVAILABLE when the store
 *   cannot be reached.
 * request: answers a register or poll request; fills out (released by the
 *   session with provision_result_release()).
 * arg: passed to both.
 */
struct mqtt_backend {
    int (*authenticate)(void *arg, const struct mqtt_request *req);
    void (*request)(void *arg, const struct mqtt_request *req, struct provision_result *out);
    void *arg;
};

/* Writes len bytes of buf to the peer (copied); called only inside mqtt_session_input(). */
typedef void (*mqtt_send_fn)(void *arg, const void *buf, size_t len);

struct mqtt_session;

/*
 * Creates the session of one connection.
 *
 * backend:        copied.
 * max_packet:     largest packet accepted, fixed header included.
 * chain:          the TLS client chain (leaf first) or NULL; borrowed, must
 *                 outlive the session.
 * peer:           "ADDR:PORT" for the log; copied.
 * send, send_arg: where the session's bytes go.
 *
 * Returns: the session; free with mqtt_session_free(). Aborts on OOM (dpsd).
 */
struct mqtt_session *mqtt_session_new(const struct mqtt_backend *backend, size_t max_packet,
                                      STACK_OF(X509) * chain, const char *peer, mqtt_send_fn send,
                                      void *send_arg);

/* Frees s and wipes the password it kept; NULL is a no-op. */
void mqtt_session_free(struct mqtt_session *s);

/* mqtt_session_input() results. */
enum mqtt_session_status {
    MQTT_SESSION_OPEN = 0, /* read more */
    MQTT_SESSION_CLOSE, /* flush what was sent, then close: a DISCONNECT, a refusal or a violation
                         */
};

/*
 * Handles every complete packet at the start of in and drains it; a
 * partial packet stays in in for the next call. A violation (malformed
 * packet, packet or topic over its limit, a first packet other than
 * CONNECT, QoS 2, a topic that is no DPS request, too many requests at
 * once) is logged with the peer and the reason (never the password) and
 * answered with MQTT_SESSION_CLOSE; nothing is read after that.
 *
 * Returns: enum mqtt_session_status.
 */
int mqtt_session_input(struct mqtt_session *s, struct evbuffer *in);

/* True once a CONNECT was accepted. */
bool mqtt_session_connected(const struct mqtt_session *s);

/*
 * The read timeout the connection should apply now, in seconds:
 * MQTT_SESSION_CONNECT_TIMEOUT before CONNECT, one and a half times the
 * keep-alive after it (MQTT 3.1.1 §3.1.2.10), or idle when the device
 * turned keep-alive off (0).
 */
long mqtt_session_read_timeout(const struct mqtt_session *s, long idle);

/*
 * The provisioning backend of dpsd: the registration service and one store
 * connection and trust store cache per worker, opened on first use.
 */
struct mqtt_service;

/*
 * cfg:      borrowed for the call: store DSN, linked hubs, worker count and
 *           body limit are copied.
 * id_scope: the service's ID scope; copied.
 * out:      on DPS_OK, the service; free with mqtt_service_free() after the
 *           server stopped.
 *
 * Returns: DPS_OK, or DPS_ERR_INVAL (no store or id scope, a bad linked hub).
 */
int mqtt_service_new(const struct config *cfg, const char *id_scope, struct mqtt_service **out,
                     struct dps_error *err);

/* Closes the workers' store connections and frees svc; NULL is a no-op. */
void mqtt_service_free(struct mqtt_service *svc);

/* The backend for sessions of worker worker_index (0 .. workers-1); only that worker calls it. */
struct mqtt_backend mqtt_service_backend(struct mqtt_service *svc, int worker_index);

/* Largest MQTT packet the service accepts: the body limit plus room for the topic. */
size_t mqtt_service_max_packet(const struct mqtt_service *svc);

#endif
