/* SPDX-License-Identifier: MIT */
/*
 * The PostgreSQL backend: SQL for every store operation over libpq, schema
 * migrations under an advisory lock, and statements prepared once per
 * connection. Arguments arrive checked by the front (store.c); this file only
 * talks to the server. Every object write is one statement (an upsert, a
 * conditional UPDATE or DELETE), so the If-Match check and the write are one
 * atomic step however many nodes write at once, and outside a batch each
 * write is its own durable transaction.
 */
#include "core/common.h"
#include "store/postgres.h"
#include "store/schema.h"

#include <assert.h>
#include <inttypes.h>
#include <libpq-fe.h>

/* Seconds to wait for the server when the conninfo does not say (libpq waits forever). */
#define CONNECT_TIMEOUT_S "10"
/* pg_advisory_xact_lock key that serializes migrations of one database: "dpsd". */
#define MIGRATION_LOCK_KEY "1685090148"
/*
 * Every time stamp comes from the server's clock, so that nodes with skewed
 * clocks still write one timeline; statement_timestamp() is stable within a
 * statement, so an insert's creation and update times agree.
 */
#define NOW_MS "floor(extract(epoch FROM statement_timestamp()) * 1000)::bigint"
/* Type OID of text; every parameter is sent as text and cast in SQL where needed. */
#define TEXT_OID 25

/* --- schema --------------------------------------------------------------------------------- */

/*
 * Migrations, oldest first: migrations[i] takes the schema from version i to
 * i + 1. Append new steps; never edit a released one. Ids compare
 * case-insensitively (dps-protocol.md §8): each keyed table has a `key`
 * column holding the id with ASCII letters folded to lower case (folded
 * here, not by lower(), so the result does not depend on the database
 * locale) and `id` with the spelling of the creation. Keys sort by byte
 * (COLLATE "C"), the order SQLite's NOCASE gives, so keyset paging is the
 * same on both backends.
 */
static const char *const migrations[] = {
    /* 1: the initial schema. */
    "CREATE TABLE enrollments ("
    "  key TEXT COLLATE \"C\" NOT NULL PRIMARY KEY, id TEXT NOT NULL,"
    "  etag TEXT NOT NULL, created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL,"
    "  device_id TEXT, attestation TEXT, json TEXT NOT NULL);"
    "CREATE INDEX enrollments_by_attestation ON enrollments (attestation, key);"
    "CREATE TABLE enrollment_groups ("
    "  key TEXT COLLATE \"C\" NOT NULL PRIMARY KEY, id TEXT NOT NULL,"
    "  etag TEXT NOT NULL, created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL,"
    "  attestation TEXT, json TEXT NOT NULL);"
    "CREATE INDEX enrollment_groups_by_attestation ON enrollment_groups (attestation, key);"
    "CREATE TABLE registrations ("
    "  key TEXT COLLATE \"C\" NOT NULL PRIMARY KEY, id TEXT NOT NULL,"
    "  etag TEXT NOT NULL, created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL,"
    "  device_id TEXT, group_id TEXT, group_key TEXT COLLATE \"C\", status TEXT,"
    "  assigned_hub TEXT, json TEXT NOT NULL);"
    "CREATE INDEX registrations_by_group ON registrations (group_key, key);"
    "CREATE TABLE ca_certificates ("
    "  key TEXT COLLATE \"C\" NOT NULL PRIMARY KEY, id TEXT NOT NULL,"
    "  etag TEXT NOT NULL, created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL,"
    "  json TEXT NOT NULL);"
    "CREATE TABLE attempts ("
    "  id BIGSERIAL PRIMARY KEY,"
    "  registration_key TEXT COLLATE \"C\" NOT NULL, registration_id TEXT NOT NULL,"
    "  time_ms BIGINT NOT NULL, status TEXT NOT NULL, success BOOLEAN NOT NULL,"
    "  tracking_id TEXT, json TEXT NOT NULL);"
    "CREATE INDEX attempts_by_registration ON attempts (registration_key, id);"
    "CREATE INDEX attempts_failed ON attempts (id) WHERE NOT success;"
    "CREATE TABLE policies ("
    "  key TEXT COLLATE \"C\" NOT NULL PRIMARY KEY, name TEXT NOT NULL,"
    "  primary_key TEXT NOT NULL, secondary_key TEXT, rights BIGINT NOT NULL,"
    "  etag TEXT NOT NULL, created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL);"
    "CREATE TABLE settings (key TEXT COLLATE \"C\" NOT NULL PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE audit ("
    "  id BIGSERIAL PRIMARY KEY, time_ms BIGINT NOT NULL,"
    "  actor TEXT NOT NULL, action TEXT NOT NULL, kind TEXT NOT NULL,"
    "  object_id TEXT, tracking_id TEXT, outcome TEXT NOT NULL);",
};

int store_postgres_schema_version(void)
{
    return (int)ARRAY_SIZE(migrations);
}

/* --- statements ----------------------------------------------------------------------------- */

/* Per-kind object statements. */
enum object_op {
    OP_GET,
    OP_META,
    OP_UPSERT,    /* no If-Match: create or update */
    OP_INSERT,    /* create_only */
    OP_UPDATE,    /* If-Match "*" */
    OP_UPDATE_IF, /* If-Match etag */
    OP_DELETE,
    OP_DELETE_IF,
    OP_LIST,
    OP_LIST_GROUP,
    OP_LIST_ATTESTATION,
    OP_COUNT,
    OP_COUNT_GROUP,
    OP_COUNT_ATTESTATION,
    OP_COUNT_OF_OPS,
};

/*
 * Parameters of every object statement, by position. Each statement
 * declares all of them (as text) and uses those it needs, so that one
 * parameter array serves every operation.
 */
enum object_param {
    P_KEY = 1, /* folded id; for lists the folded cursor */
    P_ID,      /* for lists: the row limit */
    P_ETAG,    /* for lists and counts: the filter */
    P_JSON,
    P_DEVICE_ID, /* P_DEVICE_ID + i is schema_column_names[i] */
    P_ATTESTATION,
    P_GROUP_ID,
    P_STATUS,
    P_ASSIGNED_HUB,
    P_GROUP_KEY,
    P_IF_MATCH,
    OBJECT_PARAMS = P_IF_MATCH,
};

/* Statements that are not per kind; their slots follow the object ones. */
enum misc_stmt {
    ST_ATTEMPT_APPEND,
    ST_ATTEMPT_LIST,
    ST_ATTEMPT_LIST_FAILED,
    ST_ATTEMPT_LIST_REG,
    ST_ATTEMPT_LIST_REG_FAILED,
    ST_POLICY_GET,
    ST_POLICY_PUT,
    ST_POLICY_CREATE,
    ST_POLICY_DELETE,
    ST_POLICY_LIST,
    ST_SETTING_GET,
    ST_SETTING_PUT,
    ST_SETTING_CREATE,
    ST_AUDIT_APPEND,
    ST_AUDIT_LIST,
    ST_COUNT_OF_MISC,
};

static const struct {
    const char *sql;
    int params;
} misc_sql[ST_COUNT_OF_MISC] = {
    [ST_ATTEMPT_APPEND] = {"INSERT INTO attempts (registration_key, registration_id, time_ms,"
                           " status, success, tracking_id, json)"
                           " VALUES ($1, $2, " NOW_MS ", $3, $4::boolean, $5, $6) RETURNING id",
                           6},
    [ST_ATTEMPT_LIST] = {"SELECT " SCHEMA_ATTEMPT_COLUMNS " FROM attempts WHERE id < $1::bigint"
                         " ORDER BY id DESC LIMIT $2::bigint",
                         3},
    [ST_ATTEMPT_LIST_FAILED] = {"SELECT " SCHEMA_ATTEMPT_COLUMNS " FROM attempts"
                                " WHERE NOT success AND id < $1::bigint"
                                " ORDER BY id DESC LIMIT $2::bigint",
                                3},
    [ST_ATTEMPT_LIST_REG] = {"SELECT " SCHEMA_ATTEMPT_COLUMNS " FROM attempts"
                             " WHERE registration_key = $3 AND id < $1::bigint"
                             " ORDER BY id DESC LIMIT $2::bigint",
                             3},
    [ST_ATTEMPT_LIST_REG_FAILED] = {"SELECT " SCHEMA_ATTEMPT_COLUMNS " FROM attempts"
                                    " WHERE registration_key = $3 AND NOT success"
                                    " AND id < $1::bigint ORDER BY id DESC LIMIT $2::bigint",
                                    3},
    [ST_POLICY_GET] = {"SELECT " SCHEMA_POLICY_COLUMNS " FROM policies WHERE key = $1", 1},
    /* Replacing keeps the name as first created and the creation time. */
    [ST_POLICY_PUT] = {"INSERT INTO policies (key, " SCHEMA_POLICY_COLUMNS ")"
                       " VALUES ($1, $2, $3, $4, $5::bigint, $6, " NOW_MS ", " NOW_MS ")"
                       " ON CONFLICT (key) DO UPDATE SET primary_key = EXCLUDED.primary_key,"
                       " secondary_key = EXCLUDED.secondary_key, rights = EXCLUDED.rights,"
                       " etag = EXCLUDED.etag, updated_ms = EXCLUDED.updated_ms"
                       " RETURNING name, created_ms, updated_ms",
                       6},
    /* Only creates: no row back when the policy exists. */
    [ST_POLICY_CREATE] = {"INSERT INTO policies (key, " SCHEMA_POLICY_COLUMNS ")"
                          " VALUES ($1, $2, $3, $4, $5::bigint, $6, " NOW_MS ", " NOW_MS ")"
                          " ON CONFLICT (key) DO NOTHING RETURNING name, created_ms, updated_ms",
                          6},
    [ST_POLICY_DELETE] = {"DELETE FROM policies WHERE key = $1", 1},
    [ST_POLICY_LIST] = {"SELECT " SCHEMA_POLICY_COLUMNS
                        " FROM policies ORDER BY key LIMIT $1::bigint",
                        1},
    [ST_SETTING_GET] = {"SELECT value FROM settings WHERE key = $1", 1},
    [ST_SETTING_PUT] = {"INSERT INTO settings (key, value) VALUES ($1, $2)"
                        " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                        2},
    [ST_SETTING_CREATE] = {"INSERT INTO settings (key, value) VALUES ($1, $2)"
                           " ON CONFLICT (key) DO NOTHING",
                           2},
    [ST_AUDIT_APPEND] = {"INSERT INTO audit (time_ms, actor, action, kind, object_id,"
                         " tracking_id, outcome)"
                         " VALUES (" NOW_MS ", $1, $2, $3, $4, $5, $6) RETURNING id",
                         6},
    [ST_AUDIT_LIST] = {"SELECT " SCHEMA_AUDIT_COLUMNS " FROM audit WHERE id < $1::bigint"
                       " ORDER BY id DESC LIMIT $2::bigint",
                       2},
};

#define OBJECT_SLOTS (STORE_KIND_COUNT * OP_COUNT_OF_OPS)
#define SLOT_COUNT (OBJECT_SLOTS + ST_COUNT_OF_MISC)

struct pg_store {
    struct store base; /* first: the front casts between the two */
    PGconn *conn;
    char *label;               /* "postgres host=... port=... dbname=...", never the password */
    bool prepared[SLOT_COUNT]; /* per server session: cleared when the connection is reset */
};

static struct pg_store *to_pg(struct store *s)
{
    return (struct pg_store *)s;
}

/* Copies libpq's words into buf on one line, without the trailing newline. */
static void one_line(const char *msg, char *buf, size_t size)
{
    size_t n = 0;

    for (; msg && *msg && n + 1 < size; msg++)
        buf[n++] = *msg == '\n' || *msg == '\r' || *msg == '\t' ? ' ' : *msg;
    while (n > 0 && buf[n - 1] == ' ')
        n--;
    buf[n] = '\0';
}

/*
 * Fills err with what the server (or libpq) said about res, or about the
 * connection when res is NULL, naming the store; returns DPS_ERR_STORE.
 */
static int db_fail(struct pg_store *q, const char *doing, const PGresult *res,
                   struct dps_error *err)
{
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    char msg[200];

    one_line(primary ? primary : PQerrorMessage(q->conn), msg, sizeof(msg));
    return dps_error_set(err, DPS_ERR_STORE, "store '%s' cannot %s: %s", q->label, doing,
                         msg[0] ? msg : "the server gave no reason");
}

/* Folds ASCII letters to lower case into buf (at least strlen(s) + 1 bytes). */
static const char *fold(const char *s, char *buf, size_t size)
{
    size_t n = 0;

    if (!s)
        return NULL;
    for (; s[n] && n + 1 < size; n++)
        buf[n] = s[n] >= 'A' && s[n] <= 'Z' ? (char)(s[n] - 'A' + 'a') : s[n];
    buf[n] = '\0';
    return buf;
}

/* Writes the SQL of an object statement into buf. */
static void object_sql(enum store_kind kind, enum object_op op, char *buf, size_t size)
{
    const char *t = schema_kinds[kind].table;
    unsigned has = schema_kinds[kind].columns;
    char cols[256], names[160] = "", params[96] = "", sets[512] = "", excluded[320] = "";
    size_t nu = 0, pu = 0, su = 0, eu = 0;

    schema_select_columns(kind, cols, sizeof(cols));
    for (size_t i = 0; i < SCHEMA_COLUMN_COUNT; i++) {
        const char *c = schema_column_names[i];
        if (!(has & (1u << i)))
            continue;
        nu += (size_t)snprintf(names + nu, sizeof(names) - nu, ", %s", c);
        pu += (size_t)snprintf(params + pu, sizeof(params) - pu, ", $%d", P_DEVICE_ID + (int)i);
        su += (size_t)snprintf(sets + su, sizeof(sets) - su, ", %s = $%d", c, P_DEVICE_ID + (int)i);
        eu += (size_t)snprintf(excluded + eu, sizeof(excluded) - eu, ", %s = EXCLUDED.%s", c, c);
    }
    if (has & COL_GROUP_ID) {
        nu += (size_t)snprintf(names + nu, sizeof(names) - nu, ", group_key");
        pu += (size_t)snprintf(params + pu, sizeof(params) - pu, ", $%d", P_GROUP_KEY);
        su += (size_t)snprintf(sets + su, sizeof(sets) - su, ", group_key = $%d", P_GROUP_KEY);
        eu += (size_t)snprintf(excluded + eu, sizeof(excluded) - eu,
                               ", group_key = EXCLUDED.group_key");
    }
    switch (op) {
    case OP_GET:
        snprintf(buf, size, "SELECT %s FROM %s WHERE key = $1", cols, t);
        break;
    case OP_META:
        snprintf(buf, size, "SELECT id, etag FROM %s WHERE key = $1", t);
        break;
    case OP_UPSERT:
    case OP_INSERT:
        /* On conflict the id and creation time stay those of the first write. */
        if (op == OP_UPSERT)
            snprintf(sets, sizeof(sets),
                     "UPDATE SET etag = EXCLUDED.etag, updated_ms = EXCLUDED.updated_ms,"
                     " json = EXCLUDED.json%s",
                     excluded);
        snprintf(buf, size,
                 "INSERT INTO %s (key, id, etag, created_ms, updated_ms, json%s)"
                 " VALUES ($1, $2, $3, " NOW_MS ", " NOW_MS ", $4%s) ON CONFLICT (key) DO %s"
                 " RETURNING id, created_ms, updated_ms",
                 t, names, params, op == OP_INSERT ? "NOTHING" : sets);
        break;
    case OP_UPDATE:
    case OP_UPDATE_IF:
        snprintf(buf, size,
                 "UPDATE %s SET etag = $3, updated_ms = " NOW_MS ", json = $4%s WHERE key = $1%s"
                 " RETURNING id, created_ms, updated_ms",
                 t, sets, op == OP_UPDATE_IF ? " AND etag = $11" : "");
        break;
    case OP_DELETE:
    case OP_DELETE_IF:
        snprintf(buf, size, "DELETE FROM %s WHERE key = $1%s RETURNING id", t,
                 op == OP_DELETE_IF ? " AND etag = $11" : "");
        break;
    case OP_LIST:
        snprintf(buf, size, "SELECT %s FROM %s WHERE key > $1 ORDER BY key LIMIT $2::bigint", cols,
                 t);
        break;
    case OP_LIST_GROUP:
        snprintf(buf, size,
                 "SELECT %s FROM %s WHERE group_key = $3 AND key > $1 ORDER BY key"
                 " LIMIT $2::bigint",
                 cols, t);
        break;
    case OP_LIST_ATTESTATION:
        snprintf(buf, size,
                 "SELECT %s FROM %s WHERE attestation = $3 AND key > $1 ORDER BY key"
                 " LIMIT $2::bigint",
                 cols, t);
        break;
    case OP_COUNT:
        snprintf(buf, size, "SELECT count(*) FROM %s", t);
        break;
    case OP_COUNT_GROUP:
        snprintf(buf, size, "SELECT count(*) FROM %s WHERE group_key = $3", t);
        break;
    case OP_COUNT_ATTESTATION:
        snprintf(buf, size, "SELECT count(*) FROM %s WHERE attestation = $3", t);
        break;
    case OP_COUNT_OF_OPS:
        assert(!"not an operation");
        break;
    }
}

/* Prepares the statement of slot on this connection on first use. */
static int prepare_slot(struct pg_store *q, size_t slot, int *nparams, struct dps_error *err)
{
    static const Oid types[OBJECT_PARAMS] = {TEXT_OID, TEXT_OID, TEXT_OID, TEXT_OID,
                                             TEXT_OID, TEXT_OID, TEXT_OID, TEXT_OID,
                                             TEXT_OID, TEXT_OID, TEXT_OID};
    char buf[2048], name[16];
    const char *sql;
    PGresult *res;
    int rc = DPS_OK;

    assert(slot < SLOT_COUNT);
    if (slot < OBJECT_SLOTS) {
        *nparams = OBJECT_PARAMS;
        object_sql((enum store_kind)(slot / OP_COUNT_OF_OPS),
                   (enum object_op)(slot % OP_COUNT_OF_OPS), buf, sizeof(buf));
        sql = buf;
    } else {
        *nparams = misc_sql[slot - OBJECT_SLOTS].params;
        sql = misc_sql[slot - OBJECT_SLOTS].sql;
    }
    if (q->prepared[slot])
        return DPS_OK;
    snprintf(name, sizeof(name), "dps%zu", slot);
    res = PQprepare(q->conn, name, sql, *nparams, types);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        rc = db_fail(q, "prepare a statement", res, err);
    else
        q->prepared[slot] = true;
    PQclear(res);
    return rc;
}

/*
 * Runs the prepared statement of slot with its text parameters (NULL for SQL
 * NULL). Returns the result, which the caller clears, or NULL with err
 * filled.
 */
static PGresult *run(struct pg_store *q, size_t slot, const char *const *params, const char *doing,
                     struct dps_error *err)
{
    char name[16];
    PGresult *res;
    int n;

    if (prepare_slot(q, slot, &n, err))
        return NULL;
    snprintf(name, sizeof(name), "dps%zu", slot);
    res = PQexecPrepared(q->conn, name, n, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
        db_fail(q, doing, res, err);
        PQclear(res);
        return NULL;
    }
    return res;
}

static PGresult *run_object(struct pg_store *q, enum store_kind kind, enum object_op op,
                            const char *const *params, const char *doing, struct dps_error *err)
{
    /* params[0] is unused so that params[P_x] is parameter $x. */
    return run(q, (size_t)kind * OP_COUNT_OF_OPS + op, params + 1, doing, err);
}

static PGresult *run_misc(struct pg_store *q, enum misc_stmt which, const char *const *params,
                          const char *doing, struct dps_error *err)
{
    return run(q, OBJECT_SLOTS + which, params, doing, err);
}

/* Runs SQL that returns no rows (transaction control, session settings). */
static int exec_sql(struct pg_store *q, const char *sql, const char *doing, struct dps_error *err)
{
    PGresult *res = PQexec(q->conn, sql);
    int rc = DPS_OK;

    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
        rc = db_fail(q, doing, res, err);
    PQclear(res);
    return rc;
}

static char *value_dup(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return NULL;
    return xstrndup(PQgetvalue(res, row, col), (size_t)PQgetlength(res, row, col));
}

static int64_t value_int(const PGresult *res, int row, int col)
{
    return (int64_t)strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* --- session and transactions --------------------------------------------------------------- */

/* Library code never prints: the server's notices are dropped. */
static void ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* Settings every session needs, after connecting and after every reconnect. */
static int session_setup(struct pg_store *q, struct dps_error *err)
{
    PQsetNoticeProcessor(q->conn, ignore_notice, NULL);
    memset(q->prepared, 0, sizeof(q->prepared));
    /* A write returns only once the server has flushed it (store.h's durability promise). */
    return exec_sql(q, "SET synchronous_commit = on", "set up its session", err);
}

/*
 * Before an operation outside a batch: a connection the server dropped
 * (restart, failover, idle timeout) is opened again, so that one lost
 * connection costs one failed request, not a dead worker.
 */
static int ensure_connected(struct pg_store *q, struct dps_error *err)
{
    if (q->base.in_batch || PQstatus(q->conn) == CONNECTION_OK)
        return DPS_OK;
    PQreset(q->conn);
    if (PQstatus(q->conn) != CONNECTION_OK)
        return db_fail(q, "reconnect", NULL, err);
    return session_setup(q, err);
}

/* Inside a batch: fails when the transaction is gone or aborted, so nothing commits alone. */
static int check_batch_alive(struct pg_store *q, struct dps_error *err)
{
    PGTransactionStatusType ts = PQtransactionStatus(q->conn);

    if (ts == PQTRANS_INTRANS)
        return DPS_OK;
    return dps_error_set(err, DPS_ERR_STORE,
                         "store '%s': the batch was rolled back after an earlier error", q->label);
}

/*
 * One write: outside a batch it is a single statement, its own transaction.
 * Inside a batch it runs in a savepoint, so that a failed write (which
 * aborts a PostgreSQL transaction) undoes only itself.
 */
static int op_begin(struct pg_store *q, struct dps_error *err)
{
    int rc;

    if (!q->base.in_batch)
        return ensure_connected(q, err);
    if ((rc = check_batch_alive(q, err)))
        return rc;
    return exec_sql(q, "SAVEPOINT op", "start a savepoint", err);
}

/* Ends what op_begin() started: kept when rc is DPS_OK, undone otherwise. */
static int op_end(struct pg_store *q, int rc, struct dps_error *err)
{
    if (!q->base.in_batch)
        return rc;
    if (rc == DPS_OK)
        return exec_sql(q, "RELEASE SAVEPOINT op", "release a savepoint", err);
    exec_sql(q, "ROLLBACK TO SAVEPOINT op; RELEASE SAVEPOINT op", "roll back a savepoint", NULL);
    return rc;
}

static int pg_batch_begin(struct store *s, struct dps_error *err)
{
    struct pg_store *q = to_pg(s);
    int rc = ensure_connected(q, err);

    return rc ? rc : exec_sql(q, "BEGIN", "start a batch", err);
}

static int pg_batch_commit(struct store *s, struct dps_error *err)
{
    struct pg_store *q = to_pg(s);
    PGresult *res;
    int rc;

    if ((rc = check_batch_alive(q, err)))
        return rc;
    res = PQexec(q->conn, "COMMIT");
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        rc = db_fail(q, "commit a batch", res, err);
    else if (strcmp(PQcmdStatus(res), "COMMIT") != 0)
        /* The server answers COMMIT of an aborted transaction with ROLLBACK. */
        rc = dps_error_set(err, DPS_ERR_STORE, "store '%s': the batch was rolled back", q->label);
    PQclear(res);
    return rc;
}

static void pg_batch_rollback(struct store *s)
{
    struct pg_store *q = to_pg(s);
    PGTransactionStatusType ts = PQtransactionStatus(q->conn);

    if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR)
        exec_sql(q, "ROLLBACK", "roll back a batch", NULL);
}

/* A unit is a named savepoint around the per-operation "op" savepoints it holds. */
static int pg_unit_begin(struct store *s, struct dps_error *err)
{
    struct pg_store *q = to_pg(s);
    int rc = check_batch_alive(q, err);

    return rc ? rc : exec_sql(q, "SAVEPOINT unit", "start a unit of a batch", err);
}

static int pg_unit_end(struct store *s, bool keep, struct dps_error *err)
{
    struct pg_store *q = to_pg(s);
    int rc = check_batch_alive(q, err);

    if (rc)
        return rc;
    if (!keep && (rc = exec_sql(q, "ROLLBACK TO SAVEPOINT unit", "undo a unit of a batch", err)))
        return rc;
    return exec_sql(q, "RELEASE SAVEPOINT unit", "end a unit of a batch", err);
}

/* --- open and close ------------------------------------------------------------------------- */

/* Reads the single value of a one-row query into *out; -1 when there is no row. */
static int query_int(struct pg_store *q, const char *sql, int *out, struct dps_error *err)
{
    PGresult *res = PQexec(q->conn, sql);
    int rc = DPS_OK;

    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        rc = db_fail(q, "read its schema version", res, err);
    else
        *out = PQntuples(res) > 0 && !PQgetisnull(res, 0, 0) ? (int)value_int(res, 0, 0) : -1;
    PQclear(res);
    return rc;
}

/*
 * Brings the schema to the current version in one transaction, holding an
 * advisory lock so that nodes starting together migrate a fresh database
 * once; a no-op when it is current.
 */
static int migrate(struct pg_store *q, struct dps_error *err)
{
    int known = (int)ARRAY_SIZE(migrations), version = 0, exists = 0, rc;
    char sql[96];

    if ((rc = exec_sql(q, "BEGIN", "start its migration", err)) ||
        (rc = exec_sql(q, "SELECT pg_advisory_xact_lock(" MIGRATION_LOCK_KEY ")",
                       "lock its schema for migration", err)) ||
        (rc = query_int(q,
                        "SELECT count(*) FROM (SELECT to_regclass('schema_version') AS t) v"
                        " WHERE t IS NOT NULL",
                        &exists, err)))
        goto out;
    if (!exists && (rc = exec_sql(q,
                                  "CREATE TABLE schema_version (version INTEGER NOT NULL);"
                                  "INSERT INTO schema_version VALUES (0)",
                                  "create its schema version table", err)))
        goto out;
    if ((rc = query_int(q, "SELECT max(version) FROM schema_version", &version, err)))
        goto out;
    if (version < 0)
        version = 0;
    if (version > known) {
        rc = dps_error_set(err, DPS_ERR_STORE,
                           "store '%s' has schema version %d, newer than the %d this dpsd knows: "
                           "upgrade dpsd",
                           q->label, version, known);
        goto out;
    }
    for (int v = version; v < known; v++) {
        char doing[64];
        snprintf(doing, sizeof(doing), "migrate its schema to version %d", v + 1);
        if ((rc = exec_sql(q, migrations[v], doing, err)))
            goto out;
    }
    if (version < known) {
        snprintf(sql, sizeof(sql), "UPDATE schema_version SET version = %d", known);
        if ((rc = exec_sql(q, sql, "record its schema version", err)))
            goto out;
    }
    rc = exec_sql(q, "COMMIT", "commit its migration", err);
out:
    if (rc && PQtransactionStatus(q->conn) != PQTRANS_IDLE)
        exec_sql(q, "ROLLBACK", "roll back its migration", NULL);
    return rc;
}

/* Names the server without secrets: host (or socket directory), port and database. */
static char *make_label(PGconn *conn)
{
    const char *host = conn ? PQhost(conn) : NULL, *port = conn ? PQport(conn) : NULL,
               *db = conn ? PQdb(conn) : NULL;
    size_t n = 64 + (host ? strlen(host) : 0) + (port ? strlen(port) : 0) + (db ? strlen(db) : 0);
    char *label = xmalloc(n);

    snprintf(label, n, "postgres host=%s port=%s dbname=%s", host && *host ? host : "(default)",
             port && *port ? port : "(default)", db && *db ? db : "(default)");
    return label;
}

static void pg_close(struct store *s)
{
    struct pg_store *q = to_pg(s);

    PQfinish(q->conn);
    free(q->label);
    free(q);
}

static int pg_open(const char *target, struct store **out, struct dps_error *err)
{
    /*
     * Defaults first: the conninfo, expanded from "dbname", overrides them.
     * The password stays inside libpq; messages name only host, port and
     * database.
     */
    const char *const keys[] = {"connect_timeout", "fallback_application_name", "client_encoding",
                                "dbname", NULL};
    const char *const values[] = {CONNECT_TIMEOUT_S, "dpsd", "UTF8", target, NULL};
    struct pg_store *q = xcalloc(1, sizeof(*q));
    PQconninfoOption *opts;
    char *msg = NULL;
    int rc;

    q->base.ops = &store_postgres_ops;
    /* Checked first: libpq would take a malformed string for a database name. */
    opts = PQconninfoParse(target, &msg);
    PQconninfoFree(opts);
    if (!opts) {
        PQfreemem(msg);
        /* libpq's message may quote the string, password included. */
        rc = dps_error_set(err, DPS_ERR_INVAL,
                           "store 'postgres:' target is not a libpq connection string "
                           "('host=... port=... dbname=...') or a postgresql:// URI");
        goto out;
    }
    q->conn = PQconnectdbParams(keys, values, 1);
    if (!q->conn) {
        rc = dps_error_set(err, DPS_ERR_NOMEM, "store 'postgres': out of memory");
        goto out;
    }
    q->label = make_label(q->conn);
    if (PQstatus(q->conn) != CONNECTION_OK) {
        char line[200];
        one_line(PQerrorMessage(q->conn), line, sizeof(line));
        rc = dps_error_set(err, DPS_ERR_STORE, "store '%s' cannot be opened: %s", q->label, line);
        goto out;
    }
    if ((rc = session_setup(q, err)) || (rc = migrate(q, err)))
        goto out;
    *out = &q->base;
    q = NULL;
    rc = DPS_OK;
out:
    if (q)
        pg_close(&q->base);
    return rc;
}

/* --- objects -------------------------------------------------------------------------------- */

static void read_object(const PGresult *res, int row, struct store_object *o)
{
    o->id = value_dup(res, row, 0);
    o->etag = value_dup(res, row, 1);
    o->created_ms = value_int(res, row, 2);
    o->updated_ms = value_int(res, row, 3);
    o->json = value_dup(res, row, 4);
    o->device_id = value_dup(res, row, 5);
    o->attestation = value_dup(res, row, 6);
    o->group_id = value_dup(res, row, 7);
    o->status = value_dup(res, row, 8);
    o->assigned_hub = value_dup(res, row, 9);
}

static int pg_object_get(struct store *s, enum store_kind kind, const char *id,
                         struct store_object *out, struct dps_error *err)
{
    struct pg_store *q = to_pg(s);
    const char *params[OBJECT_PARAMS + 1] = {0};
    char key[STORE_ID_MAX + 1];
    PGresult *res;
    int rc;

    if ((rc = ensure_connected(q, err)))
        return rc;
    params[P_KEY] = fold(id, key, sizeof(key));
    res = run_object(q, kind, OP_GET, params, "read", err);
    if (!res)
        return DPS_ERR_STORE;
    if (PQntuples(res) == 0) {
        rc = schema_not_found(kind, id, err);
    } else {
        read_object(res, 0, out);
        rc = DPS_OK;
    }
    PQclear(res);
    return rc;
}

/*
 * After a conditional write that matched no row: says why, naming the id and
 * (when the object exists) its etag. Returns DPS_ERR_PRECONDITION,
 * DPS_ERR_CONFLICT (create_only), DPS_ERR_NOT_FOUND (delete) or
 * DPS_ERR_STORE.
 */
static int explain_miss(struct pg_store *q, enum store_kind kind, const char *id,
                        const char *const *params, const char *if_match, bool create_only,
                        bool deleting, struct dps_error *err)
{
    PGresult *res = run_object(q, kind, OP_META, params, "read", err);
    int rc;

    if (!res)
        return DPS_ERR_STORE;
    if (PQntuples(res) == 0)
        rc = deleting ? schema_not_found(kind, id, err)
                      : schema_if_match_failed(kind, id, if_match, NULL, err);
    else if (create_only)
        rc = schema_exists(kind, PQgetvalue(res, 0, 0), err);
    else
        rc = schema_if_match_failed(kind, id, if_match, PQgetvalue(res, 0, 1), err);
    PQclear(res);
    return rc;
}

static int pg_object_put(struct store *s, enum store_kind kind, const struct store_put *in,
                         struct store_object *out, struct dps_error *err)
{
    struct pg_store *q = to_pg(s);
    const char *params[OBJECT_PARAMS + 1] = {0};
    char key[STORE_ID_MAX + 1], group_key[STORE_TEXT_MAX + 1], etag[STORE_ETAG_SIZE];
    struct store_object obj = {0};
    enum object_op op = OP_UPSERT;
    PGresult *res;
    int rc;

    if (in->create_only)
        op = OP_INSERT;
    else if (in->if_match)
        op = strcmp(in->if_match, "*") == 0 ? OP_UPDATE : OP_UPDATE_IF;
    store_etag_new(kind, etag);
    params[P_KEY] = fold(in->id, key, sizeof(key));
    params[P_ID] = in->id;
    params[P_ETAG] = etag;
    params[P_JSON] = in->json;
    for (size_t i = 0; i < SCHEMA_COLUMN_COUNT; i++)
        params[P_DEVICE_ID + i] = schema_put_column(in, i);
    params[P_GROUP_KEY] = fold(in->group_id, group_key, sizeof(group_key));
    params[P_IF_MATCH] = in->if_match;

    if ((rc = op_begin(q, err)))
        return rc;
    res = run_object(q, kind, op, params, "write", err);
    if (!res)
        rc = DPS_ERR_STORE;
    else if (PQntuples(res) == 0)
        rc = explain_miss(q, kind, in->id, params, in->if_match, in->create_only, false, err);
    else
        /* The id and times the server returned: an update keeps the first spelling. */
        schema_object_written(kind, in, PQgetvalue(res, 0, 0), etag, value_int(res, 0, 1),
                              value_int(res, 0, 2), &obj);
    PQclear(res);
    rc = op_end(q, rc, err);
    if (rc == DPS_OK && out) {
        *out = obj;
        memset(&obj, 0, sizeof(obj));
    }
    store_object_release(&obj);
    return rc;
}

static int pg_object_delete(struct store *s, enum store_kind kind, const char *id,
                            const char *if_match, struct dps_error *err)
{
    struct pg_store *q = to_pg(s);
    const char *params[OBJECT_PARAMS + 1] = {0};
    char key[STORE_ID_MAX + 1];
    /* "*" asks only that the object exist, which delete asks anyway. */
    bool conditional = if_match && strcmp(if_match, "*") != 0;
    PGresult *res = NULL;
    int rc;

    params[P_KEY] = fold(id, key, sizeof(key));
    params[P_IF_MATCH] = conditional ? if_match : NULL;
    if ((rc = op_begin(q, err)))
        return rc;
    res = run_object(q, kind, conditional ? OP_DELETE_IF : OP_DELETE, params, "delete", err);
    if (!res)
        rc = DPS_ERR_STORE;
    else if (PQntuples(res) == 0)
        rc = explain_miss(q, kind, id, params, if_match, false, true, err);
    PQclear(res);
    return op_end(q, rc, err);
}

static int pg_object_list(struct store *s, enum store_kind kind, const struct store_query *query,
                          struct store_page *out, struct dps_error *err)
{
    struct pg_store *q = to_pg(s);
    const char *params[OBJECT_PARAMS + 1] = {0};
    char after[STORE_TEXT_MAX + 1], filter[STORE_TEXT_MAX + 1], limit[24];
    struct store_page page = {0};
    enum object_op op = OP_LIST;
    PGresult *res;
    int rc, rows;

    if ((rc = ensure_connected(q, err)))
        return rc;
    if (query->group_id) {
        op = OP_LIST_GROUP;
        params[P_ETAG] = fold(query->group_id, filter, sizeof(filter));
    } else if (query->attestation) {
        op = OP_LIST_ATTESTATION;
        params[P_ETAG] = query->attestation;
    }
    /* Every key sorts after the empty string. */
    params[P_KEY] = fold(query->after ? query->after : "", after, sizeof(after));
    /* One row more than the page tells whether another page follows. */
    snprintf(limit, sizeof(limit), "%zu", query->limit + 1);
    params[P_ID] = limit;
    res = run_object(q, kind, op, params, "list", err);
    if (!res)
        return DPS_ERR_STORE;
    rows = PQntuples(res);
    page.items = xcalloc(query->limit, sizeof(*page.items));
    for (int i = 0; i < rows; i++) {
        if (page.n == query->limit) {
            page.next_cursor = xstrdup(page.items[page.n - 1].id);
            break;
        }
        read_object(res, i, &page.items[page.n++]);
    }
    PQclear(res);
    *out = page;
    return DPS_OK;
}

static int pg_object_count(struct store *s, enum store_kind kind, const struct store_query *query,
                           int64_t *out, struct dps_error *err)
{
    struct pg_store *q = to_pg(s);
    const char *params[OBJECT_PARAMS + 1] = {0};
    char filter[STORE_TEXT_MAX + 1];
    enum object_op op = OP_COUNT;
    PGresult *res;
    int rc;

    if ((rc = ensure_connected(q, err)))
        return rc;
    if (query->group_id) {
        op = OP_COUNT_GROUP;
        params[P_ETAG] = fold(query->group_id, filter, sizeof(filter));
    } else if (query->attestation) {
        op = OP_COUNT_ATTESTATION;
        params[P_ETAG] = query->attestation;
    }
    res = run_object(q, kind, op, params, "count", err);
    if (!res)
        return DPS_ERR_STORE;
    *out = value_int(res, 0, 0);
    PQclear(res);
    return DPS_OK;
}

/* --- attempts ------------------------------------------------------------------------------- */

static int pg_attempt_append(struct store *s, const struct store_attempt_in *in, int64_t *id_out,
                             struct dps_error *err)
{
    struct pg_store *q = to_pg(s);
    char key[STORE_ID_MAX + 1];
    const char *params[] = {fold(in->registration_id, key, sizeof(key)),
                            in->registration_id,
                            in->status,
                            in->success ? "true" : "false",
                            in->tracking_id,
                            in->json};
    PGresult *res;
    int rc;

    if ((rc = op_begin(q, err)))
        return rc;
    res = run_misc(q, ST_ATTEMPT_APPEND, params, "append an attempt", err);
    if (!res)
        rc = DPS_ERR_STORE;
    else if (id_out)
        *id_out = value_int(res, 0, 0);
    PQclear(res);
    return op_end(q, rc, err);
}

static int pg_attempt_list(struct store *s, const char *registration_id, bool failures_only,
                           int64_t before_id, size_t limit, struct store_attempt_list *out,
                           struct dps_error *err)
{
    struct pg_store *q = to_pg(s);
    struct store_attempt_list list = {0};
    char before[24], lim[24], key[STORE_ID_MAX + 1];
    const char *params[3] = {before, lim, fold(registration_id, key, sizeof(key))};
    enum misc_stmt which;
    PGresult *res;
    int rc, rows;

    if ((rc = ensure_connected(q, err)))
        return rc;
    if (registration_id)
        which = failures_only ? ST_ATTEMPT_LIST_REG_FAILED : ST_ATTEMPT_LIST_REG;
    else
        which = failures_only ? ST_ATTEMPT_LIST_FAILED : ST_ATTEMPT_LIST;
    snprintf(before, sizeof(before), "%" PRId64, before_id);
    snprintf(lim, sizeof(lim), "%zu", limit);
    res = run_misc(q, which, params, "list attempts", err);
    if (!res)
        return DPS_ERR_STORE;
    rows = PQntuples(res);
    list.items = xcalloc(limit, sizeof(*list.items));
    for (int i = 0; i < rows && list.n < limit; i++) {
        struct store_attempt *a = &list.items[list.n++];
        a->id = value_int(res, i, 0);
        a->time_ms = value_int(res, i, 1);
        a->registration_id = value_dup(res, i, 2);
        a->status = value_dup(res, i, 3);
        a->success = PQgetvalue(res, i, 4)[0] == 't';
        a->tracking_id = value_dup(res, i, 5);
        a->json = value_dup(res, i, 6);
    }
    PQclear(res);
    *out = list;
    return DPS_OK;
}

/* --- policies ------------------------------------------------------------------------------- */

/* Clears a result that holds policy keys, wiping them first. */
static void clear_secret(PGresult *res)
{
    if (!res)
        return;
    for (int row = 0; row < PQntuples(res); row++)
        for (int col = 1; col <= 2 && col < PQnfields(res); col++)
            explicit_bzero(PQgetvalue(res, row, col), (size_t)PQgetlength(res, row, col));
    PQclear(res);
}

static void read_policy(const PGresult *res, int row, struct store_policy *p)
{
    p->name = value_dup(res, row, 0);
    p->primary_key = value_dup(res, row, 1);
    p->secondary_key = value_dup(res, row, 2);
    p->rights = (uint32_t)value_int(res, row, 3);
    p->etag = value_dup(res, row, 4);
    p->created_ms = value_int(res, row, 5);
    p->updated_ms = value_int(res, row, 6);
}

static int pg_policy_get(struct store *s, const char *name, struct store_policy *out,
                         struct dps_error *err)
{
    struct pg_store *q = to_pg(s);
    char key[STORE_ID_MAX + 1];
    const char *params[] = {fold(name, key, sizeof(key))};
    PGresult *res;
    int rc;

    if ((rc = ensure_connected(q, err)))
        return rc;
    res = run_misc(q, ST_POLICY_GET, params, "read a policy", err);
    if (!res)
        return DPS_ERR_STORE;
    if (PQntuples(res) == 0) {
        rc = schema_policy_not_found(name, err);
    } else {
        read_policy(res, 0, out);
        rc = DPS_OK;
    }
    clear_secret(res);
    return rc;
}

static int pg_policy_put(struct store *s, const struct store_policy *in, bool create_only,
                         struct store_policy *out, struct dps_error *err)
{
    struct pg_store *q = to_pg(s);
    char key[STORE_ID_MAX + 1], rights[24], etag[STORE_ETAG_SIZE];
    const char *params[] = {fold(in->name, key, sizeof(key)),
                            in->name,
                            in->primary_key,
                            in->secondary_key,
                            rights,
                            etag};
    struct store_policy p = {0};
    PGresult *res;
    int rc;

    snprintf(rights, sizeof(rights), "%" PRIu32, in->rights);
    /* The etag changes on every write so that caches of the key notice. */
    store_etag_new(STORE_ENROLLMENT, etag);
    if ((rc = op_begin(q, err)))
        return rc;
    res =
        run_misc(q, create_only ? ST_POLICY_CREATE : ST_POLICY_PUT, params, "write a policy", err);
    if (!res) {
        rc = DPS_ERR_STORE;
    } else if (PQntuples(res) == 0) {
        rc = dps_error_set(err, DPS_ERR_CONFLICT, "policy '%s' exists", in->name);
    } else {
        schema_policy_written(in, PQgetvalue(res, 0, 0), etag, value_int(res, 0, 1),
                              value_int(res, 0, 2), &p);
    }
    PQclear(res);
    rc = op_end(q, rc, err);
    if (rc == DPS_OK && out) {
        *out = p;
        memset(&p, 0, sizeof(p));
    }
    store_policy_release(&p);
    return rc;
}

static int pg_policy_delete(struct store *s, const char *name, struct dps_error *err)
{
    struct pg_store *q = to_pg(s);
    char key[STORE_ID_MAX + 1];
    const char *params[] = {fold(name, key, sizeof(key))};
    PGresult *res;
    int rc;

    if ((rc = op_begin(q, err)))
        return rc;
    res = run_misc(q, ST_POLICY_DELETE, params, "delete a policy", err);
    if (!res)
        rc = DPS_ERR_STORE;
    else if (strcmp(PQcmdTuples(res), "0") == 0)
        rc = schema_policy_not_found(name, err);
    PQclear(res);
    return op_end(q, rc, err);
}

static int pg_policy_list(struct store *s, struct store_policy_list *out, struct dps_error *err)
{
    struct pg_store *q = to_pg(s);
    struct store_policy_list list = {0};
    char lim[24];
    const char *params[] = {lim};
    PGresult *res;
    int rc, rows;

    if ((rc = ensure_connected(q, err)))
        return rc;
    snprintf(lim, sizeof(lim), "%d", STORE_PAGE_MAX);
    res = run_misc(q, ST_POLICY_LIST, params, "list policies", err);
    if (!res)
        return DPS_ERR_STORE;
    rows = PQntuples(res);
    if (rows > 0)
        list.items = xcalloc((size_t)rows, sizeof(*list.items));
    for (int i = 0; i < rows; i++)
        read_policy(res, i, &list.items[list.n++]);
    clear_secret(res);
    *out = list;
    return DPS_OK;
}

/* --- settings ------------------------------------------------------------------------------- */

static int pg_setting_get(struct store *s, const char *key, char **out, struct dps_error *err)
{
    struct pg_store *q = to_pg(s);
    const char *params[] = {key};
    PGresult *res;
    int rc;

    if ((rc = ensure_connected(q, err)))
        return rc;
    res = run_misc(q, ST_SETTING_GET, params, "read a setting", err);
    if (!res)
        return DPS_ERR_STORE;
    if (PQntuples(res) == 0) {
        rc = dps_error_set(err, DPS_ERR_NOT_FOUND, "setting '%s' is not set", key);
    } else {
        *out = value_dup(res, 0, 0);
        rc = DPS_OK;
    }
    PQclear(res);
    return rc;
}

static int pg_setting_put(struct store *s, const char *key, const char *value, bool create_only,
                          struct dps_error *err)
{
    struct pg_store *q = to_pg(s);
    const char *params[] = {key, value};
    PGresult *res;
    int rc;

    if ((rc = op_begin(q, err)))
        return rc;
    res = run_misc(q, create_only ? ST_SETTING_CREATE : ST_SETTING_PUT, params, "write a setting",
                   err);
    if (!res)
        rc = DPS_ERR_STORE;
    else if (create_only && strcmp(PQcmdTuples(res), "0") == 0)
        rc = dps_error_set(err, DPS_ERR_CONFLICT, "setting '%s' is set", key);
    PQclear(res);
    return op_end(q, rc, err);
}

/* --- audit ---------------------------------------------------------------------------------- */

static int pg_audit_append(struct store *s, const struct store_audit_in *in, int64_t *id_out,
                           struct dps_error *err)
{
    struct pg_store *q = to_pg(s);
    const char *params[] = {in->actor,     in->action,      in->kind,
                            in->object_id, in->tracking_id, in->outcome};
    PGresult *res;
    int rc;

    if ((rc = op_begin(q, err)))
        return rc;
    res = run_misc(q, ST_AUDIT_APPEND, params, "append to the audit trail", err);
    if (!res)
        rc = DPS_ERR_STORE;
    else if (id_out)
        *id_out = value_int(res, 0, 0);
    PQclear(res);
    return op_end(q, rc, err);
}

static int pg_audit_list(struct store *s, int64_t before_id, size_t limit,
                         struct store_audit_list *out, struct dps_error *err)
{
    struct pg_store *q = to_pg(s);
    struct store_audit_list list = {0};
    char before[24], lim[24];
    const char *params[] = {before, lim};
    PGresult *res;
    int rc, rows;

    if ((rc = ensure_connected(q, err)))
        return rc;
    snprintf(before, sizeof(before), "%" PRId64, before_id);
    snprintf(lim, sizeof(lim), "%zu", limit);
    res = run_misc(q, ST_AUDIT_LIST, params, "list the audit trail", err);
    if (!res)
        return DPS_ERR_STORE;
    rows = PQntuples(res);
    list.items = xcalloc(limit, sizeof(*list.items));
    for (int i = 0; i < rows && list.n < limit; i++) {
        struct store_audit *a = &list.items[list.n++];
        a->id = value_int(res, i, 0);
        a->time_ms = value_int(res, i, 1);
        a->actor = value_dup(res, i, 2);
        a->action = value_dup(res, i, 3);
        a->kind = value_dup(res, i, 4);
        a->object_id = value_dup(res, i, 5);
        a->tracking_id = value_dup(res, i, 6);
        a->outcome = value_dup(res, i, 7);
    }
    PQclear(res);
    *out = list;
    return DPS_OK;
}

const struct store_ops store_postgres_ops = {
    .scheme = "postgres",
    .open = pg_open,
    .close = pg_close,
    .object_get = pg_object_get,
    .object_put = pg_object_put,
    .object_delete = pg_object_delete,
    .object_list = pg_object_list,
    .object_count = pg_object_count,
    .attempt_append = pg_attempt_append,
    .attempt_list = pg_attempt_list,
    .batch_begin = pg_batch_begin,
    .batch_commit = pg_batch_commit,
    .batch_rollback = pg_batch_rollback,
    .unit_begin = pg_unit_begin,
    .unit_end = pg_unit_end,
    .policy_get = pg_policy_get,
    .policy_put = pg_policy_put,
    .policy_delete = pg_policy_delete,
    .policy_list = pg_policy_list,
    .setting_get = pg_setting_get,
    .setting_put = pg_setting_put,
    .audit_append = pg_audit_append,
    .audit_list = pg_audit_list,
};
