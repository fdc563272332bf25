/* SPDX-License-Identifier: MIT */
/*
 * JSON <-> C structs for the service API. Every field a client sends is
 * checked here, with a message naming the field by its JSON path; defaults
 * and computed values (certificate info, generated keys) are filled in here
 * so that the store and the answers see complete objects.
 */
#include "core/common.h"
#include "core/model.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "core/b64.h"
#include "core/regid.h"

#define PATH_MAX_LEN 128

/*
 * The wire names get_enum() matches, indexed by the enums of core/allocate.h;
 * the answers use allocation_policy_name() and registration_substatus_name().
 */
static const char *const allocation_names[] = {
    [ALLOCATION_DEFAULT] = NULL,
    [ALLOCATION_HASHED] = "hashed",
    [ALLOCATION_GEO_LATENCY] = "geoLatency",
    [ALLOCATION_STATIC] = "static",
    [ALLOCATION_CUSTOM] = "custom",
};

static const char *const status_names[] = {
    [REGISTRATION_UNASSIGNED] = "unassigned", [REGISTRATION_ASSIGNING] = "assigning",
    [REGISTRATION_ASSIGNED] = "assigned",     [REGISTRATION_FAILED] = "failed",
    [REGISTRATION_DISABLED] = "disabled",
};

static const char *const substatus_names[] = {
    [SUBSTATUS_NONE] = NULL,
    [SUBSTATUS_INITIAL_ASSIGNMENT] = "initialAssignment",
    [SUBSTATUS_DEVICE_DATA_MIGRATED] = "deviceDataMigrated",
    [SUBSTATUS_DEVICE_DATA_RESET] = "deviceDataReset",
    [SUBSTATUS_REPROVISIONED_TO_INITIAL_ASSIGNMENT] = "reprovisionedToInitialAssignment",
};

const char *model_registration_status_name(enum registration_status s)
{
    return (size_t)s < ARRAY_SIZE(status_names) ? status_names[s] : "unassigned";
}

_Static_assert(ARRAY_SIZE(allocation_names) == ALLOCATION_CUSTOM + 1,
               "allocation_names covers enum allocation_policy");
_Static_assert(ARRAY_SIZE(substatus_names) == SUBSTATUS_REPROVISIONED_TO_INITIAL_ASSIGNMENT + 1,
               "substatus_names covers enum registration_substatus");

static int nomem(struct dps_error *err)
{
    return dps_error_set(err, DPS_ERR_NOMEM, "out of memory");
}

static void free_secret(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

/* ---- JSON text: bounds before jansson sees it ---- */

/*
 * Nesting depth of JSON text, strings skipped. Checked before parsing, so a
 * depth bomb never reaches jansson's recursive parser.
 */
static int json_depth_exceeds(const char *buf, size_t len, int max)
{
    int depth = 0;
    bool in_string = false;

    for (size_t i = 0; i < len; i++) {
        char c = buf[i];

        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            if (++depth > max)
                return 1;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return 0;
}

int model_json_load(const char *buf, size_t len, json_t **out, struct dps_error *err)
{
    json_error_t jerr;
    json_t *root;

    if (len > MODEL_JSON_MAX)
        return dps_error_set(err, DPS_ERR_TOO_LARGE, "request body is larger than %d bytes",
                             MODEL_JSON_MAX);
    if (json_depth_exceeds(buf, len, MODEL_JSON_DEPTH_MAX))
        return dps_error_set(err, DPS_ERR_INVAL, "json nests deeper than %d levels",
                             MODEL_JSON_DEPTH_MAX);
    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return dps_error_set(err, DPS_ERR_INVAL, "malformed json at line %d column %d: %s",
                             jerr.line, jerr.column, jerr.text);
    *out = root;
    return DPS_OK;
}

/* ---- field readers: each names the field by its path ---- */

/* The member key of obj, NULL when absent or null. */
static json_t *member(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);

    return v && !json_is_null(v) ? v : NULL;
}

/* Field paths are for messages only: a path longer than the buffer is cut. */
static void join(char *buf, const char *prefix, const char *key)
{
    int n;

    if (prefix && *prefix)
        n = snprintf(buf, PATH_MAX_LEN, "%s.%s", prefix, key);
    else
        n = snprintf(buf, PATH_MAX_LEN, "%s", key);
    if (n < 0)
        buf[0] = '\0';
}

/*
 * Reads an optional string member into *out (left NULL when absent).
 * Strings are bounded by max bytes and may not hold NUL bytes.
 */
static int get_string(json_t *obj, const char *prefix, const char *key, size_t max, bool required,
                      char **out, struct dps_error *err)
{
    char path[PATH_MAX_LEN];
    json_t *v = member(obj, key);
    size_t n;

    join(path, prefix, key);
    if (!v) {
        if (required)
            return dps_error_set(err, DPS_ERR_INVAL, "'%s' is required", path);
        return DPS_OK;
    }
    if (!json_is_string(v))
        return dps_error_set(err, DPS_ERR_INVAL, "'%s' must be a string", path);
    n = json_string_length(v);
    if (n == 0 && required)
        return dps_error_set(err, DPS_ERR_INVAL, "'%s' must not be empty", path);
    if (n > max)
        return dps_error_set(err, DPS_ERR_INVAL, "'%s' is longer than %zu characters", path, max);
    if (strlen(json_string_value(v)) != n)
        return dps_error_set(err, DPS_ERR_INVAL, "'%s' holds a NUL character", path);
    *out = strdup(json_string_value(v));
    return *out ? DPS_OK : nomem(err);
}

static int get_bool(json_t *obj, const char *prefix, const char *key, bool *out,
                    struct dps_error *err)
{
    char path[PATH_MAX_LEN];
    json_t *v = member(obj, key);

    if (!v)
        return DPS_OK;
    join(path, prefix, key);
    if (!json_is_boolean(v))
        return dps_error_set(err, DPS_ERR_INVAL, "'%s' must be true or false", path);
    *out = json_is_true(v);
    return DPS_OK;
}

/* An optional object member; *out borrowed, NULL when absent. */
static int get_object(json_t *obj, const char *prefix, const char *key, json_t **out,
                      struct dps_error *err)
{
    char path[PATH_MAX_LEN];
    json_t *v = member(obj, key);

    *out = NULL;
    if (!v)
        return DPS_OK;
    join(path, prefix, key);
    if (!json_is_object(v))
        return dps_error_set(err, DPS_ERR_INVAL, "'%s' must be an object", path);
    *out = v;
    return DPS_OK;
}

/* Reads an enum member spelled exactly as one of names[]; *out untouched when absent. */
static int get_enum(json_t *obj, const char *key, const char *const *names, size_t count,
                    const char *choices, int *out, struct dps_error *err)
{
    json_t *v = member(obj, key);

    if (!v)
        return DPS_OK;
    if (json_is_string(v)) {
        for (size_t i = 0; i < count; i++) {
            if (names[i] && strcmp(names[i], json_string_value(v)) == 0) {
                *out = (int)i;
                return DPS_OK;
            }
        }
    }
    return dps_error_set(err, DPS_ERR_INVAL, "'%s' must be one of %s", key, choices);
}

/* ---- checks ---- */

static int check_id(const char *field, enum regid_kind kind, const char *id, int flags,
                    struct dps_error *err)
{
    struct dps_error e;

    if (regid_check(kind, id, strlen(id),
                    flags & MODEL_PARSE_ALLOW_UPPER_IDS ? REGID_ALLOW_UPPER : 0, &e) != DPS_OK)
        return dps_error_set(err, DPS_ERR_INVAL, "'%s' is not valid: %s", field, e.msg);
    return DPS_OK;
}

/* IoT Hub device ids: up to 128 ASCII characters, letters, digits and -.%_*?!(),:=@$' */
static int check_device_id(const char *id, struct dps_error *err)
{
    static const char extra[] = "-.%_*?!(),:=@$'";
    size_t n = strlen(id);

    if (n == 0 || n > 128)
        return dps_error_set(err, DPS_ERR_INVAL, "'deviceId' must be 1 to 128 characters");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (c && strchr(extra, c))))
            return dps_error_set(err, DPS_ERR_INVAL,
                                 "'deviceId' has a character not allowed at position %zu: device "
                                 "ids are letters, digits and %s",
                                 i + 1, extra);
    }
    return DPS_OK;
}

static int check_key(const char *path, const char *key, struct dps_error *err)
{
    size_t n = 0;

    if (!b64_is_valid(key, strlen(key), 0, &n))
        return dps_error_set(err, DPS_ERR_INVAL, "'%s' is not valid base64", path);
    if (n < 16 || n > 64)
        return dps_error_set(err, DPS_ERR_INVAL,
                             "'%s' decodes to %zu bytes: keys are 16 to 64 bytes", path, n);
    return DPS_OK;
}

int model_generate_key(char **out, struct dps_error *err)
{
    unsigned char raw[MODEL_KEY_BYTES];
    int rc;

    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return dps_error_set(err, DPS_ERR_INTERNAL, "no random bytes for a symmetric key");
    rc = b64_encode(raw, sizeof(raw), out);
    OPENSSL_cleanse(raw, sizeof(raw));
    return rc == DPS_OK ? DPS_OK : nomem(err);
}

/* ---- attestation ---- */

static void cert_release(struct model_cert *c)
{
    free(c->certificate);
    c->certificate = NULL;
}

static void attestation_release(struct attestation *a)
{
    free(a->tpm.endorsement_key);
    free(a->tpm.storage_root_key);
    cert_release(&a->x509.client_primary);
    cert_release(&a->x509.client_secondary);
    cert_release(&a->x509.signing_primary);
    cert_release(&a->x509.signing_secondary);
    free(a->x509.ca_ref_primary);
    free(a->x509.ca_ref_secondary);
    free_secret(a->symmetric_key.primary_key);
    free_secret(a->symmetric_key.secondary_key);
    memset(a, 0, sizeof(*a));
}

/* One X509CertificateWithInfo at prefix (e.g. "attestation.x509.signingCertificates.primary"). */
static int parse_cert(json_t *parent, const char *prefix, const char *key, bool required,
                      bool must_be_ca, struct model_cert *out, struct dps_error *err)
{
    char path[PATH_MAX_LEN], cpath[PATH_MAX_LEN];
    struct dps_error e;
    json_t *obj;
    int rc;

    join(path, prefix, key);
    rc = get_object(parent, prefix, key, &obj, err);
    if (rc != DPS_OK)
        return rc;
    if (!obj) {
        if (required)
            return dps_error_set(err, DPS_ERR_INVAL, "'%s' is required", path);
        return DPS_OK;
    }
    rc = get_string(obj, path, "certificate", MODEL_CERT_MAX, true, &out->certificate, err);
    if (rc != DPS_OK)
        return rc;
    join(cpath, path, "certificate");
    rc = x509_info_parse(out->certificate, strlen(out->certificate), &out->info, NULL, &e);
    if (rc == DPS_ERR_NOMEM)
        return nomem(err);
    if (rc != DPS_OK)
        return dps_error_set(err, DPS_ERR_INVAL, "'%s' is not a certificate: %s", cpath, e.msg);
    if (must_be_ca && !out->info.is_ca)
        return dps_error_set(err, DPS_ERR_INVAL,
                             "'%s' is not a CA certificate (basicConstraints CA:TRUE is "
                             "required of a signing certificate)",
                             cpath);
    return DPS_OK;
}

/* A {primary, secondary} pair of certificates under attestation.x509. */
static int parse_cert_pair(json_t *x509, const char *name, bool must_be_ca,
                           struct model_cert *primary, struct model_cert *secondary,
                           struct dps_error *err)
{
    char path[PATH_MAX_LEN];
    json_t *pair;
    int rc;

    join(path, "attestation.x509", name);
    rc = get_object(x509, "attestation.x509", name, &pair, err);
    if (rc != DPS_OK || !pair)
        return rc;
    rc = parse_cert(pair, path, "primary", true, must_be_ca, primary, err);
    if (rc == DPS_OK)
        rc = parse_cert(pair, path, "secondary", false, must_be_ca, secondary, err);
    return rc;
}

static int parse_x509(json_t *x509, bool group, struct attestation *a, struct dps_error *err)
{
    json_t *client = member(x509, "clientCertificates"),
           *signing = member(x509, "signingCertificates");
    json_t *refs;
    int rc;

    if (group) {
        rc = get_object(x509, "attestation.x509", "caReferences", &refs, err);
        if (rc != DPS_OK)
            return rc;
        if (client)
            return dps_error_set(err, DPS_ERR_INVAL,
                                 "'attestation.x509.clientCertificates' is for individual "
                                 "enrollments: a group takes 'signingCertificates' or "
                                 "'caReferences'");
        if (!signing && !refs)
            return dps_error_set(err, DPS_ERR_INVAL,
                                 "'attestation.x509' needs 'signingCertificates' or "
                                 "'caReferences'");
        if (signing && refs)
            return dps_error_set(err, DPS_ERR_INVAL,
                                 "'attestation.x509' has both 'signingCertificates' and "
                                 "'caReferences': give one");
        if (refs) {
            rc = get_string(refs, "attestation.x509.caReferences", "primary", MODEL_STRING_MAX,
                            true, &a->x509.ca_ref_primary, err);
            if (rc == DPS_OK)
                rc = get_string(refs, "attestation.x509.caReferences", "secondary",
                                MODEL_STRING_MAX, false, &a->x509.ca_ref_secondary, err);
            return rc;
        }
        return parse_cert_pair(x509, "signingCertificates", true, &a->x509.signing_primary,
                               &a->x509.signing_secondary, err);
    }
    if (signing || member(x509, "caReferences"))
        return dps_error_set(err, DPS_ERR_INVAL,
                             "'attestation.x509' of an individual enrollment takes "
                             "'clientCertificates', not signing certificates or CA references");
    if (!client)
        return dps_error_set(err, DPS_ERR_INVAL,
                             "'attestation.x509.clientCertificates' is required");
    return parse_cert_pair(x509, "clientCertificates", false, &a->x509.client_primary,
                           &a->x509.client_secondary, err);
}

static int parse_symmetric_key(json_t *sk, struct attestation *a, struct dps_error *err)
{
    static const char prefix[] = "attestation.symmetricKey";
    int rc;

    if (sk) {
        rc = get_string(sk, prefix, "primaryKey", MODEL_STRING_MAX, false,
                        &a->symmetric_key.primary_key, err);
        if (rc == DPS_OK)
            rc = get_string(sk, prefix, "secondaryKey", MODEL_STRING_MAX, false,
                            &a->symmetric_key.secondary_key, err);
        if (rc != DPS_OK)
            return rc;
    }
    if (a->symmetric_key.primary_key &&
        (rc = check_key("attestation.symmetricKey.primaryKey", a->symmetric_key.primary_key,
                        err)) != DPS_OK)
        return rc;
    if (a->symmetric_key.secondary_key &&
        (rc = check_key("attestation.symmetricKey.secondaryKey", a->symmetric_key.secondary_key,
                        err)) != DPS_OK)
        return rc;
    if (!a->symmetric_key.primary_key &&
        (rc = model_generate_key(&a->symmetric_key.primary_key, err)) != DPS_OK)
        return rc;
    if (!a->symmetric_key.secondary_key &&
        (rc = model_generate_key(&a->symmetric_key.secondary_key, err)) != DPS_OK)
        return rc;
    return DPS_OK;
}

static int parse_attestation(json_t *parent, bool group, struct attestation *a,
                             struct dps_error *err)
{
    static const char *const types[] = {"none", "tpm", "x509", "symmetricKey"};
    json_t *att, *sub;
    int type = -1, rc;

    rc = get_object(parent, NULL, "attestation", &att, err);
    if (rc != DPS_OK)
        return rc;
    if (!att)
        return dps_error_set(err, DPS_ERR_INVAL, "'attestation' is required");
    if (!member(att, "type"))
        return dps_error_set(err, DPS_ERR_INVAL, "'attestation.type' is required");
    rc = get_enum(att, "type", types, ARRAY_SIZE(types), "'tpm', 'x509', 'symmetricKey'", &type,
                  err);
    if (rc != DPS_OK)
        return dps_error_set(err, DPS_ERR_INVAL,
                             "'attestation.type' must be one of 'tpm', 'x509', 'symmetricKey'");
    a->type = (enum attestation_type)type;
    switch (a->type) {
    case ATTESTATION_NONE:
        return dps_error_set(err, DPS_ERR_INVAL,
                             "'attestation.type' 'none' cannot attest a device: use 'x509', "
                             "'symmetricKey' or 'tpm'");
    case ATTESTATION_TPM:
        if (group)
            return dps_error_set(err, DPS_ERR_INVAL,
                                 "'attestation.type' of an enrollment group must be 'x509' or "
                                 "'symmetricKey'");
        rc = get_object(att, "attestation", "tpm", &sub, err);
        if (rc != DPS_OK)
            return rc;
        if (!sub)
            return dps_error_set(err, DPS_ERR_INVAL,
                                 "'attestation.tpm' is required when 'attestation.type' is 'tpm'");
        rc = get_string(sub, "attestation.tpm", "endorsementKey", MODEL_STRING_MAX, true,
                        &a->tpm.endorsement_key, err);
        if (rc == DPS_OK)
            rc = get_string(sub, "attestation.tpm", "storageRootKey", MODEL_STRING_MAX, false,
                            &a->tpm.storage_root_key, err);
        if (rc != DPS_OK)
            return rc;
        if (!b64_is_valid(a->tpm.endorsement_key, strlen(a->tpm.endorsement_key), 0, NULL))
            return dps_error_set(err, DPS_ERR_INVAL,
                                 "'attestation.tpm.endorsementKey' is not valid base64");
        if (a->tpm.storage_root_key &&
            !b64_is_valid(a->tpm.storage_root_key, strlen(a->tpm.storage_root_key), 0, NULL))
            return dps_error_set(err, DPS_ERR_INVAL,
                                 "'attestation.tpm.storageRootKey' is not valid base64");
        return DPS_OK;
    case ATTESTATION_X509:
        rc = get_object(att, "attestation", "x509", &sub, err);
        if (rc != DPS_OK)
            return rc;
        if (!sub)
            return dps_error_set(err, DPS_ERR_INVAL,
                                 "'attestation.x509' is required when 'attestation.type' is "
                                 "'x509'");
        return parse_x509(sub, group, a, err);
    case ATTESTATION_SYMMETRIC_KEY:
        rc = get_object(att, "attestation", "symmetricKey", &sub, err);
        if (rc != DPS_OK)
            return rc;
        return parse_symmetric_key(sub, a, err);
    }
    return DPS_OK;
}

/* ---- the shared enrollment fields ---- */

static void common_release(struct enrollment_common *c)
{
    attestation_release(&c->attestation);
    free(c->iot_hub_host_name);
    json_decref(c->initial_twin);
    for (size_t i = 0; i < c->iot_hubs_count; i++)
        free(c->iot_hubs[i]);
    free(c->iot_hubs);
    free(c->webhook_url);
    free(c->webhook_api_version);
    free(c->etag);
    free(c->created);
    free(c->updated);
}

static int parse_initial_twin(json_t *obj, struct enrollment_common *c, struct dps_error *err)
{
    json_t *twin, *sub, *props;
    int rc;

    rc = get_object(obj, NULL, "initialTwin", &twin, err);
    if (rc != DPS_OK || !twin)
        return rc;
    rc = get_object(twin, "initialTwin", "tags", &sub, err);
    if (rc == DPS_OK)
        rc = get_object(twin, "initialTwin", "properties", &props, err);
    if (rc == DPS_OK && props)
        rc = get_object(props, "initialTwin.properties", "desired", &sub, err);
    if (rc != DPS_OK)
        return rc;
    c->initial_twin = json_deep_copy(twin);
    return c->initial_twin ? DPS_OK : nomem(err);
}

static int parse_iot_hubs(json_t *obj, struct enrollment_common *c, struct dps_error *err)
{
    json_t *hubs = member(obj, "iotHubs"), *v;
    size_t i, n;

    if (!hubs)
        return DPS_OK;
    if (!json_is_array(hubs))
        return dps_error_set(err, DPS_ERR_INVAL, "'iotHubs' must be an array of host names");
    n = json_array_size(hubs);
    if (n > MODEL_IOT_HUBS_MAX)
        return dps_error_set(err, DPS_ERR_INVAL, "'iotHubs' has more than %d entries",
                             MODEL_IOT_HUBS_MAX);
    if (n == 0)
        return DPS_OK;
    c->iot_hubs = calloc(n, sizeof(*c->iot_hubs));
    if (!c->iot_hubs)
        return nomem(err);
    json_array_foreach(hubs, i, v)
    {
        if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 255 ||
            strlen(json_string_value(v)) != json_string_length(v))
            return dps_error_set(err, DPS_ERR_INVAL,
                                 "'iotHubs[%zu]' must be a host name of 1 to 255 characters", i);
        c->iot_hubs[i] = strdup(json_string_value(v));
        if (!c->iot_hubs[i])
            return nomem(err);
        c->iot_hubs_count = i + 1;
    }
    return DPS_OK;
}

static int parse_common(json_t *obj, bool group, int flags, struct enrollment_common *c,
                        struct dps_error *err)
{
    static const char *const statuses[] = {"disabled", "enabled"};
    json_t *sub;
    int v, rc;

    c->enabled = true;
    c->update_hub_assignment = true;
    c->migrate_device_data = true;
    rc = parse_attestation(obj, group, &c->attestation, err);
    if (rc != DPS_OK)
        return rc;

    rc = get_object(obj, NULL, "capabilities", &sub, err);
    if (rc == DPS_OK && sub)
        rc = get_bool(sub, "capabilities", "iotEdge", &c->iot_edge, err);
    if (rc == DPS_OK)
        rc = get_string(obj, NULL, "iotHubHostName", 255, false, &c->iot_hub_host_name, err);
    if (rc == DPS_OK)
        rc = parse_initial_twin(obj, c, err);
    if (rc != DPS_OK)
        return rc;

    v = 1;
    rc = get_enum(obj, "provisioningStatus", statuses, ARRAY_SIZE(statuses),
                  "'enabled', 'disabled'", &v, err);
    if (rc != DPS_OK)
        return rc;
    c->enabled = v == 1;

    rc = get_object(obj, NULL, "reprovisionPolicy", &sub, err);
    if (rc == DPS_OK && sub) {
        rc = get_bool(sub, "reprovisionPolicy", "updateHubAssignment", &c->update_hub_assignment,
                      err);
        if (rc == DPS_OK)
            rc = get_bool(sub, "reprovisionPolicy", "migrateDeviceData", &c->migrate_device_data,
                          err);
    }
    if (rc != DPS_OK)
        return rc;

    v = ALLOCATION_DEFAULT;
    rc = get_enum(obj, "allocationPolicy", allocation_names, ARRAY_SIZE(allocation_names),
                  "'hashed', 'geoLatency', 'static', 'custom'", &v, err);
    if (rc != DPS_OK)
        return rc;
    c->allocation_policy = (enum allocation_policy)v;

    rc = parse_iot_hubs(obj, c, err);
    if (rc != DPS_OK)
        return rc;

    rc = get_object(obj, NULL, "customAllocationDefinition", &sub, err);
    if (rc == DPS_OK && sub) {
        rc = get_string(sub, "customAllocationDefinition", "webhookUrl", MODEL_STRING_MAX, true,
                        &c->webhook_url, err);
        if (rc == DPS_OK)
            rc = get_string(sub, "customAllocationDefinition", "apiVersion", 64, true,
                            &c->webhook_api_version, err);
        if (rc == DPS_OK && strncasecmp(c->webhook_url, "https://", 8) != 0 &&
            strncasecmp(c->webhook_url, "http://", 7) != 0)
            rc = dps_error_set(err, DPS_ERR_INVAL,
                               "'customAllocationDefinition.webhookUrl' must be an http(s) url");
    }
    if (rc != DPS_OK)
        return rc;
    if (c->allocation_policy == ALLOCATION_CUSTOM && !c->webhook_url)
        return dps_error_set(err, DPS_ERR_INVAL,
                             "'customAllocationDefinition' is required when 'allocationPolicy' "
                             "is 'custom'");

    if (flags & MODEL_PARSE_STORED) {
        rc = get_string(obj, NULL, "etag", MODEL_STRING_MAX, false, &c->etag, err);
        if (rc == DPS_OK)
            rc = get_string(obj, NULL, "createdDateTimeUtc", 64, false, &c->created, err);
        if (rc == DPS_OK)
            rc = get_string(obj, NULL, "lastUpdatedDateTimeUtc", 64, false, &c->updated, err);
    }
    return rc;
}

/* ---- enrollments and groups ---- */

void enrollment_free(struct enrollment *e)
{
    if (!e)
        return;
    free(e->registration_id);
    free(e->device_id);
    json_decref(e->optional_device_information);
    common_release(&e->c);
    registration_state_free(e->registration_state);
    free(e);
}

void enrollment_group_free(struct enrollment_group *g)
{
    if (!g)
        return;
    free(g->enrollment_group_id);
    common_release(&g->c);
    free(g);
}

/*
 * Allocates a zeroed record of size bytes for obj, which must be a JSON
 * object (what names the record in the message). Sets *rc to DPS_OK, or
 * DPS_ERR_INVAL / DPS_ERR_NOMEM with err filled, and then returns NULL.
 */
static void *record_new(json_t *obj, const char *what, size_t size, int *rc, struct dps_error *err)
{
    void *p;

    if (!json_is_object(obj)) {
        *rc = dps_error_set(err, DPS_ERR_INVAL, "%s must be a json object", what);
        return NULL;
    }
    p = calloc(1, size);
    *rc = p ? DPS_OK : nomem(err);
    return p;
}

/* The required identifier at key of a record, checked as an id of that kind. */
static int parse_id(json_t *obj, const char *key, enum regid_kind kind, int flags, char **out,
                    struct dps_error *err)
{
    int rc = get_string(obj, NULL, key, 1024, true, out, err);

    return rc == DPS_OK ? check_id(key, kind, *out, flags, err) : rc;
}

int model_enrollment_parse(json_t *obj, int flags, struct enrollment **out, struct dps_error *err)
{
    struct enrollment *e = NULL;
    json_t *info;
    int rc;

    e = record_new(obj, "an individual enrollment", sizeof(*e), &rc, err);
    if (rc == DPS_OK)
        rc = parse_id(obj, "registrationId", REGID_REGISTRATION, flags, &e->registration_id, err);
    if (rc == DPS_OK)
        rc = get_string(obj, NULL, "deviceId", 1024, false, &e->device_id, err);
    if (rc == DPS_OK && e->device_id)
        rc = check_device_id(e->device_id, err);
    if (rc == DPS_OK)
        rc = get_object(obj, NULL, "optionalDeviceInformation", &info, err);
    if (rc != DPS_OK)
        goto out;
    if (info && !(e->optional_device_information = json_deep_copy(info))) {
        rc = nomem(err);
        goto out;
    }
    if (!e->device_id && !(e->device_id = strdup(e->registration_id))) {
        rc = nomem(err);
        goto out;
    }
    rc = parse_common(obj, false, flags, &e->c, err);
    if (rc != DPS_OK)
        goto out;
    *out = e;
    e = NULL;
out:
    enrollment_free(e);
    return rc;
}

int model_group_parse(json_t *obj, int flags, struct enrollment_group **out, struct dps_error *err)
{
    struct enrollment_group *g = NULL;
    int rc;

    g = record_new(obj, "an enrollment group", sizeof(*g), &rc, err);
    if (rc == DPS_OK)
        rc = parse_id(obj, "enrollmentGroupId", REGID_ENROLLMENT_GROUP, flags,
                      &g->enrollment_group_id, err);
    if (rc == DPS_OK)
        rc = parse_common(obj, true, flags, &g->c, err);
    if (rc != DPS_OK)
        goto out;
    *out = g;
    g = NULL;
out:
    enrollment_group_free(g);
    return rc;
}

/*
 * Loads one JSON document and parses it as an individual enrollment into
 * *enrollment when that is not NULL, otherwise as a group into *group.
 */
static int parse_document(const char *buf, size_t len, int flags, struct enrollment **enrollment,
                          struct enrollment_group **group, struct dps_error *err)
{
    json_t *root = NULL;
    int rc;

    rc = model_json_load(buf, len, &root, err);
    if (rc == DPS_OK)
        rc = enrollment ? model_enrollment_parse(root, flags, enrollment, err)
                        : model_group_parse(root, flags, group, err);
    json_decref(root);
    return rc;
}

int model_enrollment_from_json_flags(const char *buf, size_t len, int flags,
                                     struct enrollment **out, struct dps_error *err)
{
    return parse_document(buf, len, flags, out, NULL, err);
}

int model_enrollment_from_json(const char *buf, size_t len, struct enrollment **out,
                               struct dps_error *err)
{
    return model_enrollment_from_json_flags(buf, len, 0, out, err);
}

int model_group_from_json_flags(const char *buf, size_t len, int flags,
                                struct enrollment_group **out, struct dps_error *err)
{
    return parse_document(buf, len, flags, NULL, out, err);
}

int model_group_from_json(const char *buf, size_t len, struct enrollment_group **out,
                          struct dps_error *err)
{
    return model_group_from_json_flags(buf, len, 0, out, err);
}

/* ---- writing JSON ---- */

/*
 * Sets key on obj to value (stolen) when value is not NULL; records a
 * failure in *bad so a whole object is built before one check.
 */
static void put(json_t *obj, const char *key, json_t *value, bool *bad)
{
    if (!value || json_object_set_new(obj, key, value) != 0)
        *bad = true;
}

static void put_string(json_t *obj, const char *key, const char *s, bool *bad)
{
    if (s)
        put(obj, key, json_string(s), bad);
}

/*
 * The end of every *_to_json(): hands back o when all of it was built,
 * otherwise releases what was and returns NULL.
 */
static json_t *built(json_t *o, bool bad)
{
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *cert_to_json(const struct model_cert *c)
{
    json_t *o = json_object();
    bool bad = !o;

    if (bad)
        return NULL;
    put_string(o, "certificate", c->certificate, &bad);
    put(o, "info", x509_info_to_json(&c->info), &bad);
    return built(o, bad);
}

static json_t *cert_pair_to_json(const struct model_cert *p, const struct model_cert *s)
{
    json_t *o = json_object();
    bool bad = !o;

    if (bad)
        return NULL;
    put(o, "primary", cert_to_json(p), &bad);
    if (s->certificate)
        put(o, "secondary", cert_to_json(s), &bad);
    return built(o, bad);
}

json_t *model_attestation_to_json(const struct attestation *a, int flags)
{
    static const char *const types[] = {"none", "tpm", "x509", "symmetricKey"};
    json_t *o = json_object(), *sub;
    bool bad = !o;

    if (bad)
        return NULL;
    put_string(o, "type", types[a->type], &bad);
    switch (a->type) {
    case ATTESTATION_TPM:
        sub = json_object();
        put(o, "tpm", sub, &bad);
        if (sub) {
            put_string(sub, "endorsementKey", a->tpm.endorsement_key, &bad);
            put_string(sub, "storageRootKey", a->tpm.storage_root_key, &bad);
        }
        break;
    case ATTESTATION_X509:
        sub = json_object();
        put(o, "x509", sub, &bad);
        if (!sub)
            break;
        if (a->x509.client_primary.certificate)
            put(sub, "clientCertificates",
                cert_pair_to_json(&a->x509.client_primary, &a->x509.client_secondary), &bad);
        if (a->x509.signing_primary.certificate)
            put(sub, "signingCertificates",
                cert_pair_to_json(&a->x509.signing_primary, &a->x509.signing_secondary), &bad);
        if (a->x509.ca_ref_primary) {
            json_t *refs = json_object();
            put(sub, "caReferences", refs, &bad);
            if (refs) {
                put_string(refs, "primary", a->x509.ca_ref_primary, &bad);
                put_string(refs, "secondary", a->x509.ca_ref_secondary, &bad);
            }
        }
        break;
    case ATTESTATION_SYMMETRIC_KEY:
        sub = json_object();
        put(o, "symmetricKey", sub, &bad);
        if (sub && (flags & MODEL_WITH_SECRETS)) {
            put_string(sub, "primaryKey", a->symmetric_key.primary_key, &bad);
            put_string(sub, "secondaryKey", a->symmetric_key.secondary_key, &bad);
        }
        break;
    case ATTESTATION_NONE:
        break;
    }
    return built(o, bad);
}

static void common_to_json(json_t *o, const struct enrollment_common *c, int flags, bool *bad)
{
    json_t *sub;

    put(o, "attestation", model_attestation_to_json(&c->attestation, flags), bad);
    put(o, "capabilities", json_pack("{s:b}", "iotEdge", c->iot_edge), bad);
    put_string(o, "iotHubHostName", c->iot_hub_host_name, bad);
    if (c->initial_twin)
        put(o, "initialTwin", json_deep_copy(c->initial_twin), bad);
    put_string(o, "etag", c->etag, bad);
    put_string(o, "provisioningStatus", c->enabled ? "enabled" : "disabled", bad);
    put(o, "reprovisionPolicy",
        json_pack("{s:b,s:b}", "updateHubAssignment", c->update_hub_assignment, "migrateDeviceData",
                  c->migrate_device_data),
        bad);
    put_string(o, "createdDateTimeUtc", c->created, bad);
    put_string(o, "lastUpdatedDateTimeUtc", c->updated, bad);
    put_string(o, "allocationPolicy", allocation_policy_name(c->allocation_policy), bad);
    if (c->iot_hubs_count) {
        sub = json_array();
        put(o, "iotHubs", sub, bad);
        for (size_t i = 0; sub && i < c->iot_hubs_count; i++)
            if (json_array_append_new(sub, json_string(c->iot_hubs[i])) != 0)
                *bad = true;
    }
    if (c->webhook_url)
        put(o, "customAllocationDefinition",
            json_pack("{s:s,s:s}", "webhookUrl", c->webhook_url, "apiVersion",
                      c->webhook_api_version ? c->webhook_api_version : ""),
            bad);
}

json_t *model_enrollment_to_json(const struct enrollment *e, int flags)
{
    json_t *o = json_object();
    bool bad = !o;

    if (bad)
        return NULL;
    put_string(o, "registrationId", e->registration_id, &bad);
    put_string(o, "deviceId", e->device_id, &bad);
    if (e->registration_state)
        put(o, "registrationState", model_registration_state_to_json(e->registration_state), &bad);
    if (e->optional_device_information)
        put(o, "optionalDeviceInformation", json_deep_copy(e->optional_device_information), &bad);
    common_to_json(o, &e->c, flags, &bad);
    return built(o, bad);
}

json_t *model_group_to_json(const struct enrollment_group *g, int flags)
{
    json_t *o = json_object();
    bool bad = !o;

    if (bad)
        return NULL;
    put_string(o, "enrollmentGroupId", g->enrollment_group_id, &bad);
    common_to_json(o, &g->c, flags, &bad);
    return built(o, bad);
}

/* ---- registration states ---- */

void registration_state_free(struct registration_state *r)
{
    if (!r)
        return;
    free(r->registration_id);
    free(r->created);
    free(r->updated);
    free(r->assigned_hub);
    free(r->device_id);
    free(r->error_message);
    free(r->etag);
    json_decref(r->payload);
    free(r);
}

int model_registration_state_from_json(const char *buf, size_t len, struct registration_state **out,
                                       struct dps_error *err)
{
    struct registration_state *r = NULL;
    json_t *root = NULL, *v;
    int status = -1, sub = SUBSTATUS_NONE, rc;

    rc = model_json_load(buf, len, &root, err);
    if (rc != DPS_OK)
        goto out;
    if (!json_is_object(root)) {
        rc = dps_error_set(err, DPS_ERR_INVAL, "a registration state must be a json object");
        goto out;
    }
    r = calloc(1, sizeof(*r));
    if (!r) {
        rc = nomem(err);
        goto out;
    }
    rc = get_string(root, NULL, "registrationId", 1024, true, &r->registration_id, err);
    if (rc == DPS_OK)
        rc = get_string(root, NULL, "createdDateTimeUtc", 64, false, &r->created, err);
    if (rc == DPS_OK)
        rc = get_string(root, NULL, "lastUpdatedDateTimeUtc", 64, false, &r->updated, err);
    if (rc == DPS_OK)
        rc = get_string(root, NULL, "assignedHub", 255, false, &r->assigned_hub, err);
    if (rc == DPS_OK)
        rc = get_string(root, NULL, "deviceId", 1024, false, &r->device_id, err);
    if (rc == DPS_OK)
        rc =
            get_string(root, NULL, "errorMessage", MODEL_STRING_MAX, false, &r->error_message, err);
    if (rc == DPS_OK)
        rc = get_string(root, NULL, "etag", MODEL_STRING_MAX, false, &r->etag, err);
    if (rc == DPS_OK && !member(root, "status"))
        rc = dps_error_set(err, DPS_ERR_INVAL, "'status' is required");
    if (rc == DPS_OK)
        rc = get_enum(root, "status", status_names, ARRAY_SIZE(status_names),
                      "'unassigned', 'assigning', 'assigned', 'failed', 'disabled'", &status, err);
    if (rc == DPS_OK)
        rc = get_enum(root, "substatus", substatus_names, ARRAY_SIZE(substatus_names),
                      "'initialAssignment', 'deviceDataMigrated', 'deviceDataReset', "
                      "'reprovisionedToInitialAssignment'",
                      &sub, err);
    if (rc != DPS_OK)
        goto out;
    r->status = (enum registration_status)status;
    r->substatus = (enum registration_substatus)sub;
    v = member(root, "errorCode");
    if (v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX) {
            rc = dps_error_set(err, DPS_ERR_INVAL, "'errorCode' must be a positive integer");
            goto out;
        }
        r->error_code = (int)json_integer_value(v);
    }
    v = member(root, "payload");
    if (v && !(r->payload = json_deep_copy(v))) {
        rc = nomem(err);
        goto out;
    }
    *out = r;
    r = NULL;
out:
    registration_state_free(r);
    json_decref(root);
    return rc;
}

json_t *model_registration_state_to_json(const struct registration_state *r)
{
    json_t *o = json_object();
    bool bad = !o;

    if (bad)
        return NULL;
    put_string(o, "registrationId", r->registration_id, &bad);
    put_string(o, "createdDateTimeUtc", r->created, &bad);
    put_string(o, "assignedHub", r->assigned_hub, &bad);
    put_string(o, "deviceId", r->device_id, &bad);
    put_string(o, "status", model_registration_status_name(r->status), &bad);
    put_string(o, "substatus", registration_substatus_name(r->substatus), &bad);
    if (r->error_code)
        put(o, "errorCode", json_integer(r->error_code), &bad);
    put_string(o, "errorMessage", r->error_message, &bad);
    put_string(o, "lastUpdatedDateTimeUtc", r->updated, &bad);
    put_string(o, "etag", r->etag, &bad);
    if (r->payload)
        put(o, "payload", json_deep_copy(r->payload), &bad);
    return built(o, bad);
}

/* ---- queries ---- */

int model_query_from_json(const char *buf, size_t len, char **out, struct dps_error *err)
{
    json_t *root = NULL;
    char *q = NULL;
    size_t i;
    int rc;

    for (i = 0; i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n');
         i++)
        ;
    if (i == len) {
        q = strdup("*");
        if (!q)
            return nomem(err);
        *out = q;
        return DPS_OK;
    }
    rc = model_json_load(buf, len, &root, err);
    if (rc != DPS_OK)
        goto out;
    if (!json_is_object(root)) {
        rc = dps_error_set(err, DPS_ERR_INVAL, "a query specification must be a json object");
        goto out;
    }
    rc = get_string(root, NULL, "query", MODEL_QUERY_MAX, true, &q, err);
    if (rc != DPS_OK)
        goto out;
    *out = q;
    q = NULL;
out:
    free(q);
    json_decref(root);
    return rc;
}

/* ---- bulk operations ---- */

void model_bulk_free(struct bulk_op *op)
{
    if (!op)
        return;
    for (size_t i = 0; i < op->count; i++) {
        free(op->items[i].id);
        free(op->items[i].etag);
        enrollment_free(op->items[i].enrollment);
        enrollment_group_free(op->items[i].group);
    }
    free(op);
}

static int parse_bulk_item(json_t *obj, struct bulk_op *op, int flags, struct bulk_item *item,
                           struct dps_error *err)
{
    const char *id_key = op->groups ? "enrollmentGroupId" : "registrationId";
    json_t *id = json_is_object(obj) ? member(obj, id_key) : NULL;
    json_t *etag = json_is_object(obj) ? member(obj, "etag") : NULL;
    struct dps_error e;
    int rc;

    item->id = strdup(id && json_is_string(id) ? json_string_value(id) : "");
    if (!item->id)
        return nomem(err);
    if (etag && json_is_string(etag) && !(item->etag = strdup(json_string_value(etag))))
        return nomem(err);
    if (op->mode == BULK_DELETE) {
        if (!id || !json_is_string(id) || json_string_length(id) == 0) {
            item->error_code = 400000;
            snprintf(item->error_status, sizeof(item->error_status), "'%s' is required", id_key);
        }
        return DPS_OK;
    }
    if (op->groups)
        rc = model_group_parse(obj, flags, &item->group, &e);
    else
        rc = model_enrollment_parse(obj, flags, &item->enrollment, &e);
    if (rc == DPS_ERR_NOMEM)
        return nomem(err);
    if (rc != DPS_OK) {
        item->error_code = dps_err_http_status(rc) * 1000;
        snprintf(item->error_status, sizeof(item->error_status), "%s", e.msg);
    }
    return DPS_OK;
}

int model_bulk_from_json(const char *buf, size_t len, bool groups, int flags, struct bulk_op **out,
                         struct dps_error *err)
{
    static const char *const modes[] = {"create", "update", "updateIfMatchETag", "delete"};
    const char *list_key = groups ? "enrollmentGroups" : "enrollments";
    struct bulk_op *op = NULL;
    json_t *root = NULL, *mode, *items, *v;
    size_t i;
    int rc;

    rc = model_json_load(buf, len, &root, err);
    if (rc != DPS_OK)
        goto out;
    if (!json_is_object(root)) {
        rc = dps_error_set(err, DPS_ERR_INVAL, "a bulk operation must be a json object");
        goto out;
    }
    op = calloc(1, sizeof(*op));
    if (!op) {
        rc = nomem(err);
        goto out;
    }
    op->groups = groups;
    mode = member(root, "mode");
    if (!mode || !json_is_string(mode)) {
        rc = dps_error_set(err, DPS_ERR_INVAL,
                           "'mode' is required: one of 'create', 'update', "
                           "'updateIfMatchETag', 'delete'");
        goto out;
    }
    rc = DPS_ERR_INVAL;
    for (i = 0; i < ARRAY_SIZE(modes); i++) {
        if (strcasecmp(modes[i], json_string_value(mode)) == 0) {
            op->mode = (enum bulk_mode)i;
            rc = DPS_OK;
        }
    }
    if (rc != DPS_OK) {
        rc = dps_error_set(err, DPS_ERR_INVAL,
                           "'mode' must be one of 'create', 'update', 'updateIfMatchETag', "
                           "'delete'");
        goto out;
    }
    items = member(root, list_key);
    if (!items || !json_is_array(items) || json_array_size(items) == 0) {
        rc = dps_error_set(err, DPS_ERR_INVAL, "'%s' must be a non-empty array", list_key);
        goto out;
    }
    if (json_array_size(items) > MODEL_BULK_MAX) {
        rc = dps_error_set(err, DPS_ERR_INVAL, "'%s' has %zu items: at most %d per operation",
                           list_key, json_array_size(items), MODEL_BULK_MAX);
        goto out;
    }
    json_array_foreach(items, i, v)
    {
        op->count = i + 1;
        rc = parse_bulk_item(v, op, flags, &op->items[i], err);
        if (rc != DPS_OK)
            goto out;
    }
    *out = op;
    op = NULL;
    rc = DPS_OK;
out:
    model_bulk_free(op);
    json_decref(root);
    return rc;
}

json_t *model_bulk_result_to_json(const struct bulk_op *op)
{
    const char *id_key = op->groups ? "enrollmentGroupId" : "registrationId";
    json_t *o = json_object(), *errors = json_array();
    bool bad = !o || !errors, ok = true;

    for (size_t i = 0; !bad && i < op->count; i++) {
        const struct bulk_item *it = &op->items[i];
        json_t *e;

        if (!it->error_code)
            continue;
        ok = false;
        e = json_pack("{s:s,s:i,s:s}", id_key, it->id ? it->id : "", "errorCode", it->error_code,
                      "errorStatus", it->error_status);
        if (!e || json_array_append_new(errors, e) != 0)
            bad = true;
    }
    if (bad) {
        json_decref(errors);
        return built(o, bad);
    }
    put(o, "isSuccessful", json_boolean(ok), &bad);
    put(o, "errors", errors, &bad);
    return built(o, bad);
}
