/* SPDX-License-Identifier: MIT */
/*
 * The SQLite backend: SQL for every store operation, schema migrations, and a
 * per-connection cache of prepared statements. Arguments arrive checked by
 * the front (store.c); this file only talks to SQLite. Writers take the
 * write lock up front (BEGIN IMMEDIATE) so that two connections never
 * deadlock upgrading a read lock, and wait for each other through the busy
 * timeout.
 */
#include "core/common.h"
#include "store/sqlite.h"
#include "store/schema.h"
#include "store/sqlite_vfs.h"

#include <assert.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>

/* How long a writer waits for another connection's transaction to end. */
#define BUSY_TIMEOUT_MS 10000

/* sqlite3_total_changes64() came with 3.37; Debian 12 has 3.40. */
#define SQLITE_MIN_VERSION 3037000
#if SQLITE_VERSION_NUMBER < SQLITE_MIN_VERSION
#error "dpsd needs SQLite 3.37 or newer"
#endif

/* --- schema --------------------------------------------------------------------------------- */

/*
 * Migrations, oldest first: migrations[i] takes the schema from version i to
 * i + 1. Append new steps; never edit a released one. Ids compare
 * case-insensitively (dps-protocol.md §8), so id columns are COLLATE NOCASE
 * and keyset paging follows that order.
 */
static const char *const migrations[] = {
    /* 1: the initial schema. */
    "CREATE TABLE enrollments ("
    "  id TEXT NOT NULL PRIMARY KEY COLLATE NOCASE,"
    "  etag TEXT NOT NULL, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,"
    "  device_id TEXT, attestation TEXT, json TEXT NOT NULL);"
    "CREATE INDEX enrollments_by_attestation ON enrollments (attestation, id);"
    "CREATE TABLE enrollment_groups ("
    "  id TEXT NOT NULL PRIMARY KEY COLLATE NOCASE,"
    "  etag TEXT NOT NULL, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,"
    "  attestation TEXT, json TEXT NOT NULL);"
    "CREATE INDEX enrollment_groups_by_attestation ON enrollment_groups (attestation, id);"
    "CREATE TABLE registrations ("
    "  id TEXT NOT NULL PRIMARY KEY COLLATE NOCASE,"
    "  etag TEXT NOT NULL, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,"
    "  device_id TEXT, group_id TEXT COLLATE NOCASE, status TEXT, assigned_hub TEXT,"
    "  json TEXT NOT NULL);"
    "CREATE INDEX registrations_by_group ON registrations (group_id, id);"
    "CREATE TABLE ca_certificates ("
    "  id TEXT NOT NULL PRIMARY KEY COLLATE NOCASE,"
    "  etag TEXT NOT NULL, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,"
    "  json TEXT NOT NULL);"
    "CREATE TABLE attempts ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  registration_id TEXT NOT NULL COLLATE NOCASE, time_ms INTEGER NOT NULL,"
    "  status TEXT NOT NULL, success INTEGER NOT NULL, tracking_id TEXT, json TEXT NOT NULL);"
    "CREATE INDEX attempts_by_registration ON attempts (registration_id, id);"
    "CREATE INDEX attempts_failed ON attempts (id) WHERE success = 0;"
    "CREATE TABLE policies ("
    "  name TEXT NOT NULL PRIMARY KEY COLLATE NOCASE,"
    "  primary_key TEXT NOT NULL, secondary_key TEXT, rights INTEGER NOT NULL,"
    "  etag TEXT NOT NULL, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);"
    "CREATE TABLE settings (key TEXT NOT NULL PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE audit ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT, time_ms INTEGER NOT NULL,"
    "  actor TEXT NOT NULL, action TEXT NOT NULL, kind TEXT NOT NULL,"
    "  object_id TEXT, tracking_id TEXT, outcome TEXT NOT NULL);",
};

int store_sqlite_schema_version(void)
{
    return (int)ARRAY_SIZE(migrations);
}

/* --- statement cache ------------------------------------------------------------------------ */

/* Per-kind object statements. */
enum object_op {
    OP_GET,
    OP_META,
    OP_PUT,
    OP_UPDATE,
    OP_UPDATE_SAME_KEYS,
    OP_DELETE,
    OP_LIST,
    OP_LIST_GROUP,
    OP_LIST_ATTESTATION,
    OP_COUNT,
    OP_COUNT_GROUP,
    OP_COUNT_ATTESTATION,
    OP_COUNT_OF_OPS,
};

/* Statements that are not per kind; their slots follow the object ones. */
enum misc_stmt {
    ST_BEGIN,
    ST_READ_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_UNIT_BEGIN,
    ST_UNIT_RELEASE,
    ST_UNIT_ROLLBACK_TO,
    ST_ATTEMPT_APPEND,
    ST_ATTEMPT_LIST,
    ST_ATTEMPT_LIST_FAILED,
    ST_ATTEMPT_LIST_REG,
    ST_ATTEMPT_LIST_REG_FAILED,
    ST_POLICY_GET,
    ST_POLICY_PUT,
    ST_POLICY_DELETE,
    ST_POLICY_LIST,
    ST_SETTING_GET,
    ST_SETTING_PUT,
    ST_SETTING_CREATE,
    ST_AUDIT_APPEND,
    ST_AUDIT_LIST,
    ST_COUNT_OF_MISC,
};

static const char *const misc_sql[ST_COUNT_OF_MISC] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_READ_BEGIN] = "BEGIN DEFERRED",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_UNIT_BEGIN] = "SAVEPOINT unit",
    [ST_UNIT_RELEASE] = "RELEASE unit",
    [ST_UNIT_ROLLBACK_TO] = "ROLLBACK TO unit",
    [ST_ATTEMPT_APPEND] = "INSERT INTO attempts (registration_id, time_ms, status, success,"
                          " tracking_id, json) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_ATTEMPT_LIST] = "SELECT " SCHEMA_ATTEMPT_COLUMNS " FROM attempts WHERE id < ?1"
                        " ORDER BY id DESC LIMIT ?2",
    [ST_ATTEMPT_LIST_FAILED] = "SELECT " SCHEMA_ATTEMPT_COLUMNS " FROM attempts"
                               " WHERE success = 0 AND id < ?1 ORDER BY id DESC LIMIT ?2",
    [ST_ATTEMPT_LIST_REG] = "SELECT " SCHEMA_ATTEMPT_COLUMNS " FROM attempts"
                            " WHERE registration_id = ?3 AND id < ?1 ORDER BY id DESC LIMIT ?2",
    [ST_ATTEMPT_LIST_REG_FAILED] = "SELECT " SCHEMA_ATTEMPT_COLUMNS " FROM attempts"
                                   " WHERE registration_id = ?3 AND success = 0 AND id < ?1"
                                   " ORDER BY id DESC LIMIT ?2",
    [ST_POLICY_GET] = "SELECT " SCHEMA_POLICY_COLUMNS " FROM policies WHERE name = ?1",
    [ST_POLICY_PUT] = "INSERT OR REPLACE INTO policies (" SCHEMA_POLICY_COLUMNS ")"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_POLICY_DELETE] = "DELETE FROM policies WHERE name = ?1",
    [ST_POLICY_LIST] = "SELECT " SCHEMA_POLICY_COLUMNS " FROM policies ORDER BY name LIMIT ?1",
    [ST_SETTING_GET] = "SELECT value FROM settings WHERE key = ?1",
    [ST_SETTING_PUT] = "INSERT OR REPLACE INTO settings (key, value) VALUES (?1, ?2)",
    [ST_SETTING_CREATE] = "INSERT OR IGNORE INTO settings (key, value) VALUES (?1, ?2)",
    [ST_AUDIT_APPEND] = "INSERT INTO audit (time_ms, actor, action, kind, object_id,"
                        " tracking_id, outcome) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_AUDIT_LIST] = "SELECT " SCHEMA_AUDIT_COLUMNS " FROM audit WHERE id < ?1"
                      " ORDER BY id DESC LIMIT ?2",
};

#define OBJECT_SLOTS (STORE_KIND_COUNT * OP_COUNT_OF_OPS)
#define SLOT_COUNT (OBJECT_SLOTS + ST_COUNT_OF_MISC)

struct checkpointer;

struct sqlite_store {
    struct store base; /* first: the front casts between the two */
    sqlite3 *db;
    char *path;
    sqlite3_stmt *stmts[SLOT_COUNT]; /* prepared on first use, finalized on close */
    struct checkpointer *ck;         /* store_checkpoint_in_background(), or NULL */
};

static struct sqlite_store *to_sqlite(struct store *s)
{
    return (struct sqlite_store *)s;
}

/* Fills err with what SQLite said, naming the database file; returns DPS_ERR_STORE. */
static int db_fail(struct sqlite_store *q, const char *doing, struct dps_error *err)
{
    int code = sqlite3_extended_errcode(q->db);

    if ((code & 0xff) == SQLITE_BUSY)
        return dps_error_set(err, DPS_ERR_STORE,
                             "store '%s' cannot %s: the database stayed locked by another writer "
                             "for %d ms",
                             q->path, doing, BUSY_TIMEOUT_MS);
    return dps_error_set(err, DPS_ERR_STORE, "store '%s' cannot %s: %s", q->path, doing,
                         sqlite3_errmsg(q->db));
}

/*
 * The columns of each kind that an index of the schema above holds besides
 * the id (enum schema_column bits). Keep in step with the migrations.
 */
static const unsigned indexed_columns[STORE_KIND_COUNT] = {
    [STORE_ENROLLMENT] = COL_ATTESTATION,
    [STORE_GROUP] = COL_ATTESTATION,
    [STORE_REGISTRATION] = COL_GROUP_ID,
    [STORE_CA_CERT] = 0,
};

/* Writes the SQL of an object statement into buf. */
static void object_sql(enum store_kind kind, enum object_op op, char *buf, size_t size)
{
    const char *t = schema_kinds[kind].table;
    char cols[256], names[160] = "", params[64] = "", sets[256] = "", same_sets[256] = "",
                    keys[160] = "";
    size_t nused = 0, pused = 0, sused = 0, ssused = 0, kused = 0;

    schema_select_columns(kind, cols, sizeof(cols));
    /* Column i is parameter ?(6 + i), bound or not. */
    for (size_t i = 0; i < SCHEMA_COLUMN_COUNT; i++) {
        if (!(schema_kinds[kind].columns & (1u << i)))
            continue;
        nused +=
            (size_t)snprintf(names + nused, sizeof(names) - nused, ", %s", schema_column_names[i]);
        pused += (size_t)snprintf(params + pused, sizeof(params) - pused, ", ?%d", 6 + (int)i);
        sused += (size_t)snprintf(sets + sused, sizeof(sets) - sused, ", %s = ?%d",
                                  schema_column_names[i], 6 + (int)i);
        if (indexed_columns[kind] & (1u << i))
            kused += (size_t)snprintf(keys + kused, sizeof(keys) - kused, ", %s",
                                      schema_column_names[i]);
        else
            ssused += (size_t)snprintf(same_sets + ssused, sizeof(same_sets) - ssused, ", %s = ?%d",
                                       schema_column_names[i], 6 + (int)i);
    }
    switch (op) {
    case OP_GET:
        snprintf(buf, size, "SELECT %s FROM %s WHERE id = ?1", cols, t);
        break;
    case OP_META:
        /* the indexed columns in schema_column order, after these three */
        snprintf(buf, size, "SELECT id, etag, created_ms%s FROM %s WHERE id = ?1", keys, t);
        break;
    case OP_PUT:
        snprintf(buf, size,
                 "INSERT INTO %s (id, etag, created_ms, updated_ms, json%s)"
                 " VALUES (?1, ?2, ?3, ?4, ?5%s)",
                 t, names, params);
        break;
    case OP_UPDATE:
        /*
         * In place: the row keeps its rowid, its id as first created and its
         * creation time, so the id's index is not rewritten.
         */
        snprintf(buf, size, "UPDATE %s SET etag = ?2, updated_ms = ?4, json = ?5%s WHERE id = ?1",
                 t, sets);
        break;
    case OP_UPDATE_SAME_KEYS:
        /*
         * OP_UPDATE for a row whose indexed columns keep their values:
         * SQLite rewrites an index whenever one of its columns is assigned,
         * equal or not, so they are left out.
         */
        snprintf(buf, size, "UPDATE %s SET etag = ?2, updated_ms = ?4, json = ?5%s WHERE id = ?1",
                 t, same_sets);
        break;
    case OP_DELETE:
        snprintf(buf, size, "DELETE FROM %s WHERE id = ?1", t);
        break;
    case OP_LIST:
        snprintf(buf, size, "SELECT %s FROM %s WHERE id > ?1 ORDER BY id LIMIT ?2", cols, t);
        break;
    case OP_LIST_GROUP:
        snprintf(buf, size,
                 "SELECT %s FROM %s WHERE group_id = ?3 AND id > ?1 ORDER BY id LIMIT ?2", cols, t);
        break;
    case OP_LIST_ATTESTATION:
        snprintf(buf, size,
                 "SELECT %s FROM %s WHERE attestation = ?3 AND id > ?1 ORDER BY id LIMIT ?2", cols,
                 t);
        break;
    case OP_COUNT:
        snprintf(buf, size, "SELECT count(*) FROM %s", t);
        break;
    case OP_COUNT_GROUP:
        snprintf(buf, size, "SELECT count(*) FROM %s WHERE group_id = ?1", t);
        break;
    case OP_COUNT_ATTESTATION:
        snprintf(buf, size, "SELECT count(*) FROM %s WHERE attestation = ?1", t);
        break;
    case OP_COUNT_OF_OPS:
        assert(!"not an operation");
        break;
    }
}

/* Returns the cached statement of slot, preparing it on first use; NULL on failure. */
static sqlite3_stmt *prepare_slot(struct sqlite_store *q, size_t slot, struct dps_error *err)
{
    char buf[1024];
    const char *sql;

    assert(slot < SLOT_COUNT);
    if (q->stmts[slot])
        return q->stmts[slot];
    if (slot < OBJECT_SLOTS) {
        object_sql((enum store_kind)(slot / OP_COUNT_OF_OPS),
                   (enum object_op)(slot % OP_COUNT_OF_OPS), buf, sizeof(buf));
        sql = buf;
    } else {
        sql = misc_sql[slot - OBJECT_SLOTS];
    }
    if (sqlite3_prepare_v3(q->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &q->stmts[slot], NULL) !=
        SQLITE_OK) {
        db_fail(q, "prepare a statement", err);
        return NULL;
    }
    return q->stmts[slot];
}

static sqlite3_stmt *object_stmt(struct sqlite_store *q, enum store_kind kind, enum object_op op,
                                 struct dps_error *err)
{
    return prepare_slot(q, (size_t)kind * OP_COUNT_OF_OPS + op, err);
}

static sqlite3_stmt *misc_stmt(struct sqlite_store *q, enum misc_stmt which, struct dps_error *err)
{
    return prepare_slot(q, OBJECT_SLOTS + which, err);
}

/* Makes a cached statement ready for its next use. */
static void done(sqlite3_stmt *st)
{
    if (!st)
        return;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static char *column_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *v = sqlite3_column_text(st, i);

    if (!v)
        return NULL;
    return xstrndup((const char *)v, (size_t)sqlite3_column_bytes(st, i));
}

/*
 * Runs the bound statement st, which returns no rows, and makes it ready for
 * its next use. id_out, when not NULL, receives the id of the row it
 * inserted. Returns DPS_OK or DPS_ERR_STORE.
 */
static int step_done(struct sqlite_store *q, sqlite3_stmt *st, const char *doing, int64_t *id_out,
                     struct dps_error *err)
{
    int rc = DPS_OK;

    if (sqlite3_step(st) != SQLITE_DONE)
        rc = db_fail(q, doing, err);
    else if (id_out)
        *id_out = sqlite3_last_insert_rowid(q->db);
    done(st);
    return rc;
}

/*
 * Steps the bound statement st to its first row. Returns DPS_OK with the row
 * ready to read, DPS_ERR_NOT_FOUND when there is none (err untouched: the
 * caller names what is missing) or DPS_ERR_STORE. The caller calls done(st).
 */
static int step_row(struct sqlite_store *q, sqlite3_stmt *st, const char *doing,
                    struct dps_error *err)
{
    switch (sqlite3_step(st)) {
    case SQLITE_ROW:
        return DPS_OK;
    case SQLITE_DONE:
        return DPS_ERR_NOT_FOUND;
    default:
        return db_fail(q, doing, err);
    }
}

/* Runs a statement that returns no rows. */
static int exec_stmt(struct sqlite_store *q, enum misc_stmt which, const char *doing,
                     struct dps_error *err)
{
    sqlite3_stmt *st = misc_stmt(q, which, err);

    return st ? step_done(q, st, doing, NULL, err) : DPS_ERR_STORE;
}

/* --- transactions --------------------------------------------------------------------------- */

/*
 * Some errors (disk full, I/O) make SQLite roll back the whole transaction.
 * A batch must then fail as a whole: later writes would otherwise commit on
 * their own, outside it.
 */
static int check_batch_alive(struct sqlite_store *q, struct dps_error *err)
{
    if (sqlite3_get_autocommit(q->db))
        return dps_error_set(err, DPS_ERR_STORE,
                             "store '%s': the batch was rolled back after an earlier error",
                             q->path);
    return DPS_OK;
}

/*
 * The cached statement which of a single-statement write. In a batch, the
 * batch must still be alive: the write would otherwise commit on its own.
 * Returns DPS_OK with *out set, or DPS_ERR_STORE.
 */
static int write_stmt(struct sqlite_store *q, enum misc_stmt which, sqlite3_stmt **out,
                      struct dps_error *err)
{
    sqlite3_stmt *st = misc_stmt(q, which, err);
    int rc;

    if (!st)
        return DPS_ERR_STORE;
    if (q->base.in_batch && (rc = check_batch_alive(q, err)) != DPS_OK)
        return rc;
    *out = st;
    return DPS_OK;
}

/*
 * One write operation (reads, then at most one write statement): its own
 * IMMEDIATE transaction, or inside a batch nothing more than the batch. A
 * savepoint around it would undo no more than SQLite does by itself: a
 * failed statement leaves nothing of itself behind (or, after an I/O or
 * disk-full error, the whole transaction is gone, which check_batch_alive()
 * notices), and the reads before it change nothing. Savepoints are not
 * free: every page first written inside one is copied to the statement
 * journal.
 */
static int op_begin(struct sqlite_store *q, struct dps_error *err)
{
    if (q->base.in_batch)
        return check_batch_alive(q, err);
    return exec_stmt(q, ST_BEGIN, "start a transaction", err);
}

static int op_commit(struct sqlite_store *q, struct dps_error *err)
{
    if (q->base.in_batch)
        return DPS_OK;
    return exec_stmt(q, ST_COMMIT, "commit", err);
}

static void op_rollback(struct sqlite_store *q)
{
    if (!q->base.in_batch && !sqlite3_get_autocommit(q->db))
        exec_stmt(q, ST_ROLLBACK, "roll back", NULL);
}

static int sq_batch_begin(struct store *s, struct dps_error *err)
{
    return exec_stmt(to_sqlite(s), ST_BEGIN, "start a batch", err);
}

static int sq_batch_commit(struct store *s, struct dps_error *err)
{
    struct sqlite_store *q = to_sqlite(s);
    int rc = check_batch_alive(q, err);

    return rc ? rc : exec_stmt(q, ST_COMMIT, "commit a batch", err);
}

static void sq_batch_rollback(struct store *s)
{
    struct sqlite_store *q = to_sqlite(s);

    if (!sqlite3_get_autocommit(q->db))
        exec_stmt(q, ST_ROLLBACK, "roll back a batch", NULL);
}

/*
 * Rows changed by the statements that succeeded: a statement that failed
 * was undone by SQLite and adds nothing, so an unchanged count means that
 * nothing was written in between.
 */
static int sq_batch_changes(struct store *s, int64_t *out, struct dps_error *err)
{
    struct sqlite_store *q = to_sqlite(s);
    int rc = check_batch_alive(q, err);

    if (rc)
        return rc;
    *out = (int64_t)sqlite3_total_changes64(q->db);
    return DPS_OK;
}

/*
 * A deferred transaction: its first read takes the WAL snapshot (one lock
 * of the shared index, the page cache checked once) and every later read
 * of the request uses it, instead of one snapshot per statement.
 */
static int sq_read_begin(struct store *s, struct dps_error *err)
{
    return exec_stmt(to_sqlite(s), ST_READ_BEGIN, "start a read", err);
}

static void sq_read_end(struct store *s)
{
    struct sqlite_store *q = to_sqlite(s);

    if (!sqlite3_get_autocommit(q->db))
        exec_stmt(q, ST_COMMIT, "end a read", NULL);
}

/* --- background checkpoints ----------------------------------------------------------------- */

/* Log pages between two runs of the checkpoint thread: SQLite's own default cadence. */
#define CHECKPOINT_PAGES 1000
/* Log pages past which the committing connection checkpoints itself (the thread lags). */
#define CHECKPOINT_INLINE_PAGES (16 * CHECKPOINT_PAGES)

struct checkpointer {
    sqlite3 *db; /* the thread's own connection */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool due;      /* under lock */
    bool stopping; /* under lock */
    int64_t runs;  /* under lock */
    /* The committing connection's, read and written in its WAL hook only. */
    int next_at;    /* the log's pages at which the thread runs next */
    int last_pages; /* the log's pages after the last commit */
};

/*
 * The committing connection's WAL hook, after each commit (in place of
 * SQLite's automatic checkpoint): wakes the thread every CHECKPOINT_PAGES
 * pages of log, and checkpoints right here only when the log has grown far
 * past that.
 */
static int on_wal_commit(void *arg, sqlite3 *db, const char *name, int pages)
{
    struct checkpointer *ck = arg;

    if (pages < ck->last_pages) /* the log started over after a complete checkpoint */
        ck->next_at = CHECKPOINT_PAGES;
    ck->last_pages = pages;
    if (pages >= CHECKPOINT_INLINE_PAGES) {
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        return SQLITE_OK;
    }
    if (pages >= ck->next_at) {
        ck->next_at = pages + CHECKPOINT_PAGES;
        pthread_mutex_lock(&ck->lock);
        ck->due = true;
        pthread_cond_signal(&ck->wake);
        pthread_mutex_unlock(&ck->lock);
    }
    return SQLITE_OK;
}

static void *checkpointer_main(void *arg)
{
    struct checkpointer *ck = arg;

    pthread_mutex_lock(&ck->lock);
    for (;;) {
        while (!ck->due && !ck->stopping)
            pthread_cond_wait(&ck->wake, &ck->lock);
        if (ck->stopping)
            break;
        ck->due = false;
        pthread_mutex_unlock(&ck->lock);
        /*
         * PASSIVE waits for no one: it copies the pages no reader still
         * needs and leaves the rest to the next run. A failure (another
         * process checkpointing, say) is left to the next run too.
         */
        sqlite3_wal_checkpoint_v2(ck->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        pthread_mutex_lock(&ck->lock);
        ck->runs++;
    }
    pthread_mutex_unlock(&ck->lock);
    return NULL;
}

static void checkpointer_stop(struct sqlite_store *q)
{
    struct checkpointer *ck = q->ck;

    if (!ck)
        return;
    sqlite3_wal_hook(q->db, NULL, NULL);
    pthread_mutex_lock(&ck->lock);
    ck->stopping = true;
    pthread_cond_signal(&ck->wake);
    pthread_mutex_unlock(&ck->lock);
    pthread_join(ck->thread, NULL);
    sqlite3_close(ck->db);
    pthread_cond_destroy(&ck->wake);
    pthread_mutex_destroy(&ck->lock);
    free(ck);
    q->ck = NULL;
}

static int sq_checkpoint_in_background(struct store *s, struct dps_error *err)
{
    struct sqlite_store *q = to_sqlite(s);
    struct checkpointer *ck;

    if (q->ck)
        return DPS_OK;
    ck = xcalloc(1, sizeof(*ck));
    ck->next_at = CHECKPOINT_PAGES;
    /*
     * A connection learns that the database is in WAL mode when it first
     * reads it; until then a checkpoint on it does nothing.
     */
    if (sqlite3_open_v2(q->path, &ck->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                        sqlite_vfs_name()) != SQLITE_OK ||
        sqlite3_busy_timeout(ck->db, BUSY_TIMEOUT_MS) != SQLITE_OK ||
        sqlite3_exec(ck->db, "SELECT count(*) FROM sqlite_schema", NULL, NULL, NULL) != SQLITE_OK) {
        dps_error_set(err, DPS_ERR_STORE, "store '%s' cannot open a checkpoint connection: %s",
                      q->path, ck->db ? sqlite3_errmsg(ck->db) : "out of memory");
        sqlite3_close(ck->db);
        free(ck);
        return DPS_ERR_STORE;
    }
    pthread_mutex_init(&ck->lock, NULL);
    pthread_cond_init(&ck->wake, NULL);
    if (pthread_create(&ck->thread, NULL, checkpointer_main, ck) != 0) {
        sqlite3_close(ck->db);
        pthread_cond_destroy(&ck->wake);
        pthread_mutex_destroy(&ck->lock);
        free(ck);
        return dps_error_set(err, DPS_ERR_STORE, "store '%s': cannot start a checkpoint thread",
                             q->path);
    }
    q->ck = ck;
    sqlite3_wal_hook(q->db, on_wal_commit, ck);
    return DPS_OK;
}

static int64_t sq_background_checkpoints(struct store *s)
{
    struct checkpointer *ck = to_sqlite(s)->ck;
    int64_t n;

    if (!ck)
        return 0;
    pthread_mutex_lock(&ck->lock);
    n = ck->runs;
    pthread_mutex_unlock(&ck->lock);
    return n;
}

/* A unit is a named savepoint; the operations inside it take none of their own. */
static int sq_unit_begin(struct store *s, struct dps_error *err)
{
    struct sqlite_store *q = to_sqlite(s);
    int rc = check_batch_alive(q, err);

    return rc ? rc : exec_stmt(q, ST_UNIT_BEGIN, "start a unit of a batch", err);
}

static int sq_unit_end(struct store *s, bool keep, struct dps_error *err)
{
    struct sqlite_store *q = to_sqlite(s);
    int rc = check_batch_alive(q, err);

    if (rc)
        return rc;
    if (!keep && (rc = exec_stmt(q, ST_UNIT_ROLLBACK_TO, "undo a unit of a batch", err)))
        return rc;
    return exec_stmt(q, ST_UNIT_RELEASE, "end a unit of a batch", err);
}

/* --- open and close ------------------------------------------------------------------------- */

/*
 * Runs one PRAGMA. Switching a new file to WAL takes a lock that SQLite's
 * busy handler does not wait for, so several connections opening a fresh
 * store at once retry here, for as long as the busy timeout.
 */
static int pragma(struct sqlite_store *q, const char *sql, struct dps_error *err)
{
    char *msg = NULL;
    int rc;

    for (int waited = 0;; waited += 10) {
        rc = sqlite3_exec(q->db, sql, NULL, NULL, &msg);
        if (rc == SQLITE_OK)
            return DPS_OK;
        if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED)
            break;
        if (waited >= BUSY_TIMEOUT_MS)
            break;
        sqlite3_free(msg);
        msg = NULL;
        sqlite3_sleep(10);
    }
    rc = dps_error_set(err, DPS_ERR_STORE, "store '%s' cannot be opened: %s", q->path,
                       msg ? msg : sqlite3_errmsg(q->db));
    sqlite3_free(msg);
    return rc;
}

static int read_user_version(struct sqlite_store *q, int *out, struct dps_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = DPS_OK;

    if (sqlite3_prepare_v2(q->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW)
        rc = dps_error_set(err, DPS_ERR_STORE, "store '%s' cannot read its schema version: %s",
                           q->path, sqlite3_errmsg(q->db));
    else
        *out = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return rc;
}

/* Brings the schema to the current version in one transaction; a no-op when it is current. */
static int migrate(struct sqlite_store *q, struct dps_error *err)
{
    int known = (int)ARRAY_SIZE(migrations), version = 0, rc;
    char sql[64];

    rc = pragma(q, "BEGIN IMMEDIATE", err);
    if (rc)
        return rc;
    rc = read_user_version(q, &version, err);
    if (rc)
        goto out;
    if (version > known) {
        rc = dps_error_set(err, DPS_ERR_STORE,
                           "store '%s' has schema version %d, newer than the %d this dpsd knows: "
                           "upgrade dpsd",
                           q->path, version, known);
        goto out;
    }
    for (int v = version; v < known; v++) {
        rc = pragma(q, migrations[v], err);
        if (rc)
            goto out;
    }
    if (version < known) {
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", known);
        rc = pragma(q, sql, err);
        if (rc)
            goto out;
    }
    rc = pragma(q, "COMMIT", err);
out:
    if (rc && !sqlite3_get_autocommit(q->db))
        sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static void sq_close(struct store *s)
{
    struct sqlite_store *q = to_sqlite(s);

    checkpointer_stop(q);
    for (size_t i = 0; i < SLOT_COUNT; i++)
        sqlite3_finalize(q->stmts[i]);
    sqlite3_close(q->db);
    free(q->path);
    free(q);
}

static int sq_open(const char *target, struct store **out, struct dps_error *err)
{
    struct sqlite_store *q = xcalloc(1, sizeof(*q));
    const char *vfs = sqlite_vfs_name();
    int rc;

    q->base.ops = &store_sqlite_ops;
    q->path = xstrdup(target);
    if (sqlite3_libversion_number() < SQLITE_MIN_VERSION) {
        rc = dps_error_set(err, DPS_ERR_STORE,
                           "store '%s' cannot be opened: sqlite %s is older than 3.37, the oldest "
                           "dpsd supports",
                           q->path, sqlite3_libversion());
        goto out;
    }
    if (!vfs) {
        rc = dps_error_set(err, DPS_ERR_STORE,
                           "store '%s' cannot be opened: sqlite cannot register its file layer",
                           q->path);
        goto out;
    }
    /*
     * One connection per thread: SQLite's own mutexes on it are not needed.
     * The VFS writes each commit's WAL frames with one call (sqlite_vfs.h).
     */
    if (sqlite3_open_v2(target, &q->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        vfs) != SQLITE_OK) {
        rc = dps_error_set(err, DPS_ERR_STORE, "store '%s' cannot be opened: %s", q->path,
                           q->db ? sqlite3_errmsg(q->db) : "out of memory");
        goto out;
    }
    sqlite3_extended_result_codes(q->db, 1);
    sqlite3_busy_timeout(q->db, BUSY_TIMEOUT_MS);
    /*
     * WAL lets readers run beside the one writer; synchronous=FULL syncs the
     * WAL on every commit, so a committed write survives a power loss.
     */
    if ((rc = pragma(q, "PRAGMA journal_mode = WAL", err)) ||
        (rc = pragma(q, "PRAGMA synchronous = FULL", err)) ||
        (rc = pragma(q, "PRAGMA foreign_keys = OFF", err)) || (rc = migrate(q, err)))
        goto out;
    *out = &q->base;
    q = NULL;
    rc = DPS_OK;
out:
    if (q)
        sq_close(&q->base);
    return rc;
}

/* --- objects -------------------------------------------------------------------------------- */

static void read_object(sqlite3_stmt *st, struct store_object *o)
{
    o->id = column_dup(st, 0);
    o->etag = column_dup(st, 1);
    o->created_ms = sqlite3_column_int64(st, 2);
    o->updated_ms = sqlite3_column_int64(st, 3);
    o->json = column_dup(st, 4);
    o->device_id = column_dup(st, 5);
    o->attestation = column_dup(st, 6);
    o->group_id = column_dup(st, 7);
    o->status = column_dup(st, 8);
    o->assigned_hub = column_dup(st, 9);
}

static int sq_object_get(struct store *s, enum store_kind kind, const char *id,
                         struct store_object *out, struct dps_error *err)
{
    struct sqlite_store *q = to_sqlite(s);
    sqlite3_stmt *st = object_stmt(q, kind, OP_GET, err);
    int rc;

    if (!st)
        return DPS_ERR_STORE;
    bind_text(st, 1, id);
    rc = step_row(q, st, "read", err);
    if (rc == DPS_OK)
        read_object(st, out);
    else if (rc == DPS_ERR_NOT_FOUND)
        rc = schema_not_found(kind, id, err);
    done(st);
    return rc;
}

/* What a write needs to know of the row it replaces. */
struct meta {
    bool exists;
    bool same_keys; /* the indexed columns hold the values of the put read with it */
    char *id;
    char *etag;
    int64_t created_ms;
};

static void meta_release(struct meta *m)
{
    free(m->id);
    free(m->etag);
    memset(m, 0, sizeof(*m));
}

/*
 * Reads the row of id into m (m->exists false when there is none). in: the
 * put about to replace the row, or NULL: m->same_keys then tells whether
 * in leaves every indexed column as it is (byte for byte: a value that
 * differs only in case is a change to store).
 */
static int read_meta(struct sqlite_store *q, enum store_kind kind, const char *id,
                     const struct store_put *in, struct meta *m, struct dps_error *err)
{
    sqlite3_stmt *st = object_stmt(q, kind, OP_META, err);
    int rc = DPS_OK, col = 3;

    if (!st)
        return DPS_ERR_STORE;
    bind_text(st, 1, id);
    rc = step_row(q, st, "read", err);
    if (rc == DPS_OK) {
        m->exists = true;
        m->id = column_dup(st, 0);
        m->etag = column_dup(st, 1);
        m->created_ms = sqlite3_column_int64(st, 2);
        m->same_keys = in != NULL;
        for (size_t i = 0; i < SCHEMA_COLUMN_COUNT && m->same_keys; i++) {
            const char *want, *have;

            if (!(indexed_columns[kind] & (1u << i)))
                continue;
            want = schema_put_column(in, i);
            have = (const char *)sqlite3_column_text(st, col++);
            m->same_keys = want && have ? strcmp(want, have) == 0 : want == have;
        }
    } else if (rc == DPS_ERR_NOT_FOUND) {
        rc = DPS_OK;
    }
    done(st);
    return rc;
}

/* The If-Match rules shared by put and delete; if_match NULL always passes. */
static int check_if_match(enum store_kind kind, const char *id, const struct meta *m,
                          const char *if_match, struct dps_error *err)
{
    if (!if_match)
        return DPS_OK;
    if (!m->exists)
        return schema_if_match_failed(kind, id, if_match, NULL, err);
    if (strcmp(if_match, "*") != 0 && strcmp(if_match, m->etag) != 0)
        return schema_if_match_failed(kind, id, if_match, m->etag, err);
    return DPS_OK;
}

/* Binds in to an OP_PUT, OP_UPDATE or OP_UPDATE_SAME_KEYS statement of kind. */
static void bind_put(sqlite3_stmt *st, enum store_kind kind, const struct store_put *in,
                     const char *id, const char *etag, int64_t created, int64_t now)
{
    bind_text(st, 1, id);
    bind_text(st, 2, etag);
    sqlite3_bind_int64(st, 3, created);
    sqlite3_bind_int64(st, 4, now);
    bind_text(st, 5, in->json);
    for (size_t i = 0; i < SCHEMA_COLUMN_COUNT; i++)
        if (schema_kinds[kind].columns & (1u << i))
            bind_text(st, 6 + (int)i, schema_put_column(in, i));
}

static int sq_object_put(struct store *s, enum store_kind kind, const struct store_put *in,
                         struct store_object *out, struct dps_error *err)
{
    struct sqlite_store *q = to_sqlite(s);
    struct meta m = {0};
    sqlite3_stmt *st = NULL;
    enum object_op op = OP_PUT;
    char etag[STORE_ETAG_SIZE];
    int64_t now, created;
    const char *id;
    int rc;

    rc = op_begin(q, err);
    if (rc)
        return rc;
    if ((rc = read_meta(q, kind, in->id, in, &m, err)) ||
        (rc = check_if_match(kind, in->id, &m, in->if_match, err)))
        goto out;
    if (in->create_only && m.exists) {
        rc = schema_exists(kind, m.id, err);
        goto out;
    }
    /* Read in this write transaction: the row exists now exactly when m says so. */
    if (m.exists)
        op = m.same_keys ? OP_UPDATE_SAME_KEYS : OP_UPDATE;
    st = object_stmt(q, kind, op, err);
    if (!st) {
        rc = DPS_ERR_STORE;
        goto out;
    }
    store_etag_new(kind, etag);
    now = store_now_ms();
    created = m.exists ? m.created_ms : now;
    /* An update keeps the id as first created; ids compare case-insensitively. */
    id = m.exists ? m.id : in->id;
    bind_put(st, kind, in, id, etag, created, now);
    rc = step_done(q, st, "write", NULL, err);
    st = NULL;
    if (rc)
        goto out;
    rc = op_commit(q, err);
    if (rc)
        goto out;
    if (out)
        schema_object_written(kind, in, id, etag, created, now, out);
out:
    done(st);
    if (rc)
        op_rollback(q);
    meta_release(&m);
    return rc;
}

static int sq_object_delete(struct store *s, enum store_kind kind, const char *id,
                            const char *if_match, struct dps_error *err)
{
    struct sqlite_store *q = to_sqlite(s);
    struct meta m = {0};
    sqlite3_stmt *st = NULL;
    int rc;

    rc = op_begin(q, err);
    if (rc)
        return rc;
    if ((rc = read_meta(q, kind, id, NULL, &m, err)))
        goto out;
    if (!m.exists) {
        rc = schema_not_found(kind, id, err);
        goto out;
    }
    if ((rc = check_if_match(kind, id, &m, if_match, err)))
        goto out;
    st = object_stmt(q, kind, OP_DELETE, err);
    if (!st) {
        rc = DPS_ERR_STORE;
        goto out;
    }
    bind_text(st, 1, id);
    rc = step_done(q, st, "delete", NULL, err);
    st = NULL;
    if (rc)
        goto out;
    rc = op_commit(q, err);
out:
    done(st);
    if (rc)
        op_rollback(q);
    meta_release(&m);
    return rc;
}

static int sq_object_list(struct store *s, enum store_kind kind, const struct store_query *query,
                          struct store_page *out, struct dps_error *err)
{
    struct sqlite_store *q = to_sqlite(s);
    struct store_page page = {0};
    enum object_op op = OP_LIST;
    const char *filter = NULL;
    sqlite3_stmt *st;
    int rc = DPS_OK, step;

    if (query->group_id) {
        op = OP_LIST_GROUP;
        filter = query->group_id;
    } else if (query->attestation) {
        op = OP_LIST_ATTESTATION;
        filter = query->attestation;
    }
    st = object_stmt(q, kind, op, err);
    if (!st)
        return DPS_ERR_STORE;
    /* Every id sorts after the empty string. */
    bind_text(st, 1, query->after ? query->after : "");
    /* One row more than the page tells whether another page follows. */
    sqlite3_bind_int64(st, 2, (sqlite3_int64)query->limit + 1);
    if (filter)
        bind_text(st, 3, filter);
    page.items = xcalloc(query->limit, sizeof(*page.items));
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (page.n == query->limit) {
            page.next_cursor = xstrdup(page.items[page.n - 1].id);
            break;
        }
        read_object(st, &page.items[page.n++]);
    }
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        rc = db_fail(q, "list", err);
    done(st);
    if (rc) {
        store_page_release(&page);
        return rc;
    }
    *out = page;
    return DPS_OK;
}

static int sq_object_count(struct store *s, enum store_kind kind, const struct store_query *query,
                           int64_t *out, struct dps_error *err)
{
    struct sqlite_store *q = to_sqlite(s);
    enum object_op op = OP_COUNT;
    const char *filter = NULL;
    sqlite3_stmt *st;
    int rc = DPS_OK;

    if (query->group_id) {
        op = OP_COUNT_GROUP;
        filter = query->group_id;
    } else if (query->attestation) {
        op = OP_COUNT_ATTESTATION;
        filter = query->attestation;
    }
    st = object_stmt(q, kind, op, err);
    if (!st)
        return DPS_ERR_STORE;
    if (filter)
        bind_text(st, 1, filter);
    if (sqlite3_step(st) == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else
        rc = db_fail(q, "count", err);
    done(st);
    return rc;
}

/* --- attempts ------------------------------------------------------------------------------- */

static int sq_attempt_append(struct store *s, const struct store_attempt_in *in, int64_t *id_out,
                             struct dps_error *err)
{
    struct sqlite_store *q = to_sqlite(s);
    sqlite3_stmt *st;
    int rc = write_stmt(q, ST_ATTEMPT_APPEND, &st, err);

    if (rc)
        return rc;
    bind_text(st, 1, in->registration_id);
    sqlite3_bind_int64(st, 2, store_now_ms());
    bind_text(st, 3, in->status);
    sqlite3_bind_int(st, 4, in->success ? 1 : 0);
    bind_text(st, 5, in->tracking_id);
    bind_text(st, 6, in->json);
    /* A single statement outside a batch is its own durable transaction. */
    return step_done(q, st, "append an attempt", id_out, err);
}

static int sq_attempt_list(struct store *s, const char *registration_id, bool failures_only,
                           int64_t before_id, size_t limit, struct store_attempt_list *out,
                           struct dps_error *err)
{
    struct sqlite_store *q = to_sqlite(s);
    struct store_attempt_list list = {0};
    enum misc_stmt which;
    sqlite3_stmt *st;
    int rc = DPS_OK, step = SQLITE_DONE;

    if (registration_id)
        which = failures_only ? ST_ATTEMPT_LIST_REG_FAILED : ST_ATTEMPT_LIST_REG;
    else
        which = failures_only ? ST_ATTEMPT_LIST_FAILED : ST_ATTEMPT_LIST;
    st = misc_stmt(q, which, err);
    if (!st)
        return DPS_ERR_STORE;
    sqlite3_bind_int64(st, 1, before_id);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
    if (registration_id)
        bind_text(st, 3, registration_id);
    list.items = xcalloc(limit, sizeof(*list.items));
    while (list.n < limit && (step = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_attempt *a = &list.items[list.n++];
        a->id = sqlite3_column_int64(st, 0);
        a->time_ms = sqlite3_column_int64(st, 1);
        a->registration_id = column_dup(st, 2);
        a->status = column_dup(st, 3);
        a->success = sqlite3_column_int(st, 4) != 0;
        a->tracking_id = column_dup(st, 5);
        a->json = column_dup(st, 6);
    }
    if (list.n < limit && step != SQLITE_DONE)
        rc = db_fail(q, "list attempts", err);
    done(st);
    if (rc) {
        store_attempt_list_release(&list);
        return rc;
    }
    *out = list;
    return DPS_OK;
}

/* --- policies ------------------------------------------------------------------------------- */

static void read_policy(sqlite3_stmt *st, struct store_policy *p)
{
    p->name = column_dup(st, 0);
    p->primary_key = column_dup(st, 1);
    p->secondary_key = column_dup(st, 2);
    p->rights = (uint32_t)sqlite3_column_int64(st, 3);
    p->etag = column_dup(st, 4);
    p->created_ms = sqlite3_column_int64(st, 5);
    p->updated_ms = sqlite3_column_int64(st, 6);
}

static int sq_policy_get(struct store *s, const char *name, struct store_policy *out,
                         struct dps_error *err)
{
    struct sqlite_store *q = to_sqlite(s);
    sqlite3_stmt *st = misc_stmt(q, ST_POLICY_GET, err);
    int rc;

    if (!st)
        return DPS_ERR_STORE;
    bind_text(st, 1, name);
    rc = step_row(q, st, "read a policy", err);
    if (rc == DPS_OK)
        read_policy(st, out);
    else if (rc == DPS_ERR_NOT_FOUND)
        rc = schema_policy_not_found(name, err);
    done(st);
    return rc;
}

static int sq_policy_put(struct store *s, const struct store_policy *in, bool create_only,
                         struct store_policy *out, struct dps_error *err)
{
    struct sqlite_store *q = to_sqlite(s);
    struct store_policy old = {0};
    struct dps_error get_err = {0};
    sqlite3_stmt *st = NULL;
    char etag[STORE_ETAG_SIZE];
    int64_t now = store_now_ms(), created = now;
    const char *name = in->name;
    int rc;

    rc = op_begin(q, err);
    if (rc)
        return rc;
    rc = sq_policy_get(s, in->name, &old, &get_err);
    if (rc == DPS_OK && create_only) {
        rc = dps_error_set(err, DPS_ERR_CONFLICT, "policy '%s' exists", in->name);
        goto out;
    } else if (rc == DPS_OK) {
        created = old.created_ms;
        name = old.name;
    } else if (rc != DPS_ERR_NOT_FOUND) {
        if (err)
            *err = get_err;
        goto out;
    }
    st = misc_stmt(q, ST_POLICY_PUT, err);
    if (!st) {
        rc = DPS_ERR_STORE;
        goto out;
    }
    /* The etag changes on every write so that caches of the key notice. */
    store_etag_new(STORE_ENROLLMENT, etag);
    bind_text(st, 1, name);
    bind_text(st, 2, in->primary_key);
    bind_text(st, 3, in->secondary_key);
    sqlite3_bind_int64(st, 4, in->rights);
    bind_text(st, 5, etag);
    sqlite3_bind_int64(st, 6, created);
    sqlite3_bind_int64(st, 7, now);
    rc = step_done(q, st, "write a policy", NULL, err);
    st = NULL;
    if (rc)
        goto out;
    rc = op_commit(q, err);
    if (rc)
        goto out;
    if (out)
        schema_policy_written(in, name, etag, created, now, out);
out:
    done(st);
    if (rc)
        op_rollback(q);
    store_policy_release(&old);
    return rc;
}

static int sq_policy_delete(struct store *s, const char *name, struct dps_error *err)
{
    struct sqlite_store *q = to_sqlite(s);
    sqlite3_stmt *st;
    int rc = write_stmt(q, ST_POLICY_DELETE, &st, err);

    if (rc)
        return rc;
    bind_text(st, 1, name);
    rc = step_done(q, st, "delete a policy", NULL, err);
    if (rc == DPS_OK && sqlite3_changes(q->db) == 0)
        rc = schema_policy_not_found(name, err);
    return rc;
}

static int sq_policy_list(struct store *s, struct store_policy_list *out, struct dps_error *err)
{
    struct sqlite_store *q = to_sqlite(s);
    struct store_policy_list list = {0};
    sqlite3_stmt *st = misc_stmt(q, ST_POLICY_LIST, err);
    size_t cap = 0;
    int rc = DPS_OK, step;

    if (!st)
        return DPS_ERR_STORE;
    sqlite3_bind_int64(st, 1, STORE_PAGE_MAX);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (list.n == cap) {
            cap = cap ? cap * 2 : 8;
            list.items = xrealloc(list.items, cap * sizeof(*list.items));
        }
        memset(&list.items[list.n], 0, sizeof(list.items[0]));
        read_policy(st, &list.items[list.n++]);
    }
    if (step != SQLITE_DONE)
        rc = db_fail(q, "list policies", err);
    done(st);
    if (rc) {
        store_policy_list_release(&list);
        return rc;
    }
    *out = list;
    return DPS_OK;
}

/* --- settings ------------------------------------------------------------------------------- */

static int sq_setting_get(struct store *s, const char *key, char **out, struct dps_error *err)
{
    struct sqlite_store *q = to_sqlite(s);
    sqlite3_stmt *st = misc_stmt(q, ST_SETTING_GET, err);
    int rc;

    if (!st)
        return DPS_ERR_STORE;
    bind_text(st, 1, key);
    rc = step_row(q, st, "read a setting", err);
    if (rc == DPS_OK)
        *out = column_dup(st, 0);
    else if (rc == DPS_ERR_NOT_FOUND)
        rc = dps_error_set(err, DPS_ERR_NOT_FOUND, "setting '%s' is not set", key);
    done(st);
    return rc;
}

static int sq_setting_put(struct store *s, const char *key, const char *value, bool create_only,
                          struct dps_error *err)
{
    struct sqlite_store *q = to_sqlite(s);
    sqlite3_stmt *st;
    int rc = write_stmt(q, create_only ? ST_SETTING_CREATE : ST_SETTING_PUT, &st, err);

    if (rc)
        return rc;
    bind_text(st, 1, key);
    bind_text(st, 2, value);
    rc = step_done(q, st, "write a setting", NULL, err);
    if (rc == DPS_OK && create_only && sqlite3_changes(q->db) == 0)
        rc = dps_error_set(err, DPS_ERR_CONFLICT, "setting '%s' is set", key);
    return rc;
}

/* --- audit ---------------------------------------------------------------------------------- */

static int sq_audit_append(struct store *s, const struct store_audit_in *in, int64_t *id_out,
                           struct dps_error *err)
{
    struct sqlite_store *q = to_sqlite(s);
    sqlite3_stmt *st;
    int rc = write_stmt(q, ST_AUDIT_APPEND, &st, err);

    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, store_now_ms());
    bind_text(st, 2, in->actor);
    bind_text(st, 3, in->action);
    bind_text(st, 4, in->kind);
    bind_text(st, 5, in->object_id);
    bind_text(st, 6, in->tracking_id);
    bind_text(st, 7, in->outcome);
    return step_done(q, st, "append to the audit trail", id_out, err);
}

static int sq_audit_list(struct store *s, int64_t before_id, size_t limit,
                         struct store_audit_list *out, struct dps_error *err)
{
    struct sqlite_store *q = to_sqlite(s);
    struct store_audit_list list = {0};
    sqlite3_stmt *st = misc_stmt(q, ST_AUDIT_LIST, err);
    int rc = DPS_OK, step = SQLITE_DONE;

    if (!st)
        return DPS_ERR_STORE;
    sqlite3_bind_int64(st, 1, before_id);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
    list.items = xcalloc(limit, sizeof(*list.items));
    while (list.n < limit && (step = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_audit *a = &list.items[list.n++];
        a->id = sqlite3_column_int64(st, 0);
        a->time_ms = sqlite3_column_int64(st, 1);
        a->actor = column_dup(st, 2);
        a->action = column_dup(st, 3);
        a->kind = column_dup(st, 4);
        a->object_id = column_dup(st, 5);
        a->tracking_id = column_dup(st, 6);
        a->outcome = column_dup(st, 7);
    }
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        rc = db_fail(q, "list the audit trail", err);
    done(st);
    if (rc) {
        store_audit_list_release(&list);
        return rc;
    }
    *out = list;
    return DPS_OK;
}

const struct store_ops store_sqlite_ops = {
    .scheme = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .object_get = sq_object_get,
    .object_put = sq_object_put,
    .object_delete = sq_object_delete,
    .object_list = sq_object_list,
    .object_count = sq_object_count,
    .attempt_append = sq_attempt_append,
    .attempt_list = sq_attempt_list,
    .batch_begin = sq_batch_begin,
    .batch_commit = sq_batch_commit,
    .batch_rollback = sq_batch_rollback,
    .batch_changes = sq_batch_changes,
    .read_begin = sq_read_begin,
    .read_end = sq_read_end,
    .checkpoint_in_background = sq_checkpoint_in_background,
    .background_checkpoints = sq_background_checkpoints,
    .unit_begin = sq_unit_begin,
    .unit_end = sq_unit_end,
    .policy_get = sq_policy_get,
    .policy_put = sq_policy_put,
    .policy_delete = sq_policy_delete,
    .policy_list = sq_policy_list,
    .setting_get = sq_setting_get,
    .setting_put = sq_setting_put,
    .audit_append = sq_audit_append,
    .audit_list = sq_audit_list,
};
