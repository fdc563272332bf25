/* SPDX-License-Identifier: MIT */
/*
 * CA certificates on the service listener (dps-protocol.md §7.3-7.4): upload,
 * read, list and delete the CA certificates that enrollment groups refer to
 * by name (x509.caReferences), and the proof of possession that marks one
 * verified (a single-use, expiring verification code that the owner signs
 * into a certificate with the CA's key). Shaped like Azure's management-plane
 * certificate resource; every route needs the ServiceConfig right. See
 * docs/ca-certificates.md for the wire contract.
 */
#ifndef DPS_SERVER_CA_API_H
#define DPS_SERVER_CA_API_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "dps/error.h"
#include "server/config.h"
#include "server/http.h"
#include "store/store.h"

/* Longest certificate name; names are letters, digits and '-', '_', '.'. */
#define CA_API_NAME_MAX 64
/* CA certificates kept at most (Azure allows 25 per service; dpsd is more generous). */
#define CA_API_CERTS_MAX 100
/* Seconds a verification code stays usable when cfg->verification_code_ttl is unset (0). */
#define CA_API_CODE_TTL 3600
/* Random bytes in a verification code; its text is twice as many upper-case hex digits. */
#define CA_API_CODE_BYTES 32

struct ca_api;

/*
 * Creates the certificates API for a server with cfg->workers workers. Each
 * worker opens its own store connection (cfg->store) on its first request.
 *
 * cfg: borrowed for the call; the store DSN and host name are copied, and
 *      verification_code_ttl (seconds; 0: CA_API_CODE_TTL) is kept.
 * out: on DPS_OK, the API; free it with ca_api_free() after the server stopped.
 *
 * Returns: DPS_OK, or DPS_ERR_INVAL when cfg has no store or host name.
 */
int ca_api_new(const struct config *cfg, struct ca_api **out, struct dps_error *err);

/* Adds the routes to router; the table lives in api, which must outlive router. */
void ca_api_add_routes(struct ca_api *api, struct http_router *router);

/* Closes the workers' store connections and frees api; api may be NULL. */
void ca_api_free(struct ca_api *api);

/*
 * Reads the CA certificate stored under name, as registration does to
 * resolve a group's caReferences.
 *
 * s:        the caller's store connection (borrowed).
 * cert:     on DPS_OK, the certificate; the caller frees it with X509_free().
 * verified: on DPS_OK, whether its proof of possession was completed (or it
 *           was uploaded with isVerified true).
 *
 * Returns: DPS_OK, DPS_ERR_NOT_FOUND (no such name, or a stored object
 * without a readable certificate), DPS_ERR_STORE.
 */
int ca_store_resolve(struct store *s, const char *name, X509 **cert, bool *verified,
                     struct dps_error *err);

/*
 * Checks a proof-of-possession certificate against a CA: its subject CN
 * must equal code (compared case-insensitively: codes are hex), it must be
 * signed by ca's key, and now must lie within its validity dates.
 *
 * proof, ca: borrowed. code: the pending verification code. now: Unix seconds.
 * err: on failure, says which check failed and how to fix it.
 *
 * Returns: DPS_OK, or DPS_ERR_INVAL naming the failed check.
 */
int ca_proof_check(X509 *proof, X509 *ca, const char *code, int64_t now, struct dps_error *err);

#endif
