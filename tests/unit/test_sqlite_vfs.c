/* SPDX-License-Identifier: MIT */
/*
 * The WAL write shim of the SQLite store (src/store/sqlite_vfs.c): the store
 * reads back what it wrote across connections, reopens and checkpoints; a
 * commit is one write; a failed held write fails its commit; and frames of a
 * rolled-back transaction never land on another connection's commit. Write
 * calls are counted and failed through the unix VFS's system-call table
 * (xSetSystemCall), so the shim itself has no test hooks.
 */
#include "core/common.h"
#include "store/sqlite_vfs.h"
#include "store/store.h"

#include <errno.h>
#include <sqlite3.h>
#include <sys/types.h>
#include <unistd.h>

#include "../t.h"
#include "tmpdir.h"

static char dir[512], db_path[600], dsn[700];

/* --- the write system calls, counted and failed ---------------------------------------------- */

typedef ssize_t (*pwrite_fn)(int fd, const void *buf, size_t n, off_t off);
typedef ssize_t (*write_fn)(int fd, const void *buf, size_t n);

static pwrite_fn real_pwrite, real_pwrite64;
static write_fn real_write;
static int write_calls;  /* writes to files, counted while the hooks are in */
static bool fail_writes; /* every write fails with EIO */

static ssize_t fake_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    write_calls++;
    if (fail_writes) {
        errno = EIO;
        return -1;
    }
    return real_pwrite(fd, buf, n, off);
}

static ssize_t fake_pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    write_calls++;
    if (fail_writes) {
        errno = EIO;
        return -1;
    }
    return real_pwrite64(fd, buf, n, off);
}

static ssize_t fake_write(int fd, const void *buf, size_t n)
{
    write_calls++;
    if (fail_writes) {
        errno = EIO;
        return -1;
    }
    return real_write(fd, buf, n);
}

/* Puts the counting hooks in the default VFS's system-call table; false if it has none. */
static bool hooks_in(void)
{
    sqlite3_vfs *v = sqlite3_vfs_find(NULL);

    if (!v || v->iVersion < 3 || !v->xSetSystemCall)
        return false;
    real_pwrite = (pwrite_fn)v->xGetSystemCall(v, "pwrite");
    real_pwrite64 = (pwrite_fn)v->xGetSystemCall(v, "pwrite64");
    real_write = (write_fn)v->xGetSystemCall(v, "write");
    if (real_pwrite)
        v->xSetSystemCall(v, "pwrite", (sqlite3_syscall_ptr)fake_pwrite);
    if (real_pwrite64)
        v->xSetSystemCall(v, "pwrite64", (sqlite3_syscall_ptr)fake_pwrite64);
    if (real_write)
        v->xSetSystemCall(v, "write", (sqlite3_syscall_ptr)fake_write);
    write_calls = 0;
    fail_writes = false;
    return real_pwrite || real_pwrite64 || real_write;
}

static void hooks_out(void)
{
    sqlite3_vfs *v = sqlite3_vfs_find(NULL);

    fail_writes = false;
    if (v && v->iVersion >= 3 && v->xSetSystemCall)
        v->xSetSystemCall(v, NULL, NULL);
}

/* --- helpers -------------------------------------------------------------------------------- */

static void fresh(const char *name)
{
    test_tmpdir(dir, sizeof(dir), name);
    snprintf(db_path, sizeof(db_path), "%s/t.db", dir);
    snprintf(dsn, sizeof(dsn), "sqlite:%s", db_path);
}

/* The JSON body of enrollment i: about 1.5 KiB, so that a commit spans several pages. */
static void body(int i, char *buf, size_t size)
{
    int n = snprintf(buf, size, "{\"i\":%d,\"pad\":\"", i);

    for (int k = 0; k < 1500 && (size_t)n + 3 < size; k++)
        buf[n++] = (char)('a' + (i + k) % 26);
    snprintf(buf + n, size - (size_t)n, "\"}");
}

static int put(struct store *s, int i, struct dps_error *err)
{
    char id[32], json[2048];
    struct store_put in = {.id = id, .json = json, .attestation = "symmetricKey"};

    snprintf(id, sizeof(id), "dev-%05d", i);
    body(i, json, sizeof(json));
    return store_enrollment_put(s, &in, NULL, err);
}

/* Checks that enrollments first..last-1 are all there with their bodies; the count of any missing.
 */
static int missing(struct store *s, int first, int last)
{
    struct store_object o = {0};
    struct dps_error err = {0};
    char id[32], json[2048];
    int bad = 0;

    for (int i = first; i < last; i++) {
        snprintf(id, sizeof(id), "dev-%05d", i);
        body(i, json, sizeof(json));
        if (store_enrollment_get(s, id, &o, &err) != DPS_OK || strcmp(o.json, json) != 0)
            bad++;
        store_object_release(&o);
    }
    return bad;
}

static int64_t count(struct store *s)
{
    struct dps_error err = {0};
    int64_t n = -1;

    if (store_enrollment_count(s, NULL, &n, &err) != DPS_OK)
        return -1;
    return n;
}

/* Runs sql on db; the first column of the first row as text into buf ("" when none). */
static int query(sqlite3 *db, const char *sql, char *buf, size_t size)
{
    sqlite3_stmt *st = NULL;
    int rc;

    buf[0] = '\0';
    rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
            if (!buf[0] && sqlite3_column_text(st, 0))
                snprintf(buf, size, "%s", (const char *)sqlite3_column_text(st, 0));
        if (rc == SQLITE_DONE)
            rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

static sqlite3 *raw_open(const char *vfs)
{
    sqlite3 *db = NULL;

    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs) !=
        SQLITE_OK) {
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 10000);
    return db;
}

/* --- cases ---------------------------------------------------------------------------------- */

/*
 * Many commits through the store, each seen at once by a second connection;
 * a checkpoint that empties the WAL (so the next commit writes the WAL
 * header at offset 0 again); and everything read back after reopening.
 */
static void test_round_trip(void)
{
    struct store *s = NULL, *t = NULL;
    struct dps_error err = {0};
    sqlite3 *raw = NULL;
    char out[64];
    int next = 0;

    fresh("sqlite-vfs-rt");
    ok_int(store_open(dsn, &s, &err), DPS_OK);
    ok_int(store_open(dsn, &t, &err), DPS_OK);
    for (int round = 0; round < 2; round++) {
        for (int batch = 0; batch < 60; batch++) {
            ok_int(store_batch_begin(s, &err), DPS_OK);
            /* 1 to 40 rows: from one page up to runs longer than SQLITE_VFS_RUN_MAX. */
            for (int k = 0; k <= batch % 40; k++)
                ok_int(put(s, next++, &err), DPS_OK);
            ok_int(store_batch_commit(s, &err), DPS_OK);
            ok_int(count(t), next);
        }
        ok_int(missing(t, 0, next), 0);
        raw = raw_open(sqlite_vfs_name());
        ok(raw);
        ok_int(query(raw, "PRAGMA wal_checkpoint(TRUNCATE)", out, sizeof(out)), SQLITE_OK);
        ok_str(out, "0");
        sqlite3_close(raw);
        raw = NULL;
        ok_int(missing(s, 0, next), 0);
    }
    store_close(s);
    store_close(t);
    s = t = NULL;
    ok_int(store_open(dsn, &s, &err), DPS_OK);
    ok_int(count(s), next);
    ok_int(missing(s, 0, next), 0);
    raw = raw_open(NULL);
    ok(raw);
    ok_int(query(raw, "PRAGMA integrity_check", out, sizeof(out)), SQLITE_OK);
    ok_str(out, "ok");
end:
    sqlite3_close(raw);
    store_close(s);
    store_close(t);
    test_tmpdir_remove_sqlite(dir, "t.db");
}

/* Counts the write calls of one small commit through db. */
static int commit_writes(sqlite3 *db, int *out)
{
    int rc;

    rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc =
        sqlite3_exec(db,
                     "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20) "
                     "INSERT INTO t SELECT x, randomblob(900) FROM c",
                     NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return rc;
    write_calls = 0;
    rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    *out = write_calls;
    return rc;
}

/*
 * One commit of several pages is one write through the shim, two a page
 * without it. Both connections stay open so that the WAL is not emptied on
 * close: the first commit to an empty WAL also writes and syncs its header.
 */
static void test_one_write(void)
{
    sqlite3 *db = NULL, *via_shim = NULL;
    int plain = 0, shim = 0;
    bool hooked = false;

    fresh("sqlite-vfs-one");
    db = raw_open(NULL);
    via_shim = raw_open(sqlite_vfs_name());
    ok(db && via_shim);
    ok_int(sqlite3_exec(db,
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; "
                        "PRAGMA wal_autocheckpoint = 0; CREATE TABLE t(a, b)",
                        NULL, NULL, NULL),
           SQLITE_OK);
    ok_int(sqlite3_exec(via_shim, "PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 0", NULL,
                        NULL, NULL),
           SQLITE_OK);
    hooked = hooks_in();
    ok(hooked);
    ok_int(commit_writes(db, &plain), SQLITE_OK);
    ok_int(commit_writes(via_shim, &shim), SQLITE_OK);
    /* Twenty 900-byte rows fill five or more pages: ten or more writes without the shim. */
    ok(plain >= 10);
    ok_int(shim, 1);
end:
    if (hooked)
        hooks_out();
    sqlite3_close(via_shim);
    sqlite3_close(db);
    test_tmpdir_remove_sqlite(dir, "t.db");
}

/*
 * The frames of a commit are written at its sync: a write that fails there
 * must fail the commit, and the store must come back without it.
 */
static void test_failed_write(void)
{
    struct store *s = NULL;
    struct dps_error err = {0};
    bool hooked = false;

    fresh("sqlite-vfs-fail");
    ok_int(store_open(dsn, &s, &err), DPS_OK);
    ok_int(store_batch_begin(s, &err), DPS_OK);
    for (int i = 0; i < 5; i++)
        ok_int(put(s, i, &err), DPS_OK);
    ok_int(store_batch_commit(s, &err), DPS_OK);
    hooked = hooks_in();
    ok(hooked);
    ok_int(store_batch_begin(s, &err), DPS_OK);
    for (int i = 5; i < 10; i++)
        ok_int(put(s, i, &err), DPS_OK);
    fail_writes = true;
    write_calls = 0;
    ok_int(store_batch_commit(s, &err), DPS_ERR_STORE);
    ok(write_calls > 0);
    ok(strstr(err.msg, "I/O error") || strstr(err.msg, "disk"));
    fail_writes = false;
    store_close(s);
    s = NULL;
    hooks_out();
    hooked = false;
    ok_int(store_open(dsn, &s, &err), DPS_OK);
    ok_int(count(s), 5);
    ok_int(missing(s, 0, 5), 0);
    /* The store still takes commits after the failure. */
    ok_int(put(s, 5, &err), DPS_OK);
    ok_int(count(s), 6);
end:
    if (hooked)
        hooks_out();
    store_close(s);
    test_tmpdir_remove_sqlite(dir, "t.db");
}

/*
 * A transaction too big for the page cache spills frames into the WAL before
 * it ends; rolled back, those frames are garbage past the end of the log.
 * Held in memory past the rollback, they would later be written over the
 * frames another connection committed at the same offsets. The WAL starts
 * empty so that the rollback reads nothing from it (a read would write the
 * held frames out early).
 */
static void test_spill_rollback(void)
{
    sqlite3 *a = NULL, *b = NULL, *check = NULL;
    char out[64];

    fresh("sqlite-vfs-spill");
    a = raw_open(sqlite_vfs_name());
    b = raw_open(sqlite_vfs_name());
    ok(a && b);
    ok_int(sqlite3_exec(a,
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; "
                        "PRAGMA wal_autocheckpoint = 0; PRAGMA cache_size = 10; "
                        "CREATE TABLE t(a INTEGER PRIMARY KEY, b); "
                        "PRAGMA wal_checkpoint(TRUNCATE)",
                        NULL, NULL, NULL),
           SQLITE_OK);
    ok_int(sqlite3_exec(b, "PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 0", NULL, NULL,
                        NULL),
           SQLITE_OK);
    ok_int(sqlite3_exec(a,
                        "BEGIN IMMEDIATE; "
                        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
                        "WHERE x < 100) INSERT INTO t SELECT x, randomblob(700) FROM c; "
                        "ROLLBACK",
                        NULL, NULL, NULL),
           SQLITE_OK);
    ok_int(sqlite3_exec(b,
                        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
                        "WHERE x < 30) INSERT INTO t SELECT x, zeroblob(700) FROM c",
                        NULL, NULL, NULL),
           SQLITE_OK);
    ok_int(sqlite3_exec(a, "INSERT INTO t VALUES (1000, 'a')", NULL, NULL, NULL), SQLITE_OK);
    check = raw_open(NULL);
    ok(check);
    ok_int(query(check, "SELECT count(*) FROM t WHERE b = zeroblob(700)", out, sizeof(out)),
           SQLITE_OK);
    ok_str(out, "30");
    ok_int(query(check, "SELECT count(*) FROM t", out, sizeof(out)), SQLITE_OK);
    ok_str(out, "31");
    ok_int(query(check, "PRAGMA integrity_check", out, sizeof(out)), SQLITE_OK);
    ok_str(out, "ok");
end:
    sqlite3_close(check);
    sqlite3_close(a);
    sqlite3_close(b);
    test_tmpdir_remove_sqlite(dir, "t.db");
}

/* A second shim over the same VFS registers; a name taken is refused. */
static void test_register(void)
{
    const char *name = sqlite_vfs_name();

    ok(name);
    ok(sqlite_vfs_name() == name);
    ok(sqlite3_vfs_find(name));
    ok(sqlite3_vfs_find(NULL) != sqlite3_vfs_find(name));
    ok_int(sqlite_vfs_register_over(name, sqlite3_vfs_find(NULL)), SQLITE_MISUSE);
    ok_int(sqlite_vfs_register_over("dpsd-walrun-test", sqlite3_vfs_find(NULL)), SQLITE_OK);
    ok(sqlite3_vfs_find("dpsd-walrun-test"));
end:;
}

int main(void)
{
    subtest("register", test_register);
    subtest("round trip across connections, checkpoints and reopening", test_round_trip);
    subtest("one write per commit", test_one_write);
    subtest("a failed held write fails the commit", test_failed_write);
    subtest("rolled-back spilled frames stay off others' commits", test_spill_rollback);
    return t_done();
}
