/* SPDX-License-Identifier: MIT */
/*
 * dpsctl ca: CA certificates on dpsd (upload, list, show, delete), the
 * proof of possession step by step (verification-code, verify), and
 * prove, which does the whole proof in one command with the CA's key.
 */
#include "core/common.h"
#include "cli/cli.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>

#include "cli/opts.h"
#include "core/pki.h"
#include "core/x509_info.h"
#include "dps/service.h"

/* Validity of the verification certificate prove makes: it is used once, at once. */
#define PROVE_DAYS 1

static const char *str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static const char *name_of(const struct cli_args *a)
{
    const char *n = a->val[OPT_NAME] ? a->val[OPT_NAME] : a->pos;

    if (!n)
        cli_errorf("no certificate name given: use --name");
    return n;
}

static const char *etag_of(const struct cli_args *a)
{
    return a->val[OPT_ETAG] ? a->val[OPT_ETAG] : a->val[OPT_IF_MATCH];
}

static void print_cert(const json_t *c)
{
    const json_t *p = json_object_get(c, "properties");
    const json_t *v = json_object_get(p, "isVerified");

    cli_print_field("Name", str(c, "name"));
    cli_print_field("Subject", str(p, "subject"));
    cli_print_field("Issuer", str(p, "issuer"));
    cli_print_field("Thumbprint", str(p, "thumbprint"));
    cli_print_field("SHA-256", str(p, "sha256Thumbprint"));
    cli_print_field("Expires", str(p, "expiry"));
    cli_print_field("Verified", json_is_true(v) ? "yes" : "no");
    cli_print_field("Verified at", str(p, "verifiedDateTimeUtc"));
    cli_print_field("Code", str(p, "verificationCode"));
    cli_print_field("Code expires", str(p, "verificationCodeExpiry"));
    cli_print_field("Etag", str(c, "etag"));
}

/* Prints an answer as JSON (--json) or as fields; takes text. */
static int answer(const struct cli_args *a, char *text)
{
    json_t *c;

    if (a->set[OPT_JSON]) {
        cli_print_json(text);
        free(text);
        return CLI_OK;
    }
    c = json_loads(text, 0, NULL);
    if (json_is_object(c))
        print_cert(c);
    else
        cli_print_json(text);
    json_decref(c);
    free(text);
    return CLI_OK;
}

/* The PEM text of x into *out (caller frees); DPS_OK or DPS_ERR_NOMEM. */
static int cert_pem(X509 *x, char **out, struct dps_error *err)
{
    char *pem = pki_cert_pem(x);

    if (!pem)
        return dps_error_set(err, DPS_ERR_NOMEM, "out of memory");
    *out = pem;
    return DPS_OK;
}

/* Reads a certificate file (PEM, DER or base64) as the text to send: PEM or base64 DER. */
static int read_cert(const char *path, char **out, struct dps_error *err)
{
    char *buf = NULL;
    size_t len = 0;
    X509 *x = NULL;
    int rc;

    if ((rc = pki_file_read(path, X509_INFO_INPUT_MAX, &buf, &len, err)) != DPS_OK)
        return rc;
    /* DER is binary: turn it into PEM so it travels in JSON text. */
    if ((rc = x509_info_decode(buf, len, &x, err)) != DPS_OK) {
        char msg[sizeof(err->msg)];

        snprintf(msg, sizeof(msg), "%s", err->msg);
        free(buf);
        return dps_error_set(err, rc, "'%s': %s", path, msg);
    }
    free(buf);
    rc = cert_pem(x, out, err);
    X509_free(x);
    return rc;
}

/*
 * The --name and the certificate in --file that upload and verify send
 * (what: the certificate --file must hold). Returns CLI_OK with *name and
 * *pem (caller frees) set, or the exit code after saying what is wrong.
 */
static int name_and_cert(const struct cli_args *a, const char *cmd, const char *what,
                         const char **name, char **pem)
{
    struct dps_error err = {0};
    const char *n = name_of(a);

    if (!n)
        return CLI_USAGE;
    if (!a->val[OPT_FILE]) {
        cli_errorf("ca %s: --file is required (%s)", cmd, what);
        return CLI_USAGE;
    }
    if (read_cert(a->val[OPT_FILE], pem, &err) != DPS_OK)
        return cli_fail(&err);
    *name = n;
    return CLI_OK;
}

static int ca_upload(struct dps_service_client *c, const struct cli_args *a)
{
    struct dps_error err = {0};
    const char *name;
    char *pem = NULL, *out = NULL;
    int rc = name_and_cert(a, "upload", "the CA certificate", &name, &pem);

    if (rc != CLI_OK)
        return rc;
    rc = dps_ca_upload(c, name, pem, a->set[OPT_VERIFIED], etag_of(a), &out, &err);
    free(pem);
    if (rc != DPS_OK)
        return cli_fail(&err);
    if (!a->set[OPT_JSON] && !a->set[OPT_VERIFIED])
        fprintf(stderr,
                "next: dpsctl ca prove --name %s --ca PREFIX (the CA's key proves "
                "possession)\n",
                name);
    return answer(a, out);
}

static int ca_list(struct dps_service_client *c, const struct cli_args *a)
{
    struct dps_error err = {0};
    char *out = NULL;
    json_t *root, *arr, *it;
    size_t i;

    if (dps_ca_list(c, &out, &err) != DPS_OK)
        return cli_fail(&err);
    if (a->set[OPT_JSON]) {
        cli_print_json(out);
        free(out);
        return CLI_OK;
    }
    root = json_loads(out, 0, NULL);
    arr = json_object_get(root, "value");
    printf("%-32s %-9s %-40s %s\n", "NAME", "VERIFIED", "THUMBPRINT", "SUBJECT");
    json_array_foreach(arr, i, it)
    {
        const json_t *p = json_object_get(it, "properties");

        printf("%-32s %-9s %-40s %s\n", str(it, "name") ? str(it, "name") : "",
               json_is_true(json_object_get(p, "isVerified")) ? "yes" : "no",
               str(p, "thumbprint") ? str(p, "thumbprint") : "",
               str(p, "subject") ? str(p, "subject") : "");
    }
    json_decref(root);
    free(out);
    return CLI_OK;
}

static int ca_show(struct dps_service_client *c, const struct cli_args *a)
{
    struct dps_error err = {0};
    const char *name = name_of(a);
    char *out = NULL;

    if (!name)
        return CLI_USAGE;
    if (dps_ca_get(c, name, &out, &err) != DPS_OK)
        return cli_fail(&err);
    return answer(a, out);
}

static int ca_delete(struct dps_service_client *c, const struct cli_args *a)
{
    struct dps_error err = {0};
    const char *name = name_of(a);

    if (!name)
        return CLI_USAGE;
    if (dps_ca_delete(c, name, etag_of(a), &err) != DPS_OK)
        return cli_fail(&err);
    if (a->set[OPT_JSON])
        printf("{\"deleted\":true}\n");
    else
        printf("deleted CA certificate '%s'; groups that reference it no longer accept devices\n",
               name);
    return CLI_OK;
}

static int ca_code(struct dps_service_client *c, const struct cli_args *a)
{
    struct dps_error err = {0};
    const char *name = name_of(a);
    char *out = NULL;

    if (!name)
        return CLI_USAGE;
    if (dps_ca_verification_code(c, name, etag_of(a), &out, &err) != DPS_OK)
        return cli_fail(&err);
    if (!a->set[OPT_JSON])
        fprintf(stderr,
                "next: dpsctl cert create-verification --ca PREFIX --code CODE --out proof\n"
                "      dpsctl ca verify --name %s --file proof.pem\n",
                name);
    return answer(a, out);
}

static int ca_verify(struct dps_service_client *c, const struct cli_args *a)
{
    struct dps_error err = {0};
    const char *name;
    char *pem = NULL, *out = NULL;
    int rc = name_and_cert(a, "verify", "the verification certificate", &name, &pem);

    if (rc != CLI_OK)
        return rc;
    rc = dps_ca_verify(c, name, pem, etag_of(a), &out, &err);
    free(pem);
    if (rc != DPS_OK)
        return cli_fail(&err);
    return answer(a, out);
}

/* The CA's certificate and key from PREFIX.pem and PREFIX.key. */
static int load_ca(const char *prefix, X509 **cert, EVP_PKEY **key, struct dps_error *err)
{
    STACK_OF(X509) *certs = NULL;
    char path[4096];
    int rc;

    snprintf(path, sizeof(path), "%s.pem", prefix);
    if ((rc = pki_certs_read(path, &certs, err)) != DPS_OK)
        return rc;
    snprintf(path, sizeof(path), "%s.key", prefix);
    if ((rc = pki_key_read(path, NULL, key, err)) != DPS_OK) {
        sk_X509_pop_free(certs, X509_free);
        return rc;
    }
    *cert = sk_X509_shift(certs);
    sk_X509_pop_free(certs, X509_free);
    return DPS_OK;
}

/* Checks that cert is the certificate uploaded as name (same SHA-256 thumbprint). */
static int same_as_uploaded(const char *uploaded_json, const char *name, const char *prefix,
                            X509 *cert, struct dps_error *err)
{
    struct x509_info info;
    json_t *root = json_loads(uploaded_json, 0, NULL);
    const char *tp = str(json_object_get(root, "properties"), "sha256Thumbprint");
    int rc = x509_info_from_cert(cert, &info, err);

    if (rc == DPS_OK && tp && strcmp(tp, info.sha256_thumbprint) != 0)
        rc = dps_error_set(err, DPS_ERR_INVAL,
                           "%s.pem (SHA-256 %s) is not the certificate uploaded as '%s' (SHA-256 "
                           "%s): give the prefix of that CA's files",
                           prefix, info.sha256_thumbprint, name, tp);
    json_decref(root);
    return rc;
}

static int ca_prove(struct dps_service_client *c, const struct cli_args *a)
{
    struct pki_cert_spec spec = {.kind = PKI_CERT_VERIFICATION, .days = PROVE_DAYS, .pathlen = -1};
    struct dps_error err = {0};
    const char *name = name_of(a), *prefix = a->val[OPT_CA_PREFIX];
    char *got = NULL, *code_json = NULL, *out = NULL, *pem = NULL, subject[128];
    const char *code, *etag;
    json_t *root = NULL;
    X509 *ca = NULL, *proof = NULL;
    EVP_PKEY *ca_key = NULL, *key = NULL;
    int rc = CLI_FAILED;

    if (!name)
        return CLI_USAGE;
    if (!prefix) {
        cli_errorf("ca prove: --ca PREFIX is required (the CA's PREFIX.pem and PREFIX.key)");
        return CLI_USAGE;
    }
    if (load_ca(prefix, &ca, &ca_key, &err) != DPS_OK ||
        dps_ca_get(c, name, &got, &err) != DPS_OK ||
        same_as_uploaded(got, name, prefix, ca, &err) != DPS_OK ||
        dps_ca_verification_code(c, name, NULL, &code_json, &err) != DPS_OK) {
        rc = cli_fail(&err);
        goto out;
    }
    root = json_loads(code_json, 0, NULL);
    code = str(json_object_get(root, "properties"), "verificationCode");
    etag = str(root, "etag");
    if (!code || strlen(code) > 64) {
        cli_errorf("the server answered without a verification code");
        goto out;
    }
    snprintf(subject, sizeof(subject), "CN=%s", code);
    spec.subject = subject;
    if (pki_key_generate(PKI_KEY_P256, &key, &err) != DPS_OK ||
        pki_cert_issue(&spec, key, ca, ca_key, &proof, &err) != DPS_OK ||
        cert_pem(proof, &pem, &err) != DPS_OK ||
        dps_ca_verify(c, name, pem, etag, &out, &err) != DPS_OK) {
        rc = cli_fail(&err);
        goto out;
    }
    if (!a->set[OPT_JSON])
        printf("CA certificate '%s' verified: proof of possession with code %s\n", name, code);
    rc = answer(a, out);
    out = NULL;
out:
    free(pem);
    free(out);
    free(got);
    free(code_json);
    json_decref(root);
    X509_free(ca);
    X509_free(proof);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(key);
    return rc;
}

static const enum cli_opt list_opts[] = {OPT_END};
static const enum cli_opt show_opts[] = {OPT_NAME, OPT_END};
static const enum cli_opt upload_opts[] = {OPT_NAME, OPT_FILE,     OPT_VERIFIED,
                                           OPT_ETAG, OPT_IF_MATCH, OPT_END};
static const enum cli_opt etag_opts[] = {OPT_NAME, OPT_ETAG, OPT_IF_MATCH, OPT_END};
static const enum cli_opt verify_opts[] = {OPT_NAME, OPT_FILE, OPT_ETAG, OPT_IF_MATCH, OPT_END};
static const enum cli_opt prove_opts[] = {OPT_NAME, OPT_CA_PREFIX, OPT_END};

static const struct cli_sub ca_subs[] = {
    {"upload", "--name NAME --file FILE [--verified] [--etag ETAG] [options]",
     "Upload a root or intermediate CA certificate under NAME. It starts unverified: prove\n"
     "possession of its key (ca prove) before groups that reference it accept devices, or\n"
     "give --verified to trust it on upload. Replacing an existing one takes --etag.",
     upload_opts, true, false, ca_upload},
    {"list", "[options]", "List the CA certificates.", list_opts, false, false, ca_list},
    {"show", "--name NAME [options]", "Show a CA certificate.", show_opts, true, false, ca_show},
    {"delete", "--name NAME [--etag ETAG] [options]",
     "Delete a CA certificate; groups that reference it stop accepting devices.", etag_opts, true,
     false, ca_delete},
    {"verification-code", "--name NAME [options]",
     "Get a verification code for NAME: single use, valid for one hour. Sign a certificate\n"
     "with CN=CODE with the CA's key (dpsctl cert create-verification) and pass it to\n"
     "ca verify.",
     etag_opts, true, false, ca_code},
    {"verify", "--name NAME --file FILE [options]",
     "Complete the proof of possession with the verification certificate in FILE.", verify_opts,
     true, false, ca_verify},
    {"prove", "--name NAME --ca PREFIX [options]",
     "Prove possession in one command: get a code, make the verification certificate\n"
     "with the CA's key in PREFIX.key (unencrypted), and verify. PREFIX.pem must be the\n"
     "certificate uploaded as NAME.",
     prove_opts, true, false, ca_prove},
};

int cmd_ca(int argc, char **argv)
{
    return cli_group_run("ca",
                         "Manage CA certificates and prove possession of their keys (a dpsd "
                         "extension of the service API; right ServiceConfig).",
                         ca_subs, ARRAY_SIZE(ca_subs), argc, argv);
}
