/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the service API model: parsing with defaults and every
 * validation rule, JSON round trips, the secrets policy, certificate
 * encodings, registration states, queries and bulk operations; and of the
 * ISO 8601 time helpers the model's callers use. Certificates are made at
 * test time.
 */
#include "core/common.h"
#include "core/model.h"
#include "core/b64.h"
#include "core/pki.h"
#include "core/timeutil.h"
#include "../t.h"

#include <openssl/pem.h>

/* A string literal and its length, for the (buf, len) parsers. */
#define S(lit) lit, sizeof(lit) - 1

static char *root_pem, *root_pem_b64, *root_der_b64, *leaf_pem;

static int make_certs(void)
{
    struct pki_cert_spec root = {
        .kind = PKI_CERT_ROOT_CA, .subject = "O=dpsd,CN=Model Root", .days = 30, .pathlen = -1};
    struct pki_cert_spec leaf = {.kind = PKI_CERT_DEVICE, .subject = "CN=dev-1", .days = 30};
    EVP_PKEY *rk = NULL, *lk = NULL;
    X509 *rc = NULL, *lc = NULL;
    unsigned char *der = NULL;
    struct dps_error err;
    int n, ret = -1;

    if (pki_key_generate(PKI_KEY_P256, &rk, &err) || pki_key_generate(PKI_KEY_P256, &lk, &err) ||
        pki_cert_issue(&root, rk, NULL, NULL, &rc, &err) ||
        pki_cert_issue(&leaf, lk, rc, rk, &lc, &err)) {
        fprintf(stderr, "  make_certs: %s\n", err.msg);
        goto out;
    }
    root_pem = pki_cert_pem(rc);
    leaf_pem = pki_cert_pem(lc);
    n = i2d_X509(rc, &der);
    if (!root_pem || !leaf_pem || n <= 0 ||
        b64_encode((unsigned char *)root_pem, strlen(root_pem), &root_pem_b64) != DPS_OK ||
        b64_encode(der, (size_t)n, &root_der_b64) != DPS_OK)
        goto out;
    ret = 0;
out:
    OPENSSL_free(der);
    EVP_PKEY_free(rk);
    EVP_PKEY_free(lk);
    X509_free(rc);
    X509_free(lc);
    return ret;
}

/* A JSON string literal of s (quotes and escapes), malloc'd. */
static char *quoted(const char *s)
{
    json_t *j = json_string(s);
    char *q = json_dumps(j, JSON_ENCODE_ANY);

    json_decref(j);
    return q;
}

static char *group_json(const char *cert)
{
    char *q = quoted(cert), *s = NULL;
    size_t n = strlen(q) + 256;

    s = malloc(n);
    snprintf(s, n,
             "{\"enrollmentGroupId\":\"line-3\",\"attestation\":{\"type\":\"x509\",\"x509\":{"
             "\"signingCertificates\":{\"primary\":{\"certificate\":%s}}}}}",
             q);
    free(q);
    return s;
}

static void test_group_x509_round_trip(void)
{
    struct enrollment_group *g = NULL, *g2 = NULL;
    char *in = group_json(root_pem), *out = NULL, *out2 = NULL;
    struct dps_error err;
    json_t *j = NULL;

    ok(model_group_from_json(in, strlen(in), &g, &err) == DPS_OK);
    ok_str(g->enrollment_group_id, "line-3");
    ok_int(g->c.attestation.type, ATTESTATION_X509);
    ok_str(g->c.attestation.x509.signing_primary.info.subject_name, "CN=Model Root, O=dpsd");
    ok(g->c.attestation.x509.signing_primary.info.is_ca);
    ok(g->c.attestation.x509.signing_secondary.certificate == NULL);
    /* Defaults as Azure fills them in. */
    ok(g->c.enabled);
    ok(!g->c.iot_edge);
    ok(g->c.update_hub_assignment && g->c.migrate_device_data);
    ok_int(g->c.allocation_policy, ALLOCATION_DEFAULT);

    g->c.etag = strdup("\"e1\"");
    g->c.created = strdup("2022-07-05T21:27:16.8123235Z");
    g->c.updated = strdup("2022-07-05T21:27:16.8123235Z");
    j = model_group_to_json(g, 0);
    ok(j != NULL);
    ok(json_is_false(json_object_get(json_object_get(j, "capabilities"), "iotEdge")));
    ok_str(json_string_value(json_object_get(j, "provisioningStatus")), "enabled");
    ok(json_object_get(j, "allocationPolicy") == NULL);
    ok_str(json_string_value(json_object_get(
               json_object_get(
                   json_object_get(
                       json_object_get(json_object_get(json_object_get(j, "attestation"), "x509"),
                                       "signingCertificates"),
                       "primary"),
                   "info"),
               "subjectName")),
           "CN=Model Root, O=dpsd");
    out = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    /* Stored and read back: the same object, read-only fields kept. */
    ok(model_group_from_json_flags(out, strlen(out), MODEL_PARSE_STORED, &g2, &err) == DPS_OK);
    ok_str(g2->c.etag, "\"e1\"");
    json_decref(j);
    j = model_group_to_json(g2, 0);
    out2 = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    ok_str(out2, out);
end:
    json_decref(j);
    free(in);
    free(out);
    free(out2);
    enrollment_group_free(g);
    enrollment_group_free(g2);
}

/* PEM, base64 of PEM and base64 DER all give the same info. */
static void test_cert_encodings(void)
{
    const char *forms[] = {root_pem, root_pem_b64, root_der_b64};
    char thumb[3][65];
    struct enrollment_group *g = NULL;
    struct dps_error err;
    char *in = NULL;

    for (size_t i = 0; i < 3; i++) {
        in = group_json(forms[i]);
        ok(model_group_from_json(in, strlen(in), &g, &err) == DPS_OK);
        snprintf(thumb[i], sizeof(thumb[i]), "%s",
                 g->c.attestation.x509.signing_primary.info.sha256_thumbprint);
        ok_str(g->c.attestation.x509.signing_primary.certificate, forms[i]);
        enrollment_group_free(g);
        g = NULL;
        free(in);
        in = NULL;
    }
    ok(strlen(thumb[0]) == 64);
    ok_str(thumb[1], thumb[0]);
    ok_str(thumb[2], thumb[0]);
end:
    enrollment_group_free(g);
    free(in);
}

static void test_non_ca_signing_cert(void)
{
    struct enrollment_group *g = NULL;
    char *in = group_json(leaf_pem);
    struct dps_error err;

    ok(model_group_from_json(in, strlen(in), &g, &err) == DPS_ERR_INVAL);
    ok(g == NULL);
    ok(strncmp(err.msg,
               "'attestation.x509.signingCertificates.primary.certificate' is not a CA "
               "certificate",
               80) == 0);
end:
    free(in);
    enrollment_group_free(g);
}

static void test_individual_x509(void)
{
    char *q = quoted(leaf_pem), in[8192];
    struct enrollment *e = NULL;
    struct dps_error err;

    snprintf(in, sizeof(in),
             "{\"registrationId\":\"dev-1\",\"deviceId\":\"Device-One\",\"attestation\":{\"type\":"
             "\"x509\",\"x509\":{\"clientCertificates\":{\"primary\":{\"certificate\":%s}}}}}",
             q);
    ok(model_enrollment_from_json(in, strlen(in), &e, &err) == DPS_OK);
    ok_str(e->device_id, "Device-One");
    ok_str(e->c.attestation.x509.client_primary.info.subject_name, "CN=dev-1");
    ok(!e->c.attestation.x509.client_primary.info.is_ca);
end:
    free(q);
    enrollment_free(e);
}

static void test_symmetric_defaults_and_secrets(void)
{
    static const char in[] = "{\"registrationId\":\"sym-1\",\"attestation\":{\"type\":"
                             "\"symmetricKey\"},\"etag\":\"\\\"old\\\"\","
                             "\"createdDateTimeUtc\":\"2000-01-01T00:00:00Z\","
                             "\"registrationState\":{\"status\":\"assigned\"},\"someFutureField\":"
                             "{\"x\":[1,2,3]}}";
    static const char key[] = "MDEyMzQ1Njc4OWFiY2RlZg==";
    struct enrollment *e = NULL;
    struct dps_error err;
    json_t *j = NULL, *sk;
    char with_key[512];

    ok(model_enrollment_from_json(in, strlen(in), &e, &err) == DPS_OK);
    ok_str(e->device_id, "sym-1");
    ok(e->c.attestation.symmetric_key.primary_key != NULL);
    ok_int(strlen(e->c.attestation.symmetric_key.primary_key), 88);
    ok_int(strlen(e->c.attestation.symmetric_key.secondary_key), 88);
    ok(strcmp(e->c.attestation.symmetric_key.primary_key,
              e->c.attestation.symmetric_key.secondary_key) != 0);
    /* Read-only fields from the client are ignored. */
    ok(e->c.etag == NULL);
    ok(e->c.created == NULL);
    ok(e->registration_state == NULL);

    j = model_enrollment_to_json(e, 0);
    sk = json_object_get(json_object_get(j, "attestation"), "symmetricKey");
    ok(json_is_object(sk) && json_object_size(sk) == 0);
    ok(json_object_get(j, "someFutureField") == NULL);
    json_decref(j);
    j = model_enrollment_to_json(e, MODEL_WITH_SECRETS);
    sk = json_object_get(json_object_get(j, "attestation"), "symmetricKey");
    ok_str(json_string_value(json_object_get(sk, "primaryKey")),
           e->c.attestation.symmetric_key.primary_key);
    json_decref(j);
    j = model_attestation_to_json(&e->c.attestation, MODEL_WITH_SECRETS);
    ok_str(json_string_value(json_object_get(json_object_get(j, "symmetricKey"), "secondaryKey")),
           e->c.attestation.symmetric_key.secondary_key);
    enrollment_free(e);
    e = NULL;

    /* Keys given by the client are kept. */
    snprintf(with_key, sizeof(with_key),
             "{\"registrationId\":\"sym-1\",\"attestation\":{\"type\":\"symmetricKey\","
             "\"symmetricKey\":{\"primaryKey\":\"%s\",\"secondaryKey\":null}}}",
             key);
    ok(model_enrollment_from_json(with_key, strlen(with_key), &e, &err) == DPS_OK);
    ok_str(e->c.attestation.symmetric_key.primary_key, key);
    ok_int(strlen(e->c.attestation.symmetric_key.secondary_key), 88);
end:
    json_decref(j);
    enrollment_free(e);
}

static void test_all_fields(void)
{
    static const char in[] =
        "{\"enrollmentGroupId\":\"g-1\",\"attestation\":{\"type\":\"symmetricKey\"},"
        "\"capabilities\":{\"iotEdge\":true},\"iotHubHostName\":\"hub.example.net\","
        "\"initialTwin\":{\"tags\":{\"site\":\"a\"},\"properties\":{\"desired\":{\"i\":30}}},"
        "\"provisioningStatus\":\"disabled\",\"reprovisionPolicy\":{\"updateHubAssignment\":false,"
        "\"migrateDeviceData\":false},\"allocationPolicy\":\"custom\",\"iotHubs\":[\"a.net\","
        "\"b.net\"],\"customAllocationDefinition\":{\"webhookUrl\":\"https://f.example/api\","
        "\"apiVersion\":\"2021-10-01\"}}";
    struct enrollment_group *g = NULL;
    struct dps_error err;
    json_t *j = NULL;

    ok(model_group_from_json(in, strlen(in), &g, &err) == DPS_OK);
    ok(g->c.iot_edge);
    ok(!g->c.enabled);
    ok(!g->c.update_hub_assignment && !g->c.migrate_device_data);
    ok_int(g->c.allocation_policy, ALLOCATION_CUSTOM);
    ok_int(g->c.iot_hubs_count, 2);
    ok_str(g->c.iot_hubs[1], "b.net");
    ok_str(g->c.webhook_url, "https://f.example/api");
    j = model_group_to_json(g, 0);
    ok_str(json_string_value(json_object_get(j, "allocationPolicy")), "custom");
    ok_str(json_string_value(json_object_get(j, "provisioningStatus")), "disabled");
    ok(json_integer_value(json_object_get(
           json_object_get(json_object_get(json_object_get(j, "initialTwin"), "properties"),
                           "desired"),
           "i")) == 30);
    ok_str(json_string_value(
               json_object_get(json_object_get(j, "customAllocationDefinition"), "apiVersion")),
           "2021-10-01");
end:
    json_decref(j);
    enrollment_group_free(g);
}

struct bad_case {
    int group;
    const char *json;
    const char *message; /* prefix of the expected message */
};

static void test_validation_messages(void)
{
    static const struct bad_case cases[] = {
        {0, "[]", "an individual enrollment must be a json object"},
        {0, "{\"attestation\":{\"type\":\"symmetricKey\"}}", "'registrationId' is required"},
        {0, "{\"registrationId\":7,\"attestation\":{\"type\":\"symmetricKey\"}}",
         "'registrationId' must be a string"},
        {0, "{\"registrationId\":\"abA\",\"attestation\":{\"type\":\"symmetricKey\"}}",
         "'registrationId' is not valid: "},
        {0, "{\"registrationId\":\"a/b\",\"attestation\":{\"type\":\"symmetricKey\"}}",
         "'registrationId' is not valid: "},
        {1, "{\"enrollmentGroupId\":\"g-\\u00e9\",\"attestation\":{\"type\":\"symmetricKey\"}}",
         "'enrollmentGroupId' is not valid: "},
        {0, "{\"registrationId\":\"a\"}", "'attestation' is required"},
        {0, "{\"registrationId\":\"a\",\"attestation\":{}}", "'attestation.type' is required"},
        {0, "{\"registrationId\":\"a\",\"attestation\":{\"type\":\"magic\"}}",
         "'attestation.type' must be one of 'tpm', 'x509', 'symmetricKey'"},
        {0, "{\"registrationId\":\"a\",\"attestation\":{\"type\":\"none\"}}",
         "'attestation.type' 'none' cannot attest a device"},
        {1, "{\"enrollmentGroupId\":\"g\",\"attestation\":{\"type\":\"tpm\"}}",
         "'attestation.type' of an enrollment group must be 'x509' or 'symmetricKey'"},
        {0, "{\"registrationId\":\"a\",\"attestation\":{\"type\":\"tpm\",\"tpm\":{}}}",
         "'attestation.tpm.endorsementKey' is required"},
        {0,
         "{\"registrationId\":\"a\",\"attestation\":{\"type\":\"tpm\",\"tpm\":{"
         "\"endorsementKey\":\"!!\"}}}",
         "'attestation.tpm.endorsementKey' is not valid base64"},
        {0, "{\"registrationId\":\"a\",\"attestation\":{\"type\":\"x509\"}}",
         "'attestation.x509' is required when 'attestation.type' is 'x509'"},
        {0, "{\"registrationId\":\"a\",\"attestation\":{\"type\":\"x509\",\"x509\":{}}}",
         "'attestation.x509.clientCertificates' is required"},
        {0,
         "{\"registrationId\":\"a\",\"attestation\":{\"type\":\"x509\",\"x509\":{"
         "\"caReferences\":{\"primary\":\"ca\"}}}}",
         "'attestation.x509' of an individual enrollment takes 'clientCertificates'"},
        {0,
         "{\"registrationId\":\"a\",\"attestation\":{\"type\":\"x509\",\"x509\":{"
         "\"clientCertificates\":{}}}}",
         "'attestation.x509.clientCertificates.primary' is required"},
        {0,
         "{\"registrationId\":\"a\",\"attestation\":{\"type\":\"x509\",\"x509\":{"
         "\"clientCertificates\":{\"primary\":{\"certificate\":\"bm90IGEgY2VydA==\"}}}}}",
         "'attestation.x509.clientCertificates.primary.certificate' is not a certificate: "},
        {1, "{\"enrollmentGroupId\":\"g\",\"attestation\":{\"type\":\"x509\",\"x509\":{}}}",
         "'attestation.x509' needs 'signingCertificates' or 'caReferences'"},
        {1,
         "{\"enrollmentGroupId\":\"g\",\"attestation\":{\"type\":\"x509\",\"x509\":{"
         "\"clientCertificates\":{}}}}",
         "'attestation.x509.clientCertificates' is for individual enrollments"},
        {1,
         "{\"enrollmentGroupId\":\"g\",\"attestation\":{\"type\":\"x509\",\"x509\":{"
         "\"caReferences\":{\"secondary\":\"x\"}}}}",
         "'attestation.x509.caReferences.primary' is required"},
        {0,
         "{\"registrationId\":\"a\",\"attestation\":{\"type\":\"symmetricKey\","
         "\"symmetricKey\":{\"primaryKey\":\"YWJj\"}}}",
         "'attestation.symmetricKey.primaryKey' decodes to 3 bytes: keys are 16 to 64 bytes"},
        {0,
         "{\"registrationId\":\"a\",\"attestation\":{\"type\":\"symmetricKey\","
         "\"symmetricKey\":{\"secondaryKey\":\"a b\"}}}",
         "'attestation.symmetricKey.secondaryKey' is not valid base64"},
        {0,
         "{\"registrationId\":\"a\",\"deviceId\":\"a/b\",\"attestation\":{\"type\":"
         "\"symmetricKey\"}}",
         "'deviceId' has a character not allowed at position 2"},
        {0,
         "{\"registrationId\":\"a\",\"attestation\":{\"type\":\"symmetricKey\"},"
         "\"provisioningStatus\":\"on\"}",
         "'provisioningStatus' must be one of 'enabled', 'disabled'"},
        {0,
         "{\"registrationId\":\"a\",\"attestation\":{\"type\":\"symmetricKey\"},"
         "\"allocationPolicy\":\"random\"}",
         "'allocationPolicy' must be one of 'hashed', 'geoLatency', 'static', 'custom'"},
        {0,
         "{\"registrationId\":\"a\",\"attestation\":{\"type\":\"symmetricKey\"},"
         "\"capabilities\":{\"iotEdge\":\"yes\"}}",
         "'capabilities.iotEdge' must be true or false"},
        {0,
         "{\"registrationId\":\"a\",\"attestation\":{\"type\":\"symmetricKey\"},"
         "\"reprovisionPolicy\":{\"migrateDeviceData\":1}}",
         "'reprovisionPolicy.migrateDeviceData' must be true or false"},
        {0,
         "{\"registrationId\":\"a\",\"attestation\":{\"type\":\"symmetricKey\"},"
         "\"initialTwin\":[]}",
         "'initialTwin' must be an object"},
        {0,
         "{\"registrationId\":\"a\",\"attestation\":{\"type\":\"symmetricKey\"},"
         "\"initialTwin\":{\"properties\":{\"desired\":5}}}",
         "'initialTwin.properties.desired' must be an object"},
        {0,
         "{\"registrationId\":\"a\",\"attestation\":{\"type\":\"symmetricKey\"},"
         "\"iotHubs\":\"a.net\"}",
         "'iotHubs' must be an array of host names"},
        {0,
         "{\"registrationId\":\"a\",\"attestation\":{\"type\":\"symmetricKey\"},"
         "\"iotHubs\":[\"a.net\",3]}",
         "'iotHubs[1]' must be a host name of 1 to 255 characters"},
        {0,
         "{\"registrationId\":\"a\",\"attestation\":{\"type\":\"symmetricKey\"},"
         "\"customAllocationDefinition\":{\"webhookUrl\":\"https://x\"}}",
         "'customAllocationDefinition.apiVersion' is required"},
        {0,
         "{\"registrationId\":\"a\",\"attestation\":{\"type\":\"symmetricKey\"},"
         "\"customAllocationDefinition\":{\"webhookUrl\":\"ftp://x\",\"apiVersion\":\"1\"}}",
         "'customAllocationDefinition.webhookUrl' must be an http(s) url"},
        {0,
         "{\"registrationId\":\"a\",\"attestation\":{\"type\":\"symmetricKey\"},"
         "\"allocationPolicy\":\"custom\"}",
         "'customAllocationDefinition' is required when 'allocationPolicy' is 'custom'"},
        {0,
         "{\"registrationId\":\"a\",\"registrationId\":\"b\",\"attestation\":{\"type\":"
         "\"symmetricKey\"}}",
         "malformed json at line 1"},
        {0, "{\"registrationId\":\"a\"", "malformed json at line 1"},
    };
    struct dps_error err;

    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        const struct bad_case *c = &cases[i];
        struct enrollment *e = NULL;
        struct enrollment_group *g = NULL;
        int rc = c->group ? model_group_from_json(c->json, strlen(c->json), &g, &err)
                          : model_enrollment_from_json(c->json, strlen(c->json), &e, &err);

        if (rc != DPS_ERR_INVAL || strncmp(err.msg, c->message, strlen(c->message)) != 0)
            fprintf(stderr, "  case %zu: rc %d, got '%s'\n    expected '%s...'\n", i, rc,
                    rc ? err.msg : "", c->message);
        ok(rc == DPS_ERR_INVAL);
        ok(e == NULL && g == NULL);
        ok(strncmp(err.msg, c->message, strlen(c->message)) == 0);
    }
end:;
}

static void test_bounds(void)
{
    char bomb[200];
    struct enrollment *e = NULL;
    struct dps_error err;
    char *big = NULL;
    size_t i;

    /* 40 levels of arrays inside a string-valued unknown field. */
    i = (size_t)snprintf(bomb, sizeof(bomb), "{\"x\":");
    for (int d = 0; d < 40; d++)
        bomb[i++] = '[';
    for (int d = 0; d < 40; d++)
        bomb[i++] = ']';
    bomb[i++] = '}';
    bomb[i] = '\0';
    ok(model_enrollment_from_json(bomb, i, &e, &err) == DPS_ERR_INVAL);
    ok_str(err.msg, "json nests deeper than 32 levels");
    /* Brackets inside strings do not count. */
    ok(model_enrollment_from_json(S("{\"registrationId\":\"a\",\"x\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[["
                                    "[[[[[[[[[[[[[\\\"[[[\",\"attestation\":{\"type\":"
                                    "\"symmetricKey\"}}"),
                                  &e, &err) == DPS_OK);
    enrollment_free(e);
    e = NULL;
    big = malloc(MODEL_JSON_MAX + 2);
    ok(big != NULL);
    memset(big, ' ', MODEL_JSON_MAX + 1);
    ok(model_enrollment_from_json(big, MODEL_JSON_MAX + 1, &e, &err) == DPS_ERR_TOO_LARGE);
end:
    free(big);
    enrollment_free(e);
}

static void test_registration_state(void)
{
    static const char in[] =
        "{\"registrationId\":\"dev-1\",\"createdDateTimeUtc\":\"2022-08-31T22:02:50.5163352Z\","
        "\"assignedHub\":\"hub.net\",\"deviceId\":\"dev-1\",\"status\":\"assigned\",\"substatus\":"
        "\"initialAssignment\",\"lastUpdatedDateTimeUtc\":\"2022-08-31T22:02:50.7370676Z\","
        "\"etag\":\"IjY5\",\"payload\":{\"a\":1}}";
    struct registration_state *r = NULL;
    struct dps_error err;
    json_t *j = NULL, *k = NULL;

    ok(model_registration_state_from_json(in, strlen(in), &r, &err) == DPS_OK);
    ok_int(r->status, REGISTRATION_ASSIGNED);
    ok_int(r->substatus, SUBSTATUS_INITIAL_ASSIGNMENT);
    j = model_registration_state_to_json(r);
    k = json_loads(in, 0, NULL);
    ok(json_equal(j, k));
    registration_state_free(r);
    r = NULL;
    ok(model_registration_state_from_json(S("{\"registrationId\":\"d\",\"status\":\"failed\","
                                            "\"errorCode\":401002,\"errorMessage\":\"no\"}"),
                                          &r, &err) == DPS_OK);
    ok_int(r->error_code, 401002);
    registration_state_free(r);
    r = NULL;
    ok(model_registration_state_from_json("{\"registrationId\":\"d\"}", 22, &r, &err) ==
       DPS_ERR_INVAL);
    ok_str(err.msg, "'status' is required");
end:
    json_decref(j);
    json_decref(k);
    registration_state_free(r);
}

static void test_query(void)
{
    struct dps_error err;
    char *q = NULL;

    ok(model_query_from_json("{\"query\":\"SELECT * FROM enrollments\"}", 37, &q, &err) == DPS_OK);
    ok_str(q, "SELECT * FROM enrollments");
    free(q);
    q = NULL;
    ok(model_query_from_json(" \r\n", 3, &q, &err) == DPS_OK);
    ok_str(q, "*");
    free(q);
    q = NULL;
    ok(model_query_from_json("{}", 2, &q, &err) == DPS_ERR_INVAL);
    ok_str(err.msg, "'query' is required");
    ok(model_query_from_json("{\"query\":1}", 11, &q, &err) == DPS_ERR_INVAL);
    ok_str(err.msg, "'query' must be a string");
end:
    free(q);
}

static void test_bulk(void)
{
    static const char in[] =
        "{\"mode\":\"UPDATEIFMATCHETAG\",\"enrollments\":[{\"registrationId\":\"a\",\"etag\":"
        "\"\\\"1\\\"\",\"attestation\":{\"type\":\"symmetricKey\"}},{\"registrationId\":\"B/\","
        "\"attestation\":{\"type\":\"symmetricKey\"}}]}";
    struct bulk_op *op = NULL;
    struct dps_error err;
    json_t *j = NULL, *e;
    char many[2048];
    size_t n;

    ok(model_bulk_from_json(in, strlen(in), false, 0, &op, &err) == DPS_OK);
    ok_int(op->mode, BULK_UPDATE_IF_MATCH_ETAG);
    ok_int(op->count, 2);
    ok(op->items[0].enrollment != NULL);
    ok_str(op->items[0].etag, "\"1\"");
    ok_int(op->items[0].error_code, 0);
    ok(op->items[1].enrollment == NULL);
    ok_int(op->items[1].error_code, 400000);
    ok(strncmp(op->items[1].error_status, "'registrationId' is not valid", 29) == 0);
    j = model_bulk_result_to_json(op);
    ok(json_is_false(json_object_get(j, "isSuccessful")));
    e = json_array_get(json_object_get(j, "errors"), 0);
    ok_str(json_string_value(json_object_get(e, "registrationId")), "B/");
    ok_int(json_integer_value(json_object_get(e, "errorCode")), 400000);
    ok_int(json_array_size(json_object_get(j, "errors")), 1);
    json_decref(j);
    j = NULL;
    model_bulk_free(op);
    op = NULL;

    ok(model_bulk_from_json(S("{\"mode\":\"delete\",\"enrollmentGroups\":[{\"enrollmentGroupId\":"
                              "\"g\"}]}"),
                            true, 0, &op, &err) == DPS_OK);
    ok_int(op->mode, BULK_DELETE);
    ok_str(op->items[0].id, "g");
    j = model_bulk_result_to_json(op);
    ok(json_is_true(json_object_get(j, "isSuccessful")));
    ok_int(json_array_size(json_object_get(j, "errors")), 0);
    model_bulk_free(op);
    op = NULL;

    n = (size_t)snprintf(many, sizeof(many), "{\"mode\":\"create\",\"enrollments\":[");
    for (int i = 0; i < 11; i++)
        n += (size_t)snprintf(many + n, sizeof(many) - n, "%s{\"registrationId\":\"d%d\"}",
                              i ? "," : "", i);
    n += (size_t)snprintf(many + n, sizeof(many) - n, "]}");
    ok(model_bulk_from_json(many, n, false, 0, &op, &err) == DPS_ERR_INVAL);
    ok_str(err.msg, "'enrollments' has 11 items: at most 10 per operation");
    ok(model_bulk_from_json("{\"mode\":\"merge\",\"enrollments\":[{}]}", 35, false, 0, &op, &err) ==
       DPS_ERR_INVAL);
    ok(strncmp(err.msg, "'mode' must be one of", 21) == 0);
    ok(model_bulk_from_json("{\"mode\":\"create\"}", 17, false, 0, &op, &err) == DPS_ERR_INVAL);
    ok_str(err.msg, "'enrollments' must be a non-empty array");
    ok(op == NULL);
end:
    json_decref(j);
    model_bulk_free(op);
}

static void test_time(void)
{
    struct timespec ts = {.tv_sec = 1661983370, .tv_nsec = 516335299}, back;
    char buf[TIMEUTIL_ISO_SIZE], sec[TIMEUTIL_ISO_SECONDS_SIZE];

    ok(timeutil_format(&ts, buf) == 0);
    ok_str(buf, "2022-08-31T22:02:50.5163352Z");
    ok(timeutil_parse(buf, strlen(buf), &back) == 0);
    ok_int(back.tv_sec, ts.tv_sec);
    ok_int(back.tv_nsec, 516335200);
    ok(timeutil_format_seconds(1510662858, sec) == 0);
    ok_str(sec, "2017-11-14T12:34:18Z");
    ok(timeutil_parse("2017-11-14T13:34:18+01:00", 25, &back) == 0);
    ok_int(back.tv_sec, 1510662858);
    ok_int(back.tv_nsec, 0);
    ok(timeutil_parse("2017-11-14T12:34:18", 19, &back) == -1);
    ok(timeutil_parse("2017-02-29T12:34:18Z", 20, &back) == -1);
    ok(timeutil_parse("2017-11-14T12:34:18.Z", 21, &back) == -1);
    ok(timeutil_parse("2017-11-14T12:34:18Zx", 21, &back) == -1);
end:;
}

int main(void)
{
    if (make_certs() != 0) {
        printf("0 passed, 1 failed\n");
        return 1;
    }
    subtest("group with an x509 signing certificate, round trip", test_group_x509_round_trip);
    subtest("certificate encodings give the same info", test_cert_encodings);
    subtest("non-CA signing certificate refused", test_non_ca_signing_cert);
    subtest("individual x509 enrollment", test_individual_x509);
    subtest("symmetric key defaults and secrets policy", test_symmetric_defaults_and_secrets);
    subtest("every field parsed and written", test_all_fields);
    subtest("validation messages name the field", test_validation_messages);
    subtest("size and depth bounds", test_bounds);
    subtest("registration state", test_registration_state);
    subtest("query specification", test_query);
    subtest("bulk operations", test_bulk);
    subtest("iso 8601 times", test_time);
    free(root_pem);
    free(root_pem_b64);
    free(root_der_b64);
    free(leaf_pem);
    return t_done();
}
