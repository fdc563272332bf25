/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of attestation and enrollment matching: the X.509 matching
 * matrix (certificates made at test time with core/pki.h) and symmetric-key
 * attestation. Each case asserts the outcome and the reason in the trace.
 */
#include "core/common.h"
#include "core/attest.h"
#include "../t.h"

#include <openssl/crypto.h>

#include "core/pki.h"
#include "core/sas.h"

#define DAY (24 * 60 * 60)

static const char untrusted[] = "certificate chain is not trusted by any enrollment";

/* The test PKI: root → intermediate → devices, plus strangers. */
static struct {
    EVP_PKEY *root_key, *int_key, *dev_key, *other_key, *forger_key;
    X509 *root, *intermediate, *dev, *dev_direct, *self_signed, *upper, *server_leaf;
    X509 *other_root, *forged_root, *forged_int, *forged_dev, *dev2;
} pki;

static X509 *issue(enum pki_cert_kind kind, const char *subject, int days, EVP_PKEY *key,
                   X509 *issuer, EVP_PKEY *issuer_key)
{
    struct pki_cert_spec spec = {.kind = kind, .subject = subject, .days = days, .pathlen = -1};
    struct dps_error err;
    X509 *c = NULL;

    if (pki_cert_issue(&spec, key, issuer, issuer_key, &c, &err) != DPS_OK) {
        fprintf(stderr, "cannot issue '%s': %s\n", subject, err.msg);
        return NULL;
    }
    return c;
}

static EVP_PKEY *new_key(void)
{
    EVP_PKEY *k = NULL;

    return pki_key_generate(PKI_KEY_P256, &k, NULL) == DPS_OK ? k : NULL;
}

static int pki_setup(void)
{
    if (!(pki.root_key = new_key()) || !(pki.int_key = new_key()) || !(pki.dev_key = new_key()) ||
        !(pki.other_key = new_key()) || !(pki.forger_key = new_key()))
        return -1;
    pki.root = issue(PKI_CERT_ROOT_CA, "CN=Test Root,O=dpsd", 3650, pki.root_key, NULL, NULL);
    pki.intermediate = issue(PKI_CERT_INTERMEDIATE_CA, "CN=Test Intermediate,O=dpsd", 3650,
                             pki.int_key, pki.root, pki.root_key);
    pki.dev = issue(PKI_CERT_DEVICE, "CN=dev-1", 365, pki.dev_key, pki.intermediate, pki.int_key);
    pki.dev2 =
        issue(PKI_CERT_DEVICE, "CN=dev-1", 365, pki.other_key, pki.intermediate, pki.int_key);
    pki.dev_direct = issue(PKI_CERT_DEVICE, "CN=dev-1", 365, pki.dev_key, pki.root, pki.root_key);
    pki.self_signed = issue(PKI_CERT_DEVICE, "CN=dev-1", 365, pki.dev_key, NULL, NULL);
    pki.upper = issue(PKI_CERT_DEVICE, "CN=Dev-1", 365, pki.dev_key, pki.intermediate, pki.int_key);
    pki.server_leaf =
        issue(PKI_CERT_SERVER, "CN=dev-1", 365, pki.dev_key, pki.intermediate, pki.int_key);
    pki.other_root = issue(PKI_CERT_ROOT_CA, "CN=Other Root", 3650, pki.other_key, NULL, NULL);
    /* A forger's root and intermediate that copy the real names with their own key. */
    pki.forged_root =
        issue(PKI_CERT_ROOT_CA, "CN=Test Root,O=dpsd", 3650, pki.forger_key, NULL, NULL);
    pki.forged_int = issue(PKI_CERT_INTERMEDIATE_CA, "CN=Test Intermediate,O=dpsd", 3650,
                           pki.forger_key, pki.forged_root, pki.forger_key);
    pki.forged_dev =
        issue(PKI_CERT_DEVICE, "CN=dev-1", 365, pki.dev_key, pki.forged_int, pki.forger_key);
    if (!pki.root || !pki.intermediate || !pki.dev || !pki.dev2 || !pki.dev_direct ||
        !pki.self_signed || !pki.upper || !pki.server_leaf || !pki.other_root || !pki.forged_root ||
        !pki.forged_int || !pki.forged_dev)
        return -1;
    return 0;
}

static void pki_teardown(void)
{
    X509 *certs[] = {pki.root,       pki.intermediate, pki.dev,        pki.dev2,
                     pki.dev_direct, pki.self_signed,  pki.upper,      pki.server_leaf,
                     pki.other_root, pki.forged_root,  pki.forged_int, pki.forged_dev};
    EVP_PKEY *keys[] = {pki.root_key, pki.int_key, pki.dev_key, pki.other_key, pki.forger_key};

    for (size_t i = 0; i < ARRAY_SIZE(certs); i++)
        X509_free(certs[i]);
    for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
        EVP_PKEY_free(keys[i]);
}

/* A borrowed chain: free with sk_X509_free() only. */
static STACK_OF(X509) * chain_of(X509 *a, X509 *b, X509 *c)
{
    STACK_OF(X509) *s = sk_X509_new_null();

    if (s && a)
        sk_X509_push(s, a);
    if (s && b)
        sk_X509_push(s, b);
    if (s && c)
        sk_X509_push(s, c);
    return s;
}

static struct attest_x509_candidate group(const char *id, bool enabled, X509 *signing)
{
    struct attest_x509_candidate g = {
        .id = id, .is_group = true, .enabled = enabled, .certs = {signing}, .etag = "\"1\""};
    return g;
}

static struct attest_x509_candidate individual(const char *id, bool enabled, X509 *cert)
{
    struct attest_x509_candidate c = {.id = id, .enabled = enabled, .certs = {NULL, cert}};
    return c;
}

/* Runs one X.509 attempt at now for registration id "dev-1" unless id is given. */
static int run(STACK_OF(X509) * chain, const char *id, time_t now,
               const struct attest_x509_candidate *ind, const struct attest_x509_candidate *groups,
               size_t n_groups, struct attest_result *r)
{
    struct attest_x509_request req = {
        .chain = chain,
        .registration_id = id ? id : "dev-1",
        .now = now ? now : time(NULL),
        .individual = ind,
        .groups = groups,
        .n_groups = n_groups,
    };
    return attest_x509(&req, r);
}

static void show(const struct attest_result *r)
{
    if (!getenv("ATTEST_TEST_VERBOSE") || !r->trace)
        return;
    for (size_t i = 0; i < trace_line_count(r->trace); i++)
        fprintf(stderr, "    | %s\n", trace_line(r->trace, i));
    fprintf(stderr, "    = %s\n    device: %s\n", trace_summary(r->trace),
            trace_device_message(r->trace));
}

static void test_root_group_via_intermediate(void)
{
    STACK_OF(X509) *chain = chain_of(pki.dev, pki.intermediate, NULL);
    struct attest_x509_candidate groups[] = {group("line-1", true, pki.root)};
    struct attest_result r;

    attest_result_init(&r);
    ok(chain != NULL);
    ok_int(run(chain, NULL, 0, NULL, groups, 1, &r), DPS_OK);
    show(&r);
    ok_int(r.outcome, ATTEST_ASSIGN);
    ok_int(r.kind, ATTEST_KIND_GROUP);
    ok_str(r.enrollment_id, "line-1");
    ok_int(r.http_status, 200);
    ok_int(r.error_code, 0);
    ok(trace_contains(r.trace, "verifies up to its certificate 'O=dpsd, CN=Test Root' at link 3"));
    ok(trace_contains(r.trace, "attested by enrollment group 'line-1'"));
end:
    attest_result_release(&r);
    sk_X509_free(chain);
}

static void test_intermediate_group(void)
{
    STACK_OF(X509) *chain = chain_of(pki.dev, pki.intermediate, NULL);
    STACK_OF(X509) *leaf_only = chain_of(pki.dev, NULL, NULL);
    struct attest_x509_candidate groups[] = {group("line-2", true, pki.intermediate)};
    struct attest_result r;

    attest_result_init(&r);
    ok(chain && leaf_only);
    ok_int(run(chain, NULL, 0, NULL, groups, 1, &r), DPS_OK);
    show(&r);
    ok_int(r.outcome, ATTEST_ASSIGN);
    ok_str(r.enrollment_id, "line-2");
    ok(trace_contains(r.trace, "at link 2"));
    /* The enrolled intermediate is an anchor of its own: the leaf alone suffices. */
    ok_int(run(leaf_only, NULL, 0, NULL, groups, 1, &r), DPS_OK);
    ok_int(r.outcome, ATTEST_ASSIGN);
    ok_str(r.enrollment_id, "line-2");
end:
    attest_result_release(&r);
    sk_X509_free(chain);
    sk_X509_free(leaf_only);
}

static void test_individual(void)
{
    STACK_OF(X509) *chain = chain_of(pki.dev, pki.intermediate, NULL);
    STACK_OF(X509) *self = chain_of(pki.self_signed, NULL, NULL);
    struct attest_x509_candidate ind = individual("dev-1", true, pki.dev);
    struct attest_x509_candidate ind_self = individual("dev-1", true, pki.self_signed);
    struct attest_result r;

    attest_result_init(&r);
    ok(chain && self);
    ok_int(run(chain, NULL, 0, &ind, NULL, 0, &r), DPS_OK);
    show(&r);
    ok_int(r.outcome, ATTEST_ASSIGN);
    ok_int(r.kind, ATTEST_KIND_INDIVIDUAL);
    ok_str(r.enrollment_id, "dev-1");
    ok(trace_contains(r.trace, "its secondary client certificate"));

    ok_int(run(self, NULL, 0, &ind_self, NULL, 0, &r), DPS_OK);
    ok_int(r.outcome, ATTEST_ASSIGN);
    ok_int(r.kind, ATTEST_KIND_INDIVIDUAL);

    /* Another certificate with the same CN is not the enrolled one. */
    ok_int(run(self, NULL, 0, &ind, NULL, 0, &r), DPS_OK);
    show(&r);
    ok_int(r.outcome, ATTEST_DENIED);
    ok(trace_contains(r.trace, "is not a client certificate of individual enrollment 'dev-1'"));
end:
    attest_result_release(&r);
    sk_X509_free(chain);
    sk_X509_free(self);
}

static void test_individual_wins(void)
{
    STACK_OF(X509) *chain = chain_of(pki.dev, pki.intermediate, NULL);
    struct attest_x509_candidate ind = individual("dev-1", true, pki.dev);
    struct attest_x509_candidate groups[] = {group("line-1", true, pki.root)};
    struct attest_result r;

    attest_result_init(&r);
    ok(chain != NULL);
    ok_int(run(chain, NULL, 0, &ind, groups, 1, &r), DPS_OK);
    ok_int(r.outcome, ATTEST_ASSIGN);
    ok_int(r.kind, ATTEST_KIND_INDIVIDUAL);
    ok_str(r.enrollment_id, "dev-1");
end:
    attest_result_release(&r);
    sk_X509_free(chain);
}

static void test_disabled_group(void)
{
    STACK_OF(X509) *chain = chain_of(pki.dev, pki.intermediate, NULL);
    struct attest_x509_candidate groups[] = {group("line-1", false, pki.root)};
    struct attest_result r;

    attest_result_init(&r);
    ok(chain != NULL);
    ok_int(run(chain, NULL, 0, NULL, groups, 1, &r), DPS_OK);
    show(&r);
    ok_int(r.outcome, ATTEST_DISABLED);
    ok_int(r.kind, ATTEST_KIND_GROUP);
    ok_str(r.enrollment_id, "line-1");
    ok(trace_contains(r.trace, "enrollment group 'line-1'"));
    ok(trace_contains(r.trace, "which is disabled"));
    ok(strstr(trace_device_message(r.trace), "line-1") == NULL);
end:
    attest_result_release(&r);
    sk_X509_free(chain);
}

static void test_disabled_individual_in_group(void)
{
    STACK_OF(X509) *chain = chain_of(pki.dev, pki.intermediate, NULL);
    struct attest_x509_candidate ind = individual("dev-1", false, pki.dev);
    struct attest_x509_candidate other = individual("dev-1", false, pki.dev2);
    struct attest_x509_candidate groups[] = {group("line-1", true, pki.root)};
    struct attest_result r;

    attest_result_init(&r);
    ok(chain != NULL);
    ok_int(run(chain, NULL, 0, &ind, groups, 1, &r), DPS_OK);
    ok_int(r.outcome, ATTEST_DISABLED);
    ok_int(r.kind, ATTEST_KIND_INDIVIDUAL);
    ok(trace_contains(r.trace, "individual enrollment 'dev-1'"));
    ok(trace_contains(r.trace, "which is disabled"));
    /* Disabled with another certificate: it still blocks what the group would accept. */
    ok_int(run(chain, NULL, 0, &other, groups, 1, &r), DPS_OK);
    show(&r);
    ok_int(r.outcome, ATTEST_DISABLED);
    ok_int(r.kind, ATTEST_KIND_INDIVIDUAL);
    ok(trace_contains(r.trace, "it blocks the device although enrollment group 'line-1'"));
end:
    attest_result_release(&r);
    sk_X509_free(chain);
}

static void test_disabled_intermediate_blocks(void)
{
    STACK_OF(X509) *chain = chain_of(pki.dev, pki.intermediate, NULL);
    struct attest_x509_candidate groups[] = {
        group("root-group", true, pki.root),
        group("int-group", false, pki.intermediate),
    };
    struct attest_result r;

    attest_result_init(&r);
    ok(chain != NULL);
    ok_int(run(chain, NULL, 0, NULL, groups, 2, &r), DPS_OK);
    show(&r);
    ok_int(r.outcome, ATTEST_DISABLED);
    ok_str(r.enrollment_id, "int-group");
    ok(trace_contains(r.trace, "group 'root-group' (enabled): the chain verifies"));
    ok(trace_contains(r.trace, "enrollment group 'int-group'"));
end:
    attest_result_release(&r);
    sk_X509_free(chain);
}

static void test_unknown_ca(void)
{
    STACK_OF(X509) *chain = chain_of(pki.dev, pki.intermediate, NULL);
    struct attest_x509_candidate groups[] = {group("line-3", true, pki.other_root)};
    struct attest_result r;

    attest_result_init(&r);
    ok(chain != NULL);
    ok_int(run(chain, NULL, 0, NULL, groups, 1, &r), DPS_OK);
    show(&r);
    ok_int(r.outcome, ATTEST_DENIED);
    ok_int(r.http_status, 401);
    ok_int(r.error_code, 401002);
    ok_int(trace_error_code(r.trace), 401002);
    ok(trace_contains(r.trace, "closest match: group 'line-3' expects issuer 'CN=Other Root'"));
    ok(trace_contains(r.trace, "group 'line-3' passed over"));
    ok_str(trace_device_message(r.trace), untrusted);
end:
    attest_result_release(&r);
    sk_X509_free(chain);
}

static void test_dates(void)
{
    STACK_OF(X509) *chain = chain_of(pki.dev, pki.intermediate, NULL);
    struct attest_x509_candidate groups[] = {group("line-1", true, pki.root)};
    struct attest_result r;

    attest_result_init(&r);
    ok(chain != NULL);
    ok_int(run(chain, NULL, time(NULL) + 400 * DAY, NULL, groups, 1, &r), DPS_OK);
    show(&r);
    ok_int(r.outcome, ATTEST_DENIED);
    ok(trace_contains(r.trace, "the device certificate expired: notAfter is 2"));
    ok(strstr(trace_device_message(r.trace), "line-1") == NULL);

    ok_int(run(chain, NULL, time(NULL) - DAY, NULL, groups, 1, &r), DPS_OK);
    show(&r);
    ok_int(r.outcome, ATTEST_DENIED);
    ok(trace_contains(r.trace, "the device certificate is not yet valid: notBefore is 2"));
end:
    attest_result_release(&r);
    sk_X509_free(chain);
}

static void test_forged_intermediate(void)
{
    STACK_OF(X509) *chain = chain_of(pki.forged_dev, pki.forged_int, NULL);
    struct attest_x509_candidate groups[] = {
        group("root-group", true, pki.root),
        group("int-group", true, pki.intermediate),
    };
    struct attest_result r;

    attest_result_init(&r);
    ok(chain != NULL);
    ok_int(run(chain, NULL, 0, NULL, groups, 2, &r), DPS_OK);
    show(&r);
    ok_int(r.outcome, ATTEST_DENIED);
    ok(trace_contains(r.trace, "has the name of group 'int-group''s trusted certificate but is a "
                               "different certificate with a different key"));
    ok(trace_contains(r.trace, "group 'root-group': the chain does not verify: link 2"));
    ok(trace_contains(r.trace, "it is forged, or the CA was re-issued"));
    ok_str(trace_device_message(r.trace), untrusted);
end:
    attest_result_release(&r);
    sk_X509_free(chain);
}

static void test_identity(void)
{
    STACK_OF(X509) *chain = chain_of(pki.dev, pki.intermediate, NULL);
    STACK_OF(X509) *upper = chain_of(pki.upper, pki.intermediate, NULL);
    STACK_OF(X509) *server = chain_of(pki.server_leaf, pki.intermediate, NULL);
    STACK_OF(X509) *none = sk_X509_new_null();
    struct attest_x509_candidate groups[] = {group("line-1", true, pki.root)};
    struct attest_result r;

    attest_result_init(&r);
    ok(chain && upper && server && none);
    ok_int(run(chain, "dev-2", 0, NULL, groups, 1, &r), DPS_OK);
    show(&r);
    ok_int(r.outcome, ATTEST_DENIED);
    ok(trace_contains(r.trace, "subject CN 'dev-1' differs from the registration id 'dev-2'"));

    ok_int(run(upper, "Dev-1", 0, NULL, groups, 1, &r), DPS_OK);
    show(&r);
    ok_int(r.outcome, ATTEST_DENIED);
    ok(trace_contains(r.trace, "not a valid registration id"));
    ok(trace_contains(r.trace, "upper-case 'D'"));

    ok_int(run(server, NULL, 0, NULL, groups, 1, &r), DPS_OK);
    ok_int(r.outcome, ATTEST_DENIED);
    ok(trace_contains(r.trace, "extendedKeyUsage does not include clientAuth"));

    ok_int(run(none, NULL, 0, NULL, groups, 1, &r), DPS_OK);
    ok_int(r.outcome, ATTEST_DENIED);
    ok(trace_contains(r.trace, "presented no client certificate"));
    ok_int(run(NULL, NULL, 0, NULL, groups, 1, &r), DPS_OK);
    ok_int(r.outcome, ATTEST_DENIED);
end:
    attest_result_release(&r);
    sk_X509_free(chain);
    sk_X509_free(upper);
    sk_X509_free(server);
    sk_X509_free(none);
}

static void test_long_chain(void)
{
    STACK_OF(X509) *chain = sk_X509_new_null();
    struct attest_x509_candidate groups[] = {group("line-1", true, pki.root)};
    struct attest_result r;

    attest_result_init(&r);
    ok(chain != NULL);
    sk_X509_push(chain, pki.dev);
    for (int i = 1; i < 50; i++)
        sk_X509_push(chain, pki.intermediate);
    ok_int(run(chain, NULL, 0, NULL, groups, 1, &r), DPS_OK);
    ok_int(r.outcome, ATTEST_DENIED);
    ok(trace_contains(r.trace, "the device presented 50 certificates; at most 10 are accepted"));
end:
    attest_result_release(&r);
    sk_X509_free(chain);
}

static void test_ca_references(void)
{
    STACK_OF(X509) *chain = chain_of(pki.dev, pki.intermediate, NULL);
    struct attest_x509_candidate g = {
        .id = "ca-group",
        .is_group = true,
        .enabled = true,
        .ca_ref_names = {"my-root", "gone"},
        .ca_verified = {true, false},
        .ca_certs = {pki.root, NULL},
    };
    struct attest_result r;

    attest_result_init(&r);
    ok(chain != NULL);
    ok_int(run(chain, NULL, 0, NULL, &g, 1, &r), DPS_OK);
    show(&r);
    ok_int(r.outcome, ATTEST_ASSIGN);
    ok_str(r.enrollment_id, "ca-group");
    ok(trace_contains(r.trace, "references CA 'gone', which does not exist"));

    g.ca_verified[0] = false;
    ok_int(run(chain, NULL, 0, NULL, &g, 1, &r), DPS_OK);
    show(&r);
    ok_int(r.outcome, ATTEST_DENIED);
    ok(trace_contains(r.trace, "leads to CA 'my-root' referenced by group 'ca-group', but that "
                               "CA is not verified"));
    ok_str(trace_device_message(r.trace), untrusted);
end:
    attest_result_release(&r);
    sk_X509_free(chain);
}

static void test_cache(void)
{
    STACK_OF(X509) *chain = chain_of(pki.dev, pki.intermediate, NULL);
    struct attest_x509_candidate groups[] = {group("line-1", true, pki.root),
                                             group("line-2", true, pki.intermediate)};
    struct attest_cache *cache = attest_cache_new();
    struct attest_x509_request req = {
        .chain = chain,
        .registration_id = "dev-1",
        .now = time(NULL),
        .groups = groups,
        .n_groups = 2,
        .cache = cache,
    };
    struct attest_result r;

    attest_result_init(&r);
    ok(chain && cache);
    ok_int(attest_x509(&req, &r), DPS_OK);
    ok_str(r.enrollment_id, "line-2");
    ok_int(attest_cache_size(cache), 2);
    ok_int(attest_x509(&req, &r), DPS_OK);
    ok_str(r.enrollment_id, "line-2");
    ok_int(attest_cache_size(cache), 2);
    /* A new etag with another certificate: the stale store must not be used. */
    groups[1].etag = "\"2\"";
    groups[1].certs[0] = pki.root;
    ok_int(attest_x509(&req, &r), DPS_OK);
    ok_str(r.enrollment_id, "line-1");
    ok(trace_contains(r.trace, "group 'line-2' (enabled): the chain verifies up to its certificate "
                               "'O=dpsd, CN=Test Root' at link 3"));
    ok_int(attest_cache_size(cache), 2);
    /* Same etag, other anchors (a referenced CA changed): recompiled as well. */
    groups[1].certs[0] = pki.intermediate;
    ok_int(attest_x509(&req, &r), DPS_OK);
    ok_str(r.enrollment_id, "line-2");
    ok_int(attest_cache_size(cache), 2);
    attest_cache_forget(cache, "line-1");
    ok_int(attest_cache_size(cache), 1);
    attest_cache_forget(cache, "no-such-group");
    ok_int(attest_cache_size(cache), 1);
end:
    attest_result_release(&r);
    attest_cache_free(cache);
    sk_X509_free(chain);
}

/* ---- symmetric keys ---- */

#define SCOPE "0ne00000A0A"
#define IND_PRIMARY "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
#define IND_SECONDARY "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="
#define GROUP_PRIMARY                                                                              \
    "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw=="
#define GROUP_SECONDARY "c2Vjb25kYXJ5LWdyb3VwLWtleS0wMTIzNDU2Nzg5YWI="

/* Runs a symmetric-key attempt for id with a token signed by key (expiring at expiry). */
static int run_sym(const char *id, const char *key, time_t expiry,
                   const struct attest_symkey_candidate *ind,
                   const struct attest_symkey_candidate *groups, size_t n_groups,
                   struct attest_result *r)
{
    char sr[256], *token = NULL;
    struct attest_symkey_request req = {
        .id_scope = SCOPE,
        .registration_id = id,
        .now = time(NULL),
        .individual = ind,
        .groups = groups,
        .n_groups = n_groups,
    };
    int rc;

    snprintf(sr, sizeof(sr), "%s/registrations/%s", SCOPE, id);
    if (sas_token_build(sr, key, SAS_DEVICE_KEY_NAME, expiry ? expiry : time(NULL) + 3600, &token,
                        NULL) != SAS_OK)
        return -1;
    req.token = token;
    req.token_len = strlen(token);
    rc = attest_symkey(&req, r);
    free(token);
    return rc;
}

static char *derive(const char *group_key, const char *id)
{
    char *k = NULL;

    return sas_derive_device_key(group_key, id, strlen(id), &k, NULL) == SAS_OK ? k : NULL;
}

static void test_symkey_individual(void)
{
    struct attest_symkey_candidate ind = {"sym-1", false, true, IND_PRIMARY, IND_SECONDARY};
    struct attest_result r;

    attest_result_init(&r);
    ok_int(run_sym("sym-1", IND_PRIMARY, 0, &ind, NULL, 0, &r), DPS_OK);
    show(&r);
    ok_int(r.outcome, ATTEST_ASSIGN);
    ok_int(r.kind, ATTEST_KIND_INDIVIDUAL);
    ok_str(r.enrollment_id, "sym-1");
    ok(trace_contains(r.trace, "signed with its primary key"));
    ok_int(run_sym("sym-1", IND_SECONDARY, 0, &ind, NULL, 0, &r), DPS_OK);
    ok_int(r.outcome, ATTEST_ASSIGN);
    ok(trace_contains(r.trace, "signed with its secondary key"));
end:
    attest_result_release(&r);
}

static void test_symkey_group(void)
{
    struct attest_symkey_candidate groups[] = {
        {"other-group", true, true, IND_SECONDARY, NULL},
        {"sym-group", true, true, GROUP_PRIMARY, GROUP_SECONDARY},
    };
    const char *id = "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6";
    char *primary = derive(GROUP_PRIMARY, id), *secondary = derive(GROUP_SECONDARY, id);
    struct attest_result r;

    attest_result_init(&r);
    ok(primary && secondary);
    /* The protocol's test vector. */
    ok_str(primary, "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=");
    ok_int(run_sym(id, primary, 0, NULL, groups, 2, &r), DPS_OK);
    show(&r);
    ok_int(r.outcome, ATTEST_ASSIGN);
    ok_int(r.kind, ATTEST_KIND_GROUP);
    ok_str(r.enrollment_id, "sym-group");
    ok(trace_contains(r.trace, "derived from its primary key"));
    ok(trace_contains(r.trace, "group 'other-group' (enabled): the token is signed with neither"));
    ok_int(run_sym(id, secondary, 0, NULL, groups, 2, &r), DPS_OK);
    ok_int(r.outcome, ATTEST_ASSIGN);
    ok(trace_contains(r.trace, "derived from its secondary key"));

    /* The group key itself is no device key. */
    ok_int(run_sym(id, GROUP_PRIMARY, 0, NULL, groups, 2, &r), DPS_OK);
    show(&r);
    ok_int(r.outcome, ATTEST_DENIED);
    ok_int(r.error_code, 401002);
    ok(trace_contains(r.trace, "signed with the primary key of enrollment group 'sym-group' "
                               "itself"));
    ok(strstr(trace_device_message(r.trace), "sym-group") == NULL);

    /* A disabled group that accepts the derived key: disabled. */
    groups[1].enabled = false;
    ok_int(run_sym(id, primary, 0, NULL, groups, 2, &r), DPS_OK);
    ok_int(r.outcome, ATTEST_DISABLED);
    ok_str(r.enrollment_id, "sym-group");
end:
    attest_result_release(&r);
    free(primary);
    free(secondary);
}

/* The trace as compact JSON text (caller frees), or NULL. */
static char *trace_text(const struct trace *t)
{
    json_t *j = trace_to_json(t);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;

    json_decref(j);
    return s;
}

/* Runs attest_symkey() for id with the given token and memo. */
static int run_sym_memo(const char *id, const char *token,
                        const struct attest_symkey_candidate *groups, size_t n_groups,
                        struct attest_symkey_memo *memo, struct attest_result *r)
{
    struct attest_symkey_request req = {
        .token = token,
        .token_len = strlen(token),
        .id_scope = SCOPE,
        .registration_id = id,
        .now = time(NULL),
        .groups = groups,
        .n_groups = n_groups,
        .memo = memo,
    };

    return attest_symkey(&req, r);
}

static void test_symkey_memo(void)
{
    struct attest_symkey_candidate groups[] = {
        {"other-group", true, true, IND_SECONDARY, NULL},
        {"sym-group", true, true, GROUP_PRIMARY, GROUP_SECONDARY},
    };
    const char *id = "memo-device";
    char *derived = derive(GROUP_SECONDARY, id), *token = NULL, *first = NULL;
    struct attest_symkey_memo memo = {0};
    struct attest_result r;

    attest_result_init(&r);
    ok(derived != NULL);
    ok_int(sas_token_build(SCOPE "/registrations/memo-device", derived, SAS_DEVICE_KEY_NAME,
                           time(NULL) + 3600, &token, NULL),
           SAS_OK);
    /* The first check records the group key whose derived key signed the token. */
    ok_int(run_sym_memo(id, token, groups, 2, &memo, &r), DPS_OK);
    ok_int(r.outcome, ATTEST_ASSIGN);
    ok_str(memo.group_key, GROUP_SECONDARY);
    first = trace_text(r.trace);
    ok(first != NULL);
    /* The second gives the same decision and the same trace. */
    ok_int(run_sym_memo(id, token, groups, 2, &memo, &r), DPS_OK);
    ok_int(r.outcome, ATTEST_ASSIGN);
    ok_str(r.enrollment_id, "sym-group");
    {
        char *second = trace_text(r.trace);

        ok(second && strcmp(first, second) == 0);
        free(second);
    }
    /* The group disabled in between: disabled, as without the memo. */
    groups[1].enabled = false;
    ok_int(run_sym_memo(id, token, groups, 2, &memo, &r), DPS_OK);
    ok_int(r.outcome, ATTEST_DISABLED);
    /* The key rotated in between: the memo names no key any more, the token is refused. */
    groups[1].enabled = true;
    groups[1].secondary_key = IND_PRIMARY;
    ok_int(run_sym_memo(id, token, groups, 2, &memo, &r), DPS_OK);
    ok_int(r.outcome, ATTEST_DENIED);
end:
    attest_symkey_memo_release(&memo);
    ok(memo.group_key == NULL);
    attest_result_release(&r);
    free(first);
    free(token);
    free(derived);
}

static void test_symkey_refusals(void)
{
    struct attest_symkey_candidate ind = {"sym-1", false, false, IND_PRIMARY, IND_SECONDARY};
    struct attest_symkey_candidate groups[] = {{"sym-group", true, true, GROUP_PRIMARY, NULL}};
    char *derived = derive(GROUP_PRIMARY, "sym-1");
    struct attest_symkey_request req = {
        .token = "SharedAccessSignature sr=x",
        .token_len = 26,
        .id_scope = SCOPE,
        .registration_id = "sym-1",
        .now = time(NULL),
    };
    struct attest_result r;

    attest_result_init(&r);
    ok(derived != NULL);
    /* A disabled individual enrollment blocks although the group's derived key verifies. */
    ok_int(run_sym("sym-1", derived, 0, &ind, groups, 1, &r), DPS_OK);
    show(&r);
    ok_int(r.outcome, ATTEST_DISABLED);
    ok_int(r.kind, ATTEST_KIND_INDIVIDUAL);
    ok(trace_contains(r.trace, "individual enrollment 'sym-1' for this registration id is "
                               "disabled: it blocks the device"));

    /* Wrong key. */
    ind.enabled = true;
    ok_int(run_sym("sym-1", IND_SECONDARY "", 0, NULL, groups, 1, &r), DPS_OK);
    show(&r);
    ok_int(r.outcome, ATTEST_DENIED);
    ok(trace_contains(r.trace, "the SAS token signature matches no enrollment key"));
    ok_str(trace_device_message(r.trace), "the SAS token signature does not match any enrollment");

    /* Expired. */
    ok_int(run_sym("sym-1", IND_PRIMARY, time(NULL) - 3600, &ind, NULL, 0, &r), DPS_OK);
    show(&r);
    ok_int(r.outcome, ATTEST_DENIED);
    ok(trace_contains(r.trace, "the SAS token expired at 2"));

    /* Malformed. */
    ok_int(attest_symkey(&req, &r), DPS_OK);
    show(&r);
    ok_int(r.outcome, ATTEST_DENIED);
    ok(trace_contains(r.trace, "the SAS token is malformed"));

    /* A token for another registration id. */
    req.registration_id = "sym-2";
    ok_int(run_sym("sym-1", IND_PRIMARY, 0, &ind, NULL, 0, &r), DPS_OK);
    ok_int(r.outcome, ATTEST_ASSIGN);
    {
        char *token = NULL;

        ok_int(sas_token_build(SCOPE "/registrations/sym-1", IND_PRIMARY, NULL, time(NULL) + 60,
                               &token, NULL),
               SAS_OK);
        req.token = token;
        req.token_len = strlen(token);
        req.individual = &ind;
        ok_int(attest_symkey(&req, &r), DPS_OK);
        free(token);
        show(&r);
        ok_int(r.outcome, ATTEST_DENIED);
        ok(trace_contains(r.trace, "the SAS token is not for this registration"));
    }
end:
    attest_result_release(&r);
    free(derived);
}

static void test_trace_json(void)
{
    STACK_OF(X509) *chain = chain_of(pki.dev, pki.intermediate, NULL);
    struct attest_x509_candidate groups[] = {group("line-3", true, pki.other_root)};
    struct attest_result r;
    json_t *j = NULL;

    attest_result_init(&r);
    ok(chain != NULL);
    ok_int(run(chain, NULL, 0, NULL, groups, 1, &r), DPS_OK);
    j = trace_to_json(r.trace);
    ok(j != NULL);
    ok_int(json_integer_value(json_object_get(j, "errorCode")), 401002);
    ok_str(json_string_value(json_object_get(j, "deviceMessage")), untrusted);
    ok(json_array_size(json_object_get(j, "steps")) >= 3);
end:
    json_decref(j);
    attest_result_release(&r);
    sk_X509_free(chain);
}

int main(void)
{
    if (pki_setup() != 0) {
        fprintf(stderr, "cannot make the test PKI\n");
        pki_teardown();
        return 1;
    }
    subtest("group enrolled with the root, device issued by an intermediate",
            test_root_group_via_intermediate);
    subtest("group enrolled with the intermediate", test_intermediate_group);
    subtest("individual X.509 enrollment, also self-signed", test_individual);
    subtest("individual enrollment wins over group", test_individual_wins);
    subtest("disabled group", test_disabled_group);
    subtest("disabled individual inside an enabled group", test_disabled_individual_in_group);
    subtest("disabled intermediate group blocks an enabled root group",
            test_disabled_intermediate_blocks);
    subtest("unknown CA", test_unknown_ca);
    subtest("expired and not yet valid leaf", test_dates);
    subtest("forged intermediate", test_forged_intermediate);
    subtest("CN and id, upper case, usage, no certificate", test_identity);
    subtest("chain of 50 certificates refused", test_long_chain);
    subtest("caReferences: verified and unverified CA", test_ca_references);
    subtest("trust store cache keyed by group id and etag", test_cache);
    subtest("symmetric key: individual primary and secondary", test_symkey_individual);
    subtest("symmetric key: derived group keys; the group key itself refused", test_symkey_group);
    subtest("symmetric key: a memo of the first check changes no decision", test_symkey_memo);
    subtest("symmetric key: disabled individual, wrong key, expired, malformed, other id",
            test_symkey_refusals);
    subtest("trace to json", test_trace_json);
    pki_teardown();
    return t_done();
}
