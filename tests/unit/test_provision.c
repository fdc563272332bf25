/* SPDX-License-Identifier: MIT */
/*
 * The registration service on a temporary SQLite store: a symmetric-key
 * registration is assigned, recorded and answerable by operation id; a wrong
 * key is refused with 401002 and recorded as an attempt; bad input writes
 * nothing; a linked hub with apply=false receives no device of its own accord.
 */
#include "core/common.h"

#include <unistd.h>

#include <openssl/pem.h>

#include "../t.h"
#include "core/pki.h"
#include "core/sas.h"
#include "server/provision.h"
#include "store/store.h"
#include "tmpdir.h"

#define SCOPE "0ne0000AAAA"
#define KEY "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

static struct store *st;
static struct provision *prov;
static char dir[512];

static char *token(const char *id, const char *key)
{
    char sr[256], *t = NULL;

    snprintf(sr, sizeof(sr), SCOPE "/registrations/%s", id);
    sas_token_build(sr, key, "registration", (int64_t)time(NULL) + 600, &t, NULL);
    return t;
}

/* A registration request for id with SAS token tok (NULL: none) and body, on the test store. */
static struct provision_request request_for(const char *id, const char *tok, const char *body,
                                            const char *tracking_id)
{
    struct provision_request req = {
        .id_scope = SCOPE,
        .registration_id = id,
        .sas_token = tok,
        .sas_len = tok ? strlen(tok) : 0,
        .body = body,
        .body_len = strlen(body),
        .tracking_id = tracking_id,
        .store = st,
    };

    return req;
}

static int do_register(const char *id, const char *tok, const char *body,
                       struct provision_result *res)
{
    struct provision_request req =
        request_for(id, tok, body, "00000000-0000-4000-8000-000000000001");

    return provision_register(prov, &req, res);
}

static size_t n_attempts(const char *id)
{
    struct store_attempt_list l = {0};
    size_t n;

    store_attempt_list(st, id, false, 0, 100, &l, NULL);
    n = l.n;
    store_attempt_list_release(&l);
    return n;
}

static void test_assigned_and_operation(void)
{
    struct provision_result res = {0}, op = {0};
    struct store_attempt_list l = {0};
    char *tok = token("dev-1", KEY), *body = NULL, *again = NULL;
    json_t *answer = NULL, *attempt = NULL, *state = NULL, *op_answer = NULL;
    const char *opid;

    ok(do_register("dev-1", tok, "{\"registrationId\":\"dev-1\",\"payload\":{\"a\":1}}", &res) ==
       DPS_OK);
    ok_int(res.status, 200);
    ok_str(res.operation_status, "assigned");
    answer = provision_result_json(&res);
    ok_str(json_string_value(json_object_get(answer, "status")), "assigned");
    opid = json_string_value(json_object_get(answer, "operationId"));
    ok(opid != NULL);
    /* the reply's text, composed from the state rendered once, is the answer's own rendering */
    body = json_dumps(answer, JSON_COMPACT);
    ok(body != NULL && res.text != NULL);
    ok_str(res.text, body);
    ok(res.text_len == strlen(body));
    /* the attempt spliced the same state: compact JSON, the reply's state without store fields */
    ok(store_attempt_list(st, "dev-1", false, 0, 1, &l, NULL) == DPS_OK && l.n == 1);
    attempt = json_loads(l.items[0].json, 0, NULL);
    ok(attempt != NULL);
    again = json_dumps(attempt, JSON_COMPACT);
    ok_str(again, l.items[0].json);
    state = json_deep_copy(json_object_get(answer, "registrationState"));
    json_object_del(state, "createdDateTimeUtc");
    json_object_del(state, "lastUpdatedDateTimeUtc");
    json_object_del(state, "etag");
    ok(json_equal(state, json_object_get(attempt, "registrationState")));
    ok(provision_operation(prov, st, SCOPE, "dev-1", opid, &op) == DPS_OK);
    ok_int(op.status, 200);
    ok_str(op.operation_status, "assigned");
    op_answer = provision_result_json(&op);
    ok_str(json_string_value(
               json_object_get(json_object_get(op_answer, "registrationState"), "assignedHub")),
           "hub-1.example.net");
    provision_result_release(&op);
    ok(provision_operation(prov, st, SCOPE, "dev-1", "1.nope", &op) == DPS_OK);
    ok_int(op.status, 404);
    ok_int(n_attempts("dev-1"), 1);
end:
    provision_result_release(&res);
    provision_result_release(&op);
    store_attempt_list_release(&l);
    json_decref(answer);
    json_decref(op_answer);
    json_decref(attempt);
    json_decref(state);
    free(body);
    free(again);
    free(tok);
}

/*
 * A registration's 200 is held as text only: no tree, the operation status
 * named apart, and provision_result_json() the text parsed; the other
 * answers keep their tree or hold none.
 */
static void test_result_accessors(void)
{
    struct provision_result res = {0};
    char *tok = token("dev-1", KEY), *bad = token("dev-1", "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXo=");
    struct provision_request req =
        request_for("dev-1", tok, "", "00000000-0000-4000-8000-000000000006");
    json_t *a = NULL, *b = NULL, *parsed = NULL;

    ok(do_register("dev-1", tok, "{\"registrationId\":\"dev-1\"}", &res) == DPS_OK);
    ok_int(res.status, 200);
    ok(res.body == NULL);
    ok(res.text != NULL && res.text_len == strlen(res.text));
    ok_str(res.operation_status, "assigned");
    a = provision_result_json(&res);
    b = provision_result_json(&res);
    parsed = json_loads(res.text, 0, NULL);
    ok(a != NULL && parsed != NULL && a != b);
    ok(json_equal(a, parsed) && json_equal(b, parsed));
    ok_str(json_string_value(json_object_get(a, "status")), res.operation_status);
    json_decref(a);
    json_decref(b);
    json_decref(parsed);
    a = b = parsed = NULL;
    provision_result_release(&res);
    ok(res.text == NULL && res.operation_status[0] == '\0');

    /* refused: an error holds no answer */
    ok(do_register("dev-1", bad, "", &res) == DPS_OK && res.status == 401);
    ok_str(res.operation_status, "");
    ok(provision_result_json(&res) == NULL);
    provision_result_release(&res);

    /* a status lookup answers with its tree, and names no operation status */
    ok(provision_status_lookup(prov, &req, &res) == DPS_OK && res.status == 200);
    ok_str(res.operation_status, "");
    a = provision_result_json(&res);
    ok(a != NULL && a == res.body);
    ok_str(json_string_value(json_object_get(a, "registrationId")), "dev-1");
    json_decref(a);
    a = NULL;
    provision_result_release(&res);

    /* an authentication's 200 holds no answer */
    ok(provision_authenticate(prov, &req, &res) == DPS_OK && res.status == 200);
    ok(provision_result_json(&res) == NULL);
    ok_str(res.operation_status, "");
end:
    provision_result_release(&res);
    json_decref(a);
    json_decref(b);
    json_decref(parsed);
    free(tok);
    free(bad);
}

static void test_denied_is_recorded(void)
{
    struct provision_result res = {0};
    char *tok = token("dev-1", "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY=");

    ok(do_register("dev-1", tok, "{\"registrationId\":\"dev-1\"}", &res) == DPS_OK);
    ok_int(res.status, 401);
    ok_int(res.error_code, 401002);
    ok_int(n_attempts("dev-1"), 2);
end:
    provision_result_release(&res);
    free(tok);
}

static void test_bad_input_writes_nothing(void)
{
    struct provision_result res = {0};
    char *tok = token("dev-1", KEY);

    ok(do_register("dev-1", tok, "{not json", &res) == DPS_OK);
    ok_int(res.status, 400);
    provision_result_release(&res);
    ok(do_register("dev-1", tok, "{\"registrationId\":\"dev-2\"}", &res) == DPS_OK);
    ok_int(res.status, 400);
    provision_result_release(&res);
    ok(do_register("dev/1", tok, "", &res) == DPS_OK);
    ok_int(res.status, 400);
    ok_int(n_attempts("dev-1"), 2);
end:
    provision_result_release(&res);
    free(tok);
}

/* Checks that o's members are exactly the names, in that order. */
static int keys_are(const json_t *o, const char *const *names, size_t n)
{
    const char *key;
    json_t *v;
    size_t i = 0;

    if (!json_is_object(o) || json_object_size(o) != n)
        return 0;
    json_object_foreach((json_t *)o, key, v)
    {
        if (strcmp(key, names[i++]) != 0)
            return 0;
    }
    return 1;
}

/*
 * The newest attempt of id: compact JSON as one json_dumps() of it writes
 * (so the members, their order and their escapes are jansson's), parsed.
 */
static json_t *newest_attempt(const char *id)
{
    struct store_attempt_list l = {0};
    json_t *a = NULL;
    char *again = NULL;

    if (store_attempt_list(st, id, false, 0, 1, &l, NULL) != DPS_OK || l.n != 1)
        goto out;
    a = json_loads(l.items[0].json, 0, NULL);
    again = a ? json_dumps(a, JSON_COMPACT) : NULL;
    if (!again || strcmp(again, l.items[0].json) != 0) {
        json_decref(a);
        a = NULL;
    }
out:
    free(again);
    store_attempt_list_release(&l);
    return a;
}

/* The attempt's members in the order dpsd has always written them. */
static void test_attempt_text(void)
{
    static const char *const assigned[] = {"operationId", "trackingId",      "registrationId",
                                           "apiVersion",  "attestationType", "status",
                                           "enrollment",  "trace",           "registrationState"};
    static const char *const no_api[] = {"operationId",     "trackingId",       "registrationId",
                                         "attestationType", "status",           "enrollment",
                                         "trace",           "registrationState"};
    static const char *const denied[] = {"trackingId",      "registrationId", "apiVersion",
                                         "attestationType", "status",         "trace"};
    static const char *const trace[] = {"errorCode", "summary",   "deviceMessage",
                                        "omitted",   "truncated", "steps"};
    static const char *const enrollment[] = {"kind", "id"};
    struct provision_result res = {0};
    char *tok = token("dev-1", KEY);
    char *bad = token("dev-1", "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY=");
    struct provision_request req = request_for(
        "dev-1", tok, "{\"registrationId\":\"dev-1\",\"payload\":{\"b\":[1,\"\\u00e9\\n\"]}}",
        "00000000-0000-4000-8000-000000000003");
    json_t *a = NULL, *t;

    req.api_version = "2021-06-01";
    ok(provision_register(prov, &req, &res) == DPS_OK && res.status == 200);
    provision_result_release(&res);
    a = newest_attempt("dev-1");
    ok(keys_are(a, assigned, ARRAY_SIZE(assigned)));
    ok_str(json_string_value(json_object_get(a, "apiVersion")), "2021-06-01");
    ok(keys_are(json_object_get(a, "enrollment"), enrollment, ARRAY_SIZE(enrollment)));
    ok_str(json_string_value(json_object_get(json_object_get(a, "enrollment"), "kind")),
           "individual");
    t = json_object_get(a, "trace");
    ok(keys_are(t, trace, ARRAY_SIZE(trace)));
    ok_int(json_integer_value(json_object_get(t, "errorCode")), 0);
    ok(json_is_false(json_object_get(t, "truncated")));
    ok(json_array_size(json_object_get(t, "steps")) > 0);
    json_decref(a);

    /* an API version that is not UTF-8 is left out, as jansson left it out */
    req.api_version = "\xff\xfe";
    ok(provision_register(prov, &req, &res) == DPS_OK && res.status == 200);
    provision_result_release(&res);
    a = newest_attempt("dev-1");
    ok(keys_are(a, no_api, ARRAY_SIZE(no_api)));
    json_decref(a);

    /* denied: no operation, no enrollment, no state; the trace's conclusion */
    req.api_version = "2021-06-01";
    req.sas_token = bad;
    req.sas_len = bad ? strlen(bad) : 0;
    ok(provision_register(prov, &req, &res) == DPS_OK && res.status == 401);
    a = newest_attempt("dev-1");
    ok(keys_are(a, denied, ARRAY_SIZE(denied)));
    t = json_object_get(a, "trace");
    ok(keys_are(t, trace, ARRAY_SIZE(trace)));
    ok_int(json_integer_value(json_object_get(t, "errorCode")), 401002);
    ok(strlen(json_string_value(json_object_get(t, "deviceMessage"))) > 0);
end:
    provision_result_release(&res);
    json_decref(a);
    free(tok);
    free(bad);
}

/*
 * The stored record of id, parsed, when its text is compact JSON exactly as
 * one json_dumps() of it writes (members, order and escapes are jansson's).
 */
static json_t *stored_record(const char *id)
{
    struct store_object obj = {0};
    json_t *rec = NULL;
    char *again = NULL;

    if (store_registration_get(st, id, &obj, NULL) != DPS_OK)
        goto out;
    rec = json_loads(obj.json, 0, NULL);
    again = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
    if (!again || strcmp(again, obj.json) != 0) {
        json_decref(rec);
        rec = NULL;
    }
out:
    free(again);
    store_object_release(&obj);
    return rec;
}

/* Stores an individual symmetric-key enrollment for id with the extra members (may be ""). */
static int put_enrollment(const char *id, const char *extra)
{
    char json[1024];
    struct store_put put = {.id = id, .json = json, .attestation = "symmetricKey"};

    snprintf(json, sizeof(json),
             "{\"registrationId\":\"%s\",\"attestation\":{\"type\":\"symmetricKey\","
             "\"symmetricKey\":{\"primaryKey\":\"" KEY "\",\"secondaryKey\":\"" KEY "\"}}%s}",
             id, extra);
    return store_enrollment_put(st, &put, NULL, NULL);
}

/*
 * Checks what a 200 holds against the records it was made of: the reply's
 * text is its body's dump, the attempt's registrationState is the reply's
 * without the store's times and etag, and its members hold the stored
 * record's values. state_keys: the members of the attempt's registrationState.
 */
static int reply_matches(const struct provision_result *res, const char *id,
                         const char *const *state_keys, size_t n)
{
    json_t *a = newest_attempt(id), *rec = stored_record(id), *state = NULL;
    json_t *answer = provision_result_json(res);
    char *body = answer ? json_dumps(answer, JSON_COMPACT) : NULL;
    size_t i;
    int good = 0;

    if (!a || !rec || !body || (res->text && strcmp(res->text, body) != 0))
        goto out;
    if (!keys_are(json_object_get(a, "registrationState"), state_keys, n))
        goto out;
    state = json_deep_copy(json_object_get(answer, "registrationState"));
    json_object_del(state, "createdDateTimeUtc");
    json_object_del(state, "lastUpdatedDateTimeUtc");
    json_object_del(state, "etag");
    if (!json_equal(state, json_object_get(a, "registrationState")))
        goto out;
    for (i = 0; i < n; i++)
        if (!json_equal(json_object_get(rec, state_keys[i]), json_object_get(state, state_keys[i])))
            goto out;
    good = 1;
out:
    json_decref(answer);
    json_decref(rec);
    json_decref(a);
    json_decref(state);
    free(body);
    return good;
}

/* The stored record's members and their order: assigned, with a twin and a payload. */
static void test_record_assigned(void)
{
    static const char *const rec_keys[] = {
        "registrationId", "status",          "assignedHub",     "deviceId",    "substatus",
        "operationId",    "trackingId",      "attestationType", "initialTwin", "capabilities",
        "hubChanged",     "resetDeviceData", "devicePayload"};
    static const char *const no_ids[] = {
        "registrationId",  "status",      "assignedHub",  "deviceId",   "substatus",
        "attestationType", "initialTwin", "capabilities", "hubChanged", "resetDeviceData"};
    static const char *const state_keys[] = {"registrationId", "assignedHub", "deviceId", "status",
                                             "substatus"};
    struct provision_result res = {0};
    char *tok = token("dev-tw", KEY);
    struct provision_request req = request_for(
        "dev-tw", tok,
        "{\"registrationId\":\"dev-tw\",\"payload\":{\"z\":[1.5,\"\\u00e9\\t\"],\"a\":null}}",
        "00000000-0000-4000-8000-000000000004");
    json_t *rec = NULL, *twin = NULL, *answer = NULL;

    ok(put_enrollment("dev-tw",
                      ",\"capabilities\":{\"iotEdge\":true},\"initialTwin\":{\"tags\":"
                      "{\"k\":\"\\u00fc\\\"\"},\"properties\":{\"desired\":{\"x\":2}}}") == DPS_OK);
    ok(provision_register(prov, &req, &res) == DPS_OK && res.status == 200);
    ok(res.text != NULL);
    ok(reply_matches(&res, "dev-tw", state_keys, ARRAY_SIZE(state_keys)));
    rec = stored_record("dev-tw");
    ok(keys_are(rec, rec_keys, ARRAY_SIZE(rec_keys)));
    ok_str(json_string_value(json_object_get(rec, "status")), "assigned");
    ok_str(json_string_value(json_object_get(rec, "trackingId")), req.tracking_id);
    answer = provision_result_json(&res);
    ok_str(json_string_value(json_object_get(rec, "operationId")),
           json_string_value(json_object_get(answer, "operationId")));
    ok(json_is_true(json_object_get(json_object_get(rec, "capabilities"), "iotEdge")));
    ok(json_is_false(json_object_get(rec, "hubChanged")));
    twin = json_loads("{\"tags\":{\"k\":\"\\u00fc\\\"\"},\"properties\":{\"desired\":{\"x\":2}}}",
                      0, NULL);
    ok(json_equal(json_object_get(rec, "initialTwin"), twin));
    ok_str(json_string_value(
               json_array_get(json_object_get(json_object_get(rec, "devicePayload"), "z"), 1)),
           "\xc3\xa9\t");
    provision_result_release(&res);
    json_decref(rec);
    json_decref(answer);
    answer = NULL;

    /*
     * a tracking id that is not UTF-8: it and the operation id made of it
     * are left out, and the answer, whose text would not render, is a tree
     */
    req.tracking_id = "\xff\xfe-not-utf-8";
    req.body = "";
    req.body_len = 0;
    ok(provision_register(prov, &req, &res) == DPS_OK && res.status == 200);
    ok(res.text == NULL && res.body != NULL);
    ok_str(res.operation_status, "assigned");
    answer = provision_result_json(&res);
    ok(answer == res.body);
    ok(json_object_get(answer, "operationId") == NULL);
    ok(reply_matches(&res, "dev-tw", state_keys, ARRAY_SIZE(state_keys)));
    rec = stored_record("dev-tw");
    ok(keys_are(rec, no_ids, ARRAY_SIZE(no_ids)));
end:
    provision_result_release(&res);
    json_decref(answer);
    json_decref(rec);
    json_decref(twin);
    free(tok);
}

/* Disabled after an assignment: the previous hub and device id stay, no substatus. */
static void test_record_disabled(void)
{
    static const char *const rec_keys[] = {
        "registrationId", "status",          "assignedHub",  "deviceId",   "operationId",
        "trackingId",     "attestationType", "capabilities", "hubChanged", "resetDeviceData"};
    static const char *const state_keys[] = {"registrationId", "assignedHub", "deviceId", "status"};
    struct provision_result res = {0};
    char *tok = token("dev-off", KEY);
    json_t *rec = NULL;

    ok(put_enrollment("dev-off", "") == DPS_OK);
    ok(do_register("dev-off", tok, "{\"registrationId\":\"dev-off\"}", &res) == DPS_OK &&
       res.status == 200);
    provision_result_release(&res);
    ok(put_enrollment("dev-off", ",\"provisioningStatus\":\"disabled\"") == DPS_OK);
    ok(do_register("dev-off", tok, "{\"registrationId\":\"dev-off\"}", &res) == DPS_OK &&
       res.status == 200);
    ok_str(res.operation_status, "disabled");
    ok(res.text != NULL && res.body == NULL);
    ok(reply_matches(&res, "dev-off", state_keys, ARRAY_SIZE(state_keys)));
    rec = stored_record("dev-off");
    ok(keys_are(rec, rec_keys, ARRAY_SIZE(rec_keys)));
    ok_str(json_string_value(json_object_get(rec, "assignedHub")), "hub-1.example.net");
    ok_str(json_string_value(json_object_get(rec, "deviceId")), "dev-off");
end:
    provision_result_release(&res);
    json_decref(rec);
    free(tok);
}

/* Failed (custom allocation is not offered): errorCode and errorMessage, no hub. */
static void test_record_failed(void)
{
    static const char *const rec_keys[] = {
        "registrationId", "status",          "errorCode",    "errorMessage", "operationId",
        "trackingId",     "attestationType", "capabilities", "hubChanged",   "resetDeviceData"};
    static const char *const state_keys[] = {"registrationId", "status", "errorCode",
                                             "errorMessage"};
    struct provision_result res = {0};
    char *tok = token("dev-cu", KEY);
    json_t *rec = NULL;

    ok(put_enrollment("dev-cu", ",\"allocationPolicy\":\"custom\",\"customAllocationDefinition\":"
                                "{\"webhookUrl\":\"https://f.example/x\",\"apiVersion\":"
                                "\"2021-10-01\"}") == DPS_OK);
    ok(do_register("dev-cu", tok, "", &res) == DPS_OK && res.status == 200);
    ok_str(res.operation_status, "failed");
    ok(res.text != NULL && res.body == NULL);
    ok(reply_matches(&res, "dev-cu", state_keys, ARRAY_SIZE(state_keys)));
    rec = stored_record("dev-cu");
    ok(keys_are(rec, rec_keys, ARRAY_SIZE(rec_keys)));
    ok(json_integer_value(json_object_get(rec, "errorCode")) > 400000);
    ok(strlen(json_string_value(json_object_get(rec, "errorMessage"))) > 0);
end:
    provision_result_release(&res);
    json_decref(rec);
    free(tok);
}

/* An X.509 group: the group's object under the attestation type, and its id. */
static void test_record_x509(void)
{
    static const char *const rec_keys[] = {
        "registrationId", "status",      "assignedHub",    "deviceId",        "substatus",
        "x509",           "operationId", "trackingId",     "attestationType", "enrollmentGroupId",
        "capabilities",   "hubChanged",  "resetDeviceData"};
    static const char *const state_keys[] = {"registrationId", "assignedHub", "deviceId",
                                             "status",         "substatus",   "x509"};
    struct pki_cert_spec root_spec = {
        .kind = PKI_CERT_ROOT_CA, .subject = "CN=Record Root", .days = 30, .pathlen = -1};
    struct pki_cert_spec dev_spec = {
        .kind = PKI_CERT_DEVICE, .subject = "CN=dev-x", .days = 30, .pathlen = -1};
    struct provision_result res = {0};
    EVP_PKEY *root_key = NULL, *dev_key = NULL;
    X509 *root = NULL, *dev = NULL;
    STACK_OF(X509) *chain = sk_X509_new_null();
    char *pem = NULL, *group = NULL;
    json_t *g = NULL, *rec = NULL;
    struct store_put put = {.id = "grp-x", .attestation = "x509", .group_id = "grp-x"};
    struct provision_request req =
        request_for("dev-x", NULL, "", "00000000-0000-4000-8000-000000000005");

    ok(pki_key_generate(PKI_KEY_P256, &root_key, NULL) == DPS_OK);
    ok(pki_key_generate(PKI_KEY_P256, &dev_key, NULL) == DPS_OK);
    ok(pki_cert_issue(&root_spec, root_key, NULL, NULL, &root, NULL) == DPS_OK);
    ok(pki_cert_issue(&dev_spec, dev_key, root, root_key, &dev, NULL) == DPS_OK);
    ok((pem = pki_cert_pem(root)) != NULL);
    g = json_pack("{s:s,s:{s:s,s:{s:{s:{s:s}}}}}", "enrollmentGroupId", "grp-x", "attestation",
                  "type", "x509", "x509", "signingCertificates", "primary", "certificate", pem);
    ok((group = json_dumps(g, JSON_COMPACT)) != NULL);
    put.json = group;
    ok(store_group_put(st, &put, NULL, NULL) == DPS_OK);
    ok(chain && sk_X509_push(chain, dev) && sk_X509_push(chain, root));
    req.chain = chain;
    ok(provision_register(prov, &req, &res) == DPS_OK && res.status == 200);
    ok_str(res.operation_status, "assigned");
    ok(res.text != NULL && res.body == NULL);
    ok(reply_matches(&res, "dev-x", state_keys, ARRAY_SIZE(state_keys)));
    rec = stored_record("dev-x");
    ok(keys_are(rec, rec_keys, ARRAY_SIZE(rec_keys)));
    ok_str(json_string_value(json_object_get(json_object_get(rec, "x509"), "enrollmentGroupId")),
           "grp-x");
    ok_int(json_object_size(json_object_get(rec, "x509")), 1);
    ok_str(json_string_value(json_object_get(rec, "attestationType")), "x509");
    ok_str(json_string_value(json_object_get(rec, "enrollmentGroupId")), "grp-x");
end:
    provision_result_release(&res);
    sk_X509_free(chain);
    X509_free(root);
    X509_free(dev);
    EVP_PKEY_free(root_key);
    EVP_PKEY_free(dev_key);
    json_decref(g);
    json_decref(rec);
    free(pem);
    free(group);
}

/* Registers dev-1 on a service linked to hubs; its status and assigned hub go to the out-params. */
static int register_with_hubs(char **hubs, size_t n, char *status, size_t slen, char *hub,
                              size_t hlen)
{
    struct provision *p = NULL;
    struct provision_result res = {0};
    char *tok = token("dev-1", KEY);
    struct provision_request req =
        request_for("dev-1", tok, "", "00000000-0000-4000-8000-000000000002");
    json_t *answer = NULL;
    const json_t *state;
    int rc = -1;

    if (provision_new(SCOPE, hubs, n, NULL, 0, &p, NULL) != DPS_OK ||
        provision_register(p, &req, &res) != DPS_OK || res.status != 200)
        goto out;
    answer = provision_result_json(&res);
    state = json_object_get(answer, "registrationState");
    snprintf(status, slen, "%s", res.operation_status);
    snprintf(hub, hlen, "%s",
             json_string_value(json_object_get(state, "assignedHub"))
                 ? json_string_value(json_object_get(state, "assignedHub"))
                 : "");
    rc = 0;
out:
    json_decref(answer);
    provision_result_release(&res);
    provision_free(p);
    free(tok);
    return rc;
}

static void test_apply_allocation_policy(void)
{
    char *off[] = {"hub-off.example.net,apply=false"};
    char *both[] = {"hub-off.example.net,apply=false", "hub-on.example.net,weight=1"};
    char status[32], hub[128];

    /* The only linked hub does not apply the allocation policy: nothing to assign. */
    ok_int(register_with_hubs(off, 1, status, sizeof(status), hub, sizeof(hub)), 0);
    ok_str(status, "failed");
    /* With a second hub, every device goes there. */
    ok_int(register_with_hubs(both, 2, status, sizeof(status), hub, sizeof(hub)), 0);
    ok_str(status, "assigned");
    ok_str(hub, "hub-on.example.net");
end:;
}

int main(void)
{
    char dsn[600];
    char *hubs[] = {"hub-1.example.net"};
    struct store_put put = {.id = "dev-1",
                            .json = "{\"registrationId\":\"dev-1\",\"attestation\":{\"type\":"
                                    "\"symmetricKey\",\"symmetricKey\":{\"primaryKey\":\"" KEY
                                    "\",\"secondaryKey\":\"" KEY "\"}}}",
                            .attestation = "symmetricKey"};

    test_tmpdir(dir, sizeof(dir), "provision");
    snprintf(dsn, sizeof(dsn), "sqlite:%s/t.db", dir);
    if (store_open(dsn, &st, NULL) != DPS_OK || store_enrollment_put(st, &put, NULL, NULL) ||
        provision_new(SCOPE, hubs, 1, NULL, 0, &prov, NULL) != DPS_OK)
        return 1;
    subtest("assigned and operation", test_assigned_and_operation);
    subtest("denied is recorded", test_denied_is_recorded);
    subtest("bad input writes nothing", test_bad_input_writes_nothing);
    subtest("a registration's answer is text", test_result_accessors);
    subtest("attempt text", test_attempt_text);
    subtest("record text: assigned", test_record_assigned);
    subtest("record text: disabled", test_record_disabled);
    subtest("record text: failed", test_record_failed);
    subtest("record text: x509 group", test_record_x509);
    subtest("a hub with apply=false is chosen only when named", test_apply_allocation_policy);
    provision_free(prov);
    store_close(st);
    test_tmpdir_remove_sqlite(dir, "t.db");
    return t_done();
}
