/* SPDX-License-Identifier: MIT */
/*
 * Handlers of the certificates API. A CA certificate is stored as
 * {"name", "properties": {"certificate" (PEM), "isVerified", info...},
 * "verification": {"code", "expiresMs"}}; the pending code never leaves the
 * server except in the generateVerificationCode answer. Every write checks
 * the etag it read (compare-and-set), so two concurrent proofs cannot both
 * consume one code, and is stored with its audit row in one transaction.
 */
#include "core/common.h"
#include "server/ca_api.h"

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "core/hex.h"
#include "core/model.h"
#include "core/pki.h"
#include "core/timeutil.h"
#include "core/x509_info.h"
#include "server/api_call.h"
#include "server/auth.h"
#include "server/log.h"
#include "server/server.h"

#define RESOURCE_TYPE "Microsoft.Devices/ProvisioningServices/Certificates"

enum ca_op { CA_LIST, CA_GET, CA_PUT, CA_DELETE, CA_CODE, CA_VERIFY };

struct ca_route_arg {
    struct ca_api *api;
    enum ca_op op;
};

#define NROUTES 6

struct ca_api {
    struct api_stores stores;
    int64_t code_ttl; /* seconds a verification code stays usable */
    struct http_route routes[NROUTES];
    struct ca_route_arg args[NROUTES];
};

/* One request being served. */
struct ca_call {
    struct http_request *req;
    struct store *store;
    struct auth_identity who;
    const char *name; /* decoded {name}, or NULL for the list */
    int64_t code_ttl; /* the API's verification code lifetime, seconds */
};

/* ---- errors ---- */

/* Errors as in the service API, but for sub-codes: a certificate has no 404 or 409 of its own. */
static void reply_fail(struct ca_call *k, int code, const char *msg)
{
    int status = api_status_of(code);

    api_reply_fail(k->req, code,
                   status == 400   ? 4
                   : status == 401 ? 2
                   : status == 412 ? 1
                                   : 0,
                   msg);
}

/* ---- names, times, codes ---- */

static int name_check(const char *name, struct dps_error *err)
{
    size_t n = strlen(name);

    if (n == 0 || n > CA_API_NAME_MAX)
        return dps_error_set(err, DPS_ERR_INVAL,
                             "certificate name '%.64s' must be 1 to %d characters", name,
                             CA_API_NAME_MAX);
    for (size_t i = 0; i < n; i++) {
        char c = name[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return dps_error_set(err, DPS_ERR_INVAL,
                                 "certificate name '%s' has '%c' at position %zu: names are "
                                 "letters, digits and '-', '_', '.'",
                                 name, (c >= 0x20 && c < 0x7f) ? c : '?', i + 1);
    }
    return DPS_OK;
}

/* RFC 1123 ("Tue, 14 Nov 2017 12:34:18 GMT"), as Azure's certificate resource writes times. */
static void rfc1123(int64_t secs, char out[40])
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = (time_t)secs;
    struct tm tm;

    if (!gmtime_r(&t, &tm) || tm.tm_wday < 0 || tm.tm_wday > 6 || tm.tm_mon < 0 || tm.tm_mon > 11) {
        out[0] = '\0';
        return;
    }
    snprintf(out, 40, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static void iso_ms(int64_t ms, char out[TIMEUTIL_ISO_SIZE])
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};

    if (timeutil_format(&ts, out) != 0)
        out[0] = '\0';
}

static int64_t now_ms(void)
{
    struct timespec ts;

    timeutil_now(&ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void make_code(char out[2 * CA_API_CODE_BYTES + 1])
{
    unsigned char r[CA_API_CODE_BYTES];

    if (RAND_bytes(r, sizeof(r)) != 1)
        abort(); /* no randomness: a guessable code would defeat the proof */
    *hex_encode_upper(r, sizeof(r), out) = '\0';
}

/* ---- the stored object ---- */

/* A stored certificate, parsed. */
struct ca_doc {
    json_t *root;  /* owned */
    json_t *props; /* borrowed from root */
    X509 *cert;    /* owned */
};

static void ca_doc_release(struct ca_doc *d)
{
    json_decref(d->root);
    X509_free(d->cert);
    memset(d, 0, sizeof(*d));
}

static int ca_doc_parse(const struct store_object *o, struct ca_doc *out, struct dps_error *err)
{
    struct ca_doc d = {0};
    json_t *v;

    d.root = json_loads(o->json, 0, NULL);
    d.props = json_object_get(d.root, "properties");
    v = json_object_get(d.props, "certificate");
    if (!json_is_object(d.props) || !json_is_string(v) ||
        x509_info_decode(json_string_value(v), json_string_length(v), &d.cert, NULL) != DPS_OK) {
        ca_doc_release(&d);
        return dps_error_set(err, DPS_ERR_INTERNAL, "stored certificate '%s' cannot be read",
                             o->id);
    }
    *out = d;
    return DPS_OK;
}

int ca_store_resolve(struct store *s, const char *name, X509 **cert, bool *verified,
                     struct dps_error *err)
{
    struct store_object o = {0};
    struct ca_doc d = {0};
    int rc = store_ca_cert_get(s, name, &o, err);

    if (rc == DPS_ERR_INVAL)
        rc = dps_error_set(err, DPS_ERR_NOT_FOUND, "certificate '%s' not found", name);
    if (rc == DPS_OK && ca_doc_parse(&o, &d, err) != DPS_OK)
        rc = dps_error_set(err, DPS_ERR_NOT_FOUND, "certificate '%s' cannot be read", name);
    if (rc == DPS_OK) {
        *verified = json_is_true(json_object_get(d.props, "isVerified"));
        *cert = d.cert;
        d.cert = NULL;
    }
    ca_doc_release(&d);
    store_object_release(&o);
    return rc;
}

/*
 * The CertificateResponse of a stored object; with code, the
 * VerificationCodeResponse (the code and its expiry added).
 */
static json_t *render(const struct store_object *o, const struct ca_doc *d, bool code)
{
    json_t *out = json_object(), *props = json_object(), *v, *ver;
    char buf[40], iso[TIMEUTIL_ISO_SIZE], id[CA_API_NAME_MAX + 16];
    static const char *const copied[] = {"subject",      "thumbprint",    "sha256Thumbprint",
                                         "issuer",       "notBeforeUtc",  "notAfterUtc",
                                         "isVerified",   "certificate",   "verifiedDateTimeUtc",
                                         "serialNumber", "expiresSeconds"};

    for (size_t i = 0; i < ARRAY_SIZE(copied); i++)
        if ((v = json_object_get(d->props, copied[i])) && strcmp(copied[i], "expiresSeconds"))
            json_object_set(props, copied[i], v);
    if (!json_object_get(props, "isVerified"))
        json_object_set_new(props, "isVerified", json_false());
    v = json_object_get(d->props, "expiresSeconds");
    if (json_is_integer(v)) {
        rfc1123(json_integer_value(v), buf);
        json_object_set_new(props, "expiry", json_string(buf));
    }
    rfc1123(o->created_ms / 1000, buf);
    json_object_set_new(props, "created", json_string(buf));
    rfc1123(o->updated_ms / 1000, buf);
    json_object_set_new(props, "updated", json_string(buf));
    ver = json_object_get(d->root, "verification");
    if (code && json_is_object(ver)) {
        json_object_set(props, "verificationCode", json_object_get(ver, "code"));
        iso_ms(json_integer_value(json_object_get(ver, "expiresMs")), iso);
        json_object_set_new(props, "verificationCodeExpiry", json_string(iso));
    }
    snprintf(id, sizeof(id), "/certificates/%s", o->id);
    json_object_set_new(out, "name", json_string(o->id));
    json_object_set_new(out, "etag", json_string(o->etag));
    json_object_set_new(out, "id", json_string(id));
    json_object_set_new(out, "type", json_string(RESOURCE_TYPE));
    json_object_set_new(out, "properties", props);
    return out;
}

static void reply_object(struct ca_call *k, const struct store_object *o, bool code)
{
    struct ca_doc d = {0};
    struct dps_error err = {0};

    if (ca_doc_parse(o, &d, &err) != DPS_OK) {
        reply_fail(k, DPS_ERR_INTERNAL, err.msg);
        return;
    }
    http_reply_jansson(k->req, 200, render(o, &d, code));
    ca_doc_release(&d);
}

/* Writes json under k->name with if_match, and its audit row, in one transaction. */
static int write_with_audit(struct ca_call *k, const char *action, json_t *doc,
                            const char *if_match, bool create_only, struct store_object *out,
                            struct dps_error *err)
{
    char *text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    struct store_put in = {
        .id = k->name, .json = text, .if_match = if_match, .create_only = create_only};
    struct store_audit_in a = {.actor = k->who.policy,
                               .action = action,
                               .kind = "caCertificate",
                               .object_id = k->name,
                               .tracking_id = k->req->tracking_id,
                               .outcome = "ok"};
    int rc;

    if (!text)
        abort();
    if ((rc = store_batch_begin(k->store, err)) == DPS_OK) {
        rc = store_ca_cert_put(k->store, &in, out, err);
        if (rc == DPS_OK)
            rc = store_audit_append(k->store, &a, NULL, err);
        /* groups' caReferences see certificates: their caches reload */
        if (rc == DPS_OK)
            rc = store_generation_bump(k->store, STORE_GENERATION_GROUPS, err);
        if (rc == DPS_OK)
            rc = store_batch_commit(k->store, err);
        else
            store_batch_rollback(k->store);
    }
    free(text);
    return rc;
}

/* An audit row for a refused proof: who tried, and why it failed. */
static void audit_refusal(struct ca_call *k, const char *action, const char *why)
{
    struct store_audit_in a = {.actor = k->who.policy,
                               .action = action,
                               .kind = "caCertificate",
                               .object_id = k->name,
                               .tracking_id = k->req->tracking_id,
                               .outcome = why};
    struct dps_error err = {0};

    if (store_audit_append(k->store, &a, NULL, &err) != DPS_OK)
        log_msg(LOG_WARNING, "cannot write the audit row of %s '%s': %s", action, k->name, err.msg);
}

/* Reads the stored object of k->name and checks an If-Match header against it. */
static int load(struct ca_call *k, struct store_object *o, struct ca_doc *d, struct dps_error *err)
{
    const char *m = http_request_header(k->req, "If-Match");
    int rc = store_ca_cert_get(k->store, k->name, o, err);

    if (rc == DPS_ERR_NOT_FOUND || rc == DPS_ERR_INVAL)
        return dps_error_set(err, DPS_ERR_NOT_FOUND, "certificate '%s' not found", k->name);
    if (rc != DPS_OK)
        return rc;
    if (m && strcmp(m, "*") != 0 && strcmp(m, o->etag) != 0)
        return dps_error_set(err, DPS_ERR_PRECONDITION,
                             "certificate '%s' does not have the etag given in If-Match (it "
                             "changed: read it again)",
                             k->name);
    return ca_doc_parse(o, d, err);
}

/* ---- the proof ---- */

int ca_proof_check(X509 *proof, X509 *ca, const char *code, int64_t now, struct dps_error *err)
{
    X509_NAME *subj = X509_get_subject_name(proof);
    int idx = subj ? X509_NAME_get_index_by_NID(subj, NID_commonName, -1) : -1;
    const ASN1_STRING *cn_asn =
        idx >= 0 ? X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx)) : NULL;
    EVP_PKEY *key = X509_get0_pubkey(ca);
    char issuer[X509_INFO_NAME_MAX], ca_subject[X509_INFO_NAME_MAX];
    time_t t = (time_t)now;
    const unsigned char *cn = cn_asn ? ASN1_STRING_get0_data(cn_asn) : NULL;
    int cn_len = cn_asn ? ASN1_STRING_length(cn_asn) : 0;

    if (!cn)
        return dps_error_set(err, DPS_ERR_INVAL,
                             "the verification certificate has no subject CN: its CN must be the "
                             "verification code");
    if ((size_t)cn_len != strlen(code) || strncasecmp((const char *)cn, code, strlen(code)) != 0)
        return dps_error_set(err, DPS_ERR_INVAL,
                             "the verification certificate's subject CN '%.*s' is not the current "
                             "verification code: make the certificate with the code of the last "
                             "generateVerificationCode",
                             cn_len > 80 ? 80 : cn_len, (const char *)cn);
    if (!key || X509_verify(proof, key) != 1) {
        if (x509_info_name_format(X509_get_issuer_name(proof), issuer, sizeof(issuer), NULL))
            snprintf(issuer, sizeof(issuer), "?");
        if (x509_info_name_format(X509_get_subject_name(ca), ca_subject, sizeof(ca_subject), NULL))
            snprintf(ca_subject, sizeof(ca_subject), "?");
        return dps_error_set(err, DPS_ERR_INVAL,
                             "the verification certificate (issuer '%.200s') is not signed by the "
                             "private key of the CA '%.200s': sign it with that CA's key",
                             issuer, ca_subject);
    }
    if (X509_cmp_time(X509_get0_notBefore(proof), &t) > 0)
        return dps_error_set(err, DPS_ERR_INVAL,
                             "the verification certificate is not valid yet (notBefore is in the "
                             "future): check the clock of the machine that made it");
    if (X509_cmp_time(X509_get0_notAfter(proof), &t) < 0)
        return dps_error_set(err, DPS_ERR_INVAL,
                             "the verification certificate has expired (notAfter is in the past): "
                             "make a new one");
    return DPS_OK;
}

/* ---- handlers ---- */

static void op_list(struct ca_call *k)
{
    struct store_page page = {0};
    struct store_query q = {.limit = CA_API_CERTS_MAX};
    struct dps_error err = {0};
    json_t *arr;
    int rc = store_ca_cert_list(k->store, &q, &page, &err);

    if (rc != DPS_OK) {
        reply_fail(k, rc, err.msg);
        return;
    }
    arr = json_array();
    for (size_t i = 0; i < page.n; i++) {
        struct ca_doc d = {0};

        if (ca_doc_parse(&page.items[i], &d, &err) != DPS_OK) {
            log_msg(LOG_WARNING, "%s", err.msg);
            continue;
        }
        json_array_append_new(arr, render(&page.items[i], &d, false));
        ca_doc_release(&d);
    }
    store_page_release(&page);
    http_reply_jansson(k->req, 200, json_pack("{s:o}", "value", arr));
}

static void op_get(struct ca_call *k)
{
    struct store_object o = {0};
    struct ca_doc d = {0};
    struct dps_error err = {0};
    int rc = store_ca_cert_get(k->store, k->name, &o, &err);

    if (rc == DPS_ERR_NOT_FOUND || rc == DPS_ERR_INVAL)
        http_reply_error(k->req, 404, 0, "certificate '%s' not found", k->name);
    else if (rc != DPS_OK || (rc = ca_doc_parse(&o, &d, &err)) != DPS_OK)
        reply_fail(k, rc, err.msg);
    else
        http_reply_jansson(k->req, 200, render(&o, &d, false));
    ca_doc_release(&d);
    store_object_release(&o);
}

/* Builds the stored document of an upload from the request body. */
static int upload_doc(struct ca_call *k, json_t **out, struct dps_error *err)
{
    struct x509_info info;
    json_t *body = NULL, *v, *verified, *props;
    X509 *x = NULL;
    char *pem = NULL;
    int64_t expires;
    int rc;

    if ((rc = model_json_load(k->req->body, k->req->body_len, &body, err)) != DPS_OK)
        return rc;
    if (!json_is_object(body)) {
        rc = dps_error_set(err, DPS_ERR_INVAL, "the body must be a json object");
        goto out;
    }
    v = json_object_get(body, "certificate");
    if (!json_is_string(v) || json_string_length(v) == 0) {
        rc = dps_error_set(err, DPS_ERR_INVAL,
                           "'certificate' is required: the CA certificate as PEM text or base64");
        goto out;
    }
    verified = json_object_get(body, "isVerified");
    if (verified && !json_is_null(verified) && !json_is_boolean(verified)) {
        rc = dps_error_set(err, DPS_ERR_INVAL, "'isVerified' must be true or false");
        goto out;
    }
    rc = x509_info_parse(json_string_value(v), json_string_length(v), &info, &x, err);
    if (rc != DPS_OK) {
        char msg[sizeof(err->msg)];

        snprintf(msg, sizeof(msg), "%s", err->msg);
        rc = dps_error_set(err, rc == DPS_ERR_NOMEM ? rc : DPS_ERR_INVAL, "'certificate': %s", msg);
        goto out;
    }
    if (!info.is_ca) {
        rc = dps_error_set(err, DPS_ERR_INVAL,
                           "'certificate' is not a CA certificate (basicConstraints CA:TRUE is "
                           "missing): upload the root or intermediate CA that signs the devices");
        goto out;
    }
    {
        struct tm tm;
        const ASN1_TIME *na = X509_get0_notAfter(x);

        if (ASN1_TIME_to_tm(na, &tm) != 1) {
            rc = dps_error_set(err, DPS_ERR_INVAL, "'certificate' has an unreadable notAfter");
            goto out;
        }
        expires = (int64_t)timegm(&tm);
    }
    if (!(pem = pki_cert_pem(x))) {
        rc = dps_error_set(err, DPS_ERR_INTERNAL, "cannot encode the certificate as PEM");
        goto out;
    }
    props = json_object();
    json_object_set_new(props, "certificate", json_string(pem));
    json_object_set_new(props, "isVerified", json_boolean(json_is_true(verified)));
    json_object_set_new(props, "subject", json_string(info.subject_name));
    json_object_set_new(props, "issuer", json_string(info.issuer_name));
    json_object_set_new(props, "thumbprint", json_string(info.sha1_thumbprint));
    json_object_set_new(props, "sha256Thumbprint", json_string(info.sha256_thumbprint));
    json_object_set_new(props, "serialNumber", json_string(info.serial_number));
    json_object_set_new(props, "notBeforeUtc", json_string(info.not_before_utc));
    json_object_set_new(props, "notAfterUtc", json_string(info.not_after_utc));
    json_object_set_new(props, "expiresSeconds", json_integer(expires));
    if (json_is_true(verified)) {
        char iso[TIMEUTIL_ISO_SIZE];

        iso_ms(now_ms(), iso);
        json_object_set_new(props, "verifiedDateTimeUtc", json_string(iso));
    }
    *out = json_pack("{s:s,s:o}", "name", k->name, "properties", props);
    rc = DPS_OK;
out:
    free(pem);
    X509_free(x);
    json_decref(body);
    return rc;
}

static void op_put(struct ca_call *k)
{
    struct store_object o = {0};
    struct dps_error err = {0};
    const char *if_match = http_request_header(k->req, "If-Match");
    json_t *doc = NULL;
    int64_t n = 0;
    int rc;

    if ((rc = name_check(k->name, &err)) != DPS_OK || (rc = upload_doc(k, &doc, &err)) != DPS_OK)
        goto out;
    if (!if_match) {
        rc = store_ca_cert_count(k->store, NULL, &n, &err);
        if (rc == DPS_OK && n >= CA_API_CERTS_MAX)
            rc = dps_error_set(&err, DPS_ERR_CONFLICT,
                               "there are %d CA certificates already, the most dpsd keeps: delete "
                               "one first",
                               CA_API_CERTS_MAX);
        if (rc != DPS_OK)
            goto out;
    }
    /* Azure's rule: replacing an existing certificate takes its etag. */
    rc = write_with_audit(k, "put", doc, if_match, !if_match, &o, &err);
    if (rc == DPS_ERR_CONFLICT && !if_match)
        rc = dps_error_set(&err, DPS_ERR_CONFLICT,
                           "certificate '%s' exists already: give its etag in If-Match (or '*') "
                           "to replace it",
                           k->name);
    else if (rc == DPS_ERR_PRECONDITION)
        rc =
            dps_error_set(&err, DPS_ERR_PRECONDITION, "certificate '%s' %s", k->name,
                          strcmp(if_match, "*") == 0
                              ? "does not exist (If-Match: *)"
                              : "does not have the etag given in If-Match (it changed or is gone)");
out:
    if (rc == DPS_OK)
        reply_object(k, &o, false);
    else
        reply_fail(k, rc, err.msg);
    json_decref(doc);
    store_object_release(&o);
}

static void op_delete(struct ca_call *k)
{
    struct dps_error err = {0};
    const char *if_match = http_request_header(k->req, "If-Match");
    struct store_audit_in a = {.actor = k->who.policy,
                               .action = "delete",
                               .kind = "caCertificate",
                               .object_id = k->name,
                               .tracking_id = k->req->tracking_id,
                               .outcome = "ok"};
    int rc;

    if ((rc = store_batch_begin(k->store, &err)) == DPS_OK) {
        rc = store_ca_cert_delete(k->store, k->name, if_match, &err);
        if (rc == DPS_OK)
            rc = store_audit_append(k->store, &a, NULL, &err);
        if (rc == DPS_OK)
            rc = store_generation_bump(k->store, STORE_GENERATION_GROUPS, &err);
        if (rc == DPS_OK)
            rc = store_batch_commit(k->store, &err);
        else
            store_batch_rollback(k->store);
    }
    if (rc == DPS_ERR_NOT_FOUND || rc == DPS_ERR_INVAL)
        http_reply_error(k->req, 404, 0, "certificate '%s' not found", k->name);
    else if (rc == DPS_ERR_PRECONDITION)
        http_reply_error(k->req, 412, 1,
                         "certificate '%s' does not have the etag given in If-Match", k->name);
    else if (rc != DPS_OK)
        reply_fail(k, rc, err.msg);
    else
        http_reply_json(k->req, 204, "", 0);
}

static void op_code(struct ca_call *k)
{
    struct store_object o = {0}, stored = {0};
    struct ca_doc d = {0};
    struct dps_error err = {0};
    char code[2 * CA_API_CODE_BYTES + 1];
    int rc;

    if ((rc = load(k, &o, &d, &err)) != DPS_OK)
        goto out;
    make_code(code);
    json_object_set_new(d.root, "verification",
                        json_pack("{s:s,s:I}", "code", code, "expiresMs",
                                  (json_int_t)(now_ms() + k->code_ttl * 1000)));
    rc = write_with_audit(k, "generateVerificationCode", d.root, o.etag, false, &stored, &err);
    if (rc == DPS_ERR_PRECONDITION)
        rc = dps_error_set(&err, DPS_ERR_PRECONDITION,
                           "certificate '%s' changed while the code was made: try again", k->name);
out:
    if (rc == DPS_OK)
        reply_object(k, &stored, true);
    else
        reply_fail(k, rc, err.msg);
    ca_doc_release(&d);
    store_object_release(&o);
    store_object_release(&stored);
}

/* The proof certificate of a verify body. */
static int proof_of(struct ca_call *k, X509 **out, struct dps_error *err)
{
    json_t *body = NULL, *v;
    int rc;

    if ((rc = model_json_load(k->req->body, k->req->body_len, &body, err)) != DPS_OK)
        return rc;
    v = json_object_get(body, "certificate");
    if (!json_is_object(body) || !json_is_string(v) || json_string_length(v) == 0) {
        rc = dps_error_set(err, DPS_ERR_INVAL,
                           "'certificate' is required: the verification certificate (PEM or "
                           "base64) whose CN is the verification code");
    } else {
        rc = x509_info_decode(json_string_value(v), json_string_length(v), out, err);
        if (rc != DPS_OK) {
            char msg[sizeof(err->msg)];

            snprintf(msg, sizeof(msg), "%s", err->msg);
            rc = dps_error_set(err, rc == DPS_ERR_NOMEM ? rc : DPS_ERR_INVAL, "'certificate': %s",
                               msg);
        }
    }
    json_decref(body);
    return rc;
}

static void op_verify(struct ca_call *k)
{
    struct store_object o = {0}, stored = {0};
    struct ca_doc d = {0};
    struct dps_error err = {0};
    X509 *proof = NULL;
    json_t *ver;
    const char *code;
    char iso[TIMEUTIL_ISO_SIZE];
    int64_t now = now_ms();
    int rc;

    if ((rc = load(k, &o, &d, &err)) != DPS_OK)
        goto out;
    ver = json_object_get(d.root, "verification");
    code = json_string_value(json_object_get(ver, "code"));
    if (!code) {
        rc = dps_error_set(&err, DPS_ERR_INVAL,
                           "certificate '%s' has no pending verification code (codes are single "
                           "use): generate one with generateVerificationCode",
                           k->name);
        goto refused;
    }
    if (json_integer_value(json_object_get(ver, "expiresMs")) < now) {
        iso_ms(json_integer_value(json_object_get(ver, "expiresMs")), iso);
        rc = dps_error_set(&err, DPS_ERR_INVAL,
                           "the verification code of certificate '%s' expired at %s: generate a "
                           "new one",
                           k->name, iso);
        goto refused;
    }
    if ((rc = proof_of(k, &proof, &err)) != DPS_OK)
        goto refused;
    if ((rc = ca_proof_check(proof, d.cert, code, now / 1000, &err)) != DPS_OK)
        goto refused;
    /* The code is used up: it is removed in the same write that marks the CA verified. */
    json_object_del(d.root, "verification");
    json_object_set_new(d.props, "isVerified", json_true());
    iso_ms(now, iso);
    json_object_set_new(d.props, "verifiedDateTimeUtc", json_string(iso));
    rc = write_with_audit(k, "verify", d.root, o.etag, false, &stored, &err);
    if (rc == DPS_ERR_PRECONDITION)
        rc = dps_error_set(&err, DPS_ERR_PRECONDITION,
                           "certificate '%s' changed during the verification (a new code, or "
                           "another verify): generate a new code and try again",
                           k->name);
    goto out;
refused:
    if (rc == DPS_ERR_INVAL)
        audit_refusal(k, "verify", err.msg);
out:
    if (rc == DPS_OK)
        reply_object(k, &stored, false);
    else
        reply_fail(k, rc, err.msg);
    X509_free(proof);
    ca_doc_release(&d);
    store_object_release(&o);
    store_object_release(&stored);
}

/* ---- dispatch ---- */

static void handle(struct http_request *req, void *arg)
{
    const struct ca_route_arg *ra = arg;
    struct ca_call k = {
        .req = req, .name = http_request_param(req, "name"), .code_ttl = ra->api->code_ttl};
    struct dps_error err = {0};
    int rc;

    rc = api_call_begin(&ra->api->stores, req, STORE_RIGHT_SERVICE_CONFIG, &k.store, &k.who, &err);
    if (rc != DPS_OK) {
        reply_fail(&k, rc, err.msg);
        return;
    }
    if (k.name && ra->op != CA_PUT && name_check(k.name, &err) != DPS_OK) {
        http_reply_error(req, 404, 0, "certificate '%.64s' not found", k.name);
        return;
    }
    switch (ra->op) {
    case CA_LIST:
        op_list(&k);
        break;
    case CA_GET:
        op_get(&k);
        break;
    case CA_PUT:
        op_put(&k);
        break;
    case CA_DELETE:
        op_delete(&k);
        break;
    case CA_CODE:
        op_code(&k);
        break;
    case CA_VERIFY:
        op_verify(&k);
        break;
    }
}

int ca_api_new(const struct config *cfg, struct ca_api **out, struct dps_error *err)
{
    static const struct {
        const char *method, *pattern;
        enum ca_op op;
    } table[NROUTES] = {
        {"GET", "/certificates", CA_LIST},
        {"GET", "/certificates/{name}", CA_GET},
        {"PUT", "/certificates/{name}", CA_PUT},
        {"DELETE", "/certificates/{name}", CA_DELETE},
        {"POST", "/certificates/{name}/generateVerificationCode", CA_CODE},
        {"POST", "/certificates/{name}/verify", CA_VERIFY},
    };
    struct ca_api *api = xcalloc(1, sizeof(*api));
    int rc;

    if ((rc = api_stores_init(&api->stores, cfg, "the certificates API", err)) != DPS_OK) {
        free(api);
        return rc;
    }
    api->code_ttl = cfg->verification_code_ttl > 0 ? cfg->verification_code_ttl : CA_API_CODE_TTL;
    for (size_t i = 0; i < NROUTES; i++) {
        api->args[i] = (struct ca_route_arg){api, table[i].op};
        api->routes[i] =
            (struct http_route){table[i].method, table[i].pattern, handle, &api->args[i]};
    }
    *out = api;
    return DPS_OK;
}

void ca_api_add_routes(struct ca_api *api, struct http_router *router)
{
    http_router_add(router, api->routes, NROUTES);
}

void ca_api_free(struct ca_api *api)
{
    if (!api)
        return;
    api_stores_release(&api->stores);
    free(api);
}
