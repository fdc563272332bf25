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

struct committer;
struct worker;

/* Seconds a new connection has to complete TLS and send CONNECT. */
#define MQTT_SESSION_CONNECT_TIMEOUT 10
/*
 * Register and poll requests outstanding at once on one connection (sent,
 * not yet answered): DPS clients wait for each response before the next
 * request, so more is a misbehaving peer.
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
    /* The session's memo of its SAS token's attestation (in and out): the
     * CONNECT's check spares the register request's HMACs. */
    struct attest_symkey_memo *symkey_memo;
};

/*
 * The answer to one request, on the connection's thread: res is borrowed
 * for the call (provision_done_fn has the same shape).
 */
typedef void (*mqtt_answer_fn)(void *answer_arg, struct provision_result *res);

/* The outcome of a CONNECT authentication, on the connection's thread: a CONNACK return code. */
typedef void (*mqtt_auth_fn)(void *done_arg, int code);

/*
 * What the session needs from the provisioning side.
 *
 * authenticate: called once, on CONNECT, only when the device sent a
 *   password (a SAS token). Calls done(done_arg, code) exactly once, either
 *   before it returns or later on the same thread (once a refusal's
 *   attempt is durable), with MQTT_CONNACK_ACCEPTED or the CONNACK code to
 *   refuse with: MQTT_CONNACK_NOT_AUTHORIZED for a malformed, expired or
 *   wrong token, MQTT_CONNACK_SERVER_UNAVAILABLE when the store cannot be
 *   reached. The session sends no CONNACK and reads no further packet
 *   until done ran. req is borrowed for the call only.
 * request: answers a register or poll request by calling answer(answer_arg,
 *   res) exactly once, either before it returns or later on the same
 *   thread (once the registration is durable). req is borrowed for the
 *   call only.
 * arg: passed to both.
 */
struct mqtt_backend {
    void (*authenticate)(void *arg, const struct mqtt_request *req, mqtt_auth_fn done,
                         void *done_arg);
    void (*request)(void *arg, const struct mqtt_request *req, mqtt_answer_fn answer,
                    void *answer_arg);
    void *arg;
};

/*
 * Writes len bytes of buf to the peer (copied). Called inside
 * mqtt_session_input(), and for a deferred answer from the backend's
 * answer call; after the connection closed, the callee drops the bytes.
 */
typedef void (*mqtt_send_fn)(void *arg, const void *buf, size_t len);

/*
 * Called (with the send callback's arg) after a deferred answer was
 * handed to send, outside mqtt_session_input(): the connection checks
 * its output limit, or frees itself when its socket is gone and
 * mqtt_session_outstanding() is 0. After a deferred CONNECT authentication
 * it also closes when mqtt_session_closing(), and otherwise feeds the
 * session the packets that arrived meanwhile (mqtt_session_input()). The
 * session is not touched after it.
 */
typedef void (*mqtt_answered_fn)(void *arg);

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

/*
 * Sets the callback run after each deferred answer; NULL (the default)
 * runs none.
 */
void mqtt_session_set_answered(struct mqtt_session *s, mqtt_answered_fn answered);

/*
 * Frees s and wipes the password it kept; NULL is a no-op. The connection
 * keeps s until mqtt_session_outstanding() is 0: an answer arriving for a
 * freed session would touch freed memory. (Only when the worker's loop has
 * stopped for good may it be freed earlier: those answers never run.)
 */
void mqtt_session_free(struct mqtt_session *s);

/* Requests (and a CONNECT authentication) handed to the backend and not yet answered. */
size_t mqtt_session_outstanding(const struct mqtt_session *s);

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
 * CONNECT, QoS 2, a topic that is no DPS request, more than
 * MQTT_SESSION_MAX_INFLIGHT requests outstanding) is logged with the peer and the reason (never the
 * password) and answered with MQTT_SESSION_CLOSE; nothing is read after that.
 *
 * Returns: enum mqtt_session_status.
 */
int mqtt_session_input(struct mqtt_session *s, struct evbuffer *in);

/* True once a CONNECT was accepted. */
bool mqtt_session_connected(const struct mqtt_session *s);

/*
 * True once the session refused a CONNECT after its authentication
 * completed outside mqtt_session_input() (the CONNACK is sent): the
 * connection flushes and closes, as for MQTT_SESSION_CLOSE. The answered
 * callback is where the connection learns it.
 */
bool mqtt_session_closing(const struct mqtt_session *s);

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

/*
 * Sends registration writes through the group commit: the answer to a
 * register request is then published once the record and the attempt are
 * durable, and the worker's loop never waits on a disk. Without it
 * (cm NULL, the default) the writes are synchronous on the worker.
 * cm: borrowed; must outlive the service's sessions.
 */
void mqtt_service_set_committer(struct mqtt_service *svc, struct committer *cm);

/*
 * The backend for sessions of worker w; only that worker's thread calls
 * it, and deferred answers are posted back to it (worker_call()).
 */
struct mqtt_backend mqtt_service_backend(struct mqtt_service *svc, struct worker *w);

/* Largest MQTT packet the service accepts: the body limit plus room for the topic. */
size_t mqtt_service_max_packet(const struct mqtt_service *svc);

#endif
