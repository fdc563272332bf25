/* SPDX-License-Identifier: MIT */
/*
 * HTTP handlers of the device API and of the attempt history. Each worker
 * keeps its own store connection, trust store and group caches, reached by the
 * worker's index: no locks on the request path. Registration writes go
 * through the group commit (server/committer.h) and the reply is sent once
 * they are durable; without a committer they are synchronous on the worker.
 */
#include "core/common.h"
#include "server/device_api.h"

#include "core/regid.h"
#include "core/timeutil.h"
#include "server/api_call.h"
#include "server/auth.h"
#include "server/committer.h"
#include "server/json_text.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/provision.h"
#include "server/server.h"
#include "store/store.h"

struct device_worker {
    struct store *store;
    struct attest_cache *cache;
    struct provision_cache *groups;
};

struct device_api {
    struct provision *prov;
    struct committer *committer; /* borrowed; NULL: synchronous writes */
    char *dsn;
    char *hostname;
    struct device_worker *workers;
    size_t n_workers;
    struct http_route routes[5];
};

/* The worker's state, opened on first use; NULL (and a 500 sent) when the store cannot be opened.
 */
static struct device_worker *worker_state(struct device_api *api, struct http_request *req)
{
    struct device_worker *w;
    struct dps_error err = {0};
    size_t i = req->worker ? (size_t)worker_index(req->worker) : 0;

    if (i >= api->n_workers) {
        http_reply_error(req, 500, 0, "internal error: worker %zu out of range", i);
        return NULL;
    }
    w = &api->workers[i];
    if (!w->store && store_open(api->dsn, &w->store, &err) != DPS_OK) {
        log_msg(LOG_ERROR, "device api: %s", err.msg);
        http_reply_error(req, 500, 0, "the store is not available");
        return NULL;
    }
    if (!w->cache)
        w->cache = attest_cache_new();
    if (!w->groups)
        w->groups = provision_cache_new();
    return w;
}

/* Sends res; the caller still releases it. */
static void reply_result(struct http_request *req, struct provision_result *res)
{
    char n[16], *text;
    size_t len;

    if (res->status >= 400) {
        http_reply_error(req, res->status, res->error_code - res->status * 1000, "%s",
                         res->message);
        return;
    }
    if (res->status == 202) {
        snprintf(n, sizeof(n), "%d", res->retry_after > 0 ? res->retry_after : 1);
        http_reply_header(req, "Retry-After", n);
    }
    if (res->text) {
        http_reply_json(req, res->status, res->text, res->text_len);
        return;
    }
    text = json_text_dump(res->body, &len);
    if (!text) {
        http_reply_error(req, 500, 0, "cannot encode the reply");
        return;
    }
    http_reply_json(req, res->status, text, len);
    free(text);
}

/* Fills a registration request from an HTTP request; strings borrowed from req. */
static void request_from_http(struct http_request *req, struct device_worker *w,
                              struct provision_request *pr)
{
    const char *auth = http_request_header(req, "Authorization");

    memset(pr, 0, sizeof(*pr));
    pr->id_scope = http_request_param(req, "idScope");
    pr->registration_id = http_request_param(req, "registrationId");
    pr->chain = req->peer_chain;
    pr->peer = req->peer;
    if (auth && *auth) {
        pr->sas_token = auth;
        pr->sas_len = strlen(auth);
    }
    pr->body = req->body ? req->body : "";
    pr->body_len = req->body_len;
    pr->api_version = http_request_query(req, "api-version");
    pr->tracking_id = req->tracking_id;
    pr->cache = w->cache;
    pr->group_cache = w->groups;
    pr->store = w->store;
}

/* On the request's worker, once the registration is durable (or failed). */
static void register_done(void *arg, struct provision_result *res)
{
    metrics_count_registration_result(res);
    reply_result(arg, res);
}

static void handle_register(struct http_request *req, void *arg)
{
    struct device_api *api = arg;
    struct device_worker *w = worker_state(api, req);
    struct provision_request pr;
    struct provision_result res;

    if (!w)
        return;
    request_from_http(req, w, &pr);
    if (api->committer) {
        /* the reply is deferred until the record and attempt are committed */
        if (provision_register_async(api->prov, &pr, api->committer, req->worker, register_done,
                                     req) != DPS_OK)
            http_reply_error(req, 500, 0, "internal error: registration request is incomplete");
        return;
    }
    provision_register(api->prov, &pr, &res);
    metrics_count_registration_result(&res);
    reply_result(req, &res);
    provision_result_release(&res);
}

static void handle_status_lookup(struct http_request *req, void *arg)
{
    struct device_api *api = arg;
    struct device_worker *w = worker_state(api, req);
    struct provision_request pr;
    struct provision_result res;

    if (!w)
        return;
    request_from_http(req, w, &pr);
    provision_status_lookup(api->prov, &pr, &res);
    reply_result(req, &res);
    provision_result_release(&res);
}

static void handle_operation(struct http_request *req, void *arg)
{
    struct device_api *api = arg;
    struct device_worker *w = worker_state(api, req);
    struct provision_result res;

    if (!w)
        return;
    provision_operation(api->prov, w->store, http_request_param(req, "idScope"),
                        http_request_param(req, "registrationId"),
                        http_request_param(req, "operationId"), &res);
    reply_result(req, &res);
    provision_result_release(&res);
}

/* A positive integer no larger than max from a header or query value; def when absent or bad. */
static long bounded(const char *s, long def, long max)
{
    char *end;
    long v;

    if (!s || !*s)
        return def;
    v = strtol(s, &end, 10);
    if (*end || v <= 0)
        return def;
    return v > max ? max : v;
}

static json_t *attempt_to_json(const struct store_attempt *a)
{
    char when[TIMEUTIL_ISO_SIZE];
    struct timespec ts = {.tv_sec = (time_t)(a->time_ms / 1000),
                          .tv_nsec = (long)(a->time_ms % 1000) * 1000000L};
    json_t *o = json_object(), *detail = json_loads(a->json, 0, NULL);

    if (timeutil_format(&ts, when) != 0)
        when[0] = '\0';
    json_object_set_new(o, "attemptId", json_integer(a->id));
    json_object_set_new(o, "timeUtc", json_string(when));
    json_object_set_new(o, "registrationId", json_string(a->registration_id));
    json_object_set_new(o, "status", json_string(a->status));
    json_object_set_new(o, "success", json_boolean(a->success));
    if (a->tracking_id)
        json_object_set_new(o, "trackingId", json_string(a->tracking_id));
    if (json_is_object(detail)) {
        static const char *const keys[] = {"operationId", "apiVersion",        "attestationType",
                                           "enrollment",  "registrationState", "trace"};
        size_t i;
        json_t *v;

        for (i = 0; i < ARRAY_SIZE(keys); i++)
            if ((v = json_object_get(detail, keys[i])))
                json_object_set(o, keys[i], v);
    }
    json_decref(detail);
    return o;
}

/*
 * One page of attempts, newest first: those of registration_id, or of every
 * device when it is NULL; only the failures with ?failed=true. Paged with
 * x-ms-max-item-count and x-ms-continuation (the id of the last attempt
 * shown), like the service API's queries. Needs RegistrationStatusRead.
 */
static void reply_attempts(struct device_api *api, struct http_request *req,
                           const char *registration_id)
{
    struct device_worker *w = worker_state(api, req);
    struct store_attempt_list list = {0};
    struct auth_identity who;
    struct dps_error err = {0};
    const char *failed = http_request_query(req, "failed");
    long limit, before;
    json_t *arr;
    char next[32];
    size_t i;
    int rc;

    if (!w)
        return;
    rc = auth_check(auth_worker_cache(req->worker), w->store,
                    http_request_header(req, "Authorization"), api->hostname, req->path,
                    STORE_RIGHT_REGISTRATION_READ, (int64_t)time(NULL), &who, &err);
    if (rc != DPS_OK) {
        int status = api_status_of(rc);

        http_reply_error(req, status, status == 401 ? 2 : 0, "%s", err.msg);
        return;
    }
    if (registration_id && regid_check(REGID_REGISTRATION, registration_id, strlen(registration_id),
                                       REGID_ALLOW_UPPER, &err) != DPS_OK) {
        http_reply_error(req, 400, 4, "%s", err.msg);
        return;
    }
    if (failed && strcmp(failed, "true") != 0 && strcmp(failed, "false") != 0) {
        http_reply_error(req, 400, 4, "query parameter 'failed' must be true or false, not '%.32s'",
                         failed);
        return;
    }
    limit = bounded(http_request_header(req, "x-ms-max-item-count"), DEVICE_API_ATTEMPTS_DEFAULT,
                    DEVICE_API_ATTEMPTS_MAX);
    before = bounded(http_request_header(req, "x-ms-continuation"), 0, INT32_MAX);
    if (store_attempt_list(w->store, registration_id, failed && strcmp(failed, "true") == 0, before,
                           (size_t)limit, &list, &err) != DPS_OK) {
        log_msg(LOG_ERROR, "device api: %s", err.msg);
        http_reply_error(req, 500, 0, "the attempt history could not be read");
        return;
    }
    arr = json_array();
    for (i = 0; i < list.n; i++)
        json_array_append_new(arr, attempt_to_json(&list.items[i]));
    if (list.n == (size_t)limit && list.n > 0) {
        snprintf(next, sizeof(next), "%lld", (long long)list.items[list.n - 1].id);
        http_reply_header(req, "x-ms-continuation", next);
    }
    http_reply_header(req, "x-ms-item-type", "RegistrationAttempt");
    snprintf(next, sizeof(next), "%ld", limit);
    http_reply_header(req, "x-ms-max-item-count", next);
    store_attempt_list_release(&list);
    http_reply_jansson(req, 200, arr);
}

/* GET /registrations/{registrationId}/attempts: one device's history. */
static void handle_attempts(struct http_request *req, void *arg)
{
    reply_attempts(arg, req, http_request_param(req, "registrationId"));
}

/* GET /attempts: every device's history, for the operator's overview. */
static void handle_all_attempts(struct http_request *req, void *arg)
{
    reply_attempts(arg, req, NULL);
}

int device_api_new(const struct config *cfg, const char *id_scope, struct device_api **out,
                   struct dps_error *err)
{
    struct device_api *api;
    int rc;

    if (!cfg->store || !cfg->hostname || !id_scope)
        return dps_error_set(err, DPS_ERR_INVAL,
                             "the device api needs a store, a host name and an id scope");
    api = xcalloc(1, sizeof(*api));
    rc = provision_new(id_scope, cfg->linked_hub.items, cfg->linked_hub.n, cfg->region.items,
                       cfg->region.n, &api->prov, err);
    if (rc != DPS_OK) {
        free(api);
        return rc;
    }
    api->dsn = xstrdup(cfg->store);
    api->hostname = xstrdup(cfg->hostname);
    api->n_workers = cfg->workers > 0 ? (size_t)cfg->workers : 1;
    api->workers = xcalloc(api->n_workers, sizeof(*api->workers));
    api->routes[0] = (struct http_route){
        "PUT", "/{idScope}/registrations/{registrationId}/register", handle_register, api};
    api->routes[1] = (struct http_route){
        "GET", "/{idScope}/registrations/{registrationId}/operations/{operationId}",
        handle_operation, api};
    api->routes[2] = (struct http_route){"POST", "/{idScope}/registrations/{registrationId}",
                                         handle_status_lookup, api};
    api->routes[3] = (struct http_route){"GET", "/registrations/{registrationId}/attempts",
                                         handle_attempts, api};
    api->routes[4] = (struct http_route){"GET", "/attempts", handle_all_attempts, api};
    *out = api;
    return DPS_OK;
}

void device_api_set_committer(struct device_api *api, struct committer *cm)
{
    api->committer = cm;
}

void device_api_add_routes(struct device_api *api, struct http_router *router)
{
    /* The attempts routes first: their literal first segment must win over {idScope}. */
    http_router_add(router, &api->routes[3], 2);
    http_router_add(router, api->routes, 3);
}

void device_api_free(struct device_api *api)
{
    size_t i;

    if (!api)
        return;
    for (i = 0; i < api->n_workers; i++) {
        store_close(api->workers[i].store);
        attest_cache_free(api->workers[i].cache);
        provision_cache_free(api->workers[i].groups);
    }
    free(api->workers);
    provision_free(api->prov);
    free(api->dsn);
    free(api->hostname);
    free(api);
}
