/* SPDX-License-Identifier: MIT */
/*
 * What the service-listener APIs (enrollments, policies, CA certificates)
 * do the same way before and after their own work: one store connection per
 * worker, opened on the worker's thread at its first request, the SAS check
 * of the route's right, and the mapping of a dps_err to the HTTP status of
 * an error answer. Not for the device API, which authenticates devices.
 */
#ifndef DPS_SERVER_API_CALL_H
#define DPS_SERVER_API_CALL_H

#include <stddef.h>
#include <stdint.h>

#include "dps/error.h"
#include "server/auth.h"
#include "server/config.h"
#include "server/http.h"
#include "store/store.h"

/* The store connections and service host name of one API. */
struct api_stores {
    char *dsn;
    char *host;
    size_t nworkers;
    struct store **stores; /* one per worker, opened on the worker's thread */
};

/*
 * Copies cfg's store DSN and host name and makes room for cfg->workers
 * connections (at least one); none is opened yet.
 *
 * what: the API's name for the error message ("the service API").
 *
 * Returns: DPS_OK, or DPS_ERR_INVAL when cfg has no store or host name.
 */
int api_stores_init(struct api_stores *s, const struct config *cfg, const char *what,
                    struct dps_error *err);

/* Closes the connections and frees what api_stores_init() made. */
void api_stores_release(struct api_stores *s);

/*
 * Starts a request: the store connection of req's worker (opened on its
 * first use), then the request's Authorization header checked for the
 * rights in need. A refusal is logged at info level with its reason, never
 * the token.
 *
 * store: on DPS_OK, the worker's connection (borrowed, owned by s).
 * who:   on DPS_OK, the policy that signed the token.
 * err:   on failure, the reason, for the error answer or the log.
 *
 * Returns: DPS_OK; DPS_ERR_STORE when the connection cannot be opened; else
 * what auth_check() returns (DPS_ERR_AUTH, DPS_ERR_FORBIDDEN, DPS_ERR_STORE).
 */
int api_call_begin(struct api_stores *s, struct http_request *req, uint32_t need,
                   struct store **store, struct auth_identity *who, struct dps_error *err);

/* The HTTP status of an error answer for a dps_err code: 400, 401, 404, 409, 412, 413 or 500. */
int api_status_of(int code);

/*
 * Answers req with the error of code: status api_status_of(code), errorCode
 * status * 1000 + sub_code, message msg. A status of 500 or more is logged
 * with msg and answered without it (the tracking id points to the log).
 */
void api_reply_fail(struct http_request *req, int code, int sub_code, const char *msg);

#endif
