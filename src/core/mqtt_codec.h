/* SPDX-License-Identifier: MIT */
/*
 * MQTT 3.1.1 packets without I/O: a decoder over (buf, len) that returns the
 * bytes consumed, MQTT_INCOMPLETE or MQTT_INVALID (as picohttpparser does),
 * and encoders into caller buffers. Decoding allocates nothing: a decoded
 * packet borrows its strings from the input. The session layer decides
 * which packets a peer may send; this file only knows the wire format.
 */
#ifndef DPS_CORE_MQTT_CODEC_H
#define DPS_CORE_MQTT_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dps/error.h"

/* mqtt_decode() results besides the number of bytes consumed. */
#define MQTT_INVALID (-1)    /* malformed: close the connection */
#define MQTT_INCOMPLETE (-2) /* a valid prefix: read more bytes and call again */
/*
 * A well-formed CONNECT with protocol name "MQTT" and a level other than 4:
 * MQTT 3.1.1 §3.1.2.2 asks the server to answer CONNACK 0x01 (unacceptable
 * protocol level) and then close.
 */
#define MQTT_UNSUPPORTED_LEVEL (-3)

/* The protocol level of MQTT 3.1.1. */
#define MQTT_PROTOCOL_LEVEL 4
/* Largest remaining length the 4-byte variable length integer can hold. */
#define MQTT_MAX_REMAINING_LENGTH 268435455u
/* Largest fixed header: one type byte and four length bytes. */
#define MQTT_MAX_FIXED_HEADER 5
/* Topic filters one SUBSCRIBE or UNSUBSCRIBE may carry (DPS clients send one). */
#define MQTT_MAX_FILTERS 8
/* Longest UTF-8 string or binary field the wire format can carry. */
#define MQTT_MAX_STRING 65535u

enum mqtt_type {
    MQTT_CONNECT = 1,
    MQTT_CONNACK = 2,
    MQTT_PUBLISH = 3,
    MQTT_PUBACK = 4,
    MQTT_PUBREC = 5,
    MQTT_PUBREL = 6,
    MQTT_PUBCOMP = 7,
    MQTT_SUBSCRIBE = 8,
    MQTT_SUBACK = 9,
    MQTT_UNSUBSCRIBE = 10,
    MQTT_UNSUBACK = 11,
    MQTT_PINGREQ = 12,
    MQTT_PINGRESP = 13,
    MQTT_DISCONNECT = 14,
};

/* CONNACK return codes (MQTT 3.1.1 §3.2.2.3). */
enum mqtt_connack_code {
    MQTT_CONNACK_ACCEPTED = 0,
    MQTT_CONNACK_BAD_PROTOCOL_LEVEL = 1,
    MQTT_CONNACK_IDENTIFIER_REJECTED = 2,
    MQTT_CONNACK_SERVER_UNAVAILABLE = 3,
    MQTT_CONNACK_BAD_USERNAME_PASSWORD = 4,
    MQTT_CONNACK_NOT_AUTHORIZED = 5,
};

/* The SUBACK return code of a refused subscription. */
#define MQTT_SUBACK_FAILURE 0x80

/*
 * Bounds every decoded packet is held to. A packet over a limit is
 * MQTT_INVALID with err->code DPS_ERR_TOO_LARGE; the size limit is checked
 * as soon as the fixed header has arrived, so a peer cannot make the caller
 * buffer more than max_packet bytes.
 */
struct mqtt_limits {
    size_t max_packet;    /* whole packet, fixed header included */
    size_t max_topic;     /* PUBLISH topic names, will topics and topic filters, in bytes */
    size_t max_client_id; /* CONNECT client identifier, in bytes */
};

/* The defaults: 64 KiB packets, 1 KiB topics, 256-byte client ids. */
extern const struct mqtt_limits mqtt_default_limits;

/* A UTF-8 string field: valid UTF-8 without U+0000; not NUL-terminated. */
struct mqtt_str {
    const char *ptr; /* borrowed; NULL only when len is 0 */
    size_t len;
};

/* A binary field (password, will message, payload); not NUL-terminated. */
struct mqtt_bytes {
    const uint8_t *ptr; /* borrowed; NULL only when len is 0 */
    size_t len;
};

struct mqtt_connect {
    uint8_t level;             /* always MQTT_PROTOCOL_LEVEL once decoded */
    bool clean_session;        /* DPS treats every session as clean whatever this says */
    uint16_t keep_alive;       /* seconds; 0 turns keep-alive off */
    struct mqtt_str client_id; /* may be empty */
    bool will;                 /* will_* are meaningful only when set */
    uint8_t will_qos;          /* 0..2 */
    bool will_retain;
    struct mqtt_str will_topic;
    struct mqtt_bytes will_message;
    bool has_username;
    struct mqtt_str username;
    bool has_password;          /* never without has_username (§3.1.2.9) */
    struct mqtt_bytes password; /* a secret: never log it */
};

struct mqtt_connack {
    bool session_present;
    uint8_t return_code; /* enum mqtt_connack_code */
};

struct mqtt_publish {
    bool dup;
    uint8_t qos; /* 0..2; the session layer refuses 2 */
    bool retain;
    struct mqtt_str topic; /* at least one byte, no '+' or '#' */
    uint16_t packet_id;    /* non-zero when qos > 0, else 0 */
    struct mqtt_bytes payload;
};

struct mqtt_subscription {
    struct mqtt_str filter; /* at least one byte, wildcards where §4.7.1 allows them */
    uint8_t qos;            /* requested QoS 0..2 */
};

struct mqtt_subscribe {
    uint16_t packet_id; /* non-zero */
    size_t count;       /* 1..MQTT_MAX_FILTERS */
    struct mqtt_subscription topics[MQTT_MAX_FILTERS];
};

struct mqtt_suback {
    uint16_t packet_id;
    size_t count;                           /* 1..MQTT_MAX_FILTERS */
    uint8_t return_codes[MQTT_MAX_FILTERS]; /* 0, 1, 2 or MQTT_SUBACK_FAILURE */
};

struct mqtt_unsubscribe {
    uint16_t packet_id; /* non-zero */
    size_t count;       /* 1..MQTT_MAX_FILTERS */
    struct mqtt_str filters[MQTT_MAX_FILTERS];
};

/*
 * One packet. `type` says which member of the union is meaningful:
 * PUBACK, PUBREC, PUBREL, PUBCOMP and UNSUBACK use packet_id; PINGREQ,
 * PINGRESP and DISCONNECT carry nothing.
 */
struct mqtt_packet {
    enum mqtt_type type;
    uint8_t flags; /* the low four bits of the first byte */
    union {
        struct mqtt_connect connect;
        struct mqtt_connack connack;
        struct mqtt_publish publish;
        struct mqtt_subscribe subscribe;
        struct mqtt_suback suback;
        struct mqtt_unsubscribe unsubscribe;
        uint16_t packet_id;
    } u;
};

/* "CONNECT", "PUBLISH", ...; "unknown" for a value outside enum mqtt_type. */
const char *mqtt_type_name(int type);

/*
 * Decodes the packet at the start of buf. Every field is checked against
 * MQTT 3.1.1: fixed-header flags (0x2 for SUBSCRIBE, UNSUBSCRIBE and PUBREL,
 * the PUBLISH flags otherwise 0; QoS 3 and DUP on QoS 0 refused), remaining
 * length in at most four bytes and exactly filled by the fields, UTF-8
 * strings well-formed without U+0000 or surrogates, CONNECT protocol name
 * "MQTT" and level 4, CONNECT flags (reserved bit 0, will QoS and retain 0
 * without a will, will QoS below 3, no password without a user name),
 * non-zero packet ids, at least one topic filter in (UN)SUBSCRIBE, no
 * wildcards in PUBLISH topics, well-placed wildcards in filters, valid
 * CONNACK and SUBACK codes. Any packet type is decoded whichever side sent
 * it; refusing packets a client may not send is the caller's job.
 *
 * buf, len: the received bytes; may hold several packets, or part of one.
 * lim:      bounds; NULL means mqtt_default_limits.
 * out:      on success, the packet; its strings borrow from buf and stay
 *           valid while buf does. Untouched on any other result.
 * err:      on MQTT_INVALID or MQTT_UNSUPPORTED_LEVEL, what is wrong (may be
 *           NULL): code DPS_ERR_PROTOCOL, or DPS_ERR_TOO_LARGE for a limit.
 *
 * Returns: the size of the packet (> 0; the caller drops that many bytes),
 * MQTT_INCOMPLETE when buf holds a valid prefix of a packet (nothing in it
 * is wrong yet), MQTT_INVALID, or MQTT_UNSUPPORTED_LEVEL.
 */
int mqtt_decode(const uint8_t *buf, size_t len, const struct mqtt_limits *lim,
                struct mqtt_packet *out, struct dps_error *err);

/*
 * Encoders. Each returns the size of the encoded packet and writes it to buf
 * only when that size is at most cap (snprintf style, without a
 * terminator): pass cap 0 to measure. A return of 0 means the input cannot
 * be encoded (a string over MQTT_MAX_STRING, a packet over
 * MQTT_MAX_REMAINING_LENGTH, a count of 0 or over MQTT_MAX_FILTERS, a QoS
 * over 2, a packet id of 0 where one is required); nothing is written then.
 * Encoders check the shape of what they write, not its meaning: a caller
 * that puts a wildcard in a PUBLISH topic gets a packet mqtt_decode refuses.
 */

/* Encodes any packet; the flags member is ignored (it follows from the fields). */
size_t mqtt_encode(const struct mqtt_packet *p, uint8_t *buf, size_t cap);

/* Server side. */
size_t mqtt_encode_connack(uint8_t *buf, size_t cap, bool session_present, uint8_t return_code);
size_t mqtt_encode_suback(uint8_t *buf, size_t cap, uint16_t packet_id, const uint8_t *codes,
                          size_t count);
size_t mqtt_encode_unsuback(uint8_t *buf, size_t cap, uint16_t packet_id);
size_t mqtt_encode_puback(uint8_t *buf, size_t cap, uint16_t packet_id);
size_t mqtt_encode_pingresp(uint8_t *buf, size_t cap);

/*
 * PUBLISH from either side. topic and payload are borrowed for the call;
 * packet_id is written only when qos > 0 (and must then be non-zero).
 */
size_t mqtt_encode_publish(uint8_t *buf, size_t cap, const char *topic, size_t topic_len,
                           const void *payload, size_t payload_len, uint8_t qos,
                           uint16_t packet_id);

/* Client side (tests, dpsctl, the benchmark client). */
size_t mqtt_encode_connect(uint8_t *buf, size_t cap, const struct mqtt_connect *c);
size_t mqtt_encode_subscribe(uint8_t *buf, size_t cap, uint16_t packet_id, const char *filter,
                             uint8_t qos);
size_t mqtt_encode_unsubscribe(uint8_t *buf, size_t cap, uint16_t packet_id, const char *filter);
size_t mqtt_encode_pingreq(uint8_t *buf, size_t cap);
size_t mqtt_encode_disconnect(uint8_t *buf, size_t cap);

#endif
