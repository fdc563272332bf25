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
#include "server/server.h"

struct auth_cache {
    /* The policies generation the list was read at; "" before the first read. */
    char generation[STORE_GENERATION_SIZE];
    struct store_policy_list list;
    uint64_t loads;
};

struct auth_cache *auth_cache_new(void)
{
    return xcalloc(1, sizeof(struct auth_cache));
}

void auth_cache_free(struct auth_cache *c)
{
    if (!c)
        return;
    store_policy_list_release(&c->list);
    free(c);
}

static void cache_free_fn(void *c)
{
    auth_cache_free(c);
}

struct auth_cache *auth_worker_cache(struct worker *w)
{
    static const char key = 0; /* this module's per-worker slot, by address */
    struct auth_cache *c;

    if (!w)
        return NULL;
    if (!(c = worker_data(w, &key))) {
        c = auth_cache_new();
        worker_set_data(w, &key, c, cache_free_fn);
    }
    return c;
}

uint64_t auth_cache_loads(const struct auth_cache *c)
{
    return c->loads;
}

/*
 * The policy named name into *out (copies), from the cache while the
 * store's policies generation is the one it was read at; the generation is
 * read before the policies, so they are at least that new.
 * Returns: as store_policy_get().
 */
static int policy_get(struct auth_cache *c, struct store *s, const char *name,
                      struct store_policy *out, struct dps_error *err)
{
    char gen[STORE_GENERATION_SIZE];
    const struct store_policy *p;
    int rc;

    if (!c)
        return store_policy_get(s, name, out, err);
    if ((rc = store_generation_get(s, STORE_GENERATION_POLICIES, gen, err)) != DPS_OK)
        return rc;
    if (strcmp(gen, c->generation) != 0) {
        struct store_policy_list list = {0};

        if ((rc = store_policy_list(s, &list, err)) != DPS_OK)
            return rc;
        store_policy_list_release(&c->list);
        c->list = list;
        snprintf(c->generation, sizeof(c->generation), "%s", gen);
        c->loads++;
    }
    for (size_t i = 0; i < c->list.n; i++) {
        p = &c->list.items[i];
        if (strcasecmp(p->name, name) != 0)
            continue;
        memset(out, 0, sizeof(*out));
        out->name = xstrdup(p->name);
        out->primary_key = xstrdup(p->primary_key);
        out->secondary_key = p->secondary_key ? xstrdup(p->secondary_key) : NULL;
        out->rights = p->rights;
        return DPS_OK;
    }
    return dps_error_set(err, DPS_ERR_NOT_FOUND, "policy '%.64s' not found", name);
}

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

int auth_check(struct auth_cache *cache, struct store *s, const char *authorization,
               const char *host, const char *path, uint32_t need, int64_t now,
               struct auth_identity *out, struct dps_error *err)
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
    rc = policy_get(cache, s, t->skn, &pol, &e);
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
