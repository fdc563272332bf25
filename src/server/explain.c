/* SPDX-License-Identifier: MIT */
/*
 * The explain route: input checks, the dry run of the live registration
 * (provision_decide() and its write in a rolled-back store batch) and the
 * answer built from the attempt that run recorded. Secrets in the request (keys, tokens)
 * are wiped and never logged.
 */
#include "core/common.h"
#include "server/explain.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "core/attest.h"
#include "core/model.h"
#include "core/regid.h"
#include "core/sas.h"
#include "server/auth.h"
#include "server/log.h"
#include "server/server.h"

/* Lifetime of the token made from a symmetric key, as the device SDKs use. */
#define EXPLAIN_TOKEN_TTL 3600

struct explain {
    struct provision *prov;
    char *dsn;
    char *host;
    size_t nworkers;
    struct store **stores;
    struct http_route route;
};

static void set_string(json_t *o, const char *key, const char *value)
{
    if (value && *value)
        json_object_set_new(o, key, json_string(value));
}

/* The attempt the dry run appended: the newest of the id with our tracking id. */
static json_t *find_attempt(struct store *s, const struct explain_input *in)
{
    struct store_attempt_list list = {0};
    json_t *found = NULL;

    if (store_attempt_list(s, in->registration_id, false, 0, EXPLAIN_ATTEMPT_SEARCH, &list, NULL) !=
        DPS_OK)
        return NULL;
    for (size_t i = 0; i < list.n && !found; i++)
        if (list.items[i].tracking_id && strcmp(list.items[i].tracking_id, in->tracking_id) == 0)
            found = json_loads(list.items[i].json, 0, NULL);
    store_attempt_list_release(&list);
    return found;
}

int explain_run(const struct provision *p, struct store *s, const struct explain_input *in,
                json_t **out, struct dps_error *err)
{
    struct provision_request pr = {0};
    struct provision_result res = {0};
    struct provision_write *write = NULL;
    json_t *o, *attempt = NULL, *trace, *state, *answer;
    const char *decision;
    int rc;

    if (!p || !s || !in || !in->registration_id || !in->tracking_id)
        return dps_error_set(err, DPS_ERR_INVAL, "explain needs a registration id");
    pr.id_scope = provision_id_scope(p);
    pr.registration_id = in->registration_id;
    pr.chain = in->chain;
    pr.sas_token = in->sas_token;
    pr.sas_len = in->sas_token ? strlen(in->sas_token) : 0;
    pr.body = "";
    pr.tracking_id = in->tracking_id;
    pr.peer = in->peer;
    pr.now = in->now;
    pr.store = s;

    /*
     * The live path's two halves: the decision (reads only), then its write
     * into a batch that is rolled back once the attempt it wrote is read,
     * so the write lock is held only for the write.
     */
    if ((rc = provision_decide(p, &pr, &write, &res)) != DPS_OK)
        return dps_error_set(err, rc, "the registration could not be decided");
    if (write) {
        if ((rc = store_batch_begin(s, err)) != DPS_OK) {
            provision_write_free(write);
            return rc;
        }
        provision_write_finish(write, provision_write_run(s, write, err), &res);
        if (res.status == 200 || res.status == 401)
            attempt = find_attempt(s, in);
        store_batch_rollback(s);
        provision_write_free(write);
    }

    o = json_object();
    set_string(o, "registrationId", in->registration_id);
    set_string(o, "attestationType", in->chain ? "x509" : "symmetricKey");
    if (res.status == 200)
        decision = res.operation_status[0] ? res.operation_status : NULL;
    else if (res.status == 401)
        decision = "unauthorized";
    else
        decision = res.status >= 500 ? "error" : "rejected";
    set_string(o, "decision", decision ? decision : "unknown");
    json_object_set_new(o, "httpStatus", json_integer(res.status));
    answer = provision_result_json(&res);
    state = json_object_get(answer, "registrationState");
    if (res.status >= 400) {
        json_object_set_new(o, "errorCode", json_integer(res.error_code));
        set_string(o, "deviceMessage", res.message);
    } else if (json_is_object(state)) {
        json_t *v = json_object_get(state, "errorCode");

        if (v)
            json_object_set(o, "errorCode", v);
        set_string(o, "deviceMessage", json_string_value(json_object_get(state, "errorMessage")));
        set_string(o, "assignedHub", json_string_value(json_object_get(state, "assignedHub")));
        set_string(o, "deviceId", json_string_value(json_object_get(state, "deviceId")));
        set_string(o, "substatus", json_string_value(json_object_get(state, "substatus")));
    }
    if (json_is_object(json_object_get(attempt, "enrollment")))
        json_object_set(o, "enrollment", json_object_get(attempt, "enrollment"));
    trace = json_object_get(attempt, "trace");
    if (json_is_object(trace)) {
        set_string(o, "summary", json_string_value(json_object_get(trace, "summary")));
        json_object_set(o, "trace", trace);
    } else {
        /* refused before attestation: the device's message is the whole story */
        set_string(o, "summary", res.message);
        json_object_set_new(o, "trace", json_pack("{s:s,s:[]}", "summary", res.message, "steps"));
    }
    json_decref(attempt);
    json_decref(answer);
    provision_result_release(&res);
    *out = o;
    return DPS_OK;
}

/* ---- the request ---- */

/* Reads 1..ATTEST_CHAIN_MAX PEM certificates, leaf first. */
static int chain_parse(const char *pem, size_t len, STACK_OF(X509) * *out, struct dps_error *err)
{
    STACK_OF(X509) *chain = NULL;
    BIO *b;
    X509 *x;

    if (len > ATTEST_CHAIN_BYTES_MAX * 2)
        return dps_error_set(err, DPS_ERR_TOO_LARGE, "'certificateChain' is larger than %d bytes",
                             ATTEST_CHAIN_BYTES_MAX * 2);
    if (!(b = BIO_new_mem_buf(pem, (int)len)) || !(chain = sk_X509_new_null()))
        abort();
    while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
        if (sk_X509_num(chain) >= ATTEST_CHAIN_MAX) {
            X509_free(x);
            sk_X509_pop_free(chain, X509_free);
            BIO_free(b);
            return dps_error_set(err, DPS_ERR_INVAL,
                                 "'certificateChain' holds more than %d certificates",
                                 ATTEST_CHAIN_MAX);
        }
        sk_X509_push(chain, x);
    }
    ERR_clear_error();
    BIO_free(b);
    if (sk_X509_num(chain) == 0) {
        sk_X509_free(chain);
        return dps_error_set(err, DPS_ERR_INVAL,
                             "'certificateChain' holds no PEM certificate: give the device's "
                             "certificate first, then its intermediates");
    }
    *out = chain;
    return DPS_OK;
}

/* The leaf's subject CN (what the device would send as its registration id), or NULL. */
static char *leaf_cn(X509 *leaf)
{
    X509_NAME *n = X509_get_subject_name(leaf);
    int i = n ? X509_NAME_get_index_by_NID(n, NID_commonName, -1) : -1;
    const ASN1_STRING *s = i >= 0 ? X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i)) : NULL;
    int len = s ? ASN1_STRING_length(s) : 0;
    char *out;

    if (!s || len <= 0 || len > 256)
        return NULL;
    out = xmalloc((size_t)len + 1);
    memcpy(out, ASN1_STRING_get0_data(s), (size_t)len);
    out[len] = '\0';
    return out;
}

static const char *member_string(json_t *body, const char *name, bool *bad)
{
    json_t *v = json_object_get(body, name);

    if (!v || json_is_null(v))
        return NULL;
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        *bad = true;
        return NULL;
    }
    return json_string_value(v);
}

static void wipe_free(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

static struct store *worker_store(struct explain *e, struct http_request *req,
                                  struct dps_error *err)
{
    size_t i = req->worker ? (size_t)worker_index(req->worker) : 0;

    if (i >= e->nworkers)
        i = 0;
    if (!e->stores[i] && store_open(e->dsn, &e->stores[i], err) != DPS_OK)
        return NULL;
    return e->stores[i];
}

static void handle(struct http_request *req, void *arg)
{
    struct explain *e = arg;
    struct explain_input in = {.tracking_id = req->tracking_id};
    struct auth_identity who;
    struct dps_error err = {0};
    struct store *s;
    json_t *body = NULL, *out = NULL;
    const char *chain_pem, *id, *key, *token, *addr;
    unsigned char abuf[16];
    char *cn = NULL, *made = NULL;
    bool bad = false;
    int forms, rc;

    if (!(s = worker_store(e, req, &err))) {
        log_msg(LOG_ERROR, "explain: %s", err.msg);
        http_reply_error(req, 500, 0, "the store is not available");
        return;
    }
    rc = auth_check(auth_worker_cache(req->worker), s, http_request_header(req, "Authorization"),
                    e->host, req->path, STORE_RIGHT_ENROLLMENT_READ, (int64_t)time(NULL), &who,
                    &err);
    if (rc != DPS_OK) {
        log_msg(LOG_INFO, "%s %s refused (trackingId %s): %s", req->method, req->path,
                req->tracking_id, err.msg);
        if (rc == DPS_ERR_AUTH || rc == DPS_ERR_FORBIDDEN)
            http_reply_error(req, 401, 2, "%s", err.msg);
        else
            http_reply_error(req, 500, 0, "internal error: see the dpsd log for trackingId %s",
                             req->tracking_id);
        return;
    }
    if ((rc = model_json_load(req->body, req->body_len, &body, &err)) != DPS_OK) {
        http_reply_error(req, rc == DPS_ERR_TOO_LARGE ? 413 : 400, 4, "%s", err.msg);
        return;
    }
    if (!json_is_object(body)) {
        http_reply_error(req, 400, 4, "the body must be a json object");
        goto out;
    }
    chain_pem = member_string(body, "certificateChain", &bad);
    id = member_string(body, "registrationId", &bad);
    key = member_string(body, "symmetricKey", &bad);
    token = member_string(body, "sasToken", &bad);
    addr = member_string(body, "clientAddress", &bad);
    if (bad) {
        http_reply_error(req, 400, 4,
                         "'certificateChain', 'registrationId', 'symmetricKey', 'sasToken' and "
                         "'clientAddress' must be non-empty strings");
        goto out;
    }
    if (addr && inet_pton(AF_INET, addr, abuf) != 1 && inet_pton(AF_INET6, addr, abuf) != 1) {
        http_reply_error(req, 400, 4, "'clientAddress' must be an IPv4 or IPv6 address");
        goto out;
    }
    in.peer = addr;
    forms = !!chain_pem + !!key + !!token;
    if (forms != 1) {
        http_reply_error(req, 400, 4,
                         "give exactly one of 'certificateChain' (PEM, leaf first), "
                         "'symmetricKey' or 'sasToken' (with 'registrationId')");
        goto out;
    }
    if (chain_pem) {
        if ((rc = chain_parse(chain_pem, strlen(chain_pem), &in.chain, &err)) != DPS_OK) {
            http_reply_error(req, rc == DPS_ERR_TOO_LARGE ? 413 : 400, 4, "%s", err.msg);
            goto out;
        }
        if (!id && !(id = cn = leaf_cn(sk_X509_value(in.chain, 0)))) {
            http_reply_error(req, 400, 4,
                             "the device certificate has no subject CN, and no 'registrationId' "
                             "was given: the CN is the device's registration id");
            goto out;
        }
    } else if (!id) {
        http_reply_error(req, 400, 4, "'registrationId' is required with '%s'",
                         key ? "symmetricKey" : "sasToken");
        goto out;
    }
    if (key) {
        char sr[512];

        snprintf(sr, sizeof(sr), "%s/registrations/%s", provision_id_scope(e->prov), id);
        if (sas_token_build(sr, key, "registration", (int64_t)time(NULL) + EXPLAIN_TOKEN_TTL, &made,
                            NULL) != SAS_OK) {
            http_reply_error(req, 400, 4, "'symmetricKey' is not base64");
            goto out;
        }
        token = made;
    }
    in.registration_id = id;
    in.sas_token = token;
    if ((rc = explain_run(e->prov, s, &in, &out, &err)) != DPS_OK) {
        log_msg(LOG_ERROR, "explain (trackingId %s): %s", req->tracking_id, err.msg);
        http_reply_error(req, 500, 0, "internal error: see the dpsd log for trackingId %s",
                         req->tracking_id);
        goto out;
    }
    http_reply_jansson(req, 200, out);
out:
    if (in.chain)
        sk_X509_pop_free(in.chain, X509_free);
    free(cn);
    wipe_free(made);
    if (body) {
        /* the body may hold a key or a token */
        json_t *v = json_object_get(body, "symmetricKey");

        if (json_is_string(v))
            OPENSSL_cleanse((void *)json_string_value(v), json_string_length(v));
        v = json_object_get(body, "sasToken");
        if (json_is_string(v))
            OPENSSL_cleanse((void *)json_string_value(v), json_string_length(v));
    }
    json_decref(body);
}

int explain_new(const struct config *cfg, const char *id_scope, struct explain **out,
                struct dps_error *err)
{
    struct explain *e;
    int rc;

    if (!cfg->store || !*cfg->store || !cfg->hostname || !*cfg->hostname || !id_scope)
        return dps_error_set(err, DPS_ERR_INVAL,
                             "the explain API needs a store, a host name and an id scope");
    e = xcalloc(1, sizeof(*e));
    rc = provision_new(id_scope, cfg->linked_hub.items, cfg->linked_hub.n, cfg->region.items,
                       cfg->region.n, &e->prov, err);
    if (rc != DPS_OK) {
        free(e);
        return rc;
    }
    e->dsn = xstrdup(cfg->store);
    e->host = xstrdup(cfg->hostname);
    e->nworkers = cfg->workers > 0 ? (size_t)cfg->workers : 1;
    e->stores = xcalloc(e->nworkers, sizeof(*e->stores));
    e->route = (struct http_route){"POST", "/explain", handle, e};
    *out = e;
    return DPS_OK;
}

void explain_add_routes(struct explain *e, struct http_router *router)
{
    http_router_add(router, &e->route, 1);
}

void explain_free(struct explain *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->nworkers; i++)
        store_close(e->stores[i]);
    free(e->stores);
    provision_free(e->prov);
    free(e->dsn);
    free(e->host);
    free(e);
}
