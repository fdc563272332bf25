/* SPDX-License-Identifier: MIT */
/*
 * Realistic individual enrollments for the store benchmarks and the store
 * scale test: bodies of about 600 bytes written in batched transactions,
 * and the peak resident memory they cost. Header-only, so that
 * bench_store, bench_scale and tests/unit/test_store_scale load the same
 * data.
 */
#ifndef DPS_BENCH_LOAD_H
#define DPS_BENCH_LOAD_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"

/* Peak resident set size in kB (VmHWM of /proc/self/status), or -1. */
static inline long bench_vm_hwm_kb(void)
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

/* Removes the SQLite database at path with its "-wal" and "-shm" files, where they exist. */
static inline void bench_remove_sqlite(const char *path)
{
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    char f[1200];

    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        snprintf(f, sizeof(f), "%s%s", path, suffixes[i]);
        unlink(f);
    }
}

/*
 * Writes into buf (size bytes) the JSON of enrollment number i with
 * registration and device id id: a symmetric key attestation, an initial
 * twin and, when hubs is true, a list of two IoT hubs.
 */
static inline void bench_enrollment_json(char *buf, size_t size, const char *id, long i, bool hubs)
{
    snprintf(buf, size,
             "{\"registrationId\":\"%s\",\"deviceId\":\"%s\","
             "\"attestation\":{\"type\":\"symmetricKey\",\"symmetricKey\":{"
             "\"primaryKey\":\"G3vnZ2s1c2VjcmV0cHJpbWFyeWtleWZvcmRldmljZSVkbnVtYmVyJTA3ZEFBQUFBQUFB"
             "QUFBQUFBQUFBQUFBQUFBQUFBQUE9PQ==\",\"secondaryKey\":\"4lNxc2Vjb25kYXJ5a2V5Zm9yZGV2"
             "aWNlbnVtYmVyQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQg==\"}},"
             "\"capabilities\":{\"iotEdge\":false},"
             "\"initialTwin\":{\"tags\":{\"site\":\"plant-%ld\",\"line\":\"line-%ld\"},"
             "\"properties\":{\"desired\":{\"interval\":30,\"mode\":\"normal\"}}},"
             "\"provisioningStatus\":\"enabled\","
             "\"reprovisionPolicy\":{\"updateHubAssignment\":true,\"migrateDeviceData\":true},"
             "\"allocationPolicy\":\"hashed\"%s}",
             id, id, i % 17, i % 5,
             hubs ? ",\"iotHubs\":[\"hub-a.azure-devices.net\",\"hub-b.azure-devices.net\"]" : "");
}

/*
 * Puts count enrollments into s, one transaction per batch of them (the
 * last may be shorter). Enrollment i has the id prefix followed by i in
 * width digits, and the body of bench_enrollment_json(). Returns DPS_OK,
 * or the first failure's code with err filled; what came before a failed
 * batch stays committed, the failed batch is left to store_close() to
 * roll back.
 */
static inline int bench_load_enrollments(struct store *s, long count, long batch,
                                         const char *prefix, int width, bool hubs,
                                         struct dps_error *err)
{
    char id[128], json[2048];
    int rc = DPS_OK;

    for (long i = 0; rc == DPS_OK && i < count; i++) {
        struct store_put in = {
            .id = id, .json = json, .device_id = id, .attestation = "symmetricKey"};

        if (i % batch == 0)
            rc = store_batch_begin(s, err);
        snprintf(id, sizeof(id), "%s%0*ld", prefix, width, i);
        bench_enrollment_json(json, sizeof(json), id, i, hubs);
        if (rc == DPS_OK)
            rc = store_enrollment_put(s, &in, NULL, err);
        if (rc == DPS_OK && (i % batch == batch - 1 || i == count - 1))
            rc = store_batch_commit(s, err);
    }
    return rc;
}

#endif
