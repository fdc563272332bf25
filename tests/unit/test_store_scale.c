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

#include "../../bench/load.h"
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
    ok_int(bench_load_enrollments(s, ROWS, BATCH, "dev-", 7, true, &err), DPS_OK);
    bench_enrollment_json(json, sizeof(json), "dev-0099999", ROWS - 1, true);
    ok(strlen(json) > 550 && strlen(json) < 700);
    ok_int(store_enrollment_count(s, NULL, &n, &err), DPS_OK);
    ok_int(n, ROWS);

    before = bench_vm_hwm_kb();
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
    after = bench_vm_hwm_kb();
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
    char dir[512], path[600];

    snprintf(dir, sizeof(dir), "%s", tmp && *tmp ? tmp : "/tmp");
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "cannot create '%s'\n", dir);
        return 1;
    }
    snprintf(path, sizeof(path), "%s/store-scale.db", dir);
    bench_remove_sqlite(path);
    snprintf(dsn, sizeof(dsn), "sqlite:%s", path);
    subtest("load 100,000 enrollments and page through them in bounded memory", test_load_and_page);
    bench_remove_sqlite(path);
    return t_done();
}
