/* SPDX-License-Identifier: MIT */
/*
 * The server's TLS context: TLS 1.2 or later, the server certificate chain
 * and key from PEM files, and client certificates requested but not
 * required. The TLS layer accepts any client chain: attestation judges it
 * later against the enrollments, whose trust anchors are per group.
 */
#ifndef DPS_SERVER_TLS_H
#define DPS_SERVER_TLS_H

#include <openssl/ssl.h>

/*
 * Returns a new SSL_CTX for the server, shared by every worker (SSL_CTX is
 * thread-safe once configured), or NULL with err set.
 *
 * cert_file: PEM, the server certificate followed by its intermediates.
 * key_file:  PEM, the unencrypted private key of cert_file.
 *
 * Returns: the context (caller frees with SSL_CTX_free), or NULL with
 * err->code DPS_ERR_TLS and a message naming the file and the problem.
 */
SSL_CTX *tls_server_ctx_new(const char *cert_file, const char *key_file, struct dps_error *err);

/*
 * Returns the certificates the client presented, leaf first, as a new stack
 * holding a reference to each certificate, or NULL when the client sent
 * none. Call after the handshake. Caller frees with
 * sk_X509_pop_free(chain, X509_free).
 */
STACK_OF(X509) * tls_peer_chain(SSL *ssl);

#endif
