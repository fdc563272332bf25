/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of hub allocation and reprovisioning: weighted distribution,
 * stability under hub-set changes, static/geoLatency/custom/no-hub cases,
 * the substatus table, and the decision trace's JSON round trip.
 */
#include "core/common.h"
#include "core/allocate.h"
#include "../t.h"

#define N_IDS 10000

static void id_of(int i, char *buf, size_t n)
{
    snprintf(buf, n, "device-%05d", i);
}

static struct allocate_request hashed_request(const char *id, const struct linked_hub *hubs,
                                              size_t n)
{
    struct allocate_request r = {
        .registration_id = id,
        .policy = ALLOCATION_HASHED,
        .hubs = hubs,
        .n_hubs = n,
        .update_hub_assignment = true,
        .migrate_device_data = true,
    };
    return r;
}

static void test_weights(void)
{
    const struct linked_hub hubs[] = {
        {"hub-a.example.net", 1, NULL, true},
        {"hub-b.example.net", 2, NULL, true},
        {"hub-c.example.net", 7, NULL, true},
    };
    int count[3] = {0};
    struct trace *t = NULL;

    for (int i = 0; i < N_IDS; i++) {
        char id[32];
        struct allocate_request r;
        struct allocate_decision d;

        id_of(i, id, sizeof(id));
        r = hashed_request(id, hubs, 3);
        t = trace_new();
        ok(t != NULL);
        ok_int(allocate_hub(&r, &d, t), DPS_OK);
        for (int h = 0; h < 3; h++)
            count[h] += d.hub == hubs[h].host;
        ok_int(d.substatus, SUBSTATUS_INITIAL_ASSIGNMENT);
        ok(d.device_id == r.registration_id);
        trace_free(t);
        t = NULL;
    }
    /* Expected 1000 / 2000 / 7000; allow about five standard deviations. */
    ok(count[0] > 850 && count[0] < 1150);
    ok(count[1] > 1800 && count[1] < 2200);
    ok(count[2] > 6750 && count[2] < 7250);
end:
    trace_free(t);
}

static void test_stability(void)
{
    const struct linked_hub hubs[] = {
        {"hub-a.example.net", 1, NULL, true},
        {"hub-b.example.net", 1, NULL, true},
        {"hub-c.example.net", 1, NULL, true},
        {"hub-d.example.net", 1, NULL, true},
    };
    /* The same hubs in another order: placement must not depend on order. */
    const struct linked_hub shuffled[] = {hubs[2], hubs[0], hubs[1]};
    int moved = 0, moved_elsewhere = 0;

    for (int i = 0; i < N_IDS; i++) {
        char id[32];
        struct allocate_request r3, r3s, r4;
        struct allocate_decision d3, d3s, d4;

        id_of(i, id, sizeof(id));
        r3 = hashed_request(id, hubs, 3);
        r3s = hashed_request(id, shuffled, 3);
        r4 = hashed_request(id, hubs, 4);
        ok_int(allocate_hub(&r3, &d3, NULL), DPS_OK);
        ok_int(allocate_hub(&r3s, &d3s, NULL), DPS_OK);
        ok_int(allocate_hub(&r4, &d4, NULL), DPS_OK);
        ok_str(d3.hub, d3s.hub);
        if (strcmp(d3.hub, d4.hub) != 0) {
            moved++;
            /* A device that moves, moves to the new hub, never between old ones. */
            moved_elsewhere += strcmp(d4.hub, "hub-d.example.net") != 0;
        }
    }
    ok_int(moved_elsewhere, 0);
    /* Adding a fourth equal hub moves about a quarter of the devices. */
    ok(moved > 2200 && moved < 2800);
end:;
}

static void test_case_insensitive_id(void)
{
    const struct linked_hub hubs[] = {
        {"hub-a.example.net", 1, NULL, true},
        {"hub-b.example.net", 1, NULL, true},
        {"hub-c.example.net", 1, NULL, true},
    };
    struct allocate_request r;
    struct allocate_decision lower, upper;

    for (int i = 0; i < 50; i++) {
        char id[32], id_up[32];

        snprintf(id, sizeof(id), "dev-%d", i);
        snprintf(id_up, sizeof(id_up), "DEV-%d", i);
        r = hashed_request(id, hubs, 3);
        ok_int(allocate_hub(&r, &lower, NULL), DPS_OK);
        r = hashed_request(id_up, hubs, 3);
        ok_int(allocate_hub(&r, &upper, NULL), DPS_OK);
        ok_str(lower.hub, upper.hub);
    }
end:;
}

static void test_iot_hubs_restrict(void)
{
    const struct linked_hub hubs[] = {
        {"hub-a.example.net", 1, "westeurope", true},
        {"hub-b.example.net", 1, "eastus", false},
        {"hub-c.example.net", 1, "eastus", true},
    };
    const char *named[] = {"HUB-B.example.net", "unlinked.example.net"};
    struct allocate_request r = hashed_request("dev-1", hubs, 3);
    struct allocate_decision d;
    struct trace *t = trace_new();

    ok(t != NULL);
    /* A hub named by the enrollment takes part even with applyAllocationPolicy false. */
    r.iot_hubs = named;
    r.n_iot_hubs = 2;
    ok_int(allocate_hub(&r, &d, t), DPS_OK);
    ok_str(d.hub, "hub-b.example.net");
    ok(trace_contains(t, "'unlinked.example.net' in iotHubs, but it is not a linked hub"));

    /* Without iotHubs, a hub with applyAllocationPolicy false is never chosen. */
    for (int i = 0; i < 200; i++) {
        char id[32];

        id_of(i, id, sizeof(id));
        r = hashed_request(id, hubs, 3);
        ok_int(allocate_hub(&r, &d, NULL), DPS_OK);
        ok(strcmp(d.hub, "hub-b.example.net") != 0);
    }

    /* Only unlinked hubs named: failed with 400208. */
    trace_free(t);
    t = trace_new();
    ok(t != NULL);
    r = hashed_request("dev-1", hubs, 3);
    r.iot_hubs = &named[1];
    r.n_iot_hubs = 1;
    ok_int(allocate_hub(&r, &d, t), DPS_ERR_NOT_FOUND);
    ok_int(trace_error_code(t), ALLOCATE_ERR_NO_HUB);
    ok(trace_contains(t, "none of the 1 hubs in the enrollment's iotHubs is a linked hub"));
end:
    trace_free(t);
}

static void test_no_hub(void)
{
    const struct linked_hub off[] = {{"hub-a.example.net", 1, NULL, false}};
    struct allocate_request r = hashed_request("dev-1", NULL, 0);
    struct allocate_decision d = {0};
    struct trace *t = trace_new();

    ok(t != NULL);
    ok_int(allocate_hub(&r, &d, t), DPS_ERR_NOT_FOUND);
    ok(d.hub == NULL);
    ok_int(trace_error_code(t), 400208);
    ok(trace_contains(t, "no IoT hub is linked"));
    ok_str(trace_device_message(t), "no IoT hub could be assigned to this device");

    r = hashed_request("dev-1", off, 1);
    ok_int(allocate_hub(&r, &d, t), DPS_ERR_NOT_FOUND);
    ok(trace_contains(t, "every linked hub has applyAllocationPolicy false"));
end:
    trace_free(t);
}

static void test_bad_config(void)
{
    struct linked_hub heavy[] = {{"hub-a.example.net", 1001, NULL, true}};
    struct allocate_request r = hashed_request("dev-1", heavy, 1);
    struct allocate_decision d;
    struct trace *t = trace_new();

    ok(t != NULL);
    ok_int(allocate_hub(&r, &d, t), DPS_ERR_INVAL);
    ok(trace_contains(t, "allocationWeight 1001, outside 1..1000"));
    heavy[0].weight = 0;
    ok_int(allocate_hub(&r, &d, t), DPS_ERR_INVAL);
    r = hashed_request("", heavy, 1);
    ok_int(allocate_hub(&r, &d, t), DPS_ERR_INVAL);
end:
    trace_free(t);
}

static void test_static(void)
{
    const struct linked_hub hubs[] = {
        {"hub-a.example.net", 1, NULL, true},
        {"hub-b.example.net", 1, NULL, false},
    };
    const char *one[] = {"hub-b.example.net"};
    const char *two[] = {"hub-a.example.net", "hub-b.example.net"};
    const char *unlinked[] = {"elsewhere.example.net"};
    struct allocate_request r = hashed_request("dev-1", hubs, 2);
    struct allocate_decision d;
    struct trace *t = trace_new();

    ok(t != NULL);
    r.policy = ALLOCATION_STATIC;
    r.iot_hubs = one;
    r.n_iot_hubs = 1;
    ok_int(allocate_hub(&r, &d, t), DPS_OK);
    ok_str(d.hub, "hub-b.example.net");

    r.iot_hubs = NULL;
    r.n_iot_hubs = 0;
    r.iot_hub_host_name = "HUB-A.example.net";
    ok_int(allocate_hub(&r, &d, t), DPS_OK);
    ok_str(d.hub, "hub-a.example.net");

    r.iot_hub_host_name = NULL;
    ok_int(allocate_hub(&r, &d, t), DPS_ERR_NOT_FOUND);
    ok_int(trace_error_code(t), 400208);
    ok(trace_contains(t, "'static' needs exactly one hub"));
    ok(trace_contains(t, "but it names 0"));

    r.iot_hubs = two;
    r.n_iot_hubs = 2;
    ok_int(allocate_hub(&r, &d, t), DPS_ERR_NOT_FOUND);
    ok(trace_contains(t, "but it names 2"));

    r.iot_hubs = unlinked;
    r.n_iot_hubs = 1;
    ok_int(allocate_hub(&r, &d, t), DPS_ERR_NOT_FOUND);
    ok(trace_contains(t, "names hub 'elsewhere.example.net', which is not a linked hub"));
end:
    trace_free(t);
}

static void test_geo_latency(void)
{
    const struct linked_hub hubs[] = {
        {"eu-1.example.net", 1, "westeurope", true},
        {"eu-2.example.net", 1, "WestEurope", true},
        {"us-1.example.net", 1, "eastus", true},
    };
    int eu[2] = {0};
    struct trace *t = NULL;

    for (int i = 0; i < 400; i++) {
        char id[32];
        struct allocate_request r;
        struct allocate_decision d;

        id_of(i, id, sizeof(id));
        r = hashed_request(id, hubs, 3);
        r.policy = ALLOCATION_GEO_LATENCY;
        r.client_region = "westeurope";
        ok_int(allocate_hub(&r, &d, NULL), DPS_OK);
        ok(strncmp(d.hub, "eu-", 3) == 0);
        eu[d.hub == hubs[1].host]++;
    }
    /* Both hubs of the region share the devices. */
    ok(eu[0] > 100 && eu[1] > 100);

    /* Unknown region: hashed over every candidate, said so in the trace. */
    t = trace_new();
    ok(t != NULL);
    {
        struct allocate_request r = hashed_request("dev-1", hubs, 3);
        struct allocate_request h = hashed_request("dev-1", hubs, 3);
        struct allocate_decision d, dh;

        r.policy = ALLOCATION_GEO_LATENCY;
        r.client_region = "southafricanorth";
        ok_int(allocate_hub(&r, &d, t), DPS_OK);
        ok_int(allocate_hub(&h, &dh, NULL), DPS_OK);
        ok_str(d.hub, dh.hub);
        ok(trace_contains(t, "no candidate hub has location 'southafricanorth'"));
        r.client_region = NULL;
        ok_int(allocate_hub(&r, &d, t), DPS_OK);
        ok(trace_contains(t, "has no configured region"));
    }
end:
    trace_free(t);
}

static void test_custom(void)
{
    const struct linked_hub hubs[] = {{"hub-a.example.net", 1, NULL, true}};
    struct allocate_request r = hashed_request("dev-1", hubs, 1);
    struct allocate_decision d;
    struct trace *t = trace_new();

    ok(t != NULL);
    r.policy = ALLOCATION_CUSTOM;
    ok_int(allocate_hub(&r, &d, t), DPS_ERR_NOT_FOUND);
    ok_int(trace_error_code(t), 400208);
    ok(trace_contains(t, "custom allocation webhooks are not implemented yet"));
    ok(trace_contains(t, "use 'static'"));
end:
    trace_free(t);
}

static void test_reprovision_table(void)
{
    const struct linked_hub hubs[] = {
        {"hub-a.example.net", 1, NULL, true},
        {"hub-b.example.net", 1, NULL, true},
    };
    const char *only_a[] = {"hub-a.example.net"};
    const char *only_b[] = {"hub-b.example.net"};
    const struct {
        bool has_previous;
        const char *previous_hub;
        bool update, migrate, exists_in_hub;
        const char **named; /* the enrollment's single iotHubs entry */
        const char *hub;
        enum registration_substatus substatus;
        bool changed, reset;
    } rows[] = {
        /* first registration */
        {false, NULL, true, true, false, only_a, "hub-a.example.net", SUBSTATUS_INITIAL_ASSIGNMENT,
         false, false},
        /* record gone, device already in the hub */
        {false, NULL, true, true, true, only_a, "hub-a.example.net",
         SUBSTATUS_REPROVISIONED_TO_INITIAL_ASSIGNMENT, false, false},
        /* hub changes, data migrated */
        {true, "hub-a.example.net", true, true, false, only_b, "hub-b.example.net",
         SUBSTATUS_DEVICE_DATA_MIGRATED, true, false},
        /* hub changes, data reset */
        {true, "hub-a.example.net", true, false, false, only_b, "hub-b.example.net",
         SUBSTATUS_DEVICE_DATA_RESET, true, true},
        /* same hub, reset still applies (factory reset) */
        {true, "hub-a.example.net", true, false, false, only_a, "hub-a.example.net",
         SUBSTATUS_DEVICE_DATA_RESET, false, true},
        /* same hub, migrate: nothing moved, the record's substatus stands */
        {true, "hub-a.example.net", true, true, false, only_a, "hub-a.example.net",
         SUBSTATUS_INITIAL_ASSIGNMENT, false, false},
        /* never reprovision: the device keeps its hub although the enrollment now names b */
        {true, "hub-a.example.net", false, true, false, only_b, "hub-a.example.net",
         SUBSTATUS_INITIAL_ASSIGNMENT, false, false},
        /* never reprovision, but the old hub is no longer linked: allocated again */
        {true, "gone.example.net", false, true, false, only_b, "hub-b.example.net",
         SUBSTATUS_DEVICE_DATA_MIGRATED, true, false},
    };
    struct trace *t = NULL;

    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        struct allocate_previous prev = {rows[i].previous_hub, "dev-1",
                                         SUBSTATUS_INITIAL_ASSIGNMENT};
        struct allocate_request r = hashed_request("dev-1", hubs, 2);
        struct allocate_decision d;

        t = trace_new();
        ok(t != NULL);
        r.previous = rows[i].has_previous ? &prev : NULL;
        r.update_hub_assignment = rows[i].update;
        r.migrate_device_data = rows[i].migrate;
        r.device_exists_in_hub = rows[i].exists_in_hub;
        r.iot_hubs = rows[i].named;
        r.n_iot_hubs = 1;
        ok_int(allocate_hub(&r, &d, t), DPS_OK);
        if (strcmp(d.hub, rows[i].hub) != 0 || d.substatus != rows[i].substatus)
            fprintf(stderr, "  row %zu: hub %s substatus %s\n", i, d.hub,
                    registration_substatus_name(d.substatus));
        ok_str(d.hub, rows[i].hub);
        ok_int(d.substatus, rows[i].substatus);
        ok_int(d.hub_changed, rows[i].changed);
        ok_int(d.reset_device_data, rows[i].reset);
        trace_free(t);
        t = NULL;
    }
end:
    trace_free(t);
}

static void test_device_id(void)
{
    const struct linked_hub hubs[] = {{"hub-a.example.net", 1, NULL, true}};
    struct allocate_request r = hashed_request("reg-1", hubs, 1);
    struct allocate_decision d;

    ok_int(allocate_hub(&r, &d, NULL), DPS_OK);
    ok_str(d.device_id, "reg-1");
    r.enrollment_device_id = "custom-device-id";
    ok_int(allocate_hub(&r, &d, NULL), DPS_OK);
    ok_str(d.device_id, "custom-device-id");
end:;
}

static void test_names(void)
{
    enum allocation_policy p;
    enum registration_substatus s;

    ok_int(allocation_policy_parse("GeoLatency", &p), 0);
    ok_int(p, ALLOCATION_GEO_LATENCY);
    ok_int(allocation_policy_parse("roundrobin", &p), -1);
    ok_str(allocation_policy_name(ALLOCATION_STATIC), "static");
    ok_int(registration_substatus_parse("deviceDataReset", &s), 0);
    ok_int(s, SUBSTATUS_DEVICE_DATA_RESET);
    ok_int(registration_substatus_parse("DeviceDataReset", &s), -1);
    ok_str(registration_substatus_name(SUBSTATUS_REPROVISIONED_TO_INITIAL_ASSIGNMENT),
           "reprovisionedToInitialAssignment");
end:;
}

/* The unset policy and substatus shared with core/model.h: absent on the wire, hashed in effect. */
static void test_defaults(void)
{
    const struct linked_hub hubs[] = {
        {"hub-a.example.net", 1, NULL, true},
        {"hub-b.example.net", 3, NULL, true},
    };
    const struct allocate_previous prev = {"hub-b.example.net", "dev-7", SUBSTATUS_NONE};
    struct allocate_request r;
    struct allocate_decision hashed, dflt, again;
    enum allocation_policy p = ALLOCATION_STATIC;
    struct trace *t = trace_new();

    ok(t != NULL);
    ok(allocation_policy_name(ALLOCATION_DEFAULT) == NULL);
    ok(allocation_policy_name((enum allocation_policy)99) == NULL);
    ok(registration_substatus_name(SUBSTATUS_NONE) == NULL);
    ok_int(allocation_policy_parse("default", &p), -1);
    ok_int(p, ALLOCATION_STATIC);
    for (int i = 0; i < 50; i++) {
        char id[32];

        id_of(i, id, sizeof(id));
        r = hashed_request(id, hubs, 2);
        ok_int(allocate_hub(&r, &hashed, NULL), DPS_OK);
        r.policy = ALLOCATION_DEFAULT;
        ok_int(allocate_hub(&r, &dflt, NULL), DPS_OK);
        ok(hashed.hub == dflt.hub);
    }
    r = hashed_request("dev-1", hubs, 2);
    r.policy = ALLOCATION_DEFAULT;
    ok_int(allocate_hub(&r, &dflt, t), DPS_OK);
    ok_str(trace_line(t, 0), "allocation policy 'hashed' (the default)");
    /* A previous record without a readable substatus keeps its hub as a first assignment. */
    r = hashed_request("dev-7", hubs, 2);
    r.previous = &prev;
    ok_int(allocate_hub(&r, &again, NULL), DPS_OK);
    if (strcmp(again.hub, "hub-b.example.net") == 0)
        ok_int(again.substatus, SUBSTATUS_INITIAL_ASSIGNMENT);
    r.update_hub_assignment = false;
    ok_int(allocate_hub(&r, &again, NULL), DPS_OK);
    ok_str(again.hub, "hub-b.example.net");
    ok_int(again.substatus, SUBSTATUS_INITIAL_ASSIGNMENT);
end:
    trace_free(t);
}

static void test_trace_json(void)
{
    struct trace *t = trace_new(), *back = NULL;
    json_t *j = NULL;
    struct dps_error err;
    char long_line[2000];

    ok(t != NULL);
    memset(long_line, 'x', sizeof(long_line) - 1);
    long_line[sizeof(long_line) - 1] = '\0';
    trace_add(t, "considered group '%s'", "line-3");
    trace_add(t, "%s", long_line);
    for (int i = 0; i < TRACE_LINES_MAX + 5; i++)
        trace_add(t, "line %d", i);
    trace_conclude(t, 401002, "certificate chain is not trusted by any enrollment",
                   "no enrollment matched");
    ok_int(trace_line_count(t), TRACE_LINES_MAX);
    ok_int(trace_omitted(t), 7);
    ok_int(strlen(trace_line(t, 1)), TRACE_LINE_MAX);
    ok(trace_line(t, TRACE_LINES_MAX) == NULL);

    j = trace_to_json(t);
    ok(j != NULL);
    ok_int(trace_from_json(j, &back, &err), DPS_OK);
    ok_int(trace_error_code(back), 401002);
    ok_str(trace_summary(back), "no enrollment matched");
    ok_str(trace_device_message(back), "certificate chain is not trusted by any enrollment");
    ok_str(trace_line(back, 0), "considered group 'line-3'");
    ok_int(trace_line_count(back), TRACE_LINES_MAX);
    ok_int(trace_omitted(back), 7);

    json_decref(j);
    j = json_pack("{s:[i]}", "steps", 3);
    ok(j != NULL);
    trace_free(back);
    back = NULL;
    ok_int(trace_from_json(j, &back, &err), DPS_ERR_INVAL);
    ok(back == NULL);
    ok_str(err.msg, "trace step 0 is not a string");
end:
    json_decref(j);
    trace_free(back);
    trace_free(t);
}

int main(void)
{
    subtest("hashed distribution follows weights", test_weights);
    subtest("hashed placement is stable; adding a hub moves about 1/n", test_stability);
    subtest("registration id case does not change the hub", test_case_insensitive_id);
    subtest("enrollment iotHubs restrict the candidates", test_iot_hubs_restrict);
    subtest("no hub: failed 400208", test_no_hub);
    subtest("bad linked hub configuration", test_bad_config);
    subtest("static allocation", test_static);
    subtest("geoLatency by configured region", test_geo_latency);
    subtest("custom allocation refused with a clear message", test_custom);
    subtest("reprovision substatus table", test_reprovision_table);
    subtest("device id for groups and individuals", test_device_id);
    subtest("policy and substatus names", test_names);
    subtest("unset policy is hashed, unset substatus is initial", test_defaults);
    subtest("trace bounds and json round trip", test_trace_json);
    return t_done();
}
