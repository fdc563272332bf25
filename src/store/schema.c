/* SPDX-License-Identifier: MIT */
/*
 * The backend-neutral half of the SQL schema: the kinds table, the object
 * column list, the objects a write returns and the messages of a missed
 * write, the same for every SQL backend.
 */
#include "core/common.h"
#include "store/schema.h"

const char *const schema_column_names[SCHEMA_COLUMN_COUNT] = {"device_id", "attestation",
                                                              "group_id", "status", "assigned_hub"};

const struct schema_kind schema_kinds[STORE_KIND_COUNT] = {
    [STORE_ENROLLMENT] = {"enrollments", "enrollment", COL_DEVICE_ID | COL_ATTESTATION},
    [STORE_GROUP] = {"enrollment_groups", "enrollment group", COL_ATTESTATION},
    [STORE_REGISTRATION] = {"registrations", "registration",
                            COL_DEVICE_ID | COL_GROUP_ID | COL_STATUS | COL_ASSIGNED_HUB},
    [STORE_CA_CERT] = {"ca_certificates", "certificate", 0},
};

void schema_select_columns(enum store_kind kind, char *buf, size_t size)
{
    size_t used = (size_t)snprintf(buf, size, "%s", SCHEMA_OBJECT_COLUMNS);

    for (size_t i = 0; i < SCHEMA_COLUMN_COUNT && used < size; i++) {
        bool on = schema_kinds[kind].columns & (1u << i);
        used +=
            (size_t)snprintf(buf + used, size - used, ", %s", on ? schema_column_names[i] : "NULL");
    }
}

const char *schema_put_column(const struct store_put *in, size_t i)
{
    switch (1u << i) {
    case COL_DEVICE_ID:
        return in->device_id;
    case COL_ATTESTATION:
        return in->attestation;
    case COL_GROUP_ID:
        return in->group_id;
    case COL_STATUS:
        return in->status;
    default:
        return in->assigned_hub;
    }
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

void schema_object_written(enum store_kind kind, const struct store_put *in, const char *id,
                           const char *etag, int64_t created_ms, int64_t updated_ms,
                           struct store_object *out)
{
    unsigned has = schema_kinds[kind].columns;

    memset(out, 0, sizeof(*out));
    out->id = xstrdup(id);
    out->etag = xstrdup(etag);
    out->json = xstrdup(in->json);
    out->created_ms = created_ms;
    out->updated_ms = updated_ms;
    out->device_id = has & COL_DEVICE_ID ? dup_or_null(in->device_id) : NULL;
    out->attestation = has & COL_ATTESTATION ? dup_or_null(in->attestation) : NULL;
    out->group_id = has & COL_GROUP_ID ? dup_or_null(in->group_id) : NULL;
    out->status = has & COL_STATUS ? dup_or_null(in->status) : NULL;
    out->assigned_hub = has & COL_ASSIGNED_HUB ? dup_or_null(in->assigned_hub) : NULL;
}

void schema_policy_written(const struct store_policy *in, const char *name, const char *etag,
                           int64_t created_ms, int64_t updated_ms, struct store_policy *out)
{
    memset(out, 0, sizeof(*out));
    out->name = xstrdup(name);
    out->primary_key = xstrdup(in->primary_key);
    out->secondary_key = dup_or_null(in->secondary_key);
    out->rights = in->rights;
    out->etag = xstrdup(etag);
    out->created_ms = created_ms;
    out->updated_ms = updated_ms;
}

int schema_not_found(enum store_kind kind, const char *id, struct dps_error *err)
{
    return dps_error_set(err, DPS_ERR_NOT_FOUND, "%s '%s' does not exist", schema_kinds[kind].what,
                         id);
}

int schema_exists(enum store_kind kind, const char *id, struct dps_error *err)
{
    return dps_error_set(err, DPS_ERR_CONFLICT, "%s '%s' exists already", schema_kinds[kind].what,
                         id);
}

int schema_if_match_failed(enum store_kind kind, const char *id, const char *if_match,
                           const char *etag, struct dps_error *err)
{
    if (!etag)
        return dps_error_set(err, DPS_ERR_PRECONDITION,
                             "%s '%s' does not exist, so If-Match '%s' cannot match",
                             schema_kinds[kind].what, id, if_match ? if_match : "*");
    return dps_error_set(err, DPS_ERR_PRECONDITION,
                         "%s '%s' has changed: If-Match '%s' is not its etag '%s'",
                         schema_kinds[kind].what, id, if_match ? if_match : "*", etag);
}

int schema_policy_not_found(const char *name, struct dps_error *err)
{
    return dps_error_set(err, DPS_ERR_NOT_FOUND, "shared access policy '%s' does not exist", name);
}
