/* SPDX-License-Identifier: MIT */
/*
 * The registration service on a temporary SQLite store: a symmetric-key
 * registration is assigned, recorded and answerable by operation id; a wrong
 * key is refused with 401002 and recorded as an attempt; bad input writes
 * nothing; a linked hub with apply=false receives no device of its own accord.
 */
#include "core/common.h"

#include <unistd.h>

#include "../t.h"
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

static int do_register(const char *id, const char *tok, const char *body,
                       struct provision_result *res)
{
    struct provision_request req = {
        .id_scope = SCOPE,
        .registration_id = id,
        .sas_token = tok,
        .sas_len = tok ? strlen(tok) : 0,
        .body = body,
        .body_len = strlen(body),
        .tracking_id = "00000000-0000-4000-8000-000000000001",
        .store = st,
    };
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
    json_t *attempt = NULL, *state = NULL;
    const char *opid;

    ok(do_register("dev-1", tok, "{\"registrationId\":\"dev-1\",\"payload\":{\"a\":1}}", &res) ==
       DPS_OK);
    ok_int(res.status, 200);
    ok_str(json_string_value(json_object_get(res.body, "status")), "assigned");
    opid = json_string_value(json_object_get(res.body, "operationId"));
    ok(opid != NULL);
    /* the reply's text, composed from the state rendered once, is the body's own rendering */
    body = json_dumps(res.body, JSON_COMPACT);
    ok(body != NULL && res.text != NULL);
    ok_str(res.text, body);
    ok(res.text_len == strlen(body));
    /* the attempt spliced the same state: compact JSON, the reply's state without store fields */
    ok(store_attempt_list(st, "dev-1", false, 0, 1, &l, NULL) == DPS_OK && l.n == 1);
    attempt = json_loads(l.items[0].json, 0, NULL);
    ok(attempt != NULL);
    again = json_dumps(attempt, JSON_COMPACT);
    ok_str(again, l.items[0].json);
    state = json_deep_copy(json_object_get(res.body, "registrationState"));
    json_object_del(state, "createdDateTimeUtc");
    json_object_del(state, "lastUpdatedDateTimeUtc");
    json_object_del(state, "etag");
    ok(json_equal(state, json_object_get(attempt, "registrationState")));
    ok(provision_operation(prov, st, SCOPE, "dev-1", opid, &op) == DPS_OK);
    ok_int(op.status, 200);
    ok_str(json_string_value(
               json_object_get(json_object_get(op.body, "registrationState"), "assignedHub")),
           "hub-1.example.net");
    provision_result_release(&op);
    ok(provision_operation(prov, st, SCOPE, "dev-1", "1.nope", &op) == DPS_OK);
    ok_int(op.status, 404);
    ok_int(n_attempts("dev-1"), 1);
end:
    provision_result_release(&res);
    provision_result_release(&op);
    store_attempt_list_release(&l);
    json_decref(attempt);
    json_decref(state);
    free(body);
    free(again);
    free(tok);
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
    struct provision_request req = {
        .id_scope = SCOPE,
        .registration_id = "dev-1",
        .sas_token = tok,
        .sas_len = tok ? strlen(tok) : 0,
        .body = "{\"registrationId\":\"dev-1\",\"payload\":{\"b\":[1,\"\\u00e9\\n\"]}}",
        .api_version = "2021-06-01",
        .tracking_id = "00000000-0000-4000-8000-000000000003",
        .store = st,
    };
    json_t *a = NULL, *t;

    req.body_len = strlen(req.body);
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

/* Registers dev-1 on a service linked to hubs; its status and assigned hub go to the out-params. */
static int register_with_hubs(char **hubs, size_t n, char *status, size_t slen, char *hub,
                              size_t hlen)
{
    struct provision *p = NULL;
    struct provision_result res = {0};
    char *tok = token("dev-1", KEY);
    struct provision_request req = {
        .id_scope = SCOPE,
        .registration_id = "dev-1",
        .sas_token = tok,
        .sas_len = tok ? strlen(tok) : 0,
        .body = "",
        .tracking_id = "00000000-0000-4000-8000-000000000002",
        .store = st,
    };
    const json_t *state;
    int rc = -1;

    if (provision_new(SCOPE, hubs, n, NULL, 0, &p, NULL) != DPS_OK ||
        provision_register(p, &req, &res) != DPS_OK || res.status != 200)
        goto out;
    state = json_object_get(res.body, "registrationState");
    snprintf(status, slen, "%s", json_string_value(json_object_get(res.body, "status")));
    snprintf(hub, hlen, "%s",
             json_string_value(json_object_get(state, "assignedHub"))
                 ? json_string_value(json_object_get(state, "assignedHub"))
                 : "");
    rc = 0;
out:
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
    subtest("attempt text", test_attempt_text);
    subtest("a hub with apply=false is chosen only when named", test_apply_allocation_policy);
    provision_free(prov);
    store_close(st);
    test_tmpdir_remove_sqlite(dir, "t.db");
    return t_done();
}
