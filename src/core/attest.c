/* SPDX-License-Identifier: MIT */
/*
 * X.509 and symmetric-key attestation and enrollment matching. Every
 * refusal concludes the trace with what an operator must fix and a short
 * device message that names no enrollment, group or CA.
 */
#include "core/common.h"
#include "core/attest.h"

#include <ctype.h>
#include <stdarg.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "core/hex.h"
#include "core/regid.h"
#include "core/sas.h"
#include "core/timeutil.h"
#include "core/x509_info.h"

/* Names in trace lines are cut here; a trace line is TRACE_LINE_MAX anyway. */
#define NAME_MAX_SHOWN 200
#define CACHE_BUCKETS 256
/* Trust anchors of one group: two signing certificates and two referenced CAs. */
#define GROUP_ANCHORS_MAX 4

static const char dev_untrusted[] = "certificate chain is not trusted by any enrollment";
static const char dev_bad_cert[] = "the device certificate is not acceptable";
static const char dev_disabled[] = "the device's enrollment is disabled";
static const char dev_bad_sas[] = "the SAS token is not valid";
static const char dev_no_key[] = "the SAS token signature does not match any enrollment";

void attest_result_init(struct attest_result *r)
{
    memset(r, 0, sizeof(*r));
    r->outcome = ATTEST_DENIED;
    r->kind = ATTEST_KIND_NONE;
    r->http_status = 401;
    r->error_code = ATTEST_ERR_UNAUTHORIZED;
}

void attest_result_release(struct attest_result *r)
{
    trace_free(r->trace);
    attest_result_init(r);
}

const char *attest_outcome_name(enum attest_outcome o)
{
    switch (o) {
    case ATTEST_ASSIGN:
        return "assigned";
    case ATTEST_DISABLED:
        return "disabled";
    case ATTEST_DENIED:
        return "unauthorized";
    }
    return "unknown";
}

/* Sets the outcome fields of r and concludes its trace for a refusal. */
static void deny(struct attest_result *r, const char *device_message, const char *summary)
{
    r->outcome = ATTEST_DENIED;
    r->kind = ATTEST_KIND_NONE;
    r->enrollment_id = NULL;
    r->http_status = 401;
    r->error_code = ATTEST_ERR_UNAUTHORIZED;
    trace_conclude(r->trace, ATTEST_ERR_UNAUTHORIZED, device_message, "%s", summary);
}

static void decide(struct attest_result *r, bool enabled, bool is_group, const char *id,
                   const char *how)
{
    const char *what = is_group ? "enrollment group" : "individual enrollment";

    r->outcome = enabled ? ATTEST_ASSIGN : ATTEST_DISABLED;
    r->kind = is_group ? ATTEST_KIND_GROUP : ATTEST_KIND_INDIVIDUAL;
    r->enrollment_id = id;
    r->http_status = 200;
    r->error_code = 0;
    if (enabled)
        trace_conclude(r->trace, 0, NULL, "attested by %s '%s' (%s)", what, id, how);
    else
        trace_conclude(r->trace, 0, dev_disabled,
                       "the device matches %s '%s' (%s), which is disabled; enable it to let the "
                       "device register",
                       what, id, how);
}

/*
 * A disabled individual enrollment for this id blocks the device although
 * group_id would accept it (what is the credential the group accepts).
 */
static void decide_blocked(struct attest_result *r, const char *individual_id, const char *group_id,
                           const char *what)
{
    r->outcome = ATTEST_DISABLED;
    r->kind = ATTEST_KIND_INDIVIDUAL;
    r->enrollment_id = individual_id;
    r->http_status = 200;
    r->error_code = 0;
    trace_conclude(r->trace, 0, dev_disabled,
                   "individual enrollment '%s' for this registration id is disabled: it blocks "
                   "the device although enrollment group '%s' %s; enable or delete the "
                   "individual enrollment",
                   individual_id, group_id, what);
}

/* ---- names, dates and thumbprints for the trace ---- */

static void name_str(const X509_NAME *name, char *buf, size_t size)
{
    if (!name || x509_info_name_format(name, buf, size, NULL) != DPS_OK)
        snprintf(buf, size, "(unreadable name)");
}

static void subject_str(X509 *c, char *buf, size_t size)
{
    name_str(X509_get_subject_name(c), buf, size);
}

static void issuer_str(X509 *c, char *buf, size_t size)
{
    name_str(X509_get_issuer_name(c), buf, size);
}

static void thumbprint(X509 *c, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    out[0] = '\0';
    if (X509_digest(c, EVP_sha256(), md, &n) != 1 || n != 32)
        return;
    *hex_encode_upper(md, n, out) = '\0';
}

static void time_str(time_t t, char out[TIMEUTIL_ISO_SECONDS_SIZE])
{
    if (timeutil_format_seconds((int64_t)t, out) != 0)
        snprintf(out, TIMEUTIL_ISO_SECONDS_SIZE, "(out of range)");
}

static void asn1_time_str(const ASN1_TIME *t, char out[TIMEUTIL_ISO_SECONDS_SIZE])
{
    struct tm tm;

    if (!t || ASN1_TIME_to_tm(t, &tm) != 1) {
        snprintf(out, TIMEUTIL_ISO_SECONDS_SIZE, "(unreadable)");
        return;
    }
    time_str(timegm(&tm), out);
}

/* ---- the leaf: identity, dates, usage ---- */

/*
 * Reads the leaf's single subject CN into cn (ATTEST_CN_MAX + 1 bytes).
 * Returns NULL, or the reason it is not usable (a static string or reason).
 */
static const char *leaf_cn(X509 *leaf, char *cn, char *reason, size_t reason_size)
{
    const X509_NAME *subj = X509_get_subject_name(leaf);
    unsigned char *utf8 = NULL;
    int idx, n;

    idx = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
    if (idx < 0)
        return "the device certificate has no subject CN; the CN must be the registration id";
    if (X509_NAME_get_index_by_NID(subj, NID_commonName, idx) >= 0)
        return "the device certificate has more than one subject CN; it must have exactly one, "
               "the registration id";
    n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx)));
    if (n < 0)
        return "the device certificate's subject CN is not readable text";
    if (n == 0 || n > ATTEST_CN_MAX || memchr(utf8, '\0', (size_t)n)) {
        snprintf(reason, reason_size,
                 "the device certificate's subject CN is %d bytes long; a registration id taken "
                 "from a CN is 1 to %d bytes",
                 n, ATTEST_CN_MAX);
        OPENSSL_free(utf8);
        return reason;
    }
    memcpy(cn, utf8, (size_t)n);
    cn[n] = '\0';
    OPENSSL_free(utf8);
    return NULL;
}

/* Checks the leaf's dates, keyUsage and extendedKeyUsage; NULL or the reason (in reason). */
static const char *leaf_usable(X509 *leaf, time_t now, char *reason, size_t size)
{
    char when[TIMEUTIL_ISO_SECONDS_SIZE], now_s[TIMEUTIL_ISO_SECONDS_SIZE];
    uint32_t flags;
    int cmp;

    time_str(now, now_s);
    cmp = X509_cmp_time(X509_get0_notBefore(leaf), &now);
    if (cmp == 0)
        return "the device certificate's notBefore date is malformed";
    if (cmp > 0) {
        asn1_time_str(X509_get0_notBefore(leaf), when);
        snprintf(reason, size,
                 "the device certificate is not yet valid: notBefore is %s, the time now is %s "
                 "(check the device's or the issuing CA's clock)",
                 when, now_s);
        return reason;
    }
    cmp = X509_cmp_time(X509_get0_notAfter(leaf), &now);
    if (cmp == 0)
        return "the device certificate's notAfter date is malformed";
    if (cmp < 0) {
        asn1_time_str(X509_get0_notAfter(leaf), when);
        snprintf(reason, size,
                 "the device certificate expired: notAfter is %s, the time now is %s; issue the "
                 "device a new certificate",
                 when, now_s);
        return reason;
    }
    flags = X509_get_extension_flags(leaf);
    if (flags & EXFLAG_INVALID)
        return "the device certificate has malformed or repeated extensions";
    if ((flags & EXFLAG_KUSAGE) && !(X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE))
        return "the device certificate's keyUsage does not allow digitalSignature, which a TLS "
               "client certificate needs";
    if ((flags & EXFLAG_XKUSAGE) &&
        !(X509_get_extended_key_usage(leaf) & (XKU_SSL_CLIENT | XKU_ANYEKU)))
        return "the device certificate's extendedKeyUsage does not include clientAuth";
    return NULL;
}

/* ---- compiled group stores and their cache ---- */

struct cache_entry {
    struct cache_entry *next;
    char *id;
    char *etag;
    X509 *anchors[GROUP_ANCHORS_MAX];
    size_t n_anchors;
    X509_STORE *store;
};

struct attest_cache {
    struct cache_entry *buckets[CACHE_BUCKETS];
    size_t n;
};

struct attest_cache *attest_cache_new(void)
{
    return calloc(1, sizeof(struct attest_cache));
}

static void entry_free(struct cache_entry *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->n_anchors; i++)
        X509_free(e->anchors[i]);
    X509_STORE_free(e->store);
    free(e->id);
    free(e->etag);
    free(e);
}

static void cache_clear(struct attest_cache *cache)
{
    for (size_t b = 0; b < CACHE_BUCKETS; b++) {
        while (cache->buckets[b]) {
            struct cache_entry *e = cache->buckets[b];

            cache->buckets[b] = e->next;
            entry_free(e);
        }
    }
    cache->n = 0;
}

void attest_cache_free(struct attest_cache *cache)
{
    if (!cache)
        return;
    cache_clear(cache);
    free(cache);
}

size_t attest_cache_size(const struct attest_cache *cache)
{
    return cache->n;
}

static size_t bucket_of(const char *id)
{
    uint32_t h = 2166136261u;

    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 16777619u;
    return h % CACHE_BUCKETS;
}

void attest_cache_forget(struct attest_cache *cache, const char *group_id)
{
    struct cache_entry **p = &cache->buckets[bucket_of(group_id)];

    for (; *p; p = &(*p)->next) {
        if (strcmp((*p)->id, group_id) == 0) {
            struct cache_entry *e = *p;

            *p = e->next;
            entry_free(e);
            cache->n--;
            return;
        }
    }
}

/*
 * The certificates a group trusts: its signing certificates and the verified
 * CAs it references. With unverified set, instead the referenced CAs that
 * exist but are not verified (used only to explain a refusal).
 */
static size_t group_anchors(const struct attest_x509_candidate *g, bool unverified,
                            X509 *out[GROUP_ANCHORS_MAX])
{
    size_t n = 0;

    for (int i = 0; i < 2; i++) {
        if (!unverified && g->certs[i])
            out[n++] = g->certs[i];
    }
    for (int i = 0; i < 2; i++) {
        if (g->ca_ref_names[i] && g->ca_certs[i] && g->ca_verified[i] != unverified)
            out[n++] = g->ca_certs[i];
    }
    return n;
}

static X509_STORE *store_compile(X509 *const *anchors, size_t n)
{
    X509_STORE *store = X509_STORE_new();

    if (!store)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        /* The same certificate as primary and secondary is no error. */
        if (X509_STORE_add_cert(store, anchors[i]) != 1 &&
            ERR_GET_REASON(ERR_peek_last_error()) != X509_R_CERT_ALREADY_IN_HASH_TABLE) {
            X509_STORE_free(store);
            return NULL;
        }
        ERR_clear_error();
    }
    return store;
}

static bool anchors_equal(const struct cache_entry *e, X509 *const *anchors, size_t n)
{
    if (e->n_anchors != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (X509_cmp(e->anchors[i], anchors[i]) != 0)
            return false;
    }
    return true;
}

/*
 * The compiled store of a group's trusted anchors, from the cache when its
 * entry has the same etag and the same anchors. The caller frees the result
 * with X509_STORE_free(); NULL when out of memory.
 */
static X509_STORE *group_store(struct attest_cache *cache, const struct attest_x509_candidate *g,
                               X509 *const *anchors, size_t n)
{
    struct cache_entry *e, **p;
    X509_STORE *store;
    size_t b;

    if (!cache || !g->etag || !g->id)
        return store_compile(anchors, n);
    b = bucket_of(g->id);
    for (p = &cache->buckets[b]; *p; p = &(*p)->next) {
        if (strcmp((*p)->id, g->id) == 0)
            break;
    }
    e = *p;
    if (e && strcmp(e->etag, g->etag) == 0 && anchors_equal(e, anchors, n)) {
        if (X509_STORE_up_ref(e->store) != 1)
            return NULL;
        return e->store;
    }
    if (e) {
        /* Stale: the group changed (new etag) or a referenced CA did. */
        *p = e->next;
        entry_free(e);
        cache->n--;
    }
    store = store_compile(anchors, n);
    if (!store)
        return NULL;
    if (cache->n >= ATTEST_CACHE_MAX)
        cache_clear(cache);
    e = calloc(1, sizeof(*e));
    if (!e || !(e->id = strdup(g->id)) || !(e->etag = strdup(g->etag)) ||
        X509_STORE_up_ref(store) != 1) {
        /* Not cached, still usable. */
        entry_free(e);
        return store;
    }
    e->store = store;
    for (size_t i = 0; i < n; i++) {
        X509_up_ref(anchors[i]);
        e->anchors[e->n_anchors++] = anchors[i];
    }
    e->next = cache->buckets[b];
    cache->buckets[b] = e;
    cache->n++;
    return store;
}

/* ---- chain verification against one group ---- */

struct verdict {
    bool verified;
    int depth;       /* verified: index of the trust anchor in the verified chain (0 = the leaf) */
    X509 *anchor;    /* verified: the anchor (borrowed from the candidate) */
    int error;       /* not verified: the OpenSSL X509_V_ERR_* code */
    int error_depth; /* not verified: the link that failed (0 = the leaf) */
    char error_subject[NAME_MAX_SHOWN];
};

/* Verifies chain against store; -1 when out of memory, 0 otherwise (see v). */
static int verify_chain(X509_STORE *store, STACK_OF(X509) * chain, time_t now, X509 *const *anchors,
                        size_t n_anchors, struct verdict *v)
{
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    X509_VERIFY_PARAM *param;
    STACK_OF(X509) * built;
    X509 *top, *failed;
    int rc = -1;

    memset(v, 0, sizeof(*v));
    if (!ctx || X509_STORE_CTX_init(ctx, store, sk_X509_value(chain, 0), chain) != 1)
        goto out;
    param = X509_STORE_CTX_get0_param(ctx);
    /* A directly enrolled intermediate is a trust anchor of its own. */
    X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_PARTIAL_CHAIN);
    X509_VERIFY_PARAM_set_time(param, now);
    X509_VERIFY_PARAM_set_depth(param, ATTEST_CHAIN_MAX);
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
    if (X509_verify_cert(ctx) == 1) {
        built = X509_STORE_CTX_get0_chain(ctx);
        top = sk_X509_value(built, sk_X509_num(built) - 1);
        v->verified = true;
        v->depth = sk_X509_num(built) - 1;
        for (size_t i = 0; i < n_anchors; i++) {
            if (X509_cmp(anchors[i], top) == 0)
                v->anchor = anchors[i];
        }
    } else {
        v->error = X509_STORE_CTX_get_error(ctx);
        v->error_depth = X509_STORE_CTX_get_error_depth(ctx);
        failed = X509_STORE_CTX_get_current_cert(ctx);
        if (failed)
            subject_str(failed, v->error_subject, sizeof(v->error_subject));
        else
            snprintf(v->error_subject, sizeof(v->error_subject), "(unknown)");
    }
    ERR_clear_error();
    rc = 0;
out:
    X509_STORE_CTX_free(ctx);
    return rc;
}

/* Whether a group's anchor can be related to the chain at all: same subject as a
 * presented CA certificate, or the issuer named by a presented certificate. */
static bool related(X509 *anchor, STACK_OF(X509) * chain)
{
    const X509_NAME *name = X509_get_subject_name(anchor);

    for (int i = 0; i < sk_X509_num(chain); i++) {
        X509 *c = sk_X509_value(chain, i);

        if (X509_NAME_cmp(name, X509_get_issuer_name(c)) == 0)
            return true;
        if (i > 0 && X509_NAME_cmp(name, X509_get_subject_name(c)) == 0)
            return true;
    }
    return false;
}

/* What the group evaluation found, for the summary when nothing matched. */
struct failure {
    /* 0 none, 1 closest unrelated group, 2 related group failed, 3 a presented certificate
     * impersonates a trusted one, 4 the chain leads to an unverified CA */
    int priority;
    char text[TRACE_LINE_MAX];
};

static void failure_set(struct failure *f, int priority, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void failure_set(struct failure *f, int priority, const char *fmt, ...)
{
    va_list ap;

    if (priority <= f->priority)
        return;
    f->priority = priority;
    va_start(ap, fmt);
    vsnprintf(f->text, sizeof(f->text), fmt, ap);
    va_end(ap);
}

/* Lines explaining a presented certificate that carries an anchor's name but is another
 * certificate. */
static void trace_impostors(struct trace *t, const struct attest_x509_candidate *g, X509 *anchor,
                            STACK_OF(X509) * chain, struct failure *f)
{
    char name[NAME_MAX_SHOWN], got[65], want[65];
    bool other_key;

    for (int i = 1; i < sk_X509_num(chain); i++) {
        X509 *c = sk_X509_value(chain, i);

        if (X509_NAME_cmp(X509_get_subject_name(anchor), X509_get_subject_name(c)) != 0 ||
            X509_cmp(anchor, c) == 0)
            continue;
        subject_str(c, name, sizeof(name));
        thumbprint(c, got);
        thumbprint(anchor, want);
        other_key = EVP_PKEY_eq(X509_get0_pubkey(c), X509_get0_pubkey(anchor)) != 1;
        trace_add(t,
                  "presented certificate %d '%s' has the name of group '%s''s trusted certificate "
                  "but is a different certificate%s (thumbprint %s, the group trusts %s)",
                  i + 1, name, g->id, other_key ? " with a different key" : "", got, want);
        failure_set(f, 3,
                    "certificate chain is not trusted: presented certificate %d '%s' has the name "
                    "of the certificate group '%s' trusts, but is a different certificate%s; "
                    "it is forged, or the CA was re-issued and the group must be updated",
                    i + 1, name, g->id, other_key ? " with a different key" : "");
    }
}

/* Length of the common case-insensitive prefix of a and b. */
static size_t common_prefix(const char *a, const char *b)
{
    size_t n = 0;

    while (a[n] && b[n] && tolower((unsigned char)a[n]) == tolower((unsigned char)b[n]))
        n++;
    return n;
}

/* The closest unrelated group by name, for "closest match" in the summary. */
static void closest_match(const struct attest_x509_request *req, struct failure *f)
{
    char want[NAME_MAX_SHOWN], have[NAME_MAX_SHOWN], best_want[NAME_MAX_SHOWN] = "";
    char best_have[NAME_MAX_SHOWN] = "";
    const char *best_id = NULL;
    size_t best = 0;
    X509 *top = sk_X509_value(req->chain, sk_X509_num(req->chain) - 1);

    issuer_str(top, best_have, sizeof(best_have));
    for (size_t i = 0; i < req->n_groups; i++) {
        const struct attest_x509_candidate *g = &req->groups[i];
        X509 *anchors[GROUP_ANCHORS_MAX];
        size_t n = group_anchors(g, false, anchors);

        for (size_t a = 0; a < n; a++) {
            subject_str(anchors[a], want, sizeof(want));
            for (int c = 0; c < sk_X509_num(req->chain); c++) {
                size_t p;

                issuer_str(sk_X509_value(req->chain, c), have, sizeof(have));
                p = common_prefix(want, have);
                if (!best_id || p > best) {
                    best = p;
                    best_id = g->id;
                    snprintf(best_want, sizeof(best_want), "%s", want);
                    snprintf(best_have, sizeof(best_have), "%s", have);
                }
            }
        }
    }
    if (!best_id) {
        failure_set(f, 1,
                    "certificate chain does not lead to the signing certificate of any enrollment "
                    "group: there is no X.509 enrollment group and no individual enrollment for "
                    "this device; the device presented issuer '%s'",
                    best_have);
        return;
    }
    failure_set(f, 1,
                "certificate chain does not lead to the signing certificate of any enrollment "
                "group; closest match: group '%s' expects issuer '%s', the device presented "
                "issuer '%s'",
                best_id, best_want, best_have);
}

/* The best group for the chain (nearest anchor; a disabled one first on a tie), or NULL. */
static int match_groups(const struct attest_x509_request *req, struct trace *t,
                        const struct attest_x509_candidate **best, struct verdict *best_v,
                        struct failure *f)
{
    size_t unrelated = 0;

    *best = NULL;
    for (size_t i = 0; i < req->n_groups; i++) {
        const struct attest_x509_candidate *g = &req->groups[i];
        X509 *anchors[GROUP_ANCHORS_MAX], *pending[GROUP_ANCHORS_MAX];
        size_t n = group_anchors(g, false, anchors);
        size_t n_pending = group_anchors(g, true, pending);
        bool is_related = false;
        X509_STORE *store;
        struct verdict v;
        char name[NAME_MAX_SHOWN];

        for (int r = 0; r < 2; r++) {
            if (g->ca_ref_names[r] && !g->ca_certs[r])
                trace_add(t, "group '%s' references CA '%s', which does not exist", g->id,
                          g->ca_ref_names[r]);
        }
        for (size_t a = 0; a < n; a++)
            is_related = is_related || related(anchors[a], req->chain);
        for (size_t a = 0; a < n_pending; a++)
            is_related = is_related || related(pending[a], req->chain);
        if (!is_related) {
            if (++unrelated <= ATTEST_TRACE_GROUPS_MAX) {
                if (n > 0)
                    subject_str(anchors[0], name, sizeof(name));
                trace_add(t, "group '%s' passed over: %s%s%s", g->id,
                          n ? "its trusted certificate '" : "it has no usable trusted certificate",
                          n ? name : "", n ? "' is not in the chain and issued none of it" : "");
            }
            continue;
        }
        for (size_t a = 0; a < n; a++)
            trace_impostors(t, g, anchors[a], req->chain, f);

        if (n > 0) {
            store = group_store(req->cache, g, anchors, n);
            if (!store || verify_chain(store, req->chain, req->now, anchors, n, &v) != 0) {
                X509_STORE_free(store);
                return DPS_ERR_NOMEM;
            }
            X509_STORE_free(store);
            if (v.verified && v.depth == 0) {
                trace_add(t,
                          "group '%s' passed over: its signing certificate is the device's own "
                          "certificate; enroll a device certificate with an individual enrollment",
                          g->id);
                continue;
            }
            if (v.verified) {
                subject_str(v.anchor ? v.anchor : anchors[0], name, sizeof(name));
                trace_add(t,
                          "group '%s' (%s): the chain verifies up to its certificate '%s' at "
                          "link %d",
                          g->id, g->enabled ? "enabled" : "disabled", name, v.depth + 1);
                if (!*best || v.depth < best_v->depth ||
                    (v.depth == best_v->depth && !g->enabled && (*best)->enabled)) {
                    *best = g;
                    *best_v = v;
                }
                continue;
            }
            trace_add(t, "group '%s': the chain does not verify: link %d '%s': %s", g->id,
                      v.error_depth + 1, v.error_subject, X509_verify_cert_error_string(v.error));
            failure_set(f, 2,
                        "certificate chain is not trusted: group '%s' shares a name with it, but "
                        "link %d '%s' fails: %s",
                        g->id, v.error_depth + 1, v.error_subject,
                        X509_verify_cert_error_string(v.error));
        }
        if (n_pending > 0) {
            store = store_compile(pending, n_pending);
            if (!store || verify_chain(store, req->chain, req->now, pending, n_pending, &v) != 0) {
                X509_STORE_free(store);
                return DPS_ERR_NOMEM;
            }
            X509_STORE_free(store);
            if (v.verified && v.depth > 0) {
                const char *ref = g->ca_ref_names[0];

                if (v.anchor == g->ca_certs[1] && g->ca_ref_names[1])
                    ref = g->ca_ref_names[1];
                trace_add(t, "group '%s': the chain leads to CA '%s', which is not verified", g->id,
                          ref);
                failure_set(f, 4,
                            "certificate chain leads to CA '%s' referenced by group '%s', but "
                            "that CA is not verified; complete its proof of possession (verify "
                            "the CA) and the device can register",
                            ref, g->id);
            }
        }
    }
    if (unrelated > ATTEST_TRACE_GROUPS_MAX)
        trace_add(t, "%zu more groups passed over: their certificates are unrelated to the chain",
                  unrelated - ATTEST_TRACE_GROUPS_MAX);
    return DPS_OK;
}

static void trace_chain(struct trace *t, STACK_OF(X509) * chain)
{
    char subject[NAME_MAX_SHOWN], issuer[NAME_MAX_SHOWN];
    char from[TIMEUTIL_ISO_SECONDS_SIZE], to[TIMEUTIL_ISO_SECONDS_SIZE];

    for (int i = 0; i < sk_X509_num(chain); i++) {
        X509 *c = sk_X509_value(chain, i);

        subject_str(c, subject, sizeof(subject));
        issuer_str(c, issuer, sizeof(issuer));
        asn1_time_str(X509_get0_notBefore(c), from);
        asn1_time_str(X509_get0_notAfter(c), to);
        trace_add(t, "presented certificate %d: subject '%s', issuer '%s', valid %s to %s", i + 1,
                  subject, issuer, from, to);
    }
}

/* Refuses a chain that is missing, too long or too big; NULL when it is fine. */
static const char *chain_bounds(STACK_OF(X509) * chain, char *reason, size_t size)
{
    size_t bytes = 0;
    int n = chain ? sk_X509_num(chain) : 0;

    if (n <= 0)
        return "the device presented no client certificate; X.509 devices must send their "
               "certificate (and its intermediates) in the TLS handshake";
    if (n > ATTEST_CHAIN_MAX) {
        snprintf(reason, size, "the device presented %d certificates; at most %d are accepted", n,
                 ATTEST_CHAIN_MAX);
        return reason;
    }
    for (int i = 0; i < n; i++) {
        int len = i2d_X509(sk_X509_value(chain, i), NULL);

        if (len <= 0)
            return "a presented certificate cannot be encoded";
        bytes += (size_t)len;
    }
    if (bytes > ATTEST_CHAIN_BYTES_MAX) {
        snprintf(reason, size,
                 "the presented certificates hold %zu bytes together; at most %d are accepted",
                 bytes, ATTEST_CHAIN_BYTES_MAX);
        return reason;
    }
    return NULL;
}

/* Whether the leaf is one of the individual enrollment's client certificates; which in *which. */
static bool individual_matches(const struct attest_x509_candidate *ind, X509 *leaf,
                               const char **which)
{
    static const char *const names[] = {"primary", "secondary"};

    for (int i = 0; i < 2; i++) {
        if (ind->certs[i] && X509_cmp(ind->certs[i], leaf) == 0) {
            *which = names[i];
            return true;
        }
    }
    return false;
}

int attest_x509(const struct attest_x509_request *req, struct attest_result *out)
{
    struct attest_result r;
    const struct attest_x509_candidate *ind = req->individual, *g = NULL;
    struct verdict v = {0};
    struct failure f = {0};
    char reason[TRACE_LINE_MAX], cn[ATTEST_CN_MAX + 1], how[TRACE_LINE_MAX];
    char name[NAME_MAX_SHOWN], print[65];
    const char *why, *which;
    struct dps_error err;
    bool blocked = false;
    X509 *leaf;
    int rc;

    if (!req->registration_id)
        return DPS_ERR_INVAL;
    attest_result_init(&r);
    r.trace = trace_new();
    if (!r.trace)
        return DPS_ERR_NOMEM;

    why = chain_bounds(req->chain, reason, sizeof(reason));
    if (why) {
        deny(&r, dev_bad_cert, why);
        goto done;
    }
    trace_chain(r.trace, req->chain);
    leaf = sk_X509_value(req->chain, 0);
    why = leaf_cn(leaf, cn, reason, sizeof(reason));
    if (why) {
        deny(&r, dev_bad_cert, why);
        goto done;
    }
    if (regid_validate(cn, strlen(cn), &err) != DPS_OK) {
        snprintf(reason, sizeof(reason),
                 "the device certificate's subject CN is not a valid registration id: %s", err.msg);
        deny(&r, "the certificate CN is not a valid registration id", reason);
        goto done;
    }
    if (strcmp(cn, req->registration_id) != 0) {
        snprintf(reason, sizeof(reason),
                 "the device certificate's subject CN '%s' differs from the registration id "
                 "'%.128s' the device asked for; they must be equal",
                 cn, req->registration_id);
        deny(&r, "the certificate CN does not match the registration id", reason);
        goto done;
    }
    why = leaf_usable(leaf, req->now, reason, sizeof(reason));
    if (why) {
        deny(&r, dev_bad_cert, why);
        goto done;
    }

    /* Most specific first: the individual enrollment for this id. */
    if (ind) {
        if (individual_matches(ind, leaf, &which)) {
            snprintf(how, sizeof(how), "the device certificate is its %s client certificate",
                     which);
            decide(&r, ind->enabled, false, ind->id, how);
            goto done;
        }
        thumbprint(leaf, print);
        trace_add(r.trace,
                  "individual enrollment '%s' (%s): the device certificate (SHA-256 %s) is neither "
                  "its primary nor its secondary client certificate",
                  ind->id, ind->enabled ? "enabled" : "disabled", print);
        blocked = !ind->enabled;
    } else {
        trace_add(r.trace, "no individual X.509 enrollment for registration id '%s'", cn);
    }

    rc = match_groups(req, r.trace, &g, &v, &f);
    if (rc != DPS_OK) {
        attest_result_release(&r);
        return rc;
    }
    if (g && !(X509_get_extension_flags(leaf) & EXFLAG_CA)) {
        subject_str(v.anchor ? v.anchor : g->certs[0] ? g->certs[0] : leaf, name, sizeof(name));
        if (blocked) {
            decide_blocked(&r, ind->id, g->id, "would accept its chain");
            goto done;
        }
        snprintf(how, sizeof(how), "chain verified up to '%s' at link %d", name, v.depth + 1);
        decide(&r, g->enabled, true, g->id, how);
        goto done;
    }
    if (g) {
        snprintf(reason, sizeof(reason),
                 "the device certificate is a CA certificate (basicConstraints CA:TRUE); group "
                 "'%s' accepts only device (end-entity) certificates",
                 g->id);
        deny(&r, dev_bad_cert, reason);
        goto done;
    }
    if (f.priority < 2 && ind && req->n_groups == 0) {
        thumbprint(leaf, print);
        failure_set(&f, 1,
                    "the device certificate (SHA-256 %s) is not a client certificate of "
                    "individual enrollment '%s', and there is no X.509 enrollment group",
                    print, ind->id);
    }
    if (f.priority < 2)
        closest_match(req, &f);
    if (blocked)
        trace_add(r.trace, "individual enrollment '%s' is disabled as well", ind->id);
    deny(&r, dev_untrusted, f.text);
done:
    attest_result_release(out);
    *out = r;
    return DPS_OK;
}

/* ---- symmetric keys ---- */

/* 1 when the token is signed with key_b64, 0 when not, -1 out of memory. */
static int key_matches(const struct sas_token *tok, const char *key_b64)
{
    return key_b64 ? sas_signature_matches_b64(tok, key_b64) : 0;
}

void attest_symkey_memo_release(struct attest_symkey_memo *m)
{
    if (!m || !m->group_key)
        return;
    OPENSSL_cleanse(m->group_key, strlen(m->group_key));
    free(m->group_key);
    m->group_key = NULL;
}

/*
 * 1 when the token is signed with the key derived from group_key_b64, 0
 * not, -1 out of memory. A match is recorded in memo (if any); a memo that
 * names group_key_b64 answers 1 without the HMACs.
 */
static int derived_matches(const struct sas_token *tok, const char *group_key_b64,
                           const char *registration_id, struct attest_symkey_memo *memo)
{
    char *derived = NULL;
    int rc;

    if (!group_key_b64)
        return 0;
    if (memo && memo->group_key && strcmp(memo->group_key, group_key_b64) == 0)
        return 1;
    rc = sas_derive_device_key(group_key_b64, registration_id, strlen(registration_id), &derived,
                               NULL);
    if (rc == SAS_ERR_NOMEM)
        return -1;
    if (rc != SAS_OK)
        return 0;
    rc = sas_signature_matches_b64(tok, derived);
    OPENSSL_cleanse(derived, strlen(derived));
    free(derived);
    if (rc > 0 && memo) {
        /* Out of memory here only loses the shortcut. */
        attest_symkey_memo_release(memo);
        memo->group_key = strdup(group_key_b64);
    }
    return rc;
}

int attest_symkey(const struct attest_symkey_request *req, struct attest_result *out)
{
    static const char *const which[] = {"primary", "secondary"};
    struct attest_result r;
    const struct attest_symkey_candidate *ind = req->individual;
    struct sas_token *tok = NULL;
    struct dps_error err;
    char reason[TRACE_LINE_MAX], when[TIMEUTIL_ISO_SECONDS_SIZE], now_s[TIMEUTIL_ISO_SECONDS_SIZE];
    char how[TRACE_LINE_MAX];
    bool blocked = false;
    size_t tried = 0;
    int rc, m;

    if (!req->id_scope || !req->registration_id)
        return DPS_ERR_INVAL;
    attest_result_init(&r);
    r.trace = trace_new();
    if (!r.trace)
        return DPS_ERR_NOMEM;

    rc = req->token ? sas_token_parse(req->token, req->token_len, &tok, &err) : SAS_ERR_MALFORMED;
    if (rc == SAS_ERR_NOMEM)
        goto nomem;
    if (rc != SAS_OK) {
        snprintf(reason, sizeof(reason), "the SAS token is malformed: %s",
                 req->token ? err.msg : "the device sent none");
        deny(&r, dev_bad_sas, reason);
        goto done;
    }
    if (sas_check_expiry(tok, (int64_t)req->now, &err) != SAS_OK) {
        time_str((time_t)tok->expiry, when);
        time_str(req->now, now_s);
        snprintf(reason, sizeof(reason),
                 "the SAS token expired at %s (se=%s); the time now is %s; the device must sign "
                 "a new token (check its clock)",
                 when, tok->se, now_s);
        deny(&r, "the SAS token has expired", reason);
        goto done;
    }
    if (sas_check_device_resource(tok, req->id_scope, req->registration_id, &err) != SAS_OK) {
        snprintf(reason, sizeof(reason), "the SAS token is not for this registration: %s", err.msg);
        deny(&r, dev_bad_sas, reason);
        goto done;
    }

    if (ind) {
        for (int k = 0; k < 2; k++) {
            m = key_matches(tok, k ? ind->secondary_key : ind->primary_key);
            if (m < 0)
                goto nomem;
            if (m > 0) {
                snprintf(how, sizeof(how), "signed with its %s key", which[k]);
                decide(&r, ind->enabled, false, ind->id, how);
                goto done;
            }
        }
        trace_add(r.trace,
                  "individual enrollment '%s' (%s): the token is signed with neither its primary "
                  "nor its secondary key",
                  ind->id, ind->enabled ? "enabled" : "disabled");
        blocked = !ind->enabled;
    } else {
        trace_add(r.trace, "no individual symmetric-key enrollment for registration id '%.128s'",
                  req->registration_id);
    }

    for (size_t i = 0; i < req->n_groups; i++) {
        const struct attest_symkey_candidate *g = &req->groups[i];

        for (int k = 0; k < 2; k++) {
            const char *key = k ? g->secondary_key : g->primary_key;

            /*
             * The derived key first: it is what a device signs with, and
             * a token matching it cannot also match the group key itself
             * (two keys, one HMAC), so the order changes no decision and
             * spares the group-key check (up to four HMACs, one per way
             * of writing the resource) on every accepted registration.
             */
            m = derived_matches(tok, key, req->registration_id, req->memo);
            if (m < 0)
                goto nomem;
            if (m > 0) {
                if (blocked) {
                    decide_blocked(&r, ind->id, g->id, "accepts its derived key");
                    goto done;
                }
                snprintf(how, sizeof(how), "signed with the key derived from its %s key", which[k]);
                decide(&r, g->enabled, true, g->id, how);
                goto done;
            }
            m = key_matches(tok, key);
            if (m < 0)
                goto nomem;
            if (m > 0) {
                snprintf(reason, sizeof(reason),
                         "the SAS token is signed with the %s key of enrollment group '%s' "
                         "itself; a device must sign with its derived key "
                         "base64(HMAC-SHA256(base64decode(groupKey), registrationId)), never "
                         "with the group key",
                         which[k], g->id);
                deny(&r, "the SAS token is signed with a group key, not a device key", reason);
                goto done;
            }
        }
        if (++tried <= ATTEST_TRACE_GROUPS_MAX)
            trace_add(r.trace,
                      "group '%s' (%s): the token is signed with neither of its derived keys",
                      g->id, g->enabled ? "enabled" : "disabled");
    }
    if (tried > ATTEST_TRACE_GROUPS_MAX)
        trace_add(r.trace, "%zu more groups: the token is signed with none of their derived keys",
                  tried - ATTEST_TRACE_GROUPS_MAX);
    snprintf(reason, sizeof(reason),
             "the SAS token signature matches no enrollment key: tried %sthe derived keys of "
             "%zu symmetric-key enrollment group%s; check the key the device signs with (for a "
             "group: the key derived from the group key and the registration id '%.128s')",
             ind ? "the individual enrollment's primary and secondary keys and " : "",
             req->n_groups, req->n_groups == 1 ? "" : "s", req->registration_id);
    deny(&r, dev_no_key, reason);
done:
    sas_token_free(tok);
    attest_result_release(out);
    *out = r;
    return DPS_OK;
nomem:
    sas_token_free(tok);
    attest_result_release(&r);
    return DPS_ERR_NOMEM;
}
