/* SPDX-License-Identifier: MIT */
/*
 * libdps service client: the operator's side of a Device Provisioning
 * Service (dpsd or Azure IoT Hub DPS). It manages individual enrollments,
 * enrollment groups, registration states and, on dpsd, shared access
 * policies, over the service REST API with a SAS token made from the
 * service connection string.
 *
 * Bodies go in and come out as JSON text in Azure's schema (see the
 * IndividualEnrollment, EnrollmentGroup and DeviceRegistrationState types of
 * the service API, api-version 2021-10-01); the helpers at the end build
 * the common attestation objects. The client keeps one TLS connection
 * alive across calls. It is not thread-safe: use one client per thread.
 *
 * Conventions for every call below:
 *  - c is a client from dps_service_client_new().
 *  - Ids (registration ids, group ids, policy names) are passed as plain
 *    text; the client percent-encodes them into the path.
 *  - `char **out` results are NUL-terminated heap strings the caller frees
 *    with free(); they are set only when the call returns DPS_OK.
 *  - err may be NULL; on failure it holds a message for the user. When the
 *    server answered with an error, err->msg is the server's own `message`
 *    and the code follows the HTTP status:
 *      400 (and other 4xx not below) DPS_ERR_INVAL, 401 DPS_ERR_AUTH,
 *      403 DPS_ERR_FORBIDDEN, 404 DPS_ERR_NOT_FOUND, 409 DPS_ERR_CONFLICT,
 *      412 DPS_ERR_PRECONDITION, 413 DPS_ERR_TOO_LARGE, 5xx DPS_ERR_INTERNAL.
 *    Without an answer: DPS_ERR_IO (network, timeout), DPS_ERR_TLS (server
 *    not trusted), DPS_ERR_PROTOCOL (malformed answer), DPS_ERR_TOO_LARGE
 *    (answer over the limit), DPS_ERR_NOMEM.
 *  - if_match may be NULL (no If-Match header: unconditional) or an etag
 *    as the server returned it, quotes included, or "*".
 *
 * Example:
 *
 *     struct dps_service_client *c = NULL;
 *     struct dps_error err;
 *     char *att = NULL, *body = NULL, *res = NULL;
 *
 *     if (dps_service_client_new(getenv("DPS_CONNECTION_STRING"), NULL, &c, &err) ||
 *         dps_attestation_x509_from_files(DPS_X509_SIGNING, "ca.pem", NULL, &att, &err))
 *         goto fail;
 *     ... body = {"enrollmentGroupId":"line-3","attestation":<att>} ...
 *     if (dps_enrollment_group_put(c, "line-3", body, NULL, &res, &err))
 *         goto fail;
 */
#ifndef DPS_SERVICE_H
#define DPS_SERVICE_H

#include <stdbool.h>
#include <stddef.h>

#include "dps/error.h"

struct dps_service_client;

/* The api-version sent when the options name none. */
#define DPS_SERVICE_API_VERSION "2021-10-01"

/* Optional settings; a zeroed struct (or NULL) means every default. */
struct dps_service_options {
    /* PEM file of the roots that may sign the server's certificate; NULL =
     * the system trust store. */
    const char *ca_file;
    /* Deadline of one call (connect, TLS, request and response) in
     * milliseconds; 0 = 30000. */
    int timeout_ms;
    /* "host:port" (or "[v6]:port", or "host") to connect to instead of the
     * connection string's HostName; HostName still names the server for
     * TLS (SNI and certificate check), the Host header and the SAS token.
     * For tests and for servers reached through a tunnel. NULL = HostName. */
    const char *connect_to;
    /* api-version query parameter; NULL = DPS_SERVICE_API_VERSION. */
    const char *api_version;
    /* Largest response accepted, headers included, in bytes; 0 = 32 MiB. */
    size_t max_response;
};

/*
 * Makes a client from a service connection string
 * ("HostName=...;SharedAccessKeyName=...;SharedAccessKey=..."). HostName may
 * carry ":port". No connection is made until the first call.
 *
 * connection_string: borrowed; copied.
 * opts: may be NULL; its strings are copied.
 * out: on success, the client; free it with dps_service_client_free().
 *
 * Returns: DPS_OK; DPS_ERR_INVAL (malformed connection string or option);
 * DPS_ERR_TOO_LARGE; DPS_ERR_TLS (ca_file unreadable); DPS_ERR_NOMEM.
 */
int dps_service_client_new(const char *connection_string, const struct dps_service_options *opts,
                           struct dps_service_client **out, struct dps_error *err);

/* Closes the connection, wipes the key and frees c; c may be NULL. */
void dps_service_client_free(struct dps_service_client *c);

/* The connection string's HostName; borrowed, valid until the client is freed. */
const char *dps_service_client_host(const struct dps_service_client *c);

/* The HTTP status of the last answered call, or 0 when none was answered. */
int dps_service_client_last_status(const struct dps_service_client *c);

/*
 * Makes the SAS token the client sends: "SharedAccessSignature sr=<HostName>
 * &sig=...&skn=<policy>&se=<now + ttl_seconds>", for tools such as curl.
 *
 * ttl_seconds: 1 to 31536000 (one year).
 * out: the token; free() it.
 *
 * Returns: DPS_OK; DPS_ERR_INVAL (connection string or ttl); DPS_ERR_NOMEM.
 */
int dps_service_token(const char *connection_string, long ttl_seconds, char **out,
                      struct dps_error *err);

/* ---- queries ---- */

/* One query call: which page to read. A zeroed struct reads page one. */
struct dps_query {
    const char *query;        /* query text; NULL = "SELECT *" */
    int page_size;            /* x-ms-max-item-count; 0 = the server's choice */
    const char *continuation; /* from the previous page; NULL for the first */
};

/* One page of results. Release with dps_query_page_release(). */
struct dps_query_page {
    char *items;        /* the JSON array of the page */
    char *continuation; /* x-ms-continuation, or NULL on the last page */
    char *item_type;    /* x-ms-item-type ("Enrollment", ...), or NULL when absent */
};

/* Frees what page holds and zeroes it; page may be NULL. */
void dps_query_page_release(struct dps_query_page *page);

/* ---- individual enrollments (/enrollments) ---- */

/*
 * Creates or replaces the individual enrollment registration_id with the
 * IndividualEnrollment JSON body (its registrationId must equal
 * registration_id). out: the stored enrollment, with symmetric keys when the
 * attestation has them, and its new etag.
 */
int dps_enrollment_put(struct dps_service_client *c, const char *registration_id, const char *json,
                       const char *if_match, char **out, struct dps_error *err);

/* Reads an individual enrollment (without its symmetric keys). */
int dps_enrollment_get(struct dps_service_client *c, const char *registration_id, char **out,
                       struct dps_error *err);

/* Deletes an individual enrollment. */
int dps_enrollment_delete(struct dps_service_client *c, const char *registration_id,
                          const char *if_match, struct dps_error *err);

/* Reads the AttestationMechanism of an enrollment, symmetric keys included. */
int dps_enrollment_attestation_get(struct dps_service_client *c, const char *registration_id,
                                   char **out, struct dps_error *err);

/*
 * Reads one page of individual enrollments. q may be NULL (first page,
 * default size). page: filled on success.
 */
int dps_enrollment_query(struct dps_service_client *c, const struct dps_query *q,
                         struct dps_query_page *page, struct dps_error *err);

/*
 * Runs a BulkEnrollmentOperation ({"mode":"create|update|updateIfMatchETag|
 * delete","enrollments":[...]}, at most 10). out: the
 * BulkEnrollmentOperationResult; a DPS_OK return does not mean every item
 * succeeded: read its isSuccessful and errors.
 */
int dps_enrollment_bulk(struct dps_service_client *c, const char *json, char **out,
                        struct dps_error *err);

/* ---- enrollment groups (/enrollmentGroups): as above, keyed by group id ---- */

int dps_enrollment_group_put(struct dps_service_client *c, const char *group_id, const char *json,
                             const char *if_match, char **out, struct dps_error *err);
int dps_enrollment_group_get(struct dps_service_client *c, const char *group_id, char **out,
                             struct dps_error *err);
int dps_enrollment_group_delete(struct dps_service_client *c, const char *group_id,
                                const char *if_match, struct dps_error *err);
int dps_enrollment_group_attestation_get(struct dps_service_client *c, const char *group_id,
                                         char **out, struct dps_error *err);
int dps_enrollment_group_query(struct dps_service_client *c, const struct dps_query *q,
                               struct dps_query_page *page, struct dps_error *err);
/* json: a BulkEnrollmentGroupOperation ({"mode":...,"enrollmentGroups":[...]}). */
int dps_enrollment_group_bulk(struct dps_service_client *c, const char *json, char **out,
                              struct dps_error *err);

/* ---- registration states (/registrations) ---- */

/* Reads the DeviceRegistrationState of a device. */
int dps_registration_get(struct dps_service_client *c, const char *registration_id, char **out,
                         struct dps_error *err);

/* Deletes a registration state; the device's next registration is a first one. */
int dps_registration_delete(struct dps_service_client *c, const char *registration_id,
                            const char *if_match, struct dps_error *err);

/* Reads one page of the registration states of the devices of one enrollment group. */
int dps_registration_query(struct dps_service_client *c, const char *group_id,
                           const struct dps_query *q, struct dps_query_page *page,
                           struct dps_error *err);

/*
 * Reads one page of a device's registration attempts, newest first: dpsd's
 * extension (GET /registrations/{id}/attempts, right RegistrationStatusRead).
 * Every attempt, successful or not, is kept with the decision trace that
 * explains it, so this is where an operator learns why a device was refused.
 *
 * registration_id: the device's id (upper case is accepted, as a device may
 *   have asked with it).
 * q: page_size (server default 50, at most 1000) and continuation; its query
 *   text is ignored. NULL reads the newest page.
 * page: on DPS_OK, items is a JSON array of attempts, each
 *   {"attemptId", "timeUtc", "success", "status" ("assigned", "failed",
 *   "disabled", "unauthorized"), "operationId", "trackingId",
 *   "registrationId", "apiVersion", "attestationType",
 *   "enrollment": {"kind", "id"} or null, "trace": {"errorCode", "summary",
 *   "deviceMessage", "steps": [...]}, "registrationState"}; continuation is
 *   set when older attempts remain; item_type is "RegistrationAttempt".
 *   Release it with dps_query_page_release().
 *
 * Returns: DPS_OK; DPS_ERR_INVAL (no or malformed id); DPS_ERR_AUTH,
 * DPS_ERR_FORBIDDEN (the policy lacks RegistrationStatusRead); DPS_ERR_NOT_FOUND
 * (a server without the extension, such as Azure); the transport errors above.
 * A device that never tried gives DPS_OK and an empty array.
 */
int dps_registration_attempts(struct dps_service_client *c, const char *registration_id,
                              const struct dps_query *q, struct dps_query_page *page,
                              struct dps_error *err);

/*
 * Reads one page of the registration attempts of every device, newest first:
 * dpsd's extension (GET /attempts, right RegistrationStatusRead). With
 * failed_only, only the attempts that did not end in an assignment (refused
 * attestation, disabled or unknown enrollment, failed allocation): what an
 * operator looks at first when devices do not come up, including devices
 * that never got a registration record.
 *
 * failed_only: true for GET /attempts?failed=true, false for every attempt.
 * q, page: as for dps_registration_attempts(); the items are the same
 *   attempts, each naming its registrationId. Release the page with
 *   dps_query_page_release().
 *
 * Returns: DPS_OK (an empty array when nothing matches); DPS_ERR_AUTH,
 * DPS_ERR_FORBIDDEN (the policy lacks RegistrationStatusRead);
 * DPS_ERR_NOT_FOUND (a server without the extension, such as Azure); the
 * transport errors above.
 */
int dps_attempts_list(struct dps_service_client *c, bool failed_only, const struct dps_query *q,
                      struct dps_query_page *page, struct dps_error *err);

/*
 * ---- shared access policies (/policies): dpsd's extension ----
 *
 * Azure manages policies through its ARM management plane; dpsd offers them
 * on the service API instead, under the ServiceConfig right. A policy is
 * {"name":"...","rights":"EnrollmentRead,EnrollmentWrite,...",
 *  "primaryKey":"<base64>","secondaryKey":"<base64>"}; keys left out of a
 * PUT are generated by the server. Against Azure these calls fail with
 * DPS_ERR_NOT_FOUND.
 */

/* Lists the policies: out is a JSON array. */
int dps_policy_list(struct dps_service_client *c, char **out, struct dps_error *err);

/* Reads one policy, keys included. */
int dps_policy_get(struct dps_service_client *c, const char *name, char **out,
                   struct dps_error *err);

/* Creates or replaces a policy; out: the stored policy, keys included. */
int dps_policy_put(struct dps_service_client *c, const char *name, const char *json,
                   const char *if_match, char **out, struct dps_error *err);

/* Revokes a policy: tokens signed with its keys stop working. */
int dps_policy_delete(struct dps_service_client *c, const char *name, const char *if_match,
                      struct dps_error *err);

/* ---- attestation helpers: build AttestationMechanism JSON ---- */

enum dps_x509_role {
    DPS_X509_CLIENT,  /* clientCertificates: an individual enrollment's device certificate */
    DPS_X509_SIGNING, /* signingCertificates: a group's root or intermediate CA */
};

/*
 * Builds {"type":"x509","x509":{"clientCertificates"|"signingCertificates":
 * {"primary":{"certificate":"<PEM>"},"secondary":...}}} from PEM files. The
 * first certificate of each file is used; for DPS_X509_SIGNING it must be a
 * CA certificate.
 *
 * primary_file: required; secondary_file: may be NULL.
 * out: the JSON; free() it.
 *
 * Returns: DPS_OK; DPS_ERR_IO (file unreadable); DPS_ERR_INVAL (no
 * certificate in the file, or not a CA for a signing certificate);
 * DPS_ERR_NOMEM.
 */
int dps_attestation_x509_from_files(enum dps_x509_role role, const char *primary_file,
                                    const char *secondary_file, char **out, struct dps_error *err);

/*
 * Builds {"type":"x509","x509":{"caReferences":{"primary":...,"secondary":...}}}
 * naming CA certificates registered with the service. secondary may be NULL.
 *
 * Returns: DPS_OK; DPS_ERR_INVAL (empty name); DPS_ERR_NOMEM.
 */
int dps_attestation_ca_ref(const char *primary, const char *secondary, char **out,
                           struct dps_error *err);

/*
 * Builds {"type":"symmetricKey","symmetricKey":{...}}. With both keys NULL
 * the object is empty and the server generates the keys; a given key must be
 * base64 of 16 to 64 bytes. A NULL secondary with a primary given leaves the
 * secondary to the server.
 *
 * Returns: DPS_OK; DPS_ERR_INVAL (a key that is not valid); DPS_ERR_NOMEM.
 */
int dps_attestation_symmetric_key(const char *primary, const char *secondary, char **out,
                                  struct dps_error *err);

/*
 * ---- CA certificates (/certificates) and explain (/explain): dpsd's extensions ----
 *
 * Azure keeps CA certificates on its ARM management plane; dpsd offers the
 * same resource on the service API, under the ServiceConfig right. Answers
 * are Azure's CertificateResponse: {"name","etag","id","type","properties":
 * {"subject","expiry","thumbprint","sha256Thumbprint","issuer",
 * "notBeforeUtc","notAfterUtc","isVerified","certificate","created",
 * "updated"}}. Against Azure these calls fail with DPS_ERR_NOT_FOUND.
 */

/*
 * Uploads a CA certificate under name (letters, digits, '-', '_', '.'; at
 * most 64). cert: PEM text, base64 of PEM, or base64 DER; it must be a CA.
 * verified: non-zero to store it as already verified (self-attestation)
 * instead of proving possession. if_match: required to replace an existing
 * certificate (its etag or "*"); NULL creates. out: the CertificateResponse.
 *
 * Returns: DPS_OK; DPS_ERR_INVAL (not a certificate, not a CA, bad name);
 * DPS_ERR_CONFLICT (exists, no if_match); DPS_ERR_PRECONDITION; the
 * transport and authentication errors above.
 */
int dps_ca_upload(struct dps_service_client *c, const char *name, const char *cert, int verified,
                  const char *if_match, char **out, struct dps_error *err);

/* Reads one CA certificate (CertificateResponse). DPS_ERR_NOT_FOUND when absent. */
int dps_ca_get(struct dps_service_client *c, const char *name, char **out, struct dps_error *err);

/* Lists the CA certificates: out is {"value":[CertificateResponse, ...]}. */
int dps_ca_list(struct dps_service_client *c, char **out, struct dps_error *err);

/* Deletes a CA certificate; groups that reference it stop accepting devices. */
int dps_ca_delete(struct dps_service_client *c, const char *name, const char *if_match,
                  struct dps_error *err);

/*
 * Starts a proof of possession: out is the CertificateResponse with
 * properties.verificationCode (64 hex digits) and
 * properties.verificationCodeExpiry (UTC, one hour on). A new code replaces
 * the pending one. Make a certificate whose subject CN is the code, signed
 * with the CA's private key (dpsctl cert create-verification), and pass it
 * to dps_ca_verify().
 */
int dps_ca_verification_code(struct dps_service_client *c, const char *name, const char *if_match,
                             char **out, struct dps_error *err);

/*
 * Completes a proof of possession with the verification certificate proof
 * (PEM or base64). The code is used up on success; out is the
 * CertificateResponse with properties.isVerified true.
 *
 * Returns: DPS_OK; DPS_ERR_INVAL with the reason (no pending or an expired
 * code, CN is not the code, not signed by the CA's key, outside its
 * validity); DPS_ERR_PRECONDITION; the errors above.
 */
int dps_ca_verify(struct dps_service_client *c, const char *name, const char *proof,
                  const char *if_match, char **out, struct dps_error *err);

/*
 * Asks what a device would get if it registered now, without registering
 * it (right EnrollmentRead). json is one of
 *   {"certificateChain": "<PEM, leaf first>"[, "registrationId": "..."]}
 *   {"registrationId": "...", "symmetricKey": "<the device's key>"}
 *   {"registrationId": "...", "sasToken": "SharedAccessSignature ..."}
 * out: {"registrationId","attestationType","decision" ("assigned",
 * "disabled", "failed", "unauthorized", "rejected"),"httpStatus",
 * "errorCode","deviceMessage","enrollment":{"kind","id"},"assignedHub",
 * "deviceId","summary","trace":{"summary","steps":[...],...}}.
 */
int dps_explain(struct dps_service_client *c, const char *json, char **out, struct dps_error *err);

#endif
