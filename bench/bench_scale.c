/* SPDX-License-Identifier: MIT */
/*
 * Scale loader of `make bench`: writes N individual enrollments and M
 * registration records (all of one enrollment group, so that one
 * registration query pages through all of them) straight into a stopped
 * dpsd's SQLite store with the store API, in batches of one transaction
 * each, and prints the load times as one machine-readable line. dpsd is
 * started on the data directory afterwards to time its query pages and read
 * its resident memory.
 *
 *     bench_scale DATA_DIR ENROLLMENTS REGISTRATIONS [GROUP_ID]
 */
#include "core/common.h"
#include "store/store.h"

#include "load.h"

#include <sys/stat.h>

#define BATCH 20000

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fail(const char *what, const struct dps_error *err)
{
    fprintf(stderr, "bench_scale: %s: %s\n", what, err->msg);
    exit(1);
}

static long parse_count(const char *name, const char *s)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);

    if (!end || *end || end == s || v < 0 || v > 100000000) {
        fprintf(stderr, "bench_scale: '%s' must be 0 to 100000000, got '%s'\n", name, s);
        exit(2);
    }
    return v;
}

/* A registration record of about 700 bytes (bench_enrollment_json() makes the enrollments). */
static void registration_json(char *buf, size_t size, const char *id, const char *group, long i)
{
    snprintf(buf, size,
             "{\"registrationId\":\"%s\",\"createdDateTimeUtc\":\"2026-01-01T00:00:00.000Z\","
             "\"assignedHub\":\"hub-a.example.net\",\"deviceId\":\"%s\",\"status\":\"assigned\","
             "\"substatus\":\"initialAssignment\",\"lastUpdatedDateTimeUtc\":"
             "\"2026-01-01T00:00:00.000Z\",\"operationId\":\"1.%016lx.5f3c2a10-8d3e-4c41-9a7b-"
             "%012lx\",\"trackingId\":\"5f3c2a10-8d3e-4c41-9a7b-%012lx\",\"attestationType\":"
             "\"symmetricKey\",\"enrollmentGroupId\":\"%s\",\"symmetricKey\":{"
             "\"enrollmentGroupId\":\"%s\"},\"initialTwin\":{\"tags\":{\"line\":\"%ld\"}},"
             "\"capabilities\":{\"iotEdge\":false}}",
             id, id, (unsigned long)i, (unsigned long)i, (unsigned long)i, group, group, i % 7);
}

int main(int argc, char **argv)
{
    struct store *s = NULL;
    struct dps_error err = {0};
    char dsn[1200], path[1100], id[64], json[2048];
    long n_enr, n_reg;
    const char *group;
    double t0, enr_s, reg_s;
    struct stat st;

    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: bench_scale DATA_DIR ENROLLMENTS REGISTRATIONS [GROUP_ID]\n");
        return 2;
    }
    n_enr = parse_count("ENROLLMENTS", argv[2]);
    n_reg = parse_count("REGISTRATIONS", argv[3]);
    group = argc > 4 ? argv[4] : "scale-group";
    snprintf(path, sizeof(path), "%s/dpsd.db", argv[1]);
    if (stat(path, &st) != 0) {
        fprintf(stderr, "bench_scale: no store at '%s': start dpsd once on the directory\n", path);
        return 1;
    }
    snprintf(dsn, sizeof(dsn), "sqlite:%s", path);
    if (store_open(dsn, &s, &err))
        fail("open", &err);

    t0 = now_s();
    if (bench_load_enrollments(s, n_enr, BATCH, "scale-enr-", 9, false, &err))
        fail("enrollment load", &err);
    enr_s = now_s() - t0;

    t0 = now_s();
    for (long i = 0; i < n_reg; i++) {
        struct store_put in = {.id = id,
                               .json = json,
                               .device_id = id,
                               .group_id = group,
                               .status = "assigned",
                               .assigned_hub = "hub-a.example.net"};
        if (i % BATCH == 0 && store_batch_begin(s, &err))
            fail("begin", &err);
        snprintf(id, sizeof(id), "scale-reg-%09ld", i);
        registration_json(json, sizeof(json), id, group, i);
        if (store_registration_put(s, &in, NULL, &err))
            fail("registration put", &err);
        if ((i % BATCH == BATCH - 1 || i == n_reg - 1) && store_batch_commit(s, &err))
            fail("commit", &err);
        if (i > 0 && i % 1000000 == 0)
            fprintf(stderr, "bench_scale: %ld registrations in %.0f s\n", i, now_s() - t0);
    }
    reg_s = now_s() - t0;
    store_close(s);
    if (stat(path, &st) != 0)
        st.st_size = 0;
    printf("bench_scale: enrollments=%ld enrollments_s=%.1f registrations=%ld registrations_s=%.1f "
           "db_mb=%.0f\n",
           n_enr, enr_s, n_reg, reg_s, (double)st.st_size / (1024.0 * 1024.0));
    return 0;
}
