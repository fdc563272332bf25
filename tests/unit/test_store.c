/* SPDX-License-Identifier: MIT */
/*
 * The store conformance suite: every backend must pass every case. Each case
 * opens a fresh store from the current backend's factory: SQLite in a file
 * under $DPS_TEST_TMP, and PostgreSQL in a fresh database on a throwaway
 * server that the suite starts itself (tests/pg.sh) and stops at exit. A new
 * backend adds a factory to backends[] below.
 */
#include "core/common.h"
#include "store/store.h"
#include "store/postgres.h"
#include "store/sqlite.h"

#include <errno.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../t.h"

/*
 * Writes a DSN for a fresh, empty store named name into buf; path gets what
 * the backend's messages name the store by (the file, the database).
 */
typedef void (*fresh_dsn_fn)(const char *name, char *buf, size_t size, char *path,
                             size_t path_size);
/* Reads the schema version of the store at dsn, first setting it when set >= 0; -1 on failure. */
typedef int (*schema_version_fn)(int set);

static char tmp_dir[512];
static char dsn[700], db_path[600];
/* The throwaway PostgreSQL server's conninfo for its "postgres" database. */
static char pg_admin[600];

static void sqlite_fresh_dsn(const char *name, char *buf, size_t size, char *path, size_t path_size)
{
    char f[600];

    snprintf(path, path_size, "%s/store-%s.db", tmp_dir, name);
    unlink(path);
    snprintf(f, sizeof(f), "%s-wal", path);
    unlink(f);
    snprintf(f, sizeof(f), "%s-shm", path);
    unlink(f);
    snprintf(buf, size, "sqlite:%s", path);
}

static int sqlite_schema_version(int set)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    char sql[64];
    int v = -1;

    if (sqlite3_open(db_path, &db) != SQLITE_OK)
        goto out;
    if (set >= 0) {
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", set);
        sqlite3_exec(db, sql, NULL, NULL, NULL);
    }
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* Runs sql on conninfo; returns the first value of the first row (or "") in buf, -1 on failure. */
static int pg_query(const char *conninfo, const char *sql, char *buf, size_t size)
{
    PGconn *c = PQconnectdb(conninfo);
    PGresult *res = NULL;
    int rc = -1;

    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "  cannot connect to '%s': %s", conninfo, PQerrorMessage(c));
        goto out;
    }
    PQsetNoticeProcessor(c, ignore_notice, NULL);
    res = PQexec(c, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "  '%s' failed: %s", sql, PQerrorMessage(c));
        goto out;
    }
    snprintf(buf, size, "%s",
             PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0 ? PQgetvalue(res, 0, 0)
                                                                          : "");
    rc = 0;
out:
    PQclear(res);
    PQfinish(c);
    return rc;
}

/* A fresh database "t_NAME" on the test server, dropped first if an earlier case left it. */
static void pg_fresh_dsn(const char *name, char *buf, size_t size, char *path, size_t path_size)
{
    char sql[256], ignored[8];

    snprintf(path, path_size, "t_%s", name);
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", path);
    pg_query(pg_admin, sql, ignored, sizeof(ignored));
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", path);
    pg_query(pg_admin, sql, ignored, sizeof(ignored));
    /* The later dbname overrides the admin conninfo's. */
    snprintf(buf, size, "postgres:%s dbname=%s", pg_admin, path);
}

static int pg_schema_version(int set)
{
    const char *conninfo = dsn + strlen("postgres:");
    char sql[96], v[32];

    if (set >= 0) {
        snprintf(sql, sizeof(sql), "UPDATE schema_version SET version = %d", set);
        if (pg_query(conninfo, sql, v, sizeof(v)) != 0)
            return -1;
    }
    if (pg_query(conninfo, "SELECT max(version) FROM schema_version", v, sizeof(v)) != 0)
        return -1;
    return (int)strtol(v, NULL, 10);
}

static const struct {
    const char *name;
    fresh_dsn_fn fresh;
    schema_version_fn schema_version;
    int (*build_version)(void);
    bool is_file;   /* cases about damaged files apply */
    bool is_shared; /* nodes start together on one fresh store */
} backends[] = {
    {"sqlite", sqlite_fresh_dsn, sqlite_schema_version, store_sqlite_schema_version, true, false},
    {"postgres", pg_fresh_dsn, pg_schema_version, store_postgres_schema_version, false, true},
};

static fresh_dsn_fn fresh_dsn;
static bool on_sqlite; /* the backend under test keeps its store in a file */
static schema_version_fn schema_version;
static int (*build_version)(void);

/* Opens a fresh store for one case; the DSN stays in dsn for reopening. */
static struct store *open_fresh(const char *name)
{
    struct store *s = NULL;
    struct dps_error err = {0};

    fresh_dsn(name, dsn, sizeof(dsn), db_path, sizeof(db_path));
    if (store_open(dsn, &s, &err) != DPS_OK)
        fprintf(stderr, "  cannot open '%s': %s\n", dsn, err.msg);
    return s;
}

static int put_enrollment(struct store *s, const char *id, const char *json, const char *if_match,
                          struct store_object *out, struct dps_error *err)
{
    struct store_put in = {.id = id, .json = json, .if_match = if_match, .attestation = "x509"};

    return store_enrollment_put(s, &in, out, err);
}

static void test_crud(void)
{
    struct store *s = open_fresh("crud");
    struct store_object a = {0}, b = {0}, g = {0};
    struct store_put in = {.id = "dev-1",
                           .json = "{\"registrationId\":\"dev-1\"}",
                           .device_id = "device-one",
                           .attestation = "symmetricKey",
                           .create_only = true};
    struct dps_error err = {0};
    int64_t n = -1;

    ok(s);
    ok_int(store_enrollment_get(s, "dev-1", &g, &err), DPS_ERR_NOT_FOUND);
    ok(strstr(err.msg, "'dev-1'"));
    ok_int(store_enrollment_put(s, &in, &a, &err), DPS_OK);
    ok_str(a.id, "dev-1");
    ok(a.etag[0] == '"' && a.etag[strlen(a.etag) - 1] == '"' && strlen(a.etag) == 38);
    ok(a.created_ms > 0 && a.created_ms == a.updated_ms);
    ok_str(a.device_id, "device-one");
    ok(!a.group_id);
    ok_int(store_enrollment_put(s, &in, NULL, &err), DPS_ERR_CONFLICT);

    /* Ids compare case-insensitively and keep the spelling of their creation. */
    ok_int(store_enrollment_get(s, "DEV-1", &g, &err), DPS_OK);
    ok_str(g.id, "dev-1");
    ok_str(g.etag, a.etag);
    ok_str(g.json, "{\"registrationId\":\"dev-1\"}");
    ok_str(g.attestation, "symmetricKey");
    ok_int(g.created_ms, a.created_ms);
    store_object_release(&g);

    usleep(2000);
    in.create_only = false;
    in.id = "DEV-1";
    in.json = "{\"registrationId\":\"dev-1\",\"v\":2}";
    in.device_id = NULL;
    ok_int(store_enrollment_put(s, &in, &b, &err), DPS_OK);
    ok_str(b.id, "dev-1");
    ok(strcmp(a.etag, b.etag) != 0);
    ok_int(b.created_ms, a.created_ms);
    ok(b.updated_ms > a.updated_ms);
    ok_int(store_enrollment_get(s, "dev-1", &g, &err), DPS_OK);
    ok_str(g.json, in.json);
    ok_str(g.etag, b.etag);
    ok(!g.device_id);
    ok_int(store_enrollment_count(s, NULL, &n, &err), DPS_OK);
    ok_int(n, 1);
    /* Kinds are apart: the same id as a group is another object. */
    ok_int(store_group_get(s, "dev-1", &g, &err), DPS_ERR_NOT_FOUND);
end:
    store_object_release(&a);
    store_object_release(&b);
    store_object_release(&g);
    store_close(s);
}

static void test_etag_every_write(void)
{
    struct store *s = open_fresh("etags");
    struct store_object o = {0};
    struct dps_error err = {0};
    char seen[20][STORE_ID_MAX];

    ok(s);
    for (int i = 0; i < 20; i++) {
        ok_int(put_enrollment(s, "e", "{}", NULL, &o, &err), DPS_OK);
        snprintf(seen[i], sizeof(seen[i]), "%s", o.etag);
        store_object_release(&o);
        for (int j = 0; j < i; j++)
            ok(strcmp(seen[i], seen[j]) != 0);
    }
end:
    store_object_release(&o);
    store_close(s);
}

static void test_if_match(void)
{
    struct store *s = open_fresh("ifmatch");
    struct store_object a = {0}, b = {0}, g = {0};
    struct dps_error err = {0};

    ok(s);
    /* A conditional write to a missing object is 412, as Azure answers it. */
    ok_int(put_enrollment(s, "x", "{}", "*", NULL, &err), DPS_ERR_PRECONDITION);
    ok_int(put_enrollment(s, "x", "{}", "\"abc\"", NULL, &err), DPS_ERR_PRECONDITION);
    ok_int(store_enrollment_get(s, "x", &g, &err), DPS_ERR_NOT_FOUND);

    ok_int(put_enrollment(s, "x", "{\"v\":1}", NULL, &a, &err), DPS_OK);
    ok_int(put_enrollment(s, "x", "{\"v\":2}", a.etag, &b, &err), DPS_OK);
    /* The first etag is stale now. */
    ok_int(put_enrollment(s, "x", "{\"v\":3}", a.etag, NULL, &err), DPS_ERR_PRECONDITION);
    ok(strstr(err.msg, "'x'") && strstr(err.msg, b.etag));
    ok_int(store_enrollment_get(s, "x", &g, &err), DPS_OK);
    ok_str(g.json, "{\"v\":2}");
    store_object_release(&g);
    ok_int(put_enrollment(s, "x", "{\"v\":4}", "*", NULL, &err), DPS_OK);
    ok_int(store_enrollment_get(s, "x", &g, &err), DPS_OK);
    ok_str(g.json, "{\"v\":4}");
    /* If-Match compares byte-exact: the etag without its quotes is another value. */
    {
        char bare[64];
        snprintf(bare, sizeof(bare), "%.*s", (int)strlen(g.etag) - 2, g.etag + 1);
        ok_int(put_enrollment(s, "x", "{}", bare, NULL, &err), DPS_ERR_PRECONDITION);
    }
    /* A create that carries If-Match is a caller bug worth a clear message. */
    {
        struct store_put in = {.id = "y", .json = "{}", .if_match = "*", .create_only = true};
        ok_int(store_enrollment_put(s, &in, NULL, &err), DPS_ERR_INVAL);
    }
end:
    store_object_release(&a);
    store_object_release(&b);
    store_object_release(&g);
    store_close(s);
}

static void test_delete(void)
{
    struct store *s = open_fresh("delete");
    struct store_object a = {0}, g = {0};
    struct dps_error err = {0};

    ok(s);
    ok_int(store_group_delete(s, "g1", NULL, &err), DPS_ERR_NOT_FOUND);
    ok(strstr(err.msg, "enrollment group 'g1'"));
    ok_int(store_group_delete(s, "g1", "*", &err), DPS_ERR_NOT_FOUND);
    {
        struct store_put in = {.id = "g1", .json = "{}", .attestation = "x509"};
        ok_int(store_group_put(s, &in, &a, &err), DPS_OK);
    }
    ok_int(store_group_delete(s, "g1", "\"stale\"", &err), DPS_ERR_PRECONDITION);
    ok_int(store_group_get(s, "g1", &g, &err), DPS_OK);
    ok_int(store_group_delete(s, "G1", a.etag, &err), DPS_OK);
    ok_int(store_group_get(s, "g1", &g, &err), DPS_ERR_NOT_FOUND);
    ok_int(store_group_delete(s, "g1", NULL, &err), DPS_ERR_NOT_FOUND);
    ok_int(put_enrollment(s, "e1", "{}", NULL, NULL, &err), DPS_OK);
    ok_int(store_enrollment_delete(s, "e1", "*", &err), DPS_OK);
    ok_int(put_enrollment(s, "e1", "{}", NULL, NULL, &err), DPS_OK);
    ok_int(store_enrollment_delete(s, "e1", NULL, &err), DPS_OK);
end:
    store_object_release(&a);
    store_object_release(&g);
    store_close(s);
}

/* Pages through every enrollment with this page size and checks order and completeness. */
static int page_all(struct store *s, size_t limit, int expected)
{
    struct store_page page = {0};
    struct dps_error err = {0};
    char *cursor = NULL, want[32];
    size_t effective = limit == 0 ? STORE_PAGE_DEFAULT : limit;
    int seen = 0, pages = 0, ret = -1;

    if (effective > STORE_PAGE_MAX)
        effective = STORE_PAGE_MAX;
    for (;;) {
        struct store_query q = {.after = cursor, .limit = limit};
        ok_int(store_enrollment_list(s, &q, &page, &err), DPS_OK);
        pages++;
        ok(page.n <= effective);
        for (size_t i = 0; i < page.n; i++) {
            snprintf(want, sizeof(want), "dev-%06d", seen++);
            ok_str(page.items[i].id, want);
        }
        if (!page.next_cursor)
            break;
        /* Only a full page may promise more. */
        ok_int(page.n, effective);
        free(cursor);
        cursor = page.next_cursor;
        page.next_cursor = NULL;
        store_page_release(&page);
    }
    ok_int(seen, expected);
    ok_int(pages, (expected + (int)effective - 1) / (int)effective + (expected == 0));
    ret = 0;
end:
    free(cursor);
    store_page_release(&page);
    return ret;
}

static void test_paging(void)
{
    struct store *s = open_fresh("paging");
    struct store_page page = {0};
    struct dps_error err = {0};
    char id[32];
    int64_t n = 0;
    /* 2500 is a multiple of 500 and of 100: the last full page must carry no cursor. */
    const size_t sizes[] = {0, 1, 7, 100, 333, 500, 1000, 5000};

    ok(s);
    ok_int(page_all(s, 10, 0), 0);
    ok_int(store_batch_begin(s, &err), DPS_OK);
    /* Inserted out of order: paging must follow ids, not insertion. */
    for (int i = 2499; i >= 0; i--) {
        snprintf(id, sizeof(id), "dev-%06d", i);
        ok_int(put_enrollment(s, id, "{\"k\":1}", NULL, NULL, &err), DPS_OK);
    }
    ok_int(store_batch_commit(s, &err), DPS_OK);
    ok_int(store_enrollment_count(s, NULL, &n, &err), DPS_OK);
    ok_int(n, 2500);
    for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
        if (page_all(s, sizes[i], 2500) != 0) {
            fprintf(stderr, "  (page size %zu)\n", sizes[i]);
            ok(0);
        }
    }
    /* A cursor past the end gives an empty last page. */
    {
        struct store_query q = {.after = "zzz", .limit = 10};
        ok_int(store_enrollment_list(s, &q, &page, &err), DPS_OK);
        ok_int(page.n, 0);
        ok(!page.next_cursor);
    }
    /* Filters a kind has no column for are refused. */
    {
        struct store_query q = {.group_id = "g"};
        ok_int(store_enrollment_list(s, &q, &page, &err), DPS_ERR_INVAL);
        ok_int(store_enrollment_count(s, &q, &n, &err), DPS_ERR_INVAL);
    }
end:
    store_page_release(&page);
    store_close(s);
}

static void test_registrations(void)
{
    struct store *s = open_fresh("registrations");
    struct store_object r = {0};
    struct store_page page = {0};
    struct dps_error err = {0};
    char id[32];
    int64_t n = 0;

    ok(s);
    for (int i = 0; i < 30; i++) {
        struct store_put in = {.id = id,
                               .json = "{}",
                               .group_id = i % 3 ? "line-a" : "line-b",
                               .status = "assigned",
                               .assigned_hub = "hub-1.example.net",
                               .device_id = id};
        snprintf(id, sizeof(id), "reg-%02d", i);
        ok_int(store_registration_put(s, &in, NULL, &err), DPS_OK);
    }
    {
        struct store_put in = {.id = "solo", .json = "{}", .status = "failed"};
        ok_int(store_registration_put(s, &in, &r, &err), DPS_OK);
    }
    /* Registration etags are base64 of a quoted value, as Azure shows them. */
    ok(r.etag[0] != '"' && strlen(r.etag) % 4 == 0 &&
       strspn(r.etag, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijk"
                      "lmnopqrstuvwxyz0123456789+/=") == strlen(r.etag));
    ok(!r.group_id);
    ok_str(r.status, "failed");
    store_object_release(&r);
    ok_int(store_registration_get(s, "reg-04", &r, &err), DPS_OK);
    ok_str(r.group_id, "line-a");
    ok_str(r.assigned_hub, "hub-1.example.net");
    ok_str(r.device_id, "reg-04");
    ok(!r.attestation);
    {
        struct store_query q = {.group_id = "LINE-A"};
        ok_int(store_registration_count(s, &q, &n, &err), DPS_OK);
        ok_int(n, 20);
        q.group_id = "line-b";
        q.limit = 6;
        ok_int(store_registration_list(s, &q, &page, &err), DPS_OK);
        ok_int(page.n, 6);
        ok_str(page.items[0].id, "reg-00");
        ok_str(page.items[5].id, "reg-15");
        ok_str(page.next_cursor, "reg-15");
        q.after = "reg-15";
        store_page_release(&page);
        ok_int(store_registration_list(s, &q, &page, &err), DPS_OK);
        ok_int(page.n, 4);
        ok_str(page.items[3].id, "reg-27");
        ok(!page.next_cursor);
    }
    {
        /* An update moves the record between groups: the group's index follows it. */
        struct store_put in = {.id = "REG-04", .json = "{\"v\":2}", .group_id = "line-b"};
        struct store_query q = {.group_id = "line-a"};

        store_page_release(&page);
        ok_int(store_registration_put(s, &in, NULL, &err), DPS_OK);
        ok_int(store_registration_count(s, &q, &n, &err), DPS_OK);
        ok_int(n, 19);
        q.group_id = "line-b";
        ok_int(store_registration_count(s, &q, &n, &err), DPS_OK);
        ok_int(n, 11);
        q.after = "reg-03";
        q.limit = 1;
        ok_int(store_registration_list(s, &q, &page, &err), DPS_OK);
        ok_int(page.n, 1);
        ok_str(page.items[0].id, "reg-04");
        ok_str(page.items[0].json, "{\"v\":2}");
        ok(!page.items[0].status);
        store_page_release(&page);
        in.group_id = NULL;
        ok_int(store_registration_put(s, &in, NULL, &err), DPS_OK);
        ok_int(store_registration_count(s, &q, &n, &err), DPS_OK);
        ok_int(n, 10);
    }
    ok_int(store_registration_count(s, NULL, &n, &err), DPS_OK);
    ok_int(n, 31);
    {
        struct store_query q = {.attestation = "x509"};
        ok_int(store_registration_list(s, &q, &page, &err), DPS_ERR_INVAL);
    }
end:
    store_object_release(&r);
    store_page_release(&page);
    store_close(s);
}

static void test_attestation_filter(void)
{
    struct store *s = open_fresh("attestation");
    struct store_page page = {0};
    struct dps_error err = {0};
    int64_t n = 0;
    const char *types[] = {"x509", "symmetricKey", "x509", "tpm", "x509"};
    char id[16];

    ok(s);
    for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
        struct store_put in = {.id = id, .json = "{}", .attestation = types[i]};
        snprintf(id, sizeof(id), "g%zu", i);
        ok_int(store_group_put(s, &in, NULL, &err), DPS_OK);
    }
    {
        struct store_query q = {.attestation = "x509"};
        ok_int(store_group_count(s, &q, &n, &err), DPS_OK);
        ok_int(n, 3);
        ok_int(store_group_list(s, &q, &page, &err), DPS_OK);
        ok_int(page.n, 3);
        ok_str(page.items[0].id, "g0");
        ok_str(page.items[1].id, "g2");
        ok_str(page.items[2].id, "g4");
    }
end:
    store_page_release(&page);
    store_close(s);
}

/*
 * An update that keeps the indexed columns and one that changes them (in
 * case only, too), in a batch and alone: what the write returns, and that
 * the indexes follow.
 */
static void test_update_keys(void)
{
    struct store *s = open_fresh("update_keys");
    struct store_object first = {0}, o = {0};
    struct store_attempt_in ai = {
        .registration_id = "Dev-1", .status = "assigned", .success = true, .json = "{}"};
    struct store_put in = {.id = "Dev-1",
                           .json = "{\"v\":1}",
                           .group_id = "Line-A",
                           .status = "assigned",
                           .device_id = "Dev-1"};
    struct dps_error err = {0};
    int64_t n = 0;

    ok(s);
    /* an insert returns the id as given, created when updated */
    ok_int(store_registration_put_with_attempt(s, &in, &ai, &first, &err), DPS_OK);
    ok_str(first.id, "Dev-1");
    ok(first.created_ms == first.updated_ms);
    usleep(2000);
    /* the same group, another spelling of the id, in a batch */
    ok_int(store_batch_begin(s, &err), DPS_OK);
    in.id = ai.registration_id = "DEV-1";
    in.json = "{\"v\":2}";
    in.status = "failed";
    ok_int(store_registration_put_with_attempt(s, &in, &ai, &o, &err), DPS_OK);
    ok_int(store_batch_commit(s, &err), DPS_OK);
    ok_str(o.id, "Dev-1");
    ok(o.created_ms == first.created_ms);
    ok(o.updated_ms > first.created_ms);
    ok(strcmp(o.etag, first.etag) != 0);
    store_object_release(&o);
    ok_int(store_registration_get(s, "dev-1", &o, &err), DPS_OK);
    ok_str(o.json, "{\"v\":2}");
    ok_str(o.status, "failed");
    ok_str(o.group_id, "Line-A");
    ok(o.created_ms == first.created_ms);
    store_object_release(&o);
    /* the group in another case only: a change, stored as given */
    in.group_id = "line-a";
    ok_int(store_registration_put(s, &in, &o, &err), DPS_OK);
    ok_str(o.id, "Dev-1");
    store_object_release(&o);
    ok_int(store_registration_get(s, "Dev-1", &o, &err), DPS_OK);
    ok_str(o.group_id, "line-a");
    store_object_release(&o);
    /* another group, then none: the group index follows */
    in.group_id = "line-b";
    ok_int(store_registration_put(s, &in, NULL, &err), DPS_OK);
    {
        struct store_query q = {.group_id = "line-a"};
        ok_int(store_registration_count(s, &q, &n, &err), DPS_OK);
        ok_int(n, 0);
        q.group_id = "LINE-B";
        ok_int(store_registration_count(s, &q, &n, &err), DPS_OK);
        ok_int(n, 1);
        in.group_id = NULL;
        ok_int(store_registration_put(s, &in, NULL, &err), DPS_OK);
        ok_int(store_registration_count(s, &q, &n, &err), DPS_OK);
        ok_int(n, 0);
        /* and back, from no group */
        in.group_id = "line-b";
        ok_int(store_registration_put(s, &in, NULL, &err), DPS_OK);
        ok_int(store_registration_count(s, &q, &n, &err), DPS_OK);
        ok_int(n, 1);
    }
    /* an enrollment's attestation index, kept and changed */
    {
        struct store_put e = {.id = "e1", .json = "{}", .attestation = "x509"};
        struct store_query q = {.attestation = "x509"};

        ok_int(store_enrollment_put(s, &e, NULL, &err), DPS_OK);
        e.json = "{\"v\":2}";
        ok_int(store_enrollment_put(s, &e, NULL, &err), DPS_OK);
        ok_int(store_enrollment_count(s, &q, &n, &err), DPS_OK);
        ok_int(n, 1);
        e.attestation = "tpm";
        ok_int(store_enrollment_put(s, &e, NULL, &err), DPS_OK);
        ok_int(store_enrollment_count(s, &q, &n, &err), DPS_OK);
        ok_int(n, 0);
        q.attestation = "tpm";
        ok_int(store_enrollment_count(s, &q, &n, &err), DPS_OK);
        ok_int(n, 1);
    }
end:
    store_object_release(&first);
    store_object_release(&o);
    store_close(s);
}

/* Inside a batch, the change count moves with each write that changed a row, and only then. */
static void test_batch_changes(void)
{
    struct store *s = open_fresh("batch_changes");
    struct dps_error err = {0};
    int64_t a = 0, b = 0;

    ok(s);
    ok_int(put_enrollment(s, "old", "{}", NULL, NULL, &err), DPS_OK);
    ok_int(store_batch_begin(s, &err), DPS_OK);
    ok_int(store_batch_changes(s, &a, &err), DPS_OK);
    if (a < 0) { /* the backend does not count: the committer uses units */
        store_batch_rollback(s);
        goto end;
    }
    ok_int(put_enrollment(s, "old", "{\"x\":1}", "\"stale\"", NULL, &err), DPS_ERR_PRECONDITION);
    ok_int(store_enrollment_delete(s, "missing", NULL, &err), DPS_ERR_NOT_FOUND);
    {
        struct store_put in = {.id = "OLD", .json = "{}", .create_only = true};
        ok_int(store_enrollment_put(s, &in, NULL, &err), DPS_ERR_CONFLICT);
    }
    ok_int(store_batch_changes(s, &b, &err), DPS_OK);
    ok(a == b);
    ok_int(put_enrollment(s, "new", "{}", NULL, NULL, &err), DPS_OK);
    ok_int(store_batch_changes(s, &b, &err), DPS_OK);
    ok(b == a + 1);
    store_batch_rollback(s);
end:
    store_close(s);
}

struct writer {
    int index;
    int failures;
    char msg[256];
};

#define WRITER_ROWS 150

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    struct store *s = NULL;
    struct dps_error err = {0};
    char id[32];

    if (store_open(dsn, &s, &err) != DPS_OK) {
        w->failures++;
        snprintf(w->msg, sizeof(w->msg), "%s", err.msg);
        return NULL;
    }
    for (int i = 0; i < WRITER_ROWS; i++) {
        snprintf(id, sizeof(id), "w%d-%04d", w->index, i);
        if (put_enrollment(s, id, "{}", NULL, NULL, &err) != DPS_OK ||
            put_enrollment(s, "shared", "{}", NULL, NULL, &err) != DPS_OK) {
            w->failures++;
            snprintf(w->msg, sizeof(w->msg), "%s", err.msg);
        }
    }
    store_close(s);
    return NULL;
}

static void test_concurrent_writers(void)
{
    struct store *s = open_fresh("concurrent");
    struct writer w[2] = {{.index = 0}, {.index = 1}};
    pthread_t th[2];
    struct dps_error err = {0};
    int64_t n = 0;

    ok(s);
    for (int i = 0; i < 2; i++)
        ok(pthread_create(&th[i], NULL, writer_main, &w[i]) == 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++) {
        if (w[i].failures)
            fprintf(stderr, "  writer %d: %d failures, last: %s\n", i, w[i].failures, w[i].msg);
        ok_int(w[i].failures, 0);
    }
    ok_int(store_enrollment_count(s, NULL, &n, &err), DPS_OK);
    ok_int(n, 2 * WRITER_ROWS + 1);
end:
    store_close(s);
}

static void test_reopen(void)
{
    struct store *s = open_fresh("reopen");
    struct store_object o = {0}, g = {0};
    struct dps_error err = {0};
    char *v = NULL;

    ok(s);
    ok_int(put_enrollment(s, "keep", "{\"kept\":true}", NULL, &o, &err), DPS_OK);
    ok_int(store_setting_put(s, "idScope", "0ne00000001", &err), DPS_OK);
    store_close(s);
    s = NULL;
    ok_int(store_open(dsn, &s, &err), DPS_OK);
    ok_int(store_enrollment_get(s, "keep", &g, &err), DPS_OK);
    ok_str(g.json, "{\"kept\":true}");
    ok_str(g.etag, o.etag);
    ok_int(g.created_ms, o.created_ms);
    ok_int(store_setting_get(s, "idScope", &v, &err), DPS_OK);
    ok_str(v, "0ne00000001");
end:
    free(v);
    store_object_release(&o);
    store_object_release(&g);
    store_close(s);
}

static void test_migrations(void)
{
    struct store *s = open_fresh("migrate"), *t = NULL;
    struct dps_error err = {0};
    struct store_object g = {0};

    ok(s);
    ok(build_version() >= 1);
    ok_int(put_enrollment(s, "m", "{}", NULL, NULL, &err), DPS_OK);
    /* A second connection on a current schema migrates nothing and loses nothing. */
    ok_int(store_open(dsn, &t, &err), DPS_OK);
    ok_int(store_enrollment_get(t, "m", &g, &err), DPS_OK);
    store_close(t);
    t = NULL;
    store_close(s);
    s = NULL;
    for (int i = 0; i < 3; i++) {
        ok_int(store_open(dsn, &s, &err), DPS_OK);
        store_close(s);
        s = NULL;
    }
    ok_int(schema_version(-1), build_version());
    /* A database from a newer dpsd is refused, naming the store and both versions. */
    ok_int(schema_version(build_version() + 1), build_version() + 1);
    ok_int(store_open(dsn, &s, &err), DPS_ERR_STORE);
    ok(!s);
    ok(strstr(err.msg, db_path));
    ok(strstr(err.msg, "newer"));
end:
    store_object_release(&g);
    store_close(t);
    store_close(s);
}

static void test_corrupt(void)
{
    struct store *s = NULL;
    struct dps_error err = {0};
    char garbage[8192];
    FILE *f;

    fresh_dsn("corrupt", dsn, sizeof(dsn), db_path, sizeof(db_path));
    for (size_t i = 0; i < sizeof(garbage); i++)
        garbage[i] = (char)(i * 7 + 13);
    f = fopen(db_path, "wb");
    ok(f);
    ok(fwrite(garbage, 1, sizeof(garbage), f) == sizeof(garbage));
    fclose(f);
    ok_int(store_open(dsn, &s, &err), DPS_ERR_STORE);
    ok(!s);
    ok(strstr(err.msg, db_path));
    ok(strstr(err.msg, "not a database"));
    /* A path that cannot be a file says so too. */
    ok_int(store_open("sqlite:/nonexistent-dir/x/y.db", &s, &err), DPS_ERR_STORE);
    ok(strstr(err.msg, "/nonexistent-dir/x/y.db"));
end:
    store_close(s);
}

static void test_open_errors(void)
{
    struct store *s = NULL;
    struct dps_error err = {0};

    /* A DSN without its scheme may be a bare connection string: never quoted back. */
    ok_int(store_open("host=db password=hunter2", &s, &err), DPS_ERR_INVAL);
    ok(strstr(err.msg, "no scheme"));
    ok(!strstr(err.msg, "hunter2"));
    ok_int(store_open("sqlite:", &s, &err), DPS_ERR_INVAL);
    ok_int(store_open("mysql:x", &s, &err), DPS_ERR_INVAL);
    ok(strstr(err.msg, "'mysql'"));
    /* An unreachable server is named by host and port, never with the password. */
    ok_int(store_open("postgres:host=/nonexistent-dir port=5999 dbname=dps password=hunter2", &s,
                      &err),
           DPS_ERR_STORE);
    ok(strstr(err.msg, "/nonexistent-dir") && strstr(err.msg, "5999"));
    ok(!strstr(err.msg, "hunter2"));
    ok_int(store_open("postgres:postgresql://dps:hunter2@127.0.0.1:1/dps", &s, &err),
           DPS_ERR_STORE);
    ok(strstr(err.msg, "127.0.0.1") && strstr(err.msg, "port=1 "));
    ok(!strstr(err.msg, "hunter2"));
    ok_int(store_open("postgres:host=x password='hunter2", &s, &err), DPS_ERR_INVAL);
    ok(!strstr(err.msg, "hunter2"));
    ok(!s);
end:
    store_close(s);
}

#define OPENERS 4

static void *opener_main(void *arg)
{
    struct dps_error err = {0};
    struct store *s = NULL;
    int *rc = arg;

    *rc = store_open(dsn, &s, &err);
    if (*rc)
        fprintf(stderr, "  concurrent open: %s\n", err.msg);
    store_close(s);
    return NULL;
}

/* Nodes that start together on a fresh store migrate it once, without a race. */
static void test_concurrent_open(void)
{
    struct store *s = NULL;
    struct dps_error err = {0};
    pthread_t th[OPENERS];
    int rcs[OPENERS], started = 0;

    fresh_dsn("copen", dsn, sizeof(dsn), db_path, sizeof(db_path));
    for (; started < OPENERS; started++) {
        rcs[started] = -1;
        ok(pthread_create(&th[started], NULL, opener_main, &rcs[started]) == 0);
    }
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    started = 0;
    for (int i = 0; i < OPENERS; i++)
        ok_int(rcs[i], DPS_OK);
    ok_int(schema_version(-1), build_version());
    ok_int(store_open(dsn, &s, &err), DPS_OK);
    ok_int(put_enrollment(s, "after", "{}", NULL, NULL, &err), DPS_OK);
end:
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    store_close(s);
}

/* A connection the server dropped costs at most the call that finds it out. */
static void test_reconnect(void)
{
    struct store *s = open_fresh("reconnect");
    struct store_object o = {0};
    struct dps_error err = {0};
    char conninfo[800], killed[16];
    int rc;

    ok(s);
    ok_int(put_enrollment(s, "before", "{}", NULL, NULL, &err), DPS_OK);
    snprintf(conninfo, sizeof(conninfo), "%s", dsn + strlen("postgres:"));
    ok(pg_query(conninfo,
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()",
                killed, sizeof(killed)) == 0);
    ok_str(killed, "1");
    rc = store_enrollment_get(s, "before", &o, &err);
    if (rc != DPS_OK) {
        ok_int(rc, DPS_ERR_STORE);
        ok(strstr(err.msg, db_path));
    }
    store_object_release(&o);
    ok_int(store_enrollment_get(s, "before", &o, &err), DPS_OK);
    ok_int(put_enrollment(s, "after", "{}", NULL, NULL, &err), DPS_OK);
    /* Statements are prepared again on the new session. */
    store_object_release(&o);
    ok_int(store_enrollment_get(s, "after", &o, &err), DPS_OK);
end:
    store_object_release(&o);
    store_close(s);
}

/* Generations live in the store: a bump through one connection is seen by another. */
static void test_generations(void)
{
    struct store *s = open_fresh("generations"), *t = NULL;
    struct dps_error err = {0};
    char a[STORE_GENERATION_SIZE], b[STORE_GENERATION_SIZE], c[STORE_GENERATION_SIZE];

    ok(s);
    ok_int(store_open(dsn, &t, &err), DPS_OK);
    ok_int(store_generation_get(t, STORE_GENERATION_GROUPS, a, &err), DPS_OK);
    ok_str(a, "0");
    ok_int(store_generation_bump(s, STORE_GENERATION_GROUPS, &err), DPS_OK);
    ok_int(store_generation_get(t, STORE_GENERATION_GROUPS, b, &err), DPS_OK);
    ok(strcmp(a, b) != 0);
    /* A bump in a batch that is rolled back leaves the generation as it was. */
    ok_int(store_batch_begin(s, &err), DPS_OK);
    ok_int(store_generation_bump(s, STORE_GENERATION_GROUPS, &err), DPS_OK);
    store_batch_rollback(s);
    ok_int(store_generation_get(t, STORE_GENERATION_GROUPS, c, &err), DPS_OK);
    ok_str(c, b);
end:
    store_close(t);
    store_close(s);
}

#define CAS_ROUNDS 40

struct cas_writer {
    int kept;     /* writes whose If-Match held */
    int refused;  /* writes refused as stale */
    int failures; /* anything else */
    char msg[256];
};

/* Read, add one, write back with If-Match: the compare-and-set a service API update does. */
static void *cas_main(void *arg)
{
    struct cas_writer *w = arg;
    struct store *s = NULL;
    struct dps_error err = {0};
    char json[64];

    if (store_open(dsn, &s, &err) != DPS_OK) {
        w->failures++;
        snprintf(w->msg, sizeof(w->msg), "%s", err.msg);
        return NULL;
    }
    for (int i = 0; i < CAS_ROUNDS; i++) {
        struct store_object o = {0};
        long n;
        int rc;

        if (store_enrollment_get(s, "counter", &o, &err) != DPS_OK) {
            w->failures++;
            snprintf(w->msg, sizeof(w->msg), "%s", err.msg);
            continue;
        }
        n = strtol(o.json + strlen("{\"n\":"), NULL, 10);
        snprintf(json, sizeof(json), "{\"n\":%ld}", n + 1);
        rc = put_enrollment(s, "counter", json, o.etag, NULL, &err);
        if (rc == DPS_OK)
            w->kept++;
        else if (rc == DPS_ERR_PRECONDITION)
            w->refused++;
        else {
            w->failures++;
            snprintf(w->msg, sizeof(w->msg), "%s", err.msg);
        }
        store_object_release(&o);
    }
    store_close(s);
    return NULL;
}

/* If-Match is atomic across connections: no increment is lost, none counted twice. */
static void test_compare_and_set(void)
{
    struct store *s = open_fresh("cas");
    struct cas_writer w[2] = {{0}, {0}};
    struct store_object o = {0};
    struct dps_error err = {0};
    pthread_t th[2];
    char want[32];

    ok(s);
    ok_int(put_enrollment(s, "counter", "{\"n\":0}", NULL, NULL, &err), DPS_OK);
    for (int i = 0; i < 2; i++)
        ok(pthread_create(&th[i], NULL, cas_main, &w[i]) == 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++) {
        if (w[i].failures)
            fprintf(stderr, "  writer %d: %d failures, last: %s\n", i, w[i].failures, w[i].msg);
        ok_int(w[i].failures, 0);
        ok_int(w[i].kept + w[i].refused, CAS_ROUNDS);
    }
    ok_int(store_enrollment_get(s, "counter", &o, &err), DPS_OK);
    snprintf(want, sizeof(want), "{\"n\":%d}", w[0].kept + w[1].kept);
    ok_str(o.json, want);
end:
    store_object_release(&o);
    store_close(s);
}

static void test_limits(void)
{
    struct store *s = open_fresh("limits");
    struct dps_error err = {0};
    struct store_object o = {0};
    char *big = NULL, longid[STORE_ID_MAX + 2];

    ok(s);
    memset(longid, 'a', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    ok_int(put_enrollment(s, longid, "{}", NULL, NULL, &err), DPS_ERR_INVAL);
    ok(strstr(err.msg, "longer than"));
    longid[STORE_ID_MAX] = '\0';
    ok_int(put_enrollment(s, longid, "{}", NULL, NULL, &err), DPS_OK);
    ok_int(put_enrollment(s, "", "{}", NULL, NULL, &err), DPS_ERR_INVAL);
    ok_int(put_enrollment(s, "x", NULL, NULL, NULL, &err), DPS_ERR_INVAL);
    big = malloc(STORE_JSON_MAX + 2);
    ok(big);
    memset(big, ' ', STORE_JSON_MAX + 1);
    big[STORE_JSON_MAX + 1] = '\0';
    ok_int(put_enrollment(s, "x", big, NULL, NULL, &err), DPS_ERR_TOO_LARGE);
    ok_int(store_enrollment_get(s, "x", &o, &err), DPS_ERR_NOT_FOUND);
    big[STORE_JSON_MAX] = '\0';
    ok_int(put_enrollment(s, "x", big, NULL, NULL, &err), DPS_OK);
    ok_int(store_enrollment_get(s, "x", &o, &err), DPS_OK);
    ok_int(strlen(o.json), STORE_JSON_MAX);
end:
    free(big);
    store_object_release(&o);
    store_close(s);
}

static void test_attempts(void)
{
    struct store *s = open_fresh("attempts");
    struct store_attempt_list list = {0};
    struct store_object r = {0};
    struct dps_error err = {0};
    int64_t id = 0, last = 0;
    char trace[64];

    ok(s);
    for (int i = 0; i < 10; i++) {
        struct store_attempt_in a = {.registration_id = i % 2 ? "dev-a" : "dev-b",
                                     .status = i % 3 ? "assigned" : "failed",
                                     .success = i % 3 != 0,
                                     .tracking_id = "t",
                                     .json = trace};
        snprintf(trace, sizeof(trace), "{\"n\":%d}", i);
        ok_int(store_attempt_append(s, &a, &id, &err), DPS_OK);
        ok(id > last);
        last = id;
    }
    ok_int(store_attempt_list(s, "DEV-A", false, 0, 3, &list, &err), DPS_OK);
    ok_int(list.n, 3);
    ok_str(list.items[0].json, "{\"n\":9}");
    ok_str(list.items[1].json, "{\"n\":7}");
    ok_str(list.items[2].json, "{\"n\":5}");
    ok(list.items[0].id > list.items[1].id);
    ok(list.items[0].time_ms > 0);
    ok_str(list.items[0].registration_id, "dev-a");
    /* The next page starts below the last id seen. */
    id = list.items[2].id;
    store_attempt_list_release(&list);
    ok_int(store_attempt_list(s, "dev-a", false, id, 10, &list, &err), DPS_OK);
    ok_int(list.n, 2);
    ok_str(list.items[0].json, "{\"n\":3}");
    store_attempt_list_release(&list);
    /* Recent failures across every device: n = 9, 6, 3, 0. */
    ok_int(store_attempt_list(s, NULL, true, 0, 0, &list, &err), DPS_OK);
    ok_int(list.n, 4);
    ok_str(list.items[0].json, "{\"n\":9}");
    ok(!list.items[0].success);
    ok_str(list.items[0].status, "failed");
    ok_str(list.items[3].json, "{\"n\":0}");
    store_attempt_list_release(&list);

    /* A record and its attempt are written together, or neither is. */
    {
        struct store_put rec = {.id = "dev-c", .json = "{}", .status = "assigned"};
        struct store_attempt_in a = {.registration_id = "dev-c",
                                     .status = "assigned",
                                     .success = true,
                                     .json = "{\"ok\":1}"};
        ok_int(store_registration_put_with_attempt(s, &rec, &a, &r, &err), DPS_OK);
        ok_str(r.status, "assigned");
        rec.if_match = "\"stale\"";
        ok_int(store_registration_put_with_attempt(s, &rec, &a, NULL, &err), DPS_ERR_PRECONDITION);
        a.json = NULL;
        rec.if_match = NULL;
        ok_int(store_registration_put_with_attempt(s, &rec, &a, NULL, &err), DPS_ERR_INVAL);
        ok_int(store_attempt_list(s, "dev-c", false, 0, 10, &list, &err), DPS_OK);
        ok_int(list.n, 1);
    }
end:
    store_object_release(&r);
    store_attempt_list_release(&list);
    store_close(s);
}

/*
 * Reads between store_read_begin() and store_read_end(): on SQLite one
 * snapshot (another connection's commit shows only after the end) in which
 * a write fails; PostgreSQL reads each statement on its own.
 */
/* Bytes of the file at path, or -1. */
static long long file_bytes(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

#define CKPT_WRITES 8000
#define CKPT_BATCH 20

/*
 * With checkpoints moved to their thread, the log is still copied back into
 * the database file while the writes go on, the log still starts over once
 * it is far too long (the commit checkpoints it then), and no write is lost
 * on the way. Each write here logs about three pages of 4 KB; a commit holds
 * CKPT_BATCH of them.
 */
static void test_background_checkpoints(void)
{
    struct store *s = open_fresh("ckpt");
    struct dps_error err = {0};
    char wal[sizeof(db_path) + 8], id[32], json[12300];
    int64_t n = 0;
    long long wal_max = 0, db_mid = -1;
    int writes = on_sqlite ? CKPT_WRITES : 100; /* PostgreSQL: only that nothing changes */

    ok(s);
    snprintf(wal, sizeof(wal), "%s-wal", db_path);
    ok_int(store_checkpoint_in_background(s, &err), DPS_OK);
    ok_int(store_checkpoint_in_background(s, &err), DPS_OK); /* a second call changes nothing */
    ok_int(store_background_checkpoints(s), 0);
    memset(json, 0, sizeof(json));
    snprintf(json, sizeof(json), "{\"pad\":\"%012200d\"}", 0);
    for (int i = 0; i < writes; i += CKPT_BATCH) {
        ok_int(store_batch_begin(s, &err), DPS_OK);
        for (int j = i; j < i + CKPT_BATCH; j++) {
            snprintf(id, sizeof(id), "ckpt-%05d", j);
            ok_int(put_enrollment(s, id, json, NULL, NULL, &err), DPS_OK);
        }
        ok_int(store_batch_commit(s, &err), DPS_OK);
        if (file_bytes(wal) > wal_max)
            wal_max = file_bytes(wal);
        if (db_mid < 0 && wal_max > 4096LL * 8000) /* half way to the commit's own checkpoint */
            db_mid = file_bytes(db_path);
    }
    for (int i = 0; on_sqlite && i < 500 && store_background_checkpoints(s) == 0; i++)
        usleep(10000);
    if (on_sqlite) {
        fprintf(stderr,
                "  log at most %lld bytes, database %lld bytes half way and %lld at the end, "
                "%lld checkpoints\n",
                wal_max, db_mid, file_bytes(db_path), (long long)store_background_checkpoints(s));
        ok(store_background_checkpoints(s) > 0);
        /*
         * Pages reached the database file before the commit would checkpoint
         * itself: without the thread it holds little but the schema by then.
         */
        ok(db_mid > 1024 * 1024);
        /* about 24,000 pages were logged, but the log started over at about 16,000 */
        ok(wal_max > 0 && wal_max < 4096LL * 18000);
    } else {
        ok_int(store_background_checkpoints(s), 0); /* nothing to move on PostgreSQL */
    }
    ok_int(store_object_count(s, STORE_ENROLLMENT, &(struct store_query){0}, &n, &err), DPS_OK);
    ok_int(n, writes);
end:
    store_close(s);
}

static void test_read(void)
{
    struct store *s = open_fresh("read"), *t = NULL;
    struct store_object o = {0};
    struct dps_error err = {0};
    bool snapshot = strncmp(dsn, "sqlite:", 7) == 0;

    ok(s);
    store_read_end(s); /* without a read: nothing to end */
    ok_int(put_enrollment(s, "r1", "{}", NULL, NULL, &err), DPS_OK);
    ok_int(store_open(dsn, &t, &err), DPS_OK);
    ok_int(store_read_begin(s, &err), DPS_OK);
    ok_int(store_enrollment_get(s, "r1", &o, &err), DPS_OK);
    store_object_release(&o);
    ok_int(put_enrollment(t, "r2", "{}", NULL, NULL, &err), DPS_OK);
    ok_int(store_enrollment_get(s, "r2", &o, &err), snapshot ? DPS_ERR_NOT_FOUND : DPS_OK);
    store_object_release(&o);
    if (snapshot)
        ok_int(put_enrollment(s, "r3", "{}", NULL, NULL, &err), DPS_ERR_STORE);
    store_read_end(s);
    ok_int(store_enrollment_get(s, "r2", &o, &err), DPS_OK);
    store_object_release(&o);
    /* after the read, writes and batches work again */
    ok_int(put_enrollment(s, "r4", "{}", NULL, NULL, &err), DPS_OK);
    ok_int(store_batch_begin(s, &err), DPS_OK);
    ok_int(put_enrollment(s, "r5", "{}", NULL, NULL, &err), DPS_OK);
    ok_int(store_batch_commit(s, &err), DPS_OK);
    ok_int(store_enrollment_get(t, "r5", &o, &err), DPS_OK);
end:
    store_object_release(&o);
    store_close(t);
    store_close(s);
}

static void test_batch(void)
{
    struct store *s = open_fresh("batch"), *t = NULL;
    struct store_object o = {0};
    struct dps_error err = {0};
    int64_t n = 0;

    ok(s);
    ok_int(put_enrollment(s, "old", "{}", NULL, NULL, &err), DPS_OK);
    ok_int(store_batch_begin(s, &err), DPS_OK);
    ok_int(put_enrollment(s, "b1", "{}", NULL, NULL, &err), DPS_OK);
    /* A failing write inside a batch undoes only itself. */
    ok_int(put_enrollment(s, "old", "{\"x\":1}", "\"stale\"", NULL, &err), DPS_ERR_PRECONDITION);
    ok_int(put_enrollment(s, "b2", "{}", NULL, NULL, &err), DPS_OK);
    ok_int(store_enrollment_delete(s, "missing", NULL, &err), DPS_ERR_NOT_FOUND);
    ok_int(store_enrollment_get(s, "b1", &o, &err), DPS_OK);
    store_object_release(&o);
    ok_int(store_batch_commit(s, &err), DPS_OK);
    ok_int(store_enrollment_count(s, NULL, &n, &err), DPS_OK);
    ok_int(n, 3);

    ok_int(store_batch_begin(s, &err), DPS_OK);
    ok_int(put_enrollment(s, "b3", "{}", NULL, NULL, &err), DPS_OK);
    ok_int(store_enrollment_delete(s, "old", NULL, &err), DPS_OK);
    store_batch_rollback(s);
    ok_int(store_enrollment_get(s, "b3", &o, &err), DPS_ERR_NOT_FOUND);
    ok_int(store_enrollment_get(s, "old", &o, &err), DPS_OK);
    store_object_release(&o);

    /* Another connection sees a batch only once it is committed. */
    ok_int(store_open(dsn, &t, &err), DPS_OK);
    ok_int(store_batch_begin(s, &err), DPS_OK);
    ok_int(put_enrollment(s, "b4", "{}", NULL, NULL, &err), DPS_OK);
    ok_int(store_enrollment_get(t, "b4", &o, &err), DPS_ERR_NOT_FOUND);
    ok_int(store_batch_commit(s, &err), DPS_OK);
    ok_int(store_enrollment_get(t, "b4", &o, &err), DPS_OK);
    /* Closing with a batch open rolls it back. */
    ok_int(store_batch_begin(s, &err), DPS_OK);
    ok_int(put_enrollment(s, "b5", "{}", NULL, NULL, &err), DPS_OK);
    store_close(s);
    s = NULL;
    store_object_release(&o);
    ok_int(store_enrollment_get(t, "b5", &o, &err), DPS_ERR_NOT_FOUND);
end:
    store_object_release(&o);
    store_close(t);
    store_close(s);
}

static void test_policies(void)
{
    struct store *s = open_fresh("policies");
    struct store_policy p = {0}, q = {0};
    struct store_policy_list list = {0};
    struct dps_error err = {0};
    struct store_policy in = {.name = "provisioningserviceowner",
                              .primary_key = "cHJpbWFyeWtleXByaW1hcnlrZXk=",
                              .secondary_key = "c2Vjb25kYXJ5",
                              .rights = 0x1f};

    ok(s);
    ok_int(store_policy_get(s, "none", &p, &err), DPS_ERR_NOT_FOUND);
    ok(strstr(err.msg, "'none'"));
    ok_int(store_policy_put(s, &in, &p, &err), DPS_OK);
    ok_str(p.name, "provisioningserviceowner");
    ok(p.etag && p.created_ms > 0);
    in.name = "reader";
    in.secondary_key = NULL;
    in.rights = STORE_RIGHT_ENROLLMENT_READ;
    ok_int(store_policy_put(s, &in, NULL, &err), DPS_OK);
    usleep(2000);
    in.name = "ProvisioningServiceOwner";
    in.primary_key = "bmV3a2V5";
    in.rights = 0x3f;
    ok_int(store_policy_put(s, &in, &q, &err), DPS_OK);
    ok_str(q.name, "provisioningserviceowner");
    ok(strcmp(q.etag, p.etag) != 0);
    ok_int(q.created_ms, p.created_ms);
    store_policy_release(&q);
    ok_int(store_policy_get(s, "provisioningserviceowner", &q, &err), DPS_OK);
    ok_str(q.primary_key, "bmV3a2V5");
    ok(!q.secondary_key);
    ok_int(q.rights, 0x3f);
    ok_int(store_policy_list(s, &list, &err), DPS_OK);
    ok_int(list.n, 2);
    ok_str(list.items[0].name, "provisioningserviceowner");
    ok_str(list.items[1].name, "reader");
    ok_int(list.items[1].rights, STORE_RIGHT_ENROLLMENT_READ);
    ok_int(store_policy_delete(s, "READER", &err), DPS_OK);
    ok_int(store_policy_delete(s, "reader", &err), DPS_ERR_NOT_FOUND);
    in.primary_key = NULL;
    ok_int(store_policy_put(s, &in, NULL, &err), DPS_ERR_INVAL);
    ok(strstr(err.msg, "'primaryKey'"));

    /* create: a new name is created, an existing one (in any case) is left as it is */
    in.name = "Creator";
    in.primary_key = "Zmlyc3Q=";
    store_policy_release(&p);
    ok_int(store_policy_create(s, &in, &p, &err), DPS_OK);
    ok_str(p.name, "Creator");
    ok_str(p.primary_key, "Zmlyc3Q=");
    in.name = "creator";
    in.primary_key = "c2Vjb25k";
    ok_int(store_policy_create(s, &in, NULL, &err), DPS_ERR_CONFLICT);
    ok(strstr(err.msg, "'creator' exists"));
    store_policy_release(&q);
    ok_int(store_policy_get(s, "creator", &q, &err), DPS_OK);
    ok_str(q.primary_key, "Zmlyc3Q=");
    ok_str(q.etag, p.etag);
end:
    store_policy_release(&p);
    store_policy_release(&q);
    store_policy_list_release(&list);
    store_close(s);
}

static void test_settings(void)
{
    struct store *s = open_fresh("settings");
    struct dps_error err = {0};
    char *v = NULL;

    ok(s);
    ok_int(store_setting_get(s, "idScope", &v, &err), DPS_ERR_NOT_FOUND);
    ok(!v);
    ok_int(store_setting_put(s, "idScope", "0ne1", &err), DPS_OK);
    ok_int(store_setting_put(s, "idScope", "0ne2", &err), DPS_OK);
    ok_int(store_setting_get(s, "idScope", &v, &err), DPS_OK);
    ok_str(v, "0ne2");
    ok_int(store_setting_put(s, "idScope", NULL, &err), DPS_ERR_INVAL);
    free(v);
    v = NULL;

    /* create: the first value stays */
    ok_int(store_setting_create(s, "idScope", "0ne3", &err), DPS_ERR_CONFLICT);
    ok(strstr(err.msg, "'idScope'"));
    ok_int(store_setting_create(s, "owner", "first", &err), DPS_OK);
    ok_int(store_setting_create(s, "owner", "second", &err), DPS_ERR_CONFLICT);
    ok_int(store_setting_get(s, "idScope", &v, &err), DPS_OK);
    ok_str(v, "0ne2");
    free(v);
    v = NULL;
    ok_int(store_setting_get(s, "owner", &v, &err), DPS_OK);
    ok_str(v, "first");
    ok_int(store_setting_create(s, "owner", NULL, &err), DPS_ERR_INVAL);
end:
    free(v);
    store_close(s);
}

#define CREATORS 4

struct creator {
    pthread_barrier_t *go;
    char value[16];
    int setting_rc, policy_rc;
};

/* One node's start on a fresh shared store: create the ID scope and the owner policy. */
static void *creator_main(void *arg)
{
    struct creator *c = arg;
    struct store_policy in = {.name = "owner", .primary_key = c->value, .rights = 1};
    struct dps_error err = {0};
    struct store *s = NULL;

    c->setting_rc = c->policy_rc = -1;
    if (store_open(dsn, &s, &err) != DPS_OK) {
        fprintf(stderr, "  open: %s\n", err.msg);
        pthread_barrier_wait(c->go);
        return NULL;
    }
    pthread_barrier_wait(c->go);
    c->setting_rc = store_setting_create(s, "idScope", c->value, &err);
    c->policy_rc = store_policy_create(s, &in, NULL, &err);
    store_close(s);
    return NULL;
}

/* Of the nodes that create one value at the same moment, exactly one wins; all read its value. */
static void test_concurrent_create(void)
{
    struct store *s = NULL;
    struct store_policy pol = {0};
    struct dps_error err = {0};
    struct creator cs[CREATORS];
    pthread_barrier_t go;
    pthread_t th[CREATORS];
    int started = 0, settings_won = -1, policies_won = -1;
    char *scope = NULL;

    s = open_fresh("ccreate");
    ok(s);
    ok(pthread_barrier_init(&go, NULL, CREATORS) == 0);
    for (; started < CREATORS; started++) {
        cs[started].go = &go;
        snprintf(cs[started].value, sizeof(cs[started].value), "dmFs%d", started);
        ok(pthread_create(&th[started], NULL, creator_main, &cs[started]) == 0);
    }
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    started = 0;
    for (int i = 0; i < CREATORS; i++) {
        if (cs[i].setting_rc == DPS_OK) {
            ok_int(settings_won, -1);
            settings_won = i;
        } else {
            ok_int(cs[i].setting_rc, DPS_ERR_CONFLICT);
        }
        if (cs[i].policy_rc == DPS_OK) {
            ok_int(policies_won, -1);
            policies_won = i;
        } else {
            ok_int(cs[i].policy_rc, DPS_ERR_CONFLICT);
        }
    }
    ok(settings_won >= 0 && policies_won >= 0);
    ok_int(store_setting_get(s, "idScope", &scope, &err), DPS_OK);
    ok_str(scope, cs[settings_won].value);
    ok_int(store_policy_get(s, "owner", &pol, &err), DPS_OK);
    ok_str(pol.primary_key, cs[policies_won].value);
end:
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&go);
    store_policy_release(&pol);
    free(scope);
    store_close(s);
}

static void test_ca_certs(void)
{
    struct store *s = open_fresh("certs");
    struct store_object a = {0}, g = {0};
    struct store_page page = {0};
    struct dps_error err = {0};

    ok(s);
    {
        struct store_put in = {.id = "root-ca", .json = "{\"isVerified\":false}"};
        ok_int(store_ca_cert_put(s, &in, &a, &err), DPS_OK);
        in.id = "other-ca";
        ok_int(store_ca_cert_put(s, &in, NULL, &err), DPS_OK);
        in.id = "root-ca";
        in.json = "{\"isVerified\":true}";
        in.if_match = a.etag;
        ok_int(store_ca_cert_put(s, &in, NULL, &err), DPS_OK);
        ok_int(store_ca_cert_put(s, &in, NULL, &err), DPS_ERR_PRECONDITION);
        ok(strstr(err.msg, "certificate 'root-ca'"));
    }
    ok_int(store_ca_cert_get(s, "root-ca", &g, &err), DPS_OK);
    ok_str(g.json, "{\"isVerified\":true}");
    ok_int(store_ca_cert_list(s, NULL, &page, &err), DPS_OK);
    ok_int(page.n, 2);
    ok_str(page.items[0].id, "other-ca");
    ok_int(store_ca_cert_delete(s, "root-ca", g.etag, &err), DPS_OK);
    ok_int(store_ca_cert_delete(s, "root-ca", NULL, &err), DPS_ERR_NOT_FOUND);
end:
    store_object_release(&a);
    store_object_release(&g);
    store_page_release(&page);
    store_close(s);
}

static void test_audit(void)
{
    struct store *s = open_fresh("audit");
    struct store_audit_list list = {0};
    struct dps_error err = {0};
    int64_t id = 0;
    char obj[16];

    ok(s);
    for (int i = 0; i < 5; i++) {
        struct store_audit_in a = {.actor = "provisioningserviceowner",
                                   .action = "put",
                                   .kind = "enrollmentGroup",
                                   .object_id = obj,
                                   .tracking_id = i == 4 ? NULL : "trk",
                                   .outcome = "ok"};
        snprintf(obj, sizeof(obj), "g%d", i);
        ok_int(store_audit_append(s, &a, &id, &err), DPS_OK);
    }
    ok_int(store_audit_list(s, 0, 3, &list, &err), DPS_OK);
    ok_int(list.n, 3);
    ok_str(list.items[0].object_id, "g4");
    ok(!list.items[0].tracking_id);
    ok_str(list.items[1].tracking_id, "trk");
    ok_str(list.items[2].object_id, "g2");
    ok_str(list.items[2].actor, "provisioningserviceowner");
    ok(list.items[0].time_ms > 0);
    id = list.items[2].id;
    store_audit_list_release(&list);
    ok_int(store_audit_list(s, id, 10, &list, &err), DPS_OK);
    ok_int(list.n, 2);
    ok_str(list.items[1].object_id, "g0");
    {
        struct store_audit_in a = {.actor = "x", .action = "put", .kind = "k"};
        ok_int(store_audit_append(s, &a, NULL, &err), DPS_ERR_INVAL);
        ok(strstr(err.msg, "'outcome'"));
    }
end:
    store_audit_list_release(&list);
    store_close(s);
}

static char pg_dir[600];

static void stop_pg(void)
{
    char cmd[1400];
    const char *src = getenv("DPS_SOURCE_DIR");

    if (!pg_admin[0])
        return;
    snprintf(cmd, sizeof(cmd), "bash '%s/tests/pg.sh' stop '%s'", src ? src : ".", pg_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "  cannot stop the postgres test server in '%s'\n", pg_dir);
    pg_admin[0] = '\0';
}

/*
 * Starts the throwaway server for the postgres cases; it is stopped at exit,
 * and by tests/pg.sh's watcher should this process die first.
 */
static void start_pg(void)
{
    const char *src = getenv("DPS_SOURCE_DIR");
    char cmd[1400], line[600] = "";
    FILE *p = NULL;
    size_t n;

    snprintf(pg_dir, sizeof(pg_dir), "%s/pg-store", tmp_dir);
    snprintf(cmd, sizeof(cmd), "bash '%s/tests/pg.sh' start '%s' %ld", src ? src : ".", pg_dir,
             (long)getpid());
    p = popen(cmd, "r");
    ok(p);
    if (!fgets(line, sizeof(line), p))
        line[0] = '\0';
    if (pclose(p) != 0 || !line[0]) {
        fprintf(stderr, "  the postgres cases need a PostgreSQL server: tests/pg.sh failed "
                        "(see above; 'make deps' installs the server binaries)\n");
        line[0] = '\0';
    }
    n = strcspn(line, "\n");
    line[n] = '\0';
    ok(line[0]);
    snprintf(pg_admin, sizeof(pg_admin), "%s", line);
    atexit(stop_pg);
end:
    return;
}

int main(void)
{
    const char *tmp = getenv("DPS_TEST_TMP");

    snprintf(tmp_dir, sizeof(tmp_dir), "%s", tmp && *tmp ? tmp : "/tmp");
    if (mkdir(tmp_dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "cannot create '%s'\n", tmp_dir);
        return 1;
    }
    for (size_t i = 0; i < ARRAY_SIZE(backends); i++) {
        printf("# backend %s\n", backends[i].name);
        fresh_dsn = backends[i].fresh;
        on_sqlite = backends[i].is_file;
        schema_version = backends[i].schema_version;
        build_version = backends[i].build_version;
        if (backends[i].fresh == pg_fresh_dsn) {
            subtest("postgres test server", start_pg);
            if (!pg_admin[0])
                continue;
        }
        subtest("crud", test_crud);
        subtest("etag changes on every write", test_etag_every_write);
        subtest("if-match", test_if_match);
        subtest("delete", test_delete);
        subtest("paging 2500 rows", test_paging);
        subtest("registrations by group", test_registrations);
        subtest("attestation filter", test_attestation_filter);
        subtest("concurrent writers", test_concurrent_writers);
        subtest("compare-and-set from two connections", test_compare_and_set);
        subtest("concurrent open of a fresh store", test_concurrent_open);
        if (backends[i].is_shared)
            subtest("reconnect after the server dropped the connection", test_reconnect);
        subtest("generations", test_generations);
        subtest("reopen keeps data", test_reopen);
        subtest("migrations", test_migrations);
        if (backends[i].is_file)
            subtest("corrupt database", test_corrupt);
        subtest("open errors", test_open_errors);
        subtest("limits", test_limits);
        subtest("attempts", test_attempts);
        subtest("batch", test_batch);
        subtest("updates that keep or change the indexed columns", test_update_keys);
        subtest("a batch's change count", test_batch_changes);
        subtest("reads from one snapshot", test_read);
        subtest("checkpoints beside the commits", test_background_checkpoints);
        subtest("policies", test_policies);
        subtest("settings", test_settings);
        subtest("concurrent creates of one setting and one policy", test_concurrent_create);
        subtest("ca certificates", test_ca_certs);
        subtest("audit", test_audit);
    }
    return t_done();
}
