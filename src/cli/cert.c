/* SPDX-License-Identifier: MIT */
/*
 * dpsctl cert: test PKIs in one command each (root CA, intermediate CA,
 * device certificates, proof-of-possession verification certificates) and
 * `show` for any certificate file. Argument handling and file naming only:
 * the certificates themselves come from core/pki, the fields of `show` from
 * core/x509_info.
 */
#include "core/common.h"
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/pki.h"
#include "core/regid.h"
#include "core/timeutil.h"
#include "core/x509_info.h"

/* Longest --out or --ca prefix; the suffixes below must still fit in PATH_MAX-sized buffers. */
#define PREFIX_MAX 3800
#define PATH_BUF 4096
/* An X.509 commonName holds at most 64 characters (RFC 5280 ub-common-name). */
#define CN_MAX 64
/* Passphrase files are small; only their first line counts. */
#define PASSPHRASE_FILE_MAX 4096

enum opt_id {
    OPT_SUBJECT = 1 << 0,
    OPT_OUT = 1 << 1,
    OPT_CA = 1 << 2,
    OPT_REGID = 1 << 3,
    OPT_CODE = 1 << 4,
    OPT_KEY_TYPE = 1 << 5,
    OPT_DAYS = 1 << 6,
    OPT_PASS = 1 << 7,
    OPT_CA_PASS = 1 << 8,
    OPT_FORCE = 1 << 9,
    OPT_JSON = 1 << 10,
    OPT_PATHLEN = 1 << 11,
    OPT_HELP = 1 << 12,
    OPT_NOT_BEFORE = 1 << 13,
    OPT_NOT_AFTER = 1 << 14,
};

static const struct option long_options[] = {
    {"subject", required_argument, NULL, OPT_SUBJECT},
    {"out", required_argument, NULL, OPT_OUT},
    {"ca", required_argument, NULL, OPT_CA},
    {"registration-id", required_argument, NULL, OPT_REGID},
    {"code", required_argument, NULL, OPT_CODE},
    {"key-type", required_argument, NULL, OPT_KEY_TYPE},
    {"days", required_argument, NULL, OPT_DAYS},
    {"passphrase-file", required_argument, NULL, OPT_PASS},
    {"ca-passphrase-file", required_argument, NULL, OPT_CA_PASS},
    {"force", no_argument, NULL, OPT_FORCE},
    {"json", no_argument, NULL, OPT_JSON},
    {"pathlen", required_argument, NULL, OPT_PATHLEN},
    {"help", no_argument, NULL, OPT_HELP},
    {"not-before", required_argument, NULL, OPT_NOT_BEFORE},
    {"not-after", required_argument, NULL, OPT_NOT_AFTER},
    {NULL, 0, NULL, 0},
};

struct cert_args {
    const char *subject, *out, *ca, *regid, *code, *pass_file, *ca_pass_file;
    enum pki_key_type key_type;
    int days, pathlen, force, json;
    int64_t not_before, not_after; /* 0: not given */
    unsigned seen;
    char **rest; /* positional arguments */
    int nrest;
};

struct subcommand {
    const char *name;
    const char *summary;
    int (*run)(const struct cert_args *a);
    unsigned allowed;  /* options that apply */
    unsigned required; /* options that must be given */
    int default_days;
    const char *usage; /* the synopsis and the description, for --help */
};

#define CREATE_OPTS                                                                                \
    (OPT_OUT | OPT_KEY_TYPE | OPT_DAYS | OPT_NOT_BEFORE | OPT_NOT_AFTER | OPT_PASS | OPT_FORCE |   \
     OPT_HELP)

static const char common_create_help[] =
    "  --key-type TYPE            p256 (default), p384, rsa2048 or rsa4096\n"
    "  --days N                   validity in days from now or --not-before (default %d)\n"
    "  --not-before DATE          start of validity instead of now minus 5 minutes, as\n"
    "                             YYYY-MM-DD (midnight UTC) or YYYY-MM-DDTHH:MM:SSZ\n"
    "  --not-after DATE           end of validity instead of --days from now, not capped\n"
    "                             at the issuer's; both make expired or not-yet-valid\n"
    "                             certificates for testing\n"
    "  --passphrase-file FILE     encrypt the new private key with AES-256 under the\n"
    "                             passphrase on the first line of FILE (default: unencrypted)\n"
    "  --force                    replace existing output files (default: refuse and\n"
    "                             write nothing)\n";

static const char ca_help[] =
    "  --ca PREFIX                the issuing CA: PREFIX.pem, PREFIX.key and, for an\n"
    "                             intermediate, PREFIX.chain.pem\n"
    "  --ca-passphrase-file FILE  passphrase of PREFIX.key when it is encrypted\n";

static int usage_error(const char *sub, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints a usage error for `dpsctl cert [sub]` with a pointer to its --help. */
static int usage_error(const char *sub, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "dpsctl: cert%s%s: ", sub ? " " : "", sub ? sub : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see 'dpsctl cert%s%s --help')\n", sub ? " " : "", sub ? sub : "");
    return CLI_USAGE;
}

/* The exit status for a failure of the given enum dps_err code. */
static int exit_for(int code)
{
    switch (code) {
    case DPS_ERR_NOT_FOUND:
        return CLI_NOT_FOUND;
    case DPS_ERR_AUTH:
        return CLI_AUTH;
    case DPS_ERR_EXISTS:
    case DPS_ERR_CONFLICT:
        return CLI_CONFLICT;
    default:
        return CLI_FAILED;
    }
}

static int fail(const struct dps_error *err)
{
    cli_errorf("%s", err->msg);
    return exit_for(err->code);
}

/* Reads the first line of a passphrase file into a new buffer; wipe and free it after use. */
static int passphrase_read(const char *path, char **out, struct dps_error *err)
{
    char *buf = NULL;
    size_t len = 0;
    int rc;

    rc = pki_file_read(path, PASSPHRASE_FILE_MAX, &buf, &len, err);
    if (rc) {
        if (rc == DPS_ERR_NOT_FOUND)
            dps_error_set(err, rc, "passphrase file '%s' does not exist", path);
        return rc;
    }
    len = strcspn(buf, "\r\n");
    if (len == 0) {
        OPENSSL_cleanse(buf, PASSPHRASE_FILE_MAX);
        free(buf);
        return dps_error_set(err, DPS_ERR_INVAL, "passphrase file '%s' has an empty first line",
                             path);
    }
    if (len > PKI_PASSPHRASE_MAX) {
        OPENSSL_cleanse(buf, PASSPHRASE_FILE_MAX);
        free(buf);
        return dps_error_set(err, DPS_ERR_INVAL, "passphrase in '%s' is longer than %d bytes", path,
                             PKI_PASSPHRASE_MAX);
    }
    OPENSSL_cleanse(buf + len, strlen(buf + len));
    *out = buf;
    return DPS_OK;
}

static void passphrase_free(char *p)
{
    if (p) {
        OPENSSL_cleanse(p, strlen(p));
        free(p);
    }
}

/* An issuing CA loaded from PREFIX.pem, PREFIX.key and (when present) PREFIX.chain.pem. */
struct ca {
    X509 *cert;
    EVP_PKEY *key;
    /* Intermediates from the CA up to, not including, the root; empty for a root. */
    STACK_OF(X509) * chain;
};

static void ca_release(struct ca *ca)
{
    X509_free(ca->cert);
    EVP_PKEY_free(ca->key);
    sk_X509_pop_free(ca->chain, X509_free);
    memset(ca, 0, sizeof(*ca));
}

static int is_self_signed(X509 *cert)
{
    return (X509_get_extension_flags(cert) & EXFLAG_SS) != 0;
}

static int ca_load(const char *prefix, const char *pass_file, struct ca *ca, struct dps_error *err)
{
    STACK_OF(X509) *certs = NULL;
    char path[PATH_BUF], *pass = NULL;
    struct stat st;
    int rc;

    memset(ca, 0, sizeof(*ca));
    snprintf(path, sizeof(path), "%s.pem", prefix);
    rc = pki_certs_read(path, &certs, err);
    if (rc)
        goto out;
    ca->cert = sk_X509_shift(certs);
    if (X509_check_ca(ca->cert) != 1) {
        rc = dps_error_set(err, DPS_ERR_INVAL, "'%s' is not a CA certificate", path);
        goto out;
    }
    if (pass_file) {
        rc = passphrase_read(pass_file, &pass, err);
        if (rc)
            goto out;
    }
    snprintf(path, sizeof(path), "%s.key", prefix);
    rc = pki_key_read(path, pass, &ca->key, err);
    if (rc) {
        if (rc == DPS_ERR_AUTH && !pass)
            dps_error_set(err, rc, "CA key '%s' is encrypted: give --ca-passphrase-file", path);
        goto out;
    }
    if (X509_check_private_key(ca->cert, ca->key) != 1) {
        rc = dps_error_set(err, DPS_ERR_INVAL, "'%s' does not match the certificate '%s.pem'", path,
                           prefix);
        goto out;
    }
    ca->chain = sk_X509_new_null();
    if (!ca->chain) {
        rc = dps_error_set(err, DPS_ERR_NOMEM, "out of memory");
        goto out;
    }
    snprintf(path, sizeof(path), "%s.chain.pem", prefix);
    if (!is_self_signed(ca->cert) && stat(path, &st) == 0) {
        sk_X509_pop_free(certs, X509_free);
        certs = NULL;
        rc = pki_certs_read(path, &certs, err);
        if (rc)
            goto out;
        if (X509_cmp(sk_X509_value(certs, 0), ca->cert) != 0) {
            rc =
                dps_error_set(err, DPS_ERR_INVAL,
                              "'%s' does not start with the CA certificate '%s.pem'", path, prefix);
            goto out;
        }
        /* Keep the intermediates; a root found in a chain file is left out. */
        while (sk_X509_num(certs) > 0) {
            X509 *c = sk_X509_shift(certs);

            if (is_self_signed(c) || !sk_X509_push(ca->chain, c))
                X509_free(c);
        }
    } else if (!is_self_signed(ca->cert)) {
        X509_up_ref(ca->cert);
        if (!sk_X509_push(ca->chain, ca->cert))
            X509_free(ca->cert);
    }
    rc = DPS_OK;
out:
    passphrase_free(pass);
    sk_X509_pop_free(certs, X509_free);
    if (rc)
        ca_release(ca);
    return rc;
}

/* The files one create command writes, checked up front and removed again on failure. */
struct outputs {
    char pem[PATH_BUF], key[PATH_BUF], chain[PATH_BUF];
    int with_chain;
    int written_pem, written_key, written_chain;
};

/*
 * Creates the missing folders of prefix's directory part, mode 0700 as they
 * will hold private keys, so that `--out pki/root` works in a fresh checkout.
 */
static int make_parents(const char *prefix, struct dps_error *err)
{
    char dir[PATH_BUF];
    struct stat st;

    if (snprintf(dir, sizeof(dir), "%s", prefix) >= (int)sizeof(dir))
        return dps_error_set(err, DPS_ERR_INVAL, "output prefix '%s' is too long", prefix);
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (stat(dir, &st) != 0 && mkdir(dir, 0700) != 0 && errno != EEXIST)
            return dps_error_set(err, DPS_ERR_IO, "cannot create folder '%s': %s", dir,
                                 strerror(errno));
        *p = '/';
    }
    return DPS_OK;
}

static int outputs_init(struct outputs *o, const char *prefix, int with_chain, int force,
                        struct dps_error *err)
{
    const char *paths[3] = {o->pem, o->key, o->chain};
    struct stat st;

    memset(o, 0, sizeof(*o));
    snprintf(o->pem, sizeof(o->pem), "%s.pem", prefix);
    snprintf(o->key, sizeof(o->key), "%s.key", prefix);
    snprintf(o->chain, sizeof(o->chain), "%s.chain.pem", prefix);
    o->with_chain = with_chain;
    for (int i = 0; i < (with_chain ? 3 : 2) && !force; i++) {
        if (lstat(paths[i], &st) == 0)
            return dps_error_set(err, DPS_ERR_EXISTS,
                                 "'%s' exists: nothing written (use --force to replace it)",
                                 paths[i]);
    }
    return make_parents(prefix, err);
}

/* Removes what this run created, so a failure leaves no partial set of files. */
static void outputs_undo(struct outputs *o, int force)
{
    if (force)
        return;
    if (o->written_pem)
        unlink(o->pem);
    if (o->written_key)
        unlink(o->key);
    if (o->written_chain)
        unlink(o->chain);
}

/*
 * Issues one certificate and writes PREFIX.pem, PREFIX.key and, when chain
 * is non-NULL, PREFIX.chain.pem (the new certificate, then chain).
 */
static int create(const struct cert_args *a, const char *what, struct pki_cert_spec *spec,
                  struct ca *ca, int with_chain)
{
    struct dps_error err = {0};
    struct outputs o;
    struct x509_info info;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL, **list = NULL;
    char *pass = NULL;
    int flags = a->force ? PKI_FORCE : 0, n = 0, rc;

    rc = outputs_init(&o, a->out, with_chain, a->force, &err);
    if (rc)
        goto out;
    if (a->pass_file) {
        rc = passphrase_read(a->pass_file, &pass, &err);
        if (rc)
            goto out;
    }
    rc = pki_key_generate(a->key_type, &key, &err);
    if (rc)
        goto out;
    rc = pki_cert_issue(spec, key, ca ? ca->cert : NULL, ca ? ca->key : NULL, &cert, &err);
    if (rc)
        goto out;
    rc = x509_info_from_cert(cert, &info, &err);
    if (rc)
        goto out;

    rc = pki_certs_write(o.pem, &cert, 1, flags, &err);
    if (rc)
        goto out;
    o.written_pem = 1;
    rc = pki_key_write(o.key, key, pass, flags, &err);
    if (rc)
        goto out;
    o.written_key = 1;
    if (with_chain) {
        int nchain = ca ? sk_X509_num(ca->chain) : 0;

        list = calloc((size_t)nchain + 1, sizeof(*list));
        if (!list) {
            rc = dps_error_set(&err, DPS_ERR_NOMEM, "out of memory");
            goto out;
        }
        list[n++] = cert;
        for (int i = 0; i < nchain; i++)
            list[n++] = sk_X509_value(ca->chain, i);
        rc = pki_certs_write(o.chain, list, (size_t)n, flags, &err);
        if (rc)
            goto out;
        o.written_chain = 1;
    }

    printf("created %s '%s'\n", what, info.subject_name);
    printf("  certificate   %s\n", o.pem);
    printf("  private key   %s (mode 0600, %s)\n", o.key,
           pass ? "encrypted with AES-256" : "unencrypted");
    if (with_chain)
        printf("  chain         %s (%d certificate%s, no root)\n", o.chain, n, n == 1 ? "" : "s");
    printf("  issuer        %s\n", info.issuer_name);
    printf("  not after     %s\n", info.not_after_utc);
    printf("  SHA-256       %s\n", info.sha256_thumbprint);
    rc = DPS_OK;
out:
    if (rc)
        outputs_undo(&o, a->force);
    free(list);
    passphrase_free(pass);
    EVP_PKEY_free(key);
    X509_free(cert);
    return rc ? fail(&err) : CLI_OK;
}

static int run_create_root(const struct cert_args *a)
{
    struct pki_cert_spec spec = {.kind = PKI_CERT_ROOT_CA,
                                 .subject = a->subject,
                                 .days = a->days,
                                 .pathlen = -1,
                                 .not_before = a->not_before,
                                 .not_after = a->not_after};
    struct dps_error err = {0};
    X509_NAME *name = NULL;

    /* Subject mistakes are usage errors: check before anything is generated. */
    if (pki_subject_parse(a->subject, &name, &err)) {
        cli_errorf("%s", err.msg);
        return CLI_USAGE;
    }
    X509_NAME_free(name);
    return create(a, "root CA", &spec, NULL, 0);
}

static int run_create_intermediate(const struct cert_args *a)
{
    struct pki_cert_spec spec = {.kind = PKI_CERT_INTERMEDIATE_CA,
                                 .subject = a->subject,
                                 .days = a->days,
                                 .pathlen = a->pathlen,
                                 .not_before = a->not_before,
                                 .not_after = a->not_after};
    struct dps_error err = {0};
    X509_NAME *name = NULL;
    struct ca ca;
    int rc;

    if (pki_subject_parse(a->subject, &name, &err)) {
        cli_errorf("%s", err.msg);
        return CLI_USAGE;
    }
    X509_NAME_free(name);
    if (ca_load(a->ca, a->ca_pass_file, &ca, &err))
        return fail(&err);
    rc = create(a, "intermediate CA", &spec, &ca, 1);
    ca_release(&ca);
    return rc;
}

static int run_create_device(const struct cert_args *a)
{
    struct pki_cert_spec spec = {.kind = PKI_CERT_DEVICE,
                                 .days = a->days,
                                 .pathlen = -1,
                                 .not_before = a->not_before,
                                 .not_after = a->not_after};
    struct dps_error err = {0};
    size_t len = strlen(a->regid);
    char subject[CN_MAX + 8];
    struct ca ca;
    int rc;

    if (regid_validate(a->regid, len, &err)) {
        cli_errorf("%s", err.msg);
        return CLI_USAGE;
    }
    if (len > CN_MAX) {
        cli_errorf("registration id '%s' is longer than %d characters: a certificate's CN holds "
                   "at most %d",
                   a->regid, CN_MAX, CN_MAX);
        return CLI_USAGE;
    }
    /* regid_validate() admits no ',', '=' or '\\', so the id is safe inside a subject string. */
    snprintf(subject, sizeof(subject), "CN=%s", a->regid);
    spec.subject = subject;
    if (ca_load(a->ca, a->ca_pass_file, &ca, &err))
        return fail(&err);
    rc = create(a, "device certificate", &spec, &ca, 1);
    ca_release(&ca);
    return rc;
}

static int run_create_verification(const struct cert_args *a)
{
    struct pki_cert_spec spec = {.kind = PKI_CERT_VERIFICATION,
                                 .days = a->days,
                                 .pathlen = -1,
                                 .not_before = a->not_before,
                                 .not_after = a->not_after};
    struct dps_error err = {0};
    size_t len = strlen(a->code);
    char subject[CN_MAX + 8];
    struct ca ca;
    int rc;

    if (len == 0 || len > CN_MAX) {
        cli_errorf("verification code '%.80s' must be 1..%d characters", a->code, CN_MAX);
        return CLI_USAGE;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)a->code[i];

        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '-' || c == '_' || c == '.')) {
            cli_errorf("verification code '%s' has '%c' at position %zu: codes are letters, "
                       "digits and '-', '_', '.'",
                       a->code, c >= 0x20 && c < 0x7f ? c : '?', i + 1);
            return CLI_USAGE;
        }
    }
    snprintf(subject, sizeof(subject), "CN=%s", a->code);
    spec.subject = subject;
    if (ca_load(a->ca, a->ca_pass_file, &ca, &err))
        return fail(&err);
    rc = create(a, "verification certificate", &spec, &ca, 0);
    ca_release(&ca);
    return rc;
}

/* Reads the certificates of a PEM file, or the one certificate of a DER or base64 file. */
static int show_load(const char *path, STACK_OF(X509) * *out, struct dps_error *err)
{
    STACK_OF(X509) *certs = NULL;
    const unsigned char *p;
    X509 *cert = NULL;
    char *buf = NULL;
    size_t len = 0;
    int rc;

    rc = pki_file_read(path, PKI_FILE_MAX, &buf, &len, err);
    if (rc)
        return rc;
    if (strstr(buf, "-----BEGIN CERTIFICATE-----")) {
        free(buf);
        return pki_certs_read(path, out, err);
    }
    p = (const unsigned char *)buf;
    cert = d2i_X509(NULL, &p, (long)len);
    if (!cert || p != (const unsigned char *)buf + len) {
        X509_free(cert);
        cert = NULL;
        rc = x509_info_decode(buf, len, &cert, err);
        if (rc) {
            dps_error_set(err, rc, "'%s' holds no certificate (PEM, DER or base64)", path);
            goto out;
        }
    }
    certs = sk_X509_new_null();
    if (!certs || !sk_X509_push(certs, cert)) {
        rc = dps_error_set(err, DPS_ERR_NOMEM, "out of memory");
        goto out;
    }
    cert = NULL;
    *out = certs;
    certs = NULL;
    rc = DPS_OK;
out:
    X509_free(cert);
    sk_X509_free(certs);
    free(buf);
    return rc;
}

static int run_show(const struct cert_args *a)
{
    STACK_OF(X509) *certs = NULL;
    struct dps_error err = {0};
    json_t *arr = NULL;
    int rc = CLI_OK;

    if (a->nrest != 1)
        return usage_error("show", a->nrest ? "give exactly one certificate file"
                                            : "no certificate file given");
    if (show_load(a->rest[0], &certs, &err))
        return fail(&err);
    if (a->json && !(arr = json_array())) {
        cli_errorf("out of memory");
        rc = CLI_FAILED;
        goto out;
    }
    for (int i = 0; i < sk_X509_num(certs); i++) {
        struct x509_info info;
        json_t *j;

        if (x509_info_from_cert(sk_X509_value(certs, i), &info, &err)) {
            rc = fail(&err);
            goto out;
        }
        if (!a->json) {
            printf("%sSubject:      %s\n", i ? "\n" : "", info.subject_name);
            printf("Issuer:       %s\n", info.issuer_name);
            printf("Not before:   %s\n", info.not_before_utc);
            printf("Not after:    %s\n", info.not_after_utc);
            printf("Serial:       %s\n", info.serial_number);
            printf("SHA-1:        %s\n", info.sha1_thumbprint);
            printf("SHA-256:      %s\n", info.sha256_thumbprint);
            printf("CA:           %s\n", info.is_ca ? "yes" : "no");
            continue;
        }
        j = x509_info_to_json(&info);
        if (!j || json_object_set_new(j, "isCA", json_boolean(info.is_ca)) ||
            json_array_append_new(arr, j)) {
            cli_errorf("out of memory");
            rc = CLI_FAILED;
            goto out;
        }
    }
    if (a->json) {
        /* One certificate prints as one object; a chain file as an array. */
        json_t *top = json_array_size(arr) == 1 ? json_array_get(arr, 0) : arr;

        if (json_dumpf(top, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0) {
            cli_errorf("cannot write to standard output");
            rc = CLI_FAILED;
            goto out;
        }
        putchar('\n');
    }
out:
    json_decref(arr);
    sk_X509_pop_free(certs, X509_free);
    return rc;
}

static const struct subcommand subcommands[] = {
    {"create-root", "a self-signed root CA: PREFIX.pem, PREFIX.key", run_create_root,
     CREATE_OPTS | OPT_SUBJECT, OPT_SUBJECT | OPT_OUT, 3650,
     "usage: dpsctl cert create-root --subject SUBJECT --out PREFIX [options]\n\n"
     "Makes a self-signed root CA certificate PREFIX.pem and its key PREFIX.key.\n"
     "Extensions: basicConstraints critical CA:TRUE, keyUsage critical keyCertSign,cRLSign,\n"
     "subject and authority key identifiers.\n\n"
     "  --subject SUBJECT          e.g. \"CN=Test Root,O=Example,C=US\"; a backslash escapes ','\n"
     "  --out PREFIX               output prefix\n"},
    {"create-intermediate", "an intermediate CA signed by --ca", run_create_intermediate,
     CREATE_OPTS | OPT_SUBJECT | OPT_CA | OPT_CA_PASS | OPT_PATHLEN, OPT_SUBJECT | OPT_OUT | OPT_CA,
     1825,
     "usage: dpsctl cert create-intermediate --ca PREFIX --subject SUBJECT --out PREFIX "
     "[options]\n\n"
     "Makes an intermediate CA certificate signed by the CA at --ca: PREFIX.pem (the\n"
     "intermediate alone), PREFIX.key, and PREFIX.chain.pem (the intermediate followed by\n"
     "the intermediates above it, without the root), from which device chains are built.\n\n"
     "  --subject SUBJECT          e.g. \"CN=Test Intermediate,O=Example\"\n"
     "  --out PREFIX               output prefix\n"
     "  --pathlen N                basicConstraints pathlen (default: none)\n"},
    {"create-device", "a device (TLS client) certificate for a registration id", run_create_device,
     CREATE_OPTS | OPT_CA | OPT_CA_PASS | OPT_REGID, OPT_CA | OPT_REGID | OPT_OUT, 365,
     "usage: dpsctl cert create-device --ca PREFIX --registration-id ID --out PREFIX "
     "[options]\n\n"
     "Makes a device certificate with CN=ID signed by the CA at --ca: PREFIX.pem,\n"
     "PREFIX.key, and PREFIX.chain.pem (the device certificate then the intermediates, not\n"
     "the root: what a device presents in TLS). Extensions: CA:FALSE, keyUsage\n"
     "digitalSignature (+keyEncipherment for RSA), extendedKeyUsage clientAuth.\n\n"
     "  --registration-id ID       lower-case letters, digits and '-', '.', '_', ':', at most\n"
     "                             64 characters, ending in a letter, digit or '-'\n"
     "  --out PREFIX               output prefix\n"},
    {"create-verification", "a proof-of-possession certificate for a verification code",
     run_create_verification, CREATE_OPTS | OPT_CA | OPT_CA_PASS | OPT_CODE,
     OPT_CA | OPT_CODE | OPT_OUT, 30,
     "usage: dpsctl cert create-verification --ca PREFIX --code CODE --out PREFIX [options]\n\n"
     "Makes the proof-of-possession certificate for a CA: CN=CODE, signed by the CA's key,\n"
     "written to PREFIX.pem and PREFIX.key.\n\n"
     "  --code CODE                the verification code the service gave for the CA\n"
     "  --out PREFIX               output prefix\n"},
    {"show", "print a certificate's subject, issuer, validity, serial and thumbprints", run_show,
     OPT_JSON | OPT_HELP, 0, 0,
     "usage: dpsctl cert show [--json] FILE\n\n"
     "Prints each certificate in FILE (PEM, DER, or base64 of either): subject and issuer in\n"
     "Azure's form, validity, serial number, SHA-1 and SHA-256 thumbprints (upper-case hex,\n"
     "as Azure shows them), and whether it is a CA.\n\n"
     "  --json                     print Azure's X509CertificateInfo fields and isCA as JSON:\n"
     "                             an object for one certificate, an array for several\n"},
};

static void cert_usage(FILE *f)
{
    fprintf(f, "usage: dpsctl cert <subcommand> [options]\n\n"
               "Makes test PKIs for X.509 attestation, and shows certificates.\n\n"
               "Subcommands:\n");
    for (size_t i = 0; i < ARRAY_SIZE(subcommands); i++)
        fprintf(f, "  %-20s %s\n", subcommands[i].name, subcommands[i].summary);
    fprintf(f, "\nA typical test PKI:\n"
               "  dpsctl cert create-root --subject \"CN=Test Root\" --out root\n"
               "  dpsctl cert create-intermediate --ca root --subject \"CN=Test Intermediate\" "
               "--out inter\n"
               "  dpsctl cert create-device --ca inter --registration-id device-1 --out device-1\n"
               "\nRun 'dpsctl cert <subcommand> --help' for its options.\n");
}

static void sub_usage(const struct subcommand *s)
{
    fputs(s->usage, stdout);
    if (s->allowed & OPT_CA)
        fputs(ca_help, stdout);
    if (s->allowed & OPT_KEY_TYPE)
        printf(common_create_help, s->default_days);
    printf("  --help                     this text\n");
    if (s->allowed & OPT_KEY_TYPE)
        printf("\nExit status: 0 done, 1 failed, 2 usage error, 3 a file not found,\n"
               "4 wrong or missing passphrase, 5 an output file exists.\n");
}

static const char *opt_name(unsigned id)
{
    for (const struct option *o = long_options; o->name; o++) {
        if ((unsigned)o->val == id)
            return o->name;
    }
    return "?";
}

static int parse_int(const char *s, long lo, long hi, int *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

/*
 * Parses "YYYY-MM-DD" (midnight UTC) or an ISO 8601 date-time into seconds
 * since the epoch; dates before 1970-01-02 are refused (0 means unset).
 */
static int parse_date(const char *s, int64_t *out)
{
    char buf[32];
    struct timespec ts;
    size_t len = strlen(s);

    if (len == 10) {
        snprintf(buf, sizeof(buf), "%sT00:00:00Z", s);
        s = buf;
        len = strlen(buf);
    }
    if (timeutil_parse(s, len, &ts) || ts.tv_sec < 86400)
        return -1;
    *out = (int64_t)ts.tv_sec;
    return 0;
}

int cmd_cert(int argc, char **argv)
{
    const struct subcommand *sub = NULL;
    struct cert_args a = {.key_type = PKI_KEY_P256, .pathlen = -1};
    int c;

    if (argc < 2) {
        cert_usage(stderr);
        return CLI_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        cert_usage(stdout);
        return CLI_OK;
    }
    for (size_t i = 0; i < ARRAY_SIZE(subcommands); i++) {
        if (!strcmp(argv[1], subcommands[i].name))
            sub = &subcommands[i];
    }
    if (!sub)
        return usage_error(NULL, "unknown subcommand '%s'", argv[1]);
    a.days = sub->default_days;

    /* getopt_long over the subcommand's arguments; optind = 0 makes glibc start afresh. */
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc - 1, argv + 1, "+h", long_options, NULL)) != -1) {
        if (c == 'h')
            c = OPT_HELP;
        if (c == '?') {
            /* A known option without its value sets optopt to the option's id. */
            if (optopt && strcmp(opt_name((unsigned)optopt), "?") != 0)
                return usage_error(sub->name, "option '--%s' needs a value",
                                   opt_name((unsigned)optopt));
            return usage_error(sub->name, "unknown option '%s'", argv[optind]);
        }
        if (!(sub->allowed & (unsigned)c))
            return usage_error(sub->name, "option '--%s' does not apply here", opt_name(c));
        a.seen |= (unsigned)c;
        switch (c) {
        case OPT_HELP:
            sub_usage(sub);
            return CLI_OK;
        case OPT_SUBJECT:
            a.subject = optarg;
            break;
        case OPT_OUT:
            a.out = optarg;
            break;
        case OPT_CA:
            a.ca = optarg;
            break;
        case OPT_REGID:
            a.regid = optarg;
            break;
        case OPT_CODE:
            a.code = optarg;
            break;
        case OPT_KEY_TYPE:
            if (pki_key_type_parse(optarg, &a.key_type))
                return usage_error(
                    sub->name, "unknown key type '%s': use p256, p384, rsa2048 or rsa4096", optarg);
            break;
        case OPT_DAYS:
            if (parse_int(optarg, 1, 36500, &a.days))
                return usage_error(sub->name, "--days '%s' is not a number of days in 1..36500",
                                   optarg);
            break;
        case OPT_NOT_BEFORE:
        case OPT_NOT_AFTER:
            if (parse_date(optarg, c == OPT_NOT_BEFORE ? &a.not_before : &a.not_after))
                return usage_error(sub->name,
                                   "--%s '%s' is not a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ) "
                                   "after 1970-01-01",
                                   opt_name((unsigned)c), optarg);
            break;
        case OPT_PATHLEN:
            if (parse_int(optarg, 0, 16, &a.pathlen))
                return usage_error(sub->name, "--pathlen '%s' is not a number in 0..16", optarg);
            break;
        case OPT_PASS:
            a.pass_file = optarg;
            break;
        case OPT_CA_PASS:
            a.ca_pass_file = optarg;
            break;
        case OPT_FORCE:
            a.force = 1;
            break;
        case OPT_JSON:
            a.json = 1;
            break;
        }
    }
    a.rest = argv + 1 + optind;
    a.nrest = argc - 1 - optind;
    for (unsigned bit = 1; bit <= OPT_NOT_AFTER; bit <<= 1) {
        if ((sub->required & bit) && !(a.seen & bit))
            return usage_error(sub->name, "missing option '--%s'", opt_name(bit));
    }
    if (sub->run != run_show && a.nrest > 0)
        return usage_error(sub->name, "unexpected argument '%s'", a.rest[0]);
    if ((a.out && strlen(a.out) > PREFIX_MAX) || (a.ca && strlen(a.ca) > PREFIX_MAX))
        return usage_error(sub->name, "a path prefix is longer than %d bytes", PREFIX_MAX);
    if (a.out && !*a.out)
        return usage_error(sub->name, "--out is empty");
    if (a.not_before && a.not_after && a.not_after <= a.not_before)
        return usage_error(sub->name, "--not-after is not after --not-before");
    return sub->run(&a);
}
