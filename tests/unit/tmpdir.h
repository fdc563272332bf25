/* SPDX-License-Identifier: MIT */
/*
 * A fresh directory for a unit test's files, under $DPS_TEST_TMP (which
 * ctest sets to the build's test-tmp) or /tmp. Header-only, for the tests
 * in this folder.
 */
#ifndef DPS_TESTS_UNIT_TMPDIR_H
#define DPS_TESTS_UNIT_TMPDIR_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * Creates the directory "<base>/<prefix>.XXXXXX" with a unique suffix and
 * writes its path into buf (size bytes). A test cannot go on without it,
 * so on failure it says why and exits with status 1.
 */
static inline void test_tmpdir(char *buf, size_t size, const char *prefix)
{
    const char *base = getenv("DPS_TEST_TMP");
    char parent[400];

    snprintf(parent, sizeof(parent), "%s", base && *base ? base : "/tmp");
    mkdir(parent, 0700);
    snprintf(buf, size, "%s/%s.XXXXXX", parent, prefix);
    if (!mkdtemp(buf)) {
        perror("mkdtemp");
        exit(1);
    }
}

/*
 * Removes the SQLite database "<dir>/<db>" with its "-wal" and "-shm"
 * files, then the directory itself (which must then be empty). Files that
 * are not there are passed over: a test that failed early still cleans up.
 */
static inline void test_tmpdir_remove_sqlite(const char *dir, const char *db)
{
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    char path[600];

    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s%s", dir, db, suffixes[i]);
        unlink(path);
    }
    rmdir(dir);
}

#endif
