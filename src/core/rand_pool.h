/* SPDX-License-Identifier: MIT */
/*
 * Random bytes for identifiers (tracking ids, etags, operation ids), drawn
 * from OpenSSL's RAND_bytes a block at a time and handed out from a
 * per-thread pool: every RAND_bytes call has a fixed cost several times
 * that of the 8 or 16 bytes an identifier takes, and a registration makes
 * four of them. Not for keys, nonces or other secrets: use RAND_bytes or
 * RAND_priv_bytes directly for those.
 *
 * A process that forks must not draw in the child from a pool filled
 * before the fork (the child would repeat the parent's bytes); dpsd does
 * not fork.
 */
#ifndef DPS_CORE_RAND_POOL_H
#define DPS_CORE_RAND_POOL_H

#include <stddef.h>

/* Most bytes one rand_pool_bytes() call may ask for. */
#define RAND_POOL_REQUEST_MAX 64

/*
 * Fills out[0..n) with bytes from RAND_bytes, never handing the same byte
 * out twice; bytes handed out are wiped from the pool.
 *
 * n: 1..RAND_POOL_REQUEST_MAX.
 *
 * Returns: 0, or -1 when n is out of range or RAND_bytes failed (out is
 * then untouched).
 */
int rand_pool_bytes(unsigned char *out, size_t n);

#endif
