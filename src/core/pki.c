/* SPDX-License-Identifier: MIT */
/*
 * Keys, certificate issuance and PEM files for test PKIs and dpsd's
 * development TLS CA. Files are written to a temporary name and linked or
 * renamed into place, so a reader never sees half a key.
 */
#include "core/common.h"
#include "core/pki.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#define PKI_DAYS_MAX 36500
#define PKI_BACKDATE_SECONDS 300
#define PKI_DNS_NAME_MAX 253

static const struct {
    const char *name;
    enum pki_key_type type;
} key_types[] = {
    {"p256", PKI_KEY_P256},
    {"p384", PKI_KEY_P384},
    {"rsa2048", PKI_KEY_RSA2048},
    {"rsa4096", PKI_KEY_RSA4096},
};

/* The last OpenSSL error as text for a message; clears the queue. */
static const char *ssl_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;

    ERR_clear_error();
    return r ? r : "unknown openssl error";
}

int pki_key_type_parse(const char *name, enum pki_key_type *out)
{
    for (size_t i = 0; name && i < ARRAY_SIZE(key_types); i++) {
        if (!strcmp(name, key_types[i].name)) {
            *out = key_types[i].type;
            return 0;
        }
    }
    return -1;
}

const char *pki_key_type_name(enum pki_key_type t)
{
    for (size_t i = 0; i < ARRAY_SIZE(key_types); i++) {
        if (key_types[i].type == t)
            return key_types[i].name;
    }
    return "unknown";
}

int pki_key_generate(enum pki_key_type type, EVP_PKEY **out, struct dps_error *err)
{
    EVP_PKEY *key = NULL;

    switch (type) {
    case PKI_KEY_P256:
        key = EVP_EC_gen("P-256");
        break;
    case PKI_KEY_P384:
        key = EVP_EC_gen("P-384");
        break;
    case PKI_KEY_RSA2048:
        key = EVP_RSA_gen(2048);
        break;
    case PKI_KEY_RSA4096:
        key = EVP_RSA_gen(4096);
        break;
    default:
        return dps_error_set(err, DPS_ERR_INVAL, "unknown key type %d", (int)type);
    }
    if (!key)
        return dps_error_set(err, DPS_ERR_INTERNAL, "cannot generate a %s key: %s",
                             pki_key_type_name(type), ssl_reason());
    *out = key;
    return DPS_OK;
}

/* Trims spaces at both ends of [*s, *e). */
static void trim(const char **s, const char **e)
{
    while (*s < *e && (**s == ' ' || **s == '\t'))
        (*s)++;
    while (*e > *s && ((*e)[-1] == ' ' || (*e)[-1] == '\t'))
        (*e)--;
}

/*
 * Adds one "attr=value" part, [s, e), to name. The value may hold backslash
 * escapes, which are removed here.
 */
static int subject_add_part(X509_NAME *name, const char *s, const char *e, const char *subject,
                            struct dps_error *err)
{
    char attr[64], value[PKI_SUBJECT_MAX + 1];
    const char *eq = memchr(s, '=', (size_t)(e - s));
    const char *as = s, *ae, *vs, *ve;
    size_t n = 0;
    int nid;

    if (!eq)
        return dps_error_set(err, DPS_ERR_INVAL, "subject '%s' has a part without '='", subject);
    ae = eq;
    trim(&as, &ae);
    if (as == ae || (size_t)(ae - as) >= sizeof(attr))
        return dps_error_set(err, DPS_ERR_INVAL, "subject '%s' has a part without attribute name",
                             subject);
    memcpy(attr, as, (size_t)(ae - as));
    attr[ae - as] = '\0';
    nid = OBJ_txt2nid(attr);
    if (nid == NID_undef)
        return dps_error_set(err, DPS_ERR_INVAL, "subject '%s' has unknown attribute '%s'", subject,
                             attr);
    vs = eq + 1;
    ve = e;
    trim(&vs, &ve);
    for (const char *p = vs; p < ve; p++) {
        if (*p == '\\' && p + 1 < ve)
            p++;
        value[n++] = *p;
    }
    value[n] = '\0';
    if (n == 0)
        return dps_error_set(err, DPS_ERR_INVAL, "subject '%s' has an empty value for '%s'",
                             subject, attr);
    if (!X509_NAME_add_entry_by_NID(name, nid, MBSTRING_UTF8, (const unsigned char *)value, (int)n,
                                    -1, 0))
        return dps_error_set(err, DPS_ERR_INVAL, "subject '%s': invalid value for '%s': %s",
                             subject, attr, ssl_reason());
    return DPS_OK;
}

int pki_subject_parse(const char *subject, X509_NAME **out, struct dps_error *err)
{
    X509_NAME *name = NULL;
    size_t len = subject ? strnlen(subject, PKI_SUBJECT_MAX + 1) : 0;
    const char *s, *end;
    int rc;

    if (len == 0)
        return dps_error_set(err, DPS_ERR_INVAL, "subject is empty");
    if (len > PKI_SUBJECT_MAX)
        return dps_error_set(err, DPS_ERR_INVAL, "subject is longer than %d characters",
                             PKI_SUBJECT_MAX);
    name = X509_NAME_new();
    if (!name)
        return dps_error_set(err, DPS_ERR_NOMEM, "out of memory");
    s = subject;
    end = subject + len;
    while (s < end) {
        const char *p = s;

        while (p < end && *p != ',') {
            if (*p == '\\' && p + 1 < end)
                p++;
            p++;
        }
        rc = subject_add_part(name, s, p, subject, err);
        if (rc)
            goto out;
        s = p < end ? p + 1 : p;
        if (p < end && s == end) {
            rc = dps_error_set(err, DPS_ERR_INVAL, "subject '%s' ends with ','", subject);
            goto out;
        }
    }
    *out = name;
    name = NULL;
    rc = DPS_OK;
out:
    X509_NAME_free(name);
    return rc;
}

/* A random positive 128-bit serial whose top byte is non-zero, so its length is fixed. */
static int set_serial(X509 *cert)
{
    unsigned char buf[16];
    BIGNUM *bn = NULL;
    ASN1_INTEGER *serial = NULL;
    int ok = 0;

    if (RAND_bytes(buf, sizeof(buf)) != 1)
        return 0;
    buf[0] = (unsigned char)((buf[0] & 0x7f) | 0x40);
    bn = BN_bin2bn(buf, sizeof(buf), NULL);
    if (bn)
        serial = BN_to_ASN1_INTEGER(bn, NULL);
    if (serial)
        ok = X509_set_serialNumber(cert, serial);
    ASN1_INTEGER_free(serial);
    BN_free(bn);
    return ok;
}

static int add_ext(X509 *cert, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    int ok;

    if (!ext)
        return 0;
    ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

static int dns_name_valid(const char *s)
{
    size_t n = strnlen(s, PKI_DNS_NAME_MAX + 1);

    if (n == 0 || n > PKI_DNS_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (!(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') && !(c >= '0' && c <= '9') &&
            c != '-' && c != '.' && c != '*' && c != '_')
            return 0;
    }
    return 1;
}

/* Builds the subjectAltName extension from spec's lists, without going through config text. */
static int add_san(X509 *cert, const struct pki_cert_spec *spec, struct dps_error *err)
{
    GENERAL_NAMES *names = sk_GENERAL_NAME_new_null();
    int rc = DPS_ERR_NOMEM;

    if (!names)
        return dps_error_set(err, DPS_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < spec->n_dns_names; i++) {
        const char *dns = spec->dns_names[i];
        GENERAL_NAME *gn;
        ASN1_IA5STRING *ia5;

        if (!dns || !dns_name_valid(dns)) {
            rc =
                dps_error_set(err, DPS_ERR_INVAL, "subject alternative name '%s' is not a DNS name",
                              dns ? dns : "(null)");
            goto out;
        }
        gn = GENERAL_NAME_new();
        ia5 = ASN1_IA5STRING_new();
        if (!gn || !ia5 || !ASN1_STRING_set(ia5, dns, (int)strlen(dns))) {
            GENERAL_NAME_free(gn);
            ASN1_IA5STRING_free(ia5);
            goto nomem;
        }
        GENERAL_NAME_set0_value(gn, GEN_DNS, ia5);
        if (!sk_GENERAL_NAME_push(names, gn)) {
            GENERAL_NAME_free(gn);
            goto nomem;
        }
    }
    for (size_t i = 0; i < spec->n_ip_addresses; i++) {
        const char *ip = spec->ip_addresses[i];
        ASN1_OCTET_STRING *oct = ip ? a2i_IPADDRESS(ip) : NULL;
        GENERAL_NAME *gn;

        if (!oct) {
            ERR_clear_error();
            rc = dps_error_set(err, DPS_ERR_INVAL,
                               "subject alternative name '%s' is not an IP address",
                               ip ? ip : "(null)");
            goto out;
        }
        gn = GENERAL_NAME_new();
        if (!gn) {
            ASN1_OCTET_STRING_free(oct);
            goto nomem;
        }
        GENERAL_NAME_set0_value(gn, GEN_IPADD, oct);
        if (!sk_GENERAL_NAME_push(names, gn)) {
            GENERAL_NAME_free(gn);
            goto nomem;
        }
    }
    if (sk_GENERAL_NAME_num(names) > 0 &&
        X509_add1_ext_i2d(cert, NID_subject_alt_name, names, 0, X509V3_ADD_DEFAULT) != 1) {
        rc = dps_error_set(err, DPS_ERR_INTERNAL, "cannot add subject alternative names: %s",
                           ssl_reason());
        goto out;
    }
    rc = DPS_OK;
    goto out;
nomem:
    rc = dps_error_set(err, DPS_ERR_NOMEM, "out of memory");
out:
    GENERAL_NAMES_free(names);
    return rc;
}

static const EVP_MD *digest_for(EVP_PKEY *signing_key)
{
    if (EVP_PKEY_is_a(signing_key, "EC") && EVP_PKEY_get_bits(signing_key) >= 384)
        return EVP_sha384();
    return EVP_sha256();
}

/* The extensions of each kind, in the order they appear in the certificate. */
static int add_kind_exts(X509 *cert, X509V3_CTX *ctx, const struct pki_cert_spec *spec,
                         EVP_PKEY *subject_key)
{
    int rsa = EVP_PKEY_is_a(subject_key, "RSA");
    char bc[64];

    switch (spec->kind) {
    case PKI_CERT_ROOT_CA:
    case PKI_CERT_INTERMEDIATE_CA:
        if (spec->kind == PKI_CERT_INTERMEDIATE_CA && spec->pathlen >= 0)
            snprintf(bc, sizeof(bc), "critical,CA:TRUE,pathlen:%d", spec->pathlen);
        else
            snprintf(bc, sizeof(bc), "critical,CA:TRUE");
        return add_ext(cert, ctx, NID_basic_constraints, bc) &&
               add_ext(cert, ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
    case PKI_CERT_DEVICE:
    case PKI_CERT_SERVER:
    case PKI_CERT_VERIFICATION:
        return add_ext(cert, ctx, NID_basic_constraints, "critical,CA:FALSE") &&
               add_ext(cert, ctx, NID_key_usage,
                       rsa ? "critical,digitalSignature,keyEncipherment"
                           : "critical,digitalSignature") &&
               add_ext(cert, ctx, NID_ext_key_usage,
                       spec->kind == PKI_CERT_SERVER ? "serverAuth" : "clientAuth");
    }
    return 0;
}

/* notBefore and notAfter from spec: explicit instants when given, else relative to now. */
static int set_validity(X509 *cert, const struct pki_cert_spec *spec)
{
    if (spec->not_before) {
        if (!ASN1_TIME_set(X509_getm_notBefore(cert), (time_t)spec->not_before))
            return 0;
    } else if (!X509_gmtime_adj(X509_getm_notBefore(cert), -PKI_BACKDATE_SECONDS)) {
        return 0;
    }
    if (spec->not_after)
        return ASN1_TIME_set(X509_getm_notAfter(cert), (time_t)spec->not_after) != NULL;
    if (spec->not_before)
        return ASN1_TIME_set(X509_getm_notAfter(cert),
                             (time_t)(spec->not_before + (int64_t)spec->days * 86400)) != NULL;
    return X509_time_adj_ex(X509_getm_notAfter(cert), spec->days, 0, NULL) != NULL;
}

int pki_cert_issue(const struct pki_cert_spec *spec, EVP_PKEY *subject_key, X509 *issuer,
                   EVP_PKEY *issuer_key, X509 **out, struct dps_error *err)
{
    X509 *cert = NULL;
    X509_NAME *name = NULL;
    X509V3_CTX ctx;
    int rc;

    if (spec->days < 1 || spec->days > PKI_DAYS_MAX)
        return dps_error_set(err, DPS_ERR_INVAL, "validity of %d days is outside 1..%d", spec->days,
                             PKI_DAYS_MAX);
    if (spec->kind < PKI_CERT_ROOT_CA || spec->kind > PKI_CERT_VERIFICATION)
        return dps_error_set(err, DPS_ERR_INVAL, "unknown certificate kind %d", (int)spec->kind);
    if (!subject_key)
        return dps_error_set(err, DPS_ERR_INVAL, "no subject key given");
    if (!issuer_key)
        issuer_key = issuer ? NULL : subject_key;
    if (!issuer_key)
        return dps_error_set(err, DPS_ERR_INVAL, "no issuer key given");
    if (issuer) {
        if (X509_check_ca(issuer) != 1) {
            ERR_clear_error();
            return dps_error_set(err, DPS_ERR_INVAL, "issuer certificate is not a CA");
        }
        if (X509_check_private_key(issuer, issuer_key) != 1) {
            ERR_clear_error();
            return dps_error_set(err, DPS_ERR_INVAL,
                                 "issuer key does not match the issuer certificate");
        }
    } else if (EVP_PKEY_eq(subject_key, issuer_key) != 1) {
        return dps_error_set(err, DPS_ERR_INVAL,
                             "a self-signed certificate must be signed by its own key");
    }

    rc = pki_subject_parse(spec->subject, &name, err);
    if (rc)
        return rc;
    cert = X509_new();
    if (!cert) {
        rc = dps_error_set(err, DPS_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (!X509_set_version(cert, X509_VERSION_3) || !set_serial(cert) ||
        !X509_set_subject_name(cert, name) ||
        !X509_set_issuer_name(cert, issuer ? X509_get_subject_name(issuer) : name) ||
        !set_validity(cert, spec) || !X509_set_pubkey(cert, subject_key))
        goto ssl_fail;
    if (ASN1_TIME_compare(X509_get0_notBefore(cert), X509_get0_notAfter(cert)) >= 0) {
        rc = dps_error_set(err, DPS_ERR_INVAL, "notAfter is not after notBefore");
        goto out;
    }
    /* A certificate that outlives its issuer would fail verification after the issuer expires. */
    if (issuer && !spec->not_before && !spec->not_after &&
        ASN1_TIME_compare(X509_get0_notAfter(cert), X509_get0_notAfter(issuer)) > 0 &&
        !X509_set1_notAfter(cert, X509_get0_notAfter(issuer)))
        goto ssl_fail;

    X509V3_set_ctx(&ctx, issuer ? issuer : cert, cert, NULL, NULL, 0);
    if (!add_kind_exts(cert, &ctx, spec, subject_key) ||
        !add_ext(cert, &ctx, NID_subject_key_identifier, "hash") ||
        !add_ext(cert, &ctx, NID_authority_key_identifier, "keyid:always"))
        goto ssl_fail;
    rc = add_san(cert, spec, err);
    if (rc)
        goto out;
    if (X509_sign(cert, issuer_key, digest_for(issuer_key)) <= 0)
        goto ssl_fail;
    *out = cert;
    cert = NULL;
    rc = DPS_OK;
    goto out;
ssl_fail:
    rc = dps_error_set(err, DPS_ERR_INTERNAL, "cannot issue certificate for '%s': %s",
                       spec->subject, ssl_reason());
out:
    X509_free(cert);
    X509_NAME_free(name);
    return rc;
}

/* Writes all of buf to fd, retrying short writes. */
static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/*
 * Puts len bytes at path atomically: a temporary file in the same directory,
 * fsync, then link() (fails if path exists: nothing is replaced) or, with
 * PKI_FORCE, rename().
 */
static int file_put(const char *path, const char *buf, size_t len, mode_t mode, int flags,
                    struct dps_error *err)
{
    char tmp[4096];
    struct stat st;
    int fd = -1, rc, saved;

    if (!(flags & PKI_FORCE) && lstat(path, &st) == 0)
        return dps_error_set(err, DPS_ERR_EXISTS,
                             "'%s' exists: not overwritten (use --force to replace it)", path);
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= sizeof(tmp))
        return dps_error_set(err, DPS_ERR_INVAL, "path '%s' is too long", path);
    fd = mkstemp(tmp);
    if (fd < 0)
        return dps_error_set(err, DPS_ERR_IO, "cannot create a file beside '%s': %s", path,
                             strerror(errno));
    if (fchmod(fd, mode) != 0 || write_all(fd, buf, len) != 0 || fsync(fd) != 0) {
        saved = errno;
        rc = dps_error_set(err, DPS_ERR_IO, "cannot write '%s': %s", path, strerror(saved));
        goto fail;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = dps_error_set(err, DPS_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
        goto fail;
    }
    fd = -1;
    if (flags & PKI_FORCE) {
        if (rename(tmp, path) != 0) {
            rc = dps_error_set(err, DPS_ERR_IO, "cannot replace '%s': %s", path, strerror(errno));
            goto fail;
        }
        return DPS_OK;
    }
    if (link(tmp, path) != 0) {
        saved = errno;
        if (saved == EEXIST)
            rc = dps_error_set(err, DPS_ERR_EXISTS,
                               "'%s' exists: not overwritten (use --force to replace it)", path);
        else
            rc = dps_error_set(err, DPS_ERR_IO, "cannot create '%s': %s", path, strerror(saved));
        goto fail;
    }
    unlink(tmp);
    return DPS_OK;
fail:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return rc;
}

/* Hands the contents of a memory BIO to file_put(). */
static int bio_put(BIO *bio, const char *path, mode_t mode, int flags, struct dps_error *err)
{
    char *data;
    long len = BIO_get_mem_data(bio, &data);

    if (len <= 0)
        return dps_error_set(err, DPS_ERR_INTERNAL, "nothing to write to '%s'", path);
    return file_put(path, data, (size_t)len, mode, flags, err);
}

int pki_key_write(const char *path, EVP_PKEY *key, const char *passphrase, int flags,
                  struct dps_error *err)
{
    /* Secure memory is wiped when freed, so the key text does not linger on the heap. */
    BIO *bio = BIO_new(BIO_s_secmem());
    int ok, rc;

    if (!bio)
        return dps_error_set(err, DPS_ERR_NOMEM, "out of memory");
    if (passphrase) {
        size_t plen = strnlen(passphrase, PKI_PASSPHRASE_MAX + 1);

        if (plen == 0 || plen > PKI_PASSPHRASE_MAX) {
            rc = dps_error_set(err, DPS_ERR_INVAL, "passphrase for '%s' must be 1..%d bytes", path,
                               PKI_PASSPHRASE_MAX);
            goto out;
        }
        ok = PEM_write_bio_PKCS8PrivateKey(bio, key, EVP_aes_256_cbc(), passphrase, (int)plen, NULL,
                                           NULL);
    } else {
        ok = PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL);
    }
    if (!ok) {
        rc = dps_error_set(err, DPS_ERR_INTERNAL, "cannot encode the key for '%s': %s", path,
                           ssl_reason());
        goto out;
    }
    rc = bio_put(bio, path, 0600, flags, err);
out:
    BIO_free(bio);
    return rc;
}

int pki_certs_write(const char *path, X509 *const *certs, size_t n, int flags,
                    struct dps_error *err)
{
    BIO *bio;
    int rc;

    if (n == 0)
        return dps_error_set(err, DPS_ERR_INVAL, "no certificate to write to '%s'", path);
    bio = BIO_new(BIO_s_mem());
    if (!bio)
        return dps_error_set(err, DPS_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        if (!PEM_write_bio_X509(bio, certs[i])) {
            rc = dps_error_set(err, DPS_ERR_INTERNAL, "cannot encode a certificate for '%s': %s",
                               path, ssl_reason());
            goto out;
        }
    }
    rc = bio_put(bio, path, 0644, flags, err);
out:
    BIO_free(bio);
    return rc;
}

char *pki_cert_pem(X509 *x)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data, *pem = NULL;
    long n;

    if (bio && PEM_write_bio_X509(bio, x) == 1 && (n = BIO_get_mem_data(bio, &data)) > 0)
        pem = strndup(data, (size_t)n);
    BIO_free(bio);
    return pem;
}

int pki_file_read(const char *path, size_t max, char **out, size_t *out_len, struct dps_error *err)
{
    struct stat st;
    char *buf = NULL;
    size_t len = 0;
    int fd, rc;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return dps_error_set(err, DPS_ERR_NOT_FOUND, "'%s' does not exist", path);
        return dps_error_set(err, DPS_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = dps_error_set(err, DPS_ERR_IO, "'%s' is not a regular file", path);
        goto out;
    }
    if ((unsigned long long)st.st_size > max) {
        rc = dps_error_set(err, DPS_ERR_TOO_LARGE, "'%s' is larger than %zu bytes", path, max);
        goto out;
    }
    buf = malloc(max + 1);
    if (!buf) {
        rc = dps_error_set(err, DPS_ERR_NOMEM, "out of memory reading '%s'", path);
        goto out;
    }
    /* Read up to max + 1 bytes: the file may have grown since fstat(). */
    for (;;) {
        ssize_t n = read(fd, buf + len, max + 1 - len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = dps_error_set(err, DPS_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > max) {
            rc = dps_error_set(err, DPS_ERR_TOO_LARGE, "'%s' is larger than %zu bytes", path, max);
            goto out;
        }
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    buf = NULL;
    rc = DPS_OK;
out:
    if (buf) {
        OPENSSL_cleanse(buf, max + 1);
        free(buf);
    }
    close(fd);
    return rc;
}

struct pass_state {
    const char *passphrase;
    int asked;
};

static int pass_cb(char *buf, int size, int rwflag, void *u)
{
    struct pass_state *ps = u;
    size_t n;

    ps->asked = 1;
    if (!ps->passphrase)
        return -1;
    n = strlen(ps->passphrase);
    if (n > (size_t)size)
        return -1;
    memcpy(buf, ps->passphrase, n);
    return (int)n;
}

int pki_key_read(const char *path, const char *passphrase, EVP_PKEY **out, struct dps_error *err)
{
    struct pass_state ps = {passphrase, 0};
    EVP_PKEY *key = NULL;
    BIO *bio = NULL;
    char *buf = NULL;
    size_t len = 0;
    int rc, encrypted;

    rc = pki_file_read(path, PKI_FILE_MAX, &buf, &len, err);
    if (rc)
        return rc;
    encrypted = strstr(buf, "-----BEGIN ENCRYPTED PRIVATE KEY-----") != NULL ||
                strstr(buf, "Proc-Type: 4,ENCRYPTED") != NULL;
    if (encrypted && !passphrase) {
        rc =
            dps_error_set(err, DPS_ERR_AUTH, "key '%s' is encrypted: a passphrase is needed", path);
        goto out;
    }
    bio = BIO_new_mem_buf(buf, (int)len);
    if (!bio) {
        rc = dps_error_set(err, DPS_ERR_NOMEM, "out of memory");
        goto out;
    }
    key = PEM_read_bio_PrivateKey(bio, NULL, pass_cb, &ps);
    if (!key) {
        ERR_clear_error();
        if (encrypted)
            rc =
                dps_error_set(err, DPS_ERR_AUTH, "cannot decrypt key '%s': wrong passphrase", path);
        else
            rc = dps_error_set(err, DPS_ERR_INVAL, "'%s' holds no readable private key", path);
        goto out;
    }
    *out = key;
    rc = DPS_OK;
out:
    BIO_free(bio);
    OPENSSL_cleanse(buf, len);
    free(buf);
    return rc;
}

int pki_certs_read(const char *path, STACK_OF(X509) * *out, struct dps_error *err)
{
    STACK_OF(X509) *certs = NULL;
    BIO *bio = NULL;
    char *buf = NULL, *name = NULL, *header = NULL;
    unsigned char *data = NULL;
    long dlen;
    size_t len;
    int rc;

    rc = pki_file_read(path, PKI_FILE_MAX, &buf, &len, err);
    if (rc)
        return rc;
    bio = BIO_new_mem_buf(buf, (int)len);
    certs = sk_X509_new_null();
    if (!bio || !certs) {
        rc = dps_error_set(err, DPS_ERR_NOMEM, "out of memory");
        goto out;
    }
    /* Other PEM blocks (a key beside the certificate) are skipped. */
    while (PEM_read_bio(bio, &name, &header, &data, &dlen)) {
        if (!strcmp(name, PEM_STRING_X509)) {
            const unsigned char *p = data;
            X509 *cert;

            if (sk_X509_num(certs) >= PKI_CHAIN_MAX) {
                rc = dps_error_set(err, DPS_ERR_TOO_LARGE, "'%s' holds more than %d certificates",
                                   path, PKI_CHAIN_MAX);
                goto out;
            }
            cert = d2i_X509(NULL, &p, dlen);
            if (!cert || p != data + dlen) {
                X509_free(cert);
                rc = dps_error_set(err, DPS_ERR_INVAL, "certificate %d in '%s' is malformed",
                                   sk_X509_num(certs) + 1, path);
                goto out;
            }
            if (!sk_X509_push(certs, cert)) {
                X509_free(cert);
                rc = dps_error_set(err, DPS_ERR_NOMEM, "out of memory");
                goto out;
            }
        }
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(data);
        name = header = NULL;
        data = NULL;
    }
    ERR_clear_error();
    if (sk_X509_num(certs) == 0) {
        rc = dps_error_set(err, DPS_ERR_INVAL, "'%s' holds no PEM certificate", path);
        goto out;
    }
    *out = certs;
    certs = NULL;
    rc = DPS_OK;
out:
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
    sk_X509_pop_free(certs, X509_free);
    BIO_free(bio);
    free(buf);
    return rc;
}
