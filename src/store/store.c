/* SPDX-License-Identifier: MIT */
/*
 * The store front: picks the backend by DSN scheme, checks and bounds every
 * argument in one place, and frees the result structs. The backends behind
 * it (sqlite.c, postgres.c) see only checked input.
 */
#include "core/common.h"
#include "store/store.h"

#include <assert.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "core/hex.h"
#include "core/rand_pool.h"
#include "store/backend.h"
#include "store/postgres.h"
#include "store/sqlite.h"

static const struct store_ops *const backends[] = {
    &store_sqlite_ops,
    &store_postgres_ops,
};

static const char *const kind_names[STORE_KIND_COUNT] = {
    [STORE_ENROLLMENT] = "enrollment",
    [STORE_GROUP] = "enrollment group",
    [STORE_REGISTRATION] = "registration",
    [STORE_CA_CERT] = "certificate",
};

int store_open(const char *dsn, struct store **out, struct dps_error *err)
{
    const char *colon;
    size_t scheme_len;

    assert(dsn && out);
    colon = strchr(dsn, ':');
    /* The DSN itself is not quoted: a connection string may hold a password. */
    if (!colon || colon == dsn)
        return dps_error_set(err, DPS_ERR_INVAL,
                             "store DSN has no scheme: use 'sqlite:PATH' or 'postgres:CONNINFO'");
    scheme_len = (size_t)(colon - dsn);
    for (size_t i = 0; i < ARRAY_SIZE(backends); i++) {
        if (strlen(backends[i]->scheme) != scheme_len ||
            strncasecmp(backends[i]->scheme, dsn, scheme_len) != 0)
            continue;
        if (colon[1] == '\0')
            return dps_error_set(err, DPS_ERR_INVAL, "store '%s' names no database after '%.*s:'",
                                 dsn, (int)scheme_len, dsn);
        return backends[i]->open(colon + 1, out, err);
    }
    return dps_error_set(err, DPS_ERR_INVAL,
                         "store scheme '%.*s' is unknown: use 'sqlite:PATH' or 'postgres:CONNINFO'",
                         (int)scheme_len, dsn);
}

void store_close(struct store *s)
{
    if (!s)
        return;
    if (s->in_batch)
        store_batch_rollback(s);
    s->ops->close(s);
}

/* --- argument checks ------------------------------------------------------------------------ */

static int check_id(const char *what, const char *id, struct dps_error *err)
{
    size_t n;

    if (!id || !*id)
        return dps_error_set(err, DPS_ERR_INVAL, "%s id is missing", what);
    n = strnlen(id, STORE_ID_MAX + 1);
    if (n > STORE_ID_MAX)
        return dps_error_set(err, DPS_ERR_INVAL, "%s id '%.32s...' is longer than %d characters",
                             what, id, STORE_ID_MAX);
    return DPS_OK;
}

/* A text column: NULL allowed unless required, at most STORE_TEXT_MAX bytes. */
static int check_text(const char *field, const char *v, bool required, struct dps_error *err)
{
    if (!v) {
        if (required)
            return dps_error_set(err, DPS_ERR_INVAL, "'%s' is missing", field);
        return DPS_OK;
    }
    if (strnlen(v, STORE_TEXT_MAX + 1) > STORE_TEXT_MAX)
        return dps_error_set(err, DPS_ERR_INVAL, "'%s' is longer than %d bytes", field,
                             STORE_TEXT_MAX);
    return DPS_OK;
}

static int check_json(const char *field, const char *json, struct dps_error *err)
{
    if (!json)
        return dps_error_set(err, DPS_ERR_INVAL, "'%s' is missing", field);
    if (strnlen(json, STORE_JSON_MAX + 1) > STORE_JSON_MAX)
        return dps_error_set(err, DPS_ERR_TOO_LARGE, "'%s' is larger than %d bytes", field,
                             STORE_JSON_MAX);
    return DPS_OK;
}

static size_t clamp_limit(size_t limit)
{
    if (limit == 0)
        return STORE_PAGE_DEFAULT;
    return limit > STORE_PAGE_MAX ? STORE_PAGE_MAX : limit;
}

/* --- objects -------------------------------------------------------------------------------- */

int store_object_get(struct store *s, enum store_kind kind, const char *id,
                     struct store_object *out, struct dps_error *err)
{
    int rc;

    assert(s && out && kind < STORE_KIND_COUNT);
    rc = check_id(kind_names[kind], id, err);
    if (rc)
        return rc;
    return s->ops->object_get(s, kind, id, out, err);
}

int store_object_put(struct store *s, enum store_kind kind, const struct store_put *in,
                     struct store_object *out, struct dps_error *err)
{
    int rc;

    assert(s && in && kind < STORE_KIND_COUNT);
    if ((rc = check_id(kind_names[kind], in->id, err)) ||
        (rc = check_json("json", in->json, err)) ||
        (rc = check_text("If-Match", in->if_match, false, err)) ||
        (rc = check_text("deviceId", in->device_id, false, err)) ||
        (rc = check_text("attestation", in->attestation, false, err)) ||
        (rc = check_text("enrollmentGroupId", in->group_id, false, err)) ||
        (rc = check_text("status", in->status, false, err)) ||
        (rc = check_text("assignedHub", in->assigned_hub, false, err)))
        return rc;
    if (in->if_match && in->create_only)
        return dps_error_set(err, DPS_ERR_INVAL, "%s '%s': a create cannot carry If-Match",
                             kind_names[kind], in->id);
    return s->ops->object_put(s, kind, in, out, err);
}

int store_object_delete(struct store *s, enum store_kind kind, const char *id, const char *if_match,
                        struct dps_error *err)
{
    int rc;

    assert(s && kind < STORE_KIND_COUNT);
    if ((rc = check_id(kind_names[kind], id, err)) ||
        (rc = check_text("If-Match", if_match, false, err)))
        return rc;
    return s->ops->object_delete(s, kind, id, if_match, err);
}

static int check_query(enum store_kind kind, const struct store_query *q, struct dps_error *err)
{
    int rc;

    if (!q)
        return DPS_OK;
    if (q->group_id && q->attestation)
        return dps_error_set(err, DPS_ERR_INVAL, "a %s query takes one filter, not two",
                             kind_names[kind]);
    if (q->group_id && kind != STORE_REGISTRATION)
        return dps_error_set(err, DPS_ERR_INVAL, "a %s query cannot filter by enrollment group",
                             kind_names[kind]);
    if (q->attestation && kind != STORE_ENROLLMENT && kind != STORE_GROUP)
        return dps_error_set(err, DPS_ERR_INVAL, "a %s query cannot filter by attestation",
                             kind_names[kind]);
    if ((rc = check_text("continuation", q->after, false, err)) ||
        (rc = check_text("enrollmentGroupId", q->group_id, false, err)) ||
        (rc = check_text("attestation", q->attestation, false, err)))
        return rc;
    return DPS_OK;
}

int store_object_list(struct store *s, enum store_kind kind, const struct store_query *q,
                      struct store_page *out, struct dps_error *err)
{
    struct store_query query = {0};
    int rc;

    assert(s && out && kind < STORE_KIND_COUNT);
    rc = check_query(kind, q, err);
    if (rc)
        return rc;
    if (q)
        query = *q;
    query.limit = clamp_limit(query.limit);
    return s->ops->object_list(s, kind, &query, out, err);
}

int store_object_count(struct store *s, enum store_kind kind, const struct store_query *q,
                       int64_t *out, struct dps_error *err)
{
    struct store_query query = {0};
    int rc;

    assert(s && out && kind < STORE_KIND_COUNT);
    rc = check_query(kind, q, err);
    if (rc)
        return rc;
    if (q) {
        query.group_id = q->group_id;
        query.attestation = q->attestation;
    }
    return s->ops->object_count(s, kind, &query, out, err);
}

void store_object_release(struct store_object *obj)
{
    if (!obj)
        return;
    free(obj->id);
    free(obj->etag);
    free(obj->json);
    free(obj->device_id);
    free(obj->attestation);
    free(obj->group_id);
    free(obj->status);
    free(obj->assigned_hub);
    memset(obj, 0, sizeof(*obj));
}

void store_page_release(struct store_page *page)
{
    if (!page)
        return;
    for (size_t i = 0; i < page->n; i++)
        store_object_release(&page->items[i]);
    free(page->items);
    free(page->next_cursor);
    memset(page, 0, sizeof(*page));
}

/* --- attempts ------------------------------------------------------------------------------- */

static int check_attempt(const struct store_attempt_in *in, struct dps_error *err)
{
    int rc;

    if ((rc = check_id("registration", in->registration_id, err)) ||
        (rc = check_text("status", in->status, true, err)) ||
        (rc = check_text("trackingId", in->tracking_id, false, err)) ||
        (rc = check_json("trace", in->json, err)))
        return rc;
    return DPS_OK;
}

int store_attempt_append(struct store *s, const struct store_attempt_in *in, int64_t *id_out,
                         struct dps_error *err)
{
    int rc;

    assert(s && in);
    rc = check_attempt(in, err);
    if (rc)
        return rc;
    return s->ops->attempt_append(s, in, id_out, err);
}

int store_attempt_list(struct store *s, const char *registration_id, bool failures_only,
                       int64_t before_id, size_t limit, struct store_attempt_list *out,
                       struct dps_error *err)
{
    int rc;

    assert(s && out);
    if (registration_id) {
        rc = check_id("registration", registration_id, err);
        if (rc)
            return rc;
    }
    if (before_id <= 0)
        before_id = INT64_MAX;
    return s->ops->attempt_list(s, registration_id, failures_only, before_id, clamp_limit(limit),
                                out, err);
}

void store_attempt_list_release(struct store_attempt_list *list)
{
    if (!list)
        return;
    for (size_t i = 0; i < list->n; i++) {
        free(list->items[i].registration_id);
        free(list->items[i].status);
        free(list->items[i].tracking_id);
        free(list->items[i].json);
    }
    free(list->items);
    memset(list, 0, sizeof(*list));
}

int store_registration_put_with_attempt(struct store *s, const struct store_put *rec,
                                        const struct store_attempt_in *attempt,
                                        struct store_object *out, struct dps_error *err)
{
    struct store_object obj = {0};
    bool own_batch;
    int rc;

    assert(s && rec && attempt);
    own_batch = !s->in_batch;
    /* Checked up front, so that once the record is written only the database can fail. */
    rc = check_attempt(attempt, err);
    if (rc)
        return rc;
    if (own_batch) {
        rc = store_batch_begin(s, err);
        if (rc)
            return rc;
    }
    rc = store_object_put(s, STORE_REGISTRATION, rec, out ? &obj : NULL, err);
    if (rc)
        goto out;
    rc = s->ops->attempt_append(s, attempt, NULL, err);
    if (rc)
        goto out;
    if (own_batch) {
        rc = store_batch_commit(s, err);
        own_batch = false;
        if (rc)
            goto out;
    }
    if (out) {
        *out = obj;
        memset(&obj, 0, sizeof(obj));
    }
out:
    if (own_batch)
        store_batch_rollback(s);
    store_object_release(&obj);
    return rc;
}

/* --- batches -------------------------------------------------------------------------------- */

int store_read_begin(struct store *s, struct dps_error *err)
{
    int rc;

    assert(s && !s->in_batch && !s->in_read);
    if (!s->ops->read_begin)
        return DPS_OK;
    rc = s->ops->read_begin(s, err);
    if (rc == DPS_OK)
        s->in_read = true;
    return rc;
}

void store_read_end(struct store *s)
{
    assert(s);
    if (!s->in_read)
        return;
    s->ops->read_end(s);
    s->in_read = false;
}

int store_checkpoint_in_background(struct store *s, struct dps_error *err)
{
    assert(s);
    return s->ops->checkpoint_in_background ? s->ops->checkpoint_in_background(s, err) : DPS_OK;
}

int64_t store_background_checkpoints(struct store *s)
{
    assert(s);
    return s->ops->background_checkpoints ? s->ops->background_checkpoints(s) : 0;
}

int store_batch_begin(struct store *s, struct dps_error *err)
{
    int rc;

    assert(s && !s->in_batch && !s->in_read);
    rc = s->ops->batch_begin(s, err);
    if (rc == DPS_OK)
        s->in_batch = true;
    return rc;
}

int store_batch_commit(struct store *s, struct dps_error *err)
{
    int rc;

    assert(s && s->in_batch);
    assert(!s->in_unit);
    rc = s->ops->batch_commit(s, err);
    if (rc)
        s->ops->batch_rollback(s);
    s->in_batch = false;
    return rc;
}

void store_batch_rollback(struct store *s)
{
    assert(s);
    if (!s->in_batch)
        return;
    s->ops->batch_rollback(s);
    s->in_batch = false;
    s->in_unit = false;
}

int store_batch_changes(struct store *s, int64_t *out, struct dps_error *err)
{
    assert(s && s->in_batch && out);
    if (!s->ops->batch_changes) {
        *out = -1;
        return DPS_OK;
    }
    return s->ops->batch_changes(s, out, err);
}

int store_batch_unit_begin(struct store *s, struct dps_error *err)
{
    int rc;

    assert(s && s->in_batch && !s->in_unit);
    rc = s->ops->unit_begin(s, err);
    if (rc == DPS_OK)
        s->in_unit = true;
    return rc;
}

int store_batch_unit_end(struct store *s, bool keep, struct dps_error *err)
{
    assert(s && s->in_batch && s->in_unit);
    s->in_unit = false;
    return s->ops->unit_end(s, keep, err);
}

/* --- policies ------------------------------------------------------------------------------- */

int store_policy_get(struct store *s, const char *name, struct store_policy *out,
                     struct dps_error *err)
{
    int rc;

    assert(s && out);
    rc = check_id("policy", name, err);
    if (rc)
        return rc;
    return s->ops->policy_get(s, name, out, err);
}

static int policy_write(struct store *s, const struct store_policy *in, bool create_only,
                        struct store_policy *out, struct dps_error *err)
{
    int rc;

    assert(s && in);
    if ((rc = check_id("policy", in->name, err)) ||
        (rc = check_text("primaryKey", in->primary_key, true, err)) ||
        (rc = check_text("secondaryKey", in->secondary_key, false, err)))
        return rc;
    return s->ops->policy_put(s, in, create_only, out, err);
}

int store_policy_put(struct store *s, const struct store_policy *in, struct store_policy *out,
                     struct dps_error *err)
{
    return policy_write(s, in, false, out, err);
}

int store_policy_create(struct store *s, const struct store_policy *in, struct store_policy *out,
                        struct dps_error *err)
{
    return policy_write(s, in, true, out, err);
}

int store_policy_delete(struct store *s, const char *name, struct dps_error *err)
{
    int rc;

    assert(s);
    rc = check_id("policy", name, err);
    if (rc)
        return rc;
    return s->ops->policy_delete(s, name, err);
}

int store_policy_list(struct store *s, struct store_policy_list *out, struct dps_error *err)
{
    assert(s && out);
    return s->ops->policy_list(s, out, err);
}

static void wipe_free(char *secret)
{
    if (!secret)
        return;
    explicit_bzero(secret, strlen(secret));
    free(secret);
}

void store_policy_release(struct store_policy *p)
{
    if (!p)
        return;
    free(p->name);
    wipe_free(p->primary_key);
    wipe_free(p->secondary_key);
    free(p->etag);
    memset(p, 0, sizeof(*p));
}

void store_policy_list_release(struct store_policy_list *list)
{
    if (!list)
        return;
    for (size_t i = 0; i < list->n; i++)
        store_policy_release(&list->items[i]);
    free(list->items);
    memset(list, 0, sizeof(*list));
}

/* --- settings ------------------------------------------------------------------------------- */

int store_setting_get(struct store *s, const char *key, char **out, struct dps_error *err)
{
    int rc;

    assert(s && out);
    rc = check_id("setting", key, err);
    if (rc)
        return rc;
    return s->ops->setting_get(s, key, out, err);
}

static int setting_write(struct store *s, const char *key, const char *value, bool create_only,
                         struct dps_error *err)
{
    int rc;

    assert(s);
    if ((rc = check_id("setting", key, err)) || (rc = check_text("value", value, true, err)))
        return rc;
    return s->ops->setting_put(s, key, value, create_only, err);
}

int store_setting_put(struct store *s, const char *key, const char *value, struct dps_error *err)
{
    return setting_write(s, key, value, false, err);
}

int store_setting_create(struct store *s, const char *key, const char *value, struct dps_error *err)
{
    return setting_write(s, key, value, true, err);
}

/* --- generations --------------------------------------------------------------------------- */

int store_generation_get(struct store *s, const char *name, char out[STORE_GENERATION_SIZE],
                         struct dps_error *err)
{
    char *value = NULL;
    int rc;

    rc = store_setting_get(s, name, &value, err);
    if (rc == DPS_ERR_NOT_FOUND) {
        snprintf(out, STORE_GENERATION_SIZE, "0");
        return DPS_OK;
    }
    if (rc != DPS_OK)
        return rc;
    /* Longer values are not ours; truncated they still change when bumped. */
    snprintf(out, STORE_GENERATION_SIZE, "%s", value);
    free(value);
    return DPS_OK;
}

int store_generation_bump(struct store *s, const char *name, struct dps_error *err)
{
    char cur[STORE_GENERATION_SIZE], next[STORE_GENERATION_SIZE];
    unsigned char r[8];
    long long n;
    int rc;

    if ((rc = store_generation_get(s, name, cur, err)) != DPS_OK)
        return rc;
    n = strtoll(cur, NULL, 10);
    if (n < 0 || n == LLONG_MAX)
        n = 0;
    if (RAND_bytes(r, sizeof(r)) != 1) {
        fprintf(stderr, "dpsd: no randomness for generations\n");
        abort();
    }
    snprintf(next, sizeof(next), "%lld.%02x%02x%02x%02x%02x%02x%02x%02x", n + 1, r[0], r[1], r[2],
             r[3], r[4], r[5], r[6], r[7]);
    return store_setting_put(s, name, next, err);
}

/* --- audit ---------------------------------------------------------------------------------- */

int store_audit_append(struct store *s, const struct store_audit_in *in, int64_t *id_out,
                       struct dps_error *err)
{
    int rc;

    assert(s && in);
    if ((rc = check_text("actor", in->actor, true, err)) ||
        (rc = check_text("action", in->action, true, err)) ||
        (rc = check_text("kind", in->kind, true, err)) ||
        (rc = check_text("objectId", in->object_id, false, err)) ||
        (rc = check_text("trackingId", in->tracking_id, false, err)) ||
        (rc = check_text("outcome", in->outcome, true, err)))
        return rc;
    return s->ops->audit_append(s, in, id_out, err);
}

int store_audit_list(struct store *s, int64_t before_id, size_t limit, struct store_audit_list *out,
                     struct dps_error *err)
{
    assert(s && out);
    if (before_id <= 0)
        before_id = INT64_MAX;
    return s->ops->audit_list(s, before_id, clamp_limit(limit), out, err);
}

void store_audit_list_release(struct store_audit_list *list)
{
    if (!list)
        return;
    for (size_t i = 0; i < list->n; i++) {
        struct store_audit *a = &list->items[i];
        free(a->actor);
        free(a->action);
        free(a->kind);
        free(a->object_id);
        free(a->tracking_id);
        free(a->outcome);
    }
    free(list->items);
    memset(list, 0, sizeof(*list));
}

/* --- helpers for backends ------------------------------------------------------------------- */

void store_etag_new(enum store_kind kind, char *buf)
{
    unsigned char r[16];
    char quoted[HEX_UUID_SIZE + 2]; /* the UUID between double quotes, then a NUL */
    _Static_assert(sizeof(quoted) <= STORE_ETAG_SIZE, "a quoted etag fits STORE_ETAG_SIZE");

    /* RAND_bytes only fails when the system has no entropy at all. */
    if (rand_pool_bytes(r, sizeof(r)) != 0) {
        fprintf(stderr, "dpsd: no randomness for etags\n");
        abort();
    }
    quoted[0] = '"';
    hex_uuid_format(r, quoted + 1);
    quoted[HEX_UUID_SIZE] = '"';
    quoted[HEX_UUID_SIZE + 1] = '\0';
    if (kind == STORE_REGISTRATION) {
        /* Azure shows registration etags as base64 of the quoted value. */
        EVP_EncodeBlock((unsigned char *)buf, (const unsigned char *)quoted, HEX_UUID_SIZE + 1);
        return;
    }
    memcpy(buf, quoted, sizeof(quoted));
}

int64_t store_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int store_schema_version(void)
{
    return store_sqlite_schema_version();
}
