/* SPDX-License-Identifier: MIT */
/*
 * The registration service (dps-protocol.md §4, §7, §9), independent of the
 * transport: given the id scope, the registration id, the device's TLS
 * chain or SAS token and its DeviceRegistration body, it attests the device
 * against the stored enrollments, allocates a linked hub, applies the
 * reprovision policy, writes the registration record and the attempt (with
 * its decision trace) in one transaction, and returns the answer as a status
 * and a JSON body. HTTP (server/device_api.c) and MQTT map that answer onto
 * their wire; nothing here knows either.
 *
 * Stored shapes (see docs/device-api.md): the registration record is a
 * DeviceRegistrationState plus operationId, trackingId, attestationType,
 * enrollmentGroupId, initialTwin, capabilities and devicePayload; each
 * attempt is {operationId, trackingId, registrationId, status, enrollment,
 * trace, registrationState}.
 */
#ifndef DPS_SERVER_PROVISION_H
#define DPS_SERVER_PROVISION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "core/attest.h"
#include "dps/error.h"
#include "store/store.h"

/* Longest operation id we issue ("1." + 16 hex + "." + uuid). */
#define PROVISION_OPERATION_ID_MAX 64
/* Seconds a device is told to wait before polling an `assigning` operation. */
#define PROVISION_RETRY_AFTER 3
/* Attempts of one registration searched for an operation id. */
#define PROVISION_OPERATION_SEARCH 100
/* Enrollment groups read for one attestation, at most. */
#define PROVISION_GROUPS_MAX 1000

struct provision;
struct provision_cache;

/*
 * Creates the registration service's shared, read-only state.
 *
 * id_scope:   the service's ID scope ("0ne..."); copied.
 * hub_specs:  n_hubs linked hub specifications "HOST[,weight=N][,location=L][,apply=B]"
 *             (the --linked-hub directive); parsed and copied.
 * region_specs: n_regions client network rules "CIDR=LOCATION" (the --region
 *             directive, server/region.h) that give geoLatency a device's
 *             region from its address; parsed and copied. None: geoLatency
 *             falls back to hashed.
 * out:        on DPS_OK, the state; free with provision_free(). It may be
 *             read by every worker at once.
 *
 * Returns: DPS_OK, DPS_ERR_INVAL (no id scope, a bad hub or region
 * specification: the message names it), DPS_ERR_NOMEM.
 */
int provision_new(const char *id_scope, char *const *hub_specs, size_t n_hubs,
                  char *const *region_specs, size_t n_regions, struct provision **out,
                  struct dps_error *err);

/* Frees p; NULL is a no-op. */
void provision_free(struct provision *p);

/* The ID scope p serves; borrowed from p. */
const char *provision_id_scope(const struct provision *p);

/* What a device asked; every pointer borrowed for the call. */
struct provision_request {
    const char *id_scope;        /* from the path or MQTT user name, not yet checked */
    const char *registration_id; /* from the path or MQTT user name, not yet checked */
    STACK_OF(X509) * chain;      /* the TLS client chain, leaf first; NULL when none */
    const char *sas_token;       /* the SAS token; NULL when none */
    size_t sas_len;
    const char *body; /* the DeviceRegistration JSON; may be empty */
    size_t body_len;
    const char *api_version;    /* may be NULL */
    const char *peer;           /* the client's "ADDR:PORT", for geoLatency; NULL when unknown */
    const char *tracking_id;    /* the request's tracking id (uuid), required */
    time_t now;                 /* 0: the current time */
    struct attest_cache *cache; /* the worker's trust store cache, or NULL */
    /* The worker's enrollment group cache, or NULL: read every group each time. */
    struct provision_cache *group_cache;
    struct store *store; /* the worker's store connection, required */
    /* What an earlier attestation of the same token found (MQTT: kept from
     * the CONNECT to the register request), or NULL; see attest.h. */
    struct attest_symkey_memo *symkey_memo;
};

/*
 * A per-worker cache of the parsed enrollment groups and their attestation
 * candidates (X.509 certificates decoded, referenced CA certificates read),
 * so that a registration costs one point read of the store's groups
 * generation (STORE_GENERATION_GROUPS) instead of reading and parsing every
 * group. Every write of a group or CA certificate bumps that generation in
 * its transaction, on any node; the cache reloads when it changed. Not
 * thread-safe: keep one per worker, and use it only with stores on one DSN.
 *
 * provision_cache_new: Returns the empty cache; free with provision_cache_free().
 * provision_cache_free: frees pc and what it holds; NULL is a no-op.
 * provision_cache_stats: copies the counters into *out.
 */
struct provision_cache_stats {
    uint64_t loads; /* times the groups were read from the store */
    uint64_t hits;  /* attestations served from the cache */
};

struct provision_cache *provision_cache_new(void);
void provision_cache_free(struct provision_cache *pc);
void provision_cache_stats(const struct provision_cache *pc, struct provision_cache_stats *out);

/* Room for the longest operation status name ("assigning") and its NUL. */
#define PROVISION_STATUS_MAX 16

/* The answer. Release with provision_result_release(). */
struct provision_result {
    /*
     * 200: a RegistrationOperationStatus (or, for a status lookup, a
     * DeviceRegistrationResult) in text or body, status assigned, failed
     * or disabled; 202: assigning, as for 200, retry_after set;
     * 400, 401, 404, 413, 500: an error, error_code and message set.
     */
    int status;
    int error_code;    /* Azure errorCode (status * 1000 + n) when status >= 400 */
    char message[256]; /* short, for the device: names no enrollment, group or CA */
    int retry_after;   /* seconds, for 202 */
    /*
     * The operation's status of a 200 or 202 that answers a registration or
     * an operation lookup: "assigned", "failed", "disabled" or "assigning";
     * "" otherwise (errors, a status lookup, an authentication, a stored
     * status of another name). What the answer's "status" member holds,
     * without reading the answer.
     */
    char operation_status[PROVISION_STATUS_MAX];
    /*
     * The answer as a tree; owned. NULL on errors, and when text holds the
     * answer (a registration's 200): read the answer with
     * provision_result_json() rather than here.
     */
    json_t *body;
    /*
     * The answer as json_dumps(JSON_COMPACT) of the same tree would write
     * it, when it was composed from text rendered once (a registration's
     * 200); owned, NULL otherwise (then body holds the answer). An HTTP
     * reply sends it as is.
     */
    char *text;
    size_t text_len;
};

/* Releases what r holds and zeroes it; r may be NULL. */
void provision_result_release(struct provision_result *r);

/*
 * The answer of r as a tree, for the readers that need more than status
 * and operation_status (diagnostics, a re-encoding, tests): body, or text
 * parsed (which costs a parse: the registration path sends text as is).
 *
 * Returns: a new reference (release with json_decref()), or NULL when r
 * holds no answer (errors, an authentication's 200).
 */
json_t *provision_result_json(const struct provision_result *r);

/*
 * Registers a device (RegisterDevice): checks the input, attests, allocates
 * and writes the record and the attempt before returning. Every attempt
 * that reaches attestation is recorded, success or failure; bad input
 * (unknown id scope, an id outside the rules, malformed or mismatching
 * body) writes nothing.
 *
 * out: filled; the caller answers with it and releases it.
 *
 * Returns: DPS_OK when out holds an answer for the device (errors included);
 * DPS_ERR_INVAL for a caller bug (NULL store, tracking id or ids).
 */
int provision_register(const struct provision *p, const struct provision_request *req,
                       struct provision_result *out);

/*
 * Registration in two halves, so that the write can leave the worker's
 * thread: provision_decide() does everything that reads (input checks,
 * attestation, allocation) on the worker's store connection and returns
 * the writes it decided; provision_write_run() performs them on any store
 * connection (the group commit's, inside its batch), and
 * provision_write_finish() turns the outcome into the device's answer.
 * provision_register() is the three in a row; provision_register_async()
 * runs the write through the group commit.
 */
struct provision_write;
struct committer;

/*
 * Decides a registration without writing anything (also what an "explain"
 * view needs).
 *
 * write: on DPS_OK, either the writes to perform (free with
 *        provision_write_free(); out is then zeroed and meaningless until
 *        provision_write_finish()), or NULL when out already holds the
 *        final answer (bad input, a store read failure: nothing to write).
 *        Holds copies: req may go away.
 *
 * Returns: DPS_OK; DPS_ERR_INVAL for a caller bug (as provision_register()).
 */
int provision_decide(const struct provision *p, const struct provision_request *req,
                     struct provision_write **write, struct provision_result *out);

/*
 * Writes the record (when the decision has one) and the attempt in one
 * transaction, or as one unit of the caller's open batch. Matches
 * committer_run_fn: write is a struct provision_write *. May run on any
 * thread that owns s; the record as written is kept in write.
 *
 * Returns: the codes of store_registration_put_with_attempt() and
 * store_attempt_append().
 */
int provision_write_run(struct store *s, void *write, struct dps_error *err);

/*
 * The device's answer once the write is done: rc is provision_write_run()'s
 * result (or DPS_ERR_STORE when its batch failed). out: filled; release
 * with provision_result_release().
 */
void provision_write_finish(const struct provision_write *write, int rc,
                            struct provision_result *out);

/* Frees write; NULL is a no-op. */
void provision_write_free(struct provision_write *write);

/*
 * The answer of provision_register_async(): res is borrowed for the call
 * (take res->text or res->body by setting it to NULL to keep it).
 */
typedef void (*provision_done_fn)(void *arg, struct provision_result *res);

/*
 * Registers a device as provision_register() does, but writes through the
 * group commit: the reads run now on req->store, the record and attempt are
 * queued on cm, and done runs on target's thread (a struct worker *: via
 * worker_call()) once the batch holding them is durable. The device never
 * gets a refusal because the queue is long. When nothing is to be written
 * (bad input, a store read failure), done runs before this returns.
 *
 * Both device transports call it (device_api.c, and mqtt_session.c for a
 * register and for a CONNECT refused for its SAS token), with target = the
 * connection's worker, and answer from done; a caller keeps its request or
 * session alive until done ran and checks there whether the client is
 * still connected. provision_register() is what a caller without a group
 * commit (unit tests) uses instead: the same outcome, with the write and
 * its fsync on the caller's thread.
 *
 * req:    borrowed for the call only: everything needed later is copied.
 * cm:     the group commit; required.
 * target: passed to the committer's post function (NULL: done runs on the
 *         committer's thread, for tests).
 * done:   required; runs exactly once when DPS_OK is returned.
 *
 * Returns: DPS_OK; DPS_ERR_INVAL for a caller bug (then done is not called).
 */
int provision_register_async(const struct provision *p, const struct provision_request *req,
                             struct committer *cm, void *target, provision_done_fn done, void *arg);

/*
 * Answers OperationStatusLookup: the final state of operation_id of
 * registration_id, from the record or the attempt history (durable, so any
 * node can answer). The unguessable operation id is the capability; the
 * device is not attested again. 404 for an unknown scope or operation.
 *
 * Returns: DPS_OK (out filled), DPS_ERR_INVAL for a caller bug.
 */
int provision_operation(const struct provision *p, struct store *store, const char *id_scope,
                        const char *registration_id, const char *operation_id,
                        struct provision_result *out);

/*
 * Answers DeviceRegistrationStatusLookup: attests the device as
 * provision_register() does (without writing an attempt) and returns its
 * record as a DeviceRegistrationResult; 404 when it has none.
 *
 * Returns: as provision_register().
 */
int provision_status_lookup(const struct provision *p, const struct provision_request *req,
                            struct provision_result *out);

/*
 * Attests the device as provision_status_lookup() does, and stops there:
 * no record is read. For a credential checked before the request (the
 * MQTT CONNECT password). out->status is 200 (no body) when the device is
 * attested (an enrollment that allows it, enabled or disabled), 401 when
 * refused, or an input (400, 404) or store (500) error as
 * provision_register() gives it.
 *
 * Returns: as provision_register().
 */
int provision_authenticate(const struct provision *p, const struct provision_request *req,
                           struct provision_result *out);

#endif
