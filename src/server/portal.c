/* SPDX-License-Identifier: MIT */
/*
 * GET /portal and GET /portal/... from the embedded assets, with the
 * security headers a page that holds a service key in its session needs,
 * and GET /service/info for its Overview. The service API the page calls
 * lives in server/service_api.c.
 */
#include "core/common.h"
#include "server/portal.h"

#include <string.h>
#include <time.h>

#include <jansson.h>

#include "server/auth.h"
#include "server/log.h"
#include "server/server.h"
#include "store/store.h"

enum { ROUTE_ASSET, ROUTE_INFO, NROUTES };

struct portal {
    char *dsn;
    char *host;
    char *info_json; /* built once: the answer never changes while dpsd runs */
    size_t info_len;
    size_t nworkers;
    struct store **stores; /* one per worker, opened on the worker's thread */
    struct http_route routes[NROUTES];
};

/* Longest asset path accepted, "/" separators included. */
#define PORTAL_PATH_MAX 256

const struct portal_asset *portal_asset_find(char *const *segments, size_t n)
{
    static char *const index_segments[] = {"index.html"};
    char path[PORTAL_PATH_MAX];
    size_t used = 0;

    if (n == 0) {
        segments = index_segments;
        n = 1;
    }
    for (size_t i = 0; i < n; i++) {
        const char *s = segments[i];
        size_t len = strlen(s);

        if (len == 0 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0 || strchr(s, '/'))
            return NULL;
        if (used + 1 + len >= sizeof(path))
            return NULL;
        path[used++] = '/';
        memcpy(path + used, s, len);
        used += len;
    }
    path[used] = '\0';
    for (const struct portal_asset *a = portal_assets; a->path; a++) {
        if (strcmp(a->path, path) == 0)
            return a;
    }
    return NULL;
}

/* The headers of every portal reply, success or not. */
static void security_headers(struct http_request *req)
{
    http_reply_header(req, "Content-Security-Policy", PORTAL_CSP);
    http_reply_header(req, "X-Content-Type-Options", "nosniff");
    http_reply_header(req, "X-Frame-Options", "DENY");
    http_reply_header(req, "Referrer-Policy", "no-referrer");
    http_reply_header(req, "Cross-Origin-Opener-Policy", "same-origin");
}

static void serve_asset(struct http_request *req, void *arg)
{
    const struct portal_asset *asset;

    (void)arg;
    security_headers(req);
    /* segments[0] is "portal": the router matched it. */
    asset = portal_asset_find(req->segments + 1, req->nsegments - 1);
    if (!asset) {
        http_reply_error(req, 404, 0, "no portal file at '%s'",
                         strlen(req->path) <= PORTAL_PATH_MAX ? req->path : "(too long)");
        return;
    }
    /*
     * Asset names carry no version, so a browser must not reuse a copy
     * without asking: after an upgrade index.html and app.js must match.
     */
    http_reply_header(req, "Cache-Control", "no-cache");
    http_reply(req, 200, asset->content_type, (const char *)asset->data, asset->len);
}

/* The worker's store connection, opened on first use; NULL with err filled when it cannot be. */
static struct store *worker_store(struct portal *p, struct http_request *req, struct dps_error *err)
{
    size_t i = req->worker ? (size_t)worker_index(req->worker) : 0;

    if (i >= p->nworkers)
        i = 0;
    if (!p->stores[i] && store_open(p->dsn, &p->stores[i], err) != DPS_OK)
        return NULL;
    return p->stores[i];
}

static void serve_info(struct http_request *req, void *arg)
{
    struct portal *p = arg;
    struct auth_identity who;
    struct dps_error err = {0};
    struct store *s;
    int rc;

    if (!(s = worker_store(p, req, &err))) {
        log_msg(LOG_ERROR, "GET /service/info (trackingId %s): %s", req->tracking_id, err.msg);
        http_reply_error(req, 500, 0, "internal error: see the dpsd log for trackingId %s",
                         req->tracking_id);
        return;
    }
    rc = auth_check(auth_worker_cache(req->worker), s, http_request_header(req, "Authorization"),
                    p->host, req->path, STORE_RIGHT_ENROLLMENT_READ, (int64_t)time(NULL), &who,
                    &err);
    if (rc == DPS_ERR_AUTH || rc == DPS_ERR_FORBIDDEN) {
        log_msg(LOG_INFO, "GET /service/info refused (trackingId %s): %s", req->tracking_id,
                err.msg);
        http_reply_error(req, rc == DPS_ERR_AUTH ? 401 : 403, 2, "%s", err.msg);
        return;
    }
    if (rc != DPS_OK) {
        log_msg(LOG_ERROR, "GET /service/info (trackingId %s): %s", req->tracking_id, err.msg);
        http_reply_error(req, 500, 0, "internal error: see the dpsd log for trackingId %s",
                         req->tracking_id);
        return;
    }
    http_reply_json(req, 200, p->info_json, p->info_len);
}

/* "https://HOST" or "https://HOST:PORT" when the port is not 443. */
static void endpoint(char *buf, size_t len, const char *host, int port)
{
    if (port == 443)
        snprintf(buf, len, "https://%s", host);
    else
        snprintf(buf, len, "https://%s:%d", host, port);
}

/* Builds the /service/info body into *out (owned); returns DPS_OK or the error code. */
static int info_build(const struct config *cfg, const char *id_scope, char **out,
                      struct dps_error *err)
{
    char addr[256], url[512];
    json_t *root = NULL, *hubs = NULL;
    char *s = NULL;
    int port, rc;

    if ((rc = config_split_listen(cfg->https_listen, addr, sizeof(addr), &port, err)) != DPS_OK)
        return rc;
    hubs = json_array();
    for (size_t i = 0; i < cfg->linked_hub.n; i++) {
        struct config_hub hub;
        json_t *o;

        if ((rc = config_hub_parse(cfg->linked_hub.items[i], &hub, err)) != DPS_OK)
            goto out;
        o = json_pack("{s:s,s:I}", "host", hub.host, "weight", (json_int_t)hub.weight);
        if (o && hub.location)
            json_object_set_new(o, "location", json_string(hub.location));
        config_hub_release(&hub);
        if (!o || json_array_append_new(hubs, o) != 0) {
            rc = dps_error_set(err, DPS_ERR_NOMEM, "cannot build the service information");
            goto out;
        }
    }
    endpoint(url, sizeof(url), cfg->hostname, port);
    root = json_pack("{s:s,s:s,s:s,s:s,s:O,s:s}", "idScope", id_scope, "hostName", cfg->hostname,
                     "serviceEndpoint", url, "deviceEndpoint", url, "linkedHubs", hubs, "version",
                     DPS_VERSION);
    if (!root || !(s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER))) {
        rc = dps_error_set(err, DPS_ERR_NOMEM, "cannot build the service information");
        goto out;
    }
    *out = s;
    rc = DPS_OK;
out:
    json_decref(hubs);
    json_decref(root);
    return rc;
}

int portal_new(const struct config *cfg, const char *id_scope, struct portal **out,
               struct dps_error *err)
{
    struct portal *p;
    char *info = NULL;
    int rc;

    if (!cfg->store || !*cfg->store || !cfg->hostname || !*cfg->hostname)
        return dps_error_set(err, DPS_ERR_INVAL, "the portal needs a store and a host name");
    if ((rc = info_build(cfg, id_scope, &info, err)) != DPS_OK)
        return rc;
    p = xcalloc(1, sizeof(*p));
    p->dsn = xstrdup(cfg->store);
    p->host = xstrdup(cfg->hostname);
    p->info_json = info;
    p->info_len = strlen(info);
    p->nworkers = cfg->workers > 0 ? (size_t)cfg->workers : 1;
    p->stores = xcalloc(p->nworkers, sizeof(*p->stores));
    p->routes[ROUTE_ASSET] = (struct http_route){"GET", "portal/*", serve_asset, p};
    p->routes[ROUTE_INFO] = (struct http_route){"GET", "service/info", serve_info, p};
    *out = p;
    return DPS_OK;
}

void portal_add_routes(struct portal *p, struct http_router *router)
{
    http_router_add(router, p->routes, NROUTES);
}

const char *portal_info_json(const struct portal *p)
{
    return p->info_json;
}

void portal_free(struct portal *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nworkers; i++)
        store_close(p->stores[i]);
    free(p->stores);
    free(p->dsn);
    free(p->host);
    free(p->info_json);
    free(p);
}
