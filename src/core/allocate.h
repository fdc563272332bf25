/* SPDX-License-Identifier: MIT */
/*
 * Hub allocation and reprovisioning decisions (dps-protocol.md §9.2, §9.4):
 * which linked IoT hub a registering device goes to, with which device id
 * and substatus. Pure functions over C structs: no store, no JSON, no hub
 * calls; the reasons go to the attempt's decision trace (core/trace.h).
 */
#ifndef DPS_CORE_ALLOCATE_H
#define DPS_CORE_ALLOCATE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/trace.h"

/* The Azure error code of a registration that could not be given a hub. */
#define ALLOCATE_ERR_NO_HUB 400208

/* Bounds of a linked hub's allocationWeight. */
#define ALLOCATE_WEIGHT_MIN 1
#define ALLOCATE_WEIGHT_MAX 1000
/* Linked hubs and enrollment iotHubs considered at most. */
#define ALLOCATE_HUBS_MAX 256

/* A linked IoT hub, as configured with --linked-hub or in the config file. */
struct linked_hub {
    const char *host;     /* host name, e.g. "hub-1.example.net"; compared case-insensitively */
    int weight;           /* allocationWeight, ALLOCATE_WEIGHT_MIN..ALLOCATE_WEIGHT_MAX */
    const char *location; /* region name for geoLatency; may be NULL */
    bool apply_allocation_policy; /* false: used only when an enrollment names it in iotHubs */
};

/*
 * An enrollment's allocationPolicy. This is the one definition: core/model.h
 * includes it for the enrollments it parses.
 */
enum allocation_policy {
    ALLOCATION_DEFAULT, /* absent from the enrollment: the service default, hashed */
    ALLOCATION_HASHED,
    ALLOCATION_GEO_LATENCY,
    ALLOCATION_STATIC,
    ALLOCATION_CUSTOM,
};

/*
 * Parses a wire name: "hashed", "geoLatency", "static", "custom" (matched
 * case-insensitively, as Azure's service accepts either spelling). Never
 * yields ALLOCATION_DEFAULT.
 *
 * Returns: 0 and sets *out, or -1 for an unknown name (*out untouched).
 */
int allocation_policy_parse(const char *name, enum allocation_policy *out);

/*
 * The wire name of p ("hashed", ...); a static string, or NULL for
 * ALLOCATION_DEFAULT (an absent allocationPolicy) and values outside the enum.
 */
const char *allocation_policy_name(enum allocation_policy p);

/* A registration record's substatus (§9.4); the one definition, as above. */
enum registration_substatus {
    SUBSTATUS_NONE, /* no substatus: the record is not assigned */
    SUBSTATUS_INITIAL_ASSIGNMENT,
    SUBSTATUS_DEVICE_DATA_MIGRATED,
    SUBSTATUS_DEVICE_DATA_RESET,
    SUBSTATUS_REPROVISIONED_TO_INITIAL_ASSIGNMENT,
};

/*
 * The wire name of s ("initialAssignment", ...); a static string, or NULL
 * for SUBSTATUS_NONE and values outside the enum.
 */
const char *registration_substatus_name(enum registration_substatus s);

/*
 * Parses a wire substatus name (exact spelling).
 *
 * Returns: 0 and sets *out, or -1 for an unknown name (*out untouched).
 */
int registration_substatus_parse(const char *name, enum registration_substatus *out);

/* What the registration record said before this attempt, when there is one. */
struct allocate_previous {
    const char *hub;       /* assignedHub of the record */
    const char *device_id; /* deviceId of the record */
    /* substatus of the record; SUBSTATUS_NONE (unknown) counts as initialAssignment */
    enum registration_substatus substatus;
};

/* Everything allocation reads. All pointers are borrowed for the duration of the call. */
struct allocate_request {
    const char *registration_id; /* required */
    /* The enrollment's deviceId (individual enrollments); NULL or "" for groups or when unset. */
    const char *enrollment_device_id;
    enum allocation_policy policy; /* ALLOCATION_DEFAULT means hashed */
    const char *const *iot_hubs;   /* the enrollment's iotHubs */
    size_t n_iot_hubs;             /* at most ALLOCATE_HUBS_MAX */
    const char *iot_hub_host_name; /* legacy iotHubHostName; NULL when unset */
    const struct linked_hub *hubs; /* the linked hubs */
    size_t n_hubs;                 /* at most ALLOCATE_HUBS_MAX */
    /* geoLatency: the configured region of the client's network; NULL when unknown. */
    const char *client_region;
    /* The reprovision policy (both default true, §3.6.7). */
    bool update_hub_assignment;
    bool migrate_device_data;
    /* The registration record before this attempt, or NULL for a first registration. */
    const struct allocate_previous *previous;
    /*
     * True when there is no record but the device is known to exist in the
     * chosen hub already (the record was deleted): substatus is then
     * reprovisionedToInitialAssignment.
     */
    bool device_exists_in_hub;
};

/* The decision. Pointers borrow from the request (linked hub hosts, ids, previous record). */
struct allocate_decision {
    const char *hub;       /* the assigned hub's host name */
    const char *device_id; /* the hub device id */
    enum registration_substatus substatus;
    bool hub_changed;       /* a previous record named another hub (migrate or reset there) */
    bool reset_device_data; /* build the hub device from the enrollment's initial state */
};

/*
 * Picks the hub for one registration and decides the reprovisioning outcome.
 *
 * Candidates are the enrollment's iotHubs that are linked hubs (named hubs
 * take part even with applyAllocationPolicy false), or, when iotHubs is
 * empty, every linked hub with applyAllocationPolicy true.
 *   - hashed: weighted rendezvous hashing on the lower-cased registration id:
 *     a device keeps its hub while the candidate set is unchanged, and adding
 *     a hub moves only the share of devices the new hub's weight earns.
 *   - geoLatency: the candidates whose location equals client_region
 *     (case-insensitively), hashed among themselves; when none matches or the
 *     region is unknown, hashed over all candidates.
 *   - static: exactly one hub named by iotHubs (or iotHubHostName when
 *     iotHubs is empty), which must be a linked hub.
 *   - custom: not supported; the registration fails with a message saying so.
 * With a previous record and update_hub_assignment false the previous hub is
 * kept (while it is still linked). Every step and the reason of a failure go
 * to trace.
 *
 * out: filled only when a hub was assigned.
 * trace: the attempt's trace (NULL: no trace kept); every step is added and,
 *   on failure, it is concluded with ALLOCATE_ERR_NO_HUB, an operator summary
 *   that says what to fix, and a short device message.
 *
 * Returns: DPS_OK (out filled), DPS_ERR_NOT_FOUND (no hub could be assigned:
 * the registration is `failed`, see trace), DPS_ERR_INVAL (a NULL or empty
 * registration id, more than ALLOCATE_HUBS_MAX hubs, a linked hub without a
 * host or with a weight outside its bounds: a caller or configuration bug,
 * also concluded in trace).
 */
int allocate_hub(const struct allocate_request *req, struct allocate_decision *out,
                 struct trace *trace);

/*
 * The weighted rendezvous score of one hub for one registration id: the hub
 * with the highest score among the candidates wins. Exposed for tests and for
 * tools that explain a placement.
 *
 * Returns: the score, a positive finite number for weight >= 1.
 */
double allocate_hub_score(const char *registration_id, const char *host, int weight);

#endif
