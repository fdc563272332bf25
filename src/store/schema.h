/* SPDX-License-Identifier: MIT */
/*
 * What the SQL backends share of the schema: the table of each object kind
 * and the indexed columns it keeps beside its JSON, the column lists every
 * backend selects in the same order, the object or policy a write returns,
 * and the messages of a missed write. The SQL dialect (migrations, statement
 * text, parameters) stays in sqlite.c and postgres.c. Not for use outside
 * src/store.
 */
#ifndef DPS_STORE_SCHEMA_H
#define DPS_STORE_SCHEMA_H

#include "store/backend.h"

/*
 * The indexed columns an object table may have. Bit i names
 * schema_column_names[i]; every object SELECT yields them in this order
 * after SCHEMA_OBJECT_COLUMNS.
 */
enum schema_column {
    COL_DEVICE_ID = 1 << 0,
    COL_ATTESTATION = 1 << 1,
    COL_GROUP_ID = 1 << 2,
    COL_STATUS = 1 << 3,
    COL_ASSIGNED_HUB = 1 << 4,
};
#define SCHEMA_COLUMN_COUNT 5
extern const char *const schema_column_names[SCHEMA_COLUMN_COUNT];

/* The columns every object table has, first in every object SELECT. */
#define SCHEMA_OBJECT_COLUMNS "id, etag, created_ms, updated_ms, json"
/* The columns the attempt, policy and audit SELECTs return, in the order backends read them. */
#define SCHEMA_ATTEMPT_COLUMNS "id, time_ms, registration_id, status, success, tracking_id, json"
#define SCHEMA_POLICY_COLUMNS                                                                      \
    "name, primary_key, secondary_key, rights, etag, created_ms, updated_ms"
#define SCHEMA_AUDIT_COLUMNS "id, time_ms, actor, action, kind, object_id, tracking_id, outcome"

/* One object kind: where it lives and which indexed columns it has. */
struct schema_kind {
    const char *table;
    const char *what; /* the kind in messages: "enrollment group" */
    unsigned columns; /* enum schema_column bits */
};
extern const struct schema_kind schema_kinds[STORE_KIND_COUNT];

/*
 * schema_select_columns: writes into buf (size bytes, 256 are enough) the
 * column list of an object SELECT for kind: SCHEMA_OBJECT_COLUMNS, then each
 * indexed column in order, "NULL" where kind has none, so that one reader
 * serves every kind.
 */
void schema_select_columns(enum store_kind kind, char *buf, size_t size);

/*
 * schema_put_column: the value in of the indexed column
 * schema_column_names[i] (i < SCHEMA_COLUMN_COUNT); borrowed from in, may be
 * NULL.
 */
const char *schema_put_column(const struct store_put *in, size_t i);

/*
 * schema_object_written: fills out (fully overwritten) with the object a
 * write of in stored: id (the spelling the row keeps), etag and times as the
 * backend wrote them, the JSON, and the indexed columns kind has. Every
 * string is copied; the caller releases out with store_object_release().
 */
void schema_object_written(enum store_kind kind, const struct store_put *in, const char *id,
                           const char *etag, int64_t created_ms, int64_t updated_ms,
                           struct store_object *out);

/*
 * schema_policy_written: fills out (fully overwritten) with the policy a
 * write of in stored under name (the spelling the row keeps), with etag and
 * times as written. Every string is copied; the caller releases out with
 * store_policy_release().
 */
void schema_policy_written(const struct store_policy *in, const char *name, const char *etag,
                           int64_t created_ms, int64_t updated_ms, struct store_policy *out);

/*
 * Messages of a write or read that found no fitting row; each fills err and
 * returns its code.
 *
 * schema_not_found: the object kind/id does not exist; DPS_ERR_NOT_FOUND.
 * schema_exists: a create-only write met the object kind/id (id as stored);
 *   DPS_ERR_CONFLICT.
 * schema_if_match_failed: If-Match if_match (NULL reads as "*") does not hold
 *   for kind/id, whose etag is etag, or which does not exist when etag is
 *   NULL; DPS_ERR_PRECONDITION.
 * schema_policy_not_found: the shared access policy name does not exist;
 *   DPS_ERR_NOT_FOUND.
 */
int schema_not_found(enum store_kind kind, const char *id, struct dps_error *err);
int schema_exists(enum store_kind kind, const char *id, struct dps_error *err);
int schema_if_match_failed(enum store_kind kind, const char *id, const char *if_match,
                           const char *etag, struct dps_error *err);
int schema_policy_not_found(const char *name, struct dps_error *err);

#endif
