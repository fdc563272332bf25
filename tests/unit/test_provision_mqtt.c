/* SPDX-License-Identifier: MIT */
/*
 * A registration's answer on the MQTT wire, without sockets or a store: an
 * MQTT session whose backend answers with a prepared provision_result. An
 * ASCII text goes out byte for byte; a text with non-ASCII characters, or a
 * tree, goes out with them escaped (Node decodes payloads as ASCII). Also
 * pins the register body the backend is handed.
 */
#include "core/common.h"

#include <event2/buffer.h>

#include "../t.h"
#include "server/log.h"
#include "server/mqtt_session.h"

#define SCOPE "0ne0000AAAA"
#define RID "dev-1"

/* What the backend answers: text (may be NULL) and body (may be NULL, taken). */
static const char *answer_text;
static json_t *answer_body;
/* The last register body the backend was handed. */
static char got_body[512];
/* What the session sent, all of it. */
static struct evbuffer *wire;

static void fake_send(void *arg, const void *buf, size_t len)
{
    (void)arg;
    evbuffer_add(wire, buf, len);
}

static void fake_request(void *arg, const struct mqtt_request *req, mqtt_answer_fn answer,
                         void *answer_arg)
{
    struct provision_result res = {0};

    (void)arg;
    snprintf(got_body, sizeof(got_body), "%.*s", (int)req->body_len, req->body);
    res.status = 200;
    snprintf(res.operation_status, sizeof(res.operation_status), "assigned");
    if (answer_text) {
        res.text = strdup(answer_text);
        res.text_len = strlen(answer_text);
    }
    res.body = answer_body;
    answer_body = NULL;
    answer(answer_arg, &res);
    provision_result_release(&res);
}

/* Encodes a packet onto in. */
static void put(struct evbuffer *in, const struct mqtt_packet *p)
{
    uint8_t buf[1024];
    size_t n = mqtt_encode(p, buf, sizeof(buf));

    if (n > 0 && n <= sizeof(buf))
        evbuffer_add(in, buf, n);
}

/*
 * Connects, subscribes and sends one register request with payload; returns
 * the payload of the response PUBLISH (caller frees), or NULL.
 */
static char *exchange(const char *payload)
{
    static const char user[] = SCOPE "/registrations/" RID "/api-version=2019-03-31";
    static const char topic[] = DPS_MQTT_REGISTER_TOPIC "?$rid=1";
    struct mqtt_backend be = {NULL, fake_request, NULL};
    struct mqtt_packet p;
    struct mqtt_session *s;
    struct evbuffer *in = evbuffer_new();
    uint8_t *bytes;
    size_t len, off = 0;
    char *out = NULL;
    int n;

    wire = evbuffer_new();
    s = mqtt_session_new(&be, 4096, NULL, "127.0.0.1:1", fake_send, NULL);
    memset(&p, 0, sizeof(p));
    p.type = MQTT_CONNECT;
    p.u.connect.clean_session = true;
    p.u.connect.keep_alive = 60;
    p.u.connect.client_id = (struct mqtt_str){RID, strlen(RID)};
    p.u.connect.has_username = true;
    p.u.connect.username = (struct mqtt_str){user, strlen(user)};
    put(in, &p);
    memset(&p, 0, sizeof(p));
    p.type = MQTT_SUBSCRIBE;
    p.u.subscribe.packet_id = 1;
    p.u.subscribe.count = 1;
    p.u.subscribe.topics[0].filter =
        (struct mqtt_str){DPS_MQTT_RESPONSE_FILTER, strlen(DPS_MQTT_RESPONSE_FILTER)};
    put(in, &p);
    memset(&p, 0, sizeof(p));
    p.type = MQTT_PUBLISH;
    p.u.publish.topic = (struct mqtt_str){topic, strlen(topic)};
    p.u.publish.payload = (struct mqtt_bytes){(const uint8_t *)payload, strlen(payload)};
    put(in, &p);
    if (mqtt_session_input(s, in) != MQTT_SESSION_OPEN)
        goto out;
    len = evbuffer_get_length(wire);
    bytes = evbuffer_pullup(wire, -1);
    /* CONNACK, SUBACK, then the response */
    while (off < len && (n = mqtt_decode(bytes + off, len - off, NULL, &p, NULL)) > 0) {
        off += (size_t)n;
        if (p.type == MQTT_PUBLISH) {
            out = strndup((const char *)p.u.publish.payload.ptr, p.u.publish.payload.len);
            break;
        }
    }
out:
    mqtt_session_free(s);
    evbuffer_free(in);
    evbuffer_free(wire);
    wire = NULL;
    return out;
}

/* An ASCII text is sent as it is. */
static void test_ascii_text(void)
{
    static const char text[] =
        "{\"operationId\":\"1.x\",\"status\":\"assigned\",\"registrationState\":{}}";
    char *payload = NULL;

    answer_text = text;
    payload = exchange("{\"registrationId\":\"" RID "\"}");
    ok_str(payload, text);
end:
    answer_text = NULL;
    free(payload);
}

/* A text with non-ASCII characters (and no tree) is sent escaped, in its member order. */
static void test_non_ascii_text(void)
{
    char *payload = NULL;

    answer_text = "{\"operationId\":\"1.x\",\"status\":\"assigned\",\"registrationState\":"
                  "{\"deviceId\":\"d\xc3\xa9v\",\"errorMessage\":\"\xe2\x82\xac \\\"q\\\"\"}}";
    payload = exchange("{\"registrationId\":\"" RID "\"}");
    ok_str(payload, "{\"operationId\":\"1.x\",\"status\":\"assigned\",\"registrationState\":"
                    "{\"deviceId\":\"d\\u00E9v\",\"errorMessage\":\"\\u20AC \\\"q\\\"\"}}");
end:
    answer_text = NULL;
    free(payload);
}

/* An answer made as a tree (no text) is sent escaped the same way. */
static void test_tree(void)
{
    char *payload = NULL;

    answer_body = json_pack("{s:s,s:s,s:{s:s}}", "operationId", "1.x", "status", "assigned",
                            "registrationState", "deviceId", "d\xc3\xa9v");
    payload = exchange("{\"registrationId\":\"" RID "\"}");
    ok_str(payload, "{\"operationId\":\"1.x\",\"status\":\"assigned\",\"registrationState\":"
                    "{\"deviceId\":\"d\\u00E9v\"}}");
end:
    json_decref(answer_body);
    answer_body = NULL;
    free(payload);
}

/*
 * The register body handed on: as sent when it names the registration id
 * or is no JSON object; an object without one gets it from the user name.
 */
static void test_register_body(void)
{
    static const char *const as_sent[] = {
        "{\"registrationId\":\"" RID "\",\"payload\":{\"a\":1.50}}",
        "{\"registrationId\":7}",
        "",
        " ",
        "[1]",
        "{not json",
    };
    char *payload = NULL;
    size_t i;

    answer_text = "{}";
    for (i = 0; i < ARRAY_SIZE(as_sent); i++) {
        payload = exchange(as_sent[i]);
        ok_str(payload, "{}");
        ok_str(got_body, as_sent[i]);
        free(payload);
        payload = NULL;
    }
    payload = exchange("{\"payload\":{\"b\":[true]}}");
    ok_str(got_body, "{\"payload\":{\"b\":[true]},\"registrationId\":\"" RID "\"}");
end:
    answer_text = NULL;
    free(payload);
}

int main(void)
{
    log_threshold = -1; /* the session logs every request */
    subtest("an ascii text is sent as it is", test_ascii_text);
    subtest("a non-ascii text is sent escaped", test_non_ascii_text);
    subtest("a tree is sent escaped", test_tree);
    subtest("the register body handed on", test_register_body);
    return t_done();
}
