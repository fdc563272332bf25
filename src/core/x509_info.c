/* SPDX-License-Identifier: MIT */
/*
 * Certificate decoding for the service API and the X509CertificateInfo that
 * Azure computes from it, field for field in Azure's formats.
 */
#include "core/common.h"
#include "core/x509_info.h"

#include "core/hex.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#define PEM_CERT_BEGIN "-----BEGIN CERTIFICATE-----"

/* Upper-case hex of in[0..n) into out, NUL-terminated (out holds 2 * n + 1). */
static void hex_upper(const unsigned char *in, size_t n, char *out)
{
    *hex_encode_upper(in, n, out) = '\0';
}

/* Decodes base64 text (whitespace ignored) into a new buffer of at most len bytes. */
static int base64_decode(const char *text, size_t len, unsigned char **out, size_t *out_len,
                         struct dps_error *err)
{
    EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
    unsigned char *buf = malloc(len + 1);
    int n = 0, fin = 0, rc;

    if (!ctx || !buf) {
        rc = dps_error_set(err, DPS_ERR_NOMEM, "out of memory");
        goto out;
    }
    EVP_DecodeInit(ctx);
    if (EVP_DecodeUpdate(ctx, buf, &n, (const unsigned char *)text, (int)len) < 0 ||
        EVP_DecodeFinal(ctx, buf + n, &fin) < 0 || n + fin == 0) {
        ERR_clear_error();
        rc = dps_error_set(err, DPS_ERR_INVAL,
                           "certificate is neither PEM nor base64 (of PEM or DER)");
        goto out;
    }
    *out = buf;
    *out_len = (size_t)(n + fin);
    buf = NULL;
    rc = DPS_OK;
out:
    free(buf);
    EVP_ENCODE_CTX_free(ctx);
    return rc;
}

/* The first CERTIFICATE block of PEM text. */
static int decode_pem(const char *pem, size_t len, X509 **out, struct dps_error *err)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL;
    long dlen = 0;
    int rc = DPS_ERR_INVAL;

    if (!bio)
        return dps_error_set(err, DPS_ERR_NOMEM, "out of memory");
    for (;;) {
        if (!PEM_read_bio(bio, &name, &header, &data, &dlen)) {
            rc = dps_error_set(err, DPS_ERR_INVAL, "PEM text holds no readable certificate");
            break;
        }
        if (!strcmp(name, PEM_STRING_X509)) {
            const unsigned char *p = data;
            X509 *cert = d2i_X509(NULL, &p, dlen);

            if (!cert || p != data + dlen) {
                X509_free(cert);
                rc = dps_error_set(err, DPS_ERR_INVAL, "PEM certificate is malformed");
            } else {
                *out = cert;
                rc = DPS_OK;
            }
            break;
        }
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(data);
        name = header = NULL;
        data = NULL;
    }
    ERR_clear_error();
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
    BIO_free(bio);
    return rc;
}

static int decode_der(const unsigned char *der, size_t len, X509 **out, struct dps_error *err)
{
    const unsigned char *p = der;
    X509 *cert = d2i_X509(NULL, &p, (long)len);

    ERR_clear_error();
    if (!cert)
        return dps_error_set(err, DPS_ERR_INVAL, "DER certificate is malformed");
    if (p != der + len) {
        X509_free(cert);
        return dps_error_set(err, DPS_ERR_INVAL, "DER certificate has %zu trailing bytes",
                             (size_t)(der + len - p));
    }
    *out = cert;
    return DPS_OK;
}

int x509_info_decode(const char *text, size_t len, X509 **out, struct dps_error *err)
{
    unsigned char *raw = NULL;
    size_t raw_len = 0;
    int rc;

    if (!text || len == 0)
        return dps_error_set(err, DPS_ERR_INVAL, "certificate is empty");
    if (len > X509_INFO_INPUT_MAX)
        return dps_error_set(err, DPS_ERR_TOO_LARGE, "certificate is larger than %d bytes",
                             X509_INFO_INPUT_MAX);
    if (memmem(text, len, PEM_CERT_BEGIN, strlen(PEM_CERT_BEGIN)))
        return decode_pem(text, len, out, err);
    rc = base64_decode(text, len, &raw, &raw_len, err);
    if (rc)
        return rc;
    if (raw_len >= 10 && !memcmp(raw, "-----BEGIN", 10))
        rc = decode_pem((const char *)raw, raw_len, out, err);
    else
        rc = decode_der(raw, raw_len, out, err);
    free(raw);
    return rc;
}

static const struct {
    int nid;
    const char *name;
} dotnet_names[] = {
    {NID_commonName, "CN"},
    {NID_organizationName, "O"},
    {NID_organizationalUnitName, "OU"},
    {NID_countryName, "C"},
    {NID_localityName, "L"},
    {NID_stateOrProvinceName, "S"},
    {NID_pkcs9_emailAddress, "E"},
    {NID_streetAddress, "STREET"},
    {NID_domainComponent, "DC"},
    {NID_givenName, "G"},
    {NID_surname, "SN"},
    {NID_title, "T"},
    {NID_initials, "I"},
    {NID_serialNumber, "SERIALNUMBER"},
};

/* Appending to a bounded buffer; a failed append sets a flag checked once at the end. */
struct out_buf {
    char *buf;
    size_t size, len;
    bool overflow;
};

static void put(struct out_buf *o, const char *s, size_t n)
{
    if (o->overflow || n >= o->size - o->len) {
        o->overflow = true;
        return;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = '\0';
}

static void puts_buf(struct out_buf *o, const char *s)
{
    put(o, s, strlen(s));
}

static bool utf8_valid(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t k;
        unsigned int cp;

        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xe0) == 0xc0)
            k = 1, cp = c & 0x1f;
        else if ((c & 0xf0) == 0xe0)
            k = 2, cp = c & 0x0f;
        else if ((c & 0xf8) == 0xf0)
            k = 3, cp = c & 0x07;
        else
            return false;
        if (i + k >= n)
            return false;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += k + 1;
    }
    return true;
}

/* One attribute=value in .NET's form. */
static int put_entry(struct out_buf *o, const X509_NAME_ENTRY *e, struct dps_error *err)
{
    const ASN1_OBJECT *obj = X509_NAME_ENTRY_get_object(e);
    int nid = OBJ_obj2nid(obj);
    unsigned char *value = NULL;
    const char *name = NULL;
    char oid[128];
    bool quote = false;
    int n;

    for (size_t i = 0; i < ARRAY_SIZE(dotnet_names); i++) {
        if (dotnet_names[i].nid == nid)
            name = dotnet_names[i].name;
    }
    if (name) {
        puts_buf(o, name);
    } else {
        if (OBJ_obj2txt(oid, sizeof(oid), obj, 1) <= 0)
            return dps_error_set(err, DPS_ERR_INVAL, "name has an unreadable attribute type");
        puts_buf(o, "OID.");
        puts_buf(o, oid);
    }
    put(o, "=", 1);
    n = ASN1_STRING_to_UTF8(&value, X509_NAME_ENTRY_get_data(e));
    if (n < 0) {
        ERR_clear_error();
        return dps_error_set(err, DPS_ERR_INVAL, "name has a value that is not a readable string");
    }
    if (!utf8_valid(value, (size_t)n)) {
        OPENSSL_free(value);
        return dps_error_set(err, DPS_ERR_INVAL, "name has a value that is not valid UTF-8");
    }
    if (n > 0 && (value[0] == ' ' || value[n - 1] == ' '))
        quote = true;
    for (int i = 0; i < n && !quote; i++)
        quote = strchr(",=+<>#;\"\n", value[i]) != NULL;
    if (quote)
        put(o, "\"", 1);
    for (int i = 0; i < n; i++) {
        if (value[i] == '"')
            put(o, "\"", 1);
        put(o, (const char *)value + i, 1);
    }
    if (quote)
        put(o, "\"", 1);
    OPENSSL_free(value);
    return DPS_OK;
}

int x509_info_name_format(const X509_NAME *name, char *buf, size_t size, struct dps_error *err)
{
    struct out_buf o = {buf, size, 0, size == 0};
    int count = X509_NAME_entry_count(name);
    int rc;

    if (size > 0)
        buf[0] = '\0';
    for (int i = count - 1; i >= 0; i--) {
        const X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);

        if (i < count - 1) {
            /* Entries of one multi-valued RDN share a set number. */
            int same =
                X509_NAME_ENTRY_set(e) == X509_NAME_ENTRY_set(X509_NAME_get_entry(name, i + 1));

            puts_buf(&o, same ? " + " : ", ");
        }
        rc = put_entry(&o, e, err);
        if (rc)
            return rc;
    }
    if (o.overflow)
        return dps_error_set(err, DPS_ERR_INVAL, "name is longer than %zu characters",
                             size ? size - 1 : 0);
    return DPS_OK;
}

static int format_time(const ASN1_TIME *t, char *buf, size_t size)
{
    struct tm tm;

    if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
        return -1;
    if (strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        return -1;
    return 0;
}

/* The content octets of the DER INTEGER, as .NET's SerialNumber shows them. */
static int format_serial(const ASN1_INTEGER *serial, char *buf, size_t size, struct dps_error *err)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    long clen;
    int dlen, tag, xclass, rc;

    dlen = i2d_ASN1_INTEGER(serial, &der);
    if (dlen <= 0) {
        ERR_clear_error();
        return dps_error_set(err, DPS_ERR_INVAL, "serial number cannot be encoded");
    }
    p = der;
    if (ASN1_get_object(&p, &clen, &tag, &xclass, dlen) & 0x80) {
        rc = dps_error_set(err, DPS_ERR_INVAL, "serial number cannot be encoded");
    } else if ((size_t)clen * 2 + 1 > size) {
        rc = dps_error_set(err, DPS_ERR_INVAL, "serial number is longer than %zu bytes",
                           (size - 1) / 2);
    } else {
        hex_upper(p, (size_t)clen, buf);
        rc = DPS_OK;
    }
    ERR_clear_error();
    OPENSSL_free(der);
    return rc;
}

int x509_info_from_cert(X509 *cert, struct x509_info *out, struct dps_error *err)
{
    struct x509_info *info = calloc(1, sizeof(*info));
    struct dps_error sub = {0};
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen;
    int rc;

    if (!info)
        return dps_error_set(err, DPS_ERR_NOMEM, "out of memory");
    rc = x509_info_name_format(X509_get_subject_name(cert), info->subject_name,
                               sizeof(info->subject_name), &sub);
    if (rc) {
        dps_error_set(err, rc, "certificate subject %s", sub.msg);
        goto out;
    }
    rc = x509_info_name_format(X509_get_issuer_name(cert), info->issuer_name,
                               sizeof(info->issuer_name), &sub);
    if (rc) {
        dps_error_set(err, rc, "certificate issuer %s", sub.msg);
        goto out;
    }
    if (X509_digest(cert, EVP_sha1(), md, &mdlen) != 1 || mdlen != 20) {
        rc = dps_error_set(err, DPS_ERR_INTERNAL, "cannot compute the SHA-1 thumbprint");
        goto out;
    }
    hex_upper(md, mdlen, info->sha1_thumbprint);
    if (X509_digest(cert, EVP_sha256(), md, &mdlen) != 1 || mdlen != 32) {
        rc = dps_error_set(err, DPS_ERR_INTERNAL, "cannot compute the SHA-256 thumbprint");
        goto out;
    }
    hex_upper(md, mdlen, info->sha256_thumbprint);
    if (format_time(X509_get0_notBefore(cert), info->not_before_utc,
                    sizeof(info->not_before_utc)) ||
        format_time(X509_get0_notAfter(cert), info->not_after_utc, sizeof(info->not_after_utc))) {
        rc = dps_error_set(err, DPS_ERR_INVAL, "certificate validity time is unreadable");
        goto out;
    }
    rc = format_serial(X509_get0_serialNumber(cert), info->serial_number,
                       sizeof(info->serial_number), err);
    if (rc)
        goto out;
    info->version = (int)X509_get_version(cert) + 1;
    info->is_ca = X509_check_ca(cert) == 1;
    *out = *info;
    rc = DPS_OK;
out:
    ERR_clear_error();
    free(info);
    return rc;
}

int x509_info_parse(const char *text, size_t len, struct x509_info *out, X509 **cert_out,
                    struct dps_error *err)
{
    X509 *cert = NULL;
    int rc;

    rc = x509_info_decode(text, len, &cert, err);
    if (rc)
        return rc;
    rc = x509_info_from_cert(cert, out, err);
    if (rc == DPS_OK && cert_out) {
        *cert_out = cert;
        cert = NULL;
    }
    X509_free(cert);
    return rc;
}

json_t *x509_info_to_json(const struct x509_info *info)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i}", "subjectName", info->subject_name,
                     "sha1Thumbprint", info->sha1_thumbprint, "sha256Thumbprint",
                     info->sha256_thumbprint, "issuerName", info->issuer_name, "notBeforeUtc",
                     info->not_before_utc, "notAfterUtc", info->not_after_utc, "serialNumber",
                     info->serial_number, "version", info->version);
}
