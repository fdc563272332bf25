/* SPDX-License-Identifier: MIT */
/*
 * libdps's service client: turns each call into one request of the service
 * REST API (path, headers, SAS token) and each answer into a result or an
 * error with the server's message. JSON bodies pass through as text; only
 * error bodies, query specifications and the attestation helpers touch
 * jansson.
 */
#include "core/common.h"
#include "dps/service.h"

#include <errno.h>
#include <limits.h>
#include <sys/stat.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "client/https.h"
#include "client/service_call.h"
#include "core/b64.h"
#include "core/connstr.h"
#include "core/pki.h"
#include "core/sas.h"

/* Lifetime of the token sent with each request, as the Azure SDKs use. */
#define TOKEN_TTL 3600
/* Largest PEM file the attestation helpers read. */
#define PEM_FILE_MAX (1024 * 1024)
#define TTL_MAX 31536000L

struct dps_service_client {
    struct connstr *cs;
    char *api_version;
    struct https_conn *conn;
    int last_status;
};

/* Splits "host", "host:port" or "[v6]:port" into a heap host and a port (0 = none). */
static int split_host_port(const char *s, const char *what, char **host, int *port,
                           struct dps_error *err)
{
    const char *colon, *end;
    char *h;
    long p = 0;

    if (s[0] == '[') {
        end = strchr(s, ']');
        if (!end || (end[1] && end[1] != ':'))
            return dps_error_set(err, DPS_ERR_INVAL, "%s '%s' is not host:port", what, s);
        h = strndup(s + 1, (size_t)(end - s - 1));
        colon = end[1] ? end + 1 : NULL;
    } else {
        colon = strrchr(s, ':');
        if (colon && strchr(s, ':') != colon)
            return dps_error_set(err, DPS_ERR_INVAL, "%s '%s' has an IPv6 address without brackets",
                                 what, s);
        h = strndup(s, colon ? (size_t)(colon - s) : strlen(s));
    }
    if (!h)
        return dps_error_set(err, DPS_ERR_NOMEM, "out of memory");
    if (colon) {
        char *e;

        errno = 0;
        p = strtol(colon + 1, &e, 10);
        if (errno || e == colon + 1 || *e || p < 1 || p > 65535) {
            free(h);
            return dps_error_set(err, DPS_ERR_INVAL, "%s '%s' has a bad port", what, s);
        }
    }
    if (!*h) {
        free(h);
        return dps_error_set(err, DPS_ERR_INVAL, "%s '%s' has no host", what, s);
    }
    *host = h;
    *port = (int)p;
    return DPS_OK;
}

int dps_service_client_new(const char *connection_string, const struct dps_service_options *opts,
                           struct dps_service_client **out, struct dps_error *err)
{
    static const struct dps_service_options defaults;
    struct dps_service_client *c = NULL;
    struct https_options ho = {0};
    char *host = NULL, *connect_host = NULL;
    int port = 0, connect_port = 0, rc;

    if (!opts)
        opts = &defaults;
    if (!connection_string)
        return dps_error_set(err, DPS_ERR_INVAL, "no connection string given");
    c = calloc(1, sizeof(*c));
    if (!c)
        return dps_error_set(err, DPS_ERR_NOMEM, "out of memory");
    rc = connstr_parse(connection_string, strlen(connection_string), &c->cs, err);
    if (rc != DPS_OK)
        goto out;
    rc = split_host_port(c->cs->host_name, "HostName", &host, &port, err);
    if (rc != DPS_OK)
        goto out;
    if (opts->connect_to) {
        rc =
            split_host_port(opts->connect_to, "connect address", &connect_host, &connect_port, err);
        if (rc != DPS_OK)
            goto out;
    }
    if (opts->api_version && (!*opts->api_version || strpbrk(opts->api_version, "&# \r\n"))) {
        rc = dps_error_set(err, DPS_ERR_INVAL, "api-version '%s' is not valid", opts->api_version);
        goto out;
    }
    c->api_version = strdup(opts->api_version ? opts->api_version : DPS_SERVICE_API_VERSION);
    if (!c->api_version) {
        rc = dps_error_set(err, DPS_ERR_NOMEM, "out of memory");
        goto out;
    }
    ho.host = host;
    ho.connect_host = connect_host;
    ho.port = connect_host ? (connect_port ? connect_port : 443) : port;
    ho.ca_file = opts->ca_file;
    ho.timeout_ms = opts->timeout_ms;
    ho.max_response = opts->max_response;
    rc = https_conn_new(&ho, &c->conn, err);
    if (rc != DPS_OK)
        goto out;
    *out = c;
    c = NULL;
out:
    dps_service_client_free(c);
    free(host);
    free(connect_host);
    return rc;
}

void dps_service_client_free(struct dps_service_client *c)
{
    if (!c)
        return;
    https_conn_free(c->conn);
    connstr_free(c->cs);
    free(c->api_version);
    free(c);
}

const char *dps_service_client_host(const struct dps_service_client *c)
{
    return c->cs->host_name;
}

int dps_service_client_last_status(const struct dps_service_client *c)
{
    return c->last_status;
}

int dps_service_token(const char *connection_string, long ttl_seconds, char **out,
                      struct dps_error *err)
{
    struct connstr *cs = NULL;
    char *token = NULL;
    int rc;

    if (ttl_seconds < 1 || ttl_seconds > TTL_MAX)
        return dps_error_set(err, DPS_ERR_INVAL, "token lifetime '%ld' is not 1 to %ld seconds",
                             ttl_seconds, TTL_MAX);
    if (!connection_string)
        return dps_error_set(err, DPS_ERR_INVAL, "no connection string given");
    rc = connstr_parse(connection_string, strlen(connection_string), &cs, err);
    if (rc != DPS_OK)
        return rc;
    if (sas_token_build(cs->host_name, cs->key, cs->key_name, (int64_t)time(NULL) + ttl_seconds,
                        &token, err) != SAS_OK) {
        rc = err && err->code == DPS_ERR_NOMEM ? DPS_ERR_NOMEM : DPS_ERR_INVAL;
        goto out;
    }
    *out = token;
    rc = DPS_OK;
out:
    connstr_free(cs);
    return rc;
}

void dps_query_page_release(struct dps_query_page *page)
{
    if (!page)
        return;
    free(page->items);
    free(page->continuation);
    free(page->item_type);
    memset(page, 0, sizeof(*page));
}

/* ---- requests ---- */

/* One request: what to send, beyond method and path. */
struct call {
    const char *method;
    const char *prefix; /* "/enrollments" */
    const char *id;     /* percent-encoded after prefix and '/'; NULL for none */
    const char *suffix; /* "/attestationmechanism", "/query", "?failed=true" or NULL */
    const char *body;   /* JSON; NULL for no body */
    size_t body_len;
    const char *if_match;
    const struct dps_query *query; /* adds the paging headers */
};

static int status_code(int status)
{
    switch (status) {
    case 401:
        return DPS_ERR_AUTH;
    case 403:
        return DPS_ERR_FORBIDDEN;
    case 404:
        return DPS_ERR_NOT_FOUND;
    case 409:
        return DPS_ERR_CONFLICT;
    case 412:
        return DPS_ERR_PRECONDITION;
    case 413:
        return DPS_ERR_TOO_LARGE;
    default:
        return status >= 500 ? DPS_ERR_INTERNAL : DPS_ERR_INVAL;
    }
}

/* Fills err from an error answer: the server's message when it gave one. */
static int answer_error(const struct https_response *r, struct dps_error *err)
{
    int code = status_code(r->status);
    json_t *root = json_loadb(r->body, r->body_len, 0, NULL);
    json_t *m = NULL;

    if (json_is_object(root)) {
        m = json_object_get(root, "message");
        if (!json_is_string(m))
            m = json_object_get(root, "Message");
    }
    if (json_is_string(m) && json_string_length(m) > 0)
        dps_error_set(err, code, "%s", json_string_value(m));
    else
        dps_error_set(err, code, "server answered %d (%s)", r->status, dps_strerror(code));
    json_decref(root);
    return code;
}

static int build_target(const struct dps_service_client *c, const struct call *k, char **out)
{
    char *id = NULL, *ver = NULL, *t = NULL;
    size_t len;
    int rc = DPS_ERR_NOMEM;

    if (k->id && pct_encode(k->id, strlen(k->id), 0, &id) != DPS_OK)
        goto out;
    if (pct_encode(c->api_version, strlen(c->api_version), 0, &ver) != DPS_OK)
        goto out;
    len = strlen(k->prefix) + (id ? strlen(id) + 1 : 0) + (k->suffix ? strlen(k->suffix) : 0) +
          strlen(ver) + 16;
    t = malloc(len);
    if (!t)
        goto out;
    /* A suffix may carry its own query parameters ("?failed=true"). */
    snprintf(t, len, "%s%s%s%s%sapi-version=%s", k->prefix, id ? "/" : "", id ? id : "",
             k->suffix ? k->suffix : "", k->suffix && strchr(k->suffix, '?') ? "&" : "?", ver);
    *out = t;
    rc = DPS_OK;
out:
    free(id);
    free(ver);
    return rc;
}

/*
 * Sends one call and checks the answer. resp is filled only on a 2xx
 * answer; any other answer becomes an error with the server's message.
 */
static int call_send(struct dps_service_client *c, const struct call *k,
                     struct https_response *resp, struct dps_error *err)
{
    struct https_header h[8];
    struct https_response r = {0};
    char *target = NULL, *token = NULL, page_size[16];
    size_t n = 0;
    int rc;

    if (k->id && !*k->id)
        return dps_error_set(err, DPS_ERR_INVAL, "id is empty");
    if (k->id && strlen(k->id) > 1024)
        return dps_error_set(err, DPS_ERR_INVAL, "id '%.32s...' is too long", k->id);
    if (build_target(c, k, &target) != DPS_OK)
        return dps_error_set(err, DPS_ERR_NOMEM, "out of memory");
    /* A fresh token per request, as the SDKs do, so a long-lived client never sends a stale one. */
    if (sas_token_build(c->cs->host_name, c->cs->key, c->cs->key_name,
                        (int64_t)time(NULL) + TOKEN_TTL, &token, err) != SAS_OK) {
        rc = err && err->code == DPS_ERR_NOMEM ? DPS_ERR_NOMEM : DPS_ERR_INVAL;
        goto out;
    }
    h[n++] = (struct https_header){"Authorization", token};
    h[n++] = (struct https_header){"Accept", "application/json"};
    h[n++] = (struct https_header){"User-Agent", "libdps/" DPS_VERSION};
    if (k->body && k->body_len)
        h[n++] = (struct https_header){"Content-Type", "application/json; charset=utf-8"};
    if (k->if_match)
        h[n++] = (struct https_header){"If-Match", k->if_match};
    if (k->query && k->query->page_size > 0) {
        snprintf(page_size, sizeof(page_size), "%d", k->query->page_size);
        h[n++] = (struct https_header){"x-ms-max-item-count", page_size};
    }
    if (k->query && k->query->continuation && *k->query->continuation)
        h[n++] = (struct https_header){"x-ms-continuation", k->query->continuation};

    c->last_status = 0;
    rc = https_request(c->conn, k->method, target, h, n, k->body ? k->body : NULL,
                       k->body ? k->body_len : 0, &r, err);
    if (rc != DPS_OK)
        goto out;
    c->last_status = r.status;
    if (r.status < 200 || r.status > 299) {
        rc = answer_error(&r, err);
        goto out;
    }
    *resp = r;
    memset(&r, 0, sizeof(r));
    rc = DPS_OK;
out:
    https_response_release(&r);
    if (token) {
        OPENSSL_cleanse(token, strlen(token));
        free(token);
    }
    free(target);
    return rc;
}

/* A call whose answer body is the result. */
static int call_body(struct dps_service_client *c, const struct call *k, char **out,
                     struct dps_error *err)
{
    struct https_response r = {0};
    int rc = call_send(c, k, &r, err);

    if (rc != DPS_OK)
        return rc;
    *out = r.body; /* always NUL-terminated, possibly empty */
    r.body = NULL;
    https_response_release(&r);
    return DPS_OK;
}

/* A call whose answer body is not needed (DELETE). */
static int call_none(struct dps_service_client *c, const struct call *k, struct dps_error *err)
{
    struct https_response r = {0};
    int rc = call_send(c, k, &r, err);

    https_response_release(&r);
    return rc;
}

int service_call(struct dps_service_client *c, const char *method, const char *prefix,
                 const char *id, const char *suffix, const char *body, const char *if_match,
                 char **out, struct dps_error *err)
{
    struct call k = {method, prefix, id, suffix, body, body ? strlen(body) : 0, if_match, NULL};

    return out ? call_body(c, &k, out, err) : call_none(c, &k, err);
}

static int check_body(const char *json, struct dps_error *err)
{
    if (!json)
        return dps_error_set(err, DPS_ERR_INVAL, "no json body given");
    return DPS_OK;
}

static int obj_put(struct dps_service_client *c, const char *prefix, const char *id,
                   const char *json, const char *if_match, char **out, struct dps_error *err)
{
    struct call k = {"PUT", prefix, id, NULL, json, json ? strlen(json) : 0, if_match, NULL};
    int rc = check_body(json, err);

    if (rc == DPS_OK && !id)
        rc = dps_error_set(err, DPS_ERR_INVAL, "no id given");
    return rc ? rc : call_body(c, &k, out, err);
}

static int obj_get(struct dps_service_client *c, const char *prefix, const char *id,
                   const char *suffix, char **out, struct dps_error *err)
{
    /* The attestation call is a POST with an empty body, the GETs have none. */
    struct call k = {suffix ? "POST" : "GET", prefix, id,   suffix,
                     suffix ? "" : NULL,      0,      NULL, NULL};

    if (!id)
        return dps_error_set(err, DPS_ERR_INVAL, "no id given");
    return call_body(c, &k, out, err);
}

static int obj_delete(struct dps_service_client *c, const char *prefix, const char *id,
                      const char *if_match, struct dps_error *err)
{
    struct call k = {"DELETE", prefix, id, NULL, NULL, 0, if_match, NULL};

    if (!id)
        return dps_error_set(err, DPS_ERR_INVAL, "no id given");
    return call_none(c, &k, err);
}

static int obj_bulk(struct dps_service_client *c, const char *prefix, const char *json, char **out,
                    struct dps_error *err)
{
    struct call k = {"POST", prefix, NULL, NULL, json, json ? strlen(json) : 0, NULL, NULL};
    int rc = check_body(json, err);

    return rc ? rc : call_body(c, &k, out, err);
}

/* A paged call: the answer's body is the page's array, its headers the continuation. */
static int call_page(struct dps_service_client *c, const struct call *k,
                     struct dps_query_page *page, struct dps_error *err)
{
    struct dps_query_page p = {0};
    struct https_response r = {0};
    const char *h;
    int rc;

    rc = call_send(c, k, &r, err);
    if (rc != DPS_OK)
        goto out;
    p.items = r.body;
    r.body = NULL;
    /* An empty continuation is the same as none: following it would loop. */
    h = https_response_header(&r, "x-ms-continuation");
    if (h && *h && !(p.continuation = strdup(h)))
        rc = DPS_ERR_NOMEM;
    h = https_response_header(&r, "x-ms-item-type");
    if (h && !(p.item_type = strdup(h)))
        rc = DPS_ERR_NOMEM;
    if (rc != DPS_OK) {
        rc = dps_error_set(err, DPS_ERR_NOMEM, "out of memory");
        goto out;
    }
    *page = p;
    memset(&p, 0, sizeof(p));
out:
    dps_query_page_release(&p);
    https_response_release(&r);
    return rc;
}

static int obj_query(struct dps_service_client *c, const char *prefix, const char *id,
                     const struct dps_query *q, struct dps_query_page *page, struct dps_error *err)
{
    static const struct dps_query first;
    struct call k = {"POST", prefix, id, "/query", NULL, 0, NULL, NULL};
    json_t *spec = NULL;
    char *body = NULL;
    int rc;

    if (!q)
        q = &first;
    k.query = q;
    spec = json_pack("{s:s}", "query", q->query ? q->query : "SELECT *");
    body = spec ? json_dumps(spec, JSON_COMPACT) : NULL;
    if (!body) {
        rc = dps_error_set(err, DPS_ERR_NOMEM, "out of memory");
        goto out;
    }
    k.body = body;
    k.body_len = strlen(body);
    rc = call_page(c, &k, page, err);
out:
    free(body);
    json_decref(spec);
    return rc;
}

#define ENROLLMENTS "/enrollments"
#define GROUPS "/enrollmentGroups"
#define REGISTRATIONS "/registrations"
#define POLICIES "/policies"
#define ATTESTATION "/attestationmechanism"

int dps_enrollment_put(struct dps_service_client *c, const char *registration_id, const char *json,
                       const char *if_match, char **out, struct dps_error *err)
{
    return obj_put(c, ENROLLMENTS, registration_id, json, if_match, out, err);
}

int dps_enrollment_get(struct dps_service_client *c, const char *registration_id, char **out,
                       struct dps_error *err)
{
    return obj_get(c, ENROLLMENTS, registration_id, NULL, out, err);
}

int dps_enrollment_delete(struct dps_service_client *c, const char *registration_id,
                          const char *if_match, struct dps_error *err)
{
    return obj_delete(c, ENROLLMENTS, registration_id, if_match, err);
}

int dps_enrollment_attestation_get(struct dps_service_client *c, const char *registration_id,
                                   char **out, struct dps_error *err)
{
    return obj_get(c, ENROLLMENTS, registration_id, ATTESTATION, out, err);
}

int dps_enrollment_query(struct dps_service_client *c, const struct dps_query *q,
                         struct dps_query_page *page, struct dps_error *err)
{
    return obj_query(c, ENROLLMENTS, NULL, q, page, err);
}

int dps_enrollment_bulk(struct dps_service_client *c, const char *json, char **out,
                        struct dps_error *err)
{
    return obj_bulk(c, ENROLLMENTS, json, out, err);
}

int dps_enrollment_group_put(struct dps_service_client *c, const char *group_id, const char *json,
                             const char *if_match, char **out, struct dps_error *err)
{
    return obj_put(c, GROUPS, group_id, json, if_match, out, err);
}

int dps_enrollment_group_get(struct dps_service_client *c, const char *group_id, char **out,
                             struct dps_error *err)
{
    return obj_get(c, GROUPS, group_id, NULL, out, err);
}

int dps_enrollment_group_delete(struct dps_service_client *c, const char *group_id,
                                const char *if_match, struct dps_error *err)
{
    return obj_delete(c, GROUPS, group_id, if_match, err);
}

int dps_enrollment_group_attestation_get(struct dps_service_client *c, const char *group_id,
                                         char **out, struct dps_error *err)
{
    return obj_get(c, GROUPS, group_id, ATTESTATION, out, err);
}

int dps_enrollment_group_query(struct dps_service_client *c, const struct dps_query *q,
                               struct dps_query_page *page, struct dps_error *err)
{
    return obj_query(c, GROUPS, NULL, q, page, err);
}

int dps_enrollment_group_bulk(struct dps_service_client *c, const char *json, char **out,
                              struct dps_error *err)
{
    return obj_bulk(c, GROUPS, json, out, err);
}

int dps_registration_get(struct dps_service_client *c, const char *registration_id, char **out,
                         struct dps_error *err)
{
    return obj_get(c, REGISTRATIONS, registration_id, NULL, out, err);
}

int dps_registration_delete(struct dps_service_client *c, const char *registration_id,
                            const char *if_match, struct dps_error *err)
{
    return obj_delete(c, REGISTRATIONS, registration_id, if_match, err);
}

int dps_registration_query(struct dps_service_client *c, const char *group_id,
                           const struct dps_query *q, struct dps_query_page *page,
                           struct dps_error *err)
{
    if (!group_id)
        return dps_error_set(err, DPS_ERR_INVAL, "no enrollment group id given");
    return obj_query(c, REGISTRATIONS, group_id, q, page, err);
}

int dps_registration_attempts(struct dps_service_client *c, const char *registration_id,
                              const struct dps_query *q, struct dps_query_page *page,
                              struct dps_error *err)
{
    static const struct dps_query first;
    struct call k = {"GET", REGISTRATIONS, registration_id, "/attempts", NULL, 0, NULL, NULL};

    if (!registration_id)
        return dps_error_set(err, DPS_ERR_INVAL, "no registration id given");
    k.query = q ? q : &first;
    return call_page(c, &k, page, err);
}

int dps_attempts_list(struct dps_service_client *c, bool failed_only, const struct dps_query *q,
                      struct dps_query_page *page, struct dps_error *err)
{
    static const struct dps_query first;
    struct call k = {"GET", "/attempts", NULL, failed_only ? "?failed=true" : NULL,
                     NULL,  0,           NULL, NULL};

    k.query = q ? q : &first;
    return call_page(c, &k, page, err);
}

int dps_policy_list(struct dps_service_client *c, char **out, struct dps_error *err)
{
    struct call k = {"GET", POLICIES, NULL, NULL, NULL, 0, NULL, NULL};

    return call_body(c, &k, out, err);
}

int dps_policy_get(struct dps_service_client *c, const char *name, char **out,
                   struct dps_error *err)
{
    return obj_get(c, POLICIES, name, NULL, out, err);
}

int dps_policy_put(struct dps_service_client *c, const char *name, const char *json,
                   const char *if_match, char **out, struct dps_error *err)
{
    return obj_put(c, POLICIES, name, json, if_match, out, err);
}

int dps_policy_delete(struct dps_service_client *c, const char *name, const char *if_match,
                      struct dps_error *err)
{
    return obj_delete(c, POLICIES, name, if_match, err);
}

/* ---- attestation helpers ---- */

static int dump(json_t *root, char **out, struct dps_error *err)
{
    char *s = root ? json_dumps(root, JSON_COMPACT) : NULL;

    json_decref(root);
    if (!s)
        return dps_error_set(err, DPS_ERR_NOMEM, "out of memory");
    *out = s;
    return DPS_OK;
}

/* Reads the first certificate of a PEM file and returns it re-encoded as PEM text. */
static int read_cert_pem(const char *path, enum dps_x509_role role, char **out,
                         struct dps_error *err)
{
    struct stat st;
    BIO *in = NULL;
    X509 *x = NULL;
    int rc;

    if (stat(path, &st) != 0)
        return dps_error_set(err, DPS_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
    if (st.st_size > PEM_FILE_MAX)
        return dps_error_set(err, DPS_ERR_TOO_LARGE, "certificate file '%s' is over %d bytes", path,
                             PEM_FILE_MAX);
    in = BIO_new_file(path, "r");
    if (!in) {
        rc = dps_error_set(err, DPS_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
        goto out;
    }
    x = PEM_read_bio_X509(in, NULL, NULL, NULL);
    if (!x) {
        rc = dps_error_set(err, DPS_ERR_INVAL, "'%s' holds no PEM certificate", path);
        goto out;
    }
    if (role == DPS_X509_SIGNING && X509_check_ca(x) == 0) {
        rc = dps_error_set(err, DPS_ERR_INVAL,
                           "'%s' is not a CA certificate: a signing certificate must be a root "
                           "or intermediate CA",
                           path);
        goto out;
    }
    *out = pki_cert_pem(x);
    rc = *out ? DPS_OK : dps_error_set(err, DPS_ERR_NOMEM, "out of memory");
out:
    X509_free(x);
    BIO_free(in);
    return rc;
}

int dps_attestation_x509_from_files(enum dps_x509_role role, const char *primary_file,
                                    const char *secondary_file, char **out, struct dps_error *err)
{
    char *pem[2] = {NULL, NULL};
    json_t *certs = NULL;
    int rc;

    if (!primary_file)
        return dps_error_set(err, DPS_ERR_INVAL, "no primary certificate file given");
    rc = read_cert_pem(primary_file, role, &pem[0], err);
    if (rc == DPS_OK && secondary_file)
        rc = read_cert_pem(secondary_file, role, &pem[1], err);
    if (rc != DPS_OK)
        goto out;
    certs = json_pack("{s:{s:s}}", "primary", "certificate", pem[0]);
    if (certs && pem[1] &&
        json_object_set_new(certs, "secondary", json_pack("{s:s}", "certificate", pem[1]))) {
        json_decref(certs);
        certs = NULL;
    }
    rc = dump(
        certs ? json_pack("{s:s,s:{s:o}}", "type", "x509", "x509",
                          role == DPS_X509_SIGNING ? "signingCertificates" : "clientCertificates",
                          certs)
              : NULL,
        out, err);
out:
    free(pem[0]);
    free(pem[1]);
    return rc;
}

int dps_attestation_ca_ref(const char *primary, const char *secondary, char **out,
                           struct dps_error *err)
{
    json_t *refs;

    if (!primary || !*primary || (secondary && !*secondary))
        return dps_error_set(err, DPS_ERR_INVAL, "ca reference name is empty");
    refs = json_pack("{s:s}", "primary", primary);
    if (refs && secondary && json_object_set_new(refs, "secondary", json_string(secondary))) {
        json_decref(refs);
        refs = NULL;
    }
    return dump(refs ? json_pack("{s:s,s:{s:o}}", "type", "x509", "x509", "caReferences", refs)
                     : NULL,
                out, err);
}

static int check_key(const char *key, const char *which, struct dps_error *err)
{
    size_t n;

    if (!b64_is_valid(key, strlen(key), 0, &n))
        return dps_error_set(err, DPS_ERR_INVAL, "%s key is not base64", which);
    if (n < 16 || n > 64)
        return dps_error_set(err, DPS_ERR_INVAL, "%s key is %zu bytes, not 16 to 64", which, n);
    return DPS_OK;
}

int dps_attestation_symmetric_key(const char *primary, const char *secondary, char **out,
                                  struct dps_error *err)
{
    json_t *keys;
    int rc;

    if ((primary && (rc = check_key(primary, "primary", err))) ||
        (secondary && (rc = check_key(secondary, "secondary", err))))
        return rc;
    keys = json_object();
    if (keys && primary && json_object_set_new(keys, "primaryKey", json_string(primary)))
        goto nomem;
    if (keys && secondary && json_object_set_new(keys, "secondaryKey", json_string(secondary)))
        goto nomem;
    return dump(keys ? json_pack("{s:s,s:o}", "type", "symmetricKey", "symmetricKey", keys) : NULL,
                out, err);
nomem:
    json_decref(keys);
    return dps_error_set(err, DPS_ERR_NOMEM, "out of memory");
}
