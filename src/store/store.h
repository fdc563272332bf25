/* SPDX-License-Identifier: MIT */
/*
 * The store: dpsd's one interface to durable state (enrollments, enrollment
 * groups, registration records, registration attempts, CA certificates,
 * shared access policies, settings and the audit trail). Backends sit behind
 * a table of function pointers chosen by the DSN scheme; this header knows
 * nothing of SQL, JSON parsing or sockets. Objects are opaque JSON text plus
 * the few indexed columns the server looks things up by.
 *
 * Threads: a struct store is one connection and belongs to one thread at a
 * time. Every worker opens its own on the same DSN; several threads and
 * processes may write at once.
 *
 * Durability: every write function returns only after its transaction is
 * committed and synced; a failed write leaves nothing behind.
 *
 * Server-maintained fields: the store generates the etag and the creation
 * and update times of every object and keeps them in columns; the JSON text
 * it keeps is the body as the caller gave it. The columns are authoritative:
 * the caller renders an object by taking the body and setting `etag`,
 * `createdDateTimeUtc` and `lastUpdatedDateTimeUtc` from the returned
 * struct store_object, so the stored body and the etag a client sees can
 * never disagree. See docs/internals/store.md.
 */
#ifndef DPS_STORE_H
#define DPS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dps/error.h"

struct store;

/* Largest page a list call returns; larger limits are lowered to this. */
#define STORE_PAGE_MAX 1000
/* Page size used when a list call is given a limit of 0. */
#define STORE_PAGE_DEFAULT 100
/* Longest id (registration id, group id, certificate or policy name) accepted. */
#define STORE_ID_MAX 256
/* Largest JSON body accepted for one object or attempt trace, in bytes. */
#define STORE_JSON_MAX (1024 * 1024)
/* Longest text accepted in any other column (status, hub, key, setting value). */
#define STORE_TEXT_MAX 4096

/* The kinds of JSON object the store keeps, each in its own table. */
enum store_kind {
    STORE_ENROLLMENT,   /* individual enrollment, keyed by registration id */
    STORE_GROUP,        /* enrollment group, keyed by enrollment group id */
    STORE_REGISTRATION, /* device registration record, keyed by registration id */
    STORE_CA_CERT,      /* CA certificate, keyed by its name */
    STORE_KIND_COUNT,
};

/*
 * One stored object. The store fills it; the caller releases it with
 * store_object_release(). Indexed columns that the kind does not have, or
 * that were not set, are NULL.
 */
struct store_object {
    char *id;           /* as created (ids compare case-insensitively) */
    char *etag;         /* opaque; compare byte-exact with If-Match */
    char *json;         /* the body, NUL-terminated */
    int64_t created_ms; /* Unix time in milliseconds; kept on update */
    int64_t updated_ms; /* Unix time in milliseconds of the last write */
    char *device_id;    /* enrollment, registration */
    char *attestation;  /* enrollment, group: "x509", "symmetricKey", "tpm" */
    char *group_id;     /* registration: its enrollment group, NULL for individual */
    char *status;       /* registration: "assigned", "failed", ... */
    char *assigned_hub; /* registration */
};

/* Frees what obj holds and zeroes it; obj may be NULL or already released. */
void store_object_release(struct store_object *obj);

/* One page of objects in id order. Release with store_page_release(). */
struct store_page {
    struct store_object *items;
    size_t n;
    char *next_cursor; /* opaque; NULL when no row follows this page */
};

/* Frees what page holds and zeroes it; page may be NULL or already released. */
void store_page_release(struct store_page *page);

/* What to write with store_*_put(). Every pointer is borrowed for the call. */
struct store_put {
    const char *id;   /* required, 1..STORE_ID_MAX bytes */
    const char *json; /* required, at most STORE_JSON_MAX bytes */
    /*
     * NULL: create or update. "*": the object must exist. Any other value:
     * the object must exist with exactly this etag. A mismatch, or an
     * If-Match on an object that does not exist, is DPS_ERR_PRECONDITION
     * (HTTP 412, as Azure answers a conditional write to a missing entity).
     */
    const char *if_match;
    bool create_only; /* fail with DPS_ERR_CONFLICT if the object exists */
    /* Indexed columns; NULL when absent. Ignored for kinds without them. */
    const char *device_id;
    const char *attestation;
    const char *group_id;
    const char *status;
    const char *assigned_hub;
};

/*
 * A list request: keyset paging in id order (case-insensitive). At most one
 * filter may be set.
 */
struct store_query {
    const char *after;       /* cursor from the previous page, or NULL for the first */
    size_t limit;            /* 0: STORE_PAGE_DEFAULT; lowered to STORE_PAGE_MAX */
    const char *group_id;    /* registrations of this enrollment group only */
    const char *attestation; /* enrollments or groups of this attestation type only */
};

/*
 * Opens a connection to the store named by dsn: "sqlite:PATH" (the file is
 * created if missing, and the schema brought to the current version).
 * "postgres:" is reserved for the shared backend.
 *
 * dsn: borrowed.
 * out: set to the new connection on success; close with store_close().
 * err: filled on failure.
 *
 * Returns: DPS_OK; DPS_ERR_INVAL for an unknown or unavailable scheme or an
 * empty path; DPS_ERR_STORE when the database cannot be opened, is not a
 * database, or has a newer schema than this build knows (the message names
 * the path).
 */
int store_open(const char *dsn, struct store **out, struct dps_error *err);

/* Closes the connection; a batch still open is rolled back. s may be NULL. */
void store_close(struct store *s);

/* The schema version this build writes. */
int store_schema_version(void);

/*
 * Objects: individual enrollments (store_enrollment_*), enrollment groups
 * (store_group_*), registration records (store_registration_*) and CA
 * certificates (store_ca_cert_*) share one shape; the generic functions take
 * the kind, the named ones are shorthands.
 *
 * store_object_get: fills *out with the object id of this kind.
 *   Returns DPS_OK, DPS_ERR_NOT_FOUND, DPS_ERR_INVAL (bad id), DPS_ERR_STORE.
 *
 * store_object_put: creates or updates per the If-Match rules of struct
 *   store_put, with a new etag and update time (creation time kept).
 *   out may be NULL; otherwise it receives the object as stored.
 *   Returns DPS_OK, DPS_ERR_PRECONDITION, DPS_ERR_CONFLICT (create_only),
 *   DPS_ERR_INVAL (missing or oversized id or column), DPS_ERR_TOO_LARGE
 *   (json over STORE_JSON_MAX), DPS_ERR_STORE.
 *
 * store_object_delete: deletes; if_match as in struct store_put, NULL for
 *   unconditional.
 *   Returns DPS_OK, DPS_ERR_NOT_FOUND, DPS_ERR_PRECONDITION, DPS_ERR_INVAL,
 *   DPS_ERR_STORE.
 *
 * store_object_list: fills *out with the next page after q->after; the page
 *   has a next_cursor only if more rows follow.
 *   Returns DPS_OK, DPS_ERR_INVAL (a filter the kind has no column for, or a
 *   cursor too long), DPS_ERR_STORE.
 *
 * store_object_count: sets *out to the number of objects matching q's
 *   filter (q may be NULL; after and limit are ignored).
 *   Returns DPS_OK, DPS_ERR_INVAL, DPS_ERR_STORE.
 *
 * Out-parameters are set only on success.
 */
int store_object_get(struct store *s, enum store_kind kind, const char *id,
                     struct store_object *out, struct dps_error *err);
int store_object_put(struct store *s, enum store_kind kind, const struct store_put *in,
                     struct store_object *out, struct dps_error *err);
int store_object_delete(struct store *s, enum store_kind kind, const char *id, const char *if_match,
                        struct dps_error *err);
int store_object_list(struct store *s, enum store_kind kind, const struct store_query *q,
                      struct store_page *out, struct dps_error *err);
int store_object_count(struct store *s, enum store_kind kind, const struct store_query *q,
                       int64_t *out, struct dps_error *err);

#define STORE_KIND_FUNCS(name, kind)                                                               \
    static inline int store_##name##_get(struct store *s, const char *id,                          \
                                         struct store_object *out, struct dps_error *err)          \
    {                                                                                              \
        return store_object_get(s, kind, id, out, err);                                            \
    }                                                                                              \
    static inline int store_##name##_put(struct store *s, const struct store_put *in,              \
                                         struct store_object *out, struct dps_error *err)          \
    {                                                                                              \
        return store_object_put(s, kind, in, out, err);                                            \
    }                                                                                              \
    static inline int store_##name##_delete(struct store *s, const char *id, const char *if_match, \
                                            struct dps_error *err)                                 \
    {                                                                                              \
        return store_object_delete(s, kind, id, if_match, err);                                    \
    }                                                                                              \
    static inline int store_##name##_list(struct store *s, const struct store_query *q,            \
                                          struct store_page *out, struct dps_error *err)           \
    {                                                                                              \
        return store_object_list(s, kind, q, out, err);                                            \
    }                                                                                              \
    static inline int store_##name##_count(struct store *s, const struct store_query *q,           \
                                           int64_t *out, struct dps_error *err)                    \
    {                                                                                              \
        return store_object_count(s, kind, q, out, err);                                           \
    }

STORE_KIND_FUNCS(enrollment, STORE_ENROLLMENT)
STORE_KIND_FUNCS(group, STORE_GROUP)
STORE_KIND_FUNCS(registration, STORE_REGISTRATION)
STORE_KIND_FUNCS(ca_cert, STORE_CA_CERT)
#undef STORE_KIND_FUNCS

/*
 * Registration attempts: an append-only history of every registration,
 * success or failure, with the decision trace for the operator.
 */
struct store_attempt {
    int64_t id;            /* increasing with time of append */
    int64_t time_ms;       /* Unix time in milliseconds */
    char *registration_id; /* as the device sent it */
    char *status;          /* "assigned", "failed", "disabled", ... */
    bool success;          /* false for every kind of failure */
    char *tracking_id;     /* the trackingId the device was given, or NULL */
    char *json;            /* the decision trace */
};

/* What to append with store_attempt_append(); pointers borrowed for the call. */
struct store_attempt_in {
    const char *registration_id; /* required */
    const char *status;          /* required */
    bool success;
    const char *tracking_id; /* may be NULL */
    const char *json;        /* required; at most STORE_JSON_MAX bytes */
};

/* Newest first. Release with store_attempt_list_release(). */
struct store_attempt_list {
    struct store_attempt *items;
    size_t n;
};

/* Releases every item, frees the array and zeroes list; list may be NULL. */
void store_attempt_list_release(struct store_attempt_list *list);

/*
 * Appends one attempt, stamped with the current time.
 * id_out: may be NULL; receives the new attempt's id.
 * Returns: DPS_OK, DPS_ERR_INVAL, DPS_ERR_TOO_LARGE, DPS_ERR_STORE.
 */
int store_attempt_append(struct store *s, const struct store_attempt_in *in, int64_t *id_out,
                         struct dps_error *err);

/*
 * Lists attempts newest first: those of registration_id (case-insensitive),
 * or of every registration when it is NULL; only failures if failures_only.
 * before_id: 0 for the newest, else only attempts with a smaller id (the id of
 * the last item of the previous page). limit as in struct store_query.
 * Returns: DPS_OK, DPS_ERR_INVAL, DPS_ERR_STORE.
 */
int store_attempt_list(struct store *s, const char *registration_id, bool failures_only,
                       int64_t before_id, size_t limit, struct store_attempt_list *out,
                       struct dps_error *err);

/*
 * Writes a registration record and appends its attempt in one transaction:
 * both are stored or neither. rec as for store_object_put(); out may be NULL.
 * Returns: as store_object_put() and store_attempt_append().
 */
int store_registration_put_with_attempt(struct store *s, const struct store_put *rec,
                                        const struct store_attempt_in *attempt,
                                        struct store_object *out, struct dps_error *err);

/*
 * Batches: the writes between store_batch_begin() and store_batch_commit()
 * share one transaction and one sync (group commit). Each write inside a
 * batch still succeeds or fails on its own (a failed put leaves the batch's
 * other writes in place); nothing is durable until store_batch_commit()
 * returns DPS_OK. Batches do not nest. Reads inside a batch see its writes.
 *
 * store_batch_begin: Returns DPS_OK or DPS_ERR_STORE (e.g. the database
 *   stayed locked by another writer past the busy timeout).
 * store_batch_commit: Returns DPS_OK or DPS_ERR_STORE; on failure every write
 *   of the batch is rolled back.
 * store_batch_rollback: discards the batch; a no-op without one.
 */
int store_batch_begin(struct store *s, struct dps_error *err);
int store_batch_commit(struct store *s, struct dps_error *err);
void store_batch_rollback(struct store *s);

/*
 * store_batch_changes: a count that grows with every row the open batch's
 * writes change (inserted, updated or deleted), for a caller that runs
 * several writes without units and must know whether one that failed left
 * something behind: a failed write adds nothing, so a count unchanged
 * across a failed request means that the request wrote nothing (SQLite
 * undoes a failed statement by itself). Only inside a batch.
 *
 * out: on DPS_OK, the count; -1 when the backend cannot count (PostgreSQL):
 *      then run each request in a unit.
 *
 * Returns: DPS_OK; DPS_ERR_STORE when the database has rolled the batch
 * back after an error (disk full, I/O): the batch must fail as a whole.
 */
int store_batch_changes(struct store *s, int64_t *out, struct dps_error *err);

/*
 * Reads that share one snapshot: the reads between store_read_begin() and
 * store_read_end() see the store as of the first of them, and cost one
 * snapshot instead of one each (SQLite: a deferred transaction). Only
 * reads in between: a write fails. Not inside a batch; does not nest. A
 * backend whose reads are cheap alone (PostgreSQL) does nothing.
 *
 * store_read_begin: Returns DPS_OK or DPS_ERR_STORE; on failure the reads
 *   still work, each on its own, and store_read_end() is still allowed.
 * store_read_end: ends it; a no-op without one.
 */
int store_read_begin(struct store *s, struct dps_error *err);
void store_read_end(struct store *s);

/*
 * store_checkpoint_in_background: for the connection that makes most of a
 * process's writes (dpsd's group commit). SQLite copies the write-ahead log
 * back into the database file now and then (a checkpoint: thousands of
 * page writes and an fsync of the database); by default the commit that
 * fills the log does it, and every write waiting behind that commit waits
 * for it too. After this call a thread of the connection's own does it on a
 * connection of its own, without holding up commits; the commit itself
 * takes over only when the log has grown far past the usual point (the
 * thread cannot keep up). The thread stops when s is closed. PostgreSQL
 * has nothing to move: DPS_OK, and nothing changes.
 *   Returns DPS_OK, DPS_ERR_STORE.
 * store_background_checkpoints: how many checkpoints that thread has run
 *   (0 without one).
 */
int store_checkpoint_in_background(struct store *s, struct dps_error *err);
int64_t store_background_checkpoints(struct store *s);

/*
 * Units inside a batch: the writes between store_batch_unit_begin() and
 * store_batch_unit_end() succeed or fail together (a savepoint), whatever
 * the rest of the batch does. The group commit runs each request's writes
 * (a record and its attempt, an object and its audit row) as one unit
 * when a request of the batch has failed after writing, or when the
 * backend cannot count changes (store_batch_changes()). Units do not nest;
 * call only inside a batch.
 *
 * store_batch_unit_begin: Returns DPS_OK or DPS_ERR_STORE.
 * store_batch_unit_end: keep true keeps the unit's writes in the batch,
 *   false undoes them. Returns DPS_OK or DPS_ERR_STORE (the unit could not
 *   be kept or undone: the batch must then be rolled back).
 */
int store_batch_unit_begin(struct store *s, struct dps_error *err);
int store_batch_unit_end(struct store *s, bool keep, struct dps_error *err);

/*
 * Shared access policies. Keys are secrets: release wipes them.
 */
enum store_right {
    STORE_RIGHT_SERVICE_CONFIG = 1 << 0,
    STORE_RIGHT_ENROLLMENT_READ = 1 << 1,
    STORE_RIGHT_ENROLLMENT_WRITE = 1 << 2,
    STORE_RIGHT_REGISTRATION_READ = 1 << 3,
    STORE_RIGHT_REGISTRATION_WRITE = 1 << 4,
    STORE_RIGHT_DEVICE_CONNECT = 1 << 5,
};

struct store_policy {
    char *name;          /* compared case-insensitively */
    char *primary_key;   /* base64 text */
    char *secondary_key; /* base64 text, or NULL */
    uint32_t rights;     /* enum store_right bits */
    char *etag;          /* changes on every write: cache key for compiled keys */
    int64_t created_ms;
    int64_t updated_ms;
};

/* Wipes the keys, frees what p holds and zeroes it; p may be NULL. */
void store_policy_release(struct store_policy *p);

struct store_policy_list {
    struct store_policy *items;
    size_t n;
};

/* Releases every item and wipes their keys, frees the array and zeroes list; list may be NULL. */
void store_policy_list_release(struct store_policy_list *list);

/*
 * store_policy_get: Returns DPS_OK, DPS_ERR_NOT_FOUND, DPS_ERR_INVAL, DPS_ERR_STORE.
 * store_policy_put: creates or replaces (creation time kept). name and
 *   primary_key required, secondary_key may be NULL; etag/times of in are
 *   ignored. out may be NULL.
 *   Returns DPS_OK, DPS_ERR_INVAL, DPS_ERR_STORE.
 * store_policy_create: as store_policy_put, but only creates: when a policy
 *   of that name exists (written by anyone, up to the moment of the write)
 *   it changes nothing and returns DPS_ERR_CONFLICT.
 * store_policy_delete: Returns DPS_OK, DPS_ERR_NOT_FOUND, DPS_ERR_INVAL, DPS_ERR_STORE.
 * store_policy_list: every policy in name order, at most STORE_PAGE_MAX.
 *   Returns DPS_OK, DPS_ERR_STORE.
 */
int store_policy_get(struct store *s, const char *name, struct store_policy *out,
                     struct dps_error *err);
int store_policy_put(struct store *s, const struct store_policy *in, struct store_policy *out,
                     struct dps_error *err);
int store_policy_create(struct store *s, const struct store_policy *in, struct store_policy *out,
                        struct dps_error *err);
int store_policy_delete(struct store *s, const char *name, struct dps_error *err);
int store_policy_list(struct store *s, struct store_policy_list *out, struct dps_error *err);

/*
 * Settings: small key/value pairs (the ID scope, ...).
 *
 * store_setting_get: *out receives a copy the caller frees with free().
 *   Returns DPS_OK, DPS_ERR_NOT_FOUND, DPS_ERR_INVAL, DPS_ERR_STORE.
 * store_setting_put: creates or replaces.
 *   Returns DPS_OK, DPS_ERR_INVAL, DPS_ERR_STORE.
 * store_setting_create: only creates: when the key is set (by anyone, up to
 *   the moment of the write) it changes nothing and returns DPS_ERR_CONFLICT.
 *   Nodes that start together on one store agree through it: exactly one
 *   creates, the others read what that one wrote.
 */
int store_setting_get(struct store *s, const char *key, char **out, struct dps_error *err);
int store_setting_put(struct store *s, const char *key, const char *value, struct dps_error *err);
int store_setting_create(struct store *s, const char *key, const char *value,
                         struct dps_error *err);

/*
 * Generations: settings rows whose value changes on every write of a family
 * of objects, so that a cache in any process on the store can tell with one
 * primary-key read whether what it holds is still current. A writer bumps
 * the generation in the same transaction (batch or unit) as the write;
 * a reader reads the generation first, then the objects, and labels what it
 * read with that generation (a write in between only causes a reload).
 *
 * Values are opaque: compare them with strcmp(). A bump writes the next
 * counter plus a random part ("42.9f1c...") so that two writers racing on
 * one counter still leave a value neither reader has seen.
 */
/* Enrollment groups, and the CA certificates their caReferences name. */
#define STORE_GENERATION_GROUPS "generation.groups"
/* Shared access policies. */
#define STORE_GENERATION_POLICIES "generation.policies"
/* Longest generation value store_generation_get() returns, NUL included. */
#define STORE_GENERATION_SIZE 48

/*
 * store_generation_get: copies the current value of generation name into
 *   out (STORE_GENERATION_SIZE bytes); "0" when it was never bumped.
 *   Returns DPS_OK, DPS_ERR_INVAL (bad name), DPS_ERR_STORE.
 * store_generation_bump: sets generation name to a new value. Call inside
 *   the transaction of the write it announces (inside a batch or unit);
 *   outside one it is a transaction of its own.
 *   Returns DPS_OK, DPS_ERR_INVAL, DPS_ERR_STORE.
 */
int store_generation_get(struct store *s, const char *name, char out[STORE_GENERATION_SIZE],
                         struct dps_error *err);
int store_generation_bump(struct store *s, const char *name, struct dps_error *err);

/*
 * The audit trail: who changed what, append-only.
 */
struct store_audit {
    int64_t id;
    int64_t time_ms;
    char *actor;       /* policy name, "device", ... */
    char *action;      /* "put", "delete", ... */
    char *kind;        /* "enrollment", "enrollmentGroup", ... */
    char *object_id;   /* may be NULL */
    char *tracking_id; /* may be NULL */
    char *outcome;     /* "ok", or the error in words */
};

/* What to append; pointers borrowed. actor, action, kind, outcome required. */
struct store_audit_in {
    const char *actor;
    const char *action;
    const char *kind;
    const char *object_id;
    const char *tracking_id;
    const char *outcome;
};

struct store_audit_list {
    struct store_audit *items;
    size_t n;
};

/* Releases every item, frees the array and zeroes list; list may be NULL. */
void store_audit_list_release(struct store_audit_list *list);

/*
 * store_audit_append: stamps the current time. id_out may be NULL.
 *   Returns DPS_OK, DPS_ERR_INVAL, DPS_ERR_STORE.
 * store_audit_list: newest first; before_id and limit as in store_attempt_list().
 *   Returns DPS_OK, DPS_ERR_STORE.
 */
int store_audit_append(struct store *s, const struct store_audit_in *in, int64_t *id_out,
                       struct dps_error *err);
int store_audit_list(struct store *s, int64_t before_id, size_t limit, struct store_audit_list *out,
                     struct dps_error *err);

#endif
