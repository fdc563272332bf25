/* SPDX-License-Identifier: MIT */
/*
 * SAS token build, parse and verify, and derived device keys. Keys are
 * wiped after use; signatures are compared with CRYPTO_memcmp.
 */
#include "core/common.h"
#include "core/sas.h"

#include <limits.h>
#include <pthread.h>
#include <stdarg.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>

#include "core/b64.h"

#define SAS_SCHEME "SharedAccessSignature"
/* A bound on k=v pairs, so a token of 4096 '&' costs nothing. */
#define SAS_MAX_FIELDS 16

static const char *const result_names[] = {
    [SAS_OK] = "ok",
    [SAS_ERR_NOMEM] = "out of memory",
    [SAS_ERR_MALFORMED] = "malformed token",
    [SAS_ERR_EXPIRED] = "expired token",
    [SAS_ERR_RESOURCE] = "wrong resource",
    [SAS_ERR_SIGNATURE] = "bad signature",
    [SAS_ERR_POLICY] = "unknown policy",
};

const char *sas_strerror(int result)
{
    if (result < 0 || (size_t)result >= ARRAY_SIZE(result_names))
        return "unknown sas result";
    return result_names[result];
}

/* Fills err for a refusal: DPS_ERR_AUTH, or DPS_ERR_NOMEM for SAS_ERR_NOMEM. */
static int fail(struct dps_error *err, int result, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct dps_error *err, int result, const char *fmt, ...)
{
    va_list ap;

    if (err) {
        err->code = result == SAS_ERR_NOMEM ? DPS_ERR_NOMEM : DPS_ERR_AUTH;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return result;
}

void sas_token_free(struct sas_token *t)
{
    if (!t)
        return;
    free(t->sr);
    free(t->sr_decoded);
    free(t->se);
    free(t->skn);
    free(t);
}

/*
 * One HMAC-SHA256 context per thread, its digest fetched once: EVP_Q_mac()
 * (what HMAC() is in OpenSSL 3) fetches the MAC and the digest by name
 * under the library's global lock on every call, several times per
 * registration. Freed when the thread exits.
 */
static pthread_key_t mac_key;
static pthread_once_t mac_once = PTHREAD_ONCE_INIT;
static bool mac_key_ok;

static void mac_ctx_free(void *ctx)
{
    EVP_MAC_CTX_free(ctx);
}

static void mac_key_init(void)
{
    mac_key_ok = pthread_key_create(&mac_key, mac_ctx_free) == 0;
}

/* The calling thread's HMAC-SHA256 context, made on first use; NULL on OOM. */
static EVP_MAC_CTX *thread_mac(void)
{
    EVP_MAC_CTX *ctx;
    EVP_MAC *mac;
    OSSL_PARAM params[2];

    pthread_once(&mac_once, mac_key_init);
    if (!mac_key_ok)
        return NULL;
    ctx = pthread_getspecific(mac_key);
    if (ctx)
        return ctx;
    mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    EVP_MAC_free(mac); /* the context holds its own reference */
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    if (!ctx || EVP_MAC_CTX_set_params(ctx, params) != 1 ||
        pthread_setspecific(mac_key, ctx) != 0) {
        EVP_MAC_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* HMAC-SHA256 of a, or of a "\n" b when b is not NULL. Returns 0, or -1 (out unset). */
static int hmac_sha256(const unsigned char *key, size_t key_len, const char *a, size_t a_len,
                       const char *b, size_t b_len, unsigned char out[SAS_MAC_SIZE])
{
    static const unsigned char empty_key[1];
    unsigned char mac[SAS_MAC_SIZE];
    EVP_MAC_CTX *ctx = thread_mac();
    size_t n = 0;
    int rc = -1;

    if (!ctx || key_len > INT_MAX)
        return -1;
    /* Every call re-keys the context, so nothing of the previous key is used. */
    if (EVP_MAC_init(ctx, key_len ? key : empty_key, key_len, NULL) == 1 &&
        EVP_MAC_update(ctx, (const unsigned char *)a, a_len) == 1 &&
        (!b || (EVP_MAC_update(ctx, (const unsigned char *)"\n", 1) == 1 &&
                EVP_MAC_update(ctx, (const unsigned char *)b, b_len) == 1)) &&
        EVP_MAC_final(ctx, mac, &n, sizeof(mac)) == 1 && n == SAS_MAC_SIZE) {
        memcpy(out, mac, SAS_MAC_SIZE);
        rc = 0;
    }
    /* Keys are wiped after use: the context keeps only the state of an empty key. */
    EVP_MAC_init(ctx, empty_key, 0, NULL);
    OPENSSL_cleanse(mac, sizeof(mac));
    return rc;
}

int sas_derive_device_key_raw(const unsigned char *group_key, size_t key_len,
                              const char *registration_id, size_t id_len,
                              unsigned char out[SAS_MAC_SIZE])
{
    return hmac_sha256(group_key, key_len, registration_id, id_len, NULL, 0, out) == 0
               ? SAS_OK
               : SAS_ERR_NOMEM;
}

int sas_derive_device_key(const char *group_key_b64, const char *registration_id, size_t id_len,
                          char **out, struct dps_error *err)
{
    unsigned char *key = NULL, mac[SAS_MAC_SIZE];
    size_t key_len = 0;
    char *s = NULL;
    int rc;

    rc = b64_decode(group_key_b64, strlen(group_key_b64), 0, &key, &key_len);
    if (rc == DPS_ERR_INVAL) {
        rc = fail(err, SAS_ERR_MALFORMED, "group key is not base64");
        goto out;
    }
    if (rc != DPS_OK) {
        rc = fail(err, SAS_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (sas_derive_device_key_raw(key, key_len, registration_id, id_len, mac) != SAS_OK ||
        b64_encode(mac, sizeof(mac), &s) != DPS_OK) {
        rc = fail(err, SAS_ERR_NOMEM, "out of memory");
        goto out;
    }
    *out = s;
    rc = SAS_OK;
out:
    if (key) {
        OPENSSL_cleanse(key, key_len);
        free(key);
    }
    OPENSSL_cleanse(mac, sizeof(mac));
    return rc;
}

int sas_token_build(const char *sr, const char *key_b64, const char *skn, int64_t expiry,
                    char **out, struct dps_error *err)
{
    unsigned char *key = NULL, mac[SAS_MAC_SIZE];
    size_t key_len = 0, n;
    char se[24], sig_b64[B64_ENCODED_SIZE(SAS_MAC_SIZE)];
    char *sig = NULL, *skn_enc = NULL, *tok = NULL;
    int rc;

    snprintf(se, sizeof(se), "%lld", (long long)expiry);
    rc = b64_decode(key_b64, strlen(key_b64), 0, &key, &key_len);
    if (rc == DPS_ERR_INVAL) {
        rc = fail(err, SAS_ERR_MALFORMED, "shared access key is not base64");
        goto out;
    }
    if (rc != DPS_OK || hmac_sha256(key, key_len, sr, strlen(sr), se, strlen(se), mac) != 0) {
        rc = fail(err, SAS_ERR_NOMEM, "out of memory");
        goto out;
    }
    b64_encode_buf(mac, sizeof(mac), sig_b64);
    if (pct_encode(sig_b64, strlen(sig_b64), 0, &sig) != DPS_OK ||
        (skn && pct_encode(skn, strlen(skn), 0, &skn_enc) != DPS_OK)) {
        rc = fail(err, SAS_ERR_NOMEM, "out of memory");
        goto out;
    }
    n = strlen(SAS_SCHEME) + strlen(sr) + strlen(sig) + strlen(se) +
        (skn_enc ? strlen(skn_enc) : 0) + 32;
    tok = malloc(n);
    if (!tok) {
        rc = fail(err, SAS_ERR_NOMEM, "out of memory");
        goto out;
    }
    snprintf(tok, n, "%s sr=%s&sig=%s&se=%s%s%s", SAS_SCHEME, sr, sig, se, skn_enc ? "&skn=" : "",
             skn_enc ? skn_enc : "");
    *out = tok;
    rc = SAS_OK;
out:
    if (key) {
        OPENSSL_cleanse(key, key_len);
        free(key);
    }
    OPENSSL_cleanse(mac, sizeof(mac));
    free(sig);
    free(skn_enc);
    return rc;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Stores one k=v field of a token into t; *seen holds the fields met so far. */
static int parse_field(struct sas_token *t, const char *k, size_t k_len, const char *v,
                       size_t v_len, unsigned *seen, struct dps_error *err)
{
    static const char *const names[] = {"sr", "sig", "se", "skn"};
    size_t which = ARRAY_SIZE(names);
    char *decoded = NULL;
    size_t dlen = 0;
    int rc;

    for (size_t i = 0; i < ARRAY_SIZE(names); i++)
        if (strlen(names[i]) == k_len && memcmp(names[i], k, k_len) == 0)
            which = i;
    if (which == ARRAY_SIZE(names))
        return SAS_OK; /* unknown fields are ignored */
    if (*seen & (1u << which))
        return fail(err, SAS_ERR_MALFORMED, "token has more than one '%s'", names[which]);
    *seen |= 1u << which;
    if (v_len == 0)
        return fail(err, SAS_ERR_MALFORMED, "token has an empty '%s'", names[which]);

    rc = pct_decode(v, v_len, &decoded, &dlen);
    if (rc == DPS_ERR_NOMEM)
        return fail(err, SAS_ERR_NOMEM, "out of memory");
    if (rc != DPS_OK)
        return fail(err, SAS_ERR_MALFORMED, "token '%s' has a bad percent-encoding", names[which]);
    if (strlen(decoded) != dlen) {
        free(decoded);
        return fail(err, SAS_ERR_MALFORMED, "token '%s' holds a NUL byte", names[which]);
    }

    switch (which) {
    case 0: /* sr: keep both forms, the one sent is the one signed */
        t->sr_decoded = decoded;
        t->sr = strndup(v, v_len);
        if (!t->sr)
            return fail(err, SAS_ERR_NOMEM, "out of memory");
        return SAS_OK;
    case 1: { /* sig */
        unsigned char *mac = NULL;
        size_t mac_len = 0;

        rc = b64_decode(decoded, dlen, 0, &mac, &mac_len);
        free(decoded);
        if (rc == DPS_ERR_NOMEM)
            return fail(err, SAS_ERR_NOMEM, "out of memory");
        if (rc != DPS_OK || mac_len != SAS_MAC_SIZE) {
            free(mac);
            return fail(err, SAS_ERR_MALFORMED, "token 'sig' is not a base64 HMAC-SHA256");
        }
        memcpy(t->mac, mac, SAS_MAC_SIZE);
        free(mac);
        return SAS_OK;
    }
    case 2: { /* se: decimal digits only, signed as sent */
        int64_t e = 0;

        free(decoded);
        if (v_len > 18)
            return fail(err, SAS_ERR_MALFORMED, "token 'se' is out of range");
        for (size_t i = 0; i < v_len; i++) {
            if (v[i] < '0' || v[i] > '9')
                return fail(err, SAS_ERR_MALFORMED,
                            "token 'se' is not a decimal number of seconds");
            e = e * 10 + (v[i] - '0');
        }
        t->expiry = e;
        t->se = strndup(v, v_len);
        if (!t->se)
            return fail(err, SAS_ERR_NOMEM, "out of memory");
        return SAS_OK;
    }
    default: /* skn */
        t->skn = decoded;
        return SAS_OK;
    }
}

int sas_token_parse(const char *s, size_t len, struct sas_token **out, struct dps_error *err)
{
    size_t scheme_len = strlen(SAS_SCHEME), pos, fields = 0;
    struct sas_token *t = NULL;
    unsigned seen = 0;
    int rc;

    if (len > SAS_TOKEN_MAX_LEN) {
        rc = fail(err, SAS_ERR_MALFORMED, "token is longer than %d bytes", SAS_TOKEN_MAX_LEN);
        goto out;
    }
    while (len && is_space(*s)) {
        s++;
        len--;
    }
    while (len && is_space(s[len - 1]))
        len--;
    if (len <= scheme_len || strncasecmp(s, SAS_SCHEME, scheme_len) != 0 ||
        !is_space(s[scheme_len])) {
        rc = fail(err, SAS_ERR_MALFORMED, "token does not start with '%s '", SAS_SCHEME);
        goto out;
    }
    pos = scheme_len;
    while (pos < len && is_space(s[pos]))
        pos++;
    t = calloc(1, sizeof(*t));
    if (!t) {
        rc = fail(err, SAS_ERR_NOMEM, "out of memory");
        goto out;
    }
    while (pos < len) {
        const char *f = s + pos, *amp = memchr(f, '&', len - pos), *eq;
        size_t f_len = amp ? (size_t)(amp - f) : len - pos;

        pos += f_len + 1;
        if (++fields > SAS_MAX_FIELDS) {
            rc = fail(err, SAS_ERR_MALFORMED, "token has more than %d fields", SAS_MAX_FIELDS);
            goto out;
        }
        eq = memchr(f, '=', f_len);
        if (!eq) {
            rc = fail(err, SAS_ERR_MALFORMED, "token field %zu has no '='", fields);
            goto out;
        }
        rc = parse_field(t, f, (size_t)(eq - f), eq + 1, f_len - (size_t)(eq - f) - 1, &seen, err);
        if (rc != SAS_OK)
            goto out;
    }
    if (!t->sr || !t->se || !(seen & 2u)) {
        rc = fail(err, SAS_ERR_MALFORMED, "token has no '%s'",
                  !t->sr         ? "sr"
                  : !(seen & 2u) ? "sig"
                                 : "se");
        goto out;
    }
    *out = t;
    t = NULL;
    rc = SAS_OK;
out:
    sas_token_free(t);
    return rc;
}

int sas_check_expiry(const struct sas_token *t, int64_t now, struct dps_error *err)
{
    if (t->expiry < now - SAS_CLOCK_SKEW)
        return fail(err, SAS_ERR_EXPIRED, "token expired %lld seconds ago (check the clock)",
                    (long long)(now - t->expiry));
    return SAS_OK;
}

/* Length of host without a trailing ":port", when it has one. */
static size_t host_len_without_port(const char *h, size_t n)
{
    for (size_t i = n; i > 0; i--) {
        if (h[i - 1] == ':')
            return i - 1;
        if (h[i - 1] < '0' || h[i - 1] > '9')
            break;
    }
    return n;
}

static int host_equal(const char *a, size_t a_len, const char *b, size_t b_len)
{
    size_t a_np = host_len_without_port(a, a_len), b_np = host_len_without_port(b, b_len);

    if (a_len == b_len && strncasecmp(a, b, a_len) == 0)
        return 1;
    /* One side carries a port, the other none: compare the names. */
    if ((a_np == a_len) != (b_np == b_len))
        return a_np == b_np && strncasecmp(a, b, a_np) == 0;
    return 0;
}

int sas_check_service_resource(const struct sas_token *t, const char *host, const char *path,
                               struct dps_error *err)
{
    const char *r = t->sr_decoded, *slash;
    size_t host_part, rest_len, path_len = path ? strlen(path) : 0;

    if (strncasecmp(r, "https://", 8) == 0)
        r += 8;
    slash = strchr(r, '/');
    host_part = slash ? (size_t)(slash - r) : strlen(r);
    if (!host_equal(r, host_part, host, strlen(host)))
        goto wrong;
    if (!slash)
        return SAS_OK;
    /* A path prefix, compared by segment: "/a/b" covers "/a/b/c", not "/a/bc". */
    rest_len = strlen(slash);
    while (rest_len > 1 && slash[rest_len - 1] == '/')
        rest_len--;
    if (rest_len == 1)
        return SAS_OK;
    if (rest_len <= path_len && strncasecmp(slash, path, rest_len) == 0 &&
        (path[rest_len] == '\0' || path[rest_len] == '/' || path[rest_len] == '?'))
        return SAS_OK;
wrong:
    return fail(err, SAS_ERR_RESOURCE, "token resource 'sr=%.100s' does not cover '%.100s%.100s'",
                t->sr_decoded, host, path ? path : "");
}

int sas_check_device_resource(const struct sas_token *t, const char *id_scope,
                              const char *registration_id, struct dps_error *err)
{
    const char *r = t->sr_decoded, *mid = "/registrations/";
    size_t scope_len = strlen(id_scope), mid_len = strlen(mid), id_len = strlen(registration_id);

    if (strlen(r) != scope_len + mid_len + id_len || strncasecmp(r, id_scope, scope_len) != 0 ||
        strncasecmp(r + scope_len, mid, mid_len) != 0 ||
        strncasecmp(r + scope_len + mid_len, registration_id, id_len) != 0)
        return fail(err, SAS_ERR_RESOURCE,
                    "token resource 'sr=%.100s' is not '%.40s/registrations/%.128s'", r, id_scope,
                    registration_id);
    if (t->skn && strcmp(t->skn, SAS_DEVICE_KEY_NAME) != 0)
        return fail(err, SAS_ERR_POLICY, "token 'skn=%.64s' is not '%s'", t->skn,
                    SAS_DEVICE_KEY_NAME);
    return SAS_OK;
}

static int mac_over(const unsigned char *key, size_t key_len, const char *sr, const char *se,
                    const unsigned char want[SAS_MAC_SIZE])
{
    unsigned char got[SAS_MAC_SIZE];
    int same;

    if (hmac_sha256(key, key_len, sr, strlen(sr), se, strlen(se), got) != 0)
        return -1;
    same = CRYPTO_memcmp(got, want, SAS_MAC_SIZE) == 0;
    OPENSSL_cleanse(got, sizeof(got));
    return same;
}

int sas_signature_matches(const struct sas_token *t, const unsigned char *key, size_t key_len)
{
    char *variant = NULL;
    int m;

    m = mac_over(key, key_len, t->sr, t->se, t->mac);
    if (m != 0)
        return m;
    /* Fallbacks: the same resource as another client would have signed it. */
    if (strcmp(t->sr, t->sr_decoded) != 0) {
        m = mac_over(key, key_len, t->sr_decoded, t->se, t->mac);
        if (m != 0)
            return m;
    }
    for (int flags = 0; flags <= PCT_LOWER; flags += PCT_LOWER) {
        if (pct_encode(t->sr_decoded, strlen(t->sr_decoded), flags, &variant) != DPS_OK)
            return -1;
        m = strcmp(variant, t->sr) != 0 ? mac_over(key, key_len, variant, t->se, t->mac) : 0;
        free(variant);
        if (m != 0)
            return m;
    }
    return 0;
}

int sas_signature_matches_b64(const struct sas_token *t, const char *key_b64)
{
    unsigned char *key = NULL;
    size_t key_len = 0;
    int rc;

    rc = b64_decode(key_b64, strlen(key_b64), 0, &key, &key_len);
    if (rc == DPS_ERR_INVAL)
        return 0;
    if (rc != DPS_OK)
        return -1;
    rc = sas_signature_matches(t, key, key_len);
    OPENSSL_cleanse(key, key_len);
    free(key);
    return rc;
}

int sas_verify_service(const struct sas_token *t, const char *host, const char *path,
                       const char *key_b64, int64_t now, struct dps_error *err)
{
    int rc;

    rc = sas_check_expiry(t, now, err);
    if (rc != SAS_OK)
        return rc;
    rc = sas_check_service_resource(t, host, path, err);
    if (rc != SAS_OK)
        return rc;
    if (!t->skn)
        return fail(err, SAS_ERR_POLICY, "token has no 'skn' (shared access policy name)");
    if (!key_b64)
        return fail(err, SAS_ERR_POLICY, "shared access policy '%.64s' does not exist", t->skn);
    rc = sas_signature_matches_b64(t, key_b64);
    if (rc < 0)
        return fail(err, SAS_ERR_NOMEM, "out of memory");
    if (rc == 0)
        return fail(err, SAS_ERR_SIGNATURE,
                    "token signature does not match the key of policy '%.64s'", t->skn);
    return SAS_OK;
}
