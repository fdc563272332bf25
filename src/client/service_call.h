/* SPDX-License-Identifier: MIT */
/*
 * One service API request on a libdps service client, for the client
 * modules beside service.c (client/ca.c) that add calls of their own
 * without reaching into the client's state. Not part of the public API.
 */
#ifndef DPS_CLIENT_SERVICE_CALL_H
#define DPS_CLIENT_SERVICE_CALL_H

#include "dps/service.h"

/*
 * Sends method to prefix + "/" + id (percent-encoded; omitted when NULL) +
 * suffix with the client's SAS token and api-version, and checks the answer.
 *
 * body:     JSON text, or NULL for none.
 * if_match: If-Match header value, or NULL for none.
 * out:      NULL when the answer's body is not needed; otherwise, on
 *           DPS_OK, the body (NUL-terminated, possibly empty) the caller frees.
 *
 * Returns: as the calls of dps/service.h: DPS_OK for a 2xx answer; the code
 * of the HTTP status otherwise, with the server's message in err.
 */
int service_call(struct dps_service_client *c, const char *method, const char *prefix,
                 const char *id, const char *suffix, const char *body, const char *if_match,
                 char **out, struct dps_error *err);

#endif
