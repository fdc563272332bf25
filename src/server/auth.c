/* SPDX-License-Identifier: MIT */
/*
 * Service API authentication: SAS token against the store's shared access
 * policies, then the rights the operation needs. Every refusal says which
 * check failed so an operator can fix the token; none repeats a key.
 */
#include "core/common.h"
#include "server/auth.h"

#include <strings.h>

#include "core/sas.h"

static const struct {
    uint32_t bit;
    const char *name;
} rights[] = {
    {STORE_RIGHT_SERVICE_CONFIG, "ServiceConfig"},
    {STORE_RIGHT_ENROLLMENT_READ, "EnrollmentRead"},
    {STORE_RIGHT_ENROLLMENT_WRITE, "EnrollmentWrite"},
    {STORE_RIGHT_REGISTRATION_READ, "RegistrationStatusRead"},
    {STORE_RIGHT_REGISTRATION_WRITE, "RegistrationStatusWrite"},
    {STORE_RIGHT_DEVICE_CONNECT, "DeviceConnect"},
};

void auth_rights_format(uint32_t bits, char *buf, size_t len)
{
    size_t used = 0;

    if (len == 0)
        return;
    buf[0] = '\0';
    for (size_t i = 0; i < ARRAY_SIZE(rights); i++) {
        int n;

        if (!(bits & rights[i].bit))
            continue;
        n = snprintf(buf + used, len - used, "%s%s", used ? "," : "", rights[i].name);
        if (n < 0 || (size_t)n >= len - used)
            return;
        used += (size_t)n;
    }
}

int auth_rights_parse(const char *list, uint32_t *out, struct dps_error *err)
{
    uint32_t bits = 0;
    const char *p = list;

    if (!list)
        return dps_error_set(err, DPS_ERR_INVAL, "'rights' is required");
    while (*p) {
        size_t n;
        bool found = false;

        while (*p == ' ')
            p++;
        n = strcspn(p, ",");
        while (n && p[n - 1] == ' ')
            n--;
        for (size_t i = 0; i < ARRAY_SIZE(rights) && n; i++) {
            if (strlen(rights[i].name) == n && strncasecmp(rights[i].name, p, n) == 0) {
                bits |= rights[i].bit;
                found = true;
            }
        }
        if (!found)
            return dps_error_set(err, DPS_ERR_INVAL,
                                 "'rights' names unknown right '%.*s': rights are ServiceConfig, "
                                 "EnrollmentRead, EnrollmentWrite, RegistrationStatusRead, "
                                 "RegistrationStatusWrite, DeviceConnect",
                                 (int)(n > 64 ? 64 : n), p);
        p += strcspn(p, ",");
        if (*p == ',')
            p++;
    }
    if (!bits)
        return dps_error_set(err, DPS_ERR_INVAL, "'rights' must name at least one right");
    *out = bits;
    return DPS_OK;
}

int auth_check(struct store *s, const char *authorization, const char *host, const char *path,
               uint32_t need, int64_t now, struct auth_identity *out, struct dps_error *err)
{
    struct sas_token *t = NULL;
    struct store_policy pol = {0};
    struct dps_error e = {0};
    char missing[160];
    int rc, sr;

    if (!authorization || !*authorization)
        return dps_error_set(err, DPS_ERR_AUTH,
                             "no 'Authorization' header: send a SharedAccessSignature token made "
                             "from the service connection string");
    sr = sas_token_parse(authorization, strlen(authorization), &t, &e);
    if (sr != SAS_OK) {
        rc = dps_error_set(err, sr == SAS_ERR_NOMEM ? DPS_ERR_NOMEM : DPS_ERR_AUTH,
                           "malformed SharedAccessSignature: %s", e.msg);
        goto out;
    }
    if (!t->skn || !*t->skn) {
        rc = dps_error_set(err, DPS_ERR_AUTH,
                           "SharedAccessSignature has no 'skn': name the shared access policy");
        goto out;
    }
    rc = store_policy_get(s, t->skn, &pol, &e);
    if (rc == DPS_ERR_NOT_FOUND || rc == DPS_ERR_INVAL) {
        rc = dps_error_set(err, DPS_ERR_AUTH, "unknown shared access policy '%.64s'", t->skn);
        goto out;
    }
    if (rc != DPS_OK) {
        rc = dps_error_set(err, rc, "cannot read shared access policies: %s", e.msg);
        goto out;
    }
    sr = sas_verify_service(t, host, path, pol.primary_key, now, &e);
    if (sr == SAS_ERR_SIGNATURE && pol.secondary_key) {
        int m = sas_signature_matches_b64(t, pol.secondary_key);

        sr = m == 1 ? SAS_OK : m < 0 ? SAS_ERR_NOMEM : SAS_ERR_SIGNATURE;
    }
    switch (sr) {
    case SAS_OK:
        break;
    case SAS_ERR_NOMEM:
        rc = dps_error_set(err, DPS_ERR_NOMEM, "out of memory");
        goto out;
    case SAS_ERR_SIGNATURE:
        rc = dps_error_set(err, DPS_ERR_AUTH,
                           "SharedAccessSignature is not signed with a key of policy '%s'",
                           pol.name);
        goto out;
    default:
        /* expiry and resource: sas.c says which and why */
        rc = dps_error_set(err, DPS_ERR_AUTH, "%s", e.msg);
        goto out;
    }
    if ((pol.rights & need) != need) {
        auth_rights_format(need & ~pol.rights, missing, sizeof(missing));
        rc = dps_error_set(err, DPS_ERR_FORBIDDEN, "policy '%s' lacks the right %s", pol.name,
                           missing);
        goto out;
    }
    snprintf(out->policy, sizeof(out->policy), "%s", pol.name);
    out->rights = pol.rights;
    rc = DPS_OK;
out:
    store_policy_release(&pol);
    sas_token_free(t);
    return rc;
}
