/* SPDX-License-Identifier: MIT */
/*
 * The web portal: its static files at /portal, served from the assets that
 * scripts/embed.py compiled into dpsd (server/portal_assets.h), and
 * GET /service/info, the SAS-checked summary of the service (ID scope,
 * endpoints, linked hubs) its Overview shows. The page talks to the service
 * API with SAS tokens it computes in the browser; the static files are
 * public and hold no secret.
 */
#ifndef DPS_SERVER_PORTAL_H
#define DPS_SERVER_PORTAL_H

#include <stddef.h>

#include "dps/error.h"
#include "server/config.h"
#include "server/http.h"
#include "server/portal_assets.h"

/* The Content-Security-Policy every portal reply carries: same origin only, no inline code. */
#define PORTAL_CSP                                                                                 \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"

struct portal;

/*
 * Creates the portal's routes for a server with cfg->workers workers. Each
 * worker opens its own store connection (cfg->store) on its first
 * /service/info request, to check the SAS token's policy.
 *
 * cfg:      borrowed for the call; the store DSN, host name, HTTPS port,
 *           linked hubs and worker count are copied.
 * id_scope: the service's ID scope (borrowed for the call, copied).
 * out:      on DPS_OK, the portal; free it with portal_free() after the
 *           server has stopped.
 *
 * Returns: DPS_OK, or DPS_ERR_INVAL when cfg has no store or host name, or
 * its HTTPS listen address or a linked hub does not parse (the message
 * says which).
 */
int portal_new(const struct config *cfg, const char *id_scope, struct portal **out,
               struct dps_error *err);

/*
 * Adds GET /portal, GET /portal/... and GET /service/info to router. The
 * route table lives in p: p must outlive router. Call once, before the
 * workers start, like every http_router_add().
 */
void portal_add_routes(struct portal *p, struct http_router *router);

/* Closes the workers' store connections and frees p; p may be NULL. Call after the server
 * stopped. */
void portal_free(struct portal *p);

/*
 * The body GET /service/info answers with:
 * {"idScope","hostName","serviceEndpoint","deviceEndpoint","linkedHubs":[{"host","weight"[,"location"]}],"version"}.
 * Borrowed from p; valid until portal_free().
 */
const char *portal_info_json(const struct portal *p);

/*
 * Finds the embedded asset for a path below /portal.
 *
 * segments, n: the decoded path segments after "portal" (borrowed); none
 *              means the portal's index.html.
 *
 * Returns: the asset (static, never freed), or NULL when there is none:
 * names are compared exactly (case-sensitive), and a segment of ".", ".."
 * or one holding a '/' never matches.
 */
const struct portal_asset *portal_asset_find(char *const *segments, size_t n);

#endif
