/* SPDX-License-Identifier: MIT */
/*
 * The libdps device client: one registration over the keep-alive HTTPS
 * client of client/https.h or over MQTT (client/device_mqtt.h), with the
 * answer read into a small result struct; the register-then-poll loop is
 * the same for every transport. Linked into dpsctl: returns DPS_ERR_NOMEM instead of aborting.
 */
#include "core/common.h"
#include "dps/device.h"

#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "client/device_mqtt.h"
#include "client/https.h"
#include "core/sas.h"

/* Longest registration id and id scope accepted from the caller. */
#define ID_MAX 128
/* Longest payload sent. */
#define PAYLOAD_MAX (64 * 1024)

void dps_device_result_release(struct dps_device_result *r)
{
    if (!r)
        return;
    free(r->status);
    free(r->assigned_hub);
    free(r->device_id);
    free(r->substatus);
    free(r->error_message);
    free(r->operation_id);
    free(r->tracking_id);
    free(r->json);
    memset(r, 0, sizeof(*r));
}

int dps_device_derive_key(const char *group_key, const char *registration_id, char **out,
                          struct dps_error *err)
{
    if (!group_key || !registration_id)
        return dps_error_set(err, DPS_ERR_INVAL, "a group key and a registration id are needed");
    if (sas_derive_device_key(group_key, registration_id, strlen(registration_id), out, err) !=
        SAS_OK)
        return err && err->code ? err->code : DPS_ERR_INVAL;
    return DPS_OK;
}

static int dup_member(const json_t *o, const char *key, char **out)
{
    const char *s = json_string_value(json_object_get(o, key));

    if (!s)
        return DPS_OK;
    *out = strdup(s);
    return *out ? DPS_OK : DPS_ERR_NOMEM;
}

/* Reads a RegistrationOperationStatus (or an error body) into r. */
static int read_answer(const struct device_reply *resp, struct dps_device_result *r,
                       struct dps_error *err)
{
    json_t *root, *st, *code;
    int rc = DPS_OK;

    dps_device_result_release(r);
    if (!(r->json = strndup(resp->body, resp->body_len)))
        return dps_error_set(err, DPS_ERR_NOMEM, "out of memory");
    root = json_loadb(resp->body, resp->body_len, 0, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return dps_error_set(err, DPS_ERR_PROTOCOL,
                             "the service answered %d with a body that is not a json object",
                             resp->status);
    }
    if (resp->status >= 300) {
        code = json_object_get(root, "errorCode");
        r->error_code = json_is_integer(code) ? (int)json_integer_value(code) : resp->status * 1000;
        if (dup_member(root, "message", &r->error_message) ||
            dup_member(root, "trackingId", &r->tracking_id))
            rc = DPS_ERR_NOMEM;
        json_decref(root);
        return rc;
    }
    st = json_object_get(root, "registrationState");
    if (dup_member(root, "operationId", &r->operation_id) ||
        dup_member(root, "status", &r->status) || dup_member(st, "assignedHub", &r->assigned_hub) ||
        dup_member(st, "deviceId", &r->device_id) || dup_member(st, "substatus", &r->substatus) ||
        dup_member(st, "errorMessage", &r->error_message))
        rc = dps_error_set(err, DPS_ERR_NOMEM, "out of memory");
    code = json_object_get(st, "errorCode");
    if (json_is_integer(code))
        r->error_code = (int)json_integer_value(code);
    if (rc == DPS_OK && !r->status)
        rc = dps_error_set(err, DPS_ERR_PROTOCOL, "the service's answer has no 'status'");
    json_decref(root);
    return rc;
}

/* The Authorization header for a symmetric-key device, or NULL for X.509. */
static int make_token(const struct dps_device_options *o, char **out, struct dps_error *err)
{
    char sr[2 * ID_MAX + 32];
    char *derived = NULL, *token = NULL;
    const char *key = o->symmetric_key;
    int rc;

    *out = NULL;
    if (!o->symmetric_key && !o->group_key)
        return DPS_OK;
    if (o->group_key) {
        rc = dps_device_derive_key(o->group_key, o->registration_id, &derived, err);
        if (rc != DPS_OK)
            return rc;
        key = derived;
    }
    snprintf(sr, sizeof(sr), "%s/registrations/%s", o->id_scope, o->registration_id);
    rc = sas_token_build(sr, key, "registration", (int64_t)time(NULL) + DPS_DEVICE_SAS_TTL, &token,
                         err) == SAS_OK
             ? DPS_OK
             : (err && err->code ? err->code : DPS_ERR_INVAL);
    if (derived) {
        OPENSSL_cleanse(derived, strlen(derived));
        free(derived);
    }
    if (rc != DPS_OK)
        return rc;
    *out = token; /* the whole "SharedAccessSignature ..." text */
    return DPS_OK;
}

static int check_options(const struct dps_device_options *o, struct dps_error *err)
{
    int creds = (o->cert_file || o->key_file) + !!o->symmetric_key + !!o->group_key;

    if (!o->id_scope || !*o->id_scope || strlen(o->id_scope) > ID_MAX)
        return dps_error_set(err, DPS_ERR_INVAL, "an id scope of 1 to %d characters is required",
                             ID_MAX);
    if (!o->registration_id || !*o->registration_id || strlen(o->registration_id) > ID_MAX)
        return dps_error_set(err, DPS_ERR_INVAL,
                             "a registration id of 1 to %d characters is required", ID_MAX);
    if (strpbrk(o->id_scope, "/?#%& ") || strpbrk(o->registration_id, "/?#%& "))
        return dps_error_set(err, DPS_ERR_INVAL,
                             "the id scope and registration id may not hold '/', '?', '#', '%%', "
                             "'&' or spaces");
    if (creds != 1)
        return dps_error_set(err, DPS_ERR_INVAL,
                             "exactly one credential is needed: a certificate and key, a "
                             "symmetric key, or a group key");
    if ((o->cert_file != NULL) != (o->key_file != NULL))
        return dps_error_set(err, DPS_ERR_INVAL,
                             "a certificate needs its key file, and a key its "
                             "certificate");
    if (o->transport != DPS_DEVICE_HTTPS && o->transport != DPS_DEVICE_MQTT &&
        o->transport != DPS_DEVICE_MQTT_WS)
        return dps_error_set(err, DPS_ERR_INVAL, "'transport' %d is not https, mqtt or mqtt-ws",
                             (int)o->transport);
    if (o->payload && strlen(o->payload) > PAYLOAD_MAX)
        return dps_error_set(err, DPS_ERR_INVAL, "the payload is longer than %d bytes",
                             PAYLOAD_MAX);
    return DPS_OK;
}

static int status_error(const struct device_reply *resp, const struct dps_device_result *r,
                        struct dps_error *err)
{
    int code = resp->status == 401   ? DPS_ERR_AUTH
               : resp->status == 404 ? DPS_ERR_NOT_FOUND
               : resp->status < 500  ? DPS_ERR_INVAL
                                     : DPS_ERR_IO;

    return dps_error_set(err, code, "the service answered %d: %s (tracking id %s)", resp->status,
                         r->error_message ? r->error_message : "no message",
                         r->tracking_id ? r->tracking_id : "none");
}

/* One device exchange on either transport. */
struct device_conn {
    const struct dps_device_options *o;
    struct https_conn *https;
    struct https_header h[4];
    size_t nh;
    struct device_mqtt *mqtt;
};

static int conn_open(struct device_conn *c, const char *token, struct dps_error *err)
{
    struct https_options ho = {0};

    if (c->o->transport != DPS_DEVICE_HTTPS)
        return device_mqtt_open(c->o, token, &c->mqtt, err);
    ho.host = c->o->host ? c->o->host : DPS_DEVICE_GLOBAL_ENDPOINT;
    ho.connect_host = c->o->connect_host;
    ho.port = c->o->port;
    ho.ca_file = c->o->ca_file;
    ho.timeout_ms = c->o->timeout_ms;
    ho.max_response = 1024 * 1024;
    ho.cert_file = c->o->cert_file;
    ho.key_file = c->o->key_file;
    c->h[c->nh++] = (struct https_header){"Accept", "application/json"};
    c->h[c->nh++] = (struct https_header){"Content-Type", "application/json; charset=utf-8"};
    c->h[c->nh++] = (struct https_header){"User-Agent", "libdps-device/" DPS_VERSION};
    if (token)
        c->h[c->nh++] = (struct https_header){"Authorization", token};
    return https_conn_new(&ho, &c->https, err);
}

/* The register request (operation_id NULL, body the JSON) or a poll of operation_id. */
static int conn_request(struct device_conn *c, const char *operation_id, const char *body,
                        struct device_reply *out, struct dps_error *err)
{
    struct https_response resp = {0};
    char target[3 * ID_MAX + 160];
    const char *ra;
    int rc;

    if (c->mqtt)
        return device_mqtt_request(c->mqtt, operation_id, body, out, err);
    if (operation_id) {
        snprintf(target, sizeof(target),
                 "/%s/registrations/%s/operations/%s?api-version=2021-06-01", c->o->id_scope,
                 c->o->registration_id, operation_id);
        rc = https_request(c->https, "GET", target, c->h, c->nh, NULL, 0, &resp, err);
    } else {
        snprintf(target, sizeof(target), "/%s/registrations/%s/register?api-version=2021-06-01",
                 c->o->id_scope, c->o->registration_id);
        rc = https_request(c->https, "PUT", target, c->h, c->nh, body, strlen(body), &resp, err);
    }
    if (rc != DPS_OK)
        return rc;
    ra = https_response_header(&resp, "Retry-After");
    out->status = resp.status;
    out->retry_after = ra ? strtol(ra, NULL, 10) : -1;
    out->body = resp.body ? resp.body : strdup("");
    out->body_len = resp.body ? resp.body_len : 0;
    resp.body = NULL;
    https_response_release(&resp);
    return out->body ? DPS_OK : dps_error_set(err, DPS_ERR_NOMEM, "out of memory");
}

static void conn_release(struct device_conn *c)
{
    https_conn_free(c->https);
    device_mqtt_close(c->mqtt);
}

int dps_device_register(const struct dps_device_options *o, struct dps_device_result *out,
                        struct dps_error *err)
{
    struct device_conn conn = {.o = o};
    struct device_reply resp = {0};
    struct dps_device_result r = {0};
    json_t *body = NULL, *payload = NULL;
    char *text = NULL, *token = NULL;
    int rc, polls = 0;
    long wait;

    rc = check_options(o, err);
    if (rc != DPS_OK)
        return rc;
    if (o->payload) {
        json_error_t jerr;

        if (!(payload = json_loads(o->payload, JSON_DECODE_ANY, &jerr)))
            return dps_error_set(err, DPS_ERR_INVAL, "'payload' is not valid json: %s", jerr.text);
    }
    body = json_pack("{s:s}", "registrationId", o->registration_id);
    if (!body || (payload && json_object_set_new(body, "payload", payload) != 0)) {
        if (!body)
            json_decref(payload);
        rc = dps_error_set(err, DPS_ERR_NOMEM, "out of memory");
        goto out;
    }
    payload = NULL;
    if (!(text = json_dumps(body, JSON_COMPACT))) {
        rc = dps_error_set(err, DPS_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((rc = make_token(o, &token, err)) != DPS_OK)
        goto out;
    if ((rc = conn_open(&conn, token, err)) != DPS_OK) {
        if (rc == DPS_ERR_AUTH && o->transport != DPS_DEVICE_HTTPS) {
            /* A CONNECT refused: no JSON came, the reason is in the operator's history. */
            r.error_code = 401002;
            if (!(r.error_message = strdup(err ? err->msg : "not authorized"))) {
                rc = dps_error_set(err, DPS_ERR_NOMEM, "out of memory");
                goto out;
            }
            goto done;
        }
        goto out;
    }
    rc = conn_request(&conn, NULL, text, &resp, err);
    for (;;) {
        if (rc != DPS_OK)
            goto out;
        rc = read_answer(&resp, &r, err);
        if (rc != DPS_OK)
            goto out;
        if (resp.status >= 300) {
            rc = status_error(&resp, &r, err);
            goto done;
        }
        if (strcmp(r.status, "assigning") != 0 && strcmp(r.status, "registering") != 0)
            break;
        if (!r.operation_id || strpbrk(r.operation_id, "/?#%& ") ||
            strlen(r.operation_id) > 2 * ID_MAX) {
            rc = dps_error_set(err, DPS_ERR_PROTOCOL,
                               "an 'assigning' answer without a usable "
                               "'operationId'");
            goto out;
        }
        if (++polls > DPS_DEVICE_POLLS_MAX) {
            rc = dps_error_set(err, DPS_ERR_IO, "still assigning after %d polls",
                               DPS_DEVICE_POLLS_MAX);
            goto out;
        }
        wait = resp.retry_after >= 0 ? resp.retry_after : 2;
        sleep((unsigned)(wait < 1 ? 1 : wait > 60 ? 60 : wait));
        device_reply_release(&resp);
        rc = conn_request(&conn, r.operation_id, NULL, &resp, err);
    }
    rc = DPS_OK;
done:
    *out = r;
    memset(&r, 0, sizeof(r));
out:
    dps_device_result_release(&r);
    device_reply_release(&resp);
    conn_release(&conn);
    json_decref(body);
    json_decref(payload);
    free(text);
    if (token) {
        OPENSSL_cleanse(token, strlen(token));
        free(token);
    }
    return rc;
}
