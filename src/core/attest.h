/* SPDX-License-Identifier: MIT */
/*
 * Device attestation and enrollment matching (dps-protocol.md §4.4, §6, §7):
 * decides, for one registration attempt, which enrollment a device proves it
 * belongs to: by the X.509 chain it presented over TLS, or by the SAS token
 * it signed with a symmetric key. The answer carries a decision trace in
 * operator words and a short message that is safe to show the device.
 *
 * Pure logic over small input structs: no sockets, no JSON text, no store.
 * The device API maps enrollments onto the candidate structs below and
 * keeps one attest_cache per worker thread.
 */
#ifndef DPS_CORE_ATTEST_H
#define DPS_CORE_ATTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/x509.h>

#include "core/trace.h"

/* The Azure error code of a failed attestation. */
#define ATTEST_ERR_UNAUTHORIZED 401002
/* Certificates a device may present, leaf included. */
#define ATTEST_CHAIN_MAX 10
/* DER bytes of all presented certificates together, at most. */
#define ATTEST_CHAIN_BYTES_MAX (64 * 1024)
/* Longest leaf subject CN, which is the registration id (§7.1). */
#define ATTEST_CN_MAX 64
/* Groups named one by one in a trace when none matched; the rest are counted. */
#define ATTEST_TRACE_GROUPS_MAX 10
/* Entries an attest_cache holds; it starts afresh when full. */
#define ATTEST_CACHE_MAX 4096

enum attest_outcome {
    ATTEST_ASSIGN,   /* an enabled enrollment accepted the device: go on to allocation */
    ATTEST_DISABLED, /* the deciding enrollment is disabled: registration status `disabled` */
    ATTEST_DENIED,   /* attestation failed: 401 with errorCode 401002 */
};

enum attest_kind {
    ATTEST_KIND_NONE,       /* no enrollment matched */
    ATTEST_KIND_INDIVIDUAL, /* an individual enrollment */
    ATTEST_KIND_GROUP,      /* an enrollment group */
};

/*
 * The decision. Fill with attest_result_init() before use and release with
 * attest_result_release().
 */
struct attest_result {
    enum attest_outcome outcome;
    enum attest_kind kind;
    /* The deciding enrollment's id (registration id or group id); borrowed
     * from the candidate, valid while the candidates are; NULL when none. */
    const char *enrollment_id;
    int http_status; /* 200 for ASSIGN and DISABLED, 401 for DENIED */
    int error_code;  /* ATTEST_ERR_UNAUTHORIZED for DENIED, 0 otherwise */
    /* Owned: the operator lines, the summary and the device message. The
     * caller may keep adding to it (allocation) and takes it over by setting
     * this member to NULL before attest_result_release(). */
    struct trace *trace;
};

/* Sets r to an empty result (ATTEST_DENIED, no enrollment, no trace). */
void attest_result_init(struct attest_result *r);

/* Frees r->trace (if any) and empties r; r itself is the caller's. */
void attest_result_release(struct attest_result *r);

/* The wire status word for an outcome: "assigned", "disabled" or "unauthorized"; static. */
const char *attest_outcome_name(enum attest_outcome o);

/*
 * An X.509 enrollment as attestation sees it. All pointers are borrowed for
 * the duration of the call.
 */
struct attest_x509_candidate {
    const char *id; /* registration id (individual) or enrollment group id */
    bool is_group;
    bool enabled; /* provisioningStatus is "enabled" */
    /* Individual: clientCertificates primary/secondary. Group:
     * signingCertificates primary/secondary. NULL where absent. */
    X509 *certs[2];
    /* Group: caReferences primary/secondary names; NULL where absent. */
    const char *ca_ref_names[2];
    /* Whether each referenced CA exists and is verified (proof of possession). */
    bool ca_verified[2];
    /* The referenced CA certificates; NULL when the name is unknown. */
    X509 *ca_certs[2];
    /* The group's etag: compiled trust stores are cached under (id, etag).
     * NULL: no caching for this candidate. */
    const char *etag;
};

struct attest_cache;

/*
 * Creates an empty cache of compiled trust stores, one per enrollment group,
 * keyed by group id and etag. Not thread-safe: keep one per worker.
 *
 * Returns: the cache, freed with attest_cache_free(), or NULL when out of memory.
 */
struct attest_cache *attest_cache_new(void);

/* Frees cache and every store in it; attest_cache_free(NULL) is a no-op. */
void attest_cache_free(struct attest_cache *cache);

/* Drops the entry of one group (after it was deleted); unknown ids are ignored. */
void attest_cache_forget(struct attest_cache *cache, const char *group_id);

/* Number of groups with a compiled store in cache (for tests and metrics). */
size_t attest_cache_size(const struct attest_cache *cache);

/* One X.509 registration attempt. All pointers are borrowed for the duration of the call. */
struct attest_x509_request {
    /* The chain the device presented over TLS, leaf first (as from
     * SSL_get_peer_cert_chain()); NULL or empty when it sent none. */
    STACK_OF(X509) * chain;
    /* The registration id from the request path or MQTT user name. */
    const char *registration_id;
    /* The time to judge validity dates against. */
    time_t now;
    /* The individual enrollment whose registration id is registration_id and
     * whose attestation is X.509, or NULL when there is none. */
    const struct attest_x509_candidate *individual;
    /* Every X.509 enrollment group, enabled or not (a disabled group that
     * matches first must block the device). */
    const struct attest_x509_candidate *groups;
    size_t n_groups;
    /* The worker's cache of compiled group stores; NULL: compile every time. */
    struct attest_cache *cache;
};

/*
 * X.509 attestation (§7). The registration id is the leaf's subject CN,
 * which must be a valid lower-case id of at most ATTEST_CN_MAX bytes and
 * equal req->registration_id. The leaf must be within its validity dates and,
 * where it carries keyUsage / extendedKeyUsage, allow digitalSignature /
 * clientAuth. At most ATTEST_CHAIN_MAX certificates and
 * ATTEST_CHAIN_BYTES_MAX bytes are looked at.
 *
 * Most specific first (§7.2): the individual enrollment whose client
 * certificate equals the leaf (SHA-256 thumbprint; self-signed leaves are
 * fine); then the group whose trust anchor is nearest the leaf: the chain
 * must verify with OpenSSL (signatures, dates, CA basicConstraints on
 * issuers, path length, client purpose) up to one of the group's signing
 * certificates, root or intermediate (partial chains allowed), or to a
 * verified CA it references; the leaf must not be a CA. The first entry
 * found decides: enabled → ATTEST_ASSIGN, disabled → ATTEST_DISABLED. A
 * disabled individual enrollment for the id blocks the device whenever a
 * group would accept it.
 *
 * out: initialised by the caller with attest_result_init(); filled on
 *   DPS_OK, with a new trace in out->trace (any earlier one is freed).
 *
 * Returns: DPS_OK (a decision was made: see out->outcome; a device's bad
 * chain is a decision, not an error), DPS_ERR_INVAL (req->registration_id is
 * NULL), DPS_ERR_NOMEM.
 */
int attest_x509(const struct attest_x509_request *req, struct attest_result *out);

/* A symmetric-key enrollment. Pointers borrowed for the duration of the call. */
struct attest_symkey_candidate {
    const char *id; /* registration id (individual) or enrollment group id */
    bool is_group;
    bool enabled;
    /* The base64 keys; NULL where absent. Individual: the device keys.
     * Group: the group keys from which device keys are derived (§6). */
    const char *primary_key;
    const char *secondary_key;
};

/*
 * What an earlier attest_symkey() of the same token, id scope and
 * registration id found, so a later one (the MQTT CONNECT password checked
 * again for the register request) skips the HMACs whose result it knows:
 * the group key (base64) whose derived key signed the token. The result
 * of those HMACs depends on nothing else, so no decision or trace line
 * changes. Zero it to start; attest_symkey_memo_release() frees it.
 */
struct attest_symkey_memo {
    char *group_key; /* owned, wiped on release; NULL: nothing known */
};

/* Wipes and frees what m holds and empties it; m itself is the caller's (may be NULL). */
void attest_symkey_memo_release(struct attest_symkey_memo *m);

/* One symmetric-key registration attempt. Pointers borrowed for the duration of the call. */
struct attest_symkey_request {
    const char *token; /* the SAS token as received (Authorization header or MQTT password) */
    size_t token_len;
    const char *id_scope;        /* from the request path or MQTT user name */
    const char *registration_id; /* from the request path or MQTT user name */
    time_t now;
    /* The individual enrollment for registration_id with symmetric-key
     * attestation, or NULL when there is none. */
    const struct attest_symkey_candidate *individual;
    /* The symmetric-key enrollment groups, enabled or not. */
    const struct attest_symkey_candidate *groups;
    size_t n_groups;
    /* In and out, or NULL: valid only for the same token, id scope and
     * registration id. A derived-key match found here is recorded. */
    struct attest_symkey_memo *memo;
};

/*
 * Symmetric-key attestation (§4.4, §6). The token must parse, be unexpired
 * (the trace gives the expiry time) and name "{idScope}/registrations/{id}".
 * Keys are tried in order: the individual enrollment's primary and
 * secondary keys, then for each enabled group the keys derived from its
 * primary and secondary keys. A token signed with a group key itself is
 * refused, with a reason saying so. A disabled individual enrollment blocks
 * the device even when a group's derived key verifies; a disabled group
 * whose derived key verifies gives ATTEST_DISABLED.
 *
 * out: as for attest_x509().
 *
 * Returns: DPS_OK (see out->outcome), DPS_ERR_INVAL (id_scope or
 * registration_id is NULL), DPS_ERR_NOMEM.
 */
int attest_symkey(const struct attest_symkey_request *req, struct attest_result *out);

#endif
