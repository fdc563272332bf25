/* SPDX-License-Identifier: MIT */
/*
 * Store benchmark: loads N individual enrollments (default 1,000,000) with
 * realistic ~600-byte JSON in batched transactions, pages through all of
 * them 100 at a time, and times single durable writes (one transaction and
 * one sync each). Prints a Markdown table row.
 *
 *     bench_store [ROWS [DB_PATH]]
 */
#include "core/common.h"
#include "store/store.h"

#include "load.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#define BATCH 10000
#define PAGE 100
#define SINGLE_WRITES 500

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static void fail(const char *what, const struct dps_error *err)
{
    fprintf(stderr, "bench_store: %s: %s\n", what, err->msg);
    exit(1);
}

int main(int argc, char **argv)
{
    long rows = 1000000, seen = 0;
    char path[512], dsn[600], id[32], json[1024], *cursor = NULL;
    struct store *s = NULL;
    struct dps_error err = {0};
    struct store_page page = {0};
    double t0, load_s, page_s, single_s, *lat;
    size_t npages = 0;
    struct stat st;
    long hwm_load, hwm_page;

    if (argc > 1) {
        rows = strtol(argv[1], NULL, 10);
        if (rows <= 0) {
            fprintf(stderr, "usage: bench_store [ROWS [DB_PATH]]\n");
            return 2;
        }
    }
    snprintf(path, sizeof(path), "%s", argc > 2 ? argv[2] : "bench-store.db");
    bench_remove_sqlite(path);
    snprintf(dsn, sizeof(dsn), "sqlite:%s", path);
    if (store_open(dsn, &s, &err))
        fail("open", &err);

    t0 = now_s();
    if (bench_load_enrollments(s, rows, BATCH, "dev-", 8, true, &err))
        fail("load", &err);
    load_s = now_s() - t0;
    hwm_load = bench_vm_hwm_kb();

    lat = xmalloc(sizeof(*lat) * (size_t)(rows / PAGE + 2));
    t0 = now_s();
    for (;;) {
        struct store_query q = {.after = cursor, .limit = PAGE};
        double p0 = now_s();
        if (store_enrollment_list(s, &q, &page, &err))
            fail("list", &err);
        lat[npages++] = (now_s() - p0) * 1000.0;
        seen += (long)page.n;
        free(cursor);
        cursor = page.next_cursor;
        page.next_cursor = NULL;
        store_page_release(&page);
        if (!cursor)
            break;
    }
    page_s = now_s() - t0;
    hwm_page = bench_vm_hwm_kb();
    if (seen != rows) {
        fprintf(stderr, "bench_store: paged %ld rows, loaded %ld\n", seen, rows);
        return 1;
    }
    qsort(lat, npages, sizeof(*lat), cmp_double);

    /* Single durable writes: what one request costs without group commit. */
    t0 = now_s();
    for (int i = 0; i < SINGLE_WRITES; i++) {
        struct store_put in = {.id = id, .json = json, .status = "assigned"};
        snprintf(id, sizeof(id), "reg-%06d", i);
        if (store_registration_put(s, &in, NULL, &err))
            fail("single put", &err);
    }
    single_s = now_s() - t0;
    store_close(s);
    if (stat(path, &st) != 0)
        st.st_size = 0;

    printf("| rows | load (s) | load rows/s | pages of %d | page p50 (ms) | page p99 (ms) "
           "| page all (s) | peak RSS after load (MB) | peak RSS after paging (MB) | db size (MB) "
           "| single durable writes/s |\n",
           PAGE);
    printf("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    printf("| %ld | %.1f | %.0f | %zu | %.3f | %.3f | %.1f | %.1f | %.1f | %.0f | %.0f |\n", rows,
           load_s, (double)rows / load_s, npages, lat[npages / 2],
           lat[npages * 99 / 100 < npages ? npages * 99 / 100 : npages - 1], page_s,
           (double)hwm_load / 1024.0, (double)hwm_page / 1024.0,
           (double)st.st_size / (1024.0 * 1024.0), SINGLE_WRITES / single_s);
    free(lat);
    unlink(path);
    return 0;
}
