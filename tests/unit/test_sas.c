/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of SAS tokens (build, parse, service and device verification,
 * derived keys) and of the pieces under them: base64, percent-encoding and
 * connection strings. Known answers come from the Node SDK
 * (azure-iot-common SharedAccessSignature.create), from Python's hmac and
 * from the Azure documentation; HMACs are also recomputed here with OpenSSL.
 */
#include "core/common.h"
#include "core/sas.h"
#include "core/b64.h"
#include "core/connstr.h"
#include "../t.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

/* base64("service-key-for-tests-only-0123456789") */
#define SERVICE_KEY "c2VydmljZS1rZXktZm9yLXRlc3RzLW9ubHktMDEyMzQ1Njc4OQ=="
/* The derived key of protocol §6, used as a device key below. */
#define DEVICE_KEY "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc="
#define SE 1795966248
#define NOW (SE - 3600)

static struct sas_token *parse(const char *s)
{
    struct sas_token *t = NULL;
    struct dps_error err;

    if (sas_token_parse(s, strlen(s), &t, &err) != SAS_OK)
        fprintf(stderr, "  parse failed: %s\n", err.msg);
    return t;
}

static void test_b64(void)
{
    unsigned char *d = NULL;
    size_t n = 0;
    char *e = NULL;

    ok(b64_encode((const unsigned char *)"ab", 2, &e) == DPS_OK);
    ok_str(e, "YWI=");
    ok(b64_decode("YWI=", 4, 0, &d, &n) == DPS_OK);
    ok_int(n, 2);
    ok(memcmp(d, "ab", 2) == 0);
    free(d);
    d = NULL;
    ok(b64_decode("YW\r\nI=\n", 7, B64_SKIP_WHITESPACE, &d, &n) == DPS_OK);
    ok_int(n, 2);
    ok(b64_decode("YW\nI=", 5, 0, &d, &n) == DPS_ERR_INVAL);
    ok(!b64_is_valid("YWI", 3, 0, NULL));      /* no padding */
    ok(!b64_is_valid("YWJ=", 4, 0, NULL));     /* non-zero bits under the padding */
    ok(!b64_is_valid("YW=I", 4, 0, NULL));     /* padding in the middle */
    ok(!b64_is_valid("YWI=YWI=", 8, 0, NULL)); /* data after the padding */
    ok(!b64_is_valid("Y*I=", 4, 0, NULL));
    ok(b64_is_valid("", 0, 0, &n) && n == 0);
    ok(b64_is_valid("YWJj", 4, 0, &n) && n == 3);
end:
    free(d);
    free(e);
}

static void test_pct(void)
{
    char *s = NULL;
    size_t n;

    ok(pct_decode("a%2fb%2Fc+d", 11, &s, &n) == DPS_OK);
    ok_str(s, "a/b/c+d");
    free(s);
    s = NULL;
    ok(pct_decode("%2", 2, &s, &n) == DPS_ERR_INVAL);
    ok(pct_decode("%zz", 3, &s, &n) == DPS_ERR_INVAL);
    ok(pct_encode("a/b:c~", 6, 0, &s) == DPS_OK);
    ok_str(s, "a%2Fb%3Ac~");
    free(s);
    s = NULL;
    ok(pct_encode("a/b", 3, PCT_LOWER, &s) == DPS_OK);
    ok_str(s, "a%2fb");
end:
    free(s);
}

static void test_connstr(void)
{
    const char *good = " SharedAccessKey = " SERVICE_KEY " ; HostName=dps.example.net;"
                       "Other=x;SharedAccessKeyName=provisioningserviceowner;";
    struct connstr *cs = NULL;
    struct dps_error err;

    ok(connstr_parse(good, strlen(good), &cs, &err) == DPS_OK);
    ok_str(cs->host_name, "dps.example.net");
    ok_str(cs->key_name, "provisioningserviceowner");
    ok_str(cs->key, SERVICE_KEY);
    connstr_free(cs);
    cs = NULL;

    ok(connstr_parse("HostName=h;SharedAccessKey=YWI=", 31, &cs, &err) == DPS_ERR_INVAL);
    ok_str(err.msg, "connection string has no 'SharedAccessKeyName'");
    ok(cs == NULL);
    ok(connstr_parse("HostName=h;HostName=i", 21, &cs, &err) == DPS_ERR_INVAL);
    ok_str(err.msg, "connection string gives 'HostName' more than once");
    ok(connstr_parse("HostName=h;SharedAccessKeyName=p;SharedAccessKey=a*b", 52, &cs, &err) ==
       DPS_ERR_INVAL);
    ok_str(err.msg, "connection string 'SharedAccessKey' is not base64");
    ok(connstr_parse("HostName", 8, &cs, &err) == DPS_ERR_INVAL);
    ok(connstr_parse("HostName=;", 10, &cs, &err) == DPS_ERR_INVAL);
    ok_str(err.msg, "connection string has an empty 'HostName'");
end:
    connstr_free(cs);
}

/* The Node service client's token: field order sr, sig, skn, se; sr = the raw host name. */
static void test_service_node_token(void)
{
    const char *tok = "SharedAccessSignature sr=localhost&sig=2FiObPwWuD5uwr39KwhDMahmNuVZUIRnFM"
                      "%2BmkJsjr9I%3D&skn=provisioningserviceowner&se=1795966244";
    unsigned char *key = NULL, mac[32];
    unsigned int mac_len = 0;
    size_t key_len = 0;
    struct sas_token *t = NULL;
    struct dps_error err;

    t = parse(tok);
    ok(t != NULL);
    ok_str(t->sr, "localhost");
    ok_str(t->skn, "provisioningserviceowner");
    ok_int(t->expiry, 1795966244);
    /* The HMAC recomputed here, independently of sas.c. */
    ok(b64_decode(SERVICE_KEY, strlen(SERVICE_KEY), 0, &key, &key_len) == DPS_OK);
    ok(HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)"localhost\n1795966244", 20,
            mac, &mac_len) != NULL);
    ok(memcmp(mac, t->mac, 32) == 0);

    ok_int(sas_verify_service(t, "localhost", "/enrollments/x", SERVICE_KEY, NOW, &err), SAS_OK);
    ok_int(sas_verify_service(t, "LOCALHOST", "/enrollments/x", SERVICE_KEY, NOW, &err), SAS_OK);
    ok_int(sas_verify_service(t, "localhost:443", "/", SERVICE_KEY, NOW, &err), SAS_OK);
    ok_int(sas_verify_service(t, "other", "/", SERVICE_KEY, NOW, &err), SAS_ERR_RESOURCE);
    ok_int(err.code, DPS_ERR_AUTH);
    ok_int(sas_verify_service(t, "localhost", "/", NULL, NOW, &err), SAS_ERR_POLICY);
    ok_str(err.msg, "shared access policy 'provisioningserviceowner' does not exist");
    ok_int(sas_verify_service(t, "localhost", "/", DEVICE_KEY, NOW, &err), SAS_ERR_SIGNATURE);
    ok_int(
        sas_verify_service(t, "localhost", "/", SERVICE_KEY, 1795966244 + SAS_CLOCK_SKEW + 1, &err),
        SAS_ERR_EXPIRED);
    ok_int(sas_verify_service(t, "localhost", "/", SERVICE_KEY, 1795966244 + SAS_CLOCK_SKEW, &err),
           SAS_OK);
end:
    if (key) {
        OPENSSL_cleanse(key, key_len);
        free(key);
    }
    sas_token_free(t);
}

/* Tokens built here verify, and match what Node builds for the same inputs. */
static void test_build(void)
{
    struct sas_token *t = NULL;
    struct dps_error err;
    char *tok = NULL;

    ok(sas_token_build("localhost", SERVICE_KEY, "provisioningserviceowner", 1795966244, &tok,
                       &err) == SAS_OK);
    ok_str(tok, "SharedAccessSignature sr=localhost&sig=2FiObPwWuD5uwr39KwhDMahmNuVZUIRnFM%2BmkJ"
                "sjr9I%3D&se=1795966244&skn=provisioningserviceowner");
    t = parse(tok);
    ok(t != NULL);
    ok_int(sas_verify_service(t, "localhost", "/", SERVICE_KEY, NOW, &err), SAS_OK);
    free(tok);
    tok = NULL;
    ok(sas_token_build("h", "a*b", NULL, 1, &tok, &err) == SAS_ERR_MALFORMED);
    ok(tok == NULL);
end:
    free(tok);
    sas_token_free(t);
}

/* "/a/b" covers "/a/b/c" but not "/a/bc"; an optional https:// is stripped. */
static void test_service_resource_segments(void)
{
    struct sas_token *t = NULL;
    struct dps_error err;
    char *tok = NULL;

    ok(sas_token_build("https%3A%2F%2Fdps.example.net%2Fenrollments", SERVICE_KEY, "p", SE, &tok,
                       &err) == SAS_OK);
    t = parse(tok);
    ok(t != NULL);
    ok_int(sas_check_service_resource(t, "dps.example.net", "/enrollments/dev-1", &err), SAS_OK);
    ok_int(sas_check_service_resource(t, "dps.example.net", "/enrollments", &err), SAS_OK);
    ok_int(sas_check_service_resource(t, "dps.example.net", "/enrollmentsx/dev-1", &err),
           SAS_ERR_RESOURCE);
    ok_int(sas_check_service_resource(t, "dps.example.net", "/enrollmentGroups/g", &err),
           SAS_ERR_RESOURCE);
    ok_int(sas_check_service_resource(t, "dps.example.net", NULL, &err), SAS_ERR_RESOURCE);
    ok_int(sas_verify_service(t, "dps.example.net", "/enrollments/dev-1", SERVICE_KEY, NOW, &err),
           SAS_OK);
end:
    free(tok);
    sas_token_free(t);
}

static int device_ok(const char *tok, const char *scope, const char *id, const char *key)
{
    struct sas_token *t = parse(tok);
    struct dps_error err;
    int rc = -1;

    if (!t)
        return -1;
    rc = sas_check_expiry(t, NOW, &err);
    if (rc == SAS_OK)
        rc = sas_check_device_resource(t, scope, id, &err);
    if (rc == SAS_OK)
        rc = sas_signature_matches_b64(t, key) == 1 ? SAS_OK : SAS_ERR_SIGNATURE;
    sas_token_free(t);
    return rc;
}

/* Each device client's way of writing and signing sr (protocol §4.4). */
static void test_device_clients(void)
{
    /* Node: sr not encoded, signed raw, skn=registration. */
    ok_int(device_ok("SharedAccessSignature sr=0ne0000TEST/registrations/sym-dev-01&sig=snz9R%2FKgq"
                     "YCGSOvEZmBMXsBiinwbIXOtgRcneQVLT9E%3D&skn=registration&se=1795966248",
                     "0ne0000TEST", "sym-dev-01", DEVICE_KEY),
           SAS_OK);
    /* Python: quote(sr, safe=''), upper-case hex, signed encoded, no skn. */
    ok_int(device_ok("SharedAccessSignature sr=0ne0000TEST%2Fregistrations%2Fsym-dev-01&sig=%2BLuY"
                     "j56jjgORUN8NMKlxrwGzxwjTkFIWrmedxDyjSuA%3D&se=1795966248",
                     "0ne0000TEST", "sym-dev-01", DEVICE_KEY),
           SAS_OK);
    /* C SDK: lower-case hex everywhere, scope in another case, skn last. */
    ok_int(device_ok("SharedAccessSignature sr=0ne0000test%2fregistrations%2fsym-dev-01&sig=Cdnf1x"
                     "BNo6qjHbZaQu1PtTGhtCV1efdl1hM%2bqpQa5y4%3d&se=1795966248&skn=registration",
                     "0ne0000TEST", "sym-dev-01", DEVICE_KEY),
           SAS_OK);
    /* Embedded C: literal %2f separators, other escapes upper case, no skn. */
    ok_int(device_ok("SharedAccessSignature sr=0ne0000TEST%2fregistrations%2fdev%3A01&sig=VwaT5fs5"
                     "emw%2FjDDawZuE2U%2FPtJ7r7bHvtvCOInsYnwk%3D&se=1795966248",
                     "0ne0000TEST", "dev:01", DEVICE_KEY),
           SAS_OK);
    /* Fallbacks: sent encoded but signed decoded; sent raw but signed encoded. */
    ok_int(device_ok("SharedAccessSignature sr=0ne0000TEST%2Fregistrations%2Fsym-dev-01&sig=snz9R%"
                     "2FKgqYCGSOvEZmBMXsBiinwbIXOtgRcneQVLT9E%3D&se=1795966248",
                     "0ne0000TEST", "sym-dev-01", DEVICE_KEY),
           SAS_OK);
    ok_int(device_ok("SharedAccessSignature sr=0ne0000TEST/registrations/sym-dev-01&sig=%2BLuYj56j"
                     "jgORUN8NMKlxrwGzxwjTkFIWrmedxDyjSuA%3D&se=1795966248",
                     "0ne0000TEST", "sym-dev-01", DEVICE_KEY),
           SAS_OK);
    /* Forged: right shape, other key. */
    ok_int(device_ok("SharedAccessSignature sr=0ne0000TEST/registrations/sym-dev-01&sig=snz9R%2FKgq"
                     "YCGSOvEZmBMXsBiinwbIXOtgRcneQVLT9E%3D&skn=registration&se=1795966248",
                     "0ne0000TEST", "sym-dev-01", SERVICE_KEY),
           SAS_ERR_SIGNATURE);
    /* Forged: se changed after signing. */
    ok_int(device_ok("SharedAccessSignature sr=0ne0000TEST/registrations/sym-dev-01&sig=snz9R%2FKgq"
                     "YCGSOvEZmBMXsBiinwbIXOtgRcneQVLT9E%3D&skn=registration&se=1795966249",
                     "0ne0000TEST", "sym-dev-01", DEVICE_KEY),
           SAS_ERR_SIGNATURE);
    /* Wrong resource: another device, another scope, a prefix of the id. */
    ok_int(device_ok("SharedAccessSignature sr=0ne0000TEST/registrations/sym-dev-01&sig=snz9R%2FKgq"
                     "YCGSOvEZmBMXsBiinwbIXOtgRcneQVLT9E%3D&skn=registration&se=1795966248",
                     "0ne0000TEST", "sym-dev-02", DEVICE_KEY),
           SAS_ERR_RESOURCE);
    ok_int(device_ok("SharedAccessSignature sr=0ne0000TEST/registrations/sym-dev-01&sig=snz9R%2FKgq"
                     "YCGSOvEZmBMXsBiinwbIXOtgRcneQVLT9E%3D&skn=registration&se=1795966248",
                     "0ne0000OTHER", "sym-dev-01", DEVICE_KEY),
           SAS_ERR_RESOURCE);
    ok_int(device_ok("SharedAccessSignature sr=0ne0000TEST/registrations/sym-dev-01&sig=snz9R%2FKgq"
                     "YCGSOvEZmBMXsBiinwbIXOtgRcneQVLT9E%3D&skn=registration&se=1795966248",
                     "0ne0000TEST", "sym-dev-0", DEVICE_KEY),
           SAS_ERR_RESOURCE);
    /* Another skn than "registration". */
    ok_int(device_ok("SharedAccessSignature sr=0ne0000TEST/registrations/sym-dev-01&sig=snz9R%2FKgq"
                     "YCGSOvEZmBMXsBiinwbIXOtgRcneQVLT9E%3D&skn=owner&se=1795966248",
                     "0ne0000TEST", "sym-dev-01", DEVICE_KEY),
           SAS_ERR_POLICY);
end:;
}

static void test_expired(void)
{
    struct sas_token *t = NULL;
    struct dps_error err;
    char *tok = NULL;

    ok(sas_token_build("0ne0000TEST/registrations/d", DEVICE_KEY, NULL, NOW - SAS_CLOCK_SKEW - 1,
                       &tok, &err) == SAS_OK);
    t = parse(tok);
    ok(t != NULL);
    ok_int(sas_check_expiry(t, NOW, &err), SAS_ERR_EXPIRED);
    ok_int(err.code, DPS_ERR_AUTH);
    ok(strstr(err.msg, "expired") != NULL);
    ok_int(sas_signature_matches_b64(t, DEVICE_KEY), 1);
end:
    free(tok);
    sas_token_free(t);
}

static int parse_fails(const char *s, const char *want)
{
    struct sas_token *t = NULL;
    struct dps_error err;
    int rc = sas_token_parse(s, strlen(s), &t, &err);

    if (rc == SAS_OK) {
        sas_token_free(t);
        fprintf(stderr, "  parsed unexpectedly: %s\n", s);
        return 0;
    }
    if (rc != SAS_ERR_MALFORMED || err.code != DPS_ERR_AUTH || strcmp(err.msg, want) != 0) {
        fprintf(stderr, "  for %s\n    got '%s'\n    expected '%s'\n", s, err.msg, want);
        return 0;
    }
    return t == NULL;
}

static void test_malformed(void)
{
    static const char sig[] = "sig=snz9R%2FKgqYCGSOvEZmBMXsBiinwbIXOtgRcneQVLT9E%3D";
    char buf[SAS_TOKEN_MAX_LEN + 16];

    ok(parse_fails("Bearer abc", "token does not start with 'SharedAccessSignature '"));
    ok(parse_fails("SharedAccessSignature", "token does not start with 'SharedAccessSignature '"));
    snprintf(buf, sizeof(buf), "SharedAccessSignature %s&se=1", sig);
    ok(parse_fails(buf, "token has no 'sr'"));
    ok(parse_fails("SharedAccessSignature sr=a&se=1", "token has no 'sig'"));
    snprintf(buf, sizeof(buf), "SharedAccessSignature sr=a&%s", sig);
    ok(parse_fails(buf, "token has no 'se'"));
    snprintf(buf, sizeof(buf), "SharedAccessSignature sr=a&%s&se=1&sr=b", sig);
    ok(parse_fails(buf, "token has more than one 'sr'"));
    snprintf(buf, sizeof(buf), "SharedAccessSignature sr=a&%s&se=0x10", sig);
    ok(parse_fails(buf, "token 'se' is not a decimal number of seconds"));
    snprintf(buf, sizeof(buf), "SharedAccessSignature sr=a&%s&se=-1", sig);
    ok(parse_fails(buf, "token 'se' is not a decimal number of seconds"));
    snprintf(buf, sizeof(buf), "SharedAccessSignature sr=a&%s&se=99999999999999999999", sig);
    ok(parse_fails(buf, "token 'se' is out of range"));
    ok(parse_fails("SharedAccessSignature sr=a&sig=YWI%3D&se=1",
                   "token 'sig' is not a base64 HMAC-SHA256"));
    snprintf(buf, sizeof(buf), "SharedAccessSignature sr=a%%zz&%s&se=1", sig);
    ok(parse_fails(buf, "token 'sr' has a bad percent-encoding"));
    snprintf(buf, sizeof(buf), "SharedAccessSignature sr=a%%00b&%s&se=1", sig);
    ok(parse_fails(buf, "token 'sr' holds a NUL byte"));
    snprintf(buf, sizeof(buf), "SharedAccessSignature sr=a&%s&se=1&junk", sig);
    ok(parse_fails(buf, "token field 4 has no '='"));
    snprintf(buf, sizeof(buf), "SharedAccessSignature sr=&%s&se=1", sig);
    ok(parse_fails(buf, "token has an empty 'sr'"));
    memset(buf, 'a', sizeof(buf) - 1);
    buf[sizeof(buf) - 1] = '\0';
    ok(parse_fails(buf, "token is longer than 4096 bytes"));
    /* Unknown fields are ignored; surrounding whitespace and the scheme's case too. */
    snprintf(buf, sizeof(buf), "  sharedaccesssignature  x=1&sr=a&%s&se=1 \r\n", sig);
    {
        struct sas_token *t = parse(buf);
        ok(t != NULL);
        ok_str(t->sr, "a");
        ok(t->skn == NULL);
        sas_token_free(t);
    }
end:;
}

/* §6 known answer, and the same HMAC recomputed with OpenSSL here. */
static void test_derived_key(void)
{
    static const char group[] =
        "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw==";
    static const char id[] = "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6";
    unsigned char *key = NULL, mac[32];
    unsigned int mac_len = 0;
    size_t key_len = 0;
    char b64[B64_ENCODED_SIZE(32)], *derived = NULL;
    struct dps_error err;

    ok(sas_derive_device_key(group, id, strlen(id), &derived, &err) == SAS_OK);
    ok_str(derived, "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=");
    ok(b64_decode(group, strlen(group), 0, &key, &key_len) == DPS_OK);
    ok(HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)id, strlen(id), mac,
            &mac_len) != NULL);
    b64_encode_buf(mac, mac_len, b64);
    ok_str(derived, b64);
    free(derived);
    derived = NULL;
    ok(sas_derive_device_key("not base64!", id, strlen(id), &derived, &err) == SAS_ERR_MALFORMED);
    ok(derived == NULL);
end:
    free(derived);
    free(key);
}

int main(void)
{
    subtest("base64", test_b64);
    subtest("percent-encoding", test_pct);
    subtest("connection string", test_connstr);
    subtest("service token as the node client sends it", test_service_node_token);
    subtest("build", test_build);
    subtest("service resource prefix by segment", test_service_resource_segments);
    subtest("device tokens of each client", test_device_clients);
    subtest("expired token", test_expired);
    subtest("malformed tokens", test_malformed);
    subtest("derived device key", test_derived_key);
    return t_done();
}
