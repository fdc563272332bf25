/* SPDX-License-Identifier: MIT */
/*
 * POST /explain on the service listener: "why would this device fail?"
 * answered before the device tries. Given a certificate chain, or a
 * registration id with a symmetric key or a SAS token, it returns the
 * decision a device would get right now with the full decision trace. It
 * runs the live registration itself (server/provision.h) inside a store
 * transaction that is rolled back: one engine, nothing written. Needs the
 * EnrollmentRead right. See docs/ca-certificates.md.
 */
#ifndef DPS_SERVER_EXPLAIN_H
#define DPS_SERVER_EXPLAIN_H

#include <time.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "dps/error.h"
#include "server/config.h"
#include "server/http.h"
#include "server/provision.h"
#include "store/store.h"

/* Attempts of the registration id searched for the dry run's own (it is the newest). */
#define EXPLAIN_ATTEMPT_SEARCH 8

struct explain;

/*
 * Creates the explain API for a server with cfg->workers workers; each
 * worker opens its own store connection on its first request.
 *
 * cfg:      borrowed for the call: store DSN, host name, linked hubs copied.
 * id_scope: the service's ID scope; copied.
 * out:      on DPS_OK, the API; free with explain_free() after the server stopped.
 *
 * Returns: DPS_OK, DPS_ERR_INVAL (no store, host name or id scope, or a
 * bad linked hub: the message names it).
 */
int explain_new(const struct config *cfg, const char *id_scope, struct explain **out,
                struct dps_error *err);

/* Adds the route to router; the table lives in e, which must outlive router. */
void explain_add_routes(struct explain *e, struct http_router *router);

/* Closes the workers' store connections and frees e; e may be NULL. */
void explain_free(struct explain *e);

/* What to explain; every pointer borrowed for the call. */
struct explain_input {
    STACK_OF(X509) * chain;      /* leaf first, or NULL for symmetric keys */
    const char *registration_id; /* required (for a chain: the id the device would send) */
    const char *sas_token;       /* the whole "SharedAccessSignature ..." text, or NULL */
    const char *tracking_id;     /* the explain request's tracking id, required */
    const char *peer;            /* the device's address, for geoLatency regions; NULL: unknown */
    time_t now;                  /* 0: the current time */
};

/*
 * Runs the live registration for in (provision_decide(), then
 * provision_write_run() into a store batch that is rolled back after the
 * attempt it wrote is read), so the answer is exactly the live decision
 * and nothing is stored. The batch holds the store's write lock only for
 * the write.
 *
 * p:   the registration service (borrowed).
 * s:   the caller's store connection, not inside a batch (borrowed).
 * out: on DPS_OK, a new JSON object: registrationId, attestationType,
 *      decision ("assigned", "disabled", "failed", "unauthorized" or
 *      "rejected" for input the service refuses before attestation),
 *      httpStatus, errorCode, deviceMessage (what the device would read),
 *      enrollment {kind, id}, assignedHub, deviceId, summary and trace
 *      ({summary, steps, ...} as in the attempt history). Caller decrefs.
 *
 * Returns: DPS_OK, DPS_ERR_INVAL (a required field missing), DPS_ERR_STORE.
 */
int explain_run(const struct provision *p, struct store *s, const struct explain_input *in,
                json_t **out, struct dps_error *err);

#endif
