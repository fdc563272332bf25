/* SPDX-License-Identifier: MIT */
/*
 * Service API handlers: one table of endpoints, one dispatcher that opens
 * the worker's store and checks the caller's rights, and one function per
 * operation. Writes and their audit rows share one store transaction, so a
 * request that fails leaves nothing behind. Reads run on the worker's
 * thread; writes of enrollments, groups, registrations and policies run as
 * one job of the group commit (server/committer.h), the If-Match check
 * inside it, and the reply is sent once they are durable. See
 * docs/service-api.md.
 */
#include "core/common.h"
#include "server/service_api.h"

#include <errno.h>
#include <openssl/crypto.h>

#include "core/b64.h"
#include "core/model.h"
#include "core/timeutil.h"
#include "server/api_call.h"
#include "server/auth.h"
#include "server/committer.h"
#include "server/log.h"
#include "server/server.h"
#include "store/store.h"

enum op {
    OP_GET,
    OP_PUT,
    OP_DELETE,
    OP_ATTESTATION,
    OP_QUERY,
    OP_BULK,
    OP_REGISTRATION_QUERY,
    OP_POLICY_LIST,
    OP_POLICY_GET,
    OP_POLICY_PUT,
    OP_POLICY_DELETE,
};

/* One endpoint: route, operation, object kind and the right it needs. */
struct endpoint {
    const char *method;
    const char *pattern;
    enum op op;
    enum store_kind kind;
    uint32_t right;
};

#define R_READ STORE_RIGHT_ENROLLMENT_READ
#define R_WRITE STORE_RIGHT_ENROLLMENT_WRITE
#define R_REG_READ STORE_RIGHT_REGISTRATION_READ
#define R_REG_WRITE STORE_RIGHT_REGISTRATION_WRITE
#define R_CONFIG STORE_RIGHT_SERVICE_CONFIG

/* Literal routes (query) come before the {id} patterns that would also match them. */
static const struct endpoint endpoints[] = {
    {"POST", "/enrollments/query", OP_QUERY, STORE_ENROLLMENT, R_READ},
    {"POST", "/enrollments", OP_BULK, STORE_ENROLLMENT, R_WRITE},
    {"GET", "/enrollments/{id}", OP_GET, STORE_ENROLLMENT, R_READ},
    {"PUT", "/enrollments/{id}", OP_PUT, STORE_ENROLLMENT, R_WRITE},
    {"DELETE", "/enrollments/{id}", OP_DELETE, STORE_ENROLLMENT, R_WRITE},
    {"POST", "/enrollments/{id}/attestationmechanism", OP_ATTESTATION, STORE_ENROLLMENT, R_READ},
    {"POST", "/enrollmentGroups/query", OP_QUERY, STORE_GROUP, R_READ},
    {"POST", "/enrollmentGroups", OP_BULK, STORE_GROUP, R_WRITE},
    {"GET", "/enrollmentGroups/{id}", OP_GET, STORE_GROUP, R_READ},
    {"PUT", "/enrollmentGroups/{id}", OP_PUT, STORE_GROUP, R_WRITE},
    {"DELETE", "/enrollmentGroups/{id}", OP_DELETE, STORE_GROUP, R_WRITE},
    {"POST", "/enrollmentGroups/{id}/attestationmechanism", OP_ATTESTATION, STORE_GROUP, R_READ},
    {"GET", "/registrations/{id}", OP_GET, STORE_REGISTRATION, R_REG_READ},
    {"DELETE", "/registrations/{id}", OP_DELETE, STORE_REGISTRATION, R_REG_WRITE},
    {"POST", "/registrations/{id}/query", OP_REGISTRATION_QUERY, STORE_REGISTRATION, R_REG_READ},
    {"GET", "/policies", OP_POLICY_LIST, STORE_KIND_COUNT, R_CONFIG},
    {"GET", "/policies/{id}", OP_POLICY_GET, STORE_KIND_COUNT, R_CONFIG},
    {"PUT", "/policies/{id}", OP_POLICY_PUT, STORE_KIND_COUNT, R_CONFIG},
    {"DELETE", "/policies/{id}", OP_POLICY_DELETE, STORE_KIND_COUNT, R_CONFIG},
};

#define NENDPOINTS ARRAY_SIZE(endpoints)

struct route_arg {
    struct service_api *api;
    const struct endpoint *ep;
};

struct service_api {
    struct api_stores stores;
    struct committer *committer; /* borrowed; NULL: writes run on the worker */
    struct http_route routes[NENDPOINTS];
    struct route_arg args[NENDPOINTS];
};

/* One request being served. */
struct call {
    struct service_api *api;
    struct http_request *req;
    const struct endpoint *ep;
    struct store *store;
    struct auth_identity who;
    const char *id;          /* the decoded {id} capture, or NULL */
    const char *if_match;    /* the If-Match header, or NULL */
    const char *tracking_id; /* the request's */
};

/* ---- names and errors ---- */

static const char *kind_word(enum store_kind kind)
{
    switch (kind) {
    case STORE_ENROLLMENT:
        return "enrollment";
    case STORE_GROUP:
        return "enrollment group";
    case STORE_REGISTRATION:
        return "registration";
    default:
        return "policy";
    }
}

/* The kind column of audit rows. */
static const char *kind_audit(enum store_kind kind)
{
    switch (kind) {
    case STORE_ENROLLMENT:
        return "enrollment";
    case STORE_GROUP:
        return "enrollmentGroup";
    case STORE_REGISTRATION:
        return "registration";
    default:
        return "policy";
    }
}

static const char *item_type(enum store_kind kind)
{
    switch (kind) {
    case STORE_ENROLLMENT:
        return "Enrollment";
    case STORE_GROUP:
        return "EnrollmentGroup";
    default:
        return "DeviceRegistration";
    }
}

/* The sub-code of errorCode (status * 1000 + sub-code); see docs/service-api.md. */
static int sub_code_of(int status, enum store_kind kind)
{
    switch (status) {
    case 400:
        return 4;
    case 401:
        return 2;
    case 404:
        return kind == STORE_REGISTRATION ? 202 : 201;
    case 409:
        return 5;
    case 412:
        return 1;
    default:
        return 0;
    }
}

/*
 * Answers with the error of code and message. Store and internal failures
 * are logged with their detail and answered without it.
 */
static void reply_fail(struct call *k, int code, const char *msg)
{
    api_reply_fail(k->req, code, sub_code_of(api_status_of(code), k->ep->kind), msg);
}

/* ---- rendering ---- */

static void put_time(json_t *o, const char *key, int64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    char buf[TIMEUTIL_ISO_SIZE];

    if (timeutil_format(&ts, buf) == 0)
        json_object_set_new(o, key, json_string(buf));
}

/*
 * An object as the client sees it: the stored body with the store's etag
 * and times, and without symmetric keys unless secrets.
 *
 * Returns: a new reference, or NULL when the stored text is not an object.
 */
static json_t *render(const struct store_object *o, bool secrets)
{
    json_t *obj = json_loads(o->json, 0, NULL);
    json_t *att, *sk;

    if (!json_is_object(obj)) {
        json_decref(obj);
        return NULL;
    }
    json_object_set_new(obj, "etag", json_string(o->etag));
    put_time(obj, "createdDateTimeUtc", o->created_ms);
    put_time(obj, "lastUpdatedDateTimeUtc", o->updated_ms);
    att = json_object_get(obj, "attestation");
    sk = json_is_object(att) ? json_object_get(att, "symmetricKey") : NULL;
    if (!secrets && json_is_object(sk))
        json_object_clear(sk);
    return obj;
}

static void reply_object(struct call *k, const struct store_object *o, bool secrets)
{
    json_t *obj = render(o, secrets);

    if (!obj) {
        reply_fail(k, DPS_ERR_INTERNAL, "stored object is not a json object");
        return;
    }
    http_reply_jansson(k->req, 200, obj);
}

static void reply_text_wiped(struct call *k, int status, char *text)
{
    http_reply_json(k->req, status, text, strlen(text));
    OPENSSL_cleanse(text, strlen(text));
    free(text);
}

/* ---- writes with their audit row ---- */

static int audit(struct call *k, const char *action, const char *kind, const char *object_id,
                 const char *outcome, struct dps_error *err)
{
    struct store_audit_in a = {.actor = k->who.policy,
                               .action = action,
                               .kind = kind,
                               .object_id = object_id,
                               .tracking_id = k->tracking_id,
                               .outcome = outcome};

    return store_audit_append(k->store, &a, NULL, err);
}

/* Commits when rc is DPS_OK, rolls back otherwise; returns the outcome. */
static int finish_batch(struct store *s, int rc, struct dps_error *err)
{
    if (rc == DPS_OK)
        return store_batch_commit(s, err);
    store_batch_rollback(s);
    return rc;
}

static const char *attestation_name(enum attestation_type t)
{
    switch (t) {
    case ATTESTATION_TPM:
        return "tpm";
    case ATTESTATION_X509:
        return "x509";
    case ATTESTATION_SYMMETRIC_KEY:
        return "symmetricKey";
    default:
        return "none";
    }
}

/*
 * What a parsed enrollment or group is stored as: the model's JSON with
 * keys (the store keeps secrets; answers strip them) and its columns.
 */
struct stored_form {
    char *text; /* owned; wiped on release */
    const char *id, *device_id, *attestation;
};

static void stored_form_release(struct stored_form *f)
{
    if (f->text) {
        OPENSSL_cleanse(f->text, strlen(f->text));
        free(f->text);
    }
    memset(f, 0, sizeof(*f));
}

static int stored_form_make(const struct enrollment *e, const struct enrollment_group *g,
                            struct stored_form *out, struct dps_error *err)
{
    json_t *obj = e ? model_enrollment_to_json(e, MODEL_WITH_SECRETS)
                    : model_group_to_json(g, MODEL_WITH_SECRETS);
    char *text = obj ? json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

    json_decref(obj);
    if (!text)
        return dps_error_set(err, DPS_ERR_NOMEM, "cannot encode the object");
    out->text = text;
    out->id = e ? e->registration_id : g->enrollment_group_id;
    out->device_id = e ? e->device_id : NULL;
    out->attestation = attestation_name(e ? e->c.attestation.type : g->c.attestation.type);
    return DPS_OK;
}

/* ---- writes through the group commit ---- */

/*
 * One write request on its way through the group commit: the parsed input,
 * copies of the request's strings the job reads on the committer's thread,
 * and the outcome the reply is made of.
 */
struct write_job {
    struct call k; /* k.store is the committer's connection while the job runs */
    char *id, *if_match, *tracking_id;
    struct stored_form f;             /* PUT; its strings point into e or g */
    struct enrollment *e;             /* PUT of an enrollment */
    struct enrollment_group *g;       /* PUT of a group */
    struct bulk_op *bulk;             /* bulk */
    bool bulk_failed[MODEL_BULK_MAX]; /* bulk: the item failed when the job last ran */
    struct store_object o;            /* PUT: the object as stored */
    /* policy PUT: the body's rights and keys (NULL when not given; wiped on free) */
    uint32_t rights;
    char *primary, *secondary;
    struct store_policy pol; /* policy PUT: the policy as stored */
};

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

static struct write_job *write_job_new(const struct call *k)
{
    struct write_job *j = xcalloc(1, sizeof(*j));

    j->k = *k;
    j->id = dup_or_null(k->id);
    j->if_match = dup_or_null(k->if_match);
    j->tracking_id = dup_or_null(k->tracking_id);
    j->k.id = j->id;
    j->k.if_match = j->if_match;
    j->k.tracking_id = j->tracking_id;
    return j;
}

static void free_wiped(char *text)
{
    if (text) {
        OPENSSL_cleanse(text, strlen(text));
        free(text);
    }
}

static void write_job_free(struct write_job *j)
{
    free_wiped(j->primary);
    free_wiped(j->secondary);
    store_policy_release(&j->pol);
    stored_form_release(&j->f);
    enrollment_free(j->e);
    enrollment_group_free(j->g);
    model_bulk_free(j->bulk);
    store_object_release(&j->o);
    free(j->id);
    free(j->if_match);
    free(j->tracking_id);
    free(j);
}

static void bulk_item_run(struct call *k, enum bulk_mode mode, struct bulk_item *it);
static int policy_put_run(struct write_job *j, struct dps_error *err);
static int policy_delete_run(struct write_job *j, struct dps_error *err);
static void policy_done(struct write_job *j, int rc, const struct dps_error *err);

/*
 * A write of enrollment groups tells every node's group cache, in the same
 * transaction (see store_generation_bump()).
 */
static int bump_groups(struct call *k, struct dps_error *err)
{
    if (k->ep->kind != STORE_GROUP)
        return DPS_OK;
    return store_generation_bump(k->store, STORE_GENERATION_GROUPS, err);
}

/* On the committer's thread (or the worker's without one), inside a batch unit. */
static int write_run(struct store *s, void *arg, struct dps_error *err)
{
    struct write_job *j = arg;
    struct call *k = &j->k;
    int rc;

    k->store = s;
    switch (k->ep->op) {
    case OP_PUT: {
        struct store_put in = {.id = j->f.id,
                               .json = j->f.text,
                               .if_match = k->if_match,
                               .device_id = j->f.device_id,
                               .attestation = j->f.attestation};

        store_object_release(&j->o);
        rc = store_object_put(s, k->ep->kind, &in, &j->o, err);
        if (rc == DPS_OK)
            rc = audit(k, "put", kind_audit(k->ep->kind), j->f.id, "ok", err);
        return rc == DPS_OK ? bump_groups(k, err) : rc;
    }
    case OP_DELETE:
        rc = store_object_delete(s, k->ep->kind, k->id, k->if_match, err);
        if (rc == DPS_OK)
            rc = audit(k, "delete", kind_audit(k->ep->kind), k->id, "ok", err);
        return rc == DPS_OK ? bump_groups(k, err) : rc;
    case OP_POLICY_PUT:
        return policy_put_run(j, err);
    case OP_POLICY_DELETE:
        return policy_delete_run(j, err);
    default: /* OP_BULK: each item succeeds or fails on its own */
        for (size_t i = 0; i < j->bulk->count; i++) {
            struct bulk_item *it = &j->bulk->items[i];

            /* A job may run twice (committer_run_fn): the first run's outcomes do not count. */
            if (j->bulk_failed[i]) {
                it->error_code = 0;
                it->error_status[0] = '\0';
                j->bulk_failed[i] = false;
            }
            if (it->error_code == 0) { /* items the parser refused are not run */
                bulk_item_run(k, j->bulk->mode, it);
                j->bulk_failed[i] = it->error_code != 0;
            }
        }
        return bump_groups(k, err);
    }
}

/* On the worker's thread: the reply, once the job is durable or failed. */
static void write_done(void *arg, int rc, const struct dps_error *err)
{
    struct write_job *j = arg;
    struct call *k = &j->k;
    const char *word = kind_word(k->ep->kind);

    k->store = NULL; /* the committer's: not for the worker */
    if (k->ep->op == OP_POLICY_PUT || k->ep->op == OP_POLICY_DELETE) {
        policy_done(j, rc, err);
    } else if (k->ep->op == OP_PUT) {
        if (rc == DPS_ERR_PRECONDITION)
            http_reply_error(k->req, 412, 1, "%s '%s' %s", word, k->id,
                             k->if_match && strcmp(k->if_match, "*") == 0
                                 ? "does not exist (If-Match: *)"
                                 : "does not have the etag given in If-Match (it changed or is "
                                   "gone)");
        else if (rc != DPS_OK)
            reply_fail(k, rc, err->msg);
        else
            reply_object(k, &j->o, true);
    } else if (k->ep->op == OP_DELETE) {
        if (rc == DPS_ERR_NOT_FOUND || rc == DPS_ERR_INVAL)
            http_reply_error(k->req, 404, sub_code_of(404, k->ep->kind), "%s '%s' not found", word,
                             k->id);
        else if (rc == DPS_ERR_PRECONDITION)
            http_reply_error(k->req, 412, 1, "%s '%s' does not have the etag given in If-Match",
                             word, k->id);
        else if (rc != DPS_OK)
            reply_fail(k, rc, err->msg);
        else
            http_reply_json(k->req, 204, "", 0);
    } else if (rc != DPS_OK) {
        reply_fail(k, rc, err->msg);
    } else {
        json_t *res = model_bulk_result_to_json(j->bulk);

        if (!res)
            reply_fail(k, DPS_ERR_NOMEM, "cannot encode the reply");
        else
            http_reply_jansson(k->req, 200, res);
    }
    write_job_free(j);
}

/*
 * Runs j through the group commit and replies from its completion; takes
 * ownership of j. A full queue is answered 503 with Retry-After: operators'
 * tools retry, and a write refused is better than one that waits unbounded.
 * Without a committer the job runs here, in its own batch.
 */
static void submit_write(struct write_job *j)
{
    struct service_api *api = j->k.api;
    struct dps_error err = {0};
    int rc;

    if (api->committer) {
        rc = committer_submit(api->committer, j->k.req->worker, write_run, write_done, j,
                              COMMITTER_MAY_REFUSE);
        if (rc == DPS_OK)
            return;
        if (rc == DPS_ERR_BUSY) {
            http_reply_header(j->k.req, "Retry-After", "1");
            http_reply_error(j->k.req, 503, 0, "too many writes are waiting; retry in a second");
        } else {
            reply_fail(&j->k, rc, "the group commit is stopping");
        }
        write_job_free(j);
        return;
    }
    if ((rc = store_batch_begin(j->k.store, &err)) == DPS_OK) {
        rc = write_run(j->k.store, j, &err);
        rc = finish_batch(j->k.store, rc, &err);
    }
    write_done(j, rc, &err);
}

/* ---- enrollments, groups, registrations ---- */

static void op_get(struct call *k, bool secrets)
{
    struct store_object o = {0};
    struct dps_error err = {0};
    int rc = store_object_get(k->store, k->ep->kind, k->id, &o, &err);

    if (rc == DPS_ERR_NOT_FOUND || rc == DPS_ERR_INVAL) {
        http_reply_error(k->req, 404, sub_code_of(404, k->ep->kind), "%s '%s' not found",
                         kind_word(k->ep->kind), k->id);
    } else if (rc != DPS_OK) {
        reply_fail(k, rc, err.msg);
    } else if (!secrets) {
        reply_object(k, &o, false);
    } else {
        /* the attestation mechanism call: only the attestation, keys included */
        json_t *obj = render(&o, true);
        json_t *att = obj ? json_incref(json_object_get(obj, "attestation")) : NULL;

        json_decref(obj);
        if (!json_is_object(att)) {
            json_decref(att);
            reply_fail(k, DPS_ERR_INTERNAL, "stored object has no attestation");
        } else {
            char *text = json_dumps(att, JSON_COMPACT | JSON_PRESERVE_ORDER);

            json_decref(att);
            if (!text)
                reply_fail(k, DPS_ERR_NOMEM, "cannot encode the reply");
            else
                reply_text_wiped(k, 200, text);
        }
    }
    store_object_release(&o);
}

static void op_put(struct call *k)
{
    struct http_request *req = k->req;
    struct enrollment *e = NULL;
    struct enrollment_group *g = NULL;
    struct stored_form f = {0};
    struct dps_error err = {0};
    struct write_job *j;
    const char *field;
    int rc;

    if (k->ep->kind == STORE_ENROLLMENT) {
        field = "registrationId";
        rc = model_enrollment_from_json_flags(req->body, req->body_len, MODEL_PARSE_ALLOW_UPPER_IDS,
                                              &e, &err);
    } else {
        field = "enrollmentGroupId";
        rc = model_group_from_json_flags(req->body, req->body_len, MODEL_PARSE_ALLOW_UPPER_IDS, &g,
                                         &err);
    }
    if (rc != DPS_OK) {
        reply_fail(k, rc, err.msg);
        goto out;
    }
    if ((rc = stored_form_make(e, g, &f, &err)) != DPS_OK) {
        reply_fail(k, rc, err.msg);
        goto out;
    }
    if (strcasecmp(f.id, k->id) != 0) {
        http_reply_error(req, 400, 4, "%s '%s' in the path differs from '%s' '%s' in the body",
                         kind_word(k->ep->kind), k->id, field, f.id);
        goto out;
    }
    j = write_job_new(k);
    j->f = f;
    j->e = e;
    j->g = g;
    memset(&f, 0, sizeof(f));
    e = NULL;
    g = NULL;
    submit_write(j);
out:
    stored_form_release(&f);
    enrollment_free(e);
    enrollment_group_free(g);
}

static void op_delete(struct call *k)
{
    submit_write(write_job_new(k));
}

/* Reads x-ms-max-item-count: absent is the default, 1..any is capped at the maximum. */
static int page_size(struct call *k, size_t *out, struct dps_error *err)
{
    const char *h = http_request_header(k->req, "x-ms-max-item-count");
    char *end;
    long n;

    if (!h || !*h) {
        *out = SERVICE_API_PAGE_DEFAULT;
        return DPS_OK;
    }
    errno = 0;
    n = strtol(h, &end, 10);
    if (errno || *end || end == h || n < 1)
        return dps_error_set(err, DPS_ERR_INVAL,
                             "header 'x-ms-max-item-count' must be a positive integer, not '%.32s'",
                             h);
    *out = n > SERVICE_API_PAGE_MAX ? SERVICE_API_PAGE_MAX : (size_t)n;
    return DPS_OK;
}

static void op_query(struct call *k)
{
    struct http_request *req = k->req;
    struct store_page page = {0};
    struct dps_error err = {0};
    struct store_query q = {0};
    char *text = NULL, count[24];
    json_t *arr = NULL;
    size_t limit = 0;
    int rc;

    /* The query language is "everything": the text is checked for shape, then ignored. */
    if ((rc = model_query_from_json(req->body, req->body_len, &text, &err)) != DPS_OK ||
        (rc = page_size(k, &limit, &err)) != DPS_OK) {
        reply_fail(k, rc, err.msg);
        goto out;
    }
    q.limit = limit;
    q.after = http_request_header(req, "x-ms-continuation");
    if (q.after && !*q.after)
        q.after = NULL;
    if (k->ep->op == OP_REGISTRATION_QUERY)
        q.group_id = k->id;
    if ((rc = store_object_list(k->store, k->ep->kind, &q, &page, &err)) != DPS_OK) {
        reply_fail(k, rc,
                   rc == DPS_ERR_INVAL ? "header 'x-ms-continuation' is not valid" : err.msg);
        goto out;
    }
    arr = json_array();
    for (size_t i = 0; i < page.n; i++) {
        json_t *obj = render(&page.items[i], false);

        if (!obj) {
            reply_fail(k, DPS_ERR_INTERNAL, "stored object is not a json object");
            goto out;
        }
        json_array_append_new(arr, obj);
    }
    snprintf(count, sizeof(count), "%zu", limit);
    http_reply_header(req, "x-ms-item-type", item_type(k->ep->kind));
    http_reply_header(req, "x-ms-max-item-count", count);
    /* Only when more pages follow: Node treats any continuation header as "more". */
    if (page.next_cursor)
        http_reply_header(req, "x-ms-continuation", page.next_cursor);
    http_reply_jansson(req, 200, arr);
    arr = NULL;
out:
    json_decref(arr);
    store_page_release(&page);
    free(text);
}

/* Runs one parsed bulk item inside the open batch; sets its error on failure. */
static void bulk_item_run(struct call *k, enum bulk_mode mode, struct bulk_item *it)
{
    static const char *const actions[] = {"bulk-create", "bulk-update", "bulk-update-if-match",
                                          "bulk-delete"};
    struct stored_form f = {0};
    struct dps_error err = {0};
    const char *word = kind_word(k->ep->kind);
    int rc;

    if (mode == BULK_DELETE) {
        rc = store_object_delete(k->store, k->ep->kind, it->id, NULL, &err);
    } else if (mode == BULK_UPDATE_IF_MATCH_ETAG && !it->etag) {
        rc = dps_error_set(&err, DPS_ERR_INVAL, "'etag' is required in mode updateIfMatchETag");
    } else if ((rc = stored_form_make(it->enrollment, it->group, &f, &err)) == DPS_OK) {
        struct store_put in = {.id = f.id,
                               .json = f.text,
                               .if_match = mode == BULK_UPDATE_IF_MATCH_ETAG ? it->etag : NULL,
                               .create_only = mode == BULK_CREATE,
                               .device_id = f.device_id,
                               .attestation = f.attestation};
        rc = store_object_put(k->store, k->ep->kind, &in, NULL, &err);
    }
    if (rc == DPS_OK)
        rc = audit(k, actions[mode], kind_audit(k->ep->kind), it->id, "ok", &err);
    stored_form_release(&f);
    if (rc == DPS_OK)
        return;
    it->error_code = api_status_of(rc) * 1000 + sub_code_of(api_status_of(rc), k->ep->kind);
    switch (rc) {
    case DPS_ERR_NOT_FOUND:
        snprintf(it->error_status, sizeof(it->error_status), "%s '%s' not found", word, it->id);
        break;
    case DPS_ERR_CONFLICT:
        snprintf(it->error_status, sizeof(it->error_status), "%s '%s' already exists", word,
                 it->id);
        break;
    case DPS_ERR_PRECONDITION:
        snprintf(it->error_status, sizeof(it->error_status),
                 "%s '%s' does not exist with the etag given", word, it->id);
        break;
    default:
        snprintf(it->error_status, sizeof(it->error_status), "%s", err.msg);
    }
}

static void op_bulk(struct call *k)
{
    struct bulk_op *op = NULL;
    struct dps_error err = {0};
    bool groups = k->ep->kind == STORE_GROUP;
    struct write_job *j;
    int rc;

    rc = model_bulk_from_json(k->req->body, k->req->body_len, groups, MODEL_PARSE_ALLOW_UPPER_IDS,
                              &op, &err);
    if (rc != DPS_OK) {
        reply_fail(k, rc, err.msg);
        goto out;
    }
    j = write_job_new(k);
    j->bulk = op;
    op = NULL;
    submit_write(j);
out:
    model_bulk_free(op);
}

/* ---- shared access policies (dpsd's extension) ---- */

static json_t *policy_json(const struct store_policy *p, bool keys)
{
    char rights[160];
    json_t *o = json_object();

    auth_rights_format(p->rights, rights, sizeof(rights));
    json_object_set_new(o, "name", json_string(p->name));
    json_object_set_new(o, "rights", json_string(rights));
    if (keys) {
        json_object_set_new(o, "primaryKey", json_string(p->primary_key));
        if (p->secondary_key)
            json_object_set_new(o, "secondaryKey", json_string(p->secondary_key));
    }
    json_object_set_new(o, "etag", json_string(p->etag));
    put_time(o, "createdDateTimeUtc", p->created_ms);
    put_time(o, "lastUpdatedDateTimeUtc", p->updated_ms);
    return o;
}

static void reply_policy(struct call *k, const struct store_policy *p)
{
    json_t *o = policy_json(p, true);
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);

    json_decref(o);
    if (!text)
        reply_fail(k, DPS_ERR_NOMEM, "cannot encode the reply");
    else
        reply_text_wiped(k, 200, text);
}

static int policy_name_check(const char *name, struct dps_error *err)
{
    size_t n = strlen(name);

    if (n == 0 || n > SERVICE_API_POLICY_NAME_MAX)
        return dps_error_set(err, DPS_ERR_INVAL, "policy name '%.64s' must be 1 to %d characters",
                             name, SERVICE_API_POLICY_NAME_MAX);
    for (size_t i = 0; i < n; i++) {
        char c = name[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return dps_error_set(err, DPS_ERR_INVAL,
                                 "policy name '%s' has '%c' at position %zu: names are letters, "
                                 "digits and '-', '_', '.'",
                                 name, (c >= 0x20 && c < 0x7f) ? c : '?', i + 1);
    }
    return DPS_OK;
}

/*
 * Refuses a change that would leave no policy with ServiceConfig: nobody
 * could manage policies any more without editing the store by hand.
 */
static int keeps_service_config(struct call *k, const char *name, struct dps_error *err)
{
    struct store_policy_list list = {0};
    bool other = false;
    int rc = store_policy_list(k->store, &list, err);

    for (size_t i = 0; rc == DPS_OK && i < list.n; i++)
        if (strcasecmp(list.items[i].name, name) != 0 &&
            (list.items[i].rights & STORE_RIGHT_SERVICE_CONFIG))
            other = true;
    if (rc == DPS_OK && !other)
        rc = dps_error_set(err, DPS_ERR_CONFLICT,
                           "policy '%s' is the last one with the ServiceConfig right: create "
                           "another one with ServiceConfig first",
                           name);
    store_policy_list_release(&list);
    return rc;
}

/* Checks If-Match against the stored policy; cur is NULL when none exists. */
static int policy_if_match(struct call *k, const struct store_policy *cur, struct dps_error *err)
{
    const char *m = k->if_match;

    if (!m)
        return DPS_OK;
    if (!cur || (strcmp(m, "*") != 0 && strcmp(m, cur->etag) != 0))
        return dps_error_set(err, DPS_ERR_PRECONDITION,
                             "policy '%s' does not have the etag given in If-Match", k->id);
    return DPS_OK;
}

/* A key member of a policy body: absent is fine, present must be base64 of 16..64 bytes. */
static int policy_key(json_t *body, const char *name, const char **out, struct dps_error *err)
{
    json_t *v = json_object_get(body, name);
    size_t n = 0;

    *out = NULL;
    if (!v || json_is_null(v))
        return DPS_OK;
    if (!json_is_string(v))
        return dps_error_set(err, DPS_ERR_INVAL, "'%s' must be a string", name);
    if (!b64_is_valid(json_string_value(v), json_string_length(v), 0, &n) || n < 16 || n > 64)
        return dps_error_set(err, DPS_ERR_INVAL, "'%s' must be base64 of 16 to 64 bytes", name);
    *out = json_string_value(v);
    return DPS_OK;
}

/* On the committer's thread, inside the job's unit: the If-Match and ServiceConfig checks too. */
static int policy_put_run(struct write_job *j, struct dps_error *err)
{
    struct call *k = &j->k;
    struct store_policy cur = {0}, in = {0};
    char *gen1 = NULL, *gen2 = NULL;
    bool exists;
    int rc;

    rc = store_policy_get(k->store, k->id, &cur, err);
    if (rc != DPS_OK && rc != DPS_ERR_NOT_FOUND)
        goto out;
    exists = rc == DPS_OK;
    if ((rc = policy_if_match(k, exists ? &cur : NULL, err)) != DPS_OK)
        goto out;
    if (exists && (cur.rights & STORE_RIGHT_SERVICE_CONFIG) &&
        !(j->rights & STORE_RIGHT_SERVICE_CONFIG) &&
        (rc = keeps_service_config(k, cur.name, err)) != DPS_OK)
        goto out;
    /* Keys left out are kept on update and generated on create. */
    in.name = exists ? cur.name : j->id;
    in.rights = j->rights;
    in.primary_key = j->primary ? j->primary : exists ? cur.primary_key : NULL;
    in.secondary_key = j->secondary ? j->secondary : exists ? cur.secondary_key : NULL;
    if (!in.primary_key && (rc = model_generate_key(&gen1, err)) != DPS_OK)
        goto out;
    if (!in.secondary_key && (rc = model_generate_key(&gen2, err)) != DPS_OK)
        goto out;
    if (gen1)
        in.primary_key = gen1;
    if (gen2)
        in.secondary_key = gen2;
    store_policy_release(&j->pol);
    rc = store_policy_put(k->store, &in, &j->pol, err);
    if (rc == DPS_OK)
        rc = audit(k, "put", "policy", in.name, "ok", err);
    /* every node's policy cache reloads: a rotated key or a right taken counts at once */
    if (rc == DPS_OK)
        rc = store_generation_bump(k->store, STORE_GENERATION_POLICIES, err);
out:
    free_wiped(gen1);
    free_wiped(gen2);
    store_policy_release(&cur);
    return rc;
}

static int policy_delete_run(struct write_job *j, struct dps_error *err)
{
    struct call *k = &j->k;
    struct store_policy cur = {0};
    int rc;

    rc = store_policy_get(k->store, k->id, &cur, err);
    if (rc == DPS_OK)
        rc = policy_if_match(k, &cur, err);
    if (rc == DPS_OK && (cur.rights & STORE_RIGHT_SERVICE_CONFIG))
        rc = keeps_service_config(k, cur.name, err);
    if (rc == DPS_OK)
        rc = store_policy_delete(k->store, cur.name, err);
    if (rc == DPS_OK)
        rc = audit(k, "delete", "policy", cur.name, "ok", err);
    if (rc == DPS_OK)
        rc = store_generation_bump(k->store, STORE_GENERATION_POLICIES, err);
    store_policy_release(&cur);
    return rc;
}

/* On the worker's thread: the reply to a policy PUT or DELETE. */
static void policy_done(struct write_job *j, int rc, const struct dps_error *err)
{
    struct call *k = &j->k;

    if (rc == DPS_OK && k->ep->op == OP_POLICY_PUT)
        reply_policy(k, &j->pol);
    else if (rc == DPS_OK)
        http_reply_json(k->req, 204, "", 0);
    else if (k->ep->op == OP_POLICY_DELETE && (rc == DPS_ERR_NOT_FOUND || rc == DPS_ERR_INVAL))
        http_reply_error(k->req, 404, 0, "policy '%s' not found", k->id);
    else
        reply_fail(k, rc, err->msg);
}

/* Checks the body on the worker; the rest runs as a job of the group commit. */
static void op_policy_put(struct call *k)
{
    struct dps_error err = {0};
    json_t *body = NULL, *v;
    const char *primary, *secondary;
    uint32_t rights = 0;
    struct write_job *j;
    int rc;

    if ((rc = policy_name_check(k->id, &err)) != DPS_OK ||
        (rc = model_json_load(k->req->body, k->req->body_len, &body, &err)) != DPS_OK)
        goto out;
    if (!json_is_object(body)) {
        rc = dps_error_set(&err, DPS_ERR_INVAL, "the body must be a json object");
        goto out;
    }
    v = json_object_get(body, "name");
    if (v && !json_is_null(v) &&
        (!json_is_string(v) || strcasecmp(json_string_value(v), k->id) != 0)) {
        rc = dps_error_set(&err, DPS_ERR_INVAL,
                           "policy '%s' in the path differs from 'name' in the body", k->id);
        goto out;
    }
    v = json_object_get(body, "rights");
    if (!json_is_string(v)) {
        rc = dps_error_set(&err, DPS_ERR_INVAL,
                           "'rights' is required: a comma-separated list such as "
                           "\"EnrollmentRead,EnrollmentWrite\"");
        goto out;
    }
    if ((rc = auth_rights_parse(json_string_value(v), &rights, &err)) != DPS_OK ||
        (rc = policy_key(body, "primaryKey", &primary, &err)) != DPS_OK ||
        (rc = policy_key(body, "secondaryKey", &secondary, &err)) != DPS_OK)
        goto out;
    j = write_job_new(k);
    j->rights = rights;
    j->primary = dup_or_null(primary);
    j->secondary = dup_or_null(secondary);
    submit_write(j);
out:
    if (rc != DPS_OK)
        reply_fail(k, rc, err.msg);
    json_decref(body);
}

static void op_policy(struct call *k)
{
    struct store_policy_list list = {0};
    struct store_policy p = {0};
    struct dps_error err = {0};
    int rc = DPS_OK;

    switch (k->ep->op) {
    case OP_POLICY_LIST:
        if ((rc = store_policy_list(k->store, &list, &err)) == DPS_OK) {
            json_t *arr = json_array();

            for (size_t i = 0; i < list.n; i++)
                json_array_append_new(arr, policy_json(&list.items[i], false));
            http_reply_jansson(k->req, 200, arr);
        }
        break;
    case OP_POLICY_GET:
        if ((rc = store_policy_get(k->store, k->id, &p, &err)) == DPS_OK)
            reply_policy(k, &p);
        break;
    case OP_POLICY_DELETE:
        submit_write(write_job_new(k));
        return;
    default:
        op_policy_put(k);
        return;
    }
    if (rc == DPS_ERR_NOT_FOUND || (rc == DPS_ERR_INVAL && k->id))
        http_reply_error(k->req, 404, 0, "policy '%s' not found", k->id);
    else if (rc != DPS_OK)
        reply_fail(k, rc, err.msg);
    store_policy_release(&p);
    store_policy_list_release(&list);
}

/* ---- dispatch ---- */

static void handle(struct http_request *req, void *arg)
{
    const struct route_arg *ra = arg;
    struct call k = {.api = ra->api,
                     .req = req,
                     .ep = ra->ep,
                     .id = http_request_param(req, "id"),
                     .if_match = http_request_header(req, "If-Match"),
                     .tracking_id = req->tracking_id};
    struct dps_error err = {0};
    int rc;

    rc = api_call_begin(&ra->api->stores, req, k.ep->right, &k.store, &k.who, &err);
    if (rc != DPS_OK) {
        reply_fail(&k, rc, err.msg);
        return;
    }
    switch (k.ep->op) {
    case OP_GET:
        op_get(&k, false);
        break;
    case OP_ATTESTATION:
        op_get(&k, true);
        break;
    case OP_PUT:
        op_put(&k);
        break;
    case OP_DELETE:
        op_delete(&k);
        break;
    case OP_QUERY:
    case OP_REGISTRATION_QUERY:
        op_query(&k);
        break;
    case OP_BULK:
        op_bulk(&k);
        break;
    default:
        op_policy(&k);
        break;
    }
}

int service_api_new(const struct config *cfg, struct service_api **out, struct dps_error *err)
{
    struct service_api *api = xcalloc(1, sizeof(*api));
    int rc;

    if ((rc = api_stores_init(&api->stores, cfg, "the service API", err)) != DPS_OK) {
        free(api);
        return rc;
    }
    for (size_t i = 0; i < NENDPOINTS; i++) {
        api->args[i] = (struct route_arg){api, &endpoints[i]};
        api->routes[i] =
            (struct http_route){endpoints[i].method, endpoints[i].pattern, handle, &api->args[i]};
    }
    *out = api;
    return DPS_OK;
}

void service_api_set_committer(struct service_api *api, struct committer *cm)
{
    api->committer = cm;
}

void service_api_add_routes(struct service_api *api, struct http_router *router)
{
    http_router_add(router, api->routes, NENDPOINTS);
}

void service_api_free(struct service_api *api)
{
    if (!api)
        return;
    api_stores_release(&api->stores);
    free(api);
}
