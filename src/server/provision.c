/* SPDX-License-Identifier: MIT */
/*
 * The registration service: input checks, mapping stored enrollments onto
 * the attestation candidates of core/attest.h, allocation through
 * core/allocate.h, and the durable record + attempt. Runs on a
 * worker thread with that worker's store connection; dpsd code, so it
 * aborts on out-of-memory (every input is bounded first).
 */
#include "core/common.h"
#include "server/provision.h"

#include "core/allocate.h"
#include "core/hex.h"
#include "core/model.h"
#include "core/rand_pool.h"
#include "core/regid.h"
#include "core/timeutil.h"
#include "core/x509_info.h"
#include "server/ca_api.h"
#include "server/committer.h"
#include "server/config.h"
#include "server/json_text.h"
#include "server/region.h"

/* Sub-codes of the errors answered here (errorCode = status * 1000 + sub). */
#define SUB_BAD_INPUT 4
#define SUB_UNKNOWN_SCOPE 201
#define SUB_UNKNOWN_OPERATION 202
#define SUB_STORE 1

struct provision {
    char *id_scope;
    struct config_hub *hubs;
    struct linked_hub *views; /* borrow from hubs */
    size_t n_hubs;
    struct region_rule *regions;
    size_t n_regions;
};

/* Warnings about stored objects that could not be read, for the trace. */
struct warnings {
    char lines[4][256];
    size_t n;
};

/*
 * Every enrollment group of one attestation type, parsed, with the
 * attestation candidates made of them (X.509: certificates decoded, the
 * referenced CA certificates read). The candidates borrow from groups.
 */
struct group_set {
    struct enrollment_group **groups;
    size_t n;
    struct attest_x509_candidate *x509;     /* n of them in the X.509 set, else NULL */
    struct attest_symkey_candidate *symkey; /* n of them in the symmetric-key set, else NULL */
    struct warnings warnings;
};

/* The sets by attestation: [SET_SYMKEY] and [SET_X509]. */
enum { SET_SYMKEY, SET_X509, SET_COUNT };

struct provision_cache {
    /* The groups generation the sets were read at; "" before the first read. */
    char generation[STORE_GENERATION_SIZE];
    struct group_set *sets[SET_COUNT];
    struct provision_cache_stats stats;
};

/* The enrollments read for one attempt, and the candidates made of them. */
struct candidates {
    struct enrollment *individual;
    const struct group_set *set; /* the groups: borrowed from the cache, or owned_set */
    struct group_set *owned_set; /* read for this attempt alone (no cache) */
    struct attest_x509_candidate x509_individual;
    struct attest_symkey_candidate symkey_individual;
    struct warnings warnings; /* about the individual enrollment */
};

int provision_new(const char *id_scope, char *const *hub_specs, size_t n_hubs,
                  char *const *region_specs, size_t n_regions, struct provision **out,
                  struct dps_error *err)
{
    struct provision *p;
    size_t i;
    int rc;

    if (!id_scope || !*id_scope)
        return dps_error_set(err, DPS_ERR_INVAL, "the id scope is required");
    p = xcalloc(1, sizeof(*p));
    p->id_scope = xstrdup(id_scope);
    p->hubs = xcalloc(n_hubs ? n_hubs : 1, sizeof(*p->hubs));
    p->views = xcalloc(n_hubs ? n_hubs : 1, sizeof(*p->views));
    for (i = 0; i < n_hubs; i++) {
        rc = config_hub_parse(hub_specs[i], &p->hubs[i], err);
        if (rc != DPS_OK) {
            p->n_hubs = i;
            provision_free(p);
            return rc;
        }
        p->views[i].host = p->hubs[i].host;
        p->views[i].weight = (int)p->hubs[i].weight;
        p->views[i].location = p->hubs[i].location;
        p->views[i].apply_allocation_policy = p->hubs[i].apply;
    }
    p->n_hubs = n_hubs;
    p->regions = xcalloc(n_regions ? n_regions : 1, sizeof(*p->regions));
    for (i = 0; i < n_regions; i++) {
        rc = region_rule_parse(region_specs[i], &p->regions[i], err);
        if (rc != DPS_OK) {
            p->n_regions = i;
            provision_free(p);
            return rc;
        }
    }
    p->n_regions = n_regions;
    *out = p;
    return DPS_OK;
}

void provision_free(struct provision *p)
{
    size_t i;

    if (!p)
        return;
    for (i = 0; i < p->n_hubs; i++)
        config_hub_release(&p->hubs[i]);
    free(p->hubs);
    free(p->views);
    free(p->id_scope);
    for (i = 0; i < p->n_regions; i++)
        region_rule_release(&p->regions[i]);
    free(p->regions);
    free(p);
}

const char *provision_id_scope(const struct provision *p)
{
    return p->id_scope;
}

void provision_result_release(struct provision_result *r)
{
    if (!r)
        return;
    json_decref(r->body);
    free(r->text);
    memset(r, 0, sizeof(*r));
}

json_t *provision_result_json(const struct provision_result *r)
{
    if (r->body)
        return json_incref(r->body);
    if (r->text)
        return json_loadb(r->text, r->text_len, 0, NULL);
    return NULL;
}

/* Names the answer's operation status; a name outside the four leaves it empty. */
static void set_operation_status(struct provision_result *out, const char *status)
{
    static const char *const names[] = {"assigned", "failed", "disabled", "assigning"};
    size_t i;

    out->operation_status[0] = '\0';
    for (i = 0; status && i < ARRAY_SIZE(names); i++)
        if (strcmp(status, names[i]) == 0) {
            memcpy(out->operation_status, names[i], strlen(names[i]) + 1);
            return;
        }
}

static int result_error(struct provision_result *out, int status, int sub, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int result_error(struct provision_result *out, int status, int sub, const char *fmt, ...)
{
    va_list ap;

    json_decref(out->body);
    out->body = NULL;
    free(out->text);
    out->text = NULL;
    out->text_len = 0;
    out->operation_status[0] = '\0';
    out->status = status;
    out->error_code = status * 1000 + sub;
    va_start(ap, fmt);
    vsnprintf(out->message, sizeof(out->message), fmt, ap);
    va_end(ap);
    return DPS_OK;
}

static void set_string(json_t *o, const char *key, const char *value)
{
    if (value)
        json_object_set_new(o, key, json_string(value));
}

static void format_ms(int64_t ms, char out[TIMEUTIL_ISO_SIZE])
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};

    if (timeutil_format(&ts, out) != 0)
        out[0] = '\0';
}

/* "1." + 16 random hex digits + "." + the tracking id: URL- and topic-safe. */
static void make_operation_id(const char *tracking_id, char out[PROVISION_OPERATION_ID_MAX])
{
    unsigned char r[8] = {0};
    char *p = out;
    size_t room, n;

    if (rand_pool_bytes(r, sizeof(r)) != 0)
        r[0] = (unsigned char)time(NULL);
    *p++ = '1';
    *p++ = '.';
    p = hex_encode(r, sizeof(r), p);
    *p++ = '.';
    /* A tracking id too long for the rest is cut, as the bounded format always cut it. */
    room = PROVISION_OPERATION_ID_MAX - 1 - (size_t)(p - out);
    n = strnlen(tracking_id, room);
    memcpy(p, tracking_id, n);
    p[n] = '\0';
}

/* ---- input ---- */

/*
 * Checks the scope, the id and the body. Fills *payload (new reference or
 * NULL) on success; on a bad input fills out with the 4xx and returns -1.
 */
static int check_input(const struct provision *p, const struct provision_request *req,
                       json_t **payload, struct provision_result *out)
{
    struct dps_error err = {0};
    json_t *root = NULL, *v;
    size_t i;

    *payload = NULL;
    if (strcasecmp(req->id_scope, p->id_scope) != 0) {
        result_error(out, 404, SUB_UNKNOWN_SCOPE, "id scope is not known");
        return -1;
    }
    if (regid_check(REGID_REGISTRATION, req->registration_id, strlen(req->registration_id),
                    REGID_ALLOW_UPPER, &err) != DPS_OK) {
        result_error(out, 400, SUB_BAD_INPUT, "%s", err.msg);
        return -1;
    }
    for (i = 0; i < req->body_len; i++)
        if (!strchr(" \t\r\n", req->body[i]))
            break;
    if (i == req->body_len)
        return 0; /* no body: MQTT clients may send none */
    if (model_json_load(req->body, req->body_len, &root, &err) != DPS_OK) {
        result_error(out, err.code == DPS_ERR_TOO_LARGE ? 413 : 400, SUB_BAD_INPUT,
                     "request body: %s", err.msg);
        return -1;
    }
    if (!json_is_object(root)) {
        result_error(out, 400, SUB_BAD_INPUT, "request body must be a json object");
        goto bad;
    }
    v = json_object_get(root, "registrationId");
    if (!json_is_string(v)) {
        result_error(out, 400, SUB_BAD_INPUT, "'registrationId' is required in the request body");
        goto bad;
    }
    if (strcasecmp(json_string_value(v), req->registration_id) != 0 ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        result_error(out, 400, SUB_BAD_INPUT,
                     "'registrationId' of the body differs from the registration id of the path");
        goto bad;
    }
    v = json_object_get(root, "tpm");
    if (v && !json_is_null(v)) {
        result_error(out, 400, SUB_BAD_INPUT, "'tpm' attestation is not supported");
        goto bad;
    }
    v = json_object_get(root, "payload");
    if (v && !json_is_null(v))
        *payload = json_incref(v);
    json_decref(root);
    return 0;
bad:
    json_decref(root);
    return -1;
}

/* ---- candidates ---- */

static void warn(struct warnings *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void warn(struct warnings *w, const char *fmt, ...)
{
    va_list ap;

    if (w->n >= ARRAY_SIZE(w->lines))
        return;
    va_start(ap, fmt);
    vsnprintf(w->lines[w->n++], sizeof(w->lines[0]), fmt, ap);
    va_end(ap);
}

static X509 *decode_cert(const struct model_cert *mc)
{
    X509 *x = NULL;

    if (!mc->certificate || x509_info_decode(mc->certificate, strlen(mc->certificate), &x, NULL))
        return NULL;
    return x;
}

/*
 * The CA certificate uploaded under name, read the one way the certificates
 * API reads it (ca_store_resolve). NULL when it is missing or unreadable:
 * the group then cannot attest, and attestation says so in the trace.
 */
static X509 *load_ca(struct store *s, const char *name, bool *verified)
{
    X509 *x = NULL;

    *verified = false;
    if (ca_store_resolve(s, name, &x, verified, NULL) != DPS_OK)
        return NULL;
    return x;
}

static void x509_candidate(struct store *s, const char *id, bool is_group,
                           const struct enrollment_common *c, const char *etag,
                           struct attest_x509_candidate *out)
{
    const struct attestation *a = &c->attestation;

    memset(out, 0, sizeof(*out));
    out->id = id;
    out->is_group = is_group;
    out->enabled = c->enabled;
    out->etag = etag;
    if (is_group) {
        out->certs[0] = decode_cert(&a->x509.signing_primary);
        out->certs[1] = decode_cert(&a->x509.signing_secondary);
        out->ca_ref_names[0] = a->x509.ca_ref_primary;
        out->ca_ref_names[1] = a->x509.ca_ref_secondary;
        if (a->x509.ca_ref_primary)
            out->ca_certs[0] = load_ca(s, a->x509.ca_ref_primary, &out->ca_verified[0]);
        if (a->x509.ca_ref_secondary)
            out->ca_certs[1] = load_ca(s, a->x509.ca_ref_secondary, &out->ca_verified[1]);
    } else {
        out->certs[0] = decode_cert(&a->x509.client_primary);
        out->certs[1] = decode_cert(&a->x509.client_secondary);
    }
}

static void x509_candidate_release(struct attest_x509_candidate *c)
{
    X509_free(c->certs[0]);
    X509_free(c->certs[1]);
    X509_free(c->ca_certs[0]);
    X509_free(c->ca_certs[1]);
}

static void symkey_candidate(const char *id, bool is_group, const struct enrollment_common *c,
                             struct attest_symkey_candidate *out)
{
    out->id = id;
    out->is_group = is_group;
    out->enabled = c->enabled;
    out->primary_key = c->attestation.symmetric_key.primary_key;
    out->secondary_key = c->attestation.symmetric_key.secondary_key;
}

static void group_set_free(struct group_set *set)
{
    size_t i;

    if (!set)
        return;
    for (i = 0; set->x509 && i < set->n; i++)
        x509_candidate_release(&set->x509[i]);
    for (i = 0; i < set->n; i++)
        enrollment_group_free(set->groups[i]);
    free(set->groups);
    free(set->x509);
    free(set->symkey);
    free(set);
}

static void candidates_release(struct candidates *c)
{
    x509_candidate_release(&c->x509_individual);
    group_set_free(c->owned_set);
    enrollment_free(c->individual);
}

/* Makes the candidates of a set's groups. */
static void group_set_finish(struct store *s, struct group_set *set, bool x509)
{
    size_t i;

    if (x509) {
        set->x509 = xcalloc(set->n ? set->n : 1, sizeof(*set->x509));
        for (i = 0; i < set->n; i++)
            x509_candidate(s, set->groups[i]->enrollment_group_id, true, &set->groups[i]->c,
                           set->groups[i]->c.etag, &set->x509[i]);
    } else {
        set->symkey = xcalloc(set->n ? set->n : 1, sizeof(*set->symkey));
        for (i = 0; i < set->n; i++)
            symkey_candidate(set->groups[i]->enrollment_group_id, true, &set->groups[i]->c,
                             &set->symkey[i]);
    }
}

/*
 * Reads every enrollment group in one pass and fills out[SET_SYMKEY] and
 * out[SET_X509] where want[] asks, at most PROVISION_GROUPS_MAX groups each.
 * On DPS_OK the sets are the caller's (group_set_free()).
 */
static int group_sets_load(struct store *s, const bool want[SET_COUNT],
                           struct group_set *out[SET_COUNT], struct dps_error *err)
{
    struct group_set *sets[SET_COUNT] = {NULL};
    struct store_page page = {0};
    struct store_query q = {.limit = STORE_PAGE_MAX};
    char *cursor = NULL;
    struct dps_error perr;
    size_t i, k;
    int rc = DPS_OK;

    for (k = 0; k < SET_COUNT; k++) {
        if (!want[k])
            continue;
        sets[k] = xcalloc(1, sizeof(*sets[k]));
        sets[k]->groups = xcalloc(PROVISION_GROUPS_MAX, sizeof(*sets[k]->groups));
    }
    do {
        q.after = cursor;
        rc = store_group_list(s, &q, &page, err);
        free(cursor);
        cursor = NULL;
        if (rc != DPS_OK)
            goto out;
        for (i = 0; i < page.n; i++) {
            struct enrollment_group *g = NULL;
            struct group_set *set;

            if (model_group_from_json_flags(page.items[i].json, strlen(page.items[i].json),
                                            MODEL_PARSE_STORED | MODEL_PARSE_ALLOW_UPPER_IDS, &g,
                                            &perr) != DPS_OK) {
                for (k = 0; k < SET_COUNT; k++)
                    if (sets[k])
                        warn(&sets[k]->warnings,
                             "enrollment group '%s' could not be read from the store: %s",
                             page.items[i].id, perr.msg);
                continue;
            }
            set = g->c.attestation.type == ATTESTATION_X509            ? sets[SET_X509]
                  : g->c.attestation.type == ATTESTATION_SYMMETRIC_KEY ? sets[SET_SYMKEY]
                                                                       : NULL;
            if (!set || set->n >= PROVISION_GROUPS_MAX) {
                enrollment_group_free(g);
                continue;
            }
            /* The store's etag column is authoritative: it keys the trust store cache. */
            free(g->c.etag);
            g->c.etag = xstrdup(page.items[i].etag);
            set->groups[set->n++] = g;
        }
        cursor = page.next_cursor ? xstrdup(page.next_cursor) : NULL;
        store_page_release(&page);
    } while (cursor);
    for (k = 0; k < SET_COUNT; k++) {
        if (sets[k])
            group_set_finish(s, sets[k], k == SET_X509);
        out[k] = sets[k];
        sets[k] = NULL;
    }
out:
    free(cursor);
    for (k = 0; k < SET_COUNT; k++)
        group_set_free(sets[k]);
    return rc;
}

struct provision_cache *provision_cache_new(void)
{
    return xcalloc(1, sizeof(struct provision_cache));
}

void provision_cache_free(struct provision_cache *pc)
{
    if (!pc)
        return;
    for (size_t k = 0; k < SET_COUNT; k++)
        group_set_free(pc->sets[k]);
    free(pc);
}

void provision_cache_stats(const struct provision_cache *pc, struct provision_cache_stats *out)
{
    *out = pc->stats;
}

/*
 * The set of groups of one attestation type: from the cache while the
 * store's groups generation is the one it was read at, else read afresh.
 * The generation is read first, so what is read is at least that new.
 */
static int groups_get(struct store *s, struct provision_cache *pc, bool x509, struct candidates *c,
                      struct dps_error *err)
{
    size_t want = x509 ? SET_X509 : SET_SYMKEY;
    bool wanted[SET_COUNT] = {false};
    struct group_set *sets[SET_COUNT] = {NULL};
    char gen[STORE_GENERATION_SIZE];
    int rc;

    if (!pc) {
        wanted[want] = true;
        if ((rc = group_sets_load(s, wanted, sets, err)) != DPS_OK)
            return rc;
        c->owned_set = sets[want];
        c->set = c->owned_set;
        return DPS_OK;
    }
    if ((rc = store_generation_get(s, STORE_GENERATION_GROUPS, gen, err)) != DPS_OK)
        return rc;
    if (strcmp(gen, pc->generation) != 0 || !pc->sets[want]) {
        /* Both types in one pass: the next request of the other type is a hit. */
        wanted[SET_SYMKEY] = wanted[SET_X509] = true;
        if ((rc = group_sets_load(s, wanted, sets, err)) != DPS_OK)
            return rc;
        for (size_t k = 0; k < SET_COUNT; k++) {
            group_set_free(pc->sets[k]);
            pc->sets[k] = sets[k];
        }
        snprintf(pc->generation, sizeof(pc->generation), "%s", gen);
        pc->stats.loads++;
    } else {
        pc->stats.hits++;
    }
    c->set = pc->sets[want];
    return DPS_OK;
}

/*
 * Reads the individual enrollment for the id (a point read) and the
 * enrollment groups (from the cache when given), and makes the candidates
 * of the attestation type asked for.
 */
static int candidates_load(struct store *s, struct provision_cache *pc, const char *registration_id,
                           bool x509, struct candidates *c, struct dps_error *err)
{
    enum attestation_type want = x509 ? ATTESTATION_X509 : ATTESTATION_SYMMETRIC_KEY;
    struct store_object obj = {0};
    struct dps_error perr;
    int rc;

    memset(c, 0, sizeof(*c));
    rc = store_enrollment_get(s, registration_id, &obj, err);
    if (rc == DPS_OK) {
        if (model_enrollment_from_json_flags(obj.json, strlen(obj.json),
                                             MODEL_PARSE_STORED | MODEL_PARSE_ALLOW_UPPER_IDS,
                                             &c->individual, &perr) != DPS_OK)
            warn(&c->warnings, "individual enrollment '%s' could not be read from the store: %s",
                 obj.id, perr.msg);
        else if (c->individual->c.attestation.type != want) {
            warn(&c->warnings,
                 "individual enrollment '%s' attests with another mechanism and was not used",
                 obj.id);
            enrollment_free(c->individual);
            c->individual = NULL;
        }
        store_object_release(&obj);
    } else if (rc != DPS_ERR_NOT_FOUND) {
        return rc;
    }
    if ((rc = groups_get(s, pc, x509, c, err)) != DPS_OK)
        return rc;
    if (c->individual && x509)
        x509_candidate(s, c->individual->registration_id, false, &c->individual->c,
                       c->individual->c.etag, &c->x509_individual);
    else if (c->individual)
        symkey_candidate(c->individual->registration_id, false, &c->individual->c,
                         &c->symkey_individual);
    return DPS_OK;
}

/* Runs the attestation the request's credential calls for. */
static int attest(const struct provision_request *req, struct candidates *c,
                  struct attest_result *r, const char **type, struct dps_error *err)
{
    bool x509 = !req->sas_token && req->chain && sk_X509_num(req->chain) > 0;
    time_t now = req->now ? req->now : time(NULL);
    size_t i;
    int rc;

    if (!req->sas_token && !x509) {
        *type = "none";
        r->outcome = ATTEST_DENIED;
        r->http_status = 401;
        r->error_code = ATTEST_ERR_UNAUTHORIZED;
        trace_free(r->trace);
        r->trace = trace_new();
        trace_conclude(r->trace, ATTEST_ERR_UNAUTHORIZED, "no credential was presented",
                       "the device presented neither a TLS client certificate nor a SAS token in "
                       "the Authorization header");
        return DPS_OK;
    }
    *type = x509 ? "x509" : "symmetricKey";
    rc = candidates_load(req->store, req->group_cache, req->registration_id, x509, c, err);
    if (rc != DPS_OK)
        return rc;
    if (x509) {
        struct attest_x509_request xr = {
            .chain = req->chain,
            .registration_id = req->registration_id,
            .now = now,
            .individual = c->individual ? &c->x509_individual : NULL,
            .groups = c->set->x509,
            .n_groups = c->set->n,
            .cache = req->cache,
        };
        rc = attest_x509(&xr, r);
    } else {
        struct attest_symkey_request sr = {
            .token = req->sas_token,
            .token_len = req->sas_len,
            .id_scope = req->id_scope,
            .registration_id = req->registration_id,
            .now = now,
            .individual = c->individual ? &c->symkey_individual : NULL,
            .groups = c->set->symkey,
            .n_groups = c->set->n,
            .memo = req->symkey_memo,
        };
        rc = attest_symkey(&sr, r);
    }
    if (rc != DPS_OK)
        return dps_error_set(err, rc, "attestation failed: %s", dps_strerror(rc));
    for (i = 0; i < c->warnings.n; i++)
        trace_add(r->trace, "%s", c->warnings.lines[i]);
    for (i = 0; i < c->set->warnings.n; i++)
        trace_add(r->trace, "%s", c->set->warnings.lines[i]);
    return DPS_OK;
}

/* ---- records ---- */

/* The previous record's JSON, or NULL; *obj released by the caller. */
static json_t *previous_record(struct store *s, const char *id, struct store_object *obj,
                               struct dps_error *err, int *rc)
{
    json_t *j;

    *rc = store_registration_get(s, id, obj, err);
    if (*rc == DPS_ERR_NOT_FOUND) {
        *rc = DPS_OK;
        return NULL;
    }
    if (*rc != DPS_OK)
        return NULL;
    j = json_loads(obj->json, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/*
 * The registrationState a device sees: the DeviceRegistrationResult fields
 * of the record, with times and etag from the store's columns when given.
 */
static json_t *device_state(const json_t *rec, const struct store_object *obj)
{
    static const char *const keys[] = {"registrationId", "assignedHub", "deviceId",
                                       "status",         "substatus",   "errorCode",
                                       "errorMessage",   "x509",        "symmetricKey"};
    char created[TIMEUTIL_ISO_SIZE], updated[TIMEUTIL_ISO_SIZE];
    json_t *o = json_object(), *v;
    size_t i;

    for (i = 0; i < ARRAY_SIZE(keys); i++)
        if ((v = json_object_get(rec, keys[i])))
            json_object_set(o, keys[i], v);
    if (obj && obj->id) {
        format_ms(obj->created_ms, created);
        format_ms(obj->updated_ms, updated);
        set_string(o, "createdDateTimeUtc", created);
        set_string(o, "lastUpdatedDateTimeUtc", updated);
        set_string(o, "etag", obj->etag);
    }
    return o;
}

static json_t *operation_status(const char *operation_id, const char *status, json_t *state)
{
    json_t *o = json_object();

    set_string(o, "operationId", operation_id);
    set_string(o, "status", status);
    if (state)
        json_object_set_new(o, "registrationState", state);
    return o;
}

/* What one attempt decided, for the record and the attempt. */
struct outcome {
    const char *status; /* assigned, failed, disabled, unauthorized */
    const char *hub, *device_id, *substatus;
    int error_code;
    const char *error_message;
    const char *attestation_type;
    const char *group_id;                   /* NULL for individual or none */
    const char *enrollment_kind;            /* "individual", "group" or NULL */
    const char *enrollment_id;              /* NULL when none */
    const struct enrollment_common *common; /* the deciding enrollment, or NULL */
    bool hub_changed, reset_device_data;
};

/*
 * Writers of the record's, the state's and the attempt's texts, member by
 * member as set_string() and json_dumps(JSON_COMPACT) of the trees they
 * were once made of wrote them, without the trees.
 */

/* Cuts t back to its first len bytes (a member that jansson would have left out). */
static void text_cut(struct json_text *t, size_t len)
{
    t->len = len;
    t->buf[len] = '\0';
}

/* Appends the member name (the quoted key and its colon), after a comma unless first. */
static void text_key(struct json_text *t, const char *quoted_key)
{
    if (t->buf[t->len - 1] != '{')
        json_text_add(t, ",", 1);
    json_text_add_str(t, quoted_key);
}

/* Appends v in decimal, as jansson writes an integer. */
static void text_int(struct json_text *t, long long v)
{
    char num[24], *p = num + sizeof(num);
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;

    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    json_text_add(t, p, (size_t)(num + sizeof(num) - p));
}

/*
 * A string member, as set_string() made it: left out when value is NULL,
 * and when it is not UTF-8 (json_string() refused it).
 */
static void text_member_string(struct json_text *t, const char *quoted_key, const char *value)
{
    size_t mark = t->len;

    if (!value)
        return;
    text_key(t, quoted_key);
    if (json_text_add_string(t, value, strlen(value)) != 0)
        text_cut(t, mark);
}

/*
 * A member holding v, a value jansson parsed (a twin, a payload), so one
 * it renders: refusing it would be a bug, as json_dumps() refusing the
 * record's tree was.
 */
static void text_member_value(struct json_text *t, const char *quoted_key, const json_t *v)
{
    text_key(t, quoted_key);
    if (json_text_add_value(t, v) != 0)
        abort();
}

static void text_member_bool(struct json_text *t, const char *quoted_key, bool v)
{
    text_key(t, quoted_key);
    json_text_add_str(t, v ? "true" : "false");
}

/*
 * The enrollment group under the attestation type's name ("x509":
 * {"enrollmentGroupId":...}); a group id that is not UTF-8 leaves the
 * object empty, as set_string() left it.
 */
static void text_group_ref(struct json_text *t, const char *attestation_type, const char *group_id)
{
    text_key(t, "");
    json_text_add_string(t, attestation_type, strlen(attestation_type));
    json_text_add(t, ":{", 2);
    text_member_string(t, "\"enrollmentGroupId\":", group_id);
    json_text_add(t, "}", 1);
}

/*
 * The record's text, written directly in the member order the record
 * always had: the state's members first, then the operation, the
 * enrollment's twin and capabilities, and the device's payload.
 */
static char *record_text(const struct provision_request *req, const struct outcome *oc,
                         const char *operation_id, const json_t *payload)
{
    struct json_text t;

    json_text_init(&t);
    json_text_add(&t, "{", 1);
    text_member_string(&t, "\"registrationId\":", req->registration_id);
    text_member_string(&t, "\"status\":", oc->status);
    text_member_string(&t, "\"assignedHub\":", oc->hub);
    text_member_string(&t, "\"deviceId\":", oc->device_id);
    text_member_string(&t, "\"substatus\":", oc->substatus);
    if (oc->error_code) {
        text_key(&t, "\"errorCode\":");
        text_int(&t, oc->error_code);
        text_member_string(&t, "\"errorMessage\":", oc->error_message);
    }
    if (oc->group_id)
        text_group_ref(&t, oc->attestation_type, oc->group_id);
    text_member_string(&t, "\"operationId\":", operation_id);
    text_member_string(&t, "\"trackingId\":", req->tracking_id);
    text_member_string(&t, "\"attestationType\":", oc->attestation_type);
    text_member_string(&t, "\"enrollmentGroupId\":", oc->group_id);
    if (oc->common) {
        if (oc->common->initial_twin)
            text_member_value(&t, "\"initialTwin\":", oc->common->initial_twin);
        text_member_bool(&t, "\"capabilities\":{\"iotEdge\":", oc->common->iot_edge);
        json_text_add(&t, "}", 1);
        text_member_bool(&t, "\"hubChanged\":", oc->hub_changed);
        text_member_bool(&t, "\"resetDeviceData\":", oc->reset_device_data);
    }
    if (payload)
        text_member_value(&t, "\"devicePayload\":", payload);
    json_text_add(&t, "}", 1);
    return json_text_take(&t, NULL);
}

/*
 * The trace as trace_to_json() built it and a dump wrote it. Returns -1
 * with t as it was when a string is not UTF-8: trace_to_json() then gave
 * NULL, which the attempt stored as null.
 */
static int text_trace(struct json_text *t, const struct trace *tr)
{
    size_t mark = t->len, i;

    json_text_add_str(t, "{\"errorCode\":");
    text_int(t, trace_error_code(tr));
    json_text_add_str(t, ",\"summary\":");
    if (json_text_add_string(t, trace_summary(tr), strlen(trace_summary(tr))) != 0)
        goto fail;
    json_text_add_str(t, ",\"deviceMessage\":");
    if (json_text_add_string(t, trace_device_message(tr), strlen(trace_device_message(tr))) != 0)
        goto fail;
    json_text_add_str(t, ",\"omitted\":");
    text_int(t, (long long)trace_omitted(tr));
    json_text_add_str(t, trace_truncated(tr) ? ",\"truncated\":true,\"steps\":["
                                             : ",\"truncated\":false,\"steps\":[");
    for (i = 0; i < trace_line_count(tr); i++) {
        const char *line = trace_line(tr, i);

        if (i > 0)
            json_text_add(t, ",", 1);
        if (json_text_add_string(t, line, strlen(line)) != 0)
            goto fail;
    }
    json_text_add(t, "]}", 2);
    return 0;
fail:
    text_cut(t, mark);
    return -1;
}

/*
 * The attempt's text, written directly in the member order the attempt
 * always had; state (may be NULL) is its registrationState, spliced in as
 * its last member.
 */
static char *attempt_json(const struct provision_request *req, const struct outcome *oc,
                          const char *operation_id, const struct trace *trace, const char *state)
{
    struct json_text t;
    size_t mark;
    int rc;

    json_text_init(&t);
    json_text_add(&t, "{", 1);
    text_member_string(&t, "\"operationId\":", operation_id);
    text_member_string(&t, "\"trackingId\":", req->tracking_id);
    text_member_string(&t, "\"registrationId\":", req->registration_id);
    text_member_string(&t, "\"apiVersion\":", req->api_version);
    text_member_string(&t, "\"attestationType\":", oc->attestation_type);
    text_member_string(&t, "\"status\":", oc->status);
    if (oc->enrollment_id && oc->enrollment_kind) {
        /* json_pack() refused a string that is not UTF-8: the member was left out */
        mark = t.len;
        text_key(&t, "\"enrollment\":{\"kind\":");
        rc = json_text_add_string(&t, oc->enrollment_kind, strlen(oc->enrollment_kind));
        if (rc == 0) {
            json_text_add_str(&t, ",\"id\":");
            rc = json_text_add_string(&t, oc->enrollment_id, strlen(oc->enrollment_id));
        }
        if (rc == 0)
            json_text_add(&t, "}", 1);
        else
            text_cut(&t, mark);
    }
    text_key(&t, "\"trace\":");
    if (text_trace(&t, trace) != 0)
        json_text_add_str(&t, "null");
    if (state) {
        text_key(&t, "\"registrationState\":");
        json_text_add_str(&t, state);
    }
    json_text_add(&t, "}", 1);
    return json_text_take(&t, NULL);
}

/*
 * A decided registration's writes, with copies of everything they need, so
 * that they can run after the request's candidates are gone, on another
 * thread and store connection (the group commit).
 */
struct provision_write {
    char *registration_id, *tracking_id, *status, *device_id, *group_id, *hub, *attestation;
    const char *substatus; /* a static name, or NULL */
    int error_code;        /* 0 unless failed */
    char *error_message;   /* with error_code; may be NULL */
    char *record;          /* the record's JSON text; NULL when only the attempt is written */
    char *attempt;         /* the attempt's JSON text */
    char *state;           /* the registrationState text of the attempt; NULL with record */
    char operation_id[PROVISION_OPERATION_ID_MAX];
    int denied_status;          /* the 4xx a denied device gets once its attempt is written */
    int denied_sub;             /* its sub-code */
    char denied_message[256];   /* its message */
    struct store_object stored; /* the record as written, filled by provision_write_run() */
};

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

/*
 * The registration state as the attempt stores it (device_state() of the
 * record, without the store's times), rendered once: the attempt embeds it
 * and the reply extends it (reply_text()). Its members in device_state()'s
 * order; state_json() makes the same as a tree.
 */
static char *state_text(const struct provision_write *w)
{
    struct json_text t;

    json_text_init(&t);
    json_text_add(&t, "{", 1);
    text_member_string(&t, "\"registrationId\":", w->registration_id);
    text_member_string(&t, "\"assignedHub\":", w->hub);
    text_member_string(&t, "\"deviceId\":", w->device_id);
    text_member_string(&t, "\"status\":", w->status);
    text_member_string(&t, "\"substatus\":", w->substatus);
    if (w->error_code) {
        text_key(&t, "\"errorCode\":");
        text_int(&t, w->error_code);
        text_member_string(&t, "\"errorMessage\":", w->error_message);
    }
    if (w->group_id)
        text_group_ref(&t, w->attestation, w->group_id);
    json_text_add(&t, "}", 1);
    return json_text_take(&t, NULL);
}

/*
 * The registration state of a reply whose text would not render
 * (reply_text()): state_text()'s members as a tree, with the times and etag
 * of the record as stored when it was.
 */
static json_t *state_json(const struct provision_write *w)
{
    char created[TIMEUTIL_ISO_SIZE], updated[TIMEUTIL_ISO_SIZE];
    json_t *o = json_object(), *ref;

    set_string(o, "registrationId", w->registration_id);
    set_string(o, "assignedHub", w->hub);
    set_string(o, "deviceId", w->device_id);
    set_string(o, "status", w->status);
    set_string(o, "substatus", w->substatus);
    if (w->error_code) {
        json_object_set_new(o, "errorCode", json_integer(w->error_code));
        set_string(o, "errorMessage", w->error_message);
    }
    if (w->group_id) {
        ref = json_object();
        set_string(ref, "enrollmentGroupId", w->group_id);
        json_object_set_new(o, w->attestation, ref);
    }
    if (w->stored.id) {
        format_ms(w->stored.created_ms, created);
        format_ms(w->stored.updated_ms, updated);
        set_string(o, "createdDateTimeUtc", created);
        set_string(o, "lastUpdatedDateTimeUtc", updated);
        set_string(o, "etag", w->stored.etag);
    }
    return o;
}

/*
 * Makes the write of a decision: copies what the answer needs, takes the
 * record's text (NULL when only the attempt is written: a denied device)
 * and renders the state (with a record) and the attempt.
 */
static struct provision_write *write_new(const struct provision_request *req,
                                         const struct outcome *oc, const char *operation_id,
                                         const struct trace *trace, char *record)
{
    struct provision_write *w = xcalloc(1, sizeof(*w));

    w->registration_id = xstrdup(req->registration_id);
    w->tracking_id = xstrdup(req->tracking_id);
    w->status = xstrdup(oc->status);
    w->device_id = dup_or_null(oc->device_id);
    w->group_id = dup_or_null(oc->group_id);
    w->hub = dup_or_null(oc->hub);
    w->attestation = dup_or_null(oc->attestation_type);
    w->substatus = oc->substatus;
    w->error_code = oc->error_code;
    if (oc->error_code)
        w->error_message = dup_or_null(oc->error_message);
    if (operation_id)
        snprintf(w->operation_id, sizeof(w->operation_id), "%s", operation_id);
    w->record = record;
    if (record)
        w->state = state_text(w);
    w->attempt = attempt_json(req, oc, operation_id, trace, w->state);
    return w;
}

void provision_write_free(struct provision_write *w)
{
    if (!w)
        return;
    free(w->registration_id);
    free(w->tracking_id);
    free(w->status);
    free(w->device_id);
    free(w->group_id);
    free(w->hub);
    free(w->attestation);
    free(w->error_message);
    free(w->record);
    free(w->attempt);
    free(w->state);
    store_object_release(&w->stored);
    free(w);
}

int provision_write_run(struct store *s, void *write, struct dps_error *err)
{
    struct provision_write *w = write;
    struct store_attempt_in ai = {
        .registration_id = w->registration_id,
        .status = w->status,
        .success = strcmp(w->status, "assigned") == 0,
        .tracking_id = w->tracking_id,
        .json = w->attempt,
    };
    struct store_put put = {
        .id = w->registration_id,
        .json = w->record,
        .device_id = w->device_id,
        .group_id = w->group_id,
        .status = w->status,
        .assigned_hub = w->hub,
        .attestation = w->attestation,
    };

    if (!w->record)
        return store_attempt_append(s, &ai, NULL, err);
    store_object_release(&w->stored);
    return store_registration_put_with_attempt(s, &put, &ai, &w->stored, err);
}

/*
 * The reply's text, operation_status() of device_state() as one dump would
 * write it, made of the state text rendered for the attempt plus the
 * store's times and etag. NULL when a member would not render (the caller
 * then renders the body).
 */
static char *reply_text(const struct provision_write *w, size_t *len)
{
    char created[TIMEUTIL_ISO_SIZE], updated[TIMEUTIL_ISO_SIZE];
    size_t state_len = strlen(w->state);
    struct json_text t;

    json_text_init(&t);
    json_text_add_str(&t, "{\"operationId\":");
    if (json_text_add_string(&t, w->operation_id, strlen(w->operation_id)) != 0)
        goto fail;
    json_text_add_str(&t, ",\"status\":");
    if (json_text_add_string(&t, w->status, strlen(w->status)) != 0)
        goto fail;
    json_text_add_str(&t, ",\"registrationState\":");
    json_text_add(&t, w->state, state_len - 1);
    if (w->stored.id) {
        if (!w->stored.etag)
            goto fail; /* device_state() leaves it out: not worth a case of its own */
        format_ms(w->stored.created_ms, created);
        format_ms(w->stored.updated_ms, updated);
        json_text_add_str(&t,
                          state_len > 2 ? ",\"createdDateTimeUtc\":" : "\"createdDateTimeUtc\":");
        if (json_text_add_string(&t, created, strlen(created)) != 0)
            goto fail;
        json_text_add_str(&t, ",\"lastUpdatedDateTimeUtc\":");
        if (json_text_add_string(&t, updated, strlen(updated)) != 0)
            goto fail;
        json_text_add_str(&t, ",\"etag\":");
        if (json_text_add_string(&t, w->stored.etag, strlen(w->stored.etag)) != 0)
            goto fail;
    }
    json_text_add(&t, "}}", 2);
    return json_text_take(&t, len);
fail:
    json_text_release(&t);
    return NULL;
}

void provision_write_finish(const struct provision_write *w, int rc, struct provision_result *out)
{
    memset(out, 0, sizeof(*out));
    if (rc != DPS_OK) {
        result_error(out, 500, SUB_STORE, "registration could not be recorded; try again");
        return;
    }
    if (!w->record) {
        result_error(out, w->denied_status, w->denied_sub, "%s", w->denied_message);
        return;
    }
    out->status = 200;
    set_operation_status(out, w->status);
    /* The tree only when the text would not render: the answer is sent as text. */
    out->text = reply_text(w, &out->text_len);
    if (!out->text)
        out->body = operation_status(w->operation_id, w->status, state_json(w));
}

/* Fills oc from the attestation's deciding enrollment. */
static void outcome_enrollment(const struct attest_result *r, const struct candidates *c,
                               struct outcome *oc)
{
    size_t i;

    if (r->kind == ATTEST_KIND_INDIVIDUAL && c->individual) {
        oc->enrollment_kind = "individual";
        oc->enrollment_id = c->individual->registration_id;
        oc->common = &c->individual->c;
        return;
    }
    if (r->kind != ATTEST_KIND_GROUP || !r->enrollment_id)
        return;
    for (i = 0; i < c->set->n; i++) {
        const struct enrollment_group *g = c->set->groups[i];

        if (strcmp(g->enrollment_group_id, r->enrollment_id) == 0) {
            oc->enrollment_kind = "group";
            oc->enrollment_id = g->enrollment_group_id;
            oc->group_id = oc->enrollment_id;
            oc->common = &g->c;
            return;
        }
    }
}

static void allocate(const struct provision *p, const struct provision_request *req,
                     const struct candidates *c, const json_t *prev, struct outcome *oc,
                     struct trace *trace)
{
    const struct enrollment_common *ec = oc->common;
    struct allocate_previous previous = {0};
    struct allocate_decision d = {0};
    struct allocate_request ar = {
        .registration_id = req->registration_id,
        .enrollment_device_id = oc->group_id || !c->individual ? NULL : c->individual->device_id,
        .policy = ec->allocation_policy,
        .iot_hubs = (const char *const *)ec->iot_hubs,
        .n_iot_hubs = ec->iot_hubs_count,
        .iot_hub_host_name = ec->iot_hub_host_name,
        .hubs = p->views,
        .n_hubs = p->n_hubs < ALLOCATE_HUBS_MAX ? p->n_hubs : ALLOCATE_HUBS_MAX,
        .client_region = region_lookup(p->regions, p->n_regions, req->peer),
        .update_hub_assignment = ec->update_hub_assignment,
        .migrate_device_data = ec->migrate_device_data,
    };

    if (prev && jstr(prev, "status") && strcmp(jstr(prev, "status"), "assigned") == 0 &&
        jstr(prev, "assignedHub") && jstr(prev, "deviceId")) {
        previous.hub = jstr(prev, "assignedHub");
        previous.device_id = jstr(prev, "deviceId");
        /* An unreadable substatus stays SUBSTATUS_NONE, which allocation takes as initial. */
        if (jstr(prev, "substatus"))
            registration_substatus_parse(jstr(prev, "substatus"), &previous.substatus);
        ar.previous = &previous;
    }
    if (allocate_hub(&ar, &d, trace) != DPS_OK) {
        oc->status = "failed";
        oc->error_code = trace_error_code(trace);
        oc->error_message = trace_device_message(trace);
        if (!oc->error_code)
            oc->error_code = 400208;
        return;
    }
    oc->status = "assigned";
    oc->hub = d.hub;
    oc->device_id = d.device_id;
    oc->substatus = registration_substatus_name(d.substatus);
    oc->hub_changed = d.hub_changed;
    oc->reset_device_data = d.reset_device_data;
    trace_conclude(trace, 0, NULL, "assigned to hub '%s' as device '%s' (%s) by %s '%s'", d.hub,
                   d.device_id, oc->substatus, oc->enrollment_kind, oc->enrollment_id);
}

static const char *device_message(const struct trace *t)
{
    const char *m = trace_device_message(t);

    return *m ? m : "registration is not authorized";
}

static int check_request(const struct provision_request *req)
{
    return req && req->store && req->tracking_id && req->id_scope && req->registration_id;
}

int provision_decide(const struct provision *p, const struct provision_request *req,
                     struct provision_write **write, struct provision_result *out)
{
    struct attest_result r;
    struct candidates c = {0};
    struct store_object prev_obj = {0};
    struct dps_error err = {0};
    struct outcome oc = {0};
    char operation_id[PROVISION_OPERATION_ID_MAX];
    json_t *payload = NULL, *prev = NULL;
    struct provision_write *w;
    int rc;

    *write = NULL;
    memset(out, 0, sizeof(*out));
    if (!check_request(req))
        return DPS_ERR_INVAL;
    attest_result_init(&r);
    if (check_input(p, req, &payload, out) != 0)
        goto done;
    /* the enrollment, the groups' generation and the previous record, from one snapshot */
    store_read_begin(req->store, &err);
    rc = attest(req, &c, &r, &oc.attestation_type, &err);
    if (rc != DPS_OK) {
        result_error(out, 500, SUB_STORE, "registration could not be processed; try again");
        goto done;
    }
    make_operation_id(req->tracking_id, operation_id);
    outcome_enrollment(&r, &c, &oc);

    if (r.outcome == ATTEST_DENIED) {
        oc.status = "unauthorized";
        w = write_new(req, &oc, NULL, r.trace, NULL);
        w->denied_status = 401;
        w->denied_sub = 2;
        snprintf(w->denied_message, sizeof(w->denied_message), "%s", device_message(r.trace));
        *write = w;
        goto done;
    }
    prev = previous_record(req->store, req->registration_id, &prev_obj, &err, &rc);
    if (rc != DPS_OK) {
        result_error(out, 500, SUB_STORE, "registration could not be processed; try again");
        goto done;
    }
    if (r.outcome == ATTEST_DISABLED) {
        oc.status = "disabled";
        oc.device_id = prev ? jstr(prev, "deviceId") : NULL;
        oc.hub = prev ? jstr(prev, "assignedHub") : NULL;
    } else {
        allocate(p, req, &c, prev, &oc, r.trace);
    }
    *write =
        write_new(req, &oc, operation_id, r.trace, record_text(req, &oc, operation_id, payload));
done:
    store_read_end(req->store);
    json_decref(prev);
    json_decref(payload);
    store_object_release(&prev_obj);
    candidates_release(&c);
    attest_result_release(&r);
    return DPS_OK;
}

int provision_register(const struct provision *p, const struct provision_request *req,
                       struct provision_result *out)
{
    struct provision_write *w = NULL;
    struct dps_error err = {0};
    int rc;

    rc = provision_decide(p, req, &w, out);
    if (rc != DPS_OK || !w)
        return rc;
    provision_write_finish(w, provision_write_run(req->store, w, &err), out);
    provision_write_free(w);
    return DPS_OK;
}

/* One registration on its way through the group commit. */
struct async_register {
    struct provision_write *w;
    provision_done_fn done;
    void *arg;
};

static int async_run(struct store *s, void *arg, struct dps_error *err)
{
    struct async_register *a = arg;

    return provision_write_run(s, a->w, err);
}

static void async_done(void *arg, int rc, const struct dps_error *err)
{
    struct async_register *a = arg;
    struct provision_result res;

    (void)err; /* logged by the committer; the device gets the short message */
    provision_write_finish(a->w, rc, &res);
    a->done(a->arg, &res);
    provision_result_release(&res);
    provision_write_free(a->w);
    free(a);
}

int provision_register_async(const struct provision *p, const struct provision_request *req,
                             struct committer *cm, void *target, provision_done_fn done, void *arg)
{
    struct provision_result res;
    struct provision_write *w = NULL;
    struct async_register *a;
    int rc;

    if (!cm || !done)
        return DPS_ERR_INVAL;
    rc = provision_decide(p, req, &w, &res);
    if (rc != DPS_OK)
        return rc;
    if (!w) {
        done(arg, &res);
        provision_result_release(&res);
        return DPS_OK;
    }
    a = xcalloc(1, sizeof(*a));
    a->w = w;
    a->done = done;
    a->arg = arg;
    /* never refused when the queue is long: see COMMITTER_MAY_REFUSE */
    if (committer_submit(cm, target, async_run, async_done, a, 0) != DPS_OK) {
        provision_write_finish(w, DPS_ERR_STORE, &res);
        done(arg, &res);
        provision_result_release(&res);
        provision_write_free(w);
        free(a);
    }
    return DPS_OK;
}

int provision_operation(const struct provision *p, struct store *store, const char *id_scope,
                        const char *registration_id, const char *operation_id,
                        struct provision_result *out)
{
    struct store_object obj = {0};
    struct store_attempt_list list = {0};
    struct dps_error err = {0};
    json_t *rec = NULL, *a, *state;
    size_t i;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!store || !id_scope || !registration_id || !operation_id)
        return DPS_ERR_INVAL;
    if (strcasecmp(id_scope, p->id_scope) != 0)
        return result_error(out, 404, SUB_UNKNOWN_SCOPE, "id scope is not known");
    if (strlen(operation_id) >= PROVISION_OPERATION_ID_MAX ||
        regid_check(REGID_REGISTRATION, registration_id, strlen(registration_id), REGID_ALLOW_UPPER,
                    NULL) != DPS_OK)
        return result_error(out, 404, SUB_UNKNOWN_OPERATION, "operation is not known");

    rec = previous_record(store, registration_id, &obj, &err, &rc);
    if (rc != DPS_OK) {
        result_error(out, 500, SUB_STORE, "operation could not be read; try again");
        goto done;
    }
    if (rec && jstr(rec, "operationId") && strcmp(jstr(rec, "operationId"), operation_id) == 0) {
        out->status = 200;
        set_operation_status(out, jstr(rec, "status"));
        out->body = operation_status(operation_id, jstr(rec, "status"), device_state(rec, &obj));
        goto done;
    }
    if (store_attempt_list(store, registration_id, false, 0, PROVISION_OPERATION_SEARCH, &list,
                           &err) != DPS_OK) {
        result_error(out, 500, SUB_STORE, "operation could not be read; try again");
        goto done;
    }
    for (i = 0; i < list.n; i++) {
        a = json_loads(list.items[i].json, 0, NULL);
        if (jstr(a, "operationId") && strcmp(jstr(a, "operationId"), operation_id) == 0 &&
            (state = json_object_get(a, "registrationState"))) {
            out->status = 200;
            set_operation_status(out, jstr(a, "status"));
            out->body = operation_status(operation_id, jstr(a, "status"), json_incref(state));
            json_decref(a);
            goto done;
        }
        json_decref(a);
    }
    result_error(out, 404, SUB_UNKNOWN_OPERATION, "operation is not known");
done:
    store_attempt_list_release(&list);
    store_object_release(&obj);
    json_decref(rec);
    return DPS_OK;
}

/* The status lookup, or with with_record false only its attestation (provision_authenticate()). */
static int status_lookup(const struct provision *p, const struct provision_request *req,
                         bool with_record, struct provision_result *out)
{
    struct attest_result r;
    struct candidates c = {0};
    struct store_object obj = {0};
    struct dps_error err = {0};
    const char *type = NULL;
    json_t *payload = NULL, *rec = NULL;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!check_request(req))
        return DPS_ERR_INVAL;
    attest_result_init(&r);
    if (check_input(p, req, &payload, out) != 0)
        goto done;
    store_read_begin(req->store, &err);
    if (attest(req, &c, &r, &type, &err) != DPS_OK) {
        result_error(out, 500, SUB_STORE, "registration could not be read; try again");
        goto done;
    }
    if (r.outcome == ATTEST_DENIED) {
        result_error(out, 401, 2, "%s", device_message(r.trace));
        goto done;
    }
    if (!with_record) {
        out->status = 200;
        goto done;
    }
    rec = previous_record(req->store, req->registration_id, &obj, &err, &rc);
    if (rc != DPS_OK)
        result_error(out, 500, SUB_STORE, "registration could not be read; try again");
    else if (!rec)
        result_error(out, 404, SUB_UNKNOWN_OPERATION, "registration is not known");
    else {
        out->status = 200;
        out->body = device_state(rec, &obj);
    }
done:
    store_read_end(req->store);
    json_decref(rec);
    json_decref(payload);
    store_object_release(&obj);
    candidates_release(&c);
    attest_result_release(&r);
    return DPS_OK;
}

int provision_status_lookup(const struct provision *p, const struct provision_request *req,
                            struct provision_result *out)
{
    return status_lookup(p, req, true, out);
}

int provision_authenticate(const struct provision *p, const struct provision_request *req,
                           struct provision_result *out)
{
    return status_lookup(p, req, false, out);
}
