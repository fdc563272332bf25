/* SPDX-License-Identifier: MIT */
/*
 * Key and certificate making for test PKIs and for dpsd's development TLS
 * CA: key generation, certificate issuance with the extensions each kind of
 * certificate needs, and PEM file I/O that never leaves a half-written file.
 * It is not a certificate verifier (attestation does that) and keeps no state.
 */
#ifndef DPS_CORE_PKI_H
#define DPS_CORE_PKI_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "dps/error.h"

/* Files larger than this are refused by the readers below. */
#define PKI_FILE_MAX (1024 * 1024)
/* Certificates in one PEM file read by pki_certs_read() at most. */
#define PKI_CHAIN_MAX 16
/* Longest subject string accepted by pki_subject_parse(). */
#define PKI_SUBJECT_MAX 1024
/* Longest passphrase accepted for an encrypted key. */
#define PKI_PASSPHRASE_MAX 1023

enum pki_key_type {
    PKI_KEY_P256,    /* ECDSA on NIST P-256, SHA-256 signatures (the default) */
    PKI_KEY_P384,    /* ECDSA on NIST P-384, SHA-384 signatures */
    PKI_KEY_RSA2048, /* RSA 2048 bits, SHA-256 signatures */
    PKI_KEY_RSA4096, /* RSA 4096 bits, SHA-256 signatures */
};

/* What a certificate is for; decides its extensions (see pki_cert_issue()). */
enum pki_cert_kind {
    PKI_CERT_ROOT_CA,         /* self-signed CA */
    PKI_CERT_INTERMEDIATE_CA, /* CA signed by another CA */
    PKI_CERT_DEVICE,          /* TLS client (device) leaf */
    PKI_CERT_SERVER,          /* TLS server leaf with subjectAltNames */
    PKI_CERT_VERIFICATION,    /* proof-of-possession leaf: CN is the verification code */
};

/* What to issue. All pointers are borrowed for the duration of the call. */
struct pki_cert_spec {
    enum pki_cert_kind kind;
    /* Subject as "CN=x,O=y,C=US" (see pki_subject_parse()); required. */
    const char *subject;
    /* Validity in days from now, 1..36500; notBefore is backdated 5 minutes for clock skew. */
    int days;
    /*
     * Explicit validity (seconds since the epoch, UTC), for testing how a
     * verifier handles expired and not-yet-valid certificates; 0 means unset.
     * not_before replaces "now minus 5 minutes" (notAfter is then days after
     * it); not_after replaces "days from now" (days is then only range-checked). Neither is capped
     * at the issuer's notAfter when given, so a certificate can outlive its issuer.
     */
    int64_t not_before;
    int64_t not_after;
    /* Intermediate CAs only: basicConstraints pathlen, or -1 for none. Ignored for other kinds. */
    int pathlen;
    /* subjectAltName DNS names and IP addresses (IPv4 or IPv6 text); any kind may carry them. */
    const char *const *dns_names;
    size_t n_dns_names;
    const char *const *ip_addresses;
    size_t n_ip_addresses;
};

enum pki_write_flags {
    PKI_FORCE = 1 << 0, /* replace an existing file instead of failing with DPS_ERR_EXISTS */
};

/*
 * Parses a key type name: "p256", "p384", "rsa2048" or "rsa4096" (case-sensitive).
 *
 * Returns: 0 and sets *out, or -1 for an unknown name (*out untouched).
 */
int pki_key_type_parse(const char *name, enum pki_key_type *out);

/* The name pki_key_type_parse() accepts for t; a static string. */
const char *pki_key_type_name(enum pki_key_type t);

/*
 * Generates a fresh private key.
 *
 * out: set on success to a new key the caller frees with EVP_PKEY_free().
 *
 * Returns: DPS_OK, DPS_ERR_INVAL (unknown type), DPS_ERR_INTERNAL (OpenSSL failed).
 */
int pki_key_generate(enum pki_key_type type, EVP_PKEY **out, struct dps_error *err);

/*
 * Parses a subject string into an X509_NAME: comma-separated attribute=value
 * pairs in the order they appear in the certificate (most general first
 * or not, as written), e.g. "CN=Root CA,O=Example,C=US". Attribute names are
 * OpenSSL short or long names (CN, O, OU, C, L, ST, emailAddress, ...).
 * A backslash escapes the next character ("O=Example\, Inc."); spaces
 * around names and values are trimmed. Values are UTF-8.
 *
 * out: set on success; the caller frees it with X509_NAME_free().
 *
 * Returns: DPS_OK, DPS_ERR_INVAL (empty, too long, unknown attribute, missing
 * '=' or empty value: the message names the part), DPS_ERR_NOMEM.
 */
int pki_subject_parse(const char *subject, X509_NAME **out, struct dps_error *err);

/*
 * Issues a certificate for subject_key as spec says.
 *
 * Every certificate is X.509 v3 with a random positive 128-bit serial,
 * subjectKeyIdentifier and (when signed by an issuer) authorityKeyIdentifier.
 *   - CAs: basicConstraints critical CA:TRUE (pathlen for intermediates when
 *     spec->pathlen >= 0), keyUsage critical keyCertSign + cRLSign.
 *   - device: basicConstraints critical CA:FALSE, keyUsage critical
 *     digitalSignature (+ keyEncipherment for RSA keys), extendedKeyUsage clientAuth.
 *   - server: as device but extendedKeyUsage serverAuth.
 *   - verification: as device (Azure only checks the CN and the signature).
 * The signature uses SHA-384 when the signing key is P-384, SHA-256 otherwise.
 * notAfter is capped at the issuer's notAfter so the chain stays valid,
 * unless spec->not_before or spec->not_after is given.
 *
 * subject_key: borrowed; the key certified (its public part).
 * issuer: borrowed; the CA certificate that signs, or NULL for a self-signed
 *   certificate (then issuer_key must be subject_key, or NULL meaning the same).
 * issuer_key: borrowed; the private key matching issuer.
 * out: set on success to a new certificate the caller frees with X509_free().
 *
 * Returns: DPS_OK, DPS_ERR_INVAL (bad subject, days, SAN, kind; not_after not
 * after not_before; an issuer
 * that is not a CA or whose key does not match issuer_key: the message says
 * which), DPS_ERR_NOMEM, DPS_ERR_INTERNAL (OpenSSL failed).
 */
int pki_cert_issue(const struct pki_cert_spec *spec, EVP_PKEY *subject_key, X509 *issuer,
                   EVP_PKEY *issuer_key, X509 **out, struct dps_error *err);

/*
 * Writes key as a PKCS#8 PEM file with mode 0600, encrypted with AES-256-CBC
 * when passphrase is non-NULL. The file is written to a temporary name in
 * the same directory, flushed and renamed into place, so path never holds a
 * partial key.
 *
 * flags: PKI_FORCE replaces an existing path; without it an existing path is
 *   an error and nothing is written.
 *
 * Returns: DPS_OK, DPS_ERR_EXISTS (path exists), DPS_ERR_IO (the message
 * names the path and the system error), DPS_ERR_INTERNAL.
 */
int pki_key_write(const char *path, EVP_PKEY *key, const char *passphrase, int flags,
                  struct dps_error *err);

/*
 * The PEM text of one certificate, NUL-terminated, in a new buffer the
 * caller frees; x is borrowed.
 *
 * Returns: the text, or NULL when out of memory or x cannot be encoded.
 */
char *pki_cert_pem(X509 *x);

/*
 * Writes n certificates (n >= 1) as consecutive PEM blocks, in the given
 * order, mode 0644, with the same temporary-file-and-rename and PKI_FORCE
 * rules as pki_key_write(). certs are borrowed.
 *
 * Returns: DPS_OK, DPS_ERR_INVAL (n == 0), DPS_ERR_EXISTS, DPS_ERR_IO, DPS_ERR_INTERNAL.
 */
int pki_certs_write(const char *path, X509 *const *certs, size_t n, int flags,
                    struct dps_error *err);

/*
 * Reads a PEM private key (PKCS#8, encrypted or not, or a traditional
 * EC/RSA key) of at most PKI_FILE_MAX bytes.
 *
 * passphrase: for an encrypted key; NULL when none was given.
 * out: set on success; the caller frees it with EVP_PKEY_free().
 *
 * Returns: DPS_OK, DPS_ERR_NOT_FOUND (no such file), DPS_ERR_IO,
 * DPS_ERR_TOO_LARGE, DPS_ERR_AUTH (encrypted and no passphrase given, or the
 * passphrase is wrong), DPS_ERR_INVAL (no key in the file).
 */
int pki_key_read(const char *path, const char *passphrase, EVP_PKEY **out, struct dps_error *err);

/*
 * Reads every certificate of a PEM file (at most PKI_FILE_MAX bytes and
 * PKI_CHAIN_MAX certificates), in file order.
 *
 * out: set on success to a non-empty stack the caller frees with
 *   sk_X509_pop_free(stack, X509_free).
 *
 * Returns: DPS_OK, DPS_ERR_NOT_FOUND, DPS_ERR_IO, DPS_ERR_TOO_LARGE,
 * DPS_ERR_INVAL (no certificate, or a malformed one), DPS_ERR_NOMEM.
 */
int pki_certs_read(const char *path, STACK_OF(X509) * *out, struct dps_error *err);

/*
 * Reads a whole file of at most max bytes into a NUL-terminated buffer.
 *
 * out, out_len: set on success; the caller frees *out with free() (wipe it
 *   first with OPENSSL_cleanse when it held a secret).
 *
 * Returns: DPS_OK, DPS_ERR_NOT_FOUND, DPS_ERR_IO, DPS_ERR_TOO_LARGE, DPS_ERR_NOMEM.
 */
int pki_file_read(const char *path, size_t max, char **out, size_t *out_len, struct dps_error *err);

#endif
