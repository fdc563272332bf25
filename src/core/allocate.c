/* SPDX-License-Identifier: MIT */
/*
 * Hub allocation (hashed, geoLatency, static; custom refused) and the
 * reprovisioning decision. Placement is weighted rendezvous hashing, so it
 * needs no state: the same id and the same hubs always give the same hub.
 */
#include "core/common.h"
#include "core/allocate.h"

#include <ctype.h>
#include <math.h>

#include <openssl/sha.h>

/* Parts of the hashed string kept at most; registration ids and host names are shorter. */
#define HASH_ID_MAX 256
#define HASH_HOST_MAX 512

static const char device_no_hub[] = "no IoT hub could be assigned to this device";

static const char *const policy_names[] = {
    [ALLOCATION_HASHED] = "hashed",
    [ALLOCATION_GEO_LATENCY] = "geoLatency",
    [ALLOCATION_STATIC] = "static",
    [ALLOCATION_CUSTOM] = "custom",
};

static const char *const substatus_names[] = {
    [SUBSTATUS_INITIAL_ASSIGNMENT] = "initialAssignment",
    [SUBSTATUS_DEVICE_DATA_MIGRATED] = "deviceDataMigrated",
    [SUBSTATUS_DEVICE_DATA_RESET] = "deviceDataReset",
    [SUBSTATUS_REPROVISIONED_TO_INITIAL_ASSIGNMENT] = "reprovisionedToInitialAssignment",
};

int allocation_policy_parse(const char *name, enum allocation_policy *out)
{
    for (size_t i = 0; i < ARRAY_SIZE(policy_names); i++) {
        if (policy_names[i] && strcasecmp(name, policy_names[i]) == 0) {
            *out = (enum allocation_policy)i;
            return 0;
        }
    }
    return -1;
}

const char *allocation_policy_name(enum allocation_policy p)
{
    return (size_t)p < ARRAY_SIZE(policy_names) ? policy_names[p] : NULL;
}

const char *registration_substatus_name(enum registration_substatus s)
{
    return (size_t)s < ARRAY_SIZE(substatus_names) ? substatus_names[s] : NULL;
}

int registration_substatus_parse(const char *name, enum registration_substatus *out)
{
    for (size_t i = 0; i < ARRAY_SIZE(substatus_names); i++) {
        if (substatus_names[i] && strcmp(name, substatus_names[i]) == 0) {
            *out = (enum registration_substatus)i;
            return 0;
        }
    }
    return -1;
}

/* The substatus a previous record keeps; one read without a substatus counts as a first assignment.
 */
static enum registration_substatus kept_substatus(const struct allocate_previous *prev)
{
    return prev->substatus != SUBSTATUS_NONE ? prev->substatus : SUBSTATUS_INITIAL_ASSIGNMENT;
}

/* Appends the lower-cased s, cut at max bytes, to buf at *len. */
static void append_lower(unsigned char *buf, size_t *len, const char *s, size_t max)
{
    for (size_t i = 0; s[i] && i < max; i++)
        buf[(*len)++] = (unsigned char)tolower((unsigned char)s[i]);
}

double allocate_hub_score(const char *registration_id, const char *host, int weight)
{
    unsigned char buf[HASH_ID_MAX + 1 + HASH_HOST_MAX];
    unsigned char md[SHA256_DIGEST_LENGTH];
    uint64_t h = 0;
    size_t len = 0;
    double u;

    /* Both parts are case-insensitive names: "Dev-1" and "dev-1" are one device. */
    append_lower(buf, &len, registration_id, HASH_ID_MAX);
    buf[len++] = '\n';
    append_lower(buf, &len, host, HASH_HOST_MAX);
    SHA256(buf, len, md);
    for (int i = 0; i < 8; i++)
        h = (h << 8) | md[i];
    /* A uniform u in (0, 1) from the top 53 bits; never 0 or 1, so the log is finite. */
    u = ((double)(h >> 11) + 0.5) / 9007199254740992.0;
    /* -w / ln(u) gives each hub a win probability proportional to its weight. */
    return (double)weight / -log(u);
}

static const struct linked_hub *find_linked(const struct allocate_request *req, const char *host)
{
    for (size_t i = 0; i < req->n_hubs; i++) {
        if (strcasecmp(req->hubs[i].host, host) == 0)
            return &req->hubs[i];
    }
    return NULL;
}

static int check_request(const struct allocate_request *req, struct trace *trace)
{
    if (!req->registration_id || !req->registration_id[0]) {
        trace_conclude(trace, ALLOCATE_ERR_NO_HUB, device_no_hub,
                       "allocation was asked without a registration id");
        return DPS_ERR_INVAL;
    }
    if (req->n_hubs > ALLOCATE_HUBS_MAX || req->n_iot_hubs > ALLOCATE_HUBS_MAX) {
        trace_conclude(trace, ALLOCATE_ERR_NO_HUB, device_no_hub,
                       "too many hubs: %zu linked, %zu named by the enrollment (at most %d each)",
                       req->n_hubs, req->n_iot_hubs, ALLOCATE_HUBS_MAX);
        return DPS_ERR_INVAL;
    }
    for (size_t i = 0; i < req->n_hubs; i++) {
        const struct linked_hub *h = &req->hubs[i];

        if (!h->host || !h->host[0]) {
            trace_conclude(trace, ALLOCATE_ERR_NO_HUB, device_no_hub,
                           "linked hub %zu has no host name", i + 1);
            return DPS_ERR_INVAL;
        }
        if (h->weight < ALLOCATE_WEIGHT_MIN || h->weight > ALLOCATE_WEIGHT_MAX) {
            trace_conclude(trace, ALLOCATE_ERR_NO_HUB, device_no_hub,
                           "linked hub '%s' has allocationWeight %d, outside %d..%d", h->host,
                           h->weight, ALLOCATE_WEIGHT_MIN, ALLOCATE_WEIGHT_MAX);
            return DPS_ERR_INVAL;
        }
    }
    for (size_t i = 0; i < req->n_iot_hubs; i++) {
        if (!req->iot_hubs[i] || !req->iot_hubs[i][0]) {
            trace_conclude(trace, ALLOCATE_ERR_NO_HUB, device_no_hub,
                           "the enrollment's iotHubs entry %zu is empty", i + 1);
            return DPS_ERR_INVAL;
        }
    }
    return DPS_OK;
}

/* The highest-scoring hub among cand[0..n); n >= 1. Ties (practically impossible) go to the lower
 * host name. */
static const struct linked_hub *pick_hashed(const char *registration_id,
                                            const struct linked_hub *const *cand, size_t n,
                                            struct trace *trace)
{
    const struct linked_hub *best = NULL;
    double best_score = 0;
    char list[TRACE_LINE_MAX];
    size_t used = 0;

    list[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        double s = allocate_hub_score(registration_id, cand[i]->host, cand[i]->weight);

        if (!best || s > best_score ||
            (s == best_score && strcasecmp(cand[i]->host, best->host) < 0)) {
            best = cand[i];
            best_score = s;
        }
        if (used < sizeof(list)) {
            int w = snprintf(list + used, sizeof(list) - used, "%s'%s' (weight %d)", i ? ", " : "",
                             cand[i]->host, cand[i]->weight);
            if (w > 0)
                used += (size_t)w;
        }
    }
    trace_add(trace, "hashed over %zu candidate hub%s %s: chose '%s'", n, n == 1 ? "" : "s", list,
              best->host);
    return best;
}

/* Fills cand with the hubs allocation may choose; returns their number (0: failure concluded in
 * trace). */
static size_t collect_candidates(const struct allocate_request *req, const struct linked_hub **cand,
                                 struct trace *trace)
{
    size_t n = 0;

    if (req->n_iot_hubs > 0) {
        for (size_t i = 0; i < req->n_iot_hubs; i++) {
            const struct linked_hub *h = find_linked(req, req->iot_hubs[i]);
            bool dup = false;

            if (!h) {
                trace_add(trace,
                          "the enrollment names hub '%s' in iotHubs, but it is not a linked hub",
                          req->iot_hubs[i]);
                continue;
            }
            for (size_t j = 0; j < n; j++)
                dup = dup || cand[j] == h;
            if (!dup)
                cand[n++] = h;
        }
        if (n == 0)
            trace_conclude(
                trace, ALLOCATE_ERR_NO_HUB, device_no_hub,
                "none of the %zu hubs in the enrollment's iotHubs is a linked hub; link "
                "them (--linked-hub or the config file) or change the enrollment's iotHubs",
                req->n_iot_hubs);
        return n;
    }
    for (size_t i = 0; i < req->n_hubs; i++) {
        if (req->hubs[i].apply_allocation_policy)
            cand[n++] = &req->hubs[i];
        else
            trace_add(trace,
                      "linked hub '%s' is passed over: applyAllocationPolicy is false and the "
                      "enrollment does not name it in iotHubs",
                      req->hubs[i].host);
    }
    if (n == 0 && req->n_hubs == 0)
        trace_conclude(trace, ALLOCATE_ERR_NO_HUB, device_no_hub,
                       "no IoT hub is linked to this service; link one with --linked-hub or in "
                       "the config file");
    else if (n == 0)
        trace_conclude(trace, ALLOCATE_ERR_NO_HUB, device_no_hub,
                       "every linked hub has applyAllocationPolicy false and the enrollment names "
                       "no iotHubs; set applyAllocationPolicy on a hub or list hubs in the "
                       "enrollment's iotHubs");
    return n;
}

static const struct linked_hub *allocate_static(const struct allocate_request *req,
                                                struct trace *trace)
{
    const char *name;
    const struct linked_hub *h;
    size_t n = req->n_iot_hubs;

    if (n == 0 && req->iot_hub_host_name && req->iot_hub_host_name[0])
        n = 1;
    if (n != 1) {
        trace_conclude(trace, ALLOCATE_ERR_NO_HUB, device_no_hub,
                       "allocation policy 'static' needs exactly one hub in the enrollment's "
                       "iotHubs (or iotHubHostName), but it names %zu; list one hub or use "
                       "'hashed'",
                       n);
        return NULL;
    }
    name = req->n_iot_hubs ? req->iot_hubs[0] : req->iot_hub_host_name;
    h = find_linked(req, name);
    if (!h) {
        trace_conclude(trace, ALLOCATE_ERR_NO_HUB, device_no_hub,
                       "allocation policy 'static' names hub '%s', which is not a linked hub; "
                       "link it (--linked-hub or the config file) or change the enrollment",
                       name);
        return NULL;
    }
    trace_add(trace, "static allocation: hub '%s' named by the enrollment", h->host);
    return h;
}

static const struct linked_hub *allocate_geo(const struct allocate_request *req,
                                             const struct linked_hub **cand, size_t n,
                                             struct trace *trace)
{
    const struct linked_hub *near[ALLOCATE_HUBS_MAX];
    size_t n_near = 0;

    if (!req->client_region || !req->client_region[0]) {
        trace_add(trace, "geoLatency: the client's network has no configured region; "
                         "falling back to hashed");
        return pick_hashed(req->registration_id, cand, n, trace);
    }
    for (size_t i = 0; i < n; i++) {
        if (cand[i]->location && strcasecmp(cand[i]->location, req->client_region) == 0)
            near[n_near++] = cand[i];
    }
    if (n_near == 0) {
        trace_add(trace,
                  "geoLatency: no candidate hub has location '%s' (the client's region); "
                  "falling back to hashed over all candidates",
                  req->client_region);
        return pick_hashed(req->registration_id, cand, n, trace);
    }
    trace_add(trace, "geoLatency: %zu candidate hub%s in the client's region '%s'", n_near,
              n_near == 1 ? "" : "s", req->client_region);
    return pick_hashed(req->registration_id, near, n_near, trace);
}

/* Fills out for hub h, applying the reprovision policy against req->previous. */
static void decide(const struct allocate_request *req, const struct linked_hub *h,
                   const char *device_id, struct allocate_decision *out, struct trace *trace)
{
    const struct allocate_previous *prev = req->previous;
    struct allocate_decision d = {.hub = h->host, .device_id = device_id};

    if (!prev || !prev->hub || !prev->hub[0]) {
        d.substatus = req->device_exists_in_hub ? SUBSTATUS_REPROVISIONED_TO_INITIAL_ASSIGNMENT
                                                : SUBSTATUS_INITIAL_ASSIGNMENT;
    } else {
        d.hub_changed = strcasecmp(prev->hub, h->host) != 0;
        if (!req->migrate_device_data) {
            /* A reset applies even when the hub stays: it is the documented factory reset. */
            d.substatus = SUBSTATUS_DEVICE_DATA_RESET;
            d.reset_device_data = true;
        } else if (d.hub_changed) {
            d.substatus = SUBSTATUS_DEVICE_DATA_MIGRATED;
        } else {
            /* Same hub and data kept: nothing moved, the record's substatus stands. */
            d.substatus = kept_substatus(prev);
        }
        trace_add(trace, "reprovisioning from hub '%s': %s", prev->hub,
                  d.reset_device_data ? "device data reset to the enrollment's initial state"
                  : d.hub_changed     ? "device data migrated to the new hub"
                                      : "same hub, device data kept");
    }
    trace_add(trace, "assigned hub '%s', device id '%s', substatus %s", d.hub, d.device_id,
              registration_substatus_name(d.substatus));
    *out = d;
}

int allocate_hub(const struct allocate_request *req, struct allocate_decision *out,
                 struct trace *trace)
{
    const struct linked_hub *cand[ALLOCATE_HUBS_MAX];
    const struct linked_hub *h = NULL;
    enum allocation_policy policy =
        req->policy == ALLOCATION_DEFAULT ? ALLOCATION_HASHED : req->policy;
    const char *device_id;
    size_t n;
    int rc;

    rc = check_request(req, trace);
    if (rc != DPS_OK)
        return rc;
    device_id = req->enrollment_device_id && req->enrollment_device_id[0]
                    ? req->enrollment_device_id
                    : req->registration_id;

    if (req->previous && req->previous->hub && req->previous->hub[0] &&
        !req->update_hub_assignment) {
        h = find_linked(req, req->previous->hub);
        if (h) {
            struct allocate_decision d = {
                .hub = h->host,
                .device_id = req->previous->device_id && req->previous->device_id[0]
                                 ? req->previous->device_id
                                 : device_id,
                .substatus = kept_substatus(req->previous),
            };
            trace_add(trace,
                      "reprovision policy updateHubAssignment is false: the device keeps hub '%s'",
                      h->host);
            *out = d;
            return DPS_OK;
        }
        trace_add(trace,
                  "reprovision policy updateHubAssignment is false, but the device's hub '%s' is "
                  "no longer linked: allocating again",
                  req->previous->hub);
    }

    switch (policy) {
    case ALLOCATION_CUSTOM:
        trace_add(trace, "allocation policy 'custom'");
        trace_conclude(trace, ALLOCATE_ERR_NO_HUB, "custom allocation is not supported",
                       "allocation policy 'custom' is not supported: custom allocation webhooks "
                       "are not implemented yet; use 'static' with one hub in iotHubs, or "
                       "'hashed' or 'geoLatency'");
        return DPS_ERR_NOT_FOUND;
    case ALLOCATION_STATIC:
        trace_add(trace, "allocation policy 'static'");
        h = allocate_static(req, trace);
        break;
    case ALLOCATION_HASHED:
    case ALLOCATION_GEO_LATENCY:
        trace_add(trace, "allocation policy '%s'%s", allocation_policy_name(policy),
                  req->policy == ALLOCATION_DEFAULT ? " (the default)" : "");
        n = collect_candidates(req, cand, trace);
        if (n == 0)
            break;
        h = policy == ALLOCATION_HASHED ? pick_hashed(req->registration_id, cand, n, trace)
                                        : allocate_geo(req, cand, n, trace);
        break;
    default:
        trace_conclude(trace, ALLOCATE_ERR_NO_HUB, device_no_hub, "unknown allocation policy %d",
                       (int)policy);
        return DPS_ERR_INVAL;
    }
    if (!h)
        return DPS_ERR_NOT_FOUND;
    decide(req, h, device_id, out, trace);
    return DPS_OK;
}
