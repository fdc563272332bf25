/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: bytes from a device fed into an MQTT session without
 * sockets or a store. The backend answers every request from memory (a
 * 200, a 202 with retry-after, or an error, by the first byte of the
 * registration id) so the response paths run too. The input is split
 * into reads at offsets taken from its last byte, as TLS records would
 * split it.
 */
#include "core/common.h"

#include <event2/buffer.h>

#include "server/log.h"
#include "server/mqtt_session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t sent;

static void fake_send(void *arg, const void *buf, size_t len)
{
    sent += len;
}

static void fake_authenticate(void *arg, const struct mqtt_request *req, mqtt_auth_fn done,
                              void *done_arg)
{
    done(done_arg, req->sas_len % 2 ? MQTT_CONNACK_ACCEPTED : MQTT_CONNACK_NOT_AUTHORIZED);
}

static void fake_request(void *arg, const struct mqtt_request *req, mqtt_answer_fn answer,
                         void *answer_arg)
{
    struct provision_result res;
    struct provision_result *out = &res;

    memset(out, 0, sizeof(*out));
    switch (req->registration_id[0] % 3) {
    case 0:
        out->status = 200;
        out->body = json_pack("{s:s,s:s}", "operationId", "1.0.x", "status", "assigned");
        break;
    case 1:
        out->status = 202;
        out->retry_after = 3;
        out->body = json_pack("{s:s,s:s}", "operationId", "1.0.x", "status", "assigning");
        break;
    default:
        out->status = 401;
        out->error_code = 401002;
        snprintf(out->message, sizeof(out->message), "not authorized \xc3\xa9");
        break;
    }
    answer(answer_arg, out);
    provision_result_release(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mqtt_backend be = {fake_authenticate, fake_request, NULL};
    struct mqtt_session *s;
    struct evbuffer *in;
    size_t off = 0, step;

    log_threshold = -1; /* quiet: violations are the normal case here */
    if (size == 0)
        return 0;
    step = (size_t)data[size - 1] % 64 + 1;
    in = evbuffer_new();
    s = mqtt_session_new(&be, 4096, NULL, "fuzz", fake_send, NULL);
    while (off < size) {
        size_t n = size - off < step ? size - off : step;

        evbuffer_add(in, data + off, n);
        off += n;
        if (mqtt_session_input(s, in) != MQTT_SESSION_OPEN)
            break;
    }
    mqtt_session_free(s);
    evbuffer_free(in);
    return 0;
}
