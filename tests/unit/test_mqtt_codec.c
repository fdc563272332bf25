/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the MQTT 3.1.1 codec: packets as the DPS device clients
 * send them (dps-protocol.md §5), built byte by byte independently of the
 * encoders; every packet type round trip; every prefix of a valid packet
 * incomplete; each rule of the specification refused with a reason.
 */
#include "core/common.h"
#include "core/mqtt_codec.h"

#include "../t.h"

/* A packet under construction, written without the codec's encoders. */
struct pkt {
    uint8_t body[70000];
    size_t n;
    uint8_t wire[70010];
    size_t wire_len;
};

static void add_u8(struct pkt *p, uint8_t v)
{
    p->body[p->n++] = v;
}

static void add_u16(struct pkt *p, uint16_t v)
{
    add_u8(p, (uint8_t)(v >> 8));
    add_u8(p, (uint8_t)v);
}

static void add_raw(struct pkt *p, const void *s, size_t n)
{
    memcpy(p->body + p->n, s, n);
    p->n += n;
}

static void add_str(struct pkt *p, const char *s)
{
    add_u16(p, (uint16_t)strlen(s));
    add_raw(p, s, strlen(s));
}

/* Puts the fixed header in front of the body. */
static const uint8_t *finish(struct pkt *p, uint8_t first)
{
    size_t rl = p->n, o = 0;

    p->wire[o++] = first;
    do {
        uint8_t b = rl & 0x7f;

        rl >>= 7;
        p->wire[o++] = rl ? (b | 0x80) : b;
    } while (rl);
    memcpy(p->wire + o, p->body, p->n);
    p->wire_len = o + p->n;
    return p->wire;
}

static struct pkt pk;

static void pkt_reset(void)
{
    pk.n = 0;
    pk.wire_len = 0;
}

/* A CONNECT as the clients of §5.1 send it. */
static void build_connect(const char *client_id, const char *username, const char *password,
                          bool clean, uint16_t keep_alive)
{
    uint8_t flags = (clean ? 0x02 : 0) | (username ? 0x80 : 0) | (password ? 0x40 : 0);

    pkt_reset();
    add_str(&pk, "MQTT");
    add_u8(&pk, 4);
    add_u8(&pk, flags);
    add_u16(&pk, keep_alive);
    add_str(&pk, client_id);
    if (username)
        add_str(&pk, username);
    if (password)
        add_str(&pk, password);
    finish(&pk, 0x10);
}

static void build_publish(const char *topic, const char *payload, uint8_t qos, uint16_t id)
{
    pkt_reset();
    add_str(&pk, topic);
    if (qos)
        add_u16(&pk, id);
    add_raw(&pk, payload, strlen(payload));
    finish(&pk, (uint8_t)(0x30 | qos << 1));
}

static bool str_is(struct mqtt_str s, const char *lit)
{
    return s.len == strlen(lit) && (s.len == 0 || memcmp(s.ptr, lit, s.len) == 0);
}

static bool bytes_is(struct mqtt_bytes s, const char *lit)
{
    return s.len == strlen(lit) && (s.len == 0 || memcmp(s.ptr, lit, s.len) == 0);
}

/*
 * Every strict prefix is MQTT_INCOMPLETE, the whole decodes to its full
 * length, and re-encoding the packet gives the same bytes.
 */
static bool decodes_whole(const uint8_t *b, size_t n, const struct mqtt_limits *lim,
                          struct mqtt_packet *out)
{
    struct dps_error err = {0};
    uint8_t again[70010];
    size_t m;

    for (size_t k = 0; k < n; k++) {
        if (mqtt_decode(b, k, lim, out, &err) != MQTT_INCOMPLETE) {
            fprintf(stderr, "    prefix of %zu bytes did not decode as incomplete: %s\n", k,
                    err.msg);
            return false;
        }
    }
    if (mqtt_decode(b, n, lim, out, &err) != (int)n) {
        fprintf(stderr, "    decode failed: %s\n", err.msg);
        return false;
    }
    m = mqtt_encode(out, again, sizeof(again));
    if (m != n || memcmp(again, b, n) != 0) {
        fprintf(stderr, "    re-encoding gave %zu bytes, not the %zu decoded\n", m, n);
        return false;
    }
    return true;
}

/* Decoding must fail with the given result and a message holding `reason`. */
static bool refused(const uint8_t *b, size_t n, const struct mqtt_limits *lim, int want,
                    const char *reason)
{
    struct mqtt_packet p;
    struct dps_error err = {0};
    int rc;

    memset(&p, 0xa5, sizeof(p));
    rc = mqtt_decode(b, n, lim, &p, &err);
    if (rc != want || !strstr(err.msg, reason)) {
        fprintf(stderr, "    got %d '%s', expected %d '%s'\n", rc, err.msg, want, reason);
        return false;
    }
    /* out is untouched on failure */
    for (size_t i = 0; i < sizeof(p); i++)
        if (((const uint8_t *)&p)[i] != 0xa5)
            return false;
    return true;
}

static const char node_username[] = "0ne00000000/registrations/node-dev-01/api-version=2019-03-31"
                                    "&ClientVersion=azure-iot-provisioning-device%2F1.9.1";
static const char sas_password[] = "SharedAccessSignature "
                                   "sr=0ne00000000%2Fregistrations%2Fnode-dev-01&sig=abc%3D&se="
                                   "1700000000&skn=registration";

static void test_connect_node(void)
{
    struct mqtt_packet p;

    build_connect("node-dev-01", node_username, sas_password, true, 180);
    ok(decodes_whole(pk.wire, pk.wire_len, NULL, &p));
    ok_int(p.type, MQTT_CONNECT);
    ok_int(p.u.connect.level, 4);
    ok(p.u.connect.clean_session);
    ok_int(p.u.connect.keep_alive, 180);
    ok(str_is(p.u.connect.client_id, "node-dev-01"));
    ok(p.u.connect.has_username && str_is(p.u.connect.username, node_username));
    ok(p.u.connect.has_password && bytes_is(p.u.connect.password, sas_password));
    ok(!p.u.connect.will);
    /* borrowed from the input */
    ok(p.u.connect.client_id.ptr > (const char *)pk.wire &&
       p.u.connect.client_id.ptr < (const char *)pk.wire + pk.wire_len);
end:;
}

static void test_connect_c_embedded_python(void)
{
    struct mqtt_packet p;

    /* azure-iot-sdk-c: keep-alive 0 */
    build_connect("c-dev", "0ne0/registrations/c-dev/api-version=2021-06-01&ClientVersion=1.15.0",
                  sas_password, true, 0);
    ok(decodes_whole(pk.wire, pk.wire_len, NULL, &p));
    ok_int(p.u.connect.keep_alive, 0);

    /* Embedded C with X.509: CleanSession 0, no password */
    build_connect("paho-dev", "0ne0/registrations/paho-dev/api-version=2019-03-31", NULL, false,
                  240);
    ok(decodes_whole(pk.wire, pk.wire_len, NULL, &p));
    ok(!p.u.connect.clean_session);
    ok(!p.u.connect.has_password);
    ok_int(p.u.connect.password.len, 0);
    ok_int(p.u.connect.keep_alive, 240);

    /* Python: CleanSession 0, keep-alive 60 */
    build_connect("py-dev",
                  "0ne0/registrations/py-dev/api-version=2019-03-31&ClientVersion="
                  "azure-iot-device%2F2.14.0",
                  sas_password, false, 60);
    ok(decodes_whole(pk.wire, pk.wire_len, NULL, &p));
    ok(str_is(p.u.connect.client_id, "py-dev"));

    /* An empty client id is the session layer's to refuse. */
    build_connect("", NULL, NULL, true, 0);
    ok(decodes_whole(pk.wire, pk.wire_len, NULL, &p));
    ok_int(p.u.connect.client_id.len, 0);
end:;
}

static void test_connect_will(void)
{
    struct mqtt_packet p;

    pkt_reset();
    add_str(&pk, "MQTT");
    add_u8(&pk, 4);
    add_u8(&pk, 0x80 | 0x20 | 0x08 | 0x04 | 0x02); /* user, will retain, will QoS 1, will */
    add_u16(&pk, 30);
    add_str(&pk, "dev");
    add_str(&pk, "status/dev");
    add_str(&pk, "gone");
    add_str(&pk, "user");
    finish(&pk, 0x10);
    ok(decodes_whole(pk.wire, pk.wire_len, NULL, &p));
    ok(p.u.connect.will && p.u.connect.will_retain);
    ok_int(p.u.connect.will_qos, 1);
    ok(str_is(p.u.connect.will_topic, "status/dev"));
    ok(bytes_is(p.u.connect.will_message, "gone"));
    ok(str_is(p.u.connect.username, "user"));
end:;
}

static void test_subscribe_literal(void)
{
    /* SUBSCRIBE $dps/registrations/res/# QoS 1, packet id 1: bytes as every client sends them */
    static const uint8_t sub[] = "\x82\x1d\x00\x01\x00\x18$dps/registrations/res/#\x01";
    static const uint8_t suback[] = {0x90, 0x03, 0x00, 0x01, 0x01};
    static const uint8_t unsub[] = "\xa2\x1c\x00\x02\x00\x18$dps/registrations/res/#";
    static const uint8_t unsuback[] = {0xb0, 0x02, 0x00, 0x02};
    struct mqtt_packet p;
    uint8_t buf[64];

    ok(decodes_whole(sub, sizeof(sub) - 1, NULL, &p));
    ok_int(p.type, MQTT_SUBSCRIBE);
    ok_int(p.u.subscribe.packet_id, 1);
    ok_int(p.u.subscribe.count, 1);
    ok(str_is(p.u.subscribe.topics[0].filter, "$dps/registrations/res/#"));
    ok_int(p.u.subscribe.topics[0].qos, 1);
    ok_int(mqtt_encode_suback(buf, sizeof(buf), 1, (const uint8_t[]){1}, 1), sizeof(suback));
    ok(memcmp(buf, suback, sizeof(suback)) == 0);
    ok(decodes_whole(suback, sizeof(suback), NULL, &p));

    ok(decodes_whole(unsub, sizeof(unsub) - 1, NULL, &p));
    ok_int(p.type, MQTT_UNSUBSCRIBE);
    ok_int(p.u.unsubscribe.count, 1);
    ok(str_is(p.u.unsubscribe.filters[0], "$dps/registrations/res/#"));
    ok_int(mqtt_encode_unsuback(buf, sizeof(buf), 2), sizeof(unsuback));
    ok(memcmp(buf, unsuback, sizeof(unsuback)) == 0);
end:;
}

static void test_publish_clients(void)
{
    struct mqtt_packet p;

    /* Python: QoS 1, uuid rid, "payload": null */
    build_publish("$dps/registrations/PUT/iotdps-register/?$rid=6f1e5f0a-2c55-4d37-9a49-1b3d",
                  "{\"payload\": null, \"registrationId\": \"py-dev\"}", 1, 7);
    ok(decodes_whole(pk.wire, pk.wire_len, NULL, &p));
    ok_int(p.u.publish.qos, 1);
    ok_int(p.u.publish.packet_id, 7);
    ok(bytes_is(p.u.publish.payload, "{\"payload\": null, \"registrationId\": \"py-dev\"}"));

    /* Embedded C: QoS 1, rid 1, empty payload */
    build_publish("$dps/registrations/PUT/iotdps-register/?$rid=1", "", 1, 1);
    ok(decodes_whole(pk.wire, pk.wire_len, NULL, &p));
    ok_int(p.u.publish.payload.len, 0);
    ok(p.u.publish.payload.ptr == NULL);

    /* azure-iot-sdk-c: QoS 0 register with a numeric rid, no packet id */
    build_publish("$dps/registrations/PUT/iotdps-register/?$rid=1",
                  "{\"registrationId\":\"c-dev\"}", 0, 0);
    ok(decodes_whole(pk.wire, pk.wire_len, NULL, &p));
    ok_int(p.u.publish.qos, 0);
    ok_int(p.u.publish.packet_id, 0);
    ok(str_is(p.u.publish.topic, "$dps/registrations/PUT/iotdps-register/?$rid=1"));

    /* Node poll: one space */
    build_publish("$dps/registrations/GET/iotdps-get-operationstatus/?$rid=2&operationId=4.abc",
                  " ", 1, 2);
    ok(decodes_whole(pk.wire, pk.wire_len, NULL, &p));
    ok(bytes_is(p.u.publish.payload, " "));

    /* QoS 2, DUP and RETAIN decode; the session layer refuses QoS 2 */
    build_publish("a/b", "x", 2, 9);
    pk.wire[0] |= 0x09;
    ok(decodes_whole(pk.wire, pk.wire_len, NULL, &p));
    ok(p.u.publish.dup && p.u.publish.retain);
    ok_int(p.u.publish.qos, 2);
end:;
}

static void test_round_trip_all_types(void)
{
    static const char payload[] = "{\"registrationId\":\"dev\"}";
    struct mqtt_connect c = {
        .clean_session = true,
        .keep_alive = 60,
        .client_id = {"dev", 3},
        .has_username = true,
        .username = {"s/registrations/dev/api-version=1", 33},
        .has_password = true,
        .password = {(const uint8_t *)"pw", 2},
    };
    uint8_t buf[256];
    struct mqtt_packet p;
    size_t n;

    n = mqtt_encode_connect(buf, sizeof(buf), &c);
    ok(n > 0 && decodes_whole(buf, n, NULL, &p));
    ok_int(p.type, MQTT_CONNECT);
    ok(str_is(p.u.connect.username, "s/registrations/dev/api-version=1"));
    ok(bytes_is(p.u.connect.password, "pw"));

    n = mqtt_encode_connack(buf, sizeof(buf), false, MQTT_CONNACK_NOT_AUTHORIZED);
    ok_int(n, 4);
    ok(memcmp(buf, "\x20\x02\x00\x05", 4) == 0);
    ok(decodes_whole(buf, n, NULL, &p));
    ok_int(p.u.connack.return_code, 5);
    n = mqtt_encode_connack(buf, sizeof(buf), true, 0);
    ok(decodes_whole(buf, n, NULL, &p));
    ok(p.u.connack.session_present);

    n = mqtt_encode_publish(buf, sizeof(buf), "$dps/registrations/res/202/?$rid=1&retry-after=3",
                            48, payload, strlen(payload), 1, 42);
    ok(n > 0 && decodes_whole(buf, n, NULL, &p));
    ok(str_is(p.u.publish.topic, "$dps/registrations/res/202/?$rid=1&retry-after=3"));
    ok(bytes_is(p.u.publish.payload, payload));
    ok_int(p.u.publish.packet_id, 42);
    n = mqtt_encode_publish(buf, sizeof(buf), "t", 1, NULL, 0, 0, 5);
    ok_int(n, 5); /* packet id left out at QoS 0 */
    ok(decodes_whole(buf, n, NULL, &p));

    n = mqtt_encode_puback(buf, sizeof(buf), 42);
    ok(memcmp(buf, "\x40\x02\x00\x2a", 4) == 0 && decodes_whole(buf, n, NULL, &p));
    ok_int(p.u.packet_id, 42);
    n = mqtt_encode_subscribe(buf, sizeof(buf), 3, "a/+/c/#", 2);
    ok(n > 0 && decodes_whole(buf, n, NULL, &p));
    ok(str_is(p.u.subscribe.topics[0].filter, "a/+/c/#"));
    n = mqtt_encode_unsubscribe(buf, sizeof(buf), 4, "#");
    ok(n > 0 && decodes_whole(buf, n, NULL, &p));
    ok_int(p.u.unsubscribe.packet_id, 4);
    n = mqtt_encode_pingreq(buf, sizeof(buf));
    ok(n == 2 && memcmp(buf, "\xc0\x00", 2) == 0 && decodes_whole(buf, n, NULL, &p));
    n = mqtt_encode_pingresp(buf, sizeof(buf));
    ok(n == 2 && memcmp(buf, "\xd0\x00", 2) == 0 && decodes_whole(buf, n, NULL, &p));
    ok_int(p.type, MQTT_PINGRESP);
    n = mqtt_encode_disconnect(buf, sizeof(buf));
    ok(n == 2 && memcmp(buf, "\xe0\x00", 2) == 0 && decodes_whole(buf, n, NULL, &p));
    ok_int(p.type, MQTT_DISCONNECT);

    for (int t = MQTT_PUBREC; t <= MQTT_PUBCOMP; t++) {
        struct mqtt_packet q = {.type = t, .u.packet_id = 9};

        n = mqtt_encode(&q, buf, sizeof(buf));
        ok(n == 4 && decodes_whole(buf, n, NULL, &p));
        ok_int(p.type, t);
        ok_int(p.flags, t == MQTT_PUBREL ? 2 : 0);
    }
end:;
}

static void test_encode_sizes(void)
{
    static uint8_t big[20000];
    static uint8_t out[20100];
    struct mqtt_packet p;
    uint8_t small[4] = {0xee, 0xee, 0xee, 0xee};
    size_t n;

    /* snprintf style: the size comes back, nothing is written */
    ok_int(mqtt_encode_puback(small, 3, 1), 4);
    ok(small[0] == 0xee && small[2] == 0xee);
    ok_int(mqtt_encode_puback(NULL, 0, 1), 4);

    /* what the wire cannot carry */
    ok_int(mqtt_encode_puback(out, sizeof(out), 0), 0);
    ok_int(mqtt_encode_publish(out, sizeof(out), "t", 1, "x", 1, 3, 1), 0);
    ok_int(mqtt_encode_publish(out, sizeof(out), "t", 1, "x", 1, 1, 0), 0);
    ok_int(mqtt_encode_suback(out, sizeof(out), 1, (const uint8_t[]){0}, 0), 0);
    ok_int(mqtt_encode_publish(out, sizeof(out), (const char *)big, 70000, NULL, 0, 0, 0), 0);

    /* two- and three-byte remaining lengths */
    memset(big, 'x', sizeof(big));
    n = mqtt_encode_publish(out, sizeof(out), "t", 1, big, 125, 0, 0);
    ok_int(n, 3 + 128);
    ok(out[1] == 0x80 && out[2] == 0x01);
    ok(decodes_whole(out, n, NULL, &p));
    n = mqtt_encode_publish(out, sizeof(out), "t", 1, big, sizeof(big), 0, 0);
    ok_int(n, 4 + 3 + sizeof(big));
    ok(decodes_whole(out, n, NULL, &p));
    ok_int(p.u.publish.payload.len, sizeof(big));
end:;
}

static void test_stream(void)
{
    /* a PUBLISH, a PINGREQ and half a DISCONNECT in one read */
    uint8_t buf[128];
    struct mqtt_packet p;
    struct dps_error err;
    size_t n = 0, off = 0;
    int rc;

    n += mqtt_encode_publish(buf, sizeof(buf), "a", 1, "hi", 2, 1, 3);
    n += mqtt_encode_pingreq(buf + n, sizeof(buf) - n);
    buf[n++] = 0xe0;
    rc = mqtt_decode(buf, n, NULL, &p, &err);
    ok(rc > 0 && p.type == MQTT_PUBLISH);
    off += (size_t)rc;
    rc = mqtt_decode(buf + off, n - off, NULL, &p, &err);
    ok(rc == 2 && p.type == MQTT_PINGREQ);
    off += (size_t)rc;
    ok_int(mqtt_decode(buf + off, n - off, NULL, &p, &err), MQTT_INCOMPLETE);

    /* a remaining length in more bytes than needed is still one length */
    ok_int(mqtt_decode((const uint8_t *)"\xc0\x80\x00", 3, NULL, &p, &err), 3);
    ok_int(p.type, MQTT_PINGREQ);
end:;
}

#define REFUSED(bytes, reason)                                                                     \
    refused((const uint8_t *)(bytes), sizeof(bytes) - 1, NULL, MQTT_INVALID, reason)

static void test_fixed_header_violations(void)
{
    ok(REFUSED("\x30\xff\xff\xff\xff\x01", "more than four bytes"));
    ok(REFUSED("\x00\x00", "packet type 0 is reserved"));
    ok(REFUSED("\xf0\x00", "packet type 15 is reserved"));
    ok(REFUSED("\x80\x00", "SUBSCRIBE has fixed header flags 0x0, not 0x2"));
    ok(REFUSED("\xa0\x00", "UNSUBSCRIBE has fixed header flags"));
    ok(REFUSED("\x60\x02\x00\x01", "PUBREL has fixed header flags"));
    ok(REFUSED("\xc1\x00", "PINGREQ has fixed header flags 0x1"));
    ok(REFUSED("\x12", "CONNECT has fixed header flags"));
    ok(REFUSED("\x36", "QoS 3"));
    ok(REFUSED("\x38", "DUP on a QoS 0"));
    ok(REFUSED("\xc0\x01\x00", "PINGREQ has 1 bytes after its last field"));
    ok(REFUSED("\xe0\x01\x00", "DISCONNECT has 1 bytes"));
    ok(REFUSED("\x40\x03\x00\x01\x00", "PUBACK has 1 bytes"));
    ok(REFUSED("\x40\x01\x00", "PUBACK ends before 'packet id'"));
    ok(REFUSED("\x40\x02\x00\x00", "PUBACK 'packet id' is 0"));
    ok(REFUSED("\x20\x02\x02\x00", "CONNACK 'acknowledge flags' has reserved bits"));
    ok(REFUSED("\x20\x02\x00\x06", "CONNACK 'return code' is not one of 0 to 5"));
    ok(REFUSED("\x20\x02\x01\x05", "session present"));
    ok(REFUSED("\x90\x03\x00\x01\x03", "SUBACK 'return code' is not 0, 1, 2 or 0x80"));
    ok(REFUSED("\x90\x02\x00\x01", "SUBACK carries no 'return code'"));
end:;
}

static void test_connect_violations(void)
{
    struct mqtt_packet p;
    struct dps_error err;

    /* protocol name and level */
    pkt_reset();
    add_str(&pk, "MQTX");
    add_u8(&pk, 4);
    finish(&pk, 0x10);
    ok(refused(pk.wire, pk.wire_len, NULL, MQTT_INVALID, "'protocol name' is not 'MQTT'"));
    pkt_reset();
    add_str(&pk, "MQIsdp");
    add_u8(&pk, 3);
    finish(&pk, 0x10);
    ok(refused(pk.wire, pk.wire_len, NULL, MQTT_INVALID, "MQTT 3.1 is not supported"));
    build_connect("dev", NULL, NULL, true, 0);
    pk.wire[8] = 5;
    ok(refused(pk.wire, pk.wire_len, NULL, MQTT_UNSUPPORTED_LEVEL, "'protocol level' is 5"));
    ok_int(mqtt_decode(pk.wire, pk.wire_len, NULL, &p, &err), MQTT_UNSUPPORTED_LEVEL);

    /* connect flags */
    build_connect("dev", NULL, NULL, true, 0);
    pk.wire[9] |= 0x01;
    ok(refused(pk.wire, pk.wire_len, NULL, MQTT_INVALID, "reserved bit"));
    build_connect("dev", NULL, NULL, true, 0);
    pk.wire[9] |= 0x08;
    ok(refused(pk.wire, pk.wire_len, NULL, MQTT_INVALID, "without a will"));
    build_connect("dev", NULL, NULL, true, 0);
    pk.wire[9] |= 0x20;
    ok(refused(pk.wire, pk.wire_len, NULL, MQTT_INVALID, "without a will"));
    build_connect("dev", NULL, NULL, true, 0);
    pk.wire[9] |= 0x04 | 0x18;
    ok(refused(pk.wire, pk.wire_len, NULL, MQTT_INVALID, "will QoS 3"));
    build_connect("dev", NULL, "secret", true, 0);
    ok(refused(pk.wire, pk.wire_len, NULL, MQTT_INVALID, "password flag without the user name"));

    /* fields */
    build_connect("dev", "user", NULL, true, 0);
    pk.wire[1]++;
    pk.wire[pk.wire_len++] = 0;
    ok(refused(pk.wire, pk.wire_len, NULL, MQTT_INVALID, "CONNECT has 1 bytes after"));
    build_connect("dev", "user", NULL, true, 0);
    pk.wire[1] -= 2;
    ok(refused(pk.wire, pk.wire_len - 2, NULL, MQTT_INVALID,
               "CONNECT 'user name' runs past the end"));
    build_connect("dev", NULL, NULL, true, 0);
    pk.wire[1] -= 5;
    ok(refused(pk.wire, pk.wire_len - 5, NULL, MQTT_INVALID, "ends before 'client id'"));

    /* UTF-8 */
    build_connect("d\xc0\x80v", NULL, NULL, true, 0); /* overlong U+0000 */
    ok(refused(pk.wire, pk.wire_len, NULL, MQTT_INVALID,
               "CONNECT 'client id' is not valid UTF-8 at byte 1"));
    build_connect("dev\xff", NULL, NULL, true, 0);
    ok(refused(pk.wire, pk.wire_len, NULL, MQTT_INVALID, "not valid UTF-8 at byte 3"));
    build_connect("\xed\xa0\x80", NULL, NULL, true, 0); /* a surrogate */
    ok(refused(pk.wire, pk.wire_len, NULL, MQTT_INVALID, "not valid UTF-8 at byte 0"));
    build_connect("\xf4\x90\x80\x80", NULL, NULL, true, 0); /* above U+10FFFF */
    ok(refused(pk.wire, pk.wire_len, NULL, MQTT_INVALID, "not valid UTF-8"));
    build_connect("\xe2\x82", NULL, NULL, true, 0); /* cut short */
    ok(refused(pk.wire, pk.wire_len, NULL, MQTT_INVALID, "not valid UTF-8"));
    build_connect("dev", "us\x80r", NULL, true, 0);
    ok(refused(pk.wire, pk.wire_len, NULL, MQTT_INVALID, "'user name' is not valid UTF-8"));
    pkt_reset();
    add_str(&pk, "MQTT");
    add_u8(&pk, 4);
    add_u8(&pk, 0x02);
    add_u16(&pk, 0);
    add_u16(&pk, 3);
    add_raw(&pk, "d\0v", 3);
    finish(&pk, 0x10);
    ok(refused(pk.wire, pk.wire_len, NULL, MQTT_INVALID, "'client id' holds U+0000 at byte 1"));

    /* good multi-byte UTF-8 passes */
    build_connect("g\xc3\xa9r\xe2\x82\xac\xf0\x9f\x98\x80", NULL, NULL, true, 0);
    ok(decodes_whole(pk.wire, pk.wire_len, NULL, &p));
end:;
}

static void test_publish_subscribe_violations(void)
{
    build_publish("a/+/b", "x", 0, 0);
    ok(refused(pk.wire, pk.wire_len, NULL, MQTT_INVALID, "PUBLISH 'topic' holds a wildcard"));
    build_publish("a/#", "x", 0, 0);
    ok(refused(pk.wire, pk.wire_len, NULL, MQTT_INVALID, "wildcard"));
    build_publish("", "x", 0, 0);
    ok(refused(pk.wire, pk.wire_len, NULL, MQTT_INVALID, "PUBLISH 'topic' is empty"));
    build_publish("a", "", 1, 0);
    ok(refused(pk.wire, pk.wire_len, NULL, MQTT_INVALID, "PUBLISH 'packet id' is 0"));
    build_publish("a\xc3", "", 0, 0);
    ok(refused(pk.wire, pk.wire_len, NULL, MQTT_INVALID, "PUBLISH 'topic' is not valid UTF-8"));
    pkt_reset();
    add_u16(&pk, 1);
    add_raw(&pk, "\0", 1);
    finish(&pk, 0x30);
    ok(refused(pk.wire, pk.wire_len, NULL, MQTT_INVALID, "'topic' holds U+0000"));

    ok(REFUSED("\x82\x02\x00\x01", "SUBSCRIBE carries no 'topic filter'"));
    ok(REFUSED("\x82\x02\x00\x00", "SUBSCRIBE 'packet id' is 0"));
    ok(REFUSED("\x82\x06\x00\x01\x00\x01#\x03", "'requested QoS' is over 2"));
    ok(REFUSED("\x82\x06\x00\x01\x00\x01#\x41", "reserved bits"));
    ok(REFUSED("\x82\x05\x00\x01\x00\x01#", "ends before 'requested QoS'"));
    ok(REFUSED("\x82\x07\x00\x01\x00\x02"
               "a#\x01",
               "'#' other than as its whole last level"));
    ok(REFUSED("\x82\x08\x00\x01\x00\x03#/a\x01", "'#' other than"));
    ok(REFUSED("\x82\x09\x00\x01\x00\x04"
               "a/+b\x01",
               "'+' that is not a whole level"));
    ok(REFUSED("\x82\x05\x00\x01\x00\x00\x01", "SUBSCRIBE 'topic filter' is empty"));
    ok(REFUSED("\xa2\x02\x00\x01", "UNSUBSCRIBE carries no 'topic filter'"));
    ok(REFUSED("\xa2\x06\x00\x01\x00\x02"
               "a#",
               "'#' other than"));
end:;
}

static void test_limits(void)
{
    struct mqtt_limits lim = {.max_packet = 100, .max_topic = 10, .max_client_id = 5};
    struct mqtt_packet p;
    struct dps_error err;
    uint8_t buf[600];
    size_t n;

    memset(buf, 'x', sizeof(buf));
    /* refused as soon as the length is known, before the body arrives */
    n = mqtt_encode_publish(buf, sizeof(buf), "t", 1, buf + 300, 97, 0, 0);
    ok_int(n, 102);
    ok(refused(buf, 2, &lim, MQTT_INVALID, "PUBLISH of 102 bytes is over the limit of 100"));
    ok_int(mqtt_decode(buf, 2, &lim, &p, &err), MQTT_INVALID);
    ok_int(err.code, DPS_ERR_TOO_LARGE);
    n = mqtt_encode_publish(buf, sizeof(buf), "t", 1, buf + 300, 95, 0, 0);
    ok_int(n, 100);
    ok(decodes_whole(buf, n, &lim, &p));

    n = mqtt_encode_publish(buf, sizeof(buf), "0123456789a", 11, NULL, 0, 0, 0);
    ok(refused(buf, n, &lim, MQTT_INVALID, "PUBLISH 'topic' is 11 bytes, over the limit of 10"));
    n = mqtt_encode_subscribe(buf, sizeof(buf), 1, "0123456789a", 1);
    ok(refused(buf, n, &lim, MQTT_INVALID, "'topic filter' is 11 bytes"));
    build_connect("sixsix", NULL, NULL, true, 0);
    ok(refused(pk.wire, pk.wire_len, &lim, MQTT_INVALID,
               "'client id' is 6 bytes, over the limit of 5"));

    /* the default limit */
    n = mqtt_encode_publish(buf, sizeof(buf), "t", 1, NULL, 65536, 0, 0);
    ok(n == 0); /* payload NULL with a length cannot be encoded */
    buf[0] = 0x30;
    buf[1] = 0x80;
    buf[2] = 0x80;
    buf[3] = 0x04; /* 65536 */
    ok(refused(buf, 4, NULL, MQTT_INVALID, "over the limit of 65536"));

    /* more filters than a packet may carry */
    pkt_reset();
    add_u16(&pk, 1);
    for (int i = 0; i < MQTT_MAX_FILTERS + 1; i++) {
        add_str(&pk, "a");
        add_u8(&pk, 0);
    }
    finish(&pk, 0x82);
    ok(refused(pk.wire, pk.wire_len, NULL, MQTT_INVALID, "more than 8 topic filters"));
end:;
}

static void test_type_names(void)
{
    ok_str(mqtt_type_name(MQTT_CONNECT), "CONNECT");
    ok_str(mqtt_type_name(MQTT_DISCONNECT), "DISCONNECT");
    ok_str(mqtt_type_name(0), "unknown");
    ok_str(mqtt_type_name(15), "unknown");
end:;
}

int main(void)
{
    subtest("connect as the Node client sends it", test_connect_node);
    subtest("connect as the C, Embedded C and Python clients send it",
            test_connect_c_embedded_python);
    subtest("connect with a will", test_connect_will);
    subtest("subscribe, suback, unsubscribe, unsuback bytes", test_subscribe_literal);
    subtest("publish as the clients send it", test_publish_clients);
    subtest("round trip of every packet type", test_round_trip_all_types);
    subtest("encoder sizes and refusals", test_encode_sizes);
    subtest("several packets in one buffer", test_stream);
    subtest("fixed header violations", test_fixed_header_violations);
    subtest("connect violations", test_connect_violations);
    subtest("publish and subscribe violations", test_publish_subscribe_violations);
    subtest("limits", test_limits);
    subtest("type names", test_type_names);
    return t_done();
}
