/* SPDX-License-Identifier: MIT */
/*
 * How the benchmark's client (dpsbench) and server (tlsserver) send a
 * message over a TLS bufferevent, as dpsd's conn_write() does: one write
 * per message, at once. Header-only, shared by the two programs.
 */
#ifndef DPS_BENCH_TLS_WRITE_H
#define DPS_BENCH_TLS_WRITE_H

#include <limits.h>
#include <stddef.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

/*
 * Sends len bytes of buf on bev (a TLS bufferevent). With nothing queued
 * before them and the handshake done, they go straight to the socket with
 * one SSL_write() (one TLS record: the benchmark's messages are all below
 * 16 KiB) instead of a write event and one more pass of the loop; whatever
 * the socket does not take at once is queued in the output buffer, which
 * retries the same bytes as OpenSSL requires.
 */
static inline void bench_tls_write(struct bufferevent *bev, const void *buf, size_t len)
{
    struct evbuffer *out = bufferevent_get_output(bev);
    SSL *ssl = bufferevent_openssl_get_ssl(bev);

    if (len == 0)
        return;
    if (evbuffer_get_length(out) == 0 && len <= INT_MAX && SSL_is_init_finished(ssl)) {
        ERR_clear_error();
        if (SSL_write(ssl, buf, (int)len) == (int)len)
            return;
        ERR_clear_error();
    }
    evbuffer_add(out, buf, len);
}

#endif
