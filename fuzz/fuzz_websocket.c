/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: bytes from a client after the WebSocket upgrade, fed
 * through the server's frame layer (masking, fragmentation, pings, closes,
 * lengths) without sockets. Every binary message is echoed back, as the
 * MQTT session's answers would be, unless its first byte is 0xff, which
 * makes the message handler ask for a close. The input is split into reads
 * at offsets taken from its last byte, as TLS records would split it. The
 * input's first line also goes through the upgrade header helpers.
 */
#include "core/common.h"

#include <event2/buffer.h>

#include "server/websocket.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool on_message(void *arg, const void *buf, size_t len)
{
    struct websocket **ws = arg;

    if (len > 0 && ((const uint8_t *)buf)[0] == 0xff)
        return false;
    websocket_send(*ws, buf, len);
    return true;
}

static void headers(const uint8_t *data, size_t size)
{
    char line[128], accept[WEBSOCKET_ACCEPT_SIZE], proto[WEBSOCKET_PROTOCOL_MAX + 1];
    size_t n = 0;

    while (n < size && n < sizeof(line) - 1 && data[n] != '\n' && data[n] != '\0') {
        line[n] = (char)data[n];
        n++;
    }
    line[n] = '\0';
    if (websocket_accept_key(line, accept) && strlen(accept) != WEBSOCKET_ACCEPT_SIZE - 1)
        abort();
    if (websocket_select_mqtt(line, proto) && strcasecmp(proto, "mqtt") != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct evbuffer *in, *out;
    struct websocket *ws;
    size_t off = 0, step;

    if (size == 0)
        return 0;
    headers(data, size);
    step = (size_t)data[size - 1] % 64 + 1;
    in = evbuffer_new();
    out = evbuffer_new();
    ws = websocket_new(4096, on_message, &ws, out);
    if (!ws)
        abort();
    while (off < size) {
        size_t n = size - off < step ? size - off : step;

        evbuffer_add(in, data + off, n);
        off += n;
        if (!websocket_input(ws, in))
            break;
        /* What was written goes to the client; keep the buffer small. */
        evbuffer_drain(out, evbuffer_get_length(out));
    }
    websocket_free(ws);
    evbuffer_free(in);
    evbuffer_free(out);
    return 0;
}
