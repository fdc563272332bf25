/* SPDX-License-Identifier: MIT */
/*
 * Maps the wire-named allocation input of server/provision_alloc.h onto
 * core/allocate.h and back.
 */
#include "core/common.h"
#include "server/provision_alloc.h"

#include "core/allocate.h"

int provision_alloc(const struct provision_alloc_in *in, struct provision_alloc_out *out,
                    struct trace *trace)
{
    struct linked_hub hubs[ALLOCATE_HUBS_MAX];
    struct allocate_request req = {0};
    struct allocate_previous prev = {0};
    struct allocate_decision d = {0};
    enum allocation_policy policy = ALLOCATION_HASHED;
    size_t i, n = in->n_hubs < ALLOCATE_HUBS_MAX ? in->n_hubs : ALLOCATE_HUBS_MAX;
    int rc;

    if (in->policy && allocation_policy_parse(in->policy, &policy) != 0) {
        trace_conclude(trace, ALLOCATE_ERR_NO_HUB, "no IoT hub could be assigned",
                       "allocation policy '%s' is not known", in->policy);
        return DPS_ERR_INVAL;
    }
    for (i = 0; i < n; i++) {
        hubs[i].host = in->hubs[i].host;
        hubs[i].weight = in->hubs[i].weight;
        hubs[i].location = in->hubs[i].location;
        hubs[i].apply_allocation_policy = true;
    }
    req.registration_id = in->registration_id;
    req.enrollment_device_id = in->enrollment_device_id;
    req.policy = policy;
    req.iot_hubs = in->iot_hubs;
    req.n_iot_hubs = in->n_iot_hubs;
    req.iot_hub_host_name = in->iot_hub_host_name;
    req.hubs = hubs;
    req.n_hubs = n;
    req.client_region = in->client_region;
    req.update_hub_assignment = in->update_hub_assignment;
    req.migrate_device_data = in->migrate_device_data;
    if (in->previous_hub && in->previous_device_id) {
        prev.hub = in->previous_hub;
        prev.device_id = in->previous_device_id;
        prev.substatus = SUBSTATUS_INITIAL_ASSIGNMENT;
        if (in->previous_substatus)
            registration_substatus_parse(in->previous_substatus, &prev.substatus);
        req.previous = &prev;
    }
    rc = allocate_hub(&req, &d, trace);
    if (rc != DPS_OK)
        return rc;
    out->hub = d.hub;
    out->device_id = d.device_id;
    out->substatus = registration_substatus_name(d.substatus);
    out->hub_changed = d.hub_changed;
    out->reset_device_data = d.reset_device_data;
    return DPS_OK;
}
