/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the MQTT 3.1.1 decoder the way a session consumes a stream:
 * packets one after another until the bytes run out or one is refused.
 * Every decoded packet is encoded again and must give back the same bytes,
 * and the DPS user name and topic parsers run on what a device would send.
 */
#include "core/common.h"
#include "core/dps_mqtt.h"
#include "core/mqtt_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t again[MQTT_MAX_FIXED_HEADER + 64 * 1024];

/* The body is the same; the fixed header may differ only in a longer length encoding. */
static void check_round_trip(const uint8_t *in, size_t n, const struct mqtt_packet *p)
{
    size_t m = mqtt_encode(p, again, sizeof(again));
    size_t in_header = 2, out_header = 2;

    while (in[in_header - 1] & 0x80)
        in_header++;
    if (m == 0 || m > sizeof(again))
        abort();
    while (again[out_header - 1] & 0x80)
        out_header++;
    if (again[0] != in[0] || m - out_header != n - in_header ||
        memcmp(again + out_header, in + in_header, n - in_header) != 0)
        abort();
}

static void check_dps(const struct mqtt_packet *p)
{
    struct dps_mqtt_username user;
    struct dps_mqtt_request_topic req;
    struct dps_mqtt_response res;
    char topic[DPS_MQTT_RESPONSE_TOPIC_SIZE];
    struct dps_error err;

    switch (p->type) {
    case MQTT_CONNECT:
        if (p->u.connect.has_username)
            dps_mqtt_username_parse(p->u.connect.username.ptr, p->u.connect.username.len, &user,
                                    &err);
        break;
    case MQTT_PUBLISH:
        dps_mqtt_response_topic_parse(p->u.publish.topic.ptr, p->u.publish.topic.len, &res, &err);
        if (dps_mqtt_request_topic_parse(p->u.publish.topic.ptr, p->u.publish.topic.len, &req,
                                         &err) != DPS_OK)
            break;
        /* Whatever $rid was accepted must fit a response topic and come back unchanged. */
        if (dps_mqtt_response_topic(topic, sizeof(topic), 202, req.rid, req.rid_len, 3) >=
            sizeof(topic))
            abort();
        if (dps_mqtt_response_topic_parse(topic, strlen(topic), &res, &err) == DPS_OK &&
            (res.rid_len != req.rid_len || (res.rid_len && memcmp(res.rid, req.rid, res.rid_len))))
            abort();
        break;
    case MQTT_SUBSCRIBE:
        for (size_t i = 0; i < p->u.subscribe.count; i++)
            dps_mqtt_filter_is_supported(p->u.subscribe.topics[i].filter.ptr,
                                         p->u.subscribe.topics[i].filter.len);
        break;
    default:
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct mqtt_limits tight = {
        .max_packet = 512, .max_topic = 64, .max_client_id = 23};
    const struct mqtt_limits *limits[] = {NULL, &tight};

    for (size_t l = 0; l < ARRAY_SIZE(limits); l++) {
        size_t off = 0;

        while (off < size) {
            struct mqtt_packet p;
            struct dps_error err;
            int rc = mqtt_decode(data + off, size - off, limits[l], &p, &err);

            if (rc <= 0)
                break;
            check_round_trip(data + off, (size_t)rc, &p);
            check_dps(&p);
            off += (size_t)rc;
        }
    }
    return 0;
}
