/* SPDX-License-Identifier: MIT */
/*
 * The server side of RFC 6455 on wslay's event API. wslay reads through
 * recv_cb from the evbuffer websocket_input() was given, and writes through
 * send_cb into the connection's output evbuffer; both calls complete at
 * once, so no frame is ever half sent from wslay's point of view.
 */
#include "core/common.h"
#include "server/websocket.h"

#include <ctype.h>

#include <openssl/sha.h>
#include <wslay/wslay.h>

#include "core/b64.h"

static const char websocket_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

struct websocket {
    wslay_event_context_ptr ctx;
    websocket_message_fn on_message;
    void *arg;
    struct evbuffer *in; /* set for the duration of websocket_input() */
    struct evbuffer *out;
    bool failed; /* on_message asked to close */
};

bool websocket_accept_key(const char *key, char out[WEBSOCKET_ACCEPT_SIZE])
{
    unsigned char digest[SHA_DIGEST_LENGTH];
    char buf[64];
    size_t decoded = 0;
    int n;

    if (!key || strlen(key) != 24 || !b64_is_valid(key, 24, 0, &decoded) || decoded != 16)
        return false;
    n = snprintf(buf, sizeof(buf), "%s%s", key, websocket_guid);
    SHA1((const unsigned char *)buf, (size_t)n, digest);
    b64_encode_buf(digest, sizeof(digest), out);
    return true;
}

bool websocket_select_mqtt(const char *header, char out[WEBSOCKET_PROTOCOL_MAX + 1])
{
    const char *p = header;

    while (p && *p) {
        const char *start, *end;

        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        start = p;
        while (*p && *p != ',')
            p++;
        end = p;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if (end - start == 4 && strncasecmp(start, "mqtt", 4) == 0) {
            memcpy(out, start, 4);
            out[4] = '\0';
            return true;
        }
    }
    return false;
}

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                       void *user_data)
{
    struct websocket *ws = user_data;
    int n = ws->in ? evbuffer_remove(ws->in, buf, len) : 0;

    if (n <= 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    return n;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user_data)
{
    struct websocket *ws = user_data;

    if (evbuffer_add(ws->out, data, len) != 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)len;
}

static void on_msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                      void *user_data)
{
    struct websocket *ws = user_data;

    if (ws->failed || wslay_is_ctrl_frame(arg->opcode))
        return; /* wslay answers pings and closes itself */
    if (arg->opcode != WSLAY_BINARY_FRAME) {
        /* MQTT travels in binary frames only (MQTT 3.1.1 §6). */
        ws->failed = true;
        wslay_event_queue_close(ctx, WSLAY_CODE_UNSUPPORTED_DATA, NULL, 0);
        return;
    }
    if (!ws->on_message(ws->arg, arg->msg, arg->msg_length)) {
        ws->failed = true;
        wslay_event_queue_close(ctx, WSLAY_CODE_NORMAL_CLOSURE, NULL, 0);
    }
}

struct websocket *websocket_new(size_t max_message, websocket_message_fn on_message, void *arg,
                                struct evbuffer *out)
{
    struct wslay_event_callbacks cb = {
        .recv_callback = recv_cb, .send_callback = send_cb, .on_msg_recv_callback = on_msg_cb};
    struct websocket *ws = xcalloc(1, sizeof(*ws));

    if (wslay_event_context_server_init(&ws->ctx, &cb, ws) != 0) {
        free(ws);
        return NULL;
    }
    wslay_event_config_set_max_recv_msg_length(ws->ctx, max_message);
    ws->on_message = on_message;
    ws->arg = arg;
    ws->out = out;
    return ws;
}

void websocket_free(struct websocket *ws)
{
    if (!ws)
        return;
    wslay_event_context_free(ws->ctx);
    free(ws);
}

bool websocket_input(struct websocket *ws, struct evbuffer *in)
{
    int rc;

    ws->in = in;
    rc = wslay_event_recv(ws->ctx);
    ws->in = NULL;
    if (rc == 0)
        rc = wslay_event_send(ws->ctx);
    if (rc != 0 || ws->failed)
        return false;
    /* After a close in either direction wslay wants neither: the connection ends. */
    return wslay_event_want_read(ws->ctx) && !wslay_event_get_close_sent(ws->ctx);
}

void websocket_send(struct websocket *ws, const void *buf, size_t len)
{
    struct wslay_event_msg m = {.opcode = WSLAY_BINARY_FRAME, .msg = buf, .msg_length = len};

    if (wslay_event_queue_msg(ws->ctx, &m) == 0)
        wslay_event_send(ws->ctx);
}

void websocket_close(struct websocket *ws)
{
    if (wslay_event_queue_close(ws->ctx, WSLAY_CODE_NORMAL_CLOSURE, NULL, 0) == 0)
        wslay_event_send(ws->ctx);
}
