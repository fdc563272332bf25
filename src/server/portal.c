/* SPDX-License-Identifier: MIT */
/*
 * GET /portal and GET /portal/... from the embedded assets, with the
 * security headers a page that holds a service key in its session needs.
 * The service API the page calls lives in server/service_api.c.
 */
#include "core/common.h"
#include "server/portal.h"

#include <string.h>

#include "server/server.h"

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

static const struct http_route portal_routes[] = {
    {"GET", "portal/*", serve_asset, NULL},
};

void portal_routes_add(struct http_router *router)
{
    http_router_add(router, portal_routes, sizeof(portal_routes) / sizeof(portal_routes[0]));
}
