/* SPDX-License-Identifier: MIT */
/* The WebSocket handshake values and frames through wslay, without sockets. */
#include "core/common.h"

#include "../t.h"
#include "server/websocket.h"

static void test_accept_key(void)
{
    char out[WEBSOCKET_ACCEPT_SIZE];

    /* RFC 6455 §1.3. */
    ok(websocket_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out));
    ok_str(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    ok(!websocket_accept_key(NULL, out));
    ok(!websocket_accept_key("", out));
    ok(!websocket_accept_key("dGhlIHNhbXBsZSBub25jZQ", out));
    ok(!websocket_accept_key("dGhlIHNhbXBsZSBub25jZQ==x", out));
    ok(!websocket_accept_key("dGhlIHNhbXBsZSBub25j!Q==", out));
end:;
}

static void test_select_mqtt(void)
{
    char out[WEBSOCKET_PROTOCOL_MAX + 1];

    ok(websocket_select_mqtt("mqtt", out));
    ok_str(out, "mqtt");
    ok(websocket_select_mqtt("MQTT", out));
    ok_str(out, "MQTT");
    ok(websocket_select_mqtt("amqp, Mqtt ,x", out));
    ok_str(out, "Mqtt");
    ok(!websocket_select_mqtt(NULL, out));
    ok(!websocket_select_mqtt("", out));
    ok(!websocket_select_mqtt("mqttv3.1", out));
    ok(!websocket_select_mqtt("amqp", out));
end:;
}

static size_t got_len;
static unsigned char got[64];

static bool on_message(void *arg, const void *buf, size_t len)
{
    if (len <= sizeof(got)) {
        memcpy(got + got_len, buf, len);
        got_len += len;
    }
    return true;
}

static void test_frames(void)
{
    struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
    struct websocket *ws = websocket_new(1024, on_message, NULL, out);
    /* A masked binary frame holding PINGREQ, then a masked text frame. */
    const unsigned char bin[] = {0x82, 0x82, 1, 2, 3, 4, 0xc0 ^ 1, 0x00 ^ 2};
    const unsigned char text[] = {0x81, 0x81, 1, 2, 3, 4, 'a' ^ 1};
    unsigned char reply[16];

    ok(ws != NULL);
    evbuffer_add(in, bin, 5); /* half a frame: nothing yet */
    ok(websocket_input(ws, in));
    ok(got_len == 0);
    evbuffer_add(in, bin + 5, sizeof(bin) - 5);
    ok(websocket_input(ws, in));
    ok(got_len == 2 && got[0] == 0xc0 && got[1] == 0x00);
    websocket_send(ws, "\xd0\x00", 2);
    ok(evbuffer_remove(out, reply, sizeof(reply)) == 4);
    ok(reply[0] == 0x82 && reply[1] == 2 && reply[2] == 0xd0 && reply[3] == 0);
    /* Text is not MQTT: the socket closes with 1003. */
    evbuffer_add(in, text, sizeof(text));
    ok(!websocket_input(ws, in));
    ok(evbuffer_remove(out, reply, sizeof(reply)) == 4);
    ok(reply[0] == 0x88 && reply[2] == 0x03 && reply[3] == 0xeb);
end:
    websocket_free(ws);
    evbuffer_free(in);
    evbuffer_free(out);
}

int main(void)
{
    subtest("Sec-WebSocket-Accept", test_accept_key);
    subtest("subprotocol mqtt", test_select_mqtt);
    subtest("binary messages, text refused", test_frames);
    return t_done();
}
