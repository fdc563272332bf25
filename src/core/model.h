/* SPDX-License-Identifier: MIT */
/*
 * The service API's data model (dps-protocol.md §3.6): individual
 * enrollments, enrollment groups, attestation mechanisms, registration
 * states, query specifications and bulk operations, parsed from JSON into C
 * structs with every rule checked, and written back in Azure's shape. X.509
 * certificate info is computed here, symmetric keys are generated here.
 * Storage, etags and times are the caller's business. Linked into libdps:
 * nothing here aborts on out-of-memory.
 */
#ifndef DPS_CORE_MODEL_H
#define DPS_CORE_MODEL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "dps/error.h"
#include "core/allocate.h"
#include "core/x509_info.h"

/* Largest JSON text accepted (the HTTP layer bounds bodies to 96 KB; stored bodies grow with info).
 */
#define MODEL_JSON_MAX (256 * 1024)
/* Deepest nesting of arrays and objects accepted. */
#define MODEL_JSON_DEPTH_MAX 32
/* Most items in one bulk operation (swagger). */
#define MODEL_BULK_MAX 10
/* Most entries in iotHubs. */
#define MODEL_IOT_HUBS_MAX 64
/* Longest string accepted in most fields (host names, keys, urls, names). */
#define MODEL_STRING_MAX 2048
/* Longest certificate text, as x509_info accepts it. */
#define MODEL_CERT_MAX X509_INFO_INPUT_MAX
/* Bytes of a generated symmetric key (Azure's size: 88 base64 characters). */
#define MODEL_KEY_BYTES 64
/* Longest query text. */
#define MODEL_QUERY_MAX 4096

enum model_parse_flags {
    /*
     * The text comes from the store, not from a client: keep the read-only
     * fields (etag, createdDateTimeUtc, lastUpdatedDateTimeUtc) instead of
     * ignoring them.
     */
    MODEL_PARSE_STORED = 1 << 0,
    /* Accept upper-case letters in registration and enrollment group ids. */
    MODEL_PARSE_ALLOW_UPPER_IDS = 1 << 1,
};

enum model_json_flags {
    /*
     * Include symmetric keys. Only for PUT responses, the attestation
     * mechanism call and the store; GET and query answers leave them out
     * and write "symmetricKey":{}.
     */
    MODEL_WITH_SECRETS = 1 << 0,
};

enum attestation_type {
    ATTESTATION_NONE,
    ATTESTATION_TPM,
    ATTESTATION_X509,
    ATTESTATION_SYMMETRIC_KEY,
};

/* An X509CertificateWithInfo: the certificate as given and its computed info. */
struct model_cert {
    char *certificate;     /* the text as the client sent it; NULL when absent */
    struct x509_info info; /* computed from certificate; valid when certificate is set */
};

struct attestation {
    enum attestation_type type;
    struct {
        char *endorsement_key;  /* base64; required for TPM */
        char *storage_root_key; /* base64 or NULL */
    } tpm;
    struct {
        struct model_cert client_primary, client_secondary;   /* individual enrollments */
        struct model_cert signing_primary, signing_secondary; /* groups: CA certificates */
        char *ca_ref_primary, *ca_ref_secondary;              /* groups: names of uploaded CAs */
    } x509;
    struct {
        char *primary_key, *secondary_key; /* base64 of 16..64 bytes; secrets */
    } symmetric_key;
};

/* The fields individual enrollments and groups share. */
struct enrollment_common {
    struct attestation attestation;
    bool iot_edge;              /* capabilities.iotEdge, default false */
    char *iot_hub_host_name;    /* legacy single hub, or NULL */
    json_t *initial_twin;       /* an object, or NULL */
    bool enabled;               /* provisioningStatus, default enabled */
    bool update_hub_assignment; /* reprovisionPolicy, default true */
    bool migrate_device_data;   /* reprovisionPolicy, default true */
    enum allocation_policy allocation_policy;
    char **iot_hubs; /* host names, iot_hubs_count of them, or NULL */
    size_t iot_hubs_count;
    char *webhook_url; /* customAllocationDefinition, both set or both NULL */
    char *webhook_api_version;
    /* Read-only: set by the caller (the service), or kept with MODEL_PARSE_STORED. */
    char *etag;
    char *created; /* ISO 8601, e.g. "2022-07-05T21:27:16.8123235Z" */
    char *updated;
};

struct registration_state;

/* An IndividualEnrollment. */
struct enrollment {
    char *registration_id;
    char *device_id;                     /* defaults to registration_id */
    json_t *optional_device_information; /* an object, or NULL */
    struct enrollment_common c;
    /* Read-only: attached by the caller for answers; owned, freed with the enrollment. */
    struct registration_state *registration_state;
};

/* An EnrollmentGroup. */
struct enrollment_group {
    char *enrollment_group_id;
    struct enrollment_common c;
};

enum registration_status {
    REGISTRATION_UNASSIGNED,
    REGISTRATION_ASSIGNING,
    REGISTRATION_ASSIGNED,
    REGISTRATION_FAILED,
    REGISTRATION_DISABLED,
};

/* A DeviceRegistrationState as the service API shows it (§3.6.5). */
struct registration_state {
    char *registration_id;
    char *created, *updated; /* ISO 8601 or NULL */
    char *assigned_hub, *device_id;
    enum registration_status status;
    enum registration_substatus substatus;
    int error_code; /* 0: none */
    char *error_message;
    char *etag;
    json_t *payload; /* any JSON value, or NULL */
};

/*
 * Parses and validates an IndividualEnrollment from a client (flags 0).
 * JSON is parsed with duplicate keys refused, depth bounded by
 * MODEL_JSON_DEPTH_MAX and size by MODEL_JSON_MAX; unknown properties and
 * read-only ones (etag, times, registrationState, certificate info) are
 * ignored; null counts as absent. Defaults are filled in as Azure does;
 * X.509 info is computed; missing symmetric keys are generated.
 *
 * buf, len: the JSON text, borrowed.
 * out: on success, the enrollment, freed by the caller with enrollment_free().
 * err: on failure, a message naming the field, e.g. "'attestation.type' must
 *   be one of 'tpm', 'x509', 'symmetricKey'".
 *
 * Returns: DPS_OK, DPS_ERR_INVAL, DPS_ERR_TOO_LARGE, DPS_ERR_NOMEM, or
 * DPS_ERR_INTERNAL (no random bytes for a key).
 */
int model_enrollment_from_json(const char *buf, size_t len, struct enrollment **out,
                               struct dps_error *err);

/* model_enrollment_from_json() with enum model_parse_flags. */
int model_enrollment_from_json_flags(const char *buf, size_t len, int flags,
                                     struct enrollment **out, struct dps_error *err);

/* As model_enrollment_from_json_flags(), from a parsed object (borrowed). */
int model_enrollment_parse(json_t *obj, int flags, struct enrollment **out, struct dps_error *err);

/*
 * An EnrollmentGroup; as model_enrollment_from_json(). Attestation must be
 * x509 with signingCertificates (CA certificates) or caReferences, or
 * symmetricKey.
 */
int model_group_from_json(const char *buf, size_t len, struct enrollment_group **out,
                          struct dps_error *err);
int model_group_from_json_flags(const char *buf, size_t len, int flags,
                                struct enrollment_group **out, struct dps_error *err);
int model_group_parse(json_t *obj, int flags, struct enrollment_group **out, struct dps_error *err);

/*
 * The enrollment, group or attestation mechanism in Azure's shape, with
 * enum model_json_flags.
 *
 * Returns: a new reference, released by the caller with json_decref(), or
 * NULL when out of memory.
 */
json_t *model_enrollment_to_json(const struct enrollment *e, int flags);
json_t *model_group_to_json(const struct enrollment_group *g, int flags);
json_t *model_attestation_to_json(const struct attestation *a, int flags);

/* Frees e (and its registration_state), wiping keys; NULL is a no-op. */
void enrollment_free(struct enrollment *e);
/* Frees g, wiping keys; NULL is a no-op. */
void enrollment_group_free(struct enrollment_group *g);

/*
 * Name of a status ("assigned"...). Policies and substatuses are named by
 * allocation_policy_name() and registration_substatus_name() (core/allocate.h).
 */
const char *model_registration_status_name(enum registration_status s);

/*
 * Parses a DeviceRegistrationState (as stored, or as the service shows it).
 * registrationId and status are required.
 *
 * Returns: DPS_OK, DPS_ERR_INVAL, DPS_ERR_TOO_LARGE or DPS_ERR_NOMEM; out
 * is freed with registration_state_free().
 */
int model_registration_state_from_json(const char *buf, size_t len, struct registration_state **out,
                                       struct dps_error *err);

/* The state in the service API's shape; a new reference, NULL when out of memory. */
json_t *model_registration_state_to_json(const struct registration_state *r);

/* Frees r; NULL is a no-op. */
void registration_state_free(struct registration_state *r);

/*
 * Parses a QuerySpecification {"query": "..."}. An empty body (or only
 * whitespace) means "*": the registration query sends none.
 *
 * out: on success, the query text, freed by the caller with free().
 *
 * Returns: DPS_OK, DPS_ERR_INVAL, DPS_ERR_TOO_LARGE or DPS_ERR_NOMEM.
 */
int model_query_from_json(const char *buf, size_t len, char **out, struct dps_error *err);

enum bulk_mode {
    BULK_CREATE,
    BULK_UPDATE,
    BULK_UPDATE_IF_MATCH_ETAG,
    BULK_DELETE,
};

/* One item of a bulk operation. */
struct bulk_item {
    char *id;                       /* registrationId / enrollmentGroupId as given, or "" */
    char *etag;                     /* the item's etag as given, or NULL */
    struct enrollment *enrollment;  /* parsed item (enrollments), NULL if it failed */
    struct enrollment_group *group; /* parsed item (groups), NULL if it failed */
    int error_code;                 /* 0, or Azure's code (status * 1000 + n) */
    char error_status[256];         /* message when error_code != 0 */
};

/* A BulkEnrollmentOperation or BulkEnrollmentGroupOperation. */
struct bulk_op {
    enum bulk_mode mode;
    bool groups; /* enrollmentGroups rather than enrollments */
    size_t count;
    struct bulk_item items[MODEL_BULK_MAX];
};

/*
 * Parses a bulk operation. mode is compared case-insensitively; at most
 * MODEL_BULK_MAX items. Each item is parsed like a single PUT (delete only
 * needs the id): an item that fails gets error_code 400000-style code and a
 * message, and the others still go through. The caller runs the items and
 * sets error_code / error_status on those that fail.
 *
 * groups: true for /enrollmentGroups (the array is "enrollmentGroups").
 * flags: enum model_parse_flags.
 * out: on success, freed by the caller with model_bulk_free().
 *
 * Returns: DPS_OK (even when items failed), DPS_ERR_INVAL (the operation
 * itself is malformed), DPS_ERR_TOO_LARGE, DPS_ERR_NOMEM.
 */
int model_bulk_from_json(const char *buf, size_t len, bool groups, int flags, struct bulk_op **out,
                         struct dps_error *err);

/*
 * The BulkEnrollmentOperationResult (or group result):
 * {"isSuccessful":bool,"errors":[{"registrationId"|"enrollmentGroupId",
 * "errorCode","errorStatus"}]}. A new reference, NULL when out of memory.
 */
json_t *model_bulk_result_to_json(const struct bulk_op *op);

/* Frees op and its items; NULL is a no-op. */
void model_bulk_free(struct bulk_op *op);

/*
 * Parses JSON text with the model's bounds: at most MODEL_JSON_MAX bytes,
 * nesting at most MODEL_JSON_DEPTH_MAX, duplicate keys refused.
 *
 * Returns: DPS_OK with *out a new reference, DPS_ERR_INVAL, DPS_ERR_TOO_LARGE.
 */
int model_json_load(const char *buf, size_t len, json_t **out, struct dps_error *err);

/*
 * A new symmetric key: MODEL_KEY_BYTES random bytes in base64.
 *
 * Returns: DPS_OK, DPS_ERR_NOMEM or DPS_ERR_INTERNAL (no randomness).
 */
int model_generate_key(char **out, struct dps_error *err);

#endif
