/* SPDX-License-Identifier: MIT */
/*
 * Service API authentication (dps-protocol.md §3.1-3.2): checks the SAS
 * token of an Authorization header against the shared access policies in
 * the store and the rights the operation needs. Knows nothing of routes or
 * JSON; the service API maps its results to 401 answers.
 */
#ifndef DPS_SERVER_AUTH_H
#define DPS_SERVER_AUTH_H

#include <stdint.h>

#include "dps/error.h"
#include "store/store.h"

struct worker;

/* Who a request is: the policy its token is signed with, and that policy's rights. */
struct auth_identity {
    char policy[STORE_ID_MAX + 1]; /* as stored */
    uint32_t rights;               /* enum store_right bits */
};

/*
 * A cache of the store's shared access policies (names, keys, rights), so
 * that a request costs one point read of the policies generation
 * (STORE_GENERATION_POLICIES) instead of reading its policy. Every policy
 * write bumps that generation in its transaction, on any node, so a key
 * rotated or a policy revoked anywhere counts at the next request. Not
 * thread-safe: one per worker, used only with stores on one DSN. Keys are
 * wiped when dropped.
 *
 * auth_cache_new: Returns the empty cache; free with auth_cache_free().
 * auth_cache_free: frees c; NULL is a no-op.
 * auth_worker_cache: the cache of worker w, made on first use and freed
 *   with the worker's data (server.h worker_set_data()); NULL when w is
 *   NULL. Call on w's thread only.
 * auth_cache_loads: how many times c read the policies from the store.
 */
struct auth_cache;

struct auth_cache *auth_cache_new(void);
void auth_cache_free(struct auth_cache *c);
struct auth_cache *auth_worker_cache(struct worker *w);
uint64_t auth_cache_loads(const struct auth_cache *c);

/*
 * Checks one request. The token must parse, not be expired (beyond
 * SAS_CLOCK_SKEW), name host (and optionally a segment prefix of path) as
 * its resource, name an existing policy in skn, and be signed with that
 * policy's primary or secondary key (HMAC compared in constant time). The
 * policy must then hold every right in need.
 *
 * cache:         the worker's policy cache (auth_worker_cache()), or NULL
 *                to read the policy from the store.
 * s:             the caller's store connection (borrowed).
 * authorization: the Authorization header, or NULL when absent.
 * host:          the service host name tokens must name (the configured hostname).
 * path:          the request path, not decoded, without the query string.
 * need:          enum store_right bits the operation requires; 0 for none.
 * now:           seconds since the Unix epoch.
 * out:           on DPS_OK, the identity; untouched otherwise.
 * err:           on failure, a message saying what is wrong (which check,
 *                which policy, which right), without any secret.
 *
 * Returns: DPS_OK; DPS_ERR_AUTH (no, malformed, expired, forged,
 * wrong-resource or unknown-policy token); DPS_ERR_FORBIDDEN (valid token,
 * a right missing); DPS_ERR_STORE; DPS_ERR_NOMEM.
 */
int auth_check(struct auth_cache *cache, struct store *s, const char *authorization,
               const char *host, const char *path, uint32_t need, int64_t now,
               struct auth_identity *out, struct dps_error *err);

/*
 * Writes the names of the rights in bits, comma-separated in the order of
 * enum store_right ("EnrollmentRead,EnrollmentWrite"), into buf of size
 * len (truncated if too small; always NUL-terminated when len > 0).
 */
void auth_rights_format(uint32_t bits, char *buf, size_t len);

/*
 * Parses a comma-separated list of right names (case-insensitive, spaces
 * around names ignored, at least one name).
 *
 * out: on DPS_OK, the enum store_right bits.
 *
 * Returns: DPS_OK, or DPS_ERR_INVAL naming the unknown right.
 */
int auth_rights_parse(const char *list, uint32_t *out, struct dps_error *err);

#endif
