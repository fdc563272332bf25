/* SPDX-License-Identifier: MIT */
/*
 * The service API (dps-protocol.md §3): the route table and handlers for
 * individual enrollments, enrollment groups, registration records and
 * dpsd's shared access policies, on the HTTPS listener. Each request is
 * authenticated (server/auth.h), parsed and checked (core/model.h), and
 * written with its audit row in one store transaction before the reply.
 * See docs/service-api.md for the wire contract.
 */
#ifndef DPS_SERVER_SERVICE_API_H
#define DPS_SERVER_SERVICE_API_H

#include "dps/error.h"
#include "server/config.h"
#include "server/http.h"

/* Page size of a query without x-ms-max-item-count. */
#define SERVICE_API_PAGE_DEFAULT 100
/* Largest page a query returns; larger x-ms-max-item-count values are lowered to it. */
#define SERVICE_API_PAGE_MAX 1000
/* Longest shared access policy name. */
#define SERVICE_API_POLICY_NAME_MAX 64

struct service_api;

/*
 * Creates the service API for a server with cfg->workers workers. Each
 * worker opens its own store connection (cfg->store) on its first request.
 *
 * cfg: borrowed for the call; the store DSN, host name and worker count
 *      are copied.
 * out: on DPS_OK, the API; free it with service_api_free() after the
 *      server has stopped.
 *
 * Returns: DPS_OK, or DPS_ERR_INVAL when cfg has no store or host name.
 */
int service_api_new(const struct config *cfg, struct service_api **out, struct dps_error *err);

struct committer;

/*
 * Makes writes of enrollments, groups and registration records (PUT,
 * DELETE, bulk) run through the group commit cm (borrowed; it must outlive
 * the server's workers), the reply sent once they are durable; a full
 * queue is answered 503 with Retry-After. Without it (NULL, the default)
 * they run on the worker. Shared access policy writes stay on the worker:
 * they are rare and read several rows first. Call before the server starts.
 */
void service_api_set_committer(struct service_api *api, struct committer *cm);

/*
 * Adds the service API's routes to router. The route table lives in api:
 * api must outlive router.
 */
void service_api_add_routes(struct service_api *api, struct http_router *router);

/* Closes the workers' store connections and frees api; api may be NULL. Call after the server
 * stopped. */
void service_api_free(struct service_api *api);

#endif
