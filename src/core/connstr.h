/* SPDX-License-Identifier: MIT */
/*
 * The service connection string:
 * "HostName=...;SharedAccessKeyName=...;SharedAccessKey=..." as the Azure
 * portal and CLI print it. Parsing only; tokens are built by core/sas.h.
 * Used by libdps, dpsctl and the tests.
 */
#ifndef DPS_CORE_CONNSTR_H
#define DPS_CORE_CONNSTR_H

#include <stddef.h>

#include "dps/error.h"

/* Longest connection string accepted, in bytes. */
#define CONNSTR_MAX_LEN 4096

/* A parsed connection string; every member is a NUL-terminated heap string. */
struct connstr {
    char *host_name; /* HostName, e.g. "dps.example.net" (may carry ":port") */
    char *key_name;  /* SharedAccessKeyName, the policy name */
    char *key;       /* SharedAccessKey, base64 as given (checked to be base64) */
};

/*
 * Parses a connection string. Parts are split on ';', then each on its first
 * '=' (base64 padding holds '='); the order is free, whitespace around names
 * and values is ignored, empty parts and unknown names are skipped. All
 * three of HostName, SharedAccessKeyName and SharedAccessKey are required,
 * non-empty and given once; the key must be valid base64.
 *
 * s, len: the text (need not be NUL-terminated), at most CONNSTR_MAX_LEN.
 * out:    on success, the result, freed by the caller with connstr_free().
 * err:    on failure, a message naming the part (may be NULL).
 *
 * Returns: DPS_OK; DPS_ERR_INVAL (malformed, missing or repeated part);
 * DPS_ERR_TOO_LARGE; DPS_ERR_NOMEM.
 */
int connstr_parse(const char *s, size_t len, struct connstr **out, struct dps_error *err);

/* Frees cs, wiping the key first; cs may be NULL. */
void connstr_free(struct connstr *cs);

#endif
