/* SPDX-License-Identifier: MIT */
/*
 * The MQTT transport of the libdps device client (dps-protocol.md §5):
 * MQTT 3.1.1 on the TLS stream of client/https.h, directly (port 8883) or
 * inside WebSocket frames after an upgrade at /$iothub/websocket. Blocking,
 * every wait bounded by the options' timeout, every packet and frame by
 * DPS_DEVICE_MQTT_MAX_PACKET. Internal to libdps: dps_device_register()
 * is the API.
 */
#ifndef DPS_CLIENT_DEVICE_MQTT_H
#define DPS_CLIENT_DEVICE_MQTT_H

#include <stddef.h>

#include "dps/device.h"
#include "dps/error.h"

/* API version sent in the CONNECT user name (the one the Azure SDKs send over MQTT). */
#define DEVICE_MQTT_API_VERSION "2019-03-31"

/* One answer of the service, whatever the transport. Release with device_reply_release(). */
struct device_reply {
    int status;       /* HTTP-like status: 200, 202, 401, ... */
    long retry_after; /* seconds, -1 when the service named none */
    char *body;       /* NUL-terminated JSON text; body_len excludes the NUL */
    size_t body_len;
};

/* Frees what r holds and zeroes it; r may be NULL. */
void device_reply_release(struct device_reply *r);

struct device_mqtt;

/*
 * Connects (TLS, the WebSocket upgrade for DPS_DEVICE_MQTT_WS), sends
 * CONNECT and SUBSCRIBE and waits for CONNACK and SUBACK.
 *
 * o:        checked options (transport DPS_DEVICE_MQTT or DPS_DEVICE_MQTT_WS);
 *           borrowed for the call.
 * password: the SAS token, or NULL (X.509); borrowed for the call.
 * out:      on DPS_OK, the session; close with device_mqtt_close().
 *
 * Returns: DPS_OK; DPS_ERR_AUTH (CONNACK 4 or 5), DPS_ERR_INVAL (CONNACK 2,
 * a refused subscription), DPS_ERR_IO (cannot connect, closed, timeout,
 * CONNACK 3), DPS_ERR_TLS, DPS_ERR_PROTOCOL (a malformed packet or frame,
 * a failed upgrade, CONNACK 1), DPS_ERR_NOMEM.
 */
int device_mqtt_open(const struct dps_device_options *o, const char *password,
                     struct device_mqtt **out, struct dps_error *err);

/*
 * Publishes a register request (operation_id NULL, body the
 * DeviceRegistration JSON) or a poll of operation_id, and waits for the
 * response PUBLISH with the same $rid.
 *
 * out: on DPS_OK, the answer (any status).
 *
 * Returns: DPS_OK; DPS_ERR_IO, DPS_ERR_PROTOCOL, DPS_ERR_NOMEM as for
 * device_mqtt_open().
 */
int device_mqtt_request(struct device_mqtt *m, const char *operation_id, const char *body,
                        struct device_reply *out, struct dps_error *err);

/*
 * Ends the session politely when it is still usable (UNSUBSCRIBE, waiting
 * briefly for UNSUBACK, then DISCONNECT), closes the connection and frees
 * m; NULL is a no-op.
 */
void device_mqtt_close(struct device_mqtt *m);

#endif
