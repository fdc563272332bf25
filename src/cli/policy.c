/* SPDX-License-Identifier: MIT */
/*
 * dpsctl policy: dpsd's shared access policies (list, show, create,
 * delete) through libdps, and dpsctl token, which prints the SAS token a
 * connection string makes, for curl and other tools.
 */
#include "core/common.h"
#include "cli/cli.h"

#include <jansson.h>

#include "cli/opts.h"
#include "dps/service.h"

static const char *const known_rights[] = {"ServiceConfig",           "EnrollmentRead",
                                           "EnrollmentWrite",         "RegistrationStatusRead",
                                           "RegistrationStatusWrite", "DeviceConnect"};

static const char *str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static const char *name_of(const struct cli_args *a)
{
    const char *n = a->val[OPT_NAME] ? a->val[OPT_NAME] : a->pos;

    if (!n)
        cli_errorf("no policy name given: use --name");
    return n;
}

/* Checks a comma-separated rights list against the known names. */
static bool rights_ok(const char *list)
{
    const char *p = list;

    while (*p) {
        size_t n = strcspn(p, ",");
        bool found = false;

        while (n && *p == ' ') {
            p++;
            n--;
        }
        for (size_t i = 0; i < ARRAY_SIZE(known_rights); i++)
            found |= strlen(known_rights[i]) == n && !strncmp(known_rights[i], p, n);
        if (!found) {
            cli_errorf("right '%.*s' is not one of ServiceConfig, EnrollmentRead, EnrollmentWrite, "
                       "RegistrationStatusRead, RegistrationStatusWrite",
                       (int)n, p);
            return false;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return true;
}

static void print_policy(const json_t *p, bool keys)
{
    cli_print_field("Name", str(p, "name"));
    cli_print_field("Rights", str(p, "rights"));
    if (keys) {
        cli_print_field("Primary key", str(p, "primaryKey"));
        cli_print_field("Secondary key", str(p, "secondaryKey"));
    }
}

static int print_answer(const struct cli_args *a, const char *text, bool keys, const char *host)
{
    json_t *p;

    if (a->set[OPT_JSON]) {
        cli_print_json(text);
        return CLI_OK;
    }
    p = json_loads(text, 0, NULL);
    if (!json_is_object(p)) {
        cli_errorf("the server's answer is not a json object");
        json_decref(p);
        return CLI_FAILED;
    }
    print_policy(p, keys);
    if (host && str(p, "primaryKey"))
        printf("%-20s HostName=%s;SharedAccessKeyName=%s;SharedAccessKey=%s\n", "Connection string",
               host, str(p, "name") ? str(p, "name") : "?", str(p, "primaryKey"));
    json_decref(p);
    return CLI_OK;
}

static int policy_list(struct dps_service_client *c, const struct cli_args *a)
{
    struct dps_error err = {0};
    char *out = NULL;
    json_t *list = NULL, *p;
    size_t i;
    int rc = CLI_OK;

    if (dps_policy_list(c, &out, &err) != DPS_OK)
        return cli_fail(&err);
    if (a->set[OPT_JSON]) {
        cli_print_json(out);
        goto out;
    }
    list = json_loads(out, 0, NULL);
    if (!json_is_array(list)) {
        cli_errorf("the server's answer is not a json array");
        rc = CLI_FAILED;
        goto out;
    }
    printf("%-32s %s\n", "NAME", "RIGHTS");
    json_array_foreach(list, i, p)
    {
        printf("%-32s %s\n", str(p, "name") ? str(p, "name") : "?",
               str(p, "rights") ? str(p, "rights") : "");
    }
out:
    json_decref(list);
    free(out);
    return rc;
}

static int policy_show(struct dps_service_client *c, const struct cli_args *a)
{
    struct dps_error err = {0};
    const char *name = name_of(a);
    char *out = NULL;
    int rc;

    if (!name)
        return CLI_USAGE;
    if (dps_policy_get(c, name, &out, &err) != DPS_OK)
        return cli_fail(&err);
    rc = print_answer(a, out, a->set[OPT_SHOW_KEYS], NULL);
    free(out);
    return rc;
}

static int policy_create(struct dps_service_client *c, const struct cli_args *a)
{
    struct dps_error err = {0};
    const char *name = name_of(a);
    json_t *body = NULL;
    char *text = NULL, *out = NULL;
    int rc;

    if (!name)
        return CLI_USAGE;
    if (!a->val[OPT_RIGHTS]) {
        cli_errorf("no rights given: use --rights EnrollmentRead,...");
        return CLI_USAGE;
    }
    if (!rights_ok(a->val[OPT_RIGHTS]))
        return CLI_USAGE;
    body = json_pack("{s:s,s:s}", "name", name, "rights", a->val[OPT_RIGHTS]);
    if (body && a->val[OPT_PRIMARY_KEY] &&
        json_object_set_new(body, "primaryKey", json_string(a->val[OPT_PRIMARY_KEY]))) {
        json_decref(body);
        body = NULL;
    }
    text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (!text) {
        cli_errorf("out of memory");
        rc = CLI_FAILED;
        goto out;
    }
    if (dps_policy_put(c, name, text, NULL, &out, &err) != DPS_OK) {
        rc = cli_fail(&err);
        goto out;
    }
    rc = print_answer(a, out, true, dps_service_client_host(c));
out:
    json_decref(body);
    free(text);
    free(out);
    return rc;
}

static int policy_delete(struct dps_service_client *c, const struct cli_args *a)
{
    struct dps_error err = {0};
    const char *name = name_of(a);

    if (!name)
        return CLI_USAGE;
    if (dps_policy_delete(c, name, a->val[OPT_ETAG] ? a->val[OPT_ETAG] : a->val[OPT_IF_MATCH],
                          &err) != DPS_OK)
        return cli_fail(&err);
    if (a->set[OPT_JSON])
        printf("{\"deleted\":true}\n");
    else
        printf("deleted policy '%s'; tokens signed with its keys no longer work\n", name);
    return CLI_OK;
}

static const enum cli_opt list_opts[] = {OPT_END};
static const enum cli_opt show_opts[] = {OPT_NAME, OPT_SHOW_KEYS, OPT_END};
static const enum cli_opt create_opts[] = {OPT_NAME, OPT_RIGHTS, OPT_PRIMARY_KEY, OPT_END};
static const enum cli_opt delete_opts[] = {OPT_NAME, OPT_ETAG, OPT_IF_MATCH, OPT_END};

static const struct cli_sub policy_subs[] = {
    {"list", "[options]", "List the shared access policies.", list_opts, false, false, policy_list},
    {"show", "--name NAME [--show-keys] [options]", "Show a shared access policy.", show_opts, true,
     false, policy_show},
    {"create", "--name NAME --rights LIST [--primary-key KEY] [options]",
     "Create (or replace) a shared access policy and print its connection string.\n"
     "Needs a connection string whose policy has the ServiceConfig right.",
     create_opts, true, false, policy_create},
    {"delete", "--name NAME [options]", "Revoke a shared access policy.", delete_opts, true, false,
     policy_delete},
};

int cmd_policy(int argc, char **argv)
{
    return cli_group_run("policy",
                         "Manage dpsd's shared access policies (a dpsd extension of the service "
                         "API).",
                         policy_subs, ARRAY_SIZE(policy_subs), argc, argv);
}

static int token_print(struct dps_service_client *c, const struct cli_args *a)
{
    struct dps_error err = {0};
    const char *cs = cli_connection_string(a);
    long ttl = 3600;
    char *token = NULL;
    int rc;

    (void)c;
    if (!cs) {
        cli_errorf("no connection string: give --connection-string or set DPS_CONNECTION_STRING");
        return CLI_USAGE;
    }
    if (a->set[OPT_TTL] && (rc = cli_opt_long(a, OPT_TTL, 1, 31536000, &ttl)))
        return rc;
    if (dps_service_token(cs, ttl, &token, &err) != DPS_OK)
        return err.code == DPS_ERR_INVAL ? (cli_fail(&err), CLI_USAGE) : cli_fail(&err);
    if (a->set[OPT_JSON]) {
        json_t *o = json_pack("{s:s,s:I}", "token", token, "expiry", (json_int_t)time(NULL) + ttl);
        char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

        puts(s ? s : "");
        free(s);
        json_decref(o);
    } else {
        puts(token);
    }
    free(token);
    return CLI_OK;
}

static const enum cli_opt token_opts[] = {OPT_TTL, OPT_END};
static const struct cli_sub token_subs[] = {
    {"print", "[--ttl SECONDS] [options]",
     "Print the service SAS token of the connection string, e.g. for\n"
     "  curl -H \"Authorization: $(dpsctl token print)\" "
     "https://HOST/enrollments/ID?api-version=2021-10-01",
     token_opts, false, true, token_print},
};

int cmd_token(int argc, char **argv)
{
    char *args[64];
    int n = 0;

    /* "dpsctl token [options]" reads better than "dpsctl token print": accept both. */
    if (argc < 2 || strncmp(argv[1], "--", 2) == 0) {
        if (argc > (int)ARRAY_SIZE(args) - 2) {
            cli_errorf("token: too many arguments");
            return CLI_USAGE;
        }
        args[n++] = argv[0];
        args[n++] = "print";
        for (int i = 1; i < argc; i++)
            args[n++] = argv[i];
        return cli_group_run("token", "Print a service SAS token.", token_subs,
                             ARRAY_SIZE(token_subs), n, args);
    }
    return cli_group_run("token", "Print a service SAS token.", token_subs, ARRAY_SIZE(token_subs),
                         argc, argv);
}
