/* SPDX-License-Identifier: MIT */
/*
 * The web portal's static files at /portal, served from the assets that
 * scripts/embed.py compiled into dpsd (server/portal_assets.h). The page
 * itself talks to the service API with SAS tokens it computes in the
 * browser; nothing here reads a secret or the store.
 */
#ifndef DPS_SERVER_PORTAL_H
#define DPS_SERVER_PORTAL_H

#include <stddef.h>

#include "server/http.h"
#include "server/portal_assets.h"

/* The Content-Security-Policy every portal reply carries: same origin only, no inline code. */
#define PORTAL_CSP                                                                                 \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"

/*
 * Adds the portal's routes (GET /portal, GET /portal/...) to router. Call
 * once, before the workers start, like every http_router_add().
 */
void portal_routes_add(struct http_router *router);

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
