/* SPDX-License-Identifier: MIT */
/*
 * The store generations and the caches built on them, with two connections
 * to one SQLite file standing for two nodes: writes on one, reads through
 * the caches on the other. A write that bumps the generation is seen at
 * the next request; a cache reads the store again only then.
 */
#include "core/common.h"

#include <unistd.h>

#include "../t.h"
#include "core/sas.h"
#include "server/auth.h"
#include "server/provision.h"
#include "store/store.h"
#include "tmpdir.h"

#define SCOPE "0ne0000CCCC"
#define HOST "dps.example.net"
#define KEY1 "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
#define KEY2 "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY="

static struct store *writer, *reader;
static struct provision *prov;
static char dir[512];

/* Writes the symmetric-key group "g" with key, and bumps the generation when asked. */
static int put_group(const char *key, bool bump)
{
    char json[512];
    struct store_put put = {.id = "g", .json = json, .attestation = "symmetricKey"};
    int rc;

    snprintf(json, sizeof(json),
             "{\"enrollmentGroupId\":\"g\",\"attestation\":{\"type\":\"symmetricKey\","
             "\"symmetricKey\":{\"primaryKey\":\"%s\",\"secondaryKey\":\"%s\"}}}",
             key, key);
    if ((rc = store_batch_begin(writer, NULL)) != DPS_OK)
        return rc;
    rc = store_group_put(writer, &put, NULL, NULL);
    if (rc == DPS_OK && bump)
        rc = store_generation_bump(writer, STORE_GENERATION_GROUPS, NULL);
    if (rc == DPS_OK)
        return store_batch_commit(writer, NULL);
    store_batch_rollback(writer);
    return rc;
}

/* Registers id with a token signed by the key derived from group_key; returns the status. */
static int registration_status(struct provision_cache *pc, const char *id, const char *group_key)
{
    struct provision_result res = {0};
    char sr[256], *dk = NULL, *tok = NULL;
    struct provision_request req = {
        .id_scope = SCOPE,
        .registration_id = id,
        .body = "",
        .tracking_id = "00000000-0000-4000-8000-000000000002",
        .group_cache = pc,
        .store = reader,
    };
    int status = -1;

    snprintf(sr, sizeof(sr), SCOPE "/registrations/%s", id);
    if (sas_derive_device_key(group_key, id, strlen(id), &dk, NULL) != SAS_OK ||
        sas_token_build(sr, dk, "registration", (int64_t)time(NULL) + 600, &tok, NULL) != SAS_OK)
        goto out;
    req.sas_token = tok;
    req.sas_len = strlen(tok);
    if (provision_register(prov, &req, &res) == DPS_OK)
        status = res.status;
out:
    provision_result_release(&res);
    free(dk);
    free(tok);
    return status;
}

static void test_generation(void)
{
    char a[STORE_GENERATION_SIZE], b[STORE_GENERATION_SIZE], c[STORE_GENERATION_SIZE];

    ok(store_generation_get(reader, "generation.test", a, NULL) == DPS_OK);
    ok_str(a, "0");
    ok(store_generation_bump(writer, "generation.test", NULL) == DPS_OK);
    ok(store_generation_get(reader, "generation.test", b, NULL) == DPS_OK);
    ok(strncmp(b, "1.", 2) == 0);
    /* a bump in a batch that is rolled back leaves nothing */
    ok(store_batch_begin(writer, NULL) == DPS_OK);
    ok(store_generation_bump(writer, "generation.test", NULL) == DPS_OK);
    store_batch_rollback(writer);
    ok(store_generation_get(reader, "generation.test", c, NULL) == DPS_OK);
    ok_str(c, b);
    ok(store_generation_bump(writer, "generation.test", NULL) == DPS_OK);
    ok(store_generation_get(reader, "generation.test", c, NULL) == DPS_OK);
    ok(strncmp(c, "2.", 2) == 0);
    ok(store_generation_get(reader, "", c, NULL) == DPS_ERR_INVAL);
end:;
}

static void test_group_cache(void)
{
    struct provision_cache *pc = provision_cache_new();
    struct provision_cache_stats stats;

    ok(put_group(KEY1, true) == DPS_OK);
    ok_int(registration_status(pc, "dev-1", KEY1), 200);
    ok_int(registration_status(pc, "dev-2", KEY1), 200);
    provision_cache_stats(pc, &stats);
    ok_int(stats.loads, 1);
    ok_int(stats.hits, 1);

    /* A write without a bump is not seen: the cache does not read the groups again. */
    ok(put_group(KEY2, false) == DPS_OK);
    ok_int(registration_status(pc, "dev-3", KEY1), 200);
    provision_cache_stats(pc, &stats);
    ok_int(stats.loads, 1);
    /* Without a cache every request reads the store. */
    ok_int(registration_status(NULL, "dev-3", KEY1), 401);

    /* The other node's write with its bump: the new key counts at the next request. */
    ok(put_group(KEY2, true) == DPS_OK);
    ok_int(registration_status(pc, "dev-4", KEY1), 401);
    ok_int(registration_status(pc, "dev-4", KEY2), 200);
    provision_cache_stats(pc, &stats);
    ok_int(stats.loads, 2);
end:
    provision_cache_free(pc);
}

static int check(struct auth_cache *ac, const char *key)
{
    struct auth_identity who;
    struct dps_error err = {0};
    char *tok = NULL;
    int rc;

    if (sas_token_build(HOST, key, "ops", (int64_t)time(NULL) + 600, &tok, NULL) != SAS_OK)
        return -1;
    rc = auth_check(ac, reader, tok, HOST, "/enrollments/x", STORE_RIGHT_ENROLLMENT_READ,
                    (int64_t)time(NULL), &who, &err);
    free(tok);
    return rc;
}

static int put_policy(const char *key)
{
    struct store_policy in = {
        .name = "ops", .primary_key = (char *)key, .rights = STORE_RIGHT_ENROLLMENT_READ};
    int rc;

    if ((rc = store_batch_begin(writer, NULL)) != DPS_OK)
        return rc;
    rc = store_policy_put(writer, &in, NULL, NULL);
    if (rc == DPS_OK)
        rc = store_generation_bump(writer, STORE_GENERATION_POLICIES, NULL);
    if (rc == DPS_OK)
        return store_batch_commit(writer, NULL);
    store_batch_rollback(writer);
    return rc;
}

static void test_policy_cache(void)
{
    struct auth_cache *ac = auth_cache_new();

    ok(put_policy(KEY1) == DPS_OK);
    ok_int(check(ac, KEY1), DPS_OK);
    ok_int(check(ac, KEY1), DPS_OK);
    ok_int(auth_cache_loads(ac), 1);
    ok_int(check(ac, KEY2), DPS_ERR_AUTH);
    /* rotated on the other node: the old key is refused at once */
    ok(put_policy(KEY2) == DPS_OK);
    ok_int(check(ac, KEY1), DPS_ERR_AUTH);
    ok_int(check(ac, KEY2), DPS_OK);
    ok_int(auth_cache_loads(ac), 2);
    /* revoked on the other node */
    ok(store_batch_begin(writer, NULL) == DPS_OK);
    ok(store_policy_delete(writer, "ops", NULL) == DPS_OK);
    ok(store_generation_bump(writer, STORE_GENERATION_POLICIES, NULL) == DPS_OK);
    ok(store_batch_commit(writer, NULL) == DPS_OK);
    ok_int(check(ac, KEY2), DPS_ERR_AUTH);
    ok_int(check(NULL, KEY2), DPS_ERR_AUTH);
    ok_int(auth_cache_loads(ac), 3);
end:
    auth_cache_free(ac);
}

int main(void)
{
    char dsn[600];
    char *hubs[] = {"hub-1.example.net"};

    test_tmpdir(dir, sizeof(dir), "cache");
    snprintf(dsn, sizeof(dsn), "sqlite:%s/t.db", dir);
    if (store_open(dsn, &writer, NULL) != DPS_OK || store_open(dsn, &reader, NULL) != DPS_OK ||
        provision_new(SCOPE, hubs, 1, NULL, 0, &prov, NULL) != DPS_OK)
        return 1;
    subtest("generation", test_generation);
    subtest("group cache", test_group_cache);
    subtest("policy cache", test_policy_cache);
    provision_free(prov);
    store_close(reader);
    store_close(writer);
    test_tmpdir_remove_sqlite(dir, "t.db");
    return t_done();
}
