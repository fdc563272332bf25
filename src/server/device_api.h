/* SPDX-License-Identifier: MIT */
/*
 * The device API over HTTPS (dps-protocol.md §4): the route table for
 * RegisterDevice, OperationStatusLookup and DeviceRegistrationStatusLookup
 * under /{idScope}/registrations/..., and the operator's view of the attempt
 * history: one device's, GET /registrations/{id}/attempts, and every
 * device's, GET /attempts (?failed=true for the failures only). The
 * handlers only map HTTP onto the registration service (server/provision.h)
 * and back. See docs/device-api.md for the wire contract.
 */
#ifndef DPS_SERVER_DEVICE_API_H
#define DPS_SERVER_DEVICE_API_H

#include "dps/error.h"
#include "server/config.h"
#include "server/http.h"

/* Attempts listed per page without x-ms-max-item-count, and at most. */
#define DEVICE_API_ATTEMPTS_DEFAULT 50
#define DEVICE_API_ATTEMPTS_MAX 1000

struct device_api;

/*
 * Creates the device API for a server with cfg->workers workers. Each worker
 * opens its own store connection (cfg->store) and trust store cache on its
 * first request.
 *
 * cfg:      borrowed for the call: the store DSN, host name, linked hubs and
 *           worker count are copied.
 * id_scope: the service's ID scope (from the data directory); copied.
 * out:      on DPS_OK, the API; free with device_api_free() after the
 *           server has stopped.
 *
 * Returns: DPS_OK, DPS_ERR_INVAL (no store, host name or id scope, or a bad
 * linked hub: the message names it).
 */
int device_api_new(const struct config *cfg, const char *id_scope, struct device_api **out,
                   struct dps_error *err);

struct committer;

/*
 * Makes registrations write through the group commit cm (borrowed; it must
 * outlive the server's workers): the reply to a device is sent once its
 * record and attempt are committed. Without it (NULL, the default) they
 * are written synchronously on the worker. Call before the server starts.
 */
void device_api_set_committer(struct device_api *api, struct committer *cm);

/* Adds the routes to router; the table lives in api, which must outlive router. */
void device_api_add_routes(struct device_api *api, struct http_router *router);

/* Closes the workers' store connections and frees api; api may be NULL. */
void device_api_free(struct device_api *api);

#endif
