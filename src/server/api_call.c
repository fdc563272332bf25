/* SPDX-License-Identifier: MIT */
/*
 * The per-worker store connections, the SAS check and the error answers
 * shared by the service-listener APIs.
 */
#include "core/common.h"
#include "server/api_call.h"

#include <time.h>

#include "server/log.h"
#include "server/server.h"

int api_stores_init(struct api_stores *s, const struct config *cfg, const char *what,
                    struct dps_error *err)
{
    if (!cfg->store || !*cfg->store || !cfg->hostname || !*cfg->hostname)
        return dps_error_set(err, DPS_ERR_INVAL, "%s needs a store and a hostname", what);
    s->dsn = xstrdup(cfg->store);
    s->host = xstrdup(cfg->hostname);
    s->nworkers = cfg->workers > 0 ? (size_t)cfg->workers : 1;
    s->stores = xcalloc(s->nworkers, sizeof(*s->stores));
    return DPS_OK;
}

void api_stores_release(struct api_stores *s)
{
    for (size_t i = 0; i < s->nworkers; i++)
        store_close(s->stores[i]);
    free(s->stores);
    free(s->dsn);
    free(s->host);
    *s = (struct api_stores){0};
}

int api_call_begin(struct api_stores *s, struct http_request *req, uint32_t need,
                   struct store **store, struct auth_identity *who, struct dps_error *err)
{
    size_t i = req->worker ? (size_t)worker_index(req->worker) : 0;
    int rc;

    if (i >= s->nworkers)
        i = 0;
    if (!s->stores[i] && store_open(s->dsn, &s->stores[i], err) != DPS_OK)
        return DPS_ERR_STORE;
    rc = auth_check(auth_worker_cache(req->worker), s->stores[i],
                    http_request_header(req, "Authorization"), s->host, req->path, need,
                    (int64_t)time(NULL), who, err);
    if (rc != DPS_OK) {
        /* the token is not logged; the reason is, for the operator */
        log_msg(LOG_INFO, "%s %s refused (trackingId %s): %s", req->method, req->path,
                req->tracking_id, err->msg);
        return rc;
    }
    *store = s->stores[i];
    return DPS_OK;
}

int api_status_of(int code)
{
    switch (code) {
    case DPS_ERR_INVAL:
        return 400;
    case DPS_ERR_AUTH:
    case DPS_ERR_FORBIDDEN:
        return 401; /* Azure answers a missing right with 401 too */
    case DPS_ERR_NOT_FOUND:
        return 404;
    case DPS_ERR_CONFLICT:
        return 409;
    case DPS_ERR_PRECONDITION:
        return 412;
    case DPS_ERR_TOO_LARGE:
        return 413;
    default:
        return 500;
    }
}

void api_reply_fail(struct http_request *req, int code, int sub_code, const char *msg)
{
    int status = api_status_of(code);

    if (status >= 500) {
        log_msg(LOG_ERROR, "%s %s (trackingId %s): %s", req->method, req->path, req->tracking_id,
                msg);
        http_reply_error(req, status, 0, "internal error: see the dpsd log for trackingId %s",
                         req->tracking_id);
        return;
    }
    http_reply_error(req, status, sub_code, "%s", msg);
}
