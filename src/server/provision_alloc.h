/* SPDX-License-Identifier: MIT */
/*
 * The allocation step of a registration, behind a header that names no enum
 * of core/allocate.h: core/model.h and core/allocate.h both define
 * `enum allocation_policy` and `enum registration_substatus` (with different
 * values), so no file can include both. Policies and substatuses cross this
 * boundary as their wire names. Used only by server/provision.c.
 */
#ifndef DPS_SERVER_PROVISION_ALLOC_H
#define DPS_SERVER_PROVISION_ALLOC_H

#include <stdbool.h>
#include <stddef.h>

#include "core/trace.h"

/* A linked hub; strings borrowed. */
struct provision_hub {
    const char *host;
    int weight;
    const char *location; /* NULL when not configured */
};

/* Everything allocation reads; every pointer borrowed for the call. */
struct provision_alloc_in {
    const char *registration_id;
    const char *enrollment_device_id; /* individual enrollments; NULL for groups */
    const char *policy;               /* wire name, NULL for the default ("hashed") */
    const char *const *iot_hubs;
    size_t n_iot_hubs;
    const char *iot_hub_host_name; /* legacy single hub, or NULL */
    const struct provision_hub *hubs;
    size_t n_hubs;
    const char *client_region; /* NULL: unknown */
    bool update_hub_assignment;
    bool migrate_device_data;
    /* The record before this attempt (only when it was assigned), or NULLs. */
    const char *previous_hub;
    const char *previous_device_id;
    const char *previous_substatus; /* wire name */
};

/* The decision; pointers borrow from the input. */
struct provision_alloc_out {
    const char *hub;
    const char *device_id;
    const char *substatus; /* wire name, static */
    bool hub_changed;
    bool reset_device_data;
};

/*
 * Runs allocate_hub() (core/allocate.h) on in, adding its steps to trace.
 *
 * Returns: DPS_OK (out filled), DPS_ERR_NOT_FOUND (no hub: the trace is
 * concluded with 400208), DPS_ERR_INVAL (an unknown policy name, or a bad
 * hub configuration; concluded in trace too).
 */
int provision_alloc(const struct provision_alloc_in *in, struct provision_alloc_out *out,
                    struct trace *trace);

#endif
