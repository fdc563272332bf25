/* SPDX-License-Identifier: MIT */
/*
 * MQTT 3.1.1 for the device client, over TLS or over a WebSocket, with the
 * codec of core/mqtt_codec.h and the DPS topics of core/dps_mqtt.h. The
 * client side of RFC 6455 is small enough to carry here: one upgrade
 * request, masked binary frames out, unmasked frames in (binary and
 * continuation payloads are the MQTT byte stream; pings are answered).
 * Linked into dpsctl: returns DPS_ERR_NOMEM instead of aborting.
 */
#include "core/common.h"
#include "client/device_mqtt.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "client/https.h"
#include "core/dps_mqtt.h"
#include "core/mqtt_codec.h"

/* Bytes of the WebSocket upgrade response accepted, headers included. */
#define WS_RESPONSE_MAX 8192
/* Milliseconds the polite UNSUBSCRIBE waits for its UNSUBACK. */
#define CLOSE_WAIT_MS 2000

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

struct device_mqtt {
    struct https_conn *conn;
    bool ws;
    bool usable;    /* no error so far: the polite close is worth trying */
    bool ws_closed; /* a close frame came: what preceded it is still decoded */
    int timeout_ms;
    uint16_t next_id;  /* packet id */
    unsigned next_rid; /* $rid of the next request */
    struct mqtt_limits limits;
    uint8_t *raw; /* bytes read from TLS, not yet unwrapped (WebSocket only) */
    size_t raw_len;
    uint8_t *in; /* the MQTT byte stream, not yet decoded */
    size_t in_len;
    size_t cap; /* of raw and of in */
};

void device_reply_release(struct device_reply *r)
{
    if (!r)
        return;
    free(r->body);
    memset(r, 0, sizeof(*r));
}

static uint16_t packet_id(struct device_mqtt *m)
{
    if (m->next_id == 0)
        m->next_id = 1;
    return m->next_id++;
}

/* Reads more TLS bytes into buf (holding *len of cap). */
static int read_more(struct device_mqtt *m, uint8_t *buf, size_t *len, struct dps_error *err)
{
    size_t got = 0;
    int rc;

    if (*len == m->cap)
        return dps_error_set(err, DPS_ERR_PROTOCOL,
                             "the service sent a packet over the limit of %d bytes",
                             DPS_DEVICE_MQTT_MAX_PACKET);
    rc = https_conn_read(m->conn, buf + *len, m->cap - *len, m->timeout_ms, &got, err);
    if (rc != DPS_OK)
        return rc;
    *len += got;
    return DPS_OK;
}

/* Sends bytes as they are (TLS) or as one masked binary frame (WebSocket). */
static int send_frame(struct device_mqtt *m, uint8_t opcode, const uint8_t *data, size_t len,
                      struct dps_error *err)
{
    uint8_t head[14], *frame;
    size_t h = 0, i;
    int rc;

    head[h++] = (uint8_t)(0x80 | opcode);
    if (len < 126) {
        head[h++] = (uint8_t)(0x80 | len);
    } else if (len < 65536) {
        head[h++] = 0x80 | 126;
        head[h++] = (uint8_t)(len >> 8);
        head[h++] = (uint8_t)len;
    } else {
        head[h++] = 0x80 | 127;
        for (i = 0; i < 8; i++)
            head[h++] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    }
    /* RFC 6455 §5.3: a fresh unpredictable mask per frame. */
    if (RAND_bytes(head + h, 4) != 1)
        return dps_error_set(err, DPS_ERR_INTERNAL, "no random bytes for a websocket mask");
    h += 4;
    if (!(frame = malloc(h + len + 1)))
        return dps_error_set(err, DPS_ERR_NOMEM, "out of memory");
    memcpy(frame, head, h);
    for (i = 0; i < len; i++)
        frame[h + i] = data[i] ^ head[h - 4 + (i & 3)];
    rc = https_conn_write(m->conn, frame, h + len, m->timeout_ms, err);
    free(frame);
    return rc;
}

static int send_bytes(struct device_mqtt *m, const uint8_t *data, size_t len, struct dps_error *err)
{
    int rc = m->ws ? send_frame(m, 0x2, data, len, err)
                   : https_conn_write(m->conn, data, len, m->timeout_ms, err);

    if (rc != DPS_OK)
        m->usable = false;
    return rc;
}

/*
 * Unwraps the complete frames at the start of m->raw into m->in. Frames
 * from the server are unmasked (§5.1); a close ends the stream.
 */
static int ws_unwrap(struct device_mqtt *m, struct dps_error *err)
{
    for (;;) {
        const uint8_t *p = m->raw;
        size_t h = 2, len, i;
        uint8_t opcode;
        int rc;

        if (m->raw_len < 2)
            return DPS_OK;
        opcode = p[0] & 0x0F;
        if (p[1] & 0x80)
            return dps_error_set(err, DPS_ERR_PROTOCOL,
                                 "the service sent a masked websocket frame");
        len = p[1] & 0x7F;
        if (len == 126) {
            if (m->raw_len < 4)
                return DPS_OK;
            len = (size_t)p[2] << 8 | p[3];
            h = 4;
        } else if (len == 127) {
            uint64_t n = 0;

            if (m->raw_len < 10)
                return DPS_OK;
            for (i = 0; i < 8; i++)
                n = n << 8 | p[2 + i];
            if (n > DPS_DEVICE_MQTT_MAX_PACKET)
                return dps_error_set(err, DPS_ERR_PROTOCOL,
                                     "the service sent a websocket frame over the limit of %d "
                                     "bytes",
                                     DPS_DEVICE_MQTT_MAX_PACKET);
            len = (size_t)n;
            h = 10;
        }
        if (h + len > m->cap)
            return dps_error_set(err, DPS_ERR_PROTOCOL,
                                 "the service sent a websocket frame over the limit of %d bytes",
                                 DPS_DEVICE_MQTT_MAX_PACKET);
        if (m->raw_len < h + len)
            return DPS_OK;
        switch (opcode) {
        case 0x0: /* continuation */
        case 0x2: /* binary: MQTT is a byte stream across messages */
            if (m->in_len + len > m->cap)
                return dps_error_set(err, DPS_ERR_PROTOCOL,
                                     "the service sent a packet over the limit of %d bytes",
                                     DPS_DEVICE_MQTT_MAX_PACKET);
            memcpy(m->in + m->in_len, p + h, len);
            m->in_len += len;
            break;
        case 0x8:
            /* The packets before it (a refusing CONNACK) are still read. */
            m->ws_closed = true;
            m->raw_len = 0;
            return DPS_OK;
        case 0x9: /* ping: answer with the same payload */
            if ((rc = send_frame(m, 0xA, p + h, len, err)) != DPS_OK)
                return rc;
            break;
        case 0xA:
            break;
        default:
            return dps_error_set(err, DPS_ERR_PROTOCOL,
                                 "the service sent a websocket frame of opcode %u", opcode);
        }
        m->raw_len -= h + len;
        memmove(m->raw, m->raw + h + len, m->raw_len);
    }
}

/*
 * Waits for the next MQTT packet; it borrows from m->in until the next
 * call, whose first act is to drop it (*consumed bytes).
 */
static int read_packet(struct device_mqtt *m, struct mqtt_packet *p, size_t *consumed,
                       struct dps_error *err)
{
    int n, rc;

    if (*consumed) {
        m->in_len -= *consumed;
        memmove(m->in, m->in + *consumed, m->in_len);
        *consumed = 0;
    }
    for (;;) {
        struct dps_error derr = {0};

        n = mqtt_decode(m->in, m->in_len, &m->limits, p, &derr);
        if (n > 0) {
            *consumed = (size_t)n;
            return DPS_OK;
        }
        if (n != MQTT_INCOMPLETE) {
            m->usable = false;
            return dps_error_set(err, DPS_ERR_PROTOCOL, "the service sent a bad packet: %s",
                                 derr.msg);
        }
        if (m->ws && m->ws_closed) {
            rc = dps_error_set(err, DPS_ERR_IO, "the service closed the websocket");
        } else if (m->ws) {
            rc = read_more(m, m->raw, &m->raw_len, err);
            if (rc == DPS_OK)
                rc = ws_unwrap(m, err);
        } else {
            rc = read_more(m, m->in, &m->in_len, err);
        }
        if (rc != DPS_OK) {
            m->usable = false;
            return rc;
        }
    }
}

/* The WebSocket upgrade (RFC 6455 §4.1) at /$iothub/websocket with the subprotocol mqtt. */
static int ws_upgrade(struct device_mqtt *m, const char *host, struct dps_error *err)
{
    unsigned char nonce[16], digest[SHA_DIGEST_LENGTH];
    char key[32], want[64], req[512], line[300], *end, *p;
    bool accept_ok = false, proto_ok = false;
    int rc;

    if (RAND_bytes(nonce, sizeof(nonce)) != 1)
        return dps_error_set(err, DPS_ERR_INTERNAL, "no random bytes for a websocket key");
    EVP_EncodeBlock((unsigned char *)key, nonce, sizeof(nonce));
    snprintf(line, sizeof(line), "%s%s", key, ws_guid);
    SHA1((const unsigned char *)line, strlen(line), digest);
    EVP_EncodeBlock((unsigned char *)want, digest, sizeof(digest));
    snprintf(req, sizeof(req),
             "GET /$iothub/websocket HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
             "Sec-WebSocket-Protocol: mqtt\r\nUser-Agent: libdps-device/" DPS_VERSION "\r\n\r\n",
             host, key);
    if ((rc = https_conn_write(m->conn, req, strlen(req), m->timeout_ms, err)) != DPS_OK)
        return rc;
    /* The response head; what follows it is already frames. */
    for (;;) {
        m->raw[m->raw_len] = '\0';
        if ((end = strstr((char *)m->raw, "\r\n\r\n")))
            break;
        if (m->raw_len >= WS_RESPONSE_MAX)
            return dps_error_set(err, DPS_ERR_PROTOCOL,
                                 "the websocket upgrade response is over %d bytes",
                                 WS_RESPONSE_MAX);
        if ((rc = read_more(m, m->raw, &m->raw_len, err)) != DPS_OK)
            return rc;
    }
    if (strncmp((char *)m->raw, "HTTP/1.1 101", 12) != 0) {
        p = strchr((char *)m->raw, '\r');
        return dps_error_set(err, DPS_ERR_PROTOCOL,
                             "the service refused the websocket upgrade: '%.*s'",
                             p ? (int)(p - (char *)m->raw) : 0, (char *)m->raw);
    }
    for (p = strstr((char *)m->raw, "\r\n"); p && p < end; p = strstr(p + 2, "\r\n")) {
        const char *h = p + 2, *eol = strstr(h, "\r\n");
        size_t n = eol ? (size_t)(eol - h) : 0;

        if (n >= sizeof(line))
            continue;
        memcpy(line, h, n);
        line[n] = '\0';
        if (strncasecmp(line, "Sec-WebSocket-Accept:", 21) == 0)
            accept_ok = strcmp(line + 21 + strspn(line + 21, " \t"), want) == 0;
        else if (strncasecmp(line, "Sec-WebSocket-Protocol:", 23) == 0)
            proto_ok = strcasecmp(line + 23 + strspn(line + 23, " \t"), "mqtt") == 0;
    }
    if (!accept_ok || !proto_ok)
        return dps_error_set(err, DPS_ERR_PROTOCOL,
                             "the websocket upgrade response lacks the right "
                             "'Sec-WebSocket-%s'",
                             accept_ok ? "Protocol" : "Accept");
    m->raw_len -= (size_t)(end + 4 - (char *)m->raw);
    memmove(m->raw, end + 4, m->raw_len);
    return ws_unwrap(m, err);
}

/* Encodes into a fresh buffer with the codec's measure-then-write convention. */
static int send_connect(struct device_mqtt *m, const struct dps_device_options *o,
                        const char *password, struct dps_error *err)
{
    struct mqtt_connect c = {0};
    char user[DPS_MQTT_USERNAME_MAX + 1];
    size_t n;
    uint8_t *buf;
    int rc;

    n = dps_mqtt_username_build(user, sizeof(user), o->id_scope, o->registration_id,
                                DEVICE_MQTT_API_VERSION, "libdps-device/" DPS_VERSION);
    if (n >= sizeof(user))
        return dps_error_set(err, DPS_ERR_INVAL, "the mqtt 'user name' is too long");
    c.level = 4;
    c.clean_session = true;
    c.keep_alive = DPS_DEVICE_MQTT_KEEP_ALIVE;
    c.client_id = (struct mqtt_str){o->registration_id, strlen(o->registration_id)};
    c.has_username = true;
    c.username = (struct mqtt_str){user, n};
    if (password) {
        c.has_password = true;
        c.password = (struct mqtt_bytes){(const uint8_t *)password, strlen(password)};
    }
    if (!(n = mqtt_encode_connect(NULL, 0, &c)))
        return dps_error_set(err, DPS_ERR_INVAL, "the CONNECT cannot be encoded");
    if (!(buf = malloc(n)))
        return dps_error_set(err, DPS_ERR_NOMEM, "out of memory");
    mqtt_encode_connect(buf, n, &c);
    rc = send_bytes(m, buf, n, err);
    OPENSSL_cleanse(buf, n);
    free(buf);
    return rc;
}

static int connack_error(uint8_t code, struct dps_error *err)
{
    static const char *const why[] = {"",
                                      "unacceptable protocol version",
                                      "identifier rejected",
                                      "server unavailable",
                                      "bad user name or password",
                                      "not authorized"};
    int rc = code == MQTT_CONNACK_NOT_AUTHORIZED || code == MQTT_CONNACK_BAD_USERNAME_PASSWORD
                 ? DPS_ERR_AUTH
             : code == MQTT_CONNACK_IDENTIFIER_REJECTED ? DPS_ERR_INVAL
             : code == MQTT_CONNACK_SERVER_UNAVAILABLE  ? DPS_ERR_IO
                                                        : DPS_ERR_PROTOCOL;

    return dps_error_set(err, rc, "the service refused the connection: %s (CONNACK %u)",
                         code < ARRAY_SIZE(why) ? why[code] : "unknown code", code);
}

int device_mqtt_open(const struct dps_device_options *o, const char *password,
                     struct device_mqtt **out, struct dps_error *err)
{
    struct https_options ho = {0};
    struct device_mqtt *m;
    struct mqtt_packet p;
    uint8_t buf[128];
    size_t consumed = 0, n;
    uint16_t sub_id;
    int rc;

    if (!(m = calloc(1, sizeof(*m))))
        return dps_error_set(err, DPS_ERR_NOMEM, "out of memory");
    m->ws = o->transport == DPS_DEVICE_MQTT_WS;
    m->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : HTTPS_DEFAULT_TIMEOUT_MS;
    m->next_id = 1;
    m->next_rid = 1;
    m->cap = DPS_DEVICE_MQTT_MAX_PACKET + 16;
    m->limits = mqtt_default_limits;
    m->limits.max_packet = DPS_DEVICE_MQTT_MAX_PACKET;
    m->in = malloc(m->cap);
    m->raw = m->ws ? malloc(m->cap + 1) : NULL;
    if (!m->in || (m->ws && !m->raw)) {
        rc = dps_error_set(err, DPS_ERR_NOMEM, "out of memory");
        goto fail;
    }
    ho.host = o->host ? o->host : DPS_DEVICE_GLOBAL_ENDPOINT;
    ho.connect_host = o->connect_host;
    ho.port = o->port ? o->port : m->ws ? 443 : 8883;
    ho.ca_file = o->ca_file;
    ho.timeout_ms = m->timeout_ms;
    ho.cert_file = o->cert_file;
    ho.key_file = o->key_file;
    if ((rc = https_conn_new(&ho, &m->conn, err)) != DPS_OK ||
        (rc = https_conn_open(m->conn, err)) != DPS_OK)
        goto fail;
    if (m->ws && (rc = ws_upgrade(m, ho.host, err)) != DPS_OK)
        goto fail;
    if ((rc = send_connect(m, o, password, err)) != DPS_OK ||
        (rc = read_packet(m, &p, &consumed, err)) != DPS_OK)
        goto fail;
    if (p.type != MQTT_CONNACK) {
        rc = dps_error_set(err, DPS_ERR_PROTOCOL, "the service answered CONNECT with %s",
                           mqtt_type_name(p.type));
        goto fail;
    }
    if (p.u.connack.return_code != MQTT_CONNACK_ACCEPTED) {
        rc = connack_error(p.u.connack.return_code, err);
        goto fail;
    }
    sub_id = packet_id(m);
    n = mqtt_encode_subscribe(buf, sizeof(buf), sub_id, DPS_MQTT_RESPONSE_FILTER, 1);
    if ((rc = send_bytes(m, buf, n, err)) != DPS_OK)
        goto fail;
    for (;;) {
        if ((rc = read_packet(m, &p, &consumed, err)) != DPS_OK)
            goto fail;
        if (p.type == MQTT_SUBACK && p.u.suback.packet_id == sub_id)
            break;
    }
    if (p.u.suback.return_codes[0] == MQTT_SUBACK_FAILURE) {
        rc = dps_error_set(err, DPS_ERR_INVAL, "the service refused the subscription to '%s'",
                           DPS_MQTT_RESPONSE_FILTER);
        goto fail;
    }
    m->in_len -= consumed;
    memmove(m->in, m->in + consumed, m->in_len);
    m->usable = true;
    *out = m;
    return DPS_OK;
fail:
    device_mqtt_close(m);
    return rc;
}

int device_mqtt_request(struct device_mqtt *m, const char *operation_id, const char *body,
                        struct device_reply *out, struct dps_error *err)
{
    char rid[16], topic[DPS_MQTT_RESPONSE_TOPIC_SIZE + DPS_MQTT_OPERATION_ID_MAX];
    struct device_reply r = {0};
    struct mqtt_packet p;
    size_t consumed = 0, tlen, n;
    uint8_t *buf;
    int rc;

    snprintf(rid, sizeof(rid), "%u", m->next_rid++);
    tlen = dps_mqtt_request_topic_build(
        topic, sizeof(topic), operation_id ? DPS_MQTT_POLL : DPS_MQTT_REGISTER, rid, operation_id);
    if (tlen >= sizeof(topic))
        return dps_error_set(err, DPS_ERR_INVAL, "the operation id is too long");
    if (!body)
        body = " ";
    n = mqtt_encode_publish(NULL, 0, topic, tlen, body, strlen(body), 1, 1);
    n = n ? n : 1;
    if (!(buf = malloc(n)))
        return dps_error_set(err, DPS_ERR_NOMEM, "out of memory");
    n = mqtt_encode_publish(buf, n, topic, tlen, body, strlen(body), 1, packet_id(m));
    rc = n ? send_bytes(m, buf, n, err)
           : dps_error_set(err, DPS_ERR_INVAL, "the request cannot be encoded");
    free(buf);
    if (rc != DPS_OK)
        return rc;
    for (;;) {
        struct dps_mqtt_response resp;
        struct dps_error terr = {0};
        uint8_t ack[4];

        if ((rc = read_packet(m, &p, &consumed, err)) != DPS_OK)
            return rc;
        if (p.type != MQTT_PUBLISH)
            continue; /* our PUBACK, a PINGRESP */
        if (p.u.publish.qos == 1 &&
            (rc = send_bytes(m, ack, mqtt_encode_puback(ack, sizeof(ack), p.u.publish.packet_id),
                             err)) != DPS_OK)
            return rc;
        if (dps_mqtt_response_topic_parse(p.u.publish.topic.ptr, p.u.publish.topic.len, &resp,
                                          &terr) != DPS_OK) {
            m->usable = false;
            return dps_error_set(err, DPS_ERR_PROTOCOL, "the service sent a bad response topic: %s",
                                 terr.msg);
        }
        if (resp.rid_len != strlen(rid) || memcmp(resp.rid, rid, resp.rid_len) != 0)
            continue; /* the answer to an earlier request */
        r.status = resp.status;
        r.retry_after = resp.retry_after;
        r.body_len = p.u.publish.payload.len;
        if (!(r.body = malloc(r.body_len + 1)))
            return dps_error_set(err, DPS_ERR_NOMEM, "out of memory");
        if (r.body_len)
            memcpy(r.body, p.u.publish.payload.ptr, r.body_len);
        r.body[r.body_len] = '\0';
        break;
    }
    m->in_len -= consumed;
    memmove(m->in, m->in + consumed, m->in_len);
    *out = r;
    return DPS_OK;
}

void device_mqtt_close(struct device_mqtt *m)
{
    uint8_t buf[64];
    size_t n;

    if (!m)
        return;
    if (m->usable) {
        struct dps_error ignored = {0};
        struct mqtt_packet p;
        size_t consumed = 0;
        uint16_t id = packet_id(m);

        /* Node waits for this UNSUBACK; we wait briefly, then leave anyway. */
        m->timeout_ms = CLOSE_WAIT_MS;
        n = mqtt_encode_unsubscribe(buf, sizeof(buf), id, DPS_MQTT_RESPONSE_FILTER);
        if (send_bytes(m, buf, n, &ignored) == DPS_OK) {
            for (int i = 0; i < 8 && read_packet(m, &p, &consumed, &ignored) == DPS_OK; i++)
                if (p.type == MQTT_UNSUBACK && p.u.packet_id == id)
                    break;
        }
        n = mqtt_encode_disconnect(buf, sizeof(buf));
        send_bytes(m, buf, n, &ignored);
        if (m->ws)
            send_frame(m, 0x8, (const uint8_t *)"\x03\xe8", 2, &ignored);
    }
    https_conn_free(m->conn);
    free(m->in);
    free(m->raw);
    free(m);
}
