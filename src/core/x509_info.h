/* SPDX-License-Identifier: MIT */
/*
 * Azure's X509CertificateInfo (dps-protocol.md §3.6.4): decoding a
 * certificate as the service API receives it (PEM, base64 of PEM, or base64
 * DER) and computing the fields the service returns: names in .NET form,
 * thumbprints, validity, serial number, version. It does not verify chains.
 */
#ifndef DPS_CORE_X509_INFO_H
#define DPS_CORE_X509_INFO_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "dps/error.h"

/* Longest certificate text accepted by x509_info_decode(), in bytes. */
#define X509_INFO_INPUT_MAX (64 * 1024)
/* Room for a subject or issuer name in .NET form, NUL included. */
#define X509_INFO_NAME_MAX 1024
/* Room for a serial number in hex (at most 64 bytes of DER content), NUL included. */
#define X509_INFO_SERIAL_MAX 129

struct x509_info {
    /* .NET form: most specific RDN first, ", " between RDNs, e.g. "CN=ROOT, OU=Azure IoT, C=US" */
    char subject_name[X509_INFO_NAME_MAX];
    char issuer_name[X509_INFO_NAME_MAX];
    char sha1_thumbprint[41];   /* upper-case hex of SHA-1 over the DER */
    char sha256_thumbprint[65]; /* upper-case hex of SHA-256 over the DER */
    char not_before_utc[21];    /* "2017-11-14T12:34:18Z" */
    char not_after_utc[21];
    char serial_number[X509_INFO_SERIAL_MAX]; /* upper-case hex of the DER integer's content */
    int version;                              /* 1, 2 or 3 */
    bool is_ca;                               /* basicConstraints CA:TRUE */
};

/*
 * Decodes one certificate given in any of the three encodings the service
 * API accepts. Detection follows §3.6.4: text holding
 * "-----BEGIN CERTIFICATE-----" is PEM; otherwise it is base64-decoded
 * (whitespace ignored), and the result is PEM when it starts with
 * "-----BEGIN", DER otherwise. Of a PEM text with several certificates the
 * first is taken; DER must have no trailing bytes.
 *
 * text: borrowed, len bytes, need not be NUL-terminated.
 * out: set on success; the caller frees it with X509_free().
 *
 * Returns: DPS_OK, DPS_ERR_TOO_LARGE (len > X509_INFO_INPUT_MAX),
 * DPS_ERR_INVAL (empty, not base64, no certificate, malformed: the message
 * says which), DPS_ERR_NOMEM.
 */
int x509_info_decode(const char *text, size_t len, X509 **out, struct dps_error *err);

/*
 * Computes the info of cert.
 *
 * cert: borrowed.
 * out: filled on success only.
 *
 * Returns: DPS_OK, DPS_ERR_INVAL (a name too long for X509_INFO_NAME_MAX or
 * not valid UTF-8, a serial over 64 bytes, an unreadable validity time),
 * DPS_ERR_NOMEM, DPS_ERR_INTERNAL.
 */
int x509_info_from_cert(X509 *cert, struct x509_info *out, struct dps_error *err);

/*
 * x509_info_decode() then x509_info_from_cert().
 *
 * cert_out: NULL, or set on success to the decoded certificate, which the
 *   caller frees with X509_free().
 *
 * Returns: as the two functions above.
 */
int x509_info_parse(const char *text, size_t len, struct x509_info *out, X509 **cert_out,
                    struct dps_error *err);

/*
 * Formats a name in .NET's X500DistinguishedName form into buf: RDNs from
 * last to first joined by ", ", multi-valued RDNs joined by " + ", .NET's
 * attribute names (CN, O, OU, C, L, S, E, STREET, DC, ...; OID.n.n for
 * others), values holding , = + < > # ; " or a newline, or with spaces at
 * either end, in double quotes with inner quotes doubled.
 *
 * Returns: DPS_OK, DPS_ERR_INVAL (does not fit in size, or not valid UTF-8), DPS_ERR_NOMEM.
 */
int x509_info_name_format(const X509_NAME *name, char *buf, size_t size, struct dps_error *err);

/*
 * The info as Azure's X509CertificateInfo JSON object: subjectName,
 * sha1Thumbprint, sha256Thumbprint, issuerName, notBeforeUtc, notAfterUtc,
 * serialNumber, version (is_ca is not part of Azure's shape).
 *
 * Returns: a new reference the caller releases with json_decref(), or NULL
 * when out of memory.
 */
json_t *x509_info_to_json(const struct x509_info *info);

#endif
