/* SPDX-License-Identifier: MIT */
/*
 * dpsctl registration: show, list (per enrollment group) and delete device
 * registration states, read a device's attempt history and the recent failed
 * attempts of every device, through libdps.
 */
#include "core/common.h"
#include "cli/cli.h"

#include <jansson.h>

#include "cli/opts.h"
#include "dps/service.h"

static const char *str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static const char *id_of(const struct cli_args *a)
{
    const char *id = a->val[OPT_REGISTRATION_ID] ? a->val[OPT_REGISTRATION_ID] : a->pos;

    if (!id)
        cli_errorf("no registration id given: use --registration-id");
    return id;
}

static void print_state(const json_t *r)
{
    const json_t *code = json_object_get(r, "errorCode");
    char line[512];

    cli_print_field("Registration id", str(r, "registrationId"));
    if (str(r, "substatus")) {
        snprintf(line, sizeof(line), "%s (%s)", str(r, "status") ? str(r, "status") : "?",
                 str(r, "substatus"));
        cli_print_field("Status", line);
    } else {
        cli_print_field("Status", str(r, "status"));
    }
    cli_print_field("Assigned hub", str(r, "assignedHub"));
    cli_print_field("Device id", str(r, "deviceId"));
    if (json_is_integer(code)) {
        snprintf(line, sizeof(line), "%lld %s", (long long)json_integer_value(code),
                 str(r, "errorMessage") ? str(r, "errorMessage") : "");
        cli_print_field("Error", line);
    }
    cli_print_field("Etag", str(r, "etag"));
    cli_print_field("Created", str(r, "createdDateTimeUtc"));
    cli_print_field("Updated", str(r, "lastUpdatedDateTimeUtc"));
}

static int reg_show(struct dps_service_client *c, const struct cli_args *a)
{
    struct dps_error err = {0};
    const char *id = id_of(a);
    char *out = NULL;
    json_t *r;

    if (!id)
        return CLI_USAGE;
    if (dps_registration_get(c, id, &out, &err) != DPS_OK)
        return cli_fail(&err);
    if (a->set[OPT_JSON]) {
        cli_print_json(out);
    } else if ((r = json_loads(out, 0, NULL))) {
        print_state(r);
        json_decref(r);
    } else {
        cli_errorf("the server's answer is not valid json");
        free(out);
        return CLI_FAILED;
    }
    free(out);
    return CLI_OK;
}

static void print_row(const json_t *r)
{
    printf("%-40s %-10s %-32s %s\n", str(r, "registrationId") ? str(r, "registrationId") : "?",
           str(r, "status") ? str(r, "status") : "?",
           str(r, "assignedHub") ? str(r, "assignedHub") : "-",
           str(r, "lastUpdatedDateTimeUtc") ? str(r, "lastUpdatedDateTimeUtc") : "");
}

static int reg_list(struct dps_service_client *c, const struct cli_args *a)
{
    if (!a->val[OPT_GROUP]) {
        cli_errorf("registration list: no enrollment group given: use --group ID");
        return CLI_USAGE;
    }
    if (!a->set[OPT_JSON])
        printf("%-40s %-10s %-32s %s\n", "REGISTRATION ID", "STATUS", "HUB", "UPDATED");
    return cli_list_pages(c, a, dps_registration_query, a->val[OPT_GROUP], print_row);
}

static int reg_delete(struct dps_service_client *c, const struct cli_args *a)
{
    struct dps_error err = {0};
    const char *id = id_of(a);
    const char *etag = a->val[OPT_ETAG] ? a->val[OPT_ETAG] : a->val[OPT_IF_MATCH];

    if (!id)
        return CLI_USAGE;
    if (dps_registration_delete(c, id, etag, &err) != DPS_OK)
        return cli_fail(&err);
    if (a->set[OPT_JSON])
        printf("{\"deleted\":true}\n");
    else
        printf("deleted registration '%s'\n", id);
    return CLI_OK;
}

/*
 * One attempt as a block: the time, the outcome and where it led, the
 * tracking id a device reported, then the decision trace the server kept.
 */
static void print_attempt(const json_t *a)
{
    const json_t *trace = json_object_get(a, "trace");
    const json_t *enr = json_object_get(a, "enrollment");
    const json_t *state = json_object_get(a, "registrationState");
    const json_t *code = json_object_get(trace, "errorCode");
    const json_t *step;
    char line[512];
    size_t i;

    printf("%s  %s", str(a, "timeUtc") ? str(a, "timeUtc") : "?",
           str(a, "status") ? str(a, "status") : "?");
    if (json_is_integer(code) && json_integer_value(code) != 0)
        printf(" (%lld)", (long long)json_integer_value(code));
    if (str(a, "attestationType"))
        printf("  %s", str(a, "attestationType"));
    printf("\n");
    if (str(enr, "id")) {
        snprintf(line, sizeof(line), "%s '%s'", str(enr, "kind") ? str(enr, "kind") : "enrollment",
                 str(enr, "id"));
        cli_print_field("  Enrollment", line);
    }
    if (str(state, "assignedHub")) {
        snprintf(line, sizeof(line), "%s (device id '%s')", str(state, "assignedHub"),
                 str(state, "deviceId") ? str(state, "deviceId") : "?");
        cli_print_field("  Assigned", line);
    }
    cli_print_field("  Tracking id", str(a, "trackingId"));
    cli_print_field("  Operation id", str(a, "operationId"));
    cli_print_field("  Summary", str(trace, "summary"));
    /* A success carries an empty device message: the device got its assignment. */
    if (str(trace, "deviceMessage") && *str(trace, "deviceMessage"))
        cli_print_field("  Device was told", str(trace, "deviceMessage"));
    if (json_array_size(json_object_get(trace, "steps")) > 0)
        printf("  Decision trace\n");
    json_array_foreach(json_object_get(trace, "steps"), i, step)
    {
        if (json_is_string(step))
            printf("    - %s\n", json_string_value(step));
    }
    printf("\n");
}

static int reg_history(struct dps_service_client *c, const struct cli_args *a)
{
    const char *id = id_of(a);

    if (!id)
        return CLI_USAGE;
    return cli_list_pages(c, a, dps_registration_attempts, id, print_attempt);
}

/* Failed attempts shown without --max: the recent ones, not the whole history. */
#define FAILURES_DEFAULT_MAX "20"

/* dps_attempts_list() in the shape cli_list_pages() calls; arg is unused. */
static int failures_page(struct dps_service_client *c, const char *arg, const struct dps_query *q,
                         struct dps_query_page *page, struct dps_error *err)
{
    (void)arg;
    return dps_attempts_list(c, true, q, page, err);
}

/* One failed attempt: the history's block under a line naming the device. */
static void print_failure(const json_t *a)
{
    printf("%s\n", str(a, "registrationId") ? str(a, "registrationId") : "?");
    print_attempt(a);
}

static int reg_failures(struct dps_service_client *c, const struct cli_args *a)
{
    struct cli_args capped = *a;

    if (!capped.set[OPT_MAX]) {
        capped.set[OPT_MAX] = true;
        capped.val[OPT_MAX] = FAILURES_DEFAULT_MAX;
    }
    return cli_list_pages(c, &capped, failures_page, NULL, print_failure);
}

static const enum cli_opt show_opts[] = {OPT_REGISTRATION_ID, OPT_END};
static const enum cli_opt list_opts[] = {OPT_GROUP, OPT_PAGE_SIZE, OPT_MAX, OPT_END};
static const enum cli_opt history_opts[] = {OPT_REGISTRATION_ID, OPT_PAGE_SIZE, OPT_MAX, OPT_END};
static const enum cli_opt failures_opts[] = {OPT_PAGE_SIZE, OPT_MAX, OPT_END};
static const enum cli_opt delete_opts[] = {OPT_REGISTRATION_ID, OPT_ETAG, OPT_IF_MATCH, OPT_END};

static const struct cli_sub subs[] = {
    {"show", "--registration-id ID [options]",
     "Show a device's registration state: status, assigned hub and device id.", show_opts, true,
     false, reg_show},
    {"list", "--group ID [--page-size N] [--max N] [options]",
     "List the registration states of the devices of an enrollment group.", list_opts, false, false,
     reg_list},
    {"history", "--registration-id ID [--max N] [--page-size N] [options]",
     "Show a device's registration attempts, newest first, each with its time, outcome,\n"
     "tracking id and the decision trace: which enrollments were considered, why each was\n"
     "passed over, which link of a certificate chain failed and what to fix. A device's\n"
     "error carries a tracking id; find it here. --json prints the attempts as returned\n"
     "by GET /registrations/{id}/attempts (dpsd only).",
     history_opts, true, false, reg_history},
    {"failures", "[--max N] [--page-size N] [options]",
     "Show the recent failed registration attempts of every device, newest first (the\n"
     "last " FAILURES_DEFAULT_MAX
     " without --max), each under the device's registration id and with its\n"
     "time, outcome, tracking id and decision trace. Devices refused at attestation have\n"
     "no registration state: this is where they show. Follow one device with\n"
     "'dpsctl registration history ID'. --json prints the attempts as returned by\n"
     "GET /attempts?failed=true (dpsd only).",
     failures_opts, false, false, reg_failures},
    {"delete", "--registration-id ID [--etag ETAG] [options]",
     "Delete a registration state; the device's next registration is a first one.\n"
     "The device stays in its IoT hub.",
     delete_opts, true, false, reg_delete},
};

int cmd_registration(int argc, char **argv)
{
    return cli_group_run(
        "registration",
        "Inspect and delete device registration states and read their attempt history\n"
        "and the recent failures.",
        subs, ARRAY_SIZE(subs), argc, argv);
}
