/* SPDX-License-Identifier: MIT */
/* Unit tests of core/pki: key generation, issuance, extensions and PEM file I/O. */
#include "core/common.h"
#include "core/pki.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "../t.h"
#include "tmpdir.h"

static char tmpdir[512];

static void tmp_path(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", tmpdir, name);
}

/* A root, an intermediate and a leaf of the given kind, all with fresh keys. */
struct chain {
    EVP_PKEY *root_key, *int_key, *leaf_key;
    X509 *root, *inter, *leaf;
};

static void chain_free(struct chain *c)
{
    EVP_PKEY_free(c->root_key);
    EVP_PKEY_free(c->int_key);
    EVP_PKEY_free(c->leaf_key);
    X509_free(c->root);
    X509_free(c->inter);
    X509_free(c->leaf);
    memset(c, 0, sizeof(*c));
}

static int chain_make(struct chain *c, enum pki_key_type type, enum pki_cert_kind leaf_kind)
{
    struct pki_cert_spec root = {
        .kind = PKI_CERT_ROOT_CA, .subject = "CN=Test Root,O=dpsd", .days = 3650, .pathlen = -1};
    struct pki_cert_spec inter = {.kind = PKI_CERT_INTERMEDIATE_CA,
                                  .subject = "CN=Test Intermediate",
                                  .days = 1825,
                                  .pathlen = 0};
    struct pki_cert_spec leaf = {.kind = leaf_kind, .subject = "CN=device-1", .days = 365};
    struct dps_error err = {0};

    memset(c, 0, sizeof(*c));
    if (pki_key_generate(type, &c->root_key, &err) || pki_key_generate(type, &c->int_key, &err) ||
        pki_key_generate(type, &c->leaf_key, &err) ||
        pki_cert_issue(&root, c->root_key, NULL, NULL, &c->root, &err) ||
        pki_cert_issue(&inter, c->int_key, c->root, c->root_key, &c->inter, &err) ||
        pki_cert_issue(&leaf, c->leaf_key, c->inter, c->int_key, &c->leaf, &err)) {
        fprintf(stderr, "  chain_make: %s\n", err.msg);
        return -1;
    }
    return 0;
}

/* Verifies leaf against root with inter untrusted; returns the X509 verify error. */
static int verify(X509 *root, X509 *inter, X509 *leaf, int purpose)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    int result = -1;

    if (!store || !ctx || !untrusted)
        goto end;
    X509_STORE_add_cert(store, root);
    if (inter)
        sk_X509_push(untrusted, inter);
    X509_STORE_CTX_init(ctx, store, leaf, untrusted);
    if (purpose)
        X509_STORE_CTX_set_purpose(ctx, purpose);
    result = X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
end:
    sk_X509_free(untrusted);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return result;
}

static void test_key_type_parse(void)
{
    enum pki_key_type t = PKI_KEY_RSA4096;

    ok(pki_key_type_parse("p256", &t) == 0 && t == PKI_KEY_P256);
    ok(pki_key_type_parse("p384", &t) == 0 && t == PKI_KEY_P384);
    ok(pki_key_type_parse("rsa2048", &t) == 0 && t == PKI_KEY_RSA2048);
    ok(pki_key_type_parse("rsa4096", &t) == 0 && t == PKI_KEY_RSA4096);
    ok(pki_key_type_parse("P256", &t) == -1 && t == PKI_KEY_RSA4096);
    ok(pki_key_type_parse("", &t) == -1);
    ok(pki_key_type_parse(NULL, &t) == -1);
    ok_str(pki_key_type_name(PKI_KEY_P384), "p384");
end:;
}

static void test_subject_parse(void)
{
    struct dps_error err = {0};
    X509_NAME *name = NULL;
    char buf[256];

    ok_int(pki_subject_parse(" CN = Root , O=Example\\, Inc.,C=US", &name, &err), DPS_OK);
    ok_int(X509_NAME_entry_count(name), 3);
    X509_NAME_oneline(name, buf, sizeof(buf));
    ok_str(buf, "/CN=Root/O=Example, Inc./C=US");
    X509_NAME_free(name);
    name = NULL;

    ok_int(pki_subject_parse("CN=x,XX=y", &name, &err), DPS_ERR_INVAL);
    ok(strstr(err.msg, "unknown attribute 'XX'") != NULL);
    ok(name == NULL);
    ok_int(pki_subject_parse("CN", &name, &err), DPS_ERR_INVAL);
    ok(strstr(err.msg, "without '='") != NULL);
    ok_int(pki_subject_parse("CN=", &name, &err), DPS_ERR_INVAL);
    ok(strstr(err.msg, "empty value for 'CN'") != NULL);
    ok_int(pki_subject_parse("", &name, &err), DPS_ERR_INVAL);
    ok_int(pki_subject_parse("CN=a,", &name, &err), DPS_ERR_INVAL);
    ok_int(pki_subject_parse("=a", &name, &err), DPS_ERR_INVAL);
    ok_int(pki_subject_parse("C=USA", &name, &err), DPS_ERR_INVAL);
    ok(name == NULL);
end:
    X509_NAME_free(name);
}

static void test_chain_all_key_types(void)
{
    static const enum pki_key_type types[] = {PKI_KEY_P256, PKI_KEY_P384, PKI_KEY_RSA2048};
    struct chain c = {0};

    for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
        ok(chain_make(&c, types[i], PKI_CERT_DEVICE) == 0);
        ok_int(verify(c.root, c.inter, c.leaf, X509_PURPOSE_SSL_CLIENT), X509_V_OK);
        /* The leaf must not verify as a TLS server certificate. */
        ok(verify(c.root, c.inter, c.leaf, X509_PURPOSE_SSL_SERVER) != X509_V_OK);
        ok_int(X509_get_signature_nid(c.leaf), types[i] == PKI_KEY_P384 ? NID_ecdsa_with_SHA384
                                               : types[i] == PKI_KEY_P256
                                                   ? NID_ecdsa_with_SHA256
                                                   : NID_sha256WithRSAEncryption);
        chain_free(&c);
    }
end:
    chain_free(&c);
}

static void test_extensions(void)
{
    struct chain c = {0};
    const ASN1_INTEGER *s1, *s2;

    ok(chain_make(&c, PKI_KEY_P256, PKI_CERT_DEVICE) == 0);
    ok_int(X509_get_version(c.root), X509_VERSION_3);
    ok(X509_check_ca(c.root) == 1);
    ok(X509_check_ca(c.inter) == 1);
    ok(X509_check_ca(c.leaf) == 0);
    ok_int(X509_get_pathlen(c.inter), 0);
    ok_int(X509_get_pathlen(c.root), -1);
    ok(X509_get_key_usage(c.root) == (KU_KEY_CERT_SIGN | KU_CRL_SIGN));
    ok(X509_get_key_usage(c.leaf) == KU_DIGITAL_SIGNATURE);
    ok(X509_get_extended_key_usage(c.leaf) == XKU_SSL_CLIENT);
    ok(X509_get0_subject_key_id(c.leaf) != NULL);
    ok(X509_get0_authority_key_id(c.leaf) != NULL);
    ok(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(c.leaf),
                             X509_get0_subject_key_id(c.inter)) == 0);
    ok(X509_get_extension_flags(c.root) & EXFLAG_SS);
    /* basicConstraints is critical on both. */
    ok(X509_EXTENSION_get_critical(
           X509_get_ext(c.root, X509_get_ext_by_NID(c.root, NID_basic_constraints, -1))) == 1);
    ok(X509_EXTENSION_get_critical(
           X509_get_ext(c.leaf, X509_get_ext_by_NID(c.leaf, NID_basic_constraints, -1))) == 1);
    /* 128-bit positive serials, different per certificate. */
    s1 = X509_get0_serialNumber(c.root);
    s2 = X509_get0_serialNumber(c.leaf);
    ok_int(ASN1_STRING_length(s1), 16);
    ok(ASN1_STRING_type(s1) == V_ASN1_INTEGER);
    ok(ASN1_INTEGER_cmp(s1, s2) != 0);
    /* Backdated notBefore. */
    ok(X509_cmp_current_time(X509_get0_notBefore(c.leaf)) < 0);
    chain_free(&c);

    ok(chain_make(&c, PKI_KEY_RSA2048, PKI_CERT_DEVICE) == 0);
    ok(X509_get_key_usage(c.leaf) == (KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT));
end:
    chain_free(&c);
}

static void test_server_sans(void)
{
    static const char *const dns[] = {"dps.example.test", "localhost"};
    static const char *const ips[] = {"127.0.0.1", "::1"};
    struct pki_cert_spec ca = {.kind = PKI_CERT_ROOT_CA, .subject = "CN=Dev CA", .days = 30};
    struct pki_cert_spec srv = {.kind = PKI_CERT_SERVER,
                                .subject = "CN=dps.example.test",
                                .days = 30,
                                .dns_names = dns,
                                .n_dns_names = 2,
                                .ip_addresses = ips,
                                .n_ip_addresses = 2};
    static const char *const bad_dns[] = {"a b"};
    static const char *const bad_ip[] = {"300.1.1.1"};
    struct dps_error err = {0};
    EVP_PKEY *ca_key = NULL, *key = NULL;
    X509 *ca_cert = NULL, *cert = NULL, *bad = NULL;

    ok(pki_key_generate(PKI_KEY_P256, &ca_key, &err) == 0);
    ok(pki_key_generate(PKI_KEY_P256, &key, &err) == 0);
    ok(pki_cert_issue(&ca, ca_key, NULL, ca_key, &ca_cert, &err) == 0);
    ok(pki_cert_issue(&srv, key, ca_cert, ca_key, &cert, &err) == 0);
    ok(X509_check_host(cert, "localhost", 0, 0, NULL) == 1);
    ok(X509_check_host(cert, "dps.example.test", 0, 0, NULL) == 1);
    ok(X509_check_host(cert, "other.test", 0, 0, NULL) == 0);
    ok(X509_check_ip_asc(cert, "127.0.0.1", 0) == 1);
    ok(X509_check_ip_asc(cert, "::1", 0) == 1);
    ok(X509_get_extended_key_usage(cert) == XKU_SSL_SERVER);
    ok_int(verify(ca_cert, NULL, cert, X509_PURPOSE_SSL_SERVER), X509_V_OK);

    srv.dns_names = bad_dns;
    srv.n_dns_names = 1;
    ok_int(pki_cert_issue(&srv, key, ca_cert, ca_key, &bad, &err), DPS_ERR_INVAL);
    ok(strstr(err.msg, "'a b'") != NULL);
    srv.n_dns_names = 0;
    srv.ip_addresses = bad_ip;
    srv.n_ip_addresses = 1;
    ok_int(pki_cert_issue(&srv, key, ca_cert, ca_key, &bad, &err), DPS_ERR_INVAL);
    ok(strstr(err.msg, "'300.1.1.1'") != NULL);
    ok(bad == NULL);
end:
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(key);
    X509_free(ca_cert);
    X509_free(cert);
    X509_free(bad);
}

static void test_issue_errors(void)
{
    struct chain c = {0};
    struct pki_cert_spec leaf = {.kind = PKI_CERT_DEVICE, .subject = "CN=x", .days = 10};
    struct dps_error err = {0};
    X509 *out = NULL;

    ok(chain_make(&c, PKI_KEY_P256, PKI_CERT_DEVICE) == 0);
    /* A leaf cannot sign. */
    ok_int(pki_cert_issue(&leaf, c.leaf_key, c.leaf, c.leaf_key, &out, &err), DPS_ERR_INVAL);
    ok(strstr(err.msg, "not a CA") != NULL);
    /* The issuer key must match the issuer certificate. */
    ok_int(pki_cert_issue(&leaf, c.leaf_key, c.root, c.int_key, &out, &err), DPS_ERR_INVAL);
    ok(strstr(err.msg, "does not match") != NULL);
    leaf.days = 0;
    ok_int(pki_cert_issue(&leaf, c.leaf_key, c.root, c.root_key, &out, &err), DPS_ERR_INVAL);
    leaf.days = 10;
    leaf.subject = "CN";
    ok_int(pki_cert_issue(&leaf, c.leaf_key, c.root, c.root_key, &out, &err), DPS_ERR_INVAL);
    ok(out == NULL);
    /* Validity is capped at the issuer's. */
    leaf.subject = "CN=long";
    leaf.days = 36000;
    ok_int(pki_cert_issue(&leaf, c.leaf_key, c.inter, c.int_key, &out, &err), DPS_OK);
    ok(ASN1_TIME_compare(X509_get0_notAfter(out), X509_get0_notAfter(c.inter)) == 0);
end:
    X509_free(out);
    chain_free(&c);
}

static void test_key_files(void)
{
    struct dps_error err = {0};
    EVP_PKEY *key = NULL, *other = NULL, *back = NULL;
    char path[600];
    struct stat st;

    tmp_path(path, sizeof(path), "k.key");
    ok(pki_key_generate(PKI_KEY_P256, &key, &err) == 0);
    ok(pki_key_generate(PKI_KEY_P256, &other, &err) == 0);
    ok_int(pki_key_write(path, key, NULL, 0, &err), DPS_OK);
    ok(stat(path, &st) == 0);
    ok_int(st.st_mode & 0777, 0600);
    ok_int(pki_key_write(path, other, NULL, 0, &err), DPS_ERR_EXISTS);
    ok(strstr(err.msg, path) != NULL);
    ok_int(pki_key_read(path, NULL, &back, &err), DPS_OK);
    ok(EVP_PKEY_eq(back, key) == 1);
    EVP_PKEY_free(back);
    back = NULL;
    ok_int(pki_key_write(path, other, NULL, PKI_FORCE, &err), DPS_OK);
    ok(stat(path, &st) == 0);
    ok_int(st.st_mode & 0777, 0600);
    ok_int(pki_key_read(path, NULL, &back, &err), DPS_OK);
    ok(EVP_PKEY_eq(back, other) == 1);
    EVP_PKEY_free(back);
    back = NULL;

    tmp_path(path, sizeof(path), "enc.key");
    ok_int(pki_key_write(path, key, "correct horse", 0, &err), DPS_OK);
    ok_int(pki_key_read(path, NULL, &back, &err), DPS_ERR_AUTH);
    ok(strstr(err.msg, "encrypted") != NULL);
    ok_int(pki_key_read(path, "wrong", &back, &err), DPS_ERR_AUTH);
    ok(strstr(err.msg, "wrong passphrase") != NULL);
    ok(back == NULL);
    ok_int(pki_key_read(path, "correct horse", &back, &err), DPS_OK);
    ok(EVP_PKEY_eq(back, key) == 1);

    tmp_path(path, sizeof(path), "missing.key");
    ok_int(pki_key_read(path, NULL, &other, &err), DPS_ERR_NOT_FOUND);
    tmp_path(path, sizeof(path), "no/such/dir.key");
    ok_int(pki_key_write(path, key, NULL, 0, &err), DPS_ERR_IO);
end:
    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
    EVP_PKEY_free(back);
}

static void test_cert_files(void)
{
    struct chain c = {0};
    struct dps_error err = {0};
    STACK_OF(X509) *certs = NULL;
    char path[600];
    FILE *f = NULL;

    ok(chain_make(&c, PKI_KEY_P256, PKI_CERT_DEVICE) == 0);
    tmp_path(path, sizeof(path), "chain.pem");
    {
        X509 *list[] = {c.leaf, c.inter};

        ok_int(pki_certs_write(path, list, 2, 0, &err), DPS_OK);
        ok_int(pki_certs_write(path, list, 2, 0, &err), DPS_ERR_EXISTS);
        ok_int(pki_certs_write(path, list, 0, PKI_FORCE, &err), DPS_ERR_INVAL);
    }
    ok_int(pki_certs_read(path, &certs, &err), DPS_OK);
    ok_int(sk_X509_num(certs), 2);
    ok(X509_cmp(sk_X509_value(certs, 0), c.leaf) == 0);
    ok(X509_cmp(sk_X509_value(certs, 1), c.inter) == 0);
    sk_X509_pop_free(certs, X509_free);
    certs = NULL;

    tmp_path(path, sizeof(path), "garbage.pem");
    f = fopen(path, "w");
    ok(f != NULL);
    fputs("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", f);
    fclose(f);
    f = NULL;
    ok_int(pki_certs_read(path, &certs, &err), DPS_ERR_INVAL);
    ok(strstr(err.msg, "malformed") != NULL);
    tmp_path(path, sizeof(path), "empty.pem");
    f = fopen(path, "w");
    ok(f != NULL);
    fclose(f);
    f = NULL;
    ok_int(pki_certs_read(path, &certs, &err), DPS_ERR_INVAL);
    ok(certs == NULL);
end:
    if (f)
        fclose(f);
    sk_X509_pop_free(certs, X509_free);
    chain_free(&c);
}

/* One certificate as PEM text: one block that reads back as the same certificate. */
static void test_cert_pem(void)
{
    struct chain c = {0};
    char *pem = NULL;
    BIO *b = NULL;
    X509 *back = NULL;

    ok(chain_make(&c, PKI_KEY_P256, PKI_CERT_DEVICE) == 0);
    pem = pki_cert_pem(c.leaf);
    ok(pem != NULL);
    ok(strncmp(pem, "-----BEGIN CERTIFICATE-----\n", 28) == 0);
    ok(strstr(pem, "-----END CERTIFICATE-----\n") == pem + strlen(pem) - 26);
    ok(strstr(pem + 1, "-----BEGIN") == NULL);
    b = BIO_new_mem_buf(pem, -1);
    ok(b && (back = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL);
    ok(X509_cmp(back, c.leaf) == 0);
    ok(X509_cmp(back, c.inter) != 0);
end:
    X509_free(back);
    BIO_free(b);
    free(pem);
    chain_free(&c);
}

int main(void)
{
    test_tmpdir(tmpdir, sizeof(tmpdir), "pki");
    subtest("key type parse", test_key_type_parse);
    subtest("subject parse", test_subject_parse);
    subtest("chain for every key type", test_chain_all_key_types);
    subtest("extensions", test_extensions);
    subtest("server certificate SANs", test_server_sans);
    subtest("issue errors", test_issue_errors);
    subtest("key files", test_key_files);
    subtest("certificate files", test_cert_files);
    subtest("certificate as PEM text", test_cert_pem);
    return t_done();
}
