/* SPDX-License-Identifier: MIT */
/*
 * The DPS layer over MQTT (dps-protocol.md §5): the CONNECT user name, the
 * register and poll topics a device publishes to, the one filter it may
 * subscribe to, and the response topics it reads. Pure string work with
 * bounded fixed-size results: no allocation, no sockets, no MQTT framing
 * (that is core/mqtt_codec.h). Linked into libdps for the client side.
 */
#ifndef DPS_CORE_DPS_MQTT_H
#define DPS_CORE_DPS_MQTT_H

#include <stdbool.h>
#include <stddef.h>

#include "dps/error.h"

/* The only filter a device may subscribe to; it is granted QoS 1. */
#define DPS_MQTT_RESPONSE_FILTER "$dps/registrations/res/#"
/* Topic a device publishes a registration request to, before "?$rid=...". */
#define DPS_MQTT_REGISTER_TOPIC "$dps/registrations/PUT/iotdps-register/"
/* Topic a device publishes an operation status poll to, before "?$rid=...". */
#define DPS_MQTT_POLL_TOPIC "$dps/registrations/GET/iotdps-get-operationstatus/"
/* Prefix of every response topic. */
#define DPS_MQTT_RESPONSE_PREFIX "$dps/registrations/res/"

/* Bounds of the user name fields, in bytes after percent-decoding. */
#define DPS_MQTT_SCOPE_MAX 64
#define DPS_MQTT_REGID_MAX 128
#define DPS_MQTT_API_VERSION_MAX 32
#define DPS_MQTT_CLIENT_VERSION_MAX 256
/* Longest user name dps_mqtt_username_parse() reads. */
#define DPS_MQTT_USERNAME_MAX 1024
/* Longest $rid kept, in bytes as sent. */
#define DPS_MQTT_RID_MAX 128
/* Longest operationId in a poll topic, in bytes as sent. */
#define DPS_MQTT_OPERATION_ID_MAX 256
/* A buffer this large holds any response topic dps_mqtt_response_topic() builds. */
#define DPS_MQTT_RESPONSE_TOPIC_SIZE                                                               \
    (sizeof(DPS_MQTT_RESPONSE_PREFIX) + 3 + 7 + DPS_MQTT_RID_MAX + 24)

/*
 * The CONNECT user name, "{scope}/registrations/{regId}/api-version=V" then
 * optional "&ClientVersion=C" and other "&k=v" pairs. Every field is
 * percent-decoded and NUL-terminated; absent fields are "".
 */
struct dps_mqtt_username {
    char id_scope[DPS_MQTT_SCOPE_MAX + 1];
    char registration_id[DPS_MQTT_REGID_MAX + 1]; /* not checked: see core/regid.h */
    char api_version[DPS_MQTT_API_VERSION_MAX + 1];
    char client_version[DPS_MQTT_CLIENT_VERSION_MAX + 1];
};

/*
 * Parses a CONNECT user name. The scope and the registration id must be
 * non-empty; the "/" after the registration id and the parameters are
 * optional (api-version is not required: any value is accepted, §11). The
 * parameters are '&'-separated k=v pairs, matched case-sensitively as the
 * clients send them; unknown keys are ignored, a repeated known key is
 * refused. A leading '?' before them is tolerated. "%XX" is decoded where
 * it is a valid escape and kept as is otherwise (Embedded C sends its user
 * agent unencoded); a decoded NUL byte is refused.
 *
 * s, len: the user name, borrowed; need not be NUL-terminated; at most
 *         DPS_MQTT_USERNAME_MAX bytes.
 * out:    on success, the fields. Untouched on failure.
 * err:    on failure, what is wrong (may be NULL); code DPS_ERR_INVAL.
 *
 * Returns: DPS_OK or DPS_ERR_INVAL.
 */
int dps_mqtt_username_parse(const char *s, size_t len, struct dps_mqtt_username *out,
                            struct dps_error *err);

/*
 * Builds a user name as the Azure C SDK does:
 * "{scope}/registrations/{regId}/api-version={api_version}" and, when
 * client_version is not NULL, "&ClientVersion={client_version percent-encoded}".
 *
 * Returns: the length of the user name (without the terminator), written
 * NUL-terminated to buf only when it is below cap (snprintf style).
 */
size_t dps_mqtt_username_build(char *buf, size_t cap, const char *id_scope,
                               const char *registration_id, const char *api_version,
                               const char *client_version);

enum dps_mqtt_request {
    DPS_MQTT_REGISTER = 1, /* $dps/registrations/PUT/iotdps-register/?$rid={rid} */
    DPS_MQTT_POLL, /* $dps/registrations/GET/iotdps-get-operationstatus/?$rid=&operationId= */
};

/*
 * A request topic. rid and operation_id borrow from the topic, exactly as
 * sent (not decoded): the response echoes $rid byte for byte (§5.3).
 */
struct dps_mqtt_request_topic {
    enum dps_mqtt_request kind;
    const char *rid; /* NULL when rid_len is 0 ("$rid=" empty or absent) */
    size_t rid_len;
    const char *operation_id; /* poll only; NULL for a register request */
    size_t operation_id_len;
};

/*
 * Parses the topic of a device's PUBLISH. The path must be one of the two
 * above exactly (case-sensitive, as MQTT topics are), followed by nothing
 * or by '?' and '&'-separated k=v pairs in any order: "$rid" (optional,
 * may be empty, at most DPS_MQTT_RID_MAX bytes) and, for a poll,
 * "operationId" (required, non-empty, at most DPS_MQTT_OPERATION_ID_MAX
 * bytes). Unknown keys are ignored; a repeated known key or a pair without
 * '=' is refused.
 *
 * topic, len: borrowed; need not be NUL-terminated.
 * out:        on success, the request; its pointers borrow from topic.
 *             Untouched on failure.
 * err:        on failure, what is wrong (may be NULL); code DPS_ERR_INVAL,
 *             or DPS_ERR_NOT_FOUND for a topic that is no DPS request.
 *
 * Returns: DPS_OK, DPS_ERR_NOT_FOUND or DPS_ERR_INVAL.
 */
int dps_mqtt_request_topic_parse(const char *topic, size_t len, struct dps_mqtt_request_topic *out,
                                 struct dps_error *err);

/*
 * Builds a request topic: DPS_MQTT_REGISTER_TOPIC "?$rid={rid}", or
 * DPS_MQTT_POLL_TOPIC "?$rid={rid}&operationId={operation_id}". rid and
 * operation_id are written as given (the caller keeps them URL-safe).
 *
 * Returns: the length of the topic (without the terminator), written
 * NUL-terminated to buf only when it is below cap (snprintf style).
 */
size_t dps_mqtt_request_topic_build(char *buf, size_t cap, enum dps_mqtt_request kind,
                                    const char *rid, const char *operation_id);

/*
 * True when a SUBSCRIBE filter is the one DPS serves
 * (DPS_MQTT_RESPONSE_FILTER, exactly); the session answers 0x80 to others.
 */
bool dps_mqtt_filter_is_supported(const char *filter, size_t len);

/*
 * Builds "$dps/registrations/res/{status}/?$rid={rid}" and, when
 * retry_after >= 0, "&retry-after={retry_after}".
 *
 * buf, cap:     the destination; DPS_MQTT_RESPONSE_TOPIC_SIZE bytes always suffice.
 * status:       the HTTP-like status, 100..999.
 * rid, rid_len: the request's $rid as sent, at most DPS_MQTT_RID_MAX bytes
 *               (as dps_mqtt_request_topic_parse() guarantees).
 * retry_after:  seconds, or -1 to leave the parameter out.
 *
 * Returns: the length of the topic (without the terminator), written
 * NUL-terminated only when it is below cap; 0 when status, rid_len or
 * retry_after is out of range.
 */
size_t dps_mqtt_response_topic(char *buf, size_t cap, int status, const char *rid, size_t rid_len,
                               long retry_after);

/* A response topic, read back (clients and tests). */
struct dps_mqtt_response {
    int status;
    const char *rid; /* borrowed from the topic; NULL when rid_len is 0 */
    size_t rid_len;
    long retry_after; /* -1 when absent */
};

/*
 * Parses a response topic the way the strictest client does: the prefix,
 * three status digits, "/?", then '&'-separated k=v pairs with "$rid" and
 * an optional "retry-after" of decimal digits.
 *
 * Returns: DPS_OK, or DPS_ERR_INVAL with err filled (out untouched).
 */
int dps_mqtt_response_topic_parse(const char *topic, size_t len, struct dps_mqtt_response *out,
                                  struct dps_error *err);

#endif
