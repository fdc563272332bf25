/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the DPS user name and topic helpers (dps-protocol.md §5):
 * the user names and topics each device client sends, the response topics
 * they parse, and the malformed ones refused with a reason.
 */
#include "core/common.h"
#include "core/dps_mqtt.h"

#include "../t.h"

static int parse_user(const char *s, struct dps_mqtt_username *u, struct dps_error *err)
{
    return dps_mqtt_username_parse(s, strlen(s), u, err);
}

static void test_username_clients(void)
{
    struct dps_mqtt_username u;
    struct dps_error err = {0};

    /* Node: ClientVersion percent-encoded */
    ok_int(parse_user("0ne00000000/registrations/node-dev-01/api-version=2019-03-31"
                      "&ClientVersion=azure-iot-provisioning-device%2F1.9.1",
                      &u, &err),
           DPS_OK);
    ok_str(u.id_scope, "0ne00000000");
    ok_str(u.registration_id, "node-dev-01");
    ok_str(u.api_version, "2019-03-31");
    ok_str(u.client_version, "azure-iot-provisioning-device/1.9.1");

    /* azure-iot-sdk-c */
    ok_int(parse_user("0ne1/registrations/c-dev/api-version=2021-06-01&ClientVersion=1.15.0", &u,
                      &err),
           DPS_OK);
    ok_str(u.api_version, "2021-06-01");
    ok_str(u.client_version, "1.15.0");

    /* Embedded C: no ClientVersion, or a user agent not encoded at all */
    ok_int(parse_user("0ne1/registrations/paho-dev/api-version=2019-03-31", &u, &err), DPS_OK);
    ok_str(u.registration_id, "paho-dev");
    ok_str(u.client_version, "");
    ok_int(parse_user("0ne1/registrations/paho-dev/api-version=2019-03-31"
                      "&ClientVersion=azsdk-c/1.5.0 (linux; x86_64) 100%",
                      &u, &err),
           DPS_OK);
    ok_str(u.client_version, "azsdk-c/1.5.0 (linux; x86_64) 100%");

    /* Python: quoted user agent */
    ok_int(parse_user("0ne1/registrations/py-dev/api-version=2019-03-31&ClientVersion="
                      "azure-iot-device%2F2.14.0%28Linux%3Bx86_64%29",
                      &u, &err),
           DPS_OK);
    ok_str(u.client_version, "azure-iot-device/2.14.0(Linux;x86_64)");
end:;
}

static void test_username_lenient(void)
{
    struct dps_mqtt_username u;
    struct dps_error err = {0};

    /* unknown keys ignored, order free, a leading '?' tolerated, keys in any case */
    ok_int(parse_user("s/registrations/d/?foo=bar&ClientVersion=x&API-VERSION=1&&flag", &u, &err),
           DPS_OK);
    ok_str(u.api_version, "1");
    ok_str(u.client_version, "x");
    /* no parameters at all, with or without the '/' */
    ok_int(parse_user("s/registrations/d", &u, &err), DPS_OK);
    ok_str(u.registration_id, "d");
    ok_str(u.api_version, "");
    ok_int(parse_user("s/registrations/d/", &u, &err), DPS_OK);
    /* encoded registration id and scope are decoded */
    ok_int(parse_user("0ne%31/registrations/dev%2d1/api-version=1", &u, &err), DPS_OK);
    ok_str(u.id_scope, "0ne1");
    ok_str(u.registration_id, "dev-1");
end:;
}

static bool user_refused(const char *s, size_t len, const char *reason)
{
    struct dps_mqtt_username u;
    struct dps_error err = {0};

    memset(&u, 0x5a, sizeof(u));
    if (dps_mqtt_username_parse(s, len, &u, &err) != DPS_ERR_INVAL || err.code != DPS_ERR_INVAL ||
        !strstr(err.msg, reason)) {
        fprintf(stderr, "    got '%s', expected '%s'\n", err.msg, reason);
        return false;
    }
    return ((unsigned char *)&u)[0] == 0x5a; /* untouched */
}

#define USER_REFUSED(s, reason) user_refused(s, sizeof(s) - 1, reason)

static void test_username_refused(void)
{
    char longname[DPS_MQTT_USERNAME_MAX + 2];
    char longid[300];

    ok(USER_REFUSED("", "no 'id scope'"));
    ok(user_refused(NULL, 0, "no 'id scope'"));
    ok(USER_REFUSED("scope-only", "no 'id scope'"));
    ok(USER_REFUSED("/registrations/d/api-version=1", "no 'id scope'"));
    ok(USER_REFUSED("s/registration/d/api-version=1", "no '/registrations/'"));
    ok(USER_REFUSED("s/devices/d", "no '/registrations/'"));
    ok(USER_REFUSED("s/registrations//api-version=1", "no 'registration id'"));
    ok(USER_REFUSED("s/registrations/", "no 'registration id'"));
    ok(USER_REFUSED("s/registrations/d%00x/api-version=1", "'registration id' holds a NUL"));
    ok(USER_REFUSED("s/registrations/d/api-version=1&api-version=2", "repeats 'api-version'"));
    ok(USER_REFUSED("s/registrations/d/api-version=1234567890123456789012345678901234",
                    "'api-version' is longer than 32 bytes"));
    memset(longid, 'a', sizeof(longid));
    memcpy(longid, "s/registrations/", 16);
    ok(user_refused(longid, 16 + DPS_MQTT_REGID_MAX + 1, "'registration id' is longer than 128"));
    {
        struct dps_mqtt_username u;

        ok_int(dps_mqtt_username_parse(longid, 16 + DPS_MQTT_REGID_MAX, &u, NULL), DPS_OK);
        ok_int(strlen(u.registration_id), DPS_MQTT_REGID_MAX);
    }
    memset(longname, 'a', sizeof(longname));
    ok(user_refused(longname, sizeof(longname) - 1, "over 1024"));
end:;
}

static void test_username_build(void)
{
    char buf[256], tiny[8];
    struct dps_mqtt_username u;
    struct dps_error err;
    size_t n;

    n = dps_mqtt_username_build(buf, sizeof(buf), "0ne1", "dev-1", "2021-06-01",
                                "dpsctl/0.1 (linux)");
    ok_str(buf, "0ne1/registrations/dev-1/api-version=2021-06-01&ClientVersion=dpsctl%2F0.1%20%28"
                "linux%29");
    ok_int(n, strlen(buf));
    ok_int(parse_user(buf, &u, &err), DPS_OK);
    ok_str(u.client_version, "dpsctl/0.1 (linux)");
    n = dps_mqtt_username_build(buf, sizeof(buf), "s", "d", "1", NULL);
    ok_str(buf, "s/registrations/d/api-version=1");
    ok_int(dps_mqtt_username_build(tiny, sizeof(tiny), "s", "d", "1", NULL), n);
    ok_str(tiny, "");
end:;
}

static int parse_topic(const char *s, struct dps_mqtt_request_topic *t, struct dps_error *err)
{
    return dps_mqtt_request_topic_parse(s, strlen(s), t, err);
}

static bool span_is(const char *p, size_t n, const char *lit)
{
    return n == strlen(lit) && (n == 0 ? p == NULL : memcmp(p, lit, n) == 0);
}

static void test_request_topics(void)
{
    static const char uuid[] = "$dps/registrations/PUT/iotdps-register/"
                               "?$rid=0f2e6a8e-5e43-4a51-9b2c-4d1f0c9d7a11";
    struct dps_mqtt_request_topic t;
    struct dps_error err = {0};
    char buf[200];

    ok_int(parse_topic(uuid, &t, &err), DPS_OK);
    ok_int(t.kind, DPS_MQTT_REGISTER);
    ok(span_is(t.rid, t.rid_len, "0f2e6a8e-5e43-4a51-9b2c-4d1f0c9d7a11"));
    ok(t.rid == uuid + strlen(uuid) - 36); /* borrowed */
    ok(t.operation_id == NULL && t.operation_id_len == 0);

    /* C: numeric rid; third parties: empty or absent rid */
    ok_int(parse_topic("$dps/registrations/PUT/iotdps-register/?$rid=17", &t, &err), DPS_OK);
    ok(span_is(t.rid, t.rid_len, "17"));
    ok_int(parse_topic("$dps/registrations/PUT/iotdps-register/?$rid=", &t, &err), DPS_OK);
    ok(span_is(t.rid, t.rid_len, ""));
    ok_int(parse_topic("$dps/registrations/PUT/iotdps-register/", &t, &err), DPS_OK);
    ok(span_is(t.rid, t.rid_len, ""));
    ok_int(parse_topic("$dps/registrations/PUT/iotdps-register/?", &t, &err), DPS_OK);

    /* rid kept byte for byte, not decoded; unknown keys ignored */
    ok_int(parse_topic("$dps/registrations/PUT/iotdps-register/?x=1&$rid=a%20b=c&operationId=z", &t,
                       &err),
           DPS_OK);
    ok(span_is(t.rid, t.rid_len, "a%20b=c"));
    ok(t.operation_id == NULL);

    /* poll */
    ok_int(parse_topic("$dps/registrations/GET/iotdps-get-operationstatus/?$rid=2&operationId="
                       "4.d0a671905ea5b2c8.e7173b7b-0e54-4aa0-9d20-aeb1b89e6c7d",
                       &t, &err),
           DPS_OK);
    ok_int(t.kind, DPS_MQTT_POLL);
    ok(span_is(t.rid, t.rid_len, "2"));
    ok(span_is(t.operation_id, t.operation_id_len,
               "4.d0a671905ea5b2c8.e7173b7b-0e54-4aa0-9d20-aeb1b89e6c7d"));
    ok_int(parse_topic(
               "$dps/registrations/GET/iotdps-get-operationstatus/?operationId=op&$rid=", &t, &err),
           DPS_OK);
    ok(span_is(t.operation_id, t.operation_id_len, "op"));

    /* builders */
    ok_int(dps_mqtt_request_topic_build(buf, sizeof(buf), DPS_MQTT_REGISTER, "5", NULL), 46);
    ok_str(buf, "$dps/registrations/PUT/iotdps-register/?$rid=5");
    dps_mqtt_request_topic_build(buf, sizeof(buf), DPS_MQTT_POLL, "6", "op-1");
    ok_str(buf, "$dps/registrations/GET/iotdps-get-operationstatus/?$rid=6&operationId=op-1");
    ok_int(parse_topic(buf, &t, &err), DPS_OK);
end:;
}

static bool topic_refused(const char *s, int code, const char *reason)
{
    struct dps_mqtt_request_topic t = {.kind = 99};
    struct dps_error err = {0};
    int rc = dps_mqtt_request_topic_parse(s, strlen(s), &t, &err);

    if (rc != code || err.code != code || !strstr(err.msg, reason)) {
        fprintf(stderr, "    got %d '%s', expected %d '%s'\n", rc, err.msg, code, reason);
        return false;
    }
    return t.kind == 99;
}

static void test_request_topics_refused(void)
{
    char big[400];

    ok(topic_refused("devices/x/messages", DPS_ERR_NOT_FOUND, "not a provisioning request"));
    ok(topic_refused("$dps/registrations/put/iotdps-register/?$rid=1", DPS_ERR_NOT_FOUND,
                     "not a provisioning request"));
    ok(topic_refused("$dps/registrations/PUT/iotdps-register", DPS_ERR_NOT_FOUND,
                     "not a provisioning request"));
    ok(topic_refused("$dps/registrations/PUT/iotdps-register/x?$rid=1", DPS_ERR_NOT_FOUND,
                     "'?' must follow"));
    ok(topic_refused("$dps/registrations/PUT/iotdps-register/?$rid=1&$rid=2", DPS_ERR_INVAL,
                     "repeats '$rid'"));
    ok(topic_refused("$dps/registrations/PUT/iotdps-register/?$rid", DPS_ERR_INVAL,
                     "parameter '$rid' has no '='"));
    ok(topic_refused("$dps/registrations/GET/iotdps-get-operationstatus/?$rid=1", DPS_ERR_INVAL,
                     "poll topic has no 'operationId'"));
    ok(topic_refused("$dps/registrations/GET/iotdps-get-operationstatus/?$rid=1&operationId=",
                     DPS_ERR_INVAL, "no 'operationId'"));
    ok(topic_refused("$dps/registrations/GET/iotdps-get-operationstatus/"
                     "?operationId=a&operationId=b",
                     DPS_ERR_INVAL, "repeats 'operationId'"));
    snprintf(big, sizeof(big), "$dps/registrations/PUT/iotdps-register/?$rid=%0129d", 0);
    ok(topic_refused(big, DPS_ERR_INVAL, "'$rid' is 129 bytes, over the limit of 128"));
    snprintf(big, sizeof(big), "$dps/registrations/PUT/iotdps-register/?$rid=%0128d", 0);
    {
        struct dps_mqtt_request_topic t;

        ok_int(dps_mqtt_request_topic_parse(big, strlen(big), &t, NULL), DPS_OK);
        ok_int(t.rid_len, DPS_MQTT_RID_MAX);
    }
end:;
}

static void test_filter(void)
{
    ok(dps_mqtt_filter_is_supported("$dps/registrations/res/#", 24));
    ok(!dps_mqtt_filter_is_supported("$dps/registrations/res/#", 23));
    ok(!dps_mqtt_filter_is_supported("$dps/registrations/res/+", 24));
    ok(!dps_mqtt_filter_is_supported("#", 1));
    ok(!dps_mqtt_filter_is_supported("$dps/registrations/res/#/x", 26));
end:;
}

static void test_response_topics(void)
{
    char buf[DPS_MQTT_RESPONSE_TOPIC_SIZE], small[10], rid[DPS_MQTT_RID_MAX];
    struct dps_mqtt_response r;
    struct dps_error err = {0};
    size_t n;

    n = dps_mqtt_response_topic(buf, sizeof(buf), 202, "1", 1, 3);
    ok_str(buf, "$dps/registrations/res/202/?$rid=1&retry-after=3");
    ok_int(n, strlen(buf));
    ok_int(dps_mqtt_response_topic_parse(buf, n, &r, &err), DPS_OK);
    ok_int(r.status, 202);
    ok(span_is(r.rid, r.rid_len, "1"));
    ok_int(r.retry_after, 3);

    n = dps_mqtt_response_topic(buf, sizeof(buf), 200, "a%20b", 5, -1);
    ok_str(buf, "$dps/registrations/res/200/?$rid=a%20b");
    ok_int(dps_mqtt_response_topic_parse(buf, n, &r, &err), DPS_OK);
    ok(span_is(r.rid, r.rid_len, "a%20b"));
    ok_int(r.retry_after, -1);

    n = dps_mqtt_response_topic(buf, sizeof(buf), 401, NULL, 0, -1);
    ok_str(buf, "$dps/registrations/res/401/?$rid=");
    ok_int(dps_mqtt_response_topic_parse(buf, n, &r, &err), DPS_OK);
    ok_int(r.rid_len, 0);

    /* the longest fits the documented size */
    memset(rid, '9', sizeof(rid));
    n = dps_mqtt_response_topic(buf, sizeof(buf), 429, rid, sizeof(rid), 999999999);
    ok(n > 0 && n < sizeof(buf));
    ok_int(strlen(buf), n);

    /* too small: the length comes back, the buffer holds "" */
    n = dps_mqtt_response_topic(small, sizeof(small), 200, "1", 1, -1);
    ok_int(n, strlen("$dps/registrations/res/200/?$rid=1"));
    ok_str(small, "");

    /* out of range */
    ok_int(dps_mqtt_response_topic(buf, sizeof(buf), 99, "1", 1, -1), 0);
    ok_int(dps_mqtt_response_topic(buf, sizeof(buf), 1000, "1", 1, -1), 0);
    ok_int(dps_mqtt_response_topic(buf, sizeof(buf), 200, rid, sizeof(rid) + 1, -1), 0);
    ok_int(dps_mqtt_response_topic(buf, sizeof(buf), 200, "1", 1, -2), 0);

    /* malformed responses */
    ok(dps_mqtt_response_topic_parse("$dps/registrations/res/20/?$rid=1", 33, &r, &err) ==
       DPS_ERR_INVAL);
    ok(strstr(err.msg, "three digits") != NULL);
    ok(dps_mqtt_response_topic_parse("$dps/registrations/res/200/?foo", 31, &r, &err) ==
       DPS_ERR_INVAL);
    ok(dps_mqtt_response_topic_parse("$dps/registrations/res/200/?x=1", 31, &r, &err) ==
       DPS_ERR_INVAL);
    ok(strstr(err.msg, "no '$rid'") != NULL);
    ok(dps_mqtt_response_topic_parse("$dps/registrations/res/200/?$rid=1&retry-after=x", 48, &r,
                                     &err) == DPS_ERR_INVAL);
end:;
}

int main(void)
{
    subtest("user names as the clients send them", test_username_clients);
    subtest("user names read leniently", test_username_lenient);
    subtest("user names refused", test_username_refused);
    subtest("user names built", test_username_build);
    subtest("register and poll topics", test_request_topics);
    subtest("request topics refused", test_request_topics_refused);
    subtest("subscribe filter", test_filter);
    subtest("response topics", test_response_topics);
    return t_done();
}
