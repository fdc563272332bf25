/* SPDX-License-Identifier: MIT */
/* Unit tests of core/rand_pool: bounds, no byte handed out twice in practice, per-thread pools. */
#include "core/common.h"
#include "core/rand_pool.h"

#include <pthread.h>

#include "../t.h"

#define DRAWS 2000

static void test_bounds(void)
{
    unsigned char b[RAND_POOL_REQUEST_MAX + 1];

    memset(b, 0xee, sizeof(b));
    ok(rand_pool_bytes(b, 0) == -1);
    ok(rand_pool_bytes(b, RAND_POOL_REQUEST_MAX + 1) == -1);
    ok(b[0] == 0xee && b[RAND_POOL_REQUEST_MAX] == 0xee);
    ok(rand_pool_bytes(b, RAND_POOL_REQUEST_MAX) == 0);
    ok(b[RAND_POOL_REQUEST_MAX] == 0xee);
    ok(rand_pool_bytes(b, 1) == 0);
end:;
}

static int cmp16(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}

/* Draws of odd sizes cross many refills; 16-byte draws never repeat (2^-100 odds). */
static void test_distinct(void)
{
    static unsigned char ids[DRAWS][16];
    unsigned char odd[RAND_POOL_REQUEST_MAX];
    size_t zero_bytes = 0;

    for (size_t i = 0; i < DRAWS; i++) {
        ok(rand_pool_bytes(ids[i], 16) == 0);
        ok(rand_pool_bytes(odd, 1 + i % RAND_POOL_REQUEST_MAX) == 0);
        for (size_t k = 0; k < 16; k++)
            zero_bytes += ids[i][k] == 0;
    }
    qsort(ids, DRAWS, sizeof(ids[0]), cmp16);
    for (size_t i = 1; i < DRAWS; i++)
        ok(memcmp(ids[i - 1], ids[i], 16) != 0);
    /* about 1 in 256 bytes is zero; wiped bytes handed out again would show as far more */
    ok(zero_bytes < DRAWS * 16 / 64);
end:;
}

static void *draw_thread(void *arg)
{
    unsigned char *out = arg;

    for (size_t i = 0; i < DRAWS; i++)
        if (rand_pool_bytes(out + 16 * i, 16) != 0)
            return NULL;
    return out;
}

/* Two threads draw from pools of their own: none of their identifiers is shared. */
static void test_threads(void)
{
    static unsigned char a[DRAWS * 16], b[DRAWS * 16], all[2 * DRAWS][16];
    pthread_t ta, tb;
    void *ra = NULL, *rb = NULL;

    ok(pthread_create(&ta, NULL, draw_thread, a) == 0);
    ok(pthread_create(&tb, NULL, draw_thread, b) == 0);
    pthread_join(ta, &ra);
    pthread_join(tb, &rb);
    ok(ra == a && rb == b);
    memcpy(all, a, sizeof(a));
    memcpy(all[DRAWS], b, sizeof(b));
    qsort(all, 2 * DRAWS, sizeof(all[0]), cmp16);
    for (size_t i = 1; i < 2 * DRAWS; i++)
        ok(memcmp(all[i - 1], all[i], 16) != 0);
end:;
}

int main(void)
{
    subtest("bounds", test_bounds);
    subtest("distinct draws across refills", test_distinct);
    subtest("a pool per thread", test_threads);
    return t_done();
}
