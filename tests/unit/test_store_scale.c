/* SPDX-License-Identifier: MIT */
/*
 * The store at scale: 100,000 individual enrollments with realistic JSON are
 * loaded in batches and paged through 100 at a time, and the peak resident
 * memory must stay bounded while paging (bench/bench_store.c does the same
 * with a million). Kept to 100,000 so the suite stays fast.
 */
#include "core/common.h"
#include "store/store.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../t.h"

#define ROWS 100000
#define BATCH 5000
#define PAGE 100
/* Paging may not grow the peak resident set by more than this. */
#define HWM_GROWTH_MAX_KB (64 * 1024)

static char dsn[700];

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#endif

#ifdef UNDER_ASAN
/*
 * AddressSanitizer holds freed memory in a quarantine (256 MB by default),
 * which would count as growth here; a small one keeps the bound meaningful.
 */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "quarantine_size_mb=4";
}
#endif

/* Peak resident set size in kB (VmHWM), or -1. */
static long vm_hwm_kb(void)
{
    char line[256];
    long kb = -1;
    FILE *f = fopen("/proc/self/status", "r");

    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "VmHWM:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    fclose(f);
    return kb;
}

/* An individual enrollment body of about 600 bytes, as the service API stores it. */
static void enrollment_json(char *buf, size_t size, int i)
{
    snprintf(buf, size,
             "{\"registrationId\":\"dev-%07d\",\"deviceId\":\"dev-%07d\","
             "\"attestation\":{\"type\":\"symmetricKey\",\"symmetricKey\":{"
             "\"primaryKey\":\"G3vnZ2s1c2VjcmV0cHJpbWFyeWtleWZvcmRldmljZSVkbnVtYmVyJTA3ZEFBQUFBQUFB"
             "QUFBQUFBQUFBQUFBQUFBQUFBQUE9PQ==\",\"secondaryKey\":\"4lNxc2Vjb25kYXJ5a2V5Zm9yZGV2"
             "aWNlbnVtYmVyQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQg==\"}},"
             "\"capabilities\":{\"iotEdge\":false},"
             "\"initialTwin\":{\"tags\":{\"site\":\"plant-%d\",\"line\":\"line-%d\"},"
             "\"properties\":{\"desired\":{\"interval\":30,\"mode\":\"normal\"}}},"
             "\"provisioningStatus\":\"enabled\","
             "\"reprovisionPolicy\":{\"updateHubAssignment\":true,\"migrateDeviceData\":true},"
             "\"allocationPolicy\":\"hashed\","
             "\"iotHubs\":[\"hub-a.azure-devices.net\",\"hub-b.azure-devices.net\"]}",
             i, i, i % 17, i % 5);
}

static void test_load_and_page(void)
{
    struct store *s = NULL;
    struct store_page page = {0};
    struct dps_error err = {0};
    char json[1024], id[32], *cursor = NULL;
    long before, after;
    int64_t n = 0;
    int seen = 0;

    ok_int(store_open(dsn, &s, &err), DPS_OK);
    for (int i = 0; i < ROWS; i++) {
        struct store_put in = {
            .id = id, .json = json, .device_id = id, .attestation = "symmetricKey"};
        if (i % BATCH == 0)
            ok_int(store_batch_begin(s, &err), DPS_OK);
        snprintf(id, sizeof(id), "dev-%07d", i);
        enrollment_json(json, sizeof(json), i);
        ok_int(store_enrollment_put(s, &in, NULL, &err), DPS_OK);
        if (i % BATCH == BATCH - 1)
            ok_int(store_batch_commit(s, &err), DPS_OK);
    }
    ok(strlen(json) > 550 && strlen(json) < 700);
    ok_int(store_enrollment_count(s, NULL, &n, &err), DPS_OK);
    ok_int(n, ROWS);

    before = vm_hwm_kb();
    ok(before > 0);
    for (;;) {
        struct store_query q = {.after = cursor, .limit = PAGE};
        ok_int(store_enrollment_list(s, &q, &page, &err), DPS_OK);
        for (size_t i = 0; i < page.n; i++) {
            snprintf(id, sizeof(id), "dev-%07d", seen++);
            ok_str(page.items[i].id, id);
        }
        free(cursor);
        cursor = page.next_cursor;
        page.next_cursor = NULL;
        store_page_release(&page);
        if (!cursor)
            break;
    }
    after = vm_hwm_kb();
    printf("# peak RSS %ld kB after loading %d rows, %ld kB after paging (+%ld kB)\n", before, ROWS,
           after, after - before);
    ok_int(seen, ROWS);
    ok(after - before < HWM_GROWTH_MAX_KB);
end:
    free(cursor);
    store_page_release(&page);
    store_close(s); /* rolls back a batch a failed check left open */
}

int main(void)
{
    const char *tmp = getenv("DPS_TEST_TMP");
    char dir[512], path[600], f[640];

    snprintf(dir, sizeof(dir), "%s", tmp && *tmp ? tmp : "/tmp");
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "cannot create '%s'\n", dir);
        return 1;
    }
    snprintf(path, sizeof(path), "%s/store-scale.db", dir);
    unlink(path);
    snprintf(f, sizeof(f), "%s-wal", path);
    unlink(f);
    snprintf(f, sizeof(f), "%s-shm", path);
    unlink(f);
    snprintf(dsn, sizeof(dsn), "sqlite:%s", path);
    subtest("load 100,000 enrollments and page through them in bounded memory", test_load_and_page);
    unlink(path);
    return t_done();
}
