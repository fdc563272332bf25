/* SPDX-License-Identifier: MIT */
/* The shared server SSL_CTX and the peer chain accessor. */
#include "core/common.h"
#include "server/tls.h"

#include <openssl/err.h>

/* Largest certificate list a client may send: bounds the chain in memory. */
#define MAX_CERT_LIST (64 * 1024)

/*
 * Replaces the chain verification of the TLS layer: every client chain is
 * accepted here, because its trust anchors belong to enrollment groups and
 * symmetric-key devices present no certificate. The attestation
 * (core/attest.h) verifies the chain against the device's group once the
 * request names it. Verifying here too, against an empty store, still
 * built the chain and checked the leaf's signature on every handshake, only
 * for the result to be ignored. The TLS layer still checks the client's
 * CertificateVerify, its proof that it holds the leaf's key.
 */
static int defer_chain(X509_STORE_CTX *ctx, void *arg)
{
    return 1;
}

static const char *ssl_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    return r ? r : "unknown error";
}

SSL_CTX *tls_server_ctx_new(const char *cert_file, const char *key_file, struct dps_error *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    ERR_clear_error();
    if (!ctx) {
        dps_error_set(err, DPS_ERR_TLS, "cannot create a TLS context: %s", ssl_reason());
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_max_cert_list(ctx, MAX_CERT_LIST);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_cert_verify_callback(ctx, defer_chain, NULL);
    SSL_CTX_set_verify_depth(ctx, 10);
    /*
     * No session resumption. A resumed session brings no client certificate
     * chain for X.509 attestation, and with SSL_VERIFY_PEER and no session id
     * context OpenSSL answers a client that offers an earlier session (as
     * browsers do on every new connection) with a fatal internal_error alert.
     * No cache and no tickets: every offer falls back to a full handshake.
     */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(ctx, 0);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        dps_error_set(err, DPS_ERR_TLS, "cannot load certificate '%s': %s", cert_file,
                      ssl_reason());
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        dps_error_set(err, DPS_ERR_TLS, "cannot load private key '%s': %s", key_file, ssl_reason());
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        dps_error_set(err, DPS_ERR_TLS, "private key '%s' does not match certificate '%s'",
                      key_file, cert_file);
        goto fail;
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return NULL;
}

STACK_OF(X509) * tls_peer_chain(SSL *ssl)
{
    X509 *leaf = SSL_get0_peer_certificate(ssl);
    STACK_OF(X509) *sent = SSL_get_peer_cert_chain(ssl), *chain;

    if (!leaf)
        return NULL;
    chain = sk_X509_new_null();
    if (!chain)
        return NULL;
    /* On the server side OpenSSL keeps the leaf apart from the rest of the chain. */
    if (!sk_X509_push(chain, leaf))
        goto fail;
    X509_up_ref(leaf);
    for (int i = 0; sent && i < sk_X509_num(sent); i++) {
        X509 *c = sk_X509_value(sent, i);
        if (X509_cmp(c, leaf) == 0)
            continue;
        if (!sk_X509_push(chain, c))
            goto fail;
        X509_up_ref(c);
    }
    return chain;
fail:
    sk_X509_pop_free(chain, X509_free);
    return NULL;
}
