/* SPDX-License-Identifier: MIT */
/*
 * GET /metrics: dpsd's counters in the Prometheus text format (version
 * 0.0.4): registrations by outcome, and the group commit's transactions and
 * jobs. Counters only, no labels that grow with input, no secrets: the
 * route needs no token, as Prometheus scrapes expect. Not a metrics
 * library: the few counters live here as atomics any thread may bump.
 */
#ifndef DPS_SERVER_METRICS_H
#define DPS_SERVER_METRICS_H

#include "server/http.h"
#include "server/provision.h"

struct committer;

/*
 * Counts one answered registration by its status: "assigned", "failed",
 * "disabled", "unauthorized" (a refused attestation), "error" (a 4xx or
 * 5xx before a decision). Thread-safe; any other status counts as "error".
 */
void metrics_count_registration(const char *status);

/*
 * Counts the answer to one register request, over any transport (HTTPS,
 * MQTT, MQTT over WebSocket, a CONNECT refused for its SAS token): 401 as
 * "unauthorized", another 4xx or 5xx as "error", else by the "status" of
 * res->body. res: borrowed. Thread-safe.
 */
void metrics_count_registration_result(const struct provision_result *res);

/*
 * Adds GET /metrics to router; the route is static, so call once before
 * the workers start. cm: the group commit whose counters to show
 * (borrowed, must outlive the server), or NULL.
 */
void metrics_add_routes(struct http_router *router, struct committer *cm);

#endif
