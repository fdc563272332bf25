/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of core/x509_info: the three input encodings, .NET name form,
 * thumbprints and serials (cross-checked with the openssl command), JSON.
 */
#include "core/common.h"
#include "core/pki.h"
#include "core/x509_info.h"

#include <sys/stat.h>

#include <openssl/bn.h>
#include <openssl/pem.h>

#include "../t.h"
#include "tmpdir.h"

static char tmpdir[512];

static EVP_PKEY *ca_key;
static X509 *ca_cert;

/* A certificate for subject signed by the test CA; NULL on failure. */
static X509 *make_cert(const char *subject, enum pki_cert_kind kind)
{
    struct pki_cert_spec spec = {.kind = kind, .subject = subject, .days = 30, .pathlen = -1};
    struct dps_error err = {0};
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;

    if (pki_key_generate(PKI_KEY_P256, &key, &err) == 0 &&
        pki_cert_issue(&spec, key, ca_cert, ca_key, &cert, &err) != 0)
        fprintf(stderr, "  make_cert: %s\n", err.msg);
    EVP_PKEY_free(key);
    return cert;
}

/* Base64 of len bytes, no newlines, in a new buffer. */
static char *b64_of(const unsigned char *in, size_t len)
{
    char *out = malloc(4 * ((len + 2) / 3) + 1);

    if (out)
        EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    return out;
}

/* Runs an openssl command and returns its first output line, newline removed. */
static int run_line(const char *cmd, char *buf, size_t size)
{
    FILE *p = popen(cmd, "r");
    int ok = 0;

    if (!p)
        return 0;
    if (fgets(buf, (int)size, p)) {
        buf[strcspn(buf, "\r\n")] = '\0';
        ok = 1;
    }
    return pclose(p) == 0 && ok;
}

/* "sha256 Fingerprint=AB:CD:..." → "ABCD..." */
static void strip_fingerprint(const char *line, char *out)
{
    const char *p = strchr(line, '=');
    size_t o = 0;

    for (p = p ? p + 1 : line; *p; p++) {
        if (*p != ':')
            out[o++] = *p;
    }
    out[o] = '\0';
}

static void test_fields_against_openssl(void)
{
    X509 *cert = make_cert("CN=device-1,O=Example", PKI_CERT_DEVICE);
    struct x509_info info;
    struct dps_error err = {0};
    char *pem = NULL, path[600], cmd[1400], line[512], want[256];
    FILE *f = NULL;

    ok(cert != NULL);
    pem = pki_cert_pem(cert);
    ok(pem != NULL);
    ok_int(x509_info_parse(pem, strlen(pem), &info, NULL, &err), DPS_OK);
    ok_str(info.subject_name, "O=Example, CN=device-1");
    ok_str(info.issuer_name, "CN=Info Test CA, OU=Azure IoT, O=MSFT, C=US");
    ok_int(info.version, 3);
    ok(!info.is_ca);
    ok_int(strlen(info.sha1_thumbprint), 40);
    ok_int(strlen(info.sha256_thumbprint), 64);
    ok_int(strlen(info.serial_number), 32);
    ok_int(strlen(info.not_before_utc), 20);
    ok(info.not_before_utc[10] == 'T' && info.not_before_utc[19] == 'Z');

    snprintf(path, sizeof(path), "%s/device.pem", tmpdir);
    f = fopen(path, "w");
    ok(f != NULL);
    fputs(pem, f);
    fclose(f);
    f = NULL;
    snprintf(cmd, sizeof(cmd), "openssl x509 -noout -fingerprint -sha256 -in '%s'", path);
    ok(run_line(cmd, line, sizeof(line)));
    strip_fingerprint(line, want);
    ok_str(info.sha256_thumbprint, want);
    snprintf(cmd, sizeof(cmd), "openssl x509 -noout -fingerprint -sha1 -in '%s'", path);
    ok(run_line(cmd, line, sizeof(line)));
    strip_fingerprint(line, want);
    ok_str(info.sha1_thumbprint, want);
    snprintf(cmd, sizeof(cmd), "openssl x509 -noout -serial -in '%s'", path);
    ok(run_line(cmd, line, sizeof(line)));
    ok_str(info.serial_number, strchr(line, '=') + 1);
end:
    if (f)
        fclose(f);
    free(pem);
    X509_free(cert);
}

static void test_three_encodings(void)
{
    X509 *cert = make_cert("CN=enc", PKI_CERT_DEVICE), *back = NULL;
    struct x509_info a, b, c;
    struct dps_error err = {0};
    unsigned char *der = NULL;
    char *pem = NULL, *b64pem = NULL, *b64der = NULL, *wrapped = NULL;
    int dlen;

    ok(cert != NULL);
    pem = pki_cert_pem(cert);
    dlen = i2d_X509(cert, &der);
    ok(pem && dlen > 0);
    b64pem = b64_of((unsigned char *)pem, strlen(pem));
    b64der = b64_of(der, (size_t)dlen);
    ok(b64pem && b64der);
    ok(strncmp(b64pem, "LS0tLS1CRUdJTi", 14) == 0);
    ok_int(x509_info_parse(pem, strlen(pem), &a, &back, &err), DPS_OK);
    ok(back != NULL && X509_cmp(back, cert) == 0);
    ok_int(x509_info_parse(b64pem, strlen(b64pem), &b, NULL, &err), DPS_OK);
    ok_int(x509_info_parse(b64der, strlen(b64der), &c, NULL, &err), DPS_OK);
    ok_str(a.sha256_thumbprint, b.sha256_thumbprint);
    ok_str(a.sha256_thumbprint, c.sha256_thumbprint);
    ok_str(a.subject_name, c.subject_name);
    /* Base64 with line breaks, as a .cer file holds it. */
    wrapped = malloc(strlen(b64der) * 2 + 2);
    ok(wrapped != NULL);
    {
        size_t o = 0;

        for (size_t i = 0; b64der[i]; i++) {
            wrapped[o++] = b64der[i];
            if (i % 64 == 63)
                wrapped[o++] = '\n';
        }
        wrapped[o] = '\0';
    }
    ok_int(x509_info_parse(wrapped, strlen(wrapped), &c, NULL, &err), DPS_OK);
    ok_str(a.sha256_thumbprint, c.sha256_thumbprint);
end:
    free(wrapped);
    free(pem);
    free(b64pem);
    free(b64der);
    OPENSSL_free(der);
    X509_free(back);
    X509_free(cert);
}

static void test_bad_input(void)
{
    struct x509_info info;
    struct dps_error err = {0};
    X509 *cert = NULL;
    char *big = NULL;
    static const char bad_pem[] = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    ok_int(x509_info_parse("", 0, &info, NULL, &err), DPS_ERR_INVAL);
    ok_str(err.msg, "certificate is empty");
    ok_int(x509_info_parse("not base64 !!", 13, &info, NULL, &err), DPS_ERR_INVAL);
    ok(strstr(err.msg, "neither PEM nor base64") != NULL);
    ok_int(x509_info_parse("AAAA", 4, &info, NULL, &err), DPS_ERR_INVAL);
    ok_str(err.msg, "DER certificate is malformed");
    ok_int(x509_info_parse(bad_pem, strlen(bad_pem), &info, NULL, &err), DPS_ERR_INVAL);
    /* Base64 of "-----BEGIN garbage" */
    ok_int(x509_info_parse("LS0tLS1CRUdJTiBnYXJiYWdl", 24, &info, NULL, &err), DPS_ERR_INVAL);
    ok(strstr(err.msg, "no readable certificate") != NULL);
    big = malloc(X509_INFO_INPUT_MAX + 1);
    ok(big != NULL);
    memset(big, 'A', X509_INFO_INPUT_MAX + 1);
    ok_int(x509_info_decode(big, X509_INFO_INPUT_MAX + 1, &cert, &err), DPS_ERR_TOO_LARGE);
    ok(cert == NULL);
end:
    free(big);
    X509_free(cert);
}

static void test_dotnet_names(void)
{
    X509_NAME *name = X509_NAME_new();
    struct dps_error err = {0};
    char buf[256], small[8];

    ok(name != NULL);
    ok(X509_NAME_add_entry_by_txt(name, "C", MBSTRING_ASC, (const unsigned char *)"US", -1, -1, 0));
    ok(X509_NAME_add_entry_by_txt(name, "ST", MBSTRING_ASC, (const unsigned char *)"WA", -1, -1,
                                  0));
    ok(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"Example, Inc.",
                                  -1, -1, 0));
    ok(X509_NAME_add_entry_by_txt(name, "OU", MBSTRING_ASC, (const unsigned char *)"a \"b\"", -1,
                                  -1, 0));
    /* set -1 adds to the previous RDN: a multi-valued RDN. */
    ok(X509_NAME_add_entry_by_txt(name, "UID", MBSTRING_ASC, (const unsigned char *)"u1", -1, -1,
                                  -1));
    ok(X509_NAME_add_entry_by_txt(name, "emailAddress", MBSTRING_ASC,
                                  (const unsigned char *)"x@example.test", -1, -1, 0));
    ok(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                  (const unsigned char *)"D\xc3\xa9vice ", -1, -1, 0));
    ok_int(x509_info_name_format(name, buf, sizeof(buf), &err), DPS_OK);
    ok_str(buf, "CN=\"D\xc3\xa9vice \", E=x@example.test, OID.0.9.2342.19200300.100.1.1=u1 + "
                "OU=\"a \"\"b\"\"\", O=\"Example, Inc.\", S=WA, C=US");
    ok_int(x509_info_name_format(name, small, sizeof(small), &err), DPS_ERR_INVAL);
    ok(strstr(err.msg, "longer than 7") != NULL);
end:
    X509_NAME_free(name);
}

static void test_serial_leading_zero_and_ca(void)
{
    X509 *cert = make_cert("CN=serial", PKI_CERT_DEVICE);
    BIGNUM *bn = NULL;
    ASN1_INTEGER *serial = NULL;
    struct x509_info info;
    struct dps_error err = {0};

    ok(cert != NULL);
    ok(BN_hex2bn(&bn, "8A0102") > 0);
    serial = BN_to_ASN1_INTEGER(bn, NULL);
    ok(serial && X509_set_serialNumber(cert, serial));
    ok(X509_sign(cert, ca_key, EVP_sha256()) > 0);
    ok_int(x509_info_from_cert(cert, &info, &err), DPS_OK);
    /* The DER content keeps its sign byte, as .NET shows it. */
    ok_str(info.serial_number, "008A0102");
    ok_int(x509_info_from_cert(ca_cert, &info, &err), DPS_OK);
    ok(info.is_ca);
    ok_str(info.subject_name, info.issuer_name);
end:
    BN_free(bn);
    ASN1_INTEGER_free(serial);
    X509_free(cert);
}

static void test_json(void)
{
    X509 *cert = make_cert("CN=json", PKI_CERT_DEVICE);
    struct x509_info info;
    struct dps_error err = {0};
    json_t *j = NULL;

    ok(cert != NULL);
    ok_int(x509_info_from_cert(cert, &info, &err), DPS_OK);
    j = x509_info_to_json(&info);
    ok(j != NULL);
    ok_int(json_object_size(j), 8);
    ok_str(json_string_value(json_object_get(j, "subjectName")), "CN=json");
    ok_str(json_string_value(json_object_get(j, "sha1Thumbprint")), info.sha1_thumbprint);
    ok_str(json_string_value(json_object_get(j, "sha256Thumbprint")), info.sha256_thumbprint);
    ok_str(json_string_value(json_object_get(j, "issuerName")), info.issuer_name);
    ok_str(json_string_value(json_object_get(j, "notBeforeUtc")), info.not_before_utc);
    ok_str(json_string_value(json_object_get(j, "notAfterUtc")), info.not_after_utc);
    ok_str(json_string_value(json_object_get(j, "serialNumber")), info.serial_number);
    ok_int(json_integer_value(json_object_get(j, "version")), 3);
end:
    json_decref(j);
    X509_free(cert);
}

int main(void)
{
    struct pki_cert_spec spec = {.kind = PKI_CERT_ROOT_CA,
                                 .subject = "C=US,O=MSFT,OU=Azure IoT,CN=Info Test CA",
                                 .days = 30,
                                 .pathlen = -1};
    struct dps_error err = {0};
    int rc;

    test_tmpdir(tmpdir, sizeof(tmpdir), "x509info");
    if (pki_key_generate(PKI_KEY_P256, &ca_key, &err) ||
        pki_cert_issue(&spec, ca_key, NULL, NULL, &ca_cert, &err)) {
        fprintf(stderr, "cannot make the test CA: %s\n", err.msg);
        return 1;
    }
    subtest("fields against openssl", test_fields_against_openssl);
    subtest("three encodings", test_three_encodings);
    subtest("bad input", test_bad_input);
    subtest(".NET names", test_dotnet_names);
    subtest("serial sign byte and CA flag", test_serial_leading_zero_and_ca);
    subtest("json", test_json);
    rc = t_done();
    X509_free(ca_cert);
    EVP_PKEY_free(ca_key);
    return rc;
}
