/* SPDX-License-Identifier: MIT */
/*
 * libdps device client: registers one device with a provisioning service
 * over HTTPS (dps-protocol.md §4) or MQTT 3.1.1 (§5: on TLS, or inside a
 * WebSocket on the HTTPS port), with an X.509 client certificate or a
 * symmetric key (an individual key, or a device key derived from a group
 * key, §6), and follows `assigning` answers by polling the operation with
 * the server's Retry-After. Blocking; no global state; never aborts.
 */
#ifndef DPS_DEVICE_H
#define DPS_DEVICE_H

#include <stddef.h>

#include "dps/error.h"

/* The Azure device endpoint, the default host. */
#define DPS_DEVICE_GLOBAL_ENDPOINT "global.azure-devices-provisioning.net"
/* Polls of an `assigning` operation, at most. */
#define DPS_DEVICE_POLLS_MAX 20
/* SAS token lifetime, seconds. */
#define DPS_DEVICE_SAS_TTL 3600

/* MQTT keep-alive the client announces, seconds. */
#define DPS_DEVICE_MQTT_KEEP_ALIVE 60
/* Longest MQTT packet or WebSocket frame accepted from the service. */
#define DPS_DEVICE_MQTT_MAX_PACKET (256 * 1024)

/* How the device talks to the service. */
enum dps_device_transport {
    DPS_DEVICE_HTTPS = 0, /* REST over HTTPS, port 443 */
    DPS_DEVICE_MQTT,      /* MQTT 3.1.1 over TLS, port 8883 */
    DPS_DEVICE_MQTT_WS,   /* MQTT 3.1.1 over WebSocket (wss://host/$iothub/websocket), port 443 */
};

/* How to reach the service and who the device is; strings borrowed for the call. */
struct dps_device_options {
    enum dps_device_transport transport; /* 0: DPS_DEVICE_HTTPS */
    const char *id_scope;                /* required, "0ne..." */
    const char *registration_id;         /* required */
    const char *host;                    /* NULL: DPS_DEVICE_GLOBAL_ENDPOINT */
    const char *connect_host; /* where to connect, NULL: host (tests, /etc/hosts-free setups) */
    int port;                 /* 0: 443, or 8883 for DPS_DEVICE_MQTT */
    const char *ca_file;      /* trusted server roots (PEM), NULL: the system store */
    int timeout_ms;           /* per request (MQTT: per packet awaited), 0: 30 s */
    /* Exactly one credential: */
    const char *cert_file;     /* X.509: the device certificate chain (PEM, leaf first) ... */
    const char *key_file;      /* ... and its private key */
    const char *symmetric_key; /* base64 device key (individual enrollment) */
    const char *group_key;     /* base64 group key: the device key is derived from it */
    const char *payload;       /* JSON text sent as "payload", or NULL */
};

/* The outcome of a registration. Release with dps_device_result_release(). */
struct dps_device_result {
    char *status;       /* "assigned", "failed", "disabled", ... */
    char *assigned_hub; /* NULL unless assigned */
    char *device_id;    /* NULL unless assigned */
    char *substatus;    /* "initialAssignment", ... or NULL */
    int error_code;     /* Azure errorCode of a failed registration or error reply, else 0 */
    char *error_message;
    char *operation_id;
    char *tracking_id; /* of an error reply: where the operator finds the reason */
    char *json;        /* the last answer as received */
};

/* Frees what r holds and zeroes it; r may be NULL. */
void dps_device_result_release(struct dps_device_result *r);

/*
 * Registers the device: PUT /{idScope}/registrations/{id}/register, then,
 * while the answer is `assigning`, GET the operation after Retry-After
 * seconds (1 to 60, default 2), at most DPS_DEVICE_POLLS_MAX times.
 *
 * Over MQTT the same exchange runs on one connection: CONNECT (client id
 * the registration id, user name "{scope}/registrations/{id}/api-version=
 * 2019-03-31&ClientVersion=...", password the SAS token for a symmetric
 * key, the certificate in the TLS handshake for X.509), SUBSCRIBE
 * "$dps/registrations/res/#", a register PUBLISH, poll PUBLISHes after the
 * response topic's retry-after, then UNSUBSCRIBE and DISCONNECT. A CONNECT
 * the service refuses is DPS_ERR_AUTH (return code 4 or 5, out->error_code
 * 401002) or DPS_ERR_INVAL / DPS_ERR_IO / DPS_ERR_PROTOCOL for the others.
 *
 * out: filled on DPS_OK (a finished registration: assigned, failed or
 *   disabled) and on DPS_ERR_AUTH / DPS_ERR_INVAL / DPS_ERR_NOT_FOUND from
 *   the service (error_code, error_message and tracking_id set).
 * err: the reason of any failure.
 *
 * Returns: DPS_OK (see out->status), DPS_ERR_INVAL (bad options, or the
 * service refused the request as malformed), DPS_ERR_AUTH (the service did
 * not accept the credential), DPS_ERR_NOT_FOUND (unknown id scope),
 * DPS_ERR_TLS, DPS_ERR_IO, DPS_ERR_PROTOCOL (an answer that is not a
 * registration status, or an MQTT or WebSocket protocol violation),
 * DPS_ERR_NOMEM.
 */
int dps_device_register(const struct dps_device_options *opts, struct dps_device_result *out,
                        struct dps_error *err);

/*
 * Derives a device key from a group key (§6):
 * base64(HMAC-SHA256(base64decode(group_key), registration_id)).
 *
 * out: on DPS_OK, the key; the caller wipes and frees it.
 *
 * Returns: DPS_OK, DPS_ERR_INVAL (group_key is not base64), DPS_ERR_NOMEM.
 */
int dps_device_derive_key(const char *group_key, const char *registration_id, char **out,
                          struct dps_error *err);

#endif
