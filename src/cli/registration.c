/* SPDX-License-Identifier: MIT */
/*
 * dpsctl registration: show, list (per enrollment group) and delete device
 * registration states through libdps.
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

static const enum cli_opt show_opts[] = {OPT_REGISTRATION_ID, OPT_END};
static const enum cli_opt list_opts[] = {OPT_GROUP, OPT_PAGE_SIZE, OPT_MAX, OPT_END};
static const enum cli_opt delete_opts[] = {OPT_REGISTRATION_ID, OPT_ETAG, OPT_IF_MATCH, OPT_END};

static const struct cli_sub subs[] = {
    {"show", "--registration-id ID [options]",
     "Show a device's registration state: status, assigned hub and device id.", show_opts, true,
     false, reg_show},
    {"list", "--group ID [--page-size N] [--max N] [options]",
     "List the registration states of the devices of an enrollment group.", list_opts, false, false,
     reg_list},
    {"delete", "--registration-id ID [--etag ETAG] [options]",
     "Delete a registration state; the device's next registration is a first one.\n"
     "The device stays in its IoT hub.",
     delete_opts, true, false, reg_delete},
};

int cmd_registration(int argc, char **argv)
{
    return cli_group_run("registration", "Inspect and delete device registration states.", subs,
                         ARRAY_SIZE(subs), argc, argv);
}
