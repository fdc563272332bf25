/* SPDX-License-Identifier: MIT */
/*
 * Shared access signature tokens: building them (libdps, dpsctl), parsing
 * and verifying them (dpsd: the service API per protocol §3.1, the device
 * API per §4.4), and the derived device keys of symmetric-key enrollment
 * groups (§6). No store access: callers look up policies and enrollment
 * keys and hand the keys in. Linked into libdps: nothing here aborts.
 *
 * Token: "SharedAccessSignature sr=RES&sig=URLENC(B64(HMAC-SHA256(KEY, RES "\n"
 * SE)))&se=SE[&skn=NAME]"
 */
#ifndef DPS_CORE_SAS_H
#define DPS_CORE_SAS_H

#include <stddef.h>
#include <stdint.h>

#include "dps/error.h"

/* Longest token accepted by sas_token_parse(), in bytes. */
#define SAS_TOKEN_MAX_LEN 4096
/* Seconds a token may be past its expiry and still be accepted (client clock drift). */
#define SAS_CLOCK_SKEW 300
/* Bytes of an HMAC-SHA256. */
#define SAS_MAC_SIZE 32
/* The skn that device tokens carry when they carry one. */
#define SAS_DEVICE_KEY_NAME "registration"

/*
 * Why a token was refused. Every failing sas_* function returns one of
 * these and fills err with a message for the operator; the caller maps the
 * result to its answer (all of them are 401 on the wire, DPS_ERR_NOMEM 500).
 */
enum sas_result {
    SAS_OK = 0,
    SAS_ERR_NOMEM,     /* out of memory */
    SAS_ERR_MALFORMED, /* not a SAS token, a field missing, repeated or badly encoded */
    SAS_ERR_EXPIRED,   /* se is in the past (beyond SAS_CLOCK_SKEW) */
    SAS_ERR_RESOURCE,  /* sr names another resource than the one requested */
    SAS_ERR_SIGNATURE, /* the signature does not match the key */
    SAS_ERR_POLICY,    /* skn names no known shared access policy */
};

/* A static, human-readable name for an enum sas_result value. */
const char *sas_strerror(int result);

/* A parsed token. Strings are NUL-terminated heap copies. */
struct sas_token {
    char *sr;         /* resource exactly as sent (still percent-encoded); signed as such */
    char *sr_decoded; /* sr percent-decoded */
    char *se;         /* expiry exactly as sent (decimal digits); signed as such */
    char *skn;        /* policy name, percent-decoded; NULL when the token has none */
    int64_t expiry;   /* se as seconds since the Unix epoch */
    unsigned char mac[SAS_MAC_SIZE]; /* sig, percent- and base64-decoded */
};

/*
 * Parses a token. Leading and trailing whitespace is ignored; the scheme
 * "SharedAccessSignature" (any case) and one or more spaces come first, then
 * k=v pairs joined by '&' in any order, each split at its first '='. sr, sig
 * and se are required, skn is optional, unknown names are ignored, a
 * repeated name is refused. se must be decimal digits only; sig must decode
 * (percent-decoding with either hex case, then base64) to 32 bytes.
 *
 * s, len: the token (need not be NUL-terminated), at most SAS_TOKEN_MAX_LEN.
 * out:    on success, the token, freed by the caller with sas_token_free().
 * err:    on failure, what is wrong (may be NULL); code DPS_ERR_AUTH or DPS_ERR_NOMEM.
 *
 * Returns: SAS_OK, SAS_ERR_MALFORMED or SAS_ERR_NOMEM.
 */
int sas_token_parse(const char *s, size_t len, struct sas_token **out, struct dps_error *err);

/* Frees t; t may be NULL. */
void sas_token_free(struct sas_token *t);

/*
 * Builds a token signed with key_b64 over sr exactly as given (the caller
 * chooses whether sr is encoded) and se = expiry. sig is percent-encoded with
 * upper-case hex. Fields come in the order sr, sig, se, skn.
 *
 * sr:      the resource, e.g. "dps.example.net" or "0ne00000A0A/registrations/dev-1".
 * key_b64: the base64 key (policy key, enrollment key or derived device key).
 * skn:     the policy name, percent-encoded into the token; NULL to omit it.
 * expiry:  seconds since the Unix epoch.
 * out:     on success, the token, freed by the caller with free().
 *
 * Returns: SAS_OK, SAS_ERR_MALFORMED (key_b64 is not base64) or SAS_ERR_NOMEM.
 */
int sas_token_build(const char *sr, const char *key_b64, const char *skn, int64_t expiry,
                    char **out, struct dps_error *err);

/*
 * Refuses a token whose expiry is before now - SAS_CLOCK_SKEW.
 *
 * Returns: SAS_OK or SAS_ERR_EXPIRED.
 */
int sas_check_expiry(const struct sas_token *t, int64_t now, struct dps_error *err);

/*
 * Checks a service API token's resource (§3.1): sr, percent-decoded and
 * stripped of an optional "https://", must equal host (case-insensitively;
 * a ":port" on either side is ignored when the other has none), optionally
 * followed by a prefix of path that ends at a segment boundary ("/a/b"
 * covers "/a/b/c" but not "/a/bc").
 *
 * host: the service host name as configured; path: the request path
 * ("/enrollments/x"), may be NULL or "".
 *
 * Returns: SAS_OK or SAS_ERR_RESOURCE.
 */
int sas_check_service_resource(const struct sas_token *t, const char *host, const char *path,
                               struct dps_error *err);

/*
 * Checks a device token's resource (§4.4): sr percent-decoded must equal
 * "{id_scope}/registrations/{registration_id}" case-insensitively, and skn,
 * when present, must be "registration".
 *
 * id_scope, registration_id: decoded, from the request path or MQTT user name.
 *
 * Returns: SAS_OK, SAS_ERR_RESOURCE or SAS_ERR_POLICY.
 */
int sas_check_device_resource(const struct sas_token *t, const char *id_scope,
                              const char *registration_id, struct dps_error *err);

/*
 * Whether the token is signed with key: the HMAC over sr exactly as sent,
 * "\n", se as sent, compared in constant time; when that fails, also over sr
 * re-encoded with lower-case hex, with upper-case hex, and fully decoded
 * (clients disagree on what they sign). Fills no error: the caller tries
 * several candidate keys.
 *
 * Returns: 1 when one form matches, 0 when none does, -1 when out of memory.
 */
int sas_signature_matches(const struct sas_token *t, const unsigned char *key, size_t key_len);

/*
 * sas_signature_matches() with a base64 key as stored in enrollments and
 * policies.
 *
 * Returns: 1 matches, 0 does not (or key_b64 is not base64), -1 out of memory.
 */
int sas_signature_matches_b64(const struct sas_token *t, const char *key_b64);

/*
 * The whole service API check: expiry, resource, policy, signature.
 *
 * key_b64: the key of the policy t->skn names as found by the caller, NULL
 *          when no such policy exists (or t has no skn).
 * now:     seconds since the Unix epoch.
 *
 * Returns: SAS_OK, SAS_ERR_EXPIRED, SAS_ERR_RESOURCE, SAS_ERR_POLICY,
 * SAS_ERR_SIGNATURE or SAS_ERR_NOMEM; err says which.
 */
int sas_verify_service(const struct sas_token *t, const char *host, const char *path,
                       const char *key_b64, int64_t now, struct dps_error *err);

/*
 * The device key of a symmetric-key enrollment group (§6):
 * base64(HMAC-SHA256(base64decode(group_key_b64), registration_id)).
 *
 * registration_id, id_len: the id bytes exactly as the device uses them.
 * out: on success, the base64 key, freed by the caller (wipe it first with
 *      OPENSSL_cleanse if it is kept for long).
 *
 * Returns: SAS_OK, SAS_ERR_MALFORMED (group key is not base64) or SAS_ERR_NOMEM.
 */
int sas_derive_device_key(const char *group_key_b64, const char *registration_id, size_t id_len,
                          char **out, struct dps_error *err);

/*
 * The raw form of sas_derive_device_key(): HMAC-SHA256(group_key, registration_id)
 * into out, for callers that verify many devices against a decoded key.
 *
 * Returns: SAS_OK or SAS_ERR_NOMEM (an OpenSSL failure).
 */
int sas_derive_device_key_raw(const unsigned char *group_key, size_t key_len,
                              const char *registration_id, size_t id_len,
                              unsigned char out[SAS_MAC_SIZE]);

#endif
