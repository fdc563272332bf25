/* SPDX-License-Identifier: MIT */
/* The per-thread pool of rand_pool.h: refilled by one RAND_bytes call when it runs short. */
#include "core/common.h"
#include "core/rand_pool.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

/* Eight registrations' worth of identifiers per RAND_bytes call. */
#define POOL_SIZE 512

_Static_assert(RAND_POOL_REQUEST_MAX <= POOL_SIZE, "a request fits the pool");

/* pool[0..avail) is unused; bytes are taken from the end and wiped. */
static __thread unsigned char pool[POOL_SIZE];
static __thread size_t avail;

int rand_pool_bytes(unsigned char *out, size_t n)
{
    if (n == 0 || n > RAND_POOL_REQUEST_MAX)
        return -1;
    if (avail < n) {
        if (RAND_bytes(pool, POOL_SIZE) != 1) {
            OPENSSL_cleanse(pool, POOL_SIZE);
            avail = 0;
            return -1;
        }
        avail = POOL_SIZE;
    }
    avail -= n;
    memcpy(out, pool + avail, n);
    OPENSSL_cleanse(pool + avail, n);
    return 0;
}
